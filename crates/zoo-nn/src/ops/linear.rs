//! Linear (fully connected) layers through burn-zoo's CPU kernels where they apply.

use burn::nn::Linear;
use burn::prelude::*;

/// `x · weight + bias` over the last dimension: a drop-in for
/// [`burn::tensor::module::linear`] (PyTorch's `F.linear` with the weight transposed, as Burn
/// stores it), differentiable.
///
/// On flex with f32 tensors every leading dimension is folded into the rows of one product
/// split over the pool, the bias written into the output before it accumulates (Burn keeps a
/// `[windows, 49, C]` input as one small product per window, each packing the weight again,
/// and adds the bias in another pass); the gradients are two products and a column sum.
/// Elsewhere it is Burn's `linear`.
///
/// # Shapes
/// - `x`: `[…, d_in]`; `weight`: `[d_in, d_out]`; `bias`: `[d_out]`
/// - returns `[…, d_out]`
///
/// # Panics
/// If the shapes disagree.
pub fn linear<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    {
        use crate::kernels::{ZooKernels, on_flex};
        use burn::backend::Dispatch;

        let mut tensors = vec![(x.device(), x.dtype()), (weight.device(), weight.dtype())];
        tensors.extend(bias.as_ref().map(|b| (b.device(), b.dtype())));
        if D >= 1 && on_flex(&tensors) {
            let [d_in, d_out] = weight.dims();
            assert_eq!(
                x.dims()[D - 1],
                d_in,
                "linear: x {:?} must end in d_in = {d_in} (weight {:?})",
                x.dims(),
                weight.dims()
            );
            if let Some(b) = &bias {
                assert_eq!(b.dims(), [d_out], "linear: bias must be [d_out = {d_out}]");
            }
            let (x, weight) = (x.into_dispatch(), weight.into_dispatch());
            return Tensor::from_dispatch(match bias {
                Some(bias) => {
                    <Dispatch as ZooKernels>::zoo_linear_bias(x, weight, bias.into_dispatch())
                }
                None => <Dispatch as ZooKernels>::zoo_linear(x, weight),
            });
        }
    }
    burn::tensor::module::linear(x, weight, bias)
}

/// [`linear`] with the parameters of a Burn [`Linear`] module: what `layer.forward(x)`
/// computes.
///
/// # Shapes
/// - `x`: `[…, d_in]`; returns `[…, d_out]`
pub fn linear_layer<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    linear(x, layer.weight.val(), layer.bias.as_ref().map(|b| b.val()))
}
