//! The schema-change topic as Debezium's MySQL connector fills it: each DDL statement's
//! `tableChanges` describe the captured tables it created, altered or dropped (columns with
//! Debezium's JDBC type codes, lengths, scales, nullability, defaults, the primary key),
//! and `include_schema_changes = false` publishes none.

mod common;

use std::time::Duration;

use common::mysql::*;
use common::*;
use serde_json::{json, Value};

/// The schema-change values of a topic whose DDL contains `marker`.
fn change_with(topic: &str, marker: &str) -> Value {
    let msgs = read_topic_until(topic, Duration::from_secs(60), |m| {
        m.iter().any(|m| {
            m.value.as_ref().is_some_and(|v| {
                payload(v)["ddl"]
                    .as_str()
                    .is_some_and(|d| d.contains(marker))
            })
        })
    });
    msgs.iter()
        .filter_map(|m| m.value.as_ref())
        .map(|v| payload(v).clone())
        .find(|p| p["ddl"].as_str().is_some_and(|d| d.contains(marker)))
        .unwrap_or_else(|| panic!("no schema change with {marker} in {topic}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn table_changes_describe_created_altered_and_dropped_tables() {
    let mut db = MyDb::new("myddl").await;
    db.exec("CREATE TABLE seed (id INT PRIMARY KEY)").await;
    let name = unique("myddl");
    let mut daemon = my_daemon(&name, &db, &["*"], "");
    daemon.start();
    wait_state_named(&daemon, &name).await;

    db.exec(
        "CREATE TABLE orders (id INT UNSIGNED NOT NULL AUTO_INCREMENT, code VARCHAR(16) CHARACTER SET latin1 NOT NULL DEFAULT 'new' COMMENT 'the code',
           amount DECIMAL(7,2), at DATETIME(3), kind ENUM('a','b'), flag TINYINT(1) DEFAULT 1, site INT NOT NULL, PRIMARY KEY (site, id), KEY (id)) COMMENT 'orders table'",
    )
    .await;
    let create = change_with(&name, "CREATE TABLE orders");
    let changes = create["tableChanges"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{create}");
    let c = &changes[0];
    assert_eq!(c["type"], "CREATE");
    assert_eq!(c["id"], format!("\"{}\".\"orders\"", db.name));
    let t = &c["table"];
    assert_eq!(t["primaryKeyColumnNames"], json!(["site", "id"]));
    assert_eq!(t["comment"], "orders table");
    let col = |n: &str| -> Value {
        t["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("no column {n} in {t}"))
    };
    assert_eq!(
        col("id"),
        json!({"name": "id", "jdbcType": 4, "nativeType": null, "typeName": "INT UNSIGNED", "typeExpression": "INT UNSIGNED",
               "charsetName": null, "length": 10, "scale": null, "position": 1, "optional": false, "autoIncremented": true,
               "generated": true, "comment": null, "hasDefaultValue": false, "defaultValueExpression": null, "enumValues": null})
    );
    assert_eq!(
        col("code"),
        json!({"name": "code", "jdbcType": 12, "nativeType": null, "typeName": "VARCHAR", "typeExpression": "VARCHAR",
               "charsetName": "latin1", "length": 16, "scale": null, "position": 2, "optional": false, "autoIncremented": false,
               "generated": false, "comment": "the code", "hasDefaultValue": true, "defaultValueExpression": "new", "enumValues": null})
    );
    assert_eq!(
        (
            col("amount")["jdbcType"].clone(),
            col("amount")["length"].clone(),
            col("amount")["scale"].clone()
        ),
        (json!(3), json!(7), json!(2))
    );
    assert_eq!(
        (col("at")["jdbcType"].clone(), col("at")["length"].clone()),
        (json!(93), json!(3))
    );
    assert_eq!(col("kind")["enumValues"], json!(["a", "b"]));
    assert_eq!(col("kind")["jdbcType"], 1);
    assert_eq!(
        (
            col("flag")["jdbcType"].clone(),
            col("flag")["defaultValueExpression"].clone()
        ),
        (json!(5), json!("1"))
    );
    assert_eq!(col("site")["optional"], false);

    db.exec("ALTER TABLE orders ADD COLUMN note TEXT, DROP COLUMN flag")
        .await;
    let alter = change_with(&name, "ADD COLUMN note");
    let a = &alter["tableChanges"][0];
    assert_eq!(a["type"], "ALTER");
    let names: Vec<&str> = a["table"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["id", "code", "amount", "at", "kind", "site", "note"]
    );

    db.exec("RENAME TABLE orders TO orders_old").await;
    let rename = change_with(&name, "RENAME TABLE");
    assert_eq!(rename["tableChanges"][0]["type"], "ALTER");
    assert_eq!(
        rename["tableChanges"][0]["id"],
        format!("\"{}\".\"orders_old\"", db.name)
    );

    db.exec("DROP TABLE orders_old, seed").await;
    let drop = change_with(&name, "DROP TABLE");
    let d = drop["tableChanges"].as_array().unwrap();
    assert_eq!(d.len(), 2, "{drop}");
    assert_eq!(d[0]["type"], "DROP");
    // The last definition read: the renamed table's columns.
    assert_eq!(
        d[0]["table"]["columns"].as_array().unwrap().len(),
        7,
        "{drop}"
    );
    assert_eq!(d[1]["id"], format!("\"{}\".\"seed\"", db.name));

    // With schemas, the value declares Debezium's Change structure.
    let with_schema = read_topic_until(&name, Duration::from_secs(5), |_| false);
    let v = with_schema.last().unwrap().value.as_ref().unwrap();
    let fields = v["schema"]["fields"].as_array().unwrap();
    let tc = fields
        .iter()
        .find(|f| f["field"] == "tableChanges")
        .unwrap();
    assert_eq!(tc["items"]["name"], "io.debezium.connector.schema.Change");
    assert!(daemon.stop().success());

    // include_schema_changes = false: none published.
    let mut db2 = MyDb::new("myddloff").await;
    db2.exec("CREATE TABLE t (id INT PRIMARY KEY)").await;
    let off = unique("myddloff");
    let mut quiet = my_daemon(&off, &db2, &["*"], "include_schema_changes = false");
    quiet.start();
    wait_state_named(&quiet, &off).await;
    db2.exec("ALTER TABLE t ADD COLUMN c INT").await;
    db2.exec("INSERT INTO t VALUES (1, 2)").await;
    let rows = read_topic(&format!("{off}.{}.t", db2.name), 1, Duration::from_secs(60));
    assert_eq!(rows.len(), 1, "{}", quiet.logs());
    assert!(
        read_topic_until(&off, Duration::from_secs(2), |_| false).is_empty(),
        "no schema-change records"
    );
    assert!(quiet.stop().success());
}

/// Waits until the daemon's log says the connector streams.
async fn wait_state_named(daemon: &Daemon, name: &str) {
    for _ in 0..300 {
        if daemon.logs().contains("binlog streaming started") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} never streamed:\n{}", daemon.logs());
}
