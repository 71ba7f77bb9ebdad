"""The side-by-side benchmark suite: PyTorch's half (`crates/zoo-models/benches/suite.rs` is
burn-zoo's). Same workloads, shapes, timing loop and output; run both with `compare.py`.

    python tools/bench/torch_suite.py [--json] [--threads 2] [--max-runs 5] [--budget-s 30] [WORKLOAD ...]

PyTorch CPU (eager), torchvision, timm and segmentation_models_pytorch, `torch.set_num_threads`.
Each workload runs once to warm up, then up to `--max-runs` times until `--budget-s` seconds
are spent; the median is reported.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time

import torch
import torch.nn.functional as F


def lcg_rois() -> torch.Tensor:
    """512 ROIs on two 50×50 maps, sides 4..40 (the LCG of suite.rs)."""
    state = 12345
    mask64 = (1 << 64) - 1

    def nxt() -> float:
        nonlocal state
        state = (state * 6364136223846793005 + 1442695040888963407) & mask64
        return float(torch.tensor((state >> 33) / (1 << 31), dtype=torch.float32))

    rows = []
    for k in range(512):
        w, h = 4.0 + 36.0 * nxt(), 4.0 + 36.0 * nxt()
        x, y = (50.0 - w) * nxt(), (50.0 - h) * nxt()
        rows.append([float(k % 2), x, y, x + w, y + h])
    return torch.tensor(rows, dtype=torch.float32)


class Suite:
    def __init__(self, args):
        self.args = args

    def wanted(self, wid: str) -> bool:
        return not self.args.filters or any(f in wid for f in self.args.filters)

    def time(self, fn) -> tuple[float, int]:
        fn()
        runs = []
        start = time.perf_counter()
        while len(runs) < self.args.max_runs and (not runs or time.perf_counter() - start < self.args.budget_s):
            t = time.perf_counter()
            fn()
            runs.append((time.perf_counter() - t) * 1e3)
        return statistics.median(runs), len(runs)

    def report(self, wid: str, desc: str, gflop, timing) -> None:
        ms, runs = timing
        if self.args.json:
            print(json.dumps({"id": wid, "desc": desc, "backend": "torch", "ms": round(ms, 3),
                              "runs": runs, "gflop": gflop}), flush=True)
        else:
            rate = f" ({gflop / ms * 1e3:.1f} GFLOP/s)" if gflop else ""
            print(f"{wid:<22} {ms:>10.1f} ms  median of {runs}{rate}  {desc}", flush=True)


def fwd_or_train(module: torch.nn.Module, x: torch.Tensor, train: bool):
    if not train:
        module.eval()

        def fwd():
            with torch.no_grad():
                module(x)
        return fwd
    module.train()
    xg = x.clone().requires_grad_(True)

    def step():
        module.zero_grad(set_to_none=True)
        xg.grad = None
        module(xg).sum().backward()
    return step


def sgd_step(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor):
    model.train()
    optim = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        optim.zero_grad()
        loss = F.cross_entropy(model(x), target)
        loss.backward()
        optim.step()
        finite(loss.item())
    return step


def finite(loss: float) -> None:
    """A step's loss must be finite: a diverged model is no longer the workload (its NaNs take
    other paths, and a detector's NaN proposals are all dropped)."""
    if not math.isfinite(loss):
        raise SystemExit(f"the step diverged (loss {loss})")


