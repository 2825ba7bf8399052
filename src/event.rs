//! The source-neutral change model.
//!
//! Sources decode their wire formats into these types; encoders turn them into envelopes.
//! Nothing here knows PostgreSQL, MySQL, JSON or Kafka: a [`ColumnKind`] names the semantic
//! type (what Debezium calls the logical schema), a [`Value`] carries one field of one row.

use std::sync::Arc;

use crate::position::SourcePosition;

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A row was inserted (`c`).
    Create,
    /// A row was updated (`u`).
    Update,
    /// A row was deleted (`d`).
    Delete,
    /// A row was read by a snapshot (`r`).
    Read,
    /// A table was truncated (`t`).
    Truncate,
    /// A logical decoding message (`m`).
    Message,
}

impl Op {
    /// The one-letter code used in Debezium envelopes.
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
            Op::Truncate => "t",
            Op::Message => "m",
        }
    }
}

/// A table's identity: schema (PostgreSQL) or database (MySQL) plus table name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableId {
    /// PostgreSQL schema or MySQL database.
    pub schema: String,
    /// Table name.
    pub name: String,
}

impl std::fmt::Display for TableId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// The semantic type of a column, as the envelope describes it.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnKind {
    /// `boolean`.
    Boolean,
    /// 8-bit integer (MySQL `tinyint`).
    Int8,
    /// 16-bit integer.
    Int16,
    /// 32-bit integer.
    Int32,
    /// 64-bit integer.
    Int64,
    /// 32-bit float.
    Float32,
    /// 64-bit float.
    Float64,
    /// Fixed-scale decimal (`org.apache.kafka.connect.data.Decimal`).
    Decimal {
        /// Declared precision, when known.
        precision: Option<u32>,
        /// Declared scale.
        scale: u32,
    },
    /// Decimal whose scale varies per value (`io.debezium.data.VariableScaleDecimal`).
    VariableDecimal,
    /// Plain text.
    Text,
    /// Raw bytes.
    Bytes,
    /// Days since the epoch (`io.debezium.time.Date`).
    Date,
    /// Time of day in milliseconds (`io.debezium.time.Time`).
    TimeMillis,
    /// Time of day in microseconds (`io.debezium.time.MicroTime`).
    TimeMicros,
    /// Wall-clock timestamp in milliseconds (`io.debezium.time.Timestamp`).
    TimestampMillis,
    /// Wall-clock timestamp in microseconds (`io.debezium.time.MicroTimestamp`).
    TimestampMicros,
    /// ISO-8601 timestamp in UTC (`io.debezium.time.ZonedTimestamp`).
    ZonedTimestamp,
    /// ISO-8601 time in UTC (`io.debezium.time.ZonedTime`).
    ZonedTime,
    /// Duration in microseconds (`io.debezium.time.MicroDuration`).
    Interval,
    /// JSON document as text (`io.debezium.data.Json`).
    Json,
    /// UUID as text (`io.debezium.data.Uuid`).
    Uuid,
    /// XML document as text (`io.debezium.data.Xml`).
    Xml,
    /// A PostgreSQL `ltree` label path as text (`io.debezium.data.Ltree`).
    Ltree,
    /// Enumeration (`io.debezium.data.Enum`) with its allowed labels.
    Enum {
        /// Allowed labels in declaration order.
        allowed: Vec<String>,
    },
    /// Bit string of more than one bit (`io.debezium.data.Bits`).
    Bits {
        /// Declared length in bits (0 when unbounded).
        length: u32,
    },
    /// One-dimensional array of an element kind.
    Array(Box<ColumnKind>),
    /// A year (`io.debezium.time.Year`, int32).
    Year,
    /// A set of labels (`io.debezium.data.EnumSet`): comma-separated text.
    EnumSet {
        /// Allowed labels in declaration order.
        allowed: Vec<String>,
    },
    /// A spatial value (`io.debezium.data.geometry.Geometry`: `{wkb, srid}`).
    Geometry,
    /// A 2D point (`io.debezium.data.geometry.Point`: `{x, y, wkb, srid}`); the value is a
    /// [`Value::Geometry`] whose well-known binary is a point.
    Point,
    /// Days since the epoch as Kafka Connect's `org.apache.kafka.connect.data.Date`
    /// (`time_precision_mode = "connect"`).
    ConnectDate,
    /// Milliseconds of the day as Connect's `org.apache.kafka.connect.data.Time` (int32).
    ConnectTime,
    /// Milliseconds since the epoch as Connect's `org.apache.kafka.connect.data.Timestamp`.
    ConnectTimestamp,
    /// A duration as `P<y>Y<m>M<d>DT<h>H<m>M<s>S` (`io.debezium.time.Interval`).
    IntervalString,
    /// MySQL `BIGINT UNSIGNED` with `bigint_unsigned_handling_mode = "precise"`: Connect's
    /// `Decimal` with scale 0 and no precision, whatever `decimal_handling_mode` says (as in
    /// Debezium); the value is a [`Value::Decimal`].
    PreciseUnsigned,
    /// String keys to optional string values (PostgreSQL `hstore` in `map` mode); the value
    /// is a [`Value::Map`].
    StringMap,
}

