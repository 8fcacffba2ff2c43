//! Load generator for Hive Metastore Thrift servers (inlet's and the
//! reference Apache Hive Metastore), used by `scripts/bench-metastore.sh`.
//!
//! For each `--target NAME=HOST:PORT`, in turn, on a fresh database
//! (`bench_<random>`):
//!
//! 1. `add_partitions`: N client threads, each with its own connection,
//!    load a table partitioned by (`dt` string, `hr` int) with 10,000
//!    partitions in batches of 24 (one day of hours, what a Spark INSERT
//!    with dynamic partitions sends: `add_partitions_req` with
//!    `ifNotExists=true, needResult=true`). Figure: partitions/s.
//! 2. `get_table`: N threads call `get_table` for a fixed time.
//! 3. `get_partitions_by_filter`: N threads call it with
//!    `dt = "<a random day>"` (24 of the 10,000 partitions), max_parts -1;
//!    every answer must hold exactly 24 partitions.
//!
//! Then it prints one table with all targets side by side and drops the
//! benchmark databases (cascade).
//!
//! ```sh
//! cargo run --release --example bench_metastore -- \
//!     --target inlet=127.0.0.1:9083 --target reference=127.0.0.1:19083 \
//!     --threads 8 --seconds 20
//! ```

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use inlet_hms_thrift::hive_metastore::*;

use inlet_hms_thrift::client::Client;

const PARTITIONS: usize = 10_000;
const HOURS: usize = 24;

fn client(addr: SocketAddr) -> Client {
    let mut c = inlet_hms_thrift::client::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    // What the Hive client sends first on every connection.
    c.set_ugi("bench".into(), vec!["bench".into()]).expect("set_ugi");
    c
}

fn col(name: &str, ty: &str) -> FieldSchema {
    FieldSchema { name: Some(name.into()), type_: Some(ty.into()), comment: None }
}

fn sd(cols: Vec<FieldSchema>, location: Option<String>) -> StorageDescriptor {
    StorageDescriptor {
        cols: Some(cols),
        location,
        input_format: Some("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat".into()),
        output_format: Some("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat".into()),
        compressed: Some(false),
        num_buckets: Some(-1),
        serde_info: Some(SerDeInfo {
            serialization_lib: Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe".into()),
            parameters: Some(BTreeMap::from([("serialization.format".into(), "1".into())])),
            ..Default::default()
        }),
        bucket_cols: Some(vec![]),
        sort_cols: Some(vec![]),
        parameters: Some(BTreeMap::new()),
        stored_as_sub_directories: Some(false),
        ..Default::default()
    }
}

fn cols() -> Vec<FieldSchema> {
    vec![col("id", "bigint"), col("name", "string"), col("amount", "double"), col("payload", "string")]
}

fn day(i: usize) -> String {
    // 417 distinct days from 2024-01-01 (day i as a date string).
    let base = 19723; // days from 1970-01-01 to 2024-01-01
    let d = base + i as i64;
    // civil-from-days (Howard Hinnant)
    let z = d + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let dd = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{dd:02}")
}

struct Stats {
    calls: usize,
    items: usize,
    elapsed: Duration,
    lat: Vec<Duration>,
    errors: usize,
}

impl Stats {
    fn pct(&self, p: f64) -> f64 {
        if self.lat.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat.len() as f64 - 1.0) * p).round() as usize;
        self.lat[i].as_secs_f64() * 1000.0
    }
    fn rate(&self, n: usize) -> f64 {
        n as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `work(client, thread, call_index)` on `threads` threads until
/// `until` says stop; returns (calls, items, latencies, errors).
fn run<F>(addr: SocketAddr, threads: usize, next: Arc<dyn Fn() -> Option<usize> + Send + Sync>, work: F) -> Stats
where
    F: Fn(&mut Client, usize) -> thrift::Result<usize> + Send + Sync + Clone + 'static,
{
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let next = next.clone();
            let work = work.clone();
            thread::spawn(move || {
                let mut c = client(addr);
                let (mut lat, mut items, mut errors) = (Vec::new(), 0usize, 0usize);
                while let Some(i) = next() {
                    let t = Instant::now();
                    match work(&mut c, i) {
                        Ok(n) => {
                            lat.push(t.elapsed());
                            items += n;
                        }
                        Err(e) => {
                            errors += 1;
                            if errors <= 3 {
                                eprintln!("bench: call {i} failed: {e}");
                            }
                            c = client(addr);
                        }
                    }
                }
                (lat, items, errors)
            })
        })
        .collect();
    let (mut lat, mut items, mut errors) = (Vec::new(), 0, 0);
    for h in handles {
        let (l, n, e) = h.join().expect("bench thread");
        lat.extend(l);
        items += n;
        errors += e;
    }
    let elapsed = start.elapsed();
    lat.sort();
    Stats { calls: lat.len(), items, elapsed, lat, errors }
}

