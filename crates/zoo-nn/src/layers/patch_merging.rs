//! Patch merging (Swin Transformer downsampling, Liu et al. 2021); mirrors timm's
//! `swin_transformer.PatchMerging` (keys `norm.*`, `reduction.weight`).

use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;

/// Configuration of [`PatchMerging`].
#[derive(Config, Debug)]
pub struct PatchMergingConfig {
    /// Input channels `C`.
    pub dim: usize,
    /// Output channels; `None` = `2·C`.
    #[config(default = "None")]
    pub out_dim: Option<usize>,
}

impl PatchMergingConfig {
    /// Builds the module.
    ///
    /// # Panics
    /// If `dim` or `out_dim` is zero.
    pub fn init(&self, device: &Device) -> PatchMerging {
        let out = self.out_dim.unwrap_or(2 * self.dim);
        assert!(
            self.dim > 0 && out > 0,
            "PatchMergingConfig: dim and out_dim must be positive, got {} and {out}",
            self.dim
        );
        PatchMerging {
            norm: LayerNormConfig::new(4 * self.dim).init(device),
            reduction: LinearConfig::new(4 * self.dim, out)
                .with_bias(false)
                .init(device),
        }
    }
}

/// Concatenates each 2×2 neighbourhood (order: top-left, bottom-left, top-right,
/// bottom-right, as timm), normalises the `4C` vector and projects it linearly. Odd sizes are
/// zero-padded on the bottom/right first.
#[derive(Module, Debug)]
pub struct PatchMerging {
    /// LayerNorm over the `4C` concatenation.
    pub norm: LayerNorm,
    /// Linear `4C → out_dim`, no bias.
    pub reduction: Linear,
}

impl PatchMerging {
    /// Key map of timm's `PatchMerging` (same names: `norm`, `reduction`).
    pub fn key_map(&self) -> crate::weights::KeyMap {
        crate::weights::KeyMap::new()
    }

    /// # Shapes
    /// - input: `[batch, h, w, C]` (channels last)
    /// - output: `[batch, ⌈h/2⌉, ⌈w/2⌉, out_dim]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, w, c] = x.dims();
        let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
        let x = if h % 2 == 0 && w % 2 == 0 {
            x
        } else {
            Tensor::zeros([b, 2 * h2, 2 * w2, c], &x.device())
                .slice_assign([0..b, 0..h, 0..w, 0..c], x)
        };
        let merged = x
            .reshape([b * h2, 2, w2, 2, c]) // [.., dy, x2, dx, c]
            .permute([0, 2, 3, 1, 4]) // [.., x2, dx, dy, c]: concat index dx·2 + dy
            .reshape([b, h2, w2, 4 * c]);
        crate::ops::linear_layer(&self.reduction, self.norm.forward(merged))
    }
}
