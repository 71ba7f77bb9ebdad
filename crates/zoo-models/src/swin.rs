//! Swin Transformer (Liu et al. 2021) as timm's `SwinTransformer`
//! (`swin_{tiny,small,base}_patch4_window7_224`), same module tree and key names.

use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use zoo_nn::layers::{
    GlobalPool, GlobalPoolConfig, PatchEmbed, PatchEmbedConfig, PatchMerging, PatchMergingConfig,
    SwinBlock, SwinBlockConfig,
};

use crate::features::FeatureInfo;
use crate::init;
use crate::weights::KeyMap;

/// Configuration of [`SwinTransformer`] (timm's argument names where they exist).
#[derive(Config, Debug)]
pub struct SwinTransformerConfig {
    /// Classes of the head; `None` = features only (no final head).
    #[config(default = "Some(1000)")]
    pub num_classes: Option<usize>,
    /// The image size windows and shifts are fixed for (timm's `img_size`); other sizes work
    /// too (padded, masks built per input).
    #[config(default = "[224, 224]")]
    pub img_size: [usize; 2],
    /// Patch size.
    #[config(default = 4)]
    pub patch_size: usize,
    /// Input channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Width of stage 1 (doubled at each later stage).
    #[config(default = 96)]
    pub embed_dim: usize,
    /// Blocks per stage.
    #[config(default = "vec![2, 2, 6, 2]")]
    pub depths: Vec<usize>,
    /// Heads per stage.
    #[config(default = "vec![3, 6, 12, 24]")]
    pub num_heads: Vec<usize>,
    /// Window side (shrunk per stage where the map is smaller, as timm).
    #[config(default = 7)]
    pub window_size: usize,
    /// MLP ratio.
    #[config(default = 4.0)]
    pub mlp_ratio: f64,
    /// Stochastic depth, rising linearly over all blocks to this rate (training only).
    #[config(default = 0.1)]
    pub drop_path_rate: f64,
    /// Global pooling of the head (timm: average).
    #[config(default = "GlobalPoolConfig::Avg")]
    pub global_pool: GlobalPoolConfig,
}

impl SwinTransformerConfig {
    /// Swin-T (`swin_tiny_patch4_window7_224`).
    pub fn tiny() -> Self {
        Self::new()
    }

    /// Swin-S (`swin_small_patch4_window7_224`).
    pub fn small() -> Self {
        Self::new()
            .with_depths(vec![2, 2, 18, 2])
            .with_drop_path_rate(0.3)
    }

    /// Swin-B (`swin_base_patch4_window7_224`).
    pub fn base() -> Self {
        Self::new()
            .with_embed_dim(128)
            .with_depths(vec![2, 2, 18, 2])
            .with_num_heads(vec![4, 8, 16, 32])
            .with_drop_path_rate(0.5)
    }

    /// Channels of each stage's output.
    pub fn stage_channels(&self) -> Vec<usize> {
        (0..self.depths.len())
            .map(|i| self.embed_dim << i)
            .collect()
    }

    /// timm's `feature_info` of [`SwinTransformer::stage_features`]: stage `i`
    /// (`layers.{i}`) has `embed_dim·2^i` channels at reduction `patch_size·2^i`.
    pub fn feature_info(&self) -> Vec<FeatureInfo> {
        self.stage_channels()
            .into_iter()
            .enumerate()
            .map(|(i, c)| FeatureInfo::new(format!("layers.{i}"), c, self.patch_size << i))
            .collect()
    }

    /// Builds the model on `device`.
    ///
    /// # Panics
    /// If [`Self::validate`] fails (the message names the key).
    pub fn init(&self, device: &Device) -> SwinTransformer {
        if let Err(e) = self.validate() {
            panic!("SwinTransformerConfig: {e}");
        }
        let stages = self.depths.len();
        let grid = self.img_size.map(|s| s.div_ceil(self.patch_size));
        let total: usize = self.depths.iter().sum();
        let rate = |k: usize| match total {
            0 | 1 => 0.0,
            n => self.drop_path_rate * k as f64 / (n - 1) as f64,
        };
        let mut block_index = 0;
        let mut layers = Vec::with_capacity(stages);
        for (i, (&depth, &heads)) in self.depths.iter().zip(&self.num_heads).enumerate() {
            let dim = self.embed_dim << i;
            let resolution = grid.map(|g| g.div_ceil(1 << i));
            let downsample = (i > 0).then(|| {
                PatchMergingConfig::new(dim / 2)
                    .with_out_dim(Some(dim))
                    .init(device)
            });
            let blocks = (0..depth)
                .map(|j| {
                    let block = SwinBlockConfig::new(dim, heads, resolution)
                        .with_window_size(self.window_size)
                        .with_shift_size(if j % 2 == 0 { 0 } else { self.window_size / 2 })
                        .with_mlp_ratio(self.mlp_ratio)
                        .with_drop_path(rate(block_index))
                        .init(device);
                    block_index += 1;
                    block
                })
                .collect();
            layers.push(SwinStage { downsample, blocks });
        }
        let features = self.embed_dim << (stages - 1);
        let mut model = SwinTransformer {
            patch_embed: PatchEmbedConfig::new()
                .with_in_channels(self.in_channels)
                .with_embed_dim(self.embed_dim)
                .with_patch_size(self.patch_size)
                .with_norm(true)
                .with_pad(true)
                .init(device),
            layers,
            norm: LayerNormConfig::new(features).init(device),
            head: self.num_classes.map(|classes| SwinHead {
                global_pool: self.global_pool.init(features, device),
                fc: LinearConfig::new(self.global_pool.out_features(features), classes)
                    .init(device),
            }),
        };
        // timm `_init_weights`: every Linear trunc_normal_(std=.02), bias 0 (the global
        // pool's own layers, zoo-nn's, keep theirs).
        for stage in &mut model.layers {
            if let Some(merge) = &mut stage.downsample {
                init::timm_linear(&mut merge.reduction);
            }
            for block in &mut stage.blocks {
                for linear in [
                    &mut block.attn.qkv,
                    &mut block.attn.proj,
                    &mut block.mlp.fc1,
                    &mut block.mlp.fc2,
                ] {
                    init::timm_linear(linear);
                }
            }
        }
        if let Some(head) = &mut model.head {
            init::timm_linear(&mut head.fc);
        }
        model
    }
}

