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

mod behaviour;
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
    behaviour::behaviour(&mut p, &mut doc, source);
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
                "not a property Sluice knows; remove it (or see docs/migrating-from-debezium.md for what Sluice offers instead)",
            ),
        }
    }
}

#[cfg(test)]
mod tests;
