//! Debezium's connector properties (the `config` of a Kafka Connect connector, a
//! `connectors/NAME.json` file, Debezium Server's `debezium.source.*`) read as a Sluice
//! connector file.
//!
//! Every property is accounted for: mapped to its Sluice key, mapped with a deprecation
//! warning (the 1.x/2.x names), accepted and listed as ignored (it tunes something Sluice
//! does its own way, such as `tasks.max` or `schema.history.internal.*`), or refused with
//! its name and the reason (it would change what is captured or published and Sluice does
//! not offer it). Nothing is dropped silently.
//!
//! The properties as given are recorded in the file (`[debezium] properties`), so the
//! Connect routes can hand them back unchanged (`GET .../config`).
//!
//! ```text
//!   {"connector.class": ..., "database.hostname": ..., "transforms": "unwrap", ...}
//!        │ convert()
//!        ▼
//!   name / source / topic_prefix / [postgres] / [snapshot] / [unwrap] / [[route]] ... + [debezium]
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

mod connection;
pub mod properties;
mod transforms;

/// The properties a connector file was converted from (`[debezium] properties`), kept to
/// hand them back through `GET /connectors/{name}/config`. Its `Debug` names the keys only:
/// the values hold the password.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    /// Debezium's properties as they were given.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

impl std::fmt::Debug for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.properties.keys()).finish()
    }
}

/// A Sluice connector file made from Debezium's properties.
#[derive(Debug)]
pub struct Converted {
    /// The connector file's document (with the `[debezium]` record).
    pub document: toml::Table,
    /// Keys accepted but not used, deprecated names, and behaviour worth knowing.
    pub warnings: Vec<String>,
}

/// Why properties cannot be converted: each refused key with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusals(pub Vec<String>);

impl std::fmt::Display for Refusals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

/// Debezium's connector classes (full and short names) and Sluice's source.
pub fn source_of_class(class: &str) -> Option<&'static str> {
    match class.trim() {
        "io.debezium.connector.postgresql.PostgresConnector" | "PostgresConnector" => {
            Some("postgres")
        }
        "io.debezium.connector.mysql.MySqlConnector"
        | "MySqlConnector"
        | "io.debezium.connector.mariadb.MariaDbConnector"
        | "MariaDbConnector" => Some("mysql"),
        _ => None,
    }
}

/// Whether a flat config is in Debezium's form (rather than Sluice's own dotted keys): it
/// names its database server the way Debezium does.
pub fn is_debezium(props: &BTreeMap<String, String>) -> bool {
    props.contains_key("database.hostname")
        || props.contains_key("topic.prefix")
        || props.contains_key("database.server.name")
}

/// The properties being converted: each read is marked, so what is left at the end is
/// what nothing mapped.
pub(crate) struct Props {
    given: BTreeMap<String, String>,
    used: BTreeSet<String>,
    pub(crate) warnings: Vec<String>,
    pub(crate) refused: Vec<String>,
}

impl Props {
    fn new(given: &BTreeMap<String, String>) -> Self {
        Props {
            given: given
                .iter()
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect(),
            used: BTreeSet::new(),
            warnings: Vec::new(),
            refused: Vec::new(),
        }
    }

    /// The value of `key` (marked as used); empty values count as absent, as Connect's do.
    pub(crate) fn take(&mut self, key: &str) -> Option<String> {
        let v = self.given.get(key)?.clone();
        self.used.insert(key.to_string());
        (!v.is_empty()).then_some(v)
    }

    /// `key`, or its deprecated name `old` (with a warning naming the new one).
    pub(crate) fn take_or_old(&mut self, key: &str, old: &str) -> Option<String> {
        let new = self.take(key);
        let previous = self.take(old);
        if previous.is_some() {
            if new.is_some() {
                self.warnings.push(format!(
                    "{old}: deprecated name of {key}, which is also given: {old} is ignored"
                ));
            } else {
                self.warnings
                    .push(format!("{old}: deprecated name, read as {key}"));
            }
        }
        new.or(previous)
    }

