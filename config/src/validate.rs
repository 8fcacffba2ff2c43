//! Semantic checks of a structurally valid configuration: everything that can
//! be known without touching the network or the warehouse.

use std::collections::HashSet;

use chrono::format::{Item, StrftimeItems};

use crate::model::*;
use crate::yaml::PathSegment;

type Problem = (Vec<PathSegment>, String);

fn key(path: &[PathSegment], k: &str) -> Vec<PathSegment> {
    let mut p = path.to_vec();
    p.push(PathSegment::Key(k.to_string()));
    p
}

fn idx(path: &[PathSegment], i: usize) -> Vec<PathSegment> {
    let mut p = path.to_vec();
    p.push(PathSegment::Index(i));
    p
}

/// Identifiers as Hive stores them: lower-case letters, digits, underscores.
pub fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A strftime format that chrono can render and that yields a non-empty value.
pub fn check_strftime(format: &str) -> Result<(), String> {
    if format.is_empty() {
        return Err("format is empty".into());
    }
    for item in StrftimeItems::new(format) {
        if let Item::Error = item {
            return Err(format!("invalid strftime format {format:?}"));
        }
    }
    if format.contains('/') {
        return Err(format!("format {format:?} would put `/` in a partition value"));
    }
    Ok(())
}

pub fn check(config: &Config) -> Vec<Problem> {
    let mut out = Vec::new();
    let root: Vec<PathSegment> = Vec::new();

    let storage = key(&root, "storage");
    let wh = config.storage.warehouse.trim();
    if wh.is_empty() {
        out.push((key(&storage, "warehouse"), "must not be empty".into()));
    } else if let Some((scheme, _)) = wh.split_once("://") {
        if !matches!(scheme, "file" | "s3" | "s3a" | "hdfs" | "viewfs") {
            out.push((key(&storage, "warehouse"), format!("unsupported scheme `{scheme}://`, expected a local path, `file://`, `s3://` or `hdfs://`")));
        }
    }

    if let Some(catalog) = &config.catalog {
        let url = &catalog.database_url;
        if !(url.starts_with("sqlite:") || url.starts_with("mysql://") || url.starts_with("mariadb://") || url.starts_with("tidb://")) {
            out.push((key(&key(&root, "catalog"), "database_url"), "expected a `sqlite:` or `mysql://` URL (MySQL, MariaDB, TiDB)".into()));
        }
    }

    let metastore = key(&root, "metastore");
    for (field, addr) in [("thrift_listen", &config.metastore.thrift_listen), ("http_listen", &config.metastore.http_listen)] {
        if addr.parse::<std::net::SocketAddr>().is_err() {
            out.push((key(&metastore, field), format!("`{addr}` is not a listen address such as `0.0.0.0:9083`")));
        }
    }
    if config.metastore.thrift_listen == config.metastore.http_listen && !config.metastore.http_listen.ends_with(":0") {
        out.push((key(&metastore, "http_listen"), "must differ from `thrift_listen`".into()));
    }
    let tokens = key(&metastore, "tokens");
    for (i, t) in config.metastore.tokens.iter().enumerate() {
        if t.token.trim().len() < 16 {
            out.push((key(&idx(&tokens, i), "token"), "must be at least 16 characters (a guessable token protects nothing)".into()));
        }
        if t.identity.trim().is_empty() {
            out.push((key(&idx(&tokens, i), "identity"), "must not be empty".into()));
        }
    }
    if config.metastore.max_connections == 0 {
        out.push((key(&metastore, "max_connections"), "must be at least 1".into()));
    }
    if config.metastore.max_message_bytes < 1024 * 1024 {
        out.push((key(&metastore, "max_message_bytes"), "must be at least 1 MiB".into()));
    }

    if config.ingest.memory_budget_bytes < 1024 * 1024 {
        out.push((key(&key(&root, "ingest"), "memory_budget_bytes"), "must be at least 1 MiB".into()));
    }

    let mut names = HashSet::new();
    let mut tables = HashSet::new();
    let pipelines = key(&root, "pipelines");
    for (i, p) in config.pipelines.iter().enumerate() {
        let at = idx(&pipelines, i);
        if !names.insert(p.name.as_str()) {
            out.push((key(&at, "name"), format!("duplicate pipeline name `{}`", p.name)));
        }
        if p.name.is_empty() || !p.name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
            out.push((key(&at, "name"), "use letters, digits, `_`, `-` and `.` only".into()));
        }
        check_source(config, p, &key(&at, "source"), &mut out);
        check_table(p, &key(&at, "table"), &mut out);
        if p.table.format == TableFormat::Hive && config.catalog.is_none() {
            out.push((key(&key(&at, "table"), "format"), "`format: hive` records its commits in the catalog database: configure `catalog.database_url`".into()));
        }
        let table_id = (p.table.database.clone(), p.table.name.clone());
        if !tables.insert(table_id) {
            out.push((key(&key(&at, "table"), "name"), format!("table `{}.{}` is already written by another pipeline", p.table.database, p.table.name)));
        }

        let schema_at = key(&at, "schema");
        match p.schema.source {
            SchemaSource::Fields if p.schema.fields.is_empty() => {
                out.push((key(&schema_at, "fields"), "`source: fields` needs at least one field".into()))
            }
            SchemaSource::Registry
                if !matches!(p.format, FormatConfig::AvroRegistry { .. } | FormatConfig::AvroFile { .. }) =>
            {
                out.push((key(&schema_at, "source"), "`registry` needs `format.type: avro_registry` or `avro_file`".into()))
            }
            _ => {}
        }
        let mut field_names = HashSet::new();
        for (j, f) in p.schema.fields.iter().enumerate() {
            let fat = idx(&key(&schema_at, "fields"), j);
            if !field_names.insert(f.name.as_str()) {
                out.push((key(&fat, "name"), format!("duplicate field `{}`", f.name)));
            }
            if let Err(e) = parse_type_name(&f.data_type) {
                out.push((key(&fat, "type"), e));
            }
        }

        let m = &p.metadata_columns;
        let mut meta = HashSet::new();
        for (name, col) in [("topic", &m.topic), ("partition", &m.partition), ("offset", &m.offset), ("timestamp", &m.timestamp), ("key", &m.key), ("headers", &m.headers)] {
            if let Some(col) = col {
                let mat = key(&key(&at, "metadata_columns"), name);
                if col.is_empty() {
                    out.push((mat, "column name must not be empty".into()));
                } else if !meta.insert(col.as_str()) {
                    out.push((mat, format!("column `{col}` is used twice")));
                } else if field_names.contains(col.as_str()) {
                    out.push((mat, format!("column `{col}` clashes with a field of `schema.fields`")));
                }
            }
        }

        let flush = key(&at, "flush");
        for (name, v) in [("max_rows", p.flush.max_rows), ("max_bytes", p.flush.max_bytes), ("max_latency_ms", p.flush.max_latency_ms), ("target_file_size_bytes", p.flush.target_file_size_bytes)] {
            if v == 0 {
                out.push((key(&flush, name), "must be greater than 0".into()));
            }
        }
        if p.flush.max_bytes > config.ingest.memory_budget_bytes {
            out.push((key(&flush, "max_bytes"), format!("is larger than `ingest.memory_budget_bytes` ({}): the buffer could never fill", config.ingest.memory_budget_bytes)));
        }
        if let Some(t) = &p.dead_letter.table {
            if !is_identifier(t) {
                out.push((key(&key(&at, "dead_letter"), "table"), "use lower-case letters, digits and `_`".into()));
            } else if *t == p.table.name {
                out.push((key(&key(&at, "dead_letter"), "table"), "must differ from the pipeline's table".into()));
            }
        }
        if p.dead_letter.max_message_bytes == 0 {
            out.push((key(&key(&at, "dead_letter"), "max_message_bytes"), "must be greater than 0".into()));
        }
        if let FormatConfig::AvroRegistry { url, .. } = &p.format {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                out.push((key(&key(&at, "format"), "url"), "expected an http:// or https:// URL".into()));
            }
        }
    }
    check_compaction(config, &key(&root, "compaction"), &mut out);
    check_lineage(config, &key(&root, "lineage"), &mut out);
    for (i, p) in config.pipelines.iter().enumerate() {
        let at = key(&idx(&key(&root, "pipelines"), i), "alerts");
        for (name, v) in [("max_freshness_secs", p.alerts.max_freshness_secs), ("max_consumer_lag_messages", p.alerts.max_consumer_lag_messages)] {
            if v == Some(0) {
                out.push((key(&at, name), "must be greater than 0 (leave it out for no alert)".into()));
            }
        }
    }
    out
}

