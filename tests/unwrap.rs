//! `[unwrap]` (Debezium's `ExtractNewRecordState`) on PostgreSQL and MariaDB, snapshot and
//! stream, JSON with and without schema and Avro: the record value is the row state, deletes
//! follow `delete_tombstone_handling_mode`, metadata lands in `__` fields and headers;
//! `[changed_fields]` headers and `drop_fields_header_name` leave unchanged fields out.
//! Expected values written from Debezium's documentation of the transformation.

mod common;

use std::time::Duration;

use common::mysql::*;
use common::registry::{avro_format, decode_values, http_get_json, raw, Registry};
use common::*;
use serde_json::{json, Value};

const REWRITE: &str = r#"
[unwrap]
enabled = true
delete_tombstone_handling_mode = "rewrite"
add_fields = ["op", "table", "lsn", "source.ts_ms"]
add_headers = ["db", "op"]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn postgres_rewrite_mode_with_fields_and_headers_in_json_and_avro() {
    let registry = Registry::start().await;
    let db = TestDb::new("unwrap").await;
    db.exec(
        "CREATE TABLE items (id int PRIMARY KEY, note text);
         ALTER TABLE items REPLICA IDENTITY FULL;
         INSERT INTO items VALUES (1, 'first');",
    )
    .await;
    let json_name = unique("unwj");
    let avro_name = unique("unwa");
    let mut daemon = Daemon::new(
        "",
        &[
            (
                "j.toml",
                pg_connector(&json_name, &json_name, &db, &["public.items"], REWRITE)
                    + "[format]\nschemas = true\n",
            ),
            (
                "a.toml",
                pg_connector(&avro_name, &avro_name, &db, &["public.items"], REWRITE)
                    + &avro_format(&registry),
            ),
        ],
    );
    daemon.start();
    let topic = format!("{json_name}.public.items");
    let avro_topic = format!("{avro_name}.public.items");
    assert_eq!(
        read_topic(&topic, 1, Duration::from_secs(60)).len(),
        1,
        "logs:\n{}",
        daemon.logs()
    );
    db.exec(
        "INSERT INTO items VALUES (2, 'second');
         UPDATE items SET note = 'changed' WHERE id = 2;
         DELETE FROM items WHERE id = 1;
         TRUNCATE items;
         INSERT INTO items VALUES (3, 'third');",
    )
    .await;
    // r 1, c 2, u 2, d 1 (rewritten, no tombstone), no truncate record, c 3.
    let msgs = read_topic(&topic, 5, Duration::from_secs(60));
    let got: Vec<Value> = msgs
        .iter()
        .map(|m| {
            let mut v = payload(m.value.as_ref().expect("no tombstones in rewrite mode")).clone();
            let o = v.as_object_mut().unwrap();
            // Positions and times vary: their types are checked, the rest compared whole.
            let lsn = o.remove("__lsn").unwrap();
            let ts = o.remove("__source_ts_ms").unwrap();
            assert!(ts.as_i64().unwrap() > 1_700_000_000_000, "{ts}");
            if o["__op"] != "r" {
                assert!(lsn.as_i64().unwrap() > 0, "{lsn}");
            }
            v
        })
        .collect();
    let row = |id: i64, note: &str, op: &str, deleted: &str| json!({"id": id, "note": note, "__op": op, "__table": "items", "__deleted": deleted});
    assert_eq!(
        got,
        vec![
            row(1, "first", "r", "false"),
            row(2, "second", "c", "false"),
            row(2, "changed", "u", "false"),
            row(1, "first", "d", "true"),
            row(3, "third", "c", "false"),
        ],
        "logs:\n{}",
        daemon.logs()
    );
    // Keys stay the row's key; metadata headers as Connect's default converter writes them.
    assert_eq!(payload(msgs[3].key.as_ref().unwrap()), &json!({"id": 1}));
    assert_eq!(msgs[3].headers["__op"], json!("d"));
    assert_eq!(msgs[3].headers["__db"], json!(db.name));
    // The schema describes the flattened value.
    let schema = &msgs[0].value.as_ref().unwrap()["schema"];
    assert_eq!(schema["name"], format!("{json_name}.public.items.Value"));
    let fields: Vec<(&str, &str)> = schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["field"].as_str().unwrap(), f["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        [
            ("id", "int32"),
            ("note", "string"),
            ("__op", "string"),
            ("__table", "string"),
            ("__lsn", "int64"),
            ("__source_ts_ms", "int64"),
            ("__deleted", "string"),
        ]
    );

    // Avro: the registered value schema is the flattened record; fastavro reads the rows.
    let decoded = decode_values(&registry, &raw(&avro_topic, 5).await).await;
    let got: Vec<Value> = decoded
        .iter()
        .map(|(_, v)| {
            json!({"id": v["id"], "note": v["note"], "__op": v["__op"], "__table": v["__table"], "__deleted": v["__deleted"]})
        })
        .collect();
    assert_eq!(
        got,
        vec![
            row(1, "first", "r", "false"),
            row(2, "second", "c", "false"),
            row(2, "changed", "u", "false"),
            row(1, "first", "d", "true"),
            row(3, "third", "c", "false"),
        ]
    );
    let ids = registry.versions(&format!("{avro_topic}-value"));
    assert_eq!(ids.len(), 1);
    let schema = http_get_json(&format!("{}/schemas/ids/{}", registry.url, ids[0])).await;
    let schema: Value = serde_json::from_str(schema["schema"].as_str().unwrap()).unwrap();
    assert_eq!(schema["name"], "Value");
    assert_eq!(schema["namespace"], format!("{avro_name}.public.items"));
    assert!(decoded[4].1["__lsn"].as_i64().unwrap() > 0);
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_default_tombstone_mode_and_drop_mode() {
    let mut db = MyDb::new("myunwrap").await;
    db.exec(
        "CREATE TABLE items (id INT PRIMARY KEY, note TEXT); INSERT INTO items VALUES (0, 'zero')",
    )
    .await;
    let tomb = unique("myunwt");
    let drop = unique("myunwd");
    let table = format!("{}.items", db.name);
    let mut daemon = Daemon::new(
        "",
        &[
            (
                "t.toml",
                my_connector(
                    &tomb,
                    &tomb,
                    &db.base,
                    std::slice::from_ref(&table),
                    server_id(),
                    "[unwrap]\nenabled = true\nadd_fields = [\"op\", \"file\", \"pos\", \"lsn\"]\n",
                ),
            ),
            (
                "d.toml",
                my_connector(
                    &drop,
                    &drop,
                    &db.base,
                    std::slice::from_ref(&table),
                    server_id(),
                    "[unwrap]\nenabled = true\ndelete_tombstone_handling_mode = \"drop\"\n",
                ),
            ),
        ],
    );
    daemon.start();
    for name in [&tomb, &drop] {
        let snapshot = read_topic(&format!("{name}.{table}"), 1, Duration::from_secs(60));
        assert_eq!(snapshot.len(), 1, "logs:\n{}", daemon.logs());
        assert_eq!(payload(snapshot[0].value.as_ref().unwrap())["id"], 0);
    }
    db.exec(
        "INSERT INTO items VALUES (1, 'one');
         DELETE FROM items WHERE id = 1;
         INSERT INTO items VALUES (2, 'two')",
    )
    .await;
    // tombstone mode: r 0, c 1, the tombstone of 1, c 2 (the delete itself goes).
    let mut msgs = read_topic(&format!("{tomb}.{table}"), 4, Duration::from_secs(60));
    assert_eq!(msgs.len(), 4, "logs:\n{}", daemon.logs());
    assert_eq!(payload(msgs[0].value.as_ref().unwrap())["__op"], "r");
    msgs.remove(0);
    let v = payload(msgs[0].value.as_ref().unwrap());
    assert_eq!(v["id"], 1);
    assert_eq!(v["note"], "one");
    assert_eq!(v["__op"], "c");
    assert!(
        v["__file"].as_str().unwrap().starts_with("mariadb-bin."),
        "{v}"
    );
    assert!(v["__pos"].as_i64().unwrap() > 0, "{v}");
    // A field MySQL's source block does not have is added as null.
    assert_eq!(v["__lsn"], Value::Null);
    assert!(v.get("__deleted").is_none());
    assert!(msgs[1].value.is_none());
    assert_eq!(payload(msgs[1].key.as_ref().unwrap()), &json!({"id": 1}));
    assert_eq!(payload(msgs[2].value.as_ref().unwrap())["id"], 2);
    // drop mode: only the rows (no delete, no tombstone).
    let msgs = read_topic(&format!("{drop}.{table}"), 4, Duration::from_secs(15));
    let values: Vec<Value> = msgs
        .iter()
        .map(|m| payload(m.value.as_ref().unwrap()).clone())
        .collect();
    assert_eq!(
        values,
        vec![
            json!({"id": 0, "note": "zero"}),
            json!({"id": 1, "note": "one"}),
            json!({"id": 2, "note": "two"})
        ]
    );
    assert!(daemon.stop().success());
}

