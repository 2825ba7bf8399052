//! Debezium's handling modes on PostgreSQL (`[types]`), snapshot and stream alike, with
//! values computed by hand from Debezium's documented mapping; unknown types left out by
//! default; enum labels added mid-stream; nullability as of the change.

mod common;

use std::time::Duration;

use common::registry::{avro_format, decode_values, raw, Registry};
use common::*;
use serde_json::{json, Value};

const SETUP: &str = "CREATE EXTENSION IF NOT EXISTS hstore;
CREATE TABLE modes (
  id int PRIMARY KEY,
  n numeric(7,3) DEFAULT 1.5,
  v numeric,
  m money,
  b bytea DEFAULT '\\x0102',
  d date,
  t3 time(3),
  t6 time,
  ts timestamp(6),
  iv interval,
  h hstore,
  bx box
)";

fn row(id: i64) -> String {
    format!(
        "INSERT INTO modes VALUES ({id}, -12.345, 0.0001, 12.34, '\\xfbff01', '2024-03-01',
         '01:02:03.456', '01:02:03.456789', '2024-03-01 01:02:03.456789',
         '1 year 2 months 3 days 04:05:06.78', '\"a\"=>\"1\", \"b\"=>NULL', '((1,2),(3,4))')"
    )
}

fn field(schema: &Value, name: &str) -> Option<Value> {
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
        .find(|f| f["field"] == name)
        .cloned()
        .map(|mut f| {
            f.as_object_mut().unwrap().remove("field");
            f
        })
}

fn want_modes1(id: i64) -> Value {
    json!({
        "id": id,
        "n": "-12.345",
        "v": "0.0001",
        "m": "12.34",
        "b": "fbff01",
        "d": 19783,
        "t3": 3_723_456,
        "t6": 3_723_456,
        "ts": 1_709_254_923_456i64,
        "iv": "P1Y2M3DT4H5M6.78S",
        "h": {"a": "1", "b": null},
        // box is unknown to Debezium: included as the bytes of its text, in hex mode.
        "bx": "28332c34292c28312c3229"
    })
}

const MODES1: &str = "decimal_handling_mode = \"string\"\nbinary_handling_mode = \"hex\"\ntime_precision_mode = \"connect\"\ninterval_handling_mode = \"string\"\nhstore_handling_mode = \"map\"\ninclude_unknown_datatypes = true";

/// Runs a connector with `[types]` over one snapshot row and one streamed row; returns the
/// two records.
async fn two_records(prefix: &str, types: &str) -> (Vec<Value>, String) {
    let db = TestDb::new(prefix).await;
    db.exec(SETUP).await;
    db.exec(&row(1)).await;
    let name = unique(prefix);
    let mut daemon = Daemon::single(&name, &db, &["public.modes"], &format!("[types]\n{types}"));
    daemon.start();
    let topic = format!("{name}.public.modes");
    assert_eq!(
        read_topic(&topic, 1, Duration::from_secs(60)).len(),
        1,
        "logs:\n{}",
        daemon.logs()
    );
    db.exec(&row(2)).await;
    let all = read_topic(&topic, 2, Duration::from_secs(60));
    assert_eq!(all.len(), 2, "logs:\n{}", daemon.logs());
    let logs = daemon.logs();
    assert!(daemon.stop().success());
    (all.iter().map(|m| m.value.clone().unwrap()).collect(), logs)
}

