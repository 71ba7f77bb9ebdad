"""Mask R-CNN reference fixtures: torchvision's `MaskRCNN`, built from its own classes on a
narrow ResNet-50 body (FrozenBatchNorm2d) so the state-dict keys are upstream's.

Writes to `crates/zoo-models/tests/fixtures/mask_rcnn/`:
- `small.weights.safetensors`: the model's `state_dict()` (`safetensors.torch.save_file`);
- `small.safetensors`: eval case, intermediate values and final detections;
- `small_train.safetensors`: train case, targets, the recorded random sampling, the
  intermediate training values, the five losses and a few parameter gradients.

    cd tools/parity && python mask_rcnn.py

Everything is seeded; it runs on one CPU thread in a few seconds.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.resnet import Bottleneck, ResNet
from torchvision.ops import box_iou
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.misc import FrozenBatchNorm2d

from common import REPO_ROOT, save_case

OUT = REPO_ROOT / "crates" / "zoo-models" / "tests" / "fixtures" / "mask_rcnn"

# The small model's settings; all of them go into the fixtures' params.
SMALL = {
    "num_classes": 4,
    "depth": 50,
    "base_channels": 8,
    "fpn_channels": 16,
    "representation_size": 32,
    "mask_layers": [16, 16, 16, 16],
    "mask_dilation": 1,
    "mask_predictor_channels": 16,
    "anchor_sizes": [[8], [16], [32], [64], [128]],
    "aspect_ratios": [[0.5, 1.0, 2.0]] * 5,
    "min_size": 64,
    "max_size": 112,
    "size_divisible": 32,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "rpn_pre_nms_top_n_test": 200,
    "rpn_post_nms_top_n_test": 100,
    "rpn_pre_nms_top_n_train": 300,
    "rpn_post_nms_top_n_train": 150,
    "rpn_nms_thresh": 0.7,
    "rpn_fg_iou_thresh": 0.7,
    "rpn_bg_iou_thresh": 0.3,
    "rpn_batch_size_per_image": 64,
    "rpn_positive_fraction": 0.5,
    "rpn_score_thresh": 0.0,
    "box_roi_pool": {"output_size": 7, "sampling_ratio": 2},
    "mask_roi_pool": {"output_size": 14, "sampling_ratio": 2},
    "box_score_thresh": 0.05,
    "box_nms_thresh": 0.5,
    "box_detections_per_img": 10,
    "box_fg_iou_thresh": 0.5,
    "box_bg_iou_thresh": 0.5,
    "box_batch_size_per_image": 64,
    "box_positive_fraction": 0.25,
    "bbox_reg_weights": [10.0, 10.0, 5.0, 5.0],
    "frozen_bn_eps": 1e-5,
    "weights": "small.weights.safetensors",
}

# Init gains (b = sqrt(3 / fan_in) · gain) by substring of the module name; the first match
# wins. ReLU-followed layers get sqrt(2); the last conv of each bottleneck and the downsample
# get less so the residual sum stays O(1) through the 16 blocks (FPN output std 0.4-2); the
# RPN box deltas are kept small so proposals stay inside the image rather than all clipping to
# its border. `calibrate` then adjusts the RPN objectness bias and the box classifier.
GAINS = [
    ("rpn.head.bbox_pred", 0.3),
    ("rpn.head.cls_logits", 2.0),
    ("box_predictor.cls_score", 1.0),
    ("box_predictor.bbox_pred", 1.0),
    ("mask_predictor.mask_fcn_logits", 1.0),
    (".conv3", 0.5),
    (".downsample.0", 0.5),
    ("fpn.inner_blocks", 1.0),
    ("fpn.layer_blocks", 1.0),
    ("", math.sqrt(2.0)),
]


class FrozenNarrowResNet(ResNet):
    """torchvision's ResNet with stage widths base·(1, 2, 4, 8) and FrozenBatchNorm2d as the
    norm layer everywhere (the detection models' backbone); the body is torchvision's own
    `_make_layer`, so structure and keys are upstream's. (Same construction as
    `models.NarrowResNet`, which is not imported because models.py needs smp and timm.)"""

    def __init__(self, block, layers, base):
        nn.Module.__init__(self)
        self._norm_layer = FrozenBatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = base, 1, 1, 64
        self.conv1 = nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = FrozenBatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, base, layers[0])
        self.layer2 = self._make_layer(block, base * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, base * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, base * 8, layers[3], stride=2)


def build_small() -> MaskRCNN:
    p = SMALL
    base, fpn = p["base_channels"], p["fpn_channels"]
    body = FrozenNarrowResNet(Bottleneck, [3, 4, 6, 3], base)
    e = Bottleneck.expansion
    backbone = BackboneWithFPN(
        body,
        return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
        in_channels_list=[base * e, base * 2 * e, base * 4 * e, base * 8 * e],
        out_channels=fpn,
        extra_blocks=LastLevelMaxPool(),
    )
    anchors = AnchorGenerator(sizes=tuple(tuple(s) for s in p["anchor_sizes"]),
                              aspect_ratios=tuple(tuple(a) for a in p["aspect_ratios"]))
    return MaskRCNN(
        backbone,
        num_classes=None,
        min_size=p["min_size"], max_size=p["max_size"],
        image_mean=p["image_mean"], image_std=p["image_std"],
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=p["rpn_pre_nms_top_n_train"],
        rpn_pre_nms_top_n_test=p["rpn_pre_nms_top_n_test"],
        rpn_post_nms_top_n_train=p["rpn_post_nms_top_n_train"],
        rpn_post_nms_top_n_test=p["rpn_post_nms_top_n_test"],
        rpn_batch_size_per_image=p["rpn_batch_size_per_image"],
        box_head=TwoMLPHead(fpn * 7 * 7, p["representation_size"]),
        box_predictor=FastRCNNPredictor(p["representation_size"], p["num_classes"]),
        box_batch_size_per_image=p["box_batch_size_per_image"],
        box_detections_per_img=p["box_detections_per_img"],
        mask_head=MaskRCNNHeads(fpn, p["mask_layers"], p["mask_dilation"]),
        mask_predictor=MaskRCNNPredictor(p["mask_layers"][-1], p["mask_predictor_channels"],
                                         p["num_classes"]),
    )


def model_params(model: MaskRCNN) -> dict:
    """The settings of a built MaskRCNN, read back from its modules (names as in SMALL)."""
    rpn, rh, tr = model.rpn, model.roi_heads, model.transform
    body = model.backbone.body
    return {
        "num_classes": rh.box_predictor.cls_score.out_features,
        "depth": {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101}.get(
            tuple(len(getattr(body, f"layer{i}")) for i in range(1, 5))),
        "base_channels": body.conv1.out_channels,
        "fpn_channels": model.backbone.out_channels,
        "representation_size": rh.box_head.fc7.out_features,
        "mask_layers": [block[0].out_channels for block in rh.mask_head],
        "mask_dilation": rh.mask_head[0][0].dilation[0],
        "mask_predictor_channels": rh.mask_predictor.conv5_mask.out_channels,
        "anchor_sizes": [list(s) for s in rpn.anchor_generator.sizes],
        "aspect_ratios": [list(a) for a in rpn.anchor_generator.aspect_ratios],
        "min_size": tr.min_size[-1],
        "max_size": tr.max_size,
        "size_divisible": tr.size_divisible,
        "image_mean": list(tr.image_mean),
        "image_std": list(tr.image_std),
        "rpn_pre_nms_top_n_test": rpn._pre_nms_top_n["testing"],
        "rpn_post_nms_top_n_test": rpn._post_nms_top_n["testing"],
        "rpn_pre_nms_top_n_train": rpn._pre_nms_top_n["training"],
        "rpn_post_nms_top_n_train": rpn._post_nms_top_n["training"],
        "rpn_nms_thresh": rpn.nms_thresh,
        "rpn_fg_iou_thresh": rpn.proposal_matcher.high_threshold,
        "rpn_bg_iou_thresh": rpn.proposal_matcher.low_threshold,
        "rpn_batch_size_per_image": rpn.fg_bg_sampler.batch_size_per_image,
        "rpn_positive_fraction": rpn.fg_bg_sampler.positive_fraction,
        "rpn_score_thresh": rpn.score_thresh,
        "box_roi_pool": {"output_size": rh.box_roi_pool.output_size[0],
                         "sampling_ratio": rh.box_roi_pool.sampling_ratio},
        "mask_roi_pool": {"output_size": rh.mask_roi_pool.output_size[0],
                          "sampling_ratio": rh.mask_roi_pool.sampling_ratio},
        "box_score_thresh": rh.score_thresh,
        "box_nms_thresh": rh.nms_thresh,
        "box_detections_per_img": rh.detections_per_img,
        "box_fg_iou_thresh": rh.proposal_matcher.high_threshold,
        "box_bg_iou_thresh": rh.proposal_matcher.low_threshold,
        "box_batch_size_per_image": rh.fg_bg_sampler.batch_size_per_image,
        "box_positive_fraction": rh.fg_bg_sampler.positive_fraction,
        "bbox_reg_weights": list(rh.box_coder.weights),
    }


# ---------------------------------------------------------------------------------------------
# Weights


def _fan_in(m: nn.Module) -> int:
    w = m.weight
    if isinstance(m, nn.Linear):
        return w.shape[1]
    if isinstance(m, nn.ConvTranspose2d):
        # weight [in, out/groups, kh, kw]: each output pixel sees in · kh·kw / (sh·sw) taps
        return w.shape[0] * w.shape[2] * w.shape[3] // (m.stride[0] * m.stride[1])
    return w.shape[1] * w.shape[2] * w.shape[3]


def reinit(model: nn.Module, gains=GAINS) -> None:
    """U(-b, b) weights with b = sqrt(3 / fan_in) · gain, U(-0.1, 0.1) biases, random
    (Frozen)BatchNorm affine parameters and statistics; module order, so seeded = reproducible."""
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                gain = next(g for suffix, g in gains if suffix in name)
                b = math.sqrt(3.0 / _fan_in(m)) * gain
                m.weight.uniform_(-b, b)
                if m.bias is not None:
                    m.bias.uniform_(-0.1, 0.1)
            elif isinstance(m, (FrozenBatchNorm2d, nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)


def calibrate(model: MaskRCNN, imgs, rpn_max_logit=-0.5, cls_std=1.0, cls_means=(2.0,)) -> None:
    """Data-dependent touch-ups on an eval forward over `imgs`, so that the ranking steps have
    clear margins:
    - RPN: shift the `cls_logits` bias so the largest objectness logit is `rpn_max_logit`.
      A uniform shift keeps every ranking, but keeps sigmoid(logit) away from 1, where distinct
      logits round to the same float32 probability (and NMS / top-n then see exact ties).
    - Box classifier: random box-head features share a large common component, so one class
      would win every RoI. Rescale each row of `cls_score` (weight and bias) so every class
      logit has standard deviation `cls_std` over the RoIs, and shift the biases so the logit
      means are `cls_means` (background first, the rest 0): diverse labels, distinct
      scores."""
    model.eval()
    rec = {}
    rpn_hook = model.rpn.head.register_forward_hook(lambda m, i, o: rec.__setitem__("rpn", o[0]))
    predictor = model.roi_heads.box_predictor
    cls_hook = predictor.register_forward_hook(lambda m, i, o: rec.__setitem__("cls", o[0]))
    with torch.no_grad():
        model(list(imgs))  # the RPN shift changes no proposal, so one forward serves both
        rpn_hook.remove()
        cls_hook.remove()
        top = max(float(o.max()) for o in rec["rpn"])
        model.rpn.head.cls_logits.bias.sub_(top - rpn_max_logit)
        logits = rec["cls"]
        scale = cls_std / logits.std(0)
        lin = predictor.cls_score
        lin.weight.mul_(scale[:, None])
        means = torch.zeros(logits.shape[1])
        means[: len(cls_means)] = torch.tensor(cls_means)
        lin.bias.copy_((lin.bias - logits.mean(0)) * scale + means)


def save_weights(path: Path, model: nn.Module) -> None:
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path))


# ---------------------------------------------------------------------------------------------
# Capturing intermediate values


class Patch:
    """Sets instance attributes (wrappers, hooks) for the duration of a `with` block."""

    def __init__(self):
        self.undo = []

    def attr(self, obj, name, value):
        had = name in vars(obj)
        old = vars(obj).get(name)
        setattr(obj, name, value)
        self.undo.append(lambda: setattr(obj, name, old) if had else delattr(obj, name))

    def hook(self, module, fn):
        handle = module.register_forward_hook(fn)
        self.undo.append(handle.remove)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for undo in reversed(self.undo):
            undo()


class RecordingSampler:
    """Stands in for a BalancedPositiveNegativeSampler (a plain object whose __call__ is looked
    up on the type, so it is replaced, not patched) and records its per-image 0/1 masks."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def __call__(self, labels):
        pos, neg = self.inner(labels)
        self.calls.append(([p.clone() for p in pos], [n.clone() for n in neg]))
        return pos, neg


