//! Swin's (shifted) window attention on the host, f32, inference: for each window and head,
//! `softmax(q·kᵀ·scale + bias + mask)·v` in cache, reading q, k and v straight from the
//! q/k/v projection of the whole (unshifted, unpadded) map and writing each token's output
//! back to its place in the map. The cyclic shift, the bottom/right padding, the window
//! partition and its inverse are index arithmetic instead of five copies of the map, and the
//! softmax's `exp` is a polynomial the compiler vectorises (libm's is scalar).

use rayon::prelude::*;

/// Geometry of one call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Windows {
    /// `[batch, height, width]` of the map.
    pub map: [usize; 3],
    /// Attention heads.
    pub heads: usize,
    /// Width of each head.
    pub head_dim: usize,
    /// Window `[height, width]`.
    pub window: [usize; 2],
    /// Cyclic shift `[down, right]` (rolled by `−shift` before partitioning, as timm).
    pub shift: [usize; 2],
    /// Factor of `q`.
    pub scale: f32,
}

/// timm's `get_attn_mask` regions along one axis of the padded map: 0, 1, 2 for the slices
/// `[0, −window)`, `[−window, −shift)`, `[−shift, end)` (Python semantics). Tokens of one
/// window in different regions (along either axis) do not attend to each other.
pub(crate) fn region_labels(len: usize, window: usize, shift: usize) -> Vec<u8> {
    let resolve = |i: isize| {
        if i < 0 {
            (len as isize + i).max(0) as usize
        } else {
            (i as usize).min(len)
        }
    };
    let (w, s) = (window as isize, shift as isize);
    let mut label = vec![0u8; len];
    for (i, (start, end)) in [(0, Some(-w)), (-w, Some(-s)), (-s, None)]
        .into_iter()
        .enumerate()
    {
        let start = resolve(start);
        let end = end.map_or(len, resolve).max(start);
        label[start..end].fill(i as u8);
    }
    label
}

/// The additive mask value between tokens of different regions (timm's).
const MASKED: f32 = -100.0;

/// `e^x` for f32, vectorisable: `2^k · p(r)` with `k = round(x·log2 e)`,
/// `r = x − k·ln 2` (two-part `ln 2`) and a degree-6 Taylor polynomial on `|r| ≤ ln2/2`
/// (relative error about 2e-7); `x` clamped to `[−87, 88]` (below, the result is at most
/// 1.6e-38 instead of smaller, which a softmax cannot tell from 0).
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5 · 2²³: adding it rounds to an integer, kept in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + MAGIC;
    let k = t - MAGIC;
    let r = x - k * LN2_HI - k * LN2_LO;
    let mut p: f32 = 1.0 / 720.0;
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = p.mul_add(r, c);
    }
    let two_k = f32::from_bits(
        (t.to_bits().wrapping_sub(MAGIC.to_bits()))
            .wrapping_add(127)
            .wrapping_shl(23),
    );
    p * two_k
}

/// Scratch of one task, reused across the windows a thread handles. Column counts are
/// padded to multiples of [`LANES`] (`np` for tokens, `hdp` for head channels), the padding
/// zero.
struct Scratch {
    /// `[n, hd]`, scaled.
    q: Vec<f32>,
    /// `[hd, np]`: k transposed.
    kt: Vec<f32>,
    /// `[n, hdp]`.
    v: Vec<f32>,
    /// `[n, np]` logits, then probabilities.
    s: Vec<f32>,
    /// `[n, hdp]`.
    o: Vec<f32>,
    /// Map row of each token (`None`: padding).
    src: Vec<Option<usize>>,
    /// Region label of each token (`rows · 3 + cols`).
    label: Vec<u8>,
}

/// Vector width the micro-kernel's columns come in (one AVX-512 register).
const LANES: usize = 16;

