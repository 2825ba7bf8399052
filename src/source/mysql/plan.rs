//! The decoding plan of one table-map version: [`RowDecoder::new`] turns a table map (and
//! the catalog's hints) into one [`Step`] per column and the envelope's [`TableSchema`],
//! once; rows events (`rows.rs`) and snapshot rows (`values.rs`) then only run the plan.

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::{Column, ColumnKind, TableId, TableSchema};

use super::reader::{Malformed, Res};
use super::table_map::{col, Charset, MapColumn, TableMap};

/// What the catalog adds to a table map: facts the binlog does not carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnHint {
    /// `tinyint(1)` / `boolean`: published as boolean.
    pub boolean: bool,
    /// MariaDB `JSON` (a LONGTEXT with a `json_valid` check): published as Json.
    pub json: bool,
}

/// How one column's value is read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Int {
        len: usize,
        unsigned: bool,
        boolean: bool,
    },
    Float,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Year,
    Date,
    TimeOld,
    Time2 {
        fsp: u8,
    },
    DateTimeOld {
        millis: bool,
    },
    DateTime2 {
        fsp: u8,
        millis: bool,
    },
    TimestampOld,
    Timestamp2 {
        fsp: u8,
    },
    Varchar {
        len_bytes: usize,
        charset: Charset,
    },
    Char {
        len_bytes: usize,
        charset: Charset,
    },
    Enum {
        pack: usize,
        labels: Arc<[String]>,
    },
    Set {
        pack: usize,
        labels: Arc<[String]>,
    },
    Bit {
        bytes: usize,
        boolean: bool,
    },
    Blob {
        len_bytes: usize,
        charset: Charset,
        json_text: bool,
    },
    Json {
        len_bytes: usize,
    },
    Geometry {
        len_bytes: usize,
    },
    Vector {
        len_bytes: usize,
    },
    Null,
}

/// A row-decoding plan for one table-map version.
#[derive(Debug, Clone)]
pub struct RowDecoder {
    pub(crate) steps: Vec<Step>,
    /// The envelope schema of the table.
    pub schema: Arc<TableSchema>,
}

impl RowDecoder {
    /// Builds the plan for a table map, with catalog hints by column name.
    pub fn new(map: &TableMap, hints: &HashMap<String, ColumnHint>) -> Res<RowDecoder> {
        let mut steps = Vec::with_capacity(map.columns.len());
        let mut columns = Vec::with_capacity(map.columns.len());
        for (i, c) in map.columns.iter().enumerate() {
            let name = c.name.clone().unwrap_or_else(|| format!("_{}", i + 1));
            let hint = hints.get(&name).cloned().unwrap_or_default();
            let (step, kind) = plan_column(c, &hint)?;
            steps.push(step);
            columns.push(Column {
                name,
                kind,
                nullable: c.nullable,
            });
        }
        Ok(RowDecoder {
            steps,
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
            ColumnKind::Int64,
        ),
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
    let charset = c.collation.map(Charset::of_collation);
    let meta = c.meta;
    Ok(match c.real_type {
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
                    allowed: labels.to_vec(),
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
                    allowed: labels.to_vec(),
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
            ColumnKind::Geometry,
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
