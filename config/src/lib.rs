//! inlet's configuration: one YAML format for the whole suite.
//!
//! Loading runs in phases, each reporting every problem it finds with the key
//! path, line and column: YAML syntax and `${ENV}` interpolation
//! ([`yaml`]), structure against the schema derived from the typed structs
//! ([`schema_check`]: unknown keys, wrong types, missing fields), typed
//! deserialisation, then semantic checks that need no network or files
//! ([`validate`]).

pub mod cron;
pub mod error;
pub mod model;
pub mod reference;
pub mod schema_check;
pub mod validate;
pub mod yaml;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors, LoadError, Span};
pub use model::*;
use yaml::{Node, PathSegment};

/// The JSON Schema of [`Config`], as used for structural validation.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Config)).expect("schema serialises")
}

/// Loads and validates a configuration file, expanding `${ENV}` from the
/// process environment.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| LoadError::Read { path: path.display().to_string(), source })?;
    Ok(parse(&path.display().to_string(), &text, &|name| std::env::var(name).ok())?)
}

/// Parses and validates configuration text. `source_name` is used in error
/// messages; `env` resolves `${NAME}` references.
pub fn parse(
    source_name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let fail = |errors| ConfigErrors::new(source_name, errors);
    let root = Node::parse(text, env).map_err(fail)?;
    let json = root.to_json();

    let violations = schema_check::check(&json_schema(), &json);
    if !violations.is_empty() {
        let errors = violations
            .into_iter()
            .map(|v| {
                let span = root.locate(&v.path, v.at_key);
                ConfigError::new(v.path, Some(span), v.message)
            })
            .collect();
        return Err(fail(errors));
    }

    let config: Config = serde_path_to_error::deserialize(&json).map_err(|e| {
        let path = serde_path(e.path());
        let span = root.locate(&path, false);
        fail(vec![ConfigError::new(path, Some(span), e.into_inner().to_string())])
    })?;

    let problems = validate::check(&config);
    if !problems.is_empty() {
        let errors = problems
            .into_iter()
            .map(|(path, message)| {
                let span = root.locate(&path, false);
                ConfigError::new(path, Some(span), message)
            })
            .collect();
        return Err(fail(errors));
    }
    Ok(config)
}

