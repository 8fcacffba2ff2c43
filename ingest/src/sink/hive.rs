//! The Hive sink (`format: hive`): Parquet files in Hive partition
//! directories, partitions in the metastore, and each flush's progress and
//! files recorded in one catalog-database transaction (the table's log).
//!
//! A flush stages its files under `.inlet-staging/` (a name every reader
//! skips), adds the partitions it touches to the metastore, commits
//! progress and the file list, then renames the files into place. A commit
//! that is recorded but not yet fully renamed is finished by whichever
//! writer opens the table next (roll forward); staged files of commits that
//! never happened are deleted once they are older than the staging
//! retention. The protocol and its failure analysis: docs/hive-format.md.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deltalake::arrow::array::{Array, ArrayRef, StringArray, UInt32Array};
use deltalake::arrow::compute::{cast, take_record_batch};
use deltalake::arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::parquet::arrow::async_writer::AsyncArrowWriter;
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use futures::TryStreamExt;
use inlet_config::{CatalogConfig, EventTimeConfig, LateEvents, PartitionCommitConfig};
use inlet_hms_thrift::hive_metastore as hms;
use inlet_metastore::names::{make_part_name, parse_part_name, DEFAULT_PARTITION_NAME};
use inlet_metastore::register::{hive_arrow_schema, hive_file_schema, parquet_sd, register_hive, HiveRegistration};
use inlet_metastore::store::hive::{self as log, CommitFile, CommitRefused};
use inlet_metastore::store::{now_ms, Store};
use inlet_metastore::{Actor, Catalog, CatalogError};
use inlet_table::Location;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tracing::{debug, info, instrument, warn};

use super::{ClosedPartition, Commit, SinkError, TableSink};
use crate::partitioning::partition_span;

