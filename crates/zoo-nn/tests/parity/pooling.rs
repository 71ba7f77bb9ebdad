//! Max-unpooling, and the Burn ops burn-zoo builds on (max-pool indices, pixel shuffle), proven
//! against PyTorch before they are relied upon.

use burn::nn::PixelShuffleConfig;
use burn::tensor::module::max_pool2d_with_indices;
use burn::tensor::ops::MaxPoolOptions;
use zoo_nn::ops::max_unpool2d;
use zoo_testing::{assert_ints_eq, check_case, for_each_device};

use crate::cases;

#[test]
fn max_unpool2d_matches_pytorch() {
    for case in cases("max_unpool2d") {
        check_case("max_unpool2d", &case, &["input"], |x| {
            max_unpool2d(
                x.float("input"),
                x.int("indices"),
                case.param("kernel_size"),
                case.param("stride"),
                case.param("padding"),
                case.param("output_size"),
            )
        });
    }
}

#[test]
fn burn_max_pool2d_with_indices_matches_pytorch() {
    for case in cases("max_pool2d_with_indices") {
        let options = MaxPoolOptions::new(case.param("kernel_size"))
            .with_stride(case.param("stride"))
            .with_padding(case.param("padding"))
            .with_dilation(case.param("dilation"));
        check_case("max_pool2d_with_indices", &case, &["input"], |x| {
            max_pool2d_with_indices(x.float("input"), options.clone()).0
        });
        for_each_device(|name, device| {
            let (_, indices) =
                max_pool2d_with_indices(case.float("input", device), options.clone());
            assert_ints_eq(
                indices,
                &case.ints("indices"),
                &format!("max_pool2d_with_indices/{} indices on {name}", case.name),
            );
        });
    }
}

#[test]
fn burn_pixel_shuffle_matches_pytorch() {
    for case in cases("pixel_shuffle") {
        let shuffle = PixelShuffleConfig::new(case.param("upscale_factor")).init();
        check_case("pixel_shuffle", &case, &["input"], |x| {
            shuffle.forward(x.float("input"))
        });
    }
}

#[test]
fn max_unpool2d_module_matches_pytorch() {
    use zoo_nn::layers::MaxUnpool2dConfig;
    for case in cases("max_unpool2d") {
        let unpool = MaxUnpool2dConfig::new()
            .with_kernel_size(case.param("kernel_size"))
            .with_stride(case.param("stride"))
            .with_padding(case.param("padding"))
            .init();
        check_case("MaxUnpool2d", &case, &["input"], |x| {
            unpool.forward(
                x.float("input"),
                x.int("indices"),
                Some(case.param("output_size")),
            )
        });
    }
}
