//! The Kafka consumer of a pipeline: configuration, subscription, and the
//! rebalance hook that positions every newly assigned partition from the
//! table's committed progress (never from Kafka's committed offsets).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use tracing::{error, info, warn};

use inlet_config::{Config, PipelineConfig, StartOffset};

use crate::buffer::TopicPartition;

/// Reads committed progress of partitions; provided by the write stage so
/// that it answers only after in-flight batches are done.
pub type ProgressFn = dyn Fn(&[TopicPartition]) -> Result<HashMap<TopicPartition, Option<i64>>, String> + Send + Sync;

/// A change of assignment, seen by the read loop after `poll` returns.
#[derive(Debug, Clone)]
pub enum AssignmentChange {
    Assigned(Vec<TopicPartition>),
    Revoked(Vec<TopicPartition>),
    Failed(String),
}

/// State shared between the consumer's callbacks and the read loop.
pub struct Assignment {
    /// Committed progress (the expected `txn` version) per owned partition.
    pub owned: BTreeMap<TopicPartition, Option<i64>>,
    pub changes: Vec<AssignmentChange>,
}

pub struct InletContext {
    pipeline: String,
    start: StartOffset,
    progress: Box<ProgressFn>,
    pub assignment: Arc<Mutex<Assignment>>,
}

impl ClientContext for InletContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        // The table's total lag, for freshness alerts (`inlet_lineage_consumer_lag_messages`).
        let owned: Vec<i64> = statistics.topics.values().flat_map(|t| t.partitions.iter().filter(|(p, _)| **p >= 0).map(|(_, p)| p.consumer_lag)).filter(|l| *l >= 0).collect();
        crate::lineage::report_lag(&self.pipeline, (!owned.is_empty()).then(|| owned.iter().sum()));
        let lag = &crate::metrics::METRICS.consumer_lag_messages;
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // -1 is librdkafka's internal "unassigned" partition; a lag
                // of -1 means unknown (not owned, or nothing committed yet).
                if *partition < 0 {
                    continue;
                }
                let labels = [self.pipeline.as_str(), topic.as_str(), &partition.to_string()];
                if p.consumer_lag >= 0 {
                    lag.with_label_values(&labels).set(p.consumer_lag);
                } else {
                    let _ = lag.remove_label_values(&labels);
                }
            }
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        // End-of-partition is routine (it drives `--until-caught-up`);
        // librdkafka also reports it through this channel.
        if matches!(error, rdkafka::error::KafkaError::PartitionEOF(_)) || error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF) {
            tracing::debug!(pipeline = %self.pipeline, "librdkafka: {reason}");
        } else {
            warn!(pipeline = %self.pipeline, error = %error, "librdkafka: {reason}");
        }
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                error!(pipeline = %self.pipeline, facility = fac, "librdkafka: {log_message}")
            }
            RDKafkaLogLevel::Warning => warn!(pipeline = %self.pipeline, facility = fac, "librdkafka: {log_message}"),
            _ => tracing::debug!(pipeline = %self.pipeline, facility = fac, "librdkafka: {log_message}"),
        }
    }
}

fn tps(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements().iter().map(|e| TopicPartition { topic: Arc::from(e.topic()), partition: e.partition() }).collect()
}

impl InletContext {
    fn start_offset(&self, tp: &TopicPartition) -> Offset {
        match &self.start {
            StartOffset::Earliest => Offset::Beginning,
            StartOffset::Latest => Offset::End,
            StartOffset::Partitions(map) => map
                .get(tp.topic.as_ref())
                .and_then(|parts| parts.get(&tp.partition.to_string()))
                .map(|o| Offset::Offset(*o))
                .unwrap_or(Offset::Beginning),
        }
    }
}

