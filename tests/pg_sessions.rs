//! The session that runs `heartbeat_action_query` (and samples the slot's lag) is opened
//! again when it drops: after its backend is terminated, heartbeat queries go on.

mod common;

use std::time::{Duration, Instant};

use common::*;

async fn heartbeats(db: &TestDb) -> i64 {
    db.client
        .query_one("SELECT count(*) FROM hb", &[])
        .await
        .unwrap()
        .get(0)
}

async fn wait_heartbeats(db: &TestDb, daemon: &Daemon, at_least: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while heartbeats(db).await < at_least {
        assert!(
            Instant::now() < deadline,
            "heartbeat queries stopped at {}; logs:\n{}",
            heartbeats(db).await,
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeat_queries_survive_a_terminated_session() {
    let db = TestDb::new("hbsess").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE hb (id serial PRIMARY KEY);")
        .await;
    let name = unique("hbsess");
    let mut text = pg_connector(
        &name,
        &name,
        &db,
        &["public.t"],
        "heartbeat_interval_ms = 200",
    );
    text.push_str("heartbeat_action_query = \"INSERT INTO hb DEFAULT VALUES\"\n");
    let mut daemon = Daemon::new("", &[("c.toml", text)]);
    daemon.start();
    wait_heartbeats(&db, &daemon, 3).await;
    // Every client session of the database but this one (the replication session is a
    // walsender and stays).
    let killed: i64 = db
        .client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE datname = current_database() AND backend_type = 'client backend'
                AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1, "the heartbeat session was terminated");
    let after = heartbeats(&db).await;
    wait_heartbeats(&db, &daemon, after + 5).await;
    assert!(daemon.try_status().is_none(), "the daemon still runs");
    assert!(daemon.stop().success());
}
