//! The crate's error type.

use std::path::PathBuf;

use zoo_data::Annotation;

use crate::checkpoint::CheckpointError;
use crate::config::{ConfigError, DataFormat};
use crate::plot::PlotError;

/// Why a training, evaluation or prediction run stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The run file (names the file and the key).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The dataset format has no ground truth of the kind the model's task needs.
    #[error("data.format: {format:?} data has no {}; the model needs them", annotation.describe())]
    Unserved {
        /// The run file's `data.format`.
        format: DataFormat,
        /// What the task needs.
        annotation: Annotation,
    },
    /// Settings of the shapes data out of range (a run file's are checked when it loads).
    #[error("data: {0}")]
    Shapes(#[from] zoo_data::shapes::ShapesConfigError),
    /// A split without samples.
    #[error("data: the {split} split is empty")]
    EmptySplit {
        /// The split's name.
        split: String,
    },
    /// A sample could not be read (names the file).
    #[error(transparent)]
    Data(#[from] zoo_data::DataError),
    /// A batch the model cannot use (names the sample and what is wrong).
    #[error(transparent)]
    Batch(#[from] zoo_models::task::TaskError),
    /// A checkpoint could not be written or used (names the file).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Upstream weights do not fit the model (every key at fault listed).
    #[error(transparent)]
    Weights(#[from] zoo_models::weights::WeightsError),
    /// A plot could not be written.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// `--resume` without a completed epoch in the run directory.
    #[error("--resume: {} does not exist (no completed epoch to resume from)", checkpoint.display())]
    NothingToResume {
        /// The checkpoint a resumed run starts from.
        checkpoint: PathBuf,
    },
    /// `--resume` with a run file other than the run's.
    #[error(
        "--resume: the run file differs from the one {} was trained with ({}); only train.epochs may change",
        run.display(),
        resolved.display()
    )]
    ResumeChanged {
        /// The run directory.
        run: PathBuf,
        /// The run's resolved run file.
        resolved: PathBuf,
    },
    /// A file of the run directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The run's history could not be read back or written.
    #[error("{}: {source}", path.display())]
    History {
        /// `history.json`.
        path: PathBuf,
        /// What failed.
        source: serde_json::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
