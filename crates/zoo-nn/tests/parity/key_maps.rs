//! Every layer that mirrors an upstream module loads that module's state dict in one call,
//! `load_upstream(layer, file, &layer.key_map())`: the `state.*` tensors of each module
//! fixture are written as the upstream state dict they are (keys without the `state.`
//! prefix), loaded through the layer's key map, and the forward compared with the fixture's
//! output on every backend. Also: the map's transforms (split, transpose, nest, within) and
//! their inverses on save.

use std::path::PathBuf;

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::TensorData;
use zoo_nn::layers::*;
use zoo_nn::weights::{KeyMap, WeightsError, load_upstream, save_upstream};
use zoo_testing::{FWD_TOL, Fixture, assert_close, assert_data_close, for_each_device};

use crate::cases;

/// A scratch path, unique per test process and name.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zoo-nn-key-maps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The case's `state.*` tensors as an upstream `.safetensors` state dict (f32), returned by
/// path.
fn state_dict(op: &str, case: &Fixture) -> PathBuf {
    let tensors: Vec<(String, TensorData)> = case
        .names()
        .into_iter()
        .filter_map(|n| {
            let key = n.strip_prefix("state.")?.to_string();
            Some((key, case.data(&n)))
        })
        .collect();
    assert!(
        !tensors.is_empty(),
        "{op}/{}: no state.* tensors",
        case.name
    );
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(k, d)| {
            let view = safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                d.shape().to_vec(),
                d.as_bytes(),
            )
            .unwrap();
            (k.clone(), view)
        })
        .collect();
    let path = scratch(&format!("{op}-{}.safetensors", case.name));
    safetensors::serialize_to_file(views, None, &path).unwrap();
    path
}

/// Loads every case of `op` into the layer `build` makes (through its own key map) and
/// compares `forward` with the fixture's output on every backend.
fn check_loads<M, const D: usize>(
    op: &str,
    filter: &str,
    build: impl Fn(&Fixture, &Device) -> M,
    key_map: impl Fn(&M) -> KeyMap,
    forward: impl Fn(&M, &Fixture, &Device) -> Tensor<D>,
) where
    M: burn::module::Module + burn::store::ModuleSnapshot,
{
    let cases: Vec<Fixture> = cases(op)
        .into_iter()
        .filter(|c| c.name.starts_with(filter))
        .collect();
    assert!(!cases.is_empty(), "{op}: no case starts with {filter:?}");
    for case in cases {
        let file = state_dict(op, &case);
        for_each_device(|name, device| {
            let layer = build(&case, device);
            let map = key_map(&layer);
            let layer = load_upstream(layer, &file, &map)
                .unwrap_or_else(|e| panic!("{op}/{} on {name}: {e}", case.name));
            let what = format!("{op}/{} through key_map on {name}", case.name);
            let out = forward(&layer, &case, device);
            let err = assert_data_close(out.into_data(), case.data("output"), FWD_TOL, &what);
            println!("KEYMAP {what} max_abs={err:.2e}");
        });
    }
}

#[test]
fn aspp_loads_torchvision_and_smp_state_dicts() {
    check_loads(
        "aspp",
        "",
        |case, device| {
            AsppConfig::new(case.param("in_channels"))
                .with_out_channels(case.param("out_channels"))
                .with_atrous_rates(case.param("atrous_rates"))
                .with_separable(case.param_opt("separable").unwrap_or(false))
                .init(device)
        },
        Aspp::key_map,
        |aspp, case, device| aspp.forward(case.float("input", device)),
    );
}

