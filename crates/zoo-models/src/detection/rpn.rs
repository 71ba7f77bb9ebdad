//! Region Proposal Network: torchvision's `RPNHead` and `RegionProposalNetwork` (proposal
//! selection, anchor matching, sampling and losses).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use zoo_nn::layers::ZooForward;
use zoo_nn::ops::{BoxCoder, batched_nms_on_host};

use super::anchors::AnchorGenerator;
use super::host::{
    Boxes, Matcher, SubsetSampler, balanced_sample, big_enough, boxes_tensor, by_decreasing, clip,
    floats_tensor, host_boxes, host_floats, index_tensor,
};
use super::loss::{bce_with_logits, smooth_l1_sum};
use crate::weights::KeyMap;

/// Configuration of [`RpnHead`].
#[derive(Config, Debug)]
pub struct RpnHeadConfig {
    /// Channels of the pyramid levels.
    pub in_channels: usize,
    /// Anchors per location.
    pub num_anchors: usize,
    /// 3×3 convolutions (with ReLU) before the two predictors (torchvision: 1).
    #[config(default = 1)]
    pub conv_depth: usize,
}

impl RpnHeadConfig {
    /// Builds the head on `device`, weights drawn as torchvision's (normal, std 0.01; zero
    /// bias).
    pub fn init(&self, device: &Device) -> RpnHead {
        let conv = |cin: usize, cout: usize, k: usize| {
            let p = k / 2;
            let mut c = Conv2dConfig::new([cin, cout], [k, k])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.01,
                })
                .init(device);
            c.bias = Some(Param::from_tensor(Tensor::zeros([cout], device)));
            c
        };
        let c = self.in_channels;
        RpnHead {
            conv: (0..self.conv_depth).map(|_| conv(c, c, 3)).collect(),
            cls_logits: conv(c, self.num_anchors, 1),
            bbox_pred: conv(c, 4 * self.num_anchors, 1),
        }
    }
}

/// The RPN head: shared 3×3 convolution(s), then per anchor an objectness logit and four
/// box deltas.
#[derive(Module, Debug)]
pub struct RpnHead {
    /// 3×3 convolutions with ReLU (torchvision key `conv.{i}.0`).
    pub conv: Vec<Conv2d>,
    /// Objectness logits, one per anchor.
    pub cls_logits: Conv2d,
    /// Box deltas `(dx, dy, dw, dh)` per anchor.
    pub bbox_pred: Conv2d,
}

/// Raw RPN outputs per level.
#[derive(Debug, Clone)]
pub struct RpnOutput {
    /// `[N, A, H_l, W_l]` objectness logits per level.
    pub objectness: Vec<Tensor<4>>,
    /// `[N, 4·A, H_l, W_l]` box deltas per level.
    pub deltas: Vec<Tensor<4>>,
}

impl RpnHead {
    /// # Shapes
    /// - `features`: `[N, C, H_l, W_l]` per level
    /// - returns per level `[N, A, H_l, W_l]` logits and `[N, 4·A, H_l, W_l]` deltas
    pub fn forward(&self, features: &[Tensor<4>]) -> RpnOutput {
        let mut out = RpnOutput {
            objectness: Vec::with_capacity(features.len()),
            deltas: Vec::with_capacity(features.len()),
        };
        for f in features {
            let t = self
                .conv
                .iter()
                .fold(f.clone(), |x, c| relu(c.zoo_forward(x)));
            out.objectness.push(self.cls_logits.zoo_forward(t.clone()));
            out.deltas.push(self.bbox_pred.zoo_forward(t));
        }
        out
    }

    /// Key map of torchvision's `RPNHead` state dict: its convolutions `conv.{i}.0` (each a
    /// `Conv2dNormActivation` without norm) → `conv[i]`; `cls_logits`, `bbox_pred` as named.
    pub fn key_map(&self) -> KeyMap {
        KeyMap::new().rename(
            r"^conv\.(\d+)\.0\.",
            "conv.${1}.",
            r"^conv\.(\d+)\.",
            "conv.${1}.0.",
        )
    }
}

