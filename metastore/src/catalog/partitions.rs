//! Partitions: add (batches, if-not-exists), read by values, name, partial
//! spec, filter and names, alter, rename, drop. Names are Hive's escaped
//! `k1=v1/k2=v2`; filters are evaluated on the stored values without
//! decoding any partition that does not match.

use std::sync::Arc;

use inlet_hms_thrift::hive_metastore as hms;

use super::defaults::{normalize_partition, stamp_ddl_time};
use super::partition_cache::{CachedKey, CachedKeys};
use super::{now_secs, Actor, Catalog, CatalogError, Result};
use crate::codec::{decode_partition, decode_table, encode};
use crate::filter::{self, PartitionKey};
use crate::model::{json, table_location, PartitionView};
use crate::names::{make_part_name, normalize_identifier, values_from_part_name};
use crate::store::audit::{self, AuditEntry};
use crate::store::objects::{self, PartitionRow, TableRow};
use crate::store::{new_id, now_ms};

/// A table's partition keys as the filter evaluator wants them.
fn keys_of(t: &hms::Table) -> Vec<PartitionKey> {
    t.partition_keys.iter().flatten().map(|k| PartitionKey::new(k.name.clone().unwrap_or_default(), k.type_.clone().unwrap_or_else(|| "string".into()))).collect()
}

fn key_names(t: &hms::Table) -> Vec<String> {
    t.partition_keys.iter().flatten().map(|k| k.name.clone().unwrap_or_default()).collect()
}

/// Hive's escaped partition name for `values` of table `t`.
pub(crate) fn part_name(t: &hms::Table, values: &[String]) -> Result<String> {
    let keys = key_names(t);
    if keys.is_empty() {
        return Err(CatalogError::Invalid(format!("Table {} is not a partitioned table", t.table_name.clone().unwrap_or_default())));
    }
    if keys.len() != values.len() {
        return Err(CatalogError::Invalid(format!("Incorrect number of partition values. numPartKeys={}, part_val={values:?}", keys.len())));
    }
    let k: Vec<&str> = keys.iter().map(String::as_str).collect();
    let v: Vec<&str> = values.iter().map(String::as_str).collect();
    make_part_name(&k, &v).map_err(|e| CatalogError::Invalid(e.to_string()))
}

fn limit(max: i32) -> Option<usize> {
    (max >= 0).then_some(max as usize)
}

fn part_object_name(db: &str, table: &str, part: &str) -> String {
    format!("{db}.{table}/{part}")
}

