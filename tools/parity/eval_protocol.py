"""`zoo eval`'s segmentation protocol against torchvision's reference evaluation (issue 15).

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
from PIL import Image
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


def main() -> None:
    torch.manual_seed(0)
    ids = write_dataset()
    expected = reference_evaluation(ids, weights(ids))
    (OUT / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(json.dumps(expected, indent=2))


if __name__ == "__main__":
    main()
