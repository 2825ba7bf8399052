//! Table maps and rows: each distinct table map becomes a decoding plan once (with the
//! catalog's hints), and rows events of captured tables become change events.

use std::sync::Arc;

use super::super::binlog;
use super::super::catalog;
use super::super::plan::RowDecoder;
use super::super::table_map::TableMap;
use super::super::MyError;
use super::state::{At, MapEntry, MAX_TABLE_MAPS};
use super::{send, Halt, Streamer};
use crate::event::{
    ChangeEvent, MysqlDetail, Op, SnapshotMarker, SourceDetail, SourceMeta, TableId,
};
use crate::position::{MyPosition, SourcePosition};
use crate::source::{SourceContext, SourceItem};

impl Streamer<'_> {
    /// A TABLE_MAP event: decoded (and its row decoder built) once per distinct map.
    pub(super) async fn on_table_map(&mut self, at: &At, raw: &[u8]) -> Result<(), Halt> {
        let code = at.header.type_code;
        let id_len = self.state.fde.table_id_len(code);
        let table_id = super::super::reader::le_uint(raw.get(..id_len).unwrap_or_default());
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
            let previous = self
                .state
                .latest
                .insert(d.schema.id.clone(), d.schema.clone());
            if previous.is_none() {
                // The first table map of a captured table in this run (a table created after
                // the start is captured from here).
                tracing::info!(table = %d.schema.id, file = %file, pos = at.start_pos, "capturing table from its first table map");
            }
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
    pub(super) async fn on_rows(
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
            self.signal_row(&event);
            if !self.connector.publishes(event.op.code()) {
                continue;
            }
            self.supersede(&event);
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

    /// A captured table's current shape: the last table map seen, else the catalog's.
    pub(super) async fn current_schema(
        &mut self,
        id: &TableId,
    ) -> Result<Arc<crate::event::TableSchema>, MyError> {
        if let Some(t) = self.state.latest.get(id) {
            return Ok(t.clone());
        }
        let conn = &mut self.catalog;
        let map = catalog::describe(conn, id).await?;
        let hints = catalog::hints(conn, id, self.server.flavor, &self.connector.types).await?;
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
        let hints = match catalog::hints(
            &mut self.catalog,
            &id,
            self.server.flavor,
            &self.connector.types,
        )
        .await
        {
            Ok(h) => h,
            Err(e) => {
                tracing::info!(error = %e, "catalog session lost; reconnecting");
                self.catalog = self.info.connect().await?;
                catalog::hints(
                    &mut self.catalog,
                    &id,
                    self.server.flavor,
                    &self.connector.types,
                )
                .await?
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
