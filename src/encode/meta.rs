//! Records that are not row changes: heartbeats and transaction boundaries, in Debezium's
//! JSON form (also in Avro mode: they are rare and read by operators' tools).

use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::Record;
use crate::event::{SchemaChange, SourceDetail, TxMeta};

fn wrap(with_schema: bool, schema: Json, payload: Json) -> Vec<u8> {
    let v = if with_schema {
        json!({"schema": schema, "payload": payload})
    } else {
        payload
    };
    v.to_string().into_bytes()
}

fn field(ty: &str, name: &str, optional: bool) -> Json {
    json!({"type": ty, "optional": optional, "field": name})
}

/// The heartbeat record of a connector: key `{serverName}`, value `{ts_ms}`.
pub fn heartbeat(prefix: &str, with_schema: bool, ts_ms: i64) -> Record {
    let key_schema = json!({
        "type": "struct",
        "fields": [field("string", "serverName", false)],
        "optional": false,
        "name": "io.debezium.connector.common.ServerNameKey"
    });
    let value_schema = json!({
        "type": "struct",
        "fields": [field("int64", "ts_ms", false)],
        "optional": false,
        "name": "io.debezium.connector.common.Heartbeat"
    });
    Record {
        topic: Arc::from(format!("__debezium-heartbeat.{prefix}")),
        key: Some(wrap(with_schema, key_schema, json!({"serverName": prefix}))),
        value: Some(wrap(with_schema, value_schema, json!({"ts_ms": ts_ms}))),
        headers: Vec::new(),
    }
}

/// A `BEGIN` or `END` record on `<prefix>.transaction`.
pub fn transaction(prefix: &str, with_schema: bool, meta: &TxMeta) -> Record {
    let key_schema = json!({
        "type": "struct",
        "fields": [field("string", "id", false)],
        "optional": false,
        "name": "io.debezium.connector.common.TransactionMetadataKey"
    });
    let value_schema = json!({
        "type": "struct",
        "fields": [
            field("string", "status", false),
            field("string", "id", false),
            field("int64", "event_count", true),
            {
                "type": "array",
                "items": {
                    "type": "struct",
                    "fields": [field("string", "data_collection", false), field("int64", "event_count", false)],
                    "optional": false
                },
                "optional": true,
                "field": "data_collections"
            },
            field("int64", "ts_ms", false)
        ],
        "optional": false,
        "name": "io.debezium.connector.common.TransactionMetadataValue"
    });
    let payload = if meta.begin {
        json!({"status": "BEGIN", "id": &*meta.id, "event_count": null, "data_collections": null, "ts_ms": meta.ts_ms})
    } else {
        let collections: Vec<Json> = meta
            .data_collections
            .iter()
            .map(|(name, count)| json!({"data_collection": name, "event_count": count}))
            .collect();
        json!({"status": "END", "id": &*meta.id, "event_count": meta.event_count, "data_collections": collections, "ts_ms": meta.ts_ms})
    };
    Record {
        topic: Arc::from(format!("{prefix}.transaction")),
        key: Some(wrap(with_schema, key_schema, json!({"id": &*meta.id}))),
        value: Some(wrap(with_schema, value_schema, payload)),
        headers: Vec::new(),
    }
}

/// A notification record as Debezium's sink channel writes it: the key is the id (a
/// string), the value `{id, aggregate_type, type, additional_data, timestamp}`.
pub fn notification(topic: &Arc<str>, with_schema: bool, n: &crate::event::Notification) -> Record {
    let value_schema = json!({
        "type": "struct",
        "fields": [
            field("string", "id", false),
            field("string", "aggregate_type", false),
            field("string", "type", false),
            {"type": "map", "keys": {"type": "string", "optional": false},
             "values": {"type": "string", "optional": false}, "optional": false, "field": "additional_data"},
            field("int64", "timestamp", false)
        ],
        "optional": false,
        "name": "io.debezium.connector.common.Notification"
    });
    let data: serde_json::Map<String, Json> = n
        .additional_data
        .iter()
        .map(|(k, v)| (k.clone(), Json::String(v.clone())))
        .collect();
    let payload = json!({
        "id": n.id,
        "aggregate_type": n.aggregate_type,
        "type": n.kind,
        "additional_data": data,
        "timestamp": n.timestamp_ms,
    });
    Record {
        topic: topic.clone(),
        key: Some(wrap(
            with_schema,
            json!({"type": "string", "optional": false}),
            json!(n.id),
        )),
        value: Some(wrap(with_schema, value_schema, payload)),
        headers: Vec::new(),
    }
}

