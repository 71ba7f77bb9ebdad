"""Fixture generator for `zoo_data::coco` mask rasterisation against pycocotools.

Builds a handful of COCO segmentations on small images (mostly H=23, W=31): polygons
(convex, non-convex, self-intersecting, sub-pixel, touching or crossing the image border,
entirely outside, degenerate, multi-part, coordinates on pycocotools' rounding ties and
seeded random ones) and RLEs (compressed strings and uncompressed `counts` lists, as crowd
annotations store them). For each it runs `pycocotools.mask.frPyObjects` (+ `merge` for a
polygon list, as `COCO.annToRLE` does), `decode`, `area` and `toBbox`, and writes
`crates/zoo-data/tests/fixtures/coco_masks.json`, read by `crates/zoo-data/tests/coco_masks.rs`.

Conventions of the JSON file (`{"cases": [...]}`), one case per segmentation:
  * `name`, `h`, `w`;
  * `polygons` (`[[x0, y0, x1, y1, ...], ...]`, one COCO annotation's `segmentation`),
    or `counts_string` (a pycocotools compressed RLE string), or `counts_list` (an
    uncompressed RLE: column-major run lengths, starting with a 0-run);
  * `rle`: pycocotools' compressed string of the resulting (merged) RLE;
  * `mask`: the decoded mask as row-major run lengths, alternating 0-runs and 1-runs,
    starting with a (possibly empty) 0-run;
  * `area` (`mask.area`, an integer) and `bbox` (`mask.toBbox`, `[x, y, w, h]`, integers;
    `[0, 0, 0, 0]` for an empty mask).

Polygon coordinates have at most 4 decimals except in the `*_full_precision` cases, whose
values are written with Python's shortest round-trip `repr` (16-17 significant digits; the
`near_ties_full_precision` ones sit 1 ULP from pycocotools' rounding ties, so they only
match if the JSON reader parses floats exactly, as Python does).

Usage: python tools/parity/coco_masks.py   (needs `pip install numpy pycocotools`)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

REPO_ROOT = Path(__file__).resolve().parents[2]
OUT = REPO_ROOT / "crates/zoo-data/tests/fixtures/coco_masks.json"
H, W = 23, 31
SEED = 20240611


def to_runs(m: np.ndarray) -> list[int]:
    """Row-major run lengths of a binary mask, starting with a (possibly empty) 0-run."""
    runs, cur, n = [], 0, 0
    for v in m.reshape(-1):
        if int(v) != cur:
            runs.append(n)
            cur, n = int(v), 0
        n += 1
    runs.append(n)
    return runs


def column_major_counts(m: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts (column-major runs, starting with a 0-run)."""
    return to_runs(m.T)


def reference(name: str, h: int, w: int, rle: dict, source: dict) -> dict:
    """Decodes `rle` with pycocotools and packs a fixture case."""
    m = mask_utils.decode(rle)
    assert m.shape == (h, w), (name, m.shape)
    area = int(mask_utils.area(rle))
    bbox = [int(v) for v in mask_utils.toBbox(rle)]
    assert all(float(v) == int(v) for v in mask_utils.toBbox(rle)), name
    assert area == int(m.sum()), name
    counts = rle["counts"]
    return {
        "name": name,
        "h": h,
        "w": w,
        **source,
        "rle": counts.decode("ascii") if isinstance(counts, bytes) else counts,
        "mask": to_runs(m),
        "area": area,
        "bbox": bbox,
    }


def polygon_case(name: str, polygons: list[list[float]], h: int = H, w: int = W) -> dict:
    """`COCO.annToRLE` for a polygon segmentation: `frPyObjects` then `merge`."""
    polygons = [[float(v) for v in p] for p in polygons]
    rle = mask_utils.merge(mask_utils.frPyObjects(polygons, h, w))
    return reference(name, h, w, rle, {"polygons": polygons})


