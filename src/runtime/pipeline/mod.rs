//! One connector's pipeline run: source task → encoder → sink, with ordered acknowledgement.
//!
//! ```text
//!  source ──items (bounded)──► encode ─► sink.send ─► in-flight deliveries (bounded)
//!     ▲                                                      │ resolved in any order
//!     └── committed watch ◄── offsets.commit ◄── AckTracker ◄┘
//! ```
//! The [`AckTracker`] turns deliveries resolved in any order into the highest position whose
//! every predecessor is durable; that position is committed to the offset store every
//! `offset_flush_interval_ms`, and only then does the source report it to the database
//! (invariant 1). The run receives its source, sink and offset store from its caller (the
//! runtime's wiring), so tests hand it fakes.

mod commit;
mod counters;

use counters::Counters;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};

use tokio::sync::{mpsc, watch};

use super::ack::{AckTracker, Ticket};
use super::transaction::{OpenTransaction, TransactionLimits};
use crate::config::ConnectorConfig;
use crate::encode::{EncodeError, Encoder, Record};

use crate::failure::{Classify, Severity};
use crate::offsets::{OffsetError, OffsetStore};
use crate::position::SourcePosition;
use crate::sink::{Delivery, PendingDelivery, Sink, SinkError};
use crate::source::{
    Batch, ByteBudget, ChangeSource, SourceContext, SourceError, SourceExit, SourceItem,
};
use crate::status::Observer;
use crate::transform::Transform;

/// Batches buffered between the source and the sink stage (each at most
/// [`crate::source::BATCH_ITEMS`] items).
const ITEM_CHANNEL_CAPACITY: usize = 8;
/// How long deliveries in flight may take to resolve after a failure before the run ends.
const SETTLE_AFTER_FAILURE: Duration = Duration::from_secs(10);
/// How long a stopped run waits for the deliveries in flight (a broker away would hold them
/// for message.timeout.ms); what is not delivered by then is sent again at the next start.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(15);
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
    /// The run was stopped while records waited for the broker (room in the producer's
    /// queue, or acknowledgements, with a broker away for long): what was not acknowledged
    /// is not committed and is sent again at the next start.
    #[error("stopped before the broker acknowledged every record; what was not acknowledged is sent again at the next start")]
    StoppedWaiting,
}

impl Classify for PipelineError {
    fn severity(&self) -> Severity {
        match self {
            PipelineError::Source(e) => e.severity(),
            PipelineError::Sink(e) => e.severity(),
            PipelineError::Offsets(e) => e.severity(),
            PipelineError::Encode(e) => e.severity(),
            PipelineError::StoppedWaiting => Severity::Transient,
        }
    }
}

/// What one run is built from: handed over by the runtime's wiring.
pub struct PipelineParts {
    /// The source (it reads its starting position from `offsets`).
    pub source: Arc<dyn ChangeSource>,
    /// Where records go.
    pub sink: Box<dyn Sink>,
    /// Where positions are committed.
    pub offsets: Arc<dyn OffsetStore>,
}

/// The daemon settings a run uses.
#[derive(Debug, Clone, Copy)]
pub struct PipelineSettings {
    /// How often acknowledged positions are committed.
    pub offset_flush_interval: Duration,
    /// Records awaiting acknowledgement before the source is paused.
    pub max_in_flight: usize,
    /// Bytes of records awaiting acknowledgement before the source is paused; also the
    /// bytes that may wait between source and pipeline.
    pub max_in_flight_bytes: u32,
    /// How long a stopped run waits for deliveries in flight ([`STOP_GRACE`]).
    pub stop_grace: Duration,
    /// Exactly-once: how large and old a transaction may grow.
    pub transaction: TransactionLimits,
}

/// What a delivered record is counted as.
struct Delivered {
    table: Option<Arc<str>>,
    bytes: usize,
    source_ts_us: Option<i64>,
}

/// A delivery in flight, with what it is counted as once it resolves.
type InFlight = std::pin::Pin<
    Box<dyn std::future::Future<Output = (Ticket, Delivered, Result<(), SinkError>)> + Send>,
>;

/// The control inputs of one pipeline run.
pub struct RunControl {
    /// Becomes `true` when the run must end (daemon shutdown, stop, restart).
    pub stop: watch::Receiver<bool>,
    /// `true` while an operator has paused the connector.
    pub paused: watch::Receiver<bool>,
    /// Status and metrics.
    pub observer: Observer,
}

