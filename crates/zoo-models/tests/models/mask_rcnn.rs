//! Mask R-CNN against torchvision (`tools/parity/mask_rcnn.py`): a narrow
//! `MaskRCNN` (ResNet-50 of width 8, FPN of 16 channels, small heads) with upstream key
//! names, eval-mode intermediates and detections, and train-mode losses replaying the
//! reference's random samples.

use burn::module::Param;
use burn::prelude::*;
use zoo_models::detection::anchors::AnchorGeneratorConfig;
use zoo_models::detection::host::{SubsetSampler, boxes_tensor, host_boxes};
use zoo_models::detection::mask_rcnn::{InstanceTarget, MaskRcnn, MaskRcnnConfig};
use zoo_models::detection::roi_heads::RoiHeadsSettings;
use zoo_models::detection::rpn::RpnSettings;
use zoo_models::detection::transform::RcnnTransformConfig;
use zoo_testing::{FWD_TOL, Fixture, GRAD_TOL, assert_close, assert_ints_eq, for_each_device};

use crate::tiny_mask_rcnn::{synthetic, tiny_config};
use crate::{cases, with_weights};

const MODEL: &str = "mask_rcnn";

pub fn case(name: &str) -> Fixture {
    cases(MODEL)
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("fixture {MODEL}/{name} is missing"))
}

/// The fixture's model configuration (see `tools/parity/mask_rcnn.py`).
pub fn config(case: &Fixture) -> MaskRcnnConfig {
    let sizes: Vec<Vec<f32>> = case.param("anchor_sizes");
    let ratios: Vec<Vec<f32>> = case.param("aspect_ratios");
    MaskRcnnConfig::new(case.param("num_classes"))
        .with_depth(case.param("depth"))
        .with_base_channels(case.param("base_channels"))
        .with_fpn_channels(case.param("fpn_channels"))
        .with_representation_size(case.param("representation_size"))
        .with_mask_layers(case.param("mask_layers"))
        .with_mask_predictor_channels(case.param("mask_predictor_channels"))
        .with_anchors(AnchorGeneratorConfig::new(sizes, ratios))
        .with_transform(
            RcnnTransformConfig::new()
                .with_min_size(case.param("min_size"))
                .with_max_size(case.param("max_size")),
        )
        .with_rpn(
            RpnSettings::new()
                .with_pre_nms_top_n_test(case.param("rpn_pre_nms_top_n_test"))
                .with_post_nms_top_n_test(case.param("rpn_post_nms_top_n_test"))
                .with_pre_nms_top_n_train(case.param("rpn_pre_nms_top_n_train"))
                .with_post_nms_top_n_train(case.param("rpn_post_nms_top_n_train"))
                .with_batch_size_per_image(case.param("rpn_batch_size_per_image")),
        )
        .with_roi_heads(
            RoiHeadsSettings::new()
                .with_batch_size_per_image(case.param("box_batch_size_per_image"))
                .with_detections_per_img(case.param("box_detections_per_img"))
                .with_score_thresh(case.param("box_score_thresh"))
                .with_nms_thresh(case.param("box_nms_thresh")),
        )
}

fn model(case: &Fixture, device: &Device) -> MaskRcnn {
    let model = config(case).init(device);
    let map = model.key_map();
    with_weights(MODEL, case, model, &map)
}

fn images(case: &Fixture, device: &Device) -> Vec<Tensor<3>> {
    vec![case.float("image_0", device), case.float("image_1", device)]
}

/// Boxes compared with a tolerance scaled to their magnitude (pixels), as the other floats.
fn close_boxes(actual: &[[f32; 4]], expected: Tensor<2>, what: &str) {
    let device = expected.device();
    assert_close(boxes_tensor(actual, &device), expected, FWD_TOL, what);
}

