//! Ordered acknowledgement: which position may be committed, given deliveries that resolve in
//! any order.
//!
//! ```text
//!  sent:      r1(p1)  r2(-)  r3(p3)  m4(p4)  r5(p5)      (- : a record with no position)
//!  resolved:    ok     ok    pending   ·      ok
//!  acked:     p1 ───────────┘  r3 holds back p4 and p5 until it resolves
//! ```
//!
//! Every record handed to the sink, and every position with nothing to publish (a checkpoint),
//! is tracked in source order. The tracker's answer, [`AckTracker::acked`], is the highest
//! position whose every predecessor has been durably accepted: invariant 1 (no lost change)
//! is that nothing beyond it is ever committed. A failed delivery blocks the answer at the
//! position before it for good (records before it may still complete): the pipeline then
//! stops and restarts from the committed position, which re-reads everything from the failed
//! record on.

use std::collections::VecDeque;

use crate::position::SourcePosition;

/// A handle to one tracked record, to resolve it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

/// How a position must be written to the offset store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitKind {
    /// An ordinary forward commit (`OffsetStore::commit`).
    Advance,
    /// The position of a snapshot in progress, which may be behind a stored position from an
    /// earlier run (a snapshot that starts over): `OffsetStore::reset`.
    Reset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Delivered,
    Failed,
}

#[derive(Debug)]
struct Slot {
    position: Option<SourcePosition>,
    state: State,
}

/// Tracks records from hand-over to durable acceptance; see the module doc.
#[derive(Debug)]
pub struct AckTracker {
    /// The ticket number of `slots[0]`.
    base: u64,
    /// Tracked records not yet part of the acknowledged prefix, in source order.
    slots: VecDeque<Slot>,
    /// Records handed over and not yet resolved.
    pending: usize,
    /// The highest position whose every predecessor is durable.
    acked: Option<SourcePosition>,
    /// The last position written to the offset store.
    committed: Option<SourcePosition>,
    /// A delivery failed: nothing after it may ever be acknowledged.
    failed: bool,
}

impl AckTracker {
    /// A tracker for a run that starts from `committed` (the offset store's position).
    pub fn new(committed: Option<SourcePosition>) -> Self {
        AckTracker {
            base: 0,
            slots: VecDeque::new(),
            pending: 0,
            acked: committed.clone(),
            committed,
            failed: false,
        }
    }

    /// Tracks a record handed to the sink; `position` (if any) becomes committable once the
    /// record and everything before it are durable.
    pub fn track(&mut self, position: Option<SourcePosition>) -> Ticket {
        let ticket = Ticket(self.base + self.slots.len() as u64);
        self.slots.push_back(Slot {
            position,
            state: State::Pending,
        });
        self.pending += 1;
        ticket
    }

    /// Tracks a position with nothing to publish (a transaction end, a keepalive): it is
    /// committable as soon as everything before it is durable.
    pub fn checkpoint(&mut self, position: SourcePosition) {
        let ticket = self.track(Some(position));
        self.delivered(ticket);
    }

    /// The record of `ticket` was durably accepted. Resolving a ticket twice, or one the
    /// tracker never issued, changes nothing.
    pub fn delivered(&mut self, ticket: Ticket) {
        let Some(index) = ticket.0.checked_sub(self.base) else {
            return;
        };
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        if slot.state != State::Pending {
            return;
        }
        slot.state = State::Delivered;
        self.pending -= 1;
        // A failed slot never leaves the front: nothing after it is acknowledged.
        while self
            .slots
            .front()
            .is_some_and(|s| s.state == State::Delivered)
        {
            let slot = self.slots.pop_front().expect("front exists");
            self.base += 1;
            if slot.position.is_some() {
                self.acked = slot.position;
            }
        }
    }

    /// The record of `ticket` was not accepted: the acknowledged position never passes it
    /// (records before it may still complete).
    pub fn failed(&mut self, ticket: Ticket) {
        let Some(index) = ticket.0.checked_sub(self.base) else {
            return;
        };
        if let Some(slot) = self.slots.get_mut(index as usize) {
            if slot.state == State::Pending {
                slot.state = State::Failed;
                self.pending -= 1;
                self.failed = true;
            }
        }
    }

    /// Whether a delivery failed.
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// Records handed over whose delivery has not resolved.
    pub fn in_flight(&self) -> usize {
        self.pending
    }

