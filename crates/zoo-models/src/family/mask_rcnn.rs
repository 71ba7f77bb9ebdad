//! Mask R-CNN as a family: instance segmentation; images go in as they are (its transform
//! normalises and resizes them), of any size of at least 32×32.

use burn::prelude::*;
use zoo_data::Sample;

use super::{ConfigError, Family, FamilyConfig, Loss, ModelOptions, ensure, ensure_positive};
use crate::detection::mask_rcnn::{MaskRcnn, MaskRcnnConfig};
use crate::task::{
    Context, InputSize, InstanceSegmentation, LossOptions, Prediction, Preprocessing, Task,
    TaskError, instance,
};

/// A sampling fraction in `(0, 1]`.
fn fraction(key: &str, value: f32) -> Result<(), ConfigError> {
    ensure(value > 0.0 && value <= 1.0, key, || {
        format!("must be in (0, 1], got {value}")
    })
}

impl MaskRcnnConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// Fewer than 2 classes, `trainable_backbone_layers` above 5, a zero width, size or
    /// sample count, a sampling fraction outside `(0, 1]`, or anchors that are not five
    /// levels with as many anchors per location each.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ensure(self.num_classes >= 2, "num_classes", || {
            format!(
                "counts the background and must be at least 2, got {}",
                self.num_classes
            )
        })?;
        ensure(
            self.trainable_backbone_layers <= 5,
            "trainable_backbone_layers",
            || format!("must be in 0..=5, got {}", self.trainable_backbone_layers),
        )?;
        ensure_positive("base_channels", &[self.base_channels])?;
        ensure_positive("fpn_channels", &[self.fpn_channels])?;
        ensure_positive("representation_size", &[self.representation_size])?;
        ensure(!self.mask_layers.is_empty(), "mask_layers", || {
            "expected at least one layer, got []".into()
        })?;
        ensure_positive("mask_layers", &self.mask_layers)?;
        ensure_positive("mask_predictor_channels", &[self.mask_predictor_channels])?;
        ensure_positive("rpn.batch_size_per_image", &[self.rpn.batch_size_per_image])?;
        ensure_positive(
            "roi_heads.batch_size_per_image",
            &[self.roi_heads.batch_size_per_image],
        )?;
        fraction("rpn.positive_fraction", self.rpn.positive_fraction)?;
        fraction(
            "roi_heads.positive_fraction",
            self.roi_heads.positive_fraction,
        )?;
        let t = &self.transform;
        ensure(
            t.min_size > 0 && t.min_size <= t.max_size,
            "transform.min_size",
            || {
                format!(
                    "expected 0 < min_size <= max_size, got {} and {}",
                    t.min_size, t.max_size
                )
            },
        )?;
        ensure_positive("transform.size_divisible", &[t.size_divisible])?;
        let per_location = self.anchors.init().num_anchors_per_location();
        ensure(
            per_location.len() == 5 && per_location.iter().all(|&a| a > 0 && a == per_location[0]),
            "anchors",
            || {
                format!(
                    "expected 5 levels (P2–P6) with the same number of anchors per location, got {per_location:?}"
                )
            },
        )
    }
}

impl FamilyConfig for MaskRcnnConfig {
    fn family_name(&self) -> &'static str {
        "Mask R-CNN"
    }

    fn task(&self) -> &'static dyn Task {
        &InstanceSegmentation
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn preprocessing(&self) -> Preprocessing {
        Preprocessing::unnormalized(InputSize::at_least(32))
    }

    /// Also sets what training from scratch needs, as torchvision builds the model without
    /// pretrained weights: trainable BatchNorm and every backbone stage trained; and sizes
    /// the transform to the run's images so that they are not rescaled.
    fn apply(&mut self, options: &ModelOptions) -> Result<(), ConfigError> {
        options.only(&[
            "base_channels",
            "head_channels",
            "rpn_batch_size_per_image",
            "box_batch_size_per_image",
            "frozen_batch_norm",
            "trainable_backbone_layers",
            "backbone_norm_eps",
            "transform_size",
        ])?;
        self.base_channels = options.base_channels.unwrap_or(self.base_channels);
        if let Some(h) = options.head_channels {
            self.fpn_channels = h;
            self.mask_layers = vec![h; 4];
            self.mask_predictor_channels = h;
            self.representation_size = 4 * h;
        }
        let frozen = options.frozen_batch_norm.unwrap_or(false);
        self.frozen_batch_norm = frozen;
        self.trainable_backbone_layers =
            options
                .trainable_backbone_layers
                .unwrap_or(if frozen { 3 } else { 5 });
        if let Some(eps) = options.backbone_norm_eps {
            self.backbone_norm_eps = eps;
        }
        if let Some(n) = options.rpn_batch_size_per_image {
            self.rpn.batch_size_per_image = n;
        }
        if let Some(n) = options.box_batch_size_per_image {
            self.roi_heads.batch_size_per_image = n;
        }
        let [h, w] = options.image_size;
        let [min, max] = options.transform_size.unwrap_or([h.min(w), h.max(w)]);
        ensure(0 < min && min <= max, "transform_size", || {
            format!("[min_size, max_size] with 0 < min_size <= max_size, got [{min}, {max}]")
        })?;
        self.transform.min_size = min;
        self.transform.max_size = max;
        ensure(
            self.trainable_backbone_layers <= 5,
            "trainable_backbone_layers",
            || {
                format!(
                    "at most 5 (the stem and four stages), got {}",
                    self.trainable_backbone_layers
                )
            },
        )?;
        ensure(
            self.backbone_norm_eps >= 0.0 && self.backbone_norm_eps.is_finite(),
            "backbone_norm_eps",
            || format!("a number ≥ 0, got {}", self.backbone_norm_eps),
        )?;
        Ok(())
    }

    /// As the inherent `validate`, with the run file's names: `head_channels` for the head
    /// widths, `rpn_batch_size_per_image`, `box_batch_size_per_image`, and `image_size` for
    /// the transform's sizes.
    fn validate(&self) -> Result<(), ConfigError> {
        MaskRcnnConfig::validate(self).map_err(|e| {
            [
                ("fpn_channels", "head_channels"),
                ("representation_size", "head_channels"),
                ("mask_layers", "head_channels"),
                ("mask_predictor_channels", "head_channels"),
                ("rpn.batch_size_per_image", "rpn_batch_size_per_image"),
                ("roi_heads.batch_size_per_image", "box_batch_size_per_image"),
                ("transform.min_size", "image_size"),
            ]
            .into_iter()
            .fold(e, |e, (from, to)| e.renamed(from, to))
        })
    }
}

impl Family for MaskRcnn {
    fn loss(
        &self,
        batch: &[Sample],
        context: &Context,
        options: &LossOptions,
    ) -> Result<Tensor<1>, TaskError> {
        instance::loss(self, batch, context, options).map(|l| l.total)
    }

    fn loss_terms(
        &self,
        batch: &[Sample],
        context: &Context,
        options: &LossOptions,
    ) -> Result<Loss, TaskError> {
        instance::loss(self, batch, context, options)
    }

    fn predict(&self, batch: &[Sample], context: &Context) -> Result<Vec<Prediction>, TaskError> {
        Ok(instance::predict(self, batch, context))
    }
}