// --- lineage ----------------------------------------------------------------

fn check_http_url(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(u) => Err(format!("`{url}`: expected an http:// or https:// URL, found scheme `{}`", u.scheme())),
        Err(e) => Err(format!("`{url}` is not a URL: {e}")),
    }
}

fn check_lineage(config: &Config, at: &[PathSegment], out: &mut Vec<Problem>) {
    let l = &config.lineage;
    if l.namespace.trim().is_empty() {
        out.push((key(at, "namespace"), "must not be empty".into()));
    }
    if let Err(e) = RunningEvery::parse(&l.running_every) {
        out.push((key(at, "running_every"), e));
    }
    if l.queue_capacity == 0 {
        out.push((key(at, "queue_capacity"), "must be at least 1".into()));
    }
    let mut catalogs = 0;
    for (i, t) in l.transports.iter().enumerate() {
        let tat = idx(&key(at, "transports"), i);
        match t {
            LineageTransport::Http { url, timeout_ms, retries, token } => {
                if let Err(e) = check_http_url(url) {
                    out.push((key(&tat, "url"), e));
                }
                if *timeout_ms == 0 {
                    out.push((key(&tat, "timeout_ms"), "must be greater than 0".into()));
                }
                if *retries > 20 {
                    out.push((key(&tat, "retries"), "at most 20 (backoff reaches its 30 s cap after 6)".into()));
                }
                if token.as_deref().is_some_and(|t| t.trim().is_empty()) {
                    out.push((key(&tat, "token"), "is empty (an unset `${ENV}`?); leave it out for no token".into()));
                }
            }
            LineageTransport::File { path } => {
                if path.trim().is_empty() {
                    out.push((key(&tat, "path"), "must not be empty".into()));
                }
            }
            LineageTransport::Catalog => {
                catalogs += 1;
                if config.catalog.is_none() {
                    out.push((tat.clone(), "`type: catalog` records events in the catalog database: configure `catalog.database_url`".into()));
                }
                if catalogs > 1 {
                    out.push((tat.clone(), "the catalog transport is listed twice".into()));
                }
            }
        }
    }
    if let Some(uri) = &l.metastore_uri {
        let bare = uri.strip_prefix("thrift://").unwrap_or(uri);
        if bare.is_empty() || bare.contains('/') {
            out.push((key(at, "metastore_uri"), format!("`{uri}`: expected `thrift://host:port`")));
        }
    }
    let alerts = key(at, "alerts");
    if let Some(url) = &l.alerts.webhook_url {
        if let Err(e) = check_http_url(url) {
            out.push((key(&alerts, "webhook_url"), e));
        }
    }
    if l.alerts.check_interval_secs == 0 {
        out.push((key(&alerts, "check_interval_secs"), "must be greater than 0".into()));
    }
}

