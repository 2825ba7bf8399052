//! The admin HTTP API: health, readiness, connector status and control, Prometheus metrics.
//!
//! ```text
//! GET  /health                      process alive (never needs the token)
//! GET  /ready                       every connector snapshotting or streaming, none failed
//!                                   (never needs the token: a probe)
//! GET  /connectors                  status of every connector, and connector files in error
//! GET  /connectors/{name}           one connector's status
//! POST /connectors/{name}/pause     stop publishing (changes stay in the slot)
//! POST /connectors/{name}/resume    publish again
//! POST /connectors/{name}/restart   restart from the committed position
//! GET  /metrics                     Prometheus text format
//!
//! Kafka Connect's shapes (see [`connect`]):
//! GET  /                            version
//! GET  /connector-plugins           the sources
//! GET  /connectors/{name}/status    Connect's status (RUNNING, PAUSED, FAILED, ...)
//! GET  /connectors/{name}/config    the file's keys as Connect's flat map, secrets masked
//! GET  /connectors/{name}/tasks     the one task with that config
//! PUT  /connectors/{name}/pause     202, as Connect
//! PUT  /connectors/{name}/resume    202, as Connect
//! ```

mod connect;

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

/// Pauses or resumes a connector: `None` for another action, else whether it exists.
fn pause_or_resume(runtime: &Runtime, name: &str, action: &str) -> Option<bool> {
    match action {
        "pause" => Some(runtime.set_paused(name, true)),
        "resume" => Some(runtime.set_paused(name, false)),
        _ => None,
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
            json!({"error": format!("no connector named \"{name}\"; GET /connectors lists them")}),
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

async fn action(State(api): State<Api>, Path((name, action)): Path<(String, String)>) -> Response {
    let done = match (pause_or_resume(&api.runtime, &name, &action), action.as_str()) {
        (Some(done), _) => done,
        (None, "restart") => api.runtime.restart(&name),
        (None, other) => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"error": format!("unknown action \"{other}\"; use pause, resume or restart")})),
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

/// `GET /connectors/{name}/{view}`: Connect's `status`.
async fn connect_view(
    State(api): State<Api>,
    Path((name, view)): Path<(String, String)>,
) -> Response {
    let Some(s) = api.runtime.status(&name) else {
        return connect::error(StatusCode::NOT_FOUND, format!("Connector {name} not found"));
    };
    let config = || {
        std::fs::read_to_string(&s.file)
            .ok()
            .and_then(|t| connect::config(&t))
    };
    match view.as_str() {
        "status" => Json(connect::status(&s, &api.worker_id)).into_response(),
        "config" => match config() {
            Some(c) => Json(c).into_response(),
            None => connect::error(
                StatusCode::CONFLICT,
                format!("the file of connector {name} cannot be read now"),
            ),
        },
        "tasks" => match config() {
            Some(c) => Json(connect::tasks(&name, c)).into_response(),
            None => connect::error(
                StatusCode::CONFLICT,
                format!("the file of connector {name} cannot be read now"),
            ),
        },
        other => connect::error(
            StatusCode::NOT_FOUND,
            format!("no view \"{other}\" of a connector; status, config and tasks are served"),
        ),
    }
}

/// `PUT /connectors/{name}/pause|resume`: Connect's 202 with no body.
async fn connect_put(
    State(api): State<Api>,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let done = match pause_or_resume(&api.runtime, &name, &action) {
        Some(done) => done,
        None => {
            return connect::error(
                StatusCode::NOT_FOUND,
                format!("no action \"{action}\" by PUT; use pause or resume"),
            )
        }
    };
    if !done {
        return connect::error(StatusCode::NOT_FOUND, format!("Connector {name} not found"));
    }
    StatusCode::ACCEPTED.into_response()
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
    };
    let app = Router::new()
        .route("/", get(root))
        .route("/connector-plugins", get(plugins))
        .route("/metrics", get(metrics))
        .route("/connectors", get(connectors))
        .route("/connectors/{name}", get(connector))
        .route(
            "/connectors/{name}/{action}",
            post(action).get(connect_view).put(connect_put),
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
