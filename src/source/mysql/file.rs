//! Decodes a whole binlog file with the streaming decoder: every event, table map and row.
//! Used by the fixture tests and handy for looking into a binlog.

use std::collections::HashMap;

use super::binlog::{decode_body, BinlogError, BinlogFile, EventBody, RowsKind};
use super::table_map::{RowDecoder, TableMap};
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
                    super::binlog::Malformed(format!(
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
