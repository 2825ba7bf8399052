//! Sources: connect to a database, snapshot, stream, and hand [`SourceItem`]s to the pipeline.

pub mod columns_check;
pub mod filter;
pub mod incremental;
pub mod mysql;
pub mod postgres;
pub mod progress;
pub mod snapshot_rows;
pub mod start;

use tokio::sync::{mpsc, watch};

use crate::event::ChangeEvent;
use crate::failure::{Classify, Severity};
use crate::position::SourcePosition;

/// What a source hands to the pipeline, in source order.
#[derive(Debug)]
pub enum SourceItem {
    /// A change to publish; its position is committable once it is acknowledged.
    Event(Box<ChangeEvent>),
    /// A position with nothing to publish (a transaction end, an idle keepalive): committable
    /// once everything before it is acknowledged.
    Checkpoint(SourcePosition),
    /// A heartbeat record to publish (`heartbeat_interval_ms`), with the position to commit
    /// once it is acknowledged.
    Heartbeat {
        /// Position to commit with it (none inside a transaction).
        position: Option<SourcePosition>,
        /// When it was emitted, milliseconds since the epoch.
        ts_ms: i64,
    },
    /// A transaction boundary record (`provide_transaction_metadata`).
    Transaction(crate::event::TxMeta),
    /// A DDL statement for the schema-change topic (MySQL / MariaDB).
    SchemaChange(Box<crate::event::SchemaChange>),
    /// A notification for the `[notifications] topic` (nothing to commit).
    Notification(crate::event::Notification),
}

/// Refuses a position set by hand for `connector` that its server has not reached (or, for
/// MySQL / MariaDB, does not have): such a position would skip changes for good.
pub async fn check_settable(
    connector: &crate::config::ConnectorConfig,
    position: &SourcePosition,
) -> Result<(), String> {
    match position {
        SourcePosition::Postgres(p) if connector.postgres.is_some() => {
            postgres::check_settable(connector, p).await
        }
        SourcePosition::Mysql(p) if connector.mysql.is_some() => {
            mysql::check_settable(connector, p).await
        }
        _ => Err(format!(
            "the position is not of connector {}'s kind of source",
            connector.name
        )),
    }
}

impl SourceItem {
    /// About how many bytes the item occupies (for memory bounds, not exact).
    pub fn approx_bytes(&self) -> usize {
        const FIXED: usize = 256;
        FIXED
            + match self {
                SourceItem::Event(e) => {
                    crate::event::row_bytes(&e.before)
                        + crate::event::row_bytes(&e.after)
                        + e.message.as_ref().map_or(0, |m| m.content.len())
                }
                SourceItem::SchemaChange(c) => c.ddl.len(),
                SourceItem::Notification(n) => n
                    .additional_data
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum(),
                SourceItem::Checkpoint(_)
                | SourceItem::Heartbeat { .. }
                | SourceItem::Transaction(_) => 0,
            }
    }
}

