//! The MySQL / MariaDB source: binlog replication with a consistent-snapshot handoff.
//!
//! ```text
//!  start ─► checks ─┬─(snapshot)─► FTWRL ─► START TRANSACTION WITH CONSISTENT SNAPSHOT ─►
//!                   │              read binlog file/pos + GTID state ─► UNLOCK TABLES ─►
//!                   │              store the position ─► SELECT each table ─┐
//!                   └──────────────────────────────────────────────────────────┴─► stream
//! ```
//! Streaming uses `mysql_async`'s binlog stream for the protocol (registration, dump,
//! checksums, framing); every event body is decoded by `binlog` and `table_map`, the
//! same decoder that reads binlog files. MariaDB resumes by GTID (`@slave_connect_state`),
//! MySQL by file and position.
//!
//! Positions point at the start of the current transaction and count the rows events and
//! rows of it already published: a restart re-reads the transaction and skips those.

mod binlog;
mod catalog;
mod checks;
mod ddl_tables;
mod decimal;
mod definition;
mod event_type;
#[cfg(any(test, feature = "testing"))]
mod file;
mod gtid;
mod jsonb;
mod payload;
mod plan;
mod reader;
mod rows;
mod snapshot;
mod statements;
mod step;
mod stream;
mod table_map;
mod values;

#[cfg(test)]
mod auth_tests;

/// The binlog file decoder, for the `testing` feature (fixture tests, `binlog_dump`).
#[cfg(feature = "testing")]
pub(crate) mod decoder {
    pub use super::binlog::RowsKind;
    pub use super::file::{read_file, FileContents};
}

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};

pub use checks::preflight;

use crate::config::{ConnectorConfig, MysqlConfig, SnapshotMode};
use crate::event::MysqlFlavor;
use crate::failure::{Classify, SetupError, Severity};
use crate::offsets::OffsetStore;
use crate::position::{MyPosition, SnapshotState, SourcePosition};
use crate::source::start::{self, StartFacts, StartPlan};
use crate::source::{SourceContext, SourceExit};

