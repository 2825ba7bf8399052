//! The binlog session: registers as a replica, asks for the binlog from the stored position
//! (MariaDB: from the stored GTID state), and turns events into [`SourceItem`]s.
//!
//! Transactions are tracked from their first event (GTID event, or `BEGIN` without GTIDs)
//! to their end (`XID`, `COMMIT`, or a DDL statement): every published row carries the
//! transaction's start plus how many rows events and rows of it are done; the end gives a
//! checkpoint at the next transaction's start.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{FutureExt, StreamExt};
use mysql_async::prelude::Queryable;
use mysql_async::BinlogStreamRequest;
use mysql_async::Conn;

use super::binlog::{self, decode_body, event_type, EventBody, EventHeader, FormatDescription};
use super::catalog;
use super::gtid::{valid_maria_state, Gtid, GtidState};
use super::rows::RowDecoder;
use super::statements::{ddl_concerns, is_ddl, truncated_table};
use super::table_map::TableMap;
use super::{ConnInfo, MyError, ServerInfo};
use crate::config::{ConnectorConfig, MysqlConfig};
use crate::event::{
    ChangeEvent, MysqlDetail, MysqlFlavor, Op, SchemaChange, SnapshotMarker, SourceDetail,
    SourceMeta, TableId,
};
use crate::position::{MyPosition, SnapshotState, SourcePosition};
use crate::source::snapshot_rows::now_us;
use crate::source::{SourceContext, SourceExit, SourceItem};

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

/// One streaming run.
pub(super) struct Streamer<'a> {
    connector: &'a ConnectorConfig,
    info: &'a ConnInfo,
    server: &'a ServerInfo,
    start: MyPosition,
}

