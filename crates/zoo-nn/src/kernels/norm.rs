//! Per-channel normalisation on the host, NC… f32 (`[N, C, S]` with `S` the spatial size):
//! training-mode BatchNorm forward and backward in two passes each (Burn's generic
//! `batch_norm_train` composes ~10 tensor operations, several with full copies), and the
//! per-channel affine map `y = x · scale + shift` that inference-mode BatchNorm reduces to.
//!
//! Channels are spread over rayon's pool; each channel's `N` planes are visited in order, so
//! results do not depend on the thread count.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::{assume_init, uninit, written};

/// Shape of a normalised tensor: `batch` planes of `spatial` values for each of `channels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Planes {
    pub batch: usize,
    pub channels: usize,
    pub spatial: usize,
}

impl Planes {
    fn plane(&self, n: usize, c: usize) -> std::ops::Range<usize> {
        let start = (n * self.channels + c) * self.spatial;
        start..start + self.spatial
    }

    fn count(&self) -> f64 {
        (self.batch * self.spatial) as f64
    }
}

/// Sums of `f(a, b)` over two slices, in f32 lanes per block of 1024 added into f64.
fn sum2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Copy) -> f64 {
    let mut total = 0.0f64;
    for (a, b) in a.chunks(1024).zip(b.chunks(1024)) {
        let mut lanes = [0.0f32; 8];
        let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
        let (ra, rb) = (a8.remainder(), b8.remainder());
        for (a, b) in a8.zip(b8) {
            for i in 0..8 {
                lanes[i] += f(a[i], b[i]);
            }
        }
        let tail: f32 = ra.iter().zip(rb).map(|(&a, &b)| f(a, b)).sum();
        total += lanes.iter().map(|&v| v as f64).sum::<f64>() + tail as f64;
    }
    total
}

/// A raw pointer shared by tasks that write disjoint channels of a buffer not yet written.
#[derive(Clone, Copy)]
struct SharedMut(*mut MaybeUninit<f32>);
// SAFETY: every task writes only the planes of its own channel.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The plane `range` of the buffer.
    ///
    /// # Safety
    /// `range` lies in the buffer, and no other live reference covers it.
    unsafe fn slice<'a>(self, range: std::ops::Range<usize>) -> &'a mut [MaybeUninit<f32>] {
        // SAFETY: per the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(range.start), range.len()) }
    }
}

/// Batch statistics of every channel: `(mean, biased variance)`, in f64, from one pass.
///
/// The sums are taken around the channel's first value (variance is shift-invariant), which
/// keeps `E[x²] − E[x]²` from cancelling when the mean is large against the spread.
fn channel_stats(x: &[f32], p: Planes, c: usize) -> (f64, f64) {
    let shift = x[p.plane(0, c).start];
    let (mut s, mut q) = (0.0f64, 0.0f64);
    for n in 0..p.batch {
        for block in x[p.plane(n, c)].chunks(1024) {
            let (mut ls, mut lq) = ([0.0f32; 8], [0.0f32; 8]);
            let lanes = block.chunks_exact(8);
            let tail = lanes.remainder();
            for v in lanes {
                for i in 0..8 {
                    let d = v[i] - shift;
                    ls[i] += d;
                    lq[i] += d * d;
                }
            }
            let (ts, tq) = tail.iter().fold((0.0f32, 0.0f32), |(s, q), &v| {
                (s + (v - shift), q + (v - shift) * (v - shift))
            });
            s += ls.iter().map(|&v| v as f64).sum::<f64>() + ts as f64;
            q += lq.iter().map(|&v| v as f64).sum::<f64>() + tq as f64;
        }
    }
    let mean_shifted = s / p.count();
    let var = (q / p.count() - mean_shifted * mean_shifted).max(0.0);
    (mean_shifted + shift as f64, var)
}

/// What follows a training-mode BatchNorm in the same pass: `+ residual` (shaped as the
/// input), then a ReLU — a ResNet block's tail, `relu(bn(conv(x)) + identity)`.
#[derive(Clone, Copy, Default)]
pub(crate) struct Tail<'a> {
    pub residual: Option<&'a [f32]>,
    pub relu: bool,
}

/// Burn's ReLU: `0` where `v <= 0`, `v` elsewhere (NaN included).
fn relu(v: f32) -> f32 {
    if v <= 0.0 { 0.0 } else { v }
}

/// Burn's ReLU gradient: `0` where the output is `<= 0`, the output gradient elsewhere.
fn relu_grad(g: f32, y: f32) -> f32 {
    if y <= 0.0 { 0.0 } else { g }
}

