//! The seed document's upsampling blocks, loaded from its PyTorch classes' state_dicts.

use zoo_nn::layers::{TransposedConvUpConfig, UpsampleConfig};
use zoo_testing::{Fixture, assert_panics_with, check_case};

use crate::cases;
use crate::load::{batch_norm, block, conv, conv_transpose, differentiable};

fn config(case: &Fixture) -> UpsampleConfig {
    UpsampleConfig::new(case.param("in_channels"), case.param("out_channels"))
        .with_scale_factor(case.param("scale_factor"))
}

#[test]
fn upsampling_blocks_match_the_seed_modules() {
    for case in cases("upsample") {
        let params = differentiable(&case);
        let wrt: Vec<&str> = params.iter().map(String::as_str).collect();
        let kind = case.name.split('_').next().unwrap().to_string();
        check_case("upsample", &case, &wrt, |x| {
            let input = x.float("input");
            match kind.as_str() {
                "transposed" => {
                    let mut up = TransposedConvUpConfig::new(
                        case.param("in_channels"),
                        case.param("out_channels"),
                    )
                    .with_scale_factor(case.param("scale_factor"))
                    .init(&x.device);
                    up.deconv = conv_transpose(up.deconv, x, "deconv");
                    up.norm = batch_norm(up.norm, x, "bn");
                    up.forward(input)
                }
                "pixel" => {
                    let mut up = config(&case).init_pixel_shuffle(&x.device);
                    up.conv = block(up.conv, x, "conv", "bn");
                    up.forward(input)
                }
                "bilinear" => {
                    let mut up = config(&case).init_bilinear(&x.device);
                    up.conv = conv(up.conv, x, "conv");
                    up.forward(input)
                }
                "learned" => {
                    let mut up = config(&case).init_learned(&x.device);
                    up.refine = block(up.refine, x, "refine.0", "refine.1");
                    up.forward(input)
                }
                other => panic!("upsample/{}: unknown block {other}", case.name),
            }
        });
    }
}

#[test]
fn upsampling_configs_name_bad_fields() {
    let device = burn::prelude::Device::flex();
    assert_panics_with(
        || {
            drop(
                TransposedConvUpConfig::new(4, 4)
                    .with_scale_factor(3)
                    .init(&device),
            )
        },
        &[
            "TransposedConvUpConfig",
            "scale_factor must be even",
            "got 3",
        ],
    );
    assert_panics_with(
        || drop(UpsampleConfig::new(4, 0).init_learned(&device)),
        &["UpsampleConfig", "out_channels", "positive"],
    );
    let json = serde_json::to_string(&UpsampleConfig::new(4, 2).with_scale_factor(3)).unwrap();
    let back: UpsampleConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back.scale_factor, 3);
}
