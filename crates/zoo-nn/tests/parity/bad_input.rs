//! Bad input gets a message naming the argument, the expected and the actual value.

use burn::prelude::*;
use zoo_nn::ops::*;
use zoo_testing::assert_panics_with;

fn cpu() -> Device {
    Device::flex()
}

fn input() -> Tensor<4> {
    Tensor::ones([2, 8, 6, 5], &cpu())
}

fn align() -> RoiAlignOptions {
    RoiAlignOptions::new([2, 2], 1.0, 2, true)
}

#[test]
fn rois_of_the_wrong_shape() {
    let rois = Tensor::<2>::zeros([3, 4], &cpu());
    assert_panics_with(
        || drop(roi_align(input(), rois, align())),
        &["roi_align", "rois", "[K, 5]", "[3, 4]"],
    );
}

#[test]
fn batch_index_outside_the_batch() {
    let rois = Tensor::<2>::from_floats([[2.0, 0.0, 0.0, 3.0, 3.0]], &cpu());
    assert_panics_with(
        || drop(roi_pool(input(), rois, RoiPoolOptions::new([2, 2], 1.0))),
        &["roi_pool", "rois[0, 0]", "batch index", "0..2", "got 2"],
    );
    let fractional = Tensor::<2>::from_floats([[0.5, 0.0, 0.0, 3.0, 3.0]], &cpu());
    assert_panics_with(
        || drop(roi_align(input(), fractional, align())),
        &["rois[0, 0]", "integer", "got 0.5"],
    );
}

#[test]
fn non_finite_coordinates() {
    let rois = Tensor::<2>::from_floats([[0.0, 0.0, f32::NAN, 3.0, 3.0]], &cpu());
    assert_panics_with(
        || drop(roi_align(input(), rois, align())),
        &["rois[0]", "non-finite", "NaN"],
    );
    let boxes = vec![
        Tensor::<2>::from_floats([[0.0, 0.0, f32::INFINITY, 3.0]], &cpu()),
        Tensor::<2>::zeros([0, 4], &cpu()),
    ];
    assert_panics_with(
        || {
            drop(multi_scale_roi_align(
                vec![input()],
                boxes,
                [24, 20],
                MultiScaleRoiAlignOptions::new([2, 2], 2),
            ))
        },
        &["boxes[0][0]", "non-finite", "inf"],
    );
}

#[test]
fn position_sensitive_channels_not_divisible() {
    let x = Tensor::<4>::ones([1, 10, 6, 5], &cpu());
    let rois = Tensor::<2>::from_floats([[0.0, 0.0, 0.0, 3.0, 3.0]], &cpu());
    assert_panics_with(
        || {
            drop(ps_roi_align(
                x.clone(),
                rois.clone(),
                PsRoiAlignOptions::new([2, 2], 1.0, 2),
            ))
        },
        &["ps_roi_align", "input channels (10)", "multiple", "2 * 2"],
    );
    assert_panics_with(
        || drop(ps_roi_pool(x, rois, PsRoiPoolOptions::new([3, 3], 1.0))),
        &["ps_roi_pool", "input channels (10)", "3 * 3"],
    );
}

#[test]
fn zero_sizes() {
    let rois = Tensor::<2>::from_floats([[0.0, 0.0, 0.0, 3.0, 3.0]], &cpu());
    assert_panics_with(
        || {
            drop(roi_align(
                input(),
                rois,
                RoiAlignOptions::new([0, 7], 1.0, 2, true),
            ))
        },
        &["roi_align", "output_size", "positive", "[0, 7]"],
    );
    let options = ResizeOptions::new(ResizeMode::Bilinear, false);
    assert_panics_with(
        || drop(resize(input(), [4, 0], options)),
        &["resize", "size", "positive", "[4, 0]"],
    );
}

#[test]
fn nearest_with_align_corners() {
    let options = ResizeOptions::new(ResizeMode::Nearest, true);
    assert_panics_with(
        || drop(resize(input(), [4, 4], options)),
        &["resize", "align_corners", "Nearest"],
    );
}

#[test]
fn deform_conv_shapes() {
    let weight = Tensor::<4>::ones([4, 8, 3, 3], &cpu());
    let offset = Tensor::<4>::zeros([2, 18, 5, 5], &cpu());
    let options = DeformConv2dOptions::new([1, 1], [1, 1], [1, 1]);
    assert_panics_with(
        || {
            drop(deform_conv2d(
                input(),
                offset,
                weight.clone(),
                None,
                None,
                options.clone(),
            ))
        },
        &[
            "deform_conv2d",
            "offset",
            "[2, 2·G·9, 6, 5]",
            "[2, 18, 5, 5]",
        ],
    );
    let offset = Tensor::<4>::zeros([2, 18, 6, 5], &cpu());
    let mask = Tensor::<4>::zeros([2, 8, 6, 5], &cpu());
    assert_panics_with(
        || {
            drop(deform_conv2d(
                input(),
                offset.clone(),
                weight.clone(),
                Some(mask),
                None,
                options.clone(),
            ))
        },
        &["mask", "[2, 9, 6, 5]", "[2, 8, 6, 5]"],
    );
    // A kernel window larger than the (padded) map.
    let big = Tensor::<4>::ones([4, 8, 9, 9], &cpu());
    let no_pad = DeformConv2dOptions::new([1, 1], [0, 0], [1, 1]);
    assert_panics_with(
        || drop(deform_conv2d(input(), offset, big, None, None, no_pad)),
        &["dilated kernel (9×9)", "larger than the padded input (6×5)"],
    );
}

#[test]
fn unpool_output_size_out_of_range() {
    let x = Tensor::<4>::ones([1, 2, 3, 3], &cpu());
    let idx = Tensor::<4, Int>::zeros([1, 2, 3, 3], &cpu());
    assert_panics_with(
        || drop(max_unpool2d(x, idx, [2, 2], [2, 2], [0, 0], [9, 6])),
        &["max_unpool2d", "output_size[0]", "between 5 and 7", "got 9"],
    );
}
