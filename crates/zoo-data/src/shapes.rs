//! The built-in "shapes" dataset.
//!
//! Sample `i` of a dataset with seed `s` depends on `(s, i)` only, so any split, order or
//! worker count gives the same images. Classes: `0` background, `1` circle, `2` rectangle,
//! `3` triangle, `4` ellipse ([`CLASS_NAMES`]).

use serde::{Deserialize, Serialize};

use crate::dataset::ImageDataset;
use crate::error::DataError;
use crate::rng::SplitMix64;
use crate::sample::{Object, Sample};

/// Class names, index = class id (0 = background).
pub const CLASS_NAMES: [&str; 5] = ["background", "circle", "rectangle", "triangle", "ellipse"];

/// Configuration of a [`Shapes`] dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShapesConfig {
    /// Number of samples.
    pub len: usize,
    /// Image `[height, width]`.
    pub image_size: [usize; 2],
    /// Objects per image, inclusive range `[min, max]`.
    pub objects: [usize; 2],
    /// Object size (bounding-box side) as a fraction of the smaller image side, `[min, max]`.
    pub object_scale: [f32; 2],
    /// Seed of the whole dataset.
    pub seed: u64,
}

impl Default for ShapesConfig {
    fn default() -> Self {
        Self {
            len: 1000,
            image_size: [64, 64],
            objects: [1, 3],
            object_scale: [0.25, 0.6],
            seed: 0,
        }
    }
}

/// Why a [`ShapesConfig`] is invalid.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapesConfigError(pub String);

impl std::fmt::Display for ShapesConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShapesConfigError {}

impl ShapesConfig {
    /// Checks the ranges (naming the field on error).
    pub fn validate(&self) -> Result<(), ShapesConfigError> {
        let err = |m: String| Err(ShapesConfigError(m));
        if self.image_size.iter().any(|&s| s < 8) {
            return err(format!(
                "image_size must be at least [8, 8], got {:?}",
                self.image_size
            ));
        }
        if self.objects[0] == 0 || self.objects[0] > self.objects[1] {
            return err(format!(
                "objects must be [min, max] with 1 ≤ min ≤ max, got {:?}",
                self.objects
            ));
        }
        let [lo, hi] = self.object_scale;
        if !(lo > 0.0 && lo <= hi && hi <= 1.0) {
            return err(format!(
                "object_scale must be [min, max] with 0 < min ≤ max ≤ 1, got {:?}",
                self.object_scale
            ));
        }
        Ok(())
    }
}

/// One generated sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapesSample {
    /// RGB image, `[3, H, W]` row-major, values in `[0, 1]`.
    pub image: Vec<f32>,
    /// Image `[height, width]`.
    pub size: [usize; 2],
    /// Class of every pixel (0 = background), row-major `H·W`.
    pub class_mask: Vec<u8>,
    /// The visible objects, in drawing order (objects hidden entirely are dropped).
    pub objects: Vec<Object>,
    /// Image label for classification: the class with the most visible pixels.
    pub label: usize,
}

/// The dataset: a pure function of `(config, index)`.
#[derive(Debug, Clone)]
pub struct Shapes {
    config: ShapesConfig,
}

/// The generator of sample `index` of a dataset seeded with `seed`.
fn sample_rng(seed: u64, index: u64) -> SplitMix64 {
    let mut r = SplitMix64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    r.next_u64();
    r
}

impl Shapes {
    /// The dataset described by `config`.
    ///
    /// # Errors
    /// An out-of-range field (see [`ShapesConfig::validate`]).
    pub fn new(config: ShapesConfig) -> Result<Self, ShapesConfigError> {
        config.validate()?;
        Ok(Self { config })
    }

    /// Its configuration.
    pub fn config(&self) -> &ShapesConfig {
        &self.config
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.config.len
    }

    /// Whether it has no samples.
    pub fn is_empty(&self) -> bool {
        self.config.len == 0
    }

