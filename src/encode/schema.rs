//! Kafka Connect schemas of the Debezium envelope, as JsonConverter prints them
//! (`{"type", "optional", "name"?, "version"?, "parameters"?, "field"}`).

use serde_json::{json, Map, Value as Json};

use super::flatten::Flatten;
use super::route::Routed;
use crate::config::MetaType;
use crate::event::{Column, ColumnKind, TableSchema};

/// The `snapshot` field's allowed values, in Debezium's order.
pub(super) const SNAPSHOT_ALLOWED: &str =
    "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental";

/// The schema of one column's values (without the `field` name).
fn kind_schema(kind: &ColumnKind, optional: bool) -> Map<String, Json> {
    let mut m = Map::new();
    let (ty, name, params): (&str, Option<&str>, Option<Json>) = match kind {
        ColumnKind::Boolean => ("boolean", None, None),
        ColumnKind::Int8 => ("int8", None, None),
        ColumnKind::Int16 => ("int16", None, None),
        ColumnKind::Int32 => ("int32", None, None),
        ColumnKind::Int64 => ("int64", None, None),
        ColumnKind::Float32 => ("float", None, None),
        ColumnKind::Float64 => ("double", None, None),
        ColumnKind::Decimal { precision, scale } => {
            let mut p = Map::new();
            p.insert("scale".into(), json!(scale.to_string()));
            if let Some(precision) = precision {
                p.insert(
                    "connect.decimal.precision".into(),
                    json!(precision.to_string()),
                );
            }
            (
                "bytes",
                Some("org.apache.kafka.connect.data.Decimal"),
                Some(Json::Object(p)),
            )
        }
        ColumnKind::PreciseUnsigned => {
            return kind_schema(
                &ColumnKind::Decimal {
                    precision: None,
                    scale: 0,
                },
                optional,
            )
        }
        ColumnKind::VariableDecimal => {
            m.insert("type".into(), json!("struct"));
            m.insert(
                "fields".into(),
                json!([
                    {"type": "int32", "optional": false, "field": "scale"},
                    {"type": "bytes", "optional": false, "field": "value"}
                ]),
            );
            m.insert("optional".into(), json!(optional));
            m.insert(
                "name".into(),
                json!("io.debezium.data.VariableScaleDecimal"),
            );
            m.insert("version".into(), json!(1));
            m.insert("doc".into(), json!("Variable scaled decimal"));
            return m;
        }
        ColumnKind::Text => ("string", None, None),
        ColumnKind::Bytes => ("bytes", None, None),
        ColumnKind::Date => ("int32", Some("io.debezium.time.Date"), None),
        ColumnKind::TimeMillis => ("int32", Some("io.debezium.time.Time"), None),
        ColumnKind::TimeMicros => ("int64", Some("io.debezium.time.MicroTime"), None),
        ColumnKind::TimestampMillis => ("int64", Some("io.debezium.time.Timestamp"), None),
        ColumnKind::TimestampMicros => ("int64", Some("io.debezium.time.MicroTimestamp"), None),
        ColumnKind::ZonedTimestamp => ("string", Some("io.debezium.time.ZonedTimestamp"), None),
        ColumnKind::ZonedTime => ("string", Some("io.debezium.time.ZonedTime"), None),
        ColumnKind::Interval => ("int64", Some("io.debezium.time.MicroDuration"), None),
        ColumnKind::Json => ("string", Some("io.debezium.data.Json"), None),
        ColumnKind::Uuid => ("string", Some("io.debezium.data.Uuid"), None),
        ColumnKind::Xml => ("string", Some("io.debezium.data.Xml"), None),
        ColumnKind::Ltree => ("string", Some("io.debezium.data.Ltree"), None),
        ColumnKind::IntervalString => ("string", Some("io.debezium.time.Interval"), None),
        ColumnKind::ConnectDate => ("int32", Some("org.apache.kafka.connect.data.Date"), None),
        ColumnKind::ConnectTime => ("int32", Some("org.apache.kafka.connect.data.Time"), None),
        ColumnKind::ConnectTimestamp => (
            "int64",
            Some("org.apache.kafka.connect.data.Timestamp"),
            None,
        ),
        ColumnKind::StringMap => {
            m.insert("type".into(), json!("map"));
            m.insert("keys".into(), json!({"type": "string", "optional": false}));
            m.insert("values".into(), json!({"type": "string", "optional": true}));
            m.insert("optional".into(), json!(optional));
            return m;
        }
        ColumnKind::Enum { allowed } => (
            "string",
            Some("io.debezium.data.Enum"),
            Some(json!({ "allowed": allowed.join(",") })),
        ),
        ColumnKind::Bits { length } => (
            "bytes",
            Some("io.debezium.data.Bits"),
            Some(json!({ "length": length.to_string() })),
        ),
        ColumnKind::Year => ("int32", Some("io.debezium.time.Year"), None),
        ColumnKind::EnumSet { allowed } => (
            "string",
            Some("io.debezium.data.EnumSet"),
            Some(json!({ "allowed": allowed.join(",") })),
        ),
        ColumnKind::Geometry => {
            m.insert("type".into(), json!("struct"));
            m.insert(
                "fields".into(),
                json!([
                    {"type": "bytes", "optional": false, "field": "wkb"},
                    {"type": "int32", "optional": true, "field": "srid"}
                ]),
            );
            m.insert("optional".into(), json!(optional));
            m.insert("name".into(), json!("io.debezium.data.geometry.Geometry"));
            m.insert("version".into(), json!(1));
            m.insert("doc".into(), json!("Geometry"));
            return m;
        }
        ColumnKind::Point => {
            m.insert("type".into(), json!("struct"));
            m.insert(
                "fields".into(),
                json!([
                    {"type": "double", "optional": false, "field": "x"},
                    {"type": "double", "optional": false, "field": "y"},
                    {"type": "bytes", "optional": true, "field": "wkb"},
                    {"type": "int32", "optional": true, "field": "srid"}
                ]),
            );
            m.insert("optional".into(), json!(optional));
            m.insert("name".into(), json!("io.debezium.data.geometry.Point"));
            m.insert("version".into(), json!(1));
            m.insert("doc".into(), json!("Geometry (POINT)"));
            return m;
        }
        ColumnKind::Array(elem) => {
            m.insert("type".into(), json!("array"));
            // Debezium declares enum items required, other items optional.
            let items_optional = !matches!(**elem, ColumnKind::Enum { .. });
            m.insert(
                "items".into(),
                Json::Object(kind_schema(elem, items_optional)),
            );
            m.insert("optional".into(), json!(optional));
            return m;
        }
    };
    m.insert("type".into(), json!(ty));
    m.insert("optional".into(), json!(optional));
    if let Some(name) = name {
        m.insert("name".into(), json!(name));
        m.insert("version".into(), json!(1));
    }
    if let Some(params) = params {
        m.insert("parameters".into(), params);
    }
    m
}

