//! The web console (`GET /ui`): one page served from files compiled into the binary, and the
//! two reads it needs beyond the API's own — each connector's recent history (records
//! published, lag) for the sparklines, sampled in memory, and its per-table counts.
//!
//! The page's data calls carry the token in an `Authorization` header (the page keeps it in
//! the browser's session storage, never in a URL), so the static files need none.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::Api;
use crate::runtime::Runtime;

/// How often the history is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Samples kept per connector: 15 minutes.
const SAMPLES_KEPT: usize = 180;

const PAGE: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/app.css");

/// One sample of a connector.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Sample {
    /// Milliseconds since the epoch.
    t: i64,
    /// Records acknowledged so far.
    records: u64,
    /// Commit-to-acknowledgement lag of the last event.
    lag_ms: Option<i64>,
    /// Slot or binlog lag in bytes.
    lag_bytes: Option<i64>,
}

/// Each connector's recent samples.
#[derive(Clone, Default)]
pub(super) struct History {
    samples: Arc<Mutex<BTreeMap<String, VecDeque<Sample>>>>,
}

impl History {
    /// Starts sampling `runtime` every few seconds (for as long as the process runs).
    pub(super) fn start(runtime: Arc<Runtime>) -> History {
        let history = History::default();
        let h = history.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tick.tick().await;
                h.sample(&runtime);
            }
        });
        history
    }

    fn sample(&self, runtime: &Runtime) {
        let t = crate::source::now_us() / 1000;
        let statuses = runtime.statuses();
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.retain(|name, _| statuses.iter().any(|s| &s.name == name));
        for s in statuses {
            let kept = samples.entry(s.name.clone()).or_default();
            if kept.len() == SAMPLES_KEPT {
                kept.pop_front();
            }
            kept.push_back(Sample {
                t,
                records: s.records_published,
                lag_ms: s.lag_ms,
                lag_bytes: runtime.metrics().lag_bytes(&s.name),
            });
        }
    }
}

/// `GET /ui`
pub(super) async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}

/// `GET /ui/app.js`
pub(super) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

/// `GET /ui/app.css`
pub(super) async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// `GET /sluice/history`: connector → samples, oldest first.
pub(super) async fn history(State(api): State<Api>) -> Response {
    let samples = api
        .history
        .samples
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Json(json!({"every_ms": SAMPLE_EVERY.as_millis() as u64, "connectors": samples}))
        .into_response()
}

/// `GET /sluice/connectors/{name}/tables`: events read and records published per table.
pub(super) async fn tables(State(api): State<Api>, Path(name): Path<String>) -> Response {
    if api.runtime.status(&name).is_none() {
        return super::no_such(&name);
    }
    let tables: Vec<_> = api
        .runtime
        .metrics()
        .table_counts(&name)
        .into_iter()
        .map(|(table, read, published)| json!({"table": table, "events_read": read, "records_published": published}))
        .collect();
    Json(json!({"connector": name, "tables": tables})).into_response()
}
