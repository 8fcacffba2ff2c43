//! Kafka topics into lakehouse tables, exactly once.
//!
//! Data flows one way: [`source`] (Kafka consumer groups) -> [`buffer`] (raw
//! messages under a process-wide memory budget) -> [`decode`] (bytes to
//! Arrow) -> [`partitioning`] (derived partition columns) -> [`sink`] (write
//! and commit, with progress) -> Kafka offset commit for lag tools. Bad
//! messages branch off to the [`dead_letter`] table. [`pipeline`] runs one
//! pipeline; [`run`] runs all of a configuration's pipelines in one process.

pub mod buffer;
pub mod dead_letter;
pub mod decode;
pub mod lineage;
pub mod metrics;
pub mod partitioning;
pub mod pipeline;
pub mod publish;
pub mod sample;
pub mod sink;
pub mod source;
pub mod watermark;
pub mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use inlet_config::{Config, PipelineConfig, TableFormat};
use inlet_metastore::jobs::reporter::{self, Reporter};
use inlet_metastore::jobs::{JobKind, JobState};
use inlet_table::Warehouse;
use tracing::{error, info, warn};

use crate::buffer::MemoryBudget;
use crate::dead_letter::DeadLetterTable;
use crate::sink::delta::DeltaSink;
use crate::sink::hive::{HiveSink, HiveTarget};
use crate::sink::TableSink;
use crate::writer::BatchWriter;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("pipeline {pipeline}: {reason}")]
    Pipeline { pipeline: String, reason: String },
    #[error("pipeline {pipeline}: Kafka: {source}")]
    Kafka { pipeline: String, source: rdkafka::error::KafkaError },
    #[error(transparent)]
    Table(#[from] inlet_table::TableError),
    #[error("no pipeline named {0:?} in the configuration")]
    UnknownPipeline(String),
    #[error("metrics endpoint {address}: {source}")]
    Metrics { address: String, source: std::io::Error },
    #[error("{failed} of {total} pipelines failed")]
    Failed { failed: usize, total: usize },
}

/// How `inlet ingest` runs.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Exit once every partition is committed up to the offsets that were
    /// the latest at start (backfills, tests).
    pub until_caught_up: bool,
    /// Run only these pipelines (all when empty).
    pub pipelines: Vec<String>,
}

/// What a run did, per pipeline.
pub type RunSummary = HashMap<String, pipeline::Summary>;

async fn build_writer(config: &Config, warehouse: &Warehouse, p: &Arc<PipelineConfig>) -> Result<BatchWriter, IngestError> {
    let fail = |reason: String| IngestError::Pipeline { pipeline: p.name.clone(), reason };
    let location = warehouse.table_location(&p.table.database, &p.table.name, p.table.location.as_deref(), &config.storage)?;
    let mut props: HashMap<String, String> = p.table.properties.clone().into_iter().collect();
    props.entry("delta.checkpointInterval".into()).or_insert_with(|| p.table.checkpoint_interval_commits.to_string());
    props.entry("delta.logRetentionDuration".into()).or_insert_with(|| format!("interval {} hours", p.table.log_retention_hours));
    let target = p.flush.target_file_size_bytes;
    let dlq_name = p.dead_letter.table.clone().unwrap_or_else(|| format!("{}_dead_letter", p.table.name));
    let dlq_location = warehouse.table_location(&p.table.database, &dlq_name, None, &config.storage)?;
    // The dead-letter table takes the pipeline's format: whoever reads the
    // table can read its dead letters.
    let (sink, dlq_sink): (Box<dyn TableSink>, Box<dyn TableSink>) = match p.table.format {
        TableFormat::Delta => (
            Box::new(DeltaSink::open(p.table.name.clone(), location, props.clone(), target, p.name.clone()).await.map_err(|e| fail(e.to_string()))?),
            Box::new(DeltaSink::open(dlq_name, dlq_location, props, target, format!("{}-dead-letter", p.name)).await.map_err(|e| fail(e.to_string()))?),
        ),
        TableFormat::Hive => {
            let catalog = config.catalog.clone().ok_or_else(|| fail("`format: hive` needs `catalog.database_url`".into()))?;
            let hive_target = |table: String, location: inlet_table::Location| HiveTarget {
                database: p.table.database.clone(),
                table,
                location,
                catalog: catalog.clone(),
                warehouse: inlet_metastore::server::warehouse_uri(config),
                properties: p.table.properties.clone(),
                target_file_size_bytes: target,
                staging_retention: Duration::from_secs(p.table.hive.staging_retention_secs),
                pipeline: p.name.clone(),
                partition_commit: None,
            };
            let mut table_target = hive_target(p.table.name.clone(), location);
            table_target.partition_commit = p.table.hive.partition_commit.clone().zip(p.table.event_time.clone());
            (
                Box::new(HiveSink::open(table_target).await.map_err(|e| fail(e.to_string()))?),
                Box::new(HiveSink::open(hive_target(dlq_name, dlq_location)).await.map_err(|e| fail(e.to_string()))?),
            )
        }
    };
    let decoder = decode::for_pipeline(p).map_err(|e| fail(e.to_string()))?;
    BatchWriter::new(p.clone(), decoder, sink, DeadLetterTable::new(p.name.clone(), dlq_sink)).map_err(|e| fail(e.to_string()))
}

