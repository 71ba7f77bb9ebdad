//! Non-maximum suppression; mirrors `torchvision.ops.nms` and `batched_nms`.
//!
//! The greedy loop runs on the host: its output size depends on the data, so the boxes must
//! come back from the device anyway, and one host pass works on every backend (burn-vision's
//! NMS has no ndarray kernel).

use burn::prelude::*;

use super::sampling::ints;

/// Greedy NMS: keeps the highest-scoring box, drops the boxes overlapping it with
/// IoU `> iou_threshold`, and repeats.
///
/// # Shapes
/// - `boxes`: `[N, 4]` as `(x1, y1, x2, y2)`
/// - `scores`: `[N]`
/// - returns the kept indices `[K]`, by decreasing score (ties keep input order)
///
/// # Panics
/// If the shapes do not match.
pub fn nms(boxes: Tensor<2>, scores: Tensor<1>, iou_threshold: f32) -> Tensor<1, Int> {
    let device = boxes.device();
    let (boxes, scores) = read("nms", boxes, scores);
    let keep = nms_on_host(&boxes, &scores, iou_threshold);
    ints(keep.into_iter().map(|i| i as i64).collect(), &device)
}

/// [`nms`] on boxes already on the host: the kept indices, by decreasing score (ties keep
/// input order). The detection pipeline holds its boxes on the host and calls this directly.
///
/// # Panics
/// If `boxes` and `scores` differ in length.
pub fn nms_on_host(boxes: &[[f32; 4]], scores: &[f32], iou_threshold: f32) -> Vec<usize> {
    check_lengths("nms_on_host", boxes.len(), scores.len(), None);
    greedy(boxes, &by_score(scores, 0..scores.len()), iou_threshold)
}

/// NMS applied independently per category: boxes with different `idxs` never suppress each
/// other.
///
/// # Shapes
/// - `boxes`: `[N, 4]`, `scores`: `[N]`, `idxs`: `[N]` category of each box
/// - returns the kept indices `[K]`, by decreasing score
///
/// # Panics
/// If the shapes do not match.
pub fn batched_nms(
    boxes: Tensor<2>,
    scores: Tensor<1>,
    idxs: Tensor<1, Int>,
    iou_threshold: f32,
) -> Tensor<1, Int> {
    let device = boxes.device();
    assert!(
        idxs.dims()[0] == scores.dims()[0],
        "batched_nms: idxs must be [N] = [{}], got {:?}",
        scores.dims()[0],
        idxs.dims()
    );
    let (boxes, scores) = read("batched_nms", boxes, scores);
    let idxs: Vec<i64> = idxs.into_data().iter::<i64>().collect();
    let keep = batched_nms_on_host(&boxes, &scores, &idxs, iou_threshold);
    ints(keep.into_iter().map(|i| i as i64).collect(), &device)
}

/// [`batched_nms`] on boxes already on the host: the kept indices, by decreasing score.
///
/// # Panics
/// If `boxes`, `scores` and `idxs` differ in length.
pub fn batched_nms_on_host(
    boxes: &[[f32; 4]],
    scores: &[f32],
    idxs: &[i64],
    iou_threshold: f32,
) -> Vec<usize> {
    check_lengths(
        "batched_nms_on_host",
        boxes.len(),
        scores.len(),
        Some(idxs.len()),
    );
    let mut categories = idxs.to_vec();
    categories.sort_unstable();
    categories.dedup();
    let mut keep = Vec::new();
    for category in categories {
        let members = (0..idxs.len()).filter(|&i| idxs[i] == category);
        keep.extend(greedy(boxes, &by_score(scores, members), iou_threshold));
    }
    by_score(scores, keep.into_iter())
}

fn check_lengths(op: &str, boxes: usize, scores: usize, idxs: Option<usize>) {
    assert!(
        scores == boxes && idxs.is_none_or(|n| n == boxes),
        "{op}: boxes ({boxes}), scores ({scores}) and idxs ({idxs:?}) must have one entry per box"
    );
}

fn read(op: &str, boxes: Tensor<2>, scores: Tensor<1>) -> (Vec<[f32; 4]>, Vec<f32>) {
    let [n, four] = boxes.dims();
    assert!(
        four == 4,
        "{op}: boxes must be [N, 4], got {:?}",
        boxes.dims()
    );
    assert!(
        scores.dims() == [n],
        "{op}: scores must be [N] = [{n}], got {:?}",
        scores.dims()
    );
    let b: Vec<f32> = boxes.into_data().iter::<f32>().collect();
    let boxes = b
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect();
    (boxes, scores.into_data().iter::<f32>().collect())
}

/// `indices` sorted by decreasing score; stable, so equal scores keep their order.
fn by_score(scores: &[f32], indices: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut order: Vec<usize> = indices.collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// The greedy pass over `order` (indices by decreasing score); IoU as torchvision computes it.
fn greedy(boxes: &[[f32; 4]], order: &[usize], iou_threshold: f32) -> Vec<usize> {
    let area = |b: &[f32; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    let mut suppressed = vec![false; order.len()];
    let mut keep = Vec::new();
    for (i, &bi) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(bi);
        let a = boxes[bi];
        let a_area = area(&a);
        for (j, &bj) in order.iter().enumerate().skip(i + 1) {
            if suppressed[j] {
                continue;
            }
            let b = boxes[bj];
            let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
            let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
            let inter = w * h;
            if inter / (a_area + area(&b) - inter) > iou_threshold {
                suppressed[j] = true;
            }
        }
    }
    keep
}
