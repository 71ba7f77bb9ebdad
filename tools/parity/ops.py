"""Reference fixtures for the functional operators of `zoo_nn::ops`.

Writes `crates/zoo-nn/tests/fixtures/<op>/<case>.safetensors` (see common.save_case for the
format). Every case is seeded, so re-running reproduces the same bytes for the same
torch / torchvision versions. Run with the venv described in tools/parity/README.md:

    python tools/parity/ops.py

Tensor names: the op's inputs by argument name (`input`, `rois`, `offset`, ...), `output`,
`grad_output` (random upstream gradient) and `grad_<arg>` for each differentiable input, i.e.
the gradients of `sum(output * grad_output)`. Everything is computed in float32 on CPU, the
same precision the Rust ops run in.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import boxes as box_ops

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, forward_backward, save_case  # noqa: E402

FIXTURES = REPO_ROOT / "crates" / "zoo-nn" / "tests" / "fixtures"

written: list[Path] = []
notes: list[str] = []


def save(op: str, case: str, tensors: dict, params: dict) -> None:
    written.append(save_case(FIXTURES / op / f"{case}.safetensors", tensors, params))


def note(msg: str) -> None:
    notes.append(msg)
    print("  note:", msg)


def seed_of(op: str, case: str) -> int:
    """A stable per-case seed (independent of generation order)."""
    h = 0
    for ch in f"{op}/{case}":
        h = (h * 131 + ord(ch)) % 1_000_003
    return h


# --------------------------------------------------------------------------------------
# Sample-position helpers (shared by the roi_align-family checks and deform_roi_pool).
# --------------------------------------------------------------------------------------

# Base rois in *feature* coordinates for a 12 x 10 (H x W) map, (batch, x1, y1, x2, y2).
# Decimal, non-round coordinates so no sample lands on a discontinuity (-1, H, W).
BASE_ROIS = [
    [0, 1.3, 2.1, 7.6, 9.4],  # inside
    [1, 0.4, 0.7, 9.2, 11.3],  # almost the whole map
    [1, -3.3, -2.6, 4.1, 5.2],  # negative coordinates, partly outside
    [0, 6.2, 8.7, 14.9, 17.3],  # partly outside bottom-right
    [0, 12.7, 14.1, 18.3, 20.6],  # fully outside
    [1, 4.35, 5.62, 4.81, 6.04],  # tiny, smaller than a pixel
    [0, 2.55, 0.15, 8.85, 3.35],  # wide and flat
]


def image_rois(feature_rois, spatial_scale: float) -> torch.Tensor:
    """Feature-coordinate rois -> image-coordinate rois (what the ops take)."""
    r = torch.tensor(feature_rois, dtype=torch.float64)
    r[:, 1:] /= spatial_scale
    return r.to(torch.float32)


def sample_positions(rois, spatial_scale, pooled, sampling_ratio, aligned, offset=None, gamma=0.0):
    """Yields (k, ph, pw, ys, xs) of the bilinear sample points of roi_align-style pooling
    (roi_align / ps_roi_align / mmcv deform_roi_pool), in float64."""
    ph_n, pw_n = pooled
    for k, roi in enumerate(rois.to(torch.float64).tolist()):
        off = 0.5 if aligned else 0.0
        x1, y1, x2, y2 = (v * spatial_scale - off for v in roi[1:])
        rw, rh = x2 - x1, y2 - y1
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / ph_n, rw / pw_n
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(rh / ph_n)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(rw / pw_n)
        for ph in range(ph_n):
            for pw in range(pw_n):
                sx, sy = x1, y1
                if offset is not None:
                    sx += gamma * rw * float(offset[k, 0, ph, pw])
                    sy += gamma * rh * float(offset[k, 1, ph, pw])
                ys = [sy + ph * bh + (iy + 0.5) * bh / gh for iy in range(gh)]
                xs = [sx + pw * bw + (ix + 0.5) * bw / gw for ix in range(gw)]
                yield k, ph, pw, ys, xs


def border_margin(rois, spatial_scale, pooled, sampling_ratio, aligned, h, w, **kw):
    """Smallest distance of a sample to a border discontinuity (-1, H, W)."""
    worst = float("inf")
    for _, _, _, ys, xs in sample_positions(rois, spatial_scale, pooled, sampling_ratio, aligned, **kw):
        for y in ys:
            worst = min(worst, abs(y + 1), abs(y - h))
        for x in xs:
            worst = min(worst, abs(x + 1), abs(x - w))
    return worst


def assert_away_from_borders(*args, **kw):
    """The bilinear border rule jumps at -1 and at H / W; make sure no sample sits there,
    so float rounding differences cannot flip a sample in or out."""
    worst = border_margin(*args, **kw)
    assert worst > 1e-3, f"a sample lies {worst} from a border discontinuity"


def assert_away_from_half(values, what):
    """roi_pool-style ops round coordinates; keep them away from .5 ties."""
    for v in values:
        frac = v - math.floor(v)
        assert abs(frac - 0.5) > 1e-3, f"{what}: {v} is too close to a rounding tie"


# --------------------------------------------------------------------------------------
# roi_align
# --------------------------------------------------------------------------------------


def gen_roi_align():
    op = "roi_align"
    cases = [
        # name, output_size, spatial_scale, sampling_ratio, aligned, input shape
        ("aligned_sr2_scale1", [3, 3], 1.0, 2, True, (2, 8, 12, 10)),
        ("unaligned_sr2_scale1", [2, 2], 1.0, 2, False, (2, 8, 12, 10)),
        ("unaligned_adaptive_m1_scale05", [3, 5], 0.5, -1, False, (2, 8, 12, 10)),
        ("aligned_adaptive_0_scale025", [2, 4], 0.25, 0, True, (2, 6, 12, 10)),
    ]
    for name, out_size, scale, sr, aligned, shape in cases:
        torch.manual_seed(seed_of(op, name))
        x = torch.randn(shape)
        rois = image_rois(BASE_ROIS, scale)
        assert_away_from_borders(rois, scale, out_size, sr, aligned, shape[2], shape[3])

        def fn(input, rois=rois):
            return torchvision.ops.roi_align(input, rois, out_size, scale, sr, aligned)

        out, g, grads = forward_backward(fn, {"input": x}, seed_of(op, name) + 1)
        save(op, name, {"input": x, "rois": rois, "output": out, "grad_output": g, **grads},
             {"output_size": out_size, "spatial_scale": scale, "sampling_ratio": sr, "aligned": aligned})


# --------------------------------------------------------------------------------------
# roi_pool
# --------------------------------------------------------------------------------------


def gen_roi_pool():
    op = "roi_pool"
    cases = [
        ("scale1", [2, 2], 1.0, (2, 6, 12, 10)),
        ("scale05", [3, 4], 0.5, (2, 6, 12, 10)),
        ("scale025", [2, 3], 0.25, (2, 5, 12, 10)),
    ]
    for name, out_size, scale, shape in cases:
        torch.manual_seed(seed_of(op, name))
        x = torch.rand(shape)  # continuous values: no ties in the max
        rois = image_rois(BASE_ROIS, scale)
        assert_away_from_half((rois[:, 1:].double() * scale).flatten().tolist(), op)

        def fn(input, rois=rois):
            return torchvision.ops.roi_pool(input, rois, out_size, scale)

        out, g, grads = forward_backward(fn, {"input": x}, seed_of(op, name) + 1)
        save(op, name, {"input": x, "rois": rois, "output": out, "grad_output": g, **grads},
             {"output_size": out_size, "spatial_scale": scale})


# --------------------------------------------------------------------------------------
# ps_roi_align
# --------------------------------------------------------------------------------------


def gen_ps_roi_align():
    op = "ps_roi_align"
    cases = [
        # name, output_size, spatial_scale, sampling_ratio, c_out
        ("sr2_scale1", [2, 2], 1.0, 2, 2),
        ("adaptive_m1_scale05", [3, 2], 0.5, -1, 2),
        ("adaptive_0_scale025", [2, 3], 0.25, 0, 2),
    ]
    for name, out_size, scale, sr, c_out in cases:
        torch.manual_seed(seed_of(op, name))
        c = c_out * out_size[0] * out_size[1]
        x = torch.randn(2, c, 12, 10)
        rois = image_rois(BASE_ROIS, scale)
        # every roi has x2 > x1 and y2 > y1, so adaptive grids are never 0 (torchvision
        # divides by the grid size there).
        assert bool(((rois[:, 3] > rois[:, 1]) & (rois[:, 4] > rois[:, 2])).all())
        assert_away_from_borders(rois, scale, out_size, sr, True, 12, 10)

        def fn(input, rois=rois):
            return torchvision.ops.ps_roi_align(input, rois, out_size, scale, sr)

        out, g, grads = forward_backward(fn, {"input": x}, seed_of(op, name) + 1)
        save(op, name, {"input": x, "rois": rois, "output": out, "grad_output": g, **grads},
             {"output_size": out_size, "spatial_scale": scale, "sampling_ratio": sr})


# --------------------------------------------------------------------------------------
# ps_roi_pool
# --------------------------------------------------------------------------------------


def _c_round(v: float) -> int:
    """C's round(): half away from zero."""
    return int(math.floor(v + 0.5)) if v >= 0 else -int(math.floor(-v + 0.5))


