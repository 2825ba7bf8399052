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
use crate::event::{ChangeEvent, Op, SourceDetail, TableSchema, Value};

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

    /// Whether a record's `source` block must be rendered for its metadata (a field not
    /// read straight from the event).
    pub(super) fn needs_block(&self) -> bool {
        self.fields
            .iter()
            .chain(&self.headers)
            .any(|f| matches!(&f.source, MetaSource::Source(n) if !direct(n)))
    }
}

/// The value of one added field, from the record's `source` block (as JSON) and envelope.
pub(super) fn meta_value(
    field: &MetaField,
    source: &Json,
    (prefix, event, table): (&str, &ChangeEvent, &TableSchema),
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
        MetaSource::Source(name) => source_field(name, prefix, event, table)
            .unwrap_or_else(|| source.get(name).cloned().unwrap_or(Json::Null)),
    }
}

/// Whether a `source` field is read straight from the event (others from the rendered block).
pub(super) fn direct(name: &str) -> bool {
    !matches!(name, "sequence")
}

/// A `source` field's value as the envelope's `source` block has it, read from the event
/// (`None`: render the block, see [`direct`]); fields the connector's block lacks are null.
fn source_field(
    name: &str,
    prefix: &str,
    event: &ChangeEvent,
    table: &TableSchema,
) -> Option<Json> {
    let src = &event.source;
    let opt = |v: Option<i64>| v.map_or(Json::Null, Json::from);
    Some(match (name, &src.detail) {
        ("version", _) => Json::from(env!("CARGO_PKG_VERSION")),
        ("connector", d) => Json::from(d.connector()),
        ("name", _) => Json::from(prefix),
        ("ts_ms", _) => Json::from(src.ts_us.div_euclid(1000)),
        ("ts_us", _) => Json::from(src.ts_us),
        ("ts_ns", _) => Json::from(src.ts_us.saturating_mul(1000)),
        ("snapshot", _) => Json::from(src.snapshot.as_str()),
        ("db", _) => Json::from(&*src.db),
        ("table", _) => Json::from(table.id.name.as_str()),
        ("schema", SourceDetail::Postgres { .. }) => Json::from(table.id.schema.as_str()),
        ("txId", SourceDetail::Postgres { tx_id, .. }) => opt(*tx_id),
        ("lsn", SourceDetail::Postgres { lsn, .. }) => opt(lsn.map(|v| v as i64)),
        ("origin", SourceDetail::Postgres { origin, .. }) => {
            origin.as_deref().map_or(Json::Null, Json::from)
        }
        ("origin_lsn", SourceDetail::Postgres { origin_lsn, .. }) => {
            opt(origin_lsn.map(|v| v as i64))
        }
        ("server_id", SourceDetail::Mysql { shared, .. }) => Json::from(shared.server_id),
        ("gtid", SourceDetail::Mysql { shared, .. }) => {
            shared.gtid.as_deref().map_or(Json::Null, Json::from)
        }
        ("file", SourceDetail::Mysql { shared, .. }) => Json::from(&*shared.file),
        ("pos", SourceDetail::Mysql { shared, .. }) => Json::from(shared.pos),
        ("row", SourceDetail::Mysql { row, .. }) => Json::from(*row),
        ("thread", SourceDetail::Mysql { shared, .. }) => opt(shared.thread.map(i64::from)),
        ("query", SourceDetail::Mysql { shared, .. }) => {
            shared.query.as_deref().map_or(Json::Null, Json::from)
        }
        ("sequence", _) => return None,
        _ => Json::Null,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{
        Column, ColumnKind, MysqlDetail, MysqlFlavor, SnapshotMarker, SourceMeta, TableId,
    };
    use crate::position::{PgPosition, SourcePosition};

    fn event(detail: SourceDetail) -> (ChangeEvent, TableSchema) {
        let table = TableSchema {
            id: TableId {
                schema: "shop".into(),
                name: "items".into(),
            },
            columns: vec![Column {
                name: "id".into(),
                kind: ColumnKind::Int32,
                nullable: false,
                default: None,
                length: None,
            }],
            key: vec![0],
        };
        let event = ChangeEvent {
            op: Op::Create,
            table: None,
            before: None,
            after: Some(vec![Value::Int(1)]),
            source: SourceMeta {
                ts_us: 1_704_164_645_123_456,
                snapshot: SnapshotMarker::Last,
                db: Arc::from("shop"),
                detail,
            },
            message: None,
            transaction: None,
            position: SourcePosition::Postgres(PgPosition::at(0)),
        };
        (event, table)
    }

    /// Every field read straight from the event equals the rendered block's.
    #[test]
    fn direct_source_fields_match_the_rendered_block() {
        let pg = SourceDetail::Postgres {
            tx_id: Some(77),
            lsn: Some(500),
            last_commit_lsn: Some(400),
            origin: Some("o".into()),
            origin_lsn: Some(9),
        };
        let my = SourceDetail::Mysql {
            shared: Arc::new(MysqlDetail {
                flavor: MysqlFlavor::Mariadb,
                server_id: 3,
                gtid: Some(Arc::from("0-1-7")),
                file: Arc::from("mariadb-bin.000002"),
                pos: 1234,
                thread: Some(12),
                query: None,
            }),
            row: 2,
        };
        for detail in [pg, my] {
            let (event, table) = event(detail);
            let json = crate::encode::JsonEncoder::new("inv", false);
            let block = json.source_block(&event, &table);
            for (name, _) in crate::config::unwrap::SOURCE_FIELDS {
                if !direct(name) {
                    continue;
                }
                let want = block.get(name).cloned().unwrap_or(Json::Null);
                assert_eq!(
                    source_field(name, "inv", &event, &table),
                    Some(want),
                    "{name} of {}",
                    event.source.detail.connector()
                );
            }
        }
    }
}
