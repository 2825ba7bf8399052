//! Maps pgoutput messages and snapshot rows to the source-neutral model: relation cache,
//! type resolution and row conversion.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio_postgres::Client;

use super::catalog::{self, CatalogTable};
use super::pgoutput::{Relation, TupleValue};
use super::types::{PgType, TypeCatalog};
use super::values;
use super::PgError;
use crate::event::{Column, ColumnKind, TableId, TableSchema, Text, Value};

/// A relation as Sluice decodes it.
#[derive(Debug, Clone)]
pub(super) struct RelationInfo {
    /// The envelope-facing schema.
    pub schema: Arc<TableSchema>,
    /// PostgreSQL type and modifier of each column.
    pub types: Vec<(PgType, i32)>,
    /// Whether the connector captures this table.
    pub captured: bool,
}

/// Relation cache and value conversion for one connector.
pub(super) struct Decoder {
    relations: HashMap<u32, RelationInfo>,
    types: TypeCatalog,
    patterns: Vec<String>,
    warned: HashSet<(TableId, String)>,
}

impl Decoder {
    /// A decoder with a loaded type catalog.
    pub async fn new(client: &Client, patterns: Vec<String>) -> Result<Self, PgError> {
        Ok(Decoder {
            relations: HashMap::new(),
            types: catalog::load_types(client).await?,
            patterns,
            warned: HashSet::new(),
        })
    }

    /// The relation with this OID, if a Relation message described it.
    pub fn relation(&self, oid: u32) -> Option<&RelationInfo> {
        self.relations.get(&oid)
    }

    /// Forgets resolved types so a `Type` message's type is looked up again.
    pub async fn refresh_types(&mut self, client: &Client, oid: u32) -> Result<(), PgError> {
        if !self.types.knows(oid) {
            self.types = catalog::load_types(client).await?;
        }
        Ok(())
    }

    /// Applies a Relation message: the table's shape from this point of the stream on.
    pub async fn on_relation(&mut self, client: &Client, rel: &Relation) -> Result<(), PgError> {
        if rel.columns.iter().any(|c| !self.types.knows(c.type_oid)) {
            self.types = catalog::load_types(client).await?;
        }
        let described = catalog::describe_table(client, rel.oid).await?;
        let id = TableId {
            schema: rel.namespace.clone(),
            name: rel.name.clone(),
        };
        let column_facts = |name: &str| {
            described
                .as_ref()
                .and_then(|d| d.columns.iter().find(|c| c.name == name))
                .map(|c| (c.not_null, c.pk_position, c.default_expr.clone()))
                .unwrap_or((false, 0, None))
        };
        let mut pk: Vec<(i32, usize)> = Vec::new();
        let mut columns = Vec::with_capacity(rel.columns.len());
        let mut types = Vec::with_capacity(rel.columns.len());
        for (i, c) in rel.columns.iter().enumerate() {
            let (not_null, pk_pos, default_expr) = column_facts(&c.name);
            if pk_pos > 0 {
                pk.push((pk_pos, i));
            }
            let ty = self.types.get(c.type_oid);
            if let PgType::Unknown(name) = &ty {
                tracing::warn!(table = %id, column = %c.name, r#type = %name, "unknown type: values are published as their text form");
            }
            let kind = ty.kind(c.type_modifier);
            let default = default_expr
                .as_deref()
                .and_then(|e| values::parse_default(&ty, c.type_modifier, &kind, e));
            columns.push(Column {
                name: c.name.clone(),
                kind,
                nullable: !not_null,
                default,
            });
            types.push((ty, c.type_modifier));
        }
        pk.sort();
        let mut key: Vec<usize> = pk.into_iter().map(|(_, i)| i).collect();
        if key.is_empty() && rel.replica_identity == b'i' {
            key = rel
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.flags & 1 == 1)
                .map(|(i, _)| i)
                .collect();
        }
        let captured = self.patterns.iter().any(|p| catalog::matches(p, &id));
        let schema = Arc::new(TableSchema { id, columns, key });
        self.relations.insert(
            rel.oid,
            RelationInfo {
                schema,
                types,
                captured,
            },
        );
        Ok(())
    }

