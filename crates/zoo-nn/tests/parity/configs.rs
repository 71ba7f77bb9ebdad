//! Every layer config and op options struct survives a serde round trip unchanged, and the
//! bad configs not covered beside their modules' parity tests name the offending field.

use burn::config::Config;
use burn::prelude::Device;
use zoo_nn::layers::*;
use zoo_nn::ops::*;
use zoo_testing::assert_panics_with;

/// JSON → value → JSON is the identity (with every non-default field set somewhere).
fn round_trips<C: Config>(config: C) {
    let json = serde_json::to_string(&config).unwrap();
    let back: C = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
}

#[test]
fn every_config_round_trips() {
    round_trips(
        ConvNormActConfig::new(8, 16)
            .with_dilation(2)
            .with_separable(true),
    );
    round_trips(
        AsppConfig::new(64)
            .with_atrous_rates(vec![6, 12, 18])
            .with_separable(true),
    );
    round_trips(DeformConv2dPackConfig::new(8, 8).with_modulated(true));
    round_trips(SoftAttentionPoolConfig::new(8).with_hidden_dim(Some(3)));
    round_trips(SelfAttentionPoolConfig::new(16).with_reduction(4));
    round_trips(MultiHeadAttentionPoolConfig::new(8).with_num_heads(2));
    round_trips(OrderlessPoolConfig::new(8).with_num_components(5));
    round_trips(CrossAttentionPoolConfig::new(8).with_embed_dim(16));
    round_trips(GlobalPoolConfig::MultiHeadAttention {
        num_heads: 2,
        head_dim: 8,
    });
    round_trips(DeformRoiPoolConfig::new([7, 7], 256).with_gamma(0.2));
    round_trips(MaxUnpool2dConfig::new().with_stride([3, 3]));
    round_trips(TransposedConvUpConfig::new(8, 4).with_scale_factor(4));
    round_trips(UpsampleConfig::new(8, 4).with_scale_factor(3));
    round_trips(PatchEmbedConfig::new().with_patch_size(4).with_pad(true));
    round_trips(PatchMergingConfig::new(96).with_out_dim(Some(128)));
    round_trips(WindowAttentionConfig::new(96, 3).with_window_size([7, 5]));
    round_trips(SwinBlockConfig::new(96, 3, [56, 56]).with_shift_size(3));
    round_trips(RoiAlignOptions::new([7, 7], 0.25, -1, true));
    round_trips(RoiPoolOptions::new([7, 7], 0.25));
    round_trips(PsRoiAlignOptions::new([3, 3], 0.5, 2));
    round_trips(PsRoiPoolOptions::new([3, 3], 0.5));
    round_trips(MultiScaleRoiAlignOptions::new([7, 7], 2));
    round_trips(DeformRoiPoolOptions::new([3, 3], 1.0, 0, 0.1));
    round_trips(DeformConv2dOptions::new([2, 2], [1, 1], [1, 1]));
    round_trips(ResizeOptions::new(ResizeMode::Bicubic, true));
}

#[test]
fn bad_layer_configs_name_the_field() {
    let device = Device::flex();
    assert_panics_with(
        || drop(PatchMergingConfig::new(0).init(&device)),
        &["PatchMergingConfig", "dim", "positive"],
    );
    assert_panics_with(
        || {
            MaxUnpool2dConfig::new().with_stride([0, 2]).init();
        },
        &["MaxUnpool2dConfig", "stride", "[0, 2]"],
    );
    assert_panics_with(
        || {
            drop(
                TransposedConvUpConfig::new(4, 4)
                    .with_scale_factor(3)
                    .init(&device),
            )
        },
        &["TransposedConvUpConfig", "scale_factor", "even", "got 3"],
    );
    assert_panics_with(
        || {
            drop(
                MultiHeadAttentionPoolConfig::new(8)
                    .with_num_heads(0)
                    .init(&device),
            )
        },
        &["MultiHeadAttentionPoolConfig", "num_heads", "positive"],
    );
    assert_panics_with(
        || {
            drop(
                OrderlessPoolConfig::new(8)
                    .with_num_components(0)
                    .init(&device),
            )
        },
        &["OrderlessPoolConfig", "num_components", "positive"],
    );
    assert_panics_with(
        || {
            drop(
                WindowAttentionConfig::new(8, 2)
                    .with_window_size([0, 7])
                    .init(&device),
            )
        },
        &["WindowAttentionConfig", "window_size[0]", "positive"],
    );
    assert_panics_with(
        || drop(ConvNormActConfig::new(6, 8).with_groups(4).init(&device)),
        &["ConvNormActConfig", "in_channels (6)", "groups (4)"],
    );
}
