//! The torture harness: a model-based checker that crosses source × offsets store × what
//! runs (initial, resumed, incremental snapshot, streaming) × key kind × faults.
//!
//! A seeded workload writes inserts, updates, deletes and key changes to one table whose
//! rows carry `n` (the row's identity, derived into the real key by the key kind) and `ver`
//! (a global counter: every write takes the next value, so per row the versions only grow).
//! The workload keeps the history it wrote. The checker replays every record of the topic
//! and asserts, per row:
//! - every record names a version the row really had (nothing invented);
//! - versions never go back (no stale value after a newer one, snapshot rows included);
//! - a record repeats only around a fault (at-least-once redelivery), or as a snapshot read;
//! - every change written after the stream began is there (nothing missing);
//! - the replay equals the table at the end.
//!
//! On a failure it prints the seed, the scenario, the fault schedule and the first row whose
//! history is wrong, with what the topic holds and what the database wrote.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::common::mysql::{my_base, my_connect, my_connector, server_id, MyDb};
use crate::common::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Src {
    Pg,
    My,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Store {
    File,
    Kafka,
    /// Two daemons in cluster mode (one consumer group, the Kafka store): faults hit the
    /// daemon that owns the connector, and the other takes over.
    Cluster,
}

/// What the connector does while the workload writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Run {
    /// An initial snapshot of preloaded rows, then streaming.
    Initial,
    /// A large initial snapshot killed early (resumed, or started over).
    Resumed,
    /// Streaming from an empty table's start (`no_data`).
    Streaming,
    /// `no_data`, then an `execute-snapshot` signal for the preloaded rows.
    Incremental,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// `bigint`.
    Int,
    /// `bigint` keys near `i64::MIN` / `i64::MAX` and negative.
    Extreme,
    /// Two columns: an integer and text.
    Composite,
    /// PostgreSQL `uuid`, MySQL `BINARY(16)`.
    Uuid,
    /// PostgreSQL `bytea`, MySQL `VARBINARY`, with bytes that are not UTF-8.
    Bytes,
    /// Text in a case-insensitive collation (PostgreSQL ICU, MySQL `utf8mb4_general_ci`),
    /// mixed case and non-ASCII first letters.
    TextCi,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// `kill -9` of Sluice, then a start.
    Kill9,
    /// SIGSTOP, a pause, SIGCONT.
    Freeze,
    /// Every connection to the database cut (a TCP proxy), refused for a while.
    DbCut,
    /// `PUT /connectors/{name}/stop`, then `PUT .../resume`.
    StopResume,
    /// The connector file edited at run time (the connector restarts).
    EditFile,
    /// The database server restarted (a fast shutdown; the workload waits meanwhile). The
    /// long run only: it takes the shared server away from every other test.
    DbRestart,
    /// Every connection to the broker cut (the scenario's own broker, behind a proxy that
    /// it advertises), refused for a while.
    BrokerCut,
    /// The owning daemon stopped the orderly way (SIGTERM) and started again: in cluster
    /// mode its connectors move to the other daemon and maybe back (a rebalance).
    Rebalance,
}

pub const ALL_SRC: [Src; 2] = [Src::Pg, Src::My];
pub const ALL_STORE: [Store; 3] = [Store::File, Store::Kafka, Store::Cluster];
pub const ALL_RUN: [Run; 4] = [Run::Initial, Run::Resumed, Run::Streaming, Run::Incremental];
pub const ALL_KEY: [Key; 6] = [
    Key::Int,
    Key::Extreme,
    Key::Composite,
    Key::Uuid,
    Key::Bytes,
    Key::TextCi,
];
pub const ALL_FAULT: [FaultKind; 8] = [
    FaultKind::Kill9,
    FaultKind::Freeze,
    FaultKind::DbCut,
    FaultKind::StopResume,
    FaultKind::EditFile,
    FaultKind::DbRestart,
    FaultKind::BrokerCut,
    FaultKind::Rebalance,
];

/// One fault of the schedule: when (ms after the workload starts), what, how long.
#[derive(Clone, Debug)]
pub struct Fault {
    pub at_ms: u64,
    pub kind: FaultKind,
    pub hold_ms: u64,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub src: Src,
    pub store: Store,
    pub run: Run,
    pub key: Key,
    pub faults: Vec<Fault>,
    /// How long the workload writes.
    pub seconds: u64,
}

/// Which values each axis may take (`--axes source=pg;key=bytes,uuid;...`).
#[derive(Clone, Debug)]
pub struct Axes {
    pub src: Vec<Src>,
    pub store: Vec<Store>,
    pub run: Vec<Run>,
    pub key: Vec<Key>,
    pub fault: Vec<FaultKind>,
}

impl Default for Axes {
    fn default() -> Axes {
        Axes {
            src: ALL_SRC.to_vec(),
            store: ALL_STORE.to_vec(),
            run: ALL_RUN.to_vec(),
            key: ALL_KEY.to_vec(),
            fault: ALL_FAULT.to_vec(),
        }
    }
}

fn lower<T: std::fmt::Debug>(v: &T) -> String {
    format!("{v:?}").to_lowercase()
}

