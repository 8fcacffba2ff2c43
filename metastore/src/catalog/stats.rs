//! Column statistics of tables and partitions (ANALYZE, Spark's CBO, Trino's
//! planner): stored per column as the client's own Thrift objects.

use std::collections::BTreeMap;

use inlet_hms_thrift::hive_metastore as hms;

use super::{Actor, Catalog, CatalogError, Result};
use crate::codec::{decode, decode_table, encode};
use crate::names::normalize_identifier;
use crate::store::audit::{self, AuditEntry};
use crate::store::objects::{self, TABLE_LEVEL};
use crate::store::now_ms;

/// A stored column's statistics and the `last_analyzed` it was sent with.
fn decode_stat(blob: &[u8]) -> Result<(hms::ColumnStatisticsObj, Option<i64>)> {
    let mut stats: hms::ColumnStatistics = decode("column statistics", blob)?;
    let last = stats.stats_desc.last_analyzed;
    let obj = stats.stats_obj.pop().ok_or_else(|| crate::store::StoreError::Corrupt { what: "column statistics".into(), reason: "no statistics object".into() })?;
    Ok((obj, last))
}

/// Hive's `COLUMN_STATS_ACCURATE` parameter: which columns have statistics,
/// set on the table (or partition) the statistics were written for.
async fn mark_stats_accurate(c: &mut sqlx::AnyConnection, tbl_id: i64, part: Option<&str>, columns: &[String]) -> Result<()> {
    fn merge(params: &mut BTreeMap<String, String>, columns: &[String]) {
        let mut v: serde_json::Value = params.get("COLUMN_STATS_ACCURATE").and_then(|s| serde_json::from_str(s).ok()).unwrap_or_else(|| serde_json::json!({}));
        if !v.is_object() {
            v = serde_json::json!({});
        }
        let entry = v.as_object_mut().expect("object").entry("COLUMN_STATS").or_insert_with(|| serde_json::json!({}));
        if let Some(m) = entry.as_object_mut() {
            for col in columns {
                m.insert(col.clone(), serde_json::Value::String("true".into()));
            }
        }
        params.insert("COLUMN_STATS_ACCURATE".into(), v.to_string());
    }
    match part {
        None => {
            if let Some(mut row) = objects::table_by_id(c, tbl_id).await? {
                let mut t = decode_table(&row.object)?;
                merge(t.parameters.get_or_insert_with(Default::default), columns);
                row.object = encode(&t);
                objects::update_table(c, &row).await?;
            }
        }
        Some(name) => {
            if let Some(mut row) = objects::partition_by_name(c, tbl_id, name).await? {
                let mut p: hms::Partition = decode("partition", &row.object)?;
                merge(p.parameters.get_or_insert_with(Default::default), columns);
                row.object = encode(&p);
                objects::update_partition(c, &row).await?;
            }
        }
    }
    Ok(())
}

impl Catalog {
    /// Stores column statistics of a table or of one partition, replacing
    /// those of the same columns.
    pub async fn update_column_statistics(&self, actor: &Actor, stats: hms::ColumnStatistics) -> Result<bool> {
        let desc = &stats.stats_desc;
        let (db, table) = (normalize_identifier(&desc.db_name), normalize_identifier(&desc.table_name));
        let trow = self.table_row(&db, &table).await?;
        let t = decode_table(&trow.object)?;
        let part = if desc.is_tbl_level {
            None
        } else {
            let name = desc.part_name.clone().ok_or_else(|| CatalogError::InvalidObject("Partition name is required for partition statistics".into()))?;
            let values = self.values_from_name(&t, &name)?;
            Some(super::partitions::part_name(&t, &values)?)
        };
        let columns: Vec<String> = t.sd.iter().flat_map(|s| s.cols.iter().flatten()).chain(t.partition_keys.iter().flatten()).filter_map(|f| f.name.clone()).collect();
        for obj in &stats.stats_obj {
            if !columns.contains(&normalize_identifier(&obj.col_name)) {
                return Err(CatalogError::Invalid(format!("Column {} doesn't exist in table {table} in database {db}", obj.col_name)));
            }
        }
        let actor = actor.clone();
        let object_name = match &part {
            Some(p) => format!("{db}.{table}/{p}"),
            None => format!("{db}.{table}"),
        };
        self.store()
            .transact(|c| {
                let (stats, part, actor, object_name) = (stats.clone(), part.clone(), actor.clone(), object_name.clone());
                let tbl_id = trow.tbl_id;
                Box::pin(async move {
                    let part_id = match &part {
                        Some(name) => objects::partition_by_name(c, tbl_id, name).await?.ok_or_else(|| CatalogError::NoSuchObject(format!("Partition {name} does not exist")))?.part_id,
                        None => TABLE_LEVEL,
                    };
                    let now = now_ms();
                    for obj in &stats.stats_obj {
                        let mut obj = obj.clone();
                        obj.col_name = normalize_identifier(&obj.col_name);
                        // The descriptor is kept with each column: it carries
                        // `last_analyzed`, which readers get back.
                        let one = hms::ColumnStatistics { stats_desc: stats.stats_desc.clone(), stats_obj: vec![obj.clone()], is_stats_compliant: None, engine: stats.engine.clone() };
                        objects::put_column_stats(c, tbl_id, part_id, &obj.col_name, &encode(&one), now).await?;
                    }
                    let names: Vec<String> = stats.stats_obj.iter().map(|o| normalize_identifier(&o.col_name)).collect();
                    mark_stats_accurate(c, tbl_id, part.as_deref(), &names).await?;
                    let mut e = AuditEntry::new(&actor.user, actor.via, "update_column_statistics", "statistics", object_name);
                    e.after = Some(serde_json::json!({ "columns": stats.stats_obj.iter().map(|o| o.col_name.clone()).collect::<Vec<_>>() }));
                    audit::insert(c, &e).await?;
                    Ok(true)
                })
            })
            .await
    }

