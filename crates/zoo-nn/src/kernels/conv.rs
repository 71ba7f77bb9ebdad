//! 2-D convolution on the host, NCHW f32: forward, input gradient and weight gradient, as
//! im2col + GEMM (Caffe's formulation, Jia 2014).
//!
//! For image `n`, group `g` and a tile of output rows, the tile's receptive fields are
//! unfolded into `col: [K, P]` (`K = C_in/groups · KH · KW`, `P` = pixels of the tile), then
//! - forward: `out[g][:, tile] = W_g [C_out/groups, K] · col`
//! - weight gradient: `dW_g += dY_g[:, tile] · colᵀ` (one GEMM whose reduction runs over
//!   pixels, instead of Burn's generic "convolution with the output gradient as kernel")
//! - input gradient: `dcol = W_gᵀ · dY_g[:, tile]`, folded back with col2im.
//!
//! Stride-1, unpadded 1×1 convolutions skip the unfolding: the image itself is `col`. The
//! output is written in NCHW directly (`C_out` rows of `OH·OW` pixels), so no layout change
//! is needed on either side. Tiles keep `col` within [`COL_BUDGET`] floats; work is spread
//! over rayon's pool by image, group and tile, and GEMMs use the `gemm` crate, which picks
//! its AVX-512 / AVX2 / NEON micro-kernels at run time.

use std::cell::RefCell;

use rayon::prelude::*;

use super::gemm::{Parallel, Strided, gemm};

/// Most floats an unfolded tile (`col`) may hold: 2 Mi floats (8 MB).
const COL_BUDGET: usize = 1 << 21;
/// Fewest pixels a tile aims for, so the GEMM's packing of `W` is amortised.
const MIN_TILE_PIXELS: usize = 256;

/// Sizes of one convolution (NCHW input, OIHW weight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    /// Padding before the first row / column (the padding after only shows in `oh`/`ow`).
    pub pad: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geometry {
    /// Input channels per group.
    fn cpg(&self) -> usize {
        self.c_in / self.groups
    }

    /// Output channels per group.
    fn opg(&self) -> usize {
        self.c_out / self.groups
    }

    /// Rows of `col`: input channels per group × taps.
    fn k(&self) -> usize {
        self.cpg() * self.kh * self.kw
    }

    /// Whether the image is its own `col` (1×1, stride 1, no padding).
    fn pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.stride == [1, 1]
            && self.pad == [0, 0]
            && self.oh == self.h
            && self.ow == self.w
    }

    /// Output rows per tile.
    fn tile_rows(&self) -> usize {
        let by_budget = COL_BUDGET / (self.k() * self.ow).max(1);
        let by_minimum = MIN_TILE_PIXELS.div_ceil(self.ow);
        by_budget.max(by_minimum).max(1).min(self.oh)
    }

    /// `(first, end)` output rows of every tile.
    fn tiles(&self) -> Vec<(usize, usize)> {
        if self.pointwise() {
            return vec![(0, self.oh)];
        }
        let rows = self.tile_rows();
        (0..self.oh)
            .step_by(rows)
            .map(|r| (r, (r + rows).min(self.oh)))
            .collect()
    }

    /// The range `[lo, hi)` of output columns whose input column for tap column `kj` lies
    /// inside the image, and that input column's offset for output column 0 (may be < 0).
    fn valid_columns(&self, kj: usize) -> (usize, usize, isize) {
        let [_, sw] = self.stride;
        let offset = (kj * self.dilation[1]) as isize - self.pad[1] as isize;
        // iw = o·sw + offset ∈ [0, w)
        let lo = if offset >= 0 {
            0
        } else {
            ((-offset) as usize).div_ceil(sw)
        };
        let hi = if (self.w as isize) <= offset {
            0
        } else {
            ((self.w as isize - offset) as usize).div_ceil(sw)
        };
        (
            lo.min(self.ow),
            hi.min(self.ow).max(lo.min(self.ow)),
            offset,
        )
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer of at least `len` floats (contents arbitrary).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut buf = cell.borrow_mut();
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        f(&mut buf[..len])
    })
}

