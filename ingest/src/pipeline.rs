//! One pipeline at run time: a read loop on its own thread (Kafka -> raw
//! batches) and a write stage on another (decode -> write -> commit), joined
//! by a channel of at most one waiting batch.
//!
//! Exactly once: every batch records, per partition, the progress it expects
//! the table to hold and the last offset it covers; the commit carries the
//! latter as `txn` versions and is refused when the former is stale. After a
//! refusal or a rebalance the loop drops what it buffered and re-reads its
//! positions from the table.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, SendTimeoutError, Sender};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::runtime::Handle;
use tracing::{debug, error, info, info_span, warn};

use inlet_config::{Config, OffsetGapPolicy, PipelineConfig};
use inlet_metastore::jobs::reporter::JobHandle;
use inlet_metastore::jobs::JobState;

use crate::buffer::{MemoryBudget, RawBatch, TopicPartition};
use crate::metrics::{Shutdown, METRICS};
use crate::source::kafka::{self, AssignmentChange, InletContext};
use crate::writer::{BatchWriter, WriteError, Written};
use crate::IngestError;

/// Attempts at writing one batch through a storage or registry outage
/// (about a minute of backoff in all) before the pipeline fails.
const WRITE_RETRIES: u32 = 7;

enum Command {
    Write(RawBatch),
    Progress(Vec<TopicPartition>, Sender<Result<HashMap<TopicPartition, Option<i64>>, String>>),
    Stop,
}

enum Event {
    Committed { partitions: Vec<(TopicPartition, i64)>, written: Written },
    Fenced(String),
    Discarded,
    Failed(WriteError),
}

/// How a pipeline ended.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub rows: u64,
    pub commits: u64,
    pub dead_letters: u64,
    /// Stopped with data read but not committed (the shutdown deadline passed).
    pub uncommitted: bool,
}

pub struct Options {
    pub until_caught_up: bool,
    pub budget: Arc<MemoryBudget>,
    pub shutdown: Shutdown,
    pub shutdown_deadline: Duration,
    /// The pipeline's lifecycle state (`inlet jobs`).
    pub job: JobHandle,
}

/// Runs one pipeline to completion on the calling (non-async) thread.
pub fn run(config: Arc<Config>, pipeline: Arc<PipelineConfig>, writer: BatchWriter, handle: Handle, opts: Options) -> Result<Summary, IngestError> {
    let name = pipeline.name.clone();
    let _span = info_span!("pipeline", pipeline = %name).entered();
    let (cmd_tx, cmd_rx) = bounded::<Command>(1);
    let (ev_tx, ev_rx) = bounded::<Event>(64);
    let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));

    let writer_thread = {
        let handle = handle.clone();
        let budget = opts.budget.clone();
        let generation = generation.clone();
        let name = name.clone();
        let job = opts.job.clone();
        std::thread::Builder::new()
            .name(format!("write-{name}"))
            .spawn(move || write_loop(writer, cmd_rx, ev_tx, handle, budget, generation, job))
            .map_err(|e| IngestError::Pipeline { pipeline: name.clone(), reason: e.to_string() })?
    };

    let job = opts.job.clone();
    job.enter(JobState::Starting, format!("joining consumer group for {}", pipeline.source.topic_pattern.clone().unwrap_or_else(|| pipeline.source.topics.join(", "))));
    let progress_tx = cmd_tx.clone();
    let progress: Box<kafka::ProgressFn> = Box::new(move |tps: &[TopicPartition]| {
        let (tx, rx) = bounded(1);
        progress_tx.send(Command::Progress(tps.to_vec(), tx)).map_err(|_| "write stage has stopped".to_string())?;
        rx.recv().map_err(|_| "write stage has stopped".to_string())?
    });
    let consumer = match kafka::consumer(&config, &pipeline, progress) {
        Ok(c) => c,
        Err(e) => {
            job.enter(JobState::Failed, format!("cannot create the Kafka consumer: {e}"));
            return Err(IngestError::Kafka { pipeline: name.clone(), source: e });
        }
    };
    let mut reader = Reader {
        pipeline: pipeline.clone(),
        consumer,
        cmd_tx,
        ev_rx,
        writer_generation: generation,
        buffer: RawBatch::default(),
        inflight: 0,
        summary: Summary::default(),
        opts,
        paused: false,
        start_marks: None,
        eof: BTreeMap::new(),
        idle_since: None,
        cur: None,
        send_blocked: false,
        others: (HashMap::new(), None),
        assigned_once: false,
        operator_pause: false,
    };
    METRICS.up.with_label_values(&[&name]).set(1);
    let result = reader.run();
    METRICS.up.with_label_values(&[&name]).set(0);
    let _ = reader.cmd_tx.send(Command::Stop);
    drop(reader.cmd_tx);
    reader.consumer.unsubscribe();
    let _ = writer_thread.join();
    let s = &reader.summary;
    match &result {
        Ok(Ended::CaughtUp) => job.enter(JobState::Finished, format!("caught up: {} rows in {} commits, {} dead letters", s.rows, s.commits, s.dead_letters)),
        Ok(Ended::Shutdown) => job.enter(JobState::Stopped, format!("stopped on request: {} rows in {} commits, {} dead letters", s.rows, s.commits, s.dead_letters)),
        Err(e) => job.enter(JobState::Failed, e.to_string()),
    }
    result.map(|_| reader.summary)
}

