//! The lineage store: OpenLineage events recorded as a graph of jobs and
//! datasets (edges: a job reads or writes a dataset), runs with their state
//! and times, dataset symlinks (a table's `hive://` name), and the dataset
//! versions each run read and wrote with the times of the latency path.
//!
//! Recording is a set of upserts in one transaction, keyed by ids hashed
//! from names, so replaying an event (a retried delivery, the same event
//! through two transports) leaves the graph, versions and run state as they
//! were; only the run's delivery count grows. Run state follows the event
//! times: a terminal state (COMPLETE, ABORT, FAIL) is never replaced by a
//! later non-terminal one, and an older event never replaces a newer state.
//!
//! Queries walk the graph a level at a time (one `IN (...)` query per hop),
//! resolving symlinks to the dataset they name.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use inlet_lineage::facets::{self, read_inlet_kafka};
use inlet_lineage::model::{format_time, RunEvent};
use inlet_lineage::query::*;
use inlet_lineage::transport::store::{LineageStore, Recorded};
use inlet_lineage::DatasetId;
use sqlx::{AnyConnection, Row};

use super::{now_ms, Backend, Store, StoreError};

/// A 63-bit FNV-1a hash: stable across builds and platforms (unlike std's
/// hasher), so ids computed by any process agree.
fn fnv(parts: &[&str]) -> i64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0;
            h = h.wrapping_mul(0x100000001b3);
        }
        for b in p.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    ((h >> 1) as i64).max(1)
}

pub fn dataset_id(namespace: &str, name: &str) -> i64 {
    fnv(&["dataset", namespace, name])
}

pub fn job_id(namespace: &str, name: &str) -> i64 {
    fnv(&["job", namespace, name])
}

fn insert_ignore(backend: Backend) -> (&'static str, &'static str) {
    match backend {
        Backend::Sqlite => ("INSERT INTO", " ON CONFLICT DO NOTHING"),
        Backend::MySql => ("INSERT IGNORE INTO", ""),
    }
}

/// `new` when it is set and greater than `old`, else `old` (NULL-safe max).
fn greatest(old: &str, new: &str) -> String {
    format!("CASE WHEN {new} IS NOT NULL AND ({old} IS NULL OR {new} > {old}) THEN {new} ELSE {old} END")
}

fn excluded(backend: Backend, col: &str) -> String {
    match backend {
        Backend::Sqlite => format!("excluded.{col}"),
        Backend::MySql => format!("VALUES({col})"),
    }
}

fn upsert_head(backend: Backend, key: &str) -> String {
    match backend {
        Backend::Sqlite => format!(" ON CONFLICT({key}) DO UPDATE SET "),
        Backend::MySql => " ON DUPLICATE KEY UPDATE ".to_string(),
    }
}

async fn upsert_dataset(conn: &mut AnyConnection, b: Backend, id: &DatasetId, version: Option<i64>, newest_event_ms: Option<i64>, now: i64) -> Result<i64, StoreError> {
    let did = dataset_id(&id.namespace, &id.name);
    let sql = format!(
        "INSERT INTO lineage_datasets (dataset_id, namespace, name, current_version, newest_event_ms, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?){}current_version = {}, newest_event_ms = {}, updated_ms = {}",
        upsert_head(b, "dataset_id"),
        greatest("current_version", &excluded(b, "current_version")),
        greatest("newest_event_ms", &excluded(b, "newest_event_ms")),
        excluded(b, "updated_ms"),
    );
    sqlx::query(&sql).bind(did).bind(&id.namespace).bind(&id.name).bind(version).bind(newest_event_ms).bind(now).bind(now).execute(&mut *conn).await?;
    Ok(did)
}

async fn upsert_symlink(conn: &mut AnyConnection, b: Backend, dataset: i64, alias: i64, link_type: &str, now: i64) -> Result<(), StoreError> {
    let sql = format!("INSERT INTO lineage_symlinks (dataset_id, alias_id, link_type, updated_ms) VALUES (?, ?, ?, ?){}updated_ms = {}", upsert_head(b, "dataset_id, alias_id"), excluded(b, "updated_ms"));
    sqlx::query(&sql).bind(dataset).bind(alias).bind(link_type).bind(now).execute(&mut *conn).await?;
    Ok(())
}

async fn upsert_edge(conn: &mut AnyConnection, b: Backend, job: i64, dataset: i64, direction: &str, run_id: &str, now: i64) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO lineage_edges (job_id, dataset_id, direction, first_seen_ms, last_seen_ms, last_run_id) VALUES (?, ?, ?, ?, ?, ?){}last_seen_ms = {}, last_run_id = {}",
        upsert_head(b, "job_id, dataset_id, direction"),
        excluded(b, "last_seen_ms"),
        excluded(b, "last_run_id")
    );
    sqlx::query(&sql).bind(job).bind(dataset).bind(direction).bind(now).bind(now).bind(run_id).execute(&mut *conn).await?;
    Ok(())
}

#[derive(Debug, Default, Clone)]
struct VersionRow {
    committed_ms: Option<i64>,
    oldest_event_ms: Option<i64>,
    newest_event_ms: Option<i64>,
    oldest_kafka_ms: Option<i64>,
    newest_kafka_ms: Option<i64>,
    rows: Option<i64>,
    bytes: Option<i64>,
    files: Option<i64>,
}

/// Inserts a version row unless present; returns whether it was new.
#[allow(clippy::too_many_arguments)]
async fn insert_version(conn: &mut AnyConnection, b: Backend, dataset: i64, version: i64, run_id: &str, role: &str, job: i64, v: &VersionRow, now: i64) -> Result<bool, StoreError> {
    let (head, tail) = insert_ignore(b);
    let sql = format!("{head} lineage_versions (dataset_id, version, run_id, role, job_id, committed_ms, stored_ms, oldest_event_ms, newest_event_ms, oldest_kafka_ms, newest_kafka_ms, row_count, size_bytes, file_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?){tail}");
    let r = sqlx::query(&sql)
        .bind(dataset)
        .bind(version)
        .bind(run_id)
        .bind(role)
        .bind(job)
        .bind(v.committed_ms)
        .bind(now)
        .bind(v.oldest_event_ms)
        .bind(v.newest_event_ms)
        .bind(v.oldest_kafka_ms)
        .bind(v.newest_kafka_ms)
        .bind(v.rows)
        .bind(v.bytes)
        .bind(v.files)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

fn ms(t: Option<chrono::DateTime<chrono::Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp_millis())
}

