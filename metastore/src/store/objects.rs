//! Rows of the catalog objects: databases, tables, partitions, column
//! statistics and functions. Each row carries the whole object as an opaque
//! blob plus the columns that statements select on; what the blob means is
//! the catalog's business (`crate::codec`).

use sqlx::{AnyConnection, Row};

use super::{text, StoreError, DELETE_BATCH};

#[derive(Debug, Clone)]
pub struct DbRow {
    pub db_id: i64,
    pub name: String,
    pub location: Option<String>,
    pub owner: Option<String>,
    pub created_at: i64,
    pub object: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct TableRow {
    pub tbl_id: i64,
    pub db_id: i64,
    pub name: String,
    pub table_type: String,
    pub provider: Option<String>,
    pub location: Option<String>,
    pub owner: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub object: Vec<u8>,
    /// Bumped by every transaction that adds, drops or renames partitions
    /// (never written by `insert_table`/`update_table`).
    pub part_gen: i64,
}

#[derive(Debug, Clone)]
pub struct PartitionRow {
    pub part_id: i64,
    pub tbl_id: i64,
    pub part_name: String,
    /// The partition values, a JSON array of strings.
    pub vals: String,
    pub location: Option<String>,
    pub created_at: i64,
    pub object: Vec<u8>,
}

/// A partition without its blob: enough to evaluate filters and names.
#[derive(Debug, Clone)]
pub struct PartitionKeyRow {
    pub part_id: i64,
    pub part_name: String,
    pub vals: String,
}

#[derive(Debug, Clone)]
pub struct FunctionRow {
    pub func_id: i64,
    pub db_id: i64,
    pub name: String,
    pub created_at: i64,
    pub object: Vec<u8>,
}

fn function_row(r: &sqlx::any::AnyRow) -> Result<FunctionRow, sqlx::Error> {
    Ok(FunctionRow { func_id: r.try_get("func_id")?, db_id: r.try_get("db_id")?, name: r.try_get("name")?, created_at: r.try_get("created_at")?, object: r.try_get("object")? })
}

fn db_row(r: &sqlx::any::AnyRow) -> Result<DbRow, sqlx::Error> {
    Ok(DbRow {
        db_id: r.try_get("db_id")?,
        name: r.try_get("name")?,
        location: r.try_get("location")?,
        owner: r.try_get("owner")?,
        created_at: r.try_get("created_at")?,
        object: r.try_get("object")?,
    })
}

fn table_row(r: &sqlx::any::AnyRow) -> Result<TableRow, sqlx::Error> {
    Ok(TableRow {
        tbl_id: r.try_get("tbl_id")?,
        db_id: r.try_get("db_id")?,
        name: r.try_get("name")?,
        table_type: r.try_get("table_type")?,
        provider: r.try_get("provider")?,
        location: r.try_get("location")?,
        owner: r.try_get("owner")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        object: r.try_get("object")?,
        part_gen: r.try_get("part_gen")?,
    })
}

fn partition_row(r: &sqlx::any::AnyRow) -> Result<PartitionRow, sqlx::Error> {
    Ok(PartitionRow {
        part_id: r.try_get("part_id")?,
        tbl_id: r.try_get("tbl_id")?,
        part_name: r.try_get("part_name")?,
        vals: text(r, "vals")?,
        location: r.try_get("location")?,
        created_at: r.try_get("created_at")?,
        object: r.try_get("object")?,
    })
}

// ---- databases ------------------------------------------------------------

pub async fn db_by_name(conn: &mut AnyConnection, name: &str) -> Result<Option<DbRow>, StoreError> {
    let row = sqlx::query("SELECT db_id, name, location, owner, created_at, object FROM dbs WHERE name = ?").bind(name).fetch_optional(conn).await?;
    Ok(row.as_ref().map(db_row).transpose()?)
}

pub async fn db_names(conn: &mut AnyConnection) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar("SELECT name FROM dbs ORDER BY name").fetch_all(conn).await?)
}

