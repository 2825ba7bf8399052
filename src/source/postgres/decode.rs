//! Maps pgoutput messages and snapshot rows to the source-neutral model: relation cache,
//! type resolution and row conversion.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio_postgres::Client;

use super::catalog::{self, CatalogTable};
use super::pgoutput::{Relation, TupleValue};
use super::types::{PgModes, PgType, TypeCatalog};
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
    /// For each column, its position in the relation's tuples (columns of types Debezium
    /// has no mapping for are left out unless `include_unknown_datatypes`).
    pub positions: Vec<usize>,
    /// Type OID of each column (to resolve it again when the catalog changes).
    pub oids: Vec<u32>,
    /// Whether the connector captures this table.
    pub captured: bool,
}

/// Relation cache and value conversion for one connector.
pub(super) struct Decoder {
    relations: HashMap<u32, RelationInfo>,
    types: TypeCatalog,
    filter: crate::config::TableFilter,
    modes: PgModes,
    warned: HashSet<(TableId, String)>,
    /// Where unreadable values are counted (set when streaming starts).
    unreadable: Option<crate::status::Observer>,
    /// Enum labels that made the type catalog reload (each reloads it once at most).
    reloaded_for: HashSet<String>,
}

impl Decoder {
    /// A decoder with a loaded type catalog.
    pub async fn new(
        client: &Client,
        filter: crate::config::TableFilter,
        modes: PgModes,
    ) -> Result<Self, PgError> {
        Ok(Decoder {
            relations: HashMap::new(),
            types: catalog::load_types(client).await?,
            filter,
            modes,
            warned: HashSet::new(),
            unreadable: None,
            reloaded_for: HashSet::new(),
        })
    }

