//! The catalog: Hive's metastore semantics over the store. Every operation
//! here is what one Thrift or REST call does — checks, Hive's defaults and
//! name rules, the rows written, and the audit entry in the same
//! transaction. Objects are Hive's own Thrift structs, so the Thrift API
//! passes them through and the REST API renders them (`crate::model`).

mod databases;
mod defaults;
mod functions;
mod locks;
mod partition_cache;
mod partitions;
mod relocate;
pub use relocate::Relocation;
mod stats;
mod tables;

use std::sync::Arc;

pub use defaults::{DDL_TIME, DEFAULT_DATABASE};
pub use tables::TableFilter;

use crate::store::{RetryHint, Store, StoreError};

/// What a catalog operation can fail with. Each kind maps to one Hive
/// exception type on the Thrift side and one HTTP status on the REST side.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Hive's NoSuchObjectException.
    #[error("{0}")]
    NoSuchObject(String),
    /// Hive's AlreadyExistsException.
    #[error("{0}")]
    AlreadyExists(String),
    /// Hive's InvalidObjectException: the object sent is malformed.
    #[error("{0}")]
    InvalidObject(String),
    /// Hive's InvalidOperationException: the object is fine, the operation
    /// is not allowed in the current state (e.g. dropping a non-empty
    /// database without cascade).
    #[error("{0}")]
    InvalidOperation(String),
    /// Hive's MetaException for bad input (an unparseable filter, a bad
    /// partition name).
    #[error("{0}")]
    Invalid(String),
    /// Hive's NoSuchLockException.
    #[error("{0}")]
    NoSuchLock(String),
    /// The catalog database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A concurrent transaction created the same object first: the
    /// transaction is retried (and then sees the object).
    #[error("{0}")]
    Conflict(String),
    /// Deleting a dropped object's data failed.
    #[error("{0}")]
    Storage(String),
}

impl RetryHint for CatalogError {
    fn retryable(&self) -> bool {
        matches!(self, CatalogError::Store(e) if e.is_retryable()) || matches!(self, CatalogError::Conflict(_))
    }
}

impl From<sqlx::Error> for CatalogError {
    fn from(e: sqlx::Error) -> Self {
        CatalogError::Store(e.into())
    }
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// Who performs a mutation, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: String,
    /// `thrift`, `rest` or `ingest`.
    pub via: &'static str,
}

impl Actor {
    pub fn thrift(user: Option<&str>) -> Actor {
        Actor { user: user.unwrap_or("anonymous").to_string(), via: "thrift" }
    }
    pub fn rest(identity: &str) -> Actor {
        Actor { user: identity.to_string(), via: "rest" }
    }
    pub fn ingest(pipeline: &str) -> Actor {
        Actor { user: format!("pipeline:{pipeline}"), via: "ingest" }
    }
    pub fn compactor(owner: &str) -> Actor {
        Actor { user: format!("compactor:{owner}"), via: "compactor" }
    }
}

/// The Hive-compatible catalog.
#[derive(Clone)]
pub struct Catalog {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// Where managed databases and tables go when no location is given
    /// (Hive's `hive.metastore.warehouse.dir`), without a trailing slash.
    warehouse: String,
    partitions: partition_cache::PartitionCache,
}

impl Catalog {
    /// A catalog over `store`, placing managed objects under `warehouse`
    /// (a URI such as `file:///data/warehouse` or `s3a://bucket/warehouse`).
    pub fn new(store: Store, warehouse: &str) -> Catalog {
        Catalog { inner: Arc::new(Inner { store, warehouse: warehouse.trim_end_matches('/').to_string(), partitions: Default::default() }) }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn warehouse(&self) -> &str {
        &self.inner.warehouse
    }

    /// Creates the `default` database when it is missing, as Hive does at
    /// start-up, so that clients find it.
    pub async fn ensure_default_database(&self) -> Result<()> {
        match self.get_database(DEFAULT_DATABASE).await {
            Ok(_) => Ok(()),
            Err(CatalogError::NoSuchObject(_)) => {
                let db = inlet_hms_thrift::hive_metastore::Database {
                    name: Some(DEFAULT_DATABASE.into()),
                    description: Some("Default Hive database".into()),
                    location_uri: Some(self.warehouse().to_string()),
                    parameters: Some(Default::default()),
                    owner_name: Some("public".into()),
                    owner_type: Some(inlet_hms_thrift::hive_metastore::PrincipalType::ROLE),
                    ..Default::default()
                };
                match self.create_database(&Actor { user: "inlet".into(), via: "startup" }, db).await {
                    Ok(()) | Err(CatalogError::AlreadyExists(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Removes, in batches of their own transactions, the partitions and
    /// statistics of dropped tables. Called after drops and at start-up (a
    /// crash between a drop and its purge leaves orphans behind).
    pub async fn purge_orphans(&self) -> Result<u64> {
        let mut total = 0;
        loop {
            let gone = self.store().transact(|c| Box::pin(async move { crate::store::objects::purge_orphans(c).await.map_err(CatalogError::from) })).await?;
            total += gone;
            if gone == 0 {
                return Ok(total);
            }
        }
    }

    /// Audit entries, newest first.
    pub async fn audit(&self, query: &crate::store::audit::AuditQuery) -> Result<Vec<crate::store::audit::AuditEntry>> {
        let mut conn = self.store().reader().await?;
        Ok(crate::store::audit::query(&mut conn, query).await?)
    }
}

/// Seconds since the epoch as Hive stores them (i32).
pub(crate) fn now_secs() -> i32 {
    (crate::store::now_ms() / 1000) as i32
}
