//! The events of inlet's two kinds of jobs.
//!
//! - An ingestion pipeline is a STREAMING job: START when it starts, RUNNING
//!   per table commit (or per interval), COMPLETE when it stops cleanly,
//!   ABORT when it stops with data left uncommitted, FAIL on an error.
//!   Inputs are its topics; the output is its table, named by storage with a
//!   symlink to the catalog name.
//! - A compaction run is a BATCH job: START, then COMPLETE or FAIL, with the
//!   table as input (at the version read) and output (at the version written).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::facets::{self, CommitFacts, EventTimeSource, InputField, KafkaRunFacet, PartitionOffset, ProcessingType, SchemaField};
use crate::model::{EventType, Facets, InputDataset, Job, OutputDataset, Run, RunEvent};
use crate::naming::DatasetId;

/// What lineage needs to know about an ingestion pipeline.
#[derive(Debug, Clone)]
pub struct StreamingJob {
    pub namespace: String,
    pub name: String,
    pub bootstrap_servers: String,
    pub consumer_group: String,
    /// The topics (for a topic pattern: those seen so far are added).
    pub topics: Vec<DatasetId>,
    pub table: DatasetId,
    /// The table's catalog name (`hive://host:port` + `db.table`).
    pub table_symlink: Option<DatasetId>,
    pub dead_letter: Option<(DatasetId, Option<DatasetId>)>,
    pub event_time_source: EventTimeSource,
    /// Column lineage of derived and metadata columns; the input's dataset
    /// is filled in per topic.
    pub column_lineage: Vec<ColumnSource>,
}

/// An output column computed from a field of every input topic.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSource {
    pub column: String,
    /// The input field: a payload field, or Kafka's own `topic`,
    /// `partition`, `offset`, `timestamp`, `key`, `headers`.
    pub field: String,
    /// Copied unchanged (identity) or computed.
    pub identity: bool,
    pub description: String,
}

/// One table commit of a streaming run.
#[derive(Debug, Clone)]
pub struct CommitReport {
    pub version: i64,
    pub committed_at: DateTime<Utc>,
    pub rows: u64,
    pub bytes: u64,
    pub files: u64,
    pub dead_letters: u64,
    pub offsets: Vec<PartitionOffset>,
    pub oldest_event: Option<DateTime<Utc>>,
    pub newest_event: Option<DateTime<Utc>>,
    pub oldest_kafka: Option<DateTime<Utc>>,
    pub newest_kafka: Option<DateTime<Utc>>,
    /// The table's schema after the commit.
    pub schema: Option<Vec<SchemaField>>,
}

/// One run of a streaming job, from START to its end: builds its events.
#[derive(Debug)]
pub struct StreamingRun {
    job: StreamingJob,
    pub run_id: uuid::Uuid,
    offsets: BTreeMap<(String, i32), i64>,
    newest_event: Option<DateTime<Utc>>,
    schema: Option<Vec<SchemaField>>,
    version: Option<i64>,
    totals: (u64, u64, u64),
    /// Figures since the last RUNNING event (interval mode).
    pending: Option<(CommitReport, (u64, u64, u64))>,
    extra_topics: BTreeSet<DatasetId>,
}

impl Default for CommitReport {
    fn default() -> Self {
        CommitReport { version: 0, committed_at: DateTime::<Utc>::MIN_UTC, rows: 0, bytes: 0, files: 0, dead_letters: 0, offsets: Vec::new(), oldest_event: None, newest_event: None, oldest_kafka: None, newest_kafka: None, schema: None }
    }
}

impl StreamingRun {
    pub fn new(job: StreamingJob) -> StreamingRun {
        StreamingRun { job, run_id: Run::new_id(), offsets: BTreeMap::new(), newest_event: None, schema: None, version: None, totals: (0, 0, 0), pending: None, extra_topics: BTreeSet::new() }
    }

    pub fn job(&self) -> &StreamingJob {
        &self.job
    }

    /// A topic matched by the pipeline's pattern.
    pub fn add_topic(&mut self, topic: DatasetId) {
        if !self.job.topics.contains(&topic) {
            self.extra_topics.insert(topic);
        }
    }

