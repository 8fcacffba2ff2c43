//! Event-time watermark of a pipeline, for partition commit: the newest
//! event time committed per Kafka partition, and their minimum over the
//! partitions still receiving data. A partition is only closed once every
//! active source partition has moved past it, so one lagging Kafka
//! partition holds closing back instead of turning its events late.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::buffer::TopicPartition;

pub struct Watermarks {
    newest: HashMap<TopicPartition, (i64, Instant)>,
    /// A source partition with no commit for this long stops holding the
    /// watermark back (it may have been revoked, or gone quiet).
    idle_after: Duration,
}

impl Watermarks {
    pub fn new(idle_after: Duration) -> Self {
        Self { newest: HashMap::new(), idle_after }
    }

    /// Records the newest event time a commit carried for `tp`.
    pub fn observe(&mut self, tp: &TopicPartition, micros: i64) {
        let now = Instant::now();
        let e = self.newest.entry(tp.clone()).or_insert((micros, now));
        e.0 = e.0.max(micros);
        e.1 = now;
    }

    /// The watermark: the minimum over active partitions (all partitions
    /// when every one is idle); None before any commit.
    pub fn current(&self) -> Option<i64> {
        let active = self.newest.values().filter(|(_, seen)| seen.elapsed() < self.idle_after).map(|(t, _)| *t).min();
        active.or_else(|| self.newest.values().map(|(t, _)| *t).min())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition { topic: "t".into(), partition: p }
    }

    #[test]
    fn the_slowest_active_partition_holds_the_watermark() {
        let mut w = Watermarks::new(Duration::from_secs(3600));
        assert_eq!(w.current(), None);
        w.observe(&tp(0), 100);
        w.observe(&tp(1), 50);
        assert_eq!(w.current(), Some(50));
        w.observe(&tp(1), 40);
        assert_eq!(w.current(), Some(50), "never moves back");
        w.observe(&tp(1), 200);
        assert_eq!(w.current(), Some(100));
    }

    #[test]
    fn idle_partitions_stop_holding_it_back() {
        let mut w = Watermarks::new(Duration::from_millis(50));
        w.observe(&tp(0), 10);
        std::thread::sleep(Duration::from_millis(80));
        w.observe(&tp(1), 500);
        assert_eq!(w.current(), Some(500));
    }
}
