//! Semantic segmentation training on the shapes data: per-pixel cross-entropy, SGD/AdamW with
//! a poly/cosine schedule, mIoU on the validation split after every epoch, a run directory
//! with the resolved config, `metrics.csv` and checkpoints (written to a temporary file, then
//! renamed).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::TensorData;
use zoo_data::shapes::{Shapes, ShapesSample};
use zoo_models::registry::{ModelConfig, ZooModel, config as registry_config};

use crate::config::{Optimizer, RunConfig, Schedule};
use crate::metrics::ConfusionMatrix;

/// ImageNet statistics the upstream weights expect.
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The model is not a segmentation model.
    #[error(
        "model.name: {0} is not a segmentation model (expected deeplabv3_*, deeplabv3plus_* or unet_*)"
    )]
    NotSegmentation(String),
    /// The data configuration is invalid.
    #[error("data: {0}")]
    Data(String),
    /// Writing the run directory failed.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation mean IoU (background included).
    pub val_miou: f64,
    /// Validation pixel accuracy.
    pub val_accuracy: f64,
    /// Validation IoU of each class (`None`: absent from targets and predictions).
    pub val_iou: Vec<Option<f64>>,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Wall time of the epoch (training and validation).
    pub seconds: f64,
}

/// The model a run file describes (registry defaults + the file's overrides).
///
/// # Errors
/// If it is not a segmentation model.
pub fn model_config(config: &RunConfig) -> Result<ModelConfig, TrainError> {
    let m = &config.model;
    let not_seg = || TrainError::NotSegmentation(m.name.clone());
    let mut mc = registry_config(&m.name, m.num_classes).ok_or_else(not_seg)?;
    match &mut mc {
        ModelConfig::DeepLabV3(c) => {
            c.base_channels = m.base_channels.unwrap_or(c.base_channels);
            c.head_channels = m.head_channels.unwrap_or(c.head_channels);
            c.output_stride = m.output_stride.unwrap_or(c.output_stride);
            c.atrous_rates = m.atrous_rates.clone().unwrap_or(c.atrous_rates.clone());
        }
        ModelConfig::DeepLabV3Plus(c) => {
            c.base_channels = m.base_channels.unwrap_or(c.base_channels);
            c.decoder_channels = m.head_channels.unwrap_or(c.decoder_channels);
            c.output_stride = m.output_stride.unwrap_or(c.output_stride);
            c.atrous_rates = m.atrous_rates.clone().unwrap_or(c.atrous_rates.clone());
        }
        ModelConfig::Unet(c) => {
            c.base_channels = m.base_channels.unwrap_or(c.base_channels);
            c.decoder_channels = m
                .decoder_channels
                .clone()
                .unwrap_or(c.decoder_channels.clone());
        }
        _ => return Err(not_seg()),
    }
    Ok(mc)
}

/// Logits (and auxiliary logits) at the input resolution.
pub fn segment(model: &ZooModel, x: Tensor<4>) -> (Tensor<4>, Option<Tensor<4>>) {
    match model {
        ZooModel::DeepLabV3(m) => {
            let out = m.forward(x);
            (out.out, out.aux)
        }
        ZooModel::DeepLabV3Plus(m) => (m.forward(x), None),
        ZooModel::Unet(m) => (m.forward(x), None),
        _ => panic!("segment: not a segmentation model"),
    }
}

/// A batch: normalised images `[B, 3, H, W]` and class targets `[B·H·W]`.
pub fn batch(samples: &[ShapesSample], device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let [h, w] = samples[0].size;
    let mut images = Vec::with_capacity(samples.len() * 3 * h * w);
    let mut targets = Vec::with_capacity(samples.len() * h * w);
    for s in samples {
        for c in 0..3 {
            images.extend(
                s.image[c * h * w..(c + 1) * h * w]
                    .iter()
                    .map(|v| (v - MEAN[c]) / STD[c]),
            );
        }
        targets.extend(s.class_mask.iter().map(|&c| c as i64));
    }
    let b = samples.len();
    (
        Tensor::from_data(TensorData::new(images, [b, 3, h, w]), device),
        Tensor::from_data(TensorData::new(targets, [b * h * w]), device),
    )
}