    /// Sample `index` (any index; the dataset's `len` only bounds iteration).
    pub fn get(&self, index: usize) -> ShapesSample {
        let [h, w] = self.config.image_size;
        let mut rng = sample_rng(self.config.seed, index as u64);
        let mut image = background(&mut rng, h, w);
        let mut class_mask = vec![0u8; h * w];
        let mut owner = vec![usize::MAX; h * w];
        let [lo, hi] = self.config.objects;
        let count = lo + rng.below(hi - lo + 1);
        let mut classes = Vec::with_capacity(count);
        for k in 0..count {
            let class = 1 + rng.below(4);
            let shape = Shape::random(class, &mut rng, h, w, self.config.object_scale);
            let colour = contrasting_colour(&mut rng);
            for y in 0..h {
                for x in 0..w {
                    if shape.contains(x as f32 + 0.5, y as f32 + 0.5) {
                        let p = y * w + x;
                        class_mask[p] = class as u8;
                        owner[p] = k;
                        for (c, &v) in colour.iter().enumerate() {
                            let shade = 0.9 + 0.1 * rng.unit_f32();
                            image[c * h * w + p] = (v * shade).clamp(0.0, 1.0);
                        }
                    }
                }
            }
            classes.push(class);
        }
        let mut objects = Vec::new();
        let mut pixels = [0usize; 5];
        for (k, &class) in classes.iter().enumerate() {
            let mask: Vec<bool> = owner.iter().map(|&o| o == k).collect();
            let Some(bbox) = bounding_box(&mask, w) else {
                continue;
            };
            pixels[class] += mask.iter().filter(|&&m| m).count();
            objects.push(Object::new(class, bbox, mask));
        }
        let label = (1..5)
            .max_by_key(|&c| (pixels[c], std::cmp::Reverse(c)))
            .unwrap_or(1);
        ShapesSample {
            image,
            size: [h, w],
            class_mask,
            objects,
            label,
        }
    }
}

/// A smooth two-colour texture (sinusoidal stripes at a random angle) plus pixel noise.
fn background(rng: &mut SplitMix64, h: usize, w: usize) -> Vec<f32> {
    let a: [f32; 3] = std::array::from_fn(|_| rng.range_f32(0.05, 0.45));
    let b: [f32; 3] = std::array::from_fn(|_| rng.range_f32(0.05, 0.45));
    let angle = rng.range_f32(0.0, std::f32::consts::PI);
    let freq = rng.range_f32(0.05, 0.3);
    let (s, c) = angle.sin_cos();
    let mut image = vec![0.0; 3 * h * w];
    for y in 0..h {
        for x in 0..w {
            let t = 0.5 + 0.5 * ((x as f32 * c + y as f32 * s) * freq).sin();
            for ch in 0..3 {
                let noise = 0.05 * (rng.unit_f32() - 0.5);
                image[ch * h * w + y * w + x] =
                    (a[ch] * t + b[ch] * (1.0 - t) + noise).clamp(0.0, 1.0);
            }
        }
    }
    image
}

/// A bright colour (at least one channel high), so objects stand out of the darker textures.
fn contrasting_colour(rng: &mut SplitMix64) -> [f32; 3] {
    let mut colour: [f32; 3] = std::array::from_fn(|_| rng.range_f32(0.0, 1.0));
    let strong = rng.below(3);
    colour[strong] = rng.range_f32(0.75, 1.0);
    colour
}

enum Shape {
    Circle {
        cx: f32,
        cy: f32,
        r: f32,
    },
    Rectangle {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
    },
    Triangle {
        p: [[f32; 2]; 3],
    },
    Ellipse {
        cx: f32,
        cy: f32,
        rx: f32,
        ry: f32,
        cos: f32,
        sin: f32,
    },
}

