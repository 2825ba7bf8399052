//! Offset stores: where each connector's last committed position is kept.
//!
//! [`OffsetStore`] is the contract the pipeline relies on for invariant 1 (no lost change):
//! a position returned by `load` is one that was committed, a `commit` is durable when it
//! returns, and a stored position never moves backwards except through `reset`.
//!
//! [`FileOffsetStore`] keeps one file per connector: a commit writes a temporary file, fsyncs
//! it, renames it over the old one and fsyncs the folder, so a crash leaves either the old or
//! the new position, never a torn file. [`MemoryOffsetStore`] keeps positions in memory (for
//! tests and tools); it keeps the same promises except surviving the process.
//! [`KafkaOffsetStore`] keeps them in a compacted Kafka topic in Kafka Connect's format
//! ([`connect`]), so a daemon without a durable disk (or another daemon, after a failover)
//! resumes where the connector was.

mod aborted;
pub mod connect;
#[cfg(any(test, feature = "testing"))]
pub mod contract;
mod kafka;

pub use kafka::{KafkaOffsetStore, KafkaStoreSettings};

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::failure::{Classify, Severity};
use crate::position::SourcePosition;

/// An offset store failure.
#[derive(Debug, thiserror::Error)]
pub enum OffsetError {
    /// File-system failure.
    #[error("offset store {path}: {source}{}", fix_for(source))]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold a position.
    #[error("offset file {path} is not valid: {reason}; restore it from a backup or delete it to start over (a new snapshot)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Another daemon holds the folder's lock.
    #[error("offsets folder {path} is in use by another Sluice daemon (its lock file is held); stop that daemon or give this one its own [offsets] path: two daemons writing one position would lose changes")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The Kafka offset store's brokers or topic.
    #[error("offsets topic {topic}: {reason}")]
    Kafka {
        /// The offsets topic.
        topic: String,
        /// What happened and what to do.
        reason: String,
        /// Whether retrying cannot help (the topic cannot be created as configured).
        definite: bool,
    },
    /// A connector name that cannot name a file of the store.
    #[error("\"{name}\" is not a connector name (letters, digits, '_', '.' and '-', not starting with '.'): offsets are stored in a file named after the connector")]
    BadName {
        /// The name given.
        name: String,
    },
    /// A commit would move backwards.
    #[error("refusing to move connector {connector} back from {current} to {proposed}")]
    Backwards {
        /// Connector.
        connector: String,
        /// Stored position.
        current: String,
        /// Proposed position.
        proposed: String,
    },
}

/// File-system errors that no retry fixes: the path is wrong or not writable.
fn needs_a_person(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        NotADirectory | IsADirectory | PermissionDenied | ReadOnlyFilesystem | AlreadyExists
    )
}

fn fix_for(e: &std::io::Error) -> &'static str {
    if needs_a_person(e) {
        "; [offsets] path in the daemon configuration must name a folder Sluice may create and write"
    } else {
        ""
    }
}

impl Classify for OffsetError {
    fn severity(&self) -> Severity {
        match self {
            OffsetError::Io { source, .. } if needs_a_person(source) => Severity::Definite,
            // A full disk or a passing I/O error; the next run re-reads from the committed
            // position.
            OffsetError::Io { .. } => Severity::Transient,
            OffsetError::Kafka {
                definite: false, ..
            } => Severity::Transient,
            OffsetError::Kafka { definite: true, .. } => Severity::Definite,
            OffsetError::Corrupt { .. }
            | OffsetError::BadName { .. }
            | OffsetError::Backwards { .. }
            | OffsetError::Locked { .. } => Severity::Definite,
        }
    }
}

