//! Tasks: what a model is trained for — a class per pixel ([`Segmentation`]), per image
//! ([`Classification`]) or object instances ([`InstanceSegmentation`]) — and everything that
//! follows from it: the ground truth a sample must carry, targets and loss, predictions on
//! the host, the figures a validation pass reports ([`Evaluator`]) and the overlays that show
//! targets and predictions. Each model family ([`crate::family`]) is trained for one task.

pub(crate) mod classification;
pub(crate) mod instance;
mod prediction;
mod preprocessing;
pub(crate) mod segmentation;

use burn::prelude::*;
use zoo_data::{Annotation, Sample};
use zoo_eval::EvalReport;

pub use classification::Classification;
pub use instance::{InstanceSegmentation, SHOW_SCORE};
pub use prediction::{Detected, Overlay, OverlayBox, Prediction};
pub use preprocessing::{IMAGENET_MEAN, IMAGENET_STD, InputSize, InputSizeError, Preprocessing};
pub use segmentation::{IGNORE, Segmentation, masked_cross_entropy};

use crate::detection::mask_rcnn::DetectionError;

/// What a model is trained for, whatever its family.
pub trait Task: Send + Sync + std::fmt::Debug {
    /// The task's name ("semantic segmentation", …).
    fn name(&self) -> &'static str;

    /// The ground truth its samples must carry.
    fn annotation(&self) -> Annotation;

    /// Classes of the upstream weights' heads (ImageNet's 1000, VOC's 21, COCO's 91): what a
    /// model of the task gets when none is asked for.
    fn default_num_classes(&self) -> usize;

    /// The validation figures of a dataset's predictions, for `class_names` (one per model
    /// class).
    fn evaluator(&self, class_names: Vec<String>) -> Box<dyn Evaluator>;

    /// What a sample's ground truth looks like drawn over its image.
    fn target_overlay(&self, sample: &Sample) -> Overlay;
}

/// Accumulates a dataset's predictions batch by batch, then reports.
pub trait Evaluator {
    /// Adds a batch: its samples (with ground truth) and the model's predictions, in order.
    ///
    /// # Errors
    /// A sample without the task's ground truth, a class outside the model's, or a
    /// prediction of another task.
    fn add(&mut self, samples: &[Sample], predictions: &[Prediction]) -> Result<(), TaskError>;

    /// The figures of everything added so far.
    fn report(&self) -> EvalReport;
}

/// What a family's [`loss`](crate::family::Family::loss) and
/// [`predict`](crate::family::Family::predict) need besides the samples.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The device the model lives on (its `.autodiff()` for training).
    pub device: &'a Device,
    /// How the model's configuration says to feed it.
    pub preprocessing: &'a Preprocessing,
    /// Classes of the model (targets outside `0..num_classes` are refused).
    pub num_classes: usize,
}

/// Settings of a training loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossOptions {
    /// Weight of an auxiliary head's loss (DeepLabV3's FCN head; torchvision: 0.5).
    pub aux_weight: f64,
    /// Seed of the random choices inside the loss (Mask R-CNN's anchor and proposal
    /// sampling).
    pub seed: u64,
}

/// Why a batch could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A sample without the ground truth the task needs, or with a class the model does not
    /// have.
    #[error("sample {index} of the batch: {message}")]
    Sample {
        /// Position in the batch.
        index: usize,
        /// What is wrong, with the expected and the actual value.
        message: String,
    },
    /// Samples of one batch differ in size.
    #[error(
        "sample {index} of the batch is {size:?} (height, width) but the first is {first:?}: a batch's images share one size"
    )]
    Size {
        /// Position in the batch.
        index: usize,
        /// Its size.
        size: [usize; 2],
        /// The first sample's size.
        first: [usize; 2],
    },
    /// A target Mask R-CNN refuses.
    #[error(transparent)]
    Detection(#[from] DetectionError),
    /// Evaluator input pycocotools would refuse.
    #[error(transparent)]
    Evaluation(#[from] zoo_eval::coco::ApError),
    /// A prediction of another task (a model of another family fed to this evaluator).
    #[error("the {task} evaluator cannot use a {prediction} prediction")]
    Mismatch {
        /// The evaluator's task.
        task: &'static str,
        /// What the prediction was.
        prediction: &'static str,
    },
}

impl TaskError {
    pub(crate) fn sample(index: usize, message: impl Into<String>) -> Self {
        TaskError::Sample {
            index,
            message: message.into(),
        }
    }
}
