//! What each connector is doing, as the admin API and the logs report it.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::metrics::Metrics;

/// A connector's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorState {
    /// Connecting, checking, preparing.
    Starting,
    /// Reading existing rows.
    Snapshotting,
    /// Streaming changes.
    Streaming,
    /// Paused by an operator: nothing is published.
    Paused,
    /// Stopped on an error that needs a fix (see `error`).
    Failed,
    /// Finished its work (`snapshot.mode = initial_only`).
    Finished,
    /// Stopped.
    Stopped,
    /// Cluster mode: another daemon runs it (see `owner`).
    Unassigned,
    /// Failed on something that may pass (a broker, registry or database away) and waits
    /// to try again (see `retry`).
    Retrying,
}

impl ConnectorState {
    /// Whether `/ready` counts this state as ready (everything but starting and failed).
    pub fn is_ready(self) -> bool {
        !matches!(self, ConnectorState::Starting | ConnectorState::Failed)
    }
}

/// Now, milliseconds since the epoch.
pub fn now_ms() -> i64 {
    crate::source::now_us() / 1000
}

/// Retries since the connector last made progress (committed a newer position).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RetryInfo {
    /// Attempts that failed since the last progress.
    pub attempt: u32,
    /// The last failure.
    pub last_error: String,
    /// When the next attempt starts, milliseconds since the epoch.
    pub next_try_ms: i64,
    /// When the first of these failures happened (unable to publish since), milliseconds
    /// since the epoch.
    pub since_ms: i64,
}

/// A snapshot that ended.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FinishedSnapshot {
    /// `initial` or `incremental`.
    pub kind: &'static str,
    /// The `execute-snapshot` signal's id (incremental).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When it ended, milliseconds since the epoch.
    pub finished_ms: i64,
    /// Ended by a `stop-snapshot` signal.
    pub aborted: bool,
}

/// A table an incremental snapshot passed over, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PassedOver {
    /// The table.
    pub table: String,
    /// Why it could not be read.
    pub reason: String,
    /// When, milliseconds since the epoch.
    pub at_ms: i64,
}

/// How many passed-over tables a status keeps (the latest).
pub const MAX_PASSED_OVER: usize = 20;

/// Snapshot progress: an initial (or resumed) snapshot, or an incremental one running
/// beside the stream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SnapshotProgress {
    /// `initial` or `incremental`.
    pub kind: &'static str,
    /// The table being read.
    pub table: String,
    /// Rows read from it so far.
    pub rows_done: u64,
    /// Rows the catalog estimates it holds (0: unknown).
    pub rows_estimated: i64,
    /// Incremental: chunks published so far (all tables).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks: Option<u64>,
    /// Incremental: the tables still to read after this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tables_left: Option<Vec<String>>,
    /// Incremental: paused by a `pause-snapshot` signal.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// When the table's read started, milliseconds since the epoch.
    pub started_ms: i64,
    /// Milliseconds left for this table at the pace so far (from the estimate; none
    /// without one).
    pub eta_ms: Option<i64>,
}

impl SnapshotProgress {
    /// The time left for the table at the pace so far.
    pub fn eta(rows_done: u64, rows_estimated: i64, started_ms: i64) -> Option<i64> {
        let elapsed = now_ms() - started_ms;
        if rows_done == 0 || rows_estimated <= 0 || elapsed <= 0 {
            return None;
        }
        let left = (rows_estimated - rows_done as i64).max(0);
        Some(left.saturating_mul(elapsed) / rows_done as i64)
    }
}

