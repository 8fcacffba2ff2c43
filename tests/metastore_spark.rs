//! End-to-end tests of `inlet metastore serve`, run as users run it (the
//! `inlet` binary, a temporary config, free ports):
//!
//! - PySpark (its built-in Hive 2.3.10 metastore client) runs
//!   `tests/support/spark_hive.py scenario` against it, once on a SQLite
//!   catalog and once on a fresh MariaDB database; the results are checked
//!   value by value and compared with what the same scenario gives on the
//!   reference Apache Hive Metastore 2.3.10
//!   (`tests/support/spark_hive_reference.json`), and Spark's DDL must be in
//!   inlet's audit log (REST `/api/v1/audit`) under the Spark user.
//! - Garbage, truncated and oversized Thrift input on raw TCP while a
//!   well-behaved client keeps calling `get_all_databases`.
//!
//! Needs `INLET_TEST_PYSPARK_PYTHON` and `INLET_TEST_MYSQL_URL` (exported by
//! `scripts/services.sh start`; `scripts/test.sh` does it all). The tests
//! fail, never skip, without them.
//!
//! `INLET_SPARK_RECORD_REFERENCE=1` makes the SQLite test first run the
//! scenario against the reference (`INLET_TEST_HMS_REFERENCE`) and rewrite
//! `tests/support/spark_hive_reference.json` from it (one more JVM run,
//! ~40 s).

mod common;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The Hadoop user Spark runs as (`HADOOP_USER_NAME`): what its Hive client
/// sends in `set_ugi`, and what inlet's audit log must record.
const SPARK_USER: &str = "inlet_spark_e2e";

const RUN_THROUGH: &str = "run the metastore tests through scripts/test.sh, or start the services first with \
     `eval \"$(scripts/services.sh start)\"`";

// ------------------------------------------------------------------ inlet metastore serve

/// A fresh MariaDB database for one test, dropped at the end.
struct MysqlDb {
    root_url: String,
    name: String,
}

impl MysqlDb {
    fn create() -> MysqlDb {
        let root_url = std::env::var("INLET_TEST_MYSQL_URL").unwrap_or_else(|_| panic!("INLET_TEST_MYSQL_URL is not set (MariaDB for the metastore catalog): {RUN_THROUGH}"));
        let name = unique("inlet_e2e");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::MySqlConnection::connect(&root_url)
                .await
                .unwrap_or_else(|e| panic!("cannot connect to MariaDB as root at {root_url}: {e}; {RUN_THROUGH}"));
            sqlx::query(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")).execute(&mut c).await.expect("create test database");
        });
        MysqlDb { root_url, name }
    }

    fn url(&self) -> String {
        format!("{}/{}", self.root_url.trim_end_matches('/'), self.name)
    }
}

impl Drop for MysqlDb {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            use sqlx::Connection;
            if let Ok(mut c) = sqlx::MySqlConnection::connect(&self.root_url).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {}", self.name)).execute(&mut c).await;
            }
        });
    }
}

/// `inlet metastore serve` as a child process.
struct Served {
    child: Option<Spawned>,
    thrift: SocketAddr,
    http: SocketAddr,
    log: PathBuf,
    warehouse: PathBuf,
    // Dropped after the child is stopped.
    _mysql: Option<MysqlDb>,
    _work: Workdir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().unwrap().port()
}