/// Records one event in the caller's transaction.
pub async fn record(conn: &mut AnyConnection, b: Backend, e: &RunEvent, now: i64) -> Result<Recorded, StoreError> {
    let job = job_id(&e.job.namespace, &e.job.name);
    let run_id = e.run.run_id.to_string();
    let event_ms = e.event_time.timestamp_millis();
    let (processing, integration, job_type) = facets::read_job_type(&e.job.facets);
    let sql = format!(
        "INSERT INTO lineage_jobs (job_id, namespace, name, processing_type, integration, job_type, latest_run_id, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?){}processing_type = COALESCE({}, processing_type), integration = COALESCE({}, integration), job_type = COALESCE({}, job_type), latest_run_id = {}, updated_ms = {}",
        upsert_head(b, "job_id"),
        excluded(b, "processing_type"),
        excluded(b, "integration"),
        excluded(b, "job_type"),
        excluded(b, "latest_run_id"),
        excluded(b, "updated_ms")
    );
    sqlx::query(&sql).bind(job).bind(&e.job.namespace).bind(&e.job.name).bind(processing).bind(integration).bind(job_type).bind(&run_id).bind(now).bind(now).execute(&mut *conn).await?;

    // The run: a skeleton row first (so concurrent first events do not
    // collide), then its state by the rules in the module docs.
    let (head, tail) = insert_ignore(b);
    sqlx::query(&format!("{head} lineage_runs (run_id, job_id, state, started_ms, ended_ms, state_ms, updated_ms, events, error_message, facets_json) VALUES (?, ?, ?, NULL, NULL, ?, ?, 0, NULL, NULL){tail}"))
        .bind(&run_id)
        .bind(job)
        .bind(e.event_type.as_str())
        .bind(i64::MIN / 2)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    let row = sqlx::query("SELECT state, state_ms, started_ms, ended_ms FROM lineage_runs WHERE run_id = ?").bind(&run_id).fetch_one(&mut *conn).await?;
    let old_state = super::text(&row, "state")?;
    let old_ms: i64 = row.try_get("state_ms")?;
    let started: Option<i64> = row.try_get("started_ms")?;
    let ended: Option<i64> = row.try_get("ended_ms")?;
    let old_terminal = matches!(old_state.as_str(), "COMPLETE" | "ABORT" | "FAIL") && old_ms > i64::MIN / 2;
    let new_terminal = e.event_type.is_terminal();
    let apply = if old_terminal { new_terminal && event_ms >= old_ms } else { new_terminal || event_ms >= old_ms };
    // The run started at its earliest event (START, or the first seen).
    let started = Some(started.map_or(event_ms, |s| s.min(event_ms)));
    let ended = if new_terminal && apply { Some(event_ms) } else { ended };
    let error = e.run.facets.get(facets::keys::ERROR_MESSAGE).and_then(|f| f.get("message")).and_then(|m| m.as_str()).map(str::to_string);
    if apply {
        let facets_json = serde_json::to_string(&e.run.facets).unwrap_or_default();
        sqlx::query("UPDATE lineage_runs SET state = ?, state_ms = ?, started_ms = ?, ended_ms = ?, updated_ms = ?, events = events + 1, error_message = COALESCE(?, error_message), facets_json = ? WHERE run_id = ?")
            .bind(e.event_type.as_str())
            .bind(event_ms)
            .bind(started)
            .bind(ended)
            .bind(now)
            .bind(error)
            .bind(facets_json)
            .bind(&run_id)
            .execute(&mut *conn)
            .await?;
    } else {
        sqlx::query("UPDATE lineage_runs SET started_ms = ?, updated_ms = ?, events = events + 1 WHERE run_id = ?").bind(started).bind(now).bind(&run_id).execute(&mut *conn).await?;
    }

    let kafka = read_inlet_kafka(&e.run.facets);
    let newest_event_ms = kafka.as_ref().and_then(|k| ms(k.newest_event_time));
    let mut recorded = Recorded::default();
    let datasets = e.inputs.iter().map(|d| (&d.namespace, &d.name, &d.facets, None, "input")).chain(e.outputs.iter().map(|d| (&d.namespace, &d.name, &d.facets, Some(&d.output_facets), "output")));
    for (ns, name, dfacets, out_facets, direction) in datasets {
        let id = DatasetId::new(ns, name);
        let version = facets::read_version(dfacets);
        let is_output = direction == "output";
        let did = upsert_dataset(conn, b, &id, if is_output { version } else { None }, if is_output { newest_event_ms } else { None }, now).await?;
        let links = facets::read_symlinks(dfacets);
        for (link, kind) in &links {
            let alias = upsert_dataset(conn, b, link, None, None, now).await?;
            upsert_symlink(conn, b, did, alias, kind, now).await?;
        }
        upsert_edge(conn, b, job, did, direction, &run_id, now).await?;
        let Some(version) = version else { continue };
        let label = links.first().map(|(l, _)| l.name.clone()).unwrap_or_else(|| id.to_string());
        if !is_output {
            insert_version(conn, b, did, version, &run_id, "read", job, &VersionRow::default(), now).await?;
            continue;
        }
        let stats = out_facets.and_then(facets::read_output_statistics);
        let mut row = VersionRow { rows: stats.and_then(|s| s.0), bytes: stats.and_then(|s| s.1), files: stats.and_then(|s| s.2), ..Default::default() };
        match &kafka {
            // inlet's streaming runs: only the events that report a commit.
            Some(k) => match &k.commit {
                Some(c) if c.version == version => {
                    row.committed_ms = Some(c.committed_at.timestamp_millis());
                    row.oldest_event_ms = ms(c.oldest_event_time);
                    row.newest_event_ms = ms(c.newest_event_time);
                    row.oldest_kafka_ms = ms(c.oldest_kafka_timestamp);
                    row.newest_kafka_ms = ms(c.newest_kafka_timestamp);
                }
                _ => continue,
            },
            // Batch runs and other producers: the version as of the event.
            None => row.committed_ms = Some(event_ms),
        }
        if insert_version(conn, b, did, version, &run_id, "written", job, &row, now).await? {
            if let Some(c) = row.committed_ms {
                recorded.commit_to_store_seconds.push((label.clone(), (now - c) as f64 / 1000.0));
            }
            if let Some(o) = row.oldest_event_ms {
                recorded.event_to_store_seconds.push((label.clone(), (now - o) as f64 / 1000.0));
            }
        }
    }
    Ok(recorded)
}

