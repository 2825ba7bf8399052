//! Positions in a compacted Kafka topic, in Kafka Connect's offsets format.
//!
//! Each connector's position is one record keyed like Connect's (see [`super::connect`]), on
//! the partition the Java producer would pick, so Kafka Connect, Debezium Server's Kafka
//! offset store and Sluice can read each other's topics. A commit returns when the broker has
//! acknowledged the record (`acks=all`, idempotent producer): that is what "durable" means
//! here. `load` reads the connector's partition from the beginning to its end, so a position
//! written by another daemon (after a failover) is seen.
//!
//! Exactly-once (`[sink] exactly_once`): the sink's transactional producer writes the
//! position record ([`OffsetStore::position_record`]) in the transaction of the records it
//! covers, and reads are `read_committed`; the key, value and partition stay as they are.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::connect;
use super::{refuse_backwards, OffsetError, OffsetStore, PositionRecord};
use crate::position::SourcePosition;

/// How long a read or a commit may wait for the brokers before it is a (transient) error.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Where the store's topic is and how it is made.
#[derive(Debug, Clone)]
pub struct KafkaStoreSettings {
    /// Bootstrap servers.
    pub servers: String,
    /// Client properties shared with the sink (TLS, SASL).
    pub properties: BTreeMap<String, String>,
    /// The offsets topic.
    pub topic: String,
    /// Its partitions, when Sluice creates it.
    pub partitions: i32,
    /// Its replication factor, when Sluice creates it.
    pub replication: i32,
    /// Drop positions of aborted transactions by reading the record batches (for brokers
    /// that do not report aborted transactions to `read_committed` consumers).
    pub verify_transactions: bool,
}

/// The delivery result of the record being committed.
#[derive(Clone, Default)]
struct Deliveries {
    last: Arc<Mutex<Option<Result<(), String>>>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let r = match result {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(e.to_string()),
        };
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
    }
}

/// The Kafka offset store.
pub struct KafkaOffsetStore {
    settings: KafkaStoreSettings,
    producer: ThreadedProducer<Deliveries>,
    deliveries: Deliveries,
    /// Partitions of the topic (read at start).
    partitions: i32,
    /// Each connector's server (its topic prefix), the second part of its key.
    servers: RwLock<HashMap<String, String>>,
    /// One commit at a time: the delivery slot is shared.
    writing: Mutex<()>,
    /// The position last loaded or written per connector (a daemon owns the connectors it
    /// runs, so no one else writes them meanwhile): commits compare against it instead of
    /// reading the topic each time.
    cache: Mutex<HashMap<String, SourcePosition>>,
    /// What was read of each partition so far (reads continue from there).
    tail: Mutex<HashMap<i32, PartitionTail>>,
}

/// One partition of the offsets topic as read so far.
#[derive(Default)]
struct PartitionTail {
    /// The offset to read next.
    next: i64,
    /// The last value of each key (`None`: deleted).
    latest: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl std::fmt::Debug for KafkaOffsetStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaOffsetStore")
            .field("servers", &self.settings.servers)
            .field("topic", &self.settings.topic)
            .finish()
    }
}

fn unreachable(settings: &KafkaStoreSettings, why: impl std::fmt::Display) -> OffsetError {
    OffsetError::Kafka {
        topic: settings.topic.clone(),
        reason: format!(
            "{why} (brokers {}); check [sink] bootstrap_servers and that the brokers run",
            settings.servers
        ),
        definite: false,
    }
}

fn client_config(settings: &KafkaStoreSettings) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &settings.servers);
    for (k, v) in &settings.properties {
        if k.starts_with("security.")
            || k.starts_with("sasl.")
            || k.starts_with("ssl.")
            || k == "client.dns.lookup"
        {
            cc.set(k, v);
        }
    }
    cc
}

