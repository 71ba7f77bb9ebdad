//! Wall-clock timing of a model's forward pass or training step on a device (`zoo bench`).

use std::time::Instant;

use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use zoo_models::registry::ModelConfig;

use crate::model::{Task, forward};
use crate::train::loss;

/// What to time.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchSpec {
    /// Images per iteration.
    pub batch: usize,
    /// Image `[H, W]`.
    pub size: [usize; 2],
    /// Untimed iterations first (kernel compilation, autotuning, allocator warm-up).
    pub warmup: usize,
    /// Timed iterations.
    pub iters: usize,
    /// Time an SGD training step (forward, loss, backward, update) instead of inference.
    pub train: bool,
}

/// Timing of one model on one device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchResult {
    /// Mean milliseconds per iteration.
    pub ms_per_iter: f64,
    /// Images per second.
    pub images_per_s: f64,
}

/// Times `config`'s model on `device`. Every iteration ends by reading its result back to
/// the host, so asynchronous backends (wgpu, cuda) are timed to completion.
///
/// # Panics
/// If `spec.iters` is 0.
pub fn bench(config: &ModelConfig, device: &Device, spec: &BenchSpec) -> BenchResult {
    assert!(spec.iters > 0, "bench: iters must be positive");
    let task = Task::of(config);
    let [h, w] = spec.size;
    let classes = match config {
        ModelConfig::ResNet(c) => c.num_classes.unwrap_or(1),
        ModelConfig::Swin(c) => c.num_classes.unwrap_or(1),
        ModelConfig::DeepLabV3(c) => c.num_classes,
        ModelConfig::DeepLabV3Plus(c) => c.num_classes,
        ModelConfig::Unet(c) => c.num_classes,
    };
    let n_targets = match task {
        Task::Segmentation => spec.batch * h * w,
        Task::Classification => spec.batch,
    };
    let labels: Vec<i64> = (0..n_targets).map(|i| (i % classes) as i64).collect();
    let mut elapsed = 0.0;
    if spec.train {
        let device = device.clone().autodiff();
        let mut model = config.init(&device);
        let mut optim = SgdConfig::new().init();
        let x = Tensor::<4>::random([spec.batch, 3, h, w], Distribution::Default, &device);
        for i in 0..spec.warmup + spec.iters {
            let start = Instant::now();
            let targets = Tensor::from_data(TensorData::new(labels.clone(), [n_targets]), &device);
            let l = loss(task, forward(&model, x.clone()), targets, 0.4);
            let grads = GradientsParams::from_grads(l.backward(), &model);
            model = optim.step(1e-3, model, grads);
            // The next iteration's loss depends on this update, so reading the loss back
            // waits for all but the last one.
            let _ = l.into_scalar::<f32>();
            if i >= spec.warmup {
                elapsed += start.elapsed().as_secs_f64();
            }
        }
    } else {
        let model = config.init(device);
        let x = Tensor::<4>::random([spec.batch, 3, h, w], Distribution::Default, device);
        for i in 0..spec.warmup + spec.iters {
            let start = Instant::now();
            let out = forward(&model, x.clone()).out;
            let _ = out.sum().into_scalar::<f32>();
            if i >= spec.warmup {
                elapsed += start.elapsed().as_secs_f64();
            }
        }
    }
    let per_iter = elapsed / spec.iters as f64;
    BenchResult {
        ms_per_iter: per_iter * 1e3,
        images_per_s: spec.batch as f64 / per_iter,
    }
}
