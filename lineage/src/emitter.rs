//! The emitter: hands events to transports without ever making the caller
//! wait.
//!
//! Each transport has its own bounded queue and its own delivery task, so an
//! unreachable HTTP receiver retrying with backoff delays neither the file
//! nor the catalog transport. [`Emitter::emit`] only tries to enqueue: when a
//! queue is full the event is dropped for that transport and counted
//! (`inlet_lineage_events_dropped_total{transport}`). Delivery runs on one
//! background thread with its own single-threaded runtime, so emitting works
//! the same from async tasks and from the pipelines' plain threads.
//!
//! Events of one transport are delivered in order, one at a time: a run's
//! COMPLETE never overtakes its START.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::metrics::METRICS;
use crate::model::RunEvent;

/// Why a transport could not deliver an event.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Worth retrying (connection refused, timeout, 5xx, busy database).
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help (4xx, a malformed event).
    #[error("{0}")]
    Permanent(String),
}

/// A destination of events. Implementations retry on their own terms and
/// return once the event is delivered or given up.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// Short name, the `transport` label of the metrics (`http`, `file`,
    /// `catalog`).
    fn name(&self) -> &str;

    /// Delivers one event.
    async fn send(&self, event: &RunEvent) -> Result<(), TransportError>;
}

struct Lane {
    name: String,
    tx: mpsc::Sender<Arc<RunEvent>>,
}

struct Inner {
    lanes: Vec<Lane>,
    closed: AtomicBool,
    stop: watch::Sender<Option<Instant>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Cloneable handle; events go to every transport.
#[derive(Clone)]
pub struct Emitter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter").field("transports", &self.inner.lanes.iter().map(|l| l.name.as_str()).collect::<Vec<_>>()).finish()
    }
}

impl Emitter {
    /// An emitter with no transports: emitting does nothing.
    pub fn disabled() -> Emitter {
        Emitter::new(Vec::new(), 1)
    }

    /// Starts the delivery thread. `capacity` is the queue length per transport.
    pub fn new(transports: Vec<Arc<dyn Transport>>, capacity: usize) -> Emitter {
        let (stop, stop_rx) = watch::channel(None);
        let mut lanes = Vec::new();
        let mut workers = Vec::new();
        for t in transports {
            let (tx, rx) = mpsc::channel(capacity.max(1));
            lanes.push(Lane { name: t.name().to_string(), tx });
            workers.push((t, rx));
        }
        let thread = if workers.is_empty() {
            None
        } else {
            let spawned = std::thread::Builder::new().name("lineage-emit".into()).spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        warn!(error = %e, "lineage: cannot start the delivery runtime; events will be dropped");
                        return;
                    }
                };
                rt.block_on(async move {
                    let mut tasks = Vec::new();
                    for (t, rx) in workers {
                        tasks.push(tokio::spawn(deliver(t, rx, stop_rx.clone())));
                    }
                    for t in tasks {
                        let _ = t.await;
                    }
                });
            });
            match spawned {
                Ok(h) => Some(h),
                Err(e) => {
                    warn!(error = %e, "lineage: cannot start the delivery thread; events will be dropped");
                    None
                }
            }
        };
        Emitter { inner: Arc::new(Inner { lanes, closed: AtomicBool::new(false), stop, thread: Mutex::new(thread) }) }
    }

    /// Whether any transport is configured.
    pub fn is_enabled(&self) -> bool {
        !self.inner.lanes.is_empty()
    }

    /// Queues `event` for every transport. Never blocks: a full queue drops
    /// the event for that transport and counts it.
    pub fn emit(&self, event: RunEvent) {
        if self.inner.lanes.is_empty() {
            return;
        }
        let event = Arc::new(event);
        let closed = self.inner.closed.load(Ordering::Acquire);
        for lane in &self.inner.lanes {
            if closed {
                METRICS.events_dropped.with_label_values(&[&lane.name]).inc();
                continue;
            }
            match lane.tx.try_send(event.clone()) {
                Ok(()) => METRICS.queued_events.with_label_values(&[&lane.name]).inc(),
                Err(e) => {
                    METRICS.events_dropped.with_label_values(&[&lane.name]).inc();
                    let why = if matches!(e, mpsc::error::TrySendError::Full(_)) { "queue full" } else { "delivery stopped" };
                    debug!(transport = %lane.name, job = %event.job.name, event = event.event_type.as_str(), why, "lineage event dropped");
                }
            }
        }
    }

    /// Stops accepting events and delivers what is queued, giving up at
    /// `deadline` from now (what is left is counted as dropped). Idempotent;
    /// blocks the calling thread at most `deadline`.
    pub fn close(&self, deadline: Duration) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.inner.stop.send(Some(Instant::now() + deadline));
        if let Some(h) = self.inner.thread.lock().take() {
            let _ = h.join();
        }
        for lane in &self.inner.lanes {
            let l = [lane.name.as_str()];
            tracing::info!(
                transport = %lane.name,
                sent = METRICS.events_sent.with_label_values(&l).get(),
                failed = METRICS.events_failed.with_label_values(&l).get(),
                dropped = METRICS.events_dropped.with_label_values(&l).get(),
                "lineage delivery totals"
            );
        }
    }

    /// [`Emitter::close`] from async code, without blocking a runtime worker.
    pub async fn close_async(&self, deadline: Duration) {
        let me = self.clone();
        let _ = tokio::task::spawn_blocking(move || me.close(deadline)).await;
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle went away without close(): let the delivery thread
        // finish what is queued in the background, briefly.
        if !self.closed.load(Ordering::Acquire) {
            let _ = self.stop.send(Some(Instant::now() + Duration::from_secs(1)));
        }
    }
}

