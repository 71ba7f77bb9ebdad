//! Attention pooling against the seed's PyTorch classes.

use burn::module::Param;
use zoo_nn::layers::{
    CrossAttentionPool, CrossAttentionPoolConfig, GlobalPoolConfig, MultiHeadAttentionPoolConfig,
    OrderlessPoolConfig, SelfAttentionPoolConfig, SoftAttentionPoolConfig, set_packed_in_proj,
};
use zoo_testing::{Fixture, Inputs, assert_panics_with, check_case};

use crate::cases;
use crate::load::{conv, differentiable, linear};

#[test]
fn soft_attention_pool_matches_the_seed() {
    for case in cases("attention_pool")
        .into_iter()
        .filter(|c| c.name.starts_with("soft"))
    {
        let config = SoftAttentionPoolConfig::new(case.param("channels"))
            .with_hidden_dim(case.param("hidden_dim"));
        let params = differentiable(&case);
        let wrt: Vec<&str> = params.iter().map(String::as_str).collect();
        check_case("SoftAttentionPool", &case, &wrt, |x| {
            let mut pool = config.init(&x.device);
            pool.hidden = conv(pool.hidden, x, "attention.0");
            pool.score = conv(pool.score, x, "attention.2");
            assert_eq!(pool.out_features(), case.param::<usize>("channels"));
            pool.forward(x.float("input"))
        });
    }
}

#[test]
fn soft_attention_pool_config_names_bad_fields() {
    let device = burn::prelude::Device::flex();
    assert_panics_with(
        || drop(SoftAttentionPoolConfig::new(3).init(&device)),
        &[
            "SoftAttentionPoolConfig",
            "hidden_dim",
            "got channels 3 and hidden_dim 0",
        ],
    );
    let json = serde_json::to_string(&SoftAttentionPoolConfig::new(8)).unwrap();
    let back: SoftAttentionPoolConfig = serde_json::from_str(&json).unwrap();
    assert_eq!((back.channels, back.hidden_dim), (8, None));
}

#[test]
fn self_attention_pool_matches_the_seed() {
    for case in cases("attention_pool")
        .into_iter()
        .filter(|c| c.name.starts_with("self"))
    {
        let config = SelfAttentionPoolConfig::new(case.param("channels"));
        let params = differentiable(&case);
        let wrt: Vec<&str> = params.iter().map(String::as_str).collect();
        check_case("SelfAttentionPool", &case, &wrt, |x| {
            let mut pool = config.init(&x.device);
            pool.query = conv(pool.query, x, "query");
            pool.key = conv(pool.key, x, "key");
            pool.value = conv(pool.value, x, "value");
            pool.gamma = Param::from_tensor(x.float("state.gamma"));
            assert_eq!(pool.out_features(), case.param::<usize>("channels"));
            pool.forward(x.float("input"))
        });
    }
}

#[test]
fn self_attention_pool_starts_as_global_average_pooling() {
    use burn::prelude::*;
    let device = Device::flex();
    let pool = SelfAttentionPoolConfig::new(16).init(&device);
    let x = Tensor::<4>::random([2, 16, 3, 4], burn::tensor::Distribution::Default, &device);
    let gap = x.clone().mean_dim(3).mean_dim(2).reshape([2, 16]);
    zoo_testing::assert_close(pool.forward(x), gap, zoo_testing::FWD_TOL, "gamma = 0");
    assert_panics_with(
        || drop(SelfAttentionPoolConfig::new(4).init(&device)),
        &["SelfAttentionPoolConfig", "channels 4 and reduction 8"],
    );
}

#[test]
fn multi_head_attention_pool_matches_the_seed() {
    for case in cases("attention_pool")
        .into_iter()
        .filter(|c| c.name.starts_with("multihead"))
    {
        let config = MultiHeadAttentionPoolConfig::new(case.param("channels"))
            .with_num_heads(case.param("num_heads"))
            .with_head_dim(case.param("head_dim"));
        let params = differentiable(&case);
        let wrt: Vec<&str> = params.iter().map(String::as_str).collect();
        check_case("MultiHeadAttentionPool", &case, &wrt, |x| {
            let mut pool = config.init(&x.device);
            pool.queries = Param::from_tensor(x.float("state.queries"));
            pool.key_proj = conv(pool.key_proj, x, "key_proj");
            pool.value_proj = conv(pool.value_proj, x, "value_proj");
            pool.out_proj = linear(pool.out_proj, x, "out_proj");
            assert_eq!(pool.out_features(), case.param::<usize>("channels"));
            pool.forward(x.float("input"))
        });
    }
}

#[test]
fn orderless_pool_matches_the_seed() {
    for case in cases("attention_pool")
        .into_iter()
        .filter(|c| c.name.starts_with("orderless"))
    {
        let channels: usize = case.param("channels");
        let components: usize = case.param("num_components");
        let config = OrderlessPoolConfig::new(channels).with_num_components(components);
        let params = differentiable(&case);
        let wrt: Vec<&str> = params.iter().map(String::as_str).collect();
        check_case("OrderlessPool", &case, &wrt, |x| {
            let mut pool = config.init(&x.device);
            pool.means = Param::from_tensor(x.float("state.means"));
            assert_eq!(pool.out_features(), channels * components);
            pool.forward(x.float("input"))
        });
    }
}