/// The schema of one column's values, without a field name.
pub fn column_schema(col: &Column) -> Json {
    Json::Object(kind_schema(&col.kind, col.nullable))
}

fn field(col: &Column, force_required: bool) -> Json {
    let mut m = kind_schema(&col.kind, col.nullable && !force_required);
    if let Some(default) = &col.default {
        // JsonConverter writes the default converted as a value of the field.
        m.insert(
            "default".into(),
            super::json_value::value_json(&col.kind, default),
        );
    }
    m.insert("field".into(), json!(col.name));
    Json::Object(m)
}

/// The `...Key` struct schema; `None` when the table has no key.
pub fn key_schema(table: &TableSchema, record_prefix: &str) -> Option<Json> {
    if table.key.is_empty() {
        return None;
    }
    let fields: Vec<Json> = table
        .key
        .iter()
        .filter_map(|i| table.columns.get(*i))
        .map(|c| field(c, true))
        .collect();
    Some(json!({
        "type": "struct",
        "fields": fields,
        "optional": false,
        "name": format!("{record_prefix}.Key"),
    }))
}

/// The `...Value` struct schema (row image), with `field` set.
fn row_schema(table: &TableSchema, record_prefix: &str, field_name: &str) -> Json {
    let key_set: Vec<usize> = table.key.clone();
    let fields: Vec<Json> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| field(c, key_set.contains(&i) && !c.nullable))
        .collect();
    json!({
        "type": "struct",
        "fields": fields,
        "optional": true,
        "name": format!("{record_prefix}.Value"),
        "field": field_name,
    })
}

/// The flattened value's schema (`[unwrap]`): the row struct and the added fields (optional,
/// typed as in the envelope), then `__deleted` in the rewrite modes. Without added fields it
/// is the `after` field's schema as it is; with them, a new required struct of the same name
/// (as Debezium rebuilds it).
pub fn flat_schema(table: &TableSchema, record_prefix: &str, flatten: &Flatten) -> Json {
    let mut s = row_schema(table, record_prefix, "");
    let obj = s.as_object_mut().expect("a struct schema");
    obj.remove("field");
    let mut extra: Vec<Json> = flatten
        .fields
        .iter()
        .map(|f| opt(connect_type(f.ty), &f.name))
        .collect();
    if flatten.mode.rewrites() {
        extra.push(opt("string", super::flatten::DELETED_FIELD));
    }
    if !extra.is_empty() {
        obj.insert("optional".into(), json!(false));
        if let Some(Json::Array(fields)) = obj.get_mut("fields") {
            fields.extend(extra);
        }
    }
    s
}

