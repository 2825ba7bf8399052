//! Debezium's properties that shape what is published: type handling, keys, column masks
//! and truncation, heartbeats, signals, notifications, transaction metadata, tombstones.

use super::{list, put, regex_pattern, s, strings, Props};

/// Types, keys, masks, heartbeats, signals, transaction metadata and the record shape.
pub(super) fn behaviour(p: &mut Props, doc: &mut toml::Table, source: &str) {
    for (key, sluice, values) in [
        (
            "decimal.handling.mode",
            "types.decimal_handling_mode",
            &["precise", "string", "double"][..],
        ),
        (
            "time.precision.mode",
            "types.time_precision_mode",
            &["adaptive", "adaptive_time_microseconds", "connect"][..],
        ),
        (
            "binary.handling.mode",
            "types.binary_handling_mode",
            &["bytes", "base64", "base64-url-safe", "hex"][..],
        ),
        (
            "interval.handling.mode",
            "types.interval_handling_mode",
            &["numeric", "string"][..],
        ),
        (
            "hstore.handling.mode",
            "types.hstore_handling_mode",
            &["json", "map"][..],
        ),
        (
            "bigint.unsigned.handling.mode",
            "types.bigint_unsigned_handling_mode",
            &["long", "precise"][..],
        ),
    ] {
        if let Some(v) = p.take(key) {
            let lower = v.to_ascii_lowercase();
            if values.contains(&lower.as_str()) {
                put(doc, sluice, s(lower));
            } else {
                p.refuse(
                    key,
                    format!("\"{v}\" is not supported; use one of {}", values.join(", ")),
                );
            }
        }
    }
    if let Some(b) = p.flag("include.unknown.datatypes") {
        put(
            doc,
            "types.include_unknown_datatypes",
            toml::Value::Boolean(b),
        );
    }
    if let Some(b) = p.flag("enable.time.adjuster") {
        put(doc, "types.time_adjuster", toml::Value::Boolean(b));
    }
    p.only(
        "money.fraction.digits",
        &["2"],
        "Sluice publishes money with 2 fraction digits",
    );
    p.only(
        "event.processing.failure.handling.mode",
        &["fail"],
        "Sluice never skips a change it cannot read: it stops and names the cause",
    );
    p.only(
        "event.deserialization.failure.handling.mode",
        &["fail"],
        "Sluice never skips an event it cannot read: it stops and names the cause",
    );
    p.only(
        "inconsistent.schema.handling.mode",
        &["fail"],
        "Sluice never skips an event it cannot read: it stops and names the cause",
    );
    p.only(
        "topic.delimiter",
        &["."],
        "Sluice's topics are <prefix>.<schema>.<table>",
    );
    p.only(
        "topic.naming.strategy",
        &[
            "io.debezium.schema.DefaultTopicNamingStrategy",
            "io.debezium.schema.SchemaTopicNamingStrategy",
        ],
        "Sluice names topics as Debezium's default strategy; use a route transform to rename",
    );
    p.only(
        "topic.heartbeat.prefix",
        &["__debezium-heartbeat"],
        "Sluice's heartbeat topic is __debezium-heartbeat.<prefix>",
    );
    p.only(
        "heartbeat.topics.prefix",
        &["__debezium-heartbeat"],
        "Sluice's heartbeat topic is __debezium-heartbeat.<prefix>",
    );
    p.only(
        "topic.transaction",
        &["transaction"],
        "Sluice's transaction topic is <prefix>.transaction",
    );
    if let Some(ms) = p.number("heartbeat.interval.ms") {
        if ms > 0 {
            put(doc, "heartbeat_interval_ms", toml::Value::Integer(ms));
        }
    }
    if let Some(q) = p.take("heartbeat.action.query") {
        put(doc, &format!("{source}.heartbeat_action_query"), s(q));
    }
    if let Some(b) = p.flag("provide.transaction.metadata") {
        put(doc, "provide_transaction_metadata", toml::Value::Boolean(b));
    }
    if let Some(b) = p.flag("tombstones.on.delete") {
        put(doc, "tombstones_on_delete", toml::Value::Boolean(b));
    }
    if let Some(ops) = p.take("skipped.operations") {
        let ops: Vec<String> = list(&ops).into_iter().filter(|o| o != "none").collect();
        put(doc, "skipped_operations", strings(ops));
    }
    if let Some(b) = p.flag("include.schema.changes") {
        put(doc, "include_schema_changes", toml::Value::Boolean(b));
    }
    if let Some(collection) = p.take("signal.data.collection") {
        put(doc, "signals.table", s(collection));
    }
    if let Some(channels) = p.take("signal.enabled.channels") {
        for c in list(&channels) {
            if c != "source" {
                p.refuse(
                    "signal.enabled.channels",
                    format!("the \"{c}\" channel is not offered; Sluice reads signals from the signal table (source) and from its admin API (POST /connectors/<name>/signals)"),
                );
            }
        }
    }
    // Without the Kafka channel (refused above) its settings change nothing.
    if !p.take_prefixed("signal.kafka.").is_empty() {
        p.warnings
            .push("signal.kafka.*: ignored (the kafka signal channel is not enabled)".into());
    }
    if let Some(channels) = p.take("notification.enabled.channels") {
        for c in list(&channels) {
            match c.as_str() {
                "sink" => match p.take("notification.sink.topic.name") {
                    Some(topic) => put(doc, "notifications.topic", s(topic)),
                    None => p.refuse(
                        "notification.sink.topic.name",
                        "missing (the sink channel needs its topic)",
                    ),
                },
                // Sluice logs every notification.
                "log" => {}
                other => p.refuse(
                    "notification.enabled.channels",
                    format!("the \"{other}\" channel is not offered; use sink (a topic) or log"),
                ),
            }
        }
    }
    if let Some(n) = p.number("incremental.snapshot.chunk.size") {
        put(doc, "snapshot.chunk_size", toml::Value::Integer(n.max(1)));
    }
    if let Some(n) = p.number("snapshot.max.threads") {
        put(doc, "snapshot.max_threads", toml::Value::Integer(n.max(1)));
    }
    if let Some(keys) = p.take("message.key.columns") {
        let mut table = toml::Table::new();
        for entry in keys.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            match entry.split_once(':') {
                Some((t, cols)) if !list(cols).is_empty() => {
                    table.insert(regex_pattern(t.trim()), strings(list(cols)));
                }
                _ => p.refuse(
                    "message.key.columns",
                    format!("\"{entry}\" is not <table regex>:<column>,<column>"),
                ),
            }
        }
        doc.insert("key_columns".into(), toml::Value::Table(table));
    }
    columns(p, doc);
}

