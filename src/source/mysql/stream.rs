//! The binlog session: registers as a replica, asks for the binlog from the stored position
//! (MariaDB: from the stored GTID state), and turns events into [`SourceItem`]s.
//!
//! Transactions are tracked from their first event (GTID event, or `BEGIN` without GTIDs)
//! to their end (`XID`, `COMMIT`, or a DDL statement): every published row carries the
//! transaction's start plus how many rows events and rows of it are done; the end gives a
//! checkpoint at the next transaction's start.
//!
//! ```text
//!  next_event ──► handle (decode the body) ──► on_rotate / on_maria_gtid / on_query (on_ddl)
//!                                              on_table_map / on_rows (decode_rows, publish_rows)
//!                                              ──► end_group (GTID applied, END, checkpoint)
//! ```
//!
//! Why Sluice decodes event bodies itself instead of taking `mysql_common`'s parsed events:
//! the driver only frames each event (header, a copy of the body, the checksum) and parses
//! the format description and table maps for its own bookkeeping; it does not decode rows
//! (Sluice needs its per-table plan for that), MariaDB's events 160-163, or JSON diffs.
//! Measured with `perf` on `scripts/bench-mysql`'s binlog (500,000 inserts to the stdout
//! sink): the driver's framing (`Event::read`) is about 0.1 % of the samples and row decoding
//! about 9 %; the rest is building events, JSON encoding, allocation and the hand-off
//! between tasks. Parsing each body once more through `mysql_common` would add work, not
//! remove it, so the driver is used for the protocol and the framing only. Its framing has an
//! `unwrap` on the declared event size: `framing::guarded_next` turns such a panic into a decode
//! error naming the file and position.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::FutureExt;
use mysql_async::prelude::Queryable;
use mysql_async::BinlogStreamRequest;
use mysql_async::Conn;

use super::binlog::{self, decode_body, EventBody, EventHeader, FormatDescription};
use super::event_type;
use super::gtid::{valid_maria_state, Gtid, GtidState};
use super::statements::{ddl_concerns, is_ddl, redact_secrets, truncated_table};
use super::{ConnInfo, MyError, ServerInfo};
use crate::config::{ConnectorConfig, MysqlConfig};
use crate::event::{
    ChangeEvent, MysqlDetail, MysqlFlavor, Op, SchemaChange, SnapshotMarker, SourceDetail,
    SourceMeta,
};
use crate::position::{LastEvent, MyPosition, SnapshotState, SourcePosition};
use crate::source::{heartbeat_timer, tick, SourceContext, SourceExit, SourceItem, Stopped};

/// How often the binlog lag is sampled.
const LAG_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Bytes of the binlogs (name, size, in order) after `pos` of `file`; `None` when the file
/// is not listed (purged, or not yet known).
pub(super) fn binlog_lag(logs: &[(String, u64)], file: &str, pos: u64) -> Option<u64> {
    let at = logs.iter().position(|(name, _)| name == file)?;
    Some(logs[at].1.saturating_sub(pos) + logs[at + 1..].iter().map(|(_, size)| size).sum::<u64>())
}

/// The server sends a heartbeat event after this long without events (nanoseconds).
const SERVER_HEARTBEAT_NS: u64 = 5_000_000_000;
mod framing;
pub(super) mod incremental;
mod state;
mod tables;
#[cfg(test)]
mod tests;

use super::payload::payload_events;
use framing::{guarded_next, stream_error, strip_unknown_checksum, PayloadEcho};
use state::{opens_transaction, At, PendingGtid, State, Tx};

/// Why event handling stopped early.
enum Halt {
    /// Shutdown was requested while handing items over.
    Shutdown,
    /// The run failed.
    Failed(MyError),
}

impl<E: Into<MyError>> From<E> for Halt {
    fn from(e: E) -> Self {
        Halt::Failed(e.into())
    }
}

impl From<Stopped> for Halt {
    fn from(_: Stopped) -> Self {
        Halt::Shutdown
    }
}

/// Hands an item to the pipeline; `Halt::Shutdown` when the run must stop.
async fn send(ctx: &mut SourceContext, item: SourceItem) -> Result<(), Halt> {
    Ok(ctx.emit(item).await?)
}

