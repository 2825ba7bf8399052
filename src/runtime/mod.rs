//! Starts, supervises and stops pipelines; follows the connectors folder.
//!
//! Each connector runs in its own task. A transient failure (a database or broker that went
//! away) restarts the pipeline from the last committed position after a growing backoff; a
//! definite failure (a setting that must be fixed) stops that connector with its message and
//! shows it in the status. Files added, changed or removed in the connectors folder (checked
//! every second, and on SIGHUP) start, restart or stop their connector; a file that fails
//! validation is reported and changes nothing.

mod ack;
mod cluster;
mod pipeline;
mod supervise;
mod transaction;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::cluster::{Membership, Revocation};
use crate::config::{self, ConnectorConfig, DaemonConfig};
use crate::failure;
use crate::metrics::Metrics;
use crate::offsets::OffsetStore;
use crate::sink::{Sink, SinkError};
use crate::source::ChangeSource;
use crate::status::{ConnectorState, ConnectorStatus, Observer};

pub use ack::{AckTracker, CommitKind, Ticket};
use cluster::take_over;
pub use pipeline::{PipelineError, PipelineParts, PipelineSettings};
use supervise::supervise;
pub use transaction::TransactionLimits;

/// How the runtime builds the parts of each pipeline run. The composition root (`cli`)
/// wires the configured sink, offset store and database sources; tests wire fakes.
pub trait Wiring: Send + Sync {
    /// The offset store shared by every connector.
    fn offsets(&self) -> Arc<dyn OffsetStore>;
    /// A sink for one run of `connector` (a new one per run: a failed producer is dropped).
    fn sink(&self, connector: &ConnectorConfig) -> Result<Box<dyn Sink>, SinkError>;
    /// The source for one run of `connector`.
    fn source(
        &self,
        connector: &Arc<ConnectorConfig>,
        offsets: Arc<dyn OffsetStore>,
    ) -> Arc<dyn ChangeSource>;
}

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
    /// A defect in the daemon's own loop (the connectors were stopped and committed first).
    #[error("internal error in the daemon's loop (a defect; please report it): {0}")]
    Panicked(String),
}

/// An operator's command to a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    /// Run again from the committed position (also revives a failed or stopped connector).
    Restart,
    /// End the connector's task (file removed, daemon shutdown).
    Stop,
    /// Kafka Connect's stop: no pipeline runs, the connector stays listed as `stopped` and
    /// its offsets may be altered, until resumed or restarted.
    Halt,
    /// Run a halted connector again.
    Start,
}

struct Handle {
    config: Arc<ConnectorConfig>,
    /// The file's text when it was started (to notice changes).
    text: String,
    observer: Observer,
    paused: watch::Sender<bool>,
    commands: mpsc::Sender<Command>,
    /// The supervising task (taken when the daemon stops it at shutdown).
    task: Option<JoinHandle<bool>>,
    /// Ends a cluster take-over still waiting (a stop or revocation must not wait out
    /// `handoff_delay_ms`).
    gate: watch::Sender<bool>,
}

/// The running daemon: its connectors, their status and the metrics.
pub struct Runtime {
    daemon: Arc<DaemonConfig>,
    wiring: Arc<dyn Wiring>,
    metrics: Arc<Metrics>,
    connectors: Mutex<BTreeMap<String, Handle>>,
    file_errors: Mutex<BTreeMap<PathBuf, String>>,
    shutdown: watch::Receiver<bool>,
    /// Signalled when a connector task ends (so the daemon notices at once).
    ended: Arc<tokio::sync::Notify>,
    /// Cluster mode: this daemon's place in the group.
    membership: Option<Arc<Membership>>,
    /// Cluster mode: partitions taken away (taken by `run`).
    revocations: Mutex<Option<mpsc::UnboundedReceiver<Revocation>>>,
    /// Cluster mode: connectors of the folder that another daemon runs (name → file).
    unassigned: Mutex<BTreeMap<String, PathBuf>>,
    /// Tests: the next rescan panics (a defect in the daemon's loop).
    #[cfg(test)]
    defect_in_rescan: std::sync::atomic::AtomicBool,
}