impl ConsumerContext for InletContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let new = tps(tpl);
                // Progress comes from the table; retried because a rebalance
                // must not fail on one slow storage call.
                let mut progress = Err(String::new());
                for attempt in 0..5 {
                    progress = (self.progress)(&new);
                    match &progress {
                        Ok(_) => break,
                        Err(e) => {
                            warn!(pipeline = %self.pipeline, attempt, error = %e, "reading table progress failed; retrying");
                            std::thread::sleep(std::time::Duration::from_millis(500 * (attempt + 1)));
                        }
                    }
                }
                let progress = match progress {
                    Ok(p) => p,
                    Err(e) => {
                        self.assignment.lock().changes.push(AssignmentChange::Failed(format!("cannot read the table's progress for assigned partitions: {e}")));
                        // Take the partitions without positions; the read
                        // loop stops the pipeline before consuming.
                        let _ = if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) };
                        return;
                    }
                };
                for tp in &new {
                    let committed = progress.get(tp).copied().flatten();
                    let offset = match committed {
                        Some(v) => Offset::Offset(v + 1),
                        None => self.start_offset(tp),
                    };
                    if let Err(e) = tpl.set_partition_offset(&tp.topic, tp.partition, offset) {
                        warn!(pipeline = %self.pipeline, partition = %tp, error = %e, "cannot set start offset");
                    }
                    info!(pipeline = %self.pipeline, partition = %tp, ?committed, start = ?offset, "assigned");
                }
                {
                    let mut a = self.assignment.lock();
                    for tp in &new {
                        a.owned.insert(tp.clone(), progress.get(tp).copied().flatten());
                    }
                    a.changes.push(AssignmentChange::Assigned(new));
                }
                let r = if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) };
                if let Err(e) = r {
                    error!(pipeline = %self.pipeline, error = %e, "assign failed");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let lost = tps(tpl);
                info!(pipeline = %self.pipeline, partitions = ?lost.iter().map(|t| t.to_string()).collect::<Vec<_>>(), "revoked");
                {
                    let mut a = self.assignment.lock();
                    for tp in &lost {
                        a.owned.remove(tp);
                    }
                    a.changes.push(AssignmentChange::Revoked(lost));
                }
                let r = if cooperative { consumer.incremental_unassign(tpl) } else { consumer.unassign() };
                if let Err(e) = r {
                    error!(pipeline = %self.pipeline, error = %e, "unassign failed");
                }
            }
            other => {
                error!(pipeline = %self.pipeline, error = ?other, "rebalance error");
                let _ = consumer.unassign();
                let mut a = self.assignment.lock();
                a.owned.clear();
                a.changes.push(AssignmentChange::Revoked(Vec::new()));
            }
        }
    }

    fn pre_rebalance(&self, _: &BaseConsumer<Self>, _: &Rebalance<'_>) {}

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            // Kafka offsets only mirror the table's progress for lag tools.
            tracing::debug!(pipeline = %self.pipeline, error = %e, "offset commit to Kafka failed");
        }
    }
}

/// Properties inlet sets itself; users may not turn them off.
const FORCED: &[(&str, &str)] = &[("enable.auto.commit", "false"), ("enable.auto.offset.store", "false"), ("enable.partition.eof", "true")];

/// Builds the consumer of `pipeline` and subscribes it.
pub fn consumer(config: &Config, pipeline: &PipelineConfig, progress: Box<ProgressFn>) -> KafkaResult<BaseConsumer<InletContext>> {
    let mut cc = ClientConfig::new();
    let brokers = pipeline.source.brokers.clone().or_else(|| config.kafka.brokers.clone()).unwrap_or_default();
    cc.set("bootstrap.servers", &brokers);
    cc.set("group.id", pipeline.source.group_id.clone().unwrap_or_else(|| format!("inlet-{}", pipeline.name)));
    cc.set("client.id", format!("inlet-{}", pipeline.name));
    // A missing position is an error, so a deleted range is never skipped
    // silently (see `source.on_offset_gap`).
    cc.set("auto.offset.reset", "error");
    // Bounded prefetch, refilled quickly: librdkafka's default backoff of a
    // second after the queue was full leaves the consumer idle while a
    // batch is being written (measured: 15.5 s -> 8.7 s for 2 M events).
    cc.set("queued.max.messages.kbytes", "32768");
    cc.set("queued.min.messages", "20000");
    cc.set("fetch.queue.backoff.ms", "10");
    // Feeds `inlet_ingest_consumer_lag_messages`.
    cc.set("statistics.interval.ms", "5000");
    for (k, v) in config.kafka.properties.iter().chain(pipeline.source.properties.iter()) {
        cc.set(k, v);
    }
    for (k, v) in FORCED {
        if let Some(user) = cc.get(k) {
            if user != *v {
                warn!(pipeline = %pipeline.name, property = k, "ignoring `{k}={user}`: inlet keeps progress in the table and needs `{k}={v}`");
            }
        }
        cc.set(*k, *v);
    }
    cc.set_log_level(RDKafkaLogLevel::Warning);
    let context = InletContext {
        pipeline: pipeline.name.clone(),
        start: pipeline.source.start_offset.clone(),
        progress,
        assignment: Arc::new(Mutex::new(Assignment { owned: BTreeMap::new(), changes: Vec::new() })),
    };
    let consumer: BaseConsumer<InletContext> = cc.create_with_context(context)?;
    let topics: Vec<String> = match &pipeline.source.topic_pattern {
        Some(p) => vec![if p.starts_with('^') { p.clone() } else { format!("^{p}$") }],
        None => pipeline.source.topics.clone(),
    };
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&refs)?;
    Ok(consumer)
}
