//! Loading upstream `state.*` fixture tensors into burn-zoo modules, in eval mode, for the
//! module parity tests.

use burn::module::{Param, RunningState};
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::norm::Normalization;
use zoo_nn::layers::ConvNormAct;
use zoo_testing::{Fixture, Inputs};

/// Names `n` with a `grad_n` in the case, except the output: what `check_case` compares.
pub fn differentiable(case: &Fixture) -> Vec<String> {
    case.names()
        .into_iter()
        .filter_map(|n| n.strip_prefix("grad_").map(str::to_string))
        .filter(|n| n != "output")
        .collect()
}

fn state(key: &str, field: &str) -> String {
    format!("state.{key}.{field}")
}

/// `{key}.weight` / `{key}.bias` into a convolution.
pub fn conv(mut c: Conv2d, x: &Inputs, key: &str) -> Conv2d {
    c.weight = Param::from_tensor(x.float(&state(key, "weight")));
    c.bias = x.float_opt(&state(key, "bias")).map(Param::from_tensor);
    c
}

/// `{key}.weight` / `{key}.bias` into a transposed convolution.
pub fn conv_transpose(mut c: ConvTranspose2d, x: &Inputs, key: &str) -> ConvTranspose2d {
    c.weight = Param::from_tensor(x.float(&state(key, "weight")));
    c.bias = x.float_opt(&state(key, "bias")).map(Param::from_tensor);
    c
}

/// BatchNorm `{key}.*` (affine parameters and running statistics), in inference mode, as
/// the eval-mode reference — on autodiff devices too.
pub fn batch_norm(mut norm: Normalization, x: &Inputs, key: &str) -> Normalization {
    let Normalization::Batch(bn) = &mut norm else {
        panic!("{key}: expected a BatchNorm");
    };
    bn.gamma = Param::from_tensor(x.float(&state(key, "weight")));
    bn.beta = Param::from_tensor(x.float(&state(key, "bias")));
    let stat = |s: &str| RunningState::new(x.case().float(&state(key, s), &x.device));
    bn.running_mean = stat("running_mean");
    bn.running_var = stat("running_var");
    bn.training = Param::from_bool(false);
    norm
}

/// A conv-norm-act block from torchvision-style `{conv}` and `{bn}` keys; a separable block
/// reads smp's `{conv}.0` (depthwise) and `{conv}.1` (pointwise).
pub fn block(b: ConvNormAct, x: &Inputs, conv_key: &str, bn_key: &str) -> ConvNormAct {
    let (conv_, pointwise) = match b.pointwise {
        Some(p) => (
            conv(b.conv, x, &format!("{conv_key}.0")),
            Some(conv(p, x, &format!("{conv_key}.1"))),
        ),
        None => (conv(b.conv, x, conv_key), None),
    };
    ConvNormAct {
        conv: conv_,
        pointwise,
        norm: batch_norm(b.norm, x, bn_key),
        act: b.act,
    }
}

/// `{key}.weight` (PyTorch `[out, in]`, transposed to Burn's `[in, out]`) and `{key}.bias`.
pub fn linear(mut l: burn::nn::Linear, x: &Inputs, key: &str) -> burn::nn::Linear {
    l.weight = Param::from_tensor(x.float_transposed(&state(key, "weight")));
    l.bias = x.float_opt(&state(key, "bias")).map(Param::from_tensor);
    l
}

/// `{key}.weight` / `{key}.bias` into a LayerNorm.
pub fn layer_norm(mut n: burn::nn::LayerNorm, x: &Inputs, key: &str) -> burn::nn::LayerNorm {
    n.gamma = Param::from_tensor(x.float(&state(key, "weight")));
    n.beta = x.float_opt(&state(key, "bias")).map(Param::from_tensor);
    n
}
