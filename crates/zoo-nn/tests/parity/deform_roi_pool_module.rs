//! `DeformRoiPool` (offset fc + deformable ROI pooling) against mmcv's `DeformRoIPoolPack`
//! semantics: forward, and gradients of the feature map and of every offset-fc parameter.

use burn::prelude::*;
use zoo_nn::layers::{DeformRoiPool, DeformRoiPoolConfig};
use zoo_nn::ops::{RoiAlignOptions, roi_align};
use zoo_testing::{FWD_TOL, assert_close, assert_panics_with, check_case, for_each_device};

use crate::cases;
use crate::load::{differentiable, linear};

fn config(case: &zoo_testing::Fixture) -> DeformRoiPoolConfig {
    DeformRoiPoolConfig::new(case.param("output_size"), case.param("output_channels"))
        .with_deform_fc_channels(case.param("deform_fc_channels"))
        .with_spatial_scale(case.param("spatial_scale"))
        .with_sampling_ratio(case.param("sampling_ratio"))
        .with_gamma(case.param("gamma"))
}

#[test]
fn deform_roi_pool_module_matches_mmcv_pack() {
    for case in cases("deform_roi_pool_module") {
        let config = config(&case);
        let params = differentiable(&case);
        let wrt: Vec<&str> = params.iter().map(String::as_str).collect();
        check_case("DeformRoiPool", &case, &wrt, |x| {
            let mut pool: DeformRoiPool = config.init(&x.device);
            pool.offset_fc = std::mem::take(&mut pool.offset_fc)
                .into_iter()
                .zip([0, 2, 4])
                .map(|(fc, i)| linear(fc, x, &format!("offset_fc.{i}")))
                .collect();
            pool.forward(x.float("input"), x.float("rois"))
        });
    }
}

#[test]
fn fresh_deform_roi_pool_is_aligned_roi_align() {
    for_each_device(|name, device| {
        let pool = DeformRoiPoolConfig::new([3, 2], 4)
            .with_deform_fc_channels(8)
            .with_spatial_scale(0.5)
            .with_sampling_ratio(2)
            .init(device);
        let x = Tensor::<4>::random([2, 4, 9, 8], burn::tensor::Distribution::Default, device);
        let rois = Tensor::<2>::from_data(
            [[0.0, 1.0, 2.0, 11.0, 13.0], [1.0, 3.5, 0.5, 9.0, 15.0]],
            device,
        );
        let expected = roi_align(
            x.clone(),
            rois.clone(),
            RoiAlignOptions::new([3, 2], 0.5, 2, true),
        );
        let what = format!("zero-initialised offsets on {name}");
        assert_close(pool.forward(x, rois), expected, FWD_TOL, &what);
    });
}

#[test]
fn deform_roi_pool_config_round_trips_and_names_bad_fields() {
    let config = DeformRoiPoolConfig::new([7, 7], 256).with_gamma(0.2);
    let back: DeformRoiPoolConfig =
        serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
    assert_eq!(
        (back.output_size, back.gamma, back.deform_fc_channels),
        ([7, 7], 0.2, 1024)
    );
    let device = Device::flex();
    assert_panics_with(
        || drop(DeformRoiPoolConfig::new([7, 0], 4).init(&device)),
        &["DeformRoiPoolConfig", "output_size[1]", "positive"],
    );
    let pool = DeformRoiPoolConfig::new([2, 2], 4)
        .with_deform_fc_channels(4)
        .init(&device);
    assert_panics_with(
        || {
            drop(pool.forward(
                Tensor::zeros([1, 3, 5, 5], &device),
                Tensor::zeros([1, 5], &device),
            ))
        },
        &["DeformRoiPool", "output_channels = 4", "got 3"],
    );
}
