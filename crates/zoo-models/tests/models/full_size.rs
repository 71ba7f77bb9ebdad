//! Full-size upstream models (torchvision deeplabv3_resnet50, smp Unet(resnet34), timm
//! swin_tiny) with random weights, loaded from `.pth` state dicts. The files (~500 MB) are
//! not committed: `tools/parity/full_models.sh` writes them and runs this test.

use std::path::PathBuf;

use burn::prelude::*;
use zoo_models::deeplab::DeepLabV3Config;
use zoo_models::swin::SwinTransformerConfig;
use zoo_models::unet::UnetConfig;
use zoo_models::weights::load_upstream;
use zoo_testing::{FWD_TOL, Fixture, assert_close, for_each_device, max_abs_diff};

fn dir() -> PathBuf {
    PathBuf::from(
        std::env::var("ZOO_FULL_MODELS_DIR")
            .expect("ZOO_FULL_MODELS_DIR: run tools/parity/full_models.sh, which sets it"),
    )
}

fn check(name: &str, got: Tensor<4>, case: &Fixture, key: &str, device: &Device) {
    let expected = case.float::<4>(key, device);
    println!(
        "FULL {name} {key} on {:?}: max_abs={:.3e}",
        device,
        max_abs_diff(got.clone(), expected.clone())
    );
    assert_close(got, expected, FWD_TOL, &format!("{name} {key}"));
}

#[test]
#[ignore = "needs the full-size weights: run tools/parity/full_models.sh"]
fn full_size_models_match_upstream() {
    for_each_device(|_, device| {
        let name = "deeplabv3_resnet50";
        let case = Fixture::load(dir().join(format!("{name}.safetensors")));
        let model = DeepLabV3Config::new(21).with_aux_head(true).init(device);
        let map = model.key_map();
        let model = load_upstream(model, dir().join(format!("{name}.weights.pth")), &map).unwrap();
        let out = model.forward(case.float("input", device));
        check(name, out.out, &case, "output", device);
        check(name, out.aux.unwrap(), &case, "aux", device);

        let name = "unet_resnet34";
        let case = Fixture::load(dir().join(format!("{name}.safetensors")));
        let model = UnetConfig::new(2).init(device);
        let map = model.key_map();
        let model = load_upstream(model, dir().join(format!("{name}.weights.pth")), &map).unwrap();
        check(
            name,
            model.forward(case.float("input", device)),
            &case,
            "output",
            device,
        );

        let name = "swin_tiny_patch4_window7_224";
        let case = Fixture::load(dir().join(format!("{name}.safetensors")));
        let model = SwinTransformerConfig::tiny().init(device);
        let map = model.key_map();
        let model = load_upstream(model, dir().join(format!("{name}.weights.pth")), &map).unwrap();
        let logits = model.forward(case.float("input", device));
        let expected = case.float::<2>("output", device);
        println!(
            "FULL {name} logits: max_abs={:.3e}",
            max_abs_diff(logits.clone(), expected.clone())
        );
        assert_close(logits, expected, FWD_TOL, name);
    });
}
