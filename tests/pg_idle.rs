//! Acceptance 5: a connector whose tables are idle (writes go only to a table outside its
//! publication) still advances its slot's `confirmed_flush_lsn` and its stored offset, so it
//! never pins WAL.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn idle_connector_advances_confirmed_flush_lsn() {
    let db = TestDb::new("idle").await;
    db.exec("CREATE TABLE captured (id int PRIMARY KEY); CREATE TABLE other (id serial PRIMARY KEY, v text);").await;
    let name = unique("idle");
    let mut daemon = Daemon::single(&name, &db, &["public.captured"], "");
    daemon.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.confirmed_flush(&name).await.is_none() {
        assert!(
            Instant::now() < deadline,
            "slot not created; logs:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let initial = db.confirmed_flush(&name).await.unwrap();
    for i in 0..50 {
        db.exec(&format!(
            "INSERT INTO other (v) SELECT repeat('x', 200) FROM generate_series(1, 100); -- {i}"
        ))
        .await;
    }
    let target = db.current_lsn().await;
    assert!(target > initial);
    wait_slot_and_offset(&db, &daemon, &name, target, Duration::from_secs(60)).await;
    // Nothing was published for the other table.
    assert!(!topics()
        .iter()
        .any(|t| t.starts_with(&format!("{name}.public.other"))));
    assert!(daemon.stop().success());
}
