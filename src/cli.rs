//! The command line: `run`, `validate`, `offsets show`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::sync::watch;

use std::sync::Arc;

use crate::config::{self, ConnectorConfig, DaemonConfig, LogFormat, SinkConfig};
use crate::encode::RegistryClient;
use crate::offsets::{FileOffsetStore, OffsetStore};
use crate::runtime;
use crate::sink::{Sink, SinkError};
use crate::source::{mysql, postgres};
use crate::source::{ChangeSource, Source};

/// Change data capture from PostgreSQL to Kafka, in Debezium's envelope.
#[derive(Parser, Debug)]
#[command(name = "sluice", version = version_text(), about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run every connector of the connectors folder until SIGINT or SIGTERM.
    Run {
        /// The daemon configuration file.
        #[arg(long, default_value = "config/sluice.toml")]
        config: PathBuf,
    },
    /// Check the configuration, the databases and the broker; print one line per problem.
    Validate {
        /// The daemon configuration file.
        #[arg(long, default_value = "config/sluice.toml")]
        config: PathBuf,
    },
    /// Inspect stored positions.
    Offsets {
        #[command(subcommand)]
        command: OffsetsCommand,
    },
}

#[derive(Subcommand, Debug)]
enum OffsetsCommand {
    /// Print the stored position of every connector, or of one.
    Show {
        /// The daemon configuration file.
        #[arg(long, default_value = "config/sluice.toml")]
        config: PathBuf,
        /// Only this connector.
        connector: Option<String>,
    },
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
    runtime.block_on(async move {
        match cli.command {
            Command::Run { config } => run(&config).await,
            Command::Validate { config } => validate(&config).await,
            Command::Offsets {
                command: OffsetsCommand::Show { config, connector },
            } => show_offsets(&config, connector.as_deref()),
        }
    })
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
    let loaded = match runtime::load(config_path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: invalid configuration:\n{e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&loaded.daemon);
    // Held until the process ends: one daemon per offsets folder.
    let _lock = match crate::offsets::FolderLock::acquire(&loaded.daemon.offsets.path) {
        Ok(lock) => lock,
        Err(e) => {
            tracing::error!(error = %e, "sluice cannot start");
            eprintln!("error: {e}");
            return ExitCode::from(2);
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
    let wiring = Arc::new(DaemonWiring::new(&loaded.daemon));
    let rt = runtime::Runtime::new(loaded.daemon, wiring, shutdown_rx);
    if let Some(api) = api {
        if let Err(e) = crate::api::spawn(rt.clone(), api).await {
            tracing::error!(error = %e, "sluice exiting: the admin API cannot start");
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
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
}

impl DaemonWiring {
    fn new(daemon: &DaemonConfig) -> Self {
        DaemonWiring {
            sink: daemon.sink.clone(),
            offsets: Arc::new(FileOffsetStore::new(&daemon.offsets.path)),
        }
    }
}

impl runtime::Wiring for DaemonWiring {
    fn offsets(&self) -> Arc<dyn OffsetStore> {
        self.offsets.clone()
    }

    fn sink(&self, connector: &ConnectorConfig) -> Result<Box<dyn Sink>, SinkError> {
        crate::sink::from_config(&self.sink, &format!("sluice-{}", connector.name))
    }

    fn source(
        &self,
        connector: &Arc<ConnectorConfig>,
        offsets: Arc<dyn OffsetStore>,
    ) -> Arc<dyn ChangeSource> {
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
    let store = FileOffsetStore::new(&loaded.daemon.offsets.path);
    for c in &loaded.connectors {
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

fn show_offsets(config_path: &Path, only: Option<&str>) -> ExitCode {
    let daemon = match DaemonConfig::load(config_path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let store = FileOffsetStore::new(&daemon.offsets.path);
    let names = match store.names() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // One unreadable file is reported and the others are still shown.
    let mut unreadable = false;
    let mut shown = Vec::new();
    for name in names.into_iter().filter(|n| only.is_none_or(|o| o == n)) {
        match store.load(&name) {
            Ok(Some(pos)) => shown.push((name, pos)),
            Ok(None) => {}
            Err(e) => {
                eprintln!("error: {e}");
                unreadable = true;
            }
        }
    }
    if shown.is_empty() && !unreadable {
        match only {
            Some(name) => {
                eprintln!("no stored position for connector \"{name}\"");
                return ExitCode::FAILURE;
            }
            None => println!("no stored positions in {}", daemon.offsets.path.display()),
        }
    }
    for (name, pos) in shown {
        println!("{name}\t{pos}");
    }
    if unreadable {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
