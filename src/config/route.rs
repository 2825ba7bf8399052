//! `[[route]]`: topic routing (Debezium's `ByLogicalTableRouter`, Kafka's `RegexRouter`):
//! records of the tables whose topic matches `regex` go to `replacement`.

use serde::Deserialize;

/// The key field Debezium adds to keep keys unique across the routed tables.
pub const DEFAULT_KEY_FIELD: &str = "__dbz__physicalTableIdentifier";

/// One `[[route]]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Matched against the whole default topic name (`topic.regex`).
    pub regex: String,
    /// The new topic; `$1`, `$2`, ... are the regex's groups (`topic.replacement`).
    pub replacement: String,
    /// Add a key field naming the source table, so keys of different tables in one topic
    /// differ (`key.enforce.uniqueness`).
    #[serde(default = "yes")]
    pub key_enforce_uniqueness: bool,
    /// That field's name (`key.field.name`).
    #[serde(default = "default_key_field")]
    pub key_field_name: String,
    /// Applied to the default topic name to make the field's value (`key.field.regex`);
    /// without it the value is the default topic name.
    #[serde(default)]
    pub key_field_regex: Option<String>,
    /// The field's value from `key_field_regex`'s groups (`key.field.replacement`).
    #[serde(default)]
    pub key_field_replacement: Option<String>,
}

fn yes() -> bool {
    true
}

fn default_key_field() -> String {
    DEFAULT_KEY_FIELD.into()
}

/// A Java-style replacement (`$1`) in the `regex` crate's syntax (`${1}`), so that `$1_all`
/// means group 1 followed by `_all`, as in Java.
pub fn java_replacement(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    if next == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(next);
                    }
                }
            }
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push_str("${");
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    out.push(d);
                    chars.next();
                }
                out.push('}');
            }
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

/// Checks a connector's routes: every regex compiles (anchored), replacements name only
/// groups the regex has, and two routes to one literal topic agree on the key shape.
pub fn check_routes(routes: &[RouteConfig]) -> Result<(), (String, String)> {
    for (i, r) in routes.iter().enumerate() {
        let key = |k: &str| format!("route[{i}].{k}");
        let re = regex::Regex::new(&format!("^(?:{})$", r.regex)).map_err(|e| {
            (
                key("regex"),
                format!("\"{}\" is not a valid regex: {e}", r.regex),
            )
        })?;
        check_groups(&r.replacement, re.captures_len()).map_err(|why| (key("replacement"), why))?;
        match (&r.key_field_regex, &r.key_field_replacement) {
            (Some(kr), Some(kp)) => {
                let re = regex::Regex::new(&format!("^(?:{kr})$")).map_err(|e| {
                    (
                        key("key_field_regex"),
                        format!("\"{kr}\" is not a valid regex: {e}"),
                    )
                })?;
                check_groups(kp, re.captures_len())
                    .map_err(|why| (key("key_field_replacement"), why))?;
            }
            (None, None) => {}
            _ => {
                return Err((
                    key("key_field_regex"),
                    "key_field_regex and key_field_replacement go together: set both or neither"
                        .into(),
                ))
            }
        }
        if r.key_enforce_uniqueness && r.key_field_name.is_empty() {
            return Err((key("key_field_name"), "must not be empty".into()));
        }
        for (j, other) in routes.iter().enumerate().take(i) {
            if other.replacement == r.replacement
                && !other.replacement.contains('$')
                && (other.key_enforce_uniqueness != r.key_enforce_uniqueness
                    || (r.key_enforce_uniqueness && other.key_field_name != r.key_field_name))
            {
                return Err((
                    key("key_enforce_uniqueness"),
                    format!(
                        "route[{j}] and route[{i}] both send to \"{}\" with different keys (one adds the table field, the other not): give them the same key settings",
                        r.replacement
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_groups(replacement: &str, groups: usize) -> Result<(), String> {
    let rust = java_replacement(replacement);
    let mut rest = rust.as_str();
    while let Some(at) = rest.find("${") {
        let end = rest[at..].find('}').map(|e| at + e).unwrap_or(rest.len());
        if let Ok(n) = rest[at + 2..end].parse::<usize>() {
            if n >= groups {
                return Err(format!(
                    "\"{replacement}\" uses group ${n}, but the regex has {} group(s)",
                    groups - 1
                ));
            }
        }
        rest = &rest[end.min(rest.len())..];
        if rest.starts_with('}') {
            rest = &rest[1..];
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(regex: &str, replacement: &str) -> RouteConfig {
        RouteConfig {
            regex: regex.into(),
            replacement: replacement.into(),
            key_enforce_uniqueness: true,
            key_field_name: DEFAULT_KEY_FIELD.into(),
            key_field_regex: None,
            key_field_replacement: None,
        }
    }

    #[test]
    fn java_replacements_become_explicit_groups() {
        assert_eq!(java_replacement("$1_all"), "${1}_all");
        assert_eq!(java_replacement("a.$12.b"), "a.${12}.b");
        assert_eq!(java_replacement("cost\\$5"), "cost$$5");
        assert_eq!(java_replacement("x$"), "x$$");
    }

    #[test]
    fn routes_are_checked() {
        assert!(check_routes(&[route("(.*)_\\d+", "$1")]).is_ok());
        let (key, why) = check_routes(&[route("(.*", "x")]).unwrap_err();
        assert_eq!(key, "route[0].regex");
        assert!(why.contains("not a valid regex"), "{why}");
        let (key, why) = check_routes(&[route("(.*)_x", "$2")]).unwrap_err();
        assert_eq!(key, "route[0].replacement");
        assert!(
            why.contains("uses group $2, but the regex has 1 group(s)"),
            "{why}"
        );
        let mut b = route("b_.*", "all");
        b.key_enforce_uniqueness = false;
        let (key, why) = check_routes(&[route("a_.*", "all"), b]).unwrap_err();
        assert_eq!(key, "route[1].key_enforce_uniqueness");
        assert!(
            why.contains("route[0] and route[1] both send to \"all\""),
            "{why}"
        );
        let mut c = route("a", "b");
        c.key_field_regex = Some("(.*)".into());
        assert!(check_routes(&[c]).is_err());
    }
}
