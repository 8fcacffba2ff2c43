//! Job lifecycles: the state machines of ingest pipelines and compaction
//! policies, their views, and the operator commands (pause, resume) on
//! them. The processes that run jobs report transitions through a
//! [`reporter::Reporter`]; the metastore's REST API and `inlet jobs` read
//! and command through [`Jobs`]. Both check every transition against the
//! same table ([`legal`]), so an illegal one is refused wherever it starts.
//!
//! A job is one pipeline or one policy; each process running it is an
//! instance with its own state (ingest replicas share a consumer group).
//! Operators set a job's *desired* state (`run` or `pause`); instances read
//! it and move themselves, so a pause survives restarts and redeploys.

pub mod cli;
pub mod reporter;

use serde::{Deserialize, Serialize};

use crate::catalog::Actor;
use crate::store::audit::{self, AuditEntry};
use crate::store::jobs::{self as rows, InstanceRow, JobRow, TransitionRow};
use crate::store::{now_ms, RetryHint, Store, StoreError};

/// How often a running instance says it is alive.
pub const HEARTBEAT_EVERY_MS: i64 = 5_000;
/// An instance silent for this long is shown as `lost` (killed, or cut off
/// from the database).
pub const LOST_AFTER_MS: i64 = 30_000;

/// What kind of work a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// An ingest pipeline (`inlet ingest`): a streaming job.
    Ingest,
    /// A compaction policy (`inlet compactor`): scheduled runs.
    Compaction,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Ingest => "ingest",
            JobKind::Compaction => "compaction",
        }
    }

    pub fn parse(s: &str) -> Option<JobKind> {
        match s {
            "ingest" => Some(JobKind::Ingest),
            "compaction" => Some(JobKind::Compaction),
            _ => None,
        }
    }

    /// The job's id: `ingest/<pipeline>` or `compaction/<policy>`.
    pub fn job_id(self, name: &str) -> String {
        format!("{}/{}", self.as_str(), name)
    }
}

/// A lifecycle state. Not every kind uses every state (see [`legal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Known, never started.
    Created,
    /// Ingest: connecting, joining the consumer group, reading positions.
    Starting,
    /// Ingest: consuming and committing. Compaction: a run is in progress.
    Running,
    /// Ingest: retrying through a storage or registry outage, or re-reading
    /// positions after a rebalance or a fenced commit.
    Recovering,
    /// Compaction: waiting for its schedule or triggers.
    Idle,
    /// Paused by an operator: ingest consumes nothing (everything read
    /// before is committed); compaction starts no run.
    Paused,
    /// Shutting down: committing what is buffered, finishing runs.
    Stopping,
    /// Stopped cleanly.
    Stopped,
    /// Ingest: failed and stopped. Compaction: the last run failed, or the
    /// service died; the policy stays scheduled. Either kind: a process
    /// that ended without stopping (found by its successor).
    Failed,
    /// Ingest: a bounded run (`--until-caught-up`) reached its end.
    Finished,
}

pub const ALL_STATES: [JobState; 10] = [
    JobState::Created,
    JobState::Starting,
    JobState::Running,
    JobState::Recovering,
    JobState::Idle,
    JobState::Paused,
    JobState::Stopping,
    JobState::Stopped,
    JobState::Failed,
    JobState::Finished,
];

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Created => "created",
            JobState::Starting => "starting",
            JobState::Running => "running",
            JobState::Recovering => "recovering",
            JobState::Idle => "idle",
            JobState::Paused => "paused",
            JobState::Stopping => "stopping",
            JobState::Stopped => "stopped",
            JobState::Failed => "failed",
            JobState::Finished => "finished",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        ALL_STATES.into_iter().find(|st| st.as_str() == s)
    }

    /// No process is working on the job in this state.
    pub fn is_final(self, kind: JobKind) -> bool {
        match kind {
            JobKind::Ingest => matches!(self, JobState::Created | JobState::Stopped | JobState::Failed | JobState::Finished),
            JobKind::Compaction => matches!(self, JobState::Created | JobState::Stopped),
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an instance of a `kind` job may move from `from` to `to`.
pub fn legal(kind: JobKind, from: JobState, to: JobState) -> bool {
    use JobState::*;
    match kind {
        JobKind::Ingest => matches!(
            (from, to),
            (Created | Stopped | Failed | Finished, Starting)
                | (Starting, Running | Paused | Stopping | Failed)
                | (Running, Recovering | Paused | Stopping | Finished | Failed)
                | (Recovering, Running | Paused | Stopping | Failed)
                | (Paused, Running | Recovering | Stopping | Failed)
                | (Stopping, Stopped | Finished | Failed)
        ),
        JobKind::Compaction => matches!(
            (from, to),
            (Created | Stopped, Idle | Paused)
                | (Idle, Running | Paused | Stopping | Failed)
                | (Running, Idle | Failed | Paused | Stopping)
                | (Failed, Running | Idle | Paused | Stopping)
                | (Paused, Idle | Stopping | Failed)
                | (Stopping, Stopped | Failed)
        ),
    }
}

/// The states `from` may move to.
pub fn successors(kind: JobKind, from: JobState) -> Vec<JobState> {
    ALL_STATES.into_iter().filter(|to| legal(kind, from, *to)).collect()
}

/// What operators ask of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Desired {
    Run,
    Pause,
}

impl Desired {
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Run => "run",
            Desired::Pause => "pause",
        }
    }

    pub fn parse(s: &str) -> Desired {
        if s == "pause" { Desired::Pause } else { Desired::Run }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no job {0:?} (jobs are named `ingest/<pipeline>` or `compaction/<policy>`; `inlet jobs list` shows them)")]
    NotFound(String),
    /// The command asks for a transition the job's state machine refuses.
    #[error("{job}: cannot {command} a job that is {state}{hint}")]
    Illegal { job: String, command: &'static str, state: String, hint: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RetryHint for JobError {
    fn retryable(&self) -> bool {
        matches!(self, JobError::Store(e) if e.is_retryable())
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::Store(e.into())
    }
}

/// One instance as shown to operators.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceView {
    pub instance: String,
    /// The reported state, or `lost` when the instance stopped reporting
    /// while not in a final state (killed, or cut off from the database).
    pub state: String,
    pub reason: String,
    pub since_ms: i64,
    pub heartbeat_ms: i64,
}