    /// The highest position whose every predecessor is durable (at first, the committed one).
    pub fn acked(&self) -> Option<&SourcePosition> {
        self.acked.as_ref()
    }

    /// The position to write to the offset store now, and how, when it differs from the
    /// last one written.
    pub fn to_commit(&self) -> Option<(&SourcePosition, CommitKind)> {
        let acked = self.acked.as_ref()?;
        if self.committed.as_ref() == Some(acked) {
            return None;
        }
        let kind = if acked.snapshot_in_progress() {
            CommitKind::Reset
        } else {
            CommitKind::Advance
        };
        Some((acked, kind))
    }

    /// Records that `position` was written to the offset store.
    pub fn committed(&mut self, position: SourcePosition) {
        self.committed = Some(position);
    }

    /// The last position written to the offset store.
    pub fn last_committed(&self) -> Option<&SourcePosition> {
        self.committed.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::{MyPosition, PartialTx, PgPosition, SnapshotState};
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    fn pg(lsn: u64) -> SourcePosition {
        SourcePosition::Postgres(PgPosition::at(lsn))
    }

    fn pg_partial(resume: u64, commit: u64, done: u64) -> SourcePosition {
        SourcePosition::Postgres(PgPosition {
            incremental: None,
            resume_lsn: resume,
            partial: Some(PartialTx {
                commit_lsn: commit,
                events_done: done,
            }),
            snapshot: SnapshotState::Done,
            slot: None,
            last_tx: None,
        })
    }

    fn snap(lsn: u64) -> SourcePosition {
        SourcePosition::Postgres(PgPosition {
            incremental: None,
            resume_lsn: lsn,
            partial: None,
            snapshot: SnapshotState::InProgress,
            slot: None,
            last_tx: None,
        })
    }

    #[test]
    fn starts_at_the_committed_position_with_nothing_to_commit() {
        let t = AckTracker::new(Some(pg(7)));
        assert_eq!(t.acked(), Some(&pg(7)));
        assert_eq!(t.to_commit(), None);
        let t = AckTracker::new(None);
        assert_eq!(t.acked(), None);
        assert_eq!(t.to_commit(), None);
    }

    #[test]
    fn out_of_order_resolution_waits_for_predecessors() {
        let mut t = AckTracker::new(None);
        let a = t.track(Some(pg(1)));
        let b = t.track(Some(pg(2)));
        let c = t.track(Some(pg(3)));
        t.delivered(c);
        t.delivered(b);
        assert_eq!(t.acked(), None, "a is still pending");
        assert_eq!(t.in_flight(), 1);
        t.delivered(a);
        assert_eq!(t.acked(), Some(&pg(3)));
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.to_commit(), Some((&pg(3), CommitKind::Advance)));
        t.committed(pg(3));
        assert_eq!(t.to_commit(), None);
    }

