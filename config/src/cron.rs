//! Cron expressions as operators write them (`compaction.tables[].schedule`):
//! parsing, so that `inlet validate` rejects a bad one with its key and line,
//! and the next fire time in a time zone, for the compactor's scheduler.
//!
//! Two forms are accepted:
//!
//! - 5 fields, standard Unix cron: `minute hour day-of-month month day-of-week`
//!   (fires at second 0);
//! - 6 fields, the same with seconds first: `second minute hour ...`.
//!
//! Both number the days of the week the Unix way: 0 or 7 is Sunday, 1 Monday
//! (names `SUN`..`SAT` work too). Quartz/`cron`-crate numbering (Sunday = 1)
//! is *not* used: one numbering for both forms. Fields take `*`, `?` (day
//! fields), numbers, names (`JAN`, `MON`), ranges `a-b`, steps `*/n`, `a/n`,
//! `a-b/n` and comma lists. `@yearly`, `@monthly`, `@weekly`, `@daily`,
//! `@midnight` and `@hourly` are shorthands. As in Vixie cron, when both the
//! day of month and the day of week are restricted (neither starts with `*`),
//! a day matches when *either* does.
//!
//! Daylight-saving changes, in the schedule's time zone:
//!
//! - a local time skipped when clocks go forward fires at the instant the
//!   local clock would have shown it without the change, i.e. shifted by the
//!   gap (02:30 on a 02:00 -> 03:00 day fires at 03:30), as `java.time` does;
//!   such a time is never lost;
//! - a local time that occurs twice when clocks go back fires once, at its
//!   first occurrence, unless the hour field is `*` (a job that runs every
//!   hour keeps running every hour through the repeated one).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    seconds: u64,
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    days_of_week: u8,
    dom_restricted: bool,
    dow_restricted: bool,
    every_hour: bool,
    text: String,
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    names_start: u32,
}

const SECOND: FieldSpec = FieldSpec { name: "second", min: 0, max: 59, names: &[], names_start: 0 };
const MINUTE: FieldSpec = FieldSpec { name: "minute", min: 0, max: 59, names: &[], names_start: 0 };
const HOUR: FieldSpec = FieldSpec { name: "hour", min: 0, max: 23, names: &[], names_start: 0 };
const DOM: FieldSpec = FieldSpec { name: "day-of-month", min: 1, max: 31, names: &[], names_start: 0 };
const MONTH: FieldSpec = FieldSpec { name: "month", min: 1, max: 12, names: &MONTHS, names_start: 1 };
const DOW: FieldSpec = FieldSpec { name: "day-of-week", min: 0, max: 7, names: &DAYS, names_start: 0 };

fn value(spec: &FieldSpec, s: &str) -> Result<u32, String> {
    if let Some(i) = spec.names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(spec.names_start + i as u32);
    }
    let v: u32 = s.parse().map_err(|_| format!("{} field: `{s}` is not a number{}", spec.name, if spec.names.is_empty() { String::new() } else { " or a name".into() }))?;
    if v < spec.min || v > spec.max {
        return Err(format!("{} field: {v} is out of range {}-{}", spec.name, spec.min, spec.max));
    }
    Ok(v)
}

/// The set of values of one field, as a bit mask.
fn field(spec: &FieldSpec, text: &str) -> Result<u64, String> {
    if text.is_empty() {
        return Err(format!("{} field is empty", spec.name));
    }
    let mut mask = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("{} field: step `{s}` is not a number", spec.name))?;
                if step == 0 {
                    return Err(format!("{} field: step must be at least 1", spec.name));
                }
                (r, Some(step))
            }
            None => (part, None),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            if range == "?" && spec.name != DOM.name && spec.name != DOW.name {
                return Err(format!("{} field: `?` is only allowed in the day fields", spec.name));
            }
            (spec.min, spec.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(spec, a)?, value(spec, b)?);
            if a > b {
                return Err(format!("{} field: range {range} runs backwards", spec.name));
            }
            (a, b)
        } else {
            let a = value(spec, range)?;
            // `a/n` means from a to the end in steps of n.
            (a, if step.is_some() { spec.max } else { a })
        };
        let step = step.unwrap_or(1);
        let mut v = lo;
        while v <= hi {
            mask |= 1 << v;
            v += step;
        }
    }
    Ok(mask)
}