// --- compaction -------------------------------------------------------------

fn check_compaction(config: &Config, at: &[PathSegment], out: &mut Vec<Problem>) {
    let c = &config.compaction;
    if c.memory_budget_bytes < 16 * 1024 * 1024 {
        out.push((key(at, "memory_budget_bytes"), "must be at least 16 MiB".into()));
    }
    for (name, v) in [("trigger_check_interval_secs", c.trigger_check_interval_secs), ("lease_ttl_secs", c.lease_ttl_secs)] {
        if v == 0 {
            out.push((key(at, name), "must be greater than 0".into()));
        }
    }
    let mut seen = HashSet::new();
    for (i, t) in c.tables.iter().enumerate() {
        let tat = idx(&key(at, "tables"), i);
        match (&t.pipeline, &t.location) {
            (None, None) | (Some(_), Some(_)) => out.push((tat.clone(), "set either `pipeline` or `location`".into())),
            (Some(p), None) if !config.pipelines.iter().any(|x| &x.name == p) => {
                out.push((key(&tat, "pipeline"), format!("no pipeline named `{p}` in `pipelines`")))
            }
            _ => {}
        }
        let id = t.pipeline.clone().or(t.location.clone()).unwrap_or_default();
        if !id.is_empty() && !seen.insert(id.clone()) {
            out.push((tat.clone(), format!("table `{id}` already has a policy")));
        }
        if let Some(s) = &t.schedule {
            if let Err(e) = crate::cron::CronSchedule::parse(s) {
                out.push((key(&tat, "schedule"), format!("invalid cron expression `{s}`: {e}")));
            }
        }
        if t.time_zone.parse::<chrono_tz::Tz>().is_err() {
            out.push((key(&tat, "time_zone"), format!("unknown time zone `{}`, expected an IANA name such as `UTC` or `Europe/Berlin`", t.time_zone)));
        }
        for (j, w) in t.windows.iter().enumerate() {
            if let Err(e) = crate::cron::DailyWindow::parse(&w.start, &w.end) {
                out.push((idx(&key(&tat, "windows"), j), e));
            }
        }
        for (name, v) in [
            ("target_file_size_bytes", t.target_file_size_bytes),
            ("small_file_bytes", t.small_file_bytes),
            ("max_bytes_per_run", t.max_bytes_per_run),
            ("max_bytes_per_commit", t.max_bytes_per_commit),
            ("max_concurrent_rewrites", t.max_concurrent_rewrites as u64),
            ("checkpoint_interval_commits", t.checkpoint_interval_commits),
        ] {
            if v == 0 {
                out.push((key(&tat, name), "must be greater than 0".into()));
            }
        }
        if t.small_file_bytes > t.target_file_size_bytes {
            out.push((key(&tat, "small_file_bytes"), format!("is larger than `target_file_size_bytes` ({})", t.target_file_size_bytes)));
        }
        if t.min_files_per_bin < 2 {
            out.push((key(&tat, "min_files_per_bin"), "must be at least 2: a bin of one file would rewrite it for nothing".into()));
        }
        match (t.compression, t.compression_level) {
            (_, None) => {}
            (crate::CompactionCodec::Zstd, Some(1..=22)) | (crate::CompactionCodec::Gzip, Some(0..=10)) => {}
            (crate::CompactionCodec::Zstd, Some(l)) => out.push((key(&tat, "compression_level"), format!("zstd level {l} is out of range: 1 to 22"))),
            (crate::CompactionCodec::Gzip, Some(l)) => out.push((key(&tat, "compression_level"), format!("gzip level {l} is out of range: 0 to 10"))),
            (c, Some(_)) => out.push((key(&tat, "compression_level"), format!("`{}` has no levels: set `compression: zstd` or `gzip`, or remove the level", serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()))),
        }
        let v = &t.vacuum;
        if v.retention_hours < SAFE_VACUUM_RETENTION_HOURS && !v.force {
            out.push((
                key(&key(&tat, "vacuum"), "retention_hours"),
                format!("{} hours is below the safe minimum of {SAFE_VACUUM_RETENTION_HOURS}: readers and time travel older than that would break; set `force: true` to allow it", v.retention_hours),
            ));
        }
        let mut cols = HashSet::new();
        for (j, col) in t.sort_by.iter().enumerate() {
            if col.is_empty() || !cols.insert(col.as_str()) {
                out.push((idx(&key(&tat, "sort_by"), j), format!("`{col}` is empty or listed twice")));
            }
        }
    }
}

