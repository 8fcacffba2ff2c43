//! Job rows: a job's operator intent (`jobs`), the state each process
//! running it reports (`job_instances`) and the history of its transitions
//! (`job_transitions`). The rules of which transition is legal live in
//! [`crate::jobs`]; these statements only read and write rows.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use super::{new_id, text, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub job_id: String,
    pub kind: String,
    pub name: String,
    /// `run` or `pause`: what operators asked for.
    pub desired: String,
    pub desired_reason: String,
    pub desired_by: String,
    pub desired_ms: i64,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct InstanceRow {
    pub instance: String,
    pub state: String,
    pub reason: String,
    pub since_ms: i64,
    pub heartbeat_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransitionRow {
    pub instance: String,
    pub from: String,
    pub to: String,
    pub reason: String,
    pub at_ms: i64,
}

/// Creates the job when it does not exist yet (desired `run`).
pub async fn ensure(conn: &mut AnyConnection, job_id: &str, kind: &str, name: &str, now_ms: i64) -> Result<(), StoreError> {
    if get(conn, job_id).await?.is_some() {
        return Ok(());
    }
    let inserted = sqlx::query("INSERT INTO jobs (job_id, kind, name, desired, desired_reason, desired_by, desired_ms, created_ms) VALUES (?, ?, ?, 'run', 'created', 'inlet', ?, ?)")
        .bind(job_id)
        .bind(kind)
        .bind(name)
        .bind(now_ms)
        .bind(now_ms)
        .execute(conn)
        .await;
    match inserted {
        Ok(_) => Ok(()),
        // Another instance of the same job created it first.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn job_row(r: &sqlx::any::AnyRow) -> Result<JobRow, sqlx::Error> {
    Ok(JobRow {
        job_id: r.try_get("job_id")?,
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        desired: r.try_get("desired")?,
        desired_reason: text(r, "desired_reason")?,
        desired_by: r.try_get("desired_by")?,
        desired_ms: r.try_get("desired_ms")?,
        created_ms: r.try_get("created_ms")?,
    })
}

const JOB_COLUMNS: &str = "job_id, kind, name, desired, desired_reason, desired_by, desired_ms, created_ms";

pub async fn get(conn: &mut AnyConnection, job_id: &str) -> Result<Option<JobRow>, StoreError> {
    let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?")).bind(job_id).fetch_optional(conn).await?;
    Ok(row.as_ref().map(job_row).transpose()?)
}

/// Every job, ordered by id.
pub async fn list(conn: &mut AnyConnection) -> Result<Vec<JobRow>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY job_id")).fetch_all(conn).await?;
    Ok(rows.iter().map(job_row).collect::<Result<_, _>>()?)
}

/// The operator's intent; the job must exist.
pub async fn set_desired(conn: &mut AnyConnection, job_id: &str, desired: &str, reason: &str, by: &str, now_ms: i64) -> Result<bool, StoreError> {
    Ok(sqlx::query("UPDATE jobs SET desired = ?, desired_reason = ?, desired_by = ?, desired_ms = ? WHERE job_id = ?")
        .bind(desired)
        .bind(reason)
        .bind(by)
        .bind(now_ms)
        .bind(job_id)
        .execute(conn)
        .await?
        .rows_affected()
        > 0)
}

/// Every instance of one job, newest state first.
pub async fn instances(conn: &mut AnyConnection, job_id: &str) -> Result<Vec<InstanceRow>, StoreError> {
    let rows = sqlx::query("SELECT instance, state, reason, since_ms, heartbeat_ms FROM job_instances WHERE job_id = ? ORDER BY since_ms DESC").bind(job_id).fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            Ok(InstanceRow {
                instance: r.try_get("instance")?,
                state: r.try_get("state")?,
                reason: text(r, "reason")?,
                since_ms: r.try_get("since_ms")?,
                heartbeat_ms: r.try_get("heartbeat_ms")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub async fn instance(conn: &mut AnyConnection, job_id: &str, instance: &str) -> Result<Option<InstanceRow>, StoreError> {
    Ok(instances(conn, job_id).await?.into_iter().find(|i| i.instance == instance))
}

/// Records a transition of one instance: its row and a history entry.
pub async fn transition(conn: &mut AnyConnection, job_id: &str, instance: &str, from: &str, to: &str, reason: &str, at_ms: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM job_instances WHERE job_id = ? AND instance = ?").bind(job_id).bind(instance).execute(&mut *conn).await?;
    sqlx::query("INSERT INTO job_instances (job_id, instance, state, reason, since_ms, heartbeat_ms) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(job_id)
        .bind(instance)
        .bind(to)
        .bind(reason)
        .bind(at_ms)
        .bind(at_ms)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO job_transitions (id, job_id, instance, from_state, to_state, reason, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind(new_id())
        .bind(job_id)
        .bind(instance)
        .bind(from)
        .bind(to)
        .bind(reason)
        .bind(at_ms)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks the instances of the given jobs alive.
pub async fn heartbeat(conn: &mut AnyConnection, job_ids: &[String], instance: &str, now_ms: i64) -> Result<(), StoreError> {
    for job_id in job_ids {
        sqlx::query("UPDATE job_instances SET heartbeat_ms = ? WHERE job_id = ? AND instance = ?").bind(now_ms).bind(job_id).bind(instance).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Removes instances silent since before `older_than_ms` (their history
/// stays).
pub async fn forget_instances(conn: &mut AnyConnection, job_id: &str, older_than_ms: i64) -> Result<u64, StoreError> {
    Ok(sqlx::query("DELETE FROM job_instances WHERE job_id = ? AND heartbeat_ms < ?").bind(job_id).bind(older_than_ms).execute(conn).await?.rows_affected())
}

/// The newest `limit` transitions of a job, newest first.
pub async fn history(conn: &mut AnyConnection, job_id: &str, limit: i64) -> Result<Vec<TransitionRow>, StoreError> {
    let sql = format!("SELECT instance, from_state, to_state, reason, at_ms FROM job_transitions WHERE job_id = ? ORDER BY at_ms DESC, id DESC LIMIT {}", limit.clamp(1, 10_000));
    let rows = sqlx::query(&sql).bind(job_id).fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            Ok(TransitionRow {
                instance: r.try_get("instance")?,
                from: r.try_get("from_state")?,
                to: r.try_get("to_state")?,
                reason: text(r, "reason")?,
                at_ms: r.try_get("at_ms")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
