//! The process side of job states: a [`Reporter`] per process and a
//! [`JobHandle`] per job it runs. A handle checks each transition against
//! the state machine at once, on the caller's thread, and never blocks: a
//! background task writes the transitions to the catalog database as they
//! come (within milliseconds when the database is up), sends heartbeats,
//! and polls the operator's desired state every half second. When the
//! database is down, transitions wait in a bounded queue and the work goes
//! on; job states never stop ingestion.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::{legal, Desired, JobKind, JobState, HEARTBEAT_EVERY_MS};
use crate::store::jobs as rows;
use crate::store::{now_ms, Store};

/// Transitions kept while the database is unreachable; older ones are
/// dropped from the history first (the newest state is what matters).
const QUEUE_LIMIT: usize = 1_000;
const POLL_EVERY: Duration = Duration::from_millis(500);

/// The name of this process among the instances of its jobs:
/// `INLET_INSTANCE` (the chart sets it to the pod name), else
/// `<hostname>-<pid>`.
pub fn instance_name() -> String {
    if let Ok(v) = std::env::var("INLET_INSTANCE")
        && !v.trim().is_empty()
    {
        return v.trim().to_string();
    }
    let host = std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()).filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into());
    format!("{host}-{}", std::process::id())
}

/// A transition the state machine refuses.
#[derive(Debug, thiserror::Error)]
#[error("{job}: illegal transition {from} -> {to}")]
pub struct IllegalTransition {
    pub job: String,
    pub from: JobState,
    pub to: JobState,
}

enum Msg {
    Transition { job_id: String, from: JobState, to: JobState, reason: String, at_ms: i64 },
    Watch { job_id: String, kind: JobKind, name: String, pause: Arc<AtomicBool> },
    Flush(oneshot::Sender<()>),
}

/// Called with (job id, old state, new state) on every transition; the
/// services use it for their `inlet_job_state` gauge.
pub type OnChange = Arc<dyn Fn(&str, Option<JobState>, JobState) + Send + Sync>;

/// One per process.
#[derive(Clone)]
pub struct Reporter {
    tx: Option<mpsc::UnboundedSender<Msg>>,
    store: Option<Store>,
    instance: String,
    on_change: Option<OnChange>,
}

impl Reporter {
    /// Reports to `store` (None: the states live in this process only, for
    /// its metrics and logs). Must be called inside a Tokio runtime.
    pub fn start(store: Option<Store>, instance: String, on_change: Option<OnChange>) -> Reporter {
        let tx = store.clone().map(|store| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(writer(store, instance.clone(), rx));
            tx
        });
        Reporter { tx, store, instance, on_change }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// A handle for one job. Reads this instance's last stored state first
    /// (waiting at most `wait`): when a previous process of the same
    /// instance ended without stopping, that is recorded as a failure.
    pub async fn register(&self, kind: JobKind, name: &str, wait: Duration) -> JobHandle {
        let job_id = kind.job_id(name);
        let pause = Arc::new(AtomicBool::new(false));
        let mut state = JobState::Created;
        if let Some(store) = &self.store {
            match tokio::time::timeout(wait, recover(store, kind, name, &job_id, &self.instance)).await {
                Ok(Ok((stored, desired))) => {
                    state = stored;
                    pause.store(desired == Desired::Pause, Ordering::Relaxed);
                }
                Ok(Err(e)) => warn!(job = %job_id, error = %e, "cannot read the job's state from the catalog database; reporting it once the database answers"),
                Err(_) => warn!(job = %job_id, "the catalog database did not answer in time; job states will be written once it does"),
            }
        }
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Watch { job_id: job_id.clone(), kind, name: name.to_string(), pause: pause.clone() });
        }
        if let Some(f) = &self.on_change {
            f(&job_id, None, state);
        }
        // Transitions of this handle come after anything recovery wrote (the
        // history is ordered by time).
        let since = now_ms();
        JobHandle { inner: Arc::new(HandleInner { job_id, kind, state: Mutex::new((state, since)), pause, tx: self.tx.clone(), on_change: self.on_change.clone() }) }
    }

    /// Waits (up to `timeout`) until every transition so far is written.
    pub async fn flush(&self, timeout: Duration) {
        let Some(tx) = &self.tx else { return };
        let (done, wait) = oneshot::channel();
        if tx.send(Msg::Flush(done)).is_ok() && tokio::time::timeout(timeout, wait).await.is_err() {
            warn!("job states not all written to the catalog database before exit");
        }
    }
}

