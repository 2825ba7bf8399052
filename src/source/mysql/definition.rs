//! A table's definition as `information_schema` states it, in the shape of Debezium's
//! schema history (`tableChanges` of the schema-change topic): column types with the
//! `java.sql.Types` code Debezium's MySQL DDL parser gives them, lengths, scales,
//! nullability, defaults, the primary key.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use super::catalog::{column_default, labels, text};
use super::plan::ColumnDefault;
use super::MyError;
use crate::event::{ColumnDefinition, MysqlFlavor, TableDefinition, TableId};

/// `java.sql.Types` codes.
mod jdbc {
    pub const BIT: i32 = -7;
    pub const SMALLINT: i32 = 5;
    pub const INTEGER: i32 = 4;
    pub const BIGINT: i32 = -5;
    pub const FLOAT: i32 = 6;
    pub const DOUBLE: i32 = 8;
    pub const DECIMAL: i32 = 3;
    pub const CHAR: i32 = 1;
    pub const VARCHAR: i32 = 12;
    pub const DATE: i32 = 91;
    pub const TIME: i32 = 92;
    pub const TIMESTAMP: i32 = 93;
    pub const TIMESTAMP_WITH_TIMEZONE: i32 = 2014;
    pub const BINARY: i32 = -2;
    pub const VARBINARY: i32 = -3;
    pub const BLOB: i32 = 2004;
    pub const BOOLEAN: i32 = 16;
    pub const OTHER: i32 = 1111;
}

/// The `java.sql.Types` code Debezium's MySQL DDL parser gives a data type.
pub(super) fn jdbc_type(data_type: &str) -> i32 {
    match data_type {
        "tinyint" | "smallint" => jdbc::SMALLINT,
        "mediumint" | "int" | "integer" | "year" => jdbc::INTEGER,
        "bigint" => jdbc::BIGINT,
        "float" => jdbc::FLOAT,
        "double" | "real" => jdbc::DOUBLE,
        "decimal" | "numeric" => jdbc::DECIMAL,
        "bit" => jdbc::BIT,
        "bool" | "boolean" => jdbc::BOOLEAN,
        "date" => jdbc::DATE,
        "time" => jdbc::TIME,
        "datetime" => jdbc::TIMESTAMP,
        "timestamp" => jdbc::TIMESTAMP_WITH_TIMEZONE,
        "char" | "enum" | "set" => jdbc::CHAR,
        "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => jdbc::VARCHAR,
        "binary" => jdbc::BINARY,
        "varbinary" => jdbc::VARBINARY,
        "tinyblob" | "blob" | "mediumblob" | "longblob" => jdbc::BLOB,
        _ => jdbc::OTHER,
    }
}

/// The number in a column type's parentheses (`int(11)` → 11, `decimal(7,5)` → 7).
fn declared_length(column_type: &str) -> Option<i32> {
    let open = column_type.find('(')?;
    let body = &column_type[open + 1..];
    let end = body.find([')', ','])?;
    body[..end].trim().parse().ok()
}

/// The second number in a column type's parentheses (`float(5,2)` → 2).
fn declared_scale(column_type: &str) -> Option<i32> {
    let open = column_type.find('(')?;
    let body = &column_type[open + 1..];
    let (_, rest) = body.split_once(',')?;
    rest.split(')').next()?.trim().parse().ok()
}