impl Shape {
    fn random(class: usize, rng: &mut SplitMix64, h: usize, w: usize, scale: [f32; 2]) -> Shape {
        let side = h.min(w) as f32;
        let size = side * rng.range_f32(scale[0], scale[1]);
        let cx = rng.range_f32(size / 2.0, w as f32 - size / 2.0);
        let cy = rng.range_f32(size / 2.0, h as f32 - size / 2.0);
        match class {
            1 => Shape::Circle {
                cx,
                cy,
                r: size / 2.0,
            },
            2 => {
                let aspect = rng.range_f32(0.5, 1.0);
                let (hw, hh) = if rng.below(2) == 0 {
                    (size / 2.0, size * aspect / 2.0)
                } else {
                    (size * aspect / 2.0, size / 2.0)
                };
                Shape::Rectangle {
                    x1: cx - hw,
                    y1: cy - hh,
                    x2: cx + hw,
                    y2: cy + hh,
                }
            }
            3 => {
                let rot = rng.range_f32(0.0, std::f32::consts::TAU);
                let p = std::array::from_fn(|k| {
                    let a = rot + k as f32 * std::f32::consts::TAU / 3.0;
                    [cx + size / 2.0 * a.cos(), cy + size / 2.0 * a.sin()]
                });
                Shape::Triangle { p }
            }
            _ => {
                let angle = rng.range_f32(0.0, std::f32::consts::PI);
                let (sin, cos) = angle.sin_cos();
                Shape::Ellipse {
                    cx,
                    cy,
                    rx: size / 2.0,
                    ry: size / 2.0 * rng.range_f32(0.35, 0.6),
                    cos,
                    sin,
                }
            }
        }
    }

    fn contains(&self, x: f32, y: f32) -> bool {
        match *self {
            Shape::Circle { cx, cy, r } => (x - cx).powi(2) + (y - cy).powi(2) <= r * r,
            Shape::Rectangle { x1, y1, x2, y2 } => x >= x1 && x <= x2 && y >= y1 && y <= y2,
            Shape::Triangle { p } => {
                let side = |a: [f32; 2], b: [f32; 2]| {
                    (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0])
                };
                let (d1, d2, d3) = (side(p[0], p[1]), side(p[1], p[2]), side(p[2], p[0]));
                (d1 >= 0.0 && d2 >= 0.0 && d3 >= 0.0) || (d1 <= 0.0 && d2 <= 0.0 && d3 <= 0.0)
            }
            Shape::Ellipse {
                cx,
                cy,
                rx,
                ry,
                cos,
                sin,
            } => {
                let (dx, dy) = (x - cx, y - cy);
                let (u, v) = (dx * cos + dy * sin, -dx * sin + dy * cos);
                (u / rx).powi(2) + (v / ry).powi(2) <= 1.0
            }
        }
    }
}

/// Tight box of the set pixels, pixel edges; `None` when empty.
fn bounding_box(mask: &[bool], w: usize) -> Option<[f32; 4]> {
    let mut b = [usize::MAX, usize::MAX, 0, 0];
    let mut any = false;
    for (p, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
        let (x, y) = (p % w, p / w);
        b = [b[0].min(x), b[1].min(y), b[2].max(x + 1), b[3].max(y + 1)];
        any = true;
    }
    any.then(|| b.map(|v| v as f32))
}

impl From<ShapesSample> for Sample {
    fn from(s: ShapesSample) -> Self {
        Sample {
            image: s.image,
            size: s.size,
            class_mask: s.class_mask,
            objects: s.objects,
            label: Some(s.label),
        }
    }
}

impl ImageDataset for Shapes {
    fn len(&self) -> usize {
        Shapes::len(self)
    }

    /// Never fails; any index is valid (see [`Shapes::get`]).
    fn get(&self, index: usize) -> Result<Sample, DataError> {
        Ok(Shapes::get(self, index).into())
    }

    fn class_names(&self) -> Vec<String> {
        CLASS_NAMES.iter().map(|s| s.to_string()).collect()
    }

    /// The generator's classes against the model's (nothing is generated).
    fn check_classes(&self, num_classes: usize) -> Result<(), DataError> {
        crate::dataset::check_class_list(
            std::path::Path::new("<shapes data>"),
            &self.class_names(),
            num_classes,
        )
    }
}

/// The shapes data as an image-classification dataset: the label is the class with the most
/// visible pixels, shifted to `0..4` (the background is never a label), and the class names
/// leave the background out.
#[derive(Debug, Clone)]
pub struct ShapesClassification(pub Shapes);

