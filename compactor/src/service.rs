//! `inlet compactor`: runs every policy of a configuration on its schedule
//! and triggers until SIGTERM/SIGINT, one run per table at a time, all runs
//! sharing one memory budget. A shutdown request starts no new run and waits
//! for the running ones (each bounded by `max_bytes_per_run`).
//!
//! Each policy is a job (`compaction/<policy>`): `idle` between runs,
//! `running` during one, `failed` after a failed one (still scheduled),
//! `paused` while an operator wants it paused (a running run finishes
//! first), `stopping`/`stopped` on shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use inlet_config::Config;
use inlet_metastore::jobs::reporter::{JobHandle, Reporter};
use inlet_metastore::jobs::{JobKind, JobState};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::ledger::Ledger;
use crate::metrics::{self, METRICS};
use crate::policy::Policy;
use crate::rewrite::MemoryBudget;
use crate::run::Compaction;
use crate::schedule::{self, TableSchedule};
use crate::CompactError;

/// Why a run started.
#[derive(Debug, Clone)]
enum Cause {
    Schedule,
    Trigger(String),
}

/// Runs the service until `shutdown` resolves.
pub async fn run(config: &Config, ledger: Arc<dyn Ledger>, reporter: Reporter, shutdown: impl Future<Output = ()>) -> Result<(), CompactError> {
    let policies = Policy::all(config)?;
    if let Some(addr) = &config.compaction.metrics_listen {
        metrics::serve(addr).await.map_err(|source| CompactError::Metrics { address: addr.clone(), source })?;
    }
    let budget = MemoryBudget::new(config.compaction.memory_budget_bytes);
    METRICS.memory_budget_bytes.set(budget.total_bytes() as i64);
    let lease_ttl = Duration::from_secs(config.compaction.lease_ttl_secs);
    let trigger_every = Duration::from_secs(config.compaction.trigger_check_interval_secs);
    let mut schedules: Vec<TableSchedule> = policies.into_iter().map(|p| TableSchedule::new(p, Utc::now())).collect();
    let mut jobs: HashMap<String, JobHandle> = HashMap::new();
    for s in &schedules {
        info!(table = %s.policy.name, next = ?s.next_fire(), "compaction policy loaded");
        let job = reporter.register(JobKind::Compaction, &s.policy.name, Duration::from_secs(3)).await;
        if job.pause_requested() {
            job.enter(JobState::Paused, "paused by an operator (service started)");
        } else {
            job.enter(JobState::Idle, idle_reason(s));
        }
        jobs.insert(s.policy.name.clone(), job);
    }
    let lineage = crate::lineage::CompactionLineage::new(config);
    let mut running: JoinSet<(String, Result<crate::Report, CompactError>)> = JoinSet::new();
    let mut busy: HashMap<String, Instant> = HashMap::new();
    let mut tasks: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut last_trigger_check = Instant::now() - trigger_every;
    tokio::pin!(shutdown);
    loop {
        let now = Utc::now();
        let check_triggers = last_trigger_check.elapsed() >= trigger_every;
        if check_triggers {
            last_trigger_check = Instant::now();
        }
        for s in schedules.iter_mut() {
            let name = s.policy.name.clone();
            let scheduled = s.take_due(now);
            let job = &jobs[&name];
            if busy.contains_key(&name) {
                continue;
            }
            if job.pause_requested() {
                if scheduled {
                    info!(table = %name, "scheduled run skipped: the policy is paused");
                }
                job.set_from(&[JobState::Idle, JobState::Failed, JobState::Running], JobState::Paused, "paused by an operator");
                continue;
            }
            job.set_from(&[JobState::Paused], JobState::Idle, format!("resumed by an operator; {}", idle_reason(s)));
            let mut cause = scheduled.then_some(Cause::Schedule);
            if cause.is_none() && check_triggers && s.in_window(now) {
                cause = match trigger(&s.policy).await {
                    Ok(Some(why)) => Some(Cause::Trigger(why)),
                    Ok(None) => None,
                    Err(e) => {
                        warn!(table = %name, error = %e, "cannot evaluate triggers");
                        None
                    }
                };
            }
            let Some(cause) = cause else { continue };
            let why = match cause {
                Cause::Schedule => "schedule".to_string(),
                Cause::Trigger(why) => format!("trigger: {why}"),
            };
            info!(table = %name, cause = %why, "starting compaction run");
            let compaction = Compaction::new(s.policy.clone(), ledger.clone(), budget.clone())
                .with_lease_ttl(lease_ttl)
                .with_vacuum(s.policy.vacuum.enabled)
                .with_deadline(s.window_deadline(now));
            job.enter(JobState::Running, format!("run started by {why}"));
            busy.insert(name.clone(), Instant::now());
            let (lineage, policy) = (lineage.clone(), s.policy.clone());
            let id = running.spawn(async move { (name.clone(), lineage.observe(&policy, compaction).await) }).id();
            tasks.insert(id, s.policy.name.clone());
        }
        let next_fire = schedules.iter().filter_map(|s| s.next_fire()).min();
        let mut sleep = trigger_every.saturating_sub(last_trigger_check.elapsed());
        if let Some(t) = next_fire {
            sleep = sleep.min((t - Utc::now()).to_std().unwrap_or(Duration::ZERO));
        }
        let sleep = sleep.clamp(Duration::from_millis(50), Duration::from_secs(60));
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(sleep) => {}
            Some(done) = running.join_next_with_id(), if !running.is_empty() => finished(done, &mut busy, &mut tasks, &jobs, &schedules),
        }
    }
    info!(runs = running.len(), "shutdown requested: waiting for running compactions");
    for job in jobs.values() {
        job.enter(JobState::Stopping, if running.is_empty() { "shutdown requested".to_string() } else { format!("shutdown requested: waiting for {} running compaction(s)", running.len()) });
    }
    while let Some(done) = running.join_next_with_id().await {
        finished(done, &mut busy, &mut tasks, &jobs, &schedules);
    }
    for job in jobs.values() {
        job.enter(JobState::Stopped, "compactor stopped");
    }
    reporter.flush(Duration::from_secs(5)).await;
    lineage.finish().await;
    Ok(())
}

