//! Avro schemas of the Debezium envelope, as Confluent's AvroConverter writes the Connect
//! schemas: records `<prefix>.<schema>.<table>.Key` / `.Value` / `.Envelope` (every name
//! segment made Avro-safe), the connector's `Source` record, optional fields as `["null", T]`
//! with a `null` default, `connect.name` / `connect.version` / `connect.parameters`
//! properties, and the `decimal` logical type.

use serde_json::{json, Map, Value as Json};

use super::flatten::Flatten;
use super::schema::SNAPSHOT_ALLOWED;
use crate::config::MetaType;
use crate::event::{Column, ColumnKind, TableId, TableSchema, Value};

/// Precision Confluent's AvroData assumes for a decimal without one.
pub(super) const DEFAULT_DECIMAL_PRECISION: u32 = 64;

/// Makes a name segment Avro-safe: `[A-Za-z0-9_]`, not starting with a digit.
pub fn avro_segment(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Tracks named types already defined in one schema (Avro allows one definition per name).
#[derive(Default)]
pub(crate) struct Names(Vec<String>);

impl Names {
    /// The definition the first time, a reference by full name afterwards.
    fn define(&mut self, full_name: &str, definition: impl FnOnce() -> Json) -> Json {
        if self.0.iter().any(|n| n == full_name) {
            Json::String(full_name.to_string())
        } else {
            self.0.push(full_name.to_string());
            definition()
        }
    }
}

pub(super) fn connect(ty: &str, name: &str, params: Option<Json>) -> Json {
    let mut m = Map::new();
    m.insert("type".into(), json!(ty));
    m.insert("connect.version".into(), json!(1));
    if let Some(p) = params {
        m.insert("connect.parameters".into(), p);
    }
    m.insert("connect.name".into(), json!(name));
    Json::Object(m)
}

/// A Connect logical type as AvroData writes it: Connect's name plus Avro's `logicalType`.
fn logical(ty: &str, name: &str, logical_type: &str) -> Json {
    let mut t = connect(ty, name, None);
    t["logicalType"] = json!(logical_type);
    t
}

/// The Avro type of a column kind (not nullable).
pub(super) fn kind_type(kind: &ColumnKind, names: &mut Names) -> Json {
    match kind {
        ColumnKind::Boolean => json!("boolean"),
        ColumnKind::Int8 => json!({"type": "int", "connect.type": "int8"}),
        ColumnKind::Int16 => json!({"type": "int", "connect.type": "int16"}),
        ColumnKind::Int32 => json!("int"),
        ColumnKind::Int64 => json!("long"),
        ColumnKind::Float32 => json!("float"),
        ColumnKind::Float64 => json!("double"),
        ColumnKind::Decimal { precision, scale } => {
            let mut params = Map::new();
            params.insert("scale".into(), json!(scale.to_string()));
            if let Some(p) = precision {
                params.insert("connect.decimal.precision".into(), json!(p.to_string()));
            }
            json!({
                "type": "bytes",
                "scale": scale,
                "precision": precision.unwrap_or(DEFAULT_DECIMAL_PRECISION).max(*scale).max(1),
                "connect.version": 1,
                "connect.parameters": params,
                "connect.name": "org.apache.kafka.connect.data.Decimal",
                "logicalType": "decimal"
            })
        }
        ColumnKind::PreciseUnsigned => kind_type(
            &ColumnKind::Decimal {
                precision: None,
                scale: 0,
            },
            names,
        ),
        ColumnKind::VariableDecimal => {
            names.define("io.debezium.data.VariableScaleDecimal", || {
                json!({
                    "type": "record",
                    "name": "VariableScaleDecimal",
                    "namespace": "io.debezium.data",
                    "fields": [
                        {"name": "scale", "type": "int"},
                        {"name": "value", "type": "bytes"}
                    ],
                    "connect.doc": "Variable scaled decimal",
                    "connect.version": 1,
                    "connect.name": "io.debezium.data.VariableScaleDecimal"
                })
            })
        }
        ColumnKind::Text => json!("string"),
        ColumnKind::Bytes => json!("bytes"),
        ColumnKind::Date => connect("int", "io.debezium.time.Date", None),
        ColumnKind::TimeMillis => connect("int", "io.debezium.time.Time", None),
        ColumnKind::TimeMicros => connect("long", "io.debezium.time.MicroTime", None),
        ColumnKind::TimestampMillis => connect("long", "io.debezium.time.Timestamp", None),
        ColumnKind::TimestampMicros => connect("long", "io.debezium.time.MicroTimestamp", None),
        ColumnKind::ZonedTimestamp => connect("string", "io.debezium.time.ZonedTimestamp", None),
        ColumnKind::ZonedTime => connect("string", "io.debezium.time.ZonedTime", None),
        ColumnKind::Interval => connect("long", "io.debezium.time.MicroDuration", None),
        ColumnKind::Json => connect("string", "io.debezium.data.Json", None),
        ColumnKind::Uuid => connect("string", "io.debezium.data.Uuid", None),
        ColumnKind::Xml => connect("string", "io.debezium.data.Xml", None),
        ColumnKind::Ltree => connect("string", "io.debezium.data.Ltree", None),
        ColumnKind::IntervalString => connect("string", "io.debezium.time.Interval", None),
        ColumnKind::ConnectDate => logical("int", "org.apache.kafka.connect.data.Date", "date"),
        ColumnKind::ConnectTime => {
            logical("int", "org.apache.kafka.connect.data.Time", "time-millis")
        }
        ColumnKind::ConnectTimestamp => logical(
            "long",
            "org.apache.kafka.connect.data.Timestamp",
            "timestamp-millis",
        ),
        ColumnKind::StringMap => json!({"type": "map", "values": ["null", "string"]}),
        ColumnKind::Enum { allowed } => connect(
            "string",
            "io.debezium.data.Enum",
            Some(json!({"allowed": allowed.join(",")})),
        ),
        ColumnKind::Bits { length } => connect(
            "bytes",
            "io.debezium.data.Bits",
            Some(json!({"length": length.to_string()})),
        ),
        ColumnKind::Array(elem) => {
            // Debezium declares enum items required, other items optional.
            if matches!(**elem, ColumnKind::Enum { .. }) {
                json!({"type": "array", "items": kind_type(elem, names)})
            } else {
                json!({"type": "array", "items": ["null", kind_type(elem, names)]})
            }
        }
        ColumnKind::Year => connect("int", "io.debezium.time.Year", None),
        ColumnKind::EnumSet { allowed } => connect(
            "string",
            "io.debezium.data.EnumSet",
            Some(json!({"allowed": allowed.join(",")})),
        ),
        ColumnKind::Point => names.define("io.debezium.data.geometry.Point", || {
            json!({
                "type": "record",
                "name": "Point",
                "namespace": "io.debezium.data.geometry",
                "fields": [
                    {"name": "x", "type": "double"},
                    {"name": "y", "type": "double"},
                    {"name": "wkb", "type": ["null", "bytes"], "default": null},
                    {"name": "srid", "type": ["null", "int"], "default": null}
                ],
                "connect.doc": "Geometry (POINT)",
                "connect.version": 1,
                "connect.name": "io.debezium.data.geometry.Point"
            })
        }),
        ColumnKind::Geometry => names.define("io.debezium.data.geometry.Geometry", || {
            json!({
                "type": "record",
                "name": "Geometry",
                "namespace": "io.debezium.data.geometry",
                "fields": [
                    {"name": "wkb", "type": "bytes"},
                    {"name": "srid", "type": ["null", "int"], "default": null}
                ],
                "connect.doc": "Geometry",
                "connect.version": 1,
                "connect.name": "io.debezium.data.geometry.Geometry"
            })
        }),
    }
}

/// A column default as Confluent's AvroData writes it into a schema (`default` of the field
/// and `connect.default` of its type): numbers, booleans and strings as themselves, bytes
/// (and decimals' bytes) as a string of ISO-8859-1 characters. `None` for kinds Sluice
/// writes as named records or containers (their defaults are left out; see
/// docs/type-mapping.md).
pub(super) fn avro_default(kind: &ColumnKind, value: &Value) -> Option<Json> {
    let latin1 = |b: &[u8]| Json::String(b.iter().map(|&c| char::from(c)).collect());
    match (kind, value) {
        (
            ColumnKind::VariableDecimal
            | ColumnKind::Point
            | ColumnKind::Geometry
            | ColumnKind::Array(_)
            | ColumnKind::StringMap,
            _,
        ) => None,
        (_, Value::Bool(b)) => Some(json!(b)),
        (_, Value::Int(i)) => Some(json!(i)),
        (_, Value::Float(f)) if f.is_finite() => Some(json!(f)),
        (_, Value::Text(t)) => Some(json!(&**t)),
        (_, Value::Bytes(b)) => Some(latin1(b)),
        (_, Value::Decimal(d)) => Some(latin1(&d.unscaled)),
        _ => None,
    }
}

/// Where `null` sits in a column's union.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Union {
    /// Not a union: the column is required.
    Required,
    /// `["null", T]`: optional without a default.
    NullFirst,
    /// `[T, "null"]`: optional with a default (AvroData puts the default's type first).
    NullLast,
}