impl KafkaOffsetStore {
    /// Connects, creates the topic when it is absent (compacted) and reads its partition
    /// count.
    pub async fn open(settings: KafkaStoreSettings) -> Result<Self, OffsetError> {
        let admin: AdminClient<DefaultClientContext> = client_config(&settings)
            .create()
            .map_err(|e| unreachable(&settings, e))?;
        let topic = NewTopic::new(
            &settings.topic,
            settings.partitions,
            TopicReplication::Fixed(settings.replication),
        )
        .set("cleanup.policy", "compact");
        let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
        let created = admin
            .create_topics([&topic], &opts)
            .await
            .map_err(|e| unreachable(&settings, e))?;
        for r in created {
            match r {
                Ok(_) => tracing::info!(
                    topic = %settings.topic,
                    partitions = settings.partitions,
                    "created the offsets topic (cleanup.policy=compact)"
                ),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(OffsetError::Kafka {
                        topic: settings.topic.clone(),
                        reason: format!(
                            "cannot create it: {code}; create it yourself (cleanup.policy=compact) or fix [offsets] topic_partitions / topic_replication_factor"
                        ),
                        definite: true,
                    })
                }
            }
        }
        let deliveries = Deliveries::default();
        let producer: ThreadedProducer<Deliveries> = client_config(&settings)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0")
            .create_with_context(deliveries.clone())
            .map_err(|e| unreachable(&settings, e))?;
        let s = settings.clone();
        let (producer, partitions) = tokio::task::spawn_blocking(move || {
            let md = producer
                .client()
                .fetch_metadata(Some(&s.topic), TIMEOUT)
                .map_err(|e| unreachable(&s, e))?;
            let n = md
                .topics()
                .iter()
                .find(|t| t.name() == s.topic)
                .map_or(0, |t| t.partitions().len() as i32);
            Ok::<_, OffsetError>((producer, n))
        })
        .await
        .map_err(|e| unreachable(&settings, e))??;
        if partitions == 0 {
            return Err(unreachable(
                &settings,
                "the offsets topic has no partitions",
            ));
        }
        Ok(KafkaOffsetStore {
            settings,
            producer,
            deliveries,
            partitions,
            servers: RwLock::new(HashMap::new()),
            writing: Mutex::new(()),
            cache: Mutex::new(HashMap::new()),
            tail: Mutex::new(HashMap::new()),
        })
    }

    fn consumer(&self) -> Result<BaseConsumer, OffsetError> {
        client_config(&self.settings)
            .set("group.id", "sluice-offsets-reader")
            .set("enable.auto.commit", "false")
            // The end of a partition (past records and transaction markers alike) is
            // reported as an event.
            .set("enable.partition.eof", "true")
            .set("isolation.level", "read_committed")
            .create()
            .map_err(|e| unreachable(&self.settings, e))
    }

    /// The last record of every key on these partitions (value `None`: deleted).
    ///
    /// Each partition is read from where the previous read of it ended (the tail kept in
    /// memory; from its start the first time, or when compaction removed that point) up to
    /// its high watermark as it was when the read began. The end is the consumer's position,
    /// not the last record seen: a partition may end in a transaction marker (Kafka Connect
    /// with exactly-once source support writes offsets transactionally), which a consumer
    /// never returns. Reads are `read_committed`: an aborted transaction's offsets never count.
    fn read(&self, partitions: &[i32]) -> Result<HashMap<Vec<u8>, Option<Vec<u8>>>, OffsetError> {
        let consumer = self.consumer()?;
        let topic = &self.settings.topic;
        let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        let mut ends = HashMap::new();
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, TIMEOUT)
                .map_err(|e| unreachable(&self.settings, e))?;
            let part = tail.entry(p).or_default();
            if part.next < low || part.next > high {
                // Compacted past the tail, or a topic recreated: read it whole again.
                *part = PartitionTail::default();
            }
            let from = part.next.max(low);
            if high > from {
                ends.insert(p, high);
                tpl.add_partition_offset(topic, p, Offset::Offset(from))
                    .map_err(|e| unreachable(&self.settings, e))?;
            }
        }
        // Brokers that do not report aborted transactions: the batches say which to drop.
        let mut excluded: HashMap<i32, super::aborted::AbortedRanges> = HashMap::new();
        if self.settings.verify_transactions && !ends.is_empty() {
            let md = consumer
                .fetch_metadata(Some(topic), TIMEOUT)
                .map_err(|e| unreachable(&self.settings, e))?;
            for (&p, &high) in &ends {
                let leader = md
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic)
                    .and_then(|t| t.partitions().iter().find(|x| x.id() == p))
                    .and_then(|x| md.brokers().iter().find(|b| b.id() == x.leader()))
                    .map(|b| format!("{}:{}", b.host(), b.port()))
                    .ok_or_else(|| {
                        unreachable(&self.settings, format!("no leader for partition {p}"))
                    })?;
                let from = tail.get(&p).map_or(0, |t| t.next);
                let ranges = super::aborted::scan(&leader, topic, p, from, high).map_err(|e| {
                    unreachable(
                        &self.settings,
                        format!("reading the record batches of partition {p}: {e}"),
                    )
                })?;
                excluded.insert(p, ranges);
            }
        }
        if !ends.is_empty() {
            consumer
                .assign(&tpl)
                .map_err(|e| unreachable(&self.settings, e))?;
            let deadline = Instant::now() + TIMEOUT;
            while !ends.is_empty() {
                if Instant::now() > deadline {
                    return Err(unreachable(
                        &self.settings,
                        format!(
                            "timed out reading the offsets topic (partitions {:?} not read to their end; an open transaction on them holds read_committed readers back)",
                            ends.keys().collect::<Vec<_>>()
                        ),
                    ));
                }
                let polled = consumer.poll(Duration::from_millis(100));
                if let Some(Err(KafkaError::PartitionEOF(p))) = polled {
                    ends.remove(&p);
                    continue;
                }
                if let Some(msg) = polled {
                    let msg = msg.map_err(|e| unreachable(&self.settings, e))?;
                    let dropped = excluded
                        .get(&msg.partition())
                        .is_some_and(|r| r.excludes(msg.offset()));
                    if let Some(part) = tail.get_mut(&msg.partition()).filter(|_| !dropped) {
                        if let Some(k) = msg.key() {
                            part.latest
                                .insert(k.to_vec(), msg.payload().map(<[u8]>::to_vec));
                        }
                        part.next = part.next.max(msg.offset() + 1);
                    }
                }
                // Where the consumer is: past records and transaction markers alike.
                let positions = consumer
                    .position()
                    .map_err(|e| unreachable(&self.settings, e))?;
                ends.retain(|p, high| {
                    let at = positions
                        .find_partition(topic, *p)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        });
                    match at {
                        Some(o) if o >= *high => {
                            if let Some(part) = tail.get_mut(p) {
                                part.next = part.next.max(o);
                            }
                            false
                        }
                        _ => true,
                    }
                });
            }
        }
        // A transaction still open is read again next time (its marker decides then).
        for (p, ranges) in &excluded {
            if let (Some(part), Some(open)) = (tail.get_mut(p), ranges.first_open) {
                part.next = part.next.min(open);
            }
        }
        let mut latest = HashMap::new();
        for p in partitions {
            if let Some(part) = tail.get(p) {
                latest.extend(part.latest.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        Ok(latest)
    }

    fn key_of(&self, connector: &str) -> Vec<u8> {
        let servers = self.servers.read().unwrap_or_else(|e| e.into_inner());
        let server = servers.get(connector).map_or(connector, String::as_str);
        connect::key(connector, server)
    }

    fn decode(&self, connector: &str, bytes: &[u8]) -> Result<SourcePosition, OffsetError> {
        let corrupt = |reason: String| OffsetError::Corrupt {
            path: format!(
                "{} (Kafka topic), key of connector {connector}",
                self.settings.topic
            )
            .into(),
            reason,
        };
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        connect::position(&v).map_err(corrupt)
    }

    fn write(&self, connector: &str, value: Option<&[u8]>) -> Result<(), OffsetError> {
        let _one = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let key = self.key_of(connector);
        let partition = connect::partition(&key, self.partitions);
        *self
            .deliveries
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        let mut record = BaseRecord::to(&self.settings.topic)
            .key(&key)
            .partition(partition);
        if let Some(v) = value {
            record = record.payload(v);
        }
        self.producer
            .send(record)
            .map_err(|(e, _)| unreachable(&self.settings, e))?;
        self.producer
            .flush(TIMEOUT)
            .map_err(|e: KafkaError| unreachable(&self.settings, e))?;
        match self
            .deliveries
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            Some(Ok(())) => Ok(()),
            Some(Err(why)) => Err(unreachable(&self.settings, why)),
            None => Err(unreachable(&self.settings, "no delivery report")),
        }
    }
}

