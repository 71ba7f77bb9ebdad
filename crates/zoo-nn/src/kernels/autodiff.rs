//! Backward passes of [`ZooKernels`] for `Autodiff<B>`: the forward runs `B`'s kernel; the
//! backward calls `B`'s gradient kernels (following burn-autodiff's own `conv2d` and
//! `batch_norm_train`).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, TensorMetadata};
use burn::tensor::ops::ConvOptions;

use std::sync::Arc;

use super::{RoiTaps, ZooKernels};
use crate::ops::ResizeOptions;
use crate::ops::SgdStep;

/// Registers the gradient `$grad` (evaluated only then) for the parent `$node` if it is
/// tracked.
macro_rules! register {
    ($B:ty, $grads:expr, $node:expr, $grad:expr) => {
        if let Some(node) = $node {
            $grads.register::<$B>(node.id, $grad);
        }
    };
}

/// The input and weight gradients of a convolution node (`[dx, dw]`), each computed only if
/// `needed`.
fn conv_grads<B: Backend + ZooKernels>(
    (x, w, options): (NodeId, NodeId, ConvOptions<2>),
    grad: &B::FloatTensorPrimitive,
    needed: [bool; 2],
    checkpointer: &mut Checkpointer,
) -> [Option<B::FloatTensorPrimitive>; 2] {
    let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x);
    let w = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w);
    let dx = needed[0]
        .then(|| B::zoo_conv2d_x_backward(x.clone(), w.clone(), grad.clone(), options.clone()));
    let dw = needed[1].then(|| B::zoo_conv2d_weight_backward(x, w, grad.clone(), options));
    [dx, dw]
}

#[derive(Debug)]
struct Conv2dWithBias;

impl<B: Backend + ZooKernels> Backward<B, 3> for Conv2dWithBias {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let needed = [node_x.is_some(), node_w.is_some()];
        let [dx, dw] = conv_grads::<B>(ops.state, &grad, needed, checkpointer);
        register!(B, grads, node_x, dx.expect("needed"));
        register!(B, grads, node_w, dw.expect("needed"));
        register!(B, grads, node_b, B::zoo_channel_sum(grad));
    }
}

#[derive(Debug)]
struct Conv2dNoBias;

impl<B: Backend + ZooKernels> Backward<B, 2> for Conv2dNoBias {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let needed = [node_x.is_some(), node_w.is_some()];
        let [dx, dw] = conv_grads::<B>(ops.state, &grad, needed, checkpointer);
        register!(B, grads, node_x, dx.expect("needed"));
        register!(B, grads, node_w, dw.expect("needed"));
    }
}

/// The input and weight gradients of a linear node (`[dx, dw]`), each computed only if
/// `needed`.
fn linear_grads<B: Backend + ZooKernels>(
    (x, w): (NodeId, NodeId),
    grad: &B::FloatTensorPrimitive,
    needed: [bool; 2],
    checkpointer: &mut Checkpointer,
) -> [Option<B::FloatTensorPrimitive>; 2] {
    let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x);
    let w = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w);
    let dx = needed[0].then(|| B::zoo_linear_x_backward(w, grad.clone()));
    let dw = needed[1].then(|| B::zoo_linear_weight_backward(x, grad.clone()));
    [dx, dw]
}

#[derive(Debug)]
struct LinearWithBias;

impl<B: Backend + ZooKernels> Backward<B, 3> for LinearWithBias {
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let needed = [node_x.is_some(), node_w.is_some()];
        let [dx, dw] = linear_grads::<B>(ops.state, &grad, needed, checkpointer);
        register!(B, grads, node_x, dx.expect("needed"));
        register!(B, grads, node_w, dw.expect("needed"));
        register!(B, grads, node_b, B::zoo_last_dim_sum(grad));
    }
}

#[derive(Debug)]
struct LinearNoBias;

impl<B: Backend + ZooKernels> Backward<B, 2> for LinearNoBias {
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let needed = [node_x.is_some(), node_w.is_some()];
        let [dx, dw] = linear_grads::<B>(ops.state, &grad, needed, checkpointer);
        register!(B, grads, node_x, dx.expect("needed"));
        register!(B, grads, node_w, dw.expect("needed"));
    }
}

/// A training-mode BatchNorm's output, batch mean and biased batch variance.
type BatchNormOutput<B> = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

/// The backward state of a training-mode BatchNorm: input and gamma checkpointed, the batch
/// statistics as the forward computed them, the output when a ReLU ended the forward, ε.
type BatchNormState<B> = (
    NodeId,
    NodeId,
    FloatTensor<B>,
    FloatTensor<B>,
    Option<FloatTensor<B>>,
    f64,
);

