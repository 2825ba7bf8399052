//! `[unwrap]`: publish the row state instead of the change envelope (Debezium's
//! `ExtractNewRecordState`, "event flattening").

use serde::Deserialize;

/// `[unwrap]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnwrapConfig {
    /// Turns flattening on.
    #[serde(default)]
    pub enabled: bool,
    /// What deletes become (Debezium's `delete.tombstone.handling.mode`).
    #[serde(default)]
    pub delete_tombstone_handling_mode: DeleteHandling,
    /// Envelope fields added to the value (`op`, `table`, `source.ts_ms`, `name:NEW_NAME`).
    #[serde(default)]
    pub add_fields: Vec<String>,
    /// Prefix of the added fields' names.
    #[serde(default = "double_underscore")]
    pub add_fields_prefix: String,
    /// Envelope fields added as record headers.
    #[serde(default)]
    pub add_headers: Vec<String>,
    /// Prefix of the added headers' names.
    #[serde(default = "double_underscore")]
    pub add_headers_prefix: String,
    /// A header listing value fields to leave out (`drop.fields.header.name`; with
    /// `[changed_fields]` headers, for example the unchanged fields of an update).
    #[serde(default)]
    pub drop_fields_header_name: Option<String>,
    /// Leave out only optional fields (`drop.fields.keep.schema.compatible`).
    #[serde(default = "yes")]
    pub drop_fields_keep_schema_compatible: bool,
}

fn yes() -> bool {
    true
}

/// `[changed_fields]`: headers naming the fields an update changed and left unchanged
/// (Debezium's `ExtractChangedRecordState`: `header.changed.name`, `header.unchanged.name`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChangedFieldsConfig {
    /// The header listing the changed fields.
    #[serde(default)]
    pub header_changed_name: Option<String>,
    /// The header listing the unchanged fields.
    #[serde(default)]
    pub header_unchanged_name: Option<String>,
}

impl Default for UnwrapConfig {
    fn default() -> Self {
        UnwrapConfig {
            enabled: false,
            delete_tombstone_handling_mode: DeleteHandling::default(),
            add_fields: Vec::new(),
            add_fields_prefix: double_underscore(),
            add_headers: Vec::new(),
            add_headers_prefix: double_underscore(),
            drop_fields_header_name: None,
            drop_fields_keep_schema_compatible: true,
        }
    }
}

fn double_underscore() -> String {
    "__".into()
}

/// Debezium's `delete.tombstone.handling.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeleteHandling {
    /// Deletes and their tombstones are dropped.
    Drop,
    /// Deletes are dropped, tombstones kept.
    #[default]
    Tombstone,
    /// Deletes become the `before` row with `__deleted = "true"`; tombstones dropped.
    Rewrite,
    /// As `rewrite`, tombstones kept.
    RewriteWithTombstone,
    /// Deletes become tombstones (one per delete).
    #[serde(alias = "delete")]
    DeleteToTombstone,
}

impl DeleteHandling {
    /// Whether values carry the `__deleted` field.
    pub fn rewrites(self) -> bool {
        matches!(
            self,
            DeleteHandling::Rewrite | DeleteHandling::RewriteWithTombstone
        )
    }
}

/// Where an added field's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaSource {
    /// A top-level envelope field: `op`, `ts_ms`, `ts_us`, `ts_ns`.
    Envelope(String),
    /// A field of the `transaction` block: `id`, `total_order`, `data_collection_order`.
    Transaction(String),
    /// A field of the `source` block.
    Source(String),
}

/// The type of an added field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaType {
    /// A string.
    Str,
    /// A 64-bit integer.
    Long,
    /// A 32-bit integer.
    Int,
}

/// One added field or header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaField {
    /// Where its value comes from.
    pub source: MetaSource,
    /// Its name in the value or the headers (prefix included).
    pub name: String,
    /// Its type.
    pub ty: MetaType,
}

const ENVELOPE_FIELDS: [&str; 4] = ["op", "ts_ms", "ts_us", "ts_ns"];
const TRANSACTION_FIELDS: [&str; 3] = ["id", "total_order", "data_collection_order"];
/// Every `source` field of the PostgreSQL and MySQL / MariaDB blocks, with its type.
pub const SOURCE_FIELDS: [(&str, MetaType); 23] = [
    ("version", MetaType::Str),
    ("connector", MetaType::Str),
    ("name", MetaType::Str),
    ("ts_ms", MetaType::Long),
    ("snapshot", MetaType::Str),
    ("db", MetaType::Str),
    ("sequence", MetaType::Str),
    ("ts_us", MetaType::Long),
    ("ts_ns", MetaType::Long),
    ("schema", MetaType::Str),
    ("table", MetaType::Str),
    ("txId", MetaType::Long),
    ("lsn", MetaType::Long),
    ("xmin", MetaType::Long),
    ("origin", MetaType::Str),
    ("origin_lsn", MetaType::Long),
    ("server_id", MetaType::Long),
    ("gtid", MetaType::Str),
    ("file", MetaType::Str),
    ("pos", MetaType::Long),
    ("row", MetaType::Int),
    ("thread", MetaType::Long),
    ("query", MetaType::Str),
];

