//! Kafka metadata columns (topic, partition, offset, timestamp, key, headers)
//! added to decoded rows on request.

use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, BinaryBuilder, Int32Builder, Int64Builder, ListBuilder, StringBuilder, StringDictionaryBuilder, StructBuilder, TimestampMicrosecondBuilder};
use deltalake::arrow::datatypes::{DataType, Field, Fields, Int32Type, TimeUnit};
use inlet_config::MetadataColumns;

use crate::buffer::RawBatch;

/// The metadata columns a pipeline asked for, with their types.
pub fn fields(cfg: &MetadataColumns) -> Vec<Field> {
    let mut out = Vec::new();
    if let Some(c) = &cfg.topic {
        out.push(Field::new(c, DataType::Utf8, true));
    }
    if let Some(c) = &cfg.partition {
        out.push(Field::new(c, DataType::Int32, true));
    }
    if let Some(c) = &cfg.offset {
        out.push(Field::new(c, DataType::Int64, true));
    }
    if let Some(c) = &cfg.timestamp {
        out.push(Field::new(c, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true));
    }
    if let Some(c) = &cfg.key {
        out.push(Field::new(c, DataType::Binary, true));
    }
    if let Some(c) = &cfg.headers {
        out.push(Field::new(c, DataType::List(Arc::new(Field::new("element", header_struct(), true))), true));
    }
    out
}

fn header_fields() -> Fields {
    Fields::from(vec![Field::new("key", DataType::Utf8, true), Field::new("value", DataType::Binary, true)])
}

fn header_struct() -> DataType {
    DataType::Struct(header_fields())
}

/// Builds the requested metadata columns for the messages behind `rows`.
pub fn columns(cfg: &MetadataColumns, batch: &RawBatch, rows: &[u32]) -> Vec<(String, ArrayRef)> {
    let mut out: Vec<(String, ArrayRef)> = Vec::new();
    let msgs = || rows.iter().map(|&i| &batch.messages[i as usize]);
    if let Some(c) = &cfg.topic {
        // Few distinct topics: build through a dictionary, then flatten.
        let mut b = StringDictionaryBuilder::<Int32Type>::new();
        for m in msgs() {
            b.append_value(batch.partition_of(m).tp.topic.as_ref());
        }
        let dict = b.finish();
        let flat = deltalake::arrow::compute::cast(&dict, &DataType::Utf8).expect("dictionary of strings casts to strings");
        out.push((c.clone(), flat));
    }
    if let Some(c) = &cfg.partition {
        let mut b = Int32Builder::with_capacity(rows.len());
        for m in msgs() {
            b.append_value(batch.partition_of(m).tp.partition);
        }
        out.push((c.clone(), Arc::new(b.finish())));
    }
    if let Some(c) = &cfg.offset {
        let mut b = Int64Builder::with_capacity(rows.len());
        for m in msgs() {
            b.append_value(m.offset);
        }
        out.push((c.clone(), Arc::new(b.finish())));
    }
    if let Some(c) = &cfg.timestamp {
        let mut b = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
        for m in msgs() {
            b.append_option(m.timestamp_ms.map(|t| t * 1000));
        }
        out.push((c.clone(), Arc::new(b.finish())));
    }
    if let Some(c) = &cfg.key {
        let mut b = BinaryBuilder::new();
        for m in msgs() {
            b.append_option(batch.key(m));
        }
        out.push((c.clone(), Arc::new(b.finish())));
    }
    if let Some(c) = &cfg.headers {
        let mut b = ListBuilder::new(StructBuilder::from_fields(header_fields(), 0))
            .with_field(Arc::new(Field::new("element", header_struct(), true)));
        for m in msgs() {
            for (name, value) in &m.headers {
                let sb = b.values();
                sb.field_builder::<StringBuilder>(0).expect("key builder").append_value(String::from_utf8_lossy(batch.slice(*name)));
                sb.field_builder::<BinaryBuilder>(1).expect("value builder").append_option(value.map(|v| batch.slice(v)));
                sb.append(true);
            }
            b.append(true);
        }
        out.push((c.clone(), Arc::new(b.finish())));
    }
    out
}
