//! A replication slot is dropped (to take a new snapshot) only when it is provably this
//! connector's: a slot of another database, one no stored position records, or one another
//! consumer has advanced stops the connector with a message naming the slot, its database
//! and the fix, and the slot is left as it was.

mod common;

use std::time::Duration;

use common::*;

async fn slot_database(db: &TestDb, slot: &str) -> Option<String> {
    db.client
        .query_opt(
            "SELECT database::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap()
        .map(|r| r.get(0))
}

/// Runs a daemon with one connector until it ends (no admin API: the daemon ends when its
/// connector has stopped); returns its logs.
fn run_until_failed(daemon: &mut Daemon) -> String {
    daemon.start();
    let status = daemon.wait_exit(Duration::from_secs(60));
    let logs = daemon.logs();
    assert!(!status.success(), "{logs}");
    logs
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slot_of_another_database_is_never_dropped() {
    let ours = TestDb::new("slotours").await;
    let theirs = TestDb::new("slottheirs").await;
    ours.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);")
        .await;
    let name = unique("slotdb");
    theirs
        .exec(&format!(
            "SELECT pg_create_logical_replication_slot('{name}', 'pgoutput')"
        ))
        .await;
    let mut daemon = Daemon::new(
        "",
        &[(
            "c.toml",
            pg_connector(&name, &name, &ours, &["public.t"], ""),
        )],
    );
    let logs = run_until_failed(&mut daemon);
    assert!(
        logs.contains("Sluice cannot prove it is this connector's"),
        "{logs}"
    );
    assert!(
        logs.contains(&theirs.name),
        "names the slot's database: {logs}"
    );
    assert!(logs.contains("pg_drop_replication_slot"), "{logs}");
    assert!(!logs.contains("retrying"), "{logs}");
    assert_eq!(slot_database(&ours, &name).await, Some(theirs.name.clone()));
    theirs
        .exec(&format!("SELECT pg_drop_replication_slot('{name}')"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slot_no_stored_position_records_is_never_dropped() {
    let db = TestDb::new("slotforeign").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);")
        .await;
    let name = unique("slotforeign");
    db.exec(&format!(
        "SELECT pg_create_logical_replication_slot('{name}', 'pgoutput')"
    ))
    .await;
    let before = db.confirmed_flush(&name).await;
    let mut daemon = Daemon::new(
        "",
        &[("c.toml", pg_connector(&name, &name, &db, &["public.t"], ""))],
    );
    let logs = run_until_failed(&mut daemon);
    assert!(
        logs.contains("no stored position of this connector records it"),
        "{logs}"
    );
    assert!(logs.contains("postgres.slot"), "{logs}");
    assert_eq!(
        db.confirmed_flush(&name).await,
        before,
        "the slot is untouched"
    );
    db.exec(&format!("SELECT pg_drop_replication_slot('{name}')"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn its_own_slot_is_recreated_for_a_snapshot_but_not_once_another_consumer_advanced_it() {
    let db = TestDb::new("slotown").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1), (2, 2);")
        .await;
    let name = unique("slotown");
    let topic = format!("{name}.public.t");
    let connector = pg_connector(
        &name,
        &name,
        &db,
        &["public.t"],
        "[format]\nschemas = false\n[snapshot]\nmode = \"always\"",
    );
    let mut daemon = Daemon::new("", &[("c.toml", connector)]);
    daemon.start();
    read_topic(&topic, 2, Duration::from_secs(60));
    let lsn = db.current_lsn().await;
    wait_slot_and_offset(&db, &daemon, &name, lsn, Duration::from_secs(60)).await;
    let stored = daemon.offset(&name).expect("offset stored");
    assert!(
        stored["position"]["slot"]["database_oid"]
            .as_u64()
            .is_some(),
        "the slot is recorded with the position: {stored}"
    );
    assert!(daemon.stop().success());

    // `always`: its own slot is dropped and created again, and the snapshot read again.
    db.exec("INSERT INTO t VALUES (3, 3)").await;
    daemon.start();
    let reads = |msgs: &[Msg]| -> Vec<i64> {
        msgs.iter()
            .filter_map(|m| m.value.as_ref().map(payload))
            .filter(|v| v["op"] == "r")
            .map(|v| v["after"]["id"].as_i64().unwrap())
            .collect()
    };
    let msgs = read_topic_until(&topic, Duration::from_secs(60), |m| reads(m).len() >= 5);
    let snapshot_ids = reads(&msgs);
    assert_eq!(snapshot_ids, [1, 2, 1, 2, 3], "{}", daemon.logs());
    let lsn = db.current_lsn().await;
    wait_slot_and_offset(&db, &daemon, &name, lsn, Duration::from_secs(60)).await;
    assert!(daemon.stop().success());

    // Another consumer moves the slot past the stored position: no longer provably ours.
    // (The test server commits asynchronously; the slot advances only to flushed WAL.)
    db.exec("BEGIN; SET LOCAL synchronous_commit = on; INSERT INTO t VALUES (4, 4); COMMIT;")
        .await;
    db.exec(&format!(
        "SELECT pg_replication_slot_advance('{name}', pg_current_wal_lsn())"
    ))
    .await;
    let advanced = db.confirmed_flush(&name).await;
    let stored = daemon.offset(&name).unwrap()["position"]["resume_lsn"].as_u64();
    assert!(advanced > stored, "{advanced:?} {stored:?}");
    let logs = run_until_failed(&mut daemon);
    assert!(logs.contains("another consumer has confirmed it"), "{logs}");
    assert_eq!(
        db.confirmed_flush(&name).await,
        advanced,
        "the slot is untouched"
    );
    db.exec(&format!("SELECT pg_drop_replication_slot('{name}')"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slot_held_by_a_stale_reader_is_waited_for_or_taken_with_terminate_stale_walsender() {
    let db = TestDb::new("stale").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY)").await;
    let name = unique("stale");
    let mut daemon = Daemon::single(&name, &db, &["public.t"], "");
    daemon.start();
    wait_for_slot(&db, &name, &daemon).await;
    wait_snapshot_done(&daemon, &name).await;
    assert!(daemon.stop().success());
    // Another session holds the slot (as a frozen previous owner's walsender would).
    let bin = std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let mut holder = std::process::Command::new(format!("{bin}/pg_recvlogical"))
        .args([
            "-d",
            &db.url(),
            "-S",
            &name,
            "--start",
            "-o",
            "proto_version=1",
            "-o",
        ])
        .arg(format!("publication_names={name}"))
        .args(["-f", "/dev/null"])
        .spawn()
        .expect("pg_recvlogical");
    let active = || async {
        db.client
            .query_one(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                &[&name],
            )
            .await
            .unwrap()
            .get::<_, bool>(0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !active().await {
        assert!(
            std::time::Instant::now() < deadline,
            "pg_recvlogical did not attach"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Without the setting: the connector waits, saying why and what would end the wait.
    daemon.start();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !daemon.logs().contains("terminate_stale_walsender = true") {
        assert!(std::time::Instant::now() < deadline, "{}", daemon.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(daemon.stop().success());
    // With it: the stale session is ended and the connector streams.
    let file = daemon.dir.join("connectors/c.toml");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "[postgres]\n",
        "[postgres]\nterminate_stale_walsender = true\n",
    );
    std::fs::write(&file, text).unwrap();
    daemon.start();
    db.exec("INSERT INTO t VALUES (1)").await;
    let msgs = read_topic(&format!("{name}.public.t"), 1, Duration::from_secs(60));
    assert_eq!(msgs.len(), 1, "{}", daemon.logs());
    assert!(daemon
        .logs()
        .contains("ended the session that held the replication slot"));
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn slots_are_listed_with_their_owner_and_an_unused_one_can_be_dropped() {
    let db = TestDb::new("slotcmd").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY)").await;
    let name = unique("slotcmd");
    let orphan = unique("orphan");
    db.exec(&format!(
        "SELECT pg_create_logical_replication_slot('{orphan}', 'pgoutput')"
    ))
    .await;
    let mut daemon = Daemon::single(&name, &db, &["public.t"], "");
    daemon.start();
    wait_for_slot(&db, &name, &daemon).await;
    let (status, out, err) =
        daemon.run_command(&["slots", "list", "--config", "config/sluice.toml"]);
    assert!(status.success(), "{err}");
    let line = |slot: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{slot}\t")))
            .unwrap_or_else(|| panic!("{slot} not listed:\n{out}"))
            .split('\t')
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let ours = line(&name);
    assert_eq!(
        (ours[2].as_str(), ours[3].as_str()),
        (name.as_str(), "true"),
        "{out}"
    );
    let theirs = line(&orphan);
    assert_eq!(
        (theirs[2].as_str(), theirs[3].as_str()),
        ("not-sluice's", "false"),
        "{out}"
    );
    assert!(theirs[4].parse::<i64>().is_ok(), "lag in bytes: {out}");
    // validate points the orphan out (and the server's unlimited WAL retention), without
    // counting them as problems.
    let (_, out, _) = daemon.run_command(&["validate", "--config", "config/sluice.toml"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("warning: replication slot")
                && l.contains(&orphan)
                && l.contains("is not Sluice's")
                && !l.contains("slots drop")),
        "{out}"
    );
    assert!(
        out.contains("warning:") && out.contains("max_slot_wal_keep_size is -1"),
        "{out}"
    );
    // The connector's slot is in use: refused. A slot that is not Sluice's goes only with
    // --force.
    let (status, _, err) =
        daemon.run_command(&["slots", "drop", "--config", "config/sluice.toml", &name]);
    assert!(!status.success() && err.contains("in use"), "{err}");
    let (status, _, err) =
        daemon.run_command(&["slots", "drop", "--config", "config/sluice.toml", &orphan]);
    assert!(!status.success() && err.contains("not Sluice's"), "{err}");
    assert!(slot_database(&db, &orphan).await.is_some());
    let (status, _, err) = daemon.run_command(&[
        "slots",
        "drop",
        "--config",
        "config/sluice.toml",
        "--force",
        &orphan,
    ]);
    assert!(status.success(), "{err}");
    assert!(slot_database(&db, &orphan).await.is_none());
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn drop_slot_on_stop_releases_the_slot_and_the_next_start_is_a_first_start() {
    let db = TestDb::new("dropstop").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);")
        .await;
    let name = unique("dropstop");
    let mut daemon = Daemon::single(&name, &db, &["public.t"], "");
    let file = daemon.dir.join("connectors/c.toml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("[postgres]\n", "[postgres]\ndrop_slot_on_stop = true\n");
    std::fs::write(&file, text).unwrap();
    daemon.start();
    let topic = format!("{name}.public.t");
    assert_eq!(read_topic(&topic, 1, Duration::from_secs(60)).len(), 1);
    assert!(daemon.stop().success());
    assert!(
        slot_database(&db, &name).await.is_none(),
        "{}",
        daemon.logs()
    );
    assert!(
        daemon.offset(&name).is_none(),
        "the position went with the slot"
    );
    // The next start takes a new snapshot (nothing is silently skipped).
    db.exec("INSERT INTO t VALUES (2)").await;
    daemon.start();
    let msgs = read_topic(&topic, 3, Duration::from_secs(60));
    let snapshot_ids: Vec<i64> = msgs[1..]
        .iter()
        .map(|m| {
            m.value.as_ref().unwrap()["payload"]["after"]["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(snapshot_ids, [1, 2], "{}", daemon.logs());
    assert!(daemon.stop().success());
}

/// Resuming is checked as much as dropping: a slot another consumer moved past the stored
/// position has skipped changes for good, and the connector says so instead of streaming on.
#[tokio::test(flavor = "multi_thread")]
async fn resuming_on_a_slot_another_consumer_advanced_is_refused() {
    let db = TestDb::new("slotresume").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1);")
        .await;
    let name = unique("slotresume");
    let topic = format!("{name}.public.t");
    let mut daemon = Daemon::single(&name, &db, &["public.t"], "[format]\nschemas = false");
    daemon.start();
    read_topic(&topic, 1, Duration::from_secs(60));
    wait_snapshot_done(&daemon, &name).await;
    let lsn = db.current_lsn().await;
    wait_slot_and_offset(&db, &daemon, &name, lsn, Duration::from_secs(60)).await;
    assert!(daemon.stop().success());
    db.exec("BEGIN; SET LOCAL synchronous_commit = on; INSERT INTO t VALUES (2, 2); COMMIT;")
        .await;
    db.exec(&format!(
        "SELECT pg_replication_slot_advance('{name}', pg_current_wal_lsn())"
    ))
    .await;
    let advanced = db.confirmed_flush(&name).await;
    let logs = run_until_failed(&mut daemon);
    assert!(
        logs.contains("is not the one this connector's stored position was read from")
            && logs.contains("another consumer has confirmed it"),
        "{logs}"
    );
    assert_eq!(
        db.confirmed_flush(&name).await,
        advanced,
        "the slot is untouched"
    );
    db.exec(&format!("SELECT pg_drop_replication_slot('{name}')"))
        .await;
}

/// `no_data` with a slot no stored position records: refused, never taken over (it may be
/// another consumer's, or another connector's file copied).
#[tokio::test(flavor = "multi_thread")]
async fn no_data_never_adopts_a_slot_it_cannot_prove() {
    let db = TestDb::new("slotadopt").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY)").await;
    let name = unique("slotadopt");
    db.exec(&format!(
        "SELECT pg_create_logical_replication_slot('{name}', 'pgoutput')"
    ))
    .await;
    let before = db.confirmed_flush(&name).await;
    let mut daemon = Daemon::single(&name, &db, &["public.t"], "[snapshot]\nmode = \"no_data\"");
    let logs = run_until_failed(&mut daemon);
    assert!(
        logs.contains("already exists") && logs.contains("does not take over a slot"),
        "{logs}"
    );
    assert_eq!(
        db.confirmed_flush(&name).await,
        before,
        "the slot is untouched"
    );
    db.exec(&format!("SELECT pg_drop_replication_slot('{name}')"))
        .await;
}

/// `sluice offsets reset` makes the next start a first start (a new snapshot on a new slot),
/// not a connector that refuses its own slot.
#[tokio::test(flavor = "multi_thread")]
async fn offsets_reset_makes_the_next_start_a_first_start() {
    let db = TestDb::new("slotreset").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1);")
        .await;
    let name = unique("slotreset");
    let topic = format!("{name}.public.t");
    let mut daemon = Daemon::single(&name, &db, &["public.t"], "[format]\nschemas = false");
    daemon.start();
    read_topic(&topic, 1, Duration::from_secs(60));
    wait_snapshot_done(&daemon, &name).await;
    assert!(daemon.stop().success());
    let (status, out, err) =
        daemon.run_command(&["offsets", "reset", "--config", "config/sluice.toml", &name]);
    assert!(status.success(), "{out}{err}");
    db.exec("INSERT INTO t VALUES (2, 2)").await;
    daemon.start();
    let reads = |msgs: &[Msg]| -> Vec<i64> {
        msgs.iter()
            .filter_map(|m| m.value.as_ref().map(payload))
            .filter(|v| v["op"] == "r")
            .map(|v| v["after"]["id"].as_i64().unwrap())
            .collect()
    };
    let msgs = read_topic_until(&topic, Duration::from_secs(60), |m| reads(m).len() >= 3);
    assert_eq!(
        reads(&msgs),
        [1, 1, 2],
        "a new snapshot; logs:\n{}",
        daemon.logs()
    );
    db.exec("INSERT INTO t VALUES (3, 3)").await;
    let msgs = read_topic_until(&topic, Duration::from_secs(60), |m| {
        m.iter().any(|m| {
            m.value
                .as_ref()
                .is_some_and(|v| payload(v)["after"]["id"] == 3)
        })
    });
    assert!(
        msgs.iter()
            .any(|m| m.value.as_ref().is_some_and(|v| payload(v)["op"] == "c")),
        "streams after the new snapshot"
    );
    assert!(daemon.stop().success());
}

/// Positions set by hand are checked against the server: an LSN beyond its WAL end (the
/// slot would be moved past changes not yet written), or a connector no file names (with
/// the Kafka store, a key the connector never reads) is refused, and an import with one such
/// line stores nothing.
#[tokio::test(flavor = "multi_thread")]
async fn positions_beyond_the_wal_end_or_of_unknown_connectors_are_refused() {
    let db = TestDb::new("slotset").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);")
        .await;
    let name = unique("slotset");
    let mut daemon = Daemon::single(&name, &db, &["public.t"], "");
    daemon.start();
    wait_snapshot_done(&daemon, &name).await;
    assert!(daemon.stop().success());
    let stored = daemon.offset(&name).unwrap();
    let cfg = ["--config", "config/sluice.toml"];
    let run = |args: &[&str]| {
        let mut all = vec!["offsets"];
        all.extend_from_slice(args);
        all.extend_from_slice(&cfg);
        daemon.run_command(&all)
    };
    let (status, _, err) = run(&["set", &name, "--lsn", "FF/0"]);
    assert!(
        !status.success() && err.contains("beyond the server's WAL end"),
        "{err}"
    );
    let (status, _, err) = run(&["set", "nobody", "--lsn", "0/1"]);
    assert!(
        !status.success() && err.contains("no valid connector file"),
        "{err}"
    );
    // An import whose second line is refused stores nothing, the first line included.
    let lsn = db.current_lsn().await;
    let input = daemon.dir.join("import.jsonl");
    std::fs::write(
        &input,
        format!(
            "{{\"connector\": \"{name}\", \"offset\": {{\"lsn\": {lsn}}}}}\n{{\"connector\": \"{name}\", \"offset\": {{\"lsn\": {}}}}}\n",
            0xFF_0000_0000u64
        ),
    )
    .unwrap();
    let (status, _, err) = run(&["import", "--input", input.to_str().unwrap()]);
    assert!(
        !status.success() && err.contains("nothing was imported"),
        "{err}"
    );
    assert_eq!(
        daemon.offset(&name).unwrap()["position"],
        stored["position"]
    );
    // Within the WAL: accepted.
    let (status, _, err) = run(&["set", &name, "--lsn", &sluice::position::format_lsn(lsn)]);
    assert!(status.success(), "{err}");
    assert_eq!(daemon.offset(&name).unwrap()["position"]["resume_lsn"], lsn);
}
