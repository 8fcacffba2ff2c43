//! Publish: the last step of the flow (source -> decode -> buffer -> write ->
//! commit -> publish). Keeps each pipeline's Delta tables registered in the
//! catalog (`catalog.database_url`), so Spark, Trino and Hive see them.
//!
//! The catalog never blocks or loses an event: a publisher runs beside the
//! pipeline, reads the table's schema from the Delta log, and registers it
//! when it is new or has changed; when the catalog database is unreachable
//! it retries with backoff while ingestion goes on, and catches up from the
//! Delta log (the log, not the catalog, is the table's truth).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use inlet_config::Config;
use inlet_metastore::register::{register_delta, DeltaRegistration, Registered};
use inlet_metastore::{Actor, Catalog, Store};
use inlet_table::{DeltaTable, Location};
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// How long one registration attempt (connect included) may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// One table a publisher keeps registered.
#[derive(Debug, Clone)]
pub struct Published {
    pub database: String,
    pub table: String,
    pub location: Location,
}

/// Publishers of one process, sharing one catalog connection.
pub struct Publisher {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Publisher {
    /// Starts one publisher task per table. Does nothing (and returns an
    /// empty publisher) when the configuration names no catalog.
    pub fn start(config: &Arc<Config>, tables: Vec<(String, Published)>) -> Publisher {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        if let Some(catalog_config) = config.catalog.clone() {
            let catalog: Arc<tokio::sync::OnceCell<Catalog>> = Arc::new(tokio::sync::OnceCell::new());
            let warehouse = inlet_metastore::server::warehouse_uri(config);
            for (pipeline, table) in tables {
                let (catalog, catalog_config, warehouse, stopped) = (catalog.clone(), catalog_config.clone(), warehouse.clone(), stopped.clone());
                tasks.push(tokio::spawn(async move {
                    let connect = || async {
                        catalog
                            .get_or_try_init(|| async {
                                let store = Store::open(&catalog_config.database_url, catalog_config.migrate_on_start).await?;
                                Ok::<_, inlet_metastore::store::StoreError>(Catalog::new(store, &warehouse))
                            })
                            .await
                            .cloned()
                    };
                    publish_loop(&pipeline, &table, connect, stopped).await;
                }));
            }
        }
        Publisher { stop, tasks }
    }

    /// Stops the publishers after one last attempt each (bounded in time),
    /// so that a bounded run ends with its tables registered when the
    /// catalog is reachable.
    pub async fn finish(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
        }
    }
}

/// The registration the Delta log asks for (None until the table exists).
fn registration(table: &Published, delta: &DeltaTable, pipeline: &str) -> Option<DeltaRegistration> {
    let schema = delta.arrow_schema().ok()?;
    let partition_columns = delta.partition_columns().ok()?;
    Some(DeltaRegistration {
        database: table.database.clone(),
        table: table.table.clone(),
        location: table.location.engine_uri(),
        schema: schema.as_ref().clone(),
        partition_columns,
        properties: BTreeMap::from([("inlet.pipeline".to_string(), pipeline.to_string())]),
    })
}

async fn publish_loop<F, Fut>(pipeline: &str, table: &Published, connect: F, mut stopped: watch::Receiver<bool>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Catalog, inlet_metastore::store::StoreError>>,
{
    let actor = Actor::ingest(pipeline);
    let mut delta: Option<DeltaTable> = None;
    let mut registered: Option<DeltaRegistration> = None;
    let mut failures = 0u32;
    loop {
        let last_round = *stopped.borrow();
        // Read the table's current schema from the Delta log.
        match delta.as_mut() {
            Some(d) => {
                if let Err(e) = d.refresh().await {
                    debug!(pipeline, error = %e, "publish: cannot read the Delta log yet");
                }
            }
            None => delta = DeltaTable::open(&table.location).await.ok().flatten(),
        }
        let wanted = delta.as_ref().and_then(|d| registration(table, d, pipeline));
        if let Some(wanted) = wanted.filter(|w| registered.as_ref() != Some(w)) {
            // Bounded: a catalog that does not answer must not hold up the
            // last attempt of a stopping pipeline.
            let attempt = async {
                match connect().await {
                    Ok(catalog) => register_delta(&catalog, &actor, &wanted).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            };
            let result = match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {ATTEMPT_TIMEOUT:?}")),
            };
            match result {
                Ok(outcome) => {
                    if outcome != Registered::Unchanged || failures > 0 {
                        info!(pipeline, table = %format!("{}.{}", table.database, table.table), ?outcome, "table registered in the catalog");
                    }
                    failures = 0;
                    registered = Some(wanted);
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures % 20 == 0 {
                        warn!(pipeline, table = %format!("{}.{}", table.database, table.table), error = %e, attempts = failures, "catalog unreachable: ingestion goes on; registration will catch up from the Delta log");
                    }
                }
            }
        }
        if last_round {
            return;
        }
        // Quick while the table is new or the catalog is failing, slower
        // once everything is registered.
        let wait = if registered.is_none() || failures > 0 { Duration::from_millis(500 * u64::from(failures.clamp(1, 10))) } else { Duration::from_secs(2) };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.changed() => {}
        }
    }
}
