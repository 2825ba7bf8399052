//! The admin HTTP API: health, readiness, connector status and control, Prometheus metrics,
//! and Kafka Connect's REST API for the tools that speak it.
//!
//! ```text
//! GET  /health                      process alive (never needs the token)
//! GET  /ready                       every connector snapshotting or streaming, none failed
//!                                   (never needs the token: a probe)
//! GET  /sluice/connectors           Sluice's status of every connector, and files in error
//! GET  /sluice/connectors/{name}    one connector's Sluice status
//! POST /connectors/{name}/pause     stop publishing (changes stay in the slot)
//! POST /connectors/{name}/resume    publish again
//! GET  /metrics                     Prometheus text format
//!
//! Kafka Connect's routes and shapes (see [`connect`] and [`connect_routes`]):
//! GET  /                            version
//! GET  /connector-plugins           the sources
//! GET  /connectors[?expand=status|info]           names, or name → {status} / {info}
//! POST /connectors                  create a connector file (allow_config_writes)
//! GET  /connectors/{name}           {name, config, tasks, type}
//! DELETE /connectors/{name}         remove its file (allow_config_writes)
//! GET  /connectors/{name}/status    Connect's status (RUNNING, PAUSED, FAILED, STOPPED, ...)
//! GET  /connectors/{name}/config    the file's keys as Connect's flat map, secrets masked
//! PUT  /connectors/{name}/config    write the file (allow_config_writes)
//! GET  /connectors/{name}/tasks     the one task with that config
//! PUT  /connectors/{name}/pause|resume|stop
//! POST /connectors/{name}/restart[?includeTasks&onlyFailed]
//! GET|PATCH|DELETE /connectors/{name}/offsets    KIP-875 (altered only while stopped)
//! GET  /connectors/{name}/tasks/0/status, POST .../tasks/0/restart
//! ```

mod connect;
mod connect_routes;
pub mod probe;
mod writes;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::config::ApiConfig;
use crate::runtime::Runtime;

#[derive(Clone)]
struct Api {
    runtime: Arc<Runtime>,
    token: Option<String>,
    /// This daemon's name in Connect's `worker_id` (the API address).
    worker_id: String,
    /// `[api] allow_config_writes`.
    allow_config_writes: bool,
}

impl Api {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
    }
}

/// Refuses a request without the token (every route but `/health` and `/ready`).
async fn require_token(
    State(api): State<Api>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if api.authorized(request.headers()) {
        next.run(request).await
    } else {
        unauthorized()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "unauthorized"})),
    )
        .into_response()
}

fn no_such(name: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(
            json!({"error": format!("no connector named \"{name}\"; GET /sluice/connectors lists them")}),
        ),
    )
        .into_response()
}

async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

async fn ready(State(api): State<Api>) -> Response {
    let ready = api.runtime.ready();
    let states: serde_json::Map<String, serde_json::Value> = api
        .runtime
        .statuses()
        .into_iter()
        .map(|s| (s.name.clone(), json!(s.state)))
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({"ready": ready, "connectors": states}))).into_response()
}

async fn connectors(State(api): State<Api>) -> Response {
    let errors: Vec<serde_json::Value> = api
        .runtime
        .file_errors()
        .into_iter()
        .map(|(file, error)| json!({"file": file, "error": error}))
        .collect();
    Json(json!({"connectors": api.runtime.statuses(), "file_errors": errors})).into_response()
}

async fn connector(State(api): State<Api>, Path(name): Path<String>) -> Response {
    match api.runtime.status(&name) {
        Some(s) => Json(s).into_response(),
        None => no_such(&name),
    }
}

/// `POST /connectors/{name}/pause|resume` (Sluice's: 202 with a body; Connect's are PUT)
/// and `restart` (Connect's).
async fn action(
    state: State<Api>,
    Path((name, action)): Path<(String, String)>,
    query: axum::extract::RawQuery,
    body: axum::body::Bytes,
) -> Response {
    let api = &state.0;
    let done = match action.as_str() {
        "pause" => api.runtime.set_paused(&name, true),
        "resume" => api.runtime.resume(&name),
        "restart" => return connect_routes::restart(state, Path(name), query).await,
        "signals" => return signal(api, &name, &body),
        other => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"error": format!("unknown action \"{other}\"; use pause, resume, restart or signals")})),
            )
                .into_response()
        }
    };
    if !done {
        return no_such(&name);
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({"connector": name, "action": action})),
    )
        .into_response()
}

