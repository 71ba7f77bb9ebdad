//! Attention-based global pooling (the seed document's attention-pooling family).

use crate::layers::ZooForward;
use burn::module::Param;
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{relu, softmax};

use crate::weights::KeyMap;

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
    /// Key map of the seed's `SoftAttentionPooling` (`attention.0` → `hidden`,
    /// `attention.2` → `score`).
    pub fn key_map(&self) -> KeyMap {
        KeyMap::new()
            .prefix("attention.0", "hidden")
            .prefix("attention.2", "score")
    }

    /// Width of the pooled vector.
    pub fn out_features(&self) -> usize {
        self.hidden.weight.dims()[1]
    }

    /// # Shapes
    /// - input: `[batch, channels, h, w]`
    /// - output: `[batch, channels]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = x.dims();
        let scores = self
            .score
            .zoo_forward(relu(self.hidden.zoo_forward(x.clone())));
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
    /// Key map of the seed's `SelfAttentionPool` (same names: `query`, `key`, `value`,
    /// `gamma`).
    pub fn key_map(&self) -> KeyMap {
        KeyMap::new()
    }

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
        let q = flat(self.query.zoo_forward(x.clone())).swap_dims(1, 2); // [b, n, c']
        let k = flat(self.key.zoo_forward(x.clone())); // [b, c', n]
        let v = flat(self.value.zoo_forward(x.clone())); // [b, c, n]
        let attention = softmax(q.matmul(k), 2); // [b, n, n], rows over keys
        let attended = v.matmul(attention.swap_dims(1, 2)); // [b, c, n]
        let gated = attended * self.gamma.val().reshape([1, 1, 1]) + x.reshape([b, c, n]);
        gated.mean_dim(2).reshape([b, c])
    }
}

/// Configuration of [`MultiHeadAttentionPool`].
#[derive(Config, Debug)]
pub struct MultiHeadAttentionPoolConfig {
    /// Channels of the feature map (and of the pooled vector).
    pub channels: usize,
    /// Attention heads, each with one learned query.
    #[config(default = 4)]
    pub num_heads: usize,
    /// Width of each head.
    #[config(default = 64)]
    pub head_dim: usize,
}

impl MultiHeadAttentionPoolConfig {
    /// Builds the module (queries drawn from a standard normal, as the seed).
    ///
    /// # Panics
    /// If a field is zero.
    pub fn init(&self, device: &Device) -> MultiHeadAttentionPool {
        assert!(
            self.channels > 0 && self.num_heads > 0 && self.head_dim > 0,
            "MultiHeadAttentionPoolConfig: channels, num_heads and head_dim must be positive, got {}, {}, {}",
            self.channels,
            self.num_heads,
            self.head_dim
        );
        let inner = self.num_heads * self.head_dim;
        let proj = || Conv2dConfig::new([self.channels, inner], [1, 1]).init(device);
        MultiHeadAttentionPool {
            queries: burn::module::Param::from_tensor(Tensor::random(
                [self.num_heads, self.head_dim],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                device,
            )),
            key_proj: proj(),
            value_proj: proj(),
            out_proj: burn::nn::LinearConfig::new(inner, self.channels).init(device),
        }
    }
}

/// Multi-head attention pooling with one learned query per head over all positions, then a
/// linear output projection; mirrors the seed's `MultiHeadAttentionPooling` (same key names;
/// `out_proj.weight` is stored transposed, as Burn's `Linear` is `[in, out]`).
#[derive(Module, Debug)]
pub struct MultiHeadAttentionPool {
    /// Learned queries `[num_heads, head_dim]`.
    pub queries: burn::module::Param<Tensor<2>>,
    /// 1×1 key projection `channels → num_heads · head_dim`.
    pub key_proj: Conv2d,
    /// 1×1 value projection `channels → num_heads · head_dim`.
    pub value_proj: Conv2d,
    /// Output projection `num_heads · head_dim → channels`.
    pub out_proj: burn::nn::Linear,
}

impl MultiHeadAttentionPool {
    /// Key map of the seed's `MultiHeadAttentionPooling` (same names; `out_proj.weight` is
    /// transposed to Burn's `[in, out]` like every `Linear` weight).
    pub fn key_map(&self) -> KeyMap {
        KeyMap::new()
    }

    /// Width of the pooled vector.
    pub fn out_features(&self) -> usize {
        self.out_proj.weight.dims()[1]
    }

