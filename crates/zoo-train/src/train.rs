//! The training loop: a run file in, a run directory out.
//!
//! ```text
//! <out>/config.toml            the resolved run file
//! <out>/metrics.csv            one row per epoch (loss, accuracy, mIoU, per-class figures)
//! <out>/history.json           the same, read back by --resume
//! <out>/loss.png, metrics.png  curves
//! <out>/samples/epoch-N.png    validation samples: input | target | prediction
//! <out>/checkpoints/           epoch-N.bpk (every `checkpoint_every`), best.bpk, last.bpk,
//!                              epoch-N.optim.bpk (the optimiser state of last.bpk)
//! ```
//!
//! Every file is written to a temporary name and renamed. Randomness is a function of the
//! seed and the epoch (weights init, data order, augmentations, dropout/drop-path), so a
//! resumed run repeats exactly what the uninterrupted one would have done. The model's
//! family decides the targets, the loss and the figures ([`zoo_models::family`]); the loop
//! does not know which family it trains.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use zoo_data::ImageDataset;
use zoo_models::registry::ZooModel;
use zoo_models::task::{Context, LossOptions};

use crate::Error;
use crate::checkpoint::{self, CheckpointInfo, write_atomic};
use crate::config::RunConfig;
use crate::data::{class_names, open, samples};
use crate::eval::evaluate;
use crate::history::{self, EpochReport};
use crate::order::{epoch_order, epoch_seed};
use crate::panels::sample_panels;
use crate::plot::save_png;
use crate::schedule::{learning_rate, optimizer};

/// How to start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrainOptions {
    /// Continue the run in `out` from its last checkpoint (weights, optimiser state, epoch,
    /// step, history) instead of starting afresh.
    pub resume: bool,
    /// Stop after this epoch, as if interrupted (the run stays resumable).
    pub stop_after: Option<usize>,
}

/// Where a run starts: a fresh model or the last checkpoint of `out`.
struct Start {
    model: ZooModel,
    optim: ModuleOptimizer,
    epoch: usize,
    step: usize,
    history: Vec<EpochReport>,
}

fn resume(config: &RunConfig, out: &Path, device: &Device) -> Result<Start, Error> {
    let last = out.join("checkpoints").join("last.bpk");
    if !last.exists() {
        return Err(Error::NothingToResume { checkpoint: last });
    }
    let info = checkpoint::read_info(&last)?;
    let mut same = info.config.clone();
    same.train.epochs = config.train.epochs;
    if &same != config {
        return Err(Error::ResumeChanged {
            run: out.to_path_buf(),
            resolved: out.join("config.toml"),
        });
    }
    let model = config.model_config()?.init(device);
    let model = checkpoint::load_into(model, &last, &info.arch)?;
    let optim_path = out
        .join("checkpoints")
        .join(format!("epoch-{}.optim.bpk", info.epoch));
    let optim = checkpoint::load_optimizer(optimizer(config), &optim_path)?;
    let mut history = history::read(&out.join("history.json"))?;
    history.truncate(info.epoch);
    Ok(Start {
        model,
        optim,
        epoch: info.epoch,
        step: info.step,
        history,
    })
}