/// One captured column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Semantic type.
    pub kind: ColumnKind,
    /// Whether the column accepts NULL.
    pub nullable: bool,
    /// The column's default, converted to its kind (schemas declare it, as Debezium's do).
    pub default: Option<Value>,
    /// Declared length in characters of a bounded text column (`varchar(n)`, `char(n)`), when
    /// known: a hash mask is cut to it, as Debezium's is.
    pub length: Option<u32>,
}

/// The shape of a captured table at one point of its history.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    /// The table.
    pub id: TableId,
    /// Captured columns in table order.
    pub columns: Vec<Column>,
    /// Indexes into `columns` of the key columns, in key order (empty: no key).
    pub key: Vec<usize>,
}

impl TableSchema {
    /// The column list and the `ORDER BY` clause (by key, empty without a key) of a snapshot
    /// `SELECT`, with identifiers quoted by `quote`.
    pub fn select_parts(&self, quote: impl Fn(&str) -> String) -> (String, String) {
        let cols: Vec<String> = self.columns.iter().map(|c| quote(&c.name)).collect();
        let order = if self.key.is_empty() {
            String::new()
        } else {
            let key: Vec<&str> = self.key.iter().map(|i| cols[*i].as_str()).collect();
            format!(" ORDER BY {}", key.join(", "))
        };
        (cols.join(", "), order)
    }
}

/// A decimal number: unscaled value as big-endian two's complement, and its scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    /// Unscaled value, big-endian two's complement, minimal length.
    pub unscaled: Vec<u8>,
    /// Number of digits after the decimal point.
    pub scale: u32,
}

impl Decimal {
    /// A decimal from ASCII digits (integer and fraction digits run together), a sign and
    /// the number of fraction digits.
    pub fn from_digits(digits: &[u8], negative: bool, scale: u32) -> Self {
        Decimal {
            unscaled: twos_complement(digits, negative),
            scale,
        }
    }

    /// A decimal from its unscaled value (minimal big-endian two's complement, as
    /// [`Decimal::from_digits`] gives).
    pub fn from_i128(unscaled: i128, scale: u32) -> Self {
        let bytes = unscaled.to_be_bytes();
        // Drop leading bytes that only repeat the sign of the next one.
        let mut start = 0;
        while start < 15 {
            let (b, next) = (bytes[start], bytes[start + 1]);
            if (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
                start += 1;
            } else {
                break;
            }
        }
        Decimal {
            unscaled: bytes[start..].to_vec(),
            scale,
        }
    }
}

