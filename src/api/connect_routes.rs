//! The handlers of Kafka Connect's routes, in Connect's shapes and status codes.

use std::collections::BTreeSet;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::connect::{self, error};
use super::writes;
use super::Api;
use crate::offsets::connect as offsets_format;
use crate::status::ConnectorState;

fn not_found(name: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("Connector {name} not found"))
}

/// The values of one query parameter (`expand=status&expand=info`).
fn query_values(query: Option<&str>, key: &str) -> Vec<String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(k, _)| *k == key)
        .flat_map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// A boolean query parameter (`true`, `True`, `1`).
fn query_flag(query: Option<&str>, key: &str) -> bool {
    query_values(query, key)
        .iter()
        .any(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The connector file's flat config, masked; `None` when it cannot be read now.
fn config_of(api: &Api, name: &str) -> Option<Value> {
    let file = api.runtime.file_of(name)?;
    let text = std::fs::read_to_string(&file).ok()?;
    if file.extension().is_some_and(|x| x == "json") {
        return super::debezium_writes::json_file_config(&text);
    }
    connect::config(&text)
}

fn unreadable(name: &str) -> Response {
    error(
        StatusCode::CONFLICT,
        format!("the file of connector {name} cannot be read now"),
    )
}

/// `GET /connectors`: the names; `?expand=status` and/or `?expand=info`: a map of name to
/// `{status}` / `{info}`, as Connect.
pub async fn list(State(api): State<Api>, RawQuery(query): RawQuery) -> Response {
    let expand: BTreeSet<String> = query_values(query.as_deref(), "expand")
        .into_iter()
        .collect();
    let statuses = api.runtime.statuses();
    if expand.is_empty() {
        let names: Vec<&str> = statuses.iter().map(|s| s.name.as_str()).collect();
        return Json(names).into_response();
    }
    let mut out = serde_json::Map::new();
    for s in &statuses {
        let mut entry = serde_json::Map::new();
        if expand.contains("status") {
            entry.insert("status".into(), connect::status(s, &api.worker_id));
        }
        if expand.contains("info") {
            let config = config_of(&api, &s.name).unwrap_or_else(|| json!({}));
            entry.insert("info".into(), connect::info(&s.name, config));
        }
        out.insert(s.name.clone(), Value::Object(entry));
    }
    Json(Value::Object(out)).into_response()
}

/// `GET /connectors/{name}`: `{name, config, tasks, type}`.
pub async fn info(State(api): State<Api>, Path(name): Path<String>) -> Response {
    if api.runtime.status(&name).is_none() {
        return not_found(&name);
    }
    match config_of(&api, &name) {
        Some(c) => Json(connect::info(&name, c)).into_response(),
        None => unreadable(&name),
    }
}

/// `GET /connectors/{name}/status|config|tasks|offsets`.
pub async fn view(State(api): State<Api>, Path((name, view)): Path<(String, String)>) -> Response {
    let Some(s) = api.runtime.status(&name) else {
        return not_found(&name);
    };
    match view.as_str() {
        "status" => Json(connect::status(&s, &api.worker_id)).into_response(),
        "config" => match config_of(&api, &name) {
            Some(c) => Json(c).into_response(),
            None => unreadable(&name),
        },
        "tasks" => match config_of(&api, &name) {
            Some(c) => Json(connect::tasks(&name, c)).into_response(),
            None => unreadable(&name),
        },
        "offsets" => offsets(&api, &name).await,
        other => error(
            StatusCode::NOT_FOUND,
            format!(
                "no view \"{other}\" of a connector; status, config, tasks and offsets are served"
            ),
        ),
    }
}

/// `GET /connectors/{name}/tasks/0/status`.
pub async fn task_status(
    State(api): State<Api>,
    Path((name, task)): Path<(String, String)>,
) -> Response {
    let Some(s) = api.runtime.status(&name) else {
        return not_found(&name);
    };
    if task != "0" {
        return error(
            StatusCode::NOT_FOUND,
            format!("Task {name}-{task} not found (a Sluice connector is one task, 0)"),
        );
    }
    Json(connect::status(&s, &api.worker_id)["tasks"][0].clone()).into_response()
}

/// `POST /connectors/{name}/tasks/0/restart`: restarts the connector (its one task).
pub async fn task_restart(
    State(api): State<Api>,
    Path((name, task)): Path<(String, String)>,
) -> Response {
    if task != "0" {
        return error(
            StatusCode::NOT_FOUND,
            format!("Task {name}-{task} not found (a Sluice connector is one task, 0)"),
        );
    }
    if api.runtime.restart(&name) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found(&name)
    }
}

/// `POST /connectors/{name}/restart[?includeTasks=&onlyFailed=]`: 204 as Connect's plain
/// restart; with either parameter, 202 and the status (`RESTARTING` where restarted).
pub async fn restart(
    State(api): State<Api>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(s) = api.runtime.status(&name) else {
        return not_found(&name);
    };
    let include_tasks = query_flag(query.as_deref(), "includeTasks");
    let only_failed = query_flag(query.as_deref(), "onlyFailed");
    let restarting = !only_failed || s.state == ConnectorState::Failed;
    if restarting && !api.runtime.restart(&name) {
        return error(
            StatusCode::CONFLICT,
            format!("connector {name} is busy with another command; try again"),
        );
    }
    if !include_tasks && !only_failed {
        return StatusCode::NO_CONTENT.into_response();
    }
    let mut status = connect::status(&s, &api.worker_id);
    if restarting {
        status["connector"]["state"] = json!("RESTARTING");
        status["tasks"][0]["state"] = json!("RESTARTING");
    }
    (StatusCode::ACCEPTED, Json(status)).into_response()
}

/// `PUT /connectors/{name}/pause|resume|stop`: 202 (stop: 204) with no body, as Connect.
pub async fn put_action(
    State(api): State<Api>,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let (done, code) = match action.as_str() {
        "pause" => (api.runtime.set_paused(&name, true), StatusCode::ACCEPTED),
        "resume" => (api.runtime.resume(&name), StatusCode::ACCEPTED),
        "stop" => (api.runtime.halt(&name), StatusCode::NO_CONTENT),
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                format!("no action \"{action}\" by PUT; use pause, resume, stop or config"),
            )
        }
    };
    if done {
        code.into_response()
    } else {
        not_found(&name)
    }
}

