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
mod console;
mod debezium_writes;
pub mod probe;

/// The file name of a connector (`<name>.toml`); refused when the name cannot name a file.
pub fn connector_file_name(name: &str) -> Result<String, String> {
    writes::file_name(name).map_err(|e| e.0)
}
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
    /// No token and a listener beyond loopback: anyone who reaches the API could act, so
    /// it only answers reads.
    read_only: bool,
    /// `[api] ready_max_retry_s`.
    ready_max_retry_s: u64,
    /// The console's samples of each connector.
    history: console::History,
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
    if !api.authorized(request.headers()) {
        return unauthorized();
    }
    let read = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    if api.read_only && !read {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "the admin API listens beyond this machine without a token, so it only answers reads: set api.token (and send Authorization: Bearer <token>) to pause, stop, signal, write configs or offsets"})),
        )
            .into_response();
    }
    next.run(request).await
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

/// A probe: the status code says it all. Without the token (when one is set) the body is
/// only counts; with it, every connector's state.
async fn ready(State(api): State<Api>, headers: HeaderMap) -> Response {
    let ready = api.runtime.ready_within(api.ready_max_retry_s);
    let statuses = api.runtime.statuses();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let not_ready = statuses
        .iter()
        .filter(|s| {
            !s.state.is_ready()
                || s.retrying_for_s(crate::status::now_ms())
                    .is_some_and(|r| r > api.ready_max_retry_s)
        })
        .count();
    let mut body = json!({"ready": ready, "count": statuses.len(), "not_ready": not_ready});
    if api.authorized(&headers) {
        let states: serde_json::Map<String, serde_json::Value> = statuses
            .into_iter()
            .map(|s| (s.name.clone(), json!(s.state)))
            .collect();
        body["connectors"] = json!(states);
    }
    (status, Json(body)).into_response()
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
        "signals" => return signal(api, &name, &body).await,
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

/// How long `POST .../signals` waits for the source to record a signal.
const SIGNAL_RECORD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `POST /connectors/{name}/signals`: a Debezium signal (`{"id", "type", "data"}`) for the
/// connector's source. 202 with `"recorded": true` once the source has stored what it asks
/// for (a stop, restart or rebalance after that keeps it), or `"recorded": false` when it
/// is still queued after a while (a connector still snapshotting takes it when it streams);
/// 503 when the connector stopped before recording it (nothing was done: send it again).
async fn signal(api: &Api, name: &str, body: &[u8]) -> Response {
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
    let unavailable = |message: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error_code": 503, "message": message})),
        )
            .into_response()
    };
    let recorded = match api.runtime.signal(name, signal) {
        None => return no_such(name),
        Some(None) => {
            return unavailable(format!(
                "connector {name} has {} signals waiting; try again later",
                crate::signal::INBOX_LIMIT
            ))
        }
        Some(Some(rx)) => rx,
    };
    match tokio::time::timeout(SIGNAL_RECORD_WAIT, recorded).await {
        Ok(Ok(())) => (
            StatusCode::ACCEPTED,
            Json(json!({"connector": name, "signal": id, "recorded": true})),
        )
            .into_response(),
        Ok(Err(_)) => unavailable(format!(
            "connector {name} stopped before it recorded signal {id} (nothing was done); send it again to the daemon that runs it"
        )),
        Err(_) => (
            StatusCode::ACCEPTED,
            Json(json!({"connector": name, "signal": id, "recorded": false,
                        "message": "queued: the connector takes it when it streams"})),
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
/// Connections served at once (each costs a task and a few KiB; the bound keeps file
/// descriptors for the connectors).
const MAX_CONNECTIONS: usize = 512;
/// Connections one address may hold at once, so one client cannot take every slot.
const MAX_PER_PEER: usize = 64;
/// Extra connections kept for probes when the others are taken: they answer `/health` and
/// `/ready` only, and must send their request within [`PROBE_HEADER_TIMEOUT`].
const PROBE_CONNECTIONS: usize = 32;
/// A request's headers must arrive within this long, or the connection is closed.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The same for a probe-only connection.
const PROBE_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest life of one connection (keep-alive included): an idle or slow client cannot hold
/// a connection, and with it a slot of [`MAX_CONNECTIONS`], for longer.
const CONNECTION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(120);

/// Starts serving the admin API; an error when its address cannot be bound (the daemon then
/// exits rather than run without the API it was configured with). Connections are capped,
/// headers must arrive in time and connections do not live forever, so the API cannot be
/// exhausted before authentication.
pub async fn spawn(runtime: Arc<Runtime>, config: ApiConfig) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen for the admin API on {}: {e}; change api.listen or stop what uses that address",
                config.listen
            )
        })?;
    let loopback = listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
    let api = Api {
        runtime: runtime.clone(),
        token: config.token.as_ref().map(|t| t.expose().to_string()),
        worker_id: config.listen.clone(),
        allow_config_writes: config.allow_config_writes,
        read_only: !loopback && config.token.is_none(),
        ready_max_retry_s: config.ready_max_retry_s,
        history: console::History::start(runtime.clone()),
    };
    let app = Router::new()
        .route("/", get(root))
        .route("/connector-plugins", get(plugins))
        .route("/metrics", get(metrics))
        .route("/sluice/connectors", get(connectors))
        .route("/sluice/connectors/{name}", get(connector))
        .route("/sluice/connectors/{name}/tables", get(console::tables))
        .route("/sluice/history", get(console::history))
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
        // Probes need no token; nor do the console's files (its data calls do).
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/ui", get(console::page))
        .route("/ui/app.js", get(console::script))
        .route("/ui/app.css", get(console::style))
        .with_state(api.clone());
    // What a connection beyond the caps is served: the probes only.
    let probes = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .fallback(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "too many connections to the admin API (from this address, or in all); try again"})),
            )
        })
        .with_state(api);
    let tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        (None, None) => None,
        _ => return Err(
            "api.tls_cert_file and api.tls_key_file go together: set both for HTTPS, or neither"
                .into(),
        ),
    };
    tracing::info!(listen = %config.listen, https = tls.is_some(), "admin API listening");
    if !loopback && config.token.is_none() {
        tracing::warn!(listen = %config.listen, "the admin API listens beyond this machine without a token: it answers reads only (status, metrics); set api.token to pause, stop, signal and write through it, or listen on 127.0.0.1");
    }
    tokio::spawn(serve(listener, app, probes, tls));
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

