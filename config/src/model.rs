//! The typed configuration of the whole suite. The doc comments here are the
//! reference: `docs/configuration.md` is generated from them
//! (`inlet config reference`) and a test keeps the two in step.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An inlet configuration file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where tables live and how to reach that storage.
    pub storage: StorageConfig,
    /// The metastore that holds the catalog. Optional until a metastore is
    /// deployed; pipelines name their database and table regardless.
    #[serde(default)]
    pub catalog: Option<CatalogConfig>,
    /// The metastore service (`inlet metastore serve`): its Thrift and REST
    /// APIs over the catalog database of `catalog`.
    #[serde(default)]
    pub metastore: MetastoreConfig,
    /// Process-wide settings of `inlet ingest`.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// Defaults shared by every pipeline's Kafka source.
    #[serde(default)]
    pub kafka: KafkaDefaults,
    /// Ingestion pipelines: each reads topics into one table.
    #[serde(default)]
    pub pipelines: Vec<PipelineConfig>,
    /// Small-file compaction, vacuum and checkpoints (`inlet compact`,
    /// `inlet compactor`).
    #[serde(default)]
    pub compaction: CompactionConfig,
    /// OpenLineage events of ingestion and compaction, the lineage store, and
    /// freshness and consumer-lag alerts (see `docs/lineage.md`).
    #[serde(default)]
    pub lineage: LineageConfig,
}

/// Warehouse storage.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Root of the warehouse: a local path (`./warehouse`, `/data/wh`,
    /// `file:///data/wh`), `s3://bucket/prefix`, or `hdfs://namenode:port/path`
    /// (HDFS needs a build with the `hdfs` feature). Tables without an explicit
    /// location live at `<warehouse>/<database>.db/<table>`.
    pub warehouse: String,
    /// S3 and S3-compatible stores (MinIO, Ceph, moto...).
    #[serde(default)]
    pub s3: Option<S3Config>,
    /// Extra storage options passed through to the storage backend
    /// (delta-rs / OpenDAL option names).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// S3 credentials and endpoint. Credentials left out are taken from the
/// usual AWS environment variables and instance profiles.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Endpoint URL for S3-compatible stores, e.g. `http://127.0.0.1:9000`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region; `us-east-1` when not set.
    #[serde(default)]
    pub region: Option<String>,
    /// Access key id; use `${AWS_ACCESS_KEY_ID}` rather than a literal.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Secret access key; use `${AWS_SECRET_ACCESS_KEY}` rather than a literal.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Session token for temporary credentials.
    #[serde(default)]
    pub session_token: Option<String>,
    /// Address buckets as `endpoint/bucket` (needed by most S3-compatible
    /// stores) instead of `bucket.endpoint`.
    #[serde(default = "yes")]
    pub path_style: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        Self { endpoint: None, region: None, access_key_id: None, secret_access_key: None, session_token: None, path_style: true }
    }
}

/// Metastore connection.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    /// Database URL of the catalog store: `sqlite:///path/to/metastore.db`,
    /// `mysql://user:password@host:3306/db` (MySQL, MariaDB and TiDB).
    pub database_url: String,
    /// Apply pending schema migrations when a service starts.
    #[serde(default = "yes")]
    pub migrate_on_start: bool,
}

/// Settings of the metastore service.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetastoreConfig {
    /// Address of the Hive Metastore Thrift API (Spark, Hive, Trino,
    /// pyiceberg): `thrift://<host>:<port>` for clients.
    #[serde(default = "default_thrift_listen")]
    pub thrift_listen: String,
    /// Address of the REST API, its OpenAPI document (`/openapi.json`),
    /// `/metrics`, `/health` and `/ready`.
    #[serde(default = "default_http_listen")]
    pub http_listen: String,
    /// Where managed databases and tables go when a client gives no location
    /// (Hive's `hive.metastore.warehouse.dir`), as clients write it, e.g.
    /// `s3a://bucket/warehouse` or `file:/data/warehouse`. Defaults to
    /// `storage.warehouse`.
    #[serde(default)]
    pub warehouse: Option<String>,
    /// Bearer tokens that may write through the REST API. Reads are open.
    /// When no token is configured, REST writes are open too: configure
    /// tokens wherever the REST port is reachable by more than operators.
    #[serde(default)]
    pub tokens: Vec<ApiToken>,
    /// Thrift connections served at once; more are closed on accept.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Largest Thrift request accepted, in bytes; a larger one closes its
    /// connection.
    #[serde(default = "default_max_thrift_message_bytes")]
    pub max_message_bytes: u64,
    /// Answers to `get_config_value` (Hive configuration keys clients ask
    /// the metastore for), beside the built-in ones.
    #[serde(default)]
    pub config_values: BTreeMap<String, String>,
}

