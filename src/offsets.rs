//! The offset store: one file per connector holding its last committed position.
//!
//! A commit writes a temporary file, fsyncs it, renames it over the old one and fsyncs the
//! folder, so a crash leaves either the old or the new position, never a torn file. A
//! commit that would move the position backwards is refused.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::position::SourcePosition;

/// An offset store failure.
#[derive(Debug, thiserror::Error)]
pub enum OffsetError {
    /// File-system failure.
    #[error("offset store {path}: {source}")]
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
}

impl FileOffsetStore {
    /// A store in `dir` (created on first commit).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileOffsetStore { dir: dir.into() }
    }

    fn path(&self, connector: &str) -> PathBuf {
        self.dir.join(format!("{connector}.json"))
    }

    /// The stored position of a connector, if any.
    pub fn load(&self, connector: &str) -> Result<Option<SourcePosition>, OffsetError> {
        let path = self.path(connector);
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

    /// Every stored connector and position.
    pub fn list(&self) -> Result<Vec<(String, SourcePosition)>, OffsetError> {
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
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(connector) = name.strip_suffix(".json") {
                if let Some(pos) = self.load(connector)? {
                    out.push((connector.to_string(), pos));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Durably stores a position; refuses to move backwards. Blocking (fsync): call it from
    /// `spawn_blocking` on async paths.
    pub fn commit(&self, connector: &str, position: &SourcePosition) -> Result<(), OffsetError> {
        if let Some(current) = self.load(connector)? {
            if matches!(
                position.partial_cmp(&current),
                Some(std::cmp::Ordering::Less)
            ) {
                return Err(OffsetError::Backwards {
                    connector: connector.to_string(),
                    current: current.to_string(),
                    proposed: position.to_string(),
                });
            }
        }
        self.write(connector, position)
    }

    /// Stores a position even if it is behind the stored one (a snapshot started over).
    pub fn reset(&self, connector: &str, position: &SourcePosition) -> Result<(), OffsetError> {
        self.write(connector, position)
    }

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
        let body = serde_json::to_vec_pretty(&file).map_err(|e| OffsetError::Corrupt {
            path: self.path(connector),
            reason: e.to_string(),
        })?;
        let target = self.path(connector);
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
    use crate::position::{PgPosition, SnapshotState};

    fn pos(lsn: u64) -> SourcePosition {
        SourcePosition::Postgres(PgPosition {
            resume_lsn: lsn,
            partial: None,
            snapshot: SnapshotState::Done,
        })
    }

    #[test]
    fn commit_load_and_refuse_backwards() {
        let dir = std::env::temp_dir().join(format!("sluice-offsets-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = FileOffsetStore::new(&dir);
        assert_eq!(store.load("a").unwrap(), None);
        store.commit("a", &pos(10)).unwrap();
        store.commit("a", &pos(20)).unwrap();
        assert_eq!(store.load("a").unwrap(), Some(pos(20)));
        let err = store.commit("a", &pos(15)).unwrap_err();
        assert!(matches!(err, OffsetError::Backwards { .. }));
        assert_eq!(store.load("a").unwrap(), Some(pos(20)));
        assert_eq!(store.list().unwrap().len(), 1);
        fs::write(dir.join("b.json"), "{not json").unwrap();
        assert!(matches!(store.load("b"), Err(OffsetError::Corrupt { .. })));
        let _ = fs::remove_dir_all(&dir);
    }
}
