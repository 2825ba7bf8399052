//! Avro envelopes in the Confluent wire format (magic byte 0, 4-byte schema id, Avro body).
//!
//! Schemas (built in [`super::avro_schema`]) are registered once per table-schema version;
//! encoding a row does no schema work.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::Schema;
use serde_json::Value as Json;

use super::avro_binary as bin;
use super::avro_schema::{avro_segment, envelope_schema, flat_schema, key_schema, TableNames};
use super::flatten::Flatten;
use super::registry::RegistryClient;
use super::route::Routed;
use super::EncodeError;
use crate::config::MetaType;
use crate::config::SubjectStrategy;
use crate::event::{ChangeEvent, Op, SourceDetail, TableId, TableSchema, Value};
/// A registered schema's id.
struct Registered {
    id: u32,
}

struct AvroTable {
    table: Arc<TableSchema>,
    key: Option<Registered>,
    /// The value of the key field a route adds (`[[route]]` with key uniqueness).
    key_field: Option<String>,
    value: Registered,
    /// Each column's union shape in the value record.
    unions: Vec<bin::Union>,
}

impl AvroTable {
    fn new(table: Arc<TableSchema>, key: Option<Registered>, value: Registered) -> Self {
        let unions = table
            .columns
            .iter()
            .map(|c| super::avro_schema::union_of(c, c.nullable))
            .collect();
        AvroTable {
            table,
            key,
            key_field: None,
            value,
            unions,
        }
    }
}

/// Encodes keys and envelopes in Avro, registering schemas as table shapes appear.
pub struct AvroEncoder {
    prefix: String,
    registry: RegistryClient,
    strategy: SubjectStrategy,
    tables: rustc_hash::FxHashMap<TableId, AvroTable>,
    namespaces: HashMap<String, TableId>,
    connector: &'static str,
    /// `[unwrap]`, when on: the value schema is the flattened row.
    flatten: Option<Arc<Flatten>>,
    /// Outbox topics: the table version their schemas were registered for, key and value ids.
    outbox: HashMap<String, (Arc<TableSchema>, u32, u32)>,
    /// Flattened values without some columns (`drop_fields_header_name`): the table version
    /// and the value schema id, per table and set of left-out columns.
    variants: HashMap<(TableId, Vec<usize>), (Arc<TableSchema>, u32)>,
    /// The sets of left-out columns registered per table, at most
    /// [`MAX_VARIANTS_PER_TABLE`]: N optional columns make up to 2^N sets, each a schema
    /// version in the registry. Past the bound an update is published whole.
    variant_sets: HashMap<TableId, std::collections::HashSet<Vec<usize>>>,
}

/// How many value schemas without some columns (`drop_fields_header_name`) one table may
/// register.
pub const MAX_VARIANTS_PER_TABLE: usize = 32;

fn definite(e: impl std::fmt::Display) -> EncodeError {
    EncodeError::Definite(e.to_string())
}

impl AvroEncoder {
    /// An encoder for a connector's topic prefix.
    pub fn new(prefix: &str, registry: RegistryClient, strategy: SubjectStrategy) -> Self {
        AvroEncoder {
            prefix: prefix.to_string(),
            registry,
            strategy,
            tables: Default::default(),
            namespaces: HashMap::new(),
            connector: "postgresql",
            flatten: None,
            outbox: HashMap::new(),
            variants: HashMap::new(),
            variant_sets: HashMap::new(),
        }
    }

    /// Registers and writes flattened row states instead of envelopes (`[unwrap]`).
    pub fn set_flatten(&mut self, flatten: Option<Arc<Flatten>>) {
        self.flatten = flatten;
        self.tables.clear();
    }

    fn subject(&self, topic: &str, is_key: bool, record_full_name: &str) -> String {
        match self.strategy {
            SubjectStrategy::Topic => format!("{topic}-{}", if is_key { "key" } else { "value" }),
            SubjectStrategy::Record => record_full_name.to_string(),
            SubjectStrategy::TopicRecord => format!("{topic}-{record_full_name}"),
        }
    }