def _clone_dicts(result):
    return [{k: v.detach().clone() for k, v in r.items()} for r in result]


# ---------------------------------------------------------------------------------------------
# Robustness checks: how far the reference is from the ties and thresholds a port could flip


def _min_gap(sorted_desc: torch.Tensor) -> float:
    if sorted_desc.numel() < 2:
        return float("inf")
    return float((sorted_desc[:-1] - sorted_desc[1:]).min())


def _boundary_gap(values: torch.Tensor, k: int) -> float | None:
    """Gap between the k-th and (k+1)-th largest value (None if there are at most k)."""
    if values.numel() <= k:
        return None
    top = values.topk(k + 1).values
    return float(top[k - 1] - top[k])


def _min_iou_margin(boxes, groups, thresh) -> float:
    """min |IoU - thresh| over pairs of boxes in the same group (NMS decisions)."""
    best = float("inf")
    for g in groups.unique():
        b = boxes[groups == g]
        if b.shape[0] < 2:
            continue
        iou = box_iou(b, b)
        iu = torch.triu_indices(b.shape[0], b.shape[0], 1)
        best = min(best, float((iou[iu[0], iu[1]] - thresh).abs().min()))
    return best


def rpn_checks(model, proposals, objectness, image_shapes, num_anchors_per_level, tag) -> None:
    """Top-k boundary gaps of the per-level pre-NMS selection, the NMS IoU margin, and the
    post-NMS top-n boundary gap, per image."""
    rpn = model.rpn
    k, post_n = rpn.pre_nms_top_n(), rpn.post_nms_top_n()
    obj = objectness.detach().reshape(proposals.shape[0], -1)
    for i in range(obj.shape[0]):
        gaps = [_boundary_gap(o, k) for o in obj[i].split(num_anchors_per_level)]
        print(f"  [{tag}] image {i}: RPN pre-NMS top-{k} boundary gaps per level (logits): "
              + ", ".join("-" if g is None else f"{g:.2e}" for g in gaps))
    # all NMS survivors: rerun the upstream filter with no post-NMS cut
    saved = rpn._post_nms_top_n
    rpn._post_nms_top_n = {"training": 10**9, "testing": 10**9}
    try:
        boxes, scores = type(rpn).filter_proposals(rpn, proposals, objectness, image_shapes,
                                                     num_anchors_per_level)
    finally:
        rpn._post_nms_top_n = saved
    # NMS margin, on the top-k candidates of each level (recomputed the upstream way)
    top_idx = rpn._get_top_n_idx(obj, num_anchors_per_level)
    levels = torch.cat([torch.full((n,), l) for l, n in enumerate(num_anchors_per_level)])
    for i in range(obj.shape[0]):
        cand = proposals[i, top_idx[i]]
        h, w = image_shapes[i]
        cand = torch.stack([cand[:, 0].clamp(0, w), cand[:, 1].clamp(0, h),
                            cand[:, 2].clamp(0, w), cand[:, 3].clamp(0, h)], 1)
        margin = _min_iou_margin(cand, levels[top_idx[i]], rpn.nms_thresh)
        logits = torch.logit(scores[i].double())  # gaps in logit space: what a port's error meets
        gap = _boundary_gap(logits, post_n)
        print(f"  [{tag}] image {i}: {boxes[i].shape[0]} NMS survivors, post-NMS top-{post_n} "
              f"boundary gap {'-' if gap is None else f'{gap:.2e}'} (logits), "
              f"min |IoU-{rpn.nms_thresh}| "
              f"{margin:.2e}, min gap among kept {_min_gap(logits[:post_n]):.2e} (logits), "
              f"{_min_gap(scores[i][:post_n]):.2e} (probabilities)")