/// Reads this instance's stored state; a non-final one means the previous
/// process died, which is recorded as a failure. Returns the state to
/// continue from and the operator's desired state.
async fn recover(store: &Store, kind: JobKind, name: &str, job_id: &str, instance: &str) -> Result<(JobState, Desired), crate::store::StoreError> {
    let (kind_s, name, job_id, instance) = (kind.as_str().to_string(), name.to_string(), job_id.to_string(), instance.to_string());
    store
        .transact(|c| {
            let (kind_s, name, job_id, instance) = (kind_s.clone(), name.clone(), job_id.clone(), instance.clone());
            Box::pin(async move {
                let now = now_ms();
                rows::ensure(c, &job_id, &kind_s, &name, now).await?;
                // Instances nobody has heard of for a day are gone for good.
                rows::forget_instances(c, &job_id, now - 86_400_000).await?;
                let desired = rows::get(c, &job_id).await?.map(|j| Desired::parse(&j.desired)).unwrap_or(Desired::Run);
                let Some(row) = rows::instance(c, &job_id, &instance).await? else { return Ok((JobState::Created, desired)) };
                let Some(stored) = JobState::parse(&row.state) else { return Ok((JobState::Created, desired)) };
                if stored.is_final(kind) {
                    return Ok((stored, desired));
                }
                let reason = format!("the previous process of this instance ended without stopping (killed or crashed) while {stored}: {}", row.reason);
                rows::transition(c, &job_id, &instance, stored.as_str(), JobState::Failed.as_str(), &reason, now).await?;
                Ok((JobState::Failed, desired))
            })
        })
        .await
}

struct HandleInner {
    job_id: String,
    kind: JobKind,
    /// The state and the time of the last transition (kept increasing so
    /// that the history orders exactly).
    state: Mutex<(JobState, i64)>,
    pause: Arc<AtomicBool>,
    tx: Option<mpsc::UnboundedSender<Msg>>,
    on_change: Option<OnChange>,
}

/// One job of this process. Cheap to clone.
#[derive(Clone)]
pub struct JobHandle {
    inner: Arc<HandleInner>,
}

impl JobHandle {
    pub fn job_id(&self) -> &str {
        &self.inner.job_id
    }

    pub fn state(&self) -> JobState {
        self.inner.state.lock().0
    }

    /// Whether operators asked this job to pause (read from the database
    /// every half second).
    pub fn pause_requested(&self) -> bool {
        self.inner.pause.load(Ordering::Relaxed)
    }

    /// Moves the job to `to`. An illegal transition is refused (and changes
    /// nothing); setting the current state again is a no-op.
    pub fn set(&self, to: JobState, reason: impl Into<String>) -> Result<(), IllegalTransition> {
        self.transition(None, to, reason.into()).map(|_| ())
    }

    /// Moves to `to` only from one of `from` (another thread may have moved
    /// the job meanwhile, e.g. paused it). Returns whether it moved.
    pub fn set_from(&self, from: &[JobState], to: JobState, reason: impl Into<String>) -> bool {
        matches!(self.transition(Some(from), to, reason.into()), Ok(true))
    }

    /// The check and the move happen under one lock, so two threads moving
    /// the same job never interleave.
    fn transition(&self, only_from: Option<&[JobState]>, to: JobState, reason: String) -> Result<bool, IllegalTransition> {
        let mut guard = self.inner.state.lock();
        let (from, last_ms) = *guard;
        if only_from.is_some_and(|f| !f.contains(&from)) || from == to {
            return Ok(false);
        }
        if !legal(self.inner.kind, from, to) {
            return Err(IllegalTransition { job: self.inner.job_id.clone(), from, to });
        }
        let at_ms = now_ms().max(last_ms + 1);
        *guard = (to, at_ms);
        info!(job = %self.inner.job_id, %from, %to, %reason, "job state");
        if let Some(f) = &self.inner.on_change {
            f(&self.inner.job_id, Some(from), to);
        }
        // Sent under the lock: the writer sees transitions in their order.
        if let Some(tx) = &self.inner.tx {
            let _ = tx.send(Msg::Transition { job_id: self.inner.job_id.clone(), from, to, reason, at_ms });
        }
        Ok(true)
    }

    /// [`set`](Self::set), logging a refusal instead of returning it: for
    /// call sites where the transition is always legal by construction.
    pub fn enter(&self, to: JobState, reason: impl Into<String>) {
        if let Err(e) = self.set(to, reason) {
            warn!(error = %e, "job state transition refused");
        }
    }
}

struct Watched {
    kind: JobKind,
    name: String,
    pause: Arc<AtomicBool>,
}

