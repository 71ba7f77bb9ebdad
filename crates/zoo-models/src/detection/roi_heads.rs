//! The RoI heads of Faster/Mask R-CNN: torchvision's `TwoMLPHead`, `FastRCNNPredictor`,
//! `MaskRCNNHeads`, `MaskRCNNPredictor` and `RoIHeads` (training-sample selection, losses,
//! post-processing).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid, softmax};
use zoo_nn::layers::ZooForward;
use zoo_nn::ops::{
    BoxCoder, MultiScaleRoiAlignOptions, RoiAlignOptions, batched_nms_on_host,
    multi_scale_roi_align, roi_align,
};

use super::host::{
    BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS, Boxes, Matcher, SubsetSampler, balanced_sample,
    big_enough, boxes_tensor, clip, host_boxes, index_tensor, ints_tensor,
};
use super::loss::{bce_with_logits, cross_entropy, smooth_l1_sum};
use crate::weights::KeyMap;

/// torchvision's `TwoMLPHead`: flatten, then two fully connected layers with ReLU.
#[derive(Module, Debug)]
pub struct TwoMlpHead {
    /// First layer: `C·7·7 → representation_size`.
    pub fc6: Linear,
    /// Second layer.
    pub fc7: Linear,
}

/// Configuration of [`TwoMlpHead`].
#[derive(Config, Debug)]
pub struct TwoMlpHeadConfig {
    /// Pooled values per RoI (`C · 7 · 7`).
    pub in_features: usize,
    /// Width of both layers (torchvision: 1024).
    pub representation_size: usize,
}

impl TwoMlpHeadConfig {
    /// Builds the head on `device`.
    pub fn init(&self, device: &Device) -> TwoMlpHead {
        let r = self.representation_size;
        TwoMlpHead {
            fc6: LinearConfig::new(self.in_features, r).init(device),
            fc7: LinearConfig::new(r, r).init(device),
        }
    }
}

impl TwoMlpHead {
    /// Key map of torchvision's `TwoMLPHead` (`fc6`, `fc7`) state dict: the same names.
    pub fn key_map(&self) -> KeyMap {
        KeyMap::new()
    }

    /// # Shapes
    /// - `x`: `[K, C, H, W]` pooled RoI features; returns `[K, representation_size]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x: Tensor<2> = x.flatten(1, 3);
        relu(self.fc7.forward(relu(self.fc6.forward(x))))
    }
}

/// torchvision's `FastRCNNPredictor`: class logits and per-class box deltas.
#[derive(Module, Debug)]
pub struct FastRcnnPredictor {
    /// `representation_size → num_classes` (background is class 0).
    pub cls_score: Linear,
    /// `representation_size → 4·num_classes`.
    pub bbox_pred: Linear,
}

/// Configuration of [`FastRcnnPredictor`].
#[derive(Config, Debug)]
pub struct FastRcnnPredictorConfig {
    /// Input features (the box head's representation size).
    pub in_features: usize,
    /// Classes, background included.
    pub num_classes: usize,
}

impl FastRcnnPredictorConfig {
    /// Builds the predictor on `device`.
    pub fn init(&self, device: &Device) -> FastRcnnPredictor {
        FastRcnnPredictor {
            cls_score: LinearConfig::new(self.in_features, self.num_classes).init(device),
            bbox_pred: LinearConfig::new(self.in_features, 4 * self.num_classes).init(device),
        }
    }
}

impl FastRcnnPredictor {
    /// Key map of torchvision's `FastRCNNPredictor` (`cls_score`, `bbox_pred`) state dict: the same names.
    pub fn key_map(&self) -> KeyMap {
        KeyMap::new()
    }

    /// # Shapes
    /// - `x`: `[K, in_features]`; returns `[K, C]` logits and `[K, 4·C]` deltas
    pub fn forward(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        (self.cls_score.forward(x.clone()), self.bbox_pred.forward(x))
    }
}

/// Kaiming-normal (fan out, ReLU gain) weights and zero bias, as torchvision's mask branch.
fn mask_init() -> Initializer {
    Initializer::KaimingNormal {
        gain: 2f64.sqrt(),
        fan_out_only: true,
    }
}

