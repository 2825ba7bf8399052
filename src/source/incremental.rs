//! What both sources' incremental snapshots share (Debezium's, after Netflix's DBLog): the
//! progress a signal asks for, the chunk window that drops rows the stream changed while
//! the chunk was read, and the progress after a chunk. Each source reads chunks and places
//! its watermarks its own way (PostgreSQL: logical decoding messages in the WAL; MySQL: the
//! binlog position before and after the read).

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::{ChangeEvent, Op, TableId, TableSchema, Value};
use crate::position::IncrementalProgress;
use crate::signal::{names_table, Signal, SignalKind};

/// A chunk read and held until the stream reaches its closing watermark.
pub struct Window {
    /// The chunk's watermark id (PostgreSQL) or a label (MySQL).
    pub id: String,
    /// The table read.
    pub table: TableId,
    /// The opening watermark was reached: stream changes now supersede chunk rows.
    pub open: bool,
    /// The columns the chunk was read by (the primary key, or `key_columns`), by name: a
    /// stream event's shape may place them elsewhere.
    key: Vec<String>,
    rows: Vec<Option<ChangeEvent>>,
    by_key: HashMap<String, usize>,
    /// The key of the chunk's last row, each key column as text.
    pub last_key: Vec<Option<String>>,
    /// The chunk was full: the table may hold more rows.
    pub full: bool,
}

/// A row's key (the values of the columns `key`) as one comparable string (`None` when a
/// key column is missing).
pub fn key_of(key: &[usize], values: &[Value]) -> Option<String> {
    let mut out = String::new();
    for i in key {
        out.push_str(&format!("{:?}\u{1f}", values.get(*i)?));
    }
    Some(out)
}

/// The columns a table's chunks are read by: its primary key, else the columns
/// `key_columns` names for it (which must then identify a row); an error saying what to do
/// when neither.
pub fn chunk_key(
    connector: &crate::config::ConnectorConfig,
    table: &TableSchema,
) -> Result<Vec<usize>, String> {
    if !table.key.is_empty() {
        return Ok(table.key.clone());
    }
    let named = connector.key_columns.iter().find(|(pattern, _)| {
        crate::config::patterns::TableSelector::parse(pattern)
            .is_ok_and(|s| s.matches(&table.id.schema, &table.id.name))
    });
    let Some((_, names)) = named else {
        return Err(format!(
            "table {} has no primary key: name a unique key for it in key_columns to snapshot it incrementally",
            table.id
        ));
    };
    names
        .iter()
        .map(|n| {
            table
                .columns
                .iter()
                .position(|c| &c.name == n)
                .ok_or_else(|| {
                    format!(
                        "key_columns names \"{n}\" for table {}, which has no such column",
                        table.id
                    )
                })
        })
        .collect()
}

