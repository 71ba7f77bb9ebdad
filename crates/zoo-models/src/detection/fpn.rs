//! Feature Pyramid Network (Lin et al. 2017) as torchvision's `FeaturePyramidNetwork` with
//! `LastLevelMaxPool`, and the ResNet + FPN backbone of its detection models.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::prelude::*;
use zoo_nn::layers::ZooForward;
use zoo_nn::ops::{ResizeMode, ResizeOptions, resize};

use crate::resnet::ResNet;
use crate::weights::KeyMap;

/// Configuration of [`Fpn`].
#[derive(Config, Debug)]
pub struct FpnConfig {
    /// Channels of each input level, finest first (ResNet-50: `[256, 512, 1024, 2048]`).
    pub in_channels: Vec<usize>,
    /// Channels of every output level (torchvision: 256).
    pub out_channels: usize,
    /// Append a `pool` level: max-pool (kernel 1, stride 2) of the coarsest output, as
    /// torchvision's `LastLevelMaxPool`.
    #[config(default = true)]
    pub last_level_max_pool: bool,
}

impl FpnConfig {
    /// Builds the network on `device`; convolutions are initialised as torchvision's
    /// (Kaiming-uniform with `a = 1`, zero bias).
    ///
    /// # Panics
    /// If `in_channels` is empty or a channel count is zero.
    pub fn init(&self, device: &Device) -> Fpn {
        assert!(
            !self.in_channels.is_empty() && self.out_channels > 0 && !self.in_channels.contains(&0),
            "FpnConfig: in_channels must be non-empty and every channel count positive, got in_channels {:?}, out_channels {}",
            self.in_channels,
            self.out_channels
        );
        let conv = |cin: usize, k: usize| {
            let p = k / 2;
            Conv2dConfig::new([cin, self.out_channels], [k, k])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_initializer(Initializer::KaimingUniform {
                    gain: 1.0,
                    fan_out_only: false,
                })
                .init(device)
        };
        let zero_bias = |mut c: Conv2d| {
            c.bias = Some(Param::from_tensor(Tensor::zeros(
                [self.out_channels],
                device,
            )));
            c
        };
        Fpn {
            inner_blocks: self
                .in_channels
                .iter()
                .map(|&c| zero_bias(conv(c, 1)))
                .collect(),
            layer_blocks: self
                .in_channels
                .iter()
                .map(|_| zero_bias(conv(self.out_channels, 3)))
                .collect(),
            last_level_max_pool: self.last_level_max_pool,
        }
    }
}

/// Feature Pyramid Network: a 1×1 lateral convolution per level, top-down nearest
/// upsampling and sum, a 3×3 output convolution per level, and optionally a pooled extra
/// level.
#[derive(Module, Debug)]
pub struct Fpn {
    /// Lateral 1×1 convolutions (torchvision key `inner_blocks.{i}.0`).
    pub inner_blocks: Vec<Conv2d>,
    /// Output 3×3 convolutions (torchvision key `layer_blocks.{i}.0`).
    pub layer_blocks: Vec<Conv2d>,
    /// Whether the `pool` level is appended.
    pub last_level_max_pool: bool,
}

impl Fpn {
    /// # Shapes
    /// - `features`: one `[N, in_channels[i], H_i, W_i]` per level, finest first
    /// - returns one `[N, out_channels, H_i, W_i]` per level, then (with
    ///   `last_level_max_pool`) `[N, out_channels, ⌈H_last / 2⌉, ⌈W_last / 2⌉]`
    ///
    /// # Panics
    /// If the number of levels or their channels differ from the configuration.
    pub fn forward(&self, features: Vec<Tensor<4>>) -> Vec<Tensor<4>> {
        assert!(
            features.len() == self.inner_blocks.len(),
            "Fpn::forward: features must hold {} levels, got {}",
            self.inner_blocks.len(),
            features.len()
        );
        let levels = features.len();
        let mut results = Vec::with_capacity(levels + 1);
        let mut last_inner: Option<Tensor<4>> = None;
        for (i, x) in features.into_iter().enumerate().rev() {
            let lateral = self.inner_blocks[i].zoo_forward(x);
            let inner = match last_inner {
                None => lateral,
                Some(top) => {
                    let [_, _, h, w] = lateral.dims();
                    let up = resize(top, [h, w], ResizeOptions::new(ResizeMode::Nearest, false));
                    lateral + up
                }
            };
            results.push(self.layer_blocks[i].zoo_forward(inner.clone()));
            last_inner = Some(inner);
        }
        results.reverse();
        if self.last_level_max_pool {
            let coarsest = results[levels - 1].clone();
            let [n, c, h, w] = coarsest.dims();
            let pooled = coarsest
                .reshape([n * c, h, w])
                .slice(s![.., 0..h;2, 0..w;2]);
            let [_, ph, pw] = pooled.dims();
            results.push(pooled.reshape([n, c, ph, pw]));
        }
        results
    }

    /// torchvision's key names: `inner_blocks.{i}.0.*` and `layer_blocks.{i}.0.*`
    /// (its `Conv2dNormActivation` wrappers).
    pub fn key_map() -> KeyMap {
        KeyMap::new().rename(
            r"(inner_blocks|layer_blocks)\.(\d+)\.0\.",
            "$1.$2.",
            r"(inner_blocks|layer_blocks)\.(\d+)\.",
            "$1.$2.0.",
        )
    }
}

/// A ResNet body (C2–C5) under an [`Fpn`]; torchvision's `BackboneWithFPN` (keys `body.*`,
/// `fpn.*`).
#[derive(Module, Debug)]
pub struct BackboneWithFpn {
    /// The ResNet, built without classifier.
    pub body: ResNet,
    /// The pyramid over C2–C5.
    pub fpn: Fpn,
}

impl BackboneWithFpn {
    /// # Shapes
    /// - `images`: `[N, 3, H, W]`
    /// - returns the [`Fpn::forward`] levels over C2–C5 (strides 4, 8, 16, 32, then 64)
    pub fn forward(&self, images: Tensor<4>) -> Vec<Tensor<4>> {
        let f = self.body.features(images);
        self.fpn.forward(vec![f.c2, f.c3, f.c4, f.c5])
    }

    /// torchvision's key names of the body and the pyramid.
    pub fn key_map(&self) -> KeyMap {
        self.body.key_map().extend(Fpn::key_map())
    }
}
