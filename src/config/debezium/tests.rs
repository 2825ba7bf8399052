use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::config::ConnectorConfig;

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Converts and loads the result as Sluice would; panics with the refusals.
fn load(pairs: &[(&str, &str)]) -> (ConnectorConfig, Vec<String>) {
    let c = convert(None, &props(pairs)).unwrap_or_else(|r| panic!("refused: {r}"));
    let text = toml::to_string(&c.document).unwrap();
    let config = ConnectorConfig::parse(Path::new("c.toml"), &text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    (config, c.warnings)
}

fn refused(pairs: &[(&str, &str)]) -> String {
    convert(None, &props(pairs)).unwrap_err().to_string()
}

const MYSQL_TUTORIAL: &[(&str, &str)] = &[
    ("name", "inventory-connector"),
    (
        "connector.class",
        "io.debezium.connector.mysql.MySqlConnector",
    ),
    ("tasks.max", "1"),
    ("database.hostname", "mysql"),
    ("database.port", "3306"),
    ("database.user", "debezium"),
    ("database.password", "dbz"),
    ("database.server.id", "184054"),
    ("topic.prefix", "dbserver1"),
    ("database.include.list", "inventory"),
    (
        "schema.history.internal.kafka.bootstrap.servers",
        "kafka:9092",
    ),
    (
        "schema.history.internal.kafka.topic",
        "schemahistory.inventory",
    ),
];

/// Debezium's tutorial connector: every key mapped or listed as ignored.
#[test]
fn the_mysql_tutorial_config_runs_as_it_is() {
    let (c, warnings) = load(MYSQL_TUTORIAL);
    assert_eq!(c.name, "inventory-connector");
    assert_eq!(c.topic_prefix, "dbserver1");
    let my = c.mysql.as_ref().unwrap();
    assert_eq!(my.url.expose(), "mysql://debezium@mysql:3306");
    assert_eq!(my.password.as_ref().unwrap().expose(), "dbz");
    assert_eq!(my.server_id, 184054);
    assert!(my.filter.captures("inventory", "customers"));
    assert!(
        my.filter.captures("INVENTORY", "orders"),
        "case-insensitive as Debezium"
    );
    assert!(!my.filter.captures("other", "customers"));
    for key in [
        "tasks.max",
        "schema.history.internal.kafka.bootstrap.servers",
        "schema.history.internal.kafka.topic",
    ] {
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with(key) && w.contains("ignored")),
            "{key}: {warnings:?}"
        );
    }
}

