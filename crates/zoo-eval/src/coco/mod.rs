//! COCO detection metrics (box and mask AP / AR), a re-implementation of pycocotools'
//! `COCOeval` (`evaluate` + `accumulate` + `summarize`) on host data.
//!
//! The results match pycocotools to floating-point rounding (checked against fixtures written
//! by `tools/parity/ap.py`), including its conventions:
//!
//! * IoU thresholds `0.50:0.05:0.95` (computed like `np.linspace`), 101 recall thresholds
//!   `0:0.01:1` with the monotone precision envelope, `maxDets` `[1, 10, 100]`;
//! * area ranges `all`, `small` (`area ≤ 32²`), `medium` (`32² ≤ area ≤ 96²`), `large`
//!   (`area ≥ 96²`), both bounds inclusive as in COCOeval, tested on the ground-truth
//!   `area` and on the detection area;
//! * box IoU on continuous coordinates (no `+1` pixel), mask IoU on pixel counts of
//!   run-length-encoded masks ([`Rle`], pycocotools' `rleIou`);
//! * crowd ground truth (`iscrowd`): IoU is `intersection / detection area`, it is always
//!   ignored, and it may absorb any number of detections;
//! * per image and class only the `max(maxDets)` highest-scoring detections count; sorts are
//!   stable (ties keep input order, then image order), like `np.argsort(kind="mergesort")`;
//! * a class without ground truth has no AP (`-1` in COCOeval, [`None`] here) and is left out
//!   of the means; a summary with no class at all is [`None`] (`-1` in [`ApReport::stats`]).
//!
//! Inputs are what COCOeval reads from a ground-truth file and a results file: flat lists of
//! [`Detection`]s (image, class, score, box, optional mask) and [`GroundTruth`]s (image,
//! class, box, optional mask, `iscrowd`, optional `area`). Use [`evaluate`] for one call over
//! the whole data set, or a [`CocoEvaluator`] to feed images batch by batch: each batch is
//! reduced to IoU matrices as it is added, so masks need not outlive their batch (see the
//! crate docs for the memory this takes on COCO val2017).
//!
//! ```
//! use zoo_eval::coco::{Detection, GroundTruth, IouKind, Params, evaluate};
//!
//! let gt = GroundTruth::new(0, 1, [10.0, 10.0, 50.0, 40.0]);
//! let found = Detection::new(0, 1, 0.9, [12.0, 10.0, 50.0, 42.0]);
//! let report = evaluate(&[found], &[gt], IouKind::Box, &Params::new(2)).unwrap();
//! assert!((report.ap50.unwrap() - 1.0).abs() < 1e-12); // IoU 0.89
//! assert!(report.ap.unwrap() < 1.0); // not above IoU 0.90
//! ```

mod evaluator;
mod iou;
mod summary;

pub use evaluator::CocoEvaluator;
pub use summary::ApReport;

use crate::rle::Rle;

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

/// One predicted object (an entry of a COCO results file).
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
    /// The object's mask; required for [`IouKind::Mask`], ignored otherwise.
    pub mask: Option<Rle>,
}

impl Detection {
    /// A detection without a mask.
    pub fn new(image: usize, class: usize, score: f32, bbox: [f32; 4]) -> Self {
        Self {
            image,
            class,
            score,
            bbox,
            mask: None,
        }
    }
}

/// One annotated object (an entry of a COCO annotation file).
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    /// Image id (see [`Detection::image`]).
    pub image: usize,
    /// Class index, `< Params::num_classes`.
    pub class: usize,
    /// Box `[x1, y1, x2, y2]` in pixels (`x2 ≥ x1`, `y2 ≥ y1`, finite).
    pub bbox: [f32; 4],
    /// The object's mask; required for [`IouKind::Mask`].
    pub mask: Option<Rle>,
    /// COCO `iscrowd`: a crowd region. It is never counted as an object to find; detections
    /// overlapping it (IoU = intersection / detection area) are ignored instead of counted as
    /// false positives.
    pub iscrowd: bool,
    /// COCO annotation `area` in square pixels, used for the small / medium / large ranges.
    /// `None`: the mask's pixel count when a mask is given (whatever the [`IouKind`]), else
    /// the box area.
    pub area: Option<f32>,
}

impl GroundTruth {
    /// A non-crowd object without mask or annotated area.
    pub fn new(image: usize, class: usize, bbox: [f32; 4]) -> Self {
        Self {
            image,
            class,
            bbox,
            mask: None,
            iscrowd: false,
            area: None,
        }
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

/// Evaluates `detections` against `ground_truths` like pycocotools' COCOeval with
/// `iouType` `kind`. Equivalent to one [`CocoEvaluator::add`] followed by
/// [`CocoEvaluator::report`].
///
/// # Errors
/// See [`CocoEvaluator::add`].
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
