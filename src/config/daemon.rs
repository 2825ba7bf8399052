//! `config/sluice.toml`: the daemon's own settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{parse_toml, read, ConfigError, Secret};

/// Offsets are committed this often by default: Kafka Connect's `offset.flush.interval.ms`
/// is 60 s, but a short interval keeps redelivery after a crash small and costs one fsync.
pub const DEFAULT_OFFSET_FLUSH_INTERVAL_MS: u64 = 1000;
/// New topics get one partition by default: per-key order holds either way, and one
/// partition keeps a demo broker light. Raise it for throughput on a real cluster.
pub const DEFAULT_TOPIC_PARTITIONS: i32 = 1;
/// Replication factor of created topics: 1 suits a single-broker demo; use 3 in production.
pub const DEFAULT_TOPIC_REPLICATION_FACTOR: i32 = 1;
/// Records in flight to the broker per connector before the source is paused (backpressure).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;
/// Default `[sink] max_in_flight_bytes`: 64 MiB.
pub const DEFAULT_MAX_IN_FLIGHT_BYTES: u64 = 64 << 20;

/// The daemon's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Folder holding one `*.toml` file per connector (a relative path is resolved against
    /// the folder of the daemon file).
    pub connectors_dir: PathBuf,
    /// How often acknowledged positions are committed to the offset store, in milliseconds.
    #[serde(default = "default_flush_interval")]
    pub offset_flush_interval_ms: u64,
    /// Where positions are stored.
    pub offsets: OffsetsConfig,
    /// Where records go.
    pub sink: SinkConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The admin HTTP API (off when absent).
    #[serde(default)]
    pub api: Option<ApiConfig>,
    /// Cluster mode: daemons sharing the connectors through a Kafka consumer group (absent:
    /// this daemon runs every connector of its folder).
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
}

/// `[cluster]`: connectors spread over the daemons of one group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The consumer group every daemon of the cluster joins.
    pub group_id: String,
    /// Static membership (`group.instance.id`): a restart within the session timeout keeps
    /// this daemon's connectors. Also the name other daemons show as the owner.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// How long a silent daemon keeps its connectors before the others take them.
    #[serde(default = "default_session_timeout")]
    pub session_timeout_ms: u64,
    /// Partitions of the `<group_id>-assignments` topic: connector `c` belongs to partition
    /// `murmur2(c) mod N`. Fixed for the cluster's life (every daemon must agree).
    #[serde(default = "default_assignment_partitions")]
    pub assignment_partitions: i32,
    /// After taking over a connector another daemon held without handing it over cleanly,
    /// wait this long before publishing, so a frozen previous owner's late writes cannot land
    /// after newer ones (default: the producer's `message.timeout.ms`, 300000).
    #[serde(default)]
    pub handoff_delay_ms: Option<u64>,
}

impl ClusterConfig {
    /// The topic whose partitions are the units of ownership.
    pub fn assignments_topic(&self) -> String {
        format!("{}-assignments", self.group_id)
    }
}

fn default_session_timeout() -> u64 {
    10_000
}

fn default_assignment_partitions() -> i32 {
    12
}

/// The admin HTTP API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to listen on, `host:port` (keep it on a private interface).
    pub listen: String,
    /// Bearer token required on every route but `/health` (a secret; `${VAR}` allowed).
    #[serde(default)]
    pub token: Option<Secret>,
    /// PEM certificate chain: with `tls_key_file`, the API speaks HTTPS.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// Let Kafka Connect's config routes (`PUT /connectors/{name}/config`, `POST
    /// /connectors`, `DELETE /connectors/{name}`) write and remove connector files; off, they
    /// answer 405 and the files stay the only way to change connectors.
    #[serde(default)]
    pub allow_config_writes: bool,
    /// `/ready` answers 503 while a connector has been failing and retrying, without
    /// committing anything new, for longer than this many seconds.
    #[serde(default = "default_ready_max_retry_s")]
    pub ready_max_retry_s: u64,
}

fn default_ready_max_retry_s() -> u64 {
    60
}

fn default_flush_interval() -> u64 {
    DEFAULT_OFFSET_FLUSH_INTERVAL_MS
}

