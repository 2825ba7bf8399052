//! `[outbox]` (Debezium's outbox event router) on PostgreSQL and MariaDB: inserted rows become
//! events on `outbox.event.<aggregatetype>` keyed by `aggregateid`, valued by `payload` (as a
//! string, or expanded JSON), with the `id` header and extra columns as headers or value
//! fields; deletes (the insert-then-delete pattern) publish nothing; JSON and Avro. Expected
//! values written from Debezium's documentation of the event router.

mod common;

use std::time::Duration;

use common::mysql::*;
use common::registry::{avro_format, decode_values, raw, Registry};
use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn postgres_outbox_rows_become_routed_events_in_json_and_avro() {
    let registry = Registry::start().await;
    let db = TestDb::new("outbox").await;
    db.exec(
        "CREATE TABLE outbox (id uuid PRIMARY KEY, aggregatetype text NOT NULL, aggregateid text NOT NULL,
           type text NOT NULL, payload jsonb);
         CREATE TABLE items (id int PRIMARY KEY);",
    )
    .await;
    let agg = unique("order");
    let (plain, expanded, avro) = (unique("obx"), unique("obxe"), unique("obxa"));
    let tables = ["public.outbox", "public.items"];
    let mut daemon = Daemon::new(
        "",
        &[
            (
                "p.toml",
                pg_connector(&plain, &plain, &db, &tables, "")
                    + "[outbox]\ntable = \"public.outbox\"\nadditional_placement = [\"type:header:eventType\"]\n",
            ),
            (
                "e.toml",
                pg_connector(&expanded, &expanded, &db, &tables, "")
                    + "[outbox]\ntable = \"public.outbox\"\nroute_topic_replacement = \"expanded.${routedByValue}\"\nexpand_json_payload = true\n[format]\nschemas = false\n",
            ),
            (
                "a.toml",
                pg_connector(&avro, &avro, &db, &tables, "")
                    + "[outbox]\ntable = \"public.outbox\"\nroute_topic_replacement = \"avro.${routedByValue}\"\nadditional_placement = [\"type:envelope:eventType\"]\n"
                    + &avro_format(&registry),
            ),
        ],
    );
    daemon.start();
    for name in [&plain, &expanded, &avro] {
        wait_for_slot(&db, name, &daemon).await;
    }
    // The usual pattern: insert and delete in one transaction; an update is ignored too.
    db.exec(&format!(
        "BEGIN;
         INSERT INTO outbox VALUES ('11111111-1111-1111-1111-111111111111', '{agg}', 'o-1', 'OrderCreated', '{{\"total\": 10, \"lines\": [{{\"sku\": \"a\"}}]}}');
         DELETE FROM outbox WHERE id = '11111111-1111-1111-1111-111111111111';
         COMMIT;
         INSERT INTO outbox VALUES ('22222222-2222-2222-2222-222222222222', '{agg}', 'o-2', 'OrderPaid', '{{\"total\": 12.5}}');
         UPDATE outbox SET type = 'changed';
         INSERT INTO items VALUES (1);"
    ))
    .await;
    // (Waits for a third record that must not come.)
    let msgs = read_topic(&format!("outbox.event.{agg}"), 3, Duration::from_secs(20));
    assert_eq!(msgs.len(), 2, "logs:\n{}", daemon.logs());
    let key = msgs[0].key.as_ref().unwrap();
    assert_eq!(key["payload"], "o-1");
    assert_eq!(key["schema"]["type"], "string");
    let value = msgs[0].value.as_ref().unwrap();
    // (jsonb prints its keys in its own order.)
    assert_eq!(
        value["payload"],
        json!("{\"lines\": [{\"sku\": \"a\"}], \"total\": 10}")
    );
    assert_eq!(value["schema"]["name"], "io.debezium.data.Json");
    assert_eq!(
        msgs[0].headers["id"],
        json!("11111111-1111-1111-1111-111111111111")
    );
    assert_eq!(msgs[0].headers["eventType"], json!("OrderCreated"));
    assert_eq!(payload(msgs[1].key.as_ref().unwrap()), "o-2");
    assert_eq!(msgs[1].headers["eventType"], json!("OrderPaid"));
    // Other tables keep their change records.
    let items = read_topic(&format!("{plain}.public.items"), 1, Duration::from_secs(60));
    assert_eq!(payload(items[0].value.as_ref().unwrap())["after"]["id"], 1);
    // No change record of the outbox table itself.
    assert!(!topics().contains(&format!("{plain}.public.outbox")));

    // expand_json_payload: the payload as a structure.
    let msgs = read_topic(&format!("expanded.{agg}"), 2, Duration::from_secs(60));
    let values: Vec<Value> = msgs.iter().map(|m| m.value.clone().unwrap()).collect();
    assert_eq!(
        values,
        vec![
            json!({"total": 10, "lines": [{"sku": "a"}]}),
            json!({"total": 12.5})
        ]
    );
    assert_eq!(msgs[0].key.as_ref().unwrap(), &json!("o-1"));

    // Avro: the value record carries the payload and the envelope-placed column.
    let decoded = decode_values(&registry, &raw(&format!("avro.{agg}"), 2).await).await;
    let values: Vec<Value> = decoded.into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        values,
        vec![
            json!({"payload": "{\"lines\": [{\"sku\": \"a\"}], \"total\": 10}", "eventType": "OrderCreated"}),
            json!({"payload": "{\"total\": 12.5}", "eventType": "OrderPaid"})
        ]
    );
    assert!(daemon
        .logs()
        .contains("an update of an outbox table is ignored"));
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_outbox_with_default_columns() {
    let mut db = MyDb::new("myoutbox").await;
    db.exec(
        "CREATE TABLE outbox (id VARCHAR(36) PRIMARY KEY, aggregatetype VARCHAR(64) NOT NULL,
           aggregateid VARCHAR(64) NOT NULL, type VARCHAR(64), payload TEXT);
         CREATE TABLE items (id INT PRIMARY KEY); INSERT INTO items VALUES (0)",
    )
    .await;
    let agg = unique("customer");
    let name = unique("myobx");
    let mut daemon = my_daemon(&name, &db, &["outbox", "items"], "");
    let file = daemon.dir.join("connectors/c.toml");
    let text = std::fs::read_to_string(&file).unwrap()
        + &format!("[outbox]\ntable = \"{}.outbox\"\n", db.name);
    std::fs::write(&file, text).unwrap();
    daemon.start();
    assert_eq!(
        read_topic(
            &format!("{name}.{}.items", db.name),
            1,
            Duration::from_secs(60)
        )
        .len(),
        1,
        "logs:\n{}",
        daemon.logs()
    );
    db.exec(&format!(
        "INSERT INTO outbox VALUES ('e-1', '{agg}', 'c-7', 'Created', '{{\"name\":\"Ann\"}}');
         DELETE FROM outbox WHERE id = 'e-1'"
    ))
    .await;
    let msgs = read_topic(&format!("outbox.event.{agg}"), 2, Duration::from_secs(30));
    assert_eq!(msgs.len(), 1, "logs:\n{}", daemon.logs());
    assert_eq!(payload(msgs[0].key.as_ref().unwrap()), "c-7");
    assert_eq!(
        payload(msgs[0].value.as_ref().unwrap()),
        "{\"name\":\"Ann\"}"
    );
    assert_eq!(msgs[0].headers["id"], json!("e-1"));
    assert!(!msgs[0].headers.contains_key("eventType"));
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outbox_table_without_the_columns_stops_the_connector_with_the_column_named() {
    let db = TestDb::new("badobx").await;
    db.exec("CREATE TABLE outbox (id int PRIMARY KEY, payload text)")
        .await;
    let name = unique("badobx");
    let mut daemon = Daemon::single(&name, &db, &["public.outbox"], "");
    let file = daemon.dir.join("connectors/c.toml");
    let text = std::fs::read_to_string(&file).unwrap() + "[outbox]\ntable = \"public.outbox\"\n";
    std::fs::write(&file, text).unwrap();
    // `validate` names every missing column with its key.
    let (status, stdout, _) = daemon.run_command(&["validate"]);
    assert!(!status.success(), "{stdout}");
    for (key, column) in [
        ("key_field", "aggregateid"),
        ("route_by_field", "aggregatetype"),
    ] {
        assert!(
            stdout.contains(&format!(
                "outbox.{key}: outbox table public.outbox has no column \"{column}\" (it has id, payload): add the column, or set {key} to the column that holds it"
            )),
            "{stdout}"
        );
    }
    daemon.start();
    wait_for_slot(&db, &name, &daemon).await;
    db.exec("INSERT INTO outbox VALUES (1, 'x')").await;
    let want =
        "outbox table public.outbox has no column \"aggregatetype\" ([outbox] route_by_field)";
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !daemon.logs().contains(want) {
        assert!(
            std::time::Instant::now() < deadline,
            "not reported:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    daemon.stop();
}

#[test]
fn validate_refuses_an_outbox_table_that_is_not_captured() {
    let text = validate_bad_file("", "[outbox]\ntable = \"public.outbox\"");
    assert!(text.contains("outbox.table"), "{text}");
    assert!(
        text.contains("\"public.outbox\" is not captured: add it to tables"),
        "{text}"
    );
}
