//! Arrow schemas from configuration and from sample messages.

use std::sync::Arc;

use deltalake::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use inlet_config::validate::{parse_type_name, ColumnType};
use inlet_config::{SchemaConfig, SchemaSource};

use super::DecodeError;

/// The schema listed under `schema.fields`, when `schema.source` is `fields`.
pub fn configured_schema(cfg: &SchemaConfig) -> Result<Option<SchemaRef>, DecodeError> {
    if cfg.source != SchemaSource::Fields {
        return Ok(None);
    }
    let fields = cfg
        .fields
        .iter()
        .map(|f| {
            let t = parse_type_name(&f.data_type).map_err(DecodeError::Schema)?;
            Ok(Field::new(&f.name, arrow_type(t), f.nullable))
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    Ok(Some(Arc::new(Schema::new(fields))))
}

pub fn arrow_type(t: ColumnType) -> DataType {
    match t {
        ColumnType::String => DataType::Utf8,
        ColumnType::Long => DataType::Int64,
        ColumnType::Int => DataType::Int32,
        ColumnType::Short => DataType::Int16,
        ColumnType::Byte => DataType::Int8,
        ColumnType::Double => DataType::Float64,
        ColumnType::Float => DataType::Float32,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Binary => DataType::Binary,
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ColumnType::Decimal(p, s) => DataType::Decimal128(p, s),
    }
}

/// Makes an inferred type storable in Delta: nulls become strings (a field
/// that was only ever null), every field nullable.
pub fn storable(dt: &DataType) -> DataType {
    match dt {
        DataType::Null => DataType::Utf8,
        DataType::List(f) => DataType::List(Arc::new(storable_field(f))),
        DataType::LargeList(f) => DataType::List(Arc::new(storable_field(f))),
        DataType::Struct(fields) if fields.is_empty() => DataType::Utf8,
        DataType::Struct(fields) => DataType::Struct(Fields::from(fields.iter().map(|f| storable_field(f)).collect::<Vec<_>>())),
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        other => other.clone(),
    }
}

pub fn storable_field(f: &Field) -> Field {
    Field::new(f.name(), storable(f.data_type()), true)
}

pub fn storable_schema(s: &Schema) -> Schema {
    Schema::new(s.fields().iter().map(|f| storable_field(f)).collect::<Vec<_>>())
}

/// Top-level fields of `seen` that `schema` lacks.
pub fn missing_fields(schema: &Schema, seen: &Schema) -> Vec<Arc<Field>> {
    seen.fields()
        .iter()
        .filter(|f| schema.field_with_name(f.name()).is_err())
        .map(|f| Arc::new(storable_field(f)))
        .collect()
}
