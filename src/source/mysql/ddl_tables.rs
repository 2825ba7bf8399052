//! Which tables a DDL statement creates, alters or drops (for the schema-change record's
//! `tableChanges`): a small reading of the statement's head, not a SQL parser. Statements
//! it does not recognise change no table here (their DDL text is still published).

use super::statements::executable_text;
use crate::event::TableId;

/// A word, a quoted identifier (unquoted), or one punctuation character.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Ident(String),
    Punct(char),
    Literal,
}

fn tokens(sql: &str) -> Vec<Token> {
    let text = executable_text(sql);
    let b: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '`' {
            let mut name = String::new();
            i += 1;
            while i < b.len() {
                if b[i] == '`' {
                    if b.get(i + 1) == Some(&'`') {
                        name.push('`');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                name.push(b[i]);
                i += 1;
            }
            out.push(Token::Ident(name));
        } else if c == '\'' || c == '"' {
            i += 1;
            while i < b.len() {
                if b[i] == '\\' {
                    i += 2;
                    continue;
                }
                if b[i] == c {
                    if b.get(i + 1) == Some(&c) {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            out.push(Token::Literal);
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_' || b[i] == '$') {
                i += 1;
            }
            out.push(Token::Word(b[start..i].iter().collect()));
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    out
}

/// A cursor over the tokens.
struct Cursor {
    t: Vec<Token>,
    at: usize,
}

impl Cursor {
    fn word(&mut self, w: &str) -> bool {
        match self.t.get(self.at) {
            Some(Token::Word(x)) if x.eq_ignore_ascii_case(w) => {
                self.at += 1;
                true
            }
            _ => false,
        }
    }

    fn words(&mut self, ws: &[&str]) -> bool {
        let save = self.at;
        if ws.iter().all(|w| self.word(w)) {
            return true;
        }
        self.at = save;
        false
    }

    fn punct(&mut self, p: char) -> bool {
        if self.t.get(self.at) == Some(&Token::Punct(p)) {
            self.at += 1;
            return true;
        }
        false
    }

    fn name_part(&mut self) -> Option<String> {
        let part = match self.t.get(self.at)? {
            Token::Word(w) | Token::Ident(w) => w.clone(),
            _ => return None,
        };
        self.at += 1;
        Some(part)
    }

    /// `[db.]name`.
    fn table(&mut self, default_db: &str) -> Option<TableId> {
        let first = self.name_part()?;
        if self.punct('.') {
            let name = self.name_part()?;
            return Some(TableId {
                schema: first,
                name,
            });
        }
        (!default_db.is_empty()).then(|| TableId {
            schema: default_db.to_string(),
            name: first,
        })
    }

    /// Moves to just after the next `word` (case-insensitive).
    fn seek(&mut self, word: &str) -> bool {
        while self.at < self.t.len() {
            if self.word(word) {
                return true;
            }
            self.at += 1;
        }
        false
    }
}

/// The tables a statement changes: `("CREATE" | "ALTER" | "DROP", table)`, in statement order.
/// A rename (`RENAME TABLE a TO b`, `ALTER TABLE a RENAME TO b`) alters `b`, as Debezium
/// records it.
pub(super) fn changed_tables(sql: &str, default_db: &str) -> Vec<(&'static str, TableId)> {
    let mut c = Cursor {
        t: tokens(sql),
        at: 0,
    };
    let mut out = Vec::new();
    if c.word("CREATE") {
        c.words(&["OR", "REPLACE"]);
        if c.word("TEMPORARY") {
            return out;
        }
        if c.word("TABLE") {
            c.words(&["IF", "NOT", "EXISTS"]);
            if let Some(t) = c.table(default_db) {
                out.push(("CREATE", t));
            }
        } else {
            // CREATE [UNIQUE | FULLTEXT | SPATIAL] INDEX name ON table
            for w in ["UNIQUE", "FULLTEXT", "SPATIAL"] {
                c.word(w);
            }
            if c.word("INDEX") && c.seek("ON") {
                if let Some(t) = c.table(default_db) {
                    out.push(("ALTER", t));
                }
            }
        }
    } else if c.word("ALTER") {
        for w in ["ONLINE", "IGNORE"] {
            c.word(w);
        }
        if c.word("TABLE") {
            c.words(&["IF", "EXISTS"]);
            if let Some(t) = c.table(default_db) {
                // ALTER TABLE a ... RENAME [TO | AS] b (not RENAME COLUMN / INDEX / KEY).
                let mut renamed = None;
                while c.at < c.t.len() {
                    if c.word("RENAME") {
                        if c.word("COLUMN") || c.word("INDEX") || c.word("KEY") {
                            continue;
                        }
                        if !c.word("TO") {
                            c.word("AS");
                        }
                        renamed = c.table(default_db);
                        break;
                    }
                    c.at += 1;
                }
                out.push(("ALTER", renamed.unwrap_or(t)));
            }
        }
    } else if c.word("DROP") {
        if c.word("TEMPORARY") {
            return out;
        }
        if c.word("TABLE") {
            c.words(&["IF", "EXISTS"]);
            while let Some(t) = c.table(default_db) {
                out.push(("DROP", t));
                if !c.punct(',') {
                    break;
                }
            }
        } else if c.word("INDEX") && c.seek("ON") {
            if let Some(t) = c.table(default_db) {
                out.push(("ALTER", t));
            }
        }
    } else if c.word("RENAME") && (c.word("TABLE") || c.word("TABLES")) {
        while c.table(default_db).is_some() {
            if !c.word("TO") {
                break;
            }
            let Some(to) = c.table(default_db) else { break };
            out.push(("ALTER", to));
            if !c.punct(',') {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Vec<String> {
        changed_tables(sql, "shop")
            .into_iter()
            .map(|(k, t)| format!("{k} {t}"))
            .collect()
    }

    #[test]
    fn the_tables_of_common_ddl() {
        assert_eq!(names("CREATE TABLE t (id int)"), ["CREATE shop.t"]);
        assert_eq!(
            names("create table if not exists `a b`.`c``d` (id int)"),
            ["CREATE a b.c`d"]
        );
        assert_eq!(
            names("CREATE OR REPLACE TABLE x.y (id int)"),
            ["CREATE x.y"]
        );
        assert!(names("CREATE TEMPORARY TABLE t (id int)").is_empty());
        assert_eq!(names("ALTER TABLE t ADD COLUMN c int"), ["ALTER shop.t"]);
        assert_eq!(
            names("ALTER TABLE t RENAME COLUMN a TO b"),
            ["ALTER shop.t"]
        );
        assert_eq!(names("ALTER TABLE t RENAME TO u"), ["ALTER shop.u"]);
        assert_eq!(
            names("DROP TABLE IF EXISTS a, other.b"),
            ["DROP shop.a", "DROP other.b"]
        );
        assert_eq!(
            names("RENAME TABLE a TO b, c TO x.d"),
            ["ALTER shop.b", "ALTER x.d"]
        );
        assert_eq!(names("CREATE UNIQUE INDEX i ON t (c)"), ["ALTER shop.t"]);
        assert_eq!(names("DROP INDEX i ON x.t"), ["ALTER x.t"]);
        assert_eq!(
            names("/* c */ ALTER /*!50100 ONLINE */ TABLE t FORCE"),
            ["ALTER shop.t"]
        );
        assert!(names("CREATE DATABASE d").is_empty());
        assert!(names("TRUNCATE TABLE t").is_empty());
        assert!(changed_tables("CREATE TABLE t (id int)", "").is_empty());
    }
}
