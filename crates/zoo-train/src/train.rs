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
//! resumed run repeats exactly what the uninterrupted one would have done.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use zoo_data::{ImageDataset, Sample};
use zoo_models::registry::ZooModel;

use crate::Error;
use crate::checkpoint::{self, CheckpointInfo, write_atomic};
use crate::config::{Optimizer, RunConfig, Schedule};
use crate::data::{IGNORE, images, open, targets};
use crate::eval::{class_map, evaluate, samples, target_tensor, top1};
use crate::instance;
use crate::model::{Logits, Task, forward, model_config};
use crate::plot::{Chart, OverlayBox, Series, overlay, save_png, side_by_side};
use zoo_eval::EvalReport;

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation figures.
    pub val: EvalReport,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Wall time of the epoch (training and validation).
    pub seconds: f64,
}

/// How to start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrainOptions {
    /// Continue the run in `out` from its last checkpoint (weights, optimiser state, epoch,
    /// step, history) instead of starting afresh.
    pub resume: bool,
    /// Stop after this epoch, as if interrupted (the run stays resumable).
    pub stop_after: Option<usize>,
}

/// The learning rate at `step` of `total`.
pub fn learning_rate(config: &RunConfig, step: usize, total: usize) -> f64 {
    let t = &config.train;
    let progress = step as f64 / total.max(1) as f64;
    match t.schedule {
        Schedule::Constant => t.lr,
        Schedule::Poly => t.lr * (1.0 - progress).max(0.0).powf(0.9),
        Schedule::Cosine => {
            if step < t.warmup_steps {
                t.lr * (step + 1) as f64 / t.warmup_steps as f64
            } else {
                let rest = (step - t.warmup_steps) as f64 / (total - t.warmup_steps).max(1) as f64;
                0.5 * t.lr * (1.0 + (std::f64::consts::PI * rest.min(1.0)).cos())
            }
        }
    }
}

fn optimizer(config: &RunConfig) -> ModuleOptimizer {
    let t = &config.train;
    let decay = (t.weight_decay > 0.0).then(|| WeightDecayConfig::new(t.weight_decay as f32));
    let clip = (t.grad_clip > 0.0).then_some(GradientClippingConfig::Norm(t.grad_clip));
    match t.optimizer {
        Optimizer::Sgd => SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_momentum(t.momentum)))
            .with_weight_decay(decay)
            .with_gradient_clipping(clip)
            .init(),
        // ε = 1e-8 as `torch.optim.AdamW` (Burn's default is 1e-5, which damps the small
        // gradients of deep layers early in a from-scratch run).
        Optimizer::AdamW => AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(t.weight_decay as f32)
            .with_grad_clipping(clip)
            .init(),
    }
}

/// A seeded permutation of `0..n` (Fisher–Yates on SplitMix64).
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed ^ 0x5DEE_CE66_D1CE_4E5B;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, (next() % (i as u64 + 1)) as usize);
    }
    order
}

/// The sample indices of (1-based) `epoch`, in training order: a seeded permutation of
/// `0..len`, shifted to `(epoch − 1)·len … epoch·len − 1` when every epoch draws new
/// samples (`data.fresh_samples`, procedural data).
pub fn epoch_order(len: usize, seed: u64, epoch: usize, fresh: bool) -> Vec<usize> {
    let offset = if fresh { (epoch - 1) * len } else { 0 };
    permutation(len, seed)
        .into_iter()
        .map(|i| i + offset)
        .collect()
}

/// The seed of everything random in `epoch` (data order, augmentations, dropout).
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
        .wrapping_add(epoch as u64)
}

/// Cross-entropy of `[N, C]` logits against `[N]` classes, skipping targets equal to
/// [`IGNORE`] (mean over the others).
pub fn masked_cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let valid = targets.clone().not_equal_elem(i64::from(IGNORE));
    let safe = targets.mask_fill(valid.clone().bool_not(), 0);
    let picked = log_softmax(logits, 1)
        .gather(1, safe.unsqueeze_dim(1))
        .squeeze_dim::<1>(1);
    let weight = valid.float();
    let count = weight.clone().sum().clamp_min(1.0);
    picked.mul(weight).sum().neg().div(count)
}

