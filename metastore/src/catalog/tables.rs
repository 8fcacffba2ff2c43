//! Tables: create, read, list by pattern and type, alter (rename, cascade
//! column changes to partitions), drop.

use inlet_hms_thrift::hive_metastore as hms;

use super::databases::no_such_db;
use super::defaults::{is_managed, normalize_table, stamp_ddl_time, validate_name};
use super::{now_secs, Actor, Catalog, CatalogError, Result};
use crate::codec::{decode_partition, decode_table, encode};
use crate::model::{json, table_location, TableView};
use crate::names::{normalize_identifier, NamePattern};
use crate::store::audit::{self, AuditEntry};
use crate::store::objects::{self, TableRow};
use crate::store::{new_id, now_ms};

/// Which tables `list_tables` returns.
#[derive(Debug, Clone, Default)]
pub struct TableFilter {
    pub pattern: Option<String>,
    pub table_type: Option<String>,
}

pub(super) fn no_such_table(db: &str, table: &str) -> CatalogError {
    CatalogError::NoSuchObject(format!("{db}.{table} table not found"))
}

pub(super) fn table_row_of(t: &hms::Table, tbl_id: i64, db_id: i64, created_at: i64) -> TableRow {
    TableRow {
        tbl_id,
        db_id,
        name: t.table_name.clone().unwrap_or_default(),
        table_type: t.table_type.clone().unwrap_or_default(),
        provider: t.parameters.as_ref().and_then(|p| p.get("spark.sql.sources.provider").cloned()),
        location: table_location(t),
        owner: t.owner.clone(),
        created_at,
        updated_at: now_ms(),
        object: encode(t),
        part_gen: 0,
    }
}

/// `db.table` as the audit log names tables.
pub(super) fn qualified(db: &str, table: &str) -> String {
    format!("{db}.{table}")
}

impl Catalog {
    /// Creates a table the way Hive's metastore does: names lower-cased, the
    /// managed/external rule, a default location under the database for
    /// managed tables, creation and DDL times. Returns the stored table.
    pub async fn create_table(&self, actor: &Actor, mut table: hms::Table) -> Result<hms::Table> {
        normalize_table(&mut table)?;
        let db_name = table.db_name.clone().unwrap_or_default();
        let name = table.table_name.clone().unwrap_or_default();
        let db = self.get_database(&db_name).await.map_err(|e| match e {
            // Hive 2.3 answers InvalidObjectException naming the database.
            CatalogError::NoSuchObject(_) => CatalogError::InvalidObject(db_name.clone()),
            e => e,
        })?;
        let now = now_secs();
        table.create_time = Some(now);
        stamp_ddl_time(&mut table.parameters, now);
        let is_view = table.table_type.as_deref() == Some("VIRTUAL_VIEW");
        let mut made_dir = None;
        if !is_view {
            let sd = table.sd.get_or_insert_with(Default::default);
            if sd.location.as_deref().unwrap_or("").is_empty() {
                let db_loc = db.location_uri.clone().unwrap_or_else(|| format!("{}/{db_name}.db", self.warehouse()));
                let loc = format!("{}/{name}", db_loc.trim_end_matches('/'));
                sd.location = Some(loc.clone());
                made_dir = Some(loc);
            }
        }
        if let Some(loc) = &made_dir {
            crate::storage::make_dir(loc).await?;
        }
        let row = table_row_of(&table, new_id(), 0, now_ms());
        let mut entry = AuditEntry::new(&actor.user, actor.via, "create_table", "table", qualified(&db_name, &name));
        entry.after = Some(json(&TableView::from(&table)));
        self.store()
            .transact(|c| {
                let (mut row, entry, db_name, name) = (row.clone(), entry.clone(), db_name.clone(), name.clone());
                Box::pin(async move {
                    let db = objects::db_by_name(c, &db_name).await?.ok_or_else(|| CatalogError::InvalidObject(db_name.clone()))?;
                    row.db_id = db.db_id;
                    let exists = || CatalogError::AlreadyExists(format!("Table {name} already exists"));
                    if objects::table_by_name(c, db.db_id, &name).await?.is_some() {
                        return Err(exists());
                    }
                    objects::insert_table(c, &row).await.map_err(|e| if e.is_unique_violation() { exists() } else { e.into() })?;
                    audit::insert(c, &entry).await?;
                    Ok(())
                })
            })
            .await?;
        Ok(table)
    }