#[test]
fn attention_pools_load_the_seed_state_dicts() {
    let input = |case: &Fixture, device: &Device| case.float::<4>("input", device);
    check_loads(
        "attention_pool",
        "soft",
        |case, device| {
            SoftAttentionPoolConfig::new(case.param("channels"))
                .with_hidden_dim(case.param("hidden_dim"))
                .init(device)
        },
        SoftAttentionPool::key_map,
        |p, case, device| p.forward(input(case, device)),
    );
    check_loads(
        "attention_pool",
        "self",
        |case, device| SelfAttentionPoolConfig::new(case.param("channels")).init(device),
        SelfAttentionPool::key_map,
        |p, case, device| p.forward(input(case, device)),
    );
    check_loads(
        "attention_pool",
        "multihead",
        |case, device| {
            MultiHeadAttentionPoolConfig::new(case.param("channels"))
                .with_num_heads(case.param("num_heads"))
                .with_head_dim(case.param("head_dim"))
                .init(device)
        },
        MultiHeadAttentionPool::key_map,
        |p, case, device| p.forward(input(case, device)),
    );
    check_loads(
        "attention_pool",
        "orderless",
        |case, device| {
            OrderlessPoolConfig::new(case.param("channels"))
                .with_num_components(case.param("num_components"))
                .init(device)
        },
        OrderlessPool::key_map,
        |p, case, device| p.forward(input(case, device)),
    );
    // nn.MultiheadAttention's packed in_proj split by the map: the head count comes from the
    // config, no hand-written loader.
    check_loads(
        "attention_pool",
        "cross",
        |case, device| {
            CrossAttentionPoolConfig::new(case.param("in_channels"))
                .with_embed_dim(case.param("embed_dim"))
                .with_num_heads(case.param("num_heads"))
                .init(device)
        },
        CrossAttentionPool::key_map,
        |p, case, device| p.forward(input(case, device)),
    );
    // The same pools behind the swappable GlobalPool.
    check_loads(
        "attention_pool",
        "soft",
        |case, device| {
            GlobalPoolConfig::SoftAttention {
                hidden_dim: case.param("hidden_dim"),
            }
            .init(case.param("channels"), device)
        },
        GlobalPool::key_map,
        |p, case, device| p.forward(input(case, device)),
    );
}

#[test]
fn deformable_layers_load_mmcv_state_dicts() {
    check_loads(
        "deform_conv_module",
        "",
        |case, device| {
            DeformConv2dPackConfig::new(case.param("in_channels"), case.param("out_channels"))
                .with_kernel_size(case.param("kernel_size"))
                .with_stride(case.param("stride"))
                .with_padding(case.param("padding"))
                .with_dilation(case.param("dilation"))
                .with_groups(case.param("groups"))
                .with_offset_groups(case.param("offset_groups"))
                .with_modulated(case.param("modulated"))
                .with_bias(case.param("bias"))
                .init(device)
        },
        DeformConv2dPack::key_map,
        |layer, case, device| layer.forward(case.float("input", device)),
    );
    check_loads(
        "deform_roi_pool_module",
        "",
        |case, device| {
            DeformRoiPoolConfig::new(case.param("output_size"), case.param("output_channels"))
                .with_deform_fc_channels(case.param("deform_fc_channels"))
                .with_spatial_scale(case.param("spatial_scale"))
                .with_sampling_ratio(case.param("sampling_ratio"))
                .with_gamma(case.param("gamma"))
                .init(device)
        },
        DeformRoiPool::key_map,
        |pool, case, device| pool.forward(case.float("input", device), case.float("rois", device)),
    );
}

#[test]
fn swin_layers_load_timm_state_dicts() {
    check_loads(
        "patch_embed",
        "",
        |case, device| {
            PatchEmbedConfig::new()
                .with_in_channels(case.param("in_channels"))
                .with_embed_dim(case.param("embed_dim"))
                .with_patch_size(case.param("patch_size"))
                .with_norm(case.param("norm"))
                .with_pad(case.param("pad"))
                .init(device)
        },
        PatchEmbed::key_map,
        |embed, case, device| embed.forward(case.float("input", device)),
    );
    check_loads(
        "patch_merging",
        "",
        |case, device| {
            PatchMergingConfig::new(case.param("dim"))
                .with_out_dim(case.param("out_dim"))
                .init(device)
        },
        PatchMerging::key_map,
        |merge, case, device| merge.forward(case.float("input", device)),
    );
    check_loads(
        "window_attention",
        "",
        |case, device| {
            WindowAttentionConfig::new(case.param("dim"), case.param("num_heads"))
                .with_window_size(case.param("window_size"))
                .with_head_dim(case.param("head_dim"))
                .with_qkv_bias(case.param("qkv_bias"))
                .init(device)
        },
        WindowAttention::key_map,
        |attn, case, device| {
            let mask = case.has("mask").then(|| case.float("mask", device));
            attn.forward(case.float("input", device), mask)
        },
    );
    check_loads(
        "swin_block",
        "",
        |case, device| {
            SwinBlockConfig::new(
                case.param("dim"),
                case.param("num_heads"),
                case.param("input_resolution"),
            )
            .with_window_size(case.param("window_size"))
            .with_shift_size(case.param("shift_size"))
            .with_mlp_ratio(case.param("mlp_ratio"))
            .init(device)
        },
        SwinBlock::key_map,
        |block, case, device| block.forward(case.float("input", device)),
    );
}

