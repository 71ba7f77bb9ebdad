use burn::prelude::*;
use zoo_nn::ops::*;
use zoo_testing::{Fixture, check_case, for_each_device};

use crate::cases;

#[test]
fn roi_align_matches_torchvision() {
    for case in cases("roi_align") {
        let options = RoiAlignOptions::new(
            case.param("output_size"),
            case.param("spatial_scale"),
            case.param("sampling_ratio"),
            case.param("aligned"),
        );
        check_case("roi_align", &case, &["input"], |x| {
            roi_align(x.float("input"), x.float("rois"), options.clone())
        });
        let module = options.init();
        check_case("RoiAlign", &case, &["input"], |x| {
            module.forward(x.float("input"), x.float("rois"))
        });
    }
}

#[test]
fn roi_pool_matches_torchvision() {
    for case in cases("roi_pool") {
        let options = RoiPoolOptions::new(case.param("output_size"), case.param("spatial_scale"));
        check_case("roi_pool", &case, &["input"], |x| {
            roi_pool(x.float("input"), x.float("rois"), options.clone())
        });
        let module = options.init();
        check_case("RoiPool", &case, &["input"], |x| {
            module.forward(x.float("input"), x.float("rois"))
        });
    }
}

#[test]
fn ps_roi_align_matches_torchvision() {
    for case in cases("ps_roi_align") {
        let options = PsRoiAlignOptions::new(
            case.param("output_size"),
            case.param("spatial_scale"),
            case.param("sampling_ratio"),
        );
        check_case("ps_roi_align", &case, &["input"], |x| {
            ps_roi_align(x.float("input"), x.float("rois"), options.clone())
        });
        let module = options.init();
        check_case("PsRoiAlign", &case, &["input"], |x| {
            module.forward(x.float("input"), x.float("rois"))
        });
    }
}

#[test]
fn ps_roi_pool_matches_torchvision() {
    for case in cases("ps_roi_pool") {
        let options = PsRoiPoolOptions::new(case.param("output_size"), case.param("spatial_scale"));
        // torchvision's CPU backward clips bins to H/W while its forward clips to H-1/W-1;
        // where a bin touches the last row/column only the forward is comparable.
        let wrt: &[&str] = if case.param("grad_consistent") {
            &["input"]
        } else {
            &[]
        };
        check_case("ps_roi_pool", &case, wrt, |x| {
            ps_roi_pool(x.float("input"), x.float("rois"), options.clone())
        });
        let module = options.init();
        check_case("PsRoiPool", &case, wrt, |x| {
            module.forward(x.float("input"), x.float("rois"))
        });
    }
}

#[test]
fn deform_roi_pool_matches_mmcv_semantics() {
    for case in cases("deform_roi_pool") {
        let options = DeformRoiPoolOptions::new(
            case.param("output_size"),
            case.param("spatial_scale"),
            case.param("sampling_ratio"),
            case.param("gamma"),
        );
        check_case("deform_roi_pool", &case, &["input", "offset"], |x| {
            deform_roi_pool(
                x.float("input"),
                x.float("rois"),
                x.float_opt("offset"),
                options.clone(),
            )
        });
    }
}

fn feature_names(case: &Fixture, prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("{prefix}_{i}"))
        .filter(|n| case.has(n))
        .collect()
}

#[test]
fn multi_scale_roi_align_matches_torchvision() {
    for case in cases("multi_scale_roi_align") {
        let levels: usize = case.param("num_levels");
        let images: usize = case.param("num_images");
        let options =
            MultiScaleRoiAlignOptions::new(case.param("output_size"), case.param("sampling_ratio"));
        let features = feature_names(&case, "feature", levels);
        let boxes = feature_names(&case, "boxes", images);
        let wrt: Vec<&str> = features.iter().map(String::as_str).collect();
        check_case("multi_scale_roi_align", &case, &wrt, |x| {
            multi_scale_roi_align(
                features.iter().map(|f| x.float(f)).collect(),
                boxes.iter().map(|b| x.float(b)).collect(),
                case.param("image_size"),
                options.clone(),
            )
        });
        let module = options.init();
        check_case("MultiScaleRoiAlign", &case, &wrt, |x| {
            module.forward(
                features.iter().map(|f| x.float(f)).collect(),
                boxes.iter().map(|b| x.float(b)).collect(),
                case.param("image_size"),
            )
        });
    }
}

#[test]
fn roi_ops_accept_zero_rois() {
    for_each_device(|name, device| {
        let input = Tensor::<4>::ones([2, 8, 6, 5], device);
        let rois = Tensor::<2>::zeros([0, 5], device);
        let out = roi_align(
            input.clone(),
            rois.clone(),
            RoiAlignOptions::new([3, 3], 1.0, 2, true),
        );
        assert_eq!(out.dims(), [0, 8, 3, 3], "roi_align on {name}");
        let out = roi_pool(
            input.clone(),
            rois.clone(),
            RoiPoolOptions::new([2, 2], 1.0),
        );
        assert_eq!(out.dims(), [0, 8, 2, 2], "roi_pool on {name}");
        let out = ps_roi_align(
            input.clone(),
            rois.clone(),
            PsRoiAlignOptions::new([2, 2], 1.0, 2),
        );
        assert_eq!(out.dims(), [0, 2, 2, 2], "ps_roi_align on {name}");
        let boxes = vec![Tensor::<2>::zeros([0, 4], device); 2];
        let out = multi_scale_roi_align(
            vec![input.clone(), input],
            boxes,
            [24, 20],
            MultiScaleRoiAlignOptions::new([7, 7], 2),
        );
        assert_eq!(out.dims(), [0, 8, 7, 7], "multi_scale_roi_align on {name}");
    });
}

/// Gradients stay exact when one call gathers more than 65 535 sample points (Burn 0.22.1's
/// wgpu `select` backward drops the contributions past that; the ops split their gathers).
/// With ROIs inside the map every bin's bilinear weights sum to 1, so with a unit upstream
/// gradient the input gradient sums to the number of output values.
#[test]
fn roi_align_gradient_is_complete_beyond_65535_sample_points() {
    zoo_testing::for_each_autodiff_device(|name, device| {
        let (n, c, size) = (2, 4, 24);
        let x = Tensor::<4>::zeros([n, c, size, size], device).require_grad();
        let k = 400;
        let rois: Vec<f32> = (0..k)
            .flat_map(|i| {
                let (a, b) = ((i * 37 % 40) as f32, (i * 53 % 40) as f32);
                [
                    (i % 2) as f32,
                    a,
                    b,
                    a + 8.0 + (i % 40) as f32,
                    b + 6.0 + (i % 30) as f32,
                ]
            })
            .collect();
        let rois = Tensor::<2>::from_data(TensorData::new(rois, [k, 5]), device);
        // 400 ROIs × 7 × 7 bins × 4 samples × 4 taps = 313 600 gathered rows.
        let y = roi_align(
            x.clone(),
            rois,
            RoiAlignOptions::new([7, 7], 0.25, 2, false),
        );
        let grad = x.grad(&y.sum().backward()).expect("input gradient");
        let total = grad.sum().into_scalar::<f32>();
        let expected = (k * c * 7 * 7) as f32;
        assert!(
            (total - expected).abs() <= 1e-3 * expected,
            "roi_align on {name}: input gradient sums to {total}, expected {expected}"
        );
    });
}
