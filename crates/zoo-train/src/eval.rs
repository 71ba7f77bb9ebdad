//! Evaluation of a model on a dataset, and the batches both training and evaluation read.

use burn::prelude::*;
use burn::tensor::TensorData;
use zoo_data::{AugmentConfig, ImageDataset, Sample, load_batch, resize};
use zoo_eval::{ConfusionMatrix, EvalReport};
use zoo_models::registry::ZooModel;

use crate::Error;
use crate::config::DataSection;
use crate::data::{images, targets};
use crate::model::{Task, forward};

/// Samples `indices` of `dataset`, augmented (training) or not, at the run's image size.
///
/// # Errors
/// The first sample that fails to load.
pub fn samples(
    dataset: &dyn ImageDataset,
    indices: &[usize],
    augment: Option<(&AugmentConfig, u64)>,
    data: &DataSection,
) -> Result<Vec<Sample>, Error> {
    let (config, seed) = augment.map_or((None, 0), |(c, s)| (Some(c), s));
    let batch = load_batch(dataset, indices, config, seed, data.workers)?;
    Ok(batch
        .into_iter()
        .map(|s| {
            if s.size == data.image_size {
                s
            } else {
                resize(&s, data.image_size)
            }
        })
        .collect())
}

/// The confusion matrix of `model` (inference mode) over all of `dataset`.
///
/// # Errors
/// A sample that fails to load or lacks the annotation `task` needs.
pub fn confusion(
    model: &ZooModel,
    dataset: &dyn ImageDataset,
    task: Task,
    classes: usize,
    data: &DataSection,
    batch_size: usize,
    device: &Device,
) -> Result<ConfusionMatrix, Error> {
    let mut matrix = ConfusionMatrix::new(classes);
    let indices: Vec<usize> = (0..dataset.len()).collect();
    for chunk in indices.chunks(batch_size) {
        let batch = samples(dataset, chunk, None, data)?;
        let target = targets(&batch, task, classes).map_err(Error::Invalid)?;
        let logits = forward(model, images(&batch, device)).out;
        let predictions: Vec<i64> = logits.argmax(1).into_data().iter::<i64>().collect();
        matrix.update(&predictions, &target);
    }
    Ok(matrix)
}

/// Evaluates `model` over `dataset`.
///
/// # Errors
/// See [`confusion`].
pub fn evaluate(
    model: &ZooModel,
    dataset: &dyn ImageDataset,
    task: Task,
    classes: usize,
    data: &DataSection,
    batch_size: usize,
    device: &Device,
) -> Result<EvalReport, Error> {
    if task == Task::Instance {
        return crate::instance::evaluate(model, dataset, classes, data, batch_size, device);
    }
    let matrix = confusion(model, dataset, task, classes, data, batch_size, device)?;
    let class_names = class_names(dataset, classes);
    Ok(match task {
        Task::Segmentation => EvalReport {
            accuracy: matrix.accuracy(),
            miou: Some(matrix.mean_iou()),
            class_names,
            per_class: matrix.iou(),
            samples: dataset.len(),
            box_ap: None,
            mask_ap: None,
        },
        Task::Classification => EvalReport {
            accuracy: matrix.accuracy(),
            miou: None,
            class_names,
            per_class: matrix.recall(),
            samples: dataset.len(),
            box_ap: None,
            mask_ap: None,
        },
        Task::Instance => unreachable!("handled above"),
    })
}

/// The dataset's class names, one per model class (`class {i}` where it has none).
pub fn class_names(dataset: &dyn ImageDataset, classes: usize) -> Vec<String> {
    let mut names = dataset.class_names();
    names.resize_with(classes, || String::from("?"));
    names.truncate(classes);
    for (i, n) in names.iter_mut().enumerate() {
        if n == "?" {
            *n = format!("class {i}");
        }
    }
    names
}

/// Per-class softmax probabilities of the predicted class, `[B]` on the host, with the
/// predictions: for classification overlays.
pub fn top1(logits: Tensor<4>) -> (Vec<i64>, Vec<f32>) {
    let [b, c, _, _] = logits.dims();
    let probs = burn::tensor::activation::softmax(logits.reshape([b, c]), 1);
    let (values, indices) = probs.max_dim_with_indices(1);
    let values: Vec<f32> = values.into_data().iter::<f32>().collect();
    let indices: Vec<i64> = indices.into_data().iter::<i64>().collect();
    (indices, values)
}

/// The arg-max class of every pixel of `[B, C, H, W]` logits, `B·H·W` values on the host
/// (classes above 254 saturate at 254, clear of the ignore value 255).
pub fn class_map(logits: Tensor<4>) -> Vec<u8> {
    logits
        .argmax(1)
        .into_data()
        .iter::<i64>()
        .map(|c| c.clamp(0, 254) as u8)
        .collect()
}

/// Tensor of host targets.
pub fn target_tensor(targets: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = targets.len();
    Tensor::from_data(TensorData::new(targets, [n]), device)
}
