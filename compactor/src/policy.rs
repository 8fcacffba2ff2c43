//! A table's compaction policy, resolved from `compaction.tables[]`: which
//! table (by pipeline or location), what counts as small, how much one run
//! may do, and when it runs.

use std::time::Duration;

use chrono_tz::Tz;
use inlet_config::cron::{CronSchedule, DailyWindow};
use deltalake::parquet::basic::{Compression, GzipLevel, ZstdLevel};
use inlet_config::{CatalogConfig, CompactionCodec, CompactionPolicyConfig, Config, PipelineConfig, TableFormat, VacuumPolicy};
use inlet_table::{Location, Warehouse};

use crate::CompactError;

/// What one table's compaction may and must do.
#[derive(Debug, Clone)]
pub struct Policy {
    /// A short name for logs and metrics: the pipeline name or the location.
    pub name: String,
    pub location: Location,
    pub target_file_size_bytes: u64,
    pub small_file_bytes: u64,
    pub min_files_per_bin: usize,
    /// `None`: do not skip partitions the stream is writing.
    pub active_window: Option<Duration>,
    pub max_bytes_per_run: u64,
    pub max_bytes_per_commit: u64,
    pub max_concurrent_rewrites: usize,
    pub sort_by: Vec<String>,
    /// Codec of rewritten files.
    pub compression: Compression,
    pub vacuum: VacuumPolicy,
    pub checkpoint_interval_commits: u64,
    pub schedule: Option<CronSchedule>,
    pub time_zone: Tz,
    pub windows: Vec<DailyWindow>,
    pub trigger_small_files_per_partition: Option<u64>,
    pub trigger_small_files_total: Option<u64>,
    /// Set for `format: hive` tables: where the table is in the catalog.
    pub hive: Option<HiveTable>,
    /// How long replaced files of a Hive partition outlive the move.
    pub hive_grace_period: Duration,
}

/// The Parquet codec of a policy's `compression` and `compression_level`
/// (config validation refuses a level on a codec without levels).
fn compression(codec: CompactionCodec, level: Option<u32>) -> Result<Compression, String> {
    Ok(match codec {
        CompactionCodec::Snappy => Compression::SNAPPY,
        CompactionCodec::Lz4Raw => Compression::LZ4_RAW,
        CompactionCodec::Uncompressed => Compression::UNCOMPRESSED,
        CompactionCodec::Zstd => Compression::ZSTD(ZstdLevel::try_new(level.unwrap_or(1) as i32).map_err(|e| format!("compression_level: {e}"))?),
        CompactionCodec::Gzip => Compression::GZIP(GzipLevel::try_new(level.unwrap_or(6)).map_err(|e| format!("compression_level: {e}"))?),
    })
}

/// A `format: hive` table: its catalog name and the catalog holding its
/// commit log.
#[derive(Debug, Clone)]
pub struct HiveTable {
    pub database: String,
    pub table: String,
    pub catalog: CatalogConfig,
    pub warehouse: String,
}

impl Policy {
    /// A policy with the defaults of `compaction.tables[]` for `location`.
    pub fn for_location(location: Location) -> Self {
        let cfg: CompactionPolicyConfig = serde_json::from_value(serde_json::json!({ "location": location.display })).expect("defaults deserialise");
        Self::from_parts(location.display.clone(), location, &cfg).expect("defaults are valid")
    }