def ps_roi_pool_bins(rois, scale, pooled, h, w):
    """Per (roi, ph, pw): the forward and the backward bin [hs, he) x [ws, we) exactly as
    torchvision's CPU kernels compute them (float32 arithmetic, forward clipped to H-1 / W-1,
    backward clipped to H / W)."""
    f32 = lambda v: float(torch.tensor(v, dtype=torch.float32))  # noqa: E731
    ph_n, pw_n = pooled
    out = []
    for k, roi in enumerate(rois.tolist()):
        s = f32(scale)
        sw, sh, ew, eh = (_c_round(f32(f32(v) * s)) for v in roi[1:])
        rw, rh = max(ew - sw, 1), max(eh - sh, 1)
        bh, bw = f32(rh / ph_n), f32(rw / pw_n)
        for ph in range(ph_n):
            for pw in range(pw_n):
                hs0 = math.floor(f32(ph * bh))
                ws0 = math.floor(f32(pw * bw))
                he0 = math.ceil(f32((ph + 1) * bh))
                we0 = math.ceil(f32((pw + 1) * bw))

                def clip(a, lim):
                    return min(max(a, 0), lim)

                fwd = (clip(hs0 + sh, h - 1), clip(he0 + sh, h - 1), clip(ws0 + sw, w - 1), clip(we0 + sw, w - 1))
                bwd = (clip(hs0 + sh, h), clip(he0 + sh, h), clip(ws0 + sw, w), clip(we0 + sw, w))
                out.append((k, ph, pw, fwd, bwd))
    return out


