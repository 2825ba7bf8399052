//! Acceptance 3: `kill -9` of the daemon at five random moments while a writer runs
//! multi-statement, multi-row transactions. Afterwards every committed change is in the
//! topic and per-key order holds; duplicates only repeat what came before.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rand::{Rng, SeedableRng};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn kill_nine_at_random_moments_loses_nothing() {
    let db = TestDb::new("crash").await;
    db.exec(
        "CREATE TABLE kv (id int PRIMARY KEY, v int NOT NULL);
         INSERT INTO kv SELECT i, 0 FROM generate_series(1, 200) i;",
    )
    .await;
    let name = unique("crash");
    let mut daemon = Daemon::single(&name, &db, &["public.kv"], "[format]\nschemas = false");
    daemon.start();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let dbname = db.name.clone();
        tokio::spawn(async move {
            let client = connect(&dbname).await;
            let mut rng = rand::rngs::StdRng::seed_from_u64(42);
            let mut next_id = 201;
            let mut txs = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Several statements, several rows each, one transaction.
                let mut sql = String::from("BEGIN;");
                for _ in 0..rng.random_range(1..4) {
                    let a = rng.random_range(1..next_id);
                    let b = rng.random_range(1..next_id);
                    let c = rng.random_range(1..next_id);
                    sql.push_str(&format!(
                        "UPDATE kv SET v = v + 1 WHERE id IN ({a}, {b}, {c});"
                    ));
                }
                if rng.random_range(0..4) == 0 {
                    sql.push_str(&format!("INSERT INTO kv VALUES ({next_id}, 1);"));
                    next_id += 1;
                }
                sql.push_str("COMMIT;");
                client.batch_execute(&sql).await.unwrap();
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

    let rows = db
        .client
        .query("SELECT id, v FROM kv ORDER BY id", &[])
        .await
        .unwrap();
    let expected: BTreeMap<i64, serde_json::Value> = rows
        .iter()
        .map(|r| {
            let (id, v): (i32, i32) = (r.get(0), r.get(1));
            (id as i64, json!({"id": id, "v": v}))
        })
        .collect();
    let topic = format!("{name}.public.kv");
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
