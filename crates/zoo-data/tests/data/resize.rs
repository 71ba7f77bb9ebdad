//! The antialiased resize of the evaluation protocols against torchvision's
//! `resize(tensor, size, interpolation, antialias=True)`: every case of
//! `tests/fixtures/resize.json` (written by `tools/parity/resize.py`), down- and upscaling,
//! bilinear and bicubic.

use std::path::Path;

use zoo_data::{Filter, resize_antialiased};

#[test]
fn antialiased_resize_matches_torchvision() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/resize.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_f64().expect("number") as f32)
            .collect()
    };
    let size = |v: &serde_json::Value| -> [usize; 2] {
        let a = v.as_array().expect("size");
        [
            a[0].as_u64().unwrap() as usize,
            a[1].as_u64().unwrap() as usize,
        ]
    };
    let input = floats(&doc["input"]);
    let from = size(&doc["input_size"]);
    let cases = doc["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 8);
    for case in cases {
        let to = size(&case["size"]);
        let filter = match case["filter"].as_str() {
            Some("bilinear") => Filter::Bilinear,
            Some("bicubic") => Filter::Bicubic,
            other => panic!("unknown filter {other:?}"),
        };
        let want = floats(&case["output"]);
        let got = resize_antialiased(&input, 3, from, to, filter);
        assert_eq!(got.len(), want.len());
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst < 1e-5,
            "{filter:?} {from:?} → {to:?}: max error {worst}"
        );
    }
}
