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
//! `unwrap` on the declared event size: [`guarded_next`] turns such a panic into a decode
//! error naming the file and position.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{FutureExt, StreamExt};
use mysql_async::prelude::Queryable;
use mysql_async::BinlogStreamRequest;
use mysql_async::Conn;

use super::binlog::{self, decode_body, EventBody, EventHeader, FormatDescription};
use super::catalog;
use super::event_type;
use super::gtid::{valid_maria_state, Gtid, GtidState};
use super::plan::RowDecoder;
use super::statements::{ddl_concerns, is_ddl, redact_secrets, truncated_table};
use super::table_map::TableMap;
use super::{ConnInfo, MyError, ServerInfo};
use crate::config::{ConnectorConfig, MysqlConfig};
use crate::event::{
    ChangeEvent, MysqlDetail, MysqlFlavor, Op, SchemaChange, SnapshotMarker, SourceDetail,
    SourceMeta, TableId,
};
use crate::position::{MyPosition, SnapshotState, SourcePosition};
use crate::source::{heartbeat_timer, tick, SourceContext, SourceExit, SourceItem, Stopped};

/// The server sends a heartbeat event after this long without events (nanoseconds).
const SERVER_HEARTBEAT_NS: u64 = 5_000_000_000;
/// Table maps kept at most (they are re-sent in every transaction).
const MAX_TABLE_MAPS: usize = 4096;

/// A table map seen on the stream and what Sluice does with its rows.
struct MapEntry {
    body: Vec<u8>,
    /// `None`: the table is not captured.
    decoder: Option<Arc<RowDecoder>>,
}

/// The transaction being read.
struct Tx {
    file: Arc<str>,
    pos: u64,
    gtid: Option<Arc<str>>,
    ts_us: i64,
    thread: Option<u32>,
    /// Rows events seen so far.
    rows_events: u64,
    /// Rows events / rows of the next rows event to skip (already published before a
    /// restart).
    skip_events: u64,
    skip_rows: u64,
    counts: crate::source::TxCounts,
}

impl Tx {
    fn id(&self) -> Arc<str> {
        match &self.gtid {
            Some(g) => g.clone(),
            None => Arc::from(format!("file={},pos={}", self.file, self.pos)),
        }
    }
}
/// The GTID event of the group being read, applied to the GTID state when the group ends.
struct PendingGtid {
    /// The GTID as `source.gtid` shows it (`None`: anonymous).
    text: Option<Arc<str>>,
    gtid: Gtid,
    /// Position of the GTID event: the group's start.
    pos: u64,
}

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

/// The facts of the event being handled.
struct At {
    /// The event's header.
    header: EventHeader,
    /// Where the event starts.
    start_pos: u64,
    /// Where the next event starts.
    end: u64,
    /// When the statement began, microseconds since the epoch.
    ts_us: i64,
}

/// What a streaming run keeps between events.
struct State {
    fde: FormatDescription,
    /// The binlog file being read.
    file: Arc<str>,
    gtids: GtidState,
    /// Where a restart resumes: the start of the next transaction.
    resume: MyPosition,
    /// The stored position's progress inside its transaction, until that transaction starts.
    skip_at: Option<(Arc<str>, u64, u64, u64)>,
    pending_gtid: Option<PendingGtid>,
    tx: Option<Tx>,
    maps: HashMap<u64, MapEntry>,
    decoders: HashMap<Vec<u8>, Arc<RowDecoder>>,
    dbs: HashMap<String, Arc<str>>,
    /// The last shape seen of each captured table (for truncate records).
    latest: HashMap<TableId, Arc<crate::event::TableSchema>>,
    /// The end of the last event with a position.
    last_end: u64,
    /// Events of the rows event being handled (reused).
    out: Vec<ChangeEvent>,
}

