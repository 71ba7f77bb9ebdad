//! Direct stride-1 convolution on AVX-512, with the output channels along the vector lanes.
//!
//! The im2col path unfolds each tile (`K = C_in·KH·KW` rows) and hands it to the `gemm`
//! crate, which packs it again and streams the whole weight for every tile. Here nothing is
//! unfolded: the input is copied once with its padding, the weight is packed once per call
//! as `[group][channel block of 16·V][C_in/groups][tap][16·V]`, and a register tile of up to
//! 28 accumulators (`rows × width` output pixels × `V` vectors of 16 output channels)
//! accumulates
//!
//! ```text
//! acc[p][co] += w[co, ci, ki, kj] · x_padded[ci, oh + ki·dh, ow + p + kj·dw]
//! ```
//!
//! one input scalar broadcast against `V` weight vectors per step (the input of a stride-1
//! tap is a shifted read of the padded plane, so every tap of every channel is a plain
//! offset). The reduction runs over input channels in L1-sized blocks: the block's weights
//! (`channels × taps × 16·V` floats) stay in L1 while every pixel tile of the job's rows adds
//! its partial sums into an accumulator buffer (`pixels × 16·V`, in L1/L2); the buffer is
//! written out NCHW, with the bias and the epilogue, once per job.
//!
//! The input gradient is [`forward`] on the transposed geometry ([`Kernel::Flipped`]). The
//! weight gradient ([`weight_grad`]) turns the roles around: `dy` pixel-major per block of
//! output channels, and a tile of `taps × 16·V` sums of one input channel.
//!
//! This is the structure of oneDNN's direct convolutions (blocked output channels, weights
//! packed once, no unfolding). Runtime dispatch: only on CPUs with AVX-512F; elsewhere (and
//! for strided, pointwise, narrow or small layers, see [`applies`]) the caller keeps
//! im2col + GEMM.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

use super::{Epilogue, Geometry, SharedMut};
use crate::kernels::{assume_init, uninit, written};

/// Floats of one channel block's packed weights (`channels × taps × 16·V`): 16 KB, a third
/// of a 48 KB L1, next to the input rows and the accumulators the block works on.
const BLOCK_WEIGHT_FLOATS: usize = 4096;
/// Output pixels per job (its accumulator buffer is this × 16·V floats: 32 KB at V = 2).
const JOB_PIXELS: usize = 256;

/// Fewest output pixels (all images) for the direct path: it packs the weight, which the
/// GEMM path reads in place, and on few pixels the packing is not repaid (the U-Net's
/// 4×512×4×4 layer: 1.7 → 10 ms; its 4×768×8×8 → 256 layer, 256 pixels: 5.4 → 10 ms in
/// short runs; ResNet-50's 8×512×7×7, 392 pixels, gains).
const MIN_PIXELS: usize = 384;

/// Most output rows in one register tile.
const MAX_TILE_ROWS: usize = 4;

/// A vector of zeros (any bit pattern is a valid `__m512`).
// SAFETY: the all-zero bit pattern is 16 zero floats.
const ZERO: __m512 = unsafe { std::mem::transmute([0.0f32; 16]) };