/// A job as shown by `GET /api/v1/jobs` and `inlet jobs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobView {
    pub job: String,
    pub kind: String,
    pub name: String,
    /// The job's state: its instances' when they agree, otherwise the most
    /// pressing of them (failed, lost, recovering, starting, stopping,
    /// running, paused, idle, then the final ones).
    pub state: String,
    /// Why the job is in that state (the instance's reason).
    pub reason: String,
    pub since_ms: i64,
    /// `run` or `pause`.
    pub desired: String,
    pub desired_reason: String,
    pub desired_by: String,
    pub desired_ms: i64,
    pub instances: Vec<InstanceView>,
    /// Newest first; only in `show`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<TransitionRow>>,
}

fn instance_view(kind: JobKind, row: &InstanceRow, now: i64) -> InstanceView {
    let state = JobState::parse(&row.state);
    let lost = now - row.heartbeat_ms > LOST_AFTER_MS && state.is_some_and(|s| !s.is_final(kind));
    InstanceView {
        instance: row.instance.clone(),
        state: if lost { "lost".into() } else { row.state.clone() },
        reason: if lost { format!("no heartbeat for {} s (last state {}: {})", (now - row.heartbeat_ms) / 1000, row.state, row.reason) } else { row.reason.clone() },
        since_ms: row.since_ms,
        heartbeat_ms: row.heartbeat_ms,
    }
}

fn urgency(state: &str) -> u8 {
    match state {
        "failed" => 0,
        "lost" => 1,
        "recovering" => 2,
        "starting" => 3,
        "stopping" => 4,
        "running" => 5,
        "paused" => 6,
        "idle" => 7,
        "finished" => 8,
        "stopped" => 9,
        _ => 10,
    }
}

fn view(job: &JobRow, instances: &[InstanceRow], history: Option<Vec<TransitionRow>>, now: i64) -> JobView {
    let kind = JobKind::parse(&job.kind).unwrap_or(JobKind::Ingest);
    let instances: Vec<InstanceView> = instances.iter().map(|i| instance_view(kind, i, now)).collect();
    // A stopped instance next to a running one is history, not news.
    let active: Vec<&InstanceView> = instances.iter().filter(|i| JobState::parse(&i.state).is_none_or(|s| !s.is_final(kind))).collect();
    let pool: Vec<&InstanceView> = if active.is_empty() { instances.iter().collect() } else { active };
    let shown = pool.iter().min_by_key(|i| (urgency(&i.state), -i.since_ms));
    JobView {
        job: job.job_id.clone(),
        kind: job.kind.clone(),
        name: job.name.clone(),
        state: shown.map(|i| i.state.clone()).unwrap_or_else(|| "created".into()),
        reason: shown.map(|i| i.reason.clone()).unwrap_or_default(),
        since_ms: shown.map(|i| i.since_ms).unwrap_or(job.created_ms),
        desired: job.desired.clone(),
        desired_reason: job.desired_reason.clone(),
        desired_by: job.desired_by.clone(),
        desired_ms: job.desired_ms,
        instances,
        history,
    }
}

