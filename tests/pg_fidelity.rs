//! Debezium fidelity on PostgreSQL, snapshot and stream alike, with values and schemas
//! computed by hand from Debezium's documented defaults: column defaults in field schemas
//! (0 for a sequence, enum and text literals, decimals, booleans), `point` as a Point struct,
//! `hstore` as a Json object (`hstore.handling.mode=json`), `ltree` named `Ltree`, and enum
//! array items required.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use serde_json::{json, Value};

const SETUP: &str = "CREATE EXTENSION IF NOT EXISTS hstore; CREATE EXTENSION IF NOT EXISTS ltree;
CREATE TYPE mood AS ENUM ('V1', 'V2');
CREATE TABLE fid (
  id serial PRIMARY KEY,
  m mood DEFAULT 'V1',
  t text DEFAULT 'it''s',
  n numeric(5,2) NOT NULL DEFAULT 1.50,
  b boolean DEFAULT true,
  i int DEFAULT -7,
  ts timestamptz DEFAULT now(),
  p point,
  h hstore,
  l ltree,
  ms mood[]
)";

const ROW: &str =
    "INSERT INTO fid (p, h, l, ms) VALUES ('(1.5,-2)', '\"key\"=>\"val\", \"k2\"=>NULL', 'Top.Science', '{V2,V1}')";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn expected(id: i64) -> Value {
    let mut wkb = vec![1u8, 1, 0, 0, 0];
    wkb.extend_from_slice(&1.5f64.to_le_bytes());
    wkb.extend_from_slice(&(-2.0f64).to_le_bytes());
    json!({
        "id": id, "m": "V1", "t": "it's", "n": b64(&[0, 150]), "b": true, "i": -7,
        "p": {"x": 1.5, "y": -2.0, "wkb": b64(&wkb), "srid": null},
        // PostgreSQL keeps hstore pairs ordered by key length, then key.
        "h": "{\"k2\":null,\"key\":\"val\"}",
        "l": "Top.Science",
        "ms": ["V2", "V1"]
    })
}

fn after_field(schema: &Value, field: &str) -> Value {
    let mut f = schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "after")
        .unwrap()["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == field)
        .unwrap_or_else(|| panic!("no schema field {field}"))
        .clone();
    f.as_object_mut().unwrap().remove("field");
    f
}

