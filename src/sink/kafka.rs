//! The Kafka sink: an idempotent rdkafka producer (`acks=all`), Java-compatible key
//! partitioning, and topic creation on first use.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::{Delivery, SinkError};
use crate::config::SinkConfig;
use crate::encode::Record;

/// How long metadata and admin requests may take before they count as failed.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a graceful flush waits for outstanding deliveries.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Publishes to Kafka.
pub struct KafkaSink {
    producer: FutureProducer,
    admin: Arc<AdminClient<DefaultClientContext>>,
    servers: String,
    known_topics: HashSet<String>,
    partitions: i32,
    replication: i32,
}

impl KafkaSink {
    /// Builds the producer and admin client (no network I/O yet).
    pub fn new(config: &SinkConfig, client_id: &str) -> Result<Self, SinkError> {
        let servers = config.bootstrap_servers.clone().unwrap_or_default();
        let mut cc = ClientConfig::new();
        cc.set("bootstrap.servers", &servers)
            .set("client.id", client_id)
            // Java-client partitioning: consumers and Kafka Streams agree on key → partition.
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            // Bounded memory: librdkafka's default queue may hold 1 GiB; a full queue makes
            // `send` wait instead (backpressure up to the source).
            .set("queue.buffering.max.kbytes", "16384");
        for (k, v) in &config.properties {
            cc.set(k, v);
        }
        // Not overridable (validation refuses other values): no loss, no reordering.
        cc.set("enable.idempotence", "true").set("acks", "all");
        let producer: FutureProducer = cc.create().map_err(|e| SinkError::Create(e.to_string()))?;
        let mut admin_cc = ClientConfig::new();
        admin_cc.set("bootstrap.servers", &servers);
        for (k, v) in &config.properties {
            if k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.") {
                admin_cc.set(k, v);
            }
        }
        let admin: AdminClient<DefaultClientContext> = admin_cc
            .create()
            .map_err(|e| SinkError::Create(e.to_string()))?;
        Ok(KafkaSink {
            producer,
            admin: Arc::new(admin),
            servers,
            known_topics: HashSet::new(),
            partitions: config.topic_partitions,
            replication: config.topic_replication_factor,
        })
    }

    /// Checks that the brokers answer a metadata request.
    pub async fn check_reachable(&self) -> Result<(), SinkError> {
        let producer = self.producer.clone();
        let result = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, Duration::from_secs(5))
                .map(|_| ())
        })
        .await
        .map_err(|e| SinkError::Unreachable {
            servers: self.servers.clone(),
            reason: e.to_string(),
        })?;
        result.map_err(|e| SinkError::Unreachable {
            servers: self.servers.clone(),
            reason: e.to_string(),
        })
    }

    /// Creates the topic when the cluster does not have it; an existing topic is used as is.
    pub async fn ensure_topic(&mut self, topic: &str) -> Result<(), SinkError> {
        if self.known_topics.contains(topic) {
            return Ok(());
        }
        let producer = self.producer.clone();
        let name = topic.to_string();
        let exists = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&name), ADMIN_TIMEOUT)
                .map(|md| {
                    md.topics().iter().any(|t| {
                        t.name() == name && t.error().is_none() && !t.partitions().is_empty()
                    })
                })
        })
        .await
        .map_err(|e| self.topic_error(topic, e.to_string()))?
        .map_err(|e| SinkError::Unreachable {
            servers: self.servers.clone(),
            reason: e.to_string(),
        })?;
        if !exists {
            let new = NewTopic::new(
                topic,
                self.partitions,
                TopicReplication::Fixed(self.replication),
            );
            let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
            let results = self
                .admin
                .create_topics([&new], &opts)
                .await
                .map_err(|e| self.topic_error(topic, e.to_string()))?;
            for r in results {
                match r {
                    Ok(_) => tracing::info!(topic, partitions = self.partitions, "created topic"),
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((_, code)) => {
                        return Err(self.topic_error(topic, format!("cannot create it: {code}")))
                    }
                }
            }
        }
        self.known_topics.insert(topic.to_string());
        Ok(())
    }

    fn topic_error(&self, topic: &str, reason: String) -> SinkError {
        SinkError::Topic {
            topic: topic.to_string(),
            reason,
        }
    }

    /// Enqueues a record; waits while librdkafka's queue is full (backpressure).
    pub async fn send(&mut self, record: &Record) -> Result<Delivery, SinkError> {
        loop {
            let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&record.topic);
            if let Some(k) = &record.key {
                fr = fr.key(k.as_slice());
            }
            if let Some(v) = &record.value {
                fr = fr.payload(v.as_slice());
            }
            if !record.headers.is_empty() {
                let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
                for (name, value) in &record.headers {
                    headers = headers.insert(Header {
                        key: name,
                        value: Some(value.as_slice()),
                    });
                }
                fr = fr.headers(headers);
            }
            match self.producer.send_result(fr) {
                Ok(fut) => {
                    let topic = record.topic.to_string();
                    return Ok(Delivery::Pending(Box::pin(fut.map(move |res| match res {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err((err, _))) => Err(SinkError::Delivery {
                            topic,
                            reason: err.to_string(),
                        }),
                        Err(_) => Err(SinkError::Delivery {
                            topic,
                            reason: "the producer was dropped before delivery".into(),
                        }),
                    }))));
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((err, _)) => {
                    return Err(SinkError::Delivery {
                        topic: record.topic.to_string(),
                        reason: err.to_string(),
                    })
                }
            }
        }
    }

    /// Waits for every outstanding delivery (a dropped producer would purge its queue).
    pub async fn flush(&mut self) -> Result<(), SinkError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(FLUSH_TIMEOUT))
            .await
            .map_err(|e| SinkError::Delivery {
                topic: "*".into(),
                reason: e.to_string(),
            })?
            .map_err(|e| SinkError::Delivery {
                topic: "*".into(),
                reason: e.to_string(),
            })
    }
}
