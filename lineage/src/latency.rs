//! Freshness, end-to-end latency and alerts of the tables a process writes.
//!
//! A [`TableTracker`] per table is fed by the writer after each commit
//! ([`TableTracker::committed`]) and by the reader with the consumer lag;
//! the [`Monitor`] refreshes the freshness gauges every second and checks
//! the alert thresholds, posting to the webhook when an alert fires and
//! when it resolves.
//!
//! Latency stages (histogram `inlet_lineage_latency_seconds{table,stage}`):
//! `event_to_kafka` (event time -> Kafka timestamp), `kafka_to_commit`
//! (Kafka timestamp -> Delta commit), `event_to_commit`, measured on up to
//! [`SAMPLES_PER_COMMIT`] messages spread evenly over each commit (observing
//! every message would cost more than the rest of the bookkeeping); then
//! `commit_to_catalog` (the commit -> visible in the catalog's lineage store)
//! and `event_to_catalog` (the commit's oldest event -> visible), per commit,
//! observed by the catalog transport.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use inlet_config::{AlertsConfig, TableAlerts};
use parking_lot::Mutex;
use serde::Serialize;
use tracing::{info, warn};

use crate::metrics::METRICS;

/// Messages per commit whose latency is observed.
pub const SAMPLES_PER_COMMIT: usize = 64;

const UNKNOWN: i64 = i64::MIN;

/// One message's times, in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MessageTimes {
    pub event_ms: Option<i64>,
    pub kafka_ms: Option<i64>,
}

/// Indexes of up to `SAMPLES_PER_COMMIT` rows spread evenly over `n`.
pub fn sample_indexes(n: usize) -> impl Iterator<Item = usize> {
    let step = n.div_ceil(SAMPLES_PER_COMMIT).max(1);
    (0..n).step_by(step)
}

/// Freshness and latency bookkeeping of one table.
#[derive(Debug)]
pub struct TableTracker {
    /// `db.table`, the `table` label.
    pub table: String,
    pub pipeline: String,
    alerts: TableAlerts,
    newest_event_ms: AtomicI64,
    lag: AtomicI64,
    state: Mutex<AlertState>,
}

#[derive(Debug, Default)]
struct AlertState {
    /// Per alert: since when its threshold is exceeded, and whether it fired
    /// (and when it was last sent).
    freshness: Exceeded,
    lag: Exceeded,
}

#[derive(Debug, Default, Clone, Copy)]
struct Exceeded {
    since_ms: Option<i64>,
    firing_sent_ms: Option<i64>,
}

impl TableTracker {
    pub fn new(table: &str, pipeline: &str, alerts: TableAlerts) -> Arc<TableTracker> {
        if let Some(t) = alerts.max_freshness_secs {
            METRICS.alert_threshold.with_label_values(&[table, "freshness"]).set(t as f64);
            METRICS.alert_firing.with_label_values(&[table, "freshness"]).set(0);
        }
        if let Some(t) = alerts.max_consumer_lag_messages {
            METRICS.alert_threshold.with_label_values(&[table, "consumer_lag"]).set(t as f64);
            METRICS.alert_firing.with_label_values(&[table, "consumer_lag"]).set(0);
        }
        Arc::new(TableTracker { table: table.to_string(), pipeline: pipeline.to_string(), alerts, newest_event_ms: AtomicI64::new(UNKNOWN), lag: AtomicI64::new(-1), state: Mutex::new(AlertState::default()) })
    }