    fn event(&self, ty: EventType, at: DateTime<Utc>, commit: Option<&CommitReport>, stats: Option<(u64, u64, u64)>) -> RunEvent {
        let mut job_facets = Facets::new();
        let (k, v) = facets::job_type(ProcessingType::Streaming, "INGEST");
        job_facets.insert(k.into(), v);
        let mut run_facets = Facets::new();
        let (k, v) = facets::processing_engine();
        run_facets.insert(k.into(), v);
        let kafka = KafkaRunFacet {
            bootstrap_servers: Some(self.job.bootstrap_servers.clone()),
            consumer_group: Some(self.job.consumer_group.clone()),
            offsets: self.offsets.iter().map(|((t, p), o)| PartitionOffset { topic: t.clone(), partition: *p, offset: *o }).collect(),
            event_time_source: self.job.event_time_source,
            newest_event_time: self.newest_event,
            commit: commit.map(|c| CommitFacts {
                version: c.version,
                committed_at: c.committed_at,
                oldest_event_time: c.oldest_event,
                newest_event_time: c.newest_event,
                oldest_kafka_timestamp: c.oldest_kafka,
                newest_kafka_timestamp: c.newest_kafka,
                rows: c.rows,
                dead_letters: c.dead_letters,
            }),
        };
        let (k, v) = facets::inlet_kafka(&kafka);
        run_facets.insert(k.into(), v);
        let mut e = RunEvent::new(ty, at, Run { run_id: self.run_id, facets: run_facets }, Job { namespace: self.job.namespace.clone(), name: self.job.name.clone(), facets: job_facets });
        let topics: Vec<&DatasetId> = self.job.topics.iter().chain(self.extra_topics.iter()).collect();
        e.inputs = topics.iter().map(|t| InputDataset::new(t)).collect();

        let mut out = OutputDataset::new(&self.job.table);
        if let Some(link) = &self.job.table_symlink {
            let (k, v) = facets::symlinks(&[(link.clone(), "TABLE")]);
            out.facets.insert(k.into(), v);
        }
        if let Some(schema) = &self.schema {
            let (k, v) = facets::schema(schema);
            out.facets.insert(k.into(), v);
            let lineage = self.column_lineage(&topics, schema);
            if !lineage.is_empty() {
                let (k, v) = facets::column_lineage(&lineage);
                out.facets.insert(k.into(), v);
            }
        }
        if let Some(v) = commit.map(|c| c.version).or(self.version) {
            let (k, val) = facets::dataset_version(v);
            out.facets.insert(k.into(), val);
        }
        if let Some((rows, bytes, files)) = stats {
            let (k, v) = facets::output_statistics(rows, bytes, files);
            out.output_facets.insert(k.into(), v);
        }
        e.outputs.push(out);
        if let Some((dl, link)) = &self.job.dead_letter {
            let mut o = OutputDataset::new(dl);
            if let Some(link) = link {
                let (k, v) = facets::symlinks(&[(link.clone(), "TABLE")]);
                o.facets.insert(k.into(), v);
            }
            e.outputs.push(o);
        }
        e
    }

    fn column_lineage(&self, topics: &[&DatasetId], schema: &[SchemaField]) -> BTreeMap<String, Vec<InputField>> {
        let mut out = BTreeMap::new();
        for c in &self.job.column_lineage {
            if !schema.iter().any(|f| f.name == c.column) {
                continue;
            }
            let inputs = topics
                .iter()
                .map(|t| if c.identity { InputField::identity(t, &c.field, c.description.clone()) } else { InputField::transformed(t, &c.field, c.description.clone()) })
                .collect();
            out.insert(c.column.clone(), inputs);
        }
        out
    }

    /// START, with the table as it is (schema and version when it exists).
    pub fn start(&mut self, at: DateTime<Utc>, version: Option<i64>, schema: Option<Vec<SchemaField>>) -> RunEvent {
        self.version = version;
        if schema.is_some() {
            self.schema = schema;
        }
        self.event(EventType::Start, at, None, None)
    }

    fn absorb(&mut self, c: &CommitReport) {
        for o in &c.offsets {
            self.offsets.insert((o.topic.clone(), o.partition), o.offset);
        }
        if let Some(n) = c.newest_event {
            self.newest_event = Some(self.newest_event.map_or(n, |x| x.max(n)));
        }
        if c.schema.is_some() {
            self.schema = c.schema.clone();
        }
        self.version = Some(c.version);
        self.totals = (self.totals.0 + c.rows, self.totals.1 + c.bytes, self.totals.2 + c.files);
    }

    /// RUNNING for one commit.
    pub fn running(&mut self, c: CommitReport) -> RunEvent {
        self.absorb(&c);
        self.event(EventType::Running, c.committed_at, Some(&c), Some((c.rows, c.bytes, c.files)))
    }

    /// Records a commit to be reported by the next [`StreamingRun::flush_running`].
    pub fn accumulate(&mut self, c: CommitReport) {
        self.absorb(&c);
        let stats = match self.pending.take() {
            Some((_, (r, b, f))) => (r + c.rows, b + c.bytes, f + c.files),
            None => (c.rows, c.bytes, c.files),
        };
        self.pending = Some((c, stats));
    }

    /// RUNNING covering the commits accumulated since the last one (None
    /// when there were none): the last commit's facts, the statistics of all.
    pub fn flush_running(&mut self) -> Option<RunEvent> {
        let (c, stats) = self.pending.take()?;
        Some(self.event(EventType::Running, c.committed_at, Some(&c), Some(stats)))
    }

    fn end(&mut self, ty: EventType, at: DateTime<Utc>, error: Option<&str>) -> RunEvent {
        let mut e = self.event(ty, at, None, Some(self.totals));
        if let Some(msg) = error {
            let (k, v) = facets::error_message(msg);
            e.run.facets.insert(k.into(), v);
        }
        e
    }