impl Served {
    /// Starts the metastore on `database_url` (`None`: SQLite in the temp
    /// dir) with `extra` appended to the `metastore:` section.
    fn start(mysql: Option<MysqlDb>, extra: &str) -> Served {
        let work = Workdir::new();
        let warehouse = work.warehouse();
        std::fs::create_dir_all(&warehouse).expect("warehouse dir");
        let url = match &mysql {
            Some(m) => m.url(),
            None => format!("sqlite://{}", work.path().join("metastore.db").display()),
        };
        let log = work.path().join("metastore.log");
        // Ports picked free just before the start; another process can
        // take one in between, so a failed bind is retried on new ports.
        for attempt in 1..=3 {
            let (tp, hp) = (free_port(), free_port());
            let yaml = format!(
                "storage:\n  warehouse: {}\ncatalog:\n  database_url: \"{url}\"\n  migrate_on_start: true\nmetastore:\n  thrift_listen: 127.0.0.1:{tp}\n  http_listen: 127.0.0.1:{hp}\n{extra}",
                warehouse.display()
            );
            let cfg = work.write_config(&yaml);
            let mut child = spawn_inlet(&["metastore", "serve", "--config", cfg.to_str().unwrap()], &log);
            let thrift: SocketAddr = format!("127.0.0.1:{tp}").parse().unwrap();
            let http: SocketAddr = format!("127.0.0.1:{hp}").parse().unwrap();
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                if let Some(status) = child.try_wait().expect("try_wait") {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    if attempt < 3 && text.contains("cannot listen") {
                        eprintln!("metastore could not bind its ports (attempt {attempt}), retrying on others");
                        break;
                    }
                    panic!("`inlet metastore serve` exited during start-up ({status}); log:\n{}", tail(&text, 4000));
                }
                if http_get(http, "/ready").map(|(code, _)| code == 200).unwrap_or(false) && TcpStream::connect_timeout(&thrift, Duration::from_secs(2)).is_ok() {
                    return Served { child: Some(child), thrift, http, log, warehouse, _mysql: mysql, _work: work };
                }
                if Instant::now() > deadline {
                    sigkill(&mut child);
                    panic!("`inlet metastore serve` not ready after 90 s; log:\n{}", tail(&std::fs::read_to_string(&log).unwrap_or_default(), 4000));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        unreachable!()
    }

    fn uri(&self) -> String {
        format!("thrift://{}", self.thrift)
    }

    fn log_tail(&self) -> String {
        tail(&std::fs::read_to_string(&self.log).unwrap_or_default(), 6000).to_string()
    }

    fn assert_alive(&mut self, when: &str) {
        if let Some(status) = self.child.as_mut().unwrap().try_wait().expect("try_wait") {
            panic!("`inlet metastore serve` died {when} ({status}); log:\n{}", self.log_tail());
        }
    }

    /// SIGTERM; the process must exit cleanly within `within`.
    fn stop(&mut self, within: Duration) {
        let mut child = self.child.take().expect("running");
        sigterm(&child);
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                assert!(status.success(), "`inlet metastore serve` exited with {status} on SIGTERM; log:\n{}", self.log_tail());
                return;
            }
            if Instant::now() > deadline {
                sigkill(&mut child);
                panic!("`inlet metastore serve` still running {within:?} after SIGTERM; log:\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn rest_json(&self, path: &str) -> (u16, Value) {
        let (code, body) = http_get(self.http, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
        (code, v)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            sigterm(&c);
            for _ in 0..100 {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            sigkill(&mut c);
        }
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// A minimal HTTP/1.1 GET (no client dependency): status and body.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, format!("no HTTP header end in {text:?}")))?;
    let code: u16 = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, format!("bad status line in {head:?}")))?;
    let chunked = head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.to_ascii_lowercase().contains("chunked"));
    if !chunked {
        return Ok((code, body.to_string()));
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    Ok((code, out))
}

// ------------------------------------------------------------------ PySpark

fn pyspark_python() -> String {
    let py = std::env::var("INLET_TEST_PYSPARK_PYTHON").unwrap_or_else(|_| panic!("INLET_TEST_PYSPARK_PYTHON is not set (a python with pyspark, the Hive client of this test): {RUN_THROUGH}"));
    let out = Command::new(&py).args(["-c", "import pyspark; print(pyspark.__version__)"]).output().unwrap_or_else(|e| panic!("cannot run INLET_TEST_PYSPARK_PYTHON={py}: {e}; {RUN_THROUGH}"));
    assert!(out.status.success(), "INLET_TEST_PYSPARK_PYTHON={py} cannot import pyspark: {}; {RUN_THROUGH}", String::from_utf8_lossy(&out.stderr).trim());
    py
}

/// Runs `spark_hive.py scenario` (one JVM) and returns its JSON, or panics
/// with Spark's error and `context` (e.g. the metastore's log).
fn run_scenario(uri: &str, db: &str, warehouse: &Path, context: &dyn Fn() -> String) -> Value {
    let py = pyspark_python();
    let script = repo_root().join("tests/support/spark_hive.py");
    let started = Instant::now();
    let mut child = Command::new(&py)
        .arg(&script)
        .args(["scenario", "--db", db, "--uri", uri, "--warehouse"])
        .arg(warehouse)
        .env("HADOOP_USER_NAME", SPARK_USER)
        .env_remove("INLET_SPARK_HMS_URI")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {py} {}: {e}", script.display()));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // A metastore that stops answering would leave Spark waiting on its
    // socket timeout for every retry: bound the whole run.
    let limit = Duration::from_secs(300);
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break Some(s);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (out, err) = (out_t.join().unwrap(), err_t.join().unwrap());
    let failed_line = err.lines().filter(|l| l.contains("spark_hive.py: FAILED")).last().unwrap_or("").to_string();
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!(
            "spark_hive.py scenario against {uri} failed ({s}) after {:.0?}:\n{failed_line}\n--- Spark stderr (tail):\n{}\n--- context:\n{}",
            started.elapsed(),
            tail(&err, 6000),
            context()
        ),
        None => panic!("spark_hive.py scenario against {uri} still running after {limit:?}; Spark stderr (tail):\n{}\n--- context:\n{}", tail(&err, 6000), context()),
    }
    eprintln!("spark_hive.py scenario against {uri}: {:.1?}", started.elapsed());
    serde_json::from_str(out.trim().lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("spark_hive.py printed no JSON ({e}): {out:?}"))
}

/// The scenario's JSON without what differs between runs: timings, step
/// times, and the database name (replaced by `$DB`).
fn normalise(v: &Value, db: &str) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("timings_ms");
        o.remove("steps");
    }
    let text = serde_json::to_string(&v).unwrap().replace(db, "$DB");
    serde_json::from_str(&text).unwrap()
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            if m.is_empty() {
                out.insert(prefix.to_string(), "{}".into());
            }
            for (k, x) in m {
                flatten(&format!("{prefix}.{k}"), x, out);
            }
        }
        Value::Array(a) => {
            out.insert(format!("{prefix}.len"), a.len().to_string());
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn reference_path() -> PathBuf {
    repo_root().join("tests/support/spark_hive_reference.json")
}

/// Every difference between the scenario's JSON on inlet and on the
/// reference HMS, as `path: inlet X, reference Y` lines.
fn diff_with_reference(got: &Value) -> Vec<String> {
    let text = std::fs::read_to_string(reference_path()).expect("tests/support/spark_hive_reference.json");
    let want: Value = serde_json::from_str(&text).expect("reference JSON");
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten("", got, &mut a);
    flatten("", &want, &mut b);
    let mut out = Vec::new();
    for k in a.keys().chain(b.keys()).collect::<std::collections::BTreeSet<_>>() {
        let (x, y) = (a.get(k), b.get(k));
        if x != y {
            out.push(format!("{k}: inlet {}, reference {}", x.map(String::as_str).unwrap_or("(missing)"), y.map(String::as_str).unwrap_or("(missing)")));
        }
    }
    out
}

/// Rewrites the reference JSON from a scenario run against
/// `INLET_TEST_HMS_REFERENCE` (`INLET_SPARK_RECORD_REFERENCE=1`).
fn record_reference() {
    let uri = std::env::var("INLET_TEST_HMS_REFERENCE").unwrap_or_else(|_| panic!("INLET_SPARK_RECORD_REFERENCE needs INLET_TEST_HMS_REFERENCE: {RUN_THROUGH}"));
    let work = Workdir::new();
    let db = unique("spark_ref");
    let got = run_scenario(&uri, &db, &work.warehouse(), &|| "(reference metastore: see .inlet/services/ref-hms.log)".into());
    let text = serde_json::to_string_pretty(&normalise(&got, &db)).unwrap();
    std::fs::write(reference_path(), text + "\n").expect("write reference JSON");
    eprintln!("recorded {}", reference_path().display());
}

/// `json[path]` for a dotted path of object keys.
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| v.get(k).unwrap_or(&Value::Null))
}

