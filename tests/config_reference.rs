//! The configuration reference (`docs/configuration.md`) against the code: every key the
//! daemon file and the connector files accept is documented there, and every key documented
//! there is accepted. The accepted keys are read from the parser itself (an unknown key is
//! refused with the list of the keys expected at that place), so the check cannot drift.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use sluice::config::{ConnectorConfig, DaemonConfig};

/// The keys expected where `text`'s unknown key `zz_unknown` is; `None` when the parser
/// refused `text` for another reason (not a table there).
fn expected<T: DeserializeOwned>(text: &str) -> Option<BTreeSet<String>> {
    let err = toml::from_str::<T>(text).err()?.to_string();
    if !err.contains("unknown field `zz_unknown`") {
        return None;
    }
    let tail = err.split("expected").nth(1)?;
    Some(
        tail.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
    )
}

/// Section ("" for the top level) → accepted keys, for the file type `T`.
fn accepted<T: DeserializeOwned>() -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    let root = expected::<T>("zz_unknown = 1\n").expect("the top level refuses unknown keys");
    for key in &root {
        let nested = expected::<T>(&format!("[{key}]\nzz_unknown = 1\n"))
            .or_else(|| expected::<T>(&format!("[[{key}]]\nzz_unknown = 1\n")));
        if let Some(keys) = nested {
            out.insert(key.clone(), keys);
        }
    }
    out.insert(String::new(), root);
    out
}

/// The keys the reference documents: (section or "", key) from the first cell of each table
/// row (`` `[sink] max_in_flight` ``, `` `name` ``, `` `[api] tls_cert_file`, `tls_key_file` ``).
fn documented() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .expect("docs/configuration.md");
    let mut out = BTreeSet::new();
    // The annotated examples: `[section]` headers and `key = ...` lines (commented or not)
    // inside ```toml blocks.
    let mut in_toml = false;
    let mut section = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_toml = t == "```toml";
            section.clear();
            continue;
        }
        if !in_toml {
            continue;
        }
        let t = t.trim_start_matches('#').trim();
        if let Some(rest) = t.strip_prefix('[') {
            let name = rest.trim_start_matches('[');
            if let Some((name, _)) = name.split_once(']') {
                section = name.to_string();
                out.insert((section.clone(), String::new()));
            }
        } else if let Some((key, _)) = t.split_once('=') {
            let key = key.trim().trim_matches('"');
            if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                out.insert((section.clone(), key.to_string()));
            }
        }
    }
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cell = line.split('|').nth(1).unwrap_or_default();
        let mut section = String::new();
        for (i, code) in cell.split('`').enumerate() {
            if i % 2 == 0 {
                continue;
            }
            let code = code.trim();
            let key = match code.strip_prefix('[') {
                Some(rest) => {
                    let (s, k) = rest.split_once(']').unwrap_or((rest, ""));
                    section = s.trim_start_matches('[').to_string();
                    k.trim().to_string()
                }
                None => code.to_string(),
            };
            if !key.is_empty() {
                out.insert((section.clone(), key));
            } else {
                out.insert((section.clone(), String::new()));
            }
        }
    }
    out
}

fn check(
    file: &str,
    code: &BTreeMap<String, BTreeSet<String>>,
    doc: &BTreeSet<(String, String)>,
    other: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let doc_keys: BTreeSet<&str> = doc.iter().map(|(_, k)| k.as_str()).collect();
    let doc_sections: BTreeSet<&str> = doc.iter().map(|(s, _)| s.as_str()).collect();
    for (section, keys) in code {
        for key in keys {
            // A section is documented by its keys (or by itself, for a free-form map).
            if section.is_empty() && (code.contains_key(key) || doc_sections.contains(key.as_str()))
            {
                continue;
            }
            let ok = doc.contains(&(section.clone(), key.clone()))
                || doc_sections.contains(format!("{section}.{key}").as_str())
                || (doc_keys.contains(key.as_str()) && !section.is_empty())
                || (section.is_empty() && doc.contains(&(String::new(), key.clone())));
            if !ok {
                problems.push(format!("{file}: [{section}] {key} is accepted but not documented in docs/configuration.md"));
            }
        }
    }
    for (section, key) in doc {
        if key.is_empty() {
            continue;
        }
        let known = |m: &BTreeMap<String, BTreeSet<String>>| {
            if section.is_empty() {
                m.values().any(|keys| keys.contains(key))
            } else {
                m.get(section).is_some_and(|keys| keys.contains(key)) || section.contains('.')
            }
        };
        if !known(code) && !known(other) {
            problems.push(format!(
                "docs/configuration.md documents [{section}] {key}, which neither file accepts"
            ));
        }
    }
    problems
}

#[test]
fn the_configuration_reference_lists_exactly_the_keys_the_code_accepts() {
    let daemon = accepted::<DaemonConfig>();
    let mut connector = accepted::<ConnectorConfig>();
    // `[outbox]` or `[[outbox]]`: read through a one-or-many wrapper, so its keys come from
    // the table's own type.
    connector.insert(
        "outbox".into(),
        expected::<sluice::config::OutboxConfig>("zz_unknown = 1\n")
            .expect("[outbox] refuses unknown keys"),
    );
    assert!(
        daemon.contains_key("sink") && connector.contains_key("postgres"),
        "{daemon:?} {connector:?}"
    );
    let doc = documented();
    let mut problems = check("config/sluice.toml", &daemon, &doc, &connector);
    problems.extend(check("connectors/<name>.toml", &connector, &doc, &daemon));
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
