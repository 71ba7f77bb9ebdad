//! Two-stage instance segmentation: Mask R-CNN as torchvision builds it, in reusable parts.
//!
//! - `fpn`: [`fpn::Fpn`] and the ResNet + FPN backbone.
//! - `anchors`: [`anchors::AnchorGenerator`].
//! - `rpn`: [`rpn::RpnHead`] and [`rpn::Rpn`] (proposals, matching, losses).
//! - `roi_heads`: box head and predictor, mask head and predictor, [`roi_heads::RoiHeads`]
//!   (sampling, losses, post-processing).
//! - `transform`: torchvision's `GeneralizedRCNNTransform` and `paste_masks_in_image`.
//! - `mask_rcnn`: [`mask_rcnn::MaskRcnn`], its configuration, targets, losses and
//!   [`mask_rcnn::Detections`].
//! - `host`: matching and sampling on the host.
//!
//! Data-dependent steps (top-k, NMS, matching, sampling, thresholds) run on the host over
//! box lists; feature maps and everything differentiable stay on the device, so the losses
//! train on `.autodiff()` of any backend.

pub mod anchors;
pub mod fpn;
pub mod host;
pub mod loss;
pub mod mask_rcnn;
pub mod roi_heads;
pub mod rpn;
pub mod transform;
