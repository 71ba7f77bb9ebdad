"""A VOC-layout folder of synthetic JPEG images and palette-PNG masks, for timing the data
loader on on-disk data (`zoo train configs/unet_voc.toml data.root=DIR ...`).

    python tools/bench/synth_voc.py OUT_DIR [--count 96] [--size 512]

Each image: a noisy gradient background with 1-4 filled ellipses / rectangles of random VOC
classes; the mask holds their class ids (0 = background) and a 255 border, as VOC's.
"""
import argparse
import os

import numpy as np
from PIL import Image, ImageDraw


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--count", type=int, default=96)
    p.add_argument("--size", type=int, default=512)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    for sub in ["JPEGImages", "SegmentationClass", "ImageSets/Segmentation"]:
        os.makedirs(os.path.join(a.out, sub), exist_ok=True)
    palette = [v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)]
    ids = []
    for n in range(a.count):
        s = a.size
        yy, xx = np.mgrid[0:s, 0:s]
        base = (xx * rng.uniform(0.2, 0.6) + yy * rng.uniform(0.2, 0.6)) % 256
        img = np.stack([base, base[::-1], base.T], -1) + rng.normal(0, 12, (s, s, 3))
        image = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
        mask = Image.new("L", (s, s), 0)
        draw, mdraw = ImageDraw.Draw(image), ImageDraw.Draw(mask)
        for _ in range(rng.integers(1, 5)):
            c = int(rng.integers(1, 21))
            x0, y0 = rng.integers(0, s // 2, 2)
            w, h = rng.integers(s // 8, s // 2, 2)
            box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            mshape = mdraw.ellipse if shape == draw.ellipse else mdraw.rectangle
            shape(box, fill=colour)
            mshape(box, fill=255)
            inner = [box[0] + 2, box[1] + 2, box[2] - 2, box[3] - 2]
            mshape(inner, fill=c)
        name = f"{n:05d}"
        ids.append(name)
        image.save(os.path.join(a.out, "JPEGImages", name + ".jpg"), quality=90)
        mask = Image.frombytes("P", mask.size, mask.tobytes())  # the indices as they are
        mask.putpalette(palette)
        mask.save(os.path.join(a.out, "SegmentationClass", name + ".png"))
    split = len(ids) * 3 // 4
    for name, part in [("train", ids[:split]), ("val", ids[split:])]:
        with open(os.path.join(a.out, "ImageSets/Segmentation", name + ".txt"), "w") as f:
            f.write("\n".join(part) + "\n")


if __name__ == "__main__":
    main()