/// Training-mode BatchNorm: normalises with the batch's statistics, then applies `tail`
/// in the same pass.
///
/// Returns `(y, mean, biased variance)`, `y` shaped as `x`, the statistics `[C]`.
pub(crate) fn train_forward(
    x: &[f32],
    p: Planes,
    gamma: &[f32],
    beta: &[f32],
    tail: Tail,
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut stats = Vec::new();
    let fill = |y: &mut [MaybeUninit<f32>]| {
        let out = SharedMut(y.as_mut_ptr());
        stats = (0..p.channels)
            .into_par_iter()
            .map(|c| {
                let (mean, var) = channel_stats(x, p, c);
                let inv_std = 1.0 / (var + epsilon).sqrt();
                let scale = (gamma[c] as f64 * inv_std) as f32;
                let shift = (beta[c] as f64 - mean * gamma[c] as f64 * inv_std) as f32;
                for n in 0..p.batch {
                    let range = p.plane(n, c);
                    // SAFETY: channel `c`'s planes are written by this task only.
                    let dst = unsafe { out.slice(range.clone()) };
                    let src = &x[range.clone()];
                    match (tail.residual, tail.relu) {
                        (None, false) => {
                            for (d, &v) in dst.iter_mut().zip(src) {
                                d.write(v * scale + shift);
                            }
                        }
                        (None, true) => {
                            for (d, &v) in dst.iter_mut().zip(src) {
                                d.write(relu(v * scale + shift));
                            }
                        }
                        (Some(r), relu_after) => {
                            for ((d, &v), &r) in dst.iter_mut().zip(src).zip(&r[range]) {
                                let z = v * scale + shift + r;
                                d.write(if relu_after { relu(z) } else { z });
                            }
                        }
                    }
                }
                (mean as f32, var as f32)
            })
            .collect();
    };
    // SAFETY: the tasks write every plane of every channel.
    let y = unsafe { written(x.len(), fill) };
    let (mean, var) = stats.into_iter().unzip();
    (y, mean, var)
}

/// `dy` through the ReLU whose output is `y` when there is one (written into `buf`, which
/// is returned), else `dy`.
fn through_relu<'a>(
    dy: &'a [f32],
    y: Option<&[f32]>,
    buf: &'a mut [MaybeUninit<f32>],
) -> &'a [f32] {
    match y {
        None => dy,
        Some(y) => {
            for ((d, &g), &y) in buf.iter_mut().zip(dy).zip(y) {
                d.write(relu_grad(g, y));
            }
            // SAFETY: every element was written just above (the three have one length).
            unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), buf.len()) }
        }
    }
}

/// The plane `range` of the output gradient through the ReLU whose output is `y` (if any):
/// written into `dr` (the residual's gradient) when there is one and `write`, read back
/// from it when not `write`; else computed into `masked` (or `dy` itself without a ReLU).
///
/// # Safety
/// With `dr`: `range` lies in its buffer, no other live reference covers it, and it has been
/// written unless `write`.
unsafe fn relu_gradient<'a>(
    dy: &'a [f32],
    y: Option<&[f32]>,
    range: std::ops::Range<usize>,
    dr: Option<SharedMut>,
    write: bool,
    masked: &'a mut [MaybeUninit<f32>],
) -> &'a [f32] {
    let y = y.map(|y| &y[range.clone()]);
    let Some(dr) = dr else {
        return through_relu(&dy[range], y, masked);
    };
    // SAFETY: per the contract.
    let dst = unsafe { dr.slice(range.clone()) };
    if !write {
        // SAFETY: written by the first pass, per the contract.
        return unsafe { std::slice::from_raw_parts(dst.as_ptr().cast(), dst.len()) };
    }
    match y {
        Some(_) => through_relu(&dy[range], y, dst),
        None => {
            for (d, &g) in dst.iter_mut().zip(&dy[range]) {
                d.write(g);
            }
            // SAFETY: written just above.
            unsafe { std::slice::from_raw_parts(dst.as_ptr().cast(), dst.len()) }
        }
    }
}