#[test]
fn mask_rcnn_eval_matches_torchvision() {
    let case = case("small");
    for_each_device(|name, device| {
        let what = |k: &str| format!("{MODEL}/small {k} on {name}");
        let model = model(&case, device);
        let trace = model.detect_traced(images(&case, device));
        assert_eq!(
            trace
                .batch
                .image_sizes
                .iter()
                .map(|s| s.to_vec())
                .collect::<Vec<_>>(),
            case.param::<Vec<Vec<usize>>>("image_sizes"),
            "{}",
            what("image_sizes")
        );
        assert_close(
            trace.batch.tensor.clone(),
            case.float("batch", device),
            FWD_TOL,
            &what("batch"),
        );
        let keys = ["fpn_0", "fpn_1", "fpn_2", "fpn_3", "fpn_pool"];
        for (f, key) in trace.features.iter().zip(keys) {
            assert_close(f.clone(), case.float(key, device), FWD_TOL, &what(key));
        }
        let [_, _, ph, pw] = trace.batch.tensor.dims();
        let (anchors, _) = model.rpn.anchors_host([ph, pw], &trace.features);
        close_boxes(
            &anchors,
            case.float("anchors_0", device),
            &what("anchors_0"),
        );
        let head = model.rpn.head.forward(&trace.features);
        for l in 0..5 {
            let k = format!("rpn_objectness_{l}");
            assert_close(
                head.objectness[l].clone(),
                case.float(&k, device),
                FWD_TOL,
                &what(&k),
            );
            let k = format!("rpn_deltas_{l}");
            assert_close(
                head.deltas[l].clone(),
                case.float(&k, device),
                FWD_TOL,
                &what(&k),
            );
        }
        for (i, p) in trace.proposals.iter().enumerate() {
            let k = format!("proposals_{i}");
            close_boxes(&p.boxes, case.float(&k, device), &what(&k));
            let k = format!("proposal_scores_{i}");
            let scores =
                Tensor::<1>::from_data(TensorData::new(p.scores.clone(), [p.scores.len()]), device);
            assert_close(scores, case.float(&k, device), FWD_TOL, &what(&k));
        }
        // The box head on the reference proposals (isolates it from the RPN).
        let proposals: Vec<_> = (0..2)
            .map(|i| host_boxes(case.float(&format!("proposals_{i}"), device)))
            .collect();
        let (logits, deltas) =
            model
                .roi_heads
                .box_logits(&trace.features, &proposals, &trace.batch.image_sizes);
        assert_close(
            logits,
            case.float("class_logits", device),
            FWD_TOL,
            &what("class_logits"),
        );
        assert_close(
            deltas,
            case.float("box_regression", device),
            FWD_TOL,
            &what("box_regression"),
        );
        for (i, d) in trace.detections.iter().enumerate() {
            let k = |s: &str| format!("{s}_{i}");
            assert_ints_eq(
                d.labels.clone(),
                &case.ints(&k("labels")),
                &what(&k("labels")),
            );
            assert_close(
                d.boxes.clone(),
                case.float(&k("boxes"), device),
                FWD_TOL,
                &what(&k("boxes")),
            );
            assert_close(
                d.scores.clone(),
                case.float(&k("scores"), device),
                FWD_TOL,
                &what(&k("scores")),
            );
            assert_close(
                d.masks.clone(),
                case.float(&k("masks"), device),
                FWD_TOL,
                &what(&k("masks")),
            );
        }
    });
}

/// Replays the reference's sampled indices, checking each call's candidates contain them.
struct Replay {
    draws: Vec<Vec<usize>>,
    next: usize,
}

impl SubsetSampler for Replay {
    fn sample(&mut self, candidates: &[usize], count: usize) -> Vec<usize> {
        let draw = self.draws[self.next].clone();
        self.next += 1;
        assert_eq!(draw.len(), count, "sample {}: count", self.next - 1);
        assert!(
            draw.iter().all(|d| candidates.contains(d)),
            "sample {}: the reference drew indices that are not candidates here",
            self.next - 1
        );
        draw
    }
}