/// Checks the scenario's results; every mismatch is added to `problems`.
fn check_scenario(got: &Value, db: &str, served: &Served, problems: &mut Vec<String>) {
    use serde_json::json;
    let mut eq = |what: &str, have: &Value, want: Value| {
        if have != &want {
            problems.push(format!("{what}: got {have}, want {want}"));
        }
    };
    // Row counts and sums.
    eq("ds_all", at(got, "ds_all"), json!({"n": 12, "total": 117.0, "min_id": 1, "max_id": 12}));
    eq("hv_all", at(got, "hv_all"), json!({"n": 9, "total": 67.5, "min_id": 1, "max_id": 9}));
    let want_by_part: Vec<Value> = [("2024-01-01", 0, 27.0), ("2024-01-01", 1, 18.0), ("2024-01-02", 0, 21.0), ("2024-01-02", 1, 12.0), ("2024-01-03", 0, 15.0), ("2024-01-03", 1, 24.0)]
        .iter()
        .map(|(d, h, t)| json!({"dt": d, "hr": h, "n": 2, "total": t}))
        .collect();
    eq("ds rows by partition", at(got, "ds_rows_by_partition"), Value::Array(want_by_part));
    // Partition lists (SHOW PARTITIONS), before and after DROP PARTITION.
    let ds_parts = ["dt=2024-01-01/hr=0", "dt=2024-01-01/hr=1", "dt=2024-01-02/hr=0", "dt=2024-01-02/hr=1", "dt=2024-01-03/hr=0", "dt=2024-01-03/hr=1"];
    eq("SHOW PARTITIONS ds", at(got, "ds_partitions"), json!(ds_parts));
    eq("SHOW PARTITIONS ds PARTITION (dt = '2024-01-02')", at(got, "ds_partitions_dt_2024_01_02"), json!(["dt=2024-01-02/hr=0", "dt=2024-01-02/hr=1"]));
    eq("SHOW PARTITIONS hv", at(got, "hv_partitions"), json!(["dt=2024-01-01", "dt=2024-01-02", "dt=2024-01-03"]));
    eq("SHOW PARTITIONS ds after DROP PARTITION", at(got, "ds_partitions_after_drop"), json!(ds_parts[2..]));
    eq("SHOW PARTITIONS hv after DROP PARTITION", at(got, "hv_partitions_after_drop"), json!(["dt=2024-01-02", "dt=2024-01-03"]));
    eq("ds count/sum after DROP PARTITION", at(got, "ds_after_drop"), json!({"n": 9, "total": 91.5}));
    eq("hv count/sum after DROP PARTITION", at(got, "hv_after_drop"), json!({"n": 7, "total": 64.5}));
    // Partition pruning through get_partitions_by_filter: the partitions
    // fetched from the metastore are exactly the matching ones.
    for (key, parts, n, total) in [("ds_dt", 2, 4, 33.0), ("ds_hr", 3, 6, 54.0), ("ds_dt_hr", 1, 2, 15.0), ("ds_dt_range", 4, 8, 72.0), ("hv_dt", 1, 3, 36.0)] {
        let p = at(got, &format!("pruned.{key}"));
        eq(&format!("pruned.{key}: result"), &p["result"], json!([{"n": n, "total": total}]));
        eq(&format!("pruned.{key}: partitions fetched from the metastore (get_partitions_by_filter)"), &p["metastore_partitions_fetched"], json!(parts));
        eq(&format!("pruned.{key}: partitions scanned"), &p["scans"][0]["partitions_read"], json!(parts));
        eq(&format!("pruned.{key}: pruned_through_metastore"), &p["pruned_through_metastore"], json!(true));
    }
    // ALTER TABLE ADD COLUMNS: new column in the schema, null for old rows.
    let cols = |path: &str| -> Value { Value::Array(at(got, path).as_array().map(|a| a.iter().map(|c| json!(format!("{}:{}", c["name"].as_str().unwrap_or("?"), c["type"].as_str().unwrap_or("?")))).collect()).unwrap_or_default()) };
    eq("ds schema after ADD COLUMNS", &cols("ds_schema_after_add"), json!(["id:int", "name:string", "amount:double", "note:string", "dt:string", "hr:int"]));
    eq("hv schema after ADD COLUMNS", &cols("hv_schema_after_add"), json!(["id:int", "name:string", "amount:double", "note:string", "dt:string"]));
    eq("ds note column (null for old rows)", at(got, "ds_note"), json!({"n": 13, "with_note": 1, "null_note": 12, "note": "first note"}));
    eq("hv note column (null for old rows)", at(got, "hv_note"), json!({"n": 10, "with_note": 1, "null_note": 9, "note": "first note"}));
    eq("SHOW TBLPROPERTIES ds", at(got, "ds_tblproperties"), json!({"inlet.step": "altered", "inlet.test": "ds"}));
    // DROP PARTITION / DROP TABLE / DROP DATABASE CASCADE delete the data.
    eq("ds/dt=2024-01-01 exists after dropping its partitions (hr=0, hr=1)", at(got, "ds_dropped_partition_dir_exists"), json!(false));
    eq("hv directory exists after DROP TABLE", at(got, "hv_dir_exists_after_drop"), json!(false));
    eq("database directory exists after DROP DATABASE CASCADE", at(got, "db_dir_exists_after_drop"), json!(false));
    eq("SHOW DATABASES after DROP DATABASE CASCADE", at(got, "show_databases_after_drop"), json!([]));
    eq("SHOW TABLES after DROP TABLE hv", at(got, "show_tables_after_drop"), json!(["ds"]));
    let db_dir = served.warehouse.join(format!("{db}.db"));
    if db_dir.exists() {
        problems.push(format!("{} still exists after DROP DATABASE CASCADE", db_dir.display()));
    }
    // The catalog agrees (REST).
    let (code, body) = served.rest_json(&format!("/api/v1/databases/{db}/tables/ds"));
    if code != 404 {
        problems.push(format!("GET /api/v1/databases/{db}/tables/ds after DROP DATABASE CASCADE: HTTP {code} {body}, want 404"));
    }
}

