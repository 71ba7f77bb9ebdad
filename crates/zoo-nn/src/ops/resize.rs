//! Resizing with `torch.nn.functional.interpolate` semantics.
//!
//! Separable: each axis is resampled by a few gathers (`select`) weighted per output index,
//! with tap indices and weights computed on the host from the sizes alone. The backward of
//! `select` is a scatter-add, so gradients are exact on every backend (Burn 0.22.1's
//! `interpolate` backward panics for bilinear/bicubic on ndarray and wgpu). On flex the same
//! taps drive a host kernel that resamples whole rows (forward and backward) instead.

use burn::prelude::*;

use super::sampling::{floats, ints};

/// Interpolation kernel of [`resize`].
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum ResizeMode {
    /// PyTorch `mode="nearest"`: source index `floor(dst · in / out)` (a legacy off-centre rule).
    Nearest,
    /// PyTorch `mode="nearest-exact"`: source index `floor((dst + 0.5) · in / out)`.
    NearestExact,
    /// PyTorch `mode="bilinear"` (no antialiasing).
    Bilinear,
    /// PyTorch `mode="bicubic"`, cubic convolution with `a = −0.75`, edges replicated.
    Bicubic,
}

/// Options of [`resize`].
#[derive(Config, Debug, PartialEq)]
pub struct ResizeOptions {
    /// Interpolation kernel.
    pub mode: ResizeMode,
    /// Map corner pixel centres onto each other (PyTorch's `align_corners`). Only valid for
    /// `Bilinear` and `Bicubic`; torchvision, timm and smp use `false` except smp's
    /// DeepLabV3+ decoder.
    pub align_corners: bool,
}

/// Resizes the last two dimensions to `size`, as `F.interpolate(input, size=size, mode=…,
/// align_corners=…)`.
///
/// # Shapes
/// - `input`: `[N, C, H, W]`
/// - returns `[N, C, size[0], size[1]]`
///
/// # Panics
/// If `size` or the input's spatial size has a zero, or `align_corners` is set with a nearest
/// mode (as PyTorch).
pub fn resize(input: Tensor<4>, size: [usize; 2], options: ResizeOptions) -> Tensor<4> {
    let [_, _, h, w] = input.dims();
    assert!(
        size[0] > 0 && size[1] > 0,
        "resize: size must be positive, got {size:?}"
    );
    assert!(
        h > 0 && w > 0,
        "resize: input spatial size must be positive, got {:?}",
        input.dims()
    );
    assert!(
        !(options.align_corners
            && matches!(options.mode, ResizeMode::Nearest | ResizeMode::NearestExact)),
        "resize: align_corners can only be set with Bilinear or Bicubic, got {:?}",
        options.mode
    );
    #[cfg(feature = "flex")]
    if crate::kernels::on_flex(&[(input.device(), input.dtype())]) {
        use crate::kernels::ZooKernels;
        return Tensor::from_dispatch(<burn::backend::Dispatch as ZooKernels>::zoo_resize(
            input.into_dispatch(),
            size,
            options,
        ));
    }
    resize_generic(input, size, &options)
}

/// [`resize`] with tensor operations only (any backend, differentiable through `select`).
pub(crate) fn resize_generic(
    input: Tensor<4>,
    size: [usize; 2],
    options: &ResizeOptions,
) -> Tensor<4> {
    let [_, _, h, w] = input.dims();
    let x = resize_axis(input, 3, w, size[1], options);
    resize_axis(x, 2, h, size[0], options)
}

/// Whether an axis is copied unchanged: every mode but bicubic maps each index onto itself
/// at scale 1 (with or without align_corners).
fn identity(len_in: usize, len_out: usize, options: &ResizeOptions) -> bool {
    len_in == len_out && !matches!(options.mode, ResizeMode::Bicubic)
}

