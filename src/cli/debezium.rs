//! `sluice convert` and `sluice run --debezium-server`: Debezium's configurations read as
//! Sluice's files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `sluice run --debezium-server FILE`: writes the daemon config and the connector file for
/// Debezium Server's properties into the state folder; returns the daemon config's path.
pub(super) fn debezium_server_files(
    file: &Path,
    state_dir: Option<PathBuf>,
) -> Result<PathBuf, String> {
    use crate::config::debezium;
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let props = debezium::properties::parse(&text);
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let (daemon, mut notes) = debezium::properties::server_daemon(&props, &cwd)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let (source, _) = debezium::properties::server(&props);
    let converted = debezium::convert(None, &source).map_err(|r| {
        format!(
            "{}: Debezium properties Sluice cannot run: {r}",
            file.display()
        )
    })?;
    notes.extend(converted.warnings);
    let name = converted
        .document
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or("connector")
        .to_string();
    let body = toml::to_string(&converted.document).map_err(|e| e.to_string())?;
    let dir = state_dir.unwrap_or_else(|| cwd.join("sluice-state"));
    let connectors = dir.join("connectors");
    std::fs::create_dir_all(&connectors)
        .map_err(|e| format!("cannot create {}: {e}", connectors.display()))?;
    let write = |path: PathBuf, text: &str| {
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    let file_name = crate::api::connector_file_name(&name)?;
    write(connectors.join(file_name), &body)?;
    let config = dir.join("sluice.toml");
    write(config.clone(), &daemon)?;
    for n in notes {
        eprintln!("note: {n}");
    }
    Ok(config)
}

/// `sluice convert FILE`.
pub(super) fn convert(file: &Path) -> ExitCode {
    use crate::config::debezium;
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let json = file.extension().is_some_and(|x| x == "json");
    let (result, notes) = if json {
        (
            debezium::file_from_json(file, &text).map_err(|e| e.to_string()),
            Vec::new(),
        )
    } else {
        let props = debezium::properties::parse(&text);
        let server = props.keys().any(|k| k.starts_with("debezium."));
        let (props, notes) = if server {
            debezium::properties::server(&props)
        } else {
            (props, Vec::new())
        };
        let result = debezium::convert(None, &props)
            .map_err(|r| {
                format!(
                    "{}: Debezium properties Sluice cannot run: {r}",
                    file.display()
                )
            })
            .and_then(|c| {
                let body = toml::to_string(&c.document).map_err(|e| e.to_string())?;
                Ok((body, c.warnings))
            });
        (result, notes)
    };
    match result {
        Ok((body, warnings)) => {
            println!("# Converted by `sluice convert` from {}.", file.display());
            for w in warnings.iter().chain(&notes) {
                println!("# note: {w}");
            }
            print!("{body}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
