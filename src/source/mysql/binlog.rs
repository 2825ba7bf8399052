//! Binlog events: the v4 event header and the bodies Sluice reads, for MySQL and MariaDB.
//!
//! One decoder serves the replication stream (events framed by `mysql_async`, checksum
//! already removed) and binlog files ([`super::file::BinlogFile`], used by tests and fixtures). Every read
//! is bounds-checked: bytes the decoder does not expect give a [`BinlogError`] naming the
//! event type and position, never a panic.
//!
//! Layouts (all integers little-endian unless noted):
//! ```text
//! header   timestamp u32 | type u8 | server_id u32 | event_size u32 | log_pos u32 | flags u16
//! FDE      binlog_version u16 | server_version [50] | created u32 | header_len u8 |
//!          post_header_len[type-1] ... | checksum_alg u8 | crc u32
//! QUERY    thread u32 | exec_time u32 | db_len u8 | error u16 | status_len u16 |
//!          status[status_len] | db[db_len] 0x00 | sql
//! ROTATE   position u64 | file name
//! XID      xid u64
//! GTID(MySQL 33/34) flags u8 | uuid[16] | gno i64 | ...
//! GTID_TAGGED(42)   version u8 | serialization-library message (varlen fields)
//! GTID(MariaDB 162) seq u64 | domain u32 | flags u8 | ...
//! GTID_LIST(163)    count u32 (low 28 bits) | (domain u32, server u32, seq u64)*
//! TRANSACTION_PAYLOAD(40) (type lenenc, length lenenc, value lenenc)* 0 | payload
//! ```

use std::borrow::Cow;

use super::event_type;
pub use super::reader::{BinlogError, Malformed, Reader, Res};

/// The common v4 event header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventHeader {
    /// Seconds since the epoch when the statement began.
    pub timestamp: u32,
    /// Event type code.
    pub type_code: u8,
    /// Server that wrote the event.
    pub server_id: u32,
    /// Whole event size, header and checksum included.
    pub event_size: u32,
    /// Position of the next event (0 for artificial events and inside payloads).
    pub log_pos: u32,
    /// Event flags.
    pub flags: u16,
}

/// Size of the v4 header.
pub const HEADER_LEN: usize = 19;

/// Flag: the event is artificial (sent by the server, not in the file).
pub const LOG_EVENT_ARTIFICIAL_F: u16 = 0x20;

impl EventHeader {
    /// Reads a header (of an event in a binlog file; the stream's come from the driver).
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))]
    pub fn parse(buf: &[u8]) -> Res<EventHeader> {
        let mut r = Reader::new(buf);
        Ok(EventHeader {
            timestamp: r.u32("header timestamp")?,
            type_code: r.u8("header type")?,
            server_id: r.u32("header server_id")?,
            event_size: r.u32("header event_size")?,
            log_pos: r.u32("header log_pos")?,
            flags: r.u16("header flags")?,
        })
    }

    /// Position of this event's start (0 when unknown).
    pub fn start_pos(&self) -> u64 {
        u64::from(self.log_pos).saturating_sub(u64::from(self.event_size))
    }
}

/// What the format description event says about the events that follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatDescription {
    /// Binlog format version (4).
    pub binlog_version: u16,
    /// Server version string.
    pub server_version: String,
    /// Post-header length per event type (index = type − 1).
    pub post_header_lens: Vec<u8>,
    /// Whether events end with a CRC32 checksum.
    pub checksum: bool,
}

impl Default for FormatDescription {
    fn default() -> Self {
        FormatDescription {
            binlog_version: 4,
            server_version: String::new(),
            post_header_lens: Vec::new(),
            checksum: false,
        }
    }
}

impl FormatDescription {
    /// Post-header length of a type, if the FDE lists it.
    pub fn post_header_len(&self, code: u8) -> Option<u8> {
        self.post_header_lens
            .get(usize::from(code).checked_sub(1)?)
            .copied()
    }

    /// Table-id width of table-map and rows events (6, or 4 for very old servers).
    pub fn table_id_len(&self, code: u8) -> usize {
        match self.post_header_len(code) {
            Some(6) => 4,
            _ => 6,
        }
    }

    /// Parses a FORMAT_DESCRIPTION_EVENT body as a file holds it (checksum algorithm and
    /// checksum included, when the server writes them).
    pub fn parse(body: &[u8]) -> Res<FormatDescription> {
        Self::parse_inner(body, true)
    }

