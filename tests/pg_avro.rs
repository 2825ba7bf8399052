//! Avro with a schema registry: records decode with an independent Avro implementation
//! (Python's fastavro) using the schema fetched from the registry by id, and equal the JSON
//! envelope of the same change; schema evolution registers new versions; a registry outage
//! loses nothing; an incompatible change stops the connector with the registry's message.

mod common;

use std::time::{Duration, Instant};

use common::all_types::{expected_after, ROW, SETUP};
use common::registry::{avro_format, decode, http_get_json, raw, Registry};
use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn avro_records_decode_independently_and_equal_the_json_envelope() {
    let registry = Registry::start().await;
    let db = TestDb::new("avro").await;
    db.exec(SETUP).await;
    db.exec("CREATE TABLE keyless (a int, b text)").await;
    let avro = unique("av");
    let json_name = unique("js");
    let tables = ["public.all_types", "public.keyless"];
    let mut daemon = Daemon::new(
        "",
        &[
            (
                "avro.toml",
                pg_connector(&avro, &avro, &db, &tables, "") + &avro_format(&registry),
            ),
            (
                "json.toml",
                pg_connector(&json_name, &json_name, &db, &tables, "")
                    + "[format]\nschemas = false\n",
            ),
        ],
    );
    daemon.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.confirmed_flush(&avro).await.is_none()
        || db.confirmed_flush(&json_name).await.is_none()
    {
        assert!(
            Instant::now() < deadline,
            "slots not created; logs:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    db.exec(ROW).await;
    db.exec(
        "UPDATE all_types SET c_text = 'changed' WHERE id = 1; DELETE FROM all_types WHERE id = 1;",
    )
    .await;
    db.exec("INSERT INTO keyless VALUES (1, 'no key')").await;

    let avro_msgs = raw(&format!("{avro}.public.all_types"), 4).await;
    assert_eq!(
        avro_msgs.len(),
        4,
        "c, u, d, tombstone; logs:\n{}",
        daemon.logs()
    );
    let json_msgs = read_topic(
        &format!("{json_name}.public.all_types"),
        4,
        Duration::from_secs(60),
    );
    assert_eq!(json_msgs.len(), 4);
    assert!(avro_msgs[3].value.is_none(), "tombstone");

    let values: Vec<Vec<u8>> = avro_msgs[..3]
        .iter()
        .map(|m| m.value.clone().unwrap())
        .collect();
    let decoded = decode(&registry, &values).await;
    for ((_, avro_env), json_msg) in decoded.iter().zip(&json_msgs) {
        let json_env = json_msg.value.as_ref().unwrap();
        for f in ["before", "after", "op", "transaction"] {
            assert_eq!(avro_env[f], json_env[f], "field {f}");
        }
        for (k, v) in json_env["source"].as_object().unwrap() {
            if k == "name" {
                assert_eq!(avro_env["source"][k], json!(avro));
            } else {
                assert_eq!(&avro_env["source"][k], v, "source.{k}");
            }
        }
    }
    assert_eq!(decoded[0].1["after"], expected_after());
    let value_subject = format!("{avro}.public.all_types-value");
    assert_eq!(registry.versions(&value_subject).len(), 1);
    assert_eq!(decoded[0].0, registry.versions(&value_subject)[0]);

    // Keys: Avro with a primary key, null for a keyless table.
    let keys: Vec<Vec<u8>> = avro_msgs.iter().map(|m| m.key.clone().unwrap()).collect();
    for (_, k) in decode(&registry, &keys).await {
        assert_eq!(k, json!({"id": 1}));
    }
    assert_eq!(
        registry
            .versions(&format!("{avro}.public.all_types-key"))
            .len(),
        1
    );
    let keyless = raw(&format!("{avro}.public.keyless"), 1).await;
    assert_eq!(keyless.len(), 1);
    assert!(keyless[0].key.is_none(), "keyless table: null key");
    let decoded = decode(&registry, &[keyless[0].value.clone().unwrap()]).await;
    assert_eq!(decoded[0].1["after"], json!({"a": 1, "b": "no key"}));
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_evolution_outage_and_incompatible_change() {
    let registry = Registry::start().await;
    let db = TestDb::new("avroevo").await;
    db.exec("CREATE TABLE items (id int PRIMARY KEY, name text)")
        .await;
    let name = unique("evo");
    let mut daemon = Daemon::new(
        "",
        &[(
            "c.toml",
            pg_connector(&name, &name, &db, &["public.items"], "") + &avro_format(&registry),
        )],
    );
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    daemon.append_daemon_config(&format!(
        "[api]\nlisten = \"127.0.0.1:{port}\"\nready_max_retry_s = 3\n"
    ));
    daemon.start();
    let topic = format!("{name}.public.items");
    let subject = format!("{topic}-value");
    db.exec("INSERT INTO items VALUES (1, 'one')").await;
    assert_eq!(raw(&topic, 1).await.len(), 1, "logs:\n{}", daemon.logs());

    // A new column mid-stream registers a second version; each record decodes with its own.
    db.exec("ALTER TABLE items ADD COLUMN qty int; INSERT INTO items VALUES (2, 'two', 5);")
        .await;
    let msgs = raw(&topic, 2).await;
    assert_eq!(msgs.len(), 2);
    let decoded = decode(
        &registry,
        &msgs
            .iter()
            .map(|m| m.value.clone().unwrap())
            .collect::<Vec<_>>(),
    )
    .await;
    let versions = registry.versions(&subject);
    assert_eq!(versions.len(), 2, "two versions under {subject}");
    assert_eq!(decoded[0].0, versions[0]);
    assert_eq!(decoded[1].0, versions[1]);
    assert_eq!(decoded[0].1["after"], json!({"id": 1, "name": "one"}));
    assert_eq!(
        decoded[1].1["after"],
        json!({"id": 2, "name": "two", "qty": 5})
    );

    // The registry down for over 15 s while writes go on and a new shape needs registering.
    registry.set_down(true);
    for i in 3..=20 {
        db.exec(&format!("INSERT INTO items VALUES ({i}, 'n{i}', {i})"))
            .await;
        if i == 10 {
            db.exec("ALTER TABLE items ADD COLUMN note text").await;
        }
        if i == 16 {
            // Failing on every record for over 10 s: the status says so whatever state the
            // current attempt is in (it used to flip between streaming and starting), with
            // the attempt and the error; Connect shows RUNNING with a trace; /ready is 503
            // past ready_max_retry_s; the metric counts the seconds.
            let (_, body) = http("GET", &format!("{api}/sluice/connectors/{name}"), None).await;
            let status: Value = serde_json::from_str(&body).unwrap();
            let retry = &status["retry"];
            assert!(retry["attempt"].as_u64().unwrap_or(0) >= 2, "{status}");
            assert!(
                retry["last_error"]
                    .as_str()
                    .unwrap_or("")
                    .contains("unreachable"),
                "{status}"
            );
            assert!(retry["since_ms"].as_i64().unwrap() < retry["next_try_ms"].as_i64().unwrap());
            let (_, body) = http("GET", &format!("{api}/connectors/{name}/status"), None).await;
            let connect: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(connect["tasks"][0]["state"], "RUNNING", "{connect}");
            assert!(
                connect["tasks"][0]["trace"]
                    .as_str()
                    .unwrap_or("")
                    .contains("retrying"),
                "{connect}"
            );
            let (s, body) = http("GET", &format!("{api}/ready"), None).await;
            assert_eq!(s, 503, "{body}");
            let (_, metrics) = http("GET", &format!("{api}/metrics"), None).await;
            let line = metrics
                .lines()
                .find(|l| l.starts_with("sluice_connector_retrying_seconds{"))
                .unwrap_or_default()
                .to_string();
            let secs: f64 = line
                .rsplit(' ')
                .next()
                .unwrap_or("0")
                .parse()
                .unwrap_or(0.0);
            assert!(secs >= 3.0, "{line}");
        }
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    registry.set_down(false);
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut ids: Vec<i64> = Vec::new();
    while Instant::now() < deadline {
        let msgs = raw(&topic, 20).await;
        let decoded = decode(
            &registry,
            &msgs
                .iter()
                .filter_map(|m| m.value.clone())
                .collect::<Vec<_>>(),
        )
        .await;
        ids = decoded
            .iter()
            .map(|(_, v)| v["after"]["id"].as_i64().unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        if ids.len() == 20 {
            break;
        }
    }
    assert_eq!(
        ids,
        (1..=20).collect::<Vec<_>>(),
        "nothing lost across the outage; logs:\n{}",
        daemon.logs()
    );
    assert!(
        daemon.logs().contains("unreachable"),
        "the outage shows as a retried failure"
    );
    // Progress again: the retry is over, and the daemon is ready.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, body) = http("GET", &format!("{api}/sluice/connectors/{name}"), None).await;
        let status: Value = serde_json::from_str(&body).unwrap_or_default();
        if s == 200 && status["retry"].is_null() && status["state"] == "streaming" {
            break;
        }
        assert!(Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(http("GET", &format!("{api}/ready"), None).await.0, 200);
    assert_eq!(registry.versions(&subject).len(), 3);

    // Columns with defaults are compatible additions: the default is in the field (and in
    // `connect.default`), and an optional one has its type before null in the union, as
    // Confluent's AvroData writes them.
    db.exec(
        "ALTER TABLE items ADD COLUMN must int NOT NULL DEFAULT 7, ADD COLUMN tag text DEFAULT 'x';
         INSERT INTO items VALUES (21, 'a', 1, 'y', 8, NULL); INSERT INTO items VALUES (22, 'b', 1, 'y', 9, 'z');",
    )
    .await;
    let msgs = raw(&topic, 22).await;
    assert_eq!(msgs.len(), 22, "logs:\n{}", daemon.logs());
    let decoded = decode(
        &registry,
        &msgs[20..]
            .iter()
            .filter_map(|m| m.value.clone())
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(decoded[0].1["after"]["must"], 8);
    assert_eq!(decoded[0].1["after"]["tag"], Value::Null);
    assert_eq!(decoded[1].1["after"]["tag"], "z");
    let versions = registry.versions(&subject);
    assert_eq!(versions.len(), 4);
    let schema = http_get_json(&format!("{}/schemas/ids/{}", registry.url, versions[3])).await;
    let schema: Value = serde_json::from_str(schema["schema"].as_str().unwrap()).unwrap();
    let value = &schema["fields"][0]["type"][1]["fields"];
    let field = |n: &str| {
        value
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(
        field("must"),
        json!({"name": "must", "type": {"type": "int", "connect.default": 7}, "default": 7})
    );
    assert_eq!(
        field("tag"),
        json!({"name": "tag", "type": [{"type": "string", "connect.default": "x"}, "null"], "default": "x"})
    );

    // An incompatible change (a column changing its type) stops the connector.
    db.exec("ALTER TABLE items ALTER COLUMN qty TYPE text; INSERT INTO items VALUES (99, 'x', '1', 'y', 1, 'q');").await;
    // (With the admin API on, the daemon stays up and lists the connector as failed.)
    let status = wait_state(&api, None, &name, "failed", Duration::from_secs(60)).await;
    assert!(
        status["error"]
            .as_str()
            .unwrap_or("")
            .contains("incompatible"),
        "{status}"
    );
    assert!(
        status["retry"].is_null(),
        "a definite failure is not retried: {status}"
    );
    // Exit 1: a connector stopped on an error that needs fixing.
    assert_eq!(daemon.stop().code(), Some(1));
    let logs = daemon.logs();
    assert!(
        logs.contains("incompatible") && logs.contains(&subject),
        "clear message naming the subject:\n{logs}"
    );
    assert_eq!(registry.versions(&subject).len(), 4, "nothing registered");
}
