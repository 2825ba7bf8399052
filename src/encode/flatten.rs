//! Event flattening (`[unwrap]`, Debezium's `ExtractNewRecordState`): which records a change
//! becomes when the value is the row state, and the metadata added to values and headers.
//!
//! - create, read, update: the `after` row;
//! - delete: by `delete_tombstone_handling_mode` — dropped (`drop`, `tombstone`), the
//!   `before` row with `__deleted = "true"` (`rewrite`, `rewrite-with-tombstone`), or a
//!   tombstone in its place (`delete-to-tombstone`); the tombstone that follows a delete is
//!   kept by `tombstone` and `rewrite-with-tombstone` only;
//! - truncate: dropped (it has no row state);
//! - heartbeat, transaction and schema-change records are not change envelopes and pass
//!   unchanged.

use std::sync::Arc;

use serde_json::Value as Json;

use crate::config::{DeleteHandling, MetaField, MetaSource, UnwrapConfig};
use crate::event::{ChangeEvent, Op};

/// The flattening a connector asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flatten {
    /// What deletes become.
    pub mode: DeleteHandling,
    /// Fields added to values.
    pub fields: Vec<MetaField>,
    /// Fields added as headers.
    pub headers: Vec<MetaField>,
}

/// The field rewrite modes add to every value.
pub const DELETED_FIELD: &str = "__deleted";

impl Flatten {
    /// The flattening of `[unwrap]` (`None` when it is off). The entries were validated with
    /// the file; one that does not parse here is left out.
    pub fn from_config(c: &UnwrapConfig) -> Option<Arc<Flatten>> {
        if !c.enabled {
            return None;
        }
        let parse = |entries: &[String], prefix: &str| {
            entries
                .iter()
                .filter_map(|e| crate::config::unwrap::parse_meta_field(e, prefix).ok())
                .collect()
        };
        Some(Arc::new(Flatten {
            mode: c.delete_tombstone_handling_mode,
            fields: parse(&c.add_fields, &c.add_fields_prefix),
            headers: parse(&c.add_headers, &c.add_headers_prefix),
        }))
    }

    /// Whether a record's metadata must be gathered.
    pub(super) fn needs_meta(&self) -> bool {
        !self.fields.is_empty() || !self.headers.is_empty()
    }
}

/// The value of one added field, from the record's `source` block (as JSON) and envelope.
pub(super) fn meta_value(
    field: &MetaField,
    source: &Json,
    event: &ChangeEvent,
    op: Op,
    now_ns: i64,
) -> Json {
    match &field.source {
        MetaSource::Envelope(name) => match name.as_str() {
            "op" => Json::from(op.code()),
            "ts_ms" => Json::from(now_ns / 1_000_000),
            "ts_us" => Json::from(now_ns / 1000),
            _ => Json::from(now_ns),
        },
        MetaSource::Transaction(name) => match (&event.transaction, name.as_str()) {
            (Some(tx), "id") => Json::from(&*tx.id),
            (Some(tx), "total_order") => Json::from(tx.total_order),
            (Some(tx), _) => Json::from(tx.data_collection_order),
            (None, _) => Json::Null,
        },
        MetaSource::Source(name) => source.get(name).cloned().unwrap_or(Json::Null),
    }
}

/// A header value as Kafka Connect's default header converter writes it: strings as they
/// are, numbers in decimal; `None` for null (no header).
pub(super) fn header_bytes(v: &Json) -> Option<Vec<u8>> {
    match v {
        Json::Null => None,
        Json::String(s) => Some(s.as_bytes().to_vec()),
        other => Some(other.to_string().into_bytes()),
    }
}