fn serde_path(path: &serde_path_to_error::Path) -> Vec<PathSegment> {
    path.iter()
        .filter_map(|seg| match seg {
            serde_path_to_error::Segment::Seq { index } => Some(PathSegment::Index(*index)),
            serde_path_to_error::Segment::Map { key } => Some(PathSegment::Key(key.clone())),
            serde_path_to_error::Segment::Enum { variant } => Some(PathSegment::Key(variant.clone())),
            serde_path_to_error::Segment::Unknown => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(_: &str) -> Option<String> {
        None
    }

    const GOOD: &str = r#"
storage:
  warehouse: /tmp/wh
kafka:
  brokers: 127.0.0.1:9092
pipelines:
  - name: events
    source:
      topics: [events]
    table:
      name: events
      event_time:
        field: ts
        partitions:
          - {column: dt, format: "%Y-%m-%d"}
"#;

    #[test]
    fn good_config_loads() {
        let c = parse("inlet.yaml", GOOD, &env).unwrap();
        assert_eq!(c.pipelines[0].table.database, "default");
        assert_eq!(c.pipelines[0].flush.max_rows, 1_000_000);
    }

    #[test]
    fn three_errors_in_one_run_each_located() {
        let text = r#"storage:
  warehouse: /tmp/wh
pipelines:
  - name: events
    source:
      topics: [events]
      brokers: localhost:9092
    table:
      nmae: events
    flush:
      max_rows: lots
"#;
        let errs = parse("inlet.yaml", text, &env).unwrap_err();
        let shown = errs.to_string();
        assert_eq!(errs.errors.len(), 3, "{shown}");
        assert!(shown.contains("inlet.yaml:8:5: pipelines[0].table: missing field `name`"), "{shown}");
        assert!(shown.contains("inlet.yaml:9:7: pipelines[0].table.nmae: unknown field `nmae` (did you mean `name`?)"), "{shown}");
        assert!(shown.contains("inlet.yaml:11:17: pipelines[0].flush.max_rows: expected an integer, found a string \"lots\""), "{shown}");
    }

    #[test]
    fn tagged_enum_errors_speak_about_the_variant() {
        let text = "storage: {warehouse: /x}\nkafka: {brokers: b:1}\npipelines:\n  - name: p\n    source: {topics: [t]}\n    table: {name: t}\n    format:\n      type: avro_file\n      schema_fil: x.avsc\n";
        let errs = parse("c.yaml", text, &env).unwrap_err().to_string();
        assert!(errs.contains("c.yaml:9:7: pipelines[0].format.schema_fil: unknown field `schema_fil` (did you mean `schema_file`?)"), "{errs}");
        assert!(errs.contains("missing field `schema_file`"), "{errs}");
    }

    #[test]
    fn semantic_errors_are_located() {
        let text = "storage: {warehouse: /x}\npipelines:\n  - name: p\n    source: {topics: [t], topic_pattern: 'x('}\n    table:\n      name: t\n      event_time: {field: ts, time_zone: Mars/Olympus, partitions: [{column: dt, format: '%Q'}]}\n";
        let errs = parse("c.yaml", text, &env).unwrap_err();
        let shown = errs.to_string();
        assert!(shown.contains("pipelines[0].source.brokers"), "{shown}");
        assert!(shown.contains("c.yaml:4:13: pipelines[0].source: set either `topics` or `topic_pattern`"), "{shown}");
        assert!(shown.contains("pipelines[0].source.topic_pattern: invalid regular expression"), "{shown}");
        assert!(shown.contains("pipelines[0].table.event_time.time_zone: unknown time zone `Mars/Olympus`"), "{shown}");
        assert!(shown.contains("pipelines[0].table.event_time.partitions[0].format"), "{shown}");
    }

    #[test]
    fn invalid_cron_and_unsafe_vacuum_are_located() {
        let text = "storage: {warehouse: /x}\ncompaction:\n  tables:\n    - location: /x/t\n      schedule: \"61 * * * *\"\n      time_zone: Europe/Berlin\n    - location: /x/u\n      schedule: \"*/10 * * * * *\"\n      vacuum:\n        retention_hours: 1\n";
        let errs = parse("c.yaml", text, &env).unwrap_err();
        let shown = errs.to_string();
        assert_eq!(errs.errors.len(), 2, "{shown}");
        assert!(shown.contains("c.yaml:5:17: compaction.tables[0].schedule: invalid cron expression `61 * * * *`: minute field: 61 is out of range 0-59"), "{shown}");
        assert!(shown.contains("c.yaml:10:26: compaction.tables[1].vacuum.retention_hours: 1 hours is below the safe minimum"), "{shown}");
        let forced = text.replace("retention_hours: 1\n", "retention_hours: 1\n        force: true\n").replace("61 * * * *", "0 3 * * 1-5");
        let c = parse("c.yaml", &forced, &env).unwrap();
        assert_eq!(c.compaction.tables.len(), 2);
        assert_eq!(c.compaction.tables[0].min_files_per_bin, 4);
    }

    #[test]
    fn compaction_codec_levels_are_checked_and_located() {
        let text = "storage: {warehouse: /x}\ncompaction:\n  tables:\n    - location: /x/t\n      compression: zstd\n      compression_level: 23\n    - location: /x/u\n      compression: snappy\n      compression_level: 3\n    - location: /x/v\n      compression: gzip\n      compression_level: 9\n    - location: /x/w\n";
        let errs = parse("c.yaml", text, &env).unwrap_err();
        let shown = errs.to_string();
        assert_eq!(errs.errors.len(), 2, "{shown}");
        assert!(shown.contains("c.yaml:6:26: compaction.tables[0].compression_level: zstd level 23 is out of range: 1 to 22"), "{shown}");
        assert!(shown.contains("c.yaml:9:26: compaction.tables[1].compression_level: `snappy` has no levels"), "{shown}");
        let fixed = text.replace("compression_level: 23", "compression_level: 3").replace("      compression: snappy\n      compression_level: 3\n", "      compression: lz4_raw\n");
        let c = parse("c.yaml", &fixed, &env).unwrap();
        let codecs: Vec<_> = c.compaction.tables.iter().map(|t| (t.compression, t.compression_level)).collect();
        assert_eq!(codecs, [(CompactionCodec::Zstd, Some(3)), (CompactionCodec::Lz4Raw, None), (CompactionCodec::Gzip, Some(9)), (CompactionCodec::Snappy, None)]);
        let unknown = parse("c.yaml", &text.replace("compression: zstd", "compression: brotli"), &env).unwrap_err().to_string();
        assert!(unknown.contains("c.yaml:5:20: compaction.tables[0].compression: unknown variant \"brotli\", expected one of `snappy`, `zstd`"), "{unknown}");
    }

    #[test]
    fn hive_format_needs_a_catalog_and_partition_commit_needs_event_time() {
        let text = "storage: {warehouse: /x}\nkafka: {brokers: b:1}\npipelines:\n  - name: p\n    source: {topics: [t]}\n    table:\n      name: t\n      format: hive\n      hive:\n        staging_retention_secs: 5\n        partition_commit: {delay_secs: 60, late_events: dead_letter}\n";
        let errs = parse("c.yaml", text, &env).unwrap_err();
        let shown = errs.to_string();
        assert_eq!(errs.errors.len(), 3, "{shown}");
        assert!(shown.contains("c.yaml:8:15: pipelines[0].table.format: `format: hive` records its commits in the catalog database"), "{shown}");
        assert!(shown.contains("c.yaml:10:33: pipelines[0].table.hive.staging_retention_secs: must be at least 60"), "{shown}");
        assert!(shown.contains("pipelines[0].table.hive.partition_commit: partition commit closes event-time partitions: configure `event_time`"), "{shown}");
        let good = text.replace("staging_retention_secs: 5", "staging_retention_secs: 600").replace("      format: hive\n", "      format: hive\n      event_time: {field: ts, partitions: [{column: dt, format: '%Y-%m-%d'}]}\n")
            + "catalog: {database_url: 'sqlite:///tmp/c.db'}\n";
        let c = parse("c.yaml", &good, &env).unwrap();
        assert_eq!(c.pipelines[0].table.format, TableFormat::Hive);
        assert_eq!(c.pipelines[0].table.hive.partition_commit.as_ref().unwrap().late_events, LateEvents::DeadLetter);
        let typo = good.replace("format: hive", "format: orc");
        let errs = parse("c.yaml", &typo, &env).unwrap_err().to_string();
        assert!(errs.contains("pipelines[0].table.format") && errs.contains("orc"), "{errs}");
    }

    #[test]
    fn lineage_section_loads_and_its_errors_are_located() {
        let text = "storage: {warehouse: /x}\nkafka: {brokers: b:1}\npipelines:\n  - name: p\n    source: {topics: [t]}\n    table: {name: t}\n    alerts: {max_freshness_secs: 60, max_consumer_lag_messages: 1000}\nlineage:\n  running_every: 30s\n  transports:\n    - type: http\n      url: http://marquez:5000/api/v1/lineage\n      token: abc\n    - type: file\n      path: /tmp/l.jsonl\n  alerts: {webhook_url: 'https://hooks.example.com/x'}\n";
        let c = parse("c.yaml", text, &env).unwrap();
        assert_eq!(RunningEvery::parse(&c.lineage.running_every), Ok(RunningEvery::Interval(std::time::Duration::from_secs(30))));
        assert!(matches!(&c.lineage.transports[0], LineageTransport::Http { retries: 5, timeout_ms: 5000, .. }));
        assert_eq!(c.pipelines[0].alerts.max_consumer_lag_messages, Some(1000));

        let bad = "storage: {warehouse: /x}\nlineage:\n  running_every: 5 minutes\n  queue_capacity: 0\n  transports:\n    - type: http\n      url: ftp://x/y\n    - type: catalog\n    - type: kafka\n  alerts:\n    webhook_url: nope\n";
        let errs = parse("c.yaml", bad, &env).unwrap_err().to_string();
        // The unknown transport type is a structural error, reported first and alone.
        assert!(errs.contains("c.yaml:9:") && errs.contains("lineage.transports[2]"), "{errs}");
        let bad = bad.replace("    - type: kafka\n", "");
        let errs = parse("c.yaml", &bad, &env).unwrap_err();
        let shown = errs.to_string();
        assert_eq!(errs.errors.len(), 5, "{shown}");
        assert!(shown.contains("c.yaml:3:18: lineage.running_every: `5 minutes`: unknown unit `minutes`"), "{shown}");
        assert!(shown.contains("c.yaml:4:19: lineage.queue_capacity: must be at least 1"), "{shown}");
        assert!(shown.contains("c.yaml:7:12: lineage.transports[0].url: `ftp://x/y`: expected an http:// or https:// URL"), "{shown}");
        assert!(shown.contains("lineage.transports[1]: `type: catalog` records events in the catalog database"), "{shown}");
        assert!(shown.contains("c.yaml:10:18: lineage.alerts.webhook_url: `nope` is not a URL"), "{shown}");
    }

    #[test]
    fn running_every_parses_commit_and_durations() {
        assert_eq!(RunningEvery::parse("commit"), Ok(RunningEvery::Commit));
        assert_eq!(RunningEvery::parse("500ms"), Ok(RunningEvery::Interval(std::time::Duration::from_millis(500))));
        assert_eq!(RunningEvery::parse("2h"), Ok(RunningEvery::Interval(std::time::Duration::from_secs(7200))));
        assert!(RunningEvery::parse("10ms").is_err());
        assert!(RunningEvery::parse("s").is_err());
    }

    #[test]
    fn yaml_syntax_error_is_located() {
        let errs = parse("c.yaml", "storage:\n  warehouse: [unclosed\n", &env).unwrap_err();
        assert!(errs.errors[0].span.is_some());
        assert!(errs.to_string().contains("invalid YAML"), "{errs}");
    }
}
