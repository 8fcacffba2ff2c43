//! Facet builders: each returns the facet's key and its JSON, with
//! `_producer` and a `_schemaURL` naming the exact facet schema version (the
//! files vendored under `lineage/spec/` are those versions, and the tests
//! validate every facet against the schema its `_schemaURL` names).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::model::{format_time, PRODUCER};
use crate::naming::DatasetId;

pub const SCHEMA: &str = "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
pub const SYMLINKS: &str = "https://openlineage.io/spec/facets/1-0-1/SymlinksDatasetFacet.json#/$defs/SymlinksDatasetFacet";
pub const DATASET_VERSION: &str = "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet";
pub const OUTPUT_STATISTICS: &str = "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet";
pub const COLUMN_LINEAGE: &str = "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet";
pub const JOB_TYPE: &str = "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";
pub const ERROR_MESSAGE: &str = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
pub const PROCESSING_ENGINE: &str = "https://openlineage.io/spec/facets/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet";
/// inlet's own run facet (`inlet_kafka`): Kafka offsets and event times.
pub const INLET_KAFKA: &str = "https://raw.githubusercontent.com/inlet-data/inlet/main/lineage/spec/facets/InletKafkaRunFacet.json#/$defs/InletKafkaRunFacet";

/// inlet's run facet of partition commits (`inlet_partition_commit`).
pub const INLET_PARTITION_COMMIT: &str = "https://raw.githubusercontent.com/inlet-data/inlet/main/lineage/spec/facets/InletPartitionCommitRunFacet.json#/$defs/InletPartitionCommitRunFacet";

/// Facet keys, as the spec names them.
pub mod keys {
    pub const SCHEMA: &str = "schema";
    pub const SYMLINKS: &str = "symlinks";
    pub const VERSION: &str = "version";
    pub const OUTPUT_STATISTICS: &str = "outputStatistics";
    pub const COLUMN_LINEAGE: &str = "columnLineage";
    pub const JOB_TYPE: &str = "jobType";
    pub const ERROR_MESSAGE: &str = "errorMessage";
    pub const PROCESSING_ENGINE: &str = "processing_engine";
    pub const INLET_KAFKA: &str = "inlet_kafka";
    pub const INLET_PARTITION_COMMIT: &str = "inlet_partition_commit";
}

/// `body` with `_producer` and `_schemaURL`.
fn facet(schema_url: &str, body: impl Serialize) -> Value {
    let mut v = serde_json::to_value(body).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.insert("_producer".into(), Value::String(PRODUCER.into()));
        m.insert("_schemaURL".into(), Value::String(schema_url.into()));
    }
    v
}

/// One column of a schema facet; nested struct fields in `fields`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaField {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<SchemaField>,
}

impl SchemaField {
    pub fn new(name: impl Into<String>, data_type: impl Into<String>) -> Self {
        SchemaField { name: name.into(), data_type: data_type.into(), description: None, fields: Vec::new() }
    }
}

/// The `schema` dataset facet; ordinal positions are 1-based.
pub fn schema(fields: &[SchemaField]) -> (&'static str, Value) {
    #[derive(Serialize)]
    struct Field<'a> {
        name: &'a str,
        #[serde(rename = "type")]
        data_type: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<&'a str>,
        ordinal_position: usize,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        fields: Vec<Field<'a>>,
    }
    fn conv(fields: &[SchemaField]) -> Vec<Field<'_>> {
        fields
            .iter()
            .enumerate()
            .map(|(i, f)| Field { name: &f.name, data_type: &f.data_type, description: f.description.as_deref(), ordinal_position: i + 1, fields: conv(&f.fields) })
            .collect()
    }
    (keys::SCHEMA, facet(SCHEMA, json!({ "fields": conv(fields) })))
}

/// The `symlinks` dataset facet: other names of the same dataset, e.g. its
/// catalog table (`type: TABLE`).
pub fn symlinks(ids: &[(DatasetId, &str)]) -> (&'static str, Value) {
    let identifiers: Vec<Value> = ids.iter().map(|(id, t)| json!({ "namespace": id.namespace, "name": id.name, "type": t })).collect();
    (keys::SYMLINKS, facet(SYMLINKS, json!({ "identifiers": identifiers })))
}

/// The `version` dataset facet: for a Delta table, its table version.
pub fn dataset_version(version: i64) -> (&'static str, Value) {
    (keys::VERSION, facet(DATASET_VERSION, json!({ "datasetVersion": version.to_string() })))
}

/// The `outputStatistics` output facet.
pub fn output_statistics(rows: u64, bytes: u64, files: u64) -> (&'static str, Value) {
    (keys::OUTPUT_STATISTICS, facet(OUTPUT_STATISTICS, json!({ "rowCount": rows, "size": bytes, "fileCount": files })))
}

/// One input field of a column-lineage entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputField {
    pub namespace: String,
    pub name: String,
    pub field: String,
    pub transformations: Vec<Transformation>,
}

/// How an output column derives from an input field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transformation {
    /// `DIRECT` or `INDIRECT`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `IDENTITY`, `TRANSFORMATION`, ...
    pub subtype: &'static str,
    pub description: String,
    pub masking: bool,
}

impl InputField {
    /// The field copied unchanged (`DIRECT`/`IDENTITY`).
    pub fn identity(from: &DatasetId, field: &str, description: impl Into<String>) -> Self {
        InputField { namespace: from.namespace.clone(), name: from.name.clone(), field: field.to_string(), transformations: vec![Transformation { kind: "DIRECT", subtype: "IDENTITY", description: description.into(), masking: false }] }
    }

