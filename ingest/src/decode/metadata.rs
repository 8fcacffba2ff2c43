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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::TopicPartition;
    use deltalake::arrow::array::{Array, AsArray};
    use deltalake::arrow::datatypes::{Int32Type, Int64Type, TimestampMicrosecondType};

    #[test]
    fn every_metadata_column_is_filled_for_the_selected_rows() {
        let cfg = MetadataColumns {
            topic: Some("_topic".into()),
            partition: Some("_partition".into()),
            offset: Some("_offset".into()),
            timestamp: Some("_ts".into()),
            key: Some("_key".into()),
            headers: Some("_headers".into()),
        };
        let mut b = RawBatch::default();
        let tp = TopicPartition { topic: Arc::from("orders"), partition: 3 };
        b.push(&tp, None, 7, Some(1_000), Some(b"a"), Some(b"k1"), &[("trace", Some(b"abc")), ("empty", None)], 100);
        b.push(&tp, None, 8, None, Some(b"b"), None, &[], 100);
        b.push(&tp, None, 9, Some(2_000), Some(b"c"), Some(b"k3"), &[], 100);
        // Row 1 (offset 8) was rejected by the decoder.
        let cols = columns(&cfg, &b, &[0, 2]);
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["_topic", "_partition", "_offset", "_ts", "_key", "_headers"]);
        let field_types: Vec<DataType> = fields(&cfg).iter().map(|f| f.data_type().clone()).collect();
        for ((_, a), t) in cols.iter().zip(&field_types) {
            assert_eq!(a.len(), 2);
            assert_eq!(a.data_type(), t);
        }
        assert_eq!(cols[0].1.as_string::<i32>().value(1), "orders");
        assert_eq!(cols[1].1.as_primitive::<Int32Type>().value(0), 3);
        assert_eq!(cols[2].1.as_primitive::<Int64Type>().values().to_vec(), vec![7, 9]);
        assert_eq!(cols[3].1.as_primitive::<TimestampMicrosecondType>().value(1), 2_000_000);
        assert_eq!(cols[4].1.as_binary::<i32>().value(1), b"k3");
        let headers = cols[5].1.as_list::<i32>();
        assert_eq!(headers.value(0).len(), 2);
        assert_eq!(headers.value(1).len(), 0);
        let first = headers.value(0);
        let s = first.as_struct();
        assert_eq!(s.column(0).as_string::<i32>().value(0), "trace");
        assert_eq!(s.column(1).as_binary::<i32>().value(0), b"abc");
        assert!(s.column(1).is_null(1));
    }
}
