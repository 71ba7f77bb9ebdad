//! A run's resumable state and its one commit point.
//!
//! A checkpoint is complete when `checkpoints/state.json` names it. Its files are written
//! first, under names of their own (`step-S.bpk`, `step-S.optim.bpk`, and at an epoch's end
//! `epoch-N.bpk`, `best.bpk` and the samples panel); then `state.json` is replaced in one
//! rename — the commit; then the files derived from the state (`last.bpk`, `history.json`,
//! `metrics.csv`, the curves) are rewritten and the previous checkpoint's files removed.
//! A process killed at any moment leaves either the previous state or the new one; what a
//! state's derived files lack is rewritten when the run resumes, and leftovers of an
//! unfinished checkpoint (`*.tmp`, unnamed `step-*` files) are removed then.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::checkpoint::write_atomic;
use crate::history::EpochReport;

/// The commit point's file name, in `checkpoints/`.
pub const STATE_FILE: &str = "state.json";

/// Where a run stands at a committed checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunState {
    /// Completed epochs.
    pub epoch: usize,
    /// Batches done of epoch `epoch + 1` (0 at an epoch's end).
    pub batch: usize,
    /// Optimiser steps done.
    pub step: usize,
    /// The bits of the sum of the training losses of those `batch` batches (`f64::to_bits`:
    /// resumed exactly).
    pub loss_sum_bits: u64,
    /// Steps of those batches whose update was skipped (non-finite loss).
    pub skipped: usize,
    /// Wall time spent in those batches.
    pub seconds: f64,
    /// The model's file in `checkpoints/`.
    pub model: String,
    /// The optimiser state's file in `checkpoints/`.
    pub optimizer: String,
    /// The epoch whose weights `best.bpk` holds (the first of equal best figures).
    pub best_epoch: Option<usize>,
    /// One report per completed epoch.
    pub history: Vec<EpochReport>,
}

impl RunState {
    /// Where the run stands, in words: `epoch 3 complete (step 120)` or `epoch 4, batch 7 of
    /// 40 (step 127)`.
    pub fn position(&self, steps_per_epoch: usize) -> String {
        if self.batch == 0 {
            format!("epoch {} complete (step {})", self.epoch, self.step)
        } else {
            format!(
                "epoch {}, batch {} of {steps_per_epoch} (step {})",
                self.epoch + 1,
                self.batch,
                self.step
            )
        }
    }

    /// The names of a checkpoint's own files at `step`: model, optimiser state.
    pub fn file_names(step: usize) -> (String, String) {
        (format!("step-{step}.bpk"), format!("step-{step}.optim.bpk"))
    }
}

/// Reads `checkpoints/state.json` of the run in `dir`; `None` if no checkpoint was committed.
///
/// # Errors
/// An unreadable or malformed state file.
pub fn read(checkpoints: &Path) -> Result<Option<RunState>, Error> {
    let path = checkpoints.join(STATE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| Error::History { path, source })
}

/// Commits `state`: replaces `checkpoints/state.json` in one rename, then flushes the
/// directory so the rename survives a power cut.
///
/// # Errors
/// A write failure (the previous state stays).
pub fn commit(checkpoints: &Path, state: &RunState) -> Result<(), Error> {
    let path = checkpoints.join(STATE_FILE);
    let json = serde_json::to_string_pretty(state).map_err(|source| Error::History {
        path: path.clone(),
        source,
    })?;
    write_atomic(&path, json.as_bytes())?;
    #[cfg(unix)]
    if let Ok(dir) = std::fs::File::open(checkpoints) {
        dir.sync_all().ok();
    }
    Ok(())
}

/// Removes what an unfinished checkpoint left in `checkpoints/`: temporary files, and model
/// or optimiser files of steps `state` does not name.
///
/// # Errors
/// A directory that cannot be listed.
pub fn clean(checkpoints: &Path, state: Option<&RunState>) -> Result<(), Error> {
    let entries = std::fs::read_dir(checkpoints).map_err(|e| Error::io(checkpoints, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(checkpoints, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let named = state.is_some_and(|s| s.model == name || s.optimizer == name);
        if name.ends_with(".tmp") || (name.starts_with("step-") && !named) {
            let path: PathBuf = entry.path();
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}
