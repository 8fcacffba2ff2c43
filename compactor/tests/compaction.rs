//! Component tests of compaction on real local Delta tables: rows kept
//! exactly, convergence, dry runs, corrupt files, active partitions, racing
//! compactors and appenders, commits in parts, vacuum safety.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deltalake::arrow::array::{AsArray, Int64Array, RecordBatch, StringArray};
use deltalake::arrow::datatypes::{DataType, Field, Int64Type, Schema};
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::writer::DeltaWriter;
use inlet_compactor::{Compaction, CompactError, InProcessLedger, Ledger, MemoryBudget, Outcome, Policy};
use inlet_config::StorageConfig;
use inlet_table::{DeltaTable, Location, TableSpec};

fn location(dir: &Path) -> Location {
    Location::parse(dir.to_str().unwrap(), &StorageConfig { warehouse: "/tmp".into(), s3: None, options: Default::default() }).unwrap()
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("payload", DataType::Utf8, true),
        Field::new("dt", DataType::Utf8, true),
    ]))
}

async fn create(dir: &Path) -> DeltaTable {
    let spec = TableSpec { name: "t".into(), schema: schema(), partition_columns: vec!["dt".into()], properties: HashMap::new() };
    DeltaTable::open_or_create(&location(dir), &spec).await.unwrap()
}

/// Appends one file per partition with `rows` rows each, ids from `start`.
async fn append(table: &mut DeltaTable, partitions: &[&str], start: i64, rows: i64) -> i64 {
    let mut id = start;
    let mut adds = Vec::new();
    for p in partitions {
        let ids: Vec<i64> = (id..id + rows).collect();
        id += rows;
        let payload: Vec<String> = ids.iter().map(|i| format!("payload-{i}-{}", "x".repeat((*i % 7) as usize))).collect();
        let batch = RecordBatch::try_new(
            schema(),
            vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(payload)), Arc::new(StringArray::from(vec![*p; rows as usize]))],
        )
        .unwrap();
        let mut w = table.writer(1 << 30).unwrap();
        w.write(batch).await.unwrap();
        adds.extend(w.flush().await.unwrap());
    }
    table.commit(adds, &[], &HashMap::new(), "test").await.unwrap();
    id
}

/// A table of `files` commits, each adding one small file per partition.
async fn small_table(dir: &Path, partitions: &[&str], files: usize) -> i64 {
    let mut t = create(dir).await;
    let mut id = 0;
    for _ in 0..files {
        id = append(&mut t, partitions, id, 50).await;
    }
    id
}

fn policy(dir: &Path) -> Policy {
    let mut p = Policy::for_location(location(dir));
    p.active_window = None;
    p.min_files_per_bin = 2;
    p
}

async fn open(dir: &Path) -> deltalake::DeltaTable {
    deltalake::open_table(url::Url::from_directory_path(dir).unwrap()).await.unwrap()
}

fn file_paths(t: &deltalake::DeltaTable) -> Vec<PathBuf> {
    t.get_file_uris().unwrap().map(|u| url::Url::parse(&u).ok().and_then(|u| u.to_file_path().ok()).unwrap_or_else(|| PathBuf::from(&u))).collect()
}

/// Every id in the table, sorted, with multiplicity.
async fn ids(dir: &Path) -> Vec<i64> {
    let t = open(dir).await;
    let mut out = Vec::new();
    for p in file_paths(&t) {
        for rb in ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&p).unwrap()).unwrap().build().unwrap() {
            out.extend(rb.unwrap().column_by_name("id").unwrap().as_primitive::<Int64Type>().values().iter().copied());
        }
    }
    out.sort();
    out
}

/// Asserts the table holds ids 0..n exactly once each (short message on failure).
async fn assert_ids(dir: &Path, n: i64) {
    let got = ids(dir).await;
    let dups = got.windows(2).filter(|w| w[0] == w[1]).count();
    let distinct = got.len() - dups;
    assert_eq!((got.len(), dups, distinct), (n as usize, 0, n as usize), "(rows, duplicated, distinct) for ids 0..{n}");
}

fn files_in(t: &deltalake::DeltaTable, partition: &str) -> usize {
    file_paths(t).iter().filter(|p| p.to_string_lossy().contains(&format!("dt={partition}/"))).count()
}

