//! Acceptance 1 and 5 against the real MariaDB server: field-by-field envelopes for every
//! listed type, for snapshot rows and streamed inserts, updates and deletes alike; zero dates
//! become null; `ALTER TABLE ... ADD COLUMN` mid-stream gives later events the new column and
//! publishes a schema-change event; transaction metadata for a multi-row transaction.

mod common;

use std::time::Duration;

use base64::Engine;
use common::mysql::*;
use common::*;
use serde_json::{json, Value};

const TABLE: &str = "CREATE TABLE all_types (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, bo BOOLEAN,
  si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
  i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  f FLOAT, d DOUBLE, dec1 DECIMAL(10,3), dec2 DECIMAL(30,10),
  b1 BIT(1), b12 BIT(12),
  c CHAR(5), vc VARCHAR(50), t TEXT, lat VARCHAR(10) CHARACTER SET latin1,
  bin BINARY(4), vb VARBINARY(10), bl BLOB,
  j JSON,
  e ENUM('red','green','blue'), s SET('a','b','c'),
  y YEAR, dt DATE, tm TIME, tm6 TIME(6),
  dtm DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6), ts TIMESTAMP(6) NULL,
  g GEOMETRY, p POINT,
  n INT NULL
)";

/// The VALUES list after the id (same for the snapshot row and the streamed one).
const VALUES: &str = "-128, 255, TRUE, -32768, 65535, -8388608, 16777215,
  -2147483648, 4294967295, -9223372036854775808, 9223372036854775807,
  1.5, 12345.6789, -12345.678, 12345678901234567890.1234567890,
  b'1', b'101000000001',
  'ab', 'héllo wörld', 'a longer text', 'café',
  x'01020000', x'00ff10', x'deadbeef',
  '{\"k\": [1, 2]}',
  'green', 'a,c',
  2024, '2024-02-29', '-838:59:59', '12:34:56.789012',
  '2024-01-02 03:04:05', '2024-01-02 03:04:05.678', '2024-01-02 03:04:05.123456',
  '2024-01-02 05:04:05.123456',
  ST_GeomFromText('POINT(1 2)', 4326), POINT(3, 4),
  NULL";

fn b64(bytes: &[u8]) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Big-endian two's complement, minimal length (Kafka Connect's Decimal bytes).
fn dec(unscaled: i128) -> Value {
    let bytes = unscaled.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    b64(&bytes[start..])
}

fn point_wkb(x: f64, y: f64) -> Vec<u8> {
    let mut w = vec![1u8, 1, 0, 0, 0];
    w.extend_from_slice(&x.to_le_bytes());
    w.extend_from_slice(&y.to_le_bytes());
    w
}

fn expected(id: i64) -> Value {
    json!({
        "id": id,
        "ti": -128, "tiu": 255, "bo": true,
        "si": -32768, "siu": 65535, "mi": -8388608, "miu": 16777215,
        "i": -2147483648i64, "iu": 4294967295i64, "bi": i64::MIN, "biu": i64::MAX,
        "f": 1.5, "d": 12345.6789,
        "dec1": dec(-12_345_678), "dec2": dec(123_456_789_012_345_678_901_234_567_890),
        "b1": true, "b12": b64(&[0x01, 0x0A]),
        "c": "ab", "vc": "héllo wörld", "t": "a longer text", "lat": "café",
        "bin": b64(&[1, 2]), "vb": b64(&[0, 0xff, 0x10]), "bl": b64(&[0xde, 0xad, 0xbe, 0xef]),
        "j": "{\"k\": [1, 2]}",
        "e": "green", "s": "a,c",
        "y": 2024, "dt": 19782, "tm": -3_020_399_000_000i64, "tm6": 45_296_789_012i64,
        "dtm": 1_704_164_645_000i64, "dtm3": 1_704_164_645_678i64, "dtm6": 1_704_164_645_123_456i64,
        "ts": "2024-01-02T03:04:05.123456Z",
        "g": {"wkb": b64(&point_wkb(1.0, 2.0)), "srid": 4326},
        "p": {"wkb": b64(&point_wkb(3.0, 4.0)), "srid": 0},
        "n": null
    })
}

