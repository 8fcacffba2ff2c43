//! Prometheus metrics of lineage delivery, freshness, latency and alerts.
//! They live in their own registry, which the ingest, compactor and
//! metastore endpoints append to their own (`/metrics`).

use std::sync::LazyLock;

use prometheus::{Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    pub registry: Registry,
    /// Events delivered, per transport.
    pub events_sent: IntCounterVec,
    /// Events a transport gave up on after its retries.
    pub events_failed: IntCounterVec,
    /// Events dropped without an attempt: the transport's queue was full or
    /// the process was stopping.
    pub events_dropped: IntCounterVec,
    /// Retried attempts.
    pub send_retries: IntCounterVec,
    /// Events waiting in each transport's queue.
    pub queued_events: IntGaugeVec,
    /// Time to deliver one event (all attempts).
    pub send_seconds: HistogramVec,
    /// Now minus the newest event time committed, per table.
    pub freshness_seconds: GaugeVec,
    /// The newest event time committed, per table (Unix seconds).
    pub newest_event_timestamp_seconds: GaugeVec,
    /// End-to-end latency per stage and table.
    pub latency_seconds: HistogramVec,
    /// Messages of a table's topics not yet committed to it.
    pub consumer_lag_messages: IntGaugeVec,
    /// 1 while an alert fires.
    pub alert_firing: IntGaugeVec,
    /// The configured threshold of an alert, in the alert's unit.
    pub alert_threshold: GaugeVec,
    /// Times an alert started firing.
    pub alerts_fired: IntCounterVec,
    /// Webhook deliveries that failed after retries.
    pub webhook_failures: IntCounterVec,
}

/// Latency buckets from 10 ms to about 3 hours.
pub fn latency_buckets() -> Vec<f64> {
    vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 10800.0]
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let r = Registry::new();
    fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
        r.register(Box::new(c.clone())).expect("unique metric");
        c
    }
    let t = &["transport"];
    Metrics {
        events_sent: reg(&r, IntCounterVec::new(Opts::new("inlet_lineage_events_sent_total", "OpenLineage events delivered"), t).expect("metric")),
        events_failed: reg(&r, IntCounterVec::new(Opts::new("inlet_lineage_events_failed_total", "OpenLineage events given up after all retries"), t).expect("metric")),
        events_dropped: reg(&r, IntCounterVec::new(Opts::new("inlet_lineage_events_dropped_total", "OpenLineage events dropped because the transport's queue was full or the process was stopping"), t).expect("metric")),
        send_retries: reg(&r, IntCounterVec::new(Opts::new("inlet_lineage_send_retries_total", "Retried delivery attempts"), t).expect("metric")),
        queued_events: reg(&r, IntGaugeVec::new(Opts::new("inlet_lineage_queued_events", "OpenLineage events waiting in a transport's queue"), t).expect("metric")),
        send_seconds: reg(&r, HistogramVec::new(HistogramOpts::new("inlet_lineage_send_duration_seconds", "Time to deliver one event, retries included").buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0]), t).expect("metric")),
        freshness_seconds: reg(&r, GaugeVec::new(Opts::new("inlet_lineage_freshness_seconds", "Now minus the newest event time committed to the table"), &["table"]).expect("metric")),
        newest_event_timestamp_seconds: reg(&r, GaugeVec::new(Opts::new("inlet_lineage_newest_event_timestamp_seconds", "Newest event time committed to the table, Unix seconds"), &["table"]).expect("metric")),
        latency_seconds: reg(
            &r,
            HistogramVec::new(
                HistogramOpts::new("inlet_lineage_latency_seconds", "End-to-end latency per stage: event_to_kafka, kafka_to_commit, event_to_commit (sampled messages), commit_to_catalog, event_to_catalog (per commit, its oldest event)").buckets(latency_buckets()),
                &["table", "stage"],
            )
            .expect("metric"),
        ),
        consumer_lag_messages: reg(&r, IntGaugeVec::new(Opts::new("inlet_lineage_consumer_lag_messages", "Messages of the table's topics not yet committed to it"), &["table"]).expect("metric")),
        alert_firing: reg(&r, IntGaugeVec::new(Opts::new("inlet_lineage_alert_firing", "1 while the alert fires"), &["table", "alert"]).expect("metric")),
        alert_threshold: reg(&r, GaugeVec::new(Opts::new("inlet_lineage_alert_threshold", "Configured alert threshold (seconds for freshness, messages for consumer_lag)"), &["table", "alert"]).expect("metric")),
        alerts_fired: reg(&r, IntCounterVec::new(Opts::new("inlet_lineage_alerts_fired_total", "Times an alert started firing"), &["table", "alert"]).expect("metric")),
        webhook_failures: reg(&r, IntCounterVec::new(Opts::new("inlet_lineage_webhook_failures_total", "Alert webhook deliveries that failed after retries"), &["table", "alert"]).expect("metric")),
        registry: r,
    }
});

/// The lineage metrics in Prometheus' text format.
pub fn render() -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&METRICS.registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}