def detection_checks(model, class_logits, box_regression, proposals, image_shapes) -> None:
    """Score gaps, distance to the score threshold, NMS IoU margin and the top-n boundary of
    the final per-class detections, per image."""
    rh = model.roi_heads
    saved = rh.detections_per_img
    rh.detections_per_img = 10**9
    try:
        boxes, scores, labels = rh.postprocess_detections(class_logits, box_regression, proposals,
                                                          image_shapes)
    finally:
        rh.detections_per_img = saved
    probs = torch.softmax(class_logits, -1)[:, 1:].reshape(-1)
    print(f"  min |score - {rh.score_thresh}| over all class scores: "
          f"{float((probs - rh.score_thresh).abs().min()):.2e}")
    for i, (b, s, l) in enumerate(zip(boxes, scores, labels)):
        gap = _boundary_gap(s, saved)
        print(f"  image {i}: {b.shape[0]} detections after NMS (keep {min(saved, b.shape[0])}), "
              f"top-{saved} boundary gap {'-' if gap is None else f'{gap:.2e}'}, "
              f"min gap between sorted kept scores {_min_gap(s[:saved]):.2e}")
    # NMS margin on the candidates entering NMS, per class
    pred = rh.box_coder.decode(box_regression, proposals)
    start = 0
    for i, p in enumerate(proposals):
        n = p.shape[0]
        bx = pred[start:start + n, 1:].reshape(-1, 4)
        sc = torch.softmax(class_logits[start:start + n], -1)[:, 1:].reshape(-1)
        lb = torch.arange(1, class_logits.shape[1]).repeat(n)
        h, w = image_shapes[i]
        bx = torch.stack([bx[:, 0].clamp(0, w), bx[:, 1].clamp(0, h),
                          bx[:, 2].clamp(0, w), bx[:, 3].clamp(0, h)], 1)
        keep = sc > rh.score_thresh
        print(f"  image {i}: min |IoU-{rh.nms_thresh}| among same-class candidates: "
              f"{_min_iou_margin(bx[keep], lb[keep], rh.nms_thresh):.2e}")
        start += n


