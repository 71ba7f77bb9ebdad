//! Criterion benches of the heaviest functional ops, on flex and ndarray (fwd and fwd+bwd).
//! PyTorch CPU figures for the same shapes: `tools/parity/bench_ops.py`; both in BENCHMARKS.md.
//!
//! `cargo bench -p zoo-nn --bench ops`
#![allow(deprecated)]

use burn::prelude::*;
use burn::tensor::Distribution;
use criterion::{Criterion, criterion_group, criterion_main};
use zoo_nn::ops::{DeformConv2dOptions, RoiAlignOptions, deform_conv2d, roi_align};

fn devices() -> [(&'static str, Device); 2] {
    [("flex", Device::flex()), ("ndarray", Device::ndarray())]
}

/// 512 ROIs on two 50×50 maps, sides 4..40 (a fixed linear congruential sequence).
fn rois(device: &Device) -> Tensor<2> {
    let mut state = 12345u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f32 / (1u64 << 31) as f32
    };
    let mut values = Vec::with_capacity(512 * 5);
    for k in 0..512 {
        let (w, h) = (4.0 + 36.0 * next(), 4.0 + 36.0 * next());
        let (x, y) = ((50.0 - w) * next(), (50.0 - h) * next());
        values.extend([(k % 2) as f32, x, y, x + w, y + h]);
    }
    Tensor::from_data(burn::tensor::TensorData::new(values, [512, 5]), device)
}

fn bench_roi_align(c: &mut Criterion) {
    let mut group = c.benchmark_group("roi_align 2x256x50x50, 512 rois, 7x7, sampling 2");
    group.sample_size(10);
    let options = RoiAlignOptions::new([7, 7], 1.0, 2, false);
    for (name, device) in devices() {
        let input = Tensor::<4>::random([2, 256, 50, 50], Distribution::Default, &device);
        let r = rois(&device);
        group.bench_function(format!("fwd/{name}"), |b| {
            b.iter(|| roi_align(input.clone(), r.clone(), options.clone()).into_data())
        });
        let ad = device.autodiff();
        let input = Tensor::<4>::random([2, 256, 50, 50], Distribution::Default, &ad);
        let r = rois(&ad);
        group.bench_function(format!("fwd+bwd/{name}"), |b| {
            b.iter(|| {
                let x = input.clone().require_grad();
                let grads = roi_align(x.clone(), r.clone(), options.clone())
                    .sum()
                    .backward();
                x.grad(&grads).unwrap().into_data()
            })
        });
    }
}

fn bench_deform_conv(c: &mut Criterion) {
    let mut group = c.benchmark_group("deform_conv2d v2 2x64x56x56, 64->64, 3x3");
    group.sample_size(10);
    let options = DeformConv2dOptions::new([1, 1], [1, 1], [1, 1]);
    for (name, device) in devices() {
        for (mode, dev) in [("fwd", device.clone()), ("fwd+bwd", device.autodiff())] {
            let input = Tensor::<4>::random([2, 64, 56, 56], Distribution::Default, &dev);
            let offset = Tensor::<4>::random([2, 18, 56, 56], Distribution::Normal(0.0, 0.5), &dev);
            let mask = Tensor::<4>::random([2, 9, 56, 56], Distribution::Default, &dev);
            let weight = Tensor::<4>::random([64, 64, 3, 3], Distribution::Normal(0.0, 0.05), &dev);
            group.bench_function(format!("{mode}/{name}"), |b| {
                b.iter(|| {
                    if mode == "fwd" {
                        let out = deform_conv2d(
                            input.clone(),
                            offset.clone(),
                            weight.clone(),
                            Some(mask.clone()),
                            None,
                            options.clone(),
                        );
                        return out.into_data();
                    }
                    let (x, o, m, w) = (
                        input.clone().require_grad(),
                        offset.clone().require_grad(),
                        mask.clone().require_grad(),
                        weight.clone().require_grad(),
                    );
                    let out =
                        deform_conv2d(x.clone(), o.clone(), w, Some(m), None, options.clone());
                    let grads = out.sum().backward();
                    x.grad(&grads).unwrap().into_data();
                    o.grad(&grads).unwrap().into_data()
                })
            });
        }
    }
}

criterion_group!(benches, bench_roi_align, bench_deform_conv);
criterion_main!(benches);
