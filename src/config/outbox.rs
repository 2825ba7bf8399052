//! `[outbox]` / `[[outbox]]`: outbox tables (Debezium's outbox event router, `EventRouter`):
//! rows inserted there become events on their own topics instead of change records.

use serde::Deserialize;

use super::patterns::TablePattern;

/// One outbox table.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// The table (`schema.table`; MySQL `database.table`); it must be captured.
    pub table: String,
    /// Column with the event id, published as the `id` header (`table.field.event.id`).
    #[serde(default = "d_id")]
    pub id_field: String,
    /// Column with the record key (`table.field.event.key`).
    #[serde(default = "d_key")]
    pub key_field: String,
    /// Column with the event payload, the record value (`table.field.event.payload`).
    #[serde(default = "d_payload")]
    pub payload_field: String,
    /// Column whose value names the topic (`route.by.field`).
    #[serde(default = "d_route")]
    pub route_by_field: String,
    /// The topic; `${routedByValue}` is the `route_by_field` value
    /// (`route.topic.replacement`).
    #[serde(default = "d_topic")]
    pub route_topic_replacement: String,
    /// Publish a JSON payload as a structure, not a string (`table.expand.json.payload`;
    /// JSON values only).
    #[serde(default)]
    pub expand_json_payload: bool,
    /// Other columns as headers or value fields: `column:header[:name]` or
    /// `column:envelope[:name]` (`table.fields.additional.placement`).
    #[serde(default)]
    pub additional_placement: Vec<String>,
}

fn d_id() -> String {
    "id".into()
}
fn d_key() -> String {
    "aggregateid".into()
}
fn d_payload() -> String {
    "payload".into()
}
fn d_route() -> String {
    "aggregatetype".into()
}
fn d_topic() -> String {
    "outbox.event.${routedByValue}".into()
}

/// Where an additional column goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A record header.
    Header,
    /// A field of the value (which becomes a structure with `payload`).
    Envelope,
}

/// One parsed `additional_placement` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Additional {
    /// The column.
    pub column: String,
    /// Where it goes.
    pub placement: Placement,
    /// Its name there.
    pub name: String,
}

impl OutboxConfig {
    /// The table, parsed.
    pub fn table_pattern(&self) -> Result<TablePattern, String> {
        let p = TablePattern::parse(&self.table)?;
        if p.table.is_none() {
            return Err(format!(
                "\"{}\" must name one table, not a schema",
                self.table
            ));
        }
        Ok(p)
    }

    /// The `additional_placement` entries, parsed.
    pub fn additional(&self) -> Result<Vec<Additional>, String> {
        self.additional_placement
            .iter()
            .map(|entry| {
                let parts: Vec<&str> = entry.split(':').collect();
                let (column, placement, name) = match parts.as_slice() {
                    [c, p] => (*c, *p, *c),
                    [c, p, n] => (*c, *p, *n),
                    _ => {
                        return Err(format!(
                            "\"{entry}\" must be column:header[:name] or column:envelope[:name]"
                        ))
                    }
                };
                let placement = match placement {
                    "header" => Placement::Header,
                    "envelope" => Placement::Envelope,
                    other => {
                        return Err(format!(
                            "\"{entry}\": placement \"{other}\" is not header or envelope"
                        ))
                    }
                };
                if column.is_empty()
                    || name.is_empty()
                    || (placement == Placement::Envelope && name == "payload")
                {
                    return Err(format!(
                        "\"{entry}\" needs a column and a name other than payload"
                    ));
                }
                Ok(Additional {
                    column: column.into(),
                    placement,
                    name: name.into(),
                })
            })
            .collect()
    }
}

/// `[outbox]` (one table) or `[[outbox]]` (several).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// `[outbox]`.
    One(Box<OutboxConfig>),
    /// `[[outbox]]`.
    Many(Vec<OutboxConfig>),
}

/// Reads `[outbox]` or `[[outbox]]` as a list.
pub fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<OutboxConfig>, D::Error> {
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(c) => vec![*c],
        OneOrMany::Many(v) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_or_several_and_placements() {
        #[derive(Deserialize)]
        struct F {
            #[serde(deserialize_with = "one_or_many")]
            outbox: Vec<OutboxConfig>,
        }
        let one: F = toml::from_str("[outbox]\ntable = \"public.outbox\"\n").unwrap();
        assert_eq!(one.outbox.len(), 1);
        assert_eq!(
            one.outbox[0].route_topic_replacement,
            "outbox.event.${routedByValue}"
        );
        let many: F = toml::from_str(
            "[[outbox]]\ntable = \"a.o\"\nadditional_placement = [\"type:header:eventType\", \"ts:envelope\"]\n[[outbox]]\ntable = \"b.o\"\n",
        )
        .unwrap();
        assert_eq!(many.outbox.len(), 2);
        assert_eq!(
            many.outbox[0].additional().unwrap(),
            vec![
                Additional {
                    column: "type".into(),
                    placement: Placement::Header,
                    name: "eventType".into()
                },
                Additional {
                    column: "ts".into(),
                    placement: Placement::Envelope,
                    name: "ts".into()
                }
            ]
        );
        let mut bad = many.outbox[1].clone();
        bad.additional_placement = vec!["type:partition".into()];
        assert!(bad
            .additional()
            .unwrap_err()
            .contains("not header or envelope"));
        bad.table = "public.*".into();
        assert!(bad.table_pattern().is_err());
    }
}