fn idle_reason(s: &TableSchedule) -> String {
    match s.next_fire() {
        Some(t) => format!("next scheduled run at {}", t.format("%Y-%m-%d %H:%M:%S %Z")),
        None => "no schedule; runs on triggers".to_string(),
    }
}

type Done = Result<(tokio::task::Id, (String, Result<crate::Report, CompactError>)), tokio::task::JoinError>;

fn finished(done: Done, busy: &mut HashMap<String, Instant>, tasks: &mut HashMap<tokio::task::Id, String>, jobs: &HashMap<String, JobHandle>, schedules: &[TableSchedule]) {
    // (policy, whether the run failed, why)
    let (name, failed, why) = match done {
        Ok((id, (name, result))) => {
            tasks.remove(&id);
            busy.remove(&name);
            match result {
                Ok(r) => {
                    info!(table = %name, outcome = r.run.outcome.as_str(), files_in = r.run.files_in, files_out = r.run.files_out, "run done");
                    let failed = matches!(r.run.outcome, crate::Outcome::Failed | crate::Outcome::Partial);
                    let why = match (&r.run.message, failed) {
                        (Some(m), true) => format!("last run {}: {m}", r.run.outcome.as_str()),
                        _ => format!("last run {}: {} files -> {}", r.run.outcome.as_str(), r.run.files_in, r.run.files_out),
                    };
                    (name, failed, why)
                }
                Err(e) => {
                    error!(table = %name, error = %e, "compaction run failed");
                    (name, true, format!("last run failed: {e}"))
                }
            }
        }
        Err(e) => {
            let name = tasks.remove(&e.id()).unwrap_or_default();
            busy.remove(&name);
            error!(table = %name, error = %e, "compaction task panicked");
            (name, true, format!("last run panicked: {e}"))
        }
    };
    let Some(job) = jobs.get(&name) else { return };
    if failed {
        job.set_from(&[JobState::Running], JobState::Failed, why);
    } else {
        let next = schedules.iter().find(|s| s.policy.name == name).map(idle_reason).unwrap_or_default();
        job.set_from(&[JobState::Running], JobState::Idle, format!("{why}; {next}"));
    }
}

async fn trigger(policy: &Policy) -> Result<Option<String>, CompactError> {
    if let Some(h) = &policy.hive {
        return crate::hive::triggered(policy, h).await;
    }
    let Some(table) = inlet_table::DeltaTable::open(&policy.location).await? else { return Ok(None) };
    schedule::triggered(policy, table.delta()).await
}