    /// The table row and its database id, or Hive's "table not found".
    pub(super) async fn table_row(&self, db: &str, table: &str) -> Result<TableRow> {
        let (db, table) = (normalize_identifier(db), normalize_identifier(table));
        let mut conn = self.store().reader().await?;
        objects::table_by_names(&mut conn, &db, &table).await?.ok_or_else(|| no_such_table(&db, &table))
    }

    pub async fn get_table(&self, db: &str, table: &str) -> Result<hms::Table> {
        let row = self.table_row(db, table).await?;
        Ok(decode_table(&row.object)?)
    }

    /// Table names of a database matching a Hive pattern and, optionally, a
    /// table type. A missing database lists nothing, as in Hive.
    pub async fn list_tables(&self, db: &str, pattern: Option<&str>, table_type: Option<&str>) -> Result<Vec<String>> {
        let db = normalize_identifier(db);
        let pattern = match pattern {
            Some(p) => NamePattern::parse(p).map_err(|e| CatalogError::Invalid(e.to_string()))?,
            None => NamePattern::any(),
        };
        let mut conn = self.store().reader().await?;
        let Some(dbrow) = objects::db_by_name(&mut conn, &db).await? else { return Ok(Vec::new()) };
        Ok(objects::table_names(&mut conn, dbrow.db_id)
            .await?
            .into_iter()
            .filter(|(n, t)| pattern.matches(n) && table_type.is_none_or(|want| want.eq_ignore_ascii_case(t)))
            .map(|(n, _)| n)
            .collect())
    }

    /// The tables of `names` that exist, in the order asked.
    pub async fn get_tables_by_name(&self, db: &str, names: &[String]) -> Result<Vec<hms::Table>> {
        let db = normalize_identifier(db);
        if db.is_empty() {
            return Err(CatalogError::Invalid("DB name is null or empty".into()));
        }
        let mut conn = self.store().reader().await?;
        let dbrow = objects::db_by_name(&mut conn, &db).await?.ok_or_else(|| no_such_db(&db))?;
        let mut out = Vec::new();
        for n in names {
            if let Some(row) = objects::table_by_name(&mut conn, dbrow.db_id, &normalize_identifier(n)).await? {
                out.push(decode_table(&row.object)?);
            }
        }
        Ok(out)
    }

    /// Every table of a database, decoded.
    pub async fn tables_of(&self, db: &str) -> Result<Vec<hms::Table>> {
        let db = normalize_identifier(db);
        let mut conn = self.store().reader().await?;
        let dbrow = objects::db_by_name(&mut conn, &db).await?.ok_or_else(|| no_such_db(&db))?;
        objects::tables_of_db(&mut conn, dbrow.db_id).await?.iter().map(|r| decode_table(&r.object).map_err(Into::into)).collect()
    }

    /// `get_table_meta`: tables of databases matching `db_pattern` whose
    /// names match `table_pattern` and whose type is one of `types` (any when
    /// empty).
    pub async fn table_meta(&self, db_pattern: &str, table_pattern: &str, types: &[String]) -> Result<Vec<hms::TableMeta>> {
        let mut out = Vec::new();
        for db in self.list_databases(Some(db_pattern)).await? {
            for t in self.tables_of(&db).await? {
                let name = t.table_name.clone().unwrap_or_default();
                let ttype = t.table_type.clone().unwrap_or_default();
                let pattern = NamePattern::parse(table_pattern).map_err(|e| CatalogError::Invalid(e.to_string()))?;
                if !pattern.matches(&name) || !(types.is_empty() || types.iter().any(|x| x.eq_ignore_ascii_case(&ttype))) {
                    continue;
                }
                out.push(hms::TableMeta {
                    db_name: db.clone(),
                    table_name: name,
                    table_type: ttype,
                    comments: t.parameters.as_ref().and_then(|p| p.get("comment").cloned()),
                    cat_name: None,
                    owner_name: None,
                    owner_type: None,
                });
            }
        }
        Ok(out)
    }