/// Spark's DDL, audited under the Spark user through Thrift.
fn check_audited(served: &Served, db: &str, problems: &mut Vec<String>) {
    let (code, body) = served.rest_json(&format!("/api/v1/audit?object={db}&limit=10000"));
    let Some(entries) = body.as_array().filter(|_| code == 200) else {
        problems.push(format!("GET /api/v1/audit?object={db}: HTTP {code} {body}"));
        return;
    };
    let mut got: Vec<(String, String)> = Vec::new();
    for e in entries {
        let (actor, via, action, object) = (e["actor"].as_str().unwrap_or(""), e["via"].as_str().unwrap_or(""), e["action"].as_str().unwrap_or(""), e["object_name"].as_str().unwrap_or(""));
        if actor != SPARK_USER || via != "thrift" {
            problems.push(format!("audit: {action} {object} recorded as by {actor:?} via {via:?}, want {SPARK_USER:?} via \"thrift\""));
        }
        got.push((action.to_string(), object.to_string()));
    }
    let mut want: Vec<(String, String)> = Vec::new();
    let mut add = |action: &str, object: String| want.push((action.to_string(), object));
    add("create_database", db.to_string());
    add("create_table", format!("{db}.ds"));
    add("create_table", format!("{db}.hv"));
    for d in ["2024-01-01", "2024-01-02", "2024-01-03"] {
        for h in [0, 1] {
            add("add_partition", format!("{db}.ds/dt={d}/hr={h}"));
        }
        add("add_partition", format!("{db}.hv/dt={d}"));
    }
    // ADD COLUMNS on both, SET TBLPROPERTIES on ds.
    add("alter_table", format!("{db}.ds"));
    add("alter_table", format!("{db}.ds"));
    add("alter_table", format!("{db}.hv"));
    add("drop_partition", format!("{db}.ds/dt=2024-01-01/hr=0"));
    add("drop_partition", format!("{db}.ds/dt=2024-01-01/hr=1"));
    add("drop_partition", format!("{db}.hv/dt=2024-01-01"));
    add("drop_table", format!("{db}.hv"));
    add("drop_table", format!("{db}.ds"));
    add("drop_database", db.to_string());
    got.sort();
    want.sort();
    if got != want {
        let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).collect();
        let extra: Vec<_> = got.iter().filter(|g| !want.contains(g)).collect();
        problems.push(format!("audit log of {db} (GET /api/v1/audit?object={db}) differs from Spark's DDL: missing {missing:?}, unexpected {extra:?}"));
    }
}

