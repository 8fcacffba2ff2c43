//! The commit log of `format: hive` tables: per-source progress, the files
//! each commit makes visible, and per-partition totals. A Hive table keeps
//! no transaction log in storage, so this is its log; the design and its
//! failure analysis are in `docs/hive-format.md`.
//!
//! Every function takes a connection inside the caller's transaction
//! ([`super::Store::transact`]) so that progress, the commit record and the
//! partition totals move together or not at all.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use super::{text, StoreError};

/// The key of a table's rows: a SHA-256 of its location (locations are too
/// long for a MySQL key, and a catalog name can change while the data stays).
pub fn table_key(location: &str) -> String {
    hex::encode(Sha256::digest(location.trim_end_matches('/').as_bytes()))
}

/// One file a commit makes visible. Paths are relative to the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitFile {
    /// Hive partition name (`dt=2024-01-01/hour=03`), empty when unpartitioned.
    pub partition: String,
    /// Where the file was written, under a name readers skip.
    pub staged: String,
    /// Where readers see it.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// A commit that is recorded but whose files may not all be visible yet.
#[derive(Debug, Clone)]
pub struct PendingCommit {
    pub seq: i64,
    pub commit_id: String,
    pub files: Vec<CommitFile>,
    pub created_ms: i64,
}

/// Why a commit was refused.
#[derive(Debug, thiserror::Error)]
pub enum CommitRefused {
    /// Another writer moved one of the commit's progress ids first.
    #[error("another writer committed progress for {app_id} (expected {expected:?}, found {found:?})")]
    Fenced { app_id: String, expected: Option<i64>, found: Option<i64> },
    /// A partition of the commit moved to another directory (compaction)
    /// after the files were written: the writer must re-read locations and
    /// write the flush again.
    #[error("partition {partition} moved to {location} while the flush was written")]
    Moved { partition: String, location: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl super::RetryHint for CommitRefused {
    fn retryable(&self) -> bool {
        matches!(self, CommitRefused::Store(e) if e.is_retryable())
    }
}

impl From<sqlx::Error> for CommitRefused {
    fn from(e: sqlx::Error) -> Self {
        CommitRefused::Store(e.into())
    }
}

/// Committed progress of `app_ids` (absent ids have none).
pub async fn progress(conn: &mut AnyConnection, key: &str, app_ids: &[String]) -> Result<HashMap<String, i64>, StoreError> {
    let mut out = HashMap::new();
    // One query per id keeps the statement portable; a pipeline owns a
    // handful of partitions and this runs once per assignment or fence.
    for id in app_ids {
        if let Some(v) = sqlx::query_scalar::<_, i64>("SELECT version FROM hive_progress WHERE table_key = ? AND app_id = ?").bind(key).bind(id).fetch_optional(&mut *conn).await? {
            out.insert(id.clone(), v);
        }
    }
    Ok(out)
}

/// Records a commit: moves every `txns` id from its `expected` version to
/// the new one (refusing the whole commit when any id moved meanwhile),
/// records the files, and adds them to their partitions' totals. Returns the
/// commit's sequence number in the table.
pub async fn commit(
    conn: &mut AnyConnection,
    key: &str,
    location: &str,
    commit_id: &str,
    txns: &[(String, i64)],
    expected: &HashMap<String, Option<i64>>,
    files: &[CommitFile],
    now_ms: i64,
) -> Result<i64, CommitRefused> {
    for (app_id, version) in txns {
        let want = expected.get(app_id).copied().flatten();
        let moved = match want {
            Some(v) => {
                sqlx::query("UPDATE hive_progress SET version = ?, updated_ms = ? WHERE table_key = ? AND app_id = ? AND version = ?")
                    .bind(version)
                    .bind(now_ms)
                    .bind(key)
                    .bind(app_id)
                    .bind(v)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
                    == 1
            }
            None => match sqlx::query("INSERT INTO hive_progress (table_key, app_id, version, updated_ms) VALUES (?, ?, ?, ?)")
                .bind(key)
                .bind(app_id)
                .bind(version)
                .bind(now_ms)
                .execute(&mut *conn)
                .await
            {
                Ok(_) => true,
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => false,
                Err(e) => return Err(e.into()),
            },
        };
        if !moved {
            let found = sqlx::query_scalar::<_, i64>("SELECT version FROM hive_progress WHERE table_key = ? AND app_id = ?").bind(key).bind(app_id).fetch_optional(&mut *conn).await?;
            return Err(CommitRefused::Fenced { app_id: app_id.clone(), expected: want, found });
        }
    }

    let bumped = sqlx::query("UPDATE hive_tables SET seq = seq + 1 WHERE table_key = ?").bind(key).execute(&mut *conn).await?.rows_affected();
    if bumped == 0 {
        sqlx::query("INSERT INTO hive_tables (table_key, location, seq) VALUES (?, ?, 1)").bind(key).bind(location).execute(&mut *conn).await?;
    }
    let seq: i64 = sqlx::query_scalar("SELECT seq FROM hive_tables WHERE table_key = ?").bind(key).fetch_one(&mut *conn).await?;

    let rows: u64 = files.iter().map(|f| f.rows).sum();
    let bytes: u64 = files.iter().map(|f| f.bytes).sum();
    let files_json = serde_json::to_string(files).map_err(|e| StoreError::Corrupt { what: "hive commit files".into(), reason: e.to_string() })?;
    sqlx::query("INSERT INTO hive_commits (table_key, seq, commit_id, state, files_json, num_rows, num_bytes, created_ms, published_ms) VALUES (?, ?, ?, 'committed', ?, ?, ?, ?, NULL)")
        .bind(key)
        .bind(seq)
        .bind(commit_id)
        .bind(files_json)
        .bind(rows as i64)
        .bind(bytes as i64)
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;

    let mut per_partition: std::collections::BTreeMap<(&str, &str), (i64, i64, i64)> = Default::default();
    for f in files {
        let dir = f.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let e = per_partition.entry((f.partition.as_str(), dir)).or_default();
        e.0 += 1;
        e.1 += f.rows as i64;
        e.2 += f.bytes as i64;
    }
    for ((part, dir), (n, r, b)) in per_partition {
        // The files must go where the partition is now: compaction moves a
        // partition to a new directory, and files written to the old one
        // would be invisible to readers.
        let updated = sqlx::query("UPDATE hive_partitions SET num_files = num_files + ?, num_rows = num_rows + ?, total_size = total_size + ?, commit_seq = ? WHERE table_key = ? AND part_name = ? AND location = ?")
            .bind(n)
            .bind(r)
            .bind(b)
            .bind(seq)
            .bind(key)
            .bind(part)
            .bind(dir)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if updated == 0 {
            let current = sqlx::query("SELECT location FROM hive_partitions WHERE table_key = ? AND part_name = ?").bind(key).bind(part).fetch_optional(&mut *conn).await?;
            if let Some(row) = current {
                return Err(CommitRefused::Moved { partition: part.to_string(), location: text(&row, "location")? });
            }
            sqlx::query("INSERT INTO hive_partitions (table_key, part_name, location, num_files, num_rows, total_size, commit_seq, closed_ms, closed_seq) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)")
                .bind(key)
                .bind(part)
                .bind(dir)
                .bind(n)
                .bind(r)
                .bind(b)
                .bind(seq)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(seq)
}

/// The current directory (relative to the table) of each partition inlet
/// has written to.
pub async fn partition_locations(conn: &mut AnyConnection, key: &str) -> Result<HashMap<String, String>, StoreError> {
    let rows = sqlx::query("SELECT part_name, location FROM hive_partitions WHERE table_key = ?").bind(key).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| Ok((text(r, "part_name")?, text(r, "location")?))).collect()
}

/// Commits whose files are not all known to be visible, oldest first.
pub async fn unpublished(conn: &mut AnyConnection, key: &str) -> Result<Vec<PendingCommit>, StoreError> {
    let rows = sqlx::query("SELECT seq, commit_id, files_json, created_ms FROM hive_commits WHERE table_key = ? AND state = 'committed' ORDER BY seq").bind(key).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            let files_json = text(r, "files_json")?;
            let files: Vec<CommitFile> = serde_json::from_str(&files_json).map_err(|e| StoreError::Corrupt { what: "hive commit files".into(), reason: e.to_string() })?;
            Ok(PendingCommit { seq: r.try_get("seq")?, commit_id: text(r, "commit_id")?, files, created_ms: r.try_get("created_ms")? })
        })
        .collect()
}

/// Marks a commit's files as all visible.
pub async fn mark_published(conn: &mut AnyConnection, key: &str, seq: i64, now_ms: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE hive_commits SET state = 'published', published_ms = ? WHERE table_key = ? AND seq = ?").bind(now_ms).bind(key).bind(seq).execute(conn).await?;
    Ok(())
}

/// Totals of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTotals {
    pub part_name: String,
    /// Its directory, relative to the table.
    pub location: String,
    pub num_files: i64,
    pub num_rows: i64,
    pub total_size: i64,
    /// The newest commit that added files to it.
    pub commit_seq: i64,
    /// When it was closed, and the commit it was closed at (a later commit
    /// means late events were written after closing).
    pub closed_ms: Option<i64>,
    pub closed_seq: Option<i64>,
}

