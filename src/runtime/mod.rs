//! Starts, supervises and stops pipelines; follows the connectors folder.
//!
//! Each connector runs in its own task. A transient failure (a database or broker that went
//! away) restarts the pipeline from the last committed position after a growing backoff; a
//! definite failure (a setting that must be fixed) stops that connector with its message and
//! shows it in the status. Files added, changed or removed in the connectors folder (checked
//! every second, and on SIGHUP) start, restart or stop their connector; a file that fails
//! validation is reported and changes nothing.

mod pipeline;
mod status;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::config::{self, ConnectorConfig, DaemonConfig};
use crate::metrics::Metrics;
use crate::source::SourceExit;

pub use pipeline::PipelineError;
pub use status::{ConnectorState, ConnectorStatus, Observer, SharedStatus, SnapshotProgress};

/// First retry delay after a transient failure.
const BACKOFF_START: Duration = Duration::from_millis(500);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often the connectors folder is checked for changes.
const RESCAN_EVERY: Duration = Duration::from_secs(1);

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

/// An operator's command to a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Restart,
    Stop,
}

struct Handle {
    config: Arc<ConnectorConfig>,
    /// The file's text when it was started (to notice changes).
    text: String,
    observer: Observer,
    paused: watch::Sender<bool>,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<bool>,
}

/// The running daemon: its connectors, their status and the metrics.
pub struct Runtime {
    daemon: Arc<DaemonConfig>,
    metrics: Arc<Metrics>,
    connectors: Mutex<BTreeMap<String, Handle>>,
    file_errors: Mutex<BTreeMap<PathBuf, String>>,
    shutdown: watch::Receiver<bool>,
    /// Signalled when a connector task ends (so the daemon notices at once).
    ended: Arc<tokio::sync::Notify>,
}

impl Runtime {
    /// Status of every connector.
    pub fn statuses(&self) -> Vec<ConnectorStatus> {
        let map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        map.values().map(|h| h.observer.snapshot().view()).collect()
    }

