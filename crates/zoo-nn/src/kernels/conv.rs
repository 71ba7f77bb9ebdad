//! 2-D convolution on the host, NCHW f32: forward, input gradient and weight gradient, as
//! im2col + GEMM (Caffe's formulation, Jia 2014).
//!
//! The output pixels of all images, `N·OH·OW`, are cut into tiles; a tile's receptive fields
//! are unfolded into `col: [K, P]` (`K = C_in/groups · taps`, `P` = the tile's pixels), then
//! - forward: `out[:, tile] = W [C_out/groups, K] · col`
//! - weight gradient: `dW += dY[:, tile] · colᵀ` (one GEMM whose reduction runs over pixels,
//!   instead of Burn's generic "convolution with the output gradient as kernel"); for
//!   stride-1 convolutions whose output is the input's size, on large planes, no unfolding
//!   at all: one GEMM per tap over rows of the image read at a constant offset (see
//!   `weight_grad_shifted_tiled`)
//! - input gradient: `dcol = Wᵀ · dY[:, tile]`, folded back with col2im.
//!
//! Tiles may span images, so a small feature map (deep layers, batch of small images) still
//! gives one large product instead of one tiny product per image. Taps that read only
//! padding for every output pixel (an atrous rate larger than the map, as DeepLab's ASPP at
//! rate 24 or 36 on a 32×32 map) are dropped from `K`. Stride-1, unpadded 1×1 convolutions of
//! a single image skip the unfolding. The output is written in NCHW directly.
//!
//! Parallelism: many tiles are spread over rayon's pool (one GEMM per tile and thread; the
//! weight gradient then sums one partial per thread, in a fixed order); a few tiles run one
//! after another with the unfolding split over channels and the GEMM itself threaded. The
//! GEMMs use the `gemm` crate, which picks its AVX-512 / AVX2 / NEON micro-kernels at run time.
//!
//! On CPUs with AVX-512F, stride-1 layers with whole vectors of 16 output channels (ResNet's
//! and the U-Net's 3×3 layers) take the direct kernels of `direct` instead, for the forward,
//! the input gradient (the forward of the transposed geometry) and, on most of them, the
//! weight gradient: no unfolding, the weight packed once per call, output channels along
//! the vector lanes.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

use super::gemm::{Parallel, Strided, gemm};
use super::{assume_init, uninit};

#[cfg(target_arch = "x86_64")]
mod direct;

/// Whether `g` takes the direct AVX-512 kernels of [`direct`] (x86-64 CPUs with AVX-512F,
/// stride-1 layers in whole vectors of channels; see `direct::applies`).
fn direct(g: &Geometry) -> bool {
    #[cfg(target_arch = "x86_64")]
    return direct::applies(g);
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// [`forward`] by the direct kernels, where [`direct`]`(g)`; `flipped`: `weight` is the
/// kernel of the convolution whose input gradient this is (`g` its [`transposed`]).
fn forward_direct(
    g: &Geometry,
    x: &[f32],
    weight: &[f32],
    flipped: bool,
    bias: Option<&[f32]>,
    epilogue: Option<&Epilogue>,
) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    {
        let kernel = if flipped {
            direct::Kernel::Flipped(weight)
        } else {
            direct::Kernel::Oihw(weight)
        };
        direct::forward(g, x, kernel, bias, epilogue)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (g, x, weight, flipped, bias, epilogue);
        unreachable!("the direct kernels exist on x86-64 only")
    }
}

/// Most floats an unfolded tile (`col`) may hold: 256 Ki floats (1 MB, so that it stays in
/// a core's L2 between the unfolding and the GEMM; 8 MB tiles measured 10–25 % slower on the
/// U-Net step and the 3×3 conv train step).
const COL_BUDGET: usize = 1 << 18;
/// Input floats (channels × rows × width) of one tile of a "same" stride-1 weight gradient
/// (512 KB: the tile's rows stay in L2 while its taps' GEMMs read them).
const WGRAD_TILE_FLOATS: usize = 131_072;
/// Output planes from this many pixels take the tiled "same" weight gradient; below, one
/// GEMM per tap over all images (deep 8×8 / 16×16 layers: fewer, larger products).
const WGRAD_TILED_MIN_PLANE: usize = 1024;
/// Output pixels per tile of the weight gradient (the GEMM's reduction length).
const WGRAD_TILE_PIXELS: usize = 2048;
/// Output planes smaller than this (in pixels) are grouped, whole images, into tiles; larger
/// ones are tiled one image at a time (a 1×1 convolution then needs no unfolding).
const GROUP_BELOW: usize = 256;
/// The same for pointwise (1×1, stride 1) layers, which need no unfolding, no staging and
/// no folding back when a tile lies in one image. ResNet-50's 8×256×14×14 → 1024 layer by
/// one GEMM per image instead of images grouped (alternating runs, 2-core Xeon): forward
/// 6.6 → 4.0 ms, input gradient 7.2 → 4.7 ms, weight gradient 5.8 → 3.9 ms (PyTorch's
/// oneDNN: 3.2 / 4.4 / 3.4 ms).
const POINTWISE_GROUP_BELOW: usize = 64;
/// Fewest pixels a tile aims for, so that each GEMM call's fixed costs are amortised.
const MIN_TILE_PIXELS: usize = 256;
/// Tiles cut from an image are a multiple of this many pixels (but the image's last): the
/// `gemm` crate's AVX-512 micro-kernel runs over 16 pixels at a time, so a 196-pixel tile
/// (ResNet-50's 28×28 maps in four) paid a whole 16-lane pass for its last 4 pixels.
const TILE_MULTIPLE: usize = 16;

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

    fn in_plane(&self) -> usize {
        self.h * self.w
    }

    fn out_plane(&self) -> usize {
        self.oh * self.ow
    }

    /// Output indices `o` whose input index `o·stride + k·dilation − pad` lies in `[0, len)`,
    /// and that input index for `o = 0` (may be negative).
    fn valid(len: usize, out_len: usize, stride: usize, offset: isize) -> (usize, usize, isize) {
        let lo = if offset >= 0 {
            0
        } else {
            ((-offset) as usize).div_ceil(stride)
        };
        let hi = if (len as isize) <= offset {
            0
        } else {
            ((len as isize - offset) as usize).div_ceil(stride)
        };
        let lo = lo.min(out_len);
        (lo, hi.min(out_len).max(lo), offset)
    }

    /// Valid output columns for tap column `kj`: `(lo, hi, input column of output 0)`.
    fn columns(&self, kj: usize) -> (usize, usize, isize) {
        let offset = (kj * self.dilation[1]) as isize - self.pad[1] as isize;
        Self::valid(self.w, self.ow, self.stride[1], offset)
    }

    /// Valid output rows for tap row `ki`: `(lo, hi, input row of output 0)`.
    fn rows(&self, ki: usize) -> (usize, usize, isize) {
        let offset = (ki * self.dilation[0]) as isize - self.pad[0] as isize;
        Self::valid(self.h, self.oh, self.stride[0], offset)
    }
}

/// Whether the image is its own `col` (1×1, stride 1, no padding).
fn pointwise(g: &Geometry) -> bool {
    g.kh == 1 && g.kw == 1 && g.stride == [1, 1] && g.pad == [0, 0] && g.oh == g.h && g.ow == g.w
}

/// How one convolution is computed: which taps take part and how the pixels are tiled.
struct Plan {
    g: Geometry,
    /// `(ki, kj)` of the taps that read the image for at least one output pixel.
    taps: Vec<(usize, usize)>,
    /// Half-open ranges of flattened output pixels `n·OH·OW + oh·OW + ow`.
    tiles: Vec<Range<usize>>,
}

impl Plan {
    /// Tiles whose unfolding holds at most [`COL_BUDGET`] floats.
    fn new(g: &Geometry) -> Self {
        Self::with_tile_pixels(g, |k| COL_BUDGET / k)
    }

    /// Tiles of about `pixels(K)` output pixels (at least [`MIN_TILE_PIXELS`]).
    fn with_tile_pixels(g: &Geometry, pixels: impl Fn(usize) -> usize) -> Self {
        let taps: Vec<(usize, usize)> = (0..g.kh)
            .flat_map(|ki| (0..g.kw).map(move |kj| (ki, kj)))
            .filter(|&(ki, kj)| {
                let (r0, r1, _) = g.rows(ki);
                let (c0, c1, _) = g.columns(kj);
                r0 < r1 && c0 < c1
            })
            .collect();
        let k = g.cpg() * taps.len();
        let plane = g.out_plane();
        let target = pixels(k.max(1)).max(MIN_TILE_PIXELS);
        // Whole images per tile when they are small, else near-equal parts of each image: a
        // tile never holds part of an image and part of another.
        // A pointwise layer reads the image in place when a tile lies in one image, so its
        // images are grouped only when they are tiny.
        let group_below = if pointwise(g) {
            POINTWISE_GROUP_BELOW
        } else {
            GROUP_BELOW
        };
        let tiles = if plane < target && plane < group_below {
            let images = (target / plane).max(1);
            (0..g.n)
                .step_by(images)
                .map(|n| n * plane..(n + images).min(g.n) * plane)
                .collect()
        } else {
            let parts = plane.div_ceil(target);
            let size = plane.div_ceil(parts).next_multiple_of(TILE_MULTIPLE);
            (0..g.n)
                .flat_map(|n| {
                    (0..plane)
                        .step_by(size)
                        .map(move |p| n * plane + p..n * plane + (p + size).min(plane))
                })
                .collect()
        };
        Self { g: *g, taps, tiles }
    }

    /// Rows of `col`: input channels per group × taps taking part.
    fn k(&self) -> usize {
        self.g.cpg() * self.taps.len()
    }

    /// Whether every tap takes part (the weight is used as stored).
    fn all_taps(&self) -> bool {
        self.taps.len() == self.g.kh * self.g.kw
    }