fn spark_scenario_against_inlet(mysql: Option<MysqlDb>) {
    let t0 = Instant::now();
    let _ = pyspark_python(); // fail before starting anything
    if mysql.is_none() && std::env::var_os("INLET_SPARK_RECORD_REFERENCE").is_some() {
        record_reference();
    }
    let mut served = Served::start(mysql, "");
    let db = unique("spark_e2e");
    // Spark's warehouse is inlet's: the managed tables' directories Spark
    // creates are the ones inlet must delete on DROP.
    let warehouse = served.warehouse.clone();
    let log = served.log.clone();
    let got = run_scenario(&served.uri(), &db, &warehouse, &|| format!("inlet metastore log (tail):\n{}", tail(&std::fs::read_to_string(&log).unwrap_or_default(), 6000)));
    served.assert_alive("after the Spark scenario");
    eprintln!("scenario JSON: {got}");
    let mut problems = Vec::new();
    check_scenario(&got, &db, &served, &mut problems);
    for d in diff_with_reference(&normalise(&got, &db)) {
        problems.push(format!("differs from the reference Hive Metastore 2.3.10 (tests/support/spark_hive_reference.json): {d}"));
    }
    check_audited(&served, &db, &mut problems);
    assert!(problems.is_empty(), "Spark against inlet's metastore (database {db}): {} problems:\n  {}", problems.len(), problems.join("\n  "));
    served.stop(Duration::from_secs(20));
    eprintln!("total {:.1?}", t0.elapsed());
}

#[test]
fn spark_scenario_on_sqlite_catalog() {
    spark_scenario_against_inlet(None);
}

#[test]
fn spark_scenario_on_mariadb_catalog() {
    spark_scenario_against_inlet(Some(MysqlDb::create()));
}

// ------------------------------------------------------------------ bad Thrift input

/// Strict TBinaryProtocol call message: header, then `args` (the argument
/// struct's fields, without the final stop byte).
fn binary_call(method: &str, seq: i32, args: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&0x8001_0001u32.to_be_bytes());
    m.extend_from_slice(&(method.len() as i32).to_be_bytes());
    m.extend_from_slice(method.as_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(args);
    m.push(0); // T_STOP of the argument struct
    m
}