impl Window {
    /// A window over `rows` (read in key order; `chunk_size` asked for).
    pub fn new(
        id: String,
        table: &TableSchema,
        key: Vec<usize>,
        rows: Vec<ChangeEvent>,
        last_key: Vec<Option<String>>,
        chunk_size: usize,
    ) -> Window {
        let mut by_key = HashMap::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            if let Some(k) = r.after.as_deref().and_then(|a| key_of(&key, a)) {
                by_key.insert(k, i);
            }
        }
        Window {
            id,
            table: table.id.clone(),
            key: key.iter().map(|i| table.columns[*i].name.clone()).collect(),
            open: false,
            full: rows.len() >= chunk_size,
            rows: rows.into_iter().map(Some).collect(),
            by_key,
            last_key,
        }
    }

    /// A change the stream publishes: inside the open window, the chunk's row of the same
    /// key is dropped (the stream's event is newer); a truncate drops them all.
    pub fn supersede(&mut self, event: &ChangeEvent) {
        if !self.open {
            return;
        }
        let Some(table) = event.table.as_ref().filter(|t| t.id == self.table) else {
            return;
        };
        let Some(key) = self
            .key
            .iter()
            .map(|n| table.columns.iter().position(|c| &c.name == n))
            .collect::<Option<Vec<usize>>>()
        else {
            return;
        };
        if event.op == Op::Truncate {
            self.rows.iter_mut().for_each(|r| *r = None);
            return;
        }
        for values in [event.before.as_deref(), event.after.as_deref()]
            .into_iter()
            .flatten()
        {
            if let Some(i) = key_of(&key, values).and_then(|k| self.by_key.remove(&k)) {
                self.rows[i] = None;
            }
        }
    }

    /// The rows left to publish, in key order, with their positions: `at(progress)` is the
    /// position where the window closed, carrying `progress`. Only the chunk's last record
    /// carries `next` (the progress after the chunk), the others `before`: a restart after
    /// part of the chunk reads the chunk again rather than lose its rest.
    pub fn into_rows(
        self,
        before: &Option<Arc<IncrementalProgress>>,
        next: &Arc<IncrementalProgress>,
        at: impl Fn(Option<Arc<IncrementalProgress>>) -> crate::position::SourcePosition,
    ) -> Vec<ChangeEvent> {
        let mut rows: Vec<ChangeEvent> = self.rows.into_iter().flatten().collect();
        let last = rows.len().saturating_sub(1);
        for (i, row) in rows.iter_mut().enumerate() {
            row.position = at(if i == last {
                Some(next.clone())
            } else {
                before.clone()
            });
        }
        rows
    }
}

/// Rows per chunk within a byte bound: the rows of a chunk wait in memory until its window
/// closes, so a chunk of `chunk_size` wide rows could hold far more than
/// `max_in_flight_bytes`. A table's first chunk is a small probe; later chunks hold as many
/// rows as half the bound fits at the size rows had so far (never more than `chunk_size`).
#[derive(Debug, Default)]
pub struct ChunkSizer {
    table: String,
    rows: usize,
}

/// Rows of a table's first chunk, before its row size is known.
const PROBE_ROWS: usize = 128;

impl ChunkSizer {
    /// Rows to read in the next chunk of `table`.
    pub fn rows(&mut self, table: &str, chunk_size: usize) -> usize {
        if self.table != table {
            self.table = table.to_string();
            self.rows = chunk_size.min(PROBE_ROWS);
        }
        self.rows.clamp(1, chunk_size.max(1))
    }

    /// A chunk of `rows` rows took about `bytes`: sizes the next one to `budget / 2`.
    pub fn observe(&mut self, rows: usize, bytes: usize, chunk_size: usize, budget: usize) {
        if rows == 0 {
            return;
        }
        let per_row = (bytes / rows).max(1);
        self.rows = (budget / 2 / per_row).clamp(1, chunk_size.max(1));
    }
}

/// About how many bytes a chunk's rows take in memory.
pub fn rows_bytes(rows: &[ChangeEvent]) -> usize {
    rows.iter()
        .map(|e| 256 + crate::event::row_bytes(&e.after))
        .sum()
}