    async fn register(&self, subject: &str, schema: &Json) -> Result<Registered, EncodeError> {
        let text = schema.to_string();
        let _checked = Schema::parse_str(&text).map_err(|e| {
            definite(format!(
                "internal error: the Avro schema for subject {subject} does not parse: {e}"
            ))
        })?;
        let id = self.registry.register(subject, &text).await.map_err(|e| {
            if e.is_transient() {
                EncodeError::Transient(e.to_string())
            } else {
                definite(format!("{e}; fix the subject's compatibility setting in the registry or the table change"))
            }
        })?;
        tracing::info!(subject, id, "registered Avro schema");
        Ok(Registered { id })
    }

    /// Builds and registers the schemas of a table-schema version not seen before.
    pub async fn prepare(
        &mut self,
        table: &Arc<TableSchema>,
        topic: &str,
        connector: &'static str,
        routed: Option<&Routed>,
    ) -> Result<(), EncodeError> {
        if connector != self.connector {
            self.connector = connector;
            self.tables.clear();
        }
        if let Some(t) = self.tables.get(&table.id) {
            if Arc::ptr_eq(&t.table, table) || *t.table == **table {
                return Ok(());
            }
        }
        let names = TableNames::new(&self.prefix, &table.id);
        if let Some(other) = self.namespaces.get(&names.namespace) {
            if *other != table.id {
                return Err(definite(format!(
                    "tables {other} and {} both become the Avro name {}; Avro names allow only letters, digits and '_': rename one of them or capture only one",
                    table.id, names.namespace
                )));
            }
        }
        // A routed table's key and envelope are named after the topic.
        let record_ns = routed.map_or(names.namespace.clone(), |r| avro_namespace(&r.topic));
        let full = |record: &str| format!("{record_ns}.{record}");
        let key = match key_schema(table, &names) {
            Some(mut s) => {
                if let Some(r) = routed {
                    s["namespace"] = Json::from(record_ns.clone());
                    s["connect.name"] = Json::from(format!("{}.Key", r.topic));
                    if let (Some((name, _)), Some(Json::Array(fields))) =
                        (&r.key_field, s.get_mut("fields"))
                    {
                        fields.push(
                            serde_json::json!({"name": avro_segment(name), "type": "string"}),
                        );
                    }
                }
                Some(
                    self.register(&self.subject(topic, true, &full("Key")), &s)
                        .await?,
                )
            }
            None => None,
        };
        let value = match &self.flatten {
            Some(f) => {
                self.register(
                    &self.subject(topic, false, &names.full("Value")),
                    &flat_schema(table, &names, f),
                )
                .await?
            }
            None => {
                let mut s = envelope_schema(table, &names, self.connector);
                if let Some(r) = routed {
                    s["namespace"] = Json::from(record_ns.clone());
                    s["connect.name"] = Json::from(format!("{}.Envelope", r.topic));
                }
                self.register(&self.subject(topic, false, &full("Envelope")), &s)
                    .await?
            }
        };
        self.namespaces.insert(names.namespace, table.id.clone());
        let mut t = AvroTable::new(table.clone(), key, value);
        t.key_field = routed.and_then(|r| r.key_field.as_ref().map(|(_, v)| v.clone()));
        self.tables.insert(table.id.clone(), t);
        Ok(())
    }

    /// The key bytes of a row (`None` for a table without key).
    pub fn key(&self, table: &TableSchema, row: &[Value]) -> Result<Option<Vec<u8>>, EncodeError> {
        let t = self.prepared(table)?;
        let Some(reg) = &t.key else { return Ok(None) };
        let mut out = header(reg.id, 16);
        for i in &table.key {
            if let Some(c) = table.columns.get(*i) {
                let v = row.get(*i).unwrap_or(&Value::Null);
                bin::value(&mut out, &c.name, &c.kind, v, bin::Union::Required)
                    .map_err(definite)?;
            }
        }
        if let Some(v) = &t.key_field {
            bin::bytes(&mut out, v.as_bytes());
        }
        Ok(Some(out))
    }

