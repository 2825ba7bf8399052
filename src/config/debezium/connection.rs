//! Debezium's connection, table selection and snapshot properties.

use super::{list, put, regex_pattern, s, strings, Props};

/// Userinfo, path and query text percent-encoded for a URL.
fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// `database.*`: the URL (without the password, which goes to `<source>.password`), TLS,
/// and the server id of a MySQL replica.
pub(super) fn connection(p: &mut Props, doc: &mut toml::Table, source: &str, name: &str) {
    let host = p.take("database.hostname").unwrap_or_else(|| {
        p.refuse(
            "database.hostname",
            "missing (the database server's host name)",
        );
        String::new()
    });
    let default_port = if source == "postgres" { "5432" } else { "3306" };
    let port = p
        .take("database.port")
        .unwrap_or_else(|| default_port.into());
    if port.parse::<u16>().is_err() {
        p.refuse("database.port", format!("\"{port}\" is not a port number"));
    }
    let user = p.take("database.user").unwrap_or_else(|| {
        p.refuse("database.user", "missing (the replication user)");
        String::new()
    });
    if let Some(password) = p.take("database.password") {
        put(doc, &format!("{source}.password"), s(password));
    }
    let host_part = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    let mut params: Vec<(String, String)> = Vec::new();
    let url = if source == "postgres" {
        let db = p.take("database.dbname").unwrap_or_else(|| {
            p.refuse("database.dbname", "missing (the database to capture)");
            String::new()
        });
        if let Some(mode) = p.take("database.sslmode") {
            let lower = mode.to_ascii_lowercase();
            if [
                "disable",
                "allow",
                "prefer",
                "require",
                "verify-ca",
                "verify-full",
            ]
            .contains(&lower.as_str())
            {
                params.push(("sslmode".into(), lower));
            } else {
                p.refuse(
                    "database.sslmode",
                    format!("\"{mode}\" is not a libpq sslmode"),
                );
            }
        }
        for (key, param) in [
            ("database.sslrootcert", "sslrootcert"),
            ("database.sslcert", "sslcert"),
            ("database.sslkey", "sslkey"),
        ] {
            if let Some(file) = p.take(key) {
                params.push((param.into(), file));
            }
        }
        if p.take("database.sslpassword").is_some() {
            p.refuse("database.sslpassword", "encrypted client keys are not offered; give an unencrypted PEM key in database.sslkey");
        }
        if p.take("database.sslfactory").is_some() {
            p.refuse("database.sslfactory", "Sluice verifies servers with rustls (use database.sslmode and database.sslrootcert)");
        }
        if p.take("database.initial.statements").is_some() {
            p.refuse(
                "database.initial.statements",
                "Sluice runs no statements given in a config",
            );
        }
        plugin_slot_publication(p, doc);
        format!(
            "postgres://{}@{host_part}:{port}/{}",
            encode(&user),
            encode(&db)
        )
    } else {
        if let Some(mode) = p.take("database.ssl.mode") {
            let upper = mode.to_ascii_uppercase();
            if [
                "DISABLED",
                "PREFERRED",
                "REQUIRED",
                "VERIFY_CA",
                "VERIFY_IDENTITY",
            ]
            .contains(&upper.as_str())
            {
                params.push(("ssl-mode".into(), upper));
            } else {
                p.refuse(
                    "database.ssl.mode",
                    format!("\"{mode}\" is not a MySQL ssl mode"),
                );
            }
        }
        for key in [
            "database.ssl.truststore",
            "database.ssl.keystore",
            "database.ssl.truststore.password",
            "database.ssl.keystore.password",
        ] {
            if p.take(key).is_some() {
                p.refuse(key, "Java key stores are not read; give PEM files in Sluice's mysql.url (ssl-ca=, ssl-cert=, ssl-key=)");
            }
        }
        if p.take("database.initial.statements").is_some() {
            p.refuse(
                "database.initial.statements",
                "Sluice runs no statements given in a config",
            );
        }
        let id = match p.number("database.server.id") {
            Some(id) if id > 0 && id <= i64::from(u32::MAX) => id,
            Some(_) => {
                p.refuse("database.server.id", "must be between 1 and 4294967295");
                0
            }
            // Debezium picks a random id in 5400..=6400; this one is stable per name.
            None => {
                let id = 5400 + i64::from(fnv1a(name) % 1001);
                p.warnings.push(format!(
                    "database.server.id: not given; {id} is used (derived from the connector's name; every replica of a server needs its own id)"
                ));
                id
            }
        };
        put(doc, "mysql.server_id", toml::Value::Integer(id));
        for key in [
            "gtid.source.includes",
            "gtid.source.excludes",
            "include.query",
        ] {
            if p.take(key).is_some() {
                p.refuse(key, "not offered by Sluice");
            }
        }
        format!("mysql://{}@{host_part}:{port}", encode(&user))
    };
    let url = if params.is_empty() {
        url
    } else {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        format!("{url}?{}", query.join("&"))
    };
    put(doc, &format!("{source}.url"), s(url));
}

