"""PyTorch CPU timings of the model benchmarks (`cargo bench -p zoo-models --bench models`):
deeplabv3_resnet50 forward 1x3x256x256 (eval), swin_tiny forward 1x3x224x224 (eval), one
U-Net(resnet18) SGD train step 4x3x128x128 (train mode, per-pixel cross-entropy).

    python tools/parity/bench_models.py | tee tools/parity/bench_models_output.txt

Two threads; one warm-up, then the median of 5 — the same loop as the Rust side.
"""

from __future__ import annotations

import platform

import segmentation_models_pytorch as smp
import timm
import torch
import torchvision

from common import median_ms


def bench(fn, runs=5):
    return median_ms(fn, runs, warmup=1)


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    rows = []
    model = torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None,
                                                               num_classes=21, aux_loss=False).eval()
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        rows.append(("deeplabv3_resnet50 fwd 1×3×256×256", bench(lambda: model(x))))
    model = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        rows.append(("swin_tiny fwd 1×3×224×224", bench(lambda: model(x))))
    model = smp.Unet("resnet18", encoder_weights=None, classes=2).train()
    optim = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(4, 3, 128, 128)
    target = torch.randint(0, 2, (4, 128, 128))

    def step():
        optim.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), target)
        loss.backward()
        optim.step()

    rows.append(("unet_resnet18 train step (SGD) 4×3×128×128", bench(step)))
    print(f"PyTorch {torch.__version__}, torchvision {torchvision.__version__}, timm {timm.__version__}, "
          f"smp {smp.__version__}, CPU, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}; median of 5 after 1 warm-up")
    print()
    print("| model | ms / iter |")
    print("|---|---:|")
    for what, ms in rows:
        print(f"| {what} | {ms:.1f} |")


if __name__ == "__main__":
    main()
