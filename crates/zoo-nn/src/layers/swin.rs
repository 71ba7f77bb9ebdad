//! Swin Transformer's window attention and block (Liu et al. 2021), as timm's
//! `WindowAttention` and `SwinTransformerBlock` (same key names, same window/shift rules).

use burn::module::{Content, Flag, ModuleDisplay, Param};
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn::tensor::{Distribution, TensorData};

use crate::ops::{WindowAttentionOptions, gelu, linear_layer, window_attention};
pub use crate::ops::{shifted_window_mask, window_partition, window_reverse};

/// Configuration of [`WindowAttention`].
#[derive(Config, Debug)]
pub struct WindowAttentionConfig {
    /// Token width.
    pub dim: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Window `[height, width]`.
    #[config(default = "[7, 7]")]
    pub window_size: [usize; 2],
    /// Width of each head; `None` = `dim / num_heads` (which must then divide evenly).
    #[config(default = "None")]
    pub head_dim: Option<usize>,
    /// Bias on the q/k/v projection.
    #[config(default = true)]
    pub qkv_bias: bool,
    /// Dropout on the attention weights (training only).
    #[config(default = 0.0)]
    pub attn_drop: f64,
    /// Dropout after the output projection (training only).
    #[config(default = 0.0)]
    pub proj_drop: f64,
}

impl WindowAttentionConfig {
    /// Builds the module; the bias table starts as timm's (normal, std 0.02, truncated at
    /// ±2, i.e. 100 standard deviations: plain normal in practice).
    ///
    /// # Panics
    /// If a size is zero or `num_heads` does not divide `dim` without `head_dim` (naming
    /// the field).
    pub fn init(&self, device: &Device) -> WindowAttention {
        let [wh, ww] = self.window_size;
        for (field, value) in [
            ("dim", self.dim),
            ("num_heads", self.num_heads),
            ("window_size[0]", wh),
            ("window_size[1]", ww),
            ("head_dim", self.head_dim.unwrap_or(1)),
        ] {
            assert!(
                value > 0,
                "WindowAttentionConfig: {field} must be positive, got 0"
            );
        }
        let head_dim = self.head_dim.unwrap_or_else(|| {
            assert!(
                self.dim.is_multiple_of(self.num_heads),
                "WindowAttentionConfig: dim ({}) must be divisible by num_heads ({}) when head_dim is not set",
                self.dim,
                self.num_heads
            );
            self.dim / self.num_heads
        });
        let attn_dim = head_dim * self.num_heads;
        let table = [(2 * wh - 1) * (2 * ww - 1), self.num_heads];
        WindowAttention {
            qkv: LinearConfig::new(self.dim, 3 * attn_dim)
                .with_bias(self.qkv_bias)
                .init(device),
            proj: LinearConfig::new(attn_dim, self.dim).init(device),
            relative_position_bias_table: Param::from_tensor(Tensor::random(
                table,
                Distribution::Normal(0.0, 0.02),
                device,
            )),
            attn_drop: DropoutConfig::new(self.attn_drop).init(),
            proj_drop: DropoutConfig::new(self.proj_drop).init(),
            num_heads: self.num_heads,
            window_size: self.window_size,
            relative_position_index: relative_position_index(self.window_size),
        }
    }
}

/// timm's `get_relative_position_index`: for every pair of tokens `(i, j)` of a window
/// (row-major), the row of the bias table holding their relative offset,
/// `(dy + wh − 1) · (2·ww − 1) + (dx + ww − 1)`. Flattened `[N·N]`, `N = wh·ww`.
pub fn relative_position_index(window_size: [usize; 2]) -> Vec<i64> {
    let [wh, ww] = window_size.map(|s| s as i64);
    let coords: Vec<(i64, i64)> = (0..wh).flat_map(|y| (0..ww).map(move |x| (y, x))).collect();
    coords
        .iter()
        .flat_map(|&(yi, xi)| {
            coords
                .iter()
                .map(move |&(yj, xj)| (yi - yj + wh - 1) * (2 * ww - 1) + (xi - xj + ww - 1))
        })
        .collect()
}

