//! The consistent snapshot: `FLUSH TABLES WITH READ LOCK`, `START TRANSACTION WITH
//! CONSISTENT SNAPSHOT`, read the binlog position and GTID state, `UNLOCK TABLES`, then read
//! every captured table inside that transaction, ordered by primary key and streamed row by
//! row. Streaming then starts exactly at the recorded position.
//!
//! Without the RELOAD privilege the global lock is refused: the captured tables are then
//! locked (`LOCK TABLES ... READ`) for the whole read instead, which blocks their writers
//! until the snapshot ends.

use std::collections::HashMap;
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::catalog::{self, quote};
use super::plan::RowDecoder;
use super::{ConnInfo, MyError, ServerInfo};
use crate::config::ConnectorConfig;
use crate::event::{ChangeEvent, MysqlDetail, Op, SnapshotMarker, SourceDetail, SourceMeta};
use crate::offsets::OffsetStore;
use crate::position::{MyPosition, SnapshotState, SourcePosition};
use crate::source::snapshot_rows::{now_us, Emitter, TableProgress};
use crate::source::SourceContext;

/// One snapshot run.
pub(super) struct Snapshot<'a> {
    pub connector: &'a ConnectorConfig,
    pub info: &'a ConnInfo,
    pub server: &'a ServerInfo,
    pub offsets: &'a dyn OffsetStore,
}

