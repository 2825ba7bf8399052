//! What Sluice asks PostgreSQL over its ordinary SQL connection: server settings, privileges,
//! tables, types, publications and slots. Queries live here, apart from the pipeline logic.

use std::collections::HashMap;

use tokio_postgres::Client;

use super::types::{TypeCatalog, TypeRow};
use super::PgError;
use crate::config::{TableFilter, TableSelector};
use crate::event::TableId;

/// Session settings that fix the text output shapes the value parsers expect.
pub const SESSION_SETTINGS: &[(&str, &str)] = &[
    ("DateStyle", "ISO"),
    ("TimeZone", "UTC"),
    ("IntervalStyle", "iso_8601"),
    ("bytea_output", "hex"),
    ("extra_float_digits", "3"),
    ("lc_monetary", "C"),
];

/// Applies [`SESSION_SETTINGS`] to a SQL session.
pub async fn apply_session_settings(client: &Client) -> Result<(), PgError> {
    let sql: String = SESSION_SETTINGS
        .iter()
        .map(|(k, v)| format!("SET {k} = '{v}';"))
        .collect();
    client.batch_execute(&sql).await.map_err(PgError::query)?;
    Ok(())
}

/// The same settings as a startup `options` string (for the replication session).
pub fn session_options() -> String {
    SESSION_SETTINGS
        .iter()
        .map(|(k, v)| format!("-c {k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes an identifier.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes a literal.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The planner's row estimate of a table named `schema.table` (no count), 0 when unknown:
/// what an incremental snapshot's progress is measured against while the stream runs.
pub async fn row_estimate_by_name(client: &Client, table: &str) -> i64 {
    let Some((schema, name)) = table.split_once('.') else {
        return 0;
    };
    client
        .query_opt(
            "SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples::int8 END FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &name],
        )
        .await
        .ok()
        .flatten()
        .and_then(|r| r.get::<_, Option<i64>>(0))
        .unwrap_or(0)
}

/// `wal_level`.
pub async fn wal_level(client: &Client) -> Result<String, PgError> {
    let row = client
        .query_one("SHOW wal_level", &[])
        .await
        .map_err(PgError::query)?;
    Ok(row.get(0))
}

/// Whether the session user may open replication connections.
pub async fn can_replicate(client: &Client) -> Result<(String, bool), PgError> {
    let row = client
        .query_one(
            "SELECT current_user::text, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(PgError::query)?;
    Ok((row.get(0), row.get(1)))
}

/// The current database's name.
pub async fn database_name(client: &Client) -> Result<String, PgError> {
    let row = client
        .query_one("SELECT current_database()::text", &[])
        .await
        .map_err(PgError::query)?;
    Ok(row.get(0))
}

/// The OID of the session's database and the server's current WAL position.
pub async fn database_oid_and_wal(client: &Client) -> Result<(u32, u64), PgError> {
    let row = client
        .query_one(
            "SELECT oid, pg_current_wal_lsn()::text FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .await
        .map_err(PgError::query)?;
    let lsn: String = row.get(1);
    let lsn = crate::position::parse_lsn(&lsn)
        .ok_or_else(|| PgError::Stream(format!("pg_current_wal_lsn() returned {lsn:?}")))?;
    Ok((row.get(0), lsn))
}

/// Expands configured table patterns to existing tables (with their OIDs); returns the
/// patterns that match nothing as the second element.
pub async fn expand_tables(
    client: &Client,
    filter: &TableFilter,
) -> Result<(Vec<(u32, TableId)>, Vec<String>), PgError> {
    let all = all_tables(client).await?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for pattern in &filter.include {
        // A partition's rows are read, and its changes published, through its partitioned
        // root (publish_via_partition_root): `schema.*` and `re:` entries name roots and plain
        // tables only; a partition named on its own keeps its own topic.
        let wildcard = pattern.exact().is_none();
        let matched: Vec<(u32, TableId)> = all
            .iter()
            .filter(|t| {
                matches(pattern, &t.id)
                    && !(wildcard && t.partition)
                    && filter.captures(&t.id.schema, &t.id.name)
            })
            .map(|t| (t.oid, t.id.clone()))
            .collect();
        if matched.is_empty() {
            missing.push(pattern.to_string());
        }
        for m in matched {
            if !found.iter().any(|(oid, _)| *oid == m.0) {
                found.push(m);
            }
        }
    }
    Ok((found, missing))
}

/// A table as the catalog lists it.
#[derive(Debug, Clone)]
pub struct ListedTable {
    /// Its OID.
    pub oid: u32,
    /// Schema and name.
    pub id: TableId,
    /// A partitioned table (its rows live in its partitions).
    pub partitioned: bool,
    /// A partition of a partitioned table.
    pub partition: bool,
}

/// Every ordinary and partitioned table outside the system schemas.
pub async fn all_tables(client: &Client) -> Result<Vec<ListedTable>, PgError> {
    let rows = client
        .query(
            "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind = 'p', c.relispartition \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             ORDER BY n.nspname, c.relname",
            &[],
        )
        .await
        .map_err(PgError::query)?;
    Ok(rows
        .iter()
        .map(|r| ListedTable {
            oid: r.get(0),
            id: TableId {
                schema: r.get(1),
                name: r.get(2),
            },
            partitioned: r.get(3),
            partition: r.get(4),
        })
        .collect())
}

/// Whether any configured table is partitioned (its changes then need the publication's
/// `publish_via_partition_root`).
pub async fn captures_partitioned(client: &Client, filter: &TableFilter) -> Result<bool, PgError> {
    Ok(all_tables(client)
        .await?
        .iter()
        .any(|t| t.partitioned && filter.captures(&t.id.schema, &t.id.name)))
}

/// The root of a partition (`None` for a table that is no partition).
pub async fn partition_root_of(client: &Client, oid: u32) -> Result<Option<TableId>, PgError> {
    let row = client
        .query_opt(
            "SELECT n.nspname::text, c.relname::text FROM pg_class p \
             JOIN pg_class c ON c.oid = pg_partition_root(p.oid) \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE p.oid = $1 AND p.relispartition",
            &[&oid],
        )
        .await
        .map_err(PgError::query)?;
    Ok(row.map(|r| TableId {
        schema: r.get(0),
        name: r.get(1),
    }))
}

/// Whether the publication publishes partitions' changes as their root's
/// (`publish_via_partition_root`).
pub async fn publication_via_root(client: &Client, name: &str) -> Result<bool, PgError> {
    Ok(client
        .query_opt(
            "SELECT pubviaroot FROM pg_publication WHERE pubname = $1",
            &[&name],
        )
        .await
        .map_err(PgError::query)?
        .is_some_and(|r| r.get::<_, bool>(0)))
}

/// Whether a configured entry (`schema.table`, `schema.*` or `re:`) covers a table.
pub fn matches(pattern: &TableSelector, table: &TableId) -> bool {
    pattern.matches(&table.schema, &table.name)
}

/// One column as the catalog describes it.
#[derive(Debug, Clone)]
pub struct CatalogColumn {
    /// Name.
    pub name: String,
    /// Type OID.
    pub type_oid: u32,
    /// Type modifier.
    pub typmod: i32,
    /// NOT NULL.
    pub not_null: bool,
    /// 1-based position in the primary key, 0 when not a key column.
    pub pk_position: i32,
    /// The default expression (`pg_get_expr` of `pg_attrdef`), if any.
    pub default_expr: Option<String>,
}

/// A table as the catalog describes it now.
#[derive(Debug, Clone)]
pub struct CatalogTable {
    /// Its identity.
    pub id: TableId,
    /// Captured columns in table order (no dropped or generated columns).
    pub columns: Vec<CatalogColumn>,
}

/// Describes a table by OID.
pub async fn describe_table(client: &Client, oid: u32) -> Result<Option<CatalogTable>, PgError> {
    let head = client
        .query_opt(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
            &[&oid],
        )
        .await
        .map_err(PgError::query)?;
    let Some(head) = head else { return Ok(None) };
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid, a.atttypmod, a.attnotnull, \
                    COALESCE((SELECT k.n FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) \
                              WHERE k.attnum = a.attnum), 0)::int4, \
                    pg_get_expr(d.adbin, d.adrelid) \
             FROM pg_attribute a \
             LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' \
             ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(PgError::query)?;
    Ok(Some(CatalogTable {
        id: TableId {
            schema: head.get(0),
            name: head.get(1),
        },
        columns: rows
            .iter()
            .map(|r| CatalogColumn {
                name: r.get(0),
                type_oid: r.get(1),
                typmod: r.get(2),
                not_null: r.get(3),
                pk_position: r.get(4),
                default_expr: r.get(5),
            })
            .collect(),
    }))
}

/// Loads `pg_type` and enum labels.
pub async fn load_types(client: &Client) -> Result<TypeCatalog, PgError> {
    let rows = client
        .query(
            "SELECT t.oid, t.typname::text, n.nspname::text, t.typtype::text, t.typelem, \
                    t.typcategory::text, t.typbasetype, t.typtypmod \
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace",
            &[],
        )
        .await
        .map_err(PgError::query)?;
    let first = |s: String| s.chars().next().unwrap_or(' ');
    let types = rows
        .iter()
        .map(|r| TypeRow {
            oid: r.get(0),
            name: r.get(1),
            namespace: r.get(2),
            typtype: first(r.get(3)),
            elem: r.get(4),
            category: first(r.get(5)),
            base: r.get(6),
            typmod: r.get(7),
        })
        .collect();
    let enum_rows = client
        .query(
            "SELECT enumtypid, enumlabel::text FROM pg_enum ORDER BY enumtypid, enumsortorder",
            &[],
        )
        .await
        .map_err(PgError::query)?;
    let mut enums: HashMap<u32, Vec<String>> = HashMap::new();
    for r in enum_rows {
        enums.entry(r.get(0)).or_default().push(r.get(1));
    }
    Ok(TypeCatalog::new(types, enums))
}

/// A replication slot's state.
#[derive(Debug, Clone)]
pub struct SlotInfo {
    /// Output plugin.
    pub plugin: String,
    /// Database it belongs to.
    pub database: String,
    /// OID of that database (0 for a physical slot).
    pub database_oid: u32,
    /// Whether a session holds it.
    pub active: bool,
    /// `confirmed_flush_lsn` as text.
    pub confirmed_flush: Option<String>,
    /// `wal_status` (`lost` when its WAL is gone).
    pub wal_status: Option<String>,
}

/// Looks a slot up.
pub async fn slot(client: &Client, name: &str) -> Result<Option<SlotInfo>, PgError> {
    let row = client
        .query_opt(
            "SELECT COALESCE(plugin::text, ''), COALESCE(database::text, ''), active, \
                    confirmed_flush_lsn::text, wal_status::text, COALESCE(datoid, 0::oid) \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&name],
        )
        .await
        .map_err(PgError::query)?;
    Ok(row.map(|r| SlotInfo {
        plugin: r.get(0),
        database: r.get(1),
        active: r.get(2),
        confirmed_flush: r.get(3),
        wal_status: r.get(4),
        database_oid: r.get(5),
    }))
}

/// Ends the session reading a slot (`pg_terminate_backend` of its `active_pid`); `true` when
/// one was ended.
pub async fn terminate_slot_reader(client: &Client, name: &str) -> Result<bool, PgError> {
    let row = client
        .query_opt(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
             WHERE slot_name = $1 AND active_pid IS NOT NULL",
            &[&name],
        )
        .await
        .map_err(PgError::query)?;
    Ok(row.is_some_and(|r| r.get::<_, bool>(0)))
}

/// Drops a slot.
pub async fn drop_slot(client: &Client, name: &str) -> Result<(), PgError> {
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&name])
        .await
        .map_err(PgError::query)?;
    Ok(())
}

/// Moves an inactive slot's confirmed position forward (used after the stream closed).
pub async fn advance_slot(client: &Client, name: &str, lsn: &str) -> Result<(), PgError> {
    client
        .execute(
            &format!(
                "SELECT pg_replication_slot_advance($1, {}::pg_lsn)",
                quote_literal(lsn)
            ),
            &[&name],
        )
        .await
        .map_err(PgError::query)?;
    Ok(())
}

/// Whether a publication exists.
pub async fn publication_exists(client: &Client, name: &str) -> Result<bool, PgError> {
    Ok(client
        .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&name])
        .await
        .map_err(PgError::query)?
        .is_some())
}