/// Unfolds the receptive fields of output rows `rows` of one image's group into
/// `col: [K, P]`, zero where a tap reads padding.
fn im2col(g: &Geometry, image: &[f32], rows: (usize, usize), col: &mut [f32]) {
    let (r0, r1) = rows;
    let pixels = (r1 - r0) * g.ow;
    let [sh, sw] = g.stride;
    for ci in 0..g.cpg() {
        let plane = &image[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ki in 0..g.kh {
            let row_offset = (ki * g.dilation[0]) as isize - g.pad[0] as isize;
            for kj in 0..g.kw {
                let (lo, hi, col_offset) = g.valid_columns(kj);
                let k = (ci * g.kh + ki) * g.kw + kj;
                let dst_row = &mut col[k * pixels..(k + 1) * pixels];
                for (t, oh) in (r0..r1).enumerate() {
                    let dst = &mut dst_row[t * g.ow..(t + 1) * g.ow];
                    let ih = (oh * sh) as isize + row_offset;
                    if ih < 0 || ih >= g.h as isize || lo >= hi {
                        dst.fill(0.0);
                        continue;
                    }
                    let src = &plane[ih as usize * g.w..(ih as usize + 1) * g.w];
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                    let start = (lo * sw) as isize + col_offset;
                    if sw == 1 {
                        let start = start as usize;
                        dst[lo..hi].copy_from_slice(&src[start..start + hi - lo]);
                    } else {
                        for (o, d) in dst[lo..hi].iter_mut().enumerate() {
                            *d = src[start as usize + o * sw];
                        }
                    }
                }
            }
        }
    }
}

/// Adds `col: [K, P]` back into the image's group gradient (the adjoint of [`im2col`]).
fn col2im(g: &Geometry, col: &[f32], rows: (usize, usize), image: &mut [f32]) {
    let (r0, r1) = rows;
    let pixels = (r1 - r0) * g.ow;
    let [sh, sw] = g.stride;
    for ci in 0..g.cpg() {
        let plane = &mut image[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ki in 0..g.kh {
            let row_offset = (ki * g.dilation[0]) as isize - g.pad[0] as isize;
            for kj in 0..g.kw {
                let (lo, hi, col_offset) = g.valid_columns(kj);
                if lo >= hi {
                    continue;
                }
                let k = (ci * g.kh + ki) * g.kw + kj;
                let src_row = &col[k * pixels..(k + 1) * pixels];
                for (t, oh) in (r0..r1).enumerate() {
                    let ih = (oh * sh) as isize + row_offset;
                    if ih < 0 || ih >= g.h as isize {
                        continue;
                    }
                    let src = &src_row[t * g.ow + lo..t * g.ow + hi];
                    let dst = &mut plane[ih as usize * g.w..(ih as usize + 1) * g.w];
                    let start = ((lo * sw) as isize + col_offset) as usize;
                    if sw == 1 {
                        for (d, s) in dst[start..start + src.len()].iter_mut().zip(src) {
                            *d += s;
                        }
                    } else {
                        for (o, s) in src.iter().enumerate() {
                            dst[start + o * sw] += s;
                        }
                    }
                }
            }
        }
    }
}

/// A raw pointer that rayon tasks may share; every task writes a disjoint region.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: tasks only write disjoint regions (documented at each use).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The pointer `offset` floats in.
    ///
    /// # Safety
    /// `offset` stays within the allocation.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: per the caller's contract.
        unsafe { self.0.add(offset) }
    }
}

/// Every `(image, group, tile)` of the convolution.
fn tile_tasks(g: &Geometry) -> Vec<(usize, usize, (usize, usize))> {
    let tiles = g.tiles();
    let mut tasks = Vec::with_capacity(g.n * g.groups * tiles.len());
    for n in 0..g.n {
        for grp in 0..g.groups {
            tasks.extend(tiles.iter().map(|&t| (n, grp, t)));
        }
    }
    tasks
}

/// Whether to spread `tasks` over the pool (else: one at a time, each GEMM threaded).
fn spread(tasks: usize) -> bool {
    tasks >= 2 * rayon::current_num_threads() || rayon::current_num_threads() == 1
}