fn targets(case: &Fixture, device: &Device) -> Vec<InstanceTarget> {
    (0..2)
        .map(|i| {
            let labels = case.ints(&format!("gt_labels_{i}"));
            let g = labels.len();
            let boxes = if g == 0 {
                Tensor::zeros([0, 4], device)
            } else {
                case.float(&format!("gt_boxes_{i}"), device)
            };
            let [_, h, w] = case.float::<3>(&format!("image_{i}"), device).dims();
            let masks = if g == 0 {
                Tensor::zeros([0, h, w], device)
            } else {
                case.float(&format!("gt_masks_{i}"), device)
            };
            InstanceTarget {
                boxes,
                labels: Tensor::from_data(TensorData::new(labels, [g]), device),
                masks,
            }
        })
        .collect()
}

fn grad_of<const D: usize>(
    param: &Param<Tensor<D>>,
    grads: &burn::tensor::Gradients,
    transpose: bool,
) -> Tensor<D> {
    let g = param.val().grad(grads).expect("parameter has a gradient");
    if transpose { g.transpose() } else { g }
}

#[test]
fn mask_rcnn_losses_and_gradients_match_torchvision() {
    let case = case("small_train");
    for_each_device(|name, device| {
        let device = &device.clone().autodiff();
        let what = |k: &str| format!("{MODEL}/small_train {k} on {name}");
        let model = model(&case, device);
        let mut draws = Vec::new();
        for stage in ["rpn", "roi"] {
            for i in 0..2 {
                for kind in ["pos", "neg"] {
                    let idx = case.ints(&format!("{stage}_{kind}_{i}"));
                    draws.push(idx.into_iter().map(|v| v as usize).collect());
                }
            }
        }
        let mut replay = Replay { draws, next: 0 };
        let losses = model
            .losses(images(&case, device), &targets(&case, device), &mut replay)
            .expect("valid targets");
        assert_eq!(replay.next, 8, "{}", what("sampler calls"));
        for (key, value) in [
            ("loss_objectness", &losses.loss_objectness),
            ("loss_rpn_box_reg", &losses.loss_rpn_box_reg),
            ("loss_classifier", &losses.loss_classifier),
            ("loss_box_reg", &losses.loss_box_reg),
            ("loss_mask", &losses.loss_mask),
        ] {
            let value_ref: Vec<f32> = case.data(key).iter::<f32>().collect();
            let expected = Tensor::<1>::from_data(TensorData::new(value_ref, [1]), device);
            assert_close(value.clone(), expected, FWD_TOL, &what(key));
        }
        let grads = losses.total().backward();
        let body = &model.backbone.body;
        let heads = &model.roi_heads;
        let checks: Vec<(&str, Tensor<4>)> = vec![
            (
                "rpn.head.conv.0.0.weight",
                grad_of(&model.rpn.head.conv[0].weight, &grads, false),
            ),
            (
                "rpn.head.cls_logits.weight",
                grad_of(&model.rpn.head.cls_logits.weight, &grads, false),
            ),
            (
                "roi_heads.mask_predictor.mask_fcn_logits.weight",
                grad_of(&heads.mask_predictor.mask_fcn_logits.weight, &grads, false),
            ),
            (
                "roi_heads.mask_head.0.0.weight",
                grad_of(&heads.mask_head.layers[0].weight, &grads, false),
            ),
            (
                "backbone.fpn.layer_blocks.0.0.weight",
                grad_of(&model.backbone.fpn.layer_blocks[0].weight, &grads, false),
            ),
            (
                "backbone.body.layer4.0.conv1.weight",
                grad_of(&body.layer4[0].conv1.weight, &grads, false),
            ),
        ];
        for (key, g) in checks {
            let k = format!("grad.{key}");
            assert_close(g, case.float(&k, device), GRAD_TOL, &what(&k));
        }
        for (key, param) in [
            (
                "roi_heads.box_predictor.cls_score.weight",
                &heads.box_predictor.cls_score.weight,
            ),
            ("roi_heads.box_head.fc6.weight", &heads.box_head.fc6.weight),
        ] {
            let k = format!("grad.{key}");
            assert_close(
                grad_of(param, &grads, true),
                case.float(&k, device),
                GRAD_TOL,
                &what(&k),
            );
        }
        // FrozenBatchNorm2d and trainable_backbone_layers = 3: no gradient reaches them.
        assert!(
            body.bn1.gamma.val().grad(&grads).is_none(),
            "{}",
            what("frozen bn1")
        );
        assert!(
            body.conv1.weight.val().grad(&grads).is_none(),
            "{}",
            what("frozen conv1")
        );
        assert!(
            body.layer1[0].conv1.weight.val().grad(&grads).is_none(),
            "{}",
            what("frozen layer1")
        );
        assert!(
            body.layer4[0].bn1.gamma.val().grad(&grads).is_none(),
            "{}",
            what("frozen bn in layer4")
        );
    });
}

