//! One compaction run of one table: lease, plan, rewrite bins concurrently
//! under the shared memory budget, commit in parts, upkeep, record.
//!
//! ```ignore
//! let report = Compaction::new(policy, ledger, budget).with_partitions(filters).await?;
//! ```

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use deltalake::DeltaTable;
use object_store::ObjectStore;
use tokio::task::JoinSet;
use tracing::{info, instrument, warn, Instrument};

use crate::commit;
use crate::ledger::{CompactionRun, Ledger, Outcome, TableStats};
use crate::metrics::METRICS;
use crate::plan::{self, Plan};
use crate::policy::Policy;
use crate::rewrite::{self, BinFailure, MemoryBudget, RewriteOptions, Rewritten};
use crate::vacuum::{self, VacuumReport};
use crate::CompactError;

/// Progress of a run, for terminals.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub bins_done: usize,
    pub bins_total: usize,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// What a run did.
#[derive(Debug)]
pub struct Report {
    pub run: CompactionRun,
    pub plan: Option<Plan>,
    pub failures: Vec<BinFailure>,
    pub vacuum: Option<VacuumReport>,
    pub checkpoint: Option<i64>,
}

/// A compaction run, configured with builder methods and awaited.
pub struct Compaction {
    pub(crate) policy: Policy,
    pub(crate) ledger: Arc<dyn Ledger>,
    pub(crate) budget: MemoryBudget,
    pub(crate) filters: Vec<(String, String)>,
    pub(crate) dry_run: bool,
    vacuum: bool,
    pub(crate) owner: String,
    pub(crate) lease_ttl: Duration,
    pub(crate) deadline: Option<Instant>,
    pub(crate) progress: Option<ProgressFn>,
}

