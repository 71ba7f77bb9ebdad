//! A model's validation figures over a dataset, whatever its task.

use burn::prelude::*;
use zoo_data::ImageDataset;
use zoo_eval::EvalReport;
use zoo_models::registry::ZooModel;
use zoo_models::task::Context;

use crate::Error;
use crate::config::{EvalProtocol, RunConfig};
use crate::data::{class_names, eval_samples};

/// Evaluates `model` (in inference mode, on `device`) over all of `dataset`, its images sized
/// as the run's [`EvalProtocol`] says ([`RunConfig::eval_protocol`]) and batched by up to
/// `train.batch_size` images of one size: the task's figures (segmentation: pixel accuracy,
/// per-class IoU, mIoU, at the evaluated size with 255 ignored; classification: top-1
/// accuracy, per-class recall; instance segmentation: COCO box and mask AP, per-class mask
/// AP, objects found, against the ground truth at the evaluated size).
///
/// # Errors
/// A sample that fails to load, lacks the ground truth the task needs, or has a size the
/// model does not take (named with its file).
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
    let protocol = config.eval_protocol();
    let indices: Vec<usize> = (0..dataset.len()).collect();
    let max = config.train.batch_size.max(1);
    // Samples are read a chunk at a time and batched by size within it.
    for chunk in indices.chunks(max) {
        let loaded = eval_samples(dataset, chunk, protocol, &config.data)?;
        if !matches!(protocol, EvalProtocol::Fixed(_)) {
            for (&index, s) in chunk.iter().zip(&loaded) {
                preprocessing
                    .input
                    .check(s.size)
                    .map_err(|e| Error::EvalSize {
                        sample: dataset.describe(index),
                        message: e.to_string(),
                    })?;
            }
        }
        for batch in loaded.chunk_by(|a, b| a.size == b.size) {
            let predictions = model.family().predict(batch, &context)?;
            evaluator.add(batch, &predictions)?;
        }
    }
    Ok(evaluator.report())
}
