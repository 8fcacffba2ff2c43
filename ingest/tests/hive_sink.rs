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
        engine_location: format!("file:{}", location.display),
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
