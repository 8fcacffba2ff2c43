//! The OpenLineage 2-0-2 run event, as serde types.
//!
//! Facets are kept as JSON values keyed by facet name: inlet builds them with
//! the typed builders of [`crate::facets`], and readers of stored or received
//! events (the lineage store, the metastore's receiver) pick the facets they
//! understand and keep the rest as they came.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// The spec version of every event inlet emits.
pub const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";

/// The `producer` of inlet's events and the `_producer` of its facets.
pub const PRODUCER: &str = concat!("https://github.com/inlet-data/inlet/tree/v", env!("CARGO_PKG_VERSION"), "/lineage");

/// Facets by name.
pub type Facets = BTreeMap<String, serde_json::Value>;

/// A run state transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    Start,
    Running,
    Complete,
    Abort,
    Fail,
    Other,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Start => "START",
            EventType::Running => "RUNNING",
            EventType::Complete => "COMPLETE",
            EventType::Abort => "ABORT",
            EventType::Fail => "FAIL",
            EventType::Other => "OTHER",
        }
    }

    /// The run has ended (COMPLETE, ABORT or FAIL).
    pub fn is_terminal(self) -> bool {
        matches!(self, EventType::Complete | EventType::Abort | EventType::Fail)
    }
}

/// An OpenLineage run event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEvent {
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub event_time: DateTime<Utc>,
    pub producer: String,
    #[serde(rename = "schemaURL")]
    pub schema_url: String,
    pub event_type: EventType,
    pub run: Run,
    pub job: Job,
    #[serde(default)]
    pub inputs: Vec<InputDataset>,
    #[serde(default)]
    pub outputs: Vec<OutputDataset>,
}

impl RunEvent {
    /// An event of inlet's producer and spec version, at `event_time`.
    pub fn new(event_type: EventType, event_time: DateTime<Utc>, run: Run, job: Job) -> Self {
        RunEvent { event_time, producer: PRODUCER.to_string(), schema_url: SCHEMA_URL.to_string(), event_type, run, job, inputs: Vec::new(), outputs: Vec::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    #[serde(rename = "runId")]
    pub run_id: Uuid,
    #[serde(default, skip_serializing_if = "Facets::is_empty")]
    pub facets: Facets,
}

impl Run {
    /// A new run id: a UUIDv7 (time-ordered), as OpenLineage recommends.
    pub fn new_id() -> Uuid {
        Uuid::now_v7()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Facets::is_empty")]
    pub facets: Facets,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputDataset {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Facets::is_empty")]
    pub facets: Facets,
    #[serde(default, skip_serializing_if = "Facets::is_empty")]
    pub input_facets: Facets,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputDataset {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Facets::is_empty")]
    pub facets: Facets,
    #[serde(default, skip_serializing_if = "Facets::is_empty")]
    pub output_facets: Facets,
}

impl InputDataset {
    pub fn new(id: &crate::naming::DatasetId) -> Self {
        InputDataset { namespace: id.namespace.clone(), name: id.name.clone(), facets: Facets::new(), input_facets: Facets::new() }
    }
}

impl OutputDataset {
    pub fn new(id: &crate::naming::DatasetId) -> Self {
        OutputDataset { namespace: id.namespace.clone(), name: id.name.clone(), facets: Facets::new(), output_facets: Facets::new() }
    }
}

/// Event times as RFC 3339 in UTC with milliseconds (`2026-11-23T21:58:38.123Z`).
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn ser_time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_time(t))
}

fn de_time<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)).map_err(|e| serde::de::Error::custom(format!("eventTime {s:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_round_trips_with_spec_field_names() {
        let job = Job { namespace: "inlet".into(), name: "ingest.events".into(), facets: Facets::new() };
        let run = Run { run_id: Run::new_id(), facets: Facets::new() };
        let e = RunEvent::new(EventType::Start, DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678Z").unwrap().with_timezone(&Utc), run, job);
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["eventType"], "START");
        assert_eq!(json["eventTime"], "2026-01-02T03:04:05.678Z");
        assert_eq!(json["schemaURL"], SCHEMA_URL);
        assert!(json["run"]["runId"].as_str().unwrap().len() == 36);
        assert!(json["run"].get("facets").is_none(), "empty facets are left out");
        let back: RunEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn foreign_event_times_with_offsets_parse() {
        let text = r#"{"eventTime":"2026-01-02T05:04:05.1+02:00","producer":"x","schemaURL":"y","eventType":"COMPLETE","run":{"runId":"0190e7b2-9d4e-7c3a-8d7e-1c2b3a4d5e6f"},"job":{"namespace":"n","name":"j"}}"#;
        let e: RunEvent = serde_json::from_str(text).unwrap();
        assert_eq!(format_time(&e.event_time), "2026-01-02T03:04:05.100Z");
        assert!(e.event_type.is_terminal());
        assert!(e.inputs.is_empty());
    }
}
