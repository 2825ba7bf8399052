//! Daemon and connector configuration: parsing and pure validation (no I/O but reading files).
//!
//! Every error names the file, the key and what to do. `${VAR}` in any string value is replaced by
//! the environment variable `VAR` after parsing (so any bytes in it arrive as they are), and
//! secrets stay out of the files.

mod connector;
mod daemon;
pub mod debezium;
pub mod outbox;
pub mod patterns;
pub mod route;
mod secret;
pub mod target;
pub mod unwrap;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use connector::{
    BinaryMode, ColumnPattern, ColumnsConfig, ConnectorConfig, DecimalMode, FormatConfig,
    HashMaskConfig, HstoreMode, IntervalMode, MysqlConfig, PostgresConfig, PublicationMode,
    SnapshotConfig, SnapshotMode, SourceKind, SubjectStrategy, TableFilter, TablePattern,
    TableSelector, TimePrecisionMode, TypesConfig, UnsignedMode, ValueFormat,
};
pub use daemon::{
    ApiConfig, ClusterConfig, DaemonConfig, LogConfig, LogFormat, OffsetsConfig, SinkConfig,
    SinkType,
};
pub use outbox::{Additional, OutboxConfig, Placement};
pub use route::RouteConfig;
pub use secret::Secret;
pub use unwrap::{
    ChangedFieldsConfig, DeleteHandling, MetaField, MetaSource, MetaType, UnwrapConfig,
};

/// A configuration problem, with the file it was found in.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read the file: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A `${VAR}` names an unset variable.
    #[error("{path}: `${{{var}}}` is used but the environment variable {var} is not set; export it or remove the reference")]
    MissingEnv {
        /// The file.
        path: PathBuf,
        /// The variable.
        var: String,
    },
    /// TOML syntax, unknown key, missing key or wrong type.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said, with line and key.
        message: String,
    },
    /// A value is present but not acceptable.
    #[error("{path}: `{key}` {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
}

impl ConfigError {
    /// The file the error is about.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ConfigError::Read { path, .. }
            | ConfigError::MissingEnv { path, .. }
            | ConfigError::Parse { path, .. }
            | ConfigError::Invalid { path, .. } => Some(path),
        }
    }
}

/// Replaces `${VAR}` in a string value with the variable's value, and `${file:/path}` with
/// the file's content (one trailing newline dropped: the Docker and Kubernetes secrets
/// convention); `$${` writes a literal `${`, and `${routedByValue}` (the outbox topic
/// placeholder) stays as it is. Runs on parsed values, so a value arrives byte
/// for byte (quotes, backslashes and newlines included) and comments and keys are never
/// touched.
#[cfg(test)]
pub(crate) fn substitute(path: &Path, text: &str) -> Result<String, ConfigError> {
    substitute_at(path, "", text)
}

