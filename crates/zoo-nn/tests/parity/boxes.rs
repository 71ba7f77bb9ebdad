use burn::prelude::*;
use zoo_nn::ops::*;
use zoo_testing::{FWD_TOL, Fixture, assert_close, assert_ints_eq, for_each_device};

use crate::cases;

fn fixture(op: &str, name: &str) -> Fixture {
    cases(op)
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("missing fixture {op}/{name}"))
}

#[test]
fn nms_matches_torchvision() {
    for case in cases("nms") {
        for_each_device(|name, device| {
            let keep = nms(
                case.float("boxes", device),
                case.float("scores", device),
                case.param("iou_threshold"),
            );
            assert_ints_eq(
                keep,
                &case.ints("keep"),
                &format!("nms/{} on {name}", case.name),
            );
        });
    }
}

#[test]
fn batched_nms_matches_torchvision() {
    for case in cases("batched_nms") {
        for_each_device(|name, device| {
            let keep = batched_nms(
                case.float("boxes", device),
                case.float("scores", device),
                case.int("idxs", device),
                case.param("iou_threshold"),
            );
            let what = format!("batched_nms/{} on {name}", case.name);
            assert_ints_eq(keep, &case.ints("keep"), &what);
        });
    }
}

#[test]
fn box_ops_match_torchvision() {
    let case = fixture("boxes", "box_ops");
    for_each_device(|name, device| {
        let what = |op: &str| format!("boxes/{op} on {name}");
        let b1: Tensor<2> = case.float("boxes1", device);
        assert_close(
            box_area(b1.clone()),
            case.float("box_area", device),
            FWD_TOL,
            &what("box_area"),
        );
        let iou = box_iou(b1, case.float("boxes2", device));
        assert_close(
            iou,
            case.float("box_iou", device),
            FWD_TOL,
            &what("box_iou"),
        );
        let clipped =
            clip_boxes_to_image(case.float("clip_input", device), case.param("image_size"));
        assert_close(
            clipped,
            case.float("clip_output", device),
            FWD_TOL,
            &what("clip"),
        );
        let keep = remove_small_boxes(case.float("small_boxes", device), case.param("min_size"));
        assert_ints_eq(keep, &case.ints("small_keep"), &what("remove_small_boxes"));
    });
}

#[test]
fn box_coder_matches_torchvision() {
    for case in cases("boxes")
        .into_iter()
        .filter(|c| c.name.starts_with("box_coder"))
    {
        let coder = BoxCoder::new(case.param("weights"));
        for_each_device(|name, device| {
            let what = |op: &str| format!("boxes/{} {op} on {name}", case.name);
            let encoded = coder.encode(
                case.float("gt_boxes", device),
                case.float("reference_boxes", device),
            );
            assert_close(
                encoded,
                case.float("encoded", device),
                FWD_TOL,
                &what("encode"),
            );
            let decoded = coder.decode(
                case.float("rel_codes", device),
                case.float("reference_boxes", device),
            );
            assert_close(
                decoded,
                case.float("decoded", device),
                FWD_TOL,
                &what("decode"),
            );
        });
    }
}

#[test]
fn nms_of_nothing_is_empty() {
    for_each_device(|name, device| {
        let keep = nms(
            Tensor::zeros([0, 4], device),
            Tensor::zeros([0], device),
            0.5,
        );
        assert_eq!(keep.dims(), [0], "nms on {name}");
    });
}
