//! End-to-end lineage and latency: a real pipeline (tansu broker) with every
//! transport — a real HTTP receiver (`tests/support/openlineage_receiver.py`)
//! parsing each event with openlineage-python's own model, a JSON-lines file,
//! and the catalog's lineage store — then a compaction run; the stored graph
//! answers topic -> ingest -> table -> compaction, with the table's Hive
//! name, through `inlet lineage` on the database and on the metastore's REST
//! API. Freshness rises while the producer is stopped (the alert fires to
//! the webhook) and falls back once it resumes (the alert resolves).
//!
//! Needs `INLET_TEST_BROKERS` and a Python with `openlineage-python`
//! (`scripts/services.sh start kafka` installs it).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

struct Receiver {
    child: Child,
    port: u16,
    out: std::path::PathBuf,
}

impl Receiver {
    fn start(w: &Workdir) -> Receiver {
        let out = w.path().join("received.jsonl");
        let mut child = Command::new(std::env::var("INLET_PYTHON").unwrap_or_else(|_| "python3".into()))
            .arg(repo_root().join("tests/support/openlineage_receiver.py"))
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("receiver port");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("receiver did not start (is openlineage-python installed? scripts/services.sh installs it): {line:?}"));
        Receiver { child, port, out }
    }

    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    fn events(&self) -> Vec<Value> {
        self.records().into_iter().filter(|r| r.get("ok").is_some()).collect()
    }

    fn alerts(&self) -> Vec<Value> {
        self.records().into_iter().filter_map(|r| r.get("alert").cloned()).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    // Two cores shared by a whole test suite: a busy process may answer
    // late, so a slow answer is retried before it counts as none.
    (0..3).find_map(|attempt| {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(500));
        }
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
        let mut body = Vec::new();
        s.read_to_end(&mut body).ok()?;
        Some(String::from_utf8_lossy(&body).into_owned())
    })
}

/// A sample of a metric (exact label set) from the ingest endpoint.
fn metric(port: u16, name_and_labels: &str) -> Option<f64> {
    let text = http_get(port, "/metrics")?;
    text.lines().find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' ')).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Produces `n` events whose event time is now.
fn produce_now(topic: &str, start: u64, n: u64) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let payloads: Vec<Vec<u8>> = (start..start + n).map(|i| inlet_ingest::sample::event(i, now).into_bytes()).collect();
    produce(topic, 2, &payloads);
}