impl Catalog {
    /// Adds partitions to a table in one transaction. With `if_not_exists`,
    /// partitions that exist are skipped; otherwise any existing one fails
    /// the whole call. Returns the partitions added, as stored.
    pub async fn add_partitions(&self, actor: &Actor, db: &str, table: &str, parts: Vec<hms::Partition>, if_not_exists: bool) -> Result<Vec<hms::Partition>> {
        let (db, table) = (normalize_identifier(db), normalize_identifier(table));
        let trow = self.table_row(&db, &table).await.map_err(|e| match e {
            CatalogError::NoSuchObject(_) => CatalogError::InvalidObject(format!("Unable to add partitions because database or table {db}.{table} does not exist")),
            e => e,
        })?;
        let t = decode_table(&trow.object)?;
        let table_loc = table_location(&t).unwrap_or_default();
        let now = now_secs();
        let mut prepared: Vec<(String, hms::Partition)> = Vec::with_capacity(parts.len());
        let mut seen = std::collections::HashSet::new();
        for mut p in parts {
            normalize_partition(&mut p);
            if p.db_name.as_deref().is_some_and(|d| d != db) || p.table_name.as_deref().is_some_and(|n| n != table) {
                return Err(CatalogError::Invalid(format!("Partition does not belong to target table {db}.{table}: {:?}", p.values)));
            }
            p.db_name = Some(db.clone());
            p.table_name = Some(table.clone());
            let values = p.values.clone().unwrap_or_default();
            let name = part_name(&t, &values)?;
            if !seen.insert(name.clone()) {
                return Err(CatalogError::Invalid(format!("Duplicate partitions in the list: {name}")));
            }
            p.create_time = Some(now);
            stamp_ddl_time(&mut p.parameters, now);
            let sd = p.sd.get_or_insert_with(|| t.sd.clone().unwrap_or_default());
            if sd.location.as_deref().unwrap_or("").is_empty() && !table_loc.is_empty() {
                let loc = format!("{}/{name}", table_loc.trim_end_matches('/'));
                sd.location = Some(loc);
            }
            prepared.push((name, p));
        }
        let actor = actor.clone();
        let added = self
            .store()
            .transact(|c| {
                let (prepared, actor, db, table) = (prepared.clone(), actor.clone(), db.clone(), table.clone());
                let tbl_id = trow.tbl_id;
                Box::pin(async move {
                    let mut added = Vec::new();
                    for (name, p) in prepared {
                        if objects::partition_by_name(c, tbl_id, &name).await?.is_some() {
                            if if_not_exists {
                                continue;
                            }
                            return Err(CatalogError::AlreadyExists(format!("Partition already exists: {db}.{table}.{name}")));
                        }
                        let row = PartitionRow {
                            part_id: new_id(),
                            tbl_id,
                            part_name: name.clone(),
                            vals: serde_json::to_string(p.values.as_ref().unwrap_or(&Vec::new())).unwrap_or_else(|_| "[]".into()),
                            location: p.sd.as_ref().and_then(|s| s.location.clone()),
                            created_at: now_ms(),
                            object: encode(&p),
                        };
                        objects::insert_partition(c, &row).await.map_err(|e| {
                            match (e.is_unique_violation(), if_not_exists) {
                                (true, true) => CatalogError::Conflict(format!("Partition {db}.{table}.{name} was added concurrently")),
                                (true, false) => CatalogError::AlreadyExists(format!("Partition already exists: {db}.{table}.{name}")),
                                _ => e.into(),
                            }
                        })?;
                        let mut e = AuditEntry::new(&actor.user, actor.via, "add_partition", "partition", part_object_name(&db, &table, &name));
                        e.after = Some(json(&PartitionView::new(name, &p)));
                        audit::insert(c, &e).await?;
                        added.push(p);
                    }
                    if !added.is_empty() {
                        objects::bump_partition_generation(c, tbl_id).await?;
                    }
                    Ok(added)
                })
            })
            .await?;
        for p in &added {
            if let Some(loc) = p.sd.as_ref().and_then(|s| s.location.as_deref()) {
                if loc.starts_with(table_loc.as_str()) && !table_loc.is_empty() {
                    crate::storage::make_dir(loc).await?;
                }
            }
        }
        Ok(added)
    }

    /// Hive's append_partition: adds the partition of `values` with the
    /// table's storage and the default location.
    pub async fn append_partition(&self, actor: &Actor, db: &str, table: &str, values: Vec<String>) -> Result<hms::Partition> {
        let p = hms::Partition { values: Some(values.clone()), db_name: Some(normalize_identifier(db)), table_name: Some(normalize_identifier(table)), ..Default::default() };
        let mut t = self.get_table(db, table).await?;
        let mut p = p;
        let mut sd = t.sd.take().unwrap_or_default();
        sd.location = None;
        p.sd = Some(sd);
        let name = part_name(&t, &values)?;
        match self.add_partitions(actor, db, table, vec![p], false).await {
            Ok(mut v) if !v.is_empty() => Ok(v.remove(0)),
            Ok(_) => Err(CatalogError::AlreadyExists(format!("Partition already exists: {name}"))),
            Err(e) => Err(e),
        }
    }

