//! A small Kafka consumer for the demo and for looking at topics by hand:
//! prints every record of the given topics (partition 0..N) from the beginning as one JSON
//! line `{"topic","partition","offset","key","value"}`, then exits after `--idle-ms` without
//! new records.
//!
//! `cargo run --example consume -- --brokers 127.0.0.1:19092 TOPIC [TOPIC...]`

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut brokers = "127.0.0.1:19092".to_string();
    let mut idle = Duration::from_millis(3000);
    let mut count_only = false;
    let mut topics = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--brokers" => brokers = args.next().expect("--brokers needs a value"),
            "--idle-ms" => {
                idle = Duration::from_millis(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .expect("--idle-ms needs a number"),
                )
            }
            "--count" => count_only = true,
            "-h" | "--help" => {
                eprintln!("usage: consume [--brokers host:port] [--idle-ms N] [--count] TOPIC...");
                return;
            }
            t => topics.push(t.to_string()),
        }
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("sluice-consume-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("broker metadata");
    let mut tpl = TopicPartitionList::new();
    for t in &topics {
        let Some(topic) = md.topics().iter().find(|m| m.name() == t) else {
            eprintln!("topic {t} does not exist (yet)");
            continue;
        };
        for p in topic.partitions() {
            tpl.add_partition_offset(t, p.id(), Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&tpl).expect("assign");
    let mut last = Instant::now();
    let mut n = 0u64;
    let text = |b: Option<&[u8]>| -> serde_json::Value {
        match b {
            None => serde_json::Value::Null,
            Some(b) => serde_json::from_slice(b).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(b).into_owned())
            }),
        }
    };
    while last.elapsed() < idle {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            last = Instant::now();
            n += 1;
            if !count_only {
                println!(
                    "{}",
                    serde_json::json!({"topic": m.topic(), "partition": m.partition(), "offset": m.offset(), "key": text(m.key()), "value": text(m.payload())})
                );
            }
        }
    }
    if count_only {
        println!("{n}");
    }
}
