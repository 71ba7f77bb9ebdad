//! Data-parallel training through Burn's collective all-reduce (issue 19), against one
//! device: needs the `cuda` feature and at least two CUDA devices (with NCCL).
//!
//! ```text
//! cargo test --workspace --features zoo-cli/cuda --test data_parallel_cuda -- --nocapture
//! ```
//!
//! Why not on a CPU: in Burn 0.22.1 only CUDA has a device transport for the all-reduce
//! (`server_comm_enabled` is true in cubecl-cuda alone); flex and ndarray refuse
//! `DistributedContext::init` ("Distributed operations are not supported"), wgpu, Vulkan and
//! cubecl-cpu panic at the first all-reduce ("no transport between its devices"), and flex,
//! ndarray and cubecl-cpu have one device each (see `docs/scaling.md`). The gather mode, which
//! does run on a CPU, is tested in `crates/zoo-train/tests/data_parallel.rs`.
//!
//! A binary of its own: while Burn's sync server lives (during the data-parallel run) every
//! `backward()` on the backend counts as a replica's, so no other test may share the process.
#![cfg(feature = "cuda")]

use std::path::Path;

use burn::prelude::*;
use burn::tensor::DeviceType;
use zoo_train::config::RunConfig;
use zoo_train::parallel::{DataParallel, SyncMode};
use zoo_train::train::{TrainOptions, train};

mod common;
use common::{LAYERNORM_SWIN, assert_same_weights, scratch};

/// A LayerNorm-only Swin, three SGD steps with batches of 4 (the last of 3): two CUDA devices
/// with Burn's all-reduce give the weights of one device with the whole batch.
#[test]
fn data_parallel_collective_cuda_layernorm_swin_equals_one_device() {
    let cuda = Device::enumerate(DeviceType::Cuda).into_vec();
    if cuda.len() < 2 {
        eprintln!(
            "data_parallel_collective_cuda: {} CUDA device(s) here, the collective all-reduce \
             needs two; not run",
            cuda.len()
        );
        return;
    }
    let config = RunConfig::parse(LAYERNORM_SWIN, Path::new("dp_cuda.toml"), &[]).unwrap();
    let dir = scratch("dp-cuda");
    let (one, two) = (dir.join("one"), dir.join("two"));
    train(&config, &cuda[0], &one, TrainOptions::default(), |_| {}).unwrap();
    let parallel = TrainOptions {
        parallel: Some(DataParallel {
            devices: cuda[..2].to_vec(),
            mode: SyncMode::Collective,
        }),
        ..TrainOptions::default()
    };
    train(&config, &cuda[0], &two, parallel, |_| {}).unwrap();
    let worst = assert_same_weights(&one, &two);
    eprintln!("collective, 2 CUDA devices vs 1: max |Δθ| = {worst:.3e}");
    std::fs::remove_dir_all(dir).ok();
}