impl Default for MetastoreConfig {
    fn default() -> Self {
        MetastoreConfig {
            thrift_listen: default_thrift_listen(),
            http_listen: default_http_listen(),
            warehouse: None,
            tokens: Vec::new(),
            max_connections: default_max_connections(),
            max_message_bytes: default_max_thrift_message_bytes(),
            config_values: BTreeMap::new(),
        }
    }
}

/// A REST API token and the identity the audit log records for it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who uses the token, e.g. `ci-deployer`.
    pub identity: String,
    /// The secret; use `${ENV}` interpolation rather than writing it here.
    pub token: String,
}

fn default_thrift_listen() -> String {
    "0.0.0.0:9083".into()
}
fn default_http_listen() -> String {
    "0.0.0.0:8080".into()
}
fn default_max_connections() -> u32 {
    1000
}
fn default_max_thrift_message_bytes() -> u64 {
    100 * 1024 * 1024
}

/// Process-wide settings of `inlet ingest`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Memory budget for buffered messages of all pipelines of the process.
    /// When it is reached, consumption pauses until buffers are flushed.
    #[serde(default = "default_memory_budget")]
    pub memory_budget_bytes: u64,
    /// Address of the Prometheus `/metrics` and `/health` endpoint, e.g.
    /// `0.0.0.0:9464`. No endpoint when not set.
    #[serde(default)]
    pub metrics_listen: Option<String>,
    /// On SIGTERM/SIGINT, how long buffered data may take to be flushed and
    /// committed before the process exits anyway (uncommitted data is then
    /// re-read from Kafka on the next start, never lost).
    #[serde(default = "default_shutdown_deadline")]
    pub shutdown_deadline_secs: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            memory_budget_bytes: default_memory_budget(),
            metrics_listen: None,
            shutdown_deadline_secs: default_shutdown_deadline(),
        }
    }
}

/// Kafka settings shared by all pipelines; a pipeline's own `source` keys win.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaDefaults {
    /// Bootstrap servers, `host:port[,host:port...]`.
    #[serde(default)]
    pub brokers: Option<String>,
    /// librdkafka consumer properties (security.protocol, sasl.*, ssl.*,
    /// session.timeout.ms, partition.assignment.strategy...).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// One ingestion pipeline: topics in, one table out.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Unique name; part of the exactly-once transaction ids stored in the
    /// table, so renaming a pipeline restarts it from `source.start_offset`.
    pub name: String,
    /// Where messages come from.
    pub source: SourceConfig,
    /// How message bytes become rows.
    #[serde(default)]
    pub format: FormatConfig,
    /// The table schema and how it evolves.
    #[serde(default)]
    pub schema: SchemaConfig,
    /// Kafka metadata columns added to every row.
    #[serde(default)]
    pub metadata_columns: MetadataColumns,
    /// The destination table.
    pub table: TableConfig,
    /// When buffered rows are written and committed.
    #[serde(default)]
    pub flush: FlushConfig,
    /// What happens to messages that cannot be written.
    #[serde(default)]
    pub dead_letter: DeadLetterConfig,
    /// Alert thresholds of the pipeline's table (fired to
    /// `lineage.alerts.webhook_url` and exported as metrics).
    #[serde(default)]
    pub alerts: TableAlerts,
}

