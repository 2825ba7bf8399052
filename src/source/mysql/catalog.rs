//! Everything Sluice asks a MySQL / MariaDB server in SQL: binlog coordinates, GTID state,
//! captured tables, and table shapes from `information_schema` (for the snapshot, which has
//! no table map, and for the facts a table map lacks).

use std::collections::HashMap;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use super::plan::{ColumnDefault, ColumnHint};
use super::table_map::{col, MapColumn, TableMap};
use super::MyError;
use crate::config::{MysqlConfig, TypesConfig};
use crate::event::{MysqlFlavor, TableId};

/// Quotes an identifier with backticks.
pub fn quote(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

pub(super) fn text(row: &Row, i: usize) -> Option<String> {
    match row.as_ref(i)? {
        mysql_async::Value::NULL => None,
        mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

fn number(row: &Row, i: usize) -> Option<u64> {
    text(row, i).and_then(|s| s.parse().ok())
}

/// The current binlog file and position (`SHOW MASTER STATUS`).
pub async fn master_status(conn: &mut Conn) -> Result<(String, u64), MyError> {
    let rows: Vec<Row> = match conn.query("SHOW MASTER STATUS").await {
        Ok(r) => r,
        // MySQL 8.4 renamed it.
        Err(mysql_async::Error::Server(s)) if s.code == 1064 => conn
            .query("SHOW BINARY LOG STATUS")
            .await
            .map_err(MyError::query)?,
        Err(e) => return Err(MyError::query(e)),
    };
    let row = rows.first().ok_or_else(|| {
        MyError::setup(
            "SHOW MASTER STATUS returned nothing: the binlog is off; start the server with log_bin",
        )
    })?;
    let file = text(row, 0).unwrap_or_default();
    let pos = number(row, 1).unwrap_or(4);
    Ok((file, pos))
}

/// Opens a read-only consistent-snapshot transaction and returns the binlog position its
/// view corresponds to (MariaDB's `binlog_snapshot_file` / `binlog_snapshot_position`):
/// every transaction before it is visible to the view, none after it. `None` on servers
/// without these (MySQL), the transaction still open.
pub async fn consistent_read(conn: &mut Conn) -> Result<Option<(String, u64)>, MyError> {
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .await
        .map_err(MyError::query)?;
    let rows: Vec<Row> = conn
        .query("SHOW SESSION STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(MyError::query)?;
    let mut file = None;
    let mut pos = None;
    for row in &rows {
        match text(row, 0).as_deref() {
            Some("Binlog_snapshot_file") | Some("binlog_snapshot_file") => file = text(row, 1),
            Some("Binlog_snapshot_position") | Some("binlog_snapshot_position") => {
                pos = number(row, 1)
            }
            _ => {}
        }
    }
    Ok(match (file, pos) {
        (Some(f), Some(p)) if !f.is_empty() => Some((f, p)),
        _ => None,
    })
}

/// The GTID state: MariaDB `@@gtid_binlog_pos`, MySQL `@@gtid_executed` (`None` when empty).
pub async fn gtid_state(conn: &mut Conn, flavor: MysqlFlavor) -> Result<Option<String>, MyError> {
    let sql = match flavor {
        MysqlFlavor::Mariadb => "SELECT @@GLOBAL.gtid_binlog_pos",
        MysqlFlavor::Mysql => "SELECT @@GLOBAL.gtid_executed",
    };
    let v: Option<Option<String>> = conn.query_first(sql).await.map_err(MyError::query)?;
    Ok(v.flatten()
        .map(|s| s.replace(['\n', ' '], ""))
        .filter(|s| !s.is_empty()))
}

/// Whether a binlog file is still on the server (`SHOW BINARY LOGS`).
pub async fn binlog_exists(conn: &mut Conn, file: &str) -> Result<bool, MyError> {
    let rows: Vec<Row> = conn
        .query("SHOW BINARY LOGS")
        .await
        .map_err(MyError::query)?;
    Ok(rows.iter().any(|r| text(r, 0).as_deref() == Some(file)))
}

/// The captured tables that exist, in name order.
pub async fn captured_tables(conn: &mut Conn, my: &MysqlConfig) -> Result<Vec<TableId>, MyError> {
    let rows: Vec<Row> = conn
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' \
             AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') \
             ORDER BY TABLE_SCHEMA, TABLE_NAME",
        )
        .await
        .map_err(MyError::query)?;
    let mut out = Vec::new();
    for r in rows {
        let (Some(db), Some(name)) = (text(&r, 0), text(&r, 1)) else {
            continue;
        };
        if my.captures(&db, &name) {
            out.push(TableId { schema: db, name });
        }
    }
    Ok(out)
}

/// Tables whose statistics say nothing (`TABLE_ROWS` NULL or 0) are counted when their data
/// is no bigger than this; a bigger one shows no estimate rather than pay a full scan.
/// The engine's row statistic of a table (`TABLE_ROWS`; no count), 0 when unknown: what an
/// incremental snapshot's progress is measured against while the stream runs.
pub async fn table_rows_stat(conn: &mut Conn, t: &TableId) -> i64 {
    conn.exec_first::<Option<u64>, _, _>(
        "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
        (t.schema.as_str(), t.name.as_str()),
    )
    .await
    .ok()
    .flatten()
    .flatten()
    .map_or(0, |n| n as i64)
}

const COUNT_UNDER_BYTES: u64 = 256 << 20;

/// Estimated row count (for snapshot progress): the engine's `TABLE_ROWS`, or a count when
/// it has none and the table is small (read before any lock is taken); 0 when unknown.
pub async fn row_estimate(conn: &mut Conn, t: &TableId) -> i64 {
    let stats = conn
        .exec_first::<(Option<u64>, Option<u64>), _, _>(
            "SELECT TABLE_ROWS, DATA_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (t.schema.as_str(), t.name.as_str()),
        )
        .await
        .ok()
        .flatten();
    match stats {
        Some((Some(rows), _)) if rows > 0 => rows as i64,
        Some((_, size)) if size.unwrap_or(0) <= COUNT_UNDER_BYTES => {
            conn.query_first::<u64, _>(format!(
                "SELECT COUNT(*) FROM {}.{}",
                quote(&t.schema),
                quote(&t.name)
            ))
            .await
            .ok()
            .flatten()
            .unwrap_or(0) as i64
        }
        _ => 0,
    }
}

/// Catalog facts a table map lacks (booleans when asked for, `FLOAT(M,D)`, MariaDB's JSON
/// and UUID columns, character sets, defaults), with the connector's `[types]` choices.
pub async fn hints(
    conn: &mut Conn,
    t: &TableId,
    flavor: MysqlFlavor,
    types: &TypesConfig,
) -> Result<HashMap<String, ColumnHint>, MyError> {
    let mut out: HashMap<String, ColumnHint> = HashMap::new();
    let rows: Vec<Row> = conn
        .exec(
            "SELECT COLUMN_NAME, LOWER(COLUMN_TYPE), LOWER(DATA_TYPE), CHARACTER_SET_NAME, COLUMN_DEFAULT, EXTRA, CAST(CHARACTER_MAXIMUM_LENGTH AS CHAR) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (t.schema.as_str(), t.name.as_str()),
        )
        .await
        .map_err(MyError::query)?;
    for r in rows {
        let (Some(name), Some(ty), Some(data_type)) = (text(&r, 0), text(&r, 1), text(&r, 2))
        else {
            continue;
        };
        let extra = text(&r, 5).unwrap_or_default();
        let hint = ColumnHint {
            boolean: types.tinyint1_as_boolean && ty.starts_with("tinyint(1)"),
            json: false,
            float64: data_type == "float" && ty.contains(','),
            uuid: data_type == "uuid",
            point: data_type == "point",
            charset: text(&r, 3),
            default: column_default(flavor, text(&r, 4), &extra),
            adjust_years: types.time_adjuster,
            unsigned_precise: types.bigint_unsigned_handling_mode
                == crate::config::UnsignedMode::Precise,
            // Bounded text only (char/varchar); text types report huge maxima.
            length: if matches!(data_type.as_str(), "char" | "varchar") {
                text(&r, 6).and_then(|l| l.parse().ok())
            } else {
                None
            },
        };
        out.insert(name, hint);
    }
    if flavor == MysqlFlavor::Mariadb {
        let rows: Vec<Row> = conn
            .exec(
                "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
                (t.schema.as_str(), t.name.as_str()),
            )
            .await
            .map_err(MyError::query)?;
        for r in rows {
            let Some(clause) = text(&r, 0) else { continue };
            if let Some(rest) = clause.strip_prefix("json_valid(`") {
                if let Some(name) = rest.strip_suffix("`)") {
                    out.entry(name.replace("``", "`")).or_default().json = true;
                }
            }
        }
    }
    Ok(out)
}

/// A column's default as `information_schema.COLUMNS` states it: MariaDB quotes literals
/// (`'x''y'`), writes `NULL` for a null default and expressions bare (`current_timestamp()`);
/// MySQL gives literals unquoted and marks expressions `DEFAULT_GENERATED` in `EXTRA`.
pub(super) fn column_default(
    flavor: MysqlFlavor,
    raw: Option<String>,
    extra: &str,
) -> Option<ColumnDefault> {
    let raw = raw?;
    // A bit literal (`b'101'`), as both flavors state a BIT column's default.
    if let Some(bits) = raw
        .strip_prefix("b'")
        .and_then(|r| r.strip_suffix('\''))
        .and_then(|digits| u64::from_str_radix(digits, 2).ok())
    {
        return Some(ColumnDefault::Bits(bits));
    }
    let lower = raw.to_ascii_lowercase();
    let is_now = lower.starts_with("current_timestamp") || lower.starts_with("now(");
    match flavor {
        MysqlFlavor::Mariadb => {
            if let Some(body) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
                Some(ColumnDefault::Literal(unquote_mariadb(body)))
            } else if is_now {
                Some(ColumnDefault::CurrentTimestamp)
            } else if raw.parse::<f64>().is_ok() {
                Some(ColumnDefault::Literal(raw))
            } else {
                // NULL, or an expression Debezium does not evaluate either.
                None
            }
        }
        MysqlFlavor::Mysql => {
            if extra.to_ascii_uppercase().contains("DEFAULT_GENERATED") {
                is_now.then_some(ColumnDefault::CurrentTimestamp)
            } else {
                Some(ColumnDefault::Literal(raw))
            }
        }
    }
}

/// The body of a MariaDB quoted default: `''` is `'`, and backslash escapes as in SQL.
fn unquote_mariadb(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' if chars.peek() == Some(&'\'') => {
                chars.next();
                out.push('\'');
            }
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('0') => out.push('\0'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            other => out.push(other),
        }
    }
    out
}

