//! The Hive sink against a real SQLite catalog and a local warehouse: the
//! commit protocol's fence, partition commit, and late events refused
//! under `late_events: dead_letter`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use deltalake::arrow::array::{Int64Array, StringArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use deltalake::arrow::record_batch::RecordBatch;
use inlet_config::{CatalogConfig, DerivedPartition, EventTimeConfig, LateEvents, MissingEventTime, PartitionCommitConfig, StorageConfig, TimeEncoding};
use inlet_ingest::sink::hive::{HiveSink, HiveTarget};
use inlet_ingest::sink::{SinkError, TableSink};
use inlet_table::Location;

fn batch(ids: std::ops::Range<i64>, dt: &str) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("dt", DataType::Utf8, true)]));
    let n = ids.end - ids.start;
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(ids)), Arc::new(StringArray::from(vec![dt; n as usize]))]).unwrap()
}

fn micros(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_micros()
}

async fn sink(dir: &std::path::Path, late: LateEvents) -> HiveSink {
    let storage = StorageConfig { warehouse: dir.join("wh").display().to_string(), s3: None, options: Default::default() };
    let location = Location::parse(&dir.join("wh/db.db/t").display().to_string(), &storage).unwrap();
    sink_at(dir, location, late).await
}

async fn sink_at(dir: &std::path::Path, location: Location, late: LateEvents) -> HiveSink {
    let et = EventTimeConfig {
        field: "ts".into(),
        encoding: TimeEncoding::Auto,
        time_zone: "UTC".into(),
        partitions: vec![DerivedPartition { column: "dt".into(), format: "%Y-%m-%d".into() }],
        on_missing: MissingEventTime::DeadLetter,
    };
    HiveSink::open(HiveTarget {
        database: "db".into(),
        table: "t".into(),
        location,
        catalog: CatalogConfig { database_url: format!("sqlite://{}/catalog.db", dir.display()), migrate_on_start: true },
        warehouse: format!("file:{}", dir.join("wh").display()),
        properties: Default::default(),
        target_file_size_bytes: 1 << 20,
        staging_retention: Duration::from_secs(3600),
        pipeline: "p".into(),
        partition_commit: Some((PartitionCommitConfig { delay_secs: 0, late_events: late }, et)),
    })
    .await
    .unwrap()
}

fn expect(pairs: &[(&str, Option<i64>)]) -> HashMap<String, Option<i64>> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_fenced_partitions_close_once_and_late_rows_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sink(dir.path(), LateEvents::DeadLetter).await;
    assert!(s.schema().is_none());
    s.create(batch(0..0, "").schema(), vec!["dt".into()]).await.unwrap();
    assert_eq!(s.progress(&["a".into()]).await.unwrap()["a"], None);

    let day1 = batch(0..5, "2024-01-01");
    let day2 = batch(5..10, "2024-01-02");
    let both = deltalake::arrow::compute::concat_batches(&day1.schema(), [&day1, &day2]).unwrap();
    let c = s.write(Some(both.clone()), &[("a".into(), 9)], &expect(&[("a", None)])).await.unwrap();
    assert_eq!((c.version, c.files, c.rows), (1, 2, 10));
    let table = dir.path().join("wh/db.db/t");
    assert!(table.join("dt=2024-01-01").read_dir().unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".parquet")));
    assert!(!table.join(".inlet-staging").exists() || table.join(".inlet-staging").read_dir().unwrap().next().is_none(), "published commits leave no staging");

    // A writer with stale progress is refused and leaves nothing visible.
    match s.write(Some(day1.clone()), &[("a".into(), 4)], &expect(&[("a", None)])).await {
        Err(SinkError::Fenced(_)) => {}
        other => panic!("not fenced: {:?}", other.map(|c| c.version)),
    }
    assert_eq!(s.progress(&["a".into()]).await.unwrap()["a"], Some(9));

    // Event time reached the end of 2024-01-01 (delay 0): it closes, once.
    let closed = s.close_partitions(micros("2024-01-02T00:00:00Z")).await.unwrap();
    assert_eq!(closed.iter().map(|c| (c.name.as_str(), c.rows, c.recommit)).collect::<Vec<_>>(), [("dt=2024-01-01", 5, false)]);
    assert!(table.join("dt=2024-01-01/_SUCCESS").exists());
    assert!(!table.join("dt=2024-01-02/_SUCCESS").exists());
    assert!(s.close_partitions(micros("2024-01-02T00:00:00Z")).await.unwrap().is_empty(), "closing is not repeated");

    // Late rows for the closed day are refused with the reason; others pass.
    let late = s.late_rows(&both);
    assert_eq!(late.iter().map(|(r, _)| *r).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    assert!(late[0].1.contains("dt=2024-01-01") && late[0].1.contains("closed"), "{}", late[0].1);

    // Under `write`, a late row is written and the partition closed again.
    let mut w = sink(dir.path(), LateEvents::Write).await;
    w.progress(&["a".into()]).await.unwrap();
    assert!(w.late_rows(&both).is_empty());
    w.write(Some(batch(10..11, "2024-01-01")), &[("a".into(), 10)], &expect(&[("a", Some(9))])).await.unwrap();
    let again = w.close_partitions(micros("2024-01-02T00:00:00Z")).await.unwrap();
    assert_eq!(again.iter().map(|c| (c.name.as_str(), c.rows, c.recommit)).collect::<Vec<_>>(), [("dt=2024-01-01", 6, true)]);
}

