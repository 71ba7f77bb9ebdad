//! Swin's (shifted) window attention as one functional operation over a whole map, and the
//! window helpers it is built from (timm's `window_partition`, `window_reverse`,
//! `get_attn_mask`).

use std::ops::Range;

use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::softmax;

/// Options of [`window_attention`].
#[derive(Debug, Clone, PartialEq)]
pub struct WindowAttentionOptions {
    /// Attention heads.
    pub heads: usize,
    /// Window `[height, width]`.
    pub window: [usize; 2],
    /// Cyclic shift `[down, right]` (the map is rolled by `−shift` before it is cut into
    /// windows and back after; `[0, 0]`: W-MSA, else SW-MSA with timm's mask).
    pub shift: [usize; 2],
    /// Factor of the queries (timm: `head_dim^−½`).
    pub scale: f64,
}

impl WindowAttentionOptions {
    /// Options with the given heads, window, shift and query scale.
    pub fn new(heads: usize, window: [usize; 2], shift: [usize; 2], scale: f64) -> Self {
        Self {
            heads,
            window,
            shift,
            scale,
        }
    }
}

/// The attention part of timm's `SwinTransformerBlock._attn` (after the q/k/v projection,
/// before the output projection), on the projection of the whole map: roll by `−shift`, pad
/// the bottom/right to window multiples with the projection of a zero token (`qkv_bias`, as
/// timm pads before projecting), cut into windows, per window and head
/// `softmax(q·scale·kᵀ + rel_bias + mask)·v` (mask: −100 between tokens of different shift
/// regions), merge the windows, crop, roll back.
///
/// On flex with f32 tensors outside autodiff it is one kernel that reads q/k/v from `qkv`
/// in place and writes each token's output to its place in the map (none of the five copies
/// of the map; the softmax in cache with a vectorised `exp`). Elsewhere, and under autodiff,
/// it is composed of Burn's operations.
///
/// # Shapes
/// - `qkv`: `[B, H, W, 3·heads·head_dim]` (q, k, v, each head-major: timm's layout)
/// - `qkv_bias`: `[3·heads·head_dim]`
/// - `rel_bias`: `[heads, wh·ww, wh·ww]`
/// - returns `[B, H, W, heads·head_dim]` (heads concatenated)
///
/// # Panics
/// If the shapes disagree with each other or the options (naming the argument).
pub fn window_attention(
    qkv: Tensor<4>,
    qkv_bias: Tensor<1>,
    rel_bias: Tensor<3>,
    options: WindowAttentionOptions,
) -> Tensor<4> {
    let [b, h, w, c3] = qkv.dims();
    let WindowAttentionOptions {
        heads,
        window,
        shift,
        scale,
    } = options;
    let n = window[0] * window[1];
    assert!(
        heads > 0 && c3.is_multiple_of(3 * heads),
        "window_attention: qkv's last dimension ({c3}) must be 3·heads·head_dim with heads = {heads}"
    );
    assert!(
        n > 0 && shift[0] < window[0] && shift[1] < window[1],
        "window_attention: window {window:?} must be positive and shift {shift:?} below it"
    );
    assert_eq!(
        qkv_bias.dims(),
        [c3],
        "window_attention: qkv_bias must be [{c3}]"
    );
    assert_eq!(
        rel_bias.dims(),
        [heads, n, n],
        "window_attention: rel_bias must be [heads, wh·ww, wh·ww]"
    );
    #[cfg(feature = "flex")]
    {
        use crate::kernels::{ZooKernels, on_flex};
        use burn::backend::Dispatch;
        if !qkv.device().is_autodiff()
            && on_flex(&[
                (qkv.device(), qkv.dtype()),
                (qkv_bias.device(), qkv_bias.dtype()),
                (rel_bias.device(), rel_bias.dtype()),
            ])
        {
            return Tensor::from_dispatch(<Dispatch as ZooKernels>::zoo_window_attention(
                qkv.into_dispatch(),
                qkv_bias.into_dispatch(),
                rel_bias.into_dispatch(),
                heads,
                window,
                shift,
                scale as f32,
            ));
        }
    }
    let [wh, ww] = window;
    let [sh, sw] = shift.map(|s| s as i64);
    let shifted = sh != 0 || sw != 0;
    let device = qkv.device();
    let mut x = if shifted {
        qkv.roll(&[-sh, -sw], &[1, 2])
    } else {
        qkv
    };
    let (hp, wp) = (h.div_ceil(wh) * wh, w.div_ceil(ww) * ww);
    let pad = |rows: usize, cols: usize| {
        qkv_bias
            .clone()
            .reshape([1, 1, 1, c3])
            .expand([b, rows, cols, c3])
    };
    if hp > h {
        x = Tensor::cat(vec![x, pad(hp - h, w)], 1);
    }
    if wp > w {
        x = Tensor::cat(vec![x, pad(hp, wp - w)], 2);
    }
    let windows = window_partition(x, window);
    let bn = windows.dims()[0];
    let head_dim = c3 / (3 * heads);
    let qkv: Tensor<5> = windows
        .reshape([bn, n, 3, heads, head_dim])
        .permute([2, 0, 3, 1, 4]);
    let [q, k, v]: [Tensor<5>; 3] = qkv.chunk(3, 0).try_into().expect("three chunks of q, k, v");
    let [q, k, v] = [q, k, v].map(|t| t.reshape([bn, heads, n, head_dim]));
    let mut attn = q
        .mul_scalar(scale)
        .matmul(k.swap_dims(2, 3))
        .add(rel_bias.unsqueeze_dim(0));
    if shifted {
        let nw = (hp / wh) * (wp / ww);
        let mask = Tensor::<3>::from_data(
            TensorData::new(shifted_window_mask([hp, wp], window, shift), [nw, n, n]),
            &device,
        );
        attn = (attn.reshape([b, nw, heads, n, n]) + mask.reshape([1, nw, 1, n, n]))
            .reshape([bn, heads, n, n]);
    }
    let out = softmax(attn, 3)
        .matmul(v)
        .swap_dims(1, 2)
        .reshape([bn, n, heads * head_dim]);
    let x = window_reverse(out, window, [hp, wp]).slice([0..b, 0..h, 0..w, 0..heads * head_dim]);
    if shifted {
        x.roll(&[sh, sw], &[1, 2])
    } else {
        x
    }
}