/// A Kafka source.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Bootstrap servers; defaults to `kafka.brokers`.
    #[serde(default)]
    pub brokers: Option<String>,
    /// Topic names to read.
    #[serde(default)]
    pub topics: Vec<String>,
    /// A regular expression selecting topics (matched against the whole
    /// name); topics created later are picked up.
    #[serde(default)]
    pub topic_pattern: Option<String>,
    /// Consumer group; processes with the same group share the partitions.
    /// Defaults to `inlet-<pipeline name>`.
    #[serde(default)]
    pub group_id: Option<String>,
    /// Where to start partitions that the table holds no progress for.
    #[serde(default)]
    pub start_offset: StartOffset,
    /// What to do when the next offset to read was already deleted by the
    /// topic's retention: `fail` (default, naming the gap) or `skip` to the
    /// earliest offset still available.
    #[serde(default)]
    pub on_offset_gap: OffsetGapPolicy,
    /// librdkafka consumer properties, merged over `kafka.properties`.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// Starting position for partitions without committed progress in the table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StartOffset {
    /// The oldest offset retained by the topic.
    #[default]
    Earliest,
    /// Only messages produced after the pipeline first starts.
    Latest,
    /// Explicit offsets: `{partitions: {"topic": {"0": 1200, "1": 900}}}`;
    /// partitions not listed start at the earliest offset.
    Partitions(BTreeMap<String, BTreeMap<String, i64>>),
}

/// Policy for offsets that retention already deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OffsetGapPolicy {
    #[default]
    Fail,
    Skip,
}

/// Message format.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FormatConfig {
    /// One JSON object per message, decoded straight into Arrow.
    #[default]
    Json,
    /// Avro with the Confluent wire format (magic byte, schema id) and a
    /// schema registry.
    AvroRegistry {
        /// Schema registry URL, e.g. `http://registry:8081`.
        url: String,
        /// Basic-auth user.
        #[serde(default)]
        username: Option<String>,
        /// Basic-auth password.
        #[serde(default)]
        password: Option<String>,
        /// Subject whose latest schema defines the table when
        /// `schema.source` is `registry`; defaults to `<first topic>-value`.
        #[serde(default)]
        subject: Option<String>,
    },
    /// Avro binary without framing, with the writer schema in a file.
    AvroFile {
        /// Path of the `.avsc` schema file.
        schema_file: String,
    },
    /// The message value as a UTF-8 string in column `value`.
    String,
    /// The message value as bytes in column `value`.
    Bytes,
}

/// Table schema.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaConfig {
    /// Where the schema of a new table comes from: `infer` from the first
    /// batch (default), `fields` listed below, or `registry`/the Avro file.
    #[serde(default)]
    pub source: SchemaSource,
    /// Columns, for `source: fields`.
    #[serde(default)]
    pub fields: Vec<FieldConfig>,
    /// Fields that are not in the table: `add_columns` (default; new
    /// nullable columns, on partitioned tables too), `ignore`, or
    /// `dead_letter` the message.
    #[serde(default)]
    pub on_new_fields: NewFieldPolicy,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SchemaSource {
    #[default]
    Infer,
    Fields,
    Registry,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NewFieldPolicy {
    #[default]
    AddColumns,
    Ignore,
    DeadLetter,
}

/// One column.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    pub name: String,
    /// `string`, `long`, `int`, `short`, `byte`, `double`, `float`,
    /// `boolean`, `binary`, `date`, `timestamp` (UTC, microseconds), or
    /// `decimal(p,s)`.
    #[serde(rename = "type")]
    pub data_type: String,
    /// Whether the column may be null. A message missing a non-nullable
    /// field goes to the dead-letter table.
    #[serde(default = "yes")]
    pub nullable: bool,
}

/// Kafka metadata columns; each is added under the given column name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataColumns {
    /// Column for the topic name (string).
    #[serde(default)]
    pub topic: Option<String>,
    /// Column for the Kafka partition (int).
    #[serde(default)]
    pub partition: Option<String>,
    /// Column for the offset (long).
    #[serde(default)]
    pub offset: Option<String>,
    /// Column for the message timestamp (timestamp).
    #[serde(default)]
    pub timestamp: Option<String>,
    /// Column for the message key (binary).
    #[serde(default)]
    pub key: Option<String>,
    /// Column for the headers (map of string to binary).
    #[serde(default)]
    pub headers: Option<String>,
}