/// The task's loss: per-pixel masked cross-entropy (plus the weighted auxiliary head) or
/// per-image cross-entropy.
///
/// # Panics
/// For [`Task::Instance`], whose loss comes from the model itself ([`instance::loss`]).
pub fn loss(task: Task, logits: Logits, targets: Tensor<1, Int>, aux_weight: f64) -> Tensor<1> {
    let flat = |x: Tensor<4>| {
        let [b, c, h, w] = x.dims();
        x.permute([0, 2, 3, 1]).reshape([b * h * w, c])
    };
    match task {
        Task::Segmentation => {
            let main = masked_cross_entropy(flat(logits.out), targets.clone());
            match logits.aux {
                Some(aux) => main + masked_cross_entropy(flat(aux), targets).mul_scalar(aux_weight),
                None => main,
            }
        }
        Task::Classification => {
            let out = flat(logits.out);
            CrossEntropyLossConfig::new()
                .init(&out.device())
                .forward(out, targets)
        }
        Task::Instance => panic!("train::loss: the instance task's loss is instance::loss"),
    }
}

/// Input | target | prediction panels of `batch` (×2), one row per sample.
fn sample_panels(
    model: &ZooModel,
    batch: &[Sample],
    task: Task,
    names: &[String],
    device: &Device,
) -> Result<RgbImage, Error> {
    let logits = || forward(model, images(batch, device)).out;
    let (labels, scores, masks) = match task {
        Task::Classification => {
            let (labels, scores) = top1(logits());
            (labels, scores, Vec::new())
        }
        Task::Segmentation => (Vec::new(), Vec::new(), class_map(logits())),
        Task::Instance => (Vec::new(), Vec::new(), Vec::new()),
    };
    let found = match task {
        Task::Instance => instance::detect(model, batch, device)?,
        _ => Vec::new(),
    };
    let mut rows = Vec::new();
    for (i, s) in batch.iter().enumerate() {
        let [h, w] = s.size;
        let whole = |class: usize, score: Option<f32>| OverlayBox {
            bbox: [0.0, 0.0, w as f32, h as f32],
            class,
            score,
            mask: None,
        };
        let input = overlay(&s.image, s.size, None, &[], names, 2)?;
        let (target, prediction) = match task {
            Task::Segmentation => (
                overlay(&s.image, s.size, Some(&s.class_mask), &[], names, 2)?,
                overlay(
                    &s.image,
                    s.size,
                    Some(&masks[i * h * w..(i + 1) * h * w]),
                    &[],
                    names,
                    2,
                )?,
            ),
            Task::Instance => {
                let truth: Vec<OverlayBox> = s
                    .objects
                    .iter()
                    .map(|o| OverlayBox {
                        bbox: o.bbox,
                        class: o.class,
                        score: None,
                        mask: Some(o.mask[..].into()),
                    })
                    .collect();
                let predicted = instance::overlay_boxes(&found[i]);
                (
                    overlay(&s.image, s.size, None, &truth, names, 2)?,
                    overlay(&s.image, s.size, None, &predicted, names, 2)?,
                )
            }
            Task::Classification => (
                overlay(
                    &s.image,
                    s.size,
                    None,
                    &[whole(s.label.unwrap_or(0), None)],
                    names,
                    2,
                )?,
                overlay(
                    &s.image,
                    s.size,
                    None,
                    &[whole(labels[i] as usize, Some(scores[i]))],
                    names,
                    2,
                )?,
            ),
        };
        rows.push(side_by_side(&[input, target, prediction]));
    }
    let width = rows.iter().map(|r| r.width()).max().unwrap_or(1);
    let height: u32 = rows.iter().map(|r| r.height() + 4).sum();
    let mut canvas = RgbImage::from_pixel(width, height.max(1), image::Rgb([255, 255, 255]));
    let mut y = 0;
    for r in rows {
        image::imageops::replace(&mut canvas, &r, 0, i64::from(y));
        y += r.height() + 4;
    }
    Ok(canvas)
}