#[test]
fn postgres_connection_selection_and_slot_map_to_sluice_keys() {
    let (c, warnings) = load(&[
        ("name", "fulfillment"),
        (
            "connector.class",
            "io.debezium.connector.postgresql.PostgresConnector",
        ),
        ("database.hostname", "10.0.0.5"),
        ("database.port", "5433"),
        ("database.user", "rep user"),
        ("database.password", "pw"),
        ("database.dbname", "shop"),
        ("database.sslmode", "verify-full"),
        ("database.sslrootcert", "/etc/ca.pem"),
        ("database.server.name", "fulfillment"),
        (
            "table.whitelist",
            "public.inventory,public\\.order_.*,public.signals",
        ),
        ("column.exclude.list", "public.inventory.secret"),
        ("column.mask.with.5.chars", "public.inventory.name"),
        (
            "column.mask.hash.SHA-256.with.salt.pepper",
            "public.inventory.email",
        ),
        ("column.truncate.to.3.chars", "public.inventory.note"),
        (
            "message.key.columns",
            "public.inventory:sku,site;public.x:id",
        ),
        ("slot.name", "fulfil"),
        ("publication.autocreate.mode", "filtered"),
        ("snapshot.mode", "never"),
        ("decimal.handling.mode", "string"),
        ("time.precision.mode", "connect"),
        ("heartbeat.interval.ms", "5000"),
        ("signal.data.collection", "public.signals"),
        ("incremental.snapshot.chunk.size", "500"),
        ("provide.transaction.metadata", "true"),
        ("tombstones.on.delete", "false"),
        ("skipped.operations", "none"),
        ("plugin.name", "pgoutput"),
        ("notification.enabled.channels", "sink,log"),
        ("notification.sink.topic.name", "fulfillment.notifications"),
    ]);
    let pg = c.postgres.as_ref().unwrap();
    assert_eq!(
        pg.url.expose(),
        "postgres://rep%20user@10.0.0.5:5433/shop?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem"
    );
    assert_eq!(pg.slot, "fulfil");
    assert_eq!(pg.publication, "dbz_publication");
    assert_eq!(
        pg.publication_autocreate,
        crate::config::PublicationMode::Filtered
    );
    assert!(pg.filter.captures("public", "inventory"));
    assert!(pg.filter.captures("public", "order_2024"));
    assert!(
        !pg.filter.captures("public", "inventoryx"),
        "anchored as Debezium's"
    );
    assert_eq!(c.topic_prefix, "fulfillment");
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("database.server.name: deprecated")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("table.whitelist: deprecated")),
        "{warnings:?}"
    );
    assert_eq!(c.snapshot.mode, crate::config::SnapshotMode::NoData);
    assert_eq!(c.snapshot.chunk_size, 500);
    assert_eq!(
        c.types.decimal_handling_mode,
        crate::config::DecimalMode::String
    );
    assert_eq!(c.heartbeat_interval_ms, Some(5000));
    assert_eq!(c.signals.table.as_deref(), Some("public.signals"));
    assert!(c.provide_transaction_metadata);
    assert!(!c.tombstones_on_delete);
    assert!(c.skipped_operations.is_empty());
    assert_eq!(
        c.columns.exclude,
        vec!["re:(?i)public.inventory.secret".to_string()]
    );
    assert_eq!(c.columns.mask_with_chars["re:(?i)public.inventory.name"], 5);
    assert_eq!(
        c.columns.mask_hash["re:(?i)public.inventory.email"]
            .salt
            .expose(),
        "pepper"
    );
    assert_eq!(c.columns.truncate_to["re:(?i)public.inventory.note"], 3);
    assert_eq!(
        c.key_columns["re:(?i)public.inventory"],
        vec!["sku", "site"]
    );
    // Debezium's defaults where Sluice's differ: all_tables publications.
    let (d, _) = load(&[
        ("name", "d"),
        ("connector.class", "PostgresConnector"),
        ("database.hostname", "h"),
        ("database.user", "u"),
        ("database.dbname", "db"),
        ("topic.prefix", "p"),
    ]);
    let pg = d.postgres.unwrap();
    assert_eq!(pg.slot, "debezium");
    assert_eq!(
        pg.publication_autocreate,
        crate::config::PublicationMode::AllTables
    );
    assert!(pg.filter.captures("sales", "orders"));
    assert!(!pg.filter.captures("pg_catalog", "pg_class"));
}

