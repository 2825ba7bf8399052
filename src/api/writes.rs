//! Connector files written through Kafka Connect's config routes (`PUT
//! /connectors/{name}/config`, `POST /connectors`): Connect's flat string map becomes a TOML
//! connector file, validated before it is written atomically into the connectors folder.
//!
//! Keys are TOML dotted keys (`postgres.url`, `columns.mask_hash."public.a.email".salt`), as
//! `GET .../config` shows them. Values are strings, as Connect's are; each is given the type
//! the connector file needs: `true`/`false` and numbers become booleans and numbers unless the
//! key wants a string, JSON arrays and objects become TOML arrays and tables, and a list key
//! also takes Connect's comma-separated form. A masked secret (`********`, or a URL with a
//! masked password) sent back unchanged keeps the value the file already has.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::config::ConnectorConfig;

use super::connect::{self, MASK};

/// Why a config cannot be written (Connect answers 400).
#[derive(Debug)]
pub struct Refused(pub String);

/// Debezium's connector classes and Sluice's source names.
fn source_of(class: &str) -> Option<&'static str> {
    match class {
        "postgres" | "io.debezium.connector.postgresql.PostgresConnector" => Some("postgres"),
        "mysql"
        | "mariadb"
        | "io.debezium.connector.mysql.MySqlConnector"
        | "io.debezium.connector.mariadb.MariaDbConnector" => Some("mysql"),
        _ => None,
    }
}

/// The segments of a TOML dotted key (`a."b.c".d` → `a`, `b.c`, `d`); refused unless it is
/// exactly one key.
fn segments(key: &str) -> Result<Vec<String>, Refused> {
    let bad = || {
        Refused(format!(
            "\"{key}\" is not a connector file key (dotted TOML keys such as postgres.url, with parts holding dots quoted)"
        ))
    };
    let doc: toml::Table = toml::from_str(&format!("{key} = 0")).map_err(|_| bad())?;
    let mut out = Vec::new();
    let mut table = &doc;
    loop {
        if table.len() != 1 {
            return Err(bad());
        }
        let (k, v) = table.iter().next().ok_or_else(bad)?;
        out.push(k.clone());
        match v {
            toml::Value::Table(t) => table = t,
            toml::Value::Integer(0) => return Ok(out),
            _ => return Err(bad()),
        }
    }
}

fn json_to_toml(v: &Json) -> Option<toml::Value> {
    Some(match v {
        Json::Null => return None,
        Json::Bool(b) => toml::Value::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        Json::String(s) => toml::Value::String(s.clone()),
        Json::Array(a) => toml::Value::Array(a.iter().filter_map(json_to_toml).collect()),
        Json::Object(o) => toml::Value::Table(
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), json_to_toml(v)?)))
                .collect(),
        ),
    })
}

/// The value a string most likely stands for: a boolean, a number, a JSON array or table;
/// `None` when it is only a string.
fn typed(text: &str) -> Option<toml::Value> {
    match text {
        "true" => return Some(toml::Value::Boolean(true)),
        "false" => return Some(toml::Value::Boolean(false)),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Some(toml::Value::Integer(i));
    }
    if text.starts_with('[') || text.starts_with('{') {
        return serde_json::from_str::<Json>(text)
            .ok()
            .and_then(|j| json_to_toml(&j));
    }
    if text.contains('.') && text.parse::<f64>().is_ok_and(f64::is_finite) {
        return text.parse::<f64>().ok().map(toml::Value::Float);
    }
    None
}

/// Whether a string was sent back masked.
fn is_masked(text: &str) -> bool {
    text == MASK || text.contains(&format!(":{MASK}@")) || text.contains(&format!("={MASK}"))
}

/// The server a URL-valued key points at (`host:port`), to tell a moved connection.
fn server_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    Some(format!(
        "{}:{}",
        u.host_str()?.to_ascii_lowercase(),
        u.port_or_known_default().unwrap_or(0)
    ))
}

/// A value as written by an API client: never expanded (`${VAR}` and `${file:...}` read the
/// daemon's environment and files, which an API client must not), so each `${` is written
/// as the literal `$${`.
fn literal(text: &str) -> String {
    text.replace("${", "$${")
}

/// One key of the file to write: its path, the value as a string, and its typed reading.
struct Entry {
    path: Vec<String>,
    text: String,
    typed: Option<toml::Value>,
    /// Give the plain string (the key wants one).
    as_string: bool,
}

impl Entry {
    fn value(&self) -> toml::Value {
        match (&self.typed, self.as_string) {
            (Some(v), false) => v.clone(),
            _ => toml::Value::String(self.text.clone()),
        }
    }
}

