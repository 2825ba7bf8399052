//! Decodes a whole binlog file with the streaming decoder: every event, table map and row.
//! Used by the fixture tests and handy for looking into a binlog. Also the file framing:
//! magic, event sizes, CRC-32 checksums, and the events inside transaction payloads.

use std::collections::HashMap;

use super::binlog::{decode_body, EventBody, EventHeader, FormatDescription, RowsKind, HEADER_LEN};
use super::event_type;
use super::payload::{payload_events, RawEvent};
use super::plan::RowDecoder;
use super::reader::{crc32, BinlogError, Malformed};
use super::table_map::TableMap;
use crate::event::{TableId, Value};

/// One row change read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRow {
    /// The table.
    pub table: TableId,
    /// Column names.
    pub columns: Vec<String>,
    /// Insert, update or delete.
    pub kind: RowsKind,
    /// Old image.
    pub before: Option<Vec<Value>>,
    /// New image.
    pub after: Option<Vec<Value>>,
    /// The GTID of its transaction.
    pub gtid: Option<String>,
}

/// What a file holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileContents {
    /// Events read.
    pub events: usize,
    /// Row changes, in order.
    pub rows: Vec<FileRow>,
    /// GTIDs, in order.
    pub gtids: Vec<String>,
    /// Statements of QUERY events, in order.
    pub queries: Vec<String>,
    /// The server version of the format description.
    pub server_version: String,
}

/// Reads every event of a binlog file's bytes.
pub fn read_file(name: &str, data: &[u8]) -> Result<FileContents, BinlogError> {
    let mut file = BinlogFile::new(name, data)?;
    let mut out = FileContents::default();
    let mut maps: HashMap<u64, RowDecoder> = HashMap::new();
    let mut gtid: Option<String> = None;
    while let Some(ev) = file.next()? {
        out.events += 1;
        let code = ev.header.type_code;
        let body = decode_body(&file.fde, &ev.header, &ev.body)
            .map_err(|e| e.at(code, file.name(), ev.pos))?;
        match body {
            EventBody::FormatDescription(f) => out.server_version = f.server_version,
            EventBody::MysqlGtid(g) => {
                gtid = g.map(|g| g.to_string());
                out.gtids.extend(gtid.clone());
            }
            EventBody::MariaGtid { gtid: g, .. } => {
                gtid = Some(g.to_string());
                out.gtids.push(g.to_string());
            }
            EventBody::Query { sql, .. } => out.queries.push(sql.into_owned()),
            EventBody::TableMap(raw) => {
                let map = TableMap::parse(raw, file.fde.table_id_len(code))
                    .map_err(|e| e.at(code, file.name(), ev.pos))?;
                let decoder = RowDecoder::new(&map, &HashMap::new())
                    .map_err(|e| e.at(code, file.name(), ev.pos))?;
                maps.insert(map.table_id, decoder);
            }
            EventBody::Rows(rows) => {
                let decoder = maps.get(&rows.table_id).ok_or_else(|| {
                    Malformed(format!(
                        "rows event for table id {} without a table map",
                        rows.table_id
                    ))
                    .at(code, file.name(), ev.pos)
                })?;
                let columns: Vec<String> = decoder
                    .schema
                    .columns
                    .iter()
                    .map(|c| c.name.clone())
                    .collect();
                decoder
                    .rows(&rows, |change| {
                        out.rows.push(FileRow {
                            table: decoder.schema.id.clone(),
                            columns: columns.clone(),
                            kind: rows.kind,
                            before: change.before,
                            after: change.after,
                            gtid: gtid.clone(),
                        })
                    })
                    .map_err(|e| e.at(code, file.name(), ev.pos))?;
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Reads events from a binlog file held in memory (tests, fixtures, tools).
pub struct BinlogFile<'a> {
    name: String,
    data: &'a [u8],
    offset: usize,
    /// The current format description.
    pub fde: FormatDescription,
    /// Events of an uncompressed transaction payload still to hand out.
    pending: std::collections::VecDeque<RawEvent>,
}

/// The four bytes every binlog file starts with.
pub const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];

impl<'a> BinlogFile<'a> {
    /// Opens a binlog file's bytes.
    pub fn new(name: &str, data: &'a [u8]) -> Result<Self, BinlogError> {
        if data.len() < 4 || data[..4] != MAGIC {
            return Err(Malformed(
                "not a binlog file: the magic bytes \\xfebin are missing".into(),
            )
            .at(0, name, 0));
        }
        Ok(BinlogFile {
            name: name.to_string(),
            data,
            offset: 4,
            fde: FormatDescription::default(),
            pending: Default::default(),
        })
    }

    /// The next event, `None` at the end of the file.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<RawEvent>, BinlogError> {
        if let Some(ev) = self.pending.pop_front() {
            return Ok(Some(ev));
        }
        let rest = &self.data[self.offset..];
        if rest.is_empty() {
            return Ok(None);
        }
        let pos = self.offset as u64;
        let header = EventHeader::parse(rest).map_err(|e| e.at(0, &self.name, pos))?;
        let code = header.type_code;
        let size = header.event_size as usize;
        if size < HEADER_LEN || size > rest.len() {
            return Err(Malformed(format!(
                "event size {size} but {} bytes remain in the file",
                rest.len()
            ))
            .at(code, &self.name, pos));
        }
        let whole = &rest[..size];
        let is_fde = code == event_type::FORMAT_DESCRIPTION;
        let fde = if is_fde {
            FormatDescription::parse(&whole[HEADER_LEN..])
                .map_err(|e| e.at(code, &self.name, pos))?
        } else {
            self.fde.clone()
        };
        let body =
            if fde.checksum {
                if size < HEADER_LEN + 4 {
                    return Err(Malformed("event too short for its checksum".into())
                        .at(code, &self.name, pos));
                }
                let (data, sum) = whole.split_at(size - 4);
                let mut data = data.to_vec();
                // The in-use flag of the first FDE is cleared when the checksum is computed.
                if is_fde {
                    data[17] &= !0x01;
                }
                let want = u32::from_le_bytes(sum.try_into().expect("4 bytes"));
                if crc32(&data) != want {
                    return Err(Malformed("checksum mismatch (corrupt event)".into())
                        .at(code, &self.name, pos));
                }
                &whole[HEADER_LEN..size - 4]
            } else {
                &whole[HEADER_LEN..]
            };
        self.offset += size;
        if is_fde {
            self.fde = fde;
        }
        if code == event_type::TRANSACTION_PAYLOAD {
            if let EventBody::TransactionPayload {
                compression,
                uncompressed_size,
                payload,
            } = decode_body(&self.fde, &header, body).map_err(|e| e.at(code, &self.name, pos))?
            {
                self.pending = payload_events(compression, uncompressed_size, payload)
                    .map_err(|e| e.at(code, &self.name, pos))?;
            }
        }
        Ok(Some(RawEvent {
            pos,
            header,
            body: body.to_vec(),
        }))
    }

    /// The file name given when opened.
    pub fn name(&self) -> &str {
        &self.name
    }
}
