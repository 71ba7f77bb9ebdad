//! # zoo-models
//!
//! The vision models people train, composed from [`zoo_nn`] layers, each loading the upstream
//! PyTorch weights by their upstream key names (torchvision, timm,
//! segmentation_models_pytorch) and proven to give the same outputs.
//!
//! - [`resnet`]: ResNet-18/34/50/101 (torchvision), dilated for output stride 16 or 8, with
//!   multi-level features for decoders and FPN.
//! - [`deeplab`]: DeepLabV3 (torchvision) and DeepLabV3+ (smp).
//! - [`unet`]: U-Net decoder and model (smp) on a ResNet encoder.
//! - [`segmentation_head`]: smp's segmentation head (U-Net, DeepLabV3+).
//! - [`swin`]: Swin Transformer T/S/B (timm), any input size, features-only mode.
//! - [`features`]: each backbone's feature maps (channels, reduction) before it is built,
//!   as timm's `feature_info`.
//! - [`registry`]: model name → default configuration; [`registry::build`] applies a run
//!   file's options and checks every key.
//! - [`family`]: what each model family says about itself (options it takes, validation,
//!   preprocessing, its task; the loss and predictions of a batch of samples), and
//!   [`task`]: semantic segmentation, classification and instance segmentation (targets,
//!   losses, predictions, evaluators, overlays) — all a trainer needs, behind two traits.
//!
//! - [`hub`]: the published upstream weights of every model (URL, checksum, classes,
//!   preprocessing, accuracy, licence) and, with the `download` feature, a verified,
//!   resumable download cache (`hub::fetch`).
//!
//! Weights: [`weights::load_upstream`] reads `.safetensors` and `.pth`/`.pt` state dicts
//! through burn-store with one key-remap table per model ([`weights::KeyMap`], from each
//! model's `key_map()`), and refuses partial loads; [`weights::save_upstream`] writes them
//! back with upstream names.
#![warn(missing_docs)]

pub mod deeplab;
pub mod detection;
pub mod family;
pub mod features;
pub mod hub;
mod init;
pub mod registry;
pub mod resnet;
pub mod segmentation_head;
pub mod swin;
pub mod task;
pub mod unet;
pub mod weights;
