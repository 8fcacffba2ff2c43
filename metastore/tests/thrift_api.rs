//! The metastore over real TCP with Hive's own Thrift client code (the
//! generated client), on a fresh SQLite file and on a fresh MariaDB
//! database per test: Hive's semantics call by call, concurrency, and
//! atomicity when the database connection dies mid-transaction.
//!
//! MariaDB tests need `INLET_TEST_MYSQL_URL` (root URL without a database,
//! e.g. `mysql://root@127.0.0.1:3306`), which `scripts/services.sh` exports.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

use inlet_hms_thrift::hive_metastore::*;
use inlet_metastore::server::{start, Running};

use inlet_hms_thrift::client::Client;

fn client(addr: SocketAddr) -> Client {
    inlet_hms_thrift::client::connect(addr).expect("connect to metastore")
}

/// A metastore on a fresh database, with its runtime.
struct Server {
    rt: tokio::runtime::Runtime,
    running: Option<Running>,
    _dir: tempfile::TempDir,
    warehouse: std::path::PathBuf,
    mysql_db: Option<(String, String)>,
}

impl Server {
    fn sqlite() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("metastore.db").display());
        Server::start(dir, url, None)
    }

    fn mysql() -> Server {
        let root = std::env::var("INLET_TEST_MYSQL_URL").expect("INLET_TEST_MYSQL_URL is not set: run the tests through scripts/test.sh (it starts MariaDB)");
        let name = format!("inlet_test_{}", uuid::Uuid::new_v4().simple());
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::MySqlConnection::connect(&root).await.expect("connect to MariaDB as root");
            sqlx::query(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")).execute(&mut c).await.expect("create test database");
        });
        drop(rt);
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("{}/{name}", root.trim_end_matches('/'));
        Server::start(dir, url, Some((root, name)))
    }

    fn start(dir: tempfile::TempDir, url: String, mysql_db: Option<(String, String)>) -> Server {
        let warehouse = dir.path().join("warehouse");
        let yaml = format!(
            "storage:\n  warehouse: {}\ncatalog:\n  database_url: \"{url}\"\nmetastore:\n  thrift_listen: 127.0.0.1:0\n  http_listen: 127.0.0.1:0\n",
            warehouse.display()
        );
        let config = inlet_config::parse("test.yaml", &yaml, &|_| None).expect("valid config");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let running = rt.block_on(start(&config)).expect("metastore starts");
        Server { rt, running: Some(running), _dir: dir, warehouse, mysql_db }
    }

    fn addr(&self) -> SocketAddr {
        self.running.as_ref().expect("running").thrift_addr
    }

    fn http(&self) -> SocketAddr {
        self.running.as_ref().expect("running").http_addr
    }

    /// The catalog database's URL (a second server, a job reporter).
    fn url(&self) -> String {
        match &self.mysql_db {
            Some((root, name)) => format!("{}/{name}", root.trim_end_matches('/')),
            None => format!("sqlite://{}", self._dir.path().join("metastore.db").display()),
        }
    }

    /// Another metastore on the same database (a second replica).
    fn replica(&self) -> Server {
        Server::start(tempfile::tempdir().expect("tempdir"), self.url(), None)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(r.stop());
        }
        if let Some((root, name)) = self.mysql_db.take() {
            self.rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::MySqlConnection::connect(&root).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut c).await;
                }
            });
        }
    }
}

fn col(name: &str, ty: &str) -> FieldSchema {
    FieldSchema { name: Some(name.into()), type_: Some(ty.into()), comment: None }
}

