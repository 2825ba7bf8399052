//! Kafka Connect's REST shapes for the routes Connect tools call (kcctl, Kafka UI, scripts):
//! `GET /` (version), `GET /connector-plugins`, `GET /connectors/{name}/status`,
//! `PUT /connectors/{name}/pause|resume`. One connector is one task (`id` 0).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::status::{ConnectorState, ConnectorStatus};

/// Connect's state name of a Sluice state.
pub fn connect_state(state: ConnectorState) -> &'static str {
    match state {
        ConnectorState::Starting | ConnectorState::Snapshotting | ConnectorState::Streaming => {
            "RUNNING"
        }
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
    }
    json!({
        "name": s.name,
        "connector": {"state": state, "worker_id": worker},
        "tasks": [task],
        "type": "source",
    })
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
