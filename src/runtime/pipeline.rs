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
use prometheus::{IntCounter, IntGauge};
use tokio::sync::{mpsc, watch};

use crate::config::{ConnectorConfig, DaemonConfig};
use crate::encode::{EncodeError, Encoder};
use crate::event::TableId;
use crate::offsets::{FileOffsetStore, OffsetError};
use crate::position::SourcePosition;
use crate::sink::{Delivery, PendingDelivery, Sink, SinkError};
use crate::source::{Source, SourceContext, SourceError, SourceExit, SourceItem};

use super::status::Observer;

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
    Source(#[from] SourceError),
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

/// What a delivered record is counted as.
struct Delivered {
    position: Option<SourcePosition>,
    table: Option<Arc<str>>,
    bytes: usize,
    source_ts_us: Option<i64>,
}

/// The control inputs of one pipeline run.
pub struct RunControl {
    /// Becomes `true` when the run must end (daemon shutdown, stop, restart).
    pub stop: watch::Receiver<bool>,
    /// `true` while an operator has paused the connector.
    pub paused: watch::Receiver<bool>,
    /// Status and metrics.
    pub observer: Observer,
}

/// Runs one pipeline until stopped, a finished `initial_only` snapshot, or an error.
pub async fn run_once(
    daemon: &DaemonConfig,
    connector: &Arc<ConnectorConfig>,
    control: RunControl,
) -> Result<SourceExit, PipelineError> {
    let RunControl {
        stop: mut outer_stop,
        mut paused,
        observer,
    } = control;
    let offsets = FileOffsetStore::new(&daemon.offsets.path);
    let stored = offsets.load(&connector.name)?;
    let mut sink = Sink::new(&daemon.sink, &format!("sluice-{}", connector.name))?;
    let mut encoder = Encoder::from_config(
        &connector.topic_prefix,
        &connector.format,
        connector.tombstones_on_delete,
    )?;
    let name: Arc<str> = observer.connector.clone();
    observer.update(|s| s.committed_offset = stored.as_ref().map(|p| p.to_string()));
    let metrics = observer.metrics.clone();

    let (items_tx, mut items_rx) = mpsc::channel(ITEM_CHANNEL_CAPACITY);
    let (committed_tx, committed_rx) = watch::channel(stored.clone());
    // The source stops when the run is stopped or when the sink side fails.
    let (stop_tx, stop_rx) = watch::channel(false);
    let source = Source::new(connector.clone(), offsets.clone());
    let source_span = tracing::info_span!("source", connector = %connector.name);
    let source_observer = observer.clone();
    let source_task = tokio::spawn(tracing::Instrument::instrument(
        async move {
            let mut ctx = SourceContext {
                items: items_tx,
                pending: Vec::new(),
                committed: committed_rx,
                shutdown: stop_rx,
                observer: source_observer,
            };
            source.run(&mut ctx).await
        },
        source_span,
    ));

    let mut in_flight: FuturesOrdered<PendingDelivery> = FuturesOrdered::new();
    let mut delivered: VecDeque<Delivered> = VecDeque::new();
    let mut acked: Option<SourcePosition> = None;
    let mut committed = stored;
    let mut tick = tokio::time::interval(Duration::from_millis(daemon.offset_flush_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let max_in_flight = daemon.sink.max_in_flight;
    let mut source_done = false;
    let mut stopping = *outer_stop.borrow();
    if stopping {
        let _ = stop_tx.send(true);
    }
    let mut is_paused = *paused.borrow();
    let mut sink_error: Option<PipelineError> = None;
    let mut events_total: u64 = 0;
    let mut records_total: u64 = 0;
    let mut last_summary = (Instant::now(), 0u64);
    let mut counters = Counters::new(observer.clone());
    let queue_depth = metrics.broker_queue_depth.with_label_values(&[&*name]);

    while !(source_done && in_flight.is_empty()) {
        tokio::select! {
            biased;
            Some(res) = in_flight.next(), if !in_flight.is_empty() => {
                let d = delivered.pop_front();
                match res {
                    Ok(()) => {
                        if let Some(d) = d {
                            counters.delivered(&d);
                            if d.position.is_some() {
                                acked = d.position;
                            }
                        }
                    }
                    Err(e) => {
                        metrics.records_failed.with_label_values(&[&*name]).inc();
                        tracing::warn!(error = %e, "delivery failed; the pipeline restarts from the last committed position");
                        let _ = stop_tx.send(true);
                        sink_error = Some(e.into());
                        break;
                    }
                }
            }
            _ = outer_stop.changed(), if !stopping => {
                tracing::debug!("pipeline: stop requested, stopping the source");
                stopping = true;
                let _ = stop_tx.send(true);
            }
            changed = paused.changed() => {
                if changed.is_err() {
                    // The controller is gone: treat as resumed and stop watching.
                    is_paused = false;
                    paused = watch::channel(false).1;
                } else {
                    is_paused = *paused.borrow_and_update();
                }
                observer.update(|s| s.paused = is_paused);
                tracing::info!(paused = is_paused, "connector {}", if is_paused { "paused" } else { "resumed" });
            }
            batch = items_rx.recv(), if !source_done && !is_paused && in_flight.len() < max_in_flight => {
                let Some(batch) = batch else {
                    tracing::debug!(in_flight = in_flight.len(), "pipeline: source finished");
                    source_done = true;
                    continue;
                };
                let mut result = Ok(());
                encoder.set_batch_time();
                for item in batch {
                    result = handle_item(item, &mut encoder, &mut sink, &mut in_flight, &mut acked, &mut delivered, &mut counters, &mut events_total, &mut records_total).await;
                    if result.is_err() {
                        break;
                    }
                }
                queue_depth.set(in_flight.len() as i64);
                if let Err(e) = result {
                    tracing::warn!(error = %e, "cannot encode or hand over a record; the pipeline restarts from the last committed position");
                    let _ = stop_tx.send(true);
                    sink_error = Some(e);
                    break;
                }
            }
            _ = tick.tick() => {
                queue_depth.set(in_flight.len() as i64);
                counters.publish();
                commit(&connector.name, &offsets, &mut sink, &acked, &mut committed, &committed_tx, &observer).await?;
                if last_summary.0.elapsed() >= SUMMARY_EVERY {
                    let secs = last_summary.0.elapsed().as_secs_f64();
                    let rate = (events_total - last_summary.1) as f64 / secs;
                    let lag = counters.lag_ms;
                    tracing::info!(
                        events = events_total,
                        records = records_total,
                        events_per_sec = format!("{rate:.0}"),
                        lag_ms = lag.unwrap_or(0),
                        position = %committed.as_ref().map(|p| p.to_string()).unwrap_or_else(|| "none".into()),
                        "progress"
                    );
                    last_summary = (Instant::now(), events_total);
                }
            }
        }
    }

    counters.publish();
    if sink_error.is_none() {
        commit(
            &connector.name,
            &offsets,
            &mut sink,
            &acked,
            &mut committed,
            &committed_tx,
            &observer,
        )
        .await?;
        sink.close().await?;
    }
    drop(items_rx);
    let source_result = source_task
        .await
        .unwrap_or_else(|e| Err(SourceError::task(format!("source task failed: {e}"))));
    if let Some(e) = sink_error {
        return Err(e);
    }
    let exit = source_result?;
    if let Some(p) = &committed {
        Source::new(connector.clone(), offsets.clone())
            .after_stop(p)
            .await;
    }
    Ok(exit)
}

/// Per-run counters: metric handles cached per table (no label lookup per event) and the
/// status figures, pushed to the shared status on each commit tick rather than per event.
struct Counters {
    observer: Observer,
    tables: crate::fasthash::FastMap<TableId, TableCounters>,
    topics: crate::fasthash::FastMap<Arc<str>, IntCounter>,
    bytes: IntCounter,
    lag: IntGauge,
    events_read: u64,
    records_published: u64,
    lag_ms: Option<i64>,
    position: Option<SourcePosition>,
    /// The table version of the last event read and its counters.
    last: Option<(Arc<crate::event::TableSchema>, TableCounters)>,
}

#[derive(Clone)]
struct TableCounters {
    label: Arc<str>,
    read: IntCounter,
    published: IntCounter,
}

impl Counters {
    fn new(observer: Observer) -> Self {
        let c = &*observer.connector;
        Counters {
            bytes: observer.metrics.bytes_published.with_label_values(&[c]),
            lag: observer.metrics.source_lag_ms.with_label_values(&[c]),
            observer,
            tables: Default::default(),
            topics: Default::default(),
            events_read: 0,
            records_published: 0,
            lag_ms: None,
            position: None,
            last: None,
        }
    }

    /// Counts an event read; returns its table's label.
    fn read(
        &mut self,
        table: Option<&Arc<crate::event::TableSchema>>,
        position: &SourcePosition,
    ) -> Option<Arc<str>> {
        self.events_read += 1;
        self.position = Some(position.clone());
        let table = table?;
        // The same table version as the last event (the common case): no lookup.
        if let Some((last, t)) = &self.last {
            if Arc::ptr_eq(last, table) {
                t.read.inc();
                return Some(t.label.clone());
            }
        }
        let id = &table.id;
        if !self.tables.contains_key(id) {
            let label: Arc<str> = Arc::from(id.to_string());
            let m = &self.observer.metrics;
            let c = &*self.observer.connector;
            self.tables.insert(
                id.clone(),
                TableCounters {
                    read: m.events_read.with_label_values(&[c, &label]),
                    published: m.records_published.with_label_values(&[c, &label]),
                    label,
                },
            );
        }
        let t = &self.tables[id];
        t.read.inc();
        let label = t.label.clone();
        self.last = Some((table.clone(), t.clone()));
        Some(label)
    }

    /// Counts an acknowledged record.
    fn delivered(&mut self, d: &Delivered) {
        let Some(label) = &d.table else {
            return; // a position marker, not a record
        };
        match self.tables.values().find(|t| Arc::ptr_eq(&t.label, label)) {
            Some(t) => t.published.inc(),
            None => {
                let m = &self.observer.metrics;
                let c = &*self.observer.connector;
                self.topics
                    .entry(label.clone())
                    .or_insert_with(|| m.records_published.with_label_values(&[c, label]))
                    .inc();
            }
        }
        self.records_published += 1;
        self.bytes.inc_by(d.bytes as u64);
        if let Some(ts) = d.source_ts_us {
            let lag = (now_us() - ts) / 1000;
            self.lag.set(lag);
            self.lag_ms = Some(lag);
        }
    }

    /// Pushes the figures to the shared status.
    fn publish(&self) {
        self.observer.update(|s| {
            s.events_read = self.events_read;
            s.records_published = self.records_published;
            s.lag_ms = self.lag_ms;
            if let Some(p) = &self.position {
                s.source_position = Some(p.to_string());
            }
        });
    }
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
async fn handle_item(
    item: SourceItem,
    encoder: &mut Encoder,
    sink: &mut Sink,
    in_flight: &mut FuturesOrdered<PendingDelivery>,
    acked: &mut Option<SourcePosition>,
    delivered: &mut VecDeque<Delivered>,
    counters: &mut Counters,
    events_total: &mut u64,
    records_total: &mut u64,
) -> Result<(), PipelineError> {
    let (records, position, table, ts) = match item {
        SourceItem::Event(event) => {
            *events_total += 1;
            let table = counters.read(event.table.as_ref(), &event.position);
            let records = encoder.encode(&event).await?;
            (
                records,
                Some(event.position),
                table,
                Some(event.source.ts_us),
            )
        }
        SourceItem::Checkpoint(position) => (Vec::new(), Some(position), None, None),
        SourceItem::Heartbeat { position, ts_ms } => {
            (encoder.heartbeat(ts_ms), position, None, None)
        }
        SourceItem::Transaction(meta) => (encoder.transaction(&meta), None, None, None),
        SourceItem::SchemaChange(change) => {
            let records = encoder.schema_change(&change);
            (records, Some(change.position), None, None)
        }
    };
    // Marks a delivery acknowledged once everything sent before it is.
    let mut settle = |delivery: Delivery, d: Delivered| match delivery {
        Delivery::Accepted if in_flight.is_empty() => {
            counters.delivered(&d);
            if d.position.is_some() {
                *acked = d.position;
            }
        }
        Delivery::Accepted => {
            in_flight.push_back(Box::pin(std::future::ready(Ok(()))));
            delivered.push_back(d);
        }
        Delivery::Pending(fut) => {
            in_flight.push_back(fut);
            delivered.push_back(d);
        }
    };
    let marker = |position| Delivered {
        position: Some(position),
        table: None,
        bytes: 0,
        source_ts_us: None,
    };
    let n = records.len();
    for (i, record) in records.iter().enumerate() {
        sink.ensure_topic(&record.topic).await?;
        let delivery = sink.send(record).await?;
        let bytes =
            record.key.as_ref().map_or(0, Vec::len) + record.value.as_ref().map_or(0, Vec::len);
        settle(
            delivery,
            Delivered {
                position: if i + 1 == n { position.clone() } else { None },
                table: Some(table.clone().unwrap_or_else(|| record.topic.clone())),
                bytes,
                source_ts_us: ts,
            },
        );
        *records_total += 1;
    }
    if n == 0 {
        if let Some(p) = position {
            settle(Delivery::Accepted, marker(p));
        }
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
    observer: &Observer,
) -> Result<(), PipelineError> {
    let Some(pos) = acked else { return Ok(()) };
    if committed.as_ref() == Some(pos) {
        return Ok(());
    }
    sink.flush_buffered()?;
    let store = offsets.clone();
    let name = connector.to_string();
    let p = pos.clone();
    let in_progress = match &p {
        SourcePosition::Postgres(pg) => pg.snapshot == crate::position::SnapshotState::InProgress,
        SourcePosition::Mysql(my) => my.snapshot == crate::position::SnapshotState::InProgress,
    };
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
    observer
        .metrics
        .offset_commits
        .with_label_values(&[&*observer.connector])
        .inc();
    observer.update(|s| s.committed_offset = Some(pos.to_string()));
    *committed = Some(pos.clone());
    let _ = committed_tx.send(Some(pos.clone()));
    Ok(())
}

fn offsets_path(connector: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{connector}.json"))
}
