//! The command line: `run`, `validate`, `offsets show|export|import|set|reset`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::sync::watch;

use std::sync::Arc;

use crate::config::{self, ConnectorConfig, DaemonConfig, LogFormat, SinkConfig};
use crate::encode::RegistryClient;
use crate::offsets::{
    connect, FileOffsetStore, KafkaOffsetStore, KafkaStoreSettings, OffsetError, OffsetStore,
};
use crate::position::{parse_lsn, MyPosition, PgPosition, SnapshotState, SourcePosition};
use crate::runtime;
use crate::sink::{Sink, SinkError};
use crate::source::{mysql, postgres};
use crate::source::{ChangeSource, Source};

mod debezium;
mod offsets;
mod progress;
mod status;
use debezium::{convert, debezium_server_files};
use offsets::offsets_command;

/// Change data capture from PostgreSQL and MySQL / MariaDB to Kafka, in Debezium's envelope.
#[derive(Parser, Debug)]
#[command(name = "sluice", version = version_text(), about)]
struct Cli {
    /// The daemon configuration file (before or after the subcommand: `sluice -c FILE run`
    /// and `sluice run -c FILE` alike).
    #[arg(
        short = 'c',
        long,
        env = "SLUICE_CONFIG",
        default_value = "config/sluice.toml",
        global = true
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run every connector of the connectors folder until SIGINT or SIGTERM.
    Run {
        /// Run Debezium Server's `application.properties` instead of `--config`: its source
        /// connector, Kafka sink and offsets store (the files Sluice runs from are written
        /// to `--state-dir`).
        #[arg(long, value_name = "FILE")]
        debezium_server: Option<PathBuf>,
        /// With `--debezium-server`: where the daemon and connector files are written
        /// (default: `sluice-state` in the working directory).
        #[arg(long, value_name = "DIR", requires = "debezium_server")]
        state_dir: Option<PathBuf>,
    },
    /// Check the configuration, the databases and the broker; print one line per problem.
    Validate,
    /// Inspect stored positions.
    Offsets {
        #[command(subcommand)]
        command: OffsetsCommand,
    },
    /// PostgreSQL replication slots of the configured databases.
    Slots {
        #[command(subcommand)]
        command: SlotsCommand,
    },
    /// Print the Sluice connector file for a Debezium connector configuration: Kafka
    /// Connect's JSON (`{"name", "config"}`), or a `.properties` file (Debezium Server's
    /// `application.properties`, or plain connector properties). Ignored keys are noted;
    /// refused keys are printed with the reason (exit 1).
    Convert {
        /// The JSON or properties file.
        file: PathBuf,
    },
    /// The connectors of a running daemon (from its admin API, `[api]` of the config, or
    /// --url): state, lag, records published, position or snapshot progress.
    Status {
        /// Redraw every 2 seconds until interrupted.
        #[arg(long)]
        watch: bool,
        /// The API's base URL (default: `[api] listen` of the daemon config).
        #[arg(long)]
        url: Option<String>,
        /// The API token (default: `[api] token` of the daemon config).
        #[arg(long, env = "SLUICE_API_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Ask a running daemon's admin API whether it is ready (a container healthcheck): exit 0
    /// on a 2xx answer, 1 otherwise.
    Probe {
        /// The URL to GET (http:// or https://).
        #[arg(default_value = "http://127.0.0.1:8083/ready")]
        url: String,
        /// HTTPS: the CA file that signed the API's certificate (default: the public CAs).
        #[arg(long)]
        cacert: Option<PathBuf>,
        /// HTTPS: the name the API's certificate carries, when the URL's host is another.
        #[arg(long)]
        servername: Option<String>,
        /// The API token (the full /ready answer lists connectors only with it).
        #[arg(long, env = "SLUICE_API_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum SlotsCommand {
    /// Every logical slot of the databases the PostgreSQL connectors use: its owner connector
    /// (or "not-sluice's": no connector here names it; it may be another tool's), whether a
    /// session reads it, the WAL it holds back and its wal_status.
    List,
    /// Drop a slot (refused while a session reads it, and for a slot no connector here
    /// names unless --force: it may be another tool's or a subscription's).
    Drop {
        /// The slot.
        name: String,
        /// Also drop a slot no connector of this folder names.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
enum OffsetsCommand {
    /// Print the stored position of every connector, or of one.
    Show {
        /// Only this connector.
        connector: Option<String>,
    },
    /// Write every stored position as JSON lines (to standard output, or a file).
    Export {
        /// `debezium`: Kafka Connect's partition and Debezium's offset fields (readable by
        /// Debezium); `sluice`: Sluice's own position.
        #[arg(long, default_value = "debezium")]
        format: ExportFormat,
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Store positions read as JSON lines (either format, or Debezium's offsets as Kafka
    /// Connect's REST API lists them); refused while a daemon uses a file store's folder.
    Import {
        /// Read from this file (default: standard input).
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// Store a position for one connector (refused while a daemon uses a file store's
    /// folder).
    Set {
        /// The connector.
        connector: String,
        /// PostgreSQL: resume after this LSN (`16/B374D848`).
        #[arg(long)]
        lsn: Option<String>,
        /// MySQL / MariaDB: the binlog file of the transaction to resume at.
        #[arg(long)]
        file: Option<String>,
        /// MySQL / MariaDB: the position of that transaction's first event.
        #[arg(long)]
        pos: Option<u64>,
        /// MySQL / MariaDB: the GTID state before it (MariaDB resumes with it).
        #[arg(long)]
        gtids: Option<String>,
    },
    /// Forget a connector's position: its next start is its first (a new snapshot, as its
    /// snapshot mode says). Refused while a daemon uses a file store's folder.
    Reset {
        /// The connector.
        connector: String,
    },
}

/// `offsets export --format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ExportFormat {
    /// Kafka Connect / Debezium.
    Debezium,
    /// Sluice's position.
    Sluice,
}

/// `sluice --version`: the version, the commit, and librdkafka's version and built-in
/// features (whether TLS and SASL are available to `[sink.properties]`).
fn version_text() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
        let features = rdkafka::ClientConfig::new()
            .create_native_config()
            .and_then(|c| c.get("builtin.features"))
            .unwrap_or_else(|_| "unknown".into());
        format!(
            "{} (commit {})\nlibrdkafka {librdkafka} ({features})",
            env!("CARGO_PKG_VERSION"),
            env!("SLUICE_COMMIT")
        )
    })
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // rustls is built with two crypto providers (a dependency asks for aws-lc-rs); ring is
    // the one Sluice uses, for every TLS client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = cli.config;
    runtime.block_on(async move {
        match cli.command {
            Command::Run {
                debezium_server: Some(file),
                state_dir,
            } => match debezium_server_files(&file, state_dir) {
                Ok(config) => run(&config).await,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            },
            Command::Run { .. } => run(&config).await,
            Command::Validate => validate(&config).await,
            Command::Offsets { command } => offsets_command(command, &config).await,
            Command::Slots { command } => slots_command(command, &config).await,
            Command::Convert { file } => convert(&file),
            Command::Status { watch, url, token } => {
                status::status(&config, url, token, watch).await
            }
            Command::Probe {
                url,
                cacert,
                servername,
                token,
            } => {
                let options = crate::api::probe::ProbeOptions {
                    cacert,
                    servername,
                    token,
                };
                probe(&url, &options).await
            }
        }
    })
}

async fn probe(url: &str, options: &crate::api::probe::ProbeOptions) -> ExitCode {
    match crate::api::probe::get(url, options).await {
        Ok((status, body)) if (200..300).contains(&status) => {
            println!("{status} {body}");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("{status} {body}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(daemon: &DaemonConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&daemon.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match daemon.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
}

async fn run(config_path: &Path) -> ExitCode {
    let mut file_errors = Vec::new();
    let loaded = match runtime::load(config_path) {
        Ok(l) => l,
        Err(e) => match config::load_lenient(config_path) {
            // With the admin API, invalid connector files are listed there (as at run time)
            // and the valid connectors run.
            Ok((l, errors)) if l.daemon.api.is_some() => {
                file_errors = errors;
                l
            }
            _ => {
                eprintln!("error: invalid configuration:\n{e}");
                return ExitCode::from(2);
            }
        },
    };
    init_logging(&loaded.daemon);
    for e in &file_errors {
        tracing::error!(error = %e, "connector file left out: fix it (the admin API lists it; the daemon picks it up when it changes)");
    }
    // Held until the process ends: one daemon per offsets folder.
    let _lock = if loaded.daemon.offsets.in_kafka() {
        None
    } else {
        match crate::offsets::FolderLock::acquire(&loaded.daemon.offsets.path) {
            Ok(lock) => Some(lock),
            Err(e) => {
                tracing::error!(error = %e, "sluice cannot start");
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let offsets = match open_store(&loaded.daemon).await {
        Ok(store) => store,
        Err(e) => {
            tracing::error!(error = %e, "sluice cannot start: the offset store cannot be opened");
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested: finishing in-flight records and committing offsets");
        let _ = shutdown_tx.send(true);
        // Keep the sender: receivers treat a closed channel as a shutdown too, but a live
        // one keeps `changed()` quiet after the first notification.
        std::future::pending::<()>().await;
    });
    let api = loaded.daemon.api.clone();
    let wiring = Arc::new(DaemonWiring::new(&loaded.daemon, offsets));
    let rt = if loaded.daemon.cluster.is_some() {
        match crate::cluster::join(&loaded.daemon).await {
            Ok((membership, revocations)) => runtime::Runtime::in_cluster(
                loaded.daemon,
                wiring,
                shutdown_rx,
                membership,
                revocations,
            ),
            Err(e) => {
                tracing::error!(error = %e, "sluice cannot start: cannot join the cluster");
                eprintln!("error: cannot join the cluster: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        runtime::Runtime::new(loaded.daemon, wiring, shutdown_rx)
    };
    if let Some(api) = api {
        if let Err(e) = crate::api::spawn(rt.clone(), api).await {
            tracing::error!(error = %e, "sluice exiting: the admin API cannot start");
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    progress::start(rt.clone());
    match runtime::run(rt, loaded.connectors).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "sluice exiting with an error");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The daemon's wiring: the configured sink, the file offset store, the database sources.
struct DaemonWiring {
    sink: SinkConfig,
    offsets: Arc<dyn OffsetStore>,
    /// Exactly-once: what each connector's transactional id starts with.
    transactional_prefix: Option<String>,
}

impl DaemonWiring {
    fn new(daemon: &DaemonConfig, offsets: Arc<dyn OffsetStore>) -> Self {
        DaemonWiring {
            sink: daemon.sink.clone(),
            offsets,
            transactional_prefix: daemon.transactional_prefix(),
        }
    }
}

/// The offset store the daemon configuration names.
async fn open_store(daemon: &DaemonConfig) -> Result<Arc<dyn OffsetStore>, OffsetError> {
    if !daemon.offsets.in_kafka() {
        return Ok(Arc::new(FileOffsetStore::new(&daemon.offsets.path)));
    }
    let settings = KafkaStoreSettings {
        servers: daemon.sink.bootstrap_servers.clone().unwrap_or_default(),
        properties: daemon.sink.properties.clone(),
        topic: daemon.offsets.topic.clone(),
        partitions: daemon.offsets.topic_partitions,
        replication: daemon.offsets.topic_replication_factor,
        verify_transactions: daemon.offsets.verify_transactions,
    };
    Ok(Arc::new(KafkaOffsetStore::open(settings).await?))
}

impl runtime::Wiring for DaemonWiring {
    fn offsets(&self) -> Arc<dyn OffsetStore> {
        self.offsets.clone()
    }

    fn sink(&self, connector: &ConnectorConfig) -> Result<Box<dyn Sink>, SinkError> {
        let transactional_id = self
            .transactional_prefix
            .as_ref()
            .map(|p| format!("{p}-{}", connector.name));
        crate::sink::from_config(
            &self.sink,
            &format!("sluice-{}", connector.name),
            transactional_id,
        )
    }

    fn source(
        &self,
        connector: &Arc<ConnectorConfig>,
        offsets: Arc<dyn OffsetStore>,
    ) -> Arc<dyn ChangeSource> {
        offsets.describe(&connector.name, &connector.topic_prefix);
        Arc::new(Source::new(connector.clone(), offsets))
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn validate(config_path: &Path) -> ExitCode {
    let loaded = match config::load(config_path) {
        Ok(l) => l,
        Err(errors) => {
            for e in errors {
                println!("{e}");
            }
            return ExitCode::FAILURE;
        }
    };
    let mut problems = 0;
    let store = match open_store(&loaded.daemon).await {
        Ok(s) => s,
        Err(e) => {
            println!("{}: offsets: {e}", config_path.display());
            return ExitCode::FAILURE;
        }
    };
    for c in &loaded.connectors {
        store.describe(&c.name, &c.topic_prefix);
        // The stored position must be readable (a corrupt file stops the connector).
        if let Err(e) = store.load(&c.name) {
            println!("{}: connector \"{}\": {e}", c.file.display(), c.name);
            problems += 1;
        }
        let found = match c.source {
            config::SourceKind::Postgres => postgres::preflight(c).await,
            config::SourceKind::Mysql => mysql::preflight(c).await,
        };
        for p in found {
            println!("{}: connector \"{}\": {p}", c.file.display(), c.name);
            problems += 1;
        }
        if c.format.uses_avro() {
            let f = &c.format;
            let checked = match RegistryClient::from_format(f) {
                Ok(client) => client.check().await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            if let Err(e) = checked {
                println!(
                    "{}: connector \"{}\": format.registry_url: {e}; start the registry or fix the URL",
                    c.file.display(),
                    c.name
                );
                problems += 1;
            }
        }
    }
    // Pointed out, not counted as problems.
    for w in postgres::slots::warnings(&loaded.connectors).await {
        println!("warning: {w}");
    }
    if let Err(e) = crate::sink::check_reachable(&loaded.daemon.sink).await {
        println!("{}: sink: {e}", config_path.display());
        problems += 1;
    }
    if problems == 0 {
        println!(
            "ok: {} connector(s) ready ({})",
            loaded.connectors.len(),
            loaded
                .connectors
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn slots_command(command: SlotsCommand, config: &Path) -> ExitCode {
    let connectors = match config::load(config) {
        Ok(l) => l.connectors,
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return ExitCode::from(2);
        }
    };
    match command {
        SlotsCommand::List => {
            let (rows, errors) = postgres::slots::list(&connectors).await;
            println!("slot\tdatabase\towner\tactive\tlag_bytes\twal_status");
            for r in &rows {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    r.name,
                    r.database,
                    r.owner.as_deref().unwrap_or("not-sluice's"),
                    r.active,
                    r.lag_bytes.map_or("-".into(), |l| l.to_string()),
                    r.wal_status.as_deref().unwrap_or("-")
                );
            }
            for e in &errors {
                eprintln!("error: {e}");
            }
            if errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        SlotsCommand::Drop { name, force, .. } => {
            match postgres::slots::drop(&connectors, &name, force).await {
                Ok(done) => {
                    println!("{done}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_of(args: &[&str]) -> PathBuf {
        let cli = Cli::try_parse_from(args).expect("parses");
        match cli.command {
            Command::Validate | Command::Run { .. } | Command::Offsets { .. } => cli.config,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn the_config_file_comes_from_c_config_or_sluice_config() {
        assert_eq!(
            config_of(&["sluice", "validate", "-c", "a.toml"]),
            PathBuf::from("a.toml")
        );
        assert_eq!(
            config_of(&["sluice", "run", "--config", "b.toml"]),
            PathBuf::from("b.toml")
        );
        assert_eq!(
            config_of(&["sluice", "run"]),
            PathBuf::from("config/sluice.toml")
        );
        // Before the subcommand too (users type it either way), and after a nested one.
        assert_eq!(
            config_of(&["sluice", "-c", "d.toml", "validate"]),
            PathBuf::from("d.toml")
        );
        assert_eq!(
            config_of(&["sluice", "--config", "e.toml", "run"]),
            PathBuf::from("e.toml")
        );
        assert_eq!(
            config_of(&["sluice", "offsets", "show", "-c", "f.toml"]),
            PathBuf::from("f.toml")
        );
        std::env::set_var("SLUICE_CONFIG", "/etc/sluice/sluice.toml");
        let from_env = config_of(&["sluice", "run"]);
        let flag_wins = config_of(&["sluice", "run", "-c", "c.toml"]);
        std::env::remove_var("SLUICE_CONFIG");
        assert_eq!(from_env, PathBuf::from("/etc/sluice/sluice.toml"));
        assert_eq!(flag_wins, PathBuf::from("c.toml"));
    }
}
