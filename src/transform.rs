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

use crate::config::{BinaryMode, DecimalMode, SourceKind, TimePrecisionMode, TypesConfig};
use crate::event::{ChangeEvent, Column, ColumnKind, TableId, TableSchema, Value};

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
    tables: FxHashMap<TableId, Shaped>,
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
    rules: Vec<Option<Rule>>,
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
            tables: FxHashMap::default(),
        }
    }

    /// Whether every mode is at its default (events pass unchanged).
    pub fn is_identity(&self) -> bool {
        self.decimal == DecimalMode::Precise
            && self.binary == BinaryMode::Bytes
            && self.time == TimeRule::Keep
    }

    /// Rewrites one event's schema and row images.
    pub fn apply(&mut self, mut event: ChangeEvent) -> ChangeEvent {
        if self.is_identity() {
            return event;
        }
        let Some(table) = event.table.take() else {
            return event;
        };
        let fresh = match self.tables.get(&table.id) {
            Some(s) => !Arc::ptr_eq(&s.source, &table),
            None => true,
        };
        if fresh {
            let shaped = self.shape(&table);
            self.tables.insert(table.id.clone(), shaped);
        }
        let shaped = &self.tables[&table.id];
        for row in [event.before.as_mut(), event.after.as_mut()]
            .into_iter()
            .flatten()
        {
            for (value, rule) in row.iter_mut().zip(&shaped.rules) {
                if let Some(rule) = rule {
                    convert(rule, value);
                }
            }
        }
        event.table = Some(shaped.shaped.clone());
        event
    }

    fn shape(&self, table: &Arc<TableSchema>) -> Shaped {
        let mut columns = Vec::with_capacity(table.columns.len());
        let mut rules = Vec::with_capacity(table.columns.len());
        for c in &table.columns {
            match self.rule(&c.kind) {
                Some((kind, rule)) => {
                    let default = c.default.clone().map(|mut d| {
                        convert(&rule, &mut d);
                        d
                    });
                    columns.push(Column {
                        name: c.name.clone(),
                        kind,
                        nullable: c.nullable,
                        default,
                    });
                    rules.push(Some(rule));
                }
                None => {
                    columns.push(c.clone());
                    rules.push(None);
                }
            }
        }
        Shaped {
            source: table.clone(),
            shaped: Arc::new(TableSchema {
                id: table.id.clone(),
                columns,
                key: table.key.clone(),
            }),
            rules,
        }
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
        let s = t.shape(table);
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
        let s = t.shape(&tbl);
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
        assert_eq!(t.shape(&tbl).shaped.columns[0].kind, ColumnKind::Float64);
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
        let s = t.shape(&tbl);
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
        let s = t.shape(&tbl);
        assert_eq!(s.shaped.columns[0].kind, ColumnKind::TimeMicros);
        assert_eq!(s.shaped.columns[0].default, Some(Value::Int(5000)));
        assert_eq!(
            shaped(&t, &tbl, vec![Value::Int(7)]),
            vec![Value::Int(7000)]
        );
    }
}
