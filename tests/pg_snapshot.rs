//! Acceptance 2: a snapshot taken while a writer inserts, updates and deletes; replaying the
//! topic (r/c/u by key, d removes) yields exactly the table's final contents: the snapshot
//! handed over to streaming with no gap and no overlap that replay cannot absorb.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

async fn table_state(db: &TestDb) -> BTreeMap<i64, Value> {
    db.client
        .query("SELECT id, v, note FROM items ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let id: i32 = r.get(0);
            let v: i32 = r.get(1);
            let note: Option<String> = r.get(2);
            (id as i64, json!({"id": id, "v": v, "note": note}))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_with_concurrent_writes_replays_to_final_state() {
    let db = TestDb::new("snap").await;
    db.exec(
        "CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, note text);
         INSERT INTO items SELECT i, 0, 'row ' || i FROM generate_series(1, 20000) i;",
    )
    .await;
    let name = unique("snap");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let dbname = db.name.clone();
        tokio::spawn(async move {
            let client = connect(&dbname).await;
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            let mut next_id = 20001;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let id = rng.random_range(1..next_id);
                let sql = match rng.random_range(0..10) {
                    0..=4 => format!("UPDATE items SET v = v + 1, note = 'u{n}' WHERE id = {id}"),
                    5..=7 => {
                        next_id += 1;
                        format!("INSERT INTO items VALUES ({}, 1, NULL)", next_id - 1)
                    }
                    _ => format!("DELETE FROM items WHERE id = {id}"),
                };
                client.batch_execute(&sql).await.unwrap();
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut daemon = Daemon::single(&name, &db, &["public.items"], "[format]\nschemas = false");
    daemon.start();
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.unwrap();
    assert!(writes > 100, "the writer made only {writes} changes");
    let expected = table_state(&db).await;
    let topic = format!("{name}.public.items");
    let msgs = read_until_state(&topic, &expected, Duration::from_secs(120)).await;
    let got = replay(&msgs, "id");
    let snapshot_rows = msgs
        .iter()
        .filter(|m| m.value.as_ref().is_some_and(|v| v["op"] == "r"))
        .count();
    assert!(
        snapshot_rows > 0,
        "no snapshot rows; logs:\n{}",
        daemon.logs()
    );
    let markers: Vec<&str> = msgs
        .iter()
        .filter_map(|m| m.value.as_ref())
        .filter(|v| v["op"] == "r")
        .map(|v| v["source"]["snapshot"].as_str().unwrap())
        .collect();
    assert_eq!(markers.first(), Some(&"first"));
    assert_eq!(markers.last(), Some(&"last"));
    assert!(markers[1..markers.len() - 1].iter().all(|m| *m == "true"));
    if got != expected {
        let missing: Vec<_> = expected
            .keys()
            .filter(|k| !got.contains_key(k))
            .take(5)
            .collect();
        let extra: Vec<_> = got
            .keys()
            .filter(|k| !expected.contains_key(k))
            .take(5)
            .collect();
        let differ: Vec<_> = expected
            .iter()
            .filter(|(k, v)| got.get(k).is_some_and(|g| g != *v))
            .take(3)
            .collect();
        panic!(
            "replay differs from the table: {} vs {} rows; missing {missing:?}, extra {extra:?}, differing {differ:?}; {} records read",
            got.len(),
            expected.len(),
            msgs.len()
        );
    }
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_interrupted_by_kill_restarts_cleanly() {
    let db = TestDb::new("snapkill").await;
    db.exec(
        "CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL, note text);
         INSERT INTO big SELECT i, i % 7, repeat('y', 100) FROM generate_series(1, 150000) i;",
    )
    .await;
    let name = unique("snapkill");
    let mut daemon = Daemon::single(&name, &db, &["public.big"], "[format]\nschemas = false");
    daemon.start();
    let topic = format!("{name}.public.big");
    // Kill once some snapshot rows are on the broker but before the snapshot is done.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let t = topic.clone();
        let high = tokio::task::spawn_blocking(move || high_watermark(&t))
            .await
            .unwrap();
        if high >= 1000 {
            break high;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot rows; logs:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    daemon.kill9();
    let offset = daemon.offset(&name);
    assert!(
        offset
            .as_ref()
            .is_none_or(|o| o["position"]["snapshot"] == "in_progress"),
        "the kill came after the snapshot finished ({seen} rows seen); nothing was tested"
    );
    // Changes while it is down (no delete of a row the first attempt already sent: a snapshot
    // that starts over reads rows again, it does not retract them).
    db.exec("UPDATE big SET v = 100 WHERE id <= 10; INSERT INTO big VALUES (200001, 1, 'new');")
        .await;
    daemon.start();
    let expected: BTreeMap<i64, Value> = db
        .client
        .query("SELECT id, v, note FROM big", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let (id, v, note): (i32, i32, String) = (r.get(0), r.get(1), r.get(2));
            (id as i64, json!({"id": id, "v": v, "note": note}))
        })
        .collect();
    let msgs = read_until_state(&topic, &expected, Duration::from_secs(120)).await;
    assert!(seen >= 1000);
    assert_eq!(
        replay(&msgs, "id").len(),
        expected.len(),
        "logs:\n{}",
        daemon.logs()
    );
    assert!(
        replay(&msgs, "id") == expected,
        "replay differs from the table"
    );
    let last = msgs
        .iter()
        .rev()
        .find_map(|m| m.value.as_ref().filter(|v| v["op"] == "r"))
        .unwrap();
    let stored = daemon.offset(&name).unwrap();
    assert_eq!(stored["position"]["snapshot"], "done");
    // Two outcomes, by what was committed before the kill: a position recording how far the
    // snapshot had come (the rest is then read incrementally while streaming from the slot's
    // consistent point), or none yet (the snapshot starts over with a new slot).
    let logs = daemon.logs();
    if logs.contains("the initial snapshot was interrupted") {
        assert_eq!(last["source"]["snapshot"], "incremental", "{logs}");
        assert!(!logs.contains("recreating the replication slot"), "{logs}");
    } else {
        assert_eq!(last["source"]["snapshot"], "last", "{logs}");
        assert!(
            logs.contains("recreating the replication slot"),
            "an interrupted snapshot without recorded progress starts over with a new slot:\n{logs}"
        );
    }
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_sessions_publish_each_table_whole_in_key_order() {
    let db = TestDb::new("snappar").await;
    // More tables than sessions, some bigger than a session's read-ahead, one empty, and
    // one big enough to be split into key ranges.
    let sizes = [3000, 0, 1, 2500, 40, 1200, 30_000];
    for (t, n) in sizes.iter().enumerate() {
        db.exec(&format!(
            "CREATE TABLE t{t} (id int PRIMARY KEY, v text NOT NULL);
             INSERT INTO t{t} SELECT i, 'row ' || i FROM generate_series(1, {n}) i;"
        ))
        .await;
    }
    let name = unique("snappar");
    let tables: Vec<String> = (0..sizes.len()).map(|t| format!("public.t{t}")).collect();
    let tables: Vec<&str> = tables.iter().map(String::as_str).collect();
    let mut daemon = Daemon::single(
        &name,
        &db,
        &tables,
        "[format]\nschemas = false\n[snapshot]\nmode = \"initial_only\"\nmax_threads = 3",
    );
    daemon.start();
    let mut markers = Vec::new();
    for (t, n) in sizes.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        let msgs = read_topic(&format!("{name}.public.t{t}"), *n, Duration::from_secs(60));
        let ids: Vec<i64> = msgs
            .iter()
            .filter_map(|m| m.value.as_ref())
            .map(|v| payload(v)["after"]["id"].as_i64().unwrap())
            .collect();
        assert_eq!(
            ids,
            (1..=*n as i64).collect::<Vec<_>>(),
            "table t{t}: whole, in key order"
        );
        let first = payload(msgs[0].value.as_ref().unwrap())["source"]["snapshot"].clone();
        let last =
            payload(msgs[msgs.len() - 1].value.as_ref().unwrap())["source"]["snapshot"].clone();
        markers.push((t, first, last));
    }
    // Tables published one after the other: the first table opens the snapshot, the last
    // closes it, the others are marked as whole data collections.
    assert_eq!(markers[0].1, "first", "{markers:?}");
    assert_eq!(markers[0].2, "last_in_data_collection", "{markers:?}");
    let (_, _, end) = markers.last().unwrap();
    assert_eq!(end, "last", "{markers:?}");
    for (t, first, _) in &markers[1..] {
        if sizes[*t] > 1 {
            assert_eq!(first, "first_in_data_collection", "{markers:?}");
        }
    }
    assert!(daemon.wait_exit(Duration::from_secs(60)).success());
    let logs = daemon.logs();
    assert!(logs.contains("snapshot read in parallel"), "{logs}");
    assert!(
        logs.contains("public.t6 (\"id\" >= "),
        "t6 read in key ranges:\n{logs}"
    );
}

/// A snapshot killed before any of its progress was committed, a published row deleted
/// before the restart: the restart streams from the slot's consistent point (the delete is
/// after it) and reads the table again by key, so the row is deleted in the topic too.
/// Starting over on a new slot would leave the killed run's row there for good.
#[tokio::test(flavor = "multi_thread")]
async fn rows_of_a_killed_snapshot_deleted_before_the_restart_are_deleted_in_the_topic() {
    let db = TestDb::new("snapgone").await;
    db.exec(
        "CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, note text);
         INSERT INTO items SELECT i, 0, 'row ' || i FROM generate_series(1, 60000) i;",
    )
    .await;
    let name = unique("snapgone");
    let mut daemon = Daemon::single(&name, &db, &["public.items"], "[format]\nschemas = false");
    daemon.set_offset_flush_interval_ms(600_000);
    daemon.start();
    let topic = format!("{name}.public.items");
    let first = read_topic(&topic, 50, Duration::from_secs(60));
    assert!(first.len() >= 50, "{}", daemon.logs());
    daemon.kill9();
    db.exec("DELETE FROM items WHERE id = 1; UPDATE items SET v = 9 WHERE id = 2")
        .await;
    daemon.start();
    let expected = table_state(&db).await;
    let msgs = read_until_state(&topic, &expected, Duration::from_secs(180)).await;
    let replayed = replay(&msgs, "id");
    assert!(
        !replayed.contains_key(&1),
        "row 1 was deleted; logs:\n{}",
        daemon.logs()
    );
    assert!(
        replayed == expected,
        "replay differs; logs:\n{}",
        daemon.logs()
    );
    assert!(daemon.stop().success());
}
