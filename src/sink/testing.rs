//! A sink that breaks its contract on purpose, for tests of everything above it.
//!
//! A [`FaultyBroker`] stands for the destination: it keeps the records it accepted, in the
//! order a consumer would read them, and a plan of [`Fault`]s counted over every record ever
//! sent to it (across pipeline restarts, since each run takes a new [`FaultySink`] from it).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use super::{Delivery, Sink, SinkError, SinkFuture};
use crate::encode::Record;

/// One way the broker misbehaves.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The delivery of the n-th record sent (1-based) fails with a transient error; the
    /// record is not stored.
    FailDelivery(u64),
    /// From the n-th record sent on, every send is refused with a definite error (a record
    /// too large for the broker, say).
    RefuseFrom(u64),
    /// Every delivery resolves only after this long.
    Delay(Duration),
    /// Deliveries are held and resolved in reverse order, this many at a time (the rest on
    /// `flush_buffered` or `close`).
    Reorder(usize),
    /// Sending the n-th record panics (a defect in the code above the sink).
    Panic(u64),
    /// From the n-th record sent on, a send never completes (the producer's queue full, a
    /// broker away): the record is not accepted.
    Stall(u64),
}

#[derive(Default)]
struct State {
    records: Vec<Record>,
    sent: u64,
    resolved: u64,
}

/// The destination of [`FaultySink`]s: what they accepted, and the faults to inject.
#[derive(Clone, Default)]
pub struct FaultyBroker {
    state: Arc<Mutex<State>>,
    faults: Arc<Vec<Fault>>,
}

impl FaultyBroker {
    /// A broker with these faults.
    pub fn new(faults: Vec<Fault>) -> Self {
        FaultyBroker {
            state: Arc::default(),
            faults: Arc::new(faults),
        }
    }

    /// A sink for one pipeline run.
    pub fn sink(&self) -> FaultySink {
        FaultySink {
            broker: self.clone(),
            held: Vec::new(),
        }
    }

    /// Every record accepted so far, in the order a consumer reads them.
    pub fn records(&self) -> Vec<Record> {
        self.lock().records.clone()
    }

    /// How many records were sent (accepted or not).
    pub fn sent(&self) -> u64 {
        self.lock().sent
    }

    /// How many deliveries have resolved (succeeded or failed).
    pub fn resolved(&self) -> u64 {
        self.lock().resolved
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn delay(&self) -> Option<Duration> {
        self.faults.iter().find_map(|f| match f {
            Fault::Delay(d) => Some(*d),
            _ => None,
        })
    }

    fn reorder(&self) -> usize {
        self.faults
            .iter()
            .find_map(|f| match f {
                Fault::Reorder(n) => Some(*n),
                _ => None,
            })
            .unwrap_or(0)
    }
}

/// A delivery held back, and how it will resolve.
type Held = (
    oneshot::Sender<Result<(), SinkError>>,
    Result<(), SinkError>,
);

/// One run's handle on a [`FaultyBroker`].
pub struct FaultySink {
    broker: FaultyBroker,
    /// Deliveries held back for reordering.
    held: Vec<Held>,
}

impl FaultySink {
    fn accept(&mut self, record: &Record) -> Result<Delivery, SinkError> {
        let n = {
            let mut state = self.broker.lock();
            state.sent += 1;
            state.sent
        };
        let mut outcome = Ok(());
        for fault in self.broker.faults.iter() {
            match fault {
                Fault::RefuseFrom(from) if n >= *from => {
                    return Err(SinkError::Refused {
                        what: "a record".into(),
                        topic: record.topic.to_string(),
                        reason: format!("record {n} refused by the test broker"),
                        fix: "none: this is a test".into(),
                    })
                }
                Fault::Panic(at) if n == *at => panic!("test sink panics at record {n}"),
                Fault::FailDelivery(at) if n == *at => {
                    outcome = Err(SinkError::Delivery {
                        topic: record.topic.to_string(),
                        reason: format!("delivery {n} failed in the test broker"),
                    })
                }
                _ => {}
            }
        }
        if outcome.is_ok() {
            self.broker.lock().records.push(record.clone());
        }
        let delay = self.broker.delay();
        let window = self.broker.reorder();
        if window > 0 {
            let (tx, rx) = oneshot::channel();
            self.held.push((tx, outcome));
            if self.held.len() >= window {
                self.release();
            }
            let broker = self.broker.clone();
            return Ok(Delivery::Pending(Box::pin(async move {
                if let Some(d) = delay {
                    tokio::time::sleep(d).await;
                }
                let outcome = rx.await.unwrap_or_else(|_| {
                    Err(SinkError::Delivery {
                        topic: "*".into(),
                        reason: "the test sink was dropped".into(),
                    })
                });
                broker.lock().resolved += 1;
                outcome
            })));
        }
        let broker = self.broker.clone();
        Ok(Delivery::Pending(Box::pin(async move {
            match delay {
                Some(d) => tokio::time::sleep(d).await,
                None => tokio::task::yield_now().await,
            }
            broker.lock().resolved += 1;
            outcome
        })))
    }

    /// Resolves the held deliveries, newest first.
    fn release(&mut self) {
        while let Some((tx, outcome)) = self.held.pop() {
            let _ = tx.send(outcome);
        }
    }
}

impl Sink for FaultySink {
    fn ensure_topic<'a>(&'a mut self, _topic: &'a str) -> SinkFuture<'a, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn send<'a>(&'a mut self, record: &'a Record) -> SinkFuture<'a, Delivery> {
        let stall_from = self.broker.faults.iter().find_map(|f| match f {
            Fault::Stall(n) => Some(*n),
            _ => None,
        });
        if stall_from.is_some_and(|from| self.broker.sent() + 1 >= from) {
            return Box::pin(std::future::pending());
        }
        Box::pin(std::future::ready(self.accept(record)))
    }

    fn flush_buffered(&mut self) -> Result<(), SinkError> {
        self.release();
        Ok(())
    }

    fn close(&mut self) -> SinkFuture<'_, ()> {
        self.release();
        Box::pin(std::future::ready(Ok(())))
    }
}
