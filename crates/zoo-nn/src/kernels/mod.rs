//! burn-zoo's CPU kernels for the operations where training and inference spend their time
//! — convolution forward and both gradients, training-mode BatchNorm, per-channel affine maps
//! — plugged into Burn 0.22 through its backend-extension mechanism
//! (`#[backend_extension]`, Burn's `extension` feature), with hand-written backward passes
//! for `Autodiff`.
//!
//! They run on the flex backend (`Device::flex()` and its `.autodiff()`), for f32 tensors.
//! Every other backend and dtype keeps Burn's own operation: the public functions in
//! [`crate::ops`] (`conv2d`, `batch_norm_train`, `channel_affine`) choose, and are the entry
//! points; this module is the extension trait behind them.
//!
//! Each kernel is tested equal to Burn's operation on random shapes (stride, padding,
//! dilation, groups, odd sizes, batch 1) and through the PyTorch parity fixtures of every
//! layer and model that uses it.

mod activation;
mod autodiff;
mod conv;
mod flex;
mod gemm;
mod linear;
mod norm;
mod optim;
mod resize;
mod roi;
mod window_attention;

pub(crate) use resize::AxisTaps;
pub use roi::RoiTaps;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, backend_extension};
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;

use std::sync::Arc;

use crate::ops::{ResizeOptions, SgdStep};

/// A vector of `len` values not yet written. Kernels write their outputs into one of these
/// rather than into `vec![0.0; len]`: on reused heap memory the zeroing is one more pass
/// over the whole buffer (25 MB for a ResNet-50 activation at batch 8).
pub(crate) fn uninit<T>(len: usize) -> Vec<std::mem::MaybeUninit<T>> {
    let mut out = Vec::with_capacity(len);
    // SAFETY: `MaybeUninit` needs no initialisation.
    unsafe { out.set_len(len) };
    out
}

/// The vector `values`, all written, as `T`s (same allocation).
///
/// # Safety
/// Every element of `values` has been written.
pub(crate) unsafe fn assume_init<T>(values: Vec<std::mem::MaybeUninit<T>>) -> Vec<T> {
    let mut values = std::mem::ManuallyDrop::new(values);
    // SAFETY: per the contract; `MaybeUninit<T>` has `T`'s layout, and the length and
    // capacity are those of the same allocation.
    unsafe { Vec::from_raw_parts(values.as_mut_ptr().cast(), values.len(), values.capacity()) }
}

/// A vector of `len` values written by `fill`, not zeroed first (see [`uninit`]).
///
/// # Safety
/// `fill` writes every element of the slice it is given.
pub(crate) unsafe fn written<T>(
    len: usize,
    fill: impl FnOnce(&mut [std::mem::MaybeUninit<T>]),
) -> Vec<T> {
    let mut out = uninit(len);
    fill(&mut out);
    // SAFETY: per the contract.
    unsafe { assume_init(out) }
}

/// Makes this process's allocator keep the memory it frees for reuse instead of returning
/// it to the operating system; a binary that trains or runs models on flex calls it once at
/// start-up (`zoo` and the benchmark suite do).
///
/// Every kernel call allocates its output, often several MB (a 512 → 512 3×3 weight gradient
/// is 9.4 MB). glibc's defaults `mmap` such buffers and unmap them when freed, so each
/// call's output is first touched page by page, one page fault per 4 KiB, and every unmap
/// flushes the TLBs of the pool's threads; on the VMs we measure on, that cost a third of
/// the U-Net(resnet18) train step. With an `mmap` threshold of 32 MiB (glibc's maximum)
/// and no trimming, freed buffers go back to the heap and the next step reuses them, as
/// PyTorch's tuning guide has it with jemalloc or tcmalloc: the U-Net step went from
/// 436–506 to 346–393 ms (2-core Xeon VM, alternating runs), others within noise.
///
/// The process's memory then stays at its high-water mark. Does nothing where the C library
/// is not glibc. Returns whether the settings were taken.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes glibc's allocation thresholds; it may be called at any
        // time, from any thread.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Makes the calling thread and every thread of rayon's global pool (where flex and these
