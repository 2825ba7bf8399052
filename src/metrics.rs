//! Prometheus metrics: names in one place (`sluice_<what>_<unit>[_total]`), labels limited to
//! `connector` and `table`.

use prometheus::{Encoder as _, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

/// Change events read from the source.
pub const EVENTS_READ: &str = "sluice_events_read_total";
/// Records the broker acknowledged.
pub const RECORDS_PUBLISHED: &str = "sluice_records_published_total";
/// Records the broker did not accept.
pub const RECORDS_FAILED: &str = "sluice_records_failed_total";
/// Bytes (keys and values) the broker acknowledged.
pub const BYTES_PUBLISHED: &str = "sluice_published_bytes_total";
/// Snapshot rows read.
pub const SNAPSHOT_ROWS: &str = "sluice_snapshot_rows_total";
/// Snapshot rows estimated (from `pg_class.reltuples`).
pub const SNAPSHOT_ROWS_ESTIMATED: &str = "sluice_snapshot_rows_estimated";
/// Database commit time to broker acknowledgement of the last acknowledged event.
pub const SOURCE_LAG_MS: &str = "sluice_source_lag_milliseconds";
/// PostgreSQL: `pg_current_wal_lsn() - confirmed_flush_lsn` of the connector's slot.
pub const SLOT_LAG_BYTES: &str = "sluice_slot_lag_bytes";
/// MySQL / MariaDB: binlog bytes between the connector's read position and the server's end.
pub const BINLOG_LAG_BYTES: &str = "sluice_binlog_lag_bytes";
/// Offset commits.
pub const OFFSET_COMMITS: &str = "sluice_offset_commits_total";
/// Exactly-once: Kafka transactions by outcome (`committed`, `aborted`).
pub const TRANSACTIONS: &str = "sluice_transactions_total";
/// Exactly-once: how long committing a transaction took.
pub const TRANSACTION_COMMIT_SECONDS: &str = "sluice_transaction_commit_seconds";
/// Records handed to the sink and not yet acknowledged.
pub const BROKER_QUEUE_DEPTH: &str = "sluice_broker_queue_depth_records";
/// Pipeline restarts after transient failures.
pub const RECONNECTS: &str = "sluice_reconnects_total";
/// Changes of tables the source received but does not capture (a publication or binlog
/// covering more than the connector's tables); never dropped without being counted.
pub const EVENTS_NOT_CAPTURED: &str = "sluice_events_not_captured_total";
/// Values the source could not read (published as text or null, logged once per column).
pub const VALUES_UNREADABLE: &str = "sluice_values_unreadable_total";
/// Resident memory of the process (deprecated: `process_resident_memory_bytes`).
pub const PROCESS_RSS: &str = "sluice_process_resident_memory_bytes";
/// Version, commit and librdkafka version (value 1).
pub const BUILD_INFO: &str = "sluice_build_info";
/// 1 for a connector's current state, 0 for the others.
pub const CONNECTOR_STATE: &str = "sluice_connector_state";
/// 1 while a connector is connected to its source (snapshotting or streaming).
pub const CONNECTED: &str = "sluice_connected";
/// 1 once a connector's snapshot is done (or was not needed) and it streams.
pub const SNAPSHOT_COMPLETED: &str = "sluice_snapshot_completed";
/// 1 while a snapshot runs, by kind (`initial`, `incremental`: Debezium's `SnapshotRunning`,
/// which an incremental snapshot beside the stream sets too).
pub const SNAPSHOT_RUNNING: &str = "sluice_snapshot_running";
/// Chunks an incremental snapshot has published so far (Debezium's `chunk` progress).
pub const INCREMENTAL_SNAPSHOT_CHUNKS: &str = "sluice_incremental_snapshot_chunks";
/// Time since the connector last read an event (Debezium's `MilliSecondsSinceLastEvent`).
pub const MS_SINCE_LAST_EVENT: &str = "sluice_milliseconds_since_last_event";
/// Seconds the oldest unacknowledged change is behind its commit: 0 when everything read is
/// acknowledged (caught up), growing while records wait.
pub const SOURCE_LAG_SECONDS: &str = "sluice_source_lag_seconds";

/// Every connector state's label value, in `sluice_connector_state`.
pub const STATES: [&str; 9] = [
    "starting",
    "snapshotting",
    "streaming",
    "paused",
    "failed",
    "finished",
    "stopped",
    "unassigned",
    "retrying",
];

/// `sluice_connector_retrying_seconds`.
pub const RETRYING_SECONDS: &str = "sluice_connector_retrying_seconds";

/// Every metric Sluice exports.
pub struct Metrics {
    registry: Registry,
    /// [`EVENTS_READ`]
    pub events_read: IntCounterVec,
    /// [`RECORDS_PUBLISHED`]
    pub records_published: IntCounterVec,
    /// [`RECORDS_FAILED`]
    pub records_failed: IntCounterVec,
    /// [`BYTES_PUBLISHED`]
    pub bytes_published: IntCounterVec,
    /// [`SNAPSHOT_ROWS`]
    pub snapshot_rows: IntCounterVec,
    /// [`SNAPSHOT_ROWS_ESTIMATED`]
    pub snapshot_rows_estimated: IntGaugeVec,
    /// [`SOURCE_LAG_MS`]
    pub source_lag_ms: IntGaugeVec,
    /// [`SLOT_LAG_BYTES`]
    pub slot_lag_bytes: IntGaugeVec,
    /// [`BINLOG_LAG_BYTES`]
    pub binlog_lag_bytes: IntGaugeVec,
    /// [`OFFSET_COMMITS`]
    pub offset_commits: IntCounterVec,
    /// [`BROKER_QUEUE_DEPTH`]
    pub broker_queue_depth: IntGaugeVec,
    /// [`TRANSACTIONS`]
    pub transactions: IntCounterVec,
    /// [`TRANSACTION_COMMIT_SECONDS`]
    pub transaction_commit_seconds: prometheus::HistogramVec,
    /// [`RECONNECTS`]
    pub reconnects: IntCounterVec,
    /// [`EVENTS_NOT_CAPTURED`]
    pub events_not_captured: IntCounterVec,
    /// [`VALUES_UNREADABLE`]
    pub values_unreadable: IntCounterVec,
    /// [`CONNECTOR_STATE`]
    pub connector_state: IntGaugeVec,
    /// [`CONNECTED`]
    pub connected: IntGaugeVec,
    /// [`SNAPSHOT_COMPLETED`]
    pub snapshot_completed: IntGaugeVec,
    /// [`SNAPSHOT_RUNNING`]
    pub snapshot_running: IntGaugeVec,
    /// [`INCREMENTAL_SNAPSHOT_CHUNKS`]
    pub incremental_chunks: IntGaugeVec,
    /// [`MS_SINCE_LAST_EVENT`]
    pub ms_since_last_event: IntGaugeVec,
    /// Seconds a connector has been failing and retrying without progress (0: not).
    pub retrying_seconds: IntGaugeVec,
    /// [`SOURCE_LAG_SECONDS`]
    pub source_lag_seconds: prometheus::GaugeVec,
    process_rss: IntGaugeVec,
    process: Process,
    #[allow(dead_code)]
    build_info: IntGaugeVec,
}

/// The standard `process_*` metrics (Prometheus client conventions), read from `/proc`.
struct Process {
    resident: prometheus::IntGauge,
    virtual_bytes: prometheus::IntGauge,
    cpu_seconds: prometheus::Gauge,
    open_fds: prometheus::IntGauge,
    max_fds: prometheus::IntGauge,
    start_time: prometheus::Gauge,
}

impl Process {
    fn new(r: &Registry) -> Self {
        let int = |name: &str, help: &str| {
            let g = prometheus::IntGauge::new(name, help).expect("valid metric");
            r.register(Box::new(g.clone())).expect("unique metric");
            g
        };
        let float = |name: &str, help: &str| {
            let g = prometheus::Gauge::new(name, help).expect("valid metric");
            r.register(Box::new(g.clone())).expect("unique metric");
            g
        };
        Process {
            resident: int(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            virtual_bytes: int(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
            ),
            cpu_seconds: float(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
            ),
            open_fds: int("process_open_fds", "Number of open file descriptors."),
            max_fds: int(
                "process_max_fds",
                "Maximum number of open file descriptors.",
            ),
            start_time: float(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
            ),
        }
    }

    /// Reads `/proc/self` (Linux; left unchanged elsewhere).
    fn refresh(&self) {
        let ticks = 100.0; // USER_HZ on Linux
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name (which may hold spaces) in parentheses.
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                let f: Vec<&str> = rest.split_whitespace().collect();
                // f[0] is field 3 (state): utime 14, stime 15, starttime 22, vsize 23, rss 24.
                let num = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok());
                if let (Some(u), Some(s)) = (num(14), num(15)) {
                    self.cpu_seconds.set((u + s) / ticks);
                }
                if let (Some(start), Some(boot)) = (num(22), boot_time()) {
                    self.start_time.set(boot + start / ticks);
                }
                if let Some(v) = num(23) {
                    self.virtual_bytes.set(v as i64);
                }
                if let Some(pages) = num(24) {
                    self.resident.set(pages as i64 * 4096);
                }
            }
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(dir.count() as i64);
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
            if let Some(n) = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
            {
                self.max_fds.set(n);
            }
        }
    }
}

