//! The Delta Lake sink: Parquet files plus one commit per flush carrying a
//! `txn` action per Kafka partition.

use std::collections::HashMap;

use deltalake::arrow::datatypes::{FieldRef, Schema, SchemaRef};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::writer::DeltaWriter;
use inlet_table::{CommitError, DeltaTable, Location, TableSpec};
use tracing::instrument;

use super::{Commit, SinkError, TableSink};

pub struct DeltaSink {
    name: String,
    location: Location,
    table: Option<DeltaTable>,
    properties: HashMap<String, String>,
    target_file_size_bytes: u64,
    query_id: String,
}

impl DeltaSink {
    pub async fn open(
        name: String,
        location: Location,
        properties: HashMap<String, String>,
        target_file_size_bytes: u64,
        query_id: String,
    ) -> Result<Self, SinkError> {
        let table = DeltaTable::open(&location).await?;
        Ok(Self { name, location, table, properties, target_file_size_bytes, query_id })
    }

    fn table(&mut self) -> Result<&mut DeltaTable, SinkError> {
        let table = self.location.display.clone();
        self.table.as_mut().ok_or(SinkError::Write { table, reason: "the table has not been created".into() })
    }

    pub fn delta(&self) -> Option<&DeltaTable> {
        self.table.as_ref()
    }
}

#[async_trait::async_trait]
impl TableSink for DeltaSink {
    fn describe(&self) -> String {
        self.location.display.clone()
    }

    fn schema(&self) -> Option<SchemaRef> {
        self.table.as_ref().and_then(|t| t.arrow_schema().ok())
    }

    async fn progress(&mut self, app_ids: &[String]) -> Result<HashMap<String, Option<i64>>, SinkError> {
        if self.table.is_none() {
            // Another process may have created it meanwhile.
            self.table = DeltaTable::open(&self.location).await?;
        }
        let mut out = HashMap::new();
        match self.table.as_mut() {
            None => {
                for id in app_ids {
                    out.insert(id.clone(), None);
                }
            }
            Some(t) => {
                t.refresh().await?;
                for id in app_ids {
                    out.insert(id.clone(), t.txn_version(id).await?);
                }
            }
        }
        Ok(out)
    }

    async fn create(&mut self, schema: SchemaRef, partition_columns: Vec<String>) -> Result<(), SinkError> {
        let spec = TableSpec { name: self.name.clone(), schema, partition_columns, properties: self.properties.clone() };
        self.table = Some(DeltaTable::open_or_create(&self.location, &spec).await?);
        Ok(())
    }

    async fn add_columns(&mut self, fields: &[FieldRef]) -> Result<(), SinkError> {
        let schema: SchemaRef = std::sync::Arc::new(Schema::new(fields.to_vec()));
        self.table()?.add_columns(&schema).await?;
        Ok(())
    }

    #[instrument(skip_all, fields(table = %self.location.display))]
    async fn write(
        &mut self,
        batch: Option<RecordBatch>,
        txns: &[(String, i64)],
        expected: &HashMap<String, Option<i64>>,
    ) -> Result<Commit, SinkError> {
        let target = self.target_file_size_bytes;
        let query_id = self.query_id.clone();
        let display = self.location.display.clone();
        let table = self.table()?;
        let mut commit = Commit::default();
        let mut adds = Vec::new();
        if let Some(batch) = batch.filter(|b| b.num_rows() > 0) {
            commit.rows = batch.num_rows();
            let mut writer = table.writer(target)?;
            writer.write(batch).await.map_err(|e| SinkError::Write { table: display.clone(), reason: e.to_string() })?;
            adds = writer.flush().await.map_err(|e| SinkError::Write { table: display.clone(), reason: e.to_string() })?;
            commit.files = adds.len();
            commit.bytes = adds.iter().map(|a| a.size as u64).sum();
        }
        match table.commit(adds, txns, expected, &query_id).await {
            Ok(v) => {
                commit.version = v;
                Ok(commit)
            }
            Err(CommitError::Fenced { app_id, expected, found }) => {
                Err(SinkError::Fenced(format!("{app_id}: expected {expected:?}, table has {found:?}")))
            }
            Err(CommitError::Table(e)) => Err(e.into()),
        }
    }
}
