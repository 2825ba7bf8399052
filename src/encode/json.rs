//! Debezium JSON, with (`{"schema","payload"}`) or without schema.

use std::fmt::Write as _;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::flatten::Flatten;
use super::json_value::{push_int, write_str, write_value};
use super::route::{Routed, Router};
use super::schema;
use super::{topic_segment, Record};
use crate::event::{ChangeEvent, MysqlDetail, Op, SourceDetail, TableId, TableSchema, Value};

/// Everything about one table-schema version that does not depend on the row.
struct TableEncoding {
    table: Arc<TableSchema>,
    topic: Arc<str>,
    key_schema: Option<String>,
    envelope_schema: String,
    /// The flattened value's schema (`[unwrap]`; empty when off).
    flat_schema: String,
    /// Per column, `"name":` (with a leading comma after the first), escaped once.
    field_prefixes: Vec<String>,
    /// Per key column, the same for the key struct.
    key_prefixes: Vec<String>,
    /// The route taken (`[[route]]`), if any.
    routed: Option<Arc<Routed>>,
}

fn field_prefixes<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    names
        .enumerate()
        .map(|(i, name)| {
            let mut p = String::new();
            if i > 0 {
                p.push(',');
            }
            write_str(&mut p, name);
            p.push(':');
            p
        })
        .collect()
}

/// Encodes change events as Debezium JSON records.
pub struct JsonEncoder {
    prefix: String,
    with_schema: bool,
    tables: rustc_hash::FxHashMap<TableId, Arc<TableEncoding>>,
    message_topic: Arc<str>,
    message_schemas: (String, String),
    source_schema: serde_json::Value,
    connector: &'static str,
    /// The table version of the last lookup and its encoding.
    last: Option<(Arc<TableSchema>, Arc<TableEncoding>)>,
    /// `[unwrap]`, when on.
    flatten: Option<Arc<Flatten>>,
    /// `[[route]]`, when any.
    router: Option<Arc<Router>>,
    /// Flattened values without some columns: per table and left-out set, the table version,
    /// the schema and the field prefixes.
    variants: rustc_hash::FxHashMap<(TableId, Vec<usize>), FlatVariant>,
}

/// How many flattened-value shapes without some columns are kept.
const MAX_VARIANTS: usize = 1024;

/// A flattened value's shape without some columns (`drop_fields_header_name`).
struct FlatVariant {
    table: Arc<TableSchema>,
    schema: String,
    prefixes: Vec<String>,
}

impl JsonEncoder {
    /// An encoder for a connector's topic prefix.
    pub fn new(prefix: &str, with_schema: bool) -> Self {
        let source_schema = schema::postgres_source_schema();
        JsonEncoder {
            prefix: prefix.to_string(),
            with_schema,
            tables: Default::default(),
            message_topic: Arc::from(format!("{prefix}.message")),
            message_schemas: (
                schema::message_key_schema().to_string(),
                schema::message_value_schema(source_schema.clone()).to_string(),
            ),
            source_schema,
            connector: "postgresql",
            last: None,
            flatten: None,
            router: None,
            variants: Default::default(),
        }
    }

    /// Routes tables' records to other topics (`[[route]]`).
    pub fn set_router(&mut self, router: Option<Arc<Router>>) {
        self.router = router;
        self.tables.clear();
        self.last = None;
    }

    /// The route a table's records take (`None`: its default topic).
    pub fn routed(&mut self, table: &Arc<TableSchema>) -> Option<Arc<Routed>> {
        self.encoding(table).routed.clone()
    }

    /// Publishes row states instead of envelopes (`[unwrap]`).
    pub fn set_flatten(&mut self, flatten: Option<Arc<Flatten>>) {
        self.flatten = flatten;
        self.tables.clear();
        self.last = None;
    }

    /// Selects the `source` block layout of the events that follow (`postgresql`, `mysql`,
    /// `mariadb`); cached table schemas are rebuilt when it changes.
    pub fn set_connector(&mut self, connector: &'static str) {
        if connector != self.connector {
            self.connector = connector;
            self.source_schema = schema::source_schema(connector);
            self.tables.clear();
            self.last = None;
        }
    }

