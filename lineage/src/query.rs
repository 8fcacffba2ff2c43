//! Questions asked of a lineage store, and the shapes of the answers, shared
//! by the store (SQL in the metastore), its REST API and `inlet lineage`.

use serde::{Deserialize, Serialize};

use crate::naming::DatasetId;

/// Where a graph query starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum NodeRef {
    /// A dataset by its OpenLineage name (a symlink name such as
    /// `hive://host:port` + `db.table` resolves to the dataset it names).
    Dataset { namespace: String, name: String },
    /// A table by its catalog name `db.table` (any Hive namespace).
    Table { table: String },
    Job { namespace: String, name: String },
}

impl NodeRef {
    /// Query-string pairs of the REST API: `namespace`+`name`, `table`, or
    /// `job`+`job_namespace`.
    pub fn to_query(&self) -> Vec<(&'static str, String)> {
        match self {
            NodeRef::Dataset { namespace, name } => vec![("namespace", namespace.clone()), ("name", name.clone())],
            NodeRef::Table { table } => vec![("table", table.clone())],
            NodeRef::Job { namespace, name } => vec![("job", name.clone()), ("job_namespace", namespace.clone())],
        }
    }

    /// The inverse of [`NodeRef::to_query`]; `default_job_namespace` when a
    /// job is named without one.
    pub fn from_query(q: &NodeQuery, default_job_namespace: &str) -> Result<NodeRef, QueryError> {
        match (&q.namespace, &q.name, &q.table, &q.job) {
            (Some(ns), Some(n), None, None) => Ok(NodeRef::Dataset { namespace: ns.clone(), name: n.clone() }),
            (None, None, Some(t), None) => Ok(NodeRef::Table { table: t.clone() }),
            (None, None, None, Some(j)) => Ok(NodeRef::Job { namespace: q.job_namespace.clone().unwrap_or_else(|| default_job_namespace.to_string()), name: j.clone() }),
            _ => Err(QueryError::Invalid("name exactly one start: `namespace` and `name` (a dataset), `table` (db.table), or `job` (with optional `job_namespace`)".into())),
        }
    }
}

impl std::fmt::Display for NodeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeRef::Dataset { namespace, name } => write!(f, "dataset {}", DatasetId::new(namespace, name)),
            NodeRef::Table { table } => write!(f, "table {table}"),
            NodeRef::Job { namespace, name } => write!(f, "job {namespace}/{name}"),
        }
    }
}

/// The query parameters naming a start node.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeQuery {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub table: Option<String>,
    pub job: Option<String>,
    pub job_namespace: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Upstream,
    Downstream,
}

/// Why a query has no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("lineage store unavailable: {0}")]
    Unavailable(String),
}

/// A dataset as the store knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetView {
    pub namespace: String,
    pub name: String,
    /// Other names of the dataset (its catalog table).
    #[serde(default)]
    pub symlinks: Vec<DatasetId>,
    /// The newest version recorded (Delta version).
    pub version: Option<i64>,
    /// Newest event time committed (RFC 3339), for tables inlet ingests into.
    pub newest_event_time: Option<String>,
    pub updated_at: String,
}

/// A job as the store knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub namespace: String,
    pub name: String,
    /// `STREAMING` or `BATCH`.
    pub processing_type: Option<String>,
    pub job_type: Option<String>,
    pub latest_run_id: Option<String>,
    pub latest_run_state: Option<String>,
    pub updated_at: String,
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    pub run_id: String,
    pub job_namespace: String,
    pub job_name: String,
    /// The last state reported: START, RUNNING, COMPLETE, ABORT, FAIL, OTHER.
    pub state: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub updated_at: String,
    /// Events recorded for the run.
    pub events: i64,
    pub error_message: Option<String>,
    /// Dataset versions the run wrote, oldest first.
    #[serde(default)]
    pub outputs: Vec<OutputVersion>,
    /// Dataset versions the run read (compaction), oldest first.
    #[serde(default)]
    pub inputs: Vec<OutputVersion>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputVersion {
    pub namespace: String,
    pub name: String,
    pub version: i64,
    pub rows: Option<i64>,
    pub bytes: Option<i64>,
    pub files: Option<i64>,
}

/// A node of a lineage graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphNode {
    /// `dataset:<namespace>:<name>` or `job:<namespace>:<name>`.
    pub id: String,
    /// `dataset` or `job`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Hops from the start (a dataset -> job -> dataset path is 2).
    pub depth: u32,
    #[serde(default)]
    pub symlinks: Vec<DatasetId>,
}

/// A data flow edge: dataset -> job (read) or job -> dataset (written).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GraphEdge {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    pub start: String,
    pub direction: Direction,
    pub depth: u32,
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
    /// The depth limit cut the graph short.
    pub truncated: bool,
}

pub fn dataset_node_id(namespace: &str, name: &str) -> String {
    format!("dataset:{namespace}:{name}")
}

pub fn job_node_id(namespace: &str, name: &str) -> String {
    format!("job:{namespace}:{name}")
}

