//! Raw messages waiting to be written, and the process-wide memory budget.
//!
//! Messages are copied out of librdkafka into one contiguous byte buffer per
//! batch (payloads, keys) plus small per-message vectors, so a batch costs one
//! allocation per few megabytes rather than one per message, and its size is
//! known exactly for the memory budget. Decoding happens later, per batch, on
//! the writer thread.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A Kafka topic-partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// Header of one buffered message; payload and key live in [`RawBatch::data`].
#[derive(Debug, Clone)]
pub struct MessageMeta {
    /// Index into [`RawBatch::partitions`].
    pub partition_idx: u32,
    pub offset: i64,
    /// Milliseconds since the epoch, if the message has a timestamp.
    pub timestamp_ms: Option<i64>,
    pub payload: Option<(u32, u32)>,
    pub key: Option<(u32, u32)>,
    /// Headers as (name, value) ranges in `data`; empty unless requested.
    pub headers: Vec<((u32, u32), Option<(u32, u32)>)>,
    /// Set when the payload was too large to buffer: it is dead-lettered
    /// with its size instead of its bytes.
    pub oversized: Option<usize>,
}

/// Progress of one partition within a batch.
#[derive(Debug, Clone)]
pub struct PartitionRange {
    pub tp: TopicPartition,
    /// The partition's progress in the table before this batch (the
    /// expected `txn` version), None when it has none.
    pub base: Option<i64>,
    /// Last offset in this batch.
    pub last: i64,
}

/// A set of messages to be written and committed together.
#[derive(Debug, Default)]
pub struct RawBatch {
    pub data: Vec<u8>,
    pub messages: Vec<MessageMeta>,
    pub partitions: Vec<PartitionRange>,
    index: BTreeMap<TopicPartition, u32>,
    /// The partition of the previous push: messages come in runs.
    last_idx: Option<u32>,
    pub first_received: Option<Instant>,
    /// Bytes charged to the memory budget.
    pub charged: u64,
    /// Rebalance generation the batch was read under.
    pub generation: u64,
}

impl RawBatch {
    /// An empty batch with room for `bytes` of payload and `messages`
    /// messages: filling it never reallocates (a reallocation copies the
    /// whole buffer and briefly holds it twice). Pages are only touched as
    /// they are filled.
    pub fn with_capacity(bytes: usize, messages: usize) -> Self {
        let per_message = bytes / messages.max(1);
        let messages = messages.min(bytes / 64).min(bytes / per_message.max(1));
        RawBatch { data: Vec::with_capacity(bytes.min(1 << 30)), messages: Vec::with_capacity(messages.min(1 << 24)), ..Default::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn bytes(&self) -> usize {
        self.data.len() + self.messages.len() * std::mem::size_of::<MessageMeta>()
    }

    fn put(&mut self, bytes: &[u8]) -> (u32, u32) {
        let start = self.data.len() as u32;
        self.data.extend_from_slice(bytes);
        (start, bytes.len() as u32)
    }

    pub fn slice(&self, range: (u32, u32)) -> &[u8] {
        &self.data[range.0 as usize..(range.0 + range.1) as usize]
    }

    pub fn payload(&self, m: &MessageMeta) -> Option<&[u8]> {
        m.payload.map(|r| self.slice(r))
    }

    pub fn key(&self, m: &MessageMeta) -> Option<&[u8]> {
        m.key.map(|r| self.slice(r))
    }

    pub fn partition_of(&self, m: &MessageMeta) -> &PartitionRange {
        &self.partitions[m.partition_idx as usize]
    }

    /// Appends a message. `base` is the partition's committed progress as
    /// the reader knows it; only the first message of a partition uses it.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        tp: &TopicPartition,
        base: Option<i64>,
        offset: i64,
        timestamp_ms: Option<i64>,
        payload: Option<&[u8]>,
        key: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
        max_payload: usize,
    ) {
        if self.first_received.is_none() {
            self.first_received = Some(Instant::now());
        }
        let cached = self.last_idx.filter(|i| {
            let p = &self.partitions[*i as usize].tp;
            p.partition == tp.partition && (Arc::ptr_eq(&p.topic, &tp.topic) || p.topic == tp.topic)
        });
        let idx = match cached.or_else(|| self.index.get(tp).copied()) {
            Some(i) => i,
            None => {
                let i = self.partitions.len() as u32;
                self.partitions.push(PartitionRange { tp: tp.clone(), base, last: offset });
                self.index.insert(tp.clone(), i);
                i
            }
        };
        self.last_idx = Some(idx);
        self.partitions[idx as usize].last = offset;
        let (payload, oversized) = match payload {
            Some(p) if p.len() > max_payload => (None, Some(p.len())),
            Some(p) => (Some(self.put(p)), None),
            None => (None, None),
        };
        let key = key.map(|k| self.put(k));
        let headers = headers.iter().map(|(n, v)| (self.put(n.as_bytes()), v.map(|v| self.put(v)))).collect();
        self.messages.push(MessageMeta { partition_idx: idx, offset, timestamp_ms, payload, key, headers, oversized });
    }
}

/// Memory shared by all pipelines of a process. Buffered and in-flight
/// batches are charged to it; consumption pauses while it is exhausted.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
}

impl MemoryBudget {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self { limit, used: AtomicU64::new(0) })
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    pub fn exhausted(&self) -> bool {
        self.used() >= self.limit
    }

    pub fn charge(&self, bytes: u64) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition { topic: Arc::from("t"), partition: p }
    }

    #[test]
    fn push_tracks_ranges_and_bytes() {
        let mut b = RawBatch::default();
        b.push(&tp(0), Some(9), 10, Some(1), Some(b"{\"a\":1}"), Some(b"k"), &[], 100);
        b.push(&tp(1), None, 0, None, Some(b"x"), None, &[("h", Some(b"v"))], 100);
        b.push(&tp(0), Some(9), 11, None, Some(&[0u8; 200]), None, &[], 100);
        assert_eq!(b.partitions.len(), 2);
        assert_eq!(b.partitions[0].base, Some(9));
        assert_eq!(b.partitions[0].last, 11);
        assert_eq!(b.payload(&b.messages[0]), Some(&b"{\"a\":1}"[..]));
        assert_eq!(b.key(&b.messages[0]), Some(&b"k"[..]));
        assert_eq!(b.messages[2].oversized, Some(200));
        assert!(b.messages[2].payload.is_none());
    }

    #[test]
    fn budget_counts() {
        let m = MemoryBudget::new(10);
        m.charge(6);
        assert!(!m.exhausted());
        m.charge(6);
        assert!(m.exhausted());
        m.release(6);
        assert!(!m.exhausted());
    }
}
