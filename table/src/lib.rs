//! Where tables live and how inlet writes them: warehouse storage
//! ([`storage`]) and the Delta table format ([`delta`]) behind the ingest sink
//! and the compactor.

pub mod delta;
pub mod storage;

pub use delta::{CommitError, DeltaTable, TableSpec};
pub use storage::{Backend, Location, Warehouse};

/// Errors of storage and table operations, naming the table location.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("invalid table location `{location}`: {reason}")]
    InvalidLocation { location: String, reason: String },
    #[error("table {location}: {source}")]
    Delta { location: String, source: Box<deltalake::DeltaTableError> },
    #[error("table {location}: {source}")]
    Io { location: String, source: std::io::Error },
}
