//! Attention-based global pooling (the seed document's attention-pooling family).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, softmax};

/// Configuration of [`SoftAttentionPool`].
#[derive(Config, Debug)]
pub struct SoftAttentionPoolConfig {
    /// Channels of the feature map (and of the pooled vector).
    pub channels: usize,
    /// Hidden width of the scoring network; `None` = `channels / 4` (the seed's default).
    #[config(default = "None")]
    pub hidden_dim: Option<usize>,
}

impl SoftAttentionPoolConfig {
    /// Builds the module.
    ///
    /// # Panics
    /// If `channels` or the hidden width is zero (e.g. `channels < 4` without `hidden_dim`).
    pub fn init(&self, device: &Device) -> SoftAttentionPool {
        let hidden = self.hidden_dim.unwrap_or(self.channels / 4);
        assert!(
            self.channels > 0 && hidden > 0,
            "SoftAttentionPoolConfig: channels and hidden_dim must be positive, got channels {} and hidden_dim {hidden} (default channels / 4)",
            self.channels
        );
        SoftAttentionPool {
            hidden: Conv2dConfig::new([self.channels, hidden], [1, 1]).init(device),
            score: Conv2dConfig::new([hidden, 1], [1, 1]).init(device),
        }
    }
}

/// Soft spatial attention pooling: a small 1×1-conv network scores every position, a softmax
/// over positions turns the scores into weights, and the map is averaged with them.
///
/// Mirrors the seed's `SoftAttentionPooling` (keys `attention.0.*` → `hidden`,
/// `attention.2.*` → `score`).
#[derive(Module, Debug)]
pub struct SoftAttentionPool {
    /// 1×1 conv `channels → hidden`, followed by ReLU.
    pub hidden: Conv2d,
    /// 1×1 conv `hidden → 1`: the score map.
    pub score: Conv2d,
}

impl SoftAttentionPool {
    /// Width of the pooled vector.
    pub fn out_features(&self) -> usize {
        self.hidden.weight.dims()[1]
    }

    /// # Shapes
    /// - input: `[batch, channels, h, w]`
    /// - output: `[batch, channels]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = x.dims();
        let scores = self.score.forward(relu(self.hidden.forward(x.clone())));
        let weights = softmax(scores.reshape([b, h * w]), 1).reshape([b, 1, h * w]);
        (x.reshape([b, c, h * w]) * weights)
            .sum_dim(2)
            .reshape([b, c])
    }
}