/// Destination table.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// Catalog database.
    #[serde(default = "default_database")]
    pub database: String,
    /// Table name.
    pub name: String,
    /// Explicit location; defaults to `<warehouse>/<database>.db/<name>`.
    #[serde(default)]
    pub location: Option<String>,
    /// Partition columns taken from the data.
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// Partition columns derived from an event-time field.
    #[serde(default)]
    pub event_time: Option<EventTimeConfig>,
    /// Write a Delta checkpoint every this many commits.
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval_commits: u64,
    /// How long Delta log entries are kept after a checkpoint covers them.
    #[serde(default = "default_log_retention")]
    pub log_retention_hours: u64,
    /// Extra table properties set when the table is created (Delta table
    /// properties, or Hive table parameters with `format: hive`).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Table format: `delta` (default: a Delta Lake table with its log in
    /// storage) or `hive` (plain Parquet files in Hive partition directories,
    /// partitions in the metastore, commits recorded in the catalog database;
    /// needs `catalog`). See docs/hive-format.md.
    #[serde(default)]
    pub format: TableFormat,
    /// Settings of `format: hive` tables.
    #[serde(default)]
    pub hive: HiveTableConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TableFormat {
    #[default]
    Delta,
    Hive,
}

/// How a `format: hive` table is written and its partitions closed.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HiveTableConfig {
    /// Staged files older than this that belong to no recorded commit are
    /// deleted (left by a writer that died before committing). Must be far
    /// longer than a flush takes.
    #[serde(default = "default_staging_retention")]
    pub staging_retention_secs: u64,
    /// Partition commit: close event-time partitions once event time has
    /// passed their end plus a delay (writes `_SUCCESS`, stores statistics,
    /// emits a lineage event). Needs `event_time`.
    #[serde(default)]
    pub partition_commit: Option<PartitionCommitConfig>,
}

