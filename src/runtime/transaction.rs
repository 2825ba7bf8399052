//! Exactly-once: when a run's open Kafka transaction is committed.
//!
//! With a transactional sink, the position record is written by the sink in the transaction
//! of the records it covers, so a commit must cover every record sent: the pipeline stops
//! reading while a transaction is due, waits until every record in flight is acknowledged,
//! and then commits the transaction with the acknowledged position (which is then the
//! position of the last record sent). A transaction is due after `transaction_max_ms`, or
//! once it holds `transaction_max_records` records or `transaction_max_bytes` bytes.

use std::time::{Duration, Instant};

/// How large and how old a transaction may grow.
#[derive(Debug, Clone, Copy)]
pub struct TransactionLimits {
    /// The longest a transaction stays open.
    pub max_age: Duration,
    /// Records per transaction.
    pub max_records: u64,
    /// Bytes of records per transaction.
    pub max_bytes: u64,
}

impl Default for TransactionLimits {
    fn default() -> Self {
        TransactionLimits {
            max_age: Duration::from_millis(1000),
            max_records: 100_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The open transaction of a run, as the pipeline sees it.
#[derive(Debug)]
pub struct OpenTransaction {
    limits: TransactionLimits,
    /// When its first record was sent (`None`: nothing sent since the last commit).
    since: Option<Instant>,
    records: u64,
    bytes: u64,
    /// A commit was asked for: no more records until it is done.
    due: bool,
}

impl OpenTransaction {
    /// No transaction open yet.
    pub fn new(limits: TransactionLimits) -> Self {
        OpenTransaction {
            limits,
            since: None,
            records: 0,
            bytes: 0,
            due: false,
        }
    }

    /// A record of `bytes` went into the transaction.
    pub fn sent(&mut self, bytes: usize) {
        self.since.get_or_insert_with(Instant::now);
        self.records += 1;
        self.bytes += bytes as u64;
        if self.records >= self.limits.max_records || self.bytes >= self.limits.max_bytes {
            self.due = true;
        }
    }

    /// The periodic check: a transaction open for its longest time is due.
    pub fn tick(&mut self) {
        if self
            .since
            .is_some_and(|t| t.elapsed() >= self.limits.max_age)
        {
            self.due = true;
        }
    }

    /// Asks for a commit now (a position to store, or the end of the run).
    pub fn ask(&mut self) {
        self.due = true;
    }

    /// Whether reading must wait for a commit.
    pub fn due(&self) -> bool {
        self.due
    }

    /// Whether records were sent since the last commit.
    pub fn has_records(&self) -> bool {
        self.since.is_some()
    }

    /// The commit was handed to the sink: a new transaction starts with the next record.
    pub fn committing(&mut self) {
        self.since = None;
        self.records = 0;
        self.bytes = 0;
        self.due = false;
    }

    /// How often the pipeline should check its transaction.
    pub fn max_age(&self) -> Duration {
        self.limits.max_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(records: u64, bytes: u64) -> TransactionLimits {
        TransactionLimits {
            max_age: Duration::from_secs(3600),
            max_records: records,
            max_bytes: bytes,
        }
    }

    #[test]
    fn a_transaction_is_due_by_records_bytes_or_age() {
        let mut t = OpenTransaction::new(limits(3, 1000));
        t.sent(10);
        t.sent(10);
        assert!(!t.due());
        t.sent(10);
        assert!(t.due(), "three records");
        t.committing();
        assert!(!t.due() && !t.has_records());

        let mut t = OpenTransaction::new(limits(100, 1000));
        t.sent(600);
        assert!(!t.due());
        t.sent(400);
        assert!(t.due(), "1000 bytes");

        let mut t = OpenTransaction::new(TransactionLimits {
            max_age: Duration::ZERO,
            ..limits(100, 1000)
        });
        t.tick();
        assert!(!t.due(), "nothing open: nothing due");
        t.sent(1);
        t.tick();
        assert!(t.due(), "open for its longest time");
    }
}
