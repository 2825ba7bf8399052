//! Acceptance 6 against MariaDB: every wrong server setting, missing privileges, a server id
//! already in use, an unreachable server and a purged start position each give a clear
//! message naming the setting, its value and the fix, and a non-zero exit.

mod common;

use std::time::Duration;

use common::mysql::*;
use common::*;
use mysql_async::prelude::Queryable;

fn validate(daemon: &Daemon) -> (bool, String) {
    let (status, out, err) = daemon.run_command(&["validate", "--config", "config/sluice.toml"]);
    (status.success(), format!("{out}{err}"))
}

fn daemon_for(base: &str, db: &str, server_id: u32, extra: &str) -> Daemon {
    let name = unique("mybad");
    Daemon::new(
        "",
        &[(
            "c.toml",
            my_connector(&name, &name, base, &[format!("{db}.t")], server_id, extra),
        )],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_server_settings_are_named_with_their_fix() {
    let server = ExtraServer::start(
        "settings",
        "--skip-log-bin --binlog-format=STATEMENT --binlog-row-image=MINIMAL --binlog-row-metadata=MINIMAL",
    );
    let mut db = MyDb::on(&server.url(), "mybad").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY)").await;
    let mut daemon = daemon_for(&server.url(), &db.name, server_id(), "");
    let (ok, out) = validate(&daemon);
    assert!(!ok, "validate must fail: {out}");
    for want in [
        "log_bin is OFF",
        "set log_bin",
        "binlog_format is STATEMENT; Sluice needs ROW: run SET GLOBAL binlog_format = 'ROW'",
        "binlog_row_image is MINIMAL; Sluice needs FULL: run SET GLOBAL binlog_row_image = 'FULL'",
        "binlog_row_metadata is MINIMAL; Sluice needs FULL: run SET GLOBAL binlog_row_metadata = 'FULL'",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(!out.contains("sluice:sluice"), "no password printed: {out}");
    // `run` stops the connector with the first problem and exits non-zero.
    daemon.start();
    let status = daemon.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1));
    assert!(
        daemon.logs().contains("log_bin is OFF"),
        "{}",
        daemon.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_privileges_and_tables_are_named() {
    let mut db = MyDb::new("mybad").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY)").await;
    // A connector with everything right validates cleanly.
    let good = daemon_for(&my_base(), &db.name, server_id(), "");
    let (ok, out) = validate(&good);
    assert!(ok, "a correct MySQL connector validates: {out}");
    let user = unique("np");
    db.exec(&format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"))
        .await;
    db.exec(&format!("GRANT SELECT ON `{}`.* TO '{user}'@'%'", db.name))
        .await;
    let url = my_base().replace("sluice:sluice", &format!("{user}:pw"));
    let daemon = daemon_for(&url, &db.name, server_id(), "");
    let (ok, out) = validate(&daemon);
    assert!(!ok);
    assert!(
        out.contains("lacks the REPLICATION SLAVE privilege"),
        "{out}"
    );
    assert!(out.contains("GRANT REPLICATION SLAVE ON *.*"), "{out}");
    assert!(
        out.contains("lacks the REPLICATION CLIENT privilege"),
        "{out}"
    );
    assert!(!out.contains(":pw@"), "no password printed: {out}");

    // A user that may not read the table: it does not see it.
    let other = unique("np");
    db.exec(&format!("CREATE USER '{other}'@'%' IDENTIFIED BY 'pw'"))
        .await;
    db.exec(&format!(
        "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{other}'@'%'"
    ))
    .await;
    let url = my_base().replace("sluice:sluice", &format!("{other}:pw"));
    let daemon = daemon_for(&url, &db.name, server_id(), "");
    let (ok, out) = validate(&daemon);
    assert!(!ok);
    assert!(out.contains(&format!("mysql.tables names {}.t, which does not exist or the user cannot see (it needs SELECT)", db.name)), "{out}");
    assert!(!out.contains("REPLICATION SLAVE privilege"), "{out}");

    // Unreachable server.
    let url = format!("mysql://sluice:sluice@127.0.0.1:{}", free_port());
    let daemon = daemon_for(&url, &db.name, server_id(), "");
    let (ok, out) = validate(&daemon);
    assert!(!ok);
    assert!(
        out.contains("cannot connect to MySQL at 127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains("check that the server runs there"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_id_in_use_is_refused() {
    let mut db = MyDb::new("mybad").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY)").await;
    let id = server_id();
    let mut running = daemon_for(&my_base(), &db.name, id, "");
    running.start();
    // Wait until its binlog session is registered.
    let mut conn = my_connect(&my_base()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let hosts: Vec<mysql_async::Row> = conn.query("SHOW SLAVE HOSTS").await.unwrap();
        if hosts.iter().any(|r| r.get::<u32, _>(0) == Some(id)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replica not registered; logs:\n{}",
            running.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let second = daemon_for(&my_base(), &db.name, id, "");
    let (ok, out) = validate(&second);
    assert!(!ok);
    assert!(
        out.contains(&format!(
            "mysql.server_id {id} is already used by a connected replica"
        )),
        "{out}"
    );
    // `run` (another daemon, another offsets folder): the connector stops with the fix
    // instead of taking turns with the first one; the first keeps streaming.
    let mut second = second;
    second.start();
    let status = second.wait_exit(Duration::from_secs(60));
    let logs = second.logs();
    assert!(!status.success(), "{logs}");
    assert!(
        logs.contains(&format!(
            "mysql.server_id {id} is already used by a connected replica"
        )),
        "{logs}"
    );
    assert!(
        running.try_status().is_none(),
        "the first daemon still runs"
    );
    let hosts: Vec<mysql_async::Row> = conn.query("SHOW SLAVE HOSTS").await.unwrap();
    assert!(
        hosts.iter().any(|r| r.get::<u32, _>(0) == Some(id)),
        "still registered"
    );
    // The server's own id.
    let own = daemon_for(&my_base(), &db.name, 1, "");
    let (ok, out) = validate(&own);
    assert!(!ok);
    assert!(
        out.contains("mysql.server_id 1 is the server's own server_id"),
        "{out}"
    );
    assert!(running.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn purged_position_stops_with_a_clear_error_or_resnapshots_when_needed() {
    let server = ExtraServer::start("purge", "");
    let mut db = MyDb::on(&server.url(), "mybad").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, v INT)").await;
    db.exec("INSERT INTO t VALUES (1, 1), (2, 2)").await;
    let name = unique("mypurge");
    let (table, sid) = (format!("{}.t", db.name), server_id());
    let file = |mode: &str| {
        my_connector(
            &name,
            &name,
            &server.url(),
            std::slice::from_ref(&table),
            sid,
            &format!("[snapshot]\nmode = \"{mode}\"\n[format]\nschemas = false"),
        )
    };
    let mut daemon = Daemon::new("", &[("c.toml", file("initial"))]);
    daemon.start();
    let topic = format!("{name}.{}.t", db.name);
    assert_eq!(read_topic(&topic, 2, Duration::from_secs(60)).len(), 2);
    assert!(daemon.stop().success());
    // While Sluice is stopped: more changes, then the binlogs holding them are purged.
    db.exec("INSERT INTO t VALUES (3, 3)").await;
    db.exec("FLUSH BINARY LOGS").await;
    db.exec("INSERT INTO t VALUES (4, 4)").await;
    db.exec("FLUSH BINARY LOGS").await;
    // The server keeps files a replica session still reads: retry until the old session is
    // gone and the purge took them.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = db.rows("SHOW BINARY LOGS").await;
        let first: String = rows.first().unwrap().get(0).unwrap();
        let last: String = rows.last().unwrap().get(0).unwrap();
        if first == last {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "binlogs not purged: {first}..{last}"
        );
        db.exec(&format!("PURGE BINARY LOGS TO '{last}'")).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    daemon.start();
    let status = daemon.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1));
    let logs = daemon.logs();
    assert!(
        logs.contains("is no longer on the server") && logs.contains("was purged"),
        "{logs}"
    );
    assert!(
        logs.contains("snapshot.mode = \\\"when_needed\\\"")
            || logs.contains("snapshot.mode = \"when_needed\""),
        "{logs}"
    );
    // when_needed: a new snapshot, then streaming; the topic replays to the table.
    std::fs::write(daemon.dir.join("connectors/c.toml"), file("when_needed")).unwrap();
    daemon.start();
    let expected: std::collections::BTreeMap<i64, serde_json::Value> = (1..=4)
        .map(|i| (i, serde_json::json!({"id": i, "v": i})))
        .collect();
    let msgs = read_until_state(&topic, &expected, Duration::from_secs(60)).await;
    assert!(replay(&msgs, "id") == expected, "logs:\n{}", daemon.logs());
    assert!(
        daemon.logs().contains("taking a new snapshot"),
        "{}",
        daemon.logs()
    );
    assert!(daemon.stop().success());
}

#[test]
fn config_errors_name_the_key() {
    let base = my_base();
    let cases = [
        ("name = \"a\"\nsource = \"mysql\"\ntopic_prefix = \"a\"\n", "mysql", "is missing"),
        (
            "name = \"a\"\nsource = \"mysql\"\ntopic_prefix = \"a\"\n[mysql]\nurl = \"postgres://x\"\nserver_id = 5\ntables = [\"d.t\"]\n",
            "mysql.url",
            "must start with mysql://",
        ),
        (
            &*format!("name = \"a\"\nsource = \"mysql\"\ntopic_prefix = \"a\"\n[mysql]\nurl = \"{base}\"\nserver_id = 0\ntables = [\"d.t\"]\n"),
            "mysql.server_id",
            "must be between 1 and 4294967295",
        ),
        (
            &*format!("name = \"a\"\nsource = \"mysql\"\ntopic_prefix = \"a\"\n[mysql]\nurl = \"{base}\"\nserver_id = 5\ntables = [\"justatable\"]\n"),
            "mysql.tables",
            "write database.table, database.* or re:<regex>",
        ),
    ];
    for (text, key, problem) in cases {
        let daemon = Daemon::new("", &[("c.toml", text.to_string())]);
        let (ok, out) = validate(&daemon);
        assert!(!ok, "{text}");
        assert!(
            out.contains(key) && out.contains(problem),
            "{key}: {problem} not in {out}"
        );
        assert!(!out.contains("sluice:sluice"), "{out}");
    }
}
