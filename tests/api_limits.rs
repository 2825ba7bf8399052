//! The admin API cannot be exhausted before authentication: connections that never send a
//! request are closed after the header timeout, connections are capped, and the API keeps
//! answering. Listening beyond loopback without a token is warned about.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::*;

fn api_daemon(listen: &str) -> Daemon {
    let mut daemon = Daemon::new("type = \"stdout\"", &[]);
    daemon.append_daemon_config(&format!("[api]\nlisten = \"{listen}\"\n"));
    daemon.start();
    daemon
}

async fn wait_health(api: &str, daemon: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, _)) = tokio::time::timeout(
            Duration::from_secs(2),
            http("GET", &format!("{api}/health"), None),
        )
        .await
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "API not up; logs:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_are_closed_and_the_api_keeps_answering() {
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let mut daemon = api_daemon(&format!("127.0.0.1:{port}"));
    wait_health(&api, &daemon).await;
    // More silent connections than the server serves at once.
    let mut idle: Vec<std::net::TcpStream> = (0..80)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let started = Instant::now();
    // The server closes a connection that sent no header in time.
    let mut first = idle.remove(0);
    first
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 16];
    let n = first.read(&mut buf).expect("closed, not timed out");
    assert_eq!(n, 0, "the server closed the silent connection");
    assert!(started.elapsed() < Duration::from_secs(25));
    // And a real request is answered while the silent ones are still open on our side.
    let answer = tokio::time::timeout(
        Duration::from_secs(40),
        http("GET", &format!("{api}/health"), None),
    )
    .await
    .expect("answered");
    assert_eq!(answer.0, 200, "{}", answer.1);
    drop(idle);
    assert!(daemon.try_status().is_none(), "still running");
    let logs = daemon.logs();
    assert!(!logs.contains("listens beyond this machine"), "{logs}");
    assert!(daemon.stop().success(), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn listening_beyond_loopback_without_a_token_is_warned_about() {
    let port = free_port();
    let mut daemon = api_daemon(&format!("0.0.0.0:{port}"));
    wait_health(&format!("http://127.0.0.1:{port}"), &daemon).await;
    let logs = daemon.logs();
    assert!(
        logs.contains("listens beyond this machine without a token"),
        "{logs}"
    );
    // Without a token beyond loopback the API is read-only: anyone on the network could
    // otherwise stop connectors, reset offsets and send signals.
    let api = format!("http://127.0.0.1:{port}");
    assert_eq!(http("GET", &format!("{api}/connectors"), None).await.0, 200);
    for (method, route) in [
        ("PUT", "/connectors/x/stop"),
        ("POST", "/connectors/x/restart"),
        ("POST", "/connectors/x/signals"),
        ("DELETE", "/connectors/x/offsets"),
        ("PUT", "/connectors/x/config"),
        ("POST", "/connectors"),
    ] {
        let (s, body) = http(method, &format!("{api}{route}"), None).await;
        assert_eq!(s, 403, "{method} {route}: {body}");
        assert!(body.contains("api.token"), "{body}");
    }
    assert!(daemon.stop().success());
}

/// Opens `n` connections from `source` (another loopback address) that send half a request
/// and then nothing: the review's probe starvation.
async fn half_open(source: std::net::Ipv4Addr, port: u16, n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut out = Vec::new();
    for _ in 0..n {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((source, 0).into()).unwrap();
        if let Ok(mut c) = socket.connect(([127, 0, 0, 1], port).into()).await {
            let _ = c
                .write_all(b"GET /connectors HTTP/1.1\r\nHost: x\r\n")
                .await;
            out.push(c);
        }
    }
    out
}

/// With 300 half-open connections from one address, and then more than the server serves
/// from many, `/ready` answers at once, and an authorized client from another address
/// is served while one address holds its share.
#[tokio::test(flavor = "multi_thread")]
async fn probes_and_other_clients_are_served_under_a_connection_flood() {
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let mut daemon = Daemon::new("type = \"stdout\"", &[]);
    daemon.append_daemon_config(&format!(
        "[api]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"t0k\"\n"
    ));
    daemon.start();
    wait_health(&api, &daemon).await;
    let timed = |method: &'static str, route: &'static str, token: Option<&'static str>| {
        let url = format!("{api}{route}");
        async move {
            // As a probe does: a connection closed unanswered is tried again.
            let started = Instant::now();
            loop {
                let answer =
                    tokio::time::timeout(Duration::from_secs(5), http(method, &url, token))
                        .await
                        .unwrap_or_else(|_| panic!("{route} starved"));
                if answer.0 != 0 {
                    eprintln!("{route}: {} in {:?}", answer.0, started.elapsed());
                    return answer;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "{route} starved"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let flood = half_open([127, 0, 0, 2].into(), port, 300).await;
    assert!(flood.len() >= 250, "the flood connected");
    let (s, body) = timed("GET", "/ready", None).await;
    assert_eq!(s, 200, "{body}");
    // The probe answer without the token is counts only.
    assert_eq!(body, r#"{"ready":true,"count":0,"not_ready":0}"#);
    let (s, body) = timed("GET", "/connectors", Some("t0k")).await;
    assert_eq!((s, body.as_str()), (200, "[]"));
    // Many addresses, more connections than the server serves in all: the probes still
    // answer (from the connections kept for them).
    let mut floods = vec![flood];
    for last in 10..20u8 {
        floods.push(half_open([127, 0, 0, last].into(), port, 64).await);
    }
    let (s, _) = timed("GET", "/ready", None).await;
    assert_eq!(s, 200);
    let (s, _) = timed("GET", "/health", None).await;
    assert_eq!(s, 200);
    drop(floods);
    assert!(daemon.try_status().is_none(), "still running");
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_speaks_https_with_its_certificate() {
    let certs = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique("apicerts"));
    let script = format!("{}/scripts/make-test-certs", env!("CARGO_MANIFEST_DIR"));
    assert!(std::process::Command::new("bash")
        .arg(&script)
        .arg(&certs)
        .status()
        .unwrap()
        .success());
    let port = free_port();
    let mut daemon = Daemon::new("type = \"stdout\"", &[]);
    daemon.append_daemon_config(&format!(
        "[api]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"t0k\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
        certs.join("server.pem").display(),
        certs.join("server.key").display()
    ));
    daemon.start();
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "5"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let ca = certs.join("ca.pem").display().to_string();
    let url = format!("https://localhost:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, out) = curl(&["--cacert", &ca, &format!("{url}/health")]);
        if ok {
            assert_eq!(out, r#"{"status":"ok"}"#);
            break;
        }
        assert!(Instant::now() < deadline, "{out}\n{}", daemon.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The token still applies; a client that does not trust the CA refuses the server; plain
    // HTTP gets no answer.
    let (ok, out) = curl(&[
        "--cacert",
        &ca,
        "-H",
        "Authorization: Bearer t0k",
        &format!("{url}/connectors"),
    ]);
    assert!(ok && out.trim() == "[]", "{out}");
    let (ok, out) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--cacert",
        &ca,
        &format!("{url}/connectors"),
    ]);
    assert!(out.contains("401"), "{ok} {out}");
    let (ok, out) = curl(&[&format!("{url}/health")]);
    assert!(!ok && out.to_lowercase().contains("certificate"), "{out}");
    let (ok, _) = curl(&[&format!("http://127.0.0.1:{port}/health")]);
    assert!(!ok, "plain HTTP must not be answered");
    // `sluice probe` speaks HTTPS: the CA given, the name checked (here the certificate's
    // name, with the address to connect to in the URL); counts only without the token.
    let ready = format!("https://127.0.0.1:{port}/ready");
    let (probe, out, err) = daemon.run_command(&[
        "probe",
        &ready,
        "--cacert",
        &ca,
        "--servername",
        "localhost",
    ]);
    assert!(probe.success(), "{out}{err}");
    assert!(
        out.contains("\"count\":0") && !out.contains("connectors"),
        "{out}"
    );
    let (probe, out, err) = daemon.run_command(&[
        "probe",
        &ready,
        "--cacert",
        &ca,
        "--servername",
        "localhost",
        "--token",
        "t0k",
    ]);
    assert!(
        probe.success() && out.contains("\"connectors\":{}"),
        "{out}{err}"
    );
    // A CA that did not sign the certificate: refused, with what to check.
    let (probe, _, err) = daemon.run_command(&["probe", &ready, "--servername", "localhost"]);
    assert!(!probe.success() && err.contains("--cacert"), "{err}");
    assert!(daemon.stop().success());
    let _ = std::fs::remove_dir_all(&certs);
}