/// Operator access to jobs, over the catalog database.
#[derive(Clone)]
pub struct Jobs {
    store: Store,
}

impl Jobs {
    pub fn new(store: Store) -> Jobs {
        Jobs { store }
    }

    pub async fn list(&self) -> Result<Vec<JobView>, JobError> {
        let mut conn = self.store.reader().await?;
        let now = now_ms();
        let mut out = Vec::new();
        for job in rows::list(&mut conn).await? {
            let instances = rows::instances(&mut conn, &job.job_id).await?;
            out.push(view(&job, &instances, None, now));
        }
        Ok(out)
    }

    pub async fn show(&self, job_id: &str, history: i64) -> Result<JobView, JobError> {
        let mut conn = self.store.reader().await?;
        let job = rows::get(&mut conn, job_id).await?.ok_or_else(|| JobError::NotFound(job_id.to_string()))?;
        let instances = rows::instances(&mut conn, job_id).await?;
        let history = rows::history(&mut conn, job_id, history).await?;
        Ok(view(&job, &instances, Some(history), now_ms()))
    }

    /// Asks every instance of the job to pause. Refused when no instance
    /// could move to `paused` from where it is (a stopped or failed
    /// pipeline, say): resume or restart it instead.
    pub async fn pause(&self, job_id: &str, actor: &Actor, reason: &str) -> Result<JobView, JobError> {
        self.command(job_id, actor, reason, Desired::Pause).await
    }

    /// Lets a paused job run again. Refused unless operators asked it to
    /// pause (and did not resume it since).
    pub async fn resume(&self, job_id: &str, actor: &Actor, reason: &str) -> Result<JobView, JobError> {
        self.command(job_id, actor, reason, Desired::Run).await
    }

    async fn command(&self, job_id: &str, actor: &Actor, reason: &str, desired: Desired) -> Result<JobView, JobError> {
        let (job_id, actor, reason) = (job_id.to_string(), actor.clone(), reason.to_string());
        self.store
            .transact(|c| {
                let (job_id, actor, reason) = (job_id.clone(), actor.clone(), reason.clone());
                Box::pin(async move {
                    let job = rows::get(c, &job_id).await?.ok_or_else(|| JobError::NotFound(job_id.clone()))?;
                    let kind = JobKind::parse(&job.kind).unwrap_or(JobKind::Ingest);
                    let now = now_ms();
                    let instances = rows::instances(c, &job_id).await?;
                    let before = view(&job, &instances, None, now);
                    check_command(kind, &before, desired)?;
                    let command = if desired == Desired::Pause { "pause" } else { "resume" };
                    let reason = if reason.trim().is_empty() { format!("{command} requested by {}", actor.user) } else { reason };
                    rows::set_desired(c, &job_id, desired.as_str(), &reason, &actor.user, now).await?;
                    let job = rows::get(c, &job_id).await?.ok_or_else(|| JobError::NotFound(job_id.clone()))?;
                    let after = view(&job, &instances, None, now);
                    let mut entry = AuditEntry::new(&actor.user, actor.via, &format!("{command}_job"), "job", job_id.clone());
                    entry.before = serde_json::to_value(&before).ok();
                    entry.after = serde_json::to_value(&after).ok();
                    audit::insert(c, &entry).await?;
                    Ok(after)
                })
            })
            .await
    }
}

