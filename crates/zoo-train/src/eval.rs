//! A model's validation figures over a dataset, whatever its task.

use burn::prelude::*;
use zoo_data::ImageDataset;
use zoo_eval::EvalReport;
use zoo_models::registry::ZooModel;
use zoo_models::task::Context;

use crate::Error;
use crate::config::RunConfig;
use crate::data::{class_names, samples};

/// Evaluates `model` (in inference mode, on `device`) over all of `dataset` in batches of
/// `train.batch_size` at the run's image size: the task's figures (segmentation: pixel
/// accuracy, per-class IoU, mIoU; classification: top-1 accuracy, per-class recall;
/// instance segmentation: COCO box and mask AP, per-class mask AP, objects found).
///
/// # Errors
/// A sample that fails to load or lacks the ground truth the task needs.
pub fn evaluate(
    model: &ZooModel,
    config: &RunConfig,
    dataset: &dyn ImageDataset,
    device: &Device,
) -> Result<EvalReport, Error> {
    let model_config = config.model_config()?;
    let family = model_config.family();
    let preprocessing = family.preprocessing();
    let context = Context {
        device,
        preprocessing: &preprocessing,
        num_classes: family.num_classes(),
    };
    let mut evaluator = family
        .task()
        .evaluator(class_names(dataset, family.num_classes()));
    let indices: Vec<usize> = (0..dataset.len()).collect();
    for chunk in indices.chunks(config.train.batch_size.max(1)) {
        let batch = samples(dataset, chunk, None, &config.data)?;
        let predictions = model.family().predict(&batch, &context)?;
        evaluator.add(&batch, &predictions)?;
    }
    Ok(evaluator.report())
}
