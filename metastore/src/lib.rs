//! The Hive-compatible metastore (planned: Thrift and REST APIs over a
//! catalog store on SQLite, MySQL and TiDB). The crate exists so the
//! workspace has its final shape; it exposes nothing yet and no command
//! reaches it.