/// torchvision's `MaskRCNNHeads`: 3×3 convolutions with ReLU (keys `{i}.0.*`).
#[derive(Module, Debug)]
pub struct MaskRcnnHeads {
    /// The convolutions.
    pub layers: Vec<Conv2d>,
}

/// Configuration of [`MaskRcnnHeads`].
#[derive(Config, Debug)]
pub struct MaskRcnnHeadsConfig {
    /// Input channels (the FPN's).
    pub in_channels: usize,
    /// Output channels of each 3×3 convolution (torchvision: `[256; 4]`).
    pub layers: Vec<usize>,
    /// Dilation (and padding) of the convolutions.
    #[config(default = 1)]
    pub dilation: usize,
}

impl MaskRcnnHeadsConfig {
    /// Builds the head on `device` (Kaiming-normal fan-out weights, zero bias).
    pub fn init(&self, device: &Device) -> MaskRcnnHeads {
        let dilation = self.dilation;
        let mut cin = self.in_channels;
        let layers = self
            .layers
            .iter()
            .map(|&cout| {
                let mut c = Conv2dConfig::new([cin, cout], [3, 3])
                    .with_dilation([dilation, dilation])
                    .with_padding(PaddingConfig2d::Explicit(
                        dilation, dilation, dilation, dilation,
                    ))
                    .with_initializer(mask_init())
                    .init(device);
                c.bias = Some(Param::from_tensor(Tensor::zeros([cout], device)));
                cin = cout;
                c
            })
            .collect();
        MaskRcnnHeads { layers }
    }
}

impl MaskRcnnHeads {
    /// Key map of torchvision's `MaskRCNNHeads` state dict: `{i}.0` (each a
    /// `Conv2dNormActivation` without norm) → `layers[i]`.
    pub fn key_map(&self) -> KeyMap {
        KeyMap::new().rename(
            r"^(\d+)\.0\.",
            "layers.${1}.",
            r"^layers\.(\d+)\.",
            "${1}.0.",
        )
    }

    /// # Shapes
    /// - `x`: `[K, C, 14, 14]`; returns `[K, layers.last, 14, 14]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.layers.iter().fold(x, |x, c| relu(c.zoo_forward(x)))
    }
}

/// torchvision's `MaskRCNNPredictor`: 2×2 stride-2 transposed convolution, ReLU, 1×1
/// convolution to one mask logit map per class.
#[derive(Module, Debug)]
pub struct MaskRcnnPredictor {
    /// Upsampling transposed convolution.
    pub conv5_mask: ConvTranspose2d,
    /// Per-class mask logits.
    pub mask_fcn_logits: Conv2d,
}

/// Configuration of [`MaskRcnnPredictor`].
#[derive(Config, Debug)]
pub struct MaskRcnnPredictorConfig {
    /// Input channels (the mask head's last).
    pub in_channels: usize,
    /// Channels of the transposed convolution (torchvision: 256).
    pub dim_reduced: usize,
    /// Classes, background included.
    pub num_classes: usize,
}

impl MaskRcnnPredictorConfig {
    /// Builds the predictor on `device` (Kaiming-normal fan-out weights, zero bias).
    pub fn init(&self, device: &Device) -> MaskRcnnPredictor {
        let (in_channels, dim_reduced, num_classes) =
            (self.in_channels, self.dim_reduced, self.num_classes);
        let mut conv5_mask = ConvTranspose2dConfig::new([in_channels, dim_reduced], [2, 2])
            .with_stride([2, 2])
            .init(device);
        // PyTorch's fan-out of a `[in, out, 2, 2]` transposed-conv weight is `in · 4`.
        let std = (2.0 / (in_channels * 4) as f64).sqrt();
        conv5_mask.weight = Param::from_tensor(Tensor::random(
            [in_channels, dim_reduced, 2, 2],
            burn::tensor::Distribution::Normal(0.0, std),
            device,
        ));
        conv5_mask.bias = Some(Param::from_tensor(Tensor::zeros([dim_reduced], device)));
        let mut mask_fcn_logits = Conv2dConfig::new([dim_reduced, num_classes], [1, 1])
            .with_initializer(mask_init())
            .init(device);
        mask_fcn_logits.bias = Some(Param::from_tensor(Tensor::zeros([num_classes], device)));
        MaskRcnnPredictor {
            conv5_mask,
            mask_fcn_logits,
        }
    }
}

