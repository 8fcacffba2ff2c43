//! Registering Delta tables in the catalog the way Spark with delta-spark
//! registers them (so Spark, Trino's Delta connector and Hive-aware tools
//! find them), with the real columns stored as well so that Hive-level
//! DESCRIBE and the REST API show them. Registration is idempotent: the same
//! table and schema register once; a changed schema alters the table.

use std::collections::BTreeMap;

use deltalake::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use inlet_hms_thrift::hive_metastore as hms;
use serde_json::{json, Value};

use crate::catalog::{Actor, Catalog, CatalogError};

/// Spark splits long schema strings into parts of this size (its
/// `spark.sql.sources.schemaStringLengthThreshold` default).
const SCHEMA_PART_CHARS: usize = 4000;

/// A Delta table as the catalog should know it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaRegistration {
    pub database: String,
    pub table: String,
    /// The location as other engines write it (`s3a://...`, `file:/...`).
    pub location: String,
    pub schema: Schema,
    pub partition_columns: Vec<String>,
    /// Extra table parameters (e.g. which pipeline writes the table).
    pub properties: BTreeMap<String, String>,
}

/// Spark's JSON name of an Arrow type.
fn spark_type(t: &DataType) -> Value {
    match t {
        DataType::Boolean => json!("boolean"),
        DataType::Int8 => json!("byte"),
        DataType::Int16 => json!("short"),
        DataType::Int32 | DataType::UInt8 | DataType::UInt16 => json!("integer"),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => json!("long"),
        DataType::Float32 => json!("float"),
        DataType::Float64 => json!("double"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => json!("string"),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => json!("binary"),
        DataType::Date32 | DataType::Date64 => json!("date"),
        DataType::Timestamp(_, Some(_)) => json!("timestamp"),
        DataType::Timestamp(_, None) => json!("timestamp_ntz"),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => json!(format!("decimal({p},{s})")),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            json!({"type": "array", "elementType": spark_type(f.data_type()), "containsNull": f.is_nullable()})
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                json!({"type": "map", "keyType": spark_type(kv[0].data_type()), "valueType": spark_type(kv[1].data_type()), "valueContainsNull": kv[1].is_nullable()})
            }
            _ => json!("string"),
        },
        DataType::Struct(fields) => json!({"type": "struct", "fields": fields.iter().map(|f| spark_field(f)).collect::<Vec<_>>()}),
        _ => json!("string"),
    }
}

/// The table parameters Spark keeps its schema in: the JSON, split into
/// parts as Spark splits long ones, and the partition columns.
fn spark_schema_params(params: &mut BTreeMap<String, String>, schema: String, partition_columns: &[String]) {
    let parts: Vec<String> = schema.chars().collect::<Vec<_>>().chunks(SCHEMA_PART_CHARS).map(|c| c.iter().collect()).collect();
    if parts.len() == 1 {
        params.insert("spark.sql.sources.schema".into(), schema);
    } else {
        params.insert("spark.sql.sources.schema.numParts".into(), parts.len().to_string());
        for (i, p) in parts.into_iter().enumerate() {
            params.insert(format!("spark.sql.sources.schema.part.{i}"), p);
        }
    }
    if !partition_columns.is_empty() {
        params.insert("spark.sql.sources.schema.numPartCols".into(), partition_columns.len().to_string());
        for (i, c) in partition_columns.iter().enumerate() {
            params.insert(format!("spark.sql.sources.schema.partCol.{i}"), c.clone());
        }
    }
}

fn spark_field(f: &Field) -> Value {
    json!({"name": f.name(), "type": spark_type(f.data_type()), "nullable": f.is_nullable(), "metadata": {}})
}

/// Hive's type name of an Arrow type (what DESCRIBE prints).
pub fn hive_type(t: &DataType) -> String {
    match t {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 | DataType::UInt8 | DataType::UInt16 => "int".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => "binary".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(TimeUnit::Second | TimeUnit::Millisecond | TimeUnit::Microsecond | TimeUnit::Nanosecond, _) => "timestamp".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => format!("array<{}>", hive_type(f.data_type())),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!("map<{},{}>", hive_type(kv[0].data_type()), hive_type(kv[1].data_type())),
            _ => "string".into(),
        },
        DataType::Struct(fields) => format!("struct<{}>", fields.iter().map(|f| format!("{}:{}", f.name(), hive_type(f.data_type()))).collect::<Vec<_>>().join(",")),
        _ => "string".into(),
    }
}

impl DeltaRegistration {
    /// Spark's schema JSON (`StructType.json`) of the table.
    pub fn spark_schema_json(&self) -> String {
        json!({"type": "struct", "fields": self.schema.fields().iter().map(|f| spark_field(f)).collect::<Vec<_>>()}).to_string()
    }