/// The gradients of a training-mode BatchNorm node: `(dx, dgamma, dbeta, dresidual)`, the
/// last when `residual_grad`.
#[allow(clippy::type_complexity)]
fn batch_norm_grads<B: Backend + ZooKernels>(
    (x, gamma, mean, variance, output, epsilon): BatchNormState<B>,
    grad: B::FloatTensorPrimitive,
    residual_grad: bool,
    checkpointer: &mut Checkpointer,
) -> (
    B::FloatTensorPrimitive,
    B::FloatTensorPrimitive,
    B::FloatTensorPrimitive,
    Option<B::FloatTensorPrimitive>,
) {
    let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x);
    let gamma = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(gamma);
    match output {
        Some(y) => B::zoo_batch_norm_train_relu_backward(
            x,
            gamma,
            mean,
            variance,
            y,
            epsilon,
            grad,
            residual_grad,
        ),
        None => {
            let dresidual = residual_grad.then(|| grad.clone());
            let (dx, dgamma, dbeta) =
                B::zoo_batch_norm_train_backward(x, gamma, mean, variance, epsilon, grad);
            (dx, dgamma, dbeta, dresidual)
        }
    }
}

/// `bn(x)`, plus the residual when the node has a fourth parent, then a ReLU when the state
/// holds the output.
#[derive(Debug)]
struct BatchNormTrain;

impl<B: Backend + ZooKernels, const N: usize> Backward<B, N> for BatchNormTrain {
    type State = BatchNormState<B>;

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let mut parents = ops.parents.into_iter();
        let mut parent = || parents.next().flatten();
        let (node_x, node_gamma, node_beta) = (parent(), parent(), parent());
        let node_residual = parent();
        let grad = grads.consume::<B>(&ops.node);
        let (dx, dgamma, dbeta, dresidual) =
            batch_norm_grads::<B>(ops.state, grad, node_residual.is_some(), checkpointer);
        register!(B, grads, node_x, dx);
        register!(B, grads, node_gamma, dgamma);
        register!(B, grads, node_beta, dbeta);
        register!(B, grads, node_residual, dresidual.expect("asked for"));
    }
}

#[derive(Debug)]
struct ChannelAffine;

impl<B: Backend + ZooKernels> Backward<B, 3> for ChannelAffine {
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_scale, node_shift] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(ops.state.0);
        let scale = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(ops.state.1);
        let (dx, dscale, dshift) = B::zoo_channel_affine_backward(x, scale, grad);
        register!(B, grads, node_x, dx);
        register!(B, grads, node_scale, dscale);
        register!(B, grads, node_shift, dshift);
    }
}

#[derive(Debug)]
struct Gelu;

impl<B: Backend + ZooKernels> Backward<B, 1> for Gelu {
    type State = NodeId;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(ops.state);
        register!(B, grads, node_x, B::zoo_gelu_backward(x, grad));
    }
}

/// The node of an operation linear in its one input (resize, ROI pooling): its backward is
/// the adjoint kernel applied to the output gradient, with the state the forward kept.
struct Linear<B: Backend, S> {
    adjoint: fn(B::FloatTensorPrimitive, S) -> B::FloatTensorPrimitive,
}

impl<B: Backend, S> std::fmt::Debug for Linear<B, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Linear")
    }
}

impl<B: Backend, S: Clone + Send + std::fmt::Debug + 'static> Backward<B, 1> for Linear<B, S> {
    type State = S;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        register!(B, grads, node_x, (self.adjoint)(grad, ops.state));
    }
}

/// Runs `forward` (linear in `x`) on the inner backend, recording `adjoint` and `state` for
/// the backward when `x` is tracked.
fn linear<B: Backend, C: CheckpointStrategy, S: Clone + Send + std::fmt::Debug + 'static>(
    x: FloatTensor<Autodiff<B, C>>,
    state: S,
    forward: impl FnOnce(B::FloatTensorPrimitive) -> B::FloatTensorPrimitive,
    adjoint: fn(B::FloatTensorPrimitive, S) -> B::FloatTensorPrimitive,
) -> FloatTensor<Autodiff<B, C>> {
    match (Linear { adjoint })
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, forward(x.into_primitive())),
        OpsKind::UnTracked(prep) => prep.finish(forward(x.into_primitive())),
    }
}

/// Runs `forward` on the inner tensors of `inputs` under `op`'s node. When the node is
/// tracked, the first two inputs are kept for the backward (checkpointed) and `state` makes
/// the backward's state of their ids: the shape of every op here whose gradients need its
/// input and its weight (convolutions, linear layers, the per-channel affine map).
fn keeping_first_two<B, C, O, S, const N: usize>(
    op: O,
    inputs: [FloatTensor<Autodiff<B, C>>; N],
    state: impl FnOnce(NodeId, NodeId) -> S,
    forward: impl FnOnce([B::FloatTensorPrimitive; N]) -> B::FloatTensorPrimitive,
) -> FloatTensor<Autodiff<B, C>>
where
    B: Backend,
    C: CheckpointStrategy,
    O: Backward<B, N, State = S>,
    S: Clone + Send + std::fmt::Debug + 'static,
{
    let nodes = inputs.each_ref().map(|t| t.node());
    match op.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let state = state(prep.checkpoint(&inputs[0]), prep.checkpoint(&inputs[1]));
            prep.finish(state, forward(inputs.map(|t| t.into_primitive())))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(inputs.map(|t| t.into_primitive()))),
    }
}

