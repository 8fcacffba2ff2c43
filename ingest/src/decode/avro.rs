//! Avro messages: raw datums read with the schema of an `.avsc` file
//! (`avro_file`), or Confluent-framed datums whose writer schema is fetched by
//! id from a schema registry (`avro_registry`).
//!
//! This module owns everything Avro in ingestion: the two wire formats, the
//! registry client and its per-id schema cache, the mapping of Avro schemas
//! to Arrow (the columns of a table created from Avro), and the conversion of
//! decoded values into Arrow columns of the table's schema.
//!
//! Each message is decoded in three steps:
//! 1. A pre-scan walks the datum's bytes with its writer schema without
//!    building anything. apache-avro trusts lengths read from the input when
//!    it allocates, recurses without a depth limit, and reads a datum that
//!    ends early as nulls; the pre-scan rejects truncated datums, trailing
//!    bytes, nesting deeper than [`MAX_DEPTH`] and arrays or maps that claim
//!    more items than the message has bytes, so no input can make decoding
//!    abort the process.
//! 2. apache-avro decodes the datum into a `Value` with the message's own
//!    writer schema. Schemas evolve: messages of one batch may have been
//!    written with different schemas, and each is read with its own.
//! 3. The value is converted, by field name, into cells for the table's
//!    columns (more columns than the message: nulls; fewer: the
//!    `on_new_fields` policy decides), and the columns are built at the end.
//!    A value that does not fit its column rejects only its message.
//!
//! Avro to Arrow:
//!
//! | Avro                                   | Arrow                               |
//! |----------------------------------------|-------------------------------------|
//! | null                                   | Utf8 (a column that is always null) |
//! | boolean, int, long, float, double      | Boolean, Int32, Int64, Float32, Float64 |
//! | bytes, fixed                           | Binary                              |
//! | string, enum, uuid                     | Utf8                                |
//! | record                                 | Struct                              |
//! | array                                  | List                                |
//! | map                                    | Utf8: the map as a JSON object      |
//! | union [null, T] (either order)         | T                                   |
//! | any other union                        | Utf8: the branch's value as text    |
//! | date                                   | Date32                              |
//! | timestamp-, local-timestamp- millis/micros/nanos | Timestamp(Microsecond, "UTC") |
//! | time-millis, time-micros               | Int32 (ms), Int64 (µs) of the day   |
//! | decimal(p ≤ 38, s)                     | Decimal128(p, s)                    |
//! | decimal(p > 38), big-decimal, duration | Utf8                                |
//! | a record that contains itself          | Utf8: the nested value as JSON      |
//!
//! Maps become JSON text rather than Arrow `Map` columns: map keys are data,
//! and a JSON column survives schema evolution and every query engine reads
//! it; a table that already has a `Map` column is still filled as a map.
//! Local timestamps are stored as if they were UTC (Delta's `timestamp_ntz`
//! needs a table feature other writers may lack). Every column is nullable.
//!
//! Text of non-string values (in Utf8 columns): strings, enums and uuids as
//! they are; bytes as UTF-8 when they are, else one character per byte (as
//! in Avro's JSON encoding); everything else as JSON, with dates, timestamps
//! and decimals as JSON strings and a union's value without its branch name.
//!
//! A datum whose writer schema is not a record becomes one column, `value`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apache_avro::schema::{Name, Namespace, RecordSchema, ResolvedSchema};
use apache_avro::types::Value;
use apache_avro::Schema as AvroSchema;
use deltalake::arrow::array::{
    new_null_array, ArrayRef, BinaryArray, BinaryViewArray, BooleanArray, Date32Array, Date64Array, Decimal128Array,
    FixedSizeBinaryArray, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, Int8Array, LargeBinaryArray,
    LargeListArray, LargeStringArray, ListArray, MapArray, StringArray, StringViewArray, StructArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray, UInt16Array,
    UInt32Array, UInt64Array, UInt8Array,
};
use deltalake::arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use deltalake::arrow::compute::concat_batches;
use deltalake::arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use deltalake::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use inlet_config::NewFieldPolicy;
use serde_json::Value as Json;

use super::json::precheck;
use super::schema::{missing_fields, storable_schema};
use super::{DecodeError, Decoded, MessageDecoder, Rejected};
use crate::buffer::RawBatch;

/// Deepest nesting of records, arrays and maps a message may have. Decoding
/// recurses per level; a limit keeps hostile or runaway recursive data from
/// overflowing the stack.
const MAX_DEPTH: usize = 64;
/// Per registry request, connecting included.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);
/// Schema references followed for one schema, all levels together.
const MAX_REFERENCES: usize = 100;
/// Decimals are rendered as text digit by digit (quadratic in their length);
/// 64 bytes is 154 digits, far beyond any real decimal.
const MAX_DECIMAL_BYTES: usize = 64;
/// Largest decimal scale rendered as text.
const MAX_SCALE: usize = 1000;

/// Decodes Avro messages, from a schema file or through a schema registry.
pub struct AvroDecoder {
    source: Source,
    configured: Option<SchemaRef>,
    policy: NewFieldPolicy,
}

enum Source {
    /// Every message is a bare datum of this schema.
    File(Arc<Writer>),
    /// Every message names its schema by registry id.
    Registry(Registry),
}

impl AvroDecoder {
    /// A decoder for bare datums written with the schema in `schema_file`.
    pub fn from_file(schema_file: &str, configured: Option<SchemaRef>, policy: NewFieldPolicy) -> Result<Self, DecodeError> {
        let fail = |reason: String| DecodeError::SchemaFile { path: schema_file.to_string(), reason };
        let text = std::fs::read_to_string(schema_file).map_err(|e| fail(e.to_string()))?;
        let writer = Writer::parse(format!("schema file {schema_file}"), &text, &[]).map_err(fail)?;
        Ok(Self { source: Source::File(Arc::new(writer)), configured, policy })
    }

    /// A decoder for Confluent-framed messages whose schemas are in the
    /// registry at `url`. No request is made until the first batch: building
    /// a pipeline must not depend on the registry being up.
    pub fn from_registry(
        url: &str,
        username: Option<String>,
        password: Option<String>,
        subject: Option<String>,
        configured: Option<SchemaRef>,
        policy: NewFieldPolicy,
    ) -> Result<Self, DecodeError> {
        let base = url.trim().trim_end_matches('/').to_string();
        let fail = |reason: &str| DecodeError::Registry { url: redact(&base), reason: reason.to_string() };
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(fail("expected an http:// or https:// URL"));
        }
        if username.is_none() && password.is_some() {
            return Err(fail("a password is set but no username"));
        }
        let registry = Registry { url: base, username, password, subject, client: None, cache: HashMap::new() };
        Ok(Self { source: Source::Registry(registry), configured, policy })
    }

    /// The writer schema of one message and its datum, or why the message
    /// cannot be decoded. `missing` remembers, for one batch, ids the registry
    /// does not know, so a batch of them costs one request per id.
    fn writer_for<'p>(
        &mut self,
        payload: &'p [u8],
        missing: &mut HashMap<u32, String>,
    ) -> Result<Result<(Arc<Writer>, &'p [u8]), String>, DecodeError> {
        match &mut self.source {
            Source::File(w) => Ok(Ok((w.clone(), payload))),
            Source::Registry(reg) => {
                let (id, datum) = match frame(payload) {
                    Ok(x) => x,
                    Err(reason) => return Ok(Err(reason)),
                };
                if let Some(reason) = missing.get(&id) {
                    return Ok(Err(reason.clone()));
                }
                Ok(match reg.writer(id)? {
                    Fetched::Found(w) => Ok((w, datum)),
                    Fetched::Unusable(reason) => Err(reason),
                    Fetched::Missing(reason) => {
                        missing.insert(id, reason.clone());
                        Err(reason)
                    }
                })
            }
        }
    }
}

impl MessageDecoder for AvroDecoder {
    fn decode(&mut self, batch: &RawBatch, schema: &SchemaRef) -> Result<Decoded, DecodeError> {
        let mut out = Decoded::default();
        let mut rows: Vec<Vec<Cell>> = Vec::new();
        let mut new_fields: Vec<FieldRef> = Vec::new();
        let mut missing_ids: HashMap<u32, String> = HashMap::new();
        // Top-level fields each writer schema has and the table lacks; one
        // schema serves many messages.
        let mut unknown: HashMap<usize, Vec<FieldRef>> = HashMap::new();
        let strict = self.policy != NewFieldPolicy::Ignore;

        for (i, m) in batch.messages.iter().enumerate() {
            let i = i as u32;
            let payload = match precheck(m, batch).map(|()| batch.payload(m)) {
                Ok(Some(p)) => p,
                Ok(None) => continue, // precheck refuses payload-less messages
                Err(reason) => {
                    out.rejected.push(Rejected { message: i, reason });
                    continue;
                }
            };
            let (writer, datum) = match self.writer_for(payload, &mut missing_ids)? {
                Ok(x) => x,
                Err(reason) => {
                    out.rejected.push(Rejected { message: i, reason });
                    continue;
                }
            };
            let value = match writer.decode(datum) {
                Ok(v) => v,
                Err(e) => {
                    out.rejected.push(Rejected { message: i, reason: format!("Avro decode failed with {}: {e}", writer.label) });
                    continue;
                }
            };
            let extra = unknown.entry(Arc::as_ptr(&writer) as usize).or_insert_with(|| missing_fields(schema, &writer.arrow));
            if !extra.is_empty() {
                match self.policy {
                    NewFieldPolicy::AddColumns => {
                        for f in extra.iter() {
                            if !new_fields.iter().any(|n| n.name() == f.name()) {
                                new_fields.push(f.clone());
                            }
                        }
                        continue;
                    }
                    NewFieldPolicy::DeadLetter => {
                        let names: Vec<&str> = extra.iter().map(|f| f.name().as_str()).collect();
                        out.rejected.push(Rejected {
                            message: i,
                            reason: format!("{} has fields that are not columns of the table: {}", writer.label, names.join(", ")),
                        });
                        continue;
                    }
                    // Dropped while converting.
                    NewFieldPolicy::Ignore => {}
                }
            }
            if !new_fields.is_empty() {
                // This pass produces no rows: the table evolves first and
                // the batch is decoded again.
                continue;
            }
            match (Converter { w: &writer, strict }).row(value, schema) {
                Ok(row) => {
                    rows.push(row);
                    out.rows.push(i);
                }
                Err(fail) => out.rejected.push(Rejected { message: i, reason: format!("{}: {fail}", writer.label) }),
            }
        }

        if !new_fields.is_empty() {
            out.new_fields = new_fields;
            out.rows.clear();
            return Ok(out);
        }
        if rows.is_empty() {
            return Ok(out);
        }
        match build_batch(schema, &rows) {
            Ok(rb) => out.batch = Some(rb),
            Err(_) => {
                // Every cell was checked against its column, so this is not
                // expected; isolate the rows at fault rather than failing
                // the batch (and its retries) for good.
                let mut good = Vec::new();
                let mut good_rows = Vec::new();
                for (row, &message) in rows.iter().zip(&out.rows) {
                    match build_batch(schema, std::slice::from_ref(row)) {
                        Ok(rb) => {
                            good.push(rb);
                            good_rows.push(message);
                        }
                        Err(e) => out.rejected.push(Rejected { message, reason: format!("cannot build Arrow row: {e}") }),
                    }
                }
                out.rejected.sort_by_key(|r| r.message);
                out.rows = good_rows;
                if !good.is_empty() {
                    out.batch = Some(concat_batches(schema, &good).map_err(|e| DecodeError::Schema(e.to_string()))?);
                }
            }
        }
        Ok(out)
    }

