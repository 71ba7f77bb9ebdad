//! Swin Transformer against timm's `SwinTransformer` (narrowed: small embed_dim, window 4 at
//! 64×64, the last stage's window shrunk to its 2×2 map), logits and the four stage outputs;
//! and at an input size other than `img_size` (padding, masks per input).

use burn::prelude::*;
use zoo_models::swin::SwinTransformerConfig;
use zoo_testing::{FWD_TOL, Fixture, assert_close, for_each_device};

use crate::{cases, with_weights};

/// The Swin Transformer of a forward case.
pub fn config(case: &Fixture) -> SwinTransformerConfig {
    SwinTransformerConfig::new()
        .with_img_size(case.param("img_size"))
        .with_embed_dim(case.param("embed_dim"))
        .with_depths(case.param("depths"))
        .with_num_heads(case.param("num_heads"))
        .with_window_size(case.param("window_size"))
        .with_num_classes(case.param("num_classes"))
        .with_mlp_ratio(case.param("mlp_ratio"))
}

#[test]
fn swin_matches_timm() {
    for case in cases("swin") {
        let config = config(&case);
        for_each_device(|name, device| {
            let model = config.init(device);
            let map = model.key_map();
            let model = with_weights("swin", &case, model, &map);
            let x = case.float::<4>("input", device);
            for (i, stage) in model.stage_features(x.clone()).into_iter().enumerate() {
                let what = format!("swin/{} stage {i} on {name}", case.name);
                assert_close(
                    stage,
                    case.float(&format!("stage{i}"), device),
                    FWD_TOL,
                    &what,
                );
            }
            if case.has("output") {
                let what = format!("swin/{} logits on {name}", case.name);
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
fn swin_variants_and_config() {
    let tiny = SwinTransformerConfig::tiny();
    assert_eq!(tiny.stage_channels(), vec![96, 192, 384, 768]);
    assert_eq!(
        SwinTransformerConfig::base().stage_channels(),
        vec![128, 256, 512, 1024]
    );
    assert_eq!(SwinTransformerConfig::small().depths, vec![2, 2, 18, 2]);
    let json = serde_json::to_string(&tiny).unwrap();
    let back: SwinTransformerConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    let device = Device::flex();
    zoo_testing::assert_panics_with(
        || {
            drop(
                SwinTransformerConfig::new()
                    .with_num_heads(vec![3, 6])
                    .init(&device),
            )
        },
        &[
            "SwinTransformerConfig",
            "depths and num_heads",
            "got 4 and 2",
        ],
    );
}

#[test]
fn from_scratch_linear_layers_are_drawn_as_timm_draws_them() {
    zoo_testing::for_each_device(|name, device| {
        let model = zoo_models::swin::SwinTransformerConfig::new()
            .with_embed_dim(32)
            .with_depths(vec![2, 2])
            .with_num_heads(vec![2, 4])
            .with_num_classes(Some(4))
            .init(device);
        let block = &model.layers[1].blocks[0];
        let (_, std) = crate::spread(block.mlp.fc1.weight.val());
        assert!((std / 0.02 - 1.0).abs() < 0.05, "{name}: fc1 std {std}");
        assert!(crate::zero_bias(&block.attn.qkv.bias), "{name}: qkv bias");
    });
}