/// Splits `[B, H, W, C]` into non-overlapping windows `[B · nW, wh·ww, C]` (windows row-major,
/// tokens row-major inside each window; `H`, `W` multiples of the window).
pub fn window_partition(x: Tensor<4>, window: [usize; 2]) -> Tensor<3> {
    let [b, h, w, c] = x.dims();
    let [wh, ww] = window;
    x.reshape([b, h / wh, wh, w / ww, ww, c])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b * (h / wh) * (w / ww), wh * ww, c])
}

/// Inverse of [`window_partition`]: `[B · nW, wh·ww, C]` back to `[B, H, W, C]`.
pub fn window_reverse(windows: Tensor<3>, window: [usize; 2], size: [usize; 2]) -> Tensor<4> {
    let [bn, _, c] = windows.dims();
    let [wh, ww] = window;
    let [h, w] = size;
    let b = bn / ((h / wh) * (w / ww));
    windows
        .reshape([b, h / wh, w / ww, wh, ww, c])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b, h, w, c])
}

/// The SW-MSA mask of timm's `get_attn_mask` for a padded map of `size`: the map is cut into
/// up to 3×3 regions by the slices `[0, −window)`, `[−window, −shift)`, `[−shift, end)` of
/// each axis (Python semantics, so a zero shift leaves one region along that axis), and
/// tokens of one window in different regions get −100. `[nW, N, N]`, flattened.
pub fn shifted_window_mask(size: [usize; 2], window: [usize; 2], shift: [usize; 2]) -> Vec<f32> {
    let regions = |len: usize, window: usize, shift: usize| -> Vec<usize> {
        let (len, window, shift) = (len as isize, window as isize, shift as isize);
        let mut label = vec![0usize; len as usize];
        let slices = [(0, Some(-window)), (-window, Some(-shift)), (-shift, None)];
        for (i, (start, end)) in slices.into_iter().enumerate() {
            for j in py_range(start, end, len) {
                label[j] = i;
            }
        }
        label
    };
    let [h, w] = size;
    let rows = regions(h, window[0], shift[0]);
    let cols = regions(w, window[1], shift[1]);
    let [wh, ww] = window;
    let mut mask = Vec::with_capacity((h / wh) * (w / ww) * (wh * ww).pow(2));
    for wy in 0..h / wh {
        for wx in 0..w / ww {
            let labels: Vec<usize> = (0..wh)
                .flat_map(|y| (0..ww).map(move |x| (wy * wh + y, wx * ww + x)))
                .map(|(y, x)| rows[y] * 3 + cols[x])
                .collect();
            for &a in &labels {
                mask.extend(labels.iter().map(|&b| if a == b { 0.0 } else { -100.0 }));
            }
        }
    }
    mask
}

/// The indices a Python slice `[start:end]` selects from a sequence of `len` items.
fn py_range(start: isize, end: Option<isize>, len: isize) -> Range<usize> {
    let resolve = |i: isize| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let start = resolve(start);
    let end = end.map_or(len, resolve);
    start as usize..end.max(start) as usize
}
