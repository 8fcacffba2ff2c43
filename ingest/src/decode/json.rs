//! JSON messages, decoded straight from their bytes into Arrow.
//!
//! The fast path feeds every payload of a batch to one arrow-json decoder
//! (a tape decoder: no `serde_json::Value` per message). Only when that fails
//! (a malformed message, a wrong type, an unknown field) is the batch decoded
//! message by message to find which messages are at fault and why, and which
//! fields are new.

use std::sync::Arc;

use deltalake::arrow::compute::concat_batches;
use deltalake::arrow::datatypes::{Schema, SchemaRef};
use deltalake::arrow::record_batch::RecordBatch;
use arrow_json::reader::{infer_json_schema_from_iterator, ReaderBuilder};
use inlet_config::NewFieldPolicy;

use super::schema::{missing_fields, storable_schema};
use super::{adds_columns, DecodeError, Decoded, MessageDecoder, Rejected};
use crate::buffer::{MessageMeta, RawBatch};

pub struct JsonDecoder {
    configured: Option<SchemaRef>,
    policy: NewFieldPolicy,
}

impl JsonDecoder {
    pub fn new(configured: Option<SchemaRef>, policy: NewFieldPolicy) -> Self {
        Self { configured, policy }
    }

    fn builder(&self, schema: &SchemaRef, rows: usize) -> ReaderBuilder {
        ReaderBuilder::new(schema.clone())
            .with_batch_size(rows.max(1))
            // Unknown fields fail the fast path so that they are noticed;
            // with `ignore` they are dropped silently by design.
            .with_strict_mode(self.policy != NewFieldPolicy::Ignore)
            .with_coerce_primitive(false)
    }
}

/// Why a message is refused before any parsing.
pub fn precheck(m: &MessageMeta, batch: &RawBatch) -> Result<(), String> {
    if let Some(size) = m.oversized {
        return Err(format!("message of {size} bytes exceeds dead_letter.max_message_bytes"));
    }
    match batch.payload(m) {
        None => Err("message has no value (tombstone)".to_string()),
        Some(_) => Ok(()),
    }
}

impl MessageDecoder for JsonDecoder {
    fn decode(&mut self, batch: &RawBatch, schema: &SchemaRef) -> Result<Decoded, DecodeError> {
        let mut out = Decoded::default();
        let mut candidates = Vec::with_capacity(batch.len());
        for (i, m) in batch.messages.iter().enumerate() {
            match precheck(m, batch) {
                Ok(()) => candidates.push(i as u32),
                Err(reason) => out.rejected.push(Rejected { message: i as u32, reason }),
            }
        }
        if candidates.is_empty() {
            return Ok(out);
        }

        // Fast path: the whole batch through one decoder.
        let mut decoder = self.builder(schema, candidates.len()).build_decoder().map_err(|e| DecodeError::Schema(e.to_string()))?;
        let mut clean = true;
        for &i in &candidates {
            let payload = batch.payload(&batch.messages[i as usize]).expect("prechecked");
            let before = decoder.len();
            match decoder.decode(payload) {
                Ok(n) if n == payload.len() && !decoder.has_partial_record() && decoder.len() == before + 1 => {}
                _ => {
                    clean = false;
                    break;
                }
            }
        }
        if clean {
            if let Ok(Some(rb)) = decoder.flush() {
                if rb.num_rows() == candidates.len() {
                    out.batch = Some(rb);
                    out.rows = candidates;
                    return Ok(out);
                }
            }
        }

        // Slow path: message by message.
        let mut good: Vec<RecordBatch> = Vec::new();
        let mut new_schema: Option<Schema> = None;
        for &i in &candidates {
            let payload = batch.payload(&batch.messages[i as usize]).expect("prechecked");
            match self.decode_one(payload, schema) {
                Ok(rb) => {
                    good.push(rb);
                    out.rows.push(i);
                }
                Err(reason) => {
                    if adds_columns(self.policy) {
                        if let Some(seen) = infer_one(payload) {
                            let missing = missing_fields(schema, &seen);
                            if !missing.is_empty() {
                                let add = Schema::new(missing);
                                new_schema = Some(match new_schema.take() {
                                    None => add,
                                    Some(prev) => Schema::try_merge([prev.clone(), add]).unwrap_or(prev),
                                });
                                continue;
                            }
                        }
                    }
                    out.rejected.push(Rejected { message: i, reason });
                }
            }
        }
        if let Some(s) = new_schema {
            out.new_fields = s.fields().iter().cloned().collect();
            out.batch = None;
            out.rows.clear();
            return Ok(out);
        }
        out.rejected.sort_by_key(|r| r.message);
        if !good.is_empty() {
            let rb = concat_batches(schema, &good).map_err(|e| DecodeError::Schema(e.to_string()))?;
            out.batch = Some(rb);
        }
        Ok(out)
    }

    fn initial_schema(&mut self, batch: &RawBatch) -> Result<Option<SchemaRef>, DecodeError> {
        if let Some(s) = &self.configured {
            return Ok(Some(s.clone()));
        }
        let values: Vec<serde_json::Value> = batch
            .messages
            .iter()
            .filter(|m| precheck(m, batch).is_ok())
            .filter_map(|m| serde_json::from_slice::<serde_json::Value>(batch.payload(m)?).ok())
            .filter(|v| v.is_object())
            .take(10_000)
            .collect();
        if values.is_empty() {
            return Ok(None);
        }
        // Infer message by message so one odd message cannot poison the
        // schema: a field keeps the type most messages agree on first.
        let mut schema: Option<Schema> = None;
        for v in &values {
            let Ok(s) = infer_json_schema_from_iterator(std::iter::once(Ok(v.clone()))) else { continue };
            schema = Some(match schema.take() {
                None => s,
                Some(prev) => match Schema::try_merge([prev.clone(), s.clone()]) {
                    Ok(m) => m,
                    Err(_) => {
                        let extra = missing_fields(&prev, &s);
                        let mut fields: Vec<_> = prev.fields().iter().cloned().collect();
                        fields.extend(extra);
                        Schema::new(fields)
                    }
                },
            });
        }
        Ok(schema.map(|s| Arc::new(storable_schema(&s))))
    }
}

