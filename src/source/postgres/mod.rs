//! The PostgreSQL source: pgoutput logical replication with an exported-snapshot handoff.
//!
//! ```text
//!  start ─► checks ─► publication ─► slot ─┬─(snapshot)─► COPY each table inside the
//!                                          │              slot's exported snapshot ─┐
//!                                          └──────────────────────────────────────────┴─► stream
//! ```
//! The slot is created with `SNAPSHOT 'export'`; the snapshot connection imports it before
//! the replication session runs its next command, so the rows read are exactly the state at
//! the slot's consistent point and the stream starts there: no gap, no overlap.
//!
//! Progress: the pipeline reports the last committed position on a watch channel; only that
//! LSN is sent to the server as flushed (invariant 1).

mod catalog;
mod checks;
mod decode;
mod pgoutput;
mod slot;
pub mod slots;
mod snapshot;
mod tls;
use tls::TlsSettingsExt;
mod stream;
mod types;
mod values;

use std::sync::Arc;

use pgwire_replication::ReplicationConfig;
use tokio_postgres::Client;

pub use checks::preflight;

/// Refuses a position set by hand (`offsets set` / `import`, `PATCH .../offsets`) that lies
/// beyond the server's WAL end: PostgreSQL would move the slot there and every change until
/// the WAL reaches it would be skipped for good.
pub async fn check_settable(
    connector: &ConnectorConfig,
    position: &crate::position::PgPosition,
) -> Result<(), String> {
    let Some(pg) = &connector.postgres else {
        return Err("not a PostgreSQL connector".into());
    };
    let info = ConnInfo::parse(pg.url.expose(), pg.password.as_ref()).map_err(|e| e.to_string())?;
    let client = info.connect().await.map_err(|e| {
        format!("cannot check the position against the server ({e}); start the database first")
    })?;
    let end: i64 = client
        .query_one("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    if position.resume_lsn > end as u64 {
        return Err(format!(
            "LSN {} is beyond the server's WAL end {}: the slot would be moved past changes not yet written, and they would be skipped; give an LSN the server has reached",
            crate::position::format_lsn(position.resume_lsn),
            crate::position::format_lsn(end as u64)
        ));
    }
    Ok(())
}
pub use pgoutput::{DecodeError, PgOutputMessage};

use crate::config::{ConnectorConfig, PostgresConfig, PublicationMode, SnapshotMode};
use crate::failure::{Classify, SetupError, Severity};
use crate::offsets::OffsetStore;
use crate::position::{PgPosition, SlotId, SnapshotState, SourcePosition};
use crate::source::start::{self, StartFacts, StartPlan};
use crate::source::{SourceContext, SourceExit};

/// A PostgreSQL source failure.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The server could not be reached or refused the login.
    #[error("cannot connect to PostgreSQL at {target}: {reason}")]
    Connect {
        /// host:port/database (never the password).
        target: String,
        /// Why.
        reason: String,
        /// Whether retrying may help.
        transient: bool,
    },
    /// A query failed.
    #[error("PostgreSQL query failed: {reason}")]
    Query {
        /// Why (server message).
        reason: String,
        /// Whether retrying may help.
        transient: bool,
    },
    /// The server or its objects are not set up as Sluice needs; the message says how to fix.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The replication stream failed.
    #[error("replication stream failed: {0}")]
    Stream(String),
    /// A pgoutput message could not be decoded.
    #[error("cannot decode a pgoutput message at LSN {lsn}: {source}")]
    Decode {
        /// Where.
        lsn: String,
        /// What.
        source: DecodeError,
    },
    /// The offset store failed.
    #[error(transparent)]
    Offsets(#[from] crate::offsets::OffsetError),
}

/// SQLSTATEs a retry may get past: the server going away or restarting (class 08, 57P01
/// admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now, 57P05 idle session
/// timeout), a cancelled statement (57014), a lock or serialization conflict (40001, 40P01,
/// 55P03), resources for now exhausted (class 53), an I/O error on the server (class 58).
fn transient_state(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("58")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "57P05" | "57014" | "40001" | "40P01" | "55P03"
        )
}

