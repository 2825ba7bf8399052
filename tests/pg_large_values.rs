//! Large values pass whole: a text value of several megabytes (larger than the byte bound
//! between the stages, and than the stdout sink's batch) arrives byte for byte, between
//! small rows, in order.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_value_larger_than_every_bound_arrives_whole_and_in_order() {
    let db = TestDb::new("largeval").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v text)").await;
    let name = unique("largeval");
    let mut daemon = Daemon::new(
        "type = \"stdout\"\nmax_in_flight_bytes = 1048576",
        &[(
            "c.toml",
            pg_connector(
                &name,
                &name,
                &db,
                &["public.t"],
                "[format]\nschemas = false\n[snapshot]\nmode = \"no_data\"",
            ),
        )],
    );
    daemon.start();
    // Streaming starts where the slot does (its record is stored before it exists).
    wait_for_slot(&db, &name, &daemon).await;
    // 3 MiB of distinct text (md5 digits) and a multi-byte character, between small rows.
    db.exec(
        "INSERT INTO t VALUES (1, 'small');
         INSERT INTO t SELECT 2, string_agg(md5(g::text), '') || 'é' FROM generate_series(1, 98304) g;
         INSERT INTO t VALUES (3, 'small again');",
    )
    .await;
    let expected: String = db
        .client
        .query_one("SELECT v FROM t WHERE id = 2", &[])
        .await
        .unwrap()
        .get(0);
    assert!(expected.len() > 3 << 20);
    let lsn = db.current_lsn().await;
    wait_slot_and_offset(&db, &daemon, &name, lsn, Duration::from_secs(60)).await;
    assert!(daemon.stop().success());
    let lines: Vec<serde_json::Value> = daemon
        .stdout(1)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is whole JSON"))
        .filter(|v: &serde_json::Value| v["topic"] == format!("{name}.public.t"))
        .collect();
    let ids: Vec<i64> = lines
        .iter()
        .map(|l| l["value"]["after"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(
        lines[1]["value"]["after"]["v"].as_str(),
        Some(expected.as_str())
    );
}
