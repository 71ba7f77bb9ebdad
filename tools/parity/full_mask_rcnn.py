"""Full-size Mask R-CNN reference, for the on-demand parity check (nothing here is
committed): torchvision `maskrcnn_resnet50_fpn(weights=None, weights_backbone=None,
num_classes=91)` with random weights, default settings (min_size 800, max_size 1333), two
random images. Writes to OUT_DIR:

- `maskrcnn_resnet50_fpn.weights.pth`: the state dict (`torch.save`);
- `maskrcnn_resnet50_fpn.safetensors`: the eval case, same tensors and params as
  `mask_rcnn.py`'s `small.safetensors`.

    cd tools/parity && python full_mask_rcnn.py OUT_DIR

Note: without pretrained weights torchvision builds this backbone with nn.BatchNorm2d (not
FrozenBatchNorm2d), so the state dict has `num_batches_tracked` entries; in eval mode the
two compute the same thing (eps 1e-5). The COCO checkpoint uses FrozenBatchNorm2d and
torchvision sets its eps to 0.0 when loading it (`overwrite_eps`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torchvision

from common import save_case
from mask_rcnn import calibrate, eval_case, images, model_params, reinit

NAME = "maskrcnn_resnet50_fpn"


def main(out: Path) -> None:
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    torch.manual_seed(0)
    model = torchvision.models.detection.maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=91)
    reinit(model)
    imgs = images(((3, 200, 300), (3, 240, 180)), seed=1)
    calibrate(model, imgs, cls_std=1.5, cls_means=(2.0,))
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, str(out / f"{NAME}.weights.pth"))

    params = model_params(model)
    params.update({"frozen_bn_eps": 1e-5, "norm_layer": "BatchNorm2d",
                   "weights": f"{NAME}.weights.pth"})
    print(f"{NAME} (eval case)")
    tensors, params = eval_case(model, imgs, params)
    save_case(out / f"{NAME}.safetensors", tensors, params)
    for f in sorted(out.glob(f"{NAME}*")):
        print(f"  {f}: {f.stat().st_size / 2**20:.1f} MiB")
    print(f"  {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, "
          f"{time.time() - start:.0f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
