//! Startup checks: each problem is one message naming the setting, its value and the fix.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use super::{catalog, server_info, ConnInfo, MyError, ServerInfo};
use crate::config::ConnectorConfig;
use crate::event::MysqlFlavor;
use crate::failure::SetupError;

async fn variable(conn: &mut Conn, name: &str) -> Result<Option<String>, MyError> {
    let rows: Vec<Row> = conn
        .exec("SHOW GLOBAL VARIABLES WHERE Variable_name = ?", (name,))
        .await
        .map_err(MyError::query)?;
    Ok(rows.first().and_then(|r| match r.as_ref(1) {
        Some(mysql_async::Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }))
}

/// Everything wrong with the server's settings and the user's privileges for this connector.
pub async fn server_problems(
    conn: &mut Conn,
    server: &ServerInfo,
    connector: &ConnectorConfig,
) -> Result<Vec<SetupError>, MyError> {
    let mut problems = Vec::new();
    let restart_hint = match server.flavor {
        MysqlFlavor::Mariadb => "in the [mariadb] section of the server's configuration",
        MysqlFlavor::Mysql => "in the [mysqld] section of my.cnf",
    };
    let log_bin = variable(conn, "log_bin").await?.unwrap_or_default();
    if !matches!(log_bin.to_ascii_uppercase().as_str(), "ON" | "1") {
        problems.push(SetupError::InvalidSetting {
            setting: "log_bin".into(),
            actual: if log_bin.is_empty() {
                "OFF".into()
            } else {
                log_bin
            },
            expected: "ON (the server writes no binlog)".into(),
            fix: format!(
                "set log_bin (e.g. log_bin = mysql-bin) {restart_hint} and restart the server"
            ),
        });
    }
    let expect = [
        ("binlog_format", "ROW", "SET GLOBAL binlog_format = 'ROW'"),
        (
            "binlog_row_image",
            "FULL",
            "SET GLOBAL binlog_row_image = 'FULL'",
        ),
        (
            "binlog_row_metadata",
            "FULL",
            "SET GLOBAL binlog_row_metadata = 'FULL'",
        ),
    ];
    for (name, want, fix) in expect {
        match variable(conn, name).await? {
            Some(v) if v.eq_ignore_ascii_case(want) => {}
            Some(v) => problems.push(SetupError::InvalidSetting {
                setting: name.into(),
                actual: v,
                expected: want.into(),
                fix: format!("run {fix} and set {name} = {want} {restart_hint} so it survives a restart (sessions started earlier keep the old value)"),
            }),
            None => problems.push(SetupError::Other(format!(
                "{name} is not supported by this server ({}); Sluice needs {name} = {want}, available from MySQL 8.0.1 and MariaDB 10.5",
                server.version
            ))),
        }
    }
    let grants: Vec<String> = conn
        .query::<String, _>("SHOW GRANTS")
        .await
        .map_err(MyError::query)?
        .into_iter()
        .map(|g| g.to_ascii_uppercase())
        .collect();
    let global: Vec<&String> = grants.iter().filter(|g| g.contains(" ON *.* ")).collect();
    let has = |names: &[&str]| {
        global
            .iter()
            .any(|g| g.contains("ALL PRIVILEGES") || names.iter().any(|n| g.contains(n)))
    };
    if !has(&["REPLICATION SLAVE", "REPLICATION REPLICA"]) {
        problems.push(SetupError::MissingPrivilege {
            what: "the user lacks the REPLICATION SLAVE privilege needed to read the binlog".into(),
            fix: "GRANT REPLICATION SLAVE ON *.* TO '<user>'@'<host>'".into(),
        });
    }
    if !has(&["REPLICATION CLIENT", "BINLOG MONITOR", "SUPER"]) {
        problems.push(SetupError::MissingPrivilege {
            what: "the user lacks the REPLICATION CLIENT privilege needed to read binlog positions (SHOW MASTER STATUS)".into(),
            fix: "GRANT REPLICATION CLIENT ON *.* TO '<user>'@'<host>'".into(),
        });
    }
    let Some(my) = &connector.mysql else {
        return Ok(problems);
    };
    let tables = catalog::captured_tables(conn, my).await?;
    for pattern in &my.filter.include {
        let Some((db, name)) = pattern.exact() else {
            continue;
        };
        if !tables.iter().any(|t| t.schema == db && t.name == name) {
            problems.push(SetupError::Other(format!(
                "mysql.tables names {pattern}, which does not exist or the user cannot see (it needs SELECT): create it, GRANT SELECT ON {db}.* TO '<user>'@'<host>', or remove it"
            )));
        }
    }
    for t in &tables {
        let sql = format!(
            "SELECT 1 FROM {}.{} LIMIT 0",
            catalog::quote(&t.schema),
            catalog::quote(&t.name)
        );
        if let Err(e) = conn.query_drop(sql).await {
            problems.push(SetupError::Other(format!(
                "cannot read {t} ({}): GRANT SELECT ON {}.* TO '<user>'@'<host>'",
                MyError::query(e),
                t.schema
            )));
        }
    }
    let own: Option<u32> = conn
        .query_first("SELECT @@server_id")
        .await
        .map_err(MyError::query)?;
    if own == Some(my.server_id) {
        problems.push(SetupError::Other(format!(
            "mysql.server_id {} is the server's own server_id; choose another id, unique among the server and its replicas",
            my.server_id
        )));
    }
    Ok(problems)
}

/// A connected replica already registered with this server id (`SHOW SLAVE HOSTS`), if the
/// user may see the list.
pub async fn replica_with_server_id(conn: &mut Conn, server_id: u32) -> Option<String> {
    let rows: Vec<Row> = conn.query("SHOW SLAVE HOSTS").await.ok()?;
    rows.iter().find_map(|r| {
        let id = match r.as_ref(0)? {
            mysql_async::Value::Bytes(b) => String::from_utf8_lossy(b).parse::<u32>().ok()?,
            mysql_async::Value::Int(i) => *i as u32,
            mysql_async::Value::UInt(u) => *u as u32,
            _ => return None,
        };
        (id == server_id).then(|| match r.as_ref(1) {
            Some(mysql_async::Value::Bytes(h)) if !h.is_empty() => {
                format!("host {}", String::from_utf8_lossy(h))
            }
            _ => "registered without a host name".to_string(),
        })
    })
}

/// `sluice validate`'s checks of one MySQL connector: connect, then every server problem.
pub async fn preflight(connector: &ConnectorConfig) -> Vec<String> {
    let Some(my) = &connector.mysql else {
        return Vec::new();
    };
    let info = match ConnInfo::parse(my.url.expose(), my.password.as_ref()) {
        Ok(i) => i,
        Err(e) => return vec![format!("mysql.url: {e}")],
    };
    let mut conn = match info.connect().await {
        Ok(c) => c,
        Err(e) => {
            let text = e.to_string();
            // A TLS failure already says what to change.
            if text.contains("certificate") || text.contains("TLS") {
                return vec![format!("mysql.url: {text}")];
            }
            return vec![format!(
                "mysql.url: {text}; check that the server runs there and that the user and password are right"
            )];
        }
    };
    let server = match server_info(&mut conn).await {
        Ok(s) => s,
        Err(e) => return vec![e.to_string()],
    };
    let mut problems = match server_problems(&mut conn, &server, connector).await {
        Ok(p) => p.iter().map(ToString::to_string).collect(),
        Err(e) => vec![e.to_string()],
    };
    let listed: Result<Vec<(String, String, String)>, _> = conn
        .query(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns \
             WHERE table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') \
             ORDER BY table_schema, table_name, ordinal_position",
        )
        .await;
    match listed {
        Ok(rows) => {
            let mut columns = crate::source::columns_check::Columns::new();
            for (schema, table, column) in rows {
                columns.entry((schema, table)).or_default().push(column);
            }
            problems.extend(crate::source::columns_check::column_problems(
                connector, &columns,
            ));
        }
        Err(e) => problems.push(format!("cannot list the tables' columns: {e}")),
    }
    if let Some(other) = replica_with_server_id(&mut conn, my.server_id).await {
        problems.push(format!(
            "mysql.server_id {} is already used by a connected replica ({other}); give this connector an id no replica of the server uses",
            my.server_id
        ));
    }
    problems
}
