//! Lineage and latency of the pipelines of one `inlet ingest` process: each
//! pipeline is an OpenLineage STREAMING job whose run spans the pipeline's
//! life in this process (START when it starts, RUNNING per commit or per
//! `lineage.running_every`, then COMPLETE, ABORT when the shutdown deadline
//! left data uncommitted, or FAIL), and each table has a freshness and
//! latency tracker and its alerts ([`inlet_lineage::latency`]).
//!
//! Nothing here can slow ingestion: events go to the emitter's bounded
//! queues (dropped and counted when full), and the commit hook costs a few
//! hundred nanoseconds plus building one event.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deltalake::arrow::datatypes::{DataType, Schema};
use inlet_config::{Config, PipelineConfig, RunningEvery};
use inlet_lineage::events::{ColumnSource, CommitReport, StreamingJob, StreamingRun};
use inlet_lineage::facets::{EventTimeSource, PartitionOffset, SchemaField};
use inlet_lineage::latency::{sample_indexes, MessageTimes, Monitor, TableTracker};
use inlet_lineage::{naming, Emitter};
use inlet_table::Warehouse;
use parking_lot::{Mutex, RwLock};

use crate::buffer::RawBatch;
use crate::writer::Written;

/// Trackers by pipeline, for the Kafka statistics callback (consumer lag).
static TRACKERS: LazyLock<RwLock<HashMap<String, Arc<TableTracker>>>> = LazyLock::new(Default::default);

/// Reports a pipeline's consumer lag (librdkafka statistics).
pub fn report_lag(pipeline: &str, lag: Option<i64>) {
    if let Some(t) = TRACKERS.read().get(pipeline) {
        t.set_consumer_lag(lag);
    }
}

/// An Arrow type as a schema facet names it.
fn type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Int8 => "byte".into(),
        DataType::Int16 => "short".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "long".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::Struct(_) => "struct".into(),
        DataType::List(f) | DataType::LargeList(f) => format!("array<{}>", type_name(f.data_type())),
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!("map<{},{}>", type_name(kv[0].data_type()), type_name(kv[1].data_type())),
            _ => "map".into(),
        },
        other => other.to_string().to_ascii_lowercase(),
    }
}

/// The schema facet's fields of an Arrow schema (struct fields nested).
pub fn schema_fields(schema: &Schema) -> Vec<SchemaField> {
    fn field(f: &deltalake::arrow::datatypes::Field) -> SchemaField {
        let mut s = SchemaField::new(f.name(), type_name(f.data_type()));
        if let DataType::Struct(children) = f.data_type() {
            s.fields = children.iter().map(|c| field(c)).collect();
        }
        s
    }
    schema.fields().iter().map(|f| field(f)).collect()
}

/// Column lineage of a pipeline's derived and metadata columns.
fn column_sources(p: &PipelineConfig) -> Vec<ColumnSource> {
    let mut out = Vec::new();
    if let Some(et) = &p.table.event_time {
        for d in &et.partitions {
            out.push(ColumnSource { column: d.column.clone(), field: et.field.clone(), identity: false, description: format!("strftime `{}` of the event time in {}", d.format, et.time_zone) });
        }
    }
    let m = &p.metadata_columns;
    for (col, field) in [(&m.topic, "topic"), (&m.partition, "partition"), (&m.offset, "offset"), (&m.timestamp, "timestamp"), (&m.key, "key"), (&m.headers, "headers")] {
        if let Some(c) = col {
            out.push(ColumnSource { column: c.clone(), field: field.into(), identity: true, description: format!("the Kafka message's {field}") });
        }
    }
    out
}

/// Lineage and latency of one pipeline.
pub struct Observer {
    emitter: Emitter,
    run: Mutex<StreamingRun>,
    tracker: Arc<TableTracker>,
    every: RunningEvery,
    last_running: Mutex<Instant>,
    brokers: String,
}

