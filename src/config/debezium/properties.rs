//! Java `.properties` text (Debezium Server's `application.properties`) and Debezium
//! Server's `debezium.*` names read as a connector's properties.

use std::collections::BTreeMap;

/// The pairs of Java properties text: `key=value`, `key: value` or `key value`; `#` and
/// `!` comments; a line ending in an odd number of `\` continues on the next; `\t`, `\n`,
/// `\uXXXX` and escaped separators in keys and values.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        let trailing = line.chars().rev().take_while(|c| *c == '\\').count();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        let (k, v) = split(&logical);
        out.insert(unescape(&k), unescape(v.trim_start()));
        logical.clear();
    }
    if !logical.is_empty() {
        let (k, v) = split(&logical);
        out.insert(unescape(&k), unescape(v.trim_start()));
    }
    out
}

/// The key (still escaped) and the value text after the separator.
fn split(line: &str) -> (String, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' => return (line[..i].trim_end().to_string(), &line[i + 1..]),
            c if c.is_whitespace() => {
                let rest = line[i..].trim_start();
                let rest = rest
                    .strip_prefix('=')
                    .or_else(|| rest.strip_prefix(':'))
                    .unwrap_or(rest);
                return (line[..i].to_string(), rest);
            }
            _ => {}
        }
    }
    (line.to_string(), "")
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(ch);
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Debezium Server's settings split: the connector's properties (`debezium.source.*`,
/// `debezium.transforms.*`, `debezium.format.*` as converters) and the daemon's
/// (`debezium.sink.*`, offsets storage), which are named back as notes for the daemon config.
pub fn server(props: &BTreeMap<String, String>) -> (BTreeMap<String, String>, Vec<String>) {
    let mut connector = BTreeMap::new();
    let mut notes = Vec::new();
    for (k, v) in props {
        if let Some(rest) = k.strip_prefix("debezium.source.") {
            if rest.starts_with("offset.") {
                notes.push(format!("{k}: the daemon's [offsets] (file or kafka) stores positions; set it in the daemon config"));
            } else {
                connector.insert(rest.to_string(), v.clone());
            }
        } else if let Some(rest) = k.strip_prefix("debezium.transforms") {
            connector.insert(format!("transforms{rest}"), v.clone());
        } else if let Some(rest) = k.strip_prefix("debezium.format.") {
            match rest.split_once('.') {
                None if rest == "key" || rest == "value" => {
                    let class = match v.as_str() {
                        "json" => "org.apache.kafka.connect.json.JsonConverter",
                        "avro" => "io.confluent.connect.avro.AvroConverter",
                        other => other,
                    };
                    connector.insert(format!("{rest}.converter"), class.to_string());
                }
                Some((side @ ("key" | "value"), setting)) => {
                    connector.insert(format!("{side}.converter.{setting}"), v.clone());
                }
                _ => notes.push(format!("{k}: not read")),
            }
        } else if k == "debezium.sink.type" {
            if v != "kafka" {
                notes.push(format!("{k}: \"{v}\": Sluice's sink is Kafka (or stdout); this file cannot run as it is"));
            }
        } else if let Some(rest) = k.strip_prefix("debezium.sink.kafka.producer.") {
            let shown = if rest.contains("password") || rest.contains("jaas") {
                "********"
            } else {
                v.as_str()
            };
            if rest == "bootstrap.servers" {
                notes.push(format!(
                    "{k}: put bootstrap_servers = \"{shown}\" in the daemon's [sink]"
                ));
            } else {
                notes.push(format!(
                    "{k}: put \"{rest}\" = \"{shown}\" in the daemon's [sink.properties]"
                ));
            }
        } else {
            notes.push(format!(
                "{k}: a Debezium Server / Quarkus setting, not read"
            ));
        }
    }
    (connector, notes)
}

/// The daemon configuration (`sluice.toml` text) for Debezium Server's settings: the Kafka
/// sink and its producer properties, and the offsets store (Kafka's
/// `KafkaOffsetBackingStore` topic, or a file store beside Debezium Server's offsets file,
/// whose Java-serialized content Sluice does not read). `connectors_dir` is `connectors`.
pub fn server_daemon(
    props: &BTreeMap<String, String>,
    base: &std::path::Path,
) -> Result<(String, Vec<String>), String> {
    let get = |k: &str| {
        props
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let quote = |v: &str| toml::Value::String(v.to_string()).to_string();
    let mut notes = Vec::new();
    match get("debezium.sink.type").as_deref() {
        Some("kafka") => {}
        other => {
            return Err(format!(
                "debezium.sink.type: {:?}: Sluice publishes to Kafka; set debezium.sink.type=kafka",
                other.unwrap_or("(missing)")
            ))
        }
    }
    let servers = get("debezium.sink.kafka.producer.bootstrap.servers")
        .ok_or("debezium.sink.kafka.producer.bootstrap.servers: missing (the Kafka brokers)")?;
    let mut text = String::from("# Written by `sluice run --debezium-server` from Debezium Server's properties.\nconnectors_dir = \"connectors\"\n");
    if let Some(ms) = get("debezium.source.offset.flush.interval.ms") {
        let ms: u64 = ms.parse().map_err(|_| {
            format!("debezium.source.offset.flush.interval.ms: \"{ms}\" is not a number")
        })?;
        text.push_str(&format!("offset_flush_interval_ms = {ms}\n"));
    }
    let store = get("debezium.source.offset.storage")
        .unwrap_or_else(|| "org.apache.kafka.connect.storage.FileOffsetBackingStore".into());
    text.push_str("[offsets]\n");
    if store.ends_with("KafkaOffsetBackingStore") {
        let topic = get("debezium.source.offset.storage.topic")
            .ok_or("debezium.source.offset.storage.topic: missing (the offsets topic)")?;
        text.push_str(&format!("store = \"kafka\"\ntopic = {}\n", quote(&topic)));
        if let Some(n) = get("debezium.source.offset.storage.partitions") {
            text.push_str(&format!(
                "topic_partitions = {}\n",
                n.parse::<i32>().map_err(|_| format!(
                    "debezium.source.offset.storage.partitions: \"{n}\" is not a number"
                ))?
            ));
        }
        if let Some(n) = get("debezium.source.offset.storage.replication.factor") {
            text.push_str(&format!(
                "topic_replication_factor = {}\n",
                n.parse::<i32>().map_err(|_| format!(
                    "debezium.source.offset.storage.replication.factor: \"{n}\" is not a number"
                ))?
            ));
        }
    } else if store.ends_with("FileOffsetBackingStore") {
        let file = get("debezium.source.offset.storage.file.filename")
            .unwrap_or_else(|| "data/offsets.dat".into());
        notes.push(format!("debezium.source.offset.storage.file.filename: Debezium Server's file ({file}) is Java-serialized and not read; Sluice keeps its positions in {file}.sluice/ (move a position over with `sluice offsets import`, or use the Kafka offsets store)"));
        let path = base.join(format!("{file}.sluice"));
        text.push_str(&format!(
            "store = \"file\"\npath = {}\n",
            quote(&path.display().to_string())
        ));
    } else {
        return Err(format!("debezium.source.offset.storage: \"{store}\" is not offered; use KafkaOffsetBackingStore or FileOffsetBackingStore"));
    }
    text.push_str(&format!(
        "[sink]\ntype = \"kafka\"\nbootstrap_servers = {}\n[sink.properties]\n",
        quote(&servers)
    ));
    for (k, v) in props {
        let Some(p) = k.strip_prefix("debezium.sink.kafka.producer.") else {
            continue;
        };
        match p {
            "bootstrap.servers" => {}
            "key.serializer" | "value.serializer" => {
                notes.push(format!("{k}: ignored (Sluice writes bytes)"))
            }
            _ => text.push_str(&format!("{} = {}\n", quote(p), quote(v.trim()))),
        }
    }
    Ok((text, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_properties_as_debezium_server_writes_them() {
        let text = "# Debezium Server\n! also a comment\ndebezium.sink.type=kafka\n\
debezium.source.connector.class = io.debezium.connector.postgresql.PostgresConnector\n\
debezium.source.table.include.list: public.a,\\\n    public.b\n\
debezium.source.database.password=p\\u0040ss\\=1\n\
debezium.format.value=json\ndebezium.format.value.schemas.enable=false\n\
key\\ with\\ space  value\n";
        let p = parse(text);
        assert_eq!(p["debezium.source.table.include.list"], "public.a,public.b");
        assert_eq!(p["debezium.source.database.password"], "p@ss=1");
        assert_eq!(p["key with space"], "value");
        assert_eq!(
            p["debezium.source.connector.class"],
            "io.debezium.connector.postgresql.PostgresConnector"
        );
        let (c, notes) = server(&p);
        assert_eq!(c["table.include.list"], "public.a,public.b");
        assert_eq!(
            c["value.converter"],
            "org.apache.kafka.connect.json.JsonConverter"
        );
        assert_eq!(c["value.converter.schemas.enable"], "false");
        assert!(
            notes.iter().any(|n| n.starts_with("key with space")),
            "{notes:?}"
        );
    }
}
