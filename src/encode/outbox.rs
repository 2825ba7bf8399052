//! Outbox event routing (`[outbox]`, Debezium's `EventRouter`): a row inserted into an outbox
//! table becomes one record on `route_topic_replacement` (`${routedByValue}` = the
//! `route_by_field` column), keyed by `key_field`, whose value is the `payload_field` column
//! (JSON text expanded to a structure with `expand_json_payload`), with the event id in the
//! `id` header and `additional_placement` columns as headers or value fields. Deletes are
//! ignored (the usual insert-then-delete pattern), as are updates (logged) and truncates.

use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::EncodeError;
use crate::config::patterns::TablePattern;
use crate::config::{Additional, OutboxConfig, Placement};
use crate::event::{Column, TableId, TableSchema, Value};

/// One outbox table's rule.
pub struct Rule {
    table: TablePattern,
    /// Its settings.
    pub config: OutboxConfig,
    additional: Vec<Additional>,
}

/// The outbox tables of a connector.
pub struct Outbox {
    rules: Vec<Rule>,
}

/// One event read from an outbox row.
pub(super) struct Event<'a> {
    pub topic: String,
    pub key: (&'a Column, &'a Value),
    pub payload: (&'a Column, &'a Value),
    /// Header name → text.
    pub headers: Vec<(String, String)>,
    /// Value fields besides `payload` (name, column, value).
    pub fields: Vec<(String, &'a Column, &'a Value)>,
}

impl Outbox {
    /// The rules of `[outbox]` (`None` without outbox tables). Checked with the file; an
    /// entry that does not parse here is left out.
    pub fn from_config(list: &[OutboxConfig]) -> Option<Arc<Outbox>> {
        let rules: Vec<Rule> = list
            .iter()
            .filter_map(|c| {
                Some(Rule {
                    table: c.table_pattern().ok()?,
                    additional: c.additional().ok()?,
                    config: c.clone(),
                })
            })
            .collect();
        (!rules.is_empty()).then(|| Arc::new(Outbox { rules }))
    }

    /// The rule of a table, when it is an outbox table.
    pub fn rule(&self, table: &TableId) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.table.matches(&table.schema, &table.name))
    }
}

/// A value as text (header values, the topic): strings as they are, other values as their
/// JSON; `None` for null.
pub(super) fn text(column: &Column, value: &Value) -> Option<String> {
    match super::json_value::value_json(&column.kind, value) {
        Json::Null => None,
        Json::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

impl Rule {
    fn column<'a>(
        &self,
        table: &'a TableSchema,
        row: &'a [Value],
        name: &str,
        key: &str,
    ) -> Result<(&'a Column, &'a Value), EncodeError> {
        let i = table
            .columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| {
                EncodeError::Definite(format!(
                    "outbox table {} has no column \"{name}\" ([outbox] {key}): add the column, or set {key} to the column that holds it",
                    table.id
                ))
            })?;
        Ok((&table.columns[i], row.get(i).unwrap_or(&Value::Null)))
    }

    /// The event of an inserted row.
    pub(super) fn event<'a>(
        &self,
        table: &'a TableSchema,
        row: &'a [Value],
    ) -> Result<Event<'a>, EncodeError> {
        let c = &self.config;
        let (route_col, route_val) =
            self.column(table, row, &c.route_by_field, "route_by_field")?;
        let routed_by = text(route_col, route_val).ok_or_else(|| {
            EncodeError::Definite(format!(
                "outbox table {}: a row has no {} (null), so it has no topic; the row must name its aggregate type",
                table.id, c.route_by_field
            ))
        })?;
        let key = self.column(table, row, &c.key_field, "key_field")?;
        let payload = self.column(table, row, &c.payload_field, "payload_field")?;
        let (id_col, id_val) = self.column(table, row, &c.id_field, "id_field")?;
        let mut headers = Vec::new();
        if let Some(id) = text(id_col, id_val) {
            headers.push(("id".to_string(), id));
        }
        let mut fields = Vec::new();
        for a in &self.additional {
            let (col, val) = self.column(table, row, &a.column, "additional_placement")?;
            match a.placement {
                Placement::Header => {
                    if let Some(t) = text(col, val) {
                        headers.push((a.name.clone(), t));
                    }
                }
                Placement::Envelope => fields.push((a.name.clone(), col, val)),
            }
        }
        Ok(Event {
            topic: c
                .route_topic_replacement
                .replace("${routedByValue}", &routed_by),
            key,
            payload,
            headers,
            fields,
        })
    }
}

