//! ROI pooling modules: thin, parameter-free wrappers over the functional ops (as torchvision's
//! `RoIAlign`, `RoIPool`, `PSRoIAlign`, `PSRoIPool`, `MultiScaleRoIAlign` are over theirs), so
//! a model can hold its pooler as a field and configure it from a file.

use burn::prelude::*;

use crate::ops::{
    MultiScaleRoiAlignOptions, PsRoiAlignOptions, PsRoiPoolOptions, RoiAlignOptions,
    RoiPoolOptions, multi_scale_roi_align, ps_roi_align, ps_roi_pool, roi_align, roi_pool,
};

macro_rules! roi_module {
    ($(#[$doc:meta])* $name:ident, $options:ident, $op:ident) => {
        $(#[$doc])*
        ///
        /// Built with `options.init()`; `forward` documents the shapes of the op it wraps.
        #[derive(Module, Debug)]
        pub struct $name {
            #[module(skip)]
            options: $options,
        }

        impl $options {
            /// The module form of these options.
            pub fn init(&self) -> $name {
                $name {
                    options: self.clone(),
                }
            }
        }

        impl $name {
            /// The options it was built with.
            pub fn options(&self) -> &$options {
                &self.options
            }

            /// # Shapes
            /// - input: `[N, C, H, W]`
            /// - rois: `[K, 5]`, rows `(batch index, x1, y1, x2, y2)`
            /// - output: `[K, C_out, output_size[0], output_size[1]]` (see the op)
            pub fn forward(&self, input: Tensor<4>, rois: Tensor<2>) -> Tensor<4> {
                $op(input, rois, self.options.clone())
            }
        }
    };
}

roi_module!(
    /// ROI Align module over [`roi_align`].
    RoiAlign,
    RoiAlignOptions,
    roi_align
);
roi_module!(
    /// ROI max-pooling module over [`roi_pool`].
    RoiPool,
    RoiPoolOptions,
    roi_pool
);
roi_module!(
    /// Position-sensitive ROI Align module over [`ps_roi_align`].
    PsRoiAlign,
    PsRoiAlignOptions,
    ps_roi_align
);
roi_module!(
    /// Position-sensitive ROI pooling module over [`ps_roi_pool`].
    PsRoiPool,
    PsRoiPoolOptions,
    ps_roi_pool
);

/// Multi-scale ROI Align module over [`multi_scale_roi_align`] (FPN level mapping).
#[derive(Module, Debug)]
pub struct MultiScaleRoiAlign {
    #[module(skip)]
    options: MultiScaleRoiAlignOptions,
}

impl MultiScaleRoiAlignOptions {
    /// The module form of these options.
    pub fn init(&self) -> MultiScaleRoiAlign {
        MultiScaleRoiAlign {
            options: self.clone(),
        }
    }
}

impl MultiScaleRoiAlign {
    /// The options it was built with.
    pub fn options(&self) -> &MultiScaleRoiAlignOptions {
        &self.options
    }

    /// # Shapes
    /// - features: one `[N, C, H_l, W_l]` per level, finest first
    /// - boxes: one `[K_i, 4]` per image
    /// - image_size: `[height, width]` of the largest image before padding
    /// - output: `[ΣK_i, C, output_size[0], output_size[1]]`
    pub fn forward(
        &self,
        features: Vec<Tensor<4>>,
        boxes: Vec<Tensor<2>>,
        image_size: [usize; 2],
    ) -> Tensor<4> {
        multi_scale_roi_align(features, boxes, image_size, self.options.clone())
    }
}
