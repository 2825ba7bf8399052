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

use super::{Delivery, PendingDelivery, Sink, SinkError, SinkFuture};
use crate::config::SinkConfig;
use crate::encode::Record;
use crate::offsets::PositionRecord;

/// How long metadata and admin requests may take before they count as failed.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a graceful flush waits for outstanding deliveries.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// librdkafka's callbacks: errors and logs go to Sluice's log, and the last error is kept so
/// that "cannot reach the brokers" can say why (a TLS certificate, an authentication failure).
#[derive(Default, Clone)]
pub struct SinkContext {
    last_error: Arc<std::sync::Mutex<LastErrors>>,
}

/// librdkafka's latest error, and its latest authentication or TLS error: after a refused login
/// librdkafka reconnects and reports plain transport failures, which say less.
#[derive(Default)]
struct LastErrors {
    any: Option<String>,
    telling: Option<(std::time::Instant, String)>,
}

/// How long an authentication or TLS error stays the reason given for an unreachable broker.
const TELLING_ERROR_TTL: Duration = Duration::from_secs(60);

impl SinkContext {
    fn last_error(&self) -> Option<String> {
        let last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        match &last.telling {
            Some((at, why)) if at.elapsed() < TELLING_ERROR_TTL => Some(why.clone()),
            _ => last.any.clone(),
        }
    }
}

impl rdkafka::client::ClientContext for SinkContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(facility = fac, "librdkafka: {message}")
            }
            L::Warning => tracing::warn!(facility = fac, "librdkafka: {message}"),
            _ => tracing::debug!(facility = fac, "librdkafka: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, "librdkafka: {reason}");
        let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SSL)
        ) {
            last.telling = Some((std::time::Instant::now(), reason.to_string()));
        }
        last.any = Some(reason.to_string());
    }
}

/// Publishes to Kafka.
pub struct KafkaSink {
    producer: FutureProducer<SinkContext>,
    context: SinkContext,
    admin: Arc<AdminClient<DefaultClientContext>>,
    servers: String,
    known_topics: HashSet<String>,
    partitions: i32,
    replication: i32,
    /// The producer queue's bound in bytes: no record larger can ever be queued.
    queue_bytes: u64,
    /// `message.max.bytes` in effect.
    max_message: u64,
    /// Exactly-once: the producer's transactional id.
    transactional_id: Option<String>,
    /// Exactly-once: `init_transactions` done.
    ready: bool,
    /// Exactly-once: a transaction is open (records were sent since the last commit).
    in_transaction: bool,
}

/// How long a transaction's init, commit or abort may take.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Sluice's producer queue bound (librdkafka's default may hold 1 GiB), KiB.
const DEFAULT_QUEUE_KB: u64 = 16_384;

/// About how many bytes a record takes in librdkafka's queue.
fn record_size(record: &Record) -> u64 {
    let headers: usize = record.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    (record.key.as_ref().map_or(0, |k| k.len())
        + record.value.as_ref().map_or(0, |v| v.len())
        + headers) as u64
}

