//! The [`OffsetStore`] contract as a check every implementation must pass (used by the unit
//! tests and, through `sluice::testing`, by the Kafka store's integration test).

use super::{OffsetError, OffsetStore};
use crate::position::{MyPosition, PgPosition, SnapshotState, SourcePosition};

pub fn pos(lsn: u64) -> SourcePosition {
    SourcePosition::Postgres(PgPosition::at(lsn))
}

pub fn snapshot_pos(lsn: u64) -> SourcePosition {
    SourcePosition::Postgres(PgPosition {
        incremental: None,
        resume_lsn: lsn,
        partial: None,
        snapshot: SnapshotState::InProgress,
        slot: None,
        last_tx: None,
    })
}

pub fn my_pos(pos: u64) -> SourcePosition {
    SourcePosition::Mysql(MyPosition {
        incremental: None,
        file: "mysql-bin.000001".into(),
        pos,
        gtids: None,
        events: 0,
        rows: 0,
        snapshot: SnapshotState::Done,
        last_event: None,
    })
}

/// The [`OffsetStore`] contract, run against every implementation (on an empty store).
pub fn contract(store: &dyn OffsetStore) {
    // Nothing stored yet.
    assert_eq!(store.load("a").unwrap(), None);
    assert!(store.list().unwrap().is_empty());
    // Commits move forward and are read back.
    store.commit("a", &pos(10)).unwrap();
    store.commit("a", &pos(20)).unwrap();
    store.commit("a", &pos(20)).unwrap(); // the same position again is no move
    assert_eq!(store.load("a").unwrap(), Some(pos(20)));
    // Never backwards: refused, the stored position stays.
    let err = store.commit("a", &pos(15)).unwrap_err();
    assert!(matches!(err, OffsetError::Backwards { .. }), "{err}");
    assert_eq!(store.load("a").unwrap(), Some(pos(20)));
    // A snapshot in progress sorts before a finished one at any LSN: commit refuses it...
    assert!(store.commit("a", &snapshot_pos(30)).is_err());
    // ...and reset is the way back.
    store.reset("a", &snapshot_pos(5)).unwrap();
    assert_eq!(store.load("a").unwrap(), Some(snapshot_pos(5)));
    store.commit("a", &pos(6)).unwrap();
    // Connectors are independent; list is ordered by name.
    store.commit("b", &my_pos(4)).unwrap();
    store.commit("0", &pos(1)).unwrap();
    let names: Vec<String> = store.list().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0", "a", "b"]);
    assert_eq!(store.load("a").unwrap(), Some(pos(6)));
    assert_eq!(store.load("b").unwrap(), Some(my_pos(4)));
    // Delete forgets one connector, durably; deleting nothing is no error.
    store.delete("0").unwrap();
    store.delete("never-stored").unwrap();
    assert_eq!(store.load("0").unwrap(), None);
    let names: Vec<String> = store.list().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a", "b"]);
}