impl Default for HiveTableConfig {
    fn default() -> Self {
        Self { staging_retention_secs: default_staging_retention(), partition_commit: None }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartitionCommitConfig {
    /// How long after a partition's end (in event time) it is closed.
    #[serde(default = "default_partition_commit_delay")]
    pub delay_secs: u64,
    /// Events for a partition that is already closed: `write` (default:
    /// written, the partition's statistics and `_SUCCESS` renewed) or
    /// `dead_letter` (sent to the dead-letter table with the reason).
    #[serde(default)]
    pub late_events: LateEvents,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LateEvents {
    #[default]
    Write,
    DeadLetter,
}

/// Partitions derived from event time.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTimeConfig {
    /// The field holding the event time.
    pub field: String,
    /// How the field is encoded: `auto` (RFC 3339 strings, epoch
    /// milliseconds as numbers, or timestamps), `rfc3339`, `epoch_seconds`,
    /// `epoch_millis`, `epoch_micros`.
    #[serde(default)]
    pub encoding: TimeEncoding,
    /// IANA time zone the partition values are computed in, e.g.
    /// `Asia/Shanghai`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Derived partition columns, each a strftime format of the event time,
    /// e.g. `{column: dt, format: "%Y-%m-%d"}` and `{column: hour, format: "%H"}`.
    pub partitions: Vec<DerivedPartition>,
    /// What to do with a message whose event time is missing or unreadable:
    /// `dead_letter` (default) or `use_kafka_timestamp`.
    #[serde(default)]
    pub on_missing: MissingEventTime,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeEncoding {
    #[default]
    Auto,
    Rfc3339,
    EpochSeconds,
    EpochMillis,
    EpochMicros,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissingEventTime {
    #[default]
    DeadLetter,
    UseKafkaTimestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DerivedPartition {
    /// Name of the partition column (a string column).
    pub column: String,
    /// strftime format, e.g. `%Y-%m-%d`.
    pub format: String,
}

/// Flush policy: buffered rows are written and committed when any limit is hit.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlushConfig {
    /// Rows buffered before a commit.
    #[serde(default = "default_max_rows")]
    pub max_rows: u64,
    /// Message bytes buffered before a commit.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Allowed latency: the longest a message waits in the buffer before it
    /// is committed.
    #[serde(default = "default_max_latency")]
    pub max_latency_ms: u64,
    /// Target size of the Parquet files written; larger flushes are split.
    #[serde(default = "default_target_file_size")]
    pub target_file_size_bytes: u64,
}

impl Default for FlushConfig {
    fn default() -> Self {
        Self {
            max_rows: default_max_rows(),
            max_bytes: default_max_bytes(),
            max_latency_ms: default_max_latency(),
            target_file_size_bytes: default_target_file_size(),
        }
    }
}

/// Dead letters.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// `dead_letter` (default): write bad messages to the dead-letter table;
    /// `skip`: log and count them; `stop`: stop the pipeline.
    #[serde(default)]
    pub policy: DeadLetterPolicy,
    /// Dead-letter table name, in the pipeline's database; defaults to
    /// `<table>_dead_letter`.
    #[serde(default)]
    pub table: Option<String>,
    /// Messages larger than this go to the dead-letter table unparsed.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: u64,
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        Self { policy: DeadLetterPolicy::default(), table: None, max_message_bytes: default_max_message_bytes() }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterPolicy {
    #[default]
    DeadLetter,
    Skip,
    Stop,
}

fn yes() -> bool {
    true
}
fn default_memory_budget() -> u64 {
    512 * 1024 * 1024
}
fn default_shutdown_deadline() -> u64 {
    30
}
fn default_database() -> String {
    "default".to_string()
}
fn default_checkpoint_interval() -> u64 {
    10
}
fn default_staging_retention() -> u64 {
    3600
}
fn default_partition_commit_delay() -> u64 {
    3600
}
fn default_log_retention() -> u64 {
    7 * 24
}
fn default_time_zone() -> String {
    "UTC".to_string()
}
fn default_max_rows() -> u64 {
    1_000_000
}
fn default_max_bytes() -> u64 {
    64 * 1024 * 1024
}
fn default_max_latency() -> u64 {
    10_000
}
fn default_target_file_size() -> u64 {
    128 * 1024 * 1024
}
fn default_max_message_bytes() -> u64 {
    1024 * 1024
}

// ---------------------------------------------------------------------------
// Compaction (`compaction:`): policies of `inlet compact` / `inlet compactor`.
// ---------------------------------------------------------------------------

/// Process-wide compaction settings and one policy per table.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompactionConfig {
    /// Memory budget shared by all concurrent rewrites of the process
    /// (decoded row groups being re-encoded). A rewrite waits for its share
    /// before it starts.
    #[serde(default = "default_compaction_memory_budget")]
    pub memory_budget_bytes: u64,
    /// Address of the compactor's Prometheus `/metrics` and `/health`
    /// endpoint, e.g. `0.0.0.0:9465`. No endpoint when not set.
    #[serde(default)]
    pub metrics_listen: Option<String>,
    /// How often `inlet compactor` evaluates the health triggers.
    #[serde(default = "default_trigger_check_secs")]
    pub trigger_check_interval_secs: u64,
    /// How long a table lease lasts before another compactor may take it
    /// over; renewed while a run makes progress.
    #[serde(default = "default_lease_ttl_secs")]
    pub lease_ttl_secs: u64,
    /// One policy per table.
    #[serde(default)]
    pub tables: Vec<CompactionPolicyConfig>,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            memory_budget_bytes: default_compaction_memory_budget(),
            metrics_listen: None,
            trigger_check_interval_secs: default_trigger_check_secs(),
            lease_ttl_secs: default_lease_ttl_secs(),
            tables: Vec::new(),
        }
    }
}

/// How one table is kept free of small files.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompactionPolicyConfig {
    /// The table, by the name of the pipeline that writes it. Set this or
    /// `location`.
    #[serde(default)]
    pub pipeline: Option<String>,
    /// The table, by location (absolute, or relative to the warehouse). Set
    /// this or `pipeline`.
    #[serde(default)]
    pub location: Option<String>,
    /// When `inlet compactor` runs this policy: a cron expression, 5 fields
    /// (`minute hour day-of-month month day-of-week`, Unix numbering: 0 or 7
    /// is Sunday) or 6 with seconds first; `@hourly`, `@daily`... work too.
    /// No schedule: only triggers start runs.
    #[serde(default)]
    pub schedule: Option<String>,
    /// IANA time zone of `schedule` and `windows`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Local times of day when runs may start (scheduled or triggered); a
    /// run still going when its window closes starts no further bins. Any
    /// time when empty.
    #[serde(default)]
    pub windows: Vec<CompactionWindow>,
    /// Health triggers: start a run as soon as the table looks like this.
    #[serde(default)]
    pub triggers: CompactionTriggers,
    /// Size of the files compaction writes.
    #[serde(default = "default_compaction_target_file_size")]
    pub target_file_size_bytes: u64,
    /// Files below this size are candidates for compaction.
    #[serde(default = "default_small_file_bytes")]
    pub small_file_bytes: u64,
    /// A bin (files of one partition rewritten into one file) needs at least
    /// this many files, so that every rewrite reduces the file count.
    #[serde(default = "default_min_files_per_bin")]
    pub min_files_per_bin: u64,
    /// Skip partitions that the stream wrote in the last
    /// `active_window_secs` (read from the table's recent commits), so that
    /// compaction does not rewrite what ingestion is still adding to.
    #[serde(default = "yes")]
    pub skip_active_partitions: bool,
    /// How recent a write must be for its partition to count as active.
    #[serde(default = "default_active_window_secs")]
    pub active_window_secs: u64,
    /// Input bytes one run rewrites at most; the rest waits for the next run.
    #[serde(default = "default_max_bytes_per_run")]
    pub max_bytes_per_run: u64,
    /// A run commits after this many input bytes, so large runs land in
    /// parts and a failure loses little.
    #[serde(default = "default_max_bytes_per_commit")]
    pub max_bytes_per_commit: u64,
    /// Bins rewritten at the same time within one run.
    #[serde(default = "default_max_concurrent_rewrites")]
    pub max_concurrent_rewrites: u32,
    /// Codec of the files compaction writes: `snappy` (what ingest writes),
    /// `zstd` (about 40% smaller files of event data at the same rewrite
    /// speed; Spark 3, Trino and delta-rs read it, Hive 2.x does not),
    /// `lz4_raw` (Spark 3.4 and later), `gzip` or `uncompressed`. Columns that do not compress (random ids, hashes)
    /// are stored uncompressed whatever the codec.
    #[serde(default)]
    pub compression: CompactionCodec,
    /// Level of `zstd` (1 to 22, default 1) or `gzip` (0 to 10, default 6).
    #[serde(default)]
    pub compression_level: Option<u32>,
    /// Sort rows of each rewritten file by these columns (a bin is then
    /// held in memory: bins are capped to the memory budget).
    #[serde(default)]
    pub sort_by: Vec<String>,
    /// Deleting data files that no version within the retention needs.
    #[serde(default)]
    pub vacuum: VacuumPolicy,
    /// After a run, write a checkpoint when at least this many commits were
    /// made since the last one, then remove log entries older than the
    /// table's `delta.logRetentionDuration`.
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval_commits: u64,
    /// `format: hive` tables: how long the files a compaction replaced stay
    /// after the partition moved to its compacted directory. Set it longer
    /// than the longest query: a query that listed the old files must still
    /// find them.
    #[serde(default = "default_hive_grace_period")]
    pub hive_grace_period_secs: u64,
}