    /// The envelope bytes of one change.
    #[allow(clippy::too_many_arguments)]
    pub fn envelope(
        &self,
        prefix: &str,
        event: &ChangeEvent,
        table: &TableSchema,
        op: Op,
        before: Option<&[Value]>,
        after: Option<&[Value]>,
        now_ns: i64,
    ) -> Result<Vec<u8>, EncodeError> {
        let t = self.prepared(table)?;
        let mut out = header(t.value.id, 256);
        for image in [before, after] {
            match image {
                None => bin::branch(&mut out, 0),
                Some(row) => {
                    bin::branch(&mut out, 1);
                    for ((i, c), union) in table.columns.iter().enumerate().zip(&t.unions) {
                        let v = row.get(i).unwrap_or(&Value::Null);
                        bin::value(&mut out, &c.name, &c.kind, v, *union).map_err(definite)?;
                    }
                }
            }
        }
        write_source(&mut out, prefix, event, table);
        match &event.transaction {
            Some(tx) => {
                bin::branch(&mut out, 1);
                bin::bytes(&mut out, tx.id.as_bytes());
                bin::long(&mut out, tx.total_order);
                bin::long(&mut out, tx.data_collection_order);
            }
            None => bin::branch(&mut out, 0),
        }
        bin::bytes(&mut out, op.code().as_bytes());
        bin::opt_long(&mut out, Some(now_ns / 1_000_000));
        bin::opt_long(&mut out, Some(now_ns / 1000));
        bin::opt_long(&mut out, Some(now_ns));
        Ok(out)
    }

    /// The flattened value of one row (`[unwrap]`): columns, added fields (`meta`, in
    /// order), `__deleted` in the rewrite modes.
    pub fn flat(
        &self,
        table: &TableSchema,
        row: &[Value],
        meta: &[Json],
        deleted: bool,
    ) -> Result<Vec<u8>, EncodeError> {
        let t = self.prepared(table)?;
        let mut out = header(t.value.id, 256);
        for ((i, c), union) in table.columns.iter().enumerate().zip(&t.unions) {
            let v = row.get(i).unwrap_or(&Value::Null);
            bin::value(&mut out, &c.name, &c.kind, v, *union).map_err(definite)?;
        }
        self.write_added(&mut out, meta, deleted);
        Ok(out)
    }

    /// Registers the flattened value schema without the `dropped` columns (once per table
    /// version and set).
    pub async fn prepare_variant(
        &mut self,
        table: &Arc<TableSchema>,
        topic: &str,
        dropped: &[usize],
    ) -> Result<(), EncodeError> {
        let Some(flatten) = self.flatten.clone() else {
            return Ok(());
        };
        let k = (table.id.clone(), dropped.to_vec());
        if let Some((t, _)) = self.variants.get(&k) {
            if Arc::ptr_eq(t, table) || **t == **table {
                return Ok(());
            }
        }
        let sets = self.variant_sets.entry(table.id.clone()).or_default();
        if !sets.contains(dropped) {
            if sets.len() >= MAX_VARIANTS_PER_TABLE {
                // Published whole (see `has_variant`): no new schema version.
                self.variants.remove(&k);
                return Ok(());
            }
            if sets.len() + 1 == MAX_VARIANTS_PER_TABLE {
                tracing::warn!(table = %table.id, limit = MAX_VARIANTS_PER_TABLE, "unwrap.drop_fields_header_name: this table reached its limit of value schemas without some columns; updates with other sets of unchanged columns are published whole");
            }
            sets.insert(dropped.to_vec());
        }
        let (narrowed, _) = super::flatten::narrow(table, &[], dropped);
        let names = TableNames::new(&self.prefix, &table.id);
        let reg = self
            .register(
                &self.subject(topic, false, &names.full("Value")),
                &flat_schema(&narrowed, &names, &flatten),
            )
            .await?;
        if self.variants.len() >= 1024 {
            // Bounded memory: ids are looked up again when needed (the registry answers
            // with the existing id).
            self.variants.clear();
        }
        self.variants.insert(k, (table.clone(), reg.id));
        Ok(())
    }