def rle_string_case(name: str, m: np.ndarray) -> dict:
    """A compressed RLE string from `mask.encode`, as stored by non-crowd RLE annotations."""
    h, w = m.shape
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    return reference(name, h, w, rle, {"counts_string": rle["counts"].decode("ascii")})


def rle_list_case(name: str, m: np.ndarray) -> dict:
    """An uncompressed RLE (`counts` list), as stored by crowd annotations: `frPyObjects`."""
    h, w = m.shape
    counts = column_major_counts(m)
    rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    return reference(name, h, w, rle, {"counts_list": counts})


def star(cx: float, cy: float, r_out: float, r_in: float, points: int, phase: float) -> list[float]:
    """A non-convex star polygon, coordinates rounded to 4 decimals."""
    xy = []
    for i in range(2 * points):
        r = r_out if i % 2 == 0 else r_in
        a = phase + np.pi * i / points
        xy += [round(cx + r * np.cos(a), 4), round(cy + r * np.sin(a), 4)]
    return xy


def random_polygon(rng: np.random.Generator, k: int, decimals: int | None) -> list[float]:
    """A random simple polygon (points sorted by angle around a random centre)."""
    cx, cy = rng.uniform(-2, W + 2), rng.uniform(-2, H + 2)
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = rng.uniform(1.5, 12, k)
    xy = []
    for a, r in zip(angles, radii):
        x, y = cx + r * np.cos(a), cy + r * np.sin(a)
        if decimals is not None:
            x, y = round(x, decimals), round(y, decimals)
        xy += [float(x), float(y)]
    return xy


def near_tie_polygon() -> list[float]:
    """A non-convex polygon whose coordinates are the doubles just below pycocotools' rounding
    ties (`5·x + 0.5` an integer: x an odd number of tenths). Their shortest reprs
    (`9.299999999999999`) have 16-17 digits, and these particular ones are read 1 ULP too
    high, onto the tie, by a float parser that is not correctly rounded (serde_json without
    its `float_roundtrip` feature), which moves the polygon's edge by a pixel."""
    ties = [1.1, 1.1, 25.1, 9.3, 18.1, 11.3, 24.1, 21.1, 9.9, 22.1, 12.3, 10.9, 1.1, 19.1]
    return [float(np.nextafter(v, -np.inf)) for v in ties]


