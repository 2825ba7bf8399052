//! Debezium fidelity on MariaDB, snapshot and stream alike: values and schemas Debezium's own
//! MySQL connector tests assert for its defaults, each computed by hand from Debezium's
//! documented mapping — `TINYINT(1)` stays an integer, zero dates in `NOT NULL` columns are
//! epoch 0, `BINARY(n)` keeps its zero padding, negative fractional `TIME`s, non-UTF-8 charsets,
//! two-digit years adjusted, `FLOAT(M,D)` as float64, MariaDB `UUID`, enum labels with commas,
//! `POINT` as a Point struct, SRID 0 as null, and column defaults in field schemas. Then the
//! `[types]` modes that change them.

mod common;

use std::time::Duration;

use base64::Engine;
use common::mysql::*;
use common::*;
use serde_json::{json, Value};

const TABLE: &str = "CREATE TABLE fid (
  id INT PRIMARY KEY,
  t1 TINYINT(1), bo BOOLEAN, t1u TINYINT(1) UNSIGNED,
  zd DATE NOT NULL, zdt DATETIME NOT NULL, zts TIMESTAMP NOT NULL DEFAULT '0000-00-00 00:00:00',
  zdn DATE NULL,
  b16 BINARY(16), b4 BINARY(4),
  tm3 TIME(3), tm4 TIME(4), tm1 TIME(1),
  l2 VARCHAR(20) CHARACTER SET latin2,
  y2 DATE, y2dt DATETIME,
  fl FLOAT(5,2),
  uu UUID,
  en ENUM('a,b','c'),
  pt POINT, g0 GEOMETRY,
  di INT NOT NULL DEFAULT 42, dv VARCHAR(10) DEFAULT 'x''y', dd DECIMAL(5,2) DEFAULT 1.50,
  dda DATE DEFAULT '2024-01-02', de ENUM('p','q') DEFAULT 'q', dn INT DEFAULT NULL
)";

const VALUES: &str = "5, 1, 200,
  '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00',
  unhex('00'), x'0102',
  '-733:00:00.001', '-00:00:01.0001', '-00:00:00.5',
  'Žluťoučký',
  '0018-04-01', '0018-04-01 01:02:03',
  5.61,
  '123e4567-e89b-12d3-a456-426614174000',
  'a,b',
  POINT(1, 2), ST_GeomFromText('LINESTRING(0 0,1 1)'),
  7, 'v', 2.25, '2020-01-01', 'p', NULL";

fn b64(bytes: &[u8]) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn point_wkb(x: f64, y: f64) -> Vec<u8> {
    let mut w = vec![1u8, 1, 0, 0, 0];
    w.extend_from_slice(&x.to_le_bytes());
    w.extend_from_slice(&y.to_le_bytes());
    w
}

fn line_wkb() -> Vec<u8> {
    let mut w = vec![1u8, 2, 0, 0, 0, 2, 0, 0, 0];
    for v in [0.0f64, 0.0, 1.0, 1.0] {
        w.extend_from_slice(&v.to_le_bytes());
    }
    w
}

fn expected(id: i64) -> Value {
    json!({
        "id": id,
        "t1": 5, "bo": 1, "t1u": 200,
        "zd": 0, "zdt": 0, "zts": "1970-01-01T00:00:00Z", "zdn": null,
        "b16": b64(&[0; 16]), "b4": b64(&[1, 2, 0, 0]),
        "tm3": -2_638_800_001_000i64, "tm4": -1_000_100, "tm1": -500_000,
        "l2": "Žluťoučký",
        "y2": 17622, "y2dt": 1_522_544_523_000i64,
        "fl": 5.610000133514404,
        "uu": "123e4567-e89b-12d3-a456-426614174000",
        "en": "a,b",
        "pt": {"x": 1.0, "y": 2.0, "wkb": b64(&point_wkb(1.0, 2.0)), "srid": null},
        "g0": {"wkb": b64(&line_wkb()), "srid": null},
        "di": 7, "dv": "v", "dd": b64(&[0, 225]), "dda": 18262, "de": "p", "dn": null
    })
}

fn after_field<'a>(schema: &'a Value, field: &str) -> &'a Value {
    schema["fields"]
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
}