    /// The relation of a table as the catalog describes it (for the snapshot).
    pub fn relation_of_catalog(&mut self, table: &CatalogTable) -> RelationInfo {
        let mut pk: Vec<(i32, usize)> = Vec::new();
        let mut columns = Vec::with_capacity(table.columns.len());
        let mut types = Vec::with_capacity(table.columns.len());
        for (i, c) in table.columns.iter().enumerate() {
            if c.pk_position > 0 {
                pk.push((c.pk_position, i));
            }
            let ty = self.types.get(c.type_oid);
            let kind = ty.kind(c.typmod);
            let default = c
                .default_expr
                .as_deref()
                .and_then(|e| values::parse_default(&ty, c.typmod, &kind, e));
            columns.push(Column {
                name: c.name.clone(),
                kind,
                nullable: !c.not_null,
                default,
            });
            types.push((ty, c.typmod));
        }
        pk.sort();
        RelationInfo {
            schema: Arc::new(TableSchema {
                id: table.id.clone(),
                columns,
                key: pk.into_iter().map(|(_, i)| i).collect(),
            }),
            types,
            captured: true,
        }
    }

    /// Converts a pgoutput tuple of relation `oid`. `fallback` (a full old image) fills
    /// unchanged TOAST values.
    pub fn tuple(
        &mut self,
        oid: u32,
        tuple: &[TupleValue],
        fallback: Option<&[Value]>,
    ) -> Vec<Value> {
        let Some(info) = self.relations.get(&oid) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(info.types.len());
        for i in 0..info.types.len() {
            let v = match tuple.get(i) {
                None | Some(TupleValue::Null) => Value::Null,
                Some(TupleValue::Unchanged) => match fallback.and_then(|f| f.get(i)) {
                    Some(v) if !matches!(v, Value::Unavailable) => v.clone(),
                    _ => Value::Unavailable,
                },
                Some(TupleValue::Text(bytes)) => match info.types.get(i) {
                    // Plain text points into the replication message: no copy.
                    Some((ty, typmod)) if values::is_plain_text(ty, *typmod) => {
                        match Text::try_from(bytes.clone()) {
                            Ok(text) => Value::Text(text),
                            Err(_) => Value::text(String::from_utf8_lossy(bytes).into_owned()),
                        }
                    }
                    _ => convert(&mut self.warned, info, i, &String::from_utf8_lossy(bytes)),
                },
                Some(TupleValue::Binary(_)) => Value::Null,
            };
            out.push(v);
        }
        out
    }

    /// Converts one text value of column `i` (moved into string-typed values); a value that
    /// does not parse is published as text (string-typed kinds) or null, with one warning
    /// per column.
    pub fn value_owned(&mut self, info: &RelationInfo, i: usize, text: String) -> Value {
        match info.types.get(i) {
            Some((ty, typmod)) if values::is_plain_text(ty, *typmod) => Value::text(text),
            _ => convert(&mut self.warned, info, i, &text),
        }
    }
}

fn convert(
    warned: &mut HashSet<(TableId, String)>,
    info: &RelationInfo,
    i: usize,
    text: &str,
) -> Value {
    let (Some((ty, typmod)), Some(col)) = (info.types.get(i), info.schema.columns.get(i)) else {
        return Value::Null;
    };
    match values::parse(ty, *typmod, &col.kind, text) {
        Ok(v) => v,
        Err(e) => {
            if warned.insert((info.schema.id.clone(), col.name.clone())) {
                tracing::warn!(table = %info.schema.id, column = %col.name, error = %e, "value not understood; publishing it as text or null");
            }
            match col.kind {
                ColumnKind::Text | ColumnKind::Json | ColumnKind::Xml | ColumnKind::Uuid => {
                    Value::text(text.to_string())
                }
                _ => Value::Null,
            }
        }
    }
}
