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
    /// A validation image whose evaluated size (`[eval]`) the model does not take.
    #[error(
        "{sample}: evaluated at its own or a shorter-side size, {message}; set eval.resize = \"fixed\" (data.image_size) or another eval.size"
    )]
    EvalSize {
        /// The sample (its file).
        sample: String,
        /// The size and what the model takes.
        message: String,
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
    /// `model.backbone_weights` could not be loaded.
    #[error("model.backbone_weights: {}: {source}", file.display())]
    Backbone {
        /// The file.
        file: PathBuf,
        /// Why.
        source: zoo_models::registry::BackboneError,
    },
    /// A plot could not be written.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// `--resume` of a run that committed no checkpoint.
    #[error(
        "--resume: {} has no complete checkpoint (the run stopped before committing its first one); start it again with --force",
        run.display()
    )]
    NothingToResume {
        /// The run directory.
        run: PathBuf,
    },
    /// `--resume` of a directory that does not exist.
    #[error("--resume: {}: no such run directory (pass the run's --out)", run.display())]
    NoRun {
        /// The run directory.
        run: PathBuf,
    },
    /// A fresh run into a directory that holds files.
    #[error(
        "{}: the run directory exists; pass --resume to continue it, --force to start afresh in it (the old run's files are removed), or --out DIR",
        run.display()
    )]
    RunExists {
        /// The run directory.
        run: PathBuf,
    },
    /// Another process writes the run directory.
    #[error(
        "{}: another `zoo train` is writing this run directory (it holds {}); wait for it to end or pass another --out",
        run.display(),
        run.join(".lock").display()
    )]
    Locked {
        /// The run directory.
        run: PathBuf,
    },
    /// The loss or the weights became NaN or infinite.
    #[error(
        "training diverged at {at}: {what}. Nothing non-finite was written; the last committed checkpoint is intact. Lower train.lr, set train.grad_clip, or set train.nonfinite = \"skip\" to skip such steps"
    )]
    Diverged {
        /// Where: epoch, batch and step.
        at: String,
        /// What became non-finite.
        what: String,
    },
    /// A sample a model cannot use (names its file).
    #[error("{split} split: {sample}: {message}")]
    Sample {
        /// `train` or `val`.
        split: String,
        /// The sample's file(s).
        sample: String,
        /// What is wrong.
        message: String,
    },
    /// A split with labels the model does not have (checked before training).
    #[error("{split} split: {source} (model.num_classes = {classes})")]
    Labels {
        /// `train` or `val`.
        split: String,
        /// The model's classes.
        classes: usize,
        /// The reader's finding, naming the file.
        source: zoo_data::DataError,
    },
    /// `--resume` with a run file other than the run's.
    #[error(
        "--resume: the run file differs from the one {} was trained with ({}); only train.epochs may change (and train.devices: the batches stay the same)",
        run.display(),
        resolved.display()
    )]
    ResumeChanged {
        /// The run directory.
        run: PathBuf,
        /// The run's resolved run file.
        resolved: PathBuf,
    },
    /// Devices that data-parallel training cannot use.
    #[error(transparent)]
    Devices(#[from] crate::parallel::DevicesError),
    /// A data-parallel replica stopped (its thread panicked or ended).
    #[error("data-parallel replica {rank}: {message}")]
    Replica {
        /// The replica (0 is the first device's).
        rank: usize,
        /// What happened, on which device.
        message: String,
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
