//! # zoo-train
//!
//! Config-driven training of burn-zoo models: a run file ([`config::RunConfig`], TOML,
//! unknown keys rejected, `key=value` overrides), metrics ([`metrics`]), and the training
//! loop ([`segmentation::train`]) writing a run directory (resolved config, metrics CSV,
//! checkpoints written atomically).
#![warn(missing_docs)]

pub mod config;
pub mod metrics;
pub mod segmentation;
