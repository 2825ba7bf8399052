//! The `additional-conditions` of an `execute-snapshot` signal: never SQL pasted into a
//! query, but a small grammar parsed here and rendered with the source's own quoting —
//! columns of the table, comparisons with literals, `AND` / `OR` / `NOT`, `IN (...)`,
//! `IS [NOT] NULL`, `[NOT] LIKE`, parentheses. Anything else (a function call, a subquery, a
//! second statement, a comment) is refused with the position it starts at.
//!
//! ```text
//! expr    := and ("OR" and)*
//! and     := not ("AND" not)*
//! not     := "NOT" not | "(" expr ")" | column pred
//! pred    := ("=" | "<>" | "!=" | "<" | "<=" | ">" | ">=") literal
//!          | ["NOT"] "IN" "(" literal ("," literal)* ")"
//!          | "IS" ["NOT"] "NULL"
//!          | ["NOT"] "LIKE" string
//! literal := number | string | TRUE | FALSE
//! column  := name | "quoted" | `quoted`
//! ```

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Compare(String, &'static str, Literal),
    In(String, bool, Vec<Literal>),
    IsNull(String, bool),
    Like(String, bool, String),
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A number as written (digits, an optional sign and fraction).
    Number(String),
    /// A string's content (quotes removed).
    Text(String),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Number(String),
    Text(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

fn tokens(text: &str) -> Result<Vec<(usize, Token)>, String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' | b')' | b',' | b'=' => {
                out.push((
                    start,
                    match c {
                        b'(' => Token::Open,
                        b')' => Token::Close,
                        b',' => Token::Comma,
                        _ => Token::Op("="),
                    },
                ));
                i += 1;
            }
            b'<' | b'>' | b'!' => {
                let two = b.get(i + 1).copied();
                let op = match (c, two) {
                    (b'<', Some(b'=')) => "<=",
                    (b'<', Some(b'>')) => "<>",
                    (b'>', Some(b'=')) => ">=",
                    (b'!', Some(b'=')) => "<>",
                    (b'<', _) => "<",
                    (b'>', _) => ">",
                    _ => return Err(format!("unexpected '!' at {start}")),
                };
                out.push((start, Token::Op(op)));
                i += if op.len() == 2 { 2 } else { 1 };
            }
            b'\'' => {
                let mut s = Vec::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err(format!("unterminated string starting at {start}")),
                        Some(b'\'') if b.get(i + 1) == Some(&b'\'') => {
                            s.push(b'\'');
                            i += 2;
                        }
                        Some(b'\'') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            return Err(format!(
                                "a backslash in the string at {start}: write a quote as '' and leave other characters as they are"
                            ))
                        }
                        Some(x) => {
                            s.push(*x);
                            i += 1;
                        }
                    }
                }
                out.push((
                    start,
                    Token::Text(String::from_utf8(s).map_err(|e| e.to_string())?),
                ));
            }
            b'"' | b'`' => {
                let close = c;
                let end = b[i + 1..]
                    .iter()
                    .position(|x| *x == close)
                    .ok_or_else(|| format!("unterminated quoted name starting at {start}"))?;
                let name = &text[i + 1..i + 1 + end];
                if name.is_empty() {
                    return Err(format!("an empty quoted name at {start}"));
                }
                out.push((start, Token::Quoted(name.to_string())));
                i += end + 2;
            }
            b'0'..=b'9' | b'-' | b'+' | b'.' => {
                i += 1;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                    i += 1;
                }
                let n = &text[start..i];
                let digits = n.trim_start_matches(['-', '+']);
                let valid = !digits.is_empty()
                    && digits.bytes().filter(|x| *x == b'.').count() <= 1
                    && digits.bytes().any(|x| x.is_ascii_digit());
                if !valid {
                    return Err(format!("\"{n}\" at {start} is not a number"));
                }
                out.push((start, Token::Number(n.to_string())));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push((start, Token::Word(text[start..i].to_string())));
            }
            _ => {
                let ch = text[start..].chars().next().unwrap_or('?');
                return Err(format!(
                    "'{ch}' at {start} is not part of a condition (columns, comparisons with literals, AND, OR, NOT, IN, IS NULL, LIKE)"
                ));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Token)>,
    at: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.at).map(|(_, t)| t)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.len, |(p, _)| *p)
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: Token, what: &str) -> Result<(), String> {
        if self.peek() == Some(&t) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {what} at {}", self.pos()))
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.and()?];
        while self.keyword("OR") {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one")
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.not()?];
        while self.keyword("AND") {
            parts.push(self.not()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one")
        } else {
            Expr::And(parts)
        })
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.keyword("NOT") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let e = self.or()?;
            self.expect(Token::Close, "')'")?;
            return Ok(e);
        }
        let column = self.column()?;
        self.pred(column)
    }

    fn column(&mut self) -> Result<String, String> {
        let at = self.pos();
        match self.toks.get(self.at).map(|(_, t)| t.clone()) {
            Some(Token::Word(w)) if !is_reserved(&w) => {
                self.at += 1;
                if self.peek() == Some(&Token::Open) {
                    return Err(format!(
                        "a function call ({w}) at {at}: only columns and literals"
                    ));
                }
                Ok(w)
            }
            Some(Token::Quoted(q)) => {
                self.at += 1;
                Ok(q)
            }
            _ => Err(format!("expected a column name at {at}")),
        }
    }

    fn literal(&mut self) -> Result<Literal, String> {
        let at = self.pos();
        let lit = match self.toks.get(self.at).map(|(_, t)| t.clone()) {
            Some(Token::Number(n)) => Literal::Number(n),
            Some(Token::Text(t)) => Literal::Text(t),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("TRUE") => Literal::Bool(true),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("FALSE") => Literal::Bool(false),
            _ => {
                return Err(format!(
                    "expected a literal (a number, 'text', TRUE or FALSE) at {at}"
                ))
            }
        };
        self.at += 1;
        Ok(lit)
    }

    fn pred(&mut self, column: String) -> Result<Expr, String> {
        if let Some(Token::Op(op)) = self.peek().cloned() {
            self.at += 1;
            return Ok(Expr::Compare(column, op, self.literal()?));
        }
        if self.keyword("IS") {
            let negated = self.keyword("NOT");
            if !self.keyword("NULL") {
                return Err(format!("expected NULL at {}", self.pos()));
            }
            return Ok(Expr::IsNull(column, negated));
        }
        let negated = self.keyword("NOT");
        if self.keyword("IN") {
            self.expect(Token::Open, "'(' after IN")?;
            let mut list = vec![self.literal()?];
            while self.peek() == Some(&Token::Comma) {
                self.at += 1;
                list.push(self.literal()?);
            }
            self.expect(Token::Close, "')' closing the IN list")?;
            return Ok(Expr::In(column, negated, list));
        }
        if self.keyword("LIKE") {
            let at = self.pos();
            return match self.literal()? {
                Literal::Text(t) => Ok(Expr::Like(column, negated, t)),
                _ => Err(format!("LIKE needs a 'pattern' at {at}")),
            };
        }
        Err(format!(
            "expected a comparison, IN, IS [NOT] NULL or LIKE after column {column} at {}",
            self.pos()
        ))
    }
}