/// Every partition of the table with its totals.
pub async fn partitions(conn: &mut AnyConnection, key: &str) -> Result<Vec<PartitionTotals>, StoreError> {
    totals(conn, key, "").await
}

/// Partitions not closed, or written to since they were closed.
pub async fn open_partitions(conn: &mut AnyConnection, key: &str) -> Result<Vec<PartitionTotals>, StoreError> {
    totals(conn, key, " AND (closed_seq IS NULL OR commit_seq > closed_seq)").await
}

/// Names of the partitions that were ever closed.
pub async fn closed_partition_names(conn: &mut AnyConnection, key: &str) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query("SELECT part_name FROM hive_partitions WHERE table_key = ? AND closed_ms IS NOT NULL").bind(key).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| text(r, "part_name").map_err(StoreError::from)).collect()
}

async fn totals(conn: &mut AnyConnection, key: &str, filter: &str) -> Result<Vec<PartitionTotals>, StoreError> {
    let sql = format!("SELECT part_name, location, num_files, num_rows, total_size, commit_seq, closed_ms, closed_seq FROM hive_partitions WHERE table_key = ?{filter} ORDER BY part_name");
    let rows = sqlx::query(&sql).bind(key).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            Ok(PartitionTotals {
                part_name: text(r, "part_name")?,
                location: text(r, "location")?,
                num_files: r.try_get("num_files")?,
                num_rows: r.try_get("num_rows")?,
                total_size: r.try_get("total_size")?,
                commit_seq: r.try_get("commit_seq")?,
                closed_ms: r.try_get("closed_ms")?,
                closed_seq: r.try_get("closed_seq")?,
            })
        })
        .collect()
}

