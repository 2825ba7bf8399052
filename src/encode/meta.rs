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

/// A schema-change record on `<prefix>`: key `{databaseName}`, value with the `source`
/// block, `databaseName`, `schemaName`, `ddl` and `tableChanges` (empty: Sluice reads
/// table shapes from the binlog's table maps, not by parsing DDL).
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
                "items": {"type": "struct", "fields": [], "optional": false},
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
        "tableChanges": []
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