/// Table names for messages (`none` when empty).
fn list(tables: &[crate::event::TableId]) -> String {
    if tables.is_empty() {
        return "none".into();
    }
    tables
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A partitioned table is captured through a publication that publishes its changes under
/// the partitions' names: they would not match the captured table.
fn partition_root_problem(publication: &str) -> SetupError {
    SetupError::InvalidSetting {
        setting: format!("publication \"{publication}\" publish_via_partition_root"),
        actual: "false".into(),
        expected: "true to capture a partitioned table (changes then carry the table's own name)".into(),
        fix: format!("run ALTER PUBLICATION {publication} SET (publish_via_partition_root = true), or drop the publication and let Sluice create it"),
    }
}

impl PgError {
    /// Wraps a tokio-postgres error, classifying it.
    pub fn query(e: tokio_postgres::Error) -> Self {
        let transient = e.code().is_none()
            || e.is_closed()
            || e.code().is_some_and(|c| transient_state(c.code()));
        let reason = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        };
        PgError::Query { reason, transient }
    }
}

impl PgError {
    /// A setup problem described by one sentence with its fix.
    pub fn setup(text: impl Into<String>) -> Self {
        PgError::Setup(SetupError::Other(text.into()))
    }
}

impl Classify for PgError {
    fn severity(&self) -> Severity {
        match self {
            PgError::Connect { transient, .. } | PgError::Query { transient, .. } => {
                Severity::transient_if(*transient)
            }
            PgError::Stream(_) => Severity::Transient,
            PgError::Setup(e) => e.severity(),
            PgError::Offsets(e) => e.severity(),
            PgError::Decode { .. } => Severity::Definite,
        }
    }
}

/// How long opening a SQL session may take when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long the best-effort confirmation after a stop may take.
const CONFIRM_AFTER_STOP_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Connection facts parsed from the URL.
#[derive(Clone)]
pub(crate) struct ConnInfo {
    config: tokio_postgres::Config,
    tls: tls::TlsSettings,
    connector: tokio_postgres_rustls::MakeRustlsConnect,
    /// `hostaddr`, when given: where the replication session connects (`host` is then only
    /// the name the certificate must carry).
    hostaddr: Option<String>,
    host: String,
    port: u16,
    user: String,
    password: String,
    database: String,
}

