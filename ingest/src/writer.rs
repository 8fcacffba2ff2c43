//! The write stage of a pipeline: decode a batch of raw messages, add
//! metadata and derived partition columns, route bad messages, then write
//! and commit rows and progress to the table.
//!
//! It runs on its own thread so that decoding and Parquet encoding overlap
//! with reading the next batch from Kafka.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deltalake::arrow::array::{new_null_array, ArrayRef, BooleanArray};
use deltalake::arrow::compute::{cast, filter_record_batch};
use deltalake::arrow::datatypes::{Field, Schema, SchemaRef};
use deltalake::arrow::record_batch::RecordBatch;
use inlet_config::{DeadLetterPolicy, PipelineConfig, TableFormat};
use tracing::{info, instrument, warn};

use crate::buffer::{RawBatch, TopicPartition};
use crate::dead_letter::DeadLetterTable;
use crate::decode::{metadata, DecodeError, MessageDecoder, Rejected};
use crate::metrics::METRICS;
use crate::partitioning::EventTimePartitioner;
use crate::sink::{Commit, SinkError, TableSink};
use crate::watermark::Watermarks;

/// Why a batch could not be written. Everything here stops the pipeline,
/// except [`WriteError::Fenced`], after which the reader re-reads progress.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("another writer committed these partitions first: {0}")]
    Fenced(String),
    #[error("pipeline stopped by dead_letter.policy=stop: {topic}/{partition} offset {offset}: {reason}")]
    Stopped { topic: String, partition: i32, offset: i64, reason: String },
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Sink(SinkError),
    #[error("table {table}: {reason}")]
    Schema { table: String, reason: String },
}

impl WriteError {
    /// Failures of infrastructure (storage, registry) that may pass, as
    /// opposed to failures of the data or the configuration.
    pub fn is_transient(&self) -> bool {
        match self {
            WriteError::Decode(DecodeError::Registry { .. }) => true,
            WriteError::Sink(SinkError::Table(_)) | WriteError::Sink(SinkError::Write { .. }) => true,
            _ => false,
        }
    }
}

impl From<SinkError> for WriteError {
    fn from(e: SinkError) -> Self {
        match e {
            SinkError::Fenced(why) => WriteError::Fenced(why),
            other => WriteError::Sink(other),
        }
    }
}

/// What one batch produced.
#[derive(Debug, Default)]
pub struct Written {
    pub commit: Commit,
    pub dead_letters: usize,
    pub skipped: usize,
    pub newest_event_micros: Option<i64>,
    pub oldest_event_micros: Option<i64>,
    /// (message index in the batch, event time) of sampled rows.
    pub event_samples: Vec<(u32, i64)>,
}

/// The transaction id under which a pipeline records a partition's progress.
pub fn app_id(pipeline: &str, tp: &TopicPartition) -> String {
    format!("inlet:{pipeline}:{}:{}", tp.topic, tp.partition)
}

pub struct BatchWriter {
    pipeline: Arc<PipelineConfig>,
    decoder: Box<dyn MessageDecoder>,
    sink: Box<dyn TableSink>,
    dead_letters: DeadLetterTable,
    partitioner: Option<EventTimePartitioner>,
    metadata_fields: Vec<Field>,
    lineage: Option<Arc<crate::lineage::Observer>>,
    /// Partition commit's event-time watermark (`format: hive` with
    /// `partition_commit`).
    watermarks: Option<Watermarks>,
}

impl BatchWriter {
    pub fn new(pipeline: Arc<PipelineConfig>, decoder: Box<dyn MessageDecoder>, sink: Box<dyn TableSink>, dead_letters: DeadLetterTable) -> Result<Self, WriteError> {
        let partitioner = match &pipeline.table.event_time {
            Some(et) => Some(EventTimePartitioner::new(et).map_err(|reason| WriteError::Schema { table: sink.describe(), reason })?),
            None => None,
        };
        let metadata_fields = metadata::fields(&pipeline.metadata_columns);
        let mut partitioner = partitioner;
        let watermarks = match (&pipeline.table.hive.partition_commit, partitioner.as_mut()) {
            (Some(pc), Some(p)) if pipeline.table.format == TableFormat::Hive => {
                p.keep_row_times(true);
                Some(Watermarks::new(Duration::from_secs(pc.delay_secs.max(60))))
            }
            _ => None,
        };
        Ok(Self { pipeline, decoder, sink, dead_letters, partitioner, metadata_fields, lineage: None, watermarks })
    }