/// Where a connector's committed position is kept.
///
/// The contract every implementation keeps:
/// - **Durable on return.** When `commit` or `reset` returns `Ok`, the position survives a
///   crash of the process (and, for persistent stores, of the machine); `load` returns it.
/// - **Never backwards.** `commit` refuses ([`OffsetError::Backwards`]) a position that
///   compares lower than the stored one of the same source kind, and leaves the stored one.
/// - **`reset` is the only way back.** It stores a position whatever the stored one is. The
///   pipeline uses it only for positions of a snapshot in progress (a snapshot that starts
///   over stores its starting point again, which may be behind an earlier finished run).
/// - **Per connector.** Positions of different connectors never affect each other.
///
/// Methods block (a file store fsyncs); async callers run them on `spawn_blocking`.
pub trait OffsetStore: Send + Sync + fmt::Debug {
    /// The committed position of `connector`, if any.
    fn load(&self, connector: &str) -> Result<Option<SourcePosition>, OffsetError>;
    /// Durably stores `position`; refuses to move backwards.
    fn commit(&self, connector: &str, position: &SourcePosition) -> Result<(), OffsetError>;
    /// Durably stores `position` even when it is behind the stored one.
    fn reset(&self, connector: &str, position: &SourcePosition) -> Result<(), OffsetError>;
    /// Durably forgets the connector's position (its next start is its first).
    fn delete(&self, connector: &str) -> Result<(), OffsetError>;
    /// Tells the store the partition a connector's position belongs to (Debezium's
    /// `server`: the connector's topic prefix), before the first `load` or `commit`. Stores
    /// that key positions by connector name alone ignore it.
    fn describe(&self, _connector: &str, _server: &str) {}
    /// Exactly-once: the record that stores `position` (checked as `commit` checks: never
    /// backwards, unless `reset` as in [`Self::reset`]), for a writer that commits it in the
    /// same Kafka transaction as the records it covers. `None`: this store cannot join a
    /// Kafka transaction.
    fn position_record(
        &self,
        _connector: &str,
        _position: &SourcePosition,
        _reset: bool,
    ) -> Option<Result<PositionRecord, OffsetError>> {
        None
    }
    /// Exactly-once: the transaction holding [`Self::position_record`]'s record committed;
    /// `position` is now the stored one.
    fn committed_in_transaction(&self, _connector: &str, _position: &SourcePosition) {}
    /// The connectors with a stored position, ordered by name.
    fn names(&self) -> Result<Vec<String>, OffsetError>;
    /// Every stored connector and its position, ordered by connector name (the first
    /// unreadable position is an error; [`Self::names`] and [`Self::load`] read them one by
    /// one).
    fn list(&self) -> Result<Vec<(String, SourcePosition)>, OffsetError> {
        let mut out = Vec::new();
        for name in self.names()? {
            if let Some(p) = self.load(&name)? {
                out.push((name, p));
            }
        }
        Ok(out)
    }

    /// Forgets a connector's position so that its next start is its first (`offsets reset`,
    /// `DELETE /connectors/{name}/offsets`). A PostgreSQL position keeps the record of the
    /// slot it was read from (and nothing else): the next start can then prove the slot is
    /// this connector's, and take a new snapshot on a new one, instead of refusing a slot it
    /// cannot prove.
    fn forget(&self, connector: &str) -> Result<(), OffsetError> {
        let kept_slot = match self.load(connector) {
            Ok(Some(SourcePosition::Postgres(p))) => p.slot,
            _ => None,
        };
        match kept_slot {
            Some(slot) => self.reset(
                connector,
                &SourcePosition::Postgres(crate::position::PgPosition {
                    slot: Some(slot),
                    snapshot: crate::position::SnapshotState::InProgress,
                    ..crate::position::PgPosition::at(0)
                }),
            ),
            None => self.delete(connector),
        }
    }
}

/// A position as a record of the offsets topic (exactly-once: written by the sink's
/// transactional producer, in the transaction of the records it covers).
#[derive(Debug, Clone)]
pub struct PositionRecord {
    /// The offsets topic.
    pub topic: String,
    /// The partition Connect's key belongs to.
    pub partition: i32,
    /// Connect's key.
    pub key: Vec<u8>,
    /// Connect's value.
    pub value: Vec<u8>,
}

