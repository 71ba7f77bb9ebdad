//! Swin Transformer as a family: image classification, ImageNet preprocessing, any input of
//! at least 32×32 (windows are laid out for the run's image size).

use burn::prelude::*;
use zoo_data::Sample;

use super::{ConfigError, Family, FamilyConfig, ModelOptions, ensure, ensure_positive};
use crate::swin::{SwinTransformer, SwinTransformerConfig};
use crate::task::{
    Classification, Context, InputSize, LossOptions, Prediction, Preprocessing, Task, TaskError,
    classification,
};

impl SwinTransformerConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// `depths` and `num_heads` of different or zero lengths, a stage width
    /// (`embed_dim · 2^i`) its head count does not divide, a zero size, or a rate out of
    /// range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(classes) = self.num_classes {
            ensure_positive("num_classes", &[classes])?;
        }
        let stages = self.depths.len();
        ensure(
            stages > 0 && self.num_heads.len() == stages,
            "num_heads",
            || {
                format!(
                    "depths and num_heads must have the same, non-zero length (one entry per stage), got {} and {}",
                    stages,
                    self.num_heads.len()
                )
            },
        )?;
        ensure_positive("num_heads", &self.num_heads)?;
        ensure_positive("embed_dim", &[self.embed_dim])?;
        for (i, &heads) in self.num_heads.iter().enumerate() {
            let dim = self.embed_dim << i;
            ensure(dim.is_multiple_of(heads), "num_heads", || {
                format!(
                    "stage {i} is embed_dim · 2^{i} = {dim} wide, which its {heads} heads do not divide"
                )
            })?;
        }
        ensure_positive("window_size", &[self.window_size])?;
        ensure_positive("patch_size", &[self.patch_size])?;
        ensure_positive("in_channels", &[self.in_channels])?;
        ensure_positive("img_size", &self.img_size)?;
        ensure(
            (0.0..1.0).contains(&self.drop_path_rate),
            "drop_path_rate",
            || format!("must be in [0, 1), got {}", self.drop_path_rate),
        )?;
        ensure(
            self.mlp_ratio.is_finite() && self.embed_dim as f64 * self.mlp_ratio >= 1.0,
            "mlp_ratio",
            || {
                format!(
                    "embed_dim · mlp_ratio must be at least 1, got {} · {}",
                    self.embed_dim, self.mlp_ratio
                )
            },
        )
    }
}

impl FamilyConfig for SwinTransformerConfig {
    fn family_name(&self) -> &'static str {
        "Swin Transformer"
    }

    fn task(&self) -> &'static dyn Task {
        &Classification
    }

    fn num_classes(&self) -> usize {
        self.num_classes.unwrap_or(0)
    }

    fn preprocessing(&self) -> Preprocessing {
        Preprocessing::imagenet(InputSize::at_least(32))
    }

    fn apply(&mut self, options: &ModelOptions) -> Result<(), ConfigError> {
        options.only(&[
            "embed_dim",
            "depths",
            "num_heads",
            "window_size",
            "patch_size",
            "drop_path_rate",
        ])?;
        self.img_size = options.image_size;
        self.embed_dim = options.embed_dim.unwrap_or(self.embed_dim);
        if let Some(depths) = &options.depths {
            self.depths = depths.clone();
        }
        if let Some(heads) = &options.num_heads {
            self.num_heads = heads.clone();
        }
        self.window_size = options.window_size.unwrap_or(self.window_size);
        self.patch_size = options.patch_size.unwrap_or(self.patch_size);
        self.drop_path_rate = options.drop_path_rate.unwrap_or(self.drop_path_rate);
        Ok(())
    }

    /// As the inherent `validate`, with the run file's name of the window layout's size
    /// (`image_size`).
    fn validate(&self) -> Result<(), ConfigError> {
        SwinTransformerConfig::validate(self).map_err(|e| e.renamed("img_size", "image_size"))
    }
}

impl Family for SwinTransformer {
    fn loss(
        &self,
        batch: &[Sample],
        context: &Context,
        _options: &LossOptions,
    ) -> Result<Tensor<1>, TaskError> {
        classification::loss(batch, context, |x| self.forward(x))
    }

    fn predict(&self, batch: &[Sample], context: &Context) -> Result<Vec<Prediction>, TaskError> {
        classification::predict(batch, context, |x| self.forward(x))
    }
}
