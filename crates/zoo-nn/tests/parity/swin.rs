//! `WindowAttention` and `SwinBlock` against timm's `WindowAttention` and
//! `SwinTransformerBlock`: shifted and plain windows, padding, a window larger than the map,
//! and an input size other than the one the block was built for.

use burn::module::Param;
use zoo_nn::layers::{
    SwinBlock, SwinBlockConfig, WindowAttention, WindowAttentionConfig, relative_position_index,
    shifted_window_mask,
};
use zoo_testing::{Fixture, Inputs, assert_panics_with, check_case};

use crate::cases;
use crate::load::{differentiable, layer_norm, linear};

fn window_attention(mut attn: WindowAttention, x: &Inputs, prefix: &str) -> WindowAttention {
    attn.qkv = linear(attn.qkv, x, &format!("{prefix}qkv"));
    attn.proj = linear(attn.proj, x, &format!("{prefix}proj"));
    attn.relative_position_bias_table =
        Param::from_tensor(x.float(&format!("state.{prefix}relative_position_bias_table")));
    attn
}

fn wrt(case: &Fixture) -> Vec<String> {
    differentiable(case)
}

#[test]
fn window_attention_matches_timm() {
    for case in cases("window_attention") {
        let config = WindowAttentionConfig::new(case.param("dim"), case.param("num_heads"))
            .with_window_size(case.param("window_size"))
            .with_head_dim(case.param("head_dim"))
            .with_qkv_bias(case.param("qkv_bias"));
        let params = wrt(&case);
        let wrt: Vec<&str> = params.iter().map(String::as_str).collect();
        check_case("WindowAttention", &case, &wrt, |x| {
            let attn = window_attention(config.init(&x.device), x, "");
            attn.forward(x.float("input"), x.float_opt("mask"))
        });
    }
}

fn swin_block(case: &Fixture, x: &Inputs) -> SwinBlock {
    let config = SwinBlockConfig::new(
        case.param("dim"),
        case.param("num_heads"),
        case.param("input_resolution"),
    )
    .with_window_size(case.param("window_size"))
    .with_shift_size(case.param("shift_size"))
    .with_mlp_ratio(case.param("mlp_ratio"));
    let mut block = config.init(&x.device);
    assert_eq!(
        block.window_size(),
        case.param::<[usize; 2]>("expected_window")
    );
    assert_eq!(
        block.shift_size(),
        case.param::<[usize; 2]>("expected_shift")
    );
    block.norm1 = layer_norm(block.norm1, x, "norm1");
    block.attn = window_attention(block.attn, x, "attn.");
    block.norm2 = layer_norm(block.norm2, x, "norm2");
    block.mlp.fc1 = linear(block.mlp.fc1, x, "mlp.fc1");
    block.mlp.fc2 = linear(block.mlp.fc2, x, "mlp.fc2");
    block
}

#[test]
fn swin_block_matches_timm() {
    for case in cases("swin_block") {
        let params = wrt(&case);
        let wrt: Vec<&str> = params.iter().map(String::as_str).collect();
        check_case("SwinBlock", &case, &wrt, |x| {
            swin_block(&case, x).forward(x.float("input"))
        });
    }
}

#[test]
fn relative_position_index_and_mask_follow_timm() {
    // timm's index for a 2×2 window: offsets (dy + 1) * 3 + (dx + 1).
    assert_eq!(
        relative_position_index([2, 2]),
        vec![4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4]
    );
    // 4×4 map, 2×2 windows, shift 1: the top-left window is one region, the bottom-right
    // window has four (one token each).
    let mask = shifted_window_mask([4, 4], [2, 2], [1, 1]);
    assert_eq!(mask.len(), 4 * 16);
    assert!(mask[..16].iter().all(|&m| m == 0.0));
    let last = &mask[48..];
    for i in 0..4 {
        for j in 0..4 {
            assert_eq!(last[i * 4 + j], if i == j { 0.0 } else { -100.0 });
        }
    }
}

#[test]
fn swin_configs_round_trip_and_name_bad_fields() {
    let config = SwinBlockConfig::new(96, 3, [56, 56]).with_shift_size(3);
    let back: SwinBlockConfig =
        serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
    assert_eq!(
        (
            back.dim,
            back.input_resolution,
            back.window_size,
            back.shift_size
        ),
        (96, [56, 56], 7, 3)
    );
    let attn = WindowAttentionConfig::new(8, 2).with_window_size([3, 4]);
    let back: WindowAttentionConfig =
        serde_json::from_str(&serde_json::to_string(&attn).unwrap()).unwrap();
    assert_eq!(back.window_size, [3, 4]);
    let device = burn::prelude::Device::flex();
    assert_panics_with(
        || drop(SwinBlockConfig::new(10, 3, [8, 8]).init(&device)),
        &["WindowAttentionConfig", "dim (10)", "num_heads (3)"],
    );
    assert_panics_with(
        || {
            drop(
                SwinBlockConfig::new(8, 2, [8, 8])
                    .with_shift_size(7)
                    .init(&device),
            )
        },
        &["SwinBlockConfig", "shift_size", "window_size = 7", "got 7"],
    );
    assert_panics_with(
        || drop(SwinBlockConfig::new(8, 2, [0, 8]).init(&device)),
        &["SwinBlockConfig", "input_resolution[0]", "positive"],
    );
    assert_panics_with(
        || {
            drop(
                SwinBlockConfig::new(8, 2, [8, 8])
                    .with_drop_path(1.0)
                    .init(&device),
            )
        },
        &["SwinBlockConfig", "drop_path", "[0, 1)", "got 1"],
    );
    // A window larger than the map is not an error: it shrinks and the shift is dropped.
    let block = SwinBlockConfig::new(8, 2, [4, 9])
        .with_window_size(7)
        .with_shift_size(3)
        .init(&device);
    assert_eq!((block.window_size(), block.shift_size()), ([4, 7], [0, 3]));
}