/// Convolution forward: `out[n, co, oh, ow] = bias[co] + Σ x · w`.
///
/// `x`: `[N, C_in, H, W]`, `weight`: `[C_out, C_in/groups, KH, KW]`, `bias`: `[C_out]`;
/// returns `[N, C_out, OH, OW]`, all contiguous.
pub(crate) fn forward(g: &Geometry, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let out_plane = g.oh * g.ow;
    let mut out = vec![0.0f32; g.n * g.c_out * out_plane];
    if let Some(bias) = bias {
        for (channel, b) in out.chunks_mut(out_plane).zip(bias.iter().cycle()) {
            channel.fill(*b);
        }
    }
    let tasks = tile_tasks(g);
    let dst = SharedMut(out.as_mut_ptr());
    let (k, opg, cpg) = (g.k(), g.opg(), g.cpg());
    let run = |&(n, grp, rows): &(usize, usize, (usize, usize)), par: Parallel| {
        let image =
            &x[(n * g.c_in + grp * cpg) * g.h * g.w..(n * g.c_in + (grp + 1) * cpg) * g.h * g.w];
        let w_g = &weight[grp * opg * k..(grp + 1) * opg * k];
        let pixels = (rows.1 - rows.0) * g.ow;
        // SAFETY: this task writes rows `rows` of output channels `grp·opg..(grp+1)·opg` of
        // image `n`, which no other task writes; the region is inside `out`.
        let dst = Strided::new(
            unsafe { dst.at((n * g.c_out + grp * opg) * out_plane + rows.0 * g.ow) },
            out_plane as isize,
            1,
        );
        let lhs = Strided::new_const(w_g.as_ptr(), k as isize, 1);
        if g.pointwise() {
            let rhs = Strided::new_const(image.as_ptr(), (g.h * g.w) as isize, 1);
            // SAFETY: the operands cover [opg, k], [k, pixels] and [opg, pixels] in bounds.
            unsafe { gemm(opg, pixels, k, dst, true, lhs, rhs, par) };
            return;
        }
        with_scratch(k * pixels, |col| {
            im2col(g, image, rows, col);
            let rhs = Strided::new_const(col.as_ptr(), pixels as isize, 1);
            // SAFETY: as above, with `col` holding [k, pixels].
            unsafe { gemm(opg, pixels, k, dst, true, lhs, rhs, par) };
        });
    };
    if spread(tasks.len()) {
        tasks.par_iter().for_each(|t| run(t, Parallel::No));
    } else {
        tasks.iter().for_each(|t| run(t, Parallel::Yes));
    }
    out
}

/// Gradient of the input: `dx = Σ over taps of Wᵀ · dy`, folded back onto the image.
///
/// `dy`: `[N, C_out, OH, OW]`; returns `[N, C_in, H, W]`.
pub(crate) fn input_grad(g: &Geometry, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    let (k, opg, cpg) = (g.k(), g.opg(), g.cpg());
    let in_plane = g.h * g.w;
    let out_plane = g.oh * g.ow;
    let mut dx = vec![0.0f32; g.n * g.c_in * in_plane];
    let tiles = g.tiles();
    let dst = SharedMut(dx.as_mut_ptr());
    let run = |n: usize, grp: usize, par: Parallel| {
        let w_t = Strided::new_const(weight[grp * opg * k..].as_ptr(), 1, k as isize);
        let dy_at = |row: usize| {
            Strided::new_const(
                dy[(n * g.c_out + grp * opg) * out_plane + row * g.ow..].as_ptr(),
                out_plane as isize,
                1,
            )
        };
        let offset = (n * g.c_in + grp * cpg) * in_plane;
        // SAFETY: this task alone writes channels `grp·cpg..(grp+1)·cpg` of image `n`.
        let image = unsafe { std::slice::from_raw_parts_mut(dst.at(offset), cpg * in_plane) };
        if g.pointwise() {
            let out = Strided::new(image.as_mut_ptr(), in_plane as isize, 1);
            // SAFETY: [k = cpg, pixels] destination, [k, opg] and [opg, pixels] operands.
            unsafe { gemm(k, in_plane, opg, out, false, w_t, dy_at(0), par) };
            return;
        }
        for &rows in &tiles {
            let pixels = (rows.1 - rows.0) * g.ow;
            with_scratch(k * pixels, |col| {
                let out = Strided::new(col.as_mut_ptr(), pixels as isize, 1);
                // SAFETY: `col` holds [k, pixels]; operands in bounds as above.
                unsafe { gemm(k, pixels, opg, out, false, w_t, dy_at(rows.0), par) };
                col2im(g, col, rows, image);
            });
        }
    };
    let tasks: Vec<(usize, usize)> = (0..g.n)
        .flat_map(|n| (0..g.groups).map(move |grp| (n, grp)))
        .collect();
    if spread(tasks.len()) || tasks.len() >= rayon::current_num_threads() {
        tasks
            .par_iter()
            .for_each(|&(n, grp)| run(n, grp, Parallel::No));
    } else {
        tasks
            .iter()
            .for_each(|&(n, grp)| run(n, grp, Parallel::Yes));
    }
    dx
}