impl ConnInfo {
    fn parse(url: &str, password: Option<&crate::config::Secret>) -> Result<Self, PgError> {
        let (url, tls) =
            tls::split_url(url).map_err(|e| PgError::setup(format!("postgres.url: {e}")))?;
        let mut cfg: tokio_postgres::Config = url
            .parse()
            .map_err(|_| PgError::setup("postgres.url is not a valid connection URL"))?;
        cfg.ssl_mode(tls.postgres_mode());
        // A server that accepts the TCP connection and never answers must not hold a start
        // (or a stop) forever; `connect_timeout` in the URL overrides this.
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(CONNECT_TIMEOUT);
        }
        let client_config = tls
            .client_config()
            .map_err(|e| PgError::setup(format!("postgres.url: {e}")))?;
        let connector = tokio_postgres_rustls::MakeRustlsConnect::new(client_config);
        if let Some(p) = password {
            cfg.password(p.expose());
        }
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.to_string_lossy().into_owned(),
            None => "localhost".into(),
        };
        let user = cfg.get_user().unwrap_or("postgres").to_string();
        // libpq's `hostaddr`: connect to this address, check the certificate against `host`.
        let hostaddr = cfg.get_hostaddrs().first().map(|a| a.to_string());
        if tls.mode == tls::SslMode::VerifyFull
            && hostaddr.is_none()
            && host.parse::<std::net::IpAddr>().is_ok()
        {
            return Err(PgError::setup(format!(
                "postgres.url: sslmode=verify-full needs a host name matching the server certificate, not the address {host} (the replication client checks names only): write the name, add hostaddr={host} with the name as host, or use sslmode=verify-ca"
            )));
        }
        Ok(ConnInfo {
            config: cfg.clone(),
            tls,
            connector,
            hostaddr,
            port: cfg.get_ports().first().copied().unwrap_or(5432),
            password: cfg
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default(),
            database: cfg.get_dbname().unwrap_or(&user).to_string(),
            host,
            user,
        })
    }

    /// `host:port/database`, safe to print.
    fn target(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.database)
    }

    /// Opens a SQL session with the fixed output settings.
    async fn connect(&self) -> Result<Client, PgError> {
        let (client, conn) = self
            .config
            .connect(self.connector.clone())
            .await
            .map_err(|e| {
                let tls_problem = tls::explain(&e, &self.tls, &self.host);
                let definite = tls_problem.is_some()
                    || e.code()
                        .is_some_and(|c| c.code().starts_with("28") || c.code().starts_with("3D"));
                PgError::Connect {
                    target: self.target(),
                    reason: match (e.as_db_error(), tls_problem) {
                        (_, Some(t)) => t,
                        (Some(db), None) => db.message().to_string(),
                        (None, None) => e.to_string(),
                    },
                    transient: !definite,
                }
            })?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "PostgreSQL connection ended");
            }
        });
        catalog::apply_session_settings(&client).await?;
        Ok(client)
    }

    fn replication_config(&self, pg: &PostgresConfig, start_lsn: u64) -> ReplicationConfig {
        let mut tls = self.tls.replication();
        if self.hostaddr.is_some() {
            tls = tls.with_sni_hostname(self.host.clone());
        }
        ReplicationConfig::new(
            self.hostaddr.clone().unwrap_or_else(|| self.host.clone()),
            self.user.clone(),
            self.password.clone(),
            self.database.clone(),
            pg.slot.clone(),
            pg.publication.clone(),
        )
        .with_port(self.port)
        .with_tls(tls)
        .with_start_lsn(pgwire_replication::Lsn::from_u64(start_lsn))
        .with_status_interval(std::time::Duration::from_millis(pg.status_interval_ms))
        .with_buffer_size(1024)
        .with_options(catalog::session_options())
        .with_application_name("sluice")
    }
}

/// The PostgreSQL source of one connector.
pub struct PostgresSource {
    connector: Arc<ConnectorConfig>,
    offsets: Arc<dyn OffsetStore>,
}

impl PostgresSource {
    /// A source for a validated connector.
    pub fn new(connector: Arc<ConnectorConfig>, offsets: Arc<dyn OffsetStore>) -> Self {
        PostgresSource { connector, offsets }
    }

    fn pg(&self) -> &PostgresConfig {
        self.connector
            .postgres
            .as_ref()
            .expect("validated connector has [postgres]")
    }

    /// After the stream has closed, confirms a committed LSN to the slot (best effort: the
    /// next run confirms it anyway).
    pub async fn confirm(&self, lsn: u64) {
        if let Err(e) = self.try_confirm(lsn, CONFIRM_AFTER_STOP_WITHIN).await {
            tracing::warn!(error = %e, "could not confirm the final position to the slot; the next run will");
        }
    }