/// How the read loop ended.
enum Ended {
    Shutdown,
    CaughtUp,
}

fn write_loop(mut writer: BatchWriter, rx: Receiver<Command>, tx: Sender<Event>, handle: Handle, budget: Arc<MemoryBudget>, generation: Arc<std::sync::atomic::AtomicU64>, job: JobHandle) {
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Command::Stop => break,
            Command::Progress(tps, reply) => {
                let r = handle.block_on(writer.progress(&tps)).map_err(|e| e.to_string());
                let _ = reply.send(r);
            }
            Command::Write(batch) => {
                let event = if batch.generation != generation.load(Ordering::SeqCst) {
                    Event::Discarded
                } else {
                    let mut attempt = 0u32;
                    loop {
                        match handle.block_on(writer.write(&batch)) {
                            Ok(written) => {
                                if attempt > 0 {
                                    job.set_from(&[JobState::Recovering], JobState::Running, format!("write succeeded after {attempt} retries"));
                                }
                                break Event::Committed { partitions: batch.partitions.iter().map(|p| (p.tp.clone(), p.last)).collect(), written };
                            }
                            Err(WriteError::Fenced(why)) => {
                                generation.fetch_add(1, Ordering::SeqCst);
                                break Event::Fenced(why);
                            }
                            // Storage and registry outages are retried: a
                            // retried batch is safe, its commit is fenced
                            // should the first attempt have landed after all.
                            Err(e) if e.is_transient() && attempt < WRITE_RETRIES && batch.generation == generation.load(Ordering::SeqCst) => {
                                attempt += 1;
                                let wait = Duration::from_millis(500 * 2u64.pow(attempt.min(6)));
                                warn!(error = %e, attempt, retry_in_ms = wait.as_millis() as u64, "write failed; retrying");
                                job.set_from(&[JobState::Running, JobState::Paused, JobState::Recovering], JobState::Recovering, format!("write failed (attempt {attempt} of {WRITE_RETRIES}), retrying in {} ms: {e}", wait.as_millis()));
                                std::thread::sleep(wait);
                            }
                            Err(e) => break Event::Failed(e),
                        }
                    }
                };
                budget.release(batch.charged);
                METRICS.buffered_bytes.set(budget.used() as i64);
                let failed = matches!(event, Event::Failed(_));
                if tx.send(event).is_err() || failed {
                    break;
                }
            }
        }
    }
}

