//! Every kind of event this crate builds, validated against the vendored
//! OpenLineage schemas (`lineage/spec/`): the event against
//! `OpenLineage.json#/$defs/RunEvent`, and each facet against the schema its
//! `_schemaURL` names, which must be one of the vendored files: no facet
//! escapes validation, and no network is needed.

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use jsonschema::{Registry, Resource};
use serde_json::{json, Value};

use crate::events::*;
use crate::facets::{self, EventTimeSource, PartitionOffset, SchemaField};
use crate::model::RunEvent;
use crate::naming;

fn spec_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spec")
}

/// (`$id`, schema) of every vendored schema.
fn vendored() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut files = vec![spec_dir().join("OpenLineage.json")];
    for e in std::fs::read_dir(spec_dir().join("facets")).unwrap() {
        files.push(e.unwrap().path());
    }
    for f in files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let id = v["$id"].as_str().unwrap_or_else(|| panic!("{} has no $id", f.display())).to_string();
        out.push((id, v));
    }
    out
}

struct Validators {
    registry: Registry<'static>,
    ids: Vec<String>,
}

impl Validators {
    fn new() -> Self {
        let schemas = vendored();
        let ids = schemas.iter().map(|(id, _)| id.clone()).collect();
        let mut builder = Registry::new();
        for (id, v) in schemas {
            builder = builder.add(id, Resource::from_contents(v)).unwrap();
        }
        Validators { registry: builder.prepare().expect("vendored schemas index"), ids }
    }

    fn errors(&self, url: &str, instance: &Value, what: &str) -> Vec<String> {
        let base = url.split('#').next().unwrap();
        assert!(self.ids.iter().any(|i| i == base), "{what}: `_schemaURL` {url} is not a vendored schema: vendor it under lineage/spec/facets/");
        let validator = jsonschema::options().should_validate_formats(true).with_registry(&self.registry).build(&json!({ "$ref": url })).unwrap_or_else(|e| panic!("{what}: schema {url}: {e}"));
        validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect()
    }

    fn check(&self, url: &str, instance: &Value, what: &str) {
        let errors = self.errors(url, instance, what);
        assert!(errors.is_empty(), "{what} does not validate against {url}:\n{}\n{}", errors.join("\n"), serde_json::to_string_pretty(instance).unwrap());
    }

    /// The event, then each of its facets against its own schema.
    fn event(&self, e: &RunEvent) -> usize {
        let v = serde_json::to_value(e).unwrap();
        let what = format!("{} event of {}", e.event_type.as_str(), e.job.name);
        self.check(crate::model::SCHEMA_URL, &v, &what);
        let mut checked = 0;
        let mut facet_maps: Vec<(String, &Value)> = vec![("run".into(), &v["run"]["facets"]), ("job".into(), &v["job"]["facets"])];
        for (i, d) in v["inputs"].as_array().unwrap().iter().enumerate() {
            facet_maps.push((format!("inputs[{i}]"), &d["facets"]));
            facet_maps.push((format!("inputs[{i}].inputFacets"), &d["inputFacets"]));
        }
        for (i, d) in v["outputs"].as_array().unwrap().iter().enumerate() {
            facet_maps.push((format!("outputs[{i}]"), &d["facets"]));
            facet_maps.push((format!("outputs[{i}].outputFacets"), &d["outputFacets"]));
        }
        for (at, map) in facet_maps {
            let Some(map) = map.as_object() else { continue };
            for (key, facet) in map {
                let url = facets::schema_url_of(facet).unwrap_or_else(|| panic!("{what}: facet {at}.{key} has no _schemaURL"));
                assert_eq!(facet["_producer"], crate::model::PRODUCER, "{what}: {at}.{key}");
                // Each facet file's schema is `{properties: {<key>: facet}}`:
                // validate the keyed object against the file too, so the key
                // is the one the spec names.
                self.check(url, facet, &format!("{what}: {at}.{key}"));
                let file = url.split('#').next().unwrap();
                self.check(file, &json!({ key.clone(): facet }), &format!("{what}: {at}.{key} (keyed)"));
                let schema = vendored().into_iter().find(|(id, _)| id == file).unwrap().1;
                assert!(schema["properties"].get(key).is_some(), "{what}: facet key `{key}` is not the one {file} defines");
                checked += 1;
            }
        }
        checked
    }
}

