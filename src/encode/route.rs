//! Topic routing (`[[route]]`): a table's default topic name, matched whole against each
//! route's regex; the first match gives the topic, and — with `key_enforce_uniqueness` — a
//! key field naming the table's default topic (Debezium's `__dbz__physicalTableIdentifier`).
//! Schema names follow the topic (`<topic>.Key`, `<topic>.Envelope`), the row struct keeps
//! its table's name, as Debezium's router does.

use std::sync::Arc;

use regex::Regex;

use crate::config::route::java_replacement;
use crate::config::RouteConfig;

struct Route {
    regex: Regex,
    replacement: String,
    key_field: Option<KeyField>,
}

struct KeyField {
    name: String,
    value: Option<(Regex, String)>,
}

/// The routes of one connector.
pub struct Router {
    routes: Vec<Route>,
}

/// Where a table's records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The topic.
    pub topic: String,
    /// The key field added (name, value), when keys are made unique.
    pub key_field: Option<(String, String)>,
}

impl Router {
    /// The routes of `[[route]]` (`None` when there are none). They were checked with the
    /// file; one that does not compile here is left out.
    pub fn from_config(routes: &[RouteConfig]) -> Option<Arc<Router>> {
        let anchored = |re: &str| Regex::new(&format!("^(?:{re})$")).ok();
        let routes: Vec<Route> = routes
            .iter()
            .filter_map(|r| {
                let key_field = if r.key_enforce_uniqueness {
                    let value = match (&r.key_field_regex, &r.key_field_replacement) {
                        (Some(re), Some(rep)) => Some((anchored(re)?, java_replacement(rep))),
                        _ => None,
                    };
                    Some(KeyField {
                        name: r.key_field_name.clone(),
                        value,
                    })
                } else {
                    None
                };
                Some(Route {
                    regex: anchored(&r.regex)?,
                    replacement: java_replacement(&r.replacement),
                    key_field,
                })
            })
            .collect();
        (!routes.is_empty()).then(|| Arc::new(Router { routes }))
    }

    /// Where the records of a table whose default topic is `topic` go (`None`: no route
    /// matches, the default topic).
    pub fn route(&self, topic: &str) -> Option<Routed> {
        let route = self.routes.iter().find(|r| r.regex.is_match(topic))?;
        let key_field = route.key_field.as_ref().map(|k| {
            let value = match &k.value {
                Some((re, rep)) if re.is_match(topic) => {
                    re.replace(topic, rep.as_str()).into_owned()
                }
                _ => topic.to_string(),
            };
            (k.name.clone(), value)
        });
        Some(Routed {
            topic: route
                .regex
                .replace(topic, route.replacement.as_str())
                .into_owned(),
            key_field,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Vec<RouteConfig> {
        #[derive(serde::Deserialize)]
        struct F {
            route: Vec<RouteConfig>,
        }
        toml::from_str::<F>(text).unwrap().route
    }

    #[test]
    fn first_matching_route_gives_topic_and_key_field() {
        let r = Router::from_config(&config(
            r#"
[[route]]
regex = "shop\\.public\\.orders_(\\d+)"
replacement = "shop.public.orders_all"
key_field_name = "shard"
key_field_regex = "shop\\.public\\.orders_(\\d+)"
key_field_replacement = "$1"
[[route]]
regex = "(.*)\\.parts_\\d+"
replacement = "$1.parts"
key_enforce_uniqueness = false
[[route]]
regex = "(.*)\\.(.*)_x"
replacement = "$1_all.$2"
"#,
        ))
        .unwrap();
        assert_eq!(
            r.route("shop.public.orders_12"),
            Some(Routed {
                topic: "shop.public.orders_all".into(),
                key_field: Some(("shard".into(), "12".into()))
            })
        );
        assert_eq!(
            r.route("shop.public.parts_3"),
            Some(Routed {
                topic: "shop.public.parts".into(),
                key_field: None
            })
        );
        assert_eq!(
            r.route("a.b_x").unwrap(),
            Routed {
                topic: "a_all.b".into(),
                key_field: Some(("__dbz__physicalTableIdentifier".into(), "a.b_x".into()))
            }
        );
        // Matched whole, not as a substring.
        assert_eq!(r.route("shop.public.orders_12_old"), None);
        assert_eq!(r.route("shop.public.items"), None);
    }
}
