//! The side-by-side benchmark suite: burn-zoo's half. `tools/bench/compare.py` runs it and
//! `tools/bench/torch_suite.py` (the same workloads in PyTorch) in one run and prints the
//! ratio table of BENCHMARKS.md.
//!
//! ```sh
//! cargo bench --workspace --profile dev --bench suite -- [--json] [--backend flex|ndarray|wgpu|cuda]
//!     [--max-runs N] [--budget-s S] [WORKLOAD ...]
//! ```
//!
//! `--workspace` selects the features of the test build, so no dependency is rebuilt. A
//! workload argument keeps the workloads whose id contains it. Each workload runs once to
//! warm up, then up to `--max-runs` times (5) until `--budget-s` seconds (30) are spent; the
//! median is reported. Every timed iteration reads its result back to the host.
//!
//! Inputs are random except the ROI boxes, which come from the same linear congruential
//! sequence as in `torch_suite.py` so both sides pool the same regions.
#![allow(deprecated)]

use std::time::{Duration, Instant};

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use zoo_models::deeplab::DeepLabV3Config;
use zoo_models::detection::host::SeededSampler;
use zoo_models::detection::mask_rcnn::{InstanceTarget, MaskRcnnConfig};
use zoo_models::detection::transform::RcnnTransformConfig;
use zoo_models::resnet::{ResNetConfig, ResNetDepth};
use zoo_models::swin::SwinTransformerConfig;
use zoo_models::unet::UnetConfig;
use zoo_nn::layers::{AsppConfig, SwinBlockConfig};
use zoo_nn::ops::{DeformConv2dOptions, RoiAlignOptions, deform_conv2d, roi_align};
use zoo_nn::optim::SgdConfig;

struct Settings {
    json: bool,
    max_runs: usize,
    budget: Duration,
    filters: Vec<String>,
    backend: String,
}

fn settings() -> Settings {
    let mut s = Settings {
        json: false,
        max_runs: 5,
        budget: Duration::from_secs(30),
        filters: Vec::new(),
        backend: "flex".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| panic!("suite: {name} needs a value"))
        };
        match arg.as_str() {
            "--json" => s.json = true,
            "--max-runs" => s.max_runs = value("--max-runs").parse().expect("--max-runs: integer"),
            "--budget-s" => {
                s.budget = Duration::from_secs_f64(
                    value("--budget-s").parse().expect("--budget-s: seconds"),
                )
            }
            "--backend" => s.backend = value("--backend"),
            // cargo bench passes `--bench` to harness = false targets.
            "--bench" => {}
            other if other.starts_with('-') => panic!("suite: unknown option {other}"),
            other => s.filters.push(other.to_string()),
        }
    }
    s
}

fn device(backend: &str) -> Device {
    match backend {
        "flex" => Device::flex(),
        "ndarray" => Device::ndarray(),
        "wgpu" => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        other => panic!("suite: unknown backend {other} (flex, ndarray, wgpu)"),
    }
}

/// One warm-up, then the median of up to `max_runs` runs, fewer once `budget` is spent.
fn time(s: &Settings, mut f: impl FnMut()) -> (f64, usize) {
    f();
    let mut runs = Vec::new();
    let start = Instant::now();
    while runs.len() < s.max_runs && (runs.is_empty() || start.elapsed() < s.budget) {
        let t = Instant::now();
        f();
        runs.push(t.elapsed().as_secs_f64() * 1e3);
    }
    runs.sort_by(f64::total_cmp);
    (runs[runs.len() / 2], runs.len())
}

fn report(s: &Settings, id: &str, desc: &str, gflop: Option<f64>, (ms, runs): (f64, usize)) {
    if s.json {
        let gflop = gflop.map_or("null".to_string(), |g| format!("{g:.4}"));
        println!(
            "{{\"id\":\"{id}\",\"desc\":\"{desc}\",\"backend\":\"{}\",\"ms\":{ms:.3},\"runs\":{runs},\"gflop\":{gflop}}}",
            s.backend
        );
    } else {
        let rate = gflop.map_or(String::new(), |g| format!(" ({:.1} GFLOP/s)", g / ms * 1e3));
        println!("{id:<22} {ms:>10.1} ms  median of {runs}{rate}  {desc}");
    }
}

