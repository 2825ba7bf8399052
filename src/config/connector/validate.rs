//! Validation of a parsed connector file: every rule names the key and the fix.

use super::*;

impl ConnectorConfig {
    fn invalid(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.file.clone(),
            key: key.into(),
            problem: problem.into(),
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(self.invalid(
                "name",
                format!(
                    "\"{}\" must be non-empty and use only letters, digits, '_', '-' and '.'",
                    self.name
                ),
            ));
        }
        check_topic_prefix(&self.topic_prefix).map_err(|why| self.invalid("topic_prefix", why))?;
        for op in &self.skipped_operations {
            if !matches!(op.as_str(), "c" | "u" | "d" | "t") {
                return Err(self.invalid(
                    "skipped_operations",
                    format!("contains \"{op}\"; allowed are \"c\", \"u\", \"d\" and \"t\""),
                ));
            }
        }
        self.validate_format()?;
        self.validate_types()?;
        self.validate_columns()?;
        self.validate_unwrap()?;
        crate::config::route::check_routes(&self.route)
            .map_err(|(key, why)| self.invalid(&key, why))?;
        if self.heartbeat_interval_ms == Some(0) {
            return Err(self.invalid(
                "heartbeat_interval_ms",
                "must be at least 1 (milliseconds), or absent to turn heartbeats off",
            ));
        }
        match self.source {
            SourceKind::Postgres => {
                let Some(pg) = &self.postgres else {
                    return Err(self.invalid(
                        "postgres",
                        "is missing: a `source = \"postgres\"` connector needs a [postgres] table with url, slot, publication and tables",
                    ));
                };
                self.validate_postgres(pg)?;
                if self.mysql.is_some() {
                    return Err(self.invalid(
                        "mysql",
                        "belongs to `source = \"mysql\"` connectors; remove it",
                    ));
                }
            }
            SourceKind::Mysql => {
                let Some(my) = &self.mysql else {
                    return Err(self.invalid(
                        "mysql",
                        "is missing: a `source = \"mysql\"` connector needs a [mysql] table with url, server_id and tables",
                    ));
                };
                if self.postgres.is_some() {
                    return Err(self.invalid(
                        "postgres",
                        "belongs to `source = \"postgres\"` connectors; remove it",
                    ));
                }
                self.validate_mysql(my)?;
            }
        }
        Ok(())
    }

    /// `[outbox]`: each table parses and is captured, placements parse, Avro gets no
    /// expanded JSON.
    /// `[snapshot] chunk_size` and `[signals] table`: the signal table is one the connector
    /// captures (its rows are read from the change stream like any captured table's).
    pub(super) fn validate_signals(&self) -> Result<(), ConfigError> {
        if !(1..=1_000_000).contains(&self.snapshot.chunk_size) {
            return Err(self.invalid(
                "snapshot.chunk_size",
                format!(
                    "is {}; rows per chunk must be 1 to 1000000",
                    self.snapshot.chunk_size
                ),
            ));
        }
        let Some(table) = &self.signals.table else {
            return Ok(());
        };
        let Some((schema, name)) = table
            .split_once('.')
            .filter(|(s, n)| !s.is_empty() && !n.is_empty())
        else {
            return Err(self.invalid(
                "signals.table",
                format!("\"{table}\" must name one table as schema.table (MySQL: db.table)"),
            ));
        };
        let captured = match self.source {
            SourceKind::Postgres => self.postgres.as_ref().map(|c| &c.filter),
            SourceKind::Mysql => self.mysql.as_ref().map(|c| &c.filter),
        }
        .is_some_and(|f| f.captures(schema, name));
        if !captured {
            return Err(self.invalid(
                "signals.table",
                format!("\"{table}\" is not captured, so its rows would never be read: add it to tables (signals sent through the admin API need no table)"),
            ));
        }
        Ok(())
    }

    pub(super) fn validate_outbox(&self) -> Result<(), ConfigError> {
        for o in &self.outbox {
            let p = o
                .table_pattern()
                .map_err(|why| self.invalid("outbox.table", why))?;
            let table = p.table.as_deref().unwrap_or_default();
            let captured = match self.source {
                SourceKind::Postgres => self.postgres.as_ref().map(|c| &c.filter),
                SourceKind::Mysql => self.mysql.as_ref().map(|c| &c.filter),
            }
            .is_some_and(|f| f.captures(&p.schema, table));
            if !captured {
                return Err(self.invalid(
                    "outbox.table",
                    format!("\"{}\" is not captured: add it to tables", o.table),
                ));
            }
            o.additional()
                .map_err(|why| self.invalid("outbox.additional_placement", why))?;
            if o.expand_json_payload && self.format.value == ValueFormat::Avro {
                return Err(self.invalid(
                    "outbox.expand_json_payload",
                    "expands JSON values only; with Avro values the payload is published as its column's type: remove it or use JSON",
                ));
            }
            if !o.route_topic_replacement.contains("${routedByValue}") {
                check_topic_prefix(&o.route_topic_replacement)
                    .map_err(|why| self.invalid("outbox.route_topic_replacement", why))?;
            }
        }
        Ok(())
    }

    /// `[unwrap]`: every added field names a change-event field, no name twice; the drop
    /// header is one `[changed_fields]` writes.
    fn validate_unwrap(&self) -> Result<(), ConfigError> {
        let u = &self.unwrap;
        let cf = &self.changed_fields;
        for (key, name) in [
            (
                "changed_fields.header_changed_name",
                &cf.header_changed_name,
            ),
            (
                "changed_fields.header_unchanged_name",
                &cf.header_unchanged_name,
            ),
        ] {
            if name.as_deref().is_some_and(str::is_empty) {
                return Err(self.invalid(key, "must not be empty"));
            }
        }
        if cf.header_changed_name.is_some() && cf.header_changed_name == cf.header_unchanged_name {
            return Err(self.invalid(
                "changed_fields.header_unchanged_name",
                "is the same header as header_changed_name: give them different names",
            ));
        }
        if let Some(h) = &u.drop_fields_header_name {
            if cf.header_changed_name.as_ref() != Some(h)
                && cf.header_unchanged_name.as_ref() != Some(h)
            {
                return Err(self.invalid(
                    "unwrap.drop_fields_header_name",
                    format!("names the header \"{h}\", which no record carries: set [changed_fields] header_unchanged_name = \"{h}\" (or header_changed_name) so updates list their fields in it"),
                ));
            }
        }
        for (key, entries, prefix) in [
            ("unwrap.add_fields", &u.add_fields, &u.add_fields_prefix),
            ("unwrap.add_headers", &u.add_headers, &u.add_headers_prefix),
        ] {
            let mut names = std::collections::BTreeSet::new();
            for entry in entries {
                let f = crate::config::unwrap::parse_meta_field(entry, prefix)
                    .map_err(|why| self.invalid(key, why))?;
                if !names.insert(f.name.clone())
                    || (key == "unwrap.add_fields" && f.name == "__deleted")
                {
                    return Err(self.invalid(
                        key,
                        format!(
                            "\"{entry}\" gives the name {} twice; rename one with field:NEW_NAME",
                            f.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `[columns]` and `key_columns`: every pattern parses, every algorithm is known, a
    /// column is not both masked and a key column.
    fn validate_columns(&self) -> Result<(), ConfigError> {
        let c = &self.columns;
        let lists: [(&str, Vec<&String>); 4] = [
            ("columns.exclude", c.exclude.iter().collect()),
            ("columns.mask_hash", c.mask_hash.keys().collect()),
            (
                "columns.mask_with_chars",
                c.mask_with_chars.keys().collect(),
            ),
            ("columns.truncate_to", c.truncate_to.keys().collect()),
        ];
        for (key, entries) in &lists {
            for e in entries {
                if let Err(why) = ColumnPattern::parse(e) {
                    return Err(self.invalid(key, format!("{e:?} {why}")));
                }
            }
        }
        for (col, m) in &c.mask_hash {
            if !matches!(
                m.algorithm.as_str(),
                "SHA-1" | "SHA-256" | "SHA-384" | "SHA-512"
            ) {
                return Err(self.invalid(
                    "columns.mask_hash",
                    format!("{col:?}: algorithm {:?} is not offered; use \"SHA-256\" (or SHA-1, SHA-384, SHA-512)", m.algorithm),
                ));
            }
        }
        for (table, cols) in &self.key_columns {
            let selector = TableSelector::parse(table)
                .map_err(|why| self.invalid("key_columns", format!("{table:?}: {why}")))?;
            if cols.is_empty() {
                return Err(self.invalid("key_columns", format!("{table:?} lists no column")));
            }
            // A masked key would publish masked keys: refused, as the masking's purpose
            // would be lost in compaction and partitioning.
            let masked: Vec<ColumnPattern> = c
                .mask_hash
                .keys()
                .chain(c.mask_with_chars.keys())
                .filter_map(|p| ColumnPattern::parse(p).ok())
                .collect();
            if let TableSelector::Pattern(TablePattern {
                schema,
                table: Some(t),
            }) = &selector
            {
                for col in cols {
                    if masked.iter().any(|m| m.matches(schema, t, col)) {
                        return Err(self.invalid(
                            "key_columns",
                            format!("{table}.{col} is also masked in [columns]; a key column cannot be masked: pick other key columns or stop masking it"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// `[types]` keys that only one source has are refused on the other, so a setting never
    /// silently does nothing.
    fn validate_types(&self) -> Result<(), ConfigError> {
        let t = &self.types;
        let d = TypesConfig::default();
        match self.source {
            SourceKind::Postgres => {
                let mysql_only = [
                    (
                        "types.tinyint1_as_boolean",
                        t.tinyint1_as_boolean != d.tinyint1_as_boolean,
                    ),
                    ("types.time_adjuster", t.time_adjuster != d.time_adjuster),
                    (
                        "types.bigint_unsigned_handling_mode",
                        t.bigint_unsigned_handling_mode != d.bigint_unsigned_handling_mode,
                    ),
                ];
                if let Some((key, _)) = mysql_only.iter().find(|(_, set)| *set) {
                    return Err(
                        self.invalid(key, "applies to MySQL/MariaDB connectors only; remove it")
                    );
                }
            }
            SourceKind::Mysql => {
                let pg_only = [
                    (
                        "types.interval_handling_mode",
                        t.interval_handling_mode != d.interval_handling_mode,
                    ),
                    (
                        "types.hstore_handling_mode",
                        t.hstore_handling_mode != d.hstore_handling_mode,
                    ),
                ];
                if let Some((key, _)) = pg_only.iter().find(|(_, set)| *set) {
                    return Err(
                        self.invalid(key, "applies to PostgreSQL connectors only; remove it")
                    );
                }
                if t.time_precision_mode == Some(TimePrecisionMode::Adaptive) {
                    return Err(self.invalid(
                        "types.time_precision_mode",
                        "\"adaptive\" is not offered for MySQL/MariaDB (as in Debezium); use \"adaptive_time_microseconds\" (the default) or \"connect\"",
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_mysql(&self, my: &MysqlConfig) -> Result<(), ConfigError> {
        let url = my.url.expose();
        if !(url.starts_with("mysql://") || url.starts_with("mariadb://")) {
            return Err(self.invalid(
                "mysql.url",
                "must start with mysql:// (mysql://user:password@host:port)",
            ));
        }
        if let Err(problem) = crate::config::target::mysql(url) {
            return Err(self.invalid("mysql.url", problem));
        }
        let normalized = url.replacen("mariadb://", "mysql://", 1);
        let normalized = match crate::config::target::split_mysql_tls(&normalized) {
            Ok((rest, _)) => rest,
            Err(problem) => return Err(self.invalid("mysql.url", problem)),
        };
        if mysql_async::Opts::from_url(&normalized).is_err() {
            return Err(self.invalid(
                "mysql.url",
                "is not a valid connection URL; expected mysql://user:password@host:port",
            ));
        }
        if my.server_id == 0 {
            return Err(self.invalid(
                "mysql.server_id",
                "must be between 1 and 4294967295 and differ from every server and replica id in the replication topology",
            ));
        }
        if my.tables.is_empty() {
            return Err(self.invalid(
                "mysql.tables",
                "is empty; list the tables to capture, e.g. [\"shop.orders\"] or [\"shop.*\"]",
            ));
        }
        for (key, t) in my.tables.iter().map(|t| ("mysql.tables", t)).chain(
            my.exclude_tables
                .iter()
                .map(|t| ("mysql.exclude_tables", t)),
        ) {
            if let Err(why) = TableSelector::parse(t) {
                return Err(self.invalid(
                    key,
                    format!("contains {t:?}: {why}; write database.table, database.* or re:<regex> (for example \"shop.orders\"), quoting names that contain dots (\"\\\"my.db\\\".orders\")"),
                ));
            }
        }
        Ok(())
    }

    fn validate_format(&self) -> Result<(), ConfigError> {
        let f = &self.format;
        if f.uses_avro() {
            let Some(url) = f.registry_url.as_deref() else {
                return Err(self.invalid(
                    "format.registry_url",
                    "is required for Avro: set it to the schema registry's URL, e.g. \"http://registry:8081\"",
                ));
            };
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(self.invalid(
                    "format.registry_url",
                    format!(
                        "\"{}\" is not an http:// or https:// URL",
                        crate::config::target::redact(url)
                    ),
                ));
            }
            if f.registry_cert_file.is_some() != f.registry_key_file.is_some() {
                return Err(self.invalid(
                    "format.registry_cert_file",
                    "and format.registry_key_file go together: set both or neither",
                ));
            }
            if let Err(problem) = crate::config::target::parse(url, "http(s)://host:port") {
                return Err(self.invalid("format.registry_url", problem));
            }
            if f.schemas.is_some()
                && f.value == ValueFormat::Avro
                && f.key_format() == ValueFormat::Avro
            {
                return Err(self.invalid(
                    "format.schemas",
                    "applies to JSON only; remove it (Avro schemas live in the registry)",
                ));
            }
        } else if f.registry_url.is_some() {
            return Err(self.invalid(
                "format.registry_url",
                "is only used with value = \"avro\" or key = \"avro\"; remove it or switch the format",
            ));
        }
        if f.registry_username.is_some() != f.registry_password.is_some() {
            return Err(self.invalid(
                "format.registry_username",
                "and format.registry_password go together: set both or neither",
            ));
        }
        Ok(())
    }

    fn validate_postgres(&self, pg: &PostgresConfig) -> Result<(), ConfigError> {
        let url = pg.url.expose();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(self.invalid(
                "postgres.url",
                "must start with postgres:// (postgres://user:password@host:port/database)",
            ));
        }
        if let Err(problem) = crate::config::target::postgres(url) {
            return Err(self.invalid("postgres.url", problem));
        }
        let url = match crate::config::target::split_postgres_tls(url) {
            Ok((rest, _)) => rest,
            Err(problem) => return Err(self.invalid("postgres.url", problem)),
        };
        if url.parse::<tokio_postgres::Config>().is_err() {
            return Err(self.invalid(
                "postgres.url",
                "is not a valid connection URL; expected postgres://user:password@host:port/database",
            ));
        }
        let ident_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        if !ident_ok(&pg.slot) {
            return Err(self.invalid(
                "postgres.slot",
                format!(
                    "\"{}\": slot names use lower-case letters, digits and '_' (at most 63)",
                    pg.slot
                ),
            ));
        }
        if !ident_ok(&pg.publication) {
            return Err(self.invalid(
                "postgres.publication",
                format!(
                    "\"{}\": publication names use lower-case letters, digits and '_' (at most 63); the replication protocol takes the name unquoted",
                    pg.publication
                ),
            ));
        }
        if pg.tables.is_empty() {
            return Err(self.invalid(
                "postgres.tables",
                "is empty; list the tables to capture, e.g. [\"public.customers\"] or [\"public.*\"]",
            ));
        }
        for (key, t) in pg.tables.iter().map(|t| ("postgres.tables", t)).chain(
            pg.exclude_tables
                .iter()
                .map(|t| ("postgres.exclude_tables", t)),
        ) {
            if let Err(why) = TableSelector::parse(t) {
                return Err(self.invalid(
                    key,
                    format!("contains {t:?}: {why}; write schema.table, schema.* or re:<regex> (for example \"public.orders\"), double-quoting names with dots, quotes or capitals (\"\\\"My Schema\\\".\\\"Orders\\\"\")"),
                ));
            }
        }
        Ok(())
    }
}

/// Checks that a prefix makes legal Kafka topic names.
fn check_topic_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Err("is empty; set it to a short name such as \"inventory\"".into());
    }
    if prefix == "." || prefix == ".." {
        return Err(format!("\"{prefix}\" is not a legal Kafka topic name"));
    }
    // The longest topic the prefix alone decides is the heartbeat topic.
    let longest = HEARTBEAT_TOPIC_PREFIX.len() + prefix.len();
    if longest > MAX_TOPIC_LEN {
        return Err(format!(
            "is {} characters long; with it the heartbeat topic {HEARTBEAT_TOPIC_PREFIX}<topic_prefix> has {longest} characters and Kafka topic names are limited to {MAX_TOPIC_LEN}: use at most {} characters",
            prefix.len(),
            MAX_TOPIC_LEN - HEARTBEAT_TOPIC_PREFIX.len()
        ));
    }
    if let Some(bad) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "\"{prefix}\" contains '{bad}', which Kafka topic names cannot hold; use letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}
