//! Kafka Connect's converters and single message transforms as Sluice's `[format]`,
//! `[unwrap]`, `[[route]]` and `[[outbox]]`.

use super::{list, put, s, strings, Props};

const JSON: &str = "org.apache.kafka.connect.json.JsonConverter";
const CONFLUENT_AVRO: &str = "io.confluent.connect.avro.AvroConverter";
const APICURIO_AVRO: &str = "io.apicurio.registry.utils.converter.AvroConverter";

/// One converter (`key` or `value`): its format and, for JSON, whether schemas are on.
struct Converter {
    avro: bool,
    schemas: Option<bool>,
}

/// `<side>.converter` and its settings; `None` when not given (Connect's worker default,
/// JSON with schemas, is Sluice's default too).
fn converter(p: &mut Props, doc: &mut toml::Table, side: &str) -> Option<Converter> {
    let key = format!("{side}.converter");
    let class = p.take(&key)?;
    let prefix = format!("{key}.");
    match class.as_str() {
        JSON => {
            let schemas = p.flag(&format!("{prefix}schemas.enable"));
            Some(Converter {
                avro: false,
                schemas: Some(schemas.unwrap_or(true)),
            })
        }
        CONFLUENT_AVRO => {
            match p.take(&format!("{prefix}schema.registry.url")) {
                Some(url) => {
                    // Several URLs: the first (Sluice talks to one registry address).
                    let first = list(&url).into_iter().next().unwrap_or_default();
                    put(doc, "format.registry_url", s(first));
                }
                None => p.refuse(
                    &format!("{prefix}schema.registry.url"),
                    "missing (AvroConverter needs the schema registry's URL)",
                ),
            }
            registry_auth(p, doc, &prefix);
            for which in ["key", "value"] {
                let k = format!("{prefix}{which}.subject.name.strategy");
                if let Some(strategy) = p.take(&k) {
                    let name = strategy.rsplit('.').next().unwrap_or_default();
                    let mapped = match name {
                        "TopicNameStrategy" => Some("topic"),
                        "RecordNameStrategy" => Some("record"),
                        "TopicRecordNameStrategy" => Some("topic_record"),
                        _ => None,
                    };
                    match mapped {
                        Some(m) => put(doc, "format.subject_strategy", s(m)),
                        None => p.refuse(&k, format!("\"{strategy}\" is not offered; use TopicNameStrategy, RecordNameStrategy or TopicRecordNameStrategy")),
                    }
                }
            }
            p.only(
                &format!("{prefix}auto.register.schemas"),
                &["true"],
                "Sluice registers the schemas it writes",
            );
            Some(Converter {
                avro: true,
                schemas: None,
            })
        }
        APICURIO_AVRO => {
            match p.take(&format!("{prefix}apicurio.registry.url")) {
                Some(url) => {
                    // Sluice speaks the Confluent-compatible API Apicurio serves.
                    let base = url
                        .trim_end_matches('/')
                        .trim_end_matches("/apis/registry/v2")
                        .trim_end_matches("/apis/registry/v3")
                        .to_string();
                    put(
                        doc,
                        "format.registry_url",
                        s(format!("{base}/apis/ccompat/v7")),
                    );
                }
                None => p.refuse(
                    &format!("{prefix}apicurio.registry.url"),
                    "missing (the Apicurio converter needs the registry's URL)",
                ),
            }
            let as_confluent = p.flag(&format!("{prefix}apicurio.registry.as-confluent"));
            if as_confluent != Some(true) {
                p.warnings.push(format!(
                    "{key}: Sluice writes Avro in Confluent's wire format (4-byte schema id) through Apicurio's ccompat API; consumers with Apicurio's deserializer need apicurio.registry.as-confluent=true"
                ));
            }
            for (k, _) in p.take_prefixed(&format!("{prefix}apicurio.")) {
                p.warnings.push(format!(
                    "{k}: ignored (Sluice registers schemas through the ccompat API)"
                ));
            }
            Some(Converter {
                avro: true,
                schemas: None,
            })
        }
        other => {
            p.refuse(
                &key,
                format!("\"{other}\" is not offered; use {JSON} or an AvroConverter (Confluent's or Apicurio's)"),
            );
            None
        }
    }
}

/// The registry's basic authentication (`basic.auth.credentials.source=USER_INFO`).
fn registry_auth(p: &mut Props, doc: &mut toml::Table, prefix: &str) {
    let source = p.take(&format!("{prefix}basic.auth.credentials.source"));
    let info = p.take(&format!("{prefix}basic.auth.user.info"));
    if let Some(info) = info {
        if source.as_deref().is_some_and(|s| s != "USER_INFO") {
            p.refuse(
                &format!("{prefix}basic.auth.credentials.source"),
                "only USER_INFO is offered",
            );
            return;
        }
        let (user, password) = info.split_once(':').unwrap_or((info.as_str(), ""));
        put(doc, "format.registry_username", s(user));
        put(doc, "format.registry_password", s(password));
    }
}

