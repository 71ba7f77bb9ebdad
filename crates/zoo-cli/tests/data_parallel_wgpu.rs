//! Data-parallel training in the gather mode between two distinct wgpu devices (issue 19):
//! gradients really cross devices (`GradientsParams::to_device`, through the host: Burn
//! 0.22.1's wgpu has no device transport), which two replicas on flex's one device cannot
//! show. On a CPU-only machine both are logical devices of Mesa's lavapipe adapter
//! (`DeviceKind::DefaultDevice` and `DeviceKind::Cpu`). Skipped when `ZOO_TEST_DEVICES` leaves
//! wgpu out. A binary of its own (Burn's generators are per backend), its tests taking turns
//! ([`TURN`]: no `backward()` may run while Burn's sync server for wgpu lives).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::DeviceKind;
use burn::tensor::distributed::{
    DistributedConfig, DistributedContext, ReduceOperation, all_reduce,
};
use zoo_train::checkpoint;
use zoo_train::config::RunConfig;
use zoo_train::parallel::{DataParallel, SyncMode};
use zoo_train::train::{TrainOptions, train};

static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn wgpu_wanted() -> bool {
    let wanted = std::env::var("ZOO_TEST_DEVICES")
        .map_or(true, |d| d.split(',').any(|d| d.trim() == "wgpu"));
    if !wanted {
        eprintln!("ZOO_TEST_DEVICES leaves wgpu out: not run");
    }
    wanted
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zoo-dp-wgpu-{name}-{}", std::process::id()));
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

/// The LayerNorm Swin of `crates/zoo-train/tests/data_parallel.rs`: two wgpu devices, half
/// a batch each, give the weights of one with the whole batch.
#[test]
fn data_parallel_gather_between_two_wgpu_devices_equals_one_device() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    if !wgpu_wanted() {
        return;
    }
    let config = RunConfig::parse(
        "[model]\nname = \"swin_tiny_patch4_window7_224\"\nnum_classes = 4\nembed_dim = 8\n\
         depths = [1, 1]\nnum_heads = [1, 2]\nwindow_size = 4\npatch_size = 4\n\
         drop_path_rate = 0.0\n\
         [data]\nimage_size = [32, 32]\ntrain_len = 11\nval_len = 2\nobjects = [1, 1]\n\
         object_scale = [0.4, 0.9]\n\
         [train]\nepochs = 1\nbatch_size = 4\nlr = 0.05\nschedule = \"constant\"\n",
        Path::new("dp_wgpu.toml"),
        &[],
    )
    .unwrap();
    let first = Device::wgpu(DeviceKind::DefaultDevice);
    let second = Device::wgpu(DeviceKind::Cpu);
    assert_ne!(first, second, "two distinct wgpu devices");
    let one = temp("one");
    let two = temp("two");
    train(&config, &first, &one, TrainOptions::default(), |_| {}).unwrap();
    let parallel = TrainOptions {
        parallel: Some(DataParallel {
            devices: vec![first.clone(), second],
            mode: SyncMode::Gather,
        }),
        ..TrainOptions::default()
    };
    train(&config, &first, &two, parallel, |_| {}).unwrap();
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
    eprintln!("gather, 2 wgpu devices vs 1: max |Δθ| = {worst:.3e}");
    std::fs::remove_dir_all(one).ok();
    std::fs::remove_dir_all(two).ok();
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
