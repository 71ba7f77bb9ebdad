//! Max-unpooling module (SegNet decoders); mirrors `torch.nn.MaxUnpool2d`.

use burn::prelude::*;

use crate::ops::max_unpool2d;

/// Configuration of [`MaxUnpool2d`]: the geometry of the max-pooling it inverts.
#[derive(Config, Debug)]
pub struct MaxUnpool2dConfig {
    /// Pooling kernel `[h, w]`.
    #[config(default = "[2, 2]")]
    pub kernel_size: [usize; 2],
    /// Pooling stride `[h, w]`.
    #[config(default = "[2, 2]")]
    pub stride: [usize; 2],
    /// Pooling padding `[h, w]`.
    #[config(default = "[0, 0]")]
    pub padding: [usize; 2],
}

impl MaxUnpool2dConfig {
    /// Builds the (parameter-free) module.
    ///
    /// # Panics
    /// If a kernel size or stride is zero (naming the field).
    pub fn init(&self) -> MaxUnpool2d {
        for (field, value) in [("kernel_size", self.kernel_size), ("stride", self.stride)] {
            assert!(
                value[0] > 0 && value[1] > 0,
                "MaxUnpool2dConfig: {field} must be positive, got {value:?}"
            );
        }
        MaxUnpool2d {
            kernel_size: self.kernel_size,
            stride: self.stride,
            padding: self.padding,
        }
    }
}

/// Places pooled values back at the positions their max-pooling indices recorded.
#[derive(Module, Debug)]
pub struct MaxUnpool2d {
    kernel_size: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
}

impl MaxUnpool2d {
    /// # Shapes
    /// - input, indices: `[batch, channels, h, w]` (indices as from
    ///   `max_pool2d_with_indices`)
    /// - output_size: `None` = `(h − 1)·stride − 2·padding + kernel` (PyTorch's default)
    /// - output: `[batch, channels, h_out, w_out]`
    pub fn forward(
        &self,
        input: Tensor<4>,
        indices: Tensor<4, Int>,
        output_size: Option<[usize; 2]>,
    ) -> Tensor<4> {
        let [_, _, h, w] = input.dims();
        let default = |d: usize, len: usize| {
            (len.saturating_sub(1) * self.stride[d] + self.kernel_size[d])
                .saturating_sub(2 * self.padding[d])
        };
        let size = output_size.unwrap_or([default(0, h), default(1, w)]);
        max_unpool2d(
            input,
            indices,
            self.kernel_size,
            self.stride,
            self.padding,
            size,
        )
    }
}