/// kernels compute) flush subnormal results to zero and read subnormal inputs as zero
/// (x86-64's FTZ and DAZ bits), as `torch.set_flush_denormal(True)` does; `false` restores
/// IEEE arithmetic. Returns whether the CPU has the setting (x86-64 only).
///
/// Arithmetic on subnormal floats takes ~100× longer on x86 cores. A model whose weights or
/// gradients drift into that range (a randomly initialised Mask R-CNN at a small learning
/// rate: PyTorch's steps went from 2.8 to 17–25 s, its box-head GEMMs and ROI Align
/// backward) slows down by that much; flushed, the values become zeros, which changes the
/// results only in the last places of numbers below 1.2e-38.
pub fn flush_denormals(on: bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        fn set(on: bool) {
            // MXCSR bit 15: flush to zero; bit 6: denormals are zero.
            const FTZ_DAZ: u32 = 0x8040;
            let mut csr = 0u32;
            // SAFETY: stores this thread's MXCSR into `csr`.
            unsafe { std::arch::asm!("stmxcsr [{0}]", in(reg) &mut csr, options(nostack)) };
            csr = if on { csr | FTZ_DAZ } else { csr & !FTZ_DAZ };
            // SAFETY: loads a valid MXCSR (only the two mode bits changed).
            unsafe { std::arch::asm!("ldmxcsr [{0}]", in(reg) &csr, options(nostack)) };
        }
        set(on);
        rayon::broadcast(|_| set(on));
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = on;
        false
    }
}