    fn from_parts(name: String, location: Location, c: &CompactionPolicyConfig) -> Result<Self, CompactError> {
        let invalid = |reason: String| CompactError::Policy { table: name.clone(), reason };
        let schedule = c.schedule.as_deref().map(CronSchedule::parse).transpose().map_err(invalid)?;
        let time_zone: Tz = c.time_zone.parse().map_err(|_| invalid(format!("unknown time zone `{}`", c.time_zone)))?;
        let windows = c.windows.iter().map(|w| DailyWindow::parse(&w.start, &w.end)).collect::<Result<Vec<_>, _>>().map_err(invalid)?;
        let compression = compression(c.compression, c.compression_level).map_err(invalid)?;
        Ok(Self {
            name,
            location,
            target_file_size_bytes: c.target_file_size_bytes,
            small_file_bytes: c.small_file_bytes,
            min_files_per_bin: c.min_files_per_bin.max(2) as usize,
            active_window: c.skip_active_partitions.then(|| Duration::from_secs(c.active_window_secs)),
            max_bytes_per_run: c.max_bytes_per_run,
            max_bytes_per_commit: c.max_bytes_per_commit,
            max_concurrent_rewrites: c.max_concurrent_rewrites.max(1) as usize,
            sort_by: c.sort_by.clone(),
            compression,
            vacuum: c.vacuum.clone(),
            checkpoint_interval_commits: c.checkpoint_interval_commits.max(1),
            schedule,
            time_zone,
            windows,
            trigger_small_files_per_partition: c.triggers.small_files_per_partition,
            trigger_small_files_total: c.triggers.small_files_total,
            hive: None,
            hive_grace_period: Duration::from_secs(c.hive_grace_period_secs),
        })
    }

    /// Resolves every policy of a configuration.
    pub fn all(config: &Config) -> Result<Vec<Policy>, CompactError> {
        let warehouse = Warehouse::from_config(&config.storage)?;
        config.compaction.tables.iter().map(|c| Self::resolve(config, &warehouse, c)).collect()
    }

    fn resolve(config: &Config, warehouse: &Warehouse, c: &CompactionPolicyConfig) -> Result<Policy, CompactError> {
        match (&c.pipeline, &c.location) {
            (Some(p), _) => {
                let pipeline = config.pipelines.iter().find(|x| &x.name == p).ok_or_else(|| CompactError::UnknownTable(p.clone()))?;
                let t = &pipeline.table;
                let location = warehouse.table_location(&t.database, &t.name, t.location.as_deref(), &config.storage)?;
                let mut policy = Self::from_parts(p.clone(), location, c)?;
                policy.hive = hive_table(config, pipeline)?;
                Ok(policy)
            }
            (None, Some(l)) => {
                let location = warehouse.table_location("", "", Some(l), &config.storage)?;
                Self::from_parts(location.display.clone(), location, c)
            }
            (None, None) => Err(CompactError::Policy { table: "?".into(), reason: "set either `pipeline` or `location`".into() }),
        }
    }

    /// The policy for `table` as named on the command line: a policy's
    /// pipeline name or location, a pipeline without a policy (defaults), or
    /// any table location (defaults).
    pub fn find(config: &Config, table: &str) -> Result<Policy, CompactError> {
        let warehouse = Warehouse::from_config(&config.storage)?;
        let wanted = warehouse.table_location("", "", Some(table), &config.storage).ok().map(|l| l.display);
        for c in &config.compaction.tables {
            let p = Self::resolve(config, &warehouse, c)?;
            if p.name == table || Some(&p.location.display) == wanted.as_ref() {
                return Ok(p);
            }
        }
        if let Some(pipeline) = config.pipelines.iter().find(|p| p.name == table) {
            let t = &pipeline.table;
            let location = warehouse.table_location(&t.database, &t.name, t.location.as_deref(), &config.storage)?;
            let mut p = Self::for_location(location);
            p.name = table.to_string();
            p.hive = hive_table(config, pipeline)?;
            return Ok(p);
        }
        if table.contains('/') {
            return Ok(Self::for_location(warehouse.table_location("", "", Some(table), &config.storage)?));
        }
        Err(CompactError::UnknownTable(table.to_string()))
    }

    /// The name of the table's lease.
    pub fn lease_name(&self) -> String {
        format!("compaction:{}", self.location.display)
    }
}

/// The catalog side of a pipeline's table when it is `format: hive`.
fn hive_table(config: &Config, pipeline: &PipelineConfig) -> Result<Option<HiveTable>, CompactError> {
    if pipeline.table.format != TableFormat::Hive {
        return Ok(None);
    }
    let catalog = config.catalog.clone().ok_or_else(|| CompactError::Policy { table: pipeline.name.clone(), reason: "`format: hive` tables keep their commit log in the catalog: configure `catalog.database_url`".into() })?;
    Ok(Some(HiveTable {
        database: pipeline.table.database.clone(),
        table: pipeline.table.name.clone(),
        catalog,
        warehouse: inlet_metastore::server::warehouse_uri(config),
    }))
}