impl CronSchedule {
    /// Parses a 5- or 6-field expression (or an `@` shorthand).
    pub fn parse(expr: &str) -> Result<Self, String> {
        let text = expr.trim();
        let expanded = match text.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => return Err(format!("unknown shorthand `{text}`, expected @yearly, @monthly, @weekly, @daily or @hourly")),
            _ => text,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let (sec, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => return Err(format!("expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), found {n}")),
        };
        let mut dow = field(&DOW, rest[4])? as u8 as u64;
        if dow & (1 << 7) != 0 {
            dow = (dow | 1) & 0x7f; // 7 is Sunday too
        }
        let hours = field(&HOUR, rest[1])? as u32;
        Ok(Self {
            seconds: field(&SECOND, sec)?,
            minutes: field(&MINUTE, rest[0])?,
            hours,
            days_of_month: field(&DOM, rest[2])? as u32,
            months: field(&MONTH, rest[3])? as u16,
            days_of_week: dow as u8,
            dom_restricted: !rest[2].starts_with(['*', '?']),
            dow_restricted: !rest[4].starts_with(['*', '?']),
            every_hour: hours == (1 << 24) - 1,
            text: text.to_string(),
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn matches_date(&self, d: NaiveDate) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << d.day()) != 0;
        let dow = self.days_of_week & (1 << d.weekday().num_days_from_sunday()) != 0;
        match (self.dom_restricted, self.dow_restricted) {
            (true, true) => dom || dow,
            _ => dom && dow,
        }
    }

    /// The instants a local wall-clock time stands for (see the module doc).
    fn instants<Tz: TimeZone>(&self, tz: &Tz, local: NaiveDateTime) -> Vec<DateTime<Tz>> {
        use chrono::LocalResult;
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => vec![t],
            LocalResult::Ambiguous(a, b) => {
                if self.every_hour {
                    vec![a, b]
                } else {
                    vec![a]
                }
            }
            LocalResult::None => {
                // Skipped: read the wall time with the offset in force before
                // the change.
                let before = tz.from_local_datetime(&(local - Duration::hours(3))).earliest();
                match before {
                    Some(b) => {
                        let offset = b.offset().fix();
                        let utc = local - Duration::seconds(offset.local_minus_utc() as i64);
                        vec![tz.from_utc_datetime(&utc)]
                    }
                    None => Vec::new(),
                }
            }
        }
    }

    /// The first fire time strictly after `after`, in `after`'s time zone.
    /// `None` only for expressions that never match (`0 0 30 2 *`).
    pub fn next_after<Tz: TimeZone>(&self, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        let tz = after.timezone();
        let start = after.naive_local().date() - Duration::days(1);
        let mut best: Option<DateTime<Tz>> = None;
        // Leap-day schedules can wait eight years.
        for offset in 0..(366 * 8 + 2) {
            let day = start + Duration::days(offset);
            if let Some(b) = &best {
                // Candidates of later days cannot beat one found already
                // (a day's times shift by at most a few hours).
                if day.and_time(NaiveTime::MIN) > b.naive_local() + Duration::days(1) {
                    break;
                }
            }
            if !self.matches_date(day) {
                continue;
            }
            'day: for h in 0..24u32 {
                if self.hours & (1 << h) == 0 {
                    continue;
                }
                for m in 0..60u32 {
                    if self.minutes & (1 << m) == 0 {
                        continue;
                    }
                    for s in 0..60u32 {
                        if self.seconds & (1 << s) == 0 {
                            continue;
                        }
                        let local = day.and_hms_opt(h, m, s).expect("valid time");
                        if let Some(b) = &best {
                            if local > b.naive_local() + Duration::hours(4) {
                                break 'day;
                            }
                        }
                        for t in self.instants(&tz, local) {
                            if t > *after && best.as_ref().is_none_or(|b| t < *b) {
                                best = Some(t);
                            }
                        }
                    }
                }
            }
        }
        best
    }
}

