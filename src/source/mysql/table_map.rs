//! TABLE_MAP events and the rows they describe.
//!
//! A TABLE_MAP carries, per column, the type code, type metadata and nullability; with
//! `binlog_row_metadata = FULL` also names, signedness, charsets, enum/set labels, geometry
//! types, the primary key and visibility. [`RowDecoder`] turns one table map into a plan
//! (one decoding step per column, the envelope's [`TableSchema`]) once; rows events then only
//! run the plan.
//!
//! ```text
//! TABLE_MAP  table_id u48 | flags u16 | db_len u8 db 0x00 | table_len u8 table 0x00 |
//!            column_count lenenc | types[n] | metadata lenenc-bytes | null bitmap |
//!            (optional metadata: type u8 | length lenenc | value)*
//! ROWS       column_count lenenc | present bitmap | [present-after bitmap (updates)] |
//!            row*: null bitmap (over present columns) | values of non-null present columns
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use crate::calendar::days_from_civil;
use crate::event::{Column, ColumnKind, Decimal, TableId, TableSchema, Value};

use super::binlog::{be_uint, le_uint, Malformed, Reader, Res, RowsEvent, RowsKind};
use super::jsonb;

/// MySQL column type codes.
pub mod col {
    #![allow(missing_docs)]
    pub const DECIMAL: u8 = 0;
    pub const TINY: u8 = 1;
    pub const SHORT: u8 = 2;
    pub const LONG: u8 = 3;
    pub const FLOAT: u8 = 4;
    pub const DOUBLE: u8 = 5;
    pub const NULL: u8 = 6;
    pub const TIMESTAMP: u8 = 7;
    pub const LONGLONG: u8 = 8;
    pub const INT24: u8 = 9;
    pub const DATE: u8 = 10;
    pub const TIME: u8 = 11;
    pub const DATETIME: u8 = 12;
    pub const YEAR: u8 = 13;
    pub const NEWDATE: u8 = 14;
    pub const VARCHAR: u8 = 15;
    pub const BIT: u8 = 16;
    pub const TIMESTAMP2: u8 = 17;
    pub const DATETIME2: u8 = 18;
    pub const TIME2: u8 = 19;
    pub const VECTOR: u8 = 242;
    pub const JSON: u8 = 245;
    pub const NEWDECIMAL: u8 = 246;
    pub const ENUM: u8 = 247;
    pub const SET: u8 = 248;
    pub const TINY_BLOB: u8 = 249;
    pub const MEDIUM_BLOB: u8 = 250;
    pub const LONG_BLOB: u8 = 251;
    pub const BLOB: u8 = 252;
    pub const VAR_STRING: u8 = 253;
    pub const STRING: u8 = 254;
    pub const GEOMETRY: u8 = 255;
}

/// One column as a table map describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapColumn {
    /// Type code as written in the rows (ENUM/SET arrive as STRING).
    pub wire_type: u8,
    /// The real type (ENUM/SET recovered from STRING's metadata).
    pub real_type: u8,
    /// Type metadata.
    pub meta: u16,
    /// Whether the column accepts NULL.
    pub nullable: bool,
    /// Name (`binlog_row_metadata = FULL`).
    pub name: Option<String>,
    /// Unsigned (numeric columns; FULL metadata).
    pub unsigned: bool,
    /// Collation id (character, enum and set columns).
    pub collation: Option<u32>,
    /// ENUM or SET labels.
    pub labels: Option<Vec<String>>,
    /// Visible (MySQL invisible columns are still replicated).
    pub visible: bool,
}

/// A decoded TABLE_MAP event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMap {
    /// Table id used by the rows events that follow.
    pub table_id: u64,
    /// Database.
    pub db: String,
    /// Table.
    pub table: String,
    /// Columns in table order.
    pub columns: Vec<MapColumn>,
    /// Primary key column indexes (FULL metadata).
    pub primary_key: Vec<usize>,
    /// Whether the optional metadata carried column names.
    pub has_names: bool,
}