fn write_history(out: &Path, task: Task, history: &[EpochReport]) -> Result<(), Error> {
    let json = serde_json::to_string_pretty(history).map_err(|e| Error::io(out, e))?;
    write_atomic(&out.join("history.json"), json.as_bytes())?;
    let mut csv = String::from(
        "epoch,train_loss,val_accuracy,val_miou,val_box_ap,val_mask_ap,val_mask_ap50,lr,seconds",
    );
    let what = match task {
        Task::Segmentation => "iou",
        Task::Classification => "recall",
        Task::Instance => "mask_ap",
    };
    if let Some(first) = history.first() {
        for name in &first.val.class_names {
            csv += &format!(",val_{what}_{}", name.replace([',', ' '], "_"));
        }
    }
    csv.push('\n');
    for r in history {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
        csv += &format!(
            "{},{:.6},{:.6},{},{},{},{},{:.6e},{:.2}",
            r.epoch,
            r.train_loss,
            r.val.accuracy,
            opt(r.val.miou),
            opt(r.val.box_ap.map(|a| a[0])),
            opt(r.val.mask_ap.map(|a| a[0])),
            opt(r.val.mask_ap.map(|a| a[1])),
            r.lr,
            r.seconds
        );
        for v in &r.val.per_class {
            csv += &v.map_or(",".to_string(), |v| format!(",{v:.6}"));
        }
        csv.push('\n');
    }
    write_atomic(&out.join("metrics.csv"), csv.as_bytes())?;
    let points = |f: &dyn Fn(&EpochReport) -> Option<f64>| {
        history
            .iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect::<Vec<_>>()
    };
    let loss = [Series {
        name: "train loss".into(),
        points: points(&|r| Some(r.train_loss)),
    }];
    Chart::new("training loss", "epoch", &loss).save(&out.join("loss.png"))?;
    let mut metrics = vec![Series {
        name: "val accuracy".into(),
        points: points(&|r| Some(r.val.accuracy)),
    }];
    if task == Task::Segmentation {
        metrics.push(Series {
            name: "val mIoU".into(),
            points: points(&|r| r.val.miou),
        });
    }
    if task == Task::Instance {
        metrics.push(Series {
            name: "val box AP".into(),
            points: points(&|r| r.val.box_ap.map(|a| a[0])),
        });
        metrics.push(Series {
            name: "val mask AP".into(),
            points: points(&|r| r.val.mask_ap.map(|a| a[0])),
        });
    }
    Chart::new("validation", "epoch", &metrics).save(&out.join("metrics.png"))?;
    Ok(())
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
        return Err(Error::Invalid(format!(
            "--resume: {} does not exist (no completed epoch to resume from)",
            last.display()
        )));
    }
    let info = checkpoint::read_info(&last)?;
    let mut same = info.config.clone();
    same.train.epochs = config.train.epochs;
    if &same != config {
        return Err(Error::Invalid(format!(
            "--resume: the run file differs from the one {} was trained with ({}); only \
             train.epochs may change",
            out.display(),
            out.join("config.toml").display()
        )));
    }
    let model = model_config(config).map_err(Error::Invalid)?.init(device);
    let model = checkpoint::load_into(model, &last, &info.arch)?;
    let optim_path = out
        .join("checkpoints")
        .join(format!("epoch-{}.optim.bpk", info.epoch));
    let optim = checkpoint::load_optimizer(optimizer(config), &optim_path)?;
    let text = std::fs::read_to_string(out.join("history.json"))
        .map_err(|e| Error::io(out.join("history.json"), e))?;
    let mut history: Vec<EpochReport> =
        serde_json::from_str(&text).map_err(|e| Error::io(out.join("history.json"), e))?;
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
    let model_cfg = model_config(config).map_err(Error::Invalid)?;
    let task = Task::of(&model_cfg);
    let train_data = open(&config.data, task, false).map_err(Error::Invalid)?;
    let val_data = open(&config.data, task, true).map_err(Error::Invalid)?;
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
    let classes = config.model.num_classes;
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
            let loss = if task == Task::Instance {
                instance::loss(&model, &batch, classes, &ad, seed ^ ((step as u64) << 20))?
            } else {
                let target = targets(&batch, task, classes).map_err(Error::Invalid)?;
                let logits = forward(&model, images(&batch, &ad));
                loss(task, logits, target_tensor(target, &ad), t.aux_weight)
            };
            loss_sum += loss.clone().into_scalar::<f64>();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            lr = learning_rate(config, step, total);
            model = optim.step(lr, model, grads);
            step += 1;
        }
        let inference = model.valid();
        let val = evaluate(
            &inference,
            val_data.as_ref(),
            task,
            classes,
            &config.data,
            t.batch_size,
            device,
        )?;
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
        write_history(out, task, &history)?;
        let shown = samples(val_data.as_ref(), &shown, None, &config.data)?;
        save_png(
            &sample_panels(&inference, &shown, task, &names, device)?,
            &out.join("samples").join(format!("epoch-{epoch}.png")),
        )?;
        on_epoch(history.last().expect("pushed above"));
        if options.stop_after == Some(epoch) {
            break;
        }
    }
    Ok(history)
}