fn assert_row(actual: &Value, want: &Value, what: &str) {
    let (a, w) = (actual.as_object().unwrap(), want.as_object().unwrap());
    for (k, v) in w {
        assert_eq!(a.get(k), Some(v), "{what}: field {k} of {actual}");
    }
    assert_eq!(a.len(), w.len(), "{what}: {actual}");
}

/// Field schemas as Debezium declares them for this table (type, name, parameters, default).
fn assert_schema(schema: &Value, what: &str) {
    let cases: &[(&str, Value)] = &[
        ("t1", json!({"type": "int8", "optional": true})),
        ("bo", json!({"type": "int8", "optional": true})),
        ("t1u", json!({"type": "int16", "optional": true})),
        (
            "zd",
            json!({"type": "int32", "optional": false, "name": "io.debezium.time.Date", "version": 1}),
        ),
        (
            "zts",
            json!({"type": "string", "optional": false, "name": "io.debezium.time.ZonedTimestamp", "version": 1, "default": "1970-01-01T00:00:00Z"}),
        ),
        ("fl", json!({"type": "double", "optional": true})),
        (
            "uu",
            json!({"type": "string", "optional": true, "name": "io.debezium.data.Uuid", "version": 1}),
        ),
        (
            "en",
            json!({"type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1, "parameters": {"allowed": "a\\,b,c"}}),
        ),
        (
            "di",
            json!({"type": "int32", "optional": false, "default": 42}),
        ),
        (
            "dv",
            json!({"type": "string", "optional": true, "default": "x'y"}),
        ),
        (
            "dd",
            json!({"type": "bytes", "optional": true, "name": "org.apache.kafka.connect.data.Decimal", "version": 1, "parameters": {"scale": "2", "connect.decimal.precision": "5"}, "default": "AJY="}),
        ),
        (
            "dda",
            json!({"type": "int32", "optional": true, "name": "io.debezium.time.Date", "version": 1, "default": 19724}),
        ),
        (
            "de",
            json!({"type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1, "parameters": {"allowed": "p,q"}, "default": "q"}),
        ),
        ("dn", json!({"type": "int32", "optional": true})),
    ];
    for (field, want) in cases {
        let mut got = after_field(schema, field).clone();
        got.as_object_mut().unwrap().remove("field");
        assert_eq!(&got, want, "{what}: schema of {field}");
    }
    let pt = after_field(schema, "pt");
    assert_eq!(pt["name"], "io.debezium.data.geometry.Point", "{pt}");
    let names: Vec<&str> = pt["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["x", "y", "wkb", "srid"], "{pt}");
    assert_eq!(pt["fields"][0]["type"], "double");
    assert_eq!(pt["fields"][0]["optional"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn debezium_default_values_and_schemas_in_snapshot_and_stream() {
    let mut db = MyDb::new("myfid").await;
    db.exec("SET SESSION sql_mode = ''").await;
    db.exec(TABLE).await;
    db.exec(&format!("INSERT INTO fid VALUES (1, {VALUES})"))
        .await;
    let name = unique("myfid");
    let mut daemon = my_daemon(&name, &db, &["fid"], "[format]\nschemas = true");
    daemon.start();
    let topic = format!("{name}.{}.fid", db.name);
    let snap = read_topic(&topic, 1, Duration::from_secs(60));
    assert_eq!(snap.len(), 1, "snapshot; logs:\n{}", daemon.logs());
    let v = snap[0].value.as_ref().unwrap();
    assert_eq!(payload(v)["op"], "r");
    assert_row(&payload(v)["after"], &expected(1), "snapshot");
    assert_schema(&v["schema"], "snapshot");

    db.exec(&format!("INSERT INTO fid VALUES (2, {VALUES})"))
        .await;
    let all = read_topic(&topic, 2, Duration::from_secs(60));
    assert_eq!(all.len(), 2, "stream; logs:\n{}", daemon.logs());
    let v = all[1].value.as_ref().unwrap();
    assert_eq!(payload(v)["op"], "c");
    assert_row(&payload(v)["after"], &expected(2), "stream");
    assert_schema(&v["schema"], "stream");
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn tinyint1_as_boolean_and_time_adjuster_off_are_options() {
    let mut db = MyDb::new("myfidm").await;
    db.exec("SET SESSION sql_mode = ''").await;
    db.exec("CREATE TABLE m (id INT PRIMARY KEY, t1 TINYINT(1), ti TINYINT, y2 DATE)")
        .await;
    db.exec("INSERT INTO m VALUES (1, 5, 5, '0018-04-01')")
        .await;
    let name = unique("myfidm");
    let mut daemon = my_daemon(
        &name,
        &db,
        &["m"],
        "[format]\nschemas = true\n[types]\ntinyint1_as_boolean = true\ntime_adjuster = false",
    );
    daemon.start();
    let topic = format!("{name}.{}.m", db.name);
    read_topic(&topic, 1, Duration::from_secs(60));
    db.exec("INSERT INTO m VALUES (2, 0, 0, '0018-04-01')")
        .await;
    let all = read_topic(&topic, 2, Duration::from_secs(60));
    assert_eq!(all.len(), 2, "logs:\n{}", daemon.logs());
    // 0018-04-01 stays year 18: days from 1970-01-01.
    let year18 = -712_863;
    for (m, (t1, ti)) in all.iter().zip([(true, 5), (false, 0)]) {
        let v = m.value.as_ref().unwrap();
        let after = &payload(v)["after"];
        assert_eq!(after["t1"], t1, "{after}");
        assert_eq!(after["ti"], ti, "{after}");
        assert_eq!(after["y2"], year18, "{after}");
        assert_eq!(after_field(&v["schema"], "t1")["type"], "boolean");
        assert_eq!(after_field(&v["schema"], "ti")["type"], "int8");
    }
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn string_base64_connect_and_precise_unsigned_modes() {
    let mut db = MyDb::new("myfidmodes").await;
    db.exec(
        "CREATE TABLE md (id INT PRIMARY KEY, d DECIMAL(7,3) DEFAULT 1.5, b VARBINARY(8),
         dt DATE, tm TIME(6), dtm DATETIME(6), u BIGINT UNSIGNED DEFAULT 7, i BIGINT)",
    )
    .await;
    let row = |id: i64| {
        format!(
            "INSERT INTO md VALUES ({id}, -12.345, x'fbff01', '2024-03-01', '01:02:03.456789',
             '2024-03-01 01:02:03.456789', 18446744073709551615, -5)"
        )
    };
    db.exec(&row(1)).await;
    let name = unique("myfidmodes");
    let mut daemon = my_daemon(
        &name,
        &db,
        &["md"],
        "[format]\nschemas = true\n[types]\ndecimal_handling_mode = \"string\"\nbinary_handling_mode = \"base64\"\ntime_precision_mode = \"connect\"\nbigint_unsigned_handling_mode = \"precise\"",
    );
    daemon.start();
    let topic = format!("{name}.{}.md", db.name);
    assert_eq!(read_topic(&topic, 1, Duration::from_secs(60)).len(), 1);
    db.exec(&row(2)).await;
    let all = read_topic(&topic, 2, Duration::from_secs(60));
    assert_eq!(all.len(), 2, "logs:\n{}", daemon.logs());
    // 2^64 - 1 as Connect's Decimal: the unscaled two's complement, nine bytes.
    let max_u64 = b64(&[0, 255, 255, 255, 255, 255, 255, 255, 255]);
    for (m, (op, id)) in all.iter().zip([("r", 1), ("c", 2)]) {
        let v = m.value.as_ref().unwrap();
        assert_eq!(payload(v)["op"], op);
        assert_row(
            &payload(v)["after"],
            &json!({
                "id": id, "d": "-12.345", "b": "+/8B", "dt": 19783, "tm": 3_723_456,
                "dtm": 1_709_254_923_456i64, "u": max_u64, "i": -5
            }),
            op,
        );
        let s = &v["schema"];
        let cases = [
            (
                "d",
                json!({"type": "string", "optional": true, "default": "1.500", "field": "d"}),
            ),
            (
                "b",
                json!({"type": "string", "optional": true, "field": "b"}),
            ),
            (
                "dt",
                json!({"type": "int32", "optional": true, "name": "org.apache.kafka.connect.data.Date", "version": 1, "field": "dt"}),
            ),
            (
                "tm",
                json!({"type": "int32", "optional": true, "name": "org.apache.kafka.connect.data.Time", "version": 1, "field": "tm"}),
            ),
            (
                "dtm",
                json!({"type": "int64", "optional": true, "name": "org.apache.kafka.connect.data.Timestamp", "version": 1, "field": "dtm"}),
            ),
            (
                "u",
                json!({"type": "bytes", "optional": true, "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
                       "parameters": {"scale": "0"}, "default": b64(&[7]), "field": "u"}),
            ),
            (
                "i",
                json!({"type": "int64", "optional": true, "field": "i"}),
            ),
        ];
        for (f, want) in cases {
            assert_eq!(after_field(s, f), &want, "{op}: schema of {f}");
        }
    }
    assert!(daemon.stop().success());
}

/// Column defaults Debezium's MySQL tests assert: `BIT(1)` as a boolean, `BIT(n)` as `Bits`
/// bytes (little-endian), a decimal default at the column's scale, and a `TIMESTAMP NULL`
/// without a default declares none (not the epoch).
#[tokio::test(flavor = "multi_thread")]
async fn bit_decimal_and_nullable_timestamp_defaults_as_debezium_declares_them() {
    let mut db = MyDb::new("mydflt").await;
    db.exec("SET SESSION sql_mode = ''").await;
    db.exec(
        "CREATE TABLE dflt (id INT PRIMARY KEY, b1 BIT(1) DEFAULT b'1', b3 BIT(3) DEFAULT b'101',
         b12 BIT(12) DEFAULT b'100000000001', d75 DECIMAL(7,5) DEFAULT 12.345678,
         tsn TIMESTAMP NULL, tsd TIMESTAMP NULL DEFAULT NULL)",
    )
    .await;
    db.exec("INSERT INTO dflt (id) VALUES (1)").await;
    let name = unique("mydflt");
    let mut daemon = my_daemon(&name, &db, &["dflt"], "[format]\nschemas = true");
    daemon.start();
    let topic = format!("{name}.{}.dflt", db.name);
    assert_eq!(read_topic(&topic, 1, Duration::from_secs(60)).len(), 1);
    db.exec("INSERT INTO dflt (id) VALUES (2)").await;
    let all = read_topic(&topic, 2, Duration::from_secs(60));
    assert_eq!(all.len(), 2, "logs:\n{}", daemon.logs());
    for m in &all {
        let v = m.value.as_ref().unwrap();
        let after = &payload(v)["after"];
        assert_eq!(after["b1"], true, "{after}");
        assert_eq!(after["b3"], b64(&[5]), "{after}");
        assert_eq!(after["b12"], b64(&[0x01, 0x08]), "{after}");
        // 12.34568 (the column's scale): unscaled 1234568.
        assert_eq!(after["d75"], b64(&[0x12, 0xd6, 0x88]), "{after}");
        assert_eq!(after["tsn"], Value::Null, "{after}");
        let s = &v["schema"];
        let cases = [
            (
                "b1",
                json!({"type": "boolean", "optional": true, "default": true, "field": "b1"}),
            ),
            (
                "b3",
                json!({"type": "bytes", "optional": true, "name": "io.debezium.data.Bits", "version": 1,
                       "parameters": {"length": "3"}, "default": b64(&[5]), "field": "b3"}),
            ),
            (
                "b12",
                json!({"type": "bytes", "optional": true, "name": "io.debezium.data.Bits", "version": 1,
                       "parameters": {"length": "12"}, "default": b64(&[0x01, 0x08]), "field": "b12"}),
            ),
            (
                "d75",
                json!({"type": "bytes", "optional": true, "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
                       "parameters": {"scale": "5", "connect.decimal.precision": "7"}, "default": b64(&[0x12, 0xd6, 0x88]), "field": "d75"}),
            ),
            (
                "tsn",
                json!({"type": "string", "optional": true, "name": "io.debezium.time.ZonedTimestamp", "version": 1, "field": "tsn"}),
            ),
            (
                "tsd",
                json!({"type": "string", "optional": true, "name": "io.debezium.time.ZonedTimestamp", "version": 1, "field": "tsd"}),
            ),
        ];
        for (f, want) in cases {
            assert_eq!(after_field(s, f), &want, "schema of {f}");
        }
    }
    assert!(daemon.stop().success());
}
