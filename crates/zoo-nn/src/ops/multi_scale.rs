//! Multi-scale ROI Align over a feature pyramid (FPN, Lin et al. 2017); mirrors
//! `torchvision.ops.MultiScaleRoIAlign`.

use burn::prelude::*;

use super::roi_align::{RoiAlignOptions, roi_align_host};
use super::sampling::{HostRois, check_output_size, ints};

/// Options of [`multi_scale_roi_align`]; as `torchvision.ops.MultiScaleRoIAlign`.
#[derive(Config, Debug, PartialEq)]
pub struct MultiScaleRoiAlignOptions {
    /// Output `[height, width]`.
    pub output_size: [usize; 2],
    /// Sampling points per bin along each axis; `<= 0` is adaptive.
    pub sampling_ratio: i32,
    /// Box side (pixels) that maps to `canonical_level` (FPN eq. 1).
    #[config(default = 224)]
    pub canonical_scale: usize,
    /// Pyramid level of a `canonical_scale` box.
    #[config(default = 4)]
    pub canonical_level: usize,
}

/// ROI Align of each box on the pyramid level its size selects.
///
/// Level of a box of area `A`: `floor(canonical_level + log2(sqrt(A) / canonical_scale) + 1e-6)`,
/// clamped to the levels present. Each level's scale is inferred from its size relative to
/// `image_size` and rounded to a power of two, as torchvision does; ROI Align runs with
/// `aligned = false`.
///
/// # Shapes
/// - `features`: one `[N, C, H_l, W_l]` map per level, finest first (strides doubling)
/// - `boxes`: one `[K_i, 4]` tensor of `(x1, y1, x2, y2)` per image (`N` of them)
/// - `image_size`: `[height, width]` of the largest image before padding
/// - returns `[ΣK_i, C, output_size[0], output_size[1]]`, boxes in input order
///
/// # Panics
/// If `features` is empty, the levels differ in batch or channels, `boxes` does not have one
/// `[K_i, 4]` tensor per image, or a coordinate is not finite.
pub fn multi_scale_roi_align(
    features: Vec<Tensor<4>>,
    boxes: Vec<Tensor<2>>,
    image_size: [usize; 2],
    options: MultiScaleRoiAlignOptions,
) -> Tensor<4> {
    const OP: &str = "multi_scale_roi_align";
    check_output_size(OP, options.output_size);
    assert!(
        !features.is_empty(),
        "{OP}: features must hold at least one level"
    );
    let [batch, channels, _, _] = features[0].dims();
    for (l, f) in features.iter().enumerate() {
        let [n, c, _, _] = f.dims();
        assert!(
            n == batch && c == channels,
            "{OP}: features[{l}] is {:?} but features[0] has batch {batch} and {channels} channels",
            f.dims()
        );
    }
    assert!(
        boxes.len() == batch,
        "{OP}: boxes must hold one [K_i, 4] tensor per image ({batch}), got {}",
        boxes.len()
    );
    assert!(
        image_size[0] > 0 && image_size[1] > 0,
        "{OP}: image_size must be positive, got {image_size:?}"
    );
    let rois = image_rois(OP, boxes);
    let device = features[0].device();
    let [ph, pw] = options.output_size;
    if rois.len() == 0 {
        return Tensor::zeros([0, channels, ph, pw], &device);
    }
    let scales: Vec<f32> = features
        .iter()
        .map(|f| level_scale(f.dims()[2], image_size[0]))
        .collect();
    let level_min = -scales[0].log2();
    let level_max = -scales[scales.len() - 1].log2();
    let align = |level: usize| RoiAlignOptions {
        output_size: options.output_size,
        spatial_scale: scales[level],
        sampling_ratio: options.sampling_ratio,
        aligned: false,
    };
    if features.len() == 1 {
        return roi_align_host(features.into_iter().next().unwrap(), &rois, &align(0));
    }
    let levels: Vec<usize> = rois
        .boxes
        .iter()
        .map(|b| {
            let area = (b[2] - b[0]) * (b[3] - b[1]);
            let level = (options.canonical_level as f32
                + (area.sqrt() / options.canonical_scale as f32).log2()
                + 1e-6)
                .floor();
            (level.clamp(level_min, level_max) - level_min) as usize
        })
        .collect();
    let mut order = Vec::with_capacity(rois.len());
    let mut parts = Vec::new();
    for (level, feature) in features.into_iter().enumerate() {
        let members: Vec<usize> = (0..rois.len()).filter(|&i| levels[i] == level).collect();
        if members.is_empty() {
            continue;
        }
        let subset = HostRois {
            batch: members.iter().map(|&i| rois.batch[i]).collect(),
            boxes: members.iter().map(|&i| rois.boxes[i]).collect(),
        };
        parts.push(roi_align_host(feature, &subset, &align(level)));
        order.extend(members);
    }
    // `order[j]` is the box whose result sits at row j; invert it to restore input order.
    let mut inverse = vec![0i64; order.len()];
    for (row, &i) in order.iter().enumerate() {
        inverse[i] = row as i64;
    }
    Tensor::cat(parts, 0).select(0, ints(inverse, &device))
}

/// Per-image `[K_i, 4]` boxes → validated host ROIs with their image index.
fn image_rois(op: &str, boxes: Vec<Tensor<2>>) -> HostRois {
    let mut rois = HostRois {
        batch: Vec::new(),
        boxes: Vec::new(),
    };
    for (i, b) in boxes.into_iter().enumerate() {
        let dims = b.dims();
        assert!(
            dims[1] == 4,
            "{op}: boxes[{i}] must have shape [K, 4] (x1, y1, x2, y2), got {dims:?}"
        );
        let values: Vec<f32> = b.into_data().iter::<f32>().collect();
        for (k, r) in values.chunks_exact(4).enumerate() {
            assert!(
                r.iter().all(|v| v.is_finite()),
                "{op}: boxes[{i}][{k}] has non-finite coordinates {r:?}"
            );
            rois.batch.push(i);
            rois.boxes.push([r[0], r[1], r[2], r[3]]);
        }
    }
    rois
}

/// torchvision's `_infer_scale`: `2 ** round(log2(feature / image))`, in f32.
fn level_scale(feature: usize, image: usize) -> f32 {
    let approx = (feature as f64 / image as f64) as f32;
    2f32.powf(approx.log2().round_ties_even())
}
