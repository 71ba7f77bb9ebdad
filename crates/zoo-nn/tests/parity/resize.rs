use zoo_nn::ops::{ResizeMode, ResizeOptions, resize};
use zoo_testing::check_case;

use crate::cases;

#[test]
fn resize_matches_interpolate() {
    for case in cases("resize") {
        let mode = match case.param::<String>("mode").as_str() {
            "nearest" => ResizeMode::Nearest,
            "nearest_exact" => ResizeMode::NearestExact,
            "bilinear" => ResizeMode::Bilinear,
            "bicubic" => ResizeMode::Bicubic,
            other => panic!("resize/{}: unknown mode {other}", case.name),
        };
        let options = ResizeOptions::new(mode, case.param("align_corners"));
        check_case("resize", &case, &["input"], |x| {
            resize(x.float("input"), case.param("size"), options.clone())
        });
    }
}
