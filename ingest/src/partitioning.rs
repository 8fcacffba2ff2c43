//! Partition columns derived from event time (`dt`, `hour`, ... in a time
//! zone), computed per batch.
//!
//! Formatting a date per row would dominate the cost of a batch, so values
//! are cached per minute of event time when the formats cannot show seconds.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use deltalake::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use deltalake::arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType};
use deltalake::arrow::record_batch::RecordBatch;
use inlet_config::{EventTimeConfig, MissingEventTime, TimeEncoding};

/// Computes the derived partition columns of one pipeline.
pub struct EventTimePartitioner {
    field: String,
    encoding: TimeEncoding,
    tz: Tz,
    columns: Vec<(String, String)>,
    on_missing: MissingEventTime,
    cacheable: bool,
    cache: HashMap<i64, Arc<Vec<String>>>,
    keep_row_times: bool,
}

/// The derived columns of a batch, and the rows without a usable event time.
pub struct Derived {
    pub columns: Vec<(String, ArrayRef)>,
    /// Row indexes (into the batch) that have no event time, with why.
    pub missing: Vec<(usize, String)>,
    /// Newest event time in the batch, microseconds since the epoch.
    pub newest_micros: Option<i64>,
    /// The oldest event time of the batch.
    pub oldest_micros: Option<i64>,
    /// (row, event time) of up to `inlet_lineage::latency::SAMPLES_PER_COMMIT`
    /// rows spread over the batch, for the latency histograms.
    pub samples: Vec<(usize, i64)>,
    /// Every row's event time, when asked for ([`EventTimePartitioner::keep_row_times`]).
    pub row_micros: Vec<Option<i64>>,
}

impl EventTimePartitioner {
    pub fn new(cfg: &EventTimeConfig) -> Result<Self, String> {
        let tz: Tz = cfg.time_zone.parse().map_err(|_| format!("unknown time zone `{}`", cfg.time_zone))?;
        let fine = ["%S", "%s", "%f", "%T", "%X", "%r", "%c", "%+", "%.f", "%3f", "%6f", "%9f"];
        let cacheable = !cfg.partitions.iter().any(|p| fine.iter().any(|f| p.format.contains(f)));
        Ok(Self {
            field: cfg.field.clone(),
            encoding: cfg.encoding,
            tz,
            columns: cfg.partitions.iter().map(|p| (p.column.clone(), p.format.clone())).collect(),
            on_missing: cfg.on_missing,
            cacheable,
            cache: HashMap::new(),
            keep_row_times: false,
        })
    }