/// The system's boot time (`btime` of `/proc/stat`), seconds since the epoch.
fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("unique metric");
    g
}

impl Metrics {
    /// A fresh set of metrics in its own registry.
    pub fn new() -> Self {
        let r = Registry::new();
        let ct = &["connector", "table"];
        let c = &["connector"];
        Metrics {
            events_read: counter(&r, EVENTS_READ, "Change events read from the source.", ct),
            records_published: counter(&r, RECORDS_PUBLISHED, "Records the sink acknowledged.", ct),
            records_failed: counter(&r, RECORDS_FAILED, "Records the sink did not accept.", c),
            bytes_published: counter(
                &r,
                BYTES_PUBLISHED,
                "Key and value bytes the sink acknowledged.",
                c,
            ),
            snapshot_rows: counter(&r, SNAPSHOT_ROWS, "Rows read by snapshots.", ct),
            snapshot_rows_estimated: gauge(
                &r,
                SNAPSHOT_ROWS_ESTIMATED,
                "Rows a snapshot expects to read.",
                ct,
            ),
            source_lag_ms: gauge(
                &r,
                SOURCE_LAG_MS,
                "Commit time to acknowledgement of the last event.",
                c,
            ),
            slot_lag_bytes: gauge(
                &r,
                SLOT_LAG_BYTES,
                "WAL bytes between the server's position and the slot's confirmed position.",
                c,
            ),
            binlog_lag_bytes: gauge(
                &r,
                BINLOG_LAG_BYTES,
                "Binlog bytes between the read position and the server's last binlog end.",
                c,
            ),
            offset_commits: counter(&r, OFFSET_COMMITS, "Offset store commits.", c),
            transactions: counter(
                &r,
                TRANSACTIONS,
                "Exactly-once: Kafka transactions by outcome.",
                &["connector", "outcome"],
            ),
            transaction_commit_seconds: {
                let h = prometheus::HistogramVec::new(
                    prometheus::HistogramOpts::new(
                        TRANSACTION_COMMIT_SECONDS,
                        "Exactly-once: time to commit a Kafka transaction.",
                    )
                    .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
                    c,
                )
                .expect("valid metric");
                r.register(Box::new(h.clone())).expect("unique metric");
                h
            },
            broker_queue_depth: gauge(
                &r,
                BROKER_QUEUE_DEPTH,
                "Records awaiting acknowledgement.",
                c,
            ),
            events_not_captured: counter(
                &r,
                EVENTS_NOT_CAPTURED,
                "Changes received for tables the connector does not capture.",
                ct,
            ),
            values_unreadable: counter(
                &r,
                VALUES_UNREADABLE,
                "Values the source could not read, published as text or null (by column).",
                &["connector", "table", "column"],
            ),
            reconnects: counter(
                &r,
                RECONNECTS,
                "Pipeline restarts after transient failures.",
                c,
            ),
            connector_state: gauge(
                &r,
                CONNECTOR_STATE,
                "1 for the connector's current state, 0 for the others.",
                &["connector", "state"],
            ),
            connected: gauge(&r, CONNECTED, "1 while connected to the source.", c),
            snapshot_completed: gauge(
                &r,
                SNAPSHOT_COMPLETED,
                "1 once the snapshot is done (or not needed) and the connector streams.",
                c,
            ),
            snapshot_running: gauge(
                &r,
                SNAPSHOT_RUNNING,
                "1 while a snapshot of this kind (initial, incremental) runs.",
                &["connector", "kind"],
            ),
            incremental_chunks: gauge(
                &r,
                INCREMENTAL_SNAPSHOT_CHUNKS,
                "Chunks the running incremental snapshot has published (0: none runs).",
                c,
            ),
            ms_since_last_event: gauge(
                &r,
                MS_SINCE_LAST_EVENT,
                "Milliseconds since the connector last read an event (-1: none yet).",
                c,
            ),
            retrying_seconds: gauge(
                &r,
                RETRYING_SECONDS,
                "Seconds the connector has been failing and retrying without committing anything new (0: it is not).",
                c,
            ),
            source_lag_seconds: {
                let g = prometheus::GaugeVec::new(
                    Opts::new(
                        SOURCE_LAG_SECONDS,
                        "Seconds the oldest unacknowledged change is behind its commit (0 when caught up).",
                    ),
                    c,
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            process_rss: gauge(
                &r,
                PROCESS_RSS,
                "Resident memory of the process (deprecated: process_resident_memory_bytes).",
                &[],
            ),
            process: Process::new(&r),
            build_info: {
                let g = gauge(
                    &r,
                    BUILD_INFO,
                    "Sluice's version and commit and librdkafka's version (value 1).",
                    &["version", "commit", "librdkafka"],
                );
                g.with_label_values(&[
                    env!("CARGO_PKG_VERSION"),
                    option_env!("SLUICE_COMMIT").unwrap_or("unknown"),
                    &rdkafka::util::get_rdkafka_version().1,
                ])
                .set(1);
                g
            },
            registry: r,
        }
    }

    /// Per table of `connector`: (table, events read, records published), by table name.
    pub fn table_counts(&self, connector: &str) -> Vec<(String, u64, u64)> {
        use prometheus::core::Collector;
        let mut tables: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for (vec, published) in [(&self.events_read, false), (&self.records_published, true)] {
            for family in vec.collect() {
                for m in family.get_metric() {
                    let label = |name: &str| {
                        m.get_label()
                            .iter()
                            .find(|l| l.name() == name)
                            .map(|l| l.value().to_string())
                    };
                    if label("connector").as_deref() != Some(connector) {
                        continue;
                    }
                    let Some(table) = label("table") else {
                        continue;
                    };
                    let entry = tables.entry(table).or_default();
                    let value = m.get_counter().get_value() as u64;
                    if published {
                        entry.1 = value;
                    } else {
                        entry.0 = value;
                    }
                }
            }
        }
        tables.into_iter().map(|(t, (r, p))| (t, r, p)).collect()
    }

    /// The connector's lag in bytes (slot or binlog), when measured.
    pub fn lag_bytes(&self, connector: &str) -> Option<i64> {
        use prometheus::core::Collector;
        [&self.slot_lag_bytes, &self.binlog_lag_bytes]
            .iter()
            .flat_map(|g| g.collect())
            .flat_map(|family| family.get_metric().to_vec())
            .find(|m| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == "connector" && l.value() == connector)
            })
            .map(|m| m.get_gauge().get_value() as i64)
    }