fn check_source(config: &Config, p: &PipelineConfig, at: &[PathSegment], out: &mut Vec<Problem>) {
    let s = &p.source;
    if s.brokers.is_none() && config.kafka.brokers.is_none() {
        out.push((key(at, "brokers"), "no brokers: set `brokers` here or `kafka.brokers`".into()));
    }
    match (s.topics.is_empty(), &s.topic_pattern) {
        (true, None) | (false, Some(_)) => {
            out.push((at.to_vec(), "set either `topics` or `topic_pattern`".into()))
        }
        _ => {}
    }
    if let Some(pattern) = &s.topic_pattern {
        if let Err(e) = regex::Regex::new(pattern) {
            out.push((key(at, "topic_pattern"), format!("invalid regular expression: {e}")));
        }
    }
    for (j, t) in s.topics.iter().enumerate() {
        if t.is_empty() || t.len() > 249 || !t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
            out.push((idx(&key(at, "topics"), j), format!("`{t}` is not a valid Kafka topic name")));
        }
    }
    if let StartOffset::Partitions(map) = &s.start_offset {
        for (topic, parts) in map {
            for (part, offset) in parts {
                if part.parse::<i32>().map(|p| p < 0).unwrap_or(true) {
                    out.push((key(&key(&key(at, "start_offset"), "partitions"), topic), format!("`{part}` is not a partition number")));
                }
                if *offset < 0 {
                    out.push((key(&key(&key(at, "start_offset"), "partitions"), topic), format!("offset {offset} of partition {part} is negative")));
                }
            }
        }
    }
}