/// The lineage store over the catalog database.
#[derive(Clone, Debug)]
pub struct LineageDb {
    store: Store,
}

impl LineageDb {
    pub fn new(store: Store) -> LineageDb {
        LineageDb { store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Deletes dataset versions recorded before `cutoff_ms` and runs that
    /// ended before it (the graph of jobs, datasets and edges is kept), in
    /// statements of at most [`super::DELETE_BATCH`] rows. Returns the rows
    /// deleted.
    pub async fn prune(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let b = self.store.backend();
        let mut total = 0u64;
        for (table, col, key) in [("lineage_versions", "stored_ms", "rowid"), ("lineage_runs", "ended_ms", "rowid")] {
            let sql = match b {
                Backend::Sqlite => format!("DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {col} < ? LIMIT {})", super::DELETE_BATCH),
                Backend::MySql => format!("DELETE FROM {table} WHERE {col} < ? LIMIT {}", super::DELETE_BATCH),
            };
            loop {
                let sql = sql.clone();
                let n = self
                    .store
                    .transact(move |conn| {
                        let sql = sql.clone();
                        Box::pin(async move { Ok::<u64, StoreError>(sqlx::query(&sql).bind(cutoff_ms).execute(conn).await?.rows_affected()) })
                    })
                    .await?;
                total += n;
                if n < super::DELETE_BATCH as u64 {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// The newest event time recorded for a dataset (a restarted pipeline
    /// seeds its freshness with it).
    pub async fn newest_event_ms(&self, id: &DatasetId) -> Result<Option<i64>, StoreError> {
        let mut conn = self.store.reader().await?;
        let row = sqlx::query("SELECT newest_event_ms FROM lineage_datasets WHERE dataset_id = ?").bind(dataset_id(&id.namespace, &id.name)).fetch_optional(&mut *conn).await?;
        Ok(match row {
            Some(r) => r.try_get("newest_event_ms")?,
            None => None,
        })
    }

    /// Records one event (its own transaction, retried on conflicts).
    pub async fn record_event(&self, e: &RunEvent) -> Result<Recorded, StoreError> {
        let b = self.store.backend();
        let e = std::sync::Arc::new(e.clone());
        self.store
            .transact(move |conn| {
                let e = e.clone();
                Box::pin(async move { record(conn, b, &e, now_ms()).await })
            })
            .await
    }
}

#[async_trait::async_trait]
impl LineageStore for LineageDb {
    async fn record(&self, event: &RunEvent) -> Result<Recorded, String> {
        self.record_event(event).await.map_err(|e| e.to_string())
    }
}

/// The lineage store of a catalog database, connected on first use: a
/// catalog that is down when a process starts costs events (which the
/// transport retries), never the start of ingestion or compaction.
pub struct LazyLineageDb {
    url: String,
    migrate: bool,
    db: tokio::sync::OnceCell<LineageDb>,
    /// Versions and ended runs older than this are pruned, at most hourly
    /// (None: kept forever).
    retention: Option<std::time::Duration>,
    last_prune: parking_lot::Mutex<Option<std::time::Instant>>,
}

/// The emitter of a configuration's `lineage.transports`, with the catalog
/// database as the lineage store when a transport asks for it. Never fails:
/// a transport that cannot be built disables events, and that is logged.
pub fn emitter(config: &inlet_config::Config) -> inlet_lineage::Emitter {
    let store: Option<std::sync::Arc<dyn LineageStore>> = match (&config.catalog, inlet_lineage::wants_store(config)) {
        (Some(c), true) => Some(std::sync::Arc::new(LazyLineageDb::new(&c.database_url, c.migrate_on_start).with_retention_days(config.lineage.retention_days))),
        _ => None,
    };
    inlet_lineage::emitter(config, store).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "lineage events disabled");
        inlet_lineage::Emitter::disabled()
    })
}

impl LazyLineageDb {
    pub fn new(url: &str, migrate: bool) -> LazyLineageDb {
        LazyLineageDb { url: url.to_string(), migrate, db: tokio::sync::OnceCell::new(), retention: None, last_prune: parking_lot::Mutex::new(None) }
    }

    /// Prunes what is older than `days` days (0: nothing) while recording.
    pub fn with_retention_days(mut self, days: u64) -> Self {
        self.retention = (days > 0).then(|| std::time::Duration::from_secs(days * 86_400));
        self
    }
}

#[async_trait::async_trait]
impl LineageStore for LazyLineageDb {
    async fn record(&self, event: &RunEvent) -> Result<Recorded, String> {
        let db = self
            .db
            .get_or_try_init(|| async {
                Ok::<_, StoreError>(LineageDb::new(Store::open(&self.url, self.migrate).await?))
            })
            .await
            .map_err(|e| e.to_string())?;
        let recorded = db.record(event).await?;
        if let Some(keep) = self.retention {
            let due = {
                let mut last = self.last_prune.lock();
                let due = last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(3600));
                if due {
                    *last = Some(std::time::Instant::now());
                }
                due
            };
            if due {
                match db.prune(now_ms() - keep.as_millis() as i64).await {
                    Ok(n) if n > 0 => tracing::info!(rows = n, "lineage store: pruned versions and runs past the retention"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "lineage store: pruning failed; retried in an hour"),
                }
            }
        }
        Ok(recorded)
    }
}

fn unavailable(e: impl std::fmt::Display) -> QueryError {
    QueryError::Unavailable(e.to_string())
}

fn iso(ms: Option<i64>) -> Option<String> {
    ms.and_then(chrono::DateTime::from_timestamp_millis).map(|t| format_time(&t))
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Node {
    Dataset(i64),
    Job(i64),
}

impl LineageDb {
    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, QueryError> {
        self.store.reader().await.map_err(unavailable)
    }

    /// (job, dataset) pairs of edges in `direction` touching the given ids
    /// on the side `by` (`job_id` or `dataset_id`).
    async fn edges(&self, by: &str, ids: &[i64], direction: &str) -> Result<Vec<(i64, i64)>, QueryError> {
        let mut out = Vec::new();
        let mut conn = self.conn().await?;
        for chunk in ids.chunks(500) {
            let sql = format!("SELECT job_id, dataset_id FROM lineage_edges WHERE direction = ? AND {by} IN ({})", placeholders(chunk.len()));
            let mut q = sqlx::query(&sql).bind(direction);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&mut *conn).await.map_err(unavailable)? {
                out.push((r.try_get::<i64, _>("job_id").map_err(unavailable)?, r.try_get::<i64, _>("dataset_id").map_err(unavailable)?));
            }
        }
        out.sort();
        Ok(out)
    }

    async fn dataset_names(&self, ids: &[i64]) -> Result<HashMap<i64, (DatasetId, Option<i64>, Option<i64>, i64)>, QueryError> {
        let mut out = HashMap::new();
        let mut conn = self.conn().await?;
        for chunk in ids.chunks(500) {
            let sql = format!("SELECT dataset_id, namespace, name, current_version, newest_event_ms, updated_ms FROM lineage_datasets WHERE dataset_id IN ({})", placeholders(chunk.len()));
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&mut *conn).await.map_err(unavailable)? {
                let id: i64 = r.try_get("dataset_id").map_err(unavailable)?;
                let ds = DatasetId::new(super::text(&r, "namespace").map_err(unavailable)?, super::text(&r, "name").map_err(unavailable)?);
                out.insert(id, (ds, r.try_get("current_version").map_err(unavailable)?, r.try_get("newest_event_ms").map_err(unavailable)?, r.try_get("updated_ms").map_err(unavailable)?));
            }
        }
        Ok(out)
    }

    /// Symlinks of physical datasets.
    async fn symlinks(&self, ids: &[i64]) -> Result<HashMap<i64, Vec<DatasetId>>, QueryError> {
        let mut pairs = Vec::new();
        {
            let mut conn = self.conn().await?;
            for chunk in ids.chunks(500) {
                let sql = format!("SELECT dataset_id, alias_id FROM lineage_symlinks WHERE dataset_id IN ({})", placeholders(chunk.len()));
                let mut q = sqlx::query(&sql);
                for id in chunk {
                    q = q.bind(*id);
                }
                for r in q.fetch_all(&mut *conn).await.map_err(unavailable)? {
                    pairs.push((r.try_get::<i64, _>("dataset_id").map_err(unavailable)?, r.try_get::<i64, _>("alias_id").map_err(unavailable)?));
                }
            }
        }
        let names = self.dataset_names(&pairs.iter().map(|p| p.1).collect::<Vec<_>>()).await?;
        let mut out: HashMap<i64, Vec<DatasetId>> = HashMap::new();
        for (d, a) in pairs {
            if let Some((n, ..)) = names.get(&a) {
                out.entry(d).or_default().push(n.clone());
            }
        }
        for v in out.values_mut() {
            v.sort();
        }
        Ok(out)
    }

    async fn job_names(&self, ids: &[i64]) -> Result<HashMap<i64, (String, String)>, QueryError> {
        let mut out = HashMap::new();
        let mut conn = self.conn().await?;
        for chunk in ids.chunks(500) {
            let sql = format!("SELECT job_id, namespace, name FROM lineage_jobs WHERE job_id IN ({})", placeholders(chunk.len()));
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&mut *conn).await.map_err(unavailable)? {
                out.insert(r.try_get("job_id").map_err(unavailable)?, (super::text(&r, "namespace").map_err(unavailable)?, super::text(&r, "name").map_err(unavailable)?));
            }
        }
        Ok(out)
    }

