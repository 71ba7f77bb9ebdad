//! `steps.csv`: one row per training step (loss, learning rate, gradient norm, images/s,
//! the time the step waited for its batch, wall time, and the loss's terms as
//! `name=value;…` for a family whose loss has several — Mask R-CNN's five), beside the per-epoch `metrics.csv`.
//!
//! Rows are appended as steps end and flushed at every checkpoint; a resumed run first
//! drops the rows of steps after its checkpoint (they are done again), so the file never
//! holds a step twice.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::Error;
use crate::checkpoint::write_atomic;
use crate::train::StepReport;

const HEADER: &str =
    "epoch,batch,step,loss,lr,grad_norm,images_per_s,data_wait_s,seconds,skipped,terms";

/// The open `steps.csv` of a run.
#[derive(Debug)]
pub struct StepLog {
    path: PathBuf,
    file: BufWriter<File>,
}

impl StepLog {
    /// Opens `<run>/steps.csv`: a new file for a fresh run, or the run's file cut to the rows
    /// of steps up to `resumed_step` (a resumed run).
    ///
    /// # Errors
    /// A file that cannot be read or written.
    pub fn open(run: &Path, resumed_step: Option<usize>) -> Result<Self, Error> {
        let path = run.join("steps.csv");
        let mut kept = String::from(HEADER);
        kept.push('\n');
        if let Some(last) = resumed_step
            && let Ok(text) = std::fs::read_to_string(&path)
        {
            let columns = HEADER.split(',').count();
            for line in text.lines().skip(1) {
                let fields: Vec<&str> = line.split(',').collect();
                let step = fields.get(2).and_then(|s| s.parse::<usize>().ok());
                if fields.len() == columns && step.is_some_and(|s| s <= last) {
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
        }
        write_atomic(&path, kept.as_bytes())?;
        let file = File::options()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(Self {
            path,
            file: BufWriter::new(file),
        })
    }

    /// Appends a step's row.
    ///
    /// # Errors
    /// A write failure.
    pub fn log(&mut self, s: &StepReport) -> Result<(), Error> {
        writeln!(
            self.file,
            "{},{},{},{:.6},{:.6e},{:.6e},{:.2},{:.4},{:.4},{},{}",
            s.epoch,
            s.batch,
            s.step,
            s.loss,
            s.lr,
            s.grad_norm,
            s.images as f64 / s.seconds.max(1e-9),
            s.data_wait_seconds,
            s.seconds,
            u8::from(s.skipped),
            s.terms
                .iter()
                .map(|(name, v)| format!("{name}={v:.6}"))
                .collect::<Vec<_>>()
                .join(";")
        )
        .map_err(|e| Error::io(&self.path, e))
    }

    /// Writes what is buffered to the file.
    ///
    /// # Errors
    /// A write failure.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.file.flush().map_err(|e| Error::io(&self.path, e))
    }
}
