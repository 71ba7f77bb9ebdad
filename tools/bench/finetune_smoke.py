"""Runs each real-data run file (`configs/*_coco.toml`, `*_voc*.toml`, `*_imagefolder*.toml`)
for a few steps on synthetic data in its format, starting from random weights in the
upstream layout (the real files are downloads this machine may not reach), and prints what
each run reached. Proves that the shipped files run end to end — data, weights, training,
the evaluation protocol — not what they reach on the real datasets.

    VENV/bin/python tools/bench/finetune_smoke.py [--zoo target/debug/zoo] [--work /tmp/zoo-smoke] [FILE ...]

- VOC layout: `tools/bench/synth_voc.py` (16 images of 500×375, like VOC's);
- COCO layout: 4 images of 640×480 with 2–3 polygon objects (raw category ids 1, 3, 18) and
  one crowd region each;
- ImageFolder: 10 classes × 4 images of 160×213 (Imagenette-160's shape);
- weights: torchvision's / timm's models built with random weights and saved in their own
  layout (`.pth` state dicts, `.safetensors` for timm); a run file naming a registry entry is
  pointed at the file (`model.weights=…` or `model.backbone_weights=…`), with the settings the
  registry entry would have implied (the evaluation protocol, Mask R-CNN's frozen BatchNorm)
  passed as overrides where the file leaves them to the weights.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]


def voc(work: Path) -> Path:
    out = work / "voc"
    if not out.exists():
        subprocess.run([sys.executable, str(ROOT / "tools/bench/synth_voc.py"), str(out),
                        "--count", "16", "--size", "500"], check=True)
        ids = (out / "ImageSets/Segmentation/train.txt").read_text().split()
        (out / "ImageSets/Segmentation/val.txt").write_text("\n".join(ids[:8]) + "\n")
    return out


def coco(work: Path) -> Path:
    out = work / "coco"
    if out.exists():
        return out
    rng = np.random.default_rng(3)
    (out / "annotations").mkdir(parents=True)
    for split in ("train", "val"):
        (out / split).mkdir()
        images, annotations = [], []
        for i in range(4):
            w, h = 640, 480
            img = Image.fromarray(rng.integers(60, 120, (h, w, 3), dtype=np.uint8))
            draw = ImageDraw.Draw(img)
            for k in range(int(rng.integers(2, 4))):
                x, y = int(rng.integers(0, w - 200)), int(rng.integers(0, h - 200))
                s = int(rng.integers(60, 200))
                poly = [x, y, x + s, y, x + s // 2, y + s]
                draw.polygon(poly, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
                cat = [1, 3, 18][k % 3]
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": cat,
                                    "iscrowd": 0, "bbox": [x, y, s, s], "area": s * s / 2,
                                    "segmentation": [poly]})
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": 1,
                                "iscrowd": 1, "bbox": [0, 0, 40, 40], "area": 1600,
                                "segmentation": [[0, 0, 40, 0, 40, 40, 0, 40]]})
            name = f"{split}{i}.jpg"
            img.save(out / split / name, quality=90)
            images.append({"id": i + 1, "file_name": name, "height": h, "width": w})
        cats = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 18, "name": "dog"}]
        (out / "annotations" / f"instances_{split}.json").write_text(
            json.dumps({"images": images, "annotations": annotations, "categories": cats}))
    return out


def image_folder(work: Path) -> Path:
    out = work / "folder"
    if out.exists():
        return out
    rng = np.random.default_rng(4)
    for split in ("train", "val"):
        for c in range(10):
            d = out / split / f"class{c}"
            d.mkdir(parents=True)
            colour = rng.integers(0, 256, 3)
            for i in range(4 if split == "train" else 2):
                img = np.clip(colour + rng.normal(0, 30, (160, 213, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i}.jpg", quality=90)
    return out


def weights(work: Path, kind: str) -> Path:
    import torchvision
    torch.manual_seed(0)
    if kind == "deeplabv3":
        path = work / "deeplabv3_resnet50_coco.pth"
        model = lambda: torchvision.models.segmentation.deeplabv3_resnet50(  # noqa: E731
            weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    elif kind == "maskrcnn":
        path = work / "maskrcnn_resnet50_fpn_coco.pth"
        model = lambda: torchvision.models.detection.maskrcnn_resnet50_fpn(  # noqa: E731
            weights=None, weights_backbone=None, num_classes=91)
    elif kind == "resnet34":
        path = work / "resnet34_encoder.pth"
        model = lambda: torchvision.models.resnet34()  # noqa: E731
    elif kind == "swin":
        import timm
        from safetensors.torch import save_file
        path = work / "swin_tiny.safetensors"
        if not path.exists():
            m = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False)
            save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(path))
        return path
    else:
        raise ValueError(kind)
    if not path.exists():
        state = model().state_dict()
        if kind == "resnet34":  # an smp encoder file: no classifier
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        torch.save(state, path)
    return path


def runs(work: Path) -> dict[str, list[str]]:
    folder, voc_root, coco_root = image_folder(work), voc(work), coco(work)
    steps = ["train.epochs=1"]
    return {
        "deeplabv3_voc_finetune.toml": [
            f"data.root={voc_root}", f"model.weights={weights(work, 'deeplabv3')}",
            "eval.resize=shorter_side", "eval.size=520", *steps],
        "unet_voc_finetune.toml": [
            f"data.root={voc_root}", f"model.backbone_weights={weights(work, 'resnet34')}", *steps],
        "unet_voc.toml": [f"data.root={voc_root}", *steps],
        "deeplabv3_coco.toml": [
            f"data.root={coco_root}", "data.train_split=train", "data.val_split=val", "train.batch_size=4",
            *steps],
        "mask_rcnn_coco_finetune.toml": [
            f"data.root={coco_root}", "data.train_split=train", "data.val_split=val",
            f"model.weights={weights(work, 'maskrcnn')}", "model.frozen_batch_norm=true",
            "model.backbone_norm_eps=0.0", "model.transform_size=[800, 1333]", "eval.resize=original",
            "data.image_size=[480, 640]", *steps],
        "mask_rcnn_coco.toml": [
            f"data.root={coco_root}", "data.train_split=train", "data.val_split=val", *steps],
        "swin_imagefolder_finetune.toml": [
            f"data.root={folder}", f"model.weights={weights(work, 'swin')}",
            "eval.resize=shorter_side", "eval.size=248", "eval.crop=224", *steps],
        "swin_imagefolder.toml": [f"data.root={folder}", *steps],
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--zoo", default=str(ROOT / "target/debug/zoo"))
    p.add_argument("--work", default="/tmp/zoo-smoke")
    p.add_argument("files", nargs="*")
    a = p.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    for file, overrides in runs(work).items():
        if a.files and file not in a.files:
            continue
        out = work / "runs" / Path(file).stem
        cmd = [a.zoo, "train", str(ROOT / "configs" / file), "--out", str(out), "--force",
               "--log-every", "1", *overrides]
        start = time.time()
        r = subprocess.run(cmd, capture_output=True, text=True)
        took = time.time() - start
        tail = (r.stdout + r.stderr).strip().splitlines()[-4:]
        print(f"## {file}: exit {r.returncode}, {took:.0f} s")
        for line in tail:
            print("   ", line)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