    /// The physical dataset or job a reference names.
    async fn resolve(&self, r: &NodeRef) -> Result<Node, QueryError> {
        let mut conn = self.conn().await?;
        let physical = |alias: i64| async move {
            let mut conn = self.conn().await?;
            let row = sqlx::query("SELECT dataset_id FROM lineage_symlinks WHERE alias_id = ? ORDER BY updated_ms DESC LIMIT 1").bind(alias).fetch_optional(&mut *conn).await.map_err(unavailable)?;
            Ok::<_, QueryError>(match row {
                Some(r) => r.try_get::<i64, _>("dataset_id").map_err(unavailable)?,
                None => alias,
            })
        };
        match r {
            NodeRef::Dataset { namespace, name } => {
                let id = dataset_id(namespace, name);
                let found = sqlx::query("SELECT dataset_id FROM lineage_datasets WHERE dataset_id = ?").bind(id).fetch_optional(&mut *conn).await.map_err(unavailable)?;
                if found.is_none() {
                    return Err(QueryError::NotFound(format!("no dataset {} in the lineage store", DatasetId::new(namespace, name))));
                }
                drop(conn);
                Ok(Node::Dataset(physical(id).await?))
            }
            NodeRef::Table { table } => {
                let name = table.to_ascii_lowercase();
                if !name.contains('.') {
                    return Err(QueryError::Invalid(format!("`{table}`: expected a table as `database.table`")));
                }
                let rows = sqlx::query("SELECT d.dataset_id AS dataset_id, s.dataset_id AS target FROM lineage_datasets d JOIN lineage_symlinks s ON s.alias_id = d.dataset_id WHERE d.name = ? ORDER BY s.updated_ms DESC")
                    .bind(&name)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(unavailable)?;
                match rows.first() {
                    Some(r) => Ok(Node::Dataset(r.try_get("target").map_err(unavailable)?)),
                    None => Err(QueryError::NotFound(format!("no dataset in the lineage store is table `{name}` (tables are linked to their catalog name when the pipeline has a catalog)"))),
                }
            }
            NodeRef::Job { namespace, name } => {
                let id = job_id(namespace, name);
                let found = sqlx::query("SELECT job_id FROM lineage_jobs WHERE job_id = ?").bind(id).fetch_optional(&mut *conn).await.map_err(unavailable)?;
                match found {
                    Some(_) => Ok(Node::Job(id)),
                    None => Err(QueryError::NotFound(format!("no job {namespace}/{name} in the lineage store"))),
                }
            }
        }
    }

