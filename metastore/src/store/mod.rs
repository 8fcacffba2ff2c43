//! The catalog store: one SQL database (SQLite embedded; MySQL, MariaDB or
//! TiDB for a shared deployment) behind sqlx's `Any` driver, its versioned
//! migrations, and the transaction discipline every write follows.
//!
//! Writes run in [`Store::transact`]: a transaction that is retried from the
//! start on deadlocks, lock-wait timeouts, TiDB write conflicts and SQLite
//! `BUSY`, so callers never see those. The row-level statements live in the
//! submodules, one per kind of record; they take a connection so that a
//! caller composes several of them (and the audit entry) in one transaction.

pub mod audit;
pub mod jobs;
pub mod hive;
pub mod leases;
pub mod lineage;
pub mod objects;
pub mod runs;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};
use tracing::{debug, warn};

/// Which SQL dialect the store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
}

/// An error of the catalog database itself (not of catalog semantics).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("catalog database URL `{url}` is not supported: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("catalog database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("catalog schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("catalog database has no inlet schema (or an old one): run `inlet metastore migrate` or set `catalog.migrate_on_start`")]
    NotMigrated,
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt { what: String, reason: String },
}

impl StoreError {
    /// Conflicts a retry of the whole transaction resolves.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Sql(e) => is_retryable_sql(e),
            _ => false,
        }
    }

    /// A unique-key violation (the object already exists).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Sql(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }
}

fn is_retryable_sql(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                // 1213 deadlock, 1205 lock wait timeout, 9007 TiDB write
                // conflict, 8002/8022 TiDB "can not retry" transaction errors.
                return matches!(my.number(), 1213 | 1205 | 9007 | 8002 | 8022 | 8028);
            }
            // SQLite: BUSY (5), LOCKED (6) and their extended codes.
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            matches!(code.as_str(), "5" | "6" | "261" | "517" | "262")
                || db.message().contains("database is locked")
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => false,
        _ => false,
    }
}

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/mysql");

/// Boxed future borrowed from a connection, the shape a transaction body has.
pub type TxFuture<'c, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>;

/// The catalog database.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// Readers; on SQLite also the WAL readers, which never block the writer.
    read: AnyPool,
    /// Writers. On SQLite a single connection: SQLite has one writer anyway,
    /// and queueing in the pool beats `BUSY` errors and retries.
    write: AnyPool,
    url_for_display: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).field("url", &self.url_for_display).finish()
    }
}

/// The URL with any password replaced, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