fn lineage(args: &[&str]) -> Value {
    let mut all = vec!["lineage"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = run_inlet(&all);
    assert!(out.status.success(), "inlet {all:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bad JSON from {all:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn event_types(events: &[Value], job: &str) -> Vec<String> {
    events.iter().filter(|e| e["event"]["job"]["name"] == job).map(|e| e["event"]["eventType"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lineage_reaches_every_transport_and_the_graph_answers_topic_to_hive_table() {
    let w = Workdir::new();
    let topic = unique("lt");
    let table = unique("lineage");
    create_topic(&topic, 2).await;
    let receiver = Receiver::start(&w);
    let metrics_port = free_port();
    let (thrift_port, rest_port) = (free_port(), free_port());
    let db = w.path().join("catalog.db");
    let jsonl = w.path().join("lineage.jsonl");
    let mut text = pipeline_config(w.warehouse().to_str().unwrap(), &topic, &table, "", "");
    // Event-time partitions (derived columns with column lineage), and alerts.
    text = text.replace(
        &format!("      name: {table}\n"),
        &format!("      name: {table}\n      event_time:\n        field: ts\n        partitions:\n          - {{column: dt, format: \"%Y-%m-%d\"}}\n"),
    );
    text = text.replace("      max_latency_ms: 500\n", "      max_latency_ms: 300\n    alerts:\n      max_freshness_secs: 4\n");
    text = text.replace("ingest:\n", &format!("ingest:\n  metrics_listen: 127.0.0.1:{metrics_port}\n"));
    text.push_str(&format!(
        r#"catalog:
  database_url: "sqlite://{db}"
metastore:
  thrift_listen: 127.0.0.1:{thrift_port}
  http_listen: 127.0.0.1:{rest_port}
lineage:
  running_every: commit
  transports:
    - type: http
      url: http://127.0.0.1:{rp}/api/v1/lineage
      token: e2e-secret
      timeout_ms: 2000
      retries: 2
    - type: file
      path: {jsonl}
    - type: catalog
  alerts:
    webhook_url: http://127.0.0.1:{rp}/alerts
    check_interval_secs: 1
    repeat_interval_secs: 0
compaction:
  tables:
    - pipeline: {table}
      skip_active_partitions: false
      min_files_per_bin: 2
"#,
        db = db.display(),
        rp = receiver.port,
        jsonl = jsonl.display(),
    ));
    let cfg = w.write_config(&text);
    let cfg_s = cfg.to_str().unwrap().to_string();
    let out = run_inlet(&["validate", "--config", &cfg_s]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let log = w.path().join("ingest.log");
    let mut ingest = spawn_inlet(&["ingest", "--config", &cfg_s], &log);
    let label = format!("e2e.{table}");
    let freshness = |port| metric(port, &format!("inlet_lineage_freshness_seconds{{table=\"{label}\"}}"));

    // Data flows: freshness is small.
    for round in 0..4 {
        produce_now(&topic, round * 200, 200);
        std::thread::sleep(Duration::from_millis(500));
    }
    let fresh = wait_for(Duration::from_secs(60), || freshness(metrics_port).is_some_and(|f| f < 3.0));
    assert!(fresh, "freshness never low: {:?}\n{}", freshness(metrics_port), std::fs::read_to_string(&log).unwrap_or_default());

    // The producer stops: freshness rises past the threshold, the alert fires.
    let stopped_at = Instant::now();
    let rose = wait_for(Duration::from_secs(30), || freshness(metrics_port).is_some_and(|f| f > 5.0));
    assert!(rose, "freshness did not rise: {:?}", freshness(metrics_port));
    assert!(stopped_at.elapsed() >= Duration::from_secs(2), "rose too early");
    assert!(wait_for(Duration::from_secs(15), || receiver.alerts().iter().any(|a| a["status"] == "firing" && a["alert"] == "freshness")), "no firing alert: {:?}", receiver.alerts());
    assert_eq!(metric(metrics_port, &format!("inlet_lineage_alert_firing{{alert=\"freshness\",table=\"{label}\"}}")), Some(1.0));

    // The producer resumes: freshness falls back, the alert resolves.
    let resumed = std::thread::spawn({
        let topic = topic.clone();
        move || {
            for round in 0..8 {
                produce_now(&topic, 10_000 + round * 100, 100);
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    });
    let fell = wait_for(Duration::from_secs(30), || freshness(metrics_port).is_some_and(|f| f < 3.0));
    assert!(fell, "freshness did not fall back: {:?}", freshness(metrics_port));
    assert!(wait_for(Duration::from_secs(15), || receiver.alerts().iter().any(|a| a["status"] == "resolved")), "alert never resolved: {:?}", receiver.alerts());
    resumed.join().unwrap();
    // Latency histograms per stage, with units in their names.
    let m = http_get(metrics_port, "/metrics").expect("the ingest metrics endpoint answers");
    for stage in ["event_to_kafka", "kafka_to_commit", "event_to_commit", "commit_to_catalog", "event_to_catalog"] {
        let count = format!("inlet_lineage_latency_seconds_count{{stage=\"{stage}\",table=\"{label}\"}}");
        assert!(m.lines().any(|l| l.starts_with(&count) && !l.ends_with(" 0")), "no {count} in\n{m}");
    }
    assert!(m.contains("inlet_lineage_events_sent_total{transport=\"http\"}"), "{m}");

    std::thread::sleep(Duration::from_secs(1));
    sigterm(&ingest);
    let status = ingest.wait().unwrap();
    assert!(status.success(), "ingest failed: {}", std::fs::read_to_string(&log).unwrap_or_default());

    // A compaction run: a BATCH job with the table in and out.
    let out = run_inlet(&["compact", "--config", &cfg_s, "--table", &table, "--json"]);
    assert!(out.status.success(), "compact: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
    assert_eq!(report["outcome"], "succeeded", "{report}");

    // The HTTP receiver parsed every event with openlineage-python's model.
    let ingest_job = format!("ingest.{table}");
    let compaction_job = format!("compaction.e2e.{table}");
    let ok = wait_for(Duration::from_secs(10), || event_types(&receiver.events(), &compaction_job).len() >= 2);
    let events = receiver.events();
    let bad: Vec<&Value> = events.iter().filter(|e| e["ok"] != true).collect();
    assert!(bad.is_empty(), "events openlineage-python could not parse: {bad:?}");
    assert!(ok, "compaction events missing: {:?}", events.iter().map(|e| (&e["event"]["job"]["name"], &e["event"]["eventType"])).collect::<Vec<_>>());
    let types = event_types(&events, &ingest_job);
    assert_eq!(types.first().map(String::as_str), Some("START"), "{types:?}");
    assert_eq!(types.last().map(String::as_str), Some("COMPLETE"), "{types:?}");
    let running = types.iter().filter(|t| *t == "RUNNING").count();
    assert!(running >= 3, "one RUNNING per commit: {types:?}");
    assert_eq!(event_types(&events, &compaction_job), vec!["START", "COMPLETE"]);
    assert!(events.iter().all(|e| e["authorization"] == "Bearer e2e-secret"));
    // A RUNNING event: topic in, table out with its Hive symlink, version,
    // statistics, column lineage, offsets and the newest event time.
    let r = events.iter().find(|e| e["event"]["job"]["name"] == ingest_job && e["event"]["eventType"] == "RUNNING").unwrap();
    let ev = &r["event"];
    assert_eq!(ev["inputs"][0]["namespace"], format!("kafka://{}", brokers()));
    assert_eq!(ev["inputs"][0]["name"], topic.as_str());
    let out0 = &ev["outputs"][0];
    assert_eq!(out0["namespace"], "file");
    assert!(out0["name"].as_str().unwrap().ends_with(&format!("/e2e.db/{table}")), "{out0}");
    assert_eq!(out0["facets"]["symlinks"]["identifiers"][0]["namespace"], format!("hive://127.0.0.1:{thrift_port}"));
    assert_eq!(out0["facets"]["symlinks"]["identifiers"][0]["name"], label.as_str());
    assert!(out0["facets"]["version"]["datasetVersion"].as_str().unwrap().parse::<i64>().is_ok());
    assert!(out0["outputFacets"]["outputStatistics"]["rowCount"].as_u64().unwrap() > 0);
    assert_eq!(out0["facets"]["columnLineage"]["fields"]["dt"]["inputFields"][0]["field"], "ts");
    assert_eq!(out0["facets"]["columnLineage"]["fields"]["_kafka_offset"]["inputFields"][0]["field"], "offset");
    assert!(!ev["run"]["facets"]["inlet_kafka"]["offsets"].as_array().unwrap().is_empty());
    assert!(ev["run"]["facets"]["inlet_kafka"]["newestEventTime"].is_string());
    assert_eq!(ev["job"]["facets"]["jobType"]["processingType"], "STREAMING");
    let c = events.iter().find(|e| e["event"]["job"]["name"] == compaction_job && e["event"]["eventType"] == "COMPLETE").unwrap();
    let (vin, vout) = (&c["event"]["inputs"][0]["facets"]["version"]["datasetVersion"], &c["event"]["outputs"][0]["facets"]["version"]["datasetVersion"]);
    assert!(vin.as_str().unwrap().parse::<i64>().unwrap() < vout.as_str().unwrap().parse::<i64>().unwrap(), "{vin} {vout}");
    assert_eq!(c["event"]["job"]["facets"]["jobType"]["processingType"], "BATCH");

    // The file transport got the same events.
    let lines: Vec<Value> = std::fs::read_to_string(&jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), events.len(), "file and HTTP transports disagree");

    // The stored graph, from the database: topic -> ingest -> table, kept
    // up by compaction, and the table is its Hive name.
    let sources = lineage(&["sources", "--config", &cfg_s, "--table", &label]);
    let table_id = sources["table"]["id"].as_str().unwrap().to_string();
    assert_eq!(sources["paths"], serde_json::json!([[format!("dataset:kafka://{}:{topic}", brokers()), format!("job:inlet:{ingest_job}"), table_id.clone()]]), "{sources}");
    assert_eq!(sources["maintained_by"], serde_json::json!([format!("job:inlet:{compaction_job}")]));
    assert_eq!(sources["table"]["symlinks"][0]["name"], label.as_str());
    let down = lineage(&["downstream", "--config", &cfg_s, "--dataset", &format!("kafka://{}", brokers()), &topic]);
    let ids: Vec<&str> = down["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&table_id.as_str()) && ids.contains(&format!("job:inlet:{compaction_job}").as_str()), "{ids:?}");
    let runs = lineage(&["runs", "--config", &cfg_s, "--job", &ingest_job]);
    assert_eq!(runs[0]["state"], "COMPLETE", "{runs}");
    assert!(runs[0]["outputs"].as_array().unwrap().len() >= 3);
    let c_runs = lineage(&["runs", "--config", &cfg_s, "--job", &compaction_job]);
    assert_eq!(c_runs[0]["state"], "COMPLETE");

    // A restarted pipeline is a new run, and knows its table's freshness
    // from the store before it commits anything.
    let mut again = spawn_inlet(&["ingest", "--config", &cfg_s], &w.path().join("ingest2.log"));
    let seeded = wait_for(Duration::from_secs(20), || freshness(metrics_port).is_some_and(|f| f > 1.0));
    sigterm(&again);
    assert!(again.wait().unwrap().success());
    assert!(seeded, "freshness not seeded after a restart: {:?}", std::fs::read_to_string(w.path().join("ingest2.log")).unwrap_or_default());
    let runs = lineage(&["runs", "--config", &cfg_s, "--job", &ingest_job]);
    assert_eq!(runs.as_array().unwrap().len(), 2, "{runs}");
    assert!(runs.as_array().unwrap().iter().all(|r| r["state"] == "COMPLETE"), "{runs}");

    // The same questions through the metastore's REST API.
    let ms_log = w.path().join("metastore.log");
    let mut ms = spawn_inlet(&["metastore", "serve", "--config", &cfg_s], &ms_log);
    let url = format!("http://127.0.0.1:{rest_port}");
    assert!(wait_for(Duration::from_secs(30), || http_get(rest_port, "/ready").is_some_and(|r| r.starts_with("HTTP/1.1 200"))), "metastore not ready: {}", std::fs::read_to_string(&ms_log).unwrap_or_default());
    let rest_sources = lineage(&["sources", "--url", &url, "--table", &label]);
    assert_eq!(rest_sources["paths"], sources["paths"]);
    let lat = lineage(&["latency", "--url", &url, "--table", &label]);
    assert!(lat["commits"].as_u64().unwrap() >= 3, "{lat}");
    assert!(lat["freshness_seconds"].as_f64().unwrap() >= 0.0);
    for s in lat["stages"].as_array().unwrap() {
        assert!(s["count"].as_u64().unwrap() >= 3, "stage without figures: {s}");
        assert!(s["max_seconds"].as_f64().unwrap() < 120.0, "{s}");
    }
    // Human output too.
    let out = run_inlet(&["lineage", "sources", "--url", &url, "--table", &label]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains(&format!("kafka://{}/{topic} -> job inlet/{ingest_job} -> file:", brokers())) && shown.contains(&format!("maintained by job inlet/{compaction_job}")), "{shown}");
    sigterm(&ms);
    let _ = ms.wait();
}

fn file_events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_running_events_cover_every_commit_and_failures_are_fail_events() {
    let w = Workdir::new();
    let topic = unique("li");
    let table = unique("interval");
    create_topic(&topic, 2).await;
    let jsonl = w.path().join("lineage.jsonl");
    let mut text = pipeline_config(w.warehouse().to_str().unwrap(), &topic, &table, "", "");
    text = text.replace("      max_rows: 5000\n", "      max_rows: 300\n");
    text.push_str(&format!("lineage:\n  running_every: 1s\n  transports:\n    - type: file\n      path: {}\n", jsonl.display()));
    let cfg = w.write_config(&text);
    produce(&topic, 2, &events(0, 3000));
    let out = ingest_until_caught_up(&cfg);
    let commits = String::from_utf8_lossy(&out.stderr).matches("committed").count();
    let evs = file_events(&jsonl);
    let job = format!("ingest.{table}");
    let types = event_types(&evs.iter().map(|e| serde_json::json!({ "event": e })).collect::<Vec<_>>(), &job);
    assert_eq!(types.first().map(String::as_str), Some("START"), "{types:?}");
    assert_eq!(types.last().map(String::as_str), Some("COMPLETE"), "{types:?}");
    let running: Vec<&Value> = evs.iter().filter(|e| e["eventType"] == "RUNNING").collect();
    assert!(!running.is_empty());
    // Fewer RUNNING events than commits, yet together they cover every row.
    let rows = |e: &Value| e["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"].as_u64().unwrap();
    assert_eq!(running.iter().map(|e| rows(e)).sum::<u64>(), 3000, "{running:?}");
    assert!(running.len() < 10, "one RUNNING per interval, not per commit: {} ({commits} commits)", running.len());
    let complete = evs.iter().find(|e| e["eventType"] == "COMPLETE").unwrap();
    assert_eq!(rows(complete), 3000);
    let last_version = running.last().unwrap()["outputs"][0]["facets"]["version"]["datasetVersion"].clone();
    assert_eq!(complete["outputs"][0]["facets"]["version"]["datasetVersion"], last_version);
    // Without a catalog there is no Hive symlink.
    assert!(complete["outputs"][0]["facets"].get("symlinks").is_none());

    // A pipeline stopped by a bad message (dead_letter.policy: stop) ends its
    // run with FAIL and the reason.
    let table2 = unique("failing");
    let topic2 = unique("lf");
    create_topic(&topic2, 1).await;
    let jsonl2 = w.path().join("fail.jsonl");
    let mut text = pipeline_config(w.warehouse().to_str().unwrap(), &topic2, &table2, "", "    dead_letter:\n      policy: stop\n");
    text.push_str(&format!("lineage:\n  transports:\n    - type: file\n      path: {}\n", jsonl2.display()));
    let cfg2 = w.write_config(&text);
    let mut payloads = events(0, 10);
    payloads.push(b"{not json".to_vec());
    produce(&topic2, 1, &payloads);
    let out = run_inlet(&["ingest", "--config", cfg2.to_str().unwrap(), "--until-caught-up"]);
    assert!(!out.status.success(), "the pipeline should have stopped");
    let evs = file_events(&jsonl2);
    let fail = evs.iter().find(|e| e["eventType"] == "FAIL").unwrap_or_else(|| panic!("no FAIL event: {evs:?}"));
    let msg = fail["run"]["facets"]["errorMessage"]["message"].as_str().unwrap();
    assert!(msg.contains("dead_letter.policy=stop"), "{msg}");
    assert_eq!(evs.first().unwrap()["eventType"], "START");
}
