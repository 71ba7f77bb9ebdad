//! Activations whose Burn kernels differ from PyTorch on some backend.

use burn::prelude::*;

/// Exact GELU, `x · Φ(x) = x/2 · (1 + erf(x/√2))` (PyTorch's `nn.GELU()` default), with its
/// exact derivative on every backend.
///
/// Burn 0.22's `activation::gelu` computes this forward everywhere, but its default
/// `gelu_backward` (used by ndarray and the CubeCL backends) is the derivative of the *tanh
/// approximation*, off by up to ~2e-3 relative. Flex overrides both with the exact fused
/// kernels, so flex uses Burn's; elsewhere the function is composed from `erf`, which lets
/// autodiff use `erf`'s exact derivative.
///
/// # Shapes
/// - any; output has the input's shape
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if crate::kernels::on_flex(&[(x.device(), x.dtype())]) {
        return burn::tensor::activation::gelu(x);
    }
    let cdf = x
        .clone()
        .div_scalar(std::f64::consts::SQRT_2)
        .erf()
        .add_scalar(1.0)
        .mul_scalar(0.5);
    x * cdf
}
