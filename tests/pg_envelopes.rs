//! Acceptance 1: a Kafka consumer reads, field by field, Debezium envelopes for snapshot
//! reads, inserts, updates, deletes, tombstones and key changes across three tables covering
//! every supported type, with and without schema, under DEFAULT and FULL replica identity.

mod common;

use std::time::Duration;

use common::all_types::{expected_after, ROW, SETUP};
use common::*;
use serde_json::{json, Value};

fn field_schema<'a>(envelope_schema: &'a Value, row: &str, name: &str) -> &'a Value {
    let row = envelope_schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == row)
        .unwrap();
    row["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == name)
        .unwrap_or_else(|| panic!("no field {name}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn envelopes_field_by_field_with_and_without_schema() {
    let db = TestDb::new("env").await;
    db.exec(SETUP).await;
    let with = unique("ws");
    let without = unique("ns");
    let tables = ["public.all_types", "public.customers", "public.orders"];
    let mut daemon = Daemon::new(
        "",
        &[
            ("with.toml", pg_connector(&with, &with, &db, &tables, "")),
            (
                "without.toml",
                pg_connector(&without, &without, &db, &tables, "") + "[format]\nschemas = false\n",
            ),
        ],
    );
    daemon.start();
    // The snapshot row arrives before we write, so streamed changes follow it.
    let snap = read_topic(
        &format!("{with}.public.customers"),
        1,
        Duration::from_secs(60),
    );
    assert_eq!(snap.len(), 1, "snapshot row; logs:\n{}", daemon.logs());

    db.exec(ROW).await;
    db.exec("UPDATE all_types SET c_text = 'changed' WHERE id = 1")
        .await;
    db.exec("DELETE FROM all_types WHERE id = 1").await;
    db.exec(
        "INSERT INTO customers VALUES (2, 'ann', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 300) i));
         UPDATE customers SET name = 'anna' WHERE id = 2;
         UPDATE customers SET id = 3 WHERE id = 2;
         DELETE FROM customers WHERE id = 3;
         INSERT INTO orders VALUES (7, 1, 5);
         UPDATE orders SET qty = 6 WHERE order_no = 7 AND line = 1;
         DELETE FROM orders WHERE order_no = 7;",
    )
    .await;

    for prefix in [&with, &without] {
        let schema_mode = prefix == &with;
        // all_types: c, u, d, tombstone.
        let msgs = read_topic(
            &format!("{prefix}.public.all_types"),
            4,
            Duration::from_secs(60),
        );
        assert_eq!(
            msgs.len(),
            4,
            "{prefix} all_types; logs:\n{}",
            daemon.logs()
        );
        let v0 = msgs[0].value.as_ref().unwrap();
        let p = payload(v0);
        assert_eq!(p["op"], "c");
        assert_eq!(p["before"], Value::Null);
        assert_eq!(p["after"], expected_after(), "{prefix}");
        assert_eq!(p["transaction"], Value::Null);
        let src = &p["source"];
        assert_eq!(src["connector"], "postgresql");
        assert_eq!(src["name"], prefix.as_str());
        assert_eq!(src["db"], db.name.as_str());
        assert_eq!(src["schema"], "public");
        assert_eq!(src["table"], "all_types");
        assert_eq!(src["snapshot"], "false");
        assert!(src["txId"].as_i64().unwrap() > 0);
        let lsn = src["lsn"].as_i64().unwrap();
        assert!(lsn > 0);
        let seq: Vec<Value> = serde_json::from_str(src["sequence"].as_str().unwrap()).unwrap();
        assert_eq!(seq[1], json!(lsn.to_string()));
        assert!(src["ts_ms"].as_i64().unwrap() > 1_700_000_000_000);
        assert_eq!(
            src["ts_us"].as_i64().unwrap() / 1000,
            src["ts_ms"].as_i64().unwrap()
        );
        assert!(p["ts_ms"].as_i64().unwrap() >= src["ts_ms"].as_i64().unwrap());
        let key = msgs[0].key.as_ref().unwrap();
        assert_eq!(payload(key), &json!({"id": 1}));

        let p1 = payload(msgs[1].value.as_ref().unwrap());
        assert_eq!(p1["op"], "u");
        assert_eq!(
            p1["before"],
            expected_after(),
            "FULL identity gives the whole old row"
        );
        let mut changed = expected_after();
        changed["c_text"] = json!("changed");
        assert_eq!(p1["after"], changed);

        let p2 = payload(msgs[2].value.as_ref().unwrap());
        assert_eq!(p2["op"], "d");
        assert_eq!(p2["before"], changed);
        assert_eq!(p2["after"], Value::Null);
        assert!(msgs[3].value.is_none(), "tombstone after delete");
        assert_eq!(payload(msgs[3].key.as_ref().unwrap()), &json!({"id": 1}));

        if schema_mode {
            let s = &v0["schema"];
            assert_eq!(s["name"], format!("{prefix}.public.all_types.Envelope"));
            assert_eq!(s["version"], 2);
            let names: Vec<&str> = s["fields"]
                .as_array()
                .unwrap()
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
            assert_eq!(
                field_schema(s, "after", "c_num"),
                &json!({"type": "bytes", "optional": true, "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
                        "parameters": {"scale": "2", "connect.decimal.precision": "10"}, "field": "c_num"})
            );
            assert_eq!(
                field_schema(s, "after", "c_num_free")["name"],
                "io.debezium.data.VariableScaleDecimal"
            );
            assert_eq!(
                field_schema(s, "after", "id"),
                &json!({"type": "int32", "optional": false, "field": "id"})
            );
            assert_eq!(field_schema(s, "after", "c_int2")["type"], "int16");
            assert_eq!(field_schema(s, "after", "c_float4")["type"], "float");
            assert_eq!(field_schema(s, "after", "c_float8")["type"], "double");
            assert_eq!(
                field_schema(s, "after", "c_date")["name"],
                "io.debezium.time.Date"
            );
            assert_eq!(
                field_schema(s, "after", "c_time")["name"],
                "io.debezium.time.MicroTime"
            );
            assert_eq!(
                field_schema(s, "after", "c_time3")["name"],
                "io.debezium.time.Time"
            );
            assert_eq!(
                field_schema(s, "after", "c_ts")["name"],
                "io.debezium.time.MicroTimestamp"
            );
            assert_eq!(
                field_schema(s, "after", "c_ts3")["name"],
                "io.debezium.time.Timestamp"
            );
            assert_eq!(
                field_schema(s, "after", "c_tstz")["name"],
                "io.debezium.time.ZonedTimestamp"
            );
            assert_eq!(
                field_schema(s, "after", "c_timetz")["name"],
                "io.debezium.time.ZonedTime"
            );
            assert_eq!(
                field_schema(s, "after", "c_interval")["name"],
                "io.debezium.time.MicroDuration"
            );
            assert_eq!(
                field_schema(s, "after", "c_uuid")["name"],
                "io.debezium.data.Uuid"
            );
            assert_eq!(
                field_schema(s, "after", "c_jsonb")["name"],
                "io.debezium.data.Json"
            );
            assert_eq!(
                field_schema(s, "after", "c_xml")["name"],
                "io.debezium.data.Xml"
            );
            assert_eq!(
                field_schema(s, "after", "c_enum")["parameters"],
                json!({"allowed": "sad,ok,happy"})
            );
            assert_eq!(field_schema(s, "after", "c_bit1")["type"], "boolean");
            assert_eq!(
                field_schema(s, "after", "c_bit8")["parameters"],
                json!({"length": "8"})
            );
            assert_eq!(field_schema(s, "after", "c_domain")["type"], "int32");
            assert_eq!(
                field_schema(s, "after", "c_int_arr"),
                &json!({"type": "array", "items": {"type": "int32", "optional": true}, "optional": true, "field": "c_int_arr"})
            );
            let source_schema = s["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["field"] == "source")
                .unwrap();
            assert_eq!(
                source_schema["name"],
                "io.debezium.connector.postgresql.Source"
            );
            let snapshot = source_schema["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["field"] == "snapshot")
                .unwrap();
            assert_eq!(snapshot["type"], "string");
            assert_eq!(
                key["schema"]["name"],
                format!("{prefix}.public.all_types.Key")
            );
        } else {
            assert!(v0.get("schema").is_none() && v0.get("payload").is_none());
        }

        // customers (DEFAULT identity): snapshot r, c, u (no before), key change → d + tombstone
        // + c with headers, delete with key-only before, tombstone.
        let msgs = read_topic(
            &format!("{prefix}.public.customers"),
            8,
            Duration::from_secs(60),
        );
        let ops: Vec<String> = msgs
            .iter()
            .map(|m| {
                m.value
                    .as_ref()
                    .map(|v| payload(v)["op"].as_str().unwrap().to_string())
                    .unwrap_or_else(|| "tombstone".into())
            })
            .collect();
        assert_eq!(
            ops,
            ["r", "c", "u", "d", "tombstone", "c", "d", "tombstone"],
            "{prefix}"
        );
        let r = payload(msgs[0].value.as_ref().unwrap());
        assert_eq!(
            r["after"],
            json!({"id": 1, "name": "snapshot-row", "bio": null})
        );
        assert_eq!(
            r["source"]["snapshot"], "last",
            "a single-row snapshot ends with `last`"
        );
        let c = payload(msgs[1].value.as_ref().unwrap());
        assert_eq!(c["after"]["bio"].as_str().unwrap().len(), 9600);
        let u = payload(msgs[2].value.as_ref().unwrap());
        assert_eq!(
            u["before"],
            Value::Null,
            "DEFAULT identity: no before image on update"
        );
        assert_eq!(u["after"]["name"], "anna");
        assert_eq!(
            u["after"]["bio"], "__debezium_unavailable_value",
            "unchanged TOAST"
        );
        let d = &msgs[3];
        assert_eq!(payload(d.key.as_ref().unwrap()), &json!({"id": 2}));
        assert_eq!(payload(&d.headers["__debezium.newkey"]), &json!({"id": 3}));
        assert_eq!(payload(d.value.as_ref().unwrap())["before"]["id"], 2);
        let c3 = &msgs[5];
        assert_eq!(payload(c3.key.as_ref().unwrap()), &json!({"id": 3}));
        assert_eq!(payload(&c3.headers["__debezium.oldkey"]), &json!({"id": 2}));
        let del = payload(msgs[6].value.as_ref().unwrap());
        assert_eq!(
            del["before"],
            json!({"id": 3, "name": null, "bio": null}),
            "DEFAULT identity: key-only before"
        );

        // orders (FULL identity, composite key).
        let msgs = read_topic(
            &format!("{prefix}.public.orders"),
            4,
            Duration::from_secs(60),
        );
        assert_eq!(msgs.len(), 4);
        assert_eq!(
            payload(msgs[0].key.as_ref().unwrap()),
            &json!({"order_no": 7, "line": 1})
        );
        let u = payload(msgs[1].value.as_ref().unwrap());
        assert_eq!(u["before"], json!({"order_no": 7, "line": 1, "qty": 5}));
        assert_eq!(u["after"], json!({"order_no": 7, "line": 1, "qty": 6}));
        assert!(msgs[3].value.is_none());
    }
    assert!(
        daemon.stop().success(),
        "graceful stop exits 0; logs:\n{}",
        daemon.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn truncate_and_logical_messages_on_request() {
    let db = TestDb::new("trunc").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a');")
        .await;
    let name = unique("tr");
    let mut daemon = Daemon::new(
        "",
        &[(
            "c.toml",
            pg_connector(
                &name,
                &name,
                &db,
                &["public.t"],
                "skipped_operations = []\n[snapshot]\nmode = \"no_data\"",
            ),
        )],
    );
    daemon.start();
    // Wait until the slot exists so the following changes are captured.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while db.confirmed_flush(&name).await.is_none() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    db.exec("INSERT INTO t VALUES (2, 'b'); TRUNCATE t; SELECT pg_logical_emit_message(true, 'audit', 'hello');").await;
    let msgs = read_topic(&format!("{name}.public.t"), 2, Duration::from_secs(60));
    let ops: Vec<&str> = msgs
        .iter()
        .map(|m| payload(m.value.as_ref().unwrap())["op"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        ["c", "t"],
        "no_data: the existing row is not read; logs:\n{}",
        daemon.logs()
    );
    assert!(msgs[1].key.is_none(), "truncate has a null key");
    let t = payload(msgs[1].value.as_ref().unwrap());
    assert_eq!(t["before"], Value::Null);
    assert_eq!(t["after"], Value::Null);
    let m = read_topic(&format!("{name}.message"), 1, Duration::from_secs(30));
    assert_eq!(m.len(), 1);
    let p = payload(m[0].value.as_ref().unwrap());
    assert_eq!(p["op"], "m");
    assert_eq!(
        p["message"],
        json!({"prefix": "audit", "content": "aGVsbG8="})
    );
    assert_eq!(p["source"]["table"], "");
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_changes_and_replica_identity_variants() {
    let db = TestDb::new("alter").await;
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, a text);
         CREATE TABLE by_index (code text NOT NULL, v int);
         CREATE UNIQUE INDEX by_index_code ON by_index (code);
         ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_code;
         CREATE TABLE nothing (id int PRIMARY KEY, v int);
         ALTER TABLE nothing REPLICA IDENTITY NOTHING;
         INSERT INTO nothing VALUES (1, 1);",
    )
    .await;
    let name = unique("alt");
    let mut daemon = Daemon::single(&name, &db, &["public.*"], "[format]\nschemas = false");
    daemon.start();
    let snap = read_topic(
        &format!("{name}.public.nothing"),
        1,
        Duration::from_secs(60),
    );
    assert_eq!(snap.len(), 1, "logs:\n{}", daemon.logs());
    db.exec(
        "INSERT INTO t VALUES (1, 'before alter');
         ALTER TABLE t ADD COLUMN b int DEFAULT 7;
         INSERT INTO t VALUES (2, 'after alter', 8);
         UPDATE t SET a = 'x' WHERE id = 1;
         INSERT INTO by_index VALUES ('k1', 1);
         UPDATE by_index SET v = 2 WHERE code = 'k1';
         DELETE FROM by_index WHERE code = 'k1';
         INSERT INTO nothing VALUES (2, 2);",
    )
    .await;
    let t = read_topic(&format!("{name}.public.t"), 3, Duration::from_secs(60));
    assert_eq!(t.len(), 3);
    assert_eq!(
        payload(t[0].value.as_ref().unwrap())["after"],
        json!({"id": 1, "a": "before alter"})
    );
    assert_eq!(
        payload(t[1].value.as_ref().unwrap())["after"],
        json!({"id": 2, "a": "after alter", "b": 8})
    );
    assert_eq!(
        payload(t[2].value.as_ref().unwrap())["after"],
        json!({"id": 1, "a": "x", "b": 7})
    );

    // No primary key, REPLICA IDENTITY USING INDEX: the index columns are the key.
    let bi = read_topic(
        &format!("{name}.public.by_index"),
        4,
        Duration::from_secs(60),
    );
    assert_eq!(bi.len(), 4);
    for m in &bi {
        assert_eq!(m.key.as_ref().map(payload), Some(&json!({"code": "k1"})));
    }
    let d = payload(bi[2].value.as_ref().unwrap());
    assert_eq!(d["op"], "d");
    assert_eq!(
        d["before"],
        json!({"code": "k1", "v": null}),
        "USING INDEX: index columns in before"
    );

    // REPLICA IDENTITY NOTHING: inserts are captured (PostgreSQL itself refuses updates and
    // deletes of such a table while a publication publishes them).
    let n = read_topic(
        &format!("{name}.public.nothing"),
        2,
        Duration::from_secs(60),
    );
    let c = payload(n[1].value.as_ref().unwrap());
    assert_eq!(c["op"], "c");
    assert_eq!(c["after"], json!({"id": 2, "v": 2}));
    assert_eq!(
        n[1].key.as_ref().map(payload),
        Some(&json!({"id": 2})),
        "the key is the primary key"
    );
    assert!(daemon.stop().success());

    let (status, out, _) =
        daemon.run_command(&["offsets", "show", "--config", "config/sluice.toml", &name]);
    assert!(status.success());
    assert!(
        out.starts_with(&format!("{name}\tpostgres resume_lsn=")),
        "{out}"
    );
    assert!(out.contains("snapshot=done"), "{out}");
}
