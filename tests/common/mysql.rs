//! MariaDB helpers: a fresh database per test on the server `scripts/start-mariadb` started
//! (`SLUICE_TEST_MYSQL`), connector files, and extra servers for tests that need their own.

use std::sync::atomic::{AtomicU32, Ordering};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Row};

use super::{unique, Daemon};

static SERVER_IDS: AtomicU32 = AtomicU32::new(0);

/// URL of the shared test server (no database).
pub fn my_base() -> String {
    std::env::var("SLUICE_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://sluice:sluice@127.0.0.1:13306".into())
}

/// A replica server id no other connector of this test run uses.
pub fn server_id() -> u32 {
    10_000 + (std::process::id() % 1000) * 100 + SERVER_IDS.fetch_add(1, Ordering::SeqCst)
}

/// Connects to a server URL.
pub async fn my_connect(url: &str) -> Conn {
    Conn::new(Opts::from_url(url).unwrap())
        .await
        .unwrap_or_else(|e| {
            panic!("cannot connect to MariaDB at {url} (is scripts/start-mariadb running?): {e}")
        })
}

/// A fresh database for one test.
pub struct MyDb {
    pub name: String,
    pub base: String,
    pub conn: Conn,
}

impl MyDb {
    pub async fn new(prefix: &str) -> MyDb {
        Self::on(&my_base(), prefix).await
    }

    /// A fresh database on another server.
    pub async fn on(base: &str, prefix: &str) -> MyDb {
        let name = unique(prefix);
        let mut conn = my_connect(base).await;
        conn.query_drop(format!("CREATE DATABASE `{name}`"))
            .await
            .expect("create database");
        conn.query_drop(format!("USE `{name}`")).await.unwrap();
        MyDb {
            name,
            base: base.to_string(),
            conn,
        }
    }

    /// Runs statements separated by `;` (no `;` inside string literals).
    pub async fn exec(&mut self, sql: &str) {
        for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            self.conn
                .query_drop(stmt)
                .await
                .unwrap_or_else(|e| panic!("{stmt}: {e}"));
        }
    }

    pub async fn rows(&mut self, sql: &str) -> Vec<Row> {
        self.conn
            .query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// A second connection to the same database.
    pub async fn connect(&self) -> Conn {
        let mut c = my_connect(&self.base).await;
        c.query_drop(format!("USE `{}`", self.name)).await.unwrap();
        c
    }
}

/// A MySQL connector file.
pub fn my_connector(
    name: &str,
    prefix: &str,
    base: &str,
    tables: &[String],
    server_id: u32,
    extra: &str,
) -> String {
    let tables: Vec<String> = tables.iter().map(|t| format!("\"{t}\"")).collect();
    format!(
        "name = \"{name}\"\nsource = \"mysql\"\ntopic_prefix = \"{prefix}\"\n{extra}\n[mysql]\nurl = \"{base}\"\nserver_id = {server_id}\ntables = [{}]\n",
        tables.join(", ")
    )
}

/// A daemon with the Kafka sink and one MySQL connector `name` over `tables` of `db`.
pub fn my_daemon(name: &str, db: &MyDb, tables: &[&str], extra: &str) -> Daemon {
    let tables: Vec<String> = tables.iter().map(|t| format!("{}.{t}", db.name)).collect();
    Daemon::new(
        "",
        &[(
            "c.toml",
            my_connector(name, name, &db.base, &tables, server_id(), extra),
        )],
    )
}

/// Another MariaDB server started by `scripts/start-mariadb`, stopped when dropped.
pub struct ExtraServer {
    pub name: String,
    pub port: u16,
}

impl ExtraServer {
    /// Starts a server named `mariadb-<tag>` with extra server options.
    pub fn start(tag: &str, args: &str) -> ExtraServer {
        let name = format!("mariadb-{}", unique(tag));
        let port = super::free_port();
        let script = format!("{}/scripts/start-mariadb", env!("CARGO_MANIFEST_DIR"));
        let out = std::process::Command::new("bash")
            .arg(&script)
            .env("MARIADB_NAME", &name)
            .env("MARIADB_PORT", port.to_string())
            .env("MARIADB_ARGS", args)
            .output()
            .expect("run scripts/start-mariadb");
        assert!(
            out.status.success(),
            "scripts/start-mariadb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ExtraServer { name, port }
    }

    pub fn url(&self) -> String {
        format!("mysql://sluice:sluice@127.0.0.1:{}", self.port)
    }

    fn dir(&self) -> std::path::PathBuf {
        let state = std::env::var("SLUICE_STATE_DIR").unwrap_or_else(|_| "/tmp/sluice-dev".into());
        std::path::Path::new(&state).join(&self.name)
    }

    /// Stops the server (SIGTERM, waits for it to exit).
    pub fn stop(&self) {
        stop_server(&self.dir());
    }
}

impl Drop for ExtraServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(self.dir());
    }
}

/// Stops the MariaDB server whose state folder is `dir` and waits until it is gone.
pub fn stop_server(dir: &std::path::Path) {
    let Ok(pid) = std::fs::read_to_string(dir.join("mariadb.pid")) else {
        return;
    };
    let pid = pid.trim().to_string();
    let _ = std::process::Command::new("kill").arg(&pid).status();
    for _ in 0..600 {
        let alive = std::process::Command::new("kill")
            .args(["-0", &pid])
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !alive {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