/// Sixteen f32 lanes: one AVX-512 register, two AVX2 ones, or an array.
trait Lanes: Copy {
    /// # Safety
    /// The CPU has the implementation's features (as every method).
    unsafe fn zero() -> Self;
    /// # Safety
    /// As [`Lanes::zero`].
    unsafe fn splat(x: f32) -> Self;
    /// # Safety
    /// `p` addresses 16 readable f32.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// `p` addresses 16 writable f32.
    unsafe fn store(self, p: *mut f32);
    /// `self + a · b`.
    ///
    /// # Safety
    /// As [`Lanes::zero`].
    unsafe fn fma(self, a: Self, b: Self) -> Self;
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Lanes;
    use std::arch::x86_64::*;

    #[derive(Clone, Copy)]
    pub(super) struct Avx512(__m512);

    impl Lanes for Avx512 {
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn zero() -> Self {
            Self(_mm512_setzero_ps())
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn splat(x: f32) -> Self {
            Self(_mm512_set1_ps(x))
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: per the contract.
            Self(unsafe { _mm512_loadu_ps(p) })
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: per the contract.
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn fma(self, a: Self, b: Self) -> Self {
            Self(_mm512_fmadd_ps(a.0, b.0, self.0))
        }
    }

    #[derive(Clone, Copy)]
    pub(super) struct Avx2(__m256, __m256);

    impl Lanes for Avx2 {
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn zero() -> Self {
            Self(_mm256_setzero_ps(), _mm256_setzero_ps())
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn splat(x: f32) -> Self {
            Self(_mm256_set1_ps(x), _mm256_set1_ps(x))
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: per the contract.
            unsafe { Self(_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) }
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: per the contract.
            unsafe {
                _mm256_storeu_ps(p, self.0);
                _mm256_storeu_ps(p.add(8), self.1);
            }
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn fma(self, a: Self, b: Self) -> Self {
            Self(
                _mm256_fmadd_ps(a.0, b.0, self.0),
                _mm256_fmadd_ps(a.1, b.1, self.1),
            )
        }
    }
}

/// Portable lanes for CPUs without AVX2.
#[derive(Clone, Copy)]
struct Portable([f32; LANES]);

impl Lanes for Portable {
    unsafe fn zero() -> Self {
        Self([0.0; LANES])
    }
    unsafe fn splat(x: f32) -> Self {
        Self([x; LANES])
    }
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: per the contract.
        Self(unsafe { std::ptr::read_unaligned(p as *const [f32; LANES]) })
    }
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: per the contract.
        unsafe { std::ptr::write_unaligned(p as *mut [f32; LANES], self.0) }
    }
    unsafe fn fma(self, a: Self, b: Self) -> Self {
        let mut out = self.0;
        for ((o, a), b) in out.iter_mut().zip(a.0).zip(b.0) {
            *o += a * b;
        }
        Self(out)
    }
}

/// A row-major matrix view for the micro-kernel.
#[derive(Clone, Copy)]
struct View<P> {
    ptr: P,
    ld: usize,
}

/// `c[i0.., j0..] = a[i0.., :k] · b[:k, j0..]` for `R` rows and `C·LANES` columns, the
/// `R·C` accumulators in registers.
///
/// # Safety
/// The views hold the rows and columns addressed; `V`'s features are present.
#[inline(always)]
unsafe fn block<V: Lanes, const R: usize, const C: usize>(
    a: View<*const f32>,
    b: View<*const f32>,
    c: View<*mut f32>,
    k: usize,
    (i0, j0): (usize, usize),
) {
    // SAFETY: per the contract.
    unsafe {
        let mut acc = [[V::zero(); C]; R];
        for p in 0..k {
            let row = b.ptr.add(p * b.ld + j0);
            let mut bv = [V::zero(); C];
            for (cc, bv) in bv.iter_mut().enumerate() {
                *bv = V::load(row.add(cc * LANES));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = V::splat(*a.ptr.add((i0 + r) * a.ld + p));
                for (acc, &bv) in acc.iter_mut().zip(&bv) {
                    *acc = acc.fma(x, bv);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (cc, acc) in acc.iter().enumerate() {
                acc.store(c.ptr.add((i0 + r) * c.ld + j0 + cc * LANES));
            }
        }
    }
}

/// `c[m, cols] = a[m, :k] · b[:k, cols]`, `cols` a multiple of [`LANES`].
///
/// # Safety
/// As [`block`], for all `m` rows and `cols` columns.
#[inline(always)]
unsafe fn product<V: Lanes>(
    m: usize,
    cols: usize,
    k: usize,
    a: View<*const f32>,
    b: View<*const f32>,
    c: View<*mut f32>,
) {
    let chunks = cols / LANES;
    let rows4 = m / 4 * 4;
    let mut j = 0;
    // SAFETY: per the contract.
    unsafe {
        while j + 2 <= chunks {
            let j0 = j * LANES;
            for i0 in (0..rows4).step_by(4) {
                block::<V, 4, 2>(a, b, c, k, (i0, j0));
            }
            for i0 in rows4..m {
                block::<V, 1, 2>(a, b, c, k, (i0, j0));
            }
            j += 2;
        }
        if j < chunks {
            let j0 = j * LANES;
            for i0 in (0..rows4).step_by(4) {
                block::<V, 4, 1>(a, b, c, k, (i0, j0));
            }
            for i0 in rows4..m {
                block::<V, 1, 1>(a, b, c, k, (i0, j0));
            }
        }
    }
}

/// Softmax attention for one window and head, all in `scratch`; `bias` is the head's
/// `[n, n]` relative position bias. Generic code the callers compile for the CPU's vector
/// extension.
///
/// # Safety
/// `V`'s features are present; the scratch is sized for `n`, `np`, `hd`.
#[inline(always)]
unsafe fn attend<V: Lanes>(
    scratch: &mut Scratch,
    n: usize,
    np: usize,
    hd: usize,
    bias: &[f32],
    masked: bool,
) {
    let hdp = hd.div_ceil(LANES) * LANES;
    let Scratch {
        q,
        kt,
        v,
        s,
        o,
        label,
        ..
    } = scratch;
    assert!(q.len() >= n * hd && kt.len() >= hd * np && s.len() >= n * np);
    assert!(v.len() >= n * hdp && o.len() >= n * hdp);
    let view = |x: &[f32], ld| View {
        ptr: x.as_ptr(),
        ld,
    };
    // SAFETY: the buffers hold the views (checked above); V's features per the contract.
    unsafe {
        product::<V>(
            n,
            np,
            hd,
            view(q, hd),
            view(kt, np),
            View {
                ptr: s.as_mut_ptr(),
                ld: np,
            },
        )
    };
    for i in 0..n {
        let row = &mut s[i * np..(i + 1) * np];
        for (s, &b) in row.iter_mut().zip(&bias[i * n..(i + 1) * n]) {
            *s += b;
        }
        if masked {
            let li = label[i];
            for (s, &lj) in row.iter_mut().zip(label.iter()) {
                *s += if lj != li { MASKED } else { 0.0 };
            }
        }
        // Padding columns: far below any logit, so that they weigh nothing.
        row[n..].fill(-1e30);
        let mut lanes = [f32::NEG_INFINITY; LANES];
        for chunk in row.chunks_exact(LANES) {
            for (m, &x) in lanes.iter_mut().zip(chunk) {
                *m = if x > *m { x } else { *m };
            }
        }
        let max = lanes.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let mut sums = [0.0f32; LANES];
        for chunk in row.chunks_exact_mut(LANES) {
            for (sum, s) in sums.iter_mut().zip(chunk) {
                // Weights below e⁻⁶⁴ (masked pairs, padding) are 0: their products with v
                // would be subnormal, which costs a micro-code assist per FMA.
                let d = *s - max;
                *s = if d < -64.0 { 0.0 } else { exp(d) };
                *sum += *s;
            }
        }
        let inv = 1.0 / sums.iter().sum::<f32>();
        for s in row[..n].iter_mut() {
            *s *= inv;
        }
    }
    // SAFETY: as above.
    unsafe {
        product::<V>(
            n,
            hdp,
            n,
            view(s, np),
            view(v, hdp),
            View {
                ptr: o.as_mut_ptr(),
                ld: hdp,
            },
        )
    };
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn attend_avx512(s: &mut Scratch, n: usize, np: usize, hd: usize, b: &[f32], m: bool) {
    // SAFETY: the features are enabled here.
    unsafe { attend::<x86::Avx512>(s, n, np, hd, b, m) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attend_avx2(s: &mut Scratch, n: usize, np: usize, hd: usize, b: &[f32], m: bool) {
    // SAFETY: as above.
    unsafe { attend::<x86::Avx2>(s, n, np, hd, b, m) }
}

/// The widest vector instructions the micro-kernel may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Isa {
    Portable,
    Avx2,
    Avx512,
}

/// What this CPU has.
fn detected() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

/// Tests lower the level to run every path on one machine (0: none; else `Isa as u8 + 1`).
#[cfg(test)]
static CAP: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// The level the kernel runs at: [`detected`], capped in tests.
fn isa() -> Isa {
    #[cfg(test)]
    {
        let cap = match CAP.load(std::sync::atomic::Ordering::Relaxed) {
            1 => Some(Isa::Portable),
            2 => Some(Isa::Avx2),
            _ => None,
        };
        if let Some(cap) = cap {
            return detected().min(cap);
        }
    }
    detected()
}

fn attend_dispatch(s: &mut Scratch, n: usize, np: usize, hd: usize, b: &[f32], m: bool) {
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has the features the function is compiled for (`detected`).
        Isa::Avx512 => unsafe { attend_avx512(s, n, np, hd, b, m) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { attend_avx2(s, n, np, hd, b, m) },
        // SAFETY: portable lanes need no feature.
        _ => unsafe { attend::<Portable>(s, n, np, hd, b, m) },
    }
}

/// The attention of every window and head.
///
/// - `qkv`: `[batch, h, w, 3 · heads · head_dim]` (q, k, v, each head-major)
/// - `qkv_bias`: `[3 · heads · head_dim]`, the projection of a zero (padding) token
/// - `rel_bias`: `[heads, n, n]`, `n = wh · ww`
/// - returns `[batch, h, w, heads · head_dim]`
pub(crate) fn forward(qkv: &[f32], qkv_bias: &[f32], rel_bias: &[f32], g: Windows) -> Vec<f32> {
    let [b, h, w] = g.map;
    let [wh, ww] = g.window;
    let [sh, sw] = g.shift;
    let (heads, hd) = (g.heads, g.head_dim);
    let a = heads * hd;
    let (hp, wp) = (h.div_ceil(wh) * wh, w.div_ceil(ww) * ww);
    let (nwy, nwx) = (hp / wh, wp / ww);
    let n = wh * ww;
    let np = n.div_ceil(LANES) * LANES;
    let hdp = hd.div_ceil(LANES) * LANES;
    let masked = sh != 0 || sw != 0;
    let (rows, cols) = (region_labels(hp, wh, sh), region_labels(wp, ww, sw));
    let mut out = vec![0.0f32; b * h * w * a];
    let out_ptr = SendPtr(out.as_mut_ptr());
    let tasks = b * nwy * nwx * heads;
    (0..tasks).into_par_iter().for_each_init(
        || Scratch {
            q: vec![0.0; n * hd],
            kt: vec![0.0; hd * np],
            v: vec![0.0; n * hdp],
            s: vec![0.0; n * np],
            o: vec![0.0; n * hdp],
            src: vec![None; n],
            label: vec![0; n],
        },
        |scratch, task| {
            let head = task % heads;
            let window = task / heads;
            let (bi, wy, wx) = (window / (nwy * nwx), window / nwx % nwy, window % nwx);
            for t in 0..n {
                let (py, px) = (wy * wh + t / ww, wx * ww + t % ww);
                scratch.label[t] = rows[py] * 3 + cols[px];
                scratch.src[t] =
                    (py < h && px < w).then(|| (bi * h + (py + sh) % h) * w + (px + sw) % w);
            }
            for t in 0..n {
                let token = match scratch.src[t] {
                    Some(r) => &qkv[r * 3 * a..(r + 1) * 3 * a],
                    None => qkv_bias,
                };
                let (qt, kt, vt) = (
                    &token[head * hd..(head + 1) * hd],
                    &token[a + head * hd..a + (head + 1) * hd],
                    &token[2 * a + head * hd..2 * a + (head + 1) * hd],
                );
                for (q, &x) in scratch.q[t * hd..(t + 1) * hd].iter_mut().zip(qt) {
                    *q = x * g.scale;
                }
                for (k, &x) in scratch.kt[t..].iter_mut().step_by(np).zip(kt) {
                    *k = x;
                }
                scratch.v[t * hdp..t * hdp + hd].copy_from_slice(vt);
            }
            attend_dispatch(
                scratch,
                n,
                np,
                hd,
                &rel_bias[head * n * n..(head + 1) * n * n],
                masked,
            );
            for t in 0..n {
                if let Some(r) = scratch.src[t] {
                    // SAFETY: every (token, head) pair of the map is written by exactly one
                    // task (each map token is in one window), inside `out`.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            scratch.o[t * hdp..].as_ptr(),
                            out_ptr.at(r * a + head * hd),
                            hd,
                        );
                    }
                }
            }
        },
    );
    out
}

/// A raw output pointer shared by tasks that write disjoint elements.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
impl SendPtr {
    /// The pointer `offset` elements on (a method, so that closures capture the whole
    /// `SendPtr`, not its raw field).
    ///
    /// # Safety
    /// As [`pointer::add`].
    unsafe fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: per the contract.
        unsafe { self.0.add(offset) }
    }
}

// SAFETY: see the write in `forward`.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

#[cfg(test)]
mod tests {
    #[test]
    fn exp_matches_libm() {
        let mut worst = 0.0f32;
        for i in -87_000..=88_000 {
            let x = i as f32 / 1000.0;
            let rel = (super::exp(x) - x.exp()).abs() / x.exp();
            worst = worst.max(rel);
        }
        assert!(worst < 1e-6, "max relative error {worst:e}");
        assert!(super::exp(-1000.0) < 1e-37);
    }

    /// Every instruction-set path this CPU can run (AVX-512, AVX2 + FMA, portable) gives the
    /// same attention, shifted and padded windows included, so a CPU without AVX-512 (AMD
    /// EPYC) or without AVX2 runs a path that is tested here too.
    #[test]
    fn every_instruction_set_path_gives_the_same_attention() {
        use std::sync::atomic::Ordering;
        let g = super::Windows {
            map: [2, 9, 11],
            heads: 3,
            head_dim: 5,
            window: [4, 4],
            shift: [2, 2],
            scale: 0.3,
        };
        let [b, h, w] = g.map;
        let c = g.heads * g.head_dim;
        let n = g.window[0] * g.window[1];
        let mut state = 7u64;
        let mut rand = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        };
        let qkv = rand(b * h * w * 3 * c);
        let qkv_bias = rand(3 * c);
        let rel_bias = rand(g.heads * n * n);
        let run = |cap: u8| {
            super::CAP.store(cap, Ordering::Relaxed);
            let out = super::forward(&qkv, &qkv_bias, &rel_bias, g);
            super::CAP.store(0, Ordering::Relaxed);
            out
        };
        let portable = run(1);
        assert_eq!(portable.len(), b * h * w * c);
        for (cap, name) in [(2, "AVX2"), (0, "detected")] {
            let out = run(cap);
            let worst = out
                .iter()
                .zip(&portable)
                .map(|(a, p)| (a - p).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "{name} vs portable: max difference {worst}");
        }
    }

    #[test]
    fn region_labels_follow_python_slices() {
        // len 14, window 7, shift 3: [0, 7) → 0, [7, 11) → 1, [11, 14) → 2.
        let l = super::region_labels(14, 7, 3);
        assert_eq!(l, [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2]);
        // No shift: one region ([-0:] selects everything last, as Python's `[-0:]`).
        assert!(super::region_labels(14, 7, 0).iter().all(|&x| x == 2));
    }
}
