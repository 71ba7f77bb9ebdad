//! Activations whose Burn kernels differ from PyTorch on some backend.

use burn::prelude::*;

/// Exact GELU, `x · Φ(x) = x/2 · (1 + erf(x/√2))` (PyTorch's `nn.GELU()` default), with its
/// exact derivative on every backend.
///
/// Burn 0.22's `activation::gelu` computes this forward everywhere, but its default
/// `gelu_backward` (used by ndarray and the CubeCL backends) is the derivative of the *tanh
/// approximation*, off by up to ~2e-3 relative. On flex (f32) burn-zoo's kernel computes both
/// directions exactly with a vectorised `erf` (flex's own calls a scalar one); elsewhere the
/// function is composed from `erf`, which lets autodiff use `erf`'s exact derivative.
///
/// # Shapes
/// - any; output has the input's shape
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if crate::kernels::on_flex(&[(x.device(), x.dtype())]) {
        use crate::kernels::ZooKernels;
        return Tensor::from_dispatch(<burn::backend::Dispatch as ZooKernels>::zoo_gelu(
            x.into_dispatch(),
        ));
    }
    let cdf = x
        .clone()
        .div_scalar(std::f64::consts::SQRT_2)
        .erf()
        .add_scalar(1.0)
        .mul_scalar(0.5);
    x * cdf
}
