//! Rewriting one bin into one Parquet file, streaming.
//!
//! Input files are read one after the other, a record batch at a time
//! (`ParquetRecordBatchStream` over the table's object store), conformed to
//! the table's current schema (columns added since a file was written are
//! filled with nulls) by a reader task that stays one batch ahead, and
//! written through an `AsyncArrowWriter` whose row group is flushed once its
//! encoded size reaches the rewrite's share of the memory budget; the output
//! goes to the store as a multipart upload. So a rewrite holds up to three
//! decoded input batches, one row group being encoded and two upload parts,
//! whatever the size of the bin. With `sort_by` the bin
//! is sorted in memory instead: such bins are capped at
//! [`SORTED_BIN_MAX_BYTES`].
//!
//! The output file's statistics are the union of the inputs' (row counts and
//! null counts add up, minimums and maximums are the extremes), checked
//! against the rows actually written: a mismatch fails the bin.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::arrow::array::{new_null_array, ArrayRef, RecordBatch};
use deltalake::arrow::compute::{cast, concat_batches, lexsort_to_indices, take_record_batch, SortColumn};
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::kernel::{Add, Remove};
// `ParquetObjectReader` is deprecated in parquet 59 in favour of readers
// written per application (arrow-rs#10308); it is still the reader that
// parquet ships for object stores, and the one delta-rs uses.
#[allow(deprecated)]
use deltalake::parquet::arrow::async_reader::ParquetObjectReader;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use deltalake::parquet::arrow::async_writer::{AsyncArrowWriter, AsyncFileWriter};
use deltalake::parquet::errors::ParquetError;
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::metadata::ParquetMetaData;
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::parquet::schema::types::ColumnPath;
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use object_store::path::Path;
use object_store::buffered::BufWriter;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, instrument};

use crate::plan::{Bin, InputFile};

/// Bins rewritten with `sort_by` are sorted in memory; their input is capped
/// at this many (compressed) bytes.
pub const SORTED_BIN_MAX_BYTES: u64 = 64 * 1024 * 1024;

pub(crate) fn sorted_bin_cap() -> u64 {
    SORTED_BIN_MAX_BYTES
}

/// Rows per decoded batch (a rewrite holds up to three: one being decoded,
/// one queued, one being encoded).
const BATCH_ROWS: usize = 32 * 1024;
/// Multipart upload part size of rewritten files (S3's minimum is 5 MiB).
const UPLOAD_PART_BYTES: usize = 8 * 1024 * 1024;

/// One memory budget for every rewrite of the process, in bytes.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    semaphore: Arc<Semaphore>,
    total_kib: u32,
}

/// A share of the budget, returned when dropped.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    pub bytes: u64,
}

impl MemoryBudget {
    pub fn new(bytes: u64) -> Self {
        let kib = (bytes / 1024).clamp(1, u32::MAX as u64 / 2) as u32;
        Self { semaphore: Arc::new(Semaphore::new(kib as usize)), total_kib: kib }
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_kib as u64 * 1024
    }

    /// Bytes not reserved right now.
    pub fn available_bytes(&self) -> u64 {
        self.semaphore.available_permits() as u64 * 1024
    }

    /// Waits until `bytes` (capped at the whole budget) are free and takes them.
    pub async fn reserve(&self, bytes: u64) -> Reservation {
        let kib = ((bytes / 1024).max(1)).min(self.total_kib as u64) as u32;
        let permit = self.semaphore.clone().acquire_many_owned(kib).await.expect("budget semaphore never closes");
        Reservation { _permit: permit, bytes: kib as u64 * 1024 }
    }
}

/// How bins are rewritten.
#[derive(Debug, Clone)]
pub struct RewriteOptions {
    /// The schema of data files: the table schema without partition columns.
    pub file_schema: SchemaRef,
    pub sort_by: Vec<String>,
    /// Budget share of one rewrite; a row group is flushed at half of it.
    pub reservation_bytes: u64,
    /// Where outputs go (relative to the table); by default the directory
    /// of the bin's inputs. Hive partitions are compacted into a new one.
    pub output_dir: Option<String>,
    /// Codec of the rewritten files (columns that do not compress are
    /// stored uncompressed whatever it is).
    pub compression: Compression,
}

