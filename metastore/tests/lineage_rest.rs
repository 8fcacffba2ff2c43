//! The lineage routes of the REST API over TCP: an OpenLineage event posted
//! to `/api/v1/lineage` (as any OpenLineage client posts to Marquez) lands in
//! the store and the query routes answer from it, through the same client
//! `inlet lineage --url` uses; writes need a token when tokens are
//! configured; a body that is not a run event is refused.

use chrono::{TimeZone, Utc};
use inlet_lineage::client::RestClient;
use inlet_lineage::events::{BatchOutcome, BatchRun, CommitReport, StreamingJob, StreamingRun};
use inlet_lineage::facets::{EventTimeSource, PartitionOffset};
use inlet_lineage::naming;
use inlet_lineage::query::{Direction, LineageQuery, NodeRef, QueryError};

const TOKEN: &str = "lineage-test-token-0123456789";

async fn start(dir: &std::path::Path) -> inlet_metastore::server::Running {
    let yaml = format!(
        "storage:\n  warehouse: {wh}\ncatalog:\n  database_url: \"sqlite://{db}\"\nmetastore:\n  thrift_listen: 127.0.0.1:0\n  http_listen: 127.0.0.1:0\n  tokens:\n    - {{identity: producer, token: {TOKEN}}}\n",
        wh = dir.join("wh").display(),
        db = dir.join("m.db").display()
    );
    let config = inlet_config::parse("t.yaml", &yaml, &|_| None).unwrap();
    inlet_metastore::server::start(&config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_events_are_recorded_and_queried_over_rest() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path()).await;
    let base = format!("http://{}", running.http_addr);
    let http = reqwest::Client::new();
    let t = |s: i64| Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap();
    let job = StreamingJob {
        namespace: "inlet".into(),
        name: "ingest.clicks".into(),
        bootstrap_servers: "k:9092".into(),
        consumer_group: "g".into(),
        topics: vec![naming::kafka("k:9092", "clicks")],
        table: naming::storage("s3://lake/wh/web.db/clicks"),
        table_symlink: Some(naming::hive("thrift://ms:9083", "web", "clicks")),
        dead_letter: None,
        event_time_source: EventTimeSource::KafkaTimestamp,
        column_lineage: vec![],
    };
    let mut run = StreamingRun::new(job);
    let commit = CommitReport {
        version: 7,
        committed_at: t(10),
        rows: 5,
        bytes: 50,
        files: 1,
        dead_letters: 0,
        offsets: vec![PartitionOffset { topic: "clicks".into(), partition: 0, offset: 4 }],
        oldest_event: Some(t(1)),
        newest_event: Some(t(9)),
        oldest_kafka: Some(t(2)),
        newest_kafka: Some(t(9)),
        schema: None,
    };
    let compaction = BatchRun::new("inlet", "compaction.web.clicks", "COMPACTION", naming::storage("s3://lake/wh/web.db/clicks"), Some(naming::hive("thrift://ms:9083", "web", "clicks")));
    let events = vec![run.start(t(0), None, None), run.running(commit), run.complete(t(20)), compaction.complete(t(30), &BatchOutcome { version_read: Some(7), version_written: Some(8), files_out: 1, bytes_out: 10, rows_out: None }, None)];

    // Without the token: refused, nothing recorded.
    let r = http.post(format!("{base}/api/v1/lineage")).json(&events[0]).send().await.unwrap();
    assert_eq!(r.status(), 401);
    for e in &events {
        let r = http.post(format!("{base}/api/v1/lineage")).bearer_auth(TOKEN).json(e).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let r = http.post(format!("{base}/api/v1/lineage")).bearer_auth(TOKEN).body("{\"eventType\": \"START\"}").send().await.unwrap();
    assert_eq!(r.status(), 400);

    let client = RestClient::new(&base).unwrap();
    let up = client.graph(&NodeRef::Table { table: "web.clicks".into() }, Direction::Upstream, 3).await.unwrap();
    assert_eq!(up.start, "dataset:s3://lake:wh/web.db/clicks");
    assert!(up.nodes.iter().any(|n| n.id == "dataset:kafka://k:9092:clicks"));
    let sources = client.sources(&NodeRef::Table { table: "web.clicks".into() }, 10).await.unwrap();
    assert_eq!(sources.paths.len(), 1);
    assert_eq!(sources.maintained_by, vec!["job:inlet:compaction.web.clicks".to_string()]);
    let runs = client.runs(&NodeRef::Job { namespace: "inlet".into(), name: "ingest.clicks".into() }, 5).await.unwrap();
    assert_eq!((runs[0].state.as_str(), runs[0].outputs[0].version), ("COMPLETE", 7));
    let lat = client.latency(&NodeRef::Table { table: "web.clicks".into() }, 10).await.unwrap();
    assert_eq!(lat.commits, 1);
    assert_eq!(lat.stages.iter().find(|s| s.stage == "kafka_to_commit").unwrap().max_seconds, Some(8.0));
    assert!(matches!(client.graph(&NodeRef::Table { table: "web.nothing".into() }, Direction::Upstream, 3).await, Err(QueryError::NotFound(_))));
    let bad = http.get(format!("{base}/api/v1/lineage/upstream?table=a.b&job=x")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    running.stop().await;
}
