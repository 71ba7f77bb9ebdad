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

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::DeviceType;
use zoo_train::checkpoint;
use zoo_train::config::RunConfig;
use zoo_train::parallel::{DataParallel, SyncMode};
use zoo_train::train::{TrainOptions, train};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zoo-dp-cuda-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    dir
}

/// The tensors of a run's `last.bpk` as f32, by name.
fn weights(run: &Path) -> Vec<Vec<f32>> {
    checkpoint::tensors(&run.join("checkpoints/last.bpk"))
        .unwrap()
        .into_iter()
        .map(|(_, bytes)| {
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
        .collect()
}

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
    let config = RunConfig::parse(
        "[model]\nname = \"swin_tiny_patch4_window7_224\"\nnum_classes = 4\nembed_dim = 8\n\
         depths = [1, 1]\nnum_heads = [1, 2]\nwindow_size = 4\npatch_size = 4\n\
         drop_path_rate = 0.0\n\
         [data]\nimage_size = [32, 32]\ntrain_len = 11\nval_len = 2\nobjects = [1, 1]\n\
         object_scale = [0.4, 0.9]\n\
         [train]\nepochs = 1\nbatch_size = 4\nlr = 0.05\nschedule = \"constant\"\n",
        Path::new("dp_cuda.toml"),
        &[],
    )
    .unwrap();
    let one = temp("one");
    let two = temp("two");
    train(&config, &cuda[0], &one, TrainOptions::default(), |_| {}).unwrap();
    let parallel = TrainOptions {
        parallel: Some(DataParallel {
            devices: cuda[..2].to_vec(),
            mode: SyncMode::Collective,
        }),
        ..TrainOptions::default()
    };
    train(&config, &cuda[0], &two, parallel, |_| {}).unwrap();
    let (a, b) = (weights(&one), weights(&two));
    assert_eq!(a.len(), b.len());
    let mut worst = 0f32;
    for (ta, tb) in a.iter().zip(&b) {
        for (x, y) in ta.iter().zip(tb) {
            let d = (x - y).abs();
            assert!(d <= 1e-5 + 1e-4 * x.abs(), "{x} vs {y}");
            worst = worst.max(d);
        }
    }
    eprintln!("collective, 2 CUDA devices vs 1: max |Δθ| = {worst:.3e}");
    std::fs::remove_dir_all(one).ok();
    std::fs::remove_dir_all(two).ok();
}
