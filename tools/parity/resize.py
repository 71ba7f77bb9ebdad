"""Fixture for zoo-data's antialiased resize (`resize_antialiased`, used by the evaluation
protocols): torchvision's `resize(tensor, size, interpolation, antialias=True)` on float
images, down and up, bilinear and bicubic. Writes `crates/zoo-data/tests/fixtures/resize.json`.

    VENV/bin/python tools/parity/resize.py
"""
import json
from pathlib import Path

import torch
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode

OUT = Path(__file__).resolve().parents[2] / "crates/zoo-data/tests/fixtures/resize.json"


def main() -> None:
    torch.manual_seed(0)
    image = torch.rand(3, 13, 17)
    cases = []
    for size in ([7, 9], [20, 25], [5, 17], [13, 6]):
        for name, mode in (("bilinear", InterpolationMode.BILINEAR), ("bicubic", InterpolationMode.BICUBIC)):
            out = F.resize(image, size, interpolation=mode, antialias=True)
            cases.append({"size": size, "filter": name, "output": [round(v, 7) for v in out.flatten().tolist()]})
    doc = {"input_size": [13, 17], "input": [round(v, 7) for v in image.flatten().tolist()], "cases": cases}
    OUT.write_text(json.dumps(doc))
    print(f"{OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
