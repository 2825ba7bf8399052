//! Unit tests of connector files.

use super::*;

const GOOD: &str = r#"
name = "inventory"
source = "postgres"
topic_prefix = "inventory"
tombstones_on_delete = true
[postgres]
url = "postgres://user:pw@localhost:5432/db"
slot = "sluice_inventory"
publication = "sluice_inventory"
tables = ["public.customers", "public.*"]
[snapshot]
mode = "initial"
[format]
value = "json"
schemas = true
"#;

fn parse(text: &str) -> Result<ConnectorConfig, ConfigError> {
    ConnectorConfig::parse(Path::new("connectors/inv.toml"), text)
}

#[test]
fn accepts_documented_file() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.name, "inventory");
    assert_eq!(c.snapshot.mode, SnapshotMode::Initial);
    assert!(c.format.json_schemas());
    assert!(!c.publishes("t") && c.publishes("d"));
    assert_eq!(format!("{:?}", c.postgres.unwrap().url), "***");
}

#[test]
fn errors_name_file_and_key() {
    let cases = [
        (
            GOOD.replace("tombstones_on_delete", "tombstones"),
            "tombstones",
        ),
        (GOOD.replace("slot = \"sluice_inventory\"\n", ""), "slot"),
        (
            GOOD.replace("schemas = true", "schemas = \"yes\""),
            "schemas",
        ),
        (
            GOOD.replace(
                "topic_prefix = \"inventory\"",
                "topic_prefix = \"inv/entory\"",
            ),
            "topic_prefix",
        ),
        (
            GOOD.replace("\"public.customers\", ", "\"customers\", "),
            "postgres.tables",
        ),
        (
            GOOD.replace("mode = \"initial\"", "mode = \"sometimes\""),
            "sometimes",
        ),
        (
            GOOD.replace(
                "publication = \"sluice_inventory\"",
                "publication = \"Sluice_Pub\"",
            ),
            "postgres.publication",
        ),
        (
            GOOD.replace(
                "publication = \"sluice_inventory\"",
                "publication = \"a,b\"",
            ),
            "postgres.publication",
        ),
        (
            GOOD.replace(
                "topic_prefix = \"inventory\"",
                &format!("topic_prefix = \"{}\"", "p".repeat(229)),
            ),
            "heartbeat topic",
        ),
    ];
    let longest_prefix = GOOD.replace(
        "topic_prefix = \"inventory\"",
        &format!("topic_prefix = \"{}\"", "p".repeat(228)),
    );
    assert!(parse(&longest_prefix).is_ok());
    for (text, key) in cases {
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("connectors/inv.toml"), "{err}");
        assert!(err.contains(key), "expected `{key}` in: {err}");
    }
}

#[test]
fn url_never_in_errors() {
    let err = parse(&GOOD.replace(
        "tables = [\"public.customers\", \"public.*\"]",
        "tables = []",
    ))
    .unwrap_err()
    .to_string();
    assert!(!err.contains("pw@"), "{err}");
}

#[test]
fn types_keys_parse_and_belong_to_their_source() {
    let with = |types: &str| format!("{GOOD}[types]\n{types}\n");
    let c = parse(&with(
            "decimal_handling_mode = \"string\"\nbinary_handling_mode = \"base64-url-safe\"\ntime_precision_mode = \"connect\"\ninterval_handling_mode = \"string\"\nhstore_handling_mode = \"map\"\ninclude_unknown_datatypes = true",
        ))
        .unwrap();
    assert_eq!(c.types.decimal_handling_mode, DecimalMode::String);
    assert_eq!(c.types.binary_handling_mode, BinaryMode::Base64UrlSafe);
    assert_eq!(
        c.types.time_precision_mode,
        Some(TimePrecisionMode::Connect)
    );
    assert!(c.types.include_unknown_datatypes);
    let cases = [
        ("decimal_handling_mode = \"exact\"", "exact"),
        (
            "bigint_unsigned_handling_mode = \"precise\"",
            "types.bigint_unsigned_handling_mode",
        ),
        ("tinyint1_as_boolean = true", "types.tinyint1_as_boolean"),
    ];
    for (types, key) in cases {
        let err = parse(&with(types)).unwrap_err().to_string();
        assert!(err.contains(key), "expected `{key}` in: {err}");
    }
    let mysql = |types: &str| {
        format!(
                "name = \"m\"\nsource = \"mysql\"\ntopic_prefix = \"m\"\n[mysql]\nurl = \"mysql://u:p@localhost:3306\"\nserver_id = 5\ntables = [\"db.t\"]\n[types]\n{types}\n"
            )
    };
    parse(&mysql(
        "bigint_unsigned_handling_mode = \"precise\"\ntime_precision_mode = \"connect\"",
    ))
    .unwrap();
    for (types, key) in [
        (
            "time_precision_mode = \"adaptive\"",
            "adaptive_time_microseconds",
        ),
        (
            "hstore_handling_mode = \"map\"",
            "types.hstore_handling_mode",
        ),
        (
            "interval_handling_mode = \"string\"",
            "types.interval_handling_mode",
        ),
    ] {
        let err = parse(&mysql(types)).unwrap_err().to_string();
        assert!(err.contains(key), "expected `{key}` in: {err}");
    }
}

