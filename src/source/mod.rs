//! Sources: connect to a database, snapshot, stream, and hand [`SourceItem`]s to the pipeline.

pub mod postgres;

use tokio::sync::{mpsc, watch};

use crate::event::ChangeEvent;
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

/// The channels a source runs with.
pub struct SourceContext {
    /// Batches of items for the pipeline (bounded: a full channel pauses the source).
    pub items: mpsc::Sender<Vec<SourceItem>>,
    /// Items not yet handed over.
    pub pending: Vec<SourceItem>,
    /// The last position durably committed to the offset store.
    pub committed: watch::Receiver<Option<SourcePosition>>,
    /// Becomes `true` when the source must stop.
    pub shutdown: watch::Receiver<bool>,
    /// Where state and progress are reported.
    pub observer: crate::runtime::Observer,
}

impl SourceContext {
    /// Queues an item, handing a full batch over; `false` means stop (shutdown).
    pub async fn send(&mut self, item: SourceItem) -> bool {
        self.pending.push(item);
        if self.pending.len() >= BATCH_ITEMS {
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
        let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(BATCH_ITEMS));
        tokio::select! {
            res = self.items.send(batch) => res.is_ok(),
            _ = self.shutdown.changed() => false,
        }
    }

    /// Whether shutdown was requested.
    pub fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }
}
