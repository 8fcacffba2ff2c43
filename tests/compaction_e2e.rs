//! End-to-end compaction tests: a real ingest pipeline (tansu broker) writes
//! a partitioned table while `inlet compact` runs again and again; Python
//! `deltalake` reads the table before, after and back in time; vacuum; the
//! `inlet compactor` service on a cron schedule; cron validation.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn compaction_config(w: &Workdir, topic: &str, table: &str, flush_rows: u64, compaction: &str) -> std::path::PathBuf {
    let mut text = pipeline_config(w.warehouse().to_str().unwrap(), topic, table, "", "");
    // Partitioned by event type: every partition keeps receiving rows.
    text = text.replace(&format!("      name: {table}\n"), &format!("      name: {table}\n      partition_by: [event_type]\n"));
    text = text.replace("      max_rows: 5000\n      max_latency_ms: 500\n", &format!("      max_rows: {flush_rows}\n      max_latency_ms: 200\n"));
    text.push_str(compaction);
    w.write_config(&text)
}

fn compact(cfg: &Path, table: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["compact", "--config", cfg.to_str().unwrap(), "--table", table, "--json"];
    args.extend_from_slice(extra);
    let out = run_inlet(&args);
    assert!(out.status.success(), "inlet compact failed: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(out.stdout.trim_ascii()).unwrap_or_else(|e| panic!("bad JSON {:?}: {e}", String::from_utf8_lossy(&out.stdout)))
}

fn py_version(dir: &Path, version: i64) -> Result<PyView, String> {
    let out = Command::new(std::env::var("INLET_PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(repo_root().join("tests/support/delta_read.py"))
        .arg(dir)
        .args(["--count-col-pair", "_kafka_partition", "_kafka_offset", "--version", &version.to_string()])
        .output()
        .expect("python3");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).to_string());
    }
    Ok(serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim().lines().last().unwrap()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_ingest_and_repeated_compaction_keep_every_row_exactly_once() {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("compacted");
    create_topic(&topic, 4).await;
    let compaction = format!("compaction:\n  tables:\n    - pipeline: {table}\n      skip_active_partitions: false\n      min_files_per_bin: 2\n");
    let cfg = compaction_config(&w, &topic, &table, 400, &compaction);
    let log = w.path().join("ingest.log");
    let mut ingest = spawn_inlet(&["ingest", "--config", cfg.to_str().unwrap()], &log);
    let n = 24_000u64;
    let producer_topic = topic.clone();
    let producer = std::thread::spawn(move || {
        for chunk in 0..12u64 {
            produce(&producer_topic, 4, &events(chunk * 2000, 2000));
            std::thread::sleep(Duration::from_millis(400));
        }
    });
    let dir = w.warehouse().join("e2e.db").join(&table);
    let dir_s = dir.to_str().unwrap().to_string();
    // Compact again and again while the stream writes into every partition.
    let mut runs = 0;
    let mut rewritten = 0u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while (!producer.is_finished() || runs < 3) && Instant::now() < deadline {
        if dir.join("_delta_log").exists() {
            let r = compact(&cfg, &table, &[]);
            assert_ne!(r["outcome"], "failed", "{r}");
            rewritten += r["files_in"].as_u64().unwrap();
            runs += 1;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    producer.join().unwrap();
    let done = wait_for(Duration::from_secs(60), || python_read(&dir_s, false).rows >= n);
    sigterm(&ingest);
    let status = ingest.wait().unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(done, "not all rows arrived; log:\n{}", &log_text[log_text.len().saturating_sub(4000)..]);
    assert!(status.success(), "ingest failed; log:\n{}", &log_text[log_text.len().saturating_sub(4000)..]);
    for bad in ["another writer committed", "pipeline failed", "ERROR"] {
        assert!(!log_text.contains(bad), "an ingest commit failed ({bad}); log:\n{}", &log_text[log_text.len().saturating_sub(4000)..]);
    }
    assert!(runs >= 3 && rewritten > 0, "compaction ran {runs} times and rewrote {rewritten} files while ingesting");

    let before = python_read(&dir_s, false);
    let last = compact(&cfg, &table, &[]);
    let after = python_read(&dir_s, false);
    // Exactly what was produced, as a multiset of (partition, offset).
    let pairs = rust_pairs(&dir).await;
    assert!(pairs.values().all(|c| *c == 1), "duplicated rows");
    assert_eq!(pairs.len() as u64, n);
    assert_eq!((after.rows, after.duplicate_pairs, after.distinct_pairs), (n, Some(0), Some(n)));
    // The small-file count went down as planned: one file per bin.
    let planned_out = last["files_out"].as_u64().unwrap();
    let planned_in = last["files_in"].as_u64().unwrap();
    assert_eq!(after.files, before.files - planned_in + planned_out, "before {before:?}, run {last}");
    assert!(after.files <= 5 * 2, "at most a couple of files per partition remain: {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_reads_the_same_rows_before_after_and_back_in_time_and_vacuum_honours_retention() {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("tt");
    create_topic(&topic, 2).await;
    let n = 6000u64;
    produce(&topic, 2, &events(0, n / 2));
    // Ingest just wrote every partition: do not skip them as active here.
    let compaction = format!("compaction:\n  tables:\n    - pipeline: {table}\n      skip_active_partitions: false\n      min_files_per_bin: 2\n");
    let cfg = compaction_config(&w, &topic, &table, 300, &compaction);
    ingest_until_caught_up(&cfg);
    produce(&topic, 2, &events(n / 2, n / 2));
    ingest_until_caught_up(&cfg);
    let dir = w.warehouse().join("e2e.db").join(&table);
    let dir_s = dir.to_str().unwrap();
    let before = python_read(dir_s, false);
    assert_eq!(before.rows, n);
    assert!(before.files >= 4, "{before:?}");

    // Dry run: a plan, and no change.
    let out = run_inlet(&["compact", "--config", cfg.to_str().unwrap(), "--table", &table, "--dry-run"]);
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && plan.contains("bin(s)") && plan.contains("output file(s) expected"), "{plan}");
    assert_eq!(python_read(dir_s, false).version, before.version);

    let r = compact(&cfg, &table, &[]);
    assert_eq!(r["outcome"], "succeeded", "{r}");
    let after = python_read(dir_s, false);
    assert_eq!((after.rows, after.duplicate_pairs), (n, Some(0)));
    assert!(after.files < before.files);
    // Time travel to before the compaction reads the same rows.
    let old = py_version(&dir, before.version).unwrap();
    assert_eq!((old.rows, old.duplicate_pairs, old.files), (n, Some(0), before.files));

    // Vacuum below the safe minimum without --force is refused.
    let out = run_inlet(&["compact", "--config", cfg.to_str().unwrap(), "--table", &table, "--vacuum", "--retention-hours", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("below the safe minimum of 168 hours"), "{}", String::from_utf8_lossy(&out.stderr));
    // Forced to 1 hour: the files compaction removed are still within
    // retention, nothing is deleted, time travel still works.
    let r = compact(&cfg, &table, &["--vacuum", "--retention-hours", "1", "--force"]);
    assert_eq!(r["outcome"], "succeeded");
    assert_eq!(py_version(&dir, before.version).unwrap().rows, n);
    // Forced to 0: the removed files are out of retention and deleted; the
    // current version still reads, the old one no longer can.
    compact(&cfg, &table, &["--vacuum", "--retention-hours", "0", "--force"]);
    let now = python_read(dir_s, false);
    assert_eq!((now.rows, now.duplicate_pairs), (n, Some(0)));
    assert!(py_version(&dir, before.version).is_err(), "files of the old version should be gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compactor_service_runs_a_six_field_cron_schedule() {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("svc");
    create_topic(&topic, 2).await;
    produce(&topic, 2, &events(0, 3000));
    let compaction = format!(
        "compaction:\n  metrics_listen: 127.0.0.1:0\n  tables:\n    - pipeline: {table}\n      schedule: \"*/2 * * * * *\"\n      time_zone: Europe/Berlin\n      skip_active_partitions: false\n      min_files_per_bin: 2\n"
    );
    let cfg = compaction_config(&w, &topic, &table, 250, &compaction);
    ingest_until_caught_up(&cfg);
    let dir = w.warehouse().join("e2e.db").join(&table);
    let files_before = python_read(dir.to_str().unwrap(), false).files;
    let log = w.path().join("compactor.log");
    let mut svc = spawn_inlet(&["compactor", "--config", cfg.to_str().unwrap()], &log);
    let done = wait_for(Duration::from_secs(30), || std::fs::read_to_string(&log).unwrap_or_default().contains("run done"));
    sigterm(&svc);
    let status = svc.wait().unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(done && status.success(), "log:\n{log_text}");
    let after = python_read(dir.to_str().unwrap(), false);
    assert_eq!(after.rows, 3000);
    assert!(after.files <= 5 && after.files < files_before, "one file per event type: {files_before} -> {after:?}");
    sigkill(&mut svc);
}

#[test]
fn validate_rejects_an_invalid_cron_expression_with_its_key_and_line() {
    let w = Workdir::new();
    let cfg = w.write_config("storage:\n  warehouse: /tmp/wh\ncompaction:\n  tables:\n    - location: /tmp/wh/t\n      schedule: \"0 3 * * 8\"\n");
    let out = run_inlet(&["validate", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("inlet.yaml:6:17: compaction.tables[0].schedule: invalid cron expression `0 3 * * 8`: day-of-week field: 8 is out of range 0-7"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_vacuum_on_an_s3_warehouse() {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("s3c");
    let bucket = unique("bucket").replace('_', "-");
    let script = "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='testing', aws_secret_access_key='testing', region_name='us-east-1').create_bucket(Bucket=sys.argv[2])";
    let out = std::process::Command::new("python3").args(["-c", script, &s3_endpoint(), &bucket]).output().unwrap();
    assert!(out.status.success(), "create bucket: {}", String::from_utf8_lossy(&out.stderr));
    create_topic(&topic, 2).await;
    let n = 4000u64;
    let s3 = format!("  s3:\n    endpoint: {}\n    access_key_id: testing\n    secret_access_key: testing\n", s3_endpoint());
    let mut text = pipeline_config(&format!("s3://{bucket}/wh"), &topic, &table, &s3, "");
    text = text.replace(&format!("      name: {table}\n"), &format!("      name: {table}\n      partition_by: [event_type]\n"));
    text = text.replace("      max_rows: 5000\n      max_latency_ms: 500\n", "      max_rows: 400\n      max_latency_ms: 200\n");
    text.push_str(&format!("compaction:\n  tables:\n    - pipeline: {table}\n      skip_active_partitions: false\n      min_files_per_bin: 2\n"));
    let cfg = w.write_config(&text);
    for half in 0..2 {
        produce(&topic, 2, &events(half * n / 2, n / 2));
        ingest_until_caught_up(&cfg);
    }
    let uri = format!("s3://{bucket}/wh/e2e.db/{table}");
    let before = python_read(&uri, true);
    assert_eq!((before.rows, before.duplicate_pairs), (n, Some(0)));
    let r = compact(&cfg, &table, &[]);
    assert_eq!(r["outcome"], "succeeded", "{r}");
    assert!(r["files_in"].as_u64().unwrap() >= 4, "{r}");
    let after = python_read(&uri, true);
    assert_eq!((after.rows, after.duplicate_pairs), (n, Some(0)));
    assert!(after.files < before.files, "{before:?} -> {after:?}");
    // Converged: a second run has nothing to do.
    let again = compact(&cfg, &table, &[]);
    assert_eq!(again["files_in"], 0, "{again}");
    // Vacuum on S3 deletes the rewritten files once out of retention.
    let objects = || {
        let script = "import sys, boto3; c = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='testing', aws_secret_access_key='testing', region_name='us-east-1'); print(sum(1 for p in c.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[2], Prefix=sys.argv[3]) for o in p.get('Contents', []) if o['Key'].endswith('.parquet') and '/_delta_log/' not in o['Key']))";
        let out = std::process::Command::new("python3").args(["-c", script, &s3_endpoint(), &bucket, &format!("wh/e2e.db/{table}/")]).output().unwrap();
        assert!(out.status.success(), "list objects: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().parse::<u64>().unwrap()
    };
    assert_eq!(objects(), before.files + r["files_out"].as_u64().unwrap(), "rewritten files stay until vacuum");
    compact(&cfg, &table, &["--vacuum", "--retention-hours", "0", "--force"]);
    let now = python_read(&uri, true);
    assert_eq!((now.rows, now.duplicate_pairs, now.files), (n, Some(0), after.files));
    assert_eq!(objects(), after.files, "vacuum deleted the rewritten files from the bucket");
}
