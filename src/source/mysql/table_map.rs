//! TABLE_MAP events: column types, metadata and the optional metadata of
//! `binlog_row_metadata = FULL` (names, signedness, charsets, enum/set labels, geometry types,
//! the primary key, visibility), and collation ids to charsets. [`super::rows`] turns a map
//! into a decoding plan.
//!
//! ```text
//! TABLE_MAP  table_id u48 | flags u16 | db_len u8 db 0x00 | table_len u8 table 0x00 |
//!            column_count lenenc | types[n] | metadata lenenc-bytes | null bitmap |
//!            (optional metadata: type u8 | length lenenc | value)*
//! ```

use super::reader::{Malformed, Reader, Res};

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
pub(super) fn lsb_bit(bytes: &[u8], i: usize) -> bool {
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
    /// UCS-2 / UTF-16 (big-endian).
    Utf16,
    /// UTF-16LE.
    Utf16Le,
    /// UTF-32 (big-endian).
    Utf32,
    /// A single- or multi-byte legacy charset (latin1 is cp1252 in MySQL, latin2, cp1251,
    /// koi8r, sjis, gbk, big5, ...).
    Legacy(&'static encoding_rs::Encoding),
}

impl Charset {
    /// The charset of a collation id, for binlogs read without the catalog (the ids of
    /// MySQL and MariaDB agree for these); the catalog's charset name wins when known.
    pub fn of_collation(id: u32) -> Charset {
        use encoding_rs as e;
        match id {
            63 => Charset::Binary,
            5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 => Charset::Legacy(e::WINDOWS_1252),
            2 | 9 | 21 | 27 | 77 => Charset::Legacy(e::ISO_8859_2),
            26 | 34 | 44 | 66 | 99 => Charset::Legacy(e::WINDOWS_1250),
            14 | 23 | 50 | 51 | 52 => Charset::Legacy(e::WINDOWS_1251),
            7 | 74 => Charset::Legacy(e::KOI8_R),
            25 | 70 => Charset::Legacy(e::ISO_8859_7),
            16 | 71 => Charset::Legacy(e::ISO_8859_8),
            57 | 67 => Charset::Legacy(e::WINDOWS_1256),
            29 | 58 | 59 => Charset::Legacy(e::WINDOWS_1257),
            30 | 78 => Charset::Legacy(e::WINDOWS_1254),
            13 | 88 | 95 | 96 => Charset::Legacy(e::SHIFT_JIS),
            12 | 91 | 97 | 98 => Charset::Legacy(e::EUC_JP),
            19 | 85 => Charset::Legacy(e::EUC_KR),
            24 | 86 | 28 | 87 => Charset::Legacy(e::GBK),
            1 | 84 => Charset::Legacy(e::BIG5),
            35 | 90 | 128..=151 | 159 | 54 | 55 | 101..=124 => Charset::Utf16,
            56 | 62 => Charset::Utf16Le,
            60 | 61 | 160..=183 => Charset::Utf32,
            _ => Charset::Utf8,
        }
    }

    /// The charset of a character set name (`information_schema.COLUMNS.CHARACTER_SET_NAME`);
    /// `None` for the few legacy charsets Sluice cannot decode (armscii8, dec8, hp8, swe7,
    /// keybcs2, cp850, cp852, macce, geostd8).
    pub fn of_name(name: &str) -> Option<Charset> {
        use encoding_rs as e;
        let legacy = |enc| Some(Charset::Legacy(enc));
        match name.to_ascii_lowercase().as_str() {
            "binary" => Some(Charset::Binary),
            "utf8" | "utf8mb3" | "utf8mb4" | "ascii" => Some(Charset::Utf8),
            "ucs2" | "utf16" => Some(Charset::Utf16),
            "utf16le" => Some(Charset::Utf16Le),
            "utf32" => Some(Charset::Utf32),
            "latin1" => legacy(e::WINDOWS_1252),
            "latin2" => legacy(e::ISO_8859_2),
            "latin5" => legacy(e::WINDOWS_1254),
            "latin7" => legacy(e::ISO_8859_13),
            "cp1250" => legacy(e::WINDOWS_1250),
            "cp1251" => legacy(e::WINDOWS_1251),
            "cp1256" => legacy(e::WINDOWS_1256),
            "cp1257" => legacy(e::WINDOWS_1257),
            "greek" => legacy(e::ISO_8859_7),
            "hebrew" => legacy(e::ISO_8859_8),
            "koi8r" => legacy(e::KOI8_R),
            "koi8u" => legacy(e::KOI8_U),
            "cp866" => legacy(e::IBM866),
            "macroman" => legacy(e::MACINTOSH),
            "tis620" => legacy(e::WINDOWS_874),
            "sjis" | "cp932" => legacy(e::SHIFT_JIS),
            "ujis" | "eucjpms" => legacy(e::EUC_JP),
            "euckr" => legacy(e::EUC_KR),
            "gb2312" | "gbk" => legacy(e::GBK),
            "gb18030" => legacy(e::GB18030),
            "big5" => legacy(e::BIG5),
            _ => None,
        }
    }

    /// Decodes bytes of this charset.
    pub fn decode(self, b: &[u8]) -> String {
        match self {
            Charset::Utf8 | Charset::Binary => match std::str::from_utf8(b) {
                Ok(s) => s.to_string(),
                Err(_) => String::from_utf8_lossy(b).into_owned(),
            },
            Charset::Legacy(enc) => enc.decode_without_bom_handling(b).0.into_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charsets() {
        assert_eq!(Charset::of_collation(63), Charset::Binary);
        assert_eq!(Charset::of_collation(8).decode(&[0x63, 0xe9]), "cé");
        assert_eq!(Charset::of_collation(45).decode("żółw".as_bytes()), "żółw");
        assert_eq!(Charset::Utf16.decode(&[0x00, 0x41]), "A");
        // MySQL's latin1 is cp1252: 0x80 is the euro sign.
        assert_eq!(Charset::of_collation(8).decode(&[0x80]), "€");
        // "Žluťoučký" in latin2.
        let latin2 = [0xae, 0x6c, 0x75, 0xbb, 0x6f, 0x75, 0xe8, 0x6b, 0xfd];
        assert_eq!(
            Charset::of_name("latin2").unwrap().decode(&latin2),
            "Žluťoučký"
        );
        assert_eq!(Charset::of_collation(9).decode(&latin2), "Žluťoučký");
        assert_eq!(Charset::of_name("swe7"), None);
    }
}
