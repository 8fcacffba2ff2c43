//! Stream and batch share one catalog: ingest pipelines register their Delta
//! tables in the metastore (as delta-spark lays them out, with the real
//! columns), follow schema evolution, and never block on the catalog: when
//! it is unreachable, ingestion goes on and the registration catches up
//! from the Delta log later. PySpark, as a Hive client of inlet's
//! metastore, sees the registered table.

mod common;

use common::*;
use inlet_metastore::{Catalog, Store};

fn catalog_yaml(url: &str) -> String {
    format!("catalog:\n  database_url: \"{url}\"\n")
}

async fn catalog(url: &str, warehouse: &str) -> Catalog {
    let store = Store::connect(url).await.expect("catalog database");
    Catalog::new(store, warehouse)
}

fn columns(t: &inlet_hms_thrift::hive_metastore::Table) -> Vec<String> {
    t.sd.as_ref().unwrap().cols.as_ref().unwrap().iter().map(|c| c.name.clone().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_register_their_tables_and_follow_schema_evolution() {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("reg");
    create_topic(&topic, 2).await;
    produce(&topic, 2, &events(0, 500));
    let url = format!("sqlite://{}", w.path().join("catalog.db").display());
    let cfg_text = pipeline_config(w.warehouse().to_str().unwrap(), &topic, &table, &catalog_yaml(&url), "");
    let cfg = w.write_config(&cfg_text);
    ingest_until_caught_up(&cfg);

    let cat = catalog(&url, w.warehouse().to_str().unwrap()).await;
    let t = cat.get_table("e2e", &table).await.expect("the pipeline registered its table");
    let params = t.parameters.clone().unwrap();
    assert_eq!(params["spark.sql.sources.provider"], "delta");
    assert_eq!(params["EXTERNAL"], "TRUE");
    assert_eq!(t.table_type.as_deref(), Some("EXTERNAL_TABLE"));
    let dir = w.warehouse().join("e2e.db").join(&table);
    let location = format!("file:{}", dir.display());
    assert_eq!(t.sd.as_ref().unwrap().location.as_deref(), Some(location.as_str()));
    assert_eq!(t.sd.as_ref().unwrap().serde_info.as_ref().unwrap().parameters.as_ref().unwrap()["path"], location, "Trino's Delta connector reads the path from here");
    for c in ["event_id", "user_id", "amount", "_kafka_partition", "_kafka_offset"] {
        assert!(columns(&t).contains(&c.to_string()), "column {c} registered: {:?}", columns(&t));
    }
    let schema: serde_json::Value = serde_json::from_str(&params["spark.sql.sources.schema"]).unwrap();
    assert_eq!(schema["type"], "struct");
    // No message failed, so there is no dead-letter table to register.
    assert!(cat.get_table("e2e", &format!("{table}_dead_letter")).await.is_err());
    let audit = cat.audit(&inlet_metastore::store::audit::AuditQuery { object: Some(format!("e2e.{table}")), limit: 10, ..Default::default() }).await.unwrap();
    assert!(audit.iter().any(|e| e.via == "ingest" && e.action == "create_table" && e.actor == format!("pipeline:{table}")), "{audit:?}");

    // A new field in the events: the registration follows.
    let more: Vec<Vec<u8>> = (500..600u64).map(|i| format!(r#"{{"event_id":{i},"user_id":1,"event_type":"x","amount":1.5,"ts":"2024-01-01T00:00:00Z","coupon":"c{i}"}}"#).into_bytes()).collect();
    produce(&topic, 2, &more);
    ingest_until_caught_up(&cfg);
    let t = cat.get_table("e2e", &table).await.unwrap();
    assert!(columns(&t).contains(&"coupon".to_string()), "schema evolution reached the catalog: {:?}", columns(&t));

    // PySpark, a Hive client of inlet's metastore, sees a Delta table with
    // its columns (plain Spark cannot DESCRIBE a Delta provider table; SHOW
    // TABLE EXTENDED shows what the catalog holds).
    let config = inlet_config::parse(
        "metastore.yaml",
        &format!("storage:\n  warehouse: {}\n{}metastore:\n  thrift_listen: 127.0.0.1:0\n  http_listen: 127.0.0.1:0\n", w.warehouse().display(), catalog_yaml(&url)),
        &|_| None,
    )
    .unwrap();
    let running = inlet_metastore::server::start(&config).await.expect("metastore starts");
    let python = std::env::var("INLET_TEST_PYSPARK_PYTHON").expect("INLET_TEST_PYSPARK_PYTHON is not set: run the tests through scripts/test.sh");
    let uri = format!("thrift://{}", running.thrift_addr);
    let script = repo_root().join("tests/support/spark_hive.py");
    let out = tokio::task::spawn_blocking(move || std::process::Command::new(python).arg(script).args(["describe-delta", "e2e", &table, "--uri", &uri]).output().unwrap()).await.unwrap();
    running.stop().await;
    assert!(out.status.success(), "spark describe-delta failed: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(out.stdout.split(|b| *b == b'\n').rfind(|l| l.starts_with(b"{")).unwrap()).unwrap();
    assert_eq!(v["provider"].as_str().map(str::to_lowercase).as_deref(), Some("delta"), "{v}");
    let text = v.to_string();
    for c in ["event_id", "amount", "coupon"] {
        assert!(text.contains(c), "Spark shows column {c}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_catalog_never_blocks_ingestion_and_registration_catches_up() {
    let w = Workdir::new();
    let topic = unique("t");
    let table = unique("down");
    create_topic(&topic, 2).await;
    let n = 2_000u64;
    produce(&topic, 2, &events(0, n));
    // Nothing listens on port 1: every catalog call fails at once.
    let down = catalog_yaml("mysql://root@127.0.0.1:1/inlet");
    let cfg = w.write_config(&pipeline_config(w.warehouse().to_str().unwrap(), &topic, &table, &down, ""));
    let started = std::time::Instant::now();
    let out = ingest_until_caught_up(&cfg);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("catalog unreachable"), "the outage is reported: {stderr}");
    let dir = w.warehouse().join("e2e.db").join(&table);
    assert_eq!(python_read(dir.to_str().unwrap(), false).rows, n, "every event landed while the catalog was down");
    eprintln!("bounded run with the catalog down took {:?}", started.elapsed());

    // The catalog comes back: the next run registers the table from the
    // Delta log, with nothing new to consume.
    let url = format!("sqlite://{}", w.path().join("catalog.db").display());
    let cfg = w.write_config(&pipeline_config(w.warehouse().to_str().unwrap(), &topic, &table, &catalog_yaml(&url), ""));
    ingest_until_caught_up(&cfg);
    let cat = catalog(&url, w.warehouse().to_str().unwrap()).await;
    let t = cat.get_table("e2e", &table).await.expect("registration caught up");
    assert!(columns(&t).contains(&"event_id".to_string()));
    assert_eq!(python_read(dir.to_str().unwrap(), false).rows, n);
}
