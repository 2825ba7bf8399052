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

use crate::config::{ChangedFieldsConfig, DeleteHandling, MetaField, MetaSource, UnwrapConfig};
use crate::event::{ChangeEvent, Op, TableSchema, Value};

/// The flattening a connector asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flatten {
    /// What deletes become.
    pub mode: DeleteHandling,
    /// Fields added to values.
    pub fields: Vec<MetaField>,
    /// Fields added as headers.
    pub headers: Vec<MetaField>,
    /// The header whose field names are left out of the value.
    pub drop_header: Option<String>,
    /// Leave out optional fields only.
    pub keep_compatible: bool,
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
            drop_header: c.drop_fields_header_name.clone(),
            keep_compatible: c.drop_fields_keep_schema_compatible,
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

/// `[changed_fields]`: the headers naming an update's changed and unchanged fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangedFields {
    changed: Option<String>,
    unchanged: Option<String>,
}

impl ChangedFields {
    /// The headers `[changed_fields]` asks for (`None` when none).
    pub fn from_config(c: &ChangedFieldsConfig) -> Option<Arc<ChangedFields>> {
        (c.header_changed_name.is_some() || c.header_unchanged_name.is_some()).then(|| {
            Arc::new(ChangedFields {
                changed: c.header_changed_name.clone(),
                unchanged: c.header_unchanged_name.clone(),
            })
        })
    }
}

/// An update's columns, split into changed and unchanged (a value the source did not send,
/// an unchanged TOASTed one, is unchanged). `None` without both images.
pub(super) fn diff(
    before: Option<&[Value]>,
    after: Option<&[Value]>,
) -> Option<(Vec<usize>, Vec<usize>)> {
    let (b, a) = (before?, after?);
    let (mut changed, mut unchanged) = (Vec::new(), Vec::new());
    for (i, v) in a.iter().enumerate() {
        if *v == Value::Unavailable || b.get(i) == Some(v) {
            unchanged.push(i);
        } else {
            changed.push(i);
        }
    }
    Some((changed, unchanged))
}

/// The `[changed_fields]` headers of an update: each a JSON array of field names.
pub(super) fn changed_headers(
    cf: &ChangedFields,
    table: &TableSchema,
    (changed, unchanged): &(Vec<usize>, Vec<usize>),
) -> Vec<(std::borrow::Cow<'static, str>, Vec<u8>)> {
    let names = |idx: &[usize]| {
        Json::from(
            idx.iter()
                .filter_map(|i| table.columns.get(*i).map(|c| c.name.clone()))
                .collect::<Vec<_>>(),
        )
        .to_string()
        .into_bytes()
    };
    let mut out = Vec::new();
    if let Some(h) = &cf.changed {
        out.push((std::borrow::Cow::Owned(h.clone()), names(changed)));
    }
    if let Some(h) = &cf.unchanged {
        out.push((std::borrow::Cow::Owned(h.clone()), names(unchanged)));
    }
    out
}

/// The columns `drop_fields_header_name` leaves out of an update's flattened value: those
/// its header (one of `[changed_fields]`') lists, optional ones only unless
/// `drop_fields_keep_schema_compatible = false`.
pub(super) fn dropped(
    flatten: &Flatten,
    cf: Option<&ChangedFields>,
    table: &TableSchema,
    split: &(Vec<usize>, Vec<usize>),
) -> Vec<usize> {
    let (Some(header), Some(cf)) = (&flatten.drop_header, cf) else {
        return Vec::new();
    };
    let listed = if cf.unchanged.as_ref() == Some(header) {
        &split.1
    } else if cf.changed.as_ref() == Some(header) {
        &split.0
    } else {
        return Vec::new();
    };
    listed
        .iter()
        .copied()
        .filter(|i| {
            table
                .columns
                .get(*i)
                .is_some_and(|c| c.nullable || !flatten.keep_compatible)
        })
        .collect()
}

/// A table schema and row without the `dropped` columns.
pub(super) fn narrow(
    table: &TableSchema,
    row: &[Value],
    dropped: &[usize],
) -> (TableSchema, Vec<Value>) {
    let keep: Vec<usize> = (0..table.columns.len())
        .filter(|i| !dropped.contains(i))
        .collect();
    let narrowed = TableSchema {
        id: table.id.clone(),
        columns: keep.iter().map(|i| table.columns[*i].clone()).collect(),
        key: table
            .key
            .iter()
            .filter_map(|k| keep.iter().position(|i| i == k))
            .collect(),
    };
    let row = keep
        .iter()
        .map(|i| row.get(*i).cloned().unwrap_or(Value::Null))
        .collect();
    (narrowed, row)
}