impl Axes {
    /// `axis=v1,v2;axis=...` (names as the enums', lower case); unknown names panic.
    pub fn parse(text: &str) -> Axes {
        fn pick<T: std::fmt::Debug + Copy>(all: &[T], list: &str, axis: &str) -> Vec<T> {
            list.split(',')
                .map(|w| {
                    *all.iter()
                        .find(|v| lower(*v) == w.trim())
                        .unwrap_or_else(|| panic!("unknown {axis} \"{w}\"; one of {all:?}"))
                })
                .collect()
        }
        let mut axes = Axes::default();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (axis, list) = part
                .split_once('=')
                .unwrap_or_else(|| panic!("axis \"{part}\" is not name=values"));
            match axis.trim() {
                "source" => axes.src = pick(&ALL_SRC, list, axis),
                "store" => axes.store = pick(&ALL_STORE, list, axis),
                "run" => axes.run = pick(&ALL_RUN, list, axis),
                "key" => axes.key = pick(&ALL_KEY, list, axis),
                "fault" => axes.fault = pick(&ALL_FAULT, list, axis),
                other => panic!("unknown axis \"{other}\": source, store, run, key, fault"),
            }
        }
        axes
    }
}

impl Scenario {
    /// A scenario drawn from `seed` within `axes`.
    pub fn from_seed(seed: u64, axes: &Axes, seconds: u64) -> Scenario {
        let mut rng = StdRng::seed_from_u64(seed);
        let src = axes.src[rng.random_range(0..axes.src.len())];
        let store = axes.store[rng.random_range(0..axes.store.len())];
        let run = axes.run[rng.random_range(0..axes.run.len())];
        let key = axes.key[rng.random_range(0..axes.key.len())];
        let count = rng.random_range(1..=3);
        let kinds: Vec<FaultKind> = (0..count)
            .filter(|_| !axes.fault.is_empty())
            .map(|_| axes.fault[rng.random_range(0..axes.fault.len())])
            .collect();
        Scenario::with_faults(seed, src, store, run, key, &kinds, seconds)
    }

    /// A scenario with the given faults at times drawn from `seed`.
    pub fn with_faults(
        seed: u64,
        src: Src,
        store: Store,
        run: Run,
        key: Key,
        kinds: &[FaultKind],
        seconds: u64,
    ) -> Scenario {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_fa17);
        let span = seconds * 1000;
        let mut faults: Vec<Fault> = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| {
                // A resumed snapshot is killed early, while its snapshot runs; the first
                // fault of an incremental snapshot comes while its chunks are read.
                let at_ms = if run == Run::Resumed && i == 0 {
                    rng.random_range(300..1500)
                } else if run == Run::Incremental && i == 0 {
                    rng.random_range(400..2500)
                } else {
                    rng.random_range(span / 10..span * 8 / 10)
                };
                Fault {
                    at_ms,
                    kind: if run == Run::Resumed && i == 0 {
                        FaultKind::Kill9
                    } else {
                        *kind
                    },
                    hold_ms: rng.random_range(500..3000),
                }
            })
            .collect();
        if run == Run::Resumed && faults.is_empty() {
            faults.push(Fault {
                at_ms: rng.random_range(300..1500),
                kind: FaultKind::Kill9,
                hold_ms: 500,
            });
        }
        faults.sort_by_key(|f| f.at_ms);
        Scenario {
            seed,
            src,
            store,
            run,
            key,
            faults,
            seconds,
        }
    }

    pub fn label(&self) -> String {
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|f| format!("{}@{}ms/{}ms", lower(&f.kind), f.at_ms, f.hold_ms))
            .collect();
        format!(
            "seed={} source={} store={} run={} key={} faults=[{}] seconds={}",
            self.seed,
            lower(&self.src),
            lower(&self.store),
            lower(&self.run),
            lower(&self.key),
            faults.join(", "),
            self.seconds
        )
    }

    fn preload(&self) -> i64 {
        match self.run {
            Run::Streaming => 0,
            Run::Initial => 2_000,
            Run::Incremental => 6_000,
            Run::Resumed => 25_000,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Keys: n -> the row's real key, as SQL literals.

fn mix(n: i64) -> u64 {
    let mut z = (n as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key columns' definitions and names.
fn key_columns(src: Src, key: Key) -> (String, Vec<&'static str>) {
    let one = |def: &str| (format!("k {def}"), vec!["k"]);
    match (src, key) {
        (_, Key::Int | Key::Extreme) => one("bigint"),
        (Src::Pg, Key::Composite) => ("a int, b text".into(), vec!["a", "b"]),
        (Src::My, Key::Composite) => ("a int, b varchar(20)".into(), vec!["a", "b"]),
        (Src::Pg, Key::Uuid) => one("uuid"),
        (Src::My, Key::Uuid) => one("binary(16)"),
        (Src::Pg, Key::Bytes) => one("bytea"),
        (Src::My, Key::Bytes) => one("varbinary(40)"),
        (Src::Pg, Key::TextCi) => one("text COLLATE sluice_ci"),
        (Src::My, Key::TextCi) => one("varchar(40) COLLATE utf8mb4_general_ci"),
    }
}

/// The key of row `n`, one SQL literal per key column.
fn key_literals(src: Src, key: Key, n: i64) -> Vec<String> {
    let h = mix(n);
    match key {
        Key::Int => vec![n.to_string()],
        Key::Extreme => vec![match n % 4 {
            0 => (i64::MIN + n).to_string(),
            1 => (i64::MAX - n).to_string(),
            2 => (-n).to_string(),
            _ => (n * 1_000_003).to_string(),
        }],
        Key::Composite => vec![(n % 7).to_string(), format!("'{:03}-{:07}'", h % 1000, n)],
        Key::Uuid => {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&h.to_be_bytes());
            b[8..].copy_from_slice(&(n as u64).to_be_bytes());
            match src {
                Src::Pg => vec![format!("'{}'::uuid", hex(&b))],
                Src::My => vec![format!("X'{}'", hex(&b))],
            }
        }
        Key::Bytes => {
            // A first byte shared by many rows, then bytes that are not UTF-8.
            let mut b = vec![0x41, 0x80 | (h as u8), 0xF5];
            b.extend_from_slice(&(n as u32).to_be_bytes());
            b.extend(std::iter::repeat_n(0xFF, (n % 3) as usize));
            match src {
                Src::Pg => vec![format!("'\\x{}'::bytea", hex(&b))],
                Src::My => vec![format!("X'{}'", hex(&b))],
            }
        }
        Key::TextCi => {
            let first = ["a", "B", "é", "Ö"][(n % 4) as usize];
            vec![format!(
                "'{first}{:08}'",
                (h % 1000) * 100_000 + n as u64 % 100_000
            )]
        }
    }
}

// ---------------------------------------------------------------------------------------
// The database side.

enum Conn {
    Pg(tokio_postgres::Client),
    My(mysql_async::Conn),
}

impl Conn {
    async fn exec(&mut self, sql: &str) -> Result<(), String> {
        match self {
            Conn::Pg(c) => c
                .batch_execute(sql)
                .await
                .map_err(|e| format!("{sql}: {e}")),
            Conn::My(c) => {
                for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                    c.query_drop(stmt)
                        .await
                        .map_err(|e| format!("{stmt}: {e}"))?;
                }
                Ok(())
            }
        }
    }

    /// Whether the rows a write touched are as it leaves them (`None`: cannot tell now).
    async fn applied(&mut self, toks: &[(i64, Tok, i64)]) -> Option<bool> {
        let mut last: BTreeMap<i64, Tok> = BTreeMap::new();
        for (n, tok, _) in toks {
            last.insert(*n, *tok);
        }
        let list: Vec<String> = last.keys().map(i64::to_string).collect();
        let sql = format!("SELECT n, ver FROM t WHERE n IN ({})", list.join(", "));
        let now: BTreeMap<i64, i64> = match self {
            Conn::Pg(c) => c
                .query(&sql, &[])
                .await
                .ok()?
                .into_iter()
                .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)))
                .collect(),
            Conn::My(c) => c
                .query::<(i64, i64), _>(sql)
                .await
                .ok()?
                .into_iter()
                .collect(),
        };
        Some(last.iter().all(|(n, (ver, deleted))| {
            if *deleted {
                !now.contains_key(n)
            } else {
                now.get(n) == Some(ver)
            }
        }))
    }

    /// `n -> ver` of every row.
    async fn state(&mut self) -> BTreeMap<i64, i64> {
        match self {
            Conn::Pg(c) => c
                .query("SELECT n, ver FROM t", &[])
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)))
                .collect(),
            Conn::My(c) => c
                .query::<(i64, i64), _>("SELECT n, ver FROM t")
                .await
                .unwrap()
                .into_iter()
                .collect(),
        }
    }
}

