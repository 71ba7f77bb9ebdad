//! The crate's error type.

use std::path::PathBuf;

use crate::checkpoint::CheckpointError;
use crate::config::ConfigError;
use crate::plot::PlotError;

/// Why a training, evaluation or prediction run stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The run file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Settings that do not fit together (model, data, task), or a batch that does not fit
    /// the model; the message names the key or the sample.
    #[error("{0}")]
    Invalid(String),
    /// A sample could not be read (the message names the file).
    #[error(transparent)]
    Data(#[from] zoo_data::DataError),
    /// A checkpoint could not be written or used.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Upstream weights do not fit the model (every key at fault listed).
    #[error(transparent)]
    Weights(#[from] zoo_models::weights::WeightsError),
    /// A plot could not be written.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// Another file-system failure.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        Error::Io {
            path: path.into(),
            message: e.to_string(),
        }
    }
}
