//! `format: hive` end to end: a pipeline lands events as plain Hive
//! partitions (Parquet files in `dt=.../hour=...` directories, partitions
//! in inlet's metastore) while the ingest process is killed with SIGKILL
//! again and again; afterwards
//!
//! - the files readers see hold every event exactly once (read from Rust,
//!   skipping hidden names as Hive and Spark do);
//! - PySpark with `enableHiveSupport()` against `inlet metastore serve`
//!   counts exactly N rows with equal sums, prunes a partition filter
//!   through the metastore, and DESCRIBE shows a field that appeared late
//!   as a column (old rows null);
//! - `_SUCCESS` is in the closed partitions only, with their statistics on
//!   the partition in the catalog.
//!
//! Needs the services of `scripts/services.sh` (a Kafka broker, PySpark):
//! run through `scripts/test.sh`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::TimeZone;
use common::*;
use deltalake::arrow::array::AsArray;
use deltalake::arrow::datatypes::{Int32Type, Int64Type};
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use inlet_metastore::{Catalog, Store};

const TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

fn hive_config(w: &Workdir, topic: &str, table: &str) -> String {
    format!(
        r#"storage:
  warehouse: {warehouse}
catalog:
  database_url: sqlite://{dir}/catalog.db
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
      format: hive
      event_time:
        field: ts
        time_zone: Asia/Shanghai
        partitions:
          - {{column: dt, format: "%Y-%m-%d"}}
          - {{column: hour, format: "%H"}}
      hive:
        partition_commit:
          delay_secs: 60
    flush:
      max_rows: 700
      max_latency_ms: 300
"#,
        warehouse = w.warehouse().display(),
        dir = w.path().display(),
        kafka = kafka_yaml()
    )
}

/// The Shanghai (dt, hour) of event `i` of [`events`].
fn partition_of(i: u64) -> (String, String) {
    let t = TZ.timestamp_millis_opt(1_700_000_000_000 + i as i64 * 1000).unwrap();
    (t.format("%Y-%m-%d").to_string(), t.format("%H").to_string())
}

/// Amount of event `i` in cents, as `inlet_ingest::sample::event` makes it.
fn cents_of(i: u64) -> i64 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 100_000) as i64
}

fn visible(name: &str) -> bool {
    !name.starts_with('.') && !name.starts_with('_')
}

