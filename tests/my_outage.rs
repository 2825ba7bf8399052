//! Acceptance 4 against MariaDB: binlog rotations (`FLUSH BINARY LOGS`) and a restart of the
//! server while Sluice streams and a writer keeps writing. Nothing is lost: replaying the
//! topic gives the table, and Sluice recovers by itself (reconnect with backoff from the
//! last committed position).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::mysql::*;
use common::*;
use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

fn shared_server_dir() -> std::path::PathBuf {
    let state = std::env::var("SLUICE_STATE_DIR").unwrap_or_else(|_| "/tmp/sluice-dev".into());
    std::path::Path::new(&state).join("mariadb")
}

fn start_shared_server() {
    let script = format!("{}/scripts/start-mariadb", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("bash")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_and_server_restart_lose_nothing() {
    let mut db = MyDb::new("myoutage").await;
    db.exec("CREATE TABLE events (id INT PRIMARY KEY, note VARCHAR(40))")
        .await;
    let name = unique("myoutage");
    let mut daemon = my_daemon(&name, &db, &["events"], "[format]\nschemas = false");
    daemon.start();
    let topic = format!("{name}.{}.events", db.name);

    // A writer that survives the restart: it reconnects and goes on; a statement whose outcome
    // is unknown (the server went away) is settled by reading the table at the end.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written) = (stop.clone(), written.clone());
        let (base, dbname) = (db.base.clone(), db.name.clone());
        tokio::spawn(async move {
            let mut id = 1u64;
            let mut conn: Option<mysql_async::Conn> = None;
            while !stop.load(Ordering::Relaxed) {
                if conn.is_none() {
                    match mysql_async::Conn::new(mysql_async::Opts::from_url(&base).unwrap()).await
                    {
                        Ok(mut c) => {
                            c.query_drop(format!("USE `{dbname}`")).await.unwrap();
                            conn = Some(c);
                        }
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    }
                }
                let c = conn.as_mut().unwrap();
                let sql = format!("INSERT INTO events VALUES ({id}, 'n{id}') ON DUPLICATE KEY UPDATE note = VALUES(note)");
                match c.query_drop(sql).await {
                    Ok(()) => {
                        id += 1;
                        written.store(id, Ordering::Relaxed);
                    }
                    Err(_) => conn = None,
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let mut admin = my_connect(&my_base()).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        admin.query_drop("FLUSH BINARY LOGS").await.unwrap();
    }
    drop(admin);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_restart = written.load(Ordering::Relaxed);
    stop_server(&shared_server_dir());
    tokio::time::sleep(Duration::from_secs(3)).await;
    start_shared_server();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let total = written.load(Ordering::Relaxed);
    assert!(
        before_restart > 100,
        "writer made only {before_restart} rows before the restart"
    );
    assert!(
        total > before_restart + 50,
        "writer made only {} rows after the restart",
        total - before_restart
    );

    let mut db2 = my_connect(&my_base()).await;
    let rows: Vec<(i64, String)> = db2
        .query(format!(
            "SELECT id, note FROM `{}`.events ORDER BY id",
            db.name
        ))
        .await
        .unwrap();
    let expected: BTreeMap<i64, Value> = rows
        .into_iter()
        .map(|(id, note)| (id, json!({"id": id, "note": note})))
        .collect();
    let msgs = read_until_state(&topic, &expected, Duration::from_secs(120)).await;
    assert!(
        replay(&msgs, "id") == expected,
        "replay differs from the table ({} rows, {} records); logs:\n{}",
        expected.len(),
        msgs.len(),
        daemon.logs()
    );
    let files: std::collections::BTreeSet<String> = msgs
        .iter()
        .filter_map(|m| m.value.as_ref())
        .filter_map(|v| v["source"]["file"].as_str().map(str::to_string))
        .collect();
    assert!(
        files.len() >= 4,
        "records come from the rotated files: {files:?}"
    );
    let logs = daemon.logs();
    assert!(
        logs.contains("connector failed; retrying"),
        "the outage shows in the logs:\n{logs}"
    );
    assert!(daemon.stop().success());
}