fn wrap(schema: Json, payload: Json, with_schema: bool) -> Vec<u8> {
    let doc = if with_schema {
        json!({"schema": schema, "payload": payload})
    } else {
        payload
    };
    doc.to_string().into_bytes()
}

/// The JSON key of an event: the key column's value (with its schema).
pub(super) fn json_key(ev: &Event<'_>, with_schema: bool) -> Vec<u8> {
    let (col, v) = ev.key;
    wrap(
        super::schema::column_schema(col),
        super::json_value::value_json(&col.kind, v),
        with_schema,
    )
}

/// The JSON value of an event: the payload (expanded when asked and it is JSON text), as a
/// structure with the envelope-placed columns when there are some.
pub(super) fn json_value(ev: &Event<'_>, with_schema: bool, expand: bool) -> Vec<u8> {
    let (col, v) = ev.payload;
    let mut schema = super::schema::column_schema(col);
    let mut payload = super::json_value::value_json(&col.kind, v);
    if expand {
        if let Json::String(text) = &payload {
            if let Ok(doc) = serde_json::from_str::<Json>(text) {
                schema = infer_schema(&doc);
                payload = doc;
            }
        }
    }
    if !ev.fields.is_empty() {
        let mut fields = Vec::with_capacity(ev.fields.len() + 1);
        schema["field"] = json!("payload");
        fields.push(schema);
        let mut value = serde_json::Map::new();
        value.insert("payload".into(), payload);
        for (name, col, v) in &ev.fields {
            let mut s = super::schema::column_schema(col);
            s["field"] = json!(name);
            fields.push(s);
            value.insert(name.clone(), super::json_value::value_json(&col.kind, v));
        }
        schema = json!({"type": "struct", "fields": fields, "optional": false});
        payload = Json::Object(value);
    }
    wrap(schema, payload, with_schema)
}

/// A Connect schema inferred from a JSON document (`expand_json_payload`): objects become
/// structs of optional fields in document order, numbers `int64` or `float64`, arrays take
/// their first element's schema.
pub(super) fn infer_schema(v: &Json) -> Json {
    match v {
        Json::Object(m) => json!({
            "type": "struct",
            "fields": m.iter().map(|(k, v)| {
                let mut s = infer_schema(v);
                s["field"] = json!(k);
                s
            }).collect::<Vec<_>>(),
            "optional": true
        }),
        Json::Array(a) => json!({
            "type": "array",
            "items": a.first().map_or(json!({"type": "string", "optional": true}), infer_schema),
            "optional": true
        }),
        Json::Bool(_) => json!({"type": "boolean", "optional": true}),
        Json::Number(n) if n.is_i64() || n.is_u64() => json!({"type": "int64", "optional": true}),
        Json::Number(_) => json!({"type": "float64", "optional": true}),
        Json::String(_) | Json::Null => json!({"type": "string", "optional": true}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inferred_schemas_follow_the_document() {
        let s =
            infer_schema(&json!({"n": 1, "x": 1.5, "tags": ["a"], "o": {"b": true}, "z": null}));
        assert_eq!(
            s,
            json!({"type": "struct", "optional": true, "fields": [
                {"type": "int64", "optional": true, "field": "n"},
                {"type": "float64", "optional": true, "field": "x"},
                {"type": "array", "items": {"type": "string", "optional": true}, "optional": true, "field": "tags"},
                {"type": "struct", "fields": [{"type": "boolean", "optional": true, "field": "b"}], "optional": true, "field": "o"},
                {"type": "string", "optional": true, "field": "z"}
            ]})
        );
    }
}
