//! Small-file compaction of inlet's Delta tables, on schedules, without
//! disturbing writers or readers.
//!
//! A run ([`run::Compaction`]) takes the table's lease in the [`ledger`],
//! [`plan`]s bins of small files per partition (skipping partitions the
//! stream is still writing), [`rewrite`]s each bin into one file streaming
//! under a process-wide memory budget, and [`commit`]s `remove` + `add`
//! actions with `dataChange=false` in parts, re-checking on a fresh snapshot
//! after conflicts. It then writes a checkpoint when due, optionally
//! [`vacuum`]s, updates the table's statistics and records itself.
//! [`policy`] resolves `compaction.tables[]`; [`schedule`] decides when
//! `inlet compactor` ([`service`]) runs a policy: cron, windows, triggers.

pub mod catalog_ledger;
pub mod commit;
pub mod hive;
pub mod ledger;
pub mod lineage;
pub mod metrics;
pub mod plan;
pub mod policy;
pub mod rewrite;
pub mod run;
pub mod schedule;
pub mod service;
pub mod vacuum;

pub use catalog_ledger::CatalogLedger;
pub use ledger::{CompactionRun, InProcessLedger, Ledger, LedgerError, Outcome, TableStats};
pub use plan::Plan;
pub use policy::Policy;
pub use rewrite::MemoryBudget;
pub use run::{Compaction, Progress, Report};

/// Why a compaction (or upkeep) could not run.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("no Delta table at {0}")]
    NoTable(String),
    #[error("no compaction policy, pipeline or table location matches `{0}`")]
    UnknownTable(String),
    #[error("compaction policy for {table}: {reason}")]
    Policy { table: String, reason: String },
    #[error("vacuum retention of {hours} hours is below the safe minimum of {minimum} hours; pass force to allow it")]
    UnsafeRetention { hours: u64, minimum: u64 },
    #[error(transparent)]
    Table(#[from] inlet_table::TableError),
    #[error("table {location}: {source}")]
    Delta { location: String, source: Box<deltalake::DeltaTableError> },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("rewrite task failed: {0}")]
    Task(String),
    #[error("metrics endpoint {address}: {source}")]
    Metrics { address: String, source: std::io::Error },
}

impl CompactError {
    pub(crate) fn delta(table: &deltalake::DeltaTable, source: deltalake::DeltaTableError) -> Self {
        CompactError::Delta { location: table.table_url().to_string(), source: Box::new(source) }
    }
}