/// Runs a source on a thread of its own (a single-threaded runtime there): reading and
/// decoding the change stream then runs beside the pipeline's encoding instead of taking
/// turns with it on one worker (a task woken by a channel runs on the waker's worker, where
/// the other worker cannot take it), which on two cores was a third of the streaming time.
/// The result, or the panic's message.
fn on_own_thread<T: Send + 'static>(
    name: String,
    future: impl std::future::Future<Output = T> + Send + 'static,
) -> impl std::future::Future<Output = Result<T, String>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let outcome = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(future)))
                    .map_err(crate::failure::panic_message)
            }
            Err(e) => Err(format!("cannot start the source's runtime: {e}")),
        };
        let _ = tx.send(outcome);
    });
    async move {
        if let Err(e) = spawned {
            return Err(format!("cannot start the source's thread: {e}"));
        }
        rx.await
            .unwrap_or_else(|_| Err("the source's thread ended without a result".into()))
    }
}

/// Runs one pipeline until stopped, a finished `initial_only` snapshot, or an error.
pub async fn run_once(
    connector: &Arc<ConnectorConfig>,
    settings: PipelineSettings,
    parts: PipelineParts,
    control: RunControl,
) -> Result<SourceExit, PipelineError> {
    parts
        .offsets
        .describe(&connector.name, &connector.topic_prefix);
    let mut sink = parts.sink;
    // Exactly-once: fences an earlier owner and aborts its open transaction before the
    // position is read (a read_committed read waits for open transactions).
    sink.prepare().await?;
    let transaction = sink
        .transactional()
        .then(|| OpenTransaction::new(settings.transaction));
    let stored = parts.offsets.load(&connector.name)?;
    let encoder = Encoder::from_config(
        &connector.topic_prefix,
        &connector.format,
        connector.tombstones_on_delete,
    )?
    .with_flatten(crate::encode::Flatten::from_config(&connector.unwrap))
    .with_router(crate::encode::Router::from_config(&connector.route))
    .with_outbox(crate::encode::Outbox::from_config(&connector.outbox))
    .with_changed_fields(crate::encode::ChangedFields::from_config(
        &connector.changed_fields,
    ))
    .with_schema_changes(connector.include_schema_changes)
    .with_notifications(connector.notifications.topic.clone());
    control.observer.update(|s| {
        s.committed_offset = stored.as_ref().map(|p| p.to_string());
        s.committed_position = stored.clone();
    });
    let (items_tx, items_rx) = mpsc::channel(ITEM_CHANNEL_CAPACITY);
    let budget = ByteBudget::new(settings.max_in_flight_bytes);
    let (committed_tx, committed_rx) = watch::channel(stored.clone());
    // The source stops when the run is stopped or when the sink side fails.
    let (source_stop_tx, source_stop_rx) = watch::channel(false);
    let source = parts.source.clone();
    let ctx = SourceContext {
        items: items_tx,
        pending: Vec::new(),
        pending_bytes: 0,
        budget: budget.clone(),
        committed: committed_rx,
        shutdown: source_stop_rx,
        observer: control.observer.clone(),
    };
    let source_task = on_own_thread(
        format!("source-{}", connector.name),
        tracing::Instrument::instrument(
            async move {
                let mut ctx = ctx;
                source.run(&mut ctx).await
            },
            tracing::info_span!("source", connector = %connector.name),
        ),
    );
    let mut run = Run {
        connector: connector.name.clone(),
        settings,
        encoder,
        transform: Transform::for_connector(connector),
        sink,
        transaction,
        offsets: parts.offsets,
        tracker: AckTracker::new(stored),
        in_flight: FuturesUnordered::new(),
        in_flight_bytes: 0,
        budget,
        committed_tx,
        source_stop: source_stop_tx,
        stop: control.stop.clone(),
        counters: Counters::new(control.observer.clone()),
        observer: control.observer.clone(),
        events_total: 0,
        records_total: 0,
        last_summary: (Instant::now(), 0),
        committing: None,
    };
    let outcome = run.drive(items_rx, control).await;
    let source_result = source_task
        .await
        .unwrap_or_else(|panic| Err(SourceError::Panicked(panic)));
    outcome?;
    let exit = source_result?;
    if let Some(p) = run.tracker.last_committed() {
        let _ = parts.source.after_stop(p).await;
    }
    Ok(exit)
}