    /// The table's partition names and values, from the cache when it holds
    /// the table's current generation.
    async fn partition_keys(&self, trow: &TableRow) -> Result<Arc<CachedKeys>> {
        if let Some(k) = self.inner.partitions.get(trow.tbl_id, trow.part_gen) {
            return Ok(k);
        }
        let mut conn = self.store().reader().await?;
        let rows = objects::partition_keys(&mut conn, trow.tbl_id).await?;
        let keys = rows
            .into_iter()
            .map(|r| {
                let values = serde_json::from_str(&r.vals).map_err(|e| CatalogError::Store(crate::store::StoreError::Corrupt { what: format!("values of partition {}", r.part_name), reason: e.to_string() }))?;
                Ok(CachedKey { part_id: r.part_id, part_name: r.part_name, values })
            })
            .collect::<Result<Vec<_>>>()?;
        // Labelled with the generation read before the keys: at worst the
        // keys are newer than the label, which costs one more reload.
        let cached = Arc::new(CachedKeys { generation: trow.part_gen, keys });
        self.inner.partitions.put(trow.tbl_id, cached.clone());
        Ok(cached)
    }

    pub(super) async fn table_and_row(&self, db: &str, table: &str) -> Result<(TableRow, hms::Table)> {
        let row = self.table_row(db, table).await?;
        let t = decode_table(&row.object)?;
        Ok((row, t))
    }

    pub async fn get_partition(&self, db: &str, table: &str, values: &[String]) -> Result<hms::Partition> {
        let (trow, t) = self.table_and_row(db, table).await?;
        let name = part_name(&t, values)?;
        let mut conn = self.store().reader().await?;
        let row = objects::partition_by_name(&mut conn, trow.tbl_id, &name).await?.ok_or_else(|| CatalogError::NoSuchObject(format!("partition values={values:?}")))?;
        Ok(decode_partition(&row.object)?)
    }

    pub async fn get_partition_by_name(&self, db: &str, table: &str, name: &str) -> Result<hms::Partition> {
        let t = self.get_table(db, table).await?;
        let values = self.values_from_name(&t, name)?;
        self.get_partition(db, table, &values).await
    }

    /// The values of a partition name of table `t` (`k1=v1/k2=v2`).
    pub fn values_from_name(&self, t: &hms::Table, name: &str) -> Result<Vec<String>> {
        let keys = key_names(t);
        let k: Vec<&str> = keys.iter().map(String::as_str).collect();
        values_from_part_name(&k, name).map_err(|e| CatalogError::Invalid(e.to_string()))
    }

    /// Partitions in name order, at most `max` (all when negative).
    pub async fn list_partitions(&self, db: &str, table: &str, max: i32) -> Result<Vec<hms::Partition>> {
        let trow = self.table_row(db, table).await?;
        let mut conn = self.store().reader().await?;
        let rows = objects::partitions_of_table(&mut conn, trow.tbl_id, limit(max).map(|n| n as i64)).await?;
        rows.iter().map(|r| decode_partition(&r.object).map_err(Into::into)).collect()
    }

    pub async fn list_partition_names(&self, db: &str, table: &str, max: i32) -> Result<Vec<String>> {
        let trow = self.table_row(db, table).await?;
        let mut names: Vec<String> = self.partition_keys(&trow).await?.keys.iter().map(|k| k.part_name.clone()).collect();
        if let Some(n) = limit(max) {
            names.truncate(n);
        }
        Ok(names)
    }

    /// Partitions matching a partial specification: values given for a
    /// prefix of the keys, an empty value matching anything (Hive's
    /// get_partitions_ps).
    pub async fn partitions_ps(&self, db: &str, table: &str, partial: &[String], max: i32) -> Result<Vec<hms::Partition>> {
        let (trow, t) = self.table_and_row(db, table).await?;
        let nkeys = key_names(&t).len();
        if partial.is_empty() {
            return Err(CatalogError::Invalid("Invalid partition key & values; keys [], values []".into()));
        }
        if partial.len() > nkeys {
            return Err(CatalogError::Invalid("Incorrect number of partition values".into()));
        }
        let mut ids = Vec::new();
        for k in &self.partition_keys(&trow).await?.keys {
            if partial.iter().zip(k.values.iter()).all(|(want, have)| want.is_empty() || want == have) {
                ids.push(k.part_id);
            }
        }
        let mut conn = self.store().reader().await?;
        if let Some(n) = limit(max) {
            ids.truncate(n);
        }
        let rows = objects::partitions_by_ids(&mut conn, &ids).await?;
        rows.iter().map(|r| decode_partition(&r.object).map_err(Into::into)).collect()
    }