    /// Status of one connector.
    pub fn status(&self, name: &str) -> Option<ConnectorStatus> {
        let map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name).map(|h| h.observer.snapshot().view())
    }

    /// Connector files that failed validation, with why.
    pub fn file_errors(&self) -> Vec<(String, String)> {
        let errs = self.file_errors.lock().unwrap_or_else(|e| e.into_inner());
        errs.iter()
            .map(|(p, e)| (p.display().to_string(), e.clone()))
            .collect()
    }

    /// Every connector snapshotting or streaming (or done), none failed.
    pub fn ready(&self) -> bool {
        self.statuses().iter().all(|s| {
            matches!(
                s.state,
                ConnectorState::Snapshotting
                    | ConnectorState::Streaming
                    | ConnectorState::Paused
                    | ConnectorState::Finished
            )
        })
    }

    /// Pauses (`true`) or resumes a connector; `false` when there is no such connector.
    pub fn set_paused(&self, name: &str, paused: bool) -> bool {
        let map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(name) {
            Some(h) => {
                let _ = h.paused.send(paused);
                h.observer.update(|s| s.paused = paused);
                true
            }
            None => false,
        }
    }

    /// Restarts a connector from its committed position; `false` when there is none.
    pub fn restart(&self, name: &str) -> bool {
        let map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(name) {
            Some(h) => h.commands.try_send(Command::Restart).is_ok(),
            None => false,
        }
    }

    /// The Prometheus text exposition.
    pub fn metrics_text(&self) -> String {
        self.metrics.render()
    }

    fn start(&self, config: ConnectorConfig, text: String) {
        let config = Arc::new(config);
        let status = Arc::new(Mutex::new(ConnectorStatus::new(
            &config.name,
            &config.file.display().to_string(),
        )));
        let observer = Observer {
            connector: Arc::from(config.name.as_str()),
            status,
            metrics: self.metrics.clone(),
        };
        let (paused_tx, paused_rx) = watch::channel(false);
        let (cmd_tx, cmd_rx) = mpsc::channel(4);
        let span = tracing::info_span!("connector", connector = %config.name);
        let supervised = supervise(
            self.daemon.clone(),
            config.clone(),
            observer.clone(),
            self.shutdown.clone(),
            paused_rx,
            cmd_rx,
            self.daemon.api.is_some(),
        );
        let ended = self.ended.clone();
        let task = tokio::spawn(
            async move {
                let clean = supervised.await;
                ended.notify_one();
                clean
            }
            .instrument(span),
        );
        let mut map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(
            config.name.clone(),
            Handle {
                config,
                text,
                observer,
                paused: paused_tx,
                commands: cmd_tx,
                task,
            },
        );
    }

    async fn stop(&self, name: &str) -> Option<bool> {
        let handle = {
            let mut map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
            map.remove(name)
        }?;
        let _ = handle.commands.send(Command::Stop).await;
        handle.task.await.ok()
    }

    /// Brings the running connectors in line with the folder.
    async fn rescan(&self) {
        let files = match config::connector_files(&self.daemon.connectors_dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(dir = %self.daemon.connectors_dir.display(), error = %e, "cannot read the connectors folder");
                return;
            }
        };
        // Removed files stop their connectors.
        let running: Vec<(String, PathBuf)> = {
            let map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
            map.values()
                .map(|h| (h.config.name.clone(), h.config.file.clone()))
                .collect()
        };
        for (name, file) in &running {
            if !files.contains(file) {
                tracing::info!(connector = %name, file = %file.display(), "connector file removed: stopping the connector");
                self.stop(name).await;
            }
        }
        self.file_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p, _| files.contains(p));
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let current = {
                let map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
                map.values()
                    .find(|h| h.config.file == file)
                    .map(|h| (h.config.name.clone(), h.text == text))
            };
            if matches!(current, Some((_, true))) {
                continue;
            }
            let known_error = self
                .file_errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&file);
            match self.check_file(&file) {
                Err(problem) => {
                    let mut errs = self.file_errors.lock().unwrap_or_else(|e| e.into_inner());
                    if errs.get(&file) != Some(&problem) {
                        tracing::error!(file = %file.display(), error = %problem, "connector file is not valid; running connectors are left as they are");
                        errs.insert(file.clone(), problem);
                    }
                }
                Ok(config) => {
                    if known_error {
                        self.file_errors
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&file);
                    }
                    if let Some((old_name, _)) = current {
                        tracing::info!(connector = %old_name, file = %file.display(), "connector file changed: restarting the connector");
                        self.stop(&old_name).await;
                    } else {
                        tracing::info!(connector = %config.name, file = %file.display(), "new connector file: starting the connector");
                    }
                    self.start(config, text);
                }
            }
        }
    }

    fn check_file(&self, file: &Path) -> Result<ConnectorConfig, String> {
        let config = ConnectorConfig::load(file).map_err(|e| e.to_string())?;
        let map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(other) = map
            .values()
            .find(|h| h.config.name == config.name && h.config.file != file)
        {
            return Err(format!(
                "{}: `name` \"{}\" is already used by {}; every connector needs its own name",
                file.display(),
                config.name,
                other.config.file.display()
            ));
        }
        Ok(config)
    }
}

/// Runs every connector of the configuration, following the connectors folder, until
/// `shutdown` turns true. Without an admin API, the daemon also ends when every connector
/// has ended (finished or failed).
pub async fn run(
    loaded: config::Loaded,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), RunError> {
    let daemon = Arc::new(loaded.daemon);
    let runtime = Arc::new(Runtime {
        daemon: daemon.clone(),
        metrics: Arc::new(Metrics::new()),
        connectors: Mutex::new(BTreeMap::new()),
        file_errors: Mutex::new(BTreeMap::new()),
        shutdown: shutdown.clone(),
        ended: Arc::new(tokio::sync::Notify::new()),
    });
    if loaded.connectors.is_empty() {
        tracing::warn!(dir = %daemon.connectors_dir.display(), "no connector files found; add a *.toml file there");
    }
    for c in loaded.connectors {
        let text = std::fs::read_to_string(&c.file).unwrap_or_default();
        runtime.start(c, text);
    }
    if let Some(api) = &daemon.api {
        crate::api::spawn(runtime.clone(), api.clone()).await;
    }
    let mut hangup = hangup_signal();
    let mut failed: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(RESCAN_EVERY) => runtime.rescan().await,
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: rescanning the connectors folder");
                runtime.rescan().await;
            }
            _ = runtime.ended.notified() => {
                // The task signals just before it completes.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if daemon.api.is_none() {
            let map = runtime.connectors.lock().unwrap_or_else(|e| e.into_inner());
            if !map.is_empty() && map.values().all(|h| h.task.is_finished()) {
                break;
            }
        }
    }
    let names: Vec<String> = runtime.statuses().into_iter().map(|s| s.name).collect();
    for name in names {
        let failed_state = runtime
            .status(&name)
            .is_some_and(|s| s.state == ConnectorState::Failed);
        if runtime.stop(&name).await == Some(false) || failed_state {
            failed.push(name);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(RunError::Connectors(failed))
    }
}

