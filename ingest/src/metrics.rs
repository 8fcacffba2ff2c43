//! Prometheus metrics of the ingest service, and the small HTTP endpoint that
//! serves them (`/metrics`, `/health`, `/ready`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use prometheus::{Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::{info, warn};

pub struct Metrics {
    pub registry: Registry,
    pub messages: IntCounterVec,
    pub message_bytes: IntCounterVec,
    pub rows_written: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub skipped: IntCounterVec,
    pub commits: IntCounterVec,
    pub files_written: IntCounterVec,
    pub bytes_written: IntCounterVec,
    pub fenced: IntCounterVec,
    pub rebalances: IntCounterVec,
    pub partitions_closed: IntCounterVec,
    pub commit_seconds: HistogramVec,
    pub flush_rows: HistogramVec,
    pub buffered_bytes: IntGauge,
    pub memory_budget_bytes: IntGauge,
    pub paused: IntGaugeVec,
    pub up: IntGaugeVec,
    pub last_commit_timestamp_seconds: GaugeVec,
    pub newest_event_timestamp_seconds: GaugeVec,
    pub table_version: IntGaugeVec,
    pub consumer_lag_messages: IntGaugeVec,
    pub job_state: IntGaugeVec,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn fgauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let r = Registry::new();
    let p = &["pipeline"];
    let commit_seconds = HistogramVec::new(
        HistogramOpts::new("inlet_ingest_commit_duration_seconds", "Time to write and commit one flush").buckets(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
        p,
    )
    .expect("valid metric");
    r.register(Box::new(commit_seconds.clone())).expect("unique metric");
    let flush_rows = HistogramVec::new(
        HistogramOpts::new("inlet_ingest_flush_rows", "Rows per flush").buckets(prometheus::exponential_buckets(100.0, 4.0, 9).expect("buckets")),
        p,
    )
    .expect("valid metric");
    r.register(Box::new(flush_rows.clone())).expect("unique metric");
    let buffered_bytes = IntGauge::new("inlet_ingest_buffered_bytes", "Message bytes buffered or in flight, all pipelines").expect("valid metric");
    r.register(Box::new(buffered_bytes.clone())).expect("unique metric");
    let memory_budget_bytes = IntGauge::new("inlet_ingest_memory_budget_bytes", "Configured memory budget").expect("valid metric");
    r.register(Box::new(memory_budget_bytes.clone())).expect("unique metric");
    Metrics {
        messages: counter(&r, "inlet_ingest_messages_total", "Messages read from Kafka", p),
        message_bytes: counter(&r, "inlet_ingest_message_bytes_total", "Payload bytes read from Kafka", p),
        rows_written: counter(&r, "inlet_ingest_rows_written_total", "Rows committed to the table", p),
        dead_letters: counter(&r, "inlet_ingest_dead_letters_total", "Messages written to the dead-letter table", p),
        skipped: counter(&r, "inlet_ingest_skipped_messages_total", "Bad messages skipped by policy", p),
        commits: counter(&r, "inlet_ingest_commits_total", "Table commits", p),
        files_written: counter(&r, "inlet_ingest_files_written_total", "Data files written", p),
        bytes_written: counter(&r, "inlet_ingest_bytes_written_total", "Data file bytes written", p),
        fenced: counter(&r, "inlet_ingest_fenced_commits_total", "Commits refused because another writer advanced the same partitions", p),
        rebalances: counter(&r, "inlet_ingest_rebalances_total", "Consumer group rebalances", p),
        partitions_closed: counter(&r, "inlet_ingest_partitions_closed_total", "Hive partitions closed by partition commit (re-closes after late events included)", p),
        commit_seconds,
        flush_rows,
        buffered_bytes,
        memory_budget_bytes,
        paused: gauge_vec(&r, "inlet_ingest_paused", "1 while consumption is paused by back-pressure", p),
        up: gauge_vec(&r, "inlet_ingest_pipeline_up", "1 while the pipeline runs", p),
        last_commit_timestamp_seconds: fgauge_vec(&r, "inlet_ingest_last_commit_timestamp_seconds", "Unix time of the last commit", p),
        newest_event_timestamp_seconds: fgauge_vec(&r, "inlet_ingest_newest_event_timestamp_seconds", "Newest event time committed (event-time pipelines)", p),
        table_version: gauge_vec(&r, "inlet_ingest_table_version", "Table version after the last commit", p),
        consumer_lag_messages: gauge_vec(
            &r,
            "inlet_ingest_consumer_lag_messages",
            "Messages between the partition's end and the offset committed to Kafka after each table commit (librdkafka statistics, every `statistics.interval.ms`)",
            &["pipeline", "topic", "partition"],
        ),
        job_state: gauge_vec(&r, "inlet_job_state", "1 for the lifecycle state each job of this process is in (`inlet jobs`)", &["job", "state"]),
        registry: r,
    }
});

/// Set once every pipeline has its first assignment or commit.
pub static READY: AtomicBool = AtomicBool::new(false);

pub fn render() -> String {
    let mut buf = Vec::new();
    let families = METRICS.registry.gather();
    TextEncoder::new().encode(&families, &mut buf).expect("text encoding");
    // Lineage delivery, freshness, latency and alerts.
    let _ = TextEncoder::new().encode(&inlet_lineage::metrics::METRICS.registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// Serves `/metrics`, `/health` and `/ready` until the process exits.
pub async fn serve(listen: String) -> std::io::Result<()> {
    let listener = TcpListener::bind(&listen).await?;
    info!(address = %listener.local_addr()?, "metrics endpoint listening");
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let n = match tokio::time::timeout(std::time::Duration::from_secs(5), sock.read(&mut buf)).await {
                    Ok(Ok(n)) => n,
                    _ => return,
                };
                let req = String::from_utf8_lossy(&buf[..n]);
                let path = req.split_whitespace().nth(1).unwrap_or("/");
                let (status, ctype, body) = match path {
                    "/metrics" => ("200 OK", "text/plain; version=0.0.4", render()),
                    "/health" | "/healthz" => ("200 OK", "text/plain", "ok\n".to_string()),
                    "/ready" | "/readyz" if READY.load(Ordering::Relaxed) => ("200 OK", "text/plain", "ready\n".to_string()),
                    "/ready" | "/readyz" => ("503 Service Unavailable", "text/plain", "starting\n".to_string()),
                    _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
                };
                let resp = format!("HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                if let Err(e) = sock.write_all(resp.as_bytes()).await {
                    warn!(error = %e, "metrics response failed");
                }
            });
        }
    });
    Ok(())
}

/// Keeps `inlet_job_state` at 1 for each job's current state only.
pub fn job_state_gauge() -> inlet_metastore::jobs::reporter::OnChange {
    Arc::new(|job: &str, from: Option<inlet_metastore::jobs::JobState>, to: inlet_metastore::jobs::JobState| {
        if let Some(from) = from {
            METRICS.job_state.with_label_values(&[job, from.as_str()]).set(0);
        }
        METRICS.job_state.with_label_values(&[job, to.as_str()]).set(1);
    })
}

/// Shared flag for graceful shutdown.
pub type Shutdown = Arc<AtomicBool>;
