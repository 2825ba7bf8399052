//! MariaDB `CREATE TABLE ... SELECT`: one event group holding the DDL and the rows. The
//! schema-change record and the rows are positioned inside that group like any other
//! transaction: the connector keeps streaming, and a restart loses none of the group's rows.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::mysql::*;
use common::*;
use serde_json::{json, Value};

async fn copy_state(db: &mut MyDb) -> BTreeMap<i64, Value> {
    db.rows("SELECT id, v FROM copy ORDER BY id")
        .await
        .iter()
        .map(|r| {
            let id: i64 = r.get(0).unwrap();
            let v: String = r.get(1).unwrap();
            (id, json!({"id": id, "v": v}))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn create_table_select_is_streamed_and_survives_a_restart() {
    let mut db = MyDb::new("ctas").await;
    db.exec("CREATE TABLE src (id INT PRIMARY KEY, v VARCHAR(10) NOT NULL)")
        .await;
    // Enough rows that the group's rows span several offset commits.
    db.exec("INSERT INTO src SELECT seq, CONCAT('v', seq) FROM seq_1_to_5000")
        .await;
    let name = unique("ctas");
    let mut daemon = my_daemon(&name, &db, &["*"], "[format]\nschemas = false");
    daemon.start();
    let src_topic = format!("{name}.{}.src", db.name);
    assert_eq!(
        read_topic(&src_topic, 5000, Duration::from_secs(120)).len(),
        5000,
        "snapshot; logs:\n{}",
        daemon.logs()
    );
    db.exec("CREATE TABLE copy (PRIMARY KEY (id)) SELECT id, v FROM src")
        .await;
    db.exec("INSERT INTO copy VALUES (40000, 'd')").await;
    let topic = format!("{name}.{}.copy", db.name);
    let expected = copy_state(&mut db).await;
    assert_eq!(expected.len(), 5001);
    let msgs = read_until_state(&topic, &expected, Duration::from_secs(60)).await;
    assert_eq!(replay(&msgs, "id"), expected, "logs:\n{}", daemon.logs());
    // The schema-change record of the CREATE is on the prefix topic.
    let ddl = read_topic_until(&name, Duration::from_secs(30), |m| {
        m.iter().any(|m| {
            m.value.as_ref().is_some_and(|v| {
                v["ddl"]
                    .as_str()
                    .is_some_and(|d| d.to_ascii_uppercase().contains("CREATE TABLE `COPY`"))
            })
        })
    });
    assert!(!ddl.is_empty(), "no schema change for the CTAS");
    // The connector kept streaming: no "refusing to move connector back".
    let logs = daemon.logs();
    assert!(!logs.contains("refusing to move"), "{logs}");
    assert!(daemon.stop().success(), "{logs}");

    // After a restart from the committed position, later changes arrive and the group's rows
    // are still all there (none skipped, duplicates only repeat).
    daemon.start();
    db.exec("CREATE TABLE copy2 (PRIMARY KEY (id)) SELECT id, v FROM src WHERE id IN (2, 3)")
        .await;
    db.exec("UPDATE copy SET v = 'z' WHERE id = 1").await;
    let expected = copy_state(&mut db).await;
    let msgs = read_until_state(&topic, &expected, Duration::from_secs(60)).await;
    assert_eq!(replay(&msgs, "id"), expected, "logs:\n{}", daemon.logs());
    let copy2 = read_topic(
        &format!("{name}.{}.copy2", db.name),
        2,
        Duration::from_secs(60),
    );
    let ids: Vec<i64> = copy2
        .iter()
        .filter_map(|m| m.value.as_ref())
        .map(|v| v["after"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [2, 3], "logs:\n{}", daemon.logs());
    let logs = daemon.logs();
    assert!(!logs.contains("refusing to move"), "{logs}");
    assert!(daemon.stop().success(), "{logs}");
}
