//! A sample event generator: creates a topic and produces JSON events that
//! look like a product's click stream (about 250 bytes each). Used by the
//! quickstart, the tests and the benchmarks.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

#[derive(Debug, Clone)]
pub struct SampleOptions {
    pub brokers: String,
    pub topic: String,
    pub partitions: i32,
    pub count: u64,
    /// Events per second; 0 for as fast as possible.
    pub rate: u64,
    /// First event id (to produce disjoint ranges across runs).
    pub start_id: u64,
    /// Every n-th event is malformed JSON (0: none).
    pub bad_every: u64,
}

/// Creates `topic` with `partitions` partitions unless it exists.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", brokers).create()?;
    let results = admin
        .create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))))
        .await?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                tracing::error!(topic = %t, error = %code, "create topic failed");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}

const TYPES: [&str; 5] = ["page_view", "click", "add_to_cart", "purchase", "search"];
const COUNTRIES: [&str; 8] = ["DE", "US", "CN", "BR", "IN", "FR", "JP", "GB"];

/// The JSON of event `id` at `ts_ms`.
pub fn event(id: u64, ts_ms: i64) -> String {
    let ts = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ts_ms).unwrap_or_default();
    let h = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!(
        r#"{{"event_id":{id},"user_id":{},"session_id":"s-{:016x}","event_type":"{}","country":"{}","amount":{:.2},"ts":"{}","url":"https://shop.example.com/p/{}","user_agent":"Mozilla/5.0 (X11; Linux x86_64) inlet-sample"}}"#,
        h % 1_000_000,
        h,
        TYPES[(h % 5) as usize],
        COUNTRIES[((h >> 8) % 8) as usize],
        (h % 100_000) as f64 / 100.0,
        ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        h % 50_000,
    )
}

/// Produces `count` events; returns how many were acknowledged.
pub async fn produce(opts: &SampleOptions) -> Result<u64, KafkaError> {
    create_topic(&opts.brokers, &opts.topic, opts.partitions).await?;
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &opts.brokers)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .set("compression.type", "lz4")
        .create()?;
    let start = Instant::now();
    let mut sent = 0u64;
    for i in 0..opts.count {
        let id = opts.start_id + i;
        let payload = if opts.bad_every > 0 && i % opts.bad_every == opts.bad_every - 1 { format!("{{\"event_id\":{id},\"broken") } else { event(id, chrono::Utc::now().timestamp_millis()) };
        let key = id.to_string();
        loop {
            match producer.send(BaseRecord::to(&opts.topic).payload(&payload).key(&key)) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => std::thread::sleep(Duration::from_millis(5)),
                Err((e, _)) => return Err(e),
            }
        }
        sent += 1;
        if opts.rate > 0 {
            let due = Duration::from_secs_f64(sent as f64 / opts.rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(sent)
}