/// Writes transitions in order, heartbeats, and polls desired states.
async fn writer(store: Store, instance: String, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut queue: VecDeque<Msg> = VecDeque::new();
    let mut watched: HashMap<String, Watched> = HashMap::new();
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    let mut last_heartbeat = 0i64;
    let mut failing_since: Option<i64> = None;
    let mut ticker = tokio::time::interval(POLL_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut open = true;
    while open || !queue.is_empty() {
        tokio::select! {
            msg = rx.recv(), if open => match msg {
                Some(Msg::Flush(done)) => flushes.push(done),
                Some(m) => {
                    queue.push_back(m);
                    while queue.len() > QUEUE_LIMIT {
                        queue.pop_front();
                    }
                }
                None => open = false,
            },
            _ = ticker.tick() => {
                poll(&store, &mut watched, &instance, &mut last_heartbeat).await;
            }
        }
        // Write everything queued, in order; stop at the first failure and
        // retry on the next tick.
        while let Some(m) = queue.front() {
            let written = match m {
                Msg::Transition { job_id, from, to, reason, at_ms } => write_transition(&store, job_id, &instance, *from, *to, reason, *at_ms).await,
                Msg::Watch { job_id, kind, name, pause } => {
                    let r = ensure(&store, job_id, *kind, name).await;
                    if r.is_ok() {
                        watched.insert(job_id.clone(), Watched { kind: *kind, name: name.clone(), pause: pause.clone() });
                    }
                    r
                }
                Msg::Flush(_) => Ok(()),
            };
            match written {
                Ok(()) => {
                    if failing_since.take().is_some() {
                        info!("catalog database reachable again: job states written");
                    }
                    queue.pop_front();
                }
                Err(e) => {
                    if failing_since.is_none() {
                        warn!(error = %e, queued = queue.len(), "cannot write job states to the catalog database; retrying");
                        failing_since = Some(now_ms());
                    }
                    break;
                }
            }
        }
        if queue.is_empty() {
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        } else if !open {
            // The process is exiting: one more attempt per tick, no longer
            // than the caller's flush timeout.
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

async fn ensure(store: &Store, job_id: &str, kind: JobKind, name: &str) -> Result<(), crate::store::StoreError> {
    let (job_id, kind, name) = (job_id.to_string(), kind.as_str().to_string(), name.to_string());
    store
        .transact(|c| {
            let (job_id, kind, name) = (job_id.clone(), kind.clone(), name.clone());
            Box::pin(async move { rows::ensure(c, &job_id, &kind, &name, now_ms()).await })
        })
        .await
}

async fn write_transition(store: &Store, job_id: &str, instance: &str, from: JobState, to: JobState, reason: &str, at_ms: i64) -> Result<(), crate::store::StoreError> {
    let (job_id, instance, reason) = (job_id.to_string(), instance.to_string(), reason.to_string());
    store
        .transact(|c| {
            let (job_id, instance, reason) = (job_id.clone(), instance.clone(), reason.clone());
            Box::pin(async move { rows::transition(c, &job_id, &instance, from.as_str(), to.as_str(), &reason, at_ms).await })
        })
        .await
}

async fn poll(store: &Store, watched: &mut HashMap<String, Watched>, instance: &str, last_heartbeat: &mut i64) {
    if watched.is_empty() {
        return;
    }
    let Ok(mut conn) = store.reader().await else { return };
    for (job_id, w) in watched.iter() {
        match rows::get(&mut conn, job_id).await {
            Ok(Some(job)) => {
                let pause = Desired::parse(&job.desired) == Desired::Pause;
                if w.pause.swap(pause, Ordering::Relaxed) != pause {
                    info!(job = %job_id, desired = %job.desired, by = %job.desired_by, reason = %job.desired_reason, "operator changed the job's desired state");
                }
            }
            // Deleted by hand: it comes back with the next transition.
            Ok(None) => debug!(job = %job_id, kind = w.kind.as_str(), name = %w.name, "job row missing"),
            Err(e) => {
                debug!(error = %e, "cannot poll desired job states");
                return;
            }
        }
    }
    drop(conn);
    let now = now_ms();
    if now - *last_heartbeat >= HEARTBEAT_EVERY_MS {
        let ids: Vec<String> = watched.keys().cloned().collect();
        let instance = instance.to_string();
        let r = store
            .transact(|c| {
                let (ids, instance) = (ids.clone(), instance.clone());
                Box::pin(async move { rows::heartbeat(c, &ids, &instance, now).await })
            })
            .await;
        if r.is_ok() {
            *last_heartbeat = now;
        }
    }
}