fn is_reserved(w: &str) -> bool {
    [
        "AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "TRUE", "FALSE",
    ]
    .iter()
    .any(|r| w.eq_ignore_ascii_case(r))
}

/// Parses a filter; the error names what is wrong and where.
pub fn parse(text: &str) -> Result<Expr, String> {
    let toks = tokens(text)?;
    if toks.is_empty() {
        return Err("the filter is empty".into());
    }
    let mut p = Parser {
        toks,
        at: 0,
        len: text.len(),
    };
    let e = p.or()?;
    if p.at != p.toks.len() {
        return Err(format!("unexpected text at {}", p.pos()));
    }
    Ok(e)
}

/// The filter as SQL for a table of `columns`: names quoted by `ident`, text by `text`;
/// a column the table does not have is an error.
pub fn render(
    e: &Expr,
    columns: &[&str],
    ident: &dyn Fn(&str) -> String,
    text: &dyn Fn(&str) -> String,
) -> Result<String, String> {
    let col = |c: &str| -> Result<String, String> {
        if columns.contains(&c) {
            Ok(ident(c))
        } else {
            Err(format!("the table has no column \"{c}\""))
        }
    };
    let lit = |l: &Literal| match l {
        Literal::Number(n) => n.clone(),
        Literal::Text(t) => text(t),
        Literal::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
    };
    let join = |parts: &[Expr], sep: &str| -> Result<String, String> {
        let r: Result<Vec<String>, String> = parts
            .iter()
            .map(|p| render(p, columns, ident, text).map(|s| format!("({s})")))
            .collect();
        Ok(r?.join(sep))
    };
    Ok(match e {
        Expr::Or(parts) => join(parts, " OR ")?,
        Expr::And(parts) => join(parts, " AND ")?,
        Expr::Not(inner) => format!("NOT ({})", render(inner, columns, ident, text)?),
        Expr::Compare(c, op, l) => format!("{} {op} {}", col(c)?, lit(l)),
        Expr::In(c, negated, list) => format!(
            "{}{} IN ({})",
            col(c)?,
            if *negated { " NOT" } else { "" },
            list.iter().map(lit).collect::<Vec<_>>().join(", ")
        ),
        Expr::IsNull(c, negated) => {
            format!("{} IS {}NULL", col(c)?, if *negated { "NOT " } else { "" })
        }
        Expr::Like(c, negated, pattern) => format!(
            "{}{} LIKE {}",
            col(c)?,
            if *negated { " NOT" } else { "" },
            text(pattern)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(text: &str) -> Result<String, String> {
        let e = parse(text)?;
        render(
            &e,
            &["id", "region", "Name", "deleted"],
            &|c| format!("\"{c}\""),
            &|t| format!("'{}'", t.replace('\'', "''")),
        )
    }

    #[test]
    fn conditions_are_rendered_with_the_sources_quoting() {
        assert_eq!(pg("id > 10").unwrap(), "\"id\" > 10");
        assert_eq!(
            pg("region = 'eu' AND (id <= -5 OR \"Name\" LIKE 'A%') AND deleted IS NOT NULL").unwrap(),
            "(\"region\" = 'eu') AND ((\"id\" <= -5) OR (\"Name\" LIKE 'A%')) AND (\"deleted\" IS NOT NULL)"
        );
        assert_eq!(
            pg("id not in (1, 2.5) and not region <> 'it''s'").unwrap(),
            "(\"id\" NOT IN (1, 2.5)) AND (NOT (\"region\" <> 'it''s'))"
        );
        assert_eq!(pg("deleted = true").unwrap(), "\"deleted\" = TRUE");
    }

    #[test]
    fn anything_but_the_grammar_is_refused() {
        for bad in [
            "1) LIMIT 0; FLUSH TABLES WITH READ LOCK; SELECT `id` FROM `shop`.`t` WHERE (1",
            "id > 1; DROP TABLE t",
            "id > (SELECT max(id) FROM t)",
            "pg_terminate_backend(1) IS NULL",
            "id > 1 -- comment",
            "id > 1 /* c */",
            "id = id",
            "nope = 1",
            "id > 'x\\' OR 1=1",
            "",
            "id",
            "id IN ()",
            "region LIKE 5",
        ] {
            assert!(pg(bad).is_err(), "{bad:?} was accepted: {:?}", pg(bad));
        }
    }
}
