//! Exactly-once (`[sink] exactly_once = true`): records and the position go to Kafka in one
//! transaction per batch, so a `kill -9` at any moment neither loses a change nor shows one
//! twice to a `read_committed` reader. Runs against the transactional test broker
//! (`scripts/start-nisshi`, `SLUICE_TEST_TXN_BROKERS`); its topics are read from the raw
//! record batches (`tests/txn_reader.py`), since that broker does not tell its clients which
//! transactions were aborted; for the same reason Sluice's offset store reads it with
//! `[offsets] verify_transactions = true` (without it, a position of an aborted transaction
//! would be read back after a kill, and the changes after it skipped: seen on this broker).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// The daemon file's `[sink]` and `[offsets]` for exactly-once on the transactional broker.
fn exactly_once_daemon(name: &str, connectors: &[(&str, String)]) -> Daemon {
    let daemon = Daemon::new(
        &format!(
            "type = \"kafka\"\nbootstrap_servers = \"{}\"\nexactly_once = true\ntransaction_max_ms = 300\n[sink.properties]\n\"compression.type\" = \"none\"",
            txn_brokers()
        ),
        connectors,
    );
    let path = daemon.dir.join("config/sluice.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[offsets]\nstore = \"file\"\npath = \"../data/offsets\"",
        &format!("[offsets]\nstore = \"kafka\"\ntopic = \"{name}-offsets\"\ntopic_partitions = 1\ntopic_replication_factor = 1\nverify_transactions = true"),
    );
    std::fs::write(path, text).unwrap();
    daemon
}

/// One record as a `read_committed` consumer reads it, with the producer that wrote it.
struct Rec {
    value: Option<Value>,
    /// (producer id, epoch): a producer registered again with the same transactional id
    /// keeps its id and gets a higher epoch.
    producer: (i64, i64),
}

/// What a `read_committed` consumer reads of `topic`, in order, and the counts of aborted
/// records and open ones.
fn committed_records(topic: &str) -> (Vec<Rec>, Value) {
    let out = run_python(
        "txn_reader.py",
        &json!({"servers": txn_brokers(), "topic": topic, "partitions": 1}).to_string(),
        "read the topic's committed records",
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    let parse = |s: &Value| {
        s.as_str()
            .map(|s| serde_json::from_str(s).expect("JSON record"))
    };
    let records = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Rec {
            value: parse(&r["value"]),
            producer: (
                r["producer"].as_i64().unwrap(),
                r["epoch"].as_i64().unwrap(),
            ),
        })
        .collect();
    let counts = json!({"aborted": v["aborted"], "open": v["open"], "commits": v["commits"], "aborts": v["aborts"]});
    (records, counts)
}

/// Per key, the values of `v` in topic order (snapshot reads and changes alike).
fn history(records: &[Rec]) -> BTreeMap<i64, Vec<i64>> {
    let mut per_key: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for r in records {
        let Some(after) = r.value.as_ref().map(|v| &v["after"]) else {
            continue;
        };
        if after.is_null() {
            continue;
        }
        per_key
            .entry(after["id"].as_i64().unwrap())
            .or_default()
            .push(after["v"].as_i64().unwrap());
    }
    per_key
}

