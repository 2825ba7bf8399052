//! Kafka Connect's REST shapes for the routes Connect tools call (kcctl, Kafka UI, scripts):
//! `GET /` (version), `GET /connector-plugins`, `GET /connectors/{name}/status|config|tasks`,
//! `PUT /connectors/{name}/pause|resume`. One connector is one task (`id` 0).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::status::{ConnectorState, ConnectorStatus};

/// Connect's state name of a Sluice state.
pub fn connect_state(state: ConnectorState) -> &'static str {
    match state {
        ConnectorState::Starting
        | ConnectorState::Snapshotting
        | ConnectorState::Streaming
        | ConnectorState::Retrying => "RUNNING",
        ConnectorState::Paused => "PAUSED",
        ConnectorState::Failed => "FAILED",
        ConnectorState::Finished | ConnectorState::Stopped => "STOPPED",
        ConnectorState::Unassigned => "UNASSIGNED",
    }
}

/// `GET /connectors/{name}/status`: `{name, connector: {state, worker_id}, tasks: [{id: 0,
/// state, worker_id, trace?}], type: "source"}`.
pub fn status(s: &ConnectorStatus, worker_id: &str) -> Value {
    let state = connect_state(s.state);
    let worker = s.owner.as_deref().unwrap_or(worker_id);
    let mut task = json!({"id": 0, "state": state, "worker_id": worker});
    if let Some(e) = &s.error {
        task["trace"] = json!(e);
    } else if let Some(r) = &s.retry {
        // As Connect shows a task that keeps failing and retrying: RUNNING, with a trace.
        task["trace"] = json!(format!(
            "retrying (attempt {}, unable to publish since {} ms since the epoch): {}",
            r.attempt, r.since_ms, r.last_error
        ));
    }
    json!({
        "name": s.name,
        "connector": {"state": state, "worker_id": worker},
        "tasks": [task],
        "type": "source",
    })
}

/// Keys whose values are secrets (the whole value is masked).
fn secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    last.contains("password") || last.contains("secret") || last == "salt" || last == "token"
}

/// A URL with its password (and password parameters) masked
/// (`postgres://user:********@host/db`).
fn mask_url(url: &str) -> String {
    crate::config::target::redact_with(url, MASK)
}

/// A TOML value as text (strings as they are; others as JSON).
fn scalar(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// One segment of a dotted key: bare when TOML allows, else quoted (`"public.a"`), so the
/// flat key is a TOML dotted key and the map can be written back as a file.
fn segment(k: &str) -> String {
    let bare = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        k.to_string()
    } else {
        serde_json::to_string(k).unwrap_or_default()
    }
}

/// A TOML array as one string: comma-separated when its items are plain strings without
/// commas (Connect's list style), else JSON.
fn array_text(a: &[toml::Value]) -> String {
    let plain = a.iter().all(|v| {
        v.as_str()
            .is_some_and(|s| !s.contains(',') && !s.is_empty())
    });
    if plain {
        a.iter().map(scalar).collect::<Vec<_>>().join(",")
    } else {
        serde_json::to_string(a).unwrap_or_default()
    }
}

fn flatten(prefix: &str, v: &toml::Value, mask: bool, out: &mut serde_json::Map<String, Value>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    segment(k)
                } else {
                    format!("{prefix}.{}", segment(k))
                };
                flatten(&key, v, mask, out);
            }
        }
        other => {
            let text = match other {
                toml::Value::Array(a) => array_text(a),
                y => scalar(y),
            };
            let text = if !mask {
                text
            } else if secret_key(prefix.trim_end_matches('"')) {
                MASK.to_string()
            } else if prefix.ends_with("url") {
                mask_url(&text)
            } else {
                text
            };
            out.insert(prefix.to_string(), Value::String(text));
        }
    }
}

/// What a secret's value is shown as.
pub const MASK: &str = "********";

/// `GET /connectors/{name}/config`: the connector file's keys as Connect's flat string map
/// (`postgres.tables` = `"public.a,public.b"`; keys with dots quoted as in TOML,
/// `columns.mask_hash."public.a.email".salt`), with `connector.class` and `name`; secrets
/// (passwords, salts, tokens, URL passwords) masked. `None` when the file does not parse.
pub fn config(text: &str) -> Option<Value> {
    flat(text, true)
}

