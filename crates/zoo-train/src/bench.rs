//! Wall-clock timing of a model's inference or training step on a device (`zoo bench`).

use std::time::Instant;

use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use zoo_data::Sample;
use zoo_models::registry::ModelConfig;
use zoo_models::task::{Context, LossOptions};

use crate::Error;
use crate::config::{DataFormat, DataSection};
use crate::data::{open, samples};

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
    /// Time an SGD training step (loss, backward, update) instead of inference.
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

/// A batch of the built-in shapes data at `spec.size` with the ground truth `config`'s task
/// needs.
fn shapes_batch(config: &ModelConfig, spec: &BenchSpec) -> Result<Vec<Sample>, Error> {
    let data = DataSection {
        format: DataFormat::Shapes,
        image_size: spec.size,
        train_len: spec.batch,
        workers: 1,
        ..DataSection::default()
    };
    let dataset = open(&data, config.family().task().annotation(), false)?;
    let indices: Vec<usize> = (0..spec.batch).collect();
    samples(dataset.as_ref(), &indices, None, &data)
}

/// Times `config`'s model on `device` on a batch of the built-in shapes data: a training
/// step (the family's loss on the batch — its upload, forward and loss —, backward and an
/// SGD update) or inference (the family's predictions, read back to the host). Every
/// iteration ends by reading its result back, so asynchronous backends (wgpu, cuda) are
/// timed to completion.
///
/// # Errors
/// A size the shapes data cannot draw (below 8×8), or one the model does not take.
///
/// # Panics
/// If `spec.iters` or `spec.batch` is 0.
pub fn bench(
    config: &ModelConfig,
    device: &Device,
    spec: &BenchSpec,
) -> Result<BenchResult, Error> {
    assert!(
        spec.iters > 0 && spec.batch > 0,
        "bench: iters and batch must be positive, got {} and {}",
        spec.iters,
        spec.batch
    );
    let batch = shapes_batch(config, spec)?;
    let family = config.family();
    let preprocessing = family.preprocessing();
    let mut elapsed = 0.0;
    let mut timed = |i: usize, start: Instant| {
        if i >= spec.warmup {
            elapsed += start.elapsed().as_secs_f64();
        }
    };
    if spec.train {
        let device = device.clone().autodiff();
        let context = Context {
            device: &device,
            preprocessing: &preprocessing,
            num_classes: family.num_classes(),
        };
        let mut model = config.init(&device);
        let mut optim = SgdConfig::new().init();
        for i in 0..spec.warmup + spec.iters {
            let start = Instant::now();
            let options = LossOptions {
                aux_weight: 0.4,
                seed: i as u64,
            };
            let loss = model.family().loss(&batch, &context, &options)?;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-3, model, grads);
            // The next iteration's loss depends on this update, so reading the loss back
            // waits for all but the last one.
            let _ = loss.into_scalar::<f32>();
            timed(i, start);
        }
    } else {
        let context = Context {
            device,
            preprocessing: &preprocessing,
            num_classes: family.num_classes(),
        };
        let model = config.init(device);
        for i in 0..spec.warmup + spec.iters {
            let start = Instant::now();
            model.family().predict(&batch, &context)?;
            timed(i, start);
        }
    }
    let per_iter = elapsed / spec.iters as f64;
    Ok(BenchResult {
        ms_per_iter: per_iter * 1e3,
        images_per_s: spec.batch as f64 / per_iter,
    })
}