impl Decimal {
    /// The number in plain notation with exactly `scale` fraction digits (Java's
    /// `BigDecimal.toPlainString`: unscaled 150 at scale 2 is `1.50`).
    pub fn to_plain_string(&self) -> String {
        let negative = self.unscaled.first().is_some_and(|b| b & 0x80 != 0);
        let mut mag = self.unscaled.clone();
        if negative {
            // Two's complement negation: invert, then add one from the least significant byte.
            for b in mag.iter_mut() {
                *b = !*b;
            }
            for b in mag.iter_mut().rev() {
                let (v, carry) = b.overflowing_add(1);
                *b = v;
                if !carry {
                    break;
                }
            }
        }
        // Base-10^9 chunks, least significant first, by repeated division.
        const BASE: u64 = 1_000_000_000;
        let mut chunks: Vec<u32> = Vec::new();
        let mut start = 0;
        while start < mag.len() {
            let mut rem: u64 = 0;
            for b in mag[start..].iter_mut() {
                let cur = (rem << 8) | u64::from(*b);
                *b = (cur / BASE) as u8;
                rem = cur % BASE;
            }
            chunks.push(rem as u32);
            while start < mag.len() && mag[start] == 0 {
                start += 1;
            }
        }
        let mut digits = match chunks.split_last() {
            None => "0".to_string(),
            Some((top, rest)) => {
                let mut d = top.to_string();
                for c in rest.iter().rev() {
                    d.push_str(&format!("{c:09}"));
                }
                d
            }
        };
        let scale = self.scale as usize;
        if scale > 0 {
            if digits.len() <= scale {
                digits = format!("{}{digits}", "0".repeat(scale + 1 - digits.len()));
            }
            digits.insert(digits.len() - scale, '.');
        }
        if negative {
            digits.insert(0, '-');
        }
        digits
    }
}

/// Big-endian two's complement of a decimal digit string, minimal length (as Java's
/// `BigInteger.toByteArray`).
pub fn twos_complement(digits: &[u8], negative: bool) -> Vec<u8> {
    // Magnitude in 64-bit limbs, little-endian: 19 digits at a time (10^19 < 2^64), so a
    // 130,000-digit numeric takes ~150 times less work than digit by digit into bytes.
    const CHUNK: usize = 19;
    let mut limbs: Vec<u64> = Vec::with_capacity(digits.len() / CHUNK + 1);
    for chunk in digits.chunks(CHUNK) {
        let scale = 10u64.pow(chunk.len() as u32);
        let value = chunk.iter().fold(0u64, |acc, d| {
            acc * 10 + u64::from(d.wrapping_sub(b'0') % 10)
        });
        let mut carry = u128::from(value);
        for limb in limbs.iter_mut() {
            let v = u128::from(*limb) * u128::from(scale) + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
        if carry > 0 {
            limbs.push(carry as u64);
        }
    }
    signed_be(
        limbs.iter().flat_map(|l| l.to_le_bytes()).collect(),
        negative,
    )
}

/// A little-endian magnitude as minimal big-endian two's complement.
fn signed_be(mut mag: Vec<u8>, negative: bool) -> Vec<u8> {
    while mag.last() == Some(&0) {
        mag.pop();
    }
    if mag.is_empty() {
        return vec![0];
    }
    if negative {
        // Invert and add one.
        let mut carry = 1u16;
        for byte in mag.iter_mut() {
            let v = (!*byte) as u16 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        if mag.last().is_some_and(|b| b & 0x80 == 0) {
            mag.push(0xff);
        }
        // Drop redundant sign bytes.
        while mag.len() > 1 && mag[mag.len() - 1] == 0xff && mag[mag.len() - 2] & 0x80 != 0 {
            mag.pop();
        }
    } else if mag.last().is_some_and(|b| b & 0x80 != 0) {
        mag.push(0);
    }
    mag.reverse();
    mag
}

/// UTF-8 text in reference-counted bytes (`Deref<Target = str>`; `From<String>` and
/// `From<&str>`).
pub type Text = bytestring::ByteString;

/// One field of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL (or a value the column kind cannot represent, such as NaN in a decimal).
    Null,
    /// A value the source did not send (unchanged TOASTed column).
    Unavailable,
    /// Boolean.
    Bool(bool),
    /// Any integer, including dates (days), times and timestamps in the column's unit.
    Int(i64),
    /// Floating point.
    Float(f64),
    /// Decimal with its scale.
    Decimal(Decimal),
    /// Text, including the string-typed semantic kinds (JSON, UUID, zoned times, enums).
    /// Held in shared bytes: a text value decoded from a replication message points into
    /// that message instead of being copied (a 100 MB value is in memory once, not twice).
    Text(Text),
    /// Bytes (bytea, bit strings).
    Bytes(Vec<u8>),
    /// Array elements.
    Array(Vec<Value>),
    /// Key/value pairs (a map of strings), in the source's order.
    Map(Vec<(Text, Option<Text>)>),
    /// A spatial value: well-known binary and its spatial reference id.
    Geometry {
        /// Well-known binary.
        wkb: Vec<u8>,
        /// Spatial reference system id.
        srid: Option<i32>,
    },
}

impl Value {
    /// A text value.
    pub fn text(s: impl Into<Text>) -> Value {
        Value::Text(s.into())
    }

    /// About how many bytes the value occupies (for memory bounds, not exact).
    pub fn approx_bytes(&self) -> usize {
        let inline = std::mem::size_of::<Value>();
        inline
            + match self {
                Value::Text(t) => t.len(),
                Value::Bytes(b) => b.len(),
                Value::Decimal(d) => d.unscaled.len(),
                Value::Array(a) => a.iter().map(Value::approx_bytes).sum(),
                Value::Geometry { wkb, .. } => wkb.len(),
                Value::Map(pairs) => pairs
                    .iter()
                    .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()) + 16)
                    .sum(),
                Value::Null
                | Value::Unavailable
                | Value::Bool(_)
                | Value::Int(_)
                | Value::Float(_) => 0,
            }
    }
}

