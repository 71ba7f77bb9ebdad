//! `PatchMerging` against timm's Swin `PatchMerging` (even and odd sizes, custom out_dim).

use zoo_nn::layers::PatchMergingConfig;
use zoo_testing::check_case;

use crate::cases;
use crate::load::{differentiable, layer_norm, linear};

#[test]
fn patch_merging_matches_timm() {
    for case in cases("patch_merging") {
        let config = PatchMergingConfig::new(case.param("dim")).with_out_dim(case.param("out_dim"));
        let params = differentiable(&case);
        let wrt: Vec<&str> = params.iter().map(String::as_str).collect();
        check_case("PatchMerging", &case, &wrt, |x| {
            let mut merge = config.init(&x.device);
            merge.norm = layer_norm(merge.norm, x, "norm");
            merge.reduction = linear(merge.reduction, x, "reduction");
            merge.forward(x.float("input"))
        });
    }
}
