//! `sluice slots list|drop`: the replication slots of the configured databases, which
//! connector owns each (or none: not Sluice's — it may be another tool's, a native
//! subscription's, or left behind), and dropping one that no session uses.

use std::collections::BTreeSet;

use crate::config::ConnectorConfig;

use super::ConnInfo;

/// How long a connection may take before the database counts as unreachable.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// One slot as `slots list` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRow {
    /// Slot name.
    pub name: String,
    /// Its database.
    pub database: String,
    /// The connector whose `postgres.slot` it is, if any.
    pub owner: Option<String>,
    /// A session reads it now.
    pub active: bool,
    /// WAL it holds back: current WAL position minus its confirmed position, in bytes.
    pub lag_bytes: Option<i64>,
    /// `wal_status` (`reserved`, `extended`, `unreserved`, `lost`).
    pub wal_status: Option<String>,
}

/// The distinct databases the PostgreSQL connectors point at, each with one connector to
/// connect through.
fn targets(connectors: &[ConnectorConfig]) -> Vec<&ConnectorConfig> {
    let mut seen = BTreeSet::new();
    connectors
        .iter()
        .filter(|c| {
            c.postgres
                .as_ref()
                .is_some_and(|pg| seen.insert(crate::config::target::redact(pg.url.expose())))
        })
        .collect()
}

/// Every logical slot of the configured databases (one line per slot), or the errors met.
pub async fn list(connectors: &[ConnectorConfig]) -> (Vec<SlotRow>, Vec<String>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for c in targets(connectors) {
        let pg = c.postgres.as_ref().expect("filtered");
        let client = match ConnInfo::parse(pg.url.expose(), pg.password.as_ref()) {
            Ok(info) => match tokio::time::timeout(CONNECT_TIMEOUT, info.connect()).await {
                Ok(Ok(client)) => client,
                Ok(Err(e)) => {
                    errors.push(format!("{}: {e}", c.file.display()));
                    continue;
                }
                Err(_) => {
                    errors.push(format!(
                        "{}: the server did not answer within 10 s",
                        c.file.display()
                    ));
                    continue;
                }
            },
            Err(e) => {
                errors.push(format!("{}: {e}", c.file.display()));
                continue;
            }
        };
        let found = client
            .query(
                "SELECT slot_name::text, COALESCE(database::text, ''), active, \
                        (pg_current_wal_lsn() - confirmed_flush_lsn)::int8, wal_status::text \
                 FROM pg_replication_slots \
                 WHERE slot_type = 'logical' AND database = current_database() \
                 ORDER BY slot_name",
                &[],
            )
            .await;
        let found = match found {
            Ok(f) => f,
            Err(e) => {
                errors.push(format!("{}: {e}", c.file.display()));
                continue;
            }
        };
        for r in found {
            let name: String = r.get(0);
            let database: String = r.get(1);
            // Owned by a connector of the folder that names this slot on this database.
            let owner = connectors
                .iter()
                .filter(|o| {
                    o.postgres.as_ref().is_some_and(|p| {
                        p.slot == name
                            && crate::config::target::redact(p.url.expose())
                                == crate::config::target::redact(pg.url.expose())
                    })
                })
                .map(|o| o.name.clone())
                .next();
            rows.push(SlotRow {
                name,
                database,
                owner,
                active: r.get(2),
                lag_bytes: r.get(3),
                wal_status: r.get(4),
            });
        }
    }
    (rows, errors)
}

/// Drops a slot of one of the configured databases; refused while a session reads it.
pub async fn drop(
    connectors: &[ConnectorConfig],
    slot: &str,
    force: bool,
) -> Result<String, String> {
    let named = connectors
        .iter()
        .any(|c| c.postgres.as_ref().is_some_and(|pg| pg.slot == slot));
    if !named && !force {
        return Err(format!(
            "no connector here names slot {slot}: it is not Sluice's, and may be another tool's (Debezium, a subscription) that is only disconnected for now; drop it with --force if you know nothing reads it"
        ));
    }
    for c in targets(connectors) {
        let pg = c.postgres.as_ref().expect("filtered");
        let info =
            ConnInfo::parse(pg.url.expose(), pg.password.as_ref()).map_err(|e| e.to_string())?;
        let client = info.connect().await.map_err(|e| e.to_string())?;
        let row = client
            .query_opt(
                "SELECT active, COALESCE(active_pid, 0) FROM pg_replication_slots \
                 WHERE slot_name = $1 AND database = current_database()",
                &[&slot],
            )
            .await
            .map_err(|e| e.to_string())?;
        let Some(row) = row else { continue };
        if row.get::<_, bool>(0) {
            let pid: i32 = row.get(1);
            return Err(format!(
                "slot {slot} is in use by session {pid} (a running connector?); stop it first"
            ));
        }
        client
            .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
            .await
            .map_err(|e| e.to_string())?;
        return Ok(format!("dropped slot {slot}"));
    }
    Err(format!(
        "no logical slot named {slot} in the databases of the PostgreSQL connectors"
    ))
}

/// Things `validate` points out without failing: slots no connector of the folder uses that
/// hold WAL back, and servers where such a slot may hold WAL without limit
/// (`max_slot_wal_keep_size = -1`).
pub async fn warnings(connectors: &[ConnectorConfig]) -> Vec<String> {
    let mut out = Vec::new();
    let (rows, _) = list(connectors).await;
    for r in rows.iter().filter(|r| r.owner.is_none() && !r.active) {
        out.push(format!(
            "replication slot {} in database {} is not Sluice's (used by no connector here; it may be another tool's or a subscription's) and holds {} bytes of WAL back while no session reads it; if it belongs to something no longer in use, its owner should drop it",
            r.name,
            r.database,
            r.lag_bytes.map_or("an unknown amount of".into(), |l| l.to_string()),
        ));
    }
    for c in targets(connectors) {
        let pg = c.postgres.as_ref().expect("filtered");
        let Ok(info) = ConnInfo::parse(pg.url.expose(), pg.password.as_ref()) else {
            continue;
        };
        let Ok(Ok(client)) = tokio::time::timeout(CONNECT_TIMEOUT, info.connect()).await else {
            continue;
        };
        if let Ok(row) = client.query_one("SHOW max_slot_wal_keep_size", &[]).await {
            let value: String = row.get(0);
            if value.trim() == "-1" {
                out.push(format!(
                    "{}: the server's max_slot_wal_keep_size is -1: a slot no one reads keeps WAL until the disk is full; set a limit (ALTER SYSTEM SET max_slot_wal_keep_size = '50GB')",
                    c.file.display()
                ));
            }
        }
    }
    out
}
