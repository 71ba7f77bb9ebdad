"""PyTorch reference runs of the shapes recipes (not fixtures): the same narrow models, the
same data distribution (a numpy port of `zoo_data::shapes`, not bit-exact: its own random
numbers), the same optimiser/schedule, so that a recipe's reachable figure at a given
budget can be told apart from a training fault in burn-zoo.

    python tools/parity/recipe_probe.py unet --train-len 1800 --epochs 10 --batch 8 --lr 3e-3
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
import timm

from models import LAYOUTS, NarrowResNet, narrow_deeplabv3

MEAN = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
STD = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]


def shapes_sample(rng: np.random.Generator, h: int, w: int, objects=(1, 3), scale=(0.25, 0.6),
                  aspect=(0.35, 0.6)):
    """(image [3,H,W] in [0,1], class mask [H,W], label) — zoo_data::shapes' distribution."""
    a, b = rng.uniform(0.05, 0.45, 3), rng.uniform(0.05, 0.45, 3)
    angle, freq = rng.uniform(0, math.pi), rng.uniform(0.05, 0.3)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    t = 0.5 + 0.5 * np.sin((xs * math.cos(angle) + ys * math.sin(angle)) * freq)
    img = a[:, None, None] * t + b[:, None, None] * (1 - t) + 0.05 * (rng.random((3, h, w)) - 0.5)
    img = np.clip(img, 0, 1).astype(np.float32)
    mask = np.zeros((h, w), np.uint8)
    px, py = xs + 0.5, ys + 0.5
    count = rng.integers(objects[0], objects[1] + 1)
    for _ in range(count):
        cls = 1 + rng.integers(4)
        side = min(h, w)
        size = side * rng.uniform(*scale)
        cx, cy = rng.uniform(size / 2, w - size / 2), rng.uniform(size / 2, h - size / 2)
        if cls == 1:
            inside = (px - cx) ** 2 + (py - cy) ** 2 <= (size / 2) ** 2
        elif cls == 2:
            asp = rng.uniform(0.5, 1.0)
            hw, hh = (size / 2, size * asp / 2) if rng.integers(2) == 0 else (size * asp / 2, size / 2)
            inside = (px >= cx - hw) & (px <= cx + hw) & (py >= cy - hh) & (py <= cy + hh)
        elif cls == 3:
            rot = rng.uniform(0, 2 * math.pi)
            p = [(cx + size / 2 * math.cos(rot + k * 2 * math.pi / 3),
                  cy + size / 2 * math.sin(rot + k * 2 * math.pi / 3)) for k in range(3)]
            def side_(u, v):
                return (v[0] - u[0]) * (py - u[1]) - (v[1] - u[1]) * (px - u[0])
            d = [side_(p[0], p[1]), side_(p[1], p[2]), side_(p[2], p[0])]
            inside = ((d[0] >= 0) & (d[1] >= 0) & (d[2] >= 0)) | ((d[0] <= 0) & (d[1] <= 0) & (d[2] <= 0))
        else:
            ang = rng.uniform(0, math.pi)
            rx, ry = size / 2, size / 2 * rng.uniform(*aspect)
            dx, dy = px - cx, py - cy
            u, v = dx * math.cos(ang) + dy * math.sin(ang), -dx * math.sin(ang) + dy * math.cos(ang)
            inside = (u / rx) ** 2 + (v / ry) ** 2 <= 1
        colour = rng.uniform(0, 1, 3)
        colour[rng.integers(3)] = rng.uniform(0.75, 1.0)
        shade = 0.9 + 0.1 * rng.random((3, h, w))
        img = np.where(inside[None], np.clip(colour[:, None, None] * shade, 0, 1), img)
        mask[inside] = cls
    counts = np.bincount(mask.ravel(), minlength=5)[1:]
    return img.astype(np.float32), mask, int(np.argmax(counts)) + 1


