//! `validate`'s check of the columns a connector file names (`key_columns`, `[outbox]`)
//! against the columns the captured tables have, for both sources.

use std::collections::BTreeMap;

use crate::config::patterns::TableSelector;
use crate::config::{ConnectorConfig, SourceKind};

/// (schema or database, table) → column names, as `information_schema.columns` lists them.
pub type Columns = BTreeMap<(String, String), Vec<String>>;

/// Problems with the columns the file names, one sentence each (file key, table, fix).
pub fn column_problems(connector: &ConnectorConfig, columns: &Columns) -> Vec<String> {
    let filter = match connector.source {
        SourceKind::Postgres => connector.postgres.as_ref().map(|c| &c.filter),
        SourceKind::Mysql => connector.mysql.as_ref().map(|c| &c.filter),
    };
    let Some(filter) = filter else {
        return Vec::new();
    };
    let keys: Vec<(TableSelector, &Vec<String>)> = connector
        .key_columns
        .iter()
        .filter_map(|(t, cols)| Some((TableSelector::parse(t).ok()?, cols)))
        .collect();
    let mut problems = Vec::new();
    for ((schema, table), have) in columns {
        if !filter.captures(schema, table) {
            continue;
        }
        let list = || have.join(", ");
        // The first entry that matches decides, as when the connector runs.
        if let Some((_, wanted)) = keys.iter().find(|(s, _)| s.matches(schema, table)) {
            for c in wanted.iter().filter(|c| !have.contains(c)) {
                problems.push(format!(
                    "key_columns names \"{c}\" for table {schema}.{table}, which has no such column (it has {}): fix key_columns",
                    list()
                ));
            }
        }
        for o in &connector.outbox {
            let Ok(p) = o.table_pattern() else { continue };
            if !p.matches(schema, table) {
                continue;
            }
            let mut needed = vec![
                ("id_field", o.id_field.clone()),
                ("key_field", o.key_field.clone()),
                ("payload_field", o.payload_field.clone()),
                ("route_by_field", o.route_by_field.clone()),
            ];
            needed.extend(
                o.additional()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| ("additional_placement", a.column)),
            );
            for (key, c) in needed.into_iter().filter(|(_, c)| !have.contains(c)) {
                problems.push(format!(
                    "outbox.{key}: outbox table {schema}.{table} has no column \"{c}\" (it has {}): add the column, or set {key} to the column that holds it",
                    list()
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_and_outbox_columns_are_named() {
        let c = ConnectorConfig::parse(
            std::path::Path::new("c.toml"),
            r#"name = "c"
source = "postgres"
topic_prefix = "c"
key_columns = { "public.t" = ["tenant", "id"] }
[postgres]
url = "postgres://x@h/d"
slot = "s"
publication = "p"
tables = ["public.*"]
[outbox]
table = "public.outbox"
additional_placement = ["type:header:eventType"]
"#,
        )
        .unwrap();
        let mut cols = Columns::new();
        cols.insert(("public".into(), "t".into()), vec!["id".into()]);
        cols.insert(
            ("public".into(), "outbox".into()),
            vec![
                "id".into(),
                "aggregateid".into(),
                "aggregatetype".into(),
                "payload".into(),
            ],
        );
        cols.insert(("other".into(), "t".into()), vec![]);
        assert_eq!(
            column_problems(&c, &cols),
            vec![
                "outbox.additional_placement: outbox table public.outbox has no column \"type\" (it has id, aggregateid, aggregatetype, payload): add the column, or set additional_placement to the column that holds it".to_string(),
                "key_columns names \"tenant\" for table public.t, which has no such column (it has id): fix key_columns".to_string(),
            ]
        );
    }
}