    /// [`confirm`](Self::confirm), with its error; bounded in time.
    async fn try_confirm(&self, lsn: u64, within: std::time::Duration) -> Result<(), String> {
        let pg = self.pg();
        let work = async {
            let info = ConnInfo::parse(pg.url.expose(), pg.password.as_ref())?;
            let client = info.connect().await?;
            stream::confirm_after_stop(&client, &pg.slot, lsn).await?;
            if pg.drop_slot_on_stop {
                // The slot goes, and with it the stored position (it could only resume
                // where the slot was): the next start is the connector's first.
                catalog::drop_slot(&client, &pg.slot).await?;
                self.offsets.delete(&self.connector.name)?;
                tracing::info!(slot = %pg.slot, "dropped the replication slot and forgot the position (drop_slot_on_stop)");
            }
            Ok::<(), PgError>(())
        };
        // Bounded: a stop must end even when the database does not answer.
        match tokio::time::timeout(within, work).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", within.as_millis())),
        }
    }

    /// Runs until shutdown, a finished `initial_only` snapshot, or an error.
    pub async fn run(&self, ctx: &mut SourceContext) -> Result<SourceExit, PgError> {
        let pg = self.pg();
        let info = ConnInfo::parse(pg.url.expose(), pg.password.as_ref())?;
        let client = info.connect().await?;
        self.prepare(&client).await?;
        let stored: Option<PgPosition> = start::stored_position::<_, PgError>(
            &*self.offsets,
            &self.connector.name,
            |p| match p {
                SourcePosition::Postgres(p) => Some(p.clone()),
                _ => None,
            },
        )?;
        let slot = catalog::slot(&client, &pg.slot).await?;
        // A slot's record stored just before creating it, by a run that died before the
        // slot existed, or a position forgotten by `offsets reset` whose slot is gone
        // since: nothing was streamed, this is a first start.
        let stored = stored.filter(|p| slot.is_some() || p.resume_lsn != 0);
        if let Some(s) = &slot {
            if s.plugin != "pgoutput" {
                return Err(PgError::setup(format!(
                    "replication slot \"{}\" uses plugin \"{}\"; Sluice needs pgoutput: drop it (SELECT pg_drop_replication_slot('{}')) or set postgres.slot to another name",
                    pg.slot, s.plugin, pg.slot
                )));
            }
            if s.active {
                // Another session reads the slot: a previous owner of this connector that
                // died or froze (cluster mode), or another consumer. Wait for it to go, or
                // end it when the connector says so.
                if pg.terminate_stale_walsender
                    && catalog::terminate_slot_reader(&client, &pg.slot).await?
                {
                    tracing::warn!(slot = %pg.slot, "ended the session that held the replication slot (terminate_stale_walsender)");
                }
                return Err(PgError::Stream(format!(
                    "replication slot \"{}\" is in use by another session; waiting for it to be released{}",
                    pg.slot,
                    if pg.terminate_stale_walsender {
                        ""
                    } else {
                        " (set postgres.terminate_stale_walsender = true to end a dead owner's session at once)"
                    }
                )));
            }
        }
        let slot_lost = slot
            .as_ref()
            .is_some_and(|s| s.wal_status.as_deref() == Some("lost"));
        // An initial snapshot cut short (crash, restart) after some of its rows were
        // committed, with the slot still there: streaming resumes from the slot's consistent
        // point and what was left of the snapshot is read incrementally.
        let mode = self.connector.snapshot.mode;
        let resumable = stored.as_ref().is_some_and(|p| {
            p.snapshot == SnapshotState::InProgress && p.incremental.is_some() && p.slot.is_some()
        }) && slot.is_some()
            && !slot_lost
            && matches!(mode, SnapshotMode::Initial | SnapshotMode::WhenNeeded);
        if resumable {
            tracing::info!("the initial snapshot was interrupted: streaming from its start, the rest of it read incrementally");
        }
        let facts = StartFacts {
            mode,
            snapshot_done: resumable
                || stored
                    .as_ref()
                    .is_some_and(|p| p.snapshot == SnapshotState::Done),
            position_lost: stored.is_some() && (slot.is_none() || slot_lost),
        };
        let start = match start::plan(facts) {
            StartPlan::Finished => {
                tracing::info!(
                    "snapshot already taken (snapshot.mode = initial_only): nothing to do"
                );
                return Ok(SourceExit::Finished);
            }
            StartPlan::Lost if slot.is_none() => {
                return Err(PgError::setup(format!(
                    "replication slot \"{}\" is gone but an offset is stored: changes since then are lost to Sluice; set snapshot.mode = \"when_needed\" to take a new snapshot, or forget the position with `sluice offsets reset {}`",
                    pg.slot, self.connector.name
                )))
            }
            StartPlan::Lost => {
                return Err(PgError::setup(format!(
                    "replication slot \"{}\" has lost WAL it needed (wal_status = lost); set snapshot.mode = \"when_needed\" to take a new snapshot",
                    pg.slot
                )))
            }
            StartPlan::Snapshot => {
                return self
                    .snapshot_then_stream(ctx, &info, &client, slot.as_ref(), stored.as_ref())
                    .await
            }
            StartPlan::Resume => match stored {
                Some(p) if p.slot.is_some() => {
                    // The slot on the server must be the one the position was read from:
                    // a slot dropped and recreated, consumed by another client, or moved
                    // past the stored position has skipped changes for good.
                    if let Some(existing) = slot.as_ref() {
                        let (database_oid, _) = catalog::database_oid_and_wal(&client).await?;
                        slot::check_owned(existing, Some(&p), database_oid).map_err(|why| {
                            PgError::setup(format!(
                                "replication slot \"{}\" is not the one this connector's stored position was read from: {why}. Changes it held may have gone to another consumer; resuming would skip them silently. Find who else uses the slot (postgres.slot must be this connector's alone); to start over with a new snapshot, stop the other consumer, drop the slot and run `sluice offsets reset {}`",
                                pg.slot, self.connector.name
                            ))
                        })?;
                    }
                    if p.resume_lsn == 0 && p.incremental.is_none() {
                        // Nothing streamed yet (a slot just created, or a position forgotten
                        // by `offsets reset`): stream from the slot's own position.
                        PgPosition {
                            snapshot: SnapshotState::Done,
                            ..p
                        }
                    } else {
                        p
                    }
                }
                Some(p) => self.record_slot(&client, p, slot.as_ref()).await?,
                None => self.start_from_slot(&info, &client, slot.as_ref()).await?,
            },
        };
        let resume_lsn = start.resume_lsn;
        let streamer = stream::Streamer::new(&self.connector, &info, &client, start).await?;
        let session = stream::Session::open(&info, pg, resume_lsn).await?;
        streamer.run_session(session, ctx).await
    }

    /// The server checks, and the publication (created when absent).
    async fn prepare(&self, client: &tokio_postgres::Client) -> Result<(), PgError> {
        let pg = self.pg();
        let report = checks::server_problems(client, &self.connector).await?;
        if let Some(first) = report.into_iter().next() {
            return Err(PgError::Setup(first));
        }
        let via_root = catalog::captures_partitioned(client, &pg.filter).await?;
        let all_tables = pg.publication_autocreate == PublicationMode::AllTables;
        let mut exists = catalog::publication_exists(client, &pg.publication).await?;
        if !exists {
            // (`disabled` without a publication was reported by the checks above.)
            match catalog::create_publication(client, &pg.publication, &pg.filter, via_root, all_tables).await {
                Ok(()) => tracing::info!(publication = %pg.publication, all_tables, "created publication"),
                // Created meanwhile by someone else (another connector of the database
                // starting at the same time): use it as an existing one.
                Err(_) if catalog::publication_exists(client, &pg.publication).await? => exists = true,
                Err(e) => {
                    return Err(PgError::setup(format!(
                        "cannot create publication \"{}\": {e}; create it yourself (CREATE PUBLICATION {} FOR TABLE ...) or grant the user ownership of the tables{}",
                        pg.publication,
                        pg.publication,
                        if all_tables { " (FOR ALL TABLES needs a superuser)" } else { "" }
                    )))
                }
            }
        }
        if exists && pg.publication_autocreate == PublicationMode::Filtered {
            // Only what this connector needs is added; what else the publication publishes
            // may be another connector's or subscriber's, and stays.
            let coverage =
                catalog::publication_coverage(client, &pg.publication, &pg.filter).await?;
            if !coverage.all_tables && !coverage.missing.is_empty() {
                let sql = catalog::add_tables_sql(&pg.publication, &coverage.missing);
                client.batch_execute(&sql).await.map_err(|e| {
                    PgError::setup(format!(
                        "cannot add {} to publication \"{}\": {e}; run `{sql}` yourself and set publication_autocreate = \"disabled\", or grant the user ownership of the publication and the tables",
                        list(&coverage.missing),
                        pg.publication,
                    ))
                })?;
                tracing::info!(publication = %pg.publication, added = %list(&coverage.missing), "tables added to the publication");
            }
            if !coverage.all_tables && !coverage.extra.is_empty() {
                tracing::info!(
                    publication = %pg.publication,
                    not_captured = %list(&coverage.extra),
                    "the publication also publishes tables this connector does not capture (left as they are: they may be another consumer's; their changes are decoded and skipped)"
                );
            }
        }
        Ok(())
    }

    /// Creates the slot with an exported snapshot, reads the tables in it, and streams from
    /// the slot's consistent point (unless `initial_only`). An existing slot is dropped first
    /// only when it is provably this connector's; otherwise the connector stops.
    async fn snapshot_then_stream(
        &self,
        ctx: &mut SourceContext,
        info: &ConnInfo,
        client: &tokio_postgres::Client,
        existing: Option<&catalog::SlotInfo>,
        stored: Option<&PgPosition>,
    ) -> Result<SourceExit, PgError> {
        let pg = self.pg();
        let (database_oid, wal_now) = catalog::database_oid_and_wal(client).await?;
        if let Some(existing) = existing {
            slot::check_owned(existing, stored, database_oid)
                .map_err(|why| PgError::setup(slot::not_owned_message(&pg.slot, existing, &why)))?;
            tracing::warn!(slot = %pg.slot, "recreating the replication slot: a snapshot needs the slot's own exported snapshot to hand over exactly");
            catalog::drop_slot(client, &pg.slot).await?;
        }
        // The slot's record is stored before the slot exists, so a crash right after
        // creating it leaves a slot this connector can prove is its own.
        let id = Some(SlotId {
            database_oid,
            created_lsn: wal_now,
        });
        let pending = PgPosition {
            incremental: None,
            resume_lsn: 0,
            partial: None,
            snapshot: SnapshotState::InProgress,
            slot: id,
            last_tx: None,
        };
        self.offsets.reset(
            &self.connector.name,
            &SourcePosition::Postgres(pending.clone()),
        )?;
        let mut session = stream::Session::open(info, pg, 0).await?;
        let (consistent, snapshot_name) = session.create_slot(&pg.slot, true).await?;
        let in_progress = PgPosition {
            resume_lsn: consistent,
            ..pending
        };
        self.offsets.reset(
            &self.connector.name,
            &SourcePosition::Postgres(in_progress.clone()),
        )?;
        let snap = snapshot::Snapshot {
            connector: &self.connector,
            info,
            catalog_client: client,
            snapshot_name: snapshot_name.unwrap_or_default(),
            start: in_progress.clone(),
            offsets: &*self.offsets,
        };
        if !snap.run(ctx).await? {
            return Ok(SourceExit::Shutdown);
        }
        if self.connector.snapshot.mode == SnapshotMode::InitialOnly {
            return Ok(SourceExit::Finished);
        }
        let done = PgPosition {
            snapshot: SnapshotState::Done,
            ..in_progress
        };
        stream::Streamer::new(&self.connector, info, client, done)
            .await?
            .run_session(session, ctx)
            .await
    }

    /// No position stored and no snapshot wanted (`no_data`): start where the slot starts
    /// (creating it), and store that, with the slot's record, before streaming so a restart
    /// never skips what happens meanwhile.
    async fn start_from_slot(
        &self,
        info: &ConnInfo,
        client: &tokio_postgres::Client,
        slot: Option<&catalog::SlotInfo>,
    ) -> Result<PgPosition, PgError> {
        let pg = self.pg();
        let (database_oid, wal_now) = catalog::database_oid_and_wal(client).await?;
        let (lsn, created_lsn) = match slot {
            Some(s) => {
                // Never adopted: nothing stored says it is this connector's, and a slot of
                // another consumer (or another connector's file copied) would be taken over.
                return Err(PgError::setup(format!(
                    "replication slot \"{}\" already exists (database \"{}\", confirmed up to {}), and no stored position of connector \"{}\" records it: Sluice does not take over a slot it cannot prove is its own. If no one else uses it, drop it (SELECT pg_drop_replication_slot('{}') in database \"{}\"); otherwise set postgres.slot to another name",
                    pg.slot,
                    s.database,
                    s.confirmed_flush.as_deref().unwrap_or("nothing"),
                    self.connector.name,
                    pg.slot,
                    s.database
                )));
            }
            None => {
                // The slot's record is stored before the slot exists: a crash right after
                // creating it leaves a slot this connector can prove is its own.
                let pending = PgPosition {
                    slot: Some(SlotId {
                        database_oid,
                        created_lsn: wal_now,
                    }),
                    ..PgPosition::at(0)
                };
                self.offsets
                    .reset(&self.connector.name, &SourcePosition::Postgres(pending))?;
                let mut session = stream::Session::open(info, pg, 0).await?;
                let (consistent, _) = session.create_slot(&pg.slot, false).await?;
                drop(session);
                (consistent, wal_now)
            }
        };
        let p = PgPosition {
            incremental: None,
            resume_lsn: lsn,
            partial: None,
            snapshot: SnapshotState::Done,
            slot: Some(SlotId {
                database_oid,
                created_lsn,
            }),
            last_tx: None,
        };
        self.offsets
            .commit(&self.connector.name, &SourcePosition::Postgres(p.clone()))?;
        Ok(p)
    }

    /// A position stored before Sluice recorded slots, resumed on a slot of this database
    /// confirmed no further than the position: the slot is recorded as this connector's.
    async fn record_slot(
        &self,
        client: &tokio_postgres::Client,
        stored: PgPosition,
        slot: Option<&catalog::SlotInfo>,
    ) -> Result<PgPosition, PgError> {
        let (database_oid, _) = catalog::database_oid_and_wal(client).await?;
        let confirmed = slot
            .filter(|s| s.database_oid == database_oid)
            .and_then(|s| s.confirmed_flush.as_deref())
            .and_then(crate::position::parse_lsn)
            .filter(|&c| c <= stored.resume_lsn);
        Ok(PgPosition {
            slot: confirmed.map(|created_lsn| SlotId {
                database_oid,
                created_lsn,
            }),
            ..stored
        })
    }
}