def random_blob(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random mask: a union of a few ellipses plus salt noise."""
    yy, xx = np.mgrid[0:h, 0:w]
    m = np.zeros((h, w), dtype=bool)
    for _ in range(3):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(1, h / 2), rng.uniform(1, w / 2)
        m |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    m ^= rng.uniform(size=(h, w)) < 0.05
    return m


def main() -> None:
    rng = np.random.default_rng(SEED)
    cases = [
        polygon_case("triangle", [[3.25, 2.5, 20.75, 6.0, 9.5, 18.25]]),
        polygon_case("axis_aligned_rectangle", [[4.0, 3.0, 17.0, 3.0, 17.0, 12.0, 4.0, 12.0]]),
        polygon_case("nonconvex_star", [star(15.3, 11.1, 10.2, 3.7, 7, 0.3)]),
        polygon_case("nonconvex_l_shape", [[2.2, 2.2, 14.6, 2.2, 14.6, 6.4, 6.8, 6.4, 6.8, 19.9, 2.2, 19.9]]),
        polygon_case("self_intersecting_bowtie", [[3.0, 3.0, 27.0, 19.0, 27.0, 3.0, 3.0, 19.0]]),
        polygon_case("subpixel_inside_pixel", [[10.2, 10.2, 10.6, 10.3, 10.4, 10.7]]),
        polygon_case("subpixel_around_centre", [[10.3, 10.3, 10.7, 10.3, 10.7, 10.7, 10.3, 10.7]]),
        polygon_case("thin_sliver", [[1.0, 5.0, 29.0, 5.3, 29.0, 5.6, 1.0, 5.4]]),
        polygon_case("whole_image", [[0.0, 0.0, float(W), 0.0, float(W), float(H), 0.0, float(H)]]),
        polygon_case("touching_border", [[0.0, 0.0, 12.5, 0.0, 0.0, 9.75], [float(W), float(H), 20.0, float(H), float(W), 14.0]]),
        polygon_case("crossing_border", [[-3.2, 5.1, 12.7, -2.4, 35.9, 18.3, 8.8, 27.6]]),
        polygon_case("entirely_outside", [[-9.0, -9.0, -2.0, -8.0, -4.0, -1.5]]),
        polygon_case("beyond_right_edge", [[32.0, 2.0, 40.0, 3.0, 36.0, 20.0]]),
        polygon_case("degenerate_line", [[5.0, 5.0, 20.0, 15.0, 5.0, 5.0]]),
        polygon_case("repeated_points", [[6.0, 4.0, 6.0, 4.0, 18.5, 4.5, 18.5, 4.5, 12.0, 16.0, 6.0, 4.0]]),
        polygon_case("multi_part_disjoint", [[2.0, 2.0, 9.0, 2.0, 9.0, 8.0], [15.5, 12.5, 28.0, 14.0, 20.0, 21.5]]),
        polygon_case("multi_part_overlapping", [star(12.0, 10.0, 8.0, 3.0, 5, 0.0), [8.0, 6.0, 24.0, 7.0, 22.0, 18.0, 9.0, 16.0]]),
        polygon_case("multi_part_nested", [[1.0, 1.0, 30.0, 1.0, 30.0, 22.0, 1.0, 22.0], [10.0, 8.0, 20.0, 8.0, 20.0, 15.0, 10.0, 15.0]]),
        # 5·x + 0.5 lands exactly on an integer: pycocotools' `(int)` truncation decides.
        polygon_case("rounding_ties", [[2.1, 2.3, 14.9, 1.7, 27.5, 9.9, 20.3, 20.1, 4.7, 18.5, 0.1, 10.3]]),
        polygon_case("small_image", [[0.4, 0.6, 3.7, 0.2, 3.9, 4.8, 1.1, 3.3]], h=5, w=4),
    ]
    for i in range(6):
        k = int(rng.integers(3, 13))
        cases.append(polygon_case(f"random_{i}", [random_polygon(rng, k, 2)]))
    cases.append(polygon_case("random_multi_part", [random_polygon(rng, 7, 3), random_polygon(rng, 9, 3), random_polygon(rng, 5, 3)]))
    cases.append(polygon_case("random_full_precision", [random_polygon(rng, 11, None)]))
    cases.append(polygon_case("near_ties_full_precision", [near_tie_polygon()]))

    # RLEs.
    full = np.ones((H, W), dtype=bool)
    empty = np.zeros((H, W), dtype=bool)
    starts_on = random_blob(rng, H, W)
    starts_on[0, 0] = True
    cases += [
        rle_string_case("rle_string_blob", random_blob(rng, H, W)),
        rle_string_case("rle_string_starts_with_one", starts_on),
        rle_string_case("rle_string_full", full),
        rle_string_case("rle_string_empty", empty),
        rle_string_case("rle_string_noise_13x11", rng.uniform(size=(13, 11)) < 0.5),
        rle_list_case("rle_list_blob", random_blob(rng, H, W)),
        rle_list_case("rle_list_starts_with_one", starts_on),
        rle_list_case("rle_list_empty", empty),
    ]
    # A mask with long runs (multi-character numbers) and growing/shrinking runs (negative
    # differences in the string's delta coding).
    stripes = np.zeros((H, W), dtype=bool)
    stripes[:, 0:9] = True
    stripes[5:7, 9:12] = True
    stripes[:, 20:31] = True
    cases.append(rle_string_case("rle_string_long_runs", stripes))

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"cases": cases}, separators=(",", ":")) + "\n")
    print(f"wrote {len(cases)} cases to {OUT.relative_to(REPO_ROOT)} ({OUT.stat().st_size} bytes)")
    for c in cases:
        print(f"  {c['name']:28s} area {c['area']:4d} bbox {c['bbox']}")


if __name__ == "__main__":
    main()