    /// Parses a FORMAT_DESCRIPTION_EVENT body whose checksum footer was already removed
    /// (the replication stream's events); `checksum` says what the footer said.
    pub fn parse_stripped(body: &[u8], checksum: bool) -> Res<FormatDescription> {
        let mut fde = Self::parse_inner(body, false)?;
        fde.checksum = checksum;
        Ok(fde)
    }

    fn parse_inner(body: &[u8], with_footer: bool) -> Res<FormatDescription> {
        let mut r = Reader::new(body);
        let binlog_version = r.u16("binlog_version")?;
        let raw_version = r.take(50, "server_version")?;
        let end = raw_version.iter().position(|&b| b == 0).unwrap_or(50);
        let server_version = String::from_utf8_lossy(&raw_version[..end]).into_owned();
        let _created = r.u32("create_timestamp")?;
        let header_len = r.u8("header_length")?;
        if header_len as usize != HEADER_LEN {
            return Err(Malformed(format!(
                "header length {header_len}, only v4 headers of {HEADER_LEN} bytes are supported"
            )));
        }
        let rest = r.take_rest();
        // Servers that checksum (MySQL ≥ 5.6.1, MariaDB ≥ 5.3) end the FDE with the algorithm
        // byte and the event's own CRC32.
        let checksum_aware = version_at_least(&server_version, (5, 6, 1))
            || (server_version.contains("MariaDB") && version_at_least(&server_version, (5, 3, 0)));
        let (lens, checksum) = if with_footer && checksum_aware && rest.len() >= 5 {
            let alg = rest[rest.len() - 5];
            (&rest[..rest.len() - 5], alg == 1)
        } else {
            (rest, false)
        };
        Ok(FormatDescription {
            binlog_version,
            server_version,
            post_header_lens: lens.to_vec(),
            checksum,
        })
    }
}

fn version_at_least(version: &str, want: (u32, u32, u32)) -> bool {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().unwrap_or(0));
    let v = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    v >= want
}

/// A MySQL GTID (`uuid[:tag]:gno`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlGtid {
    /// Source server UUID.
    pub uuid: [u8; 16],
    /// Tag (MySQL 8.4+), if any.
    pub tag: Option<String>,
    /// Transaction number.
    pub gno: u64,
}