/// Trains the run file's model on `device` (its `.autodiff()` for the updates), writing the
/// run directory `out` (see the module docs). `on_epoch` sees each epoch's report as it ends.
///
/// # Errors
/// Settings that do not fit, a sample that fails to load, a checkpoint that cannot be
/// resumed, or a write failure in `out`.
pub fn train(
    config: &RunConfig,
    device: &Device,
    out: &Path,
    options: TrainOptions,
    mut on_epoch: impl FnMut(&EpochReport),
) -> Result<Vec<EpochReport>, Error> {
    let model_cfg = config.model_config()?;
    let family = model_cfg.family();
    let task = family.task();
    let preprocessing = family.preprocessing();
    let train_data = open(&config.data, task.annotation(), false)?;
    let val_data = open(&config.data, task.annotation(), true)?;
    let names = val_data.class_names();
    let ckpt = out.join("checkpoints");
    std::fs::create_dir_all(&ckpt).map_err(|e| Error::io(&ckpt, e))?;
    std::fs::create_dir_all(out.join("samples")).map_err(|e| Error::io(out, e))?;

    let t = &config.train;
    let ad = device.clone().autodiff();
    let Start {
        mut model,
        mut optim,
        epoch: done,
        mut step,
        mut history,
    } = if options.resume {
        resume(config, out, &ad)?
    } else {
        ad.seed(t.seed);
        Start {
            model: model_cfg.init(&ad),
            optim: optimizer(config),
            epoch: 0,
            step: 0,
            history: Vec::new(),
        }
    };
    write_atomic(&out.join("config.toml"), config.to_toml().as_bytes())?;
    let training = Context {
        device: &ad,
        preprocessing: &preprocessing,
        num_classes: family.num_classes(),
    };
    let inference = Context { device, ..training };
    let shown_names = class_names(val_data.as_ref(), family.num_classes());
    let steps_per_epoch = train_data.len().div_ceil(t.batch_size);
    let total = steps_per_epoch * t.epochs;
    let mut best = history
        .iter()
        .map(|r| r.val.primary())
        .fold(f64::NEG_INFINITY, f64::max);
    let shown: Vec<usize> = (0..val_data.len().min(4)).collect();
    for epoch in done + 1..=t.epochs {
        let start = Instant::now();
        let seed = epoch_seed(t.seed, epoch);
        ad.seed(seed);
        let order = epoch_order(train_data.len(), seed, epoch, config.data.fresh_samples);
        let mut loss_sum = 0.0;
        let mut lr = t.lr;
        for chunk in order.chunks(t.batch_size) {
            let batch = samples(
                train_data.as_ref(),
                chunk,
                Some((&config.data.augment, seed)),
                &config.data,
            )?;
            let loss_options = LossOptions {
                aux_weight: t.aux_weight,
                seed: seed ^ ((step as u64) << 20),
            };
            let loss = model.family().loss(&batch, &training, &loss_options)?;
            loss_sum += loss.clone().into_scalar::<f64>();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            lr = learning_rate(config, step, total);
            model = optim.step(lr, model, grads);
            step += 1;
        }
        let valid = model.valid();
        let val = evaluate(&valid, config, val_data.as_ref(), device)?;
        let report = EpochReport {
            epoch,
            train_loss: loss_sum / steps_per_epoch as f64,
            val,
            lr,
            seconds: start.elapsed().as_secs_f64(),
        };
        let info = CheckpointInfo {
            arch: config.model.name.clone(),
            config: config.clone(),
            epoch,
            step,
            class_names: names.clone(),
        };
        let optim_path = ckpt.join(format!("epoch-{epoch}.optim.bpk"));
        checkpoint::save_optimizer(&optim, &optim_path)?;
        checkpoint::save(&model, &info, &ckpt.join("last.bpk"))?;
        if epoch > 1 {
            std::fs::remove_file(ckpt.join(format!("epoch-{}.optim.bpk", epoch - 1))).ok();
        }
        if epoch % t.checkpoint_every == 0 || epoch == t.epochs {
            checkpoint::save(&model, &info, &ckpt.join(format!("epoch-{epoch}.bpk")))?;
        }
        if report.val.primary() > best {
            best = report.val.primary();
            checkpoint::save(&model, &info, &ckpt.join("best.bpk"))?;
        }
        history.push(report);
        history::write(out, &history)?;
        let shown = samples(val_data.as_ref(), &shown, None, &config.data)?;
        save_png(
            &sample_panels(&valid, &shown, task, &inference, &shown_names)?,
            &out.join("samples").join(format!("epoch-{epoch}.png")),
        )?;
        on_epoch(history.last().expect("pushed above"));
        if options.stop_after == Some(epoch) {
            break;
        }
    }
    Ok(history)
}