fn upsample_config(case: &Fixture) -> UpsampleConfig {
    UpsampleConfig::new(case.param("in_channels"), case.param("out_channels"))
        .with_scale_factor(case.param("scale_factor"))
}

#[test]
fn upsampling_blocks_load_the_seed_state_dicts() {
    check_loads(
        "upsample",
        "transposed",
        |case, device| {
            TransposedConvUpConfig::new(case.param("in_channels"), case.param("out_channels"))
                .with_scale_factor(case.param("scale_factor"))
                .init(device)
        },
        TransposedConvUp::key_map,
        |up, case, device| up.forward(case.float("input", device)),
    );
    check_loads(
        "upsample",
        "pixel",
        |case, device| upsample_config(case).init_pixel_shuffle(device),
        PixelShuffleUp::key_map,
        |up, case, device| up.forward(case.float("input", device)),
    );
    check_loads(
        "upsample",
        "bilinear",
        |case, device| upsample_config(case).init_bilinear(device),
        BilinearUp::key_map,
        |up, case, device| up.forward(case.float("input", device)),
    );
    check_loads(
        "upsample",
        "learned",
        |case, device| upsample_config(case).init_learned(device),
        LearnedUp::key_map,
        |up, case, device| up.forward(case.float("input", device)),
    );
}

/// A fixture's state dict, saved back by `save_upstream` through the same map, holds the same
/// tensors under the same keys (the packed `in_proj_*` re-packed, Linear weights `[out, in]`
/// again), so the upstream module would load it.
#[test]
fn save_upstream_writes_the_upstream_layout_back() {
    let device = Device::flex();
    for case in cases("attention_pool")
        .into_iter()
        .filter(|c| c.name.starts_with("cross") || c.name.starts_with("soft"))
    {
        let file = state_dict("attention_pool", &case);
        let out = scratch(&format!("saved-{}.safetensors", case.name));
        if case.name.starts_with("cross") {
            let pool = CrossAttentionPoolConfig::new(case.param("in_channels"))
                .with_embed_dim(case.param("embed_dim"))
                .with_num_heads(case.param("num_heads"))
                .init(&device);
            let map = pool.key_map();
            let pool = load_upstream(pool, &file, &map).unwrap();
            save_upstream(&pool, &out, &map).unwrap();
        } else {
            let pool = SoftAttentionPoolConfig::new(case.param("channels"))
                .with_hidden_dim(case.param("hidden_dim"))
                .init(&device);
            let map = pool.key_map();
            let pool = load_upstream(pool, &file, &map).unwrap();
            save_upstream(&pool, &out, &map).unwrap();
        }
        let saved = Fixture::load(&out);
        let mut expected: Vec<String> = case
            .names()
            .into_iter()
            .filter_map(|n| n.strip_prefix("state.").map(str::to_string))
            .collect();
        expected.sort();
        assert_eq!(saved.names(), expected, "{}: saved keys", case.name);
        for key in expected {
            let what = format!("{}: saved {key}", case.name);
            let err = assert_data_close(
                saved.data(&key),
                case.data(&format!("state.{key}")),
                0.0,
                &what,
            );
            assert_eq!(err, 0.0, "{what}");
        }
    }
}

/// A module with a `[in, out]` matrix parameter outside a Burn `Linear`.
#[derive(burn::module::Module, Debug)]
struct Projection {
    matrix: Param<Tensor<2>>,
    packed: burn::nn::Linear,
}

