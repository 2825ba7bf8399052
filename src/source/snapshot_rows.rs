//! What every source's snapshot shares: the `source.snapshot` markers and progress reporting
//! (status, metrics, a log line every 10 s), and the parts of a parallel snapshot (key ranges,
//! per-table channels, publishing in table order).

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

/// A parallel snapshot splits a table into key ranges (one per session) from this many rows
/// (the catalog's estimate) on.
pub const SPLIT_ROWS: i64 = 10_240;

/// The key column a table can be split by: a one-column integer key.
pub fn integer_key(table: &crate::event::TableSchema) -> Option<&str> {
    use crate::event::ColumnKind;
    match table.key.as_slice() {
        [i] => {
            let c = &table.columns[*i];
            matches!(
                c.kind,
                ColumnKind::Int8 | ColumnKind::Int16 | ColumnKind::Int32 | ColumnKind::Int64
            )
            .then_some(c.name.as_str())
        }
        _ => None,
    }
}

/// `WHERE` conditions splitting the keys `min..=max` of the (quoted) column `col` into `n`
/// consecutive ranges, in key order; the first and last are open-ended, so together they
/// cover every row.
pub fn key_ranges(col: &str, min: i64, max: i64, n: usize) -> Vec<String> {
    let span = (max as i128 - min as i128 + 1).max(1);
    let n = (n as i128).min(span).max(1);
    let bounds: Vec<i64> = (1..n)
        .map(|i| (min as i128 + span * i / n) as i64)
        .collect();
    if bounds.is_empty() {
        return Vec::new();
    }
    let mut out = vec![format!("{col} < {}", bounds[0])];
    for w in bounds.windows(2) {
        out.push(format!("{col} >= {} AND {col} < {}", w[0], w[1]));
    }
    out.push(format!("{col} >= {}", bounds[bounds.len() - 1]));
    out
}

/// Rows of one table a parallel session sends ahead (the channel's bound).
pub const PREFETCH_ROWS: usize = 1024;

/// Bytes all parallel sessions together may read ahead of what is published (rows held in
/// the channels): wide rows are bounded by bytes, not only by [`PREFETCH_ROWS`]. A row
/// larger than this still passes, alone.
pub const PREFETCH_BYTES: usize = 64 << 20;

/// From a parallel snapshot session to the publishing loop, per table.
pub enum TableMsg {
    /// The table is read; its estimated rows.
    Start(i64),
    /// The table no longer exists.
    Skipped,
    /// One row, with its share of the read-ahead budget (returned once it is published).
    Row(Box<ChangeEvent>, tokio::sync::OwnedSemaphorePermit),
    /// All its rows were sent.
    Done,
}

/// A session's end of one table's channel, with the read-ahead byte budget all sessions
/// share.
#[derive(Clone)]
pub struct AheadSender {
    tx: tokio::sync::mpsc::Sender<TableMsg>,
    budget: Arc<tokio::sync::Semaphore>,
}

impl AheadSender {
    /// Sends a control message (`Start`, `Skipped`, `Done`); `Err` when the reader is gone.
    pub async fn send(&self, msg: TableMsg) -> Result<(), ()> {
        self.tx.send(msg).await.map_err(|_| ())
    }
}

/// Budget units: KiB (a semaphore counts at most `u32::MAX` permits).
fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

/// Where a snapshot table's rows go (used inside the crate, never as `dyn`: the returned
/// future's `Send`-ness follows each implementation).
#[allow(async_fn_in_trait)]
pub trait RowOut {
    /// Hands a row on; `false` when the snapshot must stop.
    async fn row(&mut self, event: ChangeEvent) -> bool;
}

/// Straight to the pipeline (a sequential snapshot).
pub struct Direct<'a> {
    /// Marks and hands over the rows.
    pub emitter: &'a mut Emitter,
    /// The source's channels.
    pub ctx: &'a mut SourceContext,
    /// The table's progress.
    pub progress: TableProgress,
}

impl RowOut for Direct<'_> {
    async fn row(&mut self, event: ChangeEvent) -> bool {
        if !self.emitter.push(self.ctx, event).await {
            return false;
        }
        self.progress.row(self.ctx);
        true
    }
}

/// To the publishing loop (a parallel snapshot): each row waits for its bytes in the
/// shared read-ahead budget.
pub struct Channel(pub AheadSender);

impl RowOut for Channel {
    async fn row(&mut self, event: ChangeEvent) -> bool {
        let bytes = crate::event::row_bytes(&event.before) + crate::event::row_bytes(&event.after);
        let want = kib(bytes).clamp(1, kib(PREFETCH_BYTES));
        let Ok(permit) = self.0.budget.clone().acquire_many_owned(want).await else {
            return false;
        };
        self.0
            .tx
            .send(TableMsg::Row(Box::new(event), permit))
            .await
            .is_ok()
    }
}

