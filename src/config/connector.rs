//! `connectors/<file>.toml`: one connector.

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use super::patterns::{ColumnPattern, TableFilter, TablePattern, TableSelector};
use super::{parse_toml, read, ConfigError, Secret};

/// Kafka refuses topic names longer than this.
const MAX_TOPIC_LEN: usize = 249;
/// The heartbeat topic is this followed by the topic prefix.
const HEARTBEAT_TOPIC_PREFIX: &str = "__debezium-heartbeat.";

/// A connector's source kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// PostgreSQL logical replication (pgoutput).
    Postgres,
    /// MySQL / MariaDB binlog replication.
    Mysql,
}

/// One connector file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// The file this came from (not a key).
    #[serde(skip)]
    pub file: PathBuf,
    /// Unique connector name; offsets are stored under it.
    pub name: String,
    /// `postgres` or `mysql`.
    pub source: SourceKind,
    /// First segment of every topic name (Debezium's `topic.prefix`).
    pub topic_prefix: String,
    /// Publish a null-valued record after each delete so compaction can drop the key.
    #[serde(default = "yes")]
    pub tombstones_on_delete: bool,
    /// Operations not published: any of `c`, `u`, `d`, `t` (Debezium's `skipped.operations`;
    /// truncates are skipped by default, `[]` publishes them).
    #[serde(default = "default_skipped")]
    pub skipped_operations: Vec<String>,
    /// Publish a heartbeat record (`__debezium-heartbeat.<topic_prefix>`) and commit the
    /// position this often, in milliseconds (off when absent).
    #[serde(default)]
    pub heartbeat_interval_ms: Option<u64>,
    /// Publish BEGIN/END records on `<topic_prefix>.transaction` and a `transaction` block on
    /// each data event.
    #[serde(default)]
    pub provide_transaction_metadata: bool,
    /// MySQL / MariaDB: publish DDL on the schema-change topic `<topic_prefix>` (Debezium's
    /// `include.schema.changes`, on by default).
    #[serde(default = "yes")]
    pub include_schema_changes: bool,
    /// Debezium's notifications (`[notifications] topic`).
    #[serde(default)]
    pub notifications: NotificationsConfig,
    /// The Debezium properties this file was converted from (`[debezium] properties`),
    /// handed back by `GET /connectors/{name}/config`; Sluice reads the keys above, not these.
    #[serde(default)]
    pub debezium: Option<super::debezium::Recorded>,
    /// PostgreSQL settings (required for `source = "postgres"`).
    #[serde(default)]
    pub postgres: Option<PostgresConfig>,
    /// MySQL / MariaDB settings (required for `source = "mysql"`).
    #[serde(default)]
    pub mysql: Option<MysqlConfig>,
    /// Snapshot settings.
    #[serde(default)]
    pub snapshot: SnapshotConfig,
    /// Debezium's signalling (`[signals] table`).
    #[serde(default)]
    pub signals: SignalsConfig,
    /// Output format.
    #[serde(default)]
    pub format: FormatConfig,
    /// How values of some types are published (Debezium's handling-mode properties).
    #[serde(default)]
    pub types: TypesConfig,
    /// Columns left out, masked or truncated.
    #[serde(default)]
    pub columns: ColumnsConfig,
    /// Message key columns per table (Debezium's `message.key.columns`): table pattern →
    /// column names, in key order. Tables without a primary key become keyable.
    #[serde(default)]
    pub key_columns: std::collections::BTreeMap<String, Vec<String>>,
    /// Row state instead of the envelope (Debezium's `ExtractNewRecordState`).
    #[serde(default)]
    pub unwrap: super::unwrap::UnwrapConfig,
    /// Headers naming the fields an update changed / left unchanged.
    #[serde(default)]
    pub changed_fields: super::unwrap::ChangedFieldsConfig,
    /// Topic routing (`[[route]]`), the first matching route applies.
    #[serde(default)]
    pub route: Vec<super::route::RouteConfig>,
    /// Outbox tables (`[outbox]` or `[[outbox]]`, Debezium's outbox event router).
    #[serde(default, deserialize_with = "super::outbox::one_or_many")]
    pub outbox: Vec<super::outbox::OutboxConfig>,
}