/// The operations burn-zoo computes with its own kernels. Implemented for `Flex` (the
/// kernels) and for `Autodiff<B>` over any implementor (their backward passes).
///
/// Shapes are those of the [`crate::ops`] functions of the same name.
#[backend_extension(Flex, Autodiff)]
pub trait ZooKernels: Backend {
    /// 2-D convolution without bias, as Burn's `conv2d`.
    fn zoo_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// 2-D convolution with a bias, as Burn's `conv2d`.
    fn zoo_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// An inference block in one pass: `conv2d(x, weight) · scale[c] + shift[c]`, then ReLU
    /// when `relu` (a convolution followed by an inference BatchNorm and an activation; a
    /// convolution bias folds into `shift`). Under autodiff it is the composition of the
    /// differentiable operations.
    fn zoo_conv2d_affine(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        relu: bool,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// [`zoo_conv2d_affine`](ZooKernels::zoo_conv2d_affine) with `residual` (the output's
    /// shape) added before the ReLU: the end of a ResNet block.
    fn zoo_conv2d_affine_add(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        relu: bool,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// Gradient of [`zoo_conv2d`](ZooKernels::zoo_conv2d) with respect to `x`.
    fn zoo_conv2d_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// Gradient of [`zoo_conv2d`](ZooKernels::zoo_conv2d) with respect to `weight`.
    fn zoo_conv2d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// Sum of `output_grad` (`[N, C, …]`) over every dimension but the channel: the bias
    /// gradient, `[C]`.
    fn zoo_channel_sum(output_grad: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Training-mode BatchNorm, then a ReLU when `relu`, in one pass: `(output, batch mean,
    /// biased batch variance)`.
    fn zoo_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        relu: bool,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// [`zoo_batch_norm_train`](ZooKernels::zoo_batch_norm_train) with `residual` (the
    /// input's shape) added before the ReLU: the end of a ResNet block in training.
    fn zoo_batch_norm_train_add(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        relu: bool,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of [`zoo_batch_norm_train`](ZooKernels::zoo_batch_norm_train) without a
    /// ReLU: `(x, gamma, beta)`.
    fn zoo_batch_norm_train_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        output_grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of a training-mode BatchNorm that ended in a ReLU whose output is `output`
    /// (the gradient flows where it is positive): `(x, gamma, beta, residual)`, the last
    /// (the output gradient through the ReLU) when `residual_grad`.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn zoo_batch_norm_train_relu_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        output: FloatTensor<Self>,
        epsilon: f64,
        output_grad: FloatTensor<Self>,
        residual_grad: bool,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        Option<FloatTensor<Self>>,
    );

    /// `x · scale[c] + shift[c]` over the channel dimension.
    fn zoo_channel_affine(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// Gradients of [`zoo_channel_affine`](ZooKernels::zoo_channel_affine):
    /// `(x, scale, shift)`.
    fn zoo_channel_affine_backward(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// One SGD-with-momentum update of a parameter of any shape, as `burn::optim::Sgd` does
    /// it from its second step on: `g = grad (+ weight_decay · param)`, `v = (1 − dampening) ·
    /// g + momentum · velocity`, returns `(param − lr · (nesterov ? g + momentum · v : v), v)`.
    /// Not differentiable (an optimiser step).
    fn zoo_sgd_momentum(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        velocity: FloatTensor<Self>,
        step: SgdStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Exact GELU, `x · Φ(x)`, any shape.
    fn zoo_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Gradient of [`zoo_gelu`](ZooKernels::zoo_gelu) at `x`.
    fn zoo_gelu_backward(x: FloatTensor<Self>, output_grad: FloatTensor<Self>)
    -> FloatTensor<Self>;

    /// `[N, C, H, W]` resized to `[N, C, size[0], size[1]]`, as [`crate::ops::resize`].
    fn zoo_resize(
        x: FloatTensor<Self>,
        size: [usize; 2],
        options: ResizeOptions,
    ) -> FloatTensor<Self>;

    /// ROI pooling through precomputed bilinear taps (ROI Align): `[N, C, H, W]` →
    /// `[K, C, PH, PW]`.
    fn zoo_roi_pool(x: FloatTensor<Self>, taps: Arc<RoiTaps>) -> FloatTensor<Self>;

    /// Gradient of [`zoo_roi_pool`](ZooKernels::zoo_roi_pool) for an input of `input_shape`.
    fn zoo_roi_pool_backward(
        output_grad: FloatTensor<Self>,
        taps: Arc<RoiTaps>,
        input_shape: [usize; 4],
    ) -> FloatTensor<Self>;

    /// A linear layer without bias, as Burn's `linear`: `x · weight` over the last dimension
    /// (`x` `[…, d_in]`, `weight` `[d_in, d_out]`, output `[…, d_out]`), one product over
    /// all leading dimensions.
    fn zoo_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;

    /// [`zoo_linear`](ZooKernels::zoo_linear) plus `bias` (`[d_out]`).
    fn zoo_linear_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// Gradient of [`zoo_linear`](ZooKernels::zoo_linear) with respect to `x`:
    /// `output_grad · weightᵀ`, `[…, d_in]`.
    fn zoo_linear_x_backward(
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// Gradient of [`zoo_linear`](ZooKernels::zoo_linear) with respect to `weight`:
    /// `xᵀ · output_grad` over all leading dimensions, `[d_in, d_out]`.
    fn zoo_linear_weight_backward(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// Sum of `output_grad` (`[…, d_out]`) over every dimension but the last: the bias
    /// gradient of a linear layer, `[d_out]`.
    fn zoo_last_dim_sum(output_grad: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Swin's (shifted) window attention at inference, as [`crate::ops::window_attention`]:
    /// `qkv` `[B, H, W, 3·heads·head_dim]`, `qkv_bias` `[3·heads·head_dim]`, `rel_bias`
    /// `[heads, wh·ww, wh·ww]` → `[B, H, W, heads·head_dim]`. No backward: under autodiff the
    /// op composes Burn's operations instead.
    fn zoo_window_attention(
        qkv: FloatTensor<Self>,
        qkv_bias: FloatTensor<Self>,
        rel_bias: FloatTensor<Self>,
        heads: usize,
        window: [usize; 2],
        shift: [usize; 2],
        scale: f32,
    ) -> FloatTensor<Self>;

    /// Gradient of [`zoo_resize`](ZooKernels::zoo_resize) from an input of spatial size
    /// `input_size`.
    fn zoo_resize_backward(
        output_grad: FloatTensor<Self>,
        input_size: [usize; 2],
        options: ResizeOptions,
    ) -> FloatTensor<Self>;
}

/// Whether the kernels are switched off for this process: `ZOO_NN_KERNELS=burn` makes
/// [`crate::ops`] call Burn's operations everywhere (for before/after comparisons and
/// profiles in one build; read once).
fn disabled() -> bool {
    static DISABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DISABLED.get_or_init(|| std::env::var("ZOO_NN_KERNELS").is_ok_and(|v| v == "burn"))
}

/// Whether every tensor is f32 on the flex backend (plain or autodiff), where the kernels run.
pub(crate) fn on_flex(tensors: &[(Device, burn::tensor::DType)]) -> bool {
    if disabled() {
        return false;
    }
    let flex = Device::flex();
    tensors
        .iter()
        .all(|(device, dtype)| *dtype == burn::tensor::DType::F32 && device.clone().inner() == flex)
}

#[cfg(test)]
mod tests {
    use rayon::prelude::*;

    #[test]
    fn flushed_subnormals_are_zero_on_every_pool_thread() {
        let tiny = std::hint::black_box(1.0e-38f32);
        let half = |x: f32| std::hint::black_box(x) * std::hint::black_box(0.5);
        let on_pool = || {
            (0..64)
                .into_par_iter()
                .map(|_| half(tiny))
                .collect::<Vec<f32>>()
        };
        let supported = super::flush_denormals(true);
        assert_eq!(supported, cfg!(target_arch = "x86_64"));
        if !supported {
            return;
        }
        assert_eq!(half(tiny), 0.0);
        assert!(on_pool().iter().all(|&v| v == 0.0));
        assert!(super::flush_denormals(false));
        assert!(half(tiny) > 0.0);
        assert!(on_pool().iter().all(|&v| v > 0.0));
    }
}
