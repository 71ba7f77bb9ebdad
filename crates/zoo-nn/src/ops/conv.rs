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

/// What follows a convolution in an inference block, for [`conv2d_affine`]: a per-channel
/// affine map (an inference BatchNorm: `scale = γ / √(σ² + ε)`, `shift = β − μ · scale`),
/// a residual added after it, and a ReLU.
#[derive(Debug, Clone)]
pub struct ConvEpilogue {
    /// Per output channel, `[C_out]`.
    pub scale: Tensor<1>,
    /// Per output channel, `[C_out]`.
    pub shift: Tensor<1>,
    /// Added after the affine map, `[N, C_out, H_out, W_out]`.
    pub residual: Option<Tensor<4>>,
    /// Whether a ReLU ends the block.
    pub relu: bool,
}

/// `relu?(conv2d(x, weight, bias) · scale[c] + shift[c] + residual?)`: a convolution, an
/// inference BatchNorm, a residual connection and a ReLU in one call. The same result as the
/// four operations one after another (and differentiable, as their composition).
///
/// On flex with f32 tensors the affine map, the residual and the ReLU are applied to each
/// output tile while it is in cache, instead of three more passes over the output.
///
/// # Shapes
/// - `x`: `[N, C_in, H, W]`; `weight`: `[C_out, C_in / groups, KH, KW]`; `bias`: `[C_out]`
/// - returns `[N, C_out, H_out, W_out]` (as [`conv2d`])
///
/// # Panics
/// If the shapes disagree (the message names the argument).
pub fn conv2d_affine(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
    epilogue: ConvEpilogue,
) -> Tensor<4> {
    let ConvEpilogue {
        scale,
        shift,
        residual,
        relu,
    } = epilogue;
    let c_out = weight.dims()[0];
    assert!(
        scale.dims() == [c_out] && shift.dims() == [c_out],
        "conv2d_affine: scale {:?} and shift {:?} must be [C_out = {c_out}]",
        scale.dims(),
        shift.dims()
    );
    #[cfg(feature = "flex")]
    {
        use crate::kernels::{ZooKernels, on_flex};
        use burn::backend::Dispatch;

        let mut tensors = vec![
            (x.device(), x.dtype()),
            (weight.device(), weight.dtype()),
            (scale.device(), scale.dtype()),
            (shift.device(), shift.dtype()),
        ];
        tensors.extend(bias.as_ref().map(|b| (b.device(), b.dtype())));
        tensors.extend(residual.as_ref().map(|r| (r.device(), r.dtype())));
        if on_flex(&tensors) {
            check(&x, &weight, bias.as_ref(), &options);
            // conv · scale + shift with a bias: (conv + bias) · scale + shift.
            let shift = match bias {
                Some(bias) => shift + bias * scale.clone(),
                None => shift,
            };
            let (x, weight) = (x.into_dispatch(), weight.into_dispatch());
            let (scale, shift) = (scale.into_dispatch(), shift.into_dispatch());
            return Tensor::from_dispatch(match residual {
                Some(residual) => <Dispatch as ZooKernels>::zoo_conv2d_affine_add(
                    x,
                    weight,
                    scale,
                    shift,
                    residual.into_dispatch(),
                    relu,
                    options,
                ),
                None => <Dispatch as ZooKernels>::zoo_conv2d_affine(
                    x, weight, scale, shift, relu, options,
                ),
            });
        }
    }
    let y = crate::ops::channel_affine(conv2d(x, weight, bias, options), scale, shift);
    let y = match residual {
        Some(residual) => y + residual,
        None => y,
    };
    if relu {
        burn::tensor::activation::relu(y)
    } else {
        y
    }
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