/// Records that a partition was closed at its current commit.
pub async fn mark_closed(conn: &mut AnyConnection, key: &str, part_name: &str, seq: i64, now_ms: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE hive_partitions SET closed_ms = ?, closed_seq = ? WHERE table_key = ? AND part_name = ?").bind(now_ms).bind(seq).bind(key).bind(part_name).execute(conn).await?;
    Ok(())
}

/// Moves a partition to `new_location` with new totals, provided its newest
/// commit and directory are still the ones expected. Returns whether it did.
#[allow(clippy::too_many_arguments)]
pub async fn relocate(conn: &mut AnyConnection, key: &str, part_name: &str, expected_seq: i64, expected_location: &str, new_location: &str, num_files: i64, total_size: i64) -> Result<bool, StoreError> {
    Ok(sqlx::query("UPDATE hive_partitions SET location = ?, num_files = ?, total_size = ? WHERE table_key = ? AND part_name = ? AND commit_seq = ? AND location = ?")
        .bind(new_location)
        .bind(num_files)
        .bind(total_size)
        .bind(key)
        .bind(part_name)
        .bind(expected_seq)
        .bind(expected_location)
        .execute(conn)
        .await?
        .rows_affected()
        == 1)
}

fn path_hash(path: &str) -> String {
    hex::encode(Sha256::digest(path.as_bytes()))
}