    /// The topic a table's events go to.
    pub fn topic_for(&self, table: &TableId) -> String {
        format!(
            "{}.{}.{}",
            self.prefix,
            topic_segment(&table.schema),
            topic_segment(&table.name)
        )
    }

    /// The topic logical messages go to.
    pub fn message_topic(&self) -> &str {
        &self.message_topic
    }

    /// The topic of a table's records.
    pub fn topic(&mut self, table: &Arc<TableSchema>) -> Arc<str> {
        self.encoding(table).topic.clone()
    }

    fn encoding(&mut self, table: &Arc<TableSchema>) -> &TableEncoding {
        // The same table version as the last call (the common case): no lookup.
        if self
            .last
            .as_ref()
            .is_some_and(|(t, _)| Arc::ptr_eq(t, table))
        {
            return &self.last.as_ref().expect("checked").1;
        }
        let stale = self
            .tables
            .get(&table.id)
            .is_none_or(|e| !Arc::ptr_eq(&e.table, table) && *e.table != **table);
        if stale {
            let record_prefix = format!("{}.{}.{}", self.prefix, table.id.schema, table.id.name);
            let default_topic = self.topic_for(&table.id);
            let routed = self
                .router
                .as_ref()
                .and_then(|r| r.route(&default_topic))
                .map(Arc::new);
            let mut key_schema = schema::key_schema(table, &record_prefix);
            let mut envelope_schema =
                schema::envelope_schema(table, &record_prefix, self.source_schema.clone());
            if let Some(r) = &routed {
                schema::route_schemas(key_schema.as_mut(), &mut envelope_schema, r);
            }
            let enc = TableEncoding {
                table: table.clone(),
                topic: Arc::from(routed.as_ref().map_or(default_topic, |r| r.topic.clone())),
                key_schema: key_schema.map(|s| s.to_string()),
                envelope_schema: envelope_schema.to_string(),
                flat_schema: self
                    .flatten
                    .as_ref()
                    .map(|f| schema::flat_schema(table, &record_prefix, f).to_string())
                    .unwrap_or_default(),
                field_prefixes: field_prefixes(table.columns.iter().map(|c| c.name.as_str())),
                key_prefixes: field_prefixes(
                    table
                        .key
                        .iter()
                        .filter_map(|i| table.columns.get(*i))
                        .map(|c| c.name.as_str()),
                ),
                routed,
            };
            self.tables.insert(table.id.clone(), Arc::new(enc));
        }
        let enc = self.tables[&table.id].clone();
        &self.last.insert((table.clone(), enc)).1
    }

    /// The key bytes of a row (`None` when the table has no key).
    pub fn key(&mut self, table: &Arc<TableSchema>, row: &[Value]) -> Option<Vec<u8>> {
        let with_schema = self.with_schema;
        let enc = self.encoding(table);
        let schema = enc.key_schema.as_deref()?;
        let mut out = String::with_capacity(if with_schema { schema.len() + 64 } else { 32 });
        open_wrap(&mut out, with_schema, schema);
        out.push('{');
        for (prefix, i) in enc.key_prefixes.iter().zip(&table.key) {
            out.push_str(prefix);
            let kind = &table.columns[*i].kind;
            write_value(&mut out, kind, row.get(*i).unwrap_or(&Value::Null));
        }
        if let Some((name, value)) = enc.routed.as_ref().and_then(|r| r.key_field.as_ref()) {
            out.push(',');
            write_str(&mut out, name);
            out.push(':');
            write_str(&mut out, value);
        }
        out.push('}');
        close_wrap(&mut out, with_schema);
        Some(out.into_bytes())
    }