fn is_numeric(t: u8) -> bool {
    matches!(
        t,
        col::TINY
            | col::SHORT
            | col::INT24
            | col::LONG
            | col::LONGLONG
            | col::DECIMAL
            | col::NEWDECIMAL
            | col::FLOAT
            | col::DOUBLE
            | col::YEAR
    )
}

/// Columns that carry a charset in the optional metadata; geometry counts (its base class is
/// a blob), as the servers write it.
fn is_character(t: u8) -> bool {
    matches!(
        t,
        col::STRING
            | col::VAR_STRING
            | col::VARCHAR
            | col::BLOB
            | col::TINY_BLOB
            | col::MEDIUM_BLOB
            | col::LONG_BLOB
            | col::GEOMETRY
    )
}

/// Reads a bitmap of `n` bits, most significant bit first (optional metadata bitmaps).
fn msb_bits(bytes: &[u8], n: usize) -> Vec<bool> {
    (0..n)
        .map(|i| bytes.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0))
        .collect()
}

/// Bit `i` of a little-endian-ordered bitmap (row bitmaps).
fn lsb_bit(bytes: &[u8], i: usize) -> bool {
    bytes.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

impl TableMap {
    /// Parses a TABLE_MAP body; `table_id_len` comes from the format description.
    pub fn parse(body: &[u8], table_id_len: usize) -> Res<TableMap> {
        let mut r = Reader::new(body);
        let table_id = r.uint(table_id_len, "table_id")?;
        let _flags = r.u16("flags")?;
        let db_len = r.u8("database name length")? as usize;
        let db = String::from_utf8_lossy(r.take(db_len, "database name")?).into_owned();
        r.take(1, "database name terminator")?;
        let t_len = r.u8("table name length")? as usize;
        let table = String::from_utf8_lossy(r.take(t_len, "table name")?).into_owned();
        r.take(1, "table name terminator")?;
        let n = r.lenenc_len("column count")?;
        let types = r.take(n, "column types")?;
        let meta_block = r.lenenc_bytes("column metadata")?;
        let mut m = Reader::new(meta_block);
        let mut columns = Vec::with_capacity(n);
        for &t in types {
            let meta: u16 = match t {
                col::FLOAT
                | col::DOUBLE
                | col::BLOB
                | col::TINY_BLOB
                | col::MEDIUM_BLOB
                | col::LONG_BLOB
                | col::GEOMETRY
                | col::JSON
                | col::VECTOR
                | col::TIMESTAMP2
                | col::DATETIME2
                | col::TIME2 => u16::from(m.u8("column metadata")?),
                col::VARCHAR | col::VAR_STRING => m.u16("column metadata")?,
                col::BIT | col::NEWDECIMAL | col::STRING | col::ENUM | col::SET => {
                    // Two bytes in this order: (bits|precision|real type, bytes|scale|length).
                    let b = m.take(2, "column metadata")?;
                    (u16::from(b[0]) << 8) | u16::from(b[1])
                }
                _ => 0,
            };
            let (real_type, meta) = if t == col::STRING {
                let (b0, b1) = ((meta >> 8) as u8, (meta & 0xff) as u8);
                if b0 & 0x30 != 0x30 {
                    // Long CHAR columns fold length bits into the type byte.
                    let len = u16::from(b1) | ((u16::from((b0 & 0x30) ^ 0x30)) << 4);
                    (b0 | 0x30, len)
                } else {
                    (b0, u16::from(b1))
                }
            } else {
                (t, meta)
            };
            columns.push(MapColumn {
                wire_type: t,
                real_type,
                meta,
                nullable: false,
                name: None,
                unsigned: false,
                collation: None,
                labels: None,
                visible: true,
            });
        }
        let nulls = r.take(n.div_ceil(8), "null bitmap")?;
        for (i, c) in columns.iter_mut().enumerate() {
            c.nullable = lsb_bit(nulls, i);
        }
        let mut map = TableMap {
            table_id,
            db,
            table,
            columns,
            primary_key: Vec::new(),
            has_names: false,
        };
        while !r.is_empty() {
            let kind = r.u8("optional metadata type")?;
            let value = r.lenenc_bytes("optional metadata")?;
            map.apply_optional(kind, value)?;
        }
        Ok(map)
    }

    fn apply_optional(&mut self, kind: u8, value: &[u8]) -> Res<()> {
        let mut v = Reader::new(value);
        match kind {
            // SIGNEDNESS: one bit per numeric column.
            1 => {
                let numeric: Vec<usize> = (0..self.columns.len())
                    .filter(|i| is_numeric(self.columns[*i].real_type))
                    .collect();
                let bits = msb_bits(value, numeric.len());
                for (i, unsigned) in numeric.into_iter().zip(bits) {
                    self.columns[i].unsigned = unsigned;
                }
            }
            // DEFAULT_CHARSET: default collation, then (column index, collation) exceptions
            // counted among character columns.
            2 | 10 => {
                let enum_set = kind == 10;
                let idx = self.charset_columns(enum_set);
                let default = v.lenenc("default charset")? as u32;
                for &i in &idx {
                    self.columns[i].collation = Some(default);
                }
                while !v.is_empty() {
                    let nth = v.lenenc("charset column index")? as usize;
                    let coll = v.lenenc("charset collation")? as u32;
                    if let Some(&i) = idx.get(nth) {
                        self.columns[i].collation = Some(coll);
                    }
                }
            }
            // COLUMN_CHARSET: one collation per character column.
            3 | 11 => {
                let idx = self.charset_columns(kind == 11);
                for i in idx {
                    if v.is_empty() {
                        break;
                    }
                    self.columns[i].collation = Some(v.lenenc("column collation")? as u32);
                }
            }
            // COLUMN_NAME.
            4 => {
                for c in self.columns.iter_mut() {
                    let name = v.lenenc_bytes("column name")?;
                    c.name = Some(String::from_utf8_lossy(name).into_owned());
                }
                self.has_names = true;
            }
            // SET_STR_VALUE / ENUM_STR_VALUE.
            5 | 6 => {
                let want = if kind == 5 { col::SET } else { col::ENUM };
                let idx: Vec<usize> = (0..self.columns.len())
                    .filter(|i| self.columns[*i].real_type == want)
                    .collect();
                for i in idx {
                    let count = v.lenenc_len("label count")?;
                    let mut labels = Vec::with_capacity(count);
                    for _ in 0..count {
                        labels.push(String::from_utf8_lossy(v.lenenc_bytes("label")?).into_owned());
                    }
                    self.columns[i].labels = Some(labels);
                }
            }
            // SIMPLE_PRIMARY_KEY.
            8 => {
                while !v.is_empty() {
                    let i = v.lenenc("primary key column")? as usize;
                    self.push_key(i)?;
                }
            }
            // PRIMARY_KEY_WITH_PREFIX.
            9 => {
                while !v.is_empty() {
                    let i = v.lenenc("primary key column")? as usize;
                    let _prefix = v.lenenc("primary key prefix")?;
                    self.push_key(i)?;
                }
            }
            // COLUMN_VISIBILITY.
            12 => {
                let bits = msb_bits(value, self.columns.len());
                for (c, visible) in self.columns.iter_mut().zip(bits) {
                    c.visible = visible;
                }
            }
            // GEOMETRY_TYPE (7) and anything newer: not needed.
            _ => {}
        }
        Ok(())
    }

    fn push_key(&mut self, i: usize) -> Res<()> {
        if i >= self.columns.len() {
            return Err(Malformed(format!(
                "primary key names column {i} of {}",
                self.columns.len()
            )));
        }
        self.primary_key.push(i);
        Ok(())
    }

    fn charset_columns(&self, enum_set: bool) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|i| {
                let t = self.columns[*i].real_type;
                if enum_set {
                    matches!(t, col::ENUM | col::SET)
                } else {
                    is_character(t)
                }
            })
            .collect()
    }
}

