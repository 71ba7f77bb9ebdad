//! Attention pooling against the seed's PyTorch classes.

use zoo_nn::layers::SoftAttentionPoolConfig;
use zoo_testing::{assert_panics_with, check_case};

use crate::cases;
use crate::load::{conv, differentiable};

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