def dataset(n, seed, h, w, **kw):
    rng = np.random.default_rng(seed)
    xs, ms, ls = zip(*(shapes_sample(rng, h, w, **kw) for _ in range(n)))
    x = (np.stack(xs) - MEAN) / STD
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(np.stack(ms).astype(np.int64)), torch.tensor(ls)


class ConvBnRelu(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Unet(nn.Module):
    """smp Unet over the narrow ResNet encoder (nearest ×2, concat skip, two conv-BN-ReLU)."""

    def __init__(self, depth, base, decoder, classes):
        super().__init__()
        block, layers = LAYOUTS[depth]
        self.enc = NarrowResNet(block, layers, base)
        e = block.expansion
        skips = [base * 4 * e, base * 2 * e, base * e, base, 0]
        cin = base * 8 * e
        self.blocks = nn.ModuleList()
        for skip, cout in zip(skips, decoder):
            self.blocks.append(nn.Sequential(ConvBnRelu(cin + skip, cout), ConvBnRelu(cout, cout)))
            cin = cout
        self.head = nn.Conv2d(cin, classes, 3, padding=1)

    def forward(self, x):
        r = self.enc
        s0 = r.relu(r.bn1(r.conv1(x)))
        c2 = r.layer1(r.maxpool(s0))
        c3 = r.layer2(c2)
        c4 = r.layer3(c3)
        c5 = r.layer4(c4)
        y = c5
        for blk, skip in zip(self.blocks, [c4, c3, c2, s0, None]):
            y = F.interpolate(y, scale_factor=2, mode="nearest")
            if skip is not None:
                y = torch.cat([y, skip], 1)
            y = blk(y)
        return self.head(y)


def miou(pred, target, classes):
    ious = []
    for c in range(classes):
        inter = ((pred == c) & (target == c)).sum().item()
        union = ((pred == c) | (target == c)).sum().item()
        if union:
            ious.append(inter / union)
    return float(np.mean(ious)), ious


def build(args, classes):
    if args.model == "unet":
        return Unet(args.depth, args.base, args.decoder, classes)
    if args.model == "deeplabv3":
        return narrow_deeplabv3(args.depth, args.base, args.head, args.rates, True, classes)
    return timm.models.swin_transformer.SwinTransformer(
        img_size=args.size, patch_size=4, embed_dim=args.embed, depths=args.depths,
        num_heads=args.heads, window_size=args.window, num_classes=classes,
        drop_path_rate=args.drop_path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model", choices=["unet", "deeplabv3", "swin"])
    p.add_argument("--depth", type=int, default=18)
    p.add_argument("--base", type=int, default=8)
    p.add_argument("--decoder", type=int, nargs=5, default=[32, 16, 16, 8, 8])
    p.add_argument("--head", type=int, default=32)
    p.add_argument("--rates", type=int, nargs=3, default=[2, 4, 6])
    p.add_argument("--aux-weight", type=float, default=0.4)
    p.add_argument("--embed", type=int, default=32)
    p.add_argument("--depths", type=int, nargs="+", default=[2, 2, 2])
    p.add_argument("--heads", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--window", type=int, default=4)
    p.add_argument("--drop-path", type=float, default=0.1)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--train-len", type=int, default=1800)
    p.add_argument("--val-len", type=int, default=100)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--wd", type=float, default=1e-4)
    p.add_argument("--clip", type=float, default=0.0)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--fresh", action="store_true", help="new training images every epoch")
    p.add_argument("--objects", type=int, nargs=2, default=[1, 3])
    p.add_argument("--scale", type=float, nargs=2, default=[0.25, 0.6])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--init", help="start from this state dict (e.g. burn-zoo's own initial weights)")
    p.add_argument("--upstream-init", action="store_true",
                   help="draw the weights as the upstream builders do from scratch (what burn-zoo draws):"
                   " torchvision's ResNet convs Kaiming-normal over fan-out; U-Net: smp's decoder"
                   " Kaiming-uniform (ReLU gain, bias 0) and head Xavier-uniform (bias 0). Without it the"
                   " narrow classes keep PyTorch's per-layer defaults.")
    p.add_argument("--data", help="read burn-zoo's own shapes samples from this folder (written by"
                   " a dump: {train,val}_x.f32 [N,3,S,S], {train,val}_m.u8 [N,S,S]) instead of the port")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    seg = args.model != "swin"
    classes = 5 if seg else 4
    kw = dict(objects=tuple(args.objects), scale=tuple(args.scale))
    if args.data:
        def dumped(name, start, n):
            s = args.size
            x = np.fromfile(f"{args.data}/{name}_x.f32", np.float32, n * 3 * s * s, offset=start * 3 * s * s * 4)
            m = np.fromfile(f"{args.data}/{name}_m.u8", np.uint8, n * s * s, offset=start * s * s)
            x = (x.reshape(n, 3, s, s) - MEAN) / STD
            m = torch.from_numpy(m.reshape(n, s, s).astype(np.int64))
            return torch.from_numpy(x.astype(np.float32)), m, torch.ones(n, dtype=torch.int64)
        data = lambda n, epoch, val: dumped("val" if val else "train", 0 if val else epoch * n, n)
    else:
        data = lambda n, epoch, val: dataset(n, 10_000 + args.seed if val else args.seed + 100 * epoch,
                                             args.size, args.size, **kw)
    xv, mv, lv = data(args.val_len, 0, True)
    model = build(args, classes)
    if args.upstream_init:
        encoder = model.enc if args.model == "unet" else getattr(model, "backbone", None)
        for m in encoder.modules() if encoder is not None else []:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if args.model == "unet":
            for m in model.blocks.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.xavier_uniform_(model.head.weight)
            nn.init.zeros_(model.head.bias)
    if args.init:
        from safetensors.torch import load_file
        model.load_state_dict(load_file(args.init))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd)
    steps_per_epoch = args.train_len // args.batch
    total = steps_per_epoch * args.epochs

    def factor(s):
        if s < args.warmup:
            return (s + 1) / args.warmup
        return 0.5 * (1 + math.cos(math.pi * min(1, (s - args.warmup) / max(1, total - args.warmup))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)

    def loss_of(x, m, l):
        out = model(x)
        if not seg:
            return F.cross_entropy(out, l - 1)
        if isinstance(out, dict):
            return F.cross_entropy(out["out"], m) + args.aux_weight * F.cross_entropy(out["aux"], m)
        return F.cross_entropy(out, m)

    def predict(x):
        out = model(x)
        return (out["out"] if isinstance(out, dict) else out).argmax(1)

    xt, mt, lt = data(args.train_len, 0, False)
    start = time.time()
    for epoch in range(args.epochs):
        if args.fresh and epoch:
            xt, mt, lt = data(args.train_len, epoch, False)
        model.train()
        perm = torch.randperm(args.train_len)
        losses = []
        t0 = time.time()
        for i in range(steps_per_epoch):
            idx = perm[i * args.batch:(i + 1) * args.batch]
            x, m = xt[idx], mt[idx]
            flip = torch.rand(len(idx)) < 0.5
            x[flip], m[flip] = x[flip].flip(-1), m[flip].flip(-1)
            loss = loss_of(x, m, lt[idx])
            opt.zero_grad()
            loss.backward()
            if args.clip:
                nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            sched.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            pred = torch.cat([predict(xv[i:i + 50]) for i in range(0, len(xv), 50)])
        if seg:
            m, per = miou(pred, mv, 5)
        else:
            m = (pred == lv - 1).float().mean().item()
            per = [((pred == c) & (lv - 1 == c)).sum().item() / max(1, (lv - 1 == c).sum().item()) for c in range(4)]
        print(f"epoch {epoch + 1}: loss {np.mean(losses):.4f} {'mIoU' if seg else 'acc'} {m:.3f} "
              f"[{' '.join(f'{v:.2f}' for v in per)}] {time.time() - t0:.1f}s", flush=True)
    print(f"total {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
