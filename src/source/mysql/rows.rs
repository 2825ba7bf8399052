//! Rows events decoded with a per-table plan: [`RowDecoder`] turns one table map into one
//! decoding step per column and the envelope's [`TableSchema`] once; rows events then only
//! run the plan.
//!
//! ```text
//! ROWS       column_count lenenc | present bitmap | [present-after bitmap (updates)] |
//!            row*: null bitmap (over present columns) | values of non-null present columns
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::{Column, ColumnKind, TableId, TableSchema, Value};

use super::binlog::{RowsEvent, RowsKind};
use super::jsonb;
use super::reader::{Malformed, Reader, Res};
use super::table_map::{col, lsb_bit, Charset, MapColumn, TableMap};
use super::values::read_value;

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
pub(super) enum Step {
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
    pub(super) steps: Vec<Step>,
    /// The envelope schema of the table.
    pub schema: Arc<TableSchema>,
}

/// One decoded row change.
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    /// Old image (updates, deletes).
    pub before: Option<Vec<Value>>,
    /// New image (inserts, updates).
    pub after: Option<Vec<Value>>,
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

    /// Decodes every row of a rows event, calling `each` per row change in order.
    pub fn rows(&self, ev: &RowsEvent<'_>, mut each: impl FnMut(RowChange)) -> Res<()> {
        let mut r = Reader::new(ev.body);
        let n = r.lenenc("column count")? as usize;
        if n != self.steps.len() {
            return Err(Malformed(format!(
                "rows event has {n} columns, its table map {}",
                self.steps.len()
            )));
        }
        let present = r.take(n.div_ceil(8), "columns-present bitmap")?;
        let present_after = if ev.kind == RowsKind::Update {
            r.take(n.div_ceil(8), "columns-present-after bitmap")?
        } else {
            present
        };
        // Every row reads at least one byte, or the loop below would not end.
        let any = |bits: &[u8]| (0..n).any(|i| lsb_bit(bits, i));
        if !any(present) || !any(present_after) {
            return Err(Malformed("rows event names no columns".into()));
        }
        while !r.is_empty() {
            match ev.kind {
                RowsKind::Write => {
                    let after = self.image(&mut r, present, false)?;
                    each(RowChange {
                        before: None,
                        after: Some(after),
                    });
                }
                RowsKind::Delete => {
                    let before = self.image(&mut r, present, false)?;
                    each(RowChange {
                        before: Some(before),
                        after: None,
                    });
                }
                RowsKind::Update => {
                    let before = self.image(&mut r, present, false)?;
                    let after = if ev.partial {
                        let options = r.lenenc("partial update value options")?;
                        if options & 1 != 0 {
                            let json_cols = self
                                .steps
                                .iter()
                                .filter(|s| matches!(s, Step::Json { .. }))
                                .count();
                            let partial = r.take(json_cols.div_ceil(8), "partial JSON bitmap")?;
                            if (0..json_cols).any(|i| lsb_bit(partial, i)) {
                                self.partial_image(&mut r, present_after, partial, &before)?
                            } else {
                                self.image(&mut r, present_after, false)?
                            }
                        } else {
                            self.image(&mut r, present_after, false)?
                        }
                    } else {
                        self.image(&mut r, present_after, false)?
                    };
                    each(RowChange {
                        before: Some(before),
                        after: Some(after),
                    });
                }
            }
        }
        Ok(())
    }

    fn image(&self, r: &mut Reader<'_>, present: &[u8], _partial: bool) -> Res<Vec<Value>> {
        self.image_with(r, present, None)
    }

    /// An after image whose partial JSON columns hold diffs against the before image.
    fn partial_image(
        &self,
        r: &mut Reader<'_>,
        present: &[u8],
        partial: &[u8],
        before: &[Value],
    ) -> Res<Vec<Value>> {
        self.image_with(r, present, Some((partial, before)))
    }

    /// One row image; with `partial` (the partial-JSON bitmap and the before image), marked
    /// JSON columns are diffs to apply to the old document.
    fn image_with(
        &self,
        r: &mut Reader<'_>,
        present: &[u8],
        partial: Option<(&[u8], &[Value])>,
    ) -> Res<Vec<Value>> {
        let count = (0..self.steps.len())
            .filter(|i| lsb_bit(present, *i))
            .count();
        let nulls = r.take(count.div_ceil(8), "row null bitmap")?;
        let mut out = Vec::with_capacity(self.steps.len());
        let mut k = 0;
        let mut json_index = 0;
        for (i, step) in self.steps.iter().enumerate() {
            let this_json = json_index;
            if matches!(step, Step::Json { .. }) {
                json_index += 1;
            }
            if !lsb_bit(present, i) {
                // Not in this image (binlog_row_image = MINIMAL or NOBLOB).
                out.push(Value::Unavailable);
                continue;
            }
            let is_null = lsb_bit(nulls, k);
            k += 1;
            let diff_of = partial.filter(|(bits, _)| lsb_bit(bits, this_json));
            out.push(match (is_null, step, diff_of) {
                (true, _, _) => Value::Null,
                (false, Step::Json { len_bytes }, Some((_, before))) => {
                    let len = r.uint(*len_bytes, "JSON diff length")? as usize;
                    let diff = r.take(len, "JSON diff")?;
                    match before.get(i) {
                        Some(Value::Text(base)) => Value::Text(jsonb::apply_diffs(base, diff)?),
                        // The old document is not in the before image (binlog_row_image =
                        // MINIMAL): the new one cannot be rebuilt from the diff.
                        _ => Value::Unavailable,
                    }
                }
                _ => read_value(r, step, i)?,
            });
        }
        Ok(out)
    }
}

fn plan_column(c: &MapColumn, hint: &ColumnHint) -> Res<(Step, ColumnKind)> {
    let charset = c.collation.map(Charset::of_collation);
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
        col::NULL => (Step::Null, ColumnKind::Text),
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
