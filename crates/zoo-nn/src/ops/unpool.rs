//! Max-unpooling (Zeiler & Fergus 2014; SegNet); mirrors `torch.nn.functional.max_unpool2d`.

use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;

/// Places each value at the position its max-pooling index recorded; everything else is 0.
///
/// `indices` are flat per-plane positions `y · W_out + x`, as returned by
/// `burn::tensor::module::max_pool2d_with_indices` and PyTorch's `return_indices=True`.
/// `output_size` is the unpooled `[H_out, W_out]`; the default shape of PyTorch is
/// `(H − 1)·stride − 2·padding + kernel` (pass it explicitly when pooling dropped a border,
/// e.g. odd sizes).
///
/// # Shapes
/// - `input`, `indices`: `[N, C, H, W]`
/// - returns `[N, C, output_size[0], output_size[1]]`
///
/// # Panics
/// If `input` and `indices` differ in shape, or `output_size` is smaller than the default
/// unpooled size minus `stride` or larger than it plus `stride` (PyTorch's rule).
/// Index values are not checked (that would force a device sync): out-of-range indices are a
/// caller error, as in PyTorch.
pub fn max_unpool2d(
    input: Tensor<4>,
    indices: Tensor<4, Int>,
    kernel_size: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    output_size: [usize; 2],
) -> Tensor<4> {
    const OP: &str = "max_unpool2d";
    let [n, c, h, w] = input.dims();
    assert!(
        indices.dims() == input.dims(),
        "{OP}: indices must have the input's shape {:?}, got {:?}",
        input.dims(),
        indices.dims()
    );
    assert!(
        stride[0] > 0 && stride[1] > 0 && kernel_size[0] > 0 && kernel_size[1] > 0,
        "{OP}: kernel_size and stride must be positive, got {kernel_size:?} and {stride:?}"
    );
    for d in 0..2 {
        let len = [h, w][d];
        let default =
            (len.saturating_sub(1) * stride[d] + kernel_size[d]) as i64 - 2 * padding[d] as i64;
        let (lo, hi) = (default - stride[d] as i64, default + stride[d] as i64);
        let got = output_size[d] as i64;
        assert!(
            got > 0 && got > lo && got < hi,
            "{OP}: output_size[{d}] must be between {} and {} (default {default}), got {got}",
            lo + 1,
            hi - 1
        );
    }
    let [oh, ow] = output_size;
    // Overlapping windows record the same position more than once, always with the same
    // value: assign (not add), as PyTorch does.
    Tensor::zeros([n, c, oh * ow], &input.device())
        .scatter(
            2,
            indices.reshape([n, c, h * w]),
            input.reshape([n, c, h * w]),
            IndexingUpdateOp::Assign,
        )
        .reshape([n, c, oh, ow])
}
