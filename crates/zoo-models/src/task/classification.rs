//! Image classification (ResNet, Swin): targets are the samples' labels, the loss is
//! cross-entropy, the figures are top-1 accuracy and per-class recall.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::softmax;
use zoo_data::{Annotation, Sample};
use zoo_eval::{ConfusionMatrix, EvalReport};

use super::{Context, Evaluator, Overlay, Prediction, Task, TaskError};

/// The image-classification task.
#[derive(Debug, Clone, Copy, Default)]
pub struct Classification;

/// The label of sample `index`, checked against the model's classes.
fn label(index: usize, sample: &Sample, classes: usize) -> Result<usize, TaskError> {
    let label = sample
        .label
        .ok_or_else(|| TaskError::sample(index, "no image label (the task needs image labels)"))?;
    if label >= classes {
        return Err(TaskError::sample(
            index,
            format!("label {label} but the model has {classes} classes"),
        ));
    }
    Ok(label)
}

/// The cross-entropy of a classifier on a batch.
///
/// # Errors
/// A sample without a label or with a label the model does not have, or samples of
/// different sizes.
pub(crate) fn loss(
    batch: &[Sample],
    context: &Context,
    forward: impl FnOnce(Tensor<4>) -> Tensor<2>,
) -> Result<Tensor<1>, TaskError> {
    let labels = batch
        .iter()
        .enumerate()
        .map(|(i, s)| label(i, s, context.num_classes).map(|l| l as i64))
        .collect::<Result<Vec<_>, _>>()?;
    let n = labels.len();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), context.device);
    let logits = forward(context.preprocessing.images(batch, context.device)?);
    Ok(CrossEntropyLossConfig::new()
        .init(context.device)
        .forward(logits, targets))
}

/// The top class of each image and its softmax probability.
///
/// # Errors
/// Samples of different sizes.
pub(crate) fn predict(
    batch: &[Sample],
    context: &Context,
    forward: impl FnOnce(Tensor<4>) -> Tensor<2>,
) -> Result<Vec<Prediction>, TaskError> {
    let logits = forward(context.preprocessing.images(batch, context.device)?);
    let (scores, classes) = softmax(logits, 1).max_dim_with_indices(1);
    let scores = scores.into_data().iter::<f32>().collect::<Vec<_>>();
    let classes = classes.into_data().iter::<i64>().collect::<Vec<_>>();
    Ok(classes
        .into_iter()
        .zip(scores)
        .map(|(class, score)| Prediction::Label {
            class: class as usize,
            score,
        })
        .collect())
}

impl Task for Classification {
    fn name(&self) -> &'static str {
        "image classification"
    }

    fn annotation(&self) -> Annotation {
        Annotation::Label
    }

    fn default_num_classes(&self) -> usize {
        1000
    }

    fn evaluator(&self, class_names: Vec<String>) -> Box<dyn Evaluator> {
        Box::new(ClassificationEvaluator {
            matrix: ConfusionMatrix::new(class_names.len()),
            class_names,
            samples: 0,
        })
    }

    fn target_overlay(&self, sample: &Sample) -> Overlay {
        match sample.label {
            Some(class) => Overlay::label(sample.size, class, None),
            None => Overlay::default(),
        }
    }
}

/// Top-1 accuracy and per-class recall of a confusion matrix of labels.
struct ClassificationEvaluator {
    matrix: ConfusionMatrix,
    class_names: Vec<String>,
    samples: usize,
}

impl Evaluator for ClassificationEvaluator {
    fn add(&mut self, samples: &[Sample], predictions: &[Prediction]) -> Result<(), TaskError> {
        for (i, (s, p)) in samples.iter().zip(predictions).enumerate() {
            let target = label(i, s, self.class_names.len())?;
            let &Prediction::Label { class, .. } = p else {
                return Err(TaskError::Mismatch {
                    task: "image classification",
                    prediction: p.kind(),
                });
            };
            self.matrix.update(&[class as i64], &[target as i64]);
            self.samples += 1;
        }
        Ok(())
    }

    fn report(&self) -> EvalReport {
        EvalReport {
            accuracy: self.matrix.accuracy(),
            miou: None,
            class_names: self.class_names.clone(),
            per_class: self.matrix.recall(),
            samples: self.samples,
            box_ap: None,
            mask_ap: None,
        }
    }
}