pub async fn all_dbs(conn: &mut AnyConnection) -> Result<Vec<DbRow>, StoreError> {
    let rows = sqlx::query("SELECT db_id, name, location, owner, created_at, object FROM dbs ORDER BY name").fetch_all(conn).await?;
    Ok(rows.iter().map(db_row).collect::<Result<_, _>>()?)
}

pub async fn insert_db(conn: &mut AnyConnection, row: &DbRow) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO dbs (db_id, name, location, owner, created_at, object) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(row.db_id)
        .bind(&row.name)
        .bind(&row.location)
        .bind(&row.owner)
        .bind(row.created_at)
        .bind(&row.object)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn update_db(conn: &mut AnyConnection, row: &DbRow) -> Result<(), StoreError> {
    sqlx::query("UPDATE dbs SET location = ?, owner = ?, object = ? WHERE db_id = ?")
        .bind(&row.location)
        .bind(&row.owner)
        .bind(&row.object)
        .bind(row.db_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_db(conn: &mut AnyConnection, db_id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM functions WHERE db_id = ?").bind(db_id).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM dbs WHERE db_id = ?").bind(db_id).execute(conn).await?;
    Ok(())
}

// ---- tables ---------------------------------------------------------------

const TABLE_COLS: &str = "tbl_id, db_id, name, table_type, provider, location, owner, created_at, updated_at, object";
const TABLE_READ_COLS: &str = "tbl_id, db_id, name, table_type, provider, location, owner, created_at, updated_at, object, part_gen";

pub async fn table_by_name(conn: &mut AnyConnection, db_id: i64, name: &str) -> Result<Option<TableRow>, StoreError> {
    let row = sqlx::query(&format!("SELECT {TABLE_READ_COLS} FROM tbls WHERE db_id = ? AND name = ?")).bind(db_id).bind(name).fetch_optional(conn).await?;
    Ok(row.as_ref().map(table_row).transpose()?)
}

/// Tables registered at any of `locations`.
pub async fn tables_at(conn: &mut AnyConnection, locations: &[String]) -> Result<Vec<TableRow>, StoreError> {
    let mut out = Vec::new();
    for loc in locations {
        let rows = sqlx::query(&format!("SELECT {TABLE_READ_COLS} FROM tbls WHERE location = ?")).bind(loc).fetch_all(&mut *conn).await?;
        for r in &rows {
            out.push(table_row(r)?);
        }
    }
    Ok(out)
}

/// A table by database and table name in one round trip (the hottest read:
/// Spark calls `get_table` before nearly everything).
pub async fn table_by_names(conn: &mut AnyConnection, db: &str, name: &str) -> Result<Option<TableRow>, StoreError> {
    let cols: Vec<String> = TABLE_READ_COLS.split(", ").map(|c| format!("t.{c}")).collect();
    let sql = format!("SELECT {} FROM tbls t JOIN dbs d ON d.db_id = t.db_id WHERE d.name = ? AND t.name = ?", cols.join(", "));
    let row = sqlx::query(&sql).bind(db).bind(name).fetch_optional(conn).await?;
    Ok(row.as_ref().map(table_row).transpose()?)
}

pub async fn table_by_id(conn: &mut AnyConnection, tbl_id: i64) -> Result<Option<TableRow>, StoreError> {
    let row = sqlx::query(&format!("SELECT {TABLE_READ_COLS} FROM tbls WHERE tbl_id = ?")).bind(tbl_id).fetch_optional(conn).await?;
    Ok(row.as_ref().map(table_row).transpose()?)
}

/// `(name, table_type)` of every table of a database, by name.
pub async fn table_names(conn: &mut AnyConnection, db_id: i64) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query("SELECT name, table_type FROM tbls WHERE db_id = ? ORDER BY name").bind(db_id).fetch_all(conn).await?;
    rows.iter().map(|r| Ok((r.try_get("name")?, r.try_get("table_type")?))).collect::<Result<_, sqlx::Error>>().map_err(Into::into)
}

