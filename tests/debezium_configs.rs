//! Debezium's connector configurations run unchanged: a PostgreSQL config posted to
//! `POST /connectors` (with ExtractNewRecordState and RegexRouter transforms and the
//! JsonConverter without schemas) and Debezium's MySQL tutorial config as a
//! `connectors/NAME.json` file each publish what the equivalent Sluice TOML publishes; the
//! answer lists the ignored keys; `GET .../config` hands back what was put (password
//! masked) and putting it back changes nothing; an unsupported transform is refused by name.

mod common;

use std::time::Duration;

use common::mysql::*;
use common::*;
use serde_json::{json, Value};

fn api(daemon: &Daemon) -> String {
    let port = free_port();
    daemon.append_daemon_config(&format!(
        "[api]\nlisten = \"127.0.0.1:{port}\"\nallow_config_writes = true\n"
    ));
    format!("http://127.0.0.1:{port}")
}

async fn wait_http(api: &str) {
    for _ in 0..100 {
        if http("GET", &format!("{api}/health"), None).await.0 == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the admin API never answered");
}

/// (key, value) of every record of a topic, as JSON text, in order.
fn records(topic: &str, n: usize) -> Vec<(Value, Value)> {
    read_topic(topic, n, Duration::from_secs(60))
        .into_iter()
        .map(|m| (m.key.unwrap_or(Value::Null), m.value.unwrap_or(Value::Null)))
        .collect()
}

/// A database URL's parts as Debezium's properties name them.
fn parts(url: &str) -> (String, String, String, String) {
    let u = url::Url::parse(url).unwrap();
    (
        u.host_str().unwrap().to_string(),
        u.port().unwrap().to_string(),
        u.username().to_string(),
        u.password().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn debezium_configs_run_unchanged_and_publish_what_sluice_toml_does() {
    let pg = TestDb::new("dbzcfg").await;
    pg.exec(
        "CREATE TABLE items (id int PRIMARY KEY, name text);
         INSERT INTO items VALUES (1, 'one'), (2, 'two');",
    )
    .await;
    let mut my = MyDb::new("dbzcfg").await;
    my.exec("CREATE TABLE customers (id int PRIMARY KEY, email varchar(64)); INSERT INTO customers VALUES (1, 'a@x'), (2, 'b@x')")
        .await;

    let dbz_pg = unique("dbzpg");
    let ref_pg = unique("refpg");
    let dbz_my = unique("dbzmy");
    let ref_my = unique("refmy");
    let (my_host, my_port, my_user, my_password) = parts(&my.base);
    // Debezium's MySQL tutorial connector, as a Connect JSON file.
    let tutorial = json!({
        "name": dbz_my,
        "config": {
            "connector.class": "io.debezium.connector.mysql.MySqlConnector",
            "tasks.max": "1",
            "database.hostname": my_host,
            "database.port": my_port,
            "database.user": my_user,
            "database.password": my_password,
            "database.server.id": server_id().to_string(),
            "topic.prefix": dbz_my,
            "database.include.list": my.name,
            "schema.history.internal.kafka.bootstrap.servers": brokers(),
            "schema.history.internal.kafka.topic": format!("schemahistory.{dbz_my}"),
        }
    });
    let reference_my = my_connector(
        &ref_my,
        &ref_my,
        &my.base,
        &[format!("{}.*", my.name)],
        server_id(),
        "",
    );
    let reference_pg = format!(
        "{}\n[unwrap]\nenabled = true\nadd_fields = [\"op\", \"table\"]\n[format]\nschemas = false\n[[route]]\nregex = '{ref_pg}\\.public\\.(.*)'\nreplacement = '{ref_pg}.cdc.$1'\nkey_enforce_uniqueness = false\n",
        pg_connector(&ref_pg, &ref_pg, &pg, &["public.items"], "")
    );
    let mut daemon = Daemon::new(
        "",
        &[
            (&format!("{dbz_my}.json"), tutorial.to_string()),
            ("ref-my.toml", reference_my),
            ("ref-pg.toml", reference_pg),
        ],
    );
    let api = api(&daemon);
    daemon.start();
    wait_http(&api).await;

    // A PostgreSQL config with transforms and converters, posted as Connect clients do.
    let (host, port, user, password) = parts(&pg.url());
    let config = json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "database.hostname": host,
        "database.port": port,
        "database.user": user,
        "database.password": password,
        "database.dbname": pg.name,
        "topic.prefix": dbz_pg,
        "plugin.name": "pgoutput",
        "slot.name": dbz_pg,
        "publication.name": dbz_pg,
        "publication.autocreate.mode": "filtered",
        "table.include.list": "public.items",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "transforms": "unwrap,route",
        "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
        "transforms.unwrap.add.fields": "op,table",
        "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
        "transforms.route.regex": format!("{dbz_pg}\\.public\\.(.*)"),
        "transforms.route.replacement": format!("{dbz_pg}.cdc.$1"),
        "errors.tolerance": "none",
    });
    // An SMT Sluice does not have is refused by name, and nothing is written.
    let mut bad = config.clone();
    bad["transforms"] = json!("unwrap,filter");
    bad["transforms.filter.type"] = json!("io.debezium.transforms.Filter");
    let (s, body) = http_json(
        "POST",
        &format!("{api}/connectors"),
        None,
        &json!({"name": dbz_pg, "config": bad}),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert!(
        body.contains("transforms.filter.type") && body.contains("io.debezium.transforms.Filter"),
        "{body}"
    );
    assert!(!daemon
        .dir
        .join(format!("connectors/{dbz_pg}.toml"))
        .exists());

    let (s, body) = http_json(
        "POST",
        &format!("{api}/connectors"),
        None,
        &json!({"name": dbz_pg, "config": config}),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    let warnings = created["warnings"].to_string();
    assert!(
        warnings.contains("tasks.max: ignored") && warnings.contains("errors.tolerance: ignored"),
        "{warnings}"
    );
    assert_eq!(created["config"]["database.password"], "********");
    assert_eq!(
        created["config"]["transforms.unwrap.add.fields"],
        "op,table"
    );

    // Round trip: what GET hands back is what was put (password masked); putting it back
    // keeps the password and the connector.
    // (The folder is rescanned within a second.)
    wait_state(&api, None, &dbz_pg, "streaming", Duration::from_secs(60)).await;
    let (s, body) = http("GET", &format!("{api}/connectors/{dbz_pg}/config"), None).await;
    assert_eq!(s, 200, "{body}");
    let shown: Value = serde_json::from_str(&body).unwrap();
    let mut expected = config.clone();
    expected["database.password"] = json!("********");
    assert_eq!(shown, expected);
    let (s, body) = http_json(
        "PUT",
        &format!("{api}/connectors/{dbz_pg}/config"),
        None,
        &shown,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let file =
        std::fs::read_to_string(daemon.dir.join(format!("connectors/{dbz_pg}.toml"))).unwrap();
    assert!(
        file.contains(&format!("password = \"{password}\"")),
        "{file}"
    );

    // The same rows, the same records, as the Sluice TOML of the same meaning.
    let dbz = records(&format!("{dbz_pg}.cdc.items"), 2);
    let reference = records(&format!("{ref_pg}.cdc.items"), 2);
    assert_eq!(
        dbz[0].1,
        json!({"id": 1, "name": "one", "__op": "r", "__table": "items"})
    );
    assert_eq!(dbz, reference);
    pg.exec("UPDATE items SET name = 'uno' WHERE id = 1; DELETE FROM items WHERE id = 2")
        .await;
    let dbz = records(&format!("{dbz_pg}.cdc.items"), 4);
    let reference = records(&format!("{ref_pg}.cdc.items"), 4);
    assert_eq!(
        dbz[2].1,
        json!({"id": 1, "name": "uno", "__op": "u", "__table": "items"})
    );
    assert_eq!(dbz, reference);

    // The tutorial's MySQL connector from its JSON file: Debezium's envelope, as the TOML's.
    my.exec("INSERT INTO customers VALUES (3, 'c@x')").await;
    let dbz = records(&format!("{dbz_my}.{}.customers", my.name), 3);
    let reference = records(&format!("{ref_my}.{}.customers", my.name), 3);
    let strip = |rs: &[(Value, Value)]| -> Vec<(Value, Value, Value)> {
        rs.iter()
            .map(|(k, v)| {
                (
                    k["payload"].clone(),
                    v["payload"]["after"].clone(),
                    v["payload"]["op"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        strip(&dbz)[2],
        (
            json!({"id": 3}),
            json!({"id": 3, "email": "c@x"}),
            json!("c")
        )
    );
    assert_eq!(strip(&dbz), strip(&reference));
    assert_eq!(dbz[0].1["payload"]["source"]["name"], dbz_my.as_str());
    // Its config reads back through the API too; the API does not rewrite a JSON file.
    let (s, body) = http("GET", &format!("{api}/connectors/{dbz_my}/config"), None).await;
    assert_eq!(s, 200, "{body}");
    let shown: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(shown["database.include.list"], my.name.as_str());
    assert_eq!(shown["database.password"], "********");
    let (s, body) = http_json(
        "PUT",
        &format!("{api}/connectors/{dbz_my}/config"),
        None,
        &shown,
    )
    .await;
    assert_eq!(s, 409, "{body}");
    // `sluice status` finds the API in the daemon config and lists every connector.
    let (status, out, err) = daemon.run_command(&["status", "--config", "config/sluice.toml"]);
    assert!(status.success(), "{err}");
    for name in [&dbz_pg, &ref_pg, &dbz_my, &ref_my] {
        let line = out
            .lines()
            .find(|l| l.starts_with(name.as_str()))
            .unwrap_or_else(|| panic!("{name} in\n{out}"));
        assert!(line.contains("streaming"), "{line}");
    }
    assert!(daemon.stop().success(), "{}", daemon.logs());
}

/// `sluice convert` prints the connector file for Debezium Server's properties (with the
/// daemon settings named as notes), and for refused keys their names and exit 1.
#[test]
fn convert_prints_the_toml_of_debezium_server_properties() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("convert"));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("application.properties");
    std::fs::write(
        &good,
        "debezium.sink.type=kafka\n\
         debezium.sink.kafka.producer.bootstrap.servers=kafka:9092\n\
         debezium.source.connector.class=io.debezium.connector.postgresql.PostgresConnector\n\
         debezium.source.offset.storage.file.filename=data/offsets.dat\n\
         debezium.source.database.hostname=db\n\
         debezium.source.database.user=postgres\n\
         debezium.source.database.password=postgres\n\
         debezium.source.database.dbname=shop\n\
         debezium.source.topic.prefix=tutorial\n\
         debezium.source.name=shop\n\
         debezium.source.table.include.list=inventory.customers\n\
         debezium.format.value=json\n\
         debezium.format.value.schemas.enable=false\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["convert", good.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("bootstrap_servers = \"kafka:9092\""),
        "{text}"
    );
    assert!(
        text.contains("debezium.source.offset.storage.file.filename"),
        "{text}"
    );
    let file = dir.join("shop.toml");
    std::fs::write(&file, &text).unwrap();
    let config = sluice::config::ConnectorConfig::load(&file).unwrap();
    assert_eq!(config.name, "shop");
    assert_eq!(config.format.schemas, Some(false));
    assert_eq!(
        config.postgres.unwrap().url.expose(),
        "postgres://postgres@db:5432/shop"
    );

    let bad = dir.join("bad.properties");
    std::fs::write(
        &bad,
        "name=x\nconnector.class=io.debezium.connector.postgresql.PostgresConnector\ndatabase.hostname=db\ndatabase.user=u\ndatabase.dbname=d\ntopic.prefix=p\nplugin.name=wal2json\nsnapshot.mode=custom\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["convert", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("plugin.name: \"wal2json\"") && err.contains("snapshot.mode: \"custom\""),
        "{err}"
    );
}

/// `sluice run --debezium-server application.properties` runs Debezium Server's source with
/// its Kafka sink settings: the topic holds the snapshot and the stream.
#[tokio::test(flavor = "multi_thread")]
async fn debezium_server_properties_run_as_they_are() {
    let pg = TestDb::new("dbzsrv").await;
    pg.exec(
        "CREATE TABLE orders (id int PRIMARY KEY, qty int); INSERT INTO orders VALUES (1, 10);",
    )
    .await;
    let name = unique("dbzsrv");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let (host, port, user, password) = parts(&pg.url());
    let props = format!(
        "debezium.sink.type=kafka\n\
         debezium.sink.kafka.producer.bootstrap.servers={}\n\
         debezium.sink.kafka.producer.key.serializer=org.apache.kafka.common.serialization.StringSerializer\n\
         debezium.sink.kafka.producer.value.serializer=org.apache.kafka.common.serialization.StringSerializer\n\
         debezium.source.connector.class=io.debezium.connector.postgresql.PostgresConnector\n\
         debezium.source.offset.storage.file.filename=data/offsets.dat\n\
         debezium.source.offset.flush.interval.ms=100\n\
         debezium.source.database.hostname={host}\n\
         debezium.source.database.port={port}\n\
         debezium.source.database.user={user}\n\
         debezium.source.database.password={password}\n\
         debezium.source.database.dbname={}\n\
         debezium.source.topic.prefix={name}\n\
         debezium.source.name={name}\n\
         debezium.source.slot.name={name}\n\
         debezium.source.publication.name={name}\n\
         debezium.source.publication.autocreate.mode=filtered\n\
         debezium.source.table.include.list=public.orders\n\
         debezium.format.value=json\n\
         debezium.format.value.schemas.enable=false\n\
         debezium.format.key=json\n\
         debezium.format.key.schemas.enable=false\n\
         quarkus.log.level=INFO\n",
        brokers(),
        pg.name,
    );
    std::fs::write(dir.join("application.properties"), props).unwrap();
    let log = std::fs::File::create(dir.join("run.log")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "--debezium-server", "application.properties"])
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let topic = format!("{name}.public.orders");
    let first = read_topic(&topic, 1, Duration::from_secs(60));
    let logs = || std::fs::read_to_string(dir.join("run.log")).unwrap_or_default();
    assert_eq!(first.len(), 1, "{}", logs());
    pg.exec("INSERT INTO orders VALUES (2, 20)").await;
    let all = read_topic(&topic, 2, Duration::from_secs(60));
    let values: Vec<Value> = all.iter().map(|m| m.value.clone().unwrap()).collect();
    assert_eq!(
        values[0]["after"],
        json!({"id": 1, "qty": 10}),
        "{}",
        logs()
    );
    assert_eq!(values[1]["op"], "c");
    assert_eq!(values[1]["after"], json!({"id": 2, "qty": 20}));
    assert_eq!(all[1].key, Some(json!({"id": 2})));
    assert!(logs().contains("Java-serialized"), "{}", logs());
    // Positions go to Sluice's store beside Debezium Server's file.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{}", logs());
    assert!(dir.join("data/offsets.dat.sluice").is_dir(), "{}", logs());
}