    pub async fn partition_names_ps(&self, db: &str, table: &str, partial: &[String], max: i32) -> Result<Vec<String>> {
        let t = self.get_table(db, table).await?;
        let keys = key_names(&t);
        let parts = self.partitions_ps(db, table, partial, max).await?;
        parts
            .iter()
            .map(|p| {
                let k: Vec<&str> = keys.iter().map(String::as_str).collect();
                let v: Vec<&str> = p.values.iter().flatten().map(String::as_str).collect();
                make_part_name(&k, &v).map_err(|e| CatalogError::Invalid(e.to_string()))
            })
            .collect()
    }

    /// Ids of partitions whose values satisfy a Hive filter.
    async fn filtered_ids(&self, trow: &TableRow, t: &hms::Table, filter_text: &str) -> Result<Vec<i64>> {
        let keys = self.partition_keys(trow).await?;
        if filter_text.is_empty() {
            return Ok(keys.keys.iter().map(|k| k.part_id).collect());
        }
        let expr = filter::parse(filter_text).map_err(|e| CatalogError::Invalid(format!("Error parsing partition filter: {e}")))?;
        let bound = expr.bind(&keys_of(t)).map_err(|e| CatalogError::Invalid(e.to_string()))?;
        let mut ids = Vec::new();
        let mut v: Vec<&str> = Vec::new();
        for k in &keys.keys {
            v.clear();
            v.extend(k.values.iter().map(String::as_str));
            if bound.matches(&v).map_err(|e| CatalogError::Invalid(e.to_string()))? {
                ids.push(k.part_id);
            }
        }
        Ok(ids)
    }

    pub async fn partitions_by_filter(&self, db: &str, table: &str, filter_text: &str, max: i32) -> Result<Vec<hms::Partition>> {
        let (trow, t) = self.table_and_row(db, table).await?;
        let mut ids = self.filtered_ids(&trow, &t, filter_text).await?;
        if let Some(n) = limit(max) {
            ids.truncate(n);
        }
        let mut conn = self.store().reader().await?;
        let rows = objects::partitions_by_ids(&mut conn, &ids).await?;
        rows.iter().map(|r| decode_partition(&r.object).map_err(Into::into)).collect()
    }

    pub async fn partition_names_by_filter(&self, db: &str, table: &str, filter_text: &str, max: i32) -> Result<Vec<String>> {
        let (trow, t) = self.table_and_row(db, table).await?;
        let ids: std::collections::HashSet<i64> = self.filtered_ids(&trow, &t, filter_text).await?.into_iter().collect();
        let mut names: Vec<String> = self.partition_keys(&trow).await?.keys.iter().filter(|k| ids.contains(&k.part_id)).map(|k| k.part_name.clone()).collect();
        if let Some(n) = limit(max) {
            names.truncate(n);
        }
        Ok(names)
    }

    pub async fn count_partitions_by_filter(&self, db: &str, table: &str, filter_text: &str) -> Result<i32> {
        let (trow, t) = self.table_and_row(db, table).await?;
        Ok(self.filtered_ids(&trow, &t, filter_text).await?.len() as i32)
    }