impl KafkaSink {
    /// Builds the producer and admin client (no network I/O yet).
    pub fn new(
        config: &SinkConfig,
        client_id: &str,
        transactional_id: Option<String>,
    ) -> Result<Self, SinkError> {
        let servers = config.bootstrap_servers.clone().unwrap_or_default();
        let mut cc = ClientConfig::new();
        cc.set("bootstrap.servers", &servers)
            .set("client.id", client_id)
            // Java-client partitioning: consumers and Kafka Streams agree on key → partition.
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            // Sluice creates its topics (topic_partitions, topic_replication_factor): the
            // metadata request that checks for a topic must not make the broker create it
            // with its own defaults (auto.create.topics.enable).
            .set("allow.auto.create.topics", "false")
            // Bounded memory: librdkafka's default queue may hold 1 GiB; a full queue makes
            // `send` wait instead (backpressure up to the source).
            .set("queue.buffering.max.kbytes", DEFAULT_QUEUE_KB.to_string());
        for (k, v) in &config.properties {
            cc.set(k, v);
        }
        // The queue holds at least one record of the largest size the producer may send
        // (validation refuses an explicit queue smaller than message.max.bytes).
        let prop = |k: &str| {
            config
                .properties
                .get(k)
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let max_message = prop("message.max.bytes").unwrap_or(1_000_000);
        let queue_kb = match prop("queue.buffering.max.kbytes") {
            Some(kb) => kb,
            None => {
                let kb = DEFAULT_QUEUE_KB.max(max_message.div_ceil(1024) * 2);
                cc.set("queue.buffering.max.kbytes", kb.to_string());
                kb
            }
        };
        // Not overridable (validation refuses other values): no loss, no reordering.
        cc.set("enable.idempotence", "true").set("acks", "all");
        if let Some(id) = &transactional_id {
            cc.set("transactional.id", id);
        }
        let context = SinkContext::default();
        let producer: FutureProducer<SinkContext> = cc
            .create_with_context(context.clone())
            .map_err(|e| SinkError::Create(e.to_string()))?;
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
            context,
            admin: Arc::new(admin),
            servers,
            known_topics: HashSet::new(),
            partitions: config.topic_partitions,
            replication: config.topic_replication_factor,
            queue_bytes: queue_kb.saturating_mul(1024),
            max_message,
            transactional_id,
            ready: false,
            in_transaction: false,
        })
    }

    /// Exactly-once: registers the transactional id once (fencing an earlier producer
    /// with it and aborting that one's open transaction).
    async fn init_transactions(&mut self) -> Result<(), SinkError> {
        let Some(id) = self.transactional_id.clone() else {
            return Ok(());
        };
        if self.ready {
            return Ok(());
        }
        let producer = self.producer.clone();
        let servers = self.servers.clone();
        tokio::task::spawn_blocking(move || producer.init_transactions(TRANSACTION_TIMEOUT))
            .await
            .map_err(|e| SinkError::Transaction {
                reason: e.to_string(),
            })?
            .map_err(|e| match transaction_error(&id, &e) {
                SinkError::Transaction { reason } => SinkError::Unreachable {
                    servers,
                    reason: format!("cannot register transactional.id {id}: {reason}"),
                },
                other => other,
            })?;
        tracing::info!(transactional_id = %id, "exactly-once: transactional producer registered (an earlier one with this id is fenced)");
        self.ready = true;
        Ok(())
    }

    /// Exactly-once: opens a transaction before the first record after a commit.
    async fn open_transaction(&mut self) -> Result<(), SinkError> {
        if self.transactional_id.is_none() || self.in_transaction {
            return Ok(());
        }
        self.init_transactions().await?;
        let id = self.transactional_id.as_deref().unwrap_or_default();
        self.producer
            .begin_transaction()
            .map_err(|e| transaction_error(id, &e))?;
        self.in_transaction = true;
        Ok(())
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
            reason: match self.context.last_error() {
                Some(why) => format!("{e}: {why}"),
                None => e.to_string(),
            },
        })
    }

    /// Creates the topic when the cluster does not have it; an existing topic is used as is.
    async fn create_topic(&mut self, topic: &str) -> Result<(), SinkError> {
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
                    Err((_, code)) => return Err(self.creation_error(topic, code)),
                }
            }
        }
        self.known_topics.insert(topic.to_string());
        Ok(())
    }

    fn creation_error(&self, topic: &str, code: RDKafkaErrorCode) -> SinkError {
        let fix = match code {
            RDKafkaErrorCode::InvalidReplicationFactor => format!(
                "set [sink] topic_replication_factor to at most the number of brokers (it is {}), or create the topic yourself",
                self.replication
            ),
            RDKafkaErrorCode::InvalidPartitions => {
                "set [sink] topic_partitions to 1 or more, or create the topic yourself".into()
            }
            RDKafkaErrorCode::InvalidTopic => {
                "change topic_prefix so topic names use only [A-Za-z0-9._-] and at most 249 characters".into()
            }
            RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed => {
                "grant the producer's principal CREATE on the topic (or the cluster), or create the topic yourself".into()
            }
            RDKafkaErrorCode::PolicyViolation | RDKafkaErrorCode::InvalidConfig => {
                "create the topic yourself with settings the cluster's policy allows".into()
            }
            _ => {
                return self.topic_error(topic, format!("cannot create it: {code}"));
            }
        };
        SinkError::Refused {
            what: "the topic".into(),
            topic: topic.to_string(),
            reason: format!("cannot create it: {code}"),
            fix,
        }
    }

    fn topic_error(&self, topic: &str, reason: String) -> SinkError {
        SinkError::Topic {
            topic: topic.to_string(),
            reason,
        }
    }

    /// Enqueues a record; waits while librdkafka's queue is full (backpressure). A record
    /// larger than the queue can ever hold is refused at once.
    async fn enqueue(&mut self, record: &Record) -> Result<Delivery, SinkError> {
        let size = record_size(record);
        if size > self.queue_bytes {
            return Err(SinkError::Refused {
                what: format!("a record of {size} bytes"),
                topic: record.topic.to_string(),
                reason: format!(
                    "it is larger than the producer's queue (queue.buffering.max.kbytes = {} KiB) and could never be queued",
                    self.queue_bytes / 1024
                ),
                fix: format!(
                    "raise queue.buffering.max.kbytes in [sink.properties] above {} (message.max.bytes is {}), or leave the large column out",
                    size.div_ceil(1024),
                    self.max_message
                ),
            });
        }
        self.open_transaction().await?;
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
                    let id = self.transactional_id.clone();
                    return Ok(Delivery::Pending(Box::pin(fut.map(move |res| match res {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err((err, _))) => Err(match id {
                            Some(id) if is_fenced(&err) => SinkError::Fenced {
                                id,
                                reason: err.to_string(),
                            },
                            _ => record_error(&err, topic),
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
                Err((err, _)) => return Err(record_error(&err, record.topic.to_string())),
            }
        }
    }

    /// Waits for every outstanding delivery (a dropped producer would purge its queue).
    async fn flush(&mut self) -> Result<(), SinkError> {
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

impl Sink for KafkaSink {
    fn ensure_topic<'a>(&'a mut self, topic: &'a str) -> SinkFuture<'a, ()> {
        Box::pin(self.create_topic(topic))
    }

    fn send<'a>(&'a mut self, record: &'a Record) -> SinkFuture<'a, Delivery> {
        Box::pin(self.enqueue(record))
    }

    fn flush_buffered(&mut self) -> Result<(), SinkError> {
        Ok(()) // every record is tracked by its own delivery
    }

    fn close(&mut self) -> SinkFuture<'_, ()> {
        Box::pin(self.flush())
    }

    fn prepare(&mut self) -> SinkFuture<'_, ()> {
        Box::pin(self.init_transactions())
    }

    fn transactional(&self) -> bool {
        self.transactional_id.is_some()
    }

    fn commit_transaction(&mut self, position: Option<PositionRecord>) -> PendingDelivery {
        let Some(id) = self.transactional_id.clone() else {
            return Box::pin(async { Ok(()) });
        };
        let open = std::mem::take(&mut self.in_transaction);
        if !open && position.is_none() {
            return Box::pin(async { Ok(()) });
        }
        let producer = self.producer.clone();
        let ready = self.ready;
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                if !ready {
                    producer.init_transactions(TRANSACTION_TIMEOUT)?;
                }
                if !open {
                    producer.begin_transaction()?;
                }
                if let Some(p) = &position {
                    let record = FutureRecord::to(&p.topic)
                        .partition(p.partition)
                        .key(p.key.as_slice())
                        .payload(p.value.as_slice());
                    // Its delivery is part of the commit: a failed one fails the commit.
                    drop(producer.send_result(record).map_err(|(e, _)| e)?);
                }
                let committed = producer.commit_transaction(TRANSACTION_TIMEOUT);
                if let Err(KafkaError::Transaction(e)) = &committed {
                    if e.txn_requires_abort() {
                        let _ = producer.abort_transaction(TRANSACTION_TIMEOUT);
                    }
                }
                committed
            })
            .await
            .map_err(|e| SinkError::Transaction {
                reason: e.to_string(),
            })?
            .map_err(|e| transaction_error(&id, &e))
        })
    }

    fn abort_transaction(&mut self) -> PendingDelivery {
        if self.transactional_id.is_none() || !std::mem::take(&mut self.in_transaction) {
            return Box::pin(async { Ok(()) });
        }
        let producer = self.producer.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || producer.abort_transaction(TRANSACTION_TIMEOUT))
                .await
                .map_err(|e| SinkError::Transaction {
                    reason: e.to_string(),
                })?
                .map_err(|e| SinkError::Transaction {
                    reason: format!("abort: {e}"),
                })
        })
    }
}

