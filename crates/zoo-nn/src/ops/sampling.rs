//! Shared machinery of the ROI and deformable operators.
//!
//! Every one of them reads a feature map at a list of points and reduces the reads per output
//! element. The map is laid out as a row table `[planes * H * W, C]` (channels last), so one
//! `select` gathers all channels of a point at once and its backward (a scatter-add) is what
//! the reference kernels' `atomicAdd` loops compute. Sampling positions are either built on the
//! host from ROI coordinates (which torchvision also treats as constants) or computed on the
//! device from learned offsets, in which case autodiff differentiates the bilinear weights.

use std::ops::Range;

use burn::prelude::*;
use burn::tensor::TensorData;

/// How bilinear taps that fall outside the map are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Border {
    /// torchvision `roi_align` / mmcv: a point outside `[-1, size]` reads zero; otherwise the
    /// coordinate is clamped into `[0, size - 1]` (edge replication).
    Clamp,
    /// torchvision `deform_conv2d`: a point outside `(-1, size)` reads zero, and so does each
    /// of its corners that lies outside the map (zero padding).
    Zeros,
}

/// Two bilinear taps along one axis, for M points.
struct AxisTaps {
    lo: Tensor<1, Int>,
    hi: Tensor<1, Int>,
    w_lo: Tensor<1>,
    w_hi: Tensor<1>,
    inside: Tensor<1, Bool>,
}

fn axis_taps(coord: Tensor<1>, size: usize, border: Border) -> AxisTaps {
    let last = size as f32 - 1.0;
    let inside = match border {
        Border::Clamp => coord
            .clone()
            .greater_equal_elem(-1.0)
            .bool_and(coord.clone().lower_equal_elem(size as f32)),
        Border::Zeros => coord
            .clone()
            .greater_elem(-1.0)
            .bool_and(coord.clone().lower_elem(size as f32)),
    };
    // Points outside (and NaN, for which every comparison is false) read nothing; move them to
    // 0 so the integer indices stay in range.
    let coord = coord.mask_fill(inside.clone().bool_not(), 0.0);
    match border {
        Border::Clamp => {
            let coord = coord.clamp(0.0, last);
            let lo_f = coord.clone().detach().floor();
            let frac = coord - lo_f.clone();
            let lo = lo_f.int();
            let hi = lo.clone().add_scalar(1).clamp_max(size as i64 - 1);
            AxisTaps {
                lo,
                hi,
                w_lo: frac.clone().neg().add_scalar(1.0),
                w_hi: frac,
                inside,
            }
        }
        Border::Zeros => {
            let lo_f = coord.clone().detach().floor();
            let frac = coord - lo_f.clone();
            let lo_ok = lo_f.clone().greater_equal_elem(0.0).float();
            let hi_ok = lo_f.clone().lower_elem(last).float();
            let lo = lo_f.int();
            let hi = lo.clone().add_scalar(1).clamp_max(size as i64 - 1);
            AxisTaps {
                lo: lo.clamp_min(0),
                hi,
                w_lo: frac.clone().neg().add_scalar(1.0) * lo_ok,
                w_hi: frac * hi_ok,
                inside,
            }
        }
    }
}