    /// The keys starting with `prefix` not read yet, each marked as used.
    pub(crate) fn take_prefixed(&mut self, prefix: &str) -> Vec<(String, String)> {
        let keys: Vec<String> = self
            .given
            .keys()
            .filter(|k| k.starts_with(prefix) && !self.used.contains(*k))
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|k| {
                let v = self.take(&k)?;
                Some((k, v))
            })
            .collect()
    }

    pub(crate) fn refuse(&mut self, key: &str, why: impl std::fmt::Display) {
        self.used.insert(key.to_string());
        self.refused.push(format!("{key}: {why}"));
    }

    /// A boolean property (`true` / `false`, any case).
    pub(crate) fn flag(&mut self, key: &str) -> Option<bool> {
        let v = self.take(key)?;
        match v.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.refuse(key, format!("\"{v}\" is not true or false"));
                None
            }
        }
    }

    /// A non-negative integer property.
    pub(crate) fn number(&mut self, key: &str) -> Option<i64> {
        let v = self.take(key)?;
        match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                self.refuse(key, format!("\"{v}\" is not a non-negative whole number"));
                None
            }
        }
    }

    /// A property whose only accepted value is Debezium's default (or one equivalent to
    /// what Sluice does); any other value is refused with `why`.
    pub(crate) fn only(&mut self, key: &str, accepted: &[&str], why: &str) {
        if let Some(v) = self.take(key) {
            if !accepted.iter().any(|a| a.eq_ignore_ascii_case(&v)) {
                self.refuse(key, format!("\"{v}\" is not supported: {why}"));
            }
        }
    }
}

/// A comma-separated list (Connect's `LIST` type), blanks dropped.
pub(crate) fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A Debezium include/exclude regular expression as a Sluice pattern: Debezium matches the
/// whole identifier, ignoring case.
pub(crate) fn regex_pattern(re: &str) -> String {
    format!("re:(?i){re}")
}

fn s(v: impl Into<String>) -> toml::Value {
    toml::Value::String(v.into())
}

fn strings(v: Vec<String>) -> toml::Value {
    toml::Value::Array(v.into_iter().map(toml::Value::String).collect())
}

/// Sets `path` (dotted, plain segments) in `doc`.
pub(crate) fn put(doc: &mut toml::Table, path: &str, value: toml::Value) {
    let mut table = doc;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            table.insert(part.to_string(), value);
            return;
        }
        let next = table
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !next.is_table() {
            *next = toml::Value::Table(toml::Table::new());
        }
        table = next.as_table_mut().expect("just made a table");
    }
}

/// Keys accepted and not used: they tune what Sluice does its own way (or belong to Kafka
/// Connect's worker), and change nothing a consumer reads.
const IGNORED_PREFIXES: &[(&str, &str)] = &[
    (
        "errors.",
        "Kafka Connect's error handling; Sluice stops and reports the error",
    ),
    (
        "schema.history.internal",
        "Sluice keeps no schema history topic (it reads table definitions from the server)",
    ),
    (
        "database.history",
        "Sluice keeps no schema history topic (it reads table definitions from the server)",
    ),
    (
        "topic.creation.",
        "Sluice creates topics itself (see [sink] in the daemon config)",
    ),
    (
        "producer.override.",
        "producer settings are the daemon's ([sink.properties])",
    ),
    (
        "consumer.override.",
        "producer and consumer settings are the daemon's ([sink.properties])",
    ),
    (
        "offset.",
        "offsets are stored as the daemon's [offsets] says",
    ),
    ("header.converter", "Sluice writes its headers as strings"),
];

