//! Sinks: where records go, and how their durable acceptance is reported.
//!
//! [`Sink::send`] returns a [`Delivery`] that resolves once the destination has durably
//! accepted the record (Kafka: acknowledged by all in-sync replicas). Deliveries may resolve
//! in any order; the pipeline's `AckTracker` commits a position only when every record sent
//! before it is accepted.

mod kafka;
mod stdout;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::future::Future;
use std::pin::Pin;

use crate::failure::{Classify, Severity};

pub use kafka::KafkaSink;
pub use stdout::StdoutSink;

use crate::config::{SinkConfig, SinkType};
use crate::encode::Record;
use crate::offsets::PositionRecord;

/// Resolves when a record is durably accepted, or with why it was not.
pub type PendingDelivery = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send>>;

/// What `send` hands back.
pub enum Delivery {
    /// Accepted at once (into a buffer that `flush_buffered` pushes out before a commit).
    Accepted,
    /// Resolves when the destination acknowledges the record.
    Pending(PendingDelivery),
}

/// A boxed future of a sink operation.
pub type SinkFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SinkError>> + Send + 'a>>;

/// A sink failure.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The producer could not be created (a bad property, for instance).
    #[error("cannot create the Kafka producer: {0}; check [sink] and [sink.properties] in config/sluice.toml")]
    Create(String),
    /// The broker did not accept a record (yet): retrying may succeed.
    #[error("the broker did not accept a record for topic {topic}: {reason}")]
    Delivery {
        /// The topic.
        topic: String,
        /// librdkafka's reason.
        reason: String,
    },
    /// The broker refused a record, or a topic, in a way retrying cannot fix (record too
    /// large, invalid topic name, not authorized, replication factor above the broker count).
    #[error("the broker refused {what} for topic {topic}: {reason}; {fix}")]
    Refused {
        /// The record (`a record of table x.y`) or `the topic`.
        what: String,
        /// The topic.
        topic: String,
        /// The broker's reason.
        reason: String,
        /// What to change.
        fix: String,
    },
    /// A topic could not be created or described.
    #[error("topic {topic}: {reason}")]
    Topic {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// The broker cannot be reached.
    #[error("cannot reach the Kafka brokers at {servers}: {reason}; {}", unreachable_fix(.reason))]
    Unreachable {
        /// Bootstrap servers.
        servers: String,
        /// Why.
        reason: String,
    },
    /// A newer producer with the same transactional id took the connector over: this one
    /// must stop (no retry, no commit).
    #[error("fenced by another owner: a newer producer with transactional.id {id} took this connector over ({reason}); this daemon stops it and writes nothing more")]
    Fenced {
        /// The transactional id.
        id: String,
        /// The broker's reason.
        reason: String,
    },
    /// A Kafka transaction could not be committed; it was aborted, and its records are sent
    /// again from the committed position.
    #[error("the Kafka transaction could not be committed ({reason}); it was aborted and its records are sent again from the committed position")]
    Transaction {
        /// librdkafka's reason.
        reason: String,
    },
    /// Writing to standard output failed.
    #[error("cannot write to standard output: {0}")]
    Io(#[from] std::io::Error),
}

/// What to change when the brokers cannot be reached, from librdkafka's reason.
fn unreachable_fix(reason: &str) -> &'static str {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("sasl") {
        "check sasl.mechanisms, sasl.username and sasl.password in [sink.properties] against the broker's users"
    } else if lower.contains("ssl") || lower.contains("certificate") {
        "check security.protocol and the ssl.* files in [sink.properties] (the CA must sign the broker's certificate)"
    } else {
        "start the broker or fix sink.bootstrap_servers"
    }
}

impl Classify for SinkError {
    fn severity(&self) -> Severity {
        match self {
            SinkError::Create(_) | SinkError::Refused { .. } | SinkError::Fenced { .. } => {
                Severity::Definite
            }
            SinkError::Transaction { .. }
            | SinkError::Delivery { .. }
            | SinkError::Topic { .. }
            | SinkError::Unreachable { .. }
            | SinkError::Io(_) => Severity::Transient,
        }
    }
}

/// Where a pipeline publishes records.
///
/// The contract:
/// - `send` hands a record over in order and returns a [`Delivery`]. `Delivery::Accepted`
///   means the record is in a local buffer that `flush_buffered` makes durable;
///   `Delivery::Pending` resolves `Ok` only once the destination has durably accepted the
///   record, or with the reason it did not. Pending deliveries may resolve in any order.
/// - Records of one key reach the destination in the order they were sent (no reordering by
///   retries: the Kafka producer is idempotent).
/// - `send` may wait (backpressure) but never drops a record silently: a record it cannot
///   take is an error.
/// - Errors are [`SinkError`]s whose [`Classify::severity`] says whether a restart may help.
pub trait Sink: Send {
    /// Makes sure a topic exists before records go to it (creates it when missing).
    fn ensure_topic<'a>(&'a mut self, topic: &'a str) -> SinkFuture<'a, ()>;
    /// Hands a record over; the returned delivery reports its acceptance.
    fn send<'a>(&'a mut self, record: &'a Record) -> SinkFuture<'a, Delivery>;
    /// Hands a record over at once when the sink can without waiting (its topic needs no
    /// check, the record goes to a local buffer); `None`: use [`Sink::ensure_topic`] and
    /// [`Sink::send`]. Saves two boxed futures per record on the fast path.
    fn send_now(&mut self, _record: &Record) -> Option<Result<Delivery, SinkError>> {
        None
    }
    /// Makes records accepted into a local buffer durable, so an offset commit that follows
    /// covers only delivered records. Sinks that track each delivery do nothing.
    fn flush_buffered(&mut self) -> Result<(), SinkError>;
    /// Waits for every outstanding delivery (on shutdown).
    fn close(&mut self) -> SinkFuture<'_, ()>;
    /// Readies the sink before the run reads its position. Exactly-once: registers the
    /// transactional id, which fences an earlier producer with the same id and aborts its
    /// open transaction (so a `read_committed` read of the position is not held back by it).
    fn prepare(&mut self) -> SinkFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    /// Whether records go out in transactions that [`Sink::commit_transaction`] commits
    /// (exactly-once); such a sink's positions are written by it, not by the offset store.
    fn transactional(&self) -> bool {
        false
    }
    /// Exactly-once: writes `position` (a record of the offsets topic) into the open
    /// transaction and commits it; resolves once committed. Sends must not happen until it
    /// resolves.
    fn commit_transaction(&mut self, _position: Option<PositionRecord>) -> PendingDelivery {
        Box::pin(async { Ok(()) })
    }
    /// Exactly-once: aborts the open transaction (after a failure).
    fn abort_transaction(&mut self) -> PendingDelivery {
        Box::pin(async { Ok(()) })
    }
}

/// The sink that the daemon configuration names.
/// `transactional_id`: exactly-once, with this id (Kafka only).
pub fn from_config(
    config: &SinkConfig,
    client_id: &str,
    transactional_id: Option<String>,
) -> Result<Box<dyn Sink>, SinkError> {
    Ok(match config.kind {
        SinkType::Kafka => Box::new(KafkaSink::new(config, client_id, transactional_id)?),
        SinkType::Stdout => Box::new(StdoutSink::new()),
    })
}

/// Checks that the configured destination is reachable (for `sluice validate`).
pub async fn check_reachable(config: &SinkConfig) -> Result<(), SinkError> {
    match config.kind {
        SinkType::Kafka => {
            KafkaSink::new(config, "sluice-validate", None)?
                .check_reachable()
                .await
        }
        SinkType::Stdout => Ok(()),
    }
}
