//! The decoding plan of one table-map version: [`RowDecoder::new`] turns a table map (and
//! the catalog's hints) into one [`Step`] per column and the envelope's [`TableSchema`],
//! once; rows events (`rows.rs`) and snapshot rows (`values.rs`) then only run the plan.

use std::collections::HashMap;
use std::sync::Arc;

use crate::calendar::{civil_from_days, days_from_civil};
use crate::event::{Column, ColumnKind, TableId, TableSchema, Value};

use super::reader::{Malformed, Res};
use super::table_map::{col, Charset, MapColumn, TableMap};
use super::values::parse_text;

/// What the catalog adds to a table map: facts the binlog does not carry, and the
/// connector's `[types]` choices that change a column's decoding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnHint {
    /// `tinyint(1)` / `boolean` with `[types] tinyint1_as_boolean`: published as boolean.
    pub boolean: bool,
    /// MariaDB `JSON` (a LONGTEXT with a `json_valid` check): published as Json.
    pub json: bool,
    /// `FLOAT(M,D)`: float64 in Debezium (the stored value is still a 4-byte float).
    pub float64: bool,
    /// MariaDB `UUID`: 16 bytes in the binlog, a `Uuid` string for consumers.
    pub uuid: bool,
    /// `POINT`: a Point struct (`x`, `y`, `wkb`, `srid`) rather than a Geometry.
    pub point: bool,
    /// The column's character set name (`latin2`), which decodes its text in the binlog.
    pub charset: Option<String>,
    /// The column's default, as the catalog states it.
    pub default: Option<ColumnDefault>,
    /// Two-digit years are adjusted (`[types] time_adjuster`, Debezium's default).
    pub adjust_years: bool,
    /// `BIGINT UNSIGNED` as a Decimal(20, 0) (`[types] bigint_unsigned_handling_mode =
    /// "precise"`).
    pub unsigned_precise: bool,
    /// `CHAR(n)` / `VARCHAR(n)`: n characters.
    pub length: Option<u32>,
}

/// A column default from `information_schema.COLUMNS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnDefault {
    /// A literal, unquoted (`42`, `x'y`, `2024-01-02`).
    Literal(String),
    /// `CURRENT_TIMESTAMP` / `NOW()`: Debezium declares the epoch.
    CurrentTimestamp,
    /// A bit literal (`b'101'`) of a `BIT(n)` column.
    Bits(u64),
}

/// Debezium's conversions after a value is read, the same for binlog and text values.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Finish {
    /// `NOT NULL` temporal columns: a zero date (read as null) is published as the epoch.
    epoch: Option<Value>,
    /// Years 0–99 moved to 1970–2069 (Debezium's time adjuster): value units per day.
    adjust_years: Option<i64>,
    /// `BINARY(n)`: the trailing zero bytes the binlog strips, restored to `n` bytes.
    pad_to: usize,
    /// `BIGINT UNSIGNED` in precise mode: the 64 bits read as unsigned, as a decimal.
    unsigned_decimal: bool,
}

impl Finish {
    pub(crate) fn apply(&self, v: Value) -> Value {
        match v {
            Value::Null => self.epoch.clone().unwrap_or(Value::Null),
            Value::Int(x) if self.unsigned_decimal => Value::Decimal(crate::event::Decimal {
                unscaled: crate::event::twos_complement((x as u64).to_string().as_bytes(), false),
                scale: 0,
            }),
            Value::Int(x) => match self.adjust_years {
                Some(per_day) => Value::Int(adjust_two_digit_year(x, per_day)),
                None => Value::Int(x),
            },
            Value::Bytes(mut b) if b.len() < self.pad_to => {
                b.resize(self.pad_to, 0);
                Value::Bytes(b)
            }
            other => other,
        }
    }
}

/// A date or timestamp (`per_day` units per day) whose year is 0–99, moved to 2000–2069 or
/// 1970–1999 as MySQL reads two-digit years.
fn adjust_two_digit_year(v: i64, per_day: i64) -> i64 {
    let (days, rest) = (v.div_euclid(per_day), v.rem_euclid(per_day));
    let (y, m, d) = civil_from_days(days);
    let y2 = match y {
        0..=69 => y + 2000,
        70..=99 => y + 1900,
        _ => return v,
    };
    days_from_civil(y2, m, d) * per_day + rest
}

pub(crate) use super::step::Step;