/// A MySQL / MariaDB source failure.
#[derive(Debug, thiserror::Error)]
pub enum MyError {
    /// The server could not be reached or refused the login.
    #[error("cannot connect to MySQL at {target}: {reason}")]
    Connect {
        /// host:port (never the password).
        target: String,
        /// Why.
        reason: String,
        /// Whether retrying may help.
        transient: bool,
    },
    /// A statement failed.
    #[error("MySQL query failed: {reason}")]
    Query {
        /// Why (server message and code).
        reason: String,
        /// Whether retrying may help.
        transient: bool,
    },
    /// The server is not set up as Sluice needs; the message says how to fix it.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The binlog stream broke (retried).
    #[error("binlog stream failed: {0}")]
    Stream(String),
    /// An event could not be decoded.
    #[error(transparent)]
    Decode(#[from] binlog::BinlogError),
    /// The offset store failed.
    #[error(transparent)]
    Offsets(#[from] crate::offsets::OffsetError),
}

/// Server error codes that retrying does not fix.
fn definite_code(code: u16) -> bool {
    matches!(
        code,
        1044 | 1045 | 1049 | 1142 | 1143 | 1146 | 1227 | 1236 | 1370 | 1698 | 1064
    )
}

impl MyError {
    /// Wraps a driver error, classifying it.
    pub fn query(e: mysql_async::Error) -> Self {
        match e {
            mysql_async::Error::Server(s) => MyError::Query {
                reason: format!("{} (error {})", s.message, s.code),
                transient: !definite_code(s.code),
            },
            other => MyError::Query {
                reason: other.to_string(),
                transient: true,
            },
        }
    }
}

impl MyError {
    /// A setup problem described by one sentence with its fix.
    pub fn setup(text: impl Into<String>) -> Self {
        MyError::Setup(SetupError::Other(text.into()))
    }
}

impl Classify for MyError {
    fn severity(&self) -> Severity {
        match self {
            MyError::Connect { transient, .. } | MyError::Query { transient, .. } => {
                Severity::transient_if(*transient)
            }
            MyError::Stream(_) => Severity::Transient,
            MyError::Setup(e) => e.severity(),
            MyError::Offsets(e) => e.severity(),
            MyError::Decode(_) => Severity::Definite,
        }
    }
}

/// Connection facts parsed from the URL.
#[derive(Clone)]
pub(crate) struct ConnInfo {
    opts: Opts,
    /// `ssl-mode=PREFERRED`: the same without TLS, for a server that does not offer it.
    plain: Option<Opts>,
    tls: crate::config::target::MyTls,
    target: String,
}

/// Refuses a position set by hand (`offsets set` / `import`, `PATCH .../offsets`) that the
/// server does not have: a binlog file it does not list, or an offset past the end of its
/// current file.
pub async fn check_settable(
    connector: &crate::config::ConnectorConfig,
    position: &crate::position::MyPosition,
) -> Result<(), String> {
    let Some(my) = &connector.mysql else {
        return Err("not a MySQL / MariaDB connector".into());
    };
    let info = ConnInfo::parse(my.url.expose(), my.password.as_ref()).map_err(|e| e.to_string())?;
    let mut conn = info.connect().await.map_err(|e| {
        format!("cannot check the position against the server ({e}); start the database first")
    })?;
    if !catalog::binlog_exists(&mut conn, &position.file)
        .await
        .map_err(|e| e.to_string())?
    {
        return Err(format!(
            "binlog file {} is not on the server (SHOW BINARY LOGS): give a file and position the server has",
            position.file
        ));
    }
    let (file, end) = catalog::master_status(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    if *position.file == *file && position.pos > end {
        return Err(format!(
            "position {} is past the end of {file} ({end}): changes not yet written would be skipped; give a position the server has reached",
            position.pos
        ));
    }
    Ok(())
}

impl ConnInfo {
    pub(crate) fn parse(
        url: &str,
        password: Option<&crate::config::Secret>,
    ) -> Result<Self, MyError> {
        use crate::config::target::MySslMode;
        let normalized = url.replacen("mariadb://", "mysql://", 1);
        let (normalized, tls) = crate::config::target::split_mysql_tls(&normalized)
            .map_err(|e| MyError::setup(format!("mysql.url: {e}")))?;
        let opts = Opts::from_url(&normalized)
            .map_err(|_| MyError::setup("mysql.url is not a valid connection URL"))?;
        let target = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port());
        let mut builder = OptsBuilder::from_opts(opts);
        if let Some(p) = password {
            builder = builder.pass(Some(p.expose()));
        }
        let builder = builder.prefer_socket(false).tcp_nodelay(true);
        let plain: Opts = builder.clone().ssl_opts(None).into();
        let opts: Opts = builder.ssl_opts(ssl_opts(&tls)).into();
        Ok(ConnInfo {
            opts,
            plain: (tls.mode == MySslMode::Preferred).then_some(plain),
            tls,
            target,
        })
    }

    /// Opens a session with UTC time and utf8mb4 results.
    pub(crate) async fn connect(&self) -> Result<Conn, MyError> {
        let mut conn = match self.open(&self.opts).await {
            Err(mysql_async::Error::Driver(
                mysql_async::DriverError::NoClientSslFlagFromServer,
            )) if self.plain.is_some() => self.open(self.plain.as_ref().expect("checked")).await,
            other => other,
        }
        .map_err(|e| {
            let (reason, transient) = match &e {
                mysql_async::Error::Server(s) => (
                    format!("{} (error {})", s.message, s.code),
                    !definite_code(s.code),
                ),
                other => match explain_tls(&other.to_string(), &self.tls, &self.target) {
                    Some(why) => (why, false),
                    None => (other.to_string(), true),
                },
            };
            MyError::Connect {
                target: self.target.clone(),
                reason,
                transient,
            }
        })?;
        conn.query_drop("SET time_zone = '+00:00', NAMES utf8mb4")
            .await
            .map_err(MyError::query)?;
        Ok(conn)
    }

    async fn open(&self, opts: &Opts) -> Result<Conn, mysql_async::Error> {
        match tokio::time::timeout(std::time::Duration::from_secs(10), Conn::new(opts.clone()))
            .await
        {
            Ok(r) => r,
            Err(_) => Err(mysql_async::Error::Io(mysql_async::IoError::Io(
                std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out after 10 s"),
            ))),
        }
    }
}

/// The driver's TLS settings for a URL's `ssl-mode`, `ssl-ca`, `ssl-cert`, `ssl-key`.
fn ssl_opts(tls: &crate::config::target::MyTls) -> Option<mysql_async::SslOpts> {
    use crate::config::target::MySslMode;
    let mut ssl = mysql_async::SslOpts::default();
    match tls.mode {
        MySslMode::Disabled => return None,
        MySslMode::Preferred | MySslMode::Required => {
            ssl = ssl
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true);
        }
        MySslMode::VerifyCa | MySslMode::VerifyIdentity => {
            if let Some(ca) = &tls.ca {
                ssl = ssl
                    .with_root_certs(vec![ca.clone().into()])
                    .with_disable_built_in_roots(true);
            }
            ssl = ssl.with_danger_skip_domain_validation(tls.mode == MySslMode::VerifyCa);
        }
    }
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        ssl = ssl.with_client_identity(Some(mysql_async::ClientIdentity::new(
            cert.clone().into(),
            key.clone().into(),
        )));
    }
    Some(ssl)
}