fn parquet_sd(cols: Vec<FieldSchema>, location: Option<String>) -> StorageDescriptor {
    StorageDescriptor {
        cols: Some(cols),
        location,
        input_format: Some("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat".into()),
        output_format: Some("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat".into()),
        serde_info: Some(SerDeInfo { serialization_lib: Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe".into()), parameters: Some(BTreeMap::from([("serialization.format".into(), "1".into())])), ..Default::default() }),
        ..Default::default()
    }
}

fn events_table(db: &str, name: &str) -> Table {
    Table {
        table_name: Some(name.into()),
        db_name: Some(db.into()),
        owner: Some("alice".into()),
        sd: Some(parquet_sd(vec![col("id", "bigint"), col("payload", "string")], None)),
        partition_keys: Some(vec![col("dt", "string"), col("hr", "int")]),
        parameters: Some(BTreeMap::from([("comment".into(), "events".into())])),
        table_type: Some("MANAGED_TABLE".into()),
        ..Default::default()
    }
}

fn partition(db: &str, table: &str, dt: &str, hr: u32) -> Partition {
    Partition { values: Some(vec![dt.into(), hr.to_string()]), db_name: Some(db.into()), table_name: Some(table.into()), sd: Some(parquet_sd(vec![col("id", "bigint"), col("payload", "string")], None)), ..Default::default() }
}

fn add_req(db: impl Into<String>, table: impl Into<String>, parts: Vec<Partition>, if_not_exists: bool, need_result: bool) -> AddPartitionsRequest {
    AddPartitionsRequest {
        db_name: db.into(),
        tbl_name: table.into(),
        parts,
        if_not_exists,
        need_result: Some(need_result),
        cat_name: None,
        valid_write_id_list: None,
        skip_column_schema_for_partition: None,
        partition_col_schema: None,
        environment_context: None,
    }
}

fn is_exception<T: std::fmt::Debug, E: std::error::Error + 'static>(r: thrift::Result<T>) -> bool {
    match r {
        Err(thrift::Error::User(u)) => u.downcast_ref::<E>().is_some(),
        other => panic!("expected {}, got {other:?}", std::any::type_name::<E>()),
    }
}

fn hive_semantics(server: &Server) {
    let mut c = client(server.addr());
    c.set_ugi("alice".into(), vec!["staff".into()]).expect("set_ugi");
    // What Spark does at start-up.
    let default = c.get_database("default".into()).expect("default database exists");
    assert_eq!(default.name.as_deref(), Some("default"));
    assert!(is_exception::<_, NoSuchObjectException>(c.get_database("global_temp".into())), "global_temp must not exist");

    let db = Database { name: Some("Sales".into()), description: Some("sales data".into()), parameters: Some(BTreeMap::new()), ..Default::default() };
    c.create_database(db.clone()).expect("create_database");
    assert!(is_exception::<_, AlreadyExistsException>(c.create_database(db)));
    let got = c.get_database("SALES".into()).expect("names are case-insensitive");
    assert_eq!(got.name.as_deref(), Some("sales"));
    assert!(got.location_uri.as_deref().unwrap().ends_with("/sales.db"), "default location under the warehouse: {got:?}");
    assert_eq!(c.get_databases("s*|nothing".into()).unwrap(), vec!["sales"]);

    c.create_table_with_environment_context(events_table("sales", "Events"), EnvironmentContext::default()).expect("create_table");
    assert!(is_exception::<_, AlreadyExistsException>(c.create_table(events_table("sales", "events"))));
    assert!(is_exception::<_, InvalidObjectException>(c.create_table(events_table("nodb", "events"))), "Hive 2.3 answers InvalidObjectException");
    let t = c.get_table("sales".into(), "EVENTS".into()).expect("get_table");
    assert_eq!(t.table_name.as_deref(), Some("events"));
    assert!(t.create_time.unwrap() > 0);
    assert!(t.parameters.as_ref().unwrap().contains_key("transient_lastDdlTime"));
    let location = t.sd.as_ref().unwrap().location.clone().unwrap();
    assert!(location.ends_with("/sales.db/events"), "{location}");
    assert!(server.warehouse.join("sales.db/events").is_dir(), "managed table directory made");
    assert!(is_exception::<_, NoSuchObjectException>(c.get_table("sales".into(), "missing".into())));
    assert_eq!(c.get_tables("sales".into(), "ev*".into()).unwrap(), vec!["events"]);
    assert_eq!(c.get_tables_by_type("sales".into(), "*".into(), "MANAGED_TABLE".into()).unwrap(), vec!["events"]);
    assert_eq!(c.get_table_objects_by_name("sales".into(), vec!["events".into(), "missing".into()]).unwrap().len(), 1);

    // Partitions: 3 days x 4 hours.
    let mut parts = Vec::new();
    for d in ["2024-01-01", "2024-01-02", "2024-01-03"] {
        for h in 0..4 {
            parts.push(partition("sales", "events", d, h));
        }
    }
    let res = c
        .add_partitions_req(add_req("sales", "events", parts.clone(), false, true))
        .expect("add_partitions_req");
    assert_eq!(res.partitions.unwrap().len(), 12);
    // Adding again: refused as a whole, or skipped with if_not_exists.
    assert!(is_exception::<_, AlreadyExistsException>(c.add_partitions_req(add_req("sales", "events", parts[..2].to_vec(), false, true))));
    let again = c.add_partitions_req(add_req("sales", "events", parts[..2].to_vec(), true, true)).unwrap();
    assert_eq!(again.partitions.unwrap().len(), 0);

    let names = c.get_partition_names("sales".into(), "events".into(), -1).unwrap();
    assert_eq!(names.len(), 12);
    assert_eq!(names[0], "dt=2024-01-01/hr=0");
    let p = c.get_partition("sales".into(), "events".into(), vec!["2024-01-02".into(), "3".into()]).unwrap();
    assert!(p.sd.unwrap().location.unwrap().ends_with("/sales.db/events/dt=2024-01-02/hr=3"));
    // Filters as Spark sends them; integral keys compare as numbers.
    let mut by = |f: &str| c.get_partitions_by_filter("sales".into(), "events".into(), f.into(), -1).unwrap().len();
    assert_eq!(by("dt = \"2024-01-02\""), 4);
    assert_eq!(by("hr > 1"), 6);
    assert_eq!(by("dt >= \"2024-01-02\" and (hr = 0 or hr = 3)"), 4);
    assert_eq!(by(""), 12);
    assert!(is_exception::<_, MetaException>(c.get_partitions_by_filter("sales".into(), "events".into(), "payload = \"x\"".into(), -1)), "non-key filter");
    assert!(is_exception::<_, MetaException>(c.get_partitions_by_filter("sales".into(), "events".into(), "dt = ".into(), -1)), "bad syntax");
    assert_eq!(c.get_num_partitions_by_filter("sales".into(), "events".into(), "hr = 2".into()).unwrap(), 3);
    assert_eq!(c.get_partitions_ps_with_auth("sales".into(), "events".into(), vec!["2024-01-03".into()], -1, "alice".into(), vec![]).unwrap().len(), 4);
    assert_eq!(c.get_partition_names_ps("sales".into(), "events".into(), vec!["".into(), "1".into()], -1).unwrap().len(), 3);
    assert_eq!(c.get_partitions_by_names("sales".into(), "events".into(), vec!["dt=2024-01-01/hr=1".into(), "dt=2099-01-01/hr=1".into()]).unwrap().len(), 1);
    assert_eq!(c.get_partitions("sales".into(), "events".into(), 5).unwrap().len(), 5);

    // Statistics round-trip.
    let stats = ColumnStatistics {
        stats_desc: ColumnStatisticsDesc { is_tbl_level: true, db_name: "sales".into(), table_name: "events".into(), part_name: None, last_analyzed: Some(1), cat_name: None },
        stats_obj: vec![ColumnStatisticsObj { col_name: "id".into(), col_type: "bigint".into(), stats_data: ColumnStatisticsData::LongStats(LongColumnStatsData { low_value: Some(1), high_value: Some(9), num_nulls: 0, num_d_vs: 9, bit_vectors: None, histogram: None }) }],
        is_stats_compliant: None,
        engine: None,
    };
    assert!(c.update_table_column_statistics(stats).unwrap());
    let got = c.get_table_statistics_req(TableStatsRequest { db_name: "sales".into(), tbl_name: "events".into(), col_names: vec!["id".into()], cat_name: None, valid_write_id_list: None, engine: None, id: None }).unwrap();
    assert_eq!(got.table_stats.len(), 1);

    // Alter: add a column (cascade to partitions), then rename.
    let mut t2 = c.get_table("sales".into(), "events".into()).unwrap();
    t2.sd.as_mut().unwrap().cols.as_mut().unwrap().push(col("note", "string"));
    c.alter_table_with_cascade("sales".into(), "events".into(), t2, true).expect("alter_table");
    let p = c.get_partition("sales".into(), "events".into(), vec!["2024-01-01".into(), "0".into()]).unwrap();
    assert_eq!(p.sd.unwrap().cols.unwrap().len(), 3, "cascade copies the new column to partitions");
    assert!(c.drop_partition("sales".into(), "events".into(), vec!["2024-01-01".into(), "0".into()], true).unwrap());
    assert!(is_exception::<_, NoSuchObjectException>(c.drop_partition("sales".into(), "events".into(), vec!["2024-01-01".into(), "0".into()], true)));
    let mut renamed = c.get_table("sales".into(), "events".into()).unwrap();
    renamed.table_name = Some("events_v2".into());
    c.alter_table_with_environment_context("sales".into(), "events".into(), renamed, EnvironmentContext::default()).expect("rename");
    let t3 = c.get_table("sales".into(), "events_v2".into()).unwrap();
    assert!(t3.sd.unwrap().location.unwrap().ends_with("/sales.db/events_v2"), "managed data moves with a rename");
    assert!(server.warehouse.join("sales.db/events_v2").is_dir());
    assert_eq!(c.get_partition_names("sales".into(), "events_v2".into(), -1).unwrap().len(), 11);
    let p = c.get_partition("sales".into(), "events_v2".into(), vec!["2024-01-02".into(), "0".into()]).unwrap();
    assert!(p.sd.unwrap().location.unwrap().contains("/events_v2/"), "partition locations follow the rename");

    // Functions: empty lists and Hive's "does not exist" message.
    assert!(c.get_all_functions().unwrap().functions.unwrap().is_empty());
    match c.get_function("sales".into(), "f".into()) {
        Err(thrift::Error::User(u)) => assert!(u.to_string().contains("does not exist") || format!("{u:?}").contains("does not exist")),
        other => panic!("{other:?}"),
    }

    // Locks as pyiceberg takes them.
    let lock = |c: &mut Client| {
        c.lock(LockRequest {
            component: vec![LockComponent { type_: LockType::EXCLUSIVE, level: LockLevel::TABLE, dbname: "sales".into(), tablename: Some("events_v2".into()), partitionname: None, operation_type: None, is_transactional: None, is_dynamic_partition_write: None }],
            txnid: None,
            user: "alice".into(),
            hostname: "h".into(),
            agent_info: None,
            zero_wait_read_enabled: None,
            exclusive_c_t_a_s: None,
            lockless_reads_enabled: None,
        })
        .unwrap()
    };
    let l1 = lock(&mut c);
    assert_eq!(l1.state, LockState::ACQUIRED);
    let mut c2 = client(server.addr());
    let l2 = lock(&mut c2);
    assert_eq!(l2.state, LockState::WAITING);
    c.unlock(UnlockRequest { lockid: l1.lockid }).unwrap();
    assert_eq!(c2.check_lock(CheckLockRequest { lockid: l2.lockid, txnid: None, elapsed_ms: None }).unwrap().state, LockState::ACQUIRED);
    c2.unlock(UnlockRequest { lockid: l2.lockid }).unwrap();
    c2.unlock(UnlockRequest { lockid: l2.lockid }).expect("unlock is idempotent, as Hive's");

    // Drop: a non-empty database needs cascade.
    assert!(is_exception::<_, InvalidOperationException>(c.drop_database("sales".into(), true, false)));
    c.drop_database("sales".into(), true, true).expect("drop cascade");
    assert!(!server.warehouse.join("sales.db").exists(), "managed data deleted");
    assert!(is_exception::<_, NoSuchObjectException>(c.get_database("sales".into())));

    // The audit log saw every mutation, with the set_ugi user.
    let audit: Vec<serde_json::Value> = reqwest::blocking::get(format!("http://{}/api/v1/audit?object=sales&limit=1000", server.http())).unwrap().json().unwrap();
    let actions: HashSet<&str> = audit.iter().filter_map(|e| e["action"].as_str()).collect();
    for a in ["create_database", "create_table", "add_partition", "alter_table", "rename_table", "drop_partition", "drop_table", "drop_database", "update_column_statistics"] {
        assert!(actions.contains(a), "audit has {a}: {actions:?}");
    }
    assert!(audit.iter().all(|e| e["actor"] == "alice"), "actor is the set_ugi user");
    let create = audit.iter().find(|e| e["action"] == "create_table").unwrap();
    assert_eq!(create["after"]["columns"][0]["name"], "id");
}

#[test]
fn hive_semantics_on_sqlite() {
    hive_semantics(&Server::sqlite());
}

#[test]
fn hive_semantics_on_mariadb() {
    hive_semantics(&Server::mysql());
}

/// 16 clients add partitions to one table at once, overlapping on purpose:
/// every partition lands exactly once.
fn concurrent_adds(server: &Server) {
    let mut c = client(server.addr());
    c.create_database(Database { name: Some("conc".into()), ..Default::default() }).unwrap();
    c.create_table(events_table("conc", "t")).unwrap();
    let addr = server.addr();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = client(addr);
                let mut added = 0;
                for batch in 0..5 {
                    // Each client's own partitions plus ones its neighbour adds too.
                    let mut parts: Vec<Partition> = (0..8).map(|k| partition("conc", "t", &format!("2024-02-{:02}", i + 1), batch * 8 + k)).collect();
                    parts.push(partition("conc", "t", "2024-03-01", (i + batch) % 16));
                    let r = c.add_partitions_req(add_req("conc", "t", parts, true, true)).expect("add under concurrency");
                    added += r.partitions.unwrap().len();
                }
                added
            })
        })
        .collect();
    let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let names = c.get_partition_names("conc".into(), "t".into(), -1).unwrap();
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "no duplicates");
    assert_eq!(names.len(), 16 * 40 + 16, "none lost");
    assert_eq!(total, names.len(), "every partition reported added exactly once");
}

