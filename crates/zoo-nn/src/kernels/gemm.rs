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