    fn initial_schema(&mut self, batch: &RawBatch) -> Result<Option<SchemaRef>, DecodeError> {
        if let Some(s) = &self.configured {
            return Ok(Some(s.clone()));
        }
        let reg = match &mut self.source {
            Source::File(w) => return Ok(Some(w.arrow.clone())),
            Source::Registry(reg) => reg,
        };
        if let Some(subject) = reg.subject.clone() {
            match reg.get(&format!("/subjects/{}/versions/latest", encode_segment(&subject)))? {
                Some(body) => {
                    let id = body.get("id").and_then(Json::as_u64).and_then(|x| u32::try_from(x).ok());
                    let label = match id {
                        Some(id) => format!("schema id {id}"),
                        None => format!("latest schema of subject {subject}"),
                    };
                    match reg.writer_from(label, &body)? {
                        Fetched::Found(w) => {
                            if let Some(id) = id {
                                reg.cache.insert(id, Ok(w.clone()));
                            }
                            return Ok(Some(w.arrow.clone()));
                        }
                        Fetched::Unusable(reason) | Fetched::Missing(reason) => {
                            tracing::warn!(%subject, %reason, "latest schema of the subject cannot be used; taking the schema of the first message")
                        }
                    }
                }
                // Producers may register under another naming strategy.
                None => tracing::info!(%subject, "subject not in the schema registry; taking the schema of the first message"),
            }
        }
        for m in &batch.messages {
            let Some(payload) = precheck(m, batch).ok().and_then(|()| batch.payload(m)) else { continue };
            let Ok((id, datum)) = frame(payload) else { continue };
            if let Fetched::Found(w) = reg.writer(id)? {
                if w.decode(datum).is_ok() {
                    return Ok(Some(w.arrow.clone()));
                }
            }
        }
        Ok(None)
    }
}

/// Splits a Confluent-framed message: magic byte 0, big-endian schema id,
/// Avro datum.
fn frame(p: &[u8]) -> Result<(u32, &[u8]), String> {
    match p {
        [0, a, b, c, d, datum @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), datum)),
        [m, ..] if *m != 0 => Err(format!(
            "unknown magic byte {m:#04x}: not in the Confluent wire format (magic byte 0, 4-byte schema id, Avro datum)"
        )),
        _ => Err(format!(
            "message of {} bytes is too short for the Confluent wire format (magic byte 0 and a 4-byte schema id)",
            p.len()
        )),
    }
}

// ---------------------------------------------------------------------------
// Writer schemas
// ---------------------------------------------------------------------------

/// One writer schema, ready to decode with.
struct Writer {
    /// How rejection reasons name it: `schema id 7`, `schema file x.avsc`.
    label: String,
    schema: AvroSchema,
    /// Schemas `schema` refers to (Confluent schema references).
    references: Vec<AvroSchema>,
    /// Every named type (record, enum, fixed) by full name, to follow `Ref`s.
    names: HashMap<Name, AvroSchema>,
    /// The table columns this schema maps to.
    arrow: SchemaRef,
}

impl Writer {
    fn parse(label: String, text: &str, references: &[String]) -> Result<Writer, String> {
        let text = without_fixed_uuid(text)?;
        let (schema, references) = if references.is_empty() {
            (AvroSchema::parse_str(&text).map_err(|e| e.to_string())?, Vec::new())
        } else {
            let refs = references.iter().map(|r| without_fixed_uuid(r)).collect::<Result<Vec<_>, _>>()?;
            AvroSchema::parse_str_with_list(&text, &refs).map_err(|e| e.to_string())?
        };
        Self::new(label, schema, references)
    }

    fn new(label: String, schema: AvroSchema, references: Vec<AvroSchema>) -> Result<Writer, String> {
        // apache-avro resolves names again for every datum; find out once,
        // here, whether it can.
        let all: Vec<&AvroSchema> = std::iter::once(&schema).chain(&references).collect();
        ResolvedSchema::try_from(all).map_err(|e| e.to_string())?;
        let mut names = HashMap::new();
        collect_names(&schema, &None, &mut names);
        for r in &references {
            collect_names(r, &None, &mut names);
        }
        let mut w = Writer { label, schema, references, names, arrow: Arc::new(Schema::empty()) };
        w.arrow = Arc::new(storable_schema(&w.table_schema()));
        Ok(w)
    }

    fn named(&self, name: &Name) -> Result<&AvroSchema, String> {
        if let Some(s) = self.names.get(name) {
            return Ok(s);
        }
        // The parser qualifies references fully; accept a bare name when it
        // is unambiguous all the same.
        let mut hits = self.names.iter().filter(|(n, _)| n.name == name.name);
        match (hits.next(), hits.next()) {
            (Some((_, s)), None) => Ok(s),
            _ => Err(format!("unknown named type {}", name.fullname(None))),
        }
    }

    /// `s`, or the named type it refers to.
    fn deref<'a>(&'a self, s: &'a AvroSchema) -> Result<&'a AvroSchema, String> {
        match s {
            AvroSchema::Ref { name } => self.named(name),
            s => Ok(s),
        }
    }

    fn table_schema(&self) -> Schema {
        let mut visiting = Vec::new();
        match self.deref(&self.schema) {
            Ok(AvroSchema::Record(r)) => {
                visiting.push(r.name.clone());
                let fields: Vec<Field> =
                    r.fields.iter().map(|f| Field::new(&f.name, self.arrow_type(&f.schema, &mut visiting, 1), true)).collect();
                Schema::new(fields)
            }
            _ => Schema::new(vec![Field::new("value", self.arrow_type(&self.schema, &mut visiting, 0), true)]),
        }
    }

    /// The Arrow type of an Avro schema (see the module documentation).
    /// `visiting` holds the records being mapped: a record inside itself
    /// has no finite Arrow type and becomes JSON text.
    fn arrow_type(&self, s: &AvroSchema, visiting: &mut Vec<Name>, depth: usize) -> DataType {
        if depth > MAX_DEPTH {
            return DataType::Utf8;
        }
        match s {
            AvroSchema::Null => DataType::Null,
            AvroSchema::Boolean => DataType::Boolean,
            AvroSchema::Int | AvroSchema::TimeMillis => DataType::Int32,
            AvroSchema::Long | AvroSchema::TimeMicros => DataType::Int64,
            AvroSchema::Float => DataType::Float32,
            AvroSchema::Double => DataType::Float64,
            AvroSchema::Bytes | AvroSchema::Fixed(_) => DataType::Binary,
            AvroSchema::String
            | AvroSchema::Enum(_)
            | AvroSchema::Uuid
            | AvroSchema::BigDecimal
            | AvroSchema::Duration
            | AvroSchema::Map(_) => DataType::Utf8,
            AvroSchema::Date => DataType::Date32,
            AvroSchema::TimestampMillis
            | AvroSchema::TimestampMicros
            | AvroSchema::TimestampNanos
            | AvroSchema::LocalTimestampMillis
            | AvroSchema::LocalTimestampMicros
            | AvroSchema::LocalTimestampNanos => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            AvroSchema::Decimal(d) => match (u8::try_from(d.precision), i8::try_from(d.scale)) {
                (Ok(p), Ok(sc)) if (1..=38).contains(&p) && d.scale <= d.precision => DataType::Decimal128(p, sc),
                _ => DataType::Utf8,
            },
            AvroSchema::Array(a) => {
                DataType::List(Arc::new(Field::new("item", self.arrow_type(&a.items, visiting, depth + 1), true)))
            }
            AvroSchema::Union(u) => {
                let branches: Vec<&AvroSchema> = u.variants().iter().filter(|v| !matches!(v, AvroSchema::Null)).collect();
                match branches.as_slice() {
                    [] => DataType::Null,
                    [one] => self.arrow_type(one, visiting, depth),
                    _ => DataType::Utf8,
                }
            }
            AvroSchema::Record(r) => {
                if visiting.contains(&r.name) {
                    return DataType::Utf8;
                }
                visiting.push(r.name.clone());
                let fields: Vec<Field> =
                    r.fields.iter().map(|f| Field::new(&f.name, self.arrow_type(&f.schema, visiting, depth + 1), true)).collect();
                visiting.pop();
                DataType::Struct(Fields::from(fields))
            }
            AvroSchema::Ref { name } => match self.named(name) {
                Ok(t) => self.arrow_type(t, visiting, depth),
                Err(_) => DataType::Utf8,
            },
        }
    }

    /// Decodes one datum (pre-scan, then apache-avro; see the module
    /// documentation).
    fn decode(&self, datum: &[u8]) -> Result<Value, String> {
        let mut rest = datum;
        let mut budget = datum.len();
        self.skip(&self.schema, &mut rest, 0, &mut budget)?;
        if !rest.is_empty() {
            return Err(format!("{} bytes left over after the datum (wrong schema, or not a single datum)", rest.len()));
        }
        let mut reader = datum;
        let schemata: Vec<&AvroSchema> = std::iter::once(&self.schema).chain(&self.references).collect();
        apache_avro::from_avro_datum_schemata(&self.schema, schemata, &mut reader, None).map_err(|e| e.to_string())
    }

    /// Steps over one value of schema `s` in `r`, exactly as apache-avro
    /// would read it, checking every length against the bytes left.
    /// `budget` bounds the array and map items of the whole datum by its
    /// size, so that no count read from the input can drive an allocation.
    fn skip(&self, s: &AvroSchema, r: &mut &[u8], depth: usize, budget: &mut usize) -> Result<(), String> {
        match s {
            AvroSchema::Null => Ok(()),
            AvroSchema::Boolean => match take(r, 1)? {
                [0] | [1] => Ok(()),
                b => Err(format!("invalid boolean byte {b:?}")),
            },
            AvroSchema::Int | AvroSchema::Date | AvroSchema::TimeMillis => {
                let v = varint(r)?;
                i32::try_from(v).map(drop).map_err(|_| format!("int {v} out of range"))
            }
            AvroSchema::Long
            | AvroSchema::TimeMicros
            | AvroSchema::TimestampMillis
            | AvroSchema::TimestampMicros
            | AvroSchema::TimestampNanos
            | AvroSchema::LocalTimestampMillis
            | AvroSchema::LocalTimestampMicros
            | AvroSchema::LocalTimestampNanos => varint(r).map(drop),
            AvroSchema::Float => take(r, 4).map(drop),
            AvroSchema::Double => take(r, 8).map(drop),
            AvroSchema::Duration => take(r, 12).map(drop),
            AvroSchema::Bytes | AvroSchema::String | AvroSchema::Uuid => {
                let n = length(r)?;
                take(r, n).map(drop)
            }
            AvroSchema::BigDecimal => {
                let n = length(r)?;
                let mut inner = take(r, n)?;
                let digits = length(&mut inner)?;
                take(&mut inner, digits)?;
                let scale = varint(&mut inner)?;
                if scale.unsigned_abs() > MAX_SCALE as u64 {
                    return Err(format!("big-decimal scale {scale} out of range"));
                }
                Ok(())
            }
            AvroSchema::Fixed(f) => take(r, f.size).map(drop),
            AvroSchema::Decimal(d) => match self.deref(&d.inner)? {
                AvroSchema::Fixed(f) => take(r, f.size).map(drop),
                AvroSchema::Bytes => {
                    let n = length(r)?;
                    take(r, n).map(drop)
                }
                _ => Err("decimal is neither bytes nor fixed".to_string()),
            },
            AvroSchema::Enum(e) => {
                let i = varint(r)?;
                if i < 0 || i >= e.symbols.len() as i64 {
                    return Err(format!("enum index {i} out of range (the enum has {} symbols)", e.symbols.len()));
                }
                Ok(())
            }
            AvroSchema::Union(u) => {
                let i = varint(r)?;
                let branch = usize::try_from(i)
                    .ok()
                    .and_then(|i| u.variants().get(i))
                    .ok_or_else(|| format!("union branch {i} out of range (the union has {} branches)", u.variants().len()))?;
                self.skip(branch, r, depth, budget)
            }
            AvroSchema::Array(a) => {
                deeper(depth)?;
                loop {
                    let n = block(r, budget)?;
                    if n == 0 {
                        return Ok(());
                    }
                    for _ in 0..n {
                        self.skip(&a.items, r, depth + 1, budget)?;
                    }
                }
            }
            AvroSchema::Map(m) => {
                deeper(depth)?;
                loop {
                    let n = block(r, budget)?;
                    if n == 0 {
                        return Ok(());
                    }
                    for _ in 0..n {
                        let k = length(r)?;
                        take(r, k)?;
                        self.skip(&m.types, r, depth + 1, budget)?;
                    }
                }
            }
            AvroSchema::Record(rec) => {
                deeper(depth)?;
                for f in &rec.fields {
                    self.skip(&f.schema, r, depth + 1, budget)?;
                }
                Ok(())
            }
            // Named types are records, enums and fixed: records count depth.
            AvroSchema::Ref { name } => self.skip(self.named(name)?, r, depth, budget),
        }
    }
}

