//! Semantic segmentation: a class per pixel (DeepLabV3, DeepLabV3+, U-Net). Targets are the
//! samples' class masks (255 ignored), the loss is per-pixel cross-entropy (plus a weighted
//! auxiliary head), the figures come from a confusion matrix (pixel accuracy, IoU, mIoU).

use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::log_softmax;
use zoo_data::{Annotation, Sample};
use zoo_eval::{ConfusionMatrix, EvalReport};

use super::{Context, Evaluator, LossOptions, Overlay, Prediction, Task, TaskError};
use crate::deeplab::SegmentationOutput;

/// Class-mask value that the loss and the metrics skip (VOC borders, padding, crowds).
pub const IGNORE: u8 = 255;

/// The semantic-segmentation task.
#[derive(Debug, Clone, Copy, Default)]
pub struct Segmentation;

/// The class mask of sample `index`, checked against the model's classes.
fn class_mask(index: usize, sample: &Sample, classes: usize) -> Result<&[u8], TaskError> {
    let [h, w] = sample.size;
    if sample.class_mask.len() != h * w {
        return Err(TaskError::sample(
            index,
            format!("no class mask of {h}×{w} pixels (the task needs class masks)"),
        ));
    }
    if let Some(&c) = sample
        .class_mask
        .iter()
        .find(|&&c| c != IGNORE && usize::from(c) >= classes)
    {
        return Err(TaskError::sample(
            index,
            format!("class {c} in its mask but the model has {classes} classes"),
        ));
    }
    Ok(&sample.class_mask)
}

impl From<Tensor<4>> for SegmentationOutput {
    /// Logits of a model without an auxiliary head.
    fn from(out: Tensor<4>) -> Self {
        Self { out, aux: None }
    }
}

/// Cross-entropy of `[N, C]` logits against `[N]` classes, skipping targets equal to
/// [`IGNORE`] (mean over the others; 0 when every target is ignored).
pub fn masked_cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let valid = targets.clone().not_equal_elem(i64::from(IGNORE));
    let safe = targets.mask_fill(valid.clone().bool_not(), 0);
    let picked = log_softmax(logits, 1)
        .gather(1, safe.unsqueeze_dim(1))
        .squeeze_dim::<1>(1);
    let weight = valid.float();
    let count = weight.clone().sum().clamp_min(1.0);
    picked.mul(weight).sum().neg().div(count)
}

/// The pixels of `batch` that [`loss`] averages over: those of its class masks that are not
/// [`IGNORE`] (masks of the wrong size are [`loss`]'s to refuse).
pub(crate) fn loss_count(batch: &[Sample]) -> usize {
    batch
        .iter()
        .map(|s| s.class_mask.iter().filter(|&&c| c != IGNORE).count())
        .sum()
}

/// `[B, C, H, W]` → `[B·H·W, C]`.
fn per_pixel(x: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    x.permute([0, 2, 3, 1]).reshape([b * h * w, c])
}

/// The loss of a segmentation model on a batch: masked cross-entropy of the main logits
/// plus `aux_weight` times that of the auxiliary logits.
///
/// # Errors
/// A sample without a class mask or with a class the model does not have, or samples of
/// different sizes.
pub(crate) fn loss(
    batch: &[Sample],
    context: &Context,
    options: &LossOptions,
    forward: impl FnOnce(Tensor<4>) -> SegmentationOutput,
) -> Result<Tensor<1>, TaskError> {
    let mut targets = Vec::new();
    for (i, s) in batch.iter().enumerate() {
        targets.extend(
            class_mask(i, s, context.num_classes)?
                .iter()
                .map(|&c| i64::from(c)),
        );
    }
    let n = targets.len();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [n]), context.device);
    let output = forward(context.preprocessing.images(batch, context.device)?);
    let main = masked_cross_entropy(per_pixel(output.out), targets.clone());
    Ok(match output.aux {
        Some(aux) => {
            main + masked_cross_entropy(per_pixel(aux), targets).mul_scalar(options.aux_weight)
        }
        None => main,
    })
}

/// The class maps of a batch.
///
/// # Errors
/// Samples of different sizes.
pub(crate) fn predict(
    batch: &[Sample],
    context: &Context,
    forward: impl FnOnce(Tensor<4>) -> Tensor<4>,
) -> Result<Vec<Prediction>, TaskError> {
    let logits = forward(context.preprocessing.images(batch, context.device)?);
    let [_, _, h, w] = logits.dims();
    let classes: Vec<u8> = logits
        .argmax(1)
        .into_data()
        .iter::<i64>()
        .map(|c| c.clamp(0, 254) as u8)
        .collect();
    Ok(classes
        .chunks_exact(h * w)
        .map(|c| Prediction::ClassMap {
            size: [h, w],
            classes: c.to_vec(),
        })
        .collect())
}

