//! # zoo-data
//!
//! Data for burn-zoo's trainer. So far: [`shapes`], a seeded procedural dataset of
//! circles, rectangles, triangles and ellipses over textured backgrounds, with class masks,
//! instance masks, boxes and image labels — one generator for semantic segmentation,
//! instance segmentation, detection and classification, reproducible from `(seed, index)`
//! alone (no files, no global state).
#![warn(missing_docs)]

pub mod shapes;
