//! Errors that no retry can fix stop the connector with a message saying what to change,
//! instead of being retried forever (a snapshot would otherwise start over at every retry).

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_record_larger_than_the_producer_accepts_stops_the_connector_once() {
    let db = TestDb::new("toolarge").await;
    db.exec(
        "CREATE TABLE big (id int PRIMARY KEY, v text NOT NULL);
         INSERT INTO big VALUES (1, 'small'), (2, repeat('x', 50000));",
    )
    .await;
    let name = unique("toolarge");
    let sink = format!(
        "type = \"kafka\"\nbootstrap_servers = \"{}\"\n[sink.properties]\n\"message.max.bytes\" = \"20000\"",
        brokers()
    );
    let mut daemon = Daemon::new(
        &sink,
        &[(
            "c.toml",
            pg_connector(
                &name,
                &name,
                &db,
                &["public.big"],
                "[format]\nschemas = false",
            ),
        )],
    );
    daemon.start();
    // Without the admin API the daemon ends when its only connector has stopped.
    let status = daemon.wait_exit(Duration::from_secs(60));
    let logs = daemon.logs();
    assert!(!status.success(), "{logs}");
    assert!(
        logs.contains("refused a record for topic") && logs.contains(&format!("{name}.public.big")),
        "{logs}"
    );
    assert!(
        logs.contains("message.max.bytes"),
        "the fix is named: {logs}"
    );
    assert_eq!(
        logs.matches("snapshot started").count(),
        1,
        "not retried: {logs}"
    );
    assert!(!logs.contains("retrying"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_offsets_path_that_is_a_file_is_refused_with_the_fix() {
    let db = TestDb::new("offsfile").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY)").await;
    let name = unique("offsfile");
    let mut daemon = Daemon::single(&name, &db, &["public.t"], "");
    std::fs::create_dir_all(daemon.dir.join("data")).unwrap();
    std::fs::write(daemon.dir.join("data/offsets"), "not a folder").unwrap();
    daemon.start();
    let status = daemon.wait_exit(Duration::from_secs(60));
    let logs = daemon.logs();
    assert!(!status.success(), "{logs}");
    assert!(logs.contains("[offsets] path"), "{logs}");
    assert!(!logs.contains("retrying"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_daemon_on_the_same_offsets_folder_refuses_to_start() {
    let db = TestDb::new("twodaemons").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY)").await;
    let name = unique("twodaemons");
    let mut daemon = Daemon::single(&name, &db, &["public.t"], "");
    daemon.start();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !daemon.dir.join("data/offsets/.lock").exists() {
        assert!(std::time::Instant::now() < deadline, "{}", daemon.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _, stderr) = daemon.run_command(&["run", "--config", "config/sluice.toml"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("in use by another Sluice daemon") && stderr.contains("[offsets] path"),
        "{stderr}"
    );
    assert!(daemon.try_status().is_none(), "the first daemon still runs");
    assert!(daemon.stop().success());
}