#[test]
fn concurrent_adds_on_sqlite() {
    concurrent_adds(&Server::sqlite());
}

#[test]
fn concurrent_adds_on_mariadb() {
    concurrent_adds(&Server::mysql());
}

/// Connections of the metastore are killed while a large add_partitions is
/// in flight: the table ends with all of the call's partitions or none.
#[test]
fn killed_connection_leaves_no_partial_object() {
    let server = Server::mysql();
    let (root, name) = server.mysql_db.clone().unwrap();
    let mut c = client(server.addr());
    c.create_database(Database { name: Some("kill".into()), ..Default::default() }).unwrap();
    c.create_table(events_table("kill", "t")).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                use sqlx::{Connection, Row};
                let mut admin = sqlx::MySqlConnection::connect(&root).await.unwrap();
                let mut kills = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let rows = sqlx::query("SELECT ID, COMMAND, INFO FROM information_schema.PROCESSLIST WHERE DB = ?").bind(&name).fetch_all(&mut admin).await.unwrap();
                    for r in rows {
                        let info: Option<String> = r.try_get("INFO").ok().flatten();
                        if info.as_deref().is_some_and(|i| i.contains("INSERT INTO partitions") || i.contains("audit_log")) {
                            let id: i64 = r.try_get::<i64, _>("ID").or_else(|_| r.try_get::<u64, _>("ID").map(|v| v as i64)).unwrap();
                            if sqlx::query(&format!("KILL CONNECTION {id}")).execute(&mut admin).await.is_ok() {
                                kills += 1;
                            }
                        }
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                kills
            })
        })
    };
    let mut outcomes = Vec::new();
    for round in 0..6 {
        let parts: Vec<Partition> = (0..400).map(|h| partition("kill", "t", &format!("2024-04-{:02}", round + 1), h)).collect();
        let r = c.add_partitions_req(add_req("kill", "t", parts, false, false));
        let n = c.get_partitions_ps("kill".into(), "t".into(), vec![format!("2024-04-{:02}", round + 1)], -1).map(|p| p.len()).unwrap_or_else(|e| panic!("metastore still answers after kills: {e}"));
        assert!(n == 0 || n == 400, "round {round}: {n} partitions: a partial add survived a killed connection");
        assert_eq!(r.is_ok(), n == 400, "round {round}: the call's outcome matches what is stored ({r:?})");
        outcomes.push(r.is_ok());
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let kills = killer.join().unwrap();
    assert!(kills > 0, "the test killed no connection: it proved nothing");
    eprintln!("{kills} connections killed; outcomes {outcomes:?}");
}