fn deeper(depth: usize) -> Result<(), String> {
    if depth >= MAX_DEPTH {
        return Err(format!("value nested more than {MAX_DEPTH} levels deep"));
    }
    Ok(())
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if n > r.len() {
        return Err(format!("datum is truncated: {n} more bytes needed, {} left", r.len()));
    }
    let (head, tail) = r.split_at(n);
    *r = tail;
    Ok(head)
}

/// A zig-zag varint, read as apache-avro reads it (at most 10 bytes).
fn varint(r: &mut &[u8]) -> Result<i64, String> {
    let mut z: u64 = 0;
    for j in 0..10u32 {
        let Some((&b, rest)) = r.split_first() else {
            return Err("datum is truncated inside a number".to_string());
        };
        *r = rest;
        z |= u64::from(b & 0x7f) << (j * 7);
        if b & 0x80 == 0 {
            return Ok(if z & 1 == 0 { (z >> 1) as i64 } else { !(z >> 1) as i64 });
        }
    }
    Err("number longer than 10 bytes".to_string())
}

/// A length of bytes or a string, which must fit in what is left.
fn length(r: &mut &[u8]) -> Result<usize, String> {
    let n = varint(r)?;
    match usize::try_from(n) {
        Ok(n) if n <= r.len() => Ok(n),
        Ok(n) => Err(format!("datum is truncated: length {n} but {} bytes left", r.len())),
        Err(_) => Err(format!("negative length {n}")),
    }
}

/// The item count of an array or map block (0 ends the value).
fn block(r: &mut &[u8], budget: &mut usize) -> Result<usize, String> {
    let n = varint(r)?;
    let n = if n < 0 {
        // A negative count is followed by the block's size in bytes.
        varint(r)?;
        n.checked_neg().ok_or_else(|| format!("invalid block count {n}"))?
    } else {
        n
    };
    let n = usize::try_from(n).map_err(|_| format!("invalid block count {n}"))?;
    *budget = budget.checked_sub(n).ok_or_else(|| format!("array or map of {n} items is larger than the message"))?;
    Ok(n)
}

fn collect_names(s: &AvroSchema, ns: &Namespace, out: &mut HashMap<Name, AvroSchema>) {
    match s {
        AvroSchema::Array(a) => collect_names(&a.items, ns, out),
        AvroSchema::Map(m) => collect_names(&m.types, ns, out),
        AvroSchema::Union(u) => {
            for v in u.variants() {
                collect_names(v, ns, out);
            }
        }
        AvroSchema::Decimal(d) => collect_names(&d.inner, ns, out),
        AvroSchema::Enum(e) => {
            out.entry(e.name.fully_qualified_name(ns)).or_insert_with(|| s.clone());
        }
        AvroSchema::Fixed(f) => {
            out.entry(f.name.fully_qualified_name(ns)).or_insert_with(|| s.clone());
        }
        AvroSchema::Record(r) => {
            let full = r.name.fully_qualified_name(ns);
            if out.contains_key(&full) {
                return;
            }
            let inner = full.namespace.clone();
            out.insert(full, s.clone());
            for f in &r.fields {
                collect_names(&f.schema, &inner, out);
            }
        }
        _ => {}
    }
}

/// apache-avro 0.20 turns `fixed(16)` with logical type `uuid` into its
/// string-based uuid and then reads the 16 raw bytes as a length-prefixed
/// string, misreading every such message. Dropping the logical type keeps
/// the bytes (a Binary column) and reads them right.
fn without_fixed_uuid(text: &str) -> Result<String, String> {
    fn strip(v: &mut Json) {
        match v {
            Json::Object(o) => {
                if o.get("type").and_then(Json::as_str) == Some("fixed") && o.get("logicalType").and_then(Json::as_str) == Some("uuid") {
                    o.remove("logicalType");
                }
                o.values_mut().for_each(strip);
            }
            Json::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v: Json = serde_json::from_str(text).map_err(|e| format!("not a JSON Avro schema: {e}"))?;
    strip(&mut v);
    Ok(v.to_string())
}

// ---------------------------------------------------------------------------
// Schema registry
// ---------------------------------------------------------------------------

/// A Confluent-compatible schema registry.
struct Registry {
    /// Base URL, without a trailing slash.
    url: String,
    username: Option<String>,
    password: Option<String>,
    subject: Option<String>,
    /// Built on first use: constructing a decoder does no I/O.
    client: Option<reqwest::blocking::Client>,
    /// Schemas by id, and ids whose schema cannot be used here (not Avro,
    /// unparsable): what an id names never changes.
    cache: HashMap<u32, Result<Arc<Writer>, String>>,
}

enum Fetched {
    Found(Arc<Writer>),
    /// The schema exists but cannot be used; stays so.
    Unusable(String),
    /// The registry does not know it (yet: a replica may lag); not cached.
    Missing(String),
}

impl Registry {
    fn error(&self, reason: String) -> DecodeError {
        DecodeError::Registry { url: redact(&self.url), reason }
    }

    fn writer(&mut self, id: u32) -> Result<Fetched, DecodeError> {
        match self.cache.get(&id) {
            Some(Ok(w)) => return Ok(Fetched::Found(w.clone())),
            Some(Err(reason)) => return Ok(Fetched::Unusable(reason.clone())),
            None => {}
        }
        let Some(body) = self.get(&format!("/schemas/ids/{id}"))? else {
            return Ok(Fetched::Missing(format!("schema id {id} is not in the schema registry")));
        };
        let fetched = self.writer_from(format!("schema id {id}"), &body)?;
        match &fetched {
            Fetched::Found(w) => {
                self.cache.insert(id, Ok(w.clone()));
            }
            Fetched::Unusable(reason) => {
                self.cache.insert(id, Err(reason.clone()));
            }
            Fetched::Missing(_) => {}
        }
        Ok(fetched)
    }

    /// A writer from a registry answer holding `schema` (and perhaps
    /// `schemaType` and `references`).
    fn writer_from(&mut self, label: String, body: &Json) -> Result<Fetched, DecodeError> {
        if let Some(kind) = body.get("schemaType").and_then(Json::as_str) {
            if !kind.eq_ignore_ascii_case("AVRO") {
                return Ok(Fetched::Unusable(format!("{label} is a {kind} schema, not Avro")));
            }
        }
        let Some(text) = body.get("schema").and_then(Json::as_str) else {
            return Ok(Fetched::Unusable(format!("{label}: the registry's answer has no `schema`")));
        };
        let mut seen = Vec::new();
        let mut references = Vec::new();
        if let Some(reason) = self.references(body, 0, &mut seen, &mut references)? {
            return Ok(Fetched::Missing(format!("{label}: {reason}")));
        }
        Ok(match Writer::parse(label.clone(), text, &references) {
            Ok(w) => Fetched::Found(Arc::new(w)),
            Err(e) => Fetched::Unusable(format!("{label} cannot be used: {e}")),
        })
    }

    /// Collects the schemas `body` references, depth first; returns why
    /// when one cannot be had.
    fn references(
        &mut self,
        body: &Json,
        depth: usize,
        seen: &mut Vec<(String, String)>,
        out: &mut Vec<String>,
    ) -> Result<Option<String>, DecodeError> {
        let Some(refs) = body.get("references").and_then(Json::as_array) else { return Ok(None) };
        for r in refs {
            let subject = r.get("subject").and_then(Json::as_str).map(str::to_string);
            let version = match r.get("version") {
                Some(Json::Number(n)) => Some(n.to_string()),
                Some(Json::String(s)) => Some(s.clone()),
                _ => None,
            };
            let (Some(subject), Some(version)) = (subject, version) else {
                return Ok(Some("malformed schema reference".to_string()));
            };
            let key = (subject, version);
            if seen.contains(&key) {
                continue;
            }
            if seen.len() >= MAX_REFERENCES || depth > MAX_DEPTH {
                return Ok(Some("too many schema references".to_string()));
            }
            seen.push(key.clone());
            let (subject, version) = key;
            let path = format!("/subjects/{}/versions/{}", encode_segment(&subject), encode_segment(&version));
            let Some(referenced) = self.get(&path)? else {
                return Ok(Some(format!("referenced subject {subject} version {version} is not in the schema registry")));
            };
            if let Some(reason) = self.references(&referenced, depth + 1, seen, out)? {
                return Ok(Some(reason));
            }
            match referenced.get("schema").and_then(Json::as_str) {
                Some(text) => out.push(text.to_string()),
                None => return Ok(Some(format!("referenced subject {subject} version {version} has no `schema`"))),
            }
        }
        Ok(None)
    }

    fn client(&mut self) -> Result<reqwest::blocking::Client, DecodeError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let built =
            off_runtime(|| reqwest::blocking::Client::builder().timeout(REGISTRY_TIMEOUT).connect_timeout(REGISTRY_TIMEOUT).build());
        let client = built.map_err(|e| self.error(format!("cannot build an HTTP client: {}", chain(&e.without_url()))))?;
        self.client = Some(client.clone());
        Ok(client)
    }

    /// GETs `path` below the registry URL: the JSON answer, None for 404,
    /// an error for anything else (retried by the pipeline).
    fn get(&mut self, path: &str) -> Result<Option<Json>, DecodeError> {
        let client = self.client()?;
        let url = format!("{}{path}", self.url);
        let (user, password) = (self.username.as_deref(), self.password.as_deref());
        let answer = off_runtime(|| {
            let mut req = client
                .get(&url)
                .header(reqwest::header::ACCEPT, "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json");
            if let Some(user) = user {
                req = req.basic_auth(user, password);
            }
            let resp = req.send().map_err(|e| chain(&e.without_url()))?;
            let status = resp.status().as_u16();
            let body = resp.text().map_err(|e| chain(&e.without_url()))?;
            Ok::<_, String>((status, body))
        });
        let (status, body) = answer.map_err(|e| self.error(format!("GET {path}: {e}")))?;
        match status {
            200..=299 => serde_json::from_str(&body)
                .map(Some)
                .map_err(|e| self.error(format!("GET {path}: the answer is not JSON: {e}"))),
            404 => Ok(None),
            _ => {
                let excerpt: String = body.chars().take(300).collect();
                Err(self.error(format!("GET {path} answered HTTP {status}: {excerpt}")))
            }
        }
    }
}

/// Runs `f` on this thread, or on a scoped thread when this one is inside a
/// tokio runtime: the blocking client refuses to run there (it drives its
/// own runtime), and the decoder is meant for plain threads but must not
/// panic if a caller gets that wrong.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// An error and its causes ("connection refused" is usually a cause).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    text
}

/// `url` without credentials, for errors and logs.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let rest = &url[scheme_end..];
    let authority = rest.find('/').unwrap_or(rest.len());
    match rest[..authority].rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end], &rest[at..]),
        None => url.to_string(),
    }
}

/// Percent-encodes a URL path segment (subjects may hold any character).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Values to cells
// ---------------------------------------------------------------------------

/// One value, checked against and shaped for its column. Integers of every
/// width are `Int` (timestamps in the column's unit, dates in days).
#[derive(Debug)]
enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Dec(i128),
    Bytes(Vec<u8>),
    Str(String),
    List(Vec<Cell>),
    /// One cell per field of the column's struct type.
    Struct(Vec<Cell>),
    /// Keys and values.
    Map(Vec<Cell>, Vec<Cell>),
}

static NULL: Cell = Cell::Null;

