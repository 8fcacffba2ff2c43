//! The [`Ledger`] over the metastore's catalog database: leases shared by
//! every compactor on the database (the Amoro pattern: a conditional UPDATE
//! decides the owner), run records readable at `GET /api/v1/runs`, and the
//! table's basic statistics (`numFiles`, `totalSize`, `numRows`) on its
//! catalog registration.

use std::time::Duration;

use inlet_metastore::store::runs::{self, RunRecord};
use inlet_metastore::store::{leases, now_ms};
use inlet_metastore::{Actor, Catalog, CatalogError};

use crate::ledger::{CompactionRun, Ledger, LedgerError, TableStats};

pub struct CatalogLedger {
    catalog: Catalog,
}

impl CatalogLedger {
    pub fn new(catalog: Catalog) -> Self {
        CatalogLedger { catalog }
    }
}

fn err(e: impl std::fmt::Display) -> LedgerError {
    LedgerError(e.to_string())
}

#[async_trait::async_trait]
impl Ledger for CatalogLedger {
    async fn try_acquire_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, LedgerError> {
        let (name, owner, ttl) = (name.to_string(), owner.to_string(), ttl.as_millis() as i64);
        self.catalog
            .store()
            .transact(|c| {
                let (name, owner) = (name.clone(), owner.clone());
                Box::pin(async move { leases::try_acquire(c, &name, &owner, ttl, now_ms()).await.map_err(CatalogError::from) })
            })
            .await
            .map_err(err)
    }

    async fn renew_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, LedgerError> {
        let (name, owner, ttl) = (name.to_string(), owner.to_string(), ttl.as_millis() as i64);
        self.catalog
            .store()
            .transact(|c| {
                let (name, owner) = (name.clone(), owner.clone());
                Box::pin(async move { leases::renew(c, &name, &owner, ttl, now_ms()).await.map_err(CatalogError::from) })
            })
            .await
            .map_err(err)
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<(), LedgerError> {
        let (name, owner) = (name.to_string(), owner.to_string());
        self.catalog
            .store()
            .transact(|c| {
                let (name, owner) = (name.clone(), owner.clone());
                Box::pin(async move { leases::release(c, &name, &owner).await.map(|_| ()).map_err(CatalogError::from) })
            })
            .await
            .map_err(err)
    }

    async fn record_run(&self, run: &CompactionRun) -> Result<(), LedgerError> {
        let record = RunRecord {
            run_id: run.run_id.clone(),
            kind: "compaction".into(),
            object_name: run.table.clone(),
            started_ms: run.started.timestamp_millis(),
            finished_ms: Some(run.finished.timestamp_millis()),
            outcome: run.outcome.as_str().into(),
            detail: serde_json::to_value(run).map_err(err)?,
        };
        self.catalog
            .store()
            .transact(|c| {
                let record = record.clone();
                Box::pin(async move { runs::put(c, &record).await.map_err(CatalogError::from) })
            })
            .await
            .map_err(err)
    }

    async fn update_table_stats(&self, table: &str, stats: TableStats) -> Result<(), LedgerError> {
        let actor = Actor { user: "compactor".into(), via: "compactor" };
        self.catalog.set_basic_stats_at(&actor, table, stats.files, stats.bytes, stats.rows).await.map(|_| ()).map_err(err)
    }
}
