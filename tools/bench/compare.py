"""burn-zoo against PyTorch CPU, side by side, in one run: the table of BENCHMARKS.md.

    python3 tools/bench/compare.py [--python VENV/bin/python] [--threads 2] [--backend flex]
        [--max-runs 5] [--budget-s 30] [--write BENCHMARKS.md] [WORKLOAD ...]

For each workload it runs burn-zoo's side (`cargo bench --workspace --profile dev --bench
suite`, which reuses the test build) and then PyTorch's (`torch_suite.py`, in the Python given
by --python, $ZOO_BENCH_PYTHON, or ./venv / ../venv), alternating so that both see the same
machine state, with the same thread count on both sides (RAYON_NUM_THREADS,
torch.set_num_threads). Without a Python that imports torch, only burn-zoo's column is filled.

`--write FILE` replaces the text between `<!-- suite:begin -->` and `<!-- suite:end -->` in FILE.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = [
    "conv3x3_fwd", "conv3x3_xgrad", "conv3x3_wgrad", "conv3x3_train",
    "roi_align_fwd", "roi_align_train",
    "deform_conv2d_fwd", "deform_conv2d_train",
    "aspp_fwd", "aspp_train",
    "swin_block_fwd", "swin_block_train",
    "deeplabv3_fwd", "swin_tiny_fwd",
    "unet_fwd", "unet_train",
    "resnet50_fwd", "resnet50_train",
    "mask_rcnn_detect", "mask_rcnn_train",
]


def find_python(given: str | None) -> str | None:
    candidates = [given, os.environ.get("ZOO_BENCH_PYTHON"),
                  str(ROOT / "venv/bin/python"), str(ROOT.parent / "venv/bin/python")]
    for c in candidates:
        if c and Path(c).exists():
            ok = subprocess.run([c, "-c", "import torch, torchvision, timm, segmentation_models_pytorch"],
                                capture_output=True)
            if ok.returncode == 0:
                return c
    return None


def json_lines(cmd: list[str], env: dict) -> list[dict]:
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"compare: {' '.join(cmd[:4])}… failed with exit code {proc.returncode}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def simd() -> str:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "?"
    return "AVX-512" if " avx512f" in flags else ("AVX2" if " avx2" in flags else "no AVX2")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--python")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backend", default="flex")
    p.add_argument("--max-runs", type=int, default=5)
    p.add_argument("--budget-s", type=float, default=30.0)
    p.add_argument("--write")
    p.add_argument("workloads", nargs="*")
    args = p.parse_args()
    chosen = [w for w in WORKLOADS if not args.workloads or any(f in w for f in args.workloads)]
    python = find_python(args.python)

    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    timing = ["--max-runs", str(args.max_runs), "--budget-s", str(args.budget_s)]
    rust_cmd = ["cargo", "bench", "--workspace", "--profile", "dev", "--locked", "--bench", "suite",
                "--", "--json", "--backend", args.backend, *timing]
    subprocess.run(rust_cmd[:8] + ["--no-run"], cwd=ROOT, env=env, check=True)
    torch_cmd = [python, str(ROOT / "tools/bench/torch_suite.py"), "--json", "--threads",
                 str(args.threads), *timing] if python else None

    peak = json_lines(rust_cmd + ["peak"], env)[0]
    torch_version = None
    if python:
        torch_version = subprocess.run(
            [python, "-c", "import torch, torchvision, timm, segmentation_models_pytorch as s;"
             "print(f'PyTorch {torch.__version__}, torchvision {torchvision.__version__}, "
             "timm {timm.__version__}, smp {s.__version__}')"],
            capture_output=True, text=True, check=True).stdout.strip()

    rows = []
    for wid in chosen:
        ours = json_lines(rust_cmd + [wid], env)
        theirs = json_lines(torch_cmd + [wid], env) if torch_cmd else []
        for o in ours:
            t = next((t for t in theirs if t["id"] == o["id"]), None)
            rows.append((o, t))
            print(f"{o['id']:<22} burn-zoo {o['ms']:>10.1f} ms   PyTorch "
                  f"{t['ms'] if t else float('nan'):>10.1f} ms   ratio "
                  f"{o['ms'] / t['ms'] if t else float('nan'):.2f}", file=sys.stderr, flush=True)

    def gflops(r):
        return f" ({r['gflop'] / r['ms'] * 1e3:.0f} GFLOP/s)" if r and r.get("gflop") else ""

    lines = [
        f"Recorded {datetime.date.today()} by `python3 tools/bench/compare.py` on {cpu_name()} "
        f"({os.cpu_count()} cores, {simd()}), {args.threads} threads on each side; burn-zoo on "
        f"`{args.backend}` (`cargo bench --profile dev`: dependencies at opt-level 3), "
        f"{torch_version or 'no PyTorch found'} (CPU, eager); subnormals flushed to zero on both sides "
        f"(FTZ/DAZ). Median of up to {args.max_runs} runs "
        f"after one warm-up. Ratio = burn-zoo / PyTorch (below 1: burn-zoo is faster). Measured f32 "
        f"peak of this CPU: {peak['gflops']:.0f} GFLOP/s ({peak['desc']}).",
        "",
        "| workload | PyTorch CPU | burn-zoo | ratio |",
        "|---|---:|---:|---:|",
    ]
    for o, t in rows:
        torch_ms = f"{t['ms']:.1f} ms{gflops(t)}" if t else "—"
        ratio = f"{o['ms'] / t['ms']:.2f}×" if t else "—"
        lines.append(f"| {o['desc']} | {torch_ms} | {o['ms']:.1f} ms{gflops(o)} | {ratio} |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        path = Path(args.write)
        text = path.read_text()
        begin, end = "<!-- suite:begin -->", "<!-- suite:end -->"
        if begin not in text or end not in text:
            raise SystemExit(f"compare: {path} has no {begin} … {end} block to replace")
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        path.write_text(f"{head}{begin}\n{table}\n{end}{tail}")


if __name__ == "__main__":
    main()
