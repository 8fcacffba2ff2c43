//! Table upkeep after compaction: vacuum (deleting data files no version
//! within the retention needs), checkpoints and log cleanup.
//!
//! Vacuum safety: the retention must exceed the longest-running reader, the
//! longest stream lag and the time travel users rely on. A retention below
//! [`SAFE_VACUUM_RETENTION_HOURS`] (7 days) is refused unless forced, and
//! then delta-rs's own check against the table's
//! `delta.deletedFileRetentionDuration` is lifted too. Vacuum runs in full
//! mode: besides files removed by commits older than the retention, it
//! deletes unreferenced files older than the retention (outputs of runs that
//! never committed, batches of a crashed ingest); newer unreferenced files
//! may belong to a writer about to commit and are kept.

use deltalake::operations::vacuum::VacuumMode;
use deltalake::DeltaTable;
use inlet_config::SAFE_VACUUM_RETENTION_HOURS;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use tracing::{info, instrument};

use crate::CompactError;

/// What vacuum did (or, dry, would do).
#[derive(Debug, Default, Clone)]
pub struct VacuumReport {
    pub dry_run: bool,
    pub files_deleted: Vec<String>,
}

/// Vacuums `table` with `retention_hours`; see the module doc.
#[instrument(skip_all, fields(table = %table.table_url(), retention_hours, force, dry_run))]
pub async fn vacuum(table: &mut DeltaTable, retention_hours: u64, force: bool, dry_run: bool) -> Result<VacuumReport, CompactError> {
    if retention_hours < SAFE_VACUUM_RETENTION_HOURS && !force {
        return Err(CompactError::UnsafeRetention { hours: retention_hours, minimum: SAFE_VACUUM_RETENTION_HOURS });
    }
    table.update_incremental(None).await.map_err(|e| CompactError::delta(table, e))?;
    let (after, metrics) = table
        .clone()
        .vacuum()
        .with_retention_period(chrono::Duration::hours(retention_hours as i64))
        .with_enforce_retention_duration(!force)
        .with_mode(VacuumMode::Full)
        .with_dry_run(dry_run)
        .await
        .map_err(|e| CompactError::delta(table, e))?;
    *table = after;
    info!(files = metrics.files_deleted.len(), dry_run, "vacuumed");
    Ok(VacuumReport { dry_run, files_deleted: metrics.files_deleted })
}

/// The version of the table's last checkpoint (-1 when none).
async fn last_checkpoint(table: &DeltaTable) -> i64 {
    let store = table.log_store().object_store(None);
    match store.get(&Path::from("_delta_log/_last_checkpoint")).await {
        Ok(r) => match r.bytes().await {
            Ok(b) => serde_json::from_slice::<serde_json::Value>(&b).ok().and_then(|v| v.get("version").and_then(|v| v.as_i64())).unwrap_or(-1),
            Err(_) => -1,
        },
        Err(_) => -1,
    }
}

/// Writes a checkpoint when `interval` or more commits were made since the
/// last one, then removes log entries older than the table's
/// `delta.logRetentionDuration`. Returns the checkpoint version written.
#[instrument(skip_all, fields(table = %table.table_url(), interval))]
pub async fn checkpoint_if_due(table: &mut DeltaTable, interval: u64) -> Result<Option<i64>, CompactError> {
    table.update_incremental(None).await.map_err(|e| CompactError::delta(table, e))?;
    let version = table.version().map(|v| v as i64).unwrap_or(-1);
    let last = last_checkpoint(table).await;
    if version < 0 || version - last < interval as i64 {
        return Ok(None);
    }
    deltalake::checkpoints::create_checkpoint(table, None).await.map_err(|e| CompactError::delta(table, e))?;
    let removed = deltalake::checkpoints::cleanup_metadata(table, None).await.map_err(|e| CompactError::delta(table, e))?;
    info!(version, logs_removed = removed, "checkpoint written");
    Ok(Some(version))
}
