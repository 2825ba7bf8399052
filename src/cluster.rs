//! Cluster mode: connectors spread over daemons by an ordinary Kafka consumer group.
//!
//! Every daemon with `[cluster]` joins the consumer group `group_id`, subscribed to the
//! compacted `<group_id>-assignments` topic. A connector belongs to the partition
//! `murmur2(name) mod N` of that topic, and a daemon runs exactly the connectors of the
//! partitions Kafka's group coordinator assigned to it (cooperative-sticky assignment: a join
//! or a leave moves only what must move). librdkafka cannot speak Kafka Connect's own group
//! protocol, so the consumer-group protocol does the same job.
//!
//! On a revocation the rebalance callback hands the partitions to the runtime and waits until
//! their connectors stopped cleanly (drained, committed, confirmed); on a lost assignment (this
//! daemon was silent past its session) the connectors are stopped at once and commit nothing.
//!
//! The assignments topic also records, per connector, who holds it: a daemon writes
//! `{"owner": <me>, "state": "running"}` before it starts a connector and `"released"` after
//! it stopped it cleanly. A daemon that finds a connector still marked running by someone else
//! took it over uncleanly (the previous owner died or froze), and waits `handoff_delay_ms`
//! before publishing so a frozen owner's late writes cannot land after newer ones.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;

use crate::config::{ClusterConfig, DaemonConfig};
use crate::offsets::connect;

/// How long a revocation may take (connectors draining) before the group moves on.
const REVOKE_WAIT: Duration = Duration::from_secs(60);
/// How often the group's members and their partitions are read (for the API's owners).
const DESCRIBE_EVERY: Duration = Duration::from_secs(3);
/// Timeout of one request to the brokers.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Partitions taken away from this daemon.
#[derive(Debug)]
pub struct Revocation {
    /// The assignment partitions.
    pub partitions: Vec<i32>,
    /// The assignment was lost (this daemon was out of the group): stop at once, commit
    /// nothing.
    pub lost: bool,
    /// Signalled when the connectors of `partitions` have stopped.
    pub done: std::sync::mpsc::Sender<()>,
}

/// This daemon's place in the cluster.
pub struct Membership {
    config: ClusterConfig,
    me: String,
    servers: String,
    properties: BTreeMap<String, String>,
    owned: RwLock<BTreeSet<i32>>,
    /// Connector → its last ownership record (read from the assignments topic now and then).
    holders: RwLock<BTreeMap<String, Holder>>,
    /// Signalled when this daemon got partitions.
    gained: tokio::sync::Notify,
    stop: AtomicBool,
    producer: BaseProducer<MarkContext>,
    /// Exactly-once: a new owner's transactional producer fences the old one, so a
    /// take-over needs no wait.
    fenced_by_transactions: bool,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("group_id", &self.config.group_id)
            .field("me", &self.me)
            .finish()
    }
}

fn client_config(servers: &str, properties: &BTreeMap<String, String>) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", servers);
    for (k, v) in properties {
        if k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.") {
            cc.set(k, v);
        }
    }
    cc
}

/// A connector's last ownership record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The daemon.
    pub owner: String,
    /// Whether it still runs the connector (`false`: released cleanly).
    pub running: bool,
}

impl Membership {
    /// This daemon's name in the cluster (`instance_id`, or host name and process id).
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The assignment partition of a connector.
    pub fn partition_of(&self, connector: &str) -> i32 {
        connect::partition(connector.as_bytes(), self.config.assignment_partitions)
    }

