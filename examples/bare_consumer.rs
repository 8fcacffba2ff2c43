//! The ceiling of ingestion on this machine: an rdkafka consumer in a group
//! that reads a topic to its end and does nothing else. Run by
//! `scripts/bench-ingest.sh` beside `inlet ingest` on the same topic.
//!
//! Usage: bare_consumer BROKERS TOPIC

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (brokers, topic) = (&args[1], &args[2]);
    let start = Instant::now();
    let mut cc = ClientConfig::new();
    // Extra properties, `k=v,k=v`, to compare configurations.
    for kv in std::env::var("BARE_CONSUMER_PROPERTIES").unwrap_or_default().split(',').filter(|s| !s.is_empty()) {
        if let Some((k, v)) = kv.split_once('=') {
            cc.set(k, v);
        }
    }
    let consumer: BaseConsumer = cc
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bare-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("max.poll.interval.ms", "7000")
        .create()
        .expect("consumer");
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let mut total_end = 0i64;
    let mut marks = Vec::new();
    for p in md.topics()[0].partitions() {
        let (low, high) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10)).expect("watermarks");
        total_end += high - low;
        marks.push(format!("[{},{low},{high}]", p.id()));
    }
    eprintln!("watermarks [partition,low,high]: {}", marks.join(" "));
    consumer.subscribe(&[topic]).expect("subscribe");
    let (mut n, mut bytes) = (0i64, 0u64);
    let mut first: Option<Instant> = None;
    while n < total_end {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            first.get_or_insert_with(Instant::now);
            n += 1;
            bytes += m.payload_len() as u64;
        }
    }
    let total = start.elapsed().as_secs_f64();
    let consuming = first.map(|f| f.elapsed().as_secs_f64()).unwrap_or(total);
    println!("{{\"messages\":{n},\"bytes\":{bytes},\"seconds\":{total:.3},\"seconds_after_first_message\":{consuming:.3}}}");
}