/// Job states go to the catalog database when the configuration names one.
/// A database that does not answer at start costs this run its recorded
/// states, never its ingestion.
async fn job_reporter(config: &Config) -> Reporter {
    let instance = reporter::instance_name();
    let store = match &config.catalog {
        Some(c) => match tokio::time::timeout(Duration::from_secs(5), async {
            inlet_metastore::Store::open(&c.database_url, c.migrate_on_start).await
        })
        .await
        {
            Ok(Ok(store)) => Some(store),
            Ok(Err(e)) => {
                warn!(error = %e, "catalog database unavailable: job states of this run are not recorded (`inlet jobs` will not show them)");
                None
            }
            Err(_) => {
                warn!("catalog database did not answer within 5 s: job states of this run are not recorded");
                None
            }
        },
        None => None,
    };
    Reporter::start(store, instance, Some(metrics::job_state_gauge()))
}

/// Runs the configured pipelines until SIGTERM/SIGINT (or until caught up).
pub async fn run(config: Config, options: RunOptions) -> Result<RunSummary, IngestError> {
    let config = Arc::new(config);
    for name in &options.pipelines {
        if !config.pipelines.iter().any(|p| &p.name == name) {
            return Err(IngestError::UnknownPipeline(name.clone()));
        }
    }
    let selected: Vec<Arc<PipelineConfig>> = config
        .pipelines
        .iter()
        .filter(|p| options.pipelines.is_empty() || options.pipelines.contains(&p.name))
        .cloned()
        .map(Arc::new)
        .collect();
    let warehouse = Warehouse::from_config(&config.storage)?;
    let budget = MemoryBudget::new(config.ingest.memory_budget_bytes);
    metrics::METRICS.memory_budget_bytes.set(budget.limit() as i64);
    if let Some(addr) = &config.ingest.metrics_listen {
        metrics::serve(addr.clone()).await.map_err(|source| IngestError::Metrics { address: addr.clone(), source })?;
    }
    let shutdown = Arc::new(AtomicBool::new(false));
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            info!("shutdown requested: flushing and committing buffered data");
            shutdown.store(true, Ordering::Relaxed);
        });
    }

    let mut published = Vec::new();
    // Hive-format tables register themselves as they commit; the publisher
    // follows Delta logs.
    for p in selected.iter().filter(|p| p.table.format == TableFormat::Delta) {
        let dlq_name = p.dead_letter.table.clone().unwrap_or_else(|| format!("{}_dead_letter", p.table.name));
        for name in [p.table.name.clone(), dlq_name] {
            let location = warehouse.table_location(&p.table.database, &name, if name == p.table.name { p.table.location.as_deref() } else { None }, &config.storage)?;
            published.push((p.name.clone(), publish::Published { database: p.table.database.clone(), table: name, location }));
        }
    }
    let publisher = publish::Publisher::start(&config, published);
    let lineage = lineage::Lineage::start(&config, &selected, &warehouse);
    let reporter = job_reporter(&config).await;

    let mut handles = Vec::new();
    for p in &selected {
        let writer = build_writer(&config, &warehouse, p).await?;
        let writer = writer.with_lineage(lineage.observer(&p.name));
        if let Some(o) = lineage.observer(&p.name) {
            o.started(writer.table_schema().as_deref());
        }
        info!(pipeline = %p.name, table = %writer.describe(), "starting pipeline");
        let job = reporter.register(JobKind::Ingest, &p.name, Duration::from_secs(3)).await;
        let opts = pipeline::Options {
            until_caught_up: options.until_caught_up,
            budget: budget.clone(),
            shutdown: shutdown.clone(),
            shutdown_deadline: Duration::from_secs(config.ingest.shutdown_deadline_secs),
            job: job.clone(),
        };
        let (config, p, handle) = (config.clone(), p.clone(), tokio::runtime::Handle::current());
        let name = p.name.clone();
        handles.push((name, job, tokio::task::spawn_blocking(move || pipeline::run(config, p, writer, handle, opts))));
    }
    let total = handles.len();
    let mut summary = RunSummary::new();
    let mut failed = 0;
    for (name, job, h) in handles {
        let joined = h.await;
        lineage.finished(&name, match &joined {
            Ok(Ok(s)) => Ok(s.uncommitted),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("pipeline panicked: {e}")),
        });
        match joined {
            Ok(Ok(s)) => {
                info!(pipeline = %name, rows = s.rows, commits = s.commits, dead_letters = s.dead_letters, "pipeline stopped");
                summary.insert(name, s);
            }
            Ok(Err(e)) => {
                error!(pipeline = %name, error = %e, "pipeline failed");
                failed += 1;
            }
            Err(e) => {
                error!(pipeline = %name, error = %e, "pipeline panicked");
                job.enter(JobState::Failed, format!("panicked: {e}"));
                failed += 1;
            }
        }
    }
    publisher.finish().await;
    lineage.finish().await;
    reporter.flush(Duration::from_secs(5)).await;
    if failed > 0 {
        return Err(IngestError::Failed { failed, total });
    }
    Ok(summary)
}
