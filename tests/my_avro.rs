//! Avro for a MySQL / MariaDB source: records of the every-type table decode with an
//! independent Avro implementation (fastavro) using the schema fetched from the registry by
//! id, and equal the JSON envelope of the same change (snapshot and streamed rows), with the
//! `io.debezium.connector.mariadb.Source` block.

mod common;

use std::time::Duration;

use common::my_types::{expected, TABLE, VALUES};
use common::mysql::*;
use common::registry::{avro_format, decode, raw, Registry};
use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn mysql_avro_records_decode_and_equal_the_json_envelope() {
    let registry = Registry::start().await;
    let mut db = MyDb::new("myavro").await;
    db.exec(TABLE).await;
    db.exec("SET time_zone = '+02:00'").await;
    db.exec(&format!("INSERT INTO all_types VALUES (1, {VALUES})"))
        .await;
    let (avro, json_name) = (unique("myav"), unique("myjs"));
    let tables = [format!("{}.all_types", db.name)];
    let mut daemon = Daemon::new(
        "",
        &[
            (
                "avro.toml",
                my_connector(&avro, &avro, &db.base, &tables, server_id(), "")
                    + &avro_format(&registry),
            ),
            (
                "json.toml",
                my_connector(
                    &json_name,
                    &json_name,
                    &db.base,
                    &tables,
                    server_id(),
                    "[format]\nschemas = false",
                ),
            ),
        ],
    );
    daemon.start();
    let avro_topic = format!("{avro}.{}.all_types", db.name);
    assert_eq!(
        raw(&avro_topic, 1).await.len(),
        1,
        "snapshot record; logs:\n{}",
        daemon.logs()
    );
    db.exec(&format!("INSERT INTO all_types VALUES (2, {VALUES})"))
        .await;
    let msgs = raw(&avro_topic, 2).await;
    assert_eq!(msgs.len(), 2, "logs:\n{}", daemon.logs());
    let values: Vec<Vec<u8>> = msgs.iter().map(|m| m.value.clone().unwrap()).collect();
    let decoded = decode(&registry, &values).await;
    let json_msgs = read_topic(
        &format!("{json_name}.{}.all_types", db.name),
        2,
        Duration::from_secs(60),
    );
    assert_eq!(json_msgs.len(), 2);
    for (i, ((_, avro_value), json_msg)) in decoded.iter().zip(&json_msgs).enumerate() {
        let json_value = json_msg.value.as_ref().unwrap();
        let id = i as i64 + 1;
        assert_eq!(avro_value["op"], json_value["op"]);
        // Every column, as Debezium JSON renders it, equals the JSON connector's value.
        let want = expected(id);
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&avro_value["after"][k], v, "row {id}: Avro field {k}");
            assert_eq!(&json_value["after"][k], v, "row {id}: JSON field {k}");
        }
        let (a, j) = (&avro_value["source"], &json_value["source"]);
        for f in [
            "connector",
            "db",
            "table",
            "server_id",
            "gtid",
            "file",
            "pos",
            "row",
            "snapshot",
        ] {
            assert_eq!(a[f], j[f], "source.{f}");
        }
        assert_eq!(a["connector"], "mariadb");
        assert_eq!(a["name"], Value::from(avro.as_str()));
    }
    // The registered value schema names the MariaDB source record.
    let ids = registry.versions(&format!("{avro_topic}-value"));
    assert_eq!(ids.len(), 1, "one value schema version");
    let schema =
        common::registry::http_get_json(&format!("{}/schemas/ids/{}", registry.url, ids[0])).await;
    assert!(
        schema["schema"]
            .as_str()
            .unwrap()
            .contains("io.debezium.connector.mariadb.Source"),
        "{schema}"
    );
    assert!(daemon.stop().success());
}
