//! The Kafka offset store: positions in a compacted topic in Kafka Connect's format (key
//! bytes, partition, Debezium's offset fields), a daemon on an empty disk resuming exactly
//! where it was, and positions exported from the Kafka store, imported into a file store and
//! resumed from without loss.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

const PARTITIONS: i32 = 5;

/// Switches a daemon folder's configuration to the Kafka store on `topic`.
fn use_kafka_store(daemon: &Daemon, topic: &str) {
    let path = daemon.dir.join("config/sluice.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "store = \"file\"",
        &format!(
            "store = \"kafka\"\ntopic = \"{topic}\"\ntopic_partitions = {PARTITIONS}\ntopic_replication_factor = 1"
        ),
    );
    std::fs::write(path, text).unwrap();
}

/// Every record of the offsets topic: (partition, key, value).
fn offsets_records(topic: &str) -> Vec<(i32, Vec<u8>, Option<Value>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique("offsets-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let mut quiet_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    while quiet_since.elapsed() < Duration::from_millis(1500) && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push((
                m.partition(),
                m.key().unwrap_or_default().to_vec(),
                m.payload().map(|p| serde_json::from_slice(p).unwrap()),
            ));
            quiet_since = Instant::now();
        }
    }
    out
}

/// The last value stored for a connector's key.
fn last_offset(topic: &str, key: &[u8]) -> Option<Value> {
    offsets_records(topic)
        .into_iter()
        .rfind(|(_, k, _)| k == key)
        .and_then(|(_, _, v)| v)
}

