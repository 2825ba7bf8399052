//! `sluice offsets show|export|import|set|reset`: stored positions, read and written while
//! no daemon uses the store.

use super::*;

/// The daemon configuration and its offset store, for the `offsets` commands; connectors
/// of the folder are described to the store (their topic prefixes key Kafka positions).
async fn offsets_context(
    config_path: &Path,
) -> Result<(DaemonConfig, Arc<dyn OffsetStore>, Vec<ConnectorConfig>), ExitCode> {
    let daemon = DaemonConfig::load(config_path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    // Connector files that do not parse are left out here; `validate` reports them.
    let connectors = config::load(config_path)
        .map(|l| l.connectors)
        .unwrap_or_default();
    let store = open_store(&daemon).await.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })?;
    for c in &connectors {
        store.describe(&c.name, &c.topic_prefix);
    }
    Ok((daemon, store, connectors))
}

/// Changing positions is refused while a connector may run: with the file store, while a
/// daemon holds the folder; in cluster mode, while the assignments topic says a daemon runs
/// the connector (it would write its own position over the new one).
fn refuse_while_running(
    daemon: &DaemonConfig,
    connectors: &[&str],
) -> Result<Option<crate::offsets::FolderLock>, ExitCode> {
    if daemon.offsets.in_kafka() {
        for c in connectors {
            match crate::cluster::running_owner(daemon, c) {
                Ok(None) => {}
                Ok(Some(owner)) => {
                    eprintln!("error: connector {c} runs on {owner}; stop it (remove its file, or stop that daemon) before changing its position");
                    return Err(ExitCode::FAILURE);
                }
                Err(e) => {
                    eprintln!("error: cannot tell whether connector {c} runs: {e}");
                    return Err(ExitCode::FAILURE);
                }
            }
        }
        return Ok(None);
    }
    crate::offsets::FolderLock::acquire(&daemon.offsets.path)
        .map(Some)
        .map_err(|e| {
            eprintln!("error: {e}; stop the daemon before changing positions");
            ExitCode::FAILURE
        })
}

