//! `[[route]]` (Debezium's topic routing, `ByLogicalTableRouter`): sharded tables to one
//! topic, keys made unique with `__dbz__physicalTableIdentifier` (or a field computed from the
//! table's default topic), schemas named after the topic; PostgreSQL in JSON and Avro, MariaDB
//! without key uniqueness. Expected values written from Debezium's documentation.

mod common;

use std::time::Duration;

use common::mysql::*;
use common::registry::{avro_format, decode, raw, Registry};
use common::*;
use serde_json::{json, Value};

fn route(prefix: &str) -> String {
    format!(
        "[[route]]\nregex = '{prefix}\\.public\\.orders_\\d+'\nreplacement = '{prefix}.public.orders'\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_shards_go_to_one_topic_with_unique_keys_in_json_and_avro() {
    let registry = Registry::start().await;
    let db = TestDb::new("route").await;
    db.exec(
        "CREATE TABLE orders_1 (id int PRIMARY KEY, total int);
         CREATE TABLE orders_2 (id int PRIMARY KEY, total int);
         CREATE TABLE customers (id int PRIMARY KEY);
         INSERT INTO orders_1 VALUES (1, 10);
         INSERT INTO orders_2 VALUES (1, 20);",
    )
    .await;
    let json_name = unique("routej");
    let avro_name = unique("routea");
    let tables = ["public.orders_1", "public.orders_2", "public.customers"];
    let mut daemon = Daemon::new(
        "",
        &[
            (
                "j.toml",
                pg_connector(&json_name, &json_name, &db, &tables, &route(&json_name)),
            ),
            (
                "a.toml",
                pg_connector(&avro_name, &avro_name, &db, &tables, &route(&avro_name))
                    + &avro_format(&registry)
                    + "key = \"avro\"\n",
            ),
        ],
    );
    daemon.start();
    let topic = format!("{json_name}.public.orders");
    let msgs = read_topic(&topic, 2, Duration::from_secs(60));
    assert_eq!(msgs.len(), 2, "logs:\n{}", daemon.logs());
    db.exec("UPDATE orders_2 SET total = 21 WHERE id = 1; INSERT INTO customers VALUES (5);")
        .await;
    let msgs = read_topic(&topic, 3, Duration::from_secs(60));
    let keys: Vec<Value> = msgs
        .iter()
        .map(|m| payload(m.key.as_ref().unwrap()).clone())
        .collect();
    // Snapshot order is table by table; both rows with id 1 keep distinct keys.
    let mut snapshot_keys = keys[..2].to_vec();
    snapshot_keys.sort_by_key(|k| k.to_string());
    let shard = |n: u32| json!({"id": 1, "__dbz__physicalTableIdentifier": format!("{json_name}.public.orders_{n}")});
    assert_eq!(snapshot_keys, vec![shard(1), shard(2)]);
    assert_eq!(keys[2], shard(2));
    let value = msgs[2].value.as_ref().unwrap();
    assert_eq!(payload(value)["after"], json!({"id": 1, "total": 21}));
    assert_eq!(payload(value)["source"]["table"], "orders_2");
    // Schema names follow the topic; the row struct keeps its table's name.
    assert_eq!(value["schema"]["name"], format!("{topic}.Envelope"));
    assert_eq!(
        value["schema"]["fields"][1]["name"],
        format!("{json_name}.public.orders_2.Value")
    );
    assert_eq!(
        msgs[2].key.as_ref().unwrap()["schema"]["name"],
        format!("{topic}.Key")
    );
    // A table no route matches keeps its topic and key.
    let other = read_topic(
        &format!("{json_name}.public.customers"),
        1,
        Duration::from_secs(60),
    );
    assert_eq!(payload(other[0].key.as_ref().unwrap()), &json!({"id": 5}));

    // Avro: keys and values registered under the routed topic's subjects, read by fastavro.
    let avro_topic = format!("{avro_name}.public.orders");
    let records = raw(&avro_topic, 3).await;
    assert_eq!(records.len(), 3, "logs:\n{}", daemon.logs());
    let keys = decode(
        &registry,
        &records
            .iter()
            .map(|m| m.key.clone().unwrap())
            .collect::<Vec<_>>(),
    )
    .await;
    let mut ids: Vec<String> = keys
        .iter()
        .map(|(_, k)| {
            assert_eq!(k["id"], 1);
            k["__dbz__physicalTableIdentifier"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            format!("{avro_name}.public.orders_1"),
            format!("{avro_name}.public.orders_2"),
            format!("{avro_name}.public.orders_2")
        ]
    );
    assert!(!registry.versions(&format!("{avro_topic}-key")).is_empty());
    assert!(!registry.versions(&format!("{avro_topic}-value")).is_empty());
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_route_without_key_uniqueness_and_with_a_computed_key_field() {
    let mut db = MyDb::new("myroute").await;
    db.exec(
        "CREATE TABLE parts_1 (id INT PRIMARY KEY); CREATE TABLE parts_2 (id INT PRIMARY KEY);
         CREATE TABLE logs_1 (id INT PRIMARY KEY);
         INSERT INTO parts_1 VALUES (1); INSERT INTO parts_2 VALUES (2); INSERT INTO logs_1 VALUES (3)",
    )
    .await;
    let name = unique("myroute");
    let dbname = db.name.clone();
    let extra = format!(
        "[[route]]\nregex = '{name}\\.{dbname}\\.parts_\\d+'\nreplacement = '{name}.parts'\nkey_enforce_uniqueness = false\n\
         [[route]]\nregex = '{name}\\.{dbname}\\.logs_(\\d+)'\nreplacement = '{name}.logs'\nkey_field_name = 'shard'\n\
         key_field_regex = '.*_(\\d+)'\nkey_field_replacement = 'shard-$1'\n"
    );
    let mut daemon = my_daemon(&name, &db, &["parts_1", "parts_2", "logs_1"], &extra);
    daemon.start();
    let parts = read_topic(&format!("{name}.parts"), 2, Duration::from_secs(60));
    assert_eq!(parts.len(), 2, "logs:\n{}", daemon.logs());
    let mut keys: Vec<Value> = parts
        .iter()
        .map(|m| payload(m.key.as_ref().unwrap()).clone())
        .collect();
    keys.sort_by_key(|k| k.to_string());
    assert_eq!(keys, vec![json!({"id": 1}), json!({"id": 2})]);
    db.exec("INSERT INTO logs_1 VALUES (4)").await;
    let logs = read_topic(&format!("{name}.logs"), 2, Duration::from_secs(60));
    let keys: Vec<Value> = logs
        .iter()
        .map(|m| payload(m.key.as_ref().unwrap()).clone())
        .collect();
    assert_eq!(
        keys,
        vec![
            json!({"id": 3, "shard": "shard-1"}),
            json!({"id": 4, "shard": "shard-1"})
        ]
    );
    assert!(daemon.stop().success());
}

#[test]
fn validate_names_a_bad_route() {
    let text = validate_bad_file(
        "[[route]]\nregex = 'bad\\.public\\.(.*)_\\d+'\nreplacement = 'bad.$2'",
        "",
    );
    assert!(text.contains("route[0].replacement"), "{text}");
    assert!(
        text.contains("uses group $2, but the regex has 1 group(s)"),
        "{text}"
    );
}
