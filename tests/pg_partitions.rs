//! Partitioned tables and tables outside the capture: no change is dropped without a word.
//!
//! - A partitioned table named in `postgres.tables` is captured under its own (root) topic,
//!   in the snapshot and in the stream, whichever partition a row lives in (Sluice creates
//!   the publication with `publish_via_partition_root`).
//! - A publication that would publish the partitions' changes under their own names is
//!   refused, with the fix.
//! - Changes of a table that is in the publication but not captured are counted and logged.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

async fn parts_state(db: &TestDb) -> BTreeMap<i64, Value> {
    db.client
        .query("SELECT id, region, v FROM parts ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let id: i32 = r.get(0);
            let region: String = r.get(1);
            let v: i32 = r.get(2);
            (id as i64, json!({"id": id, "region": region, "v": v}))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partitioned_table_is_captured_under_its_own_topic() {
    let db = TestDb::new("parts").await;
    db.exec(
        "CREATE TABLE parts (id int NOT NULL, region text NOT NULL, v int NOT NULL,
           PRIMARY KEY (id, region)) PARTITION BY LIST (region);
         CREATE TABLE parts_eu PARTITION OF parts FOR VALUES IN ('eu');
         CREATE TABLE parts_us PARTITION OF parts FOR VALUES IN ('us');
         INSERT INTO parts VALUES (1, 'eu', 10), (2, 'us', 20);",
    )
    .await;
    let name = unique("parts");
    let mut daemon = Daemon::single(&name, &db, &["public.parts"], "[format]\nschemas = false");
    daemon.start();
    let topic = format!("{name}.public.parts");
    // The snapshot: both rows, read through the root.
    let snap = read_topic(&topic, 2, Duration::from_secs(60));
    assert_eq!(snap.len(), 2, "snapshot records; logs:\n{}", daemon.logs());
    // Streamed changes in both partitions, an update inside one, and an update that moves a
    // row to the other partition (decoded as a delete and an insert).
    db.exec(
        "INSERT INTO parts VALUES (3, 'eu', 30), (4, 'us', 40);
         UPDATE parts SET v = 21 WHERE id = 2;
         UPDATE parts SET region = 'us' WHERE id = 1;
         DELETE FROM parts WHERE id = 4;",
    )
    .await;
    let expected = parts_state(&db).await;
    let msgs = read_until_state(&topic, &expected, Duration::from_secs(60)).await;
    assert_eq!(replay(&msgs, "id"), expected, "logs:\n{}", daemon.logs());
    let ops: Vec<&str> = msgs
        .iter()
        .filter_map(|m| m.value.as_ref())
        .map(|v| v["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops[..2], ["r", "r"]);
    assert!(
        ops.contains(&"c") && ops.contains(&"u") && ops.contains(&"d"),
        "{ops:?}"
    );
    for m in msgs.iter().filter_map(|m| m.value.as_ref()) {
        assert_eq!(m["source"]["table"], "parts", "{m}");
    }
    // Nothing went to the partitions' own topics.
    assert!(!topics()
        .iter()
        .any(|t| t.starts_with(&format!("{name}.public.parts_"))));
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_publication_without_partition_root_is_refused_with_the_fix() {
    let db = TestDb::new("partpub").await;
    let name = unique("partpub");
    db.exec(&format!(
        "CREATE TABLE parts (id int PRIMARY KEY) PARTITION BY RANGE (id);
         CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM (0) TO (100);
         CREATE PUBLICATION {name} FOR TABLE parts;"
    ))
    .await;
    let daemon = Daemon::single(&name, &db, &["public.parts"], "");
    let (status, stdout, _) = daemon.run_command(&["validate"]);
    assert!(!status.success(), "{stdout}");
    assert!(
        stdout.contains("publish_via_partition_root is false")
            && stdout.contains(&format!(
                "ALTER PUBLICATION {name} SET (publish_via_partition_root = true)"
            )),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_of_an_uncaptured_table_in_the_publication_are_counted_and_logged() {
    let db = TestDb::new("uncap").await;
    let name = unique("uncap");
    db.exec(&format!(
        "CREATE TABLE captured (id int PRIMARY KEY);
         CREATE TABLE other (id int PRIMARY KEY);
         CREATE PUBLICATION {name} FOR TABLE captured, other;"
    ))
    .await;
    let port = free_port();
    let mut daemon = Daemon::single(
        &name,
        &db,
        &["public.captured"],
        "[format]\nschemas = false",
    );
    // A publication Sluice does not manage (it would otherwise drop `other` from it).
    let file = daemon.dir.join("connectors/c.toml");
    let text = std::fs::read_to_string(&file).unwrap() + "publication_autocreate = \"disabled\"\n";
    std::fs::write(&file, text).unwrap();
    daemon.append_daemon_config(&format!("[api]\nlisten = \"127.0.0.1:{port}\"\n"));
    daemon.start();
    let api = format!("http://127.0.0.1:{port}");
    wait_state(&api, None, &name, "streaming", Duration::from_secs(60)).await;
    db.exec("INSERT INTO other VALUES (1), (2), (3); INSERT INTO captured VALUES (1);")
        .await;
    let msgs = read_topic(
        &format!("{name}.public.captured"),
        1,
        Duration::from_secs(60),
    );
    assert_eq!(msgs.len(), 1);
    let (_, metrics) = http("GET", &format!("{api}/metrics"), None).await;
    let line = format!(
        "sluice_events_not_captured_total{{connector=\"{name}\",table=\"public.other\"}} 3"
    );
    assert!(metrics.contains(&line), "{line} not in:\n{metrics}");
    let logs = daemon.logs();
    assert_eq!(
        logs.matches("does not capture are not published").count(),
        1,
        "logged once per table:\n{logs}"
    );
    assert!(logs.contains("public.other"), "{logs}");
    assert!(daemon.stop().success());
}

/// A partitioned table created (and added to a publication without
/// `publish_via_partition_root`) while the connector runs: its changes arrive under the
/// partitions' names. They went to one topic per partition (a snapshot and `public.*`
/// name the partitioned table) until a restart refused the publication; now they are
/// published as the partitioned table's.
#[tokio::test(flavor = "multi_thread")]
async fn a_partitioned_table_added_at_run_time_without_root_publishing_loses_nothing() {
    let db = TestDb::new("partlate").await;
    let name = unique("partlate");
    db.exec(&format!(
        "CREATE TABLE plain (id int PRIMARY KEY);
         CREATE PUBLICATION {name} FOR TABLE plain;"
    ))
    .await;
    // `public.*` names the partitioned table created later (and plain tables).
    let mut daemon = Daemon::single(&name, &db, &["public.*"], "[format]\nschemas = false");
    let file = daemon.dir.join("connectors/c.toml");
    let text = std::fs::read_to_string(&file).unwrap() + "publication_autocreate = \"disabled\"\n";
    std::fs::write(&file, text).unwrap();
    let port = free_port();
    daemon.append_daemon_config(&format!("[api]\nlisten = \"127.0.0.1:{port}\"\n"));
    daemon.start();
    let api = format!("http://127.0.0.1:{port}");
    wait_state(&api, None, &name, "streaming", Duration::from_secs(60)).await;
    db.exec(&format!(
        "CREATE TABLE parts (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
         CREATE TABLE parts_low PARTITION OF parts FOR VALUES FROM (0) TO (100);
         CREATE TABLE parts_high PARTITION OF parts FOR VALUES FROM (100) TO (200);
         ALTER PUBLICATION {name} ADD TABLE parts;"
    ))
    .await;
    db.exec(
        "INSERT INTO parts VALUES (1, 'a'), (150, 'b'); UPDATE parts SET v = 'c' WHERE id = 1;",
    )
    .await;
    let msgs = read_topic(&format!("{name}.public.parts"), 3, Duration::from_secs(60));
    let got: Vec<(String, i64, String)> = msgs
        .iter()
        .map(|m| {
            let v = m.value.as_ref().unwrap();
            (
                v["op"].as_str().unwrap().to_string(),
                v["after"]["id"].as_i64().unwrap(),
                v["after"]["v"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("c".to_string(), 1, "a".to_string()),
            ("c".to_string(), 150, "b".to_string()),
            ("u".to_string(), 1, "c".to_string())
        ],
        "logs:\n{}",
        daemon.logs()
    );
    // Published as the table's, with the fix named once per partition.
    assert_eq!(msgs[0].value.as_ref().unwrap()["source"]["table"], "parts");
    let logs = daemon.logs();
    assert!(logs.contains("publish_via_partition_root = true"), "{logs}");
    assert!(
        !logs.contains("does not capture are not published"),
        "{logs}"
    );
    assert!(daemon.stop().success());
}