impl Task for Segmentation {
    fn name(&self) -> &'static str {
        "semantic segmentation"
    }

    fn annotation(&self) -> Annotation {
        Annotation::ClassMask
    }

    fn default_num_classes(&self) -> usize {
        21
    }

    fn evaluator(&self, class_names: Vec<String>) -> Box<dyn Evaluator> {
        Box::new(SegmentationEvaluator {
            matrix: ConfusionMatrix::new(class_names.len()),
            class_names,
            samples: 0,
        })
    }

    fn target_overlay(&self, sample: &Sample) -> Overlay {
        Overlay {
            class_mask: Some(sample.class_mask.clone()),
            boxes: Vec::new(),
        }
    }
}

/// Pixel accuracy, per-class IoU and mIoU of a confusion matrix.
struct SegmentationEvaluator {
    matrix: ConfusionMatrix,
    class_names: Vec<String>,
    samples: usize,
}

impl Evaluator for SegmentationEvaluator {
    fn add(&mut self, samples: &[Sample], predictions: &[Prediction]) -> Result<(), TaskError> {
        for (i, (s, p)) in samples.iter().zip(predictions).enumerate() {
            let target = class_mask(i, s, self.class_names.len())?;
            let Prediction::ClassMap { classes, .. } = p else {
                return Err(TaskError::Mismatch {
                    task: "semantic segmentation",
                    prediction: p.kind(),
                });
            };
            if classes.len() != target.len() {
                return Err(TaskError::sample(
                    i,
                    format!(
                        "its class map has {} pixels, its mask {}",
                        classes.len(),
                        target.len()
                    ),
                ));
            }
            let wide = |v: &[u8]| v.iter().map(|&c| i64::from(c)).collect::<Vec<_>>();
            self.matrix.update(&wide(classes), &wide(target));
            self.samples += 1;
        }
        Ok(())
    }

    fn report(&self) -> EvalReport {
        EvalReport {
            accuracy: self.matrix.accuracy(),
            miou: Some(self.matrix.mean_iou()),
            class_names: self.class_names.clone(),
            per_class: self.matrix.iou(),
            samples: self.samples,
            box_ap: None,
            mask_ap: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::loss::CrossEntropyLossConfig;

    /// A batch split in two, each part's loss weighted by its share of [`loss_count`], gives
    /// the loss of the whole batch (what data-parallel training sums).
    #[test]
    fn parts_weighted_by_their_loss_count_sum_to_the_whole_batch_loss() {
        let device = Device::flex();
        let masks: [&[u8]; 3] = [&[0, 255, 1, 2], &[255, 255, 255, 1], &[2, 2, 0, 255]];
        let samples: Vec<Sample> = masks
            .iter()
            .map(|m| Sample {
                class_mask: m.to_vec(),
                ..Sample::unannotated(vec![0.0; 12], [2, 2])
            })
            .collect();
        assert_eq!(loss_count(&samples), 7);
        let logits: Vec<f32> = (0..36).map(|i| ((i * 7) % 11) as f32 / 5.0 - 1.0).collect();
        let loss = |parts: &[Sample], rows: std::ops::Range<usize>| {
            let targets: Vec<i64> = parts
                .iter()
                .flat_map(|s| s.class_mask.iter().map(|&c| i64::from(c)))
                .collect();
            let n = targets.len();
            masked_cross_entropy(
                Tensor::<2>::from_data(
                    TensorData::new(logits[rows.start * 3..rows.end * 3].to_vec(), [n, 3]),
                    &device,
                ),
                Tensor::from_data(TensorData::new(targets, [n]), &device),
            )
            .into_scalar::<f64>()
        };
        let whole = loss(&samples, 0..12);
        let (a, b) = samples.split_at(1);
        let weighted = loss(a, 0..4) * loss_count(a) as f64 / 7.0
            + loss(b, 4..12) * loss_count(b) as f64 / 7.0;
        assert!((whole - weighted).abs() < 1e-6, "{whole} vs {weighted}");
    }

    #[test]
    fn masked_cross_entropy_skips_ignored_targets() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_floats([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]], &device);
        let all = masked_cross_entropy(
            logits.clone().slice([0..2, 0..2]),
            Tensor::from_ints([0, 1], &device),
        );
        let skipped = masked_cross_entropy(logits, Tensor::from_ints([0, 1, 255], &device));
        let reference = CrossEntropyLossConfig::new().init(&device).forward(
            Tensor::<2>::from_floats([[2.0, 0.0], [0.0, 1.0]], &device),
            Tensor::from_ints([0, 1], &device),
        );
        let (a, b, r) = (
            all.into_scalar::<f32>(),
            skipped.into_scalar::<f32>(),
            reference.into_scalar::<f32>(),
        );
        assert!((a - r).abs() < 1e-6 && (b - r).abs() < 1e-6, "{a} {b} {r}");
    }
}