/// Parses the quoted labels of `enum('a','b')` / `set('a','b')`.
pub(super) fn labels(column_type: &str) -> Vec<String> {
    let Some(start) = column_type.find('(') else {
        return Vec::new();
    };
    let body = &column_type[start + 1..];
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut label = String::new();
        loop {
            match chars.next() {
                Some('\'') if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                Some('\'') | None => break,
                Some('\\') => {
                    if let Some(n) = chars.next() {
                        label.push(n);
                    }
                }
                Some(other) => label.push(other),
            }
        }
        out.push(label);
    }
    out
}

/// Builds the table map the binlog would carry for a table's current shape (snapshot rows
/// then decode to exactly the schema streamed rows get).
pub async fn describe(conn: &mut Conn, t: &TableId) -> Result<TableMap, MyError> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT c.COLUMN_NAME, LOWER(c.DATA_TYPE), LOWER(c.COLUMN_TYPE), c.IS_NULLABLE, \
                    c.NUMERIC_PRECISION, c.NUMERIC_SCALE, c.DATETIME_PRECISION, \
                    c.CHARACTER_OCTET_LENGTH, co.ID \
             FROM information_schema.COLUMNS c \
             LEFT JOIN information_schema.COLLATIONS co ON co.COLLATION_NAME = c.COLLATION_NAME \
             WHERE c.TABLE_SCHEMA = ? AND c.TABLE_NAME = ? ORDER BY c.ORDINAL_POSITION",
            (t.schema.as_str(), t.name.as_str()),
        )
        .await
        .map_err(MyError::query)?;
    if rows.is_empty() {
        return Err(MyError::setup(format!(
            "table {t} does not exist or the user cannot see it; create it, grant SELECT on it, or remove it from mysql.tables"
        )));
    }
    let mut columns = Vec::with_capacity(rows.len());
    for r in &rows {
        let name = text(r, 0).unwrap_or_default();
        let data_type = text(r, 1).unwrap_or_default();
        let column_type = text(r, 2).unwrap_or_default();
        let nullable = text(r, 3).as_deref() == Some("YES");
        let precision = number(r, 4).unwrap_or(0);
        let scale = number(r, 5).unwrap_or(0);
        let fsp = number(r, 6).unwrap_or(0).min(6) as u16;
        let octets = number(r, 7).unwrap_or(0);
        let collation = number(r, 8).map(|v| v as u32);
        let unsigned = column_type.contains("unsigned");
        let binary = Some(63);
        let blob_meta = |max: u64| -> u16 {
            match max {
                0..=255 => 1,
                256..=65_535 => 2,
                65_536..=16_777_215 => 3,
                _ => 4,
            }
        };
        let (real_type, meta, coll, labels_of) = match data_type.as_str() {
            "tinyint" | "bool" | "boolean" => (col::TINY, 0, None, None),
            "smallint" => (col::SHORT, 0, None, None),
            "mediumint" => (col::INT24, 0, None, None),
            "int" | "integer" => (col::LONG, 0, None, None),
            "bigint" => (col::LONGLONG, 0, None, None),
            "float" => (col::FLOAT, 4, None, None),
            "double" | "real" => (col::DOUBLE, 8, None, None),
            "decimal" | "numeric" => (
                col::NEWDECIMAL,
                ((precision.min(65) as u16) << 8) | scale.min(30) as u16,
                None,
                None,
            ),
            "year" => (col::YEAR, 0, None, None),
            "date" => (col::DATE, 0, None, None),
            "time" => (col::TIME2, fsp, None, None),
            "datetime" => (col::DATETIME2, fsp, None, None),
            "timestamp" => (col::TIMESTAMP2, fsp, None, None),
            "char" => (col::STRING, octets.min(1020) as u16, collation, None),
            "binary" => (col::STRING, octets.min(255) as u16, binary, None),
            "varchar" => (col::VARCHAR, octets.min(65_535) as u16, collation, None),
            "varbinary" => (col::VARCHAR, octets.min(65_535) as u16, binary, None),
            "tinytext" | "text" | "mediumtext" | "longtext" => {
                (col::BLOB, blob_meta(octets), collation, None)
            }
            "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                (col::BLOB, blob_meta(octets), binary, None)
            }
            "json" => (col::JSON, 4, None, None),
            "enum" => (col::ENUM, 2, collation, Some(labels(&column_type))),
            "set" => (col::SET, 8, collation, Some(labels(&column_type))),
            "bit" => {
                let bits = precision.clamp(1, 64) as u16;
                (col::BIT, ((bits % 8) << 8) | (bits / 8), None, None)
            }
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => {
                (col::GEOMETRY, 4, None, None)
            }
            "vector" => (col::VECTOR, 4, None, None),
            "uuid" => (col::STRING, 16, binary, None),
            other => {
                return Err(MyError::setup(format!(
                    "column {t}.{name} has type {other}, which Sluice cannot capture yet"
                )))
            }
        };
        columns.push(MapColumn {
            wire_type: real_type,
            real_type,
            meta,
            nullable,
            name: Some(name),
            unsigned,
            collation: coll,
            labels: labels_of,
            visible: true,
        });
    }
    let key_rows: Vec<Row> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
            (t.schema.as_str(), t.name.as_str()),
        )
        .await
        .map_err(MyError::query)?;
    let primary_key = key_rows
        .iter()
        .filter_map(|r| text(r, 0))
        .filter_map(|k| {
            columns
                .iter()
                .position(|c| c.name.as_deref() == Some(k.as_str()))
        })
        .collect();
    Ok(TableMap {
        table_id: 0,
        db: t.schema.clone(),
        table: t.name.clone(),
        columns,
        primary_key,
        has_names: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_labels() {
        assert_eq!(labels("enum('a','b c','it''s')"), vec!["a", "b c", "it's"]);
        assert_eq!(labels("set('x')"), vec!["x"]);
        assert!(labels("int").is_empty());
    }

    #[test]
    fn defaults_as_each_flavor_states_them() {
        use MysqlFlavor::{Mariadb, Mysql};
        let lit = |s: &str| Some(ColumnDefault::Literal(s.into()));
        assert_eq!(
            column_default(Mariadb, Some("'x''y'".into()), ""),
            lit("x'y")
        );
        assert_eq!(column_default(Mariadb, Some("42".into()), ""), lit("42"));
        assert_eq!(column_default(Mariadb, Some("NULL".into()), ""), None);
        assert_eq!(
            column_default(Mariadb, Some("current_timestamp()".into()), ""),
            Some(ColumnDefault::CurrentTimestamp)
        );
        assert_eq!(column_default(Mariadb, Some("(1 + 2)".into()), ""), None);
        assert_eq!(column_default(Mariadb, None, ""), None);
        assert_eq!(
            column_default(Mariadb, Some("b'101'".into()), ""),
            Some(ColumnDefault::Bits(5))
        );
        assert_eq!(
            column_default(Mysql, Some("b'1'".into()), ""),
            Some(ColumnDefault::Bits(1))
        );
        assert_eq!(column_default(Mysql, Some("x'y".into()), ""), lit("x'y"));
        assert_eq!(
            column_default(Mysql, Some("CURRENT_TIMESTAMP".into()), "DEFAULT_GENERATED"),
            Some(ColumnDefault::CurrentTimestamp)
        );
        assert_eq!(
            column_default(Mysql, Some("(rand())".into()), "DEFAULT_GENERATED"),
            None
        );
    }
}