/// How text bytes of a collation are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// `binary`: not text.
    Binary,
    /// UTF-8 (utf8mb3, utf8mb4, ascii and anything unknown).
    Utf8,
    /// latin1 (cp1252 in MySQL; the printable range is the same).
    Latin1,
    /// UCS-2 / UTF-16 (big-endian).
    Utf16,
    /// UTF-16LE.
    Utf16Le,
    /// UTF-32 (big-endian).
    Utf32,
}

impl Charset {
    /// The charset of a collation id (MySQL and MariaDB share the ids Sluice distinguishes).
    pub fn of_collation(id: u32) -> Charset {
        match id {
            63 => Charset::Binary,
            5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 => Charset::Latin1,
            35 | 90 | 128..=151 | 159 | 54 | 55 | 101..=124 => Charset::Utf16,
            56 | 62 => Charset::Utf16Le,
            60 | 61 | 160..=183 => Charset::Utf32,
            _ => Charset::Utf8,
        }
    }

    /// Decodes bytes of this charset.
    pub fn decode(self, b: &[u8]) -> String {
        match self {
            Charset::Utf8 | Charset::Binary => match std::str::from_utf8(b) {
                Ok(s) => s.to_string(),
                Err(_) => String::from_utf8_lossy(b).into_owned(),
            },
            Charset::Latin1 => b.iter().map(|&c| char::from(c)).collect(),
            Charset::Utf16 | Charset::Utf16Le => {
                let units: Vec<u16> = b
                    .chunks_exact(2)
                    .map(|c| {
                        if self == Charset::Utf16 {
                            u16::from_be_bytes([c[0], c[1]])
                        } else {
                            u16::from_le_bytes([c[0], c[1]])
                        }
                    })
                    .collect();
                String::from_utf16_lossy(&units)
            }
            Charset::Utf32 => b
                .chunks_exact(4)
                .map(|c| {
                    char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                        .unwrap_or(char::REPLACEMENT_CHARACTER)
                })
                .collect(),
        }
    }
}

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
enum Step {
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
    steps: Vec<Step>,
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

impl RowDecoder {
    /// Converts a value as the text protocol returns it (snapshot `SELECT`, session time zone
    /// UTC, utf8mb4 results) into the value a binlog row of the same column decodes to.
    pub fn parse_text(&self, column: usize, raw: Option<&[u8]>) -> Res<Value> {
        let Some(raw) = raw else {
            return Ok(Value::Null);
        };
        let Some(step) = self.steps.get(column) else {
            return Err(Malformed(format!(
                "result has more columns than the table's {}",
                self.steps.len()
            )));
        };
        let txt = || String::from_utf8_lossy(raw);
        let bad = |what: &str| {
            Malformed(format!(
                "cannot read {what} from {:?}",
                String::from_utf8_lossy(raw)
            ))
        };
        Ok(match step {
            Step::Int { boolean, .. } => {
                let t = txt();
                let v = t
                    .parse::<i64>()
                    .or_else(|_| t.parse::<u64>().map(|u| u as i64))
                    .map_err(|_| bad("an integer"))?;
                if *boolean {
                    Value::Bool(v != 0)
                } else {
                    Value::Int(v)
                }
            }
            Step::Float | Step::Double => {
                Value::Float(txt().parse::<f64>().map_err(|_| bad("a number"))?)
            }
            Step::Decimal { scale, .. } => {
                Value::Decimal(decimal_from_text(&txt(), *scale).ok_or_else(|| bad("a decimal"))?)
            }
            Step::Year => Value::Int(txt().parse().map_err(|_| bad("a year"))?),
            Step::Date => match parse_date(&txt()) {
                Some(Some(days)) => Value::Int(days),
                Some(None) => Value::Null,
                None => return Err(bad("a date")),
            },
            Step::TimeOld | Step::Time2 { .. } => {
                Value::Int(parse_time_text(&txt()).ok_or_else(|| bad("a time"))?)
            }
            Step::DateTimeOld { millis } | Step::DateTime2 { millis, .. } => {
                match parse_datetime(&txt()).ok_or_else(|| bad("a datetime"))? {
                    Some(us) => Value::Int(if *millis { us.div_euclid(1000) } else { us }),
                    None => Value::Null,
                }
            }
            Step::TimestampOld | Step::Timestamp2 { .. } => {
                match parse_datetime(&txt()).ok_or_else(|| bad("a timestamp"))? {
                    Some(us) => Value::Text(crate::calendar::iso_utc(us)),
                    None => Value::Null,
                }
            }
            Step::Varchar { charset, .. } | Step::Blob { charset, .. } => {
                if *charset == Charset::Binary {
                    Value::Bytes(raw.to_vec())
                } else {
                    Value::Text(txt().into_owned())
                }
            }
            Step::Char { charset, .. } => {
                if *charset == Charset::Binary {
                    // The binlog drops BINARY's trailing zero padding; so does this.
                    let end = raw.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
                    Value::Bytes(raw[..end].to_vec())
                } else {
                    Value::Text(txt().into_owned())
                }
            }
            Step::Enum { .. } | Step::Set { .. } => Value::Text(txt().into_owned()),
            Step::Bit { boolean, .. } => {
                if *boolean {
                    Value::Bool(raw.iter().any(|b| *b != 0))
                } else {
                    Value::Bytes(raw.iter().rev().copied().collect())
                }
            }
            Step::Json { .. } => {
                // MySQL prints JSON with spaces; the binlog decoder writes it compact.
                let t = txt();
                match serde_json::from_str::<serde_json::Value>(&t) {
                    Ok(v) => Value::Text(v.to_string()),
                    Err(_) => Value::Text(t.into_owned()),
                }
            }
            Step::Geometry { .. } => {
                if raw.len() < 4 {
                    return Err(bad("a geometry"));
                }
                Value::Geometry {
                    srid: Some(u32::from_le_bytes(raw[..4].try_into().expect("4 bytes")) as i32),
                    wkb: raw[4..].to_vec(),
                }
            }
            Step::Vector { .. } => Value::Array(
                raw.chunks_exact(4)
                    .map(|c| Value::Float(f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))))
                    .collect(),
            ),
            Step::Null => Value::Null,
        })
    }
}

