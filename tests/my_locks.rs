//! MySQL snapshot without the RELOAD privilege: the global read lock is refused, the captured
//! tables are locked for the whole read instead (and the log says so), and the snapshot plus
//! streaming still replay to the table. Heartbeats are published and carry the position.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::mysql::*;
use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_falls_back_to_table_locks_without_reload() {
    let mut db = MyDb::new("mylock").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))")
        .await;
    db.exec("INSERT INTO t VALUES (1, 'a'), (2, 'b')").await;
    let user = unique("lk");
    db.exec(&format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"))
        .await;
    db.exec(&format!(
        "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'%'"
    ))
    .await;
    db.exec(&format!(
        "GRANT SELECT, LOCK TABLES ON `{}`.* TO '{user}'@'%'",
        db.name
    ))
    .await;
    let url = my_base().replace("sluice:sluice", &format!("{user}:pw"));
    let name = unique("mylock");
    let mut daemon = Daemon::new(
        "",
        &[(
            "c.toml",
            my_connector(
                &name,
                &name,
                &url,
                &[format!("{}.t", db.name)],
                server_id(),
                "heartbeat_interval_ms = 300\n[format]\nschemas = false",
            ),
        )],
    );
    daemon.start();
    let topic = format!("{name}.{}.t", db.name);
    assert_eq!(
        read_topic(&topic, 2, Duration::from_secs(60)).len(),
        2,
        "logs:\n{}",
        daemon.logs()
    );
    db.exec("INSERT INTO t VALUES (3, 'c')").await;
    db.exec("UPDATE t SET v = 'z' WHERE id = 1").await;
    let expected: BTreeMap<i64, Value> = [(1, "z"), (2, "b"), (3, "c")]
        .into_iter()
        .map(|(id, v)| (id, json!({"id": id, "v": v})))
        .collect();
    let msgs = read_until_state(&topic, &expected, Duration::from_secs(60)).await;
    assert!(replay(&msgs, "id") == expected, "logs:\n{}", daemon.logs());
    let logs = daemon.logs();
    assert!(logs.contains("the global read lock was refused"), "{logs}");
    // Heartbeats: key {serverName}, value {ts_ms}.
    let beats = read_raw(
        &format!("__debezium-heartbeat.{name}"),
        2,
        Duration::from_secs(30),
    );
    assert!(beats.len() >= 2, "heartbeats: {}", beats.len());
    let key: Value = serde_json::from_slice(beats[0].key.as_ref().unwrap()).unwrap();
    assert_eq!(payload(&key)["serverName"], name.as_str());
    let value: Value = serde_json::from_slice(beats[0].value.as_ref().unwrap()).unwrap();
    assert!(payload(&value)["ts_ms"].as_i64().unwrap() > 1_600_000_000_000);
    assert!(daemon.stop().success());
    let offset = daemon.offset(&name).unwrap();
    assert_eq!(offset["position"]["kind"], "mysql");
    assert_eq!(
        offset["position"]["events"], 0,
        "idle: a transaction boundary: {offset}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_catalog_session_is_reopened_and_booleans_stay_booleans() {
    let mut db = MyDb::new("mycat").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, flag BOOLEAN)")
        .await;
    let user = unique("ct");
    db.exec(&format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"))
        .await;
    db.exec(&format!("GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%'"))
        .await;
    let url = my_base().replace("sluice:sluice", &format!("{user}:pw"));
    let name = unique("mycat");
    let mut daemon = Daemon::new(
        "",
        &[(
            "c.toml",
            my_connector(
                &name,
                &name,
                &url,
                &[format!("{}.t", db.name)],
                server_id(),
                // Booleans come from the catalog (the binlog says TINYINT).
                "[format]\nschemas = false\n[types]\ntinyint1_as_boolean = true",
            ),
        )],
    );
    daemon.start();
    db.exec("INSERT INTO t VALUES (1, TRUE)").await;
    let topic = format!("{name}.{}.t", db.name);
    assert_eq!(
        read_topic(&topic, 1, Duration::from_secs(60)).len(),
        1,
        "logs:\n{}",
        daemon.logs()
    );
    // The server drops the connector's idle sessions (as wait_timeout would); the binlog
    // session (`Binlog Dump`) stays.
    let idle: Vec<u64> = db
        .rows(&format!("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{user}' AND COMMAND = 'Sleep'"))
        .await
        .into_iter()
        .map(|r| r.get(0).unwrap())
        .collect();
    assert!(!idle.is_empty(), "the connector keeps a catalog session");
    for id in idle {
        db.exec(&format!("KILL {id}")).await;
    }
    // A new table shape needs the catalog again.
    db.exec("ALTER TABLE t ADD COLUMN note VARCHAR(10)").await;
    db.exec("INSERT INTO t VALUES (2, TRUE, 'x')").await;
    let msgs = read_topic(&topic, 2, Duration::from_secs(60));
    assert_eq!(msgs.len(), 2, "logs:\n{}", daemon.logs());
    let after = &payload(msgs[1].value.as_ref().unwrap())["after"];
    assert_eq!(after["flag"], json!(true), "still a boolean: {after}");
    assert_eq!(after["note"], "x");
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn truncate_is_published_when_not_skipped() {
    let mut db = MyDb::new("mytrunc").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY)").await;
    let name = unique("mytrunc");
    let mut daemon = my_daemon(
        &name,
        &db,
        &["t"],
        "skipped_operations = []\n[format]\nschemas = false",
    );
    daemon.start();
    db.exec("INSERT INTO t VALUES (1), (2)").await;
    let topic = format!("{name}.{}.t", db.name);
    assert_eq!(
        read_topic(&topic, 2, Duration::from_secs(60)).len(),
        2,
        "logs:\n{}",
        daemon.logs()
    );
    db.exec("TRUNCATE TABLE t").await;
    let msgs = read_topic(&topic, 3, Duration::from_secs(60));
    assert_eq!(msgs.len(), 3, "logs:\n{}", daemon.logs());
    assert!(msgs[2].key.is_none(), "a truncate has no key");
    let v = payload(msgs[2].value.as_ref().unwrap());
    assert_eq!(v["op"], "t");
    assert_eq!(v["before"], Value::Null);
    assert_eq!(v["after"], Value::Null);
    assert_eq!(v["source"]["table"], "t");
    assert_eq!(v["source"]["connector"], "mariadb");
    assert!(daemon.stop().success());
}