    /// COMPLETE: stopped with everything read committed. Output statistics
    /// are the run's totals.
    pub fn complete(&mut self, at: DateTime<Utc>) -> RunEvent {
        self.end(EventType::Complete, at, None)
    }

    /// ABORT: stopped before committing all it had read (a shutdown deadline).
    pub fn abort(&mut self, at: DateTime<Utc>, why: &str) -> RunEvent {
        self.end(EventType::Abort, at, Some(why))
    }

    /// FAIL: stopped by an error.
    pub fn fail(&mut self, at: DateTime<Utc>, error: &str) -> RunEvent {
        self.end(EventType::Fail, at, Some(error))
    }
}

/// One compaction run of a table.
#[derive(Debug, Clone)]
pub struct BatchRun {
    pub namespace: String,
    pub name: String,
    pub run_id: uuid::Uuid,
    pub table: DatasetId,
    pub table_symlink: Option<DatasetId>,
    /// `COMPACTION`, `VACUUM`...
    pub job_type: String,
}

/// What a batch run did to its table.
#[derive(Debug, Clone, Default)]
pub struct BatchOutcome {
    pub version_read: Option<i64>,
    /// The last version written (None: nothing was committed).
    pub version_written: Option<i64>,
    pub files_out: u64,
    pub bytes_out: u64,
    pub rows_out: Option<u64>,
}

impl BatchRun {
    pub fn new(namespace: &str, name: &str, job_type: &str, table: DatasetId, table_symlink: Option<DatasetId>) -> BatchRun {
        BatchRun { namespace: namespace.into(), name: name.into(), run_id: Run::new_id(), table, table_symlink, job_type: job_type.into() }
    }

    fn dataset_facets(&self, version: Option<i64>, schema: Option<&[SchemaField]>) -> Facets {
        let mut f = Facets::new();
        if let Some(link) = &self.table_symlink {
            let (k, v) = facets::symlinks(&[(link.clone(), "TABLE")]);
            f.insert(k.into(), v);
        }
        if let Some(v) = version {
            let (k, val) = facets::dataset_version(v);
            f.insert(k.into(), val);
        }
        if let Some(s) = schema {
            let (k, val) = facets::schema(s);
            f.insert(k.into(), val);
        }
        f
    }

    fn event(&self, ty: EventType, at: DateTime<Utc>, o: &BatchOutcome, schema: Option<&[SchemaField]>, error: Option<&str>) -> RunEvent {
        let mut job_facets = Facets::new();
        let (k, v) = facets::job_type(ProcessingType::Batch, &self.job_type);
        job_facets.insert(k.into(), v);
        let mut run_facets = Facets::new();
        let (k, v) = facets::processing_engine();
        run_facets.insert(k.into(), v);
        if let Some(msg) = error {
            let (k, v) = facets::error_message(msg);
            run_facets.insert(k.into(), v);
        }
        let mut e = RunEvent::new(ty, at, Run { run_id: self.run_id, facets: run_facets }, Job { namespace: self.namespace.clone(), name: self.name.clone(), facets: job_facets });
        let mut input = InputDataset::new(&self.table);
        input.facets = self.dataset_facets(o.version_read, schema);
        e.inputs.push(input);
        if ty != EventType::Start {
            let mut out = OutputDataset::new(&self.table);
            out.facets = self.dataset_facets(o.version_written.or(o.version_read), schema);
            if o.version_written.is_some() {
                let (k, v) = facets::output_statistics(o.rows_out.unwrap_or(0), o.bytes_out, o.files_out);
                out.output_facets.insert(k.into(), v);
            }
            e.outputs.push(out);
        }
        e
    }

    pub fn start(&self, at: DateTime<Utc>, version_read: Option<i64>, schema: Option<&[SchemaField]>) -> RunEvent {
        self.event(EventType::Start, at, &BatchOutcome { version_read, ..Default::default() }, schema, None)
    }

    pub fn complete(&self, at: DateTime<Utc>, o: &BatchOutcome, schema: Option<&[SchemaField]>) -> RunEvent {
        self.event(EventType::Complete, at, o, schema, None)
    }

    pub fn fail(&self, at: DateTime<Utc>, o: &BatchOutcome, error: &str) -> RunEvent {
        self.event(EventType::Fail, at, o, None, Some(error))
    }

    /// COMPLETE of a partition commit: the partition, with its totals, is
    /// closed (a `PARTITION_COMMIT` run of the ingest job's committer).
    pub fn partition_committed(&self, at: DateTime<Utc>, o: &BatchOutcome, partition: &facets::PartitionCommitFacet) -> RunEvent {
        let mut e = self.event(EventType::Complete, at, o, None, None);
        let (k, v) = facets::inlet_partition_commit(partition);
        e.run.facets.insert(k.into(), v);
        e
    }
}