    /// The envelope bytes of one change (`op` may differ from the event's for key changes).
    pub fn envelope(
        &mut self,
        event: &ChangeEvent,
        table: &Arc<TableSchema>,
        op: Op,
        before: Option<&[Value]>,
        after: Option<&[Value]>,
        now_ns: i64,
    ) -> Vec<u8> {
        let with_schema = self.with_schema;
        let prefix = self.prefix.clone();
        let enc = self.encoding(table);
        let schema = &enc.envelope_schema;
        // Sized for the rows up front: a buffer grown by doubling after a large value holds
        // up to twice its size (and copies it) — capacity never written is not resident.
        let rows: usize = [before, after]
            .iter()
            .flatten()
            .flat_map(|r| r.iter())
            .map(Value::approx_bytes)
            .sum();
        let mut out = String::with_capacity(
            if with_schema { schema.len() } else { 0 } + 1024 + rows.saturating_mul(3) / 2,
        );
        open_wrap(&mut out, with_schema, schema);
        out.push_str("{\"before\":");
        write_row(&mut out, table, &enc.field_prefixes, before);
        out.push_str(",\"after\":");
        write_row(&mut out, table, &enc.field_prefixes, after);
        out.push_str(",\"source\":");
        write_source(&mut out, &prefix, event, table);
        out.push_str(",\"transaction\":");
        match &event.transaction {
            Some(tx) => {
                out.push_str("{\"id\":");
                write_str(&mut out, &tx.id);
                out.push_str(",\"total_order\":");
                push_int(&mut out, tx.total_order);
                out.push_str(",\"data_collection_order\":");
                push_int(&mut out, tx.data_collection_order);
                out.push('}');
            }
            None => out.push_str("null"),
        }
        out.push_str(",\"op\":\"");
        out.push_str(op.code());
        out.push_str("\",\"ts_ms\":");
        push_int(&mut out, now_ns / 1_000_000);
        out.push_str(",\"ts_us\":");
        push_int(&mut out, now_ns / 1000);
        out.push_str(",\"ts_ns\":");
        push_int(&mut out, now_ns);
        out.push('}');
        close_wrap(&mut out, with_schema);
        out.into_bytes()
    }

    /// The flattened value of one row (`[unwrap]`): its columns, then the added fields
    /// (`meta`, in `[unwrap] add_fields` order), then `__deleted` in the rewrite modes.
    pub fn flat(
        &mut self,
        table: &Arc<TableSchema>,
        row: &[Value],
        meta: &[serde_json::Value],
        deleted: bool,
    ) -> Vec<u8> {
        let with_schema = self.with_schema;
        let Some(flatten) = self.flatten.clone() else {
            return Vec::new();
        };
        let enc = self.encoding(table);
        write_flat(
            with_schema,
            &enc.flat_schema,
            table,
            &enc.field_prefixes,
            row,
            meta,
            deleted,
            &flatten,
        )
    }

    /// As [`Self::flat`], without the `dropped` columns (`drop_fields_header_name`); the
    /// schema is built for the record.
    pub fn flat_without(
        &mut self,
        table: &Arc<TableSchema>,
        row: &[Value],
        meta: &[serde_json::Value],
        deleted: bool,
        dropped: &[usize],
    ) -> Vec<u8> {
        let Some(flatten) = self.flatten.clone() else {
            return Vec::new();
        };
        let (narrowed, row) = super::flatten::narrow(table, row, dropped);
        let key = (table.id.clone(), dropped.to_vec());
        let fresh = self
            .variants
            .get(&key)
            .is_none_or(|v| !Arc::ptr_eq(&v.table, table));
        if fresh {
            let record_prefix = format!("{}.{}.{}", self.prefix, table.id.schema, table.id.name);
            let variant = FlatVariant {
                table: table.clone(),
                schema: schema::flat_schema(&narrowed, &record_prefix, &flatten).to_string(),
                prefixes: field_prefixes(narrowed.columns.iter().map(|c| c.name.as_str())),
            };
            if self.variants.len() >= MAX_VARIANTS {
                // Bounded memory: shapes are rebuilt when needed again.
                self.variants.clear();
            }
            self.variants.insert(key.clone(), variant);
        }
        let v = &self.variants[&key];
        write_flat(
            self.with_schema,
            &v.schema,
            &narrowed,
            &v.prefixes,
            &row,
            meta,
            deleted,
            &flatten,
        )
    }

    /// The `source` block of an event, as JSON (for `[unwrap]` metadata).
    pub fn source_block(&self, event: &ChangeEvent, table: &TableSchema) -> serde_json::Value {
        let mut out = String::new();
        write_source(&mut out, &self.prefix, event, table);
        serde_json::from_str(&out).unwrap_or(serde_json::Value::Null)
    }

    /// Encodes a logical decoding message record.
    pub fn message(&self, event: &ChangeEvent, now_ns: i64) -> Option<Record> {
        self.encode_message(event, now_ns)
    }