impl Runtime {
    /// Status of every connector.
    pub fn statuses(&self) -> Vec<ConnectorStatus> {
        let mut out: Vec<ConnectorStatus> = {
            let map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
            map.values().map(|h| self.owned_view(h)).collect()
        };
        let unassigned = self.unassigned.lock().unwrap_or_else(|e| e.into_inner());
        for (name, file) in unassigned.iter() {
            if !out.iter().any(|s| &s.name == name) {
                out.push(self.unassigned_view(name, file));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Status of one connector.
    pub fn status(&self, name: &str) -> Option<ConnectorStatus> {
        {
            let map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(h) = map.get(name) {
                return Some(self.owned_view(h));
            }
        }
        let unassigned = self.unassigned.lock().unwrap_or_else(|e| e.into_inner());
        unassigned
            .get(name)
            .map(|file| self.unassigned_view(name, file))
    }

    fn owned_view(&self, h: &Handle) -> ConnectorStatus {
        let mut v = h.observer.snapshot().view();
        v.owner = self.membership.as_ref().map(|m| m.me().to_string());
        v
    }

    fn unassigned_view(&self, name: &str, file: &Path) -> ConnectorStatus {
        let mut v = ConnectorStatus::new(name, &file.display().to_string());
        v.state = ConnectorState::Unassigned;
        v.owner = self.membership.as_ref().and_then(|m| m.owner_of(name));
        v
    }

    /// Connector files that failed validation, with why.
    pub fn file_errors(&self) -> Vec<(String, String)> {
        let errs = self.file_errors.lock().unwrap_or_else(|e| e.into_inner());
        errs.iter()
            .map(|(p, e)| (p.display().to_string(), e.clone()))
            .collect()
    }

    /// Every connector snapshotting or streaming (or done, or stopped by an operator), none
    /// failed.
    pub fn ready(&self) -> bool {
        self.ready_within(u64::MAX)
    }

    /// Ready, and no connector has been failing and retrying without progress for longer
    /// than `max_retry_s` seconds.
    pub fn ready_within(&self, max_retry_s: u64) -> bool {
        let now_ms = crate::source::now_us() / 1000;
        self.statuses().iter().all(|s| {
            s.state.is_ready() && s.retrying_for_s(now_ms).is_none_or(|r| r <= max_retry_s)
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
        self.command(name, Command::Restart)
    }

    /// Kafka Connect's stop: the connector's pipeline ends and it stays `stopped` (its
    /// offsets may then be altered) until resumed or restarted; `false` when there is none.
    pub fn halt(&self, name: &str) -> bool {
        self.command(name, Command::Halt)
    }

    /// Resumes a paused connector, and starts a stopped one; `false` when there is none.
    pub fn resume(&self, name: &str) -> bool {
        self.set_paused(name, false) && self.command(name, Command::Start)
    }

    /// Hands a signal to a connector's source; `None` when this daemon does not run such a
    /// connector, `Some(None)` when its inbox is full, else what resolves once the source
    /// recorded it (dropped if the connector stops first).
    pub fn signal(
        &self,
        name: &str,
        signal: crate::signal::Signal,
    ) -> Option<Option<tokio::sync::oneshot::Receiver<()>>> {
        let map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name).map(|h| h.observer.signals.push_acked(signal))
    }

    fn command(&self, name: &str, command: Command) -> bool {
        let map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(name) {
            Some(h) => h.commands.try_send(command).is_ok(),
            None => false,
        }
    }

    /// The offset store and the connector's topic prefix (Connect's offset partition
    /// `server`), for a connector this daemon runs.
    pub fn offsets_of(&self, name: &str) -> Option<(Arc<dyn OffsetStore>, String)> {
        let map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        let h = map.get(name)?;
        Some((self.wiring.offsets(), h.config.topic_prefix.clone()))
    }

    /// A connector's configuration.
    pub fn config_of(&self, name: &str) -> Option<Arc<ConnectorConfig>> {
        let map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name).map(|h| h.config.clone())
    }

    /// The connectors folder (where the API writes connector files).
    pub fn connectors_dir(&self) -> &Path {
        &self.daemon.connectors_dir
    }

    /// The file of a connector known to this daemon (running, unassigned or in error).
    pub fn file_of(&self, name: &str) -> Option<PathBuf> {
        self.status(name).map(|s| PathBuf::from(s.file))
    }

    /// The daemon's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The Prometheus text exposition.
    pub fn metrics_text(&self) -> String {
        let now_ms = crate::source::now_us() / 1000;
        for st in self.statuses() {
            let state = serde_json::to_value(st.state).unwrap_or_default();
            self.metrics
                .set_connector_view(&crate::metrics::ConnectorView {
                    connector: &st.name,
                    state: state.as_str().unwrap_or("starting"),
                    now_ms,
                    last_event_at_ms: st.last_event_at_ms,
                    acked_source_ms: st.acked_source_ms,
                    read_source_ms: None,
                    retrying_s: st.retrying_for_s(now_ms),
                    snapshot_kind: st.snapshot.as_ref().map(|s| s.kind),
                    incremental_chunks: st.snapshot.as_ref().and_then(|s| s.chunks),
                });
        }
        self.metrics.render()
    }

    /// Starts a connector's task; `halted`: it waits, stopped, to be resumed.
    fn start(&self, config: ConnectorConfig, text: String, halted: bool) {
        self.metrics.init_connector(&config.name);
        let config = Arc::new(config);
        let status = Arc::new(Mutex::new(ConnectorStatus::new(
            &config.name,
            &config.file.display().to_string(),
        )));
        let observer = Observer {
            connector: Arc::from(config.name.as_str()),
            status,
            metrics: self.metrics.clone(),
            signals: Default::default(),
        };
        let (paused_tx, paused_rx) = watch::channel(false);
        let (cmd_tx, cmd_rx) = mpsc::channel(4);
        let span = tracing::info_span!("connector", connector = %config.name);
        let supervised = supervise(
            self.daemon.clone(),
            self.wiring.clone(),
            config.clone(),
            observer.clone(),
            self.shutdown.clone(),
            paused_rx,
            cmd_rx,
            self.daemon.api.is_some(),
            halted,
        );
        let ended = self.ended.clone();
        let panic_observer = observer.clone();
        let membership = self.membership.clone();
        let name = config.name.clone();
        let mut gate_shutdown = self.shutdown.clone();
        let (gate_tx, mut gate_rx) = watch::channel(false);
        let supervised = async move {
            if let Some(m) = &membership {
                if !take_over(m, &name, &mut gate_shutdown, &mut gate_rx).await {
                    return true;
                }
            }
            let clean = supervised.await;
            if let Some(m) = membership {
                // Stopped by this daemon (not lost): the next owner need not wait.
                let n = name.clone();
                let marked = tokio::task::spawn_blocking(move || m.mark(&n, false)).await;
                if let Ok(Err(e)) | Err(e) = marked.map_err(|e| e.to_string()) {
                    tracing::warn!(error = %e, "cluster: cannot record the connector as released; its next owner will wait handoff_delay_ms");
                }
            }
            clean
        };
        let task = tokio::spawn(
            async move {
                // A panic (a defect) fails the connector visibly: its status says so, /ready
                // turns 503 and the daemon exits non-zero; it never goes on looking alive.
                let clean = match std::panic::AssertUnwindSafe(supervised).catch_unwind().await {
                    Ok(clean) => clean,
                    Err(payload) => {
                        let message = failure::panic_message(payload);
                        tracing::error!(panic = %message, "connector task panicked; it is stopped");
                        panic_observer.update(|s| {
                            s.state = ConnectorState::Failed;
                            s.error = Some(format!(
                                "the connector task panicked: {message}; restart Sluice to run it again, and please report this with the log"
                            ));
                        });
                        false
                    }
                };
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
                gate: gate_tx,
                task: Some(task),
            },
        );
    }

    async fn stop(&self, name: &str) -> Option<bool> {
        let handle = {
            let mut map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
            map.remove(name)
        }?;
        let _ = handle.gate.send(true);
        let _ = handle.commands.send(Command::Stop).await;
        handle.task?.await.ok()
    }

    /// Stops every connector at daemon shutdown, keeping their final status; returns the
    /// names of those that ended on an error.
    async fn stop_all(&self) -> Vec<String> {
        let tasks: Vec<(String, mpsc::Sender<Command>, Option<JoinHandle<bool>>)> = {
            let mut map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
            map.iter_mut()
                .map(|(name, h)| {
                    let _ = h.gate.send(true);
                    (name.clone(), h.commands.clone(), h.task.take())
                })
                .collect()
        };
        let mut failed = Vec::new();
        for (name, commands, task) in tasks {
            let _ = commands.send(Command::Stop).await;
            let clean = match task {
                // Aborted (its assignment lost while stopping): not an error of its own.
                Some(t) => t.await.unwrap_or_else(|e| e.is_cancelled()),
                None => true,
            };
            let failed_state = self
                .status(&name)
                .is_some_and(|s| s.state == ConnectorState::Failed);
            if !clean || failed_state {
                failed.push(name);
            }
        }
        failed
    }

    /// Brings the running connectors in line with the folder (and, in cluster mode, with
    /// the partitions this daemon owns).
    async fn rescan(&self) {
        #[cfg(test)]
        if self
            .defect_in_rescan
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            panic!("a defect in the daemon's loop (test)");
        }
        let files = match config::connector_files(&self.daemon.connectors_dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(dir = %self.daemon.connectors_dir.display(), error = %e, "cannot read the connectors folder");
                return;
            }
        };
        if self.membership.is_some() {
            // Connectors of partitions taken away are stopped by `revoke` alone, which knows
            // whether to drain and commit (an orderly revocation) or to stop at once and
            // commit nothing (a lost assignment): the member forgets the partitions just
            // before it hands the revocation over, and a rescan in between must not stop
            // them the orderly way.
            self.unassigned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, file| files.contains(file));
        }
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
                    if let Some(m) = &self.membership {
                        let mut unassigned =
                            self.unassigned.lock().unwrap_or_else(|e| e.into_inner());
                        unassigned.retain(|_, f| f != &file);
                        if !m.owns(&config.name) {
                            if current.is_none() {
                                unassigned.insert(config.name.clone(), file.clone());
                                continue;
                            }
                        } else {
                            unassigned.remove(&config.name);
                        }
                    }
                    // A connector stopped by an operator stays stopped with its new file.
                    let mut halted = false;
                    if let Some((old_name, _)) = current {
                        halted = self
                            .status(&old_name)
                            .is_some_and(|s| s.state == ConnectorState::Stopped);
                        tracing::info!(connector = %old_name, file = %file.display(), "connector file changed: restarting the connector");
                        self.stop(&old_name).await;
                    } else {
                        tracing::info!(connector = %config.name, file = %file.display(), "new connector file: starting the connector");
                    }
                    self.start(config, text, halted);
                }
            }
        }
    }

    fn check_file(&self, file: &Path) -> Result<ConnectorConfig, String> {
        // Whatever goes wrong reading one file stays that file's problem (a panic included):
        // the daemon and the other connectors go on.
        let config = std::panic::catch_unwind(|| ConnectorConfig::load(file))
            .map_err(|_| {
                format!(
                    "{}: Sluice failed reading this file (an internal error; please report it)",
                    file.display()
                )
            })?
            .map_err(|e| e.to_string())?;
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
        // The checks a start-up makes across files (slot, server id, publication), against
        // the connectors running now: a file added or changed at run time gets them too.
        let mut all: Vec<ConnectorConfig> = map
            .values()
            .filter(|h| h.config.file != file)
            .map(|h| (*h.config).clone())
            .collect();
        drop(map);
        all.push(config.clone());
        if let Some(problem) = config::check_unique(&all)
            .into_iter()
            .find(|e| e.path() == Some(file))
        {
            return Err(problem.to_string());
        }
        Ok(config)
    }
}