/// One bounded channel per table: the senders (taken by the sessions) and the receivers.
pub fn table_channels(
    n: usize,
) -> (
    Vec<Option<AheadSender>>,
    Vec<tokio::sync::mpsc::Receiver<TableMsg>>,
) {
    let budget = Arc::new(tokio::sync::Semaphore::new(kib(PREFETCH_BYTES) as usize));
    (0..n)
        .map(|_| {
            let (tx, rx) = tokio::sync::mpsc::channel(PREFETCH_ROWS);
            (
                Some(AheadSender {
                    tx,
                    budget: budget.clone(),
                }),
                rx,
            )
        })
        .unzip()
}

/// Publishes the tables' rows table by table, in the order of `names`, as the sessions
/// send them; `false` when shutdown came first or a session ended without finishing its
/// table (its error is then the snapshot's). Owns the receivers: when it ends, the sessions
/// stop waiting for a reader.
pub async fn publish_in_order(
    ctx: &mut SourceContext,
    emitter: &mut Emitter,
    names: &[String],
    mut receivers: Vec<tokio::sync::mpsc::Receiver<TableMsg>>,
) -> bool {
    for (name, rx) in names.iter().zip(receivers.iter_mut()) {
        let mut progress = match rx.recv().await {
            Some(TableMsg::Start(estimate)) => TableProgress::new(ctx, name.clone(), estimate),
            Some(TableMsg::Skipped) => continue,
            _ => return false,
        };
        loop {
            match rx.recv().await {
                Some(TableMsg::Row(event, permit)) => {
                    if !emitter.push(ctx, *event).await {
                        return false;
                    }
                    // Published: its bytes may be read ahead again.
                    drop(permit);
                    progress.row(ctx);
                }
                Some(TableMsg::Done) => break,
                _ => return false,
            }
        }
        let rows = progress.finish(ctx);
        tracing::info!(table = %name, rows, "snapshot of table finished");
        rx.close();
    }
    true
}

#[cfg(test)]
mod ahead_tests {
    use super::*;
    use crate::event::{ChangeEvent, Op, SnapshotMarker, SourceDetail, SourceMeta, Value};

    fn wide_row(mib: usize) -> ChangeEvent {
        ChangeEvent {
            op: Op::Read,
            table: None,
            before: None,
            after: Some(vec![Value::text("x".repeat(mib << 20))]),
            source: SourceMeta {
                ts_us: 0,
                snapshot: SnapshotMarker::True,
                db: "d".into(),
                detail: SourceDetail::Postgres {
                    tx_id: None,
                    lsn: None,
                    last_commit_lsn: None,
                    origin: None,
                    origin_lsn: None,
                },
            },
            message: None,
            transaction: None,
            position: crate::position::SourcePosition::Postgres(crate::position::PgPosition::at(0)),
        }
    }

    /// Parallel sessions read ahead by bytes: wide rows wait for published ones (1,024 rows
    /// of 40 MiB used to be allowed per table), and a row wider than the budget passes alone.
    #[tokio::test]
    async fn read_ahead_is_bounded_by_bytes() {
        let (mut senders, mut receivers) = table_channels(1);
        let sender = senders[0].take().unwrap();
        let mut out = Channel(sender.clone());
        let mut other = Channel(sender);
        assert!(out.row(wide_row(40)).await);
        let mut second = Box::pin(other.row(wide_row(40)));
        assert!(
            tokio::time::timeout(Duration::from_millis(200), &mut second)
                .await
                .is_err(),
            "a second 40 MiB row waits while the first is held"
        );
        let first = receivers[0].recv().await;
        drop(first);
        assert!(tokio::time::timeout(Duration::from_secs(5), &mut second)
            .await
            .unwrap());
        drop(receivers[0].recv().await);
        // Wider than the whole budget: passes once nothing else is held.
        assert!(
            tokio::time::timeout(Duration::from_secs(5), out.row(wide_row(100)))
                .await
                .unwrap()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{key_ranges, marker};
    use crate::event::SnapshotMarker::*;

    #[test]
    fn key_ranges_cover_every_key_once() {
        assert_eq!(
            key_ranges("id", 1, 100, 3),
            vec!["id < 34", "id >= 34 AND id < 67", "id >= 67"]
        );
        assert!(key_ranges("id", 5, 5, 3).is_empty());
        assert_eq!(key_ranges("id", 1, 2, 3), vec!["id < 2", "id >= 2"]);
        assert_eq!(key_ranges("k", i64::MIN, i64::MAX, 4).len(), 4);
    }

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
