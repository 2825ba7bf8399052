//! Incremental snapshots on MySQL / MariaDB while streaming (Debezium's, after DBLog; see
//! `source/incremental.rs`). The watermarks are binlog positions, read-only: the server's
//! binlog end (`SHOW MASTER STATUS`) just before a chunk's `SELECT` (low) and just after it
//! (high). Stream changes of the chunk's table between the two drop the chunk's rows of
//! their keys; when the stream has read up to the high mark, the rest of the chunk is
//! published as `op = "r"`, `source.snapshot = "incremental"`, and the next chunk is read.

use std::sync::Arc;

use mysql_async::prelude::Queryable;

use super::super::catalog::{self, quote};
use super::super::plan::RowDecoder;
use super::super::snapshot::text_row_values;
use super::super::MyError;
use super::{send, Halt, Streamer};
use crate::event::{
    ChangeEvent, Column, ColumnKind, MysqlDetail, Op, SnapshotMarker, SourceDetail, SourceMeta,
    TableId, TableSchema, Value,
};
use crate::position::{IncrementalProgress, MyPosition, SourcePosition};
use crate::signal::{Signal, SignalKind};
use crate::source::incremental::{self as shared, Window};
use crate::source::{now_us, SourceContext, SourceItem};

/// A binlog position: file name and offset (file names of one server order as text).
type Mark = (Arc<str>, u64);

/// The incremental-snapshot state of a streaming run (what is not in the positions).
#[derive(Default)]
pub(in super::super) struct Incremental {
    /// The chunk read, its low and high marks.
    window: Option<(Window, Mark, Mark)>,
    /// A chunk should be read once the stream is between transactions.
    want_chunk: bool,
    /// Signals read from the signal table, handled after the event that carried them.
    pub(super) signals: Vec<Signal>,
    /// Rows per chunk within the byte bound.
    sizer: shared::ChunkSizer,
    /// Tables passed over (table, reason), to be shown in the status.
    passed_over: Vec<(String, String)>,
    /// What the status shows.
    report: shared::Report,
}

/// Whether the stream at `(file, pos)` has read up to `mark`.
fn reached(file: &str, pos: u64, mark: &Mark) -> bool {
    (file, pos) >= (&*mark.0, mark.1)
}

