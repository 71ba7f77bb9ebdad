//! A downstream Burn project that depends on `zoo-nn` and `zoo-models`: it calls zoo-nn's
//! functional operators on the backend it chose (flex here), a two-stage-detector-style
//! pipeline in miniature, and loads upstream PyTorch weights into a layer, a head and a
//! backbone in one call each (`weights.rs`).
//!
//! Run with `cargo run -p use-as-dependency`.

mod weights;

use burn::prelude::*;
use zoo_nn::ops::{
    BoxCoder, DeformConv2dOptions, MultiScaleRoiAlignOptions, ResizeMode, ResizeOptions,
    RoiAlignOptions, batched_nms, box_iou, deform_conv2d, multi_scale_roi_align, nms, resize,
    roi_align,
};

/// Shapes and kept boxes of one pass, so `main` can print them and the test can check them.
#[derive(Debug)]
#[allow(dead_code)] // `main` reads the fields through `Debug`.
struct Summary {
    deformed: [usize; 4],
    upsampled: [usize; 4],
    pooled: [usize; 4],
    pyramid_pooled: [usize; 4],
    kept: Vec<i64>,
    kept_per_class: Vec<i64>,
    best_iou: f32,
}

fn run(device: &Device) -> Summary {
    // A feature map and a DCNv2 layer with zero offsets and a constant 0.5 mask.
    let features = Tensor::<4>::random([2, 8, 16, 16], burn::tensor::Distribution::Default, device);
    let weight = Tensor::<4>::random([8, 8, 3, 3], burn::tensor::Distribution::Default, device);
    let offset = Tensor::<4>::zeros([2, 18, 16, 16], device);
    let mask = Tensor::<4>::full([2, 9, 16, 16], 0.5, device);
    let deformed = deform_conv2d(
        features,
        offset,
        weight,
        Some(mask),
        None,
        DeformConv2dOptions::new([1, 1], [1, 1], [1, 1]),
    );
    let upsampled = resize(
        deformed.clone(),
        [32, 32],
        ResizeOptions::new(ResizeMode::Bilinear, false),
    );

    // Proposals in image coordinates (the image is 64×64, the map has stride 4).
    let boxes = Tensor::<2>::from_floats(
        [
            [4.0, 4.0, 40.0, 40.0],
            [6.0, 5.0, 41.0, 42.0],
            [30.0, 30.0, 60.0, 62.0],
            [0.0, 0.0, 10.0, 12.0],
        ],
        device,
    );
    let scores = Tensor::<1>::from_floats([0.9, 0.8, 0.7, 0.6], device);
    let classes = Tensor::<1, Int>::from_ints([1, 1, 2, 1], device);
    let kept = nms(boxes.clone(), scores.clone(), 0.5);
    let kept_per_class = batched_nms(boxes.clone(), scores, classes, 0.5);
    let rois = Tensor::cat(vec![Tensor::zeros([4, 1], device), boxes.clone()], 1);
    let pooled = roi_align(
        deformed.clone(),
        rois,
        RoiAlignOptions::new([7, 7], 0.25, 2, true),
    );
    let pyramid_pooled = multi_scale_roi_align(
        vec![upsampled.clone(), deformed.clone()],
        vec![boxes.clone(), boxes.clone()],
        [64, 64],
        MultiScaleRoiAlignOptions::new([7, 7], 2),
    );
    let coder = BoxCoder::new([10.0, 10.0, 5.0, 5.0]);
    let deltas = coder.encode(boxes.clone(), boxes.clone());
    let decoded = coder.decode(deltas, boxes.clone()).reshape([4, 4]);
    let best_iou = box_iou(decoded, boxes).max().into_scalar::<f32>();
    Summary {
        deformed: deformed.dims(),
        upsampled: upsampled.dims(),
        pooled: pooled.dims(),
        pyramid_pooled: pyramid_pooled.dims(),
        kept: kept.into_data().iter::<i64>().collect(),
        kept_per_class: kept_per_class.into_data().iter::<i64>().collect(),
        best_iou,
    }
}

fn main() -> Result<(), zoo_nn::weights::WeightsError> {
    let summary = run(&Device::flex());
    println!("{summary:#?}");
    let weights = weights::run(&Device::flex())?;
    println!("{weights:#?}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_runs_with_zoo_nn_as_a_dependency() {
        let s = run(&Device::flex());
        assert_eq!(s.deformed, [2, 8, 16, 16]);
        assert_eq!(s.upsampled, [2, 8, 32, 32]);
        assert_eq!(s.pooled, [4, 8, 7, 7]);
        assert_eq!(s.pyramid_pooled, [8, 8, 7, 7]);
        assert_eq!(s.kept, vec![0, 2, 3]);
        assert_eq!(s.kept_per_class, vec![0, 2, 3]);
        assert!(
            (s.best_iou - 1.0).abs() < 1e-5,
            "encode/decode round trip: {}",
            s.best_iou
        );
    }

    #[test]
    fn upstream_weights_load_in_one_call() {
        let w = weights::run(&Device::flex()).unwrap();
        for (what, diff) in [
            ("ASPP", w.aspp_max_diff),
            ("FCNHead", w.fcn_head_max_diff),
            ("Swin", w.swin_max_diff),
            ("DeepLabHead round trip", w.deeplab_head_round_trip_diff),
        ] {
            assert!(diff < 1e-4, "{what}: max difference {diff}");
        }
        assert_eq!(w.deeplab_head, [1, 3, 6, 6]);
    }
}
