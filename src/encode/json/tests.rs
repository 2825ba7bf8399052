//! Unit tests of the JSON encoder.

use super::*;
use crate::encode::json_value::needs_escape;
use crate::encode::Encoder;

#[test]
fn the_escape_scan_finds_what_the_byte_loop_finds() {
    let naive = |s: &[u8]| s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for len in 0..40 {
        for _ in 0..500 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Mostly plain bytes, sometimes one that needs escaping or is high.
                    match x % 23 {
                        0 => b'"',
                        1 => b'\\',
                        2 => (x >> 8) as u8 % 0x20,
                        3 => 0x80 | (x >> 8) as u8,
                        _ => b'a' + (x >> 8) as u8 % 26,
                    }
                })
                .collect();
            assert_eq!(needs_escape(&bytes), naive(&bytes), "{bytes:?}");
        }
    }
    for b in 0..=255u8 {
        let mut v = vec![b'x'; 16];
        v[9] = b;
        assert_eq!(needs_escape(&v), naive(&v), "byte {b}");
    }
}
use crate::event::{Column, ColumnKind, SnapshotMarker, SourceMeta};
use crate::position::{PgPosition, SourcePosition};

fn table() -> Arc<TableSchema> {
    Arc::new(TableSchema {
        id: TableId {
            schema: "public".into(),
            name: "items".into(),
        },
        columns: vec![
            Column {
                name: "id".into(),
                kind: ColumnKind::Int32,
                nullable: false,
                default: None,
                length: None,
            },
            Column {
                name: "note".into(),
                kind: ColumnKind::Text,
                nullable: true,
                default: None,
                length: None,
            },
            Column {
                name: "price".into(),
                kind: ColumnKind::Decimal {
                    precision: Some(10),
                    scale: 2,
                },
                nullable: true,
                default: None,
                length: None,
            },
        ],
        key: vec![0],
    })
}

fn event(op: Op, before: Option<Vec<Value>>, after: Option<Vec<Value>>) -> ChangeEvent {
    ChangeEvent {
        op,
        table: Some(table()),
        before,
        after,
        source: SourceMeta {
            ts_us: 1_704_164_645_123_456,
            snapshot: SnapshotMarker::False,
            db: Arc::from("shop"),
            detail: SourceDetail::Postgres {
                tx_id: Some(77),
                lsn: Some(500),
                last_commit_lsn: Some(400),
                origin: None,
                origin_lsn: None,
            },
        },
        message: None,
        transaction: None,
        position: SourcePosition::Postgres(PgPosition::at(0)),
    }
}

fn row(id: i64, note: &str) -> Vec<Value> {
    vec![
        Value::Int(id),
        Value::Text(note.into()),
        Value::Decimal(crate::event::Decimal {
            unscaled: vec![0x04, 0xD2],
            scale: 2,
        }),
    ]
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

#[test]
fn insert_with_schema() {
    let mut enc = Encoder::json("inv", true, true);
    let recs = enc
        .encode_now(&event(Op::Create, None, Some(row(1, "a \"q\"\n"))))
        .unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(&*recs[0].topic, "inv.public.items");
    let key = json(recs[0].key.as_ref().unwrap());
    assert_eq!(key["payload"], serde_json::json!({"id": 1}));
    assert_eq!(key["schema"]["name"], "inv.public.items.Key");
    let v = json(recs[0].value.as_ref().unwrap());
    let p = &v["payload"];
    assert_eq!(p["op"], "c");
    assert_eq!(p["before"], serde_json::Value::Null);
    assert_eq!(p["after"]["note"], "a \"q\"\n");
    assert_eq!(p["after"]["price"], "BNI=");
    assert_eq!(p["source"]["sequence"], "[\"400\",\"500\"]");
    assert_eq!(p["source"]["ts_ms"], 1_704_164_645_123i64);
    assert_eq!(p["source"]["txId"], 77);
    assert_eq!(p["source"]["snapshot"], "false");
    assert_eq!(v["schema"]["name"], "inv.public.items.Envelope");
    assert_eq!(v["schema"]["version"], 2);
    let fields = v["schema"]["fields"].as_array().unwrap();
    let names: Vec<&str> = fields
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "before",
            "after",
            "source",
            "transaction",
            "op",
            "ts_ms",
            "ts_us",
            "ts_ns"
        ]
    );
    let price = &fields[1]["fields"][2];
    assert_eq!(price["parameters"]["scale"], "2");
    assert_eq!(price["parameters"]["connect.decimal.precision"], "10");
}