    /// Whether the image is its own `col` (1×1, stride 1, no padding).
    fn pointwise(&self) -> bool {
        pointwise(&self.g)
    }

    /// Whether to spread the tiles over the pool (else: one at a time, each step threaded).
    fn spread(&self) -> bool {
        self.tiles.len() >= 2 * rayon::current_num_threads()
    }

    /// `(image, output row, first column, end column, offset in the tile)` of each row
    /// segment of a tile.
    fn segments(&self, tile: &Range<usize>) -> Vec<(usize, usize, usize, usize, usize)> {
        let (plane, ow) = (self.g.out_plane(), self.g.ow);
        let mut out = Vec::new();
        let mut q = tile.start;
        while q < tile.end {
            let (n, p) = (q / plane, q % plane);
            let (oh, c0) = (p / ow, p % ow);
            let c1 = ow.min(c0 + tile.end - q);
            out.push((n, oh, c0, c1, q - tile.start));
            q += c1 - c0;
        }
        out
    }

    /// The tile's pixels lie in one image: `Some(image, first pixel in it)`.
    fn single_image(&self, tile: &Range<usize>) -> Option<(usize, usize)> {
        let plane = self.g.out_plane();
        let n = tile.start / plane;
        ((tile.end - 1) / plane == n).then_some((n, tile.start % plane))
    }

    /// Calls `f` with the tile's output-side values of group `grp` (`dy`, NCHW) as an
    /// `[opg, P]` operand: read in place when the tile lies in one image, else gathered.
    fn output_tile<R>(
        &self,
        dy: &[f32],
        grp: usize,
        tile: &Range<usize>,
        f: impl FnOnce(Strided<*const f32>) -> R,
    ) -> R {
        let g = &self.g;
        let (opg, plane, p) = (g.opg(), g.out_plane(), tile.len());
        match self.single_image(tile) {
            Some((n, at)) => f(Strided::new_const(
                dy[(n * g.c_out + grp * opg) * plane + at..].as_ptr(),
                plane as isize,
                1,
            )),
            None => with_buffer(&STAGING, opg * p, |staged| {
                self.gather(dy, g.c_out, grp, tile, staged);
                f(Strided::new_const(staged.as_ptr(), p as isize, 1))
            }),
        }
    }

    /// `W_g` restricted to the taps taking part, `[opg, K]` (borrowed when all do).
    fn weight<'a>(&self, weight: &'a [f32], grp: usize) -> std::borrow::Cow<'a, [f32]> {
        let g = &self.g;
        let full = g.cpg() * g.kh * g.kw;
        let w_g = &weight[grp * g.opg() * full..(grp + 1) * g.opg() * full];
        if self.all_taps() {
            return std::borrow::Cow::Borrowed(w_g);
        }
        let mut packed = Vec::with_capacity(g.opg() * self.k());
        for row in w_g.chunks(full) {
            for ci in 0..g.cpg() {
                for &(ki, kj) in &self.taps {
                    packed.push(row[(ci * g.kh + ki) * g.kw + kj]);
                }
            }
        }
        std::borrow::Cow::Owned(packed)
    }

    /// What each tap reads for the tile, the same for every channel: computed once per tile
    /// instead of once per channel and tap (on 4×4–16×16 maps a row is 4–16 pixels, and
    /// working out each row's bounds cost more than copying it).
    fn runs(&self, tile: &Range<usize>) -> TileRuns {
        let g = &self.g;
        let segments = self.segments(tile);
        let [sh, sw] = g.stride;
        let taps = self
            .taps
            .iter()
            .map(|&(ki, kj)| {
                let (_, _, row_offset) = g.rows(ki);
                let (lo, hi, col_offset) = g.columns(kj);
                let mut runs = TapRuns::default();
                for &(n, oh, c0, c1, at) in &segments {
                    let ih = (oh * sh) as isize + row_offset;
                    let (lo, hi) = (lo.clamp(c0, c1), hi.clamp(c0, c1));
                    if ih < 0 || ih >= g.h as isize || lo >= hi {
                        runs.zeros.push(at..at + c1 - c0);
                        continue;
                    }
                    if lo > c0 {
                        runs.zeros.push(at..at + lo - c0);
                    }
                    if hi < c1 {
                        runs.zeros.push(at + hi - c0..at + c1 - c0);
                    }
                    let start = ((lo * sw) as isize + col_offset) as usize;
                    runs.copies.push(Run {
                        at: at + lo - c0,
                        src: n * g.c_in * g.in_plane() + ih as usize * g.w + start,
                        len: hi - lo,
                    });
                }
                runs
            })
            .collect();
        TileRuns {
            taps,
            pixels: tile.len(),
        }
    }

    /// Unfolds a tile's receptive fields (`runs`: [`Plan::runs`] of the tile) of group `grp`,
    /// rows `channels` of `K` (whole input channels), into `col` (`[channels.len() · taps,
    /// P]`).
    fn im2col(
        &self,
        x: &[f32],
        grp: usize,
        runs: &TileRuns,
        channels: Range<usize>,
        col: &mut [f32],
    ) {
        let g = &self.g;
        let p = runs.pixels;
        let sw = g.stride[1];
        for (r, ci) in channels.enumerate() {
            let channel = (grp * g.cpg() + ci) * g.in_plane();
            for (t, tap) in runs.taps.iter().enumerate() {
                let dst_row = &mut col[(r * runs.taps.len() + t) * p..][..p];
                for zero in &tap.zeros {
                    dst_row[zero.clone()].fill(0.0);
                }
                for run in &tap.copies {
                    let dst = &mut dst_row[run.at..run.at + run.len];
                    let src = &x[channel + run.src..];
                    if sw == 1 {
                        copy_short(dst, &src[..run.len]);
                    } else {
                        for (o, d) in dst.iter_mut().enumerate() {
                            *d = src[o * sw];
                        }
                    }
                }
            }
        }
    }

    /// Adds `dcol` (`[channels.len() · taps, P]`, element `(r, q)` at
    /// `r · row_stride + q · pixel_stride`) back into the input gradient of group `grp`,
    /// channels `channels` (the adjoint of [`Plan::im2col`]).
    ///
    /// # Safety
    /// `dx` points to the `[N, C_in, H, W]` gradient, and no other thread writes these
    /// channels of it meanwhile.
    unsafe fn col2im(
        &self,
        dcol: &[f32],
        [row_stride, pixel_stride]: [usize; 2],
        grp: usize,
        tile: &Range<usize>,
        channels: Range<usize>,
        dx: SharedMut,
    ) {
        let g = &self.g;
        let sw = g.stride[1];
        let runs = self.runs(tile);
        for (r, ci) in channels.enumerate() {
            let channel = (grp * g.cpg() + ci) * g.in_plane();
            for (t, tap) in runs.taps.iter().enumerate() {
                let row = (r * runs.taps.len() + t) * row_stride;
                for run in &tap.copies {
                    // SAFETY: part of one row of one channel this caller owns (the contract).
                    let dst = unsafe { dx.slice(channel + run.src, (run.len - 1) * sw + 1) };
                    if pixel_stride == 1 {
                        let src = &dcol[row + run.at..row + run.at + run.len];
                        if sw == 1 {
                            for (d, s) in dst.iter_mut().zip(src) {
                                *d += s;
                            }
                        } else {
                            for (o, s) in src.iter().enumerate() {
                                dst[o * sw] += s;
                            }
                        }
                    } else {
                        for o in 0..run.len {
                            dst[o * sw] += dcol[row + (run.at + o) * pixel_stride];
                        }
                    }
                }
            }
        }
    }

    /// Copies `[opg, P]` of an NCHW tensor with `c` channels (group `grp`) for the tile into
    /// `dst` (for tiles spanning images).
    fn gather(&self, t: &[f32], c: usize, grp: usize, tile: &Range<usize>, dst: &mut [f32]) {
        let (opg, plane, p) = (self.g.opg(), self.g.out_plane(), tile.len());
        for (n, oh, c0, c1, at) in self.segments(tile) {
            for co in 0..opg {
                let src = (n * c + grp * opg + co) * plane + oh * self.g.ow;
                dst[co * p + at..co * p + at + c1 - c0].copy_from_slice(&t[src + c0..src + c1]);
            }
        }
    }
}

/// `len` input values from `src` (plus the channel's plane offset) to tile position `at` of
/// one tap's row of `col`.
struct Run {
    at: usize,
    src: usize,
    len: usize,
}

/// What every tap of a tile reads ([`Plan::runs`]).
struct TileRuns {
    taps: Vec<TapRuns>,
    /// The tile's length, `P`.
    pixels: usize,
}

/// One tap's [`Run`]s for a tile, and the tile positions it leaves zero (padding).
#[derive(Default)]
struct TapRuns {
    copies: Vec<Run>,
    zeros: Vec<Range<usize>>,
}

/// `dst.copy_from_slice(src)` without a `memcpy` call for the few floats of a small map's
/// row.
fn copy_short(dst: &mut [f32], src: &[f32]) {
    if dst.len() <= 16 {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    } else {
        dst.copy_from_slice(src);
    }
}

/// Whole input channels of one group, split into `parts` nearly equal ranges.
fn channel_slabs(channels: usize, parts: usize) -> Vec<Range<usize>> {
    let per = channels.div_ceil(parts.max(1)).max(1);
    (0..channels)
        .step_by(per)
        .map(|c| c..(c + per).min(channels))
        .collect()
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static STAGING: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer (`which`) of at least `len` floats (contents
/// arbitrary). Not re-entrant per buffer: callers hold no other borrow of it meanwhile.
fn with_buffer<R>(
    which: &'static std::thread::LocalKey<RefCell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    which.with(|cell| {
        let mut buf = cell.borrow_mut();
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        f(&mut buf[..len])
    })
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

    /// `len` floats from `offset`.
    ///
    /// # Safety
    /// The range is within the allocation and no other live reference covers it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice(&self, offset: usize, len: usize) -> &mut [f32] {
        // SAFETY: per the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(offset), len) }
    }
}