/// REST: databases, tables, partitions, tokens.
#[test]
fn rest_api_reads_and_guards_writes() {
    let server = Server::sqlite();
    let mut c = client(server.addr());
    c.create_database(Database { name: Some("r".into()), ..Default::default() }).unwrap();
    c.create_table(events_table("r", "t")).unwrap();
    c.add_partitions(vec![partition("r", "t", "2024-01-01", 1), partition("r", "t", "2024-01-02", 2)]).unwrap();
    let base = format!("http://{}", server.http());
    let get = |p: &str| -> serde_json::Value { reqwest::blocking::get(format!("{base}{p}")).unwrap().json().unwrap() };
    let t = get("/api/v1/databases/r/tables/t");
    assert_eq!(t["columns"].as_array().unwrap().len(), 2);
    assert_eq!(t["partition_keys"][1]["name"], "hr");
    assert_eq!(t["format"]["provider"], "hive");
    let parts = get("/api/v1/databases/r/tables/t/partitions?filter=hr%20%3E%201");
    assert_eq!(parts.as_array().unwrap().len(), 1);
    assert_eq!(parts[0]["name"], "dt=2024-01-02/hr=2");
    let missing = reqwest::blocking::get(format!("{base}/api/v1/databases/r/tables/nope")).unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(reqwest::blocking::get(format!("{base}/ready")).unwrap().status(), 200);
    let metrics = reqwest::blocking::get(format!("{base}/metrics")).unwrap().text().unwrap();
    assert!(metrics.contains("inlet_metastore_requests_total"), "{metrics}");
    let doc = get("/openapi.json");
    assert_eq!(doc["openapi"], "3.1.0");
}