/// A daily window of local wall-clock time, `HH:MM` to `HH:MM`; a window
/// whose end is before its start runs past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyWindow {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl DailyWindow {
    pub fn parse(start: &str, end: &str) -> Result<Self, String> {
        let t = |s: &str| NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| format!("`{s}` is not a time of day HH:MM"));
        let (start, end) = (t(start)?, t(end)?);
        if start == end {
            return Err("start and end are equal: the window would be empty".into());
        }
        Ok(Self { start, end })
    }

    /// Whether a local time of day falls in the window (start inclusive).
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start < self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// How long from `t` until the window closes (`None` when outside it).
    pub fn remaining(&self, t: NaiveTime) -> Option<Duration> {
        if !self.contains(t) {
            return None;
        }
        let d = self.end.signed_duration_since(t);
        Some(if d < Duration::zero() { d + Duration::days(1) } else { d })
    }
}

/// Whether `now` (any time zone) is inside one of `windows` in `tz`; true
/// when there are no windows.
pub fn in_windows<Tz: TimeZone>(windows: &[DailyWindow], now: &DateTime<Tz>) -> bool {
    windows.is_empty() || windows.iter().any(|w| w.contains(now.time()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Tz;

    fn at(tz: Tz, s: &str) -> DateTime<Tz> {
        tz.from_local_datetime(&NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()).earliest().unwrap()
    }

    fn next_n(expr: &str, tz: Tz, from: &str, n: usize) -> Vec<String> {
        let c = CronSchedule::parse(expr).unwrap();
        let mut t = at(tz, from);
        let mut out = Vec::new();
        for _ in 0..n {
            t = c.next_after(&t).unwrap();
            out.push(t.format("%Y-%m-%d %H:%M:%S %Z").to_string());
        }
        out
    }

    #[test]
    fn five_fields_fire_at_second_zero() {
        assert_eq!(next_n("*/15 * * * *", Tz::UTC, "2026-01-01 10:07:30", 3), ["2026-01-01 10:15:00 UTC", "2026-01-01 10:30:00 UTC", "2026-01-01 10:45:00 UTC"]);
    }

    #[test]
    fn six_fields_have_seconds_first() {
        assert_eq!(next_n("30 0 3 * * *", Tz::UTC, "2026-01-01 00:00:00", 2), ["2026-01-01 03:00:30 UTC", "2026-01-02 03:00:30 UTC"]);
        assert_eq!(next_n("*/20 * * * * *", Tz::UTC, "2026-01-01 00:00:00", 3), ["2026-01-01 00:00:20 UTC", "2026-01-01 00:00:40 UTC", "2026-01-01 00:01:00 UTC"]);
    }

    #[test]
    fn unix_day_of_week_numbering_sunday_is_zero_and_seven() {
        // 2026-03-01 is a Sunday.
        let sun0 = next_n("0 12 * * 0", Tz::UTC, "2026-02-27 00:00:00", 1);
        let sun7 = next_n("0 12 * * 7", Tz::UTC, "2026-02-27 00:00:00", 1);
        let name = next_n("0 12 * * sun", Tz::UTC, "2026-02-27 00:00:00", 1);
        assert_eq!(sun0, ["2026-03-01 12:00:00 UTC"]);
        assert_eq!(sun0, sun7);
        assert_eq!(sun0, name);
        // Weekdays 1-5 = Monday to Friday: from Saturday 2026-02-28 the next is Monday.
        assert_eq!(next_n("0 9 * * 1-5", Tz::UTC, "2026-02-28 10:00:00", 2), ["2026-03-02 09:00:00 UTC", "2026-03-03 09:00:00 UTC"]);
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_restricted() {
        // The 15th or any Monday: 2026-03-09 is a Monday, then the 15th (Sunday), then Monday 16th.
        assert_eq!(next_n("0 0 15 * 1", Tz::UTC, "2026-03-08 12:00:00", 3), ["2026-03-09 00:00:00 UTC", "2026-03-15 00:00:00 UTC", "2026-03-16 00:00:00 UTC"]);
    }

    #[test]
    fn time_zones_are_honoured() {
        assert_eq!(next_n("0 2 * * *", chrono_tz::Asia::Tokyo, "2026-01-01 03:00:00", 1), ["2026-01-02 02:00:00 JST"]);
        let c = CronSchedule::parse("0 2 * * *").unwrap();
        let t = c.next_after(&at(chrono_tz::Asia::Tokyo, "2026-01-01 03:00:00")).unwrap();
        assert_eq!(t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M").to_string(), "2026-01-01 17:00");
    }

    #[test]
    fn spring_forward_skipped_time_fires_shifted_by_the_gap() {
        let berlin = chrono_tz::Europe::Berlin;
        // 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
        assert_eq!(next_n("30 2 * * *", berlin, "2026-03-28 12:00:00", 3), ["2026-03-29 03:30:00 CEST", "2026-03-30 02:30:00 CEST", "2026-03-31 02:30:00 CEST"]);
        // Hourly jobs: 01:00, then 03:00 (02:00 is 03:00 shifted, once), 04:00.
        assert_eq!(next_n("0 * * * *", berlin, "2026-03-29 00:30:00", 3), ["2026-03-29 01:00:00 CET", "2026-03-29 03:00:00 CEST", "2026-03-29 04:00:00 CEST"]);
        let ny = chrono_tz::America::New_York;
        assert_eq!(next_n("15 2 * * *", ny, "2026-03-07 12:00:00", 2), ["2026-03-08 03:15:00 EDT", "2026-03-09 02:15:00 EDT"]);
    }

    #[test]
    fn fall_back_repeated_time_fires_once_unless_hourly() {
        let berlin = chrono_tz::Europe::Berlin;
        // 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
        assert_eq!(next_n("30 2 * * *", berlin, "2026-10-24 12:00:00", 2), ["2026-10-25 02:30:00 CEST", "2026-10-26 02:30:00 CET"]);
        assert_eq!(
            next_n("30 * * * *", berlin, "2026-10-25 01:00:00", 4),
            ["2026-10-25 01:30:00 CEST", "2026-10-25 02:30:00 CEST", "2026-10-25 02:30:00 CET", "2026-10-25 03:30:00 CET"]
        );
    }

    #[test]
    fn shorthands_names_lists_and_steps() {
        assert_eq!(next_n("@daily", Tz::UTC, "2026-01-01 10:00:00", 1), ["2026-01-02 00:00:00 UTC"]);
        assert_eq!(next_n("0 0 1 jan,jul *", Tz::UTC, "2026-02-01 00:00:00", 2), ["2026-07-01 00:00:00 UTC", "2027-01-01 00:00:00 UTC"]);
        assert_eq!(next_n("0 10-14/2 * * *", Tz::UTC, "2026-01-01 00:00:00", 4), ["2026-01-01 10:00:00 UTC", "2026-01-01 12:00:00 UTC", "2026-01-01 14:00:00 UTC", "2026-01-02 10:00:00 UTC"]);
        assert_eq!(next_n("0 0 29 2 *", Tz::UTC, "2026-01-01 00:00:00", 1), ["2028-02-29 00:00:00 UTC"]);
        assert!(CronSchedule::parse("0 0 30 2 *").unwrap().next_after(&at(Tz::UTC, "2026-01-01 00:00:00")).is_none());
    }

    #[test]
    fn invalid_expressions_say_why() {
        for (expr, why) in [
            ("* * * *", "expected 5 fields"),
            ("0 0 0 * * * 2026", "found 7"),
            ("61 * * * *", "minute field: 61 is out of range 0-59"),
            ("0 24 * * *", "hour field: 24 is out of range 0-23"),
            ("0 0 0 * *", "day-of-month field: 0 is out of range 1-31"),
            ("0 0 * 13 *", "month field: 13 is out of range 1-12"),
            ("0 0 * * 8", "day-of-week field: 8 is out of range 0-7"),
            ("*/0 * * * *", "step must be at least 1"),
            ("0 5-1 * * *", "runs backwards"),
            ("0 0 * * funday", "`funday` is not a number or a name"),
            ("@sometimes", "unknown shorthand"),
        ] {
            let e = CronSchedule::parse(expr).unwrap_err();
            assert!(e.contains(why), "{expr}: {e}");
        }
    }

    #[test]
    fn windows_cross_midnight() {
        let w = DailyWindow::parse("22:00", "04:00").unwrap();
        assert!(w.contains(NaiveTime::from_hms_opt(23, 0, 0).unwrap()));
        assert!(w.contains(NaiveTime::from_hms_opt(3, 59, 0).unwrap()));
        assert!(!w.contains(NaiveTime::from_hms_opt(4, 0, 0).unwrap()));
        assert_eq!(w.remaining(NaiveTime::from_hms_opt(23, 0, 0).unwrap()), Some(Duration::hours(5)));
        assert!(DailyWindow::parse("25:00", "01:00").is_err());
    }
}
