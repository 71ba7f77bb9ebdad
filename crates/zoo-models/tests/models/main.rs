//! Parity of `zoo_models` with the upstream models (fixtures from `tools/parity/models.py`),
//! weights loaded from the upstream `state_dict` files through `zoo_models::weights`;
//! loader errors; training-mode sanity; one training step's loss and gradients.
#![allow(deprecated)]

mod full_size;
mod heads;
mod mask_rcnn;
mod registry;
mod resnet;
mod segmentation;
mod swin;
mod tiny_mask_rcnn;
mod train_step;
mod weights;

use std::path::PathBuf;

use burn::module::Module;
use burn::store::ModuleSnapshot;
use zoo_models::weights::{KeyMap, load_upstream};
use zoo_testing::Fixture;

/// Every case of one model, from `tests/fixtures/<model>/` (the weights files beside them are
/// not cases).
pub fn cases(model: &str) -> Vec<Fixture> {
    Fixture::all_in(dir(model))
        .into_iter()
        .filter(|c| !c.name.contains(".weights"))
        .collect()
}

fn dir(model: &str) -> PathBuf {
    PathBuf::from(format!(
        "{}/tests/fixtures/{model}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

/// The upstream weights file of a case (its `weights` parameter).
pub fn weights(model: &str, case: &Fixture) -> PathBuf {
    dir(model).join(case.param::<String>("weights"))
}

/// `module` with the case's upstream weights loaded through `map` (a load error fails the
/// test, naming the case).
pub fn with_weights<M: Module + ModuleSnapshot>(
    model: &str,
    case: &Fixture,
    module: M,
    map: &KeyMap,
) -> M {
    load_upstream(module, weights(model, case), map)
        .unwrap_or_else(|e| panic!("{model}/{}: {e}", case.name))
}

/// `(max |w|, std)` of a tensor's values.
pub fn spread<const D: usize>(w: burn::tensor::Tensor<D>) -> (f32, f32) {
    let v: Vec<f32> = w.into_data().to_vec().unwrap();
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / v.len() as f32;
    (v.iter().fold(0.0f32, |m, x| m.max(x.abs())), var.sqrt())
}

/// Whether a layer has a bias and it is all zeros.
pub fn zero_bias(bias: &Option<burn::module::Param<burn::tensor::Tensor<1>>>) -> bool {
    bias.as_ref().is_some_and(|b| spread(b.val()).0 == 0.0)
}
