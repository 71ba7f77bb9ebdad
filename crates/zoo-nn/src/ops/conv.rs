//! 2-D convolution through burn-zoo's CPU kernels where they apply.

use burn::prelude::*;
use burn::tensor::ops::ConvOptions;

/// 2-D convolution, a drop-in for [`burn::tensor::module::conv2d`] (PyTorch's `F.conv2d`):
/// same arguments, same result, differentiable.
///
/// On flex with f32 tensors it runs burn-zoo's im2col + GEMM kernels (forward, and both
/// gradients under `.autodiff()`); elsewhere it is Burn's `conv2d`.
///
/// # Shapes
/// - `x`: `[N, C_in, H, W]`
/// - `weight`: `[C_out, C_in / groups, KH, KW]`
/// - `bias`: `[C_out]`
/// - returns `[N, C_out, H_out, W_out]`,
///   `H_out = (H + pad_begin + pad_end − dilation·(KH − 1) − 1) / stride + 1`
///
/// # Panics
/// If the shapes disagree (the message names the argument), as Burn's `conv2d`.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    #[cfg(feature = "flex")]
    {
        use crate::kernels::{ZooKernels, on_flex};
        use burn::backend::Dispatch;

        let mut tensors = vec![(x.device(), x.dtype()), (weight.device(), weight.dtype())];
        tensors.extend(bias.as_ref().map(|b| (b.device(), b.dtype())));
        if on_flex(&tensors) {
            check(&x, &weight, bias.as_ref(), &options);
            let (x, weight) = (x.into_dispatch(), weight.into_dispatch());
            return Tensor::from_dispatch(match bias {
                Some(bias) => <Dispatch as ZooKernels>::zoo_conv2d_bias(
                    x,
                    weight,
                    bias.into_dispatch(),
                    options,
                ),
                None => <Dispatch as ZooKernels>::zoo_conv2d(x, weight, options),
            });
        }
    }
    burn::tensor::module::conv2d(x, weight, bias, options)
}

/// The shape checks of Burn's `conv2d`, with messages naming the argument.
#[cfg(feature = "flex")]
fn check(x: &Tensor<4>, weight: &Tensor<4>, bias: Option<&Tensor<1>>, options: &ConvOptions<2>) {
    let [_, c_in, h, w] = x.dims();
    let [c_out, cpg, kh, kw] = weight.dims();
    assert!(
        cpg * options.groups == c_in && c_out % options.groups == 0,
        "conv2d: weight {:?} with groups {} does not fit x {:?} (C_in = {c_in})",
        weight.dims(),
        options.groups,
        x.dims()
    );
    if let Some(bias) = bias {
        assert_eq!(
            bias.dims(),
            [c_out],
            "conv2d: bias must be [C_out = {c_out}]"
        );
    }
    for (axis, (len, k)) in [(h, kh), (w, kw)].into_iter().enumerate() {
        let (begin, end) = options.padding[axis];
        let span = options.dilation[axis] * (k - 1) + 1;
        assert!(
            len + begin + end >= span,
            "conv2d: the dilated kernel ({span}) is larger than the padded input ({}) along axis {axis} of x {:?}",
            len + begin + end,
            x.dims()
        );
    }
}
