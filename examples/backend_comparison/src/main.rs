//! The same workloads — two operators, two models, one training step — on each backend:
//! how far each backend's output is from flex's (Burn's default CPU backend) and how long it
//! takes. Inputs and weights are made once on the host and moved to each device, so the
//! backends compute the same function of the same numbers.
//!
//! ```text
//! cargo run --release -p backend-comparison                 # flex, ndarray, wgpu
//! cargo run --release -p backend-comparison -- flex ndarray  # a subset
//! ```
#![allow(deprecated)] // Device::ndarray()

use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::TensorData;
use zoo_models::resnet::ResNetDepth;
use zoo_models::swin::SwinTransformerConfig;
use zoo_models::unet::UnetConfig;
use zoo_nn::ops::{DeformConv2dOptions, RoiAlignOptions, deform_conv2d, roi_align};

/// Sizes of the workloads (small ones keep the test quick).
#[derive(Debug, Clone, Copy)]
struct Scale {
    /// Image side of the model workloads.
    image: usize,
    /// Feature-map side of the operator workloads.
    map: usize,
    /// ROIs pooled.
    rois: usize,
}

/// Deterministic pseudo-random values in `[-1, 1)` (a host-side LCG: same on every backend).
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

fn tensor<const D: usize>(shape: [usize; D], seed: u32, device: &Device) -> Tensor<D> {
    let n = shape.iter().product();
    Tensor::from_data(TensorData::new(values(n, seed), shape), device)
}

/// One workload: runs on `device`, returns its output flattened to the host.
type Workload = Box<dyn Fn(&Device) -> Vec<f32>>;

fn host(x: Tensor<4>) -> Vec<f32> {
    x.into_data().iter::<f32>().collect()
}

fn workloads(scale: Scale) -> Vec<(String, Workload)> {
    let Scale { image, map, rois } = scale;
    // Weights made once (on flex), moved to each device by `to_device`.
    let unet = UnetConfig::new(5)
        .with_depth(ResNetDepth::R18)
        .with_base_channels(16)
        .with_decoder_channels(vec![64, 32, 32, 16, 16])
        .init(&Device::flex());
    let swin = SwinTransformerConfig::tiny()
        .with_img_size([image, image])
        .with_embed_dim(24)
        .with_depths(vec![2, 2])
        .with_num_heads(vec![2, 4])
        .with_window_size(4)
        .with_num_classes(Some(10))
        .init(&Device::flex());
    let boxes: Vec<f32> = (0..rois)
        .flat_map(|i| {
            let v = values(4, 100 + i as u32);
            let (x, y) = (
                (v[0] + 1.0) * map as f32 * 2.0,
                (v[1] + 1.0) * map as f32 * 2.0,
            );
            let (w, h) = ((v[2] + 1.5) * map as f32, (v[3] + 1.5) * map as f32);
            [(i % 2) as f32, x, y, x + w, y + h]
        })
        .collect();
    let unet_train = unet.clone();
    vec![
        (
            format!("roi_align 2×64×{map}×{map}, {rois} ROIs → 7×7"),
            Box::new(move |d: &Device| {
                let rois = Tensor::from_data(TensorData::new(boxes.clone(), [rois, 5]), d);
                let options = RoiAlignOptions {
                    output_size: [7, 7],
                    spatial_scale: 0.25,
                    sampling_ratio: 2,
                    aligned: true,
                };
                host(roi_align(tensor([2, 64, map, map], 1, d), rois, options))
            }),
        ),
        (
            format!("deform_conv2d v2 1×32×{map}×{map}, 3×3"),
            Box::new(move |d: &Device| {
                let offset = tensor([1, 18, map, map], 3, d).mul_scalar(2.0);
                let mask = burn::tensor::activation::sigmoid(tensor([1, 9, map, map], 4, d));
                host(deform_conv2d(
                    tensor([1, 32, map, map], 2, d),
                    offset,
                    tensor([32, 32, 3, 3], 5, d).mul_scalar(0.1),
                    Some(mask),
                    None,
                    DeformConv2dOptions::new([1, 1], [1, 1], [1, 1]),
                ))
            }),
        ),
        (
            format!("U-Net R18/16 forward 2×3×{image}×{image}"),
            Box::new(move |d: &Device| {
                host(
                    unet.clone()
                        .to_device(d)
                        .forward(tensor([2, 3, image, image], 6, d)),
                )
            }),
        ),
        (
            format!("Swin (24, [2, 2]) forward 2×3×{image}×{image}"),
            Box::new(move |d: &Device| {
                let logits = swin
                    .clone()
                    .to_device(d)
                    .forward(tensor([2, 3, image, image], 7, d));
                logits.into_data().iter::<f32>().collect()
            }),
        ),
        (
            format!("U-Net R18/16 SGD step 2×3×{image}×{image} (weights after)"),
            Box::new(move |d: &Device| {
                let d = d.clone().autodiff();
                let model = unet_train.clone().fork(&d).train();
                let x = tensor([2, 3, image, image], 8, &d);
                let loss = model.forward(x).powi_scalar(2).mean();
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                let mut optim: ModuleOptimizer = SgdConfig::new().init();
                let model = optim.step(0.1, model, grads);
                model
                    .head
                    .conv
                    .weight
                    .val()
                    .into_data()
                    .iter::<f32>()
                    .collect()
            }),
        ),
    ]
}

/// Output of `run` on each device, its mean time over `iters` runs after one warm-up, and
/// the largest absolute difference from the first device's output.
fn compare(run: &Workload, devices: &[(&str, Device)], iters: usize) -> Vec<(f64, f32)> {
    let mut reference: Option<Vec<f32>> = None;
    devices
        .iter()
        .map(|(_, d)| {
            let out = run(d);
            let start = Instant::now();
            for _ in 0..iters {
                run(d);
            }
            let ms = start.elapsed().as_secs_f64() * 1e3 / iters.max(1) as f64;
            let reference = reference.get_or_insert_with(|| out.clone());
            assert_eq!(reference.len(), out.len(), "output sizes differ");
            let diff = reference
                .iter()
                .zip(&out)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            (ms, diff)
        })
        .collect()
}

fn device(name: &str) -> Device {
    match name {
        "flex" => Device::flex(),
        "ndarray" => Device::ndarray(),
        "wgpu" => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        other => {
            eprintln!("unknown backend {other:?}; expected flex, ndarray or wgpu");
            std::process::exit(2);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<&str> = if args.is_empty() {
        vec!["flex", "ndarray", "wgpu"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    let devices: Vec<(&str, Device)> = names.iter().map(|n| (*n, device(n))).collect();
    let scale = Scale {
        image: 128,
        map: 48,
        rois: 256,
    };
    println!(
        "{:<52} {:>8} {:>10} {:>14}",
        "workload",
        "backend",
        "ms",
        format!("max|Δ| vs {}", names[0])
    );
    for (label, run) in workloads(scale) {
        for ((name, _), (ms, diff)) in devices.iter().zip(compare(&run, &devices, 3)) {
            println!("{label:<52} {name:>8} {ms:>10.1} {diff:>14.2e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_agree_on_every_workload() {
        let devices = [("flex", Device::flex()), ("ndarray", Device::ndarray())];
        let scale = Scale {
            image: 32,
            map: 12,
            rois: 8,
        };
        for (label, run) in workloads(scale) {
            let results = compare(&run, &devices, 0);
            assert_eq!(results[0].1, 0.0, "{label}");
            assert!(results[1].1 < 1e-3, "{label}: {:?}", results[1]);
        }
    }
}