/// `[columns]`: per-column output rules. Columns are named `schema.table.column` (quoted
/// parts as in `tables`) or `re:<regex>` matched against `schema.table.column` (anchored).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnsConfig {
    /// Left out of `before`, `after` and schemas (Debezium's `column.exclude.list`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Replaced by the hex of a salted hash (Debezium's `column.mask.hash.<alg>.with.salt.<salt>`).
    #[serde(default)]
    pub mask_hash: std::collections::BTreeMap<String, HashMaskConfig>,
    /// Replaced by that many `*` (Debezium's `column.mask.with.<n>.chars`).
    #[serde(default)]
    pub mask_with_chars: std::collections::BTreeMap<String, u32>,
    /// Cut to that many characters (Debezium's `column.truncate.to.<n>.chars`).
    #[serde(default)]
    pub truncate_to: std::collections::BTreeMap<String, u32>,
}

/// One `mask_hash` rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashMaskConfig {
    /// `SHA-256` (also `SHA-1`, `SHA-384`, `SHA-512`).
    pub algorithm: String,
    /// The salt (a secret: use `${VAR}`).
    pub salt: Secret,
}

/// `[types]`: Debezium's type-handling properties, with Debezium's defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypesConfig {
    /// MySQL: `tinyint(1)` (and `boolean`) columns as booleans. Debezium publishes them as
    /// integers (a stored 5 stays 5), and so does Sluice unless this is `true`.
    #[serde(default)]
    pub tinyint1_as_boolean: bool,
    /// MySQL: years 0–69 read as 2000–2069 and 70–99 as 1970–1999 in `DATE`, `DATETIME`
    /// and `TIMESTAMP` values (Debezium's `enable.time.adjuster`, on by default).
    #[serde(default = "yes")]
    pub time_adjuster: bool,
    /// Fixed-point numbers (`decimal.handling.mode`).
    #[serde(default)]
    pub decimal_handling_mode: DecimalMode,
    /// Dates, times and timestamps (`time.precision.mode`); absent: the source's Debezium
    /// default (`adaptive` for PostgreSQL, `adaptive_time_microseconds` for MySQL).
    #[serde(default)]
    pub time_precision_mode: Option<TimePrecisionMode>,
    /// Binary columns (`binary.handling.mode`).
    #[serde(default)]
    pub binary_handling_mode: BinaryMode,
    /// PostgreSQL `interval` (`interval.handling.mode`).
    #[serde(default)]
    pub interval_handling_mode: IntervalMode,
    /// PostgreSQL `hstore` (`hstore.handling.mode`).
    #[serde(default)]
    pub hstore_handling_mode: HstoreMode,
    /// MySQL `BIGINT UNSIGNED` (`bigint.unsigned.handling.mode`).
    #[serde(default)]
    pub bigint_unsigned_handling_mode: UnsignedMode,
    /// Columns of types Debezium has no mapping for: left out (`false`, Debezium's
    /// default) or published as the bytes of their text form (`include.unknown.datatypes`).
    #[serde(default)]
    pub include_unknown_datatypes: bool,
}

impl Default for TypesConfig {
    fn default() -> Self {
        TypesConfig {
            tinyint1_as_boolean: false,
            time_adjuster: true,
            decimal_handling_mode: DecimalMode::Precise,
            time_precision_mode: None,
            binary_handling_mode: BinaryMode::Bytes,
            interval_handling_mode: IntervalMode::Numeric,
            hstore_handling_mode: HstoreMode::Json,
            bigint_unsigned_handling_mode: UnsignedMode::Long,
            include_unknown_datatypes: false,
        }
    }
}

/// `decimal_handling_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecimalMode {
    /// Connect's `Decimal` (exact bytes).
    #[default]
    Precise,
    /// The plain decimal string (`12.30`).
    String,
    /// A double (may lose digits).
    Double,
}

/// `time_precision_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimePrecisionMode {
    /// Milli or micro units following the column's precision (PostgreSQL's default).
    Adaptive,
    /// As `adaptive`, but `time` always in microseconds (MySQL's default).
    AdaptiveTimeMicroseconds,
    /// Kafka Connect's `Date`, `Time` and `Timestamp` (milliseconds).
    Connect,
}

/// `binary_handling_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum BinaryMode {
    /// Bytes.
    #[default]
    #[serde(rename = "bytes")]
    Bytes,
    /// A base64 string.
    #[serde(rename = "base64")]
    Base64,
    /// A URL-safe base64 string.
    #[serde(rename = "base64-url-safe")]
    Base64UrlSafe,
    /// A hexadecimal string.
    #[serde(rename = "hex")]
    Hex,
}