fn default_hive_grace_period() -> u64 {
    3600
}

/// Parquet codecs compaction can write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompactionCodec {
    #[default]
    Snappy,
    Zstd,
    Lz4Raw,
    Gzip,
    Uncompressed,
}

/// A daily window of local time, `HH:MM` to `HH:MM` (may cross midnight).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompactionWindow {
    pub start: String,
    pub end: String,
}

/// Conditions that start a run outside the schedule.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompactionTriggers {
    /// Run when one partition (not skipped as active) holds more than this
    /// many small files.
    #[serde(default)]
    pub small_files_per_partition: Option<u64>,
    /// Run when the whole table holds more than this many small files.
    #[serde(default)]
    pub small_files_total: Option<u64>,
}

/// Vacuum of one table, run after compaction.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VacuumPolicy {
    /// Vacuum after each run of `inlet compactor` (`inlet compact` vacuums
    /// only with `--vacuum`).
    #[serde(default)]
    pub enabled: bool,
    /// Files removed from the table longer ago than this are deleted. It
    /// must exceed the longest-running reader and the time travel users
    /// need; below 168 hours (7 days) it is refused unless `force` is set.
    #[serde(default = "default_vacuum_retention_hours")]
    pub retention_hours: u64,
    /// Allow a retention below the safe minimum (and below the table's
    /// `delta.deletedFileRetentionDuration`).
    #[serde(default)]
    pub force: bool,
}

