//! DeepLabV3 (torchvision), DeepLabV3+ and U-Net (smp) against their upstream classes, with
//! narrowed encoders, weights from the upstream state-dict files.

use burn::prelude::*;
use zoo_models::deeplab::{DeepLabV3Config, DeepLabV3PlusConfig};
use zoo_models::resnet::ResNetDepth;
use zoo_models::unet::{UnetConfig, UnetDecoderConfig};
use zoo_testing::{FWD_TOL, Fixture, assert_close, for_each_device};

use crate::{cases, spread, with_weights, zero_bias};

/// The DeepLabV3 of a forward case.
pub fn deeplabv3_config(case: &Fixture) -> DeepLabV3Config {
    DeepLabV3Config::new(case.param("num_classes"))
        .with_depth(case.param("depth"))
        .with_base_channels(case.param("base_channels"))
        .with_head_channels(case.param("head_channels"))
        .with_atrous_rates(case.param("atrous_rates"))
        .with_aux_head(case.param("aux_head"))
}

/// The U-Net of a forward case.
pub fn unet_config(case: &Fixture) -> UnetConfig {
    UnetConfig::new(case.param("num_classes"))
        .with_depth(case.param("depth"))
        .with_base_channels(case.param("base_channels"))
        .with_decoder_channels(case.param("decoder_channels"))
}

#[test]
fn deeplabv3_matches_torchvision() {
    for case in cases("deeplabv3") {
        let config = deeplabv3_config(&case);
        for_each_device(|name, device| {
            let model = config.init(device);
            let map = model.key_map();
            let model = with_weights("deeplabv3", &case, model, &map);
            let out = model.forward(case.float("input", device));
            let what = format!("deeplabv3/{} on {name}", case.name);
            assert_close(out.out, case.float("output", device), FWD_TOL, &what);
            match (out.aux, case.has("aux")) {
                (Some(aux), true) => assert_close(aux, case.float("aux", device), FWD_TOL, &what),
                (None, false) => {}
                _ => panic!("{what}: aux head presence differs"),
            }
        });
    }
}

#[test]
fn deeplabv3plus_matches_smp() {
    for case in cases("deeplabv3plus") {
        let config = DeepLabV3PlusConfig::new(case.param("num_classes"))
            .with_depth(case.param("depth"))
            .with_base_channels(case.param("base_channels"))
            .with_output_stride(case.param("output_stride"))
            .with_decoder_channels(case.param("decoder_channels"));
        for_each_device(|name, device| {
            let model = config.init(device);
            let map = model.key_map();
            let model = with_weights("deeplabv3plus", &case, model, &map);
            let what = format!("deeplabv3plus/{} on {name}", case.name);
            let out = model.forward(case.float("input", device));
            assert_close(out, case.float("output", device), FWD_TOL, &what);
        });
    }
}

#[test]
fn unet_matches_smp() {
    for case in cases("unet") {
        let config = unet_config(&case);
        for_each_device(|name, device| {
            let model = config.init(device);
            let map = model.key_map();
            let model = with_weights("unet", &case, model, &map);
            let what = format!("unet/{} on {name}", case.name);
            let out = model.forward(case.float("input", device));
            assert_close(out, case.float("output", device), FWD_TOL, &what);
        });
    }
}

#[test]
fn segmentation_configs_round_trip_and_name_bad_fields() {
    let json = serde_json::to_string(&DeepLabV3Config::new(21).with_aux_head(true)).unwrap();
    let back: DeepLabV3Config = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    let json = serde_json::to_string(&DeepLabV3PlusConfig::new(2).with_output_stride(8)).unwrap();
    let back: DeepLabV3PlusConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    let json = serde_json::to_string(&UnetConfig::new(2).with_depth(ResNetDepth::R18)).unwrap();
    let back: UnetConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    let device = Device::flex();
    zoo_testing::assert_panics_with(
        || {
            drop(
                DeepLabV3PlusConfig::new(2)
                    .with_output_stride(32)
                    .init(&device),
            )
        },
        &["DeepLabV3PlusConfig", "output_stride", "8 or 16", "got 32"],
    );
    zoo_testing::assert_panics_with(
        || drop(DeepLabV3Config::new(2).with_output_stride(4).init(&device)),
        &["DeepLabV3Config", "output_stride", "got 4"],
    );
    zoo_testing::assert_panics_with(
        || {
            drop(
                UnetDecoderConfig::new(vec![3, 8, 8, 16])
                    .with_decoder_channels(vec![8, 4])
                    .init(&device),
            )
        },
        &[
            "UnetDecoderConfig",
            "decoder_channels",
            "3 entries",
            "got 2",
        ],
    );
    let unet = UnetConfig::new(2)
        .with_depth(ResNetDepth::R18)
        .with_base_channels(2)
        .with_decoder_channels(vec![4, 4, 4, 4, 4])
        .init(&device);
    zoo_testing::assert_panics_with(
        || drop(unet.forward(Tensor::zeros([1, 3, 48, 40], &device))),
        &["Unet", "multiples of 32", "48×40"],
    );
}

#[test]
fn from_scratch_weights_are_drawn_as_upstream_draws_them() {
    for_each_device(|name, device| {
        // torchvision ResNet: kaiming_normal_(fan_out, relu) → std √(2 / (out · k²)).
        let unet = UnetConfig::new(3)
            .with_base_channels(16)
            .with_decoder_channels(vec![32, 32, 16, 16, 16])
            .init(device);
        let (_, std) = spread(unet.encoder.layer3[0].conv1.weight.val());
        let expected = (2.0f32 / (64.0 * 9.0)).sqrt();
        assert!(
            (std / expected - 1.0).abs() < 0.05,
            "{name}: encoder std {std} vs {expected}"
        );
        // smp decoder: kaiming_uniform_(fan_in, relu) → U(±√(6 / fan_in)).
        let conv = &unet.decoder.blocks[1].conv1.conv;
        let fan_in = (32 + 32) * 9; // block 0 output + C3 of the width-16 encoder
        let (max, std) = spread(conv.weight.val());
        let bound = (6.0f32 / fan_in as f32).sqrt();
        assert!(
            max <= bound && max > 0.95 * bound,
            "{name}: decoder max {max} vs {bound}"
        );
        assert!(
            (std / (bound / 3f32.sqrt()) - 1.0).abs() < 0.05,
            "{name}: decoder std {std}"
        );
        // smp head: xavier_uniform_, bias 0.
        let (max, _) = spread(unet.head.conv.weight.val());
        assert!(
            max <= (6.0f32 / ((16 + 3) * 9) as f32).sqrt(),
            "{name}: head max {max}"
        );
        assert!(zero_bias(&unet.head.conv.bias), "{name}: head bias");
        // torchvision's DeepLabV3 heads keep PyTorch's default conv init: U(±1/√fan_in).
        let deeplab = DeepLabV3Config::new(3).with_base_channels(8).init(device);
        let (max, _) = spread(deeplab.head.classifier.weight.val());
        assert!(
            max <= 1.0 / (256.0f32).sqrt(),
            "{name}: deeplab classifier max {max}"
        );
        let (_, std) = spread(deeplab.backbone.layer3[0].conv2.weight.val());
        let expected = (2.0f32 / (32.0 * 9.0)).sqrt();
        assert!(
            (std / expected - 1.0).abs() < 0.1,
            "{name}: backbone std {std} vs {expected}"
        );
    });
}
