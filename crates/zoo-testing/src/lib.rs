//! Test support shared by the burn-zoo crates (dev-dependency only).
//!
//! - [`for_each_device`] / [`for_each_autodiff_device`] run one test body on every backend
//!   burn-zoo supports (flex, ndarray, wgpu), so each test is written once.
//! - [`Fixture`] reads a reference case written by `tools/parity/*.py`: named tensors plus the
//!   op's parameters as JSON in the `params` header entry.
//! - [`assert_close`] compares with `|a − b| ≤ atol + rtol·|ref|` and reports the worst element.
#![warn(missing_docs)]
#![allow(deprecated)] // `Device::ndarray()` is deprecated upstream but still a supported backend.

use std::path::{Path, PathBuf};

use std::cell::RefCell;

use burn::prelude::*;
use burn::tensor::{DeviceKind, Gradients, TensorData};
use safetensors::{Dtype, SafeTensors};
use serde::de::DeserializeOwned;

/// Forward tolerance (absolute and relative) against PyTorch, f32.
pub const FWD_TOL: f32 = 1e-4;
/// Gradient tolerance (absolute and relative) against PyTorch, f32.
pub const GRAD_TOL: f32 = 1e-3;

/// The backends every test runs on, by name.
///
/// `ZOO_TEST_DEVICES` (comma separated: `flex,ndarray,wgpu`) narrows the list, e.g. to skip
/// wgpu on a machine without Vulkan while iterating locally. CI runs all of them.
pub fn devices() -> Vec<(&'static str, Device)> {
    let wanted = std::env::var("ZOO_TEST_DEVICES").ok();
    let enabled = |name: &str| {
        wanted
            .as_deref()
            .is_none_or(|list| list.split(',').any(|w| w.trim() == name))
    };
    let mut out = Vec::new();
    if enabled("flex") {
        out.push(("flex", Device::flex()));
    }
    if enabled("ndarray") {
        out.push(("ndarray", Device::ndarray()));
    }
    if enabled("wgpu") {
        out.push(("wgpu", Device::wgpu(DeviceKind::DefaultDevice)));
    }
    assert!(
        !out.is_empty(),
        "ZOO_TEST_DEVICES={wanted:?} selects no backend"
    );
    out
}

/// Runs `body` once per backend (plain, no autodiff).
pub fn for_each_device(mut body: impl FnMut(&str, &Device)) {
    for (name, device) in devices() {
        body(name, &device);
    }
}

/// Runs `body` once per backend on its `.autodiff()` device, for gradient tests.
pub fn for_each_autodiff_device(mut body: impl FnMut(&str, &Device)) {
    for (name, device) in devices() {
        body(name, &device.autodiff());
    }
}

/// One reference case: tensors and parameters written by a `tools/parity` script.
pub struct Fixture {
    /// File stem, used in failure messages.
    pub name: String,
    bytes: Vec<u8>,
    params: serde_json::Value,
}