    /// Counts unreadable values in `sluice_values_unreadable_total` of this connector.
    pub fn count_unreadable(&mut self, observer: &crate::status::Observer) {
        self.unreadable = Some(observer.clone());
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
        let mut positions = Vec::with_capacity(rel.columns.len());
        let mut oids = Vec::with_capacity(rel.columns.len());
        let mut identity = Vec::new();
        for (pos, c) in rel.columns.iter().enumerate() {
            let (not_null, pk_pos, default_expr) = column_facts(&c.name);
            let ty = self.types.get(c.type_oid);
            let Some(kind) = self.column_kind(&id, &c.name, &ty, c.type_modifier) else {
                continue;
            };
            let i = columns.len();
            if pk_pos > 0 {
                pk.push((pk_pos, i));
            }
            if c.flags & 1 == 1 {
                identity.push(i);
            }
            let default = default_expr
                .as_deref()
                .and_then(|e| values::parse_default(&ty, c.type_modifier, &kind, e));
            columns.push(Column {
                name: c.name.clone(),
                kind,
                nullable: !not_null,
                default,
                length: text_length(&ty, c.type_modifier),
            });
            types.push((ty, c.type_modifier));
            positions.push(pos);
            oids.push(c.type_oid);
        }
        pk.sort();
        let mut key: Vec<usize> = pk.into_iter().map(|(_, i)| i).collect();
        if key.is_empty() && rel.replica_identity == b'i' {
            key = identity;
        }
        let mut id = id;
        let mut captured = self.filter.captures(&id.schema, &id.name);
        // A partition of a captured partitioned table, published under its own name: the
        // publication does not publish via the root (the root was added to it after the
        // start, say). Its changes are the table's, as the snapshot and `schema.*` entries
        // see them: published as the table's, not under the partition's name or lost.
        if let Some(root) = catalog::partition_root_of(client, rel.oid).await? {
            if self.filter.captures(&root.schema, &root.name) {
                tracing::warn!(partition = %id, table = %root, "changes of a partition of a captured partitioned table arrive under the partition's name (the publication does not publish via the partition root): published as the table's; set publish_via_partition_root = true on the publication");
                id = root;
                captured = true;
            }
        }
        let schema = Arc::new(TableSchema { id, columns, key });
        self.relations.insert(
            rel.oid,
            RelationInfo {
                schema,
                types,
                positions,
                oids,
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
        let mut positions = Vec::with_capacity(table.columns.len());
        let mut oids = Vec::with_capacity(table.columns.len());
        for (pos, c) in table.columns.iter().enumerate() {
            let ty = self.types.get(c.type_oid);
            let Some(kind) = self.column_kind(&table.id, &c.name, &ty, c.typmod) else {
                continue;
            };
            if c.pk_position > 0 {
                pk.push((c.pk_position, columns.len()));
            }
            let default = c
                .default_expr
                .as_deref()
                .and_then(|e| values::parse_default(&ty, c.typmod, &kind, e));
            columns.push(Column {
                name: c.name.clone(),
                kind,
                nullable: !c.not_null,
                default,
                length: text_length(&ty, c.typmod),
            });
            types.push((ty, c.typmod));
            positions.push(pos);
            oids.push(c.type_oid);
        }
        pk.sort();
        RelationInfo {
            schema: Arc::new(TableSchema {
                id: table.id.clone(),
                columns,
                key: pk.into_iter().map(|(_, i)| i).collect(),
            }),
            types,
            positions,
            oids,
            captured: true,
        }
    }

    /// Checks decoded rows against their relation's schema and revises the schema where the
    /// rows prove it stale. A label an enum column does not list (added by `ALTER TYPE ...
    /// ADD VALUE` after the relation was described) reloads the type catalog, so `allowed`
    /// lists it. A NULL in a column the catalog calls `NOT NULL` makes the column optional
    /// again: it was nullable when the row was written (pgoutput's Relation message does not
    /// carry nullability, and the catalog is read later, when it may have changed), and a
    /// record must never contradict its own schema.
    pub async fn revise(
        &mut self,
        client: &Client,
        oid: u32,
        schema: Arc<TableSchema>,
        rows: [Option<&[Value]>; 2],
    ) -> Result<Arc<TableSchema>, PgError> {
        let mut new_label: Option<String> = None;
        let mut nulls: Vec<usize> = Vec::new();
        let unlisted = |allowed: &[String], v: &Value| match v {
            Value::Text(t) => !allowed.iter().any(|a| a.as_str() == &**t),
            _ => false,
        };
        for row in rows.into_iter().flatten() {
            for (i, (v, c)) in row.iter().zip(&schema.columns).enumerate() {
                match (&c.kind, v) {
                    (_, Value::Null) if !c.nullable => nulls.push(i),
                    (ColumnKind::Enum { allowed }, v) if unlisted(allowed, v) => {
                        new_label = Some(v_text(v));
                    }
                    (ColumnKind::Array(elem), Value::Array(items)) => {
                        if let ColumnKind::Enum { allowed } = &**elem {
                            if let Some(v) = items.iter().find(|v| unlisted(allowed, v)) {
                                new_label = Some(v_text(v));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        let reload = new_label.is_some_and(|l| self.reloaded_for.insert(l));
        if !reload && nulls.is_empty() {
            return Ok(schema);
        }
        if reload {
            self.types = catalog::load_types(client).await?;
        }
        let Some(info) = self.relations.get_mut(&oid) else {
            return Ok(schema);
        };
        let mut columns = info.schema.columns.clone();
        for i in nulls {
            columns[i].nullable = true;
        }
        if reload {
            for (i, col) in columns.iter_mut().enumerate() {
                let ty = self.types.get(info.oids[i]);
                if let Some(kind) = ty.kind_in(info.types[i].1, &self.modes) {
                    col.kind = kind;
                }
                info.types[i].0 = ty;
            }
        }
        info.schema = Arc::new(TableSchema {
            id: info.schema.id.clone(),
            columns,
            key: info.schema.key.clone(),
        });
        Ok(info.schema.clone())
    }

    /// A column's kind under the connector's modes; `None` (with one warning per column)
    /// for a type Debezium has no mapping for, which is left out as Debezium does.
    fn column_kind(
        &mut self,
        table: &TableId,
        column: &str,
        ty: &PgType,
        typmod: i32,
    ) -> Option<ColumnKind> {
        let kind = ty.kind_in(typmod, &self.modes);
        if let PgType::Unknown(name) = ty.resolve(typmod).0 {
            if self.warned.insert((table.clone(), column.to_string())) {
                if kind.is_some() {
                    tracing::warn!(table = %table, column = %column, r#type = %name, "type without a Debezium mapping: values are published as the bytes of their text form (include_unknown_datatypes)");
                } else {
                    tracing::warn!(table = %table, column = %column, r#type = %name, "type without a Debezium mapping: the column is left out, as Debezium does; set [types] include_unknown_datatypes = true to publish it as bytes");
                }
            }
        } else if kind.is_none() && self.warned.insert((table.clone(), column.to_string())) {
            tracing::warn!(table = %table, column = %column, "array of a type without a Debezium mapping: the column is left out; set [types] include_unknown_datatypes = true to publish it");
        }
        kind
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
        for (i, pos) in info.positions.iter().enumerate() {
            let v = match tuple.get(*pos) {
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
                    _ => convert(
                        &mut self.warned,
                        self.unreadable.as_ref(),
                        info,
                        i,
                        &String::from_utf8_lossy(bytes),
                    ),
                },
                Some(TupleValue::Binary(_)) => Value::Null,
            };
            out.push(v);
        }
        out
    }

    /// Converts one text value of column `i`; a value that does not parse is published as
    /// text (string-typed kinds) or null, with one warning per column. The text may be
    /// borrowed: only a plain-text value is copied (an owned one is moved); numbers, dates
    /// and the like are read from the text where it is.
    pub fn value_cow(
        &mut self,
        info: &RelationInfo,
        i: usize,
        text: std::borrow::Cow<'_, str>,
    ) -> Value {
        match info.types.get(i) {
            Some((ty, typmod)) if values::is_plain_text(ty, *typmod) => {
                Value::text(text.into_owned())
            }
            _ => convert(&mut self.warned, self.unreadable.as_ref(), info, i, &text),
        }
    }

    /// Whether column `i` is published as its text as it stands.
    pub fn plain_text(info: &RelationInfo, i: usize) -> bool {
        info.types
            .get(i)
            .is_some_and(|(ty, typmod)| values::is_plain_text(ty, *typmod))
    }
}

/// The declared length of `varchar(n)` / `char(n)` (the type modifier is n + 4).
fn text_length(ty: &PgType, typmod: i32) -> Option<u32> {
    let (base, typmod) = ty.resolve(typmod);
    (matches!(base, PgType::Text) && typmod >= 4).then(|| (typmod - 4) as u32)
}

fn v_text(v: &Value) -> String {
    match v {
        Value::Text(t) => t.to_string(),
        _ => String::new(),
    }
}

fn convert(
    warned: &mut HashSet<(TableId, String)>,
    unreadable: Option<&crate::status::Observer>,
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
            if let Some(o) = unreadable {
                o.metrics
                    .values_unreadable
                    .with_label_values(&[&*o.connector, &info.schema.id.to_string(), &col.name])
                    .inc();
            }
            if warned.insert((info.schema.id.clone(), col.name.clone())) {
                tracing::warn!(table = %info.schema.id, column = %col.name, error = %e, "value not understood; publishing it as text or null (counted in sluice_values_unreadable_total; logged once per column)");
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