/// What is applied to each output value right after its tile is computed (while it is in
/// cache): `y · scale[co] + shift[co]`, `+ residual` (same shape as the output), ReLU.
pub(crate) struct Epilogue<'a> {
    pub scale: &'a [f32],
    pub shift: &'a [f32],
    pub residual: Option<&'a [f32]>,
    pub relu: bool,
}

impl Epilogue<'_> {
    /// Applies the epilogue to `out`, values of output channel `co` that start `offset`
    /// values into the output (where the residual's are read).
    fn apply_to(&self, co: usize, offset: usize, out: &mut [f32]) {
        let (a, b) = (self.scale[co], self.shift[co]);
        match self.residual {
            Some(r) => {
                let r = &r[offset..offset + out.len()];
                for (v, &r) in out.iter_mut().zip(r) {
                    *v = *v * a + b + r;
                }
            }
            None => out.iter_mut().for_each(|v| *v = *v * a + b),
        }
        if self.relu {
            out.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }

    /// Applies the epilogue to the tile's pixels of group `grp`'s channels, the channels
    /// spread over the pool when `parallel`.
    ///
    /// # Safety
    /// Those values are written by no one else meanwhile.
    unsafe fn apply(
        &self,
        g: &Geometry,
        dst: SharedMut,
        grp: usize,
        tile: &Range<usize>,
        parallel: bool,
    ) {
        let (opg, plane) = (g.opg(), g.out_plane());
        let mut q = tile.start;
        while q < tile.end {
            let n = q / plane;
            let end = tile.end.min((n + 1) * plane);
            let channel = |co: usize| {
                let offset = (n * g.c_out + co) * plane + q - n * plane;
                // SAFETY: per the contract; each channel's segment is written once.
                self.apply_to(co, offset, unsafe { dst.slice(offset, end - q) });
            };
            let channels = grp * opg..(grp + 1) * opg;
            if parallel {
                channels.into_par_iter().for_each(channel);
            } else {
                channels.for_each(channel);
            }
            q = end;
        }
    }
}

/// Convolution forward: `out[n, co, oh, ow] = bias[co] + Σ x · w`, then the epilogue if any.
///
/// `x`: `[N, C_in, H, W]`, `weight`: `[C_out, C_in/groups, KH, KW]`, `bias`: `[C_out]`;
/// returns `[N, C_out, OH, OW]`, all contiguous.
pub(crate) fn forward(
    g: &Geometry,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    epilogue: Option<&Epilogue>,
) -> Vec<f32> {
    if direct(g) {
        return forward_direct(g, x, weight, false, bias, epilogue);
    }
    let plan = Plan::new(g);
    let (k, opg, plane) = (plan.k(), g.opg(), g.out_plane());
    let len = g.n * g.c_out * plane;
    if shifted_forward(g) || k == 0 {
        // Every tap adds into the whole output: it starts as the bias.
        let mut out = vec![0.0f32; len];
        if let Some(bias) = bias {
            for (channel, b) in out.chunks_mut(plane).zip(bias.iter().cycle()) {
                channel.fill(*b);
            }
        }
        if k > 0 {
            forward_shifted_tiled(g, x, weight, &mut out, epilogue, forward_tile_rows(g));
        } else if let Some(e) = epilogue {
            let dst = SharedMut(out.as_mut_ptr());
            for grp in 0..g.groups {
                // SAFETY: nothing else touches `out`.
                unsafe { e.apply(g, dst, grp, &(0..g.n * plane), true) };
            }
        }
        return out;
    }
    // Each tile's GEMM writes its pixels once (on top of the bias where there is one), so
    // the output is not zeroed first: on ResNet-50's 25 MB activations the zeroing and the
    // GEMM's read of the zeros were a third of the traffic.
    let mut out = uninit::<f32>(len);
    let dst = SharedMut(out.as_mut_ptr().cast());
    let weights: Vec<_> = (0..g.groups).map(|grp| plan.weight(weight, grp)).collect();
    // One tile of one group; `spread`: called from a pool task (serial GEMM, serial unfold).
    let run = |grp: usize, tile: &Range<usize>, spread: bool| {
        let p = tile.len();
        let par = if spread { Parallel::No } else { Parallel::Yes };
        let lhs = Strided::new_const(weights[grp].as_ptr(), k as isize, 1);
        let product = |rhs: Strided<*const f32>| {
            match plan.single_image(tile) {
                // SAFETY: this tile's pixels of this group's channels are written by this
                // call only, inside `out`; the operands are [opg, k] and [k, p].
                Some((n, at)) => unsafe {
                    let first = (n * g.c_out + grp * opg) * plane + at;
                    if let Some(bias) = bias {
                        for co in 0..opg {
                            let row = std::slice::from_raw_parts_mut(
                                dst.at(first + co * plane).cast::<MaybeUninit<f32>>(),
                                p,
                            );
                            row.fill(MaybeUninit::new(bias[grp * opg + co]));
                        }
                    }
                    let d = Strided::new(dst.at(first), plane as isize, 1);
                    // Without a bias the product overwrites (the destination is not read).
                    gemm(opg, p, k, d, bias.is_some(), lhs, rhs, par);
                },
                None => with_buffer(&STAGING, opg * p, |staged| {
                    for (co, row) in staged.chunks_mut(p).enumerate() {
                        row.fill(bias.map_or(0.0, |b| b[grp * opg + co]));
                    }
                    // SAFETY: `staged` holds [opg, p].
                    unsafe {
                        gemm(
                            opg,
                            p,
                            k,
                            Strided::new(staged.as_mut_ptr(), p as isize, 1),
                            true,
                            lhs,
                            rhs,
                            par,
                        )
                    };
                    // SAFETY: as above, the tile's pixels of this group are this call's.
                    unsafe { scatter(&plan, staged, dst, grp, tile) };
                }),
            }
        };
        let in_place = plan.pointwise() && plan.single_image(tile).is_some();
        if !spread && !in_place && split_reduction(g) {
            let bias = bias.map(|b| &b[grp * opg..(grp + 1) * opg]);
            // SAFETY: the tile's pixels of this group are this call's.
            unsafe { forward_split_k(&plan, x, &weights[grp], grp, tile, bias, dst) };
        } else if in_place {
            let (n, at) = plan.single_image(tile).expect("checked");
            let image = &x[(n * g.c_in + grp * g.cpg()) * g.in_plane() + at..];
            product(Strided::new_const(image.as_ptr(), g.in_plane() as isize, 1));
        } else {
            with_buffer(&SCRATCH, k * p, |col| {
                unfold(&plan, x, grp, tile, col, spread);
                product(Strided::new_const(col.as_ptr(), p as isize, 1));
            });
        }
        if let Some(e) = epilogue {
            // SAFETY: this tile's pixels of this group's channels are this call's.
            unsafe { e.apply(g, dst, grp, tile, !spread) };
        }
    };
    let jobs: Vec<(usize, &Range<usize>)> = (0..g.groups)
        .flat_map(|grp| plan.tiles.iter().map(move |t| (grp, t)))
        .collect();
    if plan.spread() || jobs.len() >= 2 * rayon::current_num_threads() {
        jobs.par_iter()
            .for_each(|&(grp, tile)| run(grp, tile, true));
    } else {
        jobs.iter().for_each(|&(grp, tile)| run(grp, tile, false));
    }
    // SAFETY: every element has been written: the tiles cover every pixel of every group.
    unsafe { assume_init(out) }
}

/// Whether a tile too large for one thread alone (the tiles are few) splits its reduction
/// over the pool, each thread unfolding its own input channels, rather than unfolding
/// together and splitting the product's rows, where every thread packs the whole unfolded
/// tile for itself.
fn split_reduction(g: &Geometry) -> bool {
    let threads = rayon::current_num_threads();
    threads > 1 && g.cpg() >= 2 * threads
}

/// [`forward`] of one tile with its reduction split over the pool: each thread unfolds its
/// own input channels, a cache-sized slab at a time, and sums their products into a partial
/// `[opg, P]`; the partials are added in a fixed order, with the bias, and written out.
/// Every unfolded slab is then packed once by the GEMM, by the thread that unfolded it, while
/// it is in that thread's cache. (The deep layers' tiles hold all their pixels, few, against
/// a long reduction: 4×768×8×8 → 256 unfolds 7 MB, which each thread packed whole for its
/// half of the output rows.)
///
/// # Safety
/// The tile's pixels of group `grp`'s channels are written by no one else meanwhile; `w` is
/// the group's `[opg, K]` weight ([`Plan::weight`]), `bias` its `[opg]` bias.
unsafe fn forward_split_k(
    plan: &Plan,
    x: &[f32],
    w: &[f32],
    grp: usize,
    tile: &Range<usize>,
    bias: Option<&[f32]>,
    dst: SharedMut,
) {
    let g = &plan.g;
    let (k, opg, taps, p) = (plan.k(), g.opg(), plan.taps.len(), tile.len());
    let runs = plan.runs(tile);
    let per_slab = (COL_BUDGET / (taps * p)).max(1);
    let mut partials: Vec<Vec<f32>> = channel_slabs(g.cpg(), rayon::current_num_threads())
        .into_par_iter()
        .map(|part| {
            let mut acc = vec![0.0f32; opg * p];
            for c0 in part.clone().step_by(per_slab) {
                let slab = c0..(c0 + per_slab).min(part.end);
                let rows = slab.len() * taps;
                with_buffer(&SCRATCH, rows * p, |col| {
                    plan.im2col(x, grp, &runs, slab.clone(), col);
                    // SAFETY: `acc` is [opg, p]; the operands are W's columns of the slab,
                    // [opg, rows] (row stride k), and `col`, [rows, p].
                    unsafe {
                        gemm(
                            opg,
                            p,
                            rows,
                            Strided::new(acc.as_mut_ptr(), p as isize, 1),
                            true,
                            Strided::new_const(w[slab.start * taps..].as_ptr(), k as isize, 1),
                            Strided::new_const(col.as_ptr(), p as isize, 1),
                            Parallel::No,
                        )
                    };
                });
            }
            acc
        })
        .collect();
    let (sum, rest) = partials.split_first_mut().expect("at least one slab");
    for part in rest {
        sum.iter_mut().zip(part.iter()).for_each(|(a, b)| *a += b);
    }
    if let Some(bias) = bias {
        for (row, b) in sum.chunks_mut(p).zip(bias) {
            row.iter_mut().for_each(|v| *v += b);
        }
    }
    // SAFETY: per the contract.
    unsafe { scatter(plan, sum, dst, grp, tile) };
}

