use zoo_nn::ops::*;
use zoo_testing::check_case;

use crate::cases;

#[test]
fn deform_conv2d_matches_torchvision() {
    for case in cases("deform_conv2d") {
        let options = DeformConv2dOptions::new(
            case.param("stride"),
            case.param("padding"),
            case.param("dilation"),
        );
        check_case(
            "deform_conv2d",
            &case,
            &["input", "offset", "weight", "mask", "bias"],
            |x| {
                deform_conv2d(
                    x.float("input"),
                    x.float("offset"),
                    x.float("weight"),
                    x.float_opt("mask"),
                    x.float_opt("bias"),
                    options.clone(),
                )
            },
        );
    }
}