/// A row-decoding plan for one table-map version.
#[derive(Debug, Clone)]
pub struct RowDecoder {
    pub(crate) steps: Vec<Step>,
    /// Per column, Debezium's conversions after reading (none for most columns).
    pub(crate) finish: Vec<Option<Finish>>,
    /// The envelope schema of the table.
    pub schema: Arc<TableSchema>,
}

impl RowDecoder {
    /// Builds the plan for a table map, with catalog hints by column name.
    pub fn new(map: &TableMap, hints: &HashMap<String, ColumnHint>) -> Res<RowDecoder> {
        let mut steps = Vec::with_capacity(map.columns.len());
        let mut finish = Vec::with_capacity(map.columns.len());
        let mut columns = Vec::with_capacity(map.columns.len());
        for (i, c) in map.columns.iter().enumerate() {
            let name = c.name.clone().unwrap_or_else(|| format!("_{}", i + 1));
            let hint = hints.get(&name).cloned().unwrap_or_default();
            let (step, kind) = plan_column(c, &hint)?;
            let fin = plan_finish(c, &step, &kind, &hint);
            let default = hint.default.as_ref().and_then(|d| {
                let v = match d {
                    ColumnDefault::Literal(text) => parse_text(&step, text.as_bytes()).ok()?,
                    ColumnDefault::CurrentTimestamp => epoch_of(&kind)?,
                    ColumnDefault::Bits(v) => match &step {
                        // As the binlog has them: big-endian, in the column's bytes.
                        Step::Bit { bytes, .. } => {
                            let be = v.to_be_bytes();
                            let n = (*bytes).min(8);
                            parse_text(&step, &be[8 - n..]).ok()?
                        }
                        _ => return None,
                    },
                };
                let v = match &fin {
                    Some(f) => f.apply(v),
                    None => v,
                };
                (v != Value::Null).then_some(v)
            });
            steps.push(step);
            finish.push(fin);
            columns.push(Column {
                name,
                kind,
                nullable: c.nullable,
                default,
                length: hint.length,
            });
        }
        Ok(RowDecoder {
            steps,
            finish,
            schema: Arc::new(TableSchema {
                id: TableId {
                    schema: map.db.clone(),
                    name: map.table.clone(),
                },
                columns,
                key: map.primary_key.clone(),
            }),
        })
    }
}

/// The epoch in a temporal kind's unit (Debezium's value for zero dates in `NOT NULL`
/// columns and for `CURRENT_TIMESTAMP` defaults).
fn epoch_of(kind: &ColumnKind) -> Option<Value> {
    match kind {
        ColumnKind::Date | ColumnKind::TimestampMillis | ColumnKind::TimestampMicros => {
            Some(Value::Int(0))
        }
        ColumnKind::ZonedTimestamp => Some(Value::text("1970-01-01T00:00:00Z")),
        _ => None,
    }
}

/// The conversions a column needs after reading, if any.
fn plan_finish(c: &MapColumn, step: &Step, kind: &ColumnKind, hint: &ColumnHint) -> Option<Finish> {
    let epoch = if c.nullable { None } else { epoch_of(kind) };
    let adjust_years = match (hint.adjust_years, kind) {
        (true, ColumnKind::Date) => Some(1),
        (true, ColumnKind::TimestampMillis) => Some(86_400_000),
        (true, ColumnKind::TimestampMicros) => Some(86_400_000_000),
        _ => None,
    };
    let pad_to = match step {
        Step::Char {
            charset: Charset::Binary,
            ..
        } => usize::from(c.meta),
        _ => 0,
    };
    let unsigned_decimal = matches!(
        step,
        Step::Int {
            len: 8,
            unsigned: true,
            ..
        }
    ) && *kind == ColumnKind::PreciseUnsigned;
    let f = Finish {
        epoch,
        adjust_years,
        pad_to,
        unsigned_decimal,
    };
    (f != Finish::default()).then_some(f)
}

/// The decoding step and envelope kind of one column.
fn plan_column(c: &MapColumn, hint: &ColumnHint) -> Res<(Step, ColumnKind)> {
    match c.real_type {
        col::TINY
        | col::SHORT
        | col::INT24
        | col::LONG
        | col::LONGLONG
        | col::FLOAT
        | col::DOUBLE
        | col::NEWDECIMAL => plan_numeric(c, hint),
        col::YEAR
        | col::DATE
        | col::NEWDATE
        | col::TIME
        | col::TIME2
        | col::DATETIME
        | col::DATETIME2
        | col::TIMESTAMP
        | col::TIMESTAMP2 => plan_temporal(c),
        col::NULL => Ok((Step::Null, ColumnKind::Text)),
        _ => plan_string(c, hint),
    }
}

