"""Writes the tiny upstream state dicts `examples/use_as_dependency` loads, as a user's own
files would be: torchvision's `ASPP` and `FCNHead` (`torch.save(m.state_dict())`, `.pth`)
and a timm `SwinTransformer` (`safetensors.torch.save_file`), each with randomised weights and
BatchNorm statistics, and `reference.safetensors` holding the input the example builds and
each module's eval-mode output on it, so the example can print its difference from upstream.

Run from the repository root with the parity venv: `python tools/parity/use_as_dependency.py`.
"""

from __future__ import annotations

import timm
import torch
from safetensors.torch import save_file
from torchvision.models.segmentation.deeplabv3 import ASPP
from torchvision.models.segmentation.fcn import FCNHead

from common import REPO_ROOT

OUT = REPO_ROOT / "examples" / "use_as_dependency" / "weights"


def randomise(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.uniform_(0.5, 1.5)
            elif t.is_floating_point() and "relative_position_index" not in name:
                t.normal_(0.0, 0.3)


def example_input(c: int, h: int, w: int) -> torch.Tensor:
    # The example builds the same tensor: sin(0.1 · i) over the flat index.
    n = c * h * w
    return torch.sin(0.1 * torch.arange(n, dtype=torch.float32)).reshape(1, c, h, w)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(1700)
    aspp = ASPP(8, [2, 3], out_channels=6)
    head = FCNHead(8, 3)
    swin = timm.models.swin_transformer.SwinTransformer(
        img_size=(32, 32), patch_size=4, embed_dim=8, depths=(1, 1), num_heads=(1, 2),
        window_size=4, num_classes=3, mlp_ratio=2.0,
    )
    for m in (aspp, head, swin):
        randomise(m)
        m.eval()
    torch.save({k: v.contiguous() for k, v in aspp.state_dict().items()}, OUT / "aspp.pth")
    torch.save({k: v.contiguous() for k, v in head.state_dict().items()}, OUT / "fcn_head.pth")
    save_file({k: v.contiguous() for k, v in swin.state_dict().items()}, str(OUT / "swin.safetensors"))
    x = example_input(8, 6, 6)
    image = example_input(3, 32, 32)
    with torch.no_grad():
        save_file(
            {"aspp": aspp(x), "fcn_head": head(x), "swin": swin(image)},
            str(OUT / "reference.safetensors"),
        )


if __name__ == "__main__":
    main()
