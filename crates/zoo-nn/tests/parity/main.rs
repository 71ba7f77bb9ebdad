//! Parity of `zoo_nn::ops` and `zoo_nn::layers` with torchvision / PyTorch (fixtures from
//! `tools/parity/ops.py` and `tools/parity/modules.py`),
//! forward on every backend and gradients on every autodiff backend; plus the error messages
//! of bad input.
#![allow(deprecated)]

mod aspp;
mod attention_pool;
mod bad_input;
mod boxes;
mod configs;
mod deform;
mod deform_module;
mod deform_roi_pool_module;
mod display;
mod kernels;
mod key_maps;
mod load;
mod patch_embed;
mod patch_merging;
mod pooling;
mod resize;
mod roi;
mod swin;
mod upsample;

use zoo_testing::Fixture;

/// Every case of one op, from `tests/fixtures/<op>/`.
pub fn cases(op: &str) -> Vec<Fixture> {
    Fixture::all_in(format!(
        "{}/tests/fixtures/{op}",
        env!("CARGO_MANIFEST_DIR")
    ))
}