async fn deliver(t: Arc<dyn Transport>, mut rx: mpsc::Receiver<Arc<RunEvent>>, mut stop: watch::Receiver<Option<Instant>>) {
    let name = t.name().to_string();
    let queued = METRICS.queued_events.with_label_values(&[&name]);
    loop {
        let deadline = *stop.borrow();
        let next = match deadline {
            // Stopping: drain without waiting for new events.
            Some(_) => rx.try_recv().ok(),
            None => tokio::select! {
                ev = rx.recv() => ev,
                _ = stop.changed() => continue,
            },
        };
        let Some(event) = next else { break };
        queued.dec();
        let started = Instant::now();
        let send = t.send(&event);
        let result = match deadline {
            Some(d) => match tokio::time::timeout_at(d.into(), send).await {
                Ok(r) => r,
                Err(_) => {
                    METRICS.events_dropped.with_label_values(&[&name]).inc();
                    break;
                }
            },
            None => {
                // A stop request interrupts a send that is retrying, so the
                // drain deadline holds for it too.
                let mut stop2 = stop.clone();
                tokio::pin!(send);
                loop {
                    tokio::select! {
                        r = &mut send => break r,
                        _ = stop2.changed() => {
                            let d = *stop2.borrow();
                            if let Some(d) = d {
                                match tokio::time::timeout_at(d.into(), &mut send).await {
                                    Ok(r) => break r,
                                    Err(_) => break Err(TransportError::Transient("process stopping: delivery deadline passed".into())),
                                }
                            }
                        }
                    }
                }
            }
        };
        METRICS.send_seconds.with_label_values(&[&name]).observe(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => METRICS.events_sent.with_label_values(&[&name]).inc(),
            Err(e) => {
                METRICS.events_failed.with_label_values(&[&name]).inc();
                warn!(transport = %name, job = %event.job.name, event = event.event_type.as_str(), error = %e, "lineage event not delivered");
            }
        }
    }
    // Whatever is still queued at the deadline is dropped.
    let mut left = 0u64;
    while rx.try_recv().is_ok() {
        left += 1;
        queued.dec();
    }
    if left > 0 {
        METRICS.events_dropped.with_label_values(&[&name]).inc_by(left);
        warn!(transport = %name, events = left, "lineage events dropped at shutdown: delivery deadline passed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventType, Facets, Job, Run};

    fn event(n: u32) -> RunEvent {
        RunEvent::new(EventType::Running, chrono::Utc::now(), Run { run_id: Run::new_id(), facets: Facets::new() }, Job { namespace: "t".into(), name: format!("job{n}"), facets: Facets::new() })
    }

    /// Blocks every send until released.
    struct Stuck {
        name: String,
        release: Arc<tokio::sync::Semaphore>,
        got: Arc<Mutex<Vec<String>>>,
    }

    #[async_trait::async_trait]
    impl Transport for Stuck {
        fn name(&self) -> &str {
            &self.name
        }
        async fn send(&self, e: &RunEvent) -> Result<(), TransportError> {
            let _permit = self.release.acquire().await.map_err(|e| TransportError::Permanent(e.to_string()))?;
            self.got.lock().push(e.job.name.clone());
            Ok(())
        }
    }

    struct Fast {
        got: Arc<Mutex<Vec<String>>>,
    }

    #[async_trait::async_trait]
    impl Transport for Fast {
        fn name(&self) -> &str {
            "fast-test"
        }
        async fn send(&self, e: &RunEvent) -> Result<(), TransportError> {
            self.got.lock().push(e.job.name.clone());
            Ok(())
        }
    }

    #[test]
    fn a_stuck_transport_drops_and_counts_without_blocking_or_delaying_others() {
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let stuck_got = Arc::new(Mutex::new(Vec::new()));
        let fast_got = Arc::new(Mutex::new(Vec::new()));
        let stuck = Arc::new(Stuck { name: "stuck-test".into(), release: release.clone(), got: stuck_got.clone() });
        let fast = Arc::new(Fast { got: fast_got.clone() });
        let emitter = Emitter::new(vec![stuck, fast], 100);
        let dropped = |lane: &str| METRICS.events_dropped.with_label_values(&[lane]).get();
        let (stuck_before, fast_before) = (dropped("stuck-test"), dropped("fast-test"));
        let started = Instant::now();
        for i in 0..100 {
            emitter.emit(event(i));
        }
        // The fast lane delivers everything, in order, while the stuck one
        // holds its first event.
        let deadline = Instant::now() + Duration::from_secs(5);
        while fast_got.lock().len() < 100 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let fast_names = fast_got.lock().clone();
        assert_eq!(fast_names.len(), 100, "the fast transport waited for the stuck one");
        assert_eq!((fast_names[0].as_str(), fast_names[99].as_str()), ("job0", "job99"));
        // Now the stuck lane's queue is full: 50 more are dropped there (one
        // may have left the queue for delivery), none on the fast lane.
        for i in 100..150 {
            emitter.emit(event(i));
        }
        assert!(started.elapsed() < Duration::from_secs(1), "emit blocked: {:?}", started.elapsed());
        let stuck_dropped = dropped("stuck-test") - stuck_before;
        assert!((49..=50).contains(&stuck_dropped), "dropped {stuck_dropped}");
        assert_eq!(dropped("fast-test") - fast_before, 0);
        // Released, the stuck lane delivers what it held, in order, on close.
        release.add_permits(1000);
        emitter.close(Duration::from_secs(5));
        let got = stuck_got.lock().clone();
        assert!(got.len() == 100 || got.len() == 101, "{}", got.len());
        assert_eq!(got[0], "job0");
        // After close, events are dropped (and counted), not queued.
        let before = dropped("fast-test");
        emitter.emit(event(1000));
        assert_eq!(dropped("fast-test"), before + 1);
    }

    #[test]
    fn close_gives_up_at_its_deadline() {
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let stuck = Arc::new(Stuck { name: "stuck-close-test".into(), release, got: Arc::new(Mutex::new(Vec::new())) });
        let emitter = Emitter::new(vec![stuck], 10);
        for i in 0..5 {
            emitter.emit(event(i));
        }
        let before = METRICS.events_dropped.with_label_values(&["stuck-close-test"]).get();
        let started = Instant::now();
        emitter.close(Duration::from_millis(300));
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(3), "{took:?}");
        // The one in delivery (if delivery had begun) failed; the rest were dropped.
        let dropped = METRICS.events_dropped.with_label_values(&["stuck-close-test"]).get() - before;
        let failed = METRICS.events_failed.with_label_values(&["stuck-close-test"]).get();
        assert_eq!(dropped + failed, 5, "dropped {dropped}, failed {failed}");
        assert!(dropped >= 4);
    }
}
