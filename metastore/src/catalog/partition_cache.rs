//! A per-table cache of partition names and values, the input of every
//! filter, `_ps` and name-listing call. Hive's metastore re-reads them from
//! the database on each call, which is what makes filter calls on tables
//! with thousands of partitions slow. The cache is checked against the
//! table row's `part_gen`, which every transaction that adds, drops or
//! renames partitions bumps, so it is exact across metastore replicas
//! sharing one database: a stale entry is never used, only replaced.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

/// Partitions cached across all tables; past this the least recently used
/// tables are dropped.
const MAX_PARTITIONS: usize = 2_000_000;

pub(crate) struct CachedKey {
    pub part_id: i64,
    pub part_name: String,
    pub values: Vec<String>,
}

/// One table's partitions, in name order, at one generation.
pub(crate) struct CachedKeys {
    pub generation: i64,
    pub keys: Vec<CachedKey>,
}

#[derive(Default)]
pub(crate) struct PartitionCache {
    tables: Mutex<HashMap<i64, (Arc<CachedKeys>, u64)>>,
    clock: std::sync::atomic::AtomicU64,
}

impl PartitionCache {
    /// The table's partitions when cached at exactly `generation`.
    pub fn get(&self, tbl_id: i64, generation: i64) -> Option<Arc<CachedKeys>> {
        let tick = self.clock.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tables = self.tables.lock();
        let entry = tables.get_mut(&tbl_id)?;
        if entry.0.generation != generation {
            return None;
        }
        entry.1 = tick;
        Some(entry.0.clone())
    }

    pub fn put(&self, tbl_id: i64, keys: Arc<CachedKeys>) {
        let tick = self.clock.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tables = self.tables.lock();
        // A reader that loaded an older generation must not replace a newer one.
        if tables.get(&tbl_id).is_some_and(|(k, _)| k.generation > keys.generation) {
            return;
        }
        tables.insert(tbl_id, (keys, tick));
        let mut total: usize = tables.values().map(|(k, _)| k.keys.len()).sum();
        while total > MAX_PARTITIONS && tables.len() > 1 {
            let Some((&oldest, _)) = tables.iter().filter(|(id, _)| **id != tbl_id).min_by_key(|(_, (_, t))| *t) else { break };
            if let Some((k, _)) = tables.remove(&oldest) {
                total -= k.keys.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(generation: i64, n: usize) -> Arc<CachedKeys> {
        Arc::new(CachedKeys { generation, keys: (0..n).map(|i| CachedKey { part_id: i as i64, part_name: format!("p={i}"), values: vec![i.to_string()] }).collect() })
    }

    #[test]
    fn only_the_exact_generation_is_served() {
        let c = PartitionCache::default();
        c.put(1, keys(3, 2));
        assert!(c.get(1, 3).is_some());
        assert!(c.get(1, 4).is_none(), "a newer generation in the table row means the entry is stale");
        assert!(c.get(2, 3).is_none());
        c.put(1, keys(2, 5));
        assert_eq!(c.get(1, 3).map(|k| k.keys.len()), Some(2), "an older load does not replace a newer one");
    }
}