/// The flat map of a connector file; `mask`: secrets masked.
pub fn flat(text: &str, mask: bool) -> Option<Value> {
    let doc: toml::Value = toml::from_str(text).ok()?;
    let mut out = serde_json::Map::new();
    // A file converted from Debezium's properties hands those back, as they were put.
    if let Some(props) = super::debezium_writes::recorded(&doc) {
        for (k, v) in props {
            let v = if !mask {
                v
            } else if super::debezium_writes::secret_key(&k) {
                MASK.to_string()
            } else if k.ends_with("url") {
                mask_url(&v)
            } else {
                v
            };
            out.insert(k, Value::String(v));
        }
        return Some(Value::Object(out));
    }
    if let Some(source) = doc.get("source").and_then(toml::Value::as_str) {
        out.insert("connector.class".into(), json!(source));
    }
    flatten("", &doc, mask, &mut out);
    Some(Value::Object(out))
}

/// `GET /connectors/{name}` and `?expand=info`: `{name, config, tasks, type}`.
pub fn info(name: &str, config: Value) -> Value {
    json!({
        "name": name,
        "config": config,
        "tasks": [{"connector": name, "task": 0}],
        "type": "source",
    })
}

/// `GET /connectors/{name}/tasks`: the one task and its config.
pub fn tasks(name: &str, config: Value) -> Value {
    json!([{"id": {"connector": name, "task": 0}, "config": config}])
}

/// `GET /`: the version, as Connect's root answers it.
pub fn root() -> Response {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": env!("SLUICE_COMMIT"),
        "kafka_cluster_id": Value::Null,
    }))
    .into_response()
}

/// `GET /connector-plugins`: the two sources.
pub fn plugins() -> Response {
    let v = env!("CARGO_PKG_VERSION");
    Json(json!([
        {"class": "postgres", "type": "source", "version": v},
        {"class": "mysql", "type": "source", "version": v},
    ]))
    .into_response()
}

/// Connect's error body (`{"error_code", "message"}`).
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error_code": status.as_u16(), "message": message.into()})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_flat_strings_with_secrets_masked() {
        let text = r#"name = "inv"
source = "postgres"
topic_prefix = "inv"
tombstones_on_delete = false
[postgres]
url = "postgres://cdc:s3cret@db:5432/shop"
password = "other"
slot = "s"
publication = "p"
tables = ["public.a", "public.b"]
[columns]
mask_hash = { "public.a.email" = { algorithm = "SHA-256", salt = "pepper" } }
"#;
        let c = config(text).unwrap();
        assert_eq!(c["connector.class"], "postgres");
        assert_eq!(c["name"], "inv");
        assert_eq!(c["tombstones_on_delete"], "false");
        assert_eq!(c["postgres.url"], "postgres://cdc:********@db:5432/shop");
        assert_eq!(c["postgres.password"], "********");
        assert_eq!(c["postgres.tables"], "public.a,public.b");
        assert_eq!(c[r#"columns.mask_hash."public.a.email".salt"#], "********");
        assert!(!c.to_string().contains("s3cret") && !c.to_string().contains("pepper"));
        assert_eq!(
            tasks("inv", c.clone())[0]["id"],
            json!({"connector": "inv", "task": 0})
        );
    }

    #[test]
    fn status_in_connect_shape() {
        let mut s = ConnectorStatus::new("inv", "connectors/inv.toml");
        s.state = ConnectorState::Failed;
        s.error = Some("wal_level is replica".into());
        assert_eq!(
            status(&s, "127.0.0.1:8083"),
            json!({
                "name": "inv",
                "connector": {"state": "FAILED", "worker_id": "127.0.0.1:8083"},
                "tasks": [{"id": 0, "state": "FAILED", "worker_id": "127.0.0.1:8083", "trace": "wal_level is replica"}],
                "type": "source"
            })
        );
        s.state = ConnectorState::Snapshotting;
        s.error = None;
        s.owner = Some("node-2".into());
        let v = status(&s, "127.0.0.1:8083");
        assert_eq!(
            v["connector"],
            json!({"state": "RUNNING", "worker_id": "node-2"})
        );
        assert!(v["tasks"][0].get("trace").is_none());
    }
}