# ---------------------------------------------------------------------------------------------
# Cases


def images(shapes=((3, 60, 80), (3, 72, 56)), seed=1):
    torch.manual_seed(seed)
    return tuple(torch.rand(shape) for shape in shapes)


def eval_case(model: MaskRCNN, imgs, params: dict) -> tuple[dict, dict]:
    """One eval forward over `imgs`, with the intermediate values captured by wrappers and
    hooks; returns (tensors, params + the per-case sizes)."""
    model.eval()
    t = {f"image_{i}": img for i, img in enumerate(imgs)}
    rec = {}
    with torch.no_grad(), Patch() as patch:
        def backbone_forward(x):
            feats = type(model.backbone).forward(model.backbone, x)
            rec["batch"], rec["feats"] = x.clone(), {k: v.clone() for k, v in feats.items()}
            return feats

        def anchor_forward(image_list, feature_maps):
            anchors = type(model.rpn.anchor_generator).forward(model.rpn.anchor_generator,
                                                               image_list, feature_maps)
            rec["anchors"], rec["image_sizes"] = anchors, list(image_list.image_sizes)
            return anchors

        def filter_proposals(proposals, objectness, image_shapes, num_anchors_per_level):
            rec["rpn_in"] = (proposals.clone(), objectness.clone(), list(image_shapes),
                             list(num_anchors_per_level))
            boxes, scores = type(model.rpn).filter_proposals(
                model.rpn, proposals, objectness, image_shapes, num_anchors_per_level)
            rec["proposals"] = [(b.clone(), s.clone()) for b, s in zip(boxes, scores)]
            return boxes, scores

        def postprocess(result, image_shapes, original_sizes):
            rec["roi_out"] = _clone_dicts(result)
            return type(model.transform).postprocess(model.transform, result, image_shapes,
                                                     original_sizes)

        patch.attr(model.backbone, "forward", backbone_forward)
        patch.attr(model.rpn.anchor_generator, "forward", anchor_forward)
        patch.attr(model.rpn, "filter_proposals", filter_proposals)
        patch.attr(model.transform, "postprocess", postprocess)
        patch.hook(model.rpn.head, lambda m, i, o: rec.__setitem__("head", o))
        patch.hook(model.roi_heads.box_predictor,
                   lambda m, i, o: rec.__setitem__("box_pred", (o[0].clone(), o[1].clone())))
        detections = model(list(imgs))

    feats = rec["feats"]
    t["batch"] = rec["batch"]
    for k in ["0", "1", "2", "3"]:
        t[f"fpn_{k}"] = feats[k]
    t["fpn_pool"] = feats["pool"]
    for l, (o, d) in enumerate(zip(*rec["head"])):
        t[f"rpn_objectness_{l}"], t[f"rpn_deltas_{l}"] = o, d
    t["anchors_0"] = rec["anchors"][0]
    for i, (b, s) in enumerate(rec["proposals"]):
        t[f"proposals_{i}"], t[f"proposal_scores_{i}"] = b, s
    t["class_logits"], t["box_regression"] = rec["box_pred"]
    for i, (d, pre) in enumerate(zip(detections, rec["roi_out"])):
        t[f"boxes_{i}"], t[f"scores_{i}"], t[f"labels_{i}"] = d["boxes"], d["scores"], d["labels"]
        t[f"masks_{i}"] = d["masks"]
        t[f"det_boxes_resized_{i}"], t[f"mask_probs_{i}"] = pre["boxes"], pre["masks"]

    params = dict(params)
    params["image_sizes"] = [list(s) for s in rec["image_sizes"]]
    params["original_sizes"] = [list(img.shape[-2:]) for img in imgs]
    params["num_anchors_per_level"] = rec["rpn_in"][3]

    print("  FPN output std per level: "
          + ", ".join(f"{k}:{float(v.std()):.3f}" for k, v in feats.items()))
    print(f"  batch {list(t['batch'].shape)}, image_sizes {params['image_sizes']}, "
          f"anchors per image {t['anchors_0'].shape[0]} "
          f"(per level {params['num_anchors_per_level']})")
    print(f"  proposals per image: {[b.shape[0] for b, _ in rec['proposals']]}, "
          f"box head rows {rec['box_pred'][0].shape[0]}")
    with torch.no_grad():
        rpn_checks(model, *rec["rpn_in"], tag="eval")
        detection_checks(model, *rec["box_pred"], [b for b, _ in rec["proposals"]],
                         rec["rpn_in"][2])
    for i, d in enumerate(detections):
        print(f"  image {i}: {d['boxes'].shape[0]} detections, labels {d['labels'].tolist()}, "
              f"scores {[round(x, 3) for x in d['scores'].tolist()]}")
    return t, params


