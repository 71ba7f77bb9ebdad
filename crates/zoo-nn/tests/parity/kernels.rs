//! burn-zoo's flex kernels against Burn's own operations on the same device: `conv2d`
//! (forward; input, weight and bias gradients), `batch_norm_train` with each of its tails
//! (+ residual, ReLU; forward, statistics, gradients) and inference `batch_norm`, on random shapes covering stride, asymmetric
//! padding, dilation, groups (incl. depthwise), 1×1, odd sizes and batch 1.
//!
//! The kernels run on flex only (elsewhere `zoo_nn::ops` is Burn's op, covered by the parity
//! fixtures on every backend), so this compares on `Device::flex()` and its `.autodiff()`.

use burn::prelude::*;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, TensorData};
use zoo_nn::ops::{ConvEpilogue, batch_norm, batch_norm_train_add_relu, conv2d, conv2d_affine};
use zoo_testing::assert_close;

/// A small deterministic generator for the shapes.
struct Shapes(u64);

impl Shapes {
    fn next(&mut self, lo: usize, hi: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (self.0 >> 33) as usize % (hi - lo + 1)
    }

    /// `len` values spread uniformly over `[-width/2, width/2)`.
    fn values(&mut self, len: usize, width: f32) -> Vec<f32> {
        (0..len)
            .map(|_| (self.next(0, 1 << 20) as f32 / (1 << 20) as f32 - 0.5) * width)
            .collect()
    }
}