fn counter(limit: usize) -> Arc<dyn Fn() -> Option<usize> + Send + Sync> {
    let n = Arc::new(AtomicUsize::new(0));
    Arc::new(move || {
        let i = n.fetch_add(1, Ordering::Relaxed);
        (i < limit).then_some(i)
    })
}

fn timer(d: Duration) -> Arc<dyn Fn() -> Option<usize> + Send + Sync> {
    let end = Instant::now() + d;
    let n = Arc::new(AtomicUsize::new(0));
    Arc::new(move || (Instant::now() < end).then(|| n.fetch_add(1, Ordering::Relaxed)))
}

struct Result {
    name: String,
    add: Stats,
    get_table: Stats,
    /// `get_table` from one client: latency without CPU contention from the
    /// other clients (the machine has 2 cores).
    get_table_1: Stats,
    filter: Stats,
}

fn bench(name: &str, addr: SocketAddr, threads: usize, seconds: u64) -> Result {
    let db = format!("bench_{}", uuid::Uuid::new_v4().simple().to_string().get(..12).unwrap());
    eprintln!("bench: {name} ({addr}): database {db}");
    let mut c = client(addr);
    c.create_database(Database {
        name: Some(db.clone()),
        description: Some("inlet metastore benchmark".into()),
        // An explicit location: both servers then create the same tables
        // under the same kind of path, whatever their warehouse setting.
        location_uri: Some(format!("file:{}/inlet-bench/{db}.db", std::env::temp_dir().display())),
        parameters: Some(BTreeMap::new()),
        owner_name: Some("bench".into()),
        owner_type: Some(PrincipalType::USER),
        ..Default::default()
    })
    .expect("create_database");
    let table = |name: &str, parts: Vec<FieldSchema>| Table {
        table_name: Some(name.into()),
        db_name: Some(db.clone()),
        owner: Some("bench".into()),
        create_time: Some(0),
        last_access_time: Some(0),
        retention: Some(0),
        sd: Some(sd(cols(), None)),
        partition_keys: Some(parts),
        parameters: Some(BTreeMap::from([
            ("spark.sql.create.version".into(), "3.5.1".into()),
            ("spark.sql.sources.schema.numParts".into(), "1".into()),
            ("transient_lastDdlTime".into(), "0".into()),
        ])),
        table_type: Some("MANAGED_TABLE".into()),
        ..Default::default()
    };
    c.create_table(table("t", vec![])).expect("create_table t");
    c.create_table(table("p", vec![col("dt", "string"), col("hr", "int")])).expect("create_table p");
    let p = c.get_table(db.clone(), "p".into()).expect("get_table p");
    let loc = p.sd.as_ref().and_then(|s| s.location.clone()).unwrap_or_default();

    // 1. add_partitions_req, batches of one day (24 partitions).
    let batches = PARTITIONS.div_ceil(HOURS);
    let (db2, loc2) = (db.clone(), loc.clone());
    let add = run(addr, threads, counter(batches), move |c, b| {
        let parts: Vec<Partition> = (0..HOURS)
            .filter(|h| b * HOURS + h < PARTITIONS)
            .map(|h| {
                let (dt, hr) = (day(b), h.to_string());
                Partition {
                    values: Some(vec![dt.clone(), hr.clone()]),
                    db_name: Some(db2.clone()),
                    table_name: Some("p".into()),
                    create_time: Some(0),
                    last_access_time: Some(0),
                    sd: Some(sd(cols(), Some(format!("{loc2}/dt={dt}/hr={hr}")))),
                    parameters: Some(BTreeMap::new()),
                    ..Default::default()
                }
            })
            .collect();
        let n = parts.len();
        let r = c.add_partitions_req(AddPartitionsRequest {
            db_name: db2.clone(),
            tbl_name: "p".into(),
            parts,
            if_not_exists: true,
            need_result: Some(true),
            cat_name: None,
            valid_write_id_list: None,
            skip_column_schema_for_partition: None,
            partition_col_schema: None,
            environment_context: None,
        })?;
        let got = r.partitions.map(|p| p.len()).unwrap_or(0);
        if got != n {
            return Err(thrift::Error::User(format!("add_partitions_req returned {got} of {n}").into()));
        }
        Ok(n)
    });
    let names = c.get_partition_names(db.clone(), "p".into(), -1).expect("get_partition_names");
    assert_eq!(names.len(), PARTITIONS, "{name}: partitions after loading");

    // 2. get_table.
    let db2 = db.clone();
    let get_table = run(addr, threads, timer(Duration::from_secs(seconds)), move |c, i| {
        let t = c.get_table(db2.clone(), if i % 2 == 0 { "t".into() } else { "p".into() })?;
        Ok(t.sd.map(|_| 1).unwrap_or(0))
    });

    let db2 = db.clone();
    let get_table_1 = run(addr, 1, timer(Duration::from_secs(seconds.div_ceil(2))), move |c, i| {
        let t = c.get_table(db2.clone(), if i % 2 == 0 { "t".into() } else { "p".into() })?;
        Ok(t.sd.map(|_| 1).unwrap_or(0))
    });

    // 3. get_partitions_by_filter, 24 of 10,000.
    let db2 = db.clone();
    let filter = run(addr, threads, timer(Duration::from_secs(seconds)), move |c, i| {
        let d = day((i * 7919) % (PARTITIONS / HOURS));
        let ps = c.get_partitions_by_filter(db2.clone(), "p".into(), format!("dt = \"{d}\""), -1)?;
        if ps.len() != HOURS {
            return Err(thrift::Error::User(format!("filter dt = \"{d}\" returned {} partitions", ps.len()).into()));
        }
        Ok(ps.len())
    });

    eprintln!("bench: {name}: dropping {db}");
    let mut c = client(addr);
    if let Err(e) = c.drop_table(db.clone(), "p".into(), true).and_then(|_| c.drop_table(db.clone(), "t".into(), true)).and_then(|_| c.drop_database(db.clone(), true, true)) {
        eprintln!("bench: {name}: cleanup of {db} failed: {e}");
    }
    Result { name: name.into(), add, get_table, get_table_1, filter }
}

