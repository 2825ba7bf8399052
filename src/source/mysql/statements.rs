//! What the stream reads from statements: DDL (published as schema changes), the database a
//! statement concerns, and the table of a `TRUNCATE`.

use crate::config::MysqlConfig;
use crate::event::TableId;

/// Whether a statement changes schema objects. Account statements (`CREATE USER`,
/// `ALTER USER ... IDENTIFIED BY ...`, roles, servers) are not: they can carry password
/// hashes and are never published or logged.
pub(super) fn is_ddl(sql: &str) -> bool {
    let mut words = sql.split_whitespace();
    let head = words.next().unwrap_or_default();
    let ddl = ["CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE"]
        .iter()
        .any(|k| head.eq_ignore_ascii_case(k));
    let mut object = words.next().unwrap_or_default();
    if object.eq_ignore_ascii_case("OR") {
        // CREATE OR REPLACE <object>
        words.next();
        object = words.next().unwrap_or_default();
    }
    ddl && !["USER", "ROLE", "SERVER"]
        .iter()
        .any(|k| object.eq_ignore_ascii_case(k))
}

/// Whether a DDL statement concerns a captured database.
pub(super) fn ddl_concerns(my: &MysqlConfig, default_db: &str, sql: &str) -> Option<String> {
    let dbs = my.databases();
    if dbs.iter().any(|d| d == default_db) {
        return Some(default_db.to_string());
    }
    let lower = sql.to_ascii_lowercase();
    dbs.into_iter().find(|d| {
        let d = d.to_ascii_lowercase();
        lower.contains(&format!("`{d}`.")) || lower.contains(&format!(" {d}."))
    })
}

/// The table of a `TRUNCATE [TABLE] [db.]name` statement (`None` for other statements).
pub(super) fn truncated_table(sql: &str, default_db: &str) -> Option<TableId> {
    let strip_word = |s: &str, word: &str| -> Option<String> {
        let s = s.trim_start();
        let head = s.get(..word.len())?;
        let rest = &s[word.len()..];
        (head.eq_ignore_ascii_case(word) && rest.starts_with(char::is_whitespace))
            .then(|| rest.trim_start().to_string())
    };
    let rest = strip_word(sql, "TRUNCATE")?;
    let rest = strip_word(&rest, "TABLE").unwrap_or(rest);
    let unquote = |s: &str| s.trim_matches('`').replace("``", "`");
    let name = rest.trim().trim_end_matches(';').trim();
    // `db`.`t`, db.t, `t`, t (a quoted name holding a dot is not split).
    let (db, table) = match name.split_once("`.`") {
        Some((d, t)) => (unquote(d), unquote(t)),
        None if !name.starts_with('`') => match name.split_once('.') {
            Some((d, t)) => (unquote(d), unquote(t)),
            None => (default_db.to_string(), unquote(name)),
        },
        None => (default_db.to_string(), unquote(name)),
    };
    (!db.is_empty() && !table.is_empty()).then_some(TableId {
        schema: db,
        name: table,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_statements() {
        let t = |sql: &str| truncated_table(sql, "shop").map(|t| t.to_string());
        assert_eq!(t("TRUNCATE TABLE orders").as_deref(), Some("shop.orders"));
        assert_eq!(t("truncate `a`.`b c`").as_deref(), Some("a.b c"));
        assert_eq!(t("TRUNCATE x.y;").as_deref(), Some("x.y"));
        assert_eq!(t("ALTER TABLE x ADD y INT"), None);
    }

    #[test]
    fn ddl_detection() {
        assert!(is_ddl("  alter table t add column x int"));
        assert!(!is_ddl("BEGIN"));
        assert!(!is_ddl("SAVEPOINT a"));
        assert!(!is_ddl("CREATE USER 'u'@'%' IDENTIFIED BY PASSWORD '*abc'"));
        assert!(!is_ddl(
            "ALTER USER 'root'@'localhost' IDENTIFIED WITH 'x' AS 'y'"
        ));
        assert!(!is_ddl("CREATE OR REPLACE USER u"));
        assert!(is_ddl("CREATE TABLE user (id int)"));
        assert!(is_ddl("CREATE OR REPLACE TABLE t (id int)"));
    }
}