/// `key.converter`, `value.converter` and Debezium's `converters`.
pub(super) fn converters(p: &mut Props, doc: &mut toml::Table) {
    let key = converter(p, doc, "key");
    let value = converter(p, doc, "value");
    let value_avro = value.as_ref().is_some_and(|c| c.avro);
    let key_avro = key.as_ref().map(|c| c.avro);
    if value_avro {
        put(doc, "format.value", s("avro"));
    }
    if let Some(k) = key_avro {
        if k != value_avro {
            put(doc, "format.key", s(if k { "avro" } else { "json" }));
        }
    }
    let key_schemas = key.as_ref().and_then(|c| c.schemas);
    let value_schemas = value.as_ref().and_then(|c| c.schemas);
    match (key_schemas, value_schemas) {
        (Some(k), Some(v)) if k != v => p.refuse(
            "key.converter.schemas.enable",
            "differs from value.converter.schemas.enable; Sluice writes both JSON keys and values with or without schemas",
        ),
        (Some(b), _) | (None, Some(b)) => put(doc, "format.schemas", toml::Value::Boolean(b)),
        _ => {}
    }
    // Debezium's custom converters: the one for MySQL's tinyint(1) is built in.
    if let Some(names) = p.take("converters") {
        for name in list(&names) {
            let ty = p.take(&format!("{name}.type")).unwrap_or_default();
            if ty == "io.debezium.connector.mysql.converters.TinyIntOneToBooleanConverter"
                || ty == "io.debezium.connector.binlog.converters.TinyIntOneToBooleanConverter"
            {
                put(doc, "types.tinyint1_as_boolean", toml::Value::Boolean(true));
                if p.take(&format!("{name}.selector")).is_some() {
                    p.refuse(
                        &format!("{name}.selector"),
                        "Sluice reads every tinyint(1) column as a boolean (no column selector)",
                    );
                }
                for (k, _) in p.take_prefixed(&format!("{name}.")) {
                    p.warnings.push(format!("{k}: ignored"));
                }
            } else {
                p.refuse(
                    "converters",
                    format!("\"{name}\" ({ty}) is not offered; the only custom converter built in is TinyIntOneToBooleanConverter"),
                );
            }
        }
    }
}

/// `transforms=a,b` and each `transforms.<alias>.*`.
pub(super) fn transforms(p: &mut Props, doc: &mut toml::Table, source: &str) {
    let Some(aliases) = p.take("transforms") else {
        return;
    };
    let mut routes: Vec<toml::Value> = Vec::new();
    for alias in list(&aliases) {
        let prefix = format!("transforms.{alias}.");
        let Some(ty) = p.take(&format!("{prefix}type")) else {
            p.refuse(&format!("{prefix}type"), "missing (the transform's class)");
            continue;
        };
        for key in ["predicate", "negate"] {
            if p.take(&format!("{prefix}{key}")).is_some() {
                p.refuse(&format!("{prefix}{key}"), "predicates are not offered");
            }
        }
        match ty.as_str() {
            "io.debezium.transforms.ExtractNewRecordState" => unwrap(p, doc, &prefix),
            "io.debezium.transforms.ByLogicalTableRouter" => {
                let mut route = toml::Table::new();
                take_into(p, &mut route, &prefix, "topic.regex", "regex");
                take_into(p, &mut route, &prefix, "topic.replacement", "replacement");
                if let Some(b) = p.flag(&format!("{prefix}key.enforce.uniqueness")) {
                    route.insert("key_enforce_uniqueness".into(), toml::Value::Boolean(b));
                }
                take_into(p, &mut route, &prefix, "key.field.name", "key_field_name");
                take_into(p, &mut route, &prefix, "key.field.regex", "key_field_regex");
                take_into(p, &mut route, &prefix, "key.field.replacement", "key_field_replacement");
                routes.push(toml::Value::Table(route));
            }
            "org.apache.kafka.connect.transforms.RegexRouter" => {
                let mut route = toml::Table::new();
                take_into(p, &mut route, &prefix, "regex", "regex");
                take_into(p, &mut route, &prefix, "replacement", "replacement");
                // RegexRouter renames the topic only.
                route.insert("key_enforce_uniqueness".into(), toml::Value::Boolean(false));
                routes.push(toml::Value::Table(route));
            }
            "io.debezium.transforms.outbox.EventRouter" => outbox(p, doc, &prefix, source),
            other => p.refuse(
                &format!("{prefix}type"),
                format!("the transform \"{other}\" is not offered; Sluice has ExtractNewRecordState, outbox.EventRouter, ByLogicalTableRouter and RegexRouter"),
            ),
        }
        // What the mapping above did not read.
        for (k, _) in p.take_prefixed(&prefix) {
            p.refuse(&k, "not a setting of this transform Sluice offers");
        }
    }
    if !routes.is_empty() {
        doc.insert("route".into(), toml::Value::Array(routes));
    }
}

/// `transforms.<alias>.<from>` into `table[to]`; a missing required setting is left for
/// Sluice's own validation to name.
fn take_into(p: &mut Props, table: &mut toml::Table, prefix: &str, from: &str, to: &str) {
    if let Some(v) = p.take(&format!("{prefix}{from}")) {
        table.insert(to.into(), s(v));
    }
}

