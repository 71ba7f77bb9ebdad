//! Upstream PyTorch weights in and out: `.safetensors` and `.pth`/`.pt` state dicts with
//! upstream key names, one [`KeyMap`] per model (each model's `key_map()`).
//!
//! The mechanism lives in [`zoo_nn::weights`] (so a project that depends on zoo-nn alone
//! loads layers the same way); this module re-exports it for the models.

pub use zoo_nn::weights::{
    KeyMap, WeightsError, block_rules, load_upstream, load_upstream_reclassed, save_upstream,
};