#[test]
fn transforms_and_converters_map_to_unwrap_route_outbox_and_format() {
    let (c, warnings) = load(&[
        ("name", "t"),
        (
            "connector.class",
            "io.debezium.connector.postgresql.PostgresConnector",
        ),
        ("database.hostname", "h"),
        ("database.user", "u"),
        ("database.dbname", "db"),
        ("topic.prefix", "p"),
        ("transforms", "unwrap,route,rename"),
        (
            "transforms.unwrap.type",
            "io.debezium.transforms.ExtractNewRecordState",
        ),
        ("transforms.unwrap.drop.tombstones", "false"),
        ("transforms.unwrap.delete.handling.mode", "rewrite"),
        ("transforms.unwrap.add.fields", "op,table"),
        (
            "transforms.route.type",
            "io.debezium.transforms.ByLogicalTableRouter",
        ),
        ("transforms.route.topic.regex", "p\\.public\\.shard_(.*)"),
        ("transforms.route.topic.replacement", "p.public.all_shards"),
        (
            "transforms.rename.type",
            "org.apache.kafka.connect.transforms.RegexRouter",
        ),
        ("transforms.rename.regex", "p\\.public\\.(.*)"),
        ("transforms.rename.replacement", "cdc.$1"),
        (
            "key.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        ("key.converter.schemas.enable", "false"),
        (
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        ("value.converter.schemas.enable", "false"),
    ]);
    assert!(c.unwrap.enabled);
    assert_eq!(c.unwrap.add_fields, vec!["op", "table"]);
    assert_eq!(
        c.unwrap.delete_tombstone_handling_mode,
        crate::config::unwrap::DeleteHandling::RewriteWithTombstone
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("deprecated") && w.contains("rewrite-with-tombstone")),
        "{warnings:?}"
    );
    assert_eq!(c.route.len(), 2);
    assert_eq!(c.route[0].replacement, "p.public.all_shards");
    assert!(c.route[0].key_enforce_uniqueness);
    assert_eq!(c.route[1].replacement, "cdc.$1");
    assert!(!c.route[1].key_enforce_uniqueness);
    assert_eq!(c.format.schemas, Some(false));

    let (o, _) = load(&[
        ("name", "o"),
        (
            "connector.class",
            "io.debezium.connector.mysql.MySqlConnector",
        ),
        ("database.hostname", "h"),
        ("database.user", "u"),
        ("database.server.id", "7"),
        ("topic.prefix", "p"),
        ("table.include.list", "shop\\.outbox"),
        ("transforms", "outbox"),
        (
            "transforms.outbox.type",
            "io.debezium.transforms.outbox.EventRouter",
        ),
        ("transforms.outbox.route.by.field", "kind"),
        ("transforms.outbox.table.expand.json.payload", "true"),
    ]);
    assert_eq!(o.outbox.len(), 1);
    assert_eq!(o.outbox[0].table, "shop.outbox");
    assert_eq!(o.outbox[0].route_by_field, "kind");
    assert!(o.outbox[0].expand_json_payload);
}

#[test]
fn avro_converters_of_confluent_and_apicurio_point_at_the_registry() {
    let base = [
        ("name", "a"),
        (
            "connector.class",
            "io.debezium.connector.postgresql.PostgresConnector",
        ),
        ("database.hostname", "h"),
        ("database.user", "u"),
        ("database.dbname", "db"),
        ("topic.prefix", "p"),
    ];
    let mut confluent = base.to_vec();
    confluent.extend([
        ("key.converter", "io.confluent.connect.avro.AvroConverter"),
        ("key.converter.schema.registry.url", "http://r:8081"),
        ("value.converter", "io.confluent.connect.avro.AvroConverter"),
        ("value.converter.schema.registry.url", "http://r:8081"),
        ("value.converter.basic.auth.credentials.source", "USER_INFO"),
        ("value.converter.basic.auth.user.info", "fred:letmein"),
    ]);
    let (c, _) = load(&confluent);
    assert_eq!(c.format.value, crate::config::ValueFormat::Avro);
    assert_eq!(c.format.key_format(), crate::config::ValueFormat::Avro);
    assert_eq!(c.format.registry_url.as_deref(), Some("http://r:8081"));
    assert_eq!(c.format.registry_username.as_deref(), Some("fred"));
    assert_eq!(
        c.format.registry_password.as_ref().unwrap().expose(),
        "letmein"
    );
    let mut apicurio = base.to_vec();
    apicurio.extend([
        (
            "value.converter",
            "io.apicurio.registry.utils.converter.AvroConverter",
        ),
        (
            "value.converter.apicurio.registry.url",
            "http://apicurio:8080/apis/registry/v2",
        ),
        ("value.converter.apicurio.registry.auto-register", "true"),
    ]);
    let (c, warnings) = load(&apicurio);
    assert_eq!(
        c.format.registry_url.as_deref(),
        Some("http://apicurio:8080/apis/ccompat/v7")
    );
    assert!(
        warnings.iter().any(|w| w.contains("as-confluent")),
        "{warnings:?}"
    );
}

/// A key that would change behaviour is refused by name with the reason; several are
/// named at once.
#[test]
fn unsupported_behaviour_is_refused_by_name() {
    let mut base = MYSQL_TUTORIAL.to_vec();
    base.extend([
        ("transforms", "filter"),
        ("transforms.filter.type", "io.debezium.transforms.Filter"),
        ("snapshot.select.statement.overrides", "inventory.orders"),
        ("event.processing.failure.handling.mode", "skip"),
        ("made.up.key", "1"),
    ]);
    let r = refused(&base);
    for part in [
        "transforms.filter.type: the transform \"io.debezium.transforms.Filter\" is not offered",
        "snapshot.select.statement.overrides: not offered",
        "event.processing.failure.handling.mode: \"skip\" is not supported",
        "made.up.key: not a property Sluice knows",
    ] {
        assert!(r.contains(part), "{part}\nin: {r}");
    }
    let mut pg = vec![
        ("name", "x"),
        (
            "connector.class",
            "io.debezium.connector.postgresql.PostgresConnector",
        ),
        ("database.hostname", "h"),
        ("database.user", "u"),
        ("database.dbname", "db"),
        ("topic.prefix", "p"),
    ];
    pg.push(("plugin.name", "decoderbufs"));
    assert!(refused(&pg)
        .contains("plugin.name: \"decoderbufs\" is not offered: Sluice decodes pgoutput"));
    let r = refused(&[
        ("name", "x"),
        (
            "connector.class",
            "io.confluent.connect.jdbc.JdbcSourceConnector",
        ),
    ]);
    assert!(r.starts_with("connector.class:"), "{r}");
    // The outbox router needs the one outbox table.
    let mut outbox = MYSQL_TUTORIAL.to_vec();
    outbox.extend([
        ("transforms", "outbox"),
        (
            "transforms.outbox.type",
            "io.debezium.transforms.outbox.EventRouter",
        ),
    ]);
    assert!(refused(&outbox).contains("set table.include.list to the one outbox table"));
}

/// Connect's JSON file form and Debezium Server's properties reach the same connector.
#[test]
fn json_files_and_debezium_server_properties_convert_alike() {
    let config: serde_json::Map<String, serde_json::Value> = MYSQL_TUTORIAL
        .iter()
        .filter(|(k, _)| *k != "name")
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    let json = serde_json::json!({"name": "inventory-connector", "config": config}).to_string();
    let (text, _) = file_from_json(Path::new("inv.json"), &json).unwrap();
    let from_json = ConnectorConfig::parse(Path::new("inv.json"), &text).unwrap();

    let mut server = String::from(
        "debezium.sink.type=kafka\ndebezium.sink.kafka.producer.bootstrap.servers=kafka:9092\n",
    );
    for (k, v) in MYSQL_TUTORIAL {
        server.push_str(&format!("debezium.source.{k}={v}\n"));
    }
    let (props, notes) = properties::server(&properties::parse(&server));
    assert!(
        notes
            .iter()
            .any(|n| n.contains("bootstrap_servers = \"kafka:9092\"")),
        "{notes:?}"
    );
    let (from_server, _) = {
        let c = convert(None, &props).unwrap();
        let text = toml::to_string(&c.document).unwrap();
        (
            ConnectorConfig::parse(Path::new("s.toml"), &text).unwrap(),
            c.warnings,
        )
    };
    assert_eq!(from_json.name, from_server.name);
    assert_eq!(
        from_json.mysql.as_ref().unwrap().url.expose(),
        from_server.mysql.as_ref().unwrap().url.expose()
    );
    assert_eq!(
        from_json.mysql.unwrap().tables,
        from_server.mysql.unwrap().tables
    );
    // The recorded properties carry the password; their Debug does not.
    let recorded = from_json.debezium.unwrap();
    assert_eq!(recorded.properties["database.password"], "dbz");
    assert!(!format!("{recorded:?}").contains("dbz\""), "{recorded:?}");
}
