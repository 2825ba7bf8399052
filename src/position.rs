//! Typed source positions: what the offset store keeps so a restart resumes without loss.
//!
//! PostgreSQL: the stream is resumed at `resume_lsn` (the end of the last transaction whose
//! every event is acknowledged); `partial` records how many events of the next transaction
//! were already acknowledged, so they are skipped when the server sends that transaction again.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a connector is in its source's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourcePosition {
    /// PostgreSQL logical replication.
    Postgres(PgPosition),
    /// MySQL / MariaDB binlog.
    Mysql(MyPosition),
}

/// A MySQL / MariaDB position: where the current transaction starts, and how much of it was
/// already published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MyPosition {
    /// Binlog file of the transaction's first event.
    pub file: std::sync::Arc<str>,
    /// Position of the transaction's first event (its GTID event, or BEGIN).
    pub pos: u64,
    /// GTID state before that transaction: MariaDB `domain-server-seq` list (resumed with
    /// `@slave_connect_state`), MySQL `uuid:interval` set (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtids: Option<std::sync::Arc<str>>,
    /// Rows events of the transaction completely published.
    #[serde(default)]
    pub events: u64,
    /// Rows of the next rows event already published.
    #[serde(default)]
    pub rows: u64,
    /// Snapshot state.
    pub snapshot: SnapshotState,
    /// The server id and time of the event that ended the last transaction (Debezium's
    /// `server_id` and `ts_sec` offset fields; informational, not part of the order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event: Option<LastEvent>,
    /// An incremental snapshot in progress (not part of the order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<std::sync::Arc<IncrementalProgress>>,
}

/// Where the event that completed a MySQL position came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastEvent {
    /// The originating server's id.
    pub server_id: u32,
    /// The event's time, seconds since the epoch.
    pub ts_sec: i64,
}

impl MyPosition {
    /// The binlog file's sequence number (`mysql-bin.000012` → 12), for ordering.
    fn file_seq(&self) -> u64 {
        self.file
            .rsplit('.')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    fn order_key(&self) -> (u8, u64, u64, u64, u64) {
        let snap = match self.snapshot {
            SnapshotState::InProgress => 0,
            SnapshotState::Done => 1,
        };
        (snap, self.file_seq(), self.pos, self.events, self.rows)
    }
}

/// Snapshot progress stored with a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotState {
    /// A snapshot was started and has not finished: a restart takes it again.
    InProgress,
    /// The snapshot finished (or none was needed): streaming resumes from the position.
    Done,
}

/// Events of a transaction already acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialTx {
    /// The transaction's commit LSN (its `final_lsn` in the Begin message).
    pub commit_lsn: u64,
    /// How many of its events are acknowledged.
    pub events_done: u64,
}

/// The replication slot a position was read from. Sluice drops (and recreates) a slot only
/// when the slot on the server still matches this record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotId {
    /// OID of the slot's database.
    pub database_oid: u32,
    /// The server's WAL position just before Sluice created (or adopted) the slot: the slot's
    /// confirmed position can never be below it.
    pub created_lsn: u64,
}

/// The last transaction completed at a position: its id and commit time (Debezium's `txId`
/// and `ts_usec` offset fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastTx {
    /// The transaction id (xid).
    pub tx_id: i64,
    /// Commit time, microseconds since the epoch.
    pub ts_us: i64,
}

/// A PostgreSQL position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgPosition {
    /// End LSN of the last fully acknowledged transaction (or an idle keepalive's WAL end):
    /// safe to confirm to the slot and to start replication from.
    pub resume_lsn: u64,
    /// Progress inside the following transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<PartialTx>,
    /// Snapshot state.
    pub snapshot: SnapshotState,
    /// The slot this position belongs to (absent in positions stored before Sluice recorded
    /// it, and in other sources' tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<SlotId>,
    /// The transaction that ended at `resume_lsn`, when the stream saw it (informational:
    /// not part of the order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tx: Option<LastTx>,
    /// An incremental snapshot in progress (not part of the order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<std::sync::Arc<IncrementalProgress>>,
}

/// How far an incremental snapshot has come: what a restart resumes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrementalProgress {
    /// Tables still to read (`schema.table`), the one being read first.
    pub tables: Vec<String>,
    /// Extra `WHERE` conditions by table (a signal's `additional-conditions`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub conditions: std::collections::BTreeMap<String, String>,
    /// The key (each key column's text) of the last row published of the first table;
    /// absent before its first chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_key: Option<Vec<Option<String>>>,
    /// Chunks published so far.
    #[serde(default)]
    pub chunks: u64,
    /// Paused by a `pause-snapshot` signal.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