/// The taps of one axis for the host kernel; `None` where the axis is copied unchanged.
#[cfg(feature = "flex")]
pub(crate) fn host_taps(
    len_in: usize,
    len_out: usize,
    options: &ResizeOptions,
) -> Option<crate::kernels::AxisTaps> {
    if identity(len_in, len_out, options) {
        return None;
    }
    let taps = axis_taps(len_in, len_out, options);
    let index = taps
        .iter()
        .map(|(i, _)| i.iter().map(|&i| i as usize).collect())
        .collect();
    let weight = taps
        .iter()
        .map(|(_, w)| w.clone())
        .collect::<Option<Vec<_>>>();
    Some(crate::kernels::AxisTaps {
        len_out,
        index,
        weight,
    })
}

fn resize_axis(
    x: Tensor<4>,
    dim: usize,
    len_in: usize,
    len_out: usize,
    options: &ResizeOptions,
) -> Tensor<4> {
    if identity(len_in, len_out, options) {
        return x;
    }
    let device = x.device();
    let taps = axis_taps(len_in, len_out, options);
    let mut shape = [1; 4];
    shape[dim] = len_out;
    let mut out: Option<Tensor<4>> = None;
    for (index, weight) in taps {
        let read = x.clone().select(dim, ints(index, &device));
        let term = match weight {
            Some(w) => read * floats(w, &device).reshape(shape),
            None => read,
        };
        out = Some(match out {
            Some(acc) => acc + term,
            None => term,
        });
    }
    out.expect("every mode has at least one tap")
}

/// Per tap: source index of every output position, and its weight (`None` = 1).
type Taps = Vec<(Vec<i64>, Option<Vec<f32>>)>;

/// Tap indices and weights of one axis, in f32 as PyTorch's CPU kernels compute them.
fn axis_taps(len_in: usize, len_out: usize, options: &ResizeOptions) -> Taps {
    let last = len_in as i64 - 1;
    // area_pixel_compute_scale: the scale used by the linear and cubic kernels.
    let scale = if options.align_corners {
        if len_out > 1 {
            (len_in as f32 - 1.0) / (len_out as f32 - 1.0)
        } else {
            0.0
        }
    } else {
        len_in as f32 / len_out as f32
    };
    let source = |dst: usize, cubic: bool| {
        if options.align_corners {
            scale * dst as f32
        } else {
            let src = scale * (dst as f32 + 0.5) - 0.5;
            if !cubic && src < 0.0 { 0.0 } else { src }
        }
    };
    // guard_index_and_lambda: integer part (clamped to the last index) and fraction in [0, 1].
    let split = |src: f32| {
        let index = (src.floor() as i64).min(last);
        (index, (src - index as f32).clamp(0.0, 1.0))
    };
    let nearest_scale = len_in as f32 / len_out as f32;
    match options.mode {
        ResizeMode::Nearest => {
            let index = (0..len_out)
                .map(|d| ((d as f32 * nearest_scale).floor() as i64).min(last))
                .collect();
            vec![(index, None)]
        }
        ResizeMode::NearestExact => {
            let index = (0..len_out)
                .map(|d| (((d as f32 + 0.5) * nearest_scale).floor() as i64).min(last))
                .collect();
            vec![(index, None)]
        }
        ResizeMode::Bilinear => {
            let (mut i0, mut i1, mut w0, mut w1) = (vec![], vec![], vec![], vec![]);
            for d in 0..len_out {
                let (index, lambda) = split(source(d, false));
                i0.push(index);
                i1.push(if index < last { index + 1 } else { index });
                w0.push(1.0 - lambda);
                w1.push(lambda);
            }
            vec![(i0, Some(w0)), (i1, Some(w1))]
        }
        ResizeMode::Bicubic => {
            let mut taps: Taps = (0..4).map(|_| (Vec::new(), Some(Vec::new()))).collect();
            for d in 0..len_out {
                let (index, t) = split(source(d, true));
                let coeffs = cubic_coefficients(t);
                for (j, (idx, w)) in taps.iter_mut().enumerate() {
                    idx.push((index - 1 + j as i64).clamp(0, last));
                    w.as_mut().unwrap().push(coeffs[j]);
                }
            }
            taps
        }
    }
}

/// Keys' cubic convolution weights for the 4 taps around fraction `t`, with PyTorch's
/// `a = −0.75`.
fn cubic_coefficients(t: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let near = |x: f32| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f32| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}