/// One version of a row as the checker orders them: `(ver, deleted)`; a delete follows the
/// version it deleted.
type Tok = (i64, bool);

/// What the workload wrote.
#[derive(Default)]
pub struct History {
    /// Per row: each version and when it was written (the global counter).
    rows: HashMap<i64, Vec<(Tok, i64)>>,
    /// The value of the counter when the workload began.
    pub start: i64,
    pub writes: u64,
}

/// The table's rows as the workload knows them.
struct Model {
    key: Key,
    src: Src,
    next_v: i64,
    next_n: i64,
    /// Present rows and their current version.
    present: BTreeMap<i64, i64>,
    present_list: Vec<i64>,
    /// Deleted rows (a later insert may bring one back).
    absent: Vec<i64>,
}

impl Model {
    fn pick_present(&self, rng: &mut StdRng) -> Option<i64> {
        if self.present_list.is_empty() {
            return None;
        }
        let i = rng.random_range(0..self.present_list.len());
        Some(self.present_list[i])
    }

    fn remove_present(&mut self, n: i64) {
        self.present.remove(&n);
        if let Some(i) = self.present_list.iter().position(|x| *x == n) {
            self.present_list.swap_remove(i);
        }
    }

    fn add_present(&mut self, n: i64, v: i64) {
        self.present.insert(n, v);
        self.present_list.push(n);
    }

    fn fresh(&mut self, rng: &mut StdRng) -> i64 {
        if !self.absent.is_empty() && rng.random_bool(0.4) {
            let i = rng.random_range(0..self.absent.len());
            return self.absent.swap_remove(i);
        }
        self.next_n += 1;
        self.next_n
    }

    fn insert_sql(&self, n: i64, v: i64, pad: usize) -> String {
        let (_, cols) = key_columns(self.src, self.key);
        format!(
            "INSERT INTO t ({}, n, ver, pad) VALUES ({}, {n}, {v}, '{}')",
            cols.join(", "),
            key_literals(self.src, self.key, n).join(", "),
            "x".repeat(pad)
        )
    }

