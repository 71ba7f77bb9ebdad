//! The loss functions of the detection heads, with PyTorch's definitions.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, relu};

/// Element-wise `binary_cross_entropy_with_logits` (no reduction):
/// `max(x, 0) − x·y + log(1 + exp(−|x|))`.
pub fn bce_with_logits<const D: usize>(logits: Tensor<D>, targets: Tensor<D>) -> Tensor<D> {
    relu(logits.clone()) - logits.clone() * targets + logits.abs().neg().exp().log1p()
}

/// `smooth_l1_loss(pred, target, beta, reduction="sum")`: `0.5·d²/β` where `|d| < β`, else
/// `|d| − 0.5·β`, summed. Returns `[1]`.
pub fn smooth_l1_sum<const D: usize>(pred: Tensor<D>, target: Tensor<D>, beta: f32) -> Tensor<1> {
    let d = (pred - target).abs();
    let quadratic = d.clone().powf_scalar(2.0) * (0.5 / beta);
    let linear = d.clone() - 0.5 * beta;
    quadratic
        .mask_where(d.greater_equal_elem(beta), linear)
        .sum()
}

/// Mean cross-entropy of `[N, C]` logits against class indices `[N]`. Returns `[1]`.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let n = labels.dims()[0];
    let picked = log_softmax(logits, 1).gather(1, labels.reshape([n, 1]));
    picked.neg().mean()
}
