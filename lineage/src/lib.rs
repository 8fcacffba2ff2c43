//! Lineage and latency: OpenLineage 2-0-2 events of inlet's jobs
//! ([`model`], [`facets`], [`naming`], [`events`]), delivered by an
//! [`Emitter`] that never blocks its caller to HTTP receivers, JSON-lines
//! files and the catalog's lineage store ([`transport`]); the questions the
//! store answers ([`query`]) and `inlet lineage` ([`cli`], [`client`]); and
//! per-table freshness, end-to-end latency and alerts ([`latency`]).
//!
//! The lineage store itself is SQL in the metastore crate
//! (`inlet_metastore::store::lineage`), which implements
//! [`transport::LineageStore`] and [`query::LineageQuery`].

pub mod cli;
pub mod client;
pub mod emitter;
pub mod events;
pub mod facets;
pub mod latency;
pub mod metrics;
pub mod model;
pub mod naming;
pub mod query;
pub mod transport;

#[cfg(test)]
mod spec_tests;

use std::sync::Arc;
use std::time::Duration;

use inlet_config::{Config, LineageTransport};

pub use emitter::{Emitter, Transport, TransportError};
pub use model::{EventType, RunEvent};
pub use naming::DatasetId;

/// The emitter a configuration asks for (`lineage.transports`). `store` is
/// the catalog's lineage store, needed when a `catalog` transport is listed.
pub fn emitter(config: &Config, store: Option<Arc<dyn transport::LineageStore>>) -> Result<Emitter, String> {
    let mut transports: Vec<Arc<dyn Transport>> = Vec::new();
    for t in &config.lineage.transports {
        match t {
            LineageTransport::Http { url, token, timeout_ms, retries } => {
                transports.push(Arc::new(transport::HttpTransport::new(url, token.clone(), Duration::from_millis(*timeout_ms), *retries)?));
            }
            LineageTransport::File { path } => transports.push(Arc::new(transport::FileTransport::new(path))),
            LineageTransport::Catalog => match &store {
                Some(s) => transports.push(Arc::new(transport::StoreTransport::new(s.clone()))),
                None => return Err("lineage transport `catalog` needs the catalog database (`catalog.database_url`)".into()),
            },
        }
    }
    Ok(Emitter::new(transports, config.lineage.queue_capacity.clamp(1, 10_000_000) as usize))
}

/// Whether the configuration lists the catalog transport.
pub fn wants_store(config: &Config) -> bool {
    config.lineage.transports.iter().any(|t| matches!(t, LineageTransport::Catalog))
}

/// The Hive namespace of the configuration's metastore.
pub fn hive_namespace(config: &Config) -> String {
    naming::hive_namespace(config.lineage.metastore_uri.as_deref().unwrap_or(&config.metastore.thrift_listen))
}

/// The `hive://host:port` + `db.table` name of a table, when the
/// configuration has a catalog to register it in.
pub fn table_symlink(config: &Config, database: &str, table: &str) -> Option<DatasetId> {
    config.catalog.as_ref().map(|_| DatasetId::new(hive_namespace(config), format!("{}.{}", database.to_ascii_lowercase(), table.to_ascii_lowercase())))
}