/// Whether this CPU runs the direct kernels.
fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Whether `g` takes the direct path: stride 1, a spatial kernel (1×1 layers are a GEMM over
/// the image as stored: ResNet-50's took 1.1–4.6× longer direct in all three passes), output
/// channels per group in whole vectors, and enough input channels per group for the
/// reduction to dominate.
pub(super) fn applies(g: &Geometry) -> bool {
    available()
        && g.stride == [1, 1]
        && g.kh * g.kw > 1
        && g.opg().is_multiple_of(16)
        && g.cpg() >= 16
        && g.n * g.out_plane() >= MIN_PIXELS
        && {
            // Atrous layers whose padding dwarfs the map (DeepLab's ASPP rates on a 32×32
            // map: a plane 3–10× the input's, taps that read only zeros) keep the GEMM path,
            // which leaves those taps out.
            let (hp, wpad) = padded_size(g);
            hp * wpad <= 2 * g.h * g.w
        }
}

/// Vectors of 16 output channels per register tile, and the most pixels per tile: up to 28
/// accumulators, so that they, the `V` weight vectors and the broadcast input fit the 32
/// vector registers.
fn tile_shape(opg: usize) -> (usize, usize) {
    if opg.is_multiple_of(32) {
        (2, 14)
    } else {
        (1, 28)
    }
}

/// The kernel of a convolution, as [`forward`] reads it.
#[derive(Clone, Copy)]
pub(super) enum Kernel<'a> {
    /// `[C_out, C_in/groups, KH, KW]`, as stored.
    Oihw(&'a [f32]),
    /// The kernel of the stride-1 convolution whose input gradient this forward is, used
    /// flipped and with its channel axes swapped (per group): `[C_in, C_out/groups, KH, KW]`
    /// of this geometry's input channels `C_in`.
    Flipped(&'a [f32]),
}

/// Convolution forward of a stride-1 layer that [`applies`]: `[N, C_out, OH, OW]` from
/// `x` `[N, C_in, H, W]`, the kernel, `bias` `[C_out]`, then the epilogue if any.
pub(super) fn forward(
    g: &Geometry,
    x: &[f32],
    kernel: Kernel,
    bias: Option<&[f32]>,
    epilogue: Option<&Epilogue>,
) -> Vec<f32> {
    debug_assert!(applies(g));
    let (v, p_max) = tile_shape(g.opg());
    let vb = 16 * v;
    let taps: Vec<usize> = padded_taps(g);
    let xp = padded(g, x);
    let wp = pack_weight(g, kernel, vb);
    let (hp, wpad) = padded_size(g);
    let plane = hp * wpad;
    let blocks = g.opg() / vb;
    let cb = (BLOCK_WEIGHT_FLOATS / (taps.len() * vb)).clamp(1, g.cpg());
    let (tile_rows, widths) = tile_layout(g.ow, p_max);
    // Units of work: near-equal chunks of an image's rows, about JOB_PIXELS pixels (a
    // multiple of the tile's rows); small images whole, several to a job (the block's
    // weights, loaded into L1 once per channel block, then serve every image of the job).
    let chunks = g.oh.div_ceil((JOB_PIXELS / g.ow).clamp(1, g.oh));
    let rows = g.oh.div_ceil(chunks).next_multiple_of(tile_rows);
    let units: Vec<(usize, Range<usize>)> = (0..g.n)
        .flat_map(|n| {
            (0..g.oh)
                .step_by(rows)
                .map(move |r| (n, r..(r + rows).min(g.oh)))
        })
        .collect();
    let per_job = (JOB_PIXELS / (rows * g.ow)).clamp(1, units.len());
    let job_units: Vec<&[(usize, Range<usize>)]> = units.chunks(per_job).collect();
    // Jobs image-major when the whole packed weight fits a core's L2 (each image's rows are
    // then read once from memory), else channel-block-major (each block's weights once).
    let weight_bytes = wp.len() * 64;
    let mut jobs = Vec::with_capacity(g.groups * blocks * job_units.len());
    for grp in 0..g.groups {
        if weight_bytes <= 1 << 20 {
            for units in &job_units {
                jobs.extend((0..blocks).map(|b| (grp, b, *units)));
            }
        } else {
            for b in 0..blocks {
                jobs.extend(job_units.iter().map(|units| (grp, b, *units)));
            }
        }
    }
    let len = g.n * g.c_out * g.out_plane();
    // Not zeroed: the jobs write every output value (ResNet-50's activations are tens of MB).
    let mut out = uninit::<f32>(len);
    let dst = SharedMut(out.as_mut_ptr().cast());
    let (cpg, opg, ntaps) = (g.cpg(), g.opg(), taps.len());
    jobs.par_iter()
        .for_each_init(Vec::new, |acc, &(grp, b, units)| {
            let pixels: usize = units.iter().map(|(_, rc)| rc.len() * g.ow).sum();
            acc.clear();
            acc.resize(pixels * v, ZERO);
            let weights = &wp[(grp * blocks + b) * cpg * ntaps * v..][..cpg * ntaps * v];
            for c0 in (0..cpg).step_by(cb) {
                let channels = cb.min(cpg - c0);
                let w = &weights[c0 * ntaps * v..][..channels * ntaps * v];
                let mut unit_at = 0;
                for (n, rc) in units {
                    let image = &xp[(n * g.c_in + grp * cpg) * plane..][..cpg * plane];
                    for r in (0..rc.len()).step_by(tile_rows) {
                        let nrows = tile_rows.min(rc.len() - r);
                        let mut col = 0;
                        for &width in &widths {
                            let at = unit_at + (r * g.ow + col) * v;
                            let x0 = c0 * plane + (rc.start + r) * wpad + col;
                            let shape = Tile {
                                v,
                                rows: nrows,
                                width,
                                acc_row: g.ow * v,
                                x_row: wpad,
                                plane,
                                channels,
                            };
                            // SAFETY: AVX-512F is available (`applies`); `image` holds `channels`
                            // planes from `x0`, and every tap of the tile's pixels lies inside
                            // its plane (`padded_size`); `acc` and `w` hold what the tile reads.
                            unsafe { shape.run(&mut acc[at..], c0 == 0, &image[x0..], &taps, w) };
                            col += width;
                        }
                    }
                    unit_at += rc.len() * g.ow * v;
                }
            }
            // SAFETY: an `__m512` is 16 floats.
            let acc =
                unsafe { std::slice::from_raw_parts(acc.as_ptr().cast::<f32>(), acc.len() * 16) };
            let mut unit_at = 0;
            for (n, rc) in units {
                let len = rc.len() * g.ow * vb;
                // SAFETY: this job alone writes these channels of these rows of image `n`.
                unsafe {
                    store(
                        g,
                        &acc[unit_at..unit_at + len],
                        *n,
                        grp * opg + b * vb,
                        vb,
                        rc,
                        bias,
                        epilogue,
                        dst,
                    )
                };
                unit_at += len;
            }
        });
    // SAFETY: the jobs cover every (image, row chunk, output channel): every value written.
    unsafe { assume_init(out) }
}

/// Rows per register tile (1 to [`MAX_TILE_ROWS`]) and the widths of the tiles across a
/// row of `ow` pixels: the layout with the most pixels per tile (at most `p_max`), so that
/// narrow maps still fill the accumulators (7×7: 2 rows of 7; 8×8: 3 rows of 4).
fn tile_layout(ow: usize, p_max: usize) -> (usize, Vec<usize>) {
    (1..=MAX_TILE_ROWS.min(p_max))
        .map(|rows| (rows, row_tiles(ow, p_max / rows).collect::<Vec<_>>()))
        .max_by_key(|(rows, widths)| (ow * rows * 64 / widths.len(), std::cmp::Reverse(*rows)))
        .expect("at least one layout")
}

/// Widths of near-equal pixel tiles of at most `p_max` covering a row of `ow`.
fn row_tiles(ow: usize, p_max: usize) -> impl Iterator<Item = usize> {
    let parts = ow.div_ceil(p_max);
    let (base, extra) = (ow / parts, ow % parts);
    (0..parts).map(move |i| base + usize::from(i < extra))
}

/// Rows and columns of the padded input: every tap of every output pixel lies inside.
fn padded_size(g: &Geometry) -> (usize, usize) {
    (
        g.oh + (g.kh - 1) * g.dilation[0],
        g.ow + (g.kw - 1) * g.dilation[1],
    )
}

/// Offset of each tap in the padded plane.
fn padded_taps(g: &Geometry) -> Vec<usize> {
    let (_, wpad) = padded_size(g);
    (0..g.kh)
        .flat_map(|ki| (0..g.kw).map(move |kj| ki * g.dilation[0] * wpad + kj * g.dilation[1]))
        .collect()
}

/// `x` as [`pad_input`] makes it: borrowed where that is `x` itself ("valid" layers).
fn padded<'a>(g: &Geometry, x: &'a [f32]) -> std::borrow::Cow<'a, [f32]> {
    if g.pad == [0, 0] && padded_size(g) == (g.h, g.w) {
        std::borrow::Cow::Borrowed(x)
    } else {
        std::borrow::Cow::Owned(pad_input(g, x))
    }
}