fn streaming_job(symlink: bool) -> StreamingJob {
    let topic = naming::kafka("broker:9092", "orders");
    StreamingJob {
        namespace: "inlet".into(),
        name: naming::ingest_job("orders"),
        bootstrap_servers: "broker:9092".into(),
        consumer_group: "inlet-orders".into(),
        topics: vec![topic],
        table: naming::storage("s3://lake/wh/sales.db/orders"),
        table_symlink: symlink.then(|| naming::hive("thrift://metastore:9083", "sales", "orders")),
        dead_letter: Some((naming::storage("s3://lake/wh/sales.db/orders_dead_letter"), symlink.then(|| naming::hive("thrift://metastore:9083", "sales", "orders_dead_letter")))),
        event_time_source: EventTimeSource::EventTimeField,
        column_lineage: vec![
            ColumnSource { column: "dt".into(), field: "ts".into(), identity: false, description: "strftime %Y-%m-%d of the event time in UTC".into() },
            ColumnSource { column: "_kafka_offset".into(), field: "offset".into(), identity: true, description: "Kafka message offset".into() },
            ColumnSource { column: "_absent".into(), field: "x".into(), identity: true, description: "not in the schema: left out".into() },
        ],
    }
}

fn schema() -> Vec<SchemaField> {
    let mut nested = SchemaField::new("customer", "struct");
    nested.fields = vec![SchemaField::new("id", "long"), SchemaField::new("tags", "array<string>")];
    vec![SchemaField::new("id", "long"), nested, SchemaField::new("ts", "timestamp"), SchemaField::new("_kafka_offset", "long"), SchemaField::new("dt", "string")]
}

fn commit(version: i64) -> CommitReport {
    let t = |s: i64| Some(Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap());
    CommitReport {
        version,
        committed_at: t(100).unwrap(),
        rows: 1000,
        bytes: 65536,
        files: 2,
        dead_letters: 3,
        offsets: vec![PartitionOffset { topic: "orders".into(), partition: 0, offset: 499 }, PartitionOffset { topic: "orders".into(), partition: 1, offset: 502 }],
        oldest_event: t(1),
        newest_event: t(90),
        oldest_kafka: t(2),
        newest_kafka: t(95),
        schema: Some(schema()),
    }
}

#[test]
fn every_streaming_event_validates() {
    let v = Validators::new();
    for symlink in [true, false] {
        let mut run = StreamingRun::new(streaming_job(symlink));
        let t0 = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let start = run.start(t0, None, None);
        v.event(&start);
        let start_existing = run.start(t0, Some(4), Some(schema()));
        v.event(&start_existing);
        let running = run.running(commit(5));
        let n = v.event(&running);
        assert!(n >= if symlink { 9 } else { 7 }, "RUNNING carries run, job and dataset facets ({n})");
        // The facets the issue names are all there.
        let out = &running.outputs[0];
        for k in ["schema", "version", "columnLineage"] {
            assert!(out.facets.contains_key(k), "{k}");
        }
        assert_eq!(out.facets.contains_key("symlinks"), symlink);
        assert_eq!(facets::read_version(&out.facets), Some(5));
        assert_eq!(facets::read_output_statistics(&out.output_facets), Some((Some(1000), Some(65536), Some(2))));
        let cl = &out.facets["columnLineage"]["fields"];
        assert_eq!(cl["dt"]["inputFields"][0]["field"], "ts");
        assert_eq!(cl["dt"]["inputFields"][0]["namespace"], "kafka://broker:9092");
        assert!(cl.get("_absent").is_none());
        let k = facets::read_inlet_kafka(&running.run.facets).unwrap();
        assert_eq!(k.offsets.len(), 2);
        assert_eq!(k.commit.as_ref().unwrap().version, 5);
        assert_eq!(running.job.facets["jobType"]["processingType"], "STREAMING");
        assert_eq!(running.job.facets["jobType"]["integration"], "INLET");

        run.accumulate(commit(6));
        run.accumulate(commit(7));
        let interval = run.flush_running().unwrap();
        v.event(&interval);
        assert_eq!(facets::read_output_statistics(&interval.outputs[0].output_facets), Some((Some(2000), Some(131072), Some(4))));
        assert_eq!(facets::read_version(&interval.outputs[0].facets), Some(7));
        assert!(run.flush_running().is_none());

        let complete = run.complete(t0);
        v.event(&complete);
        assert_eq!(facets::read_output_statistics(&complete.outputs[0].output_facets), Some((Some(3000), Some(196608), Some(6))));
        v.event(&run.abort(t0, "shutdown deadline passed with 10 messages uncommitted"));
        let fail = run.fail(t0, "pipeline orders: storage unreachable");
        v.event(&fail);
        assert_eq!(fail.run.facets["errorMessage"]["programmingLanguage"], "RUST");
    }
}