/// The publication objects that publish the configured tables (`schema.*` → `TABLES IN
/// SCHEMA`, so tables created there later are published too; regexes and exclusions → the
/// tables they select now, by name).
async fn publication_objects(
    client: &Client,
    filter: &TableFilter,
) -> Result<Vec<String>, PgError> {
    let mut parts = Vec::new();
    if filter.is_computed() {
        for (_, t) in expand_tables(client, filter).await?.0 {
            parts.push(format!(
                "TABLE {}.{}",
                quote_ident(&t.schema),
                quote_ident(&t.name)
            ));
        }
        if parts.is_empty() {
            return Err(PgError::setup(
                "postgres.tables selects no existing table (after exclude_tables): a publication needs at least one; create the tables or fix the patterns".to_string(),
            ));
        }
    } else {
        for p in &filter.include {
            if let TableSelector::Pattern(p) = p {
                match &p.table {
                    None => parts.push(format!("TABLES IN SCHEMA {}", quote_ident(&p.schema))),
                    Some(table) => parts.push(format!(
                        "TABLE {}.{}",
                        quote_ident(&p.schema),
                        quote_ident(table)
                    )),
                }
            }
        }
    }
    Ok(parts)
}

/// Creates a publication: for the configured tables, or `FOR ALL TABLES`.
pub async fn create_publication(
    client: &Client,
    name: &str,
    filter: &TableFilter,
    via_root: bool,
    all_tables: bool,
) -> Result<(), PgError> {
    let objects = if all_tables {
        "ALL TABLES".to_string()
    } else {
        publication_objects(client, filter).await?.join(", ")
    };
    let sql = format!(
        "CREATE PUBLICATION {} FOR {}{}",
        quote_ident(name),
        objects,
        if via_root {
            " WITH (publish_via_partition_root = true)"
        } else {
            ""
        }
    );
    client.batch_execute(&sql).await.map_err(PgError::query)?;
    Ok(())
}

