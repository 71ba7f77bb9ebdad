//! # zoo-nn
//!
//! Spatial-aggregation operators for [Burn](https://burn.dev) 0.22 with torchvision semantics:
//! ROI align/pool (plain, position-sensitive, deformable, multi-scale), deformable convolution,
//! resize, max-unpooling, NMS and box utilities.
//!
//! Every operator takes tensors on whatever [`Device`](burn::tensor::Device) the caller chose
//! (flex, ndarray, wgpu, cuda, and `.autodiff()` of each) and is differentiable through Burn's
//! autodiff. Each one is proven against the PyTorch reference it mirrors, forward and backward,
//! on flex, ndarray and wgpu (see `tests/` and `tools/parity/`).
//!
//! ```no_run
//! use burn::prelude::*;
//! use zoo_nn::ops::{roi_align, RoiAlignOptions};
//!
//! let device = Device::default();
//! let features = Tensor::<4>::zeros([2, 256, 50, 50], &device);
//! // [K, 5] = (batch index, x1, y1, x2, y2) in image coordinates.
//! let rois = Tensor::<2>::from_floats([[0.0, 8.0, 8.0, 120.0, 96.0]], &device);
//! let pooled = roi_align(features, rois, RoiAlignOptions::new([7, 7], 0.25, 2, true));
//! assert_eq!(pooled.dims(), [1, 256, 7, 7]);
//! ```
#![warn(missing_docs)]

#[cfg(feature = "flex")]
pub mod kernels;
pub mod layers;
pub mod ops;
pub mod optim;
pub mod weights;