#[test]
fn every_batch_event_validates() {
    let v = Validators::new();
    let table = naming::storage("/data/wh/sales.db/orders");
    let t0 = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
    for symlink in [Some(naming::hive("0.0.0.0:9083", "sales", "orders")), None] {
        let run = BatchRun::new("inlet", &naming::compaction_job("sales.orders"), "COMPACTION", table.clone(), symlink);
        let start = run.start(t0, Some(41), Some(&schema()));
        v.event(&start);
        assert!(start.outputs.is_empty());
        let o = BatchOutcome { version_read: Some(41), version_written: Some(43), files_out: 3, bytes_out: 300_000_000, rows_out: Some(9_000_000) };
        let done = run.complete(t0, &o, None);
        v.event(&done);
        assert_eq!(facets::read_version(&done.inputs[0].facets), Some(41));
        assert_eq!(facets::read_version(&done.outputs[0].facets), Some(43));
        assert_eq!(done.job.facets["jobType"]["processingType"], "BATCH");
        let pc = BatchRun::new("inlet", "ingest.orders.partition_commit", "PARTITION_COMMIT", table.clone(), None);
        let facet = facets::PartitionCommitFacet { partition: "dt=2024-01-01/hour=03".into(), files: 4, rows: 1000, bytes: 65536, recommit: false };
        let closed = pc.partition_committed(t0, &BatchOutcome { version_read: Some(43), version_written: Some(43), files_out: 4, bytes_out: 65536, rows_out: Some(1000) }, &facet);
        v.event(&closed);
        assert_eq!(closed.run.facets["inlet_partition_commit"]["partition"], "dt=2024-01-01/hour=03");
        let mut bad = closed.run.facets["inlet_partition_commit"].clone();
        bad["rows"] = json!(-1);
        assert!(!v.errors(facets::INLET_PARTITION_COMMIT, &bad, "bad rows").is_empty(), "negative rows passed");
        let nothing = run.complete(t0, &BatchOutcome { version_read: Some(41), ..Default::default() }, None);
        v.event(&nothing);
        assert!(nothing.outputs[0].output_facets.is_empty());
        v.event(&run.fail(t0, &o, "bin 3: object store timeout"));
    }
}

#[test]
fn the_validator_rejects_what_the_spec_forbids() {
    // A validator that accepts everything would make the tests above pass
    // for nothing.
    let v = Validators::new();
    let mut run = StreamingRun::new(streaming_job(true));
    let e = run.running(commit(1));
    let mut bad = serde_json::to_value(&e).unwrap();
    bad["eventType"] = json!("STARTED");
    assert!(!v.errors(crate::model::SCHEMA_URL, &bad, "bad event").is_empty(), "an unknown eventType passed");
    let mut bad_time = serde_json::to_value(&e).unwrap();
    bad_time["eventTime"] = json!("yesterday");
    assert!(!v.errors(crate::model::SCHEMA_URL, &bad_time, "bad time").is_empty(), "a non date-time eventTime passed");
    let mut facet = e.outputs[0].facets["version"].clone();
    facet.as_object_mut().unwrap().remove("datasetVersion");
    assert!(!v.errors(facets::DATASET_VERSION, &facet, "bad facet").is_empty(), "a version facet without datasetVersion passed");
    let mut kafka = e.run.facets["inlet_kafka"].clone();
    kafka["offsets"][0]["offset"] = json!(-1);
    assert!(!v.errors(facets::INLET_KAFKA, &kafka, "bad offset").is_empty(), "a negative offset passed");
}
