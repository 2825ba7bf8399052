//! What an incremental snapshot shows while it runs beside the stream: the connector's
//! status (`snapshot` with `kind = "incremental"`) and Debezium's `Incremental Snapshot`
//! notifications of what changed (started, paused, resumed, aborted, a chunk, a table
//! finished, all finished).

use crate::position::IncrementalProgress;
use crate::signal::{Signal, SignalKind};

/// What the status shows of an incremental snapshot (kept by a streaming run): rows
/// published of the table being read, its estimate, when its read began; and the
/// notifications its changes make (Debezium's `Incremental Snapshot` notifications).
#[derive(Debug, Default)]
pub struct Report {
    table: Option<String>,
    rows_done: u64,
    estimate: i64,
    started_ms: i64,
    shown: bool,
    /// The progress last shown.
    prev: Option<IncrementalProgress>,
    /// The id of the `execute-snapshot` signal seen last.
    signal_id: Option<String>,
    /// A `stop-snapshot` signal ended it.
    aborted: bool,
}

impl Report {
    /// The table whose estimate is wanted (the one being read changed), if any.
    pub fn wants_estimate(&self, progress: Option<&IncrementalProgress>) -> Option<String> {
        let table = progress?.tables.first()?;
        (self.table.as_ref() != Some(table)).then(|| table.clone())
    }

    /// A new table is being read, with its catalog estimate (0: unknown).
    pub fn begin_table(&mut self, table: String, estimate: i64) {
        self.table = Some(table);
        self.rows_done = 0;
        self.estimate = estimate;
        self.started_ms = crate::status::now_ms();
    }

    /// A chunk of `rows` rows of the table was published.
    pub fn chunk(&mut self, rows: usize) {
        self.rows_done += rows as u64;
    }

    /// A signal is about to be applied (its id names the notifications).
    pub fn signal(&mut self, signal: &Signal) {
        match signal.kind {
            SignalKind::ExecuteSnapshot { .. } => {
                self.signal_id = Some(signal.id.clone());
                self.aborted = false;
            }
            SignalKind::StopSnapshot { .. } => self.aborted = true,
            _ => {}
        }
    }

    /// Shows the progress in the status and hands the notifications of what changed since
    /// the last call to the pipeline (`[notifications] topic`).
    pub async fn publish(
        &mut self,
        ctx: &mut crate::source::SourceContext,
        connector: &str,
        progress: Option<&IncrementalProgress>,
    ) -> Result<(), crate::source::Stopped> {
        for n in self.show(&ctx.observer, connector, progress) {
            ctx.emit(crate::source::SourceItem::Notification(n)).await?;
        }
        Ok(())
    }

    /// Shows the progress in the status (`snapshot` with `kind = "incremental"`), or clears
    /// it once the snapshot is over; returns the notifications of what changed since the
    /// last call.
    fn show(
        &mut self,
        observer: &crate::status::Observer,
        connector: &str,
        progress: Option<&IncrementalProgress>,
    ) -> Vec<crate::event::Notification> {
        let now = progress.filter(|p| !p.tables.is_empty());
        let notes = self.notifications(connector, now);
        self.prev = now.cloned();
        let Some(p) = now else {
            if self.shown {
                self.shown = false;
                self.table = None;
                let finished = crate::status::FinishedSnapshot {
                    kind: "incremental",
                    id: self.signal_id.clone(),
                    finished_ms: crate::status::now_ms(),
                    aborted: self.aborted,
                };
                observer.update(|s| {
                    if s.snapshot.as_ref().is_some_and(|p| p.kind == "incremental") {
                        s.snapshot = None;
                    }
                    s.snapshot_finished = Some(finished);
                });
            }
            return notes;
        };
        self.shown = true;
        let view = crate::status::SnapshotProgress {
            kind: "incremental",
            table: p.tables[0].clone(),
            rows_done: self.rows_done,
            rows_estimated: self.estimate,
            chunks: Some(p.chunks),
            tables_left: Some(p.tables[1..].to_vec()),
            paused: p.paused,
            started_ms: self.started_ms,
            eta_ms: crate::status::SnapshotProgress::eta(
                self.rows_done,
                self.estimate,
                self.started_ms,
            ),
        };
        observer.update(|s| s.snapshot = Some(view));
        notes
    }

    /// Debezium's notifications for the change from the last progress shown to `now`.
    fn notifications(
        &mut self,
        connector: &str,
        now: Option<&IncrementalProgress>,
    ) -> Vec<crate::event::Notification> {
        let id = self
            .signal_id
            .clone()
            .unwrap_or_else(|| format!("{connector}-incremental"));
        let mut out = Vec::new();
        let mut note = |kind: &'static str, data: Vec<(&str, String)>| {
            let mut additional_data = vec![("connector_name".to_string(), connector.to_string())];
            additional_data.extend(data.into_iter().map(|(k, v)| (k.to_string(), v)));
            tracing::info!(notification = kind, "incremental snapshot notification");
            out.push(crate::event::Notification {
                id: id.clone(),
                aggregate_type: "Incremental Snapshot",
                kind,
                additional_data,
                timestamp_ms: crate::status::now_ms(),
            });
        };
        let collections = |p: &IncrementalProgress| p.tables.join(", ");
        let rows_done = self.rows_done;
        let scanned = |p: &IncrementalProgress| {
            vec![
                ("data_collection", p.tables[0].clone()),
                ("scanned_collection", p.tables[0].clone()),
                ("total_rows_scanned", rows_done.to_string()),
                ("status", "SUCCEEDED".to_string()),
            ]
        };
        match (self.prev.as_ref(), now) {
            (None, Some(n)) => note("STARTED", vec![("data_collections", collections(n))]),
            (Some(p), Some(n)) => {
                if p.tables.first() != n.tables.first() {
                    note("TABLE_SCAN_COMPLETED", scanned(p));
                }
                if n.chunks > p.chunks && p.tables.first() == n.tables.first() {
                    let key = n
                        .last_key
                        .as_ref()
                        .map(|k| {
                            k.iter()
                                .map(|v| v.clone().unwrap_or_default())
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default();
                    note(
                        "IN_PROGRESS",
                        vec![
                            ("data_collections", collections(n)),
                            ("current_collection_in_progress", n.tables[0].clone()),
                            ("last_processed_key", key),
                        ],
                    );
                }
                if n.paused != p.paused {
                    let kind = if n.paused { "PAUSED" } else { "RESUMED" };
                    note(kind, vec![("data_collections", collections(n))]);
                }
            }
            (Some(p), None) => {
                if self.aborted {
                    note("ABORTED", vec![("data_collections", collections(p))]);
                } else {
                    note("TABLE_SCAN_COMPLETED", scanned(p));
                    note("COMPLETED", Vec::new());
                }
                self.aborted = false;
            }
            (None, None) => {}
        }
        out
    }
}