#[derive(burn::module::Module, Debug)]
struct Outer {
    inner: Projection,
}

/// `transpose`, `split`, `nest` and `within` on a hand-made module, both ways.
#[test]
fn key_map_transforms_round_trip() {
    let device = Device::flex();
    // Upstream: `block.proj_t` stored [out=3, in=2] for the Burn [in=2, out=3] parameter;
    // `block.lin` a Linear [out=3, in=2]; everything under `model.` in a larger file.
    let up = |v: Vec<f32>, shape: [usize; 2]| TensorData::new(v, shape);
    let proj_t = up((0..6).map(|i| i as f32).collect(), [3, 2]);
    let lin_w = up((10..16).map(|i| i as f32).collect(), [3, 2]);
    let lin_b = TensorData::new(vec![7.0f32, 8.0, 9.0], [3]);
    let file = scratch("transforms.safetensors");
    let entries = [
        ("model.block.proj_t", &proj_t),
        ("model.block.lin.weight", &lin_w),
        ("model.block.lin.bias", &lin_b),
        ("other.weight", &lin_b),
    ];
    let views: Vec<(&str, safetensors::tensor::TensorView)> = entries
        .iter()
        .map(|(k, d)| {
            let view = safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                d.shape().to_vec(),
                d.as_bytes(),
            )
            .unwrap();
            (*k, view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, &file).unwrap();

    let part = KeyMap::new()
        .transpose("proj_t", "matrix")
        .prefix("lin", "packed");
    let map = KeyMap::new().nest("block", "inner", part).within("model");
    let module = Outer {
        inner: Projection {
            matrix: Param::from_tensor(Tensor::zeros([2, 3], &device)),
            packed: burn::nn::LinearConfig::new(2, 3).init(&device),
        },
    };
    let module = load_upstream(module, &file, &map).unwrap();
    let expected = Tensor::<2>::from_data(proj_t.clone(), &device).transpose();
    assert_close(module.inner.matrix.val(), expected, 0.0, "transposed");
    let expected = Tensor::<2>::from_data(lin_w.clone(), &device).transpose();
    assert_close(module.inner.packed.weight.val(), expected, 0.0, "Linear");

    let out = scratch("transforms-saved.safetensors");
    save_upstream(&module, &out, &map).unwrap();
    let saved = Fixture::load(&out);
    assert_eq!(
        saved.names(),
        [
            "model.block.lin.bias",
            "model.block.lin.weight",
            "model.block.proj_t"
        ]
    );
    assert_data_close(saved.data("model.block.proj_t"), proj_t, 0.0, "saved back");
    assert_data_close(
        saved.data("model.block.lin.weight"),
        lin_w,
        0.0,
        "saved back",
    );

    // Without `within`, the keys outside the module are unexpected and named.
    let map = KeyMap::new().nest("model.block", "inner", {
        KeyMap::new()
            .transpose("proj_t", "matrix")
            .prefix("lin", "packed")
    });
    let module = Outer {
        inner: Projection {
            matrix: Param::from_tensor(Tensor::zeros([2, 3], &device)),
            packed: burn::nn::LinearConfig::new(2, 3).init(&device),
        },
    };
    match load_upstream(module, &file, &map) {
        Err(WeightsError::Mismatch { unexpected, .. }) => {
            assert_eq!(unexpected, ["other.weight"])
        }
        other => panic!("expected a mismatch naming other.weight, got {other:?}"),
    }
}

#[test]
fn key_map_transform_errors_name_the_key() {
    let device = Device::flex();
    let file = scratch("bad-split.safetensors");
    let data = TensorData::new(vec![0.0f32; 10], [5, 2]);
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![5, 2], data.as_bytes())
            .unwrap();
    safetensors::serialize_to_file([("cross_attn.in_proj_weight", view)], None, &file).unwrap();
    let pool = CrossAttentionPoolConfig::new(2)
        .with_embed_dim(4)
        .with_num_heads(2)
        .init(&device);
    let map = pool.key_map();
    let err = load_upstream(pool, &file, &map).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("cross_attn.in_proj_weight") && message.contains("3 equal parts"),
        "{message}"
    );
}
