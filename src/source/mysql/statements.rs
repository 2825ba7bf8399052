//! What the stream reads from statements: DDL (published as schema changes), the database a
//! statement concerns, and the table of a `TRUNCATE`.

use crate::config::MysqlConfig;
use crate::event::TableId;

use std::borrow::Cow;

/// The statement as the server executes it: comments removed, the content of executable
/// comments (`/*! ... */`, `/*!50700 ... */`, MariaDB's `/*M!100100 ... */`) kept; quoted
/// strings and identifiers are left as they are.
pub(super) fn executable_text(sql: &str) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let mut copy_from = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => i = skip_quoted(b, i, q),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                out.push_str(&sql[copy_from..i]);
                let end = find(b, i + 2, b"*/").unwrap_or(b.len());
                let mut body = i + 2;
                let executable = match (b.get(body), b.get(body + 1)) {
                    (Some(b'!'), _) => {
                        body += 1;
                        true
                    }
                    (Some(b'M'), Some(b'!')) => {
                        body += 2;
                        true
                    }
                    _ => false,
                };
                if executable {
                    while body < end && b[body].is_ascii_digit() {
                        body += 1;
                    }
                    out.push(' ');
                    out.push_str(&executable_text(&sql[body..end]));
                }
                out.push(' ');
                i = (end + 2).min(b.len());
                copy_from = i;
            }
            b'#' => {
                out.push_str(&sql[copy_from..i]);
                i = find(b, i, b"\n").unwrap_or(b.len());
                copy_from = i;
            }
            b'-' if b.get(i + 1) == Some(&b'-')
                && b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
            {
                out.push_str(&sql[copy_from..i]);
                i = find(b, i, b"\n").unwrap_or(b.len());
                copy_from = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copy_from.min(sql.len())..]);
    out
}

/// The index after the quoted string or identifier that starts at `start` (doubled quotes
/// and, in strings, backslash escapes stay inside it).
fn skip_quoted(b: &[u8], start: usize, q: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == b'\\' && q != b'`' {
            i += 2;
        } else if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The statement with every secret literal replaced by `'***'`: the string after
/// `IDENTIFIED BY`, `IDENTIFIED WITH <plugin> BY|AS`, `IDENTIFIED VIA <plugin> USING|AS`,
/// `PASSWORD(`, `PASSWORD =` and `PASSWORD` (as in `SET PASSWORD ... = PASSWORD('x')` and
/// `CREATE SERVER ... OPTIONS (PASSWORD 'x')`), and the connection string of a FEDERATED or
/// CONNECT table (`CONNECTION [=] 'mysql://user:password@host/...'`, CONNECT's
/// `OPTION_LIST [=] '...password=...'`), wherever it stands (comments included).
pub(super) fn redact_secrets(sql: &str) -> Cow<'_, str> {
    let b = sql.as_bytes();
    let mut words: Vec<String> = Vec::new();
    let mut out = String::new();
    let mut copy_from = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' || c == b'"' {
            let end = skip_quoted(b, i, c);
            if secret_follows(&words) {
                out.push_str(&sql[copy_from..i]);
                out.push_str("'***'");
                copy_from = end;
            }
            words.push("'".into());
            i = end;
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$') {
                i += 1;
            }
            words.push(sql[start..i].to_ascii_uppercase());
        } else if c == b'`' {
            let end = skip_quoted(b, i, c);
            words.push(sql[i..end].to_string());
            i = end;
        } else {
            if matches!(c, b'(' | b'=') {
                words.push((c as char).to_string());
            }
            i += 1;
        }
    }
    if copy_from == 0 {
        return Cow::Borrowed(sql);
    }
    out.push_str(&sql[copy_from..]);
    Cow::Owned(out)
}

/// Whether a string literal after these words is a secret.
fn secret_follows(words: &[String]) -> bool {
    let last = |n: usize| -> &str {
        words
            .len()
            .checked_sub(n)
            .and_then(|i| words.get(i))
            .map_or("", String::as_str)
    };
    let secret_word = |w: &str| matches!(w, "PASSWORD" | "CONNECTION" | "OPTION_LIST");
    match last(1) {
        w if secret_word(w) => true,
        "(" => last(2) == "PASSWORD",
        "=" => secret_word(last(2)),
        "BY" => last(2) == "IDENTIFIED" || (last(4) == "IDENTIFIED" && last(3) == "WITH"),
        "AS" | "USING" => last(4) == "IDENTIFIED" && matches!(last(3), "WITH" | "VIA"),
        _ => false,
    }
}