/// A bin rewritten into one file, not yet committed.
#[derive(Debug, Clone)]
pub struct Rewritten {
    pub bin: Bin,
    pub add: Add,
    pub rows: u64,
}

impl Rewritten {
    pub fn bytes_out(&self) -> u64 {
        self.add.size as u64
    }

    /// The `remove` actions of the bin's inputs (`dataChange=false`).
    pub fn removes(&self) -> Vec<Remove> {
        let now = chrono::Utc::now().timestamp_millis();
        self.bin
            .files
            .iter()
            .map(|f| Remove {
                path: encode_path(&f.path),
                data_change: false,
                deletion_timestamp: Some(now),
                extended_file_metadata: Some(true),
                partition_values: Some(f.partition_values.clone()),
                size: Some(f.size as i64),
                tags: None,
                deletion_vector: None,
                base_row_id: None,
                default_row_commit_version: None,
            })
            .collect()
    }
}

/// Why a bin could not be rewritten; nothing of it is committed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("bin {partition}: {}{reason}", .file.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct BinFailure {
    pub partition: String,
    /// The input file that failed, when one did.
    pub file: Option<String>,
    pub reason: String,
}

/// A store path for a table-relative (decoded) path.
pub fn store_path(relative: &str) -> Path {
    Path::parse(relative).unwrap_or_else(|_| Path::from(relative))
}

/// The form of a path inside the Delta log: percent-encoded relative URI.
pub fn encode_path(decoded: &str) -> String {
    let mut out = String::with_capacity(decoded.len());
    for b in decoded.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'=' | b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reorders and fills `batch`'s columns to `schema` by name (missing columns
/// become nulls, types are cast where they differ, e.g. after widening).
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    if batch.schema().fields() == schema.fields() {
        return RecordBatch::try_new(schema.clone(), batch.columns().to_vec()).map_err(|e| e.to_string());
    }
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let col = match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => c.clone(),
            Some(c) => cast(c, f.data_type()).map_err(|e| format!("column `{}`: {e}", f.name()))?,
            None => new_null_array(f.data_type(), batch.num_rows()),
        };
        cols.push(col);
    }
    let opts = deltalake::arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(schema.clone(), cols, &opts).map_err(|e| e.to_string())
}

/// What the inputs say about how each column should be written.
#[derive(Debug, Default)]
struct ColumnHints {
    /// Not worth a dictionary (see [`high_cardinality_columns`]).
    plain: Vec<ColumnPath>,
    /// Not worth compressing (see [`incompressible_columns`]).
    uncompressed: Vec<ColumnPath>,
}

impl ColumnHints {
    fn from_metadata(metadata: &ParquetMetaData) -> Self {
        Self { plain: high_cardinality_columns(metadata), uncompressed: incompressible_columns(metadata) }
    }
}

fn writer_properties(compression: Compression, row_group_rows: usize, row_group_bytes: usize, hints: &ColumnHints) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(compression)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_max_row_group_bytes(Some(row_group_bytes))
        .set_created_by(format!("inlet-compactor {}", env!("CARGO_PKG_VERSION")));
    for c in &hints.plain {
        b = b.set_column_dictionary_enabled(c.clone(), false);
    }
    for c in &hints.uncompressed {
        b = b.set_column_compression(c.clone(), Compression::UNCOMPRESSED);
    }
    b.build()
}

/// Columns the input's codec could barely shrink (by less than a tenth:
/// random ids, hashes, already compressed payloads): compressing them again
/// costs CPU (snappy was a fifth of a rewrite's time in profiles) for a few
/// percent of their size.
fn incompressible_columns(metadata: &ParquetMetaData) -> Vec<ColumnPath> {
    let Some(rg) = metadata.row_groups().iter().max_by_key(|rg| rg.num_rows()) else { return Vec::new() };
    if rg.num_rows() < 1_000 {
        return Vec::new();
    }
    rg.columns()
        .iter()
        .filter(|c| c.compression() != Compression::UNCOMPRESSED && c.uncompressed_size() > 64 * 1024 && c.compressed_size() as f64 >= 0.9 * c.uncompressed_size() as f64)
        .map(|c| c.column_path().clone())
        .collect()
}