/// Proposal selection, matching and sampling settings of the RPN (torchvision's
/// `maskrcnn_resnet50_fpn` defaults).
#[derive(Config, Debug, PartialEq)]
pub struct RpnSettings {
    /// Top-scoring anchors kept per level before NMS, in training.
    #[config(default = 2000)]
    pub pre_nms_top_n_train: usize,
    /// … at inference.
    #[config(default = 1000)]
    pub pre_nms_top_n_test: usize,
    /// Proposals kept per image after NMS, in training.
    #[config(default = 2000)]
    pub post_nms_top_n_train: usize,
    /// … at inference.
    #[config(default = 1000)]
    pub post_nms_top_n_test: usize,
    /// NMS IoU threshold (per level).
    #[config(default = 0.7)]
    pub nms_thresh: f32,
    /// Anchors with IoU ≥ this are positives.
    #[config(default = 0.7)]
    pub fg_iou_thresh: f32,
    /// Anchors with IoU < this are negatives.
    #[config(default = 0.3)]
    pub bg_iou_thresh: f32,
    /// Anchors sampled per image for the losses.
    #[config(default = 256)]
    pub batch_size_per_image: usize,
    /// Largest fraction of positives in a sample.
    #[config(default = 0.5)]
    pub positive_fraction: f32,
    /// Proposals with a lower objectness probability are dropped.
    #[config(default = 0.0)]
    pub score_thresh: f32,
    /// Proposals with a side below this (pixels) are dropped.
    #[config(default = 1e-3)]
    pub min_size: f32,
}

/// Proposals of one image.
#[derive(Debug, Clone)]
pub struct Proposals {
    /// `(x1, y1, x2, y2)` in the resized image's pixels, by decreasing score.
    pub boxes: Boxes,
    /// Objectness probabilities.
    pub scores: Vec<f32>,
}

/// The RPN losses (torchvision's `loss_objectness`, `loss_rpn_box_reg`).
#[derive(Debug, Clone)]
pub struct RpnLosses {
    /// Binary cross-entropy of the sampled anchors' objectness.
    pub objectness: Tensor<1>,
    /// Smooth-L1 (β = 1/9) of the positive anchors' deltas, summed and divided by the number
    /// of sampled anchors.
    pub box_reg: Tensor<1>,
}

/// Per-image matching of anchors to ground truth: labels (1, 0, -1) and matched boxes.
#[derive(Debug, Clone)]
pub struct AnchorTargets {
    /// 1 = object, 0 = background, -1 = ignored.
    pub labels: Vec<i64>,
    /// The matched ground-truth box of every anchor (zeros without ground truth).
    pub matched_boxes: Boxes,
}

/// RPN: head, anchors and settings (torchvision's `RegionProposalNetwork`).
#[derive(Module, Debug)]
pub struct Rpn {
    /// The head (key `head.*`).
    pub head: RpnHead,
    #[module(skip)]
    anchors: AnchorGenerator,
    #[module(skip)]
    settings: RpnSettings,
}

/// Objectness `[N, A, H, W]` → `[N, H·W·A]` (location-major, as the anchors).
fn flat_objectness(t: Tensor<4>) -> Tensor<2> {
    let [n, a, h, w] = t.dims();
    t.permute([0, 2, 3, 1]).reshape([n, h * w * a])
}

/// Deltas `[N, 4·A, H, W]` → `[N, H·W·A, 4]`.
fn flat_deltas(t: Tensor<4>) -> Tensor<3> {
    let [n, a4, h, w] = t.dims();
    let a = a4 / 4;
    t.reshape([n, a, 4, h, w])
        .permute([0, 3, 4, 1, 2])
        .reshape([n, h * w * a, 4])
}