/// A TLS failure said precisely; `None` when the failure is not about TLS.
fn explain_tls(text: &str, tls: &crate::config::target::MyTls, target: &str) -> Option<String> {
    let ca = || {
        tls.ca
            .as_ref()
            .map_or("the built-in roots (no ssl-ca)".to_string(), |p| {
                format!("ssl-ca {}", p.display())
            })
    };
    let why = if text.contains("does not have this capability") || text.contains("NoClientSslFlag")
    {
        "the server does not offer TLS, but ssl-mode requires it".to_string()
    } else if text.contains("NotValidForName") || text.contains("not valid for name") {
        format!("the server's certificate is not valid for the host of {target} (ssl-mode=VERIFY_IDENTITY checks it; use the name the certificate carries)")
    } else if text.contains("UnknownIssuer") || text.contains("unknown issuer") {
        format!("the server's certificate is not signed by a CA in {}", ca())
    } else if text.contains("xpired") {
        "the server's certificate has expired".to_string()
    } else if text.contains("certificate") || text.contains("TLS") || text.contains("tls") {
        return Some(format!("TLS failed: {text}"));
    } else {
        return None;
    };
    Some(format!("{why} ({text})"))
}

/// What the server is.
#[derive(Debug, Clone)]
pub(crate) struct ServerInfo {
    pub flavor: MysqlFlavor,
    pub version: String,
}

pub(crate) async fn server_info(conn: &mut Conn) -> Result<ServerInfo, MyError> {
    let version: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(MyError::query)?;
    let version = version.unwrap_or_default();
    let flavor = if version.contains("MariaDB") {
        MysqlFlavor::Mariadb
    } else {
        MysqlFlavor::Mysql
    };
    Ok(ServerInfo { flavor, version })
}

/// How long a session registered with the connector's server_id may remain before the
/// connector concludes it is another replica's (the server notices a dead session at its
/// next heartbeat, sent every 5 s).
const SERVER_ID_WAIT_SECS: u32 = 15;

/// The MySQL / MariaDB source of one connector.
pub struct MysqlSource {
    connector: Arc<ConnectorConfig>,
    offsets: Arc<dyn OffsetStore>,
}

impl MysqlSource {
    /// A source for a validated connector.
    pub fn new(connector: Arc<ConnectorConfig>, offsets: Arc<dyn OffsetStore>) -> Self {
        MysqlSource { connector, offsets }
    }

    fn my(&self) -> &MysqlConfig {
        self.connector
            .mysql
            .as_ref()
            .expect("validated connector has [mysql]")
    }

