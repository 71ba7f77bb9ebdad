//! The fused SGD-with-momentum update behind [`crate::optim::Sgd`].

use burn::prelude::*;

/// The scalars of one SGD-with-momentum update ([`sgd_momentum`]), in the precision
/// `burn::optim::Sgd` applies them to f32 tensors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor.
    pub momentum: f32,
    /// `1 − dampening`, the factor of the gradient in the momentum buffer.
    pub dampening_complement: f32,
    /// L2 penalty added to the gradient (`grad + weight_decay · param`), if any.
    pub weight_decay: Option<f32>,
    /// Nesterov momentum.
    pub nesterov: bool,
}

impl SgdStep {
    /// The step's scalars, rounded to f32 as Burn's scalar operations round them.
    pub fn new(
        lr: f64,
        momentum: f32,
        dampening: f64,
        weight_decay: Option<f32>,
        nesterov: bool,
    ) -> Self {
        Self {
            lr: lr as f32,
            momentum,
            dampening_complement: (1.0 - dampening) as f32,
            weight_decay,
            nesterov,
        }
    }
}

/// One SGD-with-momentum update of `param` (any shape) from its gradient and its momentum
/// buffer: `g = grad (+ weight_decay · param)`, `v = (1 − dampening) · g + momentum ·
/// velocity`, returns `(param − lr · (nesterov ? g + momentum · v : v), v)`, the operations
/// of `burn::optim::Sgd` in its order (the same results to the bit). One pass on flex;
/// Burn's operations elsewhere. Not differentiable.
///
/// # Shapes
/// - `param`, `grad`, `velocity`: one shape, returned for both outputs.
pub fn sgd_momentum<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    velocity: Tensor<D>,
    step: SgdStep,
) -> (Tensor<D>, Tensor<D>) {
    #[cfg(feature = "flex")]
    if crate::kernels::on_flex(&[
        (param.device(), param.dtype()),
        (grad.device(), grad.dtype()),
        (velocity.device(), velocity.dtype()),
    ]) {
        use crate::kernels::ZooKernels;
        let (p, v) = <burn::backend::Dispatch as ZooKernels>::zoo_sgd_momentum(
            param.into_dispatch(),
            grad.into_dispatch(),
            velocity.into_dispatch(),
            step,
        );
        return (Tensor::from_dispatch(p), Tensor::from_dispatch(v));
    }
    let grad = match step.weight_decay {
        Some(decay) => param.clone().mul_scalar(decay).add(grad),
        None => grad,
    };
    let velocity = grad
        .clone()
        .mul_scalar(step.dampening_complement)
        .add(velocity.mul_scalar(step.momentum));
    let update = if step.nesterov {
        velocity.clone().mul_scalar(step.momentum).add(grad)
    } else {
        velocity.clone()
    };
    (param - update.mul_scalar(step.lr), velocity)
}