/// Integers, floats and decimals.
fn plan_numeric(c: &MapColumn, hint: &ColumnHint) -> Res<(Step, ColumnKind)> {
    let meta = c.meta;
    Ok(match c.real_type {
        col::TINY => {
            if hint.boolean {
                (
                    Step::Int {
                        len: 1,
                        unsigned: c.unsigned,
                        boolean: true,
                    },
                    ColumnKind::Boolean,
                )
            } else {
                let kind = if c.unsigned {
                    ColumnKind::Int16
                } else {
                    ColumnKind::Int8
                };
                (
                    Step::Int {
                        len: 1,
                        unsigned: c.unsigned,
                        boolean: false,
                    },
                    kind,
                )
            }
        }
        col::SHORT => (
            Step::Int {
                len: 2,
                unsigned: c.unsigned,
                boolean: false,
            },
            if c.unsigned {
                ColumnKind::Int32
            } else {
                ColumnKind::Int16
            },
        ),
        col::INT24 => (
            Step::Int {
                len: 3,
                unsigned: c.unsigned,
                boolean: false,
            },
            ColumnKind::Int32,
        ),
        col::LONG => (
            Step::Int {
                len: 4,
                unsigned: c.unsigned,
                boolean: false,
            },
            if c.unsigned {
                ColumnKind::Int64
            } else {
                ColumnKind::Int32
            },
        ),
        col::LONGLONG => (
            Step::Int {
                len: 8,
                unsigned: c.unsigned,
                boolean: false,
            },
            if c.unsigned && hint.unsigned_precise {
                ColumnKind::PreciseUnsigned
            } else {
                ColumnKind::Int64
            },
        ),
        col::FLOAT if hint.float64 => (Step::Float, ColumnKind::Float64),
        col::FLOAT => (Step::Float, ColumnKind::Float32),
        col::DOUBLE => (Step::Double, ColumnKind::Float64),
        col::NEWDECIMAL => {
            let (precision, scale) = ((meta >> 8) as u8, (meta & 0xff) as u8);
            if precision == 0 || scale > precision || precision > 65 {
                return Err(Malformed(format!(
                    "decimal({precision},{scale}) is not a valid declaration"
                )));
            }
            (
                Step::Decimal { precision, scale },
                ColumnKind::Decimal {
                    precision: Some(u32::from(precision)),
                    scale: u32::from(scale),
                },
            )
        }
        other => {
            return Err(Malformed(format!(
                "column type {other} (real type of wire type {}) is not supported",
                c.wire_type
            )))
        }
    })
}

/// YEAR, DATE, TIME, DATETIME and TIMESTAMP.
fn plan_temporal(c: &MapColumn) -> Res<(Step, ColumnKind)> {
    let meta = c.meta;
    Ok(match c.real_type {
        col::YEAR => (Step::Year, ColumnKind::Year),
        col::DATE | col::NEWDATE => (Step::Date, ColumnKind::Date),
        col::TIME => (Step::TimeOld, ColumnKind::TimeMicros),
        col::TIME2 => (Step::Time2 { fsp: fsp(meta)? }, ColumnKind::TimeMicros),
        col::DATETIME => (
            Step::DateTimeOld { millis: true },
            ColumnKind::TimestampMillis,
        ),
        col::DATETIME2 => {
            let f = fsp(meta)?;
            let millis = f <= 3;
            (
                Step::DateTime2 { fsp: f, millis },
                if millis {
                    ColumnKind::TimestampMillis
                } else {
                    ColumnKind::TimestampMicros
                },
            )
        }
        col::TIMESTAMP => (Step::TimestampOld, ColumnKind::ZonedTimestamp),
        col::TIMESTAMP2 => (
            Step::Timestamp2 { fsp: fsp(meta)? },
            ColumnKind::ZonedTimestamp,
        ),
        other => {
            return Err(Malformed(format!(
                "column type {other} (real type of wire type {}) is not supported",
                c.wire_type
            )))
        }
    })
}