    fn set_key_sql(&self, n: i64) -> String {
        let (_, cols) = key_columns(self.src, self.key);
        cols.iter()
            .zip(key_literals(self.src, self.key, n))
            .map(|(c, l)| format!("{c} = {l}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One write (or transaction) of the workload; returns the SQL and the history it makes.
fn next_op(model: &mut Model, rng: &mut StdRng) -> (String, Vec<(i64, Tok, i64)>) {
    let mut sql = Vec::new();
    let mut toks = Vec::new();
    let dice = rng.random_range(0..100);
    let tx = dice >= 85;
    let steps = if tx { rng.random_range(2..6) } else { 1 };
    for _ in 0..steps {
        let v = model.next_v;
        model.next_v += 1;
        let choice = if tx { rng.random_range(0..85) } else { dice };
        let target = model.pick_present(rng);
        match (choice, target) {
            (0..=34, Some(n)) => {
                sql.push(format!(
                    "UPDATE t SET ver = {v}, pad = '{}' WHERE n = {n}",
                    "u".repeat(rng.random_range(0..40))
                ));
                model.present.insert(n, v);
                toks.push((n, (v, false), v));
            }
            (35..=49, Some(n)) => {
                sql.push(format!("UPDATE t SET ver = {v} WHERE n = {n}"));
                sql.push(format!("DELETE FROM t WHERE n = {n}"));
                model.remove_present(n);
                model.absent.push(n);
                toks.push((n, (v, false), v));
                toks.push((n, (v, true), v));
            }
            (50..=59, Some(n)) => {
                // A key change: the row's key and identity move to another n.
                let to = model.fresh(rng);
                let old = model.present[&n];
                sql.push(format!(
                    "UPDATE t SET {}, n = {to}, ver = {v} WHERE n = {n}",
                    model.set_key_sql(to)
                ));
                model.remove_present(n);
                model.absent.push(n);
                model.add_present(to, v);
                toks.push((n, (old, true), v));
                toks.push((to, (v, false), v));
            }
            _ => {
                let n = model.fresh(rng);
                sql.push(model.insert_sql(n, v, rng.random_range(0..60)));
                model.add_present(n, v);
                toks.push((n, (v, false), v));
            }
        }
    }
    let text = if sql.len() > 1 {
        format!("BEGIN; {}; COMMIT", sql.join("; "))
    } else {
        sql.pop().unwrap()
    };
    (text, toks)
}

// ---------------------------------------------------------------------------------------
// Running a scenario.

/// What a fault left for the checker: the topic's end before it and after recovery
/// (records between may be redelivered).
#[derive(Clone, Debug)]
struct Boundary {
    kind: FaultKind,
    before: i64,
    after: i64,
}

/// Totals of a run.
#[derive(Default, Debug, Clone)]
pub struct Outcome {
    pub records: usize,
    pub duplicates: usize,
    pub writes: u64,
    pub faults: usize,
}

struct Target {
    src: Src,
    db_name: String,
    /// Where the database really is (host, port).
    upstream: (String, u16),
    topic: String,
    collection: String,
}

/// A connection, or `Err` when the server does not answer (yet).
async fn try_open(src: Src, db: &str) -> Result<Conn, ()> {
    match src {
        Src::Pg => {
            let url = format!("{}/{db}", pg_base());
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map_err(|_| ())?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Conn::Pg(client))
        }
        Src::My => {
            let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&my_base()).unwrap())
                .await
                .map_err(|_| ())?;
            c.query_drop(format!("USE `{db}`")).await.map_err(|_| ())?;
            Ok(Conn::My(c))
        }
    }
}

async fn open(src: Src, db: &str) -> Conn {
    match src {
        Src::Pg => Conn::Pg(connect(db).await),
        Src::My => {
            let mut c = my_connect(&my_base()).await;
            c.query_drop(format!("USE `{db}`")).await.unwrap();
            Conn::My(c)
        }
    }
}

fn host_port(url: &str) -> (String, u16) {
    let u = url::Url::parse(url).unwrap();
    (u.host_str().unwrap().to_string(), u.port().unwrap())
}

/// Runs one scenario to its end; panics with the first wrong row.
pub async fn run(sc: &Scenario) -> Outcome {
    eprintln!("torture: {}", sc.label());
    let name = unique("tt");
    let mut rng = StdRng::seed_from_u64(sc.seed);
    // The database and its table.
    let (target, mut admin) = match sc.src {
        Src::Pg => {
            let db = TestDb::new("tt").await;
            let t = Target {
                src: sc.src,
                db_name: db.name.clone(),
                upstream: host_port(&pg_base()),
                topic: format!("{name}.public.t"),
                collection: "public.t".into(),
            };
            (t, Conn::Pg(db.client))
        }
        Src::My => {
            let db = MyDb::new("tt").await;
            let t = Target {
                src: sc.src,
                db_name: db.name.clone(),
                upstream: host_port(&my_base()),
                topic: format!("{name}.{}.t", db.name),
                collection: format!("{}.t", db.name),
            };
            (t, Conn::My(db.conn))
        }
    };
    let (key_defs, pk) = key_columns(sc.src, sc.key);
    if sc.src == Src::Pg && sc.key == Key::TextCi {
        admin
            .exec("CREATE COLLATION sluice_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)")
            .await
            .unwrap();
    }
    let ddl = match sc.src {
        Src::Pg => format!(
            "CREATE TABLE t ({key_defs}, n bigint NOT NULL, ver bigint NOT NULL, pad text, PRIMARY KEY ({}));
             CREATE INDEX t_n ON t (n); ALTER TABLE t REPLICA IDENTITY FULL",
            pk.join(", ")
        ),
        Src::My => format!(
            "CREATE TABLE t ({key_defs}, n bigint NOT NULL, ver bigint NOT NULL, pad text, PRIMARY KEY ({}), KEY (n))",
            pk.join(", ")
        ),
    };
    admin.exec(&ddl).await.unwrap();

    // Preloaded rows: row n has version n.
    let history = Arc::new(Mutex::new(History::default()));
    let preload = sc.preload();
    let mut model = Model {
        key: sc.key,
        src: sc.src,
        next_v: preload + 1,
        next_n: preload,
        present: BTreeMap::new(),
        present_list: Vec::new(),
        absent: Vec::new(),
    };
    {
        let (_, cols) = key_columns(sc.src, sc.key);
        for start in (1..=preload).step_by(1000) {
            let end = (start + 999).min(preload);
            let values: Vec<String> = (start..=end)
                .map(|n| {
                    format!(
                        "({}, {n}, {n}, '{}')",
                        key_literals(sc.src, sc.key, n).join(", "),
                        "p".repeat((n % 50) as usize)
                    )
                })
                .collect();
            admin
                .exec(&format!(
                    "INSERT INTO t ({}, n, ver, pad) VALUES {}",
                    cols.join(", "),
                    values.join(", ")
                ))
                .await
                .unwrap();
            let mut h = history.lock().unwrap();
            for n in start..=end {
                model.add_present(n, n);
                h.rows.entry(n).or_default().push(((n, false), n));
            }
        }
        history.lock().unwrap().start = preload + 1;
    }

    // The proxy in front of the database, the daemon behind it; a broker of its own
    // behind another proxy when the broker's connections are to be cut.
    let proxy = crate::proxy::Proxy::start(target.upstream.clone()).await;
    let broker = if sc.faults.iter().any(|f| f.kind == FaultKind::BrokerCut) {
        Some(OwnBroker::start().await)
    } else {
        None
    };
    let servers = broker.as_ref().map_or_else(brokers, |b| b.servers.clone());
    let mode = match sc.run {
        Run::Initial | Run::Resumed => "initial",
        Run::Streaming | Run::Incremental => "no_data",
    };
    let extra = format!(
        "[format]\nschemas = false\n[snapshot]\nmode = \"{mode}\"\nchunk_size = {}\n",
        [50, 100, 1024][rng.random_range(0..3)]
    );
    let connector_text = match sc.src {
        Src::Pg => format!(
            "name = \"{name}\"\nsource = \"postgres\"\ntopic_prefix = \"{name}\"\n{extra}\n[postgres]\nurl = \"postgres://sluice:sluice@127.0.0.1:{}/{}\"\nslot = \"{name}\"\npublication = \"{name}\"\ntables = [\"public.t\"]\nterminate_stale_walsender = {}\n",
            proxy.port,
            target.db_name,
            sc.store == Store::Cluster
        ),
        Src::My => my_connector(
            &name,
            &name,
            &format!("mysql://sluice:sluice@127.0.0.1:{}", proxy.port),
            std::slice::from_ref(&target.collection),
            server_id(),
            &extra,
        ),
    };
    let count = if sc.store == Store::Cluster { 2 } else { 1 };
    let mut nodes = Nodes::default();
    for _ in 0..count {
        let listen = format!("127.0.0.1:{}", free_port());
        // In cluster mode an owner that lost its assignment may still deliver what it had
        // queued, for at most message.timeout.ms: the handoff delay a new owner waits after
        // an unclean take-over must be longer (as in production, where it defaults to the
        // producer's timeout), or the old owner's late records land after the new owner's.
        let sink = if sc.store == Store::Cluster {
            format!("type = \"kafka\"\nbootstrap_servers = \"{servers}\"\n[sink.properties]\n\"message.timeout.ms\" = \"{CLUSTER_MESSAGE_TIMEOUT_MS}\"")
        } else {
            format!("type = \"kafka\"\nbootstrap_servers = \"{servers}\"")
        };
        let daemon = Daemon::new(&sink, &[("c.toml", connector_text.clone())]);
        if sc.store != Store::File {
            let path = daemon.dir.join("config/sluice.toml");
            let text = std::fs::read_to_string(&path).unwrap().replace(
                "store = \"file\"",
                &format!(
                    "store = \"kafka\"\ntopic = \"{name}-offsets\"\ntopic_partitions = 1\ntopic_replication_factor = 1"
                ),
            );
            std::fs::write(path, text).unwrap();
        }
        daemon.append_daemon_config(&format!("[api]\nlisten = \"{listen}\"\n"));
        if sc.store == Store::Cluster {
            daemon.append_daemon_config(&format!(
                "[cluster]\ngroup_id = \"{name}-group\"\nsession_timeout_ms = {CLUSTER_SESSION_MS}\nassignment_partitions = 2\nhandoff_delay_ms = {}\n",
                CLUSTER_MESSAGE_TIMEOUT_MS + 2000
            ));
        }
        nodes.daemons.push(daemon);
        nodes.apis.push(format!("http://{listen}"));
    }
    for d in &mut nodes.daemons {
        d.start();
    }
    if matches!(sc.run, Run::Streaming | Run::Incremental) {
        nodes.wait_streaming(&name).await;
    }

    // The workload.
    let stop = Arc::new(AtomicBool::new(false));
    // While `hold` is set the workload waits (`idle` says it does), then reconnects.
    let held = Arc::new(AtomicBool::new(false));
    let idle = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, hold, idle) = (stop.clone(), held.clone(), idle.clone());
        let history = history.clone();
        let (src, db_name) = (sc.src, target.db_name.clone());
        let mut conn = open(src, &db_name).await;
        let mut wrng = StdRng::seed_from_u64(sc.seed.wrapping_mul(31).wrapping_add(7));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if hold.load(Ordering::SeqCst) {
                    idle.store(true, Ordering::SeqCst);
                    while hold.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    conn = open(src, &db_name).await;
                    idle.store(false, Ordering::SeqCst);
                    continue;
                }
                let (sql, toks) = next_op(&mut model, &mut wrng);
                // A write cut by the database going away (a restart) either committed or
                // did not: reconnect, look, and write it again only if it did not.
                let mut tries = 0;
                while let Err(e) = conn.exec(&sql).await {
                    tries += 1;
                    assert!(tries < 50, "the workload cannot write: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let Ok(mut fresh) =
                        tokio::time::timeout(Duration::from_secs(5), try_open(src, &db_name))
                            .await
                            .unwrap_or(Err(()))
                    else {
                        continue;
                    };
                    let applied = fresh.applied(&toks).await;
                    conn = fresh;
                    if applied == Some(true) {
                        break;
                    }
                }
                {
                    let mut h = history.lock().unwrap();
                    h.writes += 1;
                    for (n, tok, time) in toks {
                        h.rows.entry(n).or_default().push((tok, time));
                    }
                }
                tokio::time::sleep(Duration::from_millis(wrng.random_range(1..6))).await;
            }
            model
        })
    };
    let started = Instant::now();
    let mut signals = 0;
    if sc.run == Run::Incremental {
        tokio::time::sleep(Duration::from_millis(300)).await;
        // As a client must: a signal the connector did not record (it stopped or moved
        // first: 503; not run by that daemon: 404) is sent again to whoever runs it.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let api = nodes.apis[nodes.owner(&name).await].clone();
            let (status, body) = http_json(
                "POST",
                &format!("{api}/connectors/{name}/signals"),
                None,
                &json!({"id": "tt-1", "type": "execute-snapshot",
                        "data": {"data-collections": [target.collection], "type": "incremental"}}),
            )
            .await;
            if status == 202 {
                break;
            }
            assert!(
                matches!(status, 503 | 404) && Instant::now() < deadline,
                "signal: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        signals += 1;
    }

    // The faults.
    let mut boundaries = Vec::new();
    for f in &sc.faults {
        let at = Duration::from_millis(f.at_ms);
        if let Some(wait) = at.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let before = high_watermark_on(&servers, &target.topic);
        let hold = Duration::from_millis(f.hold_ms);
        let owner = nodes.owner(&name).await;
        let api = nodes.apis[owner].clone();
        match f.kind {
            FaultKind::Kill9 => {
                let daemon = &mut nodes.daemons[owner];
                daemon.kill9();
                tokio::time::sleep(hold.min(Duration::from_millis(800))).await;
                daemon.start();
            }
            FaultKind::Freeze => {
                // In cluster mode past the session: the other daemon takes over.
                let hold = if sc.store == Store::Cluster {
                    Duration::from_millis(CLUSTER_SESSION_MS + 3000)
                } else {
                    hold
                };
                nodes.daemons[owner].signal("STOP");
                tokio::time::sleep(hold).await;
                nodes.daemons[owner].signal("CONT");
            }
            FaultKind::Rebalance => {
                let daemon = &mut nodes.daemons[owner];
                daemon.stop();
                tokio::time::sleep(hold).await;
                daemon.start();
            }
            FaultKind::BrokerCut => {
                let b = broker.as_ref().expect("started for this fault");
                b.proxy.cut(true);
                tokio::time::sleep(hold).await;
                b.proxy.cut(false);
            }
            FaultKind::DbCut => {
                proxy.cut(true);
                tokio::time::sleep(hold).await;
                proxy.cut(false);
            }
            FaultKind::DbRestart => {
                held.store(true, Ordering::SeqCst);
                while !idle.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                restart_database(sc.src);
                held.store(false, Ordering::SeqCst);
            }
            FaultKind::StopResume => {
                let (s, b) = http("PUT", &format!("{api}/connectors/{name}/stop"), None).await;
                assert!(s == 204 || s == 202, "stop: {s} {b}");
                tokio::time::sleep(hold).await;
                let (s, b) = http("PUT", &format!("{api}/connectors/{name}/resume"), None).await;
                assert!(s == 202, "resume: {s} {b}");
            }
            FaultKind::EditFile => {
                for daemon in &nodes.daemons {
                    let path = daemon.dir.join("connectors/c.toml");
                    let mut text = std::fs::read_to_string(&path).unwrap();
                    text.push_str(&format!("# edited at {} ms\n", f.at_ms));
                    std::fs::write(&path, text).unwrap();
                }
                tokio::time::sleep(hold).await;
            }
        }
        // What the old run had in flight lands within a few seconds of the fault; the
        // connector runs again (somewhere) before the window closes. A daemon thawed after
        // its session may learn only then that its assignment was lost, and restart the
        // connector from the committed position: its session is part of the window.
        nodes.wait_streaming(&name).await;
        // A broker cut hides the group from the daemon as a freeze does: it may learn of the
        // lost assignment only after the cut, within a session.
        let settle = if sc.store == Store::Cluster
            && matches!(f.kind, FaultKind::Freeze | FaultKind::BrokerCut)
        {
            CLUSTER_SESSION_MS + 2000
        } else {
            1500
        };
        tokio::time::sleep(Duration::from_millis(settle)).await;
        boundaries.push(Boundary {
            kind: f.kind,
            before,
            after: high_watermark_on(&servers, &target.topic),
        });
    }
    if let Some(rest) = Duration::from_secs(sc.seconds).checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    stop.store(true, Ordering::Relaxed);
    let model = writer.await.unwrap();
    let history = Arc::try_unwrap(history).ok().unwrap().into_inner().unwrap();

    // The end state, from the database and from the model (they must agree).
    let mut admin = open(sc.src, &target.db_name).await;
    let table = admin.state().await;
    assert_eq!(
        table, model.present,
        "the workload's model disagrees with the table (a harness bug)"
    );
    let expected: BTreeMap<i64, Value> = table
        .iter()
        .map(|(n, v)| (*n, json!({"n": n, "ver": v})))
        .collect();
    let topic = target.topic.clone();
    let reader = servers.clone();
    let msgs = tokio::task::spawn_blocking(move || {
        read_topic_until_on(&reader, &topic, Duration::from_secs(240), |m| {
            replay_rows(m) == expected
        })
    })
    .await
    .unwrap();
    let outcome = check(sc, &history, &table, &msgs, &boundaries, signals).unwrap_or_else(|e| {
        let logs = nodes.logs();
        let tail: Vec<&str> = logs.lines().rev().take(80).collect();
        panic!(
            "torture {}\n{e}\nlast daemon log lines (newest first):\n{}",
            sc.label(),
            tail.join("\n")
        )
    });
    for d in &mut nodes.daemons {
        d.stop();
    }
    proxy.close();
    drop_source(&target, &name).await;
    eprintln!(
        "torture: ok {} — {} writes, {} records, {} redelivered",
        sc.label(),
        history.writes,
        outcome.records,
        outcome.duplicates
    );
    Outcome {
        writes: history.writes,
        faults: sc.faults.len(),
        ..outcome
    }
}