fn insert(root: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), Refused> {
    let (last, parents) = path
        .split_last()
        .ok_or_else(|| Refused("an empty key".into()))?;
    let mut table = root;
    for p in parents {
        let next = table
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match next {
            toml::Value::Table(t) => t,
            _ => {
                return Err(Refused(format!(
                    "\"{}\" is given both a value and keys below it",
                    path.join(".")
                )))
            }
        };
    }
    if table.insert(last.clone(), value).is_some() {
        return Err(Refused(format!("\"{}\" is given twice", path.join("."))));
    }
    Ok(())
}

fn document(entries: &[Entry]) -> Result<toml::Table, Refused> {
    let mut root = toml::Table::new();
    for e in entries {
        insert(&mut root, &e.path, e.value())?;
    }
    Ok(root)
}

/// The connector file for Connect's flat `config` of connector `name`; `current`: the text
/// of its existing file (masked secrets sent back keep their values from it).
/// Debezium's properties (detected by `database.hostname` / `topic.prefix`) are converted
/// instead; the second value holds the conversion's warnings.
pub fn file_text(
    name: &str,
    config: &Json,
    current: Option<&str>,
) -> Result<(String, Vec<String>), Refused> {
    let map = config
        .as_object()
        .ok_or_else(|| Refused("the config must be a JSON object of strings".into()))?;
    let previous = current
        .and_then(|t| connect::flat(t, false))
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in map {
        let text = match v {
            Json::String(s) => s.clone(),
            Json::Null => continue,
            other => other.to_string(),
        };
        fields.insert(k.clone(), text);
    }
    if crate::config::debezium::is_debezium(&fields) {
        let recorded = current
            .and_then(|t| toml::from_str::<toml::Value>(t).ok())
            .and_then(|d| super::debezium_writes::recorded(&d));
        return super::debezium_writes::file_text(name, fields, recorded.as_ref());
    }
    if let Some(given) = fields.get("name") {
        if given != name {
            return Err(Refused(format!(
                "the config names connector \"{given}\" but the request is for \"{name}\""
            )));
        }
    }
    fields.insert("name".into(), name.to_string());
    if let Some(class) = fields.remove("connector.class") {
        let source = source_of(&class).ok_or_else(|| {
            Refused(format!(
                "connector.class \"{class}\" is not a Sluice source; use postgres or mysql (or Debezium's PostgresConnector, MySqlConnector, MariaDbConnector)"
            ))
        })?;
        match fields.get("source") {
            Some(s) if s != source => {
                return Err(Refused(format!(
                    "connector.class \"{class}\" and source \"{s}\" disagree"
                )))
            }
            _ => {
                fields.insert("source".into(), source.to_string());
            }
        }
    }
    let mut entries = Vec::new();
    let mut kept_secret = false;
    let mut urls: Vec<(String, String)> = Vec::new();
    for (key, mut text) in fields {
        let old = previous.get(&key).and_then(Json::as_str);
        if is_masked(&text) {
            match old {
                // A URL sent back masked keeps its stored value only if nothing else of it
                // changed: the stored password must not go to another address.
                Some(old)
                    if key.ends_with("url")
                        && crate::config::target::redact_with(old, MASK) != text =>
                {
                    return Err(Refused(format!(
                        "\"{key}\" is changed but its password is masked ({MASK}): the stored password is only sent to the address it was given for; send the URL with its password"
                    )))
                }
                Some(old) => {
                    text = old.to_string();
                    kept_secret = true;
                }
                None => {
                    return Err(Refused(format!(
                        "\"{key}\" is masked ({MASK}) but the connector has no value for it to keep; send the real value"
                    )))
                }
            }
        } else if old != Some(text.as_str()) {
            // New or changed by the client: taken literally. (A value sent back as the
            // file has it stays the operator's, references included.)
            text = literal(&text);
        }
        if key.ends_with("url") {
            urls.push((key.clone(), text.clone()));
        }
        let typed = typed(&text);
        entries.push(Entry {
            path: segments(&key)?,
            text,
            typed,
            as_string: false,
        });
    }
    // A kept secret (a masked password) must not follow the connection to another server.
    if kept_secret {
        for (key, text) in &urls {
            let before = previous.get(key).and_then(Json::as_str);
            if let Some(before) = before {
                if server_of(before) != server_of(text) {
                    return Err(Refused(format!(
                        "\"{key}\" points at another server than before while a masked secret ({MASK}) is kept: the stored secrets are only sent to the server they were given for; send them again with the new address"
                    )));
                }
            }
        }
    }
    settle_types(&mut entries)?;
    let doc = document(&entries)?;
    let body = toml::to_string(&doc).map_err(|e| Refused(e.to_string()))?;
    Ok((
        format!("# Written by the admin API (Kafka Connect's config routes).\n{body}"),
        Vec::new(),
    ))
}