fn main() {
    let mut targets = Vec::new();
    let (mut threads, mut seconds) = (8usize, 20u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--target" => {
                let v = args.next().expect("--target NAME=HOST:PORT");
                let (n, hp) = v.split_once('=').expect("--target NAME=HOST:PORT");
                let addr = hp.to_socket_addrs().expect("resolve").next().expect("address");
                targets.push((n.to_string(), addr));
            }
            "--threads" => threads = args.next().and_then(|v| v.parse().ok()).expect("--threads N"),
            "--seconds" => seconds = args.next().and_then(|v| v.parse().ok()).expect("--seconds N"),
            _ => panic!("unknown argument {a}; usage: --target NAME=HOST:PORT... [--threads N] [--seconds N]"),
        }
    }
    assert!(!targets.is_empty(), "no --target given");
    let results: Vec<Result> = targets.iter().map(|(n, a)| bench(n, *a, threads, seconds)).collect();

    println!();
    println!("{threads} clients (one connection each); get_table and get_partitions_by_filter for {seconds} s each");
    println!();
    println!("| server | add_partitions_req (24/batch) partitions/s | p50 ms | p99 ms | get_table calls/s | p50 ms | p99 ms | get_table, 1 client: calls/s | p50 ms | p99 ms | get_partitions_by_filter (24 of 10,000) calls/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &results {
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.1} | {:.1} | {:.1} | {} |",
            r.name,
            r.add.rate(r.add.items),
            r.add.pct(0.5),
            r.add.pct(0.99),
            r.get_table.rate(r.get_table.calls),
            r.get_table.pct(0.5),
            r.get_table.pct(0.99),
            r.get_table_1.rate(r.get_table_1.calls),
            r.get_table_1.pct(0.5),
            r.get_table_1.pct(0.99),
            r.filter.rate(r.filter.calls),
            r.filter.pct(0.5),
            r.filter.pct(0.99),
            r.add.errors + r.get_table.errors + r.get_table_1.errors + r.filter.errors,
        );
    }
    if results.iter().any(|r| r.add.errors + r.get_table.errors + r.get_table_1.errors + r.filter.errors > 0) {
        std::process::exit(1);
    }
}
