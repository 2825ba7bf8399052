//! Startup checks: each problem is one sentence naming the setting, its value and the fix.

use tokio_postgres::Client;

use super::{catalog, ConnInfo, PgError};
use crate::config::{ConnectorConfig, PublicationMode};
use crate::failure::SetupError;

/// Problems with the server's settings, the user's privileges and the captured tables.
pub(super) async fn server_problems(
    client: &Client,
    connector: &ConnectorConfig,
) -> Result<Vec<SetupError>, PgError> {
    let mut problems = Vec::new();
    let Some(pg) = &connector.postgres else {
        return Ok(problems);
    };
    let wal_level = catalog::wal_level(client).await?;
    if wal_level != "logical" {
        problems.push(SetupError::InvalidSetting {
            setting: "PostgreSQL wal_level".into(),
            actual: format!("'{wal_level}'"),
            expected: "'logical' for logical replication".into(),
            fix: "run ALTER SYSTEM SET wal_level = logical (or set wal_level = logical in postgresql.conf) and restart PostgreSQL".into(),
        });
    }
    let (user, may_replicate) = catalog::can_replicate(client).await?;
    if !may_replicate {
        problems.push(SetupError::MissingPrivilege {
            what: format!("user \"{user}\" may not replicate"),
            fix: format!("run ALTER ROLE \"{user}\" WITH REPLICATION (as a superuser), or connect as a user that has it"),
        });
    }
    let exists = catalog::publication_exists(client, &pg.publication).await?;
    if exists
        && catalog::captures_partitioned(client, &pg.filter).await?
        && !catalog::publication_via_root(client, &pg.publication).await?
    {
        problems.push(super::partition_root_problem(&pg.publication));
    }
    if !exists && pg.publication_autocreate == PublicationMode::Disabled {
        problems.push(SetupError::Other(format!(
            "postgres.publication \"{0}\" does not exist and publication_autocreate = \"disabled\" forbids creating it: run CREATE PUBLICATION {0} FOR TABLE ... for the captured tables, or set publication_autocreate = \"filtered\"",
            pg.publication
        )));
    }
    // `filtered` brings the publication in line at start; otherwise a captured table it does
    // not publish would never be seen.
    if exists && pg.publication_autocreate != PublicationMode::Filtered {
        let coverage = catalog::publication_coverage(client, &pg.publication, &pg.filter).await?;
        if !coverage.missing.is_empty() {
            let names = super::list(&coverage.missing);
            problems.push(SetupError::Other(format!(
                "postgres.publication \"{0}\" does not publish {names}, which postgres.tables captures (their changes would never be sent): run ALTER PUBLICATION {0} ADD TABLE {names}, or set publication_autocreate = \"filtered\" to let Sluice keep it in line",
                pg.publication
            )));
        }
    }
    let (_, missing) = catalog::expand_tables(client, &pg.filter).await?;
    for m in missing {
        problems.push(SetupError::Other(format!(
            "postgres.tables lists \"{m}\" but no such table exists in database \"{}\": create it or fix the name (schema.table)",
            catalog::database_name(client).await?
        )));
    }
    Ok(problems)
}

/// Everything `sluice validate` checks for one PostgreSQL connector: the server can be
/// reached, is set up for logical replication, the user may replicate, the tables exist and
/// the slot is free. Returns problems as sentences.
pub async fn preflight(connector: &ConnectorConfig) -> Vec<String> {
    let Some(pg) = &connector.postgres else {
        return Vec::new();
    };
    let info = match ConnInfo::parse(pg.url.expose(), pg.password.as_ref()) {
        Ok(i) => i,
        Err(e) => return vec![format!("postgres.url: {e}")],
    };
    let client = match tokio::time::timeout(std::time::Duration::from_secs(10), info.connect())
        .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            let text = e.to_string();
            // A TLS failure already says what to change.
            if text.contains("TLS") || text.contains("certificate") {
                return vec![format!("postgres.url: {text}")];
            }
            return vec![format!(
                "postgres.url: {text}; check that PostgreSQL runs there and that the user, password and database are right"
            )];
        }
        Err(_) => {
            return vec![format!(
                "postgres.url: no answer from {} within 10 s; check the host and port",
                info.target()
            )]
        }
    };
    let mut problems = match server_problems(&client, connector).await {
        Ok(p) => p.iter().map(ToString::to_string).collect(),
        Err(e) => vec![e.to_string()],
    };
    match client
        .query(
            "SELECT table_schema::text, table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY table_schema, table_name, ordinal_position",
            &[],
        )
        .await
    {
        Ok(rows) => {
            let mut columns = crate::source::columns_check::Columns::new();
            for r in rows {
                columns
                    .entry((r.get(0), r.get(1)))
                    .or_default()
                    .push(r.get(2));
            }
            problems.extend(crate::source::columns_check::column_problems(connector, &columns));
        }
        Err(e) => problems.push(PgError::query(e).to_string()),
    }
    match catalog::slot(&client, &pg.slot).await {
        Ok(Some(s)) if s.active => problems.push(format!(
            "postgres.slot \"{}\" is in use by another session: stop the other consumer or choose another slot name",
            pg.slot
        )),
        Ok(Some(s)) if s.plugin != "pgoutput" => problems.push(format!(
            "postgres.slot \"{}\" exists with plugin \"{}\"; Sluice needs pgoutput: drop it or choose another slot name",
            pg.slot, s.plugin
        )),
        Ok(Some(s)) if s.database != info.database => problems.push(format!(
            "postgres.slot \"{}\" belongs to database \"{}\", not \"{}\": choose another slot name",
            pg.slot, s.database, info.database
        )),
        Ok(_) => {}
        Err(e) => problems.push(e.to_string()),
    }
    problems
}
