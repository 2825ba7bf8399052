//! One connector's pipeline: source task → encoder → sink, with ordered acknowledgement.
//!
//! ```text
//!  source ──items (bounded)──► encode ─► sink.send ─► in-flight deliveries (FIFO, bounded)
//!     ▲                                                      │ resolved in send order
//!     └── committed watch ◄── offsets.commit ◄── acked position ◄┘
//! ```
//! A position becomes "acked" only when every delivery sent before it has resolved, and is
//! committed to the offset store every `offset_flush_interval_ms`; only then does the source
//! report it to the database (invariant 1).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::sync::{mpsc, watch};

use crate::config::{ConnectorConfig, DaemonConfig};
use crate::encode::{EncodeError, Encoder};
use crate::offsets::{FileOffsetStore, OffsetError};
use crate::position::SourcePosition;
use crate::sink::{Delivery, PendingDelivery, Sink, SinkError};
use crate::source::postgres::{PgError, PostgresSource};
use crate::source::{SourceContext, SourceExit, SourceItem};

/// Batches buffered between the source and the sink stage (each at most
/// [`crate::source::BATCH_ITEMS`] items).
const ITEM_CHANNEL_CAPACITY: usize = 8;
/// How often a one-line progress summary is logged.
const SUMMARY_EVERY: Duration = Duration::from_secs(30);

/// Why a pipeline run ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The source failed.
    #[error(transparent)]
    Source(#[from] PgError),
    /// The sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The offset store failed.
    #[error(transparent)]
    Offsets(#[from] OffsetError),
    /// Encoding failed (a schema the registry refused, or the registry is unreachable).
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

impl PipelineError {
    /// Whether a restart (after a backoff) may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            PipelineError::Source(e) => e.is_transient(),
            PipelineError::Sink(SinkError::Create(_)) => false,
            PipelineError::Sink(_) => true,
            PipelineError::Offsets(OffsetError::Io { .. }) => true,
            PipelineError::Offsets(_) => false,
            PipelineError::Encode(e) => e.is_transient(),
        }
    }
}