    #[test]
    fn a_failed_delivery_in_the_middle_freezes_the_acknowledged_position() {
        let mut t = AckTracker::new(Some(pg(0)));
        let a = t.track(Some(pg(1)));
        let b = t.track(Some(pg(2)));
        let c = t.track(Some(pg(3)));
        t.failed(b);
        t.delivered(c);
        assert!(t.has_failed());
        assert_eq!(t.acked(), Some(&pg(0)));
        // A record before the failed one may still complete...
        t.delivered(a);
        assert_eq!(t.acked(), Some(&pg(1)));
        // Later records and checkpoints cannot move it either.
        let d = t.track(Some(pg(4)));
        t.delivered(d);
        t.checkpoint(pg(5));
        assert_eq!(t.acked(), Some(&pg(1)));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn records_without_positions_hold_back_what_follows() {
        // A transaction's events carry partial positions; heartbeats inside a transaction and
        // transaction-metadata records carry none.
        let mut t = AckTracker::new(None);
        let begin = t.track(None);
        let e1 = t.track(Some(pg_partial(100, 200, 1)));
        let hb = t.track(None);
        let e2 = t.track(Some(pg_partial(100, 200, 2)));
        let end = t.track(None);
        t.checkpoint(pg(200));
        t.delivered(e1);
        t.delivered(e2);
        t.delivered(end);
        assert_eq!(t.acked(), None, "BEGIN is not yet durable");
        t.delivered(begin);
        assert_eq!(
            t.acked(),
            Some(&pg_partial(100, 200, 1)),
            "the heartbeat holds back e2"
        );
        t.delivered(hb);
        assert_eq!(t.acked(), Some(&pg(200)));
    }

    #[test]
    fn snapshot_positions_are_committed_by_reset() {
        let mut t = AckTracker::new(Some(pg(50)));
        t.checkpoint(snap(10));
        assert_eq!(t.to_commit(), Some((&snap(10), CommitKind::Reset)));
        t.committed(snap(10));
        let r = t.track(Some(snap(10)));
        t.delivered(r);
        assert_eq!(t.to_commit(), None, "same position as committed");
        t.checkpoint(pg(10));
        assert_eq!(t.to_commit(), Some((&pg(10), CommitKind::Advance)));
    }

    #[test]
    fn mysql_positions_are_tracked_alike() {
        let my = |pos, rows| {
            SourcePosition::Mysql(MyPosition {
                incremental: None,
                file: "mysql-bin.000003".into(),
                pos,
                gtids: Some("0-1-5".into()),
                events: 0,
                rows,
                snapshot: SnapshotState::Done,
                last_event: None,
            })
        };
        let mut t = AckTracker::new(None);
        let a = t.track(Some(my(4, 1)));
        let b = t.track(Some(my(4, 2)));
        t.delivered(b);
        assert_eq!(t.acked(), None);
        t.delivered(a);
        assert_eq!(t.acked(), Some(&my(4, 2)));
    }

    #[test]
    fn stray_and_repeated_resolutions_change_nothing() {
        let mut t = AckTracker::new(None);
        let a = t.track(Some(pg(1)));
        t.delivered(a);
        t.delivered(a);
        t.failed(a); // already acknowledged and gone
        t.delivered(Ticket(99));
        assert!(!t.has_failed());
        assert_eq!(t.acked(), Some(&pg(1)));
        assert_eq!(t.in_flight(), 0);
    }

    /// The invariant, over random interleavings: after any sequence of resolutions the
    /// acknowledged position is exactly the position of the longest fully delivered prefix
    /// (before the first failure), and never one of a record that is not durable or that
    /// follows one that is not.
    #[test]
    fn property_acked_is_the_longest_durable_prefix() {
        let mut rng = StdRng::seed_from_u64(0x5EED);
        for round in 0..2_000 {
            let n = rng.random_range(0..40usize);
            let start = (round % 3 == 0).then(|| pg(0));
            let mut t = AckTracker::new(start.clone());
            // Position i+1 for record i, or none (about a quarter of them); some are
            // checkpoints, delivered at once.
            let mut positions = Vec::new();
            let mut tickets = Vec::new();
            let mut outcome: Vec<Option<bool>> = Vec::new(); // None: unresolved
            for i in 0..n {
                let p = (rng.random_range(0..4) != 0).then(|| pg(i as u64 + 1));
                positions.push(p.clone());
                match p {
                    Some(p) if rng.random_range(0..5) == 0 => {
                        t.checkpoint(p);
                        tickets.push(None);
                        outcome.push(Some(true));
                    }
                    p => {
                        tickets.push(Some(t.track(p)));
                        outcome.push(None);
                    }
                }
            }
            let mut order: Vec<usize> = (0..n).filter(|&i| tickets[i].is_some()).collect();
            order.shuffle(&mut rng);
            let resolve_count = rng.random_range(0..=order.len());
            for &i in &order[..resolve_count] {
                let ok = rng.random_range(0..20) != 0;
                let ticket = tickets[i].unwrap();
                if ok {
                    t.delivered(ticket);
                } else {
                    t.failed(ticket);
                }
                outcome[i] = Some(ok);
                // The invariant holds after every step: the last position of the longest
                // prefix of delivered records (a failure or a pending record ends it).
                let prefix = outcome.iter().take_while(|o| **o == Some(true)).count();
                let expected = positions[..prefix]
                    .iter()
                    .rev()
                    .find_map(|p| p.clone())
                    .or_else(|| start.clone());
                assert_eq!(t.acked(), expected.as_ref(), "round {round}");
                assert_eq!(t.has_failed(), outcome.contains(&Some(false)));
                let unresolved = outcome.iter().filter(|o| o.is_none()).count();
                assert_eq!(t.in_flight(), unresolved, "round {round}");
            }
        }
    }
}