/// Columns not worth dictionary-encoding: those whose dictionary page
/// makes up most of their column chunk in an input file (nearly every value
/// distinct, as ids and URLs are). In a row group of a million rows their
/// dictionary would outgrow its page limit and fall back to plain anyway,
/// after hashing every value for nothing.
fn high_cardinality_columns(metadata: &ParquetMetaData) -> Vec<ColumnPath> {
    let Some(rg) = metadata.row_groups().iter().max_by_key(|rg| rg.num_rows()) else { return Vec::new() };
    if rg.num_rows() < 1_000 {
        return Vec::new(); // too few rows to judge
    }
    rg.columns()
        .iter()
        .filter(|c| match c.dictionary_page_offset() {
            Some(dict) if c.data_page_offset() > dict && c.compressed_size() > 0 => (c.data_page_offset() - dict) as f64 / c.compressed_size() as f64 > 0.5,
            _ => false,
        })
        .map(|c| c.column_path().clone())
        .collect()
}

/// Spark's file name infix for a codec (`part-...-c000.zstd.parquet`).
fn codec_suffix(c: Compression) -> &'static str {
    match c {
        Compression::UNCOMPRESSED => "",
        Compression::SNAPPY => ".snappy",
        Compression::GZIP(_) => ".gz",
        Compression::ZSTD(_) => ".zstd",
        Compression::LZ4_RAW => ".lz4raw",
        Compression::LZ4 => ".lz4",
        Compression::BROTLI(_) => ".br",
        Compression::LZO => ".lzo",
    }
}

/// The upload of one output file. The writer hands over each encoded row
/// group as `Bytes`; passing them to the upload as they are (rather than
/// through `AsyncWrite`, which copies into the upload's buffer) saves a copy
/// of every output byte.
struct Upload(BufWriter);

impl AsyncFileWriter for Upload {
    fn write(&mut self, bytes: Bytes) -> futures::future::BoxFuture<'_, deltalake::parquet::errors::Result<()>> {
        Box::pin(async move { self.0.put(bytes).await.map_err(|e| ParquetError::External(Box::new(e))) })
    }

    fn complete(&mut self) -> futures::future::BoxFuture<'_, deltalake::parquet::errors::Result<()>> {
        Box::pin(async move { self.0.shutdown().await.map_err(|e| ParquetError::External(Box::new(e))) })
    }
}

struct Output {
    writer: AsyncArrowWriter<Upload>,
    rows: u64,
    flush_at: usize,
}

impl Output {
    async fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.writer.write(batch).await.map_err(|e| format!("writing output: {e}"))?;
        self.rows += batch.num_rows() as u64;
        if self.writer.in_progress_size() >= self.flush_at {
            self.writer.flush().await.map_err(|e| format!("writing output: {e}"))?;
        }
        Ok(())
    }
}

/// Inputs up to this size are fetched in one read and decoded from memory;
/// larger ones are read column chunk by column chunk.
const WHOLE_FILE_READ_BYTES: u64 = 8 * 1024 * 1024;

type InputStream = futures::stream::BoxStream<'static, Result<RecordBatch, String>>;

#[allow(deprecated)]
async fn open_input(store: &Arc<dyn ObjectStore>, f: &InputFile) -> Result<InputStream, String> {
    if f.size <= WHOLE_FILE_READ_BYTES {
        // Small files are what compaction reads most: one request each
        // instead of one per column chunk.
        let bytes = store.get(&store_path(&f.path)).await.map_err(|e| e.to_string())?.bytes().await.map_err(|e| e.to_string())?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| e.to_string())?.with_batch_size(BATCH_ROWS).build().map_err(|e| e.to_string())?;
        return Ok(futures::stream::iter(reader.map(|r| r.map_err(|e| e.to_string()))).boxed());
    }
    let reader = ParquetObjectReader::new(store.clone(), store_path(&f.path)).with_file_size(f.size);
    let builder = ParquetRecordBatchStreamBuilder::new(reader).await.map_err(|e| e.to_string())?;
    Ok(builder.with_batch_size(BATCH_ROWS).build().map_err(|e| e.to_string())?.map(|r| r.map_err(|e| e.to_string())).boxed())
}

