//! Permanent functions (CREATE FUNCTION ... USING JAR): stored and listed so
//! that Hive and Spark sessions find them; the metastore never runs them.

use inlet_hms_thrift::hive_metastore as hms;

use super::databases::no_such_db;
use super::{now_secs, Actor, Catalog, CatalogError, Result};
use crate::codec::{decode, encode};
use crate::model::{json, FunctionView};
use crate::names::{normalize_identifier, NamePattern};
use crate::store::audit::{self, AuditEntry};
use crate::store::objects::{self, FunctionRow};
use crate::store::{new_id, now_ms};

fn no_such_function(db: &str, name: &str) -> CatalogError {
    // Spark matches "does not exist" in this message.
    CatalogError::NoSuchObject(format!("Function {db}.{name} does not exist"))
}

impl Catalog {
    pub async fn create_function(&self, actor: &Actor, mut f: hms::Function) -> Result<()> {
        let db = normalize_identifier(f.db_name.as_deref().unwrap_or_default());
        let name = normalize_identifier(f.function_name.as_deref().unwrap_or_default());
        if name.is_empty() {
            return Err(CatalogError::InvalidObject("Function name is required".into()));
        }
        f.db_name = Some(db.clone());
        f.function_name = Some(name.clone());
        f.create_time.get_or_insert(now_secs());
        let actor = actor.clone();
        self.store()
            .transact(|c| {
                let (f, db, name, actor) = (f.clone(), db.clone(), name.clone(), actor.clone());
                Box::pin(async move {
                    let dbrow = objects::db_by_name(c, &db).await?.ok_or_else(|| no_such_db(&db))?;
                    if objects::function_by_name(c, dbrow.db_id, &name).await?.is_some() {
                        return Err(CatalogError::AlreadyExists(format!("Function {name} already exists")));
                    }
                    objects::insert_function(c, &FunctionRow { func_id: new_id(), db_id: dbrow.db_id, name: name.clone(), created_at: now_ms(), object: encode(&f) }).await?;
                    let mut e = AuditEntry::new(&actor.user, actor.via, "create_function", "function", format!("{db}.{name}"));
                    e.after = Some(json(&FunctionView::from(&f)));
                    audit::insert(c, &e).await?;
                    Ok(())
                })
            })
            .await
    }

    pub async fn get_function(&self, db: &str, name: &str) -> Result<hms::Function> {
        let (db, name) = (normalize_identifier(db), normalize_identifier(name));
        let mut conn = self.store().reader().await?;
        let dbrow = objects::db_by_name(&mut conn, &db).await?.ok_or_else(|| no_such_function(&db, &name))?;
        let row = objects::function_by_name(&mut conn, dbrow.db_id, &name).await?.ok_or_else(|| no_such_function(&db, &name))?;
        Ok(decode("function", &row.object)?)
    }

    pub async fn list_functions(&self, db: &str, pattern: Option<&str>) -> Result<Vec<String>> {
        let db = normalize_identifier(db);
        let pattern = match pattern {
            Some(p) => NamePattern::parse(p).map_err(|e| CatalogError::Invalid(e.to_string()))?,
            None => NamePattern::any(),
        };
        let mut conn = self.store().reader().await?;
        let Some(dbrow) = objects::db_by_name(&mut conn, &db).await? else { return Ok(Vec::new()) };
        Ok(objects::functions(&mut conn, Some(dbrow.db_id)).await?.into_iter().map(|r| r.name).filter(|n| pattern.matches(n)).collect())
    }

    pub async fn all_functions(&self) -> Result<Vec<hms::Function>> {
        let mut conn = self.store().reader().await?;
        objects::functions(&mut conn, None).await?.iter().map(|r| decode("function", &r.object).map_err(Into::into)).collect()
    }

    pub async fn drop_function(&self, actor: &Actor, db: &str, name: &str) -> Result<()> {
        let (db, name) = (normalize_identifier(db), normalize_identifier(name));
        let actor = actor.clone();
        self.store()
            .transact(|c| {
                let (db, name, actor) = (db.clone(), name.clone(), actor.clone());
                Box::pin(async move {
                    let dbrow = objects::db_by_name(c, &db).await?.ok_or_else(|| no_such_function(&db, &name))?;
                    let row = objects::function_by_name(c, dbrow.db_id, &name).await?.ok_or_else(|| no_such_function(&db, &name))?;
                    objects::delete_function(c, row.func_id).await?;
                    let mut e = AuditEntry::new(&actor.user, actor.via, "drop_function", "function", format!("{db}.{name}"));
                    e.before = Some(json(&FunctionView::from(&decode::<hms::Function>("function", &row.object)?)));
                    audit::insert(c, &e).await?;
                    Ok(())
                })
            })
            .await
    }

    pub async fn alter_function(&self, actor: &Actor, db: &str, name: &str, mut f: hms::Function) -> Result<()> {
        let (db, name) = (normalize_identifier(db), normalize_identifier(name));
        let actor = actor.clone();
        f.db_name = Some(db.clone());
        f.function_name = Some(normalize_identifier(f.function_name.as_deref().unwrap_or(&name)));
        self.store()
            .transact(|c| {
                let (db, name, actor, f) = (db.clone(), name.clone(), actor.clone(), f.clone());
                Box::pin(async move {
                    let dbrow = objects::db_by_name(c, &db).await?.ok_or_else(|| no_such_function(&db, &name))?;
                    let mut row = objects::function_by_name(c, dbrow.db_id, &name).await?.ok_or_else(|| no_such_function(&db, &name))?;
                    let old: hms::Function = decode("function", &row.object)?;
                    row.name = f.function_name.clone().unwrap_or_default();
                    row.object = encode(&f);
                    objects::update_function(c, &row).await?;
                    let mut e = AuditEntry::new(&actor.user, actor.via, "alter_function", "function", format!("{db}.{name}"));
                    e.before = Some(json(&FunctionView::from(&old)));
                    e.after = Some(json(&FunctionView::from(&f)));
                    audit::insert(c, &e).await?;
                    Ok(())
                })
            })
            .await
    }
}