#[test]
fn delete_then_tombstone_and_key_change() {
    let mut enc = Encoder::json("inv", false, true);
    let recs = enc
        .encode_now(&event(Op::Delete, Some(row(1, "x")), None))
        .unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(json(recs[0].value.as_ref().unwrap())["op"], "d");
    assert!(recs[1].value.is_none());
    assert_eq!(recs[1].key, recs[0].key);

    let recs = enc
        .encode_now(&event(Op::Update, Some(row(1, "x")), Some(row(2, "x"))))
        .unwrap();
    assert_eq!(recs.len(), 3);
    assert_eq!(json(recs[0].value.as_ref().unwrap())["op"], "d");
    assert_eq!(recs[0].headers[0].0, "__debezium.newkey");
    assert_eq!(json(&recs[0].headers[0].1), serde_json::json!({"id": 2}));
    assert!(recs[1].value.is_none());
    assert_eq!(json(recs[2].value.as_ref().unwrap())["op"], "c");
    assert_eq!(json(&recs[2].headers[0].1), serde_json::json!({"id": 1}));

    let mut quiet = Encoder::json("inv", false, false);
    assert_eq!(
        quiet
            .encode_now(&event(Op::Delete, Some(row(1, "x")), None))
            .unwrap()
            .len(),
        1
    );
}

fn unwrapping(mode: &str, fields: &[&str], headers: &[&str], schemas: bool) -> Encoder {
    let config: crate::config::UnwrapConfig = toml::from_str(&format!(
        "enabled = true\ndelete_tombstone_handling_mode = \"{mode}\"\nadd_fields = {fields:?}\nadd_headers = {headers:?}"
    ))
    .unwrap();
    Encoder::json("inv", schemas, true).with_flatten(crate::encode::Flatten::from_config(&config))
}

#[test]
fn unwrap_publishes_row_states_and_handles_deletes_by_mode() {
    let insert = event(Op::Create, None, Some(row(1, "x")));
    let delete = event(Op::Delete, Some(row(1, "x")), None);
    let truncate = event(Op::Truncate, None, None);
    let rekey = event(Op::Update, Some(row(1, "x")), Some(row(2, "y")));

    let mut enc = unwrapping("tombstone", &[], &[], false);
    let recs = enc.encode_now(&insert).unwrap();
    assert_eq!(
        json(recs[0].value.as_ref().unwrap()),
        serde_json::json!({"id": 1, "note": "x", "price": "BNI="})
    );
    let recs = enc.encode_now(&delete).unwrap();
    assert_eq!(recs.len(), 1);
    assert!(recs[0].value.is_none());
    assert_eq!(
        json(recs[0].key.as_ref().unwrap()),
        serde_json::json!({"id": 1})
    );
    assert!(enc.encode_now(&truncate).unwrap().is_empty());
    // A key change: the delete half goes, its tombstone and the new row stay.
    let recs = enc.encode_now(&rekey).unwrap();
    assert_eq!(recs.len(), 2);
    assert!(recs[0].value.is_none());
    assert_eq!(json(recs[1].value.as_ref().unwrap())["id"], 2);
    assert_eq!(recs[1].headers[0].0, "__debezium.oldkey");

    let mut enc = unwrapping("drop", &[], &[], false);
    assert!(enc.encode_now(&delete).unwrap().is_empty());

    let mut enc = unwrapping("delete-to-tombstone", &[], &[], false);
    let recs = enc.encode_now(&delete).unwrap();
    assert_eq!(recs.len(), 1);
    assert!(recs[0].value.is_none());

    let mut enc = unwrapping(
        "rewrite",
        &["op", "table", "lsn", "source.ts_ms", "ts_ms:PROCESSED"],
        &["db", "op", "server_id"],
        false,
    );
    let recs = enc.encode_now(&insert).unwrap();
    let v = json(recs[0].value.as_ref().unwrap());
    assert_eq!(v["__op"], "c");
    assert_eq!(v["__table"], "items");
    assert_eq!(v["__lsn"], 500);
    assert_eq!(v["__source_ts_ms"], 1_704_164_645_123_i64);
    assert!(v["__PROCESSED"].as_i64().unwrap() > 1_704_164_645_123);
    assert_eq!(v["__deleted"], "false");
    // Headers as Connect's default header converter writes them; a field the source
    // block lacks (server_id on PostgreSQL) is no header.
    let headers: Vec<(&str, &[u8])> = recs[0]
        .headers
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_slice()))
        .collect();
    assert_eq!(headers, vec![("__db", &b"shop"[..]), ("__op", &b"c"[..])]);
    let recs = enc.encode_now(&delete).unwrap();
    assert_eq!(recs.len(), 1, "rewrite drops the tombstone");
    let v = json(recs[0].value.as_ref().unwrap());
    assert_eq!(
        (v["id"].clone(), v["__op"].clone(), v["__deleted"].clone()),
        (1.into(), "d".into(), "true".into())
    );

    let mut enc = unwrapping("rewrite-with-tombstone", &[], &[], true);
    let recs = enc.encode_now(&delete).unwrap();
    assert_eq!(recs.len(), 2);
    assert!(recs[1].value.is_none());
    let v = json(recs[0].value.as_ref().unwrap());
    assert_eq!(
        v["payload"],
        serde_json::json!({"id": 1, "note": "x", "price": "BNI=", "__deleted": "true"})
    );
    let fields: Vec<&str> = v["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["id", "note", "price", "__deleted"]);
    assert_eq!(v["schema"]["name"], "inv.public.items.Value");
    assert_eq!(v["schema"]["optional"], false);

    // Without added fields the schema is the envelope's `after` schema.
    let mut enc = unwrapping("tombstone", &[], &[], true);
    let v = json(enc.encode_now(&insert).unwrap()[0].value.as_ref().unwrap());
    assert_eq!(v["schema"]["optional"], true);
    assert!(v["schema"].get("field").is_none());
}