    /// A commit landed at `committed_ms`; `newest_event_ms` is the newest
    /// event time it holds; `samples` the times of sampled messages.
    pub fn committed(&self, committed_ms: i64, newest_event_ms: Option<i64>, samples: &[MessageTimes]) {
        if let Some(n) = newest_event_ms {
            let prev = self.newest_event_ms.fetch_max(n, Ordering::AcqRel);
            let newest = prev.max(n);
            METRICS.newest_event_timestamp_seconds.with_label_values(&[&self.table]).set(newest as f64 / 1000.0);
            self.refresh_freshness(Utc::now().timestamp_millis());
        }
        let h = |stage: &str| METRICS.latency_seconds.with_label_values(&[&self.table, stage]);
        let (ek, kc, ec) = (h("event_to_kafka"), h("kafka_to_commit"), h("event_to_commit"));
        for s in samples {
            if let (Some(e), Some(k)) = (s.event_ms, s.kafka_ms) {
                ek.observe(((k - e) as f64 / 1000.0).max(0.0));
            }
            if let Some(k) = s.kafka_ms {
                kc.observe(((committed_ms - k) as f64 / 1000.0).max(0.0));
            }
            if let Some(e) = s.event_ms {
                ec.observe(((committed_ms - e) as f64 / 1000.0).max(0.0));
            }
        }
    }

    /// The newest event time committed, when any was.
    pub fn newest_event_ms(&self) -> Option<i64> {
        Some(self.newest_event_ms.load(Ordering::Acquire)).filter(|v| *v != UNKNOWN)
    }

    /// Sets the newest event time known before this process (from the
    /// lineage store), unless a commit already set a newer one.
    pub fn seed_newest_event_ms(&self, ms: i64) {
        self.newest_event_ms.fetch_max(ms, Ordering::AcqRel);
    }

    /// Messages of the table's topics not committed yet (None: unknown).
    pub fn set_consumer_lag(&self, lag: Option<i64>) {
        let v = lag.unwrap_or(-1);
        self.lag.store(v, Ordering::Release);
        if v >= 0 {
            METRICS.consumer_lag_messages.with_label_values(&[&self.table]).set(v);
        }
    }

    pub fn consumer_lag(&self) -> Option<i64> {
        Some(self.lag.load(Ordering::Acquire)).filter(|v| *v >= 0)
    }

    /// Seconds since the newest event time committed.
    pub fn freshness_seconds(&self, now_ms: i64) -> Option<f64> {
        self.newest_event_ms().map(|n| ((now_ms - n) as f64 / 1000.0).max(0.0))
    }

    fn refresh_freshness(&self, now_ms: i64) {
        if let Some(f) = self.freshness_seconds(now_ms) {
            METRICS.freshness_seconds.with_label_values(&[&self.table]).set(f);
        }
    }
}

/// An alert notification as the webhook receives it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlertNotification {
    /// `firing` or `resolved`.
    pub status: &'static str,
    /// `freshness` or `consumer_lag`.
    pub alert: &'static str,
    pub table: String,
    pub pipeline: String,
    /// The measured value, in `unit`.
    pub value: f64,
    pub threshold: f64,
    /// `seconds` or `messages`.
    pub unit: &'static str,
    /// When the threshold was first exceeded.
    pub starts_at: String,
    pub at: String,
    pub summary: String,
}