def ps_roi_pool_port(input, rois, scale, pooled):
    """Pure-PyTorch ps_roi_pool forward with torchvision's forward bins (autograd gives the
    gradient that is consistent with the forward)."""
    n, c, h, w = input.shape
    ph_n, pw_n = pooled
    c_out = c // (ph_n * pw_n)
    out = input.new_zeros(rois.shape[0], c_out, ph_n, pw_n)
    for k, ph, pw, (hs, he, ws, we), _ in ps_roi_pool_bins(rois, scale, pooled, h, w):
        if he <= hs or we <= ws:
            continue
        b = int(rois[k, 0])
        for co in range(c_out):
            ci = (co * ph_n + ph) * pw_n + pw
            out[k, co, ph, pw] = input[b, ci, hs:he, ws:we].mean()
    return out


def gen_ps_roi_pool():
    op = "ps_roi_pool"
    interior = [  # feature coords on a 10 x 9 map; every bin ends before the last row/column
        [0, 0.3, 0.2, 4.7, 5.8],
        [1, 2.2, 1.6, 7.3, 8.1],
        [0, -2.3, -1.8, 3.2, 2.9],  # negative start, clipped at 0
        [1, 5.4, 6.2, 5.7, 6.4],  # tiny, forced to 1x1
        [1, 1.2, 3.4, 6.6, 4.2],
    ]
    cases = [
        # name, output_size, spatial_scale, rois (feature coords), input shape
        ("interior_scale1", [2, 2], 1.0, interior, (2, 8, 10, 9)),
        ("edges_scale05", [3, 2], 0.5, BASE_ROIS, (2, 12, 12, 10)),
        ("edges_scale025", [2, 3], 0.25, BASE_ROIS, (2, 12, 12, 10)),
    ]
    for name, out_size, scale, feat_rois, shape in cases:
        torch.manual_seed(seed_of(op, name))
        x = torch.randn(shape)
        rois = image_rois(feat_rois, scale)
        assert_away_from_half((rois[:, 1:].double() * scale).flatten().tolist(), op)
        h, w = shape[2], shape[3]
        bins = ps_roi_pool_bins(rois, scale, out_size, h, w)
        consistent = all(
            f == b or ((f[1] <= f[0] or f[3] <= f[2]) and (b[1] <= b[0] or b[3] <= b[2]))
            for *_, f, b in bins
        )

        def fn(input, rois=rois):
            return torchvision.ops.ps_roi_pool(input, rois, out_size, scale)

        out, g, grads = forward_backward(fn, {"input": x}, seed_of(op, name) + 1)
        # Cross-check: the port reproduces the forward, and its autograd gradient equals
        # torchvision's exactly when the bins agree.
        p_out, _, p_grads = forward_backward(
            lambda input: ps_roi_pool_port(input, rois, scale, out_size), {"input": x}, seed_of(op, name) + 1
        )
        assert torch.allclose(p_out, out, atol=1e-6), f"{op}/{name}: port forward differs"
        gdiff = (p_grads["grad_input"] - grads["grad_input"]).abs().max().item()
        if consistent:
            assert gdiff < 1e-5, f"{op}/{name}: consistent case but grads differ by {gdiff}"
        note(f"{op}/{name}: grad_consistent={consistent}; torchvision grad vs forward-consistent grad max diff {gdiff:.3g}")
        save(op, name, {"input": x, "rois": rois, "output": out, "grad_output": g, **grads},
             {"output_size": out_size, "spatial_scale": scale, "grad_consistent": consistent})


# --------------------------------------------------------------------------------------
# multi_scale_roi_align
# --------------------------------------------------------------------------------------