/// The `SELECT` of a chunk of `table`: the rows after the stored last key in the order of
/// `key`, with the signal's extra condition, at most `chunk_size` of them. `ident` quotes
/// as the source's SQL does; `literal` renders a stored key value of a key column (by its
/// index in `table.columns`) as a literal that compares as the column orders.
#[allow(clippy::too_many_arguments)]
pub fn chunk_select(
    table: &TableSchema,
    key: &[usize],
    progress: &IncrementalProgress,
    chunk_size: usize,
    ident: impl Fn(&str) -> String,
    literal: impl Fn(&crate::event::Column, &str) -> String,
    text: impl Fn(&str) -> String,
    allow_filters: bool,
) -> Result<String, String> {
    let cols: Vec<String> = table.columns.iter().map(|c| ident(&c.name)).collect();
    let keys: Vec<String> = key.iter().map(|i| ident(&table.columns[*i].name)).collect();
    let mut conditions = Vec::new();
    if let Some(last) = &progress.last_key {
        let lits: Vec<String> = last
            .iter()
            .zip(key)
            .map(|(v, i)| {
                v.as_deref()
                    .map_or("NULL".to_string(), |v| literal(&table.columns[*i], v))
            })
            .collect();
        conditions.push(format!("({}) > ({})", keys.join(", "), lits.join(", ")));
    }
    if let Some(filter) = progress.conditions.get(&table.id.to_string()) {
        if !allow_filters {
            return Err(format!(
                "the snapshot of {} has a condition ({filter:?}) but [signals] allow_filters is off",
                table.id
            ));
        }
        let parsed = crate::source::filter::parse(filter)
            .map_err(|e| format!("the condition {filter:?} for {}: {e}", table.id))?;
        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        let rendered = crate::source::filter::render(&parsed, &names, &ident, &text)
            .map_err(|e| format!("the condition {filter:?} for {}: {e}", table.id))?;
        conditions.push(format!("({rendered})"));
    }
    Ok(format!(
        "SELECT {} FROM {}.{}{} ORDER BY {} LIMIT {chunk_size}",
        if cols.is_empty() {
            "NULL".to_string()
        } else {
            cols.join(", ")
        },
        ident(&table.id.schema),
        ident(&table.id.name),
        if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        },
        keys.join(", ")
    ))
}

/// The progress after a chunk of the first table was published. A full chunk whose last
/// key is the one it was read after cannot move the snapshot on (the key's literal does not
/// compare as the column orders): an error, never a loop over the same rows.
pub fn after_chunk(
    progress: &IncrementalProgress,
    window: &Window,
) -> Result<IncrementalProgress, String> {
    let mut next = progress.clone();
    next.chunks += 1;
    if window.full {
        if progress.last_key.as_ref() == Some(&window.last_key) {
            return Err(format!(
                "incremental snapshot of {}: the chunk after key {:?} ended at the same key, so the snapshot cannot move on",
                window.table, window.last_key
            ));
        }
        next.last_key = Some(window.last_key.clone());
    } else {
        let name = next.tables.remove(0);
        next.conditions.remove(&name);
        next.last_key = None;
        tracing::info!(table = %name, "incremental snapshot of table finished");
    }
    Ok(next)
}

pub use super::progress::Report;

/// Shows the tables passed over (table, reason) in the connector's status, the latest
/// [`crate::status::MAX_PASSED_OVER`] kept: an incremental snapshot that left a table out
/// says so where the operator looks, not only in a log line.
pub fn report_passed_over(observer: &crate::status::Observer, pending: &mut Vec<(String, String)>) {
    if pending.is_empty() {
        return;
    }
    let at_ms = crate::status::now_ms();
    observer.update(|s| {
        for (table, reason) in pending.drain(..) {
            s.snapshot_passed_over.push(crate::status::PassedOver {
                table,
                reason,
                at_ms,
            });
        }
        let n = s.snapshot_passed_over.len();
        if n > crate::status::MAX_PASSED_OVER {
            s.snapshot_passed_over
                .drain(..n - crate::status::MAX_PASSED_OVER);
        }
    });
}

/// The progress once the first table turned out empty, gone or unreadable.
pub fn pass_over(progress: &IncrementalProgress) -> IncrementalProgress {
    let mut next = progress.clone();
    let name = next.tables.remove(0);
    next.conditions.remove(&name);
    next.last_key = None;
    next
}

/// What a signal changes.
pub struct SignalOutcome {
    /// The new progress (`None`: no incremental snapshot).
    pub progress: Option<Arc<IncrementalProgress>>,
    /// A chunk should be read next.
    pub want_chunk: bool,
    /// The chunk being read is dropped (its table left the snapshot).
    pub drop_window: bool,
}