pub async fn tables_of_db(conn: &mut AnyConnection, db_id: i64) -> Result<Vec<TableRow>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {TABLE_READ_COLS} FROM tbls WHERE db_id = ? ORDER BY name")).bind(db_id).fetch_all(conn).await?;
    Ok(rows.iter().map(table_row).collect::<Result<_, _>>()?)
}

pub async fn count_tables(conn: &mut AnyConnection, db_id: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM tbls WHERE db_id = ?").bind(db_id).fetch_one(conn).await?)
}

pub async fn insert_table(conn: &mut AnyConnection, row: &TableRow) -> Result<(), StoreError> {
    sqlx::query(&format!("INSERT INTO tbls ({TABLE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"))
        .bind(row.tbl_id)
        .bind(row.db_id)
        .bind(&row.name)
        .bind(&row.table_type)
        .bind(&row.provider)
        .bind(&row.location)
        .bind(&row.owner)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(&row.object)
        .execute(conn)
        .await?;
    Ok(())
}

/// Rewrites a table row in place (also moves it: rename or new database).
pub async fn update_table(conn: &mut AnyConnection, row: &TableRow) -> Result<(), StoreError> {
    sqlx::query("UPDATE tbls SET db_id = ?, name = ?, table_type = ?, provider = ?, location = ?, owner = ?, updated_at = ?, object = ? WHERE tbl_id = ?")
        .bind(row.db_id)
        .bind(&row.name)
        .bind(&row.table_type)
        .bind(&row.provider)
        .bind(&row.location)
        .bind(&row.owner)
        .bind(row.updated_at)
        .bind(&row.object)
        .bind(row.tbl_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes the table row and its table-level statistics. Its partitions are
/// unreachable from then on and are removed by [`purge_orphans`] in batches,
/// in transactions of their own: a table with a million partitions must not
/// become one transaction (TiDB's size limit).
pub async fn delete_table(conn: &mut AnyConnection, tbl_id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM tbls WHERE tbl_id = ?").bind(tbl_id).execute(conn).await?;
    Ok(())
}

/// Deletes up to one batch of partitions and statistics whose table is gone.
/// Returns how many rows went; call until it returns 0.
pub async fn purge_orphans(conn: &mut AnyConnection) -> Result<u64, StoreError> {
    let ids: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT p.part_id FROM partitions p LEFT JOIN tbls t ON t.tbl_id = p.tbl_id WHERE t.tbl_id IS NULL LIMIT {DELETE_BATCH}"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let mut gone = 0;
    if !ids.is_empty() {
        gone += delete_partitions_by_id(conn, &ids).await?;
    }
    let stats: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT DISTINCT s.tbl_id FROM column_stats s LEFT JOIN tbls t ON t.tbl_id = s.tbl_id WHERE t.tbl_id IS NULL LIMIT {DELETE_BATCH}"
    ))
    .fetch_all(&mut *conn)
    .await?;
    for tbl_id in stats {
        gone += sqlx::query("DELETE FROM column_stats WHERE tbl_id = ?").bind(tbl_id).execute(&mut *conn).await?.rows_affected();
    }
    Ok(gone)
}

// ---- partitions -----------------------------------------------------------

const PART_COLS: &str = "part_id, tbl_id, part_name, vals, location, created_at, object";

pub async fn partition_by_name(conn: &mut AnyConnection, tbl_id: i64, part_name: &str) -> Result<Option<PartitionRow>, StoreError> {
    let row = sqlx::query(&format!("SELECT {PART_COLS} FROM partitions WHERE tbl_id = ? AND part_name = ?"))
        .bind(tbl_id)
        .bind(part_name)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(partition_row).transpose()?)
}