pub(super) async fn offsets_command(command: OffsetsCommand, config: &Path) -> ExitCode {
    match command {
        OffsetsCommand::Show { connector } => match offsets_context(config).await {
            Ok((daemon, store, _)) => show_offsets(&daemon, &*store, connector.as_deref()),
            Err(code) => code,
        },
        OffsetsCommand::Export { format, output } => match offsets_context(config).await {
            Ok((_, store, connectors)) => export_offsets(&*store, &connectors, format, output),
            Err(code) => code,
        },
        OffsetsCommand::Import { input } => match offsets_context(config).await {
            Ok((daemon, store, connectors)) => {
                import_offsets(&daemon, &*store, &connectors, input).await
            }
            Err(code) => code,
        },
        OffsetsCommand::Set {
            connector,
            lsn,
            file,
            pos,
            gtids,
        } => {
            let position = match (lsn, file, pos) {
                (Some(lsn), None, None) => match parse_lsn(&lsn) {
                    Some(l) => SourcePosition::Postgres(PgPosition::at(l)),
                    None => {
                        eprintln!("error: --lsn {lsn:?} is not an LSN; write it as PostgreSQL prints it (16/B374D848)");
                        return ExitCode::from(2);
                    }
                },
                (None, Some(file), Some(pos)) => SourcePosition::Mysql(MyPosition {
                    incremental: None,
                    file: file.into(),
                    pos,
                    gtids: gtids.map(Into::into),
                    events: 0,
                    rows: 0,
                    snapshot: SnapshotState::Done,
                    last_event: None,
                }),
                _ => {
                    eprintln!(
                        "error: give --lsn (PostgreSQL) or --file and --pos (MySQL / MariaDB)"
                    );
                    return ExitCode::from(2);
                }
            };
            match offsets_context(config).await {
                Ok((daemon, store, connectors)) => {
                    if let Err(e) = settable(&connectors, &connector, &position).await {
                        eprintln!("error: {connector}: {e}");
                        return ExitCode::FAILURE;
                    }
                    let _lock = match refuse_while_running(&daemon, &[&connector]) {
                        Ok(l) => l,
                        Err(code) => return code,
                    };
                    match store.reset(&connector, &position) {
                        Ok(()) => {
                            println!("{connector}\t{position}");
                            ExitCode::SUCCESS
                        }
                        Err(e) => {
                            eprintln!("error: {e}");
                            ExitCode::FAILURE
                        }
                    }
                }
                Err(code) => code,
            }
        }
        OffsetsCommand::Reset { connector } => match offsets_context(config).await {
            Ok((daemon, store, connectors)) => {
                // In the Kafka store a position's key holds the connector's topic prefix,
                // known only from its file: without one, the reset would write a key the
                // connector never reads and report success.
                if daemon.offsets.in_kafka() && !connectors.iter().any(|c| c.name == connector) {
                    eprintln!("error: no valid connector file names connector \"{connector}\" (see `sluice validate`): in the Kafka offset store its position is keyed by its topic prefix, which only its file gives; nothing was reset");
                    return ExitCode::FAILURE;
                }
                let _lock = match refuse_while_running(&daemon, &[&connector]) {
                    Ok(l) => l,
                    Err(code) => return code,
                };
                match store.forget(&connector) {
                    Ok(()) => {
                        println!("{connector}\tforgotten: its next start is its first");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Err(code) => code,
        },
    }
}

/// One exported line.
fn export_line(
    name: &str,
    server: &str,
    position: &SourcePosition,
    format: ExportFormat,
) -> serde_json::Value {
    match format {
        ExportFormat::Debezium => serde_json::json!({
            "connector": name,
            "partition": {"server": server},
            "offset": connect::value(position),
        }),
        ExportFormat::Sluice => serde_json::json!({
            "connector": name,
            "server": server,
            "position": position,
        }),
    }
}

fn export_offsets(
    store: &dyn OffsetStore,
    connectors: &[ConnectorConfig],
    format: ExportFormat,
    output: Option<PathBuf>,
) -> ExitCode {
    let stored = match store.list() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut text = String::new();
    for (name, position) in &stored {
        let server = connectors
            .iter()
            .find(|c| &c.name == name)
            .map_or(name.as_str(), |c| c.topic_prefix.as_str());
        text.push_str(&export_line(name, server, position, format).to_string());
        text.push('\n');
    }
    let written = match output {
        Some(path) => std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display())),
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(text.as_bytes())
                .map_err(|e| e.to_string())
        }
    };
    match written {
        Ok(()) => {
            eprintln!("exported {} position(s)", stored.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One imported line: `{"connector", "position"}` (Sluice), `{"connector", "offset"}`
/// (Debezium's fields), or a Connect offsets-topic record `{"key": [name, {...}], "value"}`.
fn import_line(line: &str) -> Result<(String, Option<String>, SourcePosition), String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    if let Some(key) = v.get("key").and_then(|k| k.as_array()) {
        let name = key
            .first()
            .and_then(|n| n.as_str())
            .ok_or("key[0] must be the connector name")?;
        let server = key
            .get(1)
            .and_then(|p| p.get("server"))
            .and_then(|s| s.as_str());
        let value = v.get("value").ok_or("a key needs a value")?;
        return Ok((
            name.into(),
            server.map(Into::into),
            connect::position(value)?,
        ));
    }
    let name = v
        .get("connector")
        .and_then(|n| n.as_str())
        .ok_or("each line needs \"connector\"")?
        .to_string();
    let server = v
        .get("partition")
        .and_then(|p| p.get("server"))
        .or_else(|| v.get("server"))
        .and_then(|s| s.as_str())
        .map(Into::into);
    if let Some(p) = v.get("position") {
        let position: SourcePosition =
            serde_json::from_value(p.clone()).map_err(|e| format!("position: {e}"))?;
        return Ok((name, server, position));
    }
    let offset = v
        .get("offset")
        .ok_or("each line needs \"position\" or \"offset\"")?;
    Ok((name, server, connect::position(offset)?))
}

/// A position set by hand must be for a connector of the folder (with the Kafka store its
/// key depends on the connector's topic prefix) and one its server has reached.
async fn settable(
    connectors: &[ConnectorConfig],
    name: &str,
    position: &SourcePosition,
) -> Result<(), String> {
    let Some(connector) = connectors.iter().find(|c| c.name == name) else {
        return Err(format!(
            "no valid connector file names connector \"{name}\" (see `sluice validate`): its position could not be checked, nor stored where the connector reads it"
        ));
    };
    crate::source::check_settable(connector, position).await
}

async fn import_offsets(
    daemon: &DaemonConfig,
    store: &dyn OffsetStore,
    connectors: &[ConnectorConfig],
    input: Option<PathBuf>,
) -> ExitCode {
    let text = match &input {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display())),
        None => std::io::read_to_string(std::io::stdin()).map_err(|e| e.to_string()),
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Every line is read before anything is stored: a bad line stores nothing.
    let mut parsed = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match import_line(line) {
            Ok(p) => parsed.push(p),
            Err(e) => {
                eprintln!("error: line {}: {e}; nothing was imported", i + 1);
                return ExitCode::from(2);
            }
        }
    }
    for (name, _, position) in &parsed {
        if let Err(e) = settable(connectors, name, position).await {
            eprintln!("error: {name}: {e}; nothing was imported");
            return ExitCode::FAILURE;
        }
    }
    let names: Vec<&str> = parsed.iter().map(|(n, _, _)| n.as_str()).collect();
    let _lock = match refuse_while_running(daemon, &names) {
        Ok(l) => l,
        Err(code) => return code,
    };
    // All or nothing: what was stored before is put back when a write fails midway.
    let mut before = Vec::with_capacity(parsed.len());
    for (name, _, _) in &parsed {
        match store.load(name) {
            Ok(p) => before.push(p),
            Err(e) => {
                eprintln!("error: {name}: {e}; nothing was imported");
                return ExitCode::FAILURE;
            }
        }
    }
    for (i, (name, server, position)) in parsed.iter().enumerate() {
        if let Some(server) = server {
            store.describe(name, server);
        }
        if let Err(e) = store.reset(name, position) {
            eprintln!("error: {name}: {e}");
            for ((undo, _, _), was) in parsed[..i].iter().zip(&before) {
                let restored = match was {
                    Some(p) => store.reset(undo, p),
                    None => store.delete(undo),
                };
                if let Err(e) = restored {
                    eprintln!("error: {undo}: could not put its earlier position back: {e}");
                }
            }
            eprintln!(
                "nothing was imported (the positions written before the failure were put back)"
            );
            return ExitCode::FAILURE;
        }
        println!("{name}\t{position}");
    }
    eprintln!("imported {} position(s)", parsed.len());
    ExitCode::SUCCESS
}

fn show_offsets(daemon: &DaemonConfig, store: &dyn OffsetStore, only: Option<&str>) -> ExitCode {
    let names = match store.names() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // One unreadable file is reported and the others are still shown.
    let mut unreadable = false;
    let mut shown = Vec::new();
    for name in names.into_iter().filter(|n| only.is_none_or(|o| o == n)) {
        match store.load(&name) {
            Ok(Some(pos)) => shown.push((name, pos)),
            Ok(None) => {}
            Err(e) => {
                eprintln!("error: {e}");
                unreadable = true;
            }
        }
    }
    if shown.is_empty() && !unreadable {
        match only {
            Some(name) => {
                eprintln!("no stored position for connector \"{name}\"");
                return ExitCode::FAILURE;
            }
            None if daemon.offsets.in_kafka() => {
                println!("no stored positions in topic {}", daemon.offsets.topic)
            }
            None => println!("no stored positions in {}", daemon.offsets.path.display()),
        }
    }
    for (name, pos) in shown {
        println!("{name}\t{pos}");
        if let Some(p) = pos.incremental().filter(|p| !p.tables.is_empty()) {
            println!("\t{}", incremental_line(p));
        }
    }
    if unreadable {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The saved progress of an incremental snapshot, for `offsets show`.
fn incremental_line(p: &crate::position::IncrementalProgress) -> String {
    let key = match &p.last_key {
        Some(k) => format!(
            "after key ({})",
            k.iter()
                .map(|v| v.as_deref().unwrap_or("NULL"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "from its first row".into(),
    };
    format!(
        "incremental snapshot{}: reading {} {key}, {} chunks so far{}",
        if p.paused { " (paused)" } else { "" },
        p.tables[0],
        p.chunks,
        if p.tables.len() > 1 {
            format!(", then {}", p.tables[1..].join(", "))
        } else {
            String::new()
        }
    )
}

#[cfg(test)]
mod progress_tests {
    #[test]
    fn saved_incremental_progress_is_one_readable_line() {
        let p = crate::position::IncrementalProgress {
            tables: vec!["public.a".into(), "public.b".into()],
            conditions: Default::default(),
            last_key: Some(vec![Some("42".into()), None]),
            chunks: 3,
            paused: true,
        };
        assert_eq!(
            super::incremental_line(&p),
            "incremental snapshot (paused): reading public.a after key (42, NULL), 3 chunks so far, then public.b"
        );
    }
}