/// Bilinear reads of a row table.
///
/// - `table`: `[planes * height * width, C]`, row `plane_row + y * width + x`.
/// - `y`, `x`, `plane_row`, `weight`: `[M]` — point coordinates in pixels, first row of the
///   point's plane, and a factor applied to the read (e.g. `1 / count`, a DCNv2 mask, or 0 for
///   padding points).
/// - returns `[M, C]`.
pub(crate) fn bilinear_read(
    table: Tensor<2>,
    [height, width]: [usize; 2],
    y: Tensor<1>,
    x: Tensor<1>,
    plane_row: Tensor<1, Int>,
    weight: Tensor<1>,
    border: Border,
) -> Tensor<2> {
    let ty = axis_taps(y, height, border);
    let tx = axis_taps(x, width, border);
    let weight = weight * ty.inside.bool_and(tx.inside).float();
    let row = |iy: &Tensor<1, Int>, ix: &Tensor<1, Int>| {
        plane_row.clone() + iy.clone().mul_scalar(width as i64) + ix.clone()
    };
    let rows = Tensor::cat(
        vec![
            row(&ty.lo, &tx.lo),
            row(&ty.lo, &tx.hi),
            row(&ty.hi, &tx.lo),
            row(&ty.hi, &tx.hi),
        ],
        0,
    );
    let weights = Tensor::cat(
        vec![
            ty.w_lo.clone() * tx.w_lo.clone(),
            ty.w_lo * tx.w_hi.clone(),
            ty.w_hi.clone() * tx.w_lo,
            ty.w_hi * tx.w_hi,
        ],
        0,
    ) * weight.repeat_dim(0, 4);
    let m = plane_row.dims()[0];
    let channels = table.dims()[1];
    weighted_rows(table, rows, weights)
        .reshape([4, m, channels])
        .sum_dim(0)
        .reshape([m, channels])
}

/// `table[rows[i]] * weights[i]` for every i: `[M, C]`.
pub(crate) fn weighted_rows(
    table: Tensor<2>,
    rows: Tensor<1, Int>,
    weights: Tensor<1>,
) -> Tensor<2> {
    select_rows(table, rows) * weights.unsqueeze_dim(1)
}

/// Most indices one `select` takes: Burn 0.22.1's wgpu backward of `select` (a scatter-add)
/// loses contributions beyond 65 535 indices, so longer gathers are split.
const SELECT_CHUNK: usize = 65_535;

/// `table.select(0, rows)`, in gathers of at most [`SELECT_CHUNK`] indices.
pub(crate) fn select_rows(table: Tensor<2>, rows: Tensor<1, Int>) -> Tensor<2> {
    let m = rows.dims()[0];
    if m <= SELECT_CHUNK {
        return table.select(0, rows);
    }
    let parts = (0..m)
        .step_by(SELECT_CHUNK)
        .map(|start| {
            let end = (start + SELECT_CHUNK).min(m);
            table.clone().select(0, rows.clone().slice(s![start..end]))
        })
        .collect();
    Tensor::cat(parts, 0)
}

/// `[N, C, H, W]` → row table `[N * H * W, C]`.
pub(crate) fn channels_last_table(input: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = input.dims();
    input.permute([0, 2, 3, 1]).reshape([n * h * w, c])
}

/// ROI coordinates read to the host and validated.
pub(crate) struct HostRois {
    /// Image index of each ROI.
    pub batch: Vec<usize>,
    /// `[x1, y1, x2, y2]` of each ROI, input-image coordinates.
    pub boxes: Vec<[f32; 4]>,
}

impl HostRois {
    pub fn len(&self) -> usize {
        self.batch.len()
    }
}

/// Reads `rois` (`[K, 5]` = batch index, x1, y1, x2, y2) to the host and checks it.
///
/// # Panics
/// If `rois` is not `[K, 5]`, a batch index is not an integer in `0..batch_size`, or a
/// coordinate is not finite.
pub(crate) fn read_rois(op: &str, rois: Tensor<2>, batch_size: usize) -> HostRois {
    let dims = rois.dims();
    assert!(
        dims[1] == 5,
        "{op}: rois must have shape [K, 5] (batch index, x1, y1, x2, y2), got {dims:?}"
    );
    let values: Vec<f32> = rois.into_data().iter::<f32>().collect();
    let mut out = HostRois {
        batch: Vec::with_capacity(dims[0]),
        boxes: Vec::with_capacity(dims[0]),
    };
    for (k, r) in values.chunks_exact(5).enumerate() {
        let b = r[0];
        assert!(
            b.fract() == 0.0 && b >= 0.0 && (b as usize) < batch_size,
            "{op}: rois[{k}, 0] is the batch index and must be an integer in 0..{batch_size} (the input batch), got {b}"
        );
        assert!(
            r[1..].iter().all(|v| v.is_finite()),
            "{op}: rois[{k}] has non-finite coordinates {:?}",
            &r[1..]
        );
        out.batch.push(b as usize);
        out.boxes.push([r[1], r[2], r[3], r[4]]);
    }
    out
}