#[cfg(test)]
mod transient_tests {
    #[test]
    fn a_restarting_server_is_retried_a_bad_statement_is_not() {
        for code in ["57P01", "57P03", "08006", "40P01", "53300", "57014"] {
            assert!(super::transient_state(code), "{code}");
        }
        for code in ["42601", "42501", "42P01", "22P02", "0A000"] {
            assert!(!super::transient_state(code), "{code}");
        }
    }

    /// A database that accepts the connection and never answers (a half-open network, a
    /// frozen server) must not hold a stop: the confirmation after it gives up in bounded
    /// time, with the reason (before, the daemon's SIGTERM waited forever on it).
    #[tokio::test]
    async fn confirmation_after_stop_is_bounded_by_a_silent_server() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let text = format!(
            "name = \"c\"\nsource = \"postgres\"\ntopic_prefix = \"c\"\n[postgres]\nurl = \"postgres://u:p@127.0.0.1:{port}/d\"\nslot = \"s\"\npublication = \"p\"\ntables = [\"public.t\"]\n"
        );
        let connector =
            crate::config::ConnectorConfig::parse(std::path::Path::new("c.toml"), &text).unwrap();
        let source = super::PostgresSource::new(
            std::sync::Arc::new(connector),
            std::sync::Arc::new(crate::offsets::MemoryOffsetStore::default()),
        );
        let err = source
            .try_confirm(0x1000, std::time::Duration::from_millis(500))
            .await
            .unwrap_err();
        assert_eq!(err, "no answer within 500 ms");
        std::mem::drop(silent);
    }
}
