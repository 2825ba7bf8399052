//! The consistent snapshot: `FLUSH TABLES WITH READ LOCK`, `START TRANSACTION WITH
//! CONSISTENT SNAPSHOT`, read the binlog position and GTID state, `UNLOCK TABLES`, then read
//! every captured table inside that transaction, ordered by primary key and streamed row by
//! row. Streaming then starts exactly at the recorded position.
//!
//! Without the RELOAD privilege the global lock is refused: the captured tables are then
//! locked (`LOCK TABLES ... READ`) for the whole read instead, which blocks their writers
//! until the snapshot ends.

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::catalog::{self, quote};
use super::plan::RowDecoder;
use super::{ConnInfo, MyError, ServerInfo};
use crate::config::ConnectorConfig;
use crate::event::{
    ChangeEvent, MysqlDetail, Op, SnapshotMarker, SourceDetail, SourceMeta, TableId,
};
use crate::offsets::OffsetStore;
use crate::position::{IncrementalProgress, MyPosition, SnapshotState, SourcePosition};
use crate::source::now_us;
use crate::source::snapshot_rows::{
    integer_key, key_ranges, publish_in_order, table_channels, AheadSender, Channel, Direct,
    Emitter, RowOut, TableMsg, TableProgress, SPLIT_ROWS,
};
use crate::source::SourceContext;

/// One snapshot run.
pub(super) struct Snapshot<'a> {
    pub connector: &'a ConnectorConfig,
    pub info: &'a ConnInfo,
    pub server: &'a ServerInfo,
    pub offsets: &'a dyn OffsetStore,
}

/// The consistent view a snapshot reads in, and where the binlog was when it was opened.
struct View {
    /// A global read lock opened the view (else the captured tables stay locked until the
    /// snapshot ends).
    global: bool,
    file: String,
    pos: u64,
    gtids: Option<String>,
}

