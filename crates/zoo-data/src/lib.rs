//! # zoo-data
//!
//! Data for burn-zoo's trainer, with no dependency on burn (images are plain `Vec<f32>` in
//! `[3, H, W]` row-major order, masks `Vec<u8>`/`Vec<bool>` in `H·W` row-major order):
//!
//! - [`sample`]: the core types — [`Sample`] (image and annotations), [`Object`] (one
//!   instance: class, box, mask) and [`Annotation`] (a kind of ground truth).
//! - [`dataset`]: the [`ImageDataset`] trait implemented by every dataset here; [`error`]:
//!   the readers' [`DataError`].
//! - [`shapes`]: a seeded procedural dataset of circles, rectangles, triangles and ellipses
//!   over textured backgrounds, with class masks, instance masks, boxes and image labels —
//!   one generator for semantic segmentation, instance segmentation, detection and
//!   classification, reproducible from `(seed, index)` alone (no files, no global state).
//! - [`image_folder`]: torchvision's `ImageFolder` layout (`root/<class>/<image>`).
//! - [`voc`]: Pascal VOC-style segmentation (JPEG images, palette-PNG class masks, split
//!   lists).
//! - [`coco`]: COCO instances JSON (polygon and RLE masks rasterised exactly as pycocotools).
//! - [`source`]: [`Source`], a split's origin (shapes, VOC, ImageFolder, COCO) and the
//!   reader that serves the ground truth a consumer asks for.
//! - [`augment`](mod@augment): seeded random resize/flip/crop/colour jitter applied consistently to image,
//!   masks and boxes; a deterministic eval [`resize`]; and
//!   [`load_batch`], which decodes and augments on several threads with
//!   results independent of the thread count.
//!
//! Modules depend one way: `sample` ← `error` ← `dataset` ← the datasets and `augment` ←
//! `source`.
#![warn(missing_docs)]

pub mod augment;
pub mod coco;
pub mod dataset;
pub mod decode;
pub mod error;
pub mod image_folder;
pub mod rng;
pub mod sample;
pub mod shapes;
pub mod source;
pub mod voc;

pub use augment::{
    AugmentConfig, Filter, augment, center_crop, load_batch, resize, resize_antialiased,
    resize_with, shorter_side_size,
};
pub use coco::Coco;
pub use dataset::ImageDataset;
pub use error::{AugmentConfigError, DataError};
pub use image_folder::ImageFolder;
#[allow(deprecated)]
pub use sample::ShapeObject;
pub use sample::{Annotation, Object, Sample};
pub use shapes::{Shapes, ShapesClassification};
pub use source::Source;
pub use voc::Voc;
