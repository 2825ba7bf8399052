//! Incremental snapshots while streaming (Debezium's, after Netflix's DBLog): a table is read
//! in chunks of `[snapshot] chunk_size` rows in primary-key order, each chunk between two
//! watermarks written into the WAL as logical decoding messages (`pg_logical_emit_message`,
//! prefix [`WATERMARK_PREFIX`]; no table is written). The chunk is held until the stream
//! reaches its closing watermark; a row the stream changed between the two watermarks is
//! dropped from the chunk (the stream's own event is newer), the rest are published as
//! `op = "r"` with `source.snapshot = "incremental"`. Streaming never stops; progress (tables
//! left, last key, chunks) rides in every position, so a restart resumes at the next chunk.

use std::sync::Arc;

use futures_util::StreamExt;

use super::super::catalog::{self, quote_ident, quote_literal};
use super::super::snapshot::{copy_fields, copy_value};
use super::super::PgError;
use super::{Halt, Streamer};
use crate::event::{
    ChangeEvent, Op, SnapshotMarker, SourceDetail, SourceMeta, TableId, TableSchema, Value,
};
use crate::position::{IncrementalProgress, PgPosition, SourcePosition};
use crate::signal::{Signal, SignalKind};
use crate::source::incremental::{self as shared, Window};
use crate::source::{now_us, SourceContext, SourceItem};

/// The prefix of Sluice's watermark messages.
pub(in super::super) const WATERMARK_PREFIX: &str = "sluice-incremental";

/// The incremental-snapshot state of a streaming run (what is not in the positions).
#[derive(Default)]
pub(in super::super) struct Incremental {
    /// The chunk read and waiting for its closing watermark.
    window: Option<Window>,
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
    /// Tells this run's watermarks from those of runs before a restart.
    run: u64,
    seq: u64,
}

