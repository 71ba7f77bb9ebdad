//! Model benchmarks (plain timing loop, not criterion: one iteration of a full-size model on
//! ndarray can take a minute): deeplabv3_resnet50 forward at 1×3×256×256, swin_tiny forward at
//! 1×3×224×224, one U-Net(resnet18) SGD train step at 4×3×128×128, and
//! maskrcnn_resnet50_fpn (91 classes, images resized to 320×320) detection on one image and an
//! SGD train step on two images with two objects each, on flex and ndarray.
//! PyTorch CPU figures for the same work: `tools/parity/bench_models.py` and
//! `tools/parity/bench_mask_rcnn.py`.
//!
//! `cargo bench -p zoo-models --bench models [-- FILTER]`
#![allow(deprecated)]

use std::time::{Duration, Instant};

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use zoo_models::deeplab::DeepLabV3Config;
use zoo_models::swin::SwinTransformerConfig;
use zoo_models::unet::UnetConfig;

/// One warm-up, then the median of up to 5 runs (fewer once 60 s have been spent).
fn time(mut f: impl FnMut()) -> (Duration, usize) {
    f();
    let mut runs = Vec::new();
    let start = Instant::now();
    while runs.len() < 5 && (runs.is_empty() || start.elapsed() < Duration::from_secs(60)) {
        let t = Instant::now();
        f();
        runs.push(t.elapsed());
    }
    runs.sort();
    (runs[runs.len() / 2], runs.len())
}

fn report(what: &str, backend: &str, (median, runs): (Duration, usize)) {
    println!(
        "| {what} | {backend} | {:.1} ms | median of {runs} |",
        median.as_secs_f64() * 1e3
    );
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    println!("| model | backend | time / iter | runs |");
    println!("|---|---|---:|---|");
    for (backend, device) in [("flex", Device::flex()), ("ndarray", Device::ndarray())] {
        if wanted("deeplabv3") {
            let model = DeepLabV3Config::new(21).init(&device);
            let x = Tensor::<4>::random([1, 3, 256, 256], Distribution::Default, &device);
            let t = time(|| {
                model.forward(x.clone()).out.into_data();
            });
            report("deeplabv3_resnet50 fwd 1×3×256×256", backend, t);
        }
        if wanted("swin") {
            let model = SwinTransformerConfig::tiny().init(&device);
            let x = Tensor::<4>::random([1, 3, 224, 224], Distribution::Default, &device);
            let t = time(|| {
                model.forward(x.clone()).into_data();
            });
            report("swin_tiny fwd 1×3×224×224", backend, t);
        }
        if wanted("unet") {
            let ad = device.clone().autodiff();
            let mut model = Some(
                UnetConfig::new(2)
                    .with_depth(zoo_models::resnet::ResNetDepth::R18)
                    .init(&ad),
            );
            let mut optim = SgdConfig::new()
                .with_momentum(Some(MomentumConfig::new().with_momentum(0.9)))
                .init();
            let x = Tensor::<4>::random([4, 3, 128, 128], Distribution::Default, &ad);
            let target =
                Tensor::<1, Int>::random([4 * 128 * 128], Distribution::Uniform(0.0, 2.0), &ad);
            let loss_fn = CrossEntropyLossConfig::new().init(&ad);
            let t = time(|| {
                let m = model.take().unwrap();
                let logits = m
                    .forward(x.clone())
                    .permute([0, 2, 3, 1])
                    .reshape([4 * 128 * 128, 2]);
                let loss = loss_fn.forward(logits, target.clone());
                let grads = GradientsParams::from_grads(loss.backward(), &m);
                model = Some(optim.step(0.01, m, grads));
                loss.into_scalar::<f32>();
            });
            report("unet_resnet18 train step (SGD) 4×3×128×128", backend, t);
        }
        if wanted("mask_rcnn") {
            mask_rcnn(backend, &device);
        }
    }
}

/// maskrcnn_resnet50_fpn at 320×320: detection (random weights: the RPN's 1000 proposals go
/// through the box head; few boxes pass the 0.05 score threshold, as in PyTorch with random
/// weights), and one SGD step of the five losses on two images.
fn mask_rcnn(backend: &str, device: &Device) {
    use zoo_models::detection::host::SeededSampler;
    use zoo_models::detection::mask_rcnn::{InstanceTarget, MaskRcnnConfig};
    use zoo_models::detection::transform::RcnnTransformConfig;

    let config = MaskRcnnConfig::new(91).with_transform(
        RcnnTransformConfig::new()
            .with_min_size(320)
            .with_max_size(320),
    );
    let model = config.init(device);
    let image = Tensor::<3>::random([3, 320, 320], Distribution::Default, device);
    let t = time(|| {
        model.detect(vec![image.clone()])[0]
            .boxes
            .clone()
            .into_data();
    });
    report("maskrcnn_resnet50_fpn detect 1×3×320×320", backend, t);

    let ad = device.clone().autodiff();
    let mut model = Some(config.init(&ad));
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(0.9)))
        .init();
    let images: Vec<Tensor<3>> = (0..2)
        .map(|_| Tensor::random([3, 320, 320], Distribution::Default, &ad))
        .collect();
    let target = || {
        let boxes = [[40.0f32, 50.0, 160.0, 200.0], [150.0, 120.0, 300.0, 290.0]];
        let mut masks = vec![0f32; 2 * 320 * 320];
        for (k, b) in boxes.iter().enumerate() {
            for y in b[1] as usize..b[3] as usize {
                for x in b[0] as usize..b[2] as usize {
                    masks[k * 320 * 320 + y * 320 + x] = 1.0;
                }
            }
        }
        InstanceTarget {
            boxes: Tensor::from_data(TensorData::new(boxes.concat(), [2, 4]), &ad),
            labels: Tensor::from_data(TensorData::new(vec![1i64, 2], [2]), &ad),
            masks: Tensor::from_data(TensorData::new(masks, [2, 320, 320]), &ad),
        }
    };
    let targets = [target(), target()];
    let mut sampler = SeededSampler::new(0);
    let t = time(|| {
        let m = model.take().unwrap();
        let loss = m
            .losses(images.clone(), &targets, &mut sampler)
            .expect("valid targets")
            .total();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        model = Some(optim.step(0.01, m, grads));
        loss.into_scalar::<f32>();
    });
    report(
        "maskrcnn_resnet50_fpn train step (SGD) 2×3×320×320",
        backend,
        t,
    );
}
