//! `[postgres] publication_autocreate` (Debezium's `publication.autocreate.mode`):
//! - `filtered` (default) adds to an existing publication the captured tables it lacks at
//!   every start, so a captured table missing from it is no longer silently never seen, and
//!   takes nothing away: a publication shared with another connector (of another daemon) or
//!   a subscriber keeps what it publishes for them; two files of one folder naming one
//!   publication are refused;
//! - `disabled` leaves the publication alone and refuses (at `validate` and at start) one that
//!   does not publish a captured table, naming the tables and the fix;
//! - `all_tables` creates the publication `FOR ALL TABLES`.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;

async fn published(db: &TestDb, publication: &str) -> BTreeSet<String> {
    db.client
        .query(
            "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1",
            &[&publication],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn filtered_adds_what_an_existing_publication_lacks_and_takes_nothing_away() {
    let db = TestDb::new("pubsync").await;
    let name = unique("pubsync");
    // A publication made earlier, by hand: it lacks `b` (captured) and has `c` (not captured).
    db.exec(&format!(
        "CREATE TABLE a (id int PRIMARY KEY);
         CREATE TABLE b (id int PRIMARY KEY);
         CREATE TABLE c (id int PRIMARY KEY);
         CREATE PUBLICATION {name} FOR TABLE a, c;"
    ))
    .await;
    let port = free_port();
    let mut daemon = Daemon::single(&name, &db, &["public.a", "public.b"], "");
    daemon.append_daemon_config(&format!("[api]\nlisten = \"127.0.0.1:{port}\"\n"));
    daemon.start();
    let api = format!("http://127.0.0.1:{port}");
    wait_state(&api, None, &name, "streaming", Duration::from_secs(60)).await;
    // `b` added; `c` stays (the publication may be another consumer's too).
    assert_eq!(
        published(&db, &name).await,
        set(&["public.a", "public.b", "public.c"]),
        "logs:\n{}",
        daemon.logs()
    );
    let logs = daemon.logs();
    assert!(logs.contains("tables added to the publication"), "{logs}");
    assert!(
        logs.contains("also publishes tables this connector does not capture"),
        "{logs}"
    );
    // Changes of `c` are not published (not captured), and counted.
    db.exec("INSERT INTO c VALUES (5)").await;
    // Changes of `b` now arrive (before, they were never sent by the server).
    db.exec("INSERT INTO b VALUES (1)").await;
    let msgs = read_topic(&format!("{name}.public.b"), 1, Duration::from_secs(60));
    assert_eq!(msgs.len(), 1, "logs:\n{}", daemon.logs());
    assert_eq!(payload(msgs[0].value.as_ref().unwrap())["after"]["id"], 1);

    // The file now captures `c` too: the connector restarts and streams `c`'s changes.
    let file = daemon.dir.join("connectors/c.toml");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "tables = [\"public.a\", \"public.b\"]",
        "tables = [\"public.a\", \"public.b\", \"public.c\"]",
    );
    std::fs::write(&file, text).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !daemon.logs().contains("connector file changed") {
        assert!(std::time::Instant::now() < deadline, "{}", daemon.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_state(&api, None, &name, "streaming", Duration::from_secs(60)).await;
    db.exec("INSERT INTO c VALUES (7)").await;
    let msgs = read_topic(&format!("{name}.public.c"), 1, Duration::from_secs(60));
    assert_eq!(msgs.len(), 1, "logs:\n{}", daemon.logs());
    assert_eq!(payload(msgs[0].value.as_ref().unwrap())["after"]["id"], 7);
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn disabled_refuses_a_publication_that_misses_a_captured_table() {
    let db = TestDb::new("pubdis").await;
    let name = unique("pubdis");
    db.exec(&format!(
        "CREATE TABLE a (id int PRIMARY KEY);
         CREATE TABLE b (id int PRIMARY KEY);
         CREATE PUBLICATION {name} FOR TABLE a;"
    ))
    .await;
    let mut daemon = Daemon::single(&name, &db, &["public.a", "public.b"], "");
    let file = daemon.dir.join("connectors/c.toml");
    let text = std::fs::read_to_string(&file).unwrap() + "publication_autocreate = \"disabled\"\n";
    std::fs::write(&file, text).unwrap();
    let want = format!(
        "postgres.publication \"{name}\" does not publish public.b, which postgres.tables captures"
    );
    let (status, stdout, stderr) = daemon.run_command(&["validate"]);
    assert!(!status.success(), "{stdout}");
    assert!(
        stdout.contains(&want)
            && stdout.contains(&format!("ALTER PUBLICATION {name} ADD TABLE public.b")),
        "{stdout}{stderr}"
    );
    // At start the connector stops with the same message; the publication is untouched.
    daemon.start();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !daemon.logs().contains(&want) {
        assert!(
            std::time::Instant::now() < deadline,
            "not refused:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(published(&db, &name).await, set(&["public.a"]));
    daemon.stop();

    // Without a publication, `disabled` says to create one.
    db.exec(&format!("DROP PUBLICATION {name}")).await;
    let (status, stdout, _) = daemon.run_command(&["validate"]);
    assert!(!status.success());
    assert!(
        stdout.contains(&format!(
            "postgres.publication \"{name}\" does not exist and publication_autocreate = \"disabled\" forbids creating it"
        )),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn all_tables_creates_a_publication_for_all_tables() {
    let db = TestDb::new("puball").await;
    let name = unique("puball");
    db.exec("CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1);")
        .await;
    let mut daemon = Daemon::single(&name, &db, &["public.a"], "");
    let file = daemon.dir.join("connectors/c.toml");
    let text =
        std::fs::read_to_string(&file).unwrap() + "publication_autocreate = \"all_tables\"\n";
    std::fs::write(&file, text).unwrap();
    daemon.start();
    let topic = format!("{name}.public.a");
    assert_eq!(read_topic(&topic, 1, Duration::from_secs(60)).len(), 1);
    let all: bool = db
        .client
        .query_one(
            "SELECT puballtables FROM pg_publication WHERE pubname = $1",
            &[&name],
        )
        .await
        .unwrap()
        .get(0);
    assert!(all, "logs:\n{}", daemon.logs());
    // A table created later is published at once (the connector captures only `a`).
    db.exec("CREATE TABLE later (id int PRIMARY KEY); INSERT INTO a VALUES (2);")
        .await;
    assert!(published(&db, &name).await.contains("public.later"));
    assert_eq!(read_topic(&topic, 2, Duration::from_secs(60)).len(), 2);
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_created_later_that_a_regex_selects_is_added_and_captured() {
    let db = TestDb::new("publater").await;
    let name = unique("publater");
    db.exec("CREATE TABLE ev_1 (id int PRIMARY KEY); CREATE TABLE other (id int PRIMARY KEY);")
        .await;
    let port = free_port();
    let mut daemon = Daemon::single(&name, &db, &["re:public\\\\.ev_\\\\d+"], "");
    daemon.append_daemon_config(&format!("[api]\nlisten = \"127.0.0.1:{port}\"\n"));
    daemon.start();
    let api = format!("http://127.0.0.1:{port}");
    wait_state(&api, None, &name, "streaming", Duration::from_secs(60)).await;
    assert_eq!(published(&db, &name).await, set(&["public.ev_1"]));
    db.exec("CREATE TABLE ev_2 (id int PRIMARY KEY); CREATE TABLE ev_x (id int PRIMARY KEY);")
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !published(&db, &name).await.contains("public.ev_2") {
        assert!(
            std::time::Instant::now() < deadline,
            "ev_2 not added:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        published(&db, &name).await,
        set(&["public.ev_1", "public.ev_2"])
    );
    db.exec("INSERT INTO ev_2 VALUES (42)").await;
    let msgs = read_topic(&format!("{name}.public.ev_2"), 1, Duration::from_secs(60));
    assert_eq!(msgs.len(), 1, "logs:\n{}", daemon.logs());
    assert_eq!(payload(msgs[0].value.as_ref().unwrap())["after"]["id"], 42);
    assert!(daemon
        .logs()
        .contains("a table created after the start matches postgres.tables"));
    assert!(daemon.stop().success());
}

/// The review's scenario: connectors `a` (table t1) and `b` (table t2) of two daemons share
/// one publication. Each start only adds; neither takes the other's table away, and both
/// keep receiving their changes across restarts.
#[tokio::test(flavor = "multi_thread")]
async fn a_shared_publication_keeps_every_connectors_tables() {
    let db = TestDb::new("pubshare").await;
    db.exec("CREATE TABLE t1 (id int PRIMARY KEY); CREATE TABLE t2 (id int PRIMARY KEY);")
        .await;
    let publication = unique("pubshare");
    let conn = |name: &str, table: &str| {
        pg_connector(name, name, &db, &[table], "[snapshot]\nmode = \"no_data\"").replace(
            &format!("publication = \"{name}\""),
            &format!("publication = \"{publication}\""),
        )
    };
    let (na, nb) = (unique("pa"), unique("pb"));
    let mut a = Daemon::new("", &[("a.toml", conn(&na, "public.t1"))]);
    let mut b = Daemon::new("", &[("b.toml", conn(&nb, "public.t2"))]);
    a.start();
    wait_for_slot(&db, &na, &a).await;
    b.start();
    wait_for_slot(&db, &nb, &b).await;
    // `a` restarts: the publication keeps `b`'s table.
    assert!(a.stop().success());
    a.start();
    wait_for_slot(&db, &na, &a).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !a
        .logs()
        .contains("also publishes tables this connector does not capture")
    {
        assert!(std::time::Instant::now() < deadline, "{}", a.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        published(&db, &publication).await,
        set(&["public.t1", "public.t2"])
    );
    db.exec("INSERT INTO t1 VALUES (1); INSERT INTO t2 VALUES (2);")
        .await;
    let t1 = read_topic(&format!("{na}.public.t1"), 1, Duration::from_secs(60));
    let t2 = read_topic(&format!("{nb}.public.t2"), 1, Duration::from_secs(60));
    assert_eq!(t1.len(), 1, "{}", a.logs());
    assert_eq!(t2.len(), 1, "{}", b.logs());
    assert!(a.stop().success());
    assert!(b.stop().success());
    // Two files of one folder naming one publication: refused, naming the fix.
    let both = Daemon::new(
        "",
        &[
            ("a.toml", conn(&na, "public.t1")),
            ("b.toml", conn(&nb, "public.t2")),
        ],
    );
    let (status, out, err) = both.run_command(&["validate", "--config", "config/sluice.toml"]);
    let printed = format!("{out}{err}");
    assert!(!status.success(), "{printed}");
    assert!(
        printed.contains("postgres.publication")
            && printed.contains("give each its own publication"),
        "{printed}"
    );
}
