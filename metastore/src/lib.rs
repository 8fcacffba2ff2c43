//! The Hive-compatible metastore: a catalog of databases, tables and
//! partitions kept in one SQL database (SQLite embedded; MySQL, MariaDB or
//! TiDB shared), served over Hive's Thrift API to Spark, Hive, Trino and
//! pyiceberg, and over a REST API; ingest pipelines register their tables in
//! it directly.
//!
//! Layers, each a module: `store` (SQL rows and transactions) <- `catalog`
//! (Hive's semantics on Thrift objects, audited) <- `thrift` and `api` (the
//! two wire APIs), plus `filter` and `names` (Hive's partition-filter
//! language and naming rules).

pub mod store;
pub mod jobs;
pub mod filter;
pub mod names;
pub mod catalog;
pub mod codec;
pub mod model;
pub mod storage;
pub mod api;
pub mod metrics;
pub mod server;

pub use catalog::{Actor, Catalog, CatalogError};
pub use store::Store;
pub mod register;