impl JsonDecoder {
    fn decode_one(&self, payload: &[u8], schema: &SchemaRef) -> Result<RecordBatch, String> {
        let mut d = self.builder(schema, 1).build_decoder().map_err(|e| e.to_string())?;
        let n = d.decode(payload).map_err(|e| e.to_string())?;
        if n != payload.len() || d.has_partial_record() {
            return Err(if d.has_partial_record() { "truncated JSON".to_string() } else { "more than one JSON value in the message".to_string() });
        }
        match d.len() {
            0 => return Err("message holds no JSON object".to_string()),
            1 => {}
            k => return Err(format!("message holds {k} JSON values, expected one object")),
        }
        match d.flush().map_err(|e| e.to_string())? {
            Some(rb) if rb.num_rows() == 1 => Ok(rb),
            _ => Err("message holds no JSON object".to_string()),
        }
    }
}

fn infer_one(payload: &[u8]) -> Option<Schema> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    if !v.is_object() {
        return None;
    }
    infer_json_schema_from_iterator(std::iter::once(Ok(v))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::TopicPartition;
    use deltalake::arrow::array::{Array, AsArray};
    use deltalake::arrow::datatypes::{DataType, Field, Int64Type};

    fn batch(payloads: &[&[u8]]) -> RawBatch {
        let tp = TopicPartition { topic: Arc::from("t"), partition: 0 };
        let mut b = RawBatch::default();
        for (i, p) in payloads.iter().enumerate() {
            b.push(&tp, None, i as i64, None, Some(p), None, &[], 1024);
        }
        b
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("name", DataType::Utf8, true)]))
    }

    #[test]
    fn clean_batch_takes_fast_path() {
        let b = batch(&[br#"{"id":1,"name":"a"}"#, br#"{"id":2}"#]);
        let mut d = JsonDecoder::new(None, NewFieldPolicy::AddColumns);
        let out = d.decode(&b, &schema()).unwrap();
        let rb = out.batch.unwrap();
        assert_eq!(rb.num_rows(), 2);
        assert_eq!(out.rows, vec![0, 1]);
        assert_eq!(rb.column(0).as_primitive::<Int64Type>().value(1), 2);
        assert!(rb.column(1).is_null(1));
    }

    #[test]
    fn bad_messages_are_rejected_with_reasons() {
        let big = [b'x'; 2000];
        let b = batch(&[br#"{"id":1}"#, br#"{"id":"#, br#"{"id":"abc"}"#, br#"{"id":3}{"id":4}"#, b"  ", &big, br#"[1,2]"#, br#"{"id":5}"#]);
        let mut d = JsonDecoder::new(None, NewFieldPolicy::AddColumns);
        let out = d.decode(&b, &schema()).unwrap();
        assert_eq!(out.rows, vec![0, 7]);
        let rejected: Vec<u32> = out.rejected.iter().map(|r| r.message).collect();
        assert_eq!(rejected, vec![1, 2, 3, 4, 5, 6]);
        assert!(out.rejected[0].reason.contains("truncated"), "{:?}", out.rejected[0]);
        assert!(out.rejected[1].reason.contains("abc"), "{:?}", out.rejected[1]);
        assert!(out.rejected[4].reason.contains("exceeds"), "{:?}", out.rejected[4]);
        assert_eq!(out.batch.unwrap().num_rows(), 2);
    }

    #[test]
    fn unknown_fields_become_new_columns() {
        let b = batch(&[br#"{"id":1}"#, br#"{"id":2,"extra":1.5,"tags":["a"]}"#]);
        let mut d = JsonDecoder::new(None, NewFieldPolicy::AddColumns);
        let out = d.decode(&b, &schema()).unwrap();
        let names: Vec<&str> = out.new_fields.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, vec!["extra", "tags"]);
        assert!(out.batch.is_none());
    }

    #[test]
    fn unknown_fields_ignored_or_dead_lettered_by_policy() {
        let b = batch(&[br#"{"id":1,"zzz":1}"#]);
        let out = JsonDecoder::new(None, NewFieldPolicy::Ignore).decode(&b, &schema()).unwrap();
        assert_eq!(out.batch.unwrap().num_rows(), 1);
        let out = JsonDecoder::new(None, NewFieldPolicy::DeadLetter).decode(&b, &schema()).unwrap();
        assert_eq!(out.rejected.len(), 1);
        assert!(out.rejected[0].reason.contains("zzz"), "{:?}", out.rejected[0]);
    }

    #[test]
    fn schema_is_inferred_from_good_messages() {
        let b = batch(&[b"garbage", br#"{"id":1,"ts":"2024-01-01T00:00:00Z","nested":{"a":true},"n":null}"#]);
        let s = JsonDecoder::new(None, NewFieldPolicy::AddColumns).initial_schema(&b).unwrap().unwrap();
        assert_eq!(s.field_with_name("id").unwrap().data_type(), &DataType::Int64);
        // A field only ever seen as null has no type yet: it becomes a column
        // when it first carries a value.
        assert!(s.field_with_name("n").map(|f| f.data_type() == &DataType::Utf8).unwrap_or(true));
        assert!(matches!(s.field_with_name("nested").unwrap().data_type(), DataType::Struct(_)));
    }
}
