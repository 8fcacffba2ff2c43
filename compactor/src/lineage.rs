//! Lineage of compaction runs: each is an OpenLineage BATCH job run
//! (`compaction.<db.table>`) with the table as input, at the version the run
//! planned from, and as output, at the last version it wrote, with the files
//! and bytes written. The events are emitted when the run ends (START at the
//! run's start time, then COMPLETE or FAIL), through the same never-blocking
//! emitter as ingestion.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use inlet_config::Config;
use inlet_lineage::events::{BatchOutcome, BatchRun};
use inlet_lineage::{naming, Emitter};

use crate::ledger::Outcome;
use crate::policy::Policy;
use crate::run::Report;
use crate::CompactError;

/// Emits the events of compaction runs; cheap to clone.
#[derive(Clone)]
pub struct CompactionLineage {
    emitter: Emitter,
    config: Arc<Config>,
    shutdown_timeout: Duration,
}

impl CompactionLineage {
    /// The emitter of `lineage.transports` (disabled when there are none).
    pub fn new(config: &Config) -> CompactionLineage {
        let emitter = inlet_metastore::store::lineage::emitter(config);
        CompactionLineage { emitter, config: Arc::new(config.clone()), shutdown_timeout: Duration::from_millis(config.lineage.shutdown_timeout_ms) }
    }

    /// The job of a policy's table: named by its catalog name when a
    /// pipeline writes it, else by its location.
    fn batch_run(&self, policy: &Policy) -> BatchRun {
        let table = naming::storage(&policy.location.display);
        let pipeline = self.config.pipelines.iter().find(|p| p.name == policy.name);
        let (job, symlink) = match pipeline {
            Some(p) => (format!("{}.{}", p.table.database, p.table.name), inlet_lineage::table_symlink(&self.config, &p.table.database, &p.table.name)),
            None => (policy.location.display.clone(), None),
        };
        BatchRun::new(&self.config.lineage.namespace, &naming::compaction_job(&job), "COMPACTION", table, symlink)
    }

    /// Runs `run` and emits its events.
    pub async fn observe<R>(&self, policy: &Policy, run: R) -> Result<Report, CompactError>
    where
        R: IntoFuture<Output = Result<Report, CompactError>>,
    {
        if !self.emitter.is_enabled() {
            return run.await;
        }
        let started = Utc::now();
        let result = run.await;
        let b = self.batch_run(policy);
        match &result {
            Ok(report) if report.run.outcome == Outcome::Skipped => {}
            Ok(report) => {
                let outcome = BatchOutcome {
                    version_read: report.plan.as_ref().map(|p| p.version),
                    version_written: report.run.versions.last().copied(),
                    files_out: report.run.files_out,
                    bytes_out: report.run.bytes_out,
                    rows_out: None,
                };
                self.emitter.emit(b.start(report.run.started, outcome.version_read, None));
                let failed = report.run.outcome == Outcome::Failed;
                if failed {
                    self.emitter.emit(b.fail(report.run.finished, &outcome, report.run.message.as_deref().unwrap_or("compaction failed")));
                } else {
                    self.emitter.emit(b.complete(report.run.finished, &outcome, None));
                }
            }
            Err(e) => {
                self.emitter.emit(b.start(started, None, None));
                self.emitter.emit(b.fail(Utc::now(), &BatchOutcome::default(), &e.to_string()));
            }
        }
        result
    }

    /// Delivers queued events (up to `lineage.shutdown_timeout_ms`).
    pub async fn finish(&self) {
        self.emitter.close_async(self.shutdown_timeout).await;
    }
}