#[test]
fn validate_names_a_bad_added_field() {
    let text = validate_bad_file(
        "",
        "[unwrap]\nenabled = true\nadd_fields = [\"op\", \"after.id\"]",
    );
    assert!(text.contains("unwrap.add_fields"), "{text}");
    assert!(
        text.contains("\"after.id\" is not a change-event field"),
        "{text}"
    );
}

const DROP_UNCHANGED: &str = r#"
[changed_fields]
header_changed_name = "Changed"
header_unchanged_name = "Unchanged"
[unwrap]
enabled = true
drop_fields_header_name = "Unchanged"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn unchanged_fields_listed_in_a_header_and_dropped_from_updates() {
    let registry = Registry::start().await;
    let db = TestDb::new("unwdrop").await;
    db.exec(
        "CREATE TABLE items (id int PRIMARY KEY, note text, qty int);
         ALTER TABLE items REPLICA IDENTITY FULL;
         INSERT INTO items VALUES (1, 'a', 5);",
    )
    .await;
    let json_name = unique("unwdj");
    let avro_name = unique("unwda");
    let mut daemon = Daemon::new(
        "",
        &[
            (
                "j.toml",
                pg_connector(
                    &json_name,
                    &json_name,
                    &db,
                    &["public.items"],
                    DROP_UNCHANGED,
                ) + "[format]\nschemas = true\n",
            ),
            (
                "a.toml",
                pg_connector(
                    &avro_name,
                    &avro_name,
                    &db,
                    &["public.items"],
                    DROP_UNCHANGED,
                ) + &avro_format(&registry),
            ),
        ],
    );
    daemon.start();
    let topic = format!("{json_name}.public.items");
    assert_eq!(
        read_topic(&topic, 1, Duration::from_secs(60)).len(),
        1,
        "logs:\n{}",
        daemon.logs()
    );
    db.exec("UPDATE items SET qty = 6 WHERE id = 1").await;
    let msgs = read_topic(&topic, 2, Duration::from_secs(60));
    // The snapshot row is whole; the update carries the key and what changed.
    assert_eq!(
        payload(msgs[0].value.as_ref().unwrap()),
        &json!({"id": 1, "note": "a", "qty": 5})
    );
    let update = &msgs[1];
    assert_eq!(
        payload(update.value.as_ref().unwrap()),
        &json!({"id": 1, "qty": 6})
    );
    assert_eq!(update.headers["Changed"], json!(["qty"]));
    assert_eq!(update.headers["Unchanged"], json!(["id", "note"]));
    let fields: Vec<&str> = update.value.as_ref().unwrap()["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["id", "qty"]);
    // Avro: the update is written with a schema without `note`, which fastavro reads.
    let decoded = decode_values(
        &registry,
        &raw(&format!("{avro_name}.public.items"), 2).await,
    )
    .await;
    assert_eq!(decoded[0].1, json!({"id": 1, "note": "a", "qty": 5}));
    assert_eq!(decoded[1].1, json!({"id": 1, "qty": 6}));
    assert_ne!(decoded[0].0, decoded[1].0, "two schema ids");
    assert!(daemon.stop().success());
}

/// `drop_fields_header_name` with Avro registers one value schema per set of unchanged
/// columns: with N optional columns up to 2^N versions of the subject (the review: a
/// registry flooded by one table). A table registers at most 32; updates with other sets
/// are published whole, and every record still decodes to the row's values.
#[tokio::test(flavor = "multi_thread")]
async fn schema_variants_of_dropped_fields_are_bounded_per_table() {
    let registry = Registry::start().await;
    let db = TestDb::new("unwvar").await;
    db.exec(
        "CREATE TABLE w (id int PRIMARY KEY, a int, b int, c int, d int, e int, f int, g int);
         ALTER TABLE w REPLICA IDENTITY FULL;
         INSERT INTO w VALUES (1, 0, 0, 0, 0, 0, 0, 0);",
    )
    .await;
    let name = unique("unwvar");
    let mut daemon = Daemon::new(
        "",
        &[(
            "a.toml",
            pg_connector(&name, &name, &db, &["public.w"], DROP_UNCHANGED)
                + &avro_format(&registry),
        )],
    );
    daemon.start();
    let topic = format!("{name}.public.w");
    assert_eq!(raw(&topic, 1).await.len(), 1, "logs:\n{}", daemon.logs());
    // 60 updates, each changing another subset of the 7 columns (mask 1..=60): 60 sets
    // of unchanged columns.
    let cols = ["a", "b", "c", "d", "e", "f", "g"];
    let mut expected = vec![0i64; 7];
    let mut wanted = Vec::new();
    for mask in 1..=60u32 {
        let sets: Vec<String> = (0..7)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| {
                expected[i] += 1;
                format!("{} = {}", cols[i], expected[i])
            })
            .collect();
        db.exec(&format!("UPDATE w SET {} WHERE id = 1", sets.join(", ")))
            .await;
        wanted.push(expected.clone());
    }
    let msgs = raw(&topic, 61).await;
    let decoded = decode_values(&registry, &msgs).await;
    assert_eq!(decoded.len(), 61);
    let versions = registry.versions(&format!("{topic}-value"));
    assert!(
        versions.len() <= 33,
        "{} value schema versions for one table",
        versions.len()
    );
    assert!(
        versions.len() >= 20,
        "variants are still registered: {versions:?}"
    );
    // Every update carries its changed columns with their new values; past the bound the
    // unchanged ones are there too (whole), never wrong.
    for (i, (_, value)) in decoded[1..].iter().enumerate() {
        let mask = i as u32 + 1;
        for (c, col) in cols.iter().enumerate() {
            match value.get(col) {
                Some(v) => assert_eq!(v, &json!(wanted[i][c]), "update {mask}: {value}"),
                None => assert!(mask & (1 << c) == 0, "update {mask} lost {col}: {value}"),
            }
        }
    }
    let whole = decoded[1..]
        .iter()
        .filter(|(_, v)| v.as_object().unwrap().len() == 8)
        .count();
    assert!(
        whole >= 20,
        "updates past the bound are published whole: {whole}"
    );
    assert!(daemon.stop().success());
}
