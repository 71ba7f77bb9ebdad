//! Deformable convolution modules: DCNv1 (Dai et al. 2017) and modulated DCNv2 (Zhu et al.
//! 2019), each with its offset (and mask) predictor; mirrors mmcv's `DeformConv2dPack` /
//! `ModulatedDeformConv2dPack` (key names `weight`, `bias`, `conv_offset.*`) on top of
//! torchvision's `deform_conv2d`.

use crate::layers::ZooForward;
use burn::module::{Content, DisplaySettings, ModuleDisplay, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use crate::ops::{DeformConv2dOptions, deform_conv2d};

/// Configuration of [`DeformConv2dPack`].
#[derive(Config, Debug)]
pub struct DeformConv2dPackConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel `[height, width]`.
    #[config(default = "[3, 3]")]
    pub kernel_size: [usize; 2],
    /// Stride.
    #[config(default = "[1, 1]")]
    pub stride: [usize; 2],
    /// Zero padding on each side.
    #[config(default = "[1, 1]")]
    pub padding: [usize; 2],
    /// Dilation.
    #[config(default = "[1, 1]")]
    pub dilation: [usize; 2],
    /// Weight groups.
    #[config(default = 1)]
    pub groups: usize,
    /// Offset groups: channel groups that share one set of offsets (and masks).
    #[config(default = 1)]
    pub offset_groups: usize,
    /// Learn a bias.
    #[config(default = true)]
    pub bias: bool,
    /// DCNv2: also predict a sigmoid mask per tap.
    #[config(default = false)]
    pub modulated: bool,
}

impl DeformConv2dPackConfig {
    /// Builds the layer. The offset (and mask) predictor starts at zero, as in the DCN papers,
    /// so the layer starts as a plain convolution (with a 0.5 mask when modulated) and learns
    /// its deformation.
    ///
    /// # Panics
    /// If a size is zero or the channels are not divisible by `groups` / `offset_groups`
    /// (the message names the field).
    pub fn init(&self, device: &Device) -> DeformConv2dPack {
        let [kh, kw] = self.kernel_size;
        for (field, ok) in [
            ("in_channels", self.in_channels > 0),
            ("out_channels", self.out_channels > 0),
            ("kernel_size", kh > 0 && kw > 0),
            ("stride", self.stride.iter().all(|&s| s > 0)),
            ("dilation", self.dilation.iter().all(|&d| d > 0)),
            ("groups", self.groups > 0),
            ("offset_groups", self.offset_groups > 0),
        ] {
            assert!(ok, "DeformConv2dPackConfig: {field} must be positive");
        }
        assert!(
            self.in_channels.is_multiple_of(self.groups)
                && self.out_channels.is_multiple_of(self.groups),
            "DeformConv2dPackConfig: in_channels ({}) and out_channels ({}) must be divisible by groups ({})",
            self.in_channels,
            self.out_channels,
            self.groups
        );
        assert!(
            self.in_channels.is_multiple_of(self.offset_groups),
            "DeformConv2dPackConfig: in_channels ({}) must be divisible by offset_groups ({})",
            self.in_channels,
            self.offset_groups
        );
        let fan_in = (self.in_channels / self.groups * kh * kw) as f64;
        let bound = 1.0 / fan_in.sqrt();
        let init = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        let per_tap = if self.modulated { 3 } else { 2 };
        let [ph, pw] = self.padding;
        let conv_offset = Conv2dConfig::new(
            [self.in_channels, per_tap * self.offset_groups * kh * kw],
            self.kernel_size,
        )
        .with_stride(self.stride)
        .with_dilation(self.dilation)
        .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
        .with_initializer(Initializer::Zeros)
        .init(device);
        DeformConv2dPack {
            weight: init.init(
                [self.out_channels, self.in_channels / self.groups, kh, kw],
                device,
            ),
            bias: self.bias.then(|| init.init([self.out_channels], device)),
            conv_offset,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            modulated: self.modulated,
        }
    }
}

/// A deformable convolution with its offset predictor (`conv_offset`, a plain convolution
/// with the same geometry); modulated (DCNv2) when configured, with the mask the sigmoid of
/// the predictor's last third of channels (mmcv's layout: `[Δy/Δx offsets…, mask…]`).
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct DeformConv2dPack {
    /// Kernel `[out_channels, in_channels / groups, kh, kw]`.
    pub weight: Param<Tensor<4>>,
    /// Bias `[out_channels]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// Offset (and mask) predictor.
    pub conv_offset: Conv2d,
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    modulated: bool,
}

impl ModuleDisplay for DeformConv2dPack {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        DisplaySettings::new()
            .with_new_line_after_attribute(false)
            .optional()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        let [ch_out, _, kh, kw] = self.weight.dims();
        // The offset predictor sees every input channel (it is never grouped).
        let ch_in = self.conv_offset.weight.dims()[1];
        content
            .add("ch_in", &ch_in)
            .add("ch_out", &ch_out)
            .add("kernel_size", &format!("{:?}", [kh, kw]))
            .add("stride", &format!("{:?}", self.stride))
            .add("padding", &format!("{:?}", self.padding))
            .add("dilation", &format!("{:?}", self.dilation))
            .add_debug_attribute("modulated", &self.modulated)
            .add("conv_offset", &self.conv_offset)
            .optional()
    }
}

impl DeformConv2dPack {
    /// Key map of mmcv's `DeformConv2dPack` / `ModulatedDeformConv2dPack` (same names:
    /// `weight`, `bias`, `conv_offset.*`).
    pub fn key_map(&self) -> crate::weights::KeyMap {
        crate::weights::KeyMap::new()
    }

    /// # Shapes
    /// - input: `[batch, in_channels, h, w]`
    /// - output: `[batch, out_channels, h_out, w_out]` (as a convolution of the same geometry)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let predicted = self.conv_offset.zoo_forward(x.clone());
        let [n, c, h, w] = predicted.dims();
        let (offset, mask) = if self.modulated {
            let split = c / 3 * 2;
            (
                predicted.clone().slice([0..n, 0..split, 0..h, 0..w]),
                Some(sigmoid(predicted.slice([0..n, split..c, 0..h, 0..w]))),
            )
        } else {
            (predicted, None)
        };
        deform_conv2d(
            x,
            offset,
            self.weight.val(),
            mask,
            self.bias.as_ref().map(Param::val),
            DeformConv2dOptions::new(self.stride, self.padding, self.dilation),
        )
    }
}
