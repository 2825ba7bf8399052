//! TLS to PostgreSQL with libpq's URL parameters, against a server that accepts TLS only
//! (`hostssl`), with certificates made for the test (`scripts/start-postgres-tls`): snapshot
//! and streaming under `verify-full`; `verify-ca` checks the chain but not the name; a wrong
//! CA, a wrong host name and `sslmode=disable` fail with a clear message; `require` works
//! without checking the certificate.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;

/// A PostgreSQL server accepting TLS only; stopped and removed on drop.
struct TlsServer {
    dir: PathBuf,
    port: u16,
}

impl TlsServer {
    fn start() -> TlsServer {
        // Under the state folder: the server (user `postgres`) must reach it.
        let dir = server_dir("pgtls");
        let port = free_port();
        let script = format!("{}/scripts/start-postgres-tls", env!("CARGO_MANIFEST_DIR"));
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .arg(port.to_string())
            .output()
            .expect("run scripts/start-postgres-tls");
        assert!(
            out.status.success(),
            "scripts/start-postgres-tls failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TlsServer { dir, port }
    }

    /// Runs SQL through psql over TLS (the server refuses anything else).
    fn psql(&self, sql: &str) -> String {
        let out = std::process::Command::new("psql")
            .args([
                &format!(
                    "postgresql://sluice:sluice@127.0.0.1:{}/postgres?sslmode=require",
                    self.port
                ),
                "-qAtX",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn cert(&self, name: &str) -> String {
        self.dir.join("certs").join(name).display().to_string()
    }

    fn url(&self, host: &str, db: &str, params: &str) -> String {
        format!(
            "postgres://sluice:sluice@{host}:{}/{db}?{params}",
            self.port
        )
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let lib = format!("{}/scripts/lib.sh", env!("CARGO_MANIFEST_DIR"));
        let _ = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                ". {lib}; as_pg_owner \"$PG_BIN/pg_ctl\" -D {}/pg stop -m immediate",
                self.dir.display()
            ))
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn connector(name: &str, url: &str) -> String {
    format!(
        "name = \"{name}\"\nsource = \"postgres\"\ntopic_prefix = \"{name}\"\n[format]\nschemas = false\n[postgres]\nurl = \"{url}\"\nslot = \"{name}\"\npublication = \"{name}\"\ntables = [\"public.t\"]\n"
    )
}

fn validate(url: &str) -> (bool, String) {
    let daemon = Daemon::new("type = \"stdout\"", &[("c.toml", connector("c", url))]);
    let (status, out, err) = daemon.run_command(&["validate", "--config", "config/sluice.toml"]);
    (status.success(), format!("{out}{err}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_modes_verify_what_they_promise_and_failures_say_why() {
    let server = TlsServer::start();
    server.psql("CREATE TABLE t (id int PRIMARY KEY)");
    let trusted = server.url(
        "localhost",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={}", server.cert("ca.pem")),
    );
    let (ok, out) = validate(&trusted);
    assert!(ok, "verify-full with the right CA: {out}");

    // The certificate is for the name localhost: the address 127.0.0.1 passes verify-ca only.
    let ca = server.cert("ca.pem");
    let (ok, out) = validate(&server.url(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ));
    assert!(ok, "verify-ca does not check the name: {out}");
    let (ok, out) = validate(&server.url(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ));
    assert!(!ok, "{out}");
    assert!(out.contains("verify-full needs a host name"), "{out}");
    // libpq's hostaddr: the address to connect to, the name to check; a wrong name fails.
    let (ok, out) = validate(&server.url(
        "localhost",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={ca}&hostaddr=127.0.0.1"),
    ));
    assert!(ok, "{out}");
    let (ok, out) = validate(&server.url(
        "pg.invalid",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={ca}&hostaddr=127.0.0.1"),
    ));
    assert!(!ok, "{out}");
    assert!(
        out.contains("not valid for the host name pg.invalid"),
        "the name mismatch is said: {out}"
    );

    // Another CA: not trusted.
    let other = server.cert("other-ca.pem");
    let (ok, out) = validate(&server.url(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=verify-ca&sslrootcert={other}"),
    ));
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("not signed by a CA in sslrootcert {other}")),
        "{out}"
    );

    // The server takes TLS only.
    let (ok, out) = validate(&server.url("127.0.0.1", "postgres", "sslmode=disable"));
    assert!(!ok, "{out}");
    assert!(out.contains("no encryption"), "{out}");

    // require: encrypted, certificate not checked; and the default (prefer) uses TLS too.
    let (ok, out) = validate(&server.url("localhost", "postgres", "sslmode=require"));
    assert!(ok, "{out}");
    let (ok, out) = validate(&format!(
        "postgres://sluice:sluice@127.0.0.1:{}/postgres",
        server.port
    ));
    assert!(ok, "{out}");
    assert!(!out.contains("sluice:sluice"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_and_streaming_work_under_verify_full() {
    let server = TlsServer::start();
    let url = server.url(
        "localhost",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={}", server.cert("ca.pem")),
    );
    let psql = |sql: &str| server.psql(sql);
    psql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'before');");
    let name = unique("pgtls");
    let mut daemon = Daemon::new("type = \"stdout\"", &[("c.toml", connector(&name, &url))]);
    daemon.start();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !daemon.stdout(1).contains("\"before\"") {
        assert!(
            Instant::now() < deadline,
            "no snapshot; logs:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    psql("INSERT INTO t VALUES (2, 'streamed')");
    while !daemon.stdout(1).contains("\"streamed\"") {
        assert!(
            Instant::now() < deadline,
            "nothing streamed; logs:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Both sessions are encrypted: the replication one and the query one.
    let encrypted = psql(
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
          WHERE s.ssl AND a.application_name = 'sluice'",
    );
    assert!(daemon.stop().success());
    assert!(encrypted.parse::<i64>().unwrap() >= 1, "{encrypted}");
    let ops: Vec<serde_json::Value> = daemon
        .stdout(1)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["topic"] == format!("{name}.public.t"))
        .map(|v| v["value"]["op"].clone())
        .collect();
    assert_eq!(ops, [serde_json::json!("r"), serde_json::json!("c")]);
}