/// A source failure.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// PostgreSQL.
    #[error(transparent)]
    Postgres(#[from] postgres::PgError),
    /// MySQL / MariaDB.
    #[error(transparent)]
    Mysql(#[from] mysql::MyError),
    /// The source task panicked (a defect in Sluice): the connector stops, since running
    /// the same input again would panic again.
    #[error("the source task panicked: {0}; please report this with the log")]
    Panicked(String),
    /// A source that is neither (test sources); the message says what happened.
    #[error("{message}")]
    Other {
        /// What happened.
        message: String,
        /// Whether retrying may help.
        severity: Severity,
    },
}

impl Classify for SourceError {
    fn severity(&self) -> Severity {
        match self {
            SourceError::Postgres(e) => e.severity(),
            SourceError::Mysql(e) => e.severity(),
            SourceError::Panicked(_) => Severity::Definite,
            SourceError::Other { severity, .. } => *severity,
        }
    }
}

/// What the pipeline needs of a source: run it, and tell the server what was committed
/// after the run. The pipeline receives one from its caller (the runtime's wiring), so tests
/// can hand it a scripted source.
///
/// The contract: `run` hands [`SourceItem`]s over in source order through the context,
/// starting after the position the offset store holds (reading it itself), and reports the
/// database only positions it reads from `ctx.committed` (never one not yet durable).
pub trait ChangeSource: Send + Sync {
    /// Runs until shutdown, a finished `initial_only` snapshot, or an error.
    fn run<'a>(&'a self, ctx: &'a mut SourceContext) -> SourceFuture<'a, SourceExit>;
    /// After the run: tells the server what was committed, where the protocol has a place
    /// for it (the PostgreSQL slot). Best effort.
    fn after_stop<'a>(&'a self, committed: &'a SourcePosition) -> SourceFuture<'a, ()>;
}

/// A boxed future of a source operation.
pub type SourceFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, SourceError>> + Send + 'a>>;

/// The database source of one connector.
pub enum Source {
    /// PostgreSQL.
    Postgres(postgres::PostgresSource),
    /// MySQL / MariaDB.
    Mysql(mysql::MysqlSource),
}

impl Source {
    /// The source a connector describes.
    pub fn new(
        connector: std::sync::Arc<crate::config::ConnectorConfig>,
        offsets: std::sync::Arc<dyn crate::offsets::OffsetStore>,
    ) -> Self {
        match connector.source {
            crate::config::SourceKind::Postgres => {
                Source::Postgres(postgres::PostgresSource::new(connector, offsets))
            }
            crate::config::SourceKind::Mysql => {
                Source::Mysql(mysql::MysqlSource::new(connector, offsets))
            }
        }
    }
}

impl ChangeSource for Source {
    fn run<'a>(&'a self, ctx: &'a mut SourceContext) -> SourceFuture<'a, SourceExit> {
        Box::pin(async move {
            match self {
                Source::Postgres(s) => Ok(s.run(ctx).await?),
                Source::Mysql(s) => Ok(s.run(ctx).await?),
            }
        })
    }

    fn after_stop<'a>(&'a self, committed: &'a SourcePosition) -> SourceFuture<'a, ()> {
        Box::pin(async move {
            if let (Source::Postgres(s), SourcePosition::Postgres(p)) = (self, committed) {
                s.confirm(p.resume_lsn).await;
            }
            Ok(())
        })
    }
}

/// Transaction-metadata bookkeeping of one transaction (`provide_transaction_metadata`):
/// the BEGIN record before its first published event, each event's `transaction` block, the
/// END record with the counts.
#[derive(Debug, Default)]
pub struct TxCounts {
    begun: bool,
    published: i64,
    per_table: Vec<(String, i64)>,
}

impl TxCounts {
    /// Counts one published event of `table`: the BEGIN record when it is the transaction's
    /// first, and the event's block.
    pub fn count(
        &mut self,
        id: &std::sync::Arc<str>,
        table: String,
        ts_ms: i64,
    ) -> (Option<crate::event::TxMeta>, crate::event::TxBlock) {
        let begin = (!self.begun).then(|| {
            self.begun = true;
            crate::event::TxMeta {
                begin: true,
                id: id.clone(),
                event_count: 0,
                data_collections: Vec::new(),
                ts_ms,
            }
        });
        self.published += 1;
        let per_table = match self.per_table.iter_mut().find(|(n, _)| *n == table) {
            Some((_, c)) => {
                *c += 1;
                *c
            }
            None => {
                self.per_table.push((table, 1));
                1
            }
        };
        let block = crate::event::TxBlock {
            id: id.clone(),
            total_order: self.published,
            data_collection_order: per_table,
        };
        (begin, block)
    }

    /// The END record, when a BEGIN was sent.
    pub fn end(self, id: std::sync::Arc<str>, ts_ms: i64) -> Option<crate::event::TxMeta> {
        self.begun.then_some(crate::event::TxMeta {
            begin: false,
            id,
            event_count: self.published,
            data_collections: self.per_table,
            ts_ms,
        })
    }
}

/// How a source run ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceExit {
    /// Shutdown was requested.
    Shutdown,
    /// The source finished its work (`snapshot.mode = initial_only`).
    Finished,
}

/// Items travel to the pipeline in batches of at most this many: one channel hand-off per
/// batch instead of per row keeps the two tasks from ping-ponging.
pub const BATCH_ITEMS: usize = 256;

/// A batch is handed over once its items hold about this many bytes, whatever their count.
pub const BATCH_BYTES: usize = 1 << 20;

/// Items handed to the pipeline together, with the bytes of the budget they hold.
pub struct Batch {
    /// The items, in order.
    pub items: Vec<SourceItem>,
    /// Bytes taken from the [`ByteBudget`]; given back once the batch is encoded and sent.
    pub held: u32,
}

/// The bytes that may wait between the source and the pipeline. A batch larger than the
/// whole budget takes all of it and passes alone, so nothing ever waits forever.
#[derive(Clone)]
pub struct ByteBudget {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    limit: u32,
}

