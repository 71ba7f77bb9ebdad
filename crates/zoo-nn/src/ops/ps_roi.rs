//! Position-sensitive ROI pooling and align (R-FCN, Dai et al. 2016); mirror
//! `torchvision.ops.ps_roi_pool` and `torchvision.ops.ps_roi_align`.
//!
//! Output bin `(ph, pw)` of output channel `c` reads input channel
//! `(c * PH + ph) * PW + pw`, so the input has `C_out * PH * PW` channels.

use burn::prelude::*;

use super::roi_pool::{QuantizedBins, max_taps};
use super::sampling::{
    Border, RoiBins, RoiGrid, SamplePlan, TapPlan, check_output_size, floats, ints, max_points,
    read_rois, weighted_rows,
};

/// Options of [`ps_roi_align`]; as `torchvision.ops.ps_roi_align`.
#[derive(Config, Debug, PartialEq)]
pub struct PsRoiAlignOptions {
    /// Output `[height, width]`; the input channels must be a multiple of their product.
    pub output_size: [usize; 2],
    /// Factor from ROI coordinates to feature-map coordinates.
    pub spatial_scale: f32,
    /// Sampling points per bin along each axis; `<= 0` is adaptive.
    pub sampling_ratio: i32,
}

/// Options of [`ps_roi_pool`]; as `torchvision.ops.ps_roi_pool`.
#[derive(Config, Debug, PartialEq)]
pub struct PsRoiPoolOptions {
    /// Output `[height, width]`; the input channels must be a multiple of their product.
    pub output_size: [usize; 2],
    /// Factor from ROI coordinates to feature-map coordinates.
    pub spatial_scale: f32,
}

/// Checks the channel count and lays the input out as one row table per bin position:
/// `[PH * PW * N * H * W, C_out]`, group `g = ph * PW + pw` first.
fn position_table(op: &str, input: Tensor<4>, [ph, pw]: [usize; 2]) -> Tensor<2> {
    let [n, c, h, w] = input.dims();
    assert!(
        c % (ph * pw) == 0,
        "{op}: input channels ({c}) must be a multiple of output_size[0] * output_size[1] ({ph} * {pw} = {})",
        ph * pw
    );
    let groups = ph * pw;
    input
        .reshape([n, c / groups, groups, h * w])
        .permute([2, 0, 3, 1])
        .reshape([groups * n * h * w, c / groups])
}

/// Position-sensitive ROI Align.
///
/// # Shapes
/// - `input`: `[N, C_out * PH * PW, H, W]`
/// - `rois`: `[K, 5]`, rows `(batch index, x1, y1, x2, y2)`
/// - returns `[K, C_out, PH, PW]`
///
/// ROIs are shifted by −0.5 pixel (always, as torchvision). A bin with no sample (an empty ROI
/// under adaptive sampling) is 0, where torchvision divides 0 by 0.
///
/// # Panics
/// If the channels are not a multiple of `PH * PW`, or as [`roi_align`](super::roi_align).
pub fn ps_roi_align(input: Tensor<4>, rois: Tensor<2>, options: PsRoiAlignOptions) -> Tensor<4> {
    const OP: &str = "ps_roi_align";
    check_output_size(OP, options.output_size);
    let [batch, _, height, width] = input.dims();
    let [ph, pw] = options.output_size;
    let table = position_table(OP, input, options.output_size);
    let channels = table.dims()[1];
    let device = table.device();
    let rois = read_rois(OP, rois, batch);
    let grids = RoiGrid::for_boxes(
        &rois.boxes,
        options.spatial_scale,
        0.5,
        false,
        options.output_size,
        options.sampling_ratio,
    );
    let per_bin = max_points(&grids);
    let plane = (height * width) as i64;
    RoiBins {
        output_size: options.output_size,
        channels,
        per_roi: 4 * ph * pw * per_bin * channels,
    }
    .run(
        &rois,
        &device,
        |k| SamplePlan::with_capacity(k * ph * pw * per_bin, per_bin),
        |plan, r, y, x| {
            let group = (y * pw + x) * batch + rois.batch[r];
            grids[r].push_bin(plan, y, x, group as i64 * plane);
        },
        |plan, _| plan.read(table.clone(), [height, width], Border::Clamp),
    )
}

/// Position-sensitive ROI pooling: average over integer-quantised bins.
///
/// # Shapes
/// - `input`: `[N, C_out * PH * PW, H, W]`
/// - `rois`: `[K, 5]`, rows `(batch index, x1, y1, x2, y2)`
/// - returns `[K, C_out, PH, PW]`
///
/// Bins are clipped to `[0, H - 1]` × `[0, W - 1]` as torchvision's forward does (its CPU
/// backward clips to `H`/`W` instead, so its gradient disagrees with its own forward for bins
/// touching the last row or column; ours is the gradient of the forward).
///
/// # Panics
/// If the channels are not a multiple of `PH * PW`, or as [`roi_align`](super::roi_align).
pub fn ps_roi_pool(input: Tensor<4>, rois: Tensor<2>, options: PsRoiPoolOptions) -> Tensor<4> {
    const OP: &str = "ps_roi_pool";
    check_output_size(OP, options.output_size);
    let [batch, _, height, width] = input.dims();
    let [ph, pw] = options.output_size;
    let table = position_table(OP, input, options.output_size);
    let channels = table.dims()[1];
    let device = table.device();
    let rois = read_rois(OP, rois, batch);
    let limit = [height.saturating_sub(1), width.saturating_sub(1)];
    let bins: Vec<QuantizedBins> = rois
        .boxes
        .iter()
        .map(|b| QuantizedBins::new(*b, options.spatial_scale, options.output_size, 0, limit))
        .collect();
    let taps = max_taps(&bins);
    let plane = (height * width) as i64;
    RoiBins {
        output_size: options.output_size,
        channels,
        per_roi: ph * pw * taps * channels,
    }
    .run(
        &rois,
        &device,
        |k| TapPlan::new(k * ph * pw, taps),
        |plan, r, y, x| {
            let group = (y * pw + x) * batch + rois.batch[r];
            let b = &bins[r];
            plan.push_bin(b.rows[y], b.cols[x], group as i64 * plane, width);
        },
        |plan, _| {
            let n_bins = plan.rows.len() / taps;
            let weights: Vec<f32> = plan
                .valid
                .chunks_exact(taps)
                .flat_map(|bin| {
                    let area: f32 = bin.iter().sum();
                    bin.iter()
                        .map(move |v| if area > 0.0 { v / area } else { 0.0 })
                })
                .collect();
            weighted_rows(
                table.clone(),
                ints(plan.rows, &device),
                floats(weights, &device),
            )
            .reshape([n_bins, taps, channels])
            .sum_dim(1)
            .reshape([n_bins, channels])
        },
    )
}