/// `x` zero-padded so that output pixel `(oh, ow)`'s tap `(ki, kj)` reads row
/// `oh + ki·dh`, column `ow + kj·dw`: `[N, C_in, OH + (KH−1)·dh, OW + (KW−1)·dw]`.
fn pad_input(g: &Geometry, x: &[f32]) -> Vec<f32> {
    let (hp, wpad) = padded_size(g);
    // Padded column `c` holds input column `c − pad` where that is in [0, W).
    let c_lo = g.pad[1].min(wpad);
    let c_hi = (g.pad[1] + g.w).min(wpad).max(c_lo);
    let zero = MaybeUninit::new(0.0);
    let fill = |xp: &mut [MaybeUninit<f32>]| {
        xp.par_chunks_mut(hp * wpad)
            .zip(x.par_chunks(g.in_plane()))
            .for_each(|(dst, src)| {
                for (r, row) in dst.chunks_exact_mut(wpad).enumerate() {
                    match r.checked_sub(g.pad[0]).filter(|&sr| sr < g.h) {
                        Some(sr) => {
                            row[..c_lo].fill(zero);
                            for (d, s) in row[c_lo..c_hi].iter_mut().zip(&src[sr * g.w..]) {
                                d.write(*s);
                            }
                            row[c_hi..].fill(zero);
                        }
                        None => row.fill(zero),
                    }
                }
            })
    };
    // SAFETY: every padded row is written whole (zeros, the input row, zeros).
    unsafe { written(g.n * g.c_in * hp * wpad, fill) }
}