/// The check `commit` makes in every store.
fn refuse_backwards(
    connector: &str,
    current: Option<&SourcePosition>,
    proposed: &SourcePosition,
) -> Result<(), OffsetError> {
    match current {
        Some(current)
            if matches!(
                proposed.partial_cmp(current),
                Some(std::cmp::Ordering::Less)
            ) =>
        {
            Err(OffsetError::Backwards {
                connector: connector.to_string(),
                current: current.to_string(),
                proposed: proposed.to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// Positions kept in memory: the [`OffsetStore`] contract without surviving the process.
#[derive(Debug, Default)]
pub struct MemoryOffsetStore {
    positions: Mutex<BTreeMap<String, SourcePosition>>,
}

impl MemoryOffsetStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SourcePosition>> {
        self.positions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl OffsetStore for MemoryOffsetStore {
    fn load(&self, connector: &str) -> Result<Option<SourcePosition>, OffsetError> {
        Ok(self.map().get(connector).cloned())
    }

    fn commit(&self, connector: &str, position: &SourcePosition) -> Result<(), OffsetError> {
        let mut map = self.map();
        refuse_backwards(connector, map.get(connector), position)?;
        map.insert(connector.to_string(), position.clone());
        Ok(())
    }

    fn reset(&self, connector: &str, position: &SourcePosition) -> Result<(), OffsetError> {
        self.map().insert(connector.to_string(), position.clone());
        Ok(())
    }

    fn delete(&self, connector: &str) -> Result<(), OffsetError> {
        self.map().remove(connector);
        Ok(())
    }

    fn names(&self) -> Result<Vec<String>, OffsetError> {
        Ok(self.map().keys().cloned().collect())
    }
}

/// The exclusive lock a daemon holds on its offsets folder for its whole life, so that a
/// second daemon (or a second copy of the same one) on the same folder refuses to start
/// instead of writing the same positions. Released when dropped (or when the process ends).
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
}

impl FolderLock {
    /// Takes the lock of `dir` (created when missing); an error when another process has it.
    pub fn acquire(dir: &Path) -> Result<FolderLock, OffsetError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OffsetError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(FolderLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(OffsetError::Locked { path }),
            Err(std::fs::TryLockError::Error(source)) => Err(OffsetError::Io { path, source }),
        }
    }
}

/// What one offset file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OffsetFile {
    connector: String,
    position: SourcePosition,
    committed_at_ms: u64,
}

/// The file-backed offset store.
#[derive(Debug, Clone)]
pub struct FileOffsetStore {
    dir: PathBuf,
    /// Held for each check-and-write: a commit and a reset of one connector (from the
    /// pipeline and the source) never interleave.
    writes: std::sync::Arc<Mutex<()>>,
}

impl FileOffsetStore {
    /// A store in `dir` (created on first commit).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileOffsetStore {
            dir: dir.into(),
            writes: Default::default(),
        }
    }

    /// The file of a connector's position; only for a valid connector name (a name from
    /// an import file or the command line could otherwise reach outside the folder).
    fn path(&self, connector: &str) -> Result<PathBuf, OffsetError> {
        let valid = !connector.is_empty()
            && !connector.starts_with('.')
            && connector
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return Err(OffsetError::BadName {
                name: connector.to_string(),
            });
        }
        Ok(self.dir.join(format!("{connector}.json")))
    }
}

impl OffsetStore for FileOffsetStore {
    fn load(&self, connector: &str) -> Result<Option<SourcePosition>, OffsetError> {
        let path = self.path(connector)?;
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(OffsetError::Io { path, source }),
        };
        let file: OffsetFile = serde_json::from_str(&text).map_err(|e| OffsetError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(Some(file.position))
    }