impl Snapshot<'_> {
    /// Reads every captured table; returns the position streaming starts from (`None`:
    /// shutdown came first).
    pub async fn run(&self, ctx: &mut SourceContext) -> Result<Option<MyPosition>, MyError> {
        let my = self.connector.mysql.as_ref().expect("validated [mysql]");
        let mut conn = self.info.connect().await?;
        let tables = catalog::captured_tables(&mut conn, my).await?;
        let shapes = self.describe(&mut conn, &tables).await?;
        let threads = self
            .connector
            .snapshot
            .max_threads
            .clamp(1, tables.len().max(1));
        let mut extra = Vec::with_capacity(threads - 1);
        for _ in 1..threads {
            extra.push(self.info.connect().await?);
        }
        let view = open_view(&mut conn, &tables, self.server.flavor, &mut extra).await?;
        let server_id: u32 = conn
            .query_first("SELECT @@server_id")
            .await
            .map_err(MyError::query)?
            .unwrap_or(0);
        let in_progress = MyPosition {
            incremental: None,
            file: view.file.as_str().into(),
            pos: view.pos,
            gtids: view.gtids.clone().map(Into::into),
            events: 0,
            rows: 0,
            snapshot: SnapshotState::InProgress,
            last_event: None,
        };
        // Stored before any row: a restart knows a snapshot was under way. When every table
        // can be read by key, the restart streams from the snapshot's position and reads the
        // tables incrementally instead of starting over (rows published by this run but
        // deleted before the next run's snapshot would stay in the topics with nothing to
        // delete them).
        let every_keyed = shapes.iter().all(|(decoder, _)| {
            crate::source::incremental::chunk_key(self.connector, &decoder.schema).is_ok()
        });
        let progress = (every_keyed && !tables.is_empty()).then(|| {
            Arc::new(IncrementalProgress {
                tables: tables.iter().map(TableId::to_string).collect(),
                conditions: Default::default(),
                last_key: None,
                chunks: 0,
                paused: false,
            })
        });
        self.offsets.reset(
            &self.connector.name,
            &SourcePosition::Mysql(MyPosition {
                incremental: progress,
                ..in_progress.clone()
            }),
        )?;
        tracing::info!(tables = tables.len(), file = %view.file, pos = view.pos, "snapshot started");
        ctx.observer
            .set_state(crate::status::ConnectorState::Snapshotting);
        let started = std::time::Instant::now();
        let mut emitter = Emitter::new();
        let detail = SourceDetail::Mysql {
            shared: Arc::new(MysqlDetail {
                flavor: self.server.flavor,
                server_id,
                gtid: None,
                file: in_progress.file.clone(),
                pos: view.pos,
                thread: None,
                query: None,
            }),
            row: 0,
        };
        let position = SourcePosition::Mysql(in_progress.clone());
        let names: Vec<String> = tables.iter().map(TableId::to_string).collect();
        let mut reads: Vec<TableRead> = Vec::with_capacity(shapes.len());
        for (k, (decoder, estimate)) in shapes.iter().enumerate() {
            let read = TableRead {
                decoder,
                estimate: *estimate,
                detail: &detail,
                position: &position,
                tables_left: &names[k..],
                range: None,
            };
            // A big table with a one-column integer key: one key range per session.
            let ranges = match integer_key(&decoder.schema) {
                Some(col) if !extra.is_empty() && *estimate >= SPLIT_ROWS => {
                    let col = quote(col);
                    let t = &decoder.schema.id;
                    // As text: an unsigned BIGINT key may not fit an i64 (no split then).
                    let bounds: Option<(Option<String>, Option<String>)> = conn
                        .query_first(format!(
                            "SELECT MIN({col}), MAX({col}) FROM {}.{}",
                            quote(&t.schema),
                            quote(&t.name)
                        ))
                        .await
                        .map_err(MyError::query)?;
                    let parse = |v: Option<String>| v.and_then(|v| v.parse::<i64>().ok());
                    match bounds.map(|(lo, hi)| (parse(lo), parse(hi))) {
                        Some((Some(lo), Some(hi))) => key_ranges(&col, lo, hi, extra.len() + 1),
                        _ => Vec::new(),
                    }
                }
                _ => Vec::new(),
            };
            if ranges.is_empty() {
                reads.push(read);
                continue;
            }
            let part = *estimate / ranges.len() as i64;
            for r in ranges {
                reads.push(TableRead {
                    estimate: part,
                    range: Some(r),
                    ..read.clone()
                });
            }
        }
        let finished = if extra.is_empty() {
            read_sequential(ctx, &mut emitter, &mut conn, &reads).await?
        } else {
            let labels: Vec<String> = reads.iter().map(TableRead::label).collect();
            let finished =
                read_parallel(ctx, &mut emitter, &mut conn, &mut extra, &reads, &labels).await?;
            for c in &mut extra {
                c.query_drop("COMMIT").await.map_err(MyError::query)?;
            }
            finished
        };
        if !finished {
            return Ok(None);
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
        finish(&mut conn, view.global).await?;
        tracing::info!(
            rows = emitter.sent,
            seconds = started.elapsed().as_secs_f64(),
            "snapshot finished"
        );
        Ok(Some(done))
    }

    /// Each captured table's decoding plan (built as its table map would be) and row
    /// estimate, read before any lock is taken.
    async fn describe(
        &self,
        conn: &mut Conn,
        tables: &[TableId],
    ) -> Result<Vec<(RowDecoder, i64)>, MyError> {
        let mut shapes = Vec::with_capacity(tables.len());
        for t in tables {
            let map = catalog::describe(conn, t).await?;
            let hints = catalog::hints(conn, t, self.server.flavor, &self.connector.types).await?;
            let decoder = RowDecoder::new(&map, &hints)
                .map_err(|e| MyError::setup(format!("cannot capture table {t}: {}", e.0)))?;
            let estimate = catalog::row_estimate(conn, t).await;
            shapes.push((decoder, estimate));
        }
        Ok(shapes)
    }
}