/// A [`BatchNormTrain`] node over `inputs` (x, gamma, beta, and the residual when there is
/// one): `B`'s forward; when tracked, x and gamma are kept for the
/// backward with the statistics and, when a ReLU ends the forward, its output (the mask).
fn batch_norm_node<B, C, const N: usize>(
    inputs: [FloatTensor<Autodiff<B, C>>; N],
    relu: bool,
    epsilon: f64,
) -> BatchNormOutput<Autodiff<B, C>>
where
    B: Backend + ZooKernels,
    C: CheckpointStrategy,
{
    let lift = <Autodiff<B, C> as AutodiffBackend>::from_inner;
    let forward = |inputs: [FloatTensor<Autodiff<B, C>>; N]| {
        let mut inner = inputs.into_iter().map(|t| t.into_primitive());
        let (x, gamma, beta) = (
            inner.next().expect("x"),
            inner.next().expect("gamma"),
            inner.next().expect("beta"),
        );
        match inner.next() {
            Some(residual) => B::zoo_batch_norm_train_add(x, gamma, beta, residual, relu, epsilon),
            None => B::zoo_batch_norm_train(x, gamma, beta, relu, epsilon),
        }
    };
    let nodes = inputs.each_ref().map(|t| t.node());
    match BatchNormTrain
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let (x, gamma) = (prep.checkpoint(&inputs[0]), prep.checkpoint(&inputs[1]));
            let (y, mean, var) = forward(inputs);
            let output = relu.then(|| y.clone());
            let state = (x, gamma, mean.clone(), var.clone(), output, epsilon);
            (prep.finish(state, y), lift(mean), lift(var))
        }
        OpsKind::UnTracked(prep) => {
            let (y, mean, var) = forward(inputs);
            (prep.finish(y), lift(mean), lift(var))
        }
    }
}

/// `relu(y)` when `relu`, else `y`.
fn relu_if<B: Backend>(relu: bool, y: FloatTensor<B>) -> FloatTensor<B> {
    if relu { B::relu(y) } else { y }
}

fn no_double_backward(op: &str) -> ! {
    panic!("zoo kernels: {op} is a backward pass and cannot itself be differentiated")
}