/// Partitions of a table ordered by name, at most `limit` when given.
pub async fn partitions_of_table(conn: &mut AnyConnection, tbl_id: i64, limit: Option<i64>) -> Result<Vec<PartitionRow>, StoreError> {
    let sql = match limit {
        Some(n) => format!("SELECT {PART_COLS} FROM partitions WHERE tbl_id = ? ORDER BY part_name LIMIT {n}"),
        None => format!("SELECT {PART_COLS} FROM partitions WHERE tbl_id = ? ORDER BY part_name"),
    };
    let rows = sqlx::query(&sql).bind(tbl_id).fetch_all(conn).await?;
    Ok(rows.iter().map(partition_row).collect::<Result<_, _>>()?)
}

/// Names and values of every partition of a table (no blobs): what filters,
/// name listings and counts need.
pub async fn partition_keys(conn: &mut AnyConnection, tbl_id: i64) -> Result<Vec<PartitionKeyRow>, StoreError> {
    let rows = sqlx::query("SELECT part_id, part_name, vals FROM partitions WHERE tbl_id = ? ORDER BY part_name").bind(tbl_id).fetch_all(conn).await?;
    rows.iter()
        .map(|r| Ok(PartitionKeyRow { part_id: r.try_get("part_id")?, part_name: r.try_get("part_name")?, vals: text(r, "vals")? }))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Partition rows by id, in name order.
pub async fn partitions_by_ids(conn: &mut AnyConnection, ids: &[i64]) -> Result<Vec<PartitionRow>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(DELETE_BATCH) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!("SELECT {PART_COLS} FROM partitions WHERE part_id IN ({marks})");
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            out.push(partition_row(&r)?);
        }
    }
    out.sort_by(|a, b| a.part_name.cmp(&b.part_name));
    Ok(out)
}

/// Marks a change of the table's set of partitions (see `part_gen`).
pub async fn bump_partition_generation(conn: &mut AnyConnection, tbl_id: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE tbls SET part_gen = part_gen + 1 WHERE tbl_id = ?").bind(tbl_id).execute(conn).await?;
    Ok(())
}

pub async fn count_partitions(conn: &mut AnyConnection, tbl_id: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM partitions WHERE tbl_id = ?").bind(tbl_id).fetch_one(conn).await?)
}