    fn names(&self) -> Result<Vec<String>, OffsetError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(OffsetError::Io {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut out: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json")
                    .filter(|n| !n.starts_with('.'))
                    .map(str::to_string)
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn commit(&self, connector: &str, position: &SourcePosition) -> Result<(), OffsetError> {
        let _one_writer = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        refuse_backwards(connector, self.load(connector)?.as_ref(), position)?;
        self.write(connector, position)
    }

    fn reset(&self, connector: &str, position: &SourcePosition) -> Result<(), OffsetError> {
        let _one_writer = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        self.write(connector, position)
    }

    fn delete(&self, connector: &str) -> Result<(), OffsetError> {
        let _one_writer = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.path(connector)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(OffsetError::Io { path, source }),
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| OffsetError::Io {
                path: self.dir.clone(),
                source,
            })
    }
}

impl FileOffsetStore {
    fn write(&self, connector: &str, position: &SourcePosition) -> Result<(), OffsetError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OffsetError::Io { path, source }
        };
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let file = OffsetFile {
            connector: connector.to_string(),
            position: position.clone(),
            committed_at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or_default(),
        };
        let target = self.path(connector)?;
        let body = serde_json::to_vec_pretty(&file).map_err(|e| OffsetError::Corrupt {
            path: target.clone(),
            reason: e.to_string(),
        })?;
        let tmp = self.dir.join(format!(".{connector}.json.tmp"));
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(io(&tmp))?;
            f.write_all(&body).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        fs::rename(&tmp, &target).map_err(io(&target))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::contract::{contract, pos};

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sluice-offsets-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn names_that_leave_the_folder_are_refused() {
        let dir = temp_dir("names");
        let store = FileOffsetStore::new(dir.join("offsets"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("x.json"), "outside").unwrap();
        for name in ["../x", "", ".hidden", "a/b", "a\\b"] {
            assert!(
                matches!(store.delete(name), Err(OffsetError::BadName { .. })),
                "{name}"
            );
            assert!(
                matches!(
                    store.commit(name, &pos(1)),
                    Err(OffsetError::BadName { .. })
                ),
                "{name}"
            );
            assert!(
                matches!(store.load(name), Err(OffsetError::BadName { .. })),
                "{name}"
            );
        }
        assert_eq!(fs::read_to_string(dir.join("x.json")).unwrap(), "outside");
        store.commit("ok.name-1_2", &pos(1)).unwrap();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_commit_and_a_reset_from_two_tasks_never_leave_a_broken_file() {
        let dir = temp_dir("writers");
        let store = std::sync::Arc::new(FileOffsetStore::new(&dir));
        store.commit("a", &pos(1)).unwrap();
        let committer = {
            let store = store.clone();
            std::thread::spawn(move || {
                for n in 2..300 {
                    // A reset may have moved it back: a refusal is fine, a broken file is not.
                    let _ = store.commit("a", &pos(n));
                }
            })
        };
        let resetter = {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..300 {
                    store.reset("a", &pos(1)).unwrap();
                }
            })
        };
        for _ in 0..600 {
            let loaded = store.load("a");
            assert!(matches!(loaded, Ok(Some(_))), "{loaded:?}");
        }
        committer.join().unwrap();
        resetter.join().unwrap();
        assert!(store.load("a").unwrap().is_some());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn file_store_keeps_the_contract() {
        let dir = temp_dir("contract");
        contract(&FileOffsetStore::new(&dir));
        // Durable: a new store on the same folder reads what the first committed.
        assert_eq!(FileOffsetStore::new(&dir).load("a").unwrap(), Some(pos(6)));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_offsets_path_that_is_a_file_is_definite() {
        let file = temp_dir("is-a-file");
        fs::write(&file, "x").unwrap();
        let store = FileOffsetStore::new(&file);
        let err = store.commit("a", &pos(1)).unwrap_err();
        assert_eq!(err.severity(), Severity::Definite, "{err}");
        assert!(err.to_string().contains("[offsets] path"), "{err}");
        let err = store.load("a").unwrap_err();
        assert_eq!(err.severity(), Severity::Definite, "{err}");
        let _ = fs::remove_file(&file);
    }

    #[test]
    fn a_locked_folder_cannot_be_locked_again() {
        let dir = temp_dir("lock");
        let first = FolderLock::acquire(&dir).unwrap();
        let err = FolderLock::acquire(&dir).unwrap_err();
        assert!(matches!(err, OffsetError::Locked { .. }), "{err}");
        drop(first);
        FolderLock::acquire(&dir).unwrap();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn memory_store_keeps_the_contract() {
        contract(&MemoryOffsetStore::new());
    }

    #[test]
    fn file_store_reports_a_corrupt_file() {
        let dir = temp_dir("corrupt");
        let store = FileOffsetStore::new(&dir);
        store.commit("a", &pos(1)).unwrap();
        fs::write(dir.join("b.json"), "{not json").unwrap();
        assert!(matches!(store.load("b"), Err(OffsetError::Corrupt { .. })));
        assert_eq!(store.load("a").unwrap(), Some(pos(1)));
        let _ = fs::remove_dir_all(&dir);
    }
}
