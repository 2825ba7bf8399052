//! Per-connector rewriting of change events between the source and the encoder.
//!
//! Debezium's value-handling modes that do not depend on a source's wire format live here,
//! so both sources, both phases (snapshot and stream) and every format honour them the same
//! way: `decimal_handling_mode` (`string`, `double`), `binary_handling_mode` (`base64`,
//! `base64-url-safe`, `hex`) and `time_precision_mode` (`connect`, and PostgreSQL's
//! `adaptive_time_microseconds`). Modes that need the source's own knowledge (interval
//! components, hstore pairs, unsigned integers, unknown types) are applied by the sources.
//!
//! With every mode at its default the transform is the identity and costs nothing per event.
//! Otherwise a table's rewritten schema is built once per schema version and shared, so the
//! encoders' per-table caches keep working on pointer equality.

use std::sync::Arc;

use base64::Engine;
use rustc_hash::FxHashMap;

use crate::config::{
    BinaryMode, ColumnPattern, ConnectorConfig, DecimalMode, SourceKind, TableSelector,
    TimePrecisionMode, TypesConfig,
};
use crate::event::{ChangeEvent, Column, ColumnKind, TableId, TableSchema, Text, Value};

/// How one column's values change.
#[derive(Debug, Clone, PartialEq)]
enum Rule {
    /// A decimal as its plain string.
    DecimalString,
    /// A decimal as a double.
    DecimalDouble,
    /// Bytes as text in this encoding.
    Binary(BinaryMode),
    /// An integer divided by 1000, rounding down (micro → milli units).
    Millis,
    /// An integer multiplied by 1000 (milli → micro units).
    Micros,
    /// Only the schema changes (the value's unit stays).
    Rename,
    /// Each element of an array by the inner rule.
    Each(Box<Rule>),
}

/// The rewriting of one connector's events.
pub struct Transform {
    decimal: DecimalMode,
    binary: BinaryMode,
    time: TimeRule,
    /// `[columns] exclude`.
    exclude: Vec<ColumnPattern>,
    /// `[columns]` masks, in the order hash, chars, truncate (the first that names a column
    /// applies).
    masks: Vec<(ColumnPattern, MaskRule)>,
    /// `key_columns`.
    keys: Vec<(TableSelector, Vec<String>)>,
    tables: FxHashMap<TableId, Shaped>,
}

/// A configured mask.
#[derive(Clone)]
enum MaskRule {
    /// Salted hash (Debezium's default hashing: the salt, then the value as Java serializes a
    /// `String`), hex, cut to the column's declared length.
    Hash {
        algorithm: &'static ring::digest::Algorithm,
        salt: Vec<u8>,
    },
    /// That many `*`.
    Chars(u32),
    /// The first n characters.
    Truncate(u32),
}

/// A mask as applied to one column.
#[derive(Clone)]
enum Mask {
    Hash {
        algorithm: &'static ring::digest::Algorithm,
        salt: Vec<u8>,
        cut: Option<usize>,
    },
    Fixed(Text),
    Truncate(usize),
}

/// What the time precision mode does beyond each source's default mapping.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TimeRule {
    /// Nothing.
    Keep,
    /// `time(0-3)` in microseconds too (PostgreSQL `adaptive_time_microseconds`).
    MicroTimes,
    /// Connect's Date, Time and Timestamp in milliseconds.
    Connect,
}

/// A table's schema as the source described it and as the transform rewrote it.
struct Shaped {
    source: Arc<TableSchema>,
    shaped: Arc<TableSchema>,
    /// Source indexes of the columns kept (`None`: all, in order).
    keep: Option<Vec<usize>>,
    /// Per kept column.
    rules: Vec<Option<Rule>>,
    /// Per kept column.
    masks: Vec<Option<Mask>>,
}

