//! DeepLabV3 (torchvision), DeepLabV3+ and U-Net (smp) against their upstream classes, with
//! narrowed encoders, weights from the upstream state-dict files.

use burn::prelude::*;
use zoo_models::deeplab::{DeepLabV3Config, DeepLabV3PlusConfig};
use zoo_models::unet::{UnetConfig, UnetDecoderConfig};
use zoo_testing::{FWD_TOL, assert_close, for_each_device};

use crate::{cases, with_weights};

#[test]
fn deeplabv3_matches_torchvision() {
    for case in cases("deeplabv3") {
        let config = DeepLabV3Config::new(case.param("num_classes"))
            .with_depth(case.param("depth"))
            .with_base_channels(case.param("base_channels"))
            .with_head_channels(case.param("head_channels"))
            .with_atrous_rates(case.param("atrous_rates"))
            .with_aux_head(case.param("aux_head"));
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
        let config = UnetConfig::new(case.param("num_classes"))
            .with_depth(case.param("depth"))
            .with_base_channels(case.param("base_channels"))
            .with_decoder_channels(case.param("decoder_channels"));
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
    let json = serde_json::to_string(&UnetConfig::new(2).with_depth(18)).unwrap();
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
        .with_depth(18)
        .with_base_channels(2)
        .with_decoder_channels(vec![4, 4, 4, 4, 4])
        .init(&device);
    zoo_testing::assert_panics_with(
        || drop(unet.forward(Tensor::zeros([1, 3, 48, 40], &device))),
        &["Unet", "multiples of 32", "48×40"],
    );
}
