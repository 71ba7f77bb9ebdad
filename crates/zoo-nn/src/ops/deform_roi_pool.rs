//! Deformable ROI pooling (Deformable ConvNets, Dai et al. 2017; DCNv2's modulated variant
//! uses the same op); mirrors mmcv's `deform_roi_pool`.

use burn::prelude::*;

use super::sampling::{
    Border, RoiBins, RoiGrid, SamplePlan, channels_last_table, check_output_size, floats,
    max_points, read_rois,
};

/// Options of [`deform_roi_pool`]; as mmcv's `DeformRoIPool`.
#[derive(Config, Debug, PartialEq)]
pub struct DeformRoiPoolOptions {
    /// Output `[height, width]`.
    pub output_size: [usize; 2],
    /// Factor from ROI coordinates to feature-map coordinates.
    pub spatial_scale: f32,
    /// Sampling points per bin along each axis; `<= 0` is adaptive.
    pub sampling_ratio: i32,
    /// Scale of the learned offsets: a bin moves by `gamma * roi_size * offset`.
    pub gamma: f32,
}

/// Deformable ROI pooling: ROI Align (with the −0.5 pixel shift) whose bins are each moved by a
/// learned offset, normalised by the ROI size.
///
/// # Shapes
/// - `input`: `[N, C, H, W]`
/// - `rois`: `[K, 5]`, rows `(batch index, x1, y1, x2, y2)`
/// - `offset`: `[K, 2, PH, PW]`, channel 0 the x (width) shift, channel 1 the y shift;
///   `None` is plain aligned ROI Align
/// - returns `[K, C, PH, PW]`
///
/// Differentiable with respect to `input` and `offset`.
///
/// # Panics
/// If `offset` is not `[K, 2, PH, PW]`, or as [`roi_align`](super::roi_align).
pub fn deform_roi_pool(
    input: Tensor<4>,
    rois: Tensor<2>,
    offset: Option<Tensor<4>>,
    options: DeformRoiPoolOptions,
) -> Tensor<4> {
    const OP: &str = "deform_roi_pool";
    check_output_size(OP, options.output_size);
    let [batch, channels, height, width] = input.dims();
    let [ph, pw] = options.output_size;
    let k_total = rois.dims()[0];
    if let Some(offset) = &offset {
        assert!(
            offset.dims() == [k_total, 2, ph, pw],
            "{OP}: offset must have shape [K, 2, output_size[0], output_size[1]] = {:?}, got {:?}",
            [k_total, 2, ph, pw],
            offset.dims()
        );
    }
    let rois = read_rois(OP, rois, batch);
    let device = input.device();
    let grids = RoiGrid::for_boxes(
        &rois.boxes,
        options.spatial_scale,
        0.5,
        false,
        options.output_size,
        options.sampling_ratio,
    );
    let per_bin = max_points(&grids);
    let table = channels_last_table(input);
    let plane = (height * width) as i64;
    // The plan, and per point the shift scale `gamma * roi_size` of its ROI.
    type Plan = (SamplePlan, Vec<f32>, Vec<f32>);
    RoiBins {
        output_size: options.output_size,
        channels,
        per_roi: 4 * ph * pw * per_bin * channels,
    }
    .run(
        &rois,
        &device,
        |k| -> Plan {
            let points = k * ph * pw * per_bin;
            (
                SamplePlan::with_capacity(points, per_bin),
                Vec::with_capacity(points),
                Vec::with_capacity(points),
            )
        },
        |(plan, scale_y, scale_x), r, y, x| {
            let g = &grids[r];
            let [roi_h, roi_w] = g.size;
            g.push_bin(plan, y, x, rois.batch[r] as i64 * plane);
            scale_y.extend(std::iter::repeat_n(options.gamma * roi_h, per_bin));
            scale_x.extend(std::iter::repeat_n(options.gamma * roi_w, per_bin));
        },
        |(mut plan, scale_y, scale_x), chunk| {
            let k = chunk.len();
            let y = floats(std::mem::take(&mut plan.y), &device);
            let x = floats(std::mem::take(&mut plan.x), &device);
            let (y, x) = match &offset {
                None => (y, x),
                Some(offset) => {
                    // [k, 2, PH, PW] → per point: the bin's shift, repeated over its samples.
                    let per_point = |channel: usize| {
                        offset
                            .clone()
                            .slice([chunk.clone(), channel..channel + 1, 0..ph, 0..pw])
                            .reshape([k * ph * pw, 1])
                            .expand([k * ph * pw, per_bin])
                            .reshape([k * ph * pw * per_bin])
                    };
                    (
                        y + per_point(1) * floats(scale_y, &device),
                        x + per_point(0) * floats(scale_x, &device),
                    )
                }
            };
            plan.read_at(table.clone(), [height, width], y, x, Border::Clamp)
        },
    )
}
