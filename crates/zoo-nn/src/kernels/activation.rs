//! Exact GELU on the host, f32, forward and backward, with a branch-free rational `erf` the
//! compiler vectorises (flex's fused GELU calls libm's scalar `erff` per element: 14 % of a
//! Swin block's forward in a profile).

use rayon::prelude::*;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// `erf(x)` for f32: the rational approximation of Eigen and XLA (`generic_fast_erf_float`),
/// `x · P(x²) / Q(x²)` on `x` clamped to `[−4, 4]` (beyond, `erf` is ±1 in f32); absolute error
/// below 2e-7 against the exact function.
#[inline(always)]
#[allow(clippy::excessive_precision)] // the published coefficients, as written there
fn erf(x: f32) -> f32 {
    const ALPHA: [f32; 7] = [
        -2.726_142_2e-10,
        2.770_681_4e-8,
        -2.101_024e-6,
        -5.692_506_4e-5,
        -7.349_906_3e-4,
        -2.954_600_2e-3,
        -1.609_603_3e-2,
    ];
    const BETA: [f32; 5] = [
        -1.456_607_2e-5,
        -2.133_740_6e-4,
        -1.682_827e-3,
        -7.373_329_4e-3,
        -1.426_474e-2,
    ];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = ALPHA[0];
    for a in &ALPHA[1..] {
        p = p * x2 + a;
    }
    let mut q = BETA[0];
    for b in &BETA[1..] {
        q = q * x2 + b;
    }
    x * p / q
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// `1 / √(2π)`.
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// Runs `body` compiled for AVX-512 or AVX2+FMA when the CPU has them (the crate is built for
/// baseline x86-64, where the loops vectorise 4 lanes wide only), else as built.
#[inline(always)]
fn multiversion(body: impl FnOnce()) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx2,fma")]
        fn avx512(body: impl FnOnce()) {
            body()
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2(body: impl FnOnce()) {
            body()
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the features.
            return unsafe { avx512(body) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { avx2(body) };
        }
    }
    body()
}

#[inline(always)]
fn gelu_chunk(y: &mut [f32], x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = x * 0.5 * (1.0 + erf(x * FRAC_1_SQRT_2));
    }
}

#[inline(always)]
fn gelu_backward_chunk(dx: &mut [f32], x: &[f32], dy: &[f32]) {
    for ((dx, &x), &g) in dx.iter_mut().zip(x).zip(dy) {
        let cdf = 0.5 * (1.0 + erf(x * FRAC_1_SQRT_2));
        let pdf = FRAC_1_SQRT_2PI * (-0.5 * x * x).exp();
        *dx = g * (cdf + x * pdf);
    }
}

/// `x · Φ(x)`, `Φ(x) = (1 + erf(x / √2)) / 2`.
pub(crate) fn gelu(x: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| multiversion(|| gelu_chunk(y, x)));
    y
}

/// `dy · (Φ(x) + x · φ(x))`, the exact derivative.
pub(crate) fn gelu_backward(x: &[f32], dy: &[f32]) -> Vec<f32> {
    let mut dx = vec![0.0f32; x.len()];
    dx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
        .for_each(|(dx, (x, dy))| multiversion(|| gelu_backward_chunk(dx, x, dy)));
    dx
}

#[cfg(test)]
mod tests {
    /// `erf` in f64: its Maclaurin series up to |x| = 3, then `1 − erfc` by the continued
    /// fraction `erfc(x) = e^{−x²}/√π · 1/(x + ½/(x + 1/(x + 3⁄2/(x + …))))`.
    fn erf64(x: f64) -> f64 {
        let a = x.abs();
        let value = if a <= 3.0 {
            let (mut term, mut sum, mut n) = (a, a, 0.0);
            while term.abs() > 1e-18 {
                n += 1.0;
                term *= -a * a / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let mut fraction = a;
            for k in (1..200).rev() {
                fraction = a + (k as f64 / 2.0) / fraction;
            }
            1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / fraction
        };
        value.copysign(x)
    }

    #[test]
    fn erf_matches_the_exact_function() {
        assert!((erf64(1.0) - 0.842_700_792_949_715).abs() < 1e-14);
        assert!((erf64(3.5) - 0.999_999_256_901_628).abs() < 1e-14);
        let mut worst = 0.0f64;
        for i in -60_000..=60_000 {
            let x = i as f64 / 10_000.0;
            let exact = erf64(x);
            worst = worst.max((super::erf(x as f32) as f64 - exact).abs());
        }
        assert!(worst < 5e-7, "max |erf error| {worst:e}");
    }
}
