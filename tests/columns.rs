//! `[columns]` and `key_columns` (Debezium's `column.exclude.list`,
//! `column.mask.hash.SHA-256.with.salt.<salt>`, `column.mask.with.<n>.chars`,
//! `column.truncate.to.<n>.chars` and `message.key.columns`) on PostgreSQL and MariaDB, in the
//! snapshot and the stream, JSON and Avro; values computed by hand from Debezium's
//! documentation (the hash is Debezium's own test vector for salt `salt`: SHA-256 of the salt
//! and the Java-serialized string, hex, cut to the column's declared length).

mod common;

use std::time::Duration;

use common::mysql::*;
use common::registry::{avro_format, decode_values, raw, Registry};
use common::*;
use serde_json::{json, Value};

const COLUMNS: &str = r#"
[columns]
exclude = ["re:.*\\.ssn"]
mask_hash = { "TABLE.email" = { algorithm = "SHA-256", salt = "salt" } }
mask_with_chars = { "TABLE.card" = 4 }
truncate_to = { "TABLE.note" = 3 }
"#;

/// `hello` hashed as Debezium does with salt `salt`, cut to `varchar(20)`.
const HELLO_HASH_20: &str = "af5843a0f0e728ab0332";

fn settings(table: &str) -> String {
    format!(
        "key_columns = {{ \"{table}\" = [\"tenant\", \"id\"] }}\n{}",
        COLUMNS.replace("TABLE", table)
    )
}

fn expected(id: i64) -> Value {
    json!({"id": id, "tenant": 7, "email": HELLO_HASH_20, "card": "****", "note": "Žlu"})
}

fn check(msgs: &[Msg], what: &str) {
    assert_eq!(msgs.len(), 2, "{what}");
    for (m, id) in msgs.iter().zip([1, 2]) {
        let v = m.value.as_ref().unwrap();
        assert_eq!(payload(v)["after"], expected(id), "{what}");
        // The key is the configured columns, in their order.
        let key = m.key.as_ref().unwrap();
        assert_eq!(payload(key), &json!({"tenant": 7, "id": id}), "{what}");
        let fields: Vec<&str> = key["schema"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["tenant", "id"], "{what}");
        // The excluded column is in no schema.
        assert!(!v["schema"].to_string().contains("\"ssn\""), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_columns_excluded_masked_truncated_and_keyed_in_json_and_avro() {
    let registry = Registry::start().await;
    let db = TestDb::new("cols").await;
    db.exec(
        "CREATE TABLE customers (id int PRIMARY KEY, tenant int, email varchar(20), ssn text, card text, note text);
         INSERT INTO customers VALUES (1, 7, 'hello', '123-45-6789', '4111111111111111', 'Žluťoučký');",
    )
    .await;
    let json_name = unique("colj");
    let avro_name = unique("cola");
    let extra = settings("public.customers");
    let mut daemon = Daemon::new(
        "",
        &[
            (
                "j.toml",
                pg_connector(&json_name, &json_name, &db, &["public.customers"], &extra),
            ),
            (
                "a.toml",
                pg_connector(&avro_name, &avro_name, &db, &["public.customers"], &extra)
                    + &avro_format(&registry),
            ),
        ],
    );
    daemon.start();
    let topic = format!("{json_name}.public.customers");
    assert_eq!(
        read_topic(&topic, 1, Duration::from_secs(60)).len(),
        1,
        "logs:\n{}",
        daemon.logs()
    );
    let avro_topic = format!("{avro_name}.public.customers");
    assert_eq!(
        raw(&avro_topic, 1).await.len(),
        1,
        "logs:\n{}",
        daemon.logs()
    );
    db.exec("INSERT INTO customers VALUES (2, 7, 'hello', '987-65-4321', '5500000000000004', 'Žluťoučký')")
        .await;
    check(
        &read_topic(&topic, 2, Duration::from_secs(60)),
        "postgres json",
    );
    let msgs = raw(&avro_topic, 2).await;
    let decoded = decode_values(&registry, &msgs).await;
    for (id, (_, v)) in [1, 2].into_iter().zip(&decoded) {
        assert_eq!(v["after"], expected(id), "postgres avro");
    }
    let logs = daemon.logs();
    for secret in ["123-45-6789", "4111111111111111", "hello"] {
        assert!(!logs.contains(secret), "{secret} appears in the logs");
    }
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_columns_excluded_masked_truncated_and_keyed() {
    let mut db = MyDb::new("mycols").await;
    db.exec(
        "CREATE TABLE customers (id INT PRIMARY KEY, tenant INT, email VARCHAR(20), ssn TEXT, card TEXT, note TEXT);
         INSERT INTO customers VALUES (1, 7, 'hello', '123-45-6789', '4111111111111111', 'Žluťoučký')",
    )
    .await;
    let name = unique("mycols");
    let table = format!("{}.customers", db.name);
    let mut daemon = my_daemon(
        &name,
        &db,
        &["customers"],
        &format!("{}\n[format]\nschemas = true", settings(&table)),
    );
    daemon.start();
    let topic = format!("{name}.{table}");
    assert_eq!(
        read_topic(&topic, 1, Duration::from_secs(60)).len(),
        1,
        "logs:\n{}",
        daemon.logs()
    );
    db.exec("INSERT INTO customers VALUES (2, 7, 'hello', '987-65-4321', '5500000000000004', 'Žluťoučký')")
        .await;
    check(&read_topic(&topic, 2, Duration::from_secs(60)), "mariadb");
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn key_columns_make_a_table_without_primary_key_keyable() {
    let db = TestDb::new("nokey").await;
    db.exec("CREATE TABLE events (code text, n int); INSERT INTO events VALUES ('a', 1);")
        .await;
    let name = unique("nokey");
    let mut daemon = Daemon::single(
        &name,
        &db,
        &["public.events"],
        "key_columns = { \"re:public\\\\.ev.*\" = [\"code\"] }",
    );
    daemon.start();
    let topic = format!("{name}.public.events");
    assert_eq!(read_topic(&topic, 1, Duration::from_secs(60)).len(), 1);
    db.exec("INSERT INTO events VALUES ('b', 2)").await;
    let msgs = read_topic(&topic, 2, Duration::from_secs(60));
    let keys: Vec<Value> = msgs
        .iter()
        .map(|m| payload(m.key.as_ref().expect("a key")).clone())
        .collect();
    assert_eq!(keys, [json!({"code": "a"}), json!({"code": "b"})]);
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_names_a_key_column_the_table_lacks() {
    let mut db = MyDb::new("mykeycol").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY, code TEXT)")
        .await;
    let name = unique("mykeycol");
    let daemon = my_daemon(
        &name,
        &db,
        &["t"],
        &format!("key_columns = {{ \"{}.t\" = [\"tenant\"] }}", db.name),
    );
    let (status, stdout, _) = daemon.run_command(&["validate"]);
    assert!(!status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "key_columns names \"tenant\" for table {}.t, which has no such column (it has id, code): fix key_columns",
            db.name
        )),
        "{stdout}"
    );
}