impl MaskRcnnPredictor {
    /// Key map of torchvision's `MaskRCNNPredictor` (`conv5_mask`, `mask_fcn_logits`) state dict: the same names.
    pub fn key_map(&self) -> KeyMap {
        KeyMap::new()
    }

    /// # Shapes
    /// - `x`: `[K, C, 14, 14]`; returns `[K, num_classes, 28, 28]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.mask_fcn_logits
            .zoo_forward(relu(self.conv5_mask.forward(x)))
    }
}

/// Sampling and post-processing settings of [`RoiHeads`] (torchvision's defaults).
#[derive(Config, Debug, PartialEq)]
pub struct RoiHeadsSettings {
    /// Proposals with IoU ≥ this are foreground.
    #[config(default = 0.5)]
    pub fg_iou_thresh: f32,
    /// Proposals with IoU < this are background.
    #[config(default = 0.5)]
    pub bg_iou_thresh: f32,
    /// Proposals sampled per image for the losses.
    #[config(default = 512)]
    pub batch_size_per_image: usize,
    /// Largest fraction of positives in a sample.
    #[config(default = 0.25)]
    pub positive_fraction: f32,
    /// Box-coder weights of `(dx, dy, dw, dh)`.
    #[config(default = "[10.0, 10.0, 5.0, 5.0]")]
    pub bbox_reg_weights: [f32; 4],
    /// Detections with a lower class probability are dropped.
    #[config(default = 0.05)]
    pub score_thresh: f32,
    /// Per-class NMS IoU threshold.
    #[config(default = 0.5)]
    pub nms_thresh: f32,
    /// Detections kept per image.
    #[config(default = 100)]
    pub detections_per_img: usize,
}

/// Detections of one image before masks: boxes in the resized image's pixels.
#[derive(Debug, Clone)]
pub struct BoxDetections {
    /// `(x1, y1, x2, y2)`.
    pub boxes: Boxes,
    /// Class probabilities.
    pub scores: Vec<f32>,
    /// Classes (1 … num_classes − 1).
    pub labels: Vec<i64>,
}

/// Ground truth of one image, on the host (resized coordinates) and its masks on the device.
#[derive(Debug, Clone)]
pub struct HostTarget {
    /// Boxes `(x1, y1, x2, y2)`.
    pub boxes: Boxes,
    /// Classes (≥ 1).
    pub labels: Vec<i64>,
    /// `[G, H, W]` binary masks of the resized image.
    pub masks: Tensor<3>,
}

/// The RoI-head losses (torchvision's `loss_classifier`, `loss_box_reg`, `loss_mask`).
#[derive(Debug, Clone)]
pub struct RoiLosses {
    /// Cross-entropy over the sampled proposals.
    pub classifier: Tensor<1>,
    /// Smooth-L1 (β = 1/9) of the positives' class-specific deltas, summed, divided by the
    /// number of sampled proposals.
    pub box_reg: Tensor<1>,
    /// Mean BCE of the positives' class mask logits against the targets' masks cropped by
    /// RoI Align to 28×28.
    pub mask: Tensor<1>,
}

/// The training samples of one image (torchvision's `select_training_samples`).
#[derive(Debug, Clone)]
pub struct RoiSamples {
    /// The sampled proposals (from the RPN's and the ground-truth boxes).
    pub proposals: Boxes,
    /// Their classes (0 = background).
    pub labels: Vec<i64>,
    /// Their matched ground-truth index (0 for background without ground truth).
    pub matched: Vec<usize>,
}

/// Box and mask heads over the pyramid (torchvision's `RoIHeads` with a mask branch).
#[derive(Module, Debug)]
pub struct RoiHeads {
    /// Box feature head.
    pub box_head: TwoMlpHead,
    /// Box classifier and regressor.
    pub box_predictor: FastRcnnPredictor,
    /// Mask feature head.
    pub mask_head: MaskRcnnHeads,
    /// Mask logits.
    pub mask_predictor: MaskRcnnPredictor,
    #[module(skip)]
    settings: RoiHeadsSettings,
}