/// A task aborted when its handle goes: a failed rewrite stops its reader.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends the batches of `files`, in order and conformed to `schema`, until
/// the first error (sent with the file it came from) or until the receiver
/// is gone.
async fn read_inputs(store: Arc<dyn ObjectStore>, files: Vec<InputFile>, schema: SchemaRef, tx: tokio::sync::mpsc::Sender<Result<RecordBatch, (String, String)>>) {
    for f in &files {
        let mut stream = match open_input(&store, f).await {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Err((f.path.clone(), e))).await;
                return;
            }
        };
        while let Some(batch) = stream.next().await {
            let batch = batch.and_then(|b| conform(&b, &schema));
            let failed = batch.is_err();
            if tx.send(batch.map_err(|e| (f.path.clone(), e))).await.is_err() || failed {
                return;
            }
        }
    }
}

/// Rewrites `bin` into one new file next to its inputs. On failure the
/// partial output is deleted and the failure names the input at fault.
#[instrument(skip_all, fields(partition = %bin.partition, files = bin.files.len(), bytes = bin.bytes()))]
pub async fn rewrite_bin(store: Arc<dyn ObjectStore>, bin: Bin, options: &RewriteOptions) -> Result<Rewritten, BinFailure> {
    let partition = bin.partition.to_string();
    let fail = |file: Option<&str>, reason: String| BinFailure { partition: partition.clone(), file: file.map(str::to_string), reason };
    let dir = match &options.output_dir {
        Some(d) => format!("{}/", d.trim_end_matches('/')),
        None => bin.files[0].path.rsplit_once('/').map(|(d, _)| format!("{d}/")).unwrap_or_default(),
    };
    let relative = format!("{dir}part-00000-{}-c000{}.parquet", uuid::Uuid::new_v4(), codec_suffix(options.compression));
    let out_path = store_path(&relative);

    // The reservation covers the row group being encoded (up to a quarter),
    // its flush, and the upload: object_store's BufWriter would otherwise
    // keep up to 8 parts of 10 MiB in flight per output.
    let flush_at = (options.reservation_bytes / 4).max(1024 * 1024) as usize;
    let upload = Upload(BufWriter::with_capacity(store.clone(), out_path.clone(), UPLOAD_PART_BYTES).with_max_concurrency(2));
    let first = &bin.files[0];
    #[allow(deprecated)]
    let reader = ParquetObjectReader::new(store.clone(), store_path(&first.path)).with_file_size(first.size);
    let hints = match ParquetRecordBatchStreamBuilder::new(reader).await {
        Ok(b) => ColumnHints::from_metadata(b.metadata()),
        Err(e) => return Err(fail(Some(&first.path), e.to_string())),
    };
    let writer = AsyncArrowWriter::try_new(upload, options.file_schema.clone(), Some(writer_properties(options.compression, 1024 * 1024, flush_at, &hints)))
        .map_err(|e| fail(None, format!("opening output {relative}: {e}")))?;
    let mut out = Output { writer, rows: 0, flush_at };

    let result: Result<(), BinFailure> = async {
        // Decoding (and conforming) runs in its own task, a batch ahead of
        // encoding, so that the two overlap: with two rewrites on two cores
        // CPU use went from 165-176% to 180-186% (docs/benchmarks.md).
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let mut reader = AbortOnDrop(tokio::spawn(read_inputs(store.clone(), bin.files.clone(), options.file_schema.clone(), tx)));
        // With `sort_by` the whole bin is gathered and sorted first.
        let mut batches = Vec::new();
        while let Some(batch) = rx.recv().await {
            let batch = batch.map_err(|(file, e): (String, String)| fail(Some(&file), e))?;
            if options.sort_by.is_empty() {
                out.write(&batch).await.map_err(|e| fail(None, e))?;
            } else {
                batches.push(batch);
            }
        }
        // The channel also closes when the reader panicked: that must not
        // pass for the end of the inputs.
        (&mut reader.0).await.map_err(|e| fail(None, format!("reading the inputs failed: {e}")))?;
        if !options.sort_by.is_empty() {
            let all = concat_batches(&options.file_schema, &batches).map_err(|e| fail(None, e.to_string()))?;
            drop(batches);
            let sort: Vec<SortColumn> = options
                .sort_by
                .iter()
                .filter_map(|c| all.column_by_name(c).map(|a| SortColumn { values: a.clone(), options: None }))
                .collect();
            let sorted = if sort.is_empty() {
                all
            } else {
                let idx = lexsort_to_indices(&sort, None).map_err(|e| fail(None, format!("sorting: {e}")))?;
                take_record_batch(&all, &idx).map_err(|e| fail(None, format!("sorting: {e}")))?
            };
            let mut off = 0;
            while off < sorted.num_rows() {
                let n = BATCH_ROWS.min(sorted.num_rows() - off);
                out.write(&sorted.slice(off, n)).await.map_err(|e| fail(None, e))?;
                off += n;
            }
        }
        Ok(())
    }
    .await;

    if let Err(e) = result {
        // Dropping the writer abandons the upload; remove whatever landed.
        drop(out);
        let _ = store.delete(&out_path).await;
        return Err(e);
    }
    let rows = out.rows;
    out.writer.close().await.map_err(|e| fail(None, format!("closing output {relative}: {e}")))?;
    let size = match store.head(&out_path).await {
        Ok(meta) => meta.size,
        Err(e) => {
            let _ = store.delete(&out_path).await;
            return Err(fail(None, format!("output {relative} is not readable back: {e}")));
        }
    };

    let expected: Option<u64> = bin.files.iter().map(|f| f.rows).sum();
    if let Some(expected) = expected {
        if expected != rows {
            let _ = store.delete(&out_path).await;
            return Err(fail(None, format!("read {rows} rows but the inputs' statistics say {expected}")));
        }
    }
    let stats = merge_stats(bin.files.iter().map(|f| f.stats.as_deref()), rows);
    let add = Add {
        path: encode_path(&relative),
        partition_values: bin.files[0].partition_values.clone(),
        size: size as i64,
        modification_time: chrono::Utc::now().timestamp_millis(),
        data_change: false,
        stats: Some(stats),
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
        clustering_provider: None,
    };
    debug!(path = %relative, rows, bytes = size, "rewrote bin");
    Ok(Rewritten { bin, add, rows })
}