/// The offset store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffsetsConfig {
    /// Store kind: `file` (one file per connector in `path`) or `kafka` (a compacted topic in
    /// Kafka Connect's offsets format, on the sink's brokers).
    pub store: String,
    /// Folder of the file store (one file per connector).
    #[serde(default = "default_offsets_path")]
    pub path: PathBuf,
    /// The Kafka store's topic (created, compacted, when absent).
    #[serde(default = "default_offsets_topic")]
    pub topic: String,
    /// Partitions of the Kafka store's topic when Sluice creates it (Connect's default: 25).
    #[serde(default = "default_offsets_partitions")]
    pub topic_partitions: i32,
    /// Replication factor of the Kafka store's topic when Sluice creates it.
    #[serde(default = "default_offsets_replication")]
    pub topic_replication_factor: i32,
    /// Kafka store: read the record batches of the offsets topic and drop positions of
    /// aborted transactions itself, for Kafka-compatible brokers that do not report aborted
    /// transactions to `read_committed` consumers (plaintext listeners only).
    #[serde(default)]
    pub verify_transactions: bool,
}

impl OffsetsConfig {
    /// Whether positions are kept in Kafka.
    pub fn in_kafka(&self) -> bool {
        self.store == "kafka"
    }
}

fn default_offsets_path() -> PathBuf {
    PathBuf::from("data/offsets")
}

fn default_offsets_topic() -> String {
    "sluice-offsets".into()
}

fn default_offsets_partitions() -> i32 {
    25
}

fn default_offsets_replication() -> i32 {
    3
}

/// Sink kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkType {
    /// Apache Kafka (or any Kafka-protocol broker).
    Kafka,
    /// One JSON line per record on standard output.
    Stdout,
}

/// The sink. Its `Debug` masks the values of secret-like properties (`sasl.password`,
/// `ssl.key.password`, ...).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// `kafka` or `stdout`.
    #[serde(rename = "type")]
    pub kind: SinkType,
    /// Kafka bootstrap servers (`host:port,...`); required for `kafka`.
    #[serde(default)]
    pub bootstrap_servers: Option<String>,
    /// librdkafka producer properties, passed through (`"linger.ms" = "5"`).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Partitions of topics that Sluice creates.
    #[serde(default = "default_partitions")]
    pub topic_partitions: i32,
    /// Replication factor of topics that Sluice creates.
    #[serde(default = "default_replication")]
    pub topic_replication_factor: i32,
    /// Records in flight per connector before reading from the source pauses.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Bytes of records in flight per connector (and, separately, of changes waiting between
    /// source and pipeline) before reading from the source pauses. A record larger than
    /// this passes alone.
    #[serde(default = "default_in_flight_bytes")]
    pub max_in_flight_bytes: u64,
    /// Exactly-once delivery (Kafka sink with the Kafka offset store): a transactional
    /// producer per connector puts each batch of records and the position record of the
    /// offsets topic in one transaction, and a new owner's producer fences the old one.
    #[serde(default)]
    pub exactly_once: bool,
    /// Exactly-once: the longest a transaction stays open (ms); records become visible to
    /// `read_committed` consumers when it commits.
    #[serde(default = "default_transaction_max_ms")]
    pub transaction_max_ms: u64,
    /// Exactly-once: records per transaction before it is committed early.
    #[serde(default = "default_transaction_max_records")]
    pub transaction_max_records: u64,
    /// Exactly-once: bytes of records per transaction before it is committed early.
    #[serde(default = "default_transaction_max_bytes")]
    pub transaction_max_bytes: u64,
    /// Exactly-once: the transactional id is `<prefix>-<connector>` (default: the cluster's
    /// `group_id`, else `sluice`). Keep it stable: a producer with the same id fences the
    /// one before it, which is what makes a take-over safe.
    #[serde(default)]
    pub transactional_id_prefix: Option<String>,
}

fn default_transaction_max_ms() -> u64 {
    1000
}
fn default_transaction_max_records() -> u64 {
    100_000
}
fn default_transaction_max_bytes() -> u64 {
    64 * 1024 * 1024
}

impl std::fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| {
                let secret = ["password", "secret", "token"]
                    .iter()
                    .any(|w| k.to_ascii_lowercase().contains(w));
                (k.as_str(), if secret { "***" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("SinkConfig")
            .field("kind", &self.kind)
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("properties", &properties)
            .field("topic_partitions", &self.topic_partitions)
            .field("topic_replication_factor", &self.topic_replication_factor)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_in_flight_bytes", &self.max_in_flight_bytes)
            .field("exactly_once", &self.exactly_once)
            .finish()
    }
}

fn default_partitions() -> i32 {
    DEFAULT_TOPIC_PARTITIONS
}
fn default_replication() -> i32 {
    DEFAULT_TOPIC_REPLICATION_FACTOR
}
fn default_in_flight() -> usize {
    DEFAULT_MAX_IN_FLIGHT
}
fn default_in_flight_bytes() -> u64 {
    DEFAULT_MAX_IN_FLIGHT_BYTES
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter: `info`, `debug`, `sluice=debug,info`.
    #[serde(default = "default_level")]
    pub level: String,
}

fn default_level() -> String {
    "info".into()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: default_level(),
        }
    }
}

