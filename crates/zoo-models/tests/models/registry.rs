//! The registry lists every model and builds each default configuration; small versions of
//! each family train: a backward pass gives finite gradients for every parameter, and
//! BatchNorm updates its running statistics in training and uses them in inference.

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use zoo_models::deeplab::{DeepLabV3Config, DeepLabV3PlusConfig};
use zoo_models::registry::{ModelConfig, config, names};
use zoo_models::resnet::{ResNetConfig, ResNetDepth};
use zoo_models::swin::SwinTransformerConfig;
use zoo_models::unet::UnetConfig;

#[test]
fn registry_lists_every_model_and_variant() {
    let names = names();
    for expected in [
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "deeplabv3_resnet50",
        "deeplabv3_resnet101",
        "deeplabv3plus_resnet34",
        "unet_resnet34",
        "swin_tiny_patch4_window7_224",
        "swin_small_patch4_window7_224",
        "swin_base_patch4_window7_224",
        "maskrcnn_resnet50_fpn",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for name in &names {
        let config = config(name, 7).unwrap_or_else(|| panic!("{name}: no config"));
        let json = serde_json::to_string(&config).unwrap();
        let _: ModelConfig = serde_json::from_str(&json).unwrap();
    }
    assert!(config("resnet19", 7).is_none());
    match config("deeplabv3_resnet101", 21) {
        Some(ModelConfig::DeepLabV3(c)) => {
            assert_eq!((c.depth, c.output_stride), (ResNetDepth::R101, 8))
        }
        other => panic!("{other:?}"),
    }
}

/// Checks every float parameter has a finite gradient.
struct FiniteGrads<'a> {
    grads: &'a burn::tensor::Gradients,
    checked: usize,
    missing: Vec<String>,
}

impl ModuleVisitor for FiniteGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !param.val().is_require_grad() {
            return; // BatchNorm running statistics
        }
        match param.val().grad(self.grads) {
            Some(g) => {
                let data = g.into_data();
                assert!(
                    data.iter::<f32>().all(f32::is_finite),
                    "non-finite gradient for a parameter of shape {:?}",
                    data.shape()
                );
                self.checked += 1;
            }
            None => self.missing.push(format!("{:?}", param.val().dims())),
        }
    }
}

fn check_grads<M: Module>(model: &M, loss: Tensor<1>, what: &str) {
    let grads = loss.backward();
    let mut visitor = FiniteGrads {
        grads: &grads,
        checked: 0,
        missing: Vec::new(),
    };
    model.visit(&mut visitor);
    assert!(
        visitor.missing.is_empty(),
        "{what}: parameters without gradient: {:?}",
        visitor.missing
    );
    assert!(visitor.checked > 0, "{what}: no parameters");
}

#[test]
fn every_family_backpropagates_finite_gradients() {
    let device = Device::flex().autodiff();
    let x = Tensor::<4>::random([2, 3, 64, 64], burn::tensor::Distribution::Default, &device);
    let m = ResNetConfig::new(ResNetDepth::R18)
        .with_base_channels(4)
        .with_num_classes(Some(3))
        .init(&device);
    check_grads(&m, m.forward(x.clone()).sum(), "resnet18");
    let m = DeepLabV3Config::new(3)
        .with_base_channels(2)
        .with_head_channels(8)
        .with_aux_head(true)
        .init(&device);
    let out = m.forward(x.clone());
    check_grads(&m, out.out.sum() + out.aux.unwrap().sum(), "deeplabv3");
    let m = DeepLabV3PlusConfig::new(3)
        .with_depth(ResNetDepth::R18)
        .with_base_channels(4)
        .with_decoder_channels(8)
        .init(&device);
    check_grads(&m, m.forward(x.clone()).sum(), "deeplabv3plus");
    let m = UnetConfig::new(3)
        .with_depth(ResNetDepth::R18)
        .with_base_channels(4)
        .with_decoder_channels(vec![8, 8, 4, 4, 4])
        .init(&device);
    check_grads(&m, m.forward(x.clone()).sum(), "unet");
    let m = SwinTransformerConfig::new()
        .with_img_size([64, 64])
        .with_embed_dim(8)
        .with_depths(vec![2, 2, 2, 2])
        .with_num_heads(vec![1, 2, 2, 4])
        .with_window_size(4)
        .with_num_classes(Some(3))
        .init(&device);
    check_grads(&m, m.forward(x).sum(), "swin");
}

#[test]
fn batch_norm_trains_its_statistics_and_uses_them_in_inference() {
    let device = Device::flex().autodiff();
    let model = ResNetConfig::new(ResNetDepth::R18)
        .with_base_channels(4)
        .with_num_classes(Some(3))
        .init(&device);
    let x = Tensor::<4>::random(
        [4, 3, 32, 32],
        burn::tensor::Distribution::Normal(1.0, 2.0),
        &device,
    );
    // The stem's BatchNorm sees conv1's output; its batch mean moves the running mean by
    // momentum 0.1 from 0.
    let conv = model.conv1.forward(x.clone());
    let batch_mean = conv
        .clone()
        .mean_dim(0)
        .mean_dim(2)
        .mean_dim(3)
        .reshape([4]);
    let centred = conv.clone() - batch_mean.clone().reshape([1, 4, 1, 1]);
    let biased_var = (centred.clone() * centred)
        .mean_dim(0)
        .mean_dim(2)
        .mean_dim(3)
        .reshape([4]);
    let _ = model.bn1.forward(conv);
    // Burn updates the running variance with the biased batch variance (PyTorch: unbiased,
    // n/(n−1) larger; README states the difference).
    zoo_testing::assert_close(
        model.bn1.running_var.value_sync(),
        biased_var.mul_scalar(0.1).add_scalar(0.9).detach(),
        1e-4,
        "running variance after one training step (biased)",
    );
    let running = model.bn1.running_mean.value_sync();
    zoo_testing::assert_close(
        running.clone(),
        batch_mean.mul_scalar(0.1).detach(),
        1e-5,
        "running mean after one training step",
    );
    // Inference (a non-autodiff device) uses the running statistics.
    let inference = model.valid();
    let bn = &inference.bn1;
    let conv = inference.conv1.forward(x.inner());
    let out = bn.forward(conv.clone());
    let var = bn.running_var.value_sync();
    let expected = (conv - bn.running_mean.value_sync().reshape([1, 4, 1, 1]))
        / var.add_scalar(bn.epsilon).sqrt().reshape([1, 4, 1, 1])
        * bn.gamma.val().reshape([1, 4, 1, 1])
        + bn.beta.val().reshape([1, 4, 1, 1]);
    zoo_testing::assert_close(out, expected, 1e-4, "inference uses running statistics");
}
