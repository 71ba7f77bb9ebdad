//! Bilinear ROI pooling on the host, NCHW f32, forward and backward (torchvision's CPU
//! `roi_align` scheme): the bilinear taps of every bin are computed once from the ROI
//! coordinates, then each `(ROI, channel)` output plane is a sum of weighted reads of one
//! input plane. The backward adds each bin's gradient back through the same taps, one input
//! plane per task, so no two tasks write the same value.

use rayon::prelude::*;

/// The bilinear taps of an ROI pooling: for each bin of each ROI, `(index in the H × W
/// plane, weight)` pairs, the bin's average and the border rule already in the weights.
/// Built by [`crate::ops::roi_align`] on the host; taps of zero weight are left out.
#[derive(Debug, Clone)]
pub struct RoiTaps {
    /// Image of each ROI.
    pub(crate) batch: Vec<usize>,
    /// Bins per ROI, `[PH, PW]`.
    pub(crate) pooled: [usize; 2],
    /// `rois · PH · PW + 1` offsets into `index` / `weight` (CSR).
    pub(crate) start: Vec<usize>,
    pub(crate) index: Vec<u32>,
    pub(crate) weight: Vec<f32>,
}

impl RoiTaps {
    /// Empty taps for `batch.len()` ROIs of `pooled` bins; fill with [`Self::push`] and
    /// [`Self::end_bin`], bin by bin.
    pub(crate) fn new(batch: Vec<usize>, pooled: [usize; 2]) -> Self {
        let bins = batch.len() * pooled[0] * pooled[1];
        let mut start = Vec::with_capacity(bins + 1);
        start.push(0);
        Self {
            batch,
            pooled,
            start,
            index: Vec::new(),
            weight: Vec::new(),
        }
    }

    /// Adds a tap to the current bin.
    pub(crate) fn push(&mut self, index: usize, weight: f32) {
        if weight != 0.0 {
            self.index.push(index as u32);
            self.weight.push(weight);
        }
    }

    /// Closes the current bin.
    pub(crate) fn end_bin(&mut self) {
        self.start.push(self.index.len());
    }

    pub(crate) fn rois(&self) -> usize {
        self.batch.len()
    }

    fn bins(&self) -> usize {
        self.pooled[0] * self.pooled[1]
    }
}

/// `[N, C, H, W]` → `[K, C, PH, PW]`.
pub(crate) fn forward(x: &[f32], [_, c, h, w]: [usize; 4], taps: &RoiTaps) -> Vec<f32> {
    let bins = taps.bins();
    let mut out = vec![0.0f32; taps.rois() * c * bins];
    out.par_chunks_mut(bins).enumerate().for_each(|(kc, dst)| {
        let (k, ch) = (kc / c, kc % c);
        let plane = &x[(taps.batch[k] * c + ch) * h * w..][..h * w];
        for (b, d) in dst.iter_mut().enumerate() {
            let bin = k * bins + b;
            let range = taps.start[bin]..taps.start[bin + 1];
            *d = taps.index[range.clone()]
                .iter()
                .zip(&taps.weight[range])
                .map(|(&i, &wt)| plane[i as usize] * wt)
                .sum();
        }
    });
    out
}

/// Adjoint of [`forward`]: `[K, C, PH, PW]` gradient → `[N, C, H, W]`.
pub(crate) fn backward(dy: &[f32], [n, c, h, w]: [usize; 4], taps: &RoiTaps) -> Vec<f32> {
    let bins = taps.bins();
    let mut by_image: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, &b) in taps.batch.iter().enumerate() {
        by_image[b].push(k);
    }
    let mut dx = vec![0.0f32; n * c * h * w];
    dx.par_chunks_mut(h * w)
        .enumerate()
        .for_each(|(nc, plane)| {
            let (image, ch) = (nc / c, nc % c);
            for &k in &by_image[image] {
                let grads = &dy[(k * c + ch) * bins..][..bins];
                for (b, &g) in grads.iter().enumerate() {
                    let bin = k * bins + b;
                    let range = taps.start[bin]..taps.start[bin + 1];
                    for (&i, &wt) in taps.index[range.clone()].iter().zip(&taps.weight[range]) {
                        plane[i as usize] += g * wt;
                    }
                }
            }
        });
    dx
}
