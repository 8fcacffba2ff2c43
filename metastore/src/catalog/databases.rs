//! Databases: create, read, list by pattern, alter, drop (with cascade).

use inlet_hms_thrift::hive_metastore as hms;

use super::defaults::{normalize_database, validate_name, DEFAULT_DATABASE};
use super::{Actor, Catalog, CatalogError, Result};
use crate::codec::{decode_database, encode};
use crate::model::{json, DatabaseView};
use crate::names::{normalize_identifier, NamePattern};
use crate::store::audit::{self, AuditEntry};
use crate::store::objects::{self, DbRow};
use crate::store::{new_id, now_ms};

pub(super) fn no_such_db(name: &str) -> CatalogError {
    CatalogError::NoSuchObject(format!("There is no database named {name}"))
}

impl Catalog {
    pub async fn create_database(&self, actor: &Actor, mut db: hms::Database) -> Result<()> {
        normalize_database(&mut db);
        let name = db.name.clone().unwrap_or_default();
        if !validate_name(&name) {
            return Err(CatalogError::InvalidObject(format!("{name} is not a valid database name")));
        }
        if db.location_uri.as_deref().unwrap_or("").is_empty() {
            let loc = if name == DEFAULT_DATABASE { self.warehouse().to_string() } else { format!("{}/{name}.db", self.warehouse()) };
            db.location_uri = Some(loc);
        }
        let row = DbRow { db_id: new_id(), name: name.clone(), location: db.location_uri.clone(), owner: db.owner_name.clone(), created_at: now_ms(), object: encode(&db) };
        let entry = {
            let mut e = AuditEntry::new(&actor.user, actor.via, "create_database", "database", name.clone());
            e.after = Some(json(&DatabaseView::from(&db)));
            e
        };
        self.store()
            .transact(|c| {
                let (row, entry, name) = (row.clone(), entry.clone(), name.clone());
                Box::pin(async move {
                    if objects::db_by_name(c, &name).await?.is_some() {
                        return Err(CatalogError::AlreadyExists(format!("Database {name} already exists")));
                    }
                    objects::insert_db(c, &row).await.map_err(|e| if e.is_unique_violation() { CatalogError::AlreadyExists(format!("Database {name} already exists")) } else { e.into() })?;
                    audit::insert(c, &entry).await?;
                    Ok(())
                })
            })
            .await
    }

    pub async fn get_database(&self, name: &str) -> Result<hms::Database> {
        let name = normalize_identifier(name);
        let mut conn = self.store().reader().await?;
        let row = objects::db_by_name(&mut conn, &name).await?.ok_or_else(|| no_such_db(&name))?;
        Ok(decode_database(&row.object)?)
    }

    /// Database names matching a Hive pattern (`*`, `|`), all when None.
    pub async fn list_databases(&self, pattern: Option<&str>) -> Result<Vec<String>> {
        let pattern = match pattern {
            Some(p) => NamePattern::parse(p).map_err(|e| CatalogError::Invalid(e.to_string()))?,
            None => NamePattern::any(),
        };
        let mut conn = self.store().reader().await?;
        Ok(objects::db_names(&mut conn).await?.into_iter().filter(|n| pattern.matches(n)).collect())
    }

    pub async fn all_databases(&self) -> Result<Vec<hms::Database>> {
        let mut conn = self.store().reader().await?;
        objects::all_dbs(&mut conn).await?.iter().map(|r| decode_database(&r.object).map_err(Into::into)).collect()
    }

    /// Hive's alter_database: the name cannot change; owner, location,
    /// description and parameters can.
    pub async fn alter_database(&self, actor: &Actor, name: &str, mut db: hms::Database) -> Result<()> {
        let name = normalize_identifier(name);
        normalize_database(&mut db);
        let actor = actor.clone();
        self.store()
            .transact(|c| {
                let (name, db, actor) = (name.clone(), db.clone(), actor.clone());
                Box::pin(async move {
                    let mut row = objects::db_by_name(c, &name).await?.ok_or_else(|| no_such_db(&name))?;
                    let old = decode_database(&row.object)?;
                    let mut new = old.clone();
                    new.parameters = db.parameters.clone().or(old.parameters.clone());
                    if db.location_uri.as_deref().is_some_and(|l| !l.is_empty()) {
                        new.location_uri = db.location_uri.clone();
                    }
                    if db.owner_name.is_some() {
                        new.owner_name = db.owner_name.clone();
                        new.owner_type = db.owner_type;
                    }
                    if db.description.is_some() {
                        new.description = db.description.clone();
                    }
                    row.location = new.location_uri.clone();
                    row.owner = new.owner_name.clone();
                    row.object = encode(&new);
                    objects::update_db(c, &row).await?;
                    let mut e = AuditEntry::new(&actor.user, actor.via, "alter_database", "database", name.clone());
                    e.before = Some(json(&DatabaseView::from(&old)));
                    e.after = Some(json(&DatabaseView::from(&new)));
                    audit::insert(c, &e).await?;
                    Ok(())
                })
            })
            .await
    }

    /// Drops a database. Without `cascade` it must hold no tables or
    /// functions; with it, its tables go too (their data when managed and
    /// `delete_data`).
    pub async fn drop_database(&self, actor: &Actor, name: &str, delete_data: bool, cascade: bool) -> Result<()> {
        let name = normalize_identifier(name);
        if name == DEFAULT_DATABASE {
            return Err(CatalogError::Invalid("Can not drop default database".into()));
        }
        let db = self.get_database(&name).await?;
        if cascade {
            for t in self.list_tables(&name, None, None).await? {
                match self.drop_table(actor, &name, &t, delete_data).await {
                    Ok(()) | Err(CatalogError::NoSuchObject(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let actor = actor.clone();
        let n = name.clone();
        self.store()
            .transact(|c| {
                let (name, actor) = (n.clone(), actor.clone());
                Box::pin(async move {
                    let row = objects::db_by_name(c, &name).await?.ok_or_else(|| no_such_db(&name))?;
                    let tables = objects::count_tables(c, row.db_id).await?;
                    let funcs = objects::functions(c, Some(row.db_id)).await?.len();
                    if tables > 0 || (funcs > 0 && !cascade) {
                        return Err(CatalogError::InvalidOperation(format!(
                            "Database {name} is not empty. One or more {} exist.",
                            if tables > 0 { "tables" } else { "functions" }
                        )));
                    }
                    objects::delete_db(c, row.db_id).await?;
                    let mut e = AuditEntry::new(&actor.user, actor.via, "drop_database", "database", name.clone());
                    e.before = Some(json(&DatabaseView::from(&decode_database(&row.object)?)));
                    audit::insert(c, &e).await?;
                    Ok(())
                })
            })
            .await?;
        if delete_data {
            if let Some(loc) = db.location_uri.as_deref() {
                if name != DEFAULT_DATABASE && loc != self.warehouse() {
                    crate::storage::delete_dir(loc).await?;
                }
            }
        }
        Ok(())
    }
}