    /// Breadth-first walk; returns nodes with their depth and the edges.
    async fn walk(&self, start: Node, direction: Direction, depth: u32) -> Result<(BTreeMap<Node, u32>, BTreeSet<(Node, Node)>, bool), QueryError> {
        let mut nodes: BTreeMap<Node, u32> = BTreeMap::from([(start, 0)]);
        let mut edges = BTreeSet::new();
        let mut truncated = false;
        let (mut ds_frontier, mut job_frontier): (Vec<i64>, Vec<i64>) = match start {
            Node::Dataset(d) => (vec![d], vec![]),
            Node::Job(j) => (vec![], vec![j]),
        };
        let mut hops = 0u32;
        loop {
            if !ds_frontier.is_empty() {
                // Datasets -> the jobs that write them (upstream) or read them.
                let dir = if direction == Direction::Upstream { "output" } else { "input" };
                let pairs = self.edges("dataset_id", &ds_frontier, dir).await?;
                if hops >= depth {
                    truncated = pairs.iter().any(|(j, _)| !nodes.contains_key(&Node::Job(*j)));
                    break;
                }
                hops += 1;
                let mut next = Vec::new();
                for (j, d) in pairs {
                    let (dn, jn) = (Node::Dataset(d), Node::Job(j));
                    edges.insert(if direction == Direction::Upstream { (jn, dn) } else { (dn, jn) });
                    if !nodes.contains_key(&jn) {
                        nodes.insert(jn, nodes[&dn] + 1);
                        next.push(j);
                    }
                }
                job_frontier = next;
            }
            if job_frontier.is_empty() {
                break;
            }
            let dir = if direction == Direction::Upstream { "input" } else { "output" };
            let pairs = self.edges("job_id", &job_frontier, dir).await?;
            let mut next = Vec::new();
            for (j, d) in pairs {
                let (dn, jn) = (Node::Dataset(d), Node::Job(j));
                edges.insert(if direction == Direction::Upstream { (dn, jn) } else { (jn, dn) });
                if !nodes.contains_key(&dn) {
                    nodes.insert(dn, nodes[&jn] + 1);
                    next.push(d);
                }
            }
            ds_frontier = next;
            job_frontier = Vec::new();
            if ds_frontier.is_empty() {
                break;
            }
        }
        Ok((nodes, edges, truncated))
    }