/// SIGHUP as a stream of notifications (never fires where unsupported).
fn hangup_signal() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut s) = signal(SignalKind::hangup()) else {
            return;
        };
        while s.recv().await.is_some() {
            let _ = tx.try_send(());
        }
    });
    #[cfg(not(unix))]
    drop(tx);
    rx
}

/// Runs one connector with restarts; `true` when it ended cleanly. With `wait_on_failure`,
/// a failed connector stays (status `failed`) until restarted or stopped.
async fn supervise(
    daemon: Arc<DaemonConfig>,
    connector: Arc<ConnectorConfig>,
    observer: Observer,
    mut shutdown: watch::Receiver<bool>,
    paused: watch::Receiver<bool>,
    mut commands: mpsc::Receiver<Command>,
    wait_on_failure: bool,
) -> bool {
    let mut backoff = BACKOFF_START;
    tracing::info!(file = %connector.file.display(), "connector starting");
    let stopped = |observer: &Observer| {
        observer.set_state(ConnectorState::Stopped);
        tracing::info!("connector stopped");
        true
    };
    loop {
        if *shutdown.borrow() {
            return stopped(&observer);
        }
        let started = std::time::Instant::now();
        observer.set_state(ConnectorState::Starting);
        let (stop_tx, stop_rx) = watch::channel(false);
        let run = pipeline::run_once(
            &daemon,
            &connector,
            pipeline::RunControl {
                stop: stop_rx,
                paused: paused.clone(),
                observer: observer.clone(),
            },
        );
        tokio::pin!(run);
        let mut command: Option<Command> = None;
        let result = loop {
            tokio::select! {
                r = &mut run => break r,
                _ = shutdown.changed(), if command.is_none() => {
                    command = Some(Command::Stop);
                    let _ = stop_tx.send(true);
                }
                c = commands.recv(), if command.is_none() => {
                    command = Some(c.unwrap_or(Command::Stop));
                    let _ = stop_tx.send(true);
                }
            }
        };
        match command {
            Some(Command::Restart) => {
                tracing::info!("restarting the connector from its committed position");
                continue;
            }
            Some(Command::Stop) => return stopped(&observer),
            None => {}
        }
        match result {
            Ok(SourceExit::Shutdown) => return stopped(&observer),
            Ok(SourceExit::Finished) => {
                observer.set_state(ConnectorState::Finished);
                tracing::info!("connector finished (snapshot.mode = initial_only)");
                return true;
            }
            Err(e) if e.is_transient() => {
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = BACKOFF_START;
                }
                observer
                    .metrics
                    .reconnects
                    .with_label_values(&[&*observer.connector])
                    .inc();
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "connector failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return stopped(&observer),
                    c = commands.recv() => if c != Some(Command::Restart) { return stopped(&observer) },
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(e) => {
                tracing::error!(error = %e, file = %connector.file.display(), "connector stopped: fix the problem and restart Sluice");
                observer.update(|s| {
                    s.state = ConnectorState::Failed;
                    s.error = Some(e.to_string());
                });
                if !wait_on_failure {
                    return false;
                }
                tokio::select! {
                    _ = shutdown.changed() => return false,
                    c = commands.recv() => if c != Some(Command::Restart) { return false },
                }
                backoff = BACKOFF_START;
            }
        }
    }
}

/// Loads configuration, reporting every problem.
pub fn load(config_path: &Path) -> Result<config::Loaded, RunError> {
    config::load(config_path).map_err(RunError::Config)
}