impl Snapshot<'_> {
    /// Reads every captured table; returns the position streaming starts from (`None`:
    /// shutdown came first).
    pub async fn run(&self, ctx: &mut SourceContext) -> Result<Option<MyPosition>, MyError> {
        let my = self.connector.mysql.as_ref().expect("validated [mysql]");
        let mut conn = self.info.connect().await?;
        let tables = catalog::captured_tables(&mut conn, my).await?;
        let mut shapes = Vec::with_capacity(tables.len());
        for t in &tables {
            let map = catalog::describe(&mut conn, t).await?;
            let hints = catalog::hints(&mut conn, t, self.server.flavor).await?;
            let decoder = RowDecoder::new(&map, &hints)
                .map_err(|e| MyError::setup(format!("cannot capture table {t}: {}", e.0)))?;
            let estimate = catalog::row_estimate(&mut conn, t).await;
            shapes.push((decoder, estimate));
        }
        let global = match conn.query_drop("FLUSH TABLES WITH READ LOCK").await {
            Ok(()) => true,
            Err(mysql_async::Error::Server(e)) if matches!(e.code, 1227 | 1044 | 1045) => {
                tracing::warn!(
                    reason = %e.message,
                    "the global read lock was refused (the user lacks RELOAD): locking the captured tables for the whole snapshot instead; their writers wait until it ends"
                );
                false
            }
            Err(e) => return Err(MyError::query(e)),
        };
        if global {
            conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .await
                .map_err(MyError::query)?;
            conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                .await
                .map_err(MyError::query)?;
        } else {
            conn.query_drop("SET autocommit = 0")
                .await
                .map_err(MyError::query)?;
            if !tables.is_empty() {
                let list: Vec<String> = tables
                    .iter()
                    .map(|t| format!("{}.{} READ", quote(&t.schema), quote(&t.name)))
                    .collect();
                conn.query_drop(format!("LOCK TABLES {}", list.join(", ")))
                    .await
                    .map_err(|e| {
                        MyError::setup(format!(
                            "cannot lock the captured tables for the snapshot ({}); grant RELOAD (preferred: a brief global lock) or LOCK TABLES to the user",
                            MyError::query(e)
                        ))
                    })?;
            }
        }
        let (file, pos) = catalog::master_status(&mut conn).await?;
        let gtids = catalog::gtid_state(&mut conn, self.server.flavor).await?;
        if global {
            conn.query_drop("UNLOCK TABLES")
                .await
                .map_err(MyError::query)?;
        }
        let server_id: u32 = conn
            .query_first("SELECT @@server_id")
            .await
            .map_err(MyError::query)?
            .unwrap_or(0);
        let in_progress = MyPosition {
            file: file.as_str().into(),
            pos,
            gtids: gtids.map(Into::into),
            events: 0,
            rows: 0,
            snapshot: SnapshotState::InProgress,
        };
        // Stored before any row: a restart knows a snapshot was under way.
        self.offsets.reset(
            &self.connector.name,
            &SourcePosition::Mysql(in_progress.clone()),
        )?;
        tracing::info!(tables = tables.len(), file = %file, pos, "snapshot started");
        ctx.observer
            .set_state(crate::status::ConnectorState::Snapshotting);
        let started = std::time::Instant::now();
        let position = SourcePosition::Mysql(in_progress.clone());
        let file: Arc<str> = Arc::from(file.as_str());
        let mut emitter = Emitter::new();
        let mut dbs: HashMap<String, Arc<str>> = HashMap::new();
        for (decoder, estimate) in &shapes {
            let schema = &decoder.schema;
            let db = dbs
                .entry(schema.id.schema.clone())
                .or_insert_with(|| Arc::from(schema.id.schema.as_str()))
                .clone();
            let detail = SourceDetail::Mysql {
                shared: Arc::new(MysqlDetail {
                    flavor: self.server.flavor,
                    server_id,
                    gtid: None,
                    file: file.clone(),
                    pos,
                    thread: None,
                    query: None,
                }),
                row: 0,
            };
            let (cols, order) = schema.select_parts(quote);
            let columns = schema.columns.len();
            let sql = format!(
                "SELECT {} FROM {}.{}{}",
                cols,
                quote(&schema.id.schema),
                quote(&schema.id.name),
                order
            );
            let mut progress = TableProgress::new(ctx, schema.id.to_string(), *estimate);
            let mut result = conn.query_iter(sql).await.map_err(MyError::query)?;
            while let Some(row) = result.next().await.map_err(MyError::query)? {
                let mut values = Vec::with_capacity(columns);
                for i in 0..columns {
                    let raw = match row.as_ref(i) {
                        Some(mysql_async::Value::Bytes(b)) => Some(b.as_slice()),
                        _ => None,
                    };
                    values.push(decoder.parse_text(i, raw).map_err(|e| {
                        MyError::setup(format!(
                            "cannot read column {} of {}: {}",
                            schema.columns[i].name, schema.id, e.0
                        ))
                    })?);
                }
                let event = ChangeEvent {
                    op: Op::Read,
                    table: Some(schema.clone()),
                    before: None,
                    after: Some(values),
                    source: SourceMeta {
                        ts_us: now_us(),
                        snapshot: SnapshotMarker::True,
                        db: db.clone(),
                        detail: detail.clone(),
                    },
                    message: None,
                    transaction: None,
                    position: position.clone(),
                };
                if !emitter.push(ctx, event).await {
                    return Ok(None);
                }
                progress.row(ctx);
            }
            drop(result);
            let rows = progress.finish(ctx);
            tracing::info!(table = %schema.id, rows, "snapshot of table finished");
        }
        let done = MyPosition {
            snapshot: SnapshotState::Done,
            ..in_progress
        };
        if !emitter
            .finish(ctx, SourcePosition::Mysql(done.clone()))
            .await
        {
            return Ok(None);
        }
        finish(&mut conn, global).await?;
        tracing::info!(
            rows = emitter.sent,
            seconds = started.elapsed().as_secs_f64(),
            "snapshot finished"
        );
        Ok(Some(done))
    }
}

async fn finish(conn: &mut Conn, global: bool) -> Result<(), MyError> {
    if !global {
        conn.query_drop("UNLOCK TABLES")
            .await
            .map_err(MyError::query)?;
    }
    conn.query_drop("COMMIT").await.map_err(MyError::query)
}