fn check_table(p: &PipelineConfig, at: &[PathSegment], out: &mut Vec<Problem>) {
    let t = &p.table;
    if !is_identifier(&t.database) {
        out.push((key(at, "database"), format!("`{}`: use lower-case letters, digits and `_`", t.database)));
    }
    if !is_identifier(&t.name) {
        out.push((key(at, "name"), format!("`{}`: use lower-case letters, digits and `_`", t.name)));
    }
    if t.checkpoint_interval_commits == 0 {
        out.push((key(at, "checkpoint_interval_commits"), "must be greater than 0".into()));
    }
    let mut partition_cols = HashSet::new();
    for (j, c) in t.partition_by.iter().enumerate() {
        if !partition_cols.insert(c.as_str()) {
            out.push((idx(&key(at, "partition_by"), j), format!("`{c}` is listed twice")));
        }
    }
    if let Some(pc) = &t.hive.partition_commit {
        let pat = key(&key(at, "hive"), "partition_commit");
        if t.format != TableFormat::Hive {
            out.push((pat.clone(), "partition commit applies to `format: hive` tables (Delta readers see commits, not directories)".into()));
        }
        if t.event_time.is_none() {
            out.push((pat.clone(), "partition commit closes event-time partitions: configure `event_time`".into()));
        }
        let _ = pc;
    }
    if t.hive.staging_retention_secs < 60 {
        out.push((key(&key(at, "hive"), "staging_retention_secs"), "must be at least 60: a live writer's staged files must never look abandoned".into()));
    }
    if let Some(et) = &t.event_time {
        let eat = key(at, "event_time");
        if et.time_zone.parse::<chrono_tz::Tz>().is_err() {
            out.push((key(&eat, "time_zone"), format!("unknown time zone `{}`, expected an IANA name such as `UTC` or `Europe/Berlin`", et.time_zone)));
        }
        if et.partitions.is_empty() {
            out.push((key(&eat, "partitions"), "list at least one derived partition column".into()));
        }
        for (j, d) in et.partitions.iter().enumerate() {
            let dat = idx(&key(&eat, "partitions"), j);
            if let Err(e) = check_strftime(&d.format) {
                out.push((key(&dat, "format"), e));
            }
            if !partition_cols.insert(d.column.as_str()) {
                out.push((key(&dat, "column"), format!("`{}` is already a partition column", d.column)));
            }
        }
    }
}

/// Parses a column type name of `schema.fields[].type`.
pub fn parse_type_name(name: &str) -> Result<ColumnType, String> {
    let n = name.trim().to_ascii_lowercase();
    Ok(match n.as_str() {
        "string" => ColumnType::String,
        "long" | "bigint" => ColumnType::Long,
        "int" | "integer" => ColumnType::Int,
        "short" | "smallint" => ColumnType::Short,
        "byte" | "tinyint" => ColumnType::Byte,
        "double" => ColumnType::Double,
        "float" => ColumnType::Float,
        "boolean" | "bool" => ColumnType::Boolean,
        "binary" => ColumnType::Binary,
        "date" => ColumnType::Date,
        "timestamp" => ColumnType::Timestamp,
        _ => {
            if let Some(args) = n.strip_prefix("decimal(").and_then(|r| r.strip_suffix(')')) {
                let (p, s) = args.split_once(',').ok_or_else(|| format!("`{name}`: expected decimal(precision,scale)"))?;
                let p: u8 = p.trim().parse().map_err(|_| format!("`{name}`: bad precision"))?;
                let s: i8 = s.trim().parse().map_err(|_| format!("`{name}`: bad scale"))?;
                if p == 0 || p > 38 || s < 0 || s as u8 > p {
                    return Err(format!("`{name}`: precision must be 1..=38 and scale 0..=precision"));
                }
                ColumnType::Decimal(p, s)
            } else {
                return Err(format!("unknown type `{name}`, expected one of string, long, int, short, byte, double, float, boolean, binary, date, timestamp, decimal(p,s)"));
            }
        }
    })
}

/// A column type named in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    String,
    Long,
    Int,
    Short,
    Byte,
    Double,
    Float,
    Boolean,
    Binary,
    Date,
    Timestamp,
    Decimal(u8, i8),
}