    pub fn describe(&self) -> String {
        self.sink.describe()
    }

    /// Reports commits to the pipeline's lineage observer.
    pub fn with_lineage(mut self, observer: Option<Arc<crate::lineage::Observer>>) -> Self {
        self.lineage = observer;
        self
    }

    /// The table's schema, None before the table exists.
    pub fn table_schema(&self) -> Option<SchemaRef> {
        self.sink.schema()
    }

    /// Committed progress of the given partitions.
    pub async fn progress(&mut self, tps: &[TopicPartition]) -> Result<HashMap<TopicPartition, Option<i64>>, SinkError> {
        let ids: Vec<String> = tps.iter().map(|tp| app_id(&self.pipeline.name, tp)).collect();
        let found = self.sink.progress(&ids).await?;
        Ok(tps.iter().zip(ids).map(|(tp, id)| (tp.clone(), found.get(&id).copied().flatten())).collect())
    }

    fn derived_columns(&self) -> Vec<String> {
        self.partitioner.as_ref().map(|p| p.column_names()).unwrap_or_default()
    }

    /// The part of the table schema that comes from message payloads.
    fn payload_schema(&self, table: &Schema) -> SchemaRef {
        let derived = self.derived_columns();
        let fields: Vec<_> = table
            .fields()
            .iter()
            .filter(|f| !derived.contains(f.name()) && !self.metadata_fields.iter().any(|m| m.name() == f.name()))
            .cloned()
            .collect();
        Arc::new(Schema::new(fields))
    }

