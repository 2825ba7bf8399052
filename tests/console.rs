//! The web console in a real browser: headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`) against a daemon with a PostgreSQL, a MariaDB and a
//! failing connector. Logs in, sees both streaming and a sparkline that moves while rows
//! are written, starts an incremental snapshot from the page and watches its bar reach
//! 100 %, pauses and resumes a connector, and reads a failed connector's error and fix.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::mysql::*;
use common::*;
use serde_json::{json, Value};

const TOKEN: &str = "console-test-token";

/// One WebDriver request (chromedriver keeps connections open after its answer, so the body
/// is read by its length, not to the connection's end).
async fn wd(method: &str, url: &str, body: Option<&Value>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let Ok(mut conn) = tokio::net::TcpStream::connect(authority).await else {
        return (0, "connection refused".into());
    };
    let body = body.map(Value::to_string).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if conn.write_all(head.as_bytes()).await.is_err() {
        return (0, "write failed".into());
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((headers, rest)) = text.split_once("\r\n\r\n") {
            let length = headers
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())
                        .flatten()
                })
                .unwrap_or(0);
            if rest.len() >= length {
                let status = headers
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                return (status, rest.to_string());
            }
        }
        match tokio::time::timeout(Duration::from_secs(60), conn.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return (0, String::from_utf8_lossy(&buf).into_owned()),
        }
    }
}

/// A WebDriver session on a chromedriver of its own.
struct Browser {
    driver: Child,
    base: String,
    session: String,
}