    /// Whether a value schema without the `dropped` columns is prepared for this table
    /// version (else the update is published whole).
    pub fn has_variant(&self, table: &TableSchema, dropped: &[usize]) -> bool {
        self.variants
            .get(&(table.id.clone(), dropped.to_vec()))
            .is_some_and(|(t, _)| **t == *table)
    }

    /// The flattened value without the `dropped` columns (schema prepared).
    pub fn flat_without(
        &self,
        table: &TableSchema,
        row: &[Value],
        meta: &[Json],
        deleted: bool,
        dropped: &[usize],
    ) -> Result<Vec<u8>, EncodeError> {
        let (_, id) = self
            .variants
            .get(&(table.id.clone(), dropped.to_vec()))
            .ok_or_else(|| {
                definite(format!(
                    "internal error: no Avro schema prepared for {} without some columns",
                    table.id
                ))
            })?;
        let (narrowed, row) = super::flatten::narrow(table, row, dropped);
        let mut out = header(*id, 256);
        for (i, c) in narrowed.columns.iter().enumerate() {
            let v = row.get(i).unwrap_or(&Value::Null);
            let union = super::avro_schema::union_of(c, c.nullable);
            bin::value(&mut out, &c.name, &c.kind, v, union).map_err(definite)?;
        }
        self.write_added(&mut out, meta, deleted);
        Ok(out)
    }

    /// The added fields and `__deleted` of a flattened value.
    fn write_added(&self, out: &mut Vec<u8>, meta: &[Json], deleted: bool) {
        let Some(flatten) = &self.flatten else {
            return;
        };
        for (f, v) in flatten.fields.iter().zip(meta) {
            match (f.ty, v) {
                (MetaType::Str, Json::String(s)) => bin::opt_str(out, Some(s)),
                (MetaType::Long | MetaType::Int, Json::Number(n)) => {
                    // int and long share Avro's zigzag varint encoding.
                    bin::opt_long(out, n.as_i64())
                }
                (MetaType::Str, Json::Number(n)) => bin::opt_str(out, Some(&n.to_string())),
                _ => bin::branch(out, 0),
            }
        }
        if flatten.mode.rewrites() {
            bin::opt_str(out, Some(if deleted { "true" } else { "false" }));
        }
    }

    /// Registers the key and value schemas of an outbox topic (once per table version):
    /// the key column's type, and the payload column's (a `Value` record in the topic's
    /// namespace with the envelope-placed columns when there are some).
    pub(super) async fn prepare_outbox(
        &mut self,
        table: &Arc<TableSchema>,
        ev: &super::outbox::Event<'_>,
    ) -> Result<(), EncodeError> {
        if let Some((t, _, _)) = self.outbox.get(&ev.topic) {
            if Arc::ptr_eq(t, table) || **t == **table {
                return Ok(());
            }
        }
        let mut names = super::avro_schema::Names::default();
        let key_schema = super::avro_schema::kind_type(&ev.key.0.kind, &mut names);
        let ns = avro_namespace(&ev.topic);
        let value_schema = if ev.fields.is_empty() {
            let (col, _) = ev.payload;
            let ty = super::avro_schema::kind_type(&col.kind, &mut names);
            if col.nullable {
                serde_json::json!(["null", ty])
            } else {
                ty
            }
        } else {
            let mut fields = Vec::new();
            for (name, col) in std::iter::once(("payload", ev.payload.0))
                .chain(ev.fields.iter().map(|(n, c, _)| (n.as_str(), *c)))
            {
                let ty = super::avro_schema::kind_type(&col.kind, &mut names);
                fields.push(super::avro_schema::field(
                    &avro_segment(name),
                    ty,
                    col.nullable,
                ));
            }
            serde_json::json!({
                "type": "record",
                "name": "Value",
                "namespace": ns,
                "fields": fields,
                "connect.name": format!("{}.Value", ev.topic)
            })
        };
        let key = self
            .register(
                &self.subject(&ev.topic, true, &format!("{ns}.Key")),
                &key_schema,
            )
            .await?;
        let value = self
            .register(
                &self.subject(&ev.topic, false, &format!("{ns}.Value")),
                &value_schema,
            )
            .await?;
        self.outbox
            .insert(ev.topic.clone(), (table.clone(), key.id, value.id));
        Ok(())
    }