impl Cell {
    fn is_null(&self) -> bool {
        matches!(self, Cell::Null)
    }
}

/// Why a value does not fit, and where (innermost field first).
#[derive(Debug)]
struct Fail {
    path: Vec<String>,
    msg: String,
}

impl Fail {
    fn new(msg: impl Into<String>) -> Self {
        Fail { path: Vec::new(), msg: msg.into() }
    }

    fn at(mut self, segment: &str) -> Self {
        self.path.push(segment.to_string());
        self
    }
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            return f.write_str(&self.msg);
        }
        let mut path = String::new();
        for seg in self.path.iter().rev() {
            if !path.is_empty() && !seg.starts_with('[') {
                path.push('.');
            }
            path.push_str(seg);
        }
        write!(f, "field {path}: {}", self.msg)
    }
}

fn mismatch(v: &Value, target: &DataType) -> Fail {
    Fail::new(format!("cannot store Avro {} in a column of type {target}", kind(v)))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Boolean(_) => "boolean",
        Value::Int(_) => "int",
        Value::Long(_) => "long",
        Value::Float(_) => "float",
        Value::Double(_) => "double",
        Value::Bytes(_) => "bytes",
        Value::String(_) => "string",
        Value::Fixed(..) => "fixed",
        Value::Enum(..) => "enum",
        Value::Union(..) => "union",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        Value::Record(_) => "record",
        Value::Date(_) => "date",
        Value::Decimal(_) => "decimal",
        Value::BigDecimal(_) => "big-decimal",
        Value::TimeMillis(_) => "time-millis",
        Value::TimeMicros(_) => "time-micros",
        Value::TimestampMillis(_) => "timestamp-millis",
        Value::TimestampMicros(_) => "timestamp-micros",
        Value::TimestampNanos(_) => "timestamp-nanos",
        Value::LocalTimestampMillis(_) => "local-timestamp-millis",
        Value::LocalTimestampMicros(_) => "local-timestamp-micros",
        Value::LocalTimestampNanos(_) => "local-timestamp-nanos",
        Value::Duration(_) => "duration",
        Value::Uuid(_) => "uuid",
    }
}

/// Converts the values of one writer schema into cells of table columns.
struct Converter<'a> {
    w: &'a Writer,
    /// Whether nested fields the table lacks reject the message (they
    /// cannot be added as columns) rather than being dropped.
    strict: bool,
}

impl Converter<'_> {
    /// One cell per column of `target`.
    fn row(&self, v: Value, target: &Schema) -> Result<Vec<Cell>, Fail> {
        let root = self.w.deref(&self.w.schema).map_err(Fail::new)?;
        match (v, root) {
            (Value::Record(items), AvroSchema::Record(r)) => self.record(items, r, target.fields(), true),
            (v, _) => {
                let mut v = Some(v);
                let mut out = Vec::with_capacity(target.fields().len());
                for f in target.fields().iter() {
                    let cell = match (f.name() == "value", v.take()) {
                        (true, Some(x)) => self.convert(x, &self.w.schema, f.data_type()).map_err(|e| e.at("value"))?,
                        (_, x) => {
                            v = x;
                            Cell::Null
                        }
                    };
                    if cell.is_null() && !f.is_nullable() {
                        return Err(Fail::new("is null or missing but the column is not nullable").at(f.name()));
                    }
                    out.push(cell);
                }
                Ok(out)
            }
        }
    }

    /// The cells of `fields` from a record. Top-level fields the table
    /// lacks were dealt with by the new-field policy before.
    fn record(&self, items: Vec<(String, Value)>, r: &RecordSchema, fields: &Fields, top: bool) -> Result<Vec<Cell>, Fail> {
        let mut slots: Vec<Option<Value>> = items.into_iter().map(|(_, v)| Some(v)).collect();
        let mut used = 0;
        let mut out = Vec::with_capacity(fields.len());
        for f in fields.iter() {
            let found = r.lookup.get(f.name()).and_then(|&p| Some((p, slots.get_mut(p)?.take()?)));
            let cell = match found {
                Some((p, x)) => {
                    used += 1;
                    let schema = &r.fields.get(p).ok_or_else(|| Fail::new("record field out of range").at(f.name()))?.schema;
                    self.convert(x, schema, f.data_type()).map_err(|e| e.at(f.name()))?
                }
                None => Cell::Null,
            };
            if cell.is_null() && !f.is_nullable() {
                return Err(Fail::new("is null or missing but the column is not nullable").at(f.name()));
            }
            out.push(cell);
        }
        if !top && self.strict && used < r.fields.len() {
            let extra: Vec<&str> = r.fields.iter().map(|f| f.name.as_str()).filter(|n| fields.find(n).is_none()).collect();
            if !extra.is_empty() {
                return Err(Fail::new(format!("has fields that are not in the table: {}", extra.join(", "))));
            }
        }
        Ok(out)
    }

    fn convert(&self, v: Value, s: &AvroSchema, target: &DataType) -> Result<Cell, Fail> {
        let s = self.w.deref(s).map_err(Fail::new)?;
        let v = match v {
            Value::Union(i, inner) => {
                let AvroSchema::Union(u) = s else { return Err(Fail::new("union value without a union schema")) };
                let branch = u.variants().get(i as usize).ok_or_else(|| Fail::new(format!("union branch {i} does not exist")))?;
                return self.convert(*inner, branch, target);
            }
            Value::Null => return Ok(Cell::Null),
            v => v,
        };
        match target {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(Cell::Str(self.text(v, s)?)),
            DataType::Boolean => match v {
                Value::Boolean(b) => Ok(Cell::Bool(b)),
                v => Err(mismatch(&v, target)),
            },
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => {
                let x = match v {
                    Value::Int(x) | Value::TimeMillis(x) => i64::from(x),
                    Value::Long(x) | Value::TimeMicros(x) => x,
                    v => return Err(mismatch(&v, target)),
                };
                if !int_fits(x, target) {
                    return Err(Fail::new(format!("{x} is out of range for a column of type {target}")));
                }
                Ok(Cell::Int(x))
            }
            DataType::Float32 => match v {
                Value::Float(x) => Ok(Cell::Float(f64::from(x))),
                Value::Int(x) => Ok(Cell::Float(f64::from(x))),
                Value::Long(x) => Ok(Cell::Float(x as f64)),
                v => Err(mismatch(&v, target)),
            },
            DataType::Float64 => match v {
                Value::Double(x) => Ok(Cell::Float(x)),
                Value::Float(x) => Ok(Cell::Float(f64::from(x))),
                Value::Int(x) => Ok(Cell::Float(f64::from(x))),
                Value::Long(x) => Ok(Cell::Float(x as f64)),
                v => Err(mismatch(&v, target)),
            },
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => match v {
                Value::Bytes(b) | Value::Fixed(_, b) => Ok(Cell::Bytes(b)),
                Value::String(x) => Ok(Cell::Bytes(x.into_bytes())),
                v => Err(mismatch(&v, target)),
            },
            DataType::FixedSizeBinary(n) => match v {
                Value::Bytes(b) | Value::Fixed(_, b) if usize::try_from(*n) == Ok(b.len()) => Ok(Cell::Bytes(b)),
                Value::Bytes(b) | Value::Fixed(_, b) => Err(Fail::new(format!("{} bytes do not fit a column of type {target}", b.len()))),
                v => Err(mismatch(&v, target)),
            },
            DataType::Date32 => match v {
                Value::Date(d) => Ok(Cell::Int(i64::from(d))),
                v => Err(mismatch(&v, target)),
            },
            DataType::Date64 => match v {
                Value::Date(d) => Ok(Cell::Int(i64::from(d) * 86_400_000)),
                v => Err(mismatch(&v, target)),
            },
            DataType::Timestamp(unit, _) => {
                let (x, from) = match v {
                    Value::TimestampMillis(x) | Value::LocalTimestampMillis(x) => (x, TimeUnit::Millisecond),
                    Value::TimestampMicros(x) | Value::LocalTimestampMicros(x) => (x, TimeUnit::Microsecond),
                    Value::TimestampNanos(x) | Value::LocalTimestampNanos(x) => (x, TimeUnit::Nanosecond),
                    Value::Date(d) => (i64::from(d) * 86_400, TimeUnit::Second),
                    v => return Err(mismatch(&v, target)),
                };
                rescale_time(x, &from, unit)
                    .map(Cell::Int)
                    .ok_or_else(|| Fail::new(format!("timestamp {x} is out of range for a column of type {target}")))
            }
            DataType::Decimal128(p, sc) => {
                let (unscaled, from_scale) = match v {
                    Value::Decimal(d) => {
                        let bytes = Vec::<u8>::try_from(&d).map_err(|e| Fail::new(e.to_string()))?;
                        let from_scale = match s {
                            AvroSchema::Decimal(ds) => ds.scale,
                            _ => 0,
                        };
                        let unscaled =
                            decimal_i128(&bytes).ok_or_else(|| Fail::new(format!("decimal does not fit a column of type {target}")))?;
                        (unscaled, from_scale)
                    }
                    Value::Int(x) => (i128::from(x), 0),
                    Value::Long(x) => (i128::from(x), 0),
                    v => return Err(mismatch(&v, target)),
                };
                rescale_decimal(unscaled, from_scale, *p, *sc).map(Cell::Dec).map_err(Fail::new)
            }
            DataType::Struct(fields) => match (v, s) {
                (Value::Record(items), AvroSchema::Record(r)) => Ok(Cell::Struct(self.record(items, r, fields, false)?)),
                (v, _) => Err(mismatch(&v, target)),
            },
            DataType::List(f) | DataType::LargeList(f) => match (v, s) {
                (Value::Array(items), AvroSchema::Array(a)) => {
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        let c = self.convert(item, &a.items, f.data_type()).map_err(|e| e.at("[]"))?;
                        if c.is_null() && !f.is_nullable() {
                            return Err(Fail::new("has a null item but the column's items are not nullable"));
                        }
                        out.push(c);
                    }
                    Ok(Cell::List(out))
                }
                (v, _) => Err(mismatch(&v, target)),
            },
            DataType::Map(entries, _) => match (v, s) {
                (Value::Map(m), AvroSchema::Map(ms)) => {
                    let (key_field, value_field) = match entries.data_type() {
                        DataType::Struct(kv) if kv.len() == 2 => (&kv[0], &kv[1]),
                        _ => return Err(Fail::new(format!("column type {target} is not a valid map"))),
                    };
                    if !matches!(key_field.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
                        return Err(Fail::new(format!("Avro map keys are strings; the column's keys are {}", key_field.data_type())));
                    }
                    let mut pairs: Vec<(String, Value)> = m.into_iter().collect();
                    pairs.sort_by(|a, b| a.0.cmp(&b.0));
                    let mut keys = Vec::with_capacity(pairs.len());
                    let mut values = Vec::with_capacity(pairs.len());
                    for (k, x) in pairs {
                        let c = self.convert(x, &ms.types, value_field.data_type()).map_err(|e| e.at(&format!("[{k}]")))?;
                        if c.is_null() && !value_field.is_nullable() {
                            return Err(Fail::new("has a null map value but the column's values are not nullable"));
                        }
                        keys.push(Cell::Str(k));
                        values.push(c);
                    }
                    Ok(Cell::Map(keys, values))
                }
                (v, _) => Err(mismatch(&v, target)),
            },
            _ => Err(mismatch(&v, target)),
        }
    }

    /// A value as text for a Utf8 column (rules in the module documentation).
    fn text(&self, v: Value, s: &AvroSchema) -> Result<String, Fail> {
        match v {
            Value::String(x) | Value::Enum(_, x) => Ok(x),
            Value::Uuid(u) => Ok(u.to_string()),
            Value::Bytes(b) | Value::Fixed(_, b) => Ok(String::from_utf8(b).unwrap_or_else(|e| latin1(e.as_bytes()))),
            v => Ok(match self.to_json(&v, s)? {
                Json::String(x) => x,
                j => j.to_string(),
            }),
        }
    }

    fn to_json(&self, v: &Value, s: &AvroSchema) -> Result<Json, Fail> {
        let s = self.w.deref(s).map_err(Fail::new)?;
        Ok(match v {
            Value::Null => Json::Null,
            Value::Boolean(b) => Json::Bool(*b),
            Value::Int(x) | Value::TimeMillis(x) => Json::from(*x),
            Value::Long(x) | Value::TimeMicros(x) => Json::from(*x),
            Value::Float(x) => float_json(f64::from(*x)),
            Value::Double(x) => float_json(*x),
            Value::Bytes(b) | Value::Fixed(_, b) => Json::String(latin1(b)),
            Value::String(x) | Value::Enum(_, x) => Json::String(x.clone()),
            Value::Uuid(u) => Json::String(u.to_string()),
            Value::Union(i, inner) => {
                let AvroSchema::Union(u) = s else { return Err(Fail::new("union value without a union schema")) };
                let branch = u.variants().get(*i as usize).ok_or_else(|| Fail::new(format!("union branch {i} does not exist")))?;
                self.to_json(inner, branch)?
            }
            Value::Array(items) => {
                let AvroSchema::Array(a) = s else { return Err(Fail::new("array value without an array schema")) };
                Json::Array(items.iter().map(|x| self.to_json(x, &a.items)).collect::<Result<_, _>>()?)
            }
            Value::Map(m) => {
                let AvroSchema::Map(ms) = s else { return Err(Fail::new("map value without a map schema")) };
                let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
                pairs.sort_by(|a, b| a.0.cmp(b.0));
                let mut obj = serde_json::Map::new();
                for (k, x) in pairs {
                    obj.insert(k.clone(), self.to_json(x, &ms.types)?);
                }
                Json::Object(obj)
            }
            Value::Record(items) => {
                let AvroSchema::Record(r) = s else { return Err(Fail::new("record value without a record schema")) };
                let mut obj = serde_json::Map::new();
                for ((name, x), f) in items.iter().zip(&r.fields) {
                    obj.insert(name.clone(), self.to_json(x, &f.schema)?);
                }
                Json::Object(obj)
            }
            Value::Date(d) => date_json(*d),
            Value::Decimal(d) => {
                let bytes = Vec::<u8>::try_from(d).map_err(|e| Fail::new(e.to_string()))?;
                let scale = match s {
                    AvroSchema::Decimal(ds) => ds.scale,
                    _ => 0,
                };
                Json::String(decimal_text(&bytes, scale).map_err(Fail::new)?)
            }
            Value::BigDecimal(b) => Json::String(b.to_string()),
            Value::TimestampMillis(x) => timestamp_json(*x, TimeUnit::Millisecond, true),
            Value::TimestampMicros(x) => timestamp_json(*x, TimeUnit::Microsecond, true),
            Value::TimestampNanos(x) => timestamp_json(*x, TimeUnit::Nanosecond, true),
            Value::LocalTimestampMillis(x) => timestamp_json(*x, TimeUnit::Millisecond, false),
            Value::LocalTimestampMicros(x) => timestamp_json(*x, TimeUnit::Microsecond, false),
            Value::LocalTimestampNanos(x) => timestamp_json(*x, TimeUnit::Nanosecond, false),
            Value::Duration(d) => serde_json::json!({
                "months": u32::from(d.months()),
                "days": u32::from(d.days()),
                "millis": u32::from(d.millis()),
            }),
        })
    }
}

