//! Incremental snapshots on MariaDB, started by signals (a captured signal table, and the
//! admin API) while a writer changes the table: replaying the topic equals the table; bad
//! signals are logged and skipped; pause survives a kill -9 and the snapshot does not start
//! over; an interrupted initial snapshot resumes where it stopped.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::mysql::*;
use common::*;
use mysql_async::prelude::Queryable;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

fn state_of(rows: Vec<mysql_async::Row>) -> BTreeMap<i64, Value> {
    rows.into_iter()
        .map(|r| {
            let (id, v): (i64, i64) = mysql_async::from_row(r);
            (id, json!({"id": id, "v": v}))
        })
        .collect()
}

fn reads(msgs: &[Msg]) -> Vec<&Value> {
    msgs.iter()
        .filter_map(|m| m.value.as_ref())
        .map(payload)
        .filter(|p| p["op"] == "r")
        .collect()
}

async fn signal(base: &str, name: &str, body: Value) {
    let (status, text) = http_json(
        "POST",
        &format!("{base}/connectors/{name}/signals"),
        None,
        &body,
    )
    .await;
    assert_eq!(status, 202, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn signal_table_snapshot_under_writes_then_api_and_bad_signals() {
    let mut db = MyDb::new("myincr").await;
    db.exec("CREATE TABLE inc (id INT PRIMARY KEY, v INT NOT NULL)")
        .await;
    db.exec("CREATE TABLE other (id INT PRIMARY KEY, v INT NOT NULL)")
        .await;
    db.exec("CREATE TABLE sig (id VARCHAR(64) PRIMARY KEY, type VARCHAR(32) NOT NULL, data TEXT)")
        .await;
    let values: Vec<String> = (1..=3000).map(|i| format!("({i}, 0)")).collect();
    db.exec(&format!("INSERT INTO inc VALUES {}", values.join(",")))
        .await;
    let values: Vec<String> = (1..=250).map(|i| format!("({i}, 7)")).collect();
    db.exec(&format!("INSERT INTO other VALUES {}", values.join(",")))
        .await;
    let name = unique("myincr");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut daemon = my_daemon(
        &name,
        &db,
        &["inc", "other", "sig"],
        &format!(
            "[format]\nschemas = false\n[snapshot]\nmode = \"no_data\"\nchunk_size = 100\n[signals]\ntable = \"{}.sig\"\nallow_filters = true",
            db.name
        ),
    );
    daemon.append_daemon_config(&format!("[api]\nlisten = \"{listen}\"\n"));
    daemon.start();
    let base = format!("http://{listen}");
    wait_state(&base, None, &name, "streaming", Duration::from_secs(60)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut client = db.connect().await;
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            let mut next_id = 3001;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let a = rng.random_range(1..next_id);
                let sql = match rng.random_range(0..4) {
                    0 => format!("DELETE FROM inc WHERE id = {a}"),
                    1 => {
                        next_id += 1;
                        format!("INSERT INTO inc VALUES ({}, 1)", next_id - 1)
                    }
                    _ => format!("UPDATE inc SET v = v + 1 WHERE id = {a}"),
                };
                client.query_drop(sql).await.unwrap();
                n += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let db_name = db.name.clone();
    db.exec(&format!(
        "INSERT INTO sig VALUES ('bad-1', 'explode', NULL);
         INSERT INTO sig VALUES ('bad-2', 'execute-snapshot', '{{not json');
         INSERT INTO sig VALUES ('bad-3', 'execute-snapshot', '{{\"data-collections\": [\"{db_name}.nope\"]}}');
         INSERT INTO sig VALUES ('s-1', 'execute-snapshot', '{{\"data-collections\": [\"{db_name}.inc\"], \"type\": \"incremental\"}}')"
    ))
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let changes = writer.await.unwrap();
    assert!(changes > 100, "writer made only {changes} changes");

    let expected = state_of(db.rows("SELECT id, v FROM inc ORDER BY id").await);
    let topic = format!("{name}.{db_name}.inc");
    let msgs = read_until_state(&topic, &expected, Duration::from_secs(90)).await;
    assert_eq!(
        replay(&msgs, "id"),
        expected,
        "replay of {topic}; logs:\n{}",
        daemon.logs()
    );
    let r = reads(&msgs);
    assert!(
        r.len() > 2000 && r.len() <= 3400,
        "{} read records; logs:\n{}",
        r.len(),
        daemon.logs()
    );
    assert!(r.iter().all(|p| p["source"]["snapshot"] == "incremental"));
    let logs = daemon.logs();
    assert!(logs.contains("explode"), "{logs}");
    assert!(logs.contains("not JSON"), "{logs}");
    assert!(logs.contains(&format!("{db_name}.nope")), "{logs}");

    // A condition that is SQL, not a condition (the review's stacked statement: it made
    // Sluice's session take the global read lock): refused, nothing run, writes go on.
    signal(
        &base,
        &name,
        json!({"id": "api-evil", "type": "execute-snapshot", "data": {
            "data-collections": [format!("{db_name}.other")],
            "additional-conditions": [{"data-collection": format!("{db_name}.other"),
                "filter": format!("1) LIMIT 0; FLUSH TABLES WITH READ LOCK; SELECT `id` FROM `{db_name}`.`other` WHERE (1")}]
        }}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut writer = db.connect().await;
    tokio::time::timeout(
        Duration::from_secs(10),
        writer.query_drop(format!("UPDATE `{db_name}`.other SET v = v WHERE id = 1")),
    )
    .await
    .expect("writes are not blocked")
    .unwrap();
    let logs = daemon.logs();
    assert!(
        logs.contains("api-evil") && logs.contains("not one Sluice reads"),
        "{logs}"
    );

    // The admin API channel: a pattern and an additional condition.
    signal(
        &base,
        &name,
        json!({"id": "api-1", "type": "execute-snapshot", "data": {
            "data-collections": [format!("re:{db_name}\\.oth.*")],
            "additional-conditions": [{"data-collection": format!("{db_name}.other"), "filter": "id <= 200"}]
        }}),
    )
    .await;
    let other = read_topic(
        &format!("{name}.{db_name}.other"),
        200,
        Duration::from_secs(60),
    );
    let ids: Vec<i64> = reads(&other)
        .iter()
        .map(|p| p["after"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        (1..=200).collect::<Vec<_>>(),
        "additional condition, key order"
    );
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_kill_resume_and_an_interrupted_initial_snapshot() {
    let mut db = MyDb::new("myincrkill").await;
    db.exec("CREATE TABLE big (id INT PRIMARY KEY, v INT NOT NULL, pad VARCHAR(120) NOT NULL)")
        .await;
    let rows = 200_000i64;
    for start in (1..=rows).step_by(20_000) {
        let values: Vec<String> = (start..start + 20_000)
            .map(|i| format!("({i}, 0, REPEAT('z', 100))"))
            .collect();
        db.exec(&format!("INSERT INTO big VALUES {}", values.join(",")))
            .await;
    }
    let name = unique("myincrkill");
    let listen = format!("127.0.0.1:{}", free_port());
    // An initial snapshot, killed part way.
    let mut daemon = my_daemon(&name, &db, &["big"], "[format]\nschemas = false");
    daemon.append_daemon_config(&format!("[api]\nlisten = \"{listen}\"\n"));
    daemon.start();
    let base = format!("http://{listen}");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = http("GET", &format!("{base}/sluice/connectors/{name}"), None).await;
        if status == 200 {
            let v: Value = serde_json::from_str(&body).unwrap();
            if v["snapshot"]["rows_done"].as_u64().unwrap_or(0) >= 80_000 {
                break;
            }
            assert!(
                v["state"] != "streaming",
                "the snapshot finished before the kill: {v}"
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the snapshot never got far"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    daemon.kill9();
    db.exec("UPDATE big SET v = 5 WHERE id IN (10, 199990)")
        .await;
    db.exec("DELETE FROM big WHERE id IN (20, 199980)").await;
    daemon.start();
    wait_state(&base, None, &name, "streaming", Duration::from_secs(60)).await;
    // Then an incremental snapshot: paused, killed while paused, resumed.
    signal(
        &base,
        &name,
        json!({"type": "execute-snapshot", "data": {"data-collections": [format!("{}.big", db.name)]}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&base, &name, json!({"type": "pause-snapshot"})).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    daemon.kill9();
    daemon.start();
    wait_state(&base, None, &name, "streaming", Duration::from_secs(60)).await;
    signal(&base, &name, json!({"type": "resume-snapshot"})).await;

    let expected: BTreeMap<i64, Value> = db
        .rows("SELECT id, v FROM big ORDER BY id")
        .await
        .into_iter()
        .map(|r| {
            let (id, v): (i64, i64) = mysql_async::from_row(r);
            (id, json!(v))
        })
        .collect();
    let topic = format!("{name}.{}.big", db.name);
    let msgs = read_until_field(&topic, "v", &expected, Duration::from_secs(180)).await;
    let got = replay_field(&msgs, "id", "v");
    let logs = daemon.logs();
    assert_eq!(got.len(), expected.len(), "logs:\n{logs}");
    assert!(got == expected, "replay differs; logs:\n{logs}");
    assert!(
        logs.contains("the initial snapshot was interrupted"),
        "{logs}"
    );
    assert!(logs.contains("incremental snapshot finished"), "{logs}");
    // The initial snapshot (resumed, not restarted) and one incremental pass, at most.
    let r = reads(&msgs).len() as i64;
    assert!(
        r < rows * 23 / 10,
        "{r} read records for {rows} rows: a snapshot started over"
    );
    assert!(daemon.stop().success());
}