const IGNORED_KEYS: &[(&str, &str)] = &[
    (
        "tasks.max",
        "a Debezium connector runs one task; Sluice runs one pipeline per connector",
    ),
    ("max.batch.size", "Sluice sizes its batches itself"),
    (
        "max.queue.size",
        "Sluice's queues are bounded by bytes ([sink] settings)",
    ),
    (
        "max.queue.size.in.bytes",
        "Sluice's queues are bounded by bytes ([sink] settings)",
    ),
    ("poll.interval.ms", "Sluice does not poll"),
    ("snapshot.fetch.size", "Sluice streams snapshot rows"),
    ("query.fetch.size", "Sluice streams query rows"),
    (
        "snapshot.locking.mode",
        "Sluice reads snapshots in a consistent-snapshot transaction",
    ),
    (
        "snapshot.isolation.mode",
        "Sluice reads snapshots in a consistent-snapshot transaction",
    ),
    ("snapshot.delay.ms", "Sluice starts snapshots at once"),
    (
        "retriable.restart.connector.wait.ms",
        "Sluice retries with its own backoff",
    ),
    (
        "connect.timeout.ms",
        "Sluice's connection timeouts are its own",
    ),
    ("connect.keep.alive", "Sluice reconnects on its own"),
    (
        "connect.keep.alive.interval.ms",
        "Sluice reconnects on its own",
    ),
    (
        "database.tcpKeepAlive",
        "Sluice keeps its connections alive on its own",
    ),
    (
        "database.allowPublicKeyRetrieval",
        "the MySQL client negotiates the authentication itself",
    ),
    (
        "database.connectionTimeZone",
        "MariaDB binlog values are read as UTC, as Debezium reads them",
    ),
    ("slot.max.retries", "Sluice retries with its own backoff"),
    ("slot.retry.delay.ms", "Sluice retries with its own backoff"),
    ("xmin.fetch.interval.ms", "Sluice does not track xmin"),
    (
        "schema.refresh.mode",
        "Sluice refreshes table definitions from the stream's relation messages",
    ),
    (
        "binlog.buffer.size",
        "Sluice buffers large transactions by bytes",
    ),
    (
        "incremental.snapshot.allow.schema.changes",
        "Sluice re-reads a table's definition per chunk",
    ),
    (
        "incremental.snapshot.watermarking.strategy",
        "Sluice's watermarks are its own",
    ),
    (
        "config.action.reload",
        "Sluice restarts a connector whose file changes",
    ),
    (
        "config.providers",
        "the API never expands references; files use ${VAR} and ${file:...}",
    ),
    (
        "value.converter.schemas.cache.size",
        "Sluice caches schemas itself",
    ),
    (
        "key.converter.schemas.cache.size",
        "Sluice caches schemas itself",
    ),
    (
        "database.history.skip.unparseable.ddl",
        "Sluice keeps no schema history",
    ),
    (
        "schema.name.adjustment.mode",
        "Sluice names schemas as Debezium's default (none) does",
    ),
    (
        "field.name.adjustment.mode",
        "Sluice names fields as Debezium's default (none) does",
    ),
    (
        "sanitize.field.names",
        "Sluice names fields as Debezium's default does",
    ),
];

/// Converts Debezium's properties of connector `name` (the request's name; `None`: take
/// `name` from the properties).
pub fn convert(
    name: Option<&str>,
    given: &BTreeMap<String, String>,
) -> Result<Converted, Refusals> {
    let mut p = Props::new(given);
    let mut doc = toml::Table::new();
    let named = p.take("name");
    let name = match (name, named) {
        (Some(n), Some(g)) if n != g => {
            return Err(Refusals(vec![format!(
                "name: the config names connector \"{g}\" but the request is for \"{n}\""
            )]))
        }
        (Some(n), _) => n.to_string(),
        (None, Some(g)) => g,
        (None, None) => return Err(Refusals(vec!["name: missing".into()])),
    };
    put(&mut doc, "name", s(&name));
    let class = p.take("connector.class").unwrap_or_default();
    let Some(source) = source_of_class(&class) else {
        return Err(Refusals(vec![format!(
            "connector.class: \"{class}\" is not a connector Sluice runs; use io.debezium.connector.postgresql.PostgresConnector, io.debezium.connector.mysql.MySqlConnector or io.debezium.connector.mariadb.MariaDbConnector"
        )]));
    };
    put(&mut doc, "source", s(source));
    match p.take_or_old("topic.prefix", "database.server.name") {
        Some(prefix) => put(&mut doc, "topic_prefix", s(prefix)),
        None => p.refuse(
            "topic.prefix",
            "missing (it names every topic of the connector)",
        ),
    }
    connection::connection(&mut p, &mut doc, source, &name);
    connection::selection(&mut p, &mut doc, source);
    connection::snapshot(&mut p, &mut doc, source);
    behaviour(&mut p, &mut doc, source);
    transforms::converters(&mut p, &mut doc);
    transforms::transforms(&mut p, &mut doc, source);
    leftovers(&mut p);
    if !p.refused.is_empty() {
        return Err(Refusals(p.refused));
    }
    let record: toml::Table = given
        .iter()
        .map(|(k, v)| (k.clone(), s(v.clone())))
        .collect();
    let mut recorded = toml::Table::new();
    recorded.insert("properties".into(), toml::Value::Table(record));
    doc.insert("debezium".into(), toml::Value::Table(recorded));
    Ok(Converted {
        document: doc,
        warnings: p.warnings,
    })
}