impl Fixture {
    /// Reads a `.safetensors` fixture; panics with the path if it is missing or malformed.
    pub fn load(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
        let (_, meta) = SafeTensors::read_metadata(&bytes)
            .unwrap_or_else(|e| panic!("{} is not a safetensors file: {e}", path.display()));
        let params = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("params"))
            .map(|p| serde_json::from_str(p).expect("params metadata is not JSON"))
            .unwrap_or(serde_json::Value::Null);
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        Self {
            name,
            bytes,
            params,
        }
    }

    /// Every `*.safetensors` case in `dir`, sorted by name; panics if there is none.
    pub fn all_in(dir: impl AsRef<Path>) -> Vec<Fixture> {
        let dir = dir.as_ref();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot list fixtures in {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        paths.sort();
        assert!(!paths.is_empty(), "no fixtures in {}", dir.display());
        paths.into_iter().map(Fixture::load).collect()
    }

    fn tensors(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).expect("fixture was validated on load")
    }

    /// Names of all tensors in the case, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .tensors()
            .names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        names.sort();
        names
    }

    /// Whether the case has a tensor called `name`.
    pub fn has(&self, name: &str) -> bool {
        self.tensors().names().contains(&name)
    }

    /// Tensor `name` as host data (f32 for float tensors, i64 for integer tensors).
    pub fn data(&self, name: &str) -> TensorData {
        let st = self.tensors();
        let view = st
            .tensor(name)
            .unwrap_or_else(|_| panic!("fixture {} has no tensor {name:?}", self.name));
        let shape = view.shape().to_vec();
        let raw = view.data();
        match view.dtype() {
            Dtype::F32 => TensorData::new(
                raw.chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect::<Vec<_>>(),
                shape,
            ),
            Dtype::I64 => TensorData::new(
                raw.chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                    .collect::<Vec<_>>(),
                shape,
            ),
            other => panic!("fixture {}: tensor {name:?} has dtype {other:?}", self.name),
        }
    }

    /// Float tensor `name` on `device`.
    pub fn float<const D: usize>(&self, name: &str, device: &Device) -> Tensor<D> {
        let data = self.data(name);
        assert_eq!(
            data.shape().len(),
            D,
            "fixture {}: {name:?} has rank {}, test expects {D}",
            self.name,
            data.shape().len()
        );
        Tensor::from_data(data, device)
    }

    /// Integer tensor `name` on `device`.
    pub fn int<const D: usize>(&self, name: &str, device: &Device) -> Tensor<D, Int> {
        let data = self.data(name);
        assert_eq!(
            data.shape().len(),
            D,
            "fixture {}: rank of {name:?}",
            self.name
        );
        Tensor::from_data(data, device)
    }

    /// Integer tensor `name` as a host vector.
    pub fn ints(&self, name: &str) -> Vec<i64> {
        self.data(name).iter::<i64>().collect()
    }

    /// Parameter `key` from the case's `params` JSON.
    pub fn param<T: DeserializeOwned>(&self, key: &str) -> T {
        let value = self
            .params
            .get(key)
            .unwrap_or_else(|| panic!("fixture {} has no param {key:?}", self.name));
        serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("fixture {}: param {key:?}: {e}", self.name))
    }

    /// Parameter `key`, or `None` when the case does not set it.
    pub fn param_opt<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.params.get(key).map(|_| self.param(key))
    }
}

/// Asserts `|actual − expected| ≤ tol + tol·|expected|` elementwise and equal shapes.
///
/// `what` names the quantity (e.g. `"roi_align/aligned_adaptive grad_input on wgpu"`); the
/// panic message gives the worst element, its index and both values.
pub fn assert_close<const D: usize>(actual: Tensor<D>, expected: Tensor<D>, tol: f32, what: &str) {
    let err = assert_data_close(actual.into_data(), expected.into_data(), tol, what);
    report(what, err);
}

/// Prints `PARITY <what> max_abs=<err>` (visible with `--nocapture`), for issue notes.
fn report(what: &str, err: f32) {
    println!("PARITY {what} max_abs={err:.3e}");
}

/// [`assert_close`] on host data; returns the largest absolute difference.
pub fn assert_data_close(actual: TensorData, expected: TensorData, tol: f32, what: &str) -> f32 {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shape");
    let a: Vec<f32> = actual.iter::<f32>().collect();
    let e: Vec<f32> = expected.iter::<f32>().collect();
    let max_abs = a
        .iter()
        .zip(&e)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    if let Some((i, excess)) = max_violation(&a, &e, tol) {
        panic!(
            "{what}: element {i} is {} but the reference is {} (|diff| exceeds the tolerance {tol}·(1+|ref|) by {excess:e})",
            a[i], e[i]
        );
    }
    max_abs
}

