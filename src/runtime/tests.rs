//! The pipeline and its supervision against fakes: a scripted source, a fault-injecting sink
//! and the memory offset store. What is asserted is what a consumer reads from the (fake)
//! broker and what the offset store holds.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::*;
use crate::event::{ChangeEvent, Column, ColumnKind, Op, SnapshotMarker, SourceDetail, SourceMeta};
use crate::event::{TableId, TableSchema, Value};
use crate::failure::{Action, Severity};
use crate::offsets::MemoryOffsetStore;
use crate::position::{PgPosition, SourcePosition};
use crate::sink::testing::{Fault, FaultyBroker};
use crate::source::SourceExit;
use crate::source::{SourceContext, SourceError, SourceFuture, SourceItem};

/// Emits rows 1..=total of one table, the row number as its position, resuming after the
/// stored position the way the database sources do; then finishes.
struct ScriptedSource {
    name: String,
    offsets: Arc<dyn OffsetStore>,
    total: u64,
    /// Fail (transiently) once, at this row, the first time it is reached.
    fail_at: Option<u64>,
    failed: Arc<std::sync::atomic::AtomicBool>,
    /// Panic (a defect) at this row.
    panic_at: Option<u64>,
    table: Arc<TableSchema>,
    /// Bytes of text in each row's `blob` column (0: null).
    text: usize,
    /// Rows emitted but not yet delivered, at most (measured at each emit).
    outstanding: Arc<std::sync::atomic::AtomicU64>,
    broker: FaultyBroker,
}

fn pos(n: u64) -> SourcePosition {
    SourcePosition::Postgres(PgPosition::at(n))
}

fn event(table: &Arc<TableSchema>, n: u64, text: usize) -> SourceItem {
    let blob = if text == 0 {
        Value::Null
    } else {
        Value::text("x".repeat(text))
    };
    SourceItem::Event(Box::new(ChangeEvent {
        op: Op::Create,
        table: Some(table.clone()),
        before: None,
        after: Some(vec![Value::Int((n % 7) as i64), Value::Int(n as i64), blob]),
        source: SourceMeta {
            ts_us: 1_700_000_000_000_000 + n as i64,
            snapshot: SnapshotMarker::False,
            db: "db".into(),
            detail: SourceDetail::Postgres {
                tx_id: Some(n as i64),
                lsn: Some(n),
                last_commit_lsn: None,
                origin: None,
                origin_lsn: None,
            },
        },
        message: None,
        transaction: None,
        position: pos(n),
    }))
}

impl ChangeSource for ScriptedSource {
    fn run<'a>(&'a self, ctx: &'a mut SourceContext) -> SourceFuture<'a, SourceExit> {
        Box::pin(async move {
            let start = match self.offsets.load(&self.name).expect("load") {
                Some(SourcePosition::Postgres(p)) => p.resume_lsn,
                _ => 0,
            };
            for n in start + 1..=self.total {
                if self.panic_at == Some(n) {
                    panic!("scripted source panics at row {n}");
                }
                if self.fail_at == Some(n)
                    && !self.failed.swap(true, std::sync::atomic::Ordering::SeqCst)
                {
                    ctx.flush().await;
                    return Err(SourceError::Other {
                        message: "connection reset (scripted)".into(),
                        severity: Severity::Transient,
                    });
                }
                let waiting = (n - 1).saturating_sub(self.broker.resolved());
                self.outstanding
                    .fetch_max(waiting, std::sync::atomic::Ordering::SeqCst);
                if !ctx.send(event(&self.table, n, self.text)).await {
                    return Ok(SourceExit::Shutdown);
                }
            }
            ctx.flush().await;
            Ok(SourceExit::Finished)
        })
    }

    fn after_stop<'a>(&'a self, _committed: &'a SourcePosition) -> SourceFuture<'a, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}

struct FakeWiring {
    broker: FaultyBroker,
    offsets: Arc<MemoryOffsetStore>,
    total: u64,
    source_fail_at: Option<u64>,
    source_failed: Arc<std::sync::atomic::AtomicBool>,
    source_panic_at: Option<u64>,
    row_text: usize,
    outstanding: Arc<std::sync::atomic::AtomicU64>,
}

impl FakeWiring {
    fn new(faults: Vec<Fault>, total: u64) -> Self {
        FakeWiring {
            broker: FaultyBroker::new(faults),
            offsets: Arc::new(MemoryOffsetStore::new()),
            total,
            source_fail_at: None,
            source_failed: Arc::default(),
            source_panic_at: None,
            row_text: 0,
            outstanding: Arc::default(),
        }
    }
}