fn check(v: &Value, id: i64, what: &str) {
    let after = &v["payload"]["after"];
    let want = expected(id);
    for (k, w) in want.as_object().unwrap() {
        if k != "ts" {
            assert_eq!(&after[k], w, "{what}: field {k} of {after}");
        }
    }
    let schema = &v["schema"];
    let cases = [
        (
            "id",
            json!({"type": "int32", "optional": false, "default": 0}),
        ),
        (
            "m",
            json!({"type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1, "parameters": {"allowed": "V1,V2"}, "default": "V1"}),
        ),
        (
            "t",
            json!({"type": "string", "optional": true, "default": "it's"}),
        ),
        (
            "n",
            json!({"type": "bytes", "optional": false, "name": "org.apache.kafka.connect.data.Decimal", "version": 1, "parameters": {"scale": "2", "connect.decimal.precision": "5"}, "default": "AJY="}),
        ),
        (
            "b",
            json!({"type": "boolean", "optional": true, "default": true}),
        ),
        (
            "i",
            json!({"type": "int32", "optional": true, "default": -7}),
        ),
        (
            "ts",
            json!({"type": "string", "optional": true, "name": "io.debezium.time.ZonedTimestamp", "version": 1}),
        ),
        (
            "h",
            json!({"type": "string", "optional": true, "name": "io.debezium.data.Json", "version": 1}),
        ),
        (
            "l",
            json!({"type": "string", "optional": true, "name": "io.debezium.data.Ltree", "version": 1}),
        ),
        (
            "ms",
            json!({"type": "array", "optional": true, "items": {"type": "string", "optional": false, "name": "io.debezium.data.Enum", "version": 1, "parameters": {"allowed": "V1,V2"}}}),
        ),
    ];
    for (field, want) in cases {
        assert_eq!(
            after_field(schema, field),
            want,
            "{what}: schema of {field}"
        );
    }
    let p = after_field(schema, "p");
    assert_eq!(p["name"], "io.debezium.data.geometry.Point", "{p}");
    assert_eq!(
        p["fields"],
        json!([
            {"type": "double", "optional": false, "field": "x"},
            {"type": "double", "optional": false, "field": "y"},
            {"type": "bytes", "optional": true, "field": "wkb"},
            {"type": "int32", "optional": true, "field": "srid"}
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn debezium_defaults_points_hstore_ltree_in_snapshot_and_stream() {
    let db = TestDb::new("pgfid").await;
    db.exec(SETUP).await;
    db.exec(ROW).await;
    let name = unique("pgfid");
    let mut daemon = Daemon::single(&name, &db, &["public.fid"], "");
    daemon.start();
    let topic = format!("{name}.public.fid");
    let snap = read_topic(&topic, 1, Duration::from_secs(60));
    assert_eq!(snap.len(), 1, "logs:\n{}", daemon.logs());
    let v = snap[0].value.as_ref().unwrap();
    assert_eq!(v["payload"]["op"], "r");
    check(v, 1, "snapshot");

    db.exec(ROW).await;
    let all = read_topic(&topic, 2, Duration::from_secs(60));
    assert_eq!(all.len(), 2, "logs:\n{}", daemon.logs());
    let v = all[1].value.as_ref().unwrap();
    assert_eq!(v["payload"]["op"], "c");
    check(v, 2, "stream");
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_markers_per_table_and_the_snapshot_transaction_id() {
    let db = TestDb::new("pgmark").await;
    db.exec(
        "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);
         INSERT INTO a VALUES (1), (2), (3); INSERT INTO b VALUES (1), (2);",
    )
    .await;
    let name = unique("pgmark");
    let mut daemon = Daemon::single(&name, &db, &["public.a", "public.b"], "");
    daemon.start();
    let a = read_topic(&format!("{name}.public.a"), 3, Duration::from_secs(60));
    let b = read_topic(&format!("{name}.public.b"), 2, Duration::from_secs(60));
    assert!(daemon.stop().success());
    let marks = |msgs: &[Msg]| -> Vec<String> {
        msgs.iter()
            .map(|m| m.value.as_ref().unwrap()["payload"]["source"]["snapshot"].to_string())
            .collect()
    };
    // Tables are read in name order: a first, b last.
    assert_eq!(
        marks(&a),
        ["\"first\"", "\"true\"", "\"last_in_data_collection\""]
    );
    assert_eq!(marks(&b), ["\"first_in_data_collection\"", "\"last\""]);
    let tx: Vec<&Value> = a
        .iter()
        .chain(&b)
        .map(|m| &m.value.as_ref().unwrap()["payload"]["source"]["txId"])
        .collect();
    assert!(tx[0].as_i64().is_some_and(|t| t > 0), "{tx:?}");
    assert!(tx.iter().all(|t| *t == tx[0]), "{tx:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn quoted_identifiers_in_tables_and_debezium_topic_names() {
    let db = TestDb::new("pgquoted").await;
    db.exec(
        r#"CREATE SCHEMA "Quoted . Schema";
           CREATE TABLE "Quoted . Schema"."Ta.ble" (id int PRIMARY KEY, "Name" text);
           CREATE TABLE "Quoted . Schema"."Other" (id int PRIMARY KEY);
           INSERT INTO "Quoted . Schema"."Ta.ble" VALUES (1, 'a');
           INSERT INTO "Quoted . Schema"."Other" VALUES (1);"#,
    )
    .await;
    let name = unique("pgquoted");
    // TOML escapes the double quotes: the entry is "Quoted . Schema"."Ta.ble".
    let mut daemon = Daemon::single(&name, &db, &[r#"\"Quoted . Schema\".\"Ta.ble\""#], "");
    daemon.start();
    // Characters Kafka refuses in topic names become '_', as Debezium names them.
    let topic = format!("{name}.Quoted_._Schema.Ta.ble");
    assert_eq!(
        read_topic(&topic, 1, Duration::from_secs(60)).len(),
        1,
        "logs:\n{}",
        daemon.logs()
    );
    db.exec(r#"INSERT INTO "Quoted . Schema"."Ta.ble" VALUES (2, 'b'); INSERT INTO "Quoted . Schema"."Other" VALUES (2);"#)
        .await;
    let all = read_topic(&topic, 2, Duration::from_secs(60));
    assert_eq!(all.len(), 2, "logs:\n{}", daemon.logs());
    for (m, (op, id, n)) in all.iter().zip([("r", 1, "a"), ("c", 2, "b")]) {
        let p = &m.value.as_ref().unwrap()["payload"];
        assert_eq!(p["op"], op);
        assert_eq!(p["after"], json!({"id": id, "Name": n}));
        assert_eq!(p["source"]["schema"], "Quoted . Schema");
        assert_eq!(p["source"]["table"], "Ta.ble");
    }
    assert!(
        read_topic(
            &format!("{name}.Quoted_._Schema.Other"),
            1,
            Duration::from_secs(3)
        )
        .is_empty(),
        "only the named table is captured"
    );
    assert!(daemon.stop().success());
}