    /// Whether this daemon runs `connector`.
    pub fn owns(&self, connector: &str) -> bool {
        let p = self.partition_of(connector);
        self.owned
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&p)
    }

    /// The daemon that runs `connector`, as the assignments topic last said.
    pub fn owner_of(&self, connector: &str) -> Option<String> {
        self.holders
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(connector)
            .filter(|h| h.running)
            .map(|h| h.owner.clone())
    }

    /// Waits until this daemon gets partitions.
    pub async fn gained(&self) {
        self.gained.notified().await;
    }

    /// How long to wait after an unclean takeover: `handoff_delay_ms`, else the producer's
    /// effective `message.timeout.ms` (`[sink.properties]`, librdkafka's 300 s by default) —
    /// the longest a previous owner that lost the connector may still deliver what it had
    /// queued.
    pub fn handoff_delay(&self) -> Duration {
        if self.fenced_by_transactions {
            return Duration::ZERO;
        }
        Duration::from_millis(
            self.config
                .handoff_delay_ms
                .unwrap_or_else(|| message_timeout_ms(&self.properties)),
        )
    }

    /// Leaves the group (at shutdown, after the connectors stopped).
    pub fn leave(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// The last ownership record of `connector` (blocking: reads its partition to the end).
    pub fn holder(&self, connector: &str) -> Result<Option<Holder>, String> {
        Ok(self
            .read_marks(&[self.partition_of(connector)])?
            .remove(connector))
    }

    /// The last ownership record of every connector on these partitions (blocking).
    fn read_marks(&self, partitions: &[i32]) -> Result<BTreeMap<String, Holder>, String> {
        read_marks(
            &self.servers,
            &self.properties,
            &self.config.assignments_topic(),
            partitions,
        )
    }

    /// Records that this daemon runs (`running`) or has cleanly released `connector`
    /// (blocking until the brokers acknowledged it).
    pub fn mark(&self, connector: &str, running: bool) -> Result<(), String> {
        let value = serde_json::json!({
            "owner": self.me,
            "state": if running { "running" } else { "released" },
        })
        .to_string();
        let topic = self.config.assignments_topic();
        // Confirmed by the record's own delivery report, not by the queue being empty (a
        // flush also ends when the record failed).
        let (confirmed, report) = std::sync::mpsc::sync_channel(1);
        self.producer
            .send(
                BaseRecord::with_opaque_to(&topic, Box::new(confirmed))
                    .key(connector)
                    .payload(&value)
                    .partition(self.partition_of(connector)),
            )
            .map_err(|(e, _)| e.to_string())?;
        self.producer.flush(TIMEOUT).map_err(|e| e.to_string())?;
        // The report is served by a poll (a flush may end before it is).
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(result) = report.try_recv() {
                return result;
            }
            if Instant::now() > deadline {
                return Err("the ownership record's delivery was not reported".into());
            }
            self.producer.poll(Duration::from_millis(50));
        }
    }
}

/// The ownership producer's delivery reports, handed to the `mark` that sent the record.
struct MarkContext;

impl ClientContext for MarkContext {}

impl rdkafka::producer::ProducerContext for MarkContext {
    type DeliveryOpaque = Box<std::sync::mpsc::SyncSender<Result<(), String>>>;

    fn delivery(
        &self,
        result: &rdkafka::message::DeliveryResult<'_>,
        confirmed: Self::DeliveryOpaque,
    ) {
        let _ = confirmed.try_send(result.as_ref().map(|_| ()).map_err(|(e, _)| e.to_string()));
    }
}

