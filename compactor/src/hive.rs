//! Compaction of `format: hive` tables (docs/hive-format.md): a closed
//! partition's small files are merged into new files in a new directory,
//! `<table>/.compacted/<run id>/<partition>/`, together with copies of the
//! files that needed no merging; then one catalog transaction switches the
//! partition's location, fenced by the table's commit log. A reader resolves
//! a partition's location once per query, so it sees either every old file
//! or every new one. The old files are deleted once the grace period
//! (`hive_grace_period_secs`, longer than the longest query) has passed.
//!
//! Only partitions closed by partition commit are compacted: a partition
//! the stream is still writing is never touched. Leases, dry runs and run
//! records are those of Delta compaction.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use deltalake::arrow::datatypes::SchemaRef;
use futures::TryStreamExt;
use inlet_metastore::catalog::Relocation;
use inlet_metastore::names::{parse_part_name, DEFAULT_PARTITION_NAME};
use inlet_metastore::register::{hive_arrow_schema, hive_file_schema};
use inlet_metastore::store::hive::{self as log, PartitionTotals};
use inlet_metastore::store::{now_ms, Store};
use inlet_metastore::{Actor, Catalog};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::task::JoinSet;
use tracing::{info, instrument, warn, Instrument};

use crate::ledger::{CompactionRun, Outcome, TableStats};
use crate::metrics::METRICS;
use crate::plan::{self, Bin, InputFile, PartitionKey, Plan};
use crate::policy::{HiveTable, Policy};
use crate::rewrite::{self, BinFailure, RewriteOptions, Rewritten};
use crate::run::{Compaction, Progress, Report};
use crate::CompactError;

/// Where compacted partitions live, under the table (hidden from readers
/// that discover partitions by listing directories).
pub const COMPACTED_DIR: &str = ".compacted";
/// Files deleted per pass over due deletions.
const DELETE_BATCH: i64 = 1000;

fn policy_err(table: &str, reason: impl std::fmt::Display) -> CompactError {
    CompactError::Policy { table: table.to_string(), reason: reason.to_string() }
}

/// One partition as the plan saw it.
#[derive(Debug, Clone)]
pub struct PartitionState {
    pub totals: PartitionTotals,
    /// Every visible file in its directory.
    pub files: Vec<InputFile>,
}

/// An open Hive table: its catalog, commit log and storage.
pub struct HiveRun {
    name: String,
    catalog: Catalog,
    key: String,
    store: Arc<dyn ObjectStore>,
    /// The table's location as engines write it (`file:/...`, `s3://...`).
    engine_location: String,
    table: HiveTable,
}

impl HiveRun {
    pub async fn open(c: &Compaction, h: &HiveTable) -> Result<HiveRun, CompactError> {
        Self::open_policy(&c.policy, h).await
    }

    async fn open_policy(policy: &Policy, h: &HiveTable) -> Result<HiveRun, CompactError> {
        let name = policy.name.clone();
        let store = Store::open(&h.catalog.database_url, h.catalog.migrate_on_start).await.map_err(|e| policy_err(&name, format!("catalog database: {e}")))?;
        let catalog = Catalog::new(store, &h.warehouse);
        let location = &policy.location;
        Ok(HiveRun { name, catalog, key: log::table_key(&location.display), store: location.object_store()?, engine_location: location.engine_uri(), table: h.clone() })
    }

    /// Data files of the table (Parquet only: Hive readers skip `.` and `_`
    /// names, and so does this).
    async fn list_files(&self, dir: &str) -> Result<Vec<(String, u64)>, CompactError> {
        let prefix = Path::from(dir);
        let listed: Vec<_> = self.store.list(Some(&prefix)).try_collect().await.map_err(|e| policy_err(&self.name, format!("listing {dir}: {e}")))?;
        let mut out = Vec::new();
        for o in listed {
            let rel = o.location.as_ref().strip_prefix(&format!("{dir}/")).unwrap_or(o.location.as_ref());
            // Only the partition's own files: no subdirectories, no hidden names.
            if rel.contains('/') || rel.starts_with('.') || rel.starts_with('_') {
                continue;
            }
            out.push((o.location.to_string(), o.size));
        }
        out.sort();
        Ok(out)
    }

