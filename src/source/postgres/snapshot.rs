//! The initial snapshot: every captured table read with `COPY ... TO STDOUT` inside the
//! transaction snapshot the slot exported, streamed row by row (never a whole table in
//! memory), emitted as `op = r` with the `first` / `true` / `last` markers.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use tokio_postgres::Client;

use super::catalog::{self, quote_ident, quote_literal};
use super::decode::{Decoder, RelationInfo};
use super::types::PgModes;
use super::{ConnInfo, PgError};
use crate::config::ConnectorConfig;
use crate::event::{ChangeEvent, Op, SnapshotMarker, SourceDetail, SourceMeta, TableId, Value};
use crate::position::{IncrementalProgress, PgPosition, SnapshotState, SourcePosition};
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
    pub catalog_client: &'a Client,
    pub snapshot_name: String,
    /// The in-progress position at the slot's consistent point.
    pub start: PgPosition,
    /// Where the position is stored (progress before the first row).
    pub offsets: &'a dyn crate::offsets::OffsetStore,
}

impl Snapshot<'_> {
    /// Reads every table; `false` when shutdown interrupted it.
    pub async fn run(&self, ctx: &mut SourceContext) -> Result<bool, PgError> {
        let pg = self
            .connector
            .postgres
            .as_ref()
            .expect("postgres connector");
        let client = self.info.connect().await?;
        client
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {};",
                quote_literal(&self.snapshot_name)
            ))
            .await
            .map_err(PgError::query)?;
        // The snapshot transaction's id, in `source.txId` of every snapshot record (Debezium
        // reads it the same way).
        let tx_id: i64 = client
            .query_one("SELECT txid_current()", &[])
            .await
            .map_err(PgError::query)?
            .get(0);
        let (tables, _) = catalog::expand_tables(&client, &pg.filter).await?;
        let db: Arc<str> = Arc::from(catalog::database_name(self.catalog_client).await?);
        let mut decoder = Decoder::new(
            &client,
            pg.filter.clone(),
            PgModes::from_config(&self.connector.types),
        )
        .await?;
        let in_progress = SourcePosition::Postgres(self.start.clone());
        let done = SourcePosition::Postgres(PgPosition {
            snapshot: SnapshotState::Done,
            ..self.start.clone()
        });
        tracing::info!(tables = tables.len(), lsn = %crate::position::format_lsn(self.start.resume_lsn), "snapshot started");
        ctx.observer
            .set_state(crate::status::ConnectorState::Snapshotting);
        let started = Instant::now();
        let mut emitter = Emitter::new();
        let names: Vec<String> = tables.iter().map(|(_, id)| id.to_string()).collect();
        // Before the first row: when every table can be read by key, a restart from here on
        // streams from the consistent point and reads the tables incrementally, instead of
        // starting over on a new slot (rows published by this run but deleted before the
        // next run's snapshot would stay in the topics with nothing to delete them).
        let mut every_keyed = true;
        for (oid, _) in &tables {
            let keyed = match catalog::describe_table(&client, *oid).await? {
                Some(described) => {
                    let info = decoder.relation_of_catalog(&described);
                    crate::source::incremental::chunk_key(self.connector, &info.schema).is_ok()
                }
                None => false,
            };
            every_keyed &= keyed;
        }
        if every_keyed && !names.is_empty() {
            self.offsets.reset(
                &self.connector.name,
                &SourcePosition::Postgres(PgPosition {
                    incremental: Some(Arc::new(IncrementalProgress {
                        tables: names.clone(),
                        conditions: Default::default(),
                        last_key: None,
                        chunks: 0,
                        paused: false,
                    })),
                    ..self.start.clone()
                }),
            )?;
        }
        let read = Read {
            db: &db,
            position: &in_progress,
            names: &names,
            tx_id,
        };
        let threads = self
            .connector
            .snapshot
            .max_threads
            .clamp(1, tables.len().max(1));
        let finished = if threads > 1 {
            self.run_parallel(ctx, &mut emitter, client, &tables, &read, threads)
                .await?
        } else {
            let finished = self
                .run_sequential(ctx, &mut emitter, &client, &mut decoder, &tables, &read)
                .await?;
            client
                .batch_execute("COMMIT")
                .await
                .map_err(PgError::query)?;
            finished
        };
        if !finished {
            return Ok(false);
        }
        if !emitter.finish(ctx, done).await {
            return Ok(false);
        }
        tracing::info!(
            rows = emitter.sent,
            seconds = started.elapsed().as_secs_f64(),
            "snapshot finished"
        );
        Ok(true)
    }

    /// Every table in turn on one session; `false` when shutdown came first.
    async fn run_sequential(
        &self,
        ctx: &mut SourceContext,
        emitter: &mut Emitter,
        client: &Client,
        decoder: &mut Decoder,
        tables: &[(u32, TableId)],
        read: &Read<'_>,
    ) -> Result<bool, PgError> {
        for (k, (oid, id)) in tables.iter().enumerate() {
            let Some(described) = catalog::describe_table(client, *oid).await? else {
                continue;
            };
            let info = decoder.relation_of_catalog(&described);
            let estimate = row_estimate(client, *oid, id).await;
            let mut out = Direct {
                progress: TableProgress::new(ctx, id.to_string(), estimate),
                emitter: &mut *emitter,
                ctx: &mut *ctx,
            };
            let rows = self
                .copy_table(client, decoder, &info, read, (k, None), &mut out)
                .await?;
            let Some(rows) = rows else { return Ok(false) };
            let rows = out.progress.finish(out.ctx).max(rows);
            tracing::info!(table = %id, rows, "snapshot of table finished");
        }
        Ok(true)
    }

    /// `[snapshot] max_threads` sessions sharing the exported snapshot read the tables
    /// (table k on session k mod n); their rows are published table by table, in key order,
    /// as in a sequential snapshot. A session reads ahead at most a channel's worth of rows
    /// of a table not yet being published.
    async fn run_parallel(
        &self,
        ctx: &mut SourceContext,
        emitter: &mut Emitter,
        first: Client,
        tables: &[(u32, TableId)],
        read: &Read<'_>,
        threads: usize,
    ) -> Result<bool, PgError> {
        let pg = self
            .connector
            .postgres
            .as_ref()
            .expect("postgres connector");
        let mut sessions = vec![first];
        for _ in 1..threads {
            let c = self.info.connect().await?;
            c.batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {};",
                quote_literal(&self.snapshot_name)
            ))
            .await
            .map_err(PgError::query)?;
            sessions.push(c);
        }
        tracing::info!(sessions = threads, "snapshot read in parallel");
        let plan = self.plan_jobs(&sessions[0], tables, threads).await?;
        let (mut senders, receivers) = table_channels(plan.len());
        let mut workers = Vec::with_capacity(threads);
        for (w, client) in sessions.into_iter().enumerate() {
            let jobs: Vec<(&Job, AheadSender)> = (w..plan.len())
                .step_by(threads)
                .map(|j| (&plan[j], senders[j].take().expect("one sender per job")))
                .collect();
            let filter = pg.filter.clone();
            workers.push(async move {
                let mut decoder =
                    Decoder::new(&client, filter, PgModes::from_config(&self.connector.types))
                        .await?;
                for (job, tx) in jobs {
                    let (oid, id) = &tables[job.k];
                    let Some(described) = catalog::describe_table(&client, *oid).await? else {
                        let _ = tx.send(TableMsg::Skipped).await;
                        continue;
                    };
                    let info = decoder.relation_of_catalog(&described);
                    let estimate = match job.estimate {
                        Some(e) => e,
                        None => row_estimate(&client, *oid, id).await,
                    };
                    if tx.send(TableMsg::Start(estimate)).await.is_err() {
                        return Ok(());
                    }
                    let mut out = Channel(tx.clone());
                    let (k, range) = (job.k, job.range.as_deref());
                    match self
                        .copy_table(&client, &mut decoder, &info, read, (k, range), &mut out)
                        .await?
                    {
                        Some(_) => {
                            let _ = tx.send(TableMsg::Done).await;
                        }
                        None => return Ok(()),
                    }
                }
                client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(PgError::query)?;
                Ok::<(), PgError>(())
            });
        }
        let labels: Vec<String> = plan.iter().map(|j| j.label.clone()).collect();
        let publish = publish_in_order(ctx, emitter, &labels, receivers);
        let (read_all, published) =
            tokio::join!(futures_util::future::try_join_all(workers), publish);
        read_all?;
        Ok(published)
    }

    /// The parallel reads: a table each, or, for a table of at least SPLIT_ROWS rows with a
    /// one-column integer key, one key range per session (published one after the other,
    /// so the table's rows stay in key order).
    async fn plan_jobs(
        &self,
        client: &Client,
        tables: &[(u32, TableId)],
        threads: usize,
    ) -> Result<Vec<Job>, PgError> {
        let pg = self
            .connector
            .postgres
            .as_ref()
            .expect("postgres connector");
        let mut decoder = Decoder::new(
            client,
            pg.filter.clone(),
            PgModes::from_config(&self.connector.types),
        )
        .await?;
        let mut jobs = Vec::new();
        for (k, (oid, id)) in tables.iter().enumerate() {
            let mut ranges = Vec::new();
            let mut estimate = None;
            if let Some(described) = catalog::describe_table(client, *oid).await? {
                let info = decoder.relation_of_catalog(&described);
                if let Some(col) = integer_key(&info.schema) {
                    let e = row_estimate(client, *oid, id).await;
                    if e >= SPLIT_ROWS {
                        let col = quote_ident(col);
                        let row = client
                            .query_one(
                                &format!(
                                    "SELECT min({col})::int8, max({col})::int8 FROM {}.{}",
                                    quote_ident(&id.schema),
                                    quote_ident(&id.name)
                                ),
                                &[],
                            )
                            .await
                            .map_err(PgError::query)?;
                        if let (Some(lo), Some(hi)) = (row.get(0), row.get(1)) {
                            ranges = key_ranges(&col, lo, hi, threads);
                            estimate = Some(e / ranges.len().max(1) as i64);
                        }
                    }
                }
            }
            if ranges.is_empty() {
                jobs.push(Job {
                    k,
                    range: None,
                    estimate: None,
                    label: id.to_string(),
                });
            }
            for r in ranges {
                jobs.push(Job {
                    k,
                    label: format!("{id} ({r})"),
                    range: Some(r),
                    estimate,
                });
            }
        }
        Ok(jobs)
    }

    /// One table's rows, read with COPY in key order, handed to `out`; the number of rows,
    /// or `None` when `out` refused one (shutdown).
    async fn copy_table(
        &self,
        client: &Client,
        decoder: &mut Decoder,
        info: &RelationInfo,
        read: &Read<'_>,
        (k, range): (usize, Option<&str>),
        out: &mut impl RowOut,
    ) -> Result<Option<u64>, PgError> {
        let (db, position, tables_left, tx_id) =
            (read.db, read.position, &read.names[k..], read.tx_id);
        let table = &info.schema;
        let (cols, order) = table.select_parts(quote_ident);
        let sql = format!(
            "COPY (SELECT {} FROM {}.{}{}{}) TO STDOUT",
            if cols.is_empty() { "NULL" } else { &cols },
            quote_ident(&table.id.schema),
            quote_ident(&table.id.name),
            range.map(|r| format!(" WHERE {r}")).unwrap_or_default(),
            order
        );
        let stream = client.copy_out(&sql).await.map_err(PgError::query)?;
        futures_util::pin_mut!(stream);
        // The server sends a row per CopyData message: a message holding whole lines is
        // read where it is (plain text values point into it); only a line split across
        // messages is gathered in `buf`.
        let mut buf: Vec<u8> = Vec::new();
        let width = table.columns.len();
        let mut ts_us = now_us();
        let mut rows_read: u64 = 0;
        // Resumable: the rows of a table with a primary key carry how far the snapshot has
        // come (this table and those after it left, the key of a row every STAMP_ROWS rows);
        // a restart then reads only what is left, incrementally (see stream/incremental.rs).
        let keyed = !table.key.is_empty();
        let stamp = |last_key: Option<Vec<Option<String>>>| {
            SourcePosition::Postgres(PgPosition {
                incremental: Some(Arc::new(IncrementalProgress {
                    tables: tables_left.to_vec(),
                    conditions: Default::default(),
                    last_key,
                    chunks: 0,
                    paused: false,
                })),
                ..self.start.clone()
            })
        };
        let mut position = if keyed { stamp(None) } else { position.clone() };
        let mut key_text: Vec<Option<String>> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(PgError::query)?;
            let data = if buf.is_empty() {
                chunk
            } else {
                buf.extend_from_slice(&chunk);
                bytes::Bytes::from(std::mem::take(&mut buf))
            };
            let mut start = 0;
            while let Some(nl) = memchr::memchr(b'\n', &data[start..]) {
                let line = data.slice(start..start + nl);
                start += nl + 1;
                let mut values = Vec::with_capacity(width);
                rows_read += 1;
                let stamp_row = keyed && rows_read.is_multiple_of(STAMP_ROWS);
                copy_fields(&line, |f| {
                    let i = values.len();
                    if stamp_row && table.key.contains(&i) {
                        key_text.push(f.text().map(|t| t.into_owned()));
                    }
                    values.push(copy_value(decoder, info, i, f, &line));
                });
                if stamp_row {
                    // Key columns in key order (the fields came in column order).
                    let mut ordered = vec![None; table.key.len()];
                    let mut sorted: Vec<(usize, usize)> =
                        table.key.iter().enumerate().map(|(k, c)| (*c, k)).collect();
                    sorted.sort_unstable();
                    for ((_, k), text) in sorted.into_iter().zip(key_text.drain(..)) {
                        ordered[k] = text;
                    }
                    position = stamp(Some(ordered));
                }
                // The clock once per 256 rows (microseconds apart at this rate).
                if rows_read.is_multiple_of(256) {
                    ts_us = now_us();
                }
                let event = ChangeEvent {
                    op: Op::Read,
                    table: Some(table.clone()),
                    before: None,
                    after: Some(values),
                    source: SourceMeta {
                        ts_us,
                        snapshot: SnapshotMarker::True,
                        db: db.clone(),
                        detail: SourceDetail::Postgres {
                            tx_id: Some(tx_id),
                            lsn: Some(self.start.resume_lsn),
                            last_commit_lsn: None,
                            origin: None,
                            origin_lsn: None,
                        },
                    },
                    message: None,
                    transaction: None,
                    position: position.clone(),
                };
                if !out.row(event).await {
                    return Ok(None);
                }
            }
            buf.extend_from_slice(&data[start..]);
        }
        Ok(Some(rows_read))
    }
}

