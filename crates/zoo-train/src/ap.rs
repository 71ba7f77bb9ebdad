//! COCO-style detection metrics (box and mask AP / AR), a pure-Rust re-implementation of
//! pycocotools' `COCOeval` (`evaluate` + `accumulate` + `summarize`) on host data.
//!
//! The results match pycocotools to floating-point rounding (checked against fixtures written
//! by `tools/parity/ap.py`), including its conventions:
//!
//! * IoU thresholds `0.50:0.05:0.95` (computed like `np.linspace`), 101 recall thresholds
//!   `0:0.01:1` with the monotone precision envelope, `maxDets` `[1, 10, 100]`;
//! * area ranges `all`, `small` (`area ≤ 32²`), `medium` (`32² ≤ area ≤ 96²`), `large`
//!   (`area ≥ 96²`), both bounds inclusive as in COCOeval, tested on the ground-truth
//!   `area` and on the detection area;
//! * box IoU on continuous coordinates (no `+1` pixel), mask IoU on pixel counts;
//! * crowd ground truth (`iscrowd`): IoU is `intersection / detection area`, it is always
//!   ignored, and it may absorb any number of detections;
//! * per image and class only the `max(maxDets)` highest-scoring detections count; sorts are
//!   stable (ties keep input order, then image order), like `np.argsort(kind="mergesort")`;
//! * a class without ground truth has no AP (`-1` in COCOeval, [`None`] here) and is left out
//!   of the means; a summary with no class at all is [`None`] (`-1` in [`ApReport::stats`]).
//!
//! Inputs are flat lists of [`Detection`]s and [`GroundTruth`]s, tagged with an image id and
//! a class index. Use [`evaluate`] for one call over the whole data set, or a
//! [`CocoEvaluator`] to feed images batch by batch (masks are reduced to IoU matrices as soon
//! as they are added, so a validation pass need not keep every mask alive).
//!
//! Masks are dense, row-major `H·W` booleans of the image they belong to. The image size is
//! not passed separately: every mask of one image must have the same length, which is
//! checked.

use std::collections::{BTreeMap, HashMap, HashSet};

/// Which overlap measure matches detections to ground truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IouKind {
    /// Box IoU on `bbox` (pycocotools `iouType="bbox"`).
    Box,
    /// Mask IoU on `mask` (pycocotools `iouType="segm"`); every detection and ground truth
    /// must carry a mask.
    Mask,
}

/// Where a detection's area (compared against the area ranges, which only matters for
/// unmatched detections) comes from in [`IouKind::Mask`] evaluation. Box evaluation always
/// uses the box area.
///
/// pycocotools' `loadRes` takes the box area when the result entries carry a `bbox` (as
/// Detectron2's output does) and the mask pixel count when they only carry a `segmentation`
/// (the official COCO results format, torchvision's reference scripts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DetectionArea {
    /// Number of mask pixels (default).
    #[default]
    Mask,
    /// `(x2 - x1) · (y2 - y1)` of the detection's `bbox`.
    Box,
}

/// Evaluation settings. IoU thresholds, recall thresholds and area ranges are COCO's and
/// fixed.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Number of classes; every `class` must be `< num_classes`, and
    /// [`ApReport::per_class`] has this length. (COCOeval's `catIds`: all categories of the
    /// data set, whether or not they have annotations.)
    pub num_classes: usize,
    /// Detections kept per image and class for the three recall columns (sorted ascending
    /// internally); COCO: `[1, 10, 100]`. The AP values use the largest.
    pub max_dets: [usize; 3],
    /// Detection area source for [`IouKind::Mask`] evaluation.
    pub mask_detection_area: DetectionArea,
}

impl Params {
    /// COCO defaults (`maxDets = [1, 10, 100]`, detection area from masks) for
    /// `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        Self {
            num_classes,
            max_dets: [1, 10, 100],
            mask_detection_area: DetectionArea::Mask,
        }
    }
}

/// One predicted object.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Image id (any integer; images are ordered by id, which only breaks score ties across
    /// images, as COCOeval's sorted `imgIds` do).
    pub image: usize,
    /// Class index, `< Params::num_classes`.
    pub class: usize,
    /// Confidence; higher ranks first. Must be finite.
    pub score: f32,
    /// Box `[x1, y1, x2, y2]` in pixels (`x2 ≥ x1`, `y2 ≥ y1`, finite). Used for box IoU,
    /// and for the detection area in box evaluation or with [`DetectionArea::Box`].
    pub bbox: [f32; 4],
    /// Row-major `H·W` mask of the image (`true` = object); required for
    /// [`IouKind::Mask`], ignored otherwise.
    pub mask: Option<Vec<bool>>,
}

