//! Messages kept as they are: the value as a string or as bytes, in one
//! column named `value`.

use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, BinaryBuilder, StringBuilder};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::arrow::record_batch::RecordBatch;

use super::{DecodeError, Decoded, MessageDecoder, Rejected};
use crate::buffer::RawBatch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawKind {
    String,
    Bytes,
}

pub struct RawDecoder {
    kind: RawKind,
}

impl RawDecoder {
    pub fn new(kind: RawKind) -> Self {
        Self { kind }
    }

    pub fn schema(&self) -> SchemaRef {
        let t = match self.kind {
            RawKind::String => DataType::Utf8,
            RawKind::Bytes => DataType::Binary,
        };
        Arc::new(Schema::new(vec![Field::new("value", t, true)]))
    }
}

impl MessageDecoder for RawDecoder {
    fn decode(&mut self, batch: &RawBatch, schema: &SchemaRef) -> Result<Decoded, DecodeError> {
        let mut out = Decoded::default();
        let mut strings = StringBuilder::new();
        let mut bytes = BinaryBuilder::new();
        for (i, m) in batch.messages.iter().enumerate() {
            if let Some(size) = m.oversized {
                out.rejected.push(Rejected { message: i as u32, reason: format!("message of {size} bytes exceeds dead_letter.max_message_bytes") });
                continue;
            }
            let payload = batch.payload(m);
            match self.kind {
                RawKind::String => match payload.map(std::str::from_utf8) {
                    None => strings.append_null(),
                    Some(Ok(s)) => strings.append_value(s),
                    Some(Err(e)) => {
                        out.rejected.push(Rejected { message: i as u32, reason: format!("value is not valid UTF-8: {e}") });
                        continue;
                    }
                },
                RawKind::Bytes => bytes.append_option(payload),
            }
            out.rows.push(i as u32);
        }
        if !out.rows.is_empty() {
            let col: ArrayRef = match self.kind {
                RawKind::String => Arc::new(strings.finish()),
                RawKind::Bytes => Arc::new(bytes.finish()),
            };
            // The table may have gained other columns (metadata, derived);
            // this decoder only fills `value`.
            let own = self.schema();
            let rb = RecordBatch::try_new(own, vec![col]).map_err(|e| DecodeError::Schema(e.to_string()))?;
            if schema.field_with_name("value").is_err() {
                return Err(DecodeError::Schema("the table has no `value` column".into()));
            }
            out.batch = Some(rb);
        }
        Ok(out)
    }

    fn initial_schema(&mut self, _batch: &RawBatch) -> Result<Option<SchemaRef>, DecodeError> {
        Ok(Some(self.schema()))
    }
}
