//! What a binlog streaming run keeps between events, and where its records stand.

use std::collections::HashMap;
use std::sync::Arc;

use super::super::binlog::{EventHeader, FormatDescription};
use super::super::gtid::{Gtid, GtidState};
use super::super::plan::RowDecoder;
use crate::event::{ChangeEvent, TableId};
use crate::position::{MyPosition, SnapshotState};

/// Table maps kept at most (they are re-sent in every transaction).
pub(super) const MAX_TABLE_MAPS: usize = 4096;

/// A table map seen on the stream and what Sluice does with its rows.
pub(super) struct MapEntry {
    pub(super) body: Vec<u8>,
    /// `None`: the table is not captured.
    pub(super) decoder: Option<Arc<RowDecoder>>,
}

/// The transaction being read.
pub(super) struct Tx {
    pub(super) file: Arc<str>,
    pub(super) pos: u64,
    pub(super) gtid: Option<Arc<str>>,
    pub(super) ts_us: i64,
    pub(super) thread: Option<u32>,
    /// Rows events seen so far.
    pub(super) rows_events: u64,
    /// Rows events / rows of the next rows event to skip (already published before a
    /// restart).
    pub(super) skip_events: u64,
    pub(super) skip_rows: u64,
    pub(super) counts: crate::source::TxCounts,
}

impl Tx {
    pub(super) fn id(&self) -> Arc<str> {
        match &self.gtid {
            Some(g) => g.clone(),
            None => Arc::from(format!("file={},pos={}", self.file, self.pos)),
        }
    }
}
/// The GTID event of the group being read, applied to the GTID state when the group ends.
pub(super) struct PendingGtid {
    /// The GTID as `source.gtid` shows it (`None`: anonymous).
    pub(super) text: Option<Arc<str>>,
    pub(super) gtid: Gtid,
    /// Position of the GTID event: the group's start.
    pub(super) pos: u64,
}

/// The facts of the event being handled.
pub(super) struct At {
    /// The event's header.
    pub(super) header: EventHeader,
    /// Where the event starts.
    pub(super) start_pos: u64,
    /// Where the next event starts.
    pub(super) end: u64,
    /// When the statement began, microseconds since the epoch.
    pub(super) ts_us: i64,
}

/// What a streaming run keeps between events.
pub(super) struct State {
    pub(super) fde: FormatDescription,
    /// The binlog file being read.
    pub(super) file: Arc<str>,
    pub(super) gtids: GtidState,
    /// Where a restart resumes: the start of the next transaction.
    pub(super) resume: MyPosition,
    /// The stored position's progress inside its transaction, until that transaction starts.
    pub(super) skip_at: Option<(Arc<str>, u64, u64, u64)>,
    pub(super) pending_gtid: Option<PendingGtid>,
    pub(super) tx: Option<Tx>,
    pub(super) maps: HashMap<u64, MapEntry>,
    pub(super) decoders: HashMap<Vec<u8>, Arc<RowDecoder>>,
    pub(super) dbs: HashMap<String, Arc<str>>,
    /// The last shape seen of each captured table (for truncate records).
    pub(super) latest: HashMap<TableId, Arc<crate::event::TableSchema>>,
    /// The last definition read of each captured table after a DDL statement (a dropped
    /// table's `tableChanges` entry shows it).
    pub(super) definitions: HashMap<TableId, crate::event::TableDefinition>,
    /// The end of the last event with a position.
    pub(super) last_end: u64,
    /// Events of the rows event being handled (reused).
    pub(super) out: Vec<ChangeEvent>,
    /// An incremental snapshot's progress, carried by every position.
    pub(super) incremental: Option<Arc<crate::position::IncrementalProgress>>,
}

impl State {
    /// Where a schema-change record stands. A DDL statement that shares its event group with
    /// rows (MariaDB's `CREATE TABLE ... SELECT`, MySQL's atomic one) is positioned inside
    /// that transaction like its rows, before them, with the group's GTID not yet applied: a
    /// restart re-reads the group (the DDL record may come again) and loses none of its rows.
    /// A DDL statement of its own group ends it: the position is after it, GTID applied.
    pub(super) fn ddl_position(&mut self, end: u64) -> MyPosition {
        if let Some(t) = &self.tx {
            return MyPosition {
                incremental: self.incremental.clone(),
                file: t.file.clone(),
                pos: t.pos,
                gtids: self.resume.gtids.clone(),
                events: t.rows_events,
                rows: 0,
                snapshot: SnapshotState::Done,
                last_event: None,
            };
        }
        if let Some(p) = self.pending_gtid.take() {
            self.gtids.apply_pending(p.gtid);
        }
        MyPosition {
            incremental: self.incremental.clone(),
            file: self.file.clone(),
            pos: end,
            gtids: self.gtids.text(),
            events: 0,
            rows: 0,
            snapshot: SnapshotState::Done,
            last_event: None,
        }
    }

    /// The position of row `row` (0-based) of the `ev_index`-th rows event of the open
    /// transaction: that many rows events and rows of it are then published.
    pub(super) fn row_position(&self, t: &Tx, ev_index: u64, row: u32) -> MyPosition {
        MyPosition {
            incremental: self.incremental.clone(),
            file: t.file.clone(),
            pos: t.pos,
            gtids: self.resume.gtids.clone(),
            events: ev_index,
            rows: u64::from(row) + 1,
            snapshot: SnapshotState::Done,
            last_event: None,
        }
    }

    /// Forgets the table maps when there are too many; only between transactions (the
    /// server sends a transaction's maps again in each transaction, never across).
    pub(super) fn evict_maps_if_full(&mut self) {
        if self.tx.is_none() && self.maps.len() >= MAX_TABLE_MAPS {
            self.maps.clear();
        }
    }
}

/// MySQL 8.0.21+ writes `CREATE TABLE ... SELECT` as one atomic group: the DDL ends with
/// `START TRANSACTION` and the rows follow in the same group.
pub(super) fn opens_transaction(sql: &str) -> bool {
    const TAIL: &[u8] = b"START TRANSACTION";
    let trimmed = sql.trim_end().trim_end_matches(';').trim_end().as_bytes();
    trimmed.len() >= TAIL.len() && trimmed[trimmed.len() - TAIL.len()..].eq_ignore_ascii_case(TAIL)
}
