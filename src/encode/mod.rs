//! `ChangeEvent` → records (topic, key bytes, value bytes, headers).
//!
//! Encoders are built per connector and cache per table-schema version everything that does
//! not depend on the row (topic name, serialized schemas), so the hot path only writes the
//! payload.

mod json;
mod schema;

pub use json::JsonEncoder;

use std::sync::Arc;

/// One record for the sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Topic name.
    pub topic: Arc<str>,
    /// Key bytes (`None`: null key).
    pub key: Option<Vec<u8>>,
    /// Value bytes (`None`: tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<(&'static str, Vec<u8>)>,
}

/// Topic-name segment: characters Kafka refuses in topic names become `_`.
pub fn topic_segment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