/// One streaming run.
pub(super) struct Streamer<'a> {
    connector: &'a ConnectorConfig,
    info: &'a ConnInfo,
    server: &'a ServerInfo,
    start: MyPosition,
    /// The session for catalog queries (column hints, heartbeat action query).
    catalog: Conn,
    state: State,
    /// The driver's copies of the payload events already handled.
    echo: PayloadEcho,
    /// Incremental snapshots and signals.
    incr: incremental::Incremental,
}

impl<'a> Streamer<'a> {
    pub async fn new(
        connector: &'a ConnectorConfig,
        info: &'a ConnInfo,
        server: &'a ServerInfo,
        start: MyPosition,
    ) -> Result<Streamer<'a>, MyError> {
        let catalog = info.connect().await?;
        let skip_at = (start.events > 0 || start.rows > 0)
            .then(|| (start.file.clone(), start.pos, start.events, start.rows));
        let state = State {
            fde: FormatDescription::default(),
            file: start.file.clone(),
            gtids: GtidState::parse(server.flavor, start.gtids.as_deref()),
            resume: start.clone(),
            skip_at,
            pending_gtid: None,
            tx: None,
            maps: HashMap::new(),
            decoders: HashMap::new(),
            dbs: HashMap::new(),
            latest: HashMap::new(),
            definitions: HashMap::new(),
            last_end: start.pos,
            out: Vec::new(),
            incremental: start.incremental.clone(),
        };
        Ok(Streamer {
            connector,
            info,
            server,
            start,
            catalog,
            state,
            echo: PayloadEcho::default(),
            incr: Default::default(),
        })
    }

    fn my(&self) -> &'a MysqlConfig {
        self.connector.mysql.as_ref().expect("validated [mysql]")
    }

    async fn open(&self) -> Result<mysql_async::BinlogStream, MyError> {
        let my = self.my();
        let mut conn: Conn = self.info.connect().await?;
        let mut setup = vec![format!(
            "SET @master_heartbeat_period = {SERVER_HEARTBEAT_NS}"
        )];
        if self.server.flavor == MysqlFlavor::Mariadb {
            setup.push("SET @mariadb_slave_capability = 4".into());
            if let Some(state) = self.start.gtids.as_deref().filter(|s| valid_maria_state(s)) {
                setup.push(format!("SET @slave_connect_state = '{state}'"));
                setup.push("SET @slave_gtid_strict_mode = 0".into());
                setup.push("SET @slave_gtid_ignore_duplicates = 0".into());
            }
        }
        for sql in setup {
            conn.query_drop(sql).await.map_err(MyError::query)?;
        }
        let request = BinlogStreamRequest::new(my.server_id)
            .with_filename(self.start.file.as_bytes())
            .with_pos(self.start.pos);
        conn.get_binlog_stream(request).await.map_err(stream_error)
    }

    /// Streams until shutdown or an error.
    pub async fn run(mut self, ctx: &mut SourceContext) -> Result<SourceExit, MyError> {
        let mut stream = self.open().await?;
        tracing::info!(
            file = %self.start.file,
            pos = self.start.pos,
            gtids = self.start.gtids.as_deref().unwrap_or(""),
            events_done = self.start.events,
            rows_done = self.start.rows,
            "binlog streaming started"
        );
        ctx.observer
            .set_state(crate::status::ConnectorState::Streaming);
        let mut heartbeat = heartbeat_timer(self.connector);
        let mut lag_tick = tokio::time::interval(LAG_EVERY);
        self.incremental_start(ctx);
        loop {
            let result = match self
                .next_event(ctx, &mut stream, &mut heartbeat, &mut lag_tick)
                .await
            {
                Ok(Some(event)) => self.handle(ctx, &event).await,
                Ok(None) => Ok(()),
                Err(halt) => Err(halt),
            };
            let result = match result {
                Ok(()) => self.incremental_work(ctx).await,
                Err(halt) => Err(halt),
            };
            match result {
                Ok(()) => {}
                Err(Halt::Shutdown) => return Ok(SourceExit::Shutdown),
                Err(Halt::Failed(e)) => return Err(e),
            }
        }
    }

    /// The next event, or `None` after a heartbeat tick. Events already buffered are taken
    /// at once; queued items are handed over only when the stream has nothing ready (one
    /// channel hand-off per burst, not per row).
    async fn next_event(
        &mut self,
        ctx: &mut SourceContext,
        stream: &mut mysql_async::BinlogStream,
        heartbeat: &mut Option<tokio::time::Interval>,
        lag_tick: &mut tokio::time::Interval,
    ) -> Result<Option<mysql_async::binlog::events::Event>, Halt> {
        let ready = if ctx.pending.is_empty() {
            None
        } else {
            guarded_next(stream).now_or_never()
        };
        let next = match ready {
            Some(ev) => ev,
            None => {
                if !ctx.pending.is_empty() && !ctx.flush().await {
                    return Err(Halt::Shutdown);
                }
                let inbox = ctx.observer.signals.clone();
                tokio::select! {
                    biased;
                    _ = ctx.shutdown.changed() => return Err(Halt::Shutdown),
                    signal = inbox.next() => {
                        // Handled with the signal table's, so its effect is stored at once.
                        self.incr.signals.push(signal);
                        return Ok(None);
                    }
                    _ = tick(heartbeat) => {
                        self.heartbeat(ctx).await?;
                        return Ok(None);
                    }
                    _ = lag_tick.tick() => {
                        self.sample_lag(ctx).await;
                        return Ok(None);
                    }
                    ev = guarded_next(stream) => ev,
                }
            }
        };
        let next = next.map_err(|panic| {
            binlog::Malformed(format!(
                "the driver could not frame the event that follows (its declared size does not match the bytes received: {panic})"
            ))
            .at(0, &self.state.file, self.state.last_end)
        })?;
        match next {
            Some(Ok(e)) => Ok(Some(e)),
            Some(Err(e)) => Err(stream_error(e).into()),
            None => Err(MyError::Stream("the server ended the binlog stream".into()).into()),
        }
    }

    /// `sluice_binlog_lag_bytes`: what the server's binlogs hold beyond the read position
    /// (`SHOW BINARY LOGS`; left unchanged when it cannot be read).
    async fn sample_lag(&mut self, ctx: &SourceContext) {
        let logs: Result<Vec<mysql_async::Row>, _> = self.catalog.query("SHOW BINARY LOGS").await;
        let Ok(logs) = logs else {
            return;
        };
        let logs: Vec<(String, u64)> = logs
            .into_iter()
            .filter_map(|r| Some((r.get::<String, _>(0)?, r.get::<u64, _>(1)?)))
            .collect();
        if let Some(lag) = binlog_lag(&logs, &self.state.file, self.state.last_end) {
            ctx.observer
                .metrics
                .binlog_lag_bytes
                .with_label_values(&[&*ctx.observer.connector])
                .set(lag as i64);
        }
    }

    /// A connector heartbeat: the action query, then the heartbeat record (with the resume
    /// position when no transaction is open).
    async fn heartbeat(&mut self, ctx: &mut SourceContext) -> Result<(), Halt> {
        if let Some(query) = &self.my().heartbeat_action_query {
            if let Err(e) = self.catalog.query_drop(query.as_str()).await {
                tracing::warn!(error = %e, "heartbeat_action_query failed");
                if let Ok(c) = self.info.connect().await {
                    self.catalog = c;
                }
            }
        }
        let st = &self.state;
        let position = st
            .tx
            .is_none()
            .then(|| SourcePosition::Mysql(st.resume.clone()));
        Ok(ctx.heartbeat(position).await?)
    }

    /// Decodes one event from the driver and dispatches it; the events inside a transaction
    /// payload are decoded from the payload itself, and the driver's copies of them skipped.
    async fn handle(
        &mut self,
        ctx: &mut SourceContext,
        event: &mysql_async::binlog::events::Event,
    ) -> Result<(), Halt> {
        let h = event.header();
        let header = EventHeader {
            timestamp: h.timestamp(),
            type_code: h.event_type_raw(),
            server_id: h.server_id(),
            event_size: h.event_size(),
            log_pos: h.log_pos(),
            flags: h.flags_raw(),
        };
        if self.echo.is_echo(&header, event.data()) {
            return Ok(());
        }
        let code = header.type_code;
        let at = At {
            start_pos: header.start_pos(),
            end: if header.log_pos != 0 {
                u64::from(header.log_pos)
            } else {
                self.state.last_end
            },
            ts_us: i64::from(header.timestamp) * 1_000_000,
            header,
        };
        let body = strip_unknown_checksum(&at.header, event.data(), &self.state.fde);
        let decoded = if code == event_type::FORMAT_DESCRIPTION {
            FormatDescription::parse_stripped(body, false).map(EventBody::FormatDescription)
        } else {
            decode_body(&self.state.fde, &at.header, body)
        };
        let decoded = decoded.map_err(|e| e.at(code, &self.state.file, at.start_pos))?;
        if let EventBody::TransactionPayload {
            compression,
            uncompressed_size,
            payload,
        } = decoded
        {
            self.on_payload(ctx, &at, compression, uncompressed_size, payload)
                .await?;
        } else {
            self.dispatch(ctx, &at, decoded).await?;
        }
        // Positions only grow inside a file: the format description the server sends when a
        // stream starts mid-file (its log_pos is that of the file's start) and a rotate (whose
        // handler set the position in the new file) do not move it back.
        if at.header.log_pos != 0
            && code != event_type::ROTATE
            && u64::from(at.header.log_pos) > self.state.last_end
        {
            self.state.last_end = u64::from(at.header.log_pos);
        }
        Ok(())
    }

    /// A MySQL 8 transaction payload: its events are handled in order, each at the payload's
    /// position (a restart re-reads the payload and skips what was published). A payload
    /// that does not uncompress or split stops the connector.
    async fn on_payload(
        &mut self,
        ctx: &mut SourceContext,
        at: &At,
        compression: u64,
        uncompressed_size: u64,
        payload: &[u8],
    ) -> Result<(), Halt> {
        let code = event_type::TRANSACTION_PAYLOAD;
        let events = payload_events(compression, uncompressed_size, payload)
            .map_err(|e| e.at(code, &self.state.file, at.start_pos))?;
        for ev in &events {
            let inner = At {
                header: ev.header,
                start_pos: at.start_pos,
                end: at.end,
                ts_us: i64::from(ev.header.timestamp) * 1_000_000,
            };
            let decoded = decode_body(&self.state.fde, &ev.header, &ev.body)
                .map_err(|e| e.at(ev.header.type_code, &self.state.file, at.start_pos))?;
            if matches!(
                decoded,
                EventBody::FormatDescription(_)
                    | EventBody::Rotate { .. }
                    | EventBody::TransactionPayload { .. }
            ) {
                return Err(binlog::Malformed(format!(
                    "a {} event inside a transaction payload",
                    event_type::type_name(ev.header.type_code)
                ))
                .at(code, &self.state.file, at.start_pos)
                .into());
            }
            self.dispatch(ctx, &inner, decoded).await?;
        }
        self.echo.expect(events);
        Ok(())
    }

    /// Dispatches a decoded event to its handler; ends the event group when the event
    /// closes it.
    async fn dispatch(
        &mut self,
        ctx: &mut SourceContext,
        at: &At,
        decoded: EventBody<'_>,
    ) -> Result<(), Halt> {
        // XID, COMMIT / ROLLBACK, or a DDL statement outside BEGIN ends the event group.
        let ends_group = match decoded {
            EventBody::FormatDescription(f) => {
                self.state.fde = f;
                false
            }
            EventBody::Rotate { position, file } => {
                // The next event's position is in the new file: `last_end` is set here.
                return self.on_rotate(ctx, at, position, file).await;
            }
            EventBody::MariaGtid { gtid, standalone } => {
                self.on_maria_gtid(at, gtid, standalone);
                false
            }
            EventBody::MysqlGtid(g) => {
                self.state.pending_gtid = Some(PendingGtid {
                    text: g.as_ref().map(|g| Arc::from(g.to_string().as_str())),
                    gtid: g.map_or(Gtid::Anonymous, Gtid::Mysql),
                    pos: at.start_pos,
                });
                false
            }
            EventBody::Query { thread_id, db, sql } => {
                self.on_query(ctx, at, thread_id, &db, sql.trim()).await?
            }
            EventBody::Xid(_) => true,
            EventBody::TableMap(raw) => {
                self.on_table_map(at, raw).await?;
                false
            }
            EventBody::Rows(rows) => {
                self.on_rows(ctx, at, &rows).await?;
                false
            }
            EventBody::MariaGtidList(list) => {
                tracing::debug!(?list, "GTID list");
                false
            }
            EventBody::TransactionPayload { .. }
            | EventBody::Heartbeat
            | EventBody::BinlogCheckpoint(_)
            | EventBody::RowsQuery(_)
            | EventBody::Stop
            | EventBody::Ignored => false,
        };
        if ends_group {
            let last = LastEvent {
                server_id: at.header.server_id,
                ts_sec: i64::from(at.header.timestamp),
            };
            self.end_group(ctx, at.end, last).await?;
        }
        Ok(())
    }

    /// ROTATE: the next file; a checkpoint there when no transaction is open (real rotates
    /// only: the server's artificial one only says where the stream starts).
    async fn on_rotate(
        &mut self,
        ctx: &mut SourceContext,
        at: &At,
        position: u64,
        name: String,
    ) -> Result<(), Halt> {
        let st = &mut self.state;
        st.file = Arc::from(name.as_str());
        st.last_end = position;
        if st.tx.is_none() && at.header.flags & binlog::LOG_EVENT_ARTIFICIAL_F == 0 {
            st.resume = MyPosition {
                incremental: st.incremental.clone(),
                file: Arc::from(name),
                pos: position,
                gtids: st.gtids.text(),
                events: 0,
                rows: 0,
                snapshot: SnapshotState::Done,
                last_event: None,
            };
            let item = SourceItem::Checkpoint(SourcePosition::Mysql(st.resume.clone()));
            send(ctx, item).await?;
        }
        Ok(())
    }

    /// A MariaDB GTID event: the group's GTID; a transaction starts here unless the group is
    /// a standalone statement (DDL).
    fn on_maria_gtid(&mut self, at: &At, gtid: binlog::MariaGtid, standalone: bool) {
        let pending = PendingGtid {
            text: Some(Arc::from(gtid.to_string().as_str())),
            gtid: Gtid::Maria(gtid),
            pos: at.start_pos,
        };
        if !standalone {
            let file = self.state.file.clone();
            let tx = self.begin_tx(&file, at.start_pos, pending.text.clone(), at.ts_us, None);
            self.state.tx = Some(tx);
        }
        self.state.pending_gtid = Some(pending);
    }

    /// A QUERY event: BEGIN, COMMIT / ROLLBACK or DDL; `true` when it ends the group.
    async fn on_query(
        &mut self,
        ctx: &mut SourceContext,
        at: &At,
        thread_id: u32,
        db: &str,
        sql: &str,
    ) -> Result<bool, Halt> {
        if sql.eq_ignore_ascii_case("BEGIN") || sql.eq_ignore_ascii_case("XA START") {
            match self.state.tx.as_mut() {
                Some(t) => t.thread = Some(thread_id),
                None => self.begin_at_group_start(at, Some(thread_id)),
            }
            return Ok(false);
        }
        if sql.eq_ignore_ascii_case("COMMIT") || sql.eq_ignore_ascii_case("ROLLBACK") {
            return Ok(true);
        }
        if !is_ddl(sql) {
            return Ok(false);
        }
        if self.state.tx.is_none() && opens_transaction(sql) {
            self.begin_at_group_start(at, Some(thread_id));
        }
        let in_explicit_tx = self.state.tx.is_some();
        if let Some(database) = ddl_concerns(self.my(), db, sql) {
            self.on_ddl(ctx, at, thread_id, db, sql, database).await?;
        }
        Ok(!in_explicit_tx)
    }

    /// Opens the transaction of the current group at its GTID event (or here, without one).
    fn begin_at_group_start(&mut self, at: &At, thread: Option<u32>) {
        let (gtid, pos) = match self.state.pending_gtid.as_ref() {
            Some(p) => (p.text.clone(), p.pos),
            None => (None, at.start_pos),
        };
        let file = self.state.file.clone();
        let tx = self.begin_tx(&file, pos, gtid, at.ts_us, thread);
        self.state.tx = Some(tx);
    }

    /// A DDL statement of a captured database: the schema-change record, and a truncate
    /// record for `TRUNCATE TABLE` of a captured table when truncates are published.
    async fn on_ddl(
        &mut self,
        ctx: &mut SourceContext,
        at: &At,
        thread_id: u32,
        db: &str,
        sql: &str,
        database: String,
    ) -> Result<(), Halt> {
        let st = &mut self.state;
        let gtid = st.pending_gtid.as_ref().and_then(|p| p.text.clone());
        let after = st.ddl_position(at.end);
        let mut change = SchemaChange {
            database: database.clone(),
            ddl: redact_secrets(sql).into_owned(),
            source: SourceMeta {
                ts_us: at.ts_us,
                snapshot: SnapshotMarker::False,
                db: Arc::from(database.as_str()),
                detail: SourceDetail::Mysql {
                    shared: Arc::new(MysqlDetail {
                        flavor: self.server.flavor,
                        server_id: at.header.server_id,
                        gtid,
                        file: st.file.clone(),
                        pos: at.start_pos,
                        thread: Some(thread_id),
                        query: None,
                    }),
                    row: 0,
                },
            },
            position: SourcePosition::Mysql(after),
            table_changes: Vec::new(),
        };
        change.table_changes = self.table_changes(sql, db).await?;
        tracing::info!(database = %database, ddl = %change.ddl, "schema change");
        let truncated = truncated_table(sql, db)
            .filter(|t| self.my().captures(&t.schema, &t.name))
            .filter(|_| self.connector.publishes("t"));
        let truncate = match truncated {
            Some(id) => Some(ChangeEvent {
                op: Op::Truncate,
                table: Some(self.current_schema(&id).await?),
                before: None,
                after: None,
                source: SourceMeta {
                    db: Arc::from(id.schema.as_str()),
                    ..change.source.clone()
                },
                message: None,
                transaction: None,
                position: change.position.clone(),
            }),
            None => None,
        };
        send(ctx, SourceItem::SchemaChange(Box::new(change))).await?;
        if let Some(event) = truncate {
            send(ctx, SourceItem::Event(Box::new(event))).await?;
        }
        Ok(())
    }

    /// The captured tables a DDL statement changed, with their definitions read from the
    /// catalog now (a dropped table: the last definition read).
    async fn table_changes(
        &mut self,
        sql: &str,
        db: &str,
    ) -> Result<Vec<crate::event::TableChange>, Halt> {
        let mut out = Vec::new();
        for (kind, id) in super::ddl_tables::changed_tables(sql, db) {
            if !self.my().captures(&id.schema, &id.name) {
                continue;
            }
            let table = if kind == "DROP" {
                self.state.definitions.remove(&id)
            } else {
                let def =
                    super::definition::table_definition(&mut self.catalog, &id, self.server.flavor)
                        .await?;
                if let Some(d) = &def {
                    self.state.definitions.insert(id.clone(), d.clone());
                }
                def
            };
            out.push(crate::event::TableChange { kind, id, table });
        }
        Ok(out)
    }

    fn begin_tx(
        &mut self,
        file: &Arc<str>,
        pos: u64,
        gtid: Option<Arc<str>>,
        ts_us: i64,
        thread: Option<u32>,
    ) -> Tx {
        let (skip_events, skip_rows) = match self.state.skip_at.take() {
            Some((f, p, e, r)) if *f == **file && p == pos => (e, r),
            _ => (0, 0),
        };
        Tx {
            file: file.clone(),
            pos,
            gtid,
            ts_us,
            thread,
            rows_events: 0,
            skip_events,
            skip_rows,
            counts: Default::default(),
        }
    }

    /// The end of an event group: the GTID applied, the END record, and a checkpoint at
    /// the next group's start.
    async fn end_group(
        &mut self,
        ctx: &mut SourceContext,
        end: u64,
        last: LastEvent,
    ) -> Result<(), Halt> {
        let st = &mut self.state;
        if let Some(p) = st.pending_gtid.take() {
            st.gtids.apply_pending(p.gtid);
        }
        if let Some(end_meta) = st.tx.take().and_then(|t| {
            let (id, ts_ms) = (t.id(), t.ts_us / 1000);
            t.counts.end(id, ts_ms)
        }) {
            send(ctx, SourceItem::Transaction(end_meta)).await?;
        }
        let st = &mut self.state;
        st.resume = MyPosition {
            incremental: st.incremental.clone(),
            file: st.file.clone(),
            pos: end,
            gtids: st.gtids.text(),
            events: 0,
            rows: 0,
            snapshot: SnapshotState::Done,
            last_event: Some(last),
        };
        st.evict_maps_if_full();
        let item = SourceItem::Checkpoint(SourcePosition::Mysql(st.resume.clone()));
        send(ctx, item).await
    }
}
