//! Learned and fixed upsampling blocks of the seed document (its `TransposedConvUpsampling`,
//! `PixelShuffleUpsampling`, `BilinearUpsampling`, `LearnedUpsampling`).

use crate::layers::ZooForward;
use crate::weights::KeyMap;
use burn::nn::activation::{Activation, ActivationConfig};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::norm::{Normalization, NormalizationConfig};
use burn::nn::{BatchNormConfig, PixelShuffle, PixelShuffleConfig};
use burn::prelude::*;

use super::conv::{ConvNormAct, ConvNormActConfig};
use crate::ops::{ResizeMode, ResizeOptions, resize};

fn check_channels(config: &str, in_channels: usize, out_channels: usize, scale: usize) {
    assert!(
        in_channels > 0 && out_channels > 0 && scale > 0,
        "{config}: in_channels, out_channels and scale_factor must be positive, got {in_channels}, {out_channels}, {scale}"
    );
}

/// Bilinear resize by an integer factor, `align_corners = false` (as `F.interpolate` with
/// `scale_factor`).
fn upsample_bilinear(x: Tensor<4>, scale: usize) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    resize(
        x,
        [h * scale, w * scale],
        ResizeOptions::new(ResizeMode::Bilinear, false),
    )
}

/// Configuration of [`TransposedConvUp`].
#[derive(Config, Debug)]
pub struct TransposedConvUpConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Upsampling factor (the transposed convolution's stride).
    #[config(default = 2)]
    pub scale_factor: usize,
}

impl TransposedConvUpConfig {
    /// Builds the block. The kernel is `2 × scale_factor` with padding `scale_factor / 2`, so
    /// every output pixel receives the same number of kernel taps (no checkerboard overlap
    /// pattern) and the output is exactly `scale_factor` times the input.
    ///
    /// # Panics
    /// If a field is zero, or `scale_factor` is odd (the padding rule needs it even).
    pub fn init(&self, device: &Device) -> TransposedConvUp {
        let s = self.scale_factor;
        check_channels(
            "TransposedConvUpConfig",
            self.in_channels,
            self.out_channels,
            s,
        );
        assert!(
            s.is_multiple_of(2),
            "TransposedConvUpConfig: scale_factor must be even (kernel 2·s, padding s/2), got {s}"
        );
        TransposedConvUp {
            deconv: ConvTranspose2dConfig::new(
                [self.in_channels, self.out_channels],
                [2 * s, 2 * s],
            )
            .with_stride([s, s])
            .with_padding([s / 2, s / 2])
            .init(device),
            norm: NormalizationConfig::Batch(BatchNormConfig::new(self.out_channels)).init(device),
            act: ActivationConfig::Relu.init(device),
        }
    }
}

/// Transposed convolution → BatchNorm → ReLU (keys `deconv.*`, `bn.*` map to `deconv`,
/// `norm`).
#[derive(Module, Debug)]
pub struct TransposedConvUp {
    /// The transposed convolution.
    pub deconv: ConvTranspose2d,
    /// The normalisation.
    pub norm: Normalization,
    /// The activation.
    pub act: Activation,
}

impl TransposedConvUp {
    /// Key map of the seed's `TransposedConvUpsampling` (`deconv.*`, `bn.*` → `norm`).
    pub fn key_map(&self) -> KeyMap {
        KeyMap::new().prefix("bn", "norm")
    }

    /// # Shapes
    /// - input: `[batch, in_channels, h, w]`
    /// - output: `[batch, out_channels, s·h, s·w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.act
            .forward(self.norm.zoo_forward(self.deconv.forward(x)))
    }
}

/// Configuration of [`PixelShuffleUp`], [`BilinearUp`] and [`LearnedUp`].
#[derive(Config, Debug)]
pub struct UpsampleConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Integer upsampling factor.
    #[config(default = 2)]
    pub scale_factor: usize,
}