/// Window multi-head self-attention with a learned relative position bias (W-MSA / SW-MSA).
///
/// timm keys: `qkv.*`, `proj.*`, `relative_position_bias_table`
/// (`[(2·wh − 1)(2·ww − 1), num_heads]`); `relative_position_index` is not a parameter (timm
/// does not save it either) and is rebuilt from the window size.
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct WindowAttention {
    /// Joint q/k/v projection `dim → 3·heads·head_dim`.
    pub qkv: Linear,
    /// Output projection `heads·head_dim → dim`.
    pub proj: Linear,
    /// One learned bias per head and relative offset.
    pub relative_position_bias_table: Param<Tensor<2>>,
    /// Dropout on the attention weights.
    pub attn_drop: Dropout,
    /// Dropout after the projection.
    pub proj_drop: Dropout,
    #[module(skip)]
    num_heads: usize,
    #[module(skip)]
    window_size: [usize; 2],
    #[module(skip)]
    relative_position_index: Vec<i64>,
}

impl ModuleDisplay for WindowAttention {
    fn custom_content(&self, content: Content) -> Option<Content> {
        content
            .add("num_heads", &self.num_heads)
            .add("window_size", &format!("{:?}", self.window_size))
            .add("qkv", &self.qkv)
            .add("proj", &self.proj)
            .add(
                "relative_position_bias_table",
                &self.relative_position_bias_table,
            )
            .add("attn_drop", &self.attn_drop)
            .add("proj_drop", &self.proj_drop)
            .optional()
    }
}

impl WindowAttention {
    /// Key map of timm's `WindowAttention` (same names: `qkv`, `proj`,
    /// `relative_position_bias_table`; the `relative_position_index` buffer older timm
    /// versions saved is ignored by name, burn-zoo rebuilds it).
    pub fn key_map(&self) -> crate::weights::KeyMap {
        crate::weights::KeyMap::new().ignore("^relative_position_index$")
    }

    /// The window `[height, width]`.
    pub fn window_size(&self) -> [usize; 2] {
        self.window_size
    }

    /// The relative position bias `[num_heads, N, N]`.
    pub fn relative_position_bias(&self) -> Tensor<3> {
        let table = self.relative_position_bias_table.val();
        let n = self.window_size[0] * self.window_size[1];
        let index = Tensor::<1, Int>::from_data(
            TensorData::new(self.relative_position_index.clone(), [n * n]),
            &table.device(),
        );
        table
            .select(0, index)
            .reshape([n, n, self.num_heads])
            .permute([2, 0, 1])
    }

    /// Attention over the (shifted) windows of a whole map, through
    /// [`window_attention`](crate::ops::window_attention): the q/k/v projection of every
    /// token, the attention of each window, the output projection. The same result as
    /// rolling by `−shift`, padding with zeros, [`window_partition`], [`forward`](Self::forward)
    /// with timm's mask, [`window_reverse`], cropping and rolling back — but without
    /// dropout on the attention weights.
    ///
    /// # Shapes
    /// - x: `[batch, h, w, dim]`; output: `[batch, h, w, dim]`
    pub fn forward_map(&self, x: Tensor<4>, shift: [usize; 2]) -> Tensor<4> {
        let qkv = linear_layer(&self.qkv, x);
        let c3 = qkv.dims()[3];
        let qkv_bias = match &self.qkv.bias {
            Some(b) => b.val(),
            None => Tensor::zeros([c3], &qkv.device()),
        };
        let head_dim = self.proj.weight.dims()[0] / self.num_heads;
        let options = WindowAttentionOptions::new(
            self.num_heads,
            self.window_size,
            shift,
            (head_dim as f64).powf(-0.5),
        );
        let out = window_attention(qkv, qkv_bias, self.relative_position_bias(), options);
        self.proj_drop.forward(linear_layer(&self.proj, out))
    }