    async fn ensure_table(&mut self, raw: &RawBatch) -> Result<Option<SchemaRef>, WriteError> {
        if let Some(s) = self.sink.schema() {
            return Ok(Some(s));
        }
        let Some(payload) = self.decoder.initial_schema(raw)? else { return Ok(None) };
        let mut fields: Vec<Field> = payload.fields().iter().map(|f| f.as_ref().clone()).collect();
        for m in &self.metadata_fields {
            if fields.iter().any(|f| f.name() == m.name()) {
                return Err(WriteError::Schema { table: self.sink.describe(), reason: format!("metadata column `{}` clashes with a payload field", m.name()) });
            }
            fields.push(m.clone());
        }
        if let Some(p) = &self.partitioner {
            for f in p.fields() {
                if fields.iter().any(|x| x.name() == f.name()) {
                    return Err(WriteError::Schema { table: self.sink.describe(), reason: format!("derived partition column `{}` clashes with a payload field", f.name()) });
                }
                fields.push(f);
            }
        }
        let mut partition_columns = self.pipeline.table.partition_by.clone();
        for c in &partition_columns {
            if !fields.iter().any(|f| f.name() == c) {
                return Err(WriteError::Schema { table: self.sink.describe(), reason: format!("partition column `{c}` is not in the schema ({})", fields.iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")) });
            }
        }
        partition_columns.extend(self.derived_columns());
        let schema = Arc::new(Schema::new(fields));
        self.sink.create(schema, partition_columns).await?;
        info!(table = %self.sink.describe(), "table ready");
        Ok(self.sink.schema())
    }

    /// Writes one batch; nothing of it is committed unless all of it is.
    #[instrument(skip_all, fields(pipeline = %self.pipeline.name, messages = raw.len()))]
    pub async fn write(&mut self, raw: &RawBatch) -> Result<Written, WriteError> {
        let started = Instant::now();
        let pipeline = self.pipeline.name.clone();
        let mut written = Written::default();

        let (rows_batch, rows, mut rejected) = match self.ensure_table(raw).await? {
            None => {
                // No message could tell the schema: all are bad.
                let out = self.decoder.decode(raw, &Arc::new(Schema::empty()))?;
                (None, Vec::new(), out.rejected)
            }
            Some(mut table_schema) => {
                let mut attempts = 0;
                loop {
                    let payload_schema = self.payload_schema(&table_schema);
                    let out = self.decoder.decode(raw, &payload_schema)?;
                    if out.new_fields.is_empty() {
                        break (out.batch, out.rows, out.rejected);
                    }
                    attempts += 1;
                    if attempts > 3 {
                        return Err(WriteError::Schema { table: self.sink.describe(), reason: "schema kept changing while adding columns".into() });
                    }
                    info!(table = %self.sink.describe(), columns = ?out.new_fields.iter().map(|f| f.name()).collect::<Vec<_>>(), "new fields in messages; adding columns");
                    self.sink.add_columns(&out.new_fields).await?;
                    table_schema = self.sink.schema().ok_or_else(|| WriteError::Schema { table: self.sink.describe(), reason: "table vanished".into() })?;
                }
            }
        };

        let mut batch = None;
        // Newest event time per source partition (indexed as
        // `raw.partitions`), for the watermark.
        let mut newest_by_source: Vec<Option<i64>> = Vec::new();
        if let Some(rb) = rows_batch {
            let mut rb = self.with_metadata(rb, raw, &rows)?;
            // Message index of each row of `rb` as rows are filtered out.
            let mut kept: Vec<u32> = rows.clone();
            if let Some(p) = self.partitioner.as_mut() {
                let d = p.derive(&rb, &|row| raw.messages[rows[row] as usize].timestamp_ms);
                written.newest_event_micros = d.newest_micros;
                written.oldest_event_micros = d.oldest_micros;
                written.event_samples = d.samples.iter().map(|(row, m)| (rows[*row], *m)).collect();
                if !d.row_micros.is_empty() {
                    newest_by_source = vec![None; raw.partitions.len()];
                    for (row, micros) in d.row_micros.iter().enumerate() {
                        if let Some(m) = *micros {
                            let slot = &mut newest_by_source[raw.messages[rows[row] as usize].partition_idx as usize];
                            *slot = Some(slot.map_or(m, |x| x.max(m)));
                        }
                    }
                }
                rb = append_columns(rb, d.columns).map_err(|e| schema_err(&*self.sink, e))?;
                if !d.missing.is_empty() {
                    let mut keep = vec![true; rb.num_rows()];
                    for (row, reason) in d.missing {
                        keep[row] = false;
                        rejected.push(Rejected { message: rows[row], reason });
                    }
                    kept = rows.iter().zip(&keep).filter(|(_, k)| **k).map(|(r, _)| *r).collect();
                    rb = filter_record_batch(&rb, &BooleanArray::from(keep)).map_err(|e| schema_err(&*self.sink, e))?;
                }
            }
            let table_schema = self.sink.schema().ok_or_else(|| WriteError::Schema { table: self.sink.describe(), reason: "table vanished".into() })?;
            let mut rb = conform(rb, &table_schema).map_err(|e| WriteError::Schema { table: self.sink.describe(), reason: e })?;
            let late = self.sink.late_rows(&rb);
            if !late.is_empty() {
                let mut keep = vec![true; rb.num_rows()];
                for (row, reason) in late {
                    keep[row] = false;
                    rejected.push(Rejected { message: kept[row], reason });
                }
                rb = filter_record_batch(&rb, &BooleanArray::from(keep)).map_err(|e| schema_err(&*self.sink, e))?;
            }
            batch = Some(rb);
        }

        rejected.sort_by_key(|r| r.message);
        if !rejected.is_empty() {
            match self.pipeline.dead_letter.policy {
                DeadLetterPolicy::DeadLetter => {
                    let name = pipeline.clone();
                    written.dead_letters = self.dead_letters.write(raw, &rejected, &|tp| app_id(&name, tp)).await?;
                    METRICS.dead_letters.with_label_values(&[&pipeline]).inc_by(written.dead_letters as u64);
                    warn!(count = rejected.len(), table = %self.dead_letters.describe(), first_reason = %rejected[0].reason, "messages dead-lettered");
                }
                DeadLetterPolicy::Skip => {
                    for r in &rejected {
                        let m = &raw.messages[r.message as usize];
                        let tp = &raw.partition_of(m).tp;
                        warn!(topic = %tp.topic, partition = tp.partition, offset = m.offset, reason = %r.reason, "skipping bad message");
                    }
                    written.skipped = rejected.len();
                    METRICS.skipped.with_label_values(&[&pipeline]).inc_by(rejected.len() as u64);
                }
                DeadLetterPolicy::Stop => {
                    let r = &rejected[0];
                    let m = &raw.messages[r.message as usize];
                    let tp = &raw.partition_of(m).tp;
                    return Err(WriteError::Stopped { topic: tp.topic.to_string(), partition: tp.partition, offset: m.offset, reason: r.reason.clone() });
                }
            }
        }

        let txns: Vec<(String, i64)> = raw.partitions.iter().map(|p| (app_id(&pipeline, &p.tp), p.last)).collect();
        let expected: HashMap<String, Option<i64>> = raw.partitions.iter().map(|p| (app_id(&pipeline, &p.tp), p.base)).collect();
        written.commit = self.sink.write(batch, &txns, &expected).await?;
        let m = &METRICS;
        m.commits.with_label_values(&[&pipeline]).inc();
        m.rows_written.with_label_values(&[&pipeline]).inc_by(written.commit.rows as u64);
        m.files_written.with_label_values(&[&pipeline]).inc_by(written.commit.files as u64);
        m.bytes_written.with_label_values(&[&pipeline]).inc_by(written.commit.bytes);
        m.commit_seconds.with_label_values(&[&pipeline]).observe(started.elapsed().as_secs_f64());
        m.flush_rows.with_label_values(&[&pipeline]).observe(written.commit.rows as f64);
        m.table_version.with_label_values(&[&pipeline]).set(written.commit.version);
        m.last_commit_timestamp_seconds.with_label_values(&[&pipeline]).set(chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
        if let Some(t) = written.newest_event_micros {
            m.newest_event_timestamp_seconds.with_label_values(&[&pipeline]).set(t as f64 / 1e6);
        }
        if let Some(o) = &self.lineage {
            o.committed(raw, &written, self.sink.schema().as_deref());
        }
        if let Some(w) = self.watermarks.as_mut() {
            for (p, m) in raw.partitions.iter().zip(&newest_by_source) {
                if let Some(m) = m {
                    w.observe(&p.tp, *m);
                }
            }
            if let Some(watermark) = w.current() {
                // The commit stands whatever happens here: a partition that
                // could not be closed now is closed after a later commit.
                match self.sink.close_partitions(watermark).await {
                    Ok(closed) if !closed.is_empty() => {
                        m.partitions_closed.with_label_values(&[&pipeline]).inc_by(closed.len() as u64);
                        if let Some(o) = &self.lineage {
                            o.partitions_closed(&closed);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "partition commit failed; retried after the next commit"),
                }
            }
        }
        info!(version = written.commit.version, rows = written.commit.rows, files = written.commit.files, dead_letters = written.dead_letters, ms = started.elapsed().as_millis() as u64, "committed");
        Ok(written)
    }

    fn with_metadata(&self, rb: RecordBatch, raw: &RawBatch, rows: &[u32]) -> Result<RecordBatch, WriteError> {
        if self.metadata_fields.is_empty() {
            return Ok(rb);
        }
        append_columns(rb, metadata::columns(&self.pipeline.metadata_columns, raw, rows)).map_err(|e| schema_err(&*self.sink, e))
    }
}

fn schema_err(sink: &dyn TableSink, e: impl std::fmt::Display) -> WriteError {
    WriteError::Schema { table: sink.describe(), reason: e.to_string() }
}

fn append_columns(rb: RecordBatch, cols: Vec<(String, ArrayRef)>) -> Result<RecordBatch, deltalake::arrow::error::ArrowError> {
    let mut fields: Vec<Field> = rb.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut arrays: Vec<ArrayRef> = rb.columns().to_vec();
    for (name, a) in cols {
        fields.push(Field::new(name, a.data_type().clone(), true));
        arrays.push(a);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
}

/// Puts a batch in the table's column order and types: missing columns are
/// null, differing types are cast (list item names, time zone spellings).
pub fn conform(rb: RecordBatch, table: &SchemaRef) -> Result<RecordBatch, String> {
    if rb.schema().as_ref() == table.as_ref() {
        return Ok(rb);
    }
    let n = rb.num_rows();
    let mut cols = Vec::with_capacity(table.fields().len());
    for f in table.fields() {
        let col = match rb.column_by_name(f.name()) {
            None => new_null_array(f.data_type(), n),
            Some(c) if c.data_type() == f.data_type() => c.clone(),
            Some(c) => cast(c, f.data_type()).map_err(|e| format!("column `{}`: cannot convert {} to {}: {e}", f.name(), c.data_type(), f.data_type()))?,
        };
        cols.push(col);
    }
    RecordBatch::try_new(table.clone(), cols).map_err(|e| e.to_string())
}
