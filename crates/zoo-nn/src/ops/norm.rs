//! BatchNorm (training and inference) and per-channel affine maps through burn-zoo's CPU
//! kernels where they apply.

use burn::prelude::*;
use burn::tensor::module::BatchNormTrainOutput;

#[cfg(feature = "flex")]
use crate::kernels::{ZooKernels, on_flex};
#[cfg(feature = "flex")]
use burn::backend::Dispatch;

/// `[1, C, 1, …]`: a `[C]` tensor shaped to broadcast over `[N, C, …]`.
fn per_channel<const D: usize>(t: Tensor<1>) -> Tensor<D> {
    let mut shape = [1; D];
    shape[1] = t.dims()[0];
    t.reshape(shape)
}

fn check_channels<const D: usize>(op: &str, x: &Tensor<D>, named: &[(&str, &Tensor<1>)]) {
    assert!(D >= 2, "{op}: input must be [N, C, …], got rank {D}");
    let c = x.dims()[1];
    for (name, t) in named {
        assert_eq!(
            t.dims(),
            [c],
            "{op}: {name} must be [C] with C = {c} (input {:?})",
            x.dims()
        );
    }
}

/// Training-mode batch normalisation: normalises `input` with its own per-channel mean and
/// biased variance over batch and space, then `· gamma + beta`. A drop-in for
/// [`burn::tensor::module::batch_norm_train`] (PyTorch's `F.batch_norm(training=True)`); the
/// returned statistics are detached, and do not update any running statistics.
///
/// On flex with f32 tensors this is two passes over the input forward and two backward
/// (Burn's generic composition makes about ten).
///
/// # Shapes
/// - `input`: `[N, C, …]`; `gamma`, `beta`: `[C]`
/// - returns the output (shape of `input`), mean and variance (`[C]`)
pub fn batch_norm_train<const D: usize>(
    input: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> BatchNormTrainOutput<D> {
    batch_norm_train_add_relu(input, gamma, beta, None, false, epsilon)
}

/// [`batch_norm_train`], then `+ residual` when there is one and a ReLU when `relu`: the
/// tail of a ResNet block in training, `relu(bn(conv(x)) + identity)`, and of every
/// conv–BN–ReLU layer.
///
/// On flex with f32 tensors the addition and the ReLU happen in the BatchNorm's output pass,
/// and their gradients in its backward passes: no pass of their own over the activations
/// either way. Elsewhere it is Burn's `batch_norm_train`, `+` and `relu`, with the same
/// results (the ReLU is Burn's: 0 where the value is ≤ 0, its gradient 0 where the output
/// is ≤ 0).
///
/// # Shapes
/// - `input`, `residual`: `[N, C, …]`; `gamma`, `beta`: `[C]`
/// - returns the output (shape of `input`), mean and variance (`[C]`)
pub fn batch_norm_train_add_relu<const D: usize>(
    input: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    residual: Option<Tensor<D>>,
    relu: bool,
    epsilon: f64,
) -> BatchNormTrainOutput<D> {
    check_channels(
        "batch_norm_train",
        &input,
        &[("gamma", &gamma), ("beta", &beta)],
    );
    if let Some(r) = &residual {
        assert_eq!(
            r.dims(),
            input.dims(),
            "batch_norm_train: residual must have the input's shape"
        );
    }
    #[cfg(feature = "flex")]
    if on_flex(&[
        (input.device(), input.dtype()),
        (gamma.device(), gamma.dtype()),
        (beta.device(), beta.dtype()),
    ]) && residual
        .as_ref()
        .is_none_or(|r| on_flex(&[(r.device(), r.dtype())]))
    {
        let (x, gamma, beta) = (
            input.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
        );
        let (output, mean, variance) = match residual {
            Some(r) => <Dispatch as ZooKernels>::zoo_batch_norm_train_add(
                x,
                gamma,
                beta,
                r.into_dispatch(),
                relu,
                epsilon,
            ),
            None => <Dispatch as ZooKernels>::zoo_batch_norm_train(x, gamma, beta, relu, epsilon),
        };
        return BatchNormTrainOutput {
            output: Tensor::from_dispatch(output),
            mean: Tensor::from_dispatch(mean),
            variance: Tensor::from_dispatch(variance),
        };
    }
    let mut result = burn::tensor::module::batch_norm_train(input, gamma, beta, epsilon);
    if let Some(r) = residual {
        result.output = result.output + r;
    }
    if relu {
        result.output = burn::tensor::activation::relu(result.output);
    }
    result
}

/// Inference-mode batch normalisation with given statistics,
/// `(input − mean) / √(variance + ε) · gamma + beta`: a drop-in for
/// [`burn::tensor::module::batch_norm`]. Computed as one per-channel affine map
/// ([`channel_affine`]); differentiable in every argument.
///
/// # Shapes
/// - `input`: `[N, C, …]`; `gamma`, `beta`, `mean`, `variance`: `[C]`
/// - returns the shape of `input`
pub fn batch_norm<const D: usize>(
    input: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    mean: Tensor<1>,
    variance: Tensor<1>,
    epsilon: f64,
) -> Tensor<D> {
    check_channels(
        "batch_norm",
        &input,
        &[
            ("gamma", &gamma),
            ("beta", &beta),
            ("mean", &mean),
            ("variance", &variance),
        ],
    );
    #[cfg(feature = "flex")]
    if on_flex(&[(input.device(), input.dtype())]) {
        let scale = gamma / variance.add_scalar(epsilon).sqrt();
        let shift = beta - mean * scale.clone();
        return channel_affine(input, scale, shift);
    }
    burn::tensor::module::batch_norm(input, gamma, beta, mean, variance, epsilon)
}

/// Per-channel affine map `input · scale[c] + shift[c]` (what an inference BatchNorm and a
/// `FrozenBatchNorm2d` reduce to); differentiable in every argument.
///
/// # Shapes
/// - `input`: `[N, C, …]`; `scale`, `shift`: `[C]`
/// - returns the shape of `input`
pub fn channel_affine<const D: usize>(
    input: Tensor<D>,
    scale: Tensor<1>,
    shift: Tensor<1>,
) -> Tensor<D> {
    check_channels(
        "channel_affine",
        &input,
        &[("scale", &scale), ("shift", &shift)],
    );
    #[cfg(feature = "flex")]
    if on_flex(&[
        (input.device(), input.dtype()),
        (scale.device(), scale.dtype()),
        (shift.device(), shift.dtype()),
    ]) {
        return Tensor::from_dispatch(<Dispatch as ZooKernels>::zoo_channel_affine(
            input.into_dispatch(),
            scale.into_dispatch(),
            shift.into_dispatch(),
        ));
    }
    input * per_channel(scale) + per_channel(shift)
}