/// Gives each key the type the connector file wants: a value read as a boolean or number
/// where a string is wanted goes back to a string, and a comma list where a list is wanted
/// becomes one, until the file's shape is right (or a real error remains, which is kept for
/// [`ConnectorConfig::parse`] to report).
fn settle_types(entries: &mut [Entry]) -> Result<(), Refused> {
    for _ in 0..=entries.len() * 2 {
        let doc = document(entries)?;
        let err = match toml::Value::Table(doc.clone()).try_into::<ConnectorConfig>() {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let message = err.message().to_string();
        let Some(at) = locate(entries, &doc, &message) else {
            return Ok(());
        };
        let e = &mut entries[at];
        if message.contains("expected a sequence") && !e.as_string && e.typed.is_none() {
            e.typed = Some(toml::Value::Array(
                e.text
                    .split(',')
                    .map(|s| toml::Value::String(s.trim().to_string()))
                    .collect(),
            ));
        } else if message.contains("expected a string") && e.typed.is_some() && !e.as_string {
            e.as_string = true;
        } else {
            return Ok(());
        }
    }
    Ok(())
}

/// The entry an `invalid type` error is about: the one whose value the message quotes,
/// when exactly one such entry is a candidate.
fn locate(entries: &[Entry], _doc: &toml::Table, message: &str) -> Option<usize> {
    let wants_string = message.contains("expected a string");
    let wants_list = message.contains("expected a sequence");
    if !message.starts_with("invalid type") || !(wants_string || wants_list) {
        return None;
    }
    // "invalid type: integer `5432`, expected a string" / "string \"a,b\", expected a sequence"
    let shown = message
        .split_once(", expected")
        .map(|(head, _)| head)
        .unwrap_or_default();
    let candidates: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            if wants_list {
                !e.as_string && e.typed.is_none() && shown.contains(&format!("{:?}", e.text))
            } else {
                !e.as_string
                    && e.typed.as_ref().is_some_and(|t| {
                        matches!(
                            t,
                            toml::Value::Integer(_)
                                | toml::Value::Float(_)
                                | toml::Value::Boolean(_)
                        ) && shown.ends_with(&format!("`{}`", e.text))
                    })
            }
        })
        .map(|(i, _)| i)
        .collect();
    // Several keys with the same value: turn the first; the next round finds the others.
    candidates.first().copied()
}

/// A connector name usable as a file name.
pub fn file_name(name: &str) -> Result<String, Refused> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(format!("{name}.toml"))
    } else {
        Err(Refused(format!(
            "connector name \"{name}\" cannot name a file; use letters, digits, '.', '_' and '-'"
        )))
    }
}

