//! The upstream-weights loader: all-or-nothing loading with every offending key listed, and
//! saving back with upstream names and layouts.

use burn::prelude::*;
use safetensors::SafeTensors;
use zoo_models::resnet::{ResNetConfig, ResNetDepth};
use zoo_models::weights::{WeightsError, load_upstream, save_upstream};

use crate::resnet::{config, load};
use crate::{cases, weights};

fn case(name: &str) -> zoo_testing::Fixture {
    cases("resnet")
        .into_iter()
        .find(|c| c.name == name)
        .expect("fixture")
}

#[test]
fn wrong_architecture_lists_missing_and_unexpected_keys() {
    let device = Device::flex();
    let r18 = case("r18_classifier");
    // ResNet-34 has more blocks: layer1.2.* etc. are missing from an 18's file.
    let model = ResNetConfig {
        depth: ResNetDepth::R34,
        ..config(&r18)
    }
    .init(&device);
    let map = model.key_map();
    let err = load_upstream(model, weights("resnet", &r18), &map).unwrap_err();
    let WeightsError::Mismatch { missing, .. } = &err else {
        panic!("expected a mismatch, got {err}")
    };
    assert!(missing.iter().any(|k| k.starts_with("layer1.2.")), "{err}");
    assert!(err.to_string().contains("missing keys"), "{err}");
    // A backbone given a classifier's file: its fc.* are unexpected unless ignored — a
    // backbone's key map drops fc.* explicitly, so building a classifier with 7 classes
    // instead gives a shape mismatch on fc.
    let model = config(&r18).with_num_classes(Some(7)).init(&device);
    let map = model.key_map();
    let err = load_upstream(model, weights("resnet", &r18), &map).unwrap_err();
    let WeightsError::Mismatch { errors, .. } = &err else {
        panic!("expected a mismatch, got {err}")
    };
    assert!(errors.iter().any(|e| e.contains("fc.")), "{err}");
    // Narrower model: shape mismatches everywhere.
    let model = config(&r18).with_base_channels(8).init(&device);
    let map = model.key_map();
    let err = load_upstream(model, weights("resnet", &r18), &map).unwrap_err();
    assert!(err.to_string().contains("mismatched tensors"), "{err}");
}

#[test]
fn unexpected_keys_are_an_error() {
    let device = Device::flex();
    let r18 = case("r18_classifier");
    // A backbone (no fc) reading a classifier's file ignores fc.* on purpose ...
    let model = config(&r18).with_num_classes(None).init(&device);
    let map = model.key_map();
    let model = load_upstream(model, weights("resnet", &r18), &map).expect("fc.* ignored");
    // ... but the same file into a map that does not ignore them lists them.
    // A classifier's map renames the same keys but drops no `fc.*`.
    let strict = config(&r18).init(&device).key_map();
    let err = load_upstream(model, weights("resnet", &r18), &strict).unwrap_err();
    let WeightsError::Mismatch { unexpected, .. } = &err else {
        panic!("expected a mismatch, got {err}")
    };
    assert_eq!(unexpected.len(), 2, "{err}");
    assert!(unexpected.iter().all(|k| k.starts_with("fc.")), "{err}");
}

#[test]
fn unknown_format_and_missing_file_are_errors() {
    let device = Device::flex();
    let model = ResNetConfig::new(ResNetDepth::R18)
        .with_base_channels(2)
        .init(&device);
    let map = model.key_map();
    let err = load_upstream(model.clone(), "weights.onnx", &map).unwrap_err();
    assert!(err.to_string().contains("unknown weights format"), "{err}");
    let err = load_upstream(model, "does/not/exist.safetensors", &map).unwrap_err();
    assert!(
        err.to_string().contains("does/not/exist.safetensors"),
        "{err}"
    );
}

#[test]
fn saving_writes_upstream_names_and_layouts() {
    let device = Device::flex();
    let r18 = case("r18_classifier");
    let model = load(&r18, &device);
    let out = std::env::temp_dir().join(format!(
        "zoo-models-save-{}.safetensors",
        std::process::id()
    ));
    save_upstream(&model, &out, &model.key_map()).unwrap();
    let original = std::fs::read(weights("resnet", &r18)).unwrap();
    let original = SafeTensors::deserialize(&original).unwrap();
    let saved_bytes = std::fs::read(&out).unwrap();
    let saved = SafeTensors::deserialize(&saved_bytes).unwrap();
    let mut expected: Vec<String> = original
        .names()
        .into_iter()
        .filter(|k| !k.ends_with("num_batches_tracked"))
        .map(str::to_string)
        .collect();
    let mut names: Vec<String> = saved.names().into_iter().map(str::to_string).collect();
    expected.sort();
    names.sort();
    assert_eq!(names, expected);
    for name in &names {
        let (a, b) = (original.tensor(name).unwrap(), saved.tensor(name).unwrap());
        assert_eq!(a.shape(), b.shape(), "{name}");
        assert_eq!(
            a.data(),
            b.data(),
            "{name}: values differ after a round trip"
        );
    }
    // And the saved file loads back.
    let again = config(&r18).init(&device);
    load_upstream(again, &out, &model.key_map()).unwrap();
    std::fs::remove_file(out).ok();
}