/// `-12.5` with a declared scale → [`Decimal`].
fn decimal_from_text(t: &str, scale: u8) -> Option<Decimal> {
    let (negative, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        || int.is_empty() && frac.is_empty()
    {
        return None;
    }
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    let mut have = frac.len();
    while have < usize::from(scale) {
        digits.push(b'0');
        have += 1;
    }
    digits.truncate(digits.len() - (have - usize::from(scale)));
    Some(Decimal::from_digits(&digits, negative, u32::from(scale)))
}

/// `YYYY-MM-DD` → days (`Some(None)`: a zero date).
fn parse_date(t: &str) -> Option<Option<i64>> {
    let mut it = t.splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if y == 0 || m == 0 || d == 0 {
        return Some(None);
    }
    Some(Some(days_from_civil(y, m, d)))
}

/// `[-]HHH:MM:SS[.ffffff]` → signed microseconds.
fn parse_time_text(t: &str) -> Option<i64> {
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t),
    };
    let (hms, frac) = body.split_once('.').unwrap_or((body, ""));
    let mut it = hms.splitn(3, ':');
    let h: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let s: i64 = it.next()?.parse().ok()?;
    let us = ((h * 60 + m) * 60 + s) * 1_000_000 + frac_micros(frac)?;
    Some(if neg { -us } else { us })
}