def gen_multi_scale_roi_align():
    op = "multi_scale_roi_align"
    cases = [
        dict(
            name="four_levels_exact",
            image=[64, 80],
            sizes=[(16, 20), (8, 10), (4, 5), (2, 3)],  # strides 4..32 (80/32 = 2.5 -> 3)
            output_size=[3, 3],
            sampling_ratio=2,
            boxes=[
                [
                    [10.3, 12.7, 13.1, 15.2],  # tiny -> level below k_min, clamped to 2
                    [20.4, 8.6, 61.7, 50.3],  # ~41 px -> level 2
                    [-30.2, -20.7, 95.6, 110.4],  # ~128 px -> level 3
                    [-100.3, -80.6, 150.2, 170.9],  # ~250 px -> level 4
                    [-300.5, -250.2, 380.7, 420.1],  # ~675 px -> level 5
                ],
                [
                    [5.2, 3.1, 70.4, 60.8],  # ~61 px -> level 2
                    [-1000.4, -900.7, 1100.3, 1200.6],  # huge -> level 7, clamped to 5
                    [30.6, 20.2, 33.9, 24.5],  # tiny
                ],
            ],
        ),
        dict(
            name="four_levels_inexact",
            image=[72, 100],
            sizes=[(18, 25), (9, 13), (5, 7), (3, 4)],  # 100/8 = 12.5, 72/16 = 4.5, ...
            output_size=[3, 4],
            sampling_ratio=2,
            boxes=[
                [
                    [3.3, 5.9, 40.2, 30.4],  # ~31 px -> 2
                    [-20.6, -10.3, 110.8, 90.2],  # ~115 px -> 3
                    [12.4, 30.7, 14.2, 33.1],  # tiny -> 2
                    [-150.2, -120.9, 210.6, 190.4],  # ~335 px -> 4
                ],
                [
                    [-400.3, -380.6, 500.2, 450.7],  # ~865 px -> 5
                    [40.1, 22.8, 95.3, 70.6],  # ~51 px -> 2
                    [-60.7, -50.2, 150.4, 130.9],  # ~195 px -> 3
                    [-2000.3, -1800.1, 2100.9, 2300.2],  # huge -> clamped to 5
                    [60.3, 2.2, 98.8, 69.4],  # ~51 px -> 2
                ],
            ],
        ),
        dict(
            name="three_levels_adaptive",
            image=[48, 64],
            sizes=[(12, 16), (6, 8), (3, 4)],  # strides 4, 8, 16
            output_size=[2, 2],
            sampling_ratio=0,
            boxes=[
                [
                    [4.6, 6.3, 30.2, 40.7],  # ~30 px -> 2
                    [-60.3, -40.6, 100.2, 90.8],  # ~145 px -> 3
                ],
                [
                    [-300.4, -200.7, 250.3, 260.2],  # ~500 px -> 5, clamped to 4
                    [20.2, 10.4, 21.1, 11.3],  # tiny
                    [-10.6, -20.3, 60.2, 55.7],  # ~73 px -> 2
                ],
            ],
        ),
    ]
    for cfg in cases:
        name = cfg["name"]
        torch.manual_seed(seed_of(op, name))
        c = 3
        feats = {f"feature_{i}": torch.randn(2, c, *s) for i, s in enumerate(cfg["sizes"])}
        boxes = [torch.tensor(b, dtype=torch.float32) for b in cfg["boxes"]]
        names = list(feats)
        pooler = torchvision.ops.MultiScaleRoIAlign(names, cfg["output_size"], cfg["sampling_ratio"])
        image_shapes = [tuple(cfg["image"])] * 2

        def fn(**features):
            return pooler(features, boxes, image_shapes)

        out, g, grads = forward_backward(fn, feats, seed_of(op, name) + 1)
        levels = pooler.map_levels(boxes).tolist()
        used = sorted(set(levels))
        note(f"{op}/{name}: scales {pooler.scales}, level per box {levels} (levels used {used})")
        assert len(used) == len(cfg["sizes"]), f"{op}/{name}: not every level is used"
        # Cross-check: per-box roi_align on the box's level with the inferred scale.
        rois = torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b], 1) for i, b in enumerate(boxes)])
        ref = torch.stack([
            torchvision.ops.roi_align(feats[names[lv]], rois[j : j + 1], cfg["output_size"],
                                      pooler.scales[lv], cfg["sampling_ratio"], False)[0]
            for j, lv in enumerate(levels)
        ])
        assert torch.allclose(ref, out, atol=1e-6)
        tensors = {**feats, **{f"boxes_{i}": b for i, b in enumerate(boxes)}, "output": out, "grad_output": g, **grads}
        save(op, name, tensors, {
            "output_size": cfg["output_size"],
            "sampling_ratio": cfg["sampling_ratio"],
            "image_size": cfg["image"],
            "num_levels": len(cfg["sizes"]),
            "num_images": 2,
            "canonical_scale": 224,
            "canonical_level": 4,
        })


# --------------------------------------------------------------------------------------
# deform_roi_pool (mmcv semantics, pure PyTorch)
# --------------------------------------------------------------------------------------


def deform_roi_pool_port(input, rois, offset, pooled, spatial_scale, sampling_ratio, gamma):
    """mmcv `deform_roi_pool` forward (deform_roi_pool_cuda_kernel.cuh), vectorised per roi.

    roi_start = roi * scale - 0.5 (no size clamp), bin = size / pooled, grid = sampling_ratio
    or ceil(size / pooled); an offset shifts each bin's start by gamma * roi_size * offset;
    bilinear sampling with roi_align's border rule; mean over max(grid_h * grid_w, 1).
    Autograd through it gives the gradients w.r.t. input and offset.
    """
    n, c, h, w = input.shape
    ph_n, pw_n = pooled
    outs = []
    for k in range(rois.shape[0]):
        b = int(rois[k, 0])
        x1 = rois[k, 1] * spatial_scale - 0.5
        y1 = rois[k, 2] * spatial_scale - 0.5
        x2 = rois[k, 3] * spatial_scale - 0.5
        y2 = rois[k, 4] * spatial_scale - 0.5
        rw, rh = x2 - x1, y2 - y1
        bw, bh = rw / pw_n, rh / ph_n
        gh = sampling_ratio if sampling_ratio > 0 else int(math.ceil(float(rh) / ph_n))
        gw = sampling_ratio if sampling_ratio > 0 else int(math.ceil(float(rw) / pw_n))
        count = max(gh * gw, 1)
        if gh <= 0 or gw <= 0:
            outs.append(input.new_zeros(c, ph_n, pw_n))
            continue
        ph = torch.arange(ph_n, dtype=input.dtype).view(ph_n, 1, 1, 1)
        pw = torch.arange(pw_n, dtype=input.dtype).view(1, pw_n, 1, 1)
        iy = torch.arange(gh, dtype=input.dtype).view(1, 1, gh, 1)
        ix = torch.arange(gw, dtype=input.dtype).view(1, 1, 1, gw)
        sy = y1.expand(ph_n, pw_n)
        sx = x1.expand(ph_n, pw_n)
        if offset is not None:
            sx = sx + gamma * rw * offset[k, 0]
            sy = sy + gamma * rh * offset[k, 1]
        sy = sy.view(ph_n, pw_n, 1, 1)
        sx = sx.view(ph_n, pw_n, 1, 1)
        y = (sy + ph * bh + (iy + 0.5) * bh / gh).expand(ph_n, pw_n, gh, gw)
        x = (sx + pw * bw + (ix + 0.5) * bw / gw).expand(ph_n, pw_n, gh, gw)
        valid = ((y >= -1.0) & (y <= h) & (x >= -1.0) & (x <= w)).to(input.dtype)
        y = y.clamp(0, h - 1)
        x = x.clamp(0, w - 1)
        y_low = y.detach().floor()
        x_low = x.detach().floor()
        y_high = (y_low + 1).clamp(max=h - 1)
        x_high = (x_low + 1).clamp(max=w - 1)
        ly, lx = y - y_low, x - x_low
        hy, hx = 1 - ly, 1 - lx
        plane = input[b].reshape(c, h * w)

        def at(yy, xx):
            idx = (yy * w + xx).long().flatten()
            return plane[:, idx].view(c, ph_n, pw_n, gh, gw)

        val = (hy * hx) * at(y_low, x_low) + (hy * lx) * at(y_low, x_high) \
            + (ly * hx) * at(y_high, x_low) + (ly * lx) * at(y_high, x_high)
        val = val * valid
        outs.append(val.sum(dim=(3, 4)) / count)
    return torch.stack(outs) if outs else input.new_zeros(0, c, ph_n, pw_n)


