//! Box overlap as pycocotools computes it (`maskApi.c`'s `bbIou`), on `[x, y, w, h]` in f64.

/// Box as pycocotools holds it: `[x, y, w, h]` in f64.
pub(super) fn xywh(b: [f32; 4]) -> [f64; 4] {
    let [x1, y1, x2, y2] = b.map(f64::from);
    [x1, y1, x2 - x1, y2 - y1]
}

/// Area of an `[x, y, w, h]` box.
pub(super) fn area(b: [f64; 4]) -> f64 {
    b[2] * b[3]
}

/// pycocotools `bbIou` of a detection `d` with a ground truth `g` (intersection over the
/// detection's area when `g` is a crowd region).
pub(super) fn box_iou(d: [f64; 4], g: [f64; 4], crowd: bool) -> f64 {
    let w = (d[2] + d[0]).min(g[2] + g[0]) - d[0].max(g[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (d[3] + d[1]).min(g[3] + g[1]) - d[1].max(g[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let i = w * h;
    let da = area(d);
    let u = if crowd { da } else { da + area(g) - i };
    i / u
}
