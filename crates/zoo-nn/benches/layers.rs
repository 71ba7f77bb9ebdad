//! Criterion benches of the heaviest layers, on flex and ndarray (fwd and fwd+bwd).
//! PyTorch CPU figures for the same shapes: `tools/parity/bench_layers.py`; both in
//! BENCHMARKS.md.
//!
//! `cargo bench -p zoo-nn --bench layers`
#![allow(deprecated)]

use burn::module::Param;
use burn::nn::norm::Normalization;
use burn::prelude::*;
use burn::tensor::Distribution;
use criterion::{Criterion, criterion_group, criterion_main};
use zoo_nn::layers::{Aspp, AsppConfig, ConvNormAct, SwinBlockConfig};

fn devices() -> [(&'static str, Device); 2] {
    [("flex", Device::flex()), ("ndarray", Device::ndarray())]
}

/// Runs `forward` on `input`; with `backward`, also the gradients of its sum with respect to
/// the input and every parameter (read back from the device).
fn run<const D: usize, M: Module>(
    module: &M,
    input: &Tensor<D>,
    backward: bool,
    forward: impl Fn(&M, Tensor<D>) -> Tensor<D>,
) {
    if !backward {
        forward(module, input.clone()).into_data();
        return;
    }
    let x = input.clone().require_grad();
    let grads = forward(module, x.clone()).sum().backward();
    x.grad(&grads).unwrap().into_data();
    let mut visitor = ReadGrads(&grads);
    module.visit(&mut visitor);
}

/// Reads every parameter gradient back, so the backward pass is not cut short.
struct ReadGrads<'a>(&'a burn::tensor::Gradients);

impl burn::module::ModuleVisitor for ReadGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = param.val().grad(self.0) {
            g.into_data();
        }
    }
}

/// BatchNorm on running statistics (PyTorch's `eval()`), also on autodiff devices.
fn eval_block(mut block: ConvNormAct) -> ConvNormAct {
    if let Normalization::Batch(bn) = &mut block.norm {
        bn.training = Param::from_bool(false);
    }
    block
}

fn eval_aspp(aspp: Aspp) -> Aspp {
    Aspp {
        convs: aspp.convs.into_iter().map(eval_block).collect(),
        pooling: eval_block(aspp.pooling),
        project: eval_block(aspp.project),
        dropout: burn::nn::Dropout {
            training: Param::from_bool(false),
            ..aspp.dropout
        },
    }
}

fn bench_aspp(c: &mut Criterion) {
    let mut group = c.benchmark_group("Aspp 1x2048x32x32 -> 256, rates 12/24/36, eval");
    group.sample_size(10);
    for (name, device) in devices() {
        for (mode, dev) in [("fwd", device.clone()), ("fwd+bwd", device.autodiff())] {
            let aspp = eval_aspp(AsppConfig::new(2048).init(&dev));
            let x = Tensor::<4>::random([1, 2048, 32, 32], Distribution::Default, &dev);
            group.bench_function(format!("{mode}/{name}"), |b| {
                b.iter(|| run(&aspp, &x, mode != "fwd", |m, x| m.forward(x)))
            });
        }
    }
}

fn bench_swin_block(c: &mut Criterion) {
    let mut group = c.benchmark_group("SwinBlock 1x56x56x96, 3 heads, window 7, shift 3");
    group.sample_size(10);
    for (name, device) in devices() {
        for (mode, dev) in [("fwd", device.clone()), ("fwd+bwd", device.autodiff())] {
            let block = SwinBlockConfig::new(96, 3, [56, 56])
                .with_shift_size(3)
                .init(&dev);
            let x = Tensor::<4>::random([1, 56, 56, 96], Distribution::Default, &dev);
            group.bench_function(format!("{mode}/{name}"), |b| {
                b.iter(|| run(&block, &x, mode != "fwd", |m, x| m.forward(x)))
            });
        }
    }
}

criterion_group!(benches, bench_aspp, bench_swin_block);
criterion_main!(benches);
