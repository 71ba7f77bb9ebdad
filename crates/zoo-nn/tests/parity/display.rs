//! `ModuleDisplay`: printing a layer shows its settings that are not parameters (strides,
//! window sizes, ROI options, pooled channels), as Burn's own modules do.

use burn::prelude::*;
use zoo_nn::layers::*;
use zoo_nn::ops::*;

/// `text` contains every one of `parts`.
fn shows(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
}

#[test]
fn layers_show_their_settings() {
    let device = Device::flex();

    let dcn = DeformConv2dPackConfig::new(8, 16)
        .with_stride([2, 2])
        .with_dilation([2, 2])
        .with_padding([2, 2])
        .with_modulated(true)
        .init(&device);
    shows(
        &dcn.to_string(),
        &[
            "DeformConv2dPack",
            "ch_in: 8",
            "ch_out: 16",
            "kernel_size: [3, 3]",
            "stride: [2, 2]",
            "padding: [2, 2]",
            "dilation: [2, 2]",
            "modulated: true",
            "conv_offset: Conv2d",
        ],
    );

    let roi = RoiAlignOptions::new([7, 7], 0.25, 2, true).init();
    shows(
        &roi.to_string(),
        &[
            "RoiAlign",
            "output_size: [7, 7]",
            "spatial_scale: 0.25",
            "aligned: true",
        ],
    );
    let pool = RoiPoolOptions::new([3, 3], 0.5).init();
    shows(&pool.to_string(), &["RoiPool", "output_size: [3, 3]"]);

    let GlobalPool::Avg(avg) = GlobalPoolConfig::Avg.init(32, &device) else {
        panic!("GlobalPoolConfig::Avg builds GlobalPool::Avg");
    };
    shows(&avg.to_string(), &["GlobalAvgPool", "channels: 32"]);

    let block = SwinBlockConfig::new(16, 2, [8, 8])
        .with_window_size(4)
        .with_shift_size(2)
        .init(&device);
    shows(
        &block.to_string(),
        &[
            "SwinBlock",
            "shift_size: [2, 2]",
            "WindowAttention",
            "num_heads: 2",
            "window_size: [4, 4]",
            "qkv: Linear",
        ],
    );
}
