//! Host-side box bookkeeping of the detection pipeline: matching, sampling, top-k and
//! thresholds work on small lists whose sizes depend on the data, so they run on the host
//! (one read per stage) and every backend behaves alike. Feature maps stay on the device.

use burn::prelude::*;
use zoo_data::rng::SplitMix64;

/// Boxes `(x1, y1, x2, y2)` on the host.
pub type Boxes = Vec<[f32; 4]>;

/// `[N, 4]` tensor → host boxes.
pub fn host_boxes(boxes: Tensor<2>) -> Boxes {
    let values: Vec<f32> = boxes.into_data().iter::<f32>().collect();
    values
        .chunks_exact(4)
        .map(|b| [b[0], b[1], b[2], b[3]])
        .collect()
}

/// `[N]` tensor → host values.
pub fn host_floats(values: Tensor<1>) -> Vec<f32> {
    values.into_data().iter::<f32>().collect()
}

/// Host boxes → `[N, 4]` tensor (`[0, 4]` when empty).
pub fn boxes_tensor(boxes: &[[f32; 4]], device: &Device) -> Tensor<2> {
    let flat: Vec<f32> = boxes.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [boxes.len(), 4]), device)
}

/// Host values → `[N]` tensor.
pub fn floats_tensor(values: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// Host indices → `[N]` int tensor.
pub fn ints_tensor(values: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// Indices → `[N]` int tensor.
pub fn index_tensor(values: &[usize], device: &Device) -> Tensor<1, Int> {
    ints_tensor(values.iter().map(|&i| i as i64).collect(), device)
}

/// IoU of two boxes with torchvision's `box_iou` arithmetic (f32, same operation order, so
/// threshold decisions agree bit for bit).
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / (area_a + area_b - inter)
}

/// Clips a box to `size = [height, width]` (x into `[0, width]`, y into `[0, height]`).
pub fn clip(b: [f32; 4], size: [usize; 2]) -> [f32; 4] {
    let (h, w) = (size[0] as f32, size[1] as f32);
    [
        b[0].clamp(0.0, w),
        b[1].clamp(0.0, h),
        b[2].clamp(0.0, w),
        b[3].clamp(0.0, h),
    ]
}

/// Whether both sides are `>= min_size` (torchvision's `remove_small_boxes` keeps these).
pub fn big_enough(b: &[f32; 4], min_size: f32) -> bool {
    b[2] - b[0] >= min_size && b[3] - b[1] >= min_size
}

/// Indices of `scores` by decreasing value; ties keep index order.
pub fn by_decreasing(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// The two results of a [`Matcher`] step below its thresholds.
pub const BELOW_LOW_THRESHOLD: i64 = -1;
/// A prediction between the two thresholds (ignored in training).
pub const BETWEEN_THRESHOLDS: i64 = -2;

/// Assigns each prediction to its best ground-truth box, as torchvision's `det_utils.Matcher`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Matcher {
    /// IoU at or above which a prediction is a match.
    pub high_threshold: f32,
    /// IoU below which a prediction is background (`BELOW_LOW_THRESHOLD`); in between it is
    /// `BETWEEN_THRESHOLDS`.
    pub low_threshold: f32,
    /// Also match each ground truth to the predictions of its highest IoU (even if low),
    /// including every prediction tied at that IoU — torchvision's RPN rule.
    pub allow_low_quality_matches: bool,
}

impl Matcher {
    /// Per prediction: the index of its ground-truth box, or `BELOW_LOW_THRESHOLD` /
    /// `BETWEEN_THRESHOLDS`. `gt` must not be empty.
    pub fn assign(&self, gt: &[[f32; 4]], predictions: &[[f32; 4]]) -> Vec<i64> {
        let quality: Vec<Vec<f32>> = gt
            .iter()
            .map(|g| predictions.iter().map(|p| iou(g, p)).collect())
            .collect();
        let mut matches = Vec::with_capacity(predictions.len());
        let mut all = Vec::with_capacity(predictions.len());
        for p in 0..predictions.len() {
            // torch.max over the gt axis: the first of equal maxima.
            let (mut best, mut value) = (0, quality[0][p]);
            for (g, row) in quality.iter().enumerate().skip(1) {
                if row[p] > value {
                    (best, value) = (g, row[p]);
                }
            }
            all.push(best as i64);
            matches.push(if value < self.low_threshold {
                BELOW_LOW_THRESHOLD
            } else if value < self.high_threshold {
                BETWEEN_THRESHOLDS
            } else {
                best as i64
            });
        }
        if self.allow_low_quality_matches {
            for row in &quality {
                let highest = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                for (p, &q) in row.iter().enumerate() {
                    if q == highest {
                        matches[p] = all[p];
                    }
                }
            }
        }
        matches
    }
}

/// Draws subsets for the balanced positive/negative sampling of the RPN and RoI heads.
///
/// The pipeline calls it in a fixed order — per image, positives then negatives; the RPN's
/// images first, then the RoI heads' — so a recorded sequence can be replayed.
pub trait SubsetSampler {
    /// `count` distinct elements of `candidates` (`count <= candidates.len()`).
    fn sample(&mut self, candidates: &[usize], count: usize) -> Vec<usize>;
}

/// A seeded [`SubsetSampler`] (SplitMix64 and a partial Fisher–Yates shuffle).
#[derive(Debug, Clone)]
pub struct SeededSampler {
    rng: SplitMix64,
}

impl SeededSampler {
    /// A sampler whose draws depend only on `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SplitMix64(seed),
        }
    }
}

impl SubsetSampler for SeededSampler {
    fn sample(&mut self, candidates: &[usize], count: usize) -> Vec<usize> {
        let mut pool = candidates.to_vec();
        for i in 0..count.min(pool.len()) {
            let j = i + (self.rng.next_u64() % (pool.len() - i) as u64) as usize;
            pool.swap(i, j);
        }
        pool.truncate(count);
        pool
    }
}

/// torchvision's `BalancedPositiveNegativeSampler` on one image's labels (`>= 1` positive,
/// `0` negative, `-1` ignored): at most `batch_size · positive_fraction` positives, negatives
/// filling the rest. Returns `(positives, negatives)`, each sorted.
pub fn balanced_sample(
    labels: &[i64],
    batch_size: usize,
    positive_fraction: f32,
    sampler: &mut dyn SubsetSampler,
) -> (Vec<usize>, Vec<usize>) {
    let positive: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] >= 1).collect();
    let negative: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == 0).collect();
    let num_pos = ((batch_size as f32 * positive_fraction) as usize).min(positive.len());
    let num_neg = (batch_size - num_pos).min(negative.len());
    let mut pos = sampler.sample(&positive, num_pos);
    let mut neg = sampler.sample(&negative, num_neg);
    pos.sort_unstable();
    neg.sort_unstable();
    (pos, neg)
}
