//! Deformable convolution v1 (Dai et al. 2017) and v2 / modulated (Zhu et al. 2019);
//! mirrors `torchvision.ops.deform_conv2d`.
//!
//! Built from a bilinear gather (deformable im2col) and one grouped matmul, so Burn's autodiff
//! derives every gradient — input, offset, mask, weight and bias — on every backend. (Burn
//! 0.22.1's own `deform_conv2d` has wrong offset/mask gradients on ndarray and wgpu.)

use burn::prelude::*;

use super::sampling::{Border, bilinear_read, floats, ints};

/// Options of [`deform_conv2d`]: stride, padding and dilation as `[height, width]`.
#[derive(Config, Debug, PartialEq)]
pub struct DeformConv2dOptions {
    /// Stride of the sliding window.
    pub stride: [usize; 2],
    /// Zero padding added to both sides of the input.
    pub padding: [usize; 2],
    /// Spacing between kernel taps.
    pub dilation: [usize; 2],
}

/// Deformable 2-D convolution: each kernel tap reads the input at its regular position plus a
/// learned offset (bilinear, zero outside the map), optionally scaled by a learned mask (v2).
///
/// Weight groups (`C_in / weight.dims()[1]`) and offset groups (`offset.dims()[1] / (2·KH·KW)`)
/// are inferred from the shapes, as torchvision does.
///
/// # Shapes
/// - `input`: `[N, C_in, H, W]`
/// - `offset`: `[N, 2 · offset_groups · KH · KW, H_out, W_out]`, for group `g` and tap
///   `k = kh · KW + kw` the y shift at channel `2(g·KH·KW + k)` and the x shift right after
/// - `weight`: `[C_out, C_in / groups, KH, KW]`
/// - `mask`: `[N, offset_groups · KH · KW, H_out, W_out]` (v2), or `None` (v1)
/// - `bias`: `[C_out]`
/// - returns `[N, C_out, H_out, W_out]`, `H_out = (H + 2·pad − dil·(KH − 1) − 1) / stride + 1`
///
/// # Panics
/// If a shape is inconsistent (the message names the argument and both shapes).
pub fn deform_conv2d(
    input: Tensor<4>,
    offset: Tensor<4>,
    weight: Tensor<4>,
    mask: Option<Tensor<4>>,
    bias: Option<Tensor<1>>,
    options: DeformConv2dOptions,
) -> Tensor<4> {
    const OP: &str = "deform_conv2d";
    let [n, c_in, h, w] = input.dims();
    let [c_out, c_per_group, kh, kw] = weight.dims();
    let [sh, sw] = options.stride;
    let [dh, dw] = options.dilation;
    let [pad_h, pad_w] = options.padding;
    assert!(
        sh > 0 && sw > 0 && dh > 0 && dw > 0,
        "{OP}: stride and dilation must be positive, got stride {:?}, dilation {:?}",
        options.stride,
        options.dilation
    );
    assert!(
        kh > 0 && kw > 0 && c_per_group > 0 && c_in % c_per_group == 0,
        "{OP}: weight {:?} must be [C_out, C_in / groups, KH, KW] with C_in = {c_in} a multiple of its dim 1",
        weight.dims()
    );
    let groups = c_in / c_per_group;
    assert!(
        c_out % groups == 0,
        "{OP}: C_out ({c_out}) must be a multiple of the weight groups ({groups})"
    );
    let span_h = dh * (kh - 1) + 1;
    let span_w = dw * (kw - 1) + 1;
    assert!(
        h + 2 * pad_h >= span_h && w + 2 * pad_w >= span_w,
        "{OP}: the dilated kernel ({span_h}×{span_w}) is larger than the padded input ({}×{})",
        h + 2 * pad_h,
        w + 2 * pad_w
    );
    let (h_out, w_out) = (
        (h + 2 * pad_h - span_h) / sh + 1,
        (w + 2 * pad_w - span_w) / sw + 1,
    );
    let taps = kh * kw;
    let [on, oc, oh, ow] = offset.dims();
    assert!(
        on == n && oc > 0 && oc % (2 * taps) == 0 && oh == h_out && ow == w_out,
        "{OP}: offset must be [N, 2·offset_groups·KH·KW, H_out, W_out] = [{n}, 2·G·{taps}, {h_out}, {w_out}], got {:?}",
        offset.dims()
    );
    let offset_groups = oc / (2 * taps);
    assert!(
        c_in % offset_groups == 0,
        "{OP}: C_in ({c_in}) must be a multiple of the offset groups ({offset_groups})"
    );
    if let Some(mask) = &mask {
        assert!(
            mask.dims() == [n, offset_groups * taps, h_out, w_out],
            "{OP}: mask must be [N, offset_groups·KH·KW, H_out, W_out] = {:?}, got {:?}",
            [n, offset_groups * taps, h_out, w_out],
            mask.dims()
        );
    }
    if let Some(bias) = &bias {
        assert!(
            bias.dims() == [c_out],
            "{OP}: bias must be [C_out] = [{c_out}], got {:?}",
            bias.dims()
        );
    }
    let device = input.device();
    let cg = c_in / offset_groups;
    let l = h_out * w_out;
    let points = n * offset_groups * taps * l;

    // Row table [(n, g, y, x), c] of each offset group's channels.
    let table = input
        .reshape([n, offset_groups, cg, h * w])
        .permute([0, 1, 3, 2])
        .reshape([n * offset_groups * h * w, cg]);

    // Regular sampling grid (per tap and output position), broadcast over (n, g).
    let mut base_y = Vec::with_capacity(taps * l);
    let mut base_x = Vec::with_capacity(taps * l);
    for i in 0..kh {
        for j in 0..kw {
            for oy in 0..h_out {
                for ox in 0..w_out {
                    base_y.push((oy * sh + i * dh) as f32 - pad_h as f32);
                    base_x.push((ox * sw + j * dw) as f32 - pad_w as f32);
                }
            }
        }
    }
    let grid = |v: Vec<f32>| floats(v, &device).reshape([1, taps * l]);
    let offset = offset.reshape([n * offset_groups, taps, 2, l]);
    let shift = |c: usize| {
        offset
            .clone()
            .slice([0..n * offset_groups, 0..taps, c..c + 1, 0..l])
            .reshape([n * offset_groups, taps * l])
    };
    let y = (shift(0) + grid(base_y)).reshape([points]);
    let x = (shift(1) + grid(base_x)).reshape([points]);
    let plane_row: Vec<i64> = (0..n * offset_groups)
        .flat_map(|p| std::iter::repeat_n((p * h * w) as i64, taps * l))
        .collect();
    let weight_per_point = match mask {
        Some(mask) => mask.reshape([points]),
        None => Tensor::ones([points], &device),
    };
    let sampled = bilinear_read(
        table,
        [h, w],
        y,
        x,
        ints(plane_row, &device),
        weight_per_point,
        Border::Zeros,
    );

    // Columns [groups, N·L, (C_in/groups)·KH·KW] with channel-major (c, kh, kw) order, as the
    // weight is laid out.
    let k_dim = c_per_group * taps;
    let columns = sampled
        .reshape([n, offset_groups, taps, l, cg])
        .permute([0, 3, 1, 4, 2])
        .reshape([n, l, groups, k_dim])
        .permute([2, 0, 1, 3])
        .reshape([groups, n * l, k_dim]);
    let weight = weight
        .reshape([groups, c_out / groups, k_dim])
        .swap_dims(1, 2);
    let out = columns
        .matmul(weight)
        .reshape([groups, n, l, c_out / groups])
        .permute([1, 0, 3, 2])
        .reshape([n, c_out, h_out, w_out]);
    match bias {
        Some(bias) => out + bias.reshape([1, c_out, 1, 1]),
        None => out,
    }
}
