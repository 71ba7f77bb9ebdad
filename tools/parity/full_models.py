"""Full-size upstream models with random weights, for the on-demand parity check (nothing
here is committed): torchvision deeplabv3_resnet50 (aux head), smp Unet(resnet34), timm
swin_tiny_patch4_window7_224. Writes each state dict and a reference case to OUT_DIR.

    tools/parity/full_models.sh   # runs this, then the Rust comparison
"""

from __future__ import annotations

import sys
from pathlib import Path

import segmentation_models_pytorch as smp
import timm
import torch
import torchvision
from safetensors.torch import save_file

from common import save_case
from models import randomise


def main(out: Path) -> None:
    torch.set_num_threads(2)
    out.mkdir(parents=True, exist_ok=True)
    models = {
        "deeplabv3_resnet50": (torchvision.models.segmentation.deeplabv3_resnet50(
            weights=None, weights_backbone=None, num_classes=21, aux_loss=True), (1, 3, 256, 256)),
        "unet_resnet34": (smp.Unet("resnet34", encoder_weights=None, classes=2), (1, 3, 256, 256)),
        "swin_tiny_patch4_window7_224": (timm.create_model("swin_tiny_patch4_window7_224", pretrained=False),
                                         (1, 3, 224, 224)),
    }
    for seed, (name, (model, shape)) in enumerate(models.items()):
        torch.manual_seed(seed)
        randomise(model)
        model.eval()
        x = torch.randn(shape)
        with torch.no_grad():
            y = model(x)
        tensors = {"input": x}
        if isinstance(y, dict):
            tensors["output"], tensors["aux"] = y["out"], y["aux"]
        else:
            tensors["output"] = y
        save_case(out / f"{name}.safetensors", tensors, {"weights": f"{name}.weights.pth"})
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        torch.save(state, str(out / f"{name}.weights.pth"))
        save_file(state, str(out / f"{name}.weights.safetensors"))
        print(f"{name}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
