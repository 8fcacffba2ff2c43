//! Where compaction keeps its bookkeeping outside the table: leases (so that
//! two compactors do not rewrite the same table at once), the record of each
//! run, and the table's statistics.
//!
//! The metastore implements [`Ledger`] over its catalog database
//! (`catalog.database_url`); without a catalog, [`InProcessLedger`] keeps
//! everything in memory, so leases then only protect within one process.
//! Either way a lease only saves wasted work: correctness never depends on
//! it, because every compaction commit carries a Delta `txn` per partition
//! that makes two commits rewriting the same partition conflict (see
//! `commit`).
//!
//! What implementers must guarantee:
//!
//! - [`Ledger::try_acquire_lease`] is atomic: of two callers racing for a
//!   free or expired lease, exactly one gets `true`. A holder acquiring again
//!   extends its lease (re-entrant). Over SQL:
//!   `UPDATE lease SET owner=?, version=version+1, expires=? WHERE name=? AND
//!   (expires < now OR owner=?)` (after inserting the row if missing) and
//!   `true` when one row changed.
//! - [`Ledger::renew_lease`] extends only a lease the owner still holds and
//!   answers `false` when it was lost (expired and taken over).
//! - [`Ledger::release_lease`] frees only the owner's lease.
//! - Record and statistics writes are idempotent per run id / table.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;

/// Why a ledger operation failed (the database was unreachable...).
#[derive(Debug, thiserror::Error)]
#[error("compaction ledger: {0}")]
pub struct LedgerError(pub String);

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every planned bin was rewritten and committed (or there was nothing to do).
    Succeeded,
    /// Some bins were committed, others failed (see the message).
    Partial,
    /// Nothing was committed.
    Failed,
    /// Another compactor held the table's lease.
    Skipped,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Partial => "partial",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One compaction run as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct CompactionRun {
    pub run_id: String,
    /// The table's location as users write it.
    pub table: String,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub files_in: u64,
    pub bytes_in: u64,
    pub files_out: u64,
    pub bytes_out: u64,
    /// Table versions this run committed.
    pub versions: Vec<i64>,
    pub outcome: Outcome,
    /// Failed bins with the file that failed, or why the run was skipped.
    pub message: Option<String>,
}

/// A table's size after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TableStats {
    pub files: u64,
    pub bytes: u64,
    /// Rows; `None` when some file lacks statistics.
    pub rows: Option<u64>,
}

/// Leases, run records and table statistics (see the module doc for the
/// guarantees implementers give).
#[async_trait::async_trait]
pub trait Ledger: Send + Sync {
    /// Takes the lease `name` for `owner` for `ttl` when it is free, expired
    /// or already `owner`'s. Returns whether `owner` now holds it.
    async fn try_acquire_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, LedgerError>;
    /// Extends `owner`'s lease; `false` when `owner` no longer holds it.
    async fn renew_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, LedgerError>;
    /// Frees `owner`'s lease (nothing happens when someone else holds it).
    async fn release_lease(&self, name: &str, owner: &str) -> Result<(), LedgerError>;
    /// Records a finished run.
    async fn record_run(&self, run: &CompactionRun) -> Result<(), LedgerError>;
    /// Stores the table's current size.
    async fn update_table_stats(&self, table: &str, stats: TableStats) -> Result<(), LedgerError>;
}

#[derive(Debug, Clone)]
struct Lease {
    owner: String,
    version: u64,
    expires: std::time::Instant,
}

/// The ledger of a process without a catalog: leases protect only within
/// this process; runs and statistics are kept in memory (and logged).
#[derive(Debug, Default)]
pub struct InProcessLedger {
    leases: Mutex<HashMap<String, Lease>>,
    runs: Mutex<Vec<CompactionRun>>,
    stats: Mutex<HashMap<String, TableStats>>,
}

impl InProcessLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs recorded so far, oldest first.
    pub fn runs(&self) -> Vec<CompactionRun> {
        self.runs.lock().clone()
    }

    pub fn table_stats(&self, table: &str) -> Option<TableStats> {
        self.stats.lock().get(table).copied()
    }

    /// The holder of a lease, if it has not expired.
    pub fn lease_holder(&self, name: &str) -> Option<String> {
        let now = std::time::Instant::now();
        self.leases.lock().get(name).filter(|l| l.expires > now).map(|l| l.owner.clone())
    }
}

#[async_trait::async_trait]
impl Ledger for InProcessLedger {
    async fn try_acquire_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, LedgerError> {
        let now = std::time::Instant::now();
        let mut leases = self.leases.lock();
        let lease = leases.entry(name.to_string()).or_insert_with(|| Lease { owner: String::new(), version: 0, expires: now });
        // The same predicate as the SQL statement in the module doc.
        if lease.expires <= now || lease.owner == owner {
            lease.owner = owner.to_string();
            lease.version += 1;
            lease.expires = now + ttl;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    async fn renew_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, LedgerError> {
        let now = std::time::Instant::now();
        let mut leases = self.leases.lock();
        match leases.get_mut(name) {
            Some(l) if l.owner == owner && l.expires > now => {
                l.expires = now + ttl;
                l.version += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<(), LedgerError> {
        let mut leases = self.leases.lock();
        if leases.get(name).is_some_and(|l| l.owner == owner) {
            leases.remove(name);
        }
        Ok(())
    }

    async fn record_run(&self, run: &CompactionRun) -> Result<(), LedgerError> {
        let mut runs = self.runs.lock();
        runs.retain(|r| r.run_id != run.run_id);
        runs.push(run.clone());
        // Bounded: a long-running service keeps the last thousand.
        let excess = runs.len().saturating_sub(1000);
        runs.drain(..excess);
        Ok(())
    }

    async fn update_table_stats(&self, table: &str, stats: TableStats) -> Result<(), LedgerError> {
        self.stats.lock().insert(table.to_string(), stats);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_owner_at_a_time_until_expiry_or_release() {
        let l = InProcessLedger::new();
        let ttl = Duration::from_millis(200);
        assert!(l.try_acquire_lease("t", "a", ttl).await.unwrap());
        assert!(!l.try_acquire_lease("t", "b", ttl).await.unwrap(), "b must not take a's lease");
        assert!(l.try_acquire_lease("t", "a", ttl).await.unwrap(), "re-entrant for the holder");
        assert!(l.renew_lease("t", "a", ttl).await.unwrap());
        assert!(!l.renew_lease("t", "b", ttl).await.unwrap());
        l.release_lease("t", "b").await.unwrap();
        assert_eq!(l.lease_holder("t").as_deref(), Some("a"), "only the holder releases");
        l.release_lease("t", "a").await.unwrap();
        assert!(l.try_acquire_lease("t", "b", ttl).await.unwrap());
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(!l.renew_lease("t", "b", ttl).await.unwrap(), "an expired lease cannot be renewed");
        assert!(l.try_acquire_lease("t", "a", ttl).await.unwrap(), "an expired lease is taken over");
    }
}
