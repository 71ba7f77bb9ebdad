"""Fixture generator for `zoo_eval::coco` (COCO detection metrics) against pycocotools.

Builds a handful of small random detection problems (boxes and 24x32 masks), runs
pycocotools' COCOeval (`bbox` / `segm`) on them, and writes the inputs plus the 12 `stats`
and the per-class AP (IoU 0.50:0.95, area all, maxDets 100; `null` for classes without
ground truth) to `crates/zoo-eval/tests/fixtures/ap/cases.json`.

Conventions of the JSON file (read by the tests in `crates/zoo-train/src/ap.rs`):
  * classes and images are 0-based (`category_id = class + 1`, `image_id = image + 1`);
  * `bbox` is `[x1, y1, x2, y2]`, all values exactly representable as f32;
  * scores are multiples of 1/64 (exact in f32), deliberately with ties;
  * masks are row-major (H=24, W=32) run lengths, alternating 0-runs and 1-runs, starting
    with a (possibly empty) 0-run;
  * ground-truth `area` is `null` when it equals the Rust default (mask pixel count, or box
    area without a mask); pycocotools then gets that same default.

Usage: python tools/parity/ap.py   (needs `pip install pycocotools`)
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

REPO_ROOT = Path(__file__).resolve().parents[2]
OUT = REPO_ROOT / "crates/zoo-eval/tests/fixtures/ap/cases.json"
H, W = 24, 32


def q(x: float, step: float = 0.25) -> float:
    """Rounds to a multiple of `step` (exact in f32)."""
    return float(np.round(x / step) * step)


def rand_box(rng: np.random.Generator, size_class: str, extent: float = 640.0) -> list[float]:
    """A random box whose area falls in the given COCO area range."""
    if size_class == "small":
        side = rng.uniform(4, 31)
    elif size_class == "medium":
        side = rng.uniform(33, 95)
    else:
        side = rng.uniform(97, 250)
    aspect = rng.uniform(0.7, 1.4)
    w, h = q(side * aspect**0.5), q(side / aspect**0.5)
    x1, y1 = q(rng.uniform(0, extent - w)), q(rng.uniform(0, extent - h))
    return [x1, y1, x1 + w, y1 + h]


def jitter_box(rng: np.random.Generator, b: list[float], amount: float) -> list[float]:
    w, h = b[2] - b[0], b[3] - b[1]
    d = [q(rng.normal(0, amount) * s) for s in (w, h, w, h)]
    x1, y1, x2, y2 = b[0] + d[0], b[1] + d[1], b[2] + d[2], b[3] + d[3]
    if x2 <= x1:
        x2 = x1 + 0.25
    if y2 <= y1:
        y2 = y1 + 0.25
    return [x1, y1, x2, y2]


def rand_score(rng: np.random.Generator) -> float:
    return float(rng.integers(1, 64)) / 64.0  # few values -> many ties


def rand_mask(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    cy, cx = rng.uniform(0, H), rng.uniform(0, W)
    ry, rx = rng.uniform(1.5, 9), rng.uniform(1.5, 12)
    if rng.random() < 0.5:
        m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    else:
        m = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
    if not m.any():
        m[int(cy) % H, int(cx) % W] = True
    return m


def perturb_mask(rng: np.random.Generator, m: np.ndarray) -> np.ndarray:
    dy, dx = rng.integers(-1, 2), rng.integers(-1, 2)
    out = np.roll(np.roll(m, dy, axis=0), dx, axis=1)
    flip = rng.random(out.shape) < 0.01
    out = out ^ flip
    if not out.any():
        out = m.copy()
    return out


def mask_box(m: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(m)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def to_runs(m: np.ndarray) -> list[int]:
    flat = m.reshape(-1).astype(np.uint8)
    runs, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    return runs


def make_case(name: str, seed: int, kind: str, n_img: int, n_cls: int, det_area: str = "mask",
              dets_per_gt: int = 2, extra_fp: int = 3, many: int = 0) -> dict:
    """One random problem. The last class has detections but no ground truth; class 1 has
    ground truth but no detections."""
    rng = np.random.default_rng(seed)
    gts, dets = [], []
    no_gt_cls, no_det_cls = n_cls - 1, 1
    sizes = ["small", "medium", "large"]
    for img in range(n_img):
        for cls in range(n_cls):
            if cls == no_gt_cls:
                n_gt = 0
            else:
                n_gt = int(rng.integers(0, 5))
            for _ in range(n_gt):
                crowd = bool(rng.random() < 0.15)
                g = {"image": img, "class": cls, "iscrowd": crowd, "area": None}
                if kind == "box":
                    g["bbox"] = rand_box(rng, sizes[int(rng.integers(0, 3))])
                    r = rng.random()
                    if r < 0.15:  # explicit COCO area different from the box area
                        g["area"] = q(rng.uniform(10, 12000), 1.0)
                    elif r < 0.25:  # boundary areas: both ends of the ranges are inclusive
                        side = 32.0 if rng.random() < 0.5 else 96.0
                        g["bbox"] = [g["bbox"][0], g["bbox"][1], g["bbox"][0] + side,
                                     g["bbox"][1] + side]
                else:
                    m = rand_mask(rng)
                    g["mask_np"] = m
                    g["bbox"] = mask_box(m)
                    if rng.random() < 0.3:  # COCO area from annotations can be anything
                        g["area"] = q(rng.uniform(10, 12000), 1.0)
                gts.append(g)
                if cls == no_det_cls:
                    continue
                for _ in range(int(rng.integers(0, dets_per_gt + 1))):
                    d = {"image": img, "class": cls, "score": rand_score(rng)}
                    if kind == "box":
                        d["bbox"] = jitter_box(rng, g["bbox"], float(rng.uniform(0.0, 0.12)))
                    else:
                        dm = perturb_mask(rng, g["mask_np"])
                        d["mask_np"] = dm
                        if det_area == "box":
                            b = mask_box(dm)
                            grow = q(rng.uniform(0, 80), 1.0)
                            d["bbox"] = [b[0], b[1], b[2] + grow, b[3] + grow]
                        else:
                            d["bbox"] = mask_box(dm)
                    dets.append(d)
            if cls == no_det_cls:
                continue
            for _ in range(int(rng.integers(0, extra_fp + 1)) + (many if img == 0 else 0)):
                d = {"image": img, "class": cls, "score": rand_score(rng)}
                if kind == "box":
                    d["bbox"] = rand_box(rng, sizes[int(rng.integers(0, 3))])
                else:
                    dm = rand_mask(rng)
                    d["mask_np"] = dm
                    b = mask_box(dm)
                    if det_area == "box":
                        grow = q(rng.uniform(0, 120), 1.0)
                        b = [b[0], b[1], b[2] + grow, b[3] + grow]
                    d["bbox"] = b
                dets.append(d)
    # Shuffle detections so that the input order (the tie-break) is not the generation order.
    order = rng.permutation(len(dets))
    dets = [dets[i] for i in order]
    return {"name": name, "kind": kind, "num_classes": n_cls, "det_area": det_area,
            "height": H, "width": W, "detections": dets, "ground_truths": gts}


def run_cocoeval(case: dict) -> tuple[list[float], list[float | None]]:
    kind = case["kind"]
    n_img = 1 + max([g["image"] for g in case["ground_truths"]]
                    + [d["image"] for d in case["detections"]])
    gt_anns = []
    for i, g in enumerate(case["ground_truths"]):
        x1, y1, x2, y2 = g["bbox"]
        a = {"id": i + 1, "image_id": g["image"] + 1, "category_id": g["class"] + 1,
             "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": int(g["iscrowd"])}
        if "mask_np" in g:
            a["segmentation"] = mask_utils.encode(np.asfortranarray(g["mask_np"].astype(np.uint8)))
            default_area = float(g["mask_np"].sum())
        else:
            default_area = (x2 - x1) * (y2 - y1)
        a["area"] = default_area if g["area"] is None else g["area"]
        gt_anns.append(a)
    dataset = {
        "images": [{"id": i + 1, "height": H, "width": W} for i in range(n_img)],
        "categories": [{"id": k + 1, "name": str(k)} for k in range(case["num_classes"])],
        "annotations": gt_anns,
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        results = []
        for d in case["detections"]:
            r = {"image_id": d["image"] + 1, "category_id": d["class"] + 1, "score": d["score"]}
            x1, y1, x2, y2 = d["bbox"]
            if kind == "box":
                r["bbox"] = [x1, y1, x2 - x1, y2 - y1]
            else:
                r["segmentation"] = mask_utils.encode(
                    np.asfortranarray(d["mask_np"].astype(np.uint8)))
                if case["det_area"] == "box":
                    # With a `bbox`, loadRes takes the detection area from the box.
                    r["bbox"] = [x1, y1, x2 - x1, y2 - y1]
            results.append(r)
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, "bbox" if kind == "box" else "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"]  # [T, R, K, A, M]
    per_class = []
    for k in range(case["num_classes"]):
        p = prec[:, :, k, 0, -1]
        p = p[p > -1]
        per_class.append(float(np.mean(p)) if p.size else None)
    return [float(s) for s in ev.stats], per_class


def serialise(case: dict) -> dict:
    out = dict(case)
    out["detections"], out["ground_truths"] = [], []
    for key in ("detections", "ground_truths"):
        for item in case[key]:
            item = dict(item)
            m = item.pop("mask_np", None)
            item["mask"] = None if m is None else to_runs(m)
            out[key].append(item)
    return out


def main() -> None:
    specs = [
        make_case("box_basic", 1, "box", 3, 4),
        make_case("box_many", 2, "box", 5, 3, dets_per_gt=3, extra_fp=6, many=105),
        make_case("box_dense", 3, "box", 4, 4, dets_per_gt=4, extra_fp=4),
        make_case("mask_basic", 4, "mask", 3, 3),
        make_case("mask_crowd", 5, "mask", 5, 4, dets_per_gt=3),
        make_case("mask_box_area", 6, "mask", 4, 3, det_area="box"),
    ]
    cases = []
    for case in specs:
        stats, per_class = run_cocoeval(case)
        c = serialise(case)
        c["stats"], c["per_class"] = stats, per_class
        cases.append(c)
        n_crowd = sum(g["iscrowd"] for g in case["ground_truths"])
        print(f"{case['name']}: {len(case['detections'])} dets, {len(case['ground_truths'])} gts "
              f"({n_crowd} crowd); stats = {np.round(stats, 4).tolist()}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"cases": cases}, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