/// Runs a blocking broker round trip without starving the async workers: on a worker of a
/// multi-threaded runtime the worker hands its tasks over first (`block_in_place`); elsewhere
/// (a blocking thread, a plain thread) it just runs.
fn off_worker<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

impl OffsetStore for KafkaOffsetStore {
    fn describe(&self, connector: &str, server: &str) {
        self.servers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(connector.to_string(), server.to_string());
    }

    fn load(&self, connector: &str) -> Result<Option<SourcePosition>, OffsetError> {
        off_worker(|| self.load_now(connector))
    }

    fn commit(&self, connector: &str, position: &SourcePosition) -> Result<(), OffsetError> {
        off_worker(|| self.commit_now(connector, position))
    }

    fn reset(&self, connector: &str, position: &SourcePosition) -> Result<(), OffsetError> {
        off_worker(|| self.reset_now(connector, position))
    }

    fn delete(&self, connector: &str) -> Result<(), OffsetError> {
        off_worker(|| self.delete_now(connector))
    }

    fn names(&self) -> Result<Vec<String>, OffsetError> {
        off_worker(|| self.names_now())
    }

    fn position_record(
        &self,
        connector: &str,
        position: &SourcePosition,
        reset: bool,
    ) -> Option<Result<PositionRecord, OffsetError>> {
        Some(off_worker(|| {
            if !reset {
                let current = self.current(connector)?;
                refuse_backwards(connector, current.as_ref(), position)?;
            }
            let key = self.key_of(connector);
            Ok(PositionRecord {
                topic: self.settings.topic.clone(),
                partition: connect::partition(&key, self.partitions),
                key,
                value: serde_json::to_vec(&connect::value(position)).unwrap_or_default(),
            })
        }))
    }

