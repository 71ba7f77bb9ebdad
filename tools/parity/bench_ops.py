"""PyTorch CPU timings of the heavy ops, the baseline for the `zoo-nn` benches.

    python tools/parity/bench_ops.py | tee tools/parity/bench_ops_output.txt

Two threads (torch.set_num_threads(2)); 3 warm-up iterations, then the median of 10.
"""

from __future__ import annotations

import platform

import torch
import torchvision

from common import median_ms

WARMUP = 3
RUNS = 10


def bench(fn) -> float:
    return median_ms(fn, RUNS, WARMUP)


def roi_align_setup():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 256, 50, 50, generator=g)
    k = 512
    size = 4 + torch.rand(k, 2, generator=g) * 36  # 4..40 feature units
    start = torch.rand(k, 2, generator=g) * (50 - size)  # inside 0..50
    batch = torch.randint(0, 2, (k, 1), generator=g).float()
    rois = torch.cat([batch, start, start + size], 1)
    return x, rois


def deform_setup():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 64, 56, 56, generator=g)
    weight = torch.randn(64, 64, 3, 3, generator=g) * 0.05
    offset = torch.randn(2, 18, 56, 56, generator=g) * 0.5
    mask = torch.sigmoid(torch.randn(2, 9, 56, 56, generator=g))
    return x, weight, offset, mask


def main() -> None:
    torch.set_num_threads(2)
    rows = []

    x, rois = roi_align_setup()

    def ra_fwd():
        with torch.no_grad():
            torchvision.ops.roi_align(x, rois, (7, 7), 1.0, 2, False)

    xg = x.clone().requires_grad_(True)

    def ra_fwd_bwd():
        xg.grad = None
        torchvision.ops.roi_align(xg, rois, (7, 7), 1.0, 2, False).sum().backward()

    desc = "roi_align 2x256x50x50, 512 rois, 7x7, sr 2, aligned=False"
    rows.append((desc, "forward", bench(ra_fwd)))
    rows.append((desc, "forward+backward", bench(ra_fwd_bwd)))

    x, weight, offset, mask = deform_setup()

    def dc_fwd():
        with torch.no_grad():
            torchvision.ops.deform_conv2d(x, offset, weight, padding=(1, 1), mask=mask)

    leaves = [t.clone().requires_grad_(True) for t in (x, offset, mask, weight)]

    def dc_fwd_bwd():
        for t in leaves:
            t.grad = None
        xi, oi, mi, wi = leaves
        torchvision.ops.deform_conv2d(xi, oi, wi, padding=(1, 1), mask=mi).sum().backward()

    desc = "deform_conv2d v2 2x64x56x56, w 64x64x3x3, pad 1, mask"
    rows.append((desc, "forward", bench(dc_fwd)))
    rows.append((desc, "forward+backward", bench(dc_fwd_bwd)))

    print(f"PyTorch {torch.__version__}, torchvision {torchvision.__version__}, CPU, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}; "
          f"median of {RUNS} after {WARMUP} warm-up")
    print()
    print("| op | pass | ms / iter |")
    print("|---|---|---:|")
    for desc, what, ms in rows:
        print(f"| {desc} | {what} | {ms:.1f} |")


if __name__ == "__main__":
    main()
