//! What Hive's metastore fills in or rewrites on the objects it is sent, so
//! that clients read back what they would read from Hive (ObjectStore's
//! convertTo*/convertToM* and HiveMetaStore's create/alter paths, Hive
//! 2.3-4): lower-cased names, empty maps and lists instead of nulls, the
//! managed/external rule, default locations and the DDL time.

use std::collections::BTreeMap;

use inlet_hms_thrift::hive_metastore as hms;

use super::{CatalogError, Result};
use crate::names::normalize_identifier;

pub const DEFAULT_DATABASE: &str = "default";
/// Hive's `hive_metastoreConstants.DDL_TIME`.
pub const DDL_TIME: &str = "transient_lastDdlTime";

/// Hive's `MetaStoreUtils.validateName`: word characters only (letters,
/// digits, underscore; Unicode letters allowed as Java's `\w` with
/// UNICODE_CHARACTER_CLASS is not used: ASCII `\w`).
pub fn validate_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn normalize_database(db: &mut hms::Database) {
    if let Some(n) = db.name.as_mut() {
        *n = normalize_identifier(n);
    }
    db.parameters.get_or_insert_with(BTreeMap::new);
    db.owner_type.get_or_insert(hms::PrincipalType::USER);
}

/// A table as ObjectStore stores and returns it.
pub fn normalize_table(t: &mut hms::Table) -> Result<()> {
    let name = t.table_name.clone().unwrap_or_default();
    if !validate_name(&name) {
        return Err(CatalogError::InvalidObject(format!("{name} is not a valid object name")));
    }
    t.table_name = Some(normalize_identifier(&name));
    if let Some(db) = t.db_name.as_mut() {
        *db = normalize_identifier(db);
    }
    let params = t.parameters.get_or_insert_with(BTreeMap::new);
    // ObjectStore.convertToMTable: the EXTERNAL parameter decides between
    // managed and external, whatever type the client sent.
    let external = params.get("EXTERNAL").map(|v| v.eq_ignore_ascii_case("TRUE")).unwrap_or(false);
    match t.table_type.as_deref() {
        Some("MANAGED_TABLE") if external => t.table_type = Some("EXTERNAL_TABLE".into()),
        Some("EXTERNAL_TABLE") if !external => t.table_type = Some("MANAGED_TABLE".into()),
        None | Some("") => t.table_type = Some(if external { "EXTERNAL_TABLE" } else { "MANAGED_TABLE" }.into()),
        _ => {}
    }
    let keys = t.partition_keys.get_or_insert_with(Vec::new);
    normalize_fields(keys);
    t.last_access_time.get_or_insert(0);
    t.retention.get_or_insert(0);
    // ObjectStore does not keep `temporary` (temporary tables never reach
    // the metastore): it reads back unset.
    t.temporary = None;
    if t.table_type.as_deref() != Some("VIRTUAL_VIEW") && t.sd.is_none() {
        return Err(CatalogError::InvalidObject("Storage descriptor is required".into()));
    }
    if let Some(sd) = t.sd.as_mut() {
        normalize_sd(sd);
    }
    let cols: Vec<String> = t.sd.iter().flat_map(|sd| sd.cols.iter().flatten()).filter_map(|f| f.name.clone()).collect();
    for k in t.partition_keys.iter().flatten() {
        if let Some(n) = &k.name {
            if cols.contains(n) {
                return Err(CatalogError::InvalidObject(format!("Partition column name {n} conflicts with table columns.")));
            }
        }
    }
    Ok(())
}

fn normalize_fields(fields: &mut [hms::FieldSchema]) {
    for f in fields {
        if let Some(n) = f.name.as_mut() {
            *n = normalize_identifier(n);
        }
    }
}

/// StorageDescriptor as ObjectStore returns it: no null collections.
pub fn normalize_sd(sd: &mut hms::StorageDescriptor) {
    normalize_fields(sd.cols.get_or_insert_with(Vec::new));
    sd.compressed.get_or_insert(false);
    sd.num_buckets.get_or_insert(-1);
    sd.bucket_cols.get_or_insert_with(Vec::new);
    sd.sort_cols.get_or_insert_with(Vec::new);
    sd.parameters.get_or_insert_with(BTreeMap::new);
    sd.stored_as_sub_directories.get_or_insert(false);
    let serde = sd.serde_info.get_or_insert_with(Default::default);
    serde.parameters.get_or_insert_with(BTreeMap::new);
    let skew = sd.skewed_info.get_or_insert_with(Default::default);
    skew.skewed_col_names.get_or_insert_with(Vec::new);
    skew.skewed_col_values.get_or_insert_with(Vec::new);
    skew.skewed_col_value_location_maps.get_or_insert_with(BTreeMap::new);
}

pub fn normalize_partition(p: &mut hms::Partition) {
    if let Some(db) = p.db_name.as_mut() {
        *db = normalize_identifier(db);
    }
    if let Some(t) = p.table_name.as_mut() {
        *t = normalize_identifier(t);
    }
    p.parameters.get_or_insert_with(BTreeMap::new);
    p.last_access_time.get_or_insert(0);
    if let Some(sd) = p.sd.as_mut() {
        normalize_sd(sd);
    }
}

/// Sets the DDL time parameter unless the client set it.
pub fn stamp_ddl_time(params: &mut Option<BTreeMap<String, String>>, now: i32) {
    params.get_or_insert_with(BTreeMap::new).entry(DDL_TIME.to_string()).or_insert_with(|| now.to_string());
}

/// Whether a table's data belongs to the metastore (dropped with it).
pub fn is_managed(t: &hms::Table) -> bool {
    t.table_type.as_deref() == Some("MANAGED_TABLE")
}
