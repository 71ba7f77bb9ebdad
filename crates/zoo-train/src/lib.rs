//! # zoo-train
//!
//! Config-driven training, evaluation and prediction for burn-zoo models:
//!
//! - [`config`]: the run file ([`config::RunConfig`], TOML, unknown keys rejected, defaults →
//!   file → `key=value` overrides, errors naming the file and the key).
//! - [`model`]: `[model]` → a zoo model and its [`model::Task`] (segmentation or
//!   classification).
//! - [`data`]: `[data]` → datasets (built-in shapes, VOC, ImageFolder, COCO) and tensors.
//! - [`train`]: the loop ([`train::train`]): SGD-momentum/AdamW, poly/cosine schedules with
//!   warmup, gradient clipping, a run directory with the resolved config, metrics CSV,
//!   curves, sample overlays and checkpoints, and an exact `--resume`.
//! - [`eval`]: validation figures ([`zoo_eval::EvalReport`]: accuracy, per-class IoU, mIoU).
//! - [`checkpoint`]: `.bpk` checkpoints that carry their architecture and run file.
//! - [`plot`]: PNG curves and prediction overlays.
#![warn(missing_docs)]

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
mod error;
pub mod eval;
mod font;
pub mod instance;
pub mod model;
pub mod plot;
pub mod predict;
pub mod train;

pub use error::Error;