/// One stage: optional patch merging, then the blocks (timm `SwinTransformerStage`).
#[derive(Module, Debug)]
pub struct SwinStage {
    /// Patch merging (stages 2..4).
    pub downsample: Option<PatchMerging>,
    /// The blocks, alternating plain and shifted windows.
    pub blocks: Vec<SwinBlock>,
}

impl SwinStage {
    /// `[B, H, W, C_in]` → `[B, ⌈H/2⌉, ⌈W/2⌉, C]` (or the same size without merging).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = match &self.downsample {
            Some(d) => d.forward(x),
            None => x,
        };
        self.blocks.iter().fold(x, |x, b| b.forward(x))
    }
}

/// The classifier head (timm `ClassifierHead`: pool, fc).
#[derive(Module, Debug)]
pub struct SwinHead {
    /// Global pooling over the final map.
    pub global_pool: GlobalPool,
    /// Classifier (`head.fc`).
    pub fc: Linear,
}

/// Swin Transformer (timm `SwinTransformer`).
#[derive(Module, Debug)]
pub struct SwinTransformer {
    /// Patch embedding with LayerNorm (`patch_embed.*`), padding to a patch multiple.
    pub patch_embed: PatchEmbed,
    /// The stages (`layers.{i}.*`).
    pub layers: Vec<SwinStage>,
    /// Final LayerNorm (`norm.*`).
    pub norm: LayerNorm,
    /// Classifier (`head.fc.*`); absent in features-only mode.
    pub head: Option<SwinHead>,
}

impl SwinTransformer {
    /// timm's `forward_features`: `[B, C, H, W]` → `[B, H/32, W/32, C_last]` (NHWC, after the
    /// final norm).
    pub fn forward_features(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self
            .layers
            .iter()
            .fold(self.patch_embed.forward(x), |x, s| s.forward(x));
        self.norm.forward(x)
    }

    /// The four stage outputs for dense heads: NCHW, without the final norm (timm's
    /// `features_only` stages, permuted to channels-first).
    ///
    /// # Shapes
    /// - input `[B, C, H, W]`; stage `i`: `[B, embed_dim·2^i, ⌈H/(4·2^i)⌉, ⌈W/(4·2^i)⌉]`
    pub fn stage_features(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let mut x = self.patch_embed.forward(x);
        let mut out = Vec::with_capacity(self.layers.len());
        for stage in &self.layers {
            x = stage.forward(x);
            out.push(x.clone().permute([0, 3, 1, 2]));
        }
        out
    }

    /// Class logits.
    ///
    /// # Shapes
    /// - input: `[B, in_channels, H, W]` (any size); output: `[B, num_classes]`
    ///
    /// # Panics
    /// If the model was built without a head.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let Some(head) = &self.head else {
            panic!("SwinTransformer::forward needs a head: build it with num_classes = Some(..)")
        };
        let features = self.forward_features(x).permute([0, 3, 1, 2]);
        head.fc.forward(head.global_pool.forward(features))
    }

    /// timm's key names: the module tree matches them; the head's absence drops `head.*`,
    /// and the `relative_position_index` / `attn_mask` buffers older timm versions saved are
    /// ignored by name (burn-zoo rebuilds them).
    pub fn key_map(&self) -> KeyMap {
        let map = KeyMap::new()
            .ignore(r"(^|\.)attn\.relative_position_index$")
            .ignore(r"(^|\.)attn_mask$");
        match self.head {
            Some(_) => map,
            None => map.ignore(r"^head\."),
        }
    }
}