/// A connector's status.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorStatus {
    /// Connector name.
    pub name: String,
    /// Its file.
    pub file: String,
    /// Lifecycle state.
    pub state: ConnectorState,
    /// The error that stopped it, with what to do.
    pub error: Option<String>,
    /// The position of the last event read from the source.
    pub source_position: Option<String>,
    /// The last position committed to the offset store.
    pub committed_offset: Option<String>,
    /// The same position as structured JSON (the offset store's form).
    pub committed_position: Option<crate::position::SourcePosition>,
    /// The position of the last event read, as structured JSON.
    pub read_position: Option<crate::position::SourcePosition>,
    /// Database commit time to acknowledgement of the last acknowledged event.
    pub lag_ms: Option<i64>,
    /// Snapshot progress while snapshotting.
    pub snapshot: Option<SnapshotProgress>,
    /// Events read since the daemon started.
    pub events_read: u64,
    /// Records acknowledged since the daemon started.
    pub records_published: u64,
    /// Paused by an operator (shown as the `paused` state).
    #[serde(skip)]
    pub paused: bool,
    /// Cluster mode: the daemon that runs it (this one, or another).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Failures since the last progress, while there are any (kept across the attempts,
    /// so a connector that fails on every record shows it whatever its current state).
    pub retry: Option<RetryInfo>,
    /// The last snapshot that ended while the daemon ran (so a snapshot too short to be seen
    /// running is still seen finished).
    pub snapshot_finished: Option<FinishedSnapshot>,
    /// Tables incremental snapshots passed over since the daemon started (the latest
    /// [`MAX_PASSED_OVER`]), with the reason.
    pub snapshot_passed_over: Vec<PassedOver>,
    /// When it last read an event, milliseconds since the epoch.
    #[serde(skip)]
    pub last_event_at_ms: Option<i64>,
    /// Commit time of the last acknowledged event, milliseconds since the epoch.
    #[serde(skip)]
    pub acked_source_ms: Option<i64>,
}

impl ConnectorStatus {
    /// A fresh status for a connector being started.
    pub fn new(name: &str, file: &str) -> Self {
        ConnectorStatus {
            name: name.to_string(),
            file: file.to_string(),
            state: ConnectorState::Starting,
            error: None,
            source_position: None,
            committed_offset: None,
            committed_position: None,
            read_position: None,
            lag_ms: None,
            snapshot: None,
            events_read: 0,
            owner: None,
            retry: None,
            snapshot_finished: None,
            snapshot_passed_over: Vec::new(),
            records_published: 0,
            paused: false,
            last_event_at_ms: None,
            acked_source_ms: None,
        }
    }

    /// The status as reported: a paused running connector shows `paused`.
    pub fn view(&self) -> ConnectorStatus {
        let mut v = self.clone();
        if v.paused
            && matches!(
                v.state,
                ConnectorState::Streaming | ConnectorState::Snapshotting | ConnectorState::Starting
            )
        {
            v.state = ConnectorState::Paused;
        }
        v
    }

    /// How long it has been unable to make progress, in seconds (`None`: it has not failed
    /// since it last did).
    pub fn retrying_for_s(&self, now_ms: i64) -> Option<u64> {
        self.retry
            .as_ref()
            .map(|r| (now_ms - r.since_ms).max(0) as u64 / 1000)
    }
}

/// Shared, updated by the pipeline and the source, read by the API.
pub type SharedStatus = Arc<Mutex<ConnectorStatus>>;

/// What a pipeline and its source report through.
#[derive(Clone)]
pub struct Observer {
    /// Connector name (the metrics label).
    pub connector: Arc<str>,
    /// Status.
    pub status: SharedStatus,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Signals sent through the admin API, waiting for the source.
    pub signals: crate::signal::SignalInbox,
}

impl Observer {
    /// Sets the state (a paused connector stays paused until resumed).
    pub fn set_state(&self, state: ConnectorState) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if s.state == ConnectorState::Snapshotting && state == ConnectorState::Streaming {
            s.snapshot_finished = Some(FinishedSnapshot {
                kind: "initial",
                id: None,
                finished_ms: now_ms(),
                aborted: false,
            });
        }
        s.state = state;
        // An incremental snapshot's progress stays while the stream runs.
        if state != ConnectorState::Snapshotting
            && !(state == ConnectorState::Streaming
                && s.snapshot.as_ref().is_some_and(|p| p.kind == "incremental"))
        {
            s.snapshot = None;
        }
        if state != ConnectorState::Failed {
            s.error = None;
        }
    }

    /// Records snapshot progress.
    pub fn snapshot_progress(&self, table: &str, rows_done: u64, rows_estimated: i64) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let started_ms = match &s.snapshot {
            Some(p) if p.kind == "initial" && p.table == table => p.started_ms,
            _ => now_ms(),
        };
        s.snapshot = Some(SnapshotProgress {
            kind: "initial",
            table: table.to_string(),
            rows_done,
            rows_estimated,
            started_ms,
            eta_ms: SnapshotProgress::eta(rows_done, rows_estimated, started_ms),
            ..SnapshotProgress::default()
        });
        self.metrics
            .snapshot_rows_estimated
            .with_label_values(&[&*self.connector, table])
            .set(rows_estimated);
    }

    /// Updates the status with a closure.
    pub fn update(&self, f: impl FnOnce(&mut ConnectorStatus)) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s);
    }

    /// A copy of the status.
    pub fn snapshot(&self) -> ConnectorStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