fn frac_micros(frac: &str) -> Option<i64> {
    if frac.is_empty() {
        return Some(0);
    }
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(frac.parse::<i64>().ok()? * 10i64.pow(6 - frac.len() as u32))
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` read as UTC → microseconds (`Some(None)`: zero date).
fn parse_datetime(t: &str) -> Option<Option<i64>> {
    let (date, time) = t.split_once(' ').unwrap_or((t, "00:00:00"));
    let Some(days) = parse_date(date)? else {
        return Some(None);
    };
    let us = parse_time_text(time)?;
    Some(Some(days * 86_400_000_000 + us))
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

/// Bytes of a binary-decimal group of `digits` digits.
const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// Reads MySQL's binary DECIMAL (`precision`, `scale`) into a [`Decimal`].
pub fn read_decimal(r: &mut Reader<'_>, precision: u8, scale: u8) -> Res<Decimal> {
    let intg = usize::from(precision - scale);
    let frac = usize::from(scale);
    let (full_i, part_i) = (intg / 9, intg % 9);
    let (full_f, part_f) = (frac / 9, frac % 9);
    let size = full_i * 4 + DIG2BYTES[part_i] + full_f * 4 + DIG2BYTES[part_f];
    let raw = r.take(size, "decimal")?;
    if raw.is_empty() {
        return Ok(Decimal::from_digits(b"0", false, u32::from(scale)));
    }
    let mut b = raw.to_vec();
    let negative = b[0] & 0x80 == 0;
    b[0] ^= 0x80;
    if negative {
        for x in b.iter_mut() {
            *x = !*x;
        }
    }
    let mut digits: Vec<u8> = Vec::with_capacity(usize::from(precision));
    let mut off = 0;
    let mut group = |len: usize, width: usize, digits: &mut Vec<u8>| {
        let mut v = be_uint(&b[off..off + len]);
        off += len;
        // `width` decimal digits, most significant first (a corrupt group keeps its low
        // digits).
        let start = digits.len();
        digits.resize(start + width, b'0');
        for d in digits[start..].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    if part_i > 0 {
        group(DIG2BYTES[part_i], part_i, &mut digits);
    }
    for _ in 0..full_i {
        group(4, 9, &mut digits);
    }
    for _ in 0..full_f {
        group(4, 9, &mut digits);
    }
    if part_f > 0 {
        group(DIG2BYTES[part_f], part_f, &mut digits);
    }
    Ok(Decimal::from_digits(&digits, negative, u32::from(scale)))
}

/// Fraction bytes of a temporal value of precision `fsp`, as microseconds.
fn read_fraction(r: &mut Reader<'_>, fsp: u8) -> Res<i64> {
    let n = usize::from(fsp).div_ceil(2);
    if n == 0 {
        return Ok(0);
    }
    let v = be_uint(r.take(n, "fractional seconds")?) as i64;
    Ok(match n {
        1 => v * 10_000,
        2 => v * 100,
        _ => v,
    })
}

fn datetime_micros(
    year: i64,
    month: u32,
    day: u32,
    h: i64,
    mi: i64,
    s: i64,
    frac: i64,
) -> Option<i64> {
    if month == 0 || day == 0 || month > 12 || day > 31 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + h) * 60 + mi) * 60_000_000 + s * 1_000_000 + frac)
}

fn read_value(r: &mut Reader<'_>, step: &Step, column: usize) -> Res<Value> {
    let _ = column;
    Ok(match step {
        Step::Int {
            len,
            unsigned,
            boolean,
        } => {
            let raw = le_uint(r.take(*len, "integer")?);
            let bits = 8 * *len as u32;
            let v = if *unsigned || bits == 64 {
                raw as i64
            } else {
                // Sign-extend.
                let shift = 64 - bits;
                ((raw << shift) as i64) >> shift
            };
            if *boolean {
                Value::Bool(v != 0)
            } else {
                Value::Int(v)
            }
        }
        Step::Float => Value::Float(f64::from(f32::from_le_bytes(
            r.take(4, "float")?.try_into().expect("4 bytes"),
        ))),
        Step::Double => Value::Float(f64::from_le_bytes(
            r.take(8, "double")?.try_into().expect("8 bytes"),
        )),
        Step::Decimal { precision, scale } => Value::Decimal(read_decimal(r, *precision, *scale)?),
        Step::Year => {
            let y = r.u8("year")?;
            Value::Int(if y == 0 { 0 } else { 1900 + i64::from(y) })
        }
        Step::Date => {
            let v = r.uint(3, "date")?;
            let (day, month, year) = ((v & 31) as u32, ((v >> 5) & 15) as u32, (v >> 9) as i64);
            if year == 0 || month == 0 || day == 0 {
                Value::Null
            } else {
                Value::Int(days_from_civil(year, month, day))
            }
        }
        Step::TimeOld => {
            let v = r.uint(3, "time")? as i64;
            let v = if v & 0x80_0000 != 0 {
                v - 0x100_0000
            } else {
                v
            };
            let sign = if v < 0 { -1 } else { 1 };
            let a = v.abs();
            Value::Int(sign * ((a / 10000 * 3600 + a / 100 % 100 * 60 + a % 100) * 1_000_000))
        }
        Step::Time2 { fsp } => Value::Int(read_time2(r, *fsp)?),
        Step::DateTimeOld { millis } => {
            let v = r.u64("datetime")? as i64;
            let (date, time) = (v / 1_000_000, v % 1_000_000);
            match datetime_micros(
                date / 10000,
                (date / 100 % 100) as u32,
                (date % 100) as u32,
                time / 10000,
                time / 100 % 100,
                time % 100,
                0,
            ) {
                Some(us) => Value::Int(if *millis { us.div_euclid(1000) } else { us }),
                None => Value::Null,
            }
        }
        Step::DateTime2 { fsp, millis } => {
            let packed = be_uint(r.take(5, "datetime")?) as i64 - 0x80_0000_0000;
            let frac = read_fraction(r, *fsp)?;
            let ymd = packed >> 17;
            let ym = ymd >> 5;
            let hms = packed % (1 << 17);
            match datetime_micros(
                ym / 13,
                (ym % 13) as u32,
                (ymd % 32) as u32,
                hms >> 12,
                (hms >> 6) % 64,
                hms % 64,
                frac,
            ) {
                Some(us) => Value::Int(if *millis { us.div_euclid(1000) } else { us }),
                None => Value::Null,
            }
        }
        Step::TimestampOld => {
            let secs = r.u32("timestamp")?;
            if secs == 0 {
                Value::Null
            } else {
                Value::Text(crate::calendar::iso_utc(i64::from(secs) * 1_000_000))
            }
        }
        Step::Timestamp2 { fsp } => {
            let secs = be_uint(r.take(4, "timestamp")?) as i64;
            let frac = read_fraction(r, *fsp)?;
            if secs == 0 && frac == 0 {
                Value::Null
            } else {
                Value::Text(crate::calendar::iso_utc(secs * 1_000_000 + frac))
            }
        }
        Step::Varchar { len_bytes, charset } | Step::Char { len_bytes, charset } => {
            let len = r.uint(*len_bytes, "string length")? as usize;
            let b = r.take(len, "string")?;
            if *charset == Charset::Binary {
                Value::Bytes(b.to_vec())
            } else {
                Value::Text(charset.decode(b))
            }
        }
        Step::Enum { pack, labels } => {
            let i = r.uint(*pack, "enum index")? as usize;
            // Index 0 is the error value '' (an invalid value inserted in non-strict mode).
            Value::Text(
                i.checked_sub(1)
                    .and_then(|i| labels.get(i))
                    .cloned()
                    .unwrap_or_default(),
            )
        }
        Step::Set { pack, labels } => {
            let bits = r.uint(*pack, "set bits")?;
            let mut s = String::new();
            for (i, l) in labels.iter().enumerate().take(64) {
                if bits & (1 << i) != 0 {
                    if !s.is_empty() {
                        s.push(',');
                    }
                    s.push_str(l);
                }
            }
            Value::Text(s)
        }
        Step::Bit { bytes, boolean } => {
            let b = r.take(*bytes, "bit")?;
            if *boolean {
                Value::Bool(b.iter().any(|x| *x != 0))
            } else {
                // Debezium's Bits are little-endian; the binlog's are big-endian.
                Value::Bytes(b.iter().rev().copied().collect())
            }
        }
        Step::Blob {
            len_bytes,
            charset,
            json_text,
        } => {
            let len = r.uint(*len_bytes, "blob length")? as usize;
            let b = r.take(len, "blob")?;
            if *charset == Charset::Binary {
                Value::Bytes(b.to_vec())
            } else {
                let _ = json_text;
                Value::Text(charset.decode(b))
            }
        }
        Step::Json { len_bytes } => {
            let len = r.uint(*len_bytes, "JSON length")? as usize;
            let b = r.take(len, "JSON")?;
            Value::Text(jsonb::to_text(b)?)
        }
        Step::Geometry { len_bytes } => {
            let len = r.uint(*len_bytes, "geometry length")? as usize;
            let b = r.take(len, "geometry")?;
            if b.len() < 4 {
                return Err(Malformed("geometry shorter than its SRID".into()));
            }
            Value::Geometry {
                srid: Some(u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as i32),
                wkb: b[4..].to_vec(),
            }
        }
        Step::Vector { len_bytes } => {
            let len = r.uint(*len_bytes, "vector length")? as usize;
            let b = r.take(len, "vector")?;
            Value::Array(
                b.chunks_exact(4)
                    .map(|c| Value::Float(f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))))
                    .collect(),
            )
        }
        Step::Null => Value::Null,
    })
}

/// TIME2: a signed packed value, `hour:10 minute:6 second:6` in the high part and the
/// microseconds below; returns signed microseconds.
fn read_time2(r: &mut Reader<'_>, fsp: u8) -> Res<i64> {
    const INT_OFS: i64 = 0x80_0000;
    let packed: i64 = match fsp {
        0 => (be_uint(r.take(3, "time")?) as i64 - INT_OFS) << 24,
        1 | 2 => {
            let mut int = be_uint(r.take(3, "time")?) as i64 - INT_OFS;
            let mut frac = i64::from(r.u8("time fraction")? as i8);
            if int < 0 && frac != 0 {
                int += 1;
                frac -= 0x100;
            }
            (int << 24) + frac * 10_000
        }
        3 | 4 => {
            let mut int = be_uint(r.take(3, "time")?) as i64 - INT_OFS;
            let mut frac = i64::from(i16::from_be_bytes(
                r.take(2, "time fraction")?.try_into().expect("2 bytes"),
            ));
            if int < 0 && frac != 0 {
                int += 1;
                frac -= 0x10000;
            }
            (int << 24) + frac * 100
        }
        _ => be_uint(r.take(6, "time")?) as i64 - 0x8000_0000_0000,
    };
    let negative = packed < 0;
    let a = packed.abs();
    let hms = a >> 24;
    let frac = a % (1 << 24);
    let (h, m, s) = ((hms >> 12) % (1 << 10), (hms >> 6) % 64, hms % 64);
    let us = ((h * 60 + m) * 60 + s) * 1_000_000 + frac;
    Ok(if negative { -us } else { us })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(bytes: &[u8], p: u8, s: u8) -> Decimal {
        read_decimal(&mut Reader::new(bytes), p, s).unwrap()
    }

    #[test]
    fn binary_decimals() {
        // 1234567890.1234 as DECIMAL(14,4): int part 10 digits = 1 digit + 9, frac 4 digits.
        let d = dec(&[0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2], 14, 4);
        assert_eq!(d, Decimal::from_digits(b"12345678901234", false, 4));
        // -1234567890.1234: every byte inverted.
        let d = dec(&[0x7E, 0xF2, 0x04, 0xC7, 0x2D, 0xFB, 0x2D], 14, 4);
        assert_eq!(d, Decimal::from_digits(b"12345678901234", true, 4));
        assert!(read_decimal(&mut Reader::new(&[0x81]), 14, 4).is_err());
    }

    #[test]
    fn time2_values() {
        // 00:00:00
        assert_eq!(read_time2(&mut Reader::new(&[0x80, 0, 0]), 0), Ok(0));
        // 12:34:56 = hour 12 <<12 | 34 << 6 | 56
        let hms: u64 = (12 << 12) | (34 << 6) | 56;
        let v = (hms + 0x80_0000).to_be_bytes();
        assert_eq!(read_time2(&mut Reader::new(&v[5..]), 0), Ok(45_296_000_000));
    }

    #[test]
    fn charsets() {
        assert_eq!(Charset::of_collation(63), Charset::Binary);
        assert_eq!(Charset::of_collation(8).decode(&[0x63, 0xe9]), "cé");
        assert_eq!(Charset::of_collation(45).decode("żółw".as_bytes()), "żółw");
        assert_eq!(Charset::Utf16.decode(&[0x00, 0x41]), "A");
    }
}