/// `(x shape, weight shape, options)` cases: fixed corner cases, then random ones.
fn conv_cases() -> Vec<([usize; 4], [usize; 4], ConvOptions<2>)> {
    let mut cases = vec![
        // 3×3 "same", batch 1.
        (
            [1, 3, 9, 11],
            [5, 3, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        ),
        // ResNet stem: 7×7 stride 2 pad 3.
        (
            [2, 3, 17, 15],
            [4, 3, 7, 7],
            ConvOptions::new([2, 2], [3, 3], [1, 1], 1),
        ),
        // 1×1 pointwise, and 1×1 stride 2 (downsample).
        (
            [2, 6, 7, 5],
            [4, 6, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [3, 6, 7, 5],
            [8, 6, 1, 1],
            ConvOptions::new([2, 2], [0, 0], [1, 1], 1),
        ),
        // Dilated (atrous) with padding = dilation.
        (
            [1, 4, 12, 10],
            [3, 4, 3, 3],
            ConvOptions::new([1, 1], [4, 4], [4, 4], 1),
        ),
        // Depthwise and grouped.
        (
            [2, 6, 8, 9],
            [6, 1, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 6),
        ),
        (
            [1, 6, 8, 9],
            [4, 3, 3, 2],
            ConvOptions::new([2, 1], [1, 0], [1, 2], 2),
        ),
        // Asymmetric padding, as PaddingConfig2d::Same at stride 2.
        (
            [2, 3, 8, 7],
            [2, 3, 3, 3],
            ConvOptions::new_with_padding([2, 2], [(0, 1), (1, 1)], [1, 1], 1),
        ),
        // ASPP on a map smaller than its rates, batch 8: pooled 1×1 branch, dilated branches.
        (
            [8, 16, 1, 1],
            [4, 16, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 16, 3, 3],
            [4, 16, 3, 3],
            ConvOptions::new([1, 1], [4, 4], [4, 4], 1),
        ),
        (
            [8, 16, 3, 3],
            [4, 16, 3, 3],
            ConvOptions::new([1, 1], [2, 2], [2, 2], 1),
        ),
        (
            [8, 16, 3, 3],
            [16, 16, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        ),
        (
            [8, 16, 3, 3],
            [16, 16, 3, 3],
            ConvOptions::new([1, 1], [2, 2], [2, 2], 1),
        ),
        (
            [8, 16, 3, 3],
            [16, 16, 3, 3],
            ConvOptions::new([1, 1], [4, 4], [4, 4], 1),
        ),
        (
            [8, 16, 3, 3],
            [3, 16, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 16, 3, 3],
            [32, 16, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 16, 3, 3],
            [4, 16, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 16, 3, 3],
            [64, 16, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 16, 3, 3],
            [8, 16, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 2, 6, 6],
            [2, 2, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 2, 6, 6],
            [2, 2, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        ),
        (
            [8, 2, 6, 6],
            [8, 2, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 3, 24, 24],
            [2, 3, 7, 7],
            ConvOptions::new([2, 2], [3, 3], [1, 1], 1),
        ),
        (
            [8, 32, 3, 3],
            [16, 32, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 32, 3, 3],
            [64, 32, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 32, 3, 3],
            [8, 32, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 32, 3, 3],
            [8, 32, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        ),
        (
            [8, 4, 3, 3],
            [16, 4, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 4, 3, 3],
            [4, 4, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        ),
        (
            [8, 4, 6, 6],
            [4, 4, 3, 3],
            ConvOptions::new([2, 2], [1, 1], [1, 1], 1),
        ),
        (
            [8, 64, 1, 1],
            [16, 64, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 64, 3, 3],
            [16, 64, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 64, 3, 3],
            [16, 64, 3, 3],
            ConvOptions::new([1, 1], [12, 12], [12, 12], 1),
        ),
        (
            [8, 64, 3, 3],
            [16, 64, 3, 3],
            ConvOptions::new([1, 1], [24, 24], [24, 24], 1),
        ),
        (
            [8, 64, 3, 3],
            [16, 64, 3, 3],
            ConvOptions::new([1, 1], [36, 36], [36, 36], 1),
        ),
        (
            [8, 8, 3, 3],
            [3, 8, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 8, 3, 3],
            [32, 8, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 8, 3, 3],
            [8, 8, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        ),
        (
            [8, 8, 3, 3],
            [8, 8, 3, 3],
            ConvOptions::new([1, 1], [2, 2], [2, 2], 1),
        ),
        (
            [8, 8, 6, 6],
            [16, 8, 1, 1],
            ConvOptions::new([2, 2], [0, 0], [1, 1], 1),
        ),
        (
            [8, 8, 6, 6],
            [2, 8, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 8, 6, 6],
            [4, 8, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [8, 80, 3, 3],
            [16, 80, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        // Maps the kernel cuts into several tiles per image: spread over the pool (batch 2),
        // one after another (batch 1, dilated), and small maps grouped whole (1×1 and 3×3).
        (
            [2, 64, 40, 37],
            [32, 64, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        ),
        (
            [1, 128, 24, 23],
            [16, 128, 3, 3],
            ConvOptions::new([1, 1], [2, 2], [2, 2], 1),
        ),
        (
            [6, 32, 9, 9],
            [24, 32, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [5, 48, 7, 6],
            [16, 48, 3, 3],
            ConvOptions::new([2, 2], [1, 1], [1, 1], 1),
        ),
        // Patch embedding: 4×4 stride 4.
        (
            [1, 3, 16, 12],
            [8, 3, 4, 4],
            ConvOptions::new([4, 4], [0, 0], [1, 1], 1),
        ),
    ];
    let mut r = Shapes(7);
    for _ in 0..12 {
        let groups = [1, 1, 2, 3][r.next(0, 3)];
        let cpg = r.next(1, 4);
        let opg = r.next(1, 4);
        let (kh, kw) = (r.next(1, 4), r.next(1, 4));
        let stride = [r.next(1, 3), r.next(1, 3)];
        let dilation = [r.next(1, 3), r.next(1, 3)];
        let padding = [(r.next(0, 2), r.next(0, 2)), (r.next(0, 2), r.next(0, 2))];
        let h = dilation[0] * (kh - 1) + 1 + r.next(0, 9);
        let w = dilation[1] * (kw - 1) + 1 + r.next(0, 9);
        cases.push((
            [r.next(1, 3), cpg * groups, h, w],
            [opg * groups, cpg, kh, kw],
            ConvOptions::new_with_padding(stride, padding, dilation, groups),
        ));
    }
    // Stride-1 layers in whole vectors of 16 channels over enough pixels (≥ 384) for the
    // direct AVX-512 kernels (forward and input gradient), where the CPU has them.
    for _ in 0..6 {
        let groups = r.next(1, 2);
        let (cpg, opg) = (16 * r.next(1, 2), 16 * r.next(1, 2));
        let (kh, kw) = [(3, 3), (3, 3), (1, 3), (3, 1), (5, 5)][r.next(0, 4)];
        let dilation = [r.next(1, 2), r.next(1, 2)];
        let padding = [(r.next(0, 2), r.next(0, 2)), (r.next(0, 2), r.next(0, 2))];
        cases.push((
            [2, cpg * groups, r.next(14, 20), r.next(14, 30)],
            [opg * groups, cpg, kh, kw],
            ConvOptions::new_with_padding([1, 1], padding, dilation, groups),
        ));
    }
    cases
}

#[test]
fn conv2d_kernel_equals_burns_conv2d_forward_and_backward() {
    let device = Device::flex().autodiff();
    for (i, (x_shape, w_shape, options)) in conv_cases().into_iter().enumerate() {
        let x = Tensor::<4>::random(x_shape, Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<4>::random(w_shape, Distribution::Normal(0.0, 0.5), &device);
        let b = Tensor::<1>::random([w_shape[0]], Distribution::Normal(0.0, 1.0), &device);
        let what = format!("conv2d case {i} x {x_shape:?} w {w_shape:?} {options:?}");
        let run = |ours: bool| {
            let (x, w, b) = (
                x.clone().require_grad(),
                w.clone().require_grad(),
                b.clone().require_grad(),
            );
            let y = if ours {
                conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone())
            } else {
                burn::tensor::module::conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone())
            };
            // A non-uniform upstream gradient.
            let upstream = Tensor::<4>::from_data(
                TensorData::new(
                    (0..y.shape().num_elements())
                        .map(|k| ((k * 7919) % 13) as f32 / 6.0 - 1.0)
                        .collect(),
                    y.dims(),
                ),
                &device,
            );
            let grads = (y.clone() * upstream).sum().backward();
            (
                y,
                x.grad(&grads).expect("x grad"),
                w.grad(&grads).expect("w grad"),
                b.grad(&grads).expect("b grad"),
            )
        };
        let (ours, burn) = (run(true), run(false));
        assert_close(ours.0, burn.0, 1e-4, &format!("{what}: output"));
        assert_close(ours.1, burn.1, 1e-4, &format!("{what}: grad x"));
        assert_close(ours.2, burn.2, 1e-4, &format!("{what}: grad weight"));
        assert_close(ours.3, burn.3, 1e-4, &format!("{what}: grad bias"));
    }
}

#[test]
fn conv2d_kernel_equals_burns_conv2d_without_autodiff() {
    let device = Device::flex();
    for (i, (x_shape, w_shape, options)) in conv_cases().into_iter().enumerate() {
        let x = Tensor::<4>::random(x_shape, Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<4>::random(w_shape, Distribution::Normal(0.0, 0.5), &device);
        let ours = conv2d(x.clone(), w.clone(), None, options.clone());
        let burn = burn::tensor::module::conv2d(x, w, None, options.clone());
        assert_close(
            ours,
            burn,
            1e-4,
            &format!("conv2d case {i} (no bias, no autodiff)"),
        );
    }
}

#[test]
fn batch_norm_kernels_equal_burns_batch_norm() {
    let device = Device::flex().autodiff();
    let mut r = Shapes(11);
    for i in 0..8 {
        let shape = [r.next(1, 4), r.next(1, 6), r.next(1, 9), r.next(1, 9)];
        if shape[0] * shape[2] * shape[3] < 2 {
            continue;
        }
        let c = shape[1];
        let len = shape.iter().product();
        let x = Tensor::<4>::from_data(TensorData::new(r.values(len, 4.0), shape), &device)
            .add_scalar(3.0);
        let gamma =
            Tensor::<1>::from_data(TensorData::new(r.values(c, 1.0), [c]), &device).add_scalar(1.0);
        let beta = Tensor::<1>::from_data(TensorData::new(r.values(c, 1.0), [c]), &device);
        let upstream = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        // Fixed values (not the shared generator's), so that no pre-activation of these
        // cases lies within rounding of 0, where the ReLU's two roundings could disagree.
        let identity = Tensor::<4>::from_data(
            TensorData::new(r.values(shape.iter().product(), 4.0), shape),
            &device,
        );
        // Every tail: none, + residual, ReLU, + residual then ReLU (a ResNet block's end).
        for (add, relu) in [(false, false), (true, false), (false, true), (true, true)] {
            let run = |ours: bool| {
                let (x, g, b, r) = (
                    x.clone().require_grad(),
                    gamma.clone().require_grad(),
                    beta.clone().require_grad(),
                    identity.clone().require_grad(),
                );
                let residual = add.then(|| r.clone());
                let out = if ours {
                    batch_norm_train_add_relu(x.clone(), g.clone(), b.clone(), residual, relu, 1e-5)
                } else {
                    let mut out = burn::tensor::module::batch_norm_train(
                        x.clone(),
                        g.clone(),
                        b.clone(),
                        1e-5,
                    );
                    if let Some(r) = residual {
                        out.output = out.output + r;
                    }
                    if relu {
                        out.output = burn::tensor::activation::relu(out.output);
                    }
                    out
                };
                let grads = (out.output.clone() * upstream.clone()).sum().backward();
                (
                    [out.output, x.grad(&grads).expect("x grad")],
                    [
                        out.mean,
                        out.variance,
                        g.grad(&grads).expect("gamma grad"),
                        b.grad(&grads).expect("beta grad"),
                    ],
                    add.then(|| r.grad(&grads).expect("residual grad")),
                )
            };
            let (ours, burn) = (run(true), run(false));
            let what =
                format!("batch_norm_train case {i} {shape:?} (+ residual {add}, ReLU {relu})");
            for ((a, b), (name, tol)) in ours
                .0
                .into_iter()
                .zip(burn.0)
                .zip([("output", 1e-4), ("grad x", 1e-3)])
            {
                assert_close(a, b, tol, &format!("{what}: {name}"));
            }
            let names = [
                ("mean", 1e-4),
                ("variance", 1e-4),
                ("grad gamma", 1e-3),
                ("grad beta", 1e-3),
            ];
            for ((a, b), (name, tol)) in ours.1.into_iter().zip(burn.1).zip(names) {
                assert_close(a, b, tol, &format!("{what}: {name}"));
            }
            if let (Some(a), Some(b)) = (ours.2, burn.2) {
                assert_close(a, b, 1e-4, &format!("{what}: grad residual"));
            }
        }

        // Inference with given statistics, differentiated in every argument.
        let mean = Tensor::<1>::random([c], Distribution::Normal(3.0, 1.0), &device);
        let var = Tensor::<1>::random([c], Distribution::Uniform(0.5, 4.0), &device);
        let run = |ours: bool| {
            let x = x.clone().require_grad();
            let (g, b, m, v) = (
                gamma.clone().require_grad(),
                beta.clone().require_grad(),
                mean.clone().require_grad(),
                var.clone().require_grad(),
            );
            let y = if ours {
                batch_norm(x.clone(), g.clone(), b.clone(), m.clone(), v.clone(), 1e-5)
            } else {
                burn::tensor::module::batch_norm(
                    x.clone(),
                    g.clone(),
                    b.clone(),
                    m.clone(),
                    v.clone(),
                    1e-5,
                )
            };
            let grads = (y.clone() * upstream.clone()).sum().backward();
            let grad = |t: &Tensor<1>| t.grad(&grads).expect("grad");
            (
                y,
                x.grad(&grads).expect("x grad"),
                [grad(&g), grad(&b), grad(&m), grad(&v)],
            )
        };
        let (ours, burn) = (run(true), run(false));
        assert_close(
            ours.0,
            burn.0,
            1e-4,
            &format!("batch_norm case {i}: output"),
        );
        assert_close(
            ours.1,
            burn.1,
            1e-4,
            &format!("batch_norm case {i}: grad x"),
        );
        for (k, (a, b)) in ours.2.into_iter().zip(burn.2).enumerate() {
            assert_close(
                a,
                b,
                1e-3,
                &format!("batch_norm case {i}: grad of argument {k}"),
            );
        }
    }
}

/// `relu?(conv2d(x, w, b) · scale + shift + residual?)` with Burn's operations.
fn conv_affine_reference(
    x: Tensor<4>,
    w: Tensor<4>,
    b: Option<Tensor<1>>,
    options: ConvOptions<2>,
    epilogue: ConvEpilogue,
) -> Tensor<4> {
    let y = burn::tensor::module::conv2d(x, w, b, options);
    let c = y.dims()[1];
    let y = y * epilogue.scale.reshape([1, c, 1, 1]) + epilogue.shift.reshape([1, c, 1, 1]);
    let y = match epilogue.residual {
        Some(r) => y + r,
        None => y,
    };
    if epilogue.relu {
        burn::tensor::activation::relu(y)
    } else {
        y
    }
}

#[test]
fn conv2d_affine_kernel_equals_burns_conv_affine_residual_relu() {
    for (i, (x_shape, w_shape, options)) in conv_cases().into_iter().enumerate() {
        // Every combination of bias, residual and ReLU over the cases, with and without
        // autodiff (where it is the composition, differentiated).
        let (bias, residual, relu) = (i % 2 == 0, i % 3 != 0, i % 4 != 1);
        for device in [Device::flex(), Device::flex().autodiff()] {
            let x = Tensor::<4>::random(x_shape, Distribution::Normal(0.0, 1.0), &device);
            let w = Tensor::<4>::random(w_shape, Distribution::Normal(0.0, 0.5), &device);
            let c = w_shape[0];
            let b = bias.then(|| Tensor::<1>::random([c], Distribution::Normal(0.0, 1.0), &device));
            let scale = Tensor::<1>::random([c], Distribution::Normal(1.0, 0.5), &device);
            let shift = Tensor::<1>::random([c], Distribution::Normal(0.0, 0.5), &device);
            let y_shape =
                burn::tensor::module::conv2d(x.clone(), w.clone(), None, options.clone()).dims();
            let r = residual
                .then(|| Tensor::<4>::random(y_shape, Distribution::Normal(0.0, 1.0), &device));
            let epilogue = ConvEpilogue {
                scale,
                shift,
                residual: r,
                relu,
            };
            let what = format!(
                "conv2d_affine case {i} (bias {bias}, residual {residual}, relu {relu}, autodiff {})",
                device.is_autodiff()
            );
            let ad = device.is_autodiff();
            let run = |ours: bool| {
                let track = |t: Tensor<4>| if ad { t.require_grad() } else { t };
                let (x, w) = (track(x.clone()), track(w.clone()));
                let y = if ours {
                    conv2d_affine(
                        x.clone(),
                        w.clone(),
                        b.clone(),
                        options.clone(),
                        epilogue.clone(),
                    )
                } else {
                    conv_affine_reference(
                        x.clone(),
                        w.clone(),
                        b.clone(),
                        options.clone(),
                        epilogue.clone(),
                    )
                };
                let grads = device
                    .is_autodiff()
                    .then(|| (y.clone() * y.clone()).sum().backward());
                let dx = grads.as_ref().map(|g| x.grad(g).expect("x grad"));
                (y, dx)
            };
            let (ours, burn) = (run(true), run(false));
            assert_close(ours.0, burn.0, 1e-4, &format!("{what}: output"));
            if let (Some(a), Some(b)) = (ours.1, burn.1) {
                assert_close(a, b, 1e-3, &format!("{what}: grad x"));
            }
        }
    }
}

#[test]
fn resize_kernel_equals_burns_interpolate_forward_and_backward() {
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
    use zoo_nn::ops::{ResizeMode, ResizeOptions, resize};
    let device = Device::flex().autodiff();
    let mut r = Shapes(5);
    for i in 0..10 {
        let shape = [r.next(1, 3), r.next(1, 5), r.next(1, 12), r.next(1, 12)];
        let size = [r.next(1, 20), r.next(1, 20)];
        for (mode, burn_mode, align_corners) in [
            (ResizeMode::Nearest, InterpolateMode::Nearest, false),
            (ResizeMode::Bilinear, InterpolateMode::Bilinear, false),
            (ResizeMode::Bilinear, InterpolateMode::Bilinear, true),
            (ResizeMode::Bicubic, InterpolateMode::Bicubic, true),
        ] {
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let upstream = Tensor::<4>::random(
                [shape[0], shape[1], size[0], size[1]],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let run = |ours: bool| {
                let x = x.clone().require_grad();
                let y = if ours {
                    resize(x.clone(), size, ResizeOptions::new(mode, align_corners))
                } else {
                    burn::tensor::module::interpolate(
                        x.clone(),
                        InterpolateOptions::new(burn_mode.clone())
                            .with_align_corners(align_corners)
                            .with_output_size(size),
                    )
                };
                let grads = (y.clone() * upstream.clone()).sum().backward();
                (y, x.grad(&grads).expect("x grad"))
            };
            let (ours, burn) = (run(true), run(false));
            let what = format!("resize case {i} {shape:?} → {size:?} {mode:?} ac {align_corners}");
            assert_close(ours.0, burn.0, 1e-4, &format!("{what}: output"));
            assert_close(ours.1, burn.1, 1e-4, &format!("{what}: grad x"));
        }
    }
}

#[test]
fn nearest_upsampling_by_whole_factors_equals_burns_interpolate_through_a_concatenation() {
    // The direct path of whole-factor nearest upsampling (the U-Net decoder's ×2), with its
    // gradient arriving as a channel slice of a concatenation's gradient (read in place, not
    // copied): equal to Burn's interpolate to the bit, forward and backward.
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
    use zoo_nn::ops::{ResizeMode, ResizeOptions, resize};
    let device = Device::flex().autodiff();
    for (shape, size) in [
        ([2, 3, 4, 5], [8, 10]),
        ([1, 2, 3, 3], [9, 3]),
        ([3, 1, 1, 4], [2, 12]),
        ([2, 4, 5, 1], [5, 3]),
    ] {
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let other = Tensor::<4>::random(
            [shape[0], 2, size[0], size[1]],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let upstream = Tensor::<4>::random(
            [shape[0], shape[1] + 2, size[0], size[1]],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let run = |ours: bool| {
            let x = x.clone().require_grad();
            let y = if ours {
                resize(
                    x.clone(),
                    size,
                    ResizeOptions::new(ResizeMode::Nearest, false),
                )
            } else {
                burn::tensor::module::interpolate(
                    x.clone(),
                    InterpolateOptions::new(InterpolateMode::Nearest).with_output_size(size),
                )
            };
            let z = Tensor::cat(vec![other.clone(), y.clone()], 1);
            let grads = (z * upstream.clone()).sum().backward();
            (y, x.grad(&grads).expect("x grad"))
        };
        let (ours, burn) = (run(true), run(false));
        let what = format!("nearest upsampling {shape:?} → {size:?} through a concatenation");
        assert_close(ours.0, burn.0, 0.0, &format!("{what}: output"));
        assert_close(ours.1, burn.1, 1e-6, &format!("{what}: grad x"));
    }
}

#[test]
fn roi_align_kernel_equals_the_generic_path_forward_and_backward() {
    // Burn has no ROI Align: the reference is burn-zoo's tensor-operation path (gathers and
    // their scatter-add backward) on ndarray, which the torchvision fixtures also check.
    use zoo_nn::ops::{RoiAlignOptions, roi_align};
    let mut r = Shapes(3);
    for i in 0..8 {
        let shape = [r.next(1, 3), r.next(1, 6), r.next(4, 20), r.next(4, 20)];
        let k = r.next(1, 12);
        let scale = [1.0, 0.5, 0.25][r.next(0, 2)];
        // Boxes in input-image coordinates, some beyond the map and some degenerate.
        let extent = [shape[2] as f32 / scale, shape[3] as f32 / scale];
        let rois: Vec<f32> = (0..k)
            .flat_map(|_| {
                let b = r.next(0, shape[0] - 1) as f32;
                let x1 = r.next(0, 100) as f32 / 80.0 * extent[1] - 4.0;
                let y1 = r.next(0, 100) as f32 / 80.0 * extent[0] - 4.0;
                let (w, h) = (r.next(0, 60) as f32 / 10.0, r.next(0, 60) as f32 / 10.0);
                [b, x1, y1, x1 + w / scale, y1 + h / scale]
            })
            .collect();
        let options = RoiAlignOptions::new(
            [r.next(1, 7), r.next(1, 7)],
            scale,
            [0, 2, -1][r.next(0, 2)],
            i % 2 == 0,
        );
        let x = TensorData::new(
            (0..shape.iter().product::<usize>())
                .map(|j| ((j * 7919) % 101) as f32 / 50.0 - 1.0)
                .collect::<Vec<f32>>(),
            shape,
        );
        let run = |device: Device| {
            let x = Tensor::<4>::from_data(x.clone(), &device).require_grad();
            let boxes = Tensor::<2>::from_data(TensorData::new(rois.clone(), [k, 5]), &device);
            let y = roi_align(x.clone(), boxes, options.clone());
            let upstream = Tensor::<4>::from_data(
                TensorData::new(
                    (0..y.shape().num_elements())
                        .map(|j| ((j * 31) % 17) as f32 / 8.0 - 1.0)
                        .collect::<Vec<f32>>(),
                    y.dims(),
                ),
                &device,
            );
            let grads = (y.clone() * upstream).sum().backward();
            let dx = x.grad(&grads).expect("x grad");
            (y.to_data(), dx.to_data())
        };
        let (ours, generic) = (
            run(Device::flex().autodiff()),
            run(Device::ndarray().autodiff()),
        );
        let what = format!("roi_align case {i} {shape:?} {k} rois {options:?}");
        let flex = Device::flex();
        assert_close(
            Tensor::<4>::from_data(ours.0, &flex),
            Tensor::<4>::from_data(generic.0, &flex),
            1e-5,
            &format!("{what}: output"),
        );
        assert_close(
            Tensor::<4>::from_data(ours.1, &flex),
            Tensor::<4>::from_data(generic.1, &flex),
            1e-5,
            &format!("{what}: grad x"),
        );
    }
}

#[test]
fn gelu_kernel_equals_burns_gelu_forward_and_backward() {
    // Flex's own GELU is exact in both directions (libm's erf): the reference.
    let device = Device::flex().autodiff();
    for (i, shape) in [[1, 1, 1, 7], [2, 3, 5, 4], [1, 3136, 1, 384]]
        .into_iter()
        .enumerate()
    {
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 3.0), &device);
        let upstream = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let run = |ours: bool| {
            let x = x.clone().require_grad();
            let y = if ours {
                zoo_nn::ops::gelu(x.clone())
            } else {
                burn::tensor::activation::gelu(x.clone())
            };
            let grads = (y.clone() * upstream.clone()).sum().backward();
            (y, x.grad(&grads).expect("x grad"))
        };
        let (ours, burn) = (run(true), run(false));
        assert_close(
            ours.0,
            burn.0,
            1e-5,
            &format!("gelu case {i} {shape:?}: output"),
        );
        assert_close(
            ours.1,
            burn.1,
            1e-5,
            &format!("gelu case {i} {shape:?}: grad x"),
        );
    }
}

#[test]
fn linear_kernel_equals_burns_linear_forward_and_backward() {
    use zoo_nn::ops::linear;
    let device = Device::flex().autodiff();
    let mut r = Shapes(11);
    // (leading dims, d_in, d_out): batch 1, one row, odd sizes, and enough rows (> 512) for
    // the row tiles of the product.
    let mut cases: Vec<(Vec<usize>, usize, usize)> = vec![
        (vec![1, 1], 1, 1),
        (vec![1, 49], 96, 288),
        (vec![3, 217], 13, 7),
        (vec![2, 99], 5, 17),
        (vec![1, 49], 768, 31),
    ];
    for _ in 0..6 {
        cases.push((
            vec![r.next(1, 4), r.next(1, 150)],
            r.next(1, 70),
            r.next(1, 70),
        ));
    }
    for (i, (lead, d_in, d_out)) in cases.into_iter().enumerate() {
        for with_bias in [true, false] {
            let rows: usize = lead.iter().product();
            let x = Tensor::<2>::random([rows, d_in], Distribution::Normal(0.0, 1.0), &device);
            let w = Tensor::<2>::random([d_in, d_out], Distribution::Normal(0.0, 0.5), &device);
            let b = Tensor::<1>::random([d_out], Distribution::Normal(0.0, 1.0), &device);
            let upstream =
                Tensor::<2>::random([rows, d_out], Distribution::Normal(0.0, 1.0), &device);
            let what = format!("linear case {i} {lead:?}×{d_in} → {d_out}, bias {with_bias}");
            let run = |ours: bool| {
                let (x, w, b) = (
                    x.clone().require_grad(),
                    w.clone().require_grad(),
                    b.clone().require_grad(),
                );
                let shape = [lead[0], lead[1], d_in];
                let x3 = x.clone().reshape(shape);
                let bias = with_bias.then(|| b.clone());
                let y = if ours {
                    linear(x3, w.clone(), bias)
                } else {
                    burn::tensor::module::linear(x3, w.clone(), bias)
                };
                let y = y.reshape([rows, d_out]);
                let grads = (y.clone() * upstream.clone()).sum().backward();
                (
                    y,
                    x.grad(&grads).expect("x grad"),
                    w.grad(&grads).expect("w grad"),
                    with_bias.then(|| b.grad(&grads).expect("b grad")),
                )
            };
            let (ours, burn) = (run(true), run(false));
            assert_close(ours.0, burn.0, 1e-4, &format!("{what}: output"));
            assert_close(ours.1, burn.1, 1e-4, &format!("{what}: grad x"));
            assert_close(ours.2, burn.2, 1e-4, &format!("{what}: grad weight"));
            if let (Some(a), Some(b)) = (ours.3, burn.3) {
                assert_close(a, b, 1e-4, &format!("{what}: grad bias"));
            }
        }
    }
    // Without autodiff, rank 4 and rank 2.
    let device = Device::flex();
    let x = Tensor::<4>::random([1, 9, 13, 96], Distribution::Normal(0.0, 1.0), &device);
    let w = Tensor::<2>::random([96, 384], Distribution::Normal(0.0, 0.1), &device);
    let b = Tensor::<1>::random([384], Distribution::Normal(0.0, 1.0), &device);
    assert_close(
        linear(x.clone(), w.clone(), Some(b.clone())),
        burn::tensor::module::linear(x, w.clone(), Some(b.clone())),
        1e-4,
        "linear rank 4 (no autodiff)",
    );
    let x = Tensor::<2>::random([600, 96], Distribution::Normal(0.0, 1.0), &device);
    assert_close(
        linear(x.clone(), w.clone(), None),
        burn::tensor::module::linear(x, w, None),
        1e-4,
        "linear rank 2 (no autodiff)",
    );
}

#[test]
fn window_attention_kernel_equals_the_composed_operations() {
    // The kernel runs on flex outside autodiff; the reference is the same op composed of
    // Burn's operations (roll, pad, partition, matmul, softmax, reverse) on ndarray, which
    // the timm fixtures of SwinBlock also check.
    use zoo_nn::ops::{WindowAttentionOptions, window_attention};
    let mut r = Shapes(17);
    // (batch, h, w, window, shift, heads, head_dim): Swin's stage shapes, unshifted and
    // shifted, then random ones (odd sizes, padding, asymmetric windows and shifts).
    let mut cases = vec![
        (1, 14, 14, [7, 7], [0, 0], 3, 32),
        (1, 14, 14, [7, 7], [3, 3], 3, 32),
        (2, 7, 7, [7, 7], [0, 0], 2, 16),
        (1, 9, 11, [7, 7], [3, 3], 2, 8),
    ];
    for _ in 0..10 {
        let window = [r.next(1, 6), r.next(1, 6)];
        cases.push((
            r.next(1, 2),
            r.next(1, 13),
            r.next(1, 13),
            window,
            [r.next(0, window[0] - 1), r.next(0, window[1] - 1)],
            r.next(1, 4),
            r.next(1, 20),
        ));
    }
    for (i, (b, h, w, window, shift, heads, hd)) in cases.into_iter().enumerate() {
        let c3 = 3 * heads * hd;
        let n = window[0] * window[1];
        let data = |shape: Vec<usize>, seed: usize, spread: f32| {
            let len: usize = shape.iter().product();
            TensorData::new(
                (0..len)
                    .map(|j| (((j + seed) * 7919) % 211) as f32 / 105.0 * spread - spread)
                    .collect::<Vec<f32>>(),
                shape,
            )
        };
        let qkv = data(vec![b, h, w, c3], i, 2.0);
        let bias = data(vec![c3], 3 * i + 1, 1.0);
        let rel = data(vec![heads, n, n], 5 * i + 2, 1.0);
        let options = WindowAttentionOptions::new(heads, window, shift, (hd as f64).powf(-0.5));
        let run = |device: Device| {
            window_attention(
                Tensor::<4>::from_data(qkv.clone(), &device),
                Tensor::<1>::from_data(bias.clone(), &device),
                Tensor::<3>::from_data(rel.clone(), &device),
                options.clone(),
            )
            .to_data()
        };
        let (ours, composed) = (run(Device::flex()), run(Device::ndarray()));
        let flex = Device::flex();
        assert_close(
            Tensor::<4>::from_data(ours, &flex),
            Tensor::<4>::from_data(composed, &flex),
            1e-5,
            &format!(
                "window attention case {i}: {b}×{h}×{w}, window {window:?}, shift {shift:?}, \
                 {heads} heads of {hd}"
            ),
        );
    }
}

/// `zoo_nn::optim::Sgd` against `burn::optim::Sgd`: the same parameters to the bit after
/// several steps (the first step is Burn's operations, the later ones the fused update on
/// flex and Burn's operations on ndarray), with dampening, Nesterov momentum and weight
/// decay; and a checkpoint of Burn's optimiser resumes with burn-zoo's and back.
#[test]
fn fused_sgd_equals_burns_sgd_step_by_step() {
    use burn::module::{Module, Param};
    use burn::optim::decay::WeightDecayConfig;
    use burn::optim::momentum::MomentumConfig;
    use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};

    #[derive(Module, Debug)]
    struct Params {
        conv: Param<Tensor<4>>,
        bias: Param<Tensor<1>>,
    }

    fn loss(p: &Params, x: &Tensor<4>) -> Tensor<1> {
        let y = burn::tensor::module::conv2d(
            x.clone(),
            p.conv.val(),
            Some(p.bias.val()),
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        );
        (y.clone() * y).sum()
    }

    fn step(optim: &mut ModuleOptimizer, p: Params, x: &Tensor<4>) -> Params {
        let grads = GradientsParams::from_grads(loss(&p, x).backward(), &p);
        optim.step(0.05, p, grads)
    }

    fn values(p: &Params) -> Vec<TensorData> {
        vec![p.conv.val().into_data(), p.bias.val().into_data()]
    }

    for device in [Device::flex().autodiff(), Device::ndarray().autodiff()] {
        for (dampening, nesterov, decay) in [
            (0.0, false, None),
            (0.1, false, Some(1e-2)),
            (0.0, true, Some(5e-3)),
        ] {
            let what =
                format!("{device:?}, dampening {dampening}, nesterov {nesterov}, decay {decay:?}");
            // 70 000 weights: more than one parallel chunk of the fused update.
            let params = || Params {
                conv: Param::from_tensor(Tensor::random(
                    [70, 111, 3, 3],
                    Distribution::Default,
                    &device,
                )),
                bias: Param::from_tensor(Tensor::random([70], Distribution::Default, &device)),
            };
            let x = Tensor::<4>::random([2, 111, 5, 4], Distribution::Default, &device);
            let theirs_config = SgdConfig::new()
                .with_momentum(Some(
                    MomentumConfig::new()
                        .with_momentum(0.9)
                        .with_dampening(dampening)
                        .with_nesterov(nesterov),
                ))
                .with_weight_decay(decay.map(WeightDecayConfig::new));
            let ours_config =
                zoo_nn::optim::SgdConfig::new().with_momentum_settings(0.9, dampening, nesterov);
            let ours_config = match decay {
                Some(d) => ours_config.with_weight_decay(d),
                None => ours_config,
            };
            let start = params();
            let mut theirs = theirs_config.init();
            let mut ours = ours_config.init();
            let (mut a, mut b) = (start.clone(), start.clone());
            for i in 0..4 {
                // The update runs in place on buffers it owns alone (steps 2 and 4); a clone
                // shares them (step 3), and must be left as it was.
                let kept = (i == 2).then(|| {
                    let kept = b.clone();
                    let kept_values = values(&kept);
                    (kept, kept_values)
                });
                a = step(&mut theirs, a, &x);
                b = step(&mut ours, b, &x);
                assert_eq!(values(&a), values(&b), "{what}, step {i}");
                if let Some((kept, kept_values)) = kept {
                    assert_eq!(values(&kept), kept_values, "{what}: a clone changed");
                }
            }
            // Each resumes from the other's state.
            let (mut theirs_resumed, mut ours_resumed) = (
                theirs_config.init().load_record(ours.to_record()),
                ours_config.init().load_record(theirs.to_record()),
            );
            let (a2, b2) = (
                step(&mut theirs_resumed, a.clone(), &x),
                step(&mut ours_resumed, b.clone(), &x),
            );
            let (a, b) = (step(&mut theirs, a, &x), step(&mut ours, b, &x));
            assert_eq!(values(&a), values(&b), "{what}");
            assert_eq!(
                values(&a2),
                values(&a),
                "{what}: Burn's optimiser resumed from burn-zoo's state"
            );
            assert_eq!(
                values(&b2),
                values(&a),
                "{what}: burn-zoo's optimiser resumed from Burn's state"
            );
        }
    }
}