/// `GET /connectors/{name}/offsets`: KIP-875's `{"offsets": [{"partition": {"server"},
/// "offset": {...}}]}` with Debezium's offset fields.
async fn offsets(api: &Api, name: &str) -> Response {
    let Some((store, server)) = api.runtime.offsets_of(name) else {
        return error(
            StatusCode::CONFLICT,
            format!("connector {name} runs on another daemon; ask that one for its offsets"),
        );
    };
    let n = name.to_string();
    let loaded = tokio::task::spawn_blocking(move || store.load(&n)).await;
    match loaded {
        Ok(Ok(Some(position))) => Json(json!({"offsets": [{
            "partition": {"server": server},
            "offset": offsets_format::value(&position),
        }]}))
        .into_response(),
        Ok(Ok(None)) => Json(json!({"offsets": []})).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Offsets may change only while the connector is stopped (as Connect requires).
/// `Some(refusal)` unless the connector is stopped.
fn unless_stopped(api: &Api, name: &str) -> Option<Response> {
    match api.runtime.status(name) {
        None => Some(not_found(name)),
        Some(s) if s.state == ConnectorState::Stopped => None,
        Some(_) => Some(error(
            StatusCode::BAD_REQUEST,
            format!("Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"),
        )),
    }
}

/// `PATCH /connectors/{name}/offsets`: sets the stored position (Debezium's offset fields;
/// `"offset": null` removes it, so the connector starts over as configured).
pub async fn alter_offsets(
    State(api): State<Api>,
    Path((name, view)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    if view != "offsets" {
        return error(
            StatusCode::NOT_FOUND,
            format!("no \"{view}\" to PATCH; use offsets"),
        );
    }
    if let Some(r) = unless_stopped(&api, &name) {
        return r;
    }
    let Some((store, server)) = api.runtime.offsets_of(&name) else {
        return not_found(&name);
    };
    let bad = |m: String| error(StatusCode::BAD_REQUEST, m);
    let Some(Json(body)) = body else {
        return bad("the body must be {\"offsets\": [{\"partition\": {\"server\": ...}, \"offset\": {...}}]}".into());
    };
    let Some([entry]) = body
        .get("offsets")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    else {
        return bad("\"offsets\" must hold exactly one {\"partition\", \"offset\"} (a Sluice connector has one source partition)".into());
    };
    if entry.get("partition") != Some(&json!({"server": server})) {
        return bad(format!(
            "the partition must be {{\"server\": \"{server}\"}} (the connector's topic_prefix)"
        ));
    }
    let position = match entry.get("offset") {
        None | Some(Value::Null) => None,
        Some(offset) => match offsets_format::position(offset) {
            Ok(p) => Some(p),
            Err(e) => return bad(format!("the offset cannot be read: {e}")),
        },
    };
    if let (Some(p), Some(config)) = (&position, api.runtime.config_of(&name)) {
        if let Err(e) = crate::source::check_settable(&config, p).await {
            return bad(format!("the offset is refused: {e}"));
        }
    }
    store_offsets(store, name, position, "altered").await
}

/// Writes (`Some`) or removes the stored position off the async workers; Connect's answer.
async fn store_offsets(
    store: std::sync::Arc<dyn crate::offsets::OffsetStore>,
    name: String,
    position: Option<crate::position::SourcePosition>,
    done: &'static str,
) -> Response {
    let n = name.clone();
    let result = tokio::task::spawn_blocking(move || match &position {
        Some(p) => store.reset(&n, p),
        None => store.forget(&n),
    })
    .await;
    match result {
        Ok(Ok(())) => {
            tracing::warn!(connector = %name, "offsets {done} through the admin API");
            Json(json!({
                "message": format!("The offsets for this connector have been {done} successfully")
            }))
            .into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `DELETE /connectors/{name}/offsets`: removes the stored position (the connector starts
/// over as configured: a new snapshot, if its snapshot mode takes one).
pub async fn reset_offsets(
    State(api): State<Api>,
    Path((name, view)): Path<(String, String)>,
) -> Response {
    if view != "offsets" {
        return error(
            StatusCode::NOT_FOUND,
            format!("no \"{view}\" to DELETE; use offsets"),
        );
    }
    if let Some(r) = unless_stopped(&api, &name) {
        return r;
    }
    let Some((store, _)) = api.runtime.offsets_of(&name) else {
        return not_found(&name);
    };
    store_offsets(store, name, None, "reset").await
}

fn writes_refused(api: &Api) -> Option<Response> {
    (!api.allow_config_writes).then(|| {
        error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "connector files in {} are the source of truth and this daemon does not write them; edit the files, or set [api] allow_config_writes = true to let the API write them",
                api.runtime.connectors_dir().display()
            ),
        )
    })
}

/// Writes connector `name`'s file from Connect's flat config: 201 when created, 200 when
/// replaced; the folder is rescanned within a second and the connector (re)started.
fn put_file(api: &Api, name: &str, config: &Value, create_only: bool) -> Response {
    let existing = api.runtime.file_of(name);
    if create_only && existing.is_some() {
        return error(
            StatusCode::CONFLICT,
            format!("Connector {name} already exists"),
        );
    }
    let path = match &existing {
        Some(p) => p.clone(),
        None => match writes::file_name(name) {
            Ok(f) => api.runtime.connectors_dir().join(f),
            Err(e) => return error(StatusCode::BAD_REQUEST, e.0),
        },
    };
    // A file of that name that failed validation may be replaced by a valid one (through
    // PUT: POST is for new connectors); any other file there is not this connector's.
    let in_error = api
        .runtime
        .file_errors()
        .iter()
        .any(|(file, _)| std::path::Path::new(file) == path);
    if existing.is_none() && path.exists() && (create_only || !in_error) {
        return error(
            StatusCode::CONFLICT,
            format!(
                "{} exists but is not connector {name}'s file; remove or rename it",
                path.display()
            ),
        );
    }
    let current = existing
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok());
    if existing
        .as_ref()
        .is_some_and(|p| p.extension().is_some_and(|x| x == "json"))
    {
        return error(
            StatusCode::CONFLICT,
            format!(
                "connector {name} is defined by {} (Connect's JSON form), which the API does not rewrite; edit that file",
                path.display()
            ),
        );
    }
    let (text, warnings) = match writes::file_text(name, config, current.as_deref()) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.0),
    };
    if let Err(e) = writes::write(&path, &text) {
        return error(StatusCode::BAD_REQUEST, e.0);
    }
    tracing::info!(connector = %name, file = %path.display(), "connector file written through the admin API");
    let shown = connect::config(&text).unwrap_or_else(|| json!({}));
    let code = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut body = connect::info(name, shown);
    if !warnings.is_empty() {
        for w in &warnings {
            tracing::warn!(connector = %name, "{w}");
        }
        body["warnings"] = json!(warnings);
    }
    (code, Json(body)).into_response()
}

/// `PUT /connectors/{name}/config`: creates or replaces the connector's file.
pub async fn put_config(
    State(api): State<Api>,
    Path((name, view)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    if view != "config" {
        return error(
            StatusCode::NOT_FOUND,
            format!("no action \"{view}\" by PUT; use pause, resume, stop or config"),
        );
    }
    if let Some(r) = writes_refused(&api) {
        return r;
    }
    let Some(Json(config)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "the body must be the connector's config as a JSON object",
        );
    };
    put_file(&api, &name, &config, false)
}

/// `POST /connectors` with `{name, config}`: creates a connector file (409 when it exists).
pub async fn create(State(api): State<Api>, body: Option<Json<Value>>) -> Response {
    if let Some(r) = writes_refused(&api) {
        return r;
    }
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "the body must be {\"name\": ..., \"config\": {...}}",
        );
    };
    let name = body
        .get("name")
        .or_else(|| body.get("config").and_then(|c| c.get("name")))
        .and_then(Value::as_str)
        .map(str::to_string);
    let (Some(name), Some(config)) = (name, body.get("config")) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the body must be {\"name\": ..., \"config\": {...}}",
        );
    };
    put_file(&api, &name, config, true)
}

/// `DELETE /connectors/{name}`: removes the connector's file; the connector stops within a
/// second (its stored position is kept).
pub async fn delete(State(api): State<Api>, Path(name): Path<String>) -> Response {
    if let Some(r) = writes_refused(&api) {
        return r;
    }
    let Some(file) = api.runtime.file_of(&name) else {
        return not_found(&name);
    };
    match std::fs::remove_file(&file) {
        Ok(()) => {
            tracing::info!(connector = %name, file = %file.display(), "connector file removed through the admin API");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot remove {}: {e}", file.display()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_as_connect_clients_send_them() {
        let q = Some("expand=status&expand=info");
        assert_eq!(query_values(q, "expand"), vec!["status", "info"]);
        assert!(query_flag(
            Some("includeTasks=True&onlyFailed=False"),
            "includeTasks"
        ));
        assert!(!query_flag(
            Some("includeTasks=True&onlyFailed=False"),
            "onlyFailed"
        ));
        assert!(!query_flag(None, "onlyFailed"));
    }
}
