//! The table format behind a pipeline: where decoded rows are written and
//! committed together with the pipeline's progress.
//!
//! A sink must commit rows and progress atomically and refuse a commit whose
//! expected progress is stale ([`SinkError::Fenced`]); that is what makes
//! ingestion exactly once. Delta is the format today ([`delta`]).

pub mod delta;

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
}