/// The same protocol on an S3 server, where a rename is a copy and a delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_by_copy_on_s3() {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let endpoint = std::env::var("INLET_TEST_S3_ENDPOINT").expect("INLET_TEST_S3_ENDPOINT is not set: run the tests through scripts/test.sh");
    let bucket = format!("hive-{}", uuid::Uuid::new_v4().simple());
    let script = "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='testing', aws_secret_access_key='testing', region_name='us-east-1').create_bucket(Bucket=sys.argv[2])";
    let python = std::env::var("INLET_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python).args(["-c", script, &endpoint, &bucket]).output().unwrap();
    assert!(out.status.success(), "create bucket: {}", String::from_utf8_lossy(&out.stderr));
    let storage = StorageConfig {
        warehouse: format!("s3://{bucket}/wh"),
        s3: Some(inlet_config::S3Config { endpoint: Some(endpoint), access_key_id: Some("testing".into()), secret_access_key: Some("testing".into()), path_style: true, ..Default::default() }),
        options: Default::default(),
    };
    let location = Location::parse(&format!("s3://{bucket}/wh/db.db/t"), &storage).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut s = sink_at(dir.path(), location.clone(), LateEvents::Write).await;
    s.create(batch(0..0, "").schema(), vec!["dt".into()]).await.unwrap();
    s.progress(&["a".into()]).await.unwrap();
    let day1 = batch(0..5, "2024-01-01");
    let day2 = batch(5..10, "2024-01-02");
    let both = deltalake::arrow::compute::concat_batches(&day1.schema(), [&day1, &day2]).unwrap();
    s.write(Some(both), &[("a".into(), 9)], &expect(&[("a", None)])).await.unwrap();
    assert_eq!(s.close_partitions(micros("2024-01-02T00:00:00Z")).await.unwrap().len(), 1);

    let store = location.object_store().unwrap();
    let keys: Vec<String> = store.list(None).map_ok(|m| m.location.to_string()).try_collect().await.unwrap();
    assert!(keys.iter().all(|k| !k.starts_with(".inlet-staging")), "staged objects left after publishing: {keys:?}");
    assert_eq!(keys.iter().filter(|k| k.ends_with(".parquet")).count(), 2, "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with("dt=2024-01-01/part-")), "{keys:?}");
    assert!(keys.contains(&"dt=2024-01-01/_SUCCESS".to_string()), "{keys:?}");
    assert!(store.head(&"dt=2024-01-02/_SUCCESS".into()).await.is_err());
}
