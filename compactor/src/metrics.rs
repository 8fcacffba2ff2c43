//! Prometheus metrics of the compactor (`inlet_compactor_<name>_<unit>`),
//! and the small HTTP endpoint of `inlet compactor` (`/metrics`, `/health`).

use std::sync::LazyLock;

use prometheus::{Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::{info, warn};

pub struct Metrics {
    pub registry: Registry,
    pub runs: IntCounterVec,
    pub files_read: IntCounterVec,
    pub files_written: IntCounterVec,
    pub bytes_read: IntCounterVec,
    pub bytes_written: IntCounterVec,
    pub bin_failures: IntCounterVec,
    pub commit_conflicts: IntCounter,
    pub run_seconds: HistogramVec,
    pub small_files: IntGaugeVec,
    pub table_files: IntGaugeVec,
    pub vacuum_deleted_files: IntCounterVec,
    pub last_run_timestamp_seconds: GaugeVec,
    pub last_success_timestamp_seconds: GaugeVec,
    pub job_state: IntGaugeVec,
    pub memory_budget_bytes: IntGauge,
    pub memory_reserved_bytes: IntGauge,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

/// Keeps `inlet_job_state` at 1 for each policy's current state only.
pub fn job_state_gauge() -> inlet_metastore::jobs::reporter::OnChange {
    std::sync::Arc::new(|job: &str, from: Option<inlet_metastore::jobs::JobState>, to: inlet_metastore::jobs::JobState| {
        if let Some(from) = from {
            METRICS.job_state.with_label_values(&[job, from.as_str()]).set(0);
        }
        METRICS.job_state.with_label_values(&[job, to.as_str()]).set(1);
    })
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let r = Registry::new();
    let t = &["table"];
    let run_seconds = HistogramVec::new(
        HistogramOpts::new("inlet_compactor_run_duration_seconds", "Duration of compaction runs").buckets(vec![0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0]),
        t,
    )
    .expect("valid metric");
    r.register(Box::new(run_seconds.clone())).expect("unique metric");
    let commit_conflicts = IntCounter::new("inlet_compactor_commit_conflicts_total", "Compaction commits that conflicted and were re-checked").expect("valid metric");
    r.register(Box::new(commit_conflicts.clone())).expect("unique metric");
    let last_run = GaugeVec::new(Opts::new("inlet_compactor_last_run_timestamp_seconds", "Unix time of the end of the last run"), t).expect("valid metric");
    r.register(Box::new(last_run.clone())).expect("unique metric");
    let last_success = GaugeVec::new(Opts::new("inlet_compactor_last_success_timestamp_seconds", "Unix time of the end of the last run that succeeded (alert when it grows old)"), t).expect("valid metric");
    r.register(Box::new(last_success.clone())).expect("unique metric");
    let memory_budget_bytes = IntGauge::new("inlet_compactor_memory_budget_bytes", "Memory budget shared by all rewrites").expect("valid metric");
    r.register(Box::new(memory_budget_bytes.clone())).expect("unique metric");
    let memory_reserved_bytes = IntGauge::new("inlet_compactor_memory_reserved_bytes", "Memory budget reserved by running rewrites").expect("valid metric");
    r.register(Box::new(memory_reserved_bytes.clone())).expect("unique metric");
    Metrics {
        runs: counter(&r, "inlet_compactor_runs_total", "Compaction runs by outcome", &["table", "outcome"]),
        files_read: counter(&r, "inlet_compactor_files_read_total", "Small files rewritten and removed", t),
        files_written: counter(&r, "inlet_compactor_files_written_total", "Compacted files added", t),
        bytes_read: counter(&r, "inlet_compactor_bytes_read_total", "Bytes of files rewritten", t),
        bytes_written: counter(&r, "inlet_compactor_bytes_written_total", "Bytes of compacted files added", t),
        bin_failures: counter(&r, "inlet_compactor_bin_failures_total", "Bins that could not be rewritten", t),
        commit_conflicts,
        run_seconds,
        small_files: gauge(&r, "inlet_compactor_small_files", "Small files in the table after the last run", t),
        table_files: gauge(&r, "inlet_compactor_table_files", "Data files in the table after the last run", t),
        vacuum_deleted_files: counter(&r, "inlet_compactor_vacuum_deleted_files_total", "Files deleted by vacuum", t),
        last_run_timestamp_seconds: last_run,
        last_success_timestamp_seconds: last_success,
        job_state: gauge(&r, "inlet_job_state", "1 for the lifecycle state each job of this process is in (`inlet jobs`)", &["job", "state"]),
        memory_budget_bytes,
        memory_reserved_bytes,
        registry: r,
    }
});

pub fn render() -> String {
    let mut buf = Vec::new();
    TextEncoder::new().encode(&METRICS.registry.gather(), &mut buf).expect("text encoding");
    // Lineage event delivery.
    let _ = TextEncoder::new().encode(&inlet_lineage::metrics::METRICS.registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// Serves `/metrics` and `/health` until the process exits; returns the
/// bound address (port 0 picks a free port).
pub async fn serve(listen: &str) -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    info!(address = %addr, "compactor metrics endpoint listening");
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
                let (status, body) = match req.split_whitespace().nth(1).unwrap_or("/") {
                    "/metrics" => ("200 OK", render()),
                    "/health" | "/healthz" | "/ready" | "/readyz" => ("200 OK", "ok\n".to_string()),
                    _ => ("404 Not Found", "not found\n".to_string()),
                };
                let resp = format!("HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                if let Err(e) = sock.write_all(resp.as_bytes()).await {
                    warn!(error = %e, "metrics response failed");
                }
            });
        }
    });
    Ok(addr)
}