/// `values` (whole vectors) as their floats.
fn floats_mut(values: &mut [MaybeUninit<__m512>]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: an `__m512` is 16 floats without padding; the length covers the same bytes.
    unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast(), values.len() * 16) }
}

/// The kernel as `[group][block][C_in/groups][tap][vb]`, in whole vectors.
fn pack_weight(g: &Geometry, kernel: Kernel, vb: usize) -> Vec<__m512> {
    let (cpg, opg, taps) = (g.cpg(), g.opg(), g.kh * g.kw);
    let fill = |out: &mut [MaybeUninit<__m512>]| {
        out.par_chunks_mut(cpg * taps * vb / 16)
            .enumerate()
            .for_each(|(gb, dst)| {
                let dst = floats_mut(dst);
                let (grp, b) = (gb / (opg / vb), gb % (opg / vb));
                let co0 = grp * opg + b * vb;
                match kernel {
                    // A transpose of the block's `vb` rows: each vector gathers one column of
                    // 16 rows (the rows are read in order, 16 streams at a time).
                    Kernel::Oihw(w) => {
                        let block = &w[co0 * cpg * taps..][..vb * cpg * taps];
                        // SAFETY: AVX-512F is available (`applies`); `block` is `vb` rows of
                        // `cpg·taps` and `dst` their `cpg·taps·vb` floats.
                        unsafe { transpose_rows(block, cpg * taps, vb, dst) };
                    }
                    // The kernel's convolution has `cpg` output channels per group (this input
                    // channel `ci` is its output channel `grp·cpg + ci`) and `opg` input
                    // channels per group (this block's channels): `vb × taps` values in a row.
                    Kernel::Flipped(w) => {
                        for (ci, dst) in dst.chunks_exact_mut(taps * vb).enumerate() {
                            let src = &w[((grp * cpg + ci) * opg + b * vb) * taps..][..vb * taps];
                            for (t, dst) in dst.chunks_exact_mut(vb).enumerate() {
                                for (j, d) in dst.iter_mut().enumerate() {
                                    d.write(src[j * taps + taps - 1 - t]);
                                }
                            }
                        }
                    }
                }
            })
    };
    // SAFETY: every block is written whole (each of its `cpg·taps` columns of `vb`).
    unsafe { written(g.c_out * cpg * taps / 16, fill) }
}

/// `dst[k·vb + j] = rows[j·len + k]`: `vb` rows of `len` floats transposed, by gathers.
///
/// # Safety
/// AVX-512F is available; `rows` holds `vb·len` floats, `dst` as many, `vb` is a multiple
/// of 16 and `vb·len` fits an `i32`.
#[target_feature(enable = "avx512f")]
unsafe fn transpose_rows(rows: &[f32], len: usize, vb: usize, dst: &mut [MaybeUninit<f32>]) {
    debug_assert!(rows.len() == vb * len && dst.len() == vb * len && vb.is_multiple_of(16));
    let stride = len as i32;
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let offsets = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(stride));
    for v in 0..vb / 16 {
        let base = rows[v * 16 * len..].as_ptr();
        for k in 0..len {
            // SAFETY: lane `i` reads row `16·v + i`, column `k`, inside `rows`; the store
            // writes `dst[k·vb + 16·v ..][..16]`, inside `dst`.
            unsafe {
                let column = _mm512_i32gather_ps::<4>(offsets, base.add(k));
                _mm512_storeu_ps(dst.as_mut_ptr().cast::<f32>().add(k * vb + 16 * v), column);
            }
        }
    }
}

