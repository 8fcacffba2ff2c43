//! JSON views of catalog objects: what the REST API returns and what the
//! audit log records as "before" and "after". They flatten Hive's Thrift
//! structs into the fields people look for (columns, location, format,
//! properties) and leave the rest out.

use std::collections::BTreeMap;

use inlet_hms_thrift::hive_metastore as hms;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct DatabaseView {
    pub name: String,
    pub description: Option<String>,
    pub location: Option<String>,
    pub owner: Option<String>,
    pub properties: BTreeMap<String, String>,
}

impl From<&hms::Database> for DatabaseView {
    fn from(d: &hms::Database) -> Self {
        DatabaseView {
            name: d.name.clone().unwrap_or_default(),
            description: d.description.clone(),
            location: d.location_uri.clone(),
            owner: d.owner_name.clone(),
            properties: d.parameters.clone().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnView {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

fn columns(cols: Option<&Vec<hms::FieldSchema>>) -> Vec<ColumnView> {
    cols.map(|c| {
        c.iter()
            .map(|f| ColumnView { name: f.name.clone().unwrap_or_default(), type_name: f.type_.clone().unwrap_or_default(), comment: f.comment.clone().filter(|c| !c.is_empty()) })
            .collect()
    })
    .unwrap_or_default()
}

/// How a table's data is stored.
#[derive(Debug, Clone, Serialize)]
pub struct FormatView {
    /// `delta`, `parquet`, ... from `spark.sql.sources.provider`, or `hive`.
    pub provider: String,
    pub input_format: Option<String>,
    pub output_format: Option<String>,
    pub serde: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableView {
    pub database: String,
    pub name: String,
    pub table_type: String,
    pub owner: Option<String>,
    pub created_at: Option<i32>,
    pub location: Option<String>,
    pub format: FormatView,
    pub columns: Vec<ColumnView>,
    pub partition_keys: Vec<ColumnView>,
    pub properties: BTreeMap<String, String>,
    /// The Delta log's state, for Delta tables when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<DeltaView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeltaView {
    pub version: i64,
    pub files: u64,
    pub size_bytes: u64,
}

/// The table's real location: Delta registrations (as delta-spark writes
/// them) keep it in the SerDe's `path` parameter too.
pub fn table_location(t: &hms::Table) -> Option<String> {
    let sd = t.sd.as_ref()?;
    sd.location.clone().filter(|l| !l.is_empty()).or_else(|| sd.serde_info.as_ref()?.parameters.as_ref()?.get("path").cloned())
}

impl From<&hms::Table> for TableView {
    fn from(t: &hms::Table) -> Self {
        let sd = t.sd.as_ref();
        let params = t.parameters.clone().unwrap_or_default();
        TableView {
            database: t.db_name.clone().unwrap_or_default(),
            name: t.table_name.clone().unwrap_or_default(),
            table_type: t.table_type.clone().unwrap_or_default(),
            owner: t.owner.clone(),
            created_at: t.create_time,
            location: table_location(t),
            format: FormatView {
                provider: params.get("spark.sql.sources.provider").cloned().unwrap_or_else(|| "hive".into()),
                input_format: sd.and_then(|s| s.input_format.clone()),
                output_format: sd.and_then(|s| s.output_format.clone()),
                serde: sd.and_then(|s| s.serde_info.as_ref()).and_then(|s| s.serialization_lib.clone()),
            },
            columns: columns(sd.and_then(|s| s.cols.as_ref())),
            partition_keys: columns(t.partition_keys.as_ref()),
            properties: params,
            delta: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PartitionView {
    pub name: String,
    pub values: Vec<String>,
    pub location: Option<String>,
    pub created_at: Option<i32>,
    pub properties: BTreeMap<String, String>,
}

impl PartitionView {
    pub fn new(name: String, p: &hms::Partition) -> Self {
        PartitionView {
            name,
            values: p.values.clone().unwrap_or_default(),
            location: p.sd.as_ref().and_then(|s| s.location.clone()),
            created_at: p.create_time,
            properties: p.parameters.clone().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FunctionView {
    pub database: String,
    pub name: String,
    pub class_name: Option<String>,
    pub owner: Option<String>,
}

impl From<&hms::Function> for FunctionView {
    fn from(f: &hms::Function) -> Self {
        FunctionView { database: f.db_name.clone().unwrap_or_default(), name: f.function_name.clone().unwrap_or_default(), class_name: f.class_name.clone(), owner: f.owner_name.clone() }
    }
}

/// A view as a JSON value for the audit log.
pub fn json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}