    /// Plans over the closed partitions: bins of small files per partition,
    /// as Delta compaction plans them.
    pub async fn plan(&self, c: &Compaction) -> Result<(Plan, HashMap<PartitionKey, PartitionState>), CompactError> {
        let (totals, seq) = {
            let mut conn = self.catalog.store().reader().await.map_err(|e| policy_err(&self.name, e))?;
            let totals = log::partitions(&mut conn, &self.key).await.map_err(|e| policy_err(&self.name, e))?;
            let seq = totals_seq(&totals);
            (totals, seq)
        };
        let mut files = BTreeMap::new();
        let mut active = HashSet::new();
        let mut states = HashMap::new();
        for t in totals {
            let pairs = parse_part_name(&t.part_name).map_err(|e| policy_err(&self.name, e))?;
            let key = PartitionKey::from_map(pairs.iter().map(|(k, v)| (k.clone(), (v != DEFAULT_PARTITION_NAME).then(|| v.clone()))));
            if !key.matches(&c.filters) {
                continue;
            }
            let closed = t.closed_seq.is_some_and(|s| s >= t.commit_seq);
            if !closed {
                active.insert(key.clone());
                files.insert(key, Vec::new());
                continue;
            }
            let values: HashMap<String, Option<String>> = key.0.iter().cloned().collect();
            let listed: Vec<InputFile> = self
                .list_files(&t.location)
                .await?
                .into_iter()
                .map(|(path, size)| InputFile { path, size, rows: None, stats: None, partition_values: values.clone() })
                .collect();
            files.insert(key.clone(), listed.clone());
            states.insert(key, PartitionState { totals: t, files: listed });
        }
        let mut plan = plan::plan_files(&c.policy, seq, files, &active, &c.filters);
        for s in &mut plan.skipped {
            s.reason = "not closed by partition commit (the stream may still write it)".into();
        }
        Ok((plan, states))
    }

