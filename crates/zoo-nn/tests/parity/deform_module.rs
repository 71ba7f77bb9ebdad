//! `DeformConv2dPack` (v1 and modulated v2) loaded from an mmcv-style `*DeformConv2dPack`
//! state_dict (`weight`, `bias`, `conv_offset.*`), forward and gradients of the input and
//! every parameter — the offset predictor included.

use burn::module::Param;
use zoo_nn::layers::DeformConv2dPackConfig;
use zoo_testing::{assert_panics_with, check_case};

use crate::cases;

#[test]
fn deform_conv_module_matches_mmcv_pack() {
    for case in cases("deform_conv_module") {
        let config =
            DeformConv2dPackConfig::new(case.param("in_channels"), case.param("out_channels"))
                .with_kernel_size(case.param("kernel_size"))
                .with_stride(case.param("stride"))
                .with_padding(case.param("padding"))
                .with_dilation(case.param("dilation"))
                .with_groups(case.param("groups"))
                .with_offset_groups(case.param("offset_groups"))
                .with_modulated(case.param("modulated"))
                .with_bias(case.param("bias"));
        let params = crate::load::differentiable(&case);
        let wrt: Vec<&str> = params.iter().map(String::as_str).collect();
        check_case("deform_conv_module", &case, &wrt, |x| {
            let mut layer = config.init(&x.device);
            layer.weight = Param::from_tensor(x.float("state.weight"));
            layer.bias = x.float_opt("state.bias").map(Param::from_tensor);
            layer.conv_offset.weight = Param::from_tensor(x.float("state.conv_offset.weight"));
            layer.conv_offset.bias = Some(Param::from_tensor(x.float("state.conv_offset.bias")));
            layer.forward(x.float("input"))
        });
    }
}

#[test]
fn deform_conv_module_starts_as_a_plain_convolution_and_checks_its_config() {
    use burn::prelude::*;
    let device = Device::flex();
    let layer = DeformConv2dPackConfig::new(3, 4).init(&device);
    let x = Tensor::<4>::random([1, 3, 6, 5], burn::tensor::Distribution::Default, &device);
    let plain = burn::tensor::module::conv2d(
        x.clone(),
        layer.weight.val(),
        layer.bias.as_ref().map(Param::val),
        burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
    );
    zoo_testing::assert_close(
        layer.forward(x),
        plain,
        zoo_testing::FWD_TOL,
        "zero offsets",
    );
    assert_panics_with(
        || {
            drop(
                DeformConv2dPackConfig::new(6, 4)
                    .with_groups(4)
                    .init(&device),
            )
        },
        &["DeformConv2dPackConfig", "in_channels (6)", "groups (4)"],
    );
    assert_panics_with(
        || {
            drop(
                DeformConv2dPackConfig::new(6, 4)
                    .with_offset_groups(4)
                    .init(&device),
            )
        },
        &["DeformConv2dPackConfig", "offset_groups (4)"],
    );
    let json =
        serde_json::to_string(&DeformConv2dPackConfig::new(6, 4).with_modulated(true)).unwrap();
    let back: DeformConv2dPackConfig = serde_json::from_str(&json).unwrap();
    assert!(back.modulated && back.kernel_size == [3, 3]);
}
