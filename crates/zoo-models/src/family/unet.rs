//! U-Net as a family: semantic segmentation, ImageNet preprocessing, sides that are
//! multiples of 32 (as smp checks).

use burn::prelude::*;
use zoo_data::Sample;

use super::{ConfigError, Family, FamilyConfig, ModelOptions, ensure, ensure_positive};
use crate::task::{
    Context, InputSize, LossOptions, Prediction, Preprocessing, Segmentation, Task, TaskError,
    segmentation,
};
use crate::unet::{Unet, UnetConfig};

/// Decoder blocks of a U-Net on a ResNet: one per encoder stage (stem, C2–C5).
const LEVELS: usize = 5;

impl UnetConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// A zero width or class count, or `decoder_channels` without one width per encoder
    /// stage (5).
    pub fn validate(&self) -> Result<(), ConfigError> {
        ensure_positive("num_classes", &[self.num_classes])?;
        ensure_positive("base_channels", &[self.base_channels])?;
        ensure_positive("in_channels", &[self.in_channels])?;
        ensure(
            self.decoder_channels.len() == LEVELS,
            "decoder_channels",
            || {
                format!(
                    "expected {LEVELS} widths (one per encoder stage, deepest first), got {} ({:?})",
                    self.decoder_channels.len(),
                    self.decoder_channels
                )
            },
        )?;
        ensure_positive("decoder_channels", &self.decoder_channels)
    }
}

impl FamilyConfig for UnetConfig {
    fn family_name(&self) -> &'static str {
        "U-Net"
    }

    fn task(&self) -> &'static dyn Task {
        &Segmentation
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn preprocessing(&self) -> Preprocessing {
        Preprocessing::imagenet(InputSize {
            min: 32,
            multiple_of: 32,
        })
    }

    fn apply(&mut self, options: &ModelOptions) -> Result<(), ConfigError> {
        options.only(&["base_channels", "decoder_channels"])?;
        self.base_channels = options.base_channels.unwrap_or(self.base_channels);
        if let Some(channels) = &options.decoder_channels {
            self.decoder_channels = channels.clone();
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        UnetConfig::validate(self)
    }
}

impl Family for Unet {
    fn loss(
        &self,
        batch: &[Sample],
        context: &Context,
        options: &LossOptions,
    ) -> Result<Tensor<1>, TaskError> {
        segmentation::loss(batch, context, options, |x| self.forward(x).into())
    }

    fn loss_count(&self, batch: &[Sample]) -> usize {
        segmentation::loss_count(batch)
    }

    fn predict(&self, batch: &[Sample], context: &Context) -> Result<Vec<Prediction>, TaskError> {
        segmentation::predict(batch, context, |x| self.forward(x))
    }
}
