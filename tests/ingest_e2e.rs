//! End-to-end ingestion tests against a real Kafka-protocol broker (tansu)
//! and, for S3, a moto server: `inlet ingest` is run as users run it.

mod common;

use std::time::Duration;

use common::*;
use rand::Rng;

/// Ends an inline Python reader: deltalake + pyarrow can abort in their
/// exit handlers ("terminate called without an active exception",
/// delta-rs#2184) after printing a correct answer.
const PY_EXIT: &str = "; import os; sys.stdout.flush(); os._exit(0)";

fn assert_exactly_once(pairs: &std::collections::HashMap<(i32, i64), u32>, n: usize) {
    let dups: Vec<_> = pairs.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(dups.is_empty(), "duplicated (partition, offset) pairs: {dups:?}");
    assert_eq!(pairs.len(), n, "distinct (partition, offset) pairs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_lands_exactly_once() {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("events");
    create_topic(&topic, 4).await;
    let n = 20_000u64;
    produce(&topic, 4, &events(0, n));
    let cfg = w.write_config(&pipeline_config(w.warehouse().to_str().unwrap(), &topic, &table, "", ""));
    ingest_until_caught_up(&cfg);

    let dir = w.warehouse().join("e2e.db").join(&table);
    let pairs = rust_pairs(&dir).await;
    assert_exactly_once(&pairs, n as usize);
    for p in 0..4 {
        assert_eq!(pairs.keys().filter(|(part, _)| *part == p).count() as u64, n / 4, "partition {p}");
    }
    let py = python_read(dir.to_str().unwrap(), false);
    assert_eq!(py.rows, n);
    assert_eq!(py.distinct_pairs, Some(n));
    assert_eq!(py.duplicate_pairs, Some(0));
    for col in ["event_id", "user_id", "event_type", "amount", "ts", "_kafka_partition", "_kafka_offset"] {
        assert!(py.columns.iter().any(|c| c == col), "column {col} missing from {:?}", py.columns);
    }

    // A second run has nothing to do and must not duplicate anything.
    ingest_until_caught_up(&cfg);
    assert_eq!(python_read(dir.to_str().unwrap(), false).rows, n);

    // More events later are appended after the committed progress.
    produce(&topic, 4, &events(n, 1000));
    ingest_until_caught_up(&cfg);
    assert_exactly_once(&rust_pairs(&dir).await, n as usize + 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("killed");
    create_topic(&topic, 4).await;
    let n = 200_000u64;
    // Produce while the ingester is being killed.
    let producer_topic = topic.clone();
    let producer = std::thread::spawn(move || {
        for chunk in 0..20u64 {
            produce(&producer_topic, 4, &events(chunk * 10_000, 10_000));
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let extra = "    dead_letter:\n      policy: stop\n";
    let cfg = w.write_config(&pipeline_config(w.warehouse().to_str().unwrap(), &topic, &table, "", extra));
    let cfg_s = cfg.to_str().unwrap().to_string();
    let log = w.path().join("ingest.log");
    let mut rng = rand::rng();
    for _ in 0..10 {
        let mut child = spawn_inlet(&["ingest", "--config", &cfg_s], &log);
        let ms = rng.random_range(1_000..8_000);
        std::thread::sleep(Duration::from_millis(ms));
        sigkill(&mut child);
    }
    producer.join().unwrap();
    ingest_until_caught_up(&cfg);

    let dir = w.warehouse().join("e2e.db").join(&table);
    let pairs = rust_pairs(&dir).await;
    assert_exactly_once(&pairs, n as usize);
    let py = python_read(dir.to_str().unwrap(), false);
    assert_eq!((py.rows, py.duplicate_pairs), (n, Some(0)));
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log_text.contains("committed"), "the killed runs never committed anything; log:\n{}", &log_text[log_text.len().saturating_sub(3000)..]);
}

async fn two_processes_one_group(strategy: &str) {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("shared");
    create_topic(&topic, 4).await;
    let extra_storage = "";
    let mut cfg_text = pipeline_config(w.warehouse().to_str().unwrap(), &topic, &table, extra_storage, "");
    cfg_text = cfg_text.replace("    max.poll.interval.ms: \"30000\"\n", &format!("    max.poll.interval.ms: \"30000\"\n    partition.assignment.strategy: {strategy}\n"));
    let cfg = w.write_config(&cfg_text);
    let cfg_s = cfg.to_str().unwrap().to_string();
    let n = 60_000u64;
    produce(&topic, 4, &events(0, n / 2));
    let mut a = spawn_inlet(&["ingest", "--config", &cfg_s], &w.path().join("a.log"));
    let mut b = spawn_inlet(&["ingest", "--config", &cfg_s], &w.path().join("b.log"));
    std::thread::sleep(Duration::from_secs(8));
    // One member goes away mid-run; the other takes over its partitions.
    sigkill(&mut b);
    produce(&topic, 4, &events(n / 2, n / 2));
    let dir = w.warehouse().join("e2e.db").join(&table);
    let dir_s = dir.to_str().unwrap().to_string();
    let done = wait_for(Duration::from_secs(120), || dir.join("_delta_log").exists() && python_read(&dir_s, false).rows >= n);
    sigterm(&a);
    let _ = a.wait();
    assert!(done, "not all rows arrived; a.log:\n{}", std::fs::read_to_string(w.path().join("a.log")).unwrap_or_default());
    assert_exactly_once(&rust_pairs(&dir).await, n as usize);
    let a_log = std::fs::read_to_string(w.path().join("a.log")).unwrap_or_default();
    let b_log = std::fs::read_to_string(w.path().join("b.log")).unwrap_or_default();
    assert!(a_log.contains("assigned") && b_log.contains("assigned"), "both processes should have owned partitions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_in_one_group_one_stopped_eager() {
    two_processes_one_group("range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_in_one_group_one_stopped_cooperative() {
    two_processes_one_group("cooperative-sticky").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_go_to_the_dead_letter_table() {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("dirty");
    create_topic(&topic, 2).await;
    let mut payloads = Vec::new();
    let mut good = 0u64;
    let mut bad = Vec::new();
    for i in 0..3000u64 {
        let p: Vec<u8> = match i % 10 {
            3 => b"{\"event_id\": 1, \"broken".to_vec(),
            5 => format!("{{\"event_id\":\"not a number {i}\",\"user_id\":1}}").into_bytes(),
            7 => format!("{{\"event_id\":{i},\"pad\":\"{}\"}}", "x".repeat(5000)).into_bytes(),
            _ => {
                good += 1;
                inlet_ingest::sample::event(i, 1_700_000_000_000).into_bytes()
            }
        };
        if matches!(i % 10, 3 | 5 | 7) {
            bad.push(i);
        }
        payloads.push(p);
    }
    // The first message fixes the schema: make sure it is a good one.
    produce(&topic, 2, &payloads);
    let extra = "    dead_letter:\n      max_message_bytes: 2000\n";
    let cfg = w.write_config(&pipeline_config(w.warehouse().to_str().unwrap(), &topic, &table, "", extra));
    ingest_until_caught_up(&cfg);

    let dir = w.warehouse().join("e2e.db").join(&table);
    let py = python_read(dir.to_str().unwrap(), false);
    assert_eq!(py.rows, good);
    assert_eq!(py.duplicate_pairs, Some(0));
    let dlq = w.warehouse().join("e2e.db").join(format!("{table}_dead_letter"));
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!("import sys, json, deltalake; t = deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table().to_pylist(); print(json.dumps([[r['partition'], r['offset'], r['reason'], r['payload_size']] for r in t])){PY_EXIT}"))
        .arg(&dlq)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<(i32, i64, String, i64)> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), bad.len(), "dead letters");
    let mut seen = std::collections::HashSet::new();
    for (p, o, reason, size) in &rows {
        assert!(seen.insert((*p, *o)), "dead letter for {p}/{o} twice");
        // Message i went to partition i % 2 at offset i / 2.
        let i = *o as u64 * 2 + *p as u64;
        match i % 10 {
            3 => assert!(reason.to_lowercase().contains("truncated") || reason.contains("JSON"), "{reason}"),
            5 => assert!(reason.contains("not a number"), "{reason}"),
            7 => {
                assert!(reason.contains("exceeds"), "{reason}");
                assert!(*size > 5000);
            }
            other => panic!("good message {i} (kind {other}) was dead-lettered: {reason}"),
        }
    }
    // Good and dead-lettered messages together cover every offset once.
    let pairs = rust_pairs(&dir).await;
    for (p, o, _, _) in &rows {
        assert!(!pairs.contains_key(&(*p, *o)), "{p}/{o} is in both tables");
    }
    assert_eq!(pairs.len() + rows.len(), 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_warehouse_on_moto() {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("s3events");
    let bucket = unique("bucket").replace('_', "-");
    create_bucket(&bucket);
    create_topic(&topic, 4).await;
    let n = 10_000u64;
    produce(&topic, 4, &events(0, n));
    let s3 = format!("  s3:\n    endpoint: {}\n    access_key_id: testing\n    secret_access_key: testing\n", s3_endpoint());
    let cfg = w.write_config(&pipeline_config(&format!("s3://{bucket}/wh"), &topic, &table, &s3, ""));
    ingest_until_caught_up(&cfg);
    let uri = format!("s3://{bucket}/wh/e2e.db/{table}");
    let py = python_read(&uri, true);
    assert_eq!(py.rows, n);
    assert_eq!(py.distinct_pairs, Some(n));
    assert_eq!(py.duplicate_pairs, Some(0));
    // Restart: nothing new, nothing duplicated.
    ingest_until_caught_up(&cfg);
    assert_eq!(python_read(&uri, true).rows, n);
}

#[test]
fn a_config_with_three_mistakes_gives_three_located_errors() {
    let w = Workdir::new();
    let cfg = w.write_config(
        "storage:\n  warehouse: /tmp/x\nkafka:\n  brokers: localhost:9092\npipelines:\n  - name: p\n    source:\n      topcs: [a]\n    table:\n      database: db\n    flush:\n      max_rows: many\n",
    );
    let out = run_inlet(&["validate", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78), "exit code for a bad config");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(lines.len(), 3, "{err}");
    let f = cfg.display().to_string();
    assert!(err.contains(&format!("{f}:8:7: pipelines[0].source.topcs: unknown field `topcs` (did you mean `topics`?)")), "{err}");
    assert!(err.contains(&format!("{f}:9:5: pipelines[0].table: missing field `name`")), "{err}");
    assert!(err.contains(&format!("{f}:12:17: pipelines[0].flush.max_rows: expected an integer, found a string \"many\"")), "{err}");
}

fn create_bucket(bucket: &str) {
    let script = "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='testing', aws_secret_access_key='testing', region_name='us-east-1').create_bucket(Bucket=sys.argv[2])";
    let out = std::process::Command::new("python3").args(["-c", script, &s3_endpoint(), bucket]).output().unwrap();
    assert!(out.status.success(), "create bucket: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_time_partitions_and_additive_schema_evolution() {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("evolving");
    create_topic(&topic, 2).await;
    // 2024-03-10T22:00Z .. spread over 4 hours; Asia/Shanghai is UTC+8.
    let first: Vec<Vec<u8>> = (0..400u64)
        .map(|i| format!(r#"{{"id":{i},"country":"{}","ts":"2024-03-10T{:02}:30:00Z"}}"#, if i % 2 == 0 { "DE" } else { "US" }, 22 + (i % 2)).into_bytes())
        .collect();
    produce(&topic, 2, &first);
    let extra = r#"    table:
      database: e2e
      name: TABLE
      partition_by: [country]
      event_time:
        field: ts
        time_zone: Asia/Shanghai
        partitions:
          - {column: dt, format: "%Y-%m-%d"}
          - {column: hour, format: "%H"}
"#
    .replace("TABLE", &table);
    let base = pipeline_config(w.warehouse().to_str().unwrap(), &topic, &table, "", "");
    // Replace the plain table section by the partitioned one.
    let cfg_text = base.replace(&format!("    table:\n      database: e2e\n      name: {table}\n"), &extra);
    let cfg = w.write_config(&cfg_text);
    ingest_until_caught_up(&cfg);
    let dir = w.warehouse().join("e2e.db").join(&table);
    assert!(dir.join("country=DE/dt=2024-03-11/hour=06").is_dir(), "event-time partition directory in the configured time zone");
    assert!(dir.join("country=US/dt=2024-03-11/hour=07").is_dir());

    // New fields arrive: they become nullable columns, old rows read null.
    let second: Vec<Vec<u8>> = (400..600u64)
        .map(|i| format!(r#"{{"id":{i},"country":"DE","ts":"2024-03-11T01:00:00Z","channel":"web","score":{}.5}}"#, i).into_bytes())
        .collect();
    produce(&topic, 2, &second);
    ingest_until_caught_up(&cfg);
    let script = "import sys, json, deltalake; t = deltalake.DeltaTable(sys.argv[1]); d = t.to_pyarrow_table().to_pydict(); print(json.dumps({'n': len(d['id']), 'cols': t.metadata().partition_columns, 'fields': [f.name for f in t.schema().fields], 'null_channel': sum(1 for c in d['channel'] if c is None), 'web': sum(1 for c in d['channel'] if c == 'web')}))";
    let script = format!("{script}{PY_EXIT}");
    let out = std::process::Command::new("python3").args(["-c", &script, dir.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["n"], 600);
    assert_eq!(v["cols"], serde_json::json!(["country", "dt", "hour"]));
    assert!(v["fields"].as_array().unwrap().iter().any(|f| f == "score"), "{v}");
    assert_eq!(v["null_channel"], 400);
    assert_eq!(v["web"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_and_commits_what_is_buffered() {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("term");
    create_topic(&topic, 4).await;
    let n = 5_000u64;
    produce(&topic, 4, &events(0, n));
    // Nothing would be committed for a minute on its own.
    let cfg_text = pipeline_config(w.warehouse().to_str().unwrap(), &topic, &table, "", "")
        .replace("      max_rows: 5000\n      max_latency_ms: 500\n", "      max_rows: 1000000\n      max_latency_ms: 60000\n");
    let cfg = w.write_config(&cfg_text);
    let log = w.path().join("term.log");
    let mut child = spawn_inlet(&["ingest", "--config", cfg.to_str().unwrap()], &log);
    let read_all = wait_for(Duration::from_secs(60), || std::fs::read_to_string(&log).unwrap_or_default().contains("assigned"));
    assert!(read_all, "never assigned");
    std::thread::sleep(Duration::from_secs(4));
    sigterm(&child);
    let started = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(started.elapsed() < Duration::from_secs(20), "shutdown took {:?}", started.elapsed());
    let dir = w.warehouse().join("e2e.db").join(&table);
    assert_exactly_once(&rust_pairs(&dir).await, n as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_memory_budget_pauses_consumption_without_losing_anything() {
    let w = Workdir::new();
    let prefix = unique("rx");
    let (t1, t2) = (format!("{prefix}_a"), format!("{prefix}_b"));
    let table = unique("budget");
    create_topic(&t1, 2).await;
    create_topic(&t2, 2).await;
    let n = 10_000u64;
    produce(&t1, 2, &events(0, n));
    produce(&t2, 2, &events(n, n));
    // Two topics by regex, a 1 MiB budget for ~5 MB of messages.
    let cfg_text = pipeline_config(w.warehouse().to_str().unwrap(), &t1, &table, "", "")
        .replace(&format!("      topics: [{t1}]\n"), &format!("      topic_pattern: \"{prefix}_.*\"\n"))
        .replace("ingest:\n", "ingest:\n  memory_budget_bytes: 1048576\n")
        .replace("      max_rows: 5000\n", "      max_rows: 100000\n      max_bytes: 262144\n");
    let cfg = w.write_config(&cfg_text);
    ingest_until_caught_up(&cfg);
    let dir = w.warehouse().join("e2e.db").join(&table);
    let py = python_read(dir.to_str().unwrap(), false);
    assert_eq!(py.rows, 2 * n);
    // Two topics share partition numbers: count per (partition, offset) is 2.
    assert_eq!(py.distinct_pairs, Some(n));
    let pairs = rust_pairs(&dir).await;
    assert!(pairs.values().all(|c| *c == 2), "each (partition, offset) once per topic");
}