def mmcv_grad_offset(input, rois, offset, grad_output, pooled, spatial_scale, sampling_ratio, gamma):
    """grad_offset exactly as mmcv's CUDA backward computes it (scalar loops, diagnostics
    only): it uses the *unclamped* sample coordinate in the interpolation-derivative
    weights, so it differs from the true derivative of the forward in the border bands."""
    n, c, h, w = input.shape
    ph_n, pw_n = pooled
    g_off = torch.zeros_like(offset, dtype=torch.float64)
    inp = input.double()
    for k, ph, pw, ys, xs in sample_positions(rois, spatial_scale, pooled, sampling_ratio, True, offset=offset, gamma=gamma):
        b = int(rois[k, 0])
        x1, y1, x2, y2 = (float(v) * spatial_scale - 0.5 for v in rois[k, 1:])
        rw, rh = x2 - x1, y2 - y1
        count = len(ys) * len(xs)
        for y in ys:
            for x in xs:
                if y < -1.0 or y > h or x < -1.0 or x > w:
                    continue
                yc, xc = max(y, 0.0), max(x, 0.0)
                yl, xl = int(yc), int(xc)
                if yl >= h - 1:
                    yl = yh = h - 1
                else:
                    yh = yl + 1
                if xl >= w - 1:
                    xl = xh = w - 1
                else:
                    xh = xl + 1
                for ch in range(c):
                    go = float(grad_output[k, ch, ph, pw]) / count
                    i00, i10 = inp[b, ch, yl, xl], inp[b, ch, yl, xh]
                    i01, i11 = inp[b, ch, yh, xl], inp[b, ch, yh, xh]
                    ogx = gamma * rw * go * (i11 * (y - yl) + i10 * (yh - y) + i01 * (yl - y) + i00 * (y - yh))
                    ogy = gamma * rh * go * (i11 * (x - xl) + i01 * (xh - x) + i10 * (xl - x) + i00 * (x - xh))
                    g_off[k, 0, ph, pw] += ogx
                    g_off[k, 1, ph, pw] += ogy
    return g_off


def gen_deform_roi_pool():
    op = "deform_roi_pool"
    cases = [
        # name, output_size, spatial_scale, sampling_ratio, gamma, has_offset
        ("no_offset_sr2", [3, 3], 1.0, 2, 0.1, False),
        ("offset_sr2_scale05", [3, 4], 0.5, 2, 0.1, True),
        ("offset_adaptive_scale025", [2, 3], 0.25, 0, 0.1, True),
    ]
    for name, out_size, scale, sr, gamma, has_offset in cases:
        torch.manual_seed(seed_of(op, name))
        x = torch.randn(2, 6, 12, 10)
        rois = image_rois(BASE_ROIS, scale)
        assert_away_from_borders(rois, scale, out_size, sr, True, 12, 10)
        offset = None
        if has_offset:
            # redraw until no shifted sample sits within 1e-3 of a border discontinuity
            for _ in range(50):
                offset = 0.1 * torch.randn(rois.shape[0], 2, *out_size)
                if border_margin(rois, scale, out_size, sr, True, 12, 10, offset=offset, gamma=gamma) > 1e-3:
                    break
            assert_away_from_borders(rois, scale, out_size, sr, True, 12, 10, offset=offset, gamma=gamma)

        # Cross-check: without an offset (and with a zero offset) this is roi_align(aligned=True).
        ref = torchvision.ops.roi_align(x, rois, out_size, scale, sr, True)
        for off in (None, torch.zeros(rois.shape[0], 2, *out_size)):
            port = deform_roi_pool_port(x, rois, off, out_size, scale, sr, gamma)
            err = (port - ref).abs().max().item()
            assert err < 1e-5, f"{op}/{name}: port vs roi_align differs by {err}"
        ref_g = forward_backward(lambda input: torchvision.ops.roi_align(input, rois, out_size, scale, sr, True),
                                 {"input": x}, seed_of(op, name) + 1)[2]["grad_input"]
        port_g = forward_backward(lambda input: deform_roi_pool_port(input, rois, None, out_size, scale, sr, gamma),
                                  {"input": x}, seed_of(op, name) + 1)[2]["grad_input"]
        gerr = (port_g - ref_g).abs().max().item()
        assert gerr < 1e-5, f"{op}/{name}: port grad vs roi_align grad differs by {gerr}"
        note(f"{op}/{name}: offset-free port == roi_align(aligned=True): fwd max diff {err:.2g}, grad {gerr:.2g}")

        diff = {"input": x}
        if has_offset:
            diff["offset"] = offset

        def fn(input, offset=None, rois=rois):
            return deform_roi_pool_port(input, rois, offset, out_size, scale, sr, gamma)

        out, g, grads = forward_backward(fn, diff, seed_of(op, name) + 1)
        tensors = {"input": x, "rois": rois}
        if has_offset:
            tensors["offset"] = offset
            mm = mmcv_grad_offset(x, rois, offset, g, out_size, scale, sr, gamma)
            d = (mm - grads["grad_offset"].double()).abs()
            note(f"{op}/{name}: autograd grad_offset vs mmcv-CUDA-formula grad_offset: max diff {d.max().item():.3g}, "
                 f"{int((d > 1e-4).sum())}/{d.numel()} entries differ (> 1e-4; border bands)")
        tensors.update({"output": out, "grad_output": g, **grads})
        save(op, name, tensors, {"output_size": out_size, "spatial_scale": scale, "sampling_ratio": sr,
                                 "gamma": gamma, "has_offset": has_offset})