/// Directory (under the table) where files wait for their commit.
pub const STAGING_DIR: &str = ".inlet-staging";
/// Rows handed to the Parquet writer at a time, so a file can be cut at
/// the target size without encoding a whole partition's rows first.
const SLICE_ROWS: usize = 65_536;
const UPLOAD_PART_BYTES: usize = 8 * 1024 * 1024;
/// How often the set of closed partitions is re-read (other replicas close
/// partitions too).
const CLOSED_REFRESH: Duration = Duration::from_secs(30);
/// How often a long-running writer looks for abandoned staging files.
const CLEANUP_EVERY: Duration = Duration::from_secs(600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the table is and how to reach its catalog.
#[derive(Debug, Clone)]
pub struct HiveTarget {
    pub database: String,
    pub table: String,
    pub location: Location,
    pub catalog: CatalogConfig,
    /// The metastore's warehouse root, for databases it creates.
    pub warehouse: String,
    pub properties: BTreeMap<String, String>,
    pub target_file_size_bytes: u64,
    pub staging_retention: Duration,
    /// Who writes (the audit trail's actor).
    pub pipeline: String,
    /// Partition commit, with the event-time partitioning it closes.
    pub partition_commit: Option<(PartitionCommitConfig, EventTimeConfig)>,
}

pub struct HiveSink {
    target: HiveTarget,
    store: Arc<dyn ObjectStore>,
    key: String,
    catalog: Option<Catalog>,
    schema: Option<SchemaRef>,
    partition_columns: Vec<String>,
    /// Partitions known to exist in the metastore.
    known_partitions: HashSet<String>,
    /// Partition name -> directory relative to the table, for partitions
    /// compaction moved (the default is the partition name).
    locations: HashMap<String, String>,
    last_cleanup: Option<Instant>,
    /// Partitions closed so far (for `late_events: dead_letter`).
    closed: HashSet<String>,
    closed_refreshed: Option<Instant>,
}

fn write_err(target: &HiveTarget, reason: impl std::fmt::Display) -> SinkError {
    SinkError::Write { table: target.location.display.clone(), reason: reason.to_string() }
}

impl HiveSink {
    pub async fn open(target: HiveTarget) -> Result<Self, SinkError> {
        let store = target.location.object_store()?;
        let key = log::table_key(&target.location.display);
        let mut sink = Self { target, store, key, catalog: None, schema: None, partition_columns: Vec::new(), known_partitions: HashSet::new(), locations: HashMap::new(), last_cleanup: None, closed: HashSet::new(), closed_refreshed: None };
        // A catalog that does not answer now is retried by the first flush;
        // the pipeline starts either way.
        if let Err(e) = sink.load_table().await {
            warn!(table = %sink.target.location.display, error = %e, "catalog not reachable at start; retrying on first use");
        }
        Ok(sink)
    }

    async fn catalog(&mut self) -> Result<Catalog, SinkError> {
        if let Some(c) = &self.catalog {
            return Ok(c.clone());
        }
        let cfg = self.target.catalog.clone();
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
            Store::open(&cfg.database_url, cfg.migrate_on_start).await
        })
        .await;
        let store = match connected {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(write_err(&self.target, format!("catalog database: {e}"))),
            Err(_) => return Err(write_err(&self.target, format!("catalog database did not answer within {CONNECT_TIMEOUT:?}"))),
        };
        let catalog = Catalog::new(store, &self.target.warehouse);
        self.catalog = Some(catalog.clone());
        Ok(catalog)
    }

    fn actor(&self) -> Actor {
        Actor::ingest(&self.target.pipeline)
    }

    fn catalog_err(&self, e: CatalogError) -> SinkError {
        write_err(&self.target, format!("catalog: {e}"))
    }

    /// Reads the table's schema and partition columns from the catalog.
    async fn load_table(&mut self) -> Result<(), SinkError> {
        let catalog = self.catalog().await?;
        match catalog.get_table(&self.target.database, &self.target.table).await {
            Ok(t) => self.adopt(&t),
            Err(CatalogError::NoSuchObject(_)) => Ok(()),
            Err(e) => Err(self.catalog_err(e)),
        }
    }

    fn adopt(&mut self, t: &hms::Table) -> Result<(), SinkError> {
        let location = t.sd.as_ref().and_then(|s| s.location.clone()).unwrap_or_default();
        if location.trim_end_matches('/') != self.target.location.engine_uri().trim_end_matches('/') {
            return Err(SinkError::Write {
                table: self.target.location.display.clone(),
                reason: format!(
                    "the catalog already has {}.{} at {location}, not at this pipeline's location {}: drop it or name another table",
                    self.target.database, self.target.table, self.target.location.engine_uri()
                ),
            });
        }
        let Some(schema) = hive_arrow_schema(t) else {
            return Err(SinkError::Write {
                table: self.target.location.display.clone(),
                reason: format!("{}.{} exists in the catalog but was not created by inlet (no `inlet.arrow.schema` parameter)", self.target.database, self.target.table),
            });
        };
        self.partition_columns = t.partition_keys.iter().flatten().filter_map(|k| k.name.clone()).filter_map(|k| schema.fields().iter().find(|f| f.name().eq_ignore_ascii_case(&k)).map(|f| f.name().clone())).collect();
        self.schema = Some(Arc::new(schema));
        Ok(())
    }

    fn registration(&self, schema: &Schema) -> HiveRegistration {
        HiveRegistration {
            database: self.target.database.clone(),
            table: self.target.table.clone(),
            location: self.target.location.engine_uri().clone(),
            schema: schema.clone(),
            partition_columns: self.partition_columns.clone(),
            properties: self.target.properties.clone(),
        }
    }

    /// Finishes recorded commits whose files are not all in place (roll
    /// forward), then deletes staging left by writers that never committed.
    #[instrument(skip_all, fields(table = %self.target.location.display))]
    async fn recover(&mut self) -> Result<(), SinkError> {
        let catalog = self.catalog().await?;
        let pending = {
            let mut conn = catalog.store().reader().await.map_err(|e| write_err(&self.target, e))?;
            log::unpublished(&mut conn, &self.key).await.map_err(|e| write_err(&self.target, e))?
        };
        for commit in &pending {
            info!(seq = commit.seq, commit = %commit.commit_id, files = commit.files.len(), "publishing a recorded commit left unfinished");
            self.publish(&catalog, commit.seq, &commit.files).await?;
        }
        if self.last_cleanup.is_none_or(|t| t.elapsed() >= CLEANUP_EVERY) {
            self.clean_staging(&pending.iter().map(|c| c.commit_id.clone()).collect()).await?;
            self.last_cleanup = Some(Instant::now());
        }
        Ok(())
    }

    /// Makes a commit's files visible: renames each staged file to its final
    /// name. Idempotent: a file already in place counts as done.
    async fn publish(&self, catalog: &Catalog, seq: i64, files: &[CommitFile]) -> Result<(), SinkError> {
        for f in files {
            let (from, to) = (Path::from(f.staged.as_str()), Path::from(f.path.as_str()));
            match self.store.rename(&from, &to).await {
                Ok(()) => {}
                Err(object_store::Error::NotFound { .. }) => match self.store.head(&to).await {
                    Ok(_) => debug!(file = %f.path, "already published"),
                    Err(e) => {
                        return Err(write_err(&self.target, format!("commit {seq} records {} but neither it nor its staged copy {} exists: {e}", f.path, f.staged)));
                    }
                },
                Err(e) => return Err(write_err(&self.target, format!("publishing {}: {e}", f.path))),
            }
        }
        catalog
            .store()
            .transact(|c| {
                let key = self.key.clone();
                Box::pin(async move { log::mark_published(c, &key, seq, now_ms()).await })
            })
            .await
            .map_err(|e| write_err(&self.target, e))?;
        if let Some(commit_dir) = files.first().and_then(|f| f.staged.strip_prefix(&format!("{STAGING_DIR}/"))).and_then(|r| r.split('/').next()) {
            self.remove_empty_dirs(commit_dir);
        }
        Ok(())
    }

    /// Object stores have no directories; a local filesystem keeps the
    /// emptied staging directories of every commit unless told otherwise.
    fn remove_empty_dirs(&self, commit_dir: &str) {
        if let Ok(root) = self.target.location.url.to_file_path() {
            let dir = root.join(STAGING_DIR).join(commit_dir);
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    async fn clean_staging(&self, live: &HashSet<String>) -> Result<(), SinkError> {
        let retention = chrono::Duration::from_std(self.target.staging_retention).unwrap_or(chrono::Duration::hours(1));
        let cutoff = chrono::Utc::now() - retention;
        let prefix = Path::from(STAGING_DIR);
        let objects: Vec<_> = match self.store.list(Some(&prefix)).try_collect().await {
            Ok(o) => o,
            Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(write_err(&self.target, format!("listing {STAGING_DIR}: {e}"))),
        };
        // Per commit directory: its newest file decides its age.
        let mut dirs: HashMap<String, (chrono::DateTime<chrono::Utc>, Vec<Path>)> = HashMap::new();
        for o in objects {
            let rel = o.location.as_ref().strip_prefix(&format!("{STAGING_DIR}/")).unwrap_or(o.location.as_ref());
            let commit = rel.split('/').next().unwrap_or_default().to_string();
            let e = dirs.entry(commit).or_insert((o.last_modified, Vec::new()));
            e.0 = e.0.max(o.last_modified);
            e.1.push(o.location);
        }
        for (commit, (newest, paths)) in dirs {
            if live.contains(&commit) || newest > cutoff {
                continue;
            }
            info!(commit = %commit, files = paths.len(), "deleting staged files of a flush that never committed");
            for p in paths {
                if let Err(e) = self.store.delete(&p).await {
                    warn!(file = %p, error = %e, "could not delete abandoned staged file");
                }
            }
            self.remove_empty_dirs(&commit);
        }
        Ok(())
    }

    /// Makes sure every partition exists in the metastore before any of its
    /// files is visible.
    async fn add_partitions(&mut self, catalog: &Catalog, parts: &[(String, Vec<String>)]) -> Result<(), SinkError> {
        let missing: Vec<&(String, Vec<String>)> = parts.iter().filter(|(name, _)| !self.known_partitions.contains(name)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let schema = self.schema.clone().ok_or_else(|| write_err(&self.target, "the table has not been created"))?;
        let cols = self.registration(&schema).data_columns();
        let new: Vec<hms::Partition> = missing
            .iter()
            .map(|(name, values)| hms::Partition {
                values: Some(values.clone()),
                db_name: Some(self.target.database.clone()),
                table_name: Some(self.target.table.clone()),
                sd: Some(parquet_sd(cols.clone(), &format!("{}/{name}", self.target.location.engine_uri().trim_end_matches('/')))),
                parameters: Some(BTreeMap::new()),
                ..Default::default()
            })
            .collect();
        catalog.add_partitions(&self.actor(), &self.target.database, &self.target.table, new, true).await.map_err(|e| self.catalog_err(e))?;
        for (name, _) in missing {
            self.known_partitions.insert(name.clone());
        }
        Ok(())
    }

    fn file_schema(&self, table: &Schema) -> SchemaRef {
        hive_file_schema(table, &self.partition_columns)
    }

    /// Groups a batch's rows by partition: (partition name, values, rows),
    /// in order of first appearance.
    fn group_rows(&self, batch: &RecordBatch) -> Result<Vec<(String, Vec<String>, Vec<u32>)>, SinkError> {
        if self.partition_columns.is_empty() {
            return Ok(vec![(String::new(), Vec::new(), (0..batch.num_rows() as u32).collect())]);
        }
        let mut value_columns: Vec<StringArray> = Vec::new();
        for c in &self.partition_columns {
            let col = batch.column_by_name(c).ok_or_else(|| write_err(&self.target, format!("partition column `{c}` is missing from the batch")))?;
            let s = cast(col, &DataType::Utf8).map_err(|e| write_err(&self.target, format!("partition column `{c}`: {e}")))?;
            value_columns.push(s.as_any().downcast_ref::<StringArray>().expect("cast to Utf8 gives a StringArray").clone());
        }
        let keys: Vec<String> = self.partition_columns.iter().map(|c| c.to_lowercase()).collect();
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        // Hive's rule: a null or empty value is the default partition.
        fn value(a: &StringArray, row: usize) -> &str {
            if a.is_null(row) || a.value(row).is_empty() { DEFAULT_PARTITION_NAME } else { a.value(row) }
        }
        // Rows are looked up by one reused key buffer: nothing is allocated
        // per row, only per partition.
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut out: Vec<(String, Vec<String>, Vec<u32>)> = Vec::new();
        let mut key = String::new();
        for row in 0..batch.num_rows() {
            key.clear();
            for a in &value_columns {
                key.push_str(value(a, row));
                key.push('\u{1f}');
            }
            let at = match index.get(key.as_str()) {
                Some(&i) => i,
                None => {
                    let values: Vec<String> = value_columns.iter().map(|a| value(a, row).to_string()).collect();
                    let value_refs: Vec<&str> = values.iter().map(String::as_str).collect();
                    let name = make_part_name(&key_refs, &value_refs).map_err(|e| write_err(&self.target, e))?;
                    index.insert(key.clone(), out.len());
                    out.push((name, values, Vec::new()));
                    out.len() - 1
                }
            };
            out[at].2.push(row as u32);
        }
        Ok(out)
    }

    /// Splits a batch by partition into the rows of its files.
    fn split(&self, batch: &RecordBatch) -> Result<Vec<(String, Vec<String>, RecordBatch)>, SinkError> {
        let file_schema = self.file_schema(batch.schema().as_ref());
        let to_file = |b: &RecordBatch| -> Result<RecordBatch, SinkError> {
            let cols: Vec<ArrayRef> = file_schema
                .fields()
                .iter()
                .map(|f| {
                    let c = b.column_by_name(f.name()).expect("file columns are table columns");
                    if c.data_type() == f.data_type() { Ok(c.clone()) } else { cast(c, f.data_type()) }
                })
                .collect::<Result<_, _>>()
                .map_err(|e| write_err(&self.target, e))?;
            RecordBatch::try_new(file_schema.clone(), cols).map_err(|e| write_err(&self.target, e))
        };
        let mut out = Vec::new();
        for (name, values, rows) in self.group_rows(batch)? {
            let taken = if rows.len() == batch.num_rows() { batch.clone() } else { take_record_batch(batch, &UInt32Array::from(rows)).map_err(|e| write_err(&self.target, e))? };
            out.push((name, values, to_file(&taken)?));
        }
        Ok(out)
    }

    async fn refresh_closed(&mut self, catalog: &Catalog) -> Result<(), SinkError> {
        let mut conn = catalog.store().reader().await.map_err(|e| write_err(&self.target, e))?;
        self.closed = log::closed_partition_names(&mut conn, &self.key).await.map_err(|e| write_err(&self.target, e))?.into_iter().collect();
        self.closed_refreshed = Some(Instant::now());
        Ok(())
    }

    /// Closes one partition: `_SUCCESS`, statistics on the partition, and
    /// the close recorded at the commit its totals are as of. Each step is
    /// idempotent, so a crash in between only repeats them.
    async fn close(&mut self, catalog: &Catalog, p: &log::PartitionTotals) -> Result<ClosedPartition, SinkError> {
        self.store.put(&Path::from(format!("{}/_SUCCESS", p.location).as_str()), Vec::<u8>::new().into()).await.map_err(|e| write_err(&self.target, format!("writing {}/_SUCCESS: {e}", p.location)))?;
        let now = now_ms();
        let closed_at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now).unwrap_or_default().to_rfc3339();
        match catalog.get_partition_by_name(&self.target.database, &self.target.table, &p.part_name).await {
            Ok(mut part) => {
                let params = part.parameters.get_or_insert_with(BTreeMap::new);
                params.insert("numFiles".into(), p.num_files.to_string());
                params.insert("numRows".into(), p.num_rows.to_string());
                params.insert("totalSize".into(), p.total_size.to_string());
                params.insert("inlet.closed_at".into(), closed_at);
                params.insert("inlet.commit_seq".into(), p.commit_seq.to_string());
                catalog.alter_partitions(&self.actor(), &self.target.database, &self.target.table, vec![part]).await.map_err(|e| self.catalog_err(e))?;
            }
            // Dropped by an operator: the data and `_SUCCESS` stay, the
            // catalog is theirs to manage.
            Err(CatalogError::NoSuchObject(_)) => warn!(partition = %p.part_name, "closing a partition the catalog no longer has"),
            Err(e) => return Err(self.catalog_err(e)),
        }
        catalog
            .store()
            .transact(|c| {
                let (key, name, seq) = (self.key.clone(), p.part_name.clone(), p.commit_seq);
                Box::pin(async move { log::mark_closed(c, &key, &name, seq, now).await })
            })
            .await
            .map_err(|e| write_err(&self.target, e))?;
        self.closed.insert(p.part_name.clone());
        Ok(ClosedPartition { name: p.part_name.clone(), files: p.num_files as u64, rows: p.num_rows as u64, bytes: p.total_size as u64, recommit: p.closed_seq.is_some(), version: p.commit_seq })
    }

    /// Writes one partition's rows as one or more staged files, each cut
    /// near the target size.
    async fn stage(&self, commit_id: &str, partition: &str, batch: &RecordBatch, files: &mut Vec<CommitFile>) -> Result<(), SinkError> {
        let dir = match self.locations.get(partition) {
            Some(d) if !d.is_empty() => format!("{d}/"),
            _ if partition.is_empty() => String::new(),
            _ => format!("{partition}/"),
        };
        let mut offset = 0;
        while offset < batch.num_rows() {
            let name = format!("part-{commit_id}-{:05}.snappy.parquet", files.len());
            let staged = format!("{STAGING_DIR}/{commit_id}/{dir}{name}");
            let upload = BufWriter::with_capacity(self.store.clone(), Path::from(staged.as_str()), UPLOAD_PART_BYTES).with_max_concurrency(2);
            let mut writer = AsyncArrowWriter::try_new(upload, batch.schema(), Some(writer_properties())).map_err(|e| write_err(&self.target, e))?;
            let start = offset;
            while offset < batch.num_rows() {
                let n = SLICE_ROWS.min(batch.num_rows() - offset);
                writer.write(&batch.slice(offset, n)).await.map_err(|e| write_err(&self.target, format!("writing {staged}: {e}")))?;
                offset += n;
                if writer.bytes_written() as u64 + writer.in_progress_size() as u64 >= self.target.target_file_size_bytes {
                    break;
                }
            }
            writer.close().await.map_err(|e| write_err(&self.target, format!("writing {staged}: {e}")))?;
            let bytes = self.store.head(&Path::from(staged.as_str())).await.map(|m| m.size).map_err(|e| write_err(&self.target, format!("reading back {staged}: {e}")))?;
            files.push(CommitFile { partition: partition.to_string(), staged, path: format!("{dir}{name}"), rows: (offset - start) as u64, bytes });
        }
        Ok(())
    }
}

fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_created_by(format!("inlet {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A new commit id: time-ordered (so staging and file names sort by when
/// they were written) and unique per attempt.
fn new_commit_id() -> String {
    format!("{:013}-{}", now_ms(), &uuid::Uuid::new_v4().simple().to_string()[..12])
}

#[async_trait::async_trait]
impl TableSink for HiveSink {
    fn describe(&self) -> String {
        self.target.location.display.clone()
    }

    fn schema(&self) -> Option<SchemaRef> {
        self.schema.clone()
    }

    async fn progress(&mut self, app_ids: &[String]) -> Result<HashMap<String, Option<i64>>, SinkError> {
        // Another replica may have created or evolved the table, or left a
        // commit half published: settle all of it before reading progress.
        self.load_table().await?;
        self.known_partitions.clear();
        self.recover().await?;
        let catalog = self.catalog().await?;
        if self.target.partition_commit.is_some() {
            self.refresh_closed(&catalog).await?;
        }
        let mut conn = catalog.store().reader().await.map_err(|e| write_err(&self.target, e))?;
        self.locations = log::partition_locations(&mut conn, &self.key).await.map_err(|e| write_err(&self.target, e))?;
        let found = log::progress(&mut conn, &self.key, app_ids).await.map_err(|e| write_err(&self.target, e))?;
        Ok(app_ids.iter().map(|id| (id.clone(), found.get(id).copied())).collect())
    }

    async fn create(&mut self, schema: SchemaRef, partition_columns: Vec<String>) -> Result<(), SinkError> {
        self.load_table().await?;
        if self.schema.is_some() {
            // Created meanwhile (another replica): new fields arrive through
            // add_columns like any schema change.
            return Ok(());
        }
        self.partition_columns = partition_columns;
        let catalog = self.catalog().await?;
        let reg = self.registration(&schema);
        let (_, table) = register_hive(&catalog, &self.actor(), &reg).await.map_err(|e| self.catalog_err(e))?;
        self.adopt(&table)?;
        info!(table = %self.target.location.display, hive = %format!("{}.{}", self.target.database, self.target.table), "Hive table registered");
        Ok(())
    }

    async fn add_columns(&mut self, fields: &[FieldRef]) -> Result<(), SinkError> {
        let current = self.schema.clone().ok_or_else(|| write_err(&self.target, "the table has not been created"))?;
        let mut all: Vec<FieldRef> = current.fields().iter().cloned().collect();
        for f in fields {
            if !all.iter().any(|x| x.name() == f.name()) {
                all.push(Arc::new(f.as_ref().clone().with_nullable(true)));
            }
        }
        let catalog = self.catalog().await?;
        let reg = self.registration(&Schema::new(all));
        let (_, table) = register_hive(&catalog, &self.actor(), &reg).await.map_err(|e| self.catalog_err(e))?;
        self.adopt(&table)
    }

    #[instrument(skip_all, fields(table = %self.target.location.display))]
    async fn write(&mut self, batch: Option<RecordBatch>, txns: &[(String, i64)], expected: &HashMap<String, Option<i64>>) -> Result<Commit, SinkError> {
        let catalog = self.catalog().await?;
        if self.last_cleanup.is_none_or(|t| t.elapsed() >= CLEANUP_EVERY) {
            self.recover().await?;
        }
        let commit_id = new_commit_id();
        let mut files = Vec::new();
        let mut parts = Vec::new();
        if let Some(batch) = batch.filter(|b| b.num_rows() > 0) {
            for (name, values, rows) in self.split(&batch)? {
                self.stage(&commit_id, &name, &rows, &mut files).await?;
                if !name.is_empty() {
                    parts.push((name, values));
                }
            }
            self.add_partitions(&catalog, &parts).await?;
        }

        let (key, location) = (self.key.clone(), self.target.location.display.clone());
        let recorded = catalog
            .store()
            .transact(|c| {
                let (key, location, commit_id, files, txns, expected) = (key.clone(), location.clone(), commit_id.clone(), files.clone(), txns.to_vec(), expected.clone());
                Box::pin(async move { log::commit(c, &key, &location, &commit_id, &txns, &expected, &files, now_ms()).await })
            })
            .await;
        let seq = match recorded {
            Ok(seq) => seq,
            Err(CommitRefused::Fenced { app_id, expected, found }) => {
                // Nothing of this attempt was recorded: its staged files are
                // nobody's and can go now rather than after the retention.
                for f in &files {
                    let _ = self.store.delete(&Path::from(f.staged.as_str())).await;
                }
                return Err(SinkError::Fenced(format!("{app_id}: expected {expected:?}, table has {found:?}")));
            }
            Err(CommitRefused::Moved { partition, location }) => {
                for f in &files {
                    let _ = self.store.delete(&Path::from(f.staged.as_str())).await;
                }
                self.locations.insert(partition.clone(), location.clone());
                return Err(write_err(&self.target, format!("partition {partition} moved to {location} (compaction) while the flush was written; writing it again")));
            }
            // The outcome is unknown (the commit may have landed): keep the
            // staged files; the retry is fenced if it did, and recovery
            // then publishes them.
            Err(CommitRefused::Store(e)) => return Err(write_err(&self.target, format!("recording the commit: {e}"))),
        };
        self.publish(&catalog, seq, &files).await?;
        Ok(Commit { version: seq, files: files.len(), rows: files.iter().map(|f| f.rows as usize).sum(), bytes: files.iter().map(|f| f.bytes).sum() })
    }

    #[instrument(skip_all, fields(table = %self.target.location.display))]
    async fn close_partitions(&mut self, watermark_micros: i64) -> Result<Vec<ClosedPartition>, SinkError> {
        let Some((pc, et)) = self.target.partition_commit.clone() else { return Ok(Vec::new()) };
        let catalog = self.catalog().await?;
        if self.closed_refreshed.is_none_or(|t| t.elapsed() >= CLOSED_REFRESH) {
            self.refresh_closed(&catalog).await?;
        }
        let open = {
            let mut conn = catalog.store().reader().await.map_err(|e| write_err(&self.target, e))?;
            log::open_partitions(&mut conn, &self.key).await.map_err(|e| write_err(&self.target, e))?
        };
        let delay = pc.delay_secs as i64 * 1_000_000;
        let derived: Vec<String> = et.partitions.iter().map(|d| d.column.to_lowercase()).collect();
        let mut closed = Vec::new();
        for p in open {
            let pairs = match parse_part_name(&p.part_name) {
                Ok(pairs) => pairs,
                Err(e) => {
                    warn!(partition = %p.part_name, error = %e, "cannot read the partition name; not closing it");
                    continue;
                }
            };
            let values: Option<Vec<&str>> = derived.iter().map(|c| pairs.iter().find(|(k, _)| k == c).map(|(_, v)| v.as_str())).collect();
            let Some(values) = values else { continue };
            // The default partition (no event time) has no end: never closed.
            let end = match partition_span(&et, &values) {
                Ok((_, end)) => end,
                Err(_) => continue,
            };
            if end.saturating_add(delay) > watermark_micros {
                continue;
            }
            let c = self.close(&catalog, &p).await?;
            info!(partition = %c.name, files = c.files, rows = c.rows, bytes = c.bytes, recommit = c.recommit, "partition closed");
            closed.push(c);
        }
        Ok(closed)
    }

    fn late_rows(&self, batch: &RecordBatch) -> Vec<(usize, String)> {
        let dead_letter = matches!(&self.target.partition_commit, Some((pc, _)) if pc.late_events == LateEvents::DeadLetter);
        if !dead_letter || self.closed.is_empty() {
            return Vec::new();
        }
        let Ok(groups) = self.group_rows(batch) else { return Vec::new() };
        let mut out = Vec::new();
        for (name, _, rows) in groups {
            if self.closed.contains(&name) {
                let reason = format!("late event: partition {name} of {} is closed (partition_commit.late_events = dead_letter)", self.target.location.display);
                out.extend(rows.into_iter().map(|r| (r as usize, reason.clone())));
            }
        }
        out
    }
}
