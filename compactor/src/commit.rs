//! Committing rewritten bins: `remove` (inputs) + `add` (output), all with
//! `dataChange=false`, operation `OPTIMIZE` with its metrics.
//!
//! Concurrency semantics:
//!
//! - Against appenders (the ingest stream): a commit that changes no data is
//!   checked at snapshot isolation and never conflicts with blind appends,
//!   in either direction; ingest's own `txn` checks ignore it too.
//! - Against another compactor: delta-rs (1.1) does not treat two
//!   `dataChange=false` removes of the same file as a conflict, so the log
//!   alone would let two compactors both replace the same files (and
//!   duplicate their rows). Every compaction commit therefore carries one
//!   `txn` per partition it rewrites (`appId = inlet-compactor:<partition>`):
//!   a concurrent commit with the same app id fails with
//!   `ConcurrentTransaction`, and so does any other conflict. On a conflict
//!   the table is re-read and each bin is kept only if all its inputs are
//!   still in the table; bins whose inputs are gone are dropped and their
//!   output deleted; the rest is committed again on the fresh snapshot.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use deltalake::kernel::transaction::{CommitBuilder, CommitConflictError, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Transaction};
use deltalake::protocol::DeltaOperation;
use deltalake::{DeltaTable, DeltaTableError};
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::json;
use tracing::{info, instrument, warn};

use crate::metrics::METRICS;
use crate::rewrite::{store_path, Rewritten};
use crate::CompactError;

/// How many times a conflicting commit is re-checked on a fresh snapshot.
const MAX_ATTEMPTS: usize = 5;

/// What a commit did.
#[derive(Debug, Default)]
pub struct Committed {
    /// The version committed, when anything was.
    pub version: Option<i64>,
    pub rewrites: Vec<Rewritten>,
    /// Bins dropped because their inputs changed meanwhile.
    pub dropped: Vec<(Rewritten, String)>,
}

/// The `txn` app id that fences compactions of one partition.
pub fn fence_app_id(partition: &crate::plan::PartitionKey) -> String {
    format!("inlet-compactor:{partition}")
}

fn is_conflict(e: &DeltaTableError) -> bool {
    matches!(e, DeltaTableError::Transaction { source: TransactionError::CommitConflict(_) })
        || matches!(e, DeltaTableError::Transaction { source: TransactionError::MaxCommitAttempts(_) })
}

/// Commits `rewrites` in one version, re-checking on a fresh snapshot after
/// conflicts (see the module doc).
#[instrument(skip_all, fields(table = %table.table_url(), bins = rewrites.len()))]
pub async fn commit(
    table: &mut DeltaTable,
    store: &Arc<dyn ObjectStore>,
    mut rewrites: Vec<Rewritten>,
    run_id: &str,
    target_size: u64,
) -> Result<Committed, CompactError> {
    let mut out = Committed::default();
    for attempt in 0..MAX_ATTEMPTS {
        table.update_incremental(None).await.map_err(|e| CompactError::delta(table, e))?;
        let snapshot = table.snapshot().map_err(|e| CompactError::delta(table, e))?;
        let live: HashSet<String> = snapshot.log_data().iter().map(|f| f.path().to_string()).collect();
        let (keep, gone): (Vec<_>, Vec<_>) = rewrites.into_iter().partition(|r| r.bin.files.iter().all(|f| live.contains(&f.path)));
        for r in gone {
            warn!(partition = %r.bin.partition, "inputs of a bin changed meanwhile: dropping its output");
            let _ = store.delete(&store_path(&decode(&r.add.path))).await;
            out.dropped.push((r, "its input files were rewritten or removed by a concurrent commit".into()));
        }
        if keep.is_empty() {
            return Ok(out);
        }
        let read_version = snapshot.version() as i64;
        let now = chrono::Utc::now().timestamp_millis();
        let partitions: BTreeSet<_> = keep.iter().map(|r| r.bin.partition.clone()).collect();
        let mut actions = Vec::new();
        for p in &partitions {
            actions.push(Action::Txn(Transaction::new_with_last_update(fence_app_id(p), read_version, Some(now))));
        }
        let (mut files_removed, mut bytes_removed, mut bytes_added, mut rows) = (0u64, 0u64, 0u64, 0u64);
        for r in &keep {
            for rm in r.removes() {
                actions.push(Action::Remove(rm));
            }
            actions.push(Action::Add(r.add.clone()));
            files_removed += r.bin.files.len() as u64;
            bytes_removed += r.bin.bytes();
            bytes_added += r.bytes_out();
            rows += r.rows;
        }
        let metrics = json!({
            "numRemovedFiles": files_removed,
            "numAddedFiles": keep.len(),
            "numRemovedBytes": bytes_removed,
            "numAddedBytes": bytes_added,
            "numRowsRewritten": rows,
            "numPartitionsOptimized": partitions.len(),
            "numBatches": keep.len(),
        });
        let mut props = CommitProperties::default();
        props = props.with_metadata([
            ("readVersion".to_string(), json!(read_version)),
            ("operationMetrics".to_string(), metrics),
            ("inlet.runId".to_string(), json!(run_id)),
            ("engineInfo".to_string(), json!(format!("inlet-compactor/{}", env!("CARGO_PKG_VERSION")))),
        ]);
        let predicate = partitions.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" OR ");
        let op = DeltaOperation::Optimize { predicate: Some(predicate), target_size: target_size as i64 };
        let result = CommitBuilder::from(props).with_actions(actions).build(Some(snapshot), table.log_store(), op).await;
        match result {
            Ok(finalized) => {
                let version = finalized.version() as i64;
                table.state = Some(finalized.snapshot());
                info!(version, bins = keep.len(), files_removed, bytes_removed, bytes_added, "committed compaction");
                out.version = Some(version);
                out.rewrites = keep;
                return Ok(out);
            }
            Err(e) if is_conflict(&e) && attempt + 1 < MAX_ATTEMPTS => {
                METRICS.commit_conflicts.inc();
                warn!(attempt, error = %e, "compaction commit conflicted; re-checking on a fresh snapshot");
                rewrites = keep;
            }
            Err(e) => {
                if let DeltaTableError::Transaction { source: TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction) } = &e {
                    METRICS.commit_conflicts.inc();
                }
                // Outputs are left in place: whether the commit landed is
                // unknown for storage errors; vacuum removes them if not.
                return Err(CompactError::delta(table, e));
            }
        }
    }
    unreachable!("the last attempt returns")
}

fn decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&path[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn decode_reverses_encode() {
        let p = "ts=2026-01-01 10:00/x.parquet";
        assert_eq!(super::decode(&crate::rewrite::encode_path(p)), p);
    }
}
