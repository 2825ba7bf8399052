//! Helpers for the integration tests: a fresh database per test, the daemon as a child
//! process, and a Kafka consumer that reads what Sluice published.
//!
//! The servers are the ones `scripts/start-postgres` and `scripts/start-tansu` start; their
//! addresses come from `SLUICE_TEST_PG` and `SLUICE_TEST_BROKERS` (set by `scripts/test`).
#![allow(dead_code)]

pub mod all_types;
pub mod my_types;
pub mod mysql;
pub mod registry;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use tokio_postgres::{Client, NoTls};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// PostgreSQL URL without a database.
pub fn pg_base() -> String {
    std::env::var("SLUICE_TEST_PG")
        .unwrap_or_else(|_| "postgres://sluice:sluice@127.0.0.1:15432".into())
}

/// Kafka bootstrap servers.
pub fn brokers() -> String {
    std::env::var("SLUICE_TEST_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

/// The second test broker's bootstrap servers: nisshi (`scripts/start-nisshi`), which has
/// transactions and a group coordinator that forgets a dead leader.
pub fn txn_brokers() -> String {
    std::env::var("SLUICE_TEST_TXN_BROKERS").unwrap_or_else(|_| "127.0.0.1:19192".into())
}

/// A name unique to this test run: lower-case letters, digits and '_'.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 100_000_000;
    format!("{prefix}_{}_{t}_{n}", std::process::id())
}

/// Connects to a database of the test cluster.
pub async fn connect(db: &str) -> Client {
    let url = format!("{}/{db}", pg_base());
    let (client, conn) = tokio_postgres::connect(&url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("cannot connect to {db} (is scripts/start-postgres running?): {e}")
        });
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A fresh database for one test.
pub struct TestDb {
    pub name: String,
    pub client: Client,
}

impl TestDb {
    pub async fn new(prefix: &str) -> TestDb {
        let name = unique(prefix);
        let admin = connect("postgres").await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        let client = connect(&name).await;
        TestDb { name, client }
    }

    /// The URL a connector file uses.
    pub fn url(&self) -> String {
        format!("{}/{}", pg_base(), self.name)
    }

    pub async fn exec(&self, sql: &str) {
        self.client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// `confirmed_flush_lsn` of a slot, as a number.
    pub async fn confirmed_flush(&self, slot: &str) -> Option<u64> {
        let row = self
            .client
            .query_opt(
                "SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::int8 FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .unwrap()?;
        row.get::<_, Option<i64>>(0).map(|v| v as u64)
    }

    pub async fn current_lsn(&self) -> u64 {
        let row = self
            .client
            .query_one(
                "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::int8",
                &[],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0) as u64
    }
}

/// A connector file's text for a PostgreSQL connector.
pub fn pg_connector(name: &str, prefix: &str, db: &TestDb, tables: &[&str], extra: &str) -> String {
    let tables: Vec<String> = tables.iter().map(|t| format!("\"{t}\"")).collect();
    format!(
        "name = \"{name}\"\nsource = \"postgres\"\ntopic_prefix = \"{prefix}\"\n{extra}\n[postgres]\nurl = \"{}\"\nslot = \"{name}\"\npublication = \"{name}\"\ntables = [{}]\n",
        db.url(),
        tables.join(", ")
    )
}

/// A daemon folder (config, connectors, offsets) and its process.
pub struct Daemon {
    pub dir: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Daemon {
    /// Writes `config/sluice.toml` (Kafka sink unless `sink` says otherwise) and connectors.
    pub fn new(sink: &str, connectors: &[(&str, String)]) -> Daemon {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("daemon"));
        std::fs::create_dir_all(dir.join("config")).unwrap();
        std::fs::create_dir_all(dir.join("connectors")).unwrap();
        let sink = if sink.is_empty() {
            format!("type = \"kafka\"\nbootstrap_servers = \"{}\"", brokers())
        } else {
            sink.to_string()
        };
        std::fs::write(
            dir.join("config/sluice.toml"),
            format!(
                "connectors_dir = \"../connectors\"\noffset_flush_interval_ms = 200\n[offsets]\nstore = \"file\"\npath = \"../data/offsets\"\n[sink]\n{sink}\n[log]\nlevel = \"info\"\n"
            ),
        )
        .unwrap();
        for (file, text) in connectors {
            std::fs::write(dir.join("connectors").join(file), text).unwrap();
        }
        Daemon {
            dir,
            child: None,
            starts: 0,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.args(args).current_dir(&self.dir).stdin(Stdio::null());
        cmd
    }

    /// Sets how often positions are committed (the folder's default is 200 ms).
    pub fn set_offset_flush_interval_ms(&self, ms: u64) {
        let path = self.dir.join("config/sluice.toml");
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "offset_flush_interval_ms = 200",
            &format!("offset_flush_interval_ms = {ms}"),
        );
        std::fs::write(path, text).unwrap();
    }

    /// Adds settings to `config/sluice.toml` (for example an `[api]` table).
    pub fn append_daemon_config(&self, text: &str) {
        let path = self.dir.join("config/sluice.toml");
        let mut current = std::fs::read_to_string(&path).unwrap();
        current.push_str(text);
        std::fs::write(path, current).unwrap();
    }

    /// A daemon with the Kafka sink and one PostgreSQL connector named `name` (also its topic
    /// prefix, slot and publication), in file `c.toml`.
    pub fn single(name: &str, db: &TestDb, tables: &[&str], extra: &str) -> Daemon {
        Daemon::new(
            "",
            &[("c.toml", pg_connector(name, name, db, tables, extra))],
        )
    }

    /// Starts `sluice run`; logs go to `run-N.log` in the folder.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "daemon already running");
        self.starts += 1;
        let log = std::fs::File::create(self.dir.join(format!("run-{}.log", self.starts))).unwrap();
        let out =
            std::fs::File::create(self.dir.join(format!("stdout-{}.log", self.starts))).unwrap();
        let child = self
            .command(&["run", "--config", "config/sluice.toml"])
            .stdout(out)
            .stderr(log)
            .spawn()
            .expect("spawn sluice");
        self.child = Some(child);
    }

    /// Sends a signal (`STOP`, `CONT`, ...) to the running daemon.
    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(c.id().to_string())
                .status();
        }
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the exit (at most 60 s).
    pub fn stop(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("daemon not running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!(
                    "sluice did not stop within 60 s after SIGTERM; logs: {}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to exit by itself (at most `timeout`) and reaps it.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "sluice did not exit within {timeout:?}; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the process has exited (and how).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    /// Runs another subcommand to completion: (exit status, stdout, stderr).
    pub fn run_command(&self, args: &[&str]) -> (ExitStatus, String, String) {
        let out = self.command(args).output().expect("run sluice");
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// All run logs so far.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for i in 1..=self.starts {
            s.push_str(
                &std::fs::read_to_string(self.dir.join(format!("run-{i}.log"))).unwrap_or_default(),
            );
        }
        s
    }

    /// Stdout of run N (for the stdout sink).
    pub fn stdout(&self, n: u32) -> String {
        std::fs::read_to_string(self.dir.join(format!("stdout-{n}.log"))).unwrap_or_default()
    }

    /// The stored offset file of a connector, parsed.
    pub fn offset(&self, connector: &str) -> Option<Value> {
        let text = std::fs::read_to_string(
            self.dir
                .join("data/offsets")
                .join(format!("{connector}.json")),
        )
        .ok()?;
        serde_json::from_str(&text).ok()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One record as a consumer reads it.
#[derive(Debug, Clone)]
pub struct Msg {
    pub offset: i64,
    pub key: Option<Value>,
    pub value: Option<Value>,
    pub headers: HashMap<String, Value>,
}

/// Names of the broker's topics.
pub fn topics() -> Vec<String> {
    topics_on(&brokers())
}

/// Names of the topics of the brokers at `servers`.
pub fn topics_on(servers: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .unwrap();
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("broker metadata");
    md.topics().iter().map(|t| t.name().to_string()).collect()
}

/// A consumer assigned to partition 0 of `topic` from its beginning, once the topic exists
/// (`None` if it does not by `deadline`).
fn consumer_from_start(topic: &str, deadline: Instant) -> Option<BaseConsumer> {
    consumer_from_start_on(&brokers(), topic, deadline)
}

fn consumer_from_start_on(servers: &str, topic: &str, deadline: Instant) -> Option<BaseConsumer> {
    while !topics_on(servers).iter().any(|t| t == topic) {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    Some(consumer)
}

/// Reads a topic (partition 0) from the beginning until `done` holds for what was read and
/// nothing new arrived for `settle`, or until `timeout`. Returns what was read.
pub fn read_topic_until(topic: &str, timeout: Duration, done: impl Fn(&[Msg]) -> bool) -> Vec<Msg> {
    read_topic_until_on(&brokers(), topic, timeout, done)
}

/// [`read_topic_until`] on the brokers at `servers`.
pub fn read_topic_until_on(
    servers: &str,
    topic: &str,
    timeout: Duration,
    done: impl Fn(&[Msg]) -> bool,
) -> Vec<Msg> {
    let deadline = Instant::now() + timeout;
    let Some(consumer) = consumer_from_start_on(servers, topic, deadline) else {
        return Vec::new();
    };
    let mut out: Vec<Msg> = Vec::new();
    let settle = Duration::from_millis(1500);
    let mut last_new = Instant::now();
    let mut satisfied = false;
    loop {
        let polled = consumer.poll(Duration::from_millis(200));
        let idle = polled.is_none();
        if let Some(Err(e)) = &polled {
            eprintln!("consumer of {topic}: {e}");
        }
        if let Some(Ok(m)) = polled {
            {
                let parse = |b: Option<&[u8]>| {
                    b.map(|b| serde_json::from_slice(b).expect("record is JSON"))
                };
                let mut headers = HashMap::new();
                if let Some(h) = m.headers() {
                    for hdr in h.iter() {
                        if let Some(v) = hdr.value {
                            // JSON (key headers), else the text (Connect's simple
                            // header converter).
                            headers.insert(
                                hdr.key.to_string(),
                                serde_json::from_slice(v).unwrap_or_else(|_| {
                                    Value::String(String::from_utf8_lossy(v).into_owned())
                                }),
                            );
                        }
                    }
                }
                out.push(Msg {
                    offset: m.offset(),
                    key: parse(m.key()),
                    value: parse(m.payload()),
                    headers,
                });
                last_new = Instant::now();
            }
        }
        // `done` may be costly (a replay): evaluate it only when the topic is drained.
        if idle {
            satisfied = done(&out);
        }
        if Instant::now() > deadline || (satisfied && last_new.elapsed() > settle) {
            return out;
        }
    }
}

/// Reads a topic until replaying it (key field `id`) gives `expected`, or `timeout`.
pub async fn read_until_state(
    topic: &str,
    expected: &std::collections::BTreeMap<i64, Value>,
    timeout: Duration,
) -> Vec<Msg> {
    let topic = topic.to_string();
    let expected = expected.clone();
    tokio::task::spawn_blocking(move || {
        read_topic_until(&topic, timeout, |m| replay(m, "id") == expected)
    })
    .await
    .unwrap()
}

/// One field of each key's last state in a topic (deletes remove the key).
pub fn replay_field(
    msgs: &[Msg],
    key_field: &str,
    field: &str,
) -> std::collections::BTreeMap<i64, Value> {
    replay(msgs, key_field)
        .into_iter()
        .map(|(k, v)| (k, v[field].clone()))
        .collect()
}

/// Reads `topic` until `field` of each key's last state equals `expected` (or `timeout`).
pub async fn read_until_field(
    topic: &str,
    field: &str,
    expected: &std::collections::BTreeMap<i64, Value>,
    timeout: Duration,
) -> Vec<Msg> {
    let (topic, field, expected) = (topic.to_string(), field.to_string(), expected.clone());
    tokio::task::spawn_blocking(move || {
        read_topic_until(&topic, timeout, |m| {
            replay_field(m, "id", &field) == expected
        })
    })
    .await
    .unwrap()
}

/// Reads until at least `n` records arrived (then settles) or `timeout`.
pub fn read_topic(topic: &str, n: usize, timeout: Duration) -> Vec<Msg> {
    read_topic_until(topic, timeout, |m| m.len() >= n)
}

/// The payload of a JSON record with or without schema.
pub fn payload(v: &Value) -> &Value {
    v.get("payload").unwrap_or(v)
}

/// Replays a topic into the table state it describes: key → last `after` (deletes remove).
pub fn replay(msgs: &[Msg], key_field: &str) -> std::collections::BTreeMap<i64, Value> {
    let mut state = std::collections::BTreeMap::new();
    for m in msgs {
        let Some(v) = &m.value else { continue };
        let p = payload(v);
        match p["op"].as_str().unwrap_or_default() {
            "c" | "r" | "u" => {
                let after = p["after"].clone();
                state.insert(after[key_field].as_i64().unwrap(), after);
            }
            "d" => {
                state.remove(&p["before"][key_field].as_i64().unwrap());
            }
            _ => {}
        }
    }
    state
}

/// The high watermark (records written) of partition 0 of a topic, 0 when it does not exist.
pub fn high_watermark(topic: &str) -> i64 {
    high_watermark_on(&brokers(), topic)
}

/// [`high_watermark`] on the brokers at `servers`.
pub fn high_watermark_on(servers: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .unwrap();
    consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(5))
        .map(|(_, high)| high)
        .unwrap_or(0)
}

/// One record's raw bytes.
#[derive(Debug, Clone)]
pub struct RawMsg {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Reads partition 0 of a topic from the beginning as raw bytes until `n` records or `timeout`.
pub fn read_raw(topic: &str, n: usize, timeout: Duration) -> Vec<RawMsg> {
    let deadline = Instant::now() + timeout;
    let Some(consumer) = consumer_from_start(topic, deadline) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push(RawMsg {
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
            });
        }
    }
    out
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request to the admin API: (status, body).
pub async fn http(method: &str, url: &str, token: Option<&str>) -> (u16, String) {
    request(method, url, token, None).await
}

/// One HTTP/1.1 request with a JSON body: (status, body).
pub async fn http_json(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, String) {
    request(method, url, token, Some(&body.to_string())).await
}

async fn request(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let Ok(mut conn) = tokio::net::TcpStream::connect(authority).await else {
        return (0, "connection refused".into());
    };
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let (kind, body) = match body {
        Some(b) => ("Content-Type: application/json\r\n", b),
        None => ("", ""),
    };
    let sent = conn
        .write_all(
            format!(
                "{method} {path} HTTP/1.1\r\nHost: {authority}\r\n{auth}{kind}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
    let mut buf = Vec::new();
    let read = match sent {
        Ok(()) => conn.read_to_end(&mut buf).await.map(|_| ()),
        Err(e) => Err(e),
    };
    // A connection the server closed unanswered (a cap reached) is status 0.
    if let Err(e) = read {
        if buf.is_empty() {
            return (0, e.to_string());
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Waits until a connector reports `state` through the API.
pub async fn wait_state(
    api: &str,
    token: Option<&str>,
    name: &str,
    state: &str,
    timeout: Duration,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, body) = http("GET", &format!("{api}/sluice/connectors/{name}"), token).await;
        if status == 200 {
            let v: Value = serde_json::from_str(&body).unwrap();
            if v["state"] == state {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never became {state}: {v}"
            );
        } else {
            assert!(Instant::now() < deadline, "{name}: HTTP {status} {body}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs one of the tests' Python helpers with `input` on stdin; returns its stdout, or fails
/// the test with `what` and the script's stderr.
pub fn run_python(script: &str, input: &str, what: &str) -> String {
    use std::io::Write;
    let path = format!("{}/tests/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("python3")
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until a daemon's connector has created its slot (at most 30 s).
pub async fn wait_for_slot(db: &TestDb, slot: &str, daemon: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.confirmed_flush(slot).await.is_none() {
        assert!(
            Instant::now() < deadline,
            "slot {slot} not created; logs:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the connector's stored position says its snapshot finished (a stop before
/// that leaves the snapshot unfinished, and the next start takes it again).
pub async fn wait_snapshot_done(daemon: &Daemon, connector: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while daemon
        .offset(connector)
        .is_none_or(|o| o["position"]["snapshot"] != "done")
    {
        assert!(
            Instant::now() < deadline,
            "the snapshot never finished; logs:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until both the slot's `confirmed_flush_lsn` and the stored offset reach `target`.
pub async fn wait_slot_and_offset(
    db: &TestDb,
    daemon: &Daemon,
    slot: &str,
    target: u64,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let confirmed = db.confirmed_flush(slot).await.unwrap_or(0);
        let stored = daemon
            .offset(slot)
            .and_then(|o| o["position"]["resume_lsn"].as_u64())
            .unwrap_or(0);
        if confirmed >= target && stored >= target {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "confirmed_flush_lsn {confirmed} / stored {stored} did not reach {target}; logs:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Checks per-key order after crashes: per key, the values of column `v` with repeats removed
/// run without a gap up to the key's final value (a change is never skipped or reordered;
/// redeliveries only repeat what came before). Returns how many records were redeliveries.
pub fn check_per_key_order(
    msgs: &[Msg],
    expected: &std::collections::BTreeMap<i64, Value>,
) -> usize {
    // key -> (value, topic offset) in topic order
    let mut per_key: std::collections::BTreeMap<i64, Vec<(i64, i64)>> =
        std::collections::BTreeMap::new();
    for m in msgs {
        let Some(p) = m.value.as_ref() else { continue };
        let after = &payload(p)["after"];
        if after.is_null() {
            continue;
        }
        per_key
            .entry(after["id"].as_i64().unwrap())
            .or_default()
            .push((after["v"].as_i64().unwrap(), m.offset));
    }
    // What a failure needs to tell apart: a record never published (its neighbours'
    // offsets are contiguous) from one the reader did not get (an offset gap).
    let offset_gaps = || {
        let mut offsets: Vec<i64> = msgs.iter().map(|m| m.offset).collect();
        offsets.sort_unstable();
        offsets
            .windows(2)
            .filter(|w| w[1] != w[0] + 1)
            .map(|w| format!("{}..{}", w[0], w[1]))
            .collect::<Vec<_>>()
    };
    let mut duplicates = 0;
    for (id, values) in &per_key {
        let mut firsts: Vec<i64> = Vec::new();
        for (v, _) in values {
            if firsts.contains(v) {
                duplicates += 1;
            } else {
                firsts.push(*v);
            }
        }
        for w in firsts.windows(2) {
            assert_eq!(
                w[1],
                w[0] + 1,
                "key {id}: (value, offset) {values:?} skip or reorder a change; {} records \
                 read, offset gaps in what was read: {:?}",
                msgs.len(),
                offset_gaps()
            );
        }
        let final_v = expected[id]["v"].as_i64().unwrap();
        assert_eq!(*firsts.last().unwrap(), final_v, "key {id}: {values:?}");
    }
    duplicates
}

/// Throwaway certificates for TLS tests (`scripts/make-test-certs`): `ca.pem`,
/// `server.pem`/`server.key` (for the name localhost), `other-ca.pem`.
pub fn test_certs() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("certs"));
    let script = format!("{}/scripts/make-test-certs", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(&script)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// A TLS-terminating proxy (`stunnel4`) on 127.0.0.1:`accept` in front of 127.0.0.1:`connect`,
/// with the server certificate of `certs`; returns once it listens. Kill the child to stop it.
pub fn tls_proxy(certs: &Path, accept: u16, connect: u16) -> Child {
    let conf = certs.join(format!("stunnel-{accept}.conf"));
    std::fs::write(
        &conf,
        format!(
            "foreground = yes\npid =\n[proxy]\naccept = 127.0.0.1:{accept}\nconnect = 127.0.0.1:{connect}\ncert = {}\nkey = {}\n",
            certs.join("server.pem").display(),
            certs.join("server.key").display()
        ),
    )
    .unwrap();
    let child = Command::new("stunnel4")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("stunnel4 (scripts/setup installs it)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", accept)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the TLS proxy never listened on {accept}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// A fresh folder under the scripts' state folder (`SLUICE_STATE_DIR`, readable by the
/// `postgres` and `mysql` users the servers run as, wherever the checkout is).
pub fn server_dir(prefix: &str) -> PathBuf {
    let state = std::env::var("SLUICE_STATE_DIR").unwrap_or_else(|_| "/tmp/sluice-dev".into());
    let dir = Path::new(&state).join(unique(prefix));
    std::fs::create_dir_all(Path::new(&state)).unwrap();
    dir
}

/// Runs `sluice validate` on a daemon whose only connector is `bad.toml` (a PostgreSQL
/// connector on an unreachable server, plus `extra` before and `tail` after its
/// `[postgres]` table); asserts it fails naming the file, and returns what it printed.
pub fn validate_bad_file(extra: &str, tail: &str) -> String {
    let text = format!(
        "name = \"bad\"\nsource = \"postgres\"\ntopic_prefix = \"bad\"\n{extra}\n[postgres]\nurl = \"postgres://x@127.0.0.1:1/x\"\nslot = \"s\"\npublication = \"p\"\ntables = [\"public.t\"]\n{tail}\n"
    );
    let d = Daemon::new("", &[("bad.toml", text)]);
    let (status, out, err) = d.run_command(&["validate", "--config", "config/sluice.toml"]);
    let printed = format!("{out}{err}");
    assert!(!status.success(), "{printed}");
    assert!(printed.contains("bad.toml"), "{printed}");
    printed
}