/// Gradient of the weight: `dW = Σ_n dy_n · colᵀ_n`.
///
/// `x`: `[N, C_in, H, W]`, `dy`: `[N, C_out, OH, OW]`; returns `[C_out, C_in/groups, KH, KW]`.
pub(crate) fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (k, opg, cpg) = (g.k(), g.opg(), g.cpg());
    let out_plane = g.oh * g.ow;
    let size = g.c_out * k;
    let tasks = tile_tasks(g);
    let accumulate =
        |dw: &mut [f32], &(n, grp, rows): &(usize, usize, (usize, usize)), par: Parallel| {
            let image = &x
                [(n * g.c_in + grp * cpg) * g.h * g.w..(n * g.c_in + (grp + 1) * cpg) * g.h * g.w];
            let pixels = (rows.1 - rows.0) * g.ow;
            let lhs = Strided::new_const(
                dy[(n * g.c_out + grp * opg) * out_plane + rows.0 * g.ow..].as_ptr(),
                out_plane as isize,
                1,
            );
            let dst = Strided::new(dw[grp * opg * k..].as_mut_ptr(), k as isize, 1);
            if g.pointwise() {
                let rhs = Strided::new_const(image.as_ptr(), 1, (g.h * g.w) as isize);
                // SAFETY: [opg, k] destination in `dw`; [opg, pixels] and [pixels, k] operands.
                unsafe { gemm(opg, k, pixels, dst, true, lhs, rhs, par) };
                return;
            }
            with_scratch(k * pixels, |col| {
                im2col(g, image, rows, col);
                let rhs = Strided::new_const(col.as_ptr(), 1, pixels as isize);
                // SAFETY: as above, with `col` holding [k, pixels] read transposed.
                unsafe { gemm(opg, k, pixels, dst, true, lhs, rhs, par) };
            });
        };
    if spread(tasks.len()) {
        // One partial gradient per thread, summed at the end.
        let per_thread = tasks.len().div_ceil(rayon::current_num_threads());
        // Summed in chunk order, so the result does not depend on scheduling.
        let partials: Vec<Vec<f32>> = tasks
            .par_chunks(per_thread)
            .map(|chunk| {
                let mut dw = vec![0.0f32; size];
                chunk
                    .iter()
                    .for_each(|t| accumulate(&mut dw, t, Parallel::No));
                dw
            })
            .collect();
        let mut partials = partials.into_iter();
        let mut dw = partials.next().unwrap_or_else(|| vec![0.0; size]);
        for p in partials {
            dw.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
        }
        dw
    } else {
        let mut dw = vec![0.0f32; size];
        tasks
            .iter()
            .for_each(|t| accumulate(&mut dw, t, Parallel::Yes));
        dw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct (six nested loops) convolution, the definition the kernels must match.
    fn reference(g: &Geometry, x: &[f32], w: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f32; g.n * g.c_out * g.oh * g.ow];
        let (cpg, opg) = (g.cpg(), g.opg());
        for n in 0..g.n {
            for co in 0..g.c_out {
                let grp = co / opg;
                for oh in 0..g.oh {
                    for ow in 0..g.ow {
                        let mut acc = 0.0f64;
                        for ci in 0..cpg {
                            for ki in 0..g.kh {
                                for kj in 0..g.kw {
                                    let ih = (oh * g.stride[0] + ki * g.dilation[0]) as isize
                                        - g.pad[0] as isize;
                                    let iw = (ow * g.stride[1] + kj * g.dilation[1]) as isize
                                        - g.pad[1] as isize;
                                    if ih < 0 || iw < 0 || ih >= g.h as isize || iw >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xv = x[((n * g.c_in + grp * cpg + ci) * g.h + ih as usize)
                                        * g.w
                                        + iw as usize];
                                    let wv = w[((co * cpg + ci) * g.kh + ki) * g.kw + kj];
                                    acc += xv as f64 * wv as f64;
                                }
                            }
                        }
                        out[((n * g.c_out + co) * g.oh + oh) * g.ow + ow] = acc as f32;
                    }
                }
            }
        }
        out
    }

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    fn geometry(
        n: usize,
        c_in: usize,
        hw: [usize; 2],
        c_out: usize,
        k: [usize; 2],
        s: [usize; 2],
        p: [usize; 2],
        d: [usize; 2],
        groups: usize,
    ) -> Geometry {
        let oh = (hw[0] + 2 * p[0] - d[0] * (k[0] - 1) - 1) / s[0] + 1;
        let ow = (hw[1] + 2 * p[1] - d[1] * (k[1] - 1) - 1) / s[1] + 1;
        Geometry {
            n,
            c_in,
            h: hw[0],
            w: hw[1],
            c_out,
            kh: k[0],
            kw: k[1],
            stride: s,
            pad: p,
            dilation: d,
            groups,
            oh,
            ow,
        }
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 + 1e-4 * y.abs(),
                "element {i}: {x} vs {y}"
            );
        }
    }

    #[test]
    fn forward_and_adjoints_match_the_definition() {
        for g in [
            geometry(2, 3, [7, 9], 4, [3, 3], [1, 1], [1, 1], [1, 1], 1),
            geometry(1, 4, [9, 8], 6, [3, 2], [2, 3], [2, 0], [2, 1], 2),
            geometry(3, 5, [6, 6], 7, [1, 1], [1, 1], [0, 0], [1, 1], 1),
            geometry(2, 6, [11, 5], 6, [3, 3], [2, 2], [1, 1], [1, 1], 6),
            geometry(1, 2, [4, 4], 3, [3, 3], [1, 1], [3, 3], [3, 3], 1),
            geometry(1, 8, [5, 7], 4, [1, 1], [2, 2], [0, 0], [1, 1], 1),
        ] {
            let x = values(g.n * g.c_in * g.h * g.w, 1);
            let w = values(g.c_out * g.cpg() * g.kh * g.kw, 2);
            close(&forward(&g, &x, &w, None), &reference(&g, &x, &w));
            // Adjoint identities: <conv(x), dy> = <x, dx(dy)> = <w, dw(x, dy)>.
            let dy = values(g.n * g.c_out * g.oh * g.ow, 3);
            let y = reference(&g, &x, &w);
            let lhs: f64 = y.iter().zip(&dy).map(|(a, b)| *a as f64 * *b as f64).sum();
            let dx = input_grad(&g, &w, &dy);
            let via_x: f64 = x.iter().zip(&dx).map(|(a, b)| *a as f64 * *b as f64).sum();
            let dw = weight_grad(&g, &x, &dy);
            let via_w: f64 = w.iter().zip(&dw).map(|(a, b)| *a as f64 * *b as f64).sum();
            assert!(
                (lhs - via_x).abs() < 1e-3 * (1.0 + lhs.abs()),
                "{g:?}: {lhs} vs {via_x}"
            );
            assert!(
                (lhs - via_w).abs() < 1e-3 * (1.0 + lhs.abs()),
                "{g:?}: {lhs} vs {via_w}"
            );
        }
    }
}