    pub fn fields(&self) -> Vec<Field> {
        self.columns.iter().map(|(c, _)| Field::new(c, DataType::Utf8, true)).collect()
    }

    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|(c, _)| c.clone()).collect()
    }

    /// The event-time field this partitioner reads.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// `kafka_ts_ms` gives each row's Kafka timestamp, used when configured
    /// as the fallback for a missing event time.
    pub fn derive(&mut self, batch: &RecordBatch, kafka_ts_ms: &dyn Fn(usize) -> Option<i64>) -> Derived {
        let n = batch.num_rows();
        let times = self.event_times(batch);
        let mut builders: Vec<StringBuilder> = self.columns.iter().map(|_| StringBuilder::with_capacity(n, n * 10)).collect();
        let mut missing = Vec::new();
        let mut newest: Option<i64> = None;
        let mut oldest: Option<i64> = None;
        let step = n.div_ceil(inlet_lineage::latency::SAMPLES_PER_COMMIT).max(1);
        let mut samples = Vec::new();
        let mut row_micros = Vec::with_capacity(if self.keep_row_times { n } else { 0 });
        for (row, t) in times.into_iter().enumerate() {
            let micros = match t {
                Ok(m) => Some(m),
                Err(reason) => match self.on_missing {
                    MissingEventTime::UseKafkaTimestamp => match kafka_ts_ms(row) {
                        Some(ms) => Some(ms * 1000),
                        None => {
                            missing.push((row, format!("{reason}, and the message has no Kafka timestamp")));
                            None
                        }
                    },
                    MissingEventTime::DeadLetter => {
                        missing.push((row, reason));
                        None
                    }
                },
            };
            if self.keep_row_times {
                row_micros.push(micros);
            }
            match micros {
                Some(m) => {
                    newest = Some(newest.map_or(m, |x: i64| x.max(m)));
                    oldest = Some(oldest.map_or(m, |x: i64| x.min(m)));
                    if row % step == 0 {
                        samples.push((row, m));
                    }
                    let values = self.values_for(m);
                    for (b, v) in builders.iter_mut().zip(values.iter()) {
                        b.append_value(v);
                    }
                }
                None => builders.iter_mut().for_each(|b| b.append_null()),
            }
        }
        let columns = self.columns.iter().zip(builders).map(|((c, _), mut b)| (c.clone(), Arc::new(b.finish()) as ArrayRef)).collect();
        Derived { columns, missing, newest_micros: newest, oldest_micros: oldest, samples, row_micros }
    }

    /// Makes [`Self::derive`] return every row's event time (partition
    /// commit tracks the newest per Kafka partition).
    pub fn keep_row_times(&mut self, keep: bool) {
        self.keep_row_times = keep;
    }

    fn values_for(&mut self, micros: i64) -> Arc<Vec<String>> {
        let key = if self.cacheable { micros.div_euclid(60_000_000) } else { i64::MIN };
        if self.cacheable {
            if let Some(v) = self.cache.get(&key) {
                return v.clone();
            }
        }
        let dt = DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default().with_timezone(&self.tz);
        let values = Arc::new(self.columns.iter().map(|(_, f)| dt.format(f).to_string()).collect::<Vec<_>>());
        if self.cacheable {
            if self.cache.len() > 100_000 {
                self.cache.clear();
            }
            self.cache.insert(key, values.clone());
        }
        values
    }

    /// Event time of every row in microseconds, or why it has none.
    fn event_times(&self, batch: &RecordBatch) -> Vec<Result<i64, String>> {
        let n = batch.num_rows();
        let Some(col) = batch.column_by_name(&self.field) else {
            return vec![Err(format!("event time field `{}` is missing", self.field)); n];
        };
        let missing = || Err(format!("event time field `{}` is null", self.field));
        let number = |v: f64| -> Result<i64, String> {
            let micros = match self.encoding {
                TimeEncoding::EpochSeconds => v * 1e6,
                TimeEncoding::EpochMillis => v * 1e3,
                TimeEncoding::EpochMicros => v,
                TimeEncoding::Rfc3339 => return Err(format!("event time field `{}` is a number, expected an RFC 3339 string", self.field)),
                TimeEncoding::Auto => {
                    let a = v.abs();
                    if a < 1e11 { v * 1e6 } else if a < 1e14 { v * 1e3 } else if a < 1e17 { v } else { v / 1e3 }
                }
            };
            Ok(micros as i64)
        };
        (0..n)
            .map(|i| {
                if col.is_null(i) {
                    return missing();
                }
                match col.data_type() {
                    DataType::Int64 => number(col.as_primitive::<Int64Type>().value(i) as f64),
                    DataType::Int32 => number(col.as_primitive::<Int32Type>().value(i) as f64),
                    DataType::Float64 => number(col.as_primitive::<Float64Type>().value(i)),
                    DataType::Timestamp(TimeUnit::Second, _) => Ok(col.as_primitive::<TimestampSecondType>().value(i) * 1_000_000),
                    DataType::Timestamp(TimeUnit::Millisecond, _) => Ok(col.as_primitive::<TimestampMillisecondType>().value(i) * 1000),
                    DataType::Timestamp(TimeUnit::Microsecond, _) => Ok(col.as_primitive::<TimestampMicrosecondType>().value(i)),
                    DataType::Timestamp(TimeUnit::Nanosecond, _) => Ok(col.as_primitive::<TimestampNanosecondType>().value(i) / 1000),
                    DataType::Utf8 => self.parse_text(col.as_string::<i32>().value(i)),
                    other => Err(format!("event time field `{}` has type {other}, expected a timestamp, number or string", self.field)),
                }
            })
            .collect()
    }

    fn parse_text(&self, s: &str) -> Result<i64, String> {
        let s = s.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Ok(dt.timestamp_micros());
        }
        if self.encoding == TimeEncoding::Rfc3339 {
            return Err(format!("event time `{s}` is not an RFC 3339 timestamp"));
        }
        if self.encoding == TimeEncoding::Auto {
            for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"] {
                if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
                    // A time without a zone is read in the configured zone.
                    if let Some(dt) = self.tz.from_local_datetime(&naive).earliest() {
                        return Ok(dt.timestamp_micros());
                    }
                }
            }
        }
        match s.parse::<f64>() {
            Ok(v) if self.encoding != TimeEncoding::Auto || v.is_finite() => {
                let micros = match self.encoding {
                    TimeEncoding::EpochSeconds => v * 1e6,
                    TimeEncoding::EpochMicros => v,
                    _ => v * 1e3,
                };
                Ok(micros as i64)
            }
            _ => Err(format!("cannot read event time `{s}` of field `{}`", self.field)),
        }
    }
}