/// Opens the consistent view: a brief global read lock while a consistent-snapshot
/// transaction starts and the binlog position is read; without RELOAD, a lock on the
/// captured tables held until the snapshot ends.
async fn open_view(
    conn: &mut Conn,
    tables: &[TableId],
    flavor: crate::event::MysqlFlavor,
    extra: &mut Vec<Conn>,
) -> Result<View, MyError> {
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
        // Every session's consistent snapshot starts under the one lock: they all see the
        // same data, the data at the binlog position read below.
        let parallel = !extra.is_empty();
        for c in std::iter::once(&mut *conn).chain(extra.iter_mut()) {
            if parallel {
                // A session that has read ahead waits, its result half sent, until the
                // tables before its own are published: the server must not give up on it
                // after net_write_timeout (60 s by default).
                c.query_drop("SET SESSION net_write_timeout = 86400")
                    .await
                    .map_err(MyError::query)?;
            }
            c.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .await
                .map_err(MyError::query)?;
            c.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                .await
                .map_err(MyError::query)?;
        }
    } else {
        if !extra.is_empty() {
            tracing::warn!("snapshot.max_threads needs the global read lock (RELOAD) to give every session the same view: reading the tables on one session");
            extra.clear();
        }
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
    let (file, pos) = catalog::master_status(conn).await?;
    let gtids = catalog::gtid_state(conn, flavor).await?;
    if global {
        conn.query_drop("UNLOCK TABLES")
            .await
            .map_err(MyError::query)?;
    }
    Ok(View {
        global,
        file,
        pos,
        gtids,
    })
}

/// The read of one table inside the view.
#[derive(Clone)]
struct TableRead<'a> {
    decoder: &'a RowDecoder,
    estimate: i64,
    detail: &'a SourceDetail,
    position: &'a SourcePosition,
    /// This table and those after it (recorded in the rows for a resume).
    tables_left: &'a [String],
    /// A key range's `WHERE` condition (a parallel snapshot's part of a big table).
    range: Option<String>,
}

/// A snapshot row of a keyed table records its key for a resume this often.
const STAMP_ROWS: u64 = 1024;

