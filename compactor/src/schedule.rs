//! When `inlet compactor` runs a policy: at the fire times of its cron
//! expression (in its time zone, see `inlet_config::cron` for the syntax and
//! daylight-saving rules), inside its time windows, and whenever a health
//! trigger holds (too many small files in one partition or in the table).

use std::time::Instant;

use chrono::{DateTime, Utc};
use deltalake::DeltaTable;

use crate::plan;
use crate::policy::Policy;
use crate::CompactError;

/// The scheduling state of one policy.
#[derive(Debug, Clone)]
pub struct TableSchedule {
    pub policy: Policy,
    next_fire: Option<DateTime<Utc>>,
}

impl TableSchedule {
    pub fn new(policy: Policy, now: DateTime<Utc>) -> Self {
        let mut s = Self { policy, next_fire: None };
        s.next_fire = s.after(now);
        s
    }

    fn after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cron = self.policy.schedule.as_ref()?;
        cron.next_after(&t.with_timezone(&self.policy.time_zone)).map(|t| t.with_timezone(&Utc))
    }

    /// The next scheduled fire time.
    pub fn next_fire(&self) -> Option<DateTime<Utc>> {
        self.next_fire
    }

    /// Whether `now` is inside the policy's windows (always, without any).
    pub fn in_window(&self, now: DateTime<Utc>) -> bool {
        inlet_config::cron::in_windows(&self.policy.windows, &now.with_timezone(&self.policy.time_zone))
    }

    /// When the current window closes (`None`: no windows, or outside).
    pub fn window_deadline(&self, now: DateTime<Utc>) -> Option<Instant> {
        let local = now.with_timezone(&self.policy.time_zone).time();
        self.policy.windows.iter().filter_map(|w| w.remaining(local)).max().and_then(|d| d.to_std().ok()).map(|d| Instant::now() + d)
    }

    /// Whether the schedule fired at or before `now`; advances past `now`.
    /// A fire outside the windows is consumed without running.
    pub fn take_due(&mut self, now: DateTime<Utc>) -> bool {
        match self.next_fire {
            Some(t) if t <= now => {
                self.next_fire = self.after(now);
                self.in_window(now)
            }
            _ => false,
        }
    }
}

/// Which health trigger holds for `table`, if any (partitions skipped as
/// active do not count).
pub async fn triggered(policy: &Policy, table: &DeltaTable) -> Result<Option<String>, CompactError> {
    if policy.trigger_small_files_per_partition.is_none() && policy.trigger_small_files_total.is_none() {
        return Ok(None);
    }
    let files = plan::files_by_partition(table)?;
    let active = match policy.active_window {
        Some(w) => plan::active_partitions(table, w).await?,
        None => Default::default(),
    };
    let mut total = 0u64;
    for (partition, fs) in &files {
        if active.contains(partition) {
            continue;
        }
        let small = fs.iter().filter(|f| f.size < policy.small_file_bytes).count() as u64;
        total += small;
        if let Some(k) = policy.trigger_small_files_per_partition {
            if small > k {
                return Ok(Some(format!("partition {partition} holds {small} small files (more than {k})")));
            }
        }
    }
    if let Some(k) = policy.trigger_small_files_total {
        if total > k {
            return Ok(Some(format!("the table holds {total} small files (more than {k})")));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use inlet_config::cron::{CronSchedule, DailyWindow};

    fn schedule(expr: &str, tz: &str, windows: &[(&str, &str)]) -> TableSchedule {
        let loc = inlet_table::Location::parse("/tmp/t", &inlet_config::StorageConfig { warehouse: "/tmp".into(), s3: None, options: Default::default() }).unwrap();
        let mut p = Policy::for_location(loc);
        p.schedule = Some(CronSchedule::parse(expr).unwrap());
        p.time_zone = tz.parse().unwrap();
        p.windows = windows.iter().map(|(a, b)| DailyWindow::parse(a, b).unwrap()).collect();
        TableSchedule::new(p, Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap())
    }

    #[test]
    fn fires_once_per_fire_time_in_the_time_zone() {
        // 03:00 Berlin on 2026-03-29 (CEST, UTC+2) is 01:00 UTC.
        let mut s = schedule("0 3 * * *", "Europe/Berlin", &[]);
        assert_eq!(s.next_fire(), Some(Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap()));
        assert!(!s.take_due(Utc.with_ymd_and_hms(2026, 3, 29, 0, 59, 59).unwrap()));
        assert!(s.take_due(Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 3).unwrap()));
        assert!(!s.take_due(Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 4).unwrap()), "fires once");
        assert_eq!(s.next_fire(), Some(Utc.with_ymd_and_hms(2026, 3, 30, 1, 0, 0).unwrap()));
    }

    #[test]
    fn fires_outside_the_windows_are_skipped() {
        // Every hour, but only between 01:00 and 05:00 UTC.
        let mut s = schedule("0 * * * *", "UTC", &[("01:00", "05:00")]);
        assert!(!s.take_due(Utc.with_ymd_and_hms(2026, 3, 28, 13, 0, 0).unwrap()));
        assert_eq!(s.next_fire(), Some(Utc.with_ymd_and_hms(2026, 3, 28, 14, 0, 0).unwrap()), "the fire was consumed");
        let mut s = schedule("0 * * * *", "UTC", &[("01:00", "05:00")]);
        s.next_fire = Some(Utc.with_ymd_and_hms(2026, 3, 29, 2, 0, 0).unwrap());
        let now = Utc.with_ymd_and_hms(2026, 3, 29, 2, 0, 0).unwrap();
        assert!(s.take_due(now));
        assert!(s.window_deadline(now).is_some());
    }
}