/// Largest absolute difference between two equally shaped tensors (for reporting).
pub fn max_abs_diff<const D: usize>(actual: Tensor<D>, expected: Tensor<D>) -> f32 {
    let a: Vec<f32> = actual.into_data().iter::<f32>().collect();
    let e: Vec<f32> = expected.into_data().iter::<f32>().collect();
    a.iter()
        .zip(&e)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn max_violation(a: &[f32], e: &[f32], tol: f32) -> Option<(usize, f32)> {
    let mut worst: Option<(usize, f32)> = None;
    for (i, (&x, &y)) in a.iter().zip(e).enumerate() {
        let excess = if x.is_nan() || y.is_nan() {
            if x.is_nan() && y.is_nan() {
                continue;
            }
            f32::INFINITY
        } else {
            (x - y).abs() - (tol + tol * y.abs())
        };
        if excess > 0.0 && worst.is_none_or(|(_, w)| excess > w) {
            worst = Some((i, excess));
        }
    }
    worst
}

/// Asserts two integer tensors are equal, naming `what` and the first difference.
pub fn assert_ints_eq<const D: usize>(actual: Tensor<D, Int>, expected: &[i64], what: &str) {
    let a: Vec<i64> = actual.into_data().iter::<i64>().collect();
    assert_eq!(a, expected, "{what}");
}

type GradReader = Box<dyn Fn(&Gradients) -> Option<TensorData>>;

/// The inputs of one fixture on one device, handed to the body of [`check_case`].
///
/// Float inputs named in the case's gradient list are marked `require_grad` on autodiff
/// devices, and their gradients are compared with the fixture's `grad_<name>`.
pub struct Inputs<'a> {
    case: &'a Fixture,
    /// Device the inputs live on.
    pub device: Device,
    wrt: &'a [&'a str],
    tracked: RefCell<Vec<(String, GradReader)>>,
}

impl Inputs<'_> {
    /// Float input `name` (tracked for gradients when it is in the case's list).
    pub fn float<const D: usize>(&self, name: &str) -> Tensor<D> {
        let t = self.case.float::<D>(name, &self.device);
        self.track(name, t, |grad| grad)
    }

    /// Matrix input `name`, transposed (PyTorch `Linear` weights are `[out, in]`, Burn's are
    /// `[in, out]`); tracked like [`Self::float`], its gradient transposed back for comparison.
    pub fn float_transposed(&self, name: &str) -> Tensor<2> {
        let t: Tensor<2> = self.case.float::<2>(name, &self.device).transpose();
        // A fresh leaf: the transpose itself must not be part of the graph.
        let t = Tensor::from_data(t.into_data(), &self.device);
        self.track(name, t, |grad: Tensor<2>| grad.transpose())
    }

    /// Input `name` split into `parts` equal chunks along dimension 0, each chunk transposed
    /// (PyTorch packs q/k/v projections as `[3·E, E]`; Burn holds three `[E, E]` Linear
    /// weights `[in, out]`). Each chunk is its own gradient leaf; their gradients are
    /// transposed back and concatenated for comparison with `grad_<name>`.
    pub fn float_chunks_transposed(&self, name: &str, parts: usize) -> Vec<Tensor<2>> {
        let whole: Tensor<2> = self.case.float(name, &self.device);
        let leaves = whole
            .chunk(parts, 0)
            .into_iter()
            .map(|c| Tensor::from_data(c.transpose().into_data(), &self.device))
            .collect();
        self.track_all(name, leaves, |grad: Tensor<2>| grad.transpose())
    }

    /// Input `name` split into `parts` equal chunks along dimension 0, tracked as
    /// [`Self::float_chunks_transposed`] (for packed biases).
    pub fn float_chunks<const D: usize>(&self, name: &str, parts: usize) -> Vec<Tensor<D>> {
        let whole: Tensor<D> = self.case.float(name, &self.device);
        let leaves = whole
            .chunk(parts, 0)
            .into_iter()
            .map(|c| Tensor::from_data(c.into_data(), &self.device))
            .collect();
        self.track_all(name, leaves, |grad| grad)
    }

    /// Marks `t` as a gradient leaf when `name` is compared on this (autodiff) device, and
    /// records how to read its gradient back in the fixture's layout.
    fn track<const D: usize>(
        &self,
        name: &str,
        t: Tensor<D>,
        to_fixture: impl Fn(Tensor<D>) -> Tensor<D> + 'static,
    ) -> Tensor<D> {
        let mut leaves = self.track_all(name, vec![t], to_fixture);
        leaves.remove(0)
    }

    /// [`Self::track`] for an input held as several leaves (chunks along dimension 0 of the
    /// fixture tensor): the gradient read back is their concatenation.
    fn track_all<const D: usize>(
        &self,
        name: &str,
        leaves: Vec<Tensor<D>>,
        to_fixture: impl Fn(Tensor<D>) -> Tensor<D> + 'static,
    ) -> Vec<Tensor<D>> {
        if !self.device.is_autodiff() || !self.wrt.contains(&name) {
            return leaves;
        }
        let leaves: Vec<Tensor<D>> = leaves.into_iter().map(|t| t.require_grad()).collect();
        let handles = leaves.clone();
        self.tracked.borrow_mut().push((
            name.to_string(),
            Box::new(move |g| {
                let grads: Option<Vec<Tensor<D>>> =
                    handles.iter().map(|h| h.grad(g).map(&to_fixture)).collect();
                grads.map(|parts| Tensor::cat(parts, 0).into_data())
            }),
        ));
        leaves
    }

    /// Optional float input: `None` when the case has no tensor `name`.
    pub fn float_opt<const D: usize>(&self, name: &str) -> Option<Tensor<D>> {
        self.case.has(name).then(|| self.float(name))
    }

    /// Integer input `name`.
    pub fn int<const D: usize>(&self, name: &str) -> Tensor<D, Int> {
        self.case.int(name, &self.device)
    }

    /// The case itself (for parameters).
    pub fn case(&self) -> &Fixture {
        self.case
    }
}