    fn encode_message(&self, event: &ChangeEvent, now_ns: i64) -> Option<Record> {
        let msg = event.message.as_ref()?;
        let mut key = String::from("{\"prefix\":");
        write_str(&mut key, &msg.prefix);
        key.push('}');
        let mut payload = String::from("{\"source\":");
        write_message_source(&mut payload, &self.prefix, event);
        let _ = write!(
            payload,
            ",\"op\":\"m\",\"ts_ms\":{},\"ts_us\":{},\"ts_ns\":{},\"message\":{{\"prefix\":",
            now_ns / 1_000_000,
            now_ns / 1000,
            now_ns
        );
        write_str(&mut payload, &msg.prefix);
        payload.push_str(",\"content\":\"");
        payload.push_str(&BASE64.encode(&msg.content));
        payload.push_str("\"}}");
        let mut k = String::new();
        wrap(&mut k, self.with_schema, &self.message_schemas.0, &key);
        let mut v = String::new();
        wrap(&mut v, self.with_schema, &self.message_schemas.1, &payload);
        Some(Record {
            topic: self.message_topic.clone(),
            key: Some(k.into_bytes()),
            value: Some(v.into_bytes()),
            headers: Vec::new(),
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn write_flat(
    with_schema: bool,
    schema: &str,
    table: &TableSchema,
    prefixes: &[String],
    row: &[Value],
    meta: &[serde_json::Value],
    deleted: bool,
    flatten: &Flatten,
) -> Vec<u8> {
    // Sized for the row up front (see `envelope`).
    let rows: usize = row.iter().map(Value::approx_bytes).sum();
    let mut out = String::with_capacity(
        if with_schema { schema.len() } else { 0 } + 512 + rows.saturating_mul(3) / 2,
    );
    open_wrap(&mut out, with_schema, schema);
    write_row(&mut out, table, prefixes, Some(row));
    // Reopen the row object for the added fields.
    out.pop();
    let mut first = out.ends_with('{');
    let mut sep = |out: &mut String| {
        if !first {
            out.push(',');
        }
        first = false;
    };
    for (f, v) in flatten.fields.iter().zip(meta) {
        sep(&mut out);
        write_str(&mut out, &f.name);
        out.push(':');
        out.push_str(&v.to_string());
    }
    if flatten.mode.rewrites() {
        sep(&mut out);
        write_str(&mut out, super::flatten::DELETED_FIELD);
        out.push_str(if deleted { ":\"true\"" } else { ":\"false\"" });
    }
    out.push('}');
    close_wrap(&mut out, with_schema);
    out.into_bytes()
}

fn open_wrap(out: &mut String, with_schema: bool, schema: &str) {
    if with_schema {
        out.push_str("{\"schema\":");
        out.push_str(schema);
        out.push_str(",\"payload\":");
    }
}

fn close_wrap(out: &mut String, with_schema: bool) {
    if with_schema {
        out.push('}');
    }
}

fn wrap(out: &mut String, with_schema: bool, schema: &str, payload: &str) {
    if with_schema {
        out.push_str("{\"schema\":");
        out.push_str(schema);
        out.push_str(",\"payload\":");
        out.push_str(payload);
        out.push('}');
    } else {
        out.push_str(payload);
    }
}

fn write_row(out: &mut String, table: &TableSchema, prefixes: &[String], row: Option<&[Value]>) {
    let Some(row) = row else {
        out.push_str("null");
        return;
    };
    out.push('{');
    for (i, (col, prefix)) in table.columns.iter().zip(prefixes).enumerate() {
        out.push_str(prefix);
        write_value(out, &col.kind, row.get(i).unwrap_or(&Value::Null));
    }
    out.push('}');
}

fn write_opt_i64(out: &mut String, v: Option<i64>) {
    match v {
        Some(v) => push_int(out, v),
        None => out.push_str("null"),
    }
}

fn write_source_start(out: &mut String, prefix: &str, event: &ChangeEvent) {
    let ts_us = event.source.ts_us;
    out.push_str("{\"version\":\"");
    out.push_str(env!("CARGO_PKG_VERSION"));
    out.push_str("\",\"connector\":\"");
    out.push_str(event.source.detail.connector());
    out.push_str("\",\"name\":");
    write_str(out, prefix);
    out.push_str(",\"ts_ms\":");
    push_int(out, ts_us.div_euclid(1000));
    out.push_str(",\"snapshot\":\"");
    out.push_str(event.source.snapshot.as_str());
    out.push_str("\",\"db\":");
    write_str(out, &event.source.db);
}

fn write_common_source(out: &mut String, prefix: &str, event: &ChangeEvent) {
    let ts_us = event.source.ts_us;
    write_source_start(out, prefix, event);
    let (last_commit_lsn, lsn) = match &event.source.detail {
        SourceDetail::Postgres {
            last_commit_lsn,
            lsn,
            ..
        } => (last_commit_lsn, lsn),
        SourceDetail::Mysql { .. } => (&None, &None),
    };
    // A JSON array rendered as a string: "[\"<last commit LSN>\",\"<this LSN>\"]".
    let seq = |out: &mut String, v: Option<u64>| match v {
        Some(v) => {
            out.push_str("\\\"");
            out.push_str(itoa::Buffer::new().format(v));
            out.push_str("\\\"");
        }
        None => out.push_str("null"),
    };
    out.push_str(",\"sequence\":\"[");
    seq(out, *last_commit_lsn);
    out.push(',');
    seq(out, *lsn);
    out.push_str("]\",\"ts_us\":");
    push_int(out, ts_us);
    out.push_str(",\"ts_ns\":");
    push_int(out, ts_us.saturating_mul(1000));
}

fn write_pg_detail(out: &mut String, event: &ChangeEvent) {
    let SourceDetail::Postgres {
        tx_id,
        lsn,
        origin,
        origin_lsn,
        ..
    } = &event.source.detail
    else {
        out.push('}');
        return;
    };
    out.push_str(",\"txId\":");
    write_opt_i64(out, *tx_id);
    out.push_str(",\"lsn\":");
    write_opt_i64(out, lsn.map(|v| v as i64));
    out.push_str(",\"xmin\":null,\"origin\":");
    match origin {
        Some(o) => write_str(out, o),
        None => out.push_str("null"),
    }
    out.push_str(",\"origin_lsn\":");
    write_opt_i64(out, origin_lsn.map(|v| v as i64));
    out.push('}');
}

fn write_mysql_source(
    out: &mut String,
    prefix: &str,
    event: &ChangeEvent,
    table: &TableSchema,
    m: &MysqlDetail,
    row: u32,
) {
    let ts_us = event.source.ts_us;
    write_source_start(out, prefix, event);
    out.push_str(",\"sequence\":null,\"ts_us\":");
    push_int(out, ts_us);
    out.push_str(",\"ts_ns\":");
    push_int(out, ts_us.saturating_mul(1000));
    out.push_str(",\"table\":");
    write_str(out, &table.id.name);
    out.push_str(",\"server_id\":");
    push_int(out, i64::from(m.server_id));
    out.push_str(",\"gtid\":");
    match &m.gtid {
        Some(g) => write_str(out, g),
        None => out.push_str("null"),
    }
    out.push_str(",\"file\":");
    write_str(out, &m.file);
    out.push_str(",\"pos\":");
    push_int(out, m.pos as i64);
    out.push_str(",\"row\":");
    push_int(out, i64::from(row));
    out.push_str(",\"thread\":");
    write_opt_i64(out, m.thread.map(i64::from));
    out.push_str(",\"query\":");
    match &m.query {
        Some(q) => write_str(out, q),
        None => out.push_str("null"),
    }
    out.push('}');
}

fn write_source(out: &mut String, prefix: &str, event: &ChangeEvent, table: &TableSchema) {
    if let SourceDetail::Mysql { shared, row } = &event.source.detail {
        write_mysql_source(out, prefix, event, table, shared, *row);
        return;
    }
    write_common_source(out, prefix, event);
    out.push_str(",\"schema\":");
    write_str(out, &table.id.schema);
    out.push_str(",\"table\":");
    write_str(out, &table.id.name);
    write_pg_detail(out, event);
}

fn write_message_source(out: &mut String, prefix: &str, event: &ChangeEvent) {
    write_common_source(out, prefix, event);
    out.push_str(",\"schema\":\"\",\"table\":\"\"");
    write_pg_detail(out, event);
}

#[cfg(test)]
mod tests;