fn ms_to_time(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

impl Observer {
    /// START, with the table's schema when it exists.
    pub fn started(&self, schema: Option<&Schema>) {
        let e = self.run.lock().start(Utc::now(), None, schema.map(schema_fields));
        self.emitter.emit(e);
    }

    /// After a commit (on the write thread).
    pub fn committed(&self, raw: &RawBatch, written: &Written, schema: Option<&Schema>) {
        let committed_at = Utc::now();
        let committed_ms = committed_at.timestamp_millis();
        let event_time_field = written.newest_event_micros.is_some() || !written.event_samples.is_empty();
        // Kafka timestamps of the batch; event times come from the
        // partitioner when the pipeline has an event-time field, else the
        // Kafka timestamp stands in for them.
        let (mut oldest_k, mut newest_k) = (i64::MAX, i64::MIN);
        for m in &raw.messages {
            if let Some(t) = m.timestamp_ms {
                oldest_k = oldest_k.min(t);
                newest_k = newest_k.max(t);
            }
        }
        let kafka = (oldest_k <= newest_k).then_some((oldest_k, newest_k));
        let (oldest_e, newest_e) = if event_time_field { (written.oldest_event_micros.map(|m| m / 1000), written.newest_event_micros.map(|m| m / 1000)) } else { (kafka.map(|k| k.0), kafka.map(|k| k.1)) };
        let samples: Vec<MessageTimes> = if event_time_field {
            written.event_samples.iter().map(|(msg, micros)| MessageTimes { event_ms: Some(micros / 1000), kafka_ms: raw.messages.get(*msg as usize).and_then(|m| m.timestamp_ms) }).collect()
        } else {
            sample_indexes(raw.messages.len()).map(|i| MessageTimes { event_ms: None, kafka_ms: raw.messages[i].timestamp_ms }).collect()
        };
        self.tracker.committed(committed_ms, newest_e, &samples);
        if !self.emitter.is_enabled() {
            return;
        }
        let report = CommitReport {
            version: written.commit.version,
            committed_at,
            rows: written.commit.rows as u64,
            bytes: written.commit.bytes,
            files: written.commit.files as u64,
            dead_letters: written.dead_letters as u64,
            offsets: raw.partitions.iter().map(|p| PartitionOffset { topic: p.tp.topic.to_string(), partition: p.tp.partition, offset: p.last }).collect(),
            oldest_event: oldest_e.and_then(ms_to_time),
            newest_event: newest_e.and_then(ms_to_time),
            oldest_kafka: kafka.and_then(|k| ms_to_time(k.0)),
            newest_kafka: kafka.and_then(|k| ms_to_time(k.1)),
            schema: schema.map(schema_fields),
        };
        let mut run = self.run.lock();
        for p in &raw.partitions {
            run.add_topic(naming::kafka(&self.brokers, &p.tp.topic));
        }
        match self.every {
            RunningEvery::Commit => {
                let e = run.running(report);
                drop(run);
                self.emitter.emit(e);
            }
            RunningEvery::Interval(_) => run.accumulate(report),
        }
    }

    /// Interval mode: RUNNING for the commits since the last one, when due.
    fn tick(&self, force: bool) {
        let RunningEvery::Interval(every) = self.every else { return };
        let mut last = self.last_running.lock();
        if !force && last.elapsed() < every {
            return;
        }
        *last = Instant::now();
        let e = self.run.lock().flush_running();
        if let Some(e) = e {
            self.emitter.emit(e);
        }
    }

    /// One COMPLETE event per partition closed by partition commit, from
    /// the pipeline's `<job>.partition_commit` batch job.
    pub fn partitions_closed(&self, closed: &[crate::sink::ClosedPartition]) {
        if !self.emitter.is_enabled() {
            return;
        }
        let (namespace, name, table, symlink) = {
            let run = self.run.lock();
            let job = run.job();
            (job.namespace.clone(), format!("{}.partition_commit", job.name), job.table.clone(), job.table_symlink.clone())
        };
        for c in closed {
            let run = inlet_lineage::events::BatchRun::new(&namespace, &name, "PARTITION_COMMIT", table.clone(), symlink.clone());
            let outcome = inlet_lineage::events::BatchOutcome { version_read: Some(c.version), version_written: Some(c.version), files_out: c.files, bytes_out: c.bytes, rows_out: Some(c.rows) };
            let facet = inlet_lineage::facets::PartitionCommitFacet { partition: c.name.clone(), files: c.files, rows: c.rows, bytes: c.bytes, recommit: c.recommit };
            self.emitter.emit(run.partition_committed(Utc::now(), &outcome, &facet));
        }
    }

    /// COMPLETE, ABORT or FAIL.
    pub fn finished(&self, outcome: Result<bool, String>) {
        self.tick(true);
        let now = Utc::now();
        let mut run = self.run.lock();
        let e = match outcome {
            Ok(false) => run.complete(now),
            Ok(true) => run.abort(now, "stopped with data read but not committed (shutdown deadline); it is read again on restart"),
            Err(why) => run.fail(now, &why),
        };
        drop(run);
        self.emitter.emit(e);
    }
}

/// The lineage of all pipelines of the process.
pub struct Lineage {
    emitter: Emitter,
    observers: HashMap<String, Arc<Observer>>,
    monitor: Monitor,
    ticker: Option<tokio::task::JoinHandle<()>>,
    shutdown_timeout: Duration,
}

impl Lineage {
    /// Builds the emitter of `lineage.transports` and one observer and
    /// tracker per pipeline. Never fails: a transport that cannot be built
    /// is logged and left out.
    pub fn start(config: &Arc<Config>, pipelines: &[Arc<PipelineConfig>], warehouse: &Warehouse) -> Lineage {
        let emitter = inlet_metastore::store::lineage::emitter(config);
        let every = RunningEvery::parse(&config.lineage.running_every).unwrap_or(RunningEvery::Commit);
        let mut observers = HashMap::new();
        let mut trackers = Vec::new();
        for p in pipelines {
            let brokers = p.source.brokers.clone().or_else(|| config.kafka.brokers.clone()).unwrap_or_default();
            let table_name = format!("{}.{}", p.table.database, p.table.name);
            let location = warehouse.table_location(&p.table.database, &p.table.name, p.table.location.as_deref(), &config.storage).map(|l| l.display).unwrap_or_else(|_| table_name.clone());
            let dl_name = p.dead_letter.table.clone().unwrap_or_else(|| format!("{}_dead_letter", p.table.name));
            let dead_letter = warehouse.table_location(&p.table.database, &dl_name, None, &config.storage).ok().map(|l| (naming::storage(&l.display), inlet_lineage::table_symlink(config, &p.table.database, &dl_name)));
            let job = StreamingJob {
                namespace: config.lineage.namespace.clone(),
                name: naming::ingest_job(&p.name),
                bootstrap_servers: brokers.clone(),
                consumer_group: p.source.group_id.clone().unwrap_or_else(|| format!("inlet-{}", p.name)),
                topics: p.source.topics.iter().map(|t| naming::kafka(&brokers, t)).collect(),
                table: naming::storage(&location),
                table_symlink: inlet_lineage::table_symlink(config, &p.table.database, &p.table.name),
                dead_letter: if p.dead_letter.policy == inlet_config::DeadLetterPolicy::DeadLetter { dead_letter } else { None },
                event_time_source: if p.table.event_time.is_some() { EventTimeSource::EventTimeField } else { EventTimeSource::KafkaTimestamp },
                column_lineage: column_sources(p),
            };
            let tracker = TableTracker::new(&table_name, &p.name, p.alerts.clone());
            TRACKERS.write().insert(p.name.clone(), tracker.clone());
            trackers.push(tracker.clone());
            observers.insert(p.name.clone(), Arc::new(Observer { emitter: emitter.clone(), run: Mutex::new(StreamingRun::new(job)), tracker, every, last_running: Mutex::new(Instant::now()), brokers }));
        }
        // A restarted pipeline knows its table's freshness at once: the
        // newest event time the lineage store recorded (best effort).
        if let (Some(c), true) = (&config.catalog, inlet_lineage::wants_store(config)) {
            let seeds: Vec<(Arc<TableTracker>, naming::DatasetId)> = observers.values().map(|o| (o.tracker.clone(), o.run.lock().job().table.clone())).collect();
            let (url, migrate) = (c.database_url.clone(), c.migrate_on_start);
            tokio::spawn(async move {
                let seeded = tokio::time::timeout(Duration::from_secs(10), async {
                    let store = inlet_metastore::Store::open(&url, migrate).await?;
                    let db = inlet_metastore::store::lineage::LineageDb::new(store);
                    for (tracker, id) in seeds {
                        if let Some(ms) = db.newest_event_ms(&id).await? {
                            tracker.seed_newest_event_ms(ms);
                        }
                    }
                    Ok::<_, inlet_metastore::store::StoreError>(())
                })
                .await;
                if !matches!(seeded, Ok(Ok(()))) {
                    tracing::debug!("freshness not seeded from the lineage store");
                }
            });
        }
        let monitor = Monitor::start(trackers, config.lineage.alerts.clone());
        let ticker = matches!(every, RunningEvery::Interval(_)).then(|| {
            let obs: Vec<Arc<Observer>> = observers.values().cloned().collect();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                loop {
                    tick.tick().await;
                    for o in &obs {
                        o.tick(false);
                    }
                }
            })
        });
        Lineage { emitter, observers, monitor, ticker, shutdown_timeout: Duration::from_millis(config.lineage.shutdown_timeout_ms) }
    }

    pub fn observer(&self, pipeline: &str) -> Option<Arc<Observer>> {
        self.observers.get(pipeline).cloned()
    }

    /// A pipeline ended: `Ok(uncommitted)` or the error.
    pub fn finished(&self, pipeline: &str, outcome: Result<bool, String>) {
        if let Some(o) = self.observers.get(pipeline) {
            o.finished(outcome);
        }
    }

    /// Delivers what is queued (up to `lineage.shutdown_timeout_ms`) and stops.
    pub async fn finish(self) {
        if let Some(t) = self.ticker {
            t.abort();
        }
        self.emitter.close_async(self.shutdown_timeout).await;
        self.monitor.stop().await;
        for name in self.observers.keys() {
            TRACKERS.write().remove(name);
        }
    }
}