fn int_fits(x: i64, target: &DataType) -> bool {
    match target {
        DataType::Int8 => i8::try_from(x).is_ok(),
        DataType::Int16 => i16::try_from(x).is_ok(),
        DataType::Int32 => i32::try_from(x).is_ok(),
        DataType::UInt8 => u8::try_from(x).is_ok(),
        DataType::UInt16 => u16::try_from(x).is_ok(),
        DataType::UInt32 => u32::try_from(x).is_ok(),
        DataType::UInt64 => x >= 0,
        _ => true,
    }
}

fn unit_exponent(u: &TimeUnit) -> u32 {
    match u {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

/// `x` in unit `from` as unit `to`; finer to coarser rounds down (towards
/// the past, also before 1970).
fn rescale_time(x: i64, from: &TimeUnit, to: &TimeUnit) -> Option<i64> {
    let (f, t) = (unit_exponent(from), unit_exponent(to));
    if t >= f { x.checked_mul(10i64.pow(t - f)) } else { Some(x.div_euclid(10i64.pow(f - t))) }
}

/// A big-endian two's complement integer as i128, if it fits.
fn decimal_i128(b: &[u8]) -> Option<i128> {
    let negative = b.first().is_some_and(|x| x & 0x80 != 0);
    let fill = if negative { 0xff } else { 0 };
    let (head, tail) = b.split_at(b.len().saturating_sub(16));
    if head.iter().any(|&x| x != fill) {
        return None;
    }
    if !head.is_empty() && tail.first().is_some_and(|x| (x & 0x80 != 0) != negative) {
        return None;
    }
    let mut buf = [fill; 16];
    buf[16 - tail.len()..].copy_from_slice(tail);
    Some(i128::from_be_bytes(buf))
}

/// An unscaled decimal of scale `from` as one of precision `p` and scale
/// `s`. Digits would be lost going to a smaller scale: such values are
/// refused rather than rounded.
fn rescale_decimal(v: i128, from: usize, p: u8, s: i8) -> Result<i128, String> {
    let (to, from) = (i64::from(s), i64::try_from(from).unwrap_or(i64::MAX));
    let too_big = || format!("decimal does not fit decimal({p},{s})");
    let v = if to >= from {
        let k = u32::try_from(to - from).map_err(|_| too_big())?;
        match 10i128.checked_pow(k) {
            Some(m) => v.checked_mul(m).ok_or_else(too_big)?,
            None if v == 0 => 0,
            None => return Err(too_big()),
        }
    } else {
        let k = u32::try_from(from - to).unwrap_or(u32::MAX);
        match 10i128.checked_pow(k) {
            Some(d) if v % d == 0 => v / d,
            None if v == 0 => 0,
            _ => return Err(format!("decimal has more fraction digits than decimal({p},{s}) keeps")),
        }
    };
    if let Some(limit) = 10u128.checked_pow(u32::from(p)) {
        if v.unsigned_abs() >= limit {
            return Err(too_big());
        }
    }
    Ok(v)
}

/// A big-endian two's complement decimal as text.
fn decimal_text(b: &[u8], scale: usize) -> Result<String, String> {
    if b.len() > MAX_DECIMAL_BYTES || scale > MAX_SCALE {
        return Err(format!("decimal of {} bytes and scale {scale} is too large", b.len()));
    }
    let negative = b.first().is_some_and(|x| x & 0x80 != 0);
    let mut magnitude = b.to_vec();
    if negative {
        magnitude.iter_mut().for_each(|x| *x = !*x);
        for x in magnitude.iter_mut().rev() {
            let (y, carry) = x.overflowing_add(1);
            *x = y;
            if !carry {
                break;
            }
        }
    }
    // Least significant digit first.
    let mut digits = Vec::new();
    while magnitude.iter().any(|&x| x != 0) {
        let mut rem = 0u32;
        for x in magnitude.iter_mut() {
            let cur = (rem << 8) | u32::from(*x);
            *x = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    while digits.len() <= scale {
        digits.push(b'0');
    }
    let mut out = String::with_capacity(digits.len() + 2);
    if negative {
        out.push('-');
    }
    for (i, d) in digits.iter().rev().enumerate() {
        if scale > 0 && i == digits.len() - scale {
            out.push('.');
        }
        out.push(char::from(*d));
    }
    Ok(out)
}

/// One character per byte: how Avro's JSON encoding writes bytes.
fn latin1(b: &[u8]) -> String {
    b.iter().map(|&x| char::from(x)).collect()
}

fn float_json(x: f64) -> Json {
    // JSON has no NaN or infinities.
    serde_json::Number::from_f64(x).map(Json::Number).unwrap_or_else(|| Json::String(x.to_string()))
}

fn date_json(days: i32) -> Json {
    // 719_163 days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
    match days.checked_add(719_163).and_then(chrono::NaiveDate::from_num_days_from_ce_opt) {
        Some(d) => Json::String(d.format("%Y-%m-%d").to_string()),
        None => Json::from(days),
    }
}

fn timestamp_json(x: i64, unit: TimeUnit, utc: bool) -> Json {
    let t = match unit {
        TimeUnit::Millisecond => chrono::DateTime::from_timestamp_millis(x),
        TimeUnit::Microsecond => chrono::DateTime::from_timestamp_micros(x),
        TimeUnit::Nanosecond => Some(chrono::DateTime::from_timestamp_nanos(x)),
        TimeUnit::Second => chrono::DateTime::from_timestamp(x, 0),
    };
    match t {
        Some(t) if utc => Json::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        Some(t) => Json::String(t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
        None => Json::from(x),
    }
}

// ---------------------------------------------------------------------------
// Cells to Arrow
// ---------------------------------------------------------------------------

fn build_batch(schema: &SchemaRef, rows: &[Vec<Cell>]) -> Result<RecordBatch, DecodeError> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (j, f) in schema.fields().iter().enumerate() {
        let cells: Vec<&Cell> = rows.iter().map(|r| r.get(j).unwrap_or(&NULL)).collect();
        columns.push(build(f.data_type(), &cells).map_err(|e| DecodeError::Schema(format!("column {}: {e}", f.name())))?);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    RecordBatch::try_new_with_options(schema.clone(), columns, &options).map_err(|e| DecodeError::Schema(e.to_string()))
}

fn unexpected(dt: &DataType, c: &Cell) -> String {
    format!("unexpected {c:?} for type {dt}")
}

fn ints<T: TryFrom<i64>>(dt: &DataType, cells: &[&Cell]) -> Result<Vec<Option<T>>, String> {
    cells
        .iter()
        .map(|c| match c {
            Cell::Null => Ok(None),
            Cell::Int(x) => T::try_from(*x).map(Some).map_err(|_| format!("{x} out of range for {dt}")),
            other => Err(unexpected(dt, other)),
        })
        .collect()
}

fn strs<'a>(dt: &DataType, cells: &[&'a Cell]) -> Result<Vec<Option<&'a str>>, String> {
    cells
        .iter()
        .map(|c| match c {
            Cell::Null => Ok(None),
            Cell::Str(x) => Ok(Some(x.as_str())),
            other => Err(unexpected(dt, other)),
        })
        .collect()
}

fn bins<'a>(dt: &DataType, cells: &[&'a Cell]) -> Result<Vec<Option<&'a [u8]>>, String> {
    cells
        .iter()
        .map(|c| match c {
            Cell::Null => Ok(None),
            Cell::Bytes(x) => Ok(Some(x.as_slice())),
            other => Err(unexpected(dt, other)),
        })
        .collect()
}

fn floats(dt: &DataType, cells: &[&Cell]) -> Result<Vec<Option<f64>>, String> {
    cells
        .iter()
        .map(|c| match c {
            Cell::Null => Ok(None),
            Cell::Float(x) => Ok(Some(*x)),
            other => Err(unexpected(dt, other)),
        })
        .collect()
}

fn validity(cells: &[&Cell]) -> NullBuffer {
    NullBuffer::from(cells.iter().map(|c| !c.is_null()).collect::<Vec<bool>>())
}

