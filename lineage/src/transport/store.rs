//! The lineage store's interface: what the catalog transport writes events
//! into. The metastore implements it over the catalog database
//! (`inlet_metastore::store::lineage`), so this crate needs no database.

use std::sync::Arc;
use std::time::Duration;

use crate::emitter::{Transport, TransportError};
use crate::model::RunEvent;

/// What a store did with an event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    /// Commits (dataset versions) recorded, with the time each became
    /// visible in the store minus its commit time, in seconds.
    pub commit_to_store_seconds: Vec<(String, f64)>,
    /// Per output, the time from its commit's oldest event to visibility.
    pub event_to_store_seconds: Vec<(String, f64)>,
}

/// A store of lineage: jobs, datasets, runs and the edges between them.
/// `record` must be idempotent: the same event delivered twice (a retry after
/// a lost answer) changes nothing the second time.
#[async_trait::async_trait]
pub trait LineageStore: Send + Sync {
    async fn record(&self, event: &RunEvent) -> Result<Recorded, String>;
}

/// The catalog transport: events into a [`LineageStore`], retried (a busy
/// or briefly unreachable database) with backoff.
pub struct StoreTransport {
    store: Arc<dyn LineageStore>,
    retries: u32,
}

impl StoreTransport {
    pub fn new(store: Arc<dyn LineageStore>) -> StoreTransport {
        StoreTransport { store, retries: 5 }
    }
}

#[async_trait::async_trait]
impl Transport for StoreTransport {
    fn name(&self) -> &str {
        "catalog"
    }

    async fn send(&self, event: &RunEvent) -> Result<(), TransportError> {
        let mut attempt = 0u32;
        loop {
            match self.store.record(event).await {
                Ok(r) => {
                    // The last stage of the latency path: commit -> visible
                    // in the catalog's lineage store.
                    for (table, s) in &r.commit_to_store_seconds {
                        crate::metrics::METRICS.latency_seconds.with_label_values(&[table, "commit_to_catalog"]).observe(s.max(0.0));
                    }
                    for (table, s) in &r.event_to_store_seconds {
                        crate::metrics::METRICS.latency_seconds.with_label_values(&[table, "event_to_catalog"]).observe(s.max(0.0));
                    }
                    return Ok(());
                }
                Err(e) if attempt < self.retries => {
                    attempt += 1;
                    crate::metrics::METRICS.send_retries.with_label_values(&["catalog"]).inc();
                    tracing::debug!(attempt, error = %e, "lineage store write failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * (1 << attempt.min(6)))).await;
                }
                Err(e) => return Err(TransportError::Transient(e)),
            }
        }
    }
}