/// Whether [`forward`] takes [`forward_shifted_tiled`]: a [`shifted`] convolution that is
/// not pointwise (a 1×1 layer reads the image as it is anyway), on planes of at least
/// [`WGRAD_TILED_MIN_PLANE`] pixels, with few output channels or few input channels per
/// group (≤ 64 / ≤ 32). Wide layers keep im2col: one GEMM with the 9·C_in-deep reduction
/// beats nine C_in-deep ones there (2×256×64×64 → 256, quiet machine: forward 50.9 ms by
/// im2col against 56.3 ms tiled, input gradient 45.1 against 61.6 ms), while on the U-Net's
/// narrow layers unfolding 9× the input is what costs.
fn shifted_forward(g: &Geometry) -> bool {
    shifted(g)
        && g.kh * g.kw > 1
        && g.out_plane() >= WGRAD_TILED_MIN_PLANE
        && (g.opg() <= 64 || g.cpg() <= 32)
}

/// Tiles of `tile_rows` output rows (the last one shorter).
fn row_tiles(g: &Geometry, tile_rows: usize) -> impl Iterator<Item = Range<usize>> + '_ {
    (0..g.oh)
        .step_by(tile_rows)
        .map(move |r| r..(r + tile_rows).min(g.oh))
}

/// The input rows any tap of the output rows `rows` reads, as `(start, length)` in the
/// flattened plane of a [`shifted`] convolution.
fn input_span(g: &Geometry, rows: &Range<usize>) -> (usize, usize) {
    let lo = (rows.start as isize - g.pad[0] as isize).max(0) as usize;
    let hi = ((rows.end - 1 + (g.kh - 1) * g.dilation[0]) as isize - g.pad[0] as isize + 1)
        .clamp(0, g.h as isize) as usize;
    (lo * g.w, hi.max(lo) * g.w - lo * g.w)
}

/// Output rows per tile of [`forward_shifted_tiled`]: about [`WGRAD_TILE_FLOATS`] input
/// floats per tile.
fn forward_tile_rows(g: &Geometry) -> usize {
    (WGRAD_TILE_FLOATS / (g.cpg() * g.w).max(1)).clamp(1, g.oh)
}

/// [`forward`] of a [`shifted`] convolution without unfolding (and, with the kernel flipped
/// and transposed, its input gradient): for each tile of `tile_rows` output rows of one
/// image and each tap, `out[:, p] += W[:, :, ki, kj] · X[:, p + offset]`, a GEMM over the
/// image as stored (columns that a tap would read across a row's end are zeroed in a copy
/// of the tile's rows, made once per tap column), then the epilogue while the tile is in
/// cache. `out` holds the bias (or zeros).
///
/// Measured against the im2col path on the U-Net step's layers (busy 2-core AVX-512 Xeon,
/// alternating runs): forward 4×32×128×128 → 16 14–17 → 8–11 ms, head (→ 2) 3 → 1.5 ms;
/// input gradient 4×128×64×64 → 32 21–31 → 11–15 ms, 4×32×128×128 → 16 11–15 → 8 ms; the
/// 2×256×64×64 → 256 layer unchanged.
fn forward_shifted_tiled(
    g: &Geometry,
    x: &[f32],
    weight: &[f32],
    out: &mut [f32],
    epilogue: Option<&Epilogue>,
    tile_rows: usize,
) {
    let (opg, cpg, plane, full) = (g.opg(), g.cpg(), g.out_plane(), g.cpg() * g.kh * g.kw);
    let dst = SharedMut(out.as_mut_ptr());
    let jobs: Vec<(usize, usize, Range<usize>)> = (0..g.n)
        .flat_map(|n| {
            (0..g.groups)
                .flat_map(move |grp| row_tiles(g, tile_rows).map(move |rows| (n, grp, rows)))
        })
        .collect();
    jobs.par_iter().for_each(|(n, grp, rows)| {
        let (n, grp) = (*n, *grp);
        let x_g = &x[(n * g.c_in + grp * cpg) * g.in_plane()..][..cpg * g.in_plane()];
        let (ext_at, ext_len) = input_span(g, rows);
        for kj in 0..g.kw {
            let dc = (kj * g.dilation[1]) as isize - g.pad[1] as isize;
            let masked = dc != 0;
            with_buffer(&SCRATCH, if masked { cpg * ext_len } else { 0 }, |copy| {
                if masked {
                    // Input columns this tap reads only across a row's end.
                    let zero = if dc > 0 {
                        0..(dc as usize).min(g.w)
                    } else {
                        g.w.saturating_sub((-dc) as usize)..g.w
                    };
                    for (ci, row) in copy.chunks_mut(ext_len).enumerate() {
                        row.copy_from_slice(&x_g[ci * g.in_plane() + ext_at..][..ext_len]);
                        for line in row.chunks_mut(g.w) {
                            line[zero.clone()].fill(0.0);
                        }
                    }
                }
                for ki in 0..g.kh {
                    let Some(span) = TapSpan::within(g, ki, kj, rows.clone()) else {
                        continue;
                    };
                    let read = (span.p0 as isize + span.offset) as usize;
                    let rhs = if masked {
                        Strided::new_const(copy[read - ext_at..].as_ptr(), ext_len as isize, 1)
                    } else {
                        Strided::new_const(x_g[read..].as_ptr(), g.in_plane() as isize, 1)
                    };
                    let lhs = Strided::new_const(
                        weight[grp * opg * full + ki * g.kw + kj..].as_ptr(),
                        full as isize,
                        (g.kh * g.kw) as isize,
                    );
                    // SAFETY: this job alone writes its tile's rows of its group's channels of
                    // image n; destination [opg, len] (row stride `plane`), operands [opg, cpg]
                    // and [cpg, len].
                    unsafe {
                        let out = Strided::new(
                            dst.at((n * g.c_out + grp * opg) * plane + span.p0),
                            plane as isize,
                            1,
                        );
                        gemm(opg, span.len(), cpg, out, true, lhs, rhs, Parallel::No);
                    }
                }
            });
        }
        if let Some(e) = epilogue {
            let tile = n * plane + rows.start * g.ow..n * plane + rows.end * g.ow;
            // SAFETY: this job's pixels of this group's channels are its own.
            unsafe { e.apply(g, dst, grp, &tile, false) };
        }
    });
}

/// Writes a staged `[opg, P]` tile back into the NCHW output.
///
/// # Safety
/// The tile's pixels of group `grp`'s channels are written by no one else meanwhile.
unsafe fn scatter(plan: &Plan, staged: &[f32], dst: SharedMut, grp: usize, tile: &Range<usize>) {
    let g = &plan.g;
    let (opg, plane, p) = (g.opg(), g.out_plane(), tile.len());
    for (n, oh, c0, c1, at) in plan.segments(tile) {
        for co in 0..opg {
            let offset = (n * g.c_out + grp * opg + co) * plane + oh * g.ow + c0;
            let src = &staged[co * p + at..co * p + at + c1 - c0];
            // SAFETY: per the contract (the destination may not be initialised yet: written
            // through the raw pointer, never read).
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.at(offset), src.len()) };
        }
    }
}

/// [`Plan::im2col`] of all channels of a group, split over the pool unless `spread`.
fn unfold(plan: &Plan, x: &[f32], grp: usize, tile: &Range<usize>, col: &mut [f32], spread: bool) {
    let cpg = plan.g.cpg();
    let runs = plan.runs(tile);
    if spread || cpg < 2 {
        plan.im2col(x, grp, &runs, 0..cpg, col);
        return;
    }
    let rows_per_channel = plan.taps.len() * tile.len();
    let slabs = channel_slabs(cpg, rayon::current_num_threads());
    let mut parts: Vec<(&Range<usize>, &mut [f32])> = Vec::new();
    let mut rest = col;
    for slab in &slabs {
        let (head, tail) = rest.split_at_mut(slab.len() * rows_per_channel);
        parts.push((slab, head));
        rest = tail;
    }
    parts
        .into_par_iter()
        .for_each(|(slab, part)| plan.im2col(x, grp, &runs, slab.clone(), part));
}

/// Input-gradient tiles of at most this many pixels compute `dcol` column-major. With so
/// few pixels, the GEMM of a row-major `dcol` (which it computes transposed) does not pack
/// `Wᵀ` and reads a row of it `K` floats apart at every step of the reduction, from memory
/// when the backward reaches a deep layer; a column-major `dcol` keeps `Wᵀ` the left
/// operand, packed from contiguous runs of each weight column. In the U-Net(resnet18) step
/// (2-core Xeon) the input gradients of 4×512×4×4 → 512 went 13.0–14.2 → 7.2–9.5 ms (three
/// layers) and of 4×256×8×8 → 512 (stride 2) 2.7–3.1 → 1.6–2.1 ms; at 256 pixels (4×256×8×8
/// → 256, 4×768×8×8 → 256) it was no faster.
const COLUMN_MAJOR_MAX_PIXELS: usize = 128;

