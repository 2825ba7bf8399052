//! Debezium's signals: operator requests (start, stop, pause or resume an incremental
//! snapshot; write a log line) that reach a running connector either as rows inserted into
//! a signal table (read from the change stream: Debezium's "source" channel) or through the
//! admin API (`POST /connectors/{name}/signals`). Both carry Debezium's three fields: `id`,
//! `type` and `data` (JSON). A leaf module: the API, the runtime and the sources use it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::Value as Json;

/// One signal.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// The sender's id (echoed in logs).
    pub id: String,
    /// What it asks for.
    pub kind: SignalKind,
}

/// What a signal asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalKind {
    /// `execute-snapshot` (incremental): the tables (names or `re:` patterns), and
    /// per-table extra `WHERE` conditions.
    ExecuteSnapshot {
        /// `schema.table` names (PostgreSQL) / `db.table` (MySQL), or `re:<regex>`.
        collections: Vec<String>,
        /// (table name, SQL condition) pairs: only matching rows are read.
        conditions: Vec<(String, String)>,
    },
    /// `stop-snapshot`: the named tables (all when empty) leave the incremental snapshot.
    StopSnapshot {
        /// As in `ExecuteSnapshot`; empty means every table.
        collections: Vec<String>,
    },
    /// `pause-snapshot`.
    PauseSnapshot,
    /// `resume-snapshot`.
    ResumeSnapshot,
    /// `log`: the message goes to the daemon's log.
    Log {
        /// The text to log.
        message: String,
    },
}

impl Signal {
    /// A signal from its three fields (a signal table's row); `data` is JSON text (absent or
    /// empty for types that need none). The error says what is wrong, for the log.
    pub fn parse(id: &str, kind: &str, data: Option<&str>) -> Result<Signal, String> {
        let data = match data.map(str::trim).filter(|d| !d.is_empty()) {
            Some(text) => serde_json::from_str::<Json>(text)
                .map_err(|e| format!("signal {id}: `data` is not JSON ({e}): {text}"))?,
            None => Json::Null,
        };
        Signal::from_parts(id, kind, &data)
    }

    /// A signal from the admin API's body: `{"id": ..., "type": ..., "data": {...}}` (`data`
    /// may also be JSON text, as a signal table holds it; `id` defaults to a generated one).
    pub fn from_json(body: &Json) -> Result<Signal, String> {
        let id = match body.get("id") {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Number(n)) => n.to_string(),
            None | Some(Json::Null) => format!(
                "api-{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_micros())
                    .unwrap_or_default()
            ),
            Some(other) => return Err(format!("`id` must be a string, not {other}")),
        };
        let Some(kind) = body.get("type").and_then(Json::as_str) else {
            return Err("the signal has no `type` (one of execute-snapshot, stop-snapshot, pause-snapshot, resume-snapshot, log)".into());
        };
        match body.get("data") {
            Some(Json::String(text)) => Signal::parse(&id, kind, Some(text)),
            Some(data) => Signal::from_parts(&id, kind, data),
            None => Signal::from_parts(&id, kind, &Json::Null),
        }
    }

    fn from_parts(id: &str, kind: &str, data: &Json) -> Result<Signal, String> {
        let kind = match kind {
            "execute-snapshot" => {
                snapshot_type(id, data)?;
                let collections = collections(id, data)?;
                if collections.is_empty() {
                    return Err(format!(
                        "signal {id}: execute-snapshot needs `data-collections` (a list of tables)"
                    ));
                }
                SignalKind::ExecuteSnapshot {
                    collections,
                    conditions: conditions(id, data)?,
                }
            }
            "stop-snapshot" => {
                snapshot_type(id, data)?;
                SignalKind::StopSnapshot {
                    collections: collections(id, data)?,
                }
            }
            "pause-snapshot" => SignalKind::PauseSnapshot,
            "resume-snapshot" => SignalKind::ResumeSnapshot,
            "log" => SignalKind::Log {
                message: match data.get("message") {
                    Some(Json::String(m)) => m.clone(),
                    _ => return Err(format!("signal {id}: log needs `data.message` (text)")),
                },
            },
            other => {
                return Err(format!(
                    "signal {id}: unknown type {other:?} (known: execute-snapshot, stop-snapshot, pause-snapshot, resume-snapshot, log)"
                ))
            }
        };
        Ok(Signal {
            id: id.to_string(),
            kind,
        })
    }
}

