//! Box utilities; mirror `torchvision.ops.boxes` and torchvision's detection `BoxCoder`.
//!
//! Boxes are `[N, 4]` tensors of `(x1, y1, x2, y2)` in pixels.

use burn::prelude::*;

use super::sampling::ints;

fn check_boxes(op: &str, arg: &str, boxes: &Tensor<2>) {
    assert!(
        boxes.dims()[1] == 4,
        "{op}: {arg} must be [N, 4] (x1, y1, x2, y2), got {:?}",
        boxes.dims()
    );
}

/// Column `i` of a `[N, 4]` box tensor as `[N]`.
fn coord(boxes: &Tensor<2>, i: usize) -> Tensor<1> {
    let n = boxes.dims()[0];
    boxes.clone().slice([0..n, i..i + 1]).reshape([n])
}

/// Area of each box: `[N, 4]` → `[N]`.
pub fn box_area(boxes: Tensor<2>) -> Tensor<1> {
    check_boxes("box_area", "boxes", &boxes);
    (coord(&boxes, 2) - coord(&boxes, 0)) * (coord(&boxes, 3) - coord(&boxes, 1))
}

/// Pairwise intersection over union: `[N, 4]`, `[M, 4]` → `[N, M]`.
pub fn box_iou(boxes1: Tensor<2>, boxes2: Tensor<2>) -> Tensor<2> {
    check_boxes("box_iou", "boxes1", &boxes1);
    check_boxes("box_iou", "boxes2", &boxes2);
    let area1 = box_area(boxes1.clone()).unsqueeze_dim::<2>(1);
    let area2 = box_area(boxes2.clone()).unsqueeze_dim::<2>(0);
    let pair = |i: usize| {
        (
            coord(&boxes1, i).unsqueeze_dim::<2>(1),
            coord(&boxes2, i).unsqueeze_dim::<2>(0),
        )
    };
    let side = |lo: usize, hi: usize| {
        let (a_lo, b_lo) = pair(lo);
        let (a_hi, b_hi) = pair(hi);
        (a_hi.min_pair(b_hi) - a_lo.max_pair(b_lo)).clamp_min(0.0)
    };
    let inter = side(0, 2) * side(1, 3);
    inter.clone() / (area1 + area2 - inter)
}

/// Clips boxes to an image of `size = [height, width]`: x into `[0, width]`, y into
/// `[0, height]`.
pub fn clip_boxes_to_image(boxes: Tensor<2>, size: [usize; 2]) -> Tensor<2> {
    check_boxes("clip_boxes_to_image", "boxes", &boxes);
    let (h, w) = (size[0] as f32, size[1] as f32);
    let c = |i: usize, max: f32| coord(&boxes, i).clamp(0.0, max);
    Tensor::stack(vec![c(0, w), c(1, h), c(2, w), c(3, h)], 1)
}

/// Indices of the boxes whose width and height are both `>= min_size`: `[N, 4]` → `[K]`.
pub fn remove_small_boxes(boxes: Tensor<2>, min_size: f32) -> Tensor<1, Int> {
    check_boxes("remove_small_boxes", "boxes", &boxes);
    let device = boxes.device();
    let values: Vec<f32> = boxes.into_data().iter::<f32>().collect();
    let keep = values
        .chunks_exact(4)
        .enumerate()
        .filter(|(_, b)| b[2] - b[0] >= min_size && b[3] - b[1] >= min_size)
        .map(|(i, _)| i as i64)
        .collect();
    ints(keep, &device)
}

/// Encodes boxes as offsets relative to reference boxes and back (R-CNN parameterisation);
/// mirrors torchvision's `det_utils.BoxCoder`.
#[derive(Config, Debug, PartialEq)]
pub struct BoxCoder {
    /// Weights of `(dx, dy, dw, dh)`: `(10, 10, 5, 5)` in Faster/Mask R-CNN's box head,
    /// `(1, 1, 1, 1)` in the RPN.
    pub weights: [f32; 4],
    /// Upper bound of `dw`, `dh` before `exp` when decoding.
    #[config(default = "4.135_167")] // ln(1000 / 16), rounded to f32
    pub bbox_xform_clip: f32,
}

