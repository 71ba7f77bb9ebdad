//! ROI Align (Mask R-CNN, He et al. 2017); mirrors `torchvision.ops.roi_align`.

use burn::prelude::*;

use super::sampling::{
    Border, HostRois, RoiBins, RoiGrid, SamplePlan, channels_last_table, check_output_size,
    max_points, read_rois,
};

/// Options of [`roi_align`]; names and meaning as `torchvision.ops.roi_align`.
#[derive(Config, Debug, PartialEq)]
pub struct RoiAlignOptions {
    /// Output `[height, width]` of each pooled region.
    pub output_size: [usize; 2],
    /// Factor from ROI (input-image) coordinates to feature-map coordinates, e.g. `1/16`.
    pub spatial_scale: f32,
    /// Sampling points per bin along each axis; `<= 0` is adaptive: `ceil(roi_size / output_size)`.
    pub sampling_ratio: i32,
    /// Shift the box by −0.5 pixel so that pixel centres line up (Detectron2's `ROIAlignV2`).
    /// When false, ROIs smaller than a pixel are enlarged to 1×1, as torchvision does.
    pub aligned: bool,
}

/// ROI Align: average of bilinear samples in each bin of each region.
///
/// # Shapes
/// - `input`: `[N, C, H, W]`
/// - `rois`: `[K, 5]`, rows `(batch index, x1, y1, x2, y2)` in input-image coordinates
/// - returns `[K, C, output_size[0], output_size[1]]`
///
/// Differentiable with respect to `input` (ROIs are constants, as in torchvision). Samples
/// beyond one pixel outside the map read zero; others are clamped to the edge.
///
/// # Panics
/// If `rois` is not `[K, 5]`, a batch index is outside `0..N`, a coordinate is not finite, or
/// `output_size` has a zero.
pub fn roi_align(input: Tensor<4>, rois: Tensor<2>, options: RoiAlignOptions) -> Tensor<4> {
    const OP: &str = "roi_align";
    check_output_size(OP, options.output_size);
    let rois = read_rois(OP, rois, input.dims()[0]);
    roi_align_host(input, &rois, &options)
}

/// [`roi_align`] with ROIs already read and validated on the host.
pub(crate) fn roi_align_host(
    input: Tensor<4>,
    rois: &HostRois,
    options: &RoiAlignOptions,
) -> Tensor<4> {
    let [_, channels, height, width] = input.dims();
    let [ph, pw] = options.output_size;
    let device = input.device();
    if rois.len() == 0 {
        // Before the flex kernel, which expects at least one ROI.
        return Tensor::zeros([0, channels, ph, pw], &device);
    }
    let offset = if options.aligned { 0.5 } else { 0.0 };
    let grids = RoiGrid::for_boxes(
        &rois.boxes,
        options.spatial_scale,
        offset,
        !options.aligned,
        options.output_size,
        options.sampling_ratio,
    );
    #[cfg(feature = "flex")]
    if crate::kernels::on_flex(&[(input.device(), input.dtype())]) {
        use crate::kernels::ZooKernels;
        let taps = bilinear_taps(&grids, rois, options.output_size, [height, width]);
        return Tensor::from_dispatch(<burn::backend::Dispatch as ZooKernels>::zoo_roi_pool(
            input.into_dispatch(),
            std::sync::Arc::new(taps),
        ));
    }
    let per_bin = max_points(&grids);
    let table = channels_last_table(input);
    let plane = (height * width) as i64;
    RoiBins {
        output_size: options.output_size,
        channels,
        per_roi: 4 * ph * pw * per_bin * channels,
    }
    .run(
        rois,
        &device,
        |k| SamplePlan::with_capacity(k * ph * pw * per_bin, per_bin),
        |plan, r, y, x| grids[r].push_bin(plan, y, x, rois.batch[r] as i64 * plane),
        |plan, _| plan.read(table.clone(), [height, width], Border::Clamp),
    )
}

/// The bilinear taps of every bin for the host kernel, in the float order of the generic path
/// (`Border::Clamp`: a point beyond one pixel outside the map reads zero, others are clamped
/// to the edge; each read weighted by `1 / count` of its bin).
#[cfg(feature = "flex")]
fn bilinear_taps(
    grids: &[RoiGrid],
    rois: &HostRois,
    [ph, pw]: [usize; 2],
    [height, width]: [usize; 2],
) -> crate::kernels::RoiTaps {
    // (low index, high index, low weight, high weight) along one axis, or None outside.
    let axis = |coord: f32, size: usize| {
        if !(coord >= -1.0 && coord <= size as f32) {
            return None;
        }
        let c = coord.clamp(0.0, size as f32 - 1.0);
        let lo = c.floor();
        let frac = c - lo;
        let lo = lo as usize;
        Some((lo, (lo + 1).min(size - 1), 1.0 - frac, frac))
    };
    let mut taps = crate::kernels::RoiTaps::new(rois.batch.clone(), [ph, pw]);
    for grid in grids {
        let weight = 1.0 / (grid.grid_h * grid.grid_w).max(1) as f32;
        for y in 0..ph {
            for x in 0..pw {
                for iy in 0..grid.grid_h {
                    let Some((y0, y1, wy0, wy1)) = axis(grid.y(y, iy), height) else {
                        continue;
                    };
                    for ix in 0..grid.grid_w {
                        let Some((x0, x1, wx0, wx1)) = axis(grid.x(x, ix), width) else {
                            continue;
                        };
                        taps.push(y0 * width + x0, wy0 * wx0 * weight);
                        taps.push(y0 * width + x1, wy0 * wx1 * weight);
                        taps.push(y1 * width + x0, wy1 * wx0 * weight);
                        taps.push(y1 * width + x1, wy1 * wx1 * weight);
                    }
                }
                taps.end_bin();
            }
        }
    }
    taps
}