    /// The Avro key and value of an outbox event (schemas prepared).
    pub(super) fn outbox_record(
        &self,
        ev: &super::outbox::Event<'_>,
    ) -> Result<(Vec<u8>, Vec<u8>), EncodeError> {
        let (_, key_id, value_id) = self.outbox.get(&ev.topic).ok_or_else(|| {
            definite(format!(
                "internal error: no Avro schema prepared for outbox topic {}",
                ev.topic
            ))
        })?;
        let mut key = header(*key_id, 32);
        let (col, v) = ev.key;
        bin::value(&mut key, &col.name, &col.kind, v, bin::Union::Required).map_err(definite)?;
        let mut value = header(*value_id, 256);
        let union = |c: &crate::event::Column| {
            if c.nullable {
                bin::Union::NullFirst
            } else {
                bin::Union::Required
            }
        };
        let (col, v) = ev.payload;
        bin::value(&mut value, &col.name, &col.kind, v, union(col)).map_err(definite)?;
        for (_, col, v) in &ev.fields {
            bin::value(&mut value, &col.name, &col.kind, v, union(col)).map_err(definite)?;
        }
        Ok((key, value))
    }

    fn prepared(&self, table: &TableSchema) -> Result<&AvroTable, EncodeError> {
        self.tables.get(&table.id).ok_or_else(|| {
            definite(format!(
                "internal error: no Avro schema prepared for {}",
                table.id
            ))
        })
    }
}

/// The Avro namespace of a topic name: each `.`-separated part made Avro-safe.
fn avro_namespace(topic: &str) -> String {
    topic
        .split('.')
        .map(avro_segment)
        .collect::<Vec<_>>()
        .join(".")
}

/// Confluent wire format header: magic byte 0, then the schema id (big-endian).
fn header(id: u32, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
    out
}