/// Gradients of [`train_forward`]: `(dx, dgamma, dbeta, dresidual)`.
///
/// `y` is the forward's output when its tail ended in a ReLU (the gradient flows where it
/// is positive); `dresidual` (the output gradient through the ReLU) is returned when
/// `residual_grad`. Two passes per channel: the sums, then `dx`; the gradient through the
/// ReLU is written once, into `dresidual` when there is one (the second pass reads it back),
/// else into a plane-sized buffer per pass.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_backward(
    x: &[f32],
    dy: &[f32],
    y: Option<&[f32]>,
    p: Planes,
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    residual_grad: bool,
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
    let mut dx = uninit(x.len());
    let mut dr = uninit(if residual_grad { x.len() } else { 0 });
    let (out, out_r) = (SharedMut(dx.as_mut_ptr()), SharedMut(dr.as_mut_ptr()));
    let grads: Vec<(f32, f32)> = (0..p.channels)
        .into_par_iter()
        .map(|c| {
            let mu = mean[c];
            let inv_std = 1.0 / (var[c] as f64 + epsilon).sqrt();
            let (mut sum_dy, mut sum_dy_xmu) = (0.0f64, 0.0f64);
            // Scratch for the gradient through the ReLU, where there is a ReLU and no
            // residual's gradient to hold it.
            let mut masked = uninit(if residual_grad || y.is_none() {
                0
            } else {
                p.spatial
            });
            let dr = residual_grad.then_some(out_r);
            for n in 0..p.batch {
                // SAFETY: channel `c`'s planes are this task's; this pass writes them.
                let g = unsafe { relu_gradient(dy, y, p.plane(n, c), dr, true, &mut masked) };
                sum_dy += sum2(g, g, |g, _| g);
                sum_dy_xmu += sum2(g, &x[p.plane(n, c)], |g, v| g * (v - mu));
            }
            let m = p.count();
            // dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy · x̂)), x̂ = (x − μ)/σ
            let k = gamma[c] as f64 * inv_std;
            let a = k as f32;
            let b = (-k * sum_dy / m) as f32;
            let slope = (-k * inv_std * inv_std * sum_dy_xmu / m) as f32;
            for n in 0..p.batch {
                let range = p.plane(n, c);
                // SAFETY: as above; the first pass wrote them.
                let g = unsafe { relu_gradient(dy, y, range.clone(), dr, false, &mut masked) };
                // SAFETY: channel `c`'s planes are written by this task only.
                let dst = unsafe { out.slice(range.clone()) };
                for ((d, &g), &v) in dst.iter_mut().zip(g).zip(&x[range]) {
                    d.write(a * g + slope * (v - mu) + b);
                }
            }
            ((sum_dy_xmu * inv_std) as f32, sum_dy as f32)
        })
        .collect();
    let (dgamma, dbeta) = grads.into_iter().unzip();
    // SAFETY: every plane of every channel of both was written above.
    unsafe {
        (
            assume_init(dx),
            dgamma,
            dbeta,
            residual_grad.then(|| assume_init(dr)),
        )
    }
}

/// Sum of every channel over batch and space, `[C]`.
pub(crate) fn channel_sums(x: &[f32], p: Planes) -> Vec<f32> {
    (0..p.channels)
        .into_par_iter()
        .map(|c| {
            (0..p.batch)
                .map(|n| {
                    let plane = &x[p.plane(n, c)];
                    sum2(plane, plane, |v, _| v)
                })
                .sum::<f64>() as f32
        })
        .collect()
}

/// `y = x · scale[c] + shift[c]`.
pub(crate) fn affine_forward(x: &[f32], p: Planes, scale: &[f32], shift: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    y.par_chunks_mut(p.spatial)
        .zip(x.par_chunks(p.spatial))
        .enumerate()
        .for_each(|(i, (dst, src))| {
            let c = i % p.channels;
            let (a, b) = (scale[c], shift[c]);
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = v * a + b;
            }
        });
    y
}