fn table() -> Arc<TableSchema> {
    let col = |name: &str| Column {
        name: name.into(),
        kind: ColumnKind::Int64,
        nullable: false,
        default: None,
        length: None,
    };
    let blob = Column {
        name: "blob".into(),
        kind: ColumnKind::Text,
        nullable: true,
        default: None,
        length: None,
    };
    Arc::new(TableSchema {
        id: TableId {
            schema: "public".into(),
            name: "t".into(),
        },
        columns: vec![col("k"), col("id"), blob],
        key: vec![1],
    })
}

impl Wiring for FakeWiring {
    fn offsets(&self) -> Arc<dyn OffsetStore> {
        self.offsets.clone()
    }

    fn sink(&self, _connector: &ConnectorConfig) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(self.broker.sink()))
    }

    fn source(
        &self,
        connector: &Arc<ConnectorConfig>,
        offsets: Arc<dyn OffsetStore>,
    ) -> Arc<dyn ChangeSource> {
        Arc::new(ScriptedSource {
            name: connector.name.clone(),
            offsets,
            total: self.total,
            fail_at: self.source_fail_at,
            failed: self.source_failed.clone(),
            panic_at: self.source_panic_at,
            table: table(),
            text: self.row_text,
            outstanding: self.outstanding.clone(),
            broker: self.broker.clone(),
        })
    }
}