#[tokio::test(flavor = "multi_thread")]
async fn string_hex_connect_interval_string_hstore_map_and_unknown_types_included() {
    let (records, _) = two_records("pgmode1", MODES1).await;
    for (v, (op, id)) in records.iter().zip([("r", 1), ("c", 2)]) {
        assert_eq!(v["payload"]["op"], op);
        let after = &v["payload"]["after"];
        let want = want_modes1(id);
        assert_eq!(after, &want, "{op}");
        let s = &v["schema"];
        let expect = [
            (
                "n",
                json!({"type": "string", "optional": true, "default": "1.500"}),
            ),
            ("v", json!({"type": "string", "optional": true})),
            ("m", json!({"type": "string", "optional": true})),
            (
                "b",
                json!({"type": "string", "optional": true, "default": "0102"}),
            ),
            (
                "d",
                json!({"type": "int32", "optional": true, "name": "org.apache.kafka.connect.data.Date", "version": 1}),
            ),
            (
                "t3",
                json!({"type": "int32", "optional": true, "name": "org.apache.kafka.connect.data.Time", "version": 1}),
            ),
            (
                "t6",
                json!({"type": "int32", "optional": true, "name": "org.apache.kafka.connect.data.Time", "version": 1}),
            ),
            (
                "ts",
                json!({"type": "int64", "optional": true, "name": "org.apache.kafka.connect.data.Timestamp", "version": 1}),
            ),
            (
                "iv",
                json!({"type": "string", "optional": true, "name": "io.debezium.time.Interval", "version": 1}),
            ),
            (
                "h",
                json!({"type": "map", "keys": {"type": "string", "optional": false}, "values": {"type": "string", "optional": true}, "optional": true}),
            ),
            ("bx", json!({"type": "string", "optional": true})),
        ];
        for (name, want) in expect {
            assert_eq!(field(s, name), Some(want), "{op}: schema of {name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn modes_in_avro_decode_to_the_same_values() {
    let registry = Registry::start().await;
    let db = TestDb::new("pgmodeavro").await;
    db.exec(SETUP).await;
    db.exec(&row(1)).await;
    let name = unique("pgmodeavro");
    let mut daemon = Daemon::new(
        "",
        &[(
            "c.toml",
            pg_connector(&name, &name, &db, &["public.modes"], "")
                + &avro_format(&registry)
                + "[types]\n"
                + MODES1,
        )],
    );
    daemon.start();
    let topic = format!("{name}.public.modes");
    assert_eq!(raw(&topic, 1).await.len(), 1, "logs:\n{}", daemon.logs());
    db.exec(&row(2)).await;
    let msgs = raw(&topic, 2).await;
    assert_eq!(msgs.len(), 2, "logs:\n{}", daemon.logs());
    let decoded = decode_values(&registry, &msgs).await;
    for (id, (_, v)) in [1, 2].into_iter().zip(&decoded) {
        assert_eq!(v["after"], want_modes1(id));
    }
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn double_url_safe_base64_adaptive_time_microseconds_and_unknown_types_left_out() {
    let (records, logs) = two_records(
        "pgmode2",
        "decimal_handling_mode = \"double\"\nbinary_handling_mode = \"base64-url-safe\"\ntime_precision_mode = \"adaptive_time_microseconds\"",
    )
    .await;
    for (v, op) in records.iter().zip(["r", "c"]) {
        let after = &v["payload"]["after"];
        assert_eq!(after["n"], -12.345, "{op}");
        assert_eq!(after["v"], 0.0001, "{op}");
        assert_eq!(after["m"], 12.34, "{op}");
        assert_eq!(after["b"], "-_8B", "{op}");
        assert_eq!(after["t3"], 3_723_456_000i64, "{op}");
        assert_eq!(after["t6"], 3_723_456_789i64, "{op}");
        assert_eq!(after["ts"], 1_709_254_923_456_789i64, "{op}");
        // Defaults: numeric interval and hstore as Json.
        // Debezium's MicroDuration: a month is 365.25 / 12 days.
        let iv = 14 * 2_629_800_000_000i64 + 3 * 86_400_000_000 + 14_706_780_000;
        assert_eq!(after["iv"], iv, "{op}");
        assert_eq!(after["h"], "{\"a\":\"1\",\"b\":null}", "{op}");
        // box has no Debezium mapping: left out of the value and the schema.
        assert!(after.get("bx").is_none(), "{op}: {after}");
        let s = &v["schema"];
        assert!(field(s, "bx").is_none(), "{op}");
        assert_eq!(
            field(s, "n"),
            Some(json!({"type": "double", "optional": true, "default": 1.5}))
        );
        assert_eq!(
            field(s, "t3"),
            Some(
                json!({"type": "int64", "optional": true, "name": "io.debezium.time.MicroTime", "version": 1})
            )
        );
    }
    assert!(
        logs.contains("include_unknown_datatypes"),
        "the left-out column is named in the log:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn enum_labels_added_mid_stream_appear_in_allowed() {
    let db = TestDb::new("pgenum").await;
    db.exec("CREATE TYPE mood AS ENUM ('V1', 'V2'); CREATE TABLE e (id int PRIMARY KEY, m mood, ms mood[])")
        .await;
    let name = unique("pgenum");
    let mut daemon = Daemon::single(&name, &db, &["public.e"], "");
    daemon.start();
    wait_for_slot(&db, &name, &daemon).await;
    // Streaming (the slot in use): the types were read before the label is added.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !db
        .client
        .query_one(
            "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
            &[&name],
        )
        .await
        .unwrap()
        .get::<_, bool>(0)
    {
        assert!(std::time::Instant::now() < deadline, "never streamed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    db.exec("INSERT INTO e VALUES (1, 'V1', '{V2}')").await;
    db.exec("ALTER TYPE mood ADD VALUE 'V3'").await;
    db.exec("INSERT INTO e VALUES (2, 'V3', '{V1}'); INSERT INTO e VALUES (3, 'V1', '{V3}')")
        .await;
    let topic = format!("{name}.public.e");
    let all = read_topic(&topic, 3, Duration::from_secs(60));
    assert_eq!(all.len(), 3, "logs:\n{}", daemon.logs());
    let allowed = |m: &Msg, f: &str| {
        let s = field(&m.value.as_ref().unwrap()["schema"], f).unwrap();
        match f {
            "ms" => s["items"]["parameters"]["allowed"].clone(),
            _ => s["parameters"]["allowed"].clone(),
        }
    };
    assert_eq!(allowed(&all[0], "m"), "V1,V2");
    assert_eq!(allowed(&all[1], "m"), "V1,V2,V3");
    assert_eq!(allowed(&all[1], "ms"), "V1,V2,V3");
    assert_eq!(allowed(&all[2], "ms"), "V1,V2,V3");
    assert_eq!(
        all[1].value.as_ref().unwrap()["payload"]["after"]["m"],
        "V3"
    );
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_null_written_before_set_not_null_keeps_its_field_optional() {
    let db = TestDb::new("pgnull").await;
    db.exec("CREATE TABLE n (id int PRIMARY KEY, x int)").await;
    let name = unique("pgnull");
    let mut daemon = Daemon::single(&name, &db, &["public.n"], "");
    daemon.start();
    wait_for_slot(&db, &name, &daemon).await;
    // Stopped once the (empty) snapshot is committed as finished: a stop during it would
    // leave it unfinished, and the next start would take it again instead of streaming.
    wait_snapshot_done(&daemon, &name).await;
    assert!(daemon.stop().success());
    // While the connector is down: a NULL, then the column made NOT NULL. When the stream is
    // read, the catalog already says NOT NULL.
    db.exec(
        "INSERT INTO n VALUES (1, NULL); UPDATE n SET x = 0 WHERE id = 1;
         ALTER TABLE n ALTER COLUMN x SET NOT NULL; INSERT INTO n VALUES (2, 2);",
    )
    .await;
    daemon.start();
    let topic = format!("{name}.public.n");
    let all = read_topic(&topic, 3, Duration::from_secs(60));
    assert_eq!(all.len(), 3, "logs:\n{}", daemon.logs());
    let v = all[0].value.as_ref().unwrap();
    assert_eq!(v["payload"]["after"], json!({"id": 1, "x": null}));
    assert_eq!(
        field(&v["schema"], "x").unwrap()["optional"],
        true,
        "a record never contradicts its own schema"
    );
    let last = all[2].value.as_ref().unwrap();
    assert_eq!(last["payload"]["after"], json!({"id": 2, "x": 2}));
    assert!(daemon.stop().success());
}
