//! Functional operators: pure functions of tensors, torchvision names and argument order.
//!
//! Host-side work is limited to what is already small and needed on the host: ROI and box
//! coordinates (read once per call to build sampling plans, which also validates them) and
//! NMS, whose output size depends on the data. Feature maps never leave their device.

mod activation;
mod boxes;
mod conv;
mod deform_conv;
mod deform_roi_pool;
mod linear;
mod multi_scale;
mod nms;
mod norm;
mod ps_roi;
pub(crate) mod resize;
mod roi_align;
mod roi_pool;
mod sampling;
mod sgd;
mod unpool;
mod window_attention;

pub use activation::gelu;
pub use boxes::{BoxCoder, box_area, box_iou, clip_boxes_to_image, remove_small_boxes};
pub use conv::{ConvEpilogue, conv2d, conv2d_affine};
pub use deform_conv::{DeformConv2dOptions, deform_conv2d};
pub use deform_roi_pool::{DeformRoiPoolOptions, deform_roi_pool};
pub use linear::{linear, linear_layer};
pub use multi_scale::{MultiScaleRoiAlignOptions, multi_scale_roi_align};
pub use nms::{batched_nms, batched_nms_on_host, nms, nms_on_host};
pub use norm::{batch_norm, batch_norm_train, batch_norm_train_add_relu, channel_affine};
pub use ps_roi::{PsRoiAlignOptions, PsRoiPoolOptions, ps_roi_align, ps_roi_pool};
pub use resize::{ResizeMode, ResizeOptions, resize};
pub use roi_align::{RoiAlignOptions, roi_align};
pub use roi_pool::{RoiPoolOptions, roi_pool};
pub use sgd::{SgdStep, sgd_momentum};
pub use unpool::max_unpool2d;
pub use window_attention::{
    WindowAttentionOptions, shifted_window_mask, window_attention, window_partition, window_reverse,
};