/// About how many bytes a row image occupies.
pub fn row_bytes(row: &Option<Vec<Value>>) -> usize {
    row.as_ref()
        .map_or(0, |r| r.iter().map(Value::approx_bytes).sum())
}

/// Which part of a snapshot an event belongs to (`source.snapshot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMarker {
    /// Streamed change.
    False,
    /// First row of the snapshot.
    First,
    /// First row of a table other than the first.
    FirstInDataCollection,
    /// A row inside the snapshot.
    True,
    /// Last row of a table other than the last.
    LastInDataCollection,
    /// Last row of the snapshot.
    Last,
    /// A row of an incremental snapshot chunk.
    Incremental,
}

impl SnapshotMarker {
    /// The string Debezium writes in `source.snapshot`.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotMarker::False => "false",
            SnapshotMarker::First => "first",
            SnapshotMarker::FirstInDataCollection => "first_in_data_collection",
            SnapshotMarker::True => "true",
            SnapshotMarker::LastInDataCollection => "last_in_data_collection",
            SnapshotMarker::Last => "last",
            SnapshotMarker::Incremental => "incremental",
        }
    }
}

/// Source-specific facts of the `source` block.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceDetail {
    /// PostgreSQL: transaction id, LSNs.
    Postgres {
        /// Transaction id.
        tx_id: Option<i64>,
        /// LSN of this change.
        lsn: Option<u64>,
        /// Commit LSN of the last transaction completed before this one.
        last_commit_lsn: Option<u64>,
        /// Replication origin of the transaction, when it has one.
        origin: Option<Arc<str>>,
        /// Commit LSN on the origin server.
        origin_lsn: Option<u64>,
    },
    /// MySQL and MariaDB: binlog coordinates, shared by the rows of one rows event, and the
    /// row's index in it.
    Mysql {
        /// What the rows of one rows event share.
        shared: Arc<MysqlDetail>,
        /// Row index within its rows event.
        row: u32,
    },
}

impl SourceDetail {
    /// The connector name of `source.connector`.
    pub fn connector(&self) -> &'static str {
        match self {
            SourceDetail::Postgres { .. } => "postgresql",
            SourceDetail::Mysql { shared, .. } => shared.flavor.connector(),
        }
    }
}

/// Which server a MySQL-protocol source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MysqlFlavor {
    /// MySQL (`source.connector = mysql`).
    Mysql,
    /// MariaDB (`source.connector = mariadb`).
    Mariadb,
}

impl MysqlFlavor {
    /// The connector name Debezium writes.
    pub fn connector(self) -> &'static str {
        match self {
            MysqlFlavor::Mysql => "mysql",
            MysqlFlavor::Mariadb => "mariadb",
        }
    }
}

/// MySQL / MariaDB facts of the `source` block.
#[derive(Debug, Clone, PartialEq)]
pub struct MysqlDetail {
    /// Server kind.
    pub flavor: MysqlFlavor,
    /// Server id that wrote the event.
    pub server_id: u32,
    /// This transaction's GTID.
    pub gtid: Option<Arc<str>>,
    /// Binlog file.
    pub file: Arc<str>,
    /// Position of the event.
    pub pos: u64,
    /// Session thread id, when known.
    pub thread: Option<u32>,
    /// The statement, when captured.
    pub query: Option<Arc<str>>,
}