/// `column.exclude.list`, `column.mask.*`, `column.truncate.*`.
fn columns(p: &mut Props, doc: &mut toml::Table) {
    if let Some(excluded) = p.take_or_old("column.exclude.list", "column.blacklist") {
        let v = list(&excluded).iter().map(|c| regex_pattern(c)).collect();
        put(doc, "columns.exclude", strings(v));
    }
    if p.take_or_old("column.include.list", "column.whitelist")
        .is_some()
    {
        p.refuse(
            "column.include.list",
            "Sluice selects columns by leaving some out: list those in column.exclude.list",
        );
    }
    for (key, value) in p.take_prefixed("column.") {
        let chars = |middle: &str| -> Option<i64> {
            key.strip_prefix(middle)?
                .strip_suffix(".chars")?
                .parse()
                .ok()
        };
        if let Some(n) = chars("column.mask.with.") {
            for c in list(&value) {
                put_column(doc, "mask_with_chars", &c, toml::Value::Integer(n));
            }
        } else if let Some(n) = chars("column.truncate.to.") {
            for c in list(&value) {
                put_column(doc, "truncate_to", &c, toml::Value::Integer(n));
            }
        } else if let Some(rest) = key.strip_prefix("column.mask.hash.") {
            if rest.starts_with("v2.") {
                p.refuse(&key, "the v2 hashing scheme is not offered; use column.mask.hash.<algorithm>.with.salt.<salt>");
                continue;
            }
            let Some((algorithm, salt)) = rest.split_once(".with.salt.") else {
                p.refuse(&key, "write column.mask.hash.<algorithm>.with.salt.<salt>");
                continue;
            };
            let mut mask = toml::Table::new();
            mask.insert("algorithm".into(), s(algorithm));
            mask.insert("salt".into(), s(salt));
            for c in list(&value) {
                put_column(doc, "mask_hash", &c, toml::Value::Table(mask.clone()));
            }
        } else if key.starts_with("column.propagate.source.type")
            || key == "column.propagate.source.type"
        {
            p.refuse(
                &key,
                "Sluice does not add the source type parameters to schemas",
            );
        } else {
            p.refuse(&key, "not a column property Sluice knows");
        }
    }
}

fn put_column(doc: &mut toml::Table, rule: &str, column: &str, value: toml::Value) {
    let columns = doc
        .entry("columns")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(columns) = columns.as_table_mut() else {
        return;
    };
    let rules = columns
        .entry(rule)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(rules) = rules.as_table_mut() {
        rules.insert(regex_pattern(column), value);
    }
}