    /// The field computed by a function (`DIRECT`/`TRANSFORMATION`).
    pub fn transformed(from: &DatasetId, field: &str, description: impl Into<String>) -> Self {
        InputField { namespace: from.namespace.clone(), name: from.name.clone(), field: field.to_string(), transformations: vec![Transformation { kind: "DIRECT", subtype: "TRANSFORMATION", description: description.into(), masking: false }] }
    }
}

/// The `columnLineage` dataset facet: output column -> the input fields it
/// is computed from.
pub fn column_lineage(fields: &BTreeMap<String, Vec<InputField>>) -> (&'static str, Value) {
    let fields: serde_json::Map<String, Value> = fields.iter().map(|(k, v)| (k.clone(), json!({ "inputFields": v }))).collect();
    (keys::COLUMN_LINEAGE, facet(COLUMN_LINEAGE, json!({ "fields": fields })))
}

/// BATCH (a run with an end) or STREAMING (continuous).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProcessingType {
    Batch,
    Streaming,
}

/// The `jobType` job facet with integration `INLET`.
pub fn job_type(processing: ProcessingType, job_type: &str) -> (&'static str, Value) {
    (keys::JOB_TYPE, facet(JOB_TYPE, json!({ "processingType": processing, "integration": "INLET", "jobType": job_type })))
}

/// The `errorMessage` run facet of a FAIL event.
pub fn error_message(message: &str) -> (&'static str, Value) {
    (keys::ERROR_MESSAGE, facet(ERROR_MESSAGE, json!({ "message": message, "programmingLanguage": "RUST" })))
}

/// The `processing_engine` run facet: inlet and its version.
pub fn processing_engine() -> (&'static str, Value) {
    (keys::PROCESSING_ENGINE, facet(PROCESSING_ENGINE, json!({ "name": "inlet", "version": env!("CARGO_PKG_VERSION"), "openlineageAdapterVersion": env!("CARGO_PKG_VERSION") })))
}

/// Where a pipeline's event times come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventTimeSource {
    EventTimeField,
    KafkaTimestamp,
}

/// The last offset committed for one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// What one table commit covered (in RUNNING events).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitFacts {
    pub version: i64,
    #[serde(with = "time_ms")]
    pub committed_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_time_ms")]
    pub oldest_event_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_time_ms")]
    pub newest_event_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_time_ms")]
    pub oldest_kafka_timestamp: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_time_ms")]
    pub newest_kafka_timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    pub rows: u64,
    #[serde(default)]
    pub dead_letters: u64,
}

/// inlet's `inlet_kafka` run facet.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaRunFacet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_servers: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_group: Option<String>,
    pub offsets: Vec<PartitionOffset>,
    pub event_time_source: EventTimeSource,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_time_ms")]
    pub newest_event_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitFacts>,
}

pub fn inlet_kafka(f: &KafkaRunFacet) -> (&'static str, Value) {
    (keys::INLET_KAFKA, facet(INLET_KAFKA, f))
}

/// A Hive partition closed by partition commit.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PartitionCommitFacet {
    pub partition: String,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    pub recommit: bool,
}

pub fn inlet_partition_commit(f: &PartitionCommitFacet) -> (&'static str, Value) {
    (keys::INLET_PARTITION_COMMIT, facet(INLET_PARTITION_COMMIT, f))
}

/// Reads inlet's Kafka facet back from a run's facets.
pub fn read_inlet_kafka(facets: &crate::model::Facets) -> Option<KafkaRunFacet> {
    facets.get(keys::INLET_KAFKA).and_then(|v| serde_json::from_value(v.clone()).ok())
}

mod time_ms {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(t))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}

mod opt_time_ms {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::format_time(t)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)).transpose()
    }
}

/// A facet value's `_schemaURL`.
pub fn schema_url_of(facet: &Value) -> Option<&str> {
    facet.get("_schemaURL").and_then(Value::as_str)
}

/// Reads the Delta version from a dataset's `version` facet.
pub fn read_version(facets: &crate::model::Facets) -> Option<i64> {
    facets.get(keys::VERSION)?.get("datasetVersion")?.as_str()?.parse().ok()
}

/// Reads (rows, bytes, files) from an `outputStatistics` facet.
pub fn read_output_statistics(facets: &crate::model::Facets) -> Option<(Option<i64>, Option<i64>, Option<i64>)> {
    let f = facets.get(keys::OUTPUT_STATISTICS)?;
    Some((f.get("rowCount").and_then(Value::as_i64), f.get("size").and_then(Value::as_i64), f.get("fileCount").and_then(Value::as_i64)))
}

/// Reads the symlink identifiers of a dataset.
pub fn read_symlinks(facets: &crate::model::Facets) -> Vec<(DatasetId, String)> {
    let Some(ids) = facets.get(keys::SYMLINKS).and_then(|f| f.get("identifiers")).and_then(Value::as_array) else { return Vec::new() };
    ids.iter()
        .filter_map(|i| Some((DatasetId::new(i.get("namespace")?.as_str()?, i.get("name")?.as_str()?), i.get("type").and_then(Value::as_str).unwrap_or("TABLE").to_string())))
        .collect()
}

/// Reads the `jobType` facet's processing type and job type.
pub fn read_job_type(facets: &crate::model::Facets) -> (Option<String>, Option<String>, Option<String>) {
    let Some(f) = facets.get(keys::JOB_TYPE) else { return (None, None, None) };
    let s = |k: &str| f.get(k).and_then(Value::as_str).map(str::to_string);
    (s("processingType"), s("integration"), s("jobType"))
}