/// The definition of table `t`; `None` when it does not exist (any more).
pub(super) async fn table_definition(
    conn: &mut Conn,
    t: &TableId,
    flavor: MysqlFlavor,
) -> Result<Option<TableDefinition>, MyError> {
    let args = (t.schema.as_str(), t.name.as_str());
    let rows: Vec<Row> = conn
        .exec(
            "SELECT COLUMN_NAME, CAST(ORDINAL_POSITION AS CHAR), LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), CHARACTER_SET_NAME, CAST(CHARACTER_MAXIMUM_LENGTH AS CHAR), CAST(NUMERIC_PRECISION AS CHAR), CAST(NUMERIC_SCALE AS CHAR), CAST(DATETIME_PRECISION AS CHAR), IS_NULLABLE, EXTRA, COLUMN_COMMENT, COLUMN_DEFAULT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            args,
        )
        .await
        .map_err(MyError::query)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut columns = Vec::with_capacity(rows.len());
    for r in &rows {
        let (Some(name), Some(data_type), Some(column_type)) = (text(r, 0), text(r, 2), text(r, 3))
        else {
            continue;
        };
        let num = |i: usize| text(r, i).and_then(|s| s.parse::<i32>().ok());
        let extra = text(r, 10).unwrap_or_default();
        let mut type_name = data_type.to_ascii_uppercase();
        for flag in ["unsigned", "zerofill"] {
            if column_type.contains(flag) {
                type_name.push(' ');
                type_name.push_str(&flag.to_ascii_uppercase());
            }
        }
        let (length, scale) = match data_type.as_str() {
            "char" | "varchar" | "binary" | "varbinary" => (num(5), None),
            "decimal" | "numeric" => (num(6), num(7)),
            "float" | "double" | "real" => {
                (declared_length(&column_type), declared_scale(&column_type))
            }
            "bit" => (num(6), None),
            "time" | "datetime" | "timestamp" => (num(8).filter(|p| *p > 0), None),
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => {
                (declared_length(&column_type), None)
            }
            _ => (None, None),
        };
        let default = column_default(flavor, text(r, 12), &extra);
        let default_expression = default.as_ref().map(|d| match d {
            ColumnDefault::Literal(s) => s.clone(),
            ColumnDefault::CurrentTimestamp => "CURRENT_TIMESTAMP".into(),
            ColumnDefault::Bits(v) => format!("b'{v:b}'"),
        });
        let auto = extra.to_ascii_lowercase().contains("auto_increment");
        columns.push(ColumnDefinition {
            name,
            jdbc_type: jdbc_type(&data_type),
            type_name,
            charset: text(r, 4),
            length,
            scale,
            position: num(1).unwrap_or(columns.len() as i32 + 1),
            optional: text(r, 9).is_some_and(|n| n.eq_ignore_ascii_case("YES")),
            auto_incremented: auto,
            comment: text(r, 11).filter(|c| !c.is_empty()),
            has_default: default.is_some(),
            default_expression,
            enum_values: matches!(data_type.as_str(), "enum" | "set").then(|| labels(&column_type)),
        });
    }
    let key: Vec<Row> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
            args,
        )
        .await
        .map_err(MyError::query)?;
    let table: Vec<Row> = conn
        .exec(
            "SELECT c.CHARACTER_SET_NAME, t.TABLE_COMMENT FROM information_schema.TABLES t LEFT JOIN information_schema.COLLATIONS c ON c.COLLATION_NAME = t.TABLE_COLLATION WHERE t.TABLE_SCHEMA = ? AND t.TABLE_NAME = ?",
            args,
        )
        .await
        .map_err(MyError::query)?;
    let (charset, comment) = table
        .first()
        .map(|r| (text(r, 0), text(r, 1).filter(|c| !c.is_empty())))
        .unwrap_or_default();
    Ok(Some(TableDefinition {
        default_charset: charset,
        primary_key: key.iter().filter_map(|r| text(r, 0)).collect(),
        columns,
        comment,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_lengths_and_scales_as_debezium_reads_ddl() {
        assert_eq!(jdbc_type("tinyint"), 5);
        assert_eq!(jdbc_type("int"), 4);
        assert_eq!(jdbc_type("timestamp"), 2014);
        assert_eq!(jdbc_type("datetime"), 93);
        assert_eq!(jdbc_type("text"), 12);
        assert_eq!(jdbc_type("enum"), 1);
        assert_eq!(jdbc_type("point"), 1111);
        assert_eq!(declared_length("int(11)"), Some(11));
        assert_eq!(declared_length("float(7,3)"), Some(7));
        assert_eq!(declared_scale("float(7,3)"), Some(3));
        assert_eq!(declared_length("int"), None);
    }
}