impl std::fmt::Display for MysqlGtid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_uuid(&self.uuid))?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        write!(f, ":{}", self.gno)
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A MariaDB GTID (`domain-server-seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MariaGtid {
    /// Replication domain.
    pub domain: u32,
    /// Server that originated the transaction.
    pub server_id: u32,
    /// Sequence number.
    pub seq: u64,
}

impl std::fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server_id, self.seq)
    }
}

/// The rows-event kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsKind {
    /// Inserted rows.
    Write,
    /// Updated rows (before and after images).
    Update,
    /// Deleted rows.
    Delete,
}

/// A rows event, its rows still encoded (they need their table map).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowsEvent<'a> {
    /// Which kind.
    pub kind: RowsKind,
    /// Table map id.
    pub table_id: u64,
    /// Rows-event flags (bit 0: end of statement).
    pub flags: u16,
    /// `PARTIAL_UPDATE_ROWS_EVENT` (JSON diffs in the after image).
    pub partial: bool,
    /// Column count, bitmaps and rows.
    pub body: &'a [u8],
}

/// A decoded event body.
#[derive(Debug, Clone, PartialEq)]
pub enum EventBody<'a> {
    /// The format description (its checksum flag applies to the events after it).
    FormatDescription(FormatDescription),
    /// A switch to another binlog file.
    Rotate {
        /// Position in the new file.
        position: u64,
        /// New file name.
        file: String,
    },
    /// A statement (`BEGIN`, `COMMIT`, DDL, ...).
    Query {
        /// Session thread id.
        thread_id: u32,
        /// Default database.
        db: String,
        /// Statement text.
        sql: Cow<'a, str>,
    },
    /// Transaction commit.
    Xid(u64),
    /// A table map (decoded by [`super::table_map::TableMap::parse`]).
    TableMap(&'a [u8]),
    /// Row changes.
    Rows(RowsEvent<'a>),
    /// MySQL GTID of the next transaction (`None`: anonymous).
    MysqlGtid(Option<MysqlGtid>),
    /// MariaDB GTID of the next transaction; `standalone` means no BEGIN/COMMIT follows
    /// (DDL).
    MariaGtid {
        /// The GTID (server id from the event header).
        gtid: MariaGtid,
        /// Whether the event group is a single statement (DDL) without BEGIN/COMMIT.
        standalone: bool,
    },
    /// MariaDB GTID state at the start of a binlog file.
    MariaGtidList(Vec<MariaGtid>),
    /// MariaDB binlog checkpoint (a file name).
    BinlogCheckpoint(String),
    /// The statement behind the rows events that follow (MariaDB ANNOTATE_ROWS, MySQL
    /// ROWS_QUERY).
    RowsQuery(Cow<'a, str>),
    /// A compressed group of events (MySQL transaction compression).
    TransactionPayload {
        /// Compression type: 0 zstd, 255 none.
        compression: u64,
        /// Declared uncompressed size.
        uncompressed_size: u64,
        /// The payload bytes.
        payload: &'a [u8],
    },
    /// Keep-alive from the server.
    Heartbeat,
    /// Server stopped.
    Stop,
    /// An event Sluice has no use for.
    Ignored,
}

/// Decodes one event body (the bytes after the header, checksum removed).
pub fn decode_body<'a>(
    fde: &FormatDescription,
    header: &EventHeader,
    body: &'a [u8],
) -> Res<EventBody<'a>> {
    use event_type::*;
    let mut r = Reader::new(body);
    let code = header.type_code;
    Ok(match code {
        FORMAT_DESCRIPTION => EventBody::FormatDescription(FormatDescription::parse(body)?),
        ROTATE => {
            let position = r.u64("position")?;
            let file = String::from_utf8_lossy(r.take_rest()).into_owned();
            EventBody::Rotate { position, file }
        }
        QUERY => parse_query(fde, &mut r)?,
        XID => EventBody::Xid(r.u64("xid")?),
        TABLE_MAP => EventBody::TableMap(body),
        WRITE_ROWS_V1 | UPDATE_ROWS_V1 | DELETE_ROWS_V1 | WRITE_ROWS | UPDATE_ROWS
        | DELETE_ROWS | PARTIAL_UPDATE_ROWS => parse_rows(fde, code, &mut r)?,
        WRITE_ROWS_V0..=DELETE_ROWS_V0 => {
            return Err(Malformed(
                "version 0 rows events (MySQL 5.1.15 and older) are not supported".into(),
            ))
        }
        GTID | ANONYMOUS_GTID => {
            let _flags = r.u8("gtid flags")?;
            let uuid: [u8; 16] = r.take(16, "gtid uuid")?.try_into().expect("16 bytes");
            let gno = r.u64("gtid gno")?;
            if code == ANONYMOUS_GTID {
                EventBody::MysqlGtid(None)
            } else {
                EventBody::MysqlGtid(Some(MysqlGtid {
                    uuid,
                    tag: None,
                    gno,
                }))
            }
        }
        GTID_TAGGED => EventBody::MysqlGtid(Some(parse_tagged_gtid(&mut r)?)),
        MARIADB_GTID => {
            let seq = r.u64("gtid sequence")?;
            let domain = r.u32("gtid domain")?;
            let flags = r.u8("gtid flags")?;
            EventBody::MariaGtid {
                gtid: MariaGtid {
                    domain,
                    server_id: header.server_id,
                    seq,
                },
                standalone: flags & 1 != 0,
            }
        }
        MARIADB_GTID_LIST => parse_gtid_list(&mut r)?,
        MARIADB_BINLOG_CHECKPOINT => {
            let len = r.u32("checkpoint name length")? as usize;
            let name = r.take(len, "checkpoint file name")?;
            EventBody::BinlogCheckpoint(String::from_utf8_lossy(name).into_owned())
        }
        MARIADB_ANNOTATE_ROWS => EventBody::RowsQuery(String::from_utf8_lossy(body)),
        ROWS_QUERY => {
            // One length byte (often truncated for long statements), then the statement.
            let _len = r.u8("rows query length")?;
            EventBody::RowsQuery(String::from_utf8_lossy(r.take_rest()))
        }
        TRANSACTION_PAYLOAD => parse_payload(&mut r)?,
        MARIADB_QUERY_COMPRESSED | MARIADB_WRITE_ROWS_COMPRESSED_V1..=MARIADB_DELETE_ROWS_COMPRESSED => {
            return Err(Malformed(
                "MariaDB binlog compression (log_bin_compress) is not supported: set log_bin_compress = OFF"
                    .into(),
            ))
        }
        MARIADB_START_ENCRYPTION => {
            return Err(Malformed(
                "encrypted binlogs cannot be read by a replica client; read them through the server"
                    .into(),
            ))
        }
        HEARTBEAT | HEARTBEAT_V2 => EventBody::Heartbeat,
        STOP => EventBody::Stop,
        _ => EventBody::Ignored,
    })
}

/// A QUERY event's body: thread, default database, statement.
fn parse_query<'a>(fde: &FormatDescription, r: &mut Reader<'a>) -> Res<EventBody<'a>> {
    use event_type::*;
    let thread_id = r.u32("thread_id")?;
    let _exec = r.u32("exec_time")?;
    let db_len = r.u8("db length")? as usize;
    let _err = r.u16("error_code")?;
    let status_len = match fde.post_header_len(QUERY) {
        Some(11) => 0,
        _ => r.u16("status_vars length")? as usize,
    };
    r.take(status_len, "status vars")?;
    let db = String::from_utf8_lossy(r.take(db_len, "database name")?).into_owned();
    r.take(1, "database name terminator")?;
    Ok(EventBody::Query {
        thread_id,
        db,
        sql: String::from_utf8_lossy(r.take_rest()),
    })
}

/// A rows event's post-header (table id, flags, extra data); the rows stay undecoded.
fn parse_rows<'a>(fde: &FormatDescription, code: u8, r: &mut Reader<'a>) -> Res<EventBody<'a>> {
    use event_type::*;
    let kind = match code {
        WRITE_ROWS_V1 | WRITE_ROWS => RowsKind::Write,
        DELETE_ROWS_V1 | DELETE_ROWS => RowsKind::Delete,
        _ => RowsKind::Update,
    };
    let id_len = fde.table_id_len(code);
    let table_id = r.uint(id_len, "table_id")?;
    let flags = r.u16("rows flags")?;
    if matches!(
        code,
        WRITE_ROWS | UPDATE_ROWS | DELETE_ROWS | PARTIAL_UPDATE_ROWS
    ) {
        let extra = r.u16("extra data length")? as usize;
        if extra < 2 {
            return Err(Malformed(format!("extra data length {extra} below 2")));
        }
        r.take(extra - 2, "extra data")?;
    }
    Ok(EventBody::Rows(RowsEvent {
        kind,
        table_id,
        flags,
        partial: code == PARTIAL_UPDATE_ROWS,
        body: r.rest(),
    }))
}

/// MariaDB's GTID_LIST: the binlog's GTID state at its start.
fn parse_gtid_list<'a>(r: &mut Reader<'a>) -> Res<EventBody<'a>> {
    let count = r.u32("gtid list count")? & 0x0fff_ffff;
    if count as usize > r.remaining() / 16 {
        return Err(Malformed(format!(
            "gtid list of {count} entries exceeds the event"
        )));
    }
    let mut list = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let domain = r.u32("gtid list domain")?;
        let server_id = r.u32("gtid list server")?;
        let seq = r.u64("gtid list seq")?;
        list.push(MariaGtid {
            domain,
            server_id,
            seq,
        });
    }
    Ok(EventBody::MariaGtidList(list))
}

/// A tagged GTID event (MySQL 8.4+): a version byte, then a serialization-library message
/// `size, last_non_ignorable_field, (field_id, value)*`.
fn parse_tagged_gtid(r: &mut Reader<'_>) -> Res<MysqlGtid> {
    let version = r.u8("tagged gtid version")?;
    if version != 2 {
        return Err(Malformed(format!(
            "tagged GTID serialization version {version} is not supported"
        )));
    }
    let before = r.remaining() + 1;
    let size = r.varlen("tagged gtid size")?;
    let _last_non_ignorable = r.varlen("tagged gtid field count")?;
    let used = (before - r.remaining()) as u64;
    let fields_len = size
        .checked_sub(used)
        .ok_or_else(|| Malformed(format!("tagged gtid size {size} below its own header")))?;
    let mut f = Reader::new(r.take(fields_len as usize, "tagged gtid fields")?);
    let mut uuid = [0u8; 16];
    let mut gno = 0u64;
    let mut tag = None;
    while !f.is_empty() {
        match f.varlen("field id")? {
            0 => {
                f.varlen("gtid flags")?;
            }
            1 => {
                for b in uuid.iter_mut() {
                    *b = f.varlen("uuid byte")? as u8;
                }
            }
            2 => gno = f.varlen_signed("gno")?.max(0) as u64,
            3 => {
                let len = f.varlen("tag length")? as usize;
                let raw = f.take(len, "tag")?;
                tag = Some(String::from_utf8_lossy(raw).into_owned());
            }
            4 | 5 => {
                f.varlen_signed("logical clock")?;
            }
            6..=11 => {
                f.varlen("gtid field")?;
            }
            other => {
                // Fields after the last non-ignorable one may be skipped, but without their
                // length the rest cannot be found: stop here, the GTID is complete.
                tracing::debug!(
                    field = other,
                    "unknown tagged GTID field; ignoring the rest"
                );
                break;
            }
        }
    }
    Ok(MysqlGtid {
        uuid,
        tag: tag.filter(|t| !t.is_empty()),
        gno,
    })
}

fn parse_payload<'a>(r: &mut Reader<'a>) -> Res<EventBody<'a>> {
    let mut size = None;
    let mut compression = None;
    let mut uncompressed_size = 0;
    loop {
        let field = r.lenenc("payload header field")?;
        if field == 0 {
            break;
        }
        let len = r.lenenc_len("payload header length")?;
        let mut v = Reader::new(r.take(len, "payload header value")?);
        match field {
            1 => size = Some(v.lenenc("payload size")?),
            2 => compression = Some(v.lenenc("compression type")?),
            3 => uncompressed_size = v.lenenc("uncompressed size")?,
            _ => {}
        }
    }
    let size = size.ok_or_else(|| Malformed("payload header lacks the payload size".into()))?;
    let compression =
        compression.ok_or_else(|| Malformed("payload header lacks the compression type".into()))?;
    if size > r.remaining() as u64 {
        return Err(Malformed(format!(
            "payload size {size} exceeds the {} bytes left",
            r.remaining()
        )));
    }
    Ok(EventBody::TransactionPayload {
        compression,
        uncompressed_size,
        payload: r.take(size as usize, "payload")?,
    })
}

/// Uncompresses a transaction payload into a run of events (headers included, no checksums).
pub fn uncompress_payload(
    compression: u64,
    uncompressed_size: u64,
    payload: &[u8],
) -> Res<Vec<u8>> {
    match compression {
        255 => Ok(payload.to_vec()),
        0 => {
            use std::io::Read;
            // Grows with the actual data; the declared size only caps it.
            // One byte past the declared size: more than declared is an error, not cut off.
            let limit = uncompressed_size.min(1 << 30) + 1;
            let decoder = zstd::stream::read::Decoder::new(payload)
                .map_err(|e| Malformed(format!("zstd payload does not uncompress: {e}")))?;
            let mut out = Vec::new();
            decoder
                .take(limit)
                .read_to_end(&mut out)
                .map_err(|e| Malformed(format!("zstd payload does not uncompress: {e}")))?;
            Ok(out)
        }
        other => Err(Malformed(format!(
            "payload compression type {other} is unknown"
        ))),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_gtid_events() {
        let fde = FormatDescription::default();
        let header = EventHeader {
            timestamp: 0,
            type_code: event_type::MARIADB_GTID,
            server_id: 7,
            event_size: 0,
            log_pos: 0,
            flags: 0,
        };
        let mut body = 42u64.to_le_bytes().to_vec();
        body.extend_from_slice(&3u32.to_le_bytes());
        body.push(1);
        assert_eq!(
            decode_body(&fde, &header, &body),
            Ok(EventBody::MariaGtid {
                gtid: MariaGtid {
                    domain: 3,
                    server_id: 7,
                    seq: 42
                },
                standalone: true
            })
        );
        for cut in 0..body.len() {
            assert!(decode_body(&fde, &header, &body[..cut]).is_err());
        }
        let list_header = EventHeader {
            type_code: event_type::MARIADB_GTID_LIST,
            ..header
        };
        let mut list = 1u32.to_le_bytes().to_vec();
        list.extend_from_slice(&0u32.to_le_bytes());
        list.extend_from_slice(&1u32.to_le_bytes());
        list.extend_from_slice(&9u64.to_le_bytes());
        assert_eq!(
            decode_body(&fde, &list_header, &list),
            Ok(EventBody::MariaGtidList(vec![MariaGtid {
                domain: 0,
                server_id: 1,
                seq: 9
            }]))
        );
        // A count that the event cannot hold.
        let mut huge = 0x0fff_ffffu32.to_le_bytes().to_vec();
        huge.extend_from_slice(&[0; 16]);
        assert!(decode_body(&fde, &list_header, &huge).is_err());
    }
}
