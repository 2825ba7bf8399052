//! Starts, supervises and stops pipelines.
//!
//! Each connector runs in its own task. A transient failure (a database or broker that went
//! away) restarts the pipeline from the last committed position after a growing backoff; a
//! definite failure (a setting that must be fixed) stops that connector with its message.

mod pipeline;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;

use crate::config::{self, ConnectorConfig, DaemonConfig};
use crate::source::SourceExit;

pub use pipeline::PipelineError;

/// First retry delay after a transient failure.
const BACKOFF_START: Duration = Duration::from_millis(500);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Why the daemon exited unsuccessfully.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Configuration problems (each already names its file and key).
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Config(Vec<config::ConfigError>),
    /// Connectors that stopped on a definite error.
    #[error("{} connector(s) stopped with an error: {}", .0.len(), .0.join(", "))]
    Connectors(Vec<String>),
}

/// Runs every connector of the configuration until `shutdown` turns true.
pub async fn run(loaded: config::Loaded, shutdown: watch::Receiver<bool>) -> Result<(), RunError> {
    let daemon = Arc::new(loaded.daemon);
    if loaded.connectors.is_empty() {
        tracing::warn!(dir = %daemon.connectors_dir.display(), "no connector files found; add a *.toml file there");
    }
    let mut tasks = Vec::new();
    for c in loaded.connectors {
        let c = Arc::new(c);
        let span = tracing::info_span!("connector", connector = %c.name);
        let handle =
            tokio::spawn(supervise(daemon.clone(), c.clone(), shutdown.clone()).instrument(span));
        tasks.push((c.name.clone(), handle));
    }
    let mut failed = Vec::new();
    for (name, handle) in tasks {
        match handle.await {
            Ok(true) => {}
            Ok(false) | Err(_) => failed.push(name),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(RunError::Connectors(failed))
    }
}

/// Runs one connector with restarts; `true` when it ended cleanly.
async fn supervise(
    daemon: Arc<DaemonConfig>,
    connector: Arc<ConnectorConfig>,
    mut shutdown: watch::Receiver<bool>,
) -> bool {
    let mut backoff = BACKOFF_START;
    tracing::info!(file = %connector.file.display(), "connector starting");
    loop {
        let started = std::time::Instant::now();
        match pipeline::run_once(&daemon, &connector, &shutdown).await {
            Ok(SourceExit::Shutdown) => {
                tracing::info!("connector stopped");
                return true;
            }
            Ok(SourceExit::Finished) => {
                tracing::info!("connector finished (snapshot.mode = initial_only)");
                return true;
            }
            Err(e) if e.is_transient() => {
                if *shutdown.borrow() {
                    return true;
                }
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = BACKOFF_START;
                }
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "connector failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return true,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(e) => {
                tracing::error!(error = %e, file = %connector.file.display(), "connector stopped: fix the problem and restart Sluice");
                return false;
            }
        }
    }
}

/// Loads configuration, reporting every problem.
pub fn load(config_path: &Path) -> Result<config::Loaded, RunError> {
    config::load(config_path).map_err(RunError::Config)
}
