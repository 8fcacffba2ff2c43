//! Run records: one row per unit of scheduled work (a compaction run, a
//! registration catch-up), with its outcome and figures as JSON.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::StoreError;

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub run_id: String,
    /// `compaction`, `vacuum`, ...
    pub kind: String,
    /// The table (`db.table` or a location) the run worked on.
    pub object_name: String,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    /// `running`, `succeeded`, `failed`, `skipped`, ...
    pub outcome: String,
    pub detail: serde_json::Value,
}

/// Inserts a run or replaces the record of the same id (start, then finish).
pub async fn put(conn: &mut AnyConnection, r: &RunRecord) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM runs WHERE run_id = ?").bind(&r.run_id).execute(&mut *conn).await?;
    sqlx::query("INSERT INTO runs (run_id, kind, object_name, started_ms, finished_ms, outcome, detail_json) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind(&r.run_id)
        .bind(&r.kind)
        .bind(&r.object_name)
        .bind(r.started_ms)
        .bind(r.finished_ms)
        .bind(&r.outcome)
        .bind(r.detail.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Newest first.
pub async fn list(conn: &mut AnyConnection, kind: Option<&str>, object_name: Option<&str>, limit: i64) -> Result<Vec<RunRecord>, StoreError> {
    let mut sql = String::from("SELECT run_id, kind, object_name, started_ms, finished_ms, outcome, detail_json FROM runs WHERE 1 = 1");
    if kind.is_some() {
        sql.push_str(" AND kind = ?");
    }
    if object_name.is_some() {
        sql.push_str(" AND object_name = ?");
    }
    sql.push_str(&format!(" ORDER BY started_ms DESC LIMIT {}", limit.clamp(1, 10_000)));
    let mut q = sqlx::query(&sql);
    if let Some(k) = kind {
        q = q.bind(k);
    }
    if let Some(o) = object_name {
        q = q.bind(o);
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            let detail = super::text(r, "detail_json")?;
            Ok(RunRecord {
                run_id: r.try_get("run_id")?,
                kind: r.try_get("kind")?,
                object_name: r.try_get("object_name")?,
                started_ms: r.try_get("started_ms")?,
                finished_ms: r.try_get("finished_ms")?,
                outcome: r.try_get("outcome")?,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
