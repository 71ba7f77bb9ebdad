//! Data-parallel training (issue 19) against training on one device.
//!
//! Burn 0.22.1 runs its collective all-reduce on CUDA only (NCCL): flex and ndarray refuse
//! `DistributedContext::init` ("Distributed operations are not supported"), and wgpu, Vulkan and
//! cubecl-cpu panic at the first all-reduce ("no transport between its devices"); flex has one
//! device (`FlexDevice` is a unit struct). So the configuration a CPU machine can run is the
//! gather mode (burn-train's multi-device strategy: gradients moved to the first device with
//! `GradientsParams::to_device` and summed with `GradientsAccumulator`) with two replicas on
//! the one flex device, each on its thread: sharding, loss weighting, gradient summing, the
//! single optimiser step and the weights sent back are all exercised. The collective mode's
//! test is `crates/zoo-cli/tests/data_parallel_cuda.rs` (runs where ≥ 2 CUDA devices exist).
//!
//! A binary of its own: Burn's generators are per backend, so runs that must repeat exactly
//! take turns ([`DEVICE_RNG`]), and no other test's `backward()` shares the process.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::prelude::Device;
use burn::tensor::distributed::{DistributedConfig, DistributedContext, ReduceOperation};
use zoo_train::config::RunConfig;
use zoo_train::parallel::{DataParallel, SyncMode};
use zoo_train::rundir::Start;
use zoo_train::train::{Event, StopAt, TrainOptions, train};

static DEVICE_RNG: Mutex<()> = Mutex::new(());

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zoo-dp-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    dir
}

fn config(text: &str, extra: &[&str]) -> RunConfig {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    RunConfig::parse(text, Path::new("dp.toml"), &extra).unwrap()
}

/// Two replicas sharing the flex device, gradients gathered.
fn two_on_flex() -> Option<DataParallel> {
    Some(DataParallel {
        devices: vec![Device::flex(), Device::flex()],
        mode: SyncMode::Gather,
    })
}

/// Trains `config` into `out`; the per-step losses.
fn run(
    config: &RunConfig,
    out: &Path,
    parallel: Option<DataParallel>,
    start: Start,
    stop_after: Option<StopAt>,
) -> Vec<f64> {
    let options = TrainOptions {
        start,
        stop_after,
        parallel,
        ..TrainOptions::default()
    };
    let mut losses = Vec::new();
    train(config, &Device::flex(), out, options, |e| {
        if let Event::Step(s) = e {
            losses.push(s.loss);
        }
    })
    .unwrap();
    losses
}