/// `multi_scale_roi_align` over the first four levels (torchvision's featmap names 0–3).
fn pool(features: &[Tensor<4>], boxes: &[Boxes], image_size: [usize; 2], size: usize) -> Tensor<4> {
    let device = features[0].device();
    multi_scale_roi_align(
        features[..4.min(features.len())].to_vec(),
        boxes.iter().map(|b| boxes_tensor(b, &device)).collect(),
        image_size,
        MultiScaleRoiAlignOptions::new([size, size], 2),
    )
}

/// The largest height and width over the images (torchvision's `MultiScaleRoIAlign` scale
/// reference).
fn largest(image_sizes: &[[usize; 2]]) -> [usize; 2] {
    image_sizes
        .iter()
        .fold([0, 0], |m, s| [m[0].max(s[0]), m[1].max(s[1])])
}

impl RoiHeads {
    /// RoI heads from their parts.
    pub fn new(
        box_head: TwoMlpHead,
        box_predictor: FastRcnnPredictor,
        mask_head: MaskRcnnHeads,
        mask_predictor: MaskRcnnPredictor,
        settings: RoiHeadsSettings,
    ) -> Self {
        Self {
            box_head,
            box_predictor,
            mask_head,
            mask_predictor,
            settings,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &RoiHeadsSettings {
        &self.settings
    }

    fn box_coder(&self) -> BoxCoder {
        BoxCoder::new(self.settings.bbox_reg_weights)
    }

    /// Class logits `[ΣK, C]` and box deltas `[ΣK, 4·C]` of each image's boxes (7×7 RoI
    /// Align on the level each box's size selects).
    pub fn box_logits(
        &self,
        features: &[Tensor<4>],
        boxes: &[Boxes],
        image_sizes: &[[usize; 2]],
    ) -> (Tensor<2>, Tensor<2>) {
        if boxes.iter().all(Vec::is_empty) {
            // No RoI at all: empty outputs without running the heads on an empty batch.
            let classes = self.num_classes();
            let device = features[0].device();
            return (
                Tensor::zeros([0, classes], &device),
                Tensor::zeros([0, 4 * classes], &device),
            );
        }
        let pooled = pool(features, boxes, largest(image_sizes), 7);
        self.box_predictor.forward(self.box_head.forward(pooled))
    }

    /// Classes of the predictors, background included.
    pub fn num_classes(&self) -> usize {
        self.box_predictor.cls_score.weight.dims()[1]
    }

    /// Mask logits `[ΣK, C, 28, 28]` of each image's boxes (14×14 RoI Align).
    pub fn mask_logits(
        &self,
        features: &[Tensor<4>],
        boxes: &[Boxes],
        image_sizes: &[[usize; 2]],
    ) -> Tensor<4> {
        if boxes.iter().all(Vec::is_empty) {
            return Tensor::zeros([0, self.num_classes(), 28, 28], &features[0].device());
        }
        let pooled = pool(features, boxes, largest(image_sizes), 14);
        self.mask_predictor.forward(self.mask_head.forward(pooled))
    }

    /// Final boxes of each image (torchvision's `postprocess_detections`): softmax, per-class
    /// decoding, clipping, background dropped, score threshold, small boxes dropped, NMS per
    /// class, the top `detections_per_img`.
    pub fn detect_boxes(
        &self,
        features: &[Tensor<4>],
        proposals: &[Boxes],
        image_sizes: &[[usize; 2]],
    ) -> Vec<BoxDetections> {
        let device = features[0].device();
        if proposals.iter().all(Vec::is_empty) {
            let none = BoxDetections {
                boxes: Vec::new(),
                scores: Vec::new(),
                labels: Vec::new(),
            };
            return vec![none; proposals.len()];
        }
        let (logits, deltas) = self.box_logits(features, proposals, image_sizes);
        let [k, classes] = logits.dims();
        let all: Boxes = proposals.iter().flatten().copied().collect();
        let decoded = host_boxes(
            self.box_coder()
                .decode(deltas, boxes_tensor(&all, &device))
                .reshape([k * classes, 4]),
        );
        let scores: Vec<f32> = softmax(logits, 1).into_data().iter::<f32>().collect();
        let s = &self.settings;
        let mut out = Vec::with_capacity(proposals.len());
        let mut row = 0;
        for (i, props) in proposals.iter().enumerate() {
            let (mut boxes, mut kept_scores, mut labels) = (Vec::new(), Vec::new(), Vec::new());
            for r in row..row + props.len() {
                for c in 1..classes {
                    let b = clip(decoded[r * classes + c], image_sizes[i]);
                    let score = scores[r * classes + c];
                    if score > s.score_thresh && big_enough(&b, 1e-2) {
                        boxes.push(b);
                        kept_scores.push(score);
                        labels.push(c as i64);
                    }
                }
            }
            row += props.len();
            let mut keep = batched_nms_on_host(&boxes, &kept_scores, &labels, s.nms_thresh);
            keep.truncate(s.detections_per_img);
            out.push(BoxDetections {
                boxes: keep.iter().map(|&j| boxes[j]).collect(),
                scores: keep.iter().map(|&j| kept_scores[j]).collect(),
                labels: keep.iter().map(|&j| labels[j]).collect(),
            });
        }
        out
    }

    /// Mask probabilities `[K_i, 1, 28, 28]` of each image's detections, at their class.
    pub fn detect_masks(
        &self,
        features: &[Tensor<4>],
        detections: &[BoxDetections],
        image_sizes: &[[usize; 2]],
    ) -> Vec<Tensor<4>> {
        let device = features[0].device();
        let boxes: Vec<Boxes> = detections.iter().map(|d| d.boxes.clone()).collect();
        if boxes.iter().all(Vec::is_empty) {
            let none = Tensor::zeros([0, 1, 28, 28], &device);
            return vec![none; detections.len()];
        }
        let logits = self.mask_logits(features, &boxes, image_sizes);
        let [k, classes, h, w] = logits.dims();
        let rows: Vec<usize> = detections
            .iter()
            .flat_map(|d| d.labels.iter())
            .enumerate()
            .map(|(r, &l)| r * classes + l as usize)
            .collect();
        let probs = sigmoid(
            logits
                .reshape([k * classes, h, w])
                .select(0, index_tensor(&rows, &device)),
        )
        .reshape([k, 1, h, w]);
        let mut out = Vec::with_capacity(detections.len());
        let mut start = 0;
        for d in detections {
            let n = d.boxes.len();
            out.push(probs.clone().slice(s![start..start + n]));
            start += n;
        }
        out
    }

    /// Proposals plus ground truth, matched (IoU ≥ `fg_iou_thresh` foreground, below
    /// `bg_iou_thresh` background) and sampled — torchvision's `select_training_samples` for
    /// one image.
    pub fn sample(
        &self,
        proposals: &[[f32; 4]],
        target: &HostTarget,
        sampler: &mut dyn SubsetSampler,
    ) -> RoiSamples {
        let s = &self.settings;
        let candidates: Boxes = proposals.iter().chain(&target.boxes).copied().collect();
        let (labels, matched): (Vec<i64>, Vec<usize>) = if target.boxes.is_empty() {
            (vec![0; candidates.len()], vec![0; candidates.len()])
        } else {
            let matcher = Matcher {
                high_threshold: s.fg_iou_thresh,
                low_threshold: s.bg_iou_thresh,
                allow_low_quality_matches: false,
            };
            matcher
                .assign(&target.boxes, &candidates)
                .into_iter()
                .map(|m| match m {
                    BELOW_LOW_THRESHOLD => (0, 0),
                    BETWEEN_THRESHOLDS => (-1, 0),
                    m => (target.labels[m as usize], m as usize),
                })
                .unzip()
        };
        let (pos, neg) = balanced_sample(
            &labels,
            s.batch_size_per_image,
            s.positive_fraction,
            sampler,
        );
        let mut sampled: Vec<usize> = pos.into_iter().chain(neg).collect();
        sampled.sort_unstable();
        RoiSamples {
            proposals: sampled.iter().map(|&i| candidates[i]).collect(),
            labels: sampled.iter().map(|&i| labels[i]).collect(),
            matched: sampled.iter().map(|&i| matched[i]).collect(),
        }
    }

    /// The RoI losses of a batch from the RPN's proposals and the targets (see
    /// [`RoiLosses`]).
    pub fn losses(
        &self,
        features: &[Tensor<4>],
        proposals: &[Boxes],
        targets: &[HostTarget],
        image_sizes: &[[usize; 2]],
        sampler: &mut dyn SubsetSampler,
    ) -> (RoiLosses, Vec<RoiSamples>) {
        let device = features[0].device();
        let samples: Vec<RoiSamples> = proposals
            .iter()
            .zip(targets)
            .map(|(p, t)| self.sample(p, t, sampler))
            .collect();
        let boxes: Vec<Boxes> = samples.iter().map(|s| s.proposals.clone()).collect();
        let (logits, deltas) = self.box_logits(features, &boxes, image_sizes);
        let [total, classes] = logits.dims();
        let labels: Vec<i64> = samples.iter().flat_map(|s| s.labels.clone()).collect();
        let classifier = cross_entropy(logits, ints_tensor(labels.clone(), &device));

        // Positives, per image in sampled order: rows, proposals and matched targets.
        let (mut rows, mut pos_boxes, mut pos_gt) = (Vec::new(), Vec::new(), Vec::new());
        let mut mask_boxes: Vec<Boxes> = Vec::with_capacity(samples.len());
        let mut mask_targets = Vec::new();
        let mut row = 0;
        for (s, t) in samples.iter().zip(targets) {
            let mut mine = Vec::new();
            let mut matched = Vec::new();
            for j in 0..s.labels.len() {
                if s.labels[j] > 0 {
                    rows.push((row + j) * classes + s.labels[j] as usize);
                    pos_boxes.push(s.proposals[j]);
                    pos_gt.push(t.boxes[s.matched[j]]);
                    mine.push(s.proposals[j]);
                    matched.push(s.matched[j]);
                }
            }
            row += s.labels.len();
            if !mine.is_empty() {
                mask_targets.push(project_masks(&t.masks, &mine, &matched, 28));
            }
            mask_boxes.push(mine);
        }
        let norm = total.max(1) as f32;
        let box_reg = if rows.is_empty() {
            deltas.sum() * 0.0
        } else {
            let pred = deltas
                .reshape([total * classes, 4])
                .select(0, index_tensor(&rows, &device));
            let targets = self.box_coder().encode(
                boxes_tensor(&pos_gt, &device),
                boxes_tensor(&pos_boxes, &device),
            );
            smooth_l1_sum(pred, targets, 1.0 / 9.0)
        } / norm;
        let mask_logits = self.mask_logits(features, &mask_boxes, image_sizes);
        let mask = if rows.is_empty() {
            mask_logits.sum() * 0.0
        } else {
            let [k, c, h, w] = mask_logits.dims();
            let mask_rows: Vec<usize> = samples
                .iter()
                .flat_map(|s| s.labels.iter().filter(|&&l| l > 0))
                .enumerate()
                .map(|(r, &l)| r * c + l as usize)
                .collect();
            let picked = mask_logits
                .reshape([k * c, h, w])
                .select(0, index_tensor(&mask_rows, &device));
            bce_with_logits(picked, Tensor::cat(mask_targets, 0)).mean()
        };
        (
            RoiLosses {
                classifier,
                box_reg,
                mask,
            },
            samples,
        )
    }

    /// Key map of torchvision's `RoIHeads` state dict (`box_head.fc6`/`fc7`,
    /// `box_predictor.cls_score`/`bbox_pred`, `mask_head.*` through
    /// [`MaskRcnnHeads::key_map`], `mask_predictor.conv5_mask`/`mask_fcn_logits`).
    pub fn key_map(&self) -> KeyMap {
        KeyMap::new().nest("mask_head", "mask_head", self.mask_head.key_map())
    }
}

/// torchvision's `project_masks_on_boxes`: each matched target mask cropped to its
/// proposal by RoI Align (`aligned = false`, adaptive sampling) at `m × m`.
///
/// # Shapes
/// - `masks`: `[G, H, W]`; returns `[K, m, m]`
fn project_masks(masks: &Tensor<3>, boxes: &[[f32; 4]], matched: &[usize], m: usize) -> Tensor<3> {
    let device = masks.device();
    let [g, h, w] = masks.dims();
    let rois: Vec<f32> = boxes
        .iter()
        .zip(matched)
        .flat_map(|(b, &i)| [i as f32, b[0], b[1], b[2], b[3]])
        .collect();
    let k = boxes.len();
    let rois = Tensor::from_data(TensorData::new(rois, [k, 5]), &device);
    roi_align(
        masks.clone().reshape([g, 1, h, w]),
        rois,
        RoiAlignOptions::new([m, m], 1.0, -1, false),
    )
    .reshape([k, m, m])
}
