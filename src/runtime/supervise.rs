//! One connector's supervision: runs its pipeline, restarts it after a transient failure
//! with a growing backoff, holds a failed or operator-stopped connector until told, and
//! follows the operator's commands (restart, stop, Connect's stop and resume).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::pipeline::{self, PipelineError, PipelineParts, PipelineSettings};
use super::{Command, Wiring, BACKOFF_MAX, BACKOFF_START};
use crate::config::{ConnectorConfig, DaemonConfig};
use crate::failure::{self, Action};
use crate::source::SourceExit;
use crate::status::{ConnectorState, Observer};

/// What a supervisor does after an operator's command while no pipeline runs.
enum Next {
    Restart,
    Start,
    Halt,
    End,
}

/// Waits, with no pipeline running, for the command that decides what comes next (shutdown
/// ends it).
async fn next_command(
    shutdown: &mut watch::Receiver<bool>,
    commands: &mut mpsc::Receiver<Command>,
) -> Next {
    tokio::select! {
        _ = shutdown.changed() => Next::End,
        c = commands.recv() => match c {
            Some(Command::Restart) => Next::Restart,
            Some(Command::Start) => Next::Start,
            Some(Command::Halt) => Next::Halt,
            Some(Command::Stop) | None => Next::End,
        },
    }
}

/// Runs one connector with restarts; `true` when it ended cleanly. With `wait_on_failure`,
/// a failed connector stays (status `failed`) until restarted or stopped. A halted connector
/// (`halted`, or Connect's stop) runs no pipeline and shows `stopped` until resumed.
#[allow(clippy::too_many_arguments)]
pub(super) async fn supervise(
    daemon: Arc<DaemonConfig>,
    wiring: Arc<dyn Wiring>,
    connector: Arc<ConnectorConfig>,
    observer: Observer,
    mut shutdown: watch::Receiver<bool>,
    paused: watch::Receiver<bool>,
    mut commands: mpsc::Receiver<Command>,
    wait_on_failure: bool,
    mut halted: bool,
) -> bool {
    let mut backoff = BACKOFF_START;
    tracing::info!(file = %connector.file.display(), "connector starting");
    if let Some(warning) = connector.tls_warning() {
        tracing::warn!("{warning}");
    }
    let stopped = |observer: &Observer| {
        observer.set_state(ConnectorState::Stopped);
        tracing::info!("connector stopped");
        true
    };
    loop {
        if *shutdown.borrow() {
            return stopped(&observer);
        }
        if halted {
            observer.update(|s| {
                s.state = ConnectorState::Stopped;
                s.error = None;
            });
            tracing::info!("connector stopped by an operator; resume or restart runs it again");
            match next_command(&mut shutdown, &mut commands).await {
                Next::Restart | Next::Start => halted = false,
                Next::Halt => continue,
                Next::End => return stopped(&observer),
            }
            tracing::info!("connector started again by an operator");
        }
        let started = std::time::Instant::now();
        observer.set_state(ConnectorState::Starting);
        let (stop_tx, stop_rx) = watch::channel(false);
        let settings = PipelineSettings {
            offset_flush_interval: Duration::from_millis(daemon.offset_flush_interval_ms),
            max_in_flight: daemon.sink.max_in_flight,
            max_in_flight_bytes: daemon.sink.max_in_flight_bytes as u32,
            stop_grace: pipeline::STOP_GRACE,
            transaction: super::TransactionLimits {
                max_age: Duration::from_millis(daemon.sink.transaction_max_ms),
                max_records: daemon.sink.transaction_max_records,
                max_bytes: daemon.sink.transaction_max_bytes,
            },
        };
        let run = run_pipeline(
            &*wiring,
            &connector,
            settings,
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
                    let c = c.unwrap_or(Command::Stop);
                    // Start means nothing to a running connector.
                    if c != Command::Start {
                        command = Some(c);
                        let _ = stop_tx.send(true);
                    }
                }
            }
        };
        match command {
            Some(Command::Restart | Command::Start) => {
                tracing::info!("restarting the connector from its committed position");
                continue;
            }
            Some(Command::Halt) => {
                halted = true;
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
            Err(e) if failure::action(&e) == Action::RetryWithBackoff => {
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = BACKOFF_START;
                }
                observer
                    .metrics
                    .reconnects
                    .with_label_values(&[&*observer.connector])
                    .inc();
                let now = crate::status::now_ms();
                observer.update(|s| {
                    s.state = ConnectorState::Retrying;
                    s.snapshot = None;
                    let (attempt, since_ms) = s
                        .retry
                        .as_ref()
                        .map_or((1, now), |r| (r.attempt + 1, r.since_ms));
                    s.retry = Some(crate::status::RetryInfo {
                        attempt,
                        last_error: e.to_string(),
                        next_try_ms: now + backoff.as_millis() as i64,
                        since_ms,
                    });
                });
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "connector failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    next = next_command(&mut shutdown, &mut commands) => match next {
                        Next::Restart | Next::Start => {}
                        Next::Halt => halted = true,
                        Next::End => return stopped(&observer),
                    },
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(e) => {
                tracing::error!(error = %e, file = %connector.file.display(), "connector stopped: fix the problem and restart Sluice");
                observer.update(|s| {
                    s.state = ConnectorState::Failed;
                    s.error = Some(e.to_string());
                    s.retry = None;
                });
                if !wait_on_failure {
                    return false;
                }
                loop {
                    match next_command(&mut shutdown, &mut commands).await {
                        Next::Restart => break,
                        // Resuming does not revive a failed connector (as in Connect).
                        Next::Start => continue,
                        Next::Halt => {
                            halted = true;
                            break;
                        }
                        Next::End => return false,
                    }
                }
                backoff = BACKOFF_START;
            }
        }
    }
}

/// Builds one run's parts through the wiring and runs it.
async fn run_pipeline(
    wiring: &dyn Wiring,
    connector: &Arc<ConnectorConfig>,
    settings: PipelineSettings,
    control: pipeline::RunControl,
) -> Result<SourceExit, PipelineError> {
    let offsets = wiring.offsets();
    let parts = PipelineParts {
        source: wiring.source(connector, offsets.clone()),
        sink: wiring.sink(connector)?,
        offsets,
    };
    pipeline::run_once(connector, settings, parts, control).await
}
