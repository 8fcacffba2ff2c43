//! The audit log: one row per catalog mutation, written in the mutation's own
//! transaction so that the log and the catalog can never disagree.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::{new_id, StoreError};

/// One audited mutation.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Who: the `set_ugi` user of a Thrift connection, the identity of a REST
    /// token, or the pipeline that registered a table.
    pub actor: String,
    /// Which API: `thrift`, `rest` or `ingest`.
    pub via: String,
    /// What: the operation, e.g. `create_table`, `add_partitions`.
    pub action: String,
    /// `database`, `table`, `partition`, `function`, `statistics`.
    pub object_type: String,
    /// `db`, `db.table` or `db.table/part=name`.
    pub object_name: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl AuditEntry {
    pub fn new(actor: &str, via: &str, action: &str, object_type: &str, object_name: String) -> AuditEntry {
        AuditEntry {
            id: new_id(),
            at_ms: super::now_ms(),
            actor: actor.to_string(),
            via: via.to_string(),
            action: action.to_string(),
            object_type: object_type.to_string(),
            object_name,
            before: None,
            after: None,
        }
    }
}

pub async fn insert(conn: &mut AnyConnection, e: &AuditEntry) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_log (audit_id, at_ms, actor, via, action, object_type, object_name, before_json, after_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(e.id)
        .bind(e.at_ms)
        .bind(&e.actor)
        .bind(&e.via)
        .bind(&e.action)
        .bind(&e.object_type)
        .bind(&e.object_name)
        .bind(e.before.as_ref().map(|v| v.to_string()))
        .bind(e.after.as_ref().map(|v| v.to_string()))
        .execute(conn)
        .await?;
    Ok(())
}

/// What to select from the log.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Entries whose object name equals this or starts with it followed by
    /// `.` or `/` (a database selects its tables and partitions too).
    pub object: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: i64,
}

/// Newest first.
pub async fn query(conn: &mut AnyConnection, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
    let mut sql = String::from("SELECT audit_id, at_ms, actor, via, action, object_type, object_name, before_json, after_json FROM audit_log WHERE 1 = 1");
    let mut text: Vec<String> = Vec::new();
    if let Some(o) = &q.object {
        sql.push_str(" AND (object_name = ? OR object_name LIKE ? ESCAPE '!' OR object_name LIKE ? ESCAPE '!')");
        let esc = o.replace('!', "!!").replace('%', "!%").replace('_', "!_");
        text.push(o.clone());
        text.push(format!("{esc}.%"));
        text.push(format!("{esc}/%"));
    }
    if let Some(a) = &q.actor {
        sql.push_str(" AND actor = ?");
        text.push(a.clone());
    }
    if let Some(a) = &q.action {
        sql.push_str(" AND action = ?");
        text.push(a.clone());
    }
    if q.since_ms.is_some() {
        sql.push_str(" AND at_ms >= ?");
    }
    if q.until_ms.is_some() {
        sql.push_str(" AND at_ms < ?");
    }
    sql.push_str(&format!(" ORDER BY at_ms DESC, audit_id DESC LIMIT {}", q.limit.clamp(1, 10_000)));
    let mut query = sqlx::query(&sql);
    for t in text {
        query = query.bind(t);
    }
    if let Some(s) = q.since_ms {
        query = query.bind(s);
    }
    if let Some(u) = q.until_ms {
        query = query.bind(u);
    }
    let rows = query.fetch_all(conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        out.push(AuditEntry {
            id: r.try_get("audit_id")?,
            at_ms: r.try_get("at_ms")?,
            actor: r.try_get("actor")?,
            via: r.try_get("via")?,
            action: r.try_get("action")?,
            object_type: r.try_get("object_type")?,
            object_name: r.try_get("object_name")?,
            before: parse(super::text_opt(&r, "before_json")?),
            after: parse(super::text_opt(&r, "after_json")?),
        });
    }
    Ok(out)
}