fn assert_fields(actual: &Value, want: &Value, what: &str) {
    let (a, w) = (actual.as_object().unwrap(), want.as_object().unwrap());
    for (k, v) in w {
        assert_eq!(a.get(k), Some(v), "{what}: field {k}");
    }
    assert_eq!(a.len(), w.len(), "{what}: fields {:?}", a.keys().collect::<Vec<_>>());
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
    db.exec(&format!("INSERT INTO all_types VALUES (1, {VALUES})")).await;
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
        ("bo", "boolean", None),
        ("siu", "int32", None),
        ("iu", "int64", None),
        ("biu", "int64", None),
        ("f", "float", None),
        ("d", "double", None),
        ("dec1", "bytes", Some("org.apache.kafka.connect.data.Decimal")),
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
    assert_eq!(schema_field(schema, "dec1")["parameters"], json!({"scale": "3", "connect.decimal.precision": "10"}));
    assert_eq!(schema_field(schema, "b12")["parameters"], json!({"length": "12"}));
    assert_eq!(schema_field(schema, "e")["parameters"], json!({"allowed": "red,green,blue"}));
    assert_eq!(schema_field(schema, "id")["optional"], false);
    assert_eq!(schema_field(schema, "n")["optional"], true);
    let snapshot_schema = schema.clone();

    // Streamed: insert (two rows, one transaction), update, delete, zero dates.
    db.exec(&format!(
        "BEGIN; INSERT INTO all_types VALUES (2, {VALUES}); INSERT INTO all_types (id) VALUES (3); COMMIT"
    ))
    .await;
    db.exec("UPDATE all_types SET vc = 'changed', n = 5 WHERE id = 2").await;
    db.exec("DELETE FROM all_types WHERE id = 2").await;
    db.exec("SET SESSION sql_mode = ''").await;
    db.exec("INSERT INTO all_types (id, dt, dtm, dtm6, ts) VALUES (4, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00')").await;
    let msgs = read_topic(&topic, 7, Duration::from_secs(60));
    assert_eq!(msgs.len(), 7, "r, c, c, u, d, tombstone, c; logs:\n{}", daemon.logs());
    let p = |i: usize| payload(msgs[i].value.as_ref().unwrap()).clone();

    let ins = p(1);
    assert_eq!(ins["op"], "c");
    assert_eq!(ins["before"], Value::Null);
    assert_fields(&ins["after"], &expected(2), "streamed insert");
    assert_eq!(msgs[1].value.as_ref().unwrap()["schema"], snapshot_schema, "one schema for snapshot and stream");
    let src = &ins["source"];
    assert_eq!(src["connector"], "mariadb");
    assert_eq!(src["name"], name.as_str());
    assert_eq!(src["db"], db.name.as_str());
    assert_eq!(src["table"], "all_types");
    assert_eq!(src["snapshot"], "false");
    assert_eq!(src["server_id"], 1);
    assert_eq!(src["row"], 0);
    assert!(src["file"].as_str().unwrap().starts_with("mariadb-bin."), "{src}");
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
        assert_eq!(zero["after"][f], Value::Null, "zero {f} becomes null: {}", zero["after"]);
    }

    // Transaction metadata: BEGIN and END of the two-row transaction.
    let tx = read_topic(&format!("{name}.transaction"), 2, Duration::from_secs(30));
    let tx_values: Vec<Value> = tx.iter().map(|m| payload(m.value.as_ref().unwrap()).clone()).collect();
    let end = tx_values
        .iter()
        .find(|t| t["status"] == "END" && t["id"] == gtid.as_str())
        .unwrap_or_else(|| panic!("END of {gtid} in {tx_values:?}"));
    assert_eq!(end["event_count"], 2);
    assert_eq!(end["data_collections"], json!([{"data_collection": format!("{}.all_types", db.name), "event_count": 2}]));

    // ALTER TABLE mid-stream: later rows carry the new column; a schema change is published.
    db.exec("ALTER TABLE all_types ADD COLUMN extra VARCHAR(10) DEFAULT 'x'").await;
    db.exec("INSERT INTO all_types (id) VALUES (5)").await;
    let msgs = read_topic(&topic, 8, Duration::from_secs(60));
    assert_eq!(msgs.len(), 8, "logs:\n{}", daemon.logs());
    let last = payload(msgs[7].value.as_ref().unwrap());
    assert_eq!(last["after"]["id"], 5);
    assert_eq!(last["after"]["extra"], "x");
    assert_eq!(schema_field(&msgs[7].value.as_ref().unwrap()["schema"], "extra")["type"], "string");
    let changes = read_topic(&name, 1, Duration::from_secs(30));
    let ddl: Vec<&Value> = changes.iter().map(|m| payload(m.value.as_ref().unwrap())).collect();
    let alter = ddl
        .iter()
        .find(|c| c["ddl"].as_str().unwrap_or_default().contains("ADD COLUMN extra"))
        .unwrap_or_else(|| panic!("schema change in {ddl:?}"));
    assert_eq!(alter["databaseName"], db.name.as_str());
    assert_eq!(alter["source"]["connector"], "mariadb");
    assert!(alter["source"]["pos"].as_i64().unwrap() > 4);
    assert_eq!(payload(changes[0].key.as_ref().unwrap())["databaseName"], db.name.as_str());
    assert!(daemon.stop().success());
}
