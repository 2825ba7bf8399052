//! How one column's value is read: the step a row-decoding plan holds per column, shared by
//! the plan (built from table maps) and the value readers (binlog bytes and snapshot text).

use std::sync::Arc;

use super::table_map::Charset;

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
    /// MariaDB `UUID`: 16 bytes, groups stored in MariaDB's index order.
    Uuid,
    Null,
}