/// A key value as snapshot progress stores it: binary columns as hexadecimal (their bytes
/// need not be text, and a lossy conversion would name another key), others as the text
/// the server sent.
pub(in super::super) fn key_text(
    column: &Column,
    value: Option<&mysql_async::Value>,
) -> Option<String> {
    let Some(mysql_async::Value::Bytes(b)) = value else {
        return None;
    };
    if column.kind == ColumnKind::Bytes {
        return Some(b.iter().map(|x| format!("{x:02x}")).collect());
    }
    match std::str::from_utf8(b) {
        Ok(text) => Some(text.to_string()),
        // Not text in the connection's character set: kept exact all the same.
        Err(_) => Some(format!(
            "{HEX_TEXT}{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        )),
    }
}

/// Marks a non-binary key value stored as hexadecimal because its bytes were not UTF-8.
const HEX_TEXT: &str = "\u{0}hex:";

/// The literal of a stored key value that compares as the column orders: binary strings as
/// `X'…'`, `ENUM` / `SET` by their index (they order by it, not by label), text and numbers
/// quoted (the column's collation applies to the comparison).
pub(in super::super) fn key_literal(column: &Column, text: &str) -> String {
    let is_hex = |t: &str| {
        !t.is_empty() && t.len().is_multiple_of(2) && t.bytes().all(|b| b.is_ascii_hexdigit())
    };
    match &column.kind {
        ColumnKind::Bytes if is_hex(text) => format!("X'{text}'"),
        ColumnKind::Enum { allowed } => match allowed.iter().position(|l| l == text) {
            Some(i) => (i + 1).to_string(),
            None => quoted(text),
        },
        ColumnKind::EnumSet { allowed } => {
            let mut bits: u64 = 0;
            for label in text.split(',').filter(|l| !l.is_empty()) {
                match allowed.iter().position(|l| l == label) {
                    Some(i) if i < 64 => bits |= 1 << i,
                    _ => return quoted(text),
                }
            }
            bits.to_string()
        }
        _ => match text.strip_prefix(HEX_TEXT) {
            Some(hex) if is_hex(hex) => format!("CONVERT(X'{hex}' USING utf8mb4)"),
            _ => quoted(text),
        },
    }
}

/// Server errors of a chunk's `SELECT` that a retry cannot fix beyond those every query
/// treats so: an unknown column (1054), a collation mix (1267, 1271), an unknown function
/// (1305, 1630), wrong arguments (1582-1584).
fn chunk_error_is_definite(reason: &str) -> bool {
    [
        "1054", "1267", "1271", "1305", "1630", "1582", "1583", "1584",
    ]
    .iter()
    .any(|code| reason.ends_with(&format!("(error {code})")))
}

/// A quoted text literal (the text protocol's `SELECT`).
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

impl Streamer<'_> {
    /// At the start of streaming: a stored incremental snapshot continues.
    pub(super) fn incremental_start(&mut self, ctx: &SourceContext) {
        ctx.observer.signals.reset_taken();
        self.incr.want_chunk = self.state.incremental.is_some();
    }

    /// After each event: signals it carried, the window's marks, and the next chunk when
    /// one is due and the stream is between transactions.
    pub(super) async fn incremental_work(&mut self, ctx: &mut SourceContext) -> Result<(), Halt> {
        let result = self.incremental_step(ctx).await;
        shared::report_passed_over(&ctx.observer, &mut self.incr.passed_over);
        if let Some(table) = self
            .incr
            .report
            .wants_estimate(self.state.incremental.as_deref())
        {
            let estimate = match table.split_once('.') {
                Some((db, name)) => {
                    let id = crate::event::TableId {
                        schema: db.to_string(),
                        name: name.to_string(),
                    };
                    catalog::table_rows_stat(&mut self.catalog, &id).await
                }
                None => 0,
            };
            self.incr.report.begin_table(table, estimate);
        }
        self.incr
            .report
            .publish(ctx, &self.connector.name, self.state.incremental.as_deref())
            .await?;
        result
    }

    async fn incremental_step(&mut self, ctx: &mut SourceContext) -> Result<(), Halt> {
        let before = self.state.incremental.clone();
        for signal in std::mem::take(&mut self.incr.signals) {
            self.on_signal(signal).await?;
        }
        // What a signal changed is stored at the next commit even if nothing else happens
        // first: a stop or a rebalance right after an API signal must not forget it.
        if self.state.incremental != before && self.state.tx.is_none() {
            let at = SourcePosition::Mysql(self.state.resume.clone());
            ctx.emit_now(SourceItem::Checkpoint(at)).await?;
        }
        // API signals are acknowledged once what they changed is handed to the pipeline
        // (inside a transaction it rides in the commit's position: after the commit).
        if self.state.tx.is_none() {
            ctx.observer.signals.recorded();
        }
        self.check_window(ctx).await?;
        // A server with nothing written meanwhile: the marks of the chunk just read are
        // already reached, and the next chunk is due at once (no event would come to ask).
        while self.incr.want_chunk && self.incr.window.is_none() && self.state.tx.is_none() {
            self.incr.want_chunk = false;
            self.next_chunk(ctx.budget.limit()).await?;
            self.check_window(ctx).await?;
        }
        Ok(())
    }

    /// A signal, from the signal table or the admin API.
    pub(super) async fn on_signal(&mut self, signal: Signal) -> Result<(), Halt> {
        self.incr.report.signal(&signal);
        let captured: Vec<String> = if matches!(signal.kind, SignalKind::ExecuteSnapshot { .. }) {
            let my = self.my();
            catalog::captured_tables(&mut self.catalog, my)
                .await?
                .iter()
                .map(TableId::to_string)
                .collect()
        } else {
            Vec::new()
        };
        let out = shared::on_signal(
            self.state.incremental.as_ref(),
            signal,
            &captured,
            self.connector.signals.allow_filters,
        );
        self.set_progress(out.progress);
        if out.drop_window {
            self.incr.window = None;
        }
        self.incr.want_chunk |= out.want_chunk;
        Ok(())
    }

    /// Reads the next chunk (tables found empty or gone are passed over); ends the
    /// snapshot when no table is left.
    async fn next_chunk(&mut self, budget: usize) -> Result<(), Halt> {
        loop {
            let Some(progress) = self.state.incremental.clone() else {
                return Ok(());
            };
            if progress.paused {
                return Ok(());
            }
            let Some(name) = progress.tables.first().cloned() else {
                self.set_progress(None);
                tracing::info!(chunks = progress.chunks, "incremental snapshot finished");
                return Ok(());
            };
            match self.read_chunk(&name, &progress, budget).await? {
                Some(window) => {
                    self.incr.window = Some(window);
                    return Ok(());
                }
                None => self.set_progress(Some(Arc::new(shared::pass_over(&progress)))),
            }
        }
    }

    /// One chunk of `name` after the stored last key, between two binlog marks; `None` when
    /// the table has no more rows or cannot be read (logged).
    async fn read_chunk(
        &mut self,
        name: &str,
        progress: &IncrementalProgress,
        budget: usize,
    ) -> Result<Option<(Window, Mark, Mark)>, Halt> {
        let my = self.my();
        let tables = catalog::captured_tables(&mut self.catalog, my).await?;
        let Some(id) = tables.into_iter().find(|t| t.to_string() == name) else {
            tracing::error!(table = %name, "incremental snapshot: the table is no longer captured or does not exist; passed over");
            self.incr.passed_over.push((
                name.to_string(),
                "the table is no longer captured or does not exist".to_string(),
            ));
            return Ok(None);
        };
        let map = catalog::describe(&mut self.catalog, &id).await?;
        let hints = catalog::hints(
            &mut self.catalog,
            &id,
            self.server.flavor,
            &self.connector.types,
        )
        .await?;
        let decoder = match RowDecoder::new(&map, &hints) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(table = %id, error = %e.0, "incremental snapshot: cannot read the table; passed over");
                self.incr
                    .passed_over
                    .push((id.to_string(), e.0.to_string()));
                return Ok(None);
            }
        };
        let table = decoder.schema.clone();
        let key = match shared::chunk_key(self.connector, &table) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "incremental snapshot: table passed over");
                self.incr
                    .passed_over
                    .push((name.to_string(), e.to_string()));
                return Ok(None);
            }
        };
        let configured = self.connector.snapshot.chunk_size.max(1);
        let chunk_size = self.incr.sizer.rows(name, configured);
        let sql = match shared::chunk_select(
            &table,
            &key,
            progress,
            chunk_size,
            quote,
            key_literal,
            quoted,
            self.connector.signals.allow_filters,
        ) {
            Ok(sql) => sql,
            Err(e) => {
                tracing::error!(table = %id, error = %e, "incremental snapshot: table passed over");
                self.incr.passed_over.push((id.to_string(), e.to_string()));
                return Ok(None);
            }
        };
        // The low watermark must not precede a transaction the chunk's read cannot see: a
        // binlog write precedes the commit's visibility, so the binlog end read before the
        // SELECT may name a transaction the SELECT misses (its newer value would then be
        // overwritten by the chunk's older one). MariaDB names the binlog position of a
        // consistent snapshot exactly; elsewhere the binlog end is the best there is.
        let (low_file, low_pos) = match catalog::consistent_read(&mut self.catalog).await? {
            Some(mark) => mark,
            None => catalog::master_status(&mut self.catalog).await?,
        };
        let read = self.catalog.query(sql).await;
        // The read-only transaction ends either way.
        let ended = self.catalog.query_drop("COMMIT").await;
        let rows: Vec<mysql_async::Row> = match read.and_then(|r| ended.map(|()| r)) {
            Ok(rows) => rows,
            // Only an error no retry can fix passes the table over (a bad condition, a
            // column or table gone, no privilege); anything else (a timeout, a deadlock, a
            // lost session) restarts the run, which reads the chunk again: the stored
            // progress still points before it.
            Err(e) => match MyError::query(e) {
                MyError::Query { transient, reason }
                    if !transient || chunk_error_is_definite(&reason) =>
                {
                    tracing::error!(table = %id, error = %reason, "incremental snapshot: reading a chunk failed; table passed over (check additional-conditions and the user's privileges)");
                    self.incr.passed_over.push((id.to_string(), reason.to_string()));
                    return Ok(None);
                }
                other => {
                    return Err(MyError::Stream(format!(
                        "incremental snapshot: reading a chunk of {id} failed: {other}; retrying with the snapshot's progress kept"
                    ))
                    .into())
                }
            },
        };
        let (high_file, high_pos) = catalog::master_status(&mut self.catalog).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let last_key = {
            let last = rows.last().expect("not empty");
            key.iter()
                .map(|i| key_text(&table.columns[*i], last.as_ref(*i)))
                .collect()
        };
        let high: Mark = (Arc::from(high_file.as_str()), high_pos);
        let detail = SourceDetail::Mysql {
            shared: Arc::new(MysqlDetail {
                flavor: self.server.flavor,
                server_id: 0,
                gtid: None,
                file: high.0.clone(),
                pos: high.1,
                thread: None,
                query: None,
            }),
            row: 0,
        };
        let db: Arc<str> = Arc::from(id.schema.as_str());
        let ts_us = now_us();
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            events.push(ChangeEvent {
                op: Op::Read,
                table: Some(table.clone()),
                before: None,
                after: Some(text_row_values(&decoder, row)?),
                source: SourceMeta {
                    ts_us,
                    snapshot: SnapshotMarker::Incremental,
                    db: db.clone(),
                    detail: detail.clone(),
                },
                message: None,
                transaction: None,
                position: SourcePosition::Mysql(self.state.resume.clone()),
            });
        }
        self.incr.sizer.observe(
            events.len(),
            shared::rows_bytes(&events),
            configured,
            budget,
        );
        let window = Window::new(name.to_string(), &table, key, events, last_key, chunk_size);
        Ok(Some((
            window,
            (Arc::from(low_file.as_str()), low_pos),
            high,
        )))
    }

    /// Opens the window once the stream has read up to its low mark; closes it (publishing
    /// what the stream did not supersede) once it has read up to the high mark, between
    /// transactions.
    async fn check_window(&mut self, ctx: &mut SourceContext) -> Result<(), Halt> {
        let (file, pos) = (self.state.file.clone(), self.state.last_end);
        let Some((window, low, high)) = self.incr.window.as_mut() else {
            return Ok(());
        };
        if !window.open && reached(&file, pos, low) {
            window.open = true;
        }
        if !(window.open && reached(&file, pos, high) && self.state.tx.is_none()) {
            return Ok(());
        }
        let (window, _, _) = self.incr.window.take().expect("matched above");
        let before = self.state.incremental.clone();
        let Some(progress) = before.as_deref() else {
            return Ok(());
        };
        let next = match shared::after_chunk(progress, &window) {
            Ok(next) => Arc::new(next),
            Err(e) => {
                tracing::error!(error = %e, "incremental snapshot: table passed over");
                self.incr.passed_over.push((
                    progress.tables.first().cloned().unwrap_or_default(),
                    e.to_string(),
                ));
                self.set_progress(Some(Arc::new(shared::pass_over(progress))));
                self.incr.want_chunk = true;
                return Ok(());
            }
        };
        let base = self.state.resume.clone();
        let rows = window.into_rows(&before, &next, |incremental| {
            SourcePosition::Mysql(MyPosition {
                incremental,
                ..base.clone()
            })
        });
        self.incr.report.chunk(rows.len());
        for row in rows {
            send(ctx, SourceItem::Event(Box::new(row))).await?;
        }
        self.set_progress(Some(next));
        self.incr.want_chunk = true;
        Ok(())
    }

    /// The progress from now on (also in the resume position heartbeats carry).
    fn set_progress(&mut self, progress: Option<Arc<IncrementalProgress>>) {
        self.state.resume.incremental = progress.clone();
        self.state.incremental = progress;
    }

    /// A change the stream publishes: inside an open window, the chunk's row of the same
    /// key is dropped (the stream's event is newer).
    pub(super) fn supersede(&mut self, event: &ChangeEvent) {
        if let Some((w, _, _)) = self.incr.window.as_mut() {
            w.supersede(event);
        }
    }

    /// Rows inserted into the signal table (`[signals] table`, which must be captured):
    /// queued as signals, or logged and skipped when malformed.
    pub(super) fn signal_row(&mut self, event: &ChangeEvent) {
        let (Some(table), Some(after), Op::Create) = (&event.table, &event.after, event.op) else {
            return;
        };
        if !shared::is_signal_table(self.connector, &table.id) {
            return;
        }
        let table: &TableSchema = table;
        let values: &[Value] = after;
        match shared::signal_from_row(table, values) {
            Ok(s) => self.incr.signals.push(s),
            Err(e) => tracing::error!(error = %e, "a malformed signal row; skipped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(kind: ColumnKind) -> Column {
        Column {
            name: "k".into(),
            kind,
            nullable: false,
            default: None,
            length: None,
        }
    }

    #[test]
    fn binary_keys_are_stored_and_compared_exactly() {
        // Bytes that are not UTF-8 (a lossy conversion made them U+FFFD: another key).
        let bin = column(ColumnKind::Bytes);
        let raw = mysql_async::Value::Bytes(vec![0x41, 0xF5, 0x80, 0x27, 0x00]);
        let text = key_text(&bin, Some(&raw)).unwrap();
        assert_eq!(text, "41f5802700");
        assert_eq!(key_literal(&bin, &text), "X'41f5802700'");
        // Text keys stay text, quoted, so the column's collation orders the comparison.
        let txt = column(ColumnKind::Text);
        let raw = mysql_async::Value::Bytes("Ö'a\\".as_bytes().to_vec());
        let text = key_text(&txt, Some(&raw)).unwrap();
        assert_eq!(key_literal(&txt, &text), "'Ö''a\\\\'");
        // Text in another character set: exact, as hexadecimal.
        let raw = mysql_async::Value::Bytes(vec![0xE9, 0x41]);
        let text = key_text(&txt, Some(&raw)).unwrap();
        assert_eq!(key_literal(&txt, &text), "CONVERT(X'e941' USING utf8mb4)");
        // ENUM and SET order by index, not label.
        let en = column(ColumnKind::Enum {
            allowed: vec!["z".into(), "a".into()],
        });
        assert_eq!(key_literal(&en, "a"), "2");
        let set = column(ColumnKind::EnumSet {
            allowed: vec!["x".into(), "y".into(), "z".into()],
        });
        assert_eq!(key_literal(&set, "x,z"), "5");
        // Numbers as the server sent them.
        let int = column(ColumnKind::Int64);
        let raw = mysql_async::Value::Bytes(b"-9223372036854775808".to_vec());
        let text = key_text(&int, Some(&raw)).unwrap();
        assert_eq!(key_literal(&int, &text), "'-9223372036854775808'");
    }
}