    async fn graph_nodes(&self, nodes: &BTreeMap<Node, u32>) -> Result<HashMap<Node, GraphNode>, QueryError> {
        let ds: Vec<i64> = nodes.keys().filter_map(|n| if let Node::Dataset(d) = n { Some(*d) } else { None }).collect();
        let jobs: Vec<i64> = nodes.keys().filter_map(|n| if let Node::Job(j) = n { Some(*j) } else { None }).collect();
        let dnames = self.dataset_names(&ds).await?;
        let links = self.symlinks(&ds).await?;
        let jnames = self.job_names(&jobs).await?;
        let mut out = HashMap::new();
        for (n, depth) in nodes {
            let g = match n {
                Node::Dataset(d) => {
                    let Some((id, ..)) = dnames.get(d) else { continue };
                    GraphNode { id: dataset_node_id(&id.namespace, &id.name), kind: "dataset".into(), namespace: id.namespace.clone(), name: id.name.clone(), depth: *depth, symlinks: links.get(d).cloned().unwrap_or_default() }
                }
                Node::Job(j) => {
                    let Some((ns, name)) = jnames.get(j) else { continue };
                    GraphNode { id: job_node_id(ns, name), kind: "job".into(), namespace: ns.clone(), name: name.clone(), depth: *depth, symlinks: Vec::new() }
                }
            };
            out.insert(*n, g);
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl LineageQuery for LineageDb {
    async fn jobs(&self) -> Result<Vec<JobView>, QueryError> {
        let mut conn = self.conn().await?;
        let rows = sqlx::query("SELECT j.namespace AS namespace, j.name AS name, j.processing_type AS processing_type, j.job_type AS job_type, j.latest_run_id AS latest_run_id, r.state AS state, j.updated_ms AS updated_ms FROM lineage_jobs j LEFT JOIN lineage_runs r ON r.run_id = j.latest_run_id ORDER BY j.namespace, j.name")
            .fetch_all(&mut *conn)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                Ok(JobView {
                    namespace: super::text(r, "namespace")?,
                    name: super::text(r, "name")?,
                    processing_type: super::text_opt(r, "processing_type")?,
                    job_type: super::text_opt(r, "job_type")?,
                    latest_run_id: super::text_opt(r, "latest_run_id")?,
                    latest_run_state: super::text_opt(r, "state")?,
                    updated_at: iso(Some(r.try_get("updated_ms")?)).unwrap_or_default(),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    async fn datasets(&self) -> Result<Vec<DatasetView>, QueryError> {
        let ids: Vec<i64> = {
            let mut conn = self.conn().await?;
            let rows = sqlx::query("SELECT dataset_id FROM lineage_datasets WHERE dataset_id NOT IN (SELECT alias_id FROM lineage_symlinks)").fetch_all(&mut *conn).await.map_err(unavailable)?;
            rows.iter().map(|r| r.try_get::<i64, _>("dataset_id")).collect::<Result<_, _>>().map_err(unavailable)?
        };
        let names = self.dataset_names(&ids).await?;
        let links = self.symlinks(&ids).await?;
        let mut out: Vec<DatasetView> = names
            .into_iter()
            .map(|(id, (ds, version, newest, updated))| DatasetView { namespace: ds.namespace, name: ds.name, symlinks: links.get(&id).cloned().unwrap_or_default(), version, newest_event_time: iso(newest), updated_at: iso(Some(updated)).unwrap_or_default() })
            .collect();
        out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(out)
    }

    async fn graph(&self, start: &NodeRef, direction: Direction, depth: u32) -> Result<Graph, QueryError> {
        let node = self.resolve(start).await?;
        let (nodes, edges, truncated) = self.walk(node, direction, depth.min(100)).await?;
        let g = self.graph_nodes(&nodes).await?;
        let id = |n: &Node| g.get(n).map(|x| x.id.clone()).unwrap_or_default();
        let mut list: Vec<GraphNode> = g.values().cloned().collect();
        list.sort_by(|a, b| a.depth.cmp(&b.depth).then(a.id.cmp(&b.id)));
        Ok(Graph { start: id(&node), direction, depth, nodes: list, edges: edges.iter().map(|(a, b)| GraphEdge { from: id(a), to: id(b) }).collect(), truncated })
    }

    async fn runs(&self, job: &NodeRef, limit: u32) -> Result<Vec<RunView>, QueryError> {
        let Node::Job(jid) = self.resolve(job).await? else { return Err(QueryError::Invalid("runs are asked of a job: `--job NAME`".into())) };
        let (ns, name) = self.job_names(&[jid]).await?.remove(&jid).unwrap_or_default();
        let mut conn = self.conn().await?;
        let rows = sqlx::query(&format!("SELECT run_id, state, started_ms, ended_ms, updated_ms, events, error_message FROM lineage_runs WHERE job_id = ? ORDER BY COALESCE(started_ms, state_ms) DESC LIMIT {}", limit.clamp(1, 10_000)))
            .bind(jid)
            .fetch_all(&mut *conn)
            .await
            .map_err(unavailable)?;
        let mut runs = Vec::new();
        for r in &rows {
            runs.push(RunView {
                run_id: super::text(r, "run_id").map_err(unavailable)?,
                job_namespace: ns.clone(),
                job_name: name.clone(),
                state: super::text(r, "state").map_err(unavailable)?,
                started_at: iso(r.try_get("started_ms").map_err(unavailable)?),
                ended_at: iso(r.try_get("ended_ms").map_err(unavailable)?),
                updated_at: iso(Some(r.try_get("updated_ms").map_err(unavailable)?)).unwrap_or_default(),
                events: r.try_get("events").map_err(unavailable)?,
                error_message: super::text_opt(r, "error_message").map_err(unavailable)?,
                outputs: Vec::new(),
                inputs: Vec::new(),
            });
        }
        // Versions per run.
        let mut versions: Vec<(String, String, i64, i64, Option<i64>, Option<i64>, Option<i64>)> = Vec::new();
        for chunk in runs.chunks(200) {
            if chunk.is_empty() {
                continue;
            }
            let sql = format!("SELECT run_id, role, dataset_id, version, row_count, size_bytes, file_count FROM lineage_versions WHERE run_id IN ({}) ORDER BY version", placeholders(chunk.len()));
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q.bind(&r.run_id);
            }
            for r in q.fetch_all(&mut *conn).await.map_err(unavailable)? {
                versions.push((
                    super::text(&r, "run_id").map_err(unavailable)?,
                    super::text(&r, "role").map_err(unavailable)?,
                    r.try_get("dataset_id").map_err(unavailable)?,
                    r.try_get("version").map_err(unavailable)?,
                    r.try_get("row_count").map_err(unavailable)?,
                    r.try_get("size_bytes").map_err(unavailable)?,
                    r.try_get("file_count").map_err(unavailable)?,
                ));
            }
        }
        drop(conn);
        let names = self.dataset_names(&versions.iter().map(|v| v.2).collect::<Vec<_>>()).await?;
        for (run_id, role, did, version, rows, bytes, files) in versions {
            let Some((ds, ..)) = names.get(&did) else { continue };
            let Some(run) = runs.iter_mut().find(|r| r.run_id == run_id) else { continue };
            let v = OutputVersion { namespace: ds.namespace.clone(), name: ds.name.clone(), version, rows, bytes, files };
            if role == "read" { run.inputs.push(v) } else { run.outputs.push(v) }
        }
        Ok(runs)
    }

    async fn sources(&self, table: &NodeRef, depth: u32) -> Result<Sources, QueryError> {
        let start = self.resolve(table).await?;
        let Node::Dataset(tid) = start else { return Err(QueryError::Invalid("sources are asked of a table or dataset".into())) };
        let (nodes, edges, _) = self.walk(start, Direction::Upstream, depth.min(100)).await?;
        let g = self.graph_nodes(&nodes).await?;
        // Upstream adjacency: dataset -> its writers; job -> its inputs.
        let mut up: HashMap<Node, Vec<Node>> = HashMap::new();
        for (from, to) in &edges {
            up.entry(*to).or_default().push(*from);
        }
        let reads: HashSet<(Node, Node)> = edges.iter().filter(|(a, _)| matches!(a, Node::Dataset(_))).cloned().collect();
        let maintained_by: Vec<String> = up
            .get(&start)
            .map(|writers| writers.iter().filter(|j| reads.contains(&(start, **j))).filter_map(|j| g.get(j).map(|n| n.id.clone())).collect())
            .unwrap_or_default();
        let mut paths: Vec<Vec<String>> = Vec::new();
        let mut stack: Vec<(Node, Vec<Node>)> = vec![(start, vec![start])];
        while let Some((n, path)) = stack.pop() {
            if paths.len() >= 1000 {
                break;
            }
            let prev: Vec<Node> = up.get(&n).cloned().unwrap_or_default().into_iter().filter(|p| !path.contains(p)).collect();
            if prev.is_empty() {
                // A dataset with no writers is a source; a job whose inputs
                // are all on the path (compaction of the table) is not.
                if matches!(n, Node::Dataset(_)) && n != Node::Dataset(tid) && up.get(&n).is_none_or(|w| w.is_empty()) {
                    paths.push(path.iter().rev().filter_map(|x| g.get(x).map(|gn| gn.id.clone())).collect());
                }
                continue;
            }
            for p in prev {
                let mut next = path.clone();
                next.push(p);
                stack.push((p, next));
            }
        }
        paths.sort();
        let mut list: Vec<GraphNode> = g.values().cloned().collect();
        list.sort_by(|a, b| a.depth.cmp(&b.depth).then(a.id.cmp(&b.id)));
        let table_node = g.get(&start).cloned().ok_or_else(|| QueryError::NotFound("table vanished".into()))?;
        Ok(Sources { table: table_node, paths, maintained_by, nodes: list })
    }

    async fn latency(&self, table: &NodeRef, commits: u32) -> Result<LatencyView, QueryError> {
        let Node::Dataset(did) = self.resolve(table).await? else { return Err(QueryError::Invalid("latency is asked of a table or dataset".into())) };
        let (ds, _version, newest, _) = self.dataset_names(&[did]).await?.remove(&did).ok_or_else(|| QueryError::NotFound("dataset vanished".into()))?;
        let links = self.symlinks(&[did]).await?.remove(&did).unwrap_or_default();
        let mut conn = self.conn().await?;
        let rows = sqlx::query(&format!(
            "SELECT version, committed_ms, stored_ms, oldest_event_ms, oldest_kafka_ms FROM lineage_versions WHERE dataset_id = ? AND role = 'written' AND committed_ms IS NOT NULL AND newest_kafka_ms IS NOT NULL ORDER BY version DESC LIMIT {}",
            commits.clamp(1, 100_000)
        ))
        .bind(did)
        .fetch_all(&mut *conn)
        .await
        .map_err(unavailable)?;
        let mut stages: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let mut last: Option<(i64, i64)> = None;
        for r in &rows {
            let version: i64 = r.try_get("version").map_err(unavailable)?;
            let committed: i64 = r.try_get("committed_ms").map_err(unavailable)?;
            let stored: i64 = r.try_get("stored_ms").map_err(unavailable)?;
            let event: Option<i64> = r.try_get("oldest_event_ms").map_err(unavailable)?;
            let kafka: Option<i64> = r.try_get("oldest_kafka_ms").map_err(unavailable)?;
            if last.is_none() {
                last = Some((version, committed));
            }
            let s = |a: i64, b: i64| ((b - a) as f64 / 1000.0).max(0.0);
            if let (Some(e), Some(k)) = (event, kafka) {
                stages.entry("event_to_kafka").or_default().push(s(e, k));
            }
            if let Some(k) = kafka {
                stages.entry("kafka_to_commit").or_default().push(s(k, committed));
            }
            stages.entry("commit_to_catalog").or_default().push(s(committed, stored));
            if let Some(e) = event {
                stages.entry("event_to_catalog").or_default().push(s(e, stored));
            }
        }
        let order = ["event_to_kafka", "kafka_to_commit", "commit_to_catalog", "event_to_catalog"];
        let now = now_ms();
        Ok(LatencyView {
            dataset: ds,
            symlinks: links,
            newest_event_time: iso(newest),
            freshness_seconds: newest.map(|n| ((now - n) as f64 / 1000.0).max(0.0)),
            last_version: last.map(|l| l.0),
            last_committed_at: iso(last.map(|l| l.1)),
            commits: rows.len() as u64,
            stages: order.iter().map(|s| summarize(s, stages.remove(s).unwrap_or_default())).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use inlet_lineage::events::*;
    use inlet_lineage::facets::{EventTimeSource, PartitionOffset, SchemaField};
    use inlet_lineage::naming;

    async fn sqlite() -> (LineageDb, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("m.db").display())).await.unwrap();
        store.migrate().await.unwrap();
        (LineageDb::new(store), dir)
    }

    /// A fresh MariaDB database when `INLET_TEST_MYSQL_URL` is set.
    async fn mysql() -> Option<LineageDb> {
        let root = std::env::var("INLET_TEST_MYSQL_URL").ok()?;
        let name = format!("inlet_lineage_{}", uuid::Uuid::new_v4().simple());
        use sqlx::Connection;
        let mut c = sqlx::MySqlConnection::connect(&root).await.expect("MariaDB");
        sqlx::query(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")).execute(&mut c).await.unwrap();
        let store = Store::connect(&format!("{}/{name}", root.trim_end_matches('/'))).await.unwrap();
        store.migrate().await.unwrap();
        Some(LineageDb::new(store))
    }

    fn t(s: i64) -> chrono::DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
    }

    fn job() -> StreamingJob {
        StreamingJob {
            namespace: "inlet".into(),
            name: naming::ingest_job("orders"),
            bootstrap_servers: "b:9092".into(),
            consumer_group: "g".into(),
            topics: vec![naming::kafka("b:9092", "orders")],
            table: naming::storage("/wh/sales.db/orders"),
            table_symlink: Some(naming::hive("thrift://ms:9083", "sales", "orders")),
            dead_letter: None,
            event_time_source: EventTimeSource::KafkaTimestamp,
            column_lineage: Vec::new(),
        }
    }

    fn commit(version: i64, at: i64) -> CommitReport {
        CommitReport {
            version,
            committed_at: t(at),
            rows: 10,
            bytes: 100,
            files: 1,
            dead_letters: 0,
            offsets: vec![PartitionOffset { topic: "orders".into(), partition: 0, offset: version * 10 }],
            oldest_event: Some(t(at - 30)),
            newest_event: Some(t(at - 2)),
            oldest_kafka: Some(t(at - 20)),
            newest_kafka: Some(t(at - 1)),
            schema: Some(vec![SchemaField::new("id", "long")]),
        }
    }

    async fn scenario(db: &LineageDb) {
        let mut run = StreamingRun::new(job());
        db.record_event(&run.start(t(0), None, None)).await.unwrap();
        let r1 = run.running(commit(1, 40));
        let rec = db.record_event(&r1).await.unwrap();
        assert_eq!(rec.commit_to_store_seconds.len(), 1);
        assert_eq!(rec.commit_to_store_seconds[0].0, "sales.orders");
        // A replay changes nothing and reports no new commit.
        assert!(db.record_event(&r1).await.unwrap().commit_to_store_seconds.is_empty());
        db.record_event(&run.running(commit(2, 50))).await.unwrap();
        let complete = run.complete(t(60));
        db.record_event(&complete).await.unwrap();
        // A RUNNING arriving late never reverts a terminal state.
        db.record_event(&r1).await.unwrap();

        let compaction = BatchRun::new("inlet", &naming::compaction_job("sales.orders"), "COMPACTION", naming::storage("/wh/sales.db/orders"), Some(naming::hive("thrift://ms:9083", "sales", "orders")));
        db.record_event(&compaction.start(t(70), Some(2), None)).await.unwrap();
        db.record_event(&compaction.complete(t(80), &BatchOutcome { version_read: Some(2), version_written: Some(3), files_out: 1, bytes_out: 200, rows_out: Some(20) }, None)).await.unwrap();

        // Upstream of the table, by its catalog name.
        let up = db.graph(&NodeRef::Table { table: "Sales.Orders".into() }, Direction::Upstream, 5).await.unwrap();
        let ids: Vec<&str> = up.nodes.iter().map(|n| n.id.as_str()).collect();
        assert!(ids.contains(&"dataset:kafka://b:9092:orders"), "{ids:?}");
        assert!(ids.contains(&"job:inlet:ingest.orders"), "{ids:?}");
        assert!(ids.contains(&"job:inlet:compaction.sales.orders"), "{ids:?}");
        assert_eq!(up.nodes[0].symlinks, vec![naming::hive("thrift://ms:9083", "sales", "orders")]);
        assert!(up.edges.contains(&GraphEdge { from: "dataset:kafka://b:9092:orders".into(), to: "job:inlet:ingest.orders".into() }));
        assert!(!up.truncated);
        // Depth 1 stops at the writers of the table.
        let shallow = db.graph(&NodeRef::Table { table: "sales.orders".into() }, Direction::Upstream, 0).await.unwrap();
        assert_eq!(shallow.nodes.len(), 1);
        assert!(shallow.truncated);

        // Downstream of the topic reaches the table and its compaction.
        let down = db.graph(&NodeRef::Dataset { namespace: "kafka://b:9092".into(), name: "orders".into() }, Direction::Downstream, 5).await.unwrap();
        let ids: Vec<&str> = down.nodes.iter().map(|n| n.id.as_str()).collect();
        assert!(ids.contains(&"dataset:file:/wh/sales.db/orders") && ids.contains(&"job:inlet:compaction.sales.orders"), "{ids:?}");
        // A symlink name resolves to the dataset.
        let via_hive = db.graph(&NodeRef::Dataset { namespace: "hive://ms:9083".into(), name: "sales.orders".into() }, Direction::Upstream, 1).await.unwrap();
        assert_eq!(via_hive.start, "dataset:file:/wh/sales.db/orders");

        // Sources: topic -> ingest -> table, maintained by compaction.
        let s = db.sources(&NodeRef::Table { table: "sales.orders".into() }, 10).await.unwrap();
        assert_eq!(s.paths, vec![vec!["dataset:kafka://b:9092:orders".to_string(), "job:inlet:ingest.orders".into(), "dataset:file:/wh/sales.db/orders".into()]]);
        assert_eq!(s.maintained_by, vec!["job:inlet:compaction.sales.orders".to_string()]);

        // Runs and their versions.
        let runs = db.runs(&NodeRef::Job { namespace: "inlet".into(), name: "ingest.orders".into() }, 10).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].state, "COMPLETE");
        assert_eq!(runs[0].events, 6);
        assert_eq!(runs[0].outputs.iter().map(|o| o.version).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(runs[0].started_at.as_deref(), Some("2027-01-15T08:00:00.000Z"));
        let c = db.runs(&NodeRef::Job { namespace: "inlet".into(), name: "compaction.sales.orders".into() }, 10).await.unwrap();
        assert_eq!((c[0].inputs[0].version, c[0].outputs[0].version, c[0].outputs[0].files), (2, 3, Some(1)));

        // Latency over the commits of the ingest run only.
        let l = db.latency(&NodeRef::Table { table: "sales.orders".into() }, 100).await.unwrap();
        assert_eq!(l.commits, 2);
        assert_eq!(l.last_version, Some(2));
        let stage = |n: &str| l.stages.iter().find(|s| s.stage == n).unwrap().clone();
        assert_eq!(stage("event_to_kafka").max_seconds, Some(10.0));
        assert_eq!(stage("kafka_to_commit").max_seconds, Some(20.0));
        assert_eq!(stage("commit_to_catalog").count, 2);
        assert_eq!(l.newest_event_time.as_deref(), Some("2027-01-15T08:00:48.000Z"));
        assert!(l.freshness_seconds.is_some());

        let jobs = db.jobs().await.unwrap();
        assert_eq!(jobs.iter().map(|j| (j.name.as_str(), j.processing_type.as_deref())).collect::<Vec<_>>(), vec![("compaction.sales.orders", Some("BATCH")), ("ingest.orders", Some("STREAMING"))]);
        let ds = db.datasets().await.unwrap();
        assert_eq!(ds.len(), 2, "aliases are listed as symlinks, not datasets: {ds:?}");
        assert!(matches!(db.graph(&NodeRef::Table { table: "sales.nope".into() }, Direction::Upstream, 3).await, Err(QueryError::NotFound(_))));
        assert_eq!(db.newest_event_ms(&naming::storage("/wh/sales.db/orders")).await.unwrap(), Some(t(48).timestamp_millis()));
        assert_eq!(db.newest_event_ms(&naming::kafka("b:9092", "orders")).await.unwrap(), None);
        // Retention: versions by the time they were stored (now), runs by
        // the time they ended (the events' times, here in 2027). Nothing is
        // older than an hour ago; everything is older than t(1000). The
        // graph stays.
        assert_eq!(db.prune(now_ms() - 3_600_000).await.unwrap(), 0);
        let pruned = db.prune(now_ms().max(t(1000).timestamp_millis())).await.unwrap();
        assert_eq!(pruned, 4 + 2, "versions 1, 2 (ingest), 2 read and 3 written (compaction), and the two ended runs");
        assert!(db.runs(&NodeRef::Job { namespace: "inlet".into(), name: "ingest.orders".into() }, 10).await.unwrap().is_empty());
        assert_eq!(db.sources(&NodeRef::Table { table: "sales.orders".into() }, 10).await.unwrap().paths.len(), 1);
    }

    #[tokio::test]
    async fn sqlite_store_answers_the_lineage_questions() {
        let (db, _dir) = sqlite().await;
        scenario(&db).await;
    }

    #[tokio::test]
    async fn mariadb_store_answers_the_lineage_questions() {
        let Some(db) = mysql().await else {
            eprintln!("INLET_TEST_MYSQL_URL not set: MariaDB variant skipped");
            return;
        };
        scenario(&db).await;
    }

    #[test]
    fn ids_are_stable() {
        // Pinned: ids are stored, so the hash must never change.
        assert_eq!(dataset_id("kafka://b:9092", "orders"), dataset_id("kafka://b:9092", "orders"));
        assert_ne!(dataset_id("a", "bc"), dataset_id("ab", "c"));
        assert_eq!(fnv(&[""]), ((0xcbf29ce484222325u64 >> 1) as i64));
    }
}
