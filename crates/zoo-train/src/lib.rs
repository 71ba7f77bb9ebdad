//! # zoo-train
//!
//! The training loop and its input and output: run files in, run directories, checkpoints,
//! figures and pictures out. What a model is trained for — targets, loss, predictions, the
//! figures and overlays of its task — comes from its family in `zoo_models::family`, the
//! figures themselves from `zoo_eval`; nothing here depends on which family it trains.
//!
//! - [`config`]: the run file ([`config::RunConfig`], TOML, unknown keys rejected, defaults →
//!   file → `key=value` overrides, every key checked, errors naming the file and the key).
//! - [`data`]: `[data]` → datasets (built-in shapes, VOC, ImageFolder, COCO) and batches.
//! - [`train`]: the loop ([`train::train`]) with [`schedule`] (SGD-momentum/AdamW, poly /
//!   cosine / multistep schedules with warmup, gradient clipping) and [`order`] (seeded data order); a
//!   run directory with the resolved config, [`history`] (metrics CSV, JSON, curves),
//!   [`panels`] of validation samples and checkpoints, and an exact `--resume`.
//! - [`parallel`]: data-parallel training on several devices (Burn's all-reduce on CUDA,
//!   gradients gathered on the first device elsewhere), the same global batches as on one.
//! - [`eval`]: a model's validation figures over a dataset.
//! - [`checkpoint`]: `.bpk` checkpoints that carry their architecture and run file.
//! - [`rundir`], [`state`]: the run directory under its lock, and the one commit point of a
//!   checkpoint (`checkpoints/state.json`) that a resumed run starts from.
//! - [`predict`]: overlays of a checkpoint's predictions on image files.
//! - [`bench`](mod@bench): wall-clock timing of inference or a training step.
//! - [`plot`]: PNG curves and overlays.
#![warn(missing_docs)]

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
mod error;
pub mod eval;
pub mod history;
pub mod order;
pub mod panels;
pub mod parallel;
pub mod plot;
pub mod predict;
pub mod rundir;
pub mod schedule;
pub mod state;
pub mod steps;
pub mod train;

pub use error::Error;
