//! The upstream libraries' weight initialisation for models trained from scratch.
//!
//! Burn's `Conv2d` default (Kaiming-uniform with gain 1/√3 over fan-in) is PyTorch's default
//! `nn.Conv2d` initialisation, which torchvision's segmentation heads keep. torchvision's
//! ResNet and smp's decoders and heads re-initialise their convolutions; a model built here
//! draws its weights as they do, so that a from-scratch run starts where upstream's would:
//! - [`torchvision_resnet`]: `kaiming_normal_(mode="fan_out", nonlinearity="relu")`,
//!   `std = √(2 / fan_out)` (torchvision `ResNet.__init__`);
//! - [`smp_decoder`]: `kaiming_uniform_(mode="fan_in", nonlinearity="relu")`, bias 0
//!   (smp `initialize_decoder`);
//! - [`smp_head`]: `xavier_uniform_`, bias 0 (smp `initialize_head`);
//! - [`timm_linear`]: `trunc_normal_(std=.02)` (cut at ±2, i.e. ±100 σ: a plain normal in
//!   f32), bias 0 (timm Swin `_init_weights`).
//!
//! Fans follow PyTorch: `fan_in = in/groups · kh · kw`, `fan_out = out · kh · kw`.

use burn::module::Param;
use burn::nn::Initializer;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use zoo_nn::layers::ConvNormAct;

/// torchvision ResNet: Kaiming normal over fan-out for ReLU.
pub(crate) fn torchvision_resnet() -> Initializer {
    Initializer::KaimingNormal {
        gain: std::f64::consts::SQRT_2,
        fan_out_only: true,
    }
}

/// Redraws a convolution's weight from `init` (PyTorch's fans) and zeroes its bias.
pub(crate) fn redraw(conv: &mut Conv2d, init: &Initializer) {
    let [out, inp, kh, kw] = conv.weight.dims();
    let device = conv.weight.device();
    let weight = init.init_with(
        [out, inp, kh, kw],
        Some(inp * kh * kw),
        Some(out * kh * kw),
        &device,
    );
    conv.weight = weight;
    if let Some(bias) = &conv.bias {
        conv.bias = Some(Param::from_tensor(Tensor::zeros(bias.dims(), &device)));
    }
}

/// smp decoder convolutions: Kaiming uniform over fan-in for ReLU, bias 0.
pub(crate) fn smp_decoder(block: &mut ConvNormAct) {
    let init = Initializer::KaimingUniform {
        gain: std::f64::consts::SQRT_2,
        fan_out_only: false,
    };
    redraw(&mut block.conv, &init);
    if let Some(pointwise) = &mut block.pointwise {
        redraw(pointwise, &init);
    }
}

/// smp segmentation heads: Xavier uniform, bias 0.
pub(crate) fn smp_head(conv: &mut Conv2d) {
    redraw(conv, &Initializer::XavierUniform { gain: 1.0 });
}

/// timm Linear layers: normal with std 0.02, bias 0.
pub(crate) fn timm_linear(linear: &mut Linear) {
    let [inp, out] = linear.weight.dims();
    let device = linear.weight.device();
    let init = Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    };
    linear.weight = init.init_with([inp, out], Some(inp), Some(out), &device);
    if let Some(bias) = &linear.bias {
        linear.bias = Some(Param::from_tensor(Tensor::zeros(bias.dims(), &device)));
    }
}