/// Kafka Connect's JSON form of a connector (`{"name": ..., "config": {...}}`, or the
/// flat `config` alone with its `name`) as connector file text, with the warnings.
pub fn file_from_json(
    path: &std::path::Path,
    text: &str,
) -> Result<(String, Vec<String>), super::ConfigError> {
    let invalid = |key: &str, problem: String| super::ConfigError::Invalid {
        path: path.to_path_buf(),
        key: key.to_string(),
        problem,
    };
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| super::ConfigError::Parse {
            path: path.to_path_buf(),
            message: format!("not JSON: {e}"),
        })?;
    let name = json
        .get("name")
        .and_then(|n| n.as_str())
        .map(str::to_string);
    let config = json.get("config").unwrap_or(&json);
    let Some(map) = config.as_object() else {
        return Err(invalid(
            "config",
            "must be an object of Debezium's properties".into(),
        ));
    };
    let props: BTreeMap<String, String> = map
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect();
    let converted = convert(name.as_deref(), &props).map_err(|r| {
        invalid(
            "config",
            format!("Debezium properties Sluice cannot run: {r}"),
        )
    })?;
    let body =
        toml::to_string(&converted.document).map_err(|e| invalid("config", e.to_string()))?;
    Ok((body, converted.warnings))
}

/// Types, keys, masks, heartbeats, signals, transaction metadata and the record shape.
fn behaviour(p: &mut Props, doc: &mut toml::Table, source: &str) {
    for (key, sluice, values) in [
        (
            "decimal.handling.mode",
            "types.decimal_handling_mode",
            &["precise", "string", "double"][..],
        ),
        (
            "time.precision.mode",
            "types.time_precision_mode",
            &["adaptive", "adaptive_time_microseconds", "connect"][..],
        ),
        (
            "binary.handling.mode",
            "types.binary_handling_mode",
            &["bytes", "base64", "base64-url-safe", "hex"][..],
        ),
        (
            "interval.handling.mode",
            "types.interval_handling_mode",
            &["numeric", "string"][..],
        ),
        (
            "hstore.handling.mode",
            "types.hstore_handling_mode",
            &["json", "map"][..],
        ),
        (
            "bigint.unsigned.handling.mode",
            "types.bigint_unsigned_handling_mode",
            &["long", "precise"][..],
        ),
    ] {
        if let Some(v) = p.take(key) {
            let lower = v.to_ascii_lowercase();
            if values.contains(&lower.as_str()) {
                put(doc, sluice, s(lower));
            } else {
                p.refuse(
                    key,
                    format!("\"{v}\" is not supported; use one of {}", values.join(", ")),
                );
            }
        }
    }
    if let Some(b) = p.flag("include.unknown.datatypes") {
        put(
            doc,
            "types.include_unknown_datatypes",
            toml::Value::Boolean(b),
        );
    }
    if let Some(b) = p.flag("enable.time.adjuster") {
        put(doc, "types.time_adjuster", toml::Value::Boolean(b));
    }
    p.only(
        "money.fraction.digits",
        &["2"],
        "Sluice publishes money with 2 fraction digits",
    );
    p.only(
        "event.processing.failure.handling.mode",
        &["fail"],
        "Sluice never skips a change it cannot read: it stops and names the cause",
    );
    p.only(
        "event.deserialization.failure.handling.mode",
        &["fail"],
        "Sluice never skips an event it cannot read: it stops and names the cause",
    );
    p.only(
        "inconsistent.schema.handling.mode",
        &["fail"],
        "Sluice never skips an event it cannot read: it stops and names the cause",
    );
    p.only(
        "topic.delimiter",
        &["."],
        "Sluice's topics are <prefix>.<schema>.<table>",
    );
    p.only(
        "topic.naming.strategy",
        &[
            "io.debezium.schema.DefaultTopicNamingStrategy",
            "io.debezium.schema.SchemaTopicNamingStrategy",
        ],
        "Sluice names topics as Debezium's default strategy; use a route transform to rename",
    );
    p.only(
        "topic.heartbeat.prefix",
        &["__debezium-heartbeat"],
        "Sluice's heartbeat topic is __debezium-heartbeat.<prefix>",
    );
    p.only(
        "heartbeat.topics.prefix",
        &["__debezium-heartbeat"],
        "Sluice's heartbeat topic is __debezium-heartbeat.<prefix>",
    );
    p.only(
        "topic.transaction",
        &["transaction"],
        "Sluice's transaction topic is <prefix>.transaction",
    );
    if let Some(ms) = p.number("heartbeat.interval.ms") {
        if ms > 0 {
            put(doc, "heartbeat_interval_ms", toml::Value::Integer(ms));
        }
    }
    if let Some(q) = p.take("heartbeat.action.query") {
        put(doc, &format!("{source}.heartbeat_action_query"), s(q));
    }
    if let Some(b) = p.flag("provide.transaction.metadata") {
        put(doc, "provide_transaction_metadata", toml::Value::Boolean(b));
    }
    if let Some(b) = p.flag("tombstones.on.delete") {
        put(doc, "tombstones_on_delete", toml::Value::Boolean(b));
    }
    if let Some(ops) = p.take("skipped.operations") {
        let ops: Vec<String> = list(&ops).into_iter().filter(|o| o != "none").collect();
        put(doc, "skipped_operations", strings(ops));
    }
    if let Some(b) = p.flag("include.schema.changes") {
        put(doc, "include_schema_changes", toml::Value::Boolean(b));
    }
    if let Some(collection) = p.take("signal.data.collection") {
        put(doc, "signals.table", s(collection));
    }
    if let Some(channels) = p.take("signal.enabled.channels") {
        for c in list(&channels) {
            if c != "source" {
                p.refuse(
                    "signal.enabled.channels",
                    format!("the \"{c}\" channel is not offered; Sluice reads signals from the signal table (source) and from its admin API (POST /connectors/<name>/signals)"),
                );
            }
        }
    }
    // Without the Kafka channel (refused above) its settings change nothing.
    if !p.take_prefixed("signal.kafka.").is_empty() {
        p.warnings
            .push("signal.kafka.*: ignored (the kafka signal channel is not enabled)".into());
    }
    if let Some(channels) = p.take("notification.enabled.channels") {
        for c in list(&channels) {
            match c.as_str() {
                "sink" => match p.take("notification.sink.topic.name") {
                    Some(topic) => put(doc, "notifications.topic", s(topic)),
                    None => p.refuse(
                        "notification.sink.topic.name",
                        "missing (the sink channel needs its topic)",
                    ),
                },
                // Sluice logs every notification.
                "log" => {}
                other => p.refuse(
                    "notification.enabled.channels",
                    format!("the \"{other}\" channel is not offered; use sink (a topic) or log"),
                ),
            }
        }
    }
    if let Some(n) = p.number("incremental.snapshot.chunk.size") {
        put(doc, "snapshot.chunk_size", toml::Value::Integer(n.max(1)));
    }
    if let Some(n) = p.number("snapshot.max.threads") {
        put(doc, "snapshot.max_threads", toml::Value::Integer(n.max(1)));
    }
    if let Some(keys) = p.take("message.key.columns") {
        let mut table = toml::Table::new();
        for entry in keys.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            match entry.split_once(':') {
                Some((t, cols)) if !list(cols).is_empty() => {
                    table.insert(regex_pattern(t.trim()), strings(list(cols)));
                }
                _ => p.refuse(
                    "message.key.columns",
                    format!("\"{entry}\" is not <table regex>:<column>,<column>"),
                ),
            }
        }
        doc.insert("key_columns".into(), toml::Value::Table(table));
    }
    columns(p, doc);
}

