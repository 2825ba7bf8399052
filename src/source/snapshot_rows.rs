//! What every source's snapshot shares: the `source.snapshot` markers and progress reporting
//! (status, metrics, a log line every 10 s).

use std::time::{Duration, Instant};

use prometheus::IntCounter;

use std::sync::Arc;

use crate::event::{ChangeEvent, SnapshotMarker, TableSchema};
use crate::position::SourcePosition;
use crate::source::{SourceContext, SourceItem};

/// Rows between two updates of the snapshot's status and metrics.
const PROGRESS_ROWS: u64 = 1024;
/// How often a long snapshot reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Holds back one event so that the last row of each table, and of the snapshot, can be
/// marked. Debezium's order decides a row that is several things at once: `last` (of the
/// snapshot), then `first` (of the snapshot), then `last_in_data_collection`, then
/// `first_in_data_collection`, then `true`.
pub struct Emitter {
    pending: Option<Pending>,
    /// Rows handed over so far.
    pub sent: u64,
}

struct Pending {
    event: ChangeEvent,
    table: Option<Arc<TableSchema>>,
    first_in_table: bool,
}

/// Whether two rows belong to the same table (the same shape is the same `Arc` while a
/// table is read: no name comparison per row).
fn same_table(a: Option<&Arc<TableSchema>>, b: Option<&Arc<TableSchema>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a.id == b.id,
        (None, None) => true,
        _ => false,
    }
}

/// The marker of a row from where it stands.
fn marker(first: bool, last: bool, first_in_table: bool, last_in_table: bool) -> SnapshotMarker {
    if last {
        SnapshotMarker::Last
    } else if first {
        SnapshotMarker::First
    } else if last_in_table {
        SnapshotMarker::LastInDataCollection
    } else if first_in_table {
        SnapshotMarker::FirstInDataCollection
    } else {
        SnapshotMarker::True
    }
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
        let table = event.table.clone();
        let first_in_table = self
            .pending
            .as_ref()
            .is_none_or(|p| !same_table(p.table.as_ref(), table.as_ref()));
        let next = Pending {
            event,
            table,
            first_in_table,
        };
        if let Some(prev) = self.pending.replace(next) {
            let last_in_table = first_in_table;
            let mut event = prev.event;
            event.source.snapshot =
                marker(self.sent == 0, false, prev.first_in_table, last_in_table);
            self.sent += 1;
            return ctx.send(SourceItem::Event(Box::new(event))).await;
        }
        true
    }

    /// Marks the held row `last`, gives it the finished position, and hands over the
    /// checkpoint that ends the snapshot.
    pub async fn finish(&mut self, ctx: &mut SourceContext, done: SourcePosition) -> bool {
        if let Some(pending) = self.pending.take() {
            let mut last = pending.event;
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

#[cfg(test)]
mod tests {
    use super::marker;
    use crate::event::SnapshotMarker::*;

    #[test]
    fn markers_in_debeziums_order() {
        // (first of snapshot, last of snapshot, first of table, last of table)
        assert_eq!(marker(true, false, true, false), First);
        assert_eq!(marker(true, false, true, true), First);
        assert_eq!(marker(false, false, false, true), LastInDataCollection);
        assert_eq!(marker(false, false, true, true), LastInDataCollection);
        assert_eq!(marker(false, false, true, false), FirstInDataCollection);
        assert_eq!(marker(false, false, false, false), True);
        assert_eq!(marker(true, true, true, true), Last);
        assert_eq!(marker(false, true, false, true), Last);
    }
}