/// One read of a parallel snapshot: table `k` of the snapshot, or a key range of it.
struct Job {
    k: usize,
    /// The key range's `WHERE` condition.
    range: Option<String>,
    /// Rows expected (of the range), when already known.
    estimate: Option<i64>,
    /// The name progress is reported under.
    label: String,
}

/// What every table's read shares.
struct Read<'a> {
    db: &'a Arc<str>,
    /// The snapshot's in-progress position.
    position: &'a SourcePosition,
    /// The tables in snapshot order.
    names: &'a [String],
    tx_id: i64,
}

/// A snapshot row of a keyed table records its key for a resume this often.
const STAMP_ROWS: u64 = 1024;

/// Tables without statistics (never analyzed: `reltuples` is -1) are counted when they are
/// no bigger than this; a bigger one shows no estimate rather than pay a full scan.
const COUNT_UNDER_BYTES: i64 = 256 << 20;

/// The rows a table is expected to hold, for snapshot progress: the planner's `reltuples`,
/// or a count (in the snapshot's transaction) when the table was never analyzed and is
/// small; 0 when unknown.
async fn row_estimate(
    client: &tokio_postgres::Client,
    oid: u32,
    id: &crate::event::TableId,
) -> i64 {
    let stats = client
        .query_one(
            "SELECT CASE WHEN reltuples >= 0 THEN reltuples::int8 END, pg_relation_size(oid) FROM pg_class WHERE oid = $1",
            &[&oid],
        )
        .await;
    let (reltuples, size): (Option<i64>, i64) = match stats {
        Ok(r) => (r.get(0), r.get(1)),
        Err(_) => return 0,
    };
    match reltuples {
        Some(n) => n,
        None if size <= COUNT_UNDER_BYTES => {
            let sql = format!(
                "SELECT count(*) FROM {}.{}",
                quote_ident(&id.schema),
                quote_ident(&id.name)
            );
            client
                .query_one(&sql, &[])
                .await
                .map(|r| r.get(0))
                .unwrap_or(0)
        }
        None => 0,
    }
}