impl<B: Backend + ZooKernels, C: CheckpointStrategy> ZooKernels for Autodiff<B, C> {
    fn zoo_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let kept = options.clone();
        keeping_first_two::<B, C, _, _, _>(
            Conv2dNoBias,
            [x, weight],
            |x, w| (x, w, kept),
            |[x, w]| B::zoo_conv2d(x, w, options),
        )
    }

    fn zoo_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let kept = options.clone();
        keeping_first_two::<B, C, _, _, _>(
            Conv2dWithBias,
            [x, weight, bias],
            |x, w| (x, w, kept),
            |[x, w, b]| B::zoo_conv2d_bias(x, w, b, options),
        )
    }

    fn zoo_conv2d_affine(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        relu: bool,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let y = Self::zoo_channel_affine(Self::zoo_conv2d(x, weight, options), scale, shift);
        relu_if::<Self>(relu, y)
    }

    fn zoo_conv2d_affine_add(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        relu: bool,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let y = Self::zoo_conv2d_affine(x, weight, scale, shift, false, options);
        relu_if::<Self>(relu, <Self as FloatTensorOps<Self>>::float_add(y, residual))
    }

    fn zoo_conv2d_x_backward(
        _x: FloatTensor<Self>,
        _weight: FloatTensor<Self>,
        _output_grad: FloatTensor<Self>,
        _options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        no_double_backward("zoo_conv2d_x_backward")
    }

    fn zoo_conv2d_weight_backward(
        _x: FloatTensor<Self>,
        _weight: FloatTensor<Self>,
        _output_grad: FloatTensor<Self>,
        _options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        no_double_backward("zoo_conv2d_weight_backward")
    }

    fn zoo_channel_sum(_output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
        no_double_backward("zoo_channel_sum")
    }

    fn zoo_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        relu: bool,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        batch_norm_node::<B, C, 3>([x, gamma, beta], relu, epsilon)
    }

    fn zoo_batch_norm_train_add(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        relu: bool,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        batch_norm_node::<B, C, 4>([x, gamma, beta, residual], relu, epsilon)
    }

    fn zoo_batch_norm_train_backward(
        _x: FloatTensor<Self>,
        _gamma: FloatTensor<Self>,
        _mean: FloatTensor<Self>,
        _variance: FloatTensor<Self>,
        _epsilon: f64,
        _output_grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        no_double_backward("zoo_batch_norm_train_backward")
    }

    fn zoo_batch_norm_train_relu_backward(
        _x: FloatTensor<Self>,
        _gamma: FloatTensor<Self>,
        _mean: FloatTensor<Self>,
        _variance: FloatTensor<Self>,
        _output: FloatTensor<Self>,
        _epsilon: f64,
        _output_grad: FloatTensor<Self>,
        _residual_grad: bool,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        Option<FloatTensor<Self>>,
    ) {
        no_double_backward("zoo_batch_norm_train_relu_backward")
    }

    fn zoo_channel_affine(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        keeping_first_two::<B, C, _, _, _>(
            ChannelAffine,
            [x, scale, shift],
            |x, scale| (x, scale),
            |[x, scale, shift]| B::zoo_channel_affine(x, scale, shift),
        )
    }

    fn zoo_channel_affine_backward(
        _x: FloatTensor<Self>,
        _scale: FloatTensor<Self>,
        _output_grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        no_double_backward("zoo_channel_affine_backward")
    }

    fn zoo_resize(
        x: FloatTensor<Self>,
        size: [usize; 2],
        options: ResizeOptions,
    ) -> FloatTensor<Self> {
        let shape = x.shape();
        let state = ([shape[2], shape[3]], options.clone());
        linear::<B, C, _>(
            x,
            state,
            |x| B::zoo_resize(x, size, options),
            |grad, (input_size, options)| B::zoo_resize_backward(grad, input_size, options),
        )
    }

    fn zoo_resize_backward(
        _output_grad: FloatTensor<Self>,
        _input_size: [usize; 2],
        _options: ResizeOptions,
    ) -> FloatTensor<Self> {
        no_double_backward("zoo_resize_backward")
    }

    fn zoo_roi_pool(x: FloatTensor<Self>, taps: Arc<RoiTaps>) -> FloatTensor<Self> {
        let shape = x.shape();
        let state = (taps.clone(), [shape[0], shape[1], shape[2], shape[3]]);
        linear::<B, C, _>(
            x,
            state,
            |x| B::zoo_roi_pool(x, taps),
            |grad, (taps, input_shape)| B::zoo_roi_pool_backward(grad, taps, input_shape),
        )
    }

    fn zoo_roi_pool_backward(
        _output_grad: FloatTensor<Self>,
        _taps: Arc<RoiTaps>,
        _input_shape: [usize; 4],
    ) -> FloatTensor<Self> {
        no_double_backward("zoo_roi_pool_backward")
    }

    fn zoo_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        keeping_first_two::<B, C, _, _, _>(
            LinearNoBias,
            [x, weight],
            |x, w| (x, w),
            |[x, w]| B::zoo_linear(x, w),
        )
    }

    fn zoo_linear_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        keeping_first_two::<B, C, _, _, _>(
            LinearWithBias,
            [x, weight, bias],
            |x, w| (x, w),
            |[x, w, b]| B::zoo_linear_bias(x, w, b),
        )
    }

    fn zoo_linear_x_backward(
        _weight: FloatTensor<Self>,
        _output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        no_double_backward("zoo_linear_x_backward")
    }

    fn zoo_linear_weight_backward(
        _x: FloatTensor<Self>,
        _output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        no_double_backward("zoo_linear_weight_backward")
    }

    fn zoo_last_dim_sum(_output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
        no_double_backward("zoo_last_dim_sum")
    }

    fn zoo_window_attention(
        _qkv: FloatTensor<Self>,
        _qkv_bias: FloatTensor<Self>,
        _rel_bias: FloatTensor<Self>,
        _heads: usize,
        _window: [usize; 2],
        _shift: [usize; 2],
        _scale: f32,
    ) -> FloatTensor<Self> {
        panic!(
            "zoo kernels: zoo_window_attention is inference-only; under autodiff \
             ops::window_attention composes Burn's operations"
        )
    }

    fn zoo_sgd_momentum(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        velocity: FloatTensor<Self>,
        step: SgdStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        // An optimiser step: nothing to track.
        let (p, v) = B::zoo_sgd_momentum(
            param.into_primitive(),
            grad.into_primitive(),
            velocity.into_primitive(),
            step,
        );
        let lift = <Self as AutodiffBackend>::from_inner;
        (lift(p), lift(v))
    }

    fn zoo_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match Gelu.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                prep.finish(state, B::zoo_gelu(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::zoo_gelu(x.into_primitive())),
        }
    }

    fn zoo_gelu_backward(
        _x: FloatTensor<Self>,
        _output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        no_double_backward("zoo_gelu_backward")
    }
}
