//! One SGD-with-momentum update on the host, f32, in one pass over the parameter, its
//! gradient and its momentum buffer, in place (Burn's `Sgd` makes five passes, each into a new
//! tensor: a tenth of the U-Net(resnet18) train step).

use rayon::prelude::*;

use crate::ops::SgdStep;

/// Elements per parallel task.
const CHUNK: usize = 1 << 15;

/// [`SgdStep`] on `param` and `velocity` in place, from `grad` (same length), with the
/// operations of `burn::optim::Sgd` in the same order and precision, so the results are the
/// same to the bit. Reads three arrays and writes two, nothing else: on this project's VMs the
/// update runs at memory bandwidth.
pub(crate) fn sgd_momentum(param: &mut [f32], velocity: &mut [f32], grad: &[f32], step: SgdStep) {
    let one = |p: &mut f32, v: &mut f32, g: f32| {
        let g = match step.weight_decay {
            Some(decay) => *p * decay + g,
            None => g,
        };
        *v = g * step.dampening_complement + *v * step.momentum;
        let update = if step.nesterov {
            *v * step.momentum + g
        } else {
            *v
        };
        *p -= update * step.lr;
    };
    param
        .par_chunks_mut(CHUNK)
        .zip(velocity.par_chunks_mut(CHUNK))
        .zip(grad.par_chunks(CHUNK))
        .for_each(|((p, v), g)| {
            for ((p, v), g) in p.iter_mut().zip(v.iter_mut()).zip(g) {
                one(p, v, *g);
            }
        });
}
