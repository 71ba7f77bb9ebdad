//! `forward` through burn-zoo's kernels for Burn's own `Conv2d`, `BatchNorm` and
//! `Normalization` modules: the same module, the same parameters and result, faster on flex.

use burn::nn::BatchNorm;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::norm::Normalization;
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;

use crate::ops::{ConvEpilogue, batch_norm, batch_norm_train_add_relu, conv2d, conv2d_affine};

/// A Burn module's `forward` computed with [`crate::ops`]' kernels ([`conv2d`],
/// [`batch_norm_train_add_relu`], [`batch_norm`]): identical semantics (training mode, running
/// statistics, padding rules), so a model keeps Burn's modules and their records and only
/// calls `zoo_forward` where it called `forward`.
pub trait ZooForward<I> {
    /// The module's output type.
    type Output;
    /// The module's `forward`.
    fn zoo_forward(&self, input: I) -> Self::Output;
}

/// `(begin, end)` padding of one axis under Burn's `PaddingConfig2d::Same` rule.
fn same_padding(kernel: usize, stride: usize, len: usize) -> (usize, usize) {
    let out = len.div_ceil(stride);
    let total = if out > 0 {
        ((out - 1) * stride + kernel).saturating_sub(len)
    } else {
        0
    };
    (total / 2, total - total / 2)
}

impl ZooForward<Tensor<4>> for Conv2d {
    type Output = Tensor<4>;

    /// # Shapes
    /// - input: `[N, C_in, H, W]`
    /// - output: `[N, C_out, H_out, W_out]`
    fn zoo_forward(&self, input: Tensor<4>) -> Tensor<4> {
        let options = conv_options(self, &input);
        conv2d(
            input,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            options,
        )
    }
}

/// The convolution options of Burn's `Conv2d` for this input (its padding rule resolved).
fn conv_options(conv: &Conv2d, input: &Tensor<4>) -> ConvOptions<2> {
    let [_, _, h, w] = input.dims();
    let padding = match &conv.padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Same => [
            same_padding(conv.kernel_size[0], conv.stride[0], h),
            same_padding(conv.kernel_size[1], conv.stride[1], w),
        ],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(*top, *bottom), (*left, *right)],
    };
    ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups)
}

/// `relu?(bn(conv(input)) + residual?)`: a convolution, a BatchNorm, an optional residual
/// connection and an optional ReLU — torchvision's ResNet blocks and
/// `Conv2dNormActivation`, smp's `Conv2dReLU`.
///
/// In training mode (an autodiff device and the BatchNorm's training flag on) it is the
/// convolution, then the BatchNorm with the batch's statistics, the addition and the ReLU in
/// one [`batch_norm_train_add_relu`] call (on flex, one output pass; its running statistics
/// updated as Burn's `BatchNorm` does). Otherwise the BatchNorm is the affine map of its
/// running statistics and the block is one [`conv2d_affine`] call: on flex, a single pass.
///
/// # Shapes
/// - `input`: `[N, C_in, H, W]`; `residual`: `[N, C_out, H_out, W_out]`
/// - returns `[N, C_out, H_out, W_out]`
pub fn conv_bn(
    conv: &Conv2d,
    bn: &BatchNorm,
    input: Tensor<4>,
    residual: Option<Tensor<4>>,
    relu: bool,
) -> Tensor<4> {
    let device = input.device();
    if device.is_autodiff() && bn.training.is_enabled() {
        return train_batch_norm(bn, conv.zoo_forward(input), residual, relu);
    }
    let variance = bn.running_var.value().to_device(&device);
    let mean = bn.running_mean.value().to_device(&device);
    let scale = bn.gamma.val() / variance.add_scalar(bn.epsilon).sqrt();
    let shift = bn.beta.val() - mean * scale.clone();
    let options = conv_options(conv, &input);
    conv2d_affine(
        input,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        options,
        ConvEpilogue {
            scale,
            shift,
            residual,
            relu,
        },
    )
}

/// `relu?(bn(input) + residual?)` with `bn` in training mode (batch statistics), its
/// running statistics updated as Burn's `BatchNorm` does (`momentum`, biased variance);
/// the addition and the ReLU fused into the normalisation
/// ([`batch_norm_train_add_relu`]).
fn train_batch_norm<const D: usize>(
    bn: &BatchNorm,
    input: Tensor<D>,
    residual: Option<Tensor<D>>,
    relu: bool,
) -> Tensor<D> {
    let device = input.device();
    let result = batch_norm_train_add_relu(
        input,
        bn.gamma.val(),
        bn.beta.val(),
        residual,
        relu,
        bn.epsilon,
    );
    let blend = |running: Tensor<1>, batch: Tensor<1>| {
        running
            .to_device(&device)
            .mul_scalar(1.0 - bn.momentum)
            .add(batch.detach().mul_scalar(bn.momentum))
            .detach()
    };
    bn.running_mean
        .update(blend(bn.running_mean.value_sync(), result.mean));
    bn.running_var
        .update(blend(bn.running_var.value_sync(), result.variance));
    result.output
}

impl<const D: usize> ZooForward<Tensor<D>> for BatchNorm {
    type Output = Tensor<D>;

    /// Training mode (an autodiff device and the layer's training flag on) normalises with
    /// the batch's statistics and updates the running ones (`momentum`, biased variance, as
    /// Burn's `BatchNorm`); otherwise it uses the running statistics.
    ///
    /// # Shapes
    /// - input and output: `[N, C, …]`
    fn zoo_forward(&self, input: Tensor<D>) -> Tensor<D> {
        let device = input.device();
        if !(device.is_autodiff() && self.training.is_enabled()) {
            return batch_norm(
                input,
                self.gamma.val(),
                self.beta.val(),
                self.running_mean.value().to_device(&device),
                self.running_var.value().to_device(&device),
                self.epsilon,
            );
        }
        train_batch_norm(self, input, None, false)
    }
}

impl<const D: usize> ZooForward<Tensor<D>> for Normalization {
    type Output = Tensor<D>;

    /// BatchNorm through [`ZooForward`]; the other normalisations are their own `forward`.
    fn zoo_forward(&self, input: Tensor<D>) -> Tensor<D> {
        match self {
            Normalization::Batch(bn) => bn.zoo_forward(input),
            other => other.forward(input),
        }
    }
}