fn string_field(id: i16, s: &[u8]) -> Vec<u8> {
    let mut f = vec![11];
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&(s.len() as i32).to_be_bytes());
    f.extend_from_slice(s);
    f
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut f = (msg.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(msg);
    f
}

/// One bad connection: bytes to send, then the write side is closed.
struct Bad {
    name: String,
    bytes: Vec<u8>,
    /// The server must answer something before closing (a reply or a
    /// TApplicationException), not just close.
    must_answer: bool,
}

fn bad(name: impl Into<String>, bytes: Vec<u8>) -> Bad {
    Bad { name: name.into(), bytes, must_answer: false }
}

/// The metastore's `max_message_bytes` in the robustness test.
const LIMIT: usize = 1 << 20;

fn bad_inputs() -> Vec<Bad> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x1e1e7);
    let mut v = Vec::new();
    let get_all = binary_call("get_all_databases", 1, &[]);
    let get_table = binary_call("get_table", 7, &[string_field(1, b"default"), string_field(2, b"some_table")].concat());

    // Garbage.
    v.push(bad("empty connection", vec![]));
    v.push(bad("http request", b"GET / HTTP/1.1\r\nHost: metastore\r\n\r\n".to_vec()));
    v.push(bad("tls client hello", vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
    v.push(bad("zeros", vec![0; 64]));
    v.push(bad("0xff", vec![0xff; 64]));
    v.push(bad("empty frame", vec![0, 0, 0, 0]));
    v.push(bad("negative frame length", [&[0xff, 0xff, 0xff, 0xf0][..], &get_all].concat()));
    for i in 0..40 {
        let n = rng.random_range(1..4096);
        let mut b = vec![0u8; n];
        rng.fill(&mut b[..]);
        v.push(bad(format!("random {i} ({n} bytes)"), b));
    }
    // Valid headers, bad contents.
    v.push(bad("binary bad version", [&[0x80, 0x02, 0x00, 0x01][..], &get_all[4..]].concat()));
    v.push(bad("binary bad message type", [&[0x80, 0x01, 0x00, 0x09][..], &get_all[4..]].concat()));
    v.push(bad("negative method name length", [&[0x80, 0x01, 0x00, 0x01, 0xff, 0xff, 0xff, 0xfe][..], b"abc"].concat()));
    v.push(bad("unknown field type", binary_call("get_database", 1, &[0x55, 0x00, 0x01, 0, 0, 0, 1, b'x'])));
    v.push(bad("compact garbage", [&[0x82, 0x21, 0x05][..], b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"].concat()));
    v.push(bad("framed compact garbage", framed(&[0x82, 0x21, 0x01, 0x11, b'g', b'e', b't', 0xee, 0xee])));
    v.push(bad("encoding changes mid-connection", [get_all.clone(), vec![0x82, 0x21, 0x01, 0x00]].concat()));
    v.push(bad("frame with trailing bytes", framed(&[get_all.clone(), vec![1, 2, 3, 4]].concat())));
    // Truncated: every prefix of a call, unframed and framed (the frame
    // header promising the whole call), then EOF.
    let framed_table = framed(&get_table);
    for cut in 1..get_table.len() {
        v.push(bad(format!("unframed get_table cut at {cut}"), get_table[..cut].to_vec()));
    }
    for cut in 1..framed_table.len() {
        v.push(bad(format!("framed get_table cut at {cut}"), framed_table[..cut].to_vec()));
    }
    // Oversized: claimed and real.
    v.push(bad("frame claiming 2 GiB", [&0x7fff_ffffu32.to_be_bytes()[..], &get_all].concat()));
    v.push(bad("frame claiming limit + 1", [&((LIMIT + 1) as u32).to_be_bytes()[..], &get_all].concat()));
    v.push(bad("string claiming 2 GiB", binary_call("get_database", 1, &[&[11u8, 0, 1][..], &0x7fff_ffffi32.to_be_bytes()[..], b"abc"].concat())));
    v.push(bad("string of negative length", binary_call("get_database", 1, &[&[11u8, 0, 1][..], &(-5i32).to_be_bytes()[..]].concat())));
    v.push(bad("method name claiming 2 GiB", [&[0x80, 0x01, 0x00, 0x01, 0x7f, 0xff, 0xff, 0xff][..], b"get_all_databases"].concat()));
    // get_table_objects_by_name(dbname, tbl_names: list<string>)
    v.push(bad(
        "list claiming 2^31-1 elements",
        binary_call("get_table_objects_by_name", 1, &[string_field(1, b"default"), vec![15, 0, 2, 11, 0x7f, 0xff, 0xff, 0xff], string_field(0, b"x")].concat()),
    ));
    v.push(bad("map claiming 2^31-1 entries", binary_call("create_database", 1, &[vec![12, 0, 1], vec![13, 0, 4, 11, 11, 0x7f, 0xff, 0xff, 0xff], vec![0]].concat())));
    let big = vec![b'a'; LIMIT + 16];
    v.push(bad("real unframed message over the limit", binary_call("get_database", 1, &string_field(1, &big))));
    v.push(bad("real framed message over the limit", framed(&binary_call("get_database", 1, &string_field(1, &big)))));
    // Nesting far deeper than any real request (struct in struct in ...).
    let deep: Vec<u8> = std::iter::repeat_n([12u8, 0, 1], 100_000).flatten().collect();
    v.push(bad("structs nested 100000 deep", binary_call("create_database", 1, &deep)));
    let mut lists = vec![15u8, 0, 1];
    for _ in 0..50_000 {
        lists.extend_from_slice(&[15, 0, 0, 0, 1]); // list<list<...>> of one element
    }
    v.push(bad("lists nested 50000 deep", binary_call("get_table_objects_by_name", 1, &lists)));
    // Answered, then closed: a method the server does not know, a good
    // call followed by garbage.
    v.push(Bad { name: "unknown method".into(), bytes: binary_call("no_such_method_inlet", 3, &[]), must_answer: true });
    v.push(Bad { name: "good call then garbage".into(), bytes: [get_all.clone(), vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0x00]].concat(), must_answer: true });
    v.push(Bad { name: "framed good call then bad frame".into(), bytes: [framed(&get_all), vec![0xff; 8]].concat(), must_answer: true });
    // Mutations of good calls: random bytes changed.
    for (i, base) in [get_table.clone(), framed_table.clone(), get_all.clone()].iter().enumerate() {
        for j in 0..40 {
            let mut b = base.clone();
            for _ in 0..rng.random_range(1..4) {
                let k = rng.random_range(0..b.len());
                b[k] = rng.random();
            }
            v.push(bad(format!("mutated call {i}.{j}"), b));
        }
    }
    v
}

#[derive(Debug)]
enum Fate {
    /// The server closed (EOF or reset) after sending this many bytes.
    Closed(usize),
    /// Neither closed nor answering within the time allowed.
    Hung(usize),
}

/// Sends `b.bytes`, closes the write side, and waits for the server to end
/// the connection.
fn send_bad(addr: SocketAddr, b: &Bad, wait: Duration) -> Fate {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{}: cannot connect to the metastore: {e}", b.name));
    s.set_write_timeout(Some(wait)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let deadline = Instant::now() + wait;
    let mut answered = 0;
    // A server that stops reading and closes makes the write fail (reset,
    // broken pipe): that is a close.
    match s.write_all(&b.bytes) {
        Ok(()) => {
            let _ = s.shutdown(Shutdown::Write);
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Fate::Hung(0),
        Err(_) => {}
    }
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Fate::Closed(answered),
            Ok(n) => answered += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if Instant::now() > deadline {
                    return Fate::Hung(answered);
                }
            }
            Err(_) => return Fate::Closed(answered),
        }
    }
}

type Client = inlet_hms_thrift::hive_metastore::ThriftHiveMetastoreSyncClient<Box<dyn thrift::protocol::TInputProtocol>, Box<dyn thrift::protocol::TOutputProtocol>>;

fn thrift_client(addr: SocketAddr) -> std::io::Result<Client> {
    use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol, TInputProtocol, TOutputProtocol};
    use thrift::transport::{TBufferedReadTransport, TBufferedWriteTransport, TIoChannel, TTcpChannel};
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nodelay(true)?;
    let (r, w) = TTcpChannel::with_stream(stream).split().map_err(std::io::Error::other)?;
    let i: Box<dyn TInputProtocol> = Box::new(TBinaryInputProtocol::new(TBufferedReadTransport::new(r), true));
    let o: Box<dyn TOutputProtocol> = Box::new(TBinaryOutputProtocol::new(TBufferedWriteTransport::new(w), true));
    Ok(inlet_hms_thrift::hive_metastore::ThriftHiveMetastoreSyncClient::new(i, o))
}

#[test]
fn garbage_truncated_and_oversized_frames_never_hurt_a_good_client() {
    use inlet_hms_thrift::hive_metastore::TThriftHiveMetastoreSyncClient;
    let t0 = Instant::now();
    let mut served = Served::start(None, &format!("  max_message_bytes: {LIMIT}\n"));
    let addr = served.thrift;

    // The well-behaved client: one long-lived connection, and a fresh one
    // every 25 calls; every call must succeed and list `default`.
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let good = {
        let (stop, calls, failures) = (stop.clone(), calls.clone(), failures.clone());
        std::thread::spawn(move || {
            let mut long = match thrift_client(addr) {
                Ok(c) => c,
                Err(e) => {
                    failures.lock().unwrap().push(format!("connect: {e}"));
                    return;
                }
            };
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let started = Instant::now();
                let r = if i % 25 == 0 { thrift_client(addr).map_err(thrift::Error::from).and_then(|mut c| c.get_all_databases()) } else { long.get_all_databases() };
                match r {
                    Ok(dbs) if dbs.iter().any(|d| d == "default") => {
                        calls.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(dbs) => failures.lock().unwrap().push(format!("call {i}: get_all_databases gave {dbs:?}, without default")),
                    Err(e) => {
                        failures.lock().unwrap().push(format!("call {i} ({}): get_all_databases failed after {:?}: {e}", if i % 25 == 0 { "new connection" } else { "long-lived connection" }, started.elapsed()));
                        if let Ok(c) = thrift_client(addr) {
                            long = c;
                        }
                    }
                }
            }
        })
    };
    // Let it get going.
    assert!(wait_for(Duration::from_secs(10), || calls.load(Ordering::SeqCst) >= 5), "the good client made no calls: {:?}", failures.lock().unwrap());

    // Requests cut short and never finished, held open for the whole run
    // (and through shutdown): they must not block anyone else.
    let mut stalled = Vec::new();
    for (i, prefix) in [&[0x80u8, 0x01][..], &[0x00, 0x00, 0x01, 0x00, 0x80, 0x01, 0x00], &binary_call("get_table", 1, &string_field(1, b"default"))[..20]].iter().enumerate() {
        for _ in 0..5 {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap_or_else(|e| panic!("stalled connection {i}: {e}"));
            s.write_all(prefix).expect("write stalled prefix");
            stalled.push(s);
        }
    }

    // The bad connections, from 4 threads at once.
    let inputs = Arc::new(bad_inputs());
    let n_inputs = inputs.len();
    let next = Arc::new(AtomicU64::new(0));
    let problems: Arc<Mutex<Vec<String>>> = Arc::default();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (inputs, next, problems) = (inputs.clone(), next.clone(), problems.clone());
            std::thread::spawn(move || {
                loop {
                    let k = next.fetch_add(1, Ordering::SeqCst) as usize;
                    let Some(b) = inputs.get(k) else { break };
                    match send_bad(addr, b, Duration::from_secs(15)) {
                        Fate::Closed(n) if b.must_answer && n == 0 => problems.lock().unwrap().push(format!("{}: closed without an answer", b.name)),
                        Fate::Closed(_) => {}
                        Fate::Hung(n) => problems.lock().unwrap().push(format!("{}: neither closed nor read within 15 s (after {n} bytes of answer)", b.name)),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("bad-input worker");
    }
    served.assert_alive("after the bad connections");
    let calls_during = calls.load(Ordering::SeqCst);

    // Keep the good client going a little longer after the storm.
    let after = calls_during + 20;
    let caught_up = wait_for(Duration::from_secs(20), || calls.load(Ordering::SeqCst) >= after);
    stop.store(true, Ordering::SeqCst);
    good.join().expect("good client thread");
    served.assert_alive("at the end");
    let (code, _) = http_get(served.http, "/health").expect("GET /health");
    assert_eq!(code, 200, "/health after the bad connections");

    let failures = failures.lock().unwrap().clone();
    let problems = problems.lock().unwrap().clone();
    let log = std::fs::read_to_string(&served.log).unwrap_or_default();
    assert!(failures.is_empty(), "the well-behaved client failed {} times (of {} good calls):\n  {}\nmetastore log (tail):\n{}", failures.len(), calls.load(Ordering::SeqCst), failures.join("\n  "), tail(&log, 4000));
    assert!(caught_up, "the good client made fewer than 20 calls in 20 s after the bad connections; log:\n{}", tail(&log, 4000));
    assert!(problems.is_empty(), "{} of {n_inputs} bad connections were mishandled:\n  {}", problems.len(), problems.join("\n  "));
    assert!(!log.contains("panicked"), "the metastore panicked; log:\n{}", tail(&log, 6000));

    // SIGTERM with the stalled half-requests still open: a clean, prompt exit.
    served.stop(Duration::from_secs(10));
    drop(stalled);
    eprintln!("{n_inputs} bad connections, {} good calls, {:.1?}", calls.load(Ordering::SeqCst), t0.elapsed());
}
