//! Where messages come from: Kafka consumer groups.

pub mod kafka;
