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
use super::{send, Halt, Streamer};
use crate::event::{
    ChangeEvent, MysqlDetail, Op, SnapshotMarker, SourceDetail, SourceMeta, TableId, TableSchema,
    Value,
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
}

/// Whether the stream at `(file, pos)` has read up to `mark`.
fn reached(file: &str, pos: u64, mark: &Mark) -> bool {
    (file, pos) >= (&*mark.0, mark.1)
}

/// A text literal for a key value (the text protocol's `SELECT`).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

impl Streamer<'_> {
    /// At the start of streaming: a stored incremental snapshot continues.
    pub(super) fn incremental_start(&mut self) {
        self.incr.want_chunk = self.state.incremental.is_some();
    }

    /// After each event: signals it carried, the window's marks, and the next chunk when
    /// one is due and the stream is between transactions.
    pub(super) async fn incremental_work(&mut self, ctx: &mut SourceContext) -> Result<(), Halt> {
        for signal in std::mem::take(&mut self.incr.signals) {
            self.on_signal(signal).await?;
        }
        self.check_window(ctx).await?;
        // A server with nothing written meanwhile: the marks of the chunk just read are
        // already reached, and the next chunk is due at once (no event would come to ask).
        while self.incr.want_chunk && self.incr.window.is_none() && self.state.tx.is_none() {
            self.incr.want_chunk = false;
            self.next_chunk().await?;
            self.check_window(ctx).await?;
        }
        Ok(())
    }

    /// A signal, from the signal table or the admin API.
    pub(super) async fn on_signal(&mut self, signal: Signal) -> Result<(), Halt> {
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
        let out = shared::on_signal(self.state.incremental.as_ref(), signal, &captured);
        self.set_progress(out.progress);
        if out.drop_window {
            self.incr.window = None;
        }
        self.incr.want_chunk |= out.want_chunk;
        Ok(())
    }

    /// Reads the next chunk (tables found empty or gone are passed over); ends the
    /// snapshot when no table is left.
    async fn next_chunk(&mut self) -> Result<(), Halt> {
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
            match self.read_chunk(&name, &progress).await? {
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
    ) -> Result<Option<(Window, Mark, Mark)>, Halt> {
        let my = self.my();
        let tables = catalog::captured_tables(&mut self.catalog, my).await?;
        let Some(id) = tables.into_iter().find(|t| t.to_string() == name) else {
            tracing::error!(table = %name, "incremental snapshot: the table is no longer captured or does not exist; passed over");
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
                return Ok(None);
            }
        };
        let table = decoder.schema.clone();
        let key = match shared::chunk_key(self.connector, &table) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "incremental snapshot: table passed over");
                return Ok(None);
            }
        };
        let chunk_size = self.connector.snapshot.chunk_size.max(1);
        let sql = shared::chunk_select(&table, &key, progress, chunk_size, quote, literal);
        let (low_file, low_pos) = catalog::master_status(&mut self.catalog).await?;
        let rows: Vec<mysql_async::Row> = match self.catalog.query(sql).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(table = %id, error = %e, "incremental snapshot: reading a chunk failed; passed over (check additional-conditions)");
                return Ok(None);
            }
        };
        let (high_file, high_pos) = catalog::master_status(&mut self.catalog).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let last_key = {
            let last = rows.last().expect("not empty");
            key.iter()
                .map(|i| match last.as_ref(*i) {
                    Some(mysql_async::Value::Bytes(b)) => {
                        Some(String::from_utf8_lossy(b).into_owned())
                    }
                    _ => None,
                })
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
        let next = Arc::new(shared::after_chunk(progress, &window));
        let base = self.state.resume.clone();
        let rows = window.into_rows(&before, &next, |incremental| {
            SourcePosition::Mysql(MyPosition {
                incremental,
                ..base.clone()
            })
        });
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
