//! Planning: which files of which partitions are rewritten together.
//!
//! Per partition, files smaller than `small_file_bytes` are sorted by size
//! and packed greedily into bins of at most `target_file_size_bytes`; a bin
//! with fewer than `min_files_per_bin` (at least 2) files is dropped. Every
//! bin becomes one file, so each rewrite lowers the partition's file count
//! and a second run over a compacted partition finds nothing to do (no
//! partition can be rewritten forever, unlike a size-only rule: Parquet
//! sizes change on rewrite).
//!
//! Partitions the stream wrote within the active window (read from the
//! commits of that window) are skipped, so compaction does not rewrite files
//! next to an ingest that keeps adding to them.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::time::Duration;

use deltalake::DeltaTable;
use serde::Serialize;
use tracing::{debug, instrument};

use crate::policy::Policy;
use crate::CompactError;

/// A partition: its columns and values, ordered by column name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PartitionKey(pub Vec<(String, Option<String>)>);

impl PartitionKey {
    pub fn from_map(map: impl IntoIterator<Item = (String, Option<String>)>) -> Self {
        let mut v: Vec<_> = map.into_iter().collect();
        v.sort();
        Self(v)
    }

    /// Whether every `col=value` filter matches (`col=` matches null).
    pub fn matches(&self, filters: &[(String, String)]) -> bool {
        filters.iter().all(|(col, val)| {
            self.0.iter().any(|(c, v)| c == col && v.as_deref().unwrap_or("") == val)
        })
    }
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "(unpartitioned)");
        }
        for (i, (c, v)) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, "/")?;
            }
            write!(f, "{c}={}", v.as_deref().unwrap_or("__HIVE_DEFAULT_PARTITION__"))?;
        }
        Ok(())
    }
}

/// Parses `--partition col=value` filters.
pub fn parse_partition_filter(s: &str) -> Result<(String, String), String> {
    let (c, v) = s.split_once('=').ok_or_else(|| format!("`{s}`: expected column=value"))?;
    if c.is_empty() {
        return Err(format!("`{s}`: empty column name"));
    }
    Ok((c.to_string(), v.to_string()))
}

/// One data file of the table, as the log describes it.
#[derive(Debug, Clone, Serialize)]
pub struct InputFile {
    /// Path relative to the table root, decoded.
    pub path: String,
    pub size: u64,
    pub rows: Option<u64>,
    #[serde(skip)]
    pub stats: Option<String>,
    #[serde(skip)]
    pub partition_values: std::collections::HashMap<String, Option<String>>,
}

/// Files of one partition rewritten into one file.
#[derive(Debug, Clone, Serialize)]
pub struct Bin {
    pub partition: PartitionKey,
    pub files: Vec<InputFile>,
}

impl Bin {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Why a partition was left alone.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedPartition {
    pub partition: PartitionKey,
    pub reason: String,
}

/// What a run will do, decided from one snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub table: String,
    /// The snapshot version the plan was made from.
    pub version: i64,
    pub bins: Vec<Bin>,
    pub skipped: Vec<SkippedPartition>,
    /// Small files (in partitions not skipped) per partition, before packing.
    pub small_files: BTreeMap<PartitionKey, u64>,
    /// Bins left for a later run by `max_bytes_per_run`.
    pub deferred_bins: usize,
}

impl Plan {
    pub fn files_in(&self) -> u64 {
        self.bins.iter().map(|b| b.files.len() as u64).sum()
    }
    pub fn bytes_in(&self) -> u64 {
        self.bins.iter().map(Bin::bytes).sum()
    }
    /// One output file per bin.
    pub fn files_out(&self) -> u64 {
        self.bins.len() as u64
    }
    pub fn is_empty(&self) -> bool {
        self.bins.is_empty()
    }

    /// A human-readable account (what `inlet compact --dry-run` prints).
    pub fn describe(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "table {} at version {}: {} bin(s), {} input file(s), {}, {} output file(s) expected",
            self.table,
            self.version,
            self.bins.len(),
            self.files_in(),
            human_bytes(self.bytes_in()),
            self.files_out()
        );
        for (i, b) in self.bins.iter().enumerate() {
            let _ = writeln!(s, "  bin {i}: {}: {} files, {} -> 1 file", b.partition, b.files.len(), human_bytes(b.bytes()));
        }
        for sk in &self.skipped {
            let _ = writeln!(s, "  skipped {}: {}", sk.partition, sk.reason);
        }
        if self.deferred_bins > 0 {
            let _ = writeln!(s, "  {} more bin(s) left for a later run (max_bytes_per_run)", self.deferred_bins);
        }
        s
    }
}

pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{b} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// The table's files, grouped by partition. Files with deletion vectors are
/// left out (rewriting them would need the vectors applied).
pub fn files_by_partition(table: &DeltaTable) -> Result<BTreeMap<PartitionKey, Vec<InputFile>>, CompactError> {
    let snapshot = table.snapshot().map_err(|e| CompactError::delta(table, e))?;
    let mut out: BTreeMap<PartitionKey, Vec<InputFile>> = BTreeMap::new();
    for f in snapshot.log_data().iter() {
        if f.deletion_vector_descriptor().is_some() {
            continue;
        }
        let pv = f.partition_values_map();
        let file = InputFile {
            path: f.path().to_string(),
            size: f.size().max(0) as u64,
            rows: f.num_records().map(|n| n as u64),
            stats: f.stats(),
            partition_values: pv.clone(),
        };
        out.entry(PartitionKey::from_map(pv)).or_default().push(file);
    }
    Ok(out)
}

/// Partitions the stream added data to within `window`, from the table's
/// recent commits (compaction commits, which change no data, do not count).
#[instrument(skip_all, fields(window_secs = window.as_secs()))]
pub async fn active_partitions(table: &DeltaTable, window: Duration) -> Result<HashSet<PartitionKey>, CompactError> {
    let mut active = HashSet::new();
    let Some(latest) = table.version() else { return Ok(active) };
    let since = chrono::Utc::now().timestamp_millis() - window.as_millis() as i64;
    let log = table.log_store();
    let mut version = latest as i64;
    // Bounded look-back: a table committed to more than this often within
    // the window is active everywhere it wrote in its last commits anyway.
    let mut budget = 2000;
    while version >= 0 && budget > 0 {
        budget -= 1;
        let Some(bytes) = log.read_commit_entry(version as u64).await.map_err(|e| CompactError::delta(table, e))? else { break };
        let mut timestamp = None;
        let mut parts = Vec::new();
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else { continue };
            if let Some(ci) = v.get("commitInfo") {
                timestamp = ci.get("timestamp").and_then(|t| t.as_i64());
            } else if let Some(add) = v.get("add") {
                if add.get("dataChange").and_then(|d| d.as_bool()).unwrap_or(true) {
                    let pv = add.get("partitionValues").and_then(|p| p.as_object()).map(|m| {
                        m.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_string))).collect::<Vec<_>>()
                    });
                    parts.push(PartitionKey::from_map(pv.unwrap_or_default()));
                }
            }
        }
        // Without commitInfo, the file's own age is unknown: count it as recent.
        if timestamp.is_some_and(|t| t < since) {
            break;
        }
        active.extend(parts);
        version -= 1;
    }
    debug!(partitions = active.len(), "active partitions");
    Ok(active)
}

/// Plans a run over the files of `table`'s loaded snapshot.
#[instrument(skip_all, fields(table = %policy.name))]
pub async fn plan(table: &DeltaTable, policy: &Policy, filters: &[(String, String)]) -> Result<Plan, CompactError> {
    let files = files_by_partition(table)?;
    let active = match policy.active_window {
        Some(w) => active_partitions(table, w).await?,
        None => HashSet::new(),
    };
    Ok(plan_files(policy, table.version().map(|v| v as i64).unwrap_or(-1), files, &active, filters))
}