/// The union shape of a column's field.
pub(super) fn union_of(c: &Column, optional: bool) -> Union {
    match (
        optional,
        c.default.as_ref().and_then(|d| avro_default(&c.kind, d)),
    ) {
        (false, _) => Union::Required,
        (true, None) => Union::NullFirst,
        (true, Some(_)) => Union::NullLast,
    }
}

/// A column's field: its type, with the default (when it has one AvroData would write).
fn column_field(c: &Column, optional: bool, defined: &mut Names) -> Json {
    let name = avro_segment(&c.name);
    let ty = kind_type(&c.kind, defined);
    let Some(default) = c.default.as_ref().and_then(|d| avro_default(&c.kind, d)) else {
        return field(&name, ty, optional);
    };
    let mut ty = match ty {
        Json::String(t) => json!({ "type": t }),
        other => other,
    };
    ty["connect.default"] = default.clone();
    if optional {
        json!({"name": name, "type": [ty, "null"], "default": default})
    } else {
        json!({"name": name, "type": ty, "default": default})
    }
}

pub(super) fn field(name: &str, ty: Json, optional: bool) -> Json {
    if optional {
        json!({"name": name, "type": ["null", ty], "default": null})
    } else {
        json!({"name": name, "type": ty})
    }
}

/// Avro names of one table: namespace and record names.
pub(super) struct TableNames {
    /// `<prefix>.<schema>.<table>`, Avro-safe.
    pub(super) namespace: String,
}