/// The `source` record, in the field order of [`source_schema`].
fn write_source(out: &mut Vec<u8>, prefix: &str, event: &ChangeEvent, table: &TableSchema) {
    let ts_us = event.source.ts_us;
    let (tx_id, lsn, last_commit_lsn, origin, origin_lsn) = match &event.source.detail {
        SourceDetail::Postgres {
            tx_id,
            lsn,
            last_commit_lsn,
            origin,
            origin_lsn,
        } => (tx_id, lsn, last_commit_lsn, origin, origin_lsn),
        SourceDetail::Mysql { shared: m, row } => {
            bin::bytes(out, env!("CARGO_PKG_VERSION").as_bytes());
            bin::bytes(out, m.flavor.connector().as_bytes());
            bin::bytes(out, prefix.as_bytes());
            bin::long(out, ts_us.div_euclid(1000));
            bin::branch(out, 0);
            bin::bytes(out, event.source.snapshot.as_str().as_bytes());
            bin::bytes(out, event.source.db.as_bytes());
            bin::opt_str(out, None);
            bin::opt_long(out, Some(ts_us));
            bin::opt_long(out, Some(ts_us.saturating_mul(1000)));
            bin::opt_str(out, Some(&table.id.name));
            bin::long(out, i64::from(m.server_id));
            bin::opt_str(out, m.gtid.as_deref());
            bin::bytes(out, m.file.as_bytes());
            bin::long(out, m.pos as i64);
            bin::long(out, i64::from(*row));
            bin::opt_long(out, m.thread.map(i64::from));
            bin::opt_str(out, m.query.as_deref());
            return;
        }
    };
    bin::bytes(out, env!("CARGO_PKG_VERSION").as_bytes());
    bin::bytes(out, event.source.detail.connector().as_bytes());
    bin::bytes(out, prefix.as_bytes());
    bin::long(out, ts_us.div_euclid(1000));
    bin::branch(out, 0); // snapshot: ["string", "null"]
    bin::bytes(out, event.source.snapshot.as_str().as_bytes());
    bin::bytes(out, event.source.db.as_bytes());
    let seq = |v: &Option<u64>| {
        v.map(|v| format!("\"{v}\""))
            .unwrap_or_else(|| "null".into())
    };
    bin::opt_str(
        out,
        Some(&format!("[{},{}]", seq(last_commit_lsn), seq(lsn))),
    );
    bin::opt_long(out, Some(ts_us));
    bin::opt_long(out, Some(ts_us.saturating_mul(1000)));
    bin::bytes(out, table.id.schema.as_bytes());
    bin::bytes(out, table.id.name.as_bytes());
    bin::opt_long(out, *tx_id);
    bin::opt_long(out, lsn.map(|v| v as i64));
    bin::opt_long(out, None);
    bin::opt_str(out, origin.as_deref());
    bin::opt_long(out, origin_lsn.map(|v| v as i64));
}

#[cfg(test)]
mod tests {
    use super::super::avro_schema::avro_segment;
    use super::*;
    use crate::event::{Column, ColumnKind};
    use apache_avro::types::Value as Avro;

    fn table() -> TableSchema {
        TableSchema {
            id: TableId {
                schema: "public".into(),
                name: "my-table".into(),
            },
            columns: vec![
                Column {
                    name: "id".into(),
                    kind: ColumnKind::Int32,
                    nullable: false,
                    default: None,
                    length: None,
                },
                Column {
                    name: "n1".into(),
                    kind: ColumnKind::VariableDecimal,
                    nullable: true,
                    default: None,
                    length: None,
                },
                Column {
                    name: "n2".into(),
                    kind: ColumnKind::VariableDecimal,
                    nullable: true,
                    default: None,
                    length: None,
                },
                Column {
                    name: "price".into(),
                    kind: ColumnKind::Decimal {
                        precision: Some(10),
                        scale: 2,
                    },
                    nullable: true,
                    default: None,
                    length: None,
                },
                Column {
                    name: "tags".into(),
                    kind: ColumnKind::Array(Box::new(ColumnKind::Text)),
                    nullable: true,
                    default: None,
                    length: None,
                },
            ],
            key: vec![0],
        }
    }

    #[test]
    fn schemas_parse_and_names_are_safe() {
        assert_eq!(avro_segment("my-table"), "my_table");
        assert_eq!(avro_segment("1st"), "_1st");
        let names = TableNames::new("inv-1", &table().id);
        assert_eq!(names.namespace, "inv_1.public.my_table");
        let env = envelope_schema(&table(), &names, "postgresql");
        let parsed = Schema::parse_str(&env.to_string()).expect("envelope schema parses");
        let key = key_schema(&table(), &names).unwrap();
        Schema::parse_str(&key.to_string()).expect("key schema parses");
        // Named types are defined once, then referenced.
        let text = env.to_string();
        assert_eq!(text.matches("\"name\":\"VariableScaleDecimal\"").count(), 1);
        assert_eq!(text.matches("\"name\":\"Value\"").count(), 1);
        drop(parsed);
    }