impl Store {
    /// Connects to `sqlite://PATH` (created when missing) or
    /// `mysql://user:password@host:port/database`.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let display = redact_url(url);
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let mut url = format!("sqlite:{rest}");
            if !url.contains("mode=") && !url.contains(":memory:") {
                url.push_str(if url.contains('?') { "&mode=rwc" } else { "?mode=rwc" });
            }
            (Backend::Sqlite, url)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") || url.starts_with("tidb:") {
            let rest = url.split_once(':').map(|(_, r)| r).unwrap_or_default();
            (Backend::MySql, format!("mysql:{rest}"))
        } else {
            return Err(StoreError::BadUrl { url: display, reason: "expected sqlite://, mysql:// (MySQL, MariaDB, TiDB)".into() });
        };
        let options: AnyConnectOptions = url.parse().map_err(|e: sqlx::Error| StoreError::BadUrl { url: display.clone(), reason: e.to_string() })?;
        let (read, write) = match backend {
            Backend::Sqlite => {
                let init = |max: u32| {
                    AnyPoolOptions::new().max_connections(max).acquire_timeout(Duration::from_secs(60)).after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the writer; the busy
                            // timeout covers other processes (an ingest and a
                            // metastore on one file).
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            Ok(())
                        })
                    })
                };
                let write = init(1).connect_with(options.clone()).await?;
                let read = init(8).connect_with(options).await?;
                (read, write)
            }
            Backend::MySql => {
                let pool = AnyPoolOptions::new().max_connections(32).acquire_timeout(Duration::from_secs(30)).connect_with(options).await?;
                (pool.clone(), pool)
            }
        };
        Ok(Store { backend, read, write, url_for_display: display })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::MySql => &MYSQL_MIGRATIONS,
        }
    }

    /// Applies pending migrations. On MySQL/TiDB sqlx takes `GET_LOCK`
    /// first, so replicas starting together never migrate at once. On SQLite
    /// sqlx takes no lock: two processes on one file (an ingest and
    /// `inlet jobs`, say) can both see a migration pending, and the second
    /// then fails on "table already exists". Each SQLite migration runs in
    /// its own transaction, so the loser changed nothing; running again
    /// re-reads what is applied and skips what the winner did.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.migrator().run(&self.write).await {
                Ok(()) => return Ok(()),
                Err(sqlx::migrate::MigrateError::Execute(e) | sqlx::migrate::MigrateError::ExecuteMigration(e, _))
                    if self.backend == Backend::Sqlite && attempt < 5 && matches!(e, sqlx::Error::Database(_)) =>
                {
                    debug!(attempt, error = %e, "catalog migration raced another process; re-reading applied migrations");
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Connects, then applies pending migrations when `migrate` (a
    /// configuration's `catalog.migrate_on_start`).
    pub async fn open(url: &str, migrate: bool) -> Result<Store, StoreError> {
        let store = Store::connect(url).await?;
        if migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Refuses to serve from a database whose schema is missing or older
    /// than this build's migrations.
    pub async fn check_schema(&self) -> Result<(), StoreError> {
        let newest = self.migrator().iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Result<Option<i64>, sqlx::Error> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE").fetch_one(&self.read).await;
        match applied {
            Ok(Some(v)) if v >= newest => Ok(()),
            Ok(_) => Err(StoreError::NotMigrated),
            Err(sqlx::Error::Database(_)) => Err(StoreError::NotMigrated),
            Err(e) => Err(e.into()),
        }
    }

    /// A connection for reads outside a transaction.
    pub async fn reader(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, StoreError> {
        Ok(self.read.acquire().await?)
    }

    /// Runs `body` in one transaction, retrying the whole transaction on
    /// conflicts that a retry resolves (with jittered backoff, up to ~10 s).
    pub async fn transact<T, E, F>(&self, mut body: F) -> Result<T, E>
    where
        F: for<'c> FnMut(&'c mut AnyConnection) -> TxFuture<'c, T, E>,
        E: From<StoreError> + RetryHint,
    {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = async {
                let mut conn = self.write.acquire().await.map_err(StoreError::from)?;
                let mut tx = conn.begin().await.map_err(StoreError::from)?;
                let value = body(&mut tx).await?;
                tx.commit().await.map_err(StoreError::from)?;
                Ok::<T, E>(value)
            }
            .await;
            match result {
                Err(e) if e.retryable() && attempt < 12 => {
                    let backoff = Duration::from_millis((10u64 << attempt.min(7)) + rand::random::<u64>() % 20);
                    debug!(attempt, ?backoff, "catalog transaction conflict; retrying");
                    if attempt == 6 {
                        warn!(attempt, "catalog transaction keeps conflicting; still retrying");
                    }
                    tokio::time::sleep(backoff).await;
                }
                other => return other,
            }
        }
    }
}

/// Whether an error is a transient conflict worth retrying the transaction.
pub trait RetryHint {
    fn retryable(&self) -> bool;
}

impl RetryHint for StoreError {
    fn retryable(&self) -> bool {
        self.is_retryable()
    }
}

/// A text column. MySQL reports TEXT columns as BLOB on the wire, so under
/// sqlx's `Any` driver they arrive as bytes there and as text on SQLite.
pub(crate) fn text(row: &sqlx::any::AnyRow, column: &str) -> Result<String, sqlx::Error> {
    use sqlx::Row;
    match row.try_get::<String, _>(column) {
        Ok(s) => Ok(s),
        Err(_) => {
            let bytes: Vec<u8> = row.try_get(column)?;
            String::from_utf8(bytes).map_err(|e| sqlx::Error::Decode(Box::new(e)))
        }
    }
}

/// A nullable text column (see [`text`]).
pub(crate) fn text_opt(row: &sqlx::any::AnyRow, column: &str) -> Result<Option<String>, sqlx::Error> {
    use sqlx::Row;
    match row.try_get::<Option<String>, _>(column) {
        Ok(s) => Ok(s),
        Err(_) => match row.try_get::<Option<Vec<u8>>, _>(column)? {
            Some(bytes) => String::from_utf8(bytes).map(Some).map_err(|e| sqlx::Error::Decode(Box::new(e))),
            None => Ok(None),
        },
    }
}

/// A new row id. Ids are random 63-bit numbers rather than AUTO_INCREMENT:
/// TiDB hands out AUTO_INCREMENT values in per-server batches, so their order
/// means nothing there, and application ids keep inserts free of a hot spot.
pub fn new_id() -> i64 {
    (rand::random::<u64>() >> 1).max(1) as i64
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Rows deleted per statement: big deletes are split so that no transaction
/// exceeds TiDB's size and entry limits.
pub const DELETE_BATCH: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;

    /// Several processes opening one new SQLite catalog at once (separate
    /// pools stand in for them) all end up migrated, none fails.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_sqlite_migrations_all_succeed() {
        for round in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}/catalog.db", dir.path().display());
            let mut stores = Vec::new();
            for _ in 0..6 {
                stores.push(Store::connect(&url).await.unwrap());
            }
            let results = futures::future::join_all(stores.iter().map(|s| s.migrate())).await;
            for r in results {
                r.unwrap_or_else(|e| panic!("round {round}: {e}"));
            }
            stores[0].check_schema().await.unwrap();
        }
    }
}