/// Gradient of the input: `dx = col2im(Wᵀ · dy)`.
///
/// `dy`: `[N, C_out, OH, OW]`; returns `[N, C_in, H, W]`.
pub(crate) fn input_grad(g: &Geometry, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    if let Some(t) = transposed(g).filter(direct) {
        // Stride 1: the forward of dy with the kernel flipped and its channel axes swapped.
        return forward_direct(&t, dy, weight, true, None, None);
    }
    let plan = Plan::new(g);
    if let Some(t) = transposed(g).filter(shifted_forward) {
        // A "same" stride-1 convolution's input gradient is the "same" convolution of dy
        // with the kernel flipped and its channel axes swapped (per group).
        let mut dx = vec![0.0f32; g.n * g.c_in * g.in_plane()];
        let flipped = flip_transpose(g, weight);
        forward_shifted_tiled(&t, dy, &flipped, &mut dx, None, forward_tile_rows(&t));
        return dx;
    }
    let (k, opg, cpg) = (plan.k(), g.opg(), g.cpg());
    let len = g.n * g.c_in * g.in_plane();
    // A pointwise layer whose tiles each lie in one image writes every value of dx once
    // (below); other layers add their tiles' columns into zeros.
    let written_once =
        plan.pointwise() && k > 0 && plan.tiles.iter().all(|t| plan.single_image(t).is_some());
    let mut dx = if written_once {
        uninit::<f32>(len)
    } else {
        vec![MaybeUninit::new(0.0f32); len]
    };
    if k == 0 {
        // SAFETY: zeroed.
        return unsafe { assume_init(dx) };
    }
    let out = SharedMut(dx.as_mut_ptr().cast());
    let taps = plan.taps.len();
    for grp in 0..g.groups {
        let w_g = plan.weight(weight, grp);
        // One tile; the rows `channels` of `K` (whole input channels) only.
        let run = |tile: &Range<usize>, channels: Range<usize>, par: Parallel| {
            let p = tile.len();
            let m = channels.len() * taps;
            let w_t = Strided::new_const(w_g[channels.start * taps..].as_ptr(), 1, k as isize);
            if let (true, Some((n, at))) = (plan.pointwise(), plan.single_image(tile)) {
                // The product is the tile's input gradient itself: written in place.
                let first = (n * g.c_in + grp * cpg + channels.start) * g.in_plane() + at;
                let rhs = Strided::new_const(
                    dy[(n * g.c_out + grp * opg) * g.out_plane() + at..].as_ptr(),
                    g.out_plane() as isize,
                    1,
                );
                // SAFETY: these channels of this tile's pixels are this call's; operands
                // [m, opg] and [opg, p].
                unsafe {
                    let d = Strided::new(out.at(first), g.in_plane() as isize, 1);
                    gemm(m, p, opg, d, false, w_t, rhs, par);
                }
                return;
            }
            let product = |rhs: Strided<*const f32>| {
                with_buffer(&SCRATCH, m * p, |dcol| {
                    // `dcol` is [m, p], stored column-major for a narrow product (see
                    // `COLUMN_MAJOR_MAX_PIXELS`).
                    let strides = if p <= COLUMN_MAJOR_MAX_PIXELS {
                        [1, m]
                    } else {
                        [p, 1]
                    };
                    // SAFETY: `dcol` holds [m, p]; Wᵀ rows `channels` are [m, opg].
                    unsafe {
                        gemm(
                            m,
                            p,
                            opg,
                            Strided::new(
                                dcol.as_mut_ptr(),
                                strides[0] as isize,
                                strides[1] as isize,
                            ),
                            false,
                            w_t,
                            rhs,
                            par,
                        )
                    };
                    // SAFETY: this call alone adds into these channels (tiles of one group
                    // run one after another, or on disjoint channel slabs).
                    unsafe { plan.col2im(dcol, strides, grp, tile, channels.clone(), out) };
                })
            };
            plan.output_tile(dy, grp, tile, product);
        };
        let threads = rayon::current_num_threads();
        if plan.tiles.len() >= 2 * threads && g.n >= threads {
            // Images apart: a tile never straddles two images' tasks' rows, and col2im
            // writes only its own image (tiles are grouped by image).
            let by_image = tiles_by_image(&plan);
            by_image.par_iter().for_each(|tiles| {
                for tile in tiles {
                    run(tile, 0..cpg, Parallel::No);
                }
            });
        } else {
            // Input channels apart: each slab computes its own rows of dcol and folds them.
            let slabs = channel_slabs(cpg, threads);
            for tile in &plan.tiles {
                if slabs.len() > 1 {
                    slabs
                        .par_iter()
                        .for_each(|slab| run(tile, slab.clone(), Parallel::No));
                } else {
                    run(tile, 0..cpg, Parallel::Yes);
                }
            }
        }
    }
    // SAFETY: every element is written (zeroed first unless `written_once`).
    unsafe { assume_init(dx) }
}

/// The geometry of the convolution whose forward is `g`'s input gradient when `g` is stride
/// 1: input and output channels swapped, padding `(k − 1)·dilation − pad`; `None` if that
/// padding would be negative.
fn transposed(g: &Geometry) -> Option<Geometry> {
    let pad = |k: usize, d: usize, p: usize| ((k - 1) * d).checked_sub(p);
    Some(Geometry {
        c_in: g.c_out,
        c_out: g.c_in,
        h: g.oh,
        w: g.ow,
        oh: g.h,
        ow: g.w,
        pad: [
            pad(g.kh, g.dilation[0], g.pad[0])?,
            pad(g.kw, g.dilation[1], g.pad[1])?,
        ],
        ..*g
    })
}

/// `W'[g·cpg + ci, co, i, j] = W[g·opg + co, ci, KH−1−i, KW−1−j]`: the kernel of
/// [`transposed`]`(g)`, `[C_in, C_out/groups, KH, KW]`.
fn flip_transpose(g: &Geometry, weight: &[f32]) -> Vec<f32> {
    let (opg, cpg, taps) = (g.opg(), g.cpg(), g.kh * g.kw);
    let mut out = vec![0.0f32; g.c_in * opg * taps];
    for grp in 0..g.groups {
        for co in 0..opg {
            for ci in 0..cpg {
                let src = &weight[((grp * opg + co) * cpg + ci) * taps..][..taps];
                let dst = &mut out[((grp * cpg + ci) * opg + co) * taps..][..taps];
                for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                    *d = *s;
                }
            }
        }
    }
    out
}

/// Tiles grouped by the image they write (a tile of several whole images is a group of its
/// own), so that groups never touch the same image.
fn tiles_by_image(plan: &Plan) -> Vec<Vec<Range<usize>>> {
    let plane = plan.g.out_plane();
    let mut groups: Vec<Vec<Range<usize>>> = Vec::new();
    let mut last_image = None;
    for tile in &plan.tiles {
        match groups.last_mut() {
            Some(group) if last_image == Some(tile.start / plane) => group.push(tile.clone()),
            _ => groups.push(vec![tile.clone()]),
        }
        last_image = Some(tile.start / plane);
    }
    groups
}