    fn committed_in_transaction(&self, connector: &str, position: &SourcePosition) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(connector.to_string(), position.clone());
    }
}

impl KafkaOffsetStore {
    fn load_now(&self, connector: &str) -> Result<Option<SourcePosition>, OffsetError> {
        let key = self.key_of(connector);
        let partition = connect::partition(&key, self.partitions);
        let found = match self.read(&[partition])?.remove(&key).flatten() {
            Some(bytes) => Some(self.decode(connector, &bytes)?),
            None => None,
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        match &found {
            Some(p) => cache.insert(connector.to_string(), p.clone()),
            None => cache.remove(connector),
        };
        Ok(found)
    }

    /// The stored position: the one last loaded or written, else read.
    fn current(&self, connector: &str) -> Result<Option<SourcePosition>, OffsetError> {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(connector)
            .cloned();
        match cached {
            Some(p) => Ok(Some(p)),
            None => self.load_now(connector),
        }
    }

    fn commit_now(&self, connector: &str, position: &SourcePosition) -> Result<(), OffsetError> {
        let current = self.current(connector)?;
        refuse_backwards(connector, current.as_ref(), position)?;
        self.reset_now(connector, position)
    }

    fn reset_now(&self, connector: &str, position: &SourcePosition) -> Result<(), OffsetError> {
        let value = serde_json::to_vec(&connect::value(position)).unwrap_or_default();
        self.write(connector, Some(&value))?;
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(connector.to_string(), position.clone());
        Ok(())
    }

    fn delete_now(&self, connector: &str) -> Result<(), OffsetError> {
        self.write(connector, None)?;
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(connector);
        Ok(())
    }

    fn names_now(&self) -> Result<Vec<String>, OffsetError> {
        let all: Vec<i32> = (0..self.partitions).collect();
        let mut names: Vec<String> = self
            .read(&all)?
            .into_iter()
            .filter(|(_, v)| v.is_some())
            .filter_map(|(k, _)| connect::parse_key(&k))
            .map(|(name, server)| {
                self.describe_if_unknown(&name, &server);
                name
            })
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

impl KafkaOffsetStore {
    fn describe_if_unknown(&self, connector: &str, server: &str) {
        let mut servers = self.servers.write().unwrap_or_else(|e| e.into_inner());
        servers
            .entry(connector.to_string())
            .or_insert_with(|| server.to_string());
    }
}
