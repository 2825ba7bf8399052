//! Acceptance 6: bad inputs give a clear message naming the problem, a non-zero exit, and
//! nothing on the broker.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

/// A second cluster with `wal_level = replica`, for the one check that needs it.
struct ReplicaCluster {
    dir: std::path::PathBuf,
    port: u16,
}

fn as_pg_owner(cmd: &str, args: &[&str]) -> Command {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", cmd]).args(args);
        c
    } else {
        let mut c = Command::new(cmd);
        c.args(args);
        c
    }
}

impl ReplicaCluster {
    fn start() -> ReplicaCluster {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(unique("pgreplica"));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown")
            .args(["postgres", dir.to_str().unwrap()])
            .status();
        let bin = "/usr/lib/postgresql/15/bin";
        let data = dir.join("data");
        let ok = as_pg_owner(
            &format!("{bin}/initdb"),
            &["-D", data.to_str().unwrap(), "-U", "sluice", "--auth=trust"],
        )
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
        assert!(ok.success(), "initdb");
        std::fs::write(
            data.join("postgresql.auto.conf"),
            format!("port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nwal_level = replica\n", dir.display()),
        )
        .unwrap();
        let log = dir.join("log");
        let ok = as_pg_owner(
            &format!("{bin}/pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        )
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
        assert!(ok.success(), "pg_ctl start");
        ReplicaCluster { dir, port }
    }
}

impl Drop for ReplicaCluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = as_pg_owner(
            "/usr/lib/postgresql/15/bin/pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        )
        .stdout(std::process::Stdio::null())
        .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Case {
    what: &'static str,
    sink: String,
    connectors: Vec<(&'static str, String)>,
    expect: Vec<String>,
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_inputs_are_named_and_nothing_is_written() {
    let db = TestDb::new("bad").await;
    let role = unique("norepl");
    db.exec(&format!("CREATE TABLE items (id int PRIMARY KEY); CREATE ROLE {role} LOGIN PASSWORD 'pw-not-shown';")).await;
    let replica = tokio::task::spawn_blocking(ReplicaCluster::start)
        .await
        .unwrap();
    let prefix = unique("bad");
    let good = |name: &str| pg_connector(name, &prefix, &db, &["public.items"], "");
    let kafka = String::new();
    let no_repl_url = db
        .url()
        .replace("sluice:sluice@", &format!("{role}:pw-not-shown@"));
    let cases = vec![
        Case {
            what: "unknown key",
            sink: kafka.clone(),
            connectors: vec![(
                "a.toml",
                good("c1").replace("tombstones", "x") + "tombstones_on_dlete = true\n",
            )],
            expect: vec![
                "a.toml".into(),
                "unknown field `tombstones_on_dlete`".into(),
            ],
        },
        Case {
            what: "missing key",
            sink: kafka.clone(),
            connectors: vec![("a.toml", good("c2").replace("slot = \"c2\"\n", ""))],
            expect: vec!["a.toml".into(), "missing field `slot`".into()],
        },
        Case {
            what: "wrong type",
            sink: kafka.clone(),
            connectors: vec![(
                "a.toml",
                good("c3").replace("tombstones", "x").replace(
                    "name = \"c3\"",
                    "name = \"c3\"\ntombstones_on_delete = \"yes\"",
                ),
            )],
            expect: vec![
                "a.toml".into(),
                "tombstones_on_delete".into(),
                "invalid type".into(),
            ],
        },
        Case {
            what: "unreachable database",
            sink: kafka.clone(),
            connectors: vec![(
                "a.toml",
                good("c4").replace(&common::pg_base(), "postgres://sluice:sluice@127.0.0.1:1"),
            )],
            expect: vec![
                "a.toml".into(),
                "cannot connect to PostgreSQL at 127.0.0.1:1".into(),
            ],
        },
        Case {
            what: "wal_level not logical",
            sink: kafka.clone(),
            connectors: vec![(
                "a.toml",
                good("c5").replace(
                    &db.url(),
                    &format!("postgres://sluice@127.0.0.1:{}/postgres", replica.port),
                ),
            )],
            expect: vec![
                "wal_level is 'replica'".into(),
                "wal_level = logical".into(),
            ],
        },
        Case {
            what: "user without REPLICATION",
            sink: kafka.clone(),
            connectors: vec![("a.toml", good("c6").replace(&db.url(), &no_repl_url))],
            expect: vec![format!("\"{role}\" may not replicate"), "ALTER ROLE".into()],
        },
        Case {
            what: "missing table",
            sink: kafka.clone(),
            connectors: vec![(
                "a.toml",
                good("c7").replace("public.items", "public.nosuch"),
            )],
            expect: vec!["\"public.nosuch\"".into(), "no such table".into()],
        },
        Case {
            what: "unreachable broker",
            sink: "type = \"kafka\"\nbootstrap_servers = \"127.0.0.1:1\"".into(),
            connectors: vec![("a.toml", good("c8"))],
            expect: vec![
                "sluice.toml".into(),
                "cannot reach the Kafka brokers at 127.0.0.1:1".into(),
            ],
        },
        Case {
            what: "duplicate connector name",
            sink: kafka.clone(),
            connectors: vec![
                ("a.toml", good("c9")),
                (
                    "b.toml",
                    good("c9").replace("slot = \"c9\"", "slot = \"c9b\""),
                ),
            ],
            expect: vec!["b.toml".into(), "\"c9\" is already used by".into()],
        },
        Case {
            what: "illegal topic prefix",
            sink: kafka.clone(),
            connectors: vec![(
                "a.toml",
                good("c10").replace(
                    &format!("topic_prefix = \"{prefix}\""),
                    "topic_prefix = \"bad prefix!\"",
                ),
            )],
            expect: vec![
                "a.toml".into(),
                "topic_prefix".into(),
                "Kafka topic names cannot hold".into(),
            ],
        },
        Case {
            what: "unreachable schema registry",
            sink: kafka.clone(),
            connectors: vec![(
                "a.toml",
                good("c13") + "[format]\nvalue = \"avro\"\nregistry_url = \"http://127.0.0.1:1\"\n",
            )],
            expect: vec![
                "format.registry_url".into(),
                "schema registry at http://127.0.0.1:1 is unreachable".into(),
            ],
        },
        Case {
            what: "unset environment variable",
            sink: kafka.clone(),
            connectors: vec![(
                "a.toml",
                good("c11").replace("sluice:sluice@", "sluice:${SLUICE_TEST_UNSET_PASSWORD}@"),
            )],
            expect: vec!["SLUICE_TEST_UNSET_PASSWORD".into(), "not set".into()],
        },
    ];
    for case in cases {
        let daemon = Daemon::new(&case.sink, &case.connectors);
        let (status, stdout, stderr) = tokio::task::spawn_blocking({
            let dir = daemon.dir.clone();
            move || {
                let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
                    .args(["validate", "--config", "config/sluice.toml"])
                    .current_dir(dir)
                    .output()
                    .unwrap();
                (
                    out.status,
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                )
            }
        })
        .await
        .unwrap();
        assert!(
            !status.success(),
            "{}: validate must fail; stdout:\n{stdout}",
            case.what
        );
        for e in &case.expect {
            assert!(
                stdout.contains(e.as_str()),
                "{}: expected `{e}` in:\n{stdout}\n{stderr}",
                case.what
            );
        }
        assert!(
            !stdout.contains("pw-not-shown") && !stderr.contains("pw-not-shown"),
            "{}: password leaked",
            case.what
        );
        assert!(
            !stdout.contains("sluice:sluice@"),
            "{}: URL with password leaked:\n{stdout}",
            case.what
        );
    }
    // `run` refuses an invalid configuration with exit code 2 before touching anything.
    let mut daemon = Daemon::new(
        "",
        &[(
            "a.toml",
            good("c12").replace("tombstones", "x") + "bogus = 1\n",
        )],
    );
    daemon.start();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = daemon.try_status() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run did not exit on a bad config"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(2));
    assert!(
        !topics().iter().any(|t| t.starts_with(&prefix)),
        "a bad input wrote to the broker"
    );
    // No slot was created either.
    assert!(db.confirmed_flush("c7").await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn good_configuration_validates() {
    let db = TestDb::new("good").await;
    db.exec("CREATE TABLE items (id int PRIMARY KEY)").await;
    let name = unique("ok");
    let daemon = Daemon::new(
        "",
        &[(
            "a.toml",
            pg_connector(&name, &name, &db, &["public.items", "public.*"], ""),
        )],
    );
    let (status, stdout, _) = tokio::task::spawn_blocking(move || {
        daemon.run_command(&["validate", "--config", "config/sluice.toml"])
    })
    .await
    .unwrap();
    assert!(status.success(), "{stdout}");
    assert!(stdout.contains("ok: 1 connector(s) ready"), "{stdout}");
    let version = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("sluice "));
    for sub in [
        &["--help"][..],
        &["run", "--help"],
        &["validate", "--help"],
        &["offsets", "show", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(sub)
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{sub:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_offsets_file_is_named_and_the_others_are_still_shown() {
    let db = TestDb::new("corrupt").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY)").await;
    let good = unique("good");
    let bad = unique("bad");
    let daemon = Daemon::new(
        "",
        &[
            ("a.toml", pg_connector(&good, &good, &db, &["public.t"], "")),
            ("b.toml", pg_connector(&bad, &bad, &db, &["public.t"], "")),
        ],
    );
    let offsets = daemon.dir.join("data/offsets");
    std::fs::create_dir_all(&offsets).unwrap();
    std::fs::write(
        offsets.join(format!("{good}.json")),
        format!(r#"{{"connector":"{good}","position":{{"kind":"postgres","resume_lsn":4096,"snapshot":"done"}},"committed_at_ms":0}}"#),
    )
    .unwrap();
    std::fs::write(offsets.join(format!("{bad}.json")), "{\"connector\": tru").unwrap();
    let (status, stdout, stderr) =
        daemon.run_command(&["offsets", "show", "--config", "config/sluice.toml"]);
    assert!(!status.success());
    assert!(
        stdout.contains(&format!("{good}\tpostgres resume_lsn=0/1000")),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("{bad}.json")) && stderr.contains("delete it to start over"),
        "{stderr}"
    );
    let (status, stdout, _) = daemon.run_command(&["validate", "--config", "config/sluice.toml"]);
    assert!(!status.success());
    assert!(
        stdout.contains(&format!("connector \"{bad}\"")) && stdout.contains(&format!("{bad}.json")),
        "{stdout}"
    );
    assert!(
        !stdout.contains(&format!("connector \"{good}\": offset")),
        "{stdout}"
    );
}
