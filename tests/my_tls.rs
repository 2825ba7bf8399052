//! TLS to MariaDB with the `mysql` client's option names as URL parameters (`ssl-mode`,
//! `ssl-ca`), against a server with a certificate made for the test and a user that must use
//! TLS (`REQUIRE SSL`): snapshot and streaming under VERIFY_IDENTITY; VERIFY_CA checks the
//! chain but not the name; a wrong CA, a wrong host name and DISABLED fail with a clear
//! message; REQUIRED and the default work without checking the certificate.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::mysql::*;
use common::*;

fn certs() -> PathBuf {
    // Under the state folder: the server (user `mysql`) must reach the files.
    let dir = server_dir("mycerts");
    let script = format!("{}/scripts/make-test-certs", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(&dir)
        .output()
        .expect("run scripts/make-test-certs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The server runs as `mysql`: it must read its key (a throwaway one).
    for f in ["server.key", "server.pem", "ca.pem"] {
        std::process::Command::new("chmod")
            .args(["644", &dir.join(f).display().to_string()])
            .status()
            .unwrap();
    }
    for d in [dir.parent().unwrap(), dir.as_path()] {
        std::process::Command::new("chmod")
            .args(["755", &d.display().to_string()])
            .status()
            .unwrap();
    }
    dir
}

fn connector(name: &str, url: &str, db: &str, server_id: u32) -> String {
    format!(
        "name = \"{name}\"\nsource = \"mysql\"\ntopic_prefix = \"{name}\"\n[format]\nschemas = false\n[mysql]\nurl = \"{url}\"\nserver_id = {server_id}\ntables = [\"{db}.t\"]\n"
    )
}

fn validate(url: &str, db: &str) -> (bool, String) {
    let daemon = Daemon::new(
        "type = \"stdout\"",
        &[("c.toml", connector("c", url, db, server_id()))],
    );
    let (status, out, err) = daemon.run_command(&["validate", "--config", "config/sluice.toml"]);
    (status.success(), format!("{out}{err}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_modes_verify_what_they_promise_and_streaming_works_under_verify_identity() {
    let certs = certs();
    let c = |f: &str| certs.join(f).display().to_string();
    let server = ExtraServer::start(
        "tls",
        &format!(
            "--ssl-cert={} --ssl-key={} --ssl-ca={}",
            c("server.pem"),
            c("server.key"),
            c("ca.pem")
        ),
    );
    let mut db = MyDb::on(&server.url(), "mytls").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
        .await;
    db.exec("INSERT INTO t VALUES (1, 'before')").await;
    db.exec("CREATE USER 'tlsuser'@'%' IDENTIFIED BY 'tlspw' REQUIRE SSL")
        .await;
    db.exec("GRANT ALL PRIVILEGES ON *.* TO 'tlsuser'@'%'")
        .await;
    let url =
        |host: &str, params: &str| format!("mysql://tlsuser:tlspw@{host}:{}?{params}", server.port);
    let ca = c("ca.pem");

    let (ok, out) = validate(
        &url(
            "localhost",
            &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
        ),
        &db.name,
    );
    assert!(ok, "VERIFY_IDENTITY with the right CA and name: {out}");
    let (ok, out) = validate(
        &url("127.0.0.1", &format!("ssl-mode=VERIFY_CA&ssl-ca={ca}")),
        &db.name,
    );
    assert!(ok, "VERIFY_CA does not check the name: {out}");
    let (ok, out) = validate(
        &url(
            "127.0.0.1",
            &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
        ),
        &db.name,
    );
    assert!(
        !ok && out.contains("not valid for the host of 127.0.0.1"),
        "{out}"
    );
    let other = c("other-ca.pem");
    let (ok, out) = validate(
        &url("localhost", &format!("ssl-mode=VERIFY_CA&ssl-ca={other}")),
        &db.name,
    );
    assert!(
        !ok && out.contains(&format!("not signed by a CA in ssl-ca {other}")),
        "{out}"
    );
    let (ok, out) = validate(&url("127.0.0.1", "ssl-mode=DISABLED"), &db.name);
    assert!(
        !ok && out.contains("Access denied"),
        "the user must use TLS: {out}"
    );
    let (ok, out) = validate(&url("127.0.0.1", "ssl-mode=REQUIRED"), &db.name);
    assert!(ok, "{out}");
    let (ok, out) = validate(
        &format!("mysql://tlsuser:tlspw@127.0.0.1:{}", server.port),
        &db.name,
    );
    assert!(ok, "the default (PREFERRED) uses TLS when offered: {out}");
    assert!(!out.contains("tlspw"), "{out}");

    // Snapshot and streaming (the binlog session too) under VERIFY_IDENTITY.
    let name = unique("mytls");
    let mut daemon = Daemon::new(
        "type = \"stdout\"",
        &[(
            "c.toml",
            connector(
                &name,
                &url(
                    "localhost",
                    &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
                ),
                &db.name,
                server_id(),
            ),
        )],
    );
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
    db.exec("INSERT INTO t VALUES (2, 'streamed')").await;
    while !daemon.stdout(1).contains("\"streamed\"") {
        assert!(
            Instant::now() < deadline,
            "nothing streamed; logs:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(daemon.stop().success());
    let _ = std::fs::remove_dir_all(&certs);
}