    /// Table-level statistics of the columns asked for (all when empty).
    pub async fn table_column_statistics(&self, db: &str, table: &str, columns: &[String]) -> Result<Vec<hms::ColumnStatisticsObj>> {
        let trow = self.table_row(db, table).await?;
        let want: Vec<String> = columns.iter().map(|c| normalize_identifier(c)).collect();
        let mut conn = self.store().reader().await?;
        let rows = objects::column_stats(&mut conn, trow.tbl_id, &[TABLE_LEVEL]).await?;
        rows.into_iter().filter(|(_, c, _)| want.is_empty() || want.contains(c)).map(|(_, _, b)| decode_stat(&b).map(|(o, _)| o)).collect()
    }

    /// Table-level statistics with the newest `last_analyzed` among them.
    pub async fn table_column_statistics_desc(&self, db: &str, table: &str, columns: &[String]) -> Result<(Vec<hms::ColumnStatisticsObj>, Option<i64>)> {
        let trow = self.table_row(db, table).await?;
        let want: Vec<String> = columns.iter().map(|c| normalize_identifier(c)).collect();
        let mut conn = self.store().reader().await?;
        let rows = objects::column_stats(&mut conn, trow.tbl_id, &[TABLE_LEVEL]).await?;
        let mut objs = Vec::new();
        let mut last = None;
        for (_, c, b) in rows {
            if want.is_empty() || want.contains(&c) {
                let (o, l) = decode_stat(&b)?;
                objs.push(o);
                last = last.max(l);
            }
        }
        Ok((objs, last))
    }

    /// Statistics per partition name, of the columns asked for.
    pub async fn partition_column_statistics(&self, db: &str, table: &str, partitions: &[String], columns: &[String]) -> Result<BTreeMap<String, Vec<hms::ColumnStatisticsObj>>> {
        Ok(self.partition_column_statistics_desc(db, table, partitions, columns).await?.into_iter().map(|(k, (v, _))| (k, v)).collect())
    }

    /// Statistics per partition name with the newest `last_analyzed` of each.
    pub async fn partition_column_statistics_desc(&self, db: &str, table: &str, partitions: &[String], columns: &[String]) -> Result<BTreeMap<String, (Vec<hms::ColumnStatisticsObj>, Option<i64>)>> {
        let trow = self.table_row(db, table).await?;
        let t = decode_table(&trow.object)?;
        let want: Vec<String> = columns.iter().map(|c| normalize_identifier(c)).collect();
        let mut conn = self.store().reader().await?;
        let mut ids = Vec::new();
        let mut names = BTreeMap::new();
        for given in partitions {
            let Ok(values) = self.values_from_name(&t, given) else { continue };
            let name = super::partitions::part_name(&t, &values)?;
            if let Some(row) = objects::partition_by_name(&mut conn, trow.tbl_id, &name).await? {
                ids.push(row.part_id);
                names.insert(row.part_id, given.clone());
            }
        }
        let mut out: BTreeMap<String, (Vec<hms::ColumnStatisticsObj>, Option<i64>)> = BTreeMap::new();
        for (part_id, col, blob) in objects::column_stats(&mut conn, trow.tbl_id, &ids).await? {
            if want.is_empty() || want.contains(&col) {
                if let Some(name) = names.get(&part_id) {
                    let (o, last) = decode_stat(&blob)?;
                    let e = out.entry(name.clone()).or_default();
                    e.0.push(o);
                    e.1 = e.1.max(last);
                }
            }
        }
        Ok(out)
    }

    /// Deletes statistics of one column (all when None) of the table level
    /// or of a partition.
    pub async fn delete_column_statistics(&self, actor: &Actor, db: &str, table: &str, partition: Option<&str>, column: Option<&str>) -> Result<bool> {
        let (db, table) = (normalize_identifier(db), normalize_identifier(table));
        let trow = self.table_row(&db, &table).await?;
        let t = decode_table(&trow.object)?;
        let part = match partition {
            Some(n) => Some(super::partitions::part_name(&t, &self.values_from_name(&t, n)?)?),
            None => None,
        };
        let column = column.map(normalize_identifier);
        let actor = actor.clone();
        self.store()
            .transact(|c| {
                let (part, column, actor, db, table) = (part.clone(), column.clone(), actor.clone(), db.clone(), table.clone());
                let tbl_id = trow.tbl_id;
                Box::pin(async move {
                    let part_id = match &part {
                        Some(name) => objects::partition_by_name(c, tbl_id, name).await?.ok_or_else(|| CatalogError::NoSuchObject(format!("Partition {name} does not exist")))?.part_id,
                        None => TABLE_LEVEL,
                    };
                    let gone = objects::delete_column_stats(c, tbl_id, part_id, column.as_deref()).await?;
                    if !gone && column.is_some() {
                        return Err(CatalogError::NoSuchObject(format!("Column stats doesn't exist for db={db} table={table} col={}", column.clone().unwrap_or_default())));
                    }
                    let name = match &part {
                        Some(p) => format!("{db}.{table}/{p}"),
                        None => format!("{db}.{table}"),
                    };
                    let mut e = AuditEntry::new(&actor.user, actor.via, "delete_column_statistics", "statistics", name);
                    e.before = Some(serde_json::json!({ "column": column }));
                    audit::insert(c, &e).await?;
                    Ok(gone)
                })
            })
            .await
    }
}