/// Runs one pipeline until shutdown, a finished `initial_only` snapshot, or an error.
pub async fn run_once(
    daemon: &DaemonConfig,
    connector: &Arc<ConnectorConfig>,
    shutdown: &watch::Receiver<bool>,
) -> Result<SourceExit, PipelineError> {
    let offsets = FileOffsetStore::new(&daemon.offsets.path);
    let stored = offsets.load(&connector.name)?;
    let mut sink = Sink::new(&daemon.sink, &format!("sluice-{}", connector.name))?;
    let mut encoder = Encoder::from_config(
        &connector.topic_prefix,
        &connector.format,
        connector.tombstones_on_delete,
    )?;

    let (items_tx, mut items_rx) = mpsc::channel(ITEM_CHANNEL_CAPACITY);
    let (committed_tx, committed_rx) = watch::channel(stored.clone());
    // The source stops on daemon shutdown or when the sink side fails.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut daemon_shutdown = shutdown.clone();
    let source = PostgresSource::new(connector.clone(), offsets.clone());
    let source_span = tracing::info_span!("source", connector = %connector.name);
    let source_task = tokio::spawn(tracing::Instrument::instrument(
        async move {
            let mut ctx = SourceContext {
                items: items_tx,
                pending: Vec::new(),
                committed: committed_rx,
                shutdown: stop_rx,
            };
            source.run(&mut ctx).await
        },
        source_span,
    ));

    let mut in_flight: FuturesOrdered<PendingDelivery> = FuturesOrdered::new();
    let mut positions: VecDeque<Option<SourcePosition>> = VecDeque::new();
    let mut acked: Option<SourcePosition> = None;
    let mut committed = stored;
    let mut tick = tokio::time::interval(Duration::from_millis(daemon.offset_flush_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let max_in_flight = daemon.sink.max_in_flight;
    let mut source_done = false;
    let mut stopping = *shutdown.borrow();
    if stopping {
        let _ = stop_tx.send(true);
    }
    let mut sink_error: Option<PipelineError> = None;
    let mut events_total: u64 = 0;
    let mut records_total: u64 = 0;
    let mut last_summary = (Instant::now(), 0u64);

    while !(source_done && in_flight.is_empty()) {
        tokio::select! {
            biased;
            Some(res) = in_flight.next(), if !in_flight.is_empty() => {
                let pos = positions.pop_front().flatten();
                match res {
                    Ok(()) => {
                        if pos.is_some() {
                            acked = pos;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "delivery failed; the pipeline restarts from the last committed position");
                        let _ = stop_tx.send(true);
                        sink_error = Some(e.into());
                        break;
                    }
                }
            }
            _ = daemon_shutdown.changed(), if !stopping => {
                tracing::debug!("pipeline: shutdown observed, stopping the source");
                stopping = true;
                let _ = stop_tx.send(true);
            }
            batch = items_rx.recv(), if !source_done && in_flight.len() < max_in_flight => {
                let Some(batch) = batch else {
                    tracing::debug!(in_flight = in_flight.len(), "pipeline: source finished");
                    source_done = true;
                    continue;
                };
                let mut result = Ok(());
                for item in batch {
                    result = handle_item(item, &mut encoder, &mut sink, &mut in_flight, &mut acked, &mut positions, &mut events_total, &mut records_total).await;
                    if result.is_err() {
                        break;
                    }
                }
                if let Err(e) = result {
                    tracing::warn!(error = %e, "cannot encode or hand over a record; the pipeline restarts from the last committed position");
                    let _ = stop_tx.send(true);
                    sink_error = Some(e);
                    break;
                }
            }
            _ = tick.tick() => {
                commit(&connector.name, &offsets, &mut sink, &acked, &mut committed, &committed_tx).await?;
                if last_summary.0.elapsed() >= SUMMARY_EVERY {
                    let secs = last_summary.0.elapsed().as_secs_f64();
                    let rate = (events_total - last_summary.1) as f64 / secs;
                    tracing::info!(
                        events = events_total,
                        records = records_total,
                        events_per_sec = format!("{rate:.0}"),
                        position = %committed.as_ref().map(|p| p.to_string()).unwrap_or_else(|| "none".into()),
                        "progress"
                    );
                    last_summary = (Instant::now(), events_total);
                }
            }
        }
    }

    if sink_error.is_none() {
        commit(
            &connector.name,
            &offsets,
            &mut sink,
            &acked,
            &mut committed,
            &committed_tx,
        )
        .await?;
        sink.close().await?;
    }
    drop(items_rx);
    let source_result = source_task
        .await
        .unwrap_or_else(|e| Err(PgError::Stream(format!("source task failed: {e}"))));
    if let Some(e) = sink_error {
        return Err(e);
    }
    let exit = source_result?;
    if let Some(SourcePosition::Postgres(p)) = &committed {
        PostgresSource::new(connector.clone(), offsets.clone())
            .confirm(p.resume_lsn)
            .await;
    }
    Ok(exit)
}

#[allow(clippy::too_many_arguments)]
async fn handle_item(
    item: SourceItem,
    encoder: &mut Encoder,
    sink: &mut Sink,
    in_flight: &mut FuturesOrdered<PendingDelivery>,
    acked: &mut Option<SourcePosition>,
    positions: &mut VecDeque<Option<SourcePosition>>,
    events_total: &mut u64,
    records_total: &mut u64,
) -> Result<(), PipelineError> {
    // Marks `position` acknowledged once everything sent before it is.
    let mut settle = |delivery: Delivery, position: Option<SourcePosition>| match delivery {
        Delivery::Accepted if in_flight.is_empty() => {
            if position.is_some() {
                *acked = position;
            }
        }
        Delivery::Accepted => {
            in_flight.push_back(Box::pin(std::future::ready(Ok(()))));
            positions.push_back(position);
        }
        Delivery::Pending(fut) => {
            in_flight.push_back(fut);
            positions.push_back(position);
        }
    };
    match item {
        SourceItem::Event(event) => {
            *events_total += 1;
            let records = encoder.encode(&event).await?;
            let n = records.len();
            for (i, record) in records.iter().enumerate() {
                sink.ensure_topic(&record.topic).await?;
                let delivery = sink.send(record).await?;
                settle(delivery, (i + 1 == n).then(|| event.position.clone()));
                *records_total += 1;
            }
            if n == 0 {
                settle(Delivery::Accepted, Some(event.position));
            }
        }
        SourceItem::Checkpoint(position) => settle(Delivery::Accepted, Some(position)),
    }
    Ok(())
}

async fn commit(
    connector: &str,
    offsets: &FileOffsetStore,
    sink: &mut Sink,
    acked: &Option<SourcePosition>,
    committed: &mut Option<SourcePosition>,
    committed_tx: &watch::Sender<Option<SourcePosition>>,
) -> Result<(), PipelineError> {
    let Some(pos) = acked else { return Ok(()) };
    if committed.as_ref() == Some(pos) {
        return Ok(());
    }
    sink.flush_buffered()?;
    let store = offsets.clone();
    let name = connector.to_string();
    let p = pos.clone();
    let in_progress = matches!(&p, SourcePosition::Postgres(pg) if pg.snapshot == crate::position::SnapshotState::InProgress);
    tokio::task::spawn_blocking(move || {
        if in_progress {
            store.reset(&name, &p)
        } else {
            store.commit(&name, &p)
        }
    })
    .await
    .map_err(|e| OffsetError::Io {
        path: offsets_path(connector),
        source: std::io::Error::other(e.to_string()),
    })??;
    tracing::debug!(position = %pos, "offset committed");
    *committed = Some(pos.clone());
    let _ = committed_tx.send(Some(pos.clone()));
    Ok(())
}

fn offsets_path(connector: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{connector}.json"))
}