impl PgPosition {
    /// A streaming position: resume after `resume_lsn`, no partial transaction, snapshot
    /// done, no slot recorded.
    pub fn at(resume_lsn: u64) -> Self {
        PgPosition {
            resume_lsn,
            partial: None,
            snapshot: SnapshotState::Done,
            slot: None,
            last_tx: None,
            incremental: None,
        }
    }

    /// Order within one slot: by resume LSN, then by progress in the partial transaction;
    /// a finished snapshot is ahead of an unfinished one at the same LSN.
    fn order_key(&self) -> (u8, u64, u64, u64) {
        let snap = match self.snapshot {
            SnapshotState::InProgress => 0,
            SnapshotState::Done => 1,
        };
        let (commit, done) = self
            .partial
            .map(|p| (p.commit_lsn, p.events_done))
            .unwrap_or((0, 0));
        (snap, self.resume_lsn, commit, done)
    }
}

impl SourcePosition {
    /// Whether this is the position of a snapshot that has not finished.
    pub fn snapshot_in_progress(&self) -> bool {
        let state = match self {
            SourcePosition::Postgres(p) => p.snapshot,
            SourcePosition::Mysql(m) => m.snapshot,
        };
        state == SnapshotState::InProgress
    }

    /// The snapshot progress the position carries (incremental, or what is left of an
    /// interrupted initial snapshot).
    pub fn incremental(&self) -> Option<&IncrementalProgress> {
        match self {
            SourcePosition::Postgres(p) => p.incremental.as_deref(),
            SourcePosition::Mysql(m) => m.incremental.as_deref(),
        }
    }
}

impl PartialOrd for SourcePosition {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (SourcePosition::Postgres(a), SourcePosition::Postgres(b)) => {
                Some(a.order_key().cmp(&b.order_key()))
            }
            (SourcePosition::Mysql(a), SourcePosition::Mysql(b)) => {
                Some(a.order_key().cmp(&b.order_key()))
            }
            _ => None,
        }
    }
}

/// Formats an LSN the way PostgreSQL prints it (`16/B374D848`).
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// Parses an LSN printed by PostgreSQL (`16/B374D848`).
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.trim().split_once('/')?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    if hi > u32::MAX as u64 || lo > u32::MAX as u64 {
        return None;
    }
    Some((hi << 32) | lo)
}

impl fmt::Display for SourcePosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourcePosition::Postgres(p) => {
                write!(f, "postgres resume_lsn={}", format_lsn(p.resume_lsn))?;
                if let Some(partial) = p.partial {
                    write!(
                        f,
                        " partial_tx(commit_lsn={}, events_done={})",
                        format_lsn(partial.commit_lsn),
                        partial.events_done
                    )?;
                }
                let snap = match p.snapshot {
                    SnapshotState::InProgress => "in_progress",
                    SnapshotState::Done => "done",
                };
                write!(f, " snapshot={snap}")
            }
            SourcePosition::Mysql(p) => {
                write!(f, "mysql file={} pos={}", p.file, p.pos)?;
                if let Some(g) = &p.gtids {
                    write!(f, " gtids={g}")?;
                }
                if p.events > 0 || p.rows > 0 {
                    write!(f, " events={} rows={}", p.events, p.rows)?;
                }
                let snap = match p.snapshot {
                    SnapshotState::InProgress => "in_progress",
                    SnapshotState::Done => "done",
                };
                write!(f, " snapshot={snap}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_round_trip() {
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("garbage"), None);
        assert_eq!(parse_lsn("1FFFFFFFF/0"), None);
    }

    #[test]
    fn order_follows_progress() {
        let base = PgPosition {
            incremental: None,
            resume_lsn: 100,
            partial: None,
            snapshot: SnapshotState::Done,
            slot: None,
            last_tx: None,
        };
        let partial = PgPosition {
            partial: Some(PartialTx {
                commit_lsn: 200,
                events_done: 3,
            }),
            ..base.clone()
        };
        let later = PgPosition {
            resume_lsn: 210,
            ..base.clone()
        };
        let a = SourcePosition::Postgres(base);
        let b = SourcePosition::Postgres(partial);
        let c = SourcePosition::Postgres(later);
        assert!(a < b && b < c);
        let snap = SourcePosition::Postgres(PgPosition {
            incremental: None,
            snapshot: SnapshotState::InProgress,
            resume_lsn: 500,
            partial: None,
            slot: None,
            last_tx: None,
        });
        assert!(
            snap < a,
            "an unfinished snapshot is behind any streaming position"
        );
    }
}