/// Serves HTTP/1.1 on one connection, with a header timeout.
async fn serve_one<IO, S>(io: IO, service: S, header_timeout: std::time::Duration)
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
        .header_read_timeout(header_timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
}

/// Connections held per address; a [`PeerSlot`] gives its count back when dropped.
#[derive(Clone, Default)]
struct Peers(Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>);

struct PeerSlot {
    peers: Peers,
    ip: std::net::IpAddr,
}

impl Peers {
    /// A slot for `ip`, unless it holds [`MAX_PER_PEER`] connections already.
    fn take(&self, ip: std::net::IpAddr) -> Option<PeerSlot> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_default();
        if *n >= MAX_PER_PEER {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut map = self.peers.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Accepts every connection at once (a slow client never holds the accept loop): at most
/// [`MAX_CONNECTIONS`] in all and [`MAX_PER_PEER`] per address are served fully; beyond
/// that, [`PROBE_CONNECTIONS`] more answer the probes only, with a short header timeout;
/// beyond that a connection is closed. So idle or half-open connections cannot starve
/// `/health` and `/ready`, and one address cannot starve the others.
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    probes: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let probe_slots = Arc::new(tokio::sync::Semaphore::new(PROBE_CONNECTIONS));
    let peers = Peers::default();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, for instance: wait instead of spinning.
                tracing::warn!(error = %e, "admin API cannot accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
        };
        let full = peers
            .take(peer.ip())
            .and_then(|p| Some((p, slots.clone().try_acquire_owned().ok()?)));
        let (router, header_timeout, lifetime, slot) = match full {
            Some((peer_slot, slot)) => (
                app.clone(),
                HEADER_READ_TIMEOUT,
                CONNECTION_LIFETIME,
                (Some(peer_slot), slot),
            ),
            None => match probe_slots.clone().try_acquire_owned() {
                Ok(slot) => (
                    probes.clone(),
                    PROBE_HEADER_TIMEOUT,
                    PROBE_HEADER_TIMEOUT * 5,
                    (None, slot),
                ),
                Err(_) => {
                    drop(stream);
                    continue;
                }
            },
        };
        let service = hyper_util::service::TowerToHyperService::new(router);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(lifetime, async move {
                match tls {
                    // The handshake counts against the header timeout.
                    Some(acceptor) => {
                        match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(tls_stream)) => {
                                serve_one(tls_stream, service, header_timeout).await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, "admin API TLS handshake failed")
                            }
                            Err(_) => tracing::debug!("admin API TLS handshake timed out"),
                        }
                    }
                    None => serve_one(stream, service, header_timeout).await,
                }
            })
            .await;
            drop(slot);
        });
    }
}