/// FNV-1a of a name (stable across versions and machines, unlike `DefaultHasher`).
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// PostgreSQL's `plugin.name`, `slot.*` and `publication.*`.
fn plugin_slot_publication(p: &mut Props, doc: &mut toml::Table) {
    if let Some(plugin) = p.take("plugin.name") {
        if plugin != "pgoutput" {
            p.refuse(
                "plugin.name",
                format!("\"{plugin}\" is not offered: Sluice decodes pgoutput, PostgreSQL's built-in plugin (nothing to install on the server); set plugin.name=pgoutput (a new slot is needed: a slot's plugin cannot change)"),
            );
        }
    }
    let slot = p.take("slot.name").unwrap_or_else(|| "debezium".into());
    put(doc, "postgres.slot", s(slot));
    let publication = p
        .take("publication.name")
        .unwrap_or_else(|| "dbz_publication".into());
    put(doc, "postgres.publication", s(publication));
    // Debezium's default is all_tables (Sluice's own default is filtered).
    let mode = p
        .take("publication.autocreate.mode")
        .unwrap_or_else(|| "all_tables".into());
    match mode.to_ascii_lowercase().as_str() {
        m @ ("all_tables" | "filtered" | "disabled") => {
            put(doc, "postgres.publication_autocreate", s(m))
        }
        _ => p.refuse(
            "publication.autocreate.mode",
            format!("\"{mode}\" is not offered; use all_tables, filtered or disabled"),
        ),
    }
    if let Some(b) = p.flag("slot.drop.on.stop") {
        put(doc, "postgres.drop_slot_on_stop", toml::Value::Boolean(b));
    }
    if let Some(ms) = p.number("status.update.interval.ms") {
        put(
            doc,
            "postgres.status_interval_ms",
            toml::Value::Integer(ms.max(1)),
        );
    }
    p.only(
        "flush.lsn.source",
        &["true"],
        "Sluice always confirms the slot's position once changes are stored in Kafka",
    );
    if p.take("slot.stream.params").is_some() {
        p.refuse(
            "slot.stream.params",
            "Sluice sets pgoutput's options itself",
        );
    }
}