/// The statistics of a file holding all rows of files with `inputs` stats.
/// Columns some input has no statistics for get none (readers then never
/// skip the file on them, which is always correct).
pub fn merge_stats<'a>(inputs: impl Iterator<Item = Option<&'a str>>, rows: u64) -> String {
    let parsed: Vec<Option<Value>> = inputs.map(|s| s.and_then(|s| serde_json::from_str(s).ok())).collect();
    let mut out = Map::new();
    out.insert("numRecords".into(), Value::from(rows));
    if !parsed.is_empty() && parsed.iter().all(|p| p.is_some()) {
        let all: Vec<&Value> = parsed.iter().flatten().collect();
        let pick = |key: &str| all.iter().map(|v| v.get(key)).collect::<Option<Vec<&Value>>>();
        if let Some(mins) = pick("minValues") {
            if let Some(m) = fold(&mins, &|a, b| if cmp(b, a) == Some(std::cmp::Ordering::Less) { Some(b.clone()) } else { Some(a.clone()) }) {
                out.insert("minValues".into(), m);
            }
        }
        if let Some(maxs) = pick("maxValues") {
            if let Some(m) = fold(&maxs, &|a, b| if cmp(b, a) == Some(std::cmp::Ordering::Greater) { Some(b.clone()) } else { Some(a.clone()) }) {
                out.insert("maxValues".into(), m);
            }
        }
        if let Some(nulls) = pick("nullCount") {
            if let Some(m) = fold(&nulls, &|a, b| match (a.as_i64(), b.as_i64()) {
                (Some(x), Some(y)) => Some(Value::from(x + y)),
                _ => None,
            }) {
                out.insert("nullCount".into(), m);
            }
        }
    }
    Value::Object(out).to_string()
}