impl Default for VacuumPolicy {
    fn default() -> Self {
        Self { enabled: false, retention_hours: default_vacuum_retention_hours(), force: false }
    }
}

/// Vacuum retention below which `force` is required.
pub const SAFE_VACUUM_RETENTION_HOURS: u64 = 7 * 24;

fn default_compaction_memory_budget() -> u64 {
    512 * 1024 * 1024
}
fn default_trigger_check_secs() -> u64 {
    60
}
fn default_lease_ttl_secs() -> u64 {
    300
}
fn default_compaction_target_file_size() -> u64 {
    128 * 1024 * 1024
}
fn default_small_file_bytes() -> u64 {
    32 * 1024 * 1024
}
fn default_min_files_per_bin() -> u64 {
    4
}
fn default_active_window_secs() -> u64 {
    600
}
fn default_max_bytes_per_run() -> u64 {
    16 * 1024 * 1024 * 1024
}
fn default_max_bytes_per_commit() -> u64 {
    2 * 1024 * 1024 * 1024
}
fn default_max_concurrent_rewrites() -> u32 {
    2
}
fn default_vacuum_retention_hours() -> u64 {
    SAFE_VACUUM_RETENTION_HOURS
}

// ---------------------------------------------------------------------------
// Lineage (`lineage:`): OpenLineage events, their transports, alerts.
// ---------------------------------------------------------------------------

/// OpenLineage events and alerts.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LineageConfig {
    /// Where events go; each transport has its own queue, so a slow one
    /// delays no other. No transports: no events (freshness, latency metrics
    /// and alerts work regardless).
    #[serde(default)]
    pub transports: Vec<LineageTransport>,
    /// Namespace of inlet's jobs (`ingest.<pipeline>`, `compaction.<table>`).
    #[serde(default = "default_lineage_namespace")]
    pub namespace: String,
    /// When a streaming run reports progress (RUNNING events): `commit` for
    /// one event per table commit, or an interval such as `30s`, `5m`, `1h`
    /// for one event per interval covering the commits made in it.
    #[serde(default = "default_running_every")]
    pub running_every: String,
    /// Events queued per transport. When a transport falls behind (an
    /// unreachable receiver), further events for it are dropped and counted
    /// in `inlet_lineage_events_dropped_total`: ingestion never waits.
    #[serde(default = "default_lineage_queue_capacity")]
    pub queue_capacity: u64,
    /// The metastore's Thrift address as clients reach it
    /// (`thrift://metastore.example.com:9083`): tables carry a symlink to
    /// `hive://host:port` + `db.table`. Defaults to `metastore.thrift_listen`
    /// (an unspecified host such as `0.0.0.0` becomes `localhost`).
    #[serde(default)]
    pub metastore_uri: Option<String>,
    /// How long a stopping process waits for queued events to be delivered
    /// before it drops them.
    #[serde(default = "default_lineage_shutdown_timeout_ms")]
    pub shutdown_timeout_ms: u64,
    /// Days the lineage store keeps dataset versions and ended runs (the
    /// graph of jobs and datasets is kept); pruned hourly by the processes
    /// that record events with the `catalog` transport. 0 keeps everything.
    #[serde(default = "default_lineage_retention_days")]
    pub retention_days: u64,
    /// Where alerts go and how often they are checked.
    #[serde(default)]
    pub alerts: AlertsConfig,
}

impl Default for LineageConfig {
    fn default() -> Self {
        Self {
            transports: Vec::new(),
            namespace: default_lineage_namespace(),
            running_every: default_running_every(),
            queue_capacity: default_lineage_queue_capacity(),
            metastore_uri: None,
            shutdown_timeout_ms: default_lineage_shutdown_timeout_ms(),
            retention_days: default_lineage_retention_days(),
            alerts: AlertsConfig::default(),
        }
    }
}