    /// Deletes files whose grace period has passed.
    async fn delete_due(&self) -> Result<usize, CompactError> {
        let mut total = 0;
        loop {
            let due = {
                let mut conn = self.catalog.store().reader().await.map_err(|e| policy_err(&self.name, e))?;
                log::due_deletes(&mut conn, &self.key, now_ms(), DELETE_BATCH).await.map_err(|e| policy_err(&self.name, e))?
            };
            if due.is_empty() {
                return Ok(total);
            }
            for p in &due {
                match self.store.delete(&Path::from(p.as_str())).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(policy_err(&self.name, format!("deleting {p}: {e}"))),
                }
            }
            self.remove_empty_dirs(&due);
            self.catalog
                .store()
                .transact(|c| {
                    let (key, due) = (self.key.clone(), due.clone());
                    Box::pin(async move { log::deleted(c, &key, &due).await })
                })
                .await
                .map_err(|e| policy_err(&self.name, e))?;
            total += due.len();
            METRICS.vacuum_deleted_files.with_label_values(&[&self.name]).inc_by(due.len() as u64);
            if (due.len() as i64) < DELETE_BATCH {
                return Ok(total);
            }
        }
    }

    /// A local filesystem keeps emptied directories; object stores have none.
    fn remove_empty_dirs(&self, paths: &[String]) {
        let Ok(root) = self.table_root() else { return };
        let dirs: HashSet<std::path::PathBuf> = paths.iter().filter_map(|p| root.join(p).parent().map(|d| d.to_path_buf())).collect();
        for mut d in dirs {
            // Up to (not including) the table root, while empty.
            while d.starts_with(&root) && d != root && std::fs::remove_dir(&d).is_ok() {
                match d.parent() {
                    Some(p) => d = p.to_path_buf(),
                    None => break,
                }
            }
        }
    }

    fn table_root(&self) -> Result<std::path::PathBuf, ()> {
        self.engine_location.strip_prefix("file:").map(std::path::PathBuf::from).ok_or(())
    }

    async fn file_schema(&self) -> Result<SchemaRef, CompactError> {
        let t = self.catalog.get_table(&self.table.database, &self.table.table).await.map_err(|e| policy_err(&self.name, format!("{}.{}: {e}", self.table.database, self.table.table)))?;
        let schema = hive_arrow_schema(&t).ok_or_else(|| policy_err(&self.name, "the catalog table was not created by inlet (no `inlet.arrow.schema`)"))?;
        let keys: Vec<String> = t.partition_keys.iter().flatten().filter_map(|k| k.name.clone()).collect();
        Ok(hive_file_schema(&schema, &keys))
    }

    /// Rewrites one partition into `new_dir` and switches it there. Returns
    /// the rewrites, or why the partition was left as it was.
    #[instrument(skip_all, fields(partition = %state.totals.part_name))]
    async fn compact_partition(&self, c: &Compaction, state: &PartitionState, bins: Vec<Bin>, new_dir: &str, options: &RewriteOptions) -> Result<Vec<Rewritten>, String> {
        let options = Arc::new(RewriteOptions { output_dir: Some(new_dir.to_string()), ..options.clone() });
        let mut running: JoinSet<Result<Rewritten, BinFailure>> = JoinSet::new();
        let mut queue = bins.into_iter();
        let mut done = Vec::new();
        let mut failed = None;
        loop {
            while running.len() < c.policy.max_concurrent_rewrites && failed.is_none() {
                let Some(bin) = queue.next() else { break };
                let (store, options, budget) = (self.store.clone(), options.clone(), c.budget.clone());
                let span = tracing::info_span!("bin", files = bin.files.len());
                running.spawn(
                    async move {
                        let reservation = budget.reserve(options.reservation_bytes).await;
                        METRICS.memory_reserved_bytes.add(reservation.bytes as i64);
                        let r = rewrite::rewrite_bin(store, bin, &options).await;
                        METRICS.memory_reserved_bytes.sub(reservation.bytes as i64);
                        r
                    }
                    .instrument(span),
                );
            }
            let Some(r) = running.join_next().await else { break };
            match r {
                Ok(Ok(r)) => done.push(r),
                Ok(Err(f)) => failed = Some(f.to_string()),
                Err(e) => failed = Some(format!("rewrite task failed: {e}")),
            }
        }
        let discard = |done: &Vec<Rewritten>, extra: &[String]| {
            let store = self.store.clone();
            let paths: Vec<String> = done.iter().map(|r| r.add.path.clone()).chain(extra.iter().cloned()).collect();
            async move {
                for p in paths {
                    let _ = store.delete(&rewrite::store_path(&p)).await;
                }
            }
        };
        if let Some(why) = failed {
            discard(&done, &[]).await;
            return Err(why);
        }

        // The files no bin took move along as copies (a server-side copy on
        // object stores, a hard link or copy on a filesystem).
        let merged: HashSet<&str> = done.iter().flat_map(|r| r.bin.files.iter().map(|f| f.path.as_str())).collect();
        let mut copied = Vec::new();
        let mut new_size: i64 = done.iter().map(|r| r.add.size).sum();
        for f in state.files.iter().filter(|f| !merged.contains(f.path.as_str())) {
            let name = f.path.rsplit('/').next().unwrap_or(&f.path);
            let to = format!("{new_dir}/{name}");
            if let Err(e) = self.store.copy(&Path::from(f.path.as_str()), &Path::from(to.as_str())).await {
                discard(&done, &copied).await;
                return Err(format!("copying {} to {to}: {e}", f.path));
            }
            new_size += f.size as i64;
            copied.push(to);
        }
        let success = format!("{new_dir}/_SUCCESS");
        if let Err(e) = self.store.put(&Path::from(success.as_str()), Vec::<u8>::new().into()).await {
            discard(&done, &copied).await;
            return Err(format!("writing {success}: {e}"));
        }
        let mut old_files: Vec<String> = state.files.iter().map(|f| f.path.clone()).collect();
        old_files.push(format!("{}/_SUCCESS", state.totals.location));
        let relocation = Relocation {
            part_name: state.totals.part_name.clone(),
            table_key: self.key.clone(),
            expected_commit_seq: state.totals.commit_seq,
            expected_location: state.totals.location.clone(),
            new_location: new_dir.to_string(),
            new_location_uri: format!("{}/{new_dir}", self.engine_location.trim_end_matches('/')),
            num_files: (done.len() + copied.len()) as i64,
            total_size: new_size,
            old_files,
            delete_due_ms: now_ms() + c.policy.hive_grace_period.as_millis() as i64,
        };
        let actor = Actor::compactor(&c.owner);
        match self.catalog.relocate_partition(&actor, &self.table.database, &self.table.table, &relocation).await {
            Ok(true) => Ok(done),
            Ok(false) => {
                discard(&done, &copied).await;
                let _ = self.store.delete(&Path::from(success.as_str())).await;
                Err("a writer added files to the partition during the rewrite; left for the next run".into())
            }
            Err(e) => {
                // The outcome is unknown: the new directory may be live now.
                // Its files stay; an unused one only costs space.
                Err(format!("switching the partition's location: {e}"))
            }
        }
    }
}