fn run(p: Policy, ledger: Arc<dyn Ledger>) -> Compaction {
    Compaction::new(p, ledger, MemoryBudget::new(64 * 1024 * 1024))
}

fn commit_json(dir: &Path, version: i64) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join(format!("_delta_log/{version:020}.json"))).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacts_small_files_keeps_every_row_and_records_the_run() {
    let d = tempfile::tempdir().unwrap();
    let n = small_table(d.path(), &["2026-01-01", "2026-01-02", "2026-01-03"], 8).await;
    let before = ids(d.path()).await;
    assert_ids(d.path(), n).await;
    let ledger = Arc::new(InProcessLedger::new());
    let report = run(policy(d.path()), ledger.clone()).await.unwrap();
    assert_eq!(report.run.outcome, Outcome::Succeeded);
    assert_eq!((report.run.files_in, report.run.files_out), (24, 3));
    assert_eq!(ids(d.path()).await, before, "rows as a multiset are unchanged");
    let t = open(d.path()).await;
    for p in ["2026-01-01", "2026-01-02", "2026-01-03"] {
        assert_eq!(files_in(&t, p), 1, "partition {p}");
    }
    // remove + add with dataChange=false, OPTIMIZE with metrics, and a fence txn.
    let v = report.run.versions[0];
    let actions = commit_json(d.path(), v);
    let mut adds = 0;
    let mut removes = 0;
    for a in &actions {
        if let Some(add) = a.get("add") {
            assert_eq!(add["dataChange"], false);
            assert!(add["stats"].as_str().unwrap().contains("\"numRecords\":400"), "{add}");
            adds += 1;
        }
        if let Some(rm) = a.get("remove") {
            assert_eq!(rm["dataChange"], false);
            removes += 1;
        }
        if let Some(ci) = a.get("commitInfo") {
            assert_eq!(ci["operation"], "OPTIMIZE");
            assert_eq!(ci["operationMetrics"]["numRemovedFiles"], 24);
            assert_eq!(ci["operationMetrics"]["numAddedFiles"], 3);
        }
    }
    assert_eq!((adds, removes), (3, 24));
    assert!(actions.iter().any(|a| a.get("txn").is_some_and(|t| t["appId"].as_str().unwrap().starts_with("inlet-compactor:"))));
    // Recorded, and the table's statistics updated.
    let runs = ledger.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].bytes_in, report.run.bytes_in);
    let stats = ledger.table_stats(&location(d.path()).display).unwrap();
    assert_eq!((stats.files, stats.rows), (3, Some(n as u64)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_files_use_the_policy_codec_and_keep_large_inputs_whole() {
    let d = tempfile::tempdir().unwrap();
    let mut t = create(d.path()).await;
    let mut id = append(&mut t, &["a"], 0, 50).await;
    // Decoded in several batches, which reach the writer in order.
    id = append(&mut t, &["a"], id, 70_000).await;
    for _ in 0..3 {
        id = append(&mut t, &["a"], id, 50).await;
    }
    let mut p = policy(d.path());
    p.compression = Compression::ZSTD(ZstdLevel::try_new(3).unwrap());
    let report = run(p, Arc::new(InProcessLedger::new())).await.unwrap();
    assert_eq!(report.run.outcome, Outcome::Succeeded, "{:?}", report.run.message);
    assert_eq!((report.run.files_in, report.run.files_out), (5, 1));
    assert_ids(d.path(), id).await;
    let files = file_paths(&open(d.path()).await);
    assert_eq!(files.len(), 1);
    assert!(files[0].to_string_lossy().ends_with(".zstd.parquet"), "{files:?}");
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&files[0]).unwrap()).unwrap();
    let ids_in_file_order: Vec<i64> = reader.build().unwrap().flat_map(|b| b.unwrap().column_by_name("id").unwrap().as_primitive::<Int64Type>().values().to_vec()).collect();
    // Each input is one ascending run of ids: at most 4 descents between 5 inputs.
    assert!(ids_in_file_order.windows(2).filter(|w| w[0] > w[1]).count() <= 4, "an input's batches were split up or reordered");
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&files[0]).unwrap()).unwrap();
    for rg in reader.metadata().row_groups() {
        for c in rg.columns() {
            // The level is not stored in the file; the codec is.
            assert!(matches!(c.compression(), Compression::ZSTD(_)), "{}: {:?}", c.column_path(), c.compression());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_over_a_compacted_table_does_nothing() {
    let d = tempfile::tempdir().unwrap();
    small_table(d.path(), &["a", "b"], 6).await;
    let ledger: Arc<dyn Ledger> = Arc::new(InProcessLedger::new());
    let first = run(policy(d.path()), ledger.clone()).await.unwrap();
    assert_eq!(first.run.files_out, 2);
    let version = open(d.path()).await.version();
    let second = run(policy(d.path()), ledger).await.unwrap();
    assert_eq!(second.run.files_in, 0);
    assert!(second.run.versions.is_empty());
    assert_eq!(open(d.path()).await.version(), version, "no commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_the_plan_and_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    small_table(d.path(), &["a", "b"], 5).await;
    let version = open(d.path()).await.version();
    let report = run(policy(d.path()), Arc::new(InProcessLedger::new())).with_dry_run(true).await.unwrap();
    let plan = report.plan.unwrap();
    assert_eq!((plan.bins.len(), plan.files_in(), plan.files_out()), (2, 10, 2));
    let text = plan.describe();
    assert!(text.contains("2 bin(s), 10 input file(s)") && text.contains("bin 0: dt=a: 5 files"), "{text}");
    assert_eq!(open(d.path()).await.version(), version);
    assert_eq!(std::fs::read_dir(d.path().join("dt=a")).unwrap().count(), 5, "no file written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_file_fails_its_bin_only_and_names_the_file() {
    let d = tempfile::tempdir().unwrap();
    let n = small_table(d.path(), &["a", "b", "c"], 4).await;
    let t = open(d.path()).await;
    let victim = file_paths(&t).into_iter().find(|p| p.to_string_lossy().contains("dt=b/")).unwrap();
    let len = std::fs::metadata(&victim).unwrap().len() as usize;
    std::fs::write(&victim, vec![0x5a; len]).unwrap();
    let report = run(policy(d.path()), Arc::new(InProcessLedger::new())).await.unwrap();
    assert_eq!(report.run.outcome, Outcome::Partial);
    assert_eq!(report.failures.len(), 1);
    let f = &report.failures[0];
    assert_eq!(f.partition, "dt=b");
    let name = victim.file_name().unwrap().to_string_lossy().to_string();
    assert!(f.file.as_deref().is_some_and(|p| p.ends_with(&name)), "{f}");
    assert!(report.run.message.as_deref().unwrap().contains(&name));
    let t = open(d.path()).await;
    assert_eq!((files_in(&t, "a"), files_in(&t, "b"), files_in(&t, "c")), (1, 4, 1), "nothing of the failed bin is removed");
    assert_eq!(std::fs::read_dir(d.path().join("dt=b")).unwrap().count(), 4, "no output left behind");
    // Rows of the healthy partitions are intact (b's corrupt file aside).
    std::fs::remove_file(&victim).unwrap();
    let _ = n;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_the_stream_just_wrote_are_skipped() {
    let d = tempfile::tempdir().unwrap();
    small_table(d.path(), &["old", "hot"], 4).await;
    let mut p = policy(d.path());
    p.active_window = Some(std::time::Duration::from_secs(600));
    let plan = run(p.clone(), Arc::new(InProcessLedger::new())).plan().await.unwrap();
    assert!(plan.bins.is_empty(), "everything was written just now");
    assert_eq!(plan.skipped.len(), 2);
    // Only commits within the window count.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let mut t = DeltaTable::open(&location(d.path())).await.unwrap().unwrap();
    append(&mut t, &["hot"], 10_000, 10).await;
    p.active_window = Some(std::time::Duration::from_secs(1));
    let report = run(p, Arc::new(InProcessLedger::new())).await.unwrap();
    let parts: Vec<String> = report.plan.unwrap().bins.iter().map(|b| b.partition.to_string()).collect();
    assert_eq!(parts, ["dt=old"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_filter_limits_the_run() {
    let d = tempfile::tempdir().unwrap();
    small_table(d.path(), &["a", "b"], 3).await;
    let report = run(policy(d.path()), Arc::new(InProcessLedger::new())).with_partitions(vec![("dt".into(), "b".into())]).await.unwrap();
    assert_eq!(report.run.files_in, 3);
    let t = open(d.path()).await;
    assert_eq!((files_in(&t, "a"), files_in(&t, "b")), (3, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_compactors_never_rewrite_the_same_files_twice() {
    // Separate ledgers (two processes without a catalog): only the Delta log fences.
    let d = tempfile::tempdir().unwrap();
    let n = small_table(d.path(), &["a", "b", "c", "d"], 6).await;
    let a = run(policy(d.path()), Arc::new(InProcessLedger::new()));
    let b = run(policy(d.path()), Arc::new(InProcessLedger::new()));
    let (ra, rb) = tokio::join!(tokio::spawn(a.into_future()), tokio::spawn(b.into_future()));
    let (ra, rb) = (ra.unwrap().unwrap(), rb.unwrap().unwrap());
    assert_ids(d.path(), n).await;
    assert_eq!(ra.run.files_in + rb.run.files_in, 24, "each input file rewritten exactly once");
    let t = open(d.path()).await;
    assert_eq!(file_paths(&t).len(), 4);

    // A shared ledger: the second one is turned away by the lease.
    let d = tempfile::tempdir().unwrap();
    small_table(d.path(), &["a"], 3).await;
    let ledger = Arc::new(InProcessLedger::new());
    assert!(ledger.try_acquire_lease(&policy(d.path()).lease_name(), "someone-else", std::time::Duration::from_secs(60)).await.unwrap());
    let r = run(policy(d.path()), ledger.clone()).await.unwrap();
    assert_eq!(r.run.outcome, Outcome::Skipped);
    assert_eq!(ledger.runs()[0].outcome, Outcome::Skipped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appenders_and_compaction_never_fail_each_other() {
    let d = tempfile::tempdir().unwrap();
    let start = small_table(d.path(), &["a", "b"], 4).await;
    let dir = d.path().to_path_buf();
    let appender = tokio::spawn(async move {
        let mut t = DeltaTable::open(&location(&dir)).await.unwrap().unwrap();
        let mut id = start;
        let mut expected = HashMap::new();
        for i in 0..30i64 {
            // Exactly-once style commits with txns, as ingest makes them.
            let before = id;
            let batch_end = append_with_txn(&mut t, &["a", "b"], id, 20, i, &mut expected).await;
            assert!(batch_end > before);
            id = batch_end;
        }
        id
    });
    let mut compacted = 0;
    while !appender.is_finished() {
        let r = run(policy(d.path()), Arc::new(InProcessLedger::new())).await.unwrap();
        assert_ne!(r.run.outcome, Outcome::Failed, "{:?}", r.run.message);
        compacted += r.run.files_in;
    }
    let end = appender.await.unwrap();
    run(policy(d.path()), Arc::new(InProcessLedger::new())).await.unwrap();
    assert!(compacted > 0, "compaction ran while appends went on");
    assert_ids(d.path(), end).await;
}

async fn append_with_txn(t: &mut DeltaTable, partitions: &[&str], start: i64, rows: i64, seq: i64, expected: &mut HashMap<String, Option<i64>>) -> i64 {
    let mut id = start;
    let mut adds = Vec::new();
    for p in partitions {
        let ids: Vec<i64> = (id..id + rows).collect();
        id += rows;
        let batch = RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(vec![Some("p"); rows as usize])), Arc::new(StringArray::from(vec![*p; rows as usize]))]).unwrap();
        let mut w = t.writer(1 << 30).unwrap();
        w.write(batch).await.unwrap();
        adds.extend(w.flush().await.unwrap());
    }
    let app = "inlet:test:topic:0".to_string();
    let exp: HashMap<String, Option<i64>> = [(app.clone(), expected.get(&app).copied().flatten())].into_iter().collect();
    t.commit(adds, &[(app.clone(), seq)], &exp, "test").await.expect("an append must never fail because of compaction");
    expected.insert(app, Some(seq));
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_runs_commit_in_parts() {
    let d = tempfile::tempdir().unwrap();
    let n = small_table(d.path(), &["a", "b", "c"], 4).await;
    let mut p = policy(d.path());
    p.max_bytes_per_commit = 1;
    p.max_concurrent_rewrites = 1;
    let r = run(p, Arc::new(InProcessLedger::new())).await.unwrap();
    assert_eq!(r.run.versions.len(), 3, "one commit per bin");
    assert_ids(d.path(), n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_by_orders_rows_within_the_new_file_and_new_columns_are_filled() {
    let d = tempfile::tempdir().unwrap();
    let mut t = create(d.path()).await;
    // Ids descending across files.
    for i in (0..4).rev() {
        append(&mut t, &["a"], i * 100, 50).await;
    }
    let mut p = policy(d.path());
    p.sort_by = vec!["id".into()];
    run(p, Arc::new(InProcessLedger::new())).await.unwrap();
    let tt = open(d.path()).await;
    let files = file_paths(&tt);
    assert_eq!(files.len(), 1);
    let mut got = Vec::new();
    for rb in ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&files[0]).unwrap()).unwrap().build().unwrap() {
        got.extend(rb.unwrap().column_by_name("id").unwrap().as_primitive::<Int64Type>().values().iter().copied());
    }
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_time_window_starts_no_bin_and_says_so() {
    let d = tempfile::tempdir().unwrap();
    let n = small_table(d.path(), &["a", "b", "c"], 3).await;
    let closed = std::time::Instant::now() - std::time::Duration::from_secs(1);
    let r = run(policy(d.path()), Arc::new(InProcessLedger::new())).with_deadline(Some(closed)).await.unwrap();
    assert_eq!((r.run.files_in, r.run.versions.len()), (0, 0), "nothing rewritten after the window closed");
    assert_eq!(r.run.outcome, Outcome::Succeeded);
    let message = r.run.message.clone().unwrap_or_default();
    assert!(message.contains("stopped early (the time window closed): 3 of 3 bins left for the next run"), "{message}");
    // The next run (inside a window) does the work.
    let r = run(policy(d.path()), Arc::new(InProcessLedger::new())).await.unwrap();
    assert_eq!(r.run.files_in, 9);
    assert_ids(d.path(), n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_or_partition_sort_column_is_refused_before_any_work() {
    let d = tempfile::tempdir().unwrap();
    small_table(d.path(), &["a"], 3).await;
    for (column, says) in [("idd", "sort_by column `idd` is not a column of the table (columns: id, payload)"), ("dt", "sort_by column `dt` is a partition column")] {
        let mut p = policy(d.path());
        p.sort_by = vec![column.into()];
        let err = run(p.clone(), Arc::new(InProcessLedger::new())).await.unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
        let err = run(p, Arc::new(InProcessLedger::new())).with_dry_run(true).await.unwrap_err();
        assert!(err.to_string().contains(says), "dry run: {err}");
    }
    assert_eq!(std::fs::read_dir(d.path().join("dt=a")).unwrap().count(), 3, "nothing rewritten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_keeps_files_within_retention_and_refuses_unsafe_retention() {
    let d = tempfile::tempdir().unwrap();
    let n = small_table(d.path(), &["a"], 4).await;
    let mut p = policy(d.path());
    p.vacuum.retention_hours = 1;
    let err = run(p, Arc::new(InProcessLedger::new())).with_vacuum(true).await.unwrap_err();
    assert!(matches!(err, CompactError::UnsafeRetention { hours: 1, minimum: 168 }), "{err}");
    // Refused before anything was done.
    assert_eq!(std::fs::read_dir(d.path().join("dt=a")).unwrap().count(), 4);
    let r = run(policy(d.path()), Arc::new(InProcessLedger::new())).await.unwrap();
    assert_eq!(r.run.files_in, 4);
    let mut t = open(d.path()).await;
    // Forced, 1 hour: the files removed a moment ago are within retention.
    let r = inlet_compactor::vacuum::vacuum(&mut t, 1, true, false).await.unwrap();
    assert!(r.files_deleted.is_empty(), "{:?}", r.files_deleted);
    // Forced to zero: they are out of retention and go; the table still reads.
    let r = inlet_compactor::vacuum::vacuum(&mut t, 0, true, false).await.unwrap();
    assert_eq!(r.files_deleted.len(), 4);
    assert_ids(d.path(), n).await;
}