impl TableNames {
    /// The names of a table under a topic prefix.
    pub(super) fn new(prefix: &str, id: &TableId) -> Self {
        TableNames {
            namespace: format!(
                "{}.{}.{}",
                avro_segment(prefix),
                avro_segment(&id.schema),
                avro_segment(&id.name)
            ),
        }
    }

    /// A record's full name.
    pub(super) fn full(&self, record: &str) -> String {
        format!("{}.{record}", self.namespace)
    }
}

pub(super) fn key_schema(table: &TableSchema, names: &TableNames) -> Option<Json> {
    if table.key.is_empty() {
        return None;
    }
    let mut defined = Names::default();
    let fields: Vec<Json> = table
        .key
        .iter()
        .filter_map(|i| table.columns.get(*i))
        .map(|c| column_field(c, false, &mut defined))
        .collect();
    Some(json!({
        "type": "record",
        "name": "Key",
        "namespace": names.namespace,
        "fields": fields,
        "connect.name": names.full("Key")
    }))
}

pub(super) fn source_schema(connector: &str) -> Json {
    let opt = |n: &str, t: &str| field(n, json!(t), true);
    let req = |n: &str, t: &str| field(n, json!(t), false);
    let mut fields = vec![
        req("version", "string"),
        req("connector", "string"),
        req("name", "string"),
        req("ts_ms", "long"),
        json!({
            "name": "snapshot",
            "type": [{
                "type": "string",
                "connect.version": 1,
                "connect.parameters": {"allowed": SNAPSHOT_ALLOWED},
                "connect.default": "false",
                "connect.name": "io.debezium.data.Enum"
            }, "null"],
            "default": "false"
        }),
        req("db", "string"),
        opt("sequence", "string"),
        opt("ts_us", "long"),
        opt("ts_ns", "long"),
    ];
    if connector == "postgresql" {
        fields.extend([
            req("schema", "string"),
            req("table", "string"),
            opt("txId", "long"),
            opt("lsn", "long"),
            opt("xmin", "long"),
            opt("origin", "string"),
            opt("origin_lsn", "long"),
        ]);
    } else {
        fields.extend([
            opt("table", "string"),
            req("server_id", "long"),
            opt("gtid", "string"),
            req("file", "string"),
            req("pos", "long"),
            req("row", "int"),
            opt("thread", "long"),
            opt("query", "string"),
        ]);
    }
    json!({
        "type": "record",
        "name": "Source",
        "namespace": format!("io.debezium.connector.{connector}"),
        "fields": fields,
        "connect.version": 1,
        "connect.name": format!("io.debezium.connector.{connector}.Source")
    })
}

