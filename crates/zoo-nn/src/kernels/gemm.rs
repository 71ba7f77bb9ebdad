//! The one matrix product the kernels use: `dst (+)= lhs · rhs` in f32 over strided views,
//! through the `gemm` crate (the library burn-flex multiplies with), which dispatches at run
//! time to its AVX-512, AVX2+FMA, NEON or scalar micro-kernels.

/// A strided matrix view: element `(i, j)` at `ptr + i·row_stride + j·col_stride`.
#[derive(Clone, Copy)]
pub(crate) struct Strided<P> {
    ptr: P,
    row_stride: isize,
    col_stride: isize,
}

// SAFETY: a view is only dereferenced inside `gemm`, whose callers guarantee that concurrent
// products write disjoint parts of the destination.
unsafe impl<P> Send for Strided<P> {}
unsafe impl<P> Sync for Strided<P> {}

impl Strided<*mut f32> {
    /// A writable view.
    pub fn new(ptr: *mut f32, row_stride: isize, col_stride: isize) -> Self {
        Self {
            ptr,
            row_stride,
            col_stride,
        }
    }
}

impl Strided<*const f32> {
    /// A read-only view.
    pub fn new_const(ptr: *const f32, row_stride: isize, col_stride: isize) -> Self {
        Self {
            ptr,
            row_stride,
            col_stride,
        }
    }
}

/// Whether one product may use several threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parallel {
    /// The caller already spreads work over the pool.
    No,
    /// Use rayon's pool inside the product.
    Yes,
}

/// `dst[m, n] = (accumulate ? dst : 0) + lhs[m, k] · rhs[k, n]`.
///
/// # Safety
/// Every element of the three views (`m × n`, `m × k`, `k × n`) must be in bounds of live
/// allocations, and `dst` must not overlap `lhs` or `rhs` nor be accessed concurrently.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: Strided<*mut f32>,
    accumulate: bool,
    lhs: Strided<*const f32>,
    rhs: Strided<*const f32>,
    parallel: Parallel,
) {
    if m == 0 || n == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    if parallel == Parallel::Yes && threads > 1 {
        // Split the larger of M and N into one block per thread, each a serial product (the
        // crate's own threading measured 10–15 % slower on the 3×3 conv gradients and
        // DeepLabV3's forward).
        let split_m = m >= n;
        let len = if split_m { m } else { n };
        let block = len.div_ceil(threads);
        if block >= 16 {
            use rayon::prelude::*;
            (0..len)
                .step_by(block)
                .collect::<Vec<_>>()
                .into_par_iter()
                .for_each(|start| {
                    // Capture the whole views (Send), not their raw pointer fields.
                    let (dst, lhs, rhs) = (dst, lhs, rhs);
                    let size = block.min(len - start);
                    // SAFETY: each block writes its own rows (or columns) of dst.
                    unsafe {
                        if split_m {
                            gemm(
                                size,
                                n,
                                k,
                                Strided::new(
                                    dst.ptr.offset(start as isize * dst.row_stride),
                                    dst.row_stride,
                                    dst.col_stride,
                                ),
                                accumulate,
                                Strided::new_const(
                                    lhs.ptr.offset(start as isize * lhs.row_stride),
                                    lhs.row_stride,
                                    lhs.col_stride,
                                ),
                                rhs,
                                Parallel::No,
                            )
                        } else {
                            gemm(
                                m,
                                size,
                                k,
                                Strided::new(
                                    dst.ptr.offset(start as isize * dst.col_stride),
                                    dst.row_stride,
                                    dst.col_stride,
                                ),
                                accumulate,
                                lhs,
                                Strided::new_const(
                                    rhs.ptr.offset(start as isize * rhs.col_stride),
                                    rhs.row_stride,
                                    rhs.col_stride,
                                ),
                                Parallel::No,
                            )
                        }
                    }
                });
            return;
        }
    }
    let parallelism = match parallel {
        Parallel::Yes if rayon::current_num_threads() > 1 => gemm::Parallelism::Rayon(0),
        _ => gemm::Parallelism::None,
    };
    // SAFETY: forwarded to the caller's contract; `gemm` computes
    // dst := alpha·dst + beta·lhs·rhs, reading dst only when `accumulate` is set.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr,
            dst.col_stride,
            dst.row_stride,
            accumulate,
            lhs.ptr,
            lhs.col_stride,
            lhs.row_stride,
            rhs.ptr,
            rhs.col_stride,
            rhs.row_stride,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        )
    }
}