/// The dataset a run file validates on (for `zoo eval`).
///
/// # Errors
/// See [`train`].
pub fn validation_data(config: &RunConfig) -> Result<(Task, Box<dyn ImageDataset>), Error> {
    let task = Task::of(&model_config(config).map_err(Error::Invalid)?);
    Ok((
        task,
        open(&config.data, task, true).map_err(Error::Invalid)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn schedules() {
        let mut c = tiny(&[]);
        assert_eq!(learning_rate(&c, 0, 10), 0.05);
        assert!(learning_rate(&c, 9, 10) < 0.01);
        c.train.schedule = Schedule::Cosine;
        c.train.warmup_steps = 2;
        assert_eq!(learning_rate(&c, 0, 10), 0.025);
        assert_eq!(learning_rate(&c, 2, 10), 0.05);
        assert!(learning_rate(&c, 10, 10) < 1e-12);
    }

    #[test]
    fn fresh_samples_move_each_epoch_to_unseen_indices() {
        let (first, second) = (epoch_order(6, 9, 1, true), epoch_order(6, 9, 2, true));
        assert_eq!(first, permutation(6, 9));
        let mut sorted = second.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (6..12).collect::<Vec<_>>());
        assert_eq!(epoch_order(6, 9, 2, false), permutation(6, 9));
    }

    #[test]
    fn masked_cross_entropy_skips_ignored_targets() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_floats([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]], &device);
        let all = masked_cross_entropy(
            logits.clone().slice([0..2, 0..2]),
            Tensor::from_ints([0, 1], &device),
        );
        let skipped = masked_cross_entropy(logits, Tensor::from_ints([0, 1, 255], &device));
        let reference = CrossEntropyLossConfig::new().init(&device).forward(
            Tensor::<2>::from_floats([[2.0, 0.0], [0.0, 1.0]], &device),
            Tensor::from_ints([0, 1], &device),
        );
        let (a, b, r) = (
            all.into_scalar::<f32>(),
            skipped.into_scalar::<f32>(),
            reference.into_scalar::<f32>(),
        );
        assert!((a - r).abs() < 1e-6 && (b - r).abs() < 1e-6, "{a} {b} {r}");
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
        let (info, task, again) = reevaluate(&out, 8);
        assert_eq!(
            (info.epoch, info.step, info.arch.as_str(), task),
            (2, 4, "unet_resnet18", Task::Segmentation)
        );
        assert_eq!(again, reports[1].val);
        std::fs::remove_dir_all(out).ok();
    }

    /// The run's `last.bpk` loaded on its own and evaluated on the run's validation split.
    fn reevaluate(out: &Path, batch: usize) -> (CheckpointInfo, Task, EvalReport) {
        let device = Device::flex();
        let (model, info) = checkpoint::load(&out.join("checkpoints/last.bpk"), &device).unwrap();
        let (task, val) = validation_data(&info.config).unwrap();
        let classes = info.config.model.num_classes;
        let data = info.config.data.clone();
        let report = evaluate(&model, val.as_ref(), task, classes, &data, batch, &device).unwrap();
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
        let (_, task, again) = reevaluate(&out, 4);
        assert_eq!(task, Task::Instance);
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
