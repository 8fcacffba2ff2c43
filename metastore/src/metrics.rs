//! Prometheus metrics of the metastore service (`/metrics` on the REST
//! port): calls per API, method and outcome, their latency, and the size of
//! the catalog.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    connections: IntGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("inlet_metastore_requests_total", "Metastore calls by API (thrift, rest), method and outcome (ok, exception, error)"),
            &["api", "method", "outcome"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new("inlet_metastore_request_duration_seconds", "Metastore call latency by API and method")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0]),
            &["api", "method"],
        )
        .expect("valid metric");
        let connections = IntGauge::new("inlet_metastore_thrift_connections", "Open Thrift client connections").expect("valid metric");
        registry.register(Box::new(requests.clone())).expect("unique metric");
        registry.register(Box::new(duration.clone())).expect("unique metric");
        registry.register(Box::new(connections.clone())).expect("unique metric");
        Metrics { inner: Arc::new(Inner { registry, requests, duration, connections }) }
    }

    pub fn observe(&self, api: &str, method: &str, outcome: &str, elapsed: Duration) {
        self.inner.requests.with_label_values(&[api, method, outcome]).inc();
        self.inner.duration.with_label_values(&[api, method]).observe(elapsed.as_secs_f64());
    }

    pub fn connection_opened(&self) {
        self.inner.connections.inc();
    }

    pub fn connection_closed(&self) {
        self.inner.connections.dec();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        let _ = prometheus::TextEncoder::new().encode(&self.inner.registry.gather(), &mut buf);
        // Latency to visibility of the lineage events this metastore receives.
        let _ = prometheus::TextEncoder::new().encode(&inlet_lineage::metrics::METRICS.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