    /// Exports a connector's per-connector counters at 0 from its start.
    pub fn init_connector(&self, connector: &str) {
        for c in [
            &self.records_failed,
            &self.bytes_published,
            &self.offset_commits,
            &self.reconnects,
        ] {
            let _ = c.with_label_values(&[connector]);
        }
        let _ = self.slot_lag_bytes.with_label_values(&[connector]);
        let _ = self.broker_queue_depth.with_label_values(&[connector]);
    }

    /// Sets the state gauges of a connector from its status (at each scrape), and the
    /// time since its last event and its lag.
    pub fn set_connector_view(&self, v: &ConnectorView<'_>) {
        for state in STATES {
            self.connector_state
                .with_label_values(&[v.connector, state])
                .set(i64::from(state == v.state));
        }
        let connected = matches!(v.state, "snapshotting" | "streaming" | "paused");
        self.connected
            .with_label_values(&[v.connector])
            .set(i64::from(connected));
        if matches!(v.state, "streaming" | "finished") {
            self.snapshot_completed
                .with_label_values(&[v.connector])
                .set(1);
        } else if v.state == "snapshotting" {
            self.snapshot_completed
                .with_label_values(&[v.connector])
                .set(0);
        } else {
            let _ = self.snapshot_completed.with_label_values(&[v.connector]);
        }
        for kind in ["initial", "incremental"] {
            self.snapshot_running
                .with_label_values(&[v.connector, kind])
                .set(i64::from(v.snapshot_kind == Some(kind)));
        }
        self.incremental_chunks
            .with_label_values(&[v.connector])
            .set(v.incremental_chunks.unwrap_or(0) as i64);
        self.ms_since_last_event
            .with_label_values(&[v.connector])
            .set(v.last_event_at_ms.map_or(-1, |t| (v.now_ms - t).max(0)));
        self.retrying_seconds
            .with_label_values(&[v.connector])
            .set(v.retrying_s.unwrap_or(0) as i64);
        let waiting = self
            .broker_queue_depth
            .with_label_values(&[v.connector])
            .get();
        let lag = match (waiting, v.acked_source_ms.or(v.read_source_ms)) {
            (0, _) | (_, None) => 0.0,
            (_, Some(t)) => ((v.now_ms - t).max(0)) as f64 / 1000.0,
        };
        self.source_lag_seconds
            .with_label_values(&[v.connector])
            .set(lag);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        if let Some(rss) = resident_bytes() {
            self.process_rss.with_label_values(&[] as &[&str]).set(rss);
        }
        self.process.refresh();
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Resident set size from `/proc/self/statm` (Linux).
fn resident_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// What the state gauges of one connector are set from.
pub struct ConnectorView<'a> {
    /// The connector.
    pub connector: &'a str,
    /// Its state's label (`streaming`, ...).
    pub state: &'a str,
    /// Now, milliseconds since the epoch.
    pub now_ms: i64,
    /// When it last read an event (milliseconds since the epoch).
    pub last_event_at_ms: Option<i64>,
    /// Commit time of the last acknowledged event.
    pub acked_source_ms: Option<i64>,
    /// Commit time of the last event read.
    pub read_source_ms: Option<i64>,
    /// Seconds failing and retrying without progress.
    pub retrying_s: Option<u64>,
    /// The kind of snapshot running (`initial`, `incremental`), if any.
    pub snapshot_kind: Option<&'a str>,
    /// Chunks of the running incremental snapshot.
    pub incremental_chunks: Option<u64>,
}