/// Where and when a change happened (the `source` block).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceMeta {
    /// Database time of the change in microseconds since the epoch.
    pub ts_us: i64,
    /// Snapshot marker.
    pub snapshot: SnapshotMarker,
    /// Database name.
    pub db: Arc<str>,
    /// Source-specific facts.
    pub detail: SourceDetail,
}

/// A logical decoding message (`pg_logical_emit_message`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogicalMessage {
    /// Application-chosen prefix.
    pub prefix: String,
    /// Message body.
    pub content: Vec<u8>,
}

/// The `transaction` block of a data event (`provide_transaction_metadata`).
#[derive(Debug, Clone, PartialEq)]
pub struct TxBlock {
    /// Transaction id.
    pub id: Arc<str>,
    /// Position of the event among the transaction's published events (1-based).
    pub total_order: i64,
    /// Position of the event among the transaction's events of its table (1-based).
    pub data_collection_order: i64,
}

/// A transaction boundary record.
#[derive(Debug, Clone, PartialEq)]
pub struct TxMeta {
    /// `BEGIN` (true) or `END` (false).
    pub begin: bool,
    /// Transaction id.
    pub id: Arc<str>,
    /// Events published for it (END only).
    pub event_count: i64,
    /// Per table (`schema.table`), events published (END only).
    pub data_collections: Vec<(String, i64)>,
    /// Commit time, milliseconds since the epoch.
    pub ts_ms: i64,
}

/// A DDL statement (MySQL / MariaDB), published on the `<topic_prefix>` topic.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaChange {
    /// The statement's database.
    pub database: String,
    /// The statement text.
    pub ddl: String,
    /// Where and when.
    pub source: SourceMeta,
    /// The position to commit once it is acknowledged.
    pub position: SourcePosition,
    /// The tables the statement created, altered or dropped, as the catalog describes them
    /// right after it (Debezium's `tableChanges`).
    pub table_changes: Vec<TableChange>,
}

/// A Debezium notification (`io.debezium.connector.common.Notification`), published on the
/// connector's `[notifications] topic`.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// For incremental snapshots, the id of the signal that started it.
    pub id: String,
    /// `Incremental Snapshot`.
    pub aggregate_type: &'static str,
    /// `STARTED`, `PAUSED`, `RESUMED`, `ABORTED`, `IN_PROGRESS`, `TABLE_SCAN_COMPLETED`,
    /// `COMPLETED`.
    pub kind: &'static str,
    /// Details (`connector_name`, `data_collections`, ...).
    pub additional_data: Vec<(String, String)>,
    /// When, milliseconds since the epoch.
    pub timestamp_ms: i64,
}

/// One table a DDL statement changed (Debezium's `io.debezium.connector.schema.Change`).
#[derive(Debug, Clone, PartialEq)]
pub struct TableChange {
    /// `CREATE`, `ALTER` or `DROP`.
    pub kind: &'static str,
    /// The table.
    pub id: TableId,
    /// Its definition (`None`: not known, as for a table dropped before Sluice saw it).
    pub table: Option<TableDefinition>,
}

/// A table's definition from the catalog (Debezium's `io.debezium.connector.schema.Table`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableDefinition {
    /// The table's default character set.
    pub default_charset: Option<String>,
    /// Primary key columns, in key order.
    pub primary_key: Vec<String>,
    /// Columns in table order.
    pub columns: Vec<ColumnDefinition>,
    /// The table's comment.
    pub comment: Option<String>,
}

/// One column of a [`TableDefinition`] (Debezium's `io.debezium.connector.schema.Column`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ColumnDefinition {
    /// The column name.
    pub name: String,
    /// The `java.sql.Types` code Debezium gives the type.
    pub jdbc_type: i32,
    /// The type's name (`INT UNSIGNED`, `VARCHAR`).
    pub type_name: String,
    /// Character set of text columns.
    pub charset: Option<String>,
    /// Length, precision, display width or fractional seconds, as declared.
    pub length: Option<i32>,
    /// Scale of fixed-point (and `FLOAT(M,D)`) columns.
    pub scale: Option<i32>,
    /// 1-based position.
    pub position: i32,
    /// Nullable.
    pub optional: bool,
    /// `AUTO_INCREMENT`.
    pub auto_incremented: bool,
    /// The column's comment.
    pub comment: Option<String>,
    /// The default's expression, as the catalog states it (unquoted literals).
    pub default_expression: Option<String>,
    /// Whether a default is declared.
    pub has_default: bool,
    /// `ENUM` / `SET` labels.
    pub enum_values: Option<Vec<String>>,
}