/// Producer properties Sluice sets itself; overriding them would break its guarantees.
const RESERVED_PROPERTIES: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("bootstrap.servers", ""),
];

impl DaemonConfig {
    /// Reads and validates the daemon file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read(path)?;
        let mut config: DaemonConfig = parse_toml(path, &text)?;
        config.validate(path)?;
        // Relative paths mean the same whatever the working directory.
        super::resolve_against(path, &mut config.connectors_dir);
        super::resolve_against(path, &mut config.offsets.path);
        if let Some(api) = config.api.as_mut() {
            for file in [&mut api.tls_cert_file, &mut api.tls_key_file]
                .into_iter()
                .flatten()
            {
                super::resolve_against(path, file);
            }
        }
        Ok(config)
    }

    /// Exactly-once: what every connector's transactional id starts with (`None`: off).
    pub fn transactional_prefix(&self) -> Option<String> {
        self.sink.exactly_once.then(|| {
            self.sink
                .transactional_id_prefix
                .clone()
                .or_else(|| self.cluster.as_ref().map(|c| c.group_id.clone()))
                .unwrap_or_else(|| "sluice".into())
        })
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.into(),
            problem,
        };
        if !matches!(self.offsets.store.as_str(), "file" | "kafka") {
            return Err(invalid(
                "offsets.store",
                format!(
                    "is \"{}\"; use \"file\" (a folder) or \"kafka\" (a compacted topic)",
                    self.offsets.store
                ),
            ));
        }
        if self.offsets.in_kafka() {
            if self.sink.kind != SinkType::Kafka {
                return Err(invalid(
                    "offsets.store",
                    "is \"kafka\", which keeps positions on the sink's brokers: it needs [sink] type = \"kafka\"".into(),
                ));
            }
            let t = &self.offsets.topic;
            if t.is_empty()
                || t.len() > 249
                || !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return Err(invalid(
                    "offsets.topic",
                    format!("\"{t}\" is not a legal Kafka topic name; use [A-Za-z0-9._-], at most 249 characters"),
                ));
            }
            if self.offsets.topic_partitions < 1 || self.offsets.topic_replication_factor < 1 {
                return Err(invalid(
                    "offsets.topic_partitions",
                    "and offsets.topic_replication_factor must be at least 1".into(),
                ));
            }
        }
        if let Some(c) = &self.cluster {
            if !self.offsets.in_kafka() {
                return Err(invalid(
                    "cluster",
                    "needs [offsets] store = \"kafka\": every daemon of the cluster must read the positions the others wrote".into(),
                ));
            }
            if c.group_id.is_empty()
                || !c
                    .group_id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'))
            {
                return Err(invalid(
                    "cluster.group_id",
                    format!("\"{}\" must be non-empty and use only [A-Za-z0-9._-] (it names the <group_id>-assignments topic)", c.group_id),
                ));
            }
            if !(1..=10_000).contains(&c.assignment_partitions) {
                return Err(invalid(
                    "cluster.assignment_partitions",
                    "must be between 1 and 10000".into(),
                ));
            }
            if !(1000..=3_600_000).contains(&c.session_timeout_ms) {
                return Err(invalid(
                    "cluster.session_timeout_ms",
                    "must be between 1000 and 3600000 (milliseconds)".into(),
                ));
            }
        }
        if self.offset_flush_interval_ms == 0 {
            return Err(invalid(
                "offset_flush_interval_ms",
                "must be at least 1 (milliseconds)".into(),
            ));
        }
        if self.sink.kind == SinkType::Kafka
            && self
                .sink
                .bootstrap_servers
                .as_deref()
                .is_none_or(|s| s.trim().is_empty())
        {
            return Err(invalid(
                "sink.bootstrap_servers",
                "is required for type = \"kafka\"; set it to host:port of your brokers".into(),
            ));
        }
        if self.sink.topic_partitions < 1 || self.sink.topic_replication_factor < 1 {
            return Err(invalid(
                "sink.topic_partitions",
                "and sink.topic_replication_factor must be at least 1".into(),
            ));
        }
        if let Some(api) = &self.api {
            if api.listen.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid(
                    "api.listen",
                    format!(
                        "\"{}\" is not an address; write host:port, e.g. \"127.0.0.1:8083\"",
                        api.listen
                    ),
                ));
            }
            if api.token.as_ref().is_some_and(|t| t.expose().is_empty()) {
                return Err(invalid(
                    "api.token",
                    "is empty; set a token or remove the key".into(),
                ));
            }
        }
        if self.sink.max_in_flight == 0 {
            return Err(invalid("sink.max_in_flight", "must be at least 1".into()));
        }
        if !(1..=u64::from(u32::MAX)).contains(&self.sink.max_in_flight_bytes) {
            return Err(invalid(
                "sink.max_in_flight_bytes",
                format!(
                    "must be between 1 and {} (4 GiB); it is {}",
                    u32::MAX,
                    self.sink.max_in_flight_bytes
                ),
            ));
        }
        if self.sink.exactly_once {
            if self.sink.kind != SinkType::Kafka || !self.offsets.in_kafka() {
                return Err(invalid(
                    "sink.exactly_once",
                    "needs [sink] type = \"kafka\" and [offsets] store = \"kafka\": the position must be written in the same Kafka transaction as the records (a file cannot join it)".into(),
                ));
            }
            if self.sink.transaction_max_ms == 0
                || self.sink.transaction_max_records == 0
                || self.sink.transaction_max_bytes == 0
            {
                return Err(invalid(
                    "sink.transaction_max_ms",
                    "and sink.transaction_max_records / transaction_max_bytes must be at least 1"
                        .into(),
                ));
            }
            if let Some(p) = &self.sink.transactional_id_prefix {
                if p.is_empty() || p.chars().any(|c| c.is_control()) {
                    return Err(invalid(
                        "sink.transactional_id_prefix",
                        "must be non-empty text (it starts every connector's transactional.id)"
                            .into(),
                    ));
                }
            }
        }
        if self.offsets.verify_transactions
            && self
                .sink
                .properties
                .get("security.protocol")
                .is_some_and(|p| !p.eq_ignore_ascii_case("plaintext"))
        {
            return Err(invalid(
                "offsets.verify_transactions",
                "reads the offsets topic over a plaintext connection: it cannot be used with security.protocol other than plaintext; use a broker whose read_committed consumers skip aborted transactions (Apache Kafka does)".into(),
            ));
        }
        if self.sink.properties.contains_key("transactional.id") {
            return Err(invalid(
                "sink.properties.\"transactional.id\"",
                "is set by Sluice per connector (<transactional_id_prefix>-<connector>) when [sink] exactly_once = true; remove it here".into(),
            ));
        }
        for (key, value) in &self.sink.properties {
            if let Some((_, required)) = RESERVED_PROPERTIES.iter().find(|(k, _)| k == key) {
                if key == "bootstrap.servers" {
                    return Err(invalid(
                        &format!("sink.properties.\"{key}\""),
                        "is set by sink.bootstrap_servers; remove it here".into(),
                    ));
                }
                if value != required {
                    return Err(invalid(
                        &format!("sink.properties.\"{key}\""),
                        format!("must stay \"{required}\": Sluice's no-loss and per-key order guarantees depend on it"),
                    ));
                }
            }
        }
        // A record must fit librdkafka's queue as well as `message.max.bytes`: one that
        // fits the second but not the first could never be queued (it would wait forever).
        let number = |key: &str| -> Result<Option<u64>, ConfigError> {
            match self.sink.properties.get(key) {
                None => Ok(None),
                Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
                    invalid(
                        &format!("sink.properties.\"{key}\""),
                        format!("must be a whole number, not \"{v}\""),
                    )
                }),
            }
        };
        if let (Some(max), Some(queue_kb)) = (
            number("message.max.bytes")?,
            number("queue.buffering.max.kbytes")?,
        ) {
            if queue_kb.saturating_mul(1024) < max {
                return Err(invalid(
                    "sink.properties.\"queue.buffering.max.kbytes\"",
                    format!(
                        "is {queue_kb} KiB, smaller than message.max.bytes ({max} bytes): a record that size could never enter the producer's queue; raise queue.buffering.max.kbytes to at least {} or lower message.max.bytes",
                        max.div_ceil(1024)
                    ),
                ));
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid(
                "log.level",
                format!(
                    "\"{}\" is not a log filter; use error, warn, info, debug or trace",
                    self.log.level
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DaemonConfig, ConfigError> {
        let p = Path::new("sluice.toml");
        let c: DaemonConfig = parse_toml(p, text)?;
        c.validate(p)?;
        Ok(c)
    }

    const GOOD: &str = r#"
connectors_dir = "connectors"
[offsets]
store = "file"
path = "data/offsets"
[sink]
type = "kafka"
bootstrap_servers = "127.0.0.1:9092"
[sink.properties]
"linger.ms" = "5"
[log]
format = "json"
level = "info"
"#;

    #[test]
    fn secret_sink_properties_never_print() {
        let text = GOOD.replace(
            "\"linger.ms\" = \"5\"",
            "\"linger.ms\" = \"5\"\n\"sasl.password\" = \"s3cret\"\n\"ssl.key.password\" = \"k3y\"",
        );
        let c = parse(&text).unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("k3y"),
            "{shown}"
        );
        assert!(
            shown.contains("linger.ms") && shown.contains("***"),
            "{shown}"
        );
    }

    #[test]
    fn accepts_documented_file() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.sink.kind, SinkType::Kafka);
        assert_eq!(c.sink.properties["linger.ms"], "5");
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.offset_flush_interval_ms, 1000);
    }

    #[test]
    fn rejects_unknown_key_naming_it() {
        let err = parse(&GOOD.replace("[log]", "[log]\ncolour = true"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sluice.toml") && err.contains("colour"),
            "{err}"
        );
    }

    #[test]
    fn rejects_weakened_guarantees() {
        let err = parse(&GOOD.replace("\"linger.ms\" = \"5\"", "\"acks\" = \"1\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("acks"), "{err}");
    }

    #[test]
    fn exactly_once_needs_the_kafka_store_and_names_its_transactional_ids() {
        let eo = GOOD.replace(
            "bootstrap_servers = \"127.0.0.1:9092\"",
            "bootstrap_servers = \"127.0.0.1:9092\"\nexactly_once = true",
        );
        let err = parse(&eo).unwrap_err().to_string();
        assert!(
            err.contains("sink.exactly_once") && err.contains("store = \"kafka\""),
            "{err}"
        );
        let kafka = eo.replace("store = \"file\"", "store = \"kafka\"");
        let c = parse(&kafka).unwrap();
        assert_eq!(c.transactional_prefix().as_deref(), Some("sluice"));
        assert_eq!(c.sink.transaction_max_ms, 1000);
        let c = parse(&format!("{kafka}[cluster]\ngroup_id = \"prod\"\n")).unwrap();
        assert_eq!(c.transactional_prefix().as_deref(), Some("prod"));
        assert_eq!(parse(GOOD).unwrap().transactional_prefix(), None);
        let err = parse(&GOOD.replace("\"linger.ms\" = \"5\"", "\"transactional.id\" = \"x\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("transactional.id"), "{err}");
    }

    #[test]
    fn kafka_offsets_and_cluster_settings() {
        let kafka = GOOD.replace(
            "store = \"file\"",
            "store = \"kafka\"\ntopic = \"connect-offsets\"",
        );
        let c = parse(&kafka).unwrap();
        assert!(c.offsets.in_kafka());
        assert_eq!(
            (
                c.offsets.topic_partitions,
                c.offsets.topic_replication_factor
            ),
            (25, 3)
        );
        let cluster = format!("{kafka}[cluster]\ngroup_id = \"sluice-prod\"\n");
        let c = parse(&cluster).unwrap();
        let cl = c.cluster.unwrap();
        assert_eq!(cl.assignments_topic(), "sluice-prod-assignments");
        assert_eq!(
            (cl.session_timeout_ms, cl.assignment_partitions),
            (10_000, 12)
        );
        let cases = [
            (
                GOOD.replace("store = \"file\"", "store = \"s3\""),
                "offsets.store",
            ),
            (
                GOOD.replace("store = \"file\"", "store = \"kafka\"")
                    .replace("type = \"kafka\"", "type = \"stdout\""),
                "offsets.store",
            ),
            (
                kafka.replace("connect-offsets", "bad topic"),
                "offsets.topic",
            ),
            (format!("{GOOD}[cluster]\ngroup_id = \"g\"\n"), "cluster"),
            (
                format!("{kafka}[cluster]\ngroup_id = \"a b\"\n"),
                "cluster.group_id",
            ),
            (
                format!("{kafka}[cluster]\ngroup_id = \"g\"\nassignment_partitions = 0\n"),
                "cluster.assignment_partitions",
            ),
        ];
        for (text, key) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(key), "expected `{key}` in: {err}");
        }
    }
}