    /// # Shapes
    /// - x: `[batch · num_windows, N, dim]`, `N = wh·ww` tokens of each window, row-major
    /// - mask: `[num_windows, N, N]` added to the logits of every batch element's windows
    ///   (0 or −100 in Swin), or `None`
    /// - output: `[batch · num_windows, N, dim]`
    ///
    /// # Panics
    /// If `N` is not the window's area, or the mask is not `[nW, N, N]` with `nW` dividing
    /// the first dimension of `x`.
    pub fn forward(&self, x: Tensor<3>, mask: Option<Tensor<3>>) -> Tensor<3> {
        let [b, n, _] = x.dims();
        let area = self.window_size[0] * self.window_size[1];
        assert!(
            n == area,
            "WindowAttention: x must have window_size[0]·window_size[1] = {area} tokens per window, got {n}"
        );
        let heads = self.num_heads;
        let attn_dim = self.proj.weight.dims()[0];
        let head_dim = attn_dim / heads;
        let qkv: Tensor<5> = linear_layer(&self.qkv, x)
            .reshape([b, n, 3, heads, head_dim])
            .permute([2, 0, 3, 1, 4]);
        let [q, k, v]: [Tensor<5>; 3] =
            qkv.chunk(3, 0).try_into().expect("three chunks of q, k, v");
        let [q, k, v] = [q, k, v].map(|t| t.reshape([b, heads, n, head_dim]));
        let scale = (head_dim as f64).powf(-0.5);
        let mut attn = q
            .mul_scalar(scale)
            .matmul(k.swap_dims(2, 3))
            .add(self.relative_position_bias().unsqueeze_dim(0));
        if let Some(mask) = mask {
            let [windows, mn, mm] = mask.dims();
            assert!(
                mn == n && mm == n && windows > 0 && b.is_multiple_of(windows),
                "WindowAttention: mask must be [num_windows, {n}, {n}] with num_windows dividing {b}, got {:?}",
                mask.dims()
            );
            attn = (attn.reshape([b / windows, windows, heads, n, n])
                + mask.reshape([1, windows, 1, n, n]))
            .reshape([b, heads, n, n]);
        }
        let attn = self.attn_drop.forward(softmax(attn, 3));
        let out = attn.matmul(v).swap_dims(1, 2).reshape([b, n, attn_dim]);
        self.proj_drop.forward(linear_layer(&self.proj, out))
    }
}

/// Configuration of [`SwinBlock`]: timm's `SwinTransformerBlock`.
#[derive(Config, Debug)]
pub struct SwinBlockConfig {
    /// Token width.
    pub dim: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// The feature-map size `[height, width]` the block is built for: the window shrinks to
    /// it (and the shift is dropped) where it is smaller than `window_size`, as timm.
    pub input_resolution: [usize; 2],
    /// Window side.
    #[config(default = 7)]
    pub window_size: usize,
    /// Cyclic shift (timm: `window_size / 2` on odd blocks, 0 on even ones); `< window_size`.
    #[config(default = 0)]
    pub shift_size: usize,
    /// Width of each head; `None` = `dim / num_heads`.
    #[config(default = "None")]
    pub head_dim: Option<usize>,
    /// MLP hidden width is `dim · mlp_ratio` (truncated, as timm's `int()`).
    #[config(default = 4.0)]
    pub mlp_ratio: f64,
    /// Bias on the q/k/v projection.
    #[config(default = true)]
    pub qkv_bias: bool,
    /// Dropout after the attention projection and in the MLP (training only).
    #[config(default = 0.0)]
    pub proj_drop: f64,
    /// Dropout on the attention weights (training only).
    #[config(default = 0.0)]
    pub attn_drop: f64,
    /// Stochastic depth: probability of dropping each residual branch per sample (training).
    #[config(default = 0.0)]
    pub drop_path: f64,
    /// Keep the full window and shift even on a smaller map (timm's `always_partition`).
    #[config(default = false)]
    pub always_partition: bool,
}

impl SwinBlockConfig {
    /// The window and shift actually used, per axis: timm's `_calc_window_shift`.
    pub fn window_and_shift(&self) -> ([usize; 2], [usize; 2]) {
        let target = [self.window_size; 2];
        let shift = [self.shift_size; 2];
        if self.always_partition {
            return (target, shift);
        }
        let window: [usize; 2] = std::array::from_fn(|i| self.input_resolution[i].min(target[i]));
        let shift = std::array::from_fn(|i| {
            if self.input_resolution[i] <= window[i] {
                0
            } else {
                shift[i]
            }
        });
        (window, shift)
    }