/// Proves one op on one fixture: `output` on every device within [`FWD_TOL`], and, for each
/// name in `wrt` the case has a `grad_<name>` for, the gradient of `sum(output · grad_output)`
/// on every autodiff device within [`GRAD_TOL`].
pub fn check_case<const D: usize>(
    op: &str,
    case: &Fixture,
    wrt: &[&str],
    body: impl Fn(&Inputs) -> Tensor<D>,
) {
    let inputs = |device: &Device| Inputs {
        case,
        device: device.clone(),
        wrt,
        tracked: RefCell::new(Vec::new()),
    };
    for_each_device(|name, device| {
        let out = body(&inputs(device));
        let what = format!("{op}/{} output on {name}", case.name);
        let expected = case.data("output");
        report(
            &what,
            assert_data_close(out.into_data(), expected, FWD_TOL, &what),
        );
    });
    let expected: Vec<&str> = wrt
        .iter()
        .copied()
        .filter(|w| case.has(&format!("grad_{w}")))
        .collect();
    if expected.is_empty() {
        return;
    }
    for_each_autodiff_device(|name, device| {
        let inputs = inputs(device);
        let out = body(&inputs);
        let grad_output: Tensor<D> = case.float("grad_output", device);
        let grads = (out * grad_output).sum().backward();
        let tracked = inputs.tracked.borrow();
        for w in &expected {
            let (_, read) = tracked
                .iter()
                .find(|(n, _)| n == w)
                .unwrap_or_else(|| panic!("{op}/{}: body never read input {w:?}", case.name));
            let what = format!("{op}/{} grad_{w} on {name}", case.name);
            let grad = read(&grads).unwrap_or_else(|| panic!("{what}: no gradient"));
            let err = assert_data_close(grad, case.data(&format!("grad_{w}")), GRAD_TOL, &what);
            report(&what, err);
        }
    });
}

/// Runs `f`, expects it to panic, and checks the message contains every fragment (the
/// argument's name, the expected and the actual value).
pub fn assert_panics_with(f: impl FnOnce(), fragments: &[&str]) {
    // The default hook still prints the expected panic; swapping the global hook would also
    // silence other tests running concurrently.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let payload = match result {
        Ok(()) => panic!("expected a panic mentioning {fragments:?}, but the call succeeded"),
        Err(p) => p,
    };
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    for fragment in fragments {
        assert!(
            message.contains(fragment),
            "panic message {message:?} does not mention {fragment:?}"
        );
    }
}