/// Whether a statement changes schema objects. Account statements (`CREATE USER`,
/// `ALTER USER ... IDENTIFIED BY ...`, roles, servers) are not: they can carry password
/// hashes and are never published or logged. The statement kind is read from the text the
/// server executes (comments removed, executable comments kept).
pub(super) fn is_ddl(sql: &str) -> bool {
    let text = executable_text(sql);
    let mut words = text.split_whitespace();
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
    let Some(dbs) = my.databases() else {
        // A `re:` entry may capture tables of any database.
        return (!default_db.is_empty()).then(|| default_db.to_string());
    };
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
    fn account_statements_are_recognised_through_comments() {
        for sql in [
            "CREATE /*c*/ USER u IDENTIFIED BY 'pw'",
            "ALTER /*!100000 */ USER u IDENTIFIED BY 'pw'",
            "CREATE OR /*x*/ REPLACE USER u IDENTIFIED BY 'pw'",
            "CREATE /*!50000 USER */ u IDENTIFIED BY 'pw'",
            "CREATE /*M!100100 OR REPLACE */ USER u",
            "CREATE -- note\n USER u IDENTIFIED BY 'pw'",
            "CREATE # note\n ROLE r",
            "/* lead */ ALTER USER u IDENTIFIED BY 'pw'",
        ] {
            assert!(!is_ddl(sql), "{sql}");
        }
        assert!(is_ddl("CREATE /* a user */ TABLE users (id int)"));
        assert!(is_ddl("ALTER TABLE t COMMENT '/* USER */'"));
        let words = |s: &str| {
            executable_text(s)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            words("CREATE /*!50001 TABLE */ t /* x */ (a int) -- y"),
            "CREATE TABLE t (a int)"
        );
        assert_eq!(words("SELECT '/* kept */' # gone"), "SELECT '/* kept */'");
    }

    #[test]
    fn secret_literals_are_redacted() {
        let r = |s: &str| redact_secrets(s).into_owned();
        assert_eq!(
            r("CREATE USER u IDENTIFIED BY 'p''w'"),
            "CREATE USER u IDENTIFIED BY '***'"
        );
        assert_eq!(
            r("ALTER USER u IDENTIFIED /*!*/ BY \"s3\\\"cret\""),
            "ALTER USER u IDENTIFIED /*!*/ BY '***'"
        );
        assert_eq!(
            r("CREATE USER u IDENTIFIED WITH mysql_native_password AS '*ABC'"),
            "CREATE USER u IDENTIFIED WITH mysql_native_password AS '***'"
        );
        assert_eq!(
            r("CREATE USER u IDENTIFIED WITH caching_sha2_password BY 'pw'"),
            "CREATE USER u IDENTIFIED WITH caching_sha2_password BY '***'"
        );
        assert_eq!(
            r("CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD('pw')"),
            "CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD('***')"
        );
        assert_eq!(
            r("SET PASSWORD FOR u = PASSWORD('pw')"),
            "SET PASSWORD FOR u = PASSWORD('***')"
        );
        assert_eq!(r("SET PASSWORD = 'pw'"), "SET PASSWORD = '***'");
        assert_eq!(
            r("GRANT ALL ON *.* TO u IDENTIFIED BY 'pw'"),
            "GRANT ALL ON *.* TO u IDENTIFIED BY '***'"
        );
        assert_eq!(
            r("CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'a', PASSWORD 'pw')"),
            "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'a', PASSWORD '***')"
        );
        // Connection strings of FEDERATED / CONNECT tables carry a password.
        assert_eq!(
            r("CREATE TABLE f (a int) ENGINE=FEDERATED CONNECTION='mysql://u:pw@h:3306/d/t'"),
            "CREATE TABLE f (a int) ENGINE=FEDERATED CONNECTION='***'"
        );
        assert_eq!(
            r("ALTER TABLE f CONNECTION \"mysql://u:p@ss@h/d/t\""),
            "ALTER TABLE f CONNECTION '***'"
        );
        assert_eq!(
            r("CREATE TABLE c (a int) ENGINE=CONNECT TABLE_TYPE=MYSQL OPTION_LIST='host=h,user=u,password=pw'"),
            "CREATE TABLE c (a int) ENGINE=CONNECT TABLE_TYPE=MYSQL OPTION_LIST='***'"
        );
        // Nothing secret: borrowed as it is.
        assert!(matches!(
            redact_secrets("ALTER TABLE t ADD c int DEFAULT 'by'"),
            Cow::Borrowed(_)
        ));
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
