//! A run directory held by one writer: opened fresh, cleared (`--force`) or resumed, under
//! an advisory lock (`<run>/.lock`) that a second `zoo train` on the same directory fails to
//! take. The lock goes with the process (also when it is killed), so a lock file left behind
//! never blocks the next run.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use crate::Error;

/// How [`RunDir::open`] treats what is already in the directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Start {
    /// A new run: the directory must not exist, or be empty.
    #[default]
    Fresh,
    /// A new run in place of an old one: the old run's files are removed first (the files
    /// burn-zoo writes; anything else in the directory is left alone).
    Force,
    /// Continue the run in the directory from its last complete checkpoint.
    Resume,
}

/// The files and directories a run writes (what [`Start::Force`] removes).
pub const RUN_FILES: [&str; 9] = [
    "config.toml",
    "history.json",
    "metrics.csv",
    "steps.csv",
    "train.log",
    "loss.png",
    "metrics.png",
    "samples",
    "checkpoints",
];

/// A run directory this process writes, locked for as long as the value lives.
#[derive(Debug)]
pub struct RunDir {
    root: PathBuf,
    _lock: File,
}

impl RunDir {
    /// Opens `root` for a run started as `start` and takes its lock.
    ///
    /// # Errors
    /// [`Error::RunExists`] for a fresh run in a non-empty directory, [`Error::NoRun`] when
    /// resuming a directory that does not exist, [`Error::Locked`] when another process
    /// writes the run, an I/O error naming the path.
    pub fn open(root: &Path, start: Start) -> Result<Self, Error> {
        let exists = root.is_dir();
        match start {
            Start::Resume if !exists => {
                return Err(Error::NoRun {
                    run: root.to_path_buf(),
                });
            }
            Start::Fresh if exists && !is_empty(root)? => {
                return Err(Error::RunExists {
                    run: root.to_path_buf(),
                });
            }
            _ => {}
        }
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let path = root.join(".lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    run: root.to_path_buf(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        if start == Start::Force {
            for name in RUN_FILES {
                let path = root.join(name);
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                match removed {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::io(&path, e));
                    }
                    _ => {}
                }
            }
        }
        for dir in ["checkpoints", "samples"] {
            let path = root.join(dir);
            std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<run>/checkpoints`.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
}

fn is_empty(dir: &Path) -> Result<bool, Error> {
    let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    Ok(entries.next().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_writer_at_a_time_and_force_clears_only_run_files() {
        let dir = std::env::temp_dir().join(format!("zoo-rundir-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let first = RunDir::open(&dir, Start::Fresh).unwrap();
        std::fs::write(dir.join("checkpoints/epoch-4.bpk"), b"old").unwrap();
        std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
        let e = RunDir::open(&dir, Start::Force).unwrap_err();
        assert!(matches!(e, Error::Locked { .. }), "{e}");
        assert!(e.to_string().contains("another"), "{e}");
        drop(first);
        let e = RunDir::open(&dir, Start::Fresh).unwrap_err();
        assert!(e.to_string().contains("--force"), "{e}");
        let _second = RunDir::open(&dir, Start::Force).unwrap();
        assert!(!dir.join("checkpoints/epoch-4.bpk").exists());
        assert!(dir.join("checkpoints").is_dir() && dir.join("notes.txt").exists());
        let e = RunDir::open(&dir.join("none"), Start::Resume).unwrap_err();
        assert!(matches!(e, Error::NoRun { .. }), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