fn substitute_at(path: &Path, key: &str, text: &str) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err(ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: "a `${` has no closing `}`; write ${VAR_NAME}".into(),
                });
            };
            let var = &after[..end];
            if var == "routedByValue" {
                // The outbox router's placeholder (`route_topic_replacement`), kept as it is.
                out.push_str("${routedByValue}");
                rest = &after[end + 1..];
                continue;
            }
            let value = match var.strip_prefix("file:") {
                Some(file) => read_secret_file(path, key, file)?,
                None => std::env::var(var).map_err(|_| ConfigError::MissingEnv {
                    path: path.to_path_buf(),
                    var: var.to_string(),
                })?,
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The content of a `${file:...}` reference (its path relative to the config file's folder
/// when not absolute), without one trailing newline.
fn read_secret_file(config: &Path, key: &str, file: &str) -> Result<String, ConfigError> {
    let target = config.parent().unwrap_or(Path::new(".")).join(file);
    let mut text = std::fs::read_to_string(&target).map_err(|e| ConfigError::Invalid {
        path: config.to_path_buf(),
        key: key.to_string(),
        problem: format!(
            "`${{file:{file}}}` cannot be read ({}: {e}); make the file readable by Sluice or fix the path",
            target.display()
        ),
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// Applies [`substitute`] to every string value of a parsed document.
fn substitute_values(path: &Path, value: &mut toml::Value) -> Result<(), ConfigError> {
    substitute_under(path, "", value)
}

fn substitute_under(path: &Path, key: &str, value: &mut toml::Value) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) if s.contains('$') => *s = substitute_at(path, key, s)?,
        toml::Value::Array(items) => {
            for item in items {
                substitute_under(path, key, item)?;
            }
        }
        toml::Value::Table(table) => {
            for (name, item) in table.iter_mut() {
                let inner = if key.is_empty() {
                    name.clone()
                } else {
                    format!("{key}.{name}")
                };
                substitute_under(path, &inner, item)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Reads a file's raw text (`parse_toml` substitutes variables after parsing it).
fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path, raw: &str) -> Result<T, ConfigError> {
    let describe = |err: toml::de::Error| ConfigError::Parse {
        path: path.to_path_buf(),
        message: describe_toml_error(&err, raw, raw),
    };
    // Shape errors (unknown keys, wrong types) are found on the text as written, so they
    // point at its lines; variables only ever stand in strings, so they cannot cause them.
    toml::from_str::<T>(raw).map_err(describe)?;
    let mut value: toml::Value = toml::from_str(raw).map_err(describe)?;
    substitute_values(path, &mut value)?;
    value.try_into().map_err(describe)
}

fn describe_toml_error(err: &toml::de::Error, parsed: &str, raw: &str) -> String {
    let msg = err.message();
    let hint = if msg.starts_with("unknown field") {
        " (remove the key or fix its spelling; see the configuration reference in docs/configuration.md)"
    } else if msg.starts_with("missing field") {
        " (add the key; see the configuration reference in docs/configuration.md)"
    } else if msg.starts_with("invalid type") || msg.starts_with("invalid value") {
        " (fix the value's type; see the configuration reference in docs/configuration.md)"
    } else {
        ""
    };
    // Point at the line as the user wrote it (with `${VAR}` unexpanded, so an interpolated
    // secret is never shown) and mask a password inside a URL on it.
    let Some(span) = err.span() else {
        return format!("{}{hint}", msg.trim());
    };
    let line_no = parsed[..span.start.min(parsed.len())].matches('\n').count();
    let line = raw.lines().nth(line_no).unwrap_or_default();
    format!(
        "line {}: {}{hint}\n  | {}",
        line_no + 1,
        msg.trim(),
        mask_secret_line(line.trim())
    )
}

/// A configuration line as it may be shown: the value of a secret-looking key
/// (`password`, `token`, `secret`) becomes `***`, and so does a password inside a URL.
fn mask_secret_line(line: &str) -> String {
    if let Some((key, _)) = line.split_once('=') {
        let k = key.to_ascii_lowercase();
        if ["password", "token", "secret"]
            .iter()
            .any(|w| k.contains(w))
        {
            return format!("{} = ***", key.trim());
        }
    }
    mask_url_password(line)
}

/// Every URL's password (and password parameters) in `text` replaced with `***`.
fn mask_url_password(text: &str) -> String {
    target::redact_urls_in(text, "***")
}

/// A relative path resolved against the folder of the file that names it (absolute paths
/// are kept): a configuration means the same whatever the working directory.
pub(crate) fn resolve_against(file: &Path, path: &mut PathBuf) {
    if path.is_relative() {
        let base = file.parent().unwrap_or(Path::new(""));
        *path = lexical_clean(&base.join(&*path));
    }
}

/// `a/b/../c` as `a/c`, without asking the file system (a `..` after nothing it can cancel
/// is kept).
fn lexical_clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

/// Everything the daemon runs: its own settings and the connectors found in its folder.
#[derive(Debug)]
pub struct Loaded {
    /// Daemon settings.
    pub daemon: DaemonConfig,
    /// Valid connectors by file.
    pub connectors: Vec<ConnectorConfig>,
}

/// Loads the daemon file and every `*.toml` in its connectors folder, collecting every problem.
pub fn load(config_path: &Path) -> Result<Loaded, Vec<ConfigError>> {
    let daemon = DaemonConfig::load(config_path).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut connectors = Vec::new();
    let files = match connector_files(&daemon.connectors_dir) {
        Ok(files) => files,
        Err(source) => {
            return Err(vec![ConfigError::Invalid {
                path: config_path.to_path_buf(),
                key: "connectors_dir".into(),
                problem: format!(
                    "names {} which cannot be read ({source}); create the folder or fix the path",
                    daemon.connectors_dir.display()
                ),
            }])
        }
    };
    for file in files {
        match ConnectorConfig::load(&file) {
            Ok(c) => connectors.push(c),
            Err(e) => errors.push(e),
        }
    }
    errors.extend(check_unique(&connectors));
    if errors.is_empty() {
        Ok(Loaded { daemon, connectors })
    } else {
        Err(errors)
    }
}

/// As [`load`], but connector files that do not parse or validate are left out and
/// returned beside the rest (a daemon with the admin API lists them and keeps running). The
/// daemon file, the folder and conflicts between valid files (names, slots, server ids) still
/// fail the whole load.
pub fn load_lenient(config_path: &Path) -> Result<(Loaded, Vec<ConfigError>), Vec<ConfigError>> {
    let daemon = DaemonConfig::load(config_path).map_err(|e| vec![e])?;
    let files = connector_files(&daemon.connectors_dir).map_err(|source| {
        vec![ConfigError::Invalid {
            path: config_path.to_path_buf(),
            key: "connectors_dir".into(),
            problem: format!(
                "names {} which cannot be read ({source}); create the folder or fix the path",
                daemon.connectors_dir.display()
            ),
        }]
    })?;
    let mut connectors = Vec::new();
    let mut file_errors = Vec::new();
    for file in files {
        match ConnectorConfig::load(&file) {
            Ok(c) => connectors.push(c),
            Err(e) => file_errors.push(e),
        }
    }
    let conflicts = check_unique(&connectors);
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    Ok((Loaded { daemon, connectors }, file_errors))
}

/// The connector files of a folder (`*.toml`, and `*.json` in Kafka Connect's form),
/// sorted.
pub fn connector_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml" || x == "json") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

pub fn check_unique(connectors: &[ConnectorConfig]) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut names: BTreeMap<&str, &Path> = BTreeMap::new();
    // Keyed by the normalised server, so two spellings of one server are caught.
    type Key = ((String, u16, String), String);
    let mut slots: BTreeMap<Key, &Path> = BTreeMap::new();
    let mut server_ids: BTreeMap<Key, &Path> = BTreeMap::new();
    let mut publications: BTreeMap<Key, &Path> = BTreeMap::new();
    for c in connectors {
        if let Some(first) = names.insert(&c.name, &c.file) {
            errors.push(ConfigError::Invalid {
                path: c.file.clone(),
                key: "name".into(),
                problem: format!(
                    "\"{}\" is already used by {}; every connector needs its own name (offsets are stored by name)",
                    c.name,
                    first.display()
                ),
            });
        }
        if let Some(pg) = &c.postgres {
            // Slot names are per server (cluster), not per database.
            if let Ok(t) = target::postgres(pg.url.expose()) {
                let key = ((t.host.clone(), t.port, String::new()), pg.slot.clone());
                if let Some(first) = slots.insert(key, &c.file) {
                    errors.push(ConfigError::Invalid {
                        path: c.file.clone(),
                        key: "postgres.slot".into(),
                        problem: format!(
                            "\"{}\" is also used by {} on the same server ({}:{}); a slot serves one connector: give each its own slot",
                            pg.slot,
                            first.display(),
                            t.host,
                            t.port
                        ),
                    });
                }
                // Publications are per database.
                let key = (
                    (t.host.clone(), t.port, t.database.clone()),
                    pg.publication.clone(),
                );
                if let Some(first) = publications.insert(key, &c.file) {
                    errors.push(ConfigError::Invalid {
                        path: c.file.clone(),
                        key: "postgres.publication".into(),
                        problem: format!(
                            "\"{}\" is also used by {} in the same database ({}:{}/{}); connectors that share a publication change what it publishes for each other: give each its own publication",
                            pg.publication,
                            first.display(),
                            t.host,
                            t.port,
                            t.database
                        ),
                    });
                }
            }
        }
        if let Some(my) = &c.mysql {
            if let Ok(t) = target::mysql(my.url.expose()) {
                let key = (
                    (t.host.clone(), t.port, String::new()),
                    my.server_id.to_string(),
                );
                if let Some(first) = server_ids.insert(key, &c.file) {
                    errors.push(ConfigError::Invalid {
                        path: c.file.clone(),
                        key: "mysql.server_id".into(),
                        problem: format!(
                            "{} is also used by {} on the same server ({t}); give each connector its own server_id",
                            my.server_id,
                            first.display()
                        ),
                    });
                }
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_replaces_and_escapes() {
        std::env::set_var("SLUICE_TEST_SECRET", "s3cr3t");
        let p = Path::new("x.toml");
        assert_eq!(
            substitute(p, "${SLUICE_TEST_SECRET} b=$${NOPE} c=$5 $").unwrap(),
            "s3cr3t b=${NOPE} c=$5 $"
        );
        let err = substitute(p, "${SLUICE_DEFINITELY_UNSET}").unwrap_err();
        assert!(err.to_string().contains("SLUICE_DEFINITELY_UNSET"));
        assert!(substitute(p, "${OPEN").is_err());
        assert_eq!(
            substitute(p, "outbox.${routedByValue}").unwrap(),
            "outbox.${routedByValue}"
        );
    }

    #[test]
    fn secrets_are_read_from_files_and_an_unreadable_one_names_key_and_path() {
        let dir = std::env::temp_dir().join(format!("sluice-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let odd = "p@ss w/rd#1:%\"'\\ end";
        std::fs::write(dir.join("pw"), format!("{odd}\n")).unwrap();
        let config = dir.join("c.toml");
        let mut doc: toml::Value = toml::from_str(&format!(
            "[postgres]\npassword = \"${{file:{}}}\"\nrelative = \"x${{file:pw}}y\"\n",
            dir.join("pw").display()
        ))
        .unwrap();
        substitute_values(&config, &mut doc).unwrap();
        assert_eq!(doc["postgres"]["password"].as_str(), Some(odd));
        assert_eq!(
            doc["postgres"]["relative"].as_str().unwrap(),
            format!("x{odd}y")
        );

        let mut doc: toml::Value =
            toml::from_str("[mysql]\npassword = \"${file:/nonexistent/secret}\"\n").unwrap();
        let err = substitute_values(&config, &mut doc)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mysql.password") && err.contains("/nonexistent/secret"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn variables_arrive_byte_for_byte_in_string_values_only() {
        // Quotes, backslashes, a tab escape and a newline: TOML-significant if pasted.
        std::env::set_var("SLUICE_TEST_ODD", "a\"b\\tc'd\ne # f ${NOT} g");
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct T {
            a: String,
            list: Vec<String>,
            n: u32,
        }
        let p = Path::new("c.toml");
        let t: T = parse_toml(
            p,
            "# ${NOT_IN_A_STRING}\na = \"x${SLUICE_TEST_ODD}\" # ${NOR_HERE}\nlist = ['${SLUICE_TEST_ODD}', \"$${kept}\"]\nn = 3\n",
        )
        .unwrap();
        assert_eq!(t.a, "xa\"b\\tc'd\ne # f ${NOT} g");
        assert_eq!(t.list, ["a\"b\\tc'd\ne # f ${NOT} g", "${kept}"]);
        assert_eq!(t.n, 3);
    }

    #[test]
    fn parse_errors_show_the_raw_line_without_secrets() {
        std::env::set_var("SLUICE_TEST_PW", "hunter2");
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            a: u32,
        }
        let p = Path::new("c.toml");
        let err = parse_toml::<T>(p, "a = 1\nuri = \"postgres://u:${SLUICE_TEST_PW}@h/db\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("uri"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse_toml::<T>(p, "a = 1\nuri = \"postgres://u:literal@h/db\"\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("literal") && err.contains("u:***@h"), "{err}");
        let err = parse_toml::<T>(p, "a = 1\nregistry_password = \"plain-secret\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("plain-secret") && err.contains("registry_password = ***"),
            "{err}"
        );
    }

    #[test]
    fn two_spellings_of_one_server_are_one_server() {
        let my = |file: &str, url: &str, id: u32| {
            ConnectorConfig::parse(
                Path::new(file),
                &format!("name = \"{file}\"\nsource = \"mysql\"\ntopic_prefix = \"{file}\"\n[mysql]\nurl = \"{url}\"\nserver_id = {id}\ntables = [\"shop.t\"]\n"),
            )
            .unwrap()
        };
        let pg = |file: &str, url: &str| {
            ConnectorConfig::parse(
                Path::new(file),
                &format!("name = \"{file}\"\nsource = \"postgres\"\ntopic_prefix = \"{file}\"\n[postgres]\nurl = \"{url}\"\nslot = \"s1\"\npublication = \"p\"\ntables = [\"public.t\"]\n"),
            )
            .unwrap()
        };
        let errors = check_unique(&[
            my("a", "mysql://u:p@localhost:3306", 7),
            my("b", "mariadb://other@127.0.0.1", 7),
            my("c", "mysql://u:p@[::1]:3307", 7),
            pg("d", "postgres://u:p@localhost/one"),
            pg("e", "postgresql://u@127.0.0.1:5432/two"),
        ]);
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.len(), 2, "{text:?}");
        assert!(
            text[0].contains("mysql.server_id") && text[0].contains("a"),
            "{text:?}"
        );
        assert!(
            text[1].contains("postgres.slot") && text[1].contains("same server"),
            "{text:?}"
        );
    }
}

/// The configurations shipped in the repository (the local demo's and docker-compose's) stay
/// valid as the settings evolve.
#[cfg(test)]
mod shipped {
    use super::*;

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let mut p = PathBuf::from("../connectors");
        resolve_against(Path::new("config/sluice.toml"), &mut p);
        assert_eq!(p, PathBuf::from("connectors"));
        let mut p = PathBuf::from("data/offsets");
        resolve_against(Path::new("/etc/sluice/sluice.toml"), &mut p);
        assert_eq!(p, PathBuf::from("/etc/sluice/data/offsets"));
        let mut p = PathBuf::from("/abs/x");
        resolve_against(Path::new("config/sluice.toml"), &mut p);
        assert_eq!(p, PathBuf::from("/abs/x"));
        let mut p = PathBuf::from("../../up");
        resolve_against(Path::new("sluice.toml"), &mut p);
        assert_eq!(p, PathBuf::from("../../up"));
        let mut p = PathBuf::from("connectors");
        resolve_against(Path::new("sluice.toml"), &mut p);
        assert_eq!(p, PathBuf::from("connectors"));
    }

    #[test]
    fn shipped_configurations_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::env::set_var("PGPASSWORD", "pw");
        std::env::set_var("MYSQL_PASSWORD", "pw");
        std::env::set_var("SLUICE_API_TOKEN", "t0ken");
        for daemon in ["config/sluice.toml", "docker/sluice.toml"] {
            let d =
                DaemonConfig::load(&root.join(daemon)).unwrap_or_else(|e| panic!("{daemon}: {e}"));
            // An API listening beyond loopback ships with a token.
            if let Some(api) = &d.api {
                let everywhere =
                    api.listen.starts_with("0.0.0.0") || api.listen.starts_with("[::]");
                assert!(
                    !everywhere || api.token.is_some(),
                    "{daemon}: an open API without a token"
                );
            }
        }
        let mut count = 0;
        for dir in ["connectors", "docker/connectors"] {
            for file in connector_files(&root.join(dir)).unwrap() {
                ConnectorConfig::load(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                count += 1;
            }
        }
        assert_eq!(count, 5);
    }
}
