//! The metastore's two wire APIs over the catalog: Hive's Thrift API
//! (`hms`) and a REST API (`rest`).

pub mod hms;
pub mod jobs;
pub mod lineage;
pub mod rest;