impl ImageDataset for ShapesClassification {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        let mut s: Sample = self.0.get(index).into();
        s.label = s.label.map(|l| l - 1);
        Ok(s)
    }

    fn class_names(&self) -> Vec<String> {
        CLASS_NAMES[1..].iter().map(|s| s.to_string()).collect()
    }

    /// The generator's classes against the model's (nothing is generated).
    fn check_classes(&self, num_classes: usize) -> Result<(), DataError> {
        crate::dataset::check_class_list(
            std::path::Path::new("<shapes data>"),
            &self.class_names(),
            num_classes,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_a_pure_function_of_seed_and_index() {
        let shapes = Shapes::new(ShapesConfig::default()).unwrap();
        assert_eq!(shapes.get(17), shapes.get(17));
        assert_ne!(shapes.get(17).image, shapes.get(18).image);
        let other = Shapes::new(ShapesConfig {
            seed: 1,
            ..ShapesConfig::default()
        })
        .unwrap();
        assert_ne!(shapes.get(17).image, other.get(17).image);
    }

    #[test]
    fn masks_boxes_and_labels_agree() {
        let shapes = Shapes::new(ShapesConfig::default()).unwrap();
        let mut seen = [0usize; 5];
        for i in 0..200 {
            let s = shapes.get(i);
            let [h, w] = s.size;
            assert_eq!(s.image.len(), 3 * h * w);
            assert!(s.image.iter().all(|v| (0.0..=1.0).contains(v)));
            assert!(!s.objects.is_empty(), "sample {i} has no visible object");
            for o in &s.objects {
                // Every visible pixel of an object carries its class and lies in its box.
                for (p, _) in o.mask.iter().enumerate().filter(|(_, m)| **m) {
                    assert_eq!(s.class_mask[p] as usize, o.class);
                    let (x, y) = ((p % w) as f32, (p / w) as f32);
                    assert!(x >= o.bbox[0] && x < o.bbox[2] && y >= o.bbox[1] && y < o.bbox[3]);
                }
                seen[o.class] += 1;
            }
            // Instance masks are disjoint and cover exactly the foreground.
            for p in 0..h * w {
                let owners = s.objects.iter().filter(|o| o.mask[p]).count();
                assert_eq!(
                    owners,
                    usize::from(s.class_mask[p] != 0),
                    "sample {i} pixel {p}"
                );
            }
            assert!(s.objects.iter().any(|o| o.class == s.label));
        }
        assert!(seen[1..].iter().all(|&n| n > 20), "class counts {seen:?}");
    }

    #[test]
    fn bad_config_names_the_field() {
        let bad = ShapesConfig {
            objects: [2, 1],
            ..ShapesConfig::default()
        };
        let err = Shapes::new(bad).unwrap_err().to_string();
        assert!(err.contains("objects") && err.contains("[2, 1]"), "{err}");
        let bad = ShapesConfig {
            object_scale: [0.0, 0.5],
            ..ShapesConfig::default()
        };
        assert!(
            Shapes::new(bad)
                .unwrap_err()
                .to_string()
                .contains("object_scale")
        );
        let bad = ShapesConfig {
            image_size: [4, 64],
            ..ShapesConfig::default()
        };
        assert!(
            Shapes::new(bad)
                .unwrap_err()
                .to_string()
                .contains("image_size")
        );
    }

    #[test]
    fn shapes_through_the_trait() {
        let shapes = Shapes::new(ShapesConfig {
            len: 3,
            ..ShapesConfig::default()
        })
        .expect("valid config");
        let ds: &dyn ImageDataset = &shapes;
        assert_eq!(ds.len(), 3);
        assert!(!ds.is_empty());
        assert_eq!(ds.class_names()[1], "circle");
        let s = ds.get(1).expect("shapes never fail");
        let raw = shapes.get(1);
        assert_eq!(s.label, Some(raw.label));
        assert_eq!(s.image, raw.image);
        assert_eq!(s.objects, raw.objects);
    }

    #[test]
    fn the_classification_view_shifts_labels_past_the_background() {
        let shapes = Shapes::new(ShapesConfig {
            len: 4,
            ..ShapesConfig::default()
        })
        .expect("valid config");
        let view = ShapesClassification(shapes.clone());
        assert_eq!(
            view.class_names(),
            ["circle", "rectangle", "triangle", "ellipse"]
        );
        for i in 0..4 {
            let s = view.get(i).expect("shapes never fail");
            assert_eq!(s.label, Some(shapes.get(i).label - 1));
        }
    }
}