/// Refuses a command the job's state machine cannot follow.
fn check_command(kind: JobKind, job: &JobView, desired: Desired) -> Result<(), JobError> {
    let illegal = |command: &'static str, hint: String| Err(JobError::Illegal { job: job.job.clone(), command, state: job.state.clone(), hint });
    match desired {
        Desired::Pause => {
            if job.desired == "pause" {
                return illegal("pause", " and already asked to pause".into());
            }
            // Instances that are not working on the job start paused when the
            // desired state is `pause`; a job whose instances are all final
            // cannot pause now.
            let state = JobState::parse(&job.state);
            let can = match state {
                Some(s) => legal(kind, s, JobState::Paused) || (s == JobState::Created),
                None => job.state == "lost",
            };
            if can {
                Ok(())
            } else {
                let from: Vec<&str> = ALL_STATES.into_iter().filter(|s| legal(kind, *s, JobState::Paused)).map(JobState::as_str).collect();
                illegal("pause", format!(" (a {} job pauses from: {})", kind.as_str(), from.join(", ")))
            }
        }
        Desired::Run => {
            if job.desired == "pause" {
                Ok(())
            } else if job.state == "paused" {
                illegal("resume", " and already asked to resume".into())
            } else {
                illegal("resume", " (only a job asked to pause resumes)".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_and_every_kind_can_reach_its_working_state() {
        for s in ALL_STATES {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        assert!(legal(JobKind::Ingest, JobState::Created, JobState::Starting));
        assert!(legal(JobKind::Ingest, JobState::Starting, JobState::Running));
        assert!(legal(JobKind::Compaction, JobState::Created, JobState::Idle));
        assert!(legal(JobKind::Compaction, JobState::Idle, JobState::Running));
    }

    #[test]
    fn illegal_transitions_are_refused() {
        // A stopped pipeline must start before it runs; a finished one
        // cannot pause; compaction never "recovers".
        assert!(!legal(JobKind::Ingest, JobState::Stopped, JobState::Running));
        assert!(!legal(JobKind::Ingest, JobState::Finished, JobState::Paused));
        assert!(!legal(JobKind::Compaction, JobState::Idle, JobState::Recovering));
        assert!(!legal(JobKind::Compaction, JobState::Stopped, JobState::Running));
        for kind in [JobKind::Ingest, JobKind::Compaction] {
            for s in ALL_STATES {
                assert!(!legal(kind, s, s), "{s} -> {s} is not a transition");
                assert!(!legal(kind, s, JobState::Created), "nothing returns to created");
            }
        }
    }

    #[test]
    fn every_non_final_state_can_stop_or_fail() {
        for kind in [JobKind::Ingest, JobKind::Compaction] {
            for s in ALL_STATES {
                let used = ALL_STATES.iter().any(|o| legal(kind, *o, s) || legal(kind, s, *o));
                if !used || s.is_final(kind) || s == JobState::Stopping {
                    continue;
                }
                assert!(legal(kind, s, JobState::Stopping), "{kind:?} {s} cannot stop");
            }
        }
    }

    fn job(state: &str, desired: &str) -> JobView {
        JobView {
            job: "ingest/p".into(),
            kind: "ingest".into(),
            name: "p".into(),
            state: state.into(),
            reason: String::new(),
            since_ms: 0,
            desired: desired.into(),
            desired_reason: String::new(),
            desired_by: String::new(),
            desired_ms: 0,
            instances: vec![],
            history: None,
        }
    }

    #[test]
    fn commands_follow_the_state_machine() {
        assert!(check_command(JobKind::Ingest, &job("running", "run"), Desired::Pause).is_ok());
        assert!(check_command(JobKind::Ingest, &job("created", "run"), Desired::Pause).is_ok());
        let e = check_command(JobKind::Ingest, &job("finished", "run"), Desired::Pause).unwrap_err();
        assert!(e.to_string().contains("cannot pause a job that is finished"), "{e}");
        assert!(check_command(JobKind::Ingest, &job("running", "pause"), Desired::Pause).is_err());
        assert!(check_command(JobKind::Ingest, &job("running", "run"), Desired::Run).is_err());
        assert!(check_command(JobKind::Ingest, &job("running", "pause"), Desired::Run).is_ok());
        assert!(check_command(JobKind::Ingest, &job("paused", "pause"), Desired::Run).is_ok());
        assert!(check_command(JobKind::Ingest, &job("paused", "run"), Desired::Run).is_err(), "a resume is already pending");
        assert!(check_command(JobKind::Compaction, &job("idle", "run"), Desired::Pause).is_ok());
        assert!(check_command(JobKind::Compaction, &job("stopped", "run"), Desired::Pause).is_ok());
    }

    #[test]
    fn lost_instances_and_aggregate_state() {
        let job = JobRow {
            job_id: "ingest/p".into(),
            kind: "ingest".into(),
            name: "p".into(),
            desired: "run".into(),
            desired_reason: String::new(),
            desired_by: String::new(),
            desired_ms: 0,
            created_ms: 0,
        };
        let inst = |name: &str, state: &str, hb: i64| InstanceRow { instance: name.into(), state: state.into(), reason: "r".into(), since_ms: hb, heartbeat_ms: hb };
        let now = 100_000;
        // A killed instance (stale heartbeat, running) shows as lost and
        // wins over a healthy one; a stopped one does not count.
        let v = view(&job, &[inst("a", "running", now), inst("b", "running", now - LOST_AFTER_MS - 1), inst("c", "stopped", 0)], None, now);
        assert_eq!(v.state, "lost");
        assert_eq!(v.instances[2].state, "stopped");
        let v = view(&job, &[inst("a", "running", now), inst("c", "stopped", 0)], None, now);
        assert_eq!(v.state, "running");
        let v = view(&job, &[inst("c", "stopped", 0)], None, now);
        assert_eq!(v.state, "stopped", "a stopped instance is never lost");
        let v = view(&job, &[], None, now);
        assert_eq!(v.state, "created");
    }
}