/// The flattened value's schema (`[unwrap]`): the `Value` record with the added fields
/// (optional, null first) and `__deleted` in the rewrite modes.
pub(super) fn flat_schema(table: &TableSchema, names: &TableNames, flatten: &Flatten) -> Json {
    let mut defined = Names::default();
    let mut fields: Vec<Json> = table
        .columns
        .iter()
        .map(|c| column_field(c, c.nullable, &mut defined))
        .collect();
    for f in &flatten.fields {
        let ty = match f.ty {
            MetaType::Str => "string",
            MetaType::Long => "long",
            MetaType::Int => "int",
        };
        fields.push(field(&avro_segment(&f.name), json!(ty), true));
    }
    if flatten.mode.rewrites() {
        fields.push(field(super::flatten::DELETED_FIELD, json!("string"), true));
    }
    json!({
        "type": "record",
        "name": "Value",
        "namespace": names.namespace,
        "fields": fields,
        "connect.name": names.full("Value")
    })
}

pub(super) fn envelope_schema(table: &TableSchema, names: &TableNames, connector: &str) -> Json {
    let mut defined = Names::default();
    let value_fields: Vec<Json> = table
        .columns
        .iter()
        .map(|c| column_field(c, c.nullable, &mut defined))
        .collect();
    let value = json!({
        "type": "record",
        "name": "Value",
        "namespace": names.namespace,
        "fields": value_fields,
        "connect.name": names.full("Value")
    });
    json!({
        "type": "record",
        "name": "Envelope",
        "namespace": names.namespace,
        "fields": [
            field("before", value, true),
            field("after", json!(names.full("Value")), true),
            field("source", source_schema(connector), false),
            field("transaction", json!({
                "type": "record",
                "name": "block",
                "namespace": "event",
                "fields": [
                    {"name": "id", "type": "string"},
                    {"name": "total_order", "type": "long"},
                    {"name": "data_collection_order", "type": "long"}
                ],
                "connect.version": 1,
                "connect.name": "event.block"
            }), true),
            field("op", json!("string"), false),
            field("ts_ms", json!("long"), true),
            field("ts_us", json!("long"), true),
            field("ts_ns", json!("long"), true),
        ],
        "connect.version": 2,
        "connect.name": names.full("Envelope")
    })
}