/// `column.exclude.list`, `column.mask.*`, `column.truncate.*`.
fn columns(p: &mut Props, doc: &mut toml::Table) {
    if let Some(excluded) = p.take_or_old("column.exclude.list", "column.blacklist") {
        let v = list(&excluded).iter().map(|c| regex_pattern(c)).collect();
        put(doc, "columns.exclude", strings(v));
    }
    if p.take_or_old("column.include.list", "column.whitelist")
        .is_some()
    {
        p.refuse(
            "column.include.list",
            "Sluice selects columns by leaving some out: list those in column.exclude.list",
        );
    }
    for (key, value) in p.take_prefixed("column.") {
        let chars = |middle: &str| -> Option<i64> {
            key.strip_prefix(middle)?
                .strip_suffix(".chars")?
                .parse()
                .ok()
        };
        if let Some(n) = chars("column.mask.with.") {
            for c in list(&value) {
                put_column(doc, "mask_with_chars", &c, toml::Value::Integer(n));
            }
        } else if let Some(n) = chars("column.truncate.to.") {
            for c in list(&value) {
                put_column(doc, "truncate_to", &c, toml::Value::Integer(n));
            }
        } else if let Some(rest) = key.strip_prefix("column.mask.hash.") {
            if rest.starts_with("v2.") {
                p.refuse(&key, "the v2 hashing scheme is not offered; use column.mask.hash.<algorithm>.with.salt.<salt>");
                continue;
            }
            let Some((algorithm, salt)) = rest.split_once(".with.salt.") else {
                p.refuse(&key, "write column.mask.hash.<algorithm>.with.salt.<salt>");
                continue;
            };
            let mut mask = toml::Table::new();
            mask.insert("algorithm".into(), s(algorithm));
            mask.insert("salt".into(), s(salt));
            for c in list(&value) {
                put_column(doc, "mask_hash", &c, toml::Value::Table(mask.clone()));
            }
        } else if key.starts_with("column.propagate.source.type")
            || key == "column.propagate.source.type"
        {
            p.refuse(
                &key,
                "Sluice does not add the source type parameters to schemas",
            );
        } else {
            p.refuse(&key, "not a column property Sluice knows");
        }
    }
}

fn put_column(doc: &mut toml::Table, rule: &str, column: &str, value: toml::Value) {
    let columns = doc
        .entry("columns")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(columns) = columns.as_table_mut() else {
        return;
    };
    let rules = columns
        .entry(rule)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(rules) = rules.as_table_mut() {
        rules.insert(regex_pattern(column), value);
    }
}

/// What no mapping read: ignored with a note when known to be harmless, refused otherwise.
fn leftovers(p: &mut Props) {
    let left: Vec<String> = p
        .given
        .keys()
        .filter(|k| !p.used.contains(*k))
        .cloned()
        .collect();
    for key in left {
        let why = IGNORED_KEYS
            .iter()
            .find(|(k, _)| *k == key)
            .or_else(|| IGNORED_PREFIXES.iter().find(|(k, _)| key.starts_with(k)))
            .map(|(_, why)| *why);
        match why {
            Some(why) => p.warnings.push(format!("{key}: ignored ({why})")),
            None => p.refuse(
                &key,
                "not a property Sluice knows; remove it (or see the migration guide in README.md for what Sluice offers instead)",
            ),
        }
    }
}

#[cfg(test)]
mod tests;
