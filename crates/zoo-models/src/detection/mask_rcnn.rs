//! Mask R-CNN (He et al. 2017) as torchvision's `maskrcnn_resnet50_fpn`: ResNet + FPN
//! backbone, RPN, RoI box and mask heads, with torchvision's key names.

use burn::module::Module;
use burn::nn::BatchNorm;
use burn::prelude::*;
use zoo_nn::ops::{ResizeMode, ResizeOptions, resize};

use super::anchors::AnchorGeneratorConfig;
use super::fpn::{BackboneWithFpn, FpnConfig};
use super::host::{Boxes, SubsetSampler, host_boxes};
use super::roi_heads::{
    FastRcnnPredictorConfig, HostTarget, MaskRcnnHeadsConfig, MaskRcnnPredictorConfig, RoiHeads,
    RoiHeadsSettings, TwoMlpHeadConfig,
};
use super::rpn::{Rpn, RpnHeadConfig, RpnSettings};
use super::transform::{ImageBatch, RcnnTransformConfig, paste_masks_in_image, resize_boxes};
use crate::resnet::{Block, ResNet, ResNetConfig, ResNetDepth};
use crate::weights::KeyMap;

/// Configuration of [`MaskRcnn`]; the defaults are torchvision's `maskrcnn_resnet50_fpn`.
#[derive(Config, Debug)]
pub struct MaskRcnnConfig {
    /// Classes including the background (COCO: 91).
    pub num_classes: usize,
    /// ResNet depth of the backbone.
    #[config(default = "ResNetDepth::R50")]
    pub depth: ResNetDepth,
    /// ResNet width (torchvision: 64; smaller for tiny models).
    #[config(default = 64)]
    pub base_channels: usize,
    /// Channels of the FPN levels.
    #[config(default = 256)]
    pub fpn_channels: usize,
    /// Width of the box head's two fully connected layers.
    #[config(default = 1024)]
    pub representation_size: usize,
    /// Channels of the mask head's 3×3 convolutions.
    #[config(default = "vec![256, 256, 256, 256]")]
    pub mask_layers: Vec<usize>,
    /// Channels of the mask predictor's transposed convolution.
    #[config(default = 256)]
    pub mask_predictor_channels: usize,
    /// Anchors per pyramid level.
    #[config(default = "AnchorGeneratorConfig::mask_rcnn()")]
    pub anchors: AnchorGeneratorConfig,
    /// Input transform.
    #[config(default = "RcnnTransformConfig::new()")]
    pub transform: RcnnTransformConfig,
    /// RPN settings.
    #[config(default = "RpnSettings::new()")]
    pub rpn: RpnSettings,
    /// RoI-head settings.
    #[config(default = "RoiHeadsSettings::new()")]
    pub roi_heads: RoiHeadsSettings,
    /// Backbone stages trained, from the top (0–5, torchvision's
    /// `trainable_backbone_layers`): 3 trains layer2–layer4 and freezes the stem and layer1.
    /// BatchNorm is always frozen (torchvision's `FrozenBatchNorm2d`).
    #[config(default = 3)]
    pub trainable_backbone_layers: usize,
    /// Epsilon of the backbone's frozen BatchNorm: `FrozenBatchNorm2d`'s 1e-5, but
    /// torchvision sets it to 0 when it loads its COCO-trained `maskrcnn_resnet50_fpn`
    /// weights (`overwrite_eps`) — use 0 with those to reproduce its outputs.
    #[config(default = 1e-5)]
    pub backbone_norm_eps: f64,
    /// Freeze the backbone's BatchNorm (torchvision's `FrozenBatchNorm2d`, used with
    /// pretrained weights). `false` keeps trainable BatchNorm, as torchvision builds the model
    /// without pretrained weights (then use `trainable_backbone_layers = 5` to train it all).
    #[config(default = true)]
    pub frozen_batch_norm: bool,
}

/// Detections of one image, in its input pixels.
#[derive(Debug, Clone)]
pub struct Detections {
    /// `[K, 4]` boxes `(x1, y1, x2, y2)`, by decreasing score.
    pub boxes: Tensor<2>,
    /// `[K]` class probabilities.
    pub scores: Tensor<1>,
    /// `[K]` classes (1 … num_classes − 1).
    pub labels: Tensor<1, Int>,
    /// `[K, 1, H, W]` mask probabilities over the whole image.
    pub masks: Tensor<4>,
}

