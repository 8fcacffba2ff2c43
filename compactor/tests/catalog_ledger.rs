//! The compaction ledger over the catalog database: two compactors sharing
//! one database never hold a table's lease together, runs are recorded, and
//! the table's registration carries the statistics of the last run.

use std::time::Duration;

use chrono::Utc;
use inlet_compactor::{CatalogLedger, CompactionRun, Ledger, Outcome, TableStats};
use inlet_metastore::{Actor, Catalog, Store};

async fn catalog(dir: &std::path::Path) -> Catalog {
    let store = Store::connect(&format!("sqlite://{}", dir.join("catalog.db").display())).await.unwrap();
    store.migrate().await.unwrap();
    Catalog::new(store, &format!("file:{}", dir.display()))
}

#[tokio::test]
async fn leases_runs_and_statistics_live_in_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    // Two compactors, two connections to one database.
    let a = CatalogLedger::new(catalog(dir.path()).await);
    let b = CatalogLedger::new(catalog(dir.path()).await);
    let ttl = Duration::from_secs(60);
    assert!(a.try_acquire_lease("table:/w/t", "a", ttl).await.unwrap());
    assert!(!b.try_acquire_lease("table:/w/t", "b", ttl).await.unwrap(), "a held lease is not granted twice");
    assert!(a.try_acquire_lease("table:/w/t", "a", ttl).await.unwrap(), "re-entrant for its holder");
    assert!(a.renew_lease("table:/w/t", "a", ttl).await.unwrap());
    assert!(!b.renew_lease("table:/w/t", "b", ttl).await.unwrap());
    a.release_lease("table:/w/t", "a").await.unwrap();
    assert!(b.try_acquire_lease("table:/w/t", "b", ttl).await.unwrap(), "free after release");
    // An expired lease is taken over, and its old holder learns it lost it.
    assert!(b.try_acquire_lease("table:/w/u", "b", Duration::from_millis(1)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(a.try_acquire_lease("table:/w/u", "a", ttl).await.unwrap());
    assert!(!b.renew_lease("table:/w/u", "b", ttl).await.unwrap());

    // Racing for one free lease: exactly one winner.
    let c = catalog(dir.path()).await;
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let l = CatalogLedger::new(c.clone());
            tokio::spawn(async move { l.try_acquire_lease("table:/w/race", &format!("r{i}"), Duration::from_secs(60)).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for r in racers {
        winners += r.await.unwrap() as usize;
    }
    assert_eq!(winners, 1);

    // A registered table gets the run's statistics; the run is recorded.
    let cat = catalog(dir.path()).await;
    let location = format!("{}/t", dir.path().display());
    let reg = inlet_metastore::register::DeltaRegistration {
        database: "d".into(),
        table: "t".into(),
        location: format!("file:{location}"),
        schema: deltalake::arrow::datatypes::Schema::new(vec![deltalake::arrow::datatypes::Field::new("id", deltalake::arrow::datatypes::DataType::Int64, true)]),
        partition_columns: vec![],
        properties: Default::default(),
    };
    inlet_metastore::register::register_delta(&cat, &Actor::ingest("p"), &reg).await.unwrap();
    a.update_table_stats(&location, TableStats { files: 3, bytes: 3000, rows: Some(42) }).await.unwrap();
    let t = cat.get_table("d", "t").await.unwrap();
    let p = t.parameters.unwrap();
    assert_eq!(p["numFiles"], "3");
    assert_eq!(p["totalSize"], "3000");
    assert_eq!(p["numRows"], "42");
    let now = Utc::now();
    let run = CompactionRun { run_id: "r1".into(), table: location.clone(), started: now, finished: now, files_in: 10, bytes_in: 100, files_out: 3, bytes_out: 90, versions: vec![5], outcome: Outcome::Succeeded, message: None };
    a.record_run(&run).await.unwrap();
    let mut conn = cat.store().reader().await.unwrap();
    let runs = inlet_metastore::store::runs::list(&mut conn, Some("compaction"), Some(&location), 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome, "succeeded");
    assert_eq!(runs[0].detail["files_out"], 3);
}