/// The state of one run's sink side.
struct Run {
    connector: String,
    settings: PipelineSettings,
    encoder: Encoder,
    /// `[types]` modes applied to each event before it is encoded.
    transform: Transform,
    sink: Box<dyn Sink>,
    /// Exactly-once: the open transaction (`None`: the offset store writes positions).
    transaction: Option<OpenTransaction>,
    offsets: Arc<dyn OffsetStore>,
    tracker: AckTracker,
    in_flight: FuturesUnordered<InFlight>,
    /// Bytes of the records in `in_flight`.
    in_flight_bytes: usize,
    /// The bytes waiting between source and pipeline.
    budget: ByteBudget,
    committed_tx: watch::Sender<Option<SourcePosition>>,
    source_stop: watch::Sender<bool>,
    /// The run's stop, seen also while a record waits for room in the producer's queue.
    stop: watch::Receiver<bool>,
    counters: Counters,
    observer: Observer,
    events_total: u64,
    records_total: u64,
    last_summary: (Instant, u64),
    /// An offset write under way (the records keep flowing meanwhile, unless it commits a
    /// transaction): its position and the write.
    committing: Option<(Option<SourcePosition>, Write)>,
}

/// A position being written (by the offset store, or in the sink's transaction).
type Write = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), PipelineError>> + Send>>;