impl State {
    /// Where a schema-change record stands. A DDL statement that shares its event group with
    /// rows (MariaDB's `CREATE TABLE ... SELECT`, MySQL's atomic one) is positioned inside
    /// that transaction like its rows, before them, with the group's GTID not yet applied: a
    /// restart re-reads the group (the DDL record may come again) and loses none of its rows.
    /// A DDL statement of its own group ends it: the position is after it, GTID applied.
    fn ddl_position(&mut self, end: u64) -> MyPosition {
        if let Some(t) = &self.tx {
            return MyPosition {
                file: t.file.clone(),
                pos: t.pos,
                gtids: self.resume.gtids.clone(),
                events: t.rows_events,
                rows: 0,
                snapshot: SnapshotState::Done,
            };
        }
        if let Some(p) = self.pending_gtid.take() {
            self.gtids.apply_pending(p.gtid);
        }
        MyPosition {
            file: self.file.clone(),
            pos: end,
            gtids: self.gtids.text(),
            events: 0,
            rows: 0,
            snapshot: SnapshotState::Done,
        }
    }

    /// The position of row `row` (0-based) of the `ev_index`-th rows event of the open
    /// transaction: that many rows events and rows of it are then published.
    fn row_position(&self, t: &Tx, ev_index: u64, row: u32) -> MyPosition {
        MyPosition {
            file: t.file.clone(),
            pos: t.pos,
            gtids: self.resume.gtids.clone(),
            events: ev_index,
            rows: u64::from(row) + 1,
            snapshot: SnapshotState::Done,
        }
    }

    /// Forgets the table maps when there are too many; only between transactions (the
    /// server sends a transaction's maps again in each transaction, never across).
    fn evict_maps_if_full(&mut self) {
        if self.tx.is_none() && self.maps.len() >= MAX_TABLE_MAPS {
            self.maps.clear();
        }
    }
}

