//! The replication session: START_REPLICATION, decode pgoutput, hand events to the pipeline,
//! report committed positions back to the server.
//!
//! Positions: every change carries `resume_lsn` (the end of the last complete transaction)
//! and its index inside the current transaction; a Commit yields a checkpoint at its end
//! LSN; an idle keepalive yields one at the server's WAL end, so the slot advances even
//! when nothing captured changes.

use std::sync::Arc;

use bytes::Bytes;
use pgwire_replication::{PgWireError, ReplicationClient, ReplicationEvent};
use tokio_postgres::Client;

use super::catalog::{self, quote_ident};
use super::decode::Decoder;
use super::pgoutput::{OldKind, PgOutputMessage};
use super::types::PgModes;
use super::{ConnInfo, PgError};
use crate::config::{ConnectorConfig, PostgresConfig};
use crate::event::{
    ChangeEvent, LogicalMessage, Op, SnapshotMarker, SourceDetail, SourceMeta, TableSchema, Value,
};
use crate::position::{
    format_lsn, IncrementalProgress, LastTx, PartialTx, PgPosition, SlotId, SnapshotState,
    SourcePosition,
};
use crate::source::{
    heartbeat_timer, now_us, tick, SourceContext, SourceExit, SourceItem, Stopped,
};

mod incremental;

/// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

fn stream_error(slot: &str, publication: &str, e: PgWireError) -> PgError {
    match e {
        PgWireError::Auth(m) => PgError::Connect {
            target: "replication session".into(),
            reason: m,
            transient: false,
        },
        PgWireError::Server(m) if m.contains("publication") && m.contains("does not exist") => {
            PgError::setup(format!(
                "publication \"{publication}\" does not exist on the server ({m}); let Sluice create it or create it with CREATE PUBLICATION"
            ))
        }
        PgWireError::Server(m) if m.contains("replication slot") && m.contains("does not exist") => {
            PgError::setup(format!(
                "replication slot \"{slot}\" does not exist ({m}); restart the connector to create it"
            ))
        }
        other => PgError::Stream(other.to_string()),
    }
}

/// A replication connection, gated before START_REPLICATION.
pub(super) struct Session {
    client: ReplicationClient,
    slot: String,
    publication: String,
}

impl Session {
    /// Connects and authenticates a replication session.
    pub async fn open(
        info: &ConnInfo,
        pg: &PostgresConfig,
        start_lsn: u64,
    ) -> Result<Self, PgError> {
        let client = ReplicationClient::connect_gated(info.replication_config(pg, start_lsn))
            .await
            .map_err(|e| PgError::Connect {
                target: info.target(),
                reason: e.to_string(),
                transient: true,
            })?;
        Ok(Session {
            client,
            slot: pg.slot.clone(),
            publication: pg.publication.clone(),
        })
    }

    /// Creates the slot; returns its consistent point and, with `export`, the snapshot name.
    pub async fn create_slot(
        &mut self,
        name: &str,
        export: bool,
    ) -> Result<(u64, Option<String>), PgError> {
        let sql = format!(
            "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (SNAPSHOT '{}')",
            quote_ident(name),
            if export { "export" } else { "nothing" }
        );
        let rows = self
            .client
            .simple_query(&sql)
            .await
            .map_err(|e| stream_error(&self.slot, &self.publication, e))?;
        let row = rows
            .into_iter()
            .next()
            .ok_or_else(|| PgError::Stream("CREATE_REPLICATION_SLOT returned no row".into()))?;
        let text = |i: usize| -> Option<String> {
            row.get(i)
                .and_then(|v| v.as_ref())
                .map(|b: &Bytes| String::from_utf8_lossy(b).into_owned())
        };
        let consistent = text(1)
            .as_deref()
            .and_then(crate::position::parse_lsn)
            .ok_or_else(|| {
                PgError::Stream("CREATE_REPLICATION_SLOT returned no consistent point".into())
            })?;
        tracing::info!(slot = name, lsn = %format_lsn(consistent), "created replication slot");
        Ok((consistent, text(2)))
    }
}

/// The state of the transaction being received.
struct Tx {
    final_lsn: u64,
    xid: u32,
    commit_ts_us: i64,
    index: u64,
    skip_first: u64,
    skip_all: bool,
    origin: Option<(Arc<str>, u64)>,
    /// Transaction metadata: BEGIN sent, events published, per table.
    counts: crate::source::TxCounts,
}