/// Applies a signal to the progress; `captured` names the tables the connector captures
/// (`schema.table` / `db.table`). Logged; names of tables not captured are logged as errors
/// and ignored.
pub fn on_signal(
    current: Option<&Arc<IncrementalProgress>>,
    signal: Signal,
    captured: &[String],
    allow_filters: bool,
) -> SignalOutcome {
    let unchanged = || SignalOutcome {
        progress: current.cloned(),
        want_chunk: false,
        drop_window: false,
    };
    let id = signal.id;
    match signal.kind {
        SignalKind::Log { message } => {
            tracing::info!(signal = %id, "{message}");
            unchanged()
        }
        SignalKind::ExecuteSnapshot {
            collections,
            conditions,
        } => {
            if !conditions.is_empty() && !allow_filters {
                tracing::error!(signal = %id, "execute-snapshot with additional-conditions refused: [signals] allow_filters is off (set it to true to let signals choose rows: conditions are parsed, never run as SQL); nothing snapshotted");
                return unchanged();
            }
            for (table, filter) in &conditions {
                if let Err(e) = crate::source::filter::parse(filter) {
                    tracing::error!(signal = %id, table = %table, error = %e, "execute-snapshot refused: its condition is not one Sluice reads (columns, comparisons with literals, AND, OR, NOT, IN, IS NULL, LIKE); nothing snapshotted");
                    return unchanged();
                }
            }
            let mut progress = current
                .map(|p| (**p).clone())
                .unwrap_or(IncrementalProgress {
                    tables: Vec::new(),
                    conditions: Default::default(),
                    last_key: None,
                    chunks: 0,
                    paused: false,
                });
            for c in &collections {
                let matching: Vec<&String> = captured
                    .iter()
                    .filter(|n| names_table(std::slice::from_ref(c), n))
                    .collect();
                if matching.is_empty() {
                    tracing::error!(signal = %id, table = %c, "execute-snapshot names no table this connector captures; ignored");
                }
                for n in matching {
                    if !progress.tables.contains(n) {
                        progress.tables.push(n.clone());
                    }
                }
            }
            for (table, filter) in conditions {
                progress.conditions.insert(table, filter);
            }
            if progress.tables.is_empty() {
                return unchanged();
            }
            tracing::info!(signal = %id, tables = ?progress.tables, "incremental snapshot requested");
            SignalOutcome {
                progress: Some(Arc::new(progress)),
                want_chunk: true,
                drop_window: false,
            }
        }
        SignalKind::StopSnapshot { collections } => {
            let Some(mut progress) = current.map(|p| (**p).clone()) else {
                tracing::warn!(signal = %id, "stop-snapshot: no incremental snapshot is running");
                return unchanged();
            };
            let first = progress.tables.first().cloned();
            if collections.is_empty() {
                progress.tables.clear();
            } else {
                progress.tables.retain(|t| !names_table(&collections, t));
            }
            let drop_window = progress.tables.first() != first.as_ref();
            if drop_window {
                progress.last_key = None;
            }
            tracing::info!(signal = %id, left = ?progress.tables, "incremental snapshot stopped");
            let progress = (!progress.tables.is_empty()).then(|| Arc::new(progress));
            SignalOutcome {
                want_chunk: progress.is_some(),
                progress,
                drop_window,
            }
        }
        SignalKind::PauseSnapshot | SignalKind::ResumeSnapshot => {
            let paused = matches!(signal.kind, SignalKind::PauseSnapshot);
            let Some(mut progress) = current.map(|p| (**p).clone()) else {
                tracing::warn!(signal = %id, "pause/resume-snapshot: no incremental snapshot is running");
                return unchanged();
            };
            progress.paused = paused;
            tracing::info!(signal = %id, paused, "incremental snapshot {}", if paused { "paused" } else { "resumed" });
            SignalOutcome {
                progress: Some(Arc::new(progress)),
                want_chunk: !paused,
                drop_window: false,
            }
        }
    }
}

/// A row inserted into the signal table as a signal (columns `id`, `type`, `data`); the
/// error, for the log, when it is malformed.
pub fn signal_from_row(table: &TableSchema, values: &[Value]) -> Result<Signal, String> {
    let field = |name: &str| {
        table
            .columns
            .iter()
            .position(|c| c.name == name)
            .and_then(|i| match values.get(i) {
                Some(Value::Text(t)) => Some(t.to_string()),
                Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
                Some(Value::Int(n)) => Some(n.to_string()),
                _ => None,
            })
    };
    let id = field("id").unwrap_or_default();
    let Some(kind) = field("type") else {
        return Err(format!("signal {id}: a signal row without a `type`"));
    };
    Signal::parse(&id, &kind, field("data").as_deref())
}