impl Transform {
    /// The transform a connector's `[types]` asks for.
    pub fn new(source: SourceKind, types: &TypesConfig) -> Self {
        let time = match (source, types.time_precision_mode) {
            (_, Some(TimePrecisionMode::Connect)) => TimeRule::Connect,
            (SourceKind::Postgres, Some(TimePrecisionMode::AdaptiveTimeMicroseconds)) => {
                TimeRule::MicroTimes
            }
            _ => TimeRule::Keep,
        };
        Transform {
            decimal: types.decimal_handling_mode,
            binary: types.binary_handling_mode,
            time,
            exclude: Vec::new(),
            masks: Vec::new(),
            keys: Vec::new(),
            tables: FxHashMap::default(),
        }
    }

    /// The transform a connector file asks for: `[types]`, `[columns]` and `key_columns`
    /// (patterns were checked when the file was read).
    pub fn for_connector(c: &ConnectorConfig) -> Self {
        let mut t = Transform::new(c.source, &c.types);
        let cols = &c.columns;
        t.exclude = cols
            .exclude
            .iter()
            .filter_map(|p| ColumnPattern::parse(p).ok())
            .collect();
        for (p, m) in &cols.mask_hash {
            let algorithm = match m.algorithm.as_str() {
                "SHA-1" => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
                "SHA-384" => &ring::digest::SHA384,
                "SHA-512" => &ring::digest::SHA512,
                _ => &ring::digest::SHA256,
            };
            if let Ok(p) = ColumnPattern::parse(p) {
                t.masks.push((
                    p,
                    MaskRule::Hash {
                        algorithm,
                        salt: m.salt.expose().as_bytes().to_vec(),
                    },
                ));
            }
        }
        for (p, n) in &cols.mask_with_chars {
            if let Ok(p) = ColumnPattern::parse(p) {
                t.masks.push((p, MaskRule::Chars(*n)));
            }
        }
        for (p, n) in &cols.truncate_to {
            if let Ok(p) = ColumnPattern::parse(p) {
                t.masks.push((p, MaskRule::Truncate(*n)));
            }
        }
        t.keys = c
            .key_columns
            .iter()
            .filter_map(|(table, cols)| Some((TableSelector::parse(table).ok()?, cols.clone())))
            .collect();
        t
    }

    /// Whether every mode is at its default (events pass unchanged).
    pub fn is_identity(&self) -> bool {
        self.decimal == DecimalMode::Precise
            && self.binary == BinaryMode::Bytes
            && self.time == TimeRule::Keep
            && self.exclude.is_empty()
            && self.masks.is_empty()
            && self.keys.is_empty()
    }

    /// Rewrites one event's schema and row images; an error (definite) when `key_columns`
    /// names a column the table does not have.
    pub fn apply(&mut self, mut event: ChangeEvent) -> Result<ChangeEvent, String> {
        if self.is_identity() {
            return Ok(event);
        }
        let Some(table) = event.table.take() else {
            return Ok(event);
        };
        let fresh = match self.tables.get(&table.id) {
            Some(s) => !Arc::ptr_eq(&s.source, &table),
            None => true,
        };
        if fresh {
            let shaped = self.shape(&table)?;
            self.tables.insert(table.id.clone(), shaped);
        }
        let shaped = &self.tables[&table.id];
        for row in [event.before.as_mut(), event.after.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(keep) = &shaped.keep {
                let mut source = std::mem::take(row);
                *row = keep
                    .iter()
                    .map(|&i| std::mem::replace(&mut source[i], Value::Null))
                    .collect();
            }
            for ((value, rule), mask) in row.iter_mut().zip(&shaped.rules).zip(&shaped.masks) {
                if let Some(rule) = rule {
                    convert(rule, value);
                }
                if let Some(mask) = mask {
                    apply_mask(mask, value);
                }
            }
        }
        event.table = Some(shaped.shaped.clone());
        Ok(event)
    }