/// Ground truth of one training image, in its input pixels.
#[derive(Debug, Clone)]
pub struct InstanceTarget {
    /// `[G, 4]` boxes `(x1, y1, x2, y2)` (`G` may be 0).
    pub boxes: Tensor<2>,
    /// `[G]` classes in `1 … num_classes − 1`.
    pub labels: Tensor<1, Int>,
    /// `[G, H, W]` binary masks (0/1) of the image's size.
    pub masks: Tensor<3>,
}

/// The five training losses of Mask R-CNN (torchvision's loss-dict names); each `[1]`.
#[derive(Debug, Clone)]
pub struct MaskRcnnLosses {
    /// RPN objectness BCE.
    pub loss_objectness: Tensor<1>,
    /// RPN box smooth-L1.
    pub loss_rpn_box_reg: Tensor<1>,
    /// Box classifier cross-entropy.
    pub loss_classifier: Tensor<1>,
    /// Box regression smooth-L1.
    pub loss_box_reg: Tensor<1>,
    /// Mask BCE.
    pub loss_mask: Tensor<1>,
}

impl MaskRcnnLosses {
    /// The sum of the five terms (what torchvision's references train on).
    pub fn total(&self) -> Tensor<1> {
        self.loss_objectness.clone()
            + self.loss_rpn_box_reg.clone()
            + self.loss_classifier.clone()
            + self.loss_box_reg.clone()
            + self.loss_mask.clone()
    }
}

/// Why a training target was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DetectionError {
    /// A box with `x2 <= x1` or `y2 <= y1` (torchvision refuses these too).
    #[error(
        "targets[{image}].boxes[{index}] = {value:?} is degenerate: boxes need x2 > x1 and y2 > y1"
    )]
    DegenerateBox {
        /// Image index in the batch.
        image: usize,
        /// Box index in the image.
        index: usize,
        /// The box.
        value: [f32; 4],
    },
    /// Shapes or values that do not fit the image or the model.
    #[error("targets[{image}]: {message}")]
    BadTarget {
        /// Image index in the batch.
        image: usize,
        /// What is wrong, with the expected and actual values.
        message: String,
    },
}

/// Mask R-CNN: [`BackboneWithFpn`], [`Rpn`], [`RoiHeads`] and the input transform.
#[derive(Module, Debug)]
pub struct MaskRcnn {
    /// ResNet + FPN (keys `backbone.body.*`, `backbone.fpn.*`).
    pub backbone: BackboneWithFpn,
    /// Region proposal network (keys `rpn.head.*`).
    pub rpn: Rpn,
    /// Box and mask heads (keys `roi_heads.*`).
    pub roi_heads: RoiHeads,
    #[module(skip)]
    transform: RcnnTransformConfig,
}

/// The intermediate results of a detection pass (for inspection and parity checks).
#[derive(Debug, Clone)]
pub struct DetectionTrace {
    /// The transformed batch.
    pub batch: ImageBatch,
    /// The pyramid levels (P2–P5 and `pool`).
    pub features: Vec<Tensor<4>>,
    /// RPN proposals per image (resized coordinates).
    pub proposals: Vec<super::rpn::Proposals>,
    /// The final detections.
    pub detections: Vec<Detections>,
}

impl MaskRcnnConfig {
    /// Builds the model on `device`, with frozen BatchNorm (unless `frozen_batch_norm` is
    /// off) and the backbone stages outside `trainable_backbone_layers` frozen.
    ///
    /// # Panics
    /// If [`Self::validate`] fails (the message names the key).
    pub fn init(&self, device: &Device) -> MaskRcnn {
        if let Err(e) = self.validate() {
            panic!("MaskRcnnConfig: {e}");
        }
        let resnet = ResNetConfig::new(self.depth).with_base_channels(self.base_channels);
        let [_, c2, c3, c4, c5] = resnet.feature_channels();
        let body = freeze_backbone(
            resnet.init(device),
            self.trainable_backbone_layers,
            self.frozen_batch_norm.then_some(self.backbone_norm_eps),
        );
        let fpn = FpnConfig::new(vec![c2, c3, c4, c5], self.fpn_channels).init(device);
        let anchors = self.anchors.init();
        let per_location = anchors.num_anchors_per_location();
        let head = RpnHeadConfig::new(self.fpn_channels, per_location[0]).init(device);
        let mask_out = *self.mask_layers.last().unwrap_or(&self.fpn_channels);
        MaskRcnn {
            backbone: BackboneWithFpn { body, fpn },
            rpn: Rpn::new(head, anchors, self.rpn.clone()),
            roi_heads: RoiHeads::new(
                TwoMlpHeadConfig::new(self.fpn_channels * 49, self.representation_size)
                    .init(device),
                FastRcnnPredictorConfig::new(self.representation_size, self.num_classes)
                    .init(device),
                MaskRcnnHeadsConfig::new(self.fpn_channels, self.mask_layers.clone()).init(device),
                MaskRcnnPredictorConfig::new(
                    mask_out,
                    self.mask_predictor_channels,
                    self.num_classes,
                )
                .init(device),
                self.roi_heads.clone(),
            ),
            transform: self.transform.clone(),
        }
    }
}

