//! The entries that select tables and columns in a connector file: `tables` /
//! `exclude_tables` entries (`schema.table`, `schema.*`, quoted parts, `re:<regex>`), and the
//! `schema.table.column` patterns of `[columns]`.

/// One `tables` entry: a schema (MySQL: database) and a table name, or every table of the
/// schema (`schema.*`). Either part may be quoted with `"` (or, for MySQL habits, `` ` ``),
/// a doubled quote standing for itself: `"Quoted . Schema"."Table"` names the schema
/// `Quoted . Schema`. Unquoted parts are taken as written (PostgreSQL stores unquoted names
/// in lower case, so `public.Orders` would name a table created as `"Orders"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePattern {
    /// Schema or database.
    pub schema: String,
    /// Table name; `None` for `*`.
    pub table: Option<String>,
}

impl TablePattern {
    /// Parses one entry.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut chars = text.chars().peekable();
        let schema = Self::ident(&mut chars)?.ok_or("the schema part is missing")?;
        if chars.next() != Some('.') {
            return Err("a schema (or database) and a table separated by '.' are needed".into());
        }
        let table = match chars.peek() {
            Some('*') => {
                chars.next();
                None
            }
            _ => Some(Self::ident(&mut chars)?.ok_or("the table part is missing")?),
        };
        if let Some(c) = chars.next() {
            return Err(format!(
                "unexpected '{c}' after the table name (quote names that contain '.')"
            ));
        }
        Ok(TablePattern { schema, table })
    }

    /// One identifier: quoted, or bare up to the next '.'; `None` when empty.
    pub(crate) fn ident(
        chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    ) -> Result<Option<String>, String> {
        let mut out = String::new();
        match chars.peek() {
            Some(&q @ ('"' | '`')) => {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err(format!("a {q} quote is not closed")),
                        Some(c) if c == q => {
                            if chars.peek() == Some(&q) {
                                chars.next();
                                out.push(q);
                            } else {
                                break;
                            }
                        }
                        Some(c) => out.push(c),
                    }
                }
                if out.is_empty() {
                    return Err("a quoted name is empty".into());
                }
            }
            _ => {
                while let Some(&c) = chars.peek() {
                    match c {
                        '.' => break,
                        '"' | '`' | '*' => {
                            return Err(format!(
                                "'{c}' inside an unquoted name (quote the whole name)"
                            ))
                        }
                        _ => {
                            out.push(c);
                            chars.next();
                        }
                    }
                }
            }
        }
        Ok((!out.is_empty()).then_some(out))
    }

    /// Whether the pattern covers `schema.table`.
    pub fn matches(&self, schema: &str, table: &str) -> bool {
        self.schema == schema && self.table.as_deref().is_none_or(|t| t == table)
    }
}

impl std::fmt::Display for TablePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let part = |s: &str| {
            if s.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '$' | '-'))
            {
                s.to_string()
            } else {
                format!("\"{}\"", s.replace('"', "\"\""))
            }
        };
        match &self.table {
            Some(t) => write!(f, "{}.{}", part(&self.schema), part(t)),
            None => write!(f, "{}.*", part(&self.schema)),
        }
    }
}

/// A column named in `[columns]`: `schema.table.column` or `re:<regex>`.
#[derive(Debug, Clone)]
pub enum ColumnPattern {
    /// One column.
    Exact {
        /// Schema or database.
        schema: String,
        /// Table.
        table: String,
        /// Column.
        column: String,
    },
    /// Every column whose `schema.table.column` matches (anchored).
    Regex(regex::Regex),
}

impl ColumnPattern {
    /// Parses one entry.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(re) = text.strip_prefix("re:") {
            return regex::Regex::new(&format!("^(?:{re})$"))
                .map(ColumnPattern::Regex)
                .map_err(|e| format!("is not a valid regular expression: {e}"));
        }
        let mut chars = text.chars().peekable();
        let mut parts = Vec::new();
        loop {
            parts.push(TablePattern::ident(&mut chars)?.ok_or("a part is empty")?);
            match chars.next() {
                None => break,
                Some('.') => {}
                Some(c) => return Err(format!("unexpected '{c}' (quote names that contain '.')")),
            }
        }
        match <[String; 3]>::try_from(parts) {
            Ok([schema, table, column]) => Ok(ColumnPattern::Exact {
                schema,
                table,
                column,
            }),
            Err(_) => Err("write schema.table.column (or re:<regex>)".into()),
        }
    }

    /// Whether the pattern names `column` of `schema.table`.
    pub fn matches(&self, schema: &str, table: &str, column: &str) -> bool {
        match self {
            ColumnPattern::Exact {
                schema: s,
                table: t,
                column: c,
            } => s == schema && t == table && c == column,
            ColumnPattern::Regex(re) => re.is_match(&format!("{schema}.{table}.{column}")),
        }
    }
}

/// A table entry of `tables`, `exclude_tables` or `key_columns`: `schema.table`,
/// `schema.*` or `re:<regex>` (matched against `schema.table`, anchored, case-sensitive, as
/// Debezium's `table.include.list`).
#[derive(Debug, Clone)]
pub enum TableSelector {
    /// A `schema.table` or `schema.*` entry.
    Pattern(TablePattern),
    /// Every table whose `schema.table` matches; the regex as written.
    Regex(regex::Regex, String),
}

impl TableSelector {
    /// Parses one entry.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.strip_prefix("re:") {
            Some(re) => regex::Regex::new(&format!("^(?:{re})$"))
                .map(|r| TableSelector::Regex(r, re.to_string()))
                .map_err(|e| format!("is not a valid regular expression: {e}")),
            None => TablePattern::parse(text).map(TableSelector::Pattern),
        }
    }

    /// Whether it selects `schema.table`.
    pub fn matches(&self, schema: &str, table: &str) -> bool {
        match self {
            TableSelector::Pattern(p) => p.matches(schema, table),
            TableSelector::Regex(re, _) => re.is_match(&format!("{schema}.{table}")),
        }
    }

    /// The one table it names (`schema.table`), if it names exactly one.
    pub fn exact(&self) -> Option<(&str, &str)> {
        match self {
            TableSelector::Pattern(TablePattern {
                schema,
                table: Some(t),
            }) => Some((schema, t)),
            _ => None,
        }
    }
}

impl std::fmt::Display for TableSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableSelector::Pattern(p) => write!(f, "{p}"),
            TableSelector::Regex(_, re) => write!(f, "re:{re}"),
        }
    }
}

/// Which tables a connector captures: any of `tables`, none of `exclude_tables`.
#[derive(Debug, Clone, Default)]
pub struct TableFilter {
    /// `tables`.
    pub include: Vec<TableSelector>,
    /// `exclude_tables` (wins over `tables`).
    pub exclude: Vec<TableSelector>,
}

impl TableFilter {
    /// Whether `schema.table` is captured.
    pub fn captures(&self, schema: &str, table: &str) -> bool {
        self.include.iter().any(|p| p.matches(schema, table))
            && !self.exclude.iter().any(|p| p.matches(schema, table))
    }

    /// Whether the selection is more than exact tables and whole schemas (regexes or
    /// exclusions), so it cannot be written as a publication's `TABLES IN SCHEMA` list.
    pub fn is_computed(&self) -> bool {
        !self.exclude.is_empty()
            || self
                .include
                .iter()
                .any(|p| matches!(p, TableSelector::Regex(..)))
    }
}