/// Strings, enums and sets, bits, blobs, JSON, geometry and vectors.
fn plan_string(c: &MapColumn, hint: &ColumnHint) -> Res<(Step, ColumnKind)> {
    let charset = match (&hint.charset, c.collation) {
        (Some(name), _) => Some(Charset::of_name(name).ok_or_else(|| {
            Malformed(format!(
                "column {} uses character set {name}, which Sluice cannot decode from the binlog; convert the column to utf8mb4",
                c.name.as_deref().unwrap_or("?")
            ))
        })?),
        (None, id) => id.map(Charset::of_collation),
    };
    let meta = c.meta;
    Ok(match c.real_type {
        col::STRING if hint.uuid => (Step::Uuid, ColumnKind::Uuid),
        col::VARCHAR | col::VAR_STRING => {
            let len_bytes = if meta < 256 { 1 } else { 2 };
            let charset = charset.unwrap_or(Charset::Utf8);
            (
                Step::Varchar { len_bytes, charset },
                text_kind(charset, false),
            )
        }
        col::STRING => {
            let len_bytes = if meta > 255 { 2 } else { 1 };
            let charset = charset.unwrap_or(Charset::Utf8);
            (Step::Char { len_bytes, charset }, text_kind(charset, false))
        }
        col::ENUM => {
            let labels: Arc<[String]> = c.labels.clone().unwrap_or_default().into();
            let pack = usize::from(meta & 0xff).clamp(1, 2);
            (
                Step::Enum {
                    pack,
                    labels: labels.clone(),
                },
                ColumnKind::Enum {
                    allowed: escape_commas(&labels),
                },
            )
        }
        col::SET => {
            let labels: Arc<[String]> = c.labels.clone().unwrap_or_default().into();
            let pack = usize::from(meta & 0xff).clamp(1, 8);
            (
                Step::Set {
                    pack,
                    labels: labels.clone(),
                },
                ColumnKind::EnumSet {
                    allowed: escape_commas(&labels),
                },
            )
        }
        col::BIT => {
            let bits = u32::from(meta >> 8) + 8 * u32::from(meta & 0xff);
            let bytes = (bits as usize).div_ceil(8);
            if bits == 1 {
                (
                    Step::Bit {
                        bytes,
                        boolean: true,
                    },
                    ColumnKind::Boolean,
                )
            } else {
                (
                    Step::Bit {
                        bytes,
                        boolean: false,
                    },
                    ColumnKind::Bits { length: bits },
                )
            }
        }
        col::BLOB | col::TINY_BLOB | col::MEDIUM_BLOB | col::LONG_BLOB => {
            let len_bytes = blob_len(meta)?;
            // Without charset metadata a blob is taken as binary.
            let charset = charset.unwrap_or(Charset::Binary);
            if hint.json && charset != Charset::Binary {
                (
                    Step::Blob {
                        len_bytes,
                        charset,
                        json_text: true,
                    },
                    ColumnKind::Json,
                )
            } else {
                (
                    Step::Blob {
                        len_bytes,
                        charset,
                        json_text: false,
                    },
                    text_kind(charset, true),
                )
            }
        }
        col::JSON => (
            Step::Json {
                len_bytes: blob_len(meta)?,
            },
            ColumnKind::Json,
        ),
        col::GEOMETRY => (
            Step::Geometry {
                len_bytes: blob_len(meta)?,
            },
            if hint.point {
                ColumnKind::Point
            } else {
                ColumnKind::Geometry
            },
        ),
        col::VECTOR => (
            Step::Vector {
                len_bytes: blob_len(meta)?,
            },
            ColumnKind::Array(Box::new(ColumnKind::Float32)),
        ),
        other => {
            return Err(Malformed(format!(
                "column type {other} (real type of wire type {}) is not supported",
                c.wire_type
            )))
        }
    })
}

/// Labels as Debezium lists them in `allowed`: a comma inside a label escaped (`a\\,b`), so the
/// comma-joined list can be split back.
fn escape_commas(labels: &[String]) -> Vec<String> {
    labels.iter().map(|l| l.replace(',', "\\,")).collect()
}

fn fsp(meta: u16) -> Res<u8> {
    if meta > 6 {
        return Err(Malformed(format!(
            "fractional-second precision {meta} above 6"
        )));
    }
    Ok(meta as u8)
}

fn blob_len(meta: u16) -> Res<usize> {
    match meta {
        1..=4 => Ok(meta as usize),
        _ => Err(Malformed(format!(
            "blob length-prefix size {meta} is not 1 to 4"
        ))),
    }
}

fn text_kind(charset: Charset, _blob: bool) -> ColumnKind {
    if charset == Charset::Binary {
        ColumnKind::Bytes
    } else {
        ColumnKind::Text
    }
}