/// The producer's effective `message.timeout.ms` (librdkafka's default: 300 s).
pub fn message_timeout_ms(properties: &BTreeMap<String, String>) -> u64 {
    properties
        .get("message.timeout.ms")
        .or_else(|| properties.get("delivery.timeout.ms"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(300_000)
}

/// The consumer's callbacks: revocations go to the runtime, assignments to the owned set.
struct GroupContext {
    membership: Arc<Membership>,
    revocations: mpsc::UnboundedSender<Revocation>,
}

impl ClientContext for GroupContext {}

fn partitions(tpl: &TopicPartitionList) -> Vec<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let revoked = partitions(tpl);
        if revoked.is_empty() {
            return;
        }
        let lost = consumer.assignment_lost();
        {
            let mut owned = self
                .membership
                .owned
                .write()
                .unwrap_or_else(|e| e.into_inner());
            for p in &revoked {
                owned.remove(p);
            }
        }
        tracing::info!(partitions = ?revoked, lost, "cluster: assignment partitions revoked");
        let (done, wait) = std::sync::mpsc::channel();
        let sent = self.revocations.send(Revocation {
            partitions: revoked,
            lost,
            done,
        });
        if sent.is_ok() && wait.recv_timeout(REVOKE_WAIT).is_err() {
            tracing::warn!("cluster: connectors did not stop within 60 s of a revocation");
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(tpl) = rebalance else {
            return;
        };
        let assigned = partitions(tpl);
        if assigned.is_empty() {
            return;
        }
        tracing::info!(partitions = ?assigned, "cluster: assignment partitions assigned");
        self.membership
            .owned
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(assigned);
        self.membership.gained.notify_one();
    }
}

/// The last ownership record of every connector on these partitions of the assignments topic
/// (blocking: reads them to their end).
fn read_marks(
    servers: &str,
    properties: &BTreeMap<String, String>,
    topic: &str,
    partitions: &[i32],
) -> Result<BTreeMap<String, Holder>, String> {
    let consumer: BaseConsumer = client_config(servers, properties)
        .set("group.id", "sluice-assignments-reader")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| e.to_string())?;
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for &p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, TIMEOUT)
            .map_err(|e| e.to_string())?;
        if high > low {
            ends.insert(p, (high, false));
            tpl.add_partition_offset(topic, p, Offset::Offset(low))
                .map_err(|e| e.to_string())?;
        }
    }
    let mut marks = BTreeMap::new();
    if ends.is_empty() {
        return Ok(marks);
    }
    consumer.assign(&tpl).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if Instant::now() > deadline {
            return Err("timed out reading the assignments topic".into());
        }
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            // Past every partition's high watermark and nothing more arrived: done. (The
            // watermark alone is not trusted: some brokers report it a batch short.)
            if ends.values().all(|e| e.1) {
                break;
            }
            continue;
        };
        let msg = msg.map_err(|e| e.to_string())?;
        let holder = msg
            .payload()
            .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
            .and_then(|v| {
                Some(Holder {
                    owner: v.get("owner")?.as_str()?.to_string(),
                    running: v.get("state")?.as_str()? == "running",
                })
            });
        if let (Some(key), Some(h)) = (msg.key(), holder) {
            marks.insert(String::from_utf8_lossy(key).into_owned(), h);
        }
        if let Some(end) = ends.get_mut(&msg.partition()) {
            if msg.offset() + 1 >= end.0 {
                end.1 = true;
            }
        }
    }
    Ok(marks)
}

/// Who runs `connector` in the cluster a daemon configuration describes, if someone does
/// (for the `offsets` commands, which must not change a running connector's position).
pub fn running_owner(daemon: &DaemonConfig, connector: &str) -> Result<Option<String>, String> {
    let Some(config) = &daemon.cluster else {
        return Ok(None);
    };
    let partition = connect::partition(connector.as_bytes(), config.assignment_partitions);
    let marks = read_marks(
        daemon.sink.bootstrap_servers.as_deref().unwrap_or_default(),
        &daemon.sink.properties,
        &config.assignments_topic(),
        &[partition],
    )?;
    Ok(marks
        .get(connector)
        .filter(|h| h.running)
        .map(|h| h.owner.clone()))
}