/// The session timeout of cluster scenarios.
const CLUSTER_SESSION_MS: u64 = 6000;
/// The cluster daemons' producer timeout (see the handoff delay).
const CLUSTER_MESSAGE_TIMEOUT_MS: u64 = 4000;

/// The daemons of a scenario (two in cluster mode) and their APIs.
#[derive(Default)]
struct Nodes {
    daemons: Vec<Daemon>,
    apis: Vec<String>,
}

impl Nodes {
    /// The daemon that runs the connector now (the first when none says so within 30 s).
    async fn owner(&self, name: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for (i, api) in self.apis.iter().enumerate() {
                let (status, body) =
                    http("GET", &format!("{api}/sluice/connectors/{name}"), None).await;
                if status == 200 {
                    let v: Value = serde_json::from_str(&body).unwrap_or_default();
                    if matches!(
                        v["state"].as_str(),
                        Some("starting" | "snapshotting" | "streaming")
                    ) {
                        return i;
                    }
                }
            }
            if self.apis.len() == 1 || Instant::now() > deadline {
                return 0;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until a daemon reports the connector streaming.
    async fn wait_streaming(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            for api in &self.apis {
                let (status, body) =
                    http("GET", &format!("{api}/sluice/connectors/{name}"), None).await;
                if status == 200 && body.contains("\"streaming\"") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{name} never streamed; logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn logs(&self) -> String {
        self.daemons
            .iter()
            .enumerate()
            .map(|(i, d)| format!("--- daemon {i}\n{}", d.logs()))
            .collect()
    }
}

/// A tansu broker of a scenario's own (memory storage), reached through a proxy whose
/// address it advertises, so that cutting the proxy cuts every client.
struct OwnBroker {
    child: std::process::Child,
    proxy: crate::proxy::Proxy,
    servers: String,
}

impl OwnBroker {
    async fn start() -> OwnBroker {
        let port = free_port();
        let proxy = crate::proxy::Proxy::start(("127.0.0.1".into(), port)).await;
        let log = std::fs::File::create(
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("tansu")),
        )
        .unwrap();
        let child = std::process::Command::new("tansu")
            .args([
                "broker",
                "--kafka-listener-url",
                &format!("tcp://127.0.0.1:{port}"),
                "--kafka-advertised-listener-url",
                &format!("tcp://127.0.0.1:{}", proxy.port),
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("tansu (scripts/setup installs it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let servers = format!("127.0.0.1:{}", proxy.port);
        OwnBroker {
            child,
            proxy,
            servers,
        }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.proxy.close();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Restarts the shared database server (fast shutdown, start) and waits until it answers.
fn restart_database(src: Src) {
    let state = std::env::var("SLUICE_STATE_DIR").unwrap_or_else(|_| "/tmp/sluice-dev".into());
    let scripts = format!("{}/scripts", env!("CARGO_MANIFEST_DIR"));
    let ok = match src {
        Src::Pg => {
            let pg_bin =
                std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
            let mut cmd = std::process::Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]);
            if !is_root() {
                cmd = std::process::Command::new(format!("{pg_bin}/pg_ctl"));
            } else {
                cmd.arg(format!("{pg_bin}/pg_ctl"));
            }
            cmd.args([
                "-D",
                &format!("{state}/pg"),
                "-l",
                &format!("{state}/postgres.log"),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "restart",
            ])
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        }
        Src::My => {
            crate::common::mysql::stop_server(&std::path::Path::new(&state).join("mariadb"));
            std::process::Command::new("bash")
                .arg(format!("{scripts}/start-mariadb"))
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        }
    };
    assert!(ok, "restarting the {src:?} server failed");
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

/// Drops the connector's slot (PostgreSQL) so that killed runs leave no WAL held.
async fn drop_source(target: &Target, name: &str) {
    if target.src == Src::Pg {
        let c = connect("postgres").await;
        let _ = c
            .execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active",
                &[&name],
            )
            .await;
    }
}

/// A record as rows' versions: `(n, token, op)` for each row it speaks of.
fn tokens_of(m: &Msg) -> Vec<(i64, Tok, String)> {
    let Some(v) = &m.value else { return Vec::new() };
    let p = payload(v);
    let op = p["op"].as_str().unwrap_or_default().to_string();
    let row = |r: &Value| (r["n"].as_i64().unwrap(), r["ver"].as_i64().unwrap());
    match op.as_str() {
        "c" | "r" => {
            let (n, v) = row(&p["after"]);
            vec![(n, (v, false), op)]
        }
        "u" => {
            let (n, v) = row(&p["after"]);
            let mut out = Vec::new();
            if let Some(b) = p["before"].as_object() {
                let (bn, bv) = row(&Value::Object(b.clone()));
                if bn != n {
                    out.push((bn, (bv, true), op.clone()));
                }
            }
            out.push((n, (v, false), op));
            out
        }
        "d" => {
            let (n, v) = row(&p["before"]);
            vec![(n, (v, true), op)]
        }
        _ => Vec::new(),
    }
}

/// The rows a topic describes: `n -> {"n", "ver"}` of each row's last record.
pub fn replay_rows(msgs: &[Msg]) -> BTreeMap<i64, Value> {
    let mut state = BTreeMap::new();
    for m in msgs {
        for (n, (v, deleted), _) in tokens_of(m) {
            if deleted {
                state.remove(&n);
            } else {
                state.insert(n, json!({"n": n, "ver": v}));
            }
        }
    }
    state
}

/// The checker (see the module's text). `Err` names the first wrong row.
fn check(
    sc: &Scenario,
    history: &History,
    table: &BTreeMap<i64, i64>,
    msgs: &[Msg],
    boundaries: &[Boundary],
    signals: usize,
) -> Result<Outcome, String> {
    let mut truth: HashMap<i64, HashMap<Tok, i64>> = HashMap::new();
    for (n, toks) in &history.rows {
        truth.insert(*n, toks.iter().map(|(t, time)| (*t, *time)).collect());
    }
    let shown = |n: i64, seen: &[(i64, Tok, String)]| -> String {
        format!(
            "row n={n}: the topic holds (offset, (ver, deleted), op) {seen:?}; the database wrote ((ver, deleted), at) {:?}",
            history.rows.get(&n)
        )
    };
    // Per row, the topic's records in order.
    let mut per_row: BTreeMap<i64, Vec<(i64, Tok, String)>> = BTreeMap::new();
    for m in msgs {
        for (n, tok, op) in tokens_of(m) {
            per_row.entry(n).or_default().push((m.offset, tok, op));
        }
    }
    let near_fault = |first: i64, again: i64| {
        boundaries
            .iter()
            .any(|b| first < b.after && again >= b.before)
    };
    let snapshot_repeats = 1 + boundaries.len() + signals;
    let mut duplicates = 0;
    // The first streamed change: every change written after it must be in the topic.
    let mut first_streamed = i64::MAX;
    for (n, seen) in &per_row {
        let Some(known) = truth.get(n) else {
            return Err(format!(
                "a record of a row never written: {}",
                shown(*n, seen)
            ));
        };
        let mut max: Option<Tok> = None;
        let mut first_at: HashMap<Tok, (i64, usize)> = HashMap::new();
        for (offset, tok, op) in seen {
            let Some(time) = known.get(tok) else {
                return Err(format!(
                    "version {tok:?} at offset {offset} was never written: {}",
                    shown(*n, seen)
                ));
            };
            if op != "r" {
                first_streamed = first_streamed.min(*time);
            }
            if let Some((first, count)) = first_at.get_mut(tok) {
                *count += 1;
                duplicates += 1;
                let ok = if op == "r" {
                    *count <= snapshot_repeats || near_fault(*first, *offset)
                } else {
                    near_fault(*first, *offset)
                };
                if !ok {
                    return Err(format!(
                        "version {tok:?} repeated at offset {offset} (first at {first}) with no fault in between: {}",
                        shown(*n, seen)
                    ));
                }
                continue;
            }
            if let Some(m) = max {
                if *tok < m {
                    return Err(format!(
                        "stale: version {tok:?} ({op}) at offset {offset} after the newer {m:?}: {}",
                        shown(*n, seen)
                    ));
                }
            }
            max = Some(max.map_or(*tok, |m| m.max(*tok)));
            first_at.insert(*tok, (*offset, 1));
        }
    }
    // Nothing missing: with a snapshot of existing rows, changes after the first streamed
    // one; with streaming from the start, every change of the workload.
    let cutoff = match sc.run {
        Run::Streaming | Run::Incremental => history.start,
        Run::Initial | Run::Resumed => first_streamed,
    };
    let mut ns: Vec<&i64> = history.rows.keys().collect();
    ns.sort();
    for n in ns {
        let seen: HashSet<Tok> = per_row
            .get(n)
            .map(|s| s.iter().map(|(_, t, _)| *t).collect())
            .unwrap_or_default();
        for (tok, time) in &history.rows[n] {
            if *time >= cutoff && !seen.contains(tok) {
                return Err(format!(
                    "lost: version {tok:?} written at {time} (changes from {cutoff} on must all be published) is missing: {}",
                    shown(*n, per_row.get(n).map(Vec::as_slice).unwrap_or(&[]))
                ));
            }
        }
    }
    // The replay equals the table.
    let replay = replay_rows(msgs);
    for (n, ver) in table {
        let got = replay.get(n).and_then(|v| v["ver"].as_i64());
        if got != Some(*ver) {
            return Err(format!(
                "the replay ends with {got:?} for a row the table holds at version {ver}: {}",
                shown(*n, per_row.get(n).map(Vec::as_slice).unwrap_or(&[]))
            ));
        }
    }
    for n in replay.keys() {
        if !table.contains_key(n) {
            return Err(format!(
                "the replay holds a row the table does not: {}",
                shown(*n, per_row.get(n).map(Vec::as_slice).unwrap_or(&[]))
            ));
        }
    }
    Ok(Outcome {
        records: msgs.len(),
        duplicates,
        ..Outcome::default()
    })
}
