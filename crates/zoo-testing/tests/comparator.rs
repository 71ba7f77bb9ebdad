//! The parity comparator decides every parity test, so it is tested itself: where the
//! tolerance `tol·(1 + |ref|)` lies, what NaNs do, which element a failure names, and that
//! `check_case` compares outputs and gradients (and fails when either is wrong).

use std::collections::HashMap;
use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::TensorData;
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use zoo_testing::{Fixture, assert_data_close, assert_panics_with, check_case};

fn data(values: &[f32]) -> TensorData {
    TensorData::new(values.to_vec(), [values.len()])
}

#[test]
fn the_tolerance_is_absolute_plus_relative() {
    let tol = 1e-4;
    // |diff| ≤ tol·(1 + |ref|): just inside passes, for small and large references.
    let err = assert_data_close(
        data(&[1.0 + 1.9e-4, 1000.0 + 0.1]),
        data(&[1.0, 1000.0]),
        tol,
        "inside",
    );
    assert!(
        (err - 0.1).abs() < 1e-3,
        "the largest |diff| is returned: {err}"
    );
    // Just outside fails, naming the element and both values.
    assert_panics_with(
        || {
            assert_data_close(
                data(&[0.0, 2.0 + 3.5e-4]),
                data(&[0.0, 2.0]),
                tol,
                "outside",
            );
        },
        &["outside", "element 1", "2.00035", "reference is 2"],
    );
    // The relative part is of the reference, not of the actual value.
    assert_panics_with(
        || {
            assert_data_close(data(&[1000.0]), data(&[0.0]), tol, "relative to ref");
        },
        &["relative to ref", "element 0"],
    );
}

#[test]
fn the_worst_violation_is_named() {
    assert_panics_with(
        || {
            assert_data_close(
                data(&[0.1, 0.0, 5.0, 0.2]),
                data(&[0.0, 0.0, 0.0, 0.0]),
                1e-4,
                "worst",
            );
        },
        &["element 2", "is 5"],
    );
}

#[test]
fn nans_match_only_nans() {
    let err = assert_data_close(
        data(&[f32::NAN, 1.0]),
        data(&[f32::NAN, 1.0]),
        1e-4,
        "both nan",
    );
    assert_eq!(err, 0.0);
    assert_panics_with(
        || {
            assert_data_close(data(&[f32::NAN]), data(&[1.0]), 1e-4, "nan vs 1");
        },
        &["nan vs 1", "element 0", "NaN"],
    );
    assert_panics_with(
        || {
            assert_data_close(data(&[1.0]), data(&[f32::NAN]), 1e-4, "1 vs nan");
        },
        &["1 vs nan", "element 0"],
    );
}

#[test]
fn shapes_must_agree() {
    assert_panics_with(
        || {
            assert_data_close(
                TensorData::new(vec![0.0f32; 4], [2, 2]),
                TensorData::new(vec![0.0f32; 4], [4]),
                1e-4,
                "reshaped",
            );
        },
        &["reshaped", "shape"],
    );
}

/// Writes a fixture of `y = 2·x` with the given output and input gradient.
fn doubling_fixture(name: &str, output: &[f32], grad_input: &[f32]) -> Fixture {
    let input = [0.5f32, -1.0, 2.0, 3.0];
    let grad_output = [1.0f32, 0.5, -2.0, 0.25];
    let bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let tensors: Vec<(&str, Vec<u8>)> = vec![
        ("input", bytes(&input)),
        ("output", bytes(output)),
        ("grad_output", bytes(&grad_output)),
        ("grad_input", bytes(grad_input)),
    ];
    let views: Vec<(&str, TensorView)> = tensors
        .iter()
        .map(|(n, b)| (*n, TensorView::new(Dtype::F32, vec![2, 2], b).unwrap()))
        .collect();
    let meta = HashMap::from([("params".to_string(), r#"{"factor": 2}"#.to_string())]);
    let file = safetensors::tensor::serialize(views, Some(meta)).unwrap();
    let path: PathBuf = std::env::temp_dir().join(format!(
        "zoo-testing-{name}-{}.safetensors",
        std::process::id()
    ));
    std::fs::write(&path, file).unwrap();
    let fixture = Fixture::load(&path);
    std::fs::remove_file(&path).ok();
    fixture
}

fn doubled(inputs: &zoo_testing::Inputs) -> Tensor<2> {
    let factor: f32 = inputs.case().param("factor");
    inputs.float::<2>("input").mul_scalar(factor)
}

#[test]
fn check_case_compares_outputs_and_gradients_on_every_device() {
    // sum(y · g) with y = 2x has the gradient 2g.
    let right = doubling_fixture("right", &[1.0, -2.0, 4.0, 6.0], &[2.0, 1.0, -4.0, 0.5]);
    check_case("double", &right, &["input"], doubled);

    let wrong_output = doubling_fixture(
        "wrong_output",
        &[1.0, -2.0, 4.0, 6.1],
        &[2.0, 1.0, -4.0, 0.5],
    );
    assert_panics_with(
        || check_case("double", &wrong_output, &["input"], doubled),
        &["double/", "output on", "element 3"],
    );
    let wrong_grad = doubling_fixture("wrong_grad", &[1.0, -2.0, 4.0, 6.0], &[2.0, 1.0, -4.0, 0.6]);
    assert_panics_with(
        || check_case("double", &wrong_grad, &["input"], doubled),
        &["grad_input on", "element 3"],
    );
}