impl Tx {
    /// Debezium's PostgreSQL transaction id: `<txId>:<commit LSN>`.
    fn id(&self) -> Arc<str> {
        Arc::from(format!("{}:{}", self.xid, self.final_lsn))
    }
}

/// Why stream handling stopped early.
enum Halt {
    /// Shutdown was requested while handing items over.
    Shutdown,
    /// The run failed.
    Failed(PgError),
}

impl From<PgError> for Halt {
    fn from(e: PgError) -> Self {
        Halt::Failed(e)
    }
}

impl From<Stopped> for Halt {
    fn from(_: Stopped) -> Self {
        Halt::Shutdown
    }
}

/// Where the stream is, between events.
struct State {
    /// The end of the last complete transaction (or idle keepalive's WAL end).
    resume_lsn: u64,
    /// The slot the positions belong to.
    slot: Option<SlotId>,
    /// The stored progress inside the first transaction, until a commit passes it.
    stored_partial: Option<PartialTx>,
    /// The commit LSN of the last transaction completed.
    last_commit: Option<u64>,
    /// Id and commit time of the last transaction completed.
    last_tx: Option<LastTx>,
    /// The transaction being received.
    tx: Option<Tx>,
    /// An incremental snapshot's progress, carried by every position.
    incremental: Option<Arc<IncrementalProgress>>,
}

impl State {
    /// A streaming position: `resume_lsn` and the progress after it.
    fn position(&self, resume_lsn: u64, partial: Option<PartialTx>) -> SourcePosition {
        SourcePosition::Postgres(PgPosition {
            incremental: self.incremental.clone(),
            resume_lsn,
            partial,
            snapshot: SnapshotState::Done,
            slot: self.slot,
            last_tx: self.last_tx,
        })
    }

    /// The position of the `events_done`-th event of the open transaction.
    fn position_in_tx(&self, commit_lsn: u64, events_done: u64) -> SourcePosition {
        self.position(
            self.resume_lsn,
            Some(PartialTx {
                commit_lsn,
                events_done,
            }),
        )
    }
}

/// What woke the stream loop up.
enum Wake {
    /// A replication event.
    Event(ReplicationEvent),
    /// Handled in place (a committed position reported, a heartbeat, a lag sample).
    Handled,
}

/// Streams one connector's changes.
pub(super) struct Streamer<'a> {
    connector: &'a ConnectorConfig,
    client: &'a Client,
    decoder: Decoder,
    db: Arc<str>,
    start: PgPosition,
    state: State,
    /// How to open sessions.
    info: ConnInfo,
    /// The heartbeat and lag session (see [`Self::side_session`]).
    side: Option<Client>,
    /// When new tables were last looked for (`add_new_tables`).
    tables_checked_at: std::time::Instant,
    /// Where uncaptured changes are counted (set when streaming starts).
    observer: Option<crate::status::Observer>,
    /// Counters of uncaptured tables, by relation OID (each logged once).
    uncaptured: std::collections::HashMap<u32, prometheus::IntCounter>,
    /// Incremental snapshots and signals.
    incr: incremental::Incremental,
}

impl<'a> Streamer<'a> {
    /// Prepares decoding (loads the type catalog).
    pub async fn new(
        connector: &'a ConnectorConfig,
        info: &ConnInfo,
        client: &'a Client,
        start: PgPosition,
    ) -> Result<Self, PgError> {
        let pg = connector.postgres.as_ref().expect("postgres connector");
        Ok(Streamer {
            connector,
            client,
            decoder: Decoder::new(
                client,
                pg.filter.clone(),
                PgModes::from_config(&connector.types),
            )
            .await?,
            db: Arc::from(catalog::database_name(client).await?),
            state: State {
                resume_lsn: start.resume_lsn,
                slot: start.slot,
                stored_partial: start.partial,
                last_commit: None,
                last_tx: start.last_tx,
                tx: None,
                incremental: start.incremental.clone(),
            },
            start,
            info: info.clone(),
            side: None,
            tables_checked_at: std::time::Instant::now(),
            observer: None,
            uncaptured: Default::default(),
            incr: Default::default(),
        })
    }