/// Per-pixel cross-entropy of `[B, C, H, W]` logits.
fn pixel_loss(logits: Tensor<4>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [b, c, h, w] = logits.dims();
    let flat = logits.permute([0, 2, 3, 1]).reshape([b * h * w, c]);
    CrossEntropyLossConfig::new()
        .init(&flat.device())
        .forward(flat, targets)
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
        Optimizer::AdamW => AdamWConfig::new()
            .with_weight_decay(t.weight_decay as f32)
            .with_grad_clipping(clip)
            .init(),
    }
}

/// A seeded permutation of `0..n` (Fisher–Yates on SplitMix64).
fn permutation(n: usize, seed: u64) -> Vec<usize> {
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

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let io = |e: std::io::Error| TrainError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn save_checkpoint(model: &ZooModel, path: &Path) -> Result<(), TrainError> {
    let tmp = path.with_extension("tmp.safetensors");
    let mut store = SafetensorsStore::from_file(&tmp).overwrite(true);
    model.save_into(&mut store).map_err(|e| TrainError::Io {
        path: tmp.clone(),
        message: e.to_string(),
    })?;
    std::fs::rename(&tmp, path).map_err(|e| TrainError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Validation: confusion matrix of the inference model over the validation split.
pub fn evaluate(
    model: &ZooModel,
    data: &Shapes,
    batch_size: usize,
    classes: usize,
    device: &Device,
) -> ConfusionMatrix {
    let mut matrix = ConfusionMatrix::new(classes);
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(batch_size) {
        let samples: Vec<ShapesSample> = chunk.iter().map(|&i| data.get(i)).collect();
        let (x, targets) = batch(&samples, device);
        let (logits, _) = segment(model, x);
        let predictions = logits.argmax(1).into_data();
        let predictions: Vec<i64> = predictions.iter::<i64>().collect();
        let targets: Vec<i64> = targets.into_data().iter::<i64>().collect();
        matrix.update(&predictions, &targets);
    }
    matrix
}

/// Trains the run file's model on `device` (its `.autodiff()` for the updates), writing
/// `out`: `config.toml` (resolved), `metrics.csv`, `checkpoints/epoch-N.safetensors` (every
/// `checkpoint_every` epochs and the last) and `checkpoints/best.safetensors` (best mIoU).
/// `on_epoch` sees each epoch's report as it ends.
///
/// # Errors
/// A non-segmentation model, invalid data settings, or a write failure in `out`.
pub fn train(
    config: &RunConfig,
    device: &Device,
    out: &Path,
    mut on_epoch: impl FnMut(&EpochReport),
) -> Result<Vec<EpochReport>, TrainError> {
    let model_config = model_config(config)?;
    let train_data = Shapes::new(config.data.shapes(false)).map_err(|e| TrainError::Data(e.0))?;
    let val_data = Shapes::new(config.data.shapes(true)).map_err(|e| TrainError::Data(e.0))?;
    let ckpt = out.join("checkpoints");
    std::fs::create_dir_all(&ckpt).map_err(|e| TrainError::Io {
        path: ckpt.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&out.join("config.toml"), config.to_toml().as_bytes())?;

    let t = &config.train;
    let ad = device.clone().autodiff();
    ad.seed(t.seed);
    let mut model = model_config.init(&ad);
    let mut optim = optimizer(config);
    let steps_per_epoch = train_data.len().div_ceil(t.batch_size);
    let total = steps_per_epoch * t.epochs;
    let mut reports: Vec<EpochReport> = Vec::new();
    let classes = config.model.num_classes;
    let mut csv = String::from("epoch,train_loss,val_miou,val_accuracy,lr,seconds");
    for c in 0..classes {
        csv += &format!(",val_iou_{c}");
    }
    csv.push('\n');
    let mut best = f64::NEG_INFINITY;
    let mut step = 0;
    for epoch in 1..=t.epochs {
        let start = Instant::now();
        let order = permutation(train_data.len(), t.seed.wrapping_add(epoch as u64));
        let mut loss_sum = 0.0;
        let mut lr = t.lr;
        for chunk in order.chunks(t.batch_size) {
            let samples: Vec<ShapesSample> = chunk.iter().map(|&i| train_data.get(i)).collect();
            let (x, targets) = batch(&samples, &ad);
            let (logits, aux) = segment(&model, x);
            let mut loss = pixel_loss(logits, targets.clone());
            if let Some(aux) = aux {
                loss = loss + pixel_loss(aux, targets).mul_scalar(t.aux_weight);
            }
            loss_sum += loss.clone().into_scalar::<f64>();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            lr = learning_rate(config, step, total);
            model = optim.step(lr, model, grads);
            step += 1;
        }
        let matrix = evaluate(
            &model.valid(),
            &val_data,
            t.batch_size,
            config.model.num_classes,
            device,
        );
        let report = EpochReport {
            epoch,
            train_loss: loss_sum / steps_per_epoch as f64,
            val_miou: matrix.mean_iou(),
            val_accuracy: matrix.accuracy(),
            val_iou: matrix.iou(),
            lr,
            seconds: start.elapsed().as_secs_f64(),
        };
        csv += &format!(
            "{},{:.6},{:.6},{:.6},{:.6e},{:.2}",
            report.epoch,
            report.train_loss,
            report.val_miou,
            report.val_accuracy,
            report.lr,
            report.seconds
        );
        for iou in &report.val_iou {
            csv += &iou.map_or(",".to_string(), |v| format!(",{v:.6}"));
        }
        csv.push('\n');
        write_atomic(&out.join("metrics.csv"), csv.as_bytes())?;
        if epoch % t.checkpoint_every == 0 || epoch == t.epochs {
            save_checkpoint(&model, &ckpt.join(format!("epoch-{epoch}.safetensors")))?;
        }
        if report.val_miou > best {
            best = report.val_miou;
            save_checkpoint(&model, &ckpt.join("best.safetensors"))?;
        }
        on_epoch(&report);
        reports.push(report);
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> RunConfig {
        let text = "[model]\nname = \"unet_resnet18\"\nnum_classes = 5\nbase_channels = 4\n\
                    decoder_channels = [16, 8, 8, 8, 8]\n\
                    [data]\nimage_size = [32, 32]\ntrain_len = 16\nval_len = 8\n\
                    [train]\nepochs = 2\nbatch_size = 8\nlr = 0.05\n";
        RunConfig::parse(text, Path::new("tiny.toml"), &[]).unwrap()
    }

    #[test]
    fn schedules() {
        let mut c = tiny();
        assert_eq!(learning_rate(&c, 0, 10), 0.05);
        assert!(learning_rate(&c, 9, 10) < 0.01);
        c.train.schedule = Schedule::Cosine;
        c.train.warmup_steps = 2;
        assert_eq!(learning_rate(&c, 0, 10), 0.025);
        assert_eq!(learning_rate(&c, 2, 10), 0.05);
        assert!(learning_rate(&c, 10, 10) < 1e-12);
    }

    #[test]
    fn a_short_run_writes_its_directory_and_learns() {
        let out = std::env::temp_dir().join(format!("zoo-train-{}", std::process::id()));
        let reports = train(&tiny(), &Device::flex(), &out, |_| {}).unwrap();
        assert_eq!(reports.len(), 2);
        assert!(
            reports
                .iter()
                .all(|r| r.train_loss.is_finite() && (0.0..=1.0).contains(&r.val_miou))
        );
        assert!(reports[1].train_loss < reports[0].train_loss, "{reports:?}");
        let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 3);
        assert!(
            csv.lines()
                .next()
                .unwrap()
                .ends_with(",val_iou_3,val_iou_4"),
            "{csv}"
        );
        assert!(csv.lines().all(|l| l.split(',').count() == 11), "{csv}");
        for f in [
            "config.toml",
            "checkpoints/epoch-2.safetensors",
            "checkpoints/best.safetensors",
        ] {
            assert!(out.join(f).exists(), "{f}");
        }
        let resolved = RunConfig::load(out.join("config.toml"), &[]).unwrap();
        assert_eq!(resolved, tiny());
        std::fs::remove_dir_all(out).ok();
    }

    #[test]
    fn permutations_are_seeded() {
        assert_eq!(permutation(10, 3), permutation(10, 3));
        assert_ne!(permutation(10, 3), permutation(10, 4));
        let mut p = permutation(10, 3);
        p.sort();
        assert_eq!(p, (0..10).collect::<Vec<_>>());
    }
}
