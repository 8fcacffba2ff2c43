//! The table format behind a pipeline: where decoded rows are written and
//! committed together with the pipeline's progress.
//!
//! A sink must commit rows and progress atomically and refuse a commit whose
//! expected progress is stale ([`SinkError::Fenced`]); that is what makes
//! ingestion exactly once. Delta is the default format ([`delta`]); plain
//! Hive partitions with their log in the catalog database are the other
//! ([`hive`]).

pub mod delta;
pub mod hive;

use std::collections::HashMap;

use deltalake::arrow::datatypes::{FieldRef, SchemaRef};
use deltalake::arrow::record_batch::RecordBatch;
use inlet_table::TableError;

/// What a commit wrote.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    pub version: i64,
    pub files: usize,
    pub rows: usize,
    pub bytes: u64,
}

/// A partition closed by partition commit (`format: hive`).
#[derive(Debug, Clone)]
pub struct ClosedPartition {
    /// Hive partition name, `dt=2024-01-01/hour=03`.
    pub name: String,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    /// Closed again after late events were written into it.
    pub recommit: bool,
    /// The table commit the totals are as of.
    pub version: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("fenced: {0}")]
    Fenced(String),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("writing {table}: {reason}")]
    Write { table: String, reason: String },
}

#[async_trait::async_trait]
pub trait TableSink: Send {
    /// Where the table is, for logs.
    fn describe(&self) -> String;

    /// The table's schema, None before the table exists.
    fn schema(&self) -> Option<SchemaRef>;

    /// Committed progress per transaction id (re-read from storage).
    async fn progress(&mut self, app_ids: &[String]) -> Result<HashMap<String, Option<i64>>, SinkError>;

    /// Creates the table (or opens it when another writer just created it).
    async fn create(&mut self, schema: SchemaRef, partition_columns: Vec<String>) -> Result<(), SinkError>;

    /// Adds nullable columns.
    async fn add_columns(&mut self, fields: &[FieldRef]) -> Result<(), SinkError>;

    /// Writes `batch` (which may be empty) and commits it with `txns`,
    /// provided the committed progress still equals `expected`.
    async fn write(
        &mut self,
        batch: Option<RecordBatch>,
        txns: &[(String, i64)],
        expected: &HashMap<String, Option<i64>>,
    ) -> Result<Commit, SinkError>;

    /// Partition commit: closes the partitions whose event time ended before
    /// `watermark_micros` (less the configured delay) and returns them.
    /// Formats without partition commit close nothing.
    async fn close_partitions(&mut self, _watermark_micros: i64) -> Result<Vec<ClosedPartition>, SinkError> {
        Ok(Vec::new())
    }

    /// Rows of `batch` (in the table's schema) bound for partitions that are
    /// closed to late events, each with the reason it is refused.
    fn late_rows(&self, _batch: &RecordBatch) -> Vec<(usize, String)> {
        Vec::new()
    }
}
