//! A tiny Mask R-CNN and synthetic scenes for tests (shared by the `models` binary and
//! `tests/overfit.rs`).

use burn::prelude::*;
use zoo_models::detection::anchors::AnchorGeneratorConfig;
use zoo_models::detection::host::boxes_tensor;
use zoo_models::detection::mask_rcnn::{InstanceTarget, MaskRcnnConfig};
use zoo_models::detection::roi_heads::RoiHeadsSettings;
use zoo_models::detection::rpn::RpnSettings;
use zoo_models::detection::transform::RcnnTransformConfig;
use zoo_models::resnet::ResNetDepth;

/// A `[3, 64, 64]` image with filled rectangles (class 1) and ellipses (class 2) on a grey
/// background, and its target.
pub fn synthetic(objects: &[(i64, [f32; 4])], device: &Device) -> (Tensor<3>, InstanceTarget) {
    let (h, w) = (64usize, 64usize);
    let mut pixels = vec![0.45f32; 3 * h * w];
    let mut masks = vec![0f32; objects.len() * h * w];
    for (k, &(label, b)) in objects.iter().enumerate() {
        let colour = if label == 1 {
            [0.9, 0.2, 0.1]
        } else {
            [0.1, 0.8, 0.3]
        };
        let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
        let (rx, ry) = ((b[2] - b[0]) / 2.0, (b[3] - b[1]) / 2.0);
        for y in 0..h {
            for x in 0..w {
                let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                let inside = if label == 1 {
                    px >= b[0] && px < b[2] && py >= b[1] && py < b[3]
                } else {
                    ((px - cx) / rx).powi(2) + ((py - cy) / ry).powi(2) <= 1.0
                };
                if inside {
                    masks[k * h * w + y * w + x] = 1.0;
                    for c in 0..3 {
                        pixels[c * h * w + y * w + x] = colour[c];
                    }
                }
            }
        }
    }
    let g = objects.len();
    let boxes: Vec<[f32; 4]> = objects.iter().map(|o| o.1).collect();
    let labels: Vec<i64> = objects.iter().map(|o| o.0).collect();
    (
        Tensor::from_data(TensorData::new(pixels, [3, h, w]), device),
        InstanceTarget {
            boxes: boxes_tensor(&boxes, device),
            labels: Tensor::from_data(TensorData::new(labels, [g]), device),
            masks: Tensor::from_data(TensorData::new(masks, [g, h, w]), device),
        },
    )
}

/// A Mask R-CNN small enough to train in a test: ResNet-18 at width 8, 64×64 inputs.
pub fn tiny_config() -> MaskRcnnConfig {
    MaskRcnnConfig::new(3)
        .with_depth(ResNetDepth::R18)
        .with_base_channels(8)
        .with_fpn_channels(16)
        .with_representation_size(64)
        .with_mask_layers(vec![16, 16])
        .with_mask_predictor_channels(16)
        .with_anchors(AnchorGeneratorConfig::new(
            vec![vec![8.0], vec![16.0], vec![32.0], vec![64.0], vec![128.0]],
            vec![vec![0.5, 1.0, 2.0]; 5],
        ))
        .with_transform(
            RcnnTransformConfig::new()
                .with_min_size(64)
                .with_max_size(64),
        )
        .with_rpn(
            RpnSettings::new()
                .with_pre_nms_top_n_train(200)
                .with_post_nms_top_n_train(100)
                .with_pre_nms_top_n_test(200)
                .with_post_nms_top_n_test(50)
                .with_batch_size_per_image(64),
        )
        .with_roi_heads(RoiHeadsSettings::new().with_batch_size_per_image(64))
        .with_trainable_backbone_layers(5)
}