impl BoxCoder {
    /// Regression targets of `reference_boxes` (e.g. ground truth) relative to `proposals`.
    ///
    /// # Shapes
    /// - `reference_boxes`, `proposals`: `[N, 4]`
    /// - returns `[N, 4]` = `(dx, dy, dw, dh)`
    pub fn encode(&self, reference_boxes: Tensor<2>, proposals: Tensor<2>) -> Tensor<2> {
        check_boxes("BoxCoder::encode", "reference_boxes", &reference_boxes);
        check_boxes("BoxCoder::encode", "proposals", &proposals);
        let [wx, wy, ww, wh] = self.weights;
        let geometry = |b: &Tensor<2>| {
            let w = coord(b, 2) - coord(b, 0);
            let h = coord(b, 3) - coord(b, 1);
            let cx = coord(b, 0) + w.clone() * 0.5;
            let cy = coord(b, 1) + h.clone() * 0.5;
            (w, h, cx, cy)
        };
        let (ew, eh, ecx, ecy) = geometry(&proposals);
        let (gw, gh, gcx, gcy) = geometry(&reference_boxes);
        let dx = (gcx - ecx) * wx / ew.clone();
        let dy = (gcy - ecy) * wy / eh.clone();
        let dw = (gw / ew).log() * ww;
        let dh = (gh / eh).log() * wh;
        Tensor::stack(vec![dx, dy, dw, dh], 1)
    }

    /// Applies regression offsets to boxes.
    ///
    /// # Shapes
    /// - `rel_codes`: `[N, 4·C]`, `(dx, dy, dw, dh)` per class
    /// - `boxes`: `[N, 4]`
    /// - returns `[N, C, 4]`
    pub fn decode(&self, rel_codes: Tensor<2>, boxes: Tensor<2>) -> Tensor<3> {
        check_boxes("BoxCoder::decode", "boxes", &boxes);
        let [n, codes] = rel_codes.dims();
        assert!(
            codes % 4 == 0 && n == boxes.dims()[0],
            "BoxCoder::decode: rel_codes must be [N, 4·C] with N = {} boxes, got {:?}",
            boxes.dims()[0],
            rel_codes.dims()
        );
        let classes = codes / 4;
        let [wx, wy, ww, wh] = self.weights;
        let widths = (coord(&boxes, 2) - coord(&boxes, 0)).reshape([n, 1]);
        let heights = (coord(&boxes, 3) - coord(&boxes, 1)).reshape([n, 1]);
        let ctr_x = coord(&boxes, 0).reshape([n, 1]) + widths.clone() * 0.5;
        let ctr_y = coord(&boxes, 1).reshape([n, 1]) + heights.clone() * 0.5;
        let rel = rel_codes.reshape([n, classes, 4]);
        let part = |i: usize| {
            rel.clone()
                .slice([0..n, 0..classes, i..i + 1])
                .reshape([n, classes])
        };
        let dx = part(0) / wx;
        let dy = part(1) / wy;
        let dw = (part(2) / ww).clamp_max(self.bbox_xform_clip);
        let dh = (part(3) / wh).clamp_max(self.bbox_xform_clip);
        let pred_cx = dx * widths.clone() + ctr_x;
        let pred_cy = dy * heights.clone() + ctr_y;
        let half_w = dw.exp() * widths * 0.5;
        let half_h = dh.exp() * heights * 0.5;
        Tensor::stack(
            vec![
                pred_cx.clone() - half_w.clone(),
                pred_cy.clone() - half_h.clone(),
                pred_cx + half_w,
                pred_cy + half_h,
            ],
            2,
        )
    }
}