/// A BatchNorm as torchvision's `FrozenBatchNorm2d` (statistics and affine parameters fixed,
/// inference arithmetic in training too) with `Some(eps)`; unchanged with `None`.
fn frozen(mut bn: BatchNorm, eps: Option<f64>) -> BatchNorm {
    match eps {
        Some(eps) => {
            bn.epsilon = eps;
            bn.freeze()
        }
        None => bn,
    }
}

fn freeze_blocks(blocks: Vec<Block>, all: bool, eps: Option<f64>) -> Vec<Block> {
    blocks
        .into_iter()
        .map(|b| {
            let b = Block {
                bn1: frozen(b.bn1, eps),
                bn2: frozen(b.bn2, eps),
                bn3: b.bn3.map(|bn| frozen(bn, eps)),
                downsample: b.downsample.map(|mut d| {
                    d.bn = frozen(d.bn, eps);
                    d
                }),
                ..b
            };
            if all { b.freeze() } else { b }
        })
        .collect()
}

/// torchvision's `FrozenBatchNorm2d` everywhere (with `Some(eps)`) and
/// `trainable_backbone_layers`: of `[layer4, layer3, layer2, layer1, conv1]`, the first
/// `trainable` train.
fn freeze_backbone(mut body: ResNet, trainable: usize, eps: Option<f64>) -> ResNet {
    let fixed = |rank: usize| rank >= trainable;
    body.bn1 = frozen(body.bn1, eps);
    if fixed(4) {
        body.conv1 = body.conv1.freeze();
    }
    body.layer1 = freeze_blocks(body.layer1, fixed(3), eps);
    body.layer2 = freeze_blocks(body.layer2, fixed(2), eps);
    body.layer3 = freeze_blocks(body.layer3, fixed(1), eps);
    body.layer4 = freeze_blocks(body.layer4, fixed(0), eps);
    body
}

impl MaskRcnn {
    /// The input transform.
    pub fn transform(&self) -> &RcnnTransformConfig {
        &self.transform
    }

    /// Detections of each `[3, H_i, W_i]` image (values in `[0, 1]`, not normalised).
    pub fn detect(&self, images: Vec<Tensor<3>>) -> Vec<Detections> {
        self.detect_traced(images).detections
    }

    /// [`detect`](Self::detect), also returning the intermediate results.
    pub fn detect_traced(&self, images: Vec<Tensor<3>>) -> DetectionTrace {
        let batch = self.transform.batch(images);
        let device = batch.tensor.device();
        let [_, _, ph, pw] = batch.tensor.dims();
        let features = self.backbone.forward(batch.tensor.clone());
        let (proposals, _, _) = self
            .rpn
            .proposals(&features, [ph, pw], &batch.image_sizes, false);
        let boxes: Vec<Boxes> = proposals.iter().map(|p| p.boxes.clone()).collect();
        let found = self
            .roi_heads
            .detect_boxes(&features, &boxes, &batch.image_sizes);
        let masks = self
            .roi_heads
            .detect_masks(&features, &found, &batch.image_sizes);
        let detections = found
            .into_iter()
            .zip(masks)
            .zip(batch.image_sizes.iter().zip(&batch.original_sizes))
            .map(|((d, m), (&size, &original))| {
                let boxes = resize_boxes(&d.boxes, size, original);
                let masks = paste_masks_in_image(m, &boxes, original, &device);
                let k = boxes.len();
                Detections {
                    boxes: super::host::boxes_tensor(&boxes, &device),
                    scores: Tensor::from_data(TensorData::new(d.scores, [k]), &device),
                    labels: Tensor::from_data(TensorData::new(d.labels, [k]), &device),
                    masks,
                }
            })
            .collect();
        DetectionTrace {
            batch,
            features,
            proposals,
            detections,
        }
    }

