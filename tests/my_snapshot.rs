//! Acceptance 2 against MariaDB: a snapshot taken while a writer inserts, updates and
//! deletes; replaying the topic yields exactly the table's final contents. Streaming starts
//! at the position read under the global read lock: no gap, no overlap replay cannot absorb.
//! Also: the starting position is stored before streaming begins, and a kill -9 in the
//! middle of the snapshot restarts it cleanly.

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

async fn table_state(db: &mut MyDb) -> BTreeMap<i64, Value> {
    db.rows("SELECT id, v, note FROM items ORDER BY id")
        .await
        .into_iter()
        .map(|r| {
            let (id, v, note): (i64, i64, Option<String>) = mysql_async::from_row(r);
            (id, json!({"id": id, "v": v, "note": note}))
        })
        .collect()
}

async fn fill(db: &mut MyDb, rows: i64) {
    db.exec("CREATE TABLE items (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(64))")
        .await;
    let mut start = 1;
    while start <= rows {
        let end = (start + 4999).min(rows);
        let values: Vec<String> = (start..=end)
            .map(|i| format!("({i}, 0, 'row {i}')"))
            .collect();
        db.exec(&format!("INSERT INTO items VALUES {}", values.join(",")))
            .await;
        start = end + 1;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_with_concurrent_writes_replays_to_final_state() {
    let mut db = MyDb::new("mysnap").await;
    fill(&mut db, 30_000).await;
    let name = unique("mysnap");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut conn = db.connect().await;
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            let mut next_id = 30_001;
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
                conn.query_drop(sql).await.unwrap();
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut daemon = my_daemon(&name, &db, &["items"], "[format]\nschemas = false");
    daemon.start();
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.unwrap();
    assert!(writes > 100, "the writer made only {writes} changes");
    let expected = table_state(&mut db).await;
    let topic = format!("{name}.{}.items", db.name);
    let msgs = read_until_state(&topic, &expected, Duration::from_secs(120)).await;
    let got = replay(&msgs, "id");
    let snapshot_rows: Vec<&Msg> = msgs
        .iter()
        .filter(|m| m.value.as_ref().is_some_and(|v| v["op"] == "r"))
        .collect();
    assert!(
        snapshot_rows.len() >= 29_000,
        "snapshot rows: {}",
        snapshot_rows.len()
    );
    let markers: Vec<&str> = snapshot_rows
        .iter()
        .map(|m| {
            m.value.as_ref().unwrap()["source"]["snapshot"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(markers[0], "first");
    assert_eq!(*markers.last().unwrap(), "last");
    assert!(markers[1..markers.len() - 1].iter().all(|m| *m == "true"));
    assert_eq!(
        got.len(),
        expected.len(),
        "row count; logs:\n{}",
        daemon.logs()
    );
    assert!(
        got == expected,
        "replay differs from the table; logs:\n{}",
        daemon.logs()
    );
    let offset = daemon.offset(&name).expect("offset stored");
    assert_eq!(offset["position"]["kind"], "mysql");
    assert_eq!(offset["position"]["snapshot"], "done");
    assert!(daemon.logs().contains("snapshot finished"));
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_during_snapshot_restarts_it() {
    let mut db = MyDb::new("mysnapkill").await;
    fill(&mut db, 150_000).await;
    let name = unique("mysnapkill");
    let mut daemon = my_daemon(&name, &db, &["items"], "[format]\nschemas = false");
    daemon.start();
    let topic = format!("{name}.{}.items", db.name);
    // Kill shortly after the snapshot stored its starting position, before it ends.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while daemon
        .offset(&name)
        .is_none_or(|o| o["position"]["snapshot"] != "in_progress")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot started; logs:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    daemon.kill9();
    let offset = daemon
        .offset(&name)
        .expect("the snapshot's position is stored first");
    assert_eq!(
        offset["position"]["snapshot"], "in_progress",
        "killed mid-snapshot: {offset}"
    );
    db.exec("INSERT INTO items VALUES (150001, 7, 'after the kill')")
        .await;
    daemon.start();
    let expected = table_state(&mut db).await;
    let msgs = read_until_state(&topic, &expected, Duration::from_secs(180)).await;
    assert!(
        replay(&msgs, "id") == expected,
        "replay differs; logs:\n{}",
        daemon.logs()
    );
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_sessions_publish_each_table_whole_in_key_order() {
    let mut db = MyDb::new("mysnappar").await;
    let sizes = [3000usize, 0, 1, 2500, 40, 1200, 30_000];
    for (t, n) in sizes.iter().enumerate() {
        db.exec(&format!(
            "CREATE TABLE t{t} (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)"
        ))
        .await;
        for start in (1..=*n).step_by(10_000) {
            let values: Vec<String> = (start..=(*n).min(start + 9_999))
                .map(|i| format!("({i}, 'row {i}')"))
                .collect();
            db.exec(&format!("INSERT INTO t{t} VALUES {}", values.join(",")))
                .await;
        }
    }
    let name = unique("mysnappar");
    let tables: Vec<String> = (0..sizes.len()).map(|t| format!("t{t}")).collect();
    let tables: Vec<&str> = tables.iter().map(String::as_str).collect();
    let mut daemon = my_daemon(
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
        let msgs = read_topic(
            &format!("{name}.{}.t{t}", db.name),
            *n,
            Duration::from_secs(60),
        );
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
    assert_eq!(markers[0].1, "first", "{markers:?}");
    assert_eq!(markers[0].2, "last_in_data_collection", "{markers:?}");
    assert_eq!(markers.last().unwrap().2, "last", "{markers:?}");
    for (t, first, _) in &markers[1..] {
        if sizes[*t] > 1 {
            assert_eq!(first, "first_in_data_collection", "{markers:?}");
        }
    }
    assert!(daemon.wait_exit(Duration::from_secs(60)).success());
    let logs = daemon.logs();
    assert!(logs.contains("snapshot read in parallel"), "{logs}");
    assert!(
        logs.contains(".t6 (`id` >= "),
        "t6 read in key ranges:\n{logs}"
    );
}

/// A snapshot killed before any of its progress was committed, a published row deleted
/// before the restart: the restart streams from the snapshot's position (the delete is in
/// the binlog after it) and reads the table again by key, so the row is deleted in the topic
/// too. Starting over from a new position would leave the killed run's row there for good.
#[tokio::test(flavor = "multi_thread")]
async fn rows_of_a_killed_snapshot_deleted_before_the_restart_are_deleted_in_the_topic() {
    let mut db = MyDb::new("mysnapgone").await;
    fill(&mut db, 60_000).await;
    let name = unique("mysnapgone");
    let mut daemon = my_daemon(&name, &db, &["items"], "[format]\nschemas = false");
    // Nothing committed while the first run lives: only the position stored before the rows.
    daemon.set_offset_flush_interval_ms(600_000);
    daemon.start();
    let topic = format!("{name}.{}.items", db.name);
    let first = read_topic(&topic, 50, Duration::from_secs(60));
    assert!(first.len() >= 50, "{}", daemon.logs());
    daemon.kill9();
    db.exec("DELETE FROM items WHERE id = 1; UPDATE items SET v = 9 WHERE id = 2")
        .await;
    daemon.start();
    let expected = table_state(&mut db).await;
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