    fn shape(&self, table: &Arc<TableSchema>) -> Result<Shaped, String> {
        let id = &table.id;
        let kept: Vec<usize> = (0..table.columns.len())
            .filter(|&i| {
                let c = &table.columns[i].name;
                !self
                    .exclude
                    .iter()
                    .any(|p| p.matches(&id.schema, &id.name, c))
            })
            .collect();
        let mut columns = Vec::with_capacity(kept.len());
        let mut rules = Vec::with_capacity(kept.len());
        let mut masks = Vec::with_capacity(kept.len());
        for &i in &kept {
            let c = &table.columns[i];
            let (kind, rule, default) = match self.rule(&c.kind) {
                Some((kind, rule)) => {
                    let default = c.default.clone().map(|mut d| {
                        convert(&rule, &mut d);
                        d
                    });
                    (kind, Some(rule), default)
                }
                None => (c.kind.clone(), None, c.default.clone()),
            };
            // Masks apply to text columns, as Debezium's apply to character types.
            let mask = (kind == ColumnKind::Text)
                .then(|| {
                    self.masks
                        .iter()
                        .find(|(p, _)| p.matches(&id.schema, &id.name, &c.name))
                })
                .flatten()
                .map(|(_, m)| match m {
                    MaskRule::Hash { algorithm, salt } => Mask::Hash {
                        algorithm,
                        salt: salt.clone(),
                        cut: c.length.filter(|&l| l > 0).map(|l| l as usize),
                    },
                    MaskRule::Chars(n) => Mask::Fixed("*".repeat(*n as usize).into()),
                    MaskRule::Truncate(n) => Mask::Truncate(*n as usize),
                });
            let default = match (&mask, default) {
                (Some(m), Some(mut d)) => {
                    apply_mask(m, &mut d);
                    Some(d)
                }
                (_, d) => d,
            };
            columns.push(Column {
                name: c.name.clone(),
                kind,
                nullable: c.nullable,
                default,
                length: c.length,
            });
            rules.push(rule);
            masks.push(mask);
        }
        let position = |name: &str| columns.iter().position(|c: &Column| c.name == name);
        let key = match self.keys.iter().find(|(s, _)| s.matches(&id.schema, &id.name)) {
            Some((_, names)) => names
                .iter()
                .map(|n| {
                    position(n).ok_or_else(|| {
                        format!(
                            "key_columns names {n} for table {id}, which has no such column (or it is excluded in [columns]); fix key_columns"
                        )
                    })
                })
                .collect::<Result<Vec<usize>, String>>()?,
            None => table
                .key
                .iter()
                .filter_map(|&k| kept.iter().position(|&i| i == k))
                .collect(),
        };
        let all_kept = kept.len() == table.columns.len();
        Ok(Shaped {
            source: table.clone(),
            shaped: Arc::new(TableSchema {
                id: table.id.clone(),
                columns,
                key,
            }),
            keep: (!all_kept).then_some(kept),
            rules,
            masks,
        })
    }

    /// The new kind of a column and how its values change, if they do.
    fn rule(&self, kind: &ColumnKind) -> Option<(ColumnKind, Rule)> {
        let connect = self.time == TimeRule::Connect;
        match kind {
            ColumnKind::Decimal { .. } | ColumnKind::VariableDecimal => match self.decimal {
                DecimalMode::Precise => None,
                DecimalMode::String => Some((ColumnKind::Text, Rule::DecimalString)),
                DecimalMode::Double => Some((ColumnKind::Float64, Rule::DecimalDouble)),
            },
            ColumnKind::Bytes if self.binary != BinaryMode::Bytes => {
                Some((ColumnKind::Text, Rule::Binary(self.binary)))
            }
            ColumnKind::Date if connect => Some((ColumnKind::ConnectDate, Rule::Rename)),
            ColumnKind::TimeMillis if connect => Some((ColumnKind::ConnectTime, Rule::Rename)),
            ColumnKind::TimeMicros if connect => Some((ColumnKind::ConnectTime, Rule::Millis)),
            ColumnKind::TimestampMillis if connect => {
                Some((ColumnKind::ConnectTimestamp, Rule::Rename))
            }
            ColumnKind::TimestampMicros if connect => {
                Some((ColumnKind::ConnectTimestamp, Rule::Millis))
            }
            ColumnKind::TimeMillis if self.time == TimeRule::MicroTimes => {
                Some((ColumnKind::TimeMicros, Rule::Micros))
            }
            ColumnKind::Array(elem) => self.rule(elem).map(|(kind, rule)| {
                (
                    ColumnKind::Array(Box::new(kind)),
                    Rule::Each(Box::new(rule)),
                )
            }),
            _ => None,
        }
    }
}

