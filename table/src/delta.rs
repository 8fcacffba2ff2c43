//! Delta tables as inlet writes them: created on first use, appended to with
//! one `txn` action per source partition in the same commit as the data, and
//! evolved by adding nullable columns.
//!
//! Concurrency: a commit is rejected when another writer advanced any of the
//! commit's transaction ids since they were last read (delta-rs's conflict
//! checker fails it with `ConcurrentTransaction`, and [`DeltaTable::commit`]
//! re-reads the ids when the table moved, see [`CommitError::Fenced`]).
//! Appends from other writers and `dataChange=false` rewrites (compaction) do
//! not conflict.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::arrow::datatypes::{Schema as ArrowSchema, SchemaRef};
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};
use deltalake::kernel::transaction::{CommitBuilder, CommitConflictError, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Add, MetadataExt, StructType, Transaction};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::{DeltaOperation, OutputMode, SaveMode};
use deltalake::writer::RecordBatchWriter;
use deltalake::{DeltaTableBuilder, DeltaTableError};
use tracing::{debug, info, instrument};

use crate::storage::Location;
use crate::TableError;

/// What a new table looks like.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub name: String,
    pub schema: SchemaRef,
    pub partition_columns: Vec<String>,
    /// Delta table properties (`delta.checkpointInterval`, ...).
    pub properties: HashMap<String, String>,
}

/// Why a commit did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Another writer committed progress for one of this commit's
    /// transaction ids: the caller's view of its progress is stale and it
    /// must re-read it before writing again.
    #[error("another writer committed progress for {app_id} (expected version {expected:?}, table has {found:?})")]
    Fenced { app_id: String, expected: Option<i64>, found: Option<i64> },
    #[error(transparent)]
    Table(#[from] TableError),
}

/// An open Delta table.
pub struct DeltaTable {
    inner: deltalake::DeltaTable,
    location: Location,
}

impl std::fmt::Debug for DeltaTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaTable").field("location", &self.location.display).field("version", &self.version()).finish()
    }
}

fn delta_err(location: &Location, source: DeltaTableError) -> TableError {
    TableError::Delta { location: location.display.clone(), source: Box::new(source) }
}

impl DeltaTable {
    /// Opens the table at `location`; `None` when no Delta table exists there.
    #[instrument(skip_all, fields(table = %location.display))]
    pub async fn open(location: &Location) -> Result<Option<Self>, TableError> {
        if location.backend == crate::storage::Backend::Local {
            // delta-rs refuses a local path that does not exist yet.
            let exists = location.url.to_file_path().map(|p| p.join("_delta_log").is_dir()).unwrap_or(false);
            if !exists {
                return Ok(None);
            }
        }
        let mut table = DeltaTableBuilder::from_url(location.url.clone())
            .map_err(|e| delta_err(location, e))?
            .with_storage_options(location.options.clone())
            .build()
            .map_err(|e| delta_err(location, e))?;
        match table.load().await {
            Ok(()) => Ok(Some(Self { inner: table, location: location.clone() })),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(delta_err(location, e)),
        }
    }

