"""Shared helpers for the parity fixture generators in tools/parity/.

A fixture is one `.safetensors` file: named tensors (float32 or int64, contiguous) plus the
op's scalar parameters as JSON in the `params` metadata entry. The Rust side reads them with
`zoo_testing::Fixture`.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import save_file

REPO_ROOT = Path(__file__).resolve().parents[2]


def _normalise(name: str, t: torch.Tensor) -> torch.Tensor:
    t = t.detach().cpu()
    if t.is_complex():
        raise TypeError(f"tensor {name!r} has unsupported dtype {t.dtype}")
    t = t.to(torch.float32) if t.is_floating_point() else t.to(torch.int64)
    return t.contiguous().clone()


def save_case(path: str | Path, tensors: dict[str, torch.Tensor], params: dict) -> Path:
    """Writes one fixture: tensors as float32 / int64, `params` as JSON metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {name: _normalise(name, t) for name, t in tensors.items()}
    save_file(data, str(path), metadata={"params": json.dumps(params)})
    return path


def forward_backward(
    fn: Callable[..., torch.Tensor],
    diff_inputs: dict[str, torch.Tensor],
    seed: int,
    **other_inputs,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Runs `fn(**diff_inputs, **other_inputs)` and backpropagates a random upstream gradient.

    Every tensor in `diff_inputs` is made a fresh leaf that requires grad. The upstream
    gradient `grad_output` is `randn(output.shape)` from a generator seeded with `seed`, so
    the grads are those of `sum(output * grad_output)`.

    Returns `(output, grad_output, {"grad_<name>": grad})`; a grad that autograd leaves
    undefined (input unused) is returned as zeros.
    """
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in diff_inputs.items()}
    output = fn(**leaves, **other_inputs)
    gen = torch.Generator().manual_seed(seed)
    grad_output = torch.randn(output.shape, generator=gen, dtype=output.dtype)
    grads = torch.autograd.grad(
        output, list(leaves.values()), grad_output, allow_unused=True
    )
    out = {}
    for (name, leaf), g in zip(leaves.items(), grads):
        out[f"grad_{name}"] = torch.zeros_like(leaf) if g is None else g.detach()
    return output.detach(), grad_output, out


def median_ms(fn: Callable[[], object], runs: int, warmup: int) -> float:
    """`warmup` untimed calls of `fn`, then the median of `runs` timed ones, in ms (the loop
    the Rust benchmarks use)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3