/// Splits one line of COPY text output into fields (`\N` is NULL), undoing its escapes.
#[cfg(test)]
fn split_copy_line(line: &[u8], out: &mut Vec<Option<String>>) {
    out.clear();
    copy_fields(line, |f| {
        out.push(f.text().map(std::borrow::Cow::into_owned))
    });
}

/// Text of valid UTF-8 as it is (no copy), invalid bytes replaced.
fn utf8(raw: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(raw) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(raw),
    }
}

/// One field of a line of COPY text output.
pub(super) enum CopyField<'a> {
    /// `\N`.
    Null,
    /// A field without escapes: its bytes as they stand, and their range in the line.
    Plain(&'a [u8], (usize, usize)),
    /// A field with escapes, undone.
    Unescaped(String),
}

impl CopyField<'_> {
    /// The field's text (`None` for NULL).
    pub(super) fn text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            CopyField::Null => None,
            CopyField::Plain(raw, _) => Some(utf8(raw)),
            CopyField::Unescaped(s) => Some(std::borrow::Cow::Borrowed(s)),
        }
    }
}

/// Column `i`'s value from its COPY field; plain text without escapes points into `line`
/// (shared bytes) instead of being copied, and is checked as UTF-8 once.
pub(super) fn copy_value(
    decoder: &mut Decoder,
    info: &RelationInfo,
    i: usize,
    field: CopyField<'_>,
    line: &bytes::Bytes,
) -> Value {
    match field {
        CopyField::Null => Value::Null,
        CopyField::Plain(raw, (a, b)) if Decoder::plain_text(info, i) => {
            match crate::event::Text::try_from(line.slice(a..b)) {
                Ok(t) => Value::Text(t),
                Err(_) => Value::text(String::from_utf8_lossy(raw).into_owned()),
            }
        }
        CopyField::Plain(raw, _) => decoder.value_cow(info, i, utf8(raw)),
        CopyField::Unescaped(s) => decoder.value_cow(info, i, std::borrow::Cow::Owned(s)),
    }
}

