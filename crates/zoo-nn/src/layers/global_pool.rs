//! One global-pooling switch for classifier heads: average, max, or any attention pool,
//! chosen by configuration (a `global_pool` setting of the ResNet and Swin classifiers).

use burn::module::{Content, DisplaySettings, ModuleDisplay};
use burn::prelude::*;

use super::attention_pool::{
    CrossAttentionPool, CrossAttentionPoolConfig, MultiHeadAttentionPool,
    MultiHeadAttentionPoolConfig, OrderlessPool, OrderlessPoolConfig, SelfAttentionPool,
    SelfAttentionPoolConfig, SoftAttentionPool, SoftAttentionPoolConfig,
};

/// Which global pooling a head uses; the feature-map width comes from the model at
/// [`init`](Self::init). In a TOML/JSON config: `"Avg"`, `"Max"`, or e.g.
/// `{ MultiHeadAttention = { num_heads = 4, head_dim = 64 } }`.
#[derive(Config, Debug, PartialEq)]
pub enum GlobalPoolConfig {
    /// Global average pooling (the default of every torchvision/timm classifier).
    Avg,
    /// Global max pooling.
    Max,
    /// [`SoftAttentionPool`].
    SoftAttention {
        /// Hidden width of the scoring network; `None` = `channels / 4`.
        hidden_dim: Option<usize>,
    },
    /// [`SelfAttentionPool`].
    SelfAttention {
        /// Query/key width is `channels / reduction`.
        reduction: usize,
    },
    /// [`MultiHeadAttentionPool`].
    MultiHeadAttention {
        /// Heads (one learned query each).
        num_heads: usize,
        /// Width of each head.
        head_dim: usize,
    },
    /// [`OrderlessPool`].
    Orderless {
        /// Number of learned centres.
        num_components: usize,
    },
    /// [`CrossAttentionPool`].
    CrossAttention {
        /// Token width (and of the pooled vector).
        embed_dim: usize,
        /// Attention heads.
        num_heads: usize,
    },
}

// A derive would put `#[default]` on the variant, which the `Config` derive copies into its
// serde mirror enum.
#[allow(clippy::derivable_impls)]
impl Default for GlobalPoolConfig {
    fn default() -> Self {
        Self::Avg
    }
}

impl GlobalPoolConfig {
    /// Builds the pool for a map of `channels` channels.
    ///
    /// # Panics
    /// As the chosen pool's config (naming the field).
    pub fn init(&self, channels: usize, device: &Device) -> GlobalPool {
        match *self {
            Self::Avg => GlobalPool::Avg(GlobalAvgPool { channels }),
            Self::Max => GlobalPool::Max(GlobalMaxPool { channels }),
            Self::SoftAttention { hidden_dim } => GlobalPool::SoftAttention(
                SoftAttentionPoolConfig::new(channels)
                    .with_hidden_dim(hidden_dim)
                    .init(device),
            ),
            Self::SelfAttention { reduction } => GlobalPool::SelfAttention(
                SelfAttentionPoolConfig::new(channels)
                    .with_reduction(reduction)
                    .init(device),
            ),
            Self::MultiHeadAttention {
                num_heads,
                head_dim,
            } => GlobalPool::MultiHeadAttention(
                MultiHeadAttentionPoolConfig::new(channels)
                    .with_num_heads(num_heads)
                    .with_head_dim(head_dim)
                    .init(device),
            ),
            Self::Orderless { num_components } => GlobalPool::Orderless(
                OrderlessPoolConfig::new(channels)
                    .with_num_components(num_components)
                    .init(device),
            ),
            Self::CrossAttention {
                embed_dim,
                num_heads,
            } => GlobalPool::CrossAttention(
                CrossAttentionPoolConfig::new(channels)
                    .with_embed_dim(embed_dim)
                    .with_num_heads(num_heads)
                    .init(device),
            ),
        }
    }

    /// Width of the pooled vector for a map of `channels` channels (what a classifier's
    /// linear layer takes), known before the pool is built.
    pub fn out_features(&self, channels: usize) -> usize {
        match *self {
            Self::Orderless { num_components } => channels * num_components,
            Self::CrossAttention { embed_dim, .. } => embed_dim,
            _ => channels,
        }
    }
}

/// Global average pooling: `[B, C, H, W] → [B, C]`.
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct GlobalAvgPool {
    #[module(skip)]
    channels: usize,
}

impl ModuleDisplay for GlobalAvgPool {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        DisplaySettings::new()
            .with_new_line_after_attribute(false)
            .optional()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        content.add("channels", &self.channels).optional()
    }
}

/// Global max pooling: `[B, C, H, W] → [B, C]`.
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct GlobalMaxPool {
    #[module(skip)]
    channels: usize,
}

impl ModuleDisplay for GlobalMaxPool {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        DisplaySettings::new()
            .with_new_line_after_attribute(false)
            .optional()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        content.add("channels", &self.channels).optional()
    }
}

/// A global pool chosen by [`GlobalPoolConfig`]; every variant maps `[B, C, H, W]` to
/// `[B, out_features]`.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum GlobalPool {
    /// Global average pooling.
    Avg(GlobalAvgPool),
    /// Global max pooling.
    Max(GlobalMaxPool),
    /// Soft spatial attention.
    SoftAttention(SoftAttentionPool),
    /// Self-attention + GAP.
    SelfAttention(SelfAttentionPool),
    /// Multi-head attention with learned queries.
    MultiHeadAttention(MultiHeadAttentionPool),
    /// Orderless (NetVLAD-style) aggregation.
    Orderless(OrderlessPool),
    /// Cross-attention with a learned query.
    CrossAttention(CrossAttentionPool),
}

impl GlobalPool {
    /// Key map of the chosen pool's upstream module (see each pool's `key_map`); the
    /// parameter-free `Avg` and `Max` map nothing.
    pub fn key_map(&self) -> crate::weights::KeyMap {
        match self {
            Self::Avg(_) | Self::Max(_) => crate::weights::KeyMap::new(),
            Self::SoftAttention(p) => p.key_map(),
            Self::SelfAttention(p) => p.key_map(),
            Self::MultiHeadAttention(p) => p.key_map(),
            Self::Orderless(p) => p.key_map(),
            Self::CrossAttention(p) => p.key_map(),
        }
    }

    /// Width of the pooled vector.
    pub fn out_features(&self) -> usize {
        match self {
            Self::Avg(p) => p.channels,
            Self::Max(p) => p.channels,
            Self::SoftAttention(p) => p.out_features(),
            Self::SelfAttention(p) => p.out_features(),
            Self::MultiHeadAttention(p) => p.out_features(),
            Self::Orderless(p) => p.out_features(),
            Self::CrossAttention(p) => p.out_features(),
        }
    }

    /// # Shapes
    /// - input: `[batch, channels, h, w]`
    /// - output: `[batch, out_features]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = x.dims();
        match self {
            Self::Avg(_) => x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c]),
            Self::Max(_) => x.reshape([b, c, h * w]).max_dim(2).reshape([b, c]),
            Self::SoftAttention(p) => p.forward(x),
            Self::SelfAttention(p) => p.forward(x),
            Self::MultiHeadAttention(p) => p.forward(x),
            Self::Orderless(p) => p.forward(x),
            Self::CrossAttention(p) => p.forward(x),
        }
    }
}