struct Reader {
    pipeline: Arc<PipelineConfig>,
    consumer: BaseConsumer<InletContext>,
    cmd_tx: Sender<Command>,
    ev_rx: Receiver<Event>,
    /// Bumped on every reset (rebalance, fencing); the write stage drops
    /// batches of older generations.
    writer_generation: Arc<std::sync::atomic::AtomicU64>,
    buffer: RawBatch,
    inflight: usize,
    summary: Summary,
    opts: Options,
    paused: bool,
    /// For `--until-caught-up`: (low, high) offsets of every partition of
    /// the subscribed topics when the pipeline started.
    start_marks: Option<BTreeMap<TopicPartition, (i64, i64)>>,
    /// Position at which each owned partition last reported its end.
    eof: BTreeMap<TopicPartition, i64>,
    /// The write stage did not take the last full buffer in time.
    send_blocked: bool,
    /// Since when no message has arrived.
    idle_since: Option<Instant>,
    /// The partition of the last message and its expected progress.
    cur: Option<(TopicPartition, Option<i64>)>,
    /// Table progress of partitions other group members own, and when it
    /// was last read.
    others: (HashMap<TopicPartition, Option<i64>>, Option<Instant>),
    assigned_once: bool,
    /// An operator asked the job to pause: consumption stays paused (after
    /// the buffer is committed) until resumed.
    operator_pause: bool,
}

impl Reader {
    fn name(&self) -> &str {
        &self.pipeline.name
    }