impl Browser {
    async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; scripts/setup installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, _) = wd("GET", &format!("{base}/status"), None).await;
            if status == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"]
        }}}});
        let (status, body) = wd("POST", &format!("{base}/session"), Some(&caps)).await;
        assert_eq!(status, 200, "new WebDriver session: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let session = v["value"]["sessionId"].as_str().unwrap().to_string();
        Browser {
            driver,
            base,
            session,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let (status, text) = wd(method, &url, Some(&body)).await;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, 200, "WebDriver {method} {path}: {text}");
        v["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call("POST", "/url", json!({"url": url})).await;
    }

    /// Runs `script` in the page and returns its result.
    async fn eval(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .call(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.call("POST", &format!("/element/{id}/click"), json!({}))
            .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            json!({"text": text}),
        )
        .await;
    }

    /// Accepts the page's confirmation dialog (waits for it a little).
    async fn accept(&self) {
        let url = format!("{}/session/{}/alert/accept", self.base, self.session);
        for _ in 0..50 {
            let (status, _) = wd("POST", &url, Some(&json!({}))).await;
            if status == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no confirmation dialog");
    }

    /// Waits until `script` returns true.
    async fn until(&self, script: &str, what: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.eval(script).await == Value::Bool(true) {
                return;
            }
            let page = self
                .eval("return document.getElementById('main').innerText + '\\n' + JSON.stringify([...document.querySelectorAll('svg')].map(s => [s.getAttribute('aria-label'), s.getAttribute('data-points'), s.getAttribute('data-last')]))")
                .await;
            assert!(Instant::now() < deadline, "{what}; the page shows:\n{page}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The state shown in the overview's row of `name`.
fn row_state(name: &str) -> String {
    format!("const r = document.querySelector('tr[data-connector=\"{name}\"] .state'); return r ? r.textContent : null")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_and_drives_connectors_in_a_browser() {
    let db = TestDb::new("console").await;
    db.exec(
        "CREATE TABLE items (id int PRIMARY KEY, v text);
         INSERT INTO items SELECT i, 'x' FROM generate_series(1, 3000) i;",
    )
    .await;
    let mut my = MyDb::new("console").await;
    my.exec("CREATE TABLE orders (id int PRIMARY KEY, v int)")
        .await;
    let pg_name = unique("conpg");
    let my_name = unique("conmy");
    let bad_name = unique("conbad");
    let pg = pg_connector(
        &pg_name,
        &pg_name,
        &db,
        &["public.items"],
        "[format]\nschemas = false",
    );
    let mysql = my_connector(
        &my_name,
        &my_name,
        &my.base,
        &[format!("{}.orders", my.name)],
        server_id(),
        "[format]\nschemas = false",
    );
    let bad = pg_connector(&bad_name, &bad_name, &db, &["public.no_such_table"], "");
    let mut daemon = Daemon::new(
        "type = \"stdout\"",
        &[("pg.toml", pg), ("my.toml", mysql), ("bad.toml", bad)],
    );
    let port = free_port();
    daemon.append_daemon_config(&format!(
        "[api]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n"
    ));
    daemon.start();
    let api = format!("http://127.0.0.1:{port}");
    wait_state(
        &api,
        Some(TOKEN),
        &pg_name,
        "streaming",
        Duration::from_secs(60),
    )
    .await;

    let browser = Browser::start().await;
    browser.go(&format!("{api}/ui")).await;
    // Without the token the page asks for it; a wrong one is refused.
    browser
        .until(
            "return !document.getElementById('login').hidden",
            "the login form is shown",
            Duration::from_secs(10),
        )
        .await;
    browser.type_into("#token", "wrong").await;
    browser.click("#login-form button").await;
    browser
        .until(
            "return document.getElementById('login-error').textContent.length > 0",
            "a wrong token is refused",
            Duration::from_secs(10),
        )
        .await;
    browser.type_into("#token", TOKEN).await;
    browser.click("#login-form button").await;
    // The token is in the tab's session storage, not in the address.
    assert!(!browser
        .eval("return location.href")
        .await
        .to_string()
        .contains(TOKEN));
    for name in [&pg_name, &my_name] {
        browser
            .until(
                &format!("return (() => {{ {} }})() === 'streaming'", row_state(name)),
                &format!("{name} streaming in the overview"),
                Duration::from_secs(60),
            )
            .await;
    }
    // The failed connector is shown failed.
    browser
        .until(
            &format!(
                "return (() => {{ {} }})() === 'failed'",
                row_state(&bad_name)
            ),
            "the failing connector shown failed",
            Duration::from_secs(60),
        )
        .await;

    // Rows written all along: the records/s sparkline of the PostgreSQL connector rises
    // above 0 (its samples are taken every 5 s, plus a live point).
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let writing = writing.clone();
        let dbname = db.name.clone();
        tokio::spawn(async move {
            let client = connect(&dbname).await;
            let mut next = 100_000;
            while writing.load(Ordering::Relaxed) {
                client
                    .batch_execute(&format!(
                        "INSERT INTO items SELECT i, 'y' FROM generate_series({next}, {}) i",
                        next + 99
                    ))
                    .await
                    .unwrap();
                next += 100;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    browser
        .until(
            &format!(
                "const s = document.querySelector('tr[data-connector=\"{pg_name}\"] svg'); return !!s && Number(s.getAttribute('data-points')) >= 2 && Number(s.getAttribute('data-last')) > 0"
            ),
            "the sparkline moved",
            Duration::from_secs(40),
        )
        .await;
    writing.store(false, Ordering::Relaxed);
    writer.await.unwrap();

    // The connector's page: an incremental snapshot from the form, to 100 %.
    browser
        .click(&format!("tr[data-connector=\"{pg_name}\"] a"))
        .await;
    browser
        .until(
            &format!(
                "return document.getElementById('connector-title').textContent === '{pg_name}'"
            ),
            "the connector's page",
            Duration::from_secs(10),
        )
        .await;
    browser.type_into("#snapshot-tables", "public.items").await;
    browser.click("#snapshot-form button[type=submit]").await;
    browser.accept().await;
    browser
        .until(
            "const b = document.querySelector('#c-snapshot [role=progressbar]'); return !!b && b.getAttribute('aria-valuenow') === '100'",
            "the snapshot's bar reaches 100 %",
            Duration::from_secs(90),
        )
        .await;
    let result = browser
        .eval("return document.getElementById('c-result').textContent")
        .await;
    assert!(result.to_string().contains("202"), "{result}");
    // Tables and masked configuration are shown.
    browser
        .until(
            "return document.getElementById('c-tables').textContent.includes('public.items')",
            "the table list",
            Duration::from_secs(10),
        )
        .await;

    // Pause, then resume.
    browser.click("#c-actions [data-action=pause]").await;
    browser.accept().await;
    browser
        .until(
            "return document.getElementById('c-state').textContent === 'paused'",
            "paused",
            Duration::from_secs(20),
        )
        .await;
    browser.click("#c-actions [data-action=resume]").await;
    browser.accept().await;
    browser
        .until(
            "return document.getElementById('c-state').textContent === 'streaming'",
            "resumed",
            Duration::from_secs(20),
        )
        .await;

    // The failed connector's error and its fix.
    browser.go(&format!("{api}/ui#/c/{bad_name}")).await;
    browser
        .until(
            "const e = document.getElementById('c-error'); return !e.hidden && e.textContent.includes('no_such_table')",
            "the failed connector's error",
            Duration::from_secs(20),
        )
        .await;
    let error = browser
        .eval("return document.getElementById('c-error').textContent")
        .await;
    eprintln!("error shown: {error}");
    assert!(
        error.to_string().contains("create it or fix the name"),
        "the fix is shown with the error: {error}"
    );
    // (The daemon exits non-zero: one of its connectors stopped on an error.)
    let _ = daemon.stop();
}
