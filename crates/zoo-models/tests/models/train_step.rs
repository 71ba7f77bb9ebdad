//! One training step of DeepLabV3 (torchvision), U-Net (smp) and Swin (timm) against PyTorch
//! in float64 (`tools/parity/models.py train_steps`): the forward cases' weights, training
//! mode (BatchNorm on batch statistics; dropout and stochastic depth off, so the step is
//! deterministic), cross-entropy against the fixture's targets — the loss, and its gradients
//! with respect to the input and to parameters from the stem to the heads, by upstream key.

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::store::ModuleSnapshot;
use burn::tensor::Gradients;
use burn::tensor::activation::log_softmax;
use zoo_models::weights::{KeyMap, save_upstream};
use zoo_testing::{
    FWD_TOL, Fixture, GRAD_TOL, assert_close, assert_data_close, for_each_autodiff_device,
};

use crate::segmentation::{deeplabv3_config, unet_config};
use crate::{cases, dir, swin, with_weights};

/// Replaces every parameter by its gradient (buffers, which have none, keep their value), so
/// that the upstream key names of the loader's map name the gradients too.
struct ToGradients<'a>(&'a Gradients);

impl ModuleMapper for ToGradients<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, value, _) = param.consume();
        let grad = value.grad(self.0).unwrap_or_else(|| value.inner());
        Param::initialized(id, grad)
    }
}

/// The gradients of `model`'s parameters under their upstream names.
fn upstream_gradients<M: Module + ModuleSnapshot>(
    model: M,
    grads: &Gradients,
    map: &KeyMap,
    tag: &str,
) -> Fixture {
    let path = std::env::temp_dir().join(format!(
        "zoo-models-train-step-{tag}-{}.safetensors",
        std::process::id()
    ));
    save_upstream(&model.map(&mut ToGradients(grads)), &path, map)
        .unwrap_or_else(|e| panic!("{tag}: {e}"));
    let fixture = Fixture::load(&path);
    std::fs::remove_file(&path).ok();
    fixture
}

/// Mean cross-entropy of `[B, C, H, W]` logits against `[B·H·W]` classes (row-major).
fn pixel_cross_entropy(logits: Tensor<4>, target: Tensor<1, Int>) -> Tensor<1> {
    let [b, c, h, w] = logits.dims();
    let flat = logits.permute([0, 2, 3, 1]).reshape([b * h * w, c]);
    cross_entropy(flat, target)
}

fn cross_entropy(logits: Tensor<2>, target: Tensor<1, Int>) -> Tensor<1> {
    log_softmax(logits, 1)
        .gather(1, target.unsqueeze_dim(1))
        .squeeze_dim::<1>(1)
        .mean()
        .neg()
}

fn forward_case(model: &str, step: &Fixture) -> Fixture {
    let name: String = step.param("case");
    cases(model)
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("train_step/{model}: no forward case {name}"))
}

/// Backpropagates `loss` of `model` (loaded through `map`) from `input`, and checks the loss
/// and the gradients against the fixture.
fn check<M: Module + ModuleSnapshot>(
    (name, on): (&str, &str),
    step: &Fixture,
    device: &Device,
    (model, map): (M, &KeyMap),
    loss: Tensor<1>,
    input: Tensor<4>,
) {
    let backward = loss.backward();
    let grad_input = input.grad(&backward).expect("the input requires grad");
    let grads = upstream_gradients(model, &backward, map, name);
    let what = |k: &str| format!("train_step/{name} {k} on {on}");
    assert_close(loss, step.float("loss", device), FWD_TOL, &what("loss"));
    assert_close(
        grad_input,
        step.float("grad_input", device),
        GRAD_TOL,
        &what("grad_input"),
    );
    let mut checked = 0;
    for key in step.names() {
        let Some(param) = key.strip_prefix("grad.") else {
            continue;
        };
        let err = assert_data_close(grads.data(param), step.data(&key), GRAD_TOL, &what(&key));
        println!("PARITY {} max_abs={err:.3e}", what(&key));
        checked += 1;
    }
    assert!(
        checked >= 5,
        "{}: only {checked} gradients",
        what("fixture")
    );
}

#[test]
fn deeplabv3_training_step_matches_torchvision() {
    let step = Fixture::load(dir("train_step").join("deeplabv3.safetensors"));
    let case = forward_case("deeplabv3", &step);
    for_each_autodiff_device(|on, device| {
        let model = deeplabv3_config(&case).init(device);
        let map = model.key_map();
        let mut model = with_weights("deeplabv3", &case, model, &map);
        let off = |d: burn::nn::Dropout| burn::nn::Dropout {
            training: Param::from_bool(false),
            ..d
        };
        model.head.aspp.dropout = off(model.head.aspp.dropout.clone());
        if let Some(aux) = model.aux.as_mut() {
            aux.dropout = off(aux.dropout.clone());
        }
        // Its own batch of 8 (see `train_steps` in tools/parity/models.py).
        let input = step.float::<4>("input", device).require_grad();
        let target = step.int::<3>("target", device).flatten::<1>(0, 2);
        let out = model.forward(input.clone());
        let aux = out.aux.expect("the case has an aux head");
        let loss = pixel_cross_entropy(out.out, target.clone())
            + pixel_cross_entropy(aux, target).mul_scalar(step.param::<f64>("aux_weight"));
        check(("deeplabv3", on), &step, device, (model, &map), loss, input);
    });
}

#[test]
fn unet_training_step_matches_smp() {
    let step = Fixture::load(dir("train_step").join("unet.safetensors"));
    let case = forward_case("unet", &step);
    for_each_autodiff_device(|on, device| {
        let model = unet_config(&case).init(device);
        let map = model.key_map();
        let model = with_weights("unet", &case, model, &map);
        let input = case.float::<4>("input", device).require_grad();
        let target = step.int::<3>("target", device).flatten::<1>(0, 2);
        let loss = pixel_cross_entropy(model.forward(input.clone()), target);
        check(("unet", on), &step, device, (model, &map), loss, input);
    });
}

#[test]
fn swin_training_step_matches_timm() {
    let step = Fixture::load(dir("train_step").join("swin.safetensors"));
    let case = forward_case("swin", &step);
    for_each_autodiff_device(|on, device| {
        let model = swin::config(&case).with_drop_path_rate(0.0).init(device);
        let map = model.key_map();
        let model = with_weights("swin", &case, model, &map);
        let input = case.float::<4>("input", device).require_grad();
        let loss = cross_entropy(
            model.forward(input.clone()),
            step.int::<1>("target", device),
        );
        check(("swin", on), &step, device, (model, &map), loss, input);
    });
}
