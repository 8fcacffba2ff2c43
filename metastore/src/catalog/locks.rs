//! Hive's lock API (`lock`, `check_lock`, `unlock`, `heartbeat`,
//! `show_locks`), enough for clients that serialise commits through it,
//! such as pyiceberg: exclusive locks exclude everything on the same
//! object, shared locks only exclusive ones; waiters are served in request
//! order; a holder that stops heart-beating loses its locks after
//! [`LOCK_TIMEOUT_MS`] (Hive's `hive.txn.timeout`).

use inlet_hms_thrift::hive_metastore as hms;

use super::{Catalog, CatalogError, Result};
use crate::names::normalize_identifier;
use crate::store::objects::{self, LockRow};
use crate::store::{new_id, now_ms};

pub const LOCK_TIMEOUT_MS: i64 = 300_000;

fn type_name(t: hms::LockType) -> &'static str {
    match t {
        hms::LockType::SHARED_READ => "SHARED_READ",
        hms::LockType::SHARED_WRITE => "SHARED_WRITE",
        hms::LockType::EXCL_WRITE => "EXCL_WRITE",
        _ => "EXCLUSIVE",
    }
}

fn type_of(name: &str) -> hms::LockType {
    match name {
        "SHARED_READ" => hms::LockType::SHARED_READ,
        "SHARED_WRITE" => hms::LockType::SHARED_WRITE,
        "EXCL_WRITE" => hms::LockType::EXCL_WRITE,
        _ => hms::LockType::EXCLUSIVE,
    }
}

fn overlaps(a: &LockRow, b: &LockRow) -> bool {
    let same = |x: &Option<String>, y: &Option<String>| x.is_none() || y.is_none() || x == y;
    a.db_name == b.db_name && same(&a.tbl_name, &b.tbl_name) && same(&a.part_name, &b.part_name)
}

fn conflicts(a: &str, b: &str) -> bool {
    match (a, b) {
        ("EXCLUSIVE", _) | (_, "EXCLUSIVE") => true,
        ("EXCL_WRITE", "SHARED_READ") | ("SHARED_READ", "EXCL_WRITE") => false,
        ("EXCL_WRITE", _) | (_, "EXCL_WRITE") => true,
        _ => false,
    }
}

/// Whether every component of `mine` can be granted, given all lock rows.
fn grantable(mine: &[LockRow], all: &[LockRow]) -> bool {
    mine.iter().all(|m| {
        !all.iter().any(|o| o.lock_id != m.lock_id && (o.state == "ACQUIRED" || o.lock_id < m.lock_id) && overlaps(m, o) && conflicts(&m.lock_type, &o.lock_type))
    })
}

impl Catalog {
    pub async fn lock(&self, req: hms::LockRequest) -> Result<hms::LockResponse> {
        if req.component.is_empty() {
            return Err(CatalogError::Invalid("lock request has no components".into()));
        }
        let lock_id = new_id() & 0x0000_ffff_ffff_ffff;
        let now = now_ms();
        let rows: Vec<LockRow> = req
            .component
            .iter()
            .map(|c| LockRow {
                lock_id,
                db_name: normalize_identifier(&c.dbname),
                tbl_name: c.tablename.as_deref().map(normalize_identifier),
                part_name: c.partitionname.clone(),
                lock_type: type_name(c.type_).into(),
                state: "WAITING".into(),
                txn_id: req.txnid.unwrap_or(0),
                user_name: req.user.clone(),
                host_name: req.hostname.clone(),
                acquired_at: None,
                heartbeat_at: now,
            })
            .collect();
        let state = self
            .store()
            .transact(|c| {
                let rows = rows.clone();
                Box::pin(async move {
                    objects::expire_locks(c, now - LOCK_TIMEOUT_MS).await?;
                    for r in &rows {
                        objects::insert_lock(c, r).await?;
                    }
                    let all = objects::locks_on(c, &rows[0].db_name).await?;
                    if grantable(&rows, &all) {
                        objects::set_lock_state(c, lock_id, "ACQUIRED", Some(now), now).await?;
                        Ok::<_, CatalogError>(hms::LockState::ACQUIRED)
                    } else {
                        Ok(hms::LockState::WAITING)
                    }
                })
            })
            .await?;
        Ok(hms::LockResponse { lockid: lock_id, state, error_message: None })
    }

    pub async fn check_lock(&self, lock_id: i64) -> Result<hms::LockResponse> {
        let now = now_ms();
        let state = self
            .store()
            .transact(|c| {
                Box::pin(async move {
                    objects::expire_locks(c, now - LOCK_TIMEOUT_MS).await?;
                    let mine = objects::lock_rows(c, lock_id).await?;
                    if mine.is_empty() {
                        return Err(CatalogError::NoSuchLock(format!("No such lock: {lock_id}")));
                    }
                    if mine.iter().all(|r| r.state == "ACQUIRED") {
                        objects::heartbeat_lock(c, lock_id, now).await?;
                        return Ok(hms::LockState::ACQUIRED);
                    }
                    let all = objects::locks_on(c, &mine[0].db_name).await?;
                    if grantable(&mine, &all) {
                        objects::set_lock_state(c, lock_id, "ACQUIRED", Some(now), now).await?;
                        Ok(hms::LockState::ACQUIRED)
                    } else {
                        objects::heartbeat_lock(c, lock_id, now).await?;
                        Ok(hms::LockState::WAITING)
                    }
                })
            })
            .await?;
        Ok(hms::LockResponse { lockid: lock_id, state, error_message: None })
    }

    pub async fn unlock(&self, lock_id: i64) -> Result<()> {
        // Idempotent, as Hive's: clients (pyiceberg) unlock in `finally`,
        // also after a lock already expired.
        self.store().transact(|c| Box::pin(async move { objects::delete_lock(c, lock_id).await.map_err(CatalogError::from) })).await?;
        Ok(())
    }

    pub async fn heartbeat(&self, lock_id: i64) -> Result<()> {
        let now = now_ms();
        let alive = self.store().transact(|c| Box::pin(async move { objects::heartbeat_lock(c, lock_id, now).await.map_err(CatalogError::from) })).await?;
        if alive { Ok(()) } else { Err(CatalogError::NoSuchLock(format!("No such lock: {lock_id}"))) }
    }

    pub async fn show_locks(&self, req: &hms::ShowLocksRequest) -> Result<hms::ShowLocksResponse> {
        let mut conn = self.store().reader().await?;
        let rows = objects::all_locks(&mut conn).await?;
        let db = req.dbname.as_deref().map(normalize_identifier);
        let tbl = req.tablename.as_deref().map(normalize_identifier);
        let locks = rows
            .into_iter()
            .filter(|r| db.as_ref().is_none_or(|d| *d == r.db_name) && tbl.as_ref().is_none_or(|t| Some(t) == r.tbl_name.as_ref()))
            .map(|r| hms::ShowLocksResponseElement {
                lockid: r.lock_id,
                dbname: r.db_name,
                tablename: r.tbl_name,
                partname: r.part_name,
                state: if r.state == "ACQUIRED" { hms::LockState::ACQUIRED } else { hms::LockState::WAITING },
                type_: type_of(&r.lock_type),
                txnid: Some(r.txn_id),
                lastheartbeat: r.heartbeat_at,
                acquiredat: r.acquired_at,
                user: r.user_name,
                hostname: r.host_name,
                heartbeat_count: None,
                agent_info: None,
                blocked_by_ext_id: None,
                blocked_by_int_id: None,
                lock_id_internal: None,
            })
            .collect();
        Ok(hms::ShowLocksResponse { locks: Some(locks) })
    }
}
