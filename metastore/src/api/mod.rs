//! The metastore's two wire APIs over the catalog: Hive's Thrift API
//! (`hms`) and a REST API (`rest`).

pub mod hms;
pub mod rest;
