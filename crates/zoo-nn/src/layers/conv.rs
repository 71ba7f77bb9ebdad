//! The one convolution–normalisation–activation block every model uses, and the dilated
//! variant.

use crate::layers::{ZooForward, conv_bn};
use burn::nn::activation::{Activation, ActivationConfig};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::norm::{Normalization, NormalizationConfig};
use burn::nn::{BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;

use crate::weights::KeyMap;

/// Conv → norm → activation (torchvision's `Conv2dNormActivation`; smp's `Conv2dReLU`).
///
/// Padding defaults to `dilation · (kernel − 1) / 2` ("same" for odd kernels at stride 1); the
/// convolution has no bias when a normalisation follows, as upstream.
#[derive(Config, Debug)]
pub struct ConvNormActConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Square kernel size.
    #[config(default = 3)]
    pub kernel_size: usize,
    /// Stride.
    #[config(default = 1)]
    pub stride: usize,
    /// Dilation (atrous rate).
    #[config(default = 1)]
    pub dilation: usize,
    /// Convolution groups (`in_channels` for a depthwise convolution).
    #[config(default = 1)]
    pub groups: usize,
    /// Padding; `None` = `dilation · (kernel_size − 1) / 2`.
    #[config(default = "None")]
    pub padding: Option<usize>,
    /// Normalisation after the convolution (its feature count is set from `out_channels`).
    #[config(default = "NormalizationConfig::Batch(BatchNormConfig::new(0))")]
    pub norm: NormalizationConfig,
    /// Activation after the normalisation.
    #[config(default = "ActivationConfig::Relu")]
    pub activation: ActivationConfig,
    /// Give the convolution a bias; `None` = only when `norm` is `Identity`.
    #[config(default = "None")]
    pub bias: Option<bool>,
    /// Depthwise-separable convolution (smp's `SeparableConv2d`): a depthwise `kernel_size`
    /// convolution (`groups = in_channels`, no bias) then a pointwise 1×1 convolution to
    /// `out_channels` (with the bias, if any). Requires `groups = 1`.
    #[config(default = false)]
    pub separable: bool,
}

impl ConvNormActConfig {
    /// The dilated (atrous) block of DeepLab and the seed's `DilatedConvBlock`: 3×3 conv with
    /// `dilation`, padding `dilation` (resolution kept at stride 1), no bias, BN, ReLU.
    pub fn dilated(in_channels: usize, out_channels: usize, dilation: usize) -> Self {
        Self::new(in_channels, out_channels).with_dilation(dilation)
    }

    /// Builds the block on `device`.
    ///
    /// # Panics
    /// If a size is zero, the channels are not divisible by `groups`, or `separable` is set
    /// with `groups ≠ 1` (naming the field).
    pub fn init(&self, device: &Device) -> ConvNormAct {
        for (field, value) in [
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
            ("kernel_size", self.kernel_size),
            ("stride", self.stride),
            ("dilation", self.dilation),
            ("groups", self.groups),
        ] {
            assert!(
                value > 0,
                "ConvNormActConfig: {field} must be positive, got 0"
            );
        }
        assert!(
            self.in_channels.is_multiple_of(self.groups)
                && self.out_channels.is_multiple_of(self.groups),
            "ConvNormActConfig: in_channels ({}) and out_channels ({}) must be divisible by groups ({})",
            self.in_channels,
            self.out_channels,
            self.groups
        );
        assert!(
            !self.separable || self.groups == 1,
            "ConvNormActConfig: separable requires groups = 1 (the depthwise stage sets its own), got groups {}",
            self.groups
        );
        let padding = self
            .padding
            .unwrap_or(self.dilation * (self.kernel_size - 1) / 2);
        let bias = self
            .bias
            .unwrap_or(matches!(self.norm, NormalizationConfig::Identity));
        let (conv_out, groups) = match self.separable {
            true => (self.in_channels, self.in_channels),
            false => (self.out_channels, self.groups),
        };
        let conv = Conv2dConfig::new(
            [self.in_channels, conv_out],
            [self.kernel_size, self.kernel_size],
        )
        .with_stride([self.stride, self.stride])
        .with_dilation([self.dilation, self.dilation])
        .with_groups(groups)
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_bias(bias && !self.separable)
        .init(device);
        let pointwise = self.separable.then(|| {
            Conv2dConfig::new([self.in_channels, self.out_channels], [1, 1])
                .with_bias(bias)
                .init(device)
        });
        ConvNormAct {
            conv,
            pointwise,
            norm: self
                .norm
                .clone()
                .with_num_features(self.out_channels)
                .init(device),
            act: self.activation.init(device),
        }
    }
}

/// The seed's `DilatedConvBlock` (3×3 dilated conv, BN, ReLU): a [`ConvNormAct`] built by
/// [`ConvNormActConfig::dilated`].
pub type DilatedConvBlock = ConvNormAct;

/// Conv → norm → activation. Field names match torchvision's `Conv2dNormActivation`
/// sequential indices through the weight maps (`0` conv, `1` norm); a separable block maps
/// smp's `0.0` (depthwise) to `conv` and `0.1` (pointwise) to `pointwise`.
#[derive(Module, Debug)]
pub struct ConvNormAct {
    /// The convolution (the depthwise stage when separable).
    pub conv: Conv2d,
    /// The pointwise 1×1 stage of a separable block.
    pub pointwise: Option<Conv2d>,
    /// The normalisation.
    pub norm: Normalization,
    /// The activation.
    pub act: Activation,
}

impl ConvNormAct {
    /// Key map of torchvision's `Conv2dNormActivation` (`0` conv, `1` norm) or, for a
    /// separable block, smp's `SeparableConv2d` + BN (`0.0` depthwise, `0.1` pointwise, `1`
    /// norm).
    pub fn key_map(&self) -> KeyMap {
        let map = match self.pointwise {
            Some(_) => KeyMap::new()
                .prefix("0.0", "conv")
                .prefix("0.1", "pointwise"),
            None => KeyMap::new().prefix("0", "conv"),
        };
        map.prefix("1", "norm")
    }

    /// # Shapes
    /// - input: `[batch, in_channels, h, w]`
    /// - output: `[batch, out_channels, h', w']`, `h' = (h + 2p − d(k − 1) − 1) / s + 1`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let (x, last) = match &self.pointwise {
            Some(pointwise) => (self.conv.zoo_forward(x), pointwise),
            None => (x, &self.conv),
        };
        match (&self.norm, &self.act) {
            // The common block in one call (one pass at inference on flex).
            (Normalization::Batch(bn), Activation::Relu(_)) => conv_bn(last, bn, x, None, true),
            (norm, act) => act.forward(norm.zoo_forward(last.zoo_forward(x))),
        }
    }
}