/// One change to publish.
#[derive(Debug, Clone)]
pub struct ChangeEvent {
    /// What happened.
    pub op: Op,
    /// The table's schema at the time of the change (`None` for messages).
    pub table: Option<Arc<TableSchema>>,
    /// Old row image, in `table.columns` order.
    pub before: Option<Vec<Value>>,
    /// New row image, in `table.columns` order.
    pub after: Option<Vec<Value>>,
    /// Where and when.
    pub source: SourceMeta,
    /// Logical message body for `Op::Message`.
    pub message: Option<LogicalMessage>,
    /// Transaction metadata block, when enabled.
    pub transaction: Option<TxBlock>,
    /// The position to commit once this event (and all before it) is acknowledged.
    pub position: SourcePosition,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn decimals_print_as_plain_strings() {
        let d = |digits: &str, negative: bool, scale: u32| {
            Decimal::from_digits(digits.as_bytes(), negative, scale).to_plain_string()
        };
        assert_eq!(d("150", false, 2), "1.50");
        assert_eq!(d("150", true, 2), "-1.50");
        assert_eq!(d("5", false, 3), "0.005");
        assert_eq!(d("5", true, 3), "-0.005");
        assert_eq!(d("0", false, 2), "0.00");
        assert_eq!(d("128", true, 0), "-128");
        assert_eq!(d("255", false, 0), "255");
        let big = "123456789012345678901234567890123456789";
        assert_eq!(
            d(big, true, 10),
            "-12345678901234567890123456789.0123456789"
        );
        assert_eq!(d(big, false, 0), big);
    }

    /// Digit by digit into base-256 bytes: obviously right, quadratic.
    fn reference(digits: &[u8], negative: bool) -> Vec<u8> {
        let mut mag: Vec<u8> = Vec::new();
        for d in digits {
            let mut carry = (d - b'0') as u32;
            for byte in mag.iter_mut() {
                let v = *byte as u32 * 10 + carry;
                *byte = v as u8;
                carry = v >> 8;
            }
            while carry > 0 {
                mag.push(carry as u8);
                carry >>= 8;
            }
        }
        // The sign step is shared; the magnitude is what is checked.
        signed_be(mag, negative)
    }

    #[test]
    fn twos_complement_known_values() {
        assert_eq!(twos_complement(b"0", false), [0]);
        assert_eq!(twos_complement(b"000", true), [0]);
        assert_eq!(twos_complement(b"127", false), [0x7f]);
        assert_eq!(twos_complement(b"128", false), [0, 0x80]);
        assert_eq!(twos_complement(b"255", false), [0, 0xff]);
        assert_eq!(twos_complement(b"1", true), [0xff]);
        assert_eq!(twos_complement(b"128", true), [0x80]);
        assert_eq!(twos_complement(b"129", true), [0xff, 0x7f]);
        assert_eq!(
            twos_complement(b"18446744073709551616", false),
            [1, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn twos_complement_equals_the_digit_by_digit_reference() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(99);
        for _ in 0..3_000 {
            let len = rng.random_range(1..120);
            let digits: Vec<u8> = (0..len).map(|_| b'0' + rng.random_range(0..10u8)).collect();
            let negative = rng.random_bool(0.5);
            assert_eq!(
                twos_complement(&digits, negative),
                reference(&digits, negative),
                "{} {negative}",
                String::from_utf8_lossy(&digits)
            );
        }
        // Long ones, across many limbs.
        for len in [1000, 4001] {
            let digits: Vec<u8> = (0..len).map(|i| b'0' + (i * 7 % 10) as u8).collect();
            assert_eq!(twos_complement(&digits, true), reference(&digits, true));
        }
    }
}