/// A folder with a daemon file and one connector file (a valid PostgreSQL connector; the
/// wiring replaces its source).
fn config_dir(tag: &str) -> (PathBuf, DaemonConfig, ConnectorConfig) {
    let dir = std::env::temp_dir().join(format!("sluice-rt-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("connectors")).unwrap();
    let daemon_file = dir.join("sluice.toml");
    std::fs::write(
        &daemon_file,
        format!(
            "connectors_dir = \"{}\"\noffset_flush_interval_ms = 20\n[offsets]\nstore = \"file\"\npath = \"{}\"\n[sink]\ntype = \"stdout\"\nmax_in_flight = 50\n",
            dir.join("connectors").display(),
            dir.join("offsets").display()
        ),
    )
    .unwrap();
    let connector_file = dir.join("connectors").join("c.toml");
    std::fs::write(
        &connector_file,
        "name = \"c\"\nsource = \"postgres\"\ntopic_prefix = \"p\"\n[postgres]\nurl = \"postgres://u@127.0.0.1:1/db\"\nslot = \"s\"\npublication = \"pub\"\ntables = [\"public.t\"]\n[format]\nschemas = false\n",
    )
    .unwrap();
    let daemon = DaemonConfig::load(&daemon_file).expect("daemon config");
    let connector = ConnectorConfig::load(&connector_file).expect("connector config");
    (dir, daemon, connector)
}

/// The `id` of every create record the broker holds, in order.
fn ids(broker: &FaultyBroker) -> Vec<u64> {
    broker
        .records()
        .iter()
        .filter_map(|r| {
            let v: serde_json::Value = serde_json::from_slice(r.value.as_ref()?).ok()?;
            v["after"]["id"].as_u64()
        })
        .collect()
}

async fn run_daemon(wiring: Arc<FakeWiring>, tag: &str) -> (Result<(), RunError>, Arc<Runtime>) {
    run_daemon_with(wiring, tag, |_| {}).await
}

async fn run_daemon_with(
    wiring: Arc<FakeWiring>,
    tag: &str,
    settings: impl FnOnce(&mut DaemonConfig),
) -> (Result<(), RunError>, Arc<Runtime>) {
    let (dir, mut daemon, connector) = config_dir(tag);
    settings(&mut daemon);
    let (_shutdown_tx, shutdown_rx) = watch::channel(false);
    let runtime = Runtime::new(daemon, wiring, shutdown_rx);
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        run(runtime.clone(), vec![connector]),
    )
    .await
    .expect("the daemon ends by itself");
    let _ = std::fs::remove_dir_all(dir);
    (result, runtime)
}

fn stored(wiring: &FakeWiring) -> Option<SourcePosition> {
    wiring.offsets.load("c").unwrap()
}

#[tokio::test]
async fn reordered_and_delayed_deliveries_publish_everything_in_order() {
    let wiring = Arc::new(FakeWiring::new(
        vec![Fault::Reorder(7), Fault::Delay(Duration::from_millis(1))],
        300,
    ));
    let (result, runtime) = run_daemon(wiring.clone(), "reorder").await;
    result.expect("clean finish");
    assert_eq!(ids(&wiring.broker), (1..=300).collect::<Vec<_>>());
    assert_eq!(stored(&wiring), Some(pos(300)));
    assert_eq!(runtime.status("c").unwrap().state, ConnectorState::Finished);
}

#[tokio::test]
async fn memory_between_source_and_broker_is_bounded_in_bytes_and_a_huge_row_passes_alone() {
    // Rows of 1 MiB, slow deliveries, a 4 MiB bound (and a count bound far away): the
    // source may run ahead only by what the byte budgets allow (4 MiB waiting for the
    // pipeline, 4 MiB in flight, the batch being built and the row being encoded), not by
    // `max_in_flight` rows. One row of 9 MiB, larger than both budgets, still passes.
    const MIB: usize = 1 << 20;
    let mut wiring = FakeWiring::new(vec![Fault::Delay(Duration::from_millis(20))], 60);
    wiring.row_text = MIB;
    let wiring = Arc::new(wiring);
    let (result, _) = run_daemon_with(wiring.clone(), "bytes", |d| {
        d.sink.max_in_flight = 1000;
        d.sink.max_in_flight_bytes = 4 * MIB as u64;
    })
    .await;
    result.expect("clean finish");
    assert_eq!(ids(&wiring.broker), (1..=60).collect::<Vec<_>>());
    let most = wiring.outstanding.load(std::sync::atomic::Ordering::SeqCst);
    assert!(most <= 12, "{most} rows of 1 MiB were waiting at once");
    assert!(
        most >= 4,
        "the bound is reached, so the test measures it: {most}"
    );

    let mut wiring = FakeWiring::new(vec![Fault::Delay(Duration::from_millis(5))], 3);
    wiring.row_text = 9 * MIB;
    let wiring = Arc::new(wiring);
    let (result, _) = run_daemon_with(wiring.clone(), "hugerow", |d| {
        d.sink.max_in_flight_bytes = 4 * MIB as u64;
    })
    .await;
    result.expect("clean finish");
    assert_eq!(ids(&wiring.broker), [1, 2, 3]);
    let records = wiring.broker.records();
    assert!(records[0].value.as_ref().unwrap().len() > 9 * MIB);
}

#[tokio::test]
async fn a_transient_delivery_failure_restarts_from_the_committed_position_and_loses_nothing() {
    let wiring = Arc::new(FakeWiring::new(
        vec![Fault::FailDelivery(120), Fault::Reorder(5)],
        400,
    ));
    let (result, runtime) = run_daemon(wiring.clone(), "transient").await;
    result.expect("clean finish after the retry");
    let got = ids(&wiring.broker);
    // Nothing lost: every row is there.
    let distinct: BTreeSet<u64> = got.iter().copied().collect();
    assert_eq!(distinct, (1..=400).collect::<BTreeSet<_>>(), "missing rows");
    // The failed record (row 120) was not stored by the broker: the restart re-sent it.
    // Duplicates only repeat rows after the committed position, in order, so each row's
    // last copy comes after every earlier row's first copy.
    let restart = got
        .windows(2)
        .position(|w| w[1] <= w[0])
        .map(|i| i + 1)
        .expect("a restart re-sends something");
    assert!(got[..restart]
        .windows(2)
        .all(|w| w[1] == w[0] + 1 || w[1] == w[0] + 2));
    assert!(
        got[restart] <= 120,
        "resumed at {} (after the failed row 120)",
        got[restart]
    );
    assert!(got[restart..].windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(*got.last().unwrap(), 400);
    assert_eq!(stored(&wiring), Some(pos(400)));
    let status = runtime.status("c").unwrap();
    assert_eq!(status.state, ConnectorState::Finished);
    let metrics = runtime.metrics_text();
    assert!(
        metrics.contains("sluice_reconnects_total{connector=\"c\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_transient_source_failure_restarts_from_the_committed_position() {
    let mut wiring = FakeWiring::new(vec![Fault::Delay(Duration::from_millis(1))], 250);
    wiring.source_fail_at = Some(180);
    let wiring = Arc::new(wiring);
    let (result, _) = run_daemon(wiring.clone(), "source").await;
    result.expect("clean finish after the retry");
    let got = ids(&wiring.broker);
    assert_eq!(
        got.iter().copied().collect::<BTreeSet<_>>(),
        (1..=250).collect::<BTreeSet<_>>()
    );
    // Rows before the failure were committed, so the restart does not start from zero.
    assert!(got.len() < 2 * 250, "{} records", got.len());
    assert_eq!(stored(&wiring), Some(pos(250)));
}

#[tokio::test]
async fn a_permanent_sink_failure_stops_the_connector_with_the_reason() {
    let wiring = Arc::new(FakeWiring::new(vec![Fault::RefuseFrom(61)], 200));
    let (result, runtime) = run_daemon(wiring.clone(), "permanent").await;
    let err = result.expect_err("the connector failed");
    assert!(err.to_string().contains('c'), "{err}");
    let status = runtime.status("c").unwrap();
    assert_eq!(status.state, ConnectorState::Failed);
    let message = status.error.unwrap();
    assert!(
        message.contains("refused") && message.contains("topic p.public.t"),
        "{message}"
    );
    // Only once: a definite error is not retried.
    assert_eq!(wiring.broker.sent(), 61);
    // Nothing beyond the last accepted record is committed.
    assert_eq!(ids(&wiring.broker), (1..=60).collect::<Vec<_>>());
    match stored(&wiring) {
        None => {}
        Some(p) => assert!(p <= pos(60), "committed {p}"),
    }
}

/// Settings and controls for running one pipeline straight through, without a supervisor.
/// A pipeline's parts from the fake wiring, for a run without the supervisor.
fn straight_parts(wiring: &FakeWiring, connector: &Arc<ConnectorConfig>) -> PipelineParts {
    let offsets = wiring.offsets();
    PipelineParts {
        source: wiring.source(connector, offsets.clone()),
        sink: wiring.sink(connector).unwrap(),
        offsets,
    }
}

fn straight_run(
    stop: watch::Receiver<bool>,
    paused: watch::Receiver<bool>,
) -> (PipelineSettings, pipeline::RunControl) {
    let observer = crate::status::Observer {
        connector: "c".into(),
        status: Arc::new(std::sync::Mutex::new(ConnectorStatus::new("c", "c.toml"))),
        metrics: Arc::new(Metrics::new()),
        signals: Default::default(),
    };
    let settings = PipelineSettings {
        offset_flush_interval: Duration::from_millis(5),
        max_in_flight: 1000,
        max_in_flight_bytes: 64 << 20,
        stop_grace: Duration::from_millis(300),
        transaction: Default::default(),
    };
    let control = pipeline::RunControl {
        stop,
        paused,
        observer,
    };
    (settings, control)
}

#[tokio::test]
async fn run_once_commits_only_what_is_durable() {
    // Straight through the pipeline, no supervisor: the delivery of row 30 fails, so the
    // committed position stays below it even though later rows were accepted.
    let (dir, _daemon, connector) = config_dir("once");
    let wiring = FakeWiring::new(vec![Fault::FailDelivery(30)], 100);
    let connector = Arc::new(connector);
    let parts = straight_parts(&wiring, &connector);
    let (_stop_tx, stop) = watch::channel(false);
    let (_paused_tx, paused) = watch::channel(false);
    let (settings, control) = straight_run(stop, paused);
    let err = pipeline::run_once(&connector, settings, parts, control)
        .await
        .expect_err("the failed delivery ends the run");
    assert_eq!(failure::action(&err), Action::RetryWithBackoff, "{err}");
    let committed = stored(&wiring).expect("rows before 30 were committed");
    assert!(committed <= pos(29), "committed {committed}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_pause_controller_gone_does_not_stall_the_pipeline() {
    // The connector's handle (which holds the pause sender) is dropped while its pipeline
    // still runs, as when a connector is being stopped: the pipeline must go on reading,
    // delivering and committing (it used to spin on the closed channel and never reach
    // those branches, so a stop or SIGTERM waited forever).
    let (dir, _daemon, connector) = config_dir("pausegone");
    let wiring = FakeWiring::new(vec![], 500);
    let connector = Arc::new(connector);
    let parts = straight_parts(&wiring, &connector);
    let (_stop_tx, stop) = watch::channel(false);
    let (paused_tx, paused) = watch::channel(false);
    drop(paused_tx);
    let (settings, control) = straight_run(stop, paused);
    tokio::time::timeout(
        Duration::from_secs(30),
        pipeline::run_once(&connector, settings, parts, control),
    )
    .await
    .expect("the pipeline finishes")
    .expect("and succeeds");
    assert_eq!(stored(&wiring), Some(pos(500)));
    assert_eq!(ids(&wiring.broker), (1..=500).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_panic_in_the_pipeline_fails_the_connector_visibly() {
    let wiring = Arc::new(FakeWiring::new(vec![Fault::Panic(40)], 100));
    let (result, runtime) = run_daemon(wiring.clone(), "sinkpanic").await;
    assert!(result.is_err(), "the daemon reports the failed connector");
    let status = runtime.status("c").unwrap();
    assert_eq!(status.state, ConnectorState::Failed);
    let error = status.error.unwrap();
    assert!(
        error.contains("panicked") && error.contains("record 40"),
        "{error}"
    );
    assert!(!runtime.ready());
    assert_eq!(ids(&wiring.broker), (1..=39).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_panic_in_the_source_fails_the_connector_visibly_without_retrying() {
    let mut wiring = FakeWiring::new(vec![], 100);
    wiring.source_panic_at = Some(30);
    let wiring = Arc::new(wiring);
    let (result, runtime) = run_daemon(wiring.clone(), "sourcepanic").await;
    assert!(result.is_err());
    let status = runtime.status("c").unwrap();
    assert_eq!(status.state, ConnectorState::Failed);
    assert!(
        status
            .error
            .as_deref()
            .unwrap()
            .contains("scripted source panics at row 30"),
        "{status:?}"
    );
    assert!(!runtime.ready());
    let metrics = runtime.metrics_text();
    assert!(
        !metrics.contains("sluice_reconnects_total{connector=\"c\"} 1"),
        "not retried"
    );
}

/// A broker away: the producer's queue is full (a send never completes) or deliveries are
/// never acknowledged. A stop must not wait message.timeout.ms (300 s) for them: it ends
/// within the stop grace, commits only what was acknowledged, and what was not is read
/// again at the next start.
#[tokio::test]
async fn a_stop_does_not_wait_for_a_broker_that_is_away() {
    for (label, fault, acknowledged) in [
        ("queue full", Fault::Stall(40), 39),
        (
            "never acknowledged",
            Fault::Delay(Duration::from_secs(3600)),
            0,
        ),
    ] {
        let (dir, _daemon, connector) = config_dir("away");
        let wiring = FakeWiring::new(vec![fault], 1000);
        let connector = Arc::new(connector);
        let parts = straight_parts(&wiring, &connector);
        let (stop_tx, stop) = watch::channel(false);
        let (_paused_tx, paused) = watch::channel(false);
        let (settings, control) = straight_run(stop, paused);
        let run = tokio::spawn({
            let connector = connector.clone();
            async move { pipeline::run_once(&connector, settings, parts, control).await }
        });
        // Let it reach the stall.
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop_tx.send(true).unwrap();
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(20), run)
            .await
            .unwrap_or_else(|_| panic!("{label}: the stop waited for the broker"))
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5), "{label}");
        let err = outcome.expect_err(label);
        assert!(err.to_string().contains("sent again"), "{label}: {err}");
        match acknowledged {
            0 => assert_eq!(stored(&wiring), None, "{label}"),
            n => assert_eq!(stored(&wiring), Some(pos(n)), "{label}"),
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A panic in the daemon's own loop (a defect) stops the connectors the orderly way —
/// in flight drained, acknowledged position committed — before the daemon ends with an
/// error, instead of the process dying with positions uncommitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_defect_in_the_daemon_loop_stops_connectors_cleanly() {
    let wiring = Arc::new(FakeWiring::new(
        vec![Fault::Delay(Duration::from_millis(2))],
        u64::MAX / 2,
    ));
    let (dir, daemon, connector) = config_dir("loopdefect");
    let (_shutdown_tx, shutdown_rx) = watch::channel(false);
    let runtime = Runtime::new(daemon, wiring.clone(), shutdown_rx);
    let running = tokio::spawn(run(runtime.clone(), vec![connector]));
    // Streaming, then the next rescan of the folder panics.
    while wiring.broker.resolved() < 200 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runtime
        .defect_in_rescan
        .store(true, std::sync::atomic::Ordering::SeqCst);
    std::fs::write(
        dir.join("connectors").join("c.toml"),
        std::fs::read_to_string(dir.join("connectors").join("c.toml")).unwrap() + "# touched\n",
    )
    .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .expect("the daemon ends")
        .expect("its task returns (the panic is caught)");
    match result {
        Err(RunError::Panicked(message)) => assert!(message.contains("defect"), "{message}"),
        other => panic!("{other:?}"),
    }
    let delivered = ids(&wiring.broker);
    let last = *delivered.last().unwrap();
    assert_eq!(
        stored(&wiring),
        Some(pos(last)),
        "everything delivered is committed"
    );
    assert_eq!(
        runtime.status("c").map(|s| s.state),
        Some(ConnectorState::Stopped)
    );
    let _ = std::fs::remove_dir_all(dir);
}