impl Run {
    /// Moves items from the source to the sink until the source ends (and everything in
    /// flight resolved) or something fails; then commits what is acknowledged. Stops the
    /// source in every case.
    async fn drive(
        &mut self,
        mut items: mpsc::Receiver<Batch>,
        control: RunControl,
    ) -> Result<(), PipelineError> {
        let result = self.pump(&mut items, control).await;
        let _ = self.source_stop.send(true);
        drop(items);
        // (A stop that gave up waiting for the broker has had its grace already: only what
        // is resolved by now is collected.)
        match &result {
            Ok(()) => {}
            Err(PipelineError::StoppedWaiting) => self.settle(Duration::from_millis(200)).await,
            Err(_) => self.settle(SETTLE_AFTER_FAILURE).await,
        }
        self.counters.refresh_lag();
        self.counters.publish();
        // Whatever ended the run, what is acknowledged so far is safe to commit: every
        // record before it is durable. Exactly-once after a failure: the open transaction is
        // aborted (a commit would make records visible past the failed one).
        let committed = match (&result, self.transaction.is_some()) {
            (Err(_), true) => {
                if let Some((_, write)) = self.committing.take() {
                    let _ = write.await;
                }
                let open = self.transaction.as_ref().is_some_and(|t| t.has_records());
                if self.sink.abort_transaction().await.is_ok() && open {
                    self.observer
                        .metrics
                        .transactions
                        .with_label_values(&[&*self.observer.connector, "aborted"])
                        .inc();
                }
                Ok(())
            }
            _ => self.commit().await,
        };
        match result {
            Ok(()) => {
                committed?;
                self.sink.close().await?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn pump(
        &mut self,
        items: &mut mpsc::Receiver<Batch>,
        control: RunControl,
    ) -> Result<(), PipelineError> {
        let RunControl {
            stop: mut outer_stop,
            mut paused,
            observer,
        } = control;
        let every = match &self.transaction {
            Some(t) => t.max_age().min(self.settings.offset_flush_interval),
            None => self.settings.offset_flush_interval,
        };
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let queue_depth = observer
            .metrics
            .broker_queue_depth
            .with_label_values(&[&*observer.connector]);
        let mut source_done = false;
        let mut stopping = *outer_stop.borrow();
        if stopping {
            let _ = self.source_stop.send(true);
        }
        let mut is_paused = *paused.borrow();
        let mut watch_pause = true;
        // Armed when the stop comes.
        let grace = tokio::time::sleep_until(
            tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600),
        );
        tokio::pin!(grace);
        if stopping {
            grace
                .as_mut()
                .reset(tokio::time::Instant::now() + self.settings.stop_grace);
        }
        while !(source_done && self.in_flight.is_empty()) {
            let may_read = !source_done
                && !is_paused
                && !self.transaction_holds()
                && self.tracker.in_flight() < self.settings.max_in_flight
                && self.in_flight_bytes < self.settings.max_in_flight_bytes as usize;
            tokio::select! {
                biased;
                Some((ticket, delivered, result)) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.in_flight_bytes -= delivered.bytes;
                    self.resolved(ticket, delivered, result)?;
                    if self.in_flight.is_empty() && self.committing.is_none() && self.transaction.as_ref().is_some_and(|t| t.due()) {
                        self.start_commit()?;
                    }
                }
                _ = outer_stop.changed(), if !stopping => {
                    tracing::debug!("pipeline: stop requested, stopping the source");
                    stopping = true;
                    let _ = self.source_stop.send(true);
                    grace.as_mut().reset(tokio::time::Instant::now() + self.settings.stop_grace);
                }
                _ = &mut grace, if stopping => {
                    tracing::warn!(in_flight = self.in_flight.len(), grace_ms = self.settings.stop_grace.as_millis() as u64, "stopping with records still unacknowledged by the broker; they are not committed and are sent again at the next start");
                    return Err(PipelineError::StoppedWaiting);
                }
                changed = paused.changed(), if watch_pause => {
                    if changed.is_err() {
                        // The controller is gone (the connector is being stopped): treat as
                        // resumed and stop watching. (A receiver of a fresh channel whose
                        // sender is dropped at once would be ready again at every turn: this
                        // biased select would spin here and never reach the branches after
                        // it, commits and the source's items included.)
                        is_paused = false;
                        watch_pause = false;
                    } else {
                        is_paused = *paused.borrow_and_update();
                    }
                    observer.update(|s| s.paused = is_paused);
                    tracing::info!(paused = is_paused, "connector {}", if is_paused { "paused" } else { "resumed" });
                }
                // Before the items: under a steady stream of batches a later branch of this
                // biased select would never be polled, and nothing would be committed until
                // the stream paused (a long snapshot committed only at its end).
                _ = tick.tick() => {
                    queue_depth.set(self.tracker.in_flight() as i64);
                    self.counters.refresh_lag();
                    self.counters.publish();
                    if let Some(t) = self.transaction.as_mut() {
                        t.tick();
                    }
                    if self.committing.is_none() {
                        self.start_commit()?;
                    }
                    self.summary();
                }
                written = async { self.committing.as_mut().expect("guarded").1.as_mut().await }, if self.committing.is_some() => {
                    let (pos, _) = self.committing.take().expect("guarded");
                    self.commit_done(pos, written)?;
                }
                batch = items.recv(), if may_read => {
                    match batch {
                        Some(batch) => self.batch(batch).await?,
                        None => {
                            tracing::debug!(in_flight = self.in_flight.len(), "pipeline: source finished");
                            source_done = true;
                        }
                    }
                    queue_depth.set(self.tracker.in_flight() as i64);
                }
            }
        }
        Ok(())
    }

    /// After a failure: lets the deliveries still in flight resolve (for a while), so that
    /// what was accepted before the failure is committed and not sent again.
    async fn settle(&mut self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        // Buffered records are pushed out so their deliveries can resolve.
        let _ = self.sink.flush_buffered();
        while !self.in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, self.in_flight.next()).await {
                Ok(Some((ticket, delivered, Ok(())))) => {
                    self.counters.delivered(&delivered);
                    self.tracker.delivered(ticket);
                }
                Ok(Some((ticket, _, Err(_)))) => self.tracker.failed(ticket),
                Ok(None) | Err(_) => break,
            }
        }
    }

    /// A delivery resolved: counted, and the tracker told.
    fn resolved(
        &mut self,
        ticket: Ticket,
        delivered: Delivered,
        result: Result<(), SinkError>,
    ) -> Result<(), PipelineError> {
        match result {
            Ok(()) => {
                self.counters.delivered(&delivered);
                self.tracker.delivered(ticket);
                Ok(())
            }
            Err(e) => {
                self.tracker.failed(ticket);
                self.observer
                    .metrics
                    .records_failed
                    .with_label_values(&[&*self.observer.connector])
                    .inc();
                tracing::warn!(error = %e, "delivery failed; nothing after it is committed");
                Err(e.into())
            }
        }
    }

    /// Encodes a batch and hands its records to the sink; then gives the batch's bytes
    /// back to the budget (its records now count as in flight).
    async fn batch(&mut self, batch: Batch) -> Result<(), PipelineError> {
        self.encoder.set_batch_time();
        self.counters.refresh_lag();
        let Batch { items, held } = batch;
        // The read position is the batch's last event's (one clone per batch, not per event:
        // a clone touches counters the source's thread also touches).
        let last_read = items.iter().rev().find_map(|i| match i {
            SourceItem::Event(e) => Some(e.position.clone()),
            _ => None,
        });
        if last_read.is_some() {
            self.counters.position = last_read;
        }
        let result = async {
            for item in items {
                if let Err(e) = self.item(item).await {
                    tracing::warn!(error = %e, "cannot encode or hand over a record");
                    return Err(e);
                }
            }
            Ok(())
        }
        .await;
        self.budget.give_back(held);
        result
    }

    async fn item(&mut self, item: SourceItem) -> Result<(), PipelineError> {
        let (records, position, table, ts) = match item {
            SourceItem::Event(event) => {
                self.events_total += 1;
                let table = self.counters.read(event.table.as_ref());
                let event = self
                    .transform
                    .apply(*event)
                    .map_err(crate::encode::EncodeError::Definite)?;
                let records = self.encoder.encode(&event).await?;
                (
                    records,
                    Some(event.position),
                    table,
                    Some(event.source.ts_us),
                )
            }
            SourceItem::Checkpoint(position) => (Vec::new(), Some(position), None, None),
            SourceItem::Heartbeat { position, ts_ms } => {
                (self.encoder.heartbeat(ts_ms), position, None, None)
            }
            SourceItem::Transaction(meta) => (self.encoder.transaction(&meta), None, None, None),
            SourceItem::Notification(n) => (self.encoder.notification(&n), None, None, None),
            SourceItem::SchemaChange(change) => {
                let records = self.encoder.schema_change(&change);
                (records, Some(change.position), None, None)
            }
        };
        if records.is_empty() {
            if let Some(p) = position {
                self.tracker.checkpoint(p);
            }
            return Ok(());
        }
        let last = records.len() - 1;
        let mut position = position;
        for (i, record) in records.iter().enumerate() {
            // The item's position goes with its last record.
            let p = if i == last { position.take() } else { None };
            let counted = Delivered {
                table: Some(table.clone().unwrap_or_else(|| record.topic.clone())),
                bytes: record_bytes(record),
                source_ts_us: ts,
            };
            self.send(record, p, counted).await?;
        }
        Ok(())
    }

    async fn send(
        &mut self,
        record: &Record,
        position: Option<SourcePosition>,
        counted: Delivered,
    ) -> Result<(), PipelineError> {
        let delivery = match self.sink.send_now(record) {
            Some(delivery) => delivery?,
            None => {
                self.sink.ensure_topic(&record.topic).await?;
                // A full queue (a broker away) can hold this for message.timeout.ms: a stop
                // must not wait that long.
                let mut stop = self.stop.clone();
                let stopped = async move {
                    if stop.wait_for(|s| *s).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    biased;
                    delivery = self.sink.send(record) => delivery?,
                    _ = stopped => return Err(PipelineError::StoppedWaiting),
                }
            }
        };
        self.records_total += 1;
        if let Some(t) = self.transaction.as_mut() {
            t.sent(counted.bytes);
        }
        let ticket = self.tracker.track(position);
        match delivery {
            Delivery::Accepted => {
                self.counters.delivered(&counted);
                self.tracker.delivered(ticket);
            }
            Delivery::Pending(fut) => {
                self.in_flight_bytes += counted.bytes;
                self.in_flight.push(in_flight(ticket, counted, fut))
            }
        }
        Ok(())
    }

    /// The periodic one-line summary.
    fn summary(&mut self) {
        let (since, events_then) = self.last_summary;
        if since.elapsed() < SUMMARY_EVERY {
            return;
        }
        let rate = (self.events_total - events_then) as f64 / since.elapsed().as_secs_f64();
        tracing::info!(
            events = self.events_total,
            records = self.records_total,
            events_per_sec = format!("{rate:.0}"),
            lag_ms = self.counters.lag_ms.unwrap_or(0),
            position = %self.tracker.last_committed().map(|p| p.to_string()).unwrap_or_else(|| "none".into()),
            "progress"
        );
        self.last_summary = (Instant::now(), self.events_total);
    }
}

fn in_flight(ticket: Ticket, counted: Delivered, fut: PendingDelivery) -> InFlight {
    Box::pin(async move { (ticket, counted, fut.await) })
}

fn record_bytes(record: &Record) -> usize {
    record.key.as_ref().map_or(0, Vec::len) + record.value.as_ref().map_or(0, Vec::len)
}