/// 512 ROIs on two 50×50 maps, sides 4..40 (the LCG shared with `torch_suite.py`).
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
    Tensor::from_data(TensorData::new(values, [512, 5]), device)
}

/// Forward, or forward + backward of the output's sum with every gradient read back.
fn fwd_or_train<M: Module, const D: usize, const E: usize>(
    module: &M,
    x: &Tensor<D>,
    train: bool,
    forward: impl Fn(&M, Tensor<D>) -> Tensor<E>,
) {
    if !train {
        forward(module, x.clone()).into_data();
        return;
    }
    let x = x.clone().require_grad();
    let grads = forward(module, x.clone()).sum().backward();
    x.grad(&grads).expect("input gradient").into_data();
    let mut visitor = ReadGrads(&grads);
    module.visit(&mut visitor);
}

struct ReadGrads<'a>(&'a burn::tensor::Gradients);

impl burn::module::ModuleVisitor for ReadGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        if let Some(g) = param.val().grad(self.0) {
            g.into_data();
        }
    }
}

/// Forward + cross-entropy of `logits` (`[samples, classes]`) + backward + SGD (momentum 0.9).
fn sgd_step<M: Module>(
    s: &Settings,
    model: M,
    x: Tensor<4>,
    target: Tensor<1, Int>,
    logits: impl Fn(&M, Tensor<4>) -> Tensor<2>,
) -> (f64, usize) {
    let device = x.device();
    let mut model = Some(model);
    // torch.optim.SGD(momentum=0.9), as `zoo train` runs it.
    let mut optim = SgdConfig::new().with_momentum(0.9).init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    time(s, || {
        let m = model.take().expect("model");
        let loss = loss_fn.forward(logits(&m, x.clone()), target.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        model = Some(optim.step(0.01, m, grads));
        finite(loss.into_scalar::<f32>());
    })
}

/// A step's loss, which must be finite: a diverged model is no longer the workload (its
/// NaNs take other paths, and a detector's NaN proposals are all dropped).
fn finite(loss: f32) {
    assert!(loss.is_finite(), "the step diverged (loss {loss})");
}

/// `[N, C, H, W]` logits as `[N·H·W, C]` rows.
fn pixels(logits: Tensor<4>) -> Tensor<2> {
    let classes = logits.dims()[1];
    logits.permute([0, 2, 3, 1]).reshape([-1, classes as i32])
}

/// `(name, input shape, output channels, kernel, stride)` of the U-Net(resnet18) step's
/// convolutions at batch 4, 128×128 (one of each kind) and of ResNet-50's at batch 8,
/// 224×224 (every distinct one but the 1×1 reductions that open each stage);
/// `tools/bench/torch_suite.py` has the same list.
const LAYER_CONVS: &[(&str, [usize; 4], usize, usize, usize)] = &[
    ("stem", [4, 3, 128, 128], 64, 7, 2),
    ("enc1", [4, 64, 32, 32], 64, 3, 1),
    ("enc2", [4, 128, 16, 16], 128, 3, 1),
    ("enc3", [4, 256, 8, 8], 256, 3, 1),
    ("enc4", [4, 512, 4, 4], 512, 3, 1),
    ("dec0", [4, 768, 8, 8], 256, 3, 1),
    ("dec3", [4, 128, 64, 64], 32, 3, 1),
    ("dec4a", [4, 32, 128, 128], 16, 3, 1),
    ("dec4b", [4, 16, 128, 128], 16, 3, 1),
    ("head", [4, 16, 128, 128], 2, 3, 1),
    ("r50_1x1_56", [8, 64, 56, 56], 256, 1, 1),
    ("r50_3x3_28", [8, 128, 28, 28], 128, 3, 1),
    ("r50_3x3_14", [8, 256, 14, 14], 256, 3, 1),
    ("r50_1x1_14", [8, 256, 14, 14], 1024, 1, 1),
    ("r50_1x1_14r", [8, 1024, 14, 14], 256, 1, 1),
    ("r50_3x3_7", [8, 512, 7, 7], 512, 3, 1),
    ("r50_stem", [8, 3, 224, 224], 64, 7, 2),
    ("r50_1x1_56r", [8, 256, 56, 56], 64, 1, 1),
    ("r50_3x3_56", [8, 64, 56, 56], 64, 3, 1),
    ("r50_3x3_56s", [8, 128, 56, 56], 128, 3, 2),
    ("r50_1x1_56s", [8, 256, 56, 56], 512, 1, 2),
    ("r50_1x1_28", [8, 128, 28, 28], 512, 1, 1),
    ("r50_1x1_28r", [8, 512, 28, 28], 128, 1, 1),
    ("r50_3x3_28s", [8, 256, 28, 28], 256, 3, 2),
    ("r50_1x1_28s", [8, 512, 28, 28], 1024, 1, 2),
    ("r50_3x3_14s", [8, 512, 14, 14], 512, 3, 2),
    ("r50_1x1_14s", [8, 1024, 14, 14], 2048, 1, 2),
    ("r50_1x1_7", [8, 512, 7, 7], 2048, 1, 1),
    ("r50_1x1_7r", [8, 2048, 7, 7], 512, 1, 1),
];

fn main() {
    // As `zoo` does: freed kernel outputs stay in the heap for the next step.
    zoo_nn::kernels::keep_freed_memory();
    // Subnormals flushed to zero on every thread, as `torch_suite.py` does on PyTorch's side:
    // a random Mask R-CNN's gradients drift into that range, and PyTorch's steps then took
    // 17–25 s instead of 2.8 (its box-head GEMMs and ROI Align backward), which measures the
    // x86 microcode's slow path, not the frameworks.
    zoo_nn::kernels::flush_denormals(true);
    let s = settings();
    let wanted =
        |id: &str| s.filters.is_empty() || s.filters.iter().any(|f| id.contains(f.as_str()));
    let dev = device(&s.backend);
    let ad = dev.clone().autodiff();
    let rand = |shape: [usize; 4], d: &Device| Tensor::<4>::random(shape, Distribution::Default, d);

    if wanted("peak") {
        let (gflops, how) = peak::measure();
        if s.json {
            println!(
                "{{\"id\":\"peak\",\"desc\":\"{how}\",\"backend\":\"cpu\",\"gflops\":{gflops:.1}}}"
            );
        } else {
            println!("peak f32 GFLOP/s: {gflops:.1} ({how})");
        }
    }

    // 3×3 convolution 2×256×64×64 → 256, padding 1.
    let conv_flop = 2.0 * 2.0 * 256.0 * 64.0 * 64.0 * 256.0 * 9.0 / 1e9;
    for (id, train) in [("conv3x3_fwd", false), ("conv3x3_train", true)] {
        if !wanted(id) {
            continue;
        }
        let d = if train { &ad } else { &dev };
        let x = rand([2, 256, 64, 64], d);
        let w = Tensor::<4>::random([256, 256, 3, 3], Distribution::Normal(0.0, 0.02), d);
        let options = burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let t = time(&s, || {
            if !train {
                zoo_nn::ops::conv2d(x.clone(), w.clone(), None, options.clone()).into_data();
                return;
            }
            let (xg, wg) = (x.clone().require_grad(), w.clone().require_grad());
            let grads = zoo_nn::ops::conv2d(xg.clone(), wg.clone(), None, options.clone())
                .sum()
                .backward();
            xg.grad(&grads).expect("x grad").into_data();
            wg.grad(&grads).expect("w grad").into_data();
        });
        let (flop, pass) = if train {
            (3.0 * conv_flop, "fwd+bwd (x, w)")
        } else {
            (conv_flop, "fwd")
        };
        report(
            &s,
            id,
            &format!("conv2d 3×3 2×256×64×64 → 256, pad 1, {pass}"),
            Some(flop),
            t,
        );
    }

    // The two gradients of that convolution on their own (PyTorch: torch.nn.grad.conv2d_*).
    for id in ["conv3x3_xgrad", "conv3x3_wgrad"] {
        if !wanted(id) {
            continue;
        }
        use burn::backend::Dispatch;
        use zoo_nn::kernels::ZooKernels;
        let x = rand([2, 256, 64, 64], &dev);
        let w = Tensor::<4>::random([256, 256, 3, 3], Distribution::Normal(0.0, 0.02), &dev);
        let dy = rand([2, 256, 64, 64], &dev);
        let options = burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let t = time(&s, || {
            let (x, w, dy) = (
                x.clone().into_dispatch(),
                w.clone().into_dispatch(),
                dy.clone().into_dispatch(),
            );
            let grad = match id {
                "conv3x3_xgrad" => {
                    <Dispatch as ZooKernels>::zoo_conv2d_x_backward(x, w, dy, options.clone())
                }
                _ => {
                    <Dispatch as ZooKernels>::zoo_conv2d_weight_backward(x, w, dy, options.clone())
                }
            };
            Tensor::<4>::from_dispatch(grad).into_data();
        });
        let what = if id == "conv3x3_xgrad" {
            "input"
        } else {
            "weight"
        };
        report(
            &s,
            id,
            &format!("conv2d 3×3 2×256×64×64 → 256, pad 1, {what} gradient"),
            Some(conv_flop),
            t,
        );
    }

    // The convolutions of the U-Net(resnet18) and ResNet-50 steps, each on its own
    // (`layer_<name>_<fwd|xgrad|wgrad>`; diagnostic rows, run only when asked for by name).
    if s.filters.iter().any(|f| f.starts_with("layer_")) {
        use burn::backend::Dispatch;
        use burn::tensor::ops::ConvOptions;
        use zoo_nn::kernels::ZooKernels;
        for &(name, x_shape, c_out, k, stride) in LAYER_CONVS {
            let pad = k / 2;
            let options = ConvOptions::new([stride, stride], [pad, pad], [1, 1], 1);
            let x = rand(x_shape, &dev);
            let w = Tensor::<4>::random([c_out, x_shape[1], k, k], Distribution::Default, &dev);
            let y = burn::tensor::module::conv2d(x.clone(), w.clone(), None, options.clone());
            let dy = Tensor::<4>::random(y.dims(), Distribution::Default, &dev);
            let [_, _, oh, ow] = y.dims();
            let flop = 2.0 * (x_shape[0] * c_out * oh * ow * x_shape[1] * k * k) as f64 / 1e9;
            for pass in ["fwd", "xgrad", "wgrad"] {
                let id = format!("layer_{name}_{pass}");
                if !wanted(&id) {
                    continue;
                }
                let t = time(&s, || {
                    let (xd, wd, dyd) = (
                        x.clone().into_dispatch(),
                        w.clone().into_dispatch(),
                        dy.clone().into_dispatch(),
                    );
                    let out = match pass {
                        "fwd" => <Dispatch as ZooKernels>::zoo_conv2d(xd, wd, options.clone()),
                        "xgrad" => <Dispatch as ZooKernels>::zoo_conv2d_x_backward(
                            xd,
                            wd,
                            dyd,
                            options.clone(),
                        ),
                        _ => <Dispatch as ZooKernels>::zoo_conv2d_weight_backward(
                            xd,
                            wd,
                            dyd,
                            options.clone(),
                        ),
                    };
                    Tensor::<4>::from_dispatch(out).into_data();
                });
                let desc = format!("conv {k}×{k}/{stride} {x_shape:?} → {c_out}, {pass}");
                report(&s, &id, &desc, Some(flop), t);
            }
        }
    }

    for (id, train) in [("roi_align_fwd", false), ("roi_align_train", true)] {
        if !wanted(id) {
            continue;
        }
        let d = if train { &ad } else { &dev };
        let x = rand([2, 256, 50, 50], d);
        let r = rois(d);
        let options = RoiAlignOptions::new([7, 7], 1.0, 2, false);
        let t = time(&s, || {
            if !train {
                roi_align(x.clone(), r.clone(), options.clone()).into_data();
                return;
            }
            let xg = x.clone().require_grad();
            let grads = roi_align(xg.clone(), r.clone(), options.clone())
                .sum()
                .backward();
            xg.grad(&grads).expect("x grad").into_data();
        });
        let pass = if train { "fwd+bwd" } else { "fwd" };
        report(
            &s,
            id,
            &format!("roi_align 2×256×50×50, 512 ROIs, 7×7, sampling 2, {pass}"),
            None,
            t,
        );
    }

    for (id, train) in [("deform_conv2d_fwd", false), ("deform_conv2d_train", true)] {
        if !wanted(id) {
            continue;
        }
        let d = if train { &ad } else { &dev };
        let x = rand([2, 64, 56, 56], d);
        let offset = Tensor::<4>::random([2, 18, 56, 56], Distribution::Normal(0.0, 0.5), d);
        let mask = rand([2, 9, 56, 56], d);
        let weight = Tensor::<4>::random([64, 64, 3, 3], Distribution::Normal(0.0, 0.05), d);
        let options = DeformConv2dOptions::new([1, 1], [1, 1], [1, 1]);
        let t = time(&s, || {
            if !train {
                deform_conv2d(
                    x.clone(),
                    offset.clone(),
                    weight.clone(),
                    Some(mask.clone()),
                    None,
                    options.clone(),
                )
                .into_data();
                return;
            }
            let (xg, og, mg, wg) = (
                x.clone().require_grad(),
                offset.clone().require_grad(),
                mask.clone().require_grad(),
                weight.clone().require_grad(),
            );
            let grads = deform_conv2d(
                xg.clone(),
                og.clone(),
                wg.clone(),
                Some(mg.clone()),
                None,
                options.clone(),
            )
            .sum()
            .backward();
            for g in [&xg, &og, &mg, &wg] {
                g.grad(&grads).expect("grad").into_data();
            }
        });
        let pass = if train {
            "fwd+bwd (input, offset, mask, weight)"
        } else {
            "fwd"
        };
        report(
            &s,
            id,
            &format!("deform_conv2d v2 2×64×56×56, 64→64, 3×3, pad 1, {pass}"),
            None,
            t,
        );
    }

    for (id, train) in [("aspp_fwd", false), ("aspp_train", true)] {
        if !wanted(id) {
            continue;
        }
        let aspp = AsppConfig::new(2048).init(&ad);
        let (aspp, d) = if train {
            (aspp, &ad)
        } else {
            (aspp.valid(), &dev)
        };
        // Batch 2 in training mode: the pooling branch's BatchNorm needs two values.
        let n = if train { 2 } else { 1 };
        let x = rand([n, 2048, 32, 32], d);
        let t = time(&s, || fwd_or_train(&aspp, &x, train, |m, x| m.forward(x)));
        let pass = if train {
            "train mode, fwd+bwd (input, parameters)"
        } else {
            "eval, fwd"
        };
        report(
            &s,
            id,
            &format!("Aspp {n}×2048×32×32 → 256, rates 12/24/36, {pass}"),
            None,
            t,
        );
    }

    for (id, train) in [("swin_block_fwd", false), ("swin_block_train", true)] {
        if !wanted(id) {
            continue;
        }
        let block = SwinBlockConfig::new(96, 3, [56, 56])
            .with_shift_size(3)
            .init(&ad);
        let (block, d) = if train {
            (block, &ad)
        } else {
            (block.valid(), &dev)
        };
        let x = Tensor::<4>::random([1, 56, 56, 96], Distribution::Default, d);
        let t = time(&s, || fwd_or_train(&block, &x, train, |m, x| m.forward(x)));
        let pass = if train {
            "fwd+bwd (input, parameters)"
        } else {
            "fwd"
        };
        report(
            &s,
            id,
            &format!("SwinBlock 1×56×56×96, 3 heads, window 7, shift 3, {pass}"),
            None,
            t,
        );
    }

    if wanted("deeplabv3_fwd") {
        let model = DeepLabV3Config::new(21).init(&dev);
        let x = rand([1, 3, 256, 256], &dev);
        let t = time(&s, || {
            model.forward(x.clone()).out.into_data();
        });
        report(
            &s,
            "deeplabv3_fwd",
            "deeplabv3_resnet50 (OS 8, 21 classes) fwd 1×3×256×256",
            None,
            t,
        );
    }
    if wanted("swin_tiny_fwd") {
        let model = SwinTransformerConfig::tiny().init(&dev);
        let x = rand([1, 3, 224, 224], &dev);
        let t = time(&s, || {
            model.forward(x.clone()).into_data();
        });
        report(
            &s,
            "swin_tiny_fwd",
            "swin_tiny_patch4_window7_224 fwd 1×3×224×224",
            None,
            t,
        );
    }
    if wanted("unet_fwd") {
        let model = UnetConfig::new(2).with_depth(ResNetDepth::R18).init(&dev);
        let x = rand([4, 3, 128, 128], &dev);
        let t = time(&s, || {
            model.forward(x.clone()).into_data();
        });
        report(
            &s,
            "unet_fwd",
            "U-Net(resnet18), 2 classes, fwd 4×3×128×128",
            None,
            t,
        );
    }
    if wanted("unet_train") {
        let model = UnetConfig::new(2).with_depth(ResNetDepth::R18).init(&ad);
        let x = rand([4, 3, 128, 128], &ad);
        let target =
            Tensor::<1, Int>::random([4 * 128 * 128], Distribution::Uniform(0.0, 2.0), &ad);
        let t = sgd_step(&s, model, x, target, |m, x| pixels(m.forward(x)));
        report(
            &s,
            "unet_train",
            "U-Net(resnet18) SGD train step 4×3×128×128 (BN train mode)",
            None,
            t,
        );
    }
    if wanted("resnet50_fwd") {
        let model = ResNetConfig::new(ResNetDepth::R50)
            .with_num_classes(Some(1000))
            .init(&dev);
        let x = rand([8, 3, 224, 224], &dev);
        let t = time(&s, || {
            model.forward(x.clone()).into_data();
        });
        report(&s, "resnet50_fwd", "resnet50 fwd 8×3×224×224", None, t);
    }
    if wanted("resnet50_train") {
        let model = ResNetConfig::new(ResNetDepth::R50)
            .with_num_classes(Some(1000))
            .init(&ad);
        let x = rand([8, 3, 224, 224], &ad);
        let target = Tensor::<1, Int>::random([8], Distribution::Uniform(0.0, 1000.0), &ad);
        let t = sgd_step(&s, model, x, target, |m, x| m.forward(x));
        report(
            &s,
            "resnet50_train",
            "resnet50 SGD train step 8×3×224×224 (BN train mode)",
            None,
            t,
        );
    }
    if wanted("mask_rcnn_detect") || wanted("mask_rcnn_train") {
        mask_rcnn(&s, &dev, &wanted);
    }
}

/// maskrcnn_resnet50_fpn at 320×320 (91 classes): detection on one image (random weights:
/// the RPN's 1000 proposals go through the box head), and one SGD step of the five losses on
/// two images with two box-shaped objects each (frozen BatchNorm, 3 trainable layers).
fn mask_rcnn(s: &Settings, device: &Device, wanted: &dyn Fn(&str) -> bool) {
    let config = MaskRcnnConfig::new(91).with_transform(
        RcnnTransformConfig::new()
            .with_min_size(320)
            .with_max_size(320),
    );
    if wanted("mask_rcnn_detect") {
        let model = config.init(device);
        let image = Tensor::<3>::random([3, 320, 320], Distribution::Default, device);
        let t = time(s, || {
            model.detect(vec![image.clone()])[0]
                .boxes
                .clone()
                .into_data();
        });
        report(
            s,
            "mask_rcnn_detect",
            "maskrcnn_resnet50_fpn detect 1×3×320×320",
            None,
            t,
        );
    }
    if !wanted("mask_rcnn_train") {
        return;
    }
    let ad = device.clone().autodiff();
    let mut model = Some(config.init(&ad));
    // torch.optim.SGD(momentum=0.9), as `zoo train` runs it.
    let mut optim = SgdConfig::new().with_momentum(0.9).init();
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
    let t = time(s, || {
        let m = model.take().expect("model");
        let loss = m
            .losses(images.clone(), &targets, &mut sampler)
            .expect("valid targets")
            .total();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        // A small rate, as on PyTorch's side: at 0.01 its random model diverged (NaN) on
        // the second step, after which the RPN's proposals were all dropped and each
        // "step" ran the box and mask heads on the ground-truth boxes alone.
        model = Some(optim.step(1e-4, m, grads));
        finite(loss.into_scalar::<f32>());
    });
    report(
        s,
        "mask_rcnn_train",
        "maskrcnn_resnet50_fpn SGD train step 2×3×320×320 (lr 1e-4)",
        None,
        t,
    );
}

/// This CPU's f32 peak, measured: every thread runs independent fused multiply-adds on the
/// widest vectors the CPU has (AVX-512, else AVX2+FMA) for ~0.3 s.
mod peak {
    use std::time::Instant;

    /// The best of 5 rounds (a VM's clock and a CPU's turbo vary between rounds).
    pub fn measure() -> (f64, String) {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (lanes, kind) = lanes();
        let iters = 20_000_000u64;
        let mut best = 0.0f64;
        for _ in 0..5 {
            let start = Instant::now();
            let total: f64 = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| scope.spawn(move || fma_loop(iters)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("fma thread"))
                    .sum()
            });
            let secs = start.elapsed().as_secs_f64();
            std::hint::black_box(total);
            // 12 independent accumulators × lanes × 2 flops per FMA, per iteration.
            let flop = threads as f64 * iters as f64 * 12.0 * lanes as f64 * 2.0;
            best = best.max(flop / secs / 1e9);
        }
        (
            best,
            format!("{threads} threads × {kind} FMA loop, best of 5"),
        )
    }

    fn lanes() -> (usize, &'static str) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return (16, "AVX-512");
            }
            if std::arch::is_x86_feature_detected!("fma") {
                return (8, "AVX2");
            }
        }
        (1, "scalar")
    }

    fn fma_loop(iters: u64) -> f64 {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked above).
                return unsafe { x86::fma512(iters) };
            }
            if std::arch::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports AVX2 and FMA (checked above).
                return unsafe { x86::fma256(iters) };
            }
        }
        let mut acc = [1.0f32; 12];
        for _ in 0..iters {
            for a in &mut acc {
                *a = a.mul_add(0.999_999, 1e-7);
            }
        }
        acc.iter().map(|&a| a as f64).sum()
    }

    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use std::arch::x86_64::*;

        macro_rules! fma_body {
            ($set1:ident, $fmadd:ident, $store:ident, $lanes:expr, $iters:expr) => {{
                let m = $set1(0.999_999);
                let c = $set1(1e-7);
                let mut acc = [$set1(1.0); 12];
                for _ in 0..$iters {
                    for a in &mut acc {
                        *a = $fmadd(*a, m, c);
                    }
                }
                let mut out = [0f32; $lanes];
                let mut sum = 0.0f64;
                for a in acc {
                    // SAFETY: `out` holds one vector of lanes.
                    unsafe { $store(out.as_mut_ptr(), a) };
                    sum += out.iter().map(|&v| v as f64).sum::<f64>();
                }
                sum
            }};
        }

        #[target_feature(enable = "avx512f")]
        pub unsafe fn fma512(iters: u64) -> f64 {
            fma_body!(_mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps, 16, iters)
        }

        #[target_feature(enable = "avx2,fma")]
        pub unsafe fn fma256(iters: u64) -> f64 {
            fma_body!(_mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps, 8, iters)
        }
    }
}