    /// Opens the table, creating it from `spec` when it does not exist. Two
    /// processes creating the same table at once both end up with the one
    /// that won.
    #[instrument(skip_all, fields(table = %location.display))]
    pub async fn open_or_create(location: &Location, spec: &TableSpec) -> Result<Self, TableError> {
        if let Some(t) = Self::open(location).await? {
            return Ok(t);
        }
        if location.backend == crate::storage::Backend::Local {
            let path = location.url.to_file_path().map_err(|_| TableError::InvalidLocation { location: location.display.clone(), reason: "not a local path".into() })?;
            std::fs::create_dir_all(&path).map_err(|e| TableError::Io { location: location.display.clone(), source: e })?;
        }
        let schema: StructType = spec.schema.as_ref().try_into_kernel().map_err(|e| delta_err(location, e.into()))?;
        let created = CreateBuilder::new()
            .with_location(location.uri())
            .with_storage_options(location.options.clone())
            .with_table_name(spec.name.clone())
            .with_columns(schema.fields().cloned())
            .with_partition_columns(spec.partition_columns.clone())
            .with_configuration(spec.properties.iter().map(|(k, v)| (k.clone(), Some(v.clone()))))
            .with_save_mode(SaveMode::ErrorIfExists)
            .await;
        match created {
            Ok(table) => {
                info!(version = table.version(), "created Delta table");
                Ok(Self { inner: table, location: location.clone() })
            }
            Err(e) => {
                // Lost a creation race: the winner's table is the table.
                match Self::open(location).await? {
                    Some(t) => Ok(t),
                    None => Err(delta_err(location, e)),
                }
            }
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The version of the loaded snapshot.
    pub fn version(&self) -> i64 {
        self.inner.version().map(|v| v as i64).unwrap_or(-1)
    }

    /// Live data files of the loaded snapshot: `(files, bytes, rows)`; rows
    /// only counts files whose statistics carry a row count.
    pub fn file_stats(&self) -> Result<(u64, u64, u64), TableError> {
        let snapshot = self.inner.snapshot().map_err(|e| delta_err(&self.location, e))?;
        let (mut files, mut bytes, mut rows) = (0u64, 0u64, 0u64);
        for f in snapshot.log_data().iter() {
            files += 1;
            bytes += f.size().max(0) as u64;
            rows += f.num_records().unwrap_or(0).max(0) as u64;
        }
        Ok((files, bytes, rows))
    }

    pub fn arrow_schema(&self) -> Result<SchemaRef, TableError> {
        let snapshot = self.inner.snapshot().map_err(|e| delta_err(&self.location, e))?;
        let schema: ArrowSchema = snapshot.schema().as_ref().try_into_arrow().map_err(|e| delta_err(&self.location, e.into()))?;
        Ok(Arc::new(schema))
    }

    pub fn partition_columns(&self) -> Result<Vec<String>, TableError> {
        let snapshot = self.inner.snapshot().map_err(|e| delta_err(&self.location, e))?;
        Ok(snapshot.metadata().partition_columns().to_vec())
    }

    /// Reads new commits, if any.
    pub async fn refresh(&mut self) -> Result<(), TableError> {
        self.inner.update_incremental(None).await.map_err(|e| delta_err(&self.location, e))
    }

    /// The last version committed under `app_id`, as of the loaded snapshot.
    pub async fn txn_version(&self, app_id: &str) -> Result<Option<i64>, TableError> {
        let snapshot = self.inner.snapshot().map_err(|e| delta_err(&self.location, e))?;
        snapshot
            .transaction_version(self.inner.log_store().as_ref(), app_id)
            .await
            .map_err(|e| delta_err(&self.location, e))
    }

    /// A Parquet writer for this table's current schema.
    pub fn writer(&self, target_file_size_bytes: u64) -> Result<RecordBatchWriter, TableError> {
        Ok(RecordBatchWriter::for_table(&self.inner)
            .map_err(|e| delta_err(&self.location, e))?
            .with_target_file_size(target_file_size_bytes))
    }

    /// Adds the columns of `schema` that the table lacks, as nullable columns
    /// (works on partitioned tables too). Returns whether anything changed.
    #[instrument(skip_all, fields(table = %self.location.display))]
    pub async fn add_columns(&mut self, schema: &SchemaRef) -> Result<bool, TableError> {
        self.refresh().await?;
        let current = self.arrow_schema()?;
        let mut fields: Vec<_> = current.fields().iter().cloned().collect();
        let mut added = Vec::new();
        for f in schema.fields() {
            if current.field_with_name(f.name()).is_err() {
                fields.push(Arc::new(f.as_ref().clone().with_nullable(true)));
                added.push(f.name().clone());
            }
        }
        if added.is_empty() {
            return Ok(false);
        }
        let merged = ArrowSchema::new_with_metadata(fields, current.metadata().clone());
        let kernel: StructType = (&merged).try_into_kernel().map_err(|e| delta_err(&self.location, e.into()))?;
        let snapshot = self.inner.snapshot().map_err(|e| delta_err(&self.location, e))?;
        let metadata = snapshot.metadata().clone().with_schema(&kernel).map_err(|e| delta_err(&self.location, e.into()))?;
        let op = DeltaOperation::AddColumn { fields: kernel.fields().filter(|f| added.contains(f.name())).cloned().collect() };
        CommitBuilder::default()
            .with_actions(vec![Action::Metadata(metadata)])
            .build(Some(snapshot), self.inner.log_store(), op)
            .await
            .map_err(|e| delta_err(&self.location, e.into()))?;
        self.refresh().await?;
        info!(columns = ?added, version = self.version(), "added columns");
        Ok(true)
    }

    /// Commits `adds` together with one `txn` per `(app_id, version)`.
    ///
    /// `expected` holds, per app id, the version this writer last saw (None:
    /// never written). When another writer committed in between, the ids are
    /// re-read and a mismatch fails with [`CommitError::Fenced`] before
    /// anything is written; the conflict checker covers the window after.
    #[instrument(skip_all, fields(table = %self.location.display, files = adds.len()))]
    pub async fn commit(
        &mut self,
        adds: Vec<Add>,
        txns: &[(String, i64)],
        expected: &HashMap<String, Option<i64>>,
        query_id: &str,
    ) -> Result<i64, CommitError> {
        let before = self.version();
        self.refresh().await?;
        if self.version() != before {
            for (app_id, exp) in expected {
                let found = self.txn_version(app_id).await?;
                if found != *exp {
                    return Err(CommitError::Fenced { app_id: app_id.clone(), expected: *exp, found });
                }
            }
        }
        let now = chrono::Utc::now().timestamp_millis();
        let props = CommitProperties::default()
            .with_application_transactions(txns.iter().map(|(id, v)| Transaction::new_with_last_update(id, *v, Some(now))).collect())
            .with_create_checkpoint(true)
            .with_cleanup_expired_logs(Some(true));
        let snapshot = self.inner.snapshot().map_err(|e| delta_err(&self.location, e))?;
        let op = DeltaOperation::StreamingUpdate { output_mode: OutputMode::Append, query_id: query_id.to_string(), epoch_id: now };
        let result = CommitBuilder::from(props)
            .with_actions(adds.into_iter().map(Action::Add).collect())
            .build(Some(snapshot), self.inner.log_store(), op)
            .await;
        match result {
            Ok(finalized) => {
                let version = finalized.version() as i64;
                self.inner.state = Some(finalized.snapshot());
                debug!(version, "committed");
                Ok(version)
            }
            Err(DeltaTableError::Transaction { source: TransactionError::CommitConflict(CommitConflictError::ConcurrentTransaction) }) => {
                let app_id = txns.first().map(|(a, _)| a.clone()).unwrap_or_default();
                Err(CommitError::Fenced { app_id, expected: None, found: None })
            }
            Err(e) => Err(CommitError::Table(delta_err(&self.location, e))),
        }
    }

    /// The underlying delta-rs table, for reads.
    pub fn delta(&self) -> &deltalake::DeltaTable {
        &self.inner
    }
}