def ellipse_mask(h, w, box):
    x0, y0, x1, y1 = box
    ys = torch.arange(h, dtype=torch.float32)[:, None] + 0.5
    xs = torch.arange(w, dtype=torch.float32)[None, :] + 0.5
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    return (((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0).to(torch.uint8)


def rect_mask(h, w, box, inset=2):
    x0, y0, x1, y1 = box
    m = torch.zeros(h, w, dtype=torch.uint8)
    m[int(y0) + inset:int(y1) - inset, int(x0) + inset:int(x1) - inset] = 1
    return m


def targets_for(img0, img1):
    h0, w0 = img0.shape[-2:]
    boxes0 = torch.tensor([[5.0, 8.0, 40.0, 30.0], [30.0, 20.0, 75.0, 55.0],
                           [10.0, 35.0, 28.0, 58.0]])
    labels0 = torch.tensor([1, 3, 2], dtype=torch.int64)
    masks0 = torch.stack([ellipse_mask(h0, w0, boxes0[0].tolist()),
                          rect_mask(h0, w0, boxes0[1].tolist()),
                          ellipse_mask(h0, w0, boxes0[2].tolist())])
    h1, w1 = img1.shape[-2:]
    return [
        {"boxes": boxes0, "labels": labels0, "masks": masks0},
        {"boxes": torch.zeros((0, 4)), "labels": torch.zeros((0,), dtype=torch.int64),
         "masks": torch.zeros((0, h1, w1), dtype=torch.uint8)},
    ]


LOSS_KEYS = ["loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask"]

GRAD_KEYS = [
    "rpn.head.conv.0.0.weight",
    "rpn.head.cls_logits.weight",
    "roi_heads.box_predictor.cls_score.weight",
    "roi_heads.box_head.fc6.weight",
    "roi_heads.mask_predictor.mask_fcn_logits.weight",
    "roi_heads.mask_head.0.0.weight",
    "backbone.fpn.layer_blocks.0.0.weight",
    "backbone.body.layer4.0.conv1.weight",
]


def train_case(model: MaskRCNN, params: dict) -> dict:
    model.train()
    img0, img1 = images()
    targets = targets_for(img0, img1)
    t = {"image_0": img0, "image_1": img1}
    for i, tg in enumerate(targets):
        t[f"gt_boxes_{i}"], t[f"gt_labels_{i}"] = tg["boxes"], tg["labels"]
        t[f"gt_masks_{i}"] = tg["masks"].float()
    rec = {}
    model.zero_grad(set_to_none=True)
    with Patch() as patch:
        rpn_sampler = RecordingSampler(model.rpn.fg_bg_sampler)
        roi_sampler = RecordingSampler(model.roi_heads.fg_bg_sampler)
        patch.attr(model.rpn, "fg_bg_sampler", rpn_sampler)
        patch.attr(model.roi_heads, "fg_bg_sampler", roi_sampler)

        def backbone_forward(x):
            rec["batch"] = x.detach().clone()
            return type(model.backbone).forward(model.backbone, x)

        def assign_targets_to_anchors(anchors, tgts):
            labels, matched = type(model.rpn).assign_targets_to_anchors(model.rpn, anchors, tgts)
            rec["rpn_assign"] = ([l.clone() for l in labels], [m.clone() for m in matched])
            return labels, matched

        def filter_proposals(proposals, objectness, image_shapes, num_anchors_per_level):
            rec["rpn_in"] = (proposals.detach().clone(), objectness.detach().clone(),
                             list(image_shapes), list(num_anchors_per_level))
            return type(model.rpn).filter_proposals(model.rpn, proposals, objectness, image_shapes,
                                                    num_anchors_per_level)

        def select_training_samples(proposals, tgts):
            rec["roi_proposals"] = [p.detach().clone() for p in proposals]
            out = type(model.roi_heads).select_training_samples(model.roi_heads, proposals, tgts)
            rec["roi_selected"] = [[x.detach().clone() for x in xs] for xs in out]
            return out

        patch.attr(model.backbone, "forward", backbone_forward)
        patch.attr(model.rpn, "assign_targets_to_anchors", assign_targets_to_anchors)
        patch.attr(model.rpn, "filter_proposals", filter_proposals)
        patch.attr(model.roi_heads, "select_training_samples", select_training_samples)
        patch.hook(model.roi_heads.box_predictor,
                   lambda m, i, o: rec.__setitem__("box_pred", (o[0].detach().clone(),
                                                                o[1].detach().clone())))
        patch.hook(model.roi_heads.mask_predictor,
                   lambda m, i, o: rec.__setitem__("mask_logits", o.detach().clone()))
        torch.manual_seed(2)
        losses = model([img0, img1], targets)
    total = sum(losses.values())
    total.backward()

    # `batch` equals the eval case's (same images, same transform): not stored twice.
    for i, (pos, neg) in enumerate(zip(*rpn_sampler.calls[0])):
        t[f"rpn_pos_{i}"], t[f"rpn_neg_{i}"] = torch.where(pos)[0], torch.where(neg)[0]
    for i, (pos, neg) in enumerate(zip(*roi_sampler.calls[0])):
        t[f"roi_pos_{i}"], t[f"roi_neg_{i}"] = torch.where(pos)[0], torch.where(neg)[0]
    for i, (lab, matched) in enumerate(zip(*rec["rpn_assign"])):
        t[f"rpn_labels_{i}"], t[f"rpn_matched_gt_{i}"] = lab, matched
    sel_props, sel_matched, sel_labels, sel_targets = rec["roi_selected"]
    for i, p in enumerate(rec["roi_proposals"]):
        t[f"roi_proposals_{i}"] = p
        t[f"roi_sampled_proposals_{i}"] = sel_props[i]
        t[f"roi_matched_idxs_{i}"] = sel_matched[i]
        t[f"roi_labels_{i}"] = sel_labels[i]
        t[f"roi_regression_targets_{i}"] = sel_targets[i]
    t["class_logits"], t["box_regression"] = rec["box_pred"]
    t["mask_logits"] = rec["mask_logits"]
    for k in LOSS_KEYS:
        t[k] = losses[k].detach()
    named = dict(model.named_parameters())
    for k in GRAD_KEYS:
        t[f"grad.{k}"] = named[k].grad

    params = dict(params)
    params["original_sizes"] = [list(img0.shape[-2:]), list(img1.shape[-2:])]
    params["image_sizes"] = [list(s) for s in rec["rpn_in"][2]]
    params["num_anchors_per_level"] = rec["rpn_in"][3]
    params["num_gt"] = [int(tg["boxes"].shape[0]) for tg in targets]
    params["grad_keys"] = GRAD_KEYS
    params["loss_keys"] = list(losses.keys())

    for i in range(2):
        rl, lab = t[f"rpn_labels_{i}"], t[f"roi_labels_{i}"]
        counts = "/".join(str(int((rl == v).sum())) for v in (1, 0, -1))
        print(f"  image {i}: RPN anchors pos/neg/ignored {counts}, sampled pos "
              f"{t[f'rpn_pos_{i}'].numel()} neg {t[f'rpn_neg_{i}'].numel()}; RoI candidates "
              f"{rec['roi_proposals'][i].shape[0]} (+{params['num_gt'][i]} gt), sampled pos "
              f"{t[f'roi_pos_{i}'].tolist()} (labels {lab[lab > 0].tolist()}) neg "
              f"{t[f'roi_neg_{i}'].numel()}")
    print(f"  mask logits {list(t['mask_logits'].shape)}")
    print("  losses: " + ", ".join(f"{k} {float(v.detach()):.5f}" for k, v in losses.items()))
    print("  grad norms: "
          + ", ".join(f"{k} {float(named[k].grad.norm()):.3e}" for k in GRAD_KEYS))
    rpn_checks(model, *rec["rpn_in"], tag="train")
    return t, params


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_small()
    built = model_params(model)
    assert all(SMALL[k] == v for k, v in built.items()), \
        {k: (SMALL[k], v) for k, v in built.items() if SMALL[k] != v}
    reinit(model)
    calibrate(model, images())
    OUT.mkdir(parents=True, exist_ok=True)
    save_weights(OUT / "small.weights.safetensors", model)

    print("eval case (small.safetensors)")
    tensors, params = eval_case(model, images(), SMALL)
    save_case(OUT / "small.safetensors", tensors, params)

    print("train case (small_train.safetensors)")
    tensors, params = train_case(model, SMALL)
    save_case(OUT / "small_train.safetensors", tensors, params)

    total = 0
    for f in sorted(OUT.glob("*.safetensors")):
        size = f.stat().st_size
        total += size
        print(f"  {f.name}: {size / 1024:.1f} KiB")
    print(f"  total {total / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
