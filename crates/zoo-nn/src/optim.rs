//! SGD with momentum whose update is one fused pass, in place, on flex: a drop-in for
//! `burn::optim::SgdConfig` with the same arithmetic, the same results to the bit and the same
//! checkpoint layout.
//!
//! Burn's `Sgd` computes a step as five tensor operations (`grad · (1 − dampening)`,
//! `velocity · momentum`, their sum, `· lr`, `param −`), each reading whole tensors and
//! writing a new one. [`Sgd`] reads the parameter, its gradient and its momentum buffer once
//! and writes the parameter and the buffer in place where it owns them alone
//! ([`crate::kernels::ZooKernels::zoo_sgd_momentum`]); on other backends and on the first
//! step (no momentum buffer yet) it runs Burn's operations. Measured on a 2-core Xeon VM, the
//! optimiser step of U-Net(resnet18) (14.3 M parameters) went from 37–47 to 10–12 ms, of
//! ResNet-50 (25.6 M) from 57–79 to 16–21 ms.
//!
//! ```no_run
//! use zoo_nn::optim::SgdConfig;
//! // torch.optim.SGD(params, lr, momentum=0.9, weight_decay=1e-4) — PyTorch's dampening 0.
//! let optim = SgdConfig::new().with_momentum(0.9).with_weight_decay(1e-4).init();
//! ```

use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{
    LearningRate, ModuleOptimizer, Optimizer, RecordState, StateSink, StateSource, join_path,
};
use burn::tensor::{Device, Tensor};

use crate::ops::{SgdStep, sgd_momentum};

/// Settings of [`Sgd`]; [`SgdConfig::init`] builds the module optimiser.
#[derive(Clone, Debug, Default)]
pub struct SgdConfig {
    momentum: Option<Momentum>,
    weight_decay: Option<f32>,
    gradient_clipping: Option<GradientClippingConfig>,
}

/// Momentum settings (PyTorch's `momentum`, `dampening`, `nesterov`).
#[derive(Clone, Copy, Debug)]
struct Momentum {
    momentum: f32,
    dampening: f64,
    nesterov: bool,
}

impl SgdConfig {
    /// Plain SGD: no momentum, no weight decay, no clipping.
    pub fn new() -> Self {
        Self::default()
    }

    /// Momentum `momentum` with dampening 0 and without Nesterov (PyTorch's defaults).
    pub fn with_momentum(self, momentum: f64) -> Self {
        self.with_momentum_settings(momentum, 0.0, false)
    }

    /// Momentum with its dampening and Nesterov switch. Burn's `MomentumConfig` defaults to
    /// dampening 0.1; pass it here to reproduce a run made with it.
    pub fn with_momentum_settings(mut self, momentum: f64, dampening: f64, nesterov: bool) -> Self {
        self.momentum = Some(Momentum {
            momentum: momentum as f32,
            dampening,
            nesterov,
        });
        self
    }

    /// L2 penalty added to each gradient (`grad + weight_decay · param`).
    pub fn with_weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = Some(weight_decay);
        self
    }

    /// Gradient clipping applied by the module optimiser before each step.
    pub fn with_gradient_clipping(mut self, clipping: GradientClippingConfig) -> Self {
        self.gradient_clipping = Some(clipping);
        self
    }

    /// The bare optimiser (for `ModuleOptimizer::with_group`).
    pub fn build(&self) -> Sgd {
        Sgd {
            momentum: self.momentum,
            weight_decay: self.weight_decay,
        }
    }

    /// The module optimiser, with the configured gradient clipping.
    pub fn init(&self) -> ModuleOptimizer {
        let optim = ModuleOptimizer::from(self.build());
        match &self.gradient_clipping {
            Some(clipping) => optim.with_grad_clipping(clipping.init()),
            None => optim,
        }
    }
}

/// Stochastic gradient descent with momentum and weight decay, as `burn::optim::Sgd`.
#[derive(Clone, Debug)]
pub struct Sgd {
    momentum: Option<Momentum>,
    weight_decay: Option<f32>,
}

/// [`Sgd`]'s state of one parameter: its momentum buffer, recorded under the name Burn's
/// `SgdState` uses (`momentum.velocity`), so that a checkpoint of either resumes with the
/// other.
#[derive(Clone)]
pub struct SgdState<const D: usize> {
    velocity: Option<Tensor<D>>,
}

impl<const D: usize> RecordState for SgdState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        if let Some(velocity) = &self.velocity {
            out.push_tensor(
                &join_path(prefix, "momentum"),
                "velocity",
                velocity.clone().into_data(),
            );
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let momentum = join_path(prefix, "momentum");
        let velocity = if src.has_under(&momentum) {
            Some(Tensor::from_data(
                src.take_tensor(&momentum, "velocity")?,
                device,
            ))
        } else {
            None
        };
        Some(Self { velocity })
    }
}

impl Optimizer for Sgd {
    type State<const D: usize> = SgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        param: Tensor<D>,
        grad: Tensor<D>,
        state: Option<SgdState<D>>,
    ) -> (Tensor<D>, Option<SgdState<D>>) {
        let previous = state.and_then(|s| s.velocity);
        let Some(m) = self.momentum else {
            let grad = self.decayed(grad, &param);
            return (
                param - grad.mul_scalar(lr),
                Some(SgdState { velocity: None }),
            );
        };
        if let Some(velocity) = previous {
            let step = SgdStep::new(lr, m.momentum, m.dampening, self.weight_decay, m.nesterov);
            let (param, velocity) = sgd_momentum(param, grad, velocity, step);
            return (
                param,
                Some(SgdState {
                    velocity: Some(velocity),
                }),
            );
        }
        // The first step: the momentum buffer starts as the gradient (Burn's and PyTorch's
        // rule).
        let grad = self.decayed(grad, &param);
        let velocity = grad.clone();
        let update = if m.nesterov {
            velocity.clone().mul_scalar(m.momentum).add(grad)
        } else {
            velocity.clone()
        };
        (
            param - update.mul_scalar(lr),
            Some(SgdState {
                velocity: Some(velocity),
            }),
        )
    }

    fn to_device<const D: usize>(state: SgdState<D>, device: &Device) -> SgdState<D> {
        SgdState {
            velocity: state.velocity.map(|v| v.to_device(device)),
        }
    }
}

impl Sgd {
    /// `grad + weight_decay · param` (Burn's `WeightDecay::transform`), or `grad`.
    fn decayed<const D: usize>(&self, grad: Tensor<D>, param: &Tensor<D>) -> Tensor<D> {
        match self.weight_decay {
            Some(decay) => param.clone().mul_scalar(decay).add(grad),
            None => grad,
        }
    }
}
