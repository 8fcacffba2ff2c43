//! Moving a Hive partition to a new directory: how compaction of
//! `format: hive` tables makes its rewritten files visible. The partition's
//! location in the catalog, its statistics, its row in the table's commit
//! log and the old files' deletion schedule change in one transaction,
//! fenced by the commit log: if a writer added files to the partition (or
//! moved it) since the compaction read it, nothing changes.

use inlet_hms_thrift::hive_metastore as hms;

use super::{Actor, Catalog, CatalogError, Result};
use crate::codec::{decode_partition, encode};
use crate::model::{json, PartitionView};
use crate::names::normalize_identifier;
use crate::store::audit::{self, AuditEntry};
use crate::store::{hive, objects};

/// A partition's new home.
#[derive(Debug, Clone)]
pub struct Relocation {
    /// Hive partition name (`dt=2024-01-01/hour=03`).
    pub part_name: String,
    /// The table's commit-log key ([`hive::table_key`]).
    pub table_key: String,
    /// What the compaction read: the partition's newest commit and directory
    /// (relative to the table).
    pub expected_commit_seq: i64,
    pub expected_location: String,
    /// The new directory, relative to the table and as engines write it.
    pub new_location: String,
    pub new_location_uri: String,
    pub num_files: i64,
    pub total_size: i64,
    /// Files of the old directory (relative to the table), deleted at
    /// `delete_due_ms` when no query can still be reading them.
    pub old_files: Vec<String>,
    pub delete_due_ms: i64,
}

impl Catalog {
    /// Moves the partition; `Ok(false)` when the fence failed (the partition
    /// changed since it was read) and nothing was changed.
    pub async fn relocate_partition(&self, actor: &Actor, db: &str, table: &str, r: &Relocation) -> Result<bool> {
        let (db, table) = (normalize_identifier(db), normalize_identifier(table));
        let (trow, _) = self.table_and_row(&db, &table).await?;
        let actor = actor.clone();
        self.store()
            .transact(|c| {
                let (r, actor, db, table) = (r.clone(), actor.clone(), db.clone(), table.clone());
                let tbl_id = trow.tbl_id;
                Box::pin(async move {
                    if !hive::relocate(c, &r.table_key, &r.part_name, r.expected_commit_seq, &r.expected_location, &r.new_location, r.num_files, r.total_size).await? {
                        return Ok(false);
                    }
                    let mut row = objects::partition_by_name(c, tbl_id, &r.part_name).await?.ok_or_else(|| CatalogError::InvalidOperation(format!("partition {} of {db}.{table} does not exist", r.part_name)))?;
                    let old: hms::Partition = decode_partition(&row.object)?;
                    let mut p = old.clone();
                    if let Some(sd) = p.sd.as_mut() {
                        sd.location = Some(r.new_location_uri.clone());
                    }
                    let params = p.parameters.get_or_insert_with(Default::default);
                    params.insert("numFiles".into(), r.num_files.to_string());
                    params.insert("totalSize".into(), r.total_size.to_string());
                    row.location = Some(r.new_location_uri.clone());
                    row.object = encode(&p);
                    objects::update_partition(c, &row).await?;
                    hive::schedule_deletes(c, &r.table_key, &r.old_files, r.delete_due_ms).await?;
                    let mut e = AuditEntry::new(&actor.user, actor.via, "alter_partition", "partition", format!("{db}.{table}/{}", r.part_name));
                    e.before = Some(json(&PartitionView::new(r.part_name.clone(), &old)));
                    e.after = Some(json(&PartitionView::new(r.part_name.clone(), &p)));
                    audit::insert(c, &e).await?;
                    Ok(true)
                })
            })
            .await
    }
}
