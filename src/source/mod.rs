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
}

/// How a source run ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceExit {
    /// Shutdown was requested.
    Shutdown,
    /// The source finished its work (`snapshot.mode = initial_only`).
    Finished,
}

/// The channels a source runs with.
pub struct SourceContext {
    /// Items for the pipeline (bounded: a full channel pauses the source).
    pub items: mpsc::Sender<SourceItem>,
    /// The last position durably committed to the offset store.
    pub committed: watch::Receiver<Option<SourcePosition>>,
    /// Becomes `true` when the source must stop.
    pub shutdown: watch::Receiver<bool>,
}

impl SourceContext {
    /// Sends an item, unless shutdown comes first; `false` means stop.
    pub async fn send(&mut self, item: SourceItem) -> bool {
        if *self.shutdown.borrow() {
            return false;
        }
        tokio::select! {
            res = self.items.send(item) => res.is_ok(),
            _ = self.shutdown.changed() => false,
        }
    }

    /// Whether shutdown was requested.
    pub fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }
}
