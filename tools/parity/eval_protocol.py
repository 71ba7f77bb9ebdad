"""`zoo eval`'s segmentation and detection protocols against torchvision's reference
evaluation (issue 15).

Writes `crates/zoo-cli/tests/fixtures/eval_protocol/`:

- `voc/`: a tiny VOC-layout set (`JPEGImages/*.jpg` at quality 100 without chroma
  subsampling, `SegmentationClass/*.png` palette masks with classes 0–2 and 255 borders,
  `ImageSets/Segmentation/val.txt`), four images of different sizes and aspect ratios;
- `deeplabv3.weights.safetensors`: the narrow random-weight DeepLabV3 of
  `crates/zoo-models/tests/fixtures/deeplabv3/r50_os8_aux.weights.safetensors` (built by
  `models.py`), its classifier re-centred so that its predictions vary across the images;
- `expected.json`: what torchvision's `references/segmentation` evaluation gives on the set
  with those weights: `SegmentationPresetEval(base_size)`
  (PIL: shorter side to `base_size`, bilinear image, nearest target; `PILToTensor`, to float,
  ImageNet normalisation), batch 1, `model(image)["out"].argmax(1)`, and the reference's
  `ConfusionMatrix` (255 ignored) → global pixel accuracy, per-class IoU, mean IoU.

- `coco/`: a tiny COCO-layout set (`annotations/instances_val.json`, `val/*.png`): three
  images of different sizes; the annotations are the detections of the model below (boxes
  as rectangles, raw category ids 1–3, `area` stated, every fourth a crowd region), so that
  the AP is far from 0;
- `maskrcnn.weights.safetensors`: a narrow random Mask R-CNN as a run file builds it
  (`base_channels = 4`, `head_channels = 8`, frozen BatchNorm, `transform_size =
  [64, 112]`, torchvision's default anchors and thresholds), re-initialised and calibrated
  as `mask_rcnn.py` does so that its detections have clear score margins;
- `expected.json` also holds torchvision's `references/detection` evaluation of that model
  on the set: each image at its own size through the model (its transform resizes, its
  postprocess maps boxes and masks back), masks `> 0.5` as RLE, pycocotools' COCOeval `bbox`
  and `segm` (crowds ignored) → AP, AP50, AP75.

The images are smaller than `base_size` (VOC's 500×375 images are upscaled to 520 alike), so
the resize's antialiasing plays no part. Run from the repository root with a venv holding
torch / torchvision:

    VENV/bin/python tools/parity/eval_protocol.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as F
from PIL import Image, ImageDraw
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT  # noqa: E402
from models import narrow_deeplabv3  # noqa: E402

OUT = REPO_ROOT / "crates/zoo-cli/tests/fixtures/eval_protocol"
WEIGHTS = REPO_ROOT / "crates/zoo-models/tests/fixtures/deeplabv3/r50_os8_aux.weights.safetensors"
BASE_SIZE = 48
CLASSES = 3
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
# (height, width) of each image: landscape, portrait, square, already at the base size.
SIZES = [(30, 41), (37, 26), (33, 33), (48, 60)]


def voc_palette() -> list[int]:
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def make_sample(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random image with two shapes, and its class mask (255 on shape borders)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack(
        [
            0.5 + 0.3 * np.sin(xx / rng.uniform(3, 8) + rng.uniform(0, 6))
            * np.cos(yy / rng.uniform(3, 8) + rng.uniform(0, 6))
            for _ in range(3)
        ],
        axis=-1,
    )
    mask = np.zeros((h, w), np.uint8)
    for cls in (1, 2):
        cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
        ry, rx = rng.uniform(0.15, 0.35) * h, rng.uniform(0.15, 0.35) * w
        d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        inside = d <= 1.0
        image[inside] = rng.uniform(0.1, 0.9, 3)
        mask[inside] = cls
        mask[(d > 0.8) & (d <= 1.2)] = 255
    return (image.clip(0, 1) * 255).round().astype(np.uint8), mask


def write_dataset() -> list[str]:
    rng = np.random.default_rng(15)
    root = OUT / "voc"
    for d in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / d).mkdir(parents=True, exist_ok=True)
    ids = []
    for i, (h, w) in enumerate(SIZES):
        image, mask = make_sample(rng, h, w)
        name = f"img{i}"
        Image.fromarray(image).save(root / "JPEGImages" / f"{name}.jpg", quality=100, subsampling=0)
        m = Image.fromarray(mask, mode="P")
        m.putpalette(voc_palette())
        m.save(root / "SegmentationClass" / f"{name}.png")
        ids.append(name)
    (root / "ImageSets/Segmentation/val.txt").write_text("\n".join(ids) + "\n")
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(ids) + "\n")
    return ids


def preset_eval(root: Path, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """SegmentationPresetEval(base_size): RandomResize(base, base) on PIL images, then
    PILToTensor, to float in [0, 1], Normalize."""
    image = Image.open(root / "JPEGImages" / f"{name}.jpg").convert("RGB")
    target = Image.open(root / "SegmentationClass" / f"{name}.png")
    image = F.resize(image, BASE_SIZE, antialias=True)
    target = F.resize(target, BASE_SIZE, interpolation=F.InterpolationMode.NEAREST)
    x = F.normalize(F.pil_to_tensor(image).float() / 255.0, MEAN, STD)
    return x, torch.as_tensor(np.array(target), dtype=torch.int64)


def weights(ids: list[str]) -> torch.nn.Module:
    """The narrow random DeepLabV3 of the model fixtures, its classifier's bias shifted by
    the mean logit of each class over this set so that the argmax varies across the images
    (random weights otherwise predict one class everywhere and the check would be vacuous)."""
    model = narrow_deeplabv3(50, 2, 16, [12, 24, 36], True, CLASSES)
    model.load_state_dict(load_file(str(WEIGHTS)))
    model.eval()
    with torch.inference_mode():
        outs = [model(preset_eval(OUT / "voc", n)[0][None])["out"] for n in ids]
        mean = torch.cat([o.flatten(2) for o in outs], dim=2).mean(dim=(0, 2))
        std = torch.cat([o.flatten(2) for o in outs], dim=2).std(dim=(0, 2))
        model.classifier[4].bias -= mean
        model.classifier[4].weight /= std[:, None, None, None]
        model.classifier[4].bias /= std
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(OUT / "deeplabv3.weights.safetensors"))
    return model


def reference_evaluation(ids: list[str], model: torch.nn.Module) -> dict:
    """torchvision references/segmentation: SegmentationPresetEval + evaluate + ConfusionMatrix."""
    mat = torch.zeros((CLASSES, CLASSES), dtype=torch.int64)
    with torch.inference_mode():
        for name in ids:
            x, t = preset_eval(OUT / "voc", name)
            out = model(x[None])["out"]
            pred = out.argmax(1).flatten()
            a = t.flatten()
            k = (a >= 0) & (a < CLASSES)
            mat += torch.bincount(CLASSES * a[k] + pred[k], minlength=CLASSES**2).reshape(
                CLASSES, CLASSES
            )
    h = mat.double()
    acc_global = (torch.diag(h).sum() / h.sum()).item()
    iu = torch.diag(h) / (h.sum(1) + h.sum(0) - torch.diag(h))
    return {
        "base_size": BASE_SIZE,
        "pixel_accuracy": acc_global,
        "iou": iu.tolist(),
        "miou": iu.mean().item(),
        "pixels": int(h.sum().item()),
        "evaluated_sizes": [list(F.resize(Image.new("RGB", (w, h)), BASE_SIZE).size[::-1])
                            for h, w in SIZES],
    }


DET = {"base_channels": 4, "head_channels": 8, "num_classes": 4, "transform_size": [64, 112]}
DET_SIZES = [(60, 80), (72, 56), (50, 50)]


def write_images() -> list[torch.Tensor]:
    """The tiny COCO set's images (PNG); returns them as [0, 1] tensors as read back."""
    rng = np.random.default_rng(16)
    root = OUT / "coco"
    for d in ("annotations", "val", "train"):
        (root / d).mkdir(parents=True, exist_ok=True)
    tensors = []
    for i, (h, w) in enumerate(DET_SIZES):
        img = Image.fromarray(rng.integers(70, 110, (h, w, 3)).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(3):
            s = int(rng.integers(14, 30))
            x, y = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
            draw.rectangle([x, y, x + s, y + s], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        for split in ("val", "train"):
            img.save(root / split / f"im{i}.png")
        tensors.append(F.pil_to_tensor(Image.open(root / "val" / f"im{i}.png").convert("RGB")).float() / 255.0)
    return tensors


def annotate(outputs: list[dict]) -> Path:
    """Ground truth from the model's own detections, so that the AP is far from 0 and every
    step of the protocol shows in it: per image, the top-scoring detections become objects
    (their box, rounded, as a rectangle polygon, the annotation's `area` stated), every fourth
    one a crowd region instead."""
    root = OUT / "coco"
    images, annotations = [], []
    for i, ((h, w), out) in enumerate(zip(DET_SIZES, outputs)):
        images.append({"id": i + 1, "file_name": f"im{i}.png", "height": h, "width": w})
        for k in range(min(8, len(out["scores"]))):
            x1, y1, x2, y2 = (round(float(v)) for v in out["boxes"][k])
            if x2 - x1 < 2 or y2 - y1 < 2:
                continue
            annotations.append({
                "id": len(annotations) + 1, "image_id": i + 1,
                "category_id": int(out["labels"][k]), "iscrowd": int(k % 4 == 3),
                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": float((x2 - x1) * (y2 - y1)),
                "segmentation": [[x1, y1, x2, y1, x2, y2, x1, y2]]})
    cats = [{"id": c, "name": n} for c, n in [(1, "square"), (2, "triangle"), (3, "other")]]
    doc = json.dumps({"images": images, "annotations": annotations, "categories": cats})
    for split in ("val", "train"):
        (root / "annotations" / f"instances_{split}.json").write_text(doc)
    return root / "annotations" / "instances_val.json"


def detection(tensors: list[torch.Tensor]) -> dict:
    """torchvision references/detection: model(images at their own size) → COCOeval."""
    from pycocotools import mask as mask_util
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.models.resnet import Bottleneck
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    from mask_rcnn import FrozenNarrowResNet, calibrate, reinit

    base, head, classes = DET["base_channels"], DET["head_channels"], DET["num_classes"]
    e = Bottleneck.expansion
    backbone = BackboneWithFPN(
        FrozenNarrowResNet(Bottleneck, [3, 4, 6, 3], base),
        return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
        in_channels_list=[base * e, base * 2 * e, base * 4 * e, base * 8 * e],
        out_channels=head, extra_blocks=LastLevelMaxPool())
    model = MaskRCNN(
        backbone, num_classes=None,
        min_size=DET["transform_size"][0], max_size=DET["transform_size"][1],
        box_head=TwoMLPHead(head * 7 * 7, 4 * head),
        box_predictor=FastRCNNPredictor(4 * head, classes),
        mask_head=MaskRCNNHeads(head, [head] * 4, 1),
        mask_predictor=MaskRCNNPredictor(head, head, classes))
    torch.manual_seed(17)
    reinit(model)
    calibrate(model, tensors, cls_means=(1.0,))
    model.eval()
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()},
              str(OUT / "maskrcnn.weights.safetensors"))
    with torch.inference_mode():
        outputs = [model([img])[0] for img in tensors]
    annotation_file = annotate(outputs)
    results_bbox, results_segm = [], []
    for i, out in enumerate(outputs):
        boxes = out["boxes"].clone()
        boxes[:, 2:] -= boxes[:, :2]
        masks = (out["masks"] > 0.5)[:, 0].numpy()
        for k in range(len(out["scores"])):
            found = {"image_id": i + 1, "category_id": int(out["labels"][k]),
                     "score": float(out["scores"][k])}
            results_bbox.append({**found, "bbox": boxes[k].tolist()})
            rle = mask_util.encode(np.asfortranarray(masks[k].astype(np.uint8)))
            rle["counts"] = rle["counts"].decode("ascii")
            results_segm.append({**found, "segmentation": rle})
    gt = COCO(str(annotation_file))
    figures = {"detections": len(results_bbox)}
    for kind, results in (("bbox", results_bbox), ("segm", results_segm)):
        ev = COCOeval(gt, gt.loadRes(results), kind)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        figures[kind] = [float(v) for v in ev.stats[:3]]
    return {"detection": {**DET, **figures}}


def main() -> None:
    torch.manual_seed(0)
    ids = write_dataset()
    expected = reference_evaluation(ids, weights(ids))
    expected.update(detection(write_images()))
    (OUT / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(json.dumps(expected, indent=2))


if __name__ == "__main__":
    main()