/// Validates `text` as the connector file `path` and writes it atomically (a temporary
/// file in the same folder, fsynced, renamed over the old one, the folder fsynced).
pub fn write(path: &Path, text: &str) -> Result<ConnectorConfig, Refused> {
    let config = ConnectorConfig::parse(path, text).map_err(|e| Refused(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("connector")
    ));
    let io = |e: std::io::Error| Refused(format!("cannot write {}: {e}", path.display()));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flat_config_becomes_a_typed_file() {
        let config = json!({
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "topic_prefix": "inv",
            "tombstones_on_delete": "false",
            "postgres.url": "postgres://cdc@127.0.0.1:5432/shop",
            "postgres.password": "12345",
            "postgres.slot": "s1",
            "postgres.publication": "p1",
            "postgres.tables": "public.a,public.b",
            "columns.mask_hash.\"public.a.email\".algorithm": "SHA-256",
            "columns.mask_hash.\"public.a.email\".salt": "pepper",
        });
        let text = file_text("inv", &config, None).unwrap().0;
        let doc: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(doc["name"].as_str(), Some("inv"));
        assert_eq!(doc["source"].as_str(), Some("postgres"));
        assert_eq!(doc["tombstones_on_delete"].as_bool(), Some(false));
        // A numeric password stays a string; a comma list where a list is wanted is one.
        assert_eq!(doc["postgres"]["password"].as_str(), Some("12345"));
        assert_eq!(
            doc["postgres"]["tables"].as_array().unwrap().len(),
            2,
            "{text}"
        );
        assert_eq!(
            doc["columns"]["mask_hash"]["public.a.email"]["salt"].as_str(),
            Some("pepper")
        );
        ConnectorConfig::parse(Path::new("inv.toml"), &text).unwrap();
    }

    #[test]
    fn get_config_round_trips_with_masked_secrets_kept() {
        let original = r#"name = "inv"
source = "mysql"
topic_prefix = "inv"
[mysql]
url = "mysql://cdc:s3cret@127.0.0.1:3306"
server_id = 77
tables = ["shop.a", "re:shop\\.b{1,2}"]
"#;
        let shown = connect::config(original).unwrap();
        assert_eq!(shown["mysql.url"], "mysql://cdc:********@127.0.0.1:3306");
        assert_eq!(shown["mysql.tables"], r#"["shop.a","re:shop\\.b{1,2}"]"#);
        let text = file_text("inv", &shown, Some(original)).unwrap().0;
        let a = ConnectorConfig::parse(Path::new("a.toml"), original).unwrap();
        let b = ConnectorConfig::parse(Path::new("a.toml"), &text).unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        // A masked value with nothing to keep is refused.
        let err = file_text("inv", &shown, None).unwrap_err();
        assert!(err.0.contains("masked"), "{}", err.0);
    }

    /// The review's hostile writes: a `${file:...}` reference sent by a client is not read
    /// (the file written keeps it literally, and the error quotes no content of it); a
    /// masked password does not follow a URL to another server.
    #[test]
    fn api_written_values_are_never_expanded_and_secrets_stay_with_their_server() {
        let original = r#"name = "inv"
source = "postgres"
topic_prefix = "inv"
[postgres]
url = "postgres://cdc@db.internal:5432/shop"
password = "s3cret"
slot = "s"
publication = "p"
tables = ["public.a"]
"#;
        let mut shown = connect::config(original).unwrap();
        assert_eq!(shown["postgres.password"], MASK);
        // Probe the daemon's files through a validation error.
        shown["snapshot.mode"] = json!("${file:/etc/hostname}");
        let text = file_text("inv", &shown, Some(original)).unwrap().0;
        let err = ConnectorConfig::parse(Path::new("inv.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("${file:/etc/hostname}"), "{err}");
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        if !host.trim().is_empty() {
            assert!(!err.contains(host.trim()), "{err}");
        }
        // The environment is not read either.
        std::env::set_var("SLUICE_TEST_SECRET_VAR", "leaked-value");
        shown["snapshot.mode"] = json!("initial");
        shown["topic_prefix"] = json!("x${SLUICE_TEST_SECRET_VAR}");
        let text = file_text("inv", &shown, Some(original)).unwrap().0;
        match ConnectorConfig::parse(Path::new("inv.toml"), &text) {
            Ok(c) => assert_eq!(c.topic_prefix, "x${SLUICE_TEST_SECRET_VAR}"),
            Err(e) => assert!(!e.to_string().contains("leaked-value"), "{e}"),
        }
        shown["topic_prefix"] = json!("inv");
        // The masked password kept while the URL moves to another host: refused.
        shown["postgres.url"] = json!("postgres://cdc@attacker.example:5432/shop");
        let err = file_text("inv", &shown, Some(original)).unwrap_err();
        assert!(err.0.contains("another server"), "{}", err.0);
        // The same host, another database: the password may stay.
        shown["postgres.url"] = json!("postgres://cdc@db.internal:5432/other");
        file_text("inv", &shown, Some(original)).unwrap();
        // A URL with a masked password whose host changed: refused.
        let with_pw = original.replace("cdc@db.internal", "cdc:pw@db.internal");
        let mut shown = connect::config(&with_pw).unwrap();
        shown["postgres.url"] = json!("postgres://cdc:********@evil.example:5432/shop");
        let err = file_text("inv", &shown, Some(&with_pw)).unwrap_err();
        assert!(err.0.contains("password is masked"), "{}", err.0);
    }

    #[test]
    fn bad_requests_are_refused_with_the_reason() {
        let err = file_text("a", &json!({"name": "b"}), None).unwrap_err();
        assert!(err.0.contains("\"b\""), "{}", err.0);
        let err =
            file_text("a", &json!({"connector.class": "FileStreamSource"}), None).unwrap_err();
        assert!(err.0.contains("postgres or mysql"), "{}", err.0);
        let err = file_text("a", &json!({"x = 1\ny": "1"}), None).unwrap_err();
        assert!(err.0.contains("not a connector file key"), "{}", err.0);
        assert!(file_name("../etc").is_err());
        assert_eq!(file_name("inv-2").unwrap(), "inv-2.toml");
    }
}