    /// Builds the block on `device`.
    ///
    /// # Panics
    /// If a size is zero, `shift_size ≥ window_size`, `num_heads` does not divide `dim`
    /// (without `head_dim`), or a dropout probability is outside `[0, 1)` (naming the field).
    pub fn init(&self, device: &Device) -> SwinBlock {
        let [h, w] = self.input_resolution;
        for (field, value) in [
            ("input_resolution[0]", h),
            ("input_resolution[1]", w),
            ("window_size", self.window_size),
        ] {
            assert!(
                value > 0,
                "SwinBlockConfig: {field} must be positive, got 0"
            );
        }
        assert!(
            self.shift_size < self.window_size,
            "SwinBlockConfig: shift_size must be in [0, window_size = {}), got {}",
            self.window_size,
            self.shift_size
        );
        for (field, p) in [
            ("proj_drop", self.proj_drop),
            ("attn_drop", self.attn_drop),
            ("drop_path", self.drop_path),
        ] {
            assert!(
                (0.0..1.0).contains(&p),
                "SwinBlockConfig: {field} must be in [0, 1), got {p}"
            );
        }
        let (window, shift) = self.window_and_shift();
        let hidden = (self.dim as f64 * self.mlp_ratio) as usize;
        assert!(
            hidden > 0,
            "SwinBlockConfig: dim · mlp_ratio must be at least 1, got dim {} and mlp_ratio {}",
            self.dim,
            self.mlp_ratio
        );
        let attn = WindowAttentionConfig::new(self.dim, self.num_heads)
            .with_window_size(window)
            .with_head_dim(self.head_dim)
            .with_qkv_bias(self.qkv_bias)
            .with_attn_drop(self.attn_drop)
            .with_proj_drop(self.proj_drop)
            .init(device);
        SwinBlock {
            norm1: LayerNormConfig::new(self.dim).init(device),
            attn,
            norm2: LayerNormConfig::new(self.dim).init(device),
            mlp: Mlp {
                fc1: LinearConfig::new(self.dim, hidden).init(device),
                fc2: LinearConfig::new(hidden, self.dim).init(device),
                drop: DropoutConfig::new(self.proj_drop).init(),
            },
            drop_path: DropPath {
                prob: self.drop_path,
                training: Param::from_bool(true),
            },
            shift_size: shift,
        }
    }
}

/// timm's `Mlp`: `fc1` → GELU (exact, [`gelu`]) → dropout → `fc2` → dropout.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `dim → hidden`.
    pub fc1: Linear,
    /// `hidden → dim`.
    pub fc2: Linear,
    /// Dropout after each layer.
    pub drop: Dropout,
}

impl Mlp {
    /// # Shapes
    /// - input: `[..., dim]`; output: `[..., dim]`
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let x = self.drop.forward(gelu(linear_layer(&self.fc1, x)));
        self.drop.forward(linear_layer(&self.fc2, x))
    }
}

/// Stochastic depth (Huang et al. 2016; timm's `DropPath`): in training, zeroes a residual
/// branch for a random subset of samples and scales the others by `1 / (1 − prob)`; identity
/// in inference. Like Burn's `Dropout`, "training" means an autodiff device and the
/// `training` flag set.
#[derive(Module, Debug)]
pub struct DropPath {
    /// Probability of dropping the branch of a sample.
    pub prob: f64,
    /// Whether to behave as during training.
    pub training: Param<Flag>,
}

impl DropPath {
    /// # Shapes
    /// - input: `[batch, ...]`; output: the same
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        if !self.training.is_enabled() || !x.device().is_autodiff() || self.prob == 0.0 {
            return x;
        }
        let keep = 1.0 - self.prob;
        let mut shape = [1; D];
        shape[0] = x.dims()[0];
        let mask = Tensor::<D>::random(shape, Distribution::Bernoulli(keep), &x.device());
        x * mask.div_scalar(keep)
    }
}