# --------------------------------------------------------------------------------------
# max_unpool2d, max_pool2d_with_indices, pixel_shuffle
# --------------------------------------------------------------------------------------


def gen_max_unpool2d():
    op = "max_unpool2d"
    cases = [
        ("k2_s2_p0", (2, 3, 8, 10), [2, 2], [2, 2], [0, 0]),
        ("k3_s2_p1", (2, 3, 9, 8), [3, 3], [2, 2], [1, 1]),
        ("k2_s2_odd_size", (2, 3, 9, 7), [2, 2], [2, 2], [0, 0]),
    ]
    for name, shape, k, s, p in cases:
        torch.manual_seed(seed_of(op, name))
        x = torch.randn(shape)
        pooled, indices = F.max_pool2d(x, k, s, p, return_indices=True)
        out_size = [shape[2], shape[3]]

        def fn(input):
            return F.max_unpool2d(input, indices, k, s, p, output_size=out_size)

        out, g, grads = forward_backward(fn, {"input": pooled}, seed_of(op, name) + 1)
        save(op, name, {"input": pooled, "indices": indices, "output": out, "grad_output": g, **grads},
             {"kernel_size": k, "stride": s, "padding": p, "output_size": out_size})


def gen_max_pool2d_with_indices():
    op = "max_pool2d_with_indices"
    cases = [
        ("k3_s2_p1_d1", [3, 3], [2, 2], [1, 1], [1, 1]),
        ("k2_s2_p0_d1", [2, 2], [2, 2], [0, 0], [1, 1]),
        ("k3x2_s1x2_p1x0_d2x1", [3, 2], [1, 2], [1, 0], [2, 1]),
    ]
    for name, k, s, p, d in cases:
        torch.manual_seed(seed_of(op, name))
        x = torch.randn(2, 3, 9, 10)
        _, indices = F.max_pool2d(x, k, s, p, d, return_indices=True)

        def fn(input):
            return F.max_pool2d(input, k, s, p, d, return_indices=True)[0]

        out, g, grads = forward_backward(fn, {"input": x}, seed_of(op, name) + 1)
        save(op, name, {"input": x, "output": out, "indices": indices, "grad_output": g, **grads},
             {"kernel_size": k, "stride": s, "padding": p, "dilation": d})


def gen_pixel_shuffle():
    op = "pixel_shuffle"
    cases = [("r2", 2, (2, 8, 3, 4)), ("r3", 3, (1, 18, 2, 3)), ("r2_thin", 2, (1, 4, 5, 1))]
    for name, r, shape in cases:
        torch.manual_seed(seed_of(op, name))
        x = torch.randn(shape)
        out, g, grads = forward_backward(lambda input: F.pixel_shuffle(input, r), {"input": x}, seed_of(op, name) + 1)
        save(op, name, {"input": x, "output": out, "grad_output": g, **grads}, {"upscale_factor": r})


# --------------------------------------------------------------------------------------
# resize (F.interpolate)
# --------------------------------------------------------------------------------------


def gen_resize():
    op = "resize"
    torch_mode = {"nearest": "nearest", "nearest_exact": "nearest-exact", "bilinear": "bilinear", "bicubic": "bicubic"}
    sizes = [("up_7x9_to_12x5", (7, 9), [12, 5]), ("down_10x8_to_4x13", (10, 8), [4, 13])]
    cases = []
    for mode in ["nearest", "nearest_exact"]:
        for tag, src, dst in sizes:
            cases.append((mode, False, tag, src, dst))
    for mode in ["bilinear", "bicubic"]:
        for ac in (False, True):
            for tag, src, dst in sizes:
                cases.append((mode, ac, tag, src, dst))
    # one-pixel output / input dimensions
    cases += [
        ("bilinear", True, "out_1px_6x7_to_1x5", (6, 7), [1, 5]),
        ("bilinear", False, "in_1px_1x6_to_3x9", (1, 6), [3, 9]),
        ("bicubic", False, "out_1px_5x6_to_4x1", (5, 6), [4, 1]),
        ("nearest", False, "in_1px_1x6_to_3x4", (1, 6), [3, 4]),
    ]
    for mode, ac, tag, src, dst in cases:
        name = f"{mode}_ac{int(ac)}_{tag}"
        torch.manual_seed(seed_of(op, name))
        x = torch.randn(2, 3, *src)
        kwargs = {} if mode.startswith("nearest") else {"align_corners": ac}

        def fn(input):
            return F.interpolate(input, size=tuple(dst), mode=torch_mode[mode], **kwargs)

        out, g, grads = forward_backward(fn, {"input": x}, seed_of(op, name) + 1)
        save(op, name, {"input": x, "output": out, "grad_output": g, **grads},
             {"size": dst, "mode": mode, "align_corners": ac})