/// `ExtractNewRecordState` as `[unwrap]` (3.x names, and the 1.x/2.x `drop.tombstones` and
/// `delete.handling.mode`).
fn unwrap(p: &mut Props, doc: &mut toml::Table, prefix: &str) {
    put(doc, "unwrap.enabled", toml::Value::Boolean(true));
    let key = |k: &str| format!("{prefix}{k}");
    let mode = p.take(&key("delete.tombstone.handling.mode"));
    let old_drop = p.flag(&key("drop.tombstones"));
    let old_mode = p.take(&key("delete.handling.mode"));
    let mode = match (mode, old_drop, old_mode) {
        (Some(m), _, _) => Some(m),
        (None, None, None) => None,
        (None, drop, old) => {
            // drop.tombstones (default true) × delete.handling.mode (default drop).
            let keep_tombstones = drop == Some(false);
            let m = match (old.as_deref().unwrap_or("drop"), keep_tombstones) {
                ("drop", false) => "drop",
                ("drop", true) => "tombstone",
                ("rewrite", false) => "rewrite",
                ("rewrite", true) => "rewrite-with-tombstone",
                ("none", true) => "tombstone",
                ("none", false) => "drop",
                (other, _) => {
                    p.refuse(
                        &key("delete.handling.mode"),
                        format!("\"{other}\" is not drop, rewrite or none"),
                    );
                    "drop"
                }
            };
            p.warnings.push(format!(
                "{}: deprecated (drop.tombstones / delete.handling.mode), read as delete.tombstone.handling.mode={m}",
                prefix.trim_end_matches('.')
            ));
            Some(m.to_string())
        }
    };
    if let Some(m) = mode {
        let lower = m.to_ascii_lowercase();
        if [
            "drop",
            "tombstone",
            "rewrite",
            "rewrite-with-tombstone",
            "delete-to-tombstone",
        ]
        .contains(&lower.as_str())
        {
            put(doc, "unwrap.delete_tombstone_handling_mode", s(lower));
        } else {
            p.refuse(&key("delete.tombstone.handling.mode"), format!("\"{m}\" is not offered; use drop, tombstone, rewrite, rewrite-with-tombstone or delete-to-tombstone"));
        }
    }
    for (from, to) in [("add.fields", "add_fields"), ("add.headers", "add_headers")] {
        if let Some(v) = p.take(&key(from)) {
            put(doc, &format!("unwrap.{to}"), strings(list(&v)));
        }
    }
    for (from, to) in [
        ("add.fields.prefix", "add_fields_prefix"),
        ("add.headers.prefix", "add_headers_prefix"),
        ("drop.fields.header.name", "drop_fields_header_name"),
    ] {
        if let Some(v) = p.take(&key(from)) {
            put(doc, &format!("unwrap.{to}"), s(v));
        }
    }
    if let Some(b) = p.flag(&key("drop.fields.keep.schema.compatible")) {
        put(
            doc,
            "unwrap.drop_fields_keep_schema_compatible",
            toml::Value::Boolean(b),
        );
    }
}

/// `outbox.EventRouter` as `[[outbox]]`: Debezium applies it to every record of the
/// connector, so the connector must capture exactly one table, the outbox table.
fn outbox(p: &mut Props, doc: &mut toml::Table, prefix: &str, source: &str) {
    let tables: Vec<String> = doc
        .get(source)
        .and_then(|t| t.get("tables"))
        .and_then(|t| t.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let table = match tables.as_slice() {
        [one] => one
            .strip_prefix("re:(?i)")
            .map(|t| t.replace("\\.", "."))
            .filter(|t| !t.contains(['*', '+', '?', '(', '[', '|', '\\', '^', '$'])),
        _ => None,
    };
    let Some(table) = table else {
        p.refuse(
            &format!("{prefix}type"),
            "outbox.EventRouter applies to every table of the connector: set table.include.list to the one outbox table (schema.table, no pattern)",
        );
        return;
    };
    let mut o = toml::Table::new();
    o.insert("table".into(), s(table));
    for (from, to) in [
        ("table.field.event.id", "id_field"),
        ("table.field.event.key", "key_field"),
        ("table.field.event.payload", "payload_field"),
        ("route.by.field", "route_by_field"),
        ("route.topic.replacement", "route_topic_replacement"),
    ] {
        take_into(p, &mut o, prefix, from, to);
    }
    if let Some(b) = p.flag(&format!("{prefix}table.expand.json.payload")) {
        o.insert("expand_json_payload".into(), toml::Value::Boolean(b));
    }
    if let Some(v) = p.take(&format!("{prefix}table.fields.additional.placement")) {
        o.insert("additional_placement".into(), strings(list(&v)));
    }
    let outboxes = doc
        .entry("outbox")
        .or_insert_with(|| toml::Value::Array(Vec::new()));
    if let Some(a) = outboxes.as_array_mut() {
        a.push(toml::Value::Table(o));
    }
}