/// What a publication publishes compared with what the connector captures.
#[derive(Debug, Default)]
pub struct Coverage {
    /// `FOR ALL TABLES`.
    pub all_tables: bool,
    /// Captured tables it does not publish.
    pub missing: Vec<TableId>,
    /// Tables it publishes that the connector does not capture.
    pub extra: Vec<TableId>,
}

/// Compares an existing publication's tables (`pg_publication_tables`) with the tables the
/// filter selects now.
pub async fn publication_coverage(
    client: &Client,
    name: &str,
    filter: &TableFilter,
) -> Result<Coverage, PgError> {
    let all_tables = client
        .query_opt(
            "SELECT puballtables FROM pg_publication WHERE pubname = $1",
            &[&name],
        )
        .await
        .map_err(PgError::query)?
        .is_some_and(|r| r.get::<_, bool>(0));
    if all_tables {
        return Ok(Coverage {
            all_tables,
            ..Coverage::default()
        });
    }
    let published: Vec<TableId> = client
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1",
            &[&name],
        )
        .await
        .map_err(PgError::query)?
        .iter()
        .map(|r| TableId {
            schema: r.get(0),
            name: r.get(1),
        })
        .collect();
    let captured: Vec<TableId> = expand_tables(client, filter)
        .await?
        .0
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    Ok(Coverage {
        all_tables,
        missing: captured
            .iter()
            .filter(|t| !published.contains(t))
            .cloned()
            .collect(),
        extra: published
            .into_iter()
            .filter(|t| !filter.captures(&t.schema, &t.name))
            .collect(),
    })
}

/// The statement that adds `tables` to a publication (tables only: a publication may be
/// shared with other connectors or subscribers, so nothing it publishes is taken away).
pub fn add_tables_sql(name: &str, tables: &[TableId]) -> String {
    let objects: Vec<String> = tables
        .iter()
        .map(|t| format!("TABLE {}.{}", quote_ident(&t.schema), quote_ident(&t.name)))
        .collect();
    format!(
        "ALTER PUBLICATION {} ADD {}",
        quote_ident(name),
        objects.join(", ")
    )
}