    /// Hive's alter_table: replaces the table with `new`, which may carry a
    /// new name or database (a rename: managed data under the default
    /// location moves with it). With `cascade`, column changes are copied to
    /// every partition.
    pub async fn alter_table(&self, actor: &Actor, db: &str, name: &str, mut new: hms::Table, cascade: bool) -> Result<()> {
        let (db, name) = (normalize_identifier(db), normalize_identifier(name));
        normalize_table(&mut new)?;
        let new_db = new.db_name.clone().unwrap_or_else(|| db.clone());
        let new_name = new.table_name.clone().unwrap_or_else(|| name.clone());
        if !validate_name(&new_name) {
            return Err(CatalogError::InvalidOperation(format!("{new_name} is not a valid object name")));
        }
        new.db_name = Some(new_db.clone());
        new.table_name = Some(new_name.clone());
        stamp_ddl_time(&mut new.parameters, now_secs());
        let old = self.get_table(&db, &name).await.map_err(|e| match e {
            CatalogError::NoSuchObject(_) => CatalogError::InvalidOperation(format!("table {db}.{name} doesn't exist")),
            e => e,
        })?;
        if old.partition_keys.as_ref().map(|k| k.iter().map(|f| (&f.name, &f.type_)).collect::<Vec<_>>())
            != new.partition_keys.as_ref().map(|k| k.iter().map(|f| (&f.name, &f.type_)).collect::<Vec<_>>())
            && !old.partition_keys.as_ref().is_none_or(|k| k.is_empty())
        {
            return Err(CatalogError::InvalidOperation("partition keys can not be changed.".into()));
        }
        let renamed = new_db != db || new_name != name;
        // A rename of a managed table whose data sits at its default place
        // moves the data, as Hive does.
        let mut moved: Option<(String, String)> = None;
        if renamed && is_managed(&old) {
            let old_loc = table_location(&old).unwrap_or_default();
            let old_db = self.get_database(&db).await?;
            let default_old = format!("{}/{name}", old_db.location_uri.clone().unwrap_or_default().trim_end_matches('/'));
            let new_db_obj = self.get_database(&new_db).await?;
            if old_loc == default_old && table_location(&new).as_deref() == Some(old_loc.as_str()) {
                let new_loc = format!("{}/{new_name}", new_db_obj.location_uri.clone().unwrap_or_default().trim_end_matches('/'));
                if let Some(sd) = new.sd.as_mut() {
                    sd.location = Some(new_loc.clone());
                }
                moved = Some((old_loc, new_loc));
            }
        }
        if let Some((from, to)) = &moved {
            if let (Some(f), Some(t)) = (crate::storage::local_path(from), crate::storage::local_path(to)) {
                if f.exists() {
                    if t.exists() {
                        return Err(CatalogError::InvalidOperation(format!("New location for this table {new_db}.{new_name} already exists : {to}")));
                    }
                    if let Some(parent) = t.parent() {
                        let _ = tokio::fs::create_dir_all(parent).await;
                    }
                    tokio::fs::rename(&f, &t).await.map_err(|e| CatalogError::Storage(format!("could not move {from} to {to}: {e}")))?;
                }
            }
        }
        let actor = actor.clone();
        let result = self
            .store()
            .transact(|c| {
                let (db, name, new_db, new_name, new, old, actor, moved) = (db.clone(), name.clone(), new_db.clone(), new_name.clone(), new.clone(), old.clone(), actor.clone(), moved.clone());
                Box::pin(async move {
                    let dbrow = objects::db_by_name(c, &db).await?.ok_or_else(|| no_such_table(&db, &name))?;
                    let row = objects::table_by_name(c, dbrow.db_id, &name).await?.ok_or_else(|| CatalogError::InvalidOperation(format!("table {db}.{name} doesn't exist")))?;
                    let target_db = if new_db == db { dbrow.db_id } else { objects::db_by_name(c, &new_db).await?.ok_or_else(|| CatalogError::InvalidOperation(format!("Unable to change partition or table. Database {new_db} does not exist")))?.db_id };
                    if renamed && objects::table_by_name(c, target_db, &new_name).await?.is_some() {
                        return Err(CatalogError::InvalidOperation(format!("new table {new_db}.{new_name} already exists")));
                    }
                    let mut newrow = table_row_of(&new, row.tbl_id, target_db, row.created_at);
                    newrow.created_at = row.created_at;
                    objects::update_table(c, &newrow).await?;
                    let cols_changed = old.sd.as_ref().map(|s| &s.cols) != new.sd.as_ref().map(|s| &s.cols);
                    if renamed || (cascade && cols_changed) || moved.is_some() {
                        for mut prow in objects::partitions_of_table(c, row.tbl_id, None).await? {
                            let mut p = decode_partition(&prow.object)?;
                            p.db_name = Some(new_db.clone());
                            p.table_name = Some(new_name.clone());
                            if let (Some(sd), Some(newsd)) = (p.sd.as_mut(), new.sd.as_ref()) {
                                if cascade && cols_changed {
                                    sd.cols = newsd.cols.clone();
                                }
                                if let (Some((from, to)), Some(loc)) = (&moved, sd.location.as_mut()) {
                                    if let Some(rest) = loc.strip_prefix(from.as_str()) {
                                        *loc = format!("{to}{rest}");
                                    }
                                }
                            }
                            prow.location = p.sd.as_ref().and_then(|s| s.location.clone());
                            prow.object = encode(&p);
                            objects::update_partition(c, &prow).await?;
                        }
                    }
                    let mut e = AuditEntry::new(&actor.user, actor.via, if renamed { "rename_table" } else { "alter_table" }, "table", qualified(&db, &name));
                    e.before = Some(json(&TableView::from(&old)));
                    e.after = Some(json(&TableView::from(&new)));
                    audit::insert(c, &e).await?;
                    Ok(())
                })
            })
            .await;
        if result.is_err() {
            // Put moved data back so the catalog and the storage agree.
            if let Some((from, to)) = &moved {
                if let (Some(f), Some(t)) = (crate::storage::local_path(from), crate::storage::local_path(to)) {
                    let _ = tokio::fs::rename(&t, &f).await;
                }
            }
        }
        result
    }

