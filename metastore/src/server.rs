//! The metastore service: opens (and migrates) the catalog database, then
//! serves the Thrift API on its own threads and the REST API on the tokio
//! runtime, until shut down.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use inlet_config::Config;
use inlet_hms_thrift::hive_metastore::ThriftHiveMetastoreSyncProcessor;
use inlet_hms_thrift::{ServerOptions, Shutdown};
use tracing::{info, warn};

use crate::api::hms::Handler;
use crate::api::rest::{self, RestState};
use crate::catalog::{Catalog, CatalogError};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the metastore needs `catalog.database_url` (e.g. `sqlite:///var/lib/inlet/metastore.db` or `mysql://user:pw@host:3306/inlet`)")]
    NoCatalog,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("cannot listen on {address} ({what}): {source}")]
    Listen { what: &'static str, address: String, source: std::io::Error },
}

/// The catalog store named by a configuration, migrated when the
/// configuration says so, otherwise checked to be current.
pub async fn open_store(config: &Config) -> Result<Store, ServeError> {
    let catalog = config.catalog.as_ref().ok_or(ServeError::NoCatalog)?;
    let store = Store::connect(&catalog.database_url).await?;
    if catalog.migrate_on_start {
        store.migrate().await?;
    } else {
        store.check_schema().await?;
    }
    Ok(store)
}

/// The warehouse URI managed objects default to, as Hadoop clients write it.
pub fn warehouse_uri(config: &Config) -> String {
    let raw = config.metastore.warehouse.clone().unwrap_or_else(|| config.storage.warehouse.clone());
    if raw.contains("://") || raw.starts_with("file:") {
        return raw.trim_end_matches('/').to_string();
    }
    let path = std::path::Path::new(&raw);
    let abs = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf()) };
    format!("file:{}", abs.display()).trim_end_matches('/').to_string()
}

/// A running metastore.
pub struct Running {
    pub thrift_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub catalog: Catalog,
    shutdown: Shutdown,
    thrift: Option<std::thread::JoinHandle<()>>,
    http: tokio::task::JoinHandle<()>,
    http_stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    /// Stops both APIs: no new connections; calls in flight finish.
    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(tx) = self.http_stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thrift.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        let _ = (&mut self.http).await;
    }
}

/// Starts the metastore of `config` (listen addresses may use port 0) and
/// returns once both APIs accept connections.
pub async fn start(config: &Config) -> Result<Running, ServeError> {
    let store = open_store(config).await?;
    let catalog = Catalog::new(store, &warehouse_uri(config));
    catalog.ensure_default_database().await?;
    let purged = catalog.purge_orphans().await?;
    if purged > 0 {
        info!(rows = purged, "removed partitions left behind by dropped tables");
    }
    let metrics = Metrics::new();
    let mut config_values: BTreeMap<String, String> = BTreeMap::new();
    config_values.insert("hive.metastore.warehouse.dir".into(), catalog.warehouse().to_string());
    config_values.insert("hive.metastore.try.direct.sql".into(), "true".into());
    config_values.extend(config.metastore.config_values.clone());

    let listen = |what: &'static str, address: &str| std::net::TcpListener::bind(address).map_err(|source| ServeError::Listen { what, address: address.to_string(), source });
    let thrift_listener = listen("thrift", &config.metastore.thrift_listen)?;
    let http_listener = listen("http", &config.metastore.http_listen)?;
    let thrift_addr = thrift_listener.local_addr().map_err(|source| ServeError::Listen { what: "thrift", address: config.metastore.thrift_listen.clone(), source })?;
    let http_addr = http_listener.local_addr().map_err(|source| ServeError::Listen { what: "http", address: config.metastore.http_listen.clone(), source })?;

    let shutdown = Shutdown::new();
    let options = ServerOptions {
        max_connections: config.metastore.max_connections as usize,
        max_message_bytes: config.metastore.max_message_bytes as usize,
        ..ServerOptions::default()
    };
    let runtime = tokio::runtime::Handle::current();
    let thrift = {
        let (catalog, metrics, shutdown) = (catalog.clone(), metrics.clone(), shutdown.clone());
        let config_values = Arc::new(config_values);
        std::thread::Builder::new()
            .name("hms-accept".into())
            .spawn(move || {
                let factory = |conn| ThriftHiveMetastoreSyncProcessor::new(Handler::new(catalog.clone(), runtime.clone(), metrics.clone(), conn, (*config_values).clone()));
                if let Err(e) = inlet_hms_thrift::serve(thrift_listener, factory, options, shutdown) {
                    warn!(error = %e, "thrift server stopped");
                }
            })
            .map_err(|source| ServeError::Listen { what: "thrift", address: thrift_addr.to_string(), source })?
    };

    let tokens: BTreeMap<String, String> = config.metastore.tokens.iter().map(|t| (t.token.clone(), t.identity.clone())).collect();
    let state = RestState { catalog: catalog.clone(), metrics, tokens: Arc::new(tokens), storage: Some(Arc::new(config.storage.clone())) };
    http_listener.set_nonblocking(true).map_err(|source| ServeError::Listen { what: "http", address: http_addr.to_string(), source })?;
    let listener = tokio::net::TcpListener::from_std(http_listener).map_err(|source| ServeError::Listen { what: "http", address: http_addr.to_string(), source })?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(async move {
        let app = rest::router(state);
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = rx.await;
        })
        .await
        {
            warn!(error = %e, "REST server stopped");
        }
    });
    info!(thrift = %thrift_addr, http = %http_addr, warehouse = catalog.warehouse(), "metastore serving");
    Ok(Running { thrift_addr, http_addr, catalog, shutdown, thrift: Some(thrift), http, http_stop: Some(tx) })
}

/// `inlet metastore serve`: runs until SIGINT or SIGTERM.
pub async fn serve(config: &Config) -> Result<(), ServeError> {
    let running = start(config).await?;
    wait_for_signal().await;
    info!("metastore shutting down");
    running.stop().await;
    Ok(())
}

/// `inlet metastore migrate`: applies pending schema migrations.
pub async fn migrate(config: &Config) -> Result<(), ServeError> {
    let catalog = config.catalog.as_ref().ok_or(ServeError::NoCatalog)?;
    let store = Store::connect(&catalog.database_url).await?;
    store.migrate().await?;
    info!(database = %crate::store::redact_url(&catalog.database_url), "catalog schema is current");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