    fn run(&mut self) -> Result<Ended, IngestError> {
        let flush = self.pipeline.flush.clone();
        let max_latency = Duration::from_millis(flush.max_latency_ms);
        let max_payload = self.pipeline.dead_letter.max_message_bytes as usize;
        let want_headers = self.pipeline.metadata_columns.headers.is_some();
        let name = self.pipeline.name.clone();
        let mut last_wait_log = Instant::now();
        // Counted per flush rather than per message: a labelled counter
        // costs a hash lookup.
        let mut payload_bytes = 0u64;
        let messages = METRICS.messages.with_label_values(&[&name]);
        let message_bytes = METRICS.message_bytes.with_label_values(&[&name]);
        let mut counted = 0usize;
        if self.opts.until_caught_up {
            self.start_marks = Some(self.subscription_marks());
        }
        loop {
            self.drain_events()?;
            self.apply_assignment_changes()?;

            if self.opts.shutdown.load(Ordering::Relaxed) {
                self.opts.job.enter(JobState::Stopping, "shutdown requested: committing buffered data");
                return self.shutdown().map(|_| Ended::Shutdown);
            }
            if self.opts.until_caught_up && self.caught_up() {
                info!(pipeline = %name, "caught up with the offsets that were the latest at start");
                self.opts.job.enter(JobState::Stopping, "caught up with the offsets that were the latest at start");
                return self.shutdown().map(|_| Ended::CaughtUp);
            }
            self.follow_operator();

            // Back-pressure: a full buffer waits (up to a second) for the
            // write stage, leaving librdkafka's bounded prefetch in place;
            // partitions are paused only while the process is over its
            // memory budget or the write stage stays behind (pausing drops
            // the prefetched messages, which then have to be fetched again).
            let buffer_full = self.buffer.len() as u64 >= flush.max_rows || self.buffer.bytes() as u64 >= flush.max_bytes;
            let over = self.opts.budget.exhausted() || (buffer_full && self.send_blocked);
            self.set_paused(over || self.operator_pause);

            let timeout = match self.buffer.first_received {
                Some(t) => max_latency.saturating_sub(t.elapsed()).min(Duration::from_millis(100)),
                None => Duration::from_millis(100),
            };
            match self.consumer.poll(timeout) {
                Some(Ok(msg)) => {
                    self.idle_since = None;
                    // Messages come in runs per partition: resolve the
                    // partition (an allocation and a locked lookup) once a run.
                    let (topic, partition) = (msg.topic(), msg.partition());
                    if !matches!(&self.cur, Some((tp, _)) if tp.partition == partition && &*tp.topic == topic) {
                        let tp = TopicPartition { topic: Arc::from(topic), partition };
                        let Some(base) = self.consumer.context().assignment.lock().owned.get(&tp).copied() else {
                            continue; // a message of a partition we no longer own
                        };
                        self.eof.remove(&tp);
                        self.cur = Some((tp, base));
                    }
                    let Some((tp, base)) = &self.cur else { continue };
                    let headers: Vec<(&str, Option<&[u8]>)> = if want_headers {
                        msg.headers().map(|h| h.iter().map(|x| (x.key, x.value)).collect()).unwrap_or_default()
                    } else {
                        Vec::new()
                    };
                    let before = self.buffer.bytes();
                    self.buffer.push(tp, *base, msg.offset(), msg.timestamp().to_millis(), msg.payload(), msg.key(), &headers, max_payload);
                    let added = (self.buffer.bytes() - before) as u64;
                    self.buffer.charged += added;
                    self.opts.budget.charge(added);
                    payload_bytes += msg.payload_len() as u64;
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    self.cur = None;
                    // The event names the partition number only: with several
                    // topics it is ambiguous, and the quiet rule decides.
                    if let Ok(pos) = self.consumer.position() {
                        let matching: Vec<_> = pos.elements().into_iter().filter(|e| e.partition() == p).collect();
                        if let [e] = matching.as_slice() {
                            if let Offset::Offset(o) = e.offset() {
                                self.eof.insert(TopicPartition { topic: Arc::from(e.topic()), partition: p }, o);
                            }
                        }
                    }
                }
                Some(Err(e)) => self.on_consumer_error(e)?,
                // Time spent paused by back-pressure is not quiet.
                None if !self.paused => {
                    self.idle_since.get_or_insert_with(Instant::now);
                }
                None => {}
            }

            let due = !self.buffer.is_empty()
                && (self.operator_pause
                    || self.buffer.len() as u64 >= flush.max_rows
                    || self.buffer.bytes() as u64 >= flush.max_bytes
                    || self.buffer.first_received.is_some_and(|t| t.elapsed() >= max_latency)
                    || self.opts.budget.exhausted()
                    // Only worth checking once the topic went quiet or ended
                    // somewhere: not per message.
                    || (self.opts.until_caught_up && (self.idle_since.is_some() || !self.eof.is_empty()) && self.all_read()));
            if due {
                messages.inc_by(self.buffer.len().saturating_sub(counted) as u64);
                message_bytes.inc_by(payload_bytes);
                payload_bytes = 0;
                // A full buffer waits for the write stage; one due by latency
                // waits briefly (rather than spinning while the writer works).
                let wait = if buffer_full { Duration::from_secs(1) } else { Duration::from_millis(5) };
                self.send_blocked = !self.try_send_buffer(wait);
                counted = self.buffer.len();
            } else if self.buffer.is_empty() && !self.assigned_once && last_wait_log.elapsed() > Duration::from_secs(15) {
                info!(pipeline = %name, "waiting for a partition assignment from the consumer group");
                last_wait_log = Instant::now();
            }
        }
    }

    /// Follows the operator's desired state: a pause request stops
    /// consumption, and the job is `paused` once everything read before is
    /// committed; a resume lets consumption go on.
    fn follow_operator(&mut self) {
        let want = self.opts.job.pause_requested();
        if want && !self.operator_pause {
            info!(pipeline = %self.name(), "pause requested: committing what is buffered, then consuming nothing");
            self.operator_pause = true;
        } else if !want && self.operator_pause {
            self.operator_pause = false;
            self.opts.job.set_from(&[JobState::Paused], JobState::Running, "resumed by an operator");
        }
        if self.operator_pause && self.buffer.is_empty() && self.inflight == 0 && self.opts.job.state() != JobState::Paused {
            self.opts.job.enter(JobState::Paused, "paused by an operator: everything read before is committed");
        }
    }