    /// The partitions of `names` that exist, in name order.
    pub async fn partitions_by_names(&self, db: &str, table: &str, names: &[String]) -> Result<Vec<hms::Partition>> {
        let (trow, t) = self.table_and_row(db, table).await?;
        let mut conn = self.store().reader().await?;
        let mut out = Vec::new();
        for n in names {
            // Clients send names as Hive makes them; normalise through the
            // values so that key case and escaping match the stored name.
            let Ok(values) = self.values_from_name(&t, n) else { continue };
            let name = part_name(&t, &values)?;
            if let Some(row) = objects::partition_by_name(&mut conn, trow.tbl_id, &name).await? {
                out.push((row.part_name.clone(), decode_partition(&row.object)?));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        Ok(out.into_iter().map(|(_, p)| p).collect())
    }

    /// Drops the partitions named (as value lists); missing ones fail the
    /// call unless `if_exists`. Data of partitions of managed tables is
    /// deleted when `delete_data`. Returns the dropped partitions.
    pub async fn drop_partitions(&self, actor: &Actor, db: &str, table: &str, values: Vec<Vec<String>>, delete_data: bool, if_exists: bool) -> Result<Vec<hms::Partition>> {
        let (db, table) = (normalize_identifier(db), normalize_identifier(table));
        let (trow, t) = self.table_and_row(&db, &table).await?;
        let names: Vec<String> = values.iter().map(|v| part_name(&t, v)).collect::<Result<_>>()?;
        let actor = actor.clone();
        let dropped = self
            .store()
            .transact(|c| {
                let (names, actor, db, table, values) = (names.clone(), actor.clone(), db.clone(), table.clone(), values.clone());
                let tbl_id = trow.tbl_id;
                Box::pin(async move {
                    let mut dropped = Vec::new();
                    let mut ids = Vec::new();
                    for (name, vals) in names.iter().zip(values.iter()) {
                        match objects::partition_by_name(c, tbl_id, name).await? {
                            Some(row) => {
                                let p = decode_partition(&row.object)?;
                                let mut e = AuditEntry::new(&actor.user, actor.via, "drop_partition", "partition", part_object_name(&db, &table, name));
                                e.before = Some(json(&PartitionView::new(name.clone(), &p)));
                                audit::insert(c, &e).await?;
                                ids.push(row.part_id);
                                dropped.push(p);
                            }
                            None if if_exists => {}
                            None => return Err(CatalogError::NoSuchObject(format!("Partition doesn't exist. {vals:?}"))),
                        }
                    }
                    objects::delete_partitions_by_id(c, &ids).await?;
                    if !ids.is_empty() {
                        objects::bump_partition_generation(c, tbl_id).await?;
                    }
                    Ok(dropped)
                })
            })
            .await?;
        if delete_data && super::defaults::is_managed(&t) {
            for p in &dropped {
                if let Some(loc) = p.sd.as_ref().and_then(|s| s.location.as_deref()) {
                    crate::storage::delete_partition_dir(loc, &table_location(&t).unwrap_or_default()).await?;
                }
            }
        }
        Ok(dropped)
    }

    /// Replaces existing partitions (matched by values) with the objects
    /// given, keeping their creation time. All or nothing.
    pub async fn alter_partitions(&self, actor: &Actor, db: &str, table: &str, parts: Vec<hms::Partition>) -> Result<()> {
        let (db, table) = (normalize_identifier(db), normalize_identifier(table));
        let (trow, t) = self.table_and_row(&db, &table).await.map_err(|e| match e {
            CatalogError::NoSuchObject(m) => CatalogError::InvalidOperation(m),
            e => e,
        })?;
        let now = now_secs();
        let mut prepared = Vec::new();
        for mut p in parts {
            normalize_partition(&mut p);
            p.db_name = Some(db.clone());
            p.table_name = Some(table.clone());
            let name = part_name(&t, p.values.as_ref().unwrap_or(&Vec::new())).map_err(|e| CatalogError::InvalidOperation(e.to_string()))?;
            let params = p.parameters.get_or_insert_with(Default::default);
            if params.get(super::DDL_TIME).is_none_or(|v| v == "0") {
                params.insert(super::DDL_TIME.into(), now.to_string());
            }
            prepared.push((name, p));
        }
        let actor = actor.clone();
        self.store()
            .transact(|c| {
                let (prepared, actor, db, table) = (prepared.clone(), actor.clone(), db.clone(), table.clone());
                let tbl_id = trow.tbl_id;
                Box::pin(async move {
                    for (name, mut p) in prepared {
                        let mut row = objects::partition_by_name(c, tbl_id, &name).await?.ok_or_else(|| CatalogError::InvalidOperation("alter is not possible: partition does not exist".into()))?;
                        let old = decode_partition(&row.object)?;
                        p.create_time = old.create_time;
                        row.location = p.sd.as_ref().and_then(|s| s.location.clone());
                        row.object = encode(&p);
                        objects::update_partition(c, &row).await?;
                        let mut e = AuditEntry::new(&actor.user, actor.via, "alter_partition", "partition", part_object_name(&db, &table, &name));
                        e.before = Some(json(&PartitionView::new(name.clone(), &old)));
                        e.after = Some(json(&PartitionView::new(name, &p)));
                        audit::insert(c, &e).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Gives the partition of `old_values` the values (and object) of `new`.
    pub async fn rename_partition(&self, actor: &Actor, db: &str, table: &str, old_values: &[String], mut new: hms::Partition) -> Result<()> {
        if old_values.is_empty() {
            return self.alter_partitions(actor, db, table, vec![new]).await;
        }
        let (db, table) = (normalize_identifier(db), normalize_identifier(table));
        let (trow, t) = self.table_and_row(&db, &table).await?;
        let old_name = part_name(&t, old_values)?;
        let new_name = part_name(&t, new.values.as_ref().unwrap_or(&Vec::new()))?;
        normalize_partition(&mut new);
        new.db_name = Some(db.clone());
        new.table_name = Some(table.clone());
        let actor = actor.clone();
        self.store()
            .transact(|c| {
                let (old_name, new_name, new, actor, db, table) = (old_name.clone(), new_name.clone(), new.clone(), actor.clone(), db.clone(), table.clone());
                let tbl_id = trow.tbl_id;
                Box::pin(async move {
                    let mut row = objects::partition_by_name(c, tbl_id, &old_name).await?.ok_or_else(|| CatalogError::InvalidOperation(format!("Unable to rename partition because old partition does not exist {old_name}")))?;
                    if objects::partition_by_name(c, tbl_id, &new_name).await?.is_some() {
                        return Err(CatalogError::AlreadyExists(format!("Partition already exists: {db}.{table}.{new_name}")));
                    }
                    let old = decode_partition(&row.object)?;
                    let mut p = new;
                    p.create_time = old.create_time;
                    row.part_name = new_name.clone();
                    row.vals = serde_json::to_string(p.values.as_ref().unwrap_or(&Vec::new())).unwrap_or_else(|_| "[]".into());
                    row.location = p.sd.as_ref().and_then(|s| s.location.clone());
                    row.object = encode(&p);
                    objects::update_partition(c, &row).await?;
                    objects::bump_partition_generation(c, tbl_id).await?;
                    let mut e = AuditEntry::new(&actor.user, actor.via, "rename_partition", "partition", part_object_name(&db, &table, &old_name));
                    e.before = Some(json(&PartitionView::new(old_name, &old)));
                    e.after = Some(json(&PartitionView::new(new_name, &p)));
                    audit::insert(c, &e).await?;
                    Ok(())
                })
            })
            .await
    }

    /// Partition count of a table.
    pub async fn partition_count(&self, db: &str, table: &str) -> Result<i64> {
        let trow = self.table_row(db, table).await?;
        let mut conn = self.store().reader().await?;
        Ok(objects::count_partitions(&mut conn, trow.tbl_id).await?)
    }

    /// `(name, partition)` pairs for the REST API.
    pub async fn partition_views(&self, db: &str, table: &str, filter_text: Option<&str>, max: i32) -> Result<Vec<PartitionView>> {
        let (trow, t) = self.table_and_row(db, table).await?;
        let mut ids = self.filtered_ids(&trow, &t, filter_text.unwrap_or("")).await?;
        if let Some(n) = limit(max) {
            ids.truncate(n);
        }
        let mut conn = self.store().reader().await?;
        let rows = objects::partitions_by_ids(&mut conn, &ids).await?;
        rows.iter().map(|r| Ok(PartitionView::new(r.part_name.clone(), &decode_partition(&r.object)?))).collect()
    }
}