/// Two replicas on one database: each caches partition values, and a change
/// made through one is seen by the other's next filter call (the cache is
/// checked against the table's partition generation).
fn partition_cache_follows_changes_across_replicas(a: &Server) {
    let b = a.replica();
    let (mut ca, mut cb) = (client(a.addr()), client(b.addr()));
    ca.create_database(Database { name: Some("c".into()), ..Default::default() }).unwrap();
    ca.create_table(events_table("c", "t")).unwrap();
    ca.add_partitions(vec![partition("c", "t", "a", 1), partition("c", "t", "b", 1), partition("c", "t", "b", 2)]).unwrap();
    let names = |c: &mut Client, f: &str| -> Vec<String> {
        let mut v: Vec<String> = c.get_partitions_by_filter("c".into(), "t".into(), f.into(), -1).unwrap().into_iter().map(|p| p.values.unwrap().join("/")).collect();
        v.sort();
        v
    };
    assert_eq!(names(&mut cb, "dt = \"b\""), ["b/1", "b/2"]);
    assert_eq!(names(&mut cb, "dt = \"b\""), ["b/1", "b/2"], "served again (from the cache)");
    ca.add_partitions(vec![partition("c", "t", "b", 3)]).unwrap();
    assert_eq!(names(&mut cb, "dt = \"b\""), ["b/1", "b/2", "b/3"], "an add through the other replica");
    assert!(ca.drop_partition("c".into(), "t".into(), vec!["b".into(), "1".into()], false).unwrap());
    assert_eq!(names(&mut cb, "dt = \"b\""), ["b/2", "b/3"], "a drop through the other replica");
    let mut renamed = ca.get_partition("c".into(), "t".into(), vec!["b".into(), "2".into()]).unwrap();
    renamed.values = Some(vec!["z".into(), "2".into()]);
    ca.rename_partition("c".into(), "t".into(), vec!["b".into(), "2".into()], renamed).unwrap();
    assert_eq!(names(&mut cb, "dt = \"b\""), ["b/3"], "a rename through the other replica");
    assert_eq!(names(&mut cb, "dt = \"z\""), ["z/2"]);
    assert_eq!(cb.get_partition_names("c".into(), "t".into(), -1).unwrap(), ["dt=a/hr=1", "dt=b/hr=3", "dt=z/hr=2"]);
    // A dropped and re-created table is a new table to the cache.
    ca.drop_table("c".into(), "t".into(), true).unwrap();
    ca.create_table(events_table("c", "t")).unwrap();
    ca.add_partitions(vec![partition("c", "t", "b", 9)]).unwrap();
    assert_eq!(names(&mut cb, "dt = \"b\""), ["b/9"]);
}

