"""Module fixtures: upstream PyTorch modules with random weights (and random BatchNorm
statistics), eval mode, forward and gradients w.r.t. the input and every parameter.

Each file holds `input`, `output`, `grad_output`, `grad_input`, `state.<key>` for every
state_dict entry (minus `num_batches_tracked`) and `grad_state.<key>` for every parameter.

    /work/pyenv/bin/python tools/parity/modules.py
"""

from __future__ import annotations

import torch
from torchvision.models.segmentation.deeplabv3 import ASPP

from common import REPO_ROOT, save_case

OUT = REPO_ROOT / "crates" / "zoo-nn" / "tests" / "fixtures"


def randomise_batchnorm(module: torch.nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)


def module_case(path, module: torch.nn.Module, input_shape, params: dict, seed: int) -> None:
    module.eval()
    x = torch.randn(input_shape).requires_grad_(True)
    out = module(x)
    grad_output = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed + 1))
    (out * grad_output).sum().backward()
    tensors = {"input": x, "output": out, "grad_output": grad_output, "grad_input": x.grad}
    for key, value in module.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            tensors[f"state.{key}"] = value
    for key, p in module.named_parameters():
        tensors[f"grad_state.{key}"] = p.grad
    save_case(path, tensors, params)


def aspp() -> None:
    cases = {
        "small": (8, 6, [1, 2], (9, 9)),
        "rect": (6, 4, [2, 3, 5], (7, 11)),
        "one_rate": (5, 3, [3], (6, 5)),
    }
    for seed, (name, (cin, cout, rates, (h, w))) in enumerate(cases.items()):
        torch.manual_seed(seed)
        module = ASPP(cin, rates, cout)
        randomise_batchnorm(module)
        params = {"in_channels": cin, "out_channels": cout, "atrous_rates": rates}
        module_case(OUT / "aspp" / f"{name}.safetensors", module, (2, cin, h, w), params, seed)


if __name__ == "__main__":
    torch.set_num_threads(1)
    aspp()
