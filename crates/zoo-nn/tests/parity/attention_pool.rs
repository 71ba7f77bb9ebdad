//! Attention pooling against the seed's PyTorch classes.

use burn::module::Param;
use zoo_nn::layers::{
    MultiHeadAttentionPoolConfig, OrderlessPoolConfig, SelfAttentionPoolConfig,
    SoftAttentionPoolConfig,
};
use zoo_testing::{assert_panics_with, check_case};

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
