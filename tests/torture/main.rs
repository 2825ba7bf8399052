//! The torture suite (see `harness.rs`): a fixed, seeded slice of source × offsets store ×
//! what runs × key kind × faults in the test suite; `scripts/torture` runs the long,
//! randomised version (`long_run`, ignored here).

#[path = "../common/mod.rs"]
mod common;
mod harness;
mod proxy;

use harness::{FaultKind as F, Key, Run, Scenario, Src, Store};

/// Seconds the workload writes in each scenario of the slice.
const SLICE_SECONDS: u64 = 12;

async fn slice(seed: u64, src: Src, store: Store, run: Run, key: Key, faults: &[F]) {
    let sc = Scenario::with_faults(seed, src, store, run, key, faults, SLICE_SECONDS);
    harness::run(&sc).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_kafka_incremental_bytea_kill_and_db_cut() {
    slice(
        101,
        Src::Pg,
        Store::Kafka,
        Run::Incremental,
        Key::Bytes,
        &[F::Kill9, F::DbCut],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn my_file_incremental_binary16_kill() {
    slice(
        102,
        Src::My,
        Store::File,
        Run::Incremental,
        Key::Uuid,
        &[F::Kill9],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn my_kafka_resumed_text_ci_freeze() {
    slice(
        103,
        Src::My,
        Store::Kafka,
        Run::Resumed,
        Key::TextCi,
        &[F::Kill9, F::Freeze],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_file_resumed_uuid_edit_file() {
    slice(
        104,
        Src::Pg,
        Store::File,
        Run::Resumed,
        Key::Uuid,
        &[F::Kill9, F::EditFile],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_kafka_initial_composite_stop_resume() {
    slice(
        105,
        Src::Pg,
        Store::Kafka,
        Run::Initial,
        Key::Composite,
        &[F::StopResume],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn my_kafka_streaming_extreme_db_cut_kill() {
    slice(
        106,
        Src::My,
        Store::Kafka,
        Run::Streaming,
        Key::Extreme,
        &[F::DbCut, F::Kill9],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_file_streaming_text_ci_freeze_edit() {
    slice(
        107,
        Src::Pg,
        Store::File,
        Run::Streaming,
        Key::TextCi,
        &[F::Freeze, F::EditFile],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn my_file_initial_varbinary_stop_resume_db_cut() {
    slice(
        108,
        Src::My,
        Store::File,
        Run::Initial,
        Key::Bytes,
        &[F::StopResume, F::DbCut],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_kafka_incremental_extreme_edit_file() {
    slice(
        109,
        Src::Pg,
        Store::Kafka,
        Run::Incremental,
        Key::Extreme,
        &[F::EditFile],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn my_kafka_incremental_composite_stop_resume() {
    slice(
        110,
        Src::My,
        Store::Kafka,
        Run::Incremental,
        Key::Composite,
        &[F::StopResume],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_kafka_streaming_int_broker_cut() {
    slice(
        111,
        Src::Pg,
        Store::Kafka,
        Run::Streaming,
        Key::Int,
        &[F::BrokerCut, F::Kill9],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn my_file_incremental_text_ci_broker_cut() {
    slice(
        112,
        Src::My,
        Store::File,
        Run::Incremental,
        Key::TextCi,
        &[F::BrokerCut],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_cluster_incremental_uuid_kill_and_rebalance() {
    slice(
        113,
        Src::Pg,
        Store::Cluster,
        Run::Incremental,
        Key::Uuid,
        &[F::Kill9, F::Rebalance],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn my_cluster_resumed_int_freeze_past_session() {
    slice(
        114,
        Src::My,
        Store::Cluster,
        Run::Resumed,
        Key::Int,
        &[F::Kill9, F::Freeze],
    )
    .await;
}

/// The long run: scenarios drawn from consecutive seeds until the time is up.
/// `TORTURE_SEED` (first seed), `TORTURE_MINUTES`, `TORTURE_AXES`
/// (`source=pg;store=kafka;run=incremental;key=bytes,uuid;fault=kill9`), `TORTURE_SECONDS`
/// (workload per scenario), `TORTURE_ONCE=1` (only the first seed).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "long: run by scripts/torture"]
async fn long_run() {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let first: u64 = env("TORTURE_SEED").map_or_else(
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                % 1_000_000
        },
        |s| s.parse().expect("TORTURE_SEED is a number"),
    );
    let minutes: f64 = env("TORTURE_MINUTES").map_or(10.0, |m| m.parse().expect("minutes"));
    let seconds: u64 = env("TORTURE_SECONDS").map_or(20, |m| m.parse().expect("seconds"));
    let once = env("TORTURE_ONCE").is_some();
    let axes =
        env("TORTURE_AXES").map_or_else(harness::Axes::default, |a| harness::Axes::parse(&a));
    eprintln!("torture: first seed {first}, {minutes} minutes, axes {axes:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(minutes * 60.0);
    let mut combos = std::collections::BTreeSet::new();
    let mut faults: std::collections::BTreeMap<String, usize> = Default::default();
    let (mut scenarios, mut records, mut writes, mut duplicates) = (0, 0, 0, 0);
    let mut seed = first;
    let mut failures: Vec<String> = Vec::new();
    loop {
        let sc = Scenario::from_seed(seed, &axes, seconds);
        // A failing scenario is reported and the run goes on (the summary lists them all).
        let run = {
            let sc = sc.clone();
            tokio::spawn(async move { harness::run(&sc).await })
        };
        let out = match run.await {
            Ok(out) => out,
            Err(e) => {
                let why = e
                    .try_into_panic()
                    .ok()
                    .and_then(|p| {
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    })
                    .unwrap_or_default();
                eprintln!("torture: FAILED {}\n{why}", sc.label());
                failures.push(sc.label());
                seed += 1;
                if once || std::time::Instant::now() > deadline {
                    break;
                }
                continue;
            }
        };
        scenarios += 1;
        records += out.records;
        writes += out.writes;
        duplicates += out.duplicates;
        combos.insert(format!(
            "{:?}/{:?}/{:?}/{:?}",
            sc.src, sc.store, sc.run, sc.key
        ));
        for f in &sc.faults {
            *faults.entry(format!("{:?}", f.kind)).or_default() += 1;
        }
        seed += 1;
        if once || std::time::Instant::now() > deadline {
            break;
        }
    }
    eprintln!(
        "torture summary: seeds {first}..{}, {scenarios} scenarios passed, {} failed, {} distinct \
         combinations (source/store/run/key), faults {faults:?}, {writes} writes, {records} \
         records checked, {duplicates} redelivered",
        seed - 1,
        failures.len(),
        combos.len()
    );
    assert!(
        failures.is_empty(),
        "failed scenarios:\n{}",
        failures.join("\n")
    );
}