#[test]
fn changed_field_headers_and_dropping_the_unchanged_fields() {
    let config: crate::config::UnwrapConfig =
        toml::from_str("enabled = true\ndrop_fields_header_name = \"Unchanged\"").unwrap();
    let cf: crate::config::ChangedFieldsConfig =
        toml::from_str("header_changed_name = \"Changed\"\nheader_unchanged_name = \"Unchanged\"")
            .unwrap();
    let mut enc = Encoder::json("inv", true, true)
        .with_flatten(crate::encode::Flatten::from_config(&config))
        .with_changed_fields(crate::encode::ChangedFields::from_config(&cf));
    // note changes; id (required) and price (unchanged, optional) do not.
    let recs = enc
        .encode_now(&event(Op::Update, Some(row(1, "x")), Some(row(1, "y"))))
        .unwrap();
    assert_eq!(recs.len(), 1);
    let headers: Vec<(&str, serde_json::Value)> = recs[0]
        .headers
        .iter()
        .map(|(k, v)| (k.as_ref(), json(v)))
        .collect();
    assert_eq!(
        headers,
        vec![
            ("Changed", serde_json::json!(["note"])),
            ("Unchanged", serde_json::json!(["id", "price"]))
        ]
    );
    let v = json(recs[0].value.as_ref().unwrap());
    // price is dropped; id stays (a required field, kept for schema compatibility).
    assert_eq!(v["payload"], serde_json::json!({"id": 1, "note": "y"}));
    let fields: Vec<&str> = v["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["id", "note"]);
    // Inserts carry no headers and every field.
    let recs = enc
        .encode_now(&event(Op::Create, None, Some(row(2, "z"))))
        .unwrap();
    assert!(recs[0].headers.is_empty());
    assert_eq!(
        json(recs[0].value.as_ref().unwrap())["payload"],
        serde_json::json!({"id": 2, "note": "z", "price": "BNI="})
    );
}

#[test]
fn a_routed_table_gets_the_topic_schema_names_and_key_field() {
    let routes: Vec<crate::config::RouteConfig> =
        vec![toml::from_str("regex = 'inv\\.public\\.(.*)'\nreplacement = 'inv.all_$1'").unwrap()];
    let mut enc =
        Encoder::json("inv", true, true).with_router(crate::encode::Router::from_config(&routes));
    let recs = enc
        .encode_now(&event(Op::Create, None, Some(row(1, "x"))))
        .unwrap();
    assert_eq!(&*recs[0].topic, "inv.all_items");
    let key = json(recs[0].key.as_ref().unwrap());
    assert_eq!(
        key["payload"],
        serde_json::json!({"id": 1, "__dbz__physicalTableIdentifier": "inv.public.items"})
    );
    assert_eq!(key["schema"]["name"], "inv.all_items.Key");
    assert_eq!(
        key["schema"]["fields"][1],
        serde_json::json!({"type": "string", "optional": false, "field": "__dbz__physicalTableIdentifier"})
    );
    let value = json(recs[0].value.as_ref().unwrap());
    assert_eq!(value["schema"]["name"], "inv.all_items.Envelope");
    assert_eq!(
        value["schema"]["fields"][1]["name"],
        "inv.public.items.Value"
    );
}

#[test]
fn unavailable_and_special_floats() {
    let mut s = String::new();
    write_value(&mut s, &ColumnKind::Text, &Value::Unavailable);
    assert_eq!(s, "\"__debezium_unavailable_value\"");
    s.clear();
    write_value(&mut s, &ColumnKind::Float64, &Value::Float(f64::NAN));
    assert_eq!(s, "\"NaN\"");
    s.clear();
    write_value(&mut s, &ColumnKind::Float32, &Value::Float(1.1));
    assert_eq!(s, "1.1");
    s.clear();
    write_str(&mut s, "\u{1}é");
    assert_eq!(s, "\"\\u0001é\"");
}