/// Debezium's sentinels for PostgreSQL's ±infinity timestamps keep their value in any unit.
fn is_infinity_sentinel(v: i64) -> bool {
    v == crate::calendar::POSITIVE_INFINITY_TS || v == crate::calendar::NEGATIVE_INFINITY_TS
}

/// Java's serialization of a `String` (`ObjectOutputStream.writeObject`): the stream header,
/// then `TC_STRING` with a 16-bit length (or `TC_LONGSTRING` with a 64-bit one) and the
/// modified UTF-8 bytes (NUL as `C0 80`, characters beyond the BMP as two 3-byte surrogates).
/// Debezium hashes this, after the salt.
fn java_serialized_string(s: &str) -> Vec<u8> {
    let mut utf = Vec::with_capacity(s.len());
    for ch in s.chars() {
        let mut units = [0u16; 2];
        for &u in ch.encode_utf16(&mut units).iter() {
            match u {
                0x0001..=0x007f => utf.push(u as u8),
                0x0000 | 0x0080..=0x07ff => {
                    utf.push(0xc0 | (u >> 6) as u8);
                    utf.push(0x80 | (u & 0x3f) as u8);
                }
                _ => {
                    utf.push(0xe0 | (u >> 12) as u8);
                    utf.push(0x80 | ((u >> 6) & 0x3f) as u8);
                    utf.push(0x80 | (u & 0x3f) as u8);
                }
            }
        }
    }
    let mut out = vec![0xac, 0xed, 0x00, 0x05];
    if utf.len() <= 0xffff {
        out.push(0x74);
        out.extend_from_slice(&(utf.len() as u16).to_be_bytes());
    } else {
        out.push(0x7c);
        out.extend_from_slice(&(utf.len() as u64).to_be_bytes());
    }
    out.extend_from_slice(&utf);
    out
}

fn apply_mask(mask: &Mask, value: &mut Value) {
    let Value::Text(text) = &*value else {
        return;
    };
    let masked: Text = match mask {
        Mask::Fixed(t) => t.clone(),
        Mask::Truncate(n) => match text.char_indices().nth(*n) {
            Some((at, _)) => text[..at].to_string().into(),
            None => return,
        },
        Mask::Hash {
            algorithm,
            salt,
            cut,
        } => {
            let mut ctx = ring::digest::Context::new(algorithm);
            ctx.update(salt);
            ctx.update(&java_serialized_string(text));
            let mut hex = String::new();
            for b in ctx.finish().as_ref() {
                use std::fmt::Write;
                let _ = write!(hex, "{b:02x}");
            }
            if let Some(n) = cut {
                hex.truncate(*n);
            }
            hex.into()
        }
    };
    *value = Value::Text(masked);
}