LAYER_CONVS = [
    ("stem", (4, 3, 128, 128), 64, 7, 2),
    ("enc1", (4, 64, 32, 32), 64, 3, 1),
    ("enc2", (4, 128, 16, 16), 128, 3, 1),
    ("enc3", (4, 256, 8, 8), 256, 3, 1),
    ("enc4", (4, 512, 4, 4), 512, 3, 1),
    ("dec0", (4, 768, 8, 8), 256, 3, 1),
    ("dec3", (4, 128, 64, 64), 32, 3, 1),
    ("dec4a", (4, 32, 128, 128), 16, 3, 1),
    ("dec4b", (4, 16, 128, 128), 16, 3, 1),
    ("head", (4, 16, 128, 128), 2, 3, 1),
    ("r50_1x1_56", (8, 64, 56, 56), 256, 1, 1),
    ("r50_3x3_28", (8, 128, 28, 28), 128, 3, 1),
    ("r50_3x3_14", (8, 256, 14, 14), 256, 3, 1),
    ("r50_1x1_14", (8, 256, 14, 14), 1024, 1, 1),
    ("r50_1x1_14r", (8, 1024, 14, 14), 256, 1, 1),
    ("r50_3x3_7", (8, 512, 7, 7), 512, 3, 1),
    ("r50_stem", (8, 3, 224, 224), 64, 7, 2),
    ("r50_1x1_56r", (8, 256, 56, 56), 64, 1, 1),
    ("r50_3x3_56", (8, 64, 56, 56), 64, 3, 1),
    ("r50_3x3_56s", (8, 128, 56, 56), 128, 3, 2),
    ("r50_1x1_56s", (8, 256, 56, 56), 512, 1, 2),
    ("r50_1x1_28", (8, 128, 28, 28), 512, 1, 1),
    ("r50_1x1_28r", (8, 512, 28, 28), 128, 1, 1),
    ("r50_3x3_28s", (8, 256, 28, 28), 256, 3, 2),
    ("r50_1x1_28s", (8, 512, 28, 28), 1024, 1, 2),
    ("r50_3x3_14s", (8, 512, 14, 14), 512, 3, 2),
    ("r50_1x1_14s", (8, 1024, 14, 14), 2048, 1, 2),
    ("r50_1x1_7", (8, 512, 7, 7), 2048, 1, 1),
    ("r50_1x1_7r", (8, 2048, 7, 7), 512, 1, 1),
]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--json", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-runs", type=int, default=5)
    p.add_argument("--budget-s", type=float, default=30.0)
    p.add_argument("filters", nargs="*")
    args = p.parse_args()
    # Subnormals flushed to zero (FTZ/DAZ), as suite.rs does on burn-zoo's side; set before any
    # operation starts the intra-op threads, which inherit it. A random Mask R-CNN's gradients
    # drift into that range, and its steps then took 17–25 s instead of 2.8 (the box head's
    # GEMMs and ROI Align's backward): the x86 microcode's slow path, not the frameworks.
    torch.set_flush_denormal(True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    s = Suite(args)

    import segmentation_models_pytorch as smp
    import timm
    import torchvision
    from timm.models.swin_transformer import SwinTransformerBlock
    from torchvision.models.segmentation.deeplabv3 import ASPP

    if not args.json:
        print(f"PyTorch {torch.__version__}, torchvision {torchvision.__version__}, timm {timm.__version__}, "
              f"smp {smp.__version__}, {torch.get_num_threads()} threads, {platform.machine()}")

    conv_flop = 2.0 * 2 * 256 * 64 * 64 * 256 * 9 / 1e9
    for wid, train in (("conv3x3_fwd", False), ("conv3x3_train", True)):
        if not s.wanted(wid):
            continue
        x = torch.randn(2, 256, 64, 64)
        w = torch.randn(256, 256, 3, 3) * 0.02
        if train:
            xg, wg = x.clone().requires_grad_(True), w.clone().requires_grad_(True)

            def fn():
                xg.grad = wg.grad = None
                F.conv2d(xg, wg, padding=1).sum().backward()
        else:
            def fn():
                with torch.no_grad():
                    F.conv2d(x, w, padding=1)
        flop, what = (3 * conv_flop, "fwd+bwd (x, w)") if train else (conv_flop, "fwd")
        s.report(wid, f"conv2d 3×3 2×256×64×64 → 256, pad 1, {what}", flop, s.time(fn))

    # The convolutions of the U-Net(resnet18) and ResNet-50 steps, each on its own (diagnostic rows, run only
    # when asked for by name; suite.rs has the same list).
    if any(f.startswith("layer_") for f in args.filters):
        for name, shape, c_out, k, stride in LAYER_CONVS:
            x = torch.randn(*shape)
            w = torch.randn(c_out, shape[1], k, k)
            y = F.conv2d(x, w, stride=stride, padding=k // 2)
            dy = torch.randn_like(y)
            flop = 2.0 * shape[0] * c_out * y.shape[2] * y.shape[3] * shape[1] * k * k / 1e9
            passes = {
                "fwd": lambda: F.conv2d(x, w, stride=stride, padding=k // 2),
                "xgrad": lambda: torch.nn.grad.conv2d_input(x.shape, w, dy, stride=stride, padding=k // 2),
                "wgrad": lambda: torch.nn.grad.conv2d_weight(x, w.shape, dy, stride=stride, padding=k // 2),
            }
            for p_name, fn in passes.items():
                wid = f"layer_{name}_{p_name}"
                if s.wanted(wid):
                    with torch.no_grad():
                        s.report(wid, f"conv {k}×{k}/{stride} {list(shape)} → {c_out}, {p_name}", flop, s.time(fn))

    for wid in ("conv3x3_xgrad", "conv3x3_wgrad"):
        if not s.wanted(wid):
            continue
        x, w, dy = torch.randn(2, 256, 64, 64), torch.randn(256, 256, 3, 3) * 0.02, torch.randn(2, 256, 64, 64)
        if wid == "conv3x3_xgrad":
            def fn():
                torch.nn.grad.conv2d_input(x.shape, w, dy, padding=1)
        else:
            def fn():
                torch.nn.grad.conv2d_weight(x, w.shape, dy, padding=1)
        what = "input" if wid == "conv3x3_xgrad" else "weight"
        s.report(wid, f"conv2d 3×3 2×256×64×64 → 256, pad 1, {what} gradient", conv_flop, s.time(fn))

    for wid, train in (("roi_align_fwd", False), ("roi_align_train", True)):
        if not s.wanted(wid):
            continue
        x, rois = torch.randn(2, 256, 50, 50), lcg_rois()
        if train:
            xg = x.clone().requires_grad_(True)

            def fn():
                xg.grad = None
                torchvision.ops.roi_align(xg, rois, (7, 7), 1.0, 2, False).sum().backward()
        else:
            def fn():
                with torch.no_grad():
                    torchvision.ops.roi_align(x, rois, (7, 7), 1.0, 2, False)
        what = "fwd+bwd" if train else "fwd"
        s.report(wid, f"roi_align 2×256×50×50, 512 ROIs, 7×7, sampling 2, {what}", None, s.time(fn))

    for wid, train in (("deform_conv2d_fwd", False), ("deform_conv2d_train", True)):
        if not s.wanted(wid):
            continue
        x = torch.rand(2, 64, 56, 56)
        offset = torch.randn(2, 18, 56, 56) * 0.5
        mask = torch.rand(2, 9, 56, 56)
        weight = torch.randn(64, 64, 3, 3) * 0.05
        if train:
            leaves = [t.clone().requires_grad_(True) for t in (x, offset, mask, weight)]

            def fn():
                for t in leaves:
                    t.grad = None
                xi, oi, mi, wi = leaves
                torchvision.ops.deform_conv2d(xi, oi, wi, padding=(1, 1), mask=mi).sum().backward()
        else:
            def fn():
                with torch.no_grad():
                    torchvision.ops.deform_conv2d(x, offset, weight, padding=(1, 1), mask=mask)
        what = "fwd+bwd (input, offset, mask, weight)" if train else "fwd"
        s.report(wid, f"deform_conv2d v2 2×64×56×56, 64→64, 3×3, pad 1, {what}", None, s.time(fn))

    for wid, train in (("aspp_fwd", False), ("aspp_train", True)):
        if s.wanted(wid):
            # Batch 2 in training mode: the pooling branch's BatchNorm needs two values.
            n = 2 if train else 1
            fn = fwd_or_train(ASPP(2048, [12, 24, 36], 256), torch.rand(n, 2048, 32, 32), train)
            what = "train mode, fwd+bwd (input, parameters)" if train else "eval, fwd"
            s.report(wid, f"Aspp {n}×2048×32×32 → 256, rates 12/24/36, {what}", None, s.time(fn))

    for wid, train in (("swin_block_fwd", False), ("swin_block_train", True)):
        if s.wanted(wid):
            block = SwinTransformerBlock(96, (56, 56), num_heads=3, window_size=7, shift_size=3)
            fn = fwd_or_train(block, torch.rand(1, 56, 56, 96), train)
            what = "fwd+bwd (input, parameters)" if train else "fwd"
            s.report(wid, f"SwinBlock 1×56×56×96, 3 heads, window 7, shift 3, {what}", None, s.time(fn))

    def inference(wid, desc, model, x):
        model.eval()

        def fn():
            with torch.no_grad():
                model(x)
        s.report(wid, desc, None, s.time(fn))

    if s.wanted("deeplabv3_fwd"):
        model = torchvision.models.segmentation.deeplabv3_resnet50(
            weights=None, weights_backbone=None, num_classes=21, aux_loss=False)
        inference("deeplabv3_fwd", "deeplabv3_resnet50 (OS 8, 21 classes) fwd 1×3×256×256", model,
                  torch.rand(1, 3, 256, 256))
    if s.wanted("swin_tiny_fwd"):
        model = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False)
        inference("swin_tiny_fwd", "swin_tiny_patch4_window7_224 fwd 1×3×224×224", model,
                  torch.rand(1, 3, 224, 224))
    if s.wanted("unet_fwd"):
        model = smp.Unet("resnet18", encoder_weights=None, classes=2)
        inference("unet_fwd", "U-Net(resnet18), 2 classes, fwd 4×3×128×128", model, torch.rand(4, 3, 128, 128))
    if s.wanted("unet_train"):
        model = smp.Unet("resnet18", encoder_weights=None, classes=2)
        fn = sgd_step(model, torch.rand(4, 3, 128, 128), torch.randint(0, 2, (4, 128, 128)))
        s.report("unet_train", "U-Net(resnet18) SGD train step 4×3×128×128 (BN train mode)", None, s.time(fn))
    if s.wanted("resnet50_fwd"):
        inference("resnet50_fwd", "resnet50 fwd 8×3×224×224", torchvision.models.resnet50(),
                  torch.rand(8, 3, 224, 224))
    if s.wanted("resnet50_train"):
        fn = sgd_step(torchvision.models.resnet50(), torch.rand(8, 3, 224, 224), torch.randint(0, 1000, (8,)))
        s.report("resnet50_train", "resnet50 SGD train step 8×3×224×224 (BN train mode)", None, s.time(fn))
    if s.wanted("mask_rcnn_detect") or s.wanted("mask_rcnn_train"):
        mask_rcnn(s, torchvision)


def mask_rcnn(s: Suite, torchvision) -> None:
    """maskrcnn_resnet50_fpn at 320×320, 91 classes, random weights, built as torchvision
    builds it for fine-tuning (FrozenBatchNorm2d, 3 trainable backbone layers), which is
    burn-zoo's default `MaskRcnnConfig` (see suite.rs)."""
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops.misc import FrozenBatchNorm2d

    def build():
        backbone = torchvision.models.resnet50(norm_layer=FrozenBatchNorm2d)
        backbone = _resnet_fpn_extractor(backbone, 3)
        return MaskRCNN(backbone, num_classes=91, min_size=320, max_size=320)
    if s.wanted("mask_rcnn_detect"):
        model = build().eval()
        image = torch.rand(3, 320, 320)

        def detect():
            with torch.no_grad():
                model([image])
        s.report("mask_rcnn_detect", "maskrcnn_resnet50_fpn detect 1×3×320×320", None, s.time(detect))
    if s.wanted("mask_rcnn_train"):
        model = build().train()
        # lr 1e-4: at 0.01 this random model diverged (NaN) on the second step, after which
        # the RPN's proposals were all dropped and each "step" ran the box and mask heads
        # on the ground-truth boxes alone (4 rows through the box head instead of 1024).
        optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)
        images = [torch.rand(3, 320, 320) for _ in range(2)]
        boxes = torch.tensor([[40.0, 50.0, 160.0, 200.0], [150.0, 120.0, 300.0, 290.0]])
        masks = torch.zeros(2, 320, 320, dtype=torch.uint8)
        for k, b in enumerate(boxes.int().tolist()):
            masks[k, b[1]:b[3], b[0]:b[2]] = 1
        targets = [{"boxes": boxes, "labels": torch.tensor([1, 2]), "masks": masks} for _ in range(2)]

        def step():
            optim.zero_grad()
            loss = sum(model(images, targets).values())
            loss.backward()
            optim.step()
            finite(loss.item())
        s.report("mask_rcnn_train", "maskrcnn_resnet50_fpn SGD train step 2×3×320×320 (lr 1e-4)", None, s.time(step))


if __name__ == "__main__":
    main()