#[test]
fn partition_cache_follows_changes_across_replicas_on_sqlite() {
    partition_cache_follows_changes_across_replicas(&Server::sqlite());
}

#[test]
fn partition_cache_follows_changes_across_replicas_on_mariadb() {
    partition_cache_follows_changes_across_replicas(&Server::mysql());
}

/// Job states: a process reports transitions through a reporter; operators
/// read and command them over REST; illegal commands get 409.
fn job_states_over_rest(server: &Server) {
    use inlet_metastore::jobs::reporter::Reporter;
    use inlet_metastore::jobs::{JobKind, JobState};
    let base = format!("http://{}", server.http());
    let http = reqwest::blocking::Client::new();
    let get = |p: &str| -> serde_json::Value { http.get(format!("{base}{p}")).send().unwrap().json().unwrap() };
    let post = |p: &str| http.post(format!("{base}{p}")).json(&serde_json::json!({"reason": "test"})).send().unwrap();
    let store = server.rt.block_on(inlet_metastore::Store::connect(&server.url())).unwrap();
    let _guard = server.rt.enter();
    let reporter = Reporter::start(Some(store), "test-1".into(), None);
    let job = server.rt.block_on(reporter.register(JobKind::Ingest, "orders", std::time::Duration::from_secs(5)));
    assert_eq!(job.state(), JobState::Created);
    job.set(JobState::Starting, "joining").unwrap();
    job.set(JobState::Running, "consuming 4 partitions").unwrap();
    assert!(job.set(JobState::Starting, "again").is_err(), "running -> starting is illegal");
    assert_eq!(job.state(), JobState::Running, "a refused transition changes nothing");
    server.rt.block_on(reporter.flush(std::time::Duration::from_secs(10)));
    let listed = get("/api/v1/jobs");
    assert_eq!(listed[0]["job"], "ingest/orders");
    assert_eq!(listed[0]["state"], "running");
    assert_eq!(listed[0]["reason"], "consuming 4 partitions");
    assert_eq!(listed[0]["instances"][0]["instance"], "test-1");

    // Pause: desired state, seen by the process within a second or so.
    let r = post("/api/v1/jobs/ingest/orders/pause");
    assert_eq!(r.status(), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !job.pause_requested() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(job.pause_requested(), "the reporter never saw the pause");
    assert_eq!(post("/api/v1/jobs/ingest/orders/pause").status(), 409, "pausing twice");
    job.set(JobState::Paused, "paused").unwrap();
    assert_eq!(post("/api/v1/jobs/ingest/orders/resume").status(), 200);
    assert_eq!(post("/api/v1/jobs/ingest/orders/resume").status(), 409, "resuming a job that is not paused");
    job.set(JobState::Running, "resumed").unwrap();
    job.set(JobState::Stopping, "shutdown").unwrap();
    job.set(JobState::Finished, "caught up").unwrap();
    server.rt.block_on(reporter.flush(std::time::Duration::from_secs(10)));
    let r = post("/api/v1/jobs/ingest/orders/pause");
    assert_eq!(r.status(), 409, "a finished pipeline cannot pause");
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["error"], "illegal_transition");
    assert!(body["message"].as_str().unwrap().contains("cannot pause a job that is finished"), "{body}");
    assert_eq!(post("/api/v1/jobs/ingest/nope/pause").status(), 404);
    let shown = get("/api/v1/jobs/ingest/orders");
    let history: Vec<(String, String)> = shown["history"].as_array().unwrap().iter().rev().map(|t| (t["from"].as_str().unwrap().into(), t["to"].as_str().unwrap().into())).collect();
    let expected = [("created", "starting"), ("starting", "running"), ("running", "paused"), ("paused", "running"), ("running", "stopping"), ("stopping", "finished")];
    assert_eq!(history, expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>());
    // Every command is audited with who asked.
    let audit = get("/api/v1/audit?object=ingest/orders");
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"pause_job") && actions.contains(&"resume_job"), "{audit}");

    // A process of the same instance that finds its predecessor mid-work
    // records the failure; a final state is taken over as it is.
    let job2 = server.rt.block_on(reporter.register(JobKind::Compaction, "orders", std::time::Duration::from_secs(5)));
    job2.set(JobState::Idle, "scheduled").unwrap();
    server.rt.block_on(reporter.flush(std::time::Duration::from_secs(10)));
    let successor = Reporter::start(Some(server.rt.block_on(inlet_metastore::Store::connect(&server.url())).unwrap()), "test-1".into(), None);
    let again = server.rt.block_on(successor.register(JobKind::Compaction, "orders", std::time::Duration::from_secs(5)));
    assert_eq!(again.state(), JobState::Failed, "idle when the process vanished: recorded as failed");
    let same = server.rt.block_on(successor.register(JobKind::Ingest, "orders", std::time::Duration::from_secs(5)));
    assert_eq!(same.state(), JobState::Finished);
}

#[test]
fn job_states_over_rest_on_sqlite() {
    job_states_over_rest(&Server::sqlite());
}

#[test]
fn job_states_over_rest_on_mariadb() {
    job_states_over_rest(&Server::mysql());
}