pub async fn insert_partition(conn: &mut AnyConnection, row: &PartitionRow) -> Result<(), StoreError> {
    sqlx::query(&format!("INSERT INTO partitions ({PART_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"))
        .bind(row.part_id)
        .bind(row.tbl_id)
        .bind(&row.part_name)
        .bind(&row.vals)
        .bind(&row.location)
        .bind(row.created_at)
        .bind(&row.object)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn update_partition(conn: &mut AnyConnection, row: &PartitionRow) -> Result<(), StoreError> {
    sqlx::query("UPDATE partitions SET part_name = ?, vals = ?, location = ?, object = ? WHERE part_id = ?")
        .bind(&row.part_name)
        .bind(&row.vals)
        .bind(&row.location)
        .bind(&row.object)
        .bind(row.part_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes partitions and their statistics, in batches.
pub async fn delete_partitions_by_id(conn: &mut AnyConnection, ids: &[i64]) -> Result<u64, StoreError> {
    let mut gone = 0;
    for chunk in ids.chunks(DELETE_BATCH) {
        let marks = vec!["?"; chunk.len()].join(", ");
        for sql in [format!("DELETE FROM column_stats WHERE part_id IN ({marks})"), format!("DELETE FROM partitions WHERE part_id IN ({marks})")] {
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            gone += q.execute(&mut *conn).await?.rows_affected();
        }
    }
    Ok(gone)
}

// ---- column statistics ----------------------------------------------------

/// Table-level statistics use `part_id = 0`.
pub const TABLE_LEVEL: i64 = 0;

pub async fn put_column_stats(conn: &mut AnyConnection, tbl_id: i64, part_id: i64, column: &str, object: &[u8], now: i64) -> Result<(), StoreError> {
    // Delete-then-insert: portable across SQLite and MySQL, and atomic in the
    // caller's transaction.
    sqlx::query("DELETE FROM column_stats WHERE tbl_id = ? AND part_id = ? AND column_name = ?")
        .bind(tbl_id)
        .bind(part_id)
        .bind(column)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO column_stats (tbl_id, part_id, column_name, updated_at, object) VALUES (?, ?, ?, ?, ?)")
        .bind(tbl_id)
        .bind(part_id)
        .bind(column)
        .bind(now)
        .bind(object)
        .execute(conn)
        .await?;
    Ok(())
}

/// `(part_id, column, blob)` for the given partitions (or [`TABLE_LEVEL`]).
pub async fn column_stats(conn: &mut AnyConnection, tbl_id: i64, part_ids: &[i64]) -> Result<Vec<(i64, String, Vec<u8>)>, StoreError> {
    let mut out = Vec::new();
    for chunk in part_ids.chunks(DELETE_BATCH) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!("SELECT part_id, column_name, object FROM column_stats WHERE tbl_id = ? AND part_id IN ({marks}) ORDER BY part_id, column_name");
        let mut q = sqlx::query(&sql).bind(tbl_id);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            out.push((r.try_get("part_id")?, r.try_get("column_name")?, r.try_get("object")?));
        }
    }
    Ok(out)
}

/// Deletes statistics of one column (or all columns when `column` is None)
/// of a partition or the table level. Returns whether anything went.
pub async fn delete_column_stats(conn: &mut AnyConnection, tbl_id: i64, part_id: i64, column: Option<&str>) -> Result<bool, StoreError> {
    let done = match column {
        Some(c) => sqlx::query("DELETE FROM column_stats WHERE tbl_id = ? AND part_id = ? AND column_name = ?").bind(tbl_id).bind(part_id).bind(c).execute(conn).await?,
        None => sqlx::query("DELETE FROM column_stats WHERE tbl_id = ? AND part_id = ?").bind(tbl_id).bind(part_id).execute(conn).await?,
    };
    Ok(done.rows_affected() > 0)
}

// ---- functions ------------------------------------------------------------

pub async fn function_by_name(conn: &mut AnyConnection, db_id: i64, name: &str) -> Result<Option<FunctionRow>, StoreError> {
    let row = sqlx::query("SELECT func_id, db_id, name, created_at, object FROM functions WHERE db_id = ? AND name = ?").bind(db_id).bind(name).fetch_optional(conn).await?;
    Ok(row.as_ref().map(function_row).transpose()?)
}

/// Every function, optionally of one database, as `(db_id, name, blob)`.
pub async fn functions(conn: &mut AnyConnection, db_id: Option<i64>) -> Result<Vec<FunctionRow>, StoreError> {
    let rows = match db_id {
        Some(id) => sqlx::query("SELECT func_id, db_id, name, created_at, object FROM functions WHERE db_id = ? ORDER BY name").bind(id).fetch_all(conn).await?,
        None => sqlx::query("SELECT func_id, db_id, name, created_at, object FROM functions ORDER BY db_id, name").fetch_all(conn).await?,
    };
    rows.iter()
        .map(function_row)
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub async fn insert_function(conn: &mut AnyConnection, row: &FunctionRow) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO functions (func_id, db_id, name, created_at, object) VALUES (?, ?, ?, ?, ?)")
        .bind(row.func_id)
        .bind(row.db_id)
        .bind(&row.name)
        .bind(row.created_at)
        .bind(&row.object)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn update_function(conn: &mut AnyConnection, row: &FunctionRow) -> Result<(), StoreError> {
    sqlx::query("UPDATE functions SET name = ?, object = ? WHERE func_id = ?").bind(&row.name).bind(&row.object).bind(row.func_id).execute(conn).await?;
    Ok(())
}

pub async fn delete_function(conn: &mut AnyConnection, func_id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM functions WHERE func_id = ?").bind(func_id).execute(conn).await?;
    Ok(())
}

// ---- locks ----------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct LockRow {
    pub lock_id: i64,
    pub db_name: String,
    pub tbl_name: Option<String>,
    pub part_name: Option<String>,
    pub lock_type: String,
    pub state: String,
    pub txn_id: i64,
    pub user_name: String,
    pub host_name: String,
    pub acquired_at: Option<i64>,
    pub heartbeat_at: i64,
}

fn lock_row(r: &sqlx::any::AnyRow) -> Result<LockRow, sqlx::Error> {
    Ok(LockRow {
        lock_id: r.try_get("lock_id")?,
        db_name: r.try_get("db_name")?,
        tbl_name: r.try_get("tbl_name")?,
        part_name: r.try_get("part_name")?,
        lock_type: r.try_get("lock_type")?,
        state: r.try_get("state")?,
        txn_id: r.try_get("txn_id")?,
        user_name: r.try_get("user_name")?,
        host_name: r.try_get("host_name")?,
        acquired_at: r.try_get("acquired_at")?,
        heartbeat_at: r.try_get("heartbeat_at")?,
    })
}

const LOCK_COLS: &str = "lock_id, db_name, tbl_name, part_name, lock_type, state, txn_id, user_name, host_name, acquired_at, heartbeat_at";

pub async fn insert_lock(conn: &mut AnyConnection, row: &LockRow) -> Result<(), StoreError> {
    sqlx::query(&format!("INSERT INTO locks ({LOCK_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"))
        .bind(row.lock_id)
        .bind(&row.db_name)
        .bind(&row.tbl_name)
        .bind(&row.part_name)
        .bind(&row.lock_type)
        .bind(&row.state)
        .bind(row.txn_id)
        .bind(&row.user_name)
        .bind(&row.host_name)
        .bind(row.acquired_at)
        .bind(row.heartbeat_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Rows of one lock request (a request may cover several components).
pub async fn lock_rows(conn: &mut AnyConnection, lock_id: i64) -> Result<Vec<LockRow>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {LOCK_COLS} FROM locks WHERE lock_id = ?")).bind(lock_id).fetch_all(conn).await?;
    Ok(rows.iter().map(lock_row).collect::<Result<_, _>>()?)
}

/// Every lock row on a database (any table) or on one table.
pub async fn locks_on(conn: &mut AnyConnection, db_name: &str) -> Result<Vec<LockRow>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {LOCK_COLS} FROM locks WHERE db_name = ?")).bind(db_name).fetch_all(conn).await?;
    Ok(rows.iter().map(lock_row).collect::<Result<_, _>>()?)
}

pub async fn all_locks(conn: &mut AnyConnection) -> Result<Vec<LockRow>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {LOCK_COLS} FROM locks ORDER BY lock_id")).fetch_all(conn).await?;
    Ok(rows.iter().map(lock_row).collect::<Result<_, _>>()?)
}

