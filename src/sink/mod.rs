//! Sinks: where records go, and how their durable acceptance is reported.
//!
//! `send` returns a [`Delivery`] that resolves once the destination has durably accepted the
//! record (Kafka: acknowledged by all in-sync replicas). The pipeline awaits deliveries in
//! send order, so a position is committed only after every record before it is accepted.

mod kafka;
mod stdout;

use std::future::Future;
use std::pin::Pin;

pub use kafka::KafkaSink;
pub use stdout::StdoutSink;

use crate::config::{SinkConfig, SinkType};
use crate::encode::Record;

/// Resolves when a record is durably accepted, or with why it was not.
pub type PendingDelivery = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send>>;

/// What `send` hands back.
pub enum Delivery {
    /// Accepted at once (into a buffer that `flush_buffered` pushes out before a commit).
    Accepted,
    /// Resolves when the destination acknowledges the record.
    Pending(PendingDelivery),
}

/// A sink failure.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The producer could not be created (a bad property, for instance).
    #[error("cannot create the Kafka producer: {0}; check [sink] and [sink.properties] in config/sluice.toml")]
    Create(String),
    /// The broker did not accept a record in time.
    #[error("the broker did not accept a record for topic {topic}: {reason}")]
    Delivery {
        /// The topic.
        topic: String,
        /// librdkafka's reason.
        reason: String,
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
    #[error("cannot reach the Kafka brokers at {servers}: {reason}; start the broker or fix sink.bootstrap_servers")]
    Unreachable {
        /// Bootstrap servers.
        servers: String,
        /// Why.
        reason: String,
    },
    /// Writing to standard output failed.
    #[error("cannot write to standard output: {0}")]
    Io(#[from] std::io::Error),
}

/// A configured sink.
pub enum Sink {
    /// Kafka.
    Kafka(KafkaSink),
    /// Standard output.
    Stdout(StdoutSink),
}

impl Sink {
    /// Builds the sink that the daemon configuration names.
    pub fn new(config: &SinkConfig, client_id: &str) -> Result<Self, SinkError> {
        Ok(match config.kind {
            SinkType::Kafka => Sink::Kafka(KafkaSink::new(config, client_id)?),
            SinkType::Stdout => Sink::Stdout(StdoutSink::new()),
        })
    }

    /// Makes sure a topic exists before records go to it (creates it when missing).
    pub async fn ensure_topic(&mut self, topic: &str) -> Result<(), SinkError> {
        match self {
            Sink::Kafka(k) => k.ensure_topic(topic).await,
            Sink::Stdout(_) => Ok(()),
        }
    }

    /// Hands a record over; the returned delivery reports its acceptance.
    pub async fn send(&mut self, record: &Record) -> Result<Delivery, SinkError> {
        match self {
            Sink::Kafka(k) => k.send(record).await,
            Sink::Stdout(s) => s.send(record),
        }
    }

    /// Pushes out records that were accepted into a local buffer, so that an offset commit
    /// that follows covers only delivered records. Kafka tracks each delivery instead.
    pub fn flush_buffered(&mut self) -> Result<(), SinkError> {
        match self {
            Sink::Kafka(_) => Ok(()),
            Sink::Stdout(s) => s.flush(),
        }
    }

    /// Waits for every outstanding delivery (on shutdown).
    pub async fn close(&mut self) -> Result<(), SinkError> {
        match self {
            Sink::Kafka(k) => k.flush().await,
            Sink::Stdout(s) => s.flush(),
        }
    }

    /// Checks that the destination is reachable.
    pub async fn check_reachable(&self) -> Result<(), SinkError> {
        match self {
            Sink::Kafka(k) => k.check_reachable().await,
            Sink::Stdout(_) => Ok(()),
        }
    }
}
