//! Incremental snapshots on PostgreSQL, started by signals (a signal table read from the
//! stream, and the admin API) while a writer changes the table: replaying the topic equals
//! the table; a kill -9 in the middle resumes at the next chunk; malformed signals and
//! signals naming uncaptured tables are logged and ignored while streaming goes on.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

fn table_state(rows: Vec<tokio_postgres::Row>) -> BTreeMap<i64, Value> {
    rows.into_iter()
        .map(|r| {
            let (id, v): (i32, i32) = (r.get(0), r.get(1));
            (i64::from(id), json!({"id": id, "v": v}))
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

#[tokio::test(flavor = "multi_thread")]
async fn signal_table_snapshot_under_writes_then_api_and_bad_signals() {
    let db = TestDb::new("incr").await;
    db.exec(
        "CREATE TABLE inc (id int PRIMARY KEY, v int NOT NULL);
         INSERT INTO inc SELECT i, 0 FROM generate_series(1, 3000) i;
         CREATE TABLE other (id int PRIMARY KEY, v int NOT NULL);
         INSERT INTO other SELECT i, 7 FROM generate_series(1, 250) i;
         CREATE TABLE sig (id varchar(64) PRIMARY KEY, type varchar(32) NOT NULL, data text);",
    )
    .await;
    let name = unique("incr");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut daemon = Daemon::single(
        &name,
        &db,
        &["public.inc", "public.other", "public.sig"],
        &format!("[format]\nschemas = false\n[snapshot]\nmode = \"no_data\"\nchunk_size = 100\n[signals]\ntable = \"public.sig\"\nallow_filters = true\n[notifications]\ntopic = \"{name}.notifications\""),
    );
    daemon.append_daemon_config(&format!("[api]\nlisten = \"{listen}\"\n"));
    daemon.start();
    wait_state(
        &format!("http://{listen}"),
        None,
        &name,
        "streaming",
        Duration::from_secs(60),
    )
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let dbname = db.name.clone();
        tokio::spawn(async move {
            let client = connect(&dbname).await;
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
                client.batch_execute(&sql).await.unwrap();
                n += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Bad signals first: logged and skipped, streaming goes on.
    db.exec(
        "INSERT INTO sig VALUES ('bad-1', 'explode', NULL);
         INSERT INTO sig VALUES ('bad-2', 'execute-snapshot', '{not json');
         INSERT INTO sig VALUES ('bad-3', 'execute-snapshot', '{\"data-collections\": [\"public.nope\"]}');
         INSERT INTO sig VALUES ('s-1', 'execute-snapshot', '{\"data-collections\": [\"public.inc\"], \"type\": \"incremental\"}');",
    )
    .await;
    // The status shows the incremental snapshot while it runs (it used to say only
    // `streaming`, with `snapshot` null).
    let mut seen: Option<Value> = None;
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < until {
        let (_, body) = http(
            "GET",
            &format!("http://{listen}/sluice/connectors/{name}"),
            None,
        )
        .await;
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["snapshot"]["kind"] == "incremental"
            && v["snapshot"]["chunks"].as_u64().unwrap_or(0) > 0
        {
            assert_eq!(v["state"], "streaming", "{v}");
            seen = Some(v["snapshot"].clone());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = seen.unwrap_or_else(|| {
        panic!(
            "no incremental progress in the status; logs:\n{}",
            daemon.logs()
        )
    });
    assert_eq!(seen["table"], "public.inc", "{seen}");
    assert!(seen["rows_done"].as_u64().unwrap() > 0, "{seen}");
    assert!(seen["started_ms"].as_i64().unwrap() > 0, "{seen}");
    stop.store(true, Ordering::Relaxed);
    let changes = writer.await.unwrap();
    assert!(changes > 100, "writer made only {changes} changes");

    let expected = table_state(
        db.client
            .query("SELECT id, v FROM inc ORDER BY id", &[])
            .await
            .unwrap(),
    );
    let topic = format!("{name}.public.inc");
    let msgs = read_until_state(&topic, &expected, Duration::from_secs(90)).await;
    assert_eq!(
        replay(&msgs, "id"),
        expected,
        "replay of {topic}; logs:\n{}",
        daemon.logs()
    );
    let r = reads(&msgs);
    // Only rows the writer touched during their chunk's window are left out.
    assert!(
        r.len() > 2000 && r.len() <= 3400,
        "{} read records; logs:\n{}",
        r.len(),
        daemon.logs()
    );
    assert!(r.iter().all(|p| p["source"]["snapshot"] == "incremental"));
    let logs = daemon.logs();
    assert!(
        logs.contains("unknown type \\\"explode\\\"") || logs.contains("unknown type \"explode\""),
        "{logs}"
    );
    assert!(logs.contains("not JSON"), "{logs}");
    assert!(logs.contains("public.nope"), "{logs}");
    // Debezium's notifications of the snapshot, named by the signal's id.
    let notes: Vec<Value> = read_topic_until(
        &format!("{name}.notifications"),
        Duration::from_secs(30),
        |m| {
            m.iter()
                .any(|m| m.value.as_ref().is_some_and(|v| v["type"] == "COMPLETED"))
        },
    )
    .into_iter()
    .filter_map(|m| m.value)
    .collect();
    let kinds: Vec<&str> = notes.iter().map(|n| n["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"STARTED"), "{kinds:?}");
    assert!(kinds.contains(&"IN_PROGRESS"), "{kinds:?}");
    assert_eq!(
        &kinds[kinds.len() - 2..],
        ["TABLE_SCAN_COMPLETED", "COMPLETED"],
        "{kinds:?}"
    );
    for n in &notes {
        assert_eq!(n["id"], "s-1", "{n}");
        assert_eq!(n["aggregate_type"], "Incremental Snapshot", "{n}");
        assert_eq!(n["additional_data"]["connector_name"], name.as_str(), "{n}");
    }
    assert_eq!(
        notes[0]["additional_data"]["data_collections"],
        "public.inc"
    );
    let scan = &notes[notes.len() - 2];
    assert_eq!(scan["additional_data"]["scanned_collection"], "public.inc");
    assert!(
        scan["additional_data"]["total_rows_scanned"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 2000,
        "{scan}"
    );
    // Finished: the status no longer shows a snapshot.
    let (_, body) = http(
        "GET",
        &format!("http://{listen}/sluice/connectors/{name}"),
        None,
    )
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["snapshot"].is_null(), "{v}");

    // The admin API channel: a log signal and a snapshot of the second table.
    let base = format!("http://{listen}");
    let (status, body) = http_json(
        "POST",
        &format!("{base}/connectors/{name}/signals"),
        None,
        &json!({"id": "api-log", "type": "log", "data": {"message": "hello from the API"}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert!(body.contains("\"recorded\":true"), "{body}");
    let (status, body) = http_json(
        "POST",
        &format!("{base}/connectors/{name}/signals"),
        None,
        &json!({"type": "explode"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown type"), "{body}");
    // A condition that calls a function: refused, nothing run.
    let (status, body) = http_json(
        "POST",
        &format!("{base}/connectors/{name}/signals"),
        None,
        &json!({"id": "api-evil", "type": "execute-snapshot", "data": {
            "data-collections": ["public.other"],
            "additional-conditions": [{"data-collection": "public.other",
                "filter": "id > 0 OR pg_terminate_backend(pg_backend_pid()) IS NULL"}]
        }}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = http_json(
        "POST",
        &format!("{base}/connectors/{name}/signals"),
        None,
        &json!({"id": "api-1", "type": "execute-snapshot", "data": {
            "data-collections": ["re:public\\.oth.*"],
            "additional-conditions": [{"data-collection": "public.other", "filter": "id <= 200"}]
        }}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let other = read_topic(
        &format!("{name}.public.other"),
        200,
        Duration::from_secs(60),
    );
    let r = reads(&other);
    let ids: Vec<i64> = r
        .iter()
        .map(|p| p["after"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        (1..=200).collect::<Vec<_>>(),
        "additional condition, key order"
    );
    // Streaming still flows after all that.
    db.exec("UPDATE other SET v = 8 WHERE id = 250").await;
    let other = read_topic(
        &format!("{name}.public.other"),
        201,
        Duration::from_secs(30),
    );
    assert!(other
        .iter()
        .filter_map(|m| m.value.as_ref())
        .any(|v| payload(v)["op"] == "u" && payload(v)["after"]["v"] == 8));
    assert!(daemon.logs().contains("hello from the API"));
    let logs = daemon.logs();
    assert!(
        logs.contains("api-evil") && logs.contains("not one Sluice reads"),
        "{logs}"
    );
    assert!(daemon.stop().success());
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

fn count_reads(topic: &str) -> usize {
    reads(&read_topic(topic, usize::MAX, Duration::from_secs(4))).len()
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_kill_resume_kill_finishes_without_starting_over() {
    let db = TestDb::new("incrkill").await;
    let rows = 60_000;
    db.exec(&format!(
        "CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL);
         INSERT INTO big SELECT i, 0, repeat('x', 100) FROM generate_series(1, {rows}) i;"
    ))
    .await;
    let name = unique("incrkill");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut daemon = Daemon::single(
        &name,
        &db,
        &["public.big"],
        "[format]\nschemas = false\n[snapshot]\nmode = \"no_data\"\nchunk_size = 100",
    );
    daemon.append_daemon_config(&format!("[api]\nlisten = \"{listen}\"\n"));
    daemon.start();
    let base = format!("http://{listen}");
    wait_state(&base, None, &name, "streaming", Duration::from_secs(60)).await;
    signal(
        &base,
        &name,
        json!({"type": "execute-snapshot", "data": {"data-collections": ["public.big"]}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    signal(&base, &name, json!({"type": "pause-snapshot"})).await;
    let topic = format!("{name}.public.big");
    let paused_at = tokio::task::spawn_blocking({
        let topic = topic.clone();
        move || count_reads(&topic)
    })
    .await
    .unwrap();
    assert!(
        paused_at > 0 && paused_at < rows,
        "{paused_at} records when paused"
    );

    // Killed while paused: the pause is part of the stored position.
    daemon.kill9();
    db.exec("UPDATE big SET v = 1 WHERE id IN (1, 59999)").await;
    daemon.start();
    wait_state(&base, None, &name, "streaming", Duration::from_secs(60)).await;
    let still = tokio::task::spawn_blocking({
        let topic = topic.clone();
        move || count_reads(&topic)
    })
    .await
    .unwrap();
    assert!(
        still < paused_at + 1000,
        "paused at {paused_at}, then {still}: the pause was forgotten"
    );

    // Resumed, then killed again while it runs (or just after it finished).
    signal(&base, &name, json!({"type": "resume-snapshot"})).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    daemon.kill9();
    daemon.start();
    let expected: BTreeMap<i64, Value> = db
        .client
        .query("SELECT id, v FROM big ORDER BY id", &[])
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let (id, v): (i32, i32) = (r.get(0), r.get(1));
            (i64::from(id), json!(v))
        })
        .collect();
    let msgs = read_until_field(&topic, "v", &expected, Duration::from_secs(120)).await;
    let got = replay_field(&msgs, "id", "v");
    assert_eq!(got.len(), expected.len(), "logs:\n{}", daemon.logs());
    assert!(got == expected, "replay differs; logs:\n{}", daemon.logs());
    let r = reads(&msgs).len();
    assert!(
        r < rows * 13 / 10,
        "{r} read records for {rows} rows: the snapshot started over"
    );
    assert!(daemon.logs().contains("incremental snapshot finished"));
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_initial_snapshot_resumes_where_it_stopped() {
    let db = TestDb::new("initresume").await;
    let rows = 500_000;
    db.exec(&format!(
        "CREATE TABLE small (id int PRIMARY KEY, v int NOT NULL);
         INSERT INTO small SELECT i, 0 FROM generate_series(1, 100) i;
         CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL);
         INSERT INTO big SELECT i, 0, repeat('y', 100) FROM generate_series(1, {rows}) i;
         ANALYZE big;"
    ))
    .await;
    let name = unique("initresume");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut daemon = Daemon::single(
        &name,
        &db,
        &["public.small", "public.big"],
        "[format]\nschemas = false",
    );
    daemon.append_daemon_config(&format!("[api]\nlisten = \"{listen}\"\n"));
    daemon.start();
    let base = format!("http://{listen}");
    // Killed once about 40 % of the big table is read.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = http("GET", &format!("{base}/sluice/connectors/{name}"), None).await;
        if status == 200 {
            let v: Value = serde_json::from_str(&body).unwrap();
            if v["snapshot"]["table"] == "public.big"
                && v["snapshot"]["rows_done"].as_u64().unwrap_or(0) >= 200_000
            {
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
    // Changes while it is down, on both sides of where it stopped.
    db.exec(
        "UPDATE big SET v = 5 WHERE id IN (10, 499990);
         DELETE FROM big WHERE id IN (20, 499980);
         INSERT INTO big VALUES (600000, 1, 'new');
         UPDATE small SET v = 3 WHERE id = 1;",
    )
    .await;
    daemon.start();
    let expected: BTreeMap<i64, Value> = db
        .client
        .query("SELECT id, v FROM big ORDER BY id", &[])
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let (id, v): (i32, i32) = (r.get(0), r.get(1));
            (i64::from(id), json!(v))
        })
        .collect();
    let topic = format!("{name}.public.big");
    let msgs = read_until_field(&topic, "v", &expected, Duration::from_secs(180)).await;
    let got = replay_field(&msgs, "id", "v");
    let logs = daemon.logs();
    assert_eq!(got.len(), expected.len(), "logs:\n{logs}");
    assert!(got == expected, "replay differs; logs:\n{logs}");
    let r = reads(&msgs).len();
    assert!(
        r < rows * 13 / 10,
        "{r} read records for {rows} rows: the snapshot started over"
    );
    assert!(
        logs.contains("the initial snapshot was interrupted"),
        "{logs}"
    );
    let small = table_state(
        db.client
            .query("SELECT id, v FROM small ORDER BY id", &[])
            .await
            .unwrap(),
    );
    let small_msgs = read_until_state(
        &format!("{name}.public.small"),
        &small,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(replay(&small_msgs, "id"), small);
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn key_columns_stand_in_for_a_primary_key_and_stop_snapshot_stops() {
    let db = TestDb::new("incrkeys").await;
    db.exec(
        "CREATE TABLE nokey (code text NOT NULL UNIQUE, v int NOT NULL);
         ALTER TABLE nokey REPLICA IDENTITY USING INDEX nokey_code_key;
         INSERT INTO nokey SELECT 'k' || lpad(i::text, 4, '0'), i FROM generate_series(1, 500) i;
         CREATE TABLE bare (a int, b int);
         ALTER TABLE bare REPLICA IDENTITY FULL;
         INSERT INTO bare SELECT i, i FROM generate_series(1, 10) i;
         CREATE TABLE long (id int PRIMARY KEY, v int NOT NULL);
         INSERT INTO long SELECT i, 0 FROM generate_series(1, 50000) i;",
    )
    .await;
    let name = unique("incrkeys");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut daemon = Daemon::single(
        &name,
        &db,
        &["public.nokey", "public.bare", "public.long"],
        "[format]\nschemas = false\n[snapshot]\nmode = \"no_data\"\nchunk_size = 50\n[key_columns]\n\"public.nokey\" = [\"code\"]",
    );
    daemon.append_daemon_config(&format!("[api]\nlisten = \"{listen}\"\n"));
    daemon.start();
    let base = format!("http://{listen}");
    wait_state(&base, None, &name, "streaming", Duration::from_secs(60)).await;
    signal(
        &base,
        &name,
        json!({"type": "execute-snapshot", "data": {"data-collections": ["public.nokey", "public.bare"]}}),
    )
    .await;
    let msgs = read_topic(
        &format!("{name}.public.nokey"),
        500,
        Duration::from_secs(60),
    );
    let codes: Vec<String> = reads(&msgs)
        .iter()
        .map(|p| p["after"]["code"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = (1..=500).map(|i| format!("k{i:04}")).collect();
    assert_eq!(codes, want, "read by key_columns, in their order");
    let logs = daemon.logs();
    assert!(
        logs.contains("table public.bare has no primary key"),
        "a table without a key is passed over with the reason:\n{logs}"
    );
    // And the status says so, where an operator looks (not only in a log line).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = http("GET", &format!("{base}/sluice/connectors/{name}"), None).await;
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        let passed = &status["snapshot_passed_over"];
        if passed[0]["table"] == "public.bare" {
            assert!(
                passed[0]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("no primary key"),
                "{status}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // stop-snapshot: the big table's snapshot ends early, streaming goes on.
    signal(
        &base,
        &name,
        json!({"type": "execute-snapshot", "data": {"data-collections": ["public.long"]}}),
    )
    .await;
    signal(
        &base,
        &name,
        json!({"type": "stop-snapshot", "data": {"data-collections": ["public.long"], "type": "incremental"}}),
    )
    .await;
    db.exec("UPDATE long SET v = 7 WHERE id = 49999").await;
    let topic = format!("{name}.public.long");
    let long = tokio::task::spawn_blocking(move || {
        read_topic_until(&topic, Duration::from_secs(60), |m| {
            m.iter()
                .filter_map(|r| r.value.as_ref())
                .any(|v| payload(v)["op"] == "u")
        })
    })
    .await
    .unwrap();
    let r = reads(&long).len();
    assert!(
        r < 50_000,
        "{r} read records: stop-snapshot did not stop it"
    );
    assert!(daemon.logs().contains("incremental snapshot stopped"));
    assert!(daemon.stop().success());
}