impl Runtime {
    /// A runtime for the daemon's settings, building pipelines through `wiring`, that ends
    /// when `shutdown` turns true.
    pub fn new(
        daemon: DaemonConfig,
        wiring: Arc<dyn Wiring>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        Self::build(daemon, wiring, shutdown, None, None)
    }

    /// A runtime in cluster mode: it runs the connectors of the partitions `membership`
    /// owns, and stops those of revoked partitions.
    pub fn in_cluster(
        daemon: DaemonConfig,
        wiring: Arc<dyn Wiring>,
        shutdown: watch::Receiver<bool>,
        membership: Arc<Membership>,
        revocations: mpsc::UnboundedReceiver<Revocation>,
    ) -> Arc<Self> {
        Self::build(
            daemon,
            wiring,
            shutdown,
            Some(membership),
            Some(revocations),
        )
    }

    fn build(
        daemon: DaemonConfig,
        wiring: Arc<dyn Wiring>,
        shutdown: watch::Receiver<bool>,
        membership: Option<Arc<Membership>>,
        revocations: Option<mpsc::UnboundedReceiver<Revocation>>,
    ) -> Arc<Self> {
        Arc::new(Runtime {
            daemon: Arc::new(daemon),
            wiring,
            metrics: Arc::new(Metrics::new()),
            connectors: Mutex::new(BTreeMap::new()),
            file_errors: Mutex::new(BTreeMap::new()),
            shutdown,
            ended: Arc::new(tokio::sync::Notify::new()),
            membership,
            revocations: Mutex::new(revocations),
            unassigned: Mutex::new(BTreeMap::new()),
            #[cfg(test)]
            defect_in_rescan: Default::default(),
        })
    }
}

