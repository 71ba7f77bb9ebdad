//! Patch embedding (ViT, Dosovitskiy et al. 2021; Swin); mirrors timm's
//! `timm.layers.PatchEmbed` (keys `proj.*`, `norm.*`).

use crate::layers::ZooForward;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::prelude::*;

/// Configuration of [`PatchEmbed`].
#[derive(Config, Debug)]
pub struct PatchEmbedConfig {
    /// Image channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Token width.
    #[config(default = 768)]
    pub embed_dim: usize,
    /// Square patch side (the projection's kernel and stride).
    #[config(default = 16)]
    pub patch_size: usize,
    /// LayerNorm over the embedding (Swin uses one).
    #[config(default = false)]
    pub norm: bool,
    /// Zero-pad the right/bottom edge to a multiple of the patch size (timm's
    /// `dynamic_img_pad`); otherwise a size that does not divide is an error.
    #[config(default = false)]
    pub pad: bool,
}

impl PatchEmbedConfig {
    /// Builds the module.
    ///
    /// # Panics
    /// If a field is zero (naming it).
    pub fn init(&self, device: &Device) -> PatchEmbed {
        for (field, value) in [
            ("in_channels", self.in_channels),
            ("embed_dim", self.embed_dim),
            ("patch_size", self.patch_size),
        ] {
            assert!(
                value > 0,
                "PatchEmbedConfig: {field} must be positive, got 0"
            );
        }
        let p = self.patch_size;
        PatchEmbed {
            proj: Conv2dConfig::new([self.in_channels, self.embed_dim], [p, p])
                .with_stride([p, p])
                .init(device),
            norm: self
                .norm
                .then(|| LayerNormConfig::new(self.embed_dim).init(device)),
            patch_size: p,
            pad: self.pad,
        }
    }
}

/// Non-overlapping `p×p` patches projected to `embed_dim` by a strided convolution.
#[derive(Module, Debug)]
pub struct PatchEmbed {
    /// The patch projection (kernel = stride = patch size).
    pub proj: Conv2d,
    /// Optional LayerNorm over the embedding.
    pub norm: Option<LayerNorm>,
    patch_size: usize,
    pad: bool,
}

impl PatchEmbed {
    /// Key map of timm's `PatchEmbed` (same names: `proj`, `norm`).
    pub fn key_map(&self) -> crate::weights::KeyMap {
        crate::weights::KeyMap::new()
    }

    /// Channels-last patch grid (Swin's layout).
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, h, w]`
    /// - output: `[batch, ⌈h/p⌉, ⌈w/p⌉, embed_dim]` (exact division required unless `pad`)
    ///
    /// # Panics
    /// If `h` or `w` is not a multiple of the patch size and `pad` is off.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let p = self.patch_size;
        let x = if h % p == 0 && w % p == 0 {
            x
        } else {
            assert!(
                self.pad,
                "PatchEmbed: input size {h}×{w} must be a multiple of patch_size {p} (or enable `pad`)"
            );
            let (hp, wp) = (h.div_ceil(p) * p, w.div_ceil(p) * p);
            Tensor::zeros([b, c, hp, wp], &x.device()).slice_assign([0..b, 0..c, 0..h, 0..w], x)
        };
        let x = self.proj.zoo_forward(x).permute([0, 2, 3, 1]);
        match &self.norm {
            Some(norm) => norm.forward(x),
            None => x,
        }
    }

    /// Token sequence (ViT's layout), patches in row-major order.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, h, w]`
    /// - output: `[batch, ⌈h/p⌉·⌈w/p⌉, embed_dim]`
    pub fn forward_tokens(&self, x: Tensor<4>) -> Tensor<3> {
        let grid = self.forward(x);
        let [b, gh, gw, e] = grid.dims();
        grid.reshape([b, gh * gw, e])
    }
}