/// Joins the cluster: creates the assignments topic when absent, then runs the group member
/// on its own thread. Revocations arrive on the returned receiver.
pub async fn join(
    daemon: &DaemonConfig,
) -> Result<(Arc<Membership>, mpsc::UnboundedReceiver<Revocation>), String> {
    let config = daemon.cluster.clone().ok_or("no [cluster] section")?;
    let servers = daemon.sink.bootstrap_servers.clone().unwrap_or_default();
    let properties = daemon.sink.properties.clone();
    let topic = config.assignments_topic();
    let admin: AdminClient<DefaultClientContext> = client_config(&servers, &properties)
        .create()
        .map_err(|e| e.to_string())?;
    let new = NewTopic::new(
        &topic,
        config.assignment_partitions,
        TopicReplication::Fixed(daemon.offsets.topic_replication_factor),
    )
    .set("cleanup.policy", "compact");
    let created = admin
        .create_topics(
            [&new],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        )
        .await
        .map_err(|e| format!("cannot create topic {topic}: {e}"))?;
    for r in created {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(format!("cannot create topic {topic}: {code}")),
        }
    }
    let me = config.instance_id.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "sluice".into());
        format!("{host}-{}", std::process::id())
    });
    let producer: BaseProducer<MarkContext> = client_config(&servers, &properties)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create_with_context(MarkContext)
        .map_err(|e| e.to_string())?;
    let membership = Arc::new(Membership {
        config: config.clone(),
        me: me.clone(),
        servers: servers.clone(),
        properties: properties.clone(),
        owned: RwLock::new(BTreeSet::new()),
        holders: RwLock::new(BTreeMap::new()),
        gained: tokio::sync::Notify::new(),
        stop: AtomicBool::new(false),
        producer,
        fenced_by_transactions: daemon.sink.exactly_once,
    });
    let timeout = message_timeout_ms(&membership.properties);
    if let Some(delay) = config
        .handoff_delay_ms
        .filter(|d| *d < timeout && !daemon.sink.exactly_once)
    {
        tracing::warn!(handoff_delay_ms = delay, message_timeout_ms = timeout, "cluster: handoff_delay_ms is shorter than the producer's message.timeout.ms: after an unclean take-over, records the previous owner still had queued may land after the new owner's (stale values last); raise handoff_delay_ms or lower message.timeout.ms in [sink.properties]");
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let consumer = subscribe(&membership, tx.clone())?;
    tracing::info!(group = %config.group_id, me = %me, topic = %topic, "cluster: joining the group");
    let m = membership.clone();
    std::thread::Builder::new()
        .name("sluice-cluster".into())
        .spawn(move || member_loop(consumer, m, tx))
        .map_err(|e| e.to_string())?;
    Ok((membership, rx))
}

/// A group member subscribed to the assignments topic.
fn subscribe(
    membership: &Arc<Membership>,
    revocations: mpsc::UnboundedSender<Revocation>,
) -> Result<BaseConsumer<GroupContext>, String> {
    let config = &membership.config;
    let mut cc = client_config(&membership.servers, &membership.properties);
    cc.set("group.id", &config.group_id)
        .set("client.id", &membership.me)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("session.timeout.ms", config.session_timeout_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            (config.session_timeout_ms / 3).max(100).to_string(),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "latest");
    if let Some(id) = &config.instance_id {
        cc.set("group.instance.id", id);
    }
    let consumer: BaseConsumer<GroupContext> = cc
        .create_with_context(GroupContext {
            membership: membership.clone(),
            revocations,
        })
        .map_err(|e| e.to_string())?;
    consumer
        .subscribe(&[&config.assignments_topic()])
        .map_err(|e| e.to_string())?;
    Ok(consumer)
}

/// Leaves the group with `consumer` and joins again with a new one (retried each second);
/// `None` when the daemon stops meanwhile.
fn rejoin(
    consumer: BaseConsumer<GroupContext>,
    membership: &Arc<Membership>,
    revocations: &mpsc::UnboundedSender<Revocation>,
) -> Option<BaseConsumer<GroupContext>> {
    consumer.unsubscribe();
    drop(consumer);
    loop {
        match subscribe(membership, revocations.clone()) {
            Ok(c) => return Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "cluster: cannot rejoin the group; retrying");
                std::thread::sleep(Duration::from_secs(1));
                if membership.stop.load(Ordering::SeqCst) {
                    return None;
                }
            }
        }
    }
}