    /// The training losses of a batch (torchvision's train-mode forward): images through the
    /// transform, targets resized with them; proposals from the RPN with its training
    /// settings; anchors and proposals sampled through `sampler`. Images without boxes are
    /// allowed (all background).
    ///
    /// # Errors
    /// A degenerate box (naming the image and the box), a label outside
    /// `1 … num_classes − 1`, or boxes, labels and masks whose shapes disagree with each
    /// other or with the image.
    pub fn losses(
        &self,
        images: Vec<Tensor<3>>,
        targets: &[InstanceTarget],
        sampler: &mut dyn SubsetSampler,
    ) -> Result<MaskRcnnLosses, DetectionError> {
        let num_classes = self.roi_heads.num_classes();
        if targets.len() != images.len() {
            return Err(DetectionError::BadTarget {
                image: targets.len().min(images.len()),
                message: format!(
                    "one target per image is needed: {} images, {} targets",
                    images.len(),
                    targets.len()
                ),
            });
        }
        let sizes: Vec<[usize; 2]> = images
            .iter()
            .map(|x| {
                let [_, h, w] = x.dims();
                [h, w]
            })
            .collect();
        let host: Vec<(Boxes, Vec<i64>)> = targets
            .iter()
            .zip(&sizes)
            .enumerate()
            .map(|(i, (t, &size))| check_target(i, t, size, num_classes))
            .collect::<Result<_, _>>()?;
        let batch = self.transform.batch(images);
        let [_, _, ph, pw] = batch.tensor.dims();
        let targets: Vec<HostTarget> = host
            .into_iter()
            .zip(targets)
            .zip(batch.original_sizes.iter().zip(&batch.image_sizes))
            .map(|(((boxes, labels), t), (&original, &size))| {
                let masks = if size == original || boxes.is_empty() {
                    t.masks.clone()
                } else {
                    let [g, h, w] = t.masks.dims();
                    resize(
                        t.masks.clone().reshape([1, g, h, w]),
                        size,
                        ResizeOptions::new(ResizeMode::Nearest, false),
                    )
                    .reshape([g, size[0], size[1]])
                };
                HostTarget {
                    boxes: resize_boxes(&boxes, original, size),
                    labels,
                    masks,
                }
            })
            .collect();
        let features = self.backbone.forward(batch.tensor);
        let (proposals, output, anchors) =
            self.rpn
                .proposals(&features, [ph, pw], &batch.image_sizes, true);
        let gt: Vec<Boxes> = targets.iter().map(|t| t.boxes.clone()).collect();
        let rpn = self.rpn.losses(&output, &anchors, &gt, sampler);
        let boxes: Vec<Boxes> = proposals.into_iter().map(|p| p.boxes).collect();
        let (roi, _) =
            self.roi_heads
                .losses(&features, &boxes, &targets, &batch.image_sizes, sampler);
        Ok(MaskRcnnLosses {
            loss_objectness: rpn.objectness,
            loss_rpn_box_reg: rpn.box_reg,
            loss_classifier: roi.classifier,
            loss_box_reg: roi.box_reg,
            loss_mask: roi.mask,
        })
    }

    /// torchvision's key names.
    pub fn key_map(&self) -> KeyMap {
        self.backbone
            .key_map()
            .nest("rpn.head", "rpn.head", self.rpn.head.key_map())
            .nest("roi_heads", "roi_heads", self.roi_heads.key_map())
    }
}

/// Validates one target against its `[height, width]` image; returns its host boxes and
/// labels.
fn check_target(
    image: usize,
    t: &InstanceTarget,
    size: [usize; 2],
    num_classes: usize,
) -> Result<(Boxes, Vec<i64>), DetectionError> {
    let bad = |message: String| DetectionError::BadTarget { image, message };
    let [g, four] = t.boxes.dims();
    if four != 4 {
        return Err(bad(format!(
            "boxes must be [G, 4], got {:?}",
            t.boxes.dims()
        )));
    }
    if t.labels.dims() != [g] {
        return Err(bad(format!(
            "labels must be [{g}] (one per box), got {:?}",
            t.labels.dims()
        )));
    }
    if t.masks.dims() != [g, size[0], size[1]] {
        return Err(bad(format!(
            "masks must be [{g}, {}, {}] (one per box, the image's size), got {:?}",
            size[0],
            size[1],
            t.masks.dims()
        )));
    }
    let boxes = host_boxes(t.boxes.clone());
    for (index, b) in boxes.iter().enumerate() {
        if !(b[2] > b[0] && b[3] > b[1]) {
            return Err(DetectionError::DegenerateBox {
                image,
                index,
                value: *b,
            });
        }
    }
    let labels: Vec<i64> = t.labels.clone().into_data().iter::<i64>().collect();
    if let Some((k, l)) = labels
        .iter()
        .enumerate()
        .find(|(_, l)| !(1..num_classes as i64).contains(l))
    {
        return Err(bad(format!(
            "labels[{k}] = {l} is outside 1..={} (0 is the background)",
            num_classes - 1
        )));
    }
    Ok((boxes, labels))
}