impl Rpn {
    /// An RPN from its parts.
    pub fn new(head: RpnHead, anchors: AnchorGenerator, settings: RpnSettings) -> Self {
        Self {
            head,
            anchors,
            settings,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &RpnSettings {
        &self.settings
    }

    /// The anchor generator.
    pub fn anchor_generator(&self) -> &AnchorGenerator {
        &self.anchors
    }

    /// Anchors of every image of a padded batch (the same for all), on the host, with the
    /// number per level.
    pub fn anchors_host(&self, padded: [usize; 2], features: &[Tensor<4>]) -> (Boxes, Vec<usize>) {
        let sizes: Vec<[usize; 2]> = features
            .iter()
            .map(|f| {
                let [_, _, h, w] = f.dims();
                [h, w]
            })
            .collect();
        let per_location = self.anchors.num_anchors_per_location();
        let per_level = sizes
            .iter()
            .zip(&per_location)
            .map(|([h, w], a)| h * w * a)
            .collect();
        (self.anchors.anchors_host(padded, &sizes), per_level)
    }

    /// Proposals per image: the top `pre_nms_top_n` anchors of each level by objectness,
    /// decoded, clipped to the image, small and low-scoring ones dropped, NMS per level, the
    /// top `post_nms_top_n` kept — torchvision's `filter_proposals`. Also returns the head
    /// outputs (for the losses).
    ///
    /// # Shapes
    /// - `features`: the pyramid levels `[N, C, H_l, W_l]` of a batch padded to `padded`
    /// - `image_sizes`: the `[height, width]` of each image before padding
    pub fn proposals(
        &self,
        features: &[Tensor<4>],
        padded: [usize; 2],
        image_sizes: &[[usize; 2]],
        training: bool,
    ) -> (Vec<Proposals>, RpnOutput, Boxes) {
        let s = &self.settings;
        let (pre_nms, post_nms) = if training {
            (s.pre_nms_top_n_train, s.post_nms_top_n_train)
        } else {
            (s.pre_nms_top_n_test, s.post_nms_top_n_test)
        };
        let out = self.head.forward(features);
        let (anchors, per_level) = self.anchors_host(padded, features);
        let n = image_sizes.len();
        let device = features[0].device();
        let objectness = Tensor::cat(
            out.objectness
                .iter()
                .cloned()
                .map(flat_objectness)
                .collect(),
            1,
        );
        let deltas = Tensor::cat(out.deltas.iter().cloned().map(flat_deltas).collect(), 1);
        let total = anchors.len();
        let logits = host_floats(objectness.detach().reshape([n * total]));
        // Only the selected anchors are decoded.
        let mut chosen: Vec<Vec<(usize, usize)>> = Vec::with_capacity(n);
        for i in 0..n {
            let image = &logits[i * total..(i + 1) * total];
            let mut picks = Vec::new();
            let mut start = 0;
            for (level, &count) in per_level.iter().enumerate() {
                let order = by_decreasing(&image[start..start + count]);
                picks.extend(order.into_iter().take(pre_nms).map(|k| (start + k, level)));
                start += count;
            }
            chosen.push(picks);
        }
        let rows: Vec<usize> = chosen
            .iter()
            .enumerate()
            .flat_map(|(i, picks)| picks.iter().map(move |&(a, _)| i * total + a))
            .collect();
        let anchor_rows: Boxes = chosen
            .iter()
            .flat_map(|picks| picks.iter().map(|&(a, _)| anchors[a]))
            .collect();
        let picked = deltas
            .detach()
            .reshape([n * total, 4])
            .select(0, index_tensor(&rows, &device));
        let decoded = host_boxes(
            BoxCoder::new([1.0; 4])
                .decode(picked, boxes_tensor(&anchor_rows, &device))
                .reshape([rows.len(), 4]),
        );
        let mut result = Vec::with_capacity(n);
        let mut offset = 0;
        for (i, picks) in chosen.iter().enumerate() {
            let mut boxes = Vec::new();
            let mut scores = Vec::new();
            let mut levels = Vec::new();
            for (k, &(a, level)) in picks.iter().enumerate() {
                let b = clip(decoded[offset + k], image_sizes[i]);
                let score = sigmoid(logits[i * total + a]);
                if big_enough(&b, s.min_size) && score >= s.score_thresh {
                    boxes.push(b);
                    scores.push(score);
                    levels.push(level as i64);
                }
            }
            offset += picks.len();
            let keep = batched_nms_on_host(&boxes, &scores, &levels, s.nms_thresh);
            let keep = &keep[..keep.len().min(post_nms)];
            result.push(Proposals {
                boxes: keep.iter().map(|&k| boxes[k]).collect(),
                scores: keep.iter().map(|&k| scores[k]).collect(),
            });
        }
        (result, out, anchors)
    }

    /// Anchor labels and matched boxes of one image (torchvision's
    /// `assign_targets_to_anchors`): without ground truth every anchor is background.
    pub fn assign_targets(&self, anchors: &[[f32; 4]], gt: &[[f32; 4]]) -> AnchorTargets {
        if gt.is_empty() {
            return AnchorTargets {
                labels: vec![0; anchors.len()],
                matched_boxes: vec![[0.0; 4]; anchors.len()],
            };
        }
        let matcher = Matcher {
            high_threshold: self.settings.fg_iou_thresh,
            low_threshold: self.settings.bg_iou_thresh,
            allow_low_quality_matches: true,
        };
        let matches = matcher.assign(gt, anchors);
        AnchorTargets {
            labels: matches
                .iter()
                .map(|&m| match m {
                    m if m >= 0 => 1,
                    super::host::BELOW_LOW_THRESHOLD => 0,
                    _ => -1,
                })
                .collect(),
            matched_boxes: matches.iter().map(|&m| gt[m.max(0) as usize]).collect(),
        }
    }

    /// The RPN losses of a batch: per image, anchors matched to `gt_boxes`, a balanced
    /// sample drawn from `sampler`, then objectness BCE (mean over the sample) and smooth-L1
    /// (β = 1/9) of the positives' deltas, summed and divided by the sample size.
    pub fn losses(
        &self,
        output: &RpnOutput,
        anchors: &[[f32; 4]],
        gt_boxes: &[Boxes],
        sampler: &mut dyn SubsetSampler,
    ) -> RpnLosses {
        let n = gt_boxes.len();
        let total = anchors.len();
        let device = output.objectness[0].device();
        let mut positives = Vec::new();
        let mut negatives = Vec::new();
        let mut pos_anchor = Vec::new();
        let mut pos_gt = Vec::new();
        for (i, gt) in gt_boxes.iter().enumerate() {
            let targets = self.assign_targets(anchors, gt);
            let (pos, neg) = balanced_sample(
                &targets.labels,
                self.settings.batch_size_per_image,
                self.settings.positive_fraction,
                sampler,
            );
            for &p in &pos {
                pos_anchor.push(anchors[p]);
                pos_gt.push(targets.matched_boxes[p]);
            }
            positives.extend(pos.iter().map(|&p| i * total + p));
            negatives.extend(neg.iter().map(|&p| i * total + p));
        }
        let objectness = Tensor::cat(
            output
                .objectness
                .iter()
                .cloned()
                .map(flat_objectness)
                .collect(),
            1,
        )
        .reshape([n * total]);
        let deltas = Tensor::cat(output.deltas.iter().cloned().map(flat_deltas).collect(), 1)
            .reshape([n * total, 4]);
        let sampled: Vec<usize> = positives.iter().chain(&negatives).copied().collect();
        let labels: Vec<f32> = positives
            .iter()
            .map(|_| 1.0)
            .chain(negatives.iter().map(|_| 0.0))
            .collect();
        let logits = objectness.select(0, index_tensor(&sampled, &device));
        let objectness_loss = bce_with_logits(logits, floats_tensor(labels, &device)).mean();
        let box_loss = if positives.is_empty() {
            deltas.sum() * 0.0
        } else {
            let targets = BoxCoder::new([1.0; 4]).encode(
                boxes_tensor(&pos_gt, &device),
                boxes_tensor(&pos_anchor, &device),
            );
            let pred = deltas.select(0, index_tensor(&positives, &device));
            smooth_l1_sum(pred, targets, 1.0 / 9.0)
        } / sampled.len().max(1) as f32;
        RpnLosses {
            objectness: objectness_loss,
            box_reg: box_loss,
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}