impl Compaction {
    pub fn new(policy: Policy, ledger: Arc<dyn Ledger>, budget: MemoryBudget) -> Self {
        let owner = format!("{}:{}:{}", hostname(), std::process::id(), uuid::Uuid::new_v4().simple());
        Self { policy, ledger, budget, filters: Vec::new(), dry_run: false, vacuum: false, owner, lease_ttl: Duration::from_secs(300), deadline: None, progress: None }
    }
    /// Only partitions matching every `col=value`.
    pub fn with_partitions(mut self, filters: Vec<(String, String)>) -> Self {
        self.filters = filters;
        self
    }
    /// Plan only: nothing is written, committed or recorded.
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
    /// Vacuum after compacting, with the policy's retention.
    pub fn with_vacuum(mut self, vacuum: bool) -> Self {
        self.vacuum = vacuum;
        self
    }
    /// The lease owner id (default: host, pid and a random id).
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }
    /// Start no bin after this instant (the end of a time window).
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }
    pub fn with_progress(mut self, progress: ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }

    async fn open(&self) -> Result<DeltaTable, CompactError> {
        let table = inlet_table::DeltaTable::open(&self.policy.location).await?.ok_or_else(|| CompactError::NoTable(self.policy.location.display.clone()))?;
        Ok(table.delta().clone())
    }

    /// Plans without taking the lease.
    pub async fn plan(&self) -> Result<Plan, CompactError> {
        if let Some(h) = &self.policy.hive {
            return Ok(crate::hive::HiveRun::open(self, h).await?.plan(self).await?.0);
        }
        let table = self.open().await?;
        plan::plan(&table, &self.policy, &self.filters).await
    }

    #[instrument(name = "compaction_run", skip_all, fields(table = %self.policy.name, dry_run = self.dry_run))]
    async fn execute(self) -> Result<Report, CompactError> {
        if let Some(h) = self.policy.hive.clone() {
            return crate::hive::execute(self, &h).await;
        }
        let clock = Instant::now();
        let mut record = self.new_record();
        let run_id = record.run_id.clone();
        let safe = inlet_config::SAFE_VACUUM_RETENTION_HOURS;
        if self.vacuum && self.policy.vacuum.retention_hours < safe && !self.policy.vacuum.force {
            return Err(CompactError::UnsafeRetention { hours: self.policy.vacuum.retention_hours, minimum: safe });
        }
        let mut table = self.open().await?;
        self.check_sort_columns(&table)?;
        if self.dry_run {
            let plan = plan::plan(&table, &self.policy, &self.filters).await?;
            return Ok(Report { run: record, plan: Some(plan), failures: Vec::new(), vacuum: None, checkpoint: None });
        }

        if !self.take_lease().await? {
            return self.skipped(record).await;
        }
        let result = self.compact(&mut table, &run_id, &mut record).await;
        let _ = self.ledger.release_lease(&self.policy.lease_name(), &self.owner).await;
        let (plan, failures, vacuum, checkpoint) = match result {
            Ok(parts) => parts,
            Err(e) => return Err(self.failed(record, e).await),
        };
        self.finished(&mut record, clock).await?;
        Ok(Report { run: record, plan: Some(plan), failures, vacuum, checkpoint })
    }

    /// The record of a run starting now.
    pub(crate) fn new_record(&self) -> CompactionRun {
        let started = Utc::now();
        CompactionRun {
            run_id: uuid::Uuid::new_v4().to_string(),
            table: self.policy.location.display.clone(),
            started,
            finished: started,
            files_in: 0,
            bytes_in: 0,
            files_out: 0,
            bytes_out: 0,
            versions: Vec::new(),
            outcome: Outcome::Succeeded,
            message: None,
        }
    }

    /// Takes the table's lease; false when another compactor holds it.
    pub(crate) async fn take_lease(&self) -> Result<bool, CompactError> {
        Ok(self.ledger.try_acquire_lease(&self.policy.lease_name(), &self.owner, self.lease_ttl).await?)
    }

    /// Records a run that did not start because the lease was taken.
    pub(crate) async fn skipped(&self, mut record: CompactionRun) -> Result<Report, CompactError> {
        info!(lease = %self.policy.lease_name(), "another compactor holds the table's lease; skipping");
        record.outcome = Outcome::Skipped;
        record.message = Some("another compactor holds the table's lease".into());
        record.finished = Utc::now();
        self.ledger.record_run(&record).await?;
        METRICS.runs.with_label_values(&[&self.policy.name, record.outcome.as_str()]).inc();
        Ok(Report { run: record, plan: None, failures: Vec::new(), vacuum: None, checkpoint: None })
    }

    /// Records a run that stopped on an error; returns the error.
    pub(crate) async fn failed(&self, mut record: CompactionRun, e: CompactError) -> CompactError {
        record.outcome = if record.versions.is_empty() && record.files_out == 0 { Outcome::Failed } else { Outcome::Partial };
        record.message = Some(e.to_string());
        record.finished = Utc::now();
        let _ = self.ledger.record_run(&record).await;
        METRICS.runs.with_label_values(&[&self.policy.name, record.outcome.as_str()]).inc();
        e
    }

    /// Records a run that ran to its end, with its metrics.
    pub(crate) async fn finished(&self, record: &mut CompactionRun, clock: Instant) -> Result<(), CompactError> {
        record.finished = Utc::now();
        let name = &self.policy.name;
        METRICS.runs.with_label_values(&[name, record.outcome.as_str()]).inc();
        METRICS.run_seconds.with_label_values(&[name]).observe(clock.elapsed().as_secs_f64());
        METRICS.last_run_timestamp_seconds.with_label_values(&[name]).set(Utc::now().timestamp_millis() as f64 / 1000.0);
        if record.outcome == Outcome::Succeeded {
            METRICS.last_success_timestamp_seconds.with_label_values(&[name]).set(Utc::now().timestamp_millis() as f64 / 1000.0);
        }
        self.ledger.record_run(record).await?;
        info!(outcome = record.outcome.as_str(), files_in = record.files_in, files_out = record.files_out, bytes_in = record.bytes_in, bytes_out = record.bytes_out, ms = clock.elapsed().as_millis() as u64, "compaction run finished");
        Ok(())
    }

    /// A `sort_by` column the table lacks (a typo, a dropped column) is an
    /// error, not a silently unsorted rewrite.
    fn check_sort_columns(&self, table: &DeltaTable) -> Result<(), CompactError> {
        if self.policy.sort_by.is_empty() {
            return Ok(());
        }
        let snapshot = table.snapshot().map_err(|e| CompactError::delta(table, e))?;
        let partition_columns = snapshot.metadata().partition_columns().to_vec();
        let columns: Vec<String> = snapshot.schema().fields().map(|f| f.name().to_string()).filter(|n| !partition_columns.contains(n)).collect();
        for c in &self.policy.sort_by {
            if partition_columns.contains(c) {
                return Err(CompactError::Policy { table: self.policy.name.clone(), reason: format!("sort_by column `{c}` is a partition column: it is constant within a file; sort by data columns ({})", columns.join(", ")) });
            }
            if !columns.contains(c) {
                return Err(CompactError::Policy { table: self.policy.name.clone(), reason: format!("sort_by column `{c}` is not a column of the table (columns: {})", columns.join(", ")) });
            }
        }
        Ok(())
    }

    async fn compact(&self, table: &mut DeltaTable, run_id: &str, record: &mut CompactionRun) -> Result<(Plan, Vec<BinFailure>, Option<VacuumReport>, Option<i64>), CompactError> {
        let plan = plan::plan(table, &self.policy, &self.filters).await?;
        info!(version = plan.version, bins = plan.bins.len(), files = plan.files_in(), bytes = plan.bytes_in(), "planned");
        let store: Arc<dyn ObjectStore> = table.log_store().object_store(None);
        let snapshot = table.snapshot().map_err(|e| CompactError::delta(table, e))?;
        let partition_columns = snapshot.metadata().partition_columns().to_vec();
        let table_schema = inlet_table::DeltaTable::open(&self.policy.location).await?.ok_or_else(|| CompactError::NoTable(self.policy.location.display.clone()))?.arrow_schema()?;
        let per_rewrite = (self.budget.total_bytes() / self.policy.max_concurrent_rewrites as u64).min(256 * 1024 * 1024);
        let options = Arc::new(RewriteOptions { file_schema: rewrite::file_schema(&table_schema, &partition_columns), sort_by: self.policy.sort_by.clone(), reservation_bytes: per_rewrite, output_dir: None, compression: self.policy.compression });

        let bins_total = plan.bins.len();
        let bytes_total = plan.bytes_in();
        let mut progress = Progress { bins_done: 0, bins_total, bytes_done: 0, bytes_total };
        let mut failures = Vec::new();
        let mut pending: Vec<Rewritten> = Vec::new();
        let mut pending_bytes = 0u64;
        let mut queue = plan.bins.clone().into_iter();
        let mut running: JoinSet<Result<Rewritten, BinFailure>> = JoinSet::new();
        let mut stopped = None;
        loop {
            while running.len() < self.policy.max_concurrent_rewrites && stopped.is_none() {
                if self.deadline.is_some_and(|d| Instant::now() >= d) {
                    stopped = Some("the time window closed");
                    break;
                }
                let Some(bin) = queue.next() else { break };
                let (store, options, budget) = (store.clone(), options.clone(), self.budget.clone());
                let need = if options.sort_by.is_empty() { options.reservation_bytes } else { bin.bytes() * 6 + 32 * 1024 * 1024 };
                let span = tracing::info_span!("bin", partition = %bin.partition, files = bin.files.len());
                running.spawn(
                    async move {
                        let reservation = budget.reserve(need).await;
                        METRICS.memory_reserved_bytes.add(reservation.bytes as i64);
                        let r = rewrite::rewrite_bin(store, bin, &options).await;
                        METRICS.memory_reserved_bytes.sub(reservation.bytes as i64);
                        r
                    }
                    .instrument(span),
                );
            }
            let Some(done) = running.join_next().await else { break };
            let done = done.map_err(|e| CompactError::Task(e.to_string()))?;
            progress.bins_done += 1;
            match done {
                Ok(r) => {
                    progress.bytes_done += r.bin.bytes();
                    pending_bytes += r.bin.bytes();
                    pending.push(r);
                }
                Err(f) => {
                    warn!(error = %f, "bin failed; its files stay as they are");
                    METRICS.bin_failures.with_label_values(&[&self.policy.name]).inc();
                    failures.push(f);
                }
            }
            if let Some(p) = &self.progress {
                p(progress);
            }
            if pending_bytes >= self.policy.max_bytes_per_commit {
                self.commit_part(table, &store, std::mem::take(&mut pending), run_id, record).await?;
                pending_bytes = 0;
                if !self.ledger.renew_lease(&self.policy.lease_name(), &self.owner, self.lease_ttl).await? {
                    stopped = Some("the lease was lost");
                }
            }
        }
        if !pending.is_empty() {
            self.commit_part(table, &store, pending, run_id, record).await?;
        }
        record.outcome = match (failures.is_empty(), record.versions.is_empty()) {
            (true, _) => Outcome::Succeeded,
            (false, true) => Outcome::Failed,
            (false, false) => Outcome::Partial,
        };
        let mut notes: Vec<String> = failures.iter().map(|f| f.to_string()).collect();
        if let Some(why) = stopped {
            let left = queue.len();
            info!(reason = why, bins_left = left, "run stopped early; the remaining bins wait for the next run");
            notes.push(format!("stopped early ({why}): {left} of {bins_total} bins left for the next run"));
        }
        if !notes.is_empty() {
            record.message = Some(notes.join("; "));
        }

        // Upkeep.
        let checkpoint = if record.versions.is_empty() { None } else { vacuum::checkpoint_if_due(table, self.policy.checkpoint_interval_commits).await? };
        let vacuumed = if self.vacuum { Some(vacuum::vacuum(table, self.policy.vacuum.retention_hours, self.policy.vacuum.force, false).await?) } else { None };
        if let Some(v) = &vacuumed {
            METRICS.vacuum_deleted_files.with_label_values(&[&self.policy.name]).inc_by(v.files_deleted.len() as u64);
        }
        let stats = self.table_stats(table)?;
        METRICS.table_files.with_label_values(&[&self.policy.name]).set(stats.files as i64);
        let small = plan::files_by_partition(table)?.values().flatten().filter(|f| f.size < self.policy.small_file_bytes).count();
        METRICS.small_files.with_label_values(&[&self.policy.name]).set(small as i64);
        self.ledger.update_table_stats(&self.policy.location.display, stats).await?;
        Ok((plan, failures, vacuumed, checkpoint))
    }

    async fn commit_part(&self, table: &mut DeltaTable, store: &Arc<dyn ObjectStore>, rewrites: Vec<Rewritten>, run_id: &str, record: &mut CompactionRun) -> Result<(), CompactError> {
        let committed = commit::commit(table, store, rewrites, run_id, self.policy.target_file_size_bytes).await?;
        if let Some(v) = committed.version {
            record.versions.push(v);
        }
        let name = &self.policy.name;
        for r in &committed.rewrites {
            record.files_in += r.bin.files.len() as u64;
            record.bytes_in += r.bin.bytes();
            record.files_out += 1;
            record.bytes_out += r.bytes_out();
            METRICS.files_read.with_label_values(&[name]).inc_by(r.bin.files.len() as u64);
            METRICS.bytes_read.with_label_values(&[name]).inc_by(r.bin.bytes());
            METRICS.files_written.with_label_values(&[name]).inc();
            METRICS.bytes_written.with_label_values(&[name]).inc_by(r.bytes_out());
        }
        Ok(())
    }

    fn table_stats(&self, table: &DeltaTable) -> Result<TableStats, CompactError> {
        let snapshot = table.snapshot().map_err(|e| CompactError::delta(table, e))?;
        let (mut files, mut bytes, mut rows) = (0u64, 0u64, Some(0u64));
        for f in snapshot.log_data().iter() {
            files += 1;
            bytes += f.size().max(0) as u64;
            rows = match (rows, f.num_records()) {
                (Some(r), Some(n)) => Some(r + n as u64),
                _ => None,
            };
        }
        Ok(TableStats { files, bytes, rows })
    }
}

impl IntoFuture for Compaction {
    type Output = Result<Report, CompactError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.execute())
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME").ok().or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|s| s.trim().to_string())).unwrap_or_else(|| "localhost".into())
}
