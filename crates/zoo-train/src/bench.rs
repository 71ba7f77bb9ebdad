//! Wall-clock timing of a model's forward pass or training step on a device (`zoo bench`).

use std::time::Instant;

use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use zoo_models::detection::host::SeededSampler;
use zoo_models::detection::mask_rcnn::InstanceTarget;
use zoo_models::registry::{ModelConfig, ZooModel};

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
    if task == Task::Instance {
        return bench_instance(config, device, spec);
    }
    let [h, w] = spec.size;
    let classes = match config {
        ModelConfig::ResNet(c) => c.num_classes.unwrap_or(1),
        ModelConfig::Swin(c) => c.num_classes.unwrap_or(1),
        ModelConfig::DeepLabV3(c) => c.num_classes,
        ModelConfig::DeepLabV3Plus(c) => c.num_classes,
        ModelConfig::Unet(c) => c.num_classes,
        ModelConfig::MaskRcnn(c) => c.num_classes,
    };
    let n_targets = match task {
        Task::Segmentation => spec.batch * h * w,
        Task::Classification | Task::Instance => spec.batch,
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

/// [`bench`] for Mask R-CNN: detection, or a training step on random images with one
/// centred box-shaped object each.
fn bench_instance(config: &ModelConfig, device: &Device, spec: &BenchSpec) -> BenchResult {
    let [h, w] = spec.size;
    let object = |device: &Device| {
        let bbox = [
            w as f32 / 4.0,
            h as f32 / 4.0,
            3.0 * w as f32 / 4.0,
            3.0 * h as f32 / 4.0,
        ];
        let mask: Vec<f32> = (0..h * w)
            .map(|i| {
                let (y, x) = ((i / w) as f32 + 0.5, (i % w) as f32 + 0.5);
                let inside = x >= bbox[0] && x < bbox[2] && y >= bbox[1] && y < bbox[3];
                if inside { 1.0 } else { 0.0 }
            })
            .collect();
        InstanceTarget {
            boxes: Tensor::from_data(TensorData::new(bbox.to_vec(), [1, 4]), device),
            labels: Tensor::from_data(TensorData::new(vec![1i64], [1]), device),
            masks: Tensor::from_data(TensorData::new(mask, [1, h, w]), device),
        }
    };
    let images = |device: &Device| -> Vec<Tensor<3>> {
        (0..spec.batch)
            .map(|_| Tensor::random([3, h, w], Distribution::Default, device))
            .collect()
    };
    let mut elapsed = 0.0;
    let mut timed = |i: usize, start: Instant| {
        if i >= spec.warmup {
            elapsed += start.elapsed().as_secs_f64();
        }
    };
    if spec.train {
        let device = device.clone().autodiff();
        let ZooModel::MaskRcnn(mut model) = config.init(&device) else {
            unreachable!("an instance model is a Mask R-CNN")
        };
        let mut optim = SgdConfig::new().init();
        let x = images(&device);
        let targets: Vec<InstanceTarget> = (0..spec.batch).map(|_| object(&device)).collect();
        let mut sampler = SeededSampler::new(0);
        for i in 0..spec.warmup + spec.iters {
            let start = Instant::now();
            let l = model
                .losses(x.clone(), &targets, &mut sampler)
                .expect("valid bench targets")
                .total();
            let grads = GradientsParams::from_grads(l.backward(), &model);
            model = optim.step(1e-3, model, grads);
            let _ = l.into_scalar::<f32>();
            timed(i, start);
        }
    } else {
        let ZooModel::MaskRcnn(model) = config.init(device) else {
            unreachable!("an instance model is a Mask R-CNN")
        };
        let x = images(device);
        for i in 0..spec.warmup + spec.iters {
            let start = Instant::now();
            for d in model.detect(x.clone()) {
                let _ = d.scores.into_data();
            }
            timed(i, start);
        }
    }
    let per_iter = elapsed / spec.iters as f64;
    BenchResult {
        ms_per_iter: per_iter * 1e3,
        images_per_s: spec.batch as f64 / per_iter,
    }
}
