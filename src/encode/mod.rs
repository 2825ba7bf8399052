//! `ChangeEvent` → records (topic, key bytes, value bytes, headers).
//!
//! [`Encoder`] decides which records a change becomes (Debezium's rules: a delete is followed
//! by a tombstone, a key change becomes delete + tombstone + create with key headers) and
//! asks the configured formats for the bytes. Formats cache per table-schema version
//! everything that does not depend on the row (topic, serialized schemas, registry ids), so
//! the hot path only writes the payload.

mod avro;
mod avro_binary;
mod avro_schema;
mod flatten;
mod json;
mod json_value;
mod meta;
mod outbox;
mod registry;
mod route;
mod schema;

pub use avro::AvroEncoder;
pub use flatten::{ChangedFields, Flatten};
pub use json::JsonEncoder;
pub use outbox::Outbox;
pub use registry::{RegistryClient, RegistryError};
pub use route::Router;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{DeleteHandling, FormatConfig, ValueFormat};
use crate::event::{ChangeEvent, Op, TableSchema, Value};

/// One record for the sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Topic name.
    pub topic: Arc<str>,
    /// Key bytes (`None`: null key).
    pub key: Option<Vec<u8>>,
    /// Value bytes (`None`: tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<(Cow<'static, str>, Vec<u8>)>,
}

/// An encoding failure.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// A schema could not be built or registered in a way retrying will not fix.
    #[error("{0}")]
    Definite(String),
    /// The schema registry could not be reached (retried with backoff).
    #[error("{0}")]
    Transient(String),
}

impl crate::failure::Classify for EncodeError {
    fn severity(&self) -> crate::failure::Severity {
        match self {
            EncodeError::Transient(_) => crate::failure::Severity::Transient,
            EncodeError::Definite(_) => crate::failure::Severity::Definite,
        }
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}

/// Topic-name segment: characters Kafka refuses in topic names become `_`.
pub fn topic_segment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What one planned record carries.
enum Part<'a> {
    Envelope {
        op: Op,
        before: Option<&'a [Value]>,
        after: Option<&'a [Value]>,
    },
    Tombstone,
    /// The row state (`[unwrap]`); `deleted` marks a rewritten delete.
    Flat {
        op: Op,
        row: &'a [Value],
        deleted: bool,
    },
}

/// One record to produce for a change.
struct Planned<'a> {
    key_row: Option<&'a [Value]>,
    part: Part<'a>,
    /// A header carrying the key of another row (`__debezium.newkey` / `oldkey`).
    header: Option<(&'static str, &'a [Value])>,
}

/// Whether an update changed the key: the old image holds key values that differ.
fn key_changed(table: &TableSchema, before: &[Value], after: &[Value]) -> bool {
    table
        .key
        .iter()
        .any(|i| match (before.get(*i), after.get(*i)) {
            (Some(Value::Unavailable), _) | (Some(Value::Null), _) => false,
            (Some(b), Some(a)) => a != b,
            _ => false,
        })
}

/// The records a change becomes, in order.
fn plan<'a>(event: &'a ChangeEvent, table: &TableSchema, tombstones: bool) -> Vec<Planned<'a>> {
    let before = event.before.as_deref();
    let after = event.after.as_deref();
    let envelope = |op, before, after| Part::Envelope { op, before, after };
    match event.op {
        Op::Create | Op::Read => vec![Planned {
            key_row: after,
            part: envelope(event.op, None, after),
            header: None,
        }],
        Op::Update => match (before, after) {
            (Some(b), Some(a)) if !table.key.is_empty() && key_changed(table, b, a) => {
                let mut out = vec![Planned {
                    key_row: Some(b),
                    part: envelope(Op::Delete, Some(b), None),
                    header: Some(("__debezium.newkey", a)),
                }];
                if tombstones {
                    out.push(Planned {
                        key_row: Some(b),
                        part: Part::Tombstone,
                        header: None,
                    });
                }
                out.push(Planned {
                    key_row: Some(a),
                    part: envelope(Op::Create, None, Some(a)),
                    header: Some(("__debezium.oldkey", b)),
                });
                out
            }
            _ => vec![Planned {
                key_row: after,
                part: envelope(Op::Update, before, after),
                header: None,
            }],
        },
        Op::Delete => {
            let mut out = vec![Planned {
                key_row: before,
                part: envelope(Op::Delete, before, None),
                header: None,
            }];
            if tombstones && !table.key.is_empty() {
                out.push(Planned {
                    key_row: before,
                    part: Part::Tombstone,
                    header: None,
                });
            }
            out
        }
        Op::Truncate => vec![Planned {
            key_row: None,
            part: envelope(Op::Truncate, None, None),
            header: None,
        }],
        Op::Message => Vec::new(),
    }
}

