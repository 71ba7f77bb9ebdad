//! Model families: what each family of the zoo (ResNet, DeepLabV3, DeepLabV3+, U-Net, Swin,
//! Mask R-CNN) tells a trainer about itself, in one place per family:
//!
//! - on its configuration ([`FamilyConfig`]): the run-file options it takes
//!   ([`ModelOptions`], refusing the others), a check of every setting with errors naming the
//!   key ([`ConfigError`]), its [`Preprocessing`] (normalisation and the input sizes it takes,
//!   like timm's `default_cfg`), its [`Task`] and its classes;
//! - on its model ([`Family`]): the training loss of a batch of samples and the predictions
//!   on a batch, through the task's targets, loss and outputs.
//!
//! Adding a family means implementing both traits for it (a file here) and listing it in
//! [`crate::registry`]; a trainer sees families only through these traits.

mod deeplab;
mod error;
mod mask_rcnn;
mod options;
mod resnet;
mod swin;
mod unet;

use burn::prelude::*;
use zoo_data::Sample;

pub use error::ConfigError;
pub use options::ModelOptions;

use crate::task::{Context, LossOptions, Prediction, Preprocessing, Task, TaskError};

/// What a model family's configuration says about it.
pub trait FamilyConfig {
    /// The family's name, as upstream calls it ("U-Net", "DeepLabV3+").
    fn family_name(&self) -> &'static str;

    /// The task the family is trained for.
    fn task(&self) -> &'static dyn Task;

    /// Classes of the model's head.
    fn num_classes(&self) -> usize;

    /// What the model expects of its input.
    fn preprocessing(&self) -> Preprocessing;

    /// Sets what `options` asks for.
    ///
    /// # Errors
    /// An option the family does not take ([`ConfigError::Refused`], naming the key and the
    /// model).
    fn apply(&mut self, options: &ModelOptions) -> Result<(), ConfigError>;

    /// Checks every setting the model is built from.
    ///
    /// # Errors
    /// The first setting out of range, naming its key (as a run file's `[model]` section
    /// calls it) and what was expected.
    fn validate(&self) -> Result<(), ConfigError>;
}

/// A training loss with its terms, for a family whose loss has several (Mask R-CNN:
/// torchvision's `loss_objectness`, `loss_rpn_box_reg`, `loss_classifier`, `loss_box_reg`,
/// `loss_mask`); `total` is what is backpropagated.
#[derive(Debug, Clone)]
pub struct Loss {
    /// The loss, shape `[1]`.
    pub total: Tensor<1>,
    /// Its terms by name, each `[1]` (empty for a single-term loss).
    pub terms: Vec<(&'static str, Tensor<1>)>,
}

/// What a model of a family does with samples.
pub trait Family {
    /// The training loss of a batch (call it on a model on an `.autodiff()` device, then
    /// backpropagate).
    ///
    /// # Errors
    /// A sample without the task's ground truth or with a class the model does not have,
    /// samples of different sizes, or a target the model refuses.
    fn loss(
        &self,
        batch: &[Sample],
        context: &Context,
        options: &LossOptions,
    ) -> Result<Tensor<1>, TaskError>;

    /// [`Self::loss`] with its terms (the default: the loss alone, no terms).
    ///
    /// # Errors
    /// See [`Self::loss`].
    fn loss_terms(
        &self,
        batch: &[Sample],
        context: &Context,
        options: &LossOptions,
    ) -> Result<Loss, TaskError> {
        Ok(Loss {
            total: self.loss(batch, context, options)?,
            terms: Vec::new(),
        })
    }

    /// What [`Self::loss`] of `batch` is a mean over, counted on the host: a batch split into
    /// parts (data-parallel training) weighs each part's loss by its share of this count, so
    /// that the weighted sum of the parts' losses, and of their gradients, is the loss of the
    /// whole batch. The default is the number of images (losses averaged over images);
    /// semantic segmentation counts the pixels that are not ignored. A loss averaged over
    /// what the model itself samples (Mask R-CNN's anchors and proposals) keeps the default:
    /// its parts are then weighed by their images, as data-parallel PyTorch averages them.
    fn loss_count(&self, batch: &[Sample]) -> usize {
        batch.len()
    }

    /// The predictions on a batch, one per sample, on the host (call it on a model in
    /// inference mode).
    ///
    /// # Errors
    /// Samples of different sizes.
    fn predict(&self, batch: &[Sample], context: &Context) -> Result<Vec<Prediction>, TaskError>;
}

/// `Err(Invalid { key, message })` unless `ok`.
pub(crate) fn ensure(
    ok: bool,
    key: &str,
    message: impl FnOnce() -> String,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key: key.to_string(),
            message: message(),
        })
    }
}

/// Every value of `values` (named `key`) positive.
pub(crate) fn ensure_positive(key: &str, values: &[usize]) -> Result<(), ConfigError> {
    ensure(values.iter().all(|&v| v > 0), key, || match values {
        [v] => format!("must be positive, got {v}"),
        _ => format!("must all be positive, got {values:?}"),
    })
}