    /// Hands the buffer to the write stage, waiting up to `wait` for it to
    /// take the batch. Returns whether it was taken.
    fn try_send_buffer(&mut self, wait: Duration) -> bool {
        if self.buffer.is_empty() {
            return true;
        }
        let fresh = RawBatch::with_capacity(self.pipeline.flush.max_bytes as usize, self.pipeline.flush.max_rows as usize);
        let mut batch = std::mem::replace(&mut self.buffer, fresh);
        batch.generation = self.writer_generation.load(Ordering::SeqCst);
        let advanced: Vec<(TopicPartition, i64)> = batch.partitions.iter().map(|p| (p.tp.clone(), p.last)).collect();
        let sent = match self.cmd_tx.send_timeout(Command::Write(batch), wait) {
            Ok(()) => {
                self.inflight += 1;
                self.cur = None;
                // The next batch expects this one to be committed.
                let mut a = self.consumer.context().assignment.lock();
                for (tp, last) in advanced {
                    if let Some(b) = a.owned.get_mut(&tp) {
                        *b = Some(last);
                    }
                }
                true
            }
            Err(SendTimeoutError::Timeout(Command::Write(b))) | Err(SendTimeoutError::Disconnected(Command::Write(b))) => {
                self.buffer = b;
                self.cur = None;
                false
            }
            Err(_) => false,
        };
        METRICS.buffered_bytes.set(self.opts.budget.used() as i64);
        sent
    }

    fn set_paused(&mut self, pause: bool) {
        if pause == self.paused {
            return;
        }
        if let Ok(assignment) = self.consumer.assignment() {
            let r = if pause { self.consumer.pause(&assignment) } else { self.consumer.resume(&assignment) };
            if let Err(e) = r {
                warn!(pipeline = %self.name(), error = %e, "pause/resume failed");
                return;
            }
        }
        self.paused = pause;
        self.idle_since = None;
        METRICS.paused.with_label_values(&[&self.pipeline.name]).set(i64::from(pause));
        debug!(pipeline = %self.name(), pause, used = self.opts.budget.used(), "back-pressure");
    }

    fn drain_events(&mut self) -> Result<(), IngestError> {
        while let Ok(ev) = self.ev_rx.try_recv() {
            self.inflight = self.inflight.saturating_sub(1);
            match ev {
                Event::Committed { partitions, written } => self.on_committed(&partitions, &written),
                Event::Discarded => {}
                Event::Fenced(why) => {
                    METRICS.fenced.with_label_values(&[&self.pipeline.name]).inc();
                    warn!(pipeline = %self.name(), %why, "commit fenced: another consumer owns these partitions now; re-reading positions from the table");
                    self.opts.job.set_from(&[JobState::Running], JobState::Recovering, format!("commit fenced, re-reading positions from the table: {why}"));
                    self.reset(None)?;
                    self.opts.job.set_from(&[JobState::Recovering], JobState::Running, "positions re-read from the table after a fenced commit");
                }
                Event::Failed(e) => {
                    return Err(IngestError::Pipeline { pipeline: self.pipeline.name.clone(), reason: e.to_string() });
                }
            }
        }
        Ok(())
    }

    fn on_committed(&mut self, partitions: &[(TopicPartition, i64)], written: &Written) {
        self.summary.rows += written.commit.rows as u64;
        self.summary.commits += 1;
        self.summary.dead_letters += written.dead_letters as u64;
        self.commit_to_kafka(partitions);
        crate::metrics::READY.store(true, Ordering::Relaxed);
    }

