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
    /// PostgreSQL settings (required for `source = "postgres"`).
    #[serde(default)]
    pub postgres: Option<PostgresConfig>,
    /// MySQL / MariaDB settings (required for `source = "mysql"`).
    #[serde(default)]
    pub mysql: Option<MysqlConfig>,
    /// Snapshot settings.
    #[serde(default)]
    pub snapshot: SnapshotConfig,
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
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    /// `initial`, `initial_only`, `no_data`, `when_needed` or `always`.
    #[serde(default)]
    pub mode: SnapshotMode,
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
    /// Reads and validates one connector file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read(path)?;
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
        Ok(config)
    }

    fn invalid(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.file.clone(),
            key: key.into(),
            problem: problem.into(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(self.invalid(
                "name",
                format!(
                    "\"{}\" must be non-empty and use only letters, digits, '_', '-' and '.'",
                    self.name
                ),
            ));
        }
        check_topic_prefix(&self.topic_prefix).map_err(|why| self.invalid("topic_prefix", why))?;
        for op in &self.skipped_operations {
            if !matches!(op.as_str(), "c" | "u" | "d" | "t") {
                return Err(self.invalid(
                    "skipped_operations",
                    format!("contains \"{op}\"; allowed are \"c\", \"u\", \"d\" and \"t\""),
                ));
            }
        }
        self.validate_format()?;
        self.validate_types()?;
        self.validate_columns()?;
        self.validate_unwrap()?;
        super::route::check_routes(&self.route).map_err(|(key, why)| self.invalid(&key, why))?;
        if self.heartbeat_interval_ms == Some(0) {
            return Err(self.invalid(
                "heartbeat_interval_ms",
                "must be at least 1 (milliseconds), or absent to turn heartbeats off",
            ));
        }
        match self.source {
            SourceKind::Postgres => {
                let Some(pg) = &self.postgres else {
                    return Err(self.invalid(
                        "postgres",
                        "is missing: a `source = \"postgres\"` connector needs a [postgres] table with url, slot, publication and tables",
                    ));
                };
                self.validate_postgres(pg)?;
                if self.mysql.is_some() {
                    return Err(self.invalid(
                        "mysql",
                        "belongs to `source = \"mysql\"` connectors; remove it",
                    ));
                }
            }
            SourceKind::Mysql => {
                let Some(my) = &self.mysql else {
                    return Err(self.invalid(
                        "mysql",
                        "is missing: a `source = \"mysql\"` connector needs a [mysql] table with url, server_id and tables",
                    ));
                };
                if self.postgres.is_some() {
                    return Err(self.invalid(
                        "postgres",
                        "belongs to `source = \"postgres\"` connectors; remove it",
                    ));
                }
                self.validate_mysql(my)?;
            }
        }
        Ok(())
    }

    /// `[outbox]`: each table parses and is captured, placements parse, Avro gets no
    /// expanded JSON.
    fn validate_outbox(&self) -> Result<(), ConfigError> {
        for o in &self.outbox {
            let p = o
                .table_pattern()
                .map_err(|why| self.invalid("outbox.table", why))?;
            let table = p.table.as_deref().unwrap_or_default();
            let captured = match self.source {
                SourceKind::Postgres => self.postgres.as_ref().map(|c| &c.filter),
                SourceKind::Mysql => self.mysql.as_ref().map(|c| &c.filter),
            }
            .is_some_and(|f| f.captures(&p.schema, table));
            if !captured {
                return Err(self.invalid(
                    "outbox.table",
                    format!("\"{}\" is not captured: add it to tables", o.table),
                ));
            }
            o.additional()
                .map_err(|why| self.invalid("outbox.additional_placement", why))?;
            if o.expand_json_payload && self.format.value == ValueFormat::Avro {
                return Err(self.invalid(
                    "outbox.expand_json_payload",
                    "expands JSON values only; with Avro values the payload is published as its column's type: remove it or use JSON",
                ));
            }
            if !o.route_topic_replacement.contains("${routedByValue}") {
                check_topic_prefix(&o.route_topic_replacement)
                    .map_err(|why| self.invalid("outbox.route_topic_replacement", why))?;
            }
        }
        Ok(())
    }

    /// `[unwrap]`: every added field names a change-event field, no name twice; the drop
    /// header is one `[changed_fields]` writes.
    fn validate_unwrap(&self) -> Result<(), ConfigError> {
        let u = &self.unwrap;
        let cf = &self.changed_fields;
        for (key, name) in [
            (
                "changed_fields.header_changed_name",
                &cf.header_changed_name,
            ),
            (
                "changed_fields.header_unchanged_name",
                &cf.header_unchanged_name,
            ),
        ] {
            if name.as_deref().is_some_and(str::is_empty) {
                return Err(self.invalid(key, "must not be empty"));
            }
        }
        if cf.header_changed_name.is_some() && cf.header_changed_name == cf.header_unchanged_name {
            return Err(self.invalid(
                "changed_fields.header_unchanged_name",
                "is the same header as header_changed_name: give them different names",
            ));
        }
        if let Some(h) = &u.drop_fields_header_name {
            if cf.header_changed_name.as_ref() != Some(h)
                && cf.header_unchanged_name.as_ref() != Some(h)
            {
                return Err(self.invalid(
                    "unwrap.drop_fields_header_name",
                    format!("names the header \"{h}\", which no record carries: set [changed_fields] header_unchanged_name = \"{h}\" (or header_changed_name) so updates list their fields in it"),
                ));
            }
        }
        for (key, entries, prefix) in [
            ("unwrap.add_fields", &u.add_fields, &u.add_fields_prefix),
            ("unwrap.add_headers", &u.add_headers, &u.add_headers_prefix),
        ] {
            let mut names = std::collections::BTreeSet::new();
            for entry in entries {
                let f = super::unwrap::parse_meta_field(entry, prefix)
                    .map_err(|why| self.invalid(key, why))?;
                if !names.insert(f.name.clone())
                    || (key == "unwrap.add_fields" && f.name == "__deleted")
                {
                    return Err(self.invalid(
                        key,
                        format!(
                            "\"{entry}\" gives the name {} twice; rename one with field:NEW_NAME",
                            f.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `[columns]` and `key_columns`: every pattern parses, every algorithm is known, a
    /// column is not both masked and a key column.
    fn validate_columns(&self) -> Result<(), ConfigError> {
        let c = &self.columns;
        let lists: [(&str, Vec<&String>); 4] = [
            ("columns.exclude", c.exclude.iter().collect()),
            ("columns.mask_hash", c.mask_hash.keys().collect()),
            (
                "columns.mask_with_chars",
                c.mask_with_chars.keys().collect(),
            ),
            ("columns.truncate_to", c.truncate_to.keys().collect()),
        ];
        for (key, entries) in &lists {
            for e in entries {
                if let Err(why) = ColumnPattern::parse(e) {
                    return Err(self.invalid(key, format!("{e:?} {why}")));
                }
            }
        }
        for (col, m) in &c.mask_hash {
            if !matches!(
                m.algorithm.as_str(),
                "SHA-1" | "SHA-256" | "SHA-384" | "SHA-512"
            ) {
                return Err(self.invalid(
                    "columns.mask_hash",
                    format!("{col:?}: algorithm {:?} is not offered; use \"SHA-256\" (or SHA-1, SHA-384, SHA-512)", m.algorithm),
                ));
            }
        }
        for (table, cols) in &self.key_columns {
            let selector = TableSelector::parse(table)
                .map_err(|why| self.invalid("key_columns", format!("{table:?}: {why}")))?;
            if cols.is_empty() {
                return Err(self.invalid("key_columns", format!("{table:?} lists no column")));
            }
            // A masked key would publish masked keys: refused, as the masking's purpose
            // would be lost in compaction and partitioning.
            let masked: Vec<ColumnPattern> = c
                .mask_hash
                .keys()
                .chain(c.mask_with_chars.keys())
                .filter_map(|p| ColumnPattern::parse(p).ok())
                .collect();
            if let TableSelector::Pattern(TablePattern {
                schema,
                table: Some(t),
            }) = &selector
            {
                for col in cols {
                    if masked.iter().any(|m| m.matches(schema, t, col)) {
                        return Err(self.invalid(
                            "key_columns",
                            format!("{table}.{col} is also masked in [columns]; a key column cannot be masked: pick other key columns or stop masking it"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// `[types]` keys that only one source has are refused on the other, so a setting never
    /// silently does nothing.
    fn validate_types(&self) -> Result<(), ConfigError> {
        let t = &self.types;
        let d = TypesConfig::default();
        match self.source {
            SourceKind::Postgres => {
                let mysql_only = [
                    (
                        "types.tinyint1_as_boolean",
                        t.tinyint1_as_boolean != d.tinyint1_as_boolean,
                    ),
                    ("types.time_adjuster", t.time_adjuster != d.time_adjuster),
                    (
                        "types.bigint_unsigned_handling_mode",
                        t.bigint_unsigned_handling_mode != d.bigint_unsigned_handling_mode,
                    ),
                ];
                if let Some((key, _)) = mysql_only.iter().find(|(_, set)| *set) {
                    return Err(
                        self.invalid(key, "applies to MySQL/MariaDB connectors only; remove it")
                    );
                }
            }
            SourceKind::Mysql => {
                let pg_only = [
                    (
                        "types.interval_handling_mode",
                        t.interval_handling_mode != d.interval_handling_mode,
                    ),
                    (
                        "types.hstore_handling_mode",
                        t.hstore_handling_mode != d.hstore_handling_mode,
                    ),
                ];
                if let Some((key, _)) = pg_only.iter().find(|(_, set)| *set) {
                    return Err(
                        self.invalid(key, "applies to PostgreSQL connectors only; remove it")
                    );
                }
                if t.time_precision_mode == Some(TimePrecisionMode::Adaptive) {
                    return Err(self.invalid(
                        "types.time_precision_mode",
                        "\"adaptive\" is not offered for MySQL/MariaDB (as in Debezium); use \"adaptive_time_microseconds\" (the default) or \"connect\"",
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_mysql(&self, my: &MysqlConfig) -> Result<(), ConfigError> {
        let url = my.url.expose();
        if !(url.starts_with("mysql://") || url.starts_with("mariadb://")) {
            return Err(self.invalid(
                "mysql.url",
                "must start with mysql:// (mysql://user:password@host:port)",
            ));
        }
        if let Err(problem) = super::target::mysql(url) {
            return Err(self.invalid("mysql.url", problem));
        }
        let normalized = url.replacen("mariadb://", "mysql://", 1);
        let normalized = match super::target::split_mysql_tls(&normalized) {
            Ok((rest, _)) => rest,
            Err(problem) => return Err(self.invalid("mysql.url", problem)),
        };
        if mysql_async::Opts::from_url(&normalized).is_err() {
            return Err(self.invalid(
                "mysql.url",
                "is not a valid connection URL; expected mysql://user:password@host:port",
            ));
        }
        if my.server_id == 0 {
            return Err(self.invalid(
                "mysql.server_id",
                "must be between 1 and 4294967295 and differ from every server and replica id in the replication topology",
            ));
        }
        if my.tables.is_empty() {
            return Err(self.invalid(
                "mysql.tables",
                "is empty; list the tables to capture, e.g. [\"shop.orders\"] or [\"shop.*\"]",
            ));
        }
        for (key, t) in my.tables.iter().map(|t| ("mysql.tables", t)).chain(
            my.exclude_tables
                .iter()
                .map(|t| ("mysql.exclude_tables", t)),
        ) {
            if let Err(why) = TableSelector::parse(t) {
                return Err(self.invalid(
                    key,
                    format!("contains {t:?}: {why}; write database.table, database.* or re:<regex> (for example \"shop.orders\"), quoting names that contain dots (\"\\\"my.db\\\".orders\")"),
                ));
            }
        }
        Ok(())
    }

    fn validate_format(&self) -> Result<(), ConfigError> {
        let f = &self.format;
        if f.uses_avro() {
            let Some(url) = f.registry_url.as_deref() else {
                return Err(self.invalid(
                    "format.registry_url",
                    "is required for Avro: set it to the schema registry's URL, e.g. \"http://registry:8081\"",
                ));
            };
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(self.invalid(
                    "format.registry_url",
                    format!(
                        "\"{}\" is not an http:// or https:// URL",
                        super::target::redact(url)
                    ),
                ));
            }
            if f.registry_cert_file.is_some() != f.registry_key_file.is_some() {
                return Err(self.invalid(
                    "format.registry_cert_file",
                    "and format.registry_key_file go together: set both or neither",
                ));
            }
            if let Err(problem) = super::target::parse(url, "http(s)://host:port") {
                return Err(self.invalid("format.registry_url", problem));
            }
            if f.schemas.is_some()
                && f.value == ValueFormat::Avro
                && f.key_format() == ValueFormat::Avro
            {
                return Err(self.invalid(
                    "format.schemas",
                    "applies to JSON only; remove it (Avro schemas live in the registry)",
                ));
            }
        } else if f.registry_url.is_some() {
            return Err(self.invalid(
                "format.registry_url",
                "is only used with value = \"avro\" or key = \"avro\"; remove it or switch the format",
            ));
        }
        if f.registry_username.is_some() != f.registry_password.is_some() {
            return Err(self.invalid(
                "format.registry_username",
                "and format.registry_password go together: set both or neither",
            ));
        }
        Ok(())
    }

    fn validate_postgres(&self, pg: &PostgresConfig) -> Result<(), ConfigError> {
        let url = pg.url.expose();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(self.invalid(
                "postgres.url",
                "must start with postgres:// (postgres://user:password@host:port/database)",
            ));
        }
        if let Err(problem) = super::target::postgres(url) {
            return Err(self.invalid("postgres.url", problem));
        }
        let url = match super::target::split_postgres_tls(url) {
            Ok((rest, _)) => rest,
            Err(problem) => return Err(self.invalid("postgres.url", problem)),
        };
        if url.parse::<tokio_postgres::Config>().is_err() {
            return Err(self.invalid(
                "postgres.url",
                "is not a valid connection URL; expected postgres://user:password@host:port/database",
            ));
        }
        let ident_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        if !ident_ok(&pg.slot) {
            return Err(self.invalid(
                "postgres.slot",
                format!(
                    "\"{}\": slot names use lower-case letters, digits and '_' (at most 63)",
                    pg.slot
                ),
            ));
        }
        if !ident_ok(&pg.publication) {
            return Err(self.invalid(
                "postgres.publication",
                format!(
                    "\"{}\": publication names use lower-case letters, digits and '_' (at most 63); the replication protocol takes the name unquoted",
                    pg.publication
                ),
            ));
        }
        if pg.tables.is_empty() {
            return Err(self.invalid(
                "postgres.tables",
                "is empty; list the tables to capture, e.g. [\"public.customers\"] or [\"public.*\"]",
            ));
        }
        for (key, t) in pg.tables.iter().map(|t| ("postgres.tables", t)).chain(
            pg.exclude_tables
                .iter()
                .map(|t| ("postgres.exclude_tables", t)),
        ) {
            if let Err(why) = TableSelector::parse(t) {
                return Err(self.invalid(
                    key,
                    format!("contains {t:?}: {why}; write schema.table, schema.* or re:<regex> (for example \"public.orders\"), double-quoting names with dots, quotes or capitals (\"\\\"My Schema\\\".\\\"Orders\\\"\")"),
                ));
            }
        }
        Ok(())
    }

    /// Whether an operation code is published.
    pub fn publishes(&self, op_code: &str) -> bool {
        !self.skipped_operations.iter().any(|s| s == op_code)
    }
}

/// Checks that a prefix makes legal Kafka topic names.
fn check_topic_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Err("is empty; set it to a short name such as \"inventory\"".into());
    }
    if prefix == "." || prefix == ".." {
        return Err(format!("\"{prefix}\" is not a legal Kafka topic name"));
    }
    // The longest topic the prefix alone decides is the heartbeat topic.
    let longest = HEARTBEAT_TOPIC_PREFIX.len() + prefix.len();
    if longest > MAX_TOPIC_LEN {
        return Err(format!(
            "is {} characters long; with it the heartbeat topic {HEARTBEAT_TOPIC_PREFIX}<topic_prefix> has {longest} characters and Kafka topic names are limited to {MAX_TOPIC_LEN}: use at most {} characters",
            prefix.len(),
            MAX_TOPIC_LEN - HEARTBEAT_TOPIC_PREFIX.len()
        ));
    }
    if let Some(bad) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "\"{prefix}\" contains '{bad}', which Kafka topic names cannot hold; use letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "inventory"
source = "postgres"
topic_prefix = "inventory"
tombstones_on_delete = true
[postgres]
url = "postgres://user:pw@localhost:5432/db"
slot = "sluice_inventory"
publication = "sluice_inventory"
tables = ["public.customers", "public.*"]
[snapshot]
mode = "initial"
[format]
value = "json"
schemas = true
"#;

    fn parse(text: &str) -> Result<ConnectorConfig, ConfigError> {
        ConnectorConfig::parse(Path::new("connectors/inv.toml"), text)
    }

    #[test]
    fn accepts_documented_file() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.name, "inventory");
        assert_eq!(c.snapshot.mode, SnapshotMode::Initial);
        assert!(c.format.json_schemas());
        assert!(!c.publishes("t") && c.publishes("d"));
        assert_eq!(format!("{:?}", c.postgres.unwrap().url), "***");
    }

    #[test]
    fn errors_name_file_and_key() {
        let cases = [
            (
                GOOD.replace("tombstones_on_delete", "tombstones"),
                "tombstones",
            ),
            (GOOD.replace("slot = \"sluice_inventory\"\n", ""), "slot"),
            (
                GOOD.replace("schemas = true", "schemas = \"yes\""),
                "schemas",
            ),
            (
                GOOD.replace(
                    "topic_prefix = \"inventory\"",
                    "topic_prefix = \"inv/entory\"",
                ),
                "topic_prefix",
            ),
            (
                GOOD.replace("\"public.customers\", ", "\"customers\", "),
                "postgres.tables",
            ),
            (
                GOOD.replace("mode = \"initial\"", "mode = \"sometimes\""),
                "sometimes",
            ),
            (
                GOOD.replace(
                    "publication = \"sluice_inventory\"",
                    "publication = \"Sluice_Pub\"",
                ),
                "postgres.publication",
            ),
            (
                GOOD.replace(
                    "publication = \"sluice_inventory\"",
                    "publication = \"a,b\"",
                ),
                "postgres.publication",
            ),
            (
                GOOD.replace(
                    "topic_prefix = \"inventory\"",
                    &format!("topic_prefix = \"{}\"", "p".repeat(229)),
                ),
                "heartbeat topic",
            ),
        ];
        let longest_prefix = GOOD.replace(
            "topic_prefix = \"inventory\"",
            &format!("topic_prefix = \"{}\"", "p".repeat(228)),
        );
        assert!(parse(&longest_prefix).is_ok());
        for (text, key) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains("connectors/inv.toml"), "{err}");
            assert!(err.contains(key), "expected `{key}` in: {err}");
        }
    }

    #[test]
    fn url_never_in_errors() {
        let err = parse(&GOOD.replace(
            "tables = [\"public.customers\", \"public.*\"]",
            "tables = []",
        ))
        .unwrap_err()
        .to_string();
        assert!(!err.contains("pw@"), "{err}");
    }

    #[test]
    fn types_keys_parse_and_belong_to_their_source() {
        let with = |types: &str| format!("{GOOD}[types]\n{types}\n");
        let c = parse(&with(
            "decimal_handling_mode = \"string\"\nbinary_handling_mode = \"base64-url-safe\"\ntime_precision_mode = \"connect\"\ninterval_handling_mode = \"string\"\nhstore_handling_mode = \"map\"\ninclude_unknown_datatypes = true",
        ))
        .unwrap();
        assert_eq!(c.types.decimal_handling_mode, DecimalMode::String);
        assert_eq!(c.types.binary_handling_mode, BinaryMode::Base64UrlSafe);
        assert_eq!(
            c.types.time_precision_mode,
            Some(TimePrecisionMode::Connect)
        );
        assert!(c.types.include_unknown_datatypes);
        let cases = [
            ("decimal_handling_mode = \"exact\"", "exact"),
            (
                "bigint_unsigned_handling_mode = \"precise\"",
                "types.bigint_unsigned_handling_mode",
            ),
            ("tinyint1_as_boolean = true", "types.tinyint1_as_boolean"),
        ];
        for (types, key) in cases {
            let err = parse(&with(types)).unwrap_err().to_string();
            assert!(err.contains(key), "expected `{key}` in: {err}");
        }
        let mysql = |types: &str| {
            format!(
                "name = \"m\"\nsource = \"mysql\"\ntopic_prefix = \"m\"\n[mysql]\nurl = \"mysql://u:p@localhost:3306\"\nserver_id = 5\ntables = [\"db.t\"]\n[types]\n{types}\n"
            )
        };
        parse(&mysql(
            "bigint_unsigned_handling_mode = \"precise\"\ntime_precision_mode = \"connect\"",
        ))
        .unwrap();
        for (types, key) in [
            (
                "time_precision_mode = \"adaptive\"",
                "adaptive_time_microseconds",
            ),
            (
                "hstore_handling_mode = \"map\"",
                "types.hstore_handling_mode",
            ),
            (
                "interval_handling_mode = \"string\"",
                "types.interval_handling_mode",
            ),
        ] {
            let err = parse(&mysql(types)).unwrap_err().to_string();
            assert!(err.contains(key), "expected `{key}` in: {err}");
        }
    }

    #[test]
    fn table_patterns_with_quoted_identifiers() {
        let p = |s: &str| TablePattern::parse(s);
        assert_eq!(
            p("public.orders").unwrap(),
            TablePattern {
                schema: "public".into(),
                table: Some("orders".into())
            }
        );
        assert_eq!(p("shop.*").unwrap().table, None);
        let q = p(r#""Quoted . Schema"."Ta""ble""#).unwrap();
        assert_eq!(q.schema, "Quoted . Schema");
        assert_eq!(q.table.as_deref(), Some("Ta\"ble"));
        assert!(q.matches("Quoted . Schema", "Ta\"ble"));
        assert!(!q.matches("Quoted . Schema", "Table"));
        assert_eq!(q.to_string(), r#""Quoted . Schema"."Ta""ble""#);
        let b = p("`my.db`.`t`").unwrap();
        assert_eq!(
            (b.schema.as_str(), b.table.as_deref()),
            ("my.db", Some("t"))
        );
        assert_eq!(p(r#"s."*""#).unwrap().table.as_deref(), Some("*"));
        for bad in [
            "orders",
            "a.b.c",
            ".t",
            "s.",
            r#""open.t"#,
            "s.t*",
            r#"""."t""#,
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        let c = parse(&GOOD.replace(
            "tables = [\"public.customers\", \"public.*\"]",
            r#"tables = ["\"Quoted . Schema\".\"Table\""]"#,
        ))
        .unwrap();
        assert!(c
            .postgres
            .unwrap()
            .filter
            .captures("Quoted . Schema", "Table"));
    }
}
