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
    assert!(daemon.stop().success());
}
