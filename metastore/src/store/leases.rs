//! Leases: named, expiring ownership records that let several processes
//! (compactors, registrars) share work without doing it twice. A lease only
//! saves wasted work; correctness is always fenced elsewhere (the Delta log).

use sqlx::AnyConnection;

use super::StoreError;

/// Takes `name` for `owner` until `now_ms + ttl_ms`, when it is free, expired
/// or already `owner`'s (a renewal). Returns whether `owner` holds it now.
pub async fn try_acquire(conn: &mut AnyConnection, name: &str, owner: &str, ttl_ms: i64, now_ms: i64) -> Result<bool, StoreError> {
    let expires = now_ms + ttl_ms;
    let updated = sqlx::query("UPDATE leases SET owner = ?, version = version + 1, expires_at_ms = ? WHERE name = ? AND (expires_at_ms < ? OR owner = ?)")
        .bind(owner)
        .bind(expires)
        .bind(name)
        .bind(now_ms)
        .bind(owner)
        .execute(&mut *conn)
        .await?;
    if updated.rows_affected() > 0 {
        return Ok(true);
    }
    match sqlx::query("INSERT INTO leases (name, owner, version, expires_at_ms) VALUES (?, ?, 1, ?)").bind(name).bind(owner).bind(expires).execute(conn).await {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Extends a lease `owner` still holds (not expired). Returns whether it did.
pub async fn renew(conn: &mut AnyConnection, name: &str, owner: &str, ttl_ms: i64, now_ms: i64) -> Result<bool, StoreError> {
    Ok(sqlx::query("UPDATE leases SET expires_at_ms = ?, version = version + 1 WHERE name = ? AND owner = ? AND expires_at_ms >= ?")
        .bind(now_ms + ttl_ms)
        .bind(name)
        .bind(owner)
        .bind(now_ms)
        .execute(conn)
        .await?
        .rows_affected()
        > 0)
}

/// Gives a lease up (only when `owner` holds it).
pub async fn release(conn: &mut AnyConnection, name: &str, owner: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("UPDATE leases SET expires_at_ms = 0, version = version + 1 WHERE name = ? AND owner = ?").bind(name).bind(owner).execute(conn).await?.rows_affected() > 0)
}

/// The current holder and expiry of a lease, if it was ever taken.
pub async fn holder(conn: &mut AnyConnection, name: &str) -> Result<Option<(String, i64)>, StoreError> {
    Ok(sqlx::query_as::<_, (String, i64)>("SELECT owner, expires_at_ms FROM leases WHERE name = ?").bind(name).fetch_optional(conn).await?)
}