/// Only incremental snapshots are started by signal (`type` absent means incremental).
fn snapshot_type(id: &str, data: &Json) -> Result<(), String> {
    match data.get("type").and_then(Json::as_str) {
        None => Ok(()),
        Some(t) if t.eq_ignore_ascii_case("incremental") => Ok(()),
        Some(t) => Err(format!(
            "signal {id}: snapshot type {t:?} is not supported (only \"incremental\")"
        )),
    }
}

fn collections(id: &str, data: &Json) -> Result<Vec<String>, String> {
    match data.get("data-collections") {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).ok_or_else(|| {
                    format!("signal {id}: `data-collections` must hold table names, not {i}")
                })
            })
            .collect(),
        Some(other) => Err(format!(
            "signal {id}: `data-collections` must be a list of table names, not {other}"
        )),
    }
}

fn conditions(id: &str, data: &Json) -> Result<Vec<(String, String)>, String> {
    let Some(list) = data.get("additional-conditions") else {
        return Ok(Vec::new());
    };
    let Some(list) = list.as_array() else {
        return Err(format!(
            "signal {id}: `additional-conditions` must be a list of {{\"data-collection\", \"filter\"}}"
        ));
    };
    list.iter()
        .map(|c| {
            match (
                c.get("data-collection").and_then(Json::as_str),
                c.get("filter").and_then(Json::as_str),
            ) {
                (Some(t), Some(f)) => Ok((t.to_string(), f.to_string())),
                _ => Err(format!(
                    "signal {id}: each additional condition needs `data-collection` and `filter` (text): {c}"
                )),
            }
        })
        .collect()
}

/// Signals waiting for a connector's source (sent through the API). Kept by the connector
/// across restarts of its pipeline; bounded.
///
/// A signal sent with [`push_acked`](Self::push_acked) is acknowledged once the source has
/// recorded what it asks for in a position handed to the pipeline ([`recorded`]
/// (Self::recorded)), so a stop or a rebalance after that keeps it; a run that ends before
/// drops the acknowledgement ([`reset_taken`](Self::reset_taken)) and the sender is told to
/// send it again.
#[derive(Clone, Default)]
pub struct SignalInbox {
    queue: Arc<Mutex<VecDeque<Queued>>>,
    /// Acknowledgements of signals taken by the source and not yet recorded.
    taken: Arc<Mutex<Vec<Ack>>>,
    ready: Arc<tokio::sync::Notify>,
}

type Ack = tokio::sync::oneshot::Sender<()>;

/// A queued signal and its acknowledgement, if its sender waits for one.
type Queued = (Signal, Option<Ack>);

/// Signals a connector holds at most before refusing more.
pub const INBOX_LIMIT: usize = 1000;

impl SignalInbox {
    /// Queues a signal; `false` when the inbox is full.
    pub fn push(&self, signal: Signal) -> bool {
        self.queue_one(signal, None)
    }