/// MySQL 8.0.21+ writes `CREATE TABLE ... SELECT` as one atomic group: the DDL ends with
/// `START TRANSACTION` and the rows follow in the same group.
fn opens_transaction(sql: &str) -> bool {
    const TAIL: &[u8] = b"START TRANSACTION";
    let trimmed = sql.trim_end().trim_end_matches(';').trim_end().as_bytes();
    trimmed.len() >= TAIL.len() && trimmed[trimmed.len() - TAIL.len()..].eq_ignore_ascii_case(TAIL)
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
            last_end: start.pos,
            out: Vec::new(),
        };
        Ok(Streamer {
            connector,
            info,
            server,
            start,
            catalog,
            state,
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
            "binlog streaming started"
        );
        ctx.observer
            .set_state(crate::status::ConnectorState::Streaming);
        let mut heartbeat = heartbeat_timer(self.connector);
        loop {
            let result = match self.next_event(ctx, &mut stream, &mut heartbeat).await {
                Ok(Some(event)) => self.handle(ctx, &event).await,
                Ok(None) => Ok(()),
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
                tokio::select! {
                    biased;
                    _ = ctx.shutdown.changed() => return Err(Halt::Shutdown),
                    _ = tick(heartbeat) => {
                        self.heartbeat(ctx).await?;
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

    /// Decodes one event and dispatches it to its handler; ends the event group when the
    /// event closes it.
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
        // XID, COMMIT / ROLLBACK, or a DDL statement outside BEGIN ends the event group.
        let ends_group = match decoded {
            EventBody::FormatDescription(f) => {
                self.state.fde = f;
                false
            }
            EventBody::Rotate { position, file } => {
                // The next event's position is in the new file: `last_end` is set here.
                return self.on_rotate(ctx, &at, position, file).await;
            }
            EventBody::MariaGtid { gtid, standalone } => {
                self.on_maria_gtid(&at, gtid, standalone);
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
                self.on_query(ctx, &at, thread_id, &db, sql.trim()).await?
            }
            EventBody::Xid(_) => true,
            EventBody::TableMap(raw) => {
                self.on_table_map(&at, raw).await?;
                false
            }
            EventBody::Rows(rows) => {
                self.on_rows(ctx, &at, &rows).await?;
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
            self.end_group(ctx, at.end).await?;
        }
        if at.header.log_pos != 0 {
            self.state.last_end = u64::from(at.header.log_pos);
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
                file: Arc::from(name),
                pos: position,
                gtids: st.gtids.text(),
                events: 0,
                rows: 0,
                snapshot: SnapshotState::Done,
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
        let change = SchemaChange {
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
        };
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

    /// A TABLE_MAP event: decoded (and its row decoder built) once per distinct map.
    async fn on_table_map(&mut self, at: &At, raw: &[u8]) -> Result<(), Halt> {
        let code = at.header.type_code;
        let id_len = self.state.fde.table_id_len(code);
        let table_id = super::reader::le_uint(raw.get(..id_len).unwrap_or_default());
        if self
            .state
            .maps
            .get(&table_id)
            .is_some_and(|m| m.body == raw)
        {
            return Ok(());
        }
        let file = self.state.file.clone();
        let map = TableMap::parse(raw, id_len).map_err(|e| e.at(code, &file, at.start_pos))?;
        let decoder = if self.my().captures(&map.db, &map.table) {
            let d = self.decoder(&map, raw, (code, &file, at.start_pos)).await?;
            self.state
                .latest
                .insert(d.schema.id.clone(), d.schema.clone());
            Some(d)
        } else {
            None
        };
        self.state.maps.insert(
            table_id,
            MapEntry {
                body: raw.to_vec(),
                decoder,
            },
        );
        Ok(())
    }

    /// A rows event: its rows of a captured table become events (skipping those published
    /// before a restart), with transaction metadata when asked for.
    async fn on_rows(
        &mut self,
        ctx: &mut SourceContext,
        at: &At,
        rows: &binlog::RowsEvent<'_>,
    ) -> Result<(), Halt> {
        if self.state.tx.is_none() {
            // A group without BEGIN (a standalone GTID group): it starts at its GTID event,
            // or here.
            self.begin_at_group_start(at, None);
        }
        let code = at.header.type_code;
        let st = &mut self.state;
        let Some(t) = st.tx.as_mut() else {
            return Ok(());
        };
        let ev_index = t.rows_events;
        t.rows_events += 1;
        let Some(entry) = st.maps.get(&rows.table_id) else {
            return Err(binlog::Malformed(format!(
                "rows event for table id {} without a table map",
                rows.table_id
            ))
            .at(code, &st.file, at.start_pos)
            .into());
        };
        let Some(decoder) = entry.decoder.clone() else {
            return Ok(());
        };
        if ev_index < t.skip_events {
            return Ok(());
        }
        let skip_rows = if ev_index == t.skip_events {
            t.skip_rows
        } else {
            0
        };
        self.decode_rows(at, rows, &decoder, ev_index, skip_rows)?;
        self.publish_rows(ctx, &decoder.schema.id).await
    }

    /// Decodes a rows event's rows (from `skip_rows` on) into `state.out`.
    fn decode_rows(
        &mut self,
        at: &At,
        rows: &binlog::RowsEvent<'_>,
        decoder: &RowDecoder,
        ev_index: u64,
        skip_rows: u64,
    ) -> Result<(), Halt> {
        let st = &mut self.state;
        let t = st.tx.as_ref().expect("a transaction is open");
        let table = decoder.schema.clone();
        let db = st
            .dbs
            .entry(table.id.schema.clone())
            .or_insert_with(|| Arc::from(table.id.schema.as_str()))
            .clone();
        let first = st.row_position(t, ev_index, 0);
        let shared = Arc::new(MysqlDetail {
            flavor: self.server.flavor,
            server_id: at.header.server_id,
            gtid: t.gtid.clone(),
            file: t.file.clone(),
            pos: at.start_pos,
            thread: t.thread,
            query: None,
        });
        let out = &mut st.out;
        let mut row_index = 0u32;
        decoder
            .rows(rows, |change| {
                let r = row_index;
                row_index += 1;
                if u64::from(r) < skip_rows {
                    return;
                }
                let op = match (&change.before, &change.after) {
                    (None, Some(_)) => Op::Create,
                    (Some(_), Some(_)) => Op::Update,
                    _ => Op::Delete,
                };
                out.push(ChangeEvent {
                    op,
                    table: Some(table.clone()),
                    before: change.before,
                    after: change.after,
                    source: SourceMeta {
                        ts_us: at.ts_us,
                        snapshot: SnapshotMarker::False,
                        db: db.clone(),
                        detail: SourceDetail::Mysql {
                            shared: shared.clone(),
                            row: r,
                        },
                    },
                    message: None,
                    transaction: None,
                    position: SourcePosition::Mysql(MyPosition {
                        rows: u64::from(r) + 1,
                        ..first.clone()
                    }),
                });
            })
            .map_err(|e| e.at(at.header.type_code, &st.file, at.start_pos).into())
    }

    /// Hands the decoded rows over (those whose operation is published).
    async fn publish_rows(&mut self, ctx: &mut SourceContext, table: &TableId) -> Result<(), Halt> {
        let tx_metadata = self.connector.provide_transaction_metadata;
        let mut out = std::mem::take(&mut self.state.out);
        for mut event in out.drain(..) {
            if !self.connector.publishes(event.op.code()) {
                continue;
            }
            if tx_metadata {
                let Some(t) = self.state.tx.as_mut() else {
                    continue;
                };
                let (id, ts_ms) = (t.id(), t.ts_us / 1000);
                let (begin, block) = t.counts.count(&id, table.to_string(), ts_ms);
                if let Some(begin) = begin {
                    send(ctx, SourceItem::Transaction(begin)).await?;
                }
                event.transaction = Some(block);
            }
            send(ctx, SourceItem::Event(Box::new(event))).await?;
        }
        self.state.out = out;
        Ok(())
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
    async fn end_group(&mut self, ctx: &mut SourceContext, end: u64) -> Result<(), Halt> {
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
            file: st.file.clone(),
            pos: end,
            gtids: st.gtids.text(),
            events: 0,
            rows: 0,
            snapshot: SnapshotState::Done,
        };
        st.evict_maps_if_full();
        let item = SourceItem::Checkpoint(SourcePosition::Mysql(st.resume.clone()));
        send(ctx, item).await
    }

    /// A captured table's current shape: the last table map seen, else the catalog's.
    async fn current_schema(
        &mut self,
        id: &TableId,
    ) -> Result<Arc<crate::event::TableSchema>, MyError> {
        if let Some(t) = self.state.latest.get(id) {
            return Ok(t.clone());
        }
        let conn = &mut self.catalog;
        let map = catalog::describe(conn, id).await?;
        let hints = catalog::hints(conn, id, self.server.flavor).await?;
        let decoder = RowDecoder::new(&map, &hints)
            .map_err(|e| MyError::setup(format!("cannot capture table {id}: {}", e.0)))?;
        self.state.latest.insert(id.clone(), decoder.schema.clone());
        Ok(decoder.schema.clone())
    }

    /// The decoder of a captured table's map, built once per distinct map.
    async fn decoder(
        &mut self,
        map: &TableMap,
        raw: &[u8],
        (code, file, pos): (u8, &str, u64),
    ) -> Result<Arc<RowDecoder>, MyError> {
        // The table id differs between otherwise equal maps: key the cache by the rest.
        let key = raw.get(6..).unwrap_or_default().to_vec();
        if let Some(d) = self.state.decoders.get(&key) {
            return Ok(d.clone());
        }
        if !map.has_names {
            return Err(binlog::Malformed(format!(
                "the table map of {}.{} has no column names: set binlog_row_metadata = FULL on the server",
                map.db, map.table
            ))
            .at(code, file, pos)
            .into());
        }
        let id = TableId {
            schema: map.db.clone(),
            name: map.table.clone(),
        };
        // Never decode without the hints (a boolean column would turn into a number): when the
        // catalog session has gone (the server's wait_timeout), open a new one; when that
        // fails too, the pipeline restarts from the committed position.
        let hints = match catalog::hints(&mut self.catalog, &id, self.server.flavor).await {
            Ok(h) => h,
            Err(e) => {
                tracing::info!(error = %e, "catalog session lost; reconnecting");
                self.catalog = self.info.connect().await?;
                catalog::hints(&mut self.catalog, &id, self.server.flavor).await?
            }
        };
        let decoder = Arc::new(RowDecoder::new(map, &hints).map_err(|e| e.at(code, file, pos))?);
        tracing::debug!(table = %id, columns = decoder.schema.columns.len(), "table map");
        let cache = &mut self.state.decoders;
        if cache.len() >= MAX_TABLE_MAPS {
            cache.clear();
        }
        cache.insert(key, decoder.clone());
        Ok(decoder)
    }
}

/// The next item of a stream, with a panic while polling it (the driver frames events with
/// an `unwrap` on the declared size) turned into an error carrying the panic's message.
async fn guarded_next<S>(stream: &mut S) -> Result<Option<S::Item>, String>
where
    S: futures_util::Stream + Unpin,
{
    std::panic::AssertUnwindSafe(stream.next())
        .catch_unwind()
        .await
        .map_err(crate::failure::panic_message)
}

/// The server's first event (an artificial ROTATE) comes before any format description, so
/// the framing cannot know it ends with a checksum; drop one when the CRC says it is there.
fn strip_unknown_checksum<'b>(
    header: &EventHeader,
    body: &'b [u8],
    fde: &FormatDescription,
) -> &'b [u8] {
    if header.type_code != event_type::ROTATE || !fde.server_version.is_empty() || body.len() < 12 {
        return body;
    }
    let mut raw = Vec::with_capacity(binlog::HEADER_LEN + body.len());
    raw.extend_from_slice(&header.timestamp.to_le_bytes());
    raw.push(header.type_code);
    raw.extend_from_slice(&header.server_id.to_le_bytes());
    raw.extend_from_slice(&header.event_size.to_le_bytes());
    raw.extend_from_slice(&header.log_pos.to_le_bytes());
    raw.extend_from_slice(&header.flags.to_le_bytes());
    let (data, sum) = body.split_at(body.len() - 4);
    raw.extend_from_slice(data);
    if super::reader::crc32(&raw) == u32::from_le_bytes(sum.try_into().expect("4 bytes")) {
        data
    } else {
        body
    }
}
fn stream_error(e: mysql_async::Error) -> MyError {
    match e {
        mysql_async::Error::Server(s) if s.code == 1236 => MyError::setup(format!(
            "the server cannot send the binlog from the stored position: {} (error 1236); the binlog it needs was probably purged. Set snapshot.mode = \"when_needed\" to take a new snapshot, or delete the connector's offset file",
            s.message
        )),
        mysql_async::Error::Server(s) => MyError::Query {
            reason: format!("{} (error {})", s.message, s.code),
            transient: !super::definite_code(s.code),
        },
        other => MyError::Stream(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream whose second poll panics, as the driver does on an event whose declared
    /// size exceeds its bytes.
    struct Breaks(u32);

    impl futures_util::Stream for Breaks {
        type Item = u32;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<u32>> {
            self.0 += 1;
            if self.0 > 1 {
                panic!("failed to fill whole buffer");
            }
            std::task::Poll::Ready(Some(self.0))
        }
    }

    fn state(tx: Option<Tx>) -> State {
        let start = MyPosition {
            file: "mariadb-bin.000007".into(),
            pos: 100,
            gtids: Some("0-1-10".into()),
            events: 0,
            rows: 0,
            snapshot: SnapshotState::Done,
        };
        State {
            fde: FormatDescription::default(),
            file: start.file.clone(),
            gtids: GtidState::parse(MysqlFlavor::Mariadb, start.gtids.as_deref()),
            resume: start.clone(),
            skip_at: None,
            pending_gtid: Some(PendingGtid {
                text: Some("0-1-11".into()),
                gtid: Gtid::Maria(binlog::MariaGtid {
                    domain: 0,
                    server_id: 1,
                    seq: 11,
                }),
                pos: 100,
            }),
            tx,
            maps: HashMap::new(),
            decoders: HashMap::new(),
            dbs: HashMap::new(),
            latest: HashMap::new(),
            last_end: 100,
            out: Vec::new(),
        }
    }

    fn tx() -> Tx {
        Tx {
            file: "mariadb-bin.000007".into(),
            pos: 100,
            gtid: Some("0-1-11".into()),
            ts_us: 0,
            thread: None,
            rows_events: 0,
            skip_events: 0,
            skip_rows: 0,
            counts: Default::default(),
        }
    }

    fn pos(p: MyPosition) -> SourcePosition {
        SourcePosition::Mysql(p)
    }

    /// MariaDB's `CREATE TABLE ... SELECT` (GTID, CREATE, rows, XID): the schema change is
    /// positioned before the group's rows, inside the group, with its GTID not applied, so
    /// offsets never move back and a restart re-reads the rows.
    #[test]
    fn a_ddl_inside_a_group_with_rows_is_positioned_before_them() {
        let mut st = state(Some(tx()));
        let ddl = st.ddl_position(500);
        assert_eq!(ddl.pos, 100, "the group's start");
        assert_eq!(ddl.gtids.as_deref(), Some("0-1-10"), "GTID not applied yet");
        assert!(
            st.pending_gtid.is_some(),
            "the group's GTID applies at its end"
        );
        let t = st.tx.as_ref().unwrap();
        let first_row = st.row_position(t, 0, 0);
        assert!(pos(ddl.clone()) < pos(first_row.clone()));
        // A restart from the DDL record's position resumes at the group's start.
        assert_eq!((ddl.events, ddl.rows), (0, 0));
    }

    #[test]
    fn a_ddl_of_its_own_group_is_positioned_after_it_with_its_gtid() {
        let mut st = state(None);
        let ddl = st.ddl_position(500);
        assert_eq!(ddl.pos, 500);
        assert_eq!(ddl.gtids.as_deref(), Some("0-1-11"));
        assert!(st.pending_gtid.is_none());
    }

    #[test]
    fn table_maps_are_evicted_only_between_transactions() {
        let mut st = state(Some(tx()));
        for id in 0..MAX_TABLE_MAPS as u64 + 5 {
            st.maps.insert(
                id,
                MapEntry {
                    body: Vec::new(),
                    decoder: None,
                },
            );
        }
        st.evict_maps_if_full();
        assert_eq!(
            st.maps.len(),
            MAX_TABLE_MAPS + 5,
            "kept inside a transaction"
        );
        st.tx = None;
        st.evict_maps_if_full();
        assert!(st.maps.is_empty());
    }

    #[test]
    fn mysql_atomic_create_select_opens_a_transaction() {
        assert!(opens_transaction(
            "CREATE TABLE `t2` (\n  `id` int NOT NULL\n) START TRANSACTION"
        ));
        assert!(opens_transaction(
            "create table t2 select 1 start transaction ;"
        ));
        assert!(!opens_transaction("CREATE TABLE t2 (id int)"));
        assert!(!opens_transaction("TRANSACTION"));
        assert!(!opens_transaction(
            "CREATE TABLE é (x text DEFAULT 'ééééééééééééééé')"
        ));
    }

    #[tokio::test]
    async fn a_panic_while_framing_an_event_is_an_error_not_a_dead_task() {
        let mut s = Breaks(0);
        assert_eq!(guarded_next(&mut s).await, Ok(Some(1)));
        let err = guarded_next(&mut s).await.unwrap_err();
        assert!(err.contains("failed to fill whole buffer"), "{err}");
    }
}
