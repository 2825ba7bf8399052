//! What every source's snapshot shares: the `first` / `true` / `last` markers and progress
//! reporting (status, metrics, a log line every 10 s).

use std::time::{Duration, Instant};

use prometheus::IntCounter;

use crate::event::{ChangeEvent, SnapshotMarker};
use crate::position::SourcePosition;
use crate::source::{SourceContext, SourceItem};

/// Rows between two updates of the snapshot's status and metrics.
const PROGRESS_ROWS: u64 = 1024;
/// How often a long snapshot reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Holds back one event so the last row of the snapshot can be marked `last`.
pub struct Emitter {
    pending: Option<ChangeEvent>,
    /// Rows handed over so far.
    pub sent: u64,
}

impl Emitter {
    /// An emitter with nothing sent.
    pub fn new() -> Self {
        Emitter {
            pending: None,
            sent: 0,
        }
    }

    /// Queues a snapshot row; `false` means stop (shutdown).
    pub async fn push(&mut self, ctx: &mut SourceContext, event: ChangeEvent) -> bool {
        if let Some(mut prev) = self.pending.replace(event) {
            prev.source.snapshot = if self.sent == 0 {
                SnapshotMarker::First
            } else {
                SnapshotMarker::True
            };
            self.sent += 1;
            return ctx.send(SourceItem::Event(Box::new(prev))).await;
        }
        true
    }

    /// Marks the held row `last`, gives it the finished position, and hands over the
    /// checkpoint that ends the snapshot.
    pub async fn finish(&mut self, ctx: &mut SourceContext, done: SourcePosition) -> bool {
        if let Some(mut last) = self.pending.take() {
            last.source.snapshot = SnapshotMarker::Last;
            last.position = done.clone();
            self.sent += 1;
            if !ctx.send(SourceItem::Event(Box::new(last))).await {
                return false;
            }
        }
        ctx.send(SourceItem::Checkpoint(done)).await && ctx.flush().await
    }
}

impl Default for Emitter {
    fn default() -> Self {
        Self::new()
    }
}

/// Progress of one table's snapshot.
pub struct TableProgress {
    label: String,
    estimate: i64,
    rows: u64,
    counter: IntCounter,
    started: Instant,
    last_log: Instant,
}

impl TableProgress {
    /// Starts counting a table (`estimate`: expected rows, 0 when unknown).
    pub fn new(ctx: &SourceContext, label: String, estimate: i64) -> Self {
        let counter = ctx
            .observer
            .metrics
            .snapshot_rows
            .with_label_values(&[&*ctx.observer.connector, &label]);
        TableProgress {
            label,
            estimate,
            rows: 0,
            counter,
            started: Instant::now(),
            last_log: Instant::now(),
        }
    }

    /// Counts one row.
    pub fn row(&mut self, ctx: &SourceContext) {
        self.rows += 1;
        if self.rows.is_multiple_of(PROGRESS_ROWS) {
            ctx.observer
                .snapshot_progress(&self.label, self.rows, self.estimate);
            self.counter.inc_by(PROGRESS_ROWS);
        }
        if self.rows.is_multiple_of(PROGRESS_ROWS) && self.last_log.elapsed() >= PROGRESS_EVERY {
            self.last_log = Instant::now();
            let rate = self.rows as f64 / self.started.elapsed().as_secs_f64().max(0.001);
            let (percent, left) = if self.estimate > 0 {
                let pct = (self.rows as f64 * 100.0 / self.estimate as f64).min(100.0);
                let left = (self.estimate as f64 - self.rows as f64).max(0.0) / rate.max(1.0);
                (pct, left)
            } else {
                (0.0, 0.0)
            };
            tracing::info!(table = %self.label, rows = self.rows, percent = format!("{percent:.1}"), seconds_left = format!("{left:.0}"), "snapshot progress");
        }
    }

    /// Reports the final count; returns the rows read.
    pub fn finish(self, ctx: &SourceContext) -> u64 {
        ctx.observer
            .snapshot_progress(&self.label, self.rows, self.estimate);
        self.counter.inc_by(self.rows % PROGRESS_ROWS);
        self.rows
    }
}