/// Writes a job's accumulators (`[pixel][vb]`, the job's rows of image `n`, output
/// channels `co0..co0 + vb`) to the NCHW output, with the bias and the epilogue.
///
/// # Safety
/// Those output values are written by no one else meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn store(
    g: &Geometry,
    acc: &[f32],
    n: usize,
    co0: usize,
    vb: usize,
    rows: &Range<usize>,
    bias: Option<&[f32]>,
    epilogue: Option<&Epilogue>,
    dst: SharedMut,
) {
    let pixels = rows.len() * g.ow;
    for j in 0..vb {
        let co = co0 + j;
        let offset = (n * g.c_out + co) * g.out_plane() + rows.start * g.ow;
        let b = bias.map_or(0.0, |b| b[co]);
        for p in 0..pixels {
            // SAFETY: per the contract (through the pointer: the output is not initialised
            // yet).
            unsafe { dst.at(offset + p).write(acc[p * vb + j] + b) };
        }
        if let Some(e) = epilogue {
            // SAFETY: per the contract; these values are now initialised.
            e.apply_to(co, offset, unsafe { dst.slice(offset, pixels) });
        }
    }
}

/// The shape of one register tile: `rows × width` output pixels × `16·v` output channels,
/// over `channels` input channels.
struct Tile {
    v: usize,
    rows: usize,
    width: usize,
    /// Vectors from one row's accumulators to the next's.
    acc_row: usize,
    /// Floats from one padded input row to the next.
    x_row: usize,
    /// Floats from one padded input channel to the next.
    plane: usize,
    channels: usize,
}

impl Tile {
    /// `acc[r·acc_row + p·v + ·] (+)= Σ_{ci, t} w[ci][t][·] · x[ci·plane + taps[t] +
    /// r·x_row + p]` for the tile's pixels `(r, p)`; `first`: the sums start at zero.
    ///
    /// # Safety
    /// AVX-512F is available; `x` holds every value read, `acc` every vector written, and
    /// `w` `channels × taps × v` vectors.
    unsafe fn run(&self, acc: &mut [__m512], first: bool, x: &[f32], taps: &[usize], w: &[__m512]) {
        let (v, rows, width) = (self.v, self.rows, self.width);
        debug_assert!(acc.len() >= (rows - 1) * self.acc_row + width * v);
        debug_assert_eq!(w.len(), self.channels * taps.len() * v);
        debug_assert!(
            self.channels == 0
                || (self.channels - 1) * self.plane
                    + taps.iter().max().copied().unwrap_or(0)
                    + (rows - 1) * self.x_row
                    + width
                    <= x.len()
        );
        let (acc, x, w) = (acc.as_mut_ptr(), x.as_ptr(), w.as_ptr());
        let (acc_row, x_row, plane, channels) =
            (self.acc_row, self.x_row, self.plane, self.channels);
        macro_rules! dispatch {
            ($v:literal, $r:literal; $($p:literal)*) => {
                match width {
                    // SAFETY: per this function's contract.
                    $($p => unsafe {
                        kernel::<$p, $r, $v>(acc, acc_row, first, x, x_row, plane, taps, channels, w)
                    },)*
                    _ => unreachable!("tile width {width} above the tile shape's"),
                }
            };
        }
        match (v, rows) {
            (2, 1) => dispatch!(2, 1; 1 2 3 4 5 6 7 8 9 10 11 12 13 14),
            (2, 2) => dispatch!(2, 2; 1 2 3 4 5 6 7),
            (2, 3) => dispatch!(2, 3; 1 2 3 4),
            (2, _) => dispatch!(2, 4; 1 2 3),
            (_, 1) => dispatch!(1, 1; 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22
                23 24 25 26 27 28),
            (_, 2) => dispatch!(1, 2; 1 2 3 4 5 6 7 8 9 10 11 12 13 14),
            (_, 3) => dispatch!(1, 3; 1 2 3 4 5 6 7 8 9),
            _ => dispatch!(1, 4; 1 2 3 4 5 6 7),
        }
    }
}

