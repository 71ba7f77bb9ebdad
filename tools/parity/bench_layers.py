"""PyTorch CPU timings of the heavy layers, the baseline for `cargo bench -p zoo-nn --bench
layers` (same shapes).

    python tools/parity/bench_layers.py | tee tools/parity/bench_layers_output.txt

Two threads; 3 warm-up iterations, then the median of 10. Eval mode (BatchNorm on running
statistics, no dropout); fwd+bwd = gradients of the output's sum w.r.t. input and parameters.
"""

from __future__ import annotations

import platform

import timm
import torch
import torchvision
from timm.models.swin_transformer import SwinTransformerBlock
from torchvision.models.segmentation.deeplabv3 import ASPP

from bench_ops import RUNS, WARMUP, bench


def rows_for(desc, module, x):
    module.eval()

    def fwd():
        with torch.no_grad():
            module(x)

    xg = x.clone().requires_grad_(True)

    def fwd_bwd():
        module.zero_grad(set_to_none=True)
        xg.grad = None
        module(xg).sum().backward()

    return [(desc, "forward", bench(fwd)), (desc, "forward+backward", bench(fwd_bwd))]


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    rows = []
    rows += rows_for("Aspp 1x2048x32x32 -> 256, rates 12/24/36 (torchvision ASPP)",
                     ASPP(2048, [12, 24, 36], 256), torch.randn(1, 2048, 32, 32))
    rows += rows_for("SwinBlock 1x56x56x96, 3 heads, window 7, shift 3 (timm SwinTransformerBlock)",
                     SwinTransformerBlock(96, (56, 56), num_heads=3, window_size=7, shift_size=3),
                     torch.randn(1, 56, 56, 96))
    print(f"PyTorch {torch.__version__}, torchvision {torchvision.__version__}, timm {timm.__version__}, "
          f"CPU, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}; "
          f"median of {RUNS} after {WARMUP} warm-up")
    print()
    print("| layer | pass | ms / iter |")
    print("|---|---|---:|")
    for desc, what, ms in rows:
        print(f"| {desc} | {what} | {ms:.1f} |")


if __name__ == "__main__":
    main()
