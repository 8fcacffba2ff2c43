//! Where message bytes become Arrow rows.
//!
//! A [`MessageDecoder`] turns the payloads of a [`RawBatch`] into one
//! `RecordBatch` against the table's payload columns, and says which messages
//! it could not decode and why; those go to the dead-letter table. Fields the
//! table lacks are reported so the sink can add columns and decode again.

pub mod avro;
pub mod json;
pub mod metadata;
pub mod raw;
pub mod schema;

use deltalake::arrow::datatypes::{FieldRef, SchemaRef};
use deltalake::arrow::record_batch::RecordBatch;
use inlet_config::{FormatConfig, NewFieldPolicy, PipelineConfig};

use crate::buffer::RawBatch;

/// A message that could not be decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Index into [`RawBatch::messages`].
    pub message: u32,
    pub reason: String,
}

/// The result of decoding one batch.
#[derive(Debug, Default)]
pub struct Decoded {
    /// One row per accepted message, in message order; None when no message
    /// was accepted.
    pub batch: Option<RecordBatch>,
    /// For each row of `batch`, the index of its message.
    pub rows: Vec<u32>,
    pub rejected: Vec<Rejected>,
    /// Fields present in messages but missing from the schema (only when new
    /// fields are to be added as columns). When non-empty, `batch` is None:
    /// the caller evolves the table and decodes again.
    pub new_fields: Vec<FieldRef>,
}

/// Errors that stop a batch from being decoded at all (as opposed to
/// rejecting single messages).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("schema registry {url}: {reason}")]
    Registry { url: String, reason: String },
    #[error("Avro schema file {path}: {reason}")]
    SchemaFile { path: String, reason: String },
    #[error("cannot build a decoder for the table schema: {0}")]
    Schema(String),
}

/// Turns message payloads into rows.
pub trait MessageDecoder: Send {
    /// Decodes every payload of `batch` against `schema`.
    fn decode(&mut self, batch: &RawBatch, schema: &SchemaRef) -> Result<Decoded, DecodeError>;

    /// The payload schema of a table that does not exist yet, from the
    /// configuration, a registry, or the messages of the first batch. None
    /// when no message of `batch` can tell (all were malformed).
    fn initial_schema(&mut self, batch: &RawBatch) -> Result<Option<SchemaRef>, DecodeError>;
}

/// The decoder a pipeline's `format` asks for.
pub fn for_pipeline(p: &PipelineConfig) -> Result<Box<dyn MessageDecoder>, DecodeError> {
    let configured = schema::configured_schema(&p.schema)?;
    let policy = p.schema.on_new_fields;
    Ok(match &p.format {
        FormatConfig::Json => Box::new(json::JsonDecoder::new(configured, policy)),
        FormatConfig::String => Box::new(raw::RawDecoder::new(raw::RawKind::String)),
        FormatConfig::Bytes => Box::new(raw::RawDecoder::new(raw::RawKind::Bytes)),
        FormatConfig::AvroFile { schema_file } => Box::new(avro::AvroDecoder::from_file(schema_file, configured, policy)?),
        FormatConfig::AvroRegistry { url, username, password, subject } => {
            let subject = subject.clone().or_else(|| p.source.topics.first().map(|t| format!("{t}-value")));
            Box::new(avro::AvroDecoder::from_registry(url, username.clone(), password.clone(), subject, configured, policy)?)
        }
    })
}

/// Whether a decoder should report unknown fields as new columns.
pub fn adds_columns(policy: NewFieldPolicy) -> bool {
    policy == NewFieldPolicy::AddColumns
}