/// Which health trigger holds for a Hive table, if any. Judged from the
/// commit log's per-partition totals (no listing): a closed partition whose
/// files average below `small_file_bytes` counts all its files as small.
/// Partitions not closed never count: they are not compacted.
pub async fn triggered(policy: &Policy, h: &HiveTable) -> Result<Option<String>, CompactError> {
    if policy.trigger_small_files_per_partition.is_none() && policy.trigger_small_files_total.is_none() {
        return Ok(None);
    }
    let run = HiveRun::open_policy(policy, h).await?;
    let totals = {
        let mut conn = run.catalog.store().reader().await.map_err(|e| policy_err(&run.name, e))?;
        log::partitions(&mut conn, &run.key).await.map_err(|e| policy_err(&run.name, e))?
    };
    Ok(trigger_from_totals(policy, &totals))
}

fn trigger_from_totals(policy: &Policy, totals: &[PartitionTotals]) -> Option<String> {
    let mut total = 0u64;
    for t in totals {
        let closed = t.closed_seq.is_some_and(|s| s >= t.commit_seq);
        if !closed || t.num_files < 2 || t.total_size / t.num_files >= policy.small_file_bytes as i64 {
            continue;
        }
        let small = t.num_files as u64;
        total += small;
        if let Some(k) = policy.trigger_small_files_per_partition {
            if small > k {
                return Some(format!("partition {} holds {small} small files (more than {k})", t.part_name));
            }
        }
    }
    match policy.trigger_small_files_total {
        Some(k) if total > k => Some(format!("the table holds {total} small files in closed partitions (more than {k})")),
        _ => None,
    }
}

/// The table's newest commit among the partitions (the plan's "version").
fn totals_seq(totals: &[PartitionTotals]) -> i64 {
    totals.iter().map(|t| t.commit_seq).max().unwrap_or(-1)
}

/// Runs a compaction of a Hive table.
pub(crate) async fn execute(c: Compaction, h: &HiveTable) -> Result<Report, CompactError> {
    let clock = Instant::now();
    let mut record = c.new_record();
    let run_id = record.run_id.clone();
    let run = HiveRun::open(&c, h).await?;
    if c.dry_run {
        let (plan, _) = run.plan(&c).await?;
        return Ok(Report { run: record, plan: Some(plan), failures: Vec::new(), vacuum: None, checkpoint: None });
    }
    if !c.take_lease().await? {
        return c.skipped(record).await;
    }
    let result = compact(&c, &run, &run_id, &mut record).instrument(tracing::info_span!("compaction_run", table = %c.policy.name, format = "hive")).await;
    let _ = c.ledger.release_lease(&c.policy.lease_name(), &c.owner).await;
    let (plan, failures) = match result {
        Ok(x) => x,
        Err(e) => return Err(c.failed(record, e).await),
    };
    c.finished(&mut record, clock).await?;
    Ok(Report { run: record, plan: Some(plan), failures, vacuum: None, checkpoint: None })
}