fn ops(msgs: &[Msg]) -> Vec<(String, i64)> {
    msgs.iter()
        .map(|m| {
            let p = payload(m.value.as_ref().unwrap());
            (
                p["op"].as_str().unwrap().to_string(),
                p["after"]["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Starts a PostgreSQL connector on the Kafka store: one snapshot row, two streamed ones,
/// stopped cleanly. Returns (db, daemon, connector name, offsets topic, data topic).
async fn three_rows_on_the_kafka_store(prefix: &str) -> (TestDb, Daemon, String, String, String) {
    let db = TestDb::new(prefix).await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a');")
        .await;
    let name = unique(prefix);
    let offsets_topic = unique("sluice-offsets");
    let mut daemon = Daemon::single(&name, &db, &["public.t"], "");
    use_kafka_store(&daemon, &offsets_topic);
    daemon.start();
    let topic = format!("{name}.public.t");
    assert_eq!(
        read_topic(&topic, 1, Duration::from_secs(60)).len(),
        1,
        "logs:\n{}",
        daemon.logs()
    );
    db.exec("INSERT INTO t VALUES (2, 'b'); INSERT INTO t VALUES (3, 'c');")
        .await;
    assert_eq!(read_topic(&topic, 3, Duration::from_secs(60)).len(), 3);
    // The streamed transactions' position reaches the topic (txId is set from a commit on).
    let key = sluice::offsets::connect::key(&name, &name);
    let deadline = Instant::now() + Duration::from_secs(30);
    while last_offset(&offsets_topic, &key).is_none_or(|v| v.get("txId").is_none()) {
        assert!(Instant::now() < deadline, "logs:\n{}", daemon.logs());
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(daemon.stop().success(), "logs:\n{}", daemon.logs());
    (db, daemon, name, offsets_topic, topic)
}

#[tokio::test(flavor = "multi_thread")]
async fn positions_live_in_connects_format_and_survive_an_empty_disk() {
    let (db, mut daemon, name, offsets_topic, topic) = three_rows_on_the_kafka_store("kofs").await;
    let records = offsets_records(&offsets_topic);
    let key = format!(r#"["{name}",{{"server":"{name}"}}]"#).into_bytes();
    let ours: Vec<&(i32, Vec<u8>, Option<Value>)> =
        records.iter().filter(|(_, k, _)| *k == key).collect();
    assert!(!ours.is_empty(), "records: {records:?}");
    // The partition Kafka Connect's producer picks for the key (murmur2, checked against
    // independent vectors in the unit tests).
    let partition = sluice::offsets::connect::partition(&key, PARTITIONS);
    assert!(ours.iter().all(|(p, _, _)| *p == partition));
    let value = ours.last().unwrap().2.clone().unwrap();
    // Debezium's fields at a transaction boundary: lsn, lsn_proc and lsn_commit are the
    // commit's end, which is also where the slot is confirmed.
    let lsn = value["lsn"].as_i64().unwrap();
    assert_eq!(value["lsn_proc"].as_i64(), Some(lsn), "{value}");
    assert_eq!(value["lsn_commit"].as_i64(), Some(lsn), "{value}");
    assert!(value["txId"].as_i64().unwrap() > 0, "{value}");
    assert!(
        value["ts_usec"].as_i64().unwrap() > 1_600_000_000_000_000,
        "{value}"
    );
    assert!(value.get("snapshot").is_none(), "{value}");
    assert_eq!(db.confirmed_flush(&name).await, Some(lsn as u64));

    // The daemon's disk is gone: the position comes from the topic.
    std::fs::remove_dir_all(daemon.dir.join("data")).ok();
    let (status, out, err) =
        daemon.run_command(&["offsets", "show", "--config", "config/sluice.toml"]);
    assert!(status.success(), "{err}");
    assert!(
        out.contains(&name) && out.contains("postgres resume_lsn="),
        "{out}"
    );
    daemon.start();
    db.exec("INSERT INTO t VALUES (4, 'd')").await;
    let all = read_topic(&topic, 4, Duration::from_secs(60));
    assert_eq!(
        ops(&all),
        [
            ("r".to_string(), 1),
            ("c".to_string(), 2),
            ("c".to_string(), 3),
            ("c".to_string(), 4)
        ],
        "no second snapshot, nothing lost or repeated; logs:\n{}",
        daemon.logs()
    );
    assert!(daemon.stop().success());
    // A reset of a connector no file names: refused (its key's topic prefix is unknown),
    // not reported as done.
    let (status, _, err) = daemon.run_command(&[
        "offsets",
        "reset",
        "--config",
        "config/sluice.toml",
        "nobody",
    ]);
    assert!(
        !status.success() && err.contains("no valid connector file"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn export_from_kafka_import_into_files_and_resume() {
    let (db, mut daemon, name, _offsets_topic, topic) = three_rows_on_the_kafka_store("kexp").await;
    let (status, _, err) = daemon.run_command(&[
        "offsets",
        "export",
        "--config",
        "config/sluice.toml",
        "--format",
        "debezium",
        "--output",
        "exported.jsonl",
    ]);
    assert!(status.success(), "{err}");
    let text = std::fs::read_to_string(daemon.dir.join("exported.jsonl")).unwrap();
    let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["connector"], name.as_str());
    assert_eq!(line["partition"]["server"], name.as_str());
    assert!(line["offset"]["lsn"].as_i64().is_some(), "{line}");

    // Back to the file store: import, then resume from the imported position.
    let path = daemon.dir.join("config/sluice.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    let start = config.find("store = \"kafka\"").unwrap();
    let end = config[start..].find("[sink]").unwrap() + start;
    let file_store = config[..start].to_string()
        + "store = \"file\"\npath = \"../data/offsets\"\n"
        + &config[end..];
    std::fs::write(&path, file_store).unwrap();
    let (status, out, err) = daemon.run_command(&[
        "offsets",
        "import",
        "--config",
        "config/sluice.toml",
        "--input",
        "exported.jsonl",
    ]);
    assert!(status.success(), "{err}");
    assert!(out.contains(&name), "{out}");
    let stored = daemon
        .offset(&name)
        .expect("the imported position is in the file store");
    assert_eq!(
        stored["position"]["resume_lsn"].as_i64(),
        line["offset"]["lsn"].as_i64()
    );
    daemon.start();
    db.exec("INSERT INTO t VALUES (4, 'd')").await;
    let all = read_topic(&topic, 4, Duration::from_secs(60));
    assert_eq!(
        ops(&all).last(),
        Some(&("c".to_string(), 4)),
        "logs:\n{}",
        daemon.logs()
    );
    assert_eq!(all.len(), 4, "no second snapshot, nothing repeated");
    // Positions are not changed under a running daemon.
    let (status, _, err) =
        daemon.run_command(&["offsets", "reset", "--config", "config/sluice.toml", &name]);
    assert!(!status.success());
    assert!(err.contains("stop the daemon"), "{err}");
    assert!(daemon.stop().success());
    let (status, _, err) =
        daemon.run_command(&["offsets", "reset", "--config", "config/sluice.toml", &name]);
    assert!(status.success(), "{err}");
    // Forgotten: only the record of the slot is kept (so the next start can prove the slot
    // is its own and take a new snapshot).
    let kept = daemon.offset(&name).expect("the slot's record");
    assert_eq!(kept["position"]["resume_lsn"], 0, "{kept}");
    assert_eq!(kept["position"]["snapshot"], "in_progress", "{kept}");
    assert!(kept["position"]["slot"]["database_oid"].is_u64(), "{kept}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kafka_store_keeps_the_offset_store_contract() {
    use sluice::offsets::{KafkaOffsetStore, KafkaStoreSettings, OffsetStore};
    let settings = KafkaStoreSettings {
        servers: brokers(),
        properties: Default::default(),
        topic: unique("sluice-offsets-contract"),
        partitions: PARTITIONS,
        replication: 1,
        verify_transactions: false,
    };
    let store = KafkaOffsetStore::open(settings.clone()).await.unwrap();
    tokio::task::spawn_blocking(move || sluice::testing::offset_store_contract(&store))
        .await
        .unwrap();
    // Durable: a new store on the same topic reads what the first one committed.
    let again = KafkaOffsetStore::open(settings).await.unwrap();
    let a = tokio::task::spawn_blocking(move || again.load("a").unwrap())
        .await
        .unwrap();
    assert_eq!(a, Some(sluice::testing::pg_position(6)));
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_positions_carry_debeziums_fields() {
    let mut db = common::mysql::MyDb::new("kmy").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY)").await;
    let name = unique("kmy");
    let offsets_topic = unique("sluice-offsets");
    let mut daemon = common::mysql::my_daemon(&name, &db, &["t"], "");
    use_kafka_store(&daemon, &offsets_topic);
    daemon.start();
    let topic = format!("{name}.{}.t", db.name);
    let key = sluice::offsets::connect::key(&name, &name);
    let deadline = Instant::now() + Duration::from_secs(60);
    while last_offset(&offsets_topic, &key).is_none() {
        assert!(Instant::now() < deadline, "logs:\n{}", daemon.logs());
        std::thread::sleep(Duration::from_millis(300));
    }
    db.exec("INSERT INTO t VALUES (1)").await;
    assert_eq!(read_topic(&topic, 1, Duration::from_secs(60)).len(), 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    let value = loop {
        let v = last_offset(&offsets_topic, &key).unwrap();
        if v.get("server_id").is_some() {
            break v;
        }
        assert!(Instant::now() < deadline, "{v}; logs:\n{}", daemon.logs());
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(daemon.stop().success());
    let server_id: u32 = {
        use mysql_async::prelude::Queryable;
        let mut c = db.connect().await;
        c.query_first("SELECT @@server_id").await.unwrap().unwrap()
    };
    // Debezium's offset after a committed transaction: the next one's start, nothing to skip.
    assert!(value["file"].as_str().unwrap().contains('.'), "{value}");
    assert!(value["pos"].as_u64().unwrap() > 4, "{value}");
    assert!(
        value["gtids"].as_str().is_some_and(|g| !g.is_empty()),
        "{value}"
    );
    assert_eq!(
        (value["event"].as_i64(), value["row"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        value["server_id"].as_u64(),
        Some(u64::from(server_id)),
        "{value}"
    );
    assert!(value["ts_sec"].as_i64().unwrap() > 1_600_000_000, "{value}");
    assert!(value.get("snapshot").is_none(), "{value}");
}