/// Every data file a Hive reader sees: files under partition directories,
/// hidden names skipped at every level.
fn visible_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !visible(&name) {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            visible_files(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

/// (Kafka partition, offset) -> how many rows carry it, over visible files.
fn visible_pairs(table_dir: &Path) -> HashMap<(i32, i64), u32> {
    let mut files = Vec::new();
    visible_files(table_dir, &mut files);
    let mut pairs = HashMap::new();
    for path in files {
        let file = std::fs::File::open(&path).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap_or_else(|e| panic!("{}: {e}", path.display())).build().unwrap();
        for rb in reader {
            let rb = rb.unwrap();
            let p = rb.column_by_name("_kafka_partition").expect("partition column").as_primitive::<Int32Type>().clone();
            let o = rb.column_by_name("_kafka_offset").expect("offset column").as_primitive::<Int64Type>().clone();
            assert!(rb.column_by_name("dt").is_none(), "partition columns live in directory names, not in files");
            for i in 0..rb.num_rows() {
                *pairs.entry((p.value(i), o.value(i))).or_insert(0) += 1;
            }
        }
    }
    pairs
}

fn spark_hive_check(uri: &str, table: &str, filter: &str) -> serde_json::Value {
    let python = std::env::var("INLET_TEST_PYSPARK_PYTHON").expect("INLET_TEST_PYSPARK_PYTHON is not set: run the tests through scripts/test.sh");
    let script = repo_root().join("tests/support/spark_hive.py");
    let out = std::process::Command::new(python).arg(script).args(["hive-check", "e2e", table, filter, "--uri", uri]).output().unwrap();
    assert!(out.status.success(), "spark hive-check failed: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim().lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("bad hive-check output ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hive_table_lands_exactly_once_through_sigkills_and_spark_reads_it() {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("hive");
    create_topic(&topic, 2).await;
    let cfg = w.write_config(&hive_config(&w, &topic, &table));
    let log = w.path().join("ingest.log");
    let dump = || std::fs::read_to_string(&log).unwrap_or_default();
    let table_dir = w.warehouse().join("e2e.db").join(&table);

    // Produce while the ingester is killed at arbitrary moments.
    let n: u64 = 12_000;
    let producer = {
        let topic = topic.clone();
        std::thread::spawn(move || {
            for chunk in 0..24u64 {
                produce(&topic, 2, &events(chunk * 500, 500));
                std::thread::sleep(Duration::from_millis(400));
            }
        })
    };
    let mut kills = 0;
    while kills < 10 {
        let mut child = spawn_inlet(&["ingest", "--config", cfg.to_str().unwrap()], &log);
        // 1.2 to 3.6 s: sometimes during the group join, mostly mid-flush.
        std::thread::sleep(Duration::from_millis(1200 + (rand::random::<u64>() % 2400)));
        sigkill(&mut child);
        kills += 1;
    }
    producer.join().unwrap();
    // A field that appears late becomes a column; old rows read it as null.
    let late: Vec<Vec<u8>> = (n..n + 500)
        .map(|i| {
            let mut v: serde_json::Value = serde_json::from_str(&inlet_ingest::sample::event(i, 1_700_000_000_000 + i as i64 * 1000)).unwrap();
            v["coupon"] = serde_json::json!(format!("c{i}"));
            v.to_string().into_bytes()
        })
        .collect();
    produce(&topic, 2, &late);
    let total = n + 500;
    let out = run_inlet(&["ingest", "--config", cfg.to_str().unwrap(), "--until-caught-up"]);
    assert!(out.status.success(), "final run failed: {}\n{}", String::from_utf8_lossy(&out.stderr), dump());

    // Exactly once, as a reader of the directories sees it.
    let pairs = visible_pairs(&table_dir);
    let dups: Vec<_> = pairs.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(dups.is_empty(), "duplicated rows after {kills} kills: {dups:?}\n{}", dump());
    assert_eq!(pairs.len() as u64, total, "rows lost after {kills} kills\n{}", dump());

    // Partition commit: closed partitions have `_SUCCESS` and statistics,
    // the newest (still open: event time has not passed its end) has none.
    let mut per_partition: BTreeMap<(String, String), u64> = BTreeMap::new();
    for i in 0..total {
        *per_partition.entry(partition_of(i)).or_default() += 1;
    }
    let newest = partition_of(total - 1);
    let url = format!("sqlite://{}/catalog.db", w.path().display());
    let catalog = Catalog::new(Store::connect(&url).await.unwrap(), w.warehouse().to_str().unwrap());
    for ((dt, hour), rows) in &per_partition {
        let dir = table_dir.join(format!("dt={dt}")).join(format!("hour={hour}"));
        let part = catalog.get_partition("e2e", &table, &[dt.clone(), hour.clone()]).await.unwrap_or_else(|e| panic!("partition {dt}/{hour} not in the catalog: {e}"));
        let params = part.parameters.clone().unwrap_or_default();
        if (dt, hour) == (&newest.0, &newest.1) {
            assert!(!dir.join("_SUCCESS").exists(), "the open partition {dt}/{hour} has _SUCCESS");
            assert!(!params.contains_key("inlet.closed_at"), "the open partition {dt}/{hour} is marked closed: {params:?}");
        } else {
            assert!(dir.join("_SUCCESS").exists(), "closed partition {dt}/{hour} has no _SUCCESS\n{}", dump());
            // Closed on the commit that passed its end; every row of the
            // partition was committed by then (events arrive in time order
            // per Kafka partition).
            assert_eq!(params.get("numRows").map(String::as_str), Some(rows.to_string().as_str()), "statistics of {dt}/{hour}: {params:?}");
        }
    }

    // PySpark, a Hive client of inlet's metastore.
    let (fdt, fhour) = partition_of(5_000);
    let filtered_expected = per_partition[&(fdt.clone(), fhour.clone())];
    let config = inlet_config::parse(
        "metastore.yaml",
        &format!("storage:\n  warehouse: {}\ncatalog:\n  database_url: \"{url}\"\nmetastore:\n  thrift_listen: 127.0.0.1:0\n  http_listen: 127.0.0.1:0\n", w.warehouse().display()),
        &|_| None,
    )
    .unwrap();
    let running = inlet_metastore::server::start(&config).await.expect("metastore starts");
    let uri = format!("thrift://{}", running.thrift_addr);
    let filter = format!("dt = '{fdt}' AND hour = '{fhour}'");
    let (t2, f2) = (table.clone(), filter.clone());
    let got = tokio::task::spawn_blocking(move || spark_hive_check(&uri, &t2, &f2)).await.unwrap();
    running.stop().await;

    assert_eq!(got["count"], total, "Spark's count: {got}");
    assert_eq!(got["distinct_pairs"], total, "Spark sees duplicates: {got}");
    let cents: i64 = (0..total).map(cents_of).sum();
    assert_eq!(got["cents"], cents, "sums differ: {got}");
    assert_eq!(got["coupons"], 500, "the late field's values: {got}");
    assert_eq!(got["filtered"]["result"][0]["n"], filtered_expected, "filtered count: {got}");
    assert_eq!(got["filtered"]["metastore_partitions_fetched"], 1, "the partition filter was not pruned through the metastore: {got}");
    let cols: Vec<&str> = got["describe"]["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    for c in ["event_id", "amount", "ts", "_kafka_offset", "coupon", "dt", "hour"] {
        assert!(cols.contains(&c), "DESCRIBE shows {c}: {cols:?}");
    }
    let parts: Vec<&str> = got["describe"]["partition_columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(parts, ["dt", "hour"], "{got}");
}

/// (Kafka partition, offset) pairs of the table as the catalog places it:
/// every partition's files at its current location.
async fn catalog_pairs(catalog: &Catalog, table: &str) -> HashMap<(i32, i64), u32> {
    let mut pairs = HashMap::new();
    for p in catalog.list_partitions("e2e", table, -1).await.unwrap() {
        let loc = p.sd.unwrap().location.unwrap();
        let dir = PathBuf::from(loc.strip_prefix("file:").unwrap());
        let mut files = Vec::new();
        visible_files(&dir, &mut files);
        for (k, v) in visible_pairs_of(&files) {
            *pairs.entry(k).or_insert(0) += v;
        }
    }
    pairs
}

fn visible_pairs_of(files: &[PathBuf]) -> HashMap<(i32, i64), u32> {
    let mut pairs = HashMap::new();
    for path in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap().build().unwrap();
        for rb in reader {
            let rb = rb.unwrap();
            let p = rb.column_by_name("_kafka_partition").unwrap().as_primitive::<Int32Type>().clone();
            let o = rb.column_by_name("_kafka_offset").unwrap().as_primitive::<Int64Type>().clone();
            for i in 0..rb.num_rows() {
                *pairs.entry((p.value(i), o.value(i))).or_insert(0) += 1;
            }
        }
    }
    pairs
}

fn parquet_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".parquet")).count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_moves_closed_partitions_while_spark_counts() {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("hivec");
    create_topic(&topic, 2).await;
    let config = hive_config(&w, &topic, &table).replace("max_rows: 700", "max_rows: 300")
        + &format!("compaction:\n  tables:\n    - pipeline: {table}\n      min_files_per_bin: 2\n      hive_grace_period_secs: 4\n");
    let cfg = w.write_config(&config);
    let n: u64 = 9_000;
    produce(&topic, 2, &events(0, n));
    ingest_until_caught_up(&cfg);

    let table_dir = w.warehouse().join("e2e.db").join(&table);
    let url = format!("sqlite://{}/catalog.db", w.path().display());
    let catalog = Catalog::new(Store::connect(&url).await.unwrap(), w.warehouse().to_str().unwrap());
    let mut per_partition: BTreeMap<(String, String), u64> = BTreeMap::new();
    for i in 0..n {
        *per_partition.entry(partition_of(i)).or_default() += 1;
    }
    let newest = partition_of(n - 1);
    let closed: Vec<(String, String)> = per_partition.keys().filter(|k| **k != newest).cloned().collect();
    assert!(closed.len() >= 2, "{per_partition:?}");
    let dir_of = |(dt, hour): &(String, String)| table_dir.join(format!("dt={dt}")).join(format!("hour={hour}"));
    let before: Vec<usize> = closed.iter().map(|k| parquet_files(&dir_of(k))).collect();
    assert!(before.iter().all(|n| *n >= 3), "small files to compact: {before:?}");
    let open_files = parquet_files(&dir_of(&newest));

    // Spark counts in a loop, each time a new query, while compaction runs.
    let metastore = inlet_config::parse(
        "metastore.yaml",
        &format!("storage:\n  warehouse: {}\ncatalog:\n  database_url: \"{url}\"\nmetastore:\n  thrift_listen: 127.0.0.1:0\n  http_listen: 127.0.0.1:0\n", w.warehouse().display()),
        &|_| None,
    )
    .unwrap();
    let running = inlet_metastore::server::start(&metastore).await.expect("metastore starts");
    let uri = format!("thrift://{}", running.thrift_addr);
    let stop = w.path().join("stop-counting");
    let python = std::env::var("INLET_TEST_PYSPARK_PYTHON").expect("INLET_TEST_PYSPARK_PYTHON is not set: run the tests through scripts/test.sh");
    let spark = std::process::Command::new(python)
        .arg(repo_root().join("tests/support/spark_hive.py"))
        .args(["count-loop", "e2e", &table, stop.to_str().unwrap(), "--uri", &uri])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = stop.with_extension("started");
    let spark = tokio::task::spawn_blocking(move || spark.wait_with_output().unwrap());
    assert!(tokio::task::spawn_blocking(move || wait_for(Duration::from_secs(180), || started.exists())).await.unwrap(), "Spark never counted");

    let compact = |args: &[&str]| {
        let mut all = vec!["compact", "--config", cfg.to_str().unwrap(), "--table", &table];
        all.extend_from_slice(args);
        let out = run_inlet(&all);
        assert!(out.status.success(), "inlet compact failed: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    let plan = compact(&["--dry-run"]);
    assert!(plan.contains("bin"), "the dry run shows the plan: {plan}");
    assert!(plan.contains(&format!("hour={}", newest.1)) && plan.contains("not closed"), "the open partition is skipped: {plan}");
    compact(&[]);
    let again = compact(&["--dry-run"]);
    assert!(again.contains("0 bin(s)"), "a second run has nothing to do: {again}");
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(&stop, b"").unwrap();
    let out = spark.await.unwrap();
    running.stop().await;
    assert!(out.status.success(), "Spark count loop failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let counts: serde_json::Value = serde_json::from_str(text.trim().lines().last().unwrap()).unwrap();
    let counts = counts["counts"].as_array().unwrap();
    assert!(counts.len() >= 2, "{counts:?}");
    assert!(counts.iter().all(|c| c == n), "every query answers {n}: {counts:?}");

    // The closed partitions moved to one compacted file each; the open one
    // was not touched; nothing lost or doubled.
    for k in &closed {
        let p = catalog.get_partition("e2e", &table, &[k.0.clone(), k.1.clone()]).await.unwrap();
        let loc = p.sd.as_ref().unwrap().location.clone().unwrap();
        assert!(loc.contains("/.compacted/"), "{k:?} moved: {loc}");
        let new_dir = PathBuf::from(loc.strip_prefix("file:").unwrap());
        assert_eq!(parquet_files(&new_dir), 1, "{k:?} compacted into one file");
        assert!(new_dir.join("_SUCCESS").exists());
        assert_eq!(p.parameters.as_ref().unwrap()["numFiles"], "1");
    }
    let p = catalog.get_partition("e2e", &table, &[newest.0.clone(), newest.1.clone()]).await.unwrap();
    assert!(!p.sd.unwrap().location.unwrap().contains(".compacted"), "the open partition stays");
    assert_eq!(parquet_files(&dir_of(&newest)), open_files);
    let pairs = catalog_pairs(&catalog, &table).await;
    assert_eq!(pairs.len() as u64, n);
    assert!(pairs.values().all(|c| *c == 1), "duplicates after compaction");

    // Old files stay for the grace period, then go.
    assert!(before.iter().zip(&closed).all(|(b, k)| parquet_files(&dir_of(k)) == *b), "old files deleted before the grace period");
    std::thread::sleep(Duration::from_secs(5));
    compact(&[]);
    for k in &closed {
        assert_eq!(parquet_files(&dir_of(k)), 0, "{k:?}: replaced files deleted after the grace period");
    }
    assert_eq!(catalog_pairs(&catalog, &table).await.len() as u64, n);
}
