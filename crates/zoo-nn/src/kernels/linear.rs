//! Linear layers on the host, f32: `y = x · W + b` over `rows` tokens as one product (Burn's
//! `linear` keeps a `[windows, 49, 96]` input as 64 products of 49 rows, each packing the
//! weight again, then adds the bias in a second pass), and its gradients.

use rayon::prelude::*;

use super::gemm::{Parallel, Strided, gemm};

/// Rows per task when a product is split by rows: large enough for the micro-kernels, small
/// enough that a tile of the output stays in L2 while the bias is written and accumulated.
const ROW_TILE: usize = 256;

/// `dst[rows, n] = (dst if accumulate) + lhs[rows, k] · rhs[k, n]` with row-major `lhs` and
/// `dst`, split over the pool: by row tiles when there are enough rows, else inside the
/// product (which then splits the wider of rows and columns).
///
/// # Safety
/// `rhs` must address a `k × n` matrix inside a live allocation.
unsafe fn rows_product(
    rows: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    rhs: Strided<*const f32>,
) {
    debug_assert_eq!(dst.len(), rows * n);
    debug_assert_eq!(lhs.len(), rows * k);
    let threads = rayon::current_num_threads();
    if threads > 1 && rows >= 2 * ROW_TILE {
        // A tile count that is a multiple of the thread count, so that no thread waits.
        let tiles = rows.div_ceil(ROW_TILE).div_ceil(threads) * threads;
        let tile = rows.div_ceil(tiles);
        dst.par_chunks_mut(tile * n)
            .zip(lhs.par_chunks(tile * k))
            .for_each(|(dst, lhs)| {
                let m = dst.len() / n;
                // SAFETY: the tile views cover exactly their slices; rhs per the contract.
                unsafe {
                    gemm(
                        m,
                        n,
                        k,
                        Strided::new(dst.as_mut_ptr(), n as isize, 1),
                        accumulate,
                        Strided::new_const(lhs.as_ptr(), k as isize, 1),
                        rhs,
                        Parallel::No,
                    )
                }
            });
    } else {
        // SAFETY: as above.
        unsafe {
            gemm(
                rows,
                n,
                k,
                Strided::new(dst.as_mut_ptr(), n as isize, 1),
                accumulate,
                Strided::new_const(lhs.as_ptr(), k as isize, 1),
                rhs,
                Parallel::Yes,
            )
        }
    }
}

/// `y[rows, d_out] = x[rows, d_in] · weight[d_in, d_out] (+ bias[d_out])`.
pub(crate) fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, d_out: usize) -> Vec<f32> {
    let d_in = weight.len() / d_out.max(1);
    let rows = x.len().checked_div(d_in).unwrap_or(0);
    let mut y = match bias {
        Some(b) => {
            let mut y = Vec::with_capacity(rows * d_out);
            for _ in 0..rows {
                y.extend_from_slice(b);
            }
            y
        }
        None => vec![0.0; rows * d_out],
    };
    if d_in > 0 {
        // SAFETY: `weight` is `d_in × d_out`, row-major.
        unsafe {
            rows_product(
                rows,
                d_out,
                d_in,
                &mut y,
                bias.is_some(),
                x,
                Strided::new_const(weight.as_ptr(), d_out as isize, 1),
            )
        }
    }
    y
}

/// `dx[rows, d_in] = dy[rows, d_out] · weightᵀ`.
pub(crate) fn x_backward(weight: &[f32], dy: &[f32], d_in: usize) -> Vec<f32> {
    let d_out = weight.len() / d_in.max(1);
    let rows = dy.len().checked_div(d_out).unwrap_or(0);
    let mut dx = vec![0.0; rows * d_in];
    if d_out > 0 {
        // SAFETY: `weightᵀ` is `d_out × d_in`: element (o, i) at `i·d_out + o`.
        unsafe {
            rows_product(
                rows,
                d_in,
                d_out,
                &mut dx,
                false,
                dy,
                Strided::new_const(weight.as_ptr(), 1, d_out as isize),
            )
        }
    }
    dx
}

/// `dweight[d_in, d_out] = xᵀ · dy` over all rows.
pub(crate) fn weight_backward(x: &[f32], dy: &[f32], d_in: usize, d_out: usize) -> Vec<f32> {
    let rows = x.len().checked_div(d_in).unwrap_or(0);
    let mut dw = vec![0.0; d_in * d_out];
    if rows > 0 {
        // SAFETY: `xᵀ` is `d_in × rows` (element (i, r) at `r·d_in + i`), dy `rows × d_out`.
        unsafe {
            gemm(
                d_in,
                d_out,
                rows,
                Strided::new(dw.as_mut_ptr(), d_out as isize, 1),
                false,
                Strided::new_const(x.as_ptr(), 1, d_in as isize),
                Strided::new_const(dy.as_ptr(), d_out as isize, 1),
                Parallel::Yes,
            )
        }
    }
    dw
}

/// `dbias[d_out]`: the column sums of `dy[rows, d_out]`.
pub(crate) fn bias_backward(dy: &[f32], d_out: usize) -> Vec<f32> {
    let rows = dy.len().checked_div(d_out).unwrap_or(0);
    let threads = rayon::current_num_threads().max(1);
    let chunk = rows.div_ceil(threads).max(64);
    let column_sums = |block: &[f32]| {
        let mut sums = vec![0.0f32; d_out];
        for row in block.chunks_exact(d_out) {
            for (s, &g) in sums.iter_mut().zip(row) {
                *s += g;
            }
        }
        sums
    };
    if d_out == 0 || rows == 0 {
        return vec![0.0; d_out];
    }
    dy.par_chunks(chunk * d_out).map(column_sums).reduce(
        || vec![0.0; d_out],
        |mut a, b| {
            for (a, b) in a.iter_mut().zip(b) {
                *a += b;
            }
            a
        },
    )
}