/// The records of a change under `[unwrap]` (see [`flatten`]'s module doc).
fn flatten_plan(planned: Vec<Planned<'_>>, mode: DeleteHandling) -> Vec<Planned<'_>> {
    let mut out = Vec::with_capacity(planned.len());
    for p in planned {
        let part = match p.part {
            Part::Envelope {
                op: Op::Truncate, ..
            } => continue,
            Part::Envelope {
                op: Op::Delete,
                before,
                ..
            } => match (mode, before) {
                (DeleteHandling::Rewrite | DeleteHandling::RewriteWithTombstone, Some(row)) => {
                    Part::Flat {
                        op: Op::Delete,
                        row,
                        deleted: true,
                    }
                }
                (DeleteHandling::DeleteToTombstone, _) => Part::Tombstone,
                _ => continue,
            },
            Part::Envelope {
                op,
                after: Some(row),
                ..
            } => Part::Flat {
                op,
                row,
                deleted: false,
            },
            Part::Envelope { .. } => continue,
            Part::Tombstone => match mode {
                DeleteHandling::Tombstone | DeleteHandling::RewriteWithTombstone => Part::Tombstone,
                _ => continue,
            },
            Part::Flat { .. } => p.part,
        };
        out.push(Planned { part, ..p });
    }
    out
}

/// Encodes a connector's change events in its configured format.
pub struct Encoder {
    prefix: String,
    json_schemas: bool,
    /// The clock reading of the current batch (`None`: read per event).
    batch_ns: Option<i64>,
    json: JsonEncoder,
    avro: Option<AvroEncoder>,
    key_avro: bool,
    value_avro: bool,
    tombstones: bool,
    flatten: Option<Arc<Flatten>>,
    outbox: Option<Arc<Outbox>>,
    changed: Option<Arc<flatten::ChangedFields>>,
    /// Publish DDL on the schema-change topic (`include_schema_changes`).
    schema_changes: bool,
    /// Where notifications go (`[notifications] topic`); none: not published.
    notifications: Option<Arc<str>>,
}

impl Encoder {
    /// Debezium JSON for keys and values.
    pub fn json(prefix: &str, with_schema: bool, tombstones: bool) -> Self {
        Encoder {
            prefix: prefix.to_string(),
            json_schemas: with_schema,
            batch_ns: None,
            json: JsonEncoder::new(prefix, with_schema),
            avro: None,
            key_avro: false,
            value_avro: false,
            tombstones,
            flatten: None,
            outbox: None,
            changed: None,
            schema_changes: true,
            notifications: None,
        }
    }

    /// Publishes notifications on `topic` (none: not published).
    pub fn with_notifications(mut self, topic: Option<String>) -> Self {
        self.notifications = topic.map(Arc::from);
        self
    }

    /// A notification record, when notifications are published.
    pub fn notification(&self, n: &crate::event::Notification) -> Vec<Record> {
        match &self.notifications {
            Some(topic) => vec![meta::notification(topic, self.json_schemas, n)],
            None => Vec::new(),
        }
    }

    /// Whether DDL is published on the schema-change topic (on unless turned off).
    pub fn with_schema_changes(mut self, on: bool) -> Self {
        self.schema_changes = on;
        self
    }

    /// Adds headers naming an update's changed and unchanged fields (`[changed_fields]`).
    pub fn with_changed_fields(mut self, changed: Option<Arc<ChangedFields>>) -> Self {
        self.changed = changed;
        self
    }

    /// The columns of an update (not a key change) split into changed and unchanged, when
    /// `[changed_fields]` asks for it.
    fn split(&self, event: &ChangeEvent, table: &TableSchema) -> Option<(Vec<usize>, Vec<usize>)> {
        self.changed.as_ref()?;
        if event.op != Op::Update {
            return None;
        }
        let (b, a) = (event.before.as_deref()?, event.after.as_deref()?);
        if !table.key.is_empty() && key_changed(table, b, a) {
            return None;
        }
        flatten::diff(Some(b), Some(a))
    }

    /// The columns left out of this update's flattened value (`drop_fields_header_name`).
    fn dropped(&self, table: &TableSchema, split: Option<&(Vec<usize>, Vec<usize>)>) -> Vec<usize> {
        match (&self.flatten, split) {
            (Some(f), Some(split)) => flatten::dropped(f, self.changed.as_deref(), table, split),
            _ => Vec::new(),
        }
    }

    /// Turns rows inserted into outbox tables into events (`[outbox]`).
    pub fn with_outbox(mut self, outbox: Option<Arc<Outbox>>) -> Self {
        self.outbox = outbox;
        self
    }

    /// Sends tables' records to the topics `[[route]]` names (`None`: default topics).
    pub fn with_router(mut self, router: Option<Arc<Router>>) -> Self {
        self.json.set_router(router);
        self
    }

    /// Publishes row states instead of envelopes (`[unwrap]`; `None`: envelopes).
    pub fn with_flatten(mut self, flatten: Option<Arc<Flatten>>) -> Self {
        self.json.set_flatten(flatten.clone());
        if let Some(avro) = self.avro.as_mut() {
            avro.set_flatten(flatten.clone());
        }
        self.flatten = flatten;
        self
    }

    /// The encoder a connector's `[format]` describes.
    pub fn from_config(
        prefix: &str,
        format: &FormatConfig,
        tombstones: bool,
    ) -> Result<Self, EncodeError> {
        let mut enc = Encoder::json(prefix, format.json_schemas(), tombstones);
        if format.uses_avro() {
            let registry = RegistryClient::from_format(format).map_err(EncodeError::Definite)?;
            enc.avro = Some(AvroEncoder::new(prefix, registry, format.subject_strategy));
            enc.key_avro = format.key_format() == ValueFormat::Avro;
            enc.value_avro = format.value == ValueFormat::Avro;
        }
        Ok(enc)
    }

    /// Encodes one event into its records (one, or more for deletes and key changes),
    /// registering schemas first when the table's shape is new.
    pub async fn encode(&mut self, event: &ChangeEvent) -> Result<Vec<Record>, EncodeError> {
        if let (Some(outbox), Some(table)) = (self.outbox.clone(), event.table.as_ref()) {
            if let Some(rule) = outbox.rule(&table.id) {
                return self.encode_outbox(rule, event, table).await;
            }
        }
        if let (Some(avro), Some(table)) = (self.avro.as_mut(), event.table.as_ref()) {
            self.json.set_connector(event.source.detail.connector());
            let topic = self.json.topic(table);
            let routed = self.json.routed(table);
            avro.prepare(
                table,
                &topic,
                event.source.detail.connector(),
                routed.as_deref(),
            )
            .await?;
            if self.value_avro {
                let split = self.split(event, table);
                let dropped = self.dropped(table, split.as_ref());
                if !dropped.is_empty() {
                    if let Some(avro) = self.avro.as_mut() {
                        avro.prepare_variant(table, &topic, &dropped).await?;
                    }
                }
            }
        }
        self.encode_now(event)
    }

    /// The record of a row inserted into an outbox table; nothing for other operations.
    async fn encode_outbox(
        &mut self,
        rule: &outbox::Rule,
        event: &ChangeEvent,
        table: &Arc<TableSchema>,
    ) -> Result<Vec<Record>, EncodeError> {
        let row = match (event.op, event.after.as_deref()) {
            (Op::Create | Op::Read, Some(row)) => row,
            (Op::Update, _) => {
                tracing::warn!(table = %table.id, "an update of an outbox table is ignored (outbox rows are inserted)");
                return Ok(Vec::new());
            }
            _ => return Ok(Vec::new()),
        };
        let ev = rule.event(table, row)?;
        let (key, value) = match &mut self.avro {
            Some(avro) if self.value_avro || self.key_avro => {
                avro.prepare_outbox(table, &ev).await?;
                let (k, v) = avro.outbox_record(&ev)?;
                (
                    if self.key_avro {
                        k
                    } else {
                        outbox::json_key(&ev, self.json_schemas)
                    },
                    if self.value_avro {
                        v
                    } else {
                        outbox::json_value(&ev, self.json_schemas, rule.config.expand_json_payload)
                    },
                )
            }
            _ => (
                outbox::json_key(&ev, self.json_schemas),
                outbox::json_value(&ev, self.json_schemas, rule.config.expand_json_payload),
            ),
        };
        Ok(vec![Record {
            topic: Arc::from(ev.topic.as_str()),
            key: Some(key),
            value: Some(value),
            headers: ev
                .headers
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k), v.into_bytes()))
                .collect(),
        }])
    }

    /// Reads the clock once for the batch of events that follows: their envelopes' `ts_ms`
    /// (when Sluice processed them) is the batch's time.
    pub fn set_batch_time(&mut self) {
        self.batch_ns = Some(now_ns());
    }

    /// Encodes with everything already prepared (no I/O).
    pub fn encode_now(&mut self, event: &ChangeEvent) -> Result<Vec<Record>, EncodeError> {
        let now_ns = self.batch_ns.unwrap_or_else(now_ns);
        if event.op == Op::Message {
            return Ok(self.json.message(event, now_ns).into_iter().collect());
        }
        self.json.set_connector(event.source.detail.connector());
        let Some(table) = &event.table else {
            return Ok(Vec::new());
        };
        let topic = self.json.topic(table);
        let mut planned = plan(event, table, self.tombstones);
        let flatten = self.flatten.clone();
        let mut source = None;
        if let Some(f) = &flatten {
            planned = flatten_plan(planned, f.mode);
            if f.needs_block() && !planned.is_empty() {
                source = Some(self.json.source_block(event, table));
            }
        }
        let split = self.split(event, table);
        let dropped = self.dropped(table, split.as_ref());
        let changed_headers = match (&self.changed, &split) {
            (Some(cf), Some(split)) => flatten::changed_headers(cf, table, split),
            _ => Vec::new(),
        };
        let mut out = Vec::with_capacity(planned.len());
        for p in planned {
            let is_update = matches!(
                p.part,
                Part::Envelope { op: Op::Update, .. } | Part::Flat { op: Op::Update, .. }
            );
            let key = match p.key_row {
                Some(row) => self.key(table, row)?,
                None => None,
            };
            let mut meta_headers = Vec::new();
            let value = match p.part {
                Part::Envelope { op, before, after } => Some(match &self.avro {
                    Some(avro) if self.value_avro => {
                        avro.envelope(&self.prefix, event, table, op, before, after, now_ns)?
                    }
                    _ => self.json.envelope(event, table, op, before, after, now_ns),
                }),
                Part::Tombstone => None,
                Part::Flat { op, row, deleted } => {
                    let f = flatten.as_deref().expect("flattening");
                    let null = serde_json::Value::Null;
                    let block = source.as_ref().unwrap_or(&null);
                    let value = |m: &crate::config::MetaField| {
                        flatten::meta_value(m, block, (&self.prefix, event, table), op, now_ns)
                    };
                    let meta: Vec<serde_json::Value> = f.fields.iter().map(value).collect();
                    meta_headers = f
                        .headers
                        .iter()
                        .filter_map(|m| {
                            Some((
                                Cow::Owned(m.name.clone()),
                                flatten::header_bytes(&value(m))?,
                            ))
                        })
                        .collect();
                    let dropped: &[usize] = if op == Op::Update { &dropped } else { &[] };
                    Some(match &self.avro {
                        Some(avro)
                            if self.value_avro
                                && !dropped.is_empty()
                                && avro.has_variant(table, dropped) =>
                        {
                            avro.flat_without(table, row, &meta, deleted, dropped)?
                        }
                        Some(avro) if self.value_avro => avro.flat(table, row, &meta, deleted)?,
                        _ if !dropped.is_empty() => {
                            self.json.flat_without(table, row, &meta, deleted, dropped)
                        }
                        _ => self.json.flat(table, row, &meta, deleted),
                    })
                }
            };
            let mut headers = Vec::new();
            if let Some((name, row)) = p.header {
                if let Some(k) = self.key(table, row)? {
                    headers.push((Cow::Borrowed(name), k));
                }
            }
            headers.append(&mut meta_headers);
            if is_update {
                headers.extend(changed_headers.iter().cloned());
            }
            out.push(Record {
                topic: topic.clone(),
                key,
                value,
                headers,
            });
        }
        Ok(out)
    }

    /// The heartbeat record (`__debezium-heartbeat.<prefix>`).
    pub fn heartbeat(&self, ts_ms: i64) -> Vec<Record> {
        vec![meta::heartbeat(&self.prefix, self.json_schemas, ts_ms)]
    }

    /// A schema-change record (`<prefix>`), for DDL read from a MySQL / MariaDB binlog.
    pub fn schema_change(&self, change: &crate::event::SchemaChange) -> Vec<Record> {
        if !self.schema_changes {
            return Vec::new();
        }
        vec![meta::schema_change(&self.prefix, self.json_schemas, change)]
    }

    /// A transaction boundary record (`<prefix>.transaction`).
    pub fn transaction(&self, tx: &crate::event::TxMeta) -> Vec<Record> {
        vec![meta::transaction(&self.prefix, self.json_schemas, tx)]
    }

    fn key(
        &mut self,
        table: &Arc<TableSchema>,
        row: &[Value],
    ) -> Result<Option<Vec<u8>>, EncodeError> {
        match &self.avro {
            Some(avro) if self.key_avro => avro.key(table, row),
            _ => Ok(self.json.key(table, row)),
        }
    }
}