/// A Swin Transformer block: `x + attn(norm1(x))` over (shifted) windows, then
/// `x + mlp(norm2(x))`, both residual branches through stochastic depth.
///
/// The window and shift are fixed at init from `input_resolution`; any input size works:
/// the (shifted) map is padded at the bottom/right to window multiples, and the shifted-window
/// mask is built for the padded size of each input (timm's `dynamic_mask`; identical to its
/// static mask at `input_resolution`). timm keys: `norm1.*`, `attn.*`, `norm2.*`,
/// `mlp.fc1.*`, `mlp.fc2.*`.
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct SwinBlock {
    /// LayerNorm before attention.
    pub norm1: LayerNorm,
    /// Window attention.
    pub attn: WindowAttention,
    /// LayerNorm before the MLP.
    pub norm2: LayerNorm,
    /// The MLP.
    pub mlp: Mlp,
    /// Stochastic depth on both residual branches.
    pub drop_path: DropPath,
    #[module(skip)]
    shift_size: [usize; 2],
}

impl ModuleDisplay for SwinBlock {
    fn custom_content(&self, content: Content) -> Option<Content> {
        content
            .add("shift_size", &format!("{:?}", self.shift_size))
            .add("norm1", &self.norm1)
            .add("attn", &self.attn)
            .add("norm2", &self.norm2)
            .add("mlp", &self.mlp)
            .add("drop_path", &self.drop_path)
            .optional()
    }
}

impl SwinBlock {
    /// Key map of timm's `SwinTransformerBlock` (same names: `norm1`, `attn`, `norm2`,
    /// `mlp.fc1`, `mlp.fc2`; the `attn_mask` buffer older timm versions saved is ignored by
    /// name, burn-zoo builds the mask per input).
    pub fn key_map(&self) -> crate::weights::KeyMap {
        crate::weights::KeyMap::new()
            .nest("attn", "attn", self.attn.key_map())
            .ignore("^attn_mask$")
    }

    /// The window `[height, width]` in use (after shrinking to a small map).
    pub fn window_size(&self) -> [usize; 2] {
        self.attn.window_size()
    }

    /// The cyclic shift `[down, right]` in use (0 where the map fits one window).
    pub fn shift_size(&self) -> [usize; 2] {
        self.shift_size
    }

    /// # Shapes
    /// - input: `[batch, h, w, dim]` (channels last, as timm)
    /// - output: `[batch, h, w, dim]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let attended = self.window_attention(self.norm1.forward(x.clone()));
        let x = x + self.drop_path.forward(attended);
        let branch = self.mlp.forward(self.norm2.forward(x.clone()));
        x + self.drop_path.forward(branch)
    }

    /// Shift, pad, partition, attend, merge, crop, unshift.
    fn window_attention(&self, x: Tensor<4>) -> Tensor<4> {
        // One operation over the map, except where attention dropout is live (training on
        // an autodiff device), which it does not apply.
        if self.attn.attn_drop.prob == 0.0 || !x.device().is_autodiff() {
            return self.attn.forward_map(x, self.shift_size);
        }
        let [b, h, w, c] = x.dims();
        let [wh, ww] = self.window_size();
        let [sh, sw] = self.shift_size.map(|s| s as i64);
        let shifted = sh != 0 || sw != 0;
        let mut x = if shifted {
            x.roll(&[-sh, -sw], &[1, 2])
        } else {
            x
        };
        let (hp, wp) = (h.div_ceil(wh) * wh, w.div_ceil(ww) * ww);
        let device = x.device();
        if hp > h {
            x = Tensor::cat(vec![x, Tensor::zeros([b, hp - h, w, c], &device)], 1);
        }
        if wp > w {
            x = Tensor::cat(vec![x, Tensor::zeros([b, hp, wp - w, c], &device)], 2);
        }
        let mask = shifted.then(|| {
            let windows = (hp / wh) * (wp / ww);
            let n = wh * ww;
            let values = shifted_window_mask([hp, wp], [wh, ww], self.shift_size);
            Tensor::<3>::from_data(TensorData::new(values, [windows, n, n]), &device)
        });
        let windows = window_partition(x, [wh, ww]);
        let attended = self.attn.forward(windows, mask);
        let x = window_reverse(attended, [wh, ww], [hp, wp]).slice([0..b, 0..h, 0..w, 0..c]);
        if shifted {
            x.roll(&[sh, sw], &[1, 2])
        } else {
            x
        }
    }
}