    /// # Shapes
    /// - input: `[batch, channels, h, w]`
    /// - output: `[batch, channels]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [b, _, h, w] = x.dims();
        let [heads, dim] = self.queries.dims();
        let n = h * w;
        let keys = self
            .key_proj
            .zoo_forward(x.clone())
            .reshape([b, heads, dim, n]);
        let values = self.value_proj.zoo_forward(x).reshape([b, heads, dim, n]);
        let queries = self
            .queries
            .val()
            .reshape([1, heads, 1, dim])
            .expand([b, heads, 1, dim]);
        let scores = queries.matmul(keys) / (dim as f64).sqrt(); // [b, heads, 1, n]
        let attention = softmax(scores, 3);
        let attended = values.matmul(attention.swap_dims(2, 3)); // [b, heads, dim, 1]
        self.out_proj.forward(attended.reshape([b, heads * dim]))
    }
}

/// Configuration of [`OrderlessPool`].
#[derive(Config, Debug)]
pub struct OrderlessPoolConfig {
    /// Channels of the feature map.
    pub channels: usize,
    /// Mixture components (codewords).
    #[config(default = 64)]
    pub num_components: usize,
}

impl OrderlessPoolConfig {
    /// Builds the module (means drawn from a standard normal, as the seed).
    ///
    /// # Panics
    /// If a field is zero.
    pub fn init(&self, device: &Device) -> OrderlessPool {
        assert!(
            self.channels > 0 && self.num_components > 0,
            "OrderlessPoolConfig: channels and num_components must be positive, got {} and {}",
            self.channels,
            self.num_components
        );
        OrderlessPool {
            means: burn::module::Param::from_tensor(Tensor::random(
                [self.num_components, self.channels],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                device,
            )),
        }
    }
}

/// Orderless (NetVLAD / Fisher-vector first-order) pooling: each position is softly assigned
/// to learned means by `softmax(−‖x − μ_k‖²)`, and the assignment-weighted residuals
/// `Σ_n a_nk (x_n − μ_k)` are concatenated. Mirrors the seed's `OrderlessPooling`; its unused
/// `log_vars` and `mixture_weights` are not part of the computation (a loader may skip them).
#[derive(Module, Debug)]
pub struct OrderlessPool {
    /// Component means `[num_components, channels]`.
    pub means: burn::module::Param<Tensor<2>>,
}

impl OrderlessPool {
    /// Key map of the seed's `OrderlessPooling`: `means`; its `log_vars` and
    /// `mixture_weights`, which its forward never reads, are ignored by name.
    pub fn key_map(&self) -> KeyMap {
        KeyMap::new()
            .ignore("^log_vars$")
            .ignore("^mixture_weights$")
    }

    /// Width of the pooled vector: `num_components · channels`.
    pub fn out_features(&self) -> usize {
        let [k, c] = self.means.dims();
        k * c
    }

    /// # Shapes
    /// - input: `[batch, channels, h, w]`
    /// - output: `[batch, num_components · channels]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [b, c, h, w] = x.dims();
        let [k, _] = self.means.dims();
        let n = h * w;
        let x = x.reshape([b, c, n]).swap_dims(1, 2); // [b, n, c]
        let means = self.means.val().reshape([1, 1, k, c]);
        let diff = x.clone().unsqueeze_dim::<4>(2) - means.clone(); // [b, n, k, c]
        let assignments = softmax(diff.clone().square().sum_dim(3).neg(), 2); // [b, n, k, 1]
        (assignments * diff).sum_dim(1).reshape([b, k * c])
    }
}

/// Configuration of [`CrossAttentionPool`].
#[derive(Config, Debug)]
pub struct CrossAttentionPoolConfig {
    /// Channels of the feature map.
    pub in_channels: usize,
    /// Token width (and of the pooled vector).
    #[config(default = 512)]
    pub embed_dim: usize,
    /// Attention heads; must divide `embed_dim`.
    #[config(default = 8)]
    pub num_heads: usize,
}

impl CrossAttentionPoolConfig {
    /// Builds the module; the query starts as a standard normal draw, as the seed's.
    ///
    /// # Panics
    /// If a size is zero or `num_heads` does not divide `embed_dim` (naming the fields).
    pub fn init(&self, device: &Device) -> CrossAttentionPool {
        assert!(
            self.in_channels > 0 && self.embed_dim > 0 && self.num_heads > 0,
            "CrossAttentionPoolConfig: in_channels, embed_dim and num_heads must be positive, got {}, {} and {}",
            self.in_channels,
            self.embed_dim,
            self.num_heads
        );
        assert!(
            self.embed_dim.is_multiple_of(self.num_heads),
            "CrossAttentionPoolConfig: embed_dim ({}) must be divisible by num_heads ({})",
            self.embed_dim,
            self.num_heads
        );
        let e = self.embed_dim;
        CrossAttentionPool {
            to_tokens: Conv2dConfig::new([self.in_channels, e], [1, 1]).init(device),
            query: Param::from_tensor(Tensor::random(
                [1, 1, e],
                Distribution::Normal(0.0, 1.0),
                device,
            )),
            // PyTorch's nn.MultiheadAttention default: no attention dropout.
            cross_attn: MultiHeadAttentionConfig::new(e, self.num_heads)
                .with_dropout(0.0)
                .init(device),
        }
    }
}