    /// Runs until shutdown, a finished `initial_only` snapshot, or an error.
    pub async fn run(&self, ctx: &mut SourceContext) -> Result<SourceExit, MyError> {
        let my = self.my();
        let info = ConnInfo::parse(my.url.expose(), my.password.as_ref())?;
        let mut conn = info.connect().await?;
        let server = server_info(&mut conn).await?;
        let problems = checks::server_problems(&mut conn, &server, &self.connector).await?;
        if let Some(first) = problems.into_iter().next() {
            return Err(MyError::Setup(first));
        }
        // A session registered with this server_id is usually this connector's previous
        // one, which the server drops within a heartbeat (5 s) of its end. One that stays is
        // another replica: two replicas with one id are disconnected by the server in turn,
        // each time the other connects, so the connector refuses to start.
        let mut waited = 0;
        while let Some(other) = checks::replica_with_server_id(&mut conn, my.server_id).await {
            if waited >= SERVER_ID_WAIT_SECS {
                return Err(MyError::setup(format!(
                    "mysql.server_id {} is already used by a connected replica of this server ({other}), still after {SERVER_ID_WAIT_SECS} s; two replicas with one id take turns being disconnected. Give this connector an id no server or replica in the topology uses",
                    my.server_id
                )));
            }
            if waited == 0 {
                tracing::info!(server_id = my.server_id, replica = %other, "a replica session with this server_id is registered; waiting for it to end");
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            if ctx.stopping() {
                return Ok(SourceExit::Shutdown);
            }
            waited += 1;
        }
        let stored: Option<MyPosition> = start::stored_position::<_, MyError>(
            &*self.offsets,
            &self.connector.name,
            |p| match p {
                SourcePosition::Mysql(p) => Some(p.clone()),
                _ => None,
            },
        )?;
        let mode = self.connector.snapshot.mode;
        // An initial snapshot cut short after some of its rows were committed: streaming
        // resumes from the snapshot's binlog position and what was left of the snapshot is
        // read incrementally (the consistent view died with its session).
        let resumable = match &stored {
            Some(p)
                if p.snapshot == SnapshotState::InProgress
                    && p.incremental.is_some()
                    && matches!(mode, SnapshotMode::Initial | SnapshotMode::WhenNeeded) =>
            {
                catalog::binlog_exists(&mut conn, &p.file).await?
            }
            _ => false,
        };
        if resumable {
            tracing::info!("the initial snapshot was interrupted: streaming from its start, the rest of it read incrementally");
        }
        let snapshot_done = resumable
            || stored
                .as_ref()
                .is_some_and(|p| p.snapshot == SnapshotState::Done);
        let purged = match &stored {
            Some(p) if snapshot_done => !catalog::binlog_exists(&mut conn, &p.file).await?,
            _ => false,
        };
        let facts = StartFacts {
            mode,
            snapshot_done,
            position_lost: purged,
        };
        let start = match start::plan(facts) {
            StartPlan::Finished => {
                tracing::info!(
                    "snapshot already taken (snapshot.mode = initial_only): nothing to do"
                );
                return Ok(SourceExit::Finished);
            }
            StartPlan::Lost => {
                let p = stored.as_ref().expect("a lost position is a stored one");
                return Err(MyError::setup(format!(
                    "the stored position {}:{} is no longer on the server (binlog file {} was purged): changes since then are lost to Sluice; set snapshot.mode = \"when_needed\" to take a new snapshot, or forget the position with `sluice offsets reset {}`",
                    p.file, p.pos, p.file, self.connector.name
                )));
            }
            StartPlan::Snapshot => {
                if purged {
                    tracing::warn!("the stored binlog position was purged from the server; taking a new snapshot (snapshot.mode = when_needed)");
                }
                let snap = snapshot::Snapshot {
                    connector: &self.connector,
                    info: &info,
                    server: &server,
                    offsets: &*self.offsets,
                };
                let Some(start) = snap.run(ctx).await? else {
                    return Ok(SourceExit::Shutdown);
                };
                if mode == SnapshotMode::InitialOnly {
                    return Ok(SourceExit::Finished);
                }
                start
            }
            StartPlan::Resume => {
                match stored.filter(|p| p.snapshot == SnapshotState::Done || resumable) {
                    Some(p) => MyPosition {
                        snapshot: SnapshotState::Done,
                        ..p
                    },
                    None => self.current_position(&mut conn, &server).await?,
                }
            }
        };
        drop(conn);
        let streamer = stream::Streamer::new(&self.connector, &info, &server, start).await?;
        streamer.run(ctx).await
    }

    /// The server's current position (no snapshot), stored before streaming begins.
    async fn current_position(
        &self,
        conn: &mut Conn,
        server: &ServerInfo,
    ) -> Result<MyPosition, MyError> {
        let (file, pos) = catalog::master_status(conn).await?;
        let gtids = catalog::gtid_state(conn, server.flavor).await?;
        let p = MyPosition {
            incremental: None,
            file: file.into(),
            pos,
            gtids: gtids.map(Into::into),
            events: 0,
            rows: 0,
            snapshot: SnapshotState::Done,
            last_event: None,
        };
        self.offsets
            .commit(&self.connector.name, &SourcePosition::Mysql(p.clone()))?;
        Ok(p)
    }
}
