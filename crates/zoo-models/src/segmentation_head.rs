//! segmentation_models_pytorch's `SegmentationHead`: the last convolution of its U-Net and
//! DeepLabV3+ (and its other decoders), with optional bilinear upsampling.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use zoo_nn::layers::ZooForward;
use zoo_nn::ops::{ResizeMode, ResizeOptions, resize};

use crate::init;
use crate::weights::KeyMap;

/// Configuration of [`SegmentationHead`]: smp's `SegmentationHead(in_channels, out_channels,
/// kernel_size, upsampling)` (no activation).
#[derive(Config, Debug)]
pub struct SegmentationHeadConfig {
    /// Channels of the decoder output.
    pub in_channels: usize,
    /// Classes.
    pub num_classes: usize,
    /// Square kernel size, padding `kernel_size / 2` (U-Net: 3; DeepLabV3+: 1).
    #[config(default = 3)]
    pub kernel_size: usize,
    /// Bilinear upsampling factor after the convolution (`align_corners = true`, as
    /// `nn.UpsamplingBilinear2d`; DeepLabV3+: 4; 1 = none).
    #[config(default = 1)]
    pub upsampling: usize,
}

impl SegmentationHeadConfig {
    /// Builds the head on `device`, weights drawn as smp's `initialize_head` (Xavier
    /// uniform, zero bias).
    ///
    /// # Panics
    /// If a size is zero (naming the field).
    pub fn init(&self, device: &Device) -> SegmentationHead {
        for (field, value) in [
            ("in_channels", self.in_channels),
            ("num_classes", self.num_classes),
            ("kernel_size", self.kernel_size),
            ("upsampling", self.upsampling),
        ] {
            assert!(
                value > 0,
                "SegmentationHeadConfig: {field} must be positive, got 0"
            );
        }
        let p = self.kernel_size / 2;
        let mut conv = Conv2dConfig::new(
            [self.in_channels, self.num_classes],
            [self.kernel_size, self.kernel_size],
        )
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .init(device);
        init::smp_head(&mut conv);
        SegmentationHead {
            conv,
            upsampling: self.upsampling,
        }
    }
}

/// smp's `SegmentationHead`: a convolution to class logits, then bilinear upsampling
/// (`align_corners = true`) by `upsampling`. Loads smp's state dict through
/// [`SegmentationHead::key_map`].
#[derive(Module, Debug)]
pub struct SegmentationHead {
    /// The convolution to classes (smp `0`).
    pub conv: Conv2d,
    /// Upsampling factor (1 = none).
    pub upsampling: usize,
}

impl SegmentationHead {
    /// # Shapes
    /// - input: `[batch, in_channels, h, w]`
    /// - output: `[batch, num_classes, upsampling·h, upsampling·w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.conv.zoo_forward(x);
        if self.upsampling == 1 {
            return y;
        }
        let [_, _, h, w] = y.dims();
        let s = self.upsampling;
        resize(
            y,
            [h * s, w * s],
            ResizeOptions::new(ResizeMode::Bilinear, true),
        )
    }

    /// Key map of smp's `SegmentationHead` state dict (a `Sequential`): `0` → `conv`.
    pub fn key_map(&self) -> KeyMap {
        KeyMap::new().prefix("0", "conv")
    }
}