impl TableRead<'_> {
    /// The name progress is reported under.
    fn label(&self) -> String {
        match &self.range {
            Some(r) => format!("{} ({r})", self.decoder.schema.id),
            None => self.decoder.schema.id.to_string(),
        }
    }

    /// Streams the table's rows (ordered by key) as read events; `false` when shutdown
    /// came first.
    async fn run(&self, conn: &mut Conn, out: &mut impl RowOut) -> Result<bool, MyError> {
        let schema = &self.decoder.schema;
        let db: Arc<str> = Arc::from(schema.id.schema.as_str());
        let (cols, order) = schema.select_parts(quote);
        let sql = format!(
            "SELECT {} FROM {}.{}{}{}",
            cols,
            quote(&schema.id.schema),
            quote(&schema.id.name),
            self.range
                .as_ref()
                .map(|r| format!(" WHERE {r}"))
                .unwrap_or_default(),
            order
        );
        // Resumable: the rows of a table with a primary key carry how far the snapshot has
        // come (this table and those after it left, a row's key every STAMP_ROWS rows).
        let keyed = !schema.key.is_empty();
        let stamp = |last_key: Option<Vec<Option<String>>>| match self.position {
            SourcePosition::Mysql(p) => SourcePosition::Mysql(MyPosition {
                incremental: Some(Arc::new(IncrementalProgress {
                    tables: self.tables_left.to_vec(),
                    conditions: Default::default(),
                    last_key,
                    chunks: 0,
                    paused: false,
                })),
                ..p.clone()
            }),
            other => other.clone(),
        };
        let mut position = if keyed {
            stamp(None)
        } else {
            self.position.clone()
        };
        let mut rows_read: u64 = 0;
        let mut result = conn.query_iter(sql).await.map_err(MyError::query)?;
        while let Some(row) = result.next().await.map_err(MyError::query)? {
            rows_read += 1;
            if keyed && rows_read.is_multiple_of(STAMP_ROWS) {
                let key = schema
                    .key
                    .iter()
                    .map(|i| {
                        super::stream::incremental::key_text(&schema.columns[*i], row.as_ref(*i))
                    })
                    .collect();
                position = stamp(Some(key));
            }
            let event = ChangeEvent {
                op: Op::Read,
                table: Some(schema.clone()),
                before: None,
                after: Some(self.values(&row)?),
                source: SourceMeta {
                    ts_us: now_us(),
                    snapshot: SnapshotMarker::True,
                    db: db.clone(),
                    detail: self.detail.clone(),
                },
                message: None,
                transaction: None,
                position: position.clone(),
            };
            if !out.row(event).await {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One text-protocol row as the values a binlog row of the table decodes to.
    fn values(&self, row: &mysql_async::Row) -> Result<Vec<crate::event::Value>, MyError> {
        text_row_values(self.decoder, row)
    }
}

/// One text-protocol row of a table as the values a binlog row of it decodes to.
pub(super) fn text_row_values(
    decoder: &RowDecoder,
    row: &mysql_async::Row,
) -> Result<Vec<crate::event::Value>, MyError> {
    let schema = &decoder.schema;
    let columns = schema.columns.len();
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
    Ok(values)
}

/// Every table in turn on one session; `false` when shutdown came first.
async fn read_sequential(
    ctx: &mut SourceContext,
    emitter: &mut Emitter,
    conn: &mut Conn,
    reads: &[TableRead<'_>],
) -> Result<bool, MyError> {
    for read in reads {
        let name = read.decoder.schema.id.to_string();
        let mut out = Direct {
            progress: TableProgress::new(ctx, name.clone(), read.estimate),
            emitter: &mut *emitter,
            ctx: &mut *ctx,
        };
        if !read.run(conn, &mut out).await? {
            return Ok(false);
        }
        let rows = out.progress.finish(out.ctx);
        tracing::info!(table = %name, rows, "snapshot of table finished");
    }
    Ok(true)
}

/// `[snapshot] max_threads` sessions, each in a consistent snapshot opened under the same
/// lock, read the tables (table k on session k mod n); the rows are published table by
/// table, in key order, as in a sequential snapshot.
async fn read_parallel(
    ctx: &mut SourceContext,
    emitter: &mut Emitter,
    first: &mut Conn,
    extra: &mut [Conn],
    reads: &[TableRead<'_>],
    names: &[String],
) -> Result<bool, MyError> {
    let sessions: Vec<&mut Conn> = std::iter::once(first).chain(extra.iter_mut()).collect();
    let threads = sessions.len();
    tracing::info!(sessions = threads, "snapshot read in parallel");
    let (mut senders, receivers) = table_channels(reads.len());
    let mut workers = Vec::with_capacity(threads);
    for (w, conn) in sessions.into_iter().enumerate() {
        let jobs: Vec<(usize, AheadSender)> = (w..reads.len())
            .step_by(threads)
            .map(|k| (k, senders[k].take().expect("one sender per table")))
            .collect();
        workers.push(async move {
            for (k, tx) in jobs {
                let read = &reads[k];
                if tx.send(TableMsg::Start(read.estimate)).await.is_err() {
                    return Ok(());
                }
                if !read.run(conn, &mut Channel(tx.clone())).await? {
                    return Ok(());
                }
                let _ = tx.send(TableMsg::Done).await;
            }
            Ok::<(), MyError>(())
        });
    }
    let publish = publish_in_order(ctx, emitter, names, receivers);
    let (read_all, published) = tokio::join!(futures_util::future::try_join_all(workers), publish);
    read_all?;
    Ok(published)
}

async fn finish(conn: &mut Conn, global: bool) -> Result<(), MyError> {
    if !global {
        conn.query_drop("UNLOCK TABLES")
            .await
            .map_err(MyError::query)?;
    }
    conn.query_drop("COMMIT").await.map_err(MyError::query)
}