/// One destination of OpenLineage events.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LineageTransport {
    /// POST each event as JSON to an OpenLineage receiver, e.g. Marquez's
    /// `http://marquez:5000/api/v1/lineage` or the metastore's own
    /// `http://metastore:8080/api/v1/lineage`.
    Http {
        /// The receiver's URL.
        url: String,
        /// Bearer token sent as `Authorization: Bearer <token>`; use
        /// `${ENV}` interpolation rather than a literal.
        #[serde(default)]
        token: Option<String>,
        /// Time one attempt may take (connect, send, answer).
        #[serde(default = "default_lineage_http_timeout_ms")]
        timeout_ms: u64,
        /// Further attempts after a failed one (connection error, timeout,
        /// 408, 429 or 5xx), with exponential backoff from 500 ms to 30 s.
        #[serde(default = "default_lineage_http_retries")]
        retries: u32,
    },
    /// Append each event as one JSON line to a file.
    File {
        /// The file; created when missing, appended to otherwise.
        path: String,
    },
    /// Record events in the lineage store of the catalog database named in
    /// `catalog` (queried with `inlet lineage` and the metastore's
    /// `/api/v1/lineage` routes).
    Catalog,
}

/// Where alerts go.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// URL that alerts are POSTed to as JSON when they fire and when they
    /// resolve. Without it alerts are only exported as metrics
    /// (`inlet_lineage_alert_firing`).
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Bearer token for the webhook.
    #[serde(default)]
    pub webhook_token: Option<String>,
    /// How often thresholds are checked.
    #[serde(default = "default_alert_check_secs")]
    pub check_interval_secs: u64,
    /// A threshold must stay exceeded this long before its alert fires.
    #[serde(default)]
    pub for_secs: u64,
    /// A firing alert is sent again this often (0: only when it fires and
    /// when it resolves).
    #[serde(default = "default_alert_repeat_secs")]
    pub repeat_interval_secs: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self { webhook_url: None, webhook_token: None, check_interval_secs: default_alert_check_secs(), for_secs: 0, repeat_interval_secs: default_alert_repeat_secs() }
    }
}

/// Alert thresholds of one table.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableAlerts {
    /// Fire when the table's freshness (now minus the newest event time
    /// committed) exceeds this many seconds.
    #[serde(default)]
    pub max_freshness_secs: Option<u64>,
    /// Fire when the messages of the pipeline's topics not yet committed to
    /// the table exceed this many.
    #[serde(default)]
    pub max_consumer_lag_messages: Option<u64>,
}

/// When streaming runs emit RUNNING events, parsed from `lineage.running_every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunningEvery {
    Commit,
    Interval(std::time::Duration),
}

impl RunningEvery {
    /// `commit`, or a whole number with a unit: `ms`, `s`, `m`, `h`.
    pub fn parse(s: &str) -> Result<RunningEvery, String> {
        let t = s.trim();
        if t == "commit" {
            return Ok(RunningEvery::Commit);
        }
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (n, unit) = t.split_at(split);
        let n: u64 = n.parse().map_err(|_| format!("`{s}`: expected `commit` or a duration such as `30s`, `5m`, `1h`, `500ms`"))?;
        let d = match unit.trim() {
            "ms" => std::time::Duration::from_millis(n),
            "s" => std::time::Duration::from_secs(n),
            "m" => std::time::Duration::from_secs(n * 60),
            "h" => std::time::Duration::from_secs(n * 3600),
            other => return Err(format!("`{s}`: unknown unit `{other}`, expected `ms`, `s`, `m` or `h`")),
        };
        if d < std::time::Duration::from_millis(100) {
            return Err(format!("`{s}`: the interval must be at least 100ms"));
        }
        Ok(RunningEvery::Interval(d))
    }
}

fn default_lineage_namespace() -> String {
    "inlet".to_string()
}
fn default_running_every() -> String {
    "commit".to_string()
}
fn default_lineage_queue_capacity() -> u64 {
    10_000
}
fn default_lineage_shutdown_timeout_ms() -> u64 {
    5_000
}
fn default_lineage_retention_days() -> u64 {
    30
}
fn default_lineage_http_timeout_ms() -> u64 {
    5_000
}
fn default_lineage_http_retries() -> u32 {
    5
}
fn default_alert_check_secs() -> u64 {
    15
}
fn default_alert_repeat_secs() -> u64 {
    3600
}