/// `interval_handling_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalMode {
    /// Microseconds (`io.debezium.time.MicroDuration`).
    #[default]
    Numeric,
    /// `P<y>Y<m>M<d>DT<h>H<m>M<s>S` (`io.debezium.time.Interval`).
    String,
}

/// `hstore_handling_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HstoreMode {
    /// A JSON object string (`io.debezium.data.Json`).
    #[default]
    Json,
    /// A map of strings.
    Map,
}

/// `bigint_unsigned_handling_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsignedMode {
    /// int64 (values above 2^63 wrap, as Debezium's `long`).
    #[default]
    Long,
    /// Connect's `Decimal` with precision 20 and scale 0.
    Precise,
}

/// Standby status every second: the slot's confirmed position trails the offset store by
/// at most this much, and PostgreSQL's default `wal_sender_timeout` (60 s) is far away.
const DEFAULT_STATUS_INTERVAL_MS: u64 = 1000;

fn default_status_interval() -> u64 {
    DEFAULT_STATUS_INTERVAL_MS
}

fn yes() -> bool {
    true
}

fn default_skipped() -> Vec<String> {
    vec!["t".into()]
}

/// PostgreSQL connection and capture settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/db` (a secret: never printed). A password in
    /// it is percent-decoded (`s%40cr%2Ft` is `s@cr/t`).
    pub url: Secret,
    /// The password, overriding the URL's (use `${VAR}` or `${file:...}`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// Logical replication slot; created when absent.
    pub slot: String,
    /// Publication; created for `tables` when absent.
    pub publication: String,
    /// How Sluice manages the publication (Debezium's `publication.autocreate.mode`).
    #[serde(default)]
    pub publication_autocreate: PublicationMode,
    /// Captured tables, schema-qualified; `schema.*` captures every table of a schema,
    /// `re:<regex>` the tables whose `schema.table` matches; identifiers with dots, quotes or
    /// capitals are double-quoted (`"My Schema"."T.1"`).
    pub tables: Vec<String>,
    /// Tables left out although `tables` names them (same syntax; wins over `tables`).
    #[serde(default)]
    pub exclude_tables: Vec<String>,
    /// `tables` and `exclude_tables`, parsed (filled when the file is read).
    #[serde(skip)]
    pub filter: TableFilter,
    /// A statement run on every heartbeat (for databases that share WAL with busier ones).
    #[serde(default)]
    pub heartbeat_action_query: Option<String>,
    /// How often a standby status update (the confirmed position) is sent, in milliseconds.
    #[serde(default = "default_status_interval")]
    pub status_interval_ms: u64,
    /// When the slot is held by another session (a dead or frozen previous owner in cluster
    /// mode), end that session (`pg_terminate_backend`) instead of waiting for PostgreSQL's
    /// `wal_sender_timeout` to end it.
    #[serde(default)]
    pub terminate_stale_walsender: bool,
    /// Drop the slot (and forget the stored position) when the connector stops cleanly
    /// (Debezium's `slot.drop.on.stop`; for tests and development: WAL is released, and the
    /// next start takes a new snapshot as the snapshot mode says).
    #[serde(default)]
    pub drop_slot_on_stop: bool,
}

/// `[postgres] publication_autocreate` (Debezium's `publication.autocreate.mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublicationMode {
    /// Created for the captured tables when absent, and kept in sync with `tables` /
    /// `exclude_tables` at every start (tables added and removed).
    #[default]
    Filtered,
    /// Created `FOR ALL TABLES` when absent (needs a superuser); never altered.
    AllTables,
    /// Never created nor altered: it must exist and publish every captured table.
    Disabled,
}

/// MySQL / MariaDB connection and capture settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlConfig {
    /// `mysql://user:password@host:port` (a secret: never printed). A password in it is
    /// percent-decoded.
    pub url: Secret,
    /// The password, overriding the URL's (use `${VAR}` or `${file:...}`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// This replica's server id: unique among the server's replicas.
    pub server_id: u32,
    /// Captured tables, database-qualified; `db.*` captures every table of a database,
    /// `re:<regex>` the tables whose `db.table` matches; identifiers with dots or quotes are
    /// quoted (`"my.db"."t"` or `` `my.db`.`t` ``).
    pub tables: Vec<String>,
    /// Tables left out although `tables` names them (same syntax; wins over `tables`).
    #[serde(default)]
    pub exclude_tables: Vec<String>,
    /// `tables` and `exclude_tables`, parsed (filled when the file is read).
    #[serde(skip)]
    pub filter: TableFilter,
    /// A statement run on every heartbeat.
    #[serde(default)]
    pub heartbeat_action_query: Option<String>,
}