fn convert(rule: &Rule, value: &mut Value) {
    match (rule, &*value) {
        (_, Value::Null | Value::Unavailable) => {}
        (Rule::DecimalString, Value::Decimal(d)) => *value = Value::text(d.to_plain_string()),
        (Rule::DecimalDouble, Value::Decimal(d)) => {
            *value = Value::Float(d.to_plain_string().parse().unwrap_or(f64::NAN))
        }
        (Rule::Binary(mode), Value::Bytes(b)) => {
            let text = match mode {
                BinaryMode::Base64 => base64::engine::general_purpose::STANDARD.encode(b),
                BinaryMode::Base64UrlSafe => base64::engine::general_purpose::URL_SAFE.encode(b),
                BinaryMode::Hex => {
                    use std::fmt::Write;
                    let mut s = String::with_capacity(b.len() * 2);
                    for byte in b {
                        let _ = write!(s, "{byte:02x}");
                    }
                    s
                }
                BinaryMode::Bytes => return,
            };
            *value = Value::text(text);
        }
        (Rule::Millis, Value::Int(v)) if !is_infinity_sentinel(*v) => {
            *value = Value::Int(v.div_euclid(1000))
        }
        (Rule::Micros, Value::Int(v)) => *value = Value::Int(v.saturating_mul(1000)),
        (Rule::Each(inner), Value::Array(_)) => {
            if let Value::Array(items) = value {
                for item in items {
                    convert(inner, item);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Decimal;

    fn table(columns: Vec<(ColumnKind, Option<Value>)>) -> Arc<TableSchema> {
        Arc::new(TableSchema {
            id: TableId {
                schema: "s".into(),
                name: "t".into(),
            },
            columns: columns
                .into_iter()
                .enumerate()
                .map(|(i, (kind, default))| Column {
                    name: format!("c{i}"),
                    kind,
                    nullable: true,
                    default,
                    length: None,
                })
                .collect(),
            key: vec![],
        })
    }

    fn types(edit: impl FnOnce(&mut TypesConfig)) -> TypesConfig {
        let mut t = TypesConfig::default();
        edit(&mut t);
        t
    }

    fn shaped(t: &Transform, table: &Arc<TableSchema>, values: Vec<Value>) -> Vec<Value> {
        let s = t.shape(table).unwrap();
        values
            .into_iter()
            .zip(&s.rules)
            .map(|(mut v, r)| {
                if let Some(r) = r {
                    convert(r, &mut v);
                }
                v
            })
            .collect()
    }

    #[test]
    fn defaults_are_the_identity() {
        let t = Transform::new(SourceKind::Postgres, &TypesConfig::default());
        assert!(t.is_identity());
        let t = Transform::new(
            SourceKind::Mysql,
            &types(|t| t.time_precision_mode = Some(TimePrecisionMode::AdaptiveTimeMicroseconds)),
        );
        assert!(t.is_identity());
    }

    #[test]
    fn decimals_as_strings_or_doubles_values_and_defaults() {
        let dec = ColumnKind::Decimal {
            precision: Some(5),
            scale: 2,
        };
        let v = Value::Decimal(Decimal::from_digits(b"150", true, 2));
        let tbl = table(vec![
            (dec.clone(), Some(v.clone())),
            (ColumnKind::VariableDecimal, None),
        ]);
        let t = Transform::new(
            SourceKind::Postgres,
            &types(|t| t.decimal_handling_mode = DecimalMode::String),
        );
        let s = t.shape(&tbl).unwrap();
        assert_eq!(s.shaped.columns[0].kind, ColumnKind::Text);
        assert_eq!(s.shaped.columns[0].default, Some(Value::text("-1.50")));
        assert_eq!(s.shaped.columns[1].kind, ColumnKind::Text);
        assert_eq!(
            shaped(&t, &tbl, vec![v.clone(), Value::Null]),
            vec![Value::text("-1.50"), Value::Null]
        );
        let t = Transform::new(
            SourceKind::Mysql,
            &types(|t| t.decimal_handling_mode = DecimalMode::Double),
        );
        assert_eq!(
            t.shape(&tbl).unwrap().shaped.columns[0].kind,
            ColumnKind::Float64
        );
        assert_eq!(shaped(&t, &tbl, vec![v])[0], Value::Float(-1.5));
    }

    #[test]
    fn binary_modes_encode_as_debezium_does() {
        let tbl = table(vec![
            (ColumnKind::Bytes, None),
            (ColumnKind::Array(Box::new(ColumnKind::Bytes)), None),
        ]);
        let bytes = Value::Bytes(vec![0xfb, 0xff, 0x01]);
        let want = [
            (BinaryMode::Base64, "+/8B"),
            (BinaryMode::Base64UrlSafe, "-_8B"),
            (BinaryMode::Hex, "fbff01"),
        ];
        for (mode, text) in want {
            let t = Transform::new(
                SourceKind::Postgres,
                &types(|t| t.binary_handling_mode = mode),
            );
            let out = shaped(
                &t,
                &tbl,
                vec![
                    bytes.clone(),
                    Value::Array(vec![bytes.clone(), Value::Null]),
                ],
            );
            assert_eq!(out[0], Value::text(text), "{mode:?}");
            assert_eq!(
                out[1],
                Value::Array(vec![Value::text(text), Value::Null]),
                "{mode:?}"
            );
        }
    }

    #[test]
    fn connect_time_precision_is_milliseconds() {
        let tbl = table(vec![
            (ColumnKind::Date, None),
            (ColumnKind::TimeMicros, None),
            (ColumnKind::TimestampMicros, None),
            (ColumnKind::TimestampMillis, None),
            (ColumnKind::ZonedTimestamp, None),
        ]);
        let t = Transform::new(
            SourceKind::Mysql,
            &types(|t| t.time_precision_mode = Some(TimePrecisionMode::Connect)),
        );
        let s = t.shape(&tbl).unwrap();
        let kinds: Vec<&ColumnKind> = s.shaped.columns.iter().map(|c| &c.kind).collect();
        assert_eq!(
            kinds,
            [
                &ColumnKind::ConnectDate,
                &ColumnKind::ConnectTime,
                &ColumnKind::ConnectTimestamp,
                &ColumnKind::ConnectTimestamp,
                &ColumnKind::ZonedTimestamp
            ]
        );
        let out = shaped(
            &t,
            &tbl,
            vec![
                Value::Int(19000),
                Value::Int(3_723_456_789),
                Value::Int(-1_500),
                Value::Int(1_000),
                Value::text("2024-01-01T00:00:00Z"),
            ],
        );
        assert_eq!(
            out,
            vec![
                Value::Int(19000),
                Value::Int(3_723_456),
                Value::Int(-2),
                Value::Int(1_000),
                Value::text("2024-01-01T00:00:00Z")
            ]
        );
    }

    #[test]
    fn postgres_adaptive_time_microseconds_widens_millisecond_times() {
        let tbl = table(vec![(ColumnKind::TimeMillis, Some(Value::Int(5)))]);
        let t = Transform::new(
            SourceKind::Postgres,
            &types(|t| t.time_precision_mode = Some(TimePrecisionMode::AdaptiveTimeMicroseconds)),
        );
        let s = t.shape(&tbl).unwrap();
        assert_eq!(s.shaped.columns[0].kind, ColumnKind::TimeMicros);
        assert_eq!(s.shaped.columns[0].default, Some(Value::Int(5000)));
        assert_eq!(
            shaped(&t, &tbl, vec![Value::Int(7)]),
            vec![Value::Int(7000)]
        );
    }

    fn connector(extra: &str) -> ConnectorConfig {
        let text = format!(
            "name = \"c\"\nsource = \"postgres\"\ntopic_prefix = \"p\"\n{extra}\n[postgres]\nurl = \"postgres://u@localhost/db\"\nslot = \"s\"\npublication = \"p\"\ntables = [\"s.t\"]\n"
        );
        ConnectorConfig::parse(std::path::Path::new("c.toml"), &text).unwrap()
    }

    #[test]
    fn hash_masks_match_debeziums_default_hashing() {
        // Debezium's own test vectors (MaskStrings, HashingByteArrayStrategy.V1, salt "salt").
        let mask = |v: &str, algorithm, cut| {
            let mut value = Value::text(v);
            apply_mask(
                &Mask::Hash {
                    algorithm,
                    salt: b"salt".to_vec(),
                    cut,
                },
                &mut value,
            );
            value
        };
        assert_eq!(
            mask("hello", &ring::digest::SHA256, None),
            Value::text("af5843a0f0e728ab0332c8888b6e1190bfb79e584f0d40538de8f10df6ef29c6")
        );
        assert_eq!(
            mask("world", &ring::digest::SHA256, None),
            Value::text("4588e1f2dcdc7fefc1515d3acd5acb9033478eace68286f383c337b9ff4464a3")
        );
        // Cut to a varchar(10)'s length.
        assert_eq!(
            mask("hello", &ring::digest::SHA256, Some(10)),
            Value::text("af5843a0f0")
        );
        assert_eq!(
            java_serialized_string("\0é"),
            [0xac, 0xed, 0, 5, 0x74, 0, 4, 0xc0, 0x80, 0xc3, 0xa9]
        );
    }

    #[test]
    fn columns_excluded_masked_truncated_and_key_columns_chosen() {
        let c = connector(
            "key_columns = { \"s.t\" = [\"note\"] }\n[columns]\nexclude = [\"s.t.secret\"]\nmask_with_chars = { \"re:s\\\\.t\\\\.card\" = 4 }\ntruncate_to = { \"s.t.note\" = 3 }\nmask_hash = { \"s.t.email\" = { algorithm = \"SHA-256\", salt = \"salt\" } }",
        );
        let mut t = Transform::for_connector(&c);
        assert!(!t.is_identity());
        let tbl = Arc::new(TableSchema {
            id: TableId {
                schema: "s".into(),
                name: "t".into(),
            },
            columns: ["id", "secret", "card", "note", "email"]
                .iter()
                .map(|n| Column {
                    name: n.to_string(),
                    kind: if *n == "id" {
                        ColumnKind::Int32
                    } else {
                        ColumnKind::Text
                    },
                    nullable: true,
                    default: None,
                    length: None,
                })
                .collect(),
            key: vec![0],
        });
        let s = t.shape(&tbl).unwrap();
        let names: Vec<&str> = s.shaped.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "card", "note", "email"]);
        assert_eq!(s.shaped.key, vec![2], "the key is the named column");
        let event = ChangeEvent {
            op: crate::event::Op::Create,
            table: Some(tbl.clone()),
            before: None,
            after: Some(vec![
                Value::Int(1),
                Value::text("pw"),
                Value::text("4111111111111111"),
                Value::text("Žluťoučký"),
                Value::text("hello"),
            ]),
            source: crate::event::SourceMeta {
                ts_us: 0,
                snapshot: crate::event::SnapshotMarker::False,
                db: Arc::from("db"),
                detail: crate::event::SourceDetail::Postgres {
                    tx_id: None,
                    lsn: None,
                    last_commit_lsn: None,
                    origin: None,
                    origin_lsn: None,
                },
            },
            message: None,
            transaction: None,
            position: crate::position::SourcePosition::Postgres(crate::position::PgPosition {
                incremental: None,
                resume_lsn: 0,
                partial: None,
                snapshot: crate::position::SnapshotState::Done,
                slot: None,
                last_tx: None,
            }),
        };
        let out = t.apply(event.clone()).unwrap();
        assert_eq!(
            out.after.unwrap(),
            vec![
                Value::Int(1),
                Value::text("****"),
                Value::text("Žlu"),
                Value::text("af5843a0f0e728ab0332c8888b6e1190bfb79e584f0d40538de8f10df6ef29c6"),
            ]
        );
        // A key column the table lacks is an error naming it.
        let c = connector("key_columns = { \"s.t\" = [\"nope\"] }");
        let err = Transform::for_connector(&c).apply(event).unwrap_err();
        assert!(err.contains("nope") && err.contains("s.t"), "{err}");
    }
}