/// Renames a routed table's key and envelope schemas after the topic (`<topic>.Key`,
/// `<topic>.Envelope`) and adds the key field that names the table, as Debezium's router
/// does; the row struct keeps its table's name.
pub fn route_schemas(key: Option<&mut Json>, envelope: &mut Json, routed: &Routed) {
    if let Some(key) = key {
        key["name"] = json!(format!("{}.Key", routed.topic));
        if let (Some((name, _)), Some(Json::Array(fields))) =
            (&routed.key_field, key.get_mut("fields"))
        {
            fields.push(req("string", name));
        }
    }
    envelope["name"] = json!(format!("{}.Envelope", routed.topic));
}

fn connect_type(ty: MetaType) -> &'static str {
    match ty {
        MetaType::Str => "string",
        MetaType::Long => "int64",
        MetaType::Int => "int32",
    }
}

fn opt(ty: &str, name: &str) -> Json {
    json!({"type": ty, "optional": true, "field": name})
}

fn req(ty: &str, name: &str) -> Json {
    json!({"type": ty, "optional": false, "field": name})
}

/// The `source` fields every connector shares, in Debezium's order.
fn common_source_fields() -> Vec<Json> {
    vec![
        req("string", "version"),
        req("string", "connector"),
        req("string", "name"),
        req("int64", "ts_ms"),
        json!({
            "type": "string",
            "optional": true,
            "name": "io.debezium.data.Enum",
            "version": 1,
            "parameters": {"allowed": SNAPSHOT_ALLOWED},
            "default": "false",
            "field": "snapshot"
        }),
        req("string", "db"),
        opt("string", "sequence"),
        opt("int64", "ts_us"),
        opt("int64", "ts_ns"),
    ]
}

fn source_struct(connector: &str, extra: Vec<Json>) -> Json {
    let mut fields = common_source_fields();
    fields.extend(extra);
    json!({
        "type": "struct",
        "fields": fields,
        "optional": false,
        "name": format!("io.debezium.connector.{connector}.Source"),
        "version": 1,
        "field": "source"
    })
}

/// The `source` struct schema of a connector (`postgresql`, `mysql` or `mariadb`).
pub fn source_schema(connector: &str) -> Json {
    if connector == "postgresql" {
        return postgres_source_schema();
    }
    source_struct(
        connector,
        vec![
            opt("string", "table"),
            req("int64", "server_id"),
            opt("string", "gtid"),
            req("string", "file"),
            req("int64", "pos"),
            req("int32", "row"),
            opt("int64", "thread"),
            opt("string", "query"),
        ],
    )
}

/// The PostgreSQL `source` struct schema.
pub fn postgres_source_schema() -> Json {
    source_struct(
        "postgresql",
        vec![
            req("string", "schema"),
            req("string", "table"),
            opt("int64", "txId"),
            opt("int64", "lsn"),
            opt("int64", "xmin"),
            opt("string", "origin"),
            opt("int64", "origin_lsn"),
        ],
    )
}

fn transaction_schema() -> Json {
    json!({
        "type": "struct",
        "fields": [
            req("string", "id"),
            req("int64", "total_order"),
            req("int64", "data_collection_order"),
        ],
        "optional": true,
        "name": "event.block",
        "version": 1,
        "field": "transaction"
    })
}

/// The `...Envelope` schema.
pub fn envelope_schema(table: &TableSchema, record_prefix: &str, source: Json) -> Json {
    json!({
        "type": "struct",
        "fields": [
            row_schema(table, record_prefix, "before"),
            row_schema(table, record_prefix, "after"),
            source,
            transaction_schema(),
            req("string", "op"),
            opt("int64", "ts_ms"),
            opt("int64", "ts_us"),
            opt("int64", "ts_ns"),
        ],
        "optional": false,
        "name": format!("{record_prefix}.Envelope"),
        "version": 2
    })
}

/// Key schema of logical-decoding message records.
pub fn message_key_schema() -> Json {
    json!({
        "type": "struct",
        "fields": [opt("string", "prefix")],
        "optional": false,
        "name": "io.debezium.connector.postgresql.MessageKey"
    })
}

/// Value schema of logical-decoding message records.
pub fn message_value_schema(source: Json) -> Json {
    json!({
        "type": "struct",
        "fields": [
            source,
            req("string", "op"),
            opt("int64", "ts_ms"),
            opt("int64", "ts_us"),
            opt("int64", "ts_ns"),
            {
                "type": "struct",
                "fields": [req("string", "prefix"), req("bytes", "content")],
                "optional": true,
                "name": "io.debezium.connector.postgresql.Message",
                "field": "message"
            }
        ],
        "optional": false,
        "name": "io.debezium.connector.postgresql.MessageValue"
    })
}
