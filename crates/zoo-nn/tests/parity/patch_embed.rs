//! `PatchEmbed` against timm's `PatchEmbed` (NHWC output, optional norm and padding).

use zoo_nn::layers::PatchEmbedConfig;
use zoo_testing::{assert_panics_with, check_case};

use crate::cases;
use crate::load::{conv, differentiable, layer_norm};

#[test]
fn patch_embed_matches_timm() {
    for case in cases("patch_embed") {
        let config = PatchEmbedConfig::new()
            .with_in_channels(case.param("in_channels"))
            .with_embed_dim(case.param("embed_dim"))
            .with_patch_size(case.param("patch_size"))
            .with_norm(case.param("norm"))
            .with_pad(case.param("pad"));
        let params = differentiable(&case);
        let wrt: Vec<&str> = params.iter().map(String::as_str).collect();
        check_case("PatchEmbed", &case, &wrt, |x| {
            let mut embed = config.init(&x.device);
            embed.proj = conv(embed.proj, x, "proj");
            embed.norm = embed.norm.map(|n| layer_norm(n, x, "norm"));
            embed.forward(x.float("input"))
        });
    }
}

#[test]
fn patch_embed_rejects_sizes_that_do_not_divide() {
    use burn::prelude::*;
    let device = Device::flex();
    let embed = PatchEmbedConfig::new().with_patch_size(4).init(&device);
    let x = Tensor::<4>::zeros([1, 3, 10, 12], &device);
    assert_panics_with(
        || drop(embed.forward(x)),
        &["PatchEmbed", "10×12", "patch_size 4", "pad"],
    );
    let tokens = embed.forward_tokens(Tensor::zeros([1, 3, 8, 12], &device));
    assert_eq!(tokens.dims(), [1, 6, 768]);
    assert_panics_with(
        || drop(PatchEmbedConfig::new().with_patch_size(0).init(&device)),
        &["PatchEmbedConfig", "patch_size"],
    );
}