/// Schema / database / table include and exclude lists as `tables` and `exclude_tables`.
pub(super) fn selection(p: &mut Props, doc: &mut toml::Table, source: &str) {
    let (container, old) = if source == "postgres" {
        ("schema", "schema")
    } else {
        ("database", "database")
    };
    let containers_in = p.take_or_old(
        &format!("{container}.include.list"),
        &format!("{old}.whitelist"),
    );
    let containers_out = p.take_or_old(
        &format!("{container}.exclude.list"),
        &format!("{old}.blacklist"),
    );
    let tables_in = p.take_or_old("table.include.list", "table.whitelist");
    let tables_out = p.take_or_old("table.exclude.list", "table.blacklist");
    let whole = |c: &str| regex_pattern(&format!("(?:{c})\\..*"));
    let mut include: Vec<String> = Vec::new();
    let mut exclude: Vec<String> = Vec::new();
    match (&tables_in, &containers_in) {
        (Some(t), Some(c)) => {
            include = list(t).iter().map(|t| regex_pattern(t)).collect();
            p.warnings.push(format!(
                "{container}.include.list: applied through table.include.list (a listed table outside the listed {container}s would be captured too: {c})"
            ));
        }
        (Some(t), None) => include = list(t).iter().map(|t| regex_pattern(t)).collect(),
        (None, Some(c)) => include = list(c).iter().map(|c| whole(c)).collect(),
        (None, None) => include.push(regex_pattern(".*")),
    }
    if let Some(c) = &containers_out {
        exclude.extend(list(c).iter().map(|c| whole(c)));
    }
    if let Some(t) = &tables_out {
        exclude.extend(list(t).iter().map(|t| regex_pattern(t)));
    }
    if containers_in.is_none() && tables_in.is_none() {
        // Debezium leaves the servers' own schemas out.
        let system = if source == "postgres" {
            "(?:pg_catalog|information_schema|pg_toast)\\..*"
        } else {
            "(?:mysql|performance_schema|sys|information_schema)\\..*"
        };
        exclude.push(regex_pattern(system));
    }
    put(doc, &format!("{source}.tables"), strings(include));
    if !exclude.is_empty() {
        put(doc, &format!("{source}.exclude_tables"), strings(exclude));
    }
    if p.flag("table.ignore.builtin") == Some(false) {
        p.refuse(
            "table.ignore.builtin",
            "Sluice never captures the server's own schemas",
        );
    }
}

/// `snapshot.mode` and the snapshot properties that choose what is read.
pub(super) fn snapshot(p: &mut Props, doc: &mut toml::Table, source: &str) {
    if let Some(mode) = p.take("snapshot.mode") {
        let lower = mode.to_ascii_lowercase();
        let mapped = match lower.as_str() {
            "initial" | "initial_only" | "when_needed" | "always" | "no_data" => {
                Some(lower.clone())
            }
            "never" | "schema_only" => {
                p.warnings.push(format!(
                    "snapshot.mode: \"{mode}\" is Debezium's deprecated name of no_data"
                ));
                Some("no_data".into())
            }
            "schema_only_recovery" | "recovery" if source == "mysql" => {
                p.warnings.push(format!(
                    "snapshot.mode: \"{mode}\" rebuilds Debezium's schema history, which Sluice does not keep: read as no_data"
                ));
                Some("no_data".into())
            }
            _ => None,
        };
        match mapped {
            Some(m) => put(doc, "snapshot.mode", s(m)),
            None => p.refuse(
                "snapshot.mode",
                format!("\"{mode}\" is not offered; use initial, initial_only, when_needed, always or no_data"),
            ),
        }
    }
    for key in [
        "snapshot.include.collection.list",
        "snapshot.select.statement.overrides",
        "snapshot.custom.class",
        "snapshot.query.mode",
    ] {
        if p.take(key).is_some() {
            p.refuse(
                key,
                "not offered: Sluice snapshots every captured table with its own queries",
            );
        }
    }
    if !p
        .take_prefixed("snapshot.select.statement.overrides.")
        .is_empty()
    {
        p.refuse(
            "snapshot.select.statement.overrides.*",
            "not offered: Sluice runs no SQL given in a config",
        );
    }
    if !p
        .take_prefixed("snapshot.mode.configuration.based.")
        .is_empty()
    {
        p.refuse(
            "snapshot.mode.configuration.based.*",
            "not offered; use snapshot.mode initial, initial_only, when_needed, always or no_data",
        );
    }
}