# --------------------------------------------------------------------------------------
# deform_conv2d
# --------------------------------------------------------------------------------------


def gen_deform_conv2d():
    op = "deform_conv2d"
    cases = [
        # name, kernel, stride, padding, dilation, groups, offset_groups, mask, bias, offset scale
        ("v1_3x3_s1_p1_bias", (3, 3), [1, 1], [1, 1], [1, 1], 1, 1, False, True, 0.7),
        ("v2_mask_s2_d2_p2", (3, 3), [2, 2], [2, 2], [2, 2], 1, 1, True, False, 0.7),
        ("v2_g2_og2_3x2_mask_bias", (3, 2), [1, 2], [1, 0], [1, 1], 2, 2, True, True, 0.7),
        ("v2_large_offsets", (3, 3), [1, 1], [1, 1], [1, 1], 1, 1, True, True, 2.5),
    ]
    n, c, h, w, c_out = 2, 4, 9, 8, 6
    for name, (kh, kw), s, p, d, groups, og, has_mask, has_bias, oscale in cases:
        torch.manual_seed(seed_of(op, name))
        ho = (h + 2 * p[0] - d[0] * (kh - 1) - 1) // s[0] + 1
        wo = (w + 2 * p[1] - d[1] * (kw - 1) - 1) // s[1] + 1
        x = torch.randn(n, c, h, w)
        weight = torch.randn(c_out, c // groups, kh, kw) * 0.3
        offset = torch.randn(n, 2 * og * kh * kw, ho, wo) * oscale
        diff = {"input": x, "offset": offset, "weight": weight}
        if has_mask:
            diff["mask"] = torch.sigmoid(torch.randn(n, og * kh * kw, ho, wo))
        if has_bias:
            diff["bias"] = torch.randn(c_out)

        def fn(input, offset, weight, mask=None, bias=None):
            return torchvision.ops.deform_conv2d(input, offset, weight, bias, tuple(s), tuple(p), tuple(d), mask)

        out, g, grads = forward_backward(fn, diff, seed_of(op, name) + 1)
        if oscale > 2:
            # how many bilinear samples fall fully outside the map
            ys = torch.arange(ho).view(1, 1, ho, 1) * s[0] - p[0]
            xs = torch.arange(wo).view(1, 1, 1, wo) * s[1] - p[1]
            ky = (torch.arange(kh).repeat_interleave(kw) * d[0]).view(1, -1, 1, 1)
            kx = (torch.arange(kw).repeat(kh) * d[1]).view(1, -1, 1, 1)
            sy = ys + ky + offset[:, 0::2]
            sx = xs + kx + offset[:, 1::2]
            outside = ((sy <= -1) | (sy >= h) | (sx <= -1) | (sx >= w)).float().mean().item()
            note(f"{op}/{name}: {outside:.0%} of the samples fall fully outside the map")
        save(op, name, {**diff, "output": out, "grad_output": g, **grads},
             {"stride": s, "padding": p, "dilation": d, "groups": groups, "offset_groups": og,
              "has_mask": has_mask, "has_bias": has_bias})


# --------------------------------------------------------------------------------------
# nms, batched_nms, box ops, box coder
# --------------------------------------------------------------------------------------


def clustered_boxes(num: int, clusters: int = 5) -> torch.Tensor:
    centers = torch.rand(clusters, 2) * 100
    which = torch.randint(0, clusters, (num,))
    ctr = centers[which] + torch.randn(num, 2) * 4
    wh = (20 + torch.randn(num, 2) * 5).clamp(min=4)
    return torch.cat([ctr - wh / 2, ctr + wh / 2], 1)


def distinct_scores(num: int) -> torch.Tensor:
    scores = torch.rand(num)
    assert len(set(scores.tolist())) == num
    return scores


def gen_nms():
    for name, thr in [("iou03", 0.3), ("iou05", 0.5), ("iou07", 0.7)]:
        torch.manual_seed(seed_of("nms", name))
        boxes = clustered_boxes(40)
        boxes[10] = boxes[3]  # identical boxes, different scores
        boxes[25] = boxes[7]
        boxes[31] = boxes[7]
        scores = distinct_scores(40)
        keep = torchvision.ops.nms(boxes, scores, thr)
        note(f"nms/{name}: keeps {len(keep)}/40")
        save("nms", name, {"boxes": boxes, "scores": scores, "keep": keep}, {"iou_threshold": thr})
    for name, thr in [("iou05_3classes", 0.5), ("iou04_4classes", 0.4)]:
        torch.manual_seed(seed_of("batched_nms", name))
        ncls = 3 if "3classes" in name else 4
        boxes = clustered_boxes(40, clusters=4)
        idxs = torch.randint(0, ncls, (40,))
        boxes[12] = boxes[2]  # same box in the same class and in another class
        idxs[12] = idxs[2]
        boxes[20] = boxes[2]
        idxs[20] = (idxs[2] + 1) % ncls
        scores = distinct_scores(40)
        keep = torchvision.ops.batched_nms(boxes, scores, idxs, thr)
        note(f"batched_nms/{name}: keeps {len(keep)}/40")
        save("batched_nms", name, {"boxes": boxes, "scores": scores, "idxs": idxs, "keep": keep}, {"iou_threshold": thr})


def random_boxes(num: int, span: float = 30.0) -> torch.Tensor:
    xy = torch.rand(num, 2) * span
    wh = torch.rand(num, 2) * span / 2 + 1
    return torch.cat([xy, xy + wh], 1)


def gen_boxes():
    torch.manual_seed(seed_of("boxes", "box_ops"))
    boxes1 = random_boxes(5)
    boxes2 = random_boxes(7)
    boxes2[2] = boxes1[1]  # IoU exactly 1
    boxes2[5] = torch.tensor([100.0, 100.0, 110.0, 120.0])  # disjoint from everything
    clip_input = torch.tensor([
        [-5.3, -2.1, 10.2, 8.7],
        [3.3, 4.4, 35.6, 12.1],
        [25.2, 15.7, 40.3, 30.9],
        [-10.0, -10.0, -2.0, -3.0],
        [5.5, 6.5, 9.5, 11.5],
        [28.4, -4.2, 31.7, 22.6],
    ])
    image_size = [20, 30]  # [h, w]
    small_boxes = torch.tensor([
        [0.0, 0.0, 2.0, 2.0],  # exactly min_size: kept
        [1.0, 1.0, 2.99, 5.0],  # width 1.99: removed
        [3.0, 3.0, 10.0, 4.5],  # height 1.5: removed
        [4.2, 5.1, 9.8, 12.3],
        [7.0, 7.0, 7.0, 9.0],  # zero width
        [2.5, 1.5, 6.5, 3.6],
        [10.0, 10.0, 8.0, 15.0],  # negative width
        [0.3, 0.7, 30.2, 20.9],
    ])
    min_size = 2.0
    save("boxes", "box_ops", {
        "boxes1": boxes1,
        "boxes2": boxes2,
        "box_area": box_ops.box_area(boxes1),
        "box_iou": box_ops.box_iou(boxes1, boxes2),
        "clip_input": clip_input,
        "clip_output": box_ops.clip_boxes_to_image(clip_input, tuple(image_size)),
        "small_boxes": small_boxes,
        "small_keep": box_ops.remove_small_boxes(small_boxes, min_size),
    }, {"image_size": image_size, "min_size": min_size})

    for weights in [(10.0, 10.0, 5.0, 5.0), (1.0, 1.0, 1.0, 1.0)]:
        name = "box_coder_w" + "_".join(str(int(v)) for v in weights)
        torch.manual_seed(seed_of("boxes", name))
        coder = BoxCoder(weights=weights)
        reference_boxes = random_boxes(6, span=60)
        gt_boxes = reference_boxes + torch.randn(6, 4) * 3
        gt_boxes[:, 2:] = torch.maximum(gt_boxes[:, 2:], gt_boxes[:, :2] + 1)
        encoded = coder.encode_single(gt_boxes, reference_boxes)
        rel_codes = torch.randn(6, 8) * 0.5 * torch.tensor(weights).repeat(2)
        rel_codes[0, 2] = 6.0 * weights[2]  # dw past log(1000/16): clamped
        rel_codes[1, 7] = 8.0 * weights[3]  # dh clamped
        rel_codes[2, 6] = -6.0 * weights[2]  # very negative dw: not clamped
        rel_codes[3, 3] = 4.0 * weights[3]  # just below the clamp (4.0 < 4.135)
        decoded = coder.decode(rel_codes, [reference_boxes])
        assert decoded.shape == (6, 2, 4)
        save("boxes", name, {"reference_boxes": reference_boxes, "gt_boxes": gt_boxes, "encoded": encoded,
                             "rel_codes": rel_codes, "decoded": decoded}, {"weights": list(weights)})


# --------------------------------------------------------------------------------------


GENERATORS = {
    "roi_align": gen_roi_align,
    "roi_pool": gen_roi_pool,
    "ps_roi_align": gen_ps_roi_align,
    "ps_roi_pool": gen_ps_roi_pool,
    "multi_scale_roi_align": gen_multi_scale_roi_align,
    "deform_roi_pool": gen_deform_roi_pool,
    "max_unpool2d": gen_max_unpool2d,
    "max_pool2d_with_indices": gen_max_pool2d_with_indices,
    "pixel_shuffle": gen_pixel_shuffle,
    "resize": gen_resize,
    "deform_conv2d": gen_deform_conv2d,
    "nms": gen_nms,  # also batched_nms
    "boxes": gen_boxes,
}
OUTPUT_DIRS = {"nms": ["nms", "batched_nms"]}


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    selected = argv or list(GENERATORS)
    for key in selected:
        # drop stale cases so renamed / removed ones do not linger
        for d in OUTPUT_DIRS.get(key, [key]):
            for old in (FIXTURES / d).glob("*.safetensors"):
                old.unlink()
        print(f"{key} ...")
        GENERATORS[key]()
    total = sum(p.stat().st_size for p in written)
    print(f"\nwrote {len(written)} fixtures, {total / 1024:.1f} KiB, under {FIXTURES}")
    if notes:
        print("\nnotes:")
        for n in notes:
            print(" -", n)


if __name__ == "__main__":
    main(sys.argv[1:])