/// `POST /connectors/{name}/signals`: a Debezium signal (`{"id", "type", "data"}`) for the
/// connector's source; 202 once queued (what it did shows in the log and the topics).
fn signal(api: &Api, name: &str, body: &[u8]) -> Response {
    let parsed = serde_json::from_slice::<serde_json::Value>(body)
        .map_err(|e| format!("the body is not JSON: {e}"))
        .and_then(|v| crate::signal::Signal::from_json(&v));
    let signal = match parsed {
        Ok(s) => s,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error_code": 400, "message": e})),
            )
                .into_response()
        }
    };
    let id = signal.id.clone();
    match api.runtime.signal(name, signal) {
        None => no_such(name),
        Some(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error_code": 503, "message": format!("connector {name} has {} signals waiting; try again later", crate::signal::INBOX_LIMIT)})),
        )
            .into_response(),
        Some(true) => (
            StatusCode::ACCEPTED,
            Json(json!({"connector": name, "signal": id})),
        )
            .into_response(),
    }
}

/// `PUT /connectors/{name}/config` writes the file; the other PUTs are actions.
async fn put_any(
    state: State<Api>,
    path: Path<(String, String)>,
    body: Option<Json<serde_json::Value>>,
) -> Response {
    if path.0 .1 == "config" {
        connect_routes::put_config(state, path, body).await
    } else {
        connect_routes::put_action(state, path).await
    }
}

async fn root() -> Response {
    connect::root()
}

async fn plugins() -> Response {
    connect::plugins()
}

async fn metrics(State(api): State<Api>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        api.runtime.metrics_text(),
    )
        .into_response()
}

/// Connections served at once; more wait in the listen backlog until one ends.
const MAX_CONNECTIONS: usize = 64;
/// A request's headers must arrive within this long, or the connection is closed.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest life of one connection (keep-alive included): an idle or slow client cannot hold
/// a connection, and with it a slot of [`MAX_CONNECTIONS`], for longer.
const CONNECTION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(120);

/// Starts serving the admin API; an error when its address cannot be bound (the daemon then
/// exits rather than run without the API it was configured with). Connections are capped,
/// headers must arrive in time and connections do not live forever, so the API cannot be
/// exhausted before authentication.
pub async fn spawn(runtime: Arc<Runtime>, config: ApiConfig) -> Result<(), String> {
    let api = Api {
        runtime,
        token: config.token.as_ref().map(|t| t.expose().to_string()),
        worker_id: config.listen.clone(),
        allow_config_writes: config.allow_config_writes,
    };
    let app = Router::new()
        .route("/", get(root))
        .route("/connector-plugins", get(plugins))
        .route("/metrics", get(metrics))
        .route("/sluice/connectors", get(connectors))
        .route("/sluice/connectors/{name}", get(connector))
        .route(
            "/connectors",
            get(connect_routes::list).post(connect_routes::create),
        )
        .route(
            "/connectors/{name}",
            get(connect_routes::info).delete(connect_routes::delete),
        )
        .route(
            "/connectors/{name}/{action}",
            post(action)
                .get(connect_routes::view)
                .put(put_any)
                .patch(connect_routes::alter_offsets)
                .delete(connect_routes::reset_offsets),
        )
        .route(
            "/connectors/{name}/tasks/{task}/status",
            get(connect_routes::task_status),
        )
        .route(
            "/connectors/{name}/tasks/{task}/restart",
            post(connect_routes::task_restart),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            api.clone(),
            require_token,
        ))
        // Probes need no token.
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(api);
    let tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        (None, None) => None,
        _ => return Err(
            "api.tls_cert_file and api.tls_key_file go together: set both for HTTPS, or neither"
                .into(),
        ),
    };
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen for the admin API on {}: {e}; change api.listen or stop what uses that address",
                config.listen
            )
        })?;
    tracing::info!(listen = %config.listen, https = tls.is_some(), "admin API listening");
    let loopback = listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
    if !loopback && config.token.is_none() {
        tracing::warn!(listen = %config.listen, "the admin API listens beyond this machine without a token: anyone who can reach it may pause, resume and restart connectors; set api.token or listen on 127.0.0.1");
    }
    tokio::spawn(serve(listener, app, tls));
    Ok(())
}

/// The TLS side of HTTPS: the certificate chain and key from PEM files.
fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    let config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(
            crate::tls::certs(cert, "api.tls_cert_file")?,
            crate::tls::key(key, "api.tls_key_file")?,
        )
        .map_err(|e| format!("api.tls_cert_file / api.tls_key_file: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves HTTP/1.1 on one connection, with the header timeout.
async fn serve_one<IO, S>(io: IO, service: S)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
}

/// Accepts connections, at most [`MAX_CONNECTIONS`] at a time, each served with a header
/// timeout and a bounded lifetime.
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, for instance: wait instead of spinning.
                tracing::warn!(error = %e, "admin API cannot accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let tls = tls.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, async move {
                match tls {
                    // The handshake counts against the header timeout.
                    Some(acceptor) => {
                        match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(tls_stream)) => serve_one(tls_stream, service).await,
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, "admin API TLS handshake failed")
                            }
                            Err(_) => tracing::debug!("admin API TLS handshake timed out"),
                        }
                    }
                    None => serve_one(stream, service).await,
                }
            })
            .await;
            drop(slot);
        });
    }
}