impl MysqlConfig {
    /// Whether `db.table` is captured.
    pub fn captures(&self, db: &str, table: &str) -> bool {
        self.filter.captures(db, table)
    }

    /// The databases named in `tables`; `None` when a `re:` entry may match any.
    pub fn databases(&self) -> Option<Vec<String>> {
        let mut out = Vec::new();
        for p in &self.filter.include {
            match p {
                TableSelector::Pattern(p) => out.push(p.schema.clone()),
                TableSelector::Regex(..) => return None,
            }
        }
        out.sort();
        out.dedup();
        Some(out)
    }
}

/// When to take a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    /// Snapshot when no position is stored, then stream.
    #[default]
    Initial,
    /// Snapshot when no position is stored, then stop.
    InitialOnly,
    /// Never read existing rows: stream from the slot's creation.
    NoData,
    /// Snapshot when no position is stored or the slot is gone, then stream.
    WhenNeeded,
    /// Snapshot at every start, then stream.
    Always,
}

/// Snapshot settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    /// `initial`, `initial_only`, `no_data`, `when_needed` or `always`.
    #[serde(default)]
    pub mode: SnapshotMode,
    /// Rows per chunk of an incremental snapshot (Debezium's
    /// `incremental.snapshot.chunk.size`).
    #[serde(default = "default_chunk_size")]
    pub chunk_size: usize,
    /// Sessions reading an initial snapshot's tables at once (Debezium's
    /// `snapshot.max.threads`; PostgreSQL).
    #[serde(default = "one")]
    pub max_threads: usize,
}

fn one() -> usize {
    1
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            mode: SnapshotMode::default(),
            chunk_size: default_chunk_size(),
            max_threads: 1,
        }
    }
}

fn default_chunk_size() -> usize {
    1024
}

/// `[notifications]`: Debezium's notifications of incremental snapshots (started, paused,
/// resumed, aborted, in progress, table scan completed, completed), in Debezium's
/// notification record shape (Debezium's sink channel, `notification.sink.topic.name`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsConfig {
    /// The topic; none: notifications are not published (they are logged).
    #[serde(default)]
    pub topic: Option<String>,
}

/// `[signals]`: where signals are read from besides the admin API.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SignalsConfig {
    /// A table with Debezium's signal columns (`id`, `type`, `data`), as `schema.table`
    /// (PostgreSQL) or `db.table` (MySQL): rows inserted there are read from the change
    /// stream (Debezium's `signal.data.collection`).
    #[serde(default)]
    pub table: Option<String>,
    /// Whether `execute-snapshot` signals may carry `additional-conditions` (off by
    /// default: whoever may send a signal could otherwise choose what Sluice reads). When
    /// on, a condition is parsed (columns, comparisons with literals, AND / OR / NOT, IN,
    /// IS NULL, LIKE) and rendered with Sluice's own quoting, never pasted as SQL.
    #[serde(default)]
    pub allow_filters: bool,
}

/// Record encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ValueFormat {
    /// Debezium JSON.
    #[default]
    Json,
    /// Avro in the Confluent wire format, schemas in a schema registry.
    Avro,
}

/// How registry subjects are named (Confluent's subject name strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SubjectStrategy {
    /// `<topic>-key` / `<topic>-value`.
    #[default]
    Topic,
    /// The record's full name.
    Record,
    /// `<topic>-<record full name>`.
    TopicRecord,
}

/// Output format.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FormatConfig {
    /// `json` or `avro`.
    #[serde(default)]
    pub value: ValueFormat,
    /// Key format; defaults to the value's.
    #[serde(default)]
    pub key: Option<ValueFormat>,
    /// JSON only. `true`: `{"schema","payload"}` like JsonConverter with
    /// `schemas.enable=true`; `false`: the payload alone.
    #[serde(default)]
    pub schemas: Option<bool>,
    /// Schema registry base URL (`http://registry:8081`); required for Avro.
    #[serde(default)]
    pub registry_url: Option<String>,
    /// Registry basic-auth user.
    #[serde(default)]
    pub registry_username: Option<String>,
    /// Registry basic-auth password (a secret).
    #[serde(default)]
    pub registry_password: Option<Secret>,
    /// `https://` registries: PEM file of the CAs to trust (default: the Mozilla roots).
    #[serde(default)]
    pub registry_ca_file: Option<std::path::PathBuf>,
    /// `https://` registries: PEM client certificate (with `registry_key_file`).
    #[serde(default)]
    pub registry_cert_file: Option<std::path::PathBuf>,
    /// `https://` registries: PEM key of `registry_cert_file`.
    #[serde(default)]
    pub registry_key_file: Option<std::path::PathBuf>,
    /// `topic` (default), `record` or `topic_record`.
    #[serde(default)]
    pub subject_strategy: SubjectStrategy,
}