impl ByteBudget {
    /// A budget of `limit` bytes (at least 1).
    pub fn new(limit: u32) -> Self {
        let limit = limit.max(1);
        ByteBudget {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(limit as usize)),
            limit,
        }
    }

    /// Waits until `bytes` (capped at the limit) are free and takes them.
    pub async fn take(&self, bytes: usize) -> u32 {
        let n = bytes.clamp(1, self.limit as usize) as u32;
        match self.permits.acquire_many(n).await {
            Ok(p) => p.forget(),
            Err(_) => return 0,
        }
        n
    }

    /// Gives bytes back.
    pub fn give_back(&self, n: u32) {
        self.permits.add_permits(n as usize);
    }

    /// The bound, bytes.
    pub fn limit(&self) -> usize {
        self.limit as usize
    }

    /// Bytes taken now.
    pub fn in_use(&self) -> usize {
        self.limit as usize - self.permits.available_permits()
    }
}

/// The channels a source runs with.
pub struct SourceContext {
    /// Batches of items for the pipeline (bounded in batches and in bytes: a full channel
    /// pauses the source).
    pub items: mpsc::Sender<Batch>,
    /// Items not yet handed over.
    pub pending: Vec<SourceItem>,
    /// About how many bytes `pending` holds.
    pub pending_bytes: usize,
    /// The bytes that may wait for the pipeline.
    pub budget: ByteBudget,
    /// The last position durably committed to the offset store.
    pub committed: watch::Receiver<Option<SourcePosition>>,
    /// Becomes `true` when the source must stop.
    pub shutdown: watch::Receiver<bool>,
    /// Where state and progress are reported.
    pub observer: crate::status::Observer,
}

impl SourceContext {
    /// Queues an item, handing a full batch over; `false` means stop (shutdown).
    pub async fn send(&mut self, item: SourceItem) -> bool {
        self.pending_bytes += item.approx_bytes();
        self.pending.push(item);
        if self.pending.len() >= BATCH_ITEMS || self.pending_bytes >= BATCH_BYTES {
            return self.flush().await;
        }
        !*self.shutdown.borrow()
    }

    /// Hands queued items over, unless shutdown comes first; `false` means stop.
    pub async fn flush(&mut self) -> bool {
        if *self.shutdown.borrow() {
            return false;
        }
        if self.pending.is_empty() {
            return true;
        }
        let items = std::mem::replace(&mut self.pending, Vec::with_capacity(BATCH_ITEMS));
        let bytes = std::mem::take(&mut self.pending_bytes);
        let budget = self.budget.clone();
        let items_tx = self.items.clone();
        let hand_over = async move {
            let held = budget.take(bytes).await;
            if items_tx.send(Batch { items, held }).await.is_err() {
                budget.give_back(held);
                return false;
            }
            true
        };
        tokio::select! {
            ok = hand_over => ok,
            _ = self.shutdown.changed() => false,
        }
    }

    /// Whether shutdown was requested.
    pub fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Queues an item; `Err(Stopped)` when the source must stop.
    pub async fn emit(&mut self, item: SourceItem) -> Result<(), Stopped> {
        if self.send(item).await {
            Ok(())
        } else {
            Err(Stopped)
        }
    }

    /// Queues an item and hands everything queued over at once (a transaction boundary, a
    /// heartbeat); `Err(Stopped)` when the source must stop.
    pub async fn emit_now(&mut self, item: SourceItem) -> Result<(), Stopped> {
        if self.send(item).await && self.flush().await {
            Ok(())
        } else {
            Err(Stopped)
        }
    }

    /// A connector heartbeat record, carrying `position` (none inside a transaction).
    pub async fn heartbeat(&mut self, position: Option<SourcePosition>) -> Result<(), Stopped> {
        let item = SourceItem::Heartbeat {
            position,
            ts_ms: now_us() / 1000,
        };
        self.emit_now(item).await
    }
}

/// The source must stop: shutdown was requested while it handed items over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// The wall clock in microseconds since the epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

/// The connector heartbeat timer (`heartbeat_interval_ms`), if configured.
pub fn heartbeat_timer(
    connector: &crate::config::ConnectorConfig,
) -> Option<tokio::time::Interval> {
    connector
        .heartbeat_interval_ms
        .map(|ms| tokio::time::interval(std::time::Duration::from_millis(ms)))
}

/// Waits for the next tick of an optional interval (forever when absent).
pub async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}
