//! Data-parallel training in the gather mode between two distinct wgpu devices (issue 19):
//! gradients really cross devices (`GradientsParams::to_device`, through the host: Burn
//! 0.22.1's wgpu has no device transport), which two replicas on flex's one device cannot
//! show. On a CPU-only machine both are logical devices of Mesa's lavapipe adapter
//! (`DeviceKind::DefaultDevice` and `DeviceKind::Cpu`). Skipped when `ZOO_TEST_DEVICES` leaves
//! wgpu out. A binary of its own (Burn's generators are per backend), its tests taking turns
//! ([`TURN`]: no `backward()` may run while Burn's sync server for wgpu lives).

use std::path::Path;

use burn::prelude::*;
use burn::tensor::DeviceKind;
use burn::tensor::distributed::{
    DistributedConfig, DistributedContext, ReduceOperation, all_reduce,
};
use zoo_train::config::RunConfig;
use zoo_train::parallel::{DataParallel, SyncMode};
use zoo_train::train::{TrainOptions, train};

mod common;
use common::{LAYERNORM_SWIN, assert_same_weights, scratch};

static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn wgpu_wanted() -> bool {
    let wanted = std::env::var("ZOO_TEST_DEVICES")
        .map_or(true, |d| d.split(',').any(|d| d.trim() == "wgpu"));
    if !wanted {
        eprintln!("ZOO_TEST_DEVICES leaves wgpu out: not run");
    }
    wanted
}

/// The LayerNorm Swin of `crates/zoo-train/tests/data_parallel.rs`: two wgpu devices, half
/// a batch each, give the weights of one with the whole batch.
#[test]
fn data_parallel_gather_between_two_wgpu_devices_equals_one_device() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    if !wgpu_wanted() {
        return;
    }
    let config = RunConfig::parse(LAYERNORM_SWIN, Path::new("dp_wgpu.toml"), &[]).unwrap();
    let first = Device::wgpu(DeviceKind::DefaultDevice);
    let second = Device::wgpu(DeviceKind::Cpu);
    assert_ne!(first, second, "two distinct wgpu devices");
    let dir = scratch("dp-wgpu");
    let (one, two) = (dir.join("one"), dir.join("two"));
    train(&config, &first, &one, TrainOptions::default(), |_| {}).unwrap();
    let parallel = TrainOptions {
        parallel: Some(DataParallel {
            devices: vec![first.clone(), second],
            mode: SyncMode::Gather,
        }),
        ..TrainOptions::default()
    };
    train(&config, &first, &two, parallel, |_| {}).unwrap();
    let worst = assert_same_weights(&one, &two);
    eprintln!("gather, 2 wgpu devices vs 1: max |Δθ| = {worst:.3e}");
    std::fs::remove_dir_all(dir).ok();
}

/// Why the collective mode is CUDA's alone: Burn 0.22.1 starts its sync server for two wgpu
/// devices, but its all-reduce between them panics, on each device's thread ("no transport
/// between its devices", cubecl-runtime).
#[test]
fn data_parallel_collective_all_reduce_has_no_transport_on_wgpu() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    if !wgpu_wanted() {
        return;
    }
    let devices = vec![
        Device::wgpu(DeviceKind::DefaultDevice),
        Device::wgpu(DeviceKind::Cpu),
    ];
    let _context = DistributedContext::init(
        devices.clone(),
        DistributedConfig {
            all_reduce_op: ReduceOperation::Sum,
        },
    );
    let threads: Vec<_> = devices
        .iter()
        .cloned()
        .map(|device| {
            let all = devices.clone();
            std::thread::spawn(move || {
                let tensor = Tensor::<1>::from_floats([1.0, 2.0], &device);
                all_reduce(tensor, ReduceOperation::Sum, all)
                    .resolve()
                    .into_data()
            })
        })
        .collect();
    for thread in threads {
        let panic = thread.join().expect_err("all_reduce between wgpu devices");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            message.contains("no transport between its devices"),
            "{message:?}"
        );
    }
}
