//! COCOeval's `accumulate` and `summarize`: precision and recall per class, area range,
//! detection limit and IoU threshold, averaged into [`ApReport`].

use super::evaluator::{Cell, CocoEvaluator, R, T};

/// COCO area ranges `[lo, hi]` (inclusive): all, small, medium, large.
const AREA_RANGES: [[f64; 2]; 4] = [
    [0.0, 1e10],
    [0.0, 32.0 * 32.0],
    [32.0 * 32.0, 96.0 * 96.0],
    [96.0 * 96.0, 1e10],
];

/// COCO summary metrics (`COCOeval.stats`) and per-class AP, all in `[0, 1]`.
///
/// A value is [`None`] when no class has a (non-crowd) ground truth in its area range
/// (COCOeval prints `-1`). Means are over classes with ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct ApReport {
    /// AP averaged over IoU 0.50:0.05:0.95, all areas, 100 detections (`stats[0]`).
    pub ap: Option<f64>,
    /// AP at IoU 0.50 (`stats[1]`).
    pub ap50: Option<f64>,
    /// AP at IoU 0.75 (`stats[2]`).
    pub ap75: Option<f64>,
    /// AP for small objects, area ≤ 32² (`stats[3]`).
    pub ap_small: Option<f64>,
    /// AP for medium objects, 32² ≤ area ≤ 96² (`stats[4]`).
    pub ap_medium: Option<f64>,
    /// AP for large objects, area ≥ 96² (`stats[5]`).
    pub ap_large: Option<f64>,
    /// Recall averaged over IoU 0.50:0.95 with `max_dets[0]` (1) detections per image and
    /// class (`stats[6]`).
    pub ar1: Option<f64>,
    /// Average recall with `max_dets[1]` (10) detections (`stats[7]`).
    pub ar10: Option<f64>,
    /// Average recall with `max_dets[2]` (100) detections (`stats[8]`).
    pub ar100: Option<f64>,
    /// Average recall (100 detections) for small objects (`stats[9]`).
    pub ar_small: Option<f64>,
    /// Average recall (100 detections) for medium objects (`stats[10]`).
    pub ar_medium: Option<f64>,
    /// Average recall (100 detections) for large objects (`stats[11]`).
    pub ar_large: Option<f64>,
    /// AP of each class (IoU 0.50:0.95, all areas, 100 detections), indexed by class;
    /// [`None`] for a class without non-crowd ground truth.
    pub per_class: Vec<Option<f64>>,
}

impl ApReport {
    /// The 12 values in `COCOeval.stats` order, with `-1` for [`None`].
    pub fn stats(&self) -> [f64; 12] {
        [
            self.ap,
            self.ap50,
            self.ap75,
            self.ap_small,
            self.ap_medium,
            self.ap_large,
            self.ar1,
            self.ar10,
            self.ar100,
            self.ar_small,
            self.ar_medium,
            self.ar_large,
        ]
        .map(|v| v.unwrap_or(-1.0))
    }
}

impl CocoEvaluator {
    /// Accumulates and summarises everything added so far (COCOeval `accumulate` +
    /// `summarize`).
    pub fn report(&self) -> ApReport {
        let k_n = self.num_classes;
        // precision[k][a][m][t]: mean over recall thresholds; recall[k][a][m][t].
        let mut precision = vec![[[[None::<f64>; T]; 3]; 4]; k_n];
        let mut recall = vec![[[[None::<f64>; T]; 3]; 4]; k_n];
        let mut by_class: Vec<Vec<&Cell>> = vec![Vec::new(); k_n];
        for (&(k, _), cell) in &self.cells {
            by_class[k].push(cell);
        }
        for (k, cells) in by_class.iter().enumerate() {
            if cells.is_empty() {
                continue;
            }
            for (a, &range) in AREA_RANGES.iter().enumerate() {
                let evals: Vec<_> = cells
                    .iter()
                    .map(|c| (c, self.evaluate_cell(c, range)))
                    .collect();
                let npig: usize = evals.iter().map(|(_, (_, n))| n).sum();
                if npig == 0 {
                    continue;
                }
                for (m, &max_det) in self.max_dets.iter().enumerate() {
                    // Concatenate each image's top max_det, then stable sort by score.
                    let mut dets: Vec<(f64, &[(bool, bool); T])> = evals
                        .iter()
                        .flat_map(|(c, (res, _))| {
                            c.dt_scores.iter().copied().zip(res).take(max_det)
                        })
                        .collect();
                    dets.sort_by(|x, y| y.0.partial_cmp(&x.0).unwrap_or(std::cmp::Ordering::Equal));
                    for t in 0..T {
                        let (p, r) = self.precision_recall(&dets, t, npig);
                        precision[k][a][m][t] = Some(p);
                        recall[k][a][m][t] = Some(r);
                    }
                }
            }
        }

        let mean = |vals: &mut dyn Iterator<Item = Option<f64>>| {
            let (sum, n) = vals
                .flatten()
                .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
            (n > 0).then(|| sum / n as f64)
        };
        let t50 = 0;
        let t75 = 5;
        let ap = |a: usize, t: Option<usize>| {
            mean(&mut precision.iter().flat_map(|p| {
                let row = &p[a][2];
                match t {
                    Some(t) => row[t..=t].iter().copied(),
                    None => row[..].iter().copied(),
                }
            }))
        };
        let ar = |a: usize, m: usize| mean(&mut recall.iter().flat_map(|r| r[a][m]));
        ApReport {
            ap: ap(0, None),
            ap50: ap(0, Some(t50)),
            ap75: ap(0, Some(t75)),
            ap_small: ap(1, None),
            ap_medium: ap(2, None),
            ap_large: ap(3, None),
            ar1: ar(0, 0),
            ar10: ar(0, 1),
            ar100: ar(0, 2),
            ar_small: ar(1, 2),
            ar_medium: ar(2, 2),
            ar_large: ar(3, 2),
            per_class: precision
                .iter()
                .map(|p| mean(&mut p[0][2].iter().copied()))
                .collect(),
        }
    }

    /// Interpolated precision (mean over the 101 recall thresholds) and final recall at IoU
    /// threshold index `t`, for detections sorted by descending score.
    fn precision_recall(
        &self,
        dets: &[(f64, &[(bool, bool); T])],
        t: usize,
        npig: usize,
    ) -> (f64, f64) {
        let mut rc = Vec::with_capacity(dets.len());
        let mut pr = Vec::with_capacity(dets.len());
        let (mut tp, mut fp) = (0u64, 0u64);
        for (_, res) in dets {
            let (matched, ignored) = res[t];
            if !ignored {
                if matched {
                    tp += 1;
                } else {
                    fp += 1;
                }
            }
            let (tpf, fpf) = (tp as f64, fp as f64);
            rc.push(tpf / npig as f64);
            pr.push(tpf / (fpf + tpf + f64::EPSILON));
        }
        let recall = rc.last().copied().unwrap_or(0.0);
        for i in (1..pr.len()).rev() {
            if pr[i] > pr[i - 1] {
                pr[i - 1] = pr[i];
            }
        }
        let mut sum = 0.0;
        let mut idx = 0;
        for &thr in &self.rec_thrs {
            // np.searchsorted(rc, thr, side="left"); rc is non-decreasing.
            while idx < rc.len() && rc[idx] < thr {
                idx += 1;
            }
            if idx == rc.len() {
                break; // pycocotools leaves the remaining precisions at 0
            }
            sum += pr[idx];
        }
        (sum / R as f64, recall)
    }
}