impl Streamer<'_> {
    /// At the start of streaming: a stored incremental snapshot continues.
    pub(super) fn incremental_start(&mut self, ctx: &SourceContext) {
        ctx.observer.signals.reset_taken();
        self.incr.run = now_us() as u64;
        self.incr.want_chunk = self.state.incremental.is_some();
    }

    /// After each replication event: signals it carried, then the next chunk when one is
    /// due and the stream is between transactions.
    pub(super) async fn incremental_work(&mut self, ctx: &mut SourceContext) -> Result<(), Halt> {
        let result = self.incremental_step(ctx).await;
        shared::report_passed_over(&ctx.observer, &mut self.incr.passed_over);
        if let Some(table) = self
            .incr
            .report
            .wants_estimate(self.state.incremental.as_deref())
        {
            let estimate = catalog::row_estimate_by_name(self.client, &table).await;
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
            let at = self
                .state
                .position(self.state.resume_lsn, self.state.stored_partial);
            ctx.emit_now(SourceItem::Checkpoint(at)).await?;
        }
        // API signals are acknowledged once what they changed is handed to the pipeline
        // (inside a transaction it rides in the commit's position: after the commit).
        if self.state.tx.is_none() {
            ctx.observer.signals.recorded();
        }
        if self.incr.want_chunk && self.incr.window.is_none() && self.state.tx.is_none() {
            self.incr.want_chunk = false;
            self.next_chunk(ctx).await?;
        }
        Ok(())
    }

    /// A signal, from the signal table or the admin API.
    pub(super) async fn on_signal(&mut self, signal: Signal) -> Result<(), Halt> {
        self.incr.report.signal(&signal);
        let captured: Vec<String> = if matches!(signal.kind, SignalKind::ExecuteSnapshot { .. }) {
            let (tables, _) = catalog::expand_tables(self.client, &self.pg().filter).await?;
            tables.iter().map(|(_, t)| t.to_string()).collect()
        } else {
            Vec::new()
        };
        let out = shared::on_signal(
            self.state.incremental.as_ref(),
            signal,
            &captured,
            self.connector.signals.allow_filters,
        );
        self.state.incremental = out.progress;
        if out.drop_window {
            self.incr.window = None;
        }
        self.incr.want_chunk |= out.want_chunk;
        Ok(())
    }

    /// Reads the next chunk between two watermarks (tables found empty or gone are passed
    /// over); ends the snapshot when no table is left.
    async fn next_chunk(&mut self, ctx: &mut SourceContext) -> Result<(), Halt> {
        let budget = ctx.budget.limit();
        loop {
            let Some(progress) = self.state.incremental.clone() else {
                return Ok(());
            };
            if progress.paused {
                return Ok(());
            }
            let Some(name) = progress.tables.first().cloned() else {
                self.state.incremental = None;
                tracing::info!(chunks = progress.chunks, "incremental snapshot finished");
                return Ok(());
            };
            match self.read_chunk(&name, &progress, budget).await? {
                Some(window) => {
                    self.incr.window = Some(window);
                    return Ok(());
                }
                None => {
                    // The table is done (or cannot be read): the next one.
                    self.state.incremental = Some(Arc::new(shared::pass_over(&progress)));
                }
            }
        }
    }

    /// One chunk of `name` after the stored last key, between an opening and a closing
    /// watermark; `None` when the table has no more rows or cannot be read (logged).
    async fn read_chunk(
        &mut self,
        name: &str,
        progress: &IncrementalProgress,
        budget: usize,
    ) -> Result<Option<Window>, Halt> {
        let pg = self.pg();
        let (captured, _) = catalog::expand_tables(self.client, &pg.filter).await?;
        let Some((oid, id)) = captured.into_iter().find(|(_, t)| t.to_string() == name) else {
            tracing::error!(table = %name, "incremental snapshot: the table is no longer captured or does not exist; passed over");
            self.incr.passed_over.push((
                name.to_string(),
                "the table is no longer captured or does not exist".to_string(),
            ));
            return Ok(None);
        };
        let Some(described) = catalog::describe_table(self.client, oid).await? else {
            return Ok(None);
        };
        let info = self.decoder.relation_of_catalog(&described);
        let table = info.schema.clone();
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
        let select = shared::chunk_select(
            &table,
            &key,
            progress,
            chunk_size,
            quote_ident,
            // PostgreSQL casts a quoted literal to the column's type: it compares as the
            // column orders (collation, enum order), and COPY's text round-trips.
            |_, text| quote_literal(text),
            quote_literal,
            self.connector.signals.allow_filters,
        );
        let sql = match select {
            Ok(select) => format!("COPY ({select}) TO STDOUT"),
            Err(e) => {
                tracing::error!(table = %id, error = %e, "incremental snapshot: table passed over");
                self.incr.passed_over.push((id.to_string(), e.to_string()));
                return Ok(None);
            }
        };
        self.incr.seq += 1;
        let wid = format!("{}-{}", self.incr.run, self.incr.seq);
        if self.side_session().await.is_none() {
            return Err(PgError::Stream(
                "incremental snapshot: cannot open a session to read the chunk".into(),
            )
            .into());
        }
        let side = self.side.take().expect("opened above");
        let read = self
            .copy_chunk(&side, &sql, &wid, &info, &table, &key)
            .await;
        self.side = Some(side);
        let (rows, last_key) = match read {
            Ok(r) => r,
            // Only an error no retry can fix passes the table over (a bad condition, a
            // column or table gone, no privilege); anything else (a timeout, a deadlock, a
            // lost session) restarts the run, which reads the chunk again: the stored
            // progress still points before it.
            Err(e) if chunk_error_is_definite(&e) => {
                tracing::error!(table = %id, error = %e, "incremental snapshot: reading a chunk failed; table passed over (check additional-conditions and the user's privileges)");
                self.incr.passed_over.push((id.to_string(), e.to_string()));
                return Ok(None);
            }
            Err(e) => {
                return Err(PgError::Stream(format!(
                    "incremental snapshot: reading a chunk of {id} failed: {e}; retrying with the snapshot's progress kept"
                ))
                .into())
            }
        };
        if rows.is_empty() {
            return Ok(None);
        }
        self.incr
            .sizer
            .observe(rows.len(), shared::rows_bytes(&rows), configured, budget);
        Ok(Some(Window::new(
            wid, &table, key, rows, last_key, chunk_size,
        )))
    }

    /// Opening watermark, the chunk's rows, closing watermark.
    async fn copy_chunk(
        &mut self,
        side: &tokio_postgres::Client,
        sql: &str,
        wid: &str,
        info: &super::super::decode::RelationInfo,
        table: &Arc<TableSchema>,
        key: &[usize],
    ) -> Result<(Vec<ChangeEvent>, Vec<Option<String>>), tokio_postgres::Error> {
        // `synchronous_commit = on`: the watermark's commit flushes the WAL at once (and
        // wakes the WAL senders); with it off, the stream would see each watermark only after
        // the WAL writer's next round (`wal_writer_delay`, 200 ms by default) -- per chunk.
        let mark = |what: &str| {
            format!("SET synchronous_commit = on; SELECT pg_logical_emit_message(true, '{WATERMARK_PREFIX}', '{what}:{wid}')")
        };
        side.batch_execute(&mark("open")).await?;
        // The chunk is read in a read-only transaction: whatever a chunk query holds, it
        // cannot write (defence in depth behind the parsed signal filters).
        side.batch_execute("BEGIN READ ONLY").await?;
        let read = self.copy_rows(side, sql, info, table, key).await;
        let ended = match &read {
            Ok(_) => side.batch_execute("COMMIT").await,
            Err(_) => side.batch_execute("ROLLBACK").await,
        };
        let (rows, last_key) = read?;
        ended?;
        side.batch_execute(&mark("close")).await?;
        Ok((rows, last_key))
    }

    /// The rows of one chunk's `COPY`, and the text of the last row's key.
    async fn copy_rows(
        &mut self,
        side: &tokio_postgres::Client,
        sql: &str,
        info: &super::super::decode::RelationInfo,
        table: &Arc<TableSchema>,
        key: &[usize],
    ) -> Result<(Vec<ChangeEvent>, Vec<Option<String>>), tokio_postgres::Error> {
        let stream = side.copy_out(sql).await?;
        futures_util::pin_mut!(stream);
        let mut buf: Vec<u8> = Vec::new();
        let mut rows = Vec::new();
        let mut last_key = Vec::new();
        while let Some(chunk) = stream.next().await {
            buf.extend_from_slice(&chunk?);
            let mut start = 0;
            while let Some(nl) = memchr::memchr(b'\n', &buf[start..]) {
                let line = bytes::Bytes::copy_from_slice(&buf[start..start + nl]);
                start += nl + 1;
                let mut values = Vec::with_capacity(table.columns.len());
                let mut texts: Vec<Option<String>> = Vec::with_capacity(table.columns.len());
                copy_fields(&line, |f| {
                    let i = values.len();
                    if key.contains(&i) {
                        texts.push(f.text().map(|t| t.into_owned()));
                    } else {
                        texts.push(None);
                    }
                    values.push(copy_value(&mut self.decoder, info, i, f, &line));
                });
                last_key = key.iter().map(|i| texts[*i].clone()).collect();
                rows.push(ChangeEvent {
                    op: Op::Read,
                    table: Some(table.clone()),
                    before: None,
                    after: Some(values),
                    source: SourceMeta {
                        ts_us: now_us(),
                        snapshot: SnapshotMarker::Incremental,
                        db: self.db.clone(),
                        detail: SourceDetail::Postgres {
                            tx_id: None,
                            lsn: None,
                            last_commit_lsn: None,
                            origin: None,
                            origin_lsn: None,
                        },
                    },
                    message: None,
                    transaction: None,
                    position: SourcePosition::Postgres(PgPosition::at(0)),
                });
            }
            buf.drain(..start);
        }
        Ok((rows, last_key))
    }

    /// A watermark message from the stream: opens the chunk's window, or closes it and
    /// publishes what the stream did not supersede. Watermarks of other runs are ignored.
    pub(super) async fn on_watermark(
        &mut self,
        ctx: &mut SourceContext,
        lsn: u64,
        content: &[u8],
    ) -> Result<(), Halt> {
        let text = String::from_utf8_lossy(content);
        let Some((what, wid)) = text.split_once(':') else {
            return Ok(());
        };
        let Some(window) = self.incr.window.as_mut().filter(|w| w.id == wid) else {
            return Ok(());
        };
        if what == "open" {
            window.open = true;
            return Ok(());
        }
        if what != "close" {
            return Ok(());
        }
        let window = self.incr.window.take().expect("matched above");
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
                self.state.incremental = Some(Arc::new(shared::pass_over(progress)));
                self.incr.want_chunk = true;
                return Ok(());
            }
        };
        let base = match &self.state.tx {
            Some(t) => self.state.position_in_tx(t.final_lsn, t.index),
            None => self
                .state
                .position(self.state.resume_lsn, self.state.stored_partial),
        };
        let SourcePosition::Postgres(base) = base else {
            unreachable!("a PostgreSQL position")
        };
        let rows = window.into_rows(&before, &next, |incremental| {
            SourcePosition::Postgres(PgPosition {
                incremental,
                ..base.clone()
            })
        });
        self.incr.report.chunk(rows.len());
        for mut row in rows {
            if let SourceDetail::Postgres {
                lsn: l,
                last_commit_lsn,
                ..
            } = &mut row.source.detail
            {
                *l = Some(lsn);
                *last_commit_lsn = self.state.last_commit;
            }
            ctx.emit(SourceItem::Event(Box::new(row))).await?;
        }
        self.state.incremental = Some(next);
        self.incr.want_chunk = true;
        Ok(())
    }

    /// A change the stream publishes: inside an open window, the chunk's row of the same
    /// key is dropped (the stream's event is newer).
    pub(super) fn supersede(&mut self, event: &ChangeEvent) {
        if let Some(w) = self.incr.window.as_mut() {
            w.supersede(event);
        }
    }

    /// A row inserted into the signal table (`[signals] table`): queued as a signal, or
    /// logged and skipped when malformed.
    pub(super) fn signal_row(&mut self, table: &TableSchema, values: &[Value]) {
        match shared::signal_from_row(table, values) {
            Ok(s) => self.incr.signals.push(s),
            Err(e) => tracing::error!(error = %e, "a malformed signal row; skipped"),
        }
    }

    /// Whether a relation is the signal table.
    pub(super) fn is_signal_table(&self, id: &TableId) -> bool {
        shared::is_signal_table(self.connector, id)
    }
}

/// Whether a chunk's read failed for a reason a retry cannot fix: SQLSTATE classes 42
/// (syntax, undefined object, privilege), 22 (data exception) and 0A (not supported).
fn chunk_error_is_definite(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        ["42", "22", "0A"]
            .iter()
            .any(|class| c.code().starts_with(class))
    })
}
