//! Shared helpers of the end-to-end tests: the services started by
//! `scripts/services.sh`, unique names, producing, running the `inlet`
//! binary, and reading tables back (from Rust and with Python `deltalake`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

pub fn brokers() -> String {
    std::env::var("INLET_TEST_BROKERS").expect("INLET_TEST_BROKERS is not set: run `eval \"$(scripts/services.sh start)\"` or scripts/test.sh")
}

pub fn s3_endpoint() -> String {
    std::env::var("INLET_TEST_S3_ENDPOINT").expect("INLET_TEST_S3_ENDPOINT is not set: run `eval \"$(scripts/services.sh start)\"` or scripts/test.sh")
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple().to_string()[..12].to_string())
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn inlet_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_inlet"))
}

pub async fn create_topic(topic: &str, partitions: i32) {
    inlet_ingest::sample::create_topic(&brokers(), topic, partitions).await.expect("create topic");
}

/// Produces the given payloads, message i to partition i % partitions.
pub fn produce(topic: &str, partitions: i32, payloads: &[Vec<u8>]) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "10")
        .set("message.max.bytes", "10000000")
        .create()
        .expect("producer");
    for (i, p) in payloads.iter().enumerate() {
        let key = i.to_string();
        let mut rec = BaseRecord::to(topic).payload(p).key(&key).partition(i as i32 % partitions);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    std::thread::sleep(Duration::from_millis(5));
                    rec = r;
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
}

/// JSON events with ids `start..start+n`.
pub fn events(start: u64, n: u64) -> Vec<Vec<u8>> {
    (start..start + n).map(|i| inlet_ingest::sample::event(i, 1_700_000_000_000 + i as i64 * 1000).into_bytes()).collect()
}

pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Self {
        let mut dir = tempfile::tempdir().expect("tempdir");
        // INLET_TEST_KEEP=1 keeps tables and logs for a post-mortem.
        if std::env::var_os("INLET_TEST_KEEP").is_some() {
            eprintln!("keeping test directory {}", dir.path().display());
            dir.disable_cleanup(true);
        }
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn warehouse(&self) -> PathBuf {
        self.dir.path().join("warehouse")
    }

    pub fn write_config(&self, yaml: &str) -> PathBuf {
        let p = self.dir.path().join("inlet.yaml");
        std::fs::write(&p, yaml).expect("write config");
        p
    }
}

/// A pipeline config with fast group joins and the metadata columns the
/// exactly-once checks read.
pub fn pipeline_config(warehouse: &str, topic: &str, table: &str, extra_storage: &str, extra_pipeline: &str) -> String {
    format!(
        r#"storage:
  warehouse: {warehouse}
{extra_storage}
{kafka}pipelines:
  - name: {table}
    source:
      topics: [{topic}]
      group_id: g-{table}
    metadata_columns:
      partition: _kafka_partition
      offset: _kafka_offset
    table:
      database: e2e
      name: {table}
    flush:
      max_rows: 5000
      max_latency_ms: 500
{extra_pipeline}
"#,
        kafka = kafka_yaml()
    )
}

/// The `kafka` and `ingest` sections of the tests' configs: the test broker,
/// fast group joins, a bounded shutdown.
pub fn kafka_yaml() -> String {
    format!(
        r#"kafka:
  brokers: {brokers}
  properties:
    session.timeout.ms: "6000"
    heartbeat.interval.ms: "500"
    max.poll.interval.ms: "30000"
ingest:
  shutdown_deadline_secs: 20
"#,
        brokers = brokers()
    )
}

pub fn run_inlet(args: &[&str]) -> Output {
    Command::new(inlet_bin()).args(args).env("INLET_LOG", "info").output().expect("run inlet")
}

/// A running `inlet` process, killed when dropped: a test that fails half
/// way leaves no process behind to load the machine for the tests after it.
pub struct Spawned(Child);

impl std::ops::Deref for Spawned {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub fn spawn_inlet(args: &[&str], log: &Path) -> Spawned {
    let f = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
    Spawned(
        Command::new(inlet_bin())
            .args(args)
            .env("INLET_LOG", "info")
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .expect("spawn inlet"),
    )
}

pub fn ingest_until_caught_up(config: &Path) -> Output {
    let out = run_inlet(&["ingest", "--config", config.to_str().unwrap(), "--until-caught-up"]);
    assert!(out.status.success(), "inlet ingest failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

pub fn sigterm(child: &Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
}

pub fn sigkill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// What the Python `deltalake` package (an independent reader) sees.
#[derive(Debug, serde::Deserialize)]
pub struct PyView {
    pub rows: u64,
    pub version: i64,
    pub files: u64,
    pub distinct_pairs: Option<u64>,
    pub duplicate_pairs: Option<u64>,
    pub columns: Vec<String>,
}

pub fn python_read(uri: &str, s3: bool) -> PyView {
    let mut cmd = Command::new(std::env::var("INLET_PYTHON").unwrap_or_else(|_| "python3".into()));
    cmd.arg(repo_root().join("tests/support/delta_read.py")).arg(uri).args(["--count-col-pair", "_kafka_partition", "_kafka_offset"]);
    if s3 {
        cmd.args(["--s3-endpoint", &s3_endpoint()]);
    }
    let out = cmd.output().expect("python3");
    assert!(out.status.success(), "delta_read.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim().lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("bad delta_read output {line:?}: {e}"))
}

/// (partition, offset) pairs of a local table, read from Rust.
pub async fn rust_pairs(table_dir: &Path) -> HashMap<(i32, i64), u32> {
    use deltalake::arrow::array::AsArray;
    use deltalake::arrow::datatypes::{Int32Type, Int64Type};
    use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let url = url::Url::from_directory_path(table_dir).unwrap();
    let table = deltalake::open_table(url).await.expect("open table");
    let mut pairs = HashMap::new();
    let uris: Vec<String> = table.get_file_uris().expect("file uris").collect();
    for uri in uris {
        let path = url::Url::parse(&uri).ok().and_then(|u| u.to_file_path().ok()).unwrap_or_else(|| PathBuf::from(&uri));
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
        for rb in reader {
            let rb = rb.unwrap();
            let p = rb.column_by_name("_kafka_partition").expect("partition column").as_primitive::<Int32Type>().clone();
            let o = rb.column_by_name("_kafka_offset").expect("offset column").as_primitive::<Int64Type>().clone();
            for i in 0..rb.num_rows() {
                *pairs.entry((p.value(i), o.value(i))).or_insert(0) += 1;
            }
        }
    }
    pairs
}

/// Waits until `f` returns true or the timeout passes.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}