/// Schedules files (relative to the table) for deletion at `due_ms`.
pub async fn schedule_deletes(conn: &mut AnyConnection, key: &str, paths: &[String], due_ms: i64) -> Result<(), StoreError> {
    for p in paths {
        let h = path_hash(p);
        let updated = sqlx::query("UPDATE hive_pending_deletes SET due_ms = ? WHERE table_key = ? AND path_hash = ?").bind(due_ms).bind(key).bind(&h).execute(&mut *conn).await?.rows_affected();
        if updated == 0 {
            sqlx::query("INSERT INTO hive_pending_deletes (table_key, path_hash, path, due_ms) VALUES (?, ?, ?, ?)").bind(key).bind(&h).bind(p).bind(due_ms).execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// Files due for deletion at `now_ms` (at most `limit`).
pub async fn due_deletes(conn: &mut AnyConnection, key: &str, now_ms: i64, limit: i64) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query("SELECT path FROM hive_pending_deletes WHERE table_key = ? AND due_ms <= ? ORDER BY due_ms LIMIT ?").bind(key).bind(now_ms).bind(limit).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| text(r, "path").map_err(StoreError::from)).collect()
}

/// Files scheduled for deletion, due or not.
pub async fn pending_deletes(conn: &mut AnyConnection, key: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM hive_pending_deletes WHERE table_key = ?").bind(key).fetch_one(conn).await?)
}

/// Forgets deleted files.
pub async fn deleted(conn: &mut AnyConnection, key: &str, paths: &[String]) -> Result<(), StoreError> {
    for p in paths {
        sqlx::query("DELETE FROM hive_pending_deletes WHERE table_key = ? AND path_hash = ?").bind(key).bind(path_hash(p)).execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    async fn sqlite() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("m.db").display())).await.unwrap();
        store.migrate().await.unwrap();
        (store, dir)
    }

    async fn mysql() -> Option<Store> {
        let root = std::env::var("INLET_TEST_MYSQL_URL").ok()?;
        let name = format!("inlet_hive_{}", uuid::Uuid::new_v4().simple());
        use sqlx::Connection;
        let mut c = sqlx::MySqlConnection::connect(&root).await.expect("MariaDB");
        sqlx::query(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")).execute(&mut c).await.unwrap();
        let store = Store::connect(&format!("{}/{name}", root.trim_end_matches('/'))).await.unwrap();
        store.migrate().await.unwrap();
        Some(store)
    }

    fn file(part: &str, dir: &str, n: u32) -> CommitFile {
        CommitFile { partition: part.into(), staged: format!(".inlet-staging/c/{dir}/f{n}"), path: format!("{dir}/f{n}"), rows: 10, bytes: 100 }
    }

    async fn try_commit(s: &Store, txns: &[(&str, i64)], expected: &[(&str, Option<i64>)], files: Vec<CommitFile>) -> Result<i64, CommitRefused> {
        let txns: Vec<(String, i64)> = txns.iter().map(|(a, v)| (a.to_string(), *v)).collect();
        let expected: HashMap<String, Option<i64>> = expected.iter().map(|(a, v)| (a.to_string(), *v)).collect();
        s.transact(|c| {
            let (txns, expected, files) = (txns.clone(), expected.clone(), files.clone());
            Box::pin(async move { commit(c, "k", "/wh/t", "c1", &txns, &expected, &files, 1).await })
        })
        .await
    }

    async fn scenario(s: &Store) {
        let ids = vec!["a".to_string(), "b".to_string()];
        assert!(progress(&mut *s.reader().await.unwrap(), "k", &ids).await.unwrap().is_empty());
        let seq = try_commit(s, &[("a", 9)], &[("a", None)], vec![file("dt=1", "dt=1", 0), file("dt=2", "dt=2", 1)]).await.unwrap();
        assert_eq!(seq, 1);
        // A stale writer is fenced and changes nothing.
        match try_commit(s, &[("a", 19), ("b", 5)], &[("a", Some(3)), ("b", None)], vec![file("dt=1", "dt=1", 2)]).await {
            Err(CommitRefused::Fenced { app_id, expected, found }) => assert_eq!((app_id.as_str(), expected, found), ("a", Some(3), Some(9))),
            other => panic!("not fenced: {other:?}"),
        }
        let p = progress(&mut *s.reader().await.unwrap(), "k", &ids).await.unwrap();
        assert_eq!(p.get("a"), Some(&9));
        assert_eq!(p.get("b"), None, "the fenced commit's other id was rolled back");
        let seq = try_commit(s, &[("a", 19), ("b", 5)], &[("a", Some(9)), ("b", None)], vec![file("dt=1", "dt=1", 2)]).await.unwrap();
        assert_eq!(seq, 2);

        let mut conn = s.reader().await.unwrap();
        let pending = unpublished(&mut conn, "k").await.unwrap();
        assert_eq!(pending.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(pending[0].files.len(), 2);
        drop(conn);
        s.transact(|c| Box::pin(async move { mark_published(c, "k", 1, 5).await })).await.unwrap();
        let mut conn = s.reader().await.unwrap();
        assert_eq!(unpublished(&mut conn, "k").await.unwrap().len(), 1);
        let parts = partitions(&mut conn, "k").await.unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].part_name.as_str(), parts[0].num_files, parts[0].num_rows, parts[0].commit_seq), ("dt=1", 2, 20, 2));
        assert_eq!(open_partitions(&mut conn, "k").await.unwrap().len(), 2);
        drop(conn);
        s.transact(|c| Box::pin(async move { mark_closed(c, "k", "dt=1", 2, 7).await })).await.unwrap();
        let mut conn = s.reader().await.unwrap();
        assert_eq!(open_partitions(&mut conn, "k").await.unwrap().iter().map(|p| p.part_name.clone()).collect::<Vec<_>>(), ["dt=2"]);
        assert_eq!(closed_partition_names(&mut conn, "k").await.unwrap(), ["dt=1"]);
        drop(conn);
        // A late write reopens a closed partition.
        try_commit(s, &[("a", 20)], &[("a", Some(19))], vec![file("dt=1", "dt=1", 3)]).await.unwrap();
        let mut conn = s.reader().await.unwrap();
        assert_eq!(open_partitions(&mut conn, "k").await.unwrap().len(), 2);
        drop(conn);
        // Files written to a directory the partition no longer has are refused.
        sqlx::query("UPDATE hive_partitions SET location = '.compacted/r1/dt=2' WHERE part_name = 'dt=2'").execute(&mut *s.reader().await.unwrap()).await.unwrap();
        match try_commit(s, &[("a", 21)], &[("a", Some(20))], vec![file("dt=2", "dt=2", 4)]).await {
            Err(CommitRefused::Moved { partition, location }) => assert_eq!((partition.as_str(), location.as_str()), ("dt=2", ".compacted/r1/dt=2")),
            other => panic!("not refused: {other:?}"),
        }
        try_commit(s, &[("a", 21)], &[("a", Some(20))], vec![file("dt=2", ".compacted/r1/dt=2", 4)]).await.unwrap();
        let locations = partition_locations(&mut *s.reader().await.unwrap(), "k").await.unwrap();
        assert_eq!(locations["dt=2"], ".compacted/r1/dt=2");

        // Writers racing from the same progress: exactly one wins.
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move { try_commit(&s, &[("a", 100 + i)], &[("a", Some(21))], vec![file("dt=3", "dt=3", 10 + i as u32)]).await })
            })
            .collect();
        let mut won = 0;
        for r in racers {
            match r.await.unwrap() {
                Ok(_) => won += 1,
                Err(CommitRefused::Fenced { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(won, 1);
        let parts = partitions(&mut *s.reader().await.unwrap(), "k").await.unwrap();
        assert_eq!(parts.iter().find(|p| p.part_name == "dt=3").unwrap().num_files, 1, "only the winner's files count");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_commit_log_fences_and_tracks_partitions() {
        let (s, _dir) = sqlite().await;
        scenario(&s).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn mariadb_commit_log_fences_and_tracks_partitions() {
        let Some(s) = mysql().await else {
            eprintln!("INLET_TEST_MYSQL_URL not set: MariaDB variant skipped");
            return;
        };
        scenario(&s).await;
    }

    #[test]
    fn table_keys_ignore_a_trailing_slash() {
        assert_eq!(table_key("s3://b/t/"), table_key("s3://b/t"));
        assert_eq!(table_key("s3://b/t").len(), 64);
    }
}
