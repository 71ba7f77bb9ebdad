//! ResNet as a family: image classification, ImageNet preprocessing, any input of at least
//! 32×32.

use zoo_data::Sample;

use burn::prelude::*;

use super::{ConfigError, Family, FamilyConfig, ModelOptions, ensure, ensure_positive};
use crate::resnet::{DilationRule, ResNet, ResNetConfig};
use crate::task::{
    Classification, Context, InputSize, LossOptions, Prediction, Preprocessing, Task, TaskError,
    classification,
};

impl ResNetConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// A zero width or class count, or a BasicBlock network (ResNet-18/34) dilated under
    /// torchvision's rule, which does not dilate BasicBlocks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ensure_positive("base_channels", &[self.base_channels])?;
        ensure_positive("in_channels", &[self.in_channels])?;
        if let Some(classes) = self.num_classes {
            ensure_positive("num_classes", &[classes])?;
        }
        ensure(
            self.depth.bottleneck()
                || self.dilation_rule == DilationRule::Uniform
                || !self.replace_stride_with_dilation.contains(&true),
            "replace_stride_with_dilation",
            || {
                format!(
                    "dilating ResNet-{} needs dilation_rule = Uniform (torchvision's BasicBlock \
                     does not support dilation), got {:?}",
                    self.depth, self.replace_stride_with_dilation
                )
            },
        )
    }
}

impl FamilyConfig for ResNetConfig {
    fn family_name(&self) -> &'static str {
        "ResNet"
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
        options.only(&["base_channels"])?;
        self.base_channels = options.base_channels.unwrap_or(self.base_channels);
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        ResNetConfig::validate(self)
    }
}

impl Family for ResNet {
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