/// Gradient of the weight: `dW = Σ over tiles of dy · colᵀ`.
///
/// `x`: `[N, C_in, H, W]`, `dy`: `[N, C_out, OH, OW]`; returns `[C_out, C_in/groups, KH, KW]`.
///
/// "Same" stride-1 layers with a spatial kernel on planes of at least
/// [`WGRAD_TILED_MIN_PLANE`] pixels take [`weight_grad_shifted_tiled`]. Every other layer is
/// unfolded, the images of a small map together, so that the GEMM's reduction runs over all
/// their pixels and its product is written once, in dW's stored layout; a 1×1 layer reads
/// its image in place (ResNet-50's 8×256×56×56 → 64 took 11.6 ms by row tiles transposed
/// pixel-major, 4.9–5.7 ms so; 8×64×56×56 → 256 4.5 → 3.1–3.4 ms). (One GEMM per tap and
/// image, as the shifted layers of small maps were computed before, reduced over 16 pixels
/// on a 4×4 map and wrote dW at a stride of 9 floats: 4×512×4×4 → 512 took 10.1 ms alone
/// and 25–30 ms inside the U-Net step, against 2.6 ms now; PyTorch's oneDNN takes 12.7 ms.)
pub(crate) fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if direct::weight_grad_applies(g) {
        return direct::weight_grad(g, x, dy);
    }
    if shifted(g) && !pointwise(g) && g.out_plane() >= WGRAD_TILED_MIN_PLANE {
        let rows = (WGRAD_TILE_FLOATS / (g.cpg() * g.w).max(1)).clamp(1, g.oh);
        return weight_grad_shifted_tiled(g, x, dy, rows);
    }
    // The GEMM's reduction runs over a tile's pixels: long tiles (whole images together
    // when they are small), unfolded a few input channels at a time so that each slab of
    // `col` and its block of dW stay in cache.
    let plan = Plan::with_tile_pixels(g, |_| WGRAD_TILE_PIXELS);
    let (k, opg, cpg) = (plan.k(), g.opg(), g.cpg());
    let full = cpg * g.kh * g.kw;
    if k == 0 {
        return vec![0.0f32; g.c_out * full];
    }
    // The first tile's products write every value of `[opg, K]` rather than adding into
    // zeros (a 512 → 512 3×3 layer's dW and each per-thread partial are 9.4 MB, zeroed and
    // then read back by the GEMM): dW itself is zeroed only where taps that read only
    // padding leave it so. 4×512×4×4 → 512 went 2.1 → 1.6 ms alone, the U-Net(resnet18)
    // step's weight gradients 80–83 → 66–67 ms (2-core Xeon, alternating runs).
    let mut dw = if plan.all_taps() {
        uninit::<f32>(g.c_out * full)
    } else {
        vec![MaybeUninit::new(0.0f32); g.c_out * full]
    };
    let taps = plan.taps.len();
    // Without taps that read only padding, `[opg, K]` is the group's block of dW as stored.
    let mut packed = if plan.all_taps() {
        Vec::new()
    } else {
        uninit::<f32>(opg * k)
    };
    for grp in 0..g.groups {
        // dW_g over the taps taking part: [opg, k].
        let dw_g: &mut [MaybeUninit<f32>] = if plan.all_taps() {
            &mut dw[grp * opg * full..(grp + 1) * opg * full]
        } else {
            &mut packed
        };
        // Adds one tile's product for K rows `channels` into `part` ([opg, k] with row stride
        // k), or writes it there when `first`.
        let accumulate = |part: SharedMut,
                          tile: &Range<usize>,
                          channels: Range<usize>,
                          spread: bool,
                          first: bool| {
            let p = tile.len();
            let par = if spread { Parallel::No } else { Parallel::Yes };
            let slab = (COL_BUDGET / (taps * p)).max(1);
            let runs = plan.runs(tile);
            let product = |lhs: Strided<*const f32>| {
                for c0 in channels.clone().step_by(slab) {
                    let sub = c0..(c0 + slab).min(channels.end);
                    let n_cols = sub.len() * taps;
                    // SAFETY: columns `channels` of `part` are this call's.
                    let dst = Strided::new(unsafe { part.at(sub.start * taps) }, k as isize, 1);
                    if let (true, Some((n, at))) = (plan.pointwise(), plan.single_image(tile)) {
                        // The image is its own `col`: read in place.
                        let start = (n * g.c_in + grp * cpg + sub.start) * g.in_plane() + at;
                        let rhs = Strided::new_const(x[start..].as_ptr(), 1, g.in_plane() as isize);
                        // SAFETY: as below.
                        unsafe { gemm(opg, n_cols, p, dst, !first, lhs, rhs, par) };
                        continue;
                    }
                    with_buffer(&SCRATCH, n_cols * p, |col| {
                        plan.im2col(x, grp, &runs, sub, col);
                        let rhs = Strided::new_const(col.as_ptr(), 1, p as isize);
                        // SAFETY: [opg, n_cols] destination; [opg, p] and [p, n_cols]
                        // operands.
                        unsafe { gemm(opg, n_cols, p, dst, !first, lhs, rhs, par) };
                    })
                }
            };
            plan.output_tile(dy, grp, tile, product);
        };
        let threads = rayon::current_num_threads();
        if plan.spread() {
            // One partial gradient per thread, summed in chunk order (independent of scheduling).
            let per_thread = plan.tiles.len().div_ceil(threads);
            let partials: Vec<Vec<f32>> = plan
                .tiles
                .par_chunks(per_thread)
                .map(|chunk| {
                    let mut part = uninit::<f32>(opg * k);
                    let ptr = SharedMut(part.as_mut_ptr().cast());
                    for (i, t) in chunk.iter().enumerate() {
                        accumulate(ptr, t, 0..cpg, true, i == 0);
                    }
                    // SAFETY: the chunk's first tile wrote every value.
                    unsafe { assume_init(part) }
                })
                .collect();
            // Summed in chunk order, then written from zero (the sums a zeroed dW would hold,
            // to the bit).
            let mut partials = partials.into_iter();
            let mut total = partials.next().expect("at least one tile");
            for part in partials {
                total.iter_mut().zip(&part).for_each(|(a, b)| *a += b);
            }
            for (a, &b) in dw_g.iter_mut().zip(&total) {
                a.write(0.0 + b);
            }
        } else {
            // Input channels apart: each slab owns its columns of dW for the whole reduction.
            let slabs = channel_slabs(cpg, threads);
            let ptr = SharedMut(dw_g.as_mut_ptr().cast());
            for (i, tile) in plan.tiles.iter().enumerate() {
                if slabs.len() > 1 {
                    slabs
                        .par_iter()
                        .for_each(|slab| accumulate(ptr, tile, slab.clone(), true, i == 0));
                } else {
                    accumulate(ptr, tile, 0..cpg, false, i == 0);
                }
            }
        }
        if !plan.all_taps() {
            // Back to the stored layout (zeros stay for the taps that read only padding).
            let dst = &mut dw[grp * opg * full..(grp + 1) * opg * full];
            for (row, src) in dst.chunks_mut(full).zip(packed.chunks(k)) {
                for ci in 0..cpg {
                    for (t, &(ki, kj)) in plan.taps.iter().enumerate() {
                        // SAFETY: the tiles' products wrote every value of `packed`.
                        row[(ci * g.kh + ki) * g.kw + kj] =
                            MaybeUninit::new(unsafe { src[ci * taps + t].assume_init() });
                    }
                }
            }
        }
    }
    // SAFETY: every value of dW was written: by the first tile's products where every tap
    // takes part, else zeroed and then copied out of `packed` for the taps that do.
    unsafe { assume_init(dw) }
}

/// Whether the convolution is stride 1 with an output the input's size (3×3 "same", atrous
/// with padding = dilation, 1×1): then, in the flattened planes, tap `(ki, kj)` links output
/// pixel `p` to input pixel `p + offset(ki, kj)`, and a tile of rows needs no unfolding: one
/// GEMM per tap over the image as stored ([`forward_shifted_tiled`],
/// [`weight_grad_shifted_tiled`]). Output pixels whose column the tap maps outside the image
/// would read the neighbouring row instead; their values are zeroed in a copy.
fn shifted(g: &Geometry) -> bool {
    g.stride == [1, 1] && g.oh == g.h && g.ow == g.w
}

/// The span of one tap in the flattened planes: output pixels `p0..p1` (from the first valid
/// row and column to the last), `p + offset` in the input. Output pixels of the span whose
/// column the tap maps outside the image read a neighbouring row; the callers zero them.
struct TapSpan {
    p0: usize,
    p1: usize,
    offset: isize,
}

impl TapSpan {
    /// The span of the tap restricted to output rows `rows`.
    fn within(g: &Geometry, ki: usize, kj: usize, rows: Range<usize>) -> Option<Self> {
        let (r0, r1, dr) = g.rows(ki);
        let (r0, r1) = (r0.max(rows.start), r1.min(rows.end));
        let (c0, c1, dc) = g.columns(kj);
        (r0 < r1 && c0 < c1).then(|| Self {
            p0: r0 * g.w + c0,
            p1: (r1 - 1) * g.w + c1,
            offset: dr * g.w as isize + dc,
        })
    }

    fn len(&self) -> usize {
        self.p1 - self.p0
    }
}

