//! The optimiser and the learning-rate schedule of a run file's `[train]` section.

use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, ModuleOptimizer};

use crate::config::{Optimizer, RunConfig, Schedule};

/// The learning rate at `step` of `total`: a linear warmup over `warmup_steps` (from
/// `lr / warmup_steps` to `lr`) for every schedule, then constant, polynomial decay
/// `lr · (1 − p)^0.9` (DeepLab), cosine decay to 0, or `lr · gamma^k` after the k-th
/// milestone — `p` the progress over the steps after the warmup.
pub fn learning_rate(config: &RunConfig, step: usize, total: usize) -> f64 {
    let t = &config.train;
    if step < t.warmup_steps {
        return t.lr * (step + 1) as f64 / t.warmup_steps as f64;
    }
    let rest =
        (step - t.warmup_steps) as f64 / (total.saturating_sub(t.warmup_steps)).max(1) as f64;
    match t.schedule {
        Schedule::Constant => t.lr,
        Schedule::Poly => t.lr * (1.0 - rest).max(0.0).powf(0.9),
        Schedule::Cosine => 0.5 * t.lr * (1.0 + (std::f64::consts::PI * rest.min(1.0)).cos()),
        Schedule::Multistep => {
            let passed = t.milestones.iter().filter(|&&m| step >= m).count();
            t.lr * t.gamma.powi(passed as i32)
        }
    }
}

/// SGD with momentum or AdamW, with the run's weight decay and gradient clipping (global
/// norm).
///
/// SGD is `torch.optim.SGD`'s (dampening 0, as the torchvision and mmseg recipes the run
/// files follow assume; Burn's `MomentumConfig` defaults to 0.1), through
/// [`zoo_nn::optim::Sgd`], whose update is one fused pass on flex.
pub fn optimizer(config: &RunConfig) -> ModuleOptimizer {
    let t = &config.train;
    let clip = (t.grad_clip > 0.0).then_some(GradientClippingConfig::Norm(t.grad_clip));
    match t.optimizer {
        Optimizer::Sgd => {
            let mut sgd = zoo_nn::optim::SgdConfig::new().with_momentum(t.momentum);
            if t.weight_decay > 0.0 {
                sgd = sgd.with_weight_decay(t.weight_decay as f32);
            }
            if let Some(clip) = clip {
                sgd = sgd.with_gradient_clipping(clip);
            }
            sgd.init()
        }
        // ε = 1e-8 as `torch.optim.AdamW` (Burn's default is 1e-5, which damps the small
        // gradients of deep layers early in a from-scratch run).
        Optimizer::AdamW => AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(t.weight_decay as f32)
            .with_grad_clipping(clip)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn schedules() {
        let text = "[model]\nname = \"unet_resnet18\"\nnum_classes = 5\n[train]\nlr = 0.05\n";
        let mut c = RunConfig::parse(text, Path::new("s.toml"), &[]).unwrap();
        assert_eq!(learning_rate(&c, 0, 10), 0.05);
        assert!(learning_rate(&c, 9, 10) < 0.01);
        c.train.schedule = Schedule::Cosine;
        c.train.warmup_steps = 2;
        assert_eq!(learning_rate(&c, 0, 10), 0.025);
        assert_eq!(learning_rate(&c, 2, 10), 0.05);
        assert!(learning_rate(&c, 10, 10) < 1e-12);
        // Warmup for every schedule; multistep.
        c.train.schedule = Schedule::Poly;
        assert_eq!(learning_rate(&c, 0, 10), 0.025);
        assert_eq!(learning_rate(&c, 2, 10), 0.05);
        c.train.schedule = Schedule::Multistep;
        c.train.milestones = vec![4, 8];
        let lrs: Vec<f64> = [2, 3, 4, 7, 8, 9]
            .iter()
            .map(|&s| learning_rate(&c, s, 10))
            .collect();
        let expected = [0.05, 0.05, 0.005, 0.005, 0.0005, 0.0005];
        assert!(
            lrs.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-12),
            "{lrs:?}"
        );
    }
}