/// One annotated object.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    /// Image id (see [`Detection::image`]).
    pub image: usize,
    /// Class index, `< Params::num_classes`.
    pub class: usize,
    /// Box `[x1, y1, x2, y2]` in pixels (`x2 ≥ x1`, `y2 ≥ y1`, finite).
    pub bbox: [f32; 4],
    /// Row-major `H·W` mask of the image; required for [`IouKind::Mask`].
    pub mask: Option<Vec<bool>>,
    /// COCO `iscrowd`: a crowd region. It is never counted as an object to find; detections
    /// overlapping it (IoU = intersection / detection area) are ignored instead of counted as
    /// false positives.
    pub iscrowd: bool,
    /// COCO annotation `area` in square pixels, used for the small / medium / large ranges.
    /// `None`: the mask's pixel count when a mask is given (whatever the [`IouKind`]), else
    /// the box area.
    pub area: Option<f32>,
}

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

/// Inconsistent input to the evaluator.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApError {
    /// An argument (named with its index, e.g. `detections[3].mask`) is invalid.
    #[error("invalid {argument}: {reason}")]
    InvalidArgument {
        /// The offending argument, e.g. `ground_truths[2].bbox`.
        argument: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(argument: impl Into<String>, reason: impl Into<String>) -> ApError {
    ApError::InvalidArgument {
        argument: argument.into(),
        reason: reason.into(),
    }
}

/// Number of IoU thresholds.
const T: usize = 10;
/// Number of recall thresholds.
const R: usize = 101;
/// COCO area ranges `[lo, hi]` (inclusive): all, small, medium, large.
const AREA_RANGES: [[f64; 2]; 4] = [
    [0.0, 1e10],
    [0.0, 32.0 * 32.0],
    [32.0 * 32.0, 96.0 * 96.0],
    [96.0 * 96.0, 1e10],
];

/// `np.linspace(start, stop, num)` as numpy computes it (`i * step + start`, last = stop).
fn linspace<const N: usize>(start: f64, stop: f64) -> [f64; N] {
    let step = (stop - start) / (N - 1) as f64;
    let mut out = [0.0; N];
    for (i, v) in out.iter_mut().enumerate() {
        *v = i as f64 * step + start;
    }
    out[N - 1] = stop;
    out
}

/// Data of one (image, class) pair after `add`: everything `evaluateImg` needs.
#[derive(Debug, Default)]
struct Cell {
    /// Scores of the kept detections, sorted descending (stable), at most `max(max_dets)`.
    dt_scores: Vec<f64>,
    /// Areas of those detections.
    dt_areas: Vec<f64>,
    /// Ground-truth areas, input order.
    gt_areas: Vec<f64>,
    /// Ground-truth crowd flags, input order.
    gt_crowd: Vec<bool>,
    /// IoU, row-major `[detection][ground truth]`.
    ious: Vec<f64>,
}

/// Box as pycocotools holds it: `[x, y, w, h]` in f64.
fn xywh(b: [f32; 4]) -> [f64; 4] {
    let [x1, y1, x2, y2] = b.map(f64::from);
    [x1, y1, x2 - x1, y2 - y1]
}

/// pycocotools `bbIou` (maskApi.c) for one pair.
fn box_iou(d: [f64; 4], g: [f64; 4], crowd: bool) -> f64 {
    let w = (d[2] + d[0]).min(g[2] + g[0]) - d[0].max(g[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (d[3] + d[1]).min(g[3] + g[1]) - d[1].max(g[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let i = w * h;
    let da = d[2] * d[3];
    let u = if crowd { da } else { da + g[2] * g[3] - i };
    i / u
}

/// A mask packed into 64-bit words, with its pixel count.
struct Bits {
    words: Vec<u64>,
    count: u64,
}

impl Bits {
    fn new(mask: &[bool]) -> Self {
        let words: Vec<u64> = mask
            .chunks(64)
            .map(|c| {
                c.iter()
                    .enumerate()
                    .fold(0u64, |acc, (i, &b)| acc | (u64::from(b) << i))
            })
            .collect();
        let count = words.iter().map(|w| u64::from(w.count_ones())).sum();
        Self { words, count }
    }

    /// pycocotools `rleIou` for one pair.
    fn iou(&self, g: &Bits, crowd: bool) -> f64 {
        let i: u64 = self
            .words
            .iter()
            .zip(&g.words)
            .map(|(a, b)| u64::from((a & b).count_ones()))
            .sum();
        if i == 0 {
            return 0.0;
        }
        let u = if crowd {
            self.count
        } else {
            self.count + g.count - i
        };
        i as f64 / u as f64
    }
}

fn check_box(b: [f32; 4], name: impl Fn() -> String) -> Result<(), ApError> {
    if b.iter().any(|v| !v.is_finite()) {
        return Err(invalid(name(), format!("non-finite coordinate in {b:?}")));
    }
    if b[2] < b[0] || b[3] < b[1] {
        return Err(invalid(
            name(),
            format!("expected [x1, y1, x2, y2] with x2 >= x1 and y2 >= y1, got {b:?}"),
        ));
    }
    Ok(())
}

/// Incremental COCO evaluator: [`add`](Self::add) batches of images, then
/// [`report`](Self::report).
#[derive(Debug)]
pub struct CocoEvaluator {
    kind: IouKind,
    num_classes: usize,
    max_dets: [usize; 3],
    mask_detection_area: DetectionArea,
    iou_thrs: [f64; T],
    rec_thrs: [f64; R],
    /// Images already added.
    seen: HashSet<usize>,
    /// Per (class, image) data; BTreeMap order = COCOeval's loop order (class, then image id).
    cells: BTreeMap<(usize, usize), Cell>,
}

impl CocoEvaluator {
    /// An empty evaluator for `kind` with `params`.
    pub fn new(kind: IouKind, params: &Params) -> Self {
        let mut max_dets = params.max_dets;
        max_dets.sort_unstable();
        Self {
            kind,
            num_classes: params.num_classes,
            max_dets,
            mask_detection_area: params.mask_detection_area,
            iou_thrs: linspace::<T>(0.5, 0.95),
            rec_thrs: linspace::<R>(0.0, 1.0),
            seen: HashSet::new(),
            cells: BTreeMap::new(),
        }
    }

    /// Adds the complete detections and ground truth of some images. An image may appear in
    /// one call only (its objects are matched within that call); images without any
    /// detection or ground truth need not be added.
    ///
    /// Errors (and adds nothing) on a class `>= num_classes`, a non-finite score, a malformed
    /// box, a negative or non-finite `area`, a missing mask in mask evaluation, masks of one
    /// image with different lengths, or an image already added by an earlier call.
    pub fn add(
        &mut self,
        detections: &[Detection],
        ground_truths: &[GroundTruth],
    ) -> Result<(), ApError> {
        let use_masks = self.kind == IouKind::Mask;
        let mut mask_len: HashMap<usize, (usize, String)> = HashMap::new();
        let mut check_mask = |image: usize,
                              mask: &Option<Vec<bool>>,
                              name: &dyn Fn() -> String|
         -> Result<(), ApError> {
            if !use_masks {
                return Ok(());
            }
            let Some(m) = mask else {
                return Err(invalid(
                    name(),
                    "mask evaluation needs a mask on every object",
                ));
            };
            match mask_len.get(&image) {
                Some((len, first)) if *len != m.len() => Err(invalid(
                    name(),
                    format!(
                        "mask has {} pixels but {first} of the same image {image} has {len}",
                        m.len()
                    ),
                )),
                Some(_) => Ok(()),
                None => {
                    mask_len.insert(image, (m.len(), name()));
                    Ok(())
                }
            }
        };
        let check_new = |image: usize, name: &dyn Fn() -> String| -> Result<(), ApError> {
            if self.seen.contains(&image) {
                return Err(invalid(
                    name(),
                    format!("image {image} was already added by an earlier call"),
                ));
            }
            Ok(())
        };
        for (i, d) in detections.iter().enumerate() {
            let name = |field: &str| format!("detections[{i}].{field}");
            if d.class >= self.num_classes {
                return Err(invalid(
                    name("class"),
                    format!("{} >= num_classes {}", d.class, self.num_classes),
                ));
            }
            if !d.score.is_finite() {
                return Err(invalid(name("score"), format!("{} is not finite", d.score)));
            }
            check_box(d.bbox, || name("bbox"))?;
            check_mask(d.image, &d.mask, &|| name("mask"))?;
            check_new(d.image, &|| name("image"))?;
        }
        for (i, g) in ground_truths.iter().enumerate() {
            let name = |field: &str| format!("ground_truths[{i}].{field}");
            if g.class >= self.num_classes {
                return Err(invalid(
                    name("class"),
                    format!("{} >= num_classes {}", g.class, self.num_classes),
                ));
            }
            check_box(g.bbox, || name("bbox"))?;
            if let Some(a) = g.area
                && !(a.is_finite() && a >= 0.0)
            {
                return Err(invalid(
                    name("area"),
                    format!("{a} is not a finite area >= 0"),
                ));
            }
            check_mask(g.image, &g.mask, &|| name("mask"))?;
            check_new(g.image, &|| name("image"))?;
        }

        // Group by (class, image), keeping input order.
        type Group<'a> = (Vec<&'a Detection>, Vec<&'a GroundTruth>);
        let mut groups: BTreeMap<(usize, usize), Group<'_>> = BTreeMap::new();
        for d in detections {
            groups.entry((d.class, d.image)).or_default().0.push(d);
        }
        for g in ground_truths {
            groups.entry((g.class, g.image)).or_default().1.push(g);
        }
        let max_det = self.max_dets[2];
        for (key, (mut dts, gts)) in groups {
            // Stable sort by descending score, like np.argsort(-scores, kind="mergesort").
            dts.sort_by(|a, b| {
                f64::from(b.score)
                    .partial_cmp(&f64::from(a.score))
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            dts.truncate(max_det);
            let gt_crowd: Vec<bool> = gts.iter().map(|g| g.iscrowd).collect();
            let gt_areas: Vec<f64> = gts
                .iter()
                .map(|g| match (g.area, &g.mask) {
                    (Some(a), _) => f64::from(a),
                    (None, Some(m)) => m.iter().filter(|&&b| b).count() as f64,
                    (None, None) => {
                        let b = xywh(g.bbox);
                        b[2] * b[3]
                    }
                })
                .collect();
            let mut ious = Vec::with_capacity(dts.len() * gts.len());
            let dt_areas: Vec<f64> = match self.kind {
                IouKind::Box => {
                    let gb: Vec<[f64; 4]> = gts.iter().map(|g| xywh(g.bbox)).collect();
                    let db: Vec<[f64; 4]> = dts.iter().map(|d| xywh(d.bbox)).collect();
                    for d in &db {
                        for (g, &c) in gb.iter().zip(&gt_crowd) {
                            ious.push(box_iou(*d, *g, c));
                        }
                    }
                    db.iter().map(|b| b[2] * b[3]).collect()
                }
                IouKind::Mask => {
                    // Presence was checked above; an absent mask cannot occur here.
                    let bits = |m: &Option<Vec<bool>>| Bits::new(m.as_deref().unwrap_or(&[]));
                    let gm: Vec<Bits> = gts.iter().map(|g| bits(&g.mask)).collect();
                    let dm: Vec<Bits> = dts.iter().map(|d| bits(&d.mask)).collect();
                    for d in &dm {
                        for (g, &c) in gm.iter().zip(&gt_crowd) {
                            ious.push(d.iou(g, c));
                        }
                    }
                    match self.mask_detection_area {
                        DetectionArea::Mask => dm.iter().map(|b| b.count as f64).collect(),
                        DetectionArea::Box => dts
                            .iter()
                            .map(|d| {
                                let b = xywh(d.bbox);
                                b[2] * b[3]
                            })
                            .collect(),
                    }
                }
            };
            self.cells.insert(
                key,
                Cell {
                    dt_scores: dts.iter().map(|d| f64::from(d.score)).collect(),
                    dt_areas,
                    gt_areas,
                    gt_crowd,
                    ious,
                },
            );
        }
        self.seen.extend(detections.iter().map(|d| d.image));
        self.seen.extend(ground_truths.iter().map(|g| g.image));
        Ok(())
    }

    /// COCOeval `evaluateImg` for one cell and area range: for every kept detection, per IoU
    /// threshold, (matched, ignored); plus the number of non-ignored ground truths.
    fn evaluate_cell(&self, cell: &Cell, range: [f64; 2]) -> (Vec<[(bool, bool); T]>, usize) {
        let g_n = cell.gt_areas.len();
        let ignored = |i: usize| {
            cell.gt_crowd[i] || cell.gt_areas[i] < range[0] || cell.gt_areas[i] > range[1]
        };
        // Non-ignored ground truth first, stable.
        let mut order: Vec<usize> = (0..g_n).filter(|&i| !ignored(i)).collect();
        let npig = order.len();
        order.extend((0..g_n).filter(|&i| ignored(i)));
        let gt_ig: Vec<bool> = order.iter().map(|&i| ignored(i)).collect();
        let crowd: Vec<bool> = order.iter().map(|&i| cell.gt_crowd[i]).collect();

        let d_n = cell.dt_scores.len();
        let mut out = vec![[(false, false); T]; d_n];
        let mut gt_matched = vec![false; g_n];
        for (t, &thr) in self.iou_thrs.iter().enumerate() {
            gt_matched.iter_mut().for_each(|m| *m = false);
            for (d, res) in out.iter_mut().enumerate() {
                let row = &cell.ious[d * g_n..(d + 1) * g_n];
                let mut best = thr.min(1.0 - 1e-10);
                let mut m: Option<usize> = None;
                for (gi, &g) in order.iter().enumerate() {
                    if gt_matched[gi] && !crowd[gi] {
                        continue;
                    }
                    if let Some(mi) = m
                        && !gt_ig[mi]
                        && gt_ig[gi]
                    {
                        break;
                    }
                    if row[g] < best {
                        continue;
                    }
                    best = row[g];
                    m = Some(gi);
                }
                if let Some(mi) = m {
                    res[t] = (true, gt_ig[mi]);
                    gt_matched[mi] = true;
                }
            }
        }
        // Unmatched detections outside the area range are ignored.
        for (res, &a) in out.iter_mut().zip(&cell.dt_areas) {
            if a < range[0] || a > range[1] {
                for r in res.iter_mut() {
                    if !r.0 {
                        r.1 = true;
                    }
                }
            }
        }
        (out, npig)
    }

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

/// Evaluates `detections` against `ground_truths` like pycocotools' COCOeval with
/// `iouType` `kind`. Equivalent to one [`CocoEvaluator::add`] followed by
/// [`CocoEvaluator::report`]; see [`CocoEvaluator::add`] for the errors.
pub fn evaluate(
    detections: &[Detection],
    ground_truths: &[GroundTruth],
    kind: IouKind,
    params: &Params,
) -> Result<ApReport, ApError> {
    let mut ev = CocoEvaluator::new(kind, params);
    ev.add(detections, ground_truths)?;
    Ok(ev.report())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn runs_to_mask(runs: &Value, len: usize) -> Vec<bool> {
        let mut mask = Vec::with_capacity(len);
        for (i, r) in runs.as_array().expect("runs").iter().enumerate() {
            let n = r.as_u64().expect("run length") as usize;
            mask.extend(std::iter::repeat_n(i % 2 == 1, n));
        }
        assert_eq!(mask.len(), len);
        mask
    }

    fn bbox(v: &Value) -> [f32; 4] {
        let a: Vec<f32> = v
            .as_array()
            .expect("bbox")
            .iter()
            .map(|x| x.as_f64().expect("coordinate") as f32)
            .collect();
        [a[0], a[1], a[2], a[3]]
    }

    fn usize_of(v: &Value, key: &str) -> usize {
        v[key].as_u64().expect(key) as usize
    }

    fn opt_mask(v: &Value, len: usize) -> Option<Vec<bool>> {
        (!v["mask"].is_null()).then(|| runs_to_mask(&v["mask"], len))
    }

    #[test]
    fn matches_pycocotools() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ap/cases.json");
        let text = std::fs::read_to_string(path).expect("fixture (run tools/parity/ap.py)");
        let root: Value = serde_json::from_str(&text).expect("json");
        let cases = root["cases"].as_array().expect("cases");
        assert!(cases.len() >= 6);
        let mut worst = 0.0f64;
        for case in cases {
            let name = case["name"].as_str().expect("name");
            let len = usize_of(case, "height") * usize_of(case, "width");
            let kind = match case["kind"].as_str() {
                Some("box") => IouKind::Box,
                _ => IouKind::Mask,
            };
            let mut params = Params::new(usize_of(case, "num_classes"));
            if case["det_area"].as_str() == Some("box") {
                params.mask_detection_area = DetectionArea::Box;
            }
            let dets: Vec<Detection> = case["detections"]
                .as_array()
                .expect("detections")
                .iter()
                .map(|d| Detection {
                    image: usize_of(d, "image"),
                    class: usize_of(d, "class"),
                    score: d["score"].as_f64().expect("score") as f32,
                    bbox: bbox(&d["bbox"]),
                    mask: opt_mask(d, len),
                })
                .collect();
            let gts: Vec<GroundTruth> = case["ground_truths"]
                .as_array()
                .expect("ground_truths")
                .iter()
                .map(|g| GroundTruth {
                    image: usize_of(g, "image"),
                    class: usize_of(g, "class"),
                    bbox: bbox(&g["bbox"]),
                    mask: opt_mask(g, len),
                    iscrowd: g["iscrowd"].as_bool().expect("iscrowd"),
                    area: g["area"].as_f64().map(|a| a as f32),
                })
                .collect();
            let report = evaluate(&dets, &gts, kind, &params).expect("evaluate");
            let stats = report.stats();
            for (i, want) in case["stats"].as_array().expect("stats").iter().enumerate() {
                let want = want.as_f64().expect("stat");
                let diff = (stats[i] - want).abs();
                worst = worst.max(diff);
                assert!(diff < 1e-6, "{name}: stats[{i}] = {} vs {want}", stats[i]);
            }
            let per_class = case["per_class"].as_array().expect("per_class");
            assert_eq!(report.per_class.len(), per_class.len(), "{name}");
            for (k, (got, want)) in report.per_class.iter().zip(per_class).enumerate() {
                match (got, want.as_f64()) {
                    (Some(g), Some(w)) => {
                        worst = worst.max((g - w).abs());
                        assert!((g - w).abs() < 1e-6, "{name}: class {k}: {g} vs {w}");
                    }
                    (None, None) => {}
                    _ => panic!("{name}: class {k}: {got:?} vs {want}"),
                }
            }
            // The same data fed image by image gives the same report.
            let mut ev = CocoEvaluator::new(kind, &params);
            let mut images: Vec<usize> = dets.iter().map(|d| d.image).collect();
            images.extend(gts.iter().map(|g| g.image));
            images.sort_unstable();
            images.dedup();
            for img in images.iter().rev() {
                let d: Vec<Detection> = dets.iter().filter(|d| d.image == *img).cloned().collect();
                let g: Vec<GroundTruth> = gts.iter().filter(|g| g.image == *img).cloned().collect();
                ev.add(&d, &g).expect("add");
            }
            assert_eq!(ev.report(), report, "{name}: incremental");
        }
        eprintln!("max |rust - pycocotools| = {worst:e}");
    }

    fn gt(image: usize, class: usize, bbox: [f32; 4]) -> GroundTruth {
        GroundTruth {
            image,
            class,
            bbox,
            mask: None,
            iscrowd: false,
            area: None,
        }
    }

    fn det(image: usize, class: usize, score: f32, bbox: [f32; 4]) -> Detection {
        Detection {
            image,
            class,
            score,
            bbox,
            mask: None,
        }
    }

    #[test]
    fn no_detections_gives_zero() {
        let gts = [
            gt(0, 0, [0.0, 0.0, 10.0, 10.0]),
            gt(1, 1, [0.0, 0.0, 50.0, 50.0]),
        ];
        let r = evaluate(&[], &gts, IouKind::Box, &Params::new(3)).unwrap();
        assert_eq!(r.ap, Some(0.0));
        assert_eq!(r.ap_small, Some(0.0));
        assert_eq!(r.ap_large, None);
        assert_eq!(r.ar100, Some(0.0));
        assert_eq!(r.per_class, vec![Some(0.0), Some(0.0), None]);
    }

    #[test]
    fn no_ground_truth_gives_none() {
        let dets = [det(0, 0, 0.9, [0.0, 0.0, 10.0, 10.0])];
        let r = evaluate(&dets, &[], IouKind::Box, &Params::new(2)).unwrap();
        assert_eq!(r.stats(), [-1.0; 12]);
        assert_eq!(r.per_class, vec![None, None]);
        let r = evaluate(&[], &[], IouKind::Mask, &Params::new(2)).unwrap();
        assert_eq!(r.ap, None);
    }

    #[test]
    fn perfect_detections_give_one() {
        let boxes = [
            [0.0, 0.0, 10.0, 10.0],
            [20.0, 20.0, 80.0, 70.0],
            [5.0, 5.0, 205.0, 155.0],
        ];
        let mut gts = Vec::new();
        let mut dets = Vec::new();
        for img in 0..3 {
            for (k, b) in boxes.iter().enumerate() {
                gts.push(gt(img, k, *b));
                dets.push(det(img, k, 0.5, *b));
            }
        }
        let r = evaluate(&dets, &gts, IouKind::Box, &Params::new(3)).unwrap();
        for v in r.stats() {
            assert!((v - 1.0).abs() < 1e-12, "{:?}", r.stats());
        }
        // pycocotools' precision is tp / (tp + fp + eps): "1" is 1 - 2^-52.
        let one = |v: Option<f64>| v.is_some_and(|v| (v - 1.0).abs() < 1e-12);
        assert!(r.per_class.iter().all(|&p| one(p)), "{:?}", r.per_class);

        // Masks: 4x6 images, one object each.
        let mask = |x0: usize, x1: usize| -> Vec<bool> {
            (0..24).map(|i| (x0..x1).contains(&(i % 6))).collect()
        };
        let g = GroundTruth {
            mask: Some(mask(1, 4)),
            ..gt(0, 0, [1.0, 0.0, 4.0, 4.0])
        };
        let d = Detection {
            mask: Some(mask(1, 4)),
            ..det(0, 0, 0.3, [1.0, 0.0, 4.0, 4.0])
        };
        let r = evaluate(&[d], &[g], IouKind::Mask, &Params::new(1)).unwrap();
        assert!(one(r.ap) && one(r.ar1), "{r:?}");
    }

    #[test]
    fn crowd_absorbs_detections() {
        // One real object and a crowd region; detections inside the crowd are not false
        // positives, so AP stays 1.
        let mut crowd = gt(0, 0, [100.0, 100.0, 200.0, 200.0]);
        crowd.iscrowd = true;
        let gts = [gt(0, 0, [0.0, 0.0, 10.0, 10.0]), crowd];
        let dets = [
            det(0, 0, 0.9, [110.0, 110.0, 120.0, 120.0]),
            det(0, 0, 0.8, [0.0, 0.0, 10.0, 10.0]),
            det(0, 0, 0.7, [130.0, 130.0, 150.0, 150.0]),
        ];
        let r = evaluate(&dets, &gts, IouKind::Box, &Params::new(1)).unwrap();
        assert!((r.ap.unwrap() - 1.0).abs() < 1e-12, "{r:?}");
    }

    #[test]
    fn inconsistent_inputs_are_errors() {
        let p = Params::new(2);
        let e = evaluate(&[det(0, 2, 0.5, [0.0; 4])], &[], IouKind::Box, &p).unwrap_err();
        assert!(e.to_string().contains("detections[0].class"), "{e}");
        let e = evaluate(&[det(0, 0, 0.5, [0.0; 4])], &[], IouKind::Mask, &p).unwrap_err();
        assert!(e.to_string().contains("detections[0].mask"), "{e}");
        let e = evaluate(&[], &[gt(0, 0, [5.0, 0.0, 1.0, 1.0])], IouKind::Box, &p).unwrap_err();
        assert!(e.to_string().contains("ground_truths[0].bbox"), "{e}");
        let d = Detection {
            mask: Some(vec![true; 12]),
            ..det(0, 0, 0.5, [0.0; 4])
        };
        let g = GroundTruth {
            mask: Some(vec![true; 10]),
            ..gt(0, 0, [0.0; 4])
        };
        let e = evaluate(&[d], &[g], IouKind::Mask, &p).unwrap_err();
        assert!(e.to_string().contains("ground_truths[0].mask"), "{e}");
        let mut ev = CocoEvaluator::new(IouKind::Box, &p);
        ev.add(&[], &[gt(3, 0, [0.0; 4])]).unwrap();
        let e = ev.add(&[det(3, 0, 0.5, [0.0; 4])], &[]).unwrap_err();
        assert!(e.to_string().contains("detections[0].image"), "{e}");
        let e = evaluate(&[det(0, 0, f32::NAN, [0.0; 4])], &[], IouKind::Box, &p).unwrap_err();
        assert!(e.to_string().contains("detections[0].score"), "{e}");
    }
}