/// Checks an output size: both entries positive.
pub(crate) fn check_output_size(op: &str, output_size: [usize; 2]) {
    assert!(
        output_size[0] > 0 && output_size[1] > 0,
        "{op}: output_size must be positive, got {output_size:?}"
    );
}

/// Largest number of gathered elements one chunk of ROIs may hold (16M f32 = 64 MiB).
const CHUNK_ELEMENTS: usize = 1 << 24;

/// Runs `f` on consecutive ROI ranges whose intermediate size (`per_roi` elements each) stays
/// under [`CHUNK_ELEMENTS`], and concatenates the `[k, …]` results along dim 0.
fn chunked<const D: usize>(
    count: usize,
    per_roi: usize,
    mut f: impl FnMut(Range<usize>) -> Tensor<D>,
) -> Tensor<D> {
    let step = (CHUNK_ELEMENTS / per_roi.max(1)).max(1);
    let mut parts = Vec::with_capacity(count.div_ceil(step));
    let mut start = 0;
    while start < count {
        let end = (start + step).min(count);
        parts.push(f(start..end));
        start = end;
    }
    if parts.len() == 1 {
        parts.pop().unwrap()
    } else {
        Tensor::cat(parts, 0)
    }
}

/// The skeleton every ROI operator shares (`roi_align`, `roi_pool`, `ps_roi_align`,
/// `ps_roi_pool`, `deform_roi_pool`): ROIs taken in chunks whose intermediate stays under
/// [`CHUNK_ELEMENTS`], each chunk's bins visited ROI by ROI in row-major order into a plan,
/// the plan reduced to one channels-last row per bin, the chunks joined as
/// `[K, channels, PH, PW]` (`[0, channels, PH, PW]` without ROIs).
pub(crate) struct RoiBins {
    /// Output `[PH, PW]` (checked positive by the operator).
    pub output_size: [usize; 2],
    /// Channels of the output.
    pub channels: usize,
    /// Elements of the largest intermediate one ROI needs.
    pub per_roi: usize,
}

impl RoiBins {
    /// Runs the operator on `rois`:
    ///
    /// - `new_plan(k)`: an empty plan for a chunk of `k` ROIs;
    /// - `bin(plan, r, y, x)`: adds output bin `(y, x)` of ROI `r` (an index into `rois`);
    /// - `finish(plan, chunk)`: the chunk's bins as rows `[k * PH * PW, channels]`.
    pub fn run<P>(
        &self,
        rois: &HostRois,
        device: &Device,
        new_plan: impl Fn(usize) -> P,
        bin: impl Fn(&mut P, usize, usize, usize),
        mut finish: impl FnMut(P, Range<usize>) -> Tensor<2>,
    ) -> Tensor<4> {
        let [ph, pw] = self.output_size;
        if rois.len() == 0 {
            return Tensor::zeros([0, self.channels, ph, pw], device);
        }
        chunked(rois.len(), self.per_roi, |chunk| {
            let k = chunk.len();
            let mut plan = new_plan(k);
            for r in chunk.clone() {
                for y in 0..ph {
                    for x in 0..pw {
                        bin(&mut plan, r, y, x);
                    }
                }
            }
            finish(plan, chunk)
                .reshape([k, ph, pw, self.channels])
                .permute([0, 3, 1, 2])
        })
    }
}