/// Evaluates one table's alerts at `now_ms`; returns the notifications due.
fn evaluate(t: &TableTracker, cfg: &AlertsConfig, now_ms: i64) -> Vec<AlertNotification> {
    let mut out = Vec::new();
    let mut st = t.state.lock();
    let checks: [(&'static str, &'static str, Option<u64>, Option<f64>); 2] = [
        ("freshness", "seconds", t.alerts.max_freshness_secs, t.freshness_seconds(now_ms)),
        ("consumer_lag", "messages", t.alerts.max_consumer_lag_messages, t.consumer_lag().map(|v| v as f64)),
    ];
    for (alert, unit, threshold, value) in checks {
        let Some(threshold) = threshold else { continue };
        let state = if alert == "freshness" { &mut st.freshness } else { &mut st.lag };
        let fmt = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(|d| crate::model::format_time(&d)).unwrap_or_default();
        let note = |status, value: f64, since: i64| AlertNotification {
            status,
            alert,
            table: t.table.clone(),
            pipeline: t.pipeline.clone(),
            value,
            threshold: threshold as f64,
            unit,
            starts_at: fmt(since),
            at: fmt(now_ms),
            summary: format!("{} of table {} is {value:.1} {unit} (threshold {threshold})", alert.replace('_', " "), t.table),
        };
        match value {
            Some(v) if v > threshold as f64 => {
                let since = *state.since_ms.get_or_insert(now_ms);
                if now_ms - since < cfg.for_secs as i64 * 1000 {
                    continue;
                }
                let repeat = cfg.repeat_interval_secs as i64 * 1000;
                match state.firing_sent_ms {
                    None => {
                        METRICS.alert_firing.with_label_values(&[&t.table, alert]).set(1);
                        METRICS.alerts_fired.with_label_values(&[&t.table, alert]).inc();
                        state.firing_sent_ms = Some(now_ms);
                        out.push(note("firing", v, since));
                    }
                    Some(sent) if repeat > 0 && now_ms - sent >= repeat => {
                        state.firing_sent_ms = Some(now_ms);
                        out.push(note("firing", v, since));
                    }
                    Some(_) => {}
                }
            }
            // Unknown values neither fire nor resolve.
            None => {}
            Some(v) => {
                if state.firing_sent_ms.is_some() {
                    METRICS.alert_firing.with_label_values(&[&t.table, alert]).set(0);
                    out.push(note("resolved", v, state.since_ms.unwrap_or(now_ms)));
                }
                *state = Exceeded::default();
            }
        }
    }
    out
}