/// [`weight_grad`] of a [`shifted`] convolution, by tiles of `tile_rows` output rows of one
/// image: every tap's GEMM of a tile (`dW[:, :, ki, kj] += dY_tile · X[:, p + offset]ᵀ`)
/// runs while the tile's input rows are in cache. Tiles are spread over the pool, each
/// thread summing into a partial gradient of its own; the partials are added in order.
/// The partials are tap-major (`[KH·KW, C_out, C_in/groups]`), so that each tap's GEMM
/// accumulates into a contiguous block; written at dW's stride of `KH·KW` floats, every one
/// of the nine products of a 3×3 layer read and wrote every cache line of the whole
/// partial (2.4 MB for 256 → 256 channels), not a ninth of it.
fn weight_grad_shifted_tiled(g: &Geometry, x: &[f32], dy: &[f32], tile_rows: usize) -> Vec<f32> {
    let (opg, cpg, plane, full) = (g.opg(), g.cpg(), g.out_plane(), g.cpg() * g.kh * g.kw);
    let jobs: Vec<(usize, Range<usize>)> = (0..g.n)
        .flat_map(|n| row_tiles(g, tile_rows).map(move |rows| (n, rows)))
        .collect();
    let per_thread = jobs.len().div_ceil(rayon::current_num_threads());
    let partials: Vec<Vec<f32>> = jobs
        .par_chunks(per_thread)
        .map(|chunk| {
            let mut part = vec![0.0f32; g.c_out * full];
            let dst = SharedMut(part.as_mut_ptr());
            for (n, rows) in chunk {
                let tile_at = rows.start * g.w;
                let tile_len = rows.len() * g.w;
                let (ext_at, ext_len) = input_span(g, rows);
                // With 32 input channels or more, the tile's rows are transposed once to
                // pixel-major (NHWC), so each tap's right operand is row-major for the GEMM's
                // packing instead of one channel plane apart per column (4×128×64×64 → 32:
                // 16.9 → 9.7 ms, 4×32×128×128 → 16: 11.7 → 6.2 ms, 2×256×64×64 → 256: 65 →
                // 56 ms; with 16 channels it was slower: 2.8 → 3.6–7.9 ms). Not where the
                // taps' halo outweighs the tile (atrous rates 12–36 on a 32×32 map: the
                // transposed rows would be 13× the tile; ASPP's step went 1.1 → 1.7 s).
                let nhwc = cpg >= 32 && ext_len <= 2 * tile_len;
                for grp in 0..g.groups {
                    let dy_g = &dy[(n * g.c_out + grp * opg) * plane..][..opg * plane];
                    let x_at = (n * g.c_in + grp * cpg) * g.in_plane();
                    with_buffer(&SCRATCH, if nhwc { cpg * ext_len } else { 0 }, |xt| {
                        if nhwc {
                            for ci in 0..cpg {
                                let src = &x[x_at + ci * g.in_plane() + ext_at..][..ext_len];
                                for (q, v) in src.iter().enumerate() {
                                    xt[q * cpg + ci] = *v;
                                }
                            }
                        }
                        for kj in 0..g.kw {
                            let (c0, c1, _) = g.columns(kj);
                            let masked = c0 > 0 || c1 < g.w;
                            // The tile's output gradient, columns the tap cannot use zeroed.
                            with_buffer(
                                &STAGING,
                                if masked { opg * tile_len } else { 0 },
                                |copy| {
                                    if masked {
                                        for (r, row) in copy.chunks_mut(tile_len).enumerate() {
                                            row.copy_from_slice(
                                                &dy_g[r * plane + tile_at..][..tile_len],
                                            );
                                            for line in row.chunks_mut(g.w) {
                                                line[..c0].fill(0.0);
                                                line[c1..].fill(0.0);
                                            }
                                        }
                                    }
                                    for ki in 0..g.kh {
                                        let Some(span) = TapSpan::within(g, ki, kj, rows.clone())
                                        else {
                                            continue;
                                        };
                                        let lhs = if masked {
                                            Strided::new_const(
                                                copy[span.p0 - tile_at..].as_ptr(),
                                                tile_len as isize,
                                                1,
                                            )
                                        } else {
                                            Strided::new_const(
                                                dy_g[span.p0..].as_ptr(),
                                                plane as isize,
                                                1,
                                            )
                                        };
                                        let start = (x_at as isize + span.p0 as isize + span.offset)
                                            as usize;
                                        let rhs = if nhwc {
                                            let at = (start - x_at - ext_at) * cpg;
                                            Strided::new_const(xt[at..].as_ptr(), cpg as isize, 1)
                                        } else {
                                            Strided::new_const(
                                                x[start..].as_ptr(),
                                                1,
                                                g.in_plane() as isize,
                                            )
                                        };
                                        // SAFETY: `part` is this task's own; the destination is its
                                        // [opg, cpg] block of tap (ki, kj), contiguous in the
                                        // tap-major partial; operands [opg, len] and [len, cpg].
                                        unsafe {
                                            let tap = ki * g.kw + kj;
                                            let out = Strided::new(
                                                dst.at((tap * g.c_out + grp * opg) * cpg),
                                                cpg as isize,
                                                1,
                                            );
                                            gemm(
                                                opg,
                                                cpg,
                                                span.len(),
                                                out,
                                                true,
                                                lhs,
                                                rhs,
                                                Parallel::No,
                                            );
                                        }
                                    }
                                },
                            );
                        }
                    });
                }
            }
            part
        })
        .collect();
    let mut partials = partials.into_iter();
    let mut total = partials.next().expect("at least one job");
    for part in partials {
        total.iter_mut().zip(&part).for_each(|(a, b)| *a += b);
    }
    // Tap-major [KH·KW, C_out, C_in/groups] to the stored [C_out, C_in/groups, KH, KW].
    let taps = g.kh * g.kw;
    let mut dw = vec![0.0f32; g.c_out * full];
    for (co, row) in dw.chunks_mut(full).enumerate() {
        for (ci, cell) in row.chunks_mut(taps).enumerate() {
            for (t, v) in cell.iter_mut().enumerate() {
                *v = total[(t * g.c_out + co) * cpg + ci];
            }
        }
    }
    dw
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls `f(output index, input index, weight index)` for every term of the convolution's
    /// definition (taps that read padding left out).
    fn for_each_term(g: &Geometry, mut f: impl FnMut(usize, usize, usize)) {
        let (cpg, opg) = (g.cpg(), g.opg());
        for n in 0..g.n {
            for co in 0..g.c_out {
                let grp = co / opg;
                for (oh, ow) in (0..g.oh).flat_map(|oh| (0..g.ow).map(move |ow| (oh, ow))) {
                    let out = ((n * g.c_out + co) * g.oh + oh) * g.ow + ow;
                    for (ci, ki, kj) in (0..cpg).flat_map(|ci| {
                        (0..g.kh).flat_map(move |ki| (0..g.kw).map(move |kj| (ci, ki, kj)))
                    }) {
                        let ih =
                            (oh * g.stride[0] + ki * g.dilation[0]) as isize - g.pad[0] as isize;
                        let iw =
                            (ow * g.stride[1] + kj * g.dilation[1]) as isize - g.pad[1] as isize;
                        if ih < 0 || iw < 0 || ih >= g.h as isize || iw >= g.w as isize {
                            continue;
                        }
                        let input =
                            ((n * g.c_in + grp * cpg + ci) * g.h + ih as usize) * g.w + iw as usize;
                        f(out, input, ((co * cpg + ci) * g.kh + ki) * g.kw + kj);
                    }
                }
            }
        }
    }

    /// The convolution's definition, the one the kernels must match.
    fn reference(g: &Geometry, x: &[f32], w: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f64; g.n * g.c_out * g.oh * g.ow];
        for_each_term(g, |o, i, k| out[o] += x[i] as f64 * w[k] as f64);
        out.into_iter().map(|v| v as f32).collect()
    }

    /// The weight gradient by the definition: `dW[k] = Σ dy[o] · x[i]` over its terms.
    fn reference_weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let mut dw = vec![0.0f64; g.c_out * g.cpg() * g.kh * g.kw];
        for_each_term(g, |o, i, k| dw[k] += dy[o] as f64 * x[i] as f64);
        dw.into_iter().map(|v| v as f32).collect()
    }

    /// `forward`, `input_grad` and `weight_grad` of `g` on values drawn from `seed` (and
    /// the two seeds after it) against the definition: the forward and both gradients
    /// element by element, and the adjoint identities `<conv(x), dy> = <x, dx(dy)> =
    /// <w, dw(x, dy)>`.
    fn check_against_definition(g: &Geometry, seed: u64) {
        let x = values(g.n * g.c_in * g.h * g.w, seed);
        let w = values(g.c_out * g.cpg() * g.kh * g.kw, seed + 1);
        let y = reference(g, &x, &w);
        close(
            &forward(g, &x, &w, None, None),
            &y,
            &format!("{g:?} forward"),
        );
        let dy = values(y.len(), seed + 2);
        let lhs: f64 = y.iter().zip(&dy).map(|(a, b)| *a as f64 * *b as f64).sum();
        let dx = input_grad(g, &w, &dy);
        let via_x: f64 = x.iter().zip(&dx).map(|(a, b)| *a as f64 * *b as f64).sum();
        let dw = weight_grad(g, &x, &dy);
        let via_w: f64 = w.iter().zip(&dw).map(|(a, b)| *a as f64 * *b as f64).sum();
        assert!(
            (lhs - via_x).abs() < 1e-3 * (1.0 + lhs.abs()),
            "{g:?}: {lhs} vs {via_x}"
        );
        assert!(
            (lhs - via_w).abs() < 1e-3 * (1.0 + lhs.abs()),
            "{g:?}: {lhs} vs {via_w}"
        );
        let mut want = vec![0.0f64; dx.len()];
        for_each_term(g, |o, i, k| want[i] += dy[o] as f64 * w[k] as f64);
        let want: Vec<f32> = want.into_iter().map(|v| v as f32).collect();
        close(&dx, &want, &format!("{g:?} input gradient"));
        close(
            &dw,
            &reference_weight_grad(g, &x, &dy),
            &format!("{g:?} weight gradient"),
        );
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

    #[allow(clippy::too_many_arguments)]
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

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 + 1e-4 * y.abs(),
                "{what} element {i}: {x} vs {y}"
            );
        }
    }

    /// The tiled forward of "same" stride-1 convolutions (several tiles per image, groups,
    /// atrous, a bias and an epilogue) equals the definition.
    #[test]
    fn tiled_shifted_forward_matches() {
        for g in [
            geometry(2, 3, [7, 9], 4, [3, 3], [1, 1], [1, 1], [1, 1], 1),
            geometry(1, 4, [6, 5], 6, [3, 3], [1, 1], [2, 2], [2, 2], 2),
            geometry(2, 3, [4, 5], 3, [3, 3], [1, 1], [6, 6], [6, 6], 1),
            geometry(1, 2, [5, 6], 3, [5, 3], [1, 1], [2, 1], [1, 1], 1),
        ] {
            assert!(shifted(&g), "{g:?}");
            let x = values(g.n * g.c_in * g.h * g.w, 8);
            let w = values(g.c_out * g.cpg() * g.kh * g.kw, 9);
            let want = reference(&g, &x, &w);
            for rows in [1, 2, 3, g.oh] {
                let mut out = vec![0.0f32; want.len()];
                forward_shifted_tiled(&g, &x, &w, &mut out, None, rows);
                close(&out, &want, &format!("{g:?}, tiles of {rows} rows"));
            }
            // Bias, then scale / shift, residual and ReLU.
            let plane = g.oh * g.ow;
            let bias = values(g.c_out, 10);
            let (scale, shift) = (values(g.c_out, 11), values(g.c_out, 12));
            let residual = values(want.len(), 13);
            let e = Epilogue {
                scale: &scale,
                shift: &shift,
                residual: Some(&residual),
                relu: true,
            };
            let mut out: Vec<f32> = (0..want.len())
                .map(|i| bias[(i / plane) % g.c_out])
                .collect();
            forward_shifted_tiled(&g, &x, &w, &mut out, Some(&e), 2);
            let expect: Vec<f32> = want
                .iter()
                .enumerate()
                .map(|(i, y)| {
                    let co = (i / plane) % g.c_out;
                    ((y + bias[co]) * scale[co] + shift[co] + residual[i]).max(0.0)
                })
                .collect();
            close(&out, &expect, &format!("{g:?} with an epilogue"));
        }
    }

    /// On planes large enough for the tiled paths, forward, input and weight gradients
    /// (through `forward`, `input_grad`, `weight_grad`) match the definition and its
    /// adjoints, with groups and dilation.
    #[test]
    fn tiled_paths_through_the_entry_points_match_the_definition() {
        for g in [
            geometry(2, 3, [33, 35], 4, [3, 3], [1, 1], [1, 1], [1, 1], 1),
            geometry(1, 4, [32, 40], 6, [3, 3], [1, 1], [2, 2], [2, 2], 2),
        ] {
            assert!(shifted_forward(&g) && shifted_forward(&transposed(&g).unwrap()));
            check_against_definition(&g, 14);
        }
    }

    /// The tiled weight gradient of "same" stride-1 convolutions, several tiles per image
    /// (one row, two, a remainder), equals the definition.
    #[test]
    fn tiled_shifted_weight_gradient_matches() {
        for g in [
            geometry(2, 3, [7, 9], 4, [3, 3], [1, 1], [1, 1], [1, 1], 1),
            geometry(1, 4, [6, 5], 6, [3, 3], [1, 1], [2, 2], [2, 2], 2),
            geometry(3, 5, [5, 4], 7, [1, 1], [1, 1], [0, 0], [1, 1], 1),
            geometry(2, 3, [4, 5], 3, [3, 3], [1, 1], [6, 6], [6, 6], 1),
            // 32 and more input channels per group: the tile transposed to pixel-major.
            geometry(2, 32, [6, 7], 4, [3, 3], [1, 1], [1, 1], [1, 1], 1),
            geometry(1, 66, [5, 6], 4, [3, 3], [1, 1], [2, 2], [2, 2], 2),
        ] {
            assert!(shifted(&g), "{g:?}");
            let x = values(g.n * g.c_in * g.h * g.w, 4);
            let dy = values(g.n * g.c_out * g.oh * g.ow, 5);
            let want = reference_weight_grad(&g, &x, &dy);
            for rows in [1, 2, 3, g.oh] {
                close(
                    &weight_grad_shifted_tiled(&g, &x, &dy, rows),
                    &want,
                    &format!("{g:?}, tiles of {rows} rows"),
                );
            }
        }
        // A 1×1 layer on a large plane reads its images in place instead (and the tiled
        // path still computes it right).
        let g = geometry(2, 40, [32, 33], 6, [1, 1], [1, 1], [0, 0], [1, 1], 1);
        assert!(g.out_plane() >= WGRAD_TILED_MIN_PLANE);
        let x = values(g.n * g.c_in * g.h * g.w, 8);
        let dy = values(g.n * g.c_out * g.oh * g.ow, 9);
        let want = reference_weight_grad(&g, &x, &dy);
        close(&weight_grad(&g, &x, &dy), &want, "1×1 through weight_grad");
        close(
            &weight_grad_shifted_tiled(&g, &x, &dy, 5),
            &want,
            "1×1, tiles of 5 rows",
        );
        // A plane large enough for `weight_grad` to take the tiled path.
        let g = geometry(2, 3, [33, 35], 4, [3, 3], [1, 1], [1, 1], [1, 1], 1);
        assert!(g.out_plane() >= WGRAD_TILED_MIN_PLANE);
        let x = values(g.n * g.c_in * g.h * g.w, 6);
        let dy = values(g.n * g.c_out * g.oh * g.ow, 7);
        close(
            &weight_grad(&g, &x, &dy),
            &reference_weight_grad(&g, &x, &dy),
            "tiled through weight_grad",
        );
    }

    #[test]
    fn forward_and_adjoints_match_the_definition() {
        for g in [
            geometry(2, 3, [7, 9], 4, [3, 3], [1, 1], [1, 1], [1, 1], 1),
            geometry(1, 4, [9, 8], 6, [3, 2], [2, 3], [2, 0], [2, 1], 2),
            geometry(3, 5, [6, 6], 7, [1, 1], [1, 1], [0, 0], [1, 1], 1),
            geometry(2, 6, [11, 5], 6, [3, 3], [2, 2], [1, 1], [1, 1], 6),
            // Rate larger than the map: only the centre tap reads the image.
            geometry(2, 3, [4, 5], 3, [3, 3], [1, 1], [6, 6], [6, 6], 1),
            geometry(1, 8, [5, 7], 4, [1, 1], [2, 2], [0, 0], [1, 1], 1),
            // Many images of a small map: tiles span images.
            geometry(9, 4, [3, 3], 5, [3, 3], [1, 1], [1, 1], [1, 1], 1),
            geometry(7, 6, [2, 3], 4, [1, 1], [1, 1], [0, 0], [1, 1], 2),
            // Pointwise on planes large enough for one tile per image: read in place.
            geometry(3, 6, [9, 10], 4, [1, 1], [1, 1], [0, 0], [1, 1], 2),
            // Tiles of more than `COLUMN_MAJOR_MAX_PIXELS` pixels: the input gradient's
            // `dcol` row-major (the shapes above are column-major).
            geometry(3, 5, [12, 13], 6, [3, 3], [1, 1], [1, 1], [1, 1], 1),
            geometry(2, 4, [25, 23], 3, [3, 3], [2, 2], [1, 1], [1, 1], 1),
        ] {
            check_against_definition(&g, 1);
        }
    }

    /// The direct AVX-512 kernels (forward, the input gradient as the forward of the
    /// transposed geometry, the weight gradient): every register-tile layout (1–4 rows, widths split across a
    /// row, one or two vectors of output channels), groups, atrous, asymmetric and "valid"
    /// kernels, a bias and an epilogue, against the definition.
    #[test]
    fn direct_kernels_match_the_definition() {
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        for g in [
            // 14-pixel rows, two vectors (32 output channels).
            geometry(2, 16, [14, 14], 32, [3, 3], [1, 1], [1, 1], [1, 1], 1),
            // 7×7: two rows per tile.
            geometry(8, 32, [7, 7], 32, [3, 3], [1, 1], [1, 1], [1, 1], 1),
            // 8×8: three rows of four (and a last tile of two rows).
            geometry(6, 16, [8, 8], 32, [3, 3], [1, 1], [1, 1], [1, 1], 1),
            // One vector; 50-pixel rows split in two.
            geometry(1, 16, [9, 50], 16, [3, 3], [1, 1], [1, 1], [1, 1], 1),
            // Atrous, grouped, asymmetric, "valid".
            geometry(2, 32, [16, 15], 32, [3, 3], [1, 1], [2, 2], [2, 2], 1),
            geometry(2, 64, [14, 14], 64, [3, 3], [1, 1], [1, 1], [1, 1], 2),
            geometry(2, 16, [10, 20], 16, [1, 3], [1, 1], [0, 1], [1, 1], 1),
            geometry(2, 16, [16, 16], 16, [3, 3], [1, 1], [0, 0], [1, 1], 1),
        ] {
            assert_eq!(direct(&g), avx512, "{g:?}: forward");
            #[cfg(target_arch = "x86_64")]
            if [g.h, g.w] == [14, 14] {
                // The direct weight gradient: pixels split over parts (16 → 32) and one part
                // (grouped, four jobs).
                assert_eq!(
                    direct::weight_grad_applies(&g),
                    avx512,
                    "{g:?}: weight gradient"
                );
            }
            let t = transposed(&g).expect("stride 1");
            assert_eq!(direct(&t), avx512, "{g:?}: input gradient");
            check_against_definition(&g, 11);
            // A bias and each epilogue: the definition's output, then the same arithmetic.
            let x = values(g.n * g.c_in * g.h * g.w, 12);
            let w = values(g.c_out * g.cpg() * g.kh * g.kw, 13);
            let bias = values(g.c_out, 14);
            let (scale, shift) = (values(g.c_out, 15), values(g.c_out, 16));
            let plain = reference(&g, &x, &w);
            let residual = values(plain.len(), 17);
            for (with_residual, relu) in [(false, false), (true, true), (false, true)] {
                let epilogue = Epilogue {
                    scale: &scale,
                    shift: &shift,
                    residual: with_residual.then_some(&residual[..]),
                    relu,
                };
                let want: Vec<f32> = plain
                    .iter()
                    .enumerate()
                    .map(|(i, y)| {
                        let co = i / g.out_plane() % g.c_out;
                        let r = if with_residual { residual[i] } else { 0.0 };
                        let v = (y + bias[co]) * scale[co] + shift[co] + r;
                        if relu { v.max(0.0) } else { v }
                    })
                    .collect();
                let got = forward(&g, &x, &w, Some(&bias), Some(&epilogue));
                close(
                    &got,
                    &want,
                    &format!("{g:?} bias, residual {with_residual}, relu {relu}"),
                );
            }
        }
    }

    #[test]
    fn split_reductions_and_rounded_tiles_match_the_definition_on_any_pool() {
        let split = [
            // One tile of both images, 12 input channels: the reduction split over the pool.
            geometry(2, 12, [5, 5], 8, [3, 3], [1, 1], [1, 1], [1, 1], 1),
            // Grouped, strided, dilated; and a rate that drops taps.
            geometry(1, 16, [4, 6], 6, [3, 3], [2, 1], [1, 1], [1, 2], 2),
            geometry(3, 10, [4, 4], 4, [3, 3], [1, 1], [5, 5], [5, 5], 1),
        ];
        // A 28×28 map cut into tiles of 208, 208, 208 and 160 pixels.
        let rounded = geometry(1, 128, [28, 28], 4, [3, 3], [1, 1], [1, 1], [1, 1], 1);
        let lengths: Vec<usize> = Plan::new(&rounded).tiles.iter().map(|t| t.len()).collect();
        assert_eq!(lengths, [208, 208, 208, 160]);
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a pool");
            pool.install(|| {
                for g in split.iter().chain([&rounded]) {
                    if threads > 1 && g.n * g.out_plane() < 100 {
                        let plan = Plan::new(g);
                        assert!(!plan.spread() && split_reduction(g), "{g:?}");
                    }
                    check_against_definition(g, 3);
                    // With a bias: the partials' sum plus the bias.
                    let x = values(g.n * g.c_in * g.h * g.w, 5);
                    let w = values(g.c_out * g.cpg() * g.kh * g.kw, 6);
                    let bias = values(g.c_out, 7);
                    let mut want = forward(g, &x, &w, None, None);
                    for (channel, b) in want.chunks_mut(g.out_plane()).zip(bias.iter().cycle()) {
                        channel.iter_mut().for_each(|v| *v += b);
                    }
                    let got = forward(g, &x, &w, Some(&bias), None);
                    close(&got, &want, &format!("{g:?} forward with bias"));
                }
            });
        }
    }
}