/// Whether a newer producer with the same transactional id fenced this one.
fn is_fenced(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
        )
    )
}

/// A transaction call's error: fencing stops the connector; anything else is transient
/// (the run restarts with a new producer, whose registration aborts what is open).
fn transaction_error(id: &str, e: &KafkaError) -> SinkError {
    if is_fenced(e) {
        SinkError::Fenced {
            id: id.to_string(),
            reason: e.to_string(),
        }
    } else {
        SinkError::Transaction {
            reason: e.to_string(),
        }
    }
}

/// A failed record, classified: refusals that no retry can fix are definite.
fn record_error(err: &KafkaError, topic: String) -> SinkError {
    let fix = match err.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge)
        | Some(RDKafkaErrorCode::InvalidMessageSize)
        | Some(RDKafkaErrorCode::MessageBatchTooLarge) => {
            "raise the topic's max.message.bytes and the broker's message.max.bytes, and message.max.bytes in [sink.properties], or leave the large column out"
        }
        Some(RDKafkaErrorCode::InvalidTopic) => {
            "change topic_prefix so topic names use only [A-Za-z0-9._-] and at most 249 characters"
        }
        Some(RDKafkaErrorCode::TopicAuthorizationFailed)
        | Some(RDKafkaErrorCode::ClusterAuthorizationFailed) => {
            "grant the producer's principal WRITE on the topic (and IDEMPOTENT_WRITE on the cluster)"
        }
        Some(RDKafkaErrorCode::SaslAuthenticationFailed)
        | Some(RDKafkaErrorCode::Authentication) => {
            "fix the credentials in [sink.properties] (sasl.username, sasl.password)"
        }
        Some(RDKafkaErrorCode::InvalidRecord) | Some(RDKafkaErrorCode::PolicyViolation) => {
            "check the topic's configuration (the broker refuses this record)"
        }
        _ => {
            return SinkError::Delivery {
                topic,
                reason: err.to_string(),
            }
        }
    };
    SinkError::Refused {
        what: "a record".into(),
        topic,
        reason: err.to_string(),
        fix: fix.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::{Classify, Severity};

    #[test]
    fn refusals_retrying_cannot_fix_are_definite() {
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::InvalidTopic,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::SaslAuthenticationFailed,
        ] {
            let e = record_error(&KafkaError::MessageProduction(code), "t".into());
            assert_eq!(e.severity(), Severity::Definite, "{code:?}: {e}");
            assert!(e.to_string().contains("topic t"), "{e}");
        }
        for code in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::NotLeaderForPartition,
        ] {
            let e = record_error(&KafkaError::MessageProduction(code), "t".into());
            assert_eq!(e.severity(), Severity::Transient, "{code:?}: {e}");
        }
    }
}
