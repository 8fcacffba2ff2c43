//! Dataset and job names, by the OpenLineage naming conventions: Kafka topics
//! are `kafka://host:port` + topic (the first bootstrap server), tables are
//! named by where their files are (`s3://bucket` + key, `hdfs://host:port` +
//! path, `file` + absolute path), and their catalog name is
//! `hive://host:port` + `db.table`, attached as a symlink.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A dataset's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DatasetId {
    pub namespace: String,
    pub name: String,
}

impl DatasetId {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        DatasetId { namespace: namespace.into(), name: name.into() }
    }
}

impl fmt::Display for DatasetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace == "file" { write!(f, "file:{}", self.name) } else { write!(f, "{}/{}", self.namespace.trim_end_matches('/'), self.name.trim_start_matches('/')) }
    }
}

/// The namespace of the jobs inlet runs when none is configured.
pub const DEFAULT_JOB_NAMESPACE: &str = "inlet";

/// The job of an ingestion pipeline.
pub fn ingest_job(pipeline: &str) -> String {
    format!("ingest.{pipeline}")
}

/// The job compacting a table (`db.table`, or the table's location when it
/// has no catalog name).
pub fn compaction_job(table: &str) -> String {
    format!("compaction.{table}")
}

/// `host:port` of the first of a bootstrap list (`SASL_SSL://b1:9093,b2:9093`),
/// with Kafka's default port when none is given.
fn first_server(brokers: &str) -> String {
    let first = brokers.split(',').map(str::trim).find(|s| !s.is_empty()).unwrap_or("localhost");
    let bare = first.rsplit_once("://").map(|(_, r)| r).unwrap_or(first);
    let has_port = match bare.rsplit_once(':') {
        // `[::1]:9092` has a port; `::1` alone does not.
        Some((host, port)) => port.chars().all(|c| c.is_ascii_digit()) && !port.is_empty() && (!host.contains(':') || host.ends_with(']')),
        None => false,
    };
    if has_port { bare.to_string() } else { format!("{bare}:9092") }
}

/// The dataset of a Kafka topic.
pub fn kafka(brokers: &str, topic: &str) -> DatasetId {
    DatasetId::new(format!("kafka://{}", first_server(brokers)), topic)
}

/// The dataset of a table, by its location: a URI (`s3://`, `s3a://`,
/// `hdfs://`, `file://`, `file:/`, other object stores) or a local path
/// (made absolute against the working directory).
pub fn storage(location: &str) -> DatasetId {
    let loc = location.trim();
    if let Some(rest) = loc.strip_prefix("file://") {
        return local(rest);
    }
    if let Some(rest) = loc.strip_prefix("file:") {
        return local(rest);
    }
    if let Some((scheme, rest)) = loc.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let path = path.trim_end_matches('/');
        return match scheme.as_str() {
            // s3a / s3n are Hadoop's spellings of the same store.
            "s3" | "s3a" | "s3n" => DatasetId::new(format!("s3://{authority}"), path.trim_start_matches('/')),
            "gs" => DatasetId::new(format!("gs://{authority}"), path.trim_start_matches('/')),
            _ => DatasetId::new(format!("{scheme}://{authority}"), if path.is_empty() { "/".to_string() } else { path.to_string() }),
        };
    }
    local(loc)
}

fn local(path: &str) -> DatasetId {
    let p = std::path::Path::new(path);
    let abs = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf()) };
    let mut s = normalize(&abs.display().to_string());
    while s.len() > 1 && s.ends_with('/') {
        s.pop();
    }
    DatasetId::new("file", s)
}

/// Collapses `//`, `/./` and `dir/..` in an absolute path (no file system access).
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The namespace of a Hive metastore: `hive://host:port`, from its Thrift URI
/// (`thrift://host:port`) or listen address. An unspecified listen address
/// (`0.0.0.0`, `[::]`) becomes `localhost`.
pub fn hive_namespace(metastore: &str) -> String {
    let bare = metastore.trim().rsplit_once("://").map(|(_, r)| r).unwrap_or(metastore.trim()).trim_end_matches('/');
    let (host, port) = match bare.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => (h, p),
        _ => (bare, "9083"),
    };
    let host = match host {
        "0.0.0.0" | "[::]" | "::" | "" => "localhost",
        h => h,
    };
    format!("hive://{host}:{port}")
}

/// A table's catalog name as a dataset.
pub fn hive(metastore: &str, database: &str, table: &str) -> DatasetId {
    DatasetId::new(hive_namespace(metastore), format!("{}.{}", database.to_ascii_lowercase(), table.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_names_use_the_first_bootstrap_server() {
        assert_eq!(kafka("b1:9093,b2:9093", "orders"), DatasetId::new("kafka://b1:9093", "orders"));
        assert_eq!(kafka("SASL_SSL://b1.example.com:9094", "t"), DatasetId::new("kafka://b1.example.com:9094", "t"));
        assert_eq!(kafka(" broker ", "t").namespace, "kafka://broker:9092");
        assert_eq!(kafka("[::1]:19092", "t").namespace, "kafka://[::1]:19092");
    }

    #[test]
    fn storage_names_follow_the_conventions() {
        assert_eq!(storage("s3://bucket/wh/db.db/events/"), DatasetId::new("s3://bucket", "wh/db.db/events"));
        assert_eq!(storage("s3a://bucket/wh/t"), DatasetId::new("s3://bucket", "wh/t"));
        assert_eq!(storage("hdfs://nn:8020/warehouse/t"), DatasetId::new("hdfs://nn:8020", "/warehouse/t"));
        assert_eq!(storage("file:///data/wh/t/"), DatasetId::new("file", "/data/wh/t"));
        assert_eq!(storage("file:/data/wh/./x/../t"), DatasetId::new("file", "/data/wh/t"));
        assert_eq!(storage("/data/wh//t"), DatasetId::new("file", "/data/wh/t"));
        let rel = storage("wh/t");
        assert_eq!(rel.namespace, "file");
        assert!(rel.name.starts_with('/') && rel.name.ends_with("/wh/t"), "{rel:?}");
    }

    #[test]
    fn hive_names_lower_case_and_resolve_unspecified_hosts() {
        assert_eq!(hive("thrift://ms.svc:9083", "Sales", "Orders"), DatasetId::new("hive://ms.svc:9083", "sales.orders"));
        assert_eq!(hive_namespace("0.0.0.0:9083"), "hive://localhost:9083");
        assert_eq!(hive_namespace("metastore"), "hive://metastore:9083");
    }

    #[test]
    fn display_is_a_readable_uri() {
        assert_eq!(storage("/a/b").to_string(), "file:/a/b");
        assert_eq!(kafka("h:1", "t").to_string(), "kafka://h:1/t");
        assert_eq!(storage("s3://b/k").to_string(), "s3://b/k");
    }
}