impl<'a> Streamer<'a> {
    pub async fn new(
        connector: &'a ConnectorConfig,
        info: &'a ConnInfo,
        server: &'a ServerInfo,
        start: MyPosition,
    ) -> Result<Streamer<'a>, MyError> {
        Ok(Streamer {
            connector,
            info,
            server,
            start,
        })
    }

    fn my(&self) -> &MysqlConfig {
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
    pub async fn run(self, ctx: &mut SourceContext) -> Result<SourceExit, MyError> {
        let my = self.my();
        let mut catalog_conn = self.info.connect().await?;
        let mut stream = self.open().await?;
        tracing::info!(
            file = %self.start.file,
            pos = self.start.pos,
            gtids = self.start.gtids.as_deref().unwrap_or(""),
            "binlog streaming started"
        );
        ctx.observer
            .set_state(crate::runtime::ConnectorState::Streaming);
        let flavor = self.server.flavor;
        let tx_metadata = self.connector.provide_transaction_metadata;
        let mut fde = FormatDescription::default();
        let mut file: Arc<str> = self.start.file.clone();
        let mut gtids = GtidState::parse(flavor, self.start.gtids.as_deref());
        let mut resume = self.start.clone();
        let mut skip_at = (self.start.events > 0 || self.start.rows > 0).then(|| {
            (
                self.start.file.clone(),
                self.start.pos,
                self.start.events,
                self.start.rows,
            )
        });
        let mut pending_gtid: Option<PendingGtid> = None;
        let mut tx: Option<Tx> = None;
        let mut maps: HashMap<u64, MapEntry> = HashMap::new();
        let mut decoders: HashMap<Vec<u8>, Arc<RowDecoder>> = HashMap::new();
        let mut dbs: HashMap<String, Arc<str>> = HashMap::new();
        // The last shape seen of each captured table (for truncate records).
        let mut latest: HashMap<TableId, Arc<crate::event::TableSchema>> = HashMap::new();
        let mut last_end: u64 = self.start.pos;
        let mut heartbeat = self
            .connector
            .heartbeat_interval_ms
            .map(|ms| tokio::time::interval(std::time::Duration::from_millis(ms)));
        let mut out: Vec<ChangeEvent> = Vec::new();
        loop {
            // Events already buffered are taken at once; queued items are handed over only
            // when the stream has nothing ready (one channel hand-off per burst, not per row).
            let ready = if ctx.pending.is_empty() {
                None
            } else {
                stream.next().now_or_never()
            };
            let next = if let Some(ev) = ready {
                ev
            } else {
                if !ctx.pending.is_empty() && !ctx.flush().await {
                    return Ok(SourceExit::Shutdown);
                }
                tokio::select! {
                biased;
                _ = ctx.shutdown.changed() => return Ok(SourceExit::Shutdown),
                _ = tick(&mut heartbeat) => {
                    if let Some(query) = &my.heartbeat_action_query {
                        if let Err(e) = catalog_conn.query_drop(query.as_str()).await {
                            tracing::warn!(error = %e, "heartbeat_action_query failed");
                            if let Ok(c) = self.info.connect().await {
                                catalog_conn = c;
                            }
                        }
                    }
                    let position = tx.is_none().then(|| SourcePosition::Mysql(resume.clone()));
                    let item = SourceItem::Heartbeat { position, ts_ms: now_us() / 1000 };
                    if !(ctx.send(item).await && ctx.flush().await) {
                        return Ok(SourceExit::Shutdown);
                    }
                    continue;
                }
                ev = stream.next() => ev,
                }
            };
            let event = match next {
                Some(Ok(e)) => e,
                Some(Err(e)) => return Err(stream_error(e)),
                None => return Err(MyError::Stream("the server ended the binlog stream".into())),
            };
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
            let start_pos = header.start_pos();
            let end = if header.log_pos != 0 {
                u64::from(header.log_pos)
            } else {
                last_end
            };
            let body = strip_unknown_checksum(&header, event.data(), &fde);
            let decoded = if code == event_type::FORMAT_DESCRIPTION {
                FormatDescription::parse_stripped(body, false).map(EventBody::FormatDescription)
            } else {
                decode_body(&fde, &header, body)
            };
            let decoded = decoded.map_err(|e| e.at(code, &file, start_pos))?;
            let ts_us = i64::from(header.timestamp) * 1_000_000;
            // XID, COMMIT / ROLLBACK, or a DDL statement outside BEGIN ends the event group.
            let mut ends_group = false;
            match decoded {
                EventBody::FormatDescription(f) => fde = f,
                EventBody::Rotate {
                    position,
                    file: name,
                } => {
                    file = Arc::from(name.as_str());
                    last_end = position;
                    if tx.is_none() && header.flags & binlog::LOG_EVENT_ARTIFICIAL_F == 0 {
                        resume = MyPosition {
                            file: Arc::from(name),
                            pos: position,
                            gtids: gtids.text(),
                            events: 0,
                            rows: 0,
                            snapshot: SnapshotState::Done,
                        };
                        if !ctx
                            .send(SourceItem::Checkpoint(SourcePosition::Mysql(
                                resume.clone(),
                            )))
                            .await
                        {
                            return Ok(SourceExit::Shutdown);
                        }
                    }
                    continue;
                }
                EventBody::MariaGtid { gtid, standalone } => {
                    let pending = PendingGtid {
                        text: Some(Arc::from(gtid.to_string().as_str())),
                        gtid: Gtid::Maria(gtid),
                        pos: start_pos,
                    };
                    if !standalone {
                        tx = Some(self.begin_tx(
                            &file,
                            start_pos,
                            pending.text.clone(),
                            ts_us,
                            None,
                            &mut skip_at,
                        ));
                    }
                    pending_gtid = Some(pending);
                }
                EventBody::MysqlGtid(g) => {
                    pending_gtid = Some(PendingGtid {
                        text: g.as_ref().map(|g| Arc::from(g.to_string().as_str())),
                        gtid: g.map_or(Gtid::Anonymous, Gtid::Mysql),
                        pos: start_pos,
                    });
                }
                EventBody::Query { thread_id, db, sql } => {
                    let trimmed = sql.trim();
                    if trimmed.eq_ignore_ascii_case("BEGIN")
                        || trimmed.eq_ignore_ascii_case("XA START")
                    {
                        match tx.as_mut() {
                            Some(t) => t.thread = Some(thread_id),
                            None => {
                                let (gtid, pos) = match pending_gtid.as_ref() {
                                    Some(p) => (p.text.clone(), p.pos),
                                    None => (None, start_pos),
                                };
                                tx = Some(self.begin_tx(
                                    &file,
                                    pos,
                                    gtid,
                                    ts_us,
                                    Some(thread_id),
                                    &mut skip_at,
                                ));
                            }
                        }
                    } else if trimmed.eq_ignore_ascii_case("COMMIT")
                        || trimmed.eq_ignore_ascii_case("ROLLBACK")
                    {
                        ends_group = true;
                    } else if is_ddl(trimmed) {
                        let in_explicit_tx = tx.is_some();
                        if let Some(database) = ddl_concerns(my, &db, trimmed) {
                            let gtid = pending_gtid.as_ref().and_then(|p| p.text.clone());
                            if let Some(p) = pending_gtid.take() {
                                gtids.apply_pending(p.gtid);
                            }
                            let after = MyPosition {
                                file: file.clone(),
                                pos: end,
                                gtids: gtids.text(),
                                events: 0,
                                rows: 0,
                                snapshot: SnapshotState::Done,
                            };
                            let change = SchemaChange {
                                database: database.clone(),
                                ddl: trimmed.to_string(),
                                source: SourceMeta {
                                    ts_us,
                                    snapshot: SnapshotMarker::False,
                                    db: Arc::from(database.as_str()),
                                    detail: SourceDetail::Mysql {
                                        shared: Arc::new(MysqlDetail {
                                            flavor,
                                            server_id: header.server_id,
                                            gtid,
                                            file: file.clone(),
                                            pos: start_pos,
                                            thread: Some(thread_id),
                                            query: None,
                                        }),
                                        row: 0,
                                    },
                                },
                                position: SourcePosition::Mysql(after),
                            };
                            tracing::info!(database = %database, ddl = %trimmed, "schema change");
                            let truncated = truncated_table(trimmed, &db)
                                .filter(|t| my.captures(&t.schema, &t.name))
                                .filter(|_| self.connector.publishes("t"));
                            let truncate = match truncated {
                                Some(id) => {
                                    let table = self
                                        .current_schema(&mut catalog_conn, &mut latest, &id)
                                        .await?;
                                    Some(ChangeEvent {
                                        op: Op::Truncate,
                                        table: Some(table),
                                        before: None,
                                        after: None,
                                        source: SourceMeta {
                                            db: Arc::from(id.schema.as_str()),
                                            ..change.source.clone()
                                        },
                                        message: None,
                                        transaction: None,
                                        position: change.position.clone(),
                                    })
                                }
                                None => None,
                            };
                            if !ctx.send(SourceItem::SchemaChange(Box::new(change))).await {
                                return Ok(SourceExit::Shutdown);
                            }
                            if let Some(event) = truncate {
                                if !ctx.send(SourceItem::Event(Box::new(event))).await {
                                    return Ok(SourceExit::Shutdown);
                                }
                            }
                        }
                        ends_group = !in_explicit_tx;
                    }
                }
                EventBody::Xid(_) => ends_group = true,
                EventBody::TableMap(raw) => {
                    let id_len = fde.table_id_len(code);
                    let table_id = binlog::le_uint(raw.get(..id_len).unwrap_or_default());
                    let same = maps.get(&table_id).is_some_and(|m| m.body == raw);
                    if !same {
                        let map = TableMap::parse(raw, id_len)
                            .map_err(|e| e.at(code, &file, start_pos))?;
                        let decoder = if my.captures(&map.db, &map.table) {
                            let d = self
                                .decoder(
                                    &mut catalog_conn,
                                    &mut decoders,
                                    &map,
                                    raw,
                                    (code, &file, start_pos),
                                )
                                .await?;
                            latest.insert(d.schema.id.clone(), d.schema.clone());
                            Some(d)
                        } else {
                            None
                        };
                        if maps.len() >= MAX_TABLE_MAPS {
                            maps.clear();
                        }
                        maps.insert(
                            table_id,
                            MapEntry {
                                body: raw.to_vec(),
                                decoder,
                            },
                        );
                    }
                }
                EventBody::Rows(rows) => {
                    if tx.is_none() {
                        // A group without BEGIN (a standalone GTID group): it starts at its
                        // GTID event, or here.
                        let (gtid, pos) = match pending_gtid.as_ref() {
                            Some(p) => (p.text.clone(), p.pos),
                            None => (None, start_pos),
                        };
                        tx = Some(self.begin_tx(&file, pos, gtid, ts_us, None, &mut skip_at));
                    }
                    let Some(t) = tx.as_mut() else { continue };
                    let ev_index = t.rows_events;
                    t.rows_events += 1;
                    let Some(entry) = maps.get(&rows.table_id) else {
                        return Err(binlog::Malformed(format!(
                            "rows event for table id {} without a table map",
                            rows.table_id
                        ))
                        .at(code, &file, start_pos)
                        .into());
                    };
                    let Some(decoder) = entry.decoder.clone() else {
                        continue;
                    };
                    if ev_index < t.skip_events {
                        continue;
                    }
                    let skip_rows = if ev_index == t.skip_events {
                        t.skip_rows
                    } else {
                        0
                    };
                    let table = decoder.schema.clone();
                    let db = dbs
                        .entry(table.id.schema.clone())
                        .or_insert_with(|| Arc::from(table.id.schema.as_str()))
                        .clone();
                    let gtids_before = resume.gtids.clone();
                    let mut row_index = 0u32;
                    let mut decode_err = None;
                    let t_file = t.file.clone();
                    let t_pos = t.pos;
                    let shared = Arc::new(MysqlDetail {
                        flavor,
                        server_id: header.server_id,
                        gtid: t.gtid.clone(),
                        file: t.file.clone(),
                        pos: start_pos,
                        thread: t.thread,
                        query: None,
                    });
                    decoder
                        .rows(&rows, |change| {
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
                                    ts_us,
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
                                    file: t_file.clone(),
                                    pos: t_pos,
                                    gtids: gtids_before.clone(),
                                    events: ev_index,
                                    rows: u64::from(r) + 1,
                                    snapshot: SnapshotState::Done,
                                }),
                            });
                        })
                        .unwrap_or_else(|e| decode_err = Some(e));
                    if let Some(e) = decode_err {
                        return Err(e.at(code, &file, start_pos).into());
                    }
                    for mut event in out.drain(..) {
                        if !self.connector.publishes(event.op.code()) {
                            continue;
                        }
                        if tx_metadata {
                            let Some(t) = tx.as_mut() else { continue };
                            let (id, ts_ms) = (t.id(), t.ts_us / 1000);
                            let (begin, block) = t.counts.count(&id, table.id.to_string(), ts_ms);
                            if let Some(begin) = begin {
                                if !ctx.send(SourceItem::Transaction(begin)).await {
                                    return Ok(SourceExit::Shutdown);
                                }
                            }
                            event.transaction = Some(block);
                        }
                        if !ctx.send(SourceItem::Event(Box::new(event))).await {
                            return Ok(SourceExit::Shutdown);
                        }
                    }
                }
                EventBody::MariaGtidList(list) => {
                    tracing::debug!(?list, "GTID list");
                }
                EventBody::TransactionPayload { .. }
                | EventBody::Heartbeat
                | EventBody::BinlogCheckpoint(_)
                | EventBody::RowsQuery(_)
                | EventBody::Stop
                | EventBody::Ignored => {}
            }
            if ends_group
                && !self
                    .commit(
                        ctx,
                        &mut tx,
                        &mut pending_gtid,
                        &mut gtids,
                        &file,
                        end,
                        &mut resume,
                    )
                    .await
            {
                return Ok(SourceExit::Shutdown);
            }
            if header.log_pos != 0 {
                last_end = u64::from(header.log_pos);
            }
        }
    }

    fn begin_tx(
        &self,
        file: &Arc<str>,
        pos: u64,
        gtid: Option<Arc<str>>,
        ts_us: i64,
        thread: Option<u32>,
        skip_at: &mut Option<(Arc<str>, u64, u64, u64)>,
    ) -> Tx {
        let (skip_events, skip_rows) = match skip_at.take() {
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

    #[allow(clippy::too_many_arguments)]
    async fn commit(
        &self,
        ctx: &mut SourceContext,
        tx: &mut Option<Tx>,
        pending_gtid: &mut Option<PendingGtid>,
        gtids: &mut GtidState,
        file: &Arc<str>,
        end: u64,
        resume: &mut MyPosition,
    ) -> bool {
        if let Some(p) = pending_gtid.take() {
            gtids.apply_pending(p.gtid);
        }
        if let Some(end_meta) = tx.take().and_then(|t| {
            let (id, ts_ms) = (t.id(), t.ts_us / 1000);
            t.counts.end(id, ts_ms)
        }) {
            if !ctx.send(SourceItem::Transaction(end_meta)).await {
                return false;
            }
        }
        *resume = MyPosition {
            file: file.clone(),
            pos: end,
            gtids: gtids.text(),
            events: 0,
            rows: 0,
            snapshot: SnapshotState::Done,
        };
        ctx.send(SourceItem::Checkpoint(SourcePosition::Mysql(
            resume.clone(),
        )))
        .await
    }

    /// A captured table's current shape: the last table map seen, else the catalog's.
    async fn current_schema(
        &self,
        conn: &mut Conn,
        latest: &mut HashMap<TableId, Arc<crate::event::TableSchema>>,
        id: &TableId,
    ) -> Result<Arc<crate::event::TableSchema>, MyError> {
        if let Some(t) = latest.get(id) {
            return Ok(t.clone());
        }
        let map = catalog::describe(conn, id).await?;
        let hints = catalog::hints(conn, id, self.server.flavor).await?;
        let decoder = RowDecoder::new(&map, &hints)
            .map_err(|e| MyError::Setup(format!("cannot capture table {id}: {}", e.0)))?;
        latest.insert(id.clone(), decoder.schema.clone());
        Ok(decoder.schema.clone())
    }

    /// The decoder of a captured table's map, built once per distinct map.
    async fn decoder(
        &self,
        conn: &mut Conn,
        cache: &mut HashMap<Vec<u8>, Arc<RowDecoder>>,
        map: &TableMap,
        raw: &[u8],
        (code, file, pos): (u8, &str, u64),
    ) -> Result<Arc<RowDecoder>, MyError> {
        // The table id differs between otherwise equal maps: key the cache by the rest.
        let key = raw.get(6..).unwrap_or_default().to_vec();
        if let Some(d) = cache.get(&key) {
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
        let hints = match catalog::hints(conn, &id, self.server.flavor).await {
            Ok(h) => h,
            Err(e) => {
                tracing::info!(error = %e, "catalog session lost; reconnecting");
                *conn = self.info.connect().await?;
                catalog::hints(conn, &id, self.server.flavor).await?
            }
        };
        let decoder = Arc::new(RowDecoder::new(map, &hints).map_err(|e| e.at(code, file, pos))?);
        tracing::debug!(table = %id, columns = decoder.schema.columns.len(), "table map");
        if cache.len() >= MAX_TABLE_MAPS {
            cache.clear();
        }
        cache.insert(key, decoder.clone());
        Ok(decoder)
    }
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
        mysql_async::Error::Server(s) if s.code == 1236 => MyError::Setup(format!(
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

async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}