    fn commit_to_kafka(&self, partitions: &[(TopicPartition, i64)]) {
        let owned = self.consumer.context().assignment.lock().owned.keys().cloned().collect::<Vec<_>>();
        let mut tpl = TopicPartitionList::new();
        for (tp, last) in partitions {
            if owned.contains(tp) {
                let _ = tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(last + 1));
            }
        }
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
                debug!(pipeline = %self.name(), error = %e, "offset commit to Kafka failed");
            }
        }
    }

    fn apply_assignment_changes(&mut self) -> Result<(), IngestError> {
        let changes: Vec<AssignmentChange> = std::mem::take(&mut self.consumer.context().assignment.lock().changes);
        if changes.is_empty() {
            return Ok(());
        }
        self.cur = None;
        let mut fresh = Vec::new();
        for c in changes {
            METRICS.rebalances.with_label_values(&[&self.pipeline.name]).inc();
            match c {
                AssignmentChange::Failed(reason) => return Err(IngestError::Pipeline { pipeline: self.pipeline.name.clone(), reason }),
                AssignmentChange::Assigned(tps) => {
                    self.assigned_once = true;
                    fresh.extend(tps);
                }
                AssignmentChange::Revoked(tps) => {
                    for tp in &tps {
                        self.eof.remove(tp);
                    }
                }
            }
        }
        // A new assignment starts unpaused in librdkafka.
        if self.paused {
            self.paused = false;
            self.set_paused(true);
        }
        let owned = self.consumer.context().assignment.lock().owned.len();
        if self.assigned_once {
            self.opts.job.set_from(&[JobState::Starting, JobState::Recovering], JobState::Running, format!("consuming {owned} partition(s)"));
        }
        // Everything buffered was read under the previous assignment; in-flight
        // batches were invalidated by the generation bump in the callback.
        self.reset(Some(&fresh))
    }

    /// Drops buffered data and re-positions the partitions we keep (those
    /// not just assigned, which the rebalance callback positioned) at the
    /// table's progress.
    fn reset(&mut self, just_assigned: Option<&[TopicPartition]>) -> Result<(), IngestError> {
        self.writer_generation.fetch_add(1, Ordering::SeqCst);
        self.cur = None;
        let dropped = std::mem::take(&mut self.buffer);
        self.opts.budget.release(dropped.charged);
        let owned: Vec<TopicPartition> = self.consumer.context().assignment.lock().owned.keys().cloned().collect();
        let retained: Vec<TopicPartition> = owned.iter().filter(|tp| just_assigned.is_none_or(|j| !j.contains(tp))).cloned().collect();
        if retained.is_empty() {
            return Ok(());
        }
        let (tx, rx) = bounded(1);
        self.cmd_tx
            .send(Command::Progress(retained.clone(), tx))
            .map_err(|_| IngestError::Pipeline { pipeline: self.pipeline.name.clone(), reason: "write stage stopped".into() })?;
        // Events may arrive while waiting; they are about the old generation.
        let progress = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(p) => break p,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    while let Ok(ev) = self.ev_rx.try_recv() {
                        self.inflight = self.inflight.saturating_sub(1);
                        if let Event::Failed(e) = ev {
                            return Err(IngestError::Pipeline { pipeline: self.pipeline.name.clone(), reason: e.to_string() });
                        }
                    }
                }
                Err(_) => return Err(IngestError::Pipeline { pipeline: self.pipeline.name.clone(), reason: "write stage stopped".into() }),
            }
        };
        let progress = progress.map_err(|reason| IngestError::Pipeline { pipeline: self.pipeline.name.clone(), reason })?;
        let mut tpl = TopicPartitionList::new();
        {
            let mut a = self.consumer.context().assignment.lock();
            for tp in &retained {
                let committed = progress.get(tp).copied().flatten();
                a.owned.insert(tp.clone(), committed);
                let offset = committed.map(|v| Offset::Offset(v + 1)).unwrap_or(Offset::Beginning);
                let _ = tpl.add_partition_offset(&tp.topic, tp.partition, offset);
            }
        }
        if let Err(e) = self.consumer.seek_partitions(tpl, Duration::from_secs(10)) {
            warn!(pipeline = %self.name(), error = %e, "seek after reset failed");
        }
        Ok(())
    }

    /// The (low, high) offsets of every partition of the subscribed topics.
    fn subscription_marks(&self) -> BTreeMap<TopicPartition, (i64, i64)> {
        let mut marks = BTreeMap::new();
        let pattern = self.pipeline.source.topic_pattern.as_ref().and_then(|p| regex::Regex::new(&format!("^(?:{})$", p.trim_start_matches('^').trim_end_matches('$'))).ok());
        let metadata = match &pattern {
            Some(_) => self.consumer.fetch_metadata(None, Duration::from_secs(10)),
            None => Err(rdkafka::error::KafkaError::MetadataFetch(RDKafkaErrorCode::Fail)),
        };
        let mut topics: Vec<String> = self.pipeline.source.topics.clone();
        if let (Some(re), Ok(md)) = (&pattern, &metadata) {
            topics.extend(md.topics().iter().map(|t| t.name().to_string()).filter(|n| re.is_match(n)));
        }
        for topic in topics {
            let md = match self.consumer.fetch_metadata(Some(&topic), Duration::from_secs(10)) {
                Ok(md) => md,
                Err(e) => {
                    warn!(pipeline = %self.name(), %topic, error = %e, "cannot read topic metadata");
                    continue;
                }
            };
            for t in md.topics() {
                if t.error().is_some() {
                    warn!(pipeline = %self.name(), %topic, "topic does not exist; nothing to catch up with");
                    continue;
                }
                for p in t.partitions() {
                    match self.consumer.fetch_watermarks(&topic, p.id(), Duration::from_secs(10)) {
                        Ok(lh) => {
                            marks.insert(TopicPartition { topic: Arc::from(topic.as_str()), partition: p.id() }, lh);
                        }
                        Err(e) => warn!(pipeline = %self.name(), %topic, partition = p.id(), error = %e, "cannot read offsets"),
                    }
                }
            }
        }
        info!(pipeline = %self.name(), partitions = marks.len(), end = ?marks.iter().map(|(tp, (_, h))| format!("{tp}@{h}")).collect::<Vec<_>>(), "bounded run: reading up to these offsets");
        marks
    }

    /// Every owned partition has been read up to the offset that was the
    /// latest at start, and then to its end: either the consumer reported
    /// the end of the partition, or it is past the start offset and nothing
    /// arrived for a while. (Some brokers, tansu among them, report a high
    /// watermark below the last offset, and then never signal the end.)
    fn all_read(&self) -> bool {
        // Two empty fetch rounds (fetch.wait.max.ms is 500 ms by default).
        const QUIET: Duration = Duration::from_secs(1);
        let Some(marks) = &self.start_marks else { return false };
        let owned: Vec<(TopicPartition, Option<i64>)> = self.consumer.context().assignment.lock().owned.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let quiet = self.idle_since.is_some_and(|t| t.elapsed() >= QUIET);
        // Next offset to read: past what is buffered, else past what was sent.
        let next = |tp: &TopicPartition, sent: Option<i64>| {
            let buffered = self.buffer.partitions.iter().find(|p| &p.tp == tp).map(|p| p.last + 1);
            buffered.or(sent.map(|s| s + 1)).unwrap_or(-1)
        };
        !owned.is_empty()
            && owned.iter().all(|(tp, sent)| match marks.get(tp) {
                Some((low, high)) => high <= low || self.eof.get(tp).is_some_and(|p| p >= high) || (quiet && next(tp, *sent) >= *high),
                // A partition created after the start: read what it has.
                None => self.eof.contains_key(tp) || quiet,
            })
    }

    /// Everything up to the start offsets is committed: our partitions by
    /// us, the others (owned by other group members) according to the table.
    fn caught_up(&mut self) -> bool {
        if !(self.assigned_once && self.buffer.is_empty() && self.inflight == 0 && self.all_read()) {
            return false;
        }
        let owned: Vec<TopicPartition> = self.consumer.context().assignment.lock().owned.keys().cloned().collect();
        let marks = self.start_marks.clone().unwrap_or_default();
        let others: Vec<TopicPartition> = marks.keys().filter(|tp| !owned.contains(tp)).cloned().collect();
        if others.is_empty() {
            return true;
        }
        if self.others.1.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) {
            let (tx, rx) = bounded(1);
            if self.cmd_tx.send(Command::Progress(others.clone(), tx)).is_ok() {
                if let Ok(Ok(p)) = rx.recv_timeout(Duration::from_secs(30)) {
                    self.others.0 = p;
                }
            }
            self.others.1 = Some(Instant::now());
        }
        others.iter().all(|tp| {
            let (low, high) = marks[tp];
            high <= low || self.others.0.get(tp).copied().flatten().is_some_and(|c| c + 1 >= high)
        })
    }

    fn on_consumer_error(&mut self, e: KafkaError) -> Result<(), IngestError> {
        let code = e.rdkafka_error_code();
        if matches!(code, Some(RDKafkaErrorCode::AutoOffsetReset) | Some(RDKafkaErrorCode::OffsetOutOfRange)) {
            return self.on_offset_gap(e);
        }
        match code {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition) | Some(RDKafkaErrorCode::UnknownTopic) => {
                warn!(pipeline = %self.name(), error = %e, "subscribed topic does not exist (yet); waiting for it")
            }
            _ => warn!(pipeline = %self.name(), error = %e, "consumer error"),
        }
        Ok(())
    }

    /// The next offset to read was deleted by retention.
    fn on_offset_gap(&mut self, e: KafkaError) -> Result<(), IngestError> {
        let owned: Vec<(TopicPartition, Option<i64>)> = self.consumer.context().assignment.lock().owned.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let mut gaps = Vec::new();
        for (tp, committed) in owned {
            let next = committed.map(|c| c + 1).unwrap_or(0);
            if let Ok((low, _high)) = self.consumer.fetch_watermarks(&tp.topic, tp.partition, Duration::from_secs(10)) {
                if next < low {
                    gaps.push((tp, next, low));
                }
            }
        }
        if gaps.is_empty() {
            warn!(pipeline = %self.name(), error = %e, "offset out of range, but no gap found; retrying");
            return Ok(());
        }
        let described: Vec<String> = gaps.iter().map(|(tp, next, low)| format!("{tp}: next offset {next} was deleted, earliest available is {low} ({} messages lost to retention)", low - next)).collect();
        match self.pipeline.source.on_offset_gap {
            OffsetGapPolicy::Fail => Err(IngestError::Pipeline {
                pipeline: self.pipeline.name.clone(),
                reason: format!("offsets deleted by retention before they were ingested: {}; set `source.on_offset_gap: skip` to continue from the earliest available offsets", described.join("; ")),
            }),
            OffsetGapPolicy::Skip => {
                let mut tpl = TopicPartitionList::new();
                for (tp, _, low) in &gaps {
                    let _ = tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*low));
                }
                error!(pipeline = %self.name(), gaps = %described.join("; "), "skipping offsets deleted by retention");
                let _ = self.consumer.seek_partitions(tpl, Duration::from_secs(10));
                Ok(())
            }
        }
    }

    fn shutdown(&mut self) -> Result<(), IngestError> {
        let deadline = Instant::now() + self.opts.shutdown_deadline;
        self.set_paused(true);
        while !self.buffer.is_empty() && Instant::now() < deadline {
            self.try_send_buffer(Duration::from_millis(100));
            if !self.buffer.is_empty() {
                std::thread::sleep(Duration::from_millis(20));
                self.drain_events()?;
                let _ = self.consumer.poll(Duration::from_millis(0));
            }
        }
        while self.inflight > 0 && Instant::now() < deadline {
            match self.ev_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(ev) => {
                    // Put it back through the normal path.
                    self.inflight = self.inflight.saturating_sub(1);
                    match ev {
                        Event::Committed { partitions, written } => self.on_committed(&partitions, &written),
                        Event::Failed(e) => return Err(IngestError::Pipeline { pipeline: self.pipeline.name.clone(), reason: e.to_string() }),
                        Event::Fenced(_) | Event::Discarded => {}
                    }
                }
                Err(_) => {
                    let _ = self.consumer.poll(Duration::from_millis(0));
                }
            }
        }
        if self.inflight > 0 || !self.buffer.is_empty() {
            self.summary.uncommitted = true;
            warn!(pipeline = %self.name(), "shutdown deadline passed with data uncommitted; it will be read again on restart");
        }
        Ok(())
    }
}
