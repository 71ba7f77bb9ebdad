//! ROI Pooling (Fast R-CNN, Girshick 2015); mirrors `torchvision.ops.roi_pool`.

use burn::prelude::*;

use super::sampling::{
    HostRois, RoiBins, TapPlan, channels_last_table, check_output_size, floats, ints, read_rois,
    select_rows,
};

/// Options of [`roi_pool`]; names and meaning as `torchvision.ops.roi_pool`.
#[derive(Config, Debug, PartialEq)]
pub struct RoiPoolOptions {
    /// Output `[height, width]` of each pooled region.
    pub output_size: [usize; 2],
    /// Factor from ROI (input-image) coordinates to feature-map coordinates.
    pub spatial_scale: f32,
}

/// Integer bin ranges `[start, end)` of one ROI on the feature map, as the quantising kernels
/// (`roi_pool`, `ps_roi_pool`) compute them.
pub(crate) struct QuantizedBins {
    pub rows: Vec<(usize, usize)>,
    pub cols: Vec<(usize, usize)>,
}

impl QuantizedBins {
    /// `extra` is 1 for `roi_pool` (inclusive end) and 0 for `ps_roi_pool`; `limit` clips the
    /// bin ends (`[H, W]` for `roi_pool`, `[H - 1, W - 1]` for `ps_roi_pool`'s forward).
    pub fn new(
        roi: [f32; 4],
        scale: f32,
        pooled: [usize; 2],
        extra: i64,
        limit: [usize; 2],
    ) -> Self {
        let q = |v: f32| (v * scale).round() as i64;
        let (x1, y1, x2, y2) = (q(roi[0]), q(roi[1]), q(roi[2]), q(roi[3]));
        let axis = |start: i64, end: i64, pooled: usize, limit: usize| {
            let len = (end - start + extra).max(1);
            let bin = len as f32 / pooled as f32;
            (0..pooled)
                .map(|p| {
                    let clip = |v: i64| (v + start).clamp(0, limit as i64) as usize;
                    let lo = (p as f32 * bin).floor() as i64;
                    let hi = ((p + 1) as f32 * bin).ceil() as i64;
                    (clip(lo), clip(hi))
                })
                .collect::<Vec<_>>()
        };
        Self {
            rows: axis(y1, y2, pooled[0], limit[0]),
            cols: axis(x1, x2, pooled[1], limit[1]),
        }
    }

    /// Largest bin area, the number of taps every bin is padded to.
    pub fn max_taps(&self) -> usize {
        let span = |v: &[(usize, usize)]| v.iter().map(|(a, b)| b.saturating_sub(*a)).max();
        span(&self.rows).unwrap_or(0) * span(&self.cols).unwrap_or(0)
    }
}

/// Gathers the largest bin area over all ROIs.
pub(crate) fn max_taps(bins: &[QuantizedBins]) -> usize {
    bins.iter()
        .map(QuantizedBins::max_taps)
        .max()
        .unwrap_or(0)
        .max(1)
}

/// ROI max pooling: maximum over the integer-quantised bins of each region.
///
/// # Shapes
/// - `input`: `[N, C, H, W]`
/// - `rois`: `[K, 5]`, rows `(batch index, x1, y1, x2, y2)`
/// - returns `[K, C, output_size[0], output_size[1]]`
///
/// Empty bins (outside the map) are 0. The gradient goes to the arg-max of each bin.
///
/// # Panics
/// As [`roi_align`](super::roi_align).
pub fn roi_pool(input: Tensor<4>, rois: Tensor<2>, options: RoiPoolOptions) -> Tensor<4> {
    const OP: &str = "roi_pool";
    check_output_size(OP, options.output_size);
    let [batch, channels, height, width] = input.dims();
    let rois: HostRois = read_rois(OP, rois, batch);
    let [ph, pw] = options.output_size;
    let device = input.device();
    let bins: Vec<QuantizedBins> = rois
        .boxes
        .iter()
        .map(|b| {
            QuantizedBins::new(
                *b,
                options.spatial_scale,
                options.output_size,
                1,
                [height, width],
            )
        })
        .collect();
    let taps = max_taps(&bins);
    let table = channels_last_table(input);
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
            let b = &bins[r];
            plan.push_bin(b.rows[y], b.cols[x], rois.batch[r] as i64 * plane, width);
        },
        |plan, _| {
            let n_bins = plan.rows.len() / taps;
            let (penalty, nonempty) = plan.max_masks();
            let gathered = select_rows(table.clone(), ints(plan.rows, &device))
                .reshape([n_bins, taps, channels]);
            let penalty = floats(penalty, &device).reshape([n_bins, taps, 1]);
            let nonempty = floats(nonempty, &device).reshape([n_bins, 1, 1]);
            ((gathered + penalty).max_dim(1) * nonempty).reshape([n_bins, channels])
        },
    )
}
