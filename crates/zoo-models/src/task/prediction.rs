//! Predictions on the host, and overlays: what to draw over an image to show a target or a
//! prediction (the drawing itself is the caller's).

use zoo_eval::Rle;

use super::instance::SHOW_SCORE;

/// One detected object, on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    /// Class (≥ 1; 0 is the background).
    pub class: usize,
    /// Class probability.
    pub score: f32,
    /// `[x1, y1, x2, y2]` in input pixels.
    pub bbox: [f32; 4],
    /// Its mask (probability ≥ 0.5).
    pub mask: Rle,
}

/// What a model says about one image.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    /// The image's class and its probability (classification).
    Label {
        /// Class id.
        class: usize,
        /// Softmax probability.
        score: f32,
    },
    /// The class of every pixel (semantic segmentation).
    ClassMap {
        /// `[height, width]`.
        size: [usize; 2],
        /// Row-major `H·W` class ids (classes above 254 saturate at 254, clear of the
        /// ignore value 255).
        classes: Vec<u8>,
    },
    /// Objects, by decreasing score (instance segmentation).
    Objects(Vec<Detected>),
}

impl Prediction {
    /// What kind of prediction it is ("label", "class map", "objects").
    pub fn kind(&self) -> &'static str {
        match self {
            Prediction::Label { .. } => "label",
            Prediction::ClassMap { .. } => "class map",
            Prediction::Objects(_) => "objects",
        }
    }

    /// The prediction in one class and one figure: a label and its probability; the class
    /// covering most pixels other than the background (0) and its pixel fraction; the best
    /// detection's class and score. `None` for an image without detection.
    pub fn top(&self) -> Option<(usize, f32)> {
        match self {
            Prediction::Label { class, score } => Some((*class, *score)),
            Prediction::ClassMap { classes, .. } => {
                let mut counts = vec![0usize; 256];
                for &c in classes {
                    counts[usize::from(c)] += 1;
                }
                let (class, n) = counts
                    .iter()
                    .enumerate()
                    .skip(1)
                    .max_by_key(|&(c, &n)| (n, std::cmp::Reverse(c)))
                    .map_or((0, 0), |(c, &n)| (c, n));
                Some((class, n as f32 / classes.len().max(1) as f32))
            }
            Prediction::Objects(objects) => objects.first().map(|d| (d.class, d.score)),
        }
    }

    /// What to draw over the `size = [height, width]` image: the class map; the objects
    /// scoring at least [`SHOW_SCORE`] with their masks; or the label and its probability.
    pub fn overlay(&self, size: [usize; 2]) -> Overlay {
        match self {
            Prediction::Label { class, score } => Overlay::label(size, *class, Some(*score)),
            Prediction::ClassMap { classes, .. } => Overlay {
                class_mask: Some(classes.clone()),
                boxes: Vec::new(),
            },
            Prediction::Objects(objects) => Overlay {
                class_mask: None,
                boxes: objects
                    .iter()
                    .filter(|d| d.score >= SHOW_SCORE)
                    .map(|d| OverlayBox {
                        bbox: d.bbox,
                        class: d.class,
                        score: Some(d.score),
                        mask: Some(d.mask.clone()),
                    })
                    .collect(),
            },
        }
    }
}

/// A box drawn over an image, with its class (and score) as a label and an optional mask.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlayBox {
    /// `[x1, y1, x2, y2]` in input pixels.
    pub bbox: [f32; 4],
    /// Class id (names the label and picks the colour).
    pub class: usize,
    /// Shown after the class name.
    pub score: Option<f32>,
    /// Blended in the class colour.
    pub mask: Option<Rle>,
}

/// What to draw over an image: a class per pixel and/or boxes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Overlay {
    /// Row-major `H·W` class ids (0 and 255 are left undrawn).
    pub class_mask: Option<Vec<u8>>,
    /// Boxes, drawn in order.
    pub boxes: Vec<OverlayBox>,
}

impl Overlay {
    /// An image-level class: a box around the whole image, labelled.
    pub fn label(size: [usize; 2], class: usize, score: Option<f32>) -> Self {
        Self {
            class_mask: None,
            boxes: vec![OverlayBox {
                bbox: [0.0, 0.0, size[1] as f32, size[0] as f32],
                class,
                score,
                mask: None,
            }],
        }
    }
}