/// The seed's `HybridViTPooling` with q/k/v from the packed `in_proj_*` of
/// `nn.MultiheadAttention`, each chunk tracked so the packed gradient is compared whole.
fn cross_attention_pool(case: &Fixture, x: &Inputs) -> CrossAttentionPool {
    let config = CrossAttentionPoolConfig::new(case.param("in_channels"))
        .with_embed_dim(case.param("embed_dim"))
        .with_num_heads(case.param("num_heads"));
    let mut pool = config.init(&x.device);
    pool.to_tokens = conv(pool.to_tokens, x, "to_tokens");
    pool.query = Param::from_tensor(x.float("state.query"));
    let weights = x.float_chunks_transposed("state.cross_attn.in_proj_weight", 3);
    let biases = x.float_chunks::<1>("state.cross_attn.in_proj_bias", 3);
    let mha = &mut pool.cross_attn;
    for ((linear, w), b) in [&mut mha.query, &mut mha.key, &mut mha.value]
        .into_iter()
        .zip(weights)
        .zip(biases)
    {
        linear.weight = Param::from_tensor(w);
        linear.bias = Some(Param::from_tensor(b));
    }
    mha.output = linear(mha.output.clone(), x, "cross_attn.out_proj");
    pool
}

#[test]
fn cross_attention_pool_matches_the_seed() {
    let config = CrossAttentionPoolConfig::new(2048).with_num_heads(4);
    let back: CrossAttentionPoolConfig =
        serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
    assert_eq!(
        (back.in_channels, back.embed_dim, back.num_heads),
        (2048, 512, 4)
    );
    for case in cases("attention_pool")
        .into_iter()
        .filter(|c| c.name.starts_with("cross"))
    {
        let params = differentiable(&case);
        let wrt: Vec<&str> = params.iter().map(String::as_str).collect();
        check_case("CrossAttentionPool", &case, &wrt, |x| {
            let pool = cross_attention_pool(&case, x);
            assert_eq!(pool.out_features(), case.param::<usize>("embed_dim"));
            pool.forward(x.float("input"))
        });
    }
}

#[test]
fn set_packed_in_proj_loads_multihead_attention() {
    for case in cases("attention_pool")
        .into_iter()
        .filter(|c| c.name.starts_with("cross"))
    {
        check_case("set_packed_in_proj", &case, &[], |x| {
            let mut pool = cross_attention_pool(&case, x);
            set_packed_in_proj(
                &mut pool.cross_attn,
                case.float("state.cross_attn.in_proj_weight", &x.device),
                Some(case.float("state.cross_attn.in_proj_bias", &x.device)),
            );
            pool.forward(x.float("input"))
        });
    }
    let device = burn::prelude::Device::flex();
    let mut mha = burn::nn::attention::MultiHeadAttentionConfig::new(8, 2).init(&device);
    assert_panics_with(
        || {
            set_packed_in_proj(
                &mut mha,
                burn::prelude::Tensor::zeros([16, 8], &device),
                None,
            )
        },
        &["set_packed_in_proj", "in_proj_weight", "[24, 8]", "[16, 8]"],
    );
}

#[test]
fn global_pool_is_swappable_by_config() {
    use burn::prelude::*;
    let configs = [
        GlobalPoolConfig::Avg,
        GlobalPoolConfig::Max,
        GlobalPoolConfig::SoftAttention { hidden_dim: None },
        GlobalPoolConfig::SelfAttention { reduction: 8 },
        GlobalPoolConfig::MultiHeadAttention {
            num_heads: 2,
            head_dim: 4,
        },
        GlobalPoolConfig::Orderless { num_components: 3 },
        GlobalPoolConfig::CrossAttention {
            embed_dim: 12,
            num_heads: 3,
        },
    ];
    zoo_testing::for_each_device(|name, device| {
        let x = Tensor::<4>::random([2, 16, 3, 5], burn::tensor::Distribution::Default, device);
        for config in &configs {
            let json = serde_json::to_string(config).unwrap();
            let back: GlobalPoolConfig = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, config, "{json}");
            let pool = back.init(16, device);
            assert_eq!(pool.out_features(), config.out_features(16), "{config:?}");
            let out = pool.forward(x.clone());
            assert_eq!(
                out.dims(),
                [2, config.out_features(16)],
                "{config:?} on {name}"
            );
        }
        let avg = GlobalPoolConfig::default()
            .init(16, device)
            .forward(x.clone());
        let expected = x.clone().mean_dim(3).mean_dim(2).reshape([2, 16]);
        zoo_testing::assert_close(avg, expected, zoo_testing::FWD_TOL, "Avg");
        let max = GlobalPoolConfig::Max.init(16, device).forward(x.clone());
        let expected = x.max_dim(3).max_dim(2).reshape([2, 16]);
        zoo_testing::assert_close(max, expected, zoo_testing::FWD_TOL, "Max");
    });
    assert_eq!(
        serde_json::to_string(&GlobalPoolConfig::Avg).unwrap(),
        "\"Avg\""
    );
    let device = Device::flex();
    assert_panics_with(
        || {
            drop(
                GlobalPoolConfig::CrossAttention {
                    embed_dim: 10,
                    num_heads: 3,
                }
                .init(16, &device),
            )
        },
        &[
            "CrossAttentionPoolConfig",
            "embed_dim (10)",
            "num_heads (3)",
        ],
    );
}