/// The pure part of planning, over files already grouped by partition.
pub fn plan_files(
    policy: &Policy,
    version: i64,
    files: BTreeMap<PartitionKey, Vec<InputFile>>,
    active: &HashSet<PartitionKey>,
    filters: &[(String, String)],
) -> Plan {
    let mut skipped = Vec::new();
    let mut small_files = BTreeMap::new();
    let mut candidates: Vec<Bin> = Vec::new();
    // With sort_by a bin is sorted in memory: keep it well inside the budget.
    let max_bin = if policy.sort_by.is_empty() { policy.target_file_size_bytes } else { policy.target_file_size_bytes.min(crate::rewrite::sorted_bin_cap()) };
    for (partition, mut files) in files {
        if !partition.matches(filters) {
            continue;
        }
        if active.contains(&partition) {
            skipped.push(SkippedPartition { partition, reason: "written by the stream within the active window".into() });
            continue;
        }
        files.retain(|f| f.size < policy.small_file_bytes);
        if files.is_empty() {
            continue;
        }
        small_files.insert(partition.clone(), files.len() as u64);
        files.sort_by(|a, b| a.size.cmp(&b.size).then_with(|| a.path.cmp(&b.path)));
        let mut current: Vec<InputFile> = Vec::new();
        let mut bytes = 0u64;
        let mut bins = Vec::new();
        for f in files {
            if !current.is_empty() && bytes + f.size > max_bin {
                bins.push(std::mem::take(&mut current));
                bytes = 0;
            }
            bytes += f.size;
            current.push(f);
        }
        if !current.is_empty() {
            bins.push(current);
        }
        for b in bins {
            if b.len() >= policy.min_files_per_bin.max(2) {
                candidates.push(Bin { partition: partition.clone(), files: b });
            }
        }
    }
    // Most files per byte first: the bins that help readers most.
    candidates.sort_by(|a, b| b.files.len().cmp(&a.files.len()).then_with(|| a.partition.cmp(&b.partition)));
    let mut bins = Vec::new();
    let mut total = 0u64;
    let mut deferred = 0;
    for b in candidates {
        if !bins.is_empty() && total + b.bytes() > policy.max_bytes_per_run {
            deferred += 1;
            continue;
        }
        total += b.bytes();
        bins.push(b);
    }
    let partitions: BTreeSet<_> = bins.iter().map(|b| b.partition.clone()).collect();
    debug!(bins = bins.len(), partitions = partitions.len(), deferred, "planned");
    Plan { table: policy.location.display.clone(), version, bins, skipped, small_files, deferred_bins: deferred }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        let loc = inlet_table::Location::parse("/tmp/t", &inlet_config::StorageConfig { warehouse: "/tmp".into(), s3: None, options: Default::default() }).unwrap();
        let mut p = Policy::for_location(loc);
        p.target_file_size_bytes = 100;
        p.small_file_bytes = 40;
        p.min_files_per_bin = 3;
        p
    }

    fn files(part: &str, sizes: &[u64]) -> (PartitionKey, Vec<InputFile>) {
        let key = PartitionKey::from_map([("dt".to_string(), Some(part.to_string()))]);
        let fs = sizes
            .iter()
            .enumerate()
            .map(|(i, s)| InputFile { path: format!("dt={part}/f{i}.parquet"), size: *s, rows: Some(1), stats: None, partition_values: Default::default() })
            .collect();
        (key, fs)
    }

    #[test]
    fn packs_small_files_into_bins_up_to_the_target() {
        let p = policy();
        let input: BTreeMap<_, _> = [files("a", &[10, 10, 10, 10, 30, 30, 30, 50, 90])].into_iter().collect();
        let plan = plan_files(&p, 1, input, &HashSet::new(), &[]);
        // Small: 10,10,10,10,30,30,30 (50 and 90 are not small). Bins: [10,10,10,10,30,30]=100, [30] dropped.
        assert_eq!(plan.bins.len(), 1);
        assert_eq!(plan.bins[0].bytes(), 100);
        assert_eq!(plan.files_in(), 6);
        assert_eq!(plan.files_out(), 1);
    }

    #[test]
    fn bins_below_the_minimum_and_single_files_are_left_alone() {
        let p = policy();
        let input: BTreeMap<_, _> = [files("a", &[10, 10]), files("b", &[35])].into_iter().collect();
        assert!(plan_files(&p, 1, input, &HashSet::new(), &[]).is_empty());
    }

    #[test]
    fn active_partitions_and_filters_are_skipped() {
        let p = policy();
        let input: BTreeMap<_, _> = [files("a", &[1, 1, 1]), files("b", &[1, 1, 1])].into_iter().collect();
        let active: HashSet<_> = [files("a", &[]).0].into_iter().collect();
        let plan = plan_files(&p, 1, input.clone(), &active, &[]);
        assert_eq!(plan.bins.len(), 1);
        assert_eq!(plan.bins[0].partition.to_string(), "dt=b");
        assert_eq!(plan.skipped.len(), 1);
        let plan = plan_files(&p, 1, input, &HashSet::new(), &[("dt".into(), "a".into())]);
        assert_eq!(plan.bins.len(), 1);
        assert_eq!(plan.bins[0].partition.to_string(), "dt=a");
    }

    #[test]
    fn max_bytes_per_run_defers_bins() {
        let mut p = policy();
        p.max_bytes_per_run = 50;
        let input: BTreeMap<_, _> = [files("a", &[10, 10, 10]), files("b", &[10, 10, 10]), files("c", &[10, 10, 10])].into_iter().collect();
        let plan = plan_files(&p, 1, input, &HashSet::new(), &[]);
        assert_eq!(plan.bins.len(), 1);
        assert_eq!(plan.deferred_bins, 2);
    }
}
