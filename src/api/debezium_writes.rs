//! Connector files written from Debezium's properties through Kafka Connect's config routes:
//! the properties are converted ([`crate::config::debezium`]) and recorded in the file, so
//! `GET .../config` hands them back as they were put.
//!
//! As for Sluice's own keys, an API client's values are never expanded (every `${` is
//! written as the literal `$${`), and a masked secret sent back keeps the stored one only
//! while the connection still points at the same server.

use std::collections::BTreeMap;

use crate::config::debezium;

use super::connect::MASK;
use super::writes::Refused;

/// Whether a Debezium property holds a secret (shown masked, kept when sent back masked).
pub fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password")
        || k.contains("secret")
        || k.ends_with("user.info")
        || k.ends_with("token")
}

/// The recorded properties of a connector file, as they were put (`None`: not converted
/// from Debezium's properties).
pub fn recorded(doc: &toml::Value) -> Option<BTreeMap<String, String>> {
    let props = doc.get("debezium")?.get("properties")?.as_table()?;
    Some(
        props
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.replace("$${", "${"))))
            .collect(),
    )
}

/// The properties of a connector file in Kafka Connect's JSON form, masked as
/// `GET .../config` shows them.
pub fn json_file_config(text: &str) -> Option<serde_json::Value> {
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    let config = json.get("config").unwrap_or(&json).as_object()?;
    let mut out = serde_json::Map::new();
    for (k, v) in config {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => continue,
            other => other.to_string(),
        };
        let shown = if secret_key(k) {
            MASK.to_string()
        } else if k.ends_with("url") {
            crate::config::target::redact_with(&text, MASK)
        } else {
            text
        };
        out.insert(k.clone(), serde_json::Value::String(shown));
    }
    Some(serde_json::Value::Object(out))
}

/// Every string of a document written as a literal (`${` → `$${`).
fn literal_strings(v: &mut toml::Value) {
    match v {
        toml::Value::String(s) => *s = s.replace("${", "$${"),
        toml::Value::Array(a) => a.iter_mut().for_each(literal_strings),
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| literal_strings(v)),
        _ => {}
    }
}

/// The server the properties connect to.
fn server(props: &BTreeMap<String, String>) -> (Option<&str>, Option<&str>) {
    (
        props.get("database.hostname").map(String::as_str),
        props.get("database.port").map(String::as_str),
    )
}

/// The connector file for Debezium's properties `given` of connector `name`; `previous`:
/// the properties recorded in its current file. Returns the text and the warnings.
pub fn file_text(
    name: &str,
    mut given: BTreeMap<String, String>,
    previous: Option<&BTreeMap<String, String>>,
) -> Result<(String, Vec<String>), Refused> {
    let mut kept_secret = false;
    for (key, value) in given.iter_mut() {
        if value.as_str() != MASK {
            continue;
        }
        match previous.and_then(|p| p.get(key)) {
            Some(old) if secret_key(key) => {
                *value = old.clone();
                kept_secret = true;
            }
            _ => {
                return Err(Refused(format!(
                    "\"{key}\" is masked ({MASK}) but the connector has no value for it to keep; send the real value"
                )))
            }
        }
    }
    if kept_secret {
        if let Some(previous) = previous {
            if server(previous) != server(&given) {
                return Err(Refused(format!(
                    "database.hostname / database.port point at another server than before while a masked secret ({MASK}) is kept: the stored secrets are only sent to the server they were given for; send them again with the new address"
                )));
            }
        }
    }
    let converted = debezium::convert(Some(name), &given).map_err(|r| Refused(r.to_string()))?;
    let mut doc = toml::Value::Table(converted.document);
    literal_strings(&mut doc);
    let body = toml::to_string(&doc).map_err(|e| Refused(e.to_string()))?;
    let mut header = String::from(
        "# Written by the admin API from Debezium's connector properties (recorded in [debezium]).\n",
    );
    for w in &converted.warnings {
        header.push_str(&format!("# note: {w}\n"));
    }
    Ok((format!("{header}{body}"), converted.warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pg(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut p = props(&[
            (
                "connector.class",
                "io.debezium.connector.postgresql.PostgresConnector",
            ),
            ("database.hostname", "db.internal"),
            ("database.port", "5432"),
            ("database.user", "dbz"),
            ("database.password", "s3cret"),
            ("database.dbname", "inventory"),
            ("topic.prefix", "dbserver1"),
        ]);
        p.extend(props(extra));
        p
    }

    /// A value put through the API is never expanded, the record hands back what was put,
    /// and a masked password follows only the same server.
    #[test]
    fn debezium_properties_are_recorded_literally_and_secrets_stay_with_their_server() {
        let given = pg(&[("heartbeat.action.query", "SELECT '${file:/etc/passwd}'")]);
        let (text, _) = file_text("inv", given.clone(), None).unwrap();
        assert!(text.contains("$${file:/etc/passwd}"), "{text}");
        let path = std::path::Path::new("/tmp/inv.toml");
        let config = crate::config::ConnectorConfig::parse(path, &text).unwrap();
        assert_eq!(
            config
                .postgres
                .as_ref()
                .unwrap()
                .heartbeat_action_query
                .as_deref(),
            Some("SELECT '${file:/etc/passwd}'")
        );
        let doc: toml::Value = toml::from_str(&text).unwrap();
        let back = recorded(&doc).unwrap();
        assert_eq!(back, given);

        // Masked password sent back with the same server: kept.
        let mut again = given.clone();
        again.insert("database.password".into(), MASK.into());
        let (text2, _) = file_text("inv", again.clone(), Some(&back)).unwrap();
        let c2 = crate::config::ConnectorConfig::parse(path, &text2).unwrap();
        assert_eq!(c2.postgres.unwrap().password.unwrap().expose(), "s3cret");
        // ... with another host: refused.
        again.insert("database.hostname".into(), "attacker.example".into());
        let err = file_text("inv", again, Some(&back)).unwrap_err();
        assert!(err.0.contains("another server"), "{}", err.0);
        // A masked value with nothing to keep.
        let mut fresh = pg(&[]);
        fresh.insert("database.password".into(), MASK.into());
        assert!(file_text("inv", fresh, None)
            .unwrap_err()
            .0
            .contains("no value"));
    }
}