fn cmp(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
        },
        // ISO dates and timestamps (one format per column) order as text.
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Combines per-column values (nested for structs) across files; a column
/// missing in any file, or whose values cannot be combined, is dropped.
fn fold(values: &[&Value], leaf: &dyn Fn(&Value, &Value) -> Option<Value>) -> Option<Value> {
    let first = values.first()?;
    match first {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, _) in map {
                let col: Option<Vec<&Value>> = values.iter().map(|v| v.get(k)).collect();
                if let Some(col) = col {
                    if let Some(v) = fold(&col, leaf) {
                        out.insert(k.clone(), v);
                    }
                }
            }
            Some(Value::Object(out))
        }
        _ => {
            let mut acc = (*first).clone();
            for v in &values[1..] {
                if v.is_object() {
                    return None;
                }
                acc = leaf(&acc, v)?;
            }
            Some(acc)
        }
    }
}

/// Partition columns are not stored in data files: the schema files are
/// written with.
pub fn file_schema(table_schema: &SchemaRef, partition_columns: &[String]) -> SchemaRef {
    let fields: Vec<_> = table_schema.fields().iter().filter(|f| !partition_columns.contains(f.name())).cloned().collect();
    Arc::new(deltalake::arrow::datatypes::Schema::new_with_metadata(fields, HashMap::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_the_union_of_the_inputs() {
        let a = r#"{"numRecords":2,"minValues":{"id":1,"s":"b","nested":{"x":1.5}},"maxValues":{"id":5,"s":"d","nested":{"x":2.0}},"nullCount":{"id":0,"s":1,"nested":{"x":0}}}"#;
        let b = r#"{"numRecords":3,"minValues":{"id":0,"s":"c","nested":{"x":0.5}},"maxValues":{"id":9,"s":"z","nested":{"x":1.0}},"nullCount":{"id":1,"s":0,"nested":{"x":2}}}"#;
        let merged: Value = serde_json::from_str(&merge_stats([Some(a), Some(b)].into_iter(), 5)).unwrap();
        assert_eq!(merged["numRecords"], 5);
        assert_eq!(merged["minValues"]["id"], 0);
        assert_eq!(merged["minValues"]["s"], "b");
        assert_eq!(merged["minValues"]["nested"]["x"], 0.5);
        assert_eq!(merged["maxValues"]["id"], 9);
        assert_eq!(merged["maxValues"]["s"], "z");
        assert_eq!(merged["nullCount"]["s"], 1);
        assert_eq!(merged["nullCount"]["nested"]["x"], 2);
    }

    #[test]
    fn a_column_missing_from_one_input_gets_no_stats() {
        let a = r#"{"numRecords":1,"minValues":{"id":1,"new":7},"maxValues":{"id":1,"new":7},"nullCount":{"id":0,"new":0}}"#;
        let b = r#"{"numRecords":1,"minValues":{"id":2},"maxValues":{"id":2},"nullCount":{"id":0}}"#;
        let merged: Value = serde_json::from_str(&merge_stats([Some(a), Some(b)].into_iter(), 2)).unwrap();
        assert!(merged["minValues"].get("new").is_none());
        assert_eq!(merged["maxValues"]["id"], 2);
        let none: Value = serde_json::from_str(&merge_stats([Some(a), None].into_iter(), 2)).unwrap();
        assert_eq!(none, serde_json::json!({"numRecords": 2}));
    }

    #[test]
    fn log_paths_are_percent_encoded() {
        assert_eq!(encode_path("dt=2026-01-01/part-1.parquet"), "dt=2026-01-01/part-1.parquet");
        assert_eq!(encode_path("ts=2026-01-01 10:00/x.parquet"), "ts=2026-01-01%2010%3A00/x.parquet");
    }

    #[tokio::test]
    async fn the_budget_is_shared_and_returned() {
        let b = MemoryBudget::new(10 * 1024 * 1024);
        let r1 = b.reserve(6 * 1024 * 1024).await;
        assert_eq!(b.available_bytes(), 4 * 1024 * 1024);
        let b2 = b.clone();
        let waiter = tokio::spawn(async move { b2.reserve(6 * 1024 * 1024).await.bytes });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "the second reservation must wait");
        drop(r1);
        assert_eq!(waiter.await.unwrap(), 6 * 1024 * 1024);
        // More than the whole budget is capped to it rather than waiting forever.
        assert_eq!(b.reserve(u64::MAX / 2).await.bytes, 10 * 1024 * 1024);
    }
}
