//! The dead-letter table: messages that could not be written, with their
//! bytes, where they came from, and why.
//!
//! Dead letters are committed before the batch they belong to, with the same
//! per-partition transaction ids; rows already recorded for an offset are
//! skipped on replay, so a crash between the two commits neither loses nor
//! repeats a dead letter.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, BinaryBuilder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::arrow::record_batch::RecordBatch;
use tracing::{info, warn};

use crate::buffer::RawBatch;
use crate::decode::Rejected;
use crate::sink::{SinkError, TableSink};

pub fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("pipeline", DataType::Utf8, true),
        Field::new("topic", DataType::Utf8, true),
        Field::new("partition", DataType::Int32, true),
        Field::new("offset", DataType::Int64, true),
        Field::new("timestamp", ts.clone(), true),
        Field::new("key", DataType::Binary, true),
        Field::new("payload", DataType::Binary, true),
        Field::new("payload_size", DataType::Int64, true),
        Field::new("reason", DataType::Utf8, true),
        Field::new("failed_at", ts, true),
    ]))
}

pub struct DeadLetterTable {
    pipeline: String,
    sink: Box<dyn TableSink>,
}

impl DeadLetterTable {
    pub fn new(pipeline: String, sink: Box<dyn TableSink>) -> Self {
        Self { pipeline, sink }
    }

    pub fn describe(&self) -> String {
        self.sink.describe()
    }

    /// Writes the rejected messages of `raw`; returns how many were new.
    pub async fn write(&mut self, raw: &RawBatch, rejected: &[Rejected], app_id: &dyn Fn(&crate::buffer::TopicPartition) -> String) -> Result<usize, SinkError> {
        if rejected.is_empty() {
            return Ok(0);
        }
        if self.sink.schema().is_none() {
            self.sink.create(schema(), Vec::new()).await?;
            info!(table = %self.sink.describe(), "created dead-letter table");
        }
        for attempt in 0..5 {
            let ids: Vec<String> = raw.partitions.iter().map(|p| app_id(&p.tp)).collect();
            // Offsets already recorded, per app id, as the table holds them now.
            let recorded = self.sink.progress(&ids).await?;
            let fresh: Vec<&Rejected> = rejected
                .iter()
                .filter(|r| {
                    let m = &raw.messages[r.message as usize];
                    let id = app_id(&raw.partition_of(m).tp);
                    recorded.get(&id).copied().flatten().is_none_or(|done| m.offset > done)
                })
                .collect();
            if fresh.is_empty() {
                return Ok(0);
            }
            let mut last: HashMap<String, i64> = HashMap::new();
            for r in &fresh {
                let m = &raw.messages[r.message as usize];
                let e = last.entry(app_id(&raw.partition_of(m).tp)).or_insert(m.offset);
                *e = (*e).max(m.offset);
            }
            let txns: Vec<(String, i64)> = last.into_iter().collect();
            let expected: HashMap<String, Option<i64>> = txns.iter().map(|(id, _)| (id.clone(), recorded.get(id).copied().flatten())).collect();
            let batch = self.rows(raw, &fresh);
            match self.sink.write(Some(batch), &txns, &expected).await {
                Ok(_) => return Ok(fresh.len()),
                Err(SinkError::Fenced(why)) => {
                    warn!(attempt, %why, "dead-letter commit raced another writer; re-reading");
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(SinkError::Write { table: self.sink.describe(), reason: "dead-letter commit kept conflicting".into() })
    }

    fn rows(&self, raw: &RawBatch, rejected: &[&Rejected]) -> RecordBatch {
        let n = rejected.len();
        let mut pipeline = StringBuilder::new();
        let mut topic = StringBuilder::new();
        let mut partition = Int32Builder::with_capacity(n);
        let mut offset = Int64Builder::with_capacity(n);
        let mut ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut key = BinaryBuilder::new();
        let mut payload = BinaryBuilder::new();
        let mut size = Int64Builder::with_capacity(n);
        let mut reason = StringBuilder::new();
        let mut failed = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        let now = chrono::Utc::now().timestamp_micros();
        for r in rejected {
            let m = &raw.messages[r.message as usize];
            let tp = &raw.partition_of(m).tp;
            pipeline.append_value(&self.pipeline);
            topic.append_value(tp.topic.as_ref());
            partition.append_value(tp.partition);
            offset.append_value(m.offset);
            ts.append_option(m.timestamp_ms.map(|t| t * 1000));
            key.append_option(raw.key(m));
            let p = raw.payload(m);
            payload.append_option(p);
            size.append_option(m.oversized.map(|s| s as i64).or(p.map(|p| p.len() as i64)));
            reason.append_value(&r.reason);
            failed.append_value(now);
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(pipeline.finish()),
            Arc::new(topic.finish()),
            Arc::new(partition.finish()),
            Arc::new(offset.finish()),
            Arc::new(ts.finish()),
            Arc::new(key.finish()),
            Arc::new(payload.finish()),
            Arc::new(size.finish()),
            Arc::new(reason.finish()),
            Arc::new(failed.finish()),
        ];
        RecordBatch::try_new(schema(), cols).expect("columns match the dead-letter schema")
    }
}
