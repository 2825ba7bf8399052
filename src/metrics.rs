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
/// Offset commits.
pub const OFFSET_COMMITS: &str = "sluice_offset_commits_total";
/// Records handed to the sink and not yet acknowledged.
pub const BROKER_QUEUE_DEPTH: &str = "sluice_broker_queue_depth_records";
/// Pipeline restarts after transient failures.
pub const RECONNECTS: &str = "sluice_reconnects_total";
/// Changes of tables the source received but does not capture (a publication or binlog
/// covering more than the connector's tables); never dropped without being counted.
pub const EVENTS_NOT_CAPTURED: &str = "sluice_events_not_captured_total";
/// Resident memory of the process.
pub const PROCESS_RSS: &str = "sluice_process_resident_memory_bytes";

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
    /// [`OFFSET_COMMITS`]
    pub offset_commits: IntCounterVec,
    /// [`BROKER_QUEUE_DEPTH`]
    pub broker_queue_depth: IntGaugeVec,
    /// [`RECONNECTS`]
    pub reconnects: IntCounterVec,
    /// [`EVENTS_NOT_CAPTURED`]
    pub events_not_captured: IntCounterVec,
    process_rss: IntGaugeVec,
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
            offset_commits: counter(&r, OFFSET_COMMITS, "Offset store commits.", c),
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
            reconnects: counter(
                &r,
                RECONNECTS,
                "Pipeline restarts after transient failures.",
                c,
            ),
            process_rss: gauge(&r, PROCESS_RSS, "Resident memory of the process.", &[]),
            registry: r,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        if let Some(rss) = resident_bytes() {
            self.process_rss.with_label_values(&[] as &[&str]).set(rss);
        }
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