impl FormatConfig {
    /// Whether JSON records carry their schema (default `true`).
    pub fn json_schemas(&self) -> bool {
        self.schemas.unwrap_or(true)
    }

    /// The key format (the value's unless set).
    pub fn key_format(&self) -> ValueFormat {
        self.key.unwrap_or(self.value)
    }

    /// Whether anything is written in Avro.
    pub fn uses_avro(&self) -> bool {
        self.value == ValueFormat::Avro || self.key_format() == ValueFormat::Avro
    }
}

impl ConnectorConfig {
    /// A warning when the database URL's TLS mode encrypts without authenticating the
    /// server (`prefer`, `require`, `PREFERRED`, `REQUIRED`: a machine in the middle can
    /// present any certificate and read the password and every change).
    pub fn tls_warning(&self) -> Option<String> {
        use super::target::{split_mysql_tls, split_postgres_tls, MySslMode, PgSslMode};
        if let Some(pg) = &self.postgres {
            let (_, tls) = split_postgres_tls(pg.url.expose()).ok()?;
            return matches!(
                tls.mode,
                PgSslMode::Allow | PgSslMode::Prefer | PgSslMode::Require
            )
            .then(|| "postgres.url: this sslmode does not authenticate the server (any certificate is accepted): for production set sslmode=verify-full (or verify-ca with sslrootcert=<CA file>)".to_string());
        }
        let my = self.mysql.as_ref()?;
        let (_, tls) = split_mysql_tls(my.url.expose()).ok()?;
        matches!(tls.mode, MySslMode::Preferred | MySslMode::Required)
            .then(|| "mysql.url: this ssl-mode does not authenticate the server (any certificate is accepted): for production set ssl-mode=VERIFY_IDENTITY (or VERIFY_CA with ssl-ca=<CA file>)".to_string())
    }

    /// Reads and validates one connector file.
    /// A `.json` file holds a connector in Kafka Connect's form (`{"name", "config"}` with
    /// Debezium's properties) and is converted first.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read(path)?;
        if path.extension().is_some_and(|x| x == "json") {
            let (text, warnings) = super::debezium::file_from_json(path, &text)?;
            for w in warnings {
                tracing::warn!(file = %path.display(), "{w}");
            }
            return Self::parse(path, &text);
        }
        Self::parse(path, &text)
    }

    /// Parses and validates connector text (the file name is used in messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut config: ConnectorConfig = parse_toml(path, text)?;
        config.file = path.to_path_buf();
        config.validate()?;
        // Relative paths mean the same whatever the working directory.
        let f = &mut config.format;
        for file in [
            &mut f.registry_ca_file,
            &mut f.registry_cert_file,
            &mut f.registry_key_file,
        ]
        .into_iter()
        .flatten()
        {
            super::resolve_against(path, file);
        }
        let parse = |tables: &[String]| -> Vec<TableSelector> {
            tables
                .iter()
                .filter_map(|t| TableSelector::parse(t).ok())
                .collect()
        };
        if let Some(pg) = config.postgres.as_mut() {
            pg.filter = TableFilter {
                include: parse(&pg.tables),
                exclude: parse(&pg.exclude_tables),
            };
        }
        if let Some(my) = config.mysql.as_mut() {
            my.filter = TableFilter {
                include: parse(&my.tables),
                exclude: parse(&my.exclude_tables),
            };
        }
        // (Needs the parsed table filter.)
        config.validate_outbox()?;
        config.validate_signals()?;
        Ok(config)
    }

    /// Whether an operation code is published.
    pub fn publishes(&self, op_code: &str) -> bool {
        !self.skipped_operations.iter().any(|s| s == op_code)
    }
}

mod validate;

#[cfg(test)]
mod tests;