#[test]
fn mask_rcnn_targets_are_validated() {
    use zoo_models::detection::host::SeededSampler;
    use zoo_models::detection::mask_rcnn::DetectionError;

    let device = Device::flex();
    let model = tiny_config().init(&device);
    let (image, good) = synthetic(&[(1, [6.0, 8.0, 30.0, 36.0])], &device);
    let (_, mut bad) = synthetic(
        &[(1, [6.0, 8.0, 30.0, 36.0]), (2, [20.0, 20.0, 40.0, 50.0])],
        &device,
    );
    bad.boxes = boxes_tensor(&[[6.0, 8.0, 30.0, 36.0], [20.0, 20.0, 20.0, 50.0]], &device);
    let mut sampler = SeededSampler::new(0);
    let err = model
        .losses(
            vec![image.clone(), image.clone()],
            &[good.clone(), bad],
            &mut sampler,
        )
        .unwrap_err();
    assert_eq!(
        err,
        DetectionError::DegenerateBox {
            image: 1,
            index: 1,
            value: [20.0, 20.0, 20.0, 50.0]
        }
    );
    assert!(err.to_string().contains("targets[1].boxes[1]"), "{err}");
    let mut wrong_label = good.clone();
    wrong_label.labels = Tensor::from_data(TensorData::new(vec![3i64], [1]), &device);
    let err = model
        .losses(vec![image.clone()], &[wrong_label], &mut sampler)
        .unwrap_err();
    assert!(
        err.to_string().contains("labels[0] = 3 is outside 1..=2"),
        "{err}"
    );
    let mut wrong_masks = good.clone();
    wrong_masks.masks = Tensor::zeros([1, 32, 64], &device);
    let err = model
        .losses(vec![image.clone()], &[wrong_masks], &mut sampler)
        .unwrap_err();
    assert!(
        err.to_string().contains("masks must be [1, 64, 64]"),
        "{err}"
    );
    let err = model
        .losses(vec![image.clone()], &[], &mut sampler)
        .unwrap_err();
    assert!(err.to_string().contains("1 images, 0 targets"), "{err}");
    // No ground truth at all is allowed (every anchor and proposal is background).
    let empty = InstanceTarget {
        boxes: Tensor::zeros([0, 4], &device),
        labels: Tensor::from_data(TensorData::new(Vec::<i64>::new(), [0]), &device),
        masks: Tensor::zeros([0, 64, 64], &device),
    };
    let losses = model.losses(vec![image], &[empty], &mut sampler).unwrap();
    let total = losses.total();
    for v in [
        losses.loss_objectness,
        losses.loss_classifier,
        losses.loss_mask,
        total,
    ] {
        assert!(v.into_scalar::<f32>().is_finite());
    }
}

/// No detection above the score threshold: empty `Detections` of the right shapes on every
/// backend (the heads are not run on empty batches).
#[test]
fn mask_rcnn_without_detections_returns_empty_results() {
    for_each_device(|name, device| {
        let model = tiny_config()
            .with_roi_heads(RoiHeadsSettings::new().with_score_thresh(1.0))
            .init(device);
        let (image, _) = synthetic(&[(1, [6.0, 8.0, 30.0, 36.0])], device);
        let found = model.detect(vec![image.clone(), image]);
        assert_eq!(found.len(), 2, "{name}");
        for d in found {
            assert_eq!(d.boxes.dims(), [0, 4], "{name}");
            assert_eq!(d.scores.dims(), [0], "{name}");
            assert_eq!(d.labels.dims(), [0], "{name}");
            assert_eq!(d.masks.dims(), [0, 1, 64, 64], "{name}");
        }
    });
}