/// A table's ways back to the topics it is made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sources {
    pub table: GraphNode,
    /// Each path starts at a source (a dataset nothing writes, e.g. a Kafka
    /// topic) and ends at the table: dataset, job, dataset, ... node ids.
    pub paths: Vec<Vec<String>>,
    /// Jobs that read and rewrite the table itself (compaction), which sit
    /// on every path's last dataset.
    pub maintained_by: Vec<String>,
    pub nodes: Vec<GraphNode>,
}

/// Latency of one stage over recent commits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageLatency {
    /// `event_to_kafka`, `kafka_to_commit`, `commit_to_catalog`, `event_to_catalog`.
    pub stage: String,
    pub count: u64,
    pub p50_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
    pub p99_seconds: Option<f64>,
    pub max_seconds: Option<f64>,
    /// Cumulative histogram: (upper bound in seconds, commits at or below),
    /// the buckets of the Prometheus histograms; the last bound is `+Inf`
    /// written as `null`.
    pub buckets: Vec<(Option<f64>, u64)>,
}

/// Freshness and latency of a table, from the commits the store recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyView {
    pub dataset: DatasetId,
    #[serde(default)]
    pub symlinks: Vec<DatasetId>,
    pub newest_event_time: Option<String>,
    /// Now minus the newest event time committed.
    pub freshness_seconds: Option<f64>,
    pub last_version: Option<i64>,
    pub last_committed_at: Option<String>,
    /// Commits the stage figures cover (the newest ones).
    pub commits: u64,
    pub stages: Vec<StageLatency>,
}

/// Summarises one stage's per-commit latencies (seconds).
pub fn summarize(stage: &str, mut values: Vec<f64>) -> StageLatency {
    values.retain(|v| v.is_finite());
    values.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| -> Option<f64> {
        if values.is_empty() {
            return None;
        }
        // Nearest rank.
        let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
        Some(values[rank - 1])
    };
    let mut buckets: Vec<(Option<f64>, u64)> = crate::metrics::latency_buckets().into_iter().map(|le| (Some(le), values.iter().filter(|v| **v <= le).count() as u64)).collect();
    buckets.push((None, values.len() as u64));
    StageLatency { stage: stage.to_string(), count: values.len() as u64, p50_seconds: q(0.5), p90_seconds: q(0.9), p99_seconds: q(0.99), max_seconds: values.last().copied(), buckets }
}

/// What a lineage store answers.
#[async_trait::async_trait]
pub trait LineageQuery: Send + Sync {
    async fn jobs(&self) -> Result<Vec<JobView>, QueryError>;
    async fn datasets(&self) -> Result<Vec<DatasetView>, QueryError>;
    /// Upstream or downstream of a dataset or job, `depth` job hops at most.
    async fn graph(&self, start: &NodeRef, direction: Direction, depth: u32) -> Result<Graph, QueryError>;
    /// Runs of a job, newest first.
    async fn runs(&self, job: &NodeRef, limit: u32) -> Result<Vec<RunView>, QueryError>;
    /// A table's paths back to its sources.
    async fn sources(&self, table: &NodeRef, depth: u32) -> Result<Sources, QueryError>;
    /// Freshness and per-stage latency over the newest `commits` commits.
    async fn latency(&self, table: &NodeRef, commits: u32) -> Result<LatencyView, QueryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_refs_round_trip_through_query_strings() {
        for n in [NodeRef::Dataset { namespace: "kafka://b:9092".into(), name: "t".into() }, NodeRef::Table { table: "db.t".into() }, NodeRef::Job { namespace: "inlet".into(), name: "ingest.p".into() }] {
            let pairs = n.to_query();
            let get = |k: &str| pairs.iter().find(|(a, _)| *a == k).map(|(_, v)| v.clone());
            let q = NodeQuery { namespace: get("namespace"), name: get("name"), table: get("table"), job: get("job"), job_namespace: get("job_namespace") };
            assert_eq!(NodeRef::from_query(&q, "inlet").unwrap(), n);
        }
        assert!(NodeRef::from_query(&NodeQuery { table: Some("a.b".into()), job: Some("j".into()), ..Default::default() }, "inlet").is_err());
        assert!(NodeRef::from_query(&NodeQuery { namespace: Some("n".into()), ..Default::default() }, "inlet").is_err());
    }

    #[test]
    fn stage_summary_has_nearest_rank_quantiles_and_cumulative_buckets() {
        let s = summarize("kafka_to_commit", (1..=100).map(|i| i as f64 / 10.0).collect());
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_seconds, Some(5.0));
        assert_eq!(s.p90_seconds, Some(9.0));
        assert_eq!(s.p99_seconds, Some(9.9));
        assert_eq!(s.max_seconds, Some(10.0));
        assert_eq!(s.buckets.iter().find(|(le, _)| *le == Some(1.0)).unwrap().1, 10);
        assert_eq!(s.buckets.last().unwrap(), &(None, 100));
        let empty = summarize("x", vec![]);
        assert_eq!((empty.count, empty.p50_seconds), (0, None));
    }
}