/// [`Tile::run`] for a shape known at compile time (the accumulators stay in registers):
/// `R` rows of `P` pixels, `V` vectors of output channels.
///
/// # Safety
/// As [`Tile::run`].
// Index loops: with iterators (`zip` over the register arrays) the weights went through
// the stack on every step.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const P: usize, const R: usize, const V: usize>(
    acc: *mut __m512,
    acc_row: usize,
    first: bool,
    x: *const f32,
    x_row: usize,
    plane: usize,
    taps: &[usize],
    channels: usize,
    w: *const __m512,
) {
    // SAFETY (whole body): the pointers stay within the extents `Tile::run` documents;
    // `acc` and `w` point at whole vectors (plain dereferences: `loadu`'s copy stayed on
    // the stack in this loop).
    unsafe {
        let mut sum = [[[ZERO; V]; P]; R];
        if !first {
            for r in 0..R {
                for p in 0..P {
                    for v in 0..V {
                        sum[r][p][v] = *acc.add(r * acc_row + p * V + v);
                    }
                }
            }
        }
        let mut wv = w;
        for ci in 0..channels {
            let xc = x.add(ci * plane);
            for &t in taps {
                let mut weights = [ZERO; V];
                for v in 0..V {
                    weights[v] = *wv.add(v);
                }
                for r in 0..R {
                    let xt = xc.add(t + r * x_row);
                    for p in 0..P {
                        let b = _mm512_set1_ps(*xt.add(p));
                        for v in 0..V {
                            sum[r][p][v] = _mm512_fmadd_ps(weights[v], b, sum[r][p][v]);
                        }
                    }
                }
                wv = wv.add(V);
            }
        }
        for r in 0..R {
            for p in 0..P {
                for v in 0..V {
                    *acc.add(r * acc_row + p * V + v) = sum[r][p][v];
                }
            }
        }
    }
}

/// Whether `g`'s weight gradient takes [`weight_grad`]: [`applies`], and two vectors of
/// output channels per tile or at least 32 input channels per group. With one vector, each
/// pixel's broadcasts (one per tap) are as many as its FMAs, and on short reductions the
/// GEMM path wins: the U-Net's 4×16×128×128 → 16 layer, 2.9–4.4 ms by GEMM against
/// 5.6–9.3 ms direct (alternating runs); its 4×32×128×128 → 16 layer gains (5.9–8.5 →
/// 4.3–6.4 ms), as ResNet-50's 3×3 layers do (8×256×14×14: 12–19 → 8–16 ms).
///
/// Maps under [`WGRAD_MIN_PLANE`] pixels keep the GEMM path too: ResNet-50's 8×512×7×7 layer
/// measured 12.0–13.2 ms by GEMM against 14.4–14.6 ms direct (four alternating rounds).
pub(super) fn weight_grad_applies(g: &Geometry) -> bool {
    applies(g) && (g.opg().is_multiple_of(32) || g.cpg() >= 32) && g.out_plane() >= WGRAD_MIN_PLANE
}

/// Fewest output pixels per image for [`weight_grad`].
const WGRAD_MIN_PLANE: usize = 100;