/// Cross-attention pooling, the head of a CNN + transformer hybrid: a 1×1 conv turns the map
/// into tokens and one learned query attends over them (multi-head).
///
/// Mirrors the seed's `HybridViTPooling`; its state dict (with `nn.MultiheadAttention`'s
/// packed q/k/v) loads through [`CrossAttentionPool::key_map`].
#[derive(Module, Debug)]
pub struct CrossAttentionPool {
    /// 1×1 conv `in_channels → embed_dim`.
    pub to_tokens: Conv2d,
    /// The learned query, `[1, 1, embed_dim]`.
    pub query: Param<Tensor<3>>,
    /// Multi-head attention of the query over the tokens.
    pub cross_attn: MultiHeadAttention,
}

impl CrossAttentionPool {
    /// Key map of the seed's `HybridViTPooling`: `to_tokens.*`, `query`, and its
    /// `nn.MultiheadAttention` `cross_attn`, whose packed `in_proj_weight` `[3·E, E]` /
    /// `in_proj_bias` `[3·E]` are split into `cross_attn.{query,key,value}` (and re-packed on
    /// save), `cross_attn.out_proj` → `cross_attn.output`.
    pub fn key_map(&self) -> KeyMap {
        let mut map = KeyMap::new();
        for field in ["weight", "bias"] {
            let parts = ["query", "key", "value"].map(|p| format!("cross_attn.{p}.{field}"));
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            map = map.split(&format!("cross_attn.in_proj_{field}"), &parts);
        }
        map.prefix("cross_attn.out_proj", "cross_attn.output")
    }

    /// Width of the pooled vector (`embed_dim`).
    pub fn out_features(&self) -> usize {
        self.query.dims()[2]
    }

    /// # Shapes
    /// - input: `[batch, in_channels, h, w]`
    /// - output: `[batch, embed_dim]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [b, _, h, w] = x.dims();
        let e = self.out_features();
        let tokens = self
            .to_tokens
            .zoo_forward(x)
            .reshape([b, e, h * w])
            .swap_dims(1, 2);
        let query = self.query.val().expand([b, 1, e]);
        self.cross_attn
            .forward(MhaInput::new(query, tokens.clone(), tokens))
            .context
            .reshape([b, e])
    }
}

/// Loads PyTorch `nn.MultiheadAttention`'s packed input projection into Burn's
/// [`MultiHeadAttention`]: rows `[0, E)` of `in_proj_weight` are the query, `[E, 2E)` the
/// key, `[2E, 3E)` the value projection (PyTorch `[out, in]`, transposed to Burn's
/// `[in, out]`). The output projection is a plain `Linear` (`out_proj` → `output`).
///
/// # Shapes
/// - `in_proj_weight`: `[3·E, E]`
/// - `in_proj_bias`: `[3·E]` (`None` for `bias=False`)
///
/// # Panics
/// If the shapes do not match the module's `d_model`.
pub fn set_packed_in_proj(
    mha: &mut MultiHeadAttention,
    in_proj_weight: Tensor<2>,
    in_proj_bias: Option<Tensor<1>>,
) {
    let e = mha.d_model;
    assert!(
        in_proj_weight.dims() == [3 * e, e],
        "set_packed_in_proj: in_proj_weight must be [3·d_model, d_model] = {:?}, got {:?}",
        [3 * e, e],
        in_proj_weight.dims()
    );
    if let Some(bias) = &in_proj_bias {
        assert!(
            bias.dims() == [3 * e],
            "set_packed_in_proj: in_proj_bias must be [3·d_model] = [{}], got {:?}",
            3 * e,
            bias.dims()
        );
    }
    for (i, linear) in [&mut mha.query, &mut mha.key, &mut mha.value]
        .into_iter()
        .enumerate()
    {
        let rows = i * e..(i + 1) * e;
        let weight = in_proj_weight
            .clone()
            .slice([rows.clone(), 0..e])
            .transpose();
        linear.weight = Param::from_tensor(weight);
        linear.bias = in_proj_bias
            .clone()
            .map(|b| Param::from_tensor(b.slice([rows])));
    }
}
