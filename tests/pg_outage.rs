//! Acceptance 4: the broker frozen for 20 seconds during writes, then PostgreSQL restarted
//! during streaming. The daemon recovers by itself and no change is lost.
//!
//! The broker here is a tansu instance of this test's own (so freezing it disturbs no other
//! test); it is frozen with SIGSTOP, which is what a hung or partitioned broker looks like
//! to a client. PostgreSQL is the shared test cluster, restarted with `pg_ctl restart`.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;

struct OwnBroker {
    child: Child,
    port: u16,
}

impl OwnBroker {
    fn start() -> OwnBroker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new("tansu")
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu on PATH (scripts/setup installs it)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        OwnBroker { child, port }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(sig)
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn restart_postgres() {
    let state = std::env::var("SLUICE_STATE_DIR").unwrap_or_else(|_| "/tmp/sluice-dev".into());
    let bin = std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let data = format!("{state}/pg");
    let log = format!("{state}/postgres.log");
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    let pg_ctl = format!("{bin}/pg_ctl");
    let args = [
        "-D",
        data.as_str(),
        "-l",
        log.as_str(),
        "-m",
        "fast",
        "-w",
        "restart",
    ];
    let status = if is_root {
        Command::new("runuser")
            .args(["-u", "postgres", "--", &pg_ctl])
            .args(args)
            .stdout(Stdio::null())
            .status()
    } else {
        Command::new(&pg_ctl)
            .args(args)
            .stdout(Stdio::null())
            .status()
    }
    .unwrap();
    assert!(status.success(), "pg_ctl restart");
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_frozen_and_postgres_restarted_lose_nothing() {
    let broker = tokio::task::spawn_blocking(OwnBroker::start).await.unwrap();
    let brokers = format!("127.0.0.1:{}", broker.port);
    let db = TestDb::new("outage").await;
    db.exec("CREATE TABLE events (id int PRIMARY KEY, note text)")
        .await;
    let name = unique("outage");
    let mut daemon = Daemon::new(
        &format!("type = \"kafka\"\nbootstrap_servers = \"{brokers}\""),
        &[(
            "c.toml",
            pg_connector(
                &name,
                &name,
                &db,
                &["public.events"],
                "[format]\nschemas = false",
            ),
        )],
    );
    daemon.start();

    // A writer that keeps inserting and survives the PostgreSQL restart by reconnecting.
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(1));
    let writer = {
        let (stop, next) = (stop.clone(), next.clone());
        let dbname = db.name.clone();
        tokio::spawn(async move {
            let mut client = connect(&dbname).await;
            while !stop.load(Ordering::Relaxed) {
                let id = next.load(Ordering::SeqCst);
                match client
                    .batch_execute(&format!("INSERT INTO events VALUES ({id}, 'n{id}')"))
                    .await
                {
                    Ok(()) => {
                        next.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        if let Ok((c, conn)) = tokio_postgres::connect(
                            &format!("{}/{dbname}", pg_base()),
                            tokio_postgres::NoTls,
                        )
                        .await
                        {
                            tokio::spawn(conn);
                            client = c;
                        }
                        // The insert may have committed before the error: check.
                        if let Ok(rows) = client
                            .query("SELECT 1 FROM events WHERE id = $1", &[&(id as i32)])
                            .await
                        {
                            if !rows.is_empty() {
                                next.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.signal("-STOP");
    tokio::time::sleep(Duration::from_secs(20)).await;
    broker.signal("-CONT");
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::spawn_blocking(restart_postgres).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();

    let client = connect(&db.name).await;
    let rows = client
        .query("SELECT id, note FROM events ORDER BY id", &[])
        .await
        .unwrap();
    let expected: BTreeMap<i64, serde_json::Value> = rows
        .iter()
        .map(|r| {
            let (id, note): (i32, String) = (r.get(0), r.get(1));
            (id as i64, json!({"id": id, "note": note}))
        })
        .collect();
    assert!(expected.len() > 500, "only {} rows written", expected.len());
    let topic = format!("{name}.public.events");
    std::env::set_var("SLUICE_TEST_BROKERS", &brokers);
    let msgs = read_until_state(&topic, &expected, Duration::from_secs(180)).await;
    let got = replay(&msgs, "id");
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !got.contains_key(k))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "lost rows {missing:?} of {}; logs:\n{}",
        expected.len(),
        daemon.logs()
    );
    assert_eq!(got, expected);
    let logs = daemon.logs();
    assert!(
        logs.contains("retrying"),
        "the PostgreSQL restart should show as a retried failure:\n{logs}"
    );
    assert!(daemon.try_status().is_none(), "the daemon kept running");
    assert!(daemon.stop().success());
}
