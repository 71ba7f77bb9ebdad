//! [`CocoEvaluator`]: inputs checked and reduced, per (class, image), to what COCOeval's
//! `evaluateImg` reads — scores, areas, crowd flags and the IoU matrix — then matched per
//! area range and IoU threshold.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::iou::{area, box_iou, xywh};
use super::{ApError, Detection, DetectionArea, GroundTruth, IouKind, Params};
use crate::rle::Rle;

/// Number of IoU thresholds.
pub(super) const T: usize = 10;
/// Number of recall thresholds.
pub(super) const R: usize = 101;

/// `np.linspace(start, stop, num)` as numpy computes it (`i * step + start`, last = stop).
pub(super) fn linspace<const N: usize>(start: f64, stop: f64) -> [f64; N] {
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
pub(super) struct Cell {
    /// Scores of the kept detections, sorted descending (stable), at most `max(max_dets)`.
    pub(super) dt_scores: Vec<f64>,
    /// Areas of those detections.
    dt_areas: Vec<f64>,
    /// Ground-truth areas, input order.
    gt_areas: Vec<f64>,
    /// Ground-truth crowd flags, input order.
    gt_crowd: Vec<bool>,
    /// IoU, row-major `[detection][ground truth]`.
    ious: Vec<f64>,
}

/// Per kept detection and IoU threshold: (matched, ignored).
pub(super) type Matches = Vec<[(bool, bool); T]>;

fn invalid(argument: impl Into<String>, reason: impl Into<String>) -> ApError {
    ApError::InvalidArgument {
        argument: argument.into(),
        reason: reason.into(),
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
///
/// It keeps, per (class, image), the scores and areas of at most `max(max_dets)` detections,
/// the ground truths' areas and crowd flags, and their IoU matrix — not the masks.
#[derive(Debug)]
pub struct CocoEvaluator {
    kind: IouKind,
    pub(super) num_classes: usize,
    pub(super) max_dets: [usize; 3],
    mask_detection_area: DetectionArea,
    iou_thrs: [f64; T],
    pub(super) rec_thrs: [f64; R],
    /// Images already added.
    seen: HashSet<usize>,
    /// Per (class, image) data; BTreeMap order = COCOeval's loop order (class, then image id).
    pub(super) cells: BTreeMap<(usize, usize), Cell>,
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
    /// # Errors
    /// (and adds nothing) A class `>= num_classes`, a non-finite score, a malformed box, a
    /// negative or non-finite `area`, a missing mask in mask evaluation, masks of one image
    /// with different image sizes, or an image already added by an earlier call — naming the
    /// argument, e.g. `detections[3].mask`.
    pub fn add(
        &mut self,
        detections: &[Detection],
        ground_truths: &[GroundTruth],
    ) -> Result<(), ApError> {
        self.check(detections, ground_truths)?;
        // Group by (class, image), keeping input order.
        type Group<'a> = (Vec<&'a Detection>, Vec<&'a GroundTruth>);
        let mut groups: BTreeMap<(usize, usize), Group<'_>> = BTreeMap::new();
        for d in detections {
            groups.entry((d.class, d.image)).or_default().0.push(d);
        }
        for g in ground_truths {
            groups.entry((g.class, g.image)).or_default().1.push(g);
        }
        for (key, (dts, gts)) in groups {
            let cell = self.cell(dts, &gts);
            self.cells.insert(key, cell);
        }
        self.seen.extend(detections.iter().map(|d| d.image));
        self.seen.extend(ground_truths.iter().map(|g| g.image));
        Ok(())
    }

    fn check(
        &self,
        detections: &[Detection],
        ground_truths: &[GroundTruth],
    ) -> Result<(), ApError> {
        let use_masks = self.kind == IouKind::Mask;
        let mut mask_size: HashMap<usize, ([usize; 2], String)> = HashMap::new();
        let mut check_mask =
            |image: usize, mask: &Option<Rle>, name: &dyn Fn() -> String| -> Result<(), ApError> {
                if !use_masks {
                    return Ok(());
                }
                let Some(m) = mask else {
                    return Err(invalid(
                        name(),
                        "mask evaluation needs a mask on every object",
                    ));
                };
                match mask_size.get(&image) {
                    Some((size, first)) if *size != m.size() => Err(invalid(
                        name(),
                        format!(
                            "mask of a {:?} image, but {first} of the same image {image} is of a \
                             {size:?} image",
                            m.size()
                        ),
                    )),
                    Some(_) => Ok(()),
                    None => {
                        mask_size.insert(image, (m.size(), name()));
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
        let check_class = |class: usize, name: &dyn Fn() -> String| -> Result<(), ApError> {
            if class >= self.num_classes {
                return Err(invalid(
                    name(),
                    format!("{class} >= num_classes {}", self.num_classes),
                ));
            }
            Ok(())
        };
        for (i, d) in detections.iter().enumerate() {
            let name = |field: &str| format!("detections[{i}].{field}");
            check_class(d.class, &|| name("class"))?;
            if !d.score.is_finite() {
                return Err(invalid(name("score"), format!("{} is not finite", d.score)));
            }
            check_box(d.bbox, || name("bbox"))?;
            check_mask(d.image, &d.mask, &|| name("mask"))?;
            check_new(d.image, &|| name("image"))?;
        }
        for (i, g) in ground_truths.iter().enumerate() {
            let name = |field: &str| format!("ground_truths[{i}].{field}");
            check_class(g.class, &|| name("class"))?;
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
        Ok(())
    }

    /// The cell of one (class, image): the top `max(max_dets)` detections by score, their
    /// IoU with every ground truth, and the areas.
    fn cell(&self, mut dts: Vec<&Detection>, gts: &[&GroundTruth]) -> Cell {
        // Stable sort by descending score, like np.argsort(-scores, kind="mergesort").
        dts.sort_by(|a, b| {
            f64::from(b.score)
                .partial_cmp(&f64::from(a.score))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        dts.truncate(self.max_dets[2]);
        let gt_crowd: Vec<bool> = gts.iter().map(|g| g.iscrowd).collect();
        let gt_areas: Vec<f64> = gts
            .iter()
            .map(|g| match (g.area, &g.mask) {
                (Some(a), _) => f64::from(a),
                (None, Some(m)) => m.area() as f64,
                (None, None) => area(xywh(g.bbox)),
            })
            .collect();
        let box_areas = || dts.iter().map(|d| area(xywh(d.bbox))).collect();
        let mut ious = Vec::with_capacity(dts.len() * gts.len());
        let dt_areas: Vec<f64> = match self.kind {
            IouKind::Box => {
                let gb: Vec<[f64; 4]> = gts.iter().map(|g| xywh(g.bbox)).collect();
                for d in &dts {
                    let d = xywh(d.bbox);
                    for (g, &c) in gb.iter().zip(&gt_crowd) {
                        ious.push(box_iou(d, *g, c));
                    }
                }
                box_areas()
            }
            IouKind::Mask => {
                // `check` made sure every object has a mask.
                fn mask(m: &Option<Rle>) -> &Rle {
                    m.as_ref().expect("checked in add")
                }
                for d in &dts {
                    for (g, &c) in gts.iter().zip(&gt_crowd) {
                        ious.push(mask(&d.mask).iou(mask(&g.mask), c));
                    }
                }
                match self.mask_detection_area {
                    DetectionArea::Mask => {
                        dts.iter().map(|d| mask(&d.mask).area() as f64).collect()
                    }
                    DetectionArea::Box => box_areas(),
                }
            }
        };
        Cell {
            dt_scores: dts.iter().map(|d| f64::from(d.score)).collect(),
            dt_areas,
            gt_areas,
            gt_crowd,
            ious,
        }
    }

    /// COCOeval `evaluateImg` for one cell and area range: for every kept detection, per IoU
    /// threshold, (matched, ignored); plus the number of non-ignored ground truths.
    pub(super) fn evaluate_cell(&self, cell: &Cell, range: [f64; 2]) -> (Matches, usize) {
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
}