/// Weight gradient of a stride-1 layer that [`applies`]: `dW[co, ci, t] = Σ_{n, p}
/// dy[n, co, p] · x_padded[n, ci, p + tap t]`, `[C_out, C_in/groups, KH, KW]` from `x`
/// `[N, C_in, H, W]` and `dy` `[N, C_out, OH, OW]`.
///
/// `dy` is first made pixel-major per block of `16·V` output channels
/// (`[N, C_out / 16·V, OH·OW, 16·V]`), so that one pixel's channels of a block are whole
/// vectors, the block's pixels in order; a register tile then holds `taps × 16·V` sums of
/// one input channel and, per pixel, broadcasts each tap's input value against the `V`
/// vectors of `dy`. Jobs own `(group, block of 16·V output channels, block of input channels)` and
/// write that block of dW; where those are fewer than two per thread, the pixels are split
/// as well, each part writing its own partial dW, and the partials are added in order.
pub(super) fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    debug_assert!(applies(g));
    let (v, _) = tile_shape(g.opg());
    let vb = 16 * v;
    let taps = padded_taps(g);
    let ntaps = taps.len();
    let xp = padded(g, x);
    let dyt = pixel_major(g, dy, vb);
    let (hp, wpad) = padded_size(g);
    let plane = hp * wpad;
    let (cpg, opg, opix) = (g.cpg(), g.opg(), g.out_plane());
    let blocks = opg / vb;
    let ci_block = WGRAD_CHANNELS.min(cpg);
    let ci_blocks = cpg.div_ceil(ci_block);
    let threads = rayon::current_num_threads();
    let parts = if g.groups * blocks * ci_blocks >= 2 * threads {
        1
    } else {
        threads
    };
    // Each part's rows (image, rows of it), in chunks of about JOB_PIXELS pixels.
    let total_rows = g.n * g.oh;
    let chunk_rows = (JOB_PIXELS / g.ow).clamp(1, g.oh);
    let part_rows: Vec<Vec<(usize, Range<usize>)>> = (0..parts)
        .map(|part| {
            let (lo, hi) = (total_rows * part / parts, total_rows * (part + 1) / parts);
            let mut segments = Vec::new();
            let mut row = lo;
            while row < hi {
                let (n, oh) = (row / g.oh, row % g.oh);
                let end = (oh + chunk_rows).min(g.oh).min(oh + hi - row);
                segments.push((n, oh..end));
                row += end - oh;
            }
            segments
        })
        .collect();
    // Tap groups of at most `tg_max` (the accumulators, `group × V`, stay in registers).
    let tg_max = 24 / v;
    let tap_groups = ntaps.div_ceil(tg_max);
    let group_len = ntaps.div_ceil(tap_groups);
    // With one part, each job writes its block of dW; else part `k`'s sums go to the `k`th
    // partial dW, and the partials are added in order.
    let len = g.c_out * cpg * ntaps;
    // Not zeroed: the jobs write every value of dW (or of each partial).
    let mut out = uninit::<f32>(parts * len);
    let dst = SharedMut(out.as_mut_ptr().cast());
    let jobs: Vec<(usize, usize, usize, usize)> = (0..parts)
        .flat_map(|part| {
            (0..g.groups).flat_map(move |grp| {
                (0..blocks).flat_map(move |b| (0..ci_blocks).map(move |cb| (part, grp, b, cb)))
            })
        })
        .collect();
    jobs.par_iter()
        .for_each_init(Vec::new, |acc, &(part, grp, b, cb)| {
            let channels = cb * ci_block..((cb + 1) * ci_block).min(cpg);
            acc.clear();
            acc.resize(channels.len() * ntaps * v, ZERO);
            let co0 = grp * opg + b * vb;
            for (n, rows) in &part_rows[part] {
                let dy0 = ((n * g.c_out + co0) * opix / vb + rows.start * g.ow) * v;
                for (k, ci) in channels.clone().enumerate() {
                    let x0 = (n * g.c_in + grp * cpg + ci) * plane + rows.start * wpad;
                    for t0 in (0..ntaps).step_by(group_len) {
                        let tg = group_len.min(ntaps - t0);
                        let shape = WgradTile {
                            v,
                            taps: tg,
                            rows: rows.len(),
                            width: g.ow,
                            dy_pixel: v,
                            x_row: wpad,
                        };
                        // SAFETY: AVX-512F is available (`applies`); `dyt` holds the rows'
                        // pixels from `dy0`, `xp` every tap of them from `x0` (`padded_size`),
                        // and `acc` this channel's `taps × v` sums.
                        unsafe {
                            shape.run(
                                &mut acc[(k * ntaps + t0) * v..][..tg * v],
                                &dyt[dy0..],
                                &xp[x0..],
                                &taps[t0..t0 + tg],
                            )
                        };
                    }
                }
            }
            // SAFETY: an `__m512` is 16 floats.
            let acc =
                unsafe { std::slice::from_raw_parts(acc.as_ptr().cast::<f32>(), acc.len() * 16) };
            let row = channels.len() * ntaps;
            for j in 0..vb {
                let first = part * len + ((co0 + j) * cpg + channels.start) * ntaps;
                for k in 0..row {
                    // SAFETY: this job alone writes these channels' taps of output channel
                    // `co0 + j` (of its part); through the pointer, as they are not
                    // initialised.
                    unsafe { dst.at(first + k).write(acc[k * vb + j]) };
                }
            }
        });
    // SAFETY: the jobs cover every (part, group, block, channel block): all of dW (of every
    // partial) is written.
    let partials = unsafe { assume_init(out) };
    if parts == 1 {
        return partials;
    }
    let sum = |dw: &mut [MaybeUninit<f32>]| {
        dw.par_chunks_mut(cpg * ntaps)
            .enumerate()
            .for_each(|(co, row)| {
                let at = co * cpg * ntaps;
                for (k, d) in row.iter_mut().enumerate() {
                    d.write((0..parts).map(|part| partials[part * len + at + k]).sum());
                }
            })
    };
    // SAFETY: every row is written whole.
    unsafe { written(len, sum) }
}

/// Input channels per weight-gradient job.
const WGRAD_CHANNELS: usize = 16;