/// Gradients of [`affine_forward`]: `(dx, dscale, dshift)`.
pub(crate) fn affine_backward(
    x: &[f32],
    dy: &[f32],
    p: Planes,
    scale: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut dx = vec![0.0f32; x.len()];
    dx.par_chunks_mut(p.spatial)
        .zip(dy.par_chunks(p.spatial))
        .enumerate()
        .for_each(|(i, (dst, g))| {
            let a = scale[i % p.channels];
            for (d, &g) in dst.iter_mut().zip(g) {
                *d = g * a;
            }
        });
    let sums: Vec<(f32, f32)> = (0..p.channels)
        .into_par_iter()
        .map(|c| {
            let (mut ds, mut db) = (0.0f64, 0.0f64);
            for n in 0..p.batch {
                let range = p.plane(n, c);
                ds += sum2(&dy[range.clone()], &x[range.clone()], |g, v| g * v);
                db += sum2(&dy[range.clone()], &dy[range], |g, _| g);
            }
            (ds as f32, db as f32)
        })
        .collect();
    let (dscale, dshift) = sums.into_iter().unzip();
    (dx, dscale, dshift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u64, offset: f32) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5 + offset
            })
            .collect()
    }

    #[test]
    fn train_forward_normalises_each_channel_even_with_a_large_mean() {
        let p = Planes {
            batch: 3,
            channels: 2,
            spatial: 37,
        };
        let x = values(3 * 2 * 37, 5, 1000.0);
        let tail = Tail::default();
        let (y, mean, var) = train_forward(&x, p, &[1.0, 2.0], &[0.0, 1.0], tail, 0.0);
        for c in 0..2 {
            let vals: Vec<f64> = (0..3)
                .flat_map(|n| x[p.plane(n, c)].iter().map(|&v| v as f64))
                .collect();
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let v = vals.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / vals.len() as f64;
            assert!((mean[c] as f64 - m).abs() < 1e-3, "mean {} vs {m}", mean[c]);
            assert!(
                (var[c] as f64 - v).abs() < 1e-3 * v,
                "var {} vs {v}",
                var[c]
            );
            let ys: Vec<f64> = (0..3)
                .flat_map(|n| y[p.plane(n, c)].iter().map(|&v| v as f64))
                .collect();
            let ym = ys.iter().sum::<f64>() / ys.len() as f64;
            assert!((ym - c as f64).abs() < 1e-3, "normalised mean {ym}");
        }
    }

    #[test]
    fn train_backward_matches_finite_differences() {
        let p = Planes {
            batch: 2,
            channels: 3,
            spatial: 5,
        };
        let x: Vec<f32> = values(30, 7, 0.3);
        let dy: Vec<f32> = values(30, 8, 0.0);
        let identity: Vec<f32> = values(30, 9, 0.0);
        let (gamma, beta) = (vec![0.7, -1.2, 1.5], vec![0.1, 0.2, -0.3]);
        // Every tail: none, + residual, ReLU, + residual then ReLU.
        for (add, relu) in [(false, false), (true, false), (false, true), (true, true)] {
            let tail = |r: &[f32]| -> Vec<f32> { if add { r.to_vec() } else { Vec::new() } };
            let loss = |x: &[f32], gamma: &[f32], beta: &[f32], r: &[f32]| -> f64 {
                let r = tail(r);
                let t = Tail {
                    residual: add.then_some(&r[..]),
                    relu,
                };
                let (y, _, _) = train_forward(x, p, gamma, beta, t, 1e-5);
                y.iter().zip(&dy).map(|(a, b)| *a as f64 * *b as f64).sum()
            };
            let r = tail(&identity);
            let t = Tail {
                residual: add.then_some(&r[..]),
                relu,
            };
            let (y, mean, var) = train_forward(&x, p, &gamma, &beta, t, 1e-5);
            let output = relu.then_some(&y[..]);
            let (dx, dgamma, dbeta, dr) =
                train_backward(&x, &dy, output, p, &gamma, &mean, &var, add, 1e-5);
            assert_eq!(dr.is_some(), add);
            let h = 1e-2f32;
            let what = format!("residual {add}, ReLU {relu}");
            let check = |numeric: f64, analytic: f32, name: String| {
                assert!(
                    (numeric - analytic as f64).abs() < 2e-2 * (1.0 + numeric.abs()),
                    "{what}: {name}: {numeric} vs {analytic}"
                );
            };
            let (xs, gs, bs) = (&x[..], &gamma[..], &beta[..]);
            for i in [0, 7, 13, 29] {
                let (mut a, mut b) = (x.clone(), x.clone());
                a[i] += h;
                b[i] -= h;
                let numeric =
                    (loss(&a, gs, bs, &identity) - loss(&b, gs, bs, &identity)) / (2.0 * h as f64);
                check(numeric, dx[i], format!("dx[{i}]"));
                if let Some(dr) = &dr {
                    let (mut a, mut b) = (identity.clone(), identity.clone());
                    a[i] += h;
                    b[i] -= h;
                    let numeric = (loss(xs, gs, bs, &a) - loss(xs, gs, bs, &b)) / (2.0 * h as f64);
                    check(numeric, dr[i], format!("dresidual[{i}]"));
                }
            }
            for c in 0..3 {
                let (mut a, mut b) = (gamma.clone(), gamma.clone());
                a[c] += h;
                b[c] -= h;
                let numeric =
                    (loss(xs, &a, bs, &identity) - loss(xs, &b, bs, &identity)) / (2.0 * h as f64);
                check(numeric, dgamma[c], format!("dgamma[{c}]"));
                let (mut a, mut b) = (beta.clone(), beta.clone());
                a[c] += h;
                b[c] -= h;
                let numeric =
                    (loss(xs, gs, &a, &identity) - loss(xs, gs, &b, &identity)) / (2.0 * h as f64);
                check(numeric, dbeta[c], format!("dbeta[{c}]"));
            }
        }
    }
}
