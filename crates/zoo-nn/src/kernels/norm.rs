//! Per-channel normalisation on the host, NC… f32 (`[N, C, S]` with `S` the spatial size):
//! training-mode BatchNorm forward and backward in two passes each (Burn's generic
//! `batch_norm_train` composes ~10 tensor operations, several with full copies), and the
//! per-channel affine map `y = x · scale + shift` that inference-mode BatchNorm reduces to.
//!
//! Channels are spread over rayon's pool; each channel's `N` planes are visited in order, so
//! results do not depend on the thread count.

use rayon::prelude::*;

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

/// A raw pointer shared by tasks that write disjoint channels.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: every task writes only the planes of its own channel.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The plane `range` of the buffer.
    ///
    /// # Safety
    /// `range` lies in the buffer, and no other live reference covers it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice(&self, range: std::ops::Range<usize>) -> &mut [f32] {
        // SAFETY: per the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(range.start), range.len()) }
    }
}

/// Batch statistics of every channel: `(mean, biased variance)`, in f64.
///
/// The sums are taken around the channel's first value (variance is shift-invariant), which
/// keeps `E[x²] − E[x]²` from cancelling when the mean is large against the spread.
fn channel_stats(x: &[f32], p: Planes, c: usize) -> (f64, f64) {
    let shift = x[p.plane(0, c).start];
    let (mut s, mut q) = (0.0f64, 0.0f64);
    for n in 0..p.batch {
        let plane = &x[p.plane(n, c)];
        s += sum2(plane, plane, |a, _| a - shift);
        q += sum2(plane, plane, |a, _| (a - shift) * (a - shift));
    }
    let mean_shifted = s / p.count();
    let var = (q / p.count() - mean_shifted * mean_shifted).max(0.0);
    (mean_shifted + shift as f64, var)
}

/// Training-mode BatchNorm: normalises with the batch's statistics.
///
/// Returns `(y, mean, biased variance)`, `y` shaped as `x`, the statistics `[C]`.
pub(crate) fn train_forward(
    x: &[f32],
    p: Planes,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut y = vec![0.0f32; x.len()];
    let out = SharedMut(y.as_mut_ptr());
    let stats: Vec<(f32, f32)> = (0..p.channels)
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
                for (d, &v) in dst.iter_mut().zip(&x[range]) {
                    *d = v * scale + shift;
                }
            }
            (mean as f32, var as f32)
        })
        .collect();
    let (mean, var) = stats.into_iter().unzip();
    (y, mean, var)
}

/// Gradients of [`train_forward`]: `(dx, dgamma, dbeta)`.
pub(crate) fn train_backward(
    x: &[f32],
    dy: &[f32],
    p: Planes,
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut dx = vec![0.0f32; x.len()];
    let out = SharedMut(dx.as_mut_ptr());
    let grads: Vec<(f32, f32)> = (0..p.channels)
        .into_par_iter()
        .map(|c| {
            let mu = mean[c];
            let inv_std = 1.0 / (var[c] as f64 + epsilon).sqrt();
            let (mut sum_dy, mut sum_dy_xmu) = (0.0f64, 0.0f64);
            for n in 0..p.batch {
                let range = p.plane(n, c);
                sum_dy += sum2(&dy[range.clone()], &dy[range.clone()], |g, _| g);
                sum_dy_xmu += sum2(&dy[range.clone()], &x[range], |g, v| g * (v - mu));
            }
            let m = p.count();
            // dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy · x̂)), x̂ = (x − μ)/σ
            let k = gamma[c] as f64 * inv_std;
            let a = k as f32;
            let b = (-k * sum_dy / m) as f32;
            let slope = (-k * inv_std * inv_std * sum_dy_xmu / m) as f32;
            for n in 0..p.batch {
                let range = p.plane(n, c);
                // SAFETY: channel `c`'s planes are written by this task only.
                let dst = unsafe { out.slice(range.clone()) };
                for ((d, &g), &v) in dst.iter_mut().zip(&dy[range.clone()]).zip(&x[range]) {
                    *d = a * g + slope * (v - mu) + b;
                }
            }
            ((sum_dy_xmu * inv_std) as f32, sum_dy as f32)
        })
        .collect();
    let (dgamma, dbeta) = grads.into_iter().unzip();
    (dx, dgamma, dbeta)
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
        let (y, mean, var) = train_forward(&x, p, &[1.0, 2.0], &[0.0, 1.0], 0.0);
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
        let (gamma, beta) = (vec![0.7, -1.2, 1.5], vec![0.1, 0.2, -0.3]);
        let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| -> f64 {
            let (y, _, _) = train_forward(x, p, gamma, beta, 1e-5);
            y.iter().zip(&dy).map(|(a, b)| *a as f64 * *b as f64).sum()
        };
        let (_, mean, var) = train_forward(&x, p, &gamma, &beta, 1e-5);
        let (dx, dgamma, dbeta) = train_backward(&x, &dy, p, &gamma, &mean, &var, 1e-5);
        let h = 1e-2f32;
        for i in [0, 7, 13, 29] {
            let (mut a, mut b) = (x.clone(), x.clone());
            a[i] += h;
            b[i] -= h;
            let numeric = (loss(&a, &gamma, &beta) - loss(&b, &gamma, &beta)) / (2.0 * h as f64);
            assert!(
                (numeric - dx[i] as f64).abs() < 2e-2 * (1.0 + numeric.abs()),
                "dx[{i}]: {numeric} vs {}",
                dx[i]
            );
        }
        for c in 0..3 {
            let (mut a, mut b) = (gamma.clone(), gamma.clone());
            a[c] += h;
            b[c] -= h;
            let numeric = (loss(&x, &a, &beta) - loss(&x, &b, &beta)) / (2.0 * h as f64);
            assert!((numeric - dgamma[c] as f64).abs() < 1e-2 * (1.0 + numeric.abs()));
            let (mut a, mut b) = (beta.clone(), beta.clone());
            a[c] += h;
            b[c] -= h;
            let numeric = (loss(&x, &gamma, &a) - loss(&x, &gamma, &b)) / (2.0 * h as f64);
            assert!((numeric - dbeta[c] as f64).abs() < 1e-2 * (1.0 + numeric.abs()));
        }
    }
}