    #[test]
    fn subject_strategies() {
        let reg = RegistryClient::new("http://127.0.0.1:1", None, None).unwrap();
        let full = "inv.public.t.Envelope";
        let name = |strategy| {
            AvroEncoder::new("inv", reg.clone(), strategy).subject("inv.public.t", false, full)
        };
        assert_eq!(name(SubjectStrategy::Topic), "inv.public.t-value");
        assert_eq!(name(SubjectStrategy::Record), full);
        assert_eq!(
            name(SubjectStrategy::TopicRecord),
            "inv.public.t-inv.public.t.Envelope"
        );
        let key = AvroEncoder::new("inv", reg, SubjectStrategy::Topic).subject(
            "inv.public.t",
            true,
            "x.Key",
        );
        assert_eq!(key, "inv.public.t-key");
    }

    #[test]
    fn envelope_round_trips() {
        use crate::event::{SnapshotMarker, SourceMeta};
        use crate::position::{PgPosition, SourcePosition};
        let t = Arc::new(table());
        let names = TableNames::new("inv", &t.id);
        let env = envelope_schema(&t, &names, "postgresql");
        let key_avro = Schema::parse_str(&key_schema(&t, &names).unwrap().to_string()).unwrap();
        let mut enc = AvroEncoder::new(
            "inv",
            RegistryClient::new("http://127.0.0.1:1", None, None).unwrap(),
            SubjectStrategy::Topic,
        );
        enc.tables.insert(
            t.id.clone(),
            AvroTable::new(t.clone(), Some(Registered { id: 3 }), Registered { id: 4 }),
        );
        let row = vec![
            Value::Int(1),
            Value::Null,
            Value::Decimal(crate::event::Decimal {
                unscaled: vec![0x0f],
                scale: 1,
            }),
            Value::Decimal(crate::event::Decimal {
                unscaled: vec![0x04, 0xd2],
                scale: 2,
            }),
            Value::Array(vec![Value::Text("a".into()), Value::Null]),
        ];
        let event = ChangeEvent {
            op: Op::Create,
            table: Some(t.clone()),
            before: None,
            after: Some(row.clone()),
            source: SourceMeta {
                ts_us: 1_000_000,
                snapshot: SnapshotMarker::False,
                db: Arc::from("db"),
                detail: SourceDetail::Postgres {
                    tx_id: Some(5),
                    lsn: Some(9),
                    last_commit_lsn: None,
                    origin: None,
                    origin_lsn: None,
                },
            },
            message: None,
            transaction: None,
            position: SourcePosition::Postgres(PgPosition::at(0)),
        };
        let bytes = enc
            .envelope("inv", &event, &t, Op::Create, None, Some(&row), 5)
            .unwrap();
        assert_eq!(&bytes[..5], &[0, 0, 0, 0, 4]);
        let schema = Schema::parse_str(&env.to_string()).unwrap();
        let decoded = apache_avro::from_avro_datum(&schema, &mut &bytes[5..], None).unwrap();
        let Avro::Record(fields) = decoded else {
            panic!("not a record")
        };
        assert_eq!(fields[4], ("op".to_string(), Avro::String("c".into())));
        let key = enc.key(&t, &row).unwrap().unwrap();
        assert_eq!(&key[..5], &[0, 0, 0, 0, 3]);
        assert_eq!(&key[5..], &[2], "zig-zag encoded int 1");
        let decoded_key = apache_avro::from_avro_datum(&key_avro, &mut &key[5..], None).unwrap();
        assert_eq!(decoded_key, Avro::Record(vec![("id".into(), Avro::Int(1))]));
    }