/// Whether `table` is the configured signal table.
pub fn is_signal_table(connector: &crate::config::ConnectorConfig, table: &TableId) -> bool {
    connector
        .signals
        .table
        .as_deref()
        .is_some_and(|t| t == table.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Column, ColumnKind};

    fn progress(tables: &[&str]) -> Arc<IncrementalProgress> {
        Arc::new(IncrementalProgress {
            tables: tables.iter().map(|t| t.to_string()).collect(),
            conditions: Default::default(),
            last_key: Some(vec![Some("5".into())]),
            chunks: 2,
            paused: false,
        })
    }

    fn signal(kind: SignalKind) -> Signal {
        Signal {
            id: "s".into(),
            kind,
        }
    }

    #[test]
    fn signals_change_the_progress() {
        let captured = vec!["a.x".to_string(), "a.y".to_string(), "b.z".to_string()];
        let out = on_signal(
            None,
            signal(SignalKind::ExecuteSnapshot {
                collections: vec!["re:a\\..*".into(), "nope.t".into()],
                conditions: vec![("a.x".into(), "id > 1".into())],
            }),
            &captured,
            true,
        );
        let p = out.progress.unwrap();
        assert_eq!(p.tables, vec!["a.x", "a.y"]);
        assert_eq!(p.conditions["a.x"], "id > 1");
        assert!(out.want_chunk);

        let running = progress(&["a.x", "a.y"]);
        let out = on_signal(
            Some(&running),
            signal(SignalKind::StopSnapshot {
                collections: vec!["a.x".into()],
            }),
            &captured,
            true,
        );
        let p = out.progress.unwrap();
        assert_eq!(p.tables, vec!["a.y"]);
        assert_eq!(p.last_key, None);
        assert!(out.drop_window);

        let out = on_signal(
            Some(&running),
            signal(SignalKind::StopSnapshot {
                collections: vec![],
            }),
            &captured,
            true,
        );
        assert!(out.progress.is_none());

        let out = on_signal(
            Some(&running),
            signal(SignalKind::PauseSnapshot),
            &captured,
            true,
        );
        assert!(out.progress.as_ref().unwrap().paused && !out.want_chunk);
        let out = on_signal(
            out.progress.as_ref(),
            signal(SignalKind::ResumeSnapshot),
            &captured,
            true,
        );
        assert!(!out.progress.as_ref().unwrap().paused && out.want_chunk);
        // A table already queued is not queued twice.
        let out = on_signal(
            Some(&running),
            signal(SignalKind::ExecuteSnapshot {
                collections: vec!["a.y".into(), "b.z".into()],
                conditions: vec![],
            }),
            &captured,
            true,
        );
        assert_eq!(out.progress.unwrap().tables, vec!["a.x", "a.y", "b.z"]);
        // Conditions only when allowed, and only ones the grammar reads.
        let with = |filter: &str, allow: bool| {
            on_signal(
                None,
                signal(SignalKind::ExecuteSnapshot {
                    collections: vec!["a.x".into()],
                    conditions: vec![("a.x".into(), filter.into())],
                }),
                &captured,
                allow,
            )
            .progress
        };
        assert!(with("id > 1", false).is_none());
        assert!(with("1); DROP TABLE a.x; --", true).is_none());
        assert!(with("id > 1", true).is_some());
    }

    fn schema() -> Arc<TableSchema> {
        let col = |name: &str| Column {
            name: name.into(),
            kind: ColumnKind::Int64,
            nullable: false,
            default: None,
            length: None,
        };
        Arc::new(TableSchema {
            id: TableId {
                schema: "a".into(),
                name: "x".into(),
            },
            columns: vec![col("id"), col("v")],
            key: vec![0],
        })
    }

    fn row(t: &Arc<TableSchema>, op: Op, id: i64) -> ChangeEvent {
        let values = Some(vec![Value::Int(id), Value::Int(0)]);
        let (before, after) = match op {
            Op::Delete => (values, None),
            _ => (None, values),
        };
        ChangeEvent {
            op,
            table: Some(t.clone()),
            before,
            after,
            source: crate::event::SourceMeta {
                ts_us: 0,
                snapshot: crate::event::SnapshotMarker::Incremental,
                db: "a".into(),
                detail: crate::event::SourceDetail::Postgres {
                    tx_id: None,
                    lsn: None,
                    last_commit_lsn: None,
                    origin: None,
                    origin_lsn: None,
                },
            },
            message: None,
            transaction: None,
            position: crate::position::SourcePosition::Postgres(crate::position::PgPosition::at(0)),
        }
    }

    #[test]
    fn the_window_drops_what_the_stream_changed_while_open() {
        let t = schema();
        let rows = (1..=4).map(|i| row(&t, Op::Read, i)).collect();
        let mut w = Window::new("w".into(), &t, vec![0], rows, vec![Some("4".into())], 4);
        assert!(w.full);
        // Before the opening watermark: older than the chunk, nothing dropped.
        w.supersede(&row(&t, Op::Update, 1));
        w.open = true;
        w.supersede(&row(&t, Op::Update, 2));
        w.supersede(&row(&t, Op::Delete, 3));
        w.supersede(&row(&t, Op::Create, 9));
        let p0 = progress(&["a.x"]);
        let ids: Vec<i64> = w
            .into_rows(&Some(p0.clone()), &p0, |_| {
                crate::position::SourcePosition::Postgres(crate::position::PgPosition::at(0))
            })
            .iter()
            .map(|r| match r.after.as_ref().unwrap()[0] {
                Value::Int(i) => i,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(ids, vec![1, 4]);
        let p = progress(&["a.x", "a.y"]);
        let short = Window::new(
            "w".into(),
            &t,
            vec![0],
            vec![row(&t, Op::Read, 7)],
            vec![Some("7".into())],
            4,
        );
        let next = after_chunk(&p, &short).unwrap();
        assert_eq!(next.tables, vec!["a.y"]);
        assert_eq!(next.last_key, None);
        assert_eq!(next.chunks, 3);
        // A full chunk that ends at the key it was read after: an error, not a loop.
        let mut at7 = (*progress(&["a.x"])).clone();
        at7.last_key = Some(vec![Some("7".into())]);
        let stuck = Window::new(
            "w".into(),
            &t,
            vec![0],
            vec![row(&t, Op::Read, 7)],
            vec![Some("7".into())],
            1,
        );
        let e = after_chunk(&at7, &stuck).unwrap_err();
        assert!(e.contains("cannot move on"), "{e}");
    }

    #[test]
    fn chunks_are_sized_by_bytes() {
        let mut sizer = ChunkSizer::default();
        // A first chunk probes; then rows of 1 MiB each fit 32 to a 64 MiB bound.
        assert_eq!(sizer.rows("a.x", 1_000_000), PROBE_ROWS);
        sizer.observe(PROBE_ROWS, PROBE_ROWS << 20, 1_000_000, 64 << 20);
        assert_eq!(sizer.rows("a.x", 1_000_000), 32);
        // Small rows: chunk_size is the limit.
        sizer.observe(32, 32 * 100, 1024, 64 << 20);
        assert_eq!(sizer.rows("a.x", 1024), 1024);
        // A row larger than the bound: one at a time.
        sizer.observe(1, 200 << 20, 1024, 64 << 20);
        assert_eq!(sizer.rows("a.x", 1024), 1);
        // Another table starts with a probe again.
        assert_eq!(sizer.rows("a.y", 1024), PROBE_ROWS);
        assert_eq!(sizer.rows("a.z", 10), 10);
    }
}
