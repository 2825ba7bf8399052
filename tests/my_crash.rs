//! Acceptance 3 against MariaDB: `kill -9` of the daemon at five random moments while a
//! writer runs multi-statement, multi-row transactions (one UPDATE changes several rows: one
//! rows event with several rows). Afterwards every committed change is in the topic and
//! per-key order holds; duplicates only repeat what came before.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::mysql::*;
use common::*;
use mysql_async::prelude::Queryable;
use rand::{Rng, SeedableRng};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn kill_nine_at_random_moments_loses_nothing() {
    let mut db = MyDb::new("mycrash").await;
    db.exec("CREATE TABLE kv (id INT PRIMARY KEY, v INT NOT NULL)")
        .await;
    let values: Vec<String> = (1..=200).map(|i| format!("({i}, 0)")).collect();
    db.exec(&format!("INSERT INTO kv VALUES {}", values.join(",")))
        .await;
    let name = unique("mycrash");
    let mut daemon = my_daemon(&name, &db, &["kv"], "[format]\nschemas = false");
    daemon.start();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut client = db.connect().await;
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(42);
            let mut next_id = 201;
            let mut txs = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Several statements, several rows each, one transaction.
                let mut sql = vec![String::from("BEGIN")];
                for _ in 0..rng.random_range(1..4) {
                    let a = rng.random_range(1..next_id);
                    let b = rng.random_range(1..next_id);
                    let c = rng.random_range(1..next_id);
                    sql.push(format!(
                        "UPDATE kv SET v = v + 1 WHERE id IN ({a}, {b}, {c})"
                    ));
                }
                if rng.random_range(0..4) == 0 {
                    sql.push(format!("INSERT INTO kv VALUES ({next_id}, 1)"));
                    next_id += 1;
                }
                sql.push("COMMIT".into());
                for s in sql {
                    client.query_drop(s).await.unwrap();
                }
                txs += 1;
            }
            txs
        })
    };

    let mut rng = rand::rngs::StdRng::seed_from_u64(1234);
    for _ in 0..5 {
        let wait = rng.random_range(700..2500);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        daemon.kill9();
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..400))).await;
        daemon.start();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let txs = writer.await.unwrap();
    assert!(txs > 50, "writer made only {txs} transactions");

    let rows = db.rows("SELECT id, v FROM kv ORDER BY id").await;
    let expected: BTreeMap<i64, serde_json::Value> = rows
        .into_iter()
        .map(|r| {
            let (id, v): (i64, i64) = mysql_async::from_row(r);
            (id, json!({"id": id, "v": v}))
        })
        .collect();
    let topic = format!("{name}.{}.kv", db.name);
    let msgs = read_until_state(&topic, &expected, Duration::from_secs(120)).await;
    assert_eq!(
        replay(&msgs, "id"),
        expected,
        "final state; logs:\n{}",
        daemon.logs()
    );

    let checked = std::panic::catch_unwind(|| check_per_key_order(&msgs, &expected));
    let duplicates = checked.unwrap_or_else(|panic| {
        eprintln!("daemon logs:\n{}", daemon.logs());
        std::panic::resume_unwind(panic)
    });
    eprintln!(
        "{} records, {} transactions, {duplicates} redelivered after kills",
        msgs.len(),
        txs
    );
    assert!(daemon.stop().success());
}
