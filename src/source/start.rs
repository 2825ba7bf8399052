//! What a source does when it starts, decided once for both sources: the stored position
//! (which must belong to this kind of source) and the snapshot mode say whether to take a
//! snapshot, resume, or stop.
//!
//! ```text
//!  mode          no position / snapshot unfinished   finished, readable   finished, lost
//!  initial       snapshot                            resume               error (Lost)
//!  initial_only  snapshot, then stop                 stop                 stop
//!  no_data       resume (from now)                   resume               error (Lost)
//!  when_needed   snapshot                            resume               snapshot
//!  always        snapshot                            snapshot             snapshot
//! ```

use crate::config::SnapshotMode;
use crate::failure::SetupError;
use crate::offsets::{OffsetError, OffsetStore};
use crate::position::SourcePosition;

/// The facts a start decision needs.
#[derive(Debug, Clone, Copy)]
pub struct StartFacts {
    /// The connector's snapshot mode.
    pub mode: SnapshotMode,
    /// A position is stored and its snapshot finished.
    pub snapshot_done: bool,
    /// The server can no longer supply the stored position (PostgreSQL: the slot is gone or
    /// lost WAL; MySQL: the binlog file was purged).
    pub position_lost: bool,
}

/// What to do at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPlan {
    /// Nothing: an `initial_only` snapshot was already taken.
    Finished,
    /// Take a snapshot, then stream from its position (or stop, under `initial_only`).
    Snapshot,
    /// Stream from the stored position (or from the server's current one when none).
    Resume,
    /// The stored position cannot be read any more and the mode does not allow a new
    /// snapshot: the source stops with a message saying so.
    Lost,
}

/// The start decision.
pub fn plan(facts: StartFacts) -> StartPlan {
    let need_snapshot = match facts.mode {
        SnapshotMode::NoData => false,
        SnapshotMode::Always => true,
        SnapshotMode::Initial | SnapshotMode::InitialOnly => !facts.snapshot_done,
        SnapshotMode::WhenNeeded => !facts.snapshot_done || facts.position_lost,
    };
    if !need_snapshot && facts.mode == SnapshotMode::InitialOnly {
        StartPlan::Finished
    } else if need_snapshot {
        StartPlan::Snapshot
    } else if facts.position_lost {
        StartPlan::Lost
    } else {
        StartPlan::Resume
    }
}

/// The connector's stored position, when it belongs to this kind of source (`pick` returns
/// it); a position of another kind is a setup error naming the fix.
pub fn stored_position<P, E>(
    offsets: &dyn OffsetStore,
    connector: &str,
    pick: impl FnOnce(&SourcePosition) -> Option<P>,
) -> Result<Option<P>, E>
where
    E: From<OffsetError> + From<SetupError>,
{
    match offsets.load(connector)? {
        None => Ok(None),
        Some(stored) => match pick(&stored) {
            Some(p) => Ok(Some(p)),
            None => Err(SetupError::Other(format!(
                "the stored offset of {connector} belongs to another kind of source ({stored}); forget it with `sluice offsets reset {connector}` to start over"
            ))
            .into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(mode: SnapshotMode, snapshot_done: bool, position_lost: bool) -> StartFacts {
        StartFacts {
            mode,
            snapshot_done,
            position_lost,
        }
    }

    #[test]
    fn the_table_of_the_module_doc() {
        use SnapshotMode::*;
        use StartPlan::*;
        let cases = [
            (Initial, false, false, Snapshot),
            (Initial, true, false, Resume),
            (Initial, true, true, Lost),
            (InitialOnly, false, false, Snapshot),
            (InitialOnly, true, false, Finished),
            (InitialOnly, true, true, Finished),
            (NoData, false, false, Resume),
            (NoData, true, false, Resume),
            (NoData, true, true, Lost),
            (WhenNeeded, false, false, Snapshot),
            (WhenNeeded, true, false, Resume),
            (WhenNeeded, true, true, Snapshot),
            (Always, false, false, Snapshot),
            (Always, true, false, Snapshot),
            (Always, true, true, Snapshot),
        ];
        for (mode, done, lost, want) in cases {
            assert_eq!(
                plan(facts(mode, done, lost)),
                want,
                "{mode:?} {done} {lost}"
            );
        }
    }

    #[test]
    fn a_position_of_another_source_kind_is_refused() {
        use crate::offsets::MemoryOffsetStore;
        use crate::position::PgPosition;
        let store = MemoryOffsetStore::new();
        let pg = SourcePosition::Postgres(PgPosition::at(1));
        store.commit("c", &pg).unwrap();
        #[derive(Debug)]
        enum E {
            Offsets,
            Setup(String),
        }
        impl From<OffsetError> for E {
            fn from(_: OffsetError) -> Self {
                E::Offsets
            }
        }
        impl From<SetupError> for E {
            fn from(e: SetupError) -> Self {
                E::Setup(e.to_string())
            }
        }
        let got: Result<Option<()>, E> = stored_position(&store, "c", |_| None);
        match got {
            Err(E::Setup(m)) => assert!(m.contains("another kind of source"), "{m}"),
            other => panic!("{other:?}"),
        }
        let got: Result<Option<u64>, E> = stored_position(&store, "c", |p| match p {
            SourcePosition::Postgres(p) => Some(p.resume_lsn),
            _ => None,
        });
        assert!(matches!(got, Ok(Some(1))));
        let none: Result<Option<u64>, E> = stored_position(&store, "other", |_| Some(0));
        assert!(matches!(none, Ok(None)));
    }
}