/// `dy` `[N, C_out, P]` as `[N, C_out / vb, P, vb]` in whole vectors: each block of `vb`
/// output channels pixel-major, so that a job reads its block's pixels in order.
fn pixel_major(g: &Geometry, dy: &[f32], vb: usize) -> Vec<__m512> {
    let opix = g.out_plane();
    let fill = |out: &mut [MaybeUninit<__m512>]| {
        out.par_chunks_mut(opix * vb / 16)
            .zip(dy.par_chunks(vb * opix))
            .for_each(|(dst, src)| {
                let dst = floats_mut(dst);
                // 16 pixels at a time: their `16 × vb` destination block stays in L1.
                for p0 in (0..opix).step_by(16) {
                    let p1 = (p0 + 16).min(opix);
                    for j in 0..vb {
                        for (p, &value) in (p0..p1).zip(&src[j * opix + p0..j * opix + p1]) {
                            dst[p * vb + j].write(value);
                        }
                    }
                }
            })
    };
    // SAFETY: every (pixel, channel) of every block of every image is written.
    unsafe { written(g.n * opix * g.c_out / 16, fill) }
}

/// The shape of one weight-gradient register tile: `taps × 16·v` sums of one input channel
/// over `rows × width` pixels.
struct WgradTile {
    v: usize,
    taps: usize,
    rows: usize,
    width: usize,
    /// Vectors from one pixel of `dy` to the next.
    dy_pixel: usize,
    /// Floats from one padded input row to the next.
    x_row: usize,
}

impl WgradTile {
    /// `acc[t·v + ·] += Σ_{r, p} dy[(r·width + p)·dy_pixel + ·] · x[r·x_row + p + taps[t]]`.
    ///
    /// # Safety
    /// AVX-512F is available; `acc` holds `taps × v` vectors, `dy` and `x` every value read.
    unsafe fn run(&self, acc: &mut [__m512], dy: &[__m512], x: &[f32], taps: &[usize]) {
        let (v, tg) = (self.v, self.taps);
        debug_assert_eq!(acc.len(), tg * v);
        debug_assert_eq!(taps.len(), tg);
        debug_assert!(
            ((self.rows * self.width - 1) * self.dy_pixel + v) <= dy.len()
                && (self.rows - 1) * self.x_row + self.width + taps.iter().max().unwrap_or(&0)
                    <= x.len()
        );
        let (acc, dy, x, taps) = (acc.as_mut_ptr(), dy.as_ptr(), x.as_ptr(), taps.as_ptr());
        let (rows, width, dy_pixel, x_row) = (self.rows, self.width, self.dy_pixel, self.x_row);
        macro_rules! dispatch {
            ($v:literal; $($t:literal)*) => {
                match tg {
                    // SAFETY: per this function's contract.
                    $($t => unsafe {
                        wgrad_kernel::<$t, $v>(acc, dy, dy_pixel, x, x_row, rows, width, taps)
                    },)*
                    _ => unreachable!("tap group of {tg} above the tile shape's"),
                }
            };
        }
        match v {
            2 => dispatch!(2; 1 2 3 4 5 6 7 8 9 10 11 12),
            _ => dispatch!(1; 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24),
        }
    }
}

/// [`WgradTile::run`] for `T` taps and `V` vectors known at compile time.
///
/// # Safety
/// As [`WgradTile::run`].
// Index loops, as in `kernel`.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[target_feature(enable = "avx512f")]
unsafe fn wgrad_kernel<const T: usize, const V: usize>(
    acc: *mut __m512,
    dy: *const __m512,
    dy_pixel: usize,
    x: *const f32,
    x_row: usize,
    rows: usize,
    width: usize,
    taps: *const usize,
) {
    // SAFETY (whole body): the pointers stay within the extents `WgradTile::run` documents.
    unsafe {
        let mut sum = [[ZERO; V]; T];
        let mut offsets = [0usize; T];
        for t in 0..T {
            offsets[t] = *taps.add(t);
            for v in 0..V {
                sum[t][v] = *acc.add(t * V + v);
            }
        }
        for r in 0..rows {
            let xr = x.add(r * x_row);
            let dr = dy.add(r * width * dy_pixel);
            for p in 0..width {
                let d = dr.add(p * dy_pixel);
                let mut grads = [ZERO; V];
                for v in 0..V {
                    grads[v] = *d.add(v);
                }
                let xp = xr.add(p);
                for t in 0..T {
                    let b = _mm512_set1_ps(*xp.add(offsets[t]));
                    for v in 0..V {
                        sum[t][v] = _mm512_fmadd_ps(grads[v], b, sum[t][v]);
                    }
                }
            }
        }
        for t in 0..T {
            for v in 0..V {
                *acc.add(t * V + v) = sum[t][v];
            }
        }
    }
}