    /// Drops a table, its partitions and statistics; a managed table's data
    /// too when `delete_data`.
    pub async fn drop_table(&self, actor: &Actor, db: &str, name: &str, delete_data: bool) -> Result<()> {
        let (db, name) = (normalize_identifier(db), normalize_identifier(name));
        let actor = actor.clone();
        let table = self
            .store()
            .transact(|c| {
                let (db, name, actor) = (db.clone(), name.clone(), actor.clone());
                Box::pin(async move {
                    let dbrow = objects::db_by_name(c, &db).await?.ok_or_else(|| no_such_table(&db, &name))?;
                    let row = objects::table_by_name(c, dbrow.db_id, &name).await?.ok_or_else(|| no_such_table(&db, &name))?;
                    let table = decode_table(&row.object)?;
                    objects::delete_table(c, row.tbl_id).await?;
                    let mut e = AuditEntry::new(&actor.user, actor.via, "drop_table", "table", qualified(&db, &name));
                    e.before = Some(json(&TableView::from(&table)));
                    audit::insert(c, &e).await?;
                    Ok::<_, CatalogError>(table)
                })
            })
            .await?;
        self.purge_orphans().await?;
        if delete_data && is_managed(&table) {
            if let Some(loc) = table_location(&table) {
                crate::storage::delete_dir(&loc).await?;
            }
        }
        Ok(())
    }

    /// Sets Hive's basic statistics (`numFiles`, `totalSize`, `numRows`) of
    /// every table registered at `location` (a compaction's result). Returns
    /// how many tables were updated.
    pub async fn set_basic_stats_at(&self, actor: &Actor, location: &str, files: u64, bytes: u64, rows: Option<u64>) -> Result<usize> {
        let trimmed = location.trim_end_matches('/').to_string();
        let mut forms = vec![trimmed.clone()];
        if trimmed.starts_with('/') {
            forms.push(format!("file:{trimmed}"));
            forms.push(format!("file://{trimmed}"));
        }
        let actor = actor.clone();
        self.store()
            .transact(|c| {
                let (forms, actor) = (forms.clone(), actor.clone());
                Box::pin(async move {
                    let rows_at = objects::tables_at(c, &forms).await?;
                    let mut n = 0;
                    for mut row in rows_at {
                        let mut t = decode_table(&row.object)?;
                        let params = t.parameters.get_or_insert_with(Default::default);
                        params.insert("numFiles".into(), files.to_string());
                        params.insert("totalSize".into(), bytes.to_string());
                        match rows {
                            Some(r) => params.insert("numRows".into(), r.to_string()),
                            None => params.remove("numRows"),
                        };
                        row.object = encode(&t);
                        row.updated_at = now_ms();
                        objects::update_table(c, &row).await?;
                        let dbname = t.db_name.clone().unwrap_or_default();
                        let mut e = AuditEntry::new(&actor.user, actor.via, "update_table_stats", "table", qualified(&dbname, &row.name));
                        e.after = Some(serde_json::json!({ "numFiles": files, "totalSize": bytes, "numRows": rows }));
                        audit::insert(c, &e).await?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .await
    }
}