/// Reads `topic` until every row of `db`'s `kv` has its final value there (or `timeout`),
/// then asserts that every change is in it exactly once and in order (per key `v` runs 0, 1,
/// 2, ... up to its final value) and that no record of an older producer epoch follows a
/// newer one (fencing). Returns the records and the reader's counts.
async fn assert_exactly_once(
    db: &TestDb,
    topic: &str,
    timeout: Duration,
    logs: impl Fn() -> String,
) -> (Vec<Rec>, Value) {
    let finals: BTreeMap<i64, i64> = db
        .client
        .query("SELECT id, v FROM kv", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (i64::from(r.get::<_, i32>(0)), i64::from(r.get::<_, i32>(1))))
        .collect();
    let deadline = Instant::now() + timeout;
    let (records, counts) = loop {
        let (records, counts) = committed_records(topic);
        let h = history(&records);
        let caught_up = finals
            .iter()
            .all(|(id, v)| h.get(id).and_then(|s| s.last()) == Some(v));
        if caught_up || Instant::now() > deadline {
            break (records, counts);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let h = history(&records);
    for (id, final_v) in &finals {
        let expected: Vec<i64> = (0..=*final_v).collect();
        assert_eq!(
            h.get(id),
            Some(&expected),
            "key {id}: every change exactly once, in order ({counts}); logs:\n{}",
            logs()
        );
    }
    let mut newest: BTreeMap<i64, i64> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        let (id, epoch) = r.producer;
        let seen = newest.entry(id).or_insert(epoch);
        assert!(
            epoch >= *seen,
            "record {i}: producer {id} epoch {epoch} after epoch {seen}: an older owner wrote after a newer one ({counts})"
        );
        *seen = epoch;
    }
    (records, counts)
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_nine_five_times_with_exactly_once_shows_every_change_once() {
    let db = TestDb::new("eos_crash").await;
    db.exec(
        "CREATE TABLE kv (id int PRIMARY KEY, v int NOT NULL);
         INSERT INTO kv SELECT i, 0 FROM generate_series(1, 100) i;",
    )
    .await;
    let name = unique("eos");
    let mut daemon = exactly_once_daemon(
        &name,
        &[(
            "c.toml",
            pg_connector(
                &name,
                &name,
                &db,
                &["public.kv"],
                "[format]\nschemas = false",
            ),
        )],
    );
    daemon.start();
    let topic = format!("{name}.public.kv");
    // The snapshot first: every change after it is an increment of one row's `v` by one.
    let deadline = Instant::now() + Duration::from_secs(60);
    while history(&committed_records(&topic).0).len() < 100 {
        assert!(
            Instant::now() < deadline,
            "the snapshot never became visible; logs:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let dbname = db.name.clone();
        tokio::spawn(async move {
            let client = connect(&dbname).await;
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            let mut txs = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut sql = String::from("BEGIN;");
                for _ in 0..rng.random_range(1..4) {
                    let id = rng.random_range(1..=100);
                    sql.push_str(&format!("UPDATE kv SET v = v + 1 WHERE id = {id};"));
                }
                sql.push_str("COMMIT;");
                client.batch_execute(&sql).await.unwrap();
                txs += 1;
            }
            txs
        })
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(800..2500))).await;
        daemon.kill9();
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..400))).await;
        daemon.start();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let txs = writer.await.unwrap();
    assert!(txs > 50, "the writer made only {txs} transactions");

    let (records, counts) =
        assert_exactly_once(&db, &topic, Duration::from_secs(120), || daemon.logs()).await;
    // The kills left aborted transactions behind (counted by the reader, shown for the log).
    eprintln!(
        "{} committed records, {txs} database transactions, broker: {counts}",
        records.len()
    );
    assert!(daemon.stop().success());
}

/// connector `name` → (state, owner) as the daemon at `api` reports it.
async fn state_of(api: &str, name: &str) -> Option<(String, Option<String>)> {
    let (status, body) = http("GET", &format!("{api}/sluice/connectors"), None).await;
    if status != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&body).ok()?;
    v["connectors"].as_array()?.iter().find_map(|c| {
        (c["name"] == name).then(|| {
            (
                c["state"].as_str().unwrap_or_default().to_string(),
                c["owner"].as_str().map(str::to_string),
            )
        })
    })
}