    /// The Hive table object delta-spark would write, plus real columns.
    pub fn to_table(&self) -> hms::Table {
        let mut params: BTreeMap<String, String> = BTreeMap::new();
        params.insert("EXTERNAL".into(), "TRUE".into());
        params.insert("spark.sql.sources.provider".into(), "delta".into());
        params.insert("spark.sql.partitionProvider".into(), "catalog".into());
        params.insert("spark.sql.create.version".into(), "3.5.0".into());
        params.insert("inlet.registered.by".into(), "inlet".into());
        spark_schema_params(&mut params, self.spark_schema_json(), &self.partition_columns);
        params.extend(self.properties.clone());
        let cols = self.schema.fields().iter().map(|f| hms::FieldSchema { name: Some(f.name().to_lowercase()), type_: Some(hive_type(f.data_type())), comment: None }).collect();
        hms::Table {
            table_name: Some(self.table.clone()),
            db_name: Some(self.database.clone()),
            owner: Some("inlet".into()),
            sd: Some(hms::StorageDescriptor {
                cols: Some(cols),
                location: Some(self.location.clone()),
                input_format: Some("org.apache.hadoop.mapred.SequenceFileInputFormat".into()),
                output_format: Some("org.apache.hadoop.hive.ql.io.HiveSequenceFileOutputFormat".into()),
                serde_info: Some(hms::SerDeInfo {
                    serialization_lib: Some("org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe".into()),
                    // Trino's Delta connector reads the location from here.
                    parameters: Some(BTreeMap::from([("path".into(), self.location.clone()), ("serialization.format".into(), "1".into())])),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            partition_keys: Some(Vec::new()),
            parameters: Some(params),
            table_type: Some("EXTERNAL_TABLE".into()),
            ..Default::default()
        }
    }
}

/// What [`register_delta`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    Created,
    Updated,
    Unchanged,
}

/// Creates or updates the table's registration (and its database when
/// missing).
pub async fn register_delta(catalog: &Catalog, actor: &Actor, reg: &DeltaRegistration) -> Result<Registered, CatalogError> {
    ensure_database(catalog, actor, &reg.database).await?;
    let wanted = reg.to_table();
    match catalog.get_table(&reg.database, &reg.table).await {
        Err(CatalogError::NoSuchObject(_)) => match catalog.create_table(actor, wanted).await {
            Ok(_) => Ok(Registered::Created),
            // Another replica of the pipeline registered it first.
            Err(CatalogError::AlreadyExists(_)) => Ok(Registered::Unchanged),
            Err(e) => Err(e),
        },
        Ok(existing) => {
            let same = existing.sd.as_ref().map(|s| (&s.cols, &s.location)) == wanted.sd.as_ref().map(|s| (&s.cols, &s.location))
                && wanted.parameters.iter().flatten().all(|(k, v)| existing.parameters.as_ref().and_then(|p| p.get(k)) == Some(v));
            if same {
                return Ok(Registered::Unchanged);
            }
            // Keep what others set on the table (comments, owners'
            // properties); replace what the Delta log decides.
            let mut updated = wanted;
            let mut params = existing.parameters.clone().unwrap_or_default();
            params.retain(|k, _| !k.starts_with("spark.sql.sources.schema"));
            params.extend(updated.parameters.take().unwrap_or_default());
            updated.parameters = Some(params);
            updated.create_time = existing.create_time;
            updated.owner = existing.owner.clone();
            catalog.alter_table(actor, &reg.database, &reg.table, updated, false).await?;
            Ok(Registered::Updated)
        }
        Err(e) => Err(e),
    }
}

/// The table parameter holding the exact Arrow schema inlet writes a Hive
/// table with (Hive's type names lose time zones and integer widths).
pub const ARROW_SCHEMA_PARAM: &str = "inlet.arrow.schema";
/// The table parameter naming a Hive table's format as inlet writes it.
pub const FORMAT_PARAM: &str = "inlet.format";

/// A plain Hive table of Parquet files in partition directories, as inlet's
/// `format: hive` pipelines write it (docs/hive-format.md).
#[derive(Debug, Clone, PartialEq)]
pub struct HiveRegistration {
    pub database: String,
    pub table: String,
    /// The location as other engines write it (`s3a://...`, `file:/...`).
    pub location: String,
    /// Every column, partition columns included, in the table's order.
    pub schema: Schema,
    /// Partition columns, outermost first; they are not stored in files.
    pub partition_columns: Vec<String>,
    pub properties: BTreeMap<String, String>,
}

/// The storage descriptor of Parquet data at `location`.
pub fn parquet_sd(cols: Vec<hms::FieldSchema>, location: &str) -> hms::StorageDescriptor {
    hms::StorageDescriptor {
        cols: Some(cols),
        location: Some(location.to_string()),
        input_format: Some("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat".into()),
        output_format: Some("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat".into()),
        compressed: Some(false),
        num_buckets: Some(-1),
        serde_info: Some(hms::SerDeInfo {
            serialization_lib: Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe".into()),
            parameters: Some(BTreeMap::from([("serialization.format".into(), "1".into())])),
            ..Default::default()
        }),
        bucket_cols: Some(Vec::new()),
        sort_cols: Some(Vec::new()),
        parameters: Some(BTreeMap::new()),
        ..Default::default()
    }
}

impl HiveRegistration {
    fn is_partition(&self, name: &str) -> bool {
        self.partition_columns.iter().any(|c| c == name)
    }

    /// Data columns as Hive stores them (lower-cased names).
    pub fn data_columns(&self) -> Vec<hms::FieldSchema> {
        self.schema
            .fields()
            .iter()
            .filter(|f| !self.is_partition(f.name()))
            .map(|f| hms::FieldSchema { name: Some(f.name().to_lowercase()), type_: Some(hive_type(f.data_type())), comment: None })
            .collect()
    }

    pub fn partition_keys(&self) -> Vec<hms::FieldSchema> {
        self.partition_columns
            .iter()
            .map(|c| {
                let t = self.schema.field_with_name(c).map(|f| hive_type(f.data_type())).unwrap_or_else(|_| "string".into());
                hms::FieldSchema { name: Some(c.to_lowercase()), type_: Some(t), comment: None }
            })
            .collect()
    }

    /// Spark's schema JSON, data columns first and partition columns last
    /// (the order Spark gives a Hive table), with the original letter case.
    fn spark_schema_json(&self) -> String {
        let mut fields: Vec<Value> = self.schema.fields().iter().filter(|f| !self.is_partition(f.name())).map(|f| spark_field(f)).collect();
        for c in &self.partition_columns {
            if let Ok(f) = self.schema.field_with_name(c) {
                fields.push(spark_field(f));
            }
        }
        json!({"type": "struct", "fields": fields}).to_string()
    }

    pub fn to_table(&self) -> hms::Table {
        let mut params: BTreeMap<String, String> = BTreeMap::new();
        params.insert("EXTERNAL".into(), "TRUE".into());
        params.insert(FORMAT_PARAM.into(), "hive".into());
        params.insert("inlet.registered.by".into(), "inlet".into());
        params.insert(ARROW_SCHEMA_PARAM.into(), serde_json::to_string(&self.schema).unwrap_or_default());
        // With the case-preserving schema stored, Spark does not list and
        // open files to infer it (`caseSensitiveInferenceMode`). When Spark
        // takes the schema from here it takes the partition columns from
        // here too (`restoreHiveSerdeTable`): without them it would treat
        // the table as unpartitioned and discover partitions by listing.
        spark_schema_params(&mut params, self.spark_schema_json(), &self.partition_columns);
        params.extend(self.properties.clone());
        hms::Table {
            table_name: Some(self.table.clone()),
            db_name: Some(self.database.clone()),
            owner: Some("inlet".into()),
            sd: Some(parquet_sd(self.data_columns(), &self.location)),
            partition_keys: Some(self.partition_keys()),
            parameters: Some(params),
            table_type: Some("EXTERNAL_TABLE".into()),
            ..Default::default()
        }
    }
}

/// The schema of a Hive table's data files: the table's columns without the
/// partition columns (their values are directory names), nanosecond
/// timestamps as microseconds (Spark and Hive read no nanoseconds in
/// Parquet). The sink writes files with it; the compactor rewrites them to it.
pub fn hive_file_schema(table: &Schema, partition_columns: &[String]) -> std::sync::Arc<Schema> {
    let fields: Vec<Field> = table
        .fields()
        .iter()
        .filter(|f| !partition_columns.iter().any(|p| p.eq_ignore_ascii_case(f.name())))
        .map(|f| match f.data_type() {
            DataType::Timestamp(TimeUnit::Nanosecond, tz) => Field::new(f.name(), DataType::Timestamp(TimeUnit::Microsecond, tz.clone()), f.is_nullable()),
            _ => f.as_ref().clone(),
        })
        .collect();
    std::sync::Arc::new(Schema::new(fields))
}

/// The Arrow schema inlet stored on a Hive table it writes, if any.
pub fn hive_arrow_schema(t: &hms::Table) -> Option<Schema> {
    t.parameters.as_ref()?.get(ARROW_SCHEMA_PARAM).and_then(|s| serde_json::from_str(s).ok())
}

/// Creates the Hive table (and its database) or, when it exists, brings its
/// columns up to `reg` (additive changes only: a column is never dropped or
/// retyped here). Returns the table as stored.
pub async fn register_hive(catalog: &Catalog, actor: &Actor, reg: &HiveRegistration) -> Result<(Registered, hms::Table), CatalogError> {
    ensure_database(catalog, actor, &reg.database).await?;
    let wanted = reg.to_table();
    match catalog.get_table(&reg.database, &reg.table).await {
        Err(CatalogError::NoSuchObject(_)) => match catalog.create_table(actor, wanted).await {
            Ok(t) => Ok((Registered::Created, t)),
            Err(CatalogError::AlreadyExists(_)) => Ok((Registered::Unchanged, catalog.get_table(&reg.database, &reg.table).await?)),
            Err(e) => Err(e),
        },
        Ok(existing) => {
            let same_cols = existing.sd.as_ref().map(|s| &s.cols) == wanted.sd.as_ref().map(|s| &s.cols);
            let same_schema = hive_arrow_schema(&existing).as_ref() == Some(&reg.schema);
            if same_cols && same_schema {
                return Ok((Registered::Unchanged, existing));
            }
            let mut updated = existing.clone();
            let mut params = existing.parameters.clone().unwrap_or_default();
            params.retain(|k, _| !k.starts_with("spark.sql.sources.schema"));
            params.extend(wanted.parameters.clone().unwrap_or_default());
            updated.parameters = Some(params);
            if let Some(sd) = updated.sd.as_mut() {
                sd.cols = wanted.sd.as_ref().and_then(|s| s.cols.clone());
            }
            // CASCADE: partitions' storage descriptors get the new columns
            // too, so Hive reads old partitions with them (as nulls).
            catalog.alter_table(actor, &reg.database, &reg.table, updated, true).await?;
            Ok((Registered::Updated, catalog.get_table(&reg.database, &reg.table).await?))
        }
        Err(e) => Err(e),
    }
}

async fn ensure_database(catalog: &Catalog, actor: &Actor, name: &str) -> Result<(), CatalogError> {
    match catalog.get_database(name).await {
        Ok(_) => Ok(()),
        Err(CatalogError::NoSuchObject(_)) => {
            let db = hms::Database { name: Some(name.to_string()), parameters: Some(BTreeMap::new()), owner_name: Some("inlet".into()), owner_type: Some(hms::PrincipalType::USER), ..Default::default() };
            match catalog.create_database(actor, db).await {
                Ok(()) | Err(CatalogError::AlreadyExists(_)) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::datatypes::Field;

    #[test]
    fn types_as_spark_and_hive_name_them() {
        let s = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            Field::new("tags", DataType::List(std::sync::Arc::new(Field::new("item", DataType::Utf8, true))), true),
            Field::new("amount", DataType::Decimal128(10, 2), true),
        ]);
        let reg = DeltaRegistration { database: "d".into(), table: "t".into(), location: "file:/w/t".into(), schema: s, partition_columns: vec!["dt".into()], properties: BTreeMap::new() };
        let t = reg.to_table();
        let cols: Vec<(String, String)> = t.sd.as_ref().unwrap().cols.as_ref().unwrap().iter().map(|c| (c.name.clone().unwrap(), c.type_.clone().unwrap())).collect();
        assert_eq!(cols[0], ("id".into(), "bigint".into()));
        assert_eq!(cols[1], ("ts".into(), "timestamp".into()));
        assert_eq!(cols[2], ("tags".into(), "array<string>".into()));
        assert_eq!(cols[3], ("amount".into(), "decimal(10,2)".into()));
        let p = t.parameters.unwrap();
        assert_eq!(p["spark.sql.sources.provider"], "delta");
        assert_eq!(p["spark.sql.sources.schema.partCol.0"], "dt");
        let schema: Value = serde_json::from_str(&p["spark.sql.sources.schema"]).unwrap();
        assert_eq!(schema["fields"][0]["type"], "long");
        assert_eq!(schema["fields"][2]["type"]["elementType"], "string");
        assert_eq!(t.sd.unwrap().serde_info.unwrap().parameters.unwrap()["path"], "file:/w/t");
    }

    #[test]
    fn long_schemas_are_split_like_spark_splits_them() {
        let fields: Vec<Field> = (0..400).map(|i| Field::new(format!("column_with_a_long_name_{i}"), DataType::Utf8, true)).collect();
        let reg = DeltaRegistration { database: "d".into(), table: "t".into(), location: "file:/w/t".into(), schema: Schema::new(fields), partition_columns: vec![], properties: BTreeMap::new() };
        let p = reg.to_table().parameters.unwrap();
        let n: usize = p["spark.sql.sources.schema.numParts"].parse().unwrap();
        assert!(n > 1);
        let joined: String = (0..n).map(|i| p[&format!("spark.sql.sources.schema.part.{i}")].clone()).collect();
        assert_eq!(joined, reg.spark_schema_json());
    }
}