/// Each field of one line of COPY text output, escapes undone.
pub(super) fn copy_fields(line: &[u8], mut each: impl FnMut(CopyField<'_>)) {
    let mut at = 0;
    for raw in line.split(|b| *b == b'\t') {
        let span = (at, at + raw.len());
        at += raw.len() + 1;
        if raw.len() == 2 && raw[0] == b'\\' && raw[1] == b'N' {
            each(CopyField::Null);
            continue;
        }
        if memchr::memchr(b'\\', raw).is_none() {
            each(CopyField::Plain(raw, span));
            continue;
        }
        let mut bytes = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            let b = raw[i];
            if b != b'\\' || i + 1 >= raw.len() {
                bytes.push(b);
                i += 1;
                continue;
            }
            let next = raw[i + 1];
            i += 2;
            match next {
                b'b' => bytes.push(8),
                b'f' => bytes.push(12),
                b'n' => bytes.push(b'\n'),
                b'r' => bytes.push(b'\r'),
                b't' => bytes.push(b'\t'),
                b'v' => bytes.push(11),
                b'0'..=b'7' => {
                    let mut v = (next - b'0') as u32;
                    let mut n = 1;
                    while n < 3 && i < raw.len() && (b'0'..=b'7').contains(&raw[i]) {
                        v = v * 8 + (raw[i] - b'0') as u32;
                        i += 1;
                        n += 1;
                    }
                    bytes.push(v as u8);
                }
                b'x' => {
                    let mut v = 0u32;
                    let mut n = 0;
                    while n < 2 && i < raw.len() && raw[i].is_ascii_hexdigit() {
                        v = v * 16 + (raw[i] as char).to_digit(16).unwrap_or(0);
                        i += 1;
                        n += 1;
                    }
                    bytes.push(v as u8);
                }
                other => bytes.push(other),
            }
        }
        each(CopyField::Unescaped(
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_lines() {
        let mut out = Vec::new();
        split_copy_line(b"1\t\\N\ta\\tb\\\\c\\nd\t\\x41\\101", &mut out);
        assert_eq!(
            out,
            vec![
                Some("1".into()),
                None,
                Some("a\tb\\c\nd".into()),
                Some("AA".into())
            ]
        );
        split_copy_line(b"", &mut out);
        assert_eq!(out, vec![Some(String::new())]);
    }
}