impl UpsampleConfig {
    /// Sub-pixel convolution: 3×3 conv to `out · s²` channels → BN → ReLU → pixel shuffle.
    pub fn init_pixel_shuffle(&self, device: &Device) -> PixelShuffleUp {
        let s = self.scale_factor;
        check_channels("UpsampleConfig", self.in_channels, self.out_channels, s);
        PixelShuffleUp {
            conv: ConvNormActConfig::new(self.in_channels, self.out_channels * s * s)
                .with_bias(Some(true))
                .init(device),
            shuffle: PixelShuffleConfig::new(s).init(),
        }
    }

    /// Bilinear upsampling then a 1×1 convolution (with bias).
    pub fn init_bilinear(&self, device: &Device) -> BilinearUp {
        check_channels(
            "UpsampleConfig",
            self.in_channels,
            self.out_channels,
            self.scale_factor,
        );
        BilinearUp {
            conv: Conv2dConfig::new([self.in_channels, self.out_channels], [1, 1]).init(device),
            scale_factor: self.scale_factor,
        }
    }

    /// Bilinear upsampling then a 3×3 conv (with bias) → BN → ReLU refinement.
    pub fn init_learned(&self, device: &Device) -> LearnedUp {
        check_channels(
            "UpsampleConfig",
            self.in_channels,
            self.out_channels,
            self.scale_factor,
        );
        LearnedUp {
            refine: ConvNormActConfig::new(self.in_channels, self.out_channels)
                .with_bias(Some(true))
                .init(device),
            scale_factor: self.scale_factor,
        }
    }
}

/// Sub-pixel convolution upsampling (Shi et al. 2016).
#[derive(Module, Debug)]
pub struct PixelShuffleUp {
    /// 3×3 conv → BN → ReLU to `out_channels · s²` channels.
    pub conv: ConvNormAct,
    /// Rearranges `[C·s², H, W]` into `[C, s·H, s·W]`.
    pub shuffle: PixelShuffle,
}

impl PixelShuffleUp {
    /// Key map of the seed's `PixelShuffleUpsampling` (`conv.*` → `conv.conv`, `bn.*` →
    /// `conv.norm`).
    pub fn key_map(&self) -> KeyMap {
        KeyMap::new()
            .prefix("conv", "conv.conv")
            .prefix("bn", "conv.norm")
    }

    /// # Shapes
    /// - input: `[batch, in_channels, h, w]`; output: `[batch, out_channels, s·h, s·w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.shuffle.forward(self.conv.forward(x))
    }
}

/// Bilinear upsampling followed by a 1×1 convolution (U-Net-style decoders).
#[derive(Module, Debug)]
pub struct BilinearUp {
    /// The 1×1 channel projection.
    pub conv: Conv2d,
    scale_factor: usize,
}

impl BilinearUp {
    /// Key map of the seed's `BilinearUpsampling` (same names: `conv.*`).
    pub fn key_map(&self) -> KeyMap {
        KeyMap::new()
    }

    /// # Shapes
    /// - input: `[batch, in_channels, h, w]`; output: `[batch, out_channels, s·h, s·w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv
            .zoo_forward(upsample_bilinear(x, self.scale_factor))
    }
}

/// Bilinear upsampling followed by a learned 3×3 conv–BN–ReLU refinement.
#[derive(Module, Debug)]
pub struct LearnedUp {
    /// The refinement block.
    pub refine: ConvNormAct,
    scale_factor: usize,
}

impl LearnedUp {
    /// Key map of the seed's `LearnedUpsampling` (`refine.{0,1}` → `refine.{conv,norm}`).
    pub fn key_map(&self) -> KeyMap {
        KeyMap::new()
            .prefix("refine.0", "refine.conv")
            .prefix("refine.1", "refine.norm")
    }

    /// # Shapes
    /// - input: `[batch, in_channels, h, w]`; output: `[batch, out_channels, s·h, s·w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.refine.forward(upsample_bilinear(x, self.scale_factor))
    }
}
