//! Two writers racing for the same table version: exactly one wins, on the
//! local filesystem and on S3 (moto, started by scripts/services.sh).

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::arrow::datatypes::{DataType, Field, Schema};
use inlet_config::{S3Config, StorageConfig};
use inlet_table::{CommitError, DeltaTable, Location, TableSpec};

fn spec() -> TableSpec {
    TableSpec {
        name: "race".into(),
        schema: Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)])),
        partition_columns: vec![],
        properties: HashMap::new(),
    }
}

/// Many writers commit progress for the same transaction id, all starting
/// from the same snapshot: exactly one commit may succeed, the others must
/// be fenced, and the table must hold exactly one new version.
async fn race(location: Location) {
    let first = DeltaTable::open_or_create(&location, &spec()).await.expect("create");
    let start = first.version();
    let mut writers = Vec::new();
    for _ in 0..8 {
        writers.push(DeltaTable::open(&location).await.expect("open").expect("exists"));
    }
    let mut tasks = Vec::new();
    for (i, mut w) in writers.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let expected = HashMap::from([("app:p0".to_string(), None)]);
            w.commit(vec![], &[("app:p0".to_string(), i as i64)], &expected, "race").await
        }));
    }
    let mut won = Vec::new();
    let mut fenced = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(v) => won.push((i, v)),
            Err(CommitError::Fenced { .. }) => fenced += 1,
            Err(e) => panic!("writer {i}: unexpected error {e}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one writer must win: {won:?}");
    assert_eq!(fenced, 7);
    let mut check = DeltaTable::open(&location).await.unwrap().unwrap();
    check.refresh().await.unwrap();
    assert_eq!(check.version(), start + 1, "one new version");
    assert_eq!(check.txn_version("app:p0").await.unwrap(), Some(won[0].0 as i64));

    // Writers with different transaction ids do not conflict: all land,
    // each in its own version.
    let mut tasks = Vec::new();
    for i in 0..4 {
        let mut w = DeltaTable::open(&location).await.unwrap().unwrap();
        tasks.push(tokio::spawn(async move {
            let id = format!("app:q{i}");
            let expected = HashMap::from([(id.clone(), None)]);
            w.commit(vec![], &[(id, 1)], &expected, "race").await
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap().expect("independent commits succeed"));
    }
    versions.sort();
    versions.dedup();
    assert_eq!(versions.len(), 4, "each commit got its own version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_filesystem_race_has_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let storage = StorageConfig { warehouse: dir.path().display().to_string(), s3: None, options: Default::default() };
    let loc = Location::parse(&dir.path().join("t").display().to_string(), &storage).unwrap();
    race(loc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_race_has_one_winner() {
    let endpoint = std::env::var("INLET_TEST_S3_ENDPOINT").expect("INLET_TEST_S3_ENDPOINT is not set: run `eval \"$(scripts/services.sh start)\"` or scripts/test.sh");
    let bucket = format!("race-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let script = "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='testing', aws_secret_access_key='testing', region_name='us-east-1').create_bucket(Bucket=sys.argv[2])";
    let out = std::process::Command::new("python3").args(["-c", script, &endpoint, &bucket]).output().unwrap();
    assert!(out.status.success(), "create bucket: {}", String::from_utf8_lossy(&out.stderr));
    let storage = StorageConfig {
        warehouse: format!("s3://{bucket}/wh"),
        s3: Some(S3Config { endpoint: Some(endpoint), access_key_id: Some("testing".into()), secret_access_key: Some("testing".into()), ..Default::default() }),
        options: Default::default(),
    };
    let loc = Location::parse(&format!("s3://{bucket}/wh/t"), &storage).unwrap();
    race(loc).await;
}
