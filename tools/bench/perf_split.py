"""Where a suite workload's time goes, by kind of operation: samples `perf` takes of
`cargo bench --bench suite -- WORKLOAD` (call stacks through DWARF), each charged to the first
category (in the order below) that a frame of its stack matches.

    python3 tools/bench/perf_split.py WORKLOAD [--runs 5] [--freq 499] [--kernels zoo|burn]

`--kernels burn` sets ZOO_NN_KERNELS=burn (Burn's own operations everywhere): the "before"
profile. Samples of setup (model initialisation, random inputs) are dropped; the shares are of
the rest. Needs `perf` (Debian: linux-perf) with permission to sample this process.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# (category, pattern over one frame's symbol); the first category any frame matches wins, so
# backward passes are listed before the forward ops they call.
CATEGORIES = [
    ("setup (excluded)", r"TensorData.{0,6}random|ElementRandom|Initializer|chacha|Distribution.{0,6}sampler"),
    ("optimizer update", r"burn_optim|ModuleOptimizer"),
    ("conv input-grad", r"conv.{0,4}input_grad|conv2d_x_backward|conv_transpose"),
    # Burn's weight gradient is a convolution called from its autodiff node (`Conv2DNoBias`).
    ("conv weight-grad", r"conv.{0,4}weight_grad|conv2d_weight_backward|Conv2D(No|With)Bias.{0,60}backward|direct::weight_grad|wgrad_kernel"),
    ("BatchNorm backward", r"batch_norm_train_backward|BatchNormTrain.{0,60}backward|norm.{0,4}train_backward|affine_backward"),
    ("conv forward", r"kernels.{0,4}conv.{0,4}forward|burn_flex.{0,6}ops.{0,6}conv|conv3d_impl|conv2d"),
    # The direct kernels serve the forward and the input gradient: a pool thread's stack
    # does not say which (the main thread's does, matched above).
    ("conv forward or input-grad (direct kernels, pool threads)", r"conv::direct::"),
    ("BatchNorm forward", r"batch_norm|norm.{0,4}train_forward|affine_forward|channel_affine"),
    ("resize / upsample", r"resize|interpolate|select_add|float_select|gather"),
    ("max-pool", r"max_pool"),
    # burn-zoo's fused Swin attention (its frames include `core::slice` iterators: before copies).
    ("window attention (fused kernel)", r"window_attention::"),
    ("matmul (linear layers, attention)", r"matmul|\bgemm"),
    ("softmax / layer-norm / GELU", r"softmax|layer_norm|LayerNorm|gelu"),
    ("loss (log-softmax, cross-entropy)", r"log_softmax|cross_entropy|CrossEntropy"),
    # rayon's and core's slice iterators show in the frames of every parallel kernel.
    ("concat / slice / copies", r"float_cat|cat_|(?<!rayon::)(?<!core::)slice|into_contiguous|copy_contiguous|permute|memmove|memcpy"),
    ("elementwise (add, mul, relu, …)", r"ops.{0,4}binary|ops.{0,4}unary|activation|relu|scalar_op|float_add|float_mul|mask"),
    ("allocator / page faults", r"\bmalloc|\bcfree|_int_free|_int_malloc|page_fault|clear_page|__memset|mmap|munmap|__rust_alloc|__rdl_alloc|__rust_dealloc"),
    ("reductions", r"reduce|sum_dim|mean_dim"),
]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("workload")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--freq", type=int, default=499)
    p.add_argument("--kernels", choices=["zoo", "burn"], default="zoo")
    args = p.parse_args()
    env = dict(os.environ)
    if args.kernels == "burn":
        env["ZOO_NN_KERNELS"] = "burn"
    build = subprocess.run(["cargo", "bench", "--workspace", "--profile", "dev", "--locked", "--bench",
                            "suite", "--no-run", "--message-format", "json"],
                           cwd=ROOT, capture_output=True, text=True, check=True)
    binary = next(line.split('"executable":"')[1].split('"')[0] for line in build.stdout.splitlines()
                  if '"executable":"' in line and "suite" in line)
    data = Path("/tmp") / f"zoo-profile-{args.workload}-{args.kernels}.data"
    subprocess.run(["perf", "record", "-q", "-F", str(args.freq), "--call-graph", "dwarf,32768", "-o",
                    str(data), binary, args.workload, "--max-runs", str(args.runs)],
                   cwd=ROOT, env=env, check=True, stdout=sys.stderr)
    script = subprocess.run(["perf", "script", "-i", str(data), "-F", "pid,tid,time,ip,sym"],
                            capture_output=True, text=True, check=True).stdout
    patterns = [(name, re.compile(rx)) for name, rx in CATEGORIES]

    def categorise(frames: list[str]) -> str | None:
        return next((name for name, rx in patterns if any(rx.search(f) for f in frames)), None)

    # A rayon worker's stack ends in the pool, not in the operation that queued the work, so
    # a worker sample no pattern matches takes the category of the main thread's nearest
    # sample in time (the main thread waits inside that operation).
    main_samples: list[tuple[float, str]] = []
    workers: list[tuple[float, str | None]] = []
    for sample in script.split("\n\n"):
        lines = [line.strip() for line in sample.splitlines() if line.strip()]
        if not lines:
            continue
        ids, stamp = lines[0].split()[:2]
        pid, tid = ids.split("/")
        when = float(stamp.rstrip(":"))
        category = categorise(lines[1:])
        if pid == tid:
            main_samples.append((when, category or "other"))
        else:
            workers.append((when, category))
    times = [t for t, _ in main_samples]
    counts: collections.Counter[str] = collections.Counter(c for _, c in main_samples)
    for when, category in workers:
        if category is None:
            i = bisect.bisect_left(times, when)
            near = [j for j in (i - 1, i) if 0 <= j < len(times)]
            category = min(near, key=lambda j: abs(times[j] - when), default=None)
            category = main_samples[category][1] if category is not None else "other"
        counts[category] += 1
    total = sum(n for c, n in counts.items() if not c.startswith("setup"))
    print(f"{args.workload} ({args.kernels} kernels): {total} samples at {args.freq} Hz")
    print("| operation | share |")
    print("|---|---:|")
    for category, n in counts.most_common():
        if not category.startswith("setup"):
            print(f"| {category} | {100 * n / total:.1f} % |")


if __name__ == "__main__":
    main()
