"""PyTorch CPU timings of the Mask R-CNN benchmarks (`cargo bench -p zoo-models --bench models
-- mask_rcnn`): torchvision maskrcnn_resnet50_fpn (weights=None, 91 classes, min_size =
max_size = 320) detection on one 3x320x320 image (eval), and one SGD step of the summed
losses on two images with two box-shaped objects each (train mode).

    python tools/parity/bench_mask_rcnn.py | tee tools/parity/bench_mask_rcnn_output.txt

Two threads; one warm-up, then the median of 5 — the same loop as the Rust side.
"""

from __future__ import annotations

import platform

import torch
import torchvision

from common import median_ms


def bench(fn, runs=5):
    return median_ms(fn, runs, warmup=1)


def target():
    boxes = torch.tensor([[40.0, 50.0, 160.0, 200.0], [150.0, 120.0, 300.0, 290.0]])
    masks = torch.zeros(2, 320, 320, dtype=torch.uint8)
    for k, b in enumerate(boxes.int().tolist()):
        masks[k, b[1]:b[3], b[0]:b[2]] = 1
    return {"boxes": boxes, "labels": torch.tensor([1, 2]), "masks": masks}


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    rows = []
    model = torchvision.models.detection.maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=91, min_size=320, max_size=320)
    model.eval()
    image = torch.rand(3, 320, 320)
    with torch.no_grad():
        rows.append(("maskrcnn_resnet50_fpn detect 1×3×320×320", bench(lambda: model([image]))))
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = [torch.rand(3, 320, 320) for _ in range(2)]
    targets = [target(), target()]

    def step():
        losses = model(images, targets)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()

    rows.append(("maskrcnn_resnet50_fpn train step (SGD) 2×3×320×320", bench(step)))
    print(f"PyTorch {torch.__version__}, torchvision {torchvision.__version__}, CPU, "
          f"{torch.get_num_threads()} threads, {platform.machine()}; median of 5 after 1 warm-up")
    print()
    print("| model | ms / iter |")
    print("|---|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.1f} |")


if __name__ == "__main__":
    main()