/// Host vectors → device tensors.
pub(crate) fn floats(values: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// Host vector → device int tensor.
pub(crate) fn ints(values: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// Sampling plan of bilinear ROI ops: for every output bin, a padded list of points.
///
/// Points are stored bin-major (`bins × points_per_bin`), padding points carry weight 0.
pub(crate) struct SamplePlan {
    pub y: Vec<f32>,
    pub x: Vec<f32>,
    pub plane_row: Vec<i64>,
    pub weight: Vec<f32>,
    pub points_per_bin: usize,
}

impl SamplePlan {
    pub fn with_capacity(points: usize, points_per_bin: usize) -> Self {
        Self {
            y: Vec::with_capacity(points),
            x: Vec::with_capacity(points),
            plane_row: Vec::with_capacity(points),
            weight: Vec::with_capacity(points),
            points_per_bin,
        }
    }

    /// Reads the plan from `table` and averages per bin: `[bins, C]`.
    pub fn read(mut self, table: Tensor<2>, size: [usize; 2], border: Border) -> Tensor<2> {
        let device = table.device();
        let y = floats(std::mem::take(&mut self.y), &device);
        let x = floats(std::mem::take(&mut self.x), &device);
        self.read_at(table, size, y, x, border)
    }

    /// As [`Self::read`], with the coordinates given as (possibly tracked) device tensors.
    pub fn read_at(
        self,
        table: Tensor<2>,
        size: [usize; 2],
        y: Tensor<1>,
        x: Tensor<1>,
        border: Border,
    ) -> Tensor<2> {
        let device = table.device();
        let channels = table.dims()[1];
        let bins = self.plane_row.len() / self.points_per_bin;
        let plane_row = ints(self.plane_row, &device);
        let weight = floats(self.weight, &device);
        bilinear_read(table, size, y, x, plane_row, weight, border)
            .reshape([bins, self.points_per_bin, channels])
            .sum_dim(1)
            .reshape([bins, channels])
    }
}

/// Most sample points in one bin over all `grids` (at least 1): the padded bin length.
pub(crate) fn max_points(grids: &[RoiGrid]) -> usize {
    grids
        .iter()
        .map(|g| g.grid_h * g.grid_w)
        .max()
        .unwrap_or(1)
        .max(1)
}

/// The sampling grid of one ROI in the torchvision/mmcv ROI-align family.
pub(crate) struct RoiGrid {
    /// ROI `[height, width]` on the feature map.
    pub size: [f32; 2],
    pub start_y: f32,
    pub start_x: f32,
    pub bin_h: f32,
    pub bin_w: f32,
    pub grid_h: usize,
    pub grid_w: usize,
}

impl RoiGrid {
    /// `roi_height`/`roi_width` as the kernels compute them; `sampling_ratio <= 0` is adaptive
    /// (`ceil(roi_size / pooled)`, as a float ceil, so degenerate ROIs get no samples).
    pub fn new(start: [f32; 2], size: [f32; 2], pooled: [usize; 2], sampling_ratio: i32) -> Self {
        let bin_h = size[0] / pooled[0] as f32;
        let bin_w = size[1] / pooled[1] as f32;
        let grid = |roi: f32, p: usize| {
            if sampling_ratio > 0 {
                sampling_ratio as usize
            } else {
                (roi / p as f32).ceil().max(0.0) as usize
            }
        };
        Self {
            size,
            start_y: start[0],
            start_x: start[1],
            bin_h,
            bin_w,
            grid_h: grid(size[0], pooled[0]),
            grid_w: grid(size[1], pooled[1]),
        }
    }

    /// The grids of boxes `(x1, y1, x2, y2)`: coordinates scaled by `scale` and shifted by
    /// `−offset`; with `min_size_one` (torchvision `roi_align`, `aligned = false`) sides
    /// shorter than a pixel are enlarged to 1.
    pub fn for_boxes(
        boxes: &[[f32; 4]],
        scale: f32,
        offset: f32,
        min_size_one: bool,
        pooled: [usize; 2],
        sampling_ratio: i32,
    ) -> Vec<Self> {
        let grid = |b: &[f32; 4]| {
            let (x1, y1) = (b[0] * scale - offset, b[1] * scale - offset);
            let (mut w, mut h) = (b[2] * scale - offset - x1, b[3] * scale - offset - y1);
            if min_size_one {
                w = w.max(1.0);
                h = h.max(1.0);
            }
            Self::new([y1, x1], [h, w], pooled, sampling_ratio)
        };
        boxes.iter().map(grid).collect()
    }

    /// Sample row `iy` of bin row `ph` (same float expression order as the kernels).
    pub fn y(&self, ph: usize, iy: usize) -> f32 {
        self.start_y + ph as f32 * self.bin_h + (iy as f32 + 0.5) * self.bin_h / self.grid_h as f32
    }

    /// Sample column `ix` of bin column `pw`.
    pub fn x(&self, pw: usize, ix: usize) -> f32 {
        self.start_x + pw as f32 * self.bin_w + (ix as f32 + 0.5) * self.bin_w / self.grid_w as f32
    }

    /// Appends bin (`ph`, `pw`)'s points to `plan`, padded to `plan.points_per_bin`.
    pub fn push_bin(&self, plan: &mut SamplePlan, ph: usize, pw: usize, plane_row: i64) {
        let count = (self.grid_h * self.grid_w).max(1) as f32;
        for iy in 0..self.grid_h {
            let y = self.y(ph, iy);
            for ix in 0..self.grid_w {
                plan.y.push(y);
                plan.x.push(self.x(pw, ix));
                plan.plane_row.push(plane_row);
                plan.weight.push(1.0 / count);
            }
        }
        for _ in self.grid_h * self.grid_w..plan.points_per_bin {
            plan.y.push(0.0);
            plan.x.push(0.0);
            plan.plane_row.push(plane_row);
            plan.weight.push(0.0);
        }
    }
}

/// The flat tap list of quantised bins: row indices into a row table, one validity flag per
/// tap, bins padded to `taps` entries.
pub(crate) struct TapPlan {
    pub rows: Vec<i64>,
    pub valid: Vec<f32>,
    pub taps: usize,
}

impl TapPlan {
    /// An empty plan for `bins` bins of `taps` taps each.
    pub fn new(bins: usize, taps: usize) -> Self {
        Self {
            rows: Vec::with_capacity(bins * taps),
            valid: Vec::with_capacity(bins * taps),
            taps,
        }
    }

    pub fn push_bin(
        &mut self,
        rows: (usize, usize),
        cols: (usize, usize),
        plane_row: i64,
        width: usize,
    ) {
        let before = self.rows.len();
        for y in rows.0..rows.1 {
            for x in cols.0..cols.1 {
                self.rows.push(plane_row + (y * width + x) as i64);
                self.valid.push(1.0);
            }
        }
        let padding = self.taps - (self.rows.len() - before);
        self.rows.extend(std::iter::repeat_n(plane_row, padding));
        self.valid.extend(std::iter::repeat_n(0.0, padding));
    }

    /// For a max over taps: an additive mask (0 for real taps, −inf for padding, except that
    /// an empty bin keeps its first tap finite so its max stays finite) and a per-bin 0/1
    /// factor that zeroes empty bins, as the kernels define them.
    pub fn max_masks(&self) -> (Vec<f32>, Vec<f32>) {
        let mut penalty = Vec::with_capacity(self.valid.len());
        let mut nonempty = Vec::with_capacity(self.valid.len() / self.taps);
        for bin in self.valid.chunks_exact(self.taps) {
            let empty = bin[0] == 0.0;
            nonempty.push(if empty { 0.0 } else { 1.0 });
            penalty.extend(bin.iter().enumerate().map(|(i, &v)| {
                if v > 0.0 || (empty && i == 0) {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            }));
        }
        (penalty, nonempty)
    }
}