/// The dataset a run file validates on (for `zoo eval`): its validation split, with the
/// ground truth its model's task needs.
///
/// # Errors
/// See [`train`].
pub fn validation_data(config: &RunConfig) -> Result<Box<dyn ImageDataset>, Error> {
    let annotation = config.model_config()?.family().task().annotation();
    open(&config.data, annotation, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zoo_eval::EvalReport;

    fn tiny(extra: &[&str]) -> RunConfig {
        let text = "[model]\nname = \"unet_resnet18\"\nnum_classes = 5\nbase_channels = 4\n\
                    decoder_channels = [16, 8, 8, 8, 8]\n\
                    [data]\nimage_size = [32, 32]\ntrain_len = 16\nval_len = 8\n\
                    [train]\nepochs = 2\nbatch_size = 8\nlr = 0.05\n";
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        RunConfig::parse(text, Path::new("tiny.toml"), &extra).unwrap()
    }

    /// Burn's random generator is one per device (weights init draws from it after
    /// `Device::seed`), so runs that must repeat exactly do not overlap in this process.
    static DEVICE_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("zoo-train-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        dir
    }

    #[test]
    fn a_short_run_writes_its_directory_and_learns() {
        let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let out = temp("run");
        let reports = train(
            &tiny(&[]),
            &Device::flex(),
            &out,
            TrainOptions::default(),
            |_| {},
        )
        .unwrap();
        assert_eq!(reports.len(), 2);
        assert!(
            reports
                .iter()
                .all(|r| r.train_loss.is_finite() && (0.0..=1.0).contains(&r.val.miou.unwrap()))
        );
        assert!(reports[1].train_loss < reports[0].train_loss, "{reports:?}");
        let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 3);
        assert!(
            csv.lines().next().unwrap().ends_with(",val_iou_ellipse"),
            "{csv}"
        );
        assert!(csv.lines().all(|l| l.split(',').count() == 14), "{csv}");
        for f in [
            "config.toml",
            "loss.png",
            "metrics.png",
            "samples/epoch-2.png",
            "checkpoints/epoch-2.bpk",
            "checkpoints/best.bpk",
            "checkpoints/last.bpk",
            "checkpoints/epoch-2.optim.bpk",
        ] {
            assert!(out.join(f).exists(), "{f}");
        }
        assert!(!out.join("checkpoints/epoch-1.optim.bpk").exists());
        let resolved = RunConfig::load(out.join("config.toml"), &[]).unwrap();
        assert_eq!(resolved, tiny(&[]));
        // The checkpoint alone rebuilds the model, which gives the run's figures again.
        let (info, task, again) = reevaluate(&out);
        assert_eq!(
            (info.epoch, info.step, info.arch.as_str(), task),
            (2, 4, "unet_resnet18", "semantic segmentation")
        );
        assert_eq!(again, reports[1].val);
        std::fs::remove_dir_all(out).ok();
    }

    /// The run's `last.bpk` loaded on its own and evaluated on the run's validation split;
    /// with the name of its task.
    fn reevaluate(out: &Path) -> (CheckpointInfo, &'static str, EvalReport) {
        let device = Device::flex();
        let (model, info) = checkpoint::load(&out.join("checkpoints/last.bpk"), &device).unwrap();
        let val = validation_data(&info.config).unwrap();
        let task = info.config.model_config().unwrap().family().task().name();
        let report = evaluate(&model, &info.config, val.as_ref(), &device).unwrap();
        (info, task, report)
    }

    #[test]
    fn an_instance_run_trains_and_reports_coco_ap() {
        let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let out = temp("instance");
        let text = "[model]\nname = \"maskrcnn_resnet50_fpn\"\nnum_classes = 5\n\
                    base_channels = 4\nhead_channels = 8\n\
                    [data]\nimage_size = [48, 48]\ntrain_len = 8\nval_len = 4\n\
                    objects = [1, 2]\n\
                    [train]\nepochs = 2\nbatch_size = 4\nlr = 0.001\noptimizer = \"adamw\"\n";
        let config = RunConfig::parse(text, Path::new("instance.toml"), &[]).unwrap();
        let reports = train(
            &config,
            &Device::flex(),
            &out,
            TrainOptions::default(),
            |_| {},
        )
        .unwrap();
        assert_eq!(reports.len(), 2);
        for r in &reports {
            assert!(r.train_loss.is_finite(), "{r:?}");
            let [ap, ap50, ap75] = r.val.mask_ap.expect("mask AP");
            assert!(
                [ap, ap50, ap75].iter().all(|v| (0.0..=1.0).contains(v)),
                "{r:?}"
            );
            assert!(r.val.box_ap.is_some() && r.val.miou.is_none(), "{r:?}");
            assert_eq!(r.val.per_class.len(), 5);
        }
        assert!(reports[1].train_loss < reports[0].train_loss, "{reports:?}");
        let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
        assert!(
            csv.lines()
                .next()
                .unwrap()
                .ends_with(",val_mask_ap_ellipse"),
            "{csv}"
        );
        assert!(out.join("samples/epoch-2.png").exists());
        let table = reports[1].val.table();
        assert!(
            table.contains("mask AP50") && table.contains("box AP"),
            "{table}"
        );
        // The checkpoint alone rebuilds the model, which gives the run's figures again.
        let (_, task, again) = reevaluate(&out);
        assert_eq!(task, "instance segmentation");
        assert_eq!(again, reports[1].val);
        std::fs::remove_dir_all(out).ok();
    }

    /// Every tensor of a checkpoint, by name (parameter ids differ between runs).
    fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
        let reader = burn::store::burn_pack::Reader::from_file(path).unwrap();
        let mut names: Vec<String> = reader
            .tensor_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|n| {
                let data = reader.tensor_data(&n).unwrap();
                (n, data)
            })
            .collect()
    }

    #[test]
    fn resume_reaches_the_same_weights() {
        let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        // AdamW + cosine with warmup, random resize/crop/flip: every piece of state counts.
        let config = tiny(&[
            "train.optimizer=adamw",
            "train.lr=0.01",
            "train.schedule=cosine",
            "train.warmup_steps=2",
            "data.augment.scale=[0.8, 1.25]",
            "data.augment.crop=[32, 32]",
            "data.augment.brightness=0.2",
        ]);
        let straight = temp("straight");
        let full = train(
            &config,
            &Device::flex(),
            &straight,
            TrainOptions::default(),
            |_| {},
        )
        .unwrap();
        let split = temp("split");
        let stop = TrainOptions {
            stop_after: Some(1),
            ..TrainOptions::default()
        };
        let first = train(&config, &Device::flex(), &split, stop, |_| {}).unwrap();
        assert_eq!(first.len(), 1);
        let resumed = TrainOptions {
            resume: true,
            ..TrainOptions::default()
        };
        let rest = train(&config, &Device::flex(), &split, resumed, |_| {}).unwrap();
        assert_eq!(
            rest.len(),
            2,
            "the history includes the epoch before the interruption"
        );
        let (a, b) = (
            tensors(&straight.join("checkpoints/last.bpk")),
            tensors(&split.join("checkpoints/last.bpk")),
        );
        assert_eq!(a.len(), b.len());
        for ((na, da), (nb, db)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert!(da == db, "{na} differs after resuming");
        }
        assert_eq!(full[1].train_loss, rest[1].train_loss);
        assert_eq!(full[1].val, rest[1].val);
        // A changed run file is refused, naming what may change.
        let other = tiny(&["train.lr=0.02"]);
        let e = train(&other, &Device::flex(), &split, resumed, |_| {}).unwrap_err();
        assert!(e.to_string().contains("train.epochs"), "{e}");
        std::fs::remove_dir_all(straight).ok();
        std::fs::remove_dir_all(split).ok();
    }
}