/// Refreshes freshness gauges every second and checks alerts every
/// `check_interval_secs`, until dropped or stopped.
pub struct Monitor {
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Monitor {
    /// Starts on the current tokio runtime.
    pub fn start(trackers: Vec<Arc<TableTracker>>, cfg: AlertsConfig) -> Monitor {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().ok();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_check = 0i64;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => return,
                }
                let now = Utc::now().timestamp_millis();
                for t in &trackers {
                    t.refresh_freshness(now);
                }
                if now - last_check < cfg.check_interval_secs as i64 * 1000 {
                    continue;
                }
                last_check = now;
                for t in &trackers {
                    for n in evaluate(t, &cfg, now) {
                        info!(table = %n.table, alert = n.alert, status = n.status, value = n.value, threshold = n.threshold, "alert");
                        if let (Some(url), Some(client)) = (cfg.webhook_url.clone(), client.clone()) {
                            tokio::spawn(post_webhook(client, url, cfg.webhook_token.clone(), n));
                        }
                    }
                }
            }
        });
        Monitor { stop, task: Some(task) }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn post_webhook(client: reqwest::Client, url: String, token: Option<String>, n: AlertNotification) {
    for attempt in 0..4u32 {
        let mut req = client.post(&url).json(&n);
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => return,
            Ok(r) if r.status().is_client_error() => {
                warn!(url = %url, status = %r.status(), alert = n.alert, table = %n.table, "alert webhook refused the notification");
                break;
            }
            Ok(r) => warn!(url = %url, status = %r.status(), attempt, "alert webhook failed; retrying"),
            Err(e) => warn!(url = %url, error = %e, attempt, "alert webhook failed; retrying"),
        }
        tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
    }
    METRICS.webhook_failures.with_label_values(&[&n.table, n.alert]).inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(for_secs: u64, repeat: u64) -> AlertsConfig {
        AlertsConfig { webhook_url: None, webhook_token: None, check_interval_secs: 1, for_secs, repeat_interval_secs: repeat }
    }

    #[test]
    fn freshness_alert_fires_after_for_repeats_and_resolves() {
        let t = TableTracker::new("db.fresh_test", "p", TableAlerts { max_freshness_secs: Some(60), max_consumer_lag_messages: None });
        let c = cfg(10, 100);
        let base = 1_800_000_000_000i64;
        // No data yet: unknown freshness neither fires nor resolves.
        assert!(evaluate(&t, &c, base).is_empty());
        t.committed(base, Some(base - 1000), &[]);
        assert!(evaluate(&t, &c, base + 30_000).is_empty());
        // Exceeded at +70 s, but must stay so for 10 s.
        assert!(evaluate(&t, &c, base + 70_000).is_empty());
        let fired = evaluate(&t, &c, base + 80_000);
        assert_eq!(fired.len(), 1);
        assert_eq!((fired[0].status, fired[0].alert, fired[0].value as i64), ("firing", "freshness", 81));
        assert_eq!(METRICS.alert_firing.with_label_values(&["db.fresh_test", "freshness"]).get(), 1);
        assert!(evaluate(&t, &c, base + 90_000).is_empty(), "not repeated before repeat_interval_secs");
        assert_eq!(evaluate(&t, &c, base + 180_000)[0].status, "firing");
        // Fresh data resolves it.
        t.committed(base + 181_000, Some(base + 180_000), &[]);
        let resolved = evaluate(&t, &c, base + 182_000);
        assert_eq!(resolved[0].status, "resolved");
        assert_eq!(METRICS.alert_firing.with_label_values(&["db.fresh_test", "freshness"]).get(), 0);
        assert!(evaluate(&t, &c, base + 183_000).is_empty());
    }

    #[test]
    fn lag_alert_uses_the_reported_lag() {
        let t = TableTracker::new("db.lag_test", "p", TableAlerts { max_freshness_secs: None, max_consumer_lag_messages: Some(100) });
        let c = cfg(0, 0);
        t.set_consumer_lag(Some(50));
        assert!(evaluate(&t, &c, 1).is_empty());
        t.set_consumer_lag(Some(500));
        let n = evaluate(&t, &c, 2);
        assert_eq!((n[0].alert, n[0].value, n[0].unit), ("consumer_lag", 500.0, "messages"));
        assert!(evaluate(&t, &c, 3_600_000).is_empty(), "repeat 0: only changes are sent");
        t.set_consumer_lag(Some(0));
        assert_eq!(evaluate(&t, &c, 4)[0].status, "resolved");
        assert_eq!(METRICS.consumer_lag_messages.with_label_values(&["db.lag_test"]).get(), 0);
    }

    #[test]
    fn commits_feed_the_stage_histograms_and_freshness() {
        let t = TableTracker::new("db.hist_test", "p", TableAlerts::default());
        let s = [MessageTimes { event_ms: Some(1_000), kafka_ms: Some(3_000) }, MessageTimes { event_ms: None, kafka_ms: Some(9_000) }];
        t.committed(10_000, Some(1_000), &s);
        let h = |stage| METRICS.latency_seconds.with_label_values(&["db.hist_test", stage]);
        assert_eq!((h("event_to_kafka").get_sample_count(), h("event_to_kafka").get_sample_sum()), (1, 2.0));
        assert_eq!((h("kafka_to_commit").get_sample_count(), h("kafka_to_commit").get_sample_sum()), (2, 8.0));
        assert_eq!(h("event_to_commit").get_sample_sum(), 9.0);
        assert_eq!(t.newest_event_ms(), Some(1_000));
        // An older commit (another partition lagging) never moves freshness back.
        t.committed(11_000, Some(500), &[]);
        assert_eq!(t.newest_event_ms(), Some(1_000));
        assert_eq!(t.freshness_seconds(4_000), Some(3.0));
    }

    #[test]
    fn samples_are_spread_and_bounded() {
        assert_eq!(sample_indexes(3).collect::<Vec<_>>(), vec![0, 1, 2]);
        let big: Vec<usize> = sample_indexes(100_000).collect();
        assert!(big.len() <= SAMPLES_PER_COMMIT && big.len() >= SAMPLES_PER_COMMIT - 1, "{}", big.len());
        assert!(*big.last().unwrap() > 95_000);
    }
}
