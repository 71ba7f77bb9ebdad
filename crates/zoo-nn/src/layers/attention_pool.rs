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

/// Configuration of [`SelfAttentionPool`].
#[derive(Config, Debug)]
pub struct SelfAttentionPoolConfig {
    /// Channels of the feature map (and of the pooled vector).
    pub channels: usize,
    /// Query/key width is `channels / reduction` (the seed uses 8, as SAGAN).
    #[config(default = 8)]
    pub reduction: usize,
}

impl SelfAttentionPoolConfig {
    /// Builds the module; `gamma` starts at 0, so it starts as global average pooling.
    ///
    /// # Panics
    /// If `channels / reduction` is zero.
    pub fn init(&self, device: &Device) -> SelfAttentionPool {
        let inner = self.channels / self.reduction.max(1);
        assert!(
            self.reduction > 0 && inner > 0,
            "SelfAttentionPoolConfig: channels / reduction must be positive, got channels {} and reduction {}",
            self.channels,
            self.reduction
        );
        let conv = |out: usize| Conv2dConfig::new([self.channels, out], [1, 1]).init(device);
        SelfAttentionPool {
            query: conv(inner),
            key: conv(inner),
            value: conv(self.channels),
            gamma: burn::module::Param::from_tensor(Tensor::zeros([1], device)),
        }
    }
}

/// Self-attention over all positions (SAGAN-style, gated residual `γ·attn(x) + x`) followed
/// by global average pooling; mirrors the seed's `SelfAttentionPool` (same key names).
#[derive(Module, Debug)]
pub struct SelfAttentionPool {
    /// 1×1 query projection `channels → channels / reduction`.
    pub query: Conv2d,
    /// 1×1 key projection `channels → channels / reduction`.
    pub key: Conv2d,
    /// 1×1 value projection `channels → channels`.
    pub value: Conv2d,
    /// Residual gate, `[1]`, initialised to 0.
    pub gamma: burn::module::Param<Tensor<1>>,
}

impl SelfAttentionPool {
    /// Width of the pooled vector.
    pub fn out_features(&self) -> usize {
        self.value.weight.dims()[0]
    }

    /// # Shapes
    /// - input: `[batch, channels, h, w]`
    /// - output: `[batch, channels]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = x.dims();
        let n = h * w;
        let flat = |t: Tensor<4>| {
            let ch = t.dims()[1];
            t.reshape([b, ch, n])
        };
        let q = flat(self.query.forward(x.clone())).swap_dims(1, 2); // [b, n, c']
        let k = flat(self.key.forward(x.clone())); // [b, c', n]
        let v = flat(self.value.forward(x.clone())); // [b, c, n]
        let attention = softmax(q.matmul(k), 2); // [b, n, n], rows over keys
        let attended = v.matmul(attention.swap_dims(1, 2)); // [b, c, n]
        let gated = attended * self.gamma.val().reshape([1, 1, 1]) + x.reshape([b, c, n]);
        gated.mean_dim(2).reshape([b, c])
    }
}