pub async fn set_lock_state(conn: &mut AnyConnection, lock_id: i64, state: &str, acquired_at: Option<i64>, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE locks SET state = ?, acquired_at = COALESCE(?, acquired_at), heartbeat_at = ? WHERE lock_id = ?")
        .bind(state)
        .bind(acquired_at)
        .bind(now)
        .bind(lock_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn heartbeat_lock(conn: &mut AnyConnection, lock_id: i64, now: i64) -> Result<bool, StoreError> {
    Ok(sqlx::query("UPDATE locks SET heartbeat_at = ? WHERE lock_id = ?").bind(now).bind(lock_id).execute(conn).await?.rows_affected() > 0)
}

pub async fn delete_lock(conn: &mut AnyConnection, lock_id: i64) -> Result<bool, StoreError> {
    Ok(sqlx::query("DELETE FROM locks WHERE lock_id = ?").bind(lock_id).execute(conn).await?.rows_affected() > 0)
}

/// Drops locks whose holder stopped heart-beating (a crashed client).
pub async fn expire_locks(conn: &mut AnyConnection, older_than: i64) -> Result<u64, StoreError> {
    Ok(sqlx::query("DELETE FROM locks WHERE heartbeat_at < ?").bind(older_than).execute(conn).await?.rows_affected())
}