    fn pg(&self) -> &'a PostgresConfig {
        self.connector
            .postgres
            .as_ref()
            .expect("postgres connector")
    }

    fn meta(
        &self,
        tx: Option<&Tx>,
        lsn: Option<u64>,
        last_commit: Option<u64>,
        ts_us: i64,
    ) -> SourceMeta {
        SourceMeta {
            ts_us,
            snapshot: SnapshotMarker::False,
            db: self.db.clone(),
            detail: SourceDetail::Postgres {
                tx_id: tx.map(|t| i64::from(t.xid)),
                lsn,
                last_commit_lsn: last_commit,
                origin: tx.and_then(|t| t.origin.as_ref().map(|o| o.0.clone())),
                origin_lsn: tx.and_then(|t| t.origin.as_ref().map(|o| o.1)),
            },
        }
    }

    /// Starts replication on `session` and runs until shutdown or error.
    pub async fn run_session(
        mut self,
        mut session: Session,
        ctx: &mut SourceContext,
    ) -> Result<SourceExit, PgError> {
        let (slot, publication) = (session.slot.clone(), session.publication.clone());
        let err = |e: PgWireError| stream_error(&slot, &publication, e);
        session.client.start().await.map_err(err)?;
        session.client.wait_started().await.map_err(err)?;
        tracing::info!(lsn = %format_lsn(self.start.resume_lsn), "streaming started");
        let result = self.stream(&mut session.client, ctx).await;
        tracing::debug!("stream: closing the replication session");
        session.client.stop();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), session.client.shutdown())
            .await;
        tracing::debug!("stream: replication session closed");
        match result {
            Halt::Shutdown => Ok(SourceExit::Shutdown),
            Halt::Failed(e) => Err(e),
        }
    }

    /// The stream loop: wait for the next thing to do, dispatch replication events; ends
    /// only by halting.
    async fn stream(&mut self, client: &mut ReplicationClient, ctx: &mut SourceContext) -> Halt {
        self.observer = Some(ctx.observer.clone());
        self.decoder.count_unreadable(&ctx.observer);
        let mut heartbeat = heartbeat_timer(self.connector);
        let mut lag_tick = tokio::time::interval(SLOT_LAG_EVERY);
        ctx.observer
            .set_state(crate::status::ConnectorState::Streaming);
        self.incremental_start(ctx);
        loop {
            let step = match self.wait(client, ctx, &mut heartbeat, &mut lag_tick).await {
                Ok(Wake::Event(event)) => self.dispatch(ctx, event).await,
                Ok(Wake::Handled) => Ok(()),
                Err(halt) => Err(halt),
            };
            let step = match step {
                Ok(()) => self.incremental_work(ctx).await,
                Err(halt) => Err(halt),
            };
            if let Err(halt) = step {
                return halt;
            }
        }
    }

    /// Waits for the next replication event, handling what comes first meanwhile.
    async fn wait(
        &mut self,
        client: &mut ReplicationClient,
        ctx: &mut SourceContext,
        heartbeat: &mut Option<tokio::time::Interval>,
        lag_tick: &mut tokio::time::Interval,
    ) -> Result<Wake, Halt> {
        let pg = self.pg();
        let inbox = ctx.observer.signals.clone();
        tokio::select! {
            biased;
            _ = ctx.shutdown.changed() => Err(Halt::Shutdown),
            signal = inbox.next() => {
                // Handled with the signal table's, so its effect is stored at once.
                self.incr.signals.push(signal);
                Ok(Wake::Handled)
            }
            changed = ctx.committed.changed() => {
                // Only a durably committed position is reported to the server.
                if changed.is_ok() {
                    if let Some(SourcePosition::Postgres(p)) = &*ctx.committed.borrow_and_update() {
                        client.update_applied_lsn(pgwire_replication::Lsn::from_u64(p.resume_lsn));
                    }
                }
                Ok(Wake::Handled)
            }
            _ = tick(heartbeat) => {
                self.heartbeat(ctx).await?;
                Ok(Wake::Handled)
            }
            _ = lag_tick.tick() => {
                self.sample_slot_lag(ctx).await;
                self.add_new_tables().await;
                Ok(Wake::Handled)
            }
            ev = client.recv() => match ev.map_err(|e| stream_error(&pg.slot, &pg.publication, e))? {
                Some(event) => Ok(Wake::Event(event)),
                None => Err(PgError::Stream("the server ended the replication stream".into()).into()),
            },
        }
    }

    /// A connector heartbeat: the action query, then the record (with the resume position
    /// when no transaction is open).
    async fn heartbeat(&mut self, ctx: &mut SourceContext) -> Result<(), Halt> {
        if let Some(query) = &self.pg().heartbeat_action_query {
            if let Some(session) = self.side_session().await {
                if let Err(e) = session.batch_execute(query).await {
                    tracing::warn!(error = %e, "heartbeat_action_query failed");
                }
            }
        }
        let position = self
            .state
            .tx
            .is_none()
            .then(|| self.state.position(self.state.resume_lsn, None));
        Ok(ctx.heartbeat(position).await?)
    }

    /// The session for heartbeat action queries and slot-lag samples, opened when first
    /// needed and opened again whenever it has closed (a restarted server, an idle timeout, a
    /// terminated backend): every tick works again as soon as the server is back.
    async fn side_session(&mut self) -> Option<&Client> {
        if self.side.as_ref().is_none_or(|c| c.is_closed()) {
            self.side = None;
            match self.info.connect().await {
                Ok(c) => self.side = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open a session for heartbeats and lag samples; trying again at the next tick");
                    return None;
                }
            }
        }
        self.side.as_ref()
    }

    /// `sluice_slot_lag_bytes`: how far the slot's confirmed position is behind the WAL.
    async fn sample_slot_lag(&mut self, ctx: &SourceContext) {
        let slot = self.pg().slot.as_str();
        let Some(session) = self.side_session().await else {
            return;
        };
        if let Ok(Some(row)) = session.query_opt(
            "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::int8 FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        ).await {
            let lag: Option<i64> = row.get(0);
            ctx.observer
                .metrics
                .slot_lag_bytes
                .with_label_values(&[&*ctx.observer.connector])
                .set(lag.unwrap_or(0));
        }
    }

    /// `publication_autocreate = "filtered"` with `re:` entries or exclusions (a publication
    /// of named tables): a table created since the start that the filter selects is added to
    /// the publication, so its changes are captured from then on (checked every
    /// [`NEW_TABLES_EVERY`]). `schema.*` publications cover new tables by themselves.
    async fn add_new_tables(&mut self) {
        let pg = self.pg();
        if pg.publication_autocreate != crate::config::PublicationMode::Filtered
            || !pg.filter.is_computed()
            || self.tables_checked_at.elapsed() < NEW_TABLES_EVERY
        {
            return;
        }
        self.tables_checked_at = std::time::Instant::now();
        let Some(session) = self.side_session().await else {
            return;
        };
        let coverage = match super::catalog::publication_coverage(
            session,
            &pg.publication,
            &pg.filter,
        )
        .await
        {
            Ok(c) if !c.all_tables && !c.missing.is_empty() => c,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot compare the publication with postgres.tables; trying again later");
                return;
            }
        };
        let names = super::list(&coverage.missing);
        let sql = super::catalog::add_tables_sql(&pg.publication, &coverage.missing);
        match session.batch_execute(&sql).await {
            Ok(()) => {
                for t in &coverage.missing {
                    tracing::info!(table = %t, publication = %pg.publication, "a table created after the start matches postgres.tables: added to the publication, its changes are captured from now on (rows written before are not read)");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, tables = %names, "cannot add new tables to the publication; trying again later")
            }
        }
    }

    /// Hands one replication event to its handler.
    async fn dispatch(
        &mut self,
        ctx: &mut SourceContext,
        event: ReplicationEvent,
    ) -> Result<(), Halt> {
        match event {
            ReplicationEvent::KeepAlive { wal_end, .. } => {
                let st = &mut self.state;
                let wal_end = wal_end.as_u64();
                tracing::trace!(wal_end = %format_lsn(wal_end), in_tx = st.tx.is_some(), "keepalive");
                if st.tx.is_none() && wal_end > st.resume_lsn {
                    st.resume_lsn = wal_end;
                    st.stored_partial = None;
                    checkpoint(ctx, st).await?;
                }
                Ok(())
            }
            ReplicationEvent::Begin {
                final_lsn,
                xid,
                commit_time_micros,
            } => {
                self.on_begin(final_lsn.as_u64(), xid, commit_time_micros);
                Ok(())
            }
            ReplicationEvent::Commit { lsn, end_lsn, .. } => {
                self.on_commit(ctx, lsn.as_u64(), end_lsn.as_u64()).await
            }
            ReplicationEvent::Message {
                transactional,
                lsn,
                prefix,
                content,
            } => {
                self.on_logical_message(ctx, transactional, lsn.as_u64(), prefix, content.to_vec())
                    .await
            }
            ReplicationEvent::XLogData {
                wal_start, data, ..
            } => self.on_xlog_data(ctx, wal_start.as_u64(), data).await,
            ReplicationEvent::StoppedAt { .. } => Ok(()),
        }
    }

    fn on_begin(&mut self, final_lsn: u64, xid: u32, commit_time_micros: i64) {
        let st = &mut self.state;
        tracing::trace!(final_lsn = %format_lsn(final_lsn), resume = %format_lsn(st.resume_lsn), xid, "begin");
        let skip_first = match st.stored_partial {
            Some(p) if p.commit_lsn == final_lsn => p.events_done,
            _ => 0,
        };
        st.tx = Some(Tx {
            final_lsn,
            xid,
            commit_ts_us: commit_time_micros + PG_EPOCH_OFFSET_US,
            index: 0,
            skip_first,
            skip_all: final_lsn < st.resume_lsn,
            origin: None,
            counts: Default::default(),
        });
    }

    /// A commit: the END record, and a checkpoint at the transaction's end.
    async fn on_commit(
        &mut self,
        ctx: &mut SourceContext,
        lsn: u64,
        end_lsn: u64,
    ) -> Result<(), Halt> {
        let st = &mut self.state;
        let done = st.tx.take();
        st.last_commit = Some(lsn);
        if let Some(t) = &done {
            if end_lsn >= st.resume_lsn {
                st.last_tx = Some(LastTx {
                    tx_id: i64::from(t.xid),
                    ts_us: t.commit_ts_us,
                });
            }
        }
        if done.as_ref().is_some_and(|t| t.skip_all) {
            return Ok(());
        }
        if let Some(end) = done.and_then(|t| {
            let (id, ts_ms) = (t.id(), t.commit_ts_us / 1000);
            t.counts.end(id, ts_ms)
        }) {
            ctx.emit(SourceItem::Transaction(end)).await?;
        }
        let st = &mut self.state;
        st.resume_lsn = st.resume_lsn.max(end_lsn);
        st.stored_partial = None;
        checkpoint(ctx, st).await
    }

    /// A logical decoding message (`pg_logical_emit_message`): transactional ones belong to
    /// their transaction's positions; others are handed over at once.
    async fn on_logical_message(
        &mut self,
        ctx: &mut SourceContext,
        transactional: bool,
        lsn: u64,
        prefix: String,
        content: Vec<u8>,
    ) -> Result<(), Halt> {
        if prefix == incremental::WATERMARK_PREFIX {
            if let Some(t) = self.state.tx.as_mut().filter(|_| transactional) {
                t.index += 1;
            }
            return self.on_watermark(ctx, lsn, &content).await;
        }
        let st = &mut self.state;
        let (pos, ts) = match st.tx.as_mut().filter(|_| transactional) {
            Some(t) => {
                t.index += 1;
                if t.skip_all || t.index <= t.skip_first {
                    return Ok(());
                }
                let (commit, index, ts) = (t.final_lsn, t.index, t.commit_ts_us);
                (st.position_in_tx(commit, index), ts)
            }
            None => (st.position(st.resume_lsn, st.stored_partial), now_us()),
        };
        let st = &self.state;
        let event = ChangeEvent {
            op: Op::Message,
            table: None,
            before: None,
            after: None,
            source: self.meta(
                st.tx.as_ref().filter(|_| transactional),
                Some(lsn),
                st.last_commit,
                ts,
            ),
            message: Some(LogicalMessage { prefix, content }),
            transaction: None,
            position: pos,
        };
        let item = SourceItem::Event(Box::new(event));
        if transactional {
            ctx.emit(item).await?;
        } else {
            ctx.emit_now(item).await?;
        }
        Ok(())
    }

    /// A pgoutput message: decoded, and its changes handed over with their positions (and
    /// transaction metadata when asked for).
    async fn on_xlog_data(
        &mut self,
        ctx: &mut SourceContext,
        lsn: u64,
        data: Bytes,
    ) -> Result<(), Halt> {
        let msg = PgOutputMessage::parse(data).map_err(|source| PgError::Decode {
            lsn: format_lsn(lsn),
            source,
        })?;
        let last_commit = self.state.last_commit;
        let mut tx = self.state.tx.take();
        let events = self.on_message(msg, tx.as_mut(), lsn, last_commit).await;
        self.state.tx = tx;
        let tx_metadata = self.connector.provide_transaction_metadata;
        for (mut event, t_index) in events? {
            self.supersede(&event);
            let st = &mut self.state;
            let Some(t) = st.tx.as_ref() else { continue };
            event.position = st.position_in_tx(t.final_lsn, t_index);
            if tx_metadata {
                let Some(t) = st.tx.as_mut() else { continue };
                let table = event
                    .table
                    .as_ref()
                    .map(|t| t.id.to_string())
                    .unwrap_or_default();
                let (id, ts_ms) = (t.id(), t.commit_ts_us / 1000);
                let (begin, block) = t.counts.count(&id, table, ts_ms);
                if let Some(begin) = begin {
                    ctx.emit(SourceItem::Transaction(begin)).await?;
                }
                event.transaction = Some(block);
            }
            ctx.emit(SourceItem::Event(Box::new(event))).await?;
        }
        Ok(())
    }

    /// Applies one pgoutput message; returns the events to publish with their index in the
    /// transaction.
    async fn on_message(
        &mut self,
        msg: PgOutputMessage,
        tx: Option<&mut Tx>,
        lsn: u64,
        last_commit: Option<u64>,
    ) -> Result<Vec<(ChangeEvent, u64)>, PgError> {
        let mut out = Vec::new();
        match msg {
            PgOutputMessage::Relation(rel) => self.decoder.on_relation(self.client, &rel).await?,
            PgOutputMessage::Type(t) => self.decoder.refresh_types(self.client, t.oid).await?,
            PgOutputMessage::Origin(o) => {
                if let Some(t) = tx {
                    t.origin = Some((Arc::from(o.name), o.commit_lsn));
                }
            }
            PgOutputMessage::Begin(_)
            | PgOutputMessage::Commit(_)
            | PgOutputMessage::Message(_) => {}
            PgOutputMessage::Insert(ins) => {
                let Some(t) = tx else { return Ok(out) };
                t.index += 1;
                let signal_table = self
                    .decoder
                    .relation(ins.relation)
                    .filter(|i| self.is_signal_table(&i.schema.id))
                    .map(|i| i.schema.clone());
                if let Some(table) = signal_table {
                    if !t.skip_all && t.index > t.skip_first {
                        let row = self.decoder.tuple(ins.relation, &ins.new, None);
                        self.signal_row(&table, &row);
                    }
                }
                if let Some(schema) = self.target(ins.relation, "c", t) {
                    let after = self.decoder.tuple(ins.relation, &ins.new, None);
                    let schema = self
                        .decoder
                        .revise(self.client, ins.relation, schema, [None, Some(&after)])
                        .await?;
                    let ev =
                        self.change(Op::Create, schema, None, Some(after), t, lsn, last_commit);
                    out.push((ev, t.index));
                }
            }
            PgOutputMessage::Update(up) => {
                let Some(t) = tx else { return Ok(out) };
                t.index += 1;
                if let Some(schema) = self.target(up.relation, "u", t) {
                    let before = up
                        .old
                        .as_ref()
                        .map(|(_, tuple)| self.decoder.tuple(up.relation, tuple, None));
                    let full_old = matches!(up.old, Some((OldKind::Full, _)));
                    let after = self.decoder.tuple(
                        up.relation,
                        &up.new,
                        before.as_deref().filter(|_| full_old),
                    );
                    let schema = self
                        .decoder
                        .revise(
                            self.client,
                            up.relation,
                            schema,
                            [before.as_deref().filter(|_| full_old), Some(&after)],
                        )
                        .await?;
                    let ev =
                        self.change(Op::Update, schema, before, Some(after), t, lsn, last_commit);
                    out.push((ev, t.index));
                }
            }
            PgOutputMessage::Delete(del) => {
                let Some(t) = tx else { return Ok(out) };
                t.index += 1;
                if let Some(schema) = self.target(del.relation, "d", t) {
                    let before = self.decoder.tuple(del.relation, &del.old.1, None);
                    let full_old = matches!(del.old.0, OldKind::Full);
                    let schema = self
                        .decoder
                        .revise(
                            self.client,
                            del.relation,
                            schema,
                            [Some(before.as_slice()).filter(|_| full_old), None],
                        )
                        .await?;
                    let ev =
                        self.change(Op::Delete, schema, Some(before), None, t, lsn, last_commit);
                    out.push((ev, t.index));
                }
            }
            PgOutputMessage::Truncate(tr) => {
                let Some(t) = tx else { return Ok(out) };
                for rel in tr.relations {
                    t.index += 1;
                    if let Some(schema) = self.target(rel, "t", t) {
                        let ev = self.change(Op::Truncate, schema, None, None, t, lsn, last_commit);
                        out.push((ev, t.index));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The relation of a change and whether to publish it (captured, not skipped, not
    /// already delivered before a restart).
    fn target(&mut self, oid: u32, op: &str, t: &Tx) -> Option<Arc<TableSchema>> {
        let info = self.decoder.relation(oid)?;
        if !info.captured && self.is_signal_table(&info.schema.id) {
            return None;
        }
        if !info.captured {
            let id = info.schema.id.clone();
            self.not_captured(oid, &id);
            return None;
        }
        let publish = self.connector.publishes(op) && !t.skip_all && t.index > t.skip_first;
        publish.then(|| info.schema.clone())
    }

    /// A change of a table in the publication that the connector does not capture: counted
    /// (`sluice_events_not_captured_total`) and logged once per table, never dropped
    /// without a word.
    fn not_captured(&mut self, oid: u32, id: &crate::event::TableId) {
        let Some(observer) = &self.observer else {
            return;
        };
        let counter = self.uncaptured.entry(oid).or_insert_with(|| {
            tracing::warn!(
                table = %id,
                publication = %self.connector.postgres.as_ref().map_or("", |p| p.publication.as_str()),
                "changes of a table in the publication that postgres.tables does not capture are not published (counted in sluice_events_not_captured_total); add it to postgres.tables, or remove it from the publication"
            );
            observer
                .metrics
                .events_not_captured
                .with_label_values(&[&*observer.connector, &id.to_string()])
        });
        counter.inc();
    }

    #[allow(clippy::too_many_arguments)]
    fn change(
        &self,
        op: Op,
        table: Arc<TableSchema>,
        before: Option<Vec<Value>>,
        after: Option<Vec<Value>>,
        t: &Tx,
        lsn: u64,
        last_commit: Option<u64>,
    ) -> ChangeEvent {
        ChangeEvent {
            op,
            table: Some(table),
            before,
            after,
            source: self.meta(Some(t), Some(lsn), last_commit, t.commit_ts_us),
            message: None,
            transaction: None,
            // Set by the caller, which knows the resume LSN.
            position: SourcePosition::Postgres(PgPosition::at(0)),
        }
    }
}

/// How often the slot's lag in bytes is measured.
const SLOT_LAG_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// How often new tables matching `re:` entries are looked for.
const NEW_TABLES_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Hands over a transaction boundary (or idle keepalive) at the state's resume LSN, with
/// everything queued before it.
async fn checkpoint(ctx: &mut SourceContext, st: &State) -> Result<(), Halt> {
    let p = st.position(st.resume_lsn, None);
    Ok(ctx.emit_now(SourceItem::Checkpoint(p)).await?)
}

/// After the stream has closed, confirms the final committed LSN to the slot so the server
/// can recycle WAL without waiting for the next run.
pub(super) async fn confirm_after_stop(
    client: &Client,
    slot: &str,
    lsn: u64,
) -> Result<(), PgError> {
    for attempt in 0..10 {
        match catalog::slot(client, slot).await? {
            Some(s) if s.active => {
                tokio::time::sleep(std::time::Duration::from_millis(100 * (attempt + 1))).await;
            }
            Some(s) => {
                let current = s
                    .confirmed_flush
                    .as_deref()
                    .and_then(crate::position::parse_lsn)
                    .unwrap_or(0);
                if lsn > current {
                    catalog::advance_slot(client, slot, &format_lsn(lsn)).await?;
                }
                return Ok(());
            }
            None => return Ok(()),
        }
    }
    Ok(())
}