/// Waits until the daemon at `apis[i]` (one of `alive`) streams `name`; returns `i`.
async fn streaming_on(
    apis: &[String],
    alive: &[usize],
    name: &str,
    timeout: Duration,
) -> Option<usize> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        for &i in alive {
            if state_of(&apis[i], name)
                .await
                .is_some_and(|(s, _)| s == "streaming")
            {
                return Some(i);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// Cluster mode with exactly-once: the owner frozen past its session (SIGSTOP), then killed
/// (`kill -9`): the other daemon takes over within the session timeout + 10 s without a
/// handoff wait, the thawed owner is fenced and stops, nothing of an older producer appears
/// after a newer one, and every change is in the topic exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_or_killed_owner_is_fenced_and_the_take_over_is_immediate() {
    const SESSION_MS: u64 = 6000;
    let db = TestDb::new("eos_cluster").await;
    db.exec(
        "CREATE TABLE kv (id int PRIMARY KEY, v int NOT NULL);
         INSERT INTO kv SELECT i, 0 FROM generate_series(1, 50) i;",
    )
    .await;
    let name = unique("eosc");
    let group = unique("eosgroup");
    let file = pg_connector(
        &name,
        &name,
        &db,
        &["public.kv"],
        "[format]\nschemas = false",
    )
    .replacen(
        "[postgres]\n",
        "[postgres]\nterminate_stale_walsender = true\n",
        1,
    );
    let mut nodes = Vec::new();
    let mut apis = Vec::new();
    for _ in 0..2 {
        let d = exactly_once_daemon(&name, &[("c.toml", file.clone())]);
        let port = free_port();
        // A handoff delay that would be noticed: exactly-once must not wait for it.
        d.append_daemon_config(&format!(
            "[cluster]\ngroup_id = \"{group}\"\nsession_timeout_ms = {SESSION_MS}\nassignment_partitions = 2\nhandoff_delay_ms = 120000\n[api]\nlisten = \"127.0.0.1:{port}\"\n"
        ));
        apis.push(format!("http://127.0.0.1:{port}"));
        nodes.push(d);
    }
    for n in &mut nodes {
        n.start();
    }
    let logs = |nodes: &[Daemon]| {
        nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("--- daemon {i}:\n{}", n.logs()))
            .collect::<String>()
    };
    let first = streaming_on(&apis, &[0, 1], &name, Duration::from_secs(90))
        .await
        .unwrap_or_else(|| panic!("the connector never streamed:\n{}", logs(&nodes)));
    let other = 1 - first;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let dbname = db.name.clone();
        tokio::spawn(async move {
            let client = connect(&dbname).await;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let id = n % 50 + 1;
                client
                    .batch_execute(&format!("UPDATE kv SET v = v + 1 WHERE id = {id}"))
                    .await
                    .unwrap();
                n += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Frozen past its session: the other daemon takes over at once.
    nodes[first].signal("STOP");
    let frozen_at = Instant::now();
    let took = streaming_on(
        &apis,
        &[other],
        &name,
        Duration::from_millis(SESSION_MS + 10_000),
    )
    .await;
    assert!(
        took.is_some(),
        "no take-over within the session + 10 s after SIGSTOP:\n{}",
        logs(&nodes)
    );
    eprintln!("take-over after SIGSTOP: {:?}", frozen_at.elapsed());
    tokio::time::sleep(Duration::from_secs(2)).await;
    nodes[first].signal("CONT");
    // The thawed owner stops the connector (fenced, or told its assignment is lost).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = state_of(&apis[first], &name).await;
        if s.as_ref()
            .is_some_and(|(s, _)| s != "streaming" && s != "starting" && s != "snapshotting")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the thawed owner still runs the connector ({s:?}):\n{}",
            logs(&nodes)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Killed: whichever daemon owns it now (the group may have moved it back when the
    // thawed daemon rejoined), the other takes it over at once.
    let owner = streaming_on(&apis, &[0, 1], &name, Duration::from_secs(30))
        .await
        .unwrap_or_else(|| {
            panic!(
                "nobody streams the connector:
{}",
                logs(&nodes)
            )
        });
    nodes[owner].kill9();
    let killed_at = Instant::now();
    let back = streaming_on(
        &apis,
        &[1 - owner],
        &name,
        Duration::from_millis(SESSION_MS + 10_000),
    )
    .await;
    assert!(
        back.is_some(),
        "no take-over within the session + 10 s after kill -9:\n{}",
        logs(&nodes)
    );
    eprintln!("take-over after kill -9: {:?}", killed_at.elapsed());
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let updates = writer.await.unwrap();

    let topic = format!("{name}.public.kv");
    let (records, counts) =
        assert_exactly_once(&db, &topic, Duration::from_secs(60), || logs(&nodes)).await;
    // The thawed owner said why it stopped: its producer failed as fenced, or the group told
    // it first that the assignment was lost (and the new owner's registration fenced it).
    assert!(
        nodes[first].logs().contains("fenced by another owner"),
        "the thawed owner did not log that it was fenced:\n{}",
        nodes[first].logs()
    );
    eprintln!(
        "{updates} updates, {} committed records, broker: {counts}",
        records.len()
    );
}