    /// Queues a signal and returns what resolves once the source recorded it (dropped when
    /// the run that took it ends first); `None` when the inbox is full.
    pub fn push_acked(&self, signal: Signal) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.queue_one(signal, Some(tx)).then_some(rx)
    }

    fn queue_one(&self, signal: Signal, ack: Option<Ack>) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= INBOX_LIMIT {
            return false;
        }
        q.push_back((signal, ack));
        drop(q);
        self.ready.notify_one();
        true
    }

    /// The next signal, waiting for one.
    pub async fn next(&self) -> Signal {
        loop {
            let next = self
                .queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            if let Some((s, ack)) = next {
                if let Some(ack) = ack {
                    self.taken
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(ack);
                }
                return s;
            }
            self.ready.notified().await;
        }
    }

    /// The source recorded what the signals taken so far ask for: they are acknowledged.
    pub fn recorded(&self) {
        for ack in std::mem::take(&mut *self.taken.lock().unwrap_or_else(|e| e.into_inner())) {
            let _ = ack.send(());
        }
    }

    /// A run starts: signals an earlier run took without recording them are not
    /// acknowledged (their senders are told to send them again).
    pub fn reset_taken(&self) {
        self.taken.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Whether a table name (`schema.table`) is one a signal's list names (exactly, or by a
/// `re:` pattern matched against the whole name).
pub fn names_table(collections: &[String], table: &str) -> bool {
    collections.iter().any(|c| match c.strip_prefix("re:") {
        Some(pattern) => regex::Regex::new(&format!("^(?:{pattern})$"))
            .map(|r| r.is_match(table))
            .unwrap_or(false),
        None => c == table,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An API signal is acknowledged only once recorded; a run that ends before, or a
    /// connector dropped with it queued, tells the sender (it used to answer 202 and lose it).
    #[tokio::test]
    async fn api_signals_are_acknowledged_only_once_recorded() {
        let signal = || Signal::parse("1", "log", Some(r#"{"message": "x"}"#)).unwrap();
        let inbox = SignalInbox::default();
        let mut rx = inbox.push_acked(signal()).unwrap();
        inbox.next().await;
        assert!(rx.try_recv().is_err(), "taken is not recorded");
        inbox.recorded();
        assert!(rx.await.is_ok());

        let rx = inbox.push_acked(signal()).unwrap();
        inbox.next().await;
        inbox.reset_taken();
        assert!(rx.await.is_err(), "a run that ended without recording it");

        let rx = inbox.push_acked(signal()).unwrap();
        drop(inbox);
        assert!(rx.await.is_err(), "the connector went away with it queued");
    }

    #[test]
    fn table_rows_parse() {
        let s = Signal::parse(
            "1",
            "execute-snapshot",
            Some(r#"{"data-collections": ["public.a", "re:public\\.b.*"], "type": "incremental", "additional-conditions": [{"data-collection": "public.a", "filter": "id > 10"}]}"#),
        )
        .unwrap();
        assert_eq!(
            s.kind,
            SignalKind::ExecuteSnapshot {
                collections: vec!["public.a".into(), "re:public\\.b.*".into()],
                conditions: vec![("public.a".into(), "id > 10".into())],
            }
        );
        assert_eq!(
            Signal::parse("2", "log", Some(r#"{"message": "hello"}"#))
                .unwrap()
                .kind,
            SignalKind::Log {
                message: "hello".into()
            }
        );
        assert_eq!(
            Signal::parse("3", "pause-snapshot", None).unwrap().kind,
            SignalKind::PauseSnapshot
        );
        assert_eq!(
            Signal::parse("4", "stop-snapshot", Some("")).unwrap().kind,
            SignalKind::StopSnapshot {
                collections: vec![]
            }
        );
    }

    #[test]
    fn bad_rows_say_what_is_wrong() {
        let e = Signal::parse("1", "execute-snapshot", Some("{not json")).unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
        let e = Signal::parse("1", "explode", None).unwrap_err();
        assert!(e.contains("unknown type \"explode\""), "{e}");
        let e = Signal::parse("1", "execute-snapshot", Some("{}")).unwrap_err();
        assert!(e.contains("data-collections"), "{e}");
        let e = Signal::parse(
            "1",
            "execute-snapshot",
            Some(r#"{"data-collections": ["a.b"], "type": "blocking"}"#),
        )
        .unwrap_err();
        assert!(e.contains("not supported"), "{e}");
        let e = Signal::parse("1", "log", Some("{}")).unwrap_err();
        assert!(e.contains("data.message"), "{e}");
    }

    #[test]
    fn api_bodies_parse() {
        let s = Signal::from_json(&json!({
            "id": "x", "type": "execute-snapshot", "data": {"data-collections": ["public.t"]}
        }))
        .unwrap();
        assert_eq!(s.id, "x");
        let s = Signal::from_json(&json!({
            "type": "log", "data": "{\"message\": \"m\"}"
        }))
        .unwrap();
        assert!(s.id.starts_with("api-"));
        assert!(Signal::from_json(&json!({"id": "x"})).is_err());
    }

    #[test]
    fn names_match_exactly_or_by_pattern() {
        let c = vec!["public.a".to_string(), "re:s\\.t[0-9]+".to_string()];
        assert!(names_table(&c, "public.a"));
        assert!(!names_table(&c, "public.ab"));
        assert!(names_table(&c, "s.t12"));
        assert!(!names_table(&c, "s.t12x"));
    }

    #[tokio::test]
    async fn inbox_keeps_order_and_is_bounded() {
        let inbox = SignalInbox::default();
        let s = |i: usize| Signal {
            id: i.to_string(),
            kind: SignalKind::PauseSnapshot,
        };
        for i in 0..INBOX_LIMIT {
            assert!(inbox.push(s(i)));
        }
        assert!(!inbox.push(s(0)));
        assert_eq!(inbox.next().await.id, "0");
        assert_eq!(inbox.next().await.id, "1");
    }
}