/// Offsets, validity and flattened children of list-like cells.
fn flatten<'a, O: TryFrom<usize>>(
    cells: &[&'a Cell],
    children: impl Fn(&'a Cell) -> Option<(&'a [Cell], &'a [Cell])>,
) -> Result<(Vec<O>, Vec<&'a Cell>, Vec<&'a Cell>), String> {
    let offset = |n: usize| O::try_from(n).map_err(|_| "list too long for its offsets".to_string());
    let mut offsets = Vec::with_capacity(cells.len() + 1);
    offsets.push(offset(0)?);
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for c in cells {
        if let Some((a, b)) = children(c) {
            first.extend(a.iter());
            second.extend(b.iter());
        }
        offsets.push(offset(first.len())?);
    }
    Ok((offsets, first, second))
}

/// One Arrow array of type `dt` from cells made for it by `Converter`.
fn build(dt: &DataType, cells: &[&Cell]) -> Result<ArrayRef, String> {
    if cells.iter().all(|c| c.is_null()) {
        return Ok(new_null_array(dt, cells.len()));
    }
    let err = |e: deltalake::arrow::error::ArrowError| e.to_string();
    let array: ArrayRef = match dt {
        DataType::Boolean => {
            let v = cells
                .iter()
                .map(|c| match c {
                    Cell::Null => Ok(None),
                    Cell::Bool(b) => Ok(Some(*b)),
                    other => Err(unexpected(dt, other)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(BooleanArray::from(v))
        }
        DataType::Int8 => Arc::new(Int8Array::from(ints::<i8>(dt, cells)?)),
        DataType::Int16 => Arc::new(Int16Array::from(ints::<i16>(dt, cells)?)),
        DataType::Int32 => Arc::new(Int32Array::from(ints::<i32>(dt, cells)?)),
        DataType::Int64 => Arc::new(Int64Array::from(ints::<i64>(dt, cells)?)),
        DataType::UInt8 => Arc::new(UInt8Array::from(ints::<u8>(dt, cells)?)),
        DataType::UInt16 => Arc::new(UInt16Array::from(ints::<u16>(dt, cells)?)),
        DataType::UInt32 => Arc::new(UInt32Array::from(ints::<u32>(dt, cells)?)),
        DataType::UInt64 => Arc::new(UInt64Array::from(ints::<u64>(dt, cells)?)),
        DataType::Float32 => {
            Arc::new(Float32Array::from(floats(dt, cells)?.into_iter().map(|x| x.map(|x| x as f32)).collect::<Vec<_>>()))
        }
        DataType::Float64 => Arc::new(Float64Array::from(floats(dt, cells)?)),
        DataType::Date32 => Arc::new(Date32Array::from(ints::<i32>(dt, cells)?)),
        DataType::Date64 => Arc::new(Date64Array::from(ints::<i64>(dt, cells)?)),
        DataType::Timestamp(unit, tz) => {
            let v = ints::<i64>(dt, cells)?;
            match unit {
                TimeUnit::Second => Arc::new(TimestampSecondArray::from(v).with_timezone_opt(tz.clone())),
                TimeUnit::Millisecond => Arc::new(TimestampMillisecondArray::from(v).with_timezone_opt(tz.clone())),
                TimeUnit::Microsecond => Arc::new(TimestampMicrosecondArray::from(v).with_timezone_opt(tz.clone())),
                TimeUnit::Nanosecond => Arc::new(TimestampNanosecondArray::from(v).with_timezone_opt(tz.clone())),
            }
        }
        DataType::Decimal128(p, s) => {
            let v = cells
                .iter()
                .map(|c| match c {
                    Cell::Null => Ok(None),
                    Cell::Dec(x) => Ok(Some(*x)),
                    other => Err(unexpected(dt, other)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(Decimal128Array::from(v).with_precision_and_scale(*p, *s).map_err(err)?)
        }
        DataType::Utf8 => Arc::new(StringArray::from(strs(dt, cells)?)),
        DataType::LargeUtf8 => Arc::new(LargeStringArray::from(strs(dt, cells)?)),
        DataType::Utf8View => Arc::new(StringViewArray::from(strs(dt, cells)?)),
        DataType::Binary => Arc::new(BinaryArray::from_iter(bins(dt, cells)?)),
        DataType::LargeBinary => Arc::new(LargeBinaryArray::from_iter(bins(dt, cells)?)),
        DataType::BinaryView => Arc::new(BinaryViewArray::from_iter(bins(dt, cells)?)),
        DataType::FixedSizeBinary(n) => {
            Arc::new(FixedSizeBinaryArray::try_from_sparse_iter_with_size(bins(dt, cells)?.into_iter(), *n).map_err(err)?)
        }
        DataType::Struct(fields) => {
            if fields.is_empty() {
                return Ok(Arc::new(StructArray::new_empty_fields(cells.len(), Some(validity(cells)))));
            }
            let mut children = Vec::with_capacity(fields.len());
            for (i, f) in fields.iter().enumerate() {
                let sub: Vec<&Cell> = cells
                    .iter()
                    .map(|c| match c {
                        Cell::Struct(v) => v.get(i).unwrap_or(&NULL),
                        _ => &NULL,
                    })
                    .collect();
                children.push(build(f.data_type(), &sub).map_err(|e| format!("{}: {e}", f.name()))?);
            }
            Arc::new(StructArray::try_new(fields.clone(), children, Some(validity(cells))).map_err(err)?)
        }
        DataType::List(f) => {
            let (offsets, items, _) = flatten::<i32>(cells, |c| match c {
                Cell::List(v) => Some((v.as_slice(), &[][..])),
                _ => None,
            })?;
            let values = build(f.data_type(), &items)?;
            Arc::new(
                ListArray::try_new(f.clone(), OffsetBuffer::new(ScalarBuffer::from(offsets)), values, Some(validity(cells)))
                    .map_err(err)?,
            )
        }
        DataType::LargeList(f) => {
            let (offsets, items, _) = flatten::<i64>(cells, |c| match c {
                Cell::List(v) => Some((v.as_slice(), &[][..])),
                _ => None,
            })?;
            let values = build(f.data_type(), &items)?;
            Arc::new(
                LargeListArray::try_new(f.clone(), OffsetBuffer::new(ScalarBuffer::from(offsets)), values, Some(validity(cells)))
                    .map_err(err)?,
            )
        }
        DataType::Map(entries, sorted) => {
            let DataType::Struct(kv) = entries.data_type() else { return Err(format!("invalid map type {dt}")) };
            if kv.len() != 2 {
                return Err(format!("invalid map type {dt}"));
            }
            let (offsets, keys, values) = flatten::<i32>(cells, |c| match c {
                Cell::Map(k, v) => Some((k.as_slice(), v.as_slice())),
                _ => None,
            })?;
            let keys = build(kv[0].data_type(), &keys)?;
            let values = build(kv[1].data_type(), &values)?;
            let entries_array = StructArray::try_new(kv.clone(), vec![keys, values], None).map_err(err)?;
            Arc::new(
                MapArray::try_new(
                    entries.clone(),
                    OffsetBuffer::new(ScalarBuffer::from(offsets)),
                    entries_array,
                    Some(validity(cells)),
                    *sorted,
                )
                .map_err(err)?,
            )
        }
        other => return Err(format!("cannot build a column of type {other}")),
    };
    Ok(array)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::TopicPartition;
    use apache_avro::to_avro_datum;
    use deltalake::arrow::array::{Array, AsArray};
    use deltalake::arrow::datatypes::{Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
    use parking_lot::Mutex;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    const V1: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
        {"name":"id","type":"long"},
        {"name":"note","type":["null","string"],"default":null},
        {"name":"customer","type":{"type":"record","name":"Customer","fields":[
            {"name":"name","type":"string"},
            {"name":"vip","type":"boolean"}]}},
        {"name":"tags","type":{"type":"array","items":"string"}},
        {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]}},
        {"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}},
        {"name":"blob","type":"bytes"}]}"#;

    /// V1 plus a field, as a compatible evolution would add it.
    const V2: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
        {"name":"id","type":"long"},
        {"name":"note","type":["null","string"],"default":null},
        {"name":"customer","type":{"type":"record","name":"Customer","fields":[
            {"name":"name","type":"string"},
            {"name":"vip","type":"boolean"}]}},
        {"name":"tags","type":{"type":"array","items":"string"}},
        {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]}},
        {"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}},
        {"name":"blob","type":"bytes"},
        {"name":"coupon","type":["null","string"],"default":null}]}"#;

    fn s(x: &str) -> Value {
        Value::String(x.to_string())
    }

    fn order_fields(id: i64, note: Option<&str>) -> Vec<(String, Value)> {
        vec![
            ("id".into(), Value::Long(id)),
            (
                "note".into(),
                match note {
                    None => Value::Union(0, Box::new(Value::Null)),
                    Some(n) => Value::Union(1, Box::new(s(n))),
                },
            ),
            ("customer".into(), Value::Record(vec![("name".into(), s("ann")), ("vip".into(), Value::Boolean(true))])),
            ("tags".into(), Value::Array(vec![s("a"), s("b")])),
            ("status".into(), Value::Enum(1, "PAID".into())),
            ("at".into(), Value::TimestampMicros(1_700_000_000_123_456)),
            ("blob".into(), Value::Bytes(vec![0, 255, 7])),
        ]
    }

    fn v1(id: i64, note: Option<&str>) -> Vec<u8> {
        encode(V1, Value::Record(order_fields(id, note)))
    }

    fn v2(id: i64, coupon: &str) -> Vec<u8> {
        let mut f = order_fields(id, None);
        f.push(("coupon".into(), Value::Union(1, Box::new(s(coupon)))));
        encode(V2, Value::Record(f))
    }

    fn encode(schema: &str, v: Value) -> Vec<u8> {
        to_avro_datum(&AvroSchema::parse_str(schema).unwrap(), v).unwrap()
    }

    fn framed(id: u32, datum: &[u8]) -> Vec<u8> {
        let mut out = vec![0];
        out.extend(id.to_be_bytes());
        out.extend_from_slice(datum);
        out
    }

    fn batch(payloads: &[Option<&[u8]>]) -> RawBatch {
        let tp = TopicPartition { topic: Arc::from("orders"), partition: 0 };
        let mut b = RawBatch::default();
        for (i, p) in payloads.iter().enumerate() {
            b.push(&tp, None, i as i64, None, *p, None, &[], 4096);
        }
        b
    }

    fn file_decoder(schema: &str, policy: NewFieldPolicy) -> (AvroDecoder, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("order.avsc");
        std::fs::write(&path, schema).unwrap();
        (AvroDecoder::from_file(path.to_str().unwrap(), None, policy).unwrap(), dir)
    }

    fn rejected(out: &Decoded) -> Vec<u32> {
        out.rejected.iter().map(|r| r.message).collect()
    }

    /// A registry answering fixed routes (anything else: 404), logging each
    /// request's path and Authorization header.
    struct TestRegistry {
        url: String,
        log: Arc<Mutex<Vec<(String, Option<String>)>>>,
    }

    impl TestRegistry {
        fn serve(routes: Vec<(String, u16, String)>) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let log = Arc::new(Mutex::new(Vec::new()));
            let seen = log.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let mut req = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&req).to_string();
                    let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
                    let auth = text
                        .lines()
                        .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                        .map(|l| l["authorization:".len()..].trim().to_string());
                    seen.lock().push((path.clone(), auth));
                    let (status, body) = routes
                        .iter()
                        .find(|(p, _, _)| *p == path)
                        .map(|(_, s, b)| (*s, b.clone()))
                        .unwrap_or((404, r#"{"error_code":40403,"message":"Schema not found"}"#.to_string()));
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            });
            TestRegistry { url, log }
        }

        fn standard() -> Self {
            let schema = |text: &str| serde_json::json!({ "schema": text }).to_string();
            Self::serve(vec![
                ("/schemas/ids/1".into(), 200, schema(V1)),
                ("/schemas/ids/2".into(), 200, schema(V2)),
                ("/schemas/ids/3".into(), 200, serde_json::json!({"schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF"}).to_string()),
                ("/schemas/ids/500".into(), 500, r#"{"error_code":50001,"message":"boom"}"#.into()),
                (
                    "/subjects/orders-value/versions/latest".into(),
                    200,
                    serde_json::json!({"subject": "orders-value", "version": 2, "id": 2, "schema": V2}).to_string(),
                ),
            ])
        }

        fn hits(&self, path: &str) -> usize {
            self.log.lock().iter().filter(|(p, _)| p == path).count()
        }

        fn decoder(&self, subject: Option<&str>, policy: NewFieldPolicy) -> AvroDecoder {
            AvroDecoder::from_registry(&self.url, Some("u".into()), Some("p".into()), subject.map(str::to_string), None, policy).unwrap()
        }
    }

    fn v1_schema() -> SchemaRef {
        let (mut d, _dir) = file_decoder(V1, NewFieldPolicy::AddColumns);
        d.initial_schema(&RawBatch::default()).unwrap().unwrap()
    }

    #[test]
    fn schema_file_maps_to_arrow() {
        let s = v1_schema();
        let types: Vec<(&str, DataType)> = s.fields().iter().map(|f| (f.name().as_str(), f.data_type().clone())).collect();
        assert_eq!(types[0], ("id", DataType::Int64));
        assert_eq!(types[1], ("note", DataType::Utf8));
        let DataType::Struct(customer) = &types[2].1 else { panic!("{types:?}") };
        assert_eq!(customer[0].data_type(), &DataType::Utf8);
        assert_eq!(customer[1].data_type(), &DataType::Boolean);
        assert!(matches!(&types[3].1, DataType::List(f) if f.data_type() == &DataType::Utf8));
        assert_eq!(types[4], ("status", DataType::Utf8));
        assert_eq!(types[5], ("at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))));
        assert_eq!(types[6], ("blob", DataType::Binary));
        assert!(s.fields().iter().all(|f| f.is_nullable()));
    }

    #[test]
    fn schema_file_errors_name_the_file() {
        let missing = AvroDecoder::from_file("/nonexistent/x.avsc", None, NewFieldPolicy::AddColumns);
        assert!(matches!(missing, Err(DecodeError::SchemaFile { ref path, .. }) if path == "/nonexistent/x.avsc"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.avsc");
        std::fs::write(&path, r#"{"type":"record","name":"X","fields":[{"name":"a","type":"nope"}]}"#).unwrap();
        match AvroDecoder::from_file(path.to_str().unwrap(), None, NewFieldPolicy::AddColumns) {
            Err(DecodeError::SchemaFile { reason, .. }) => assert!(reason.contains("nope"), "{reason}"),
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn file_datums_decode_into_columns() {
        let (mut d, _dir) = file_decoder(V1, NewFieldPolicy::AddColumns);
        let (a, b) = (v1(1, Some("hello")), v1(2, None));
        let out = d.decode(&batch(&[Some(&a), Some(&b)]), &v1_schema()).unwrap();
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        assert_eq!(out.rows, vec![0, 1]);
        let rb = out.batch.unwrap();
        assert_eq!(rb.num_rows(), 2);
        assert_eq!(&rb.column(0).as_primitive::<Int64Type>().values()[..], &[1, 2]);
        assert_eq!(rb.column(1).as_string::<i32>().value(0), "hello");
        assert!(rb.column(1).is_null(1));
        let customer = rb.column(2).as_struct();
        assert_eq!(customer.column(0).as_string::<i32>().value(1), "ann");
        assert!(customer.column(1).as_boolean().value(0));
        let tags = rb.column(3).as_list::<i32>();
        assert_eq!(tags.value(0).as_string::<i32>().iter().collect::<Vec<_>>(), vec![Some("a"), Some("b")]);
        assert_eq!(rb.column(4).as_string::<i32>().value(0), "PAID");
        assert_eq!(rb.column(5).as_primitive::<TimestampMicrosecondType>().value(0), 1_700_000_000_123_456);
        assert_eq!(rb.column(6).as_binary::<i32>().value(1), &[0, 255, 7]);
    }

    #[test]
    fn broken_file_messages_are_rejected_with_reasons() {
        let (mut d, _dir) = file_decoder(V1, NewFieldPolicy::AddColumns);
        let good = v1(1, None);
        let truncated = &good[..good.len() - 1];
        let mut trailing = good.clone();
        trailing.extend_from_slice(&[1, 2]);
        let big = vec![0u8; 5000];
        let b = batch(&[Some(&good), Some(truncated), Some(&trailing), None, Some(&big), Some(b""), Some(&good)]);
        let out = d.decode(&b, &v1_schema()).unwrap();
        assert_eq!(out.rows, vec![0, 6]);
        assert_eq!(rejected(&out), vec![1, 2, 3, 4, 5]);
        let reason = |i: usize| out.rejected[i].reason.as_str();
        assert!(reason(0).starts_with("Avro decode failed with schema file") && reason(0).contains("truncated"), "{}", reason(0));
        assert!(reason(1).contains("2 bytes left over"), "{}", reason(1));
        assert!(reason(2).contains("tombstone"), "{}", reason(2));
        assert!(reason(3).contains("exceeds"), "{}", reason(3));
        assert!(reason(4).contains("truncated"), "{}", reason(4));
    }

    #[test]
    fn table_columns_the_message_lacks_are_null_and_types_widen() {
        let (mut d, _dir) = file_decoder(V1, NewFieldPolicy::Ignore);
        let table = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Decimal128(20, 2), true),
            Field::new("status", DataType::Utf8, true),
            Field::new("absent", DataType::Int32, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]));
        let a = v1(7, None);
        let out = d.decode(&batch(&[Some(&a)]), &table).unwrap();
        let rb = out.batch.unwrap();
        assert_eq!(rb.column(0).as_primitive::<Decimal128Type>().value(0), 700);
        assert!(rb.column(2).is_null(0));
        assert_eq!(rb.column(3).as_primitive::<deltalake::arrow::datatypes::TimestampMillisecondType>().value(0), 1_700_000_000_123);
    }

    #[test]
    fn values_that_do_not_fit_reject_only_their_message() {
        let (mut d, _dir) = file_decoder(V1, NewFieldPolicy::Ignore);
        let table = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int8, true),
            Field::new("note", DataType::Utf8, false),
        ]));
        let (small, large, no_note) = (v1(5, Some("x")), v1(500, Some("x")), v1(6, None));
        let out = d.decode(&batch(&[Some(&small), Some(&large), Some(&no_note)]), &table).unwrap();
        assert_eq!(out.rows, vec![0]);
        assert_eq!(rejected(&out), vec![1, 2]);
        assert!(out.rejected[0].reason.contains("field id: 500 is out of range"), "{}", out.rejected[0].reason);
        assert!(out.rejected[1].reason.contains("field note: is null"), "{}", out.rejected[1].reason);
        let table = Arc::new(Schema::new(vec![Field::new("customer", DataType::Int64, true)]));
        let out = d.decode(&batch(&[Some(&small)]), &table).unwrap();
        assert!(out.rejected[0].reason.contains("cannot store Avro record in a column of type Int64"), "{}", out.rejected[0].reason);
    }

    #[test]
    fn other_avro_types() {
        let schema = r#"{"type":"record","name":"T","fields":[
            {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
            {"name":"huge","type":{"type":"bytes","logicalType":"decimal","precision":40,"scale":3}},
            {"name":"day","type":{"type":"int","logicalType":"date"}},
            {"name":"uid","type":{"type":"string","logicalType":"uuid"}},
            {"name":"raw_uid","type":{"type":"fixed","name":"U16","size":16,"logicalType":"uuid"}},
            {"name":"attrs","type":{"type":"map","values":"long"}},
            {"name":"either","type":["int","string"]},
            {"name":"maybe_rec","type":["null",{"type":"record","name":"Inner","fields":[{"name":"x","type":"double"}]}]},
            {"name":"ms","type":{"type":"long","logicalType":"timestamp-millis"}},
            {"name":"next","type":["null","T"],"default":null}]}"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.avsc");
        std::fs::write(&path, schema).unwrap();
        let mut d = AvroDecoder::from_file(path.to_str().unwrap(), None, NewFieldPolicy::AddColumns).unwrap();
        let table = d.initial_schema(&RawBatch::default()).unwrap().unwrap();
        let ty = |n: &str| table.field_with_name(n).unwrap().data_type().clone();
        assert_eq!(ty("price"), DataType::Decimal128(10, 2));
        assert_eq!(ty("huge"), DataType::Utf8);
        assert_eq!(ty("day"), DataType::Date32);
        assert_eq!(ty("uid"), DataType::Utf8);
        assert_eq!(ty("raw_uid"), DataType::Binary);
        assert_eq!(ty("attrs"), DataType::Utf8);
        assert_eq!(ty("either"), DataType::Utf8);
        assert!(matches!(ty("maybe_rec"), DataType::Struct(_)));
        assert_eq!(ty("next"), DataType::Utf8, "a record inside itself is JSON text");

        // Written as producers write it: a uuid on fixed(16) is 16 raw bytes.
        let parsed = AvroSchema::parse_str(&without_fixed_uuid(schema).unwrap()).unwrap();
        let uuid = apache_avro::Uuid::parse_str("67e55044-10b1-426f-9247-bb680e5fe0c8").unwrap();
        let record = |next: Value| {
            Value::Record(vec![
                ("price".into(), Value::Decimal(apache_avro::Decimal::from((-12345i64).to_be_bytes()))),
                ("huge".into(), Value::Decimal(apache_avro::Decimal::from(vec![0x01, 0x00]))),
                ("day".into(), Value::Date(19_723)),
                ("uid".into(), Value::Uuid(uuid)),
                ("raw_uid".into(), Value::Fixed(16, uuid.as_bytes().to_vec())),
                ("attrs".into(), Value::Map([("b".to_string(), Value::Long(2)), ("a".to_string(), Value::Long(1))].into())),
                ("either".into(), Value::Union(0, Box::new(Value::Int(42)))),
                ("maybe_rec".into(), Value::Union(1, Box::new(Value::Record(vec![("x".into(), Value::Double(1.5))])))),
                ("ms".into(), Value::TimestampMillis(1_000)),
                ("next".into(), next),
            ])
        };
        let mut inner = match record(Value::Union(0, Box::new(Value::Null))) {
            Value::Record(f) => f,
            _ => unreachable!(),
        };
        inner[6].1 = Value::Union(1, Box::new(s("text")));
        let outer = record(Value::Union(1, Box::new(Value::Record(inner))));
        let datum = to_avro_datum(&parsed, outer).unwrap();
        let out = d.decode(&batch(&[Some(&datum)]), &table).unwrap();
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        let rb = out.batch.unwrap();
        let col = |n: &str| rb.column(table.index_of(n).unwrap()).clone();
        assert_eq!(col("price").as_primitive::<Decimal128Type>().value(0), -12345);
        assert_eq!(col("huge").as_string::<i32>().value(0), "0.256");
        assert_eq!(col("day").as_primitive::<Date32Type>().value(0), 19_723);
        assert_eq!(col("uid").as_string::<i32>().value(0), "67e55044-10b1-426f-9247-bb680e5fe0c8");
        assert_eq!(col("raw_uid").as_binary::<i32>().value(0), uuid.as_bytes());
        assert_eq!(col("attrs").as_string::<i32>().value(0), r#"{"a":1,"b":2}"#);
        assert_eq!(col("either").as_string::<i32>().value(0), "42");
        assert_eq!(col("maybe_rec").as_struct().column(0).as_primitive::<Float64Type>().value(0), 1.5);
        let next: Json = serde_json::from_str(col("next").as_string::<i32>().value(0)).unwrap();
        assert_eq!(next["either"], Json::String("text".into()));
        assert_eq!(next["price"], Json::String("-123.45".into()));
        assert_eq!(next["day"], Json::String("2024-01-01".into()));
        assert_eq!(next["ms"], Json::String("1970-01-01T00:00:01Z".into()));
        assert_eq!(next["next"], Json::Null);
    }

    #[test]
    fn a_table_map_column_is_filled_as_a_map() {
        let schema = r#"{"type":"record","name":"M","fields":[{"name":"attrs","type":{"type":"map","values":"int"}}]}"#;
        let (mut d, _dir) = file_decoder(schema, NewFieldPolicy::AddColumns);
        let entries = Field::new(
            "key_value",
            DataType::Struct(Fields::from(vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Int32, true)])),
            false,
        );
        let table = Arc::new(Schema::new(vec![Field::new("attrs", DataType::Map(Arc::new(entries), false), true)]));
        let datum = encode(schema, Value::Record(vec![("attrs".into(), Value::Map([("k".to_string(), Value::Int(3))].into()))]));
        let rb = d.decode(&batch(&[Some(&datum)]), &table).unwrap().batch.unwrap();
        let map = rb.column(0).as_map();
        assert_eq!(map.keys().as_string::<i32>().value(0), "k");
        assert_eq!(map.values().as_primitive::<Int32Type>().value(0), 3);
    }

    #[test]
    fn random_bytes_never_panic() {
        let nested = r#"{"type":"record","name":"N","fields":[
            {"name":"a","type":{"type":"array","items":["null","N"]}},
            {"name":"m","type":{"type":"map","values":{"type":"array","items":"null"}}},
            {"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":38,"scale":4}},
            {"name":"b","type":{"type":"bytes","logicalType":"big-decimal"}},
            {"name":"u","type":{"type":"string","logicalType":"uuid"}},
            {"name":"f","type":"boolean"},
            {"name":"e","type":{"type":"enum","name":"E","symbols":["X"]}}]}"#;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for schema in [V1, nested] {
            let (mut d, _dir) = file_decoder(schema, NewFieldPolicy::AddColumns);
            let table = d.initial_schema(&RawBatch::default()).unwrap().unwrap();
            let mut payloads = Vec::new();
            for _ in 0..3000 {
                let len = (next() % 64) as usize;
                payloads.push((0..len).map(|_| next() as u8).collect::<Vec<u8>>());
            }
            // Valid prefixes followed by noise reach deeper into the schema.
            let good = v1(1, Some("x"));
            for cut in 0..good.len() {
                let mut p = good[..cut].to_vec();
                p.extend((0..8).map(|_| next() as u8));
                payloads.push(p);
            }
            let refs: Vec<Option<&[u8]>> = payloads.iter().map(|p| Some(p.as_slice())).collect();
            let b = batch(&refs);
            let out = d.decode(&b, &table).unwrap();
            assert_eq!(out.rows.len() + out.rejected.len(), payloads.len());
            if let Some(rb) = &out.batch {
                assert_eq!(rb.num_rows(), out.rows.len());
            }
        }
    }

    #[test]
    fn deep_and_oversized_data_is_rejected() {
        let schema = r#"{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}"#;
        let (mut d, _dir) = file_decoder(schema, NewFieldPolicy::AddColumns);
        let table = d.initial_schema(&RawBatch::default()).unwrap().unwrap();
        // 1000 levels of "branch 1", then null.
        let mut deep = vec![2u8; 1000];
        deep.push(0);
        let array = r#"{"type":"record","name":"A","fields":[{"name":"a","type":{"type":"array","items":"null"}}]}"#;
        let (mut da, _dir2) = file_decoder(array, NewFieldPolicy::AddColumns);
        let table_a = da.initial_schema(&RawBatch::default()).unwrap().unwrap();
        // An array of 2^40 nulls announced in 6 bytes.
        let mut huge = Vec::new();
        let mut z = (1u64 << 40) << 1;
        while z > 0x7f {
            huge.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
        huge.extend([z as u8, 0]);
        let out = d.decode(&batch(&[Some(&deep)]), &table).unwrap();
        assert!(out.rejected[0].reason.contains("nested more than"), "{:?}", out.rejected);
        let out = da.decode(&batch(&[Some(&huge)]), &table_a).unwrap();
        assert!(out.rejected[0].reason.contains("larger than the message"), "{:?}", out.rejected);
    }

    #[test]
    fn registry_framing_cache_and_rejections() {
        let reg = TestRegistry::standard();
        let mut d = reg.decoder(None, NewFieldPolicy::AddColumns);
        let (a, b, unknown) = (framed(1, &v1(1, None)), framed(1, &v1(2, Some("n"))), framed(99, &v1(3, None)));
        let mut bad_magic = framed(1, &v1(4, None));
        bad_magic[0] = 1;
        let short = [0u8, 0, 0];
        let proto = framed(3, &v1(5, None));
        let bad_datum = framed(1, &[0xff, 0xff]);
        let msgs: Vec<Option<&[u8]>> =
            vec![Some(&a), Some(&b), Some(&unknown), Some(&bad_magic), Some(&short), Some(&proto), Some(&bad_datum), Some(&unknown)];
        let table = v1_schema();
        let out = d.decode(&batch(&msgs), &table).unwrap();
        assert_eq!(out.rows, vec![0, 1]);
        assert_eq!(out.batch.as_ref().unwrap().num_rows(), 2);
        assert_eq!(rejected(&out), vec![2, 3, 4, 5, 6, 7]);
        let reason = |i: usize| out.rejected[i].reason.clone();
        assert!(reason(0).contains("schema id 99 is not in the schema registry"), "{}", reason(0));
        assert!(reason(1).contains("magic byte 0x01"), "{}", reason(1));
        assert!(reason(2).contains("too short"), "{}", reason(2));
        assert!(reason(3).contains("PROTOBUF"), "{}", reason(3));
        assert!(reason(4).starts_with("Avro decode failed with schema id 1:"), "{}", reason(4));
        // Once per id, and once per batch for an id the registry lacks.
        assert_eq!(reg.hits("/schemas/ids/1"), 1);
        assert_eq!(reg.hits("/schemas/ids/99"), 1);
        let out = d.decode(&batch(&msgs), &table).unwrap();
        assert_eq!(out.rows, vec![0, 1]);
        assert_eq!(reg.hits("/schemas/ids/1"), 1);
        assert_eq!(reg.hits("/schemas/ids/3"), 1);
        assert_eq!(reg.hits("/schemas/ids/99"), 2);
        // Basic auth: "u:p".
        assert!(reg.log.lock().iter().all(|(_, auth)| auth.as_deref() == Some("Basic dTpw")), "{:?}", reg.log.lock());
    }

    #[test]
    fn registry_failures_fail_the_batch() {
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let mut d = AvroDecoder::from_registry(&closed, None, None, None, None, NewFieldPolicy::AddColumns).unwrap();
        let m = framed(1, &v1(1, None));
        match d.decode(&batch(&[Some(&m)]), &v1_schema()) {
            Err(DecodeError::Registry { url, reason }) => {
                assert_eq!(url, closed);
                assert!(reason.contains("/schemas/ids/1"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let reg = TestRegistry::standard();
        let mut d = reg.decoder(None, NewFieldPolicy::AddColumns);
        let m = framed(500, &v1(1, None));
        match d.decode(&batch(&[Some(&m)]), &v1_schema()) {
            Err(DecodeError::Registry { reason, .. }) => assert!(reason.contains("HTTP 500"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert!(AvroDecoder::from_registry("ftp://x", None, None, None, None, NewFieldPolicy::AddColumns).is_err());
        assert_eq!(redact("https://me:secret@reg:8081/x@y"), "https://***@reg:8081/x@y");
    }

    #[test]
    fn writer_schema_evolution_by_policy() {
        let reg = TestRegistry::standard();
        let (old, new) = (framed(1, &v1(1, None)), framed(2, &v2(2, "SAVE10")));
        let b = batch(&[Some(&old), Some(&new)]);
        let table = v1_schema();

        let mut d = reg.decoder(None, NewFieldPolicy::AddColumns);
        let out = d.decode(&b, &table).unwrap();
        assert!(out.batch.is_none() && out.rows.is_empty());
        let names: Vec<&str> = out.new_fields.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, vec!["coupon"]);
        assert_eq!(out.new_fields[0].data_type(), &DataType::Utf8);
        let mut fields: Vec<FieldRef> = table.fields().iter().cloned().collect();
        fields.extend(out.new_fields.iter().cloned());
        let evolved = Arc::new(Schema::new(fields));
        let out = d.decode(&b, &evolved).unwrap();
        assert!(out.new_fields.is_empty());
        let rb = out.batch.unwrap();
        let coupon = rb.column(evolved.index_of("coupon").unwrap()).as_string::<i32>();
        assert!(coupon.is_null(0));
        assert_eq!(coupon.value(1), "SAVE10");

        let out = reg.decoder(None, NewFieldPolicy::Ignore).decode(&b, &table).unwrap();
        assert_eq!(out.rows, vec![0, 1]);
        let out = reg.decoder(None, NewFieldPolicy::DeadLetter).decode(&b, &table).unwrap();
        assert_eq!(out.rows, vec![0]);
        assert!(out.rejected[0].reason.contains("schema id 2 has fields that are not columns of the table: coupon"), "{:?}", out.rejected);
    }

    #[test]
    fn nested_fields_the_table_lacks_follow_the_policy() {
        let (mut d, _dir) = file_decoder(V1, NewFieldPolicy::DeadLetter);
        let customer = DataType::Struct(Fields::from(vec![Field::new("name", DataType::Utf8, true)]));
        let fields: Vec<Field> = v1_schema()
            .fields()
            .iter()
            .map(|f| if f.name() == "customer" { Field::new("customer", customer.clone(), true) } else { f.as_ref().clone() })
            .collect();
        let table = Arc::new(Schema::new(fields));
        let m = v1(1, None);
        let out = d.decode(&batch(&[Some(&m)]), &table).unwrap();
        assert_eq!(rejected(&out), vec![0]);
        assert!(out.rejected[0].reason.contains("field customer: has fields that are not in the table: vip"), "{:?}", out.rejected);
        let (mut d, _dir) = file_decoder(V1, NewFieldPolicy::Ignore);
        let out = d.decode(&batch(&[Some(&m)]), &table).unwrap();
        assert_eq!(out.rows, vec![0]);
    }

    #[test]
    fn initial_schema_from_registry() {
        let reg = TestRegistry::standard();
        // The subject's latest schema.
        let mut d = reg.decoder(Some("orders-value"), NewFieldPolicy::AddColumns);
        let s = d.initial_schema(&RawBatch::default()).unwrap().unwrap();
        assert!(s.field_with_name("coupon").is_ok());
        let m = framed(2, &v2(1, "x"));
        d.decode(&batch(&[Some(&m)]), &s).unwrap().batch.unwrap();
        assert_eq!(reg.hits("/schemas/ids/2"), 0, "cached from the subject's answer");
        // An unknown subject, or none: the first message that decodes.
        for subject in [Some("other-value"), None] {
            let mut d = reg.decoder(subject, NewFieldPolicy::AddColumns);
            let (junk, unknown, good) = (b"junk".to_vec(), framed(99, &v1(1, None)), framed(1, &v1(1, None)));
            let b = batch(&[Some(&junk), Some(&unknown), None, Some(&good)]);
            let s = d.initial_schema(&b).unwrap().unwrap();
            assert!(s.field_with_name("coupon").is_err());
            assert!(s.field_with_name("customer").is_ok());
            assert!(d.initial_schema(&batch(&[Some(&junk)])).unwrap().is_none());
        }
    }

    #[test]
    fn registry_works_from_inside_a_tokio_runtime() {
        let reg = TestRegistry::standard();
        let mut d = reg.decoder(None, NewFieldPolicy::AddColumns);
        let m = framed(1, &v1(1, None));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let out = rt.block_on(async { d.decode(&batch(&[Some(&m)]), &v1_schema()) }).unwrap();
        assert_eq!(out.rows, vec![0]);
    }

    #[test]
    fn decimals_as_text() {
        assert_eq!(decimal_text(&[0x30, 0x39], 2).unwrap(), "123.45");
        assert_eq!(decimal_text(&[0xcf, 0xc7], 2).unwrap(), "-123.45");
        assert_eq!(decimal_text(&[0x05], 3).unwrap(), "0.005");
        assert_eq!(decimal_text(&[0x80], 0).unwrap(), "-128");
        assert_eq!(decimal_text(&[], 1).unwrap(), "0.0");
        assert_eq!(decimal_i128(&[0xff; 20]), Some(-1));
        assert_eq!(decimal_i128(&[0x01; 17]), None);
        assert_eq!(rescale_decimal(12345, 2, 10, 4), Ok(1_234_500));
        assert!(rescale_decimal(12345, 2, 10, 1).is_err());
        assert!(rescale_decimal(12345, 0, 4, 0).is_err());
    }
}