/// Runs `connectors`, following the connectors folder, until the runtime's shutdown signal
/// turns true. Without an admin API, the daemon also ends when every connector has ended
/// (finished or failed).
pub async fn run(runtime: Arc<Runtime>, connectors: Vec<ConnectorConfig>) -> Result<(), RunError> {
    let daemon = runtime.daemon.clone();
    let mut shutdown = runtime.shutdown.clone();
    if connectors.is_empty() {
        tracing::warn!(dir = %daemon.connectors_dir.display(), "no connector files found; add a *.toml file there");
    }
    let membership = runtime.membership.clone();
    let mut revocations = runtime
        .revocations
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if membership.is_some() {
        // Connectors start as partitions are assigned.
        runtime.rescan().await;
    } else {
        for c in connectors {
            let text = std::fs::read_to_string(&c.file).unwrap_or_default();
            runtime.start(c, text, false);
        }
    }
    let mut hangup = hangup_signal();
    // A panic in the loop (a defect) must not end the process with the connectors' records
    // in flight and their positions uncommitted: they are stopped the orderly way first.
    let followed = std::panic::AssertUnwindSafe(async {
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                Some(revocation) = async {
                    match revocations.as_mut() {
                        Some(r) => r.recv().await,
                        None => std::future::pending().await,
                    }
                } => runtime.revoke(revocation).await,
                _ = async {
                    match &membership {
                        Some(m) => m.gained().await,
                        None => std::future::pending().await,
                    }
                } => runtime.rescan().await,
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
                if !map.is_empty()
                    && map
                        .values()
                        .all(|h| h.task.as_ref().is_none_or(|t| t.is_finished()))
                {
                    break;
                }
            }
        }
    })
    .catch_unwind()
    .await;
    // While the connectors drain for the shutdown, the group may still take their partitions
    // away as lost (this daemon was cut off): those stop at once, as they would have while
    // running — their late records must not land after the new owner's.
    let aborts: Vec<(String, tokio::task::AbortHandle)> = {
        let map = runtime.connectors.lock().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .filter_map(|(n, h)| Some((n.clone(), h.task.as_ref()?.abort_handle())))
            .collect()
    };
    let stopping = runtime.stop_all();
    tokio::pin!(stopping);
    let failed = loop {
        tokio::select! {
            failed = &mut stopping => break failed,
            Some(revocation) = async {
                match revocations.as_mut() {
                    Some(r) => r.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                if let (true, Some(m)) = (revocation.lost, &membership) {
                    for (name, abort) in &aborts {
                        if revocation.partitions.contains(&m.partition_of(name)) {
                            tracing::warn!(connector = %name, "cluster: assignment lost while stopping: stopping the connector at once, committing nothing");
                            abort.abort();
                        }
                    }
                }
                let _ = revocation.done.send(());
            }
        }
    };
    if let Some(m) = &membership {
        m.leave();
    }
    if let Err(panic) = followed {
        let message = crate::failure::panic_message(panic);
        tracing::error!(error = %message, "internal error in the daemon's loop: the connectors were stopped and their positions committed");
        return Err(RunError::Panicked(message));
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

/// Loads configuration, reporting every problem.
pub fn load(config_path: &Path) -> Result<config::Loaded, RunError> {
    config::load(config_path).map_err(RunError::Config)
}

#[cfg(test)]
mod tests;
