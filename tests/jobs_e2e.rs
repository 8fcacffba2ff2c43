//! Job states end to end: `inlet ingest` and `inlet compactor` report their
//! lifecycles to the catalog database; `inlet jobs` lists, shows, pauses and
//! resumes them; illegal commands are refused; a killed process is found
//! out by its successor.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn with_catalog(config: String, w: &Workdir) -> String {
    let catalog = format!("catalog:\n  database_url: sqlite://{}/catalog.db\n  migrate_on_start: true\n", w.path().display());
    config.replacen("kafka:\n", &format!("{catalog}kafka:\n"), 1)
}

fn jobs(cfg: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["jobs", "--config", cfg.to_str().unwrap()];
    all.extend_from_slice(args);
    run_inlet(&all)
}

fn job(cfg: &Path, id: &str) -> serde_json::Value {
    let out = jobs(cfg, &["show", id, "--json", "--history", "100"]);
    if !out.status.success() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

fn state(cfg: &Path, id: &str) -> String {
    job(cfg, id)["state"].as_str().unwrap_or("").to_string()
}

/// The history's (from, to) pairs, oldest first.
fn transitions(cfg: &Path, id: &str) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = job(cfg, id)["history"]
        .as_array()
        .map(|a| a.iter().map(|t| (t["from"].as_str().unwrap_or("").to_string(), t["to"].as_str().unwrap_or("").to_string())).collect())
        .unwrap_or_default();
    h.reverse();
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_pipeline_pauses_resumes_and_stops_through_inlet_jobs() {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("jobs");
    create_topic(&topic, 2).await;
    let cfg = w.write_config(&with_catalog(pipeline_config(w.warehouse().to_str().unwrap(), &topic, &table, "", ""), &w));
    let id = format!("ingest/{table}");
    let log = w.path().join("ingest.log");
    let mut child = spawn_inlet(&["ingest", "--config", cfg.to_str().unwrap()], &log);
    let dump = || std::fs::read_to_string(&log).unwrap_or_default();

    assert!(wait_for(Duration::from_secs(60), || state(&cfg, &id) == "running"), "never running: {}\n{}", job(&cfg, &id), dump());
    produce(&topic, 2, &events(0, 2000));
    let dir = w.warehouse().join("e2e.db").join(&table);
    let rows = |dir: &Path| {
        let dir = dir.to_path_buf();
        std::thread::spawn(move || tokio::runtime::Runtime::new().unwrap().block_on(rust_pairs(&dir)).len()).join().unwrap()
    };
    assert!(wait_for(Duration::from_secs(60), || dir.join("_delta_log").exists() && rows(&dir) == 2000), "first rows never landed:\n{}", dump());

    // Pause: the state follows, and nothing more is committed.
    let out = jobs(&cfg, &["pause", &id, "--reason", "maintenance window"]);
    assert!(out.status.success(), "pause: {}", String::from_utf8_lossy(&out.stderr));
    assert!(wait_for(Duration::from_secs(15), || state(&cfg, &id) == "paused"), "never paused: {}", job(&cfg, &id));
    let shown = job(&cfg, &id);
    assert_eq!(shown["desired"], "pause");
    assert_eq!(shown["desired_reason"], "maintenance window");
    produce(&topic, 2, &events(2000, 2000));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(rows(&dir), 2000, "a paused pipeline committed rows");

    // Asking twice is refused, with the reason.
    let again = jobs(&cfg, &["pause", &id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already asked to pause"), "{}", String::from_utf8_lossy(&again.stderr));

    // Resume: the rest arrives.
    let out = jobs(&cfg, &["resume", &id]);
    assert!(out.status.success(), "resume: {}", String::from_utf8_lossy(&out.stderr));
    assert!(wait_for(Duration::from_secs(60), || rows(&dir) == 4000), "rows after resume: {}\n{}", rows(&dir), dump());
    assert_eq!(state(&cfg, &id), "running");

    // Stop: stopping, then stopped; a stopped pipeline cannot be paused or resumed.
    sigterm(&child);
    assert!(child.wait().unwrap().success(), "{}", dump());
    assert_eq!(state(&cfg, &id), "stopped");
    let refused = jobs(&cfg, &["pause", &id]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot pause a job that is stopped"), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(!jobs(&cfg, &["resume", &id]).status.success());
    assert!(!jobs(&cfg, &["show", "ingest/nope"]).status.success());

    let history = transitions(&cfg, &id);
    let expected: Vec<(String, String)> =
        [("created", "starting"), ("starting", "running"), ("running", "paused"), ("paused", "running"), ("running", "stopping"), ("stopping", "stopped")].iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(history, expected, "history");
    let list = jobs(&cfg, &["list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains(&id) && text.contains("stopped"), "{text}");

    // The same through a metastore's REST API (`--url`).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let text = std::fs::read_to_string(&cfg).unwrap() + &format!("metastore:\n  thrift_listen: 127.0.0.1:0\n  http_listen: 127.0.0.1:{port}\n");
    let served = w.path().join("served.yaml");
    std::fs::write(&served, text).unwrap();
    let mut ms = spawn_inlet(&["metastore", "serve", "--config", served.to_str().unwrap()], &w.path().join("metastore.log"));
    let url = format!("http://127.0.0.1:{port}");
    let via_rest = |args: &[&str]| {
        let mut all = vec!["jobs", "--url", url.as_str()];
        all.extend_from_slice(args);
        run_inlet(&all)
    };
    assert!(wait_for(Duration::from_secs(30), || via_rest(&["list"]).status.success()), "metastore never answered");
    let listed: serde_json::Value = serde_json::from_slice(&via_rest(&["list", "--json"]).stdout).unwrap();
    assert_eq!(listed[0]["job"], id.as_str());
    assert_eq!(listed[0]["state"], "stopped");
    let refused = via_rest(&["pause", &id]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("409"), "{}", String::from_utf8_lossy(&refused.stderr));
    sigkill(&mut ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_pipeline_is_recorded_as_failed_by_its_successor() {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("killed");
    create_topic(&topic, 1).await;
    let cfg = w.write_config(&with_catalog(pipeline_config(w.warehouse().to_str().unwrap(), &topic, &table, "", ""), &w));
    let id = format!("ingest/{table}");
    let spawn = || {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(w.path().join("ingest.log")).unwrap();
        Command::new(inlet_bin()).args(["ingest", "--config", cfg.to_str().unwrap()]).env("INLET_LOG", "info").env("INLET_INSTANCE", "ingest-0").stdout(Stdio::null()).stderr(f).spawn().unwrap()
    };
    let mut first = spawn();
    assert!(wait_for(Duration::from_secs(60), || state(&cfg, &id) == "running"), "never running: {}", job(&cfg, &id));
    sigkill(&mut first);
    let mut second = spawn();
    assert!(wait_for(Duration::from_secs(60), || state(&cfg, &id) == "running" && transitions(&cfg, &id).len() >= 5), "{}", job(&cfg, &id));
    let history = transitions(&cfg, &id);
    assert_eq!(&history[2], &("running".to_string(), "failed".to_string()), "{history:?}");
    assert_eq!(&history[3], &("failed".to_string(), "starting".to_string()), "{history:?}");
    let shown = job(&cfg, &id);
    let failed = shown["history"].as_array().unwrap().iter().find(|t| t["to"] == "failed").unwrap().clone();
    assert!(failed["reason"].as_str().unwrap().contains("ended without stopping"), "{failed}");
    assert_eq!(shown["instances"].as_array().unwrap().len(), 1, "one instance: {shown}");
    sigterm(&second);
    let _ = second.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_policy_is_idle_between_runs_and_starts_none_while_paused() {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("cjobs");
    create_topic(&topic, 1).await;
    produce(&topic, 1, &events(0, 500));
    let mut text = with_catalog(pipeline_config(w.warehouse().to_str().unwrap(), &topic, &table, "", ""), &w);
    text = text.replace("      max_rows: 5000\n", "      max_rows: 100\n");
    text.push_str(&format!("compaction:\n  tables:\n    - pipeline: {table}\n      schedule: \"*/2 * * * * *\"\n      skip_active_partitions: false\n      min_files_per_bin: 2\n"));
    let cfg = w.write_config(&text);
    ingest_until_caught_up(&cfg);
    let id = format!("compaction/{table}");

    // Paused before the service starts: it starts paused and runs nothing.
    // (The job does not exist yet: pausing needs it registered first.)
    assert!(!jobs(&cfg, &["pause", &id]).status.success());
    let log = w.path().join("compactor.log");
    let mut svc = spawn_inlet(&["compactor", "--config", cfg.to_str().unwrap()], &log);
    let dump = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(wait_for(Duration::from_secs(30), || dump().contains("run done")), "no run:\n{}", dump());
    assert!(wait_for(Duration::from_secs(10), || state(&cfg, &id) == "idle" || state(&cfg, &id) == "running"), "{}", job(&cfg, &id));
    assert!(jobs(&cfg, &["pause", &id]).status.success());
    assert!(wait_for(Duration::from_secs(10), || state(&cfg, &id) == "paused"), "{}", job(&cfg, &id));
    let runs_when_paused = dump().matches("run done").count();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(dump().matches("run done").count(), runs_when_paused, "a paused policy ran");
    assert!(jobs(&cfg, &["resume", &id]).status.success());
    assert!(wait_for(Duration::from_secs(20), || dump().matches("run done").count() > runs_when_paused), "no run after resume:\n{}", dump());
    sigterm(&svc);
    assert!(svc.wait().unwrap().success());
    assert_eq!(state(&cfg, &id), "stopped");
    let history = transitions(&cfg, &id);
    assert_eq!(history.first().map(|(a, b)| (a.as_str(), b.as_str())), Some(("created", "idle")), "{history:?}");
    assert!(history.iter().any(|(a, b)| a == "idle" && b == "running"), "{history:?}");
    assert!(history.iter().any(|(a, b)| a == "paused" && b == "idle"), "{history:?}");
    assert_eq!(history.last().map(|(a, b)| (a.as_str(), b.as_str())), Some(("stopping", "stopped")), "{history:?}");
    sigkill(&mut svc);
}