/// Parses one `add_fields` / `add_headers` entry: `field`, `struct.field`, either with
/// `:NEW_NAME`. Unqualified names are envelope fields (`op`, `ts_ms`, ...), then
/// transaction fields, then `source` fields, as Debezium resolves them.
pub fn parse_meta_field(entry: &str, prefix: &str) -> Result<MetaField, String> {
    let (path, rename) = match entry.split_once(':') {
        Some((p, n)) if !n.trim().is_empty() => (p.trim(), Some(n.trim())),
        Some(_) => return Err(format!("\"{entry}\" has an empty new name after ':'")),
        None => (entry.trim(), None),
    };
    let source_type = |f: &str| SOURCE_FIELDS.iter().find(|(n, _)| *n == f).map(|x| x.1);
    let (source, ty) = match path.split_once('.') {
        Some(("source", f)) => match source_type(f) {
            Some(ty) => (MetaSource::Source(f.into()), ty),
            None => return Err(unknown(entry)),
        },
        Some(("transaction", f)) if TRANSACTION_FIELDS.contains(&f) => {
            (MetaSource::Transaction(f.into()), tx_type(f))
        }
        Some(_) => return Err(unknown(entry)),
        None if ENVELOPE_FIELDS.contains(&path) => (
            MetaSource::Envelope(path.into()),
            if path == "op" {
                MetaType::Str
            } else {
                MetaType::Long
            },
        ),
        None if TRANSACTION_FIELDS.contains(&path) => {
            (MetaSource::Transaction(path.into()), tx_type(path))
        }
        None => match source_type(path) {
            Some(ty) => (MetaSource::Source(path.into()), ty),
            None => return Err(unknown(entry)),
        },
    };
    let name = match rename {
        Some(n) => format!("{prefix}{n}"),
        None => format!("{prefix}{}", path.replace('.', "_")),
    };
    Ok(MetaField { source, name, ty })
}

fn tx_type(field: &str) -> MetaType {
    if field == "id" {
        MetaType::Str
    } else {
        MetaType::Long
    }
}

fn unknown(entry: &str) -> String {
    format!(
        "\"{entry}\" is not a change-event field; use op, ts_ms, ts_us, ts_ns, transaction.id, transaction.total_order, transaction.data_collection_order, or a source field ({}), optionally as source.<field>",
        SOURCE_FIELDS.map(|f| f.0).join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_references_resolve_as_debezium_does() {
        let f = parse_meta_field("op", "__").unwrap();
        assert_eq!(f.source, MetaSource::Envelope("op".into()));
        assert_eq!((f.name.as_str(), f.ty), ("__op", MetaType::Str));
        let f = parse_meta_field("source.ts_ms", "__").unwrap();
        assert_eq!(f.source, MetaSource::Source("ts_ms".into()));
        assert_eq!(f.name, "__source_ts_ms");
        let f = parse_meta_field("ts_ms", "__").unwrap();
        assert_eq!(f.source, MetaSource::Envelope("ts_ms".into()));
        let f = parse_meta_field("table", "").unwrap();
        assert_eq!(
            (f.source, f.name.as_str()),
            (MetaSource::Source("table".into()), "table")
        );
        let f = parse_meta_field("source.ts_ms:EVENT_TIMESTAMP", "__").unwrap();
        assert_eq!(f.name, "__EVENT_TIMESTAMP");
        let f = parse_meta_field("total_order", "__").unwrap();
        assert_eq!(
            (f.source, f.ty),
            (
                MetaSource::Transaction("total_order".into()),
                MetaType::Long
            )
        );
        assert_eq!(parse_meta_field("row", "__").unwrap().ty, MetaType::Int);
        assert!(parse_meta_field("lsnn", "__")
            .unwrap_err()
            .contains("not a change-event field"));
        assert!(parse_meta_field("after.id", "__").is_err());
        assert!(parse_meta_field("op:", "__").is_err());
    }
}