    #[test]
    fn mysql_envelope_with_its_types_round_trips() {
        use crate::event::{
            Column, ColumnKind, MysqlDetail, MysqlFlavor, SnapshotMarker, SourceMeta,
        };
        use crate::position::{MyPosition, SnapshotState, SourcePosition};
        let col = |name: &str, kind: ColumnKind, nullable: bool| Column {
            name: name.into(),
            kind,
            nullable,
            default: None,
            length: None,
        };
        let t = Arc::new(TableSchema {
            id: TableId {
                schema: "shop".into(),
                name: "orders".into(),
            },
            columns: vec![
                col("id", ColumnKind::Int8, false),
                col("y", ColumnKind::Year, true),
                col(
                    "s",
                    ColumnKind::EnumSet {
                        allowed: vec!["a".into(), "b".into()],
                    },
                    true,
                ),
                col("g", ColumnKind::Geometry, true),
                col("v", ColumnKind::Array(Box::new(ColumnKind::Float32)), true),
            ],
            key: vec![0],
        });
        let names = TableNames::new("shop", &t.id);
        let env = envelope_schema(&t, &names, "mariadb");
        let schema = Schema::parse_str(&env.to_string()).unwrap();
        let mut enc = AvroEncoder::new(
            "shop",
            RegistryClient::new("http://127.0.0.1:1", None, None).unwrap(),
            SubjectStrategy::Topic,
        );
        enc.connector = "mariadb";
        enc.tables.insert(
            t.id.clone(),
            AvroTable::new(t.clone(), Some(Registered { id: 1 }), Registered { id: 2 }),
        );
        let row = vec![
            Value::Int(-3),
            Value::Int(2024),
            Value::Text("a,b".into()),
            Value::Geometry {
                wkb: vec![1, 2, 3],
                srid: Some(4326),
            },
            Value::Array(vec![Value::Float(1.5)]),
        ];
        let event = ChangeEvent {
            op: Op::Create,
            table: Some(t.clone()),
            before: None,
            after: Some(row.clone()),
            source: SourceMeta {
                ts_us: 2_000_000,
                snapshot: SnapshotMarker::False,
                db: Arc::from("shop"),
                detail: SourceDetail::Mysql {
                    shared: Arc::new(MysqlDetail {
                        flavor: MysqlFlavor::Mariadb,
                        server_id: 1,
                        gtid: Some(Arc::from("0-1-9")),
                        file: Arc::from("mariadb-bin.000001"),
                        pos: 400,
                        thread: None,
                        query: None,
                    }),
                    row: 0,
                },
            },
            message: None,
            transaction: None,
            position: SourcePosition::Mysql(MyPosition {
                incremental: None,
                file: Arc::from("mariadb-bin.000001"),
                pos: 300,
                gtids: None,
                events: 0,
                rows: 1,
                snapshot: SnapshotState::Done,
                last_event: None,
            }),
        };
        let bytes = enc
            .envelope("shop", &event, &t, Op::Create, None, Some(&row), 5)
            .unwrap();
        let decoded = apache_avro::from_avro_datum(&schema, &mut &bytes[5..], None).unwrap();
        let Avro::Record(fields) = decoded else {
            panic!("not a record")
        };
        let Avro::Union(_, after) = &fields[1].1 else {
            panic!("{:?}", fields[1])
        };
        let Avro::Record(after) = after.as_ref() else {
            panic!("{after:?}")
        };
        assert_eq!(after[0], ("id".into(), Avro::Int(-3)));
        assert_eq!(
            after[2].1,
            Avro::Union(1, Box::new(Avro::String("a,b".into())))
        );
        let Avro::Record(source) = &fields[2].1 else {
            panic!("{:?}", fields[2])
        };
        let get = |n: &str| {
            source
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("connector"), Avro::String("mariadb".into()));
        assert_eq!(
            get("gtid"),
            Avro::Union(1, Box::new(Avro::String("0-1-9".into())))
        );
        assert_eq!(get("file"), Avro::String("mariadb-bin.000001".into()));
        assert_eq!(get("pos"), Avro::Long(400));
        assert_eq!(get("server_id"), Avro::Long(1));
    }
}