/// The span of event time `[start, end)` (microseconds since the epoch) a
/// partition covers, from its derived values (one per
/// `event_time.partitions` entry, in order). The span's length is the
/// finest unit the formats show: `%Y-%m-%d` + `%H` covers one hour.
pub fn partition_span(cfg: &EventTimeConfig, values: &[&str]) -> Result<(i64, i64), String> {
    use chrono::format::{parse, Parsed, StrftimeItems};
    use chrono::{Duration, LocalResult, Months, NaiveDate};
    if values.len() != cfg.partitions.len() {
        return Err(format!("expected {} partition values, got {}", cfg.partitions.len(), values.len()));
    }
    let tz: Tz = cfg.time_zone.parse().map_err(|_| format!("unknown time zone `{}`", cfg.time_zone))?;
    let mut parsed = Parsed::new();
    for (d, v) in cfg.partitions.iter().zip(values) {
        parse(&mut parsed, v, StrftimeItems::new(&d.format)).map_err(|e| format!("`{v}` does not match `{}`: {e}", d.format))?;
    }
    let has = |specs: &[&str]| cfg.partitions.iter().any(|d| specs.iter().any(|s| d.format.contains(s)));
    #[derive(PartialEq, PartialOrd)]
    enum Unit {
        Second,
        Minute,
        Hour,
        Day,
        Month,
        Year,
    }
    let unit = if has(&["%S", "%T", "%X", "%s", "%r", "%c", "%+"]) {
        Unit::Second
    } else if has(&["%M", "%R"]) {
        Unit::Minute
    } else if has(&["%H", "%k", "%I", "%l"]) {
        Unit::Hour
    } else if has(&["%d", "%e", "%j", "%F", "%D", "%x", "%v"]) {
        Unit::Day
    } else if has(&["%m", "%b", "%B", "%h"]) {
        Unit::Month
    } else if has(&["%Y", "%y", "%G"]) {
        Unit::Year
    } else {
        return Err("the partition formats show no date or time".into());
    };
    let year = parsed.year().ok_or("the partition formats show no year")?;
    let date = match parsed.to_naive_date() {
        Ok(d) => d,
        Err(_) => NaiveDate::from_ymd_opt(year, parsed.month().unwrap_or(1), parsed.day().unwrap_or(1)).ok_or("not a date")?,
    };
    let hour = parsed.hour_div_12().zip(parsed.hour_mod_12()).map(|(d, m)| d * 12 + m).unwrap_or(0);
    let start = date.and_hms_opt(hour, parsed.minute().unwrap_or(0), parsed.second().unwrap_or(0)).ok_or("not a time of day")?;
    let end = match unit {
        Unit::Second => start + Duration::seconds(1),
        Unit::Minute => start + Duration::minutes(1),
        Unit::Hour => start + Duration::hours(1),
        Unit::Day => start + Duration::days(1),
        Unit::Month => start.checked_add_months(Months::new(1)).ok_or("date out of range")?,
        Unit::Year => start.checked_add_months(Months::new(12)).ok_or("date out of range")?,
    };
    // Local times that a daylight-saving change skips or repeats: the
    // earliest instant that shows them.
    let instant = |t: NaiveDateTime| match tz.from_local_datetime(&t) {
        LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => Ok(x.timestamp_micros()),
        LocalResult::None => tz.from_local_datetime(&(t + Duration::hours(1))).earliest().map(|x| x.timestamp_micros()).ok_or(format!("{t} does not exist in {}", cfg.time_zone)),
    };
    Ok((instant(start)?, instant(end)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::array::{Int64Array, StringArray};
    use deltalake::arrow::datatypes::Schema;
    use inlet_config::DerivedPartition;

    fn cfg(tz: &str, on_missing: MissingEventTime) -> EventTimeConfig {
        EventTimeConfig {
            field: "ts".into(),
            encoding: TimeEncoding::Auto,
            time_zone: tz.into(),
            partitions: vec![DerivedPartition { column: "dt".into(), format: "%Y-%m-%d".into() }, DerivedPartition { column: "hour".into(), format: "%H".into() }],
            on_missing,
        }
    }

    fn strings(a: &ArrayRef) -> Vec<Option<String>> {
        a.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect()
    }

    #[test]
    fn rfc3339_and_epoch_in_a_time_zone() {
        let schema = Arc::new(Schema::new(vec![Field::new("ts", DataType::Utf8, true)]));
        let ts = StringArray::from(vec![Some("2024-03-10T23:30:00Z"), Some("1710113400000"), None, Some("garbage")]);
        let rb = RecordBatch::try_new(schema, vec![Arc::new(ts)]).unwrap();
        let mut p = EventTimePartitioner::new(&cfg("Asia/Shanghai", MissingEventTime::DeadLetter)).unwrap();
        let d = p.derive(&rb, &|_| None);
        assert_eq!(strings(&d.columns[0].1), vec![Some("2024-03-11".into()), Some("2024-03-11".into()), None, None]);
        assert_eq!(strings(&d.columns[1].1), vec![Some("07".into()), Some("07".into()), None, None]);
        assert_eq!(d.missing.iter().map(|m| m.0).collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn kafka_timestamp_fallback() {
        let schema = Arc::new(Schema::new(vec![Field::new("ts", DataType::Int64, true)]));
        let rb = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![None, Some(0)]))]).unwrap();
        let mut p = EventTimePartitioner::new(&cfg("UTC", MissingEventTime::UseKafkaTimestamp)).unwrap();
        let d = p.derive(&rb, &|_| Some(86_400_000));
        assert!(d.missing.is_empty());
        assert_eq!(strings(&d.columns[0].1), vec![Some("1970-01-02".into()), Some("1970-01-01".into())]);
    }

    #[test]
    fn daylight_saving_day_hours() {
        // 2024-03-31 in Europe/Berlin jumps from 02:00 to 03:00.
        let schema = Arc::new(Schema::new(vec![Field::new("ts", DataType::Utf8, true)]));
        let ts = StringArray::from(vec!["2024-03-31T00:30:00Z", "2024-03-31T01:30:00Z"]);
        let rb = RecordBatch::try_new(schema, vec![Arc::new(ts)]).unwrap();
        let mut p = EventTimePartitioner::new(&cfg("Europe/Berlin", MissingEventTime::DeadLetter)).unwrap();
        let d = p.derive(&rb, &|_| None);
        assert_eq!(strings(&d.columns[1].1), vec![Some("01".into()), Some("03".into())]);
    }

    #[test]
    fn partition_spans_follow_the_finest_unit_and_the_time_zone() {
        let c = cfg("Asia/Shanghai", MissingEventTime::DeadLetter);
        let (start, end) = partition_span(&c, &["2024-03-11", "07"]).unwrap();
        assert_eq!(DateTime::<Utc>::from_timestamp_micros(start).unwrap().to_rfc3339(), "2024-03-10T23:00:00+00:00");
        assert_eq!(end - start, 3_600_000_000);
        let mut daily = cfg("Europe/Berlin", MissingEventTime::DeadLetter);
        daily.partitions.truncate(1);
        // The day clocks go forward has 23 hours.
        let (start, end) = partition_span(&daily, &["2024-03-31"]).unwrap();
        assert_eq!(DateTime::<Utc>::from_timestamp_micros(start).unwrap().to_rfc3339(), "2024-03-30T23:00:00+00:00");
        assert_eq!(end - start, 23 * 3_600_000_000);
        assert!(partition_span(&c, &["2024-03-11"]).is_err());
        assert!(partition_span(&c, &["yesterday", "07"]).unwrap_err().contains("does not match"));
    }
}
