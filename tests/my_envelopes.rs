//! Acceptance 1 and 5 against the real MariaDB server: field-by-field envelopes for every
//! listed type, for snapshot rows and streamed inserts, updates and deletes alike; zero dates
//! become null; `ALTER TABLE ... ADD COLUMN` mid-stream gives later events the new column and
//! publishes a schema-change event; transaction metadata for a multi-row transaction.

mod common;

use std::time::Duration;

use common::my_types::{expected, TABLE, VALUES};
use common::mysql::*;
use common::*;
use serde_json::{json, Value};

fn assert_fields(actual: &Value, want: &Value, what: &str) {
    let (a, w) = (actual.as_object().unwrap(), want.as_object().unwrap());
    for (k, v) in w {
        assert_eq!(a.get(k), Some(v), "{what}: field {k}");
    }
    assert_eq!(
        a.len(),
        w.len(),
        "{what}: fields {:?}",
        a.keys().collect::<Vec<_>>()
    );
}

fn schema_field<'a>(schema: &'a Value, field: &str) -> &'a Value {
    let after = schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "after")
        .unwrap();
    after["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == field)
        .unwrap_or_else(|| panic!("no schema field {field}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_type_in_snapshot_and_stream_and_alter_mid_stream() {
    let mut db = MyDb::new("myenv").await;
    db.exec(TABLE).await;
    db.exec("SET time_zone = '+02:00'").await;
    db.exec(&format!("INSERT INTO all_types VALUES (1, {VALUES})"))
        .await;
    let name = unique("myenv");
    let mut daemon = my_daemon(
        &name,
        &db,
        &["all_types"],
        "provide_transaction_metadata = true\n[format]\nschemas = true",
    );
    daemon.start();
    let topic = format!("{name}.{}.all_types", db.name);
    let snap = read_topic(&topic, 1, Duration::from_secs(60));
    assert_eq!(snap.len(), 1, "snapshot record; logs:\n{}", daemon.logs());
    let v = snap[0].value.as_ref().unwrap();
    let p = payload(v);
    assert_eq!(p["op"], "r");
    assert_fields(&p["after"], &expected(1), "snapshot row");
    assert_eq!(p["source"]["snapshot"], "last");
    assert_eq!(p["source"]["connector"], "mariadb");
    assert_eq!(payload(snap[0].key.as_ref().unwrap()), &json!({"id": 1}));

    // The schema describes each type as Debezium does.
    let schema = &v["schema"];
    let kinds = [
        ("ti", "int8", None),
        ("tiu", "int16", None),
        ("bo", "int8", None),
        ("siu", "int32", None),
        ("iu", "int64", None),
        ("biu", "int64", None),
        ("f", "float", None),
        ("d", "double", None),
        (
            "dec1",
            "bytes",
            Some("org.apache.kafka.connect.data.Decimal"),
        ),
        ("b1", "boolean", None),
        ("b12", "bytes", Some("io.debezium.data.Bits")),
        ("vc", "string", None),
        ("bl", "bytes", None),
        ("j", "string", Some("io.debezium.data.Json")),
        ("e", "string", Some("io.debezium.data.Enum")),
        ("s", "string", Some("io.debezium.data.EnumSet")),
        ("y", "int32", Some("io.debezium.time.Year")),
        ("dt", "int32", Some("io.debezium.time.Date")),
        ("tm", "int64", Some("io.debezium.time.MicroTime")),
        ("dtm", "int64", Some("io.debezium.time.Timestamp")),
        ("dtm3", "int64", Some("io.debezium.time.Timestamp")),
        ("dtm6", "int64", Some("io.debezium.time.MicroTimestamp")),
        ("ts", "string", Some("io.debezium.time.ZonedTimestamp")),
        ("g", "struct", Some("io.debezium.data.geometry.Geometry")),
    ];
    for (field, ty, name) in kinds {
        let f = schema_field(schema, field);
        assert_eq!(f["type"], ty, "schema of {field}: {f}");
        assert_eq!(f["name"].as_str(), name, "schema name of {field}: {f}");
    }
    assert_eq!(
        schema_field(schema, "dec1")["parameters"],
        json!({"scale": "3", "connect.decimal.precision": "10"})
    );
    assert_eq!(
        schema_field(schema, "b12")["parameters"],
        json!({"length": "12"})
    );
    assert_eq!(
        schema_field(schema, "e")["parameters"],
        json!({"allowed": "red,green,blue"})
    );
    assert_eq!(schema_field(schema, "id")["optional"], false);
    assert_eq!(schema_field(schema, "n")["optional"], true);
    let snapshot_schema = schema.clone();

    // Streamed: insert (two rows, one transaction), update, delete, zero dates.
    db.exec(&format!(
        "BEGIN; INSERT INTO all_types VALUES (2, {VALUES}); INSERT INTO all_types (id) VALUES (3); COMMIT"
    ))
    .await;
    db.exec("UPDATE all_types SET vc = 'changed', n = 5 WHERE id = 2")
        .await;
    db.exec("DELETE FROM all_types WHERE id = 2").await;
    db.exec("SET SESSION sql_mode = ''").await;
    db.exec("INSERT INTO all_types (id, dt, dtm, dtm6, ts) VALUES (4, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00')").await;
    let msgs = read_topic(&topic, 7, Duration::from_secs(60));
    assert_eq!(
        msgs.len(),
        7,
        "r, c, c, u, d, tombstone, c; logs:\n{}",
        daemon.logs()
    );
    let p = |i: usize| payload(msgs[i].value.as_ref().unwrap()).clone();

    let ins = p(1);
    assert_eq!(ins["op"], "c");
    assert_eq!(ins["before"], Value::Null);
    assert_fields(&ins["after"], &expected(2), "streamed insert");
    assert_eq!(
        msgs[1].value.as_ref().unwrap()["schema"],
        snapshot_schema,
        "one schema for snapshot and stream"
    );
    let src = &ins["source"];
    assert_eq!(src["connector"], "mariadb");
    assert_eq!(src["name"], name.as_str());
    assert_eq!(src["db"], db.name.as_str());
    assert_eq!(src["table"], "all_types");
    assert_eq!(src["snapshot"], "false");
    assert_eq!(src["server_id"], 1);
    assert_eq!(src["row"], 0);
    assert!(
        src["file"].as_str().unwrap().starts_with("mariadb-bin."),
        "{src}"
    );
    assert!(src["pos"].as_i64().unwrap() > 4, "{src}");
    let gtid = src["gtid"].as_str().unwrap().to_string();
    assert!(gtid.starts_with("0-1-"), "{src}");
    assert_eq!(ins["transaction"]["id"], gtid.as_str());
    assert_eq!(ins["transaction"]["total_order"], 1);
    let second = p(2);
    assert_eq!(second["after"]["id"], 3);
    assert_eq!(second["transaction"]["total_order"], 2);
    assert_eq!(second["source"]["gtid"], gtid.as_str(), "same transaction");

    let upd = p(3);
    assert_eq!(upd["op"], "u");
    assert_fields(&upd["before"], &expected(2), "update before");
    let mut want = expected(2);
    want["vc"] = json!("changed");
    want["n"] = json!(5);
    assert_fields(&upd["after"], &want, "update after");

    let del = p(4);
    assert_eq!(del["op"], "d");
    assert_fields(&del["before"], &want, "delete before");
    assert_eq!(del["after"], Value::Null);
    assert!(msgs[5].value.is_none(), "tombstone after the delete");
    assert_eq!(payload(msgs[5].key.as_ref().unwrap()), &json!({"id": 2}));

    let zero = p(6);
    for f in ["dt", "dtm", "dtm6", "ts"] {
        assert_eq!(
            zero["after"][f],
            Value::Null,
            "zero {f} becomes null: {}",
            zero["after"]
        );
    }

    // Transaction metadata: BEGIN and END of the two-row transaction.
    let tx = read_topic(&format!("{name}.transaction"), 2, Duration::from_secs(30));
    let tx_values: Vec<Value> = tx
        .iter()
        .map(|m| payload(m.value.as_ref().unwrap()).clone())
        .collect();
    let end = tx_values
        .iter()
        .find(|t| t["status"] == "END" && t["id"] == gtid.as_str())
        .unwrap_or_else(|| panic!("END of {gtid} in {tx_values:?}"));
    assert_eq!(end["event_count"], 2);
    assert_eq!(
        end["data_collections"],
        json!([{"data_collection": format!("{}.all_types", db.name), "event_count": 2}])
    );

    // ALTER TABLE mid-stream: later rows carry the new column; a schema change is published.
    db.exec("ALTER TABLE all_types ADD COLUMN extra VARCHAR(10) DEFAULT 'x'")
        .await;
    db.exec("INSERT INTO all_types (id) VALUES (5)").await;
    let msgs = read_topic(&topic, 8, Duration::from_secs(60));
    assert_eq!(msgs.len(), 8, "logs:\n{}", daemon.logs());
    let last = payload(msgs[7].value.as_ref().unwrap());
    assert_eq!(last["after"]["id"], 5);
    assert_eq!(last["after"]["extra"], "x");
    assert_eq!(
        schema_field(&msgs[7].value.as_ref().unwrap()["schema"], "extra")["type"],
        "string"
    );
    let changes = read_topic(&name, 1, Duration::from_secs(30));
    let ddl: Vec<&Value> = changes
        .iter()
        .map(|m| payload(m.value.as_ref().unwrap()))
        .collect();
    let alter = ddl
        .iter()
        .find(|c| {
            c["ddl"]
                .as_str()
                .unwrap_or_default()
                .contains("ADD COLUMN extra")
        })
        .unwrap_or_else(|| panic!("schema change in {ddl:?}"));
    assert_eq!(alter["databaseName"], db.name.as_str());
    assert_eq!(alter["source"]["connector"], "mariadb");
    assert!(alter["source"]["pos"].as_i64().unwrap() > 4);
    assert_eq!(
        payload(changes[0].key.as_ref().unwrap())["databaseName"],
        db.name.as_str()
    );
    assert!(daemon.stop().success());
}