async fn compact(c: &Compaction, run: &HiveRun, run_id: &str, record: &mut CompactionRun) -> Result<(Plan, Vec<BinFailure>), CompactError> {
    let deleted = run.delete_due().await?;
    if deleted > 0 {
        info!(files = deleted, "deleted files replaced by earlier compactions (grace period over)");
    }
    let (plan, states) = run.plan(c).await?;
    info!(bins = plan.bins.len(), files = plan.files_in(), bytes = plan.bytes_in(), "planned");
    let per_rewrite = (c.budget.total_bytes() / c.policy.max_concurrent_rewrites as u64).min(256 * 1024 * 1024);
    let options = RewriteOptions { file_schema: run.file_schema().await?, sort_by: c.policy.sort_by.clone(), reservation_bytes: per_rewrite, output_dir: None, compression: c.policy.compression };
    let mut by_partition: BTreeMap<PartitionKey, Vec<Bin>> = BTreeMap::new();
    for b in &plan.bins {
        by_partition.entry(b.partition.clone()).or_default().push(b.clone());
    }
    let mut progress = Progress { bins_done: 0, bins_total: plan.bins.len(), bytes_done: 0, bytes_total: plan.bytes_in() };
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    for (key, bins) in by_partition {
        if c.deadline.is_some_and(|d| Instant::now() >= d) {
            notes.push("stopped early (the time window closed); the remaining partitions wait for the next run".to_string());
            break;
        }
        let Some(state) = states.get(&key) else { continue };
        let new_dir = format!("{COMPACTED_DIR}/{run_id}/{}", state.totals.part_name);
        let n_bins = bins.len();
        let bytes: u64 = bins.iter().map(Bin::bytes).sum();
        match run.compact_partition(c, state, bins, &new_dir, &options).await {
            Ok(done) => {
                record.files_in += state.files.len() as u64;
                record.bytes_in += state.files.iter().map(|f| f.size).sum::<u64>();
                record.files_out += done.len() as u64 + (state.files.len() - done.iter().map(|r| r.bin.files.len()).sum::<usize>()) as u64;
                record.bytes_out += done.iter().map(|r| r.add.size as u64).sum::<u64>();
                let name = &c.policy.name;
                METRICS.files_read.with_label_values(&[name]).inc_by(done.iter().map(|r| r.bin.files.len() as u64).sum());
                METRICS.bytes_read.with_label_values(&[name]).inc_by(done.iter().map(|r| r.bin.bytes()).sum());
                METRICS.files_written.with_label_values(&[name]).inc_by(done.len() as u64);
                METRICS.bytes_written.with_label_values(&[name]).inc_by(done.iter().map(|r| r.add.size as u64).sum());
                info!(partition = %state.totals.part_name, to = %new_dir, files_before = state.files.len(), "partition compacted and moved");
            }
            Err(why) => {
                warn!(partition = %state.totals.part_name, reason = %why, "partition left as it was");
                METRICS.bin_failures.with_label_values(&[&c.policy.name]).inc();
                failures.push(BinFailure { partition: key.to_string(), file: None, reason: why });
            }
        }
        progress.bins_done += n_bins;
        progress.bytes_done += bytes;
        if let Some(p) = &c.progress {
            p(progress);
        }
        if !c.ledger.renew_lease(&c.policy.lease_name(), &c.owner, c.lease_ttl).await? {
            notes.push("stopped early (the lease was lost)".to_string());
            break;
        }
    }
    record.outcome = match (failures.is_empty(), record.files_out == 0) {
        (true, _) => Outcome::Succeeded,
        (false, true) => Outcome::Failed,
        (false, false) => Outcome::Partial,
    };
    notes.extend(failures.iter().map(|f| f.to_string()));
    if !notes.is_empty() {
        record.message = Some(notes.join("; "));
    }
    // Statistics of the table as the catalog's commit log has them.
    let totals = {
        let mut conn = run.catalog.store().reader().await.map_err(|e| policy_err(&run.name, e))?;
        log::partitions(&mut conn, &run.key).await.map_err(|e| policy_err(&run.name, e))?
    };
    let stats = TableStats { files: totals.iter().map(|t| t.num_files as u64).sum(), bytes: totals.iter().map(|t| t.total_size as u64).sum(), rows: Some(totals.iter().map(|t| t.num_rows as u64).sum()) };
    METRICS.table_files.with_label_values(&[&c.policy.name]).set(stats.files as i64);
    c.ledger.update_table_stats(&c.policy.location.display, stats).await?;
    Ok((plan, failures))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(name: &str, files: i64, size: i64, commit: i64, closed: Option<i64>) -> PartitionTotals {
        PartitionTotals { part_name: name.into(), location: name.into(), num_files: files, num_rows: files * 10, total_size: size, commit_seq: commit, closed_ms: closed.map(|_| 1), closed_seq: closed }
    }

    #[test]
    fn triggers_count_small_files_of_closed_partitions_only() {
        let loc = inlet_table::Location::parse("/tmp/t", &inlet_config::StorageConfig { warehouse: "/tmp".into(), s3: None, options: Default::default() }).unwrap();
        let mut p = Policy::for_location(loc);
        p.small_file_bytes = 1000;
        p.trigger_small_files_per_partition = Some(5);
        let parts = vec![
            totals("dt=1", 10, 5_000, 3, None),      // open: never counts
            totals("dt=2", 10, 5_000, 4, Some(3)),   // written since closed: open again
            totals("dt=3", 4, 2_000, 5, Some(5)),    // closed, 4 small files
            totals("dt=4", 10, 500_000, 6, Some(6)), // closed, large files
        ];
        assert_eq!(trigger_from_totals(&p, &parts), None);
        let mut more = parts.clone();
        more.push(totals("dt=5", 6, 3_000, 7, Some(7)));
        assert_eq!(trigger_from_totals(&p, &more).as_deref(), Some("partition dt=5 holds 6 small files (more than 5)"));
        p.trigger_small_files_per_partition = None;
        p.trigger_small_files_total = Some(9);
        assert!(trigger_from_totals(&p, &more).unwrap().contains("10 small files"));
    }
}
