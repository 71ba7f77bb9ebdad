//! ResNet against torchvision's (narrowed) ResNet: logits and every feature level, for
//! ResNet-18/34/50/101, undilated and dilated under both rules; weights from `.safetensors`
//! and `.pth` state dicts.

use burn::prelude::*;
use zoo_models::resnet::{ResNet, ResNetConfig, ResNetDepth};
use zoo_testing::{FWD_TOL, Fixture, assert_close, for_each_device};

use crate::{cases, with_weights};

pub fn config(case: &Fixture) -> ResNetConfig {
    ResNetConfig::new(case.param("depth"))
        .with_base_channels(case.param("base_channels"))
        .with_num_classes(case.param("num_classes"))
        .with_replace_stride_with_dilation(case.param("replace_stride_with_dilation"))
        .with_dilation_rule(case.param("dilation_rule"))
}

pub fn load(case: &Fixture, device: &Device) -> ResNet {
    let model = config(case).init(device);
    let map = model.key_map();
    with_weights("resnet", case, model, &map)
}

#[test]
fn resnet_matches_torchvision() {
    for case in cases("resnet") {
        for_each_device(|name, device| {
            let model = load(&case, device);
            let x = case.float::<4>("input", device);
            let f = model.features(x.clone());
            for (level, t) in [
                ("stem", f.stem),
                ("c2", f.c2),
                ("c3", f.c3),
                ("c4", f.c4),
                ("c5", f.c5),
            ] {
                let what = format!("resnet/{} {level} on {name}", case.name);
                assert_close(t, case.float(level, device), FWD_TOL, &what);
            }
            if case.has("output") {
                let what = format!("resnet/{} output on {name}", case.name);
                assert_close(
                    model.forward(x),
                    case.float("output", device),
                    FWD_TOL,
                    &what,
                );
            }
        });
    }
}

#[test]
fn resnet_config_round_trips_and_names_bad_fields() {
    let config = ResNetConfig::new(ResNetDepth::R50)
        .with_replace_stride_with_dilation([false, true, true])
        .with_num_classes(Some(10));
    let json = serde_json::to_string(&config).unwrap();
    let back: ResNetConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    assert_eq!(back.output_stride(), 8);
    assert_eq!(back.feature_channels(), [64, 256, 512, 1024, 2048]);
    let device = Device::flex();
    let e = ResNetDepth::try_from(20).unwrap_err().to_string();
    assert!(
        e.contains("18, 34, 50 or 101") && e.contains("got 20"),
        "{e}"
    );
    assert_eq!(ResNetDepth::try_from(101), Ok(ResNetDepth::R101));
    assert!(
        json.contains("\"depth\":50"),
        "serialised as the number: {json}"
    );
    zoo_testing::assert_panics_with(
        || {
            drop(
                ResNetConfig::new(ResNetDepth::R18)
                    .with_replace_stride_with_dilation([false, false, true])
                    .init(&device),
            )
        },
        &[
            "ResNetConfig",
            "replace_stride_with_dilation",
            "dilation_rule = Uniform",
        ],
    );
}
