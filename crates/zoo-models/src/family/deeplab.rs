//! DeepLabV3 and DeepLabV3+ as families: semantic segmentation, ImageNet preprocessing;
//! DeepLabV3 takes any input of at least 32×32, DeepLabV3+ sides that are multiples of its
//! output stride (as smp checks).

use burn::prelude::*;
use zoo_data::Sample;

use super::{ConfigError, Family, FamilyConfig, ModelOptions, ensure, ensure_positive};
use crate::deeplab::{DeepLabV3, DeepLabV3Config, DeepLabV3Plus, DeepLabV3PlusConfig};
use crate::resnet::dilation_for_output_stride;
use crate::task::{
    Context, InputSize, LossOptions, Prediction, Preprocessing, Segmentation, Task, TaskError,
    segmentation,
};

/// ASPP rates: at least one, all positive.
fn check_rates(rates: &[usize]) -> Result<(), ConfigError> {
    ensure(!rates.is_empty(), "atrous_rates", || {
        "expected at least one rate, got []".into()
    })?;
    ensure_positive("atrous_rates", rates)
}

impl DeepLabV3Config {
    /// Checks every setting.
    ///
    /// # Errors
    /// An output stride other than 8, 16 or 32, no or a zero ASPP rate, a zero width or
    /// class count, or a dilated ResNet-18/34 under torchvision's rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ensure_positive("num_classes", &[self.num_classes])?;
        dilation_for_output_stride(self.output_stride).map_err(|_| ConfigError::Invalid {
            key: "output_stride".into(),
            message: format!("must be 8, 16 or 32, got {}", self.output_stride),
        })?;
        check_rates(&self.atrous_rates)?;
        ensure_positive("head_channels", &[self.head_channels])?;
        self.backbone()
            .validate()
            .map_err(|e| e.renamed("replace_stride_with_dilation", "dilation_rule"))
    }
}

impl FamilyConfig for DeepLabV3Config {
    fn family_name(&self) -> &'static str {
        "DeepLabV3"
    }

    fn task(&self) -> &'static dyn Task {
        &Segmentation
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn preprocessing(&self) -> Preprocessing {
        Preprocessing::imagenet(InputSize::at_least(32))
    }

    fn apply(&mut self, options: &ModelOptions) -> Result<(), ConfigError> {
        options.only(&[
            "base_channels",
            "head_channels",
            "output_stride",
            "atrous_rates",
            "aux_loss",
        ])?;
        self.base_channels = options.base_channels.unwrap_or(self.base_channels);
        self.head_channels = options.head_channels.unwrap_or(self.head_channels);
        self.output_stride = options.output_stride.unwrap_or(self.output_stride);
        if let Some(rates) = &options.atrous_rates {
            self.atrous_rates = rates.clone();
        }
        self.aux_head = options.aux_loss.unwrap_or(self.aux_head);
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        DeepLabV3Config::validate(self)
    }
}

impl Family for DeepLabV3 {
    fn loss(
        &self,
        batch: &[Sample],
        context: &Context,
        options: &LossOptions,
    ) -> Result<Tensor<1>, TaskError> {
        segmentation::loss(batch, context, options, |x| self.forward(x))
    }

    fn loss_count(&self, batch: &[Sample]) -> usize {
        segmentation::loss_count(batch)
    }

    fn predict(&self, batch: &[Sample], context: &Context) -> Result<Vec<Prediction>, TaskError> {
        segmentation::predict(batch, context, |x| self.forward(x).out)
    }
}

impl DeepLabV3PlusConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// An output stride other than 8 or 16, no or a zero ASPP rate, a dropout outside
    /// `[0, 1)`, or a zero width or class count.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ensure_positive("num_classes", &[self.num_classes])?;
        ensure(
            matches!(self.output_stride, 8 | 16),
            "output_stride",
            || format!("must be 8 or 16, got {}", self.output_stride),
        )?;
        check_rates(&self.atrous_rates)?;
        ensure_positive("decoder_channels", &[self.decoder_channels])?;
        ensure(
            (0.0..1.0).contains(&self.aspp_dropout),
            "aspp_dropout",
            || format!("must be in [0, 1), got {}", self.aspp_dropout),
        )?;
        ensure_positive("base_channels", &[self.base_channels])
    }
}

impl FamilyConfig for DeepLabV3PlusConfig {
    fn family_name(&self) -> &'static str {
        "DeepLabV3+"
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
            multiple_of: self.output_stride.max(1),
        })
    }

    fn apply(&mut self, options: &ModelOptions) -> Result<(), ConfigError> {
        options.only(&[
            "base_channels",
            "head_channels",
            "output_stride",
            "atrous_rates",
        ])?;
        self.base_channels = options.base_channels.unwrap_or(self.base_channels);
        self.decoder_channels = options.head_channels.unwrap_or(self.decoder_channels);
        self.output_stride = options.output_stride.unwrap_or(self.output_stride);
        if let Some(rates) = &options.atrous_rates {
            self.atrous_rates = rates.clone();
        }
        Ok(())
    }

    /// As the inherent `validate`, with the run file's name of the decoder width
    /// (`head_channels`).
    fn validate(&self) -> Result<(), ConfigError> {
        DeepLabV3PlusConfig::validate(self)
            .map_err(|e| e.renamed("decoder_channels", "head_channels"))
    }
}

impl Family for DeepLabV3Plus {
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