/// Debezium's `io.debezium.connector.schema.Change` (an item of `tableChanges`).
fn change_schema() -> Json {
    let opt = |ty: &str, name: &str| field(ty, name, true);
    let req = |ty: &str, name: &str| field(ty, name, false);
    let strings = |name: &str| json!({"type": "array", "items": {"type": "string", "optional": false}, "optional": true, "field": name});
    let column = json!({
        "type": "struct",
        "fields": [
            req("string", "name"), req("int32", "jdbcType"), opt("int32", "nativeType"),
            req("string", "typeName"), opt("string", "typeExpression"), opt("string", "charsetName"),
            opt("int32", "length"), opt("int32", "scale"), req("int32", "position"),
            opt("boolean", "optional"), opt("boolean", "autoIncremented"), opt("boolean", "generated"),
            opt("string", "comment"), opt("boolean", "hasDefaultValue"),
            opt("string", "defaultValueExpression"), strings("enumValues")
        ],
        "optional": false,
        "name": "io.debezium.connector.schema.Column",
        "version": 1
    });
    json!({
        "type": "struct",
        "fields": [
            req("string", "type"),
            req("string", "id"),
            {
                "type": "struct",
                "fields": [
                    opt("string", "defaultCharsetName"),
                    strings("primaryKeyColumnNames"),
                    {"type": "array", "items": column, "optional": false, "field": "columns"},
                    opt("string", "comment")
                ],
                "optional": true,
                "name": "io.debezium.connector.schema.Table",
                "version": 1,
                "field": "table"
            }
        ],
        "optional": false,
        "name": "io.debezium.connector.schema.Change",
        "version": 1
    })
}

/// One `tableChanges` item: the id as Debezium writes it (`"db"."table"`), the table's
/// definition, its columns.
fn table_change(c: &crate::event::TableChange) -> Json {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let table = c.table.as_ref().map(|t| {
        let columns: Vec<Json> = t
            .columns
            .iter()
            .map(|col| {
                json!({
                    "name": col.name,
                    "jdbcType": col.jdbc_type,
                    "nativeType": null,
                    "typeName": col.type_name,
                    "typeExpression": col.type_name,
                    "charsetName": col.charset,
                    "length": col.length,
                    "scale": col.scale,
                    "position": col.position,
                    "optional": col.optional,
                    "autoIncremented": col.auto_incremented,
                    "generated": col.auto_incremented,
                    "comment": col.comment,
                    "hasDefaultValue": col.has_default,
                    "defaultValueExpression": col.default_expression,
                    "enumValues": col.enum_values,
                })
            })
            .collect();
        json!({
            "defaultCharsetName": t.default_charset,
            "primaryKeyColumnNames": t.primary_key,
            "columns": columns,
            "comment": t.comment,
        })
    });
    json!({
        "type": c.kind,
        "id": format!("{}.{}", quote(&c.id.schema), quote(&c.id.name)),
        "table": table,
    })
}

/// A schema-change record on `<prefix>`: key `{databaseName}`, value with the `source`
/// block, `databaseName`, `schemaName`, `ddl` and `tableChanges` (the captured tables the
/// statement created, altered or dropped, as the catalog describes them after it).
pub fn schema_change(prefix: &str, with_schema: bool, change: &SchemaChange) -> Record {
    let connector = change.source.detail.connector();
    let key_schema = json!({
        "type": "struct",
        "fields": [field("string", "databaseName", false)],
        "optional": false,
        "name": format!("io.debezium.connector.{connector}.SchemaChangeKey"),
        "version": 1
    });
    let value_schema = json!({
        "type": "struct",
        "fields": [
            super::schema::source_schema(connector),
            field("int64", "ts_ms", false),
            field("string", "databaseName", true),
            field("string", "schemaName", true),
            field("string", "ddl", true),
            {
                "type": "array",
                "items": change_schema(),
                "optional": false,
                "field": "tableChanges"
            }
        ],
        "optional": false,
        "name": format!("io.debezium.connector.{connector}.SchemaChangeValue"),
        "version": 1
    });
    let ts_us = change.source.ts_us;
    let mut source = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "connector": connector,
        "name": prefix,
        "ts_ms": ts_us.div_euclid(1000),
        "snapshot": change.source.snapshot.as_str(),
        "db": &*change.source.db,
        "sequence": null,
        "ts_us": ts_us,
        "ts_ns": ts_us.saturating_mul(1000),
    });
    if let SourceDetail::Mysql { shared: m, .. } = &change.source.detail {
        if let Some(obj) = source.as_object_mut() {
            obj.insert("table".into(), Json::Null);
            obj.insert("server_id".into(), json!(m.server_id));
            obj.insert("gtid".into(), json!(m.gtid.as_deref()));
            obj.insert("file".into(), json!(&*m.file));
            obj.insert("pos".into(), json!(m.pos));
            obj.insert("row".into(), json!(0));
            obj.insert("thread".into(), json!(m.thread));
            obj.insert("query".into(), Json::Null);
        }
    }
    let payload = json!({
        "source": source,
        "ts_ms": ts_us.div_euclid(1000),
        "databaseName": &change.database,
        "schemaName": null,
        "ddl": &change.ddl,
        "tableChanges": change.table_changes.iter().map(table_change).collect::<Vec<_>>()
    });
    Record {
        topic: Arc::from(prefix),
        key: Some(wrap(
            with_schema,
            key_schema,
            json!({"databaseName": &change.database}),
        )),
        value: Some(wrap(with_schema, value_schema, payload)),
        headers: Vec::new(),
    }
}