#[test]
fn table_patterns_with_quoted_identifiers() {
    let p = |s: &str| TablePattern::parse(s);
    assert_eq!(
        p("public.orders").unwrap(),
        TablePattern {
            schema: "public".into(),
            table: Some("orders".into())
        }
    );
    assert_eq!(p("shop.*").unwrap().table, None);
    let q = p(r#""Quoted . Schema"."Ta""ble""#).unwrap();
    assert_eq!(q.schema, "Quoted . Schema");
    assert_eq!(q.table.as_deref(), Some("Ta\"ble"));
    assert!(q.matches("Quoted . Schema", "Ta\"ble"));
    assert!(!q.matches("Quoted . Schema", "Table"));
    assert_eq!(q.to_string(), r#""Quoted . Schema"."Ta""ble""#);
    let b = p("`my.db`.`t`").unwrap();
    assert_eq!(
        (b.schema.as_str(), b.table.as_deref()),
        ("my.db", Some("t"))
    );
    assert_eq!(p(r#"s."*""#).unwrap().table.as_deref(), Some("*"));
    for bad in [
        "orders",
        "a.b.c",
        ".t",
        "s.",
        r#""open.t"#,
        "s.t*",
        r#"""."t""#,
    ] {
        assert!(p(bad).is_err(), "{bad}");
    }
    let c = parse(&GOOD.replace(
        "tables = [\"public.customers\", \"public.*\"]",
        r#"tables = ["\"Quoted . Schema\".\"Table\""]"#,
    ))
    .unwrap();
    assert!(c
        .postgres
        .unwrap()
        .filter
        .captures("Quoted . Schema", "Table"));
}

#[test]
fn signal_table_must_be_captured_and_chunks_sized() {
    let ok = format!("{GOOD}[signals]\ntable = \"public.debezium_signal\"\n");
    assert_eq!(
        parse(&ok).unwrap().signals.table.as_deref(),
        Some("public.debezium_signal")
    );
    let other = format!("{GOOD}[signals]\ntable = \"ops.debezium_signal\"\n");
    let e = parse(&other).unwrap_err().to_string();
    assert!(
        e.contains("signals.table") && e.contains("not captured"),
        "{e}"
    );
    let bad = format!("{GOOD}[signals]\ntable = \"nodot\"\n");
    let e = parse(&bad).unwrap_err().to_string();
    assert!(e.contains("schema.table"), "{e}");
    let zero = GOOD.replace("mode = \"initial\"", "mode = \"initial\"\nchunk_size = 0");
    let e = parse(&zero).unwrap_err().to_string();
    assert!(e.contains("snapshot.chunk_size"), "{e}");
    assert_eq!(parse(GOOD).unwrap().snapshot.chunk_size, 1024);
}

/// TLS modes that encrypt without authenticating the server are named at start, with the
/// setting that does; verify modes and an explicit `disable` are not.
#[test]
fn unauthenticated_tls_modes_are_warned_about() {
    let with = |url: &str| GOOD.replace("postgres://user:pw@localhost:5432/db", url);
    for url in [
        "postgres://user:pw@localhost:5432/db",
        "postgres://user:pw@localhost:5432/db?sslmode=require",
    ] {
        let w = parse(&with(url)).unwrap().tls_warning().expect(url);
        assert!(w.contains("sslmode=verify-full"), "{w}");
        assert!(!w.contains("pw"), "{w}");
    }
    for url in [
        "postgres://user:pw@localhost:5432/db?sslmode=verify-full",
        "postgres://user:pw@localhost:5432/db?sslmode=disable",
    ] {
        assert_eq!(parse(&with(url)).unwrap().tls_warning(), None, "{url}");
    }
}