/// The tensors of a run's `last.bpk`, by name, as f32.
fn weights(run: &Path) -> Vec<(String, Vec<f32>)> {
    zoo_train::checkpoint::tensors(&run.join("checkpoints/last.bpk"))
        .unwrap()
        .into_iter()
        .map(|(n, bytes)| (n, f32s(&bytes)))
        .collect()
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Largest `|a − b|`, and largest `|a − b| / (1e-5 + 1e-4·|a|)` (≤ 1 within tolerance), over
/// every tensor; the tensor of the latter.
fn difference(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> (f32, f32, String) {
    assert_eq!(a.len(), b.len());
    let mut worst = (0f32, 0f32, String::new());
    for ((na, va), (nb, vb)) in a.iter().zip(b) {
        assert_eq!((na, va.len()), (nb, vb.len()));
        for (x, y) in va.iter().zip(vb) {
            let d = (x - y).abs();
            assert!(d.is_finite(), "{na}: {x} vs {y}");
            worst.0 = worst.0.max(d);
            let r = d / (1e-5 + 1e-4 * x.abs());
            if r > worst.1 {
                worst.1 = r;
                worst.2 = na.clone();
            }
        }
    }
    worst
}

/// A Swin classifier normalises with LayerNorm only (and, at `drop_path_rate = 0`, draws no
/// random numbers): two replicas with half a batch each are the same computation as one
/// device with the whole batch, up to f32 rounding. 11 images in batches of 4: shards of 2 + 2,
/// and 1 + 2 in the last batch (weights 1/3 and 2/3). SGD with momentum, three steps.
#[test]
fn data_parallel_layernorm_swin_two_replicas_equal_one_device_with_the_whole_batch() {
    let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let swin = config(
        "[model]\nname = \"swin_tiny_patch4_window7_224\"\nnum_classes = 4\nembed_dim = 8\n\
         depths = [1, 1]\nnum_heads = [1, 2]\nwindow_size = 4\npatch_size = 4\n\
         drop_path_rate = 0.0\n\
         [data]\nimage_size = [32, 32]\ntrain_len = 11\nval_len = 2\nobjects = [1, 1]\n\
         object_scale = [0.4, 0.9]\n\
         [train]\nepochs = 1\nbatch_size = 4\nlr = 0.05\nschedule = \"constant\"\n",
        &[],
    );
    let one = temp("swin-one");
    let two = temp("swin-two");
    let one_losses = run(&swin, &one, None, Start::Fresh, None);
    let two_losses = run(&swin, &two, two_on_flex(), Start::Fresh, None);
    assert_eq!(one_losses.len(), 3);
    for (a, b) in one_losses.iter().zip(&two_losses) {
        assert!(
            (a - b).abs() <= 1e-5 * a.abs().max(1.0),
            "{one_losses:?} vs {two_losses:?}"
        );
    }
    let (abs, rel, at) = difference(&weights(&one), &weights(&two));
    eprintln!(
        "LayerNorm Swin, 3 steps, 2 replicas × ≤2 images vs 1 device × 4: max |Δθ| = {abs:.3e} \
         (worst {rel:.3} of the tolerance 1e-5 + 1e-4·|θ|, in {at}); losses {one_losses:?} vs \
         {two_losses:?}"
    );
    assert!(rel <= 1.0, "max |Δθ| = {abs:e} in {at} ({rel} × tolerance)");

    // A data-parallel run stopped after step 2 goes on on one device: the same batches, the
    // same weights.
    let split = temp("swin-split");
    run(
        &swin,
        &split,
        two_on_flex(),
        Start::Fresh,
        Some(StopAt::Step(2)),
    );
    let rest = run(&swin, &split, None, Start::Resume, None);
    assert_eq!(rest.len(), 1);
    let (abs, rel, at) = difference(&weights(&one), &weights(&split));
    assert!(
        rel <= 1.0,
        "resumed on one device: max |Δθ| = {abs:e} in {at}"
    );
    for dir in [one, two, split] {
        std::fs::remove_dir_all(dir).ok();
    }
}

/// BatchNorm normalises each replica's shard by its own statistics (Burn has no
/// synchronised BatchNorm, nor does PyTorch's DDP by default): a U-Net on two replicas is not
/// the computation of one device with the whole batch, and the difference is reported. The
/// data-parallel run itself is exact: it repeats bit for bit, and stopped mid-epoch then
/// resumed it reaches the same weights and running statistics as straight through.
#[test]
fn data_parallel_batchnorm_unet_is_per_replica_and_resumes_exactly() {
    let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let unet = config(
        "[model]\nname = \"unet_resnet18\"\nnum_classes = 5\nbase_channels = 4\n\
         decoder_channels = [16, 8, 8, 8, 8]\n\
         [data]\nimage_size = [32, 32]\ntrain_len = 16\nval_len = 2\n\
         [train]\nepochs = 2\nbatch_size = 8\nlr = 0.05\n",
        &[],
    );
    let one = temp("unet-one");
    let straight = temp("unet-straight");
    let split = temp("unet-split");
    run(&unet, &one, None, Start::Fresh, None);
    let straight_losses = run(&unet, &straight, two_on_flex(), Start::Fresh, None);
    let first = run(
        &unet,
        &split,
        two_on_flex(),
        Start::Fresh,
        Some(StopAt::Step(3)),
    );
    let rest = run(&unet, &split, two_on_flex(), Start::Resume, None);
    assert_eq!((first.len(), rest.len()), (3, 1));
    assert_eq!(
        [first, rest].concat(),
        straight_losses,
        "the resumed run's losses"
    );
    let (straight_w, split_w) = (weights(&straight), weights(&split));
    let differ: Vec<&str> = straight_w
        .iter()
        .zip(&split_w)
        .filter(|((_, a), (_, b))| a != b)
        .map(|((n, _), _)| n.as_str())
        .collect();
    assert!(differ.is_empty(), "{differ:?} differ after resuming");
    let one_w = weights(&one);
    let (abs, rel, at) = difference(&one_w, &straight_w);
    let square = |w: &[(String, Vec<f32>)], v: Option<&[(String, Vec<f32>)]>| -> f64 {
        w.iter()
            .enumerate()
            .flat_map(|(i, (_, a))| {
                a.iter().enumerate().map(move |(j, &x)| {
                    let y = v.map_or(0.0, |v| v[i].1[j]);
                    f64::from(x - y).powi(2)
                })
            })
            .sum()
    };
    let relative = (square(&one_w, Some(&straight_w)) / square(&one_w, None)).sqrt();
    eprintln!(
        "per-replica BatchNorm U-Net, 4 steps, 2 replicas × 4 images vs 1 device × 8: \
         max |Δθ| = {abs:.3e} ({rel:.1} × the tolerance 1e-5 + 1e-4·|θ|, in {at}), \
         ‖Δθ‖/‖θ‖ = {relative:.3e}; losses {straight_losses:?}"
    );
    // Per-replica statistics really are per replica: not the one-device computation.
    assert!(
        rel > 1.0,
        "max |Δθ| = {abs:e}: BatchNorm did not normalise per replica"
    );
    for dir in [one, straight, split] {
        std::fs::remove_dir_all(dir).ok();
    }
}

/// A non-finite loss is decided for the whole batch before any replica backpropagates:
/// `nonfinite = "stop"` ends the run naming the step, `"skip"` skips the update on every
/// replica and goes on (or stops once the weights are non-finite); no replica is left waiting.
#[test]
fn data_parallel_non_finite_steps_stop_or_skip_on_every_replica() {
    let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let text = "[model]\nname = \"unet_resnet18\"\nnum_classes = 5\nbase_channels = 4\n\
                decoder_channels = [16, 8, 8, 8, 8]\n\
                [data]\nimage_size = [32, 32]\ntrain_len = 16\nval_len = 2\n\
                [train]\nepochs = 3\nbatch_size = 8\nlr = 1e12\n";
    for (nonfinite, out) in [
        ("stop", temp("nonfinite-stop")),
        ("skip", temp("nonfinite-skip")),
    ] {
        let config = config(text, &[&format!("train.nonfinite={nonfinite}")]);
        let options = TrainOptions {
            parallel: two_on_flex(),
            ..TrainOptions::default()
        };
        let mut skipped = 0;
        let result = train(&config, &Device::flex(), &out, options, |e| {
            if let Event::Step(s) = e {
                skipped += usize::from(s.skipped);
            }
        });
        match (nonfinite, result) {
            ("stop", Err(e)) => assert!(
                matches!(e, zoo_train::Error::Diverged { .. }) && e.to_string().contains("step"),
                "{e}"
            ),
            ("skip", Ok(o)) => {
                assert!(skipped > 0, "lr 1e12 made no loss non-finite");
                assert!(o.history.iter().all(|r| r.val.primary().is_finite()));
            }
            ("skip", Err(e)) => {
                assert!(matches!(e, zoo_train::Error::Diverged { .. }), "{e}");
                assert!(skipped > 0, "{e}");
            }
            (_, r) => panic!("{nonfinite}: {r:?}"),
        }
        std::fs::remove_dir_all(out).ok();
    }
}

/// The evidence for running the equivalence tests in the gather mode: Burn 0.22.1 has no
/// collective engine for a CPU backend. On flex, `DistributedContext::init` panics (Burn's
/// dispatch lists CUDA and remote devices only; flex has one device anyway), and `train`
/// refuses the collective mode on replicas sharing a device, before writing anything.
#[test]
fn data_parallel_collective_mode_is_refused_on_flex_by_burn() {
    let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let unet = config(
        "[model]\nname = \"unet_resnet18\"\nnum_classes = 5\nbase_channels = 4\n\
         decoder_channels = [16, 8, 8, 8, 8]\n\
         [data]\nimage_size = [32, 32]\ntrain_len = 4\nval_len = 2\n\
         [train]\nepochs = 1\nbatch_size = 4\n",
        &[],
    );
    let out = temp("collective-flex");
    let options = TrainOptions {
        parallel: Some(DataParallel {
            devices: vec![Device::flex(), Device::flex()],
            mode: SyncMode::Collective,
        }),
        ..TrainOptions::default()
    };
    // Two replicas on one device are the gather mode's alone.
    let e = train(&unet, &Device::flex(), &out, options, |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs distinct devices"), "{e}");
    assert!(!out.exists(), "nothing is written");
    // Burn's own refusal on flex, before anything starts.
    let refused = std::panic::catch_unwind(|| {
        DistributedContext::init(
            vec![Device::flex().autodiff(), Device::flex().autodiff()],
            DistributedConfig {
                all_reduce_op: ReduceOperation::Sum,
            },
        )
    })
    .map(drop)
    .unwrap_err();
    let message = refused
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("Distributed operations are not supported"),
        "{message:?}"
    );
    std::fs::remove_dir_all(out).ok();
}

/// Images per second of the U-Net and DeepLabV3 shapes recipes on one device and on two
/// replicas (gather mode; on this machine both replicas share the flex device and its cores),
/// with the share of a step spent moving and summing gradients and sending weights back.
#[test]
#[ignore = "scaling figures, a few minutes: cargo test --workspace --test data_parallel -- --ignored --nocapture data_parallel_scaling"]
fn data_parallel_scaling_figures() {
    let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let steps = 24;
    let warmup = 4;
    println!("| recipe | devices | batch | images/s | step s | sync s | sync share |");
    println!("|---|---|---|---|---|---|---|");
    for recipe in ["unet_shapes.toml", "deeplabv3_shapes.toml"] {
        let base = RunConfig::load(root.join(recipe), &[]).unwrap();
        let batch = base.train.batch_size;
        let cfg = RunConfig::load(
            root.join(recipe),
            &[
                format!("data.train_len={}", batch * (steps + 1)),
                "data.val_len=1".into(),
                "train.epochs=1".into(),
            ],
        )
        .unwrap();
        for parallel in [None, two_on_flex()] {
            let devices = parallel.as_ref().map_or(1, |p| p.devices.len());
            let out = temp("scaling");
            let options = TrainOptions {
                stop_after: Some(StopAt::Step(steps)),
                parallel,
                ..TrainOptions::default()
            };
            let mut reports = Vec::new();
            train(&cfg, &Device::flex(), &out, options, |e| {
                if let Event::Step(s) = e {
                    reports.push((s.images, s.seconds, s.sync_seconds));
                }
            })
            .unwrap();
            let timed = &reports[warmup..];
            let images: usize = timed.iter().map(|r| r.0).sum();
            let seconds: f64 = timed.iter().map(|r| r.1).sum();
            let sync: f64 = timed.iter().map(|r| r.2).sum();
            let n = timed.len() as f64;
            println!(
                "| {recipe} | {devices} | {batch} | {:.1} | {:.3} | {:.4} | {:.2}% |",
                images as f64 / seconds,
                seconds / n,
                sync / n,
                100.0 * sync / seconds
            );
            std::fs::remove_dir_all(out).ok();
        }
    }
}