/// Everything this daemon owns, taken away as lost (its connectors stop at once and commit
/// nothing: another member may own them already).
fn lose_all(membership: &Membership, revocations: &mpsc::UnboundedSender<Revocation>) {
    let owned: Vec<i32> =
        std::mem::take(&mut *membership.owned.write().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .collect();
    if owned.is_empty() {
        return;
    }
    let (done, wait) = std::sync::mpsc::channel();
    if revocations
        .send(Revocation {
            partitions: owned,
            lost: true,
            done,
        })
        .is_ok()
    {
        let _ = wait.recv_timeout(REVOKE_WAIT);
    }
}

/// How long a member may hold no assignment partition before it rejoins the group with a
/// fresh consumer: four sessions, at least a minute.
fn stuck_after(config: &ClusterConfig) -> Duration {
    Duration::from_millis(config.session_timeout_ms * 4).max(Duration::from_secs(60))
}

/// Polls the group member (heartbeats and rebalances run in `poll`) and reads who holds
/// which connector now and then, until the daemon leaves.
///
/// A member that holds no partition for [`stuck_after`] leaves and joins again with a new
/// consumer: a group whose coordinator lost track of a rebalance (seen on the test broker
/// after its leader froze) then forms again. With more daemons than assignment partitions
/// an idle daemon rejoins that often, which moves no partition (cooperative-sticky).
fn member_loop(
    mut consumer: BaseConsumer<GroupContext>,
    membership: Arc<Membership>,
    revocations: mpsc::UnboundedSender<Revocation>,
) {
    let all: Vec<i32> = (0..membership.config.assignment_partitions).collect();
    let mut read_at = Instant::now() - DESCRIBE_EVERY;
    let mut idle_since = Instant::now();
    while !membership.stop.load(Ordering::SeqCst) {
        // The subscription's own records are not needed: `holder` reads what it must. An
        // error is looked at: fencing (another member took this one's static identity) or a
        // fatal consumer error means this daemon is out of the group whatever it believes:
        // its connectors stop at once, as for a lost assignment, and it joins again.
        let fenced = match consumer.poll(Duration::from_millis(100)) {
            Some(Err(e)) => {
                let fatal = consumer.client().fatal_error();
                let fenced = e.rdkafka_error_code() == Some(RDKafkaErrorCode::FencedInstanceId)
                    || fatal.is_some();
                if fenced {
                    tracing::error!(error = %e, fatal = ?fatal, "cluster: fenced or fatally failed in the group: stopping this daemon's connectors at once and joining again");
                } else {
                    tracing::debug!(error = %e, "cluster: group consumer error");
                }
                fenced
            }
            _ => false,
        };
        if fenced {
            lose_all(&membership, &revocations);
            idle_since = Instant::now();
            let Some(fresh) = rejoin(consumer, &membership, &revocations) else {
                return;
            };
            consumer = fresh;
            continue;
        }
        let holds = !membership
            .owned
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if holds {
            idle_since = Instant::now();
        } else if idle_since.elapsed() >= stuck_after(&membership.config) {
            tracing::warn!(
                seconds = idle_since.elapsed().as_secs(),
                "cluster: no assignment partition for a while: rejoining the group"
            );
            idle_since = Instant::now();
            let Some(fresh) = rejoin(consumer, &membership, &revocations) else {
                return;
            };
            consumer = fresh;
        }
        if read_at.elapsed() >= DESCRIBE_EVERY {
            read_at = Instant::now();
            if let Ok(marks) = membership.read_marks(&all) {
                *membership
                    .holders
                    .write()
                    .unwrap_or_else(|e| e.into_inner()) = marks;
            }
        }
    }
    consumer.unsubscribe();
    // Closing the consumer leaves the group at once (no wait for the session timeout).
    drop(consumer);
    tracing::info!("cluster: left the group");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The handoff delay follows the producer's timeout unless set: a previous owner may
    /// still deliver for that long.
    #[test]
    fn the_handoff_delay_defaults_to_the_producers_message_timeout() {
        let mut p = BTreeMap::new();
        assert_eq!(message_timeout_ms(&p), 300_000);
        p.insert("delivery.timeout.ms".to_string(), "45000".to_string());
        assert_eq!(message_timeout_ms(&p), 45_000);
        p.insert("message.timeout.ms".to_string(), " 20000 ".to_string());
        assert_eq!(message_timeout_ms(&p), 20_000);
    }
}
