//! ROI pooling modules: thin, parameter-free wrappers over the functional ops (as torchvision's
//! `RoIAlign`, `RoIPool`, `PSRoIAlign`, `PSRoIPool`, `MultiScaleRoIAlign` are over theirs), so
//! a model can hold its pooler as a field and configure it from a file.

use burn::module::{Content, DisplaySettings, ModuleDisplay, Param};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::ops::{
    DeformRoiPoolOptions, MultiScaleRoiAlignOptions, PsRoiAlignOptions, PsRoiPoolOptions,
    RoiAlignOptions, RoiPoolOptions, deform_roi_pool, multi_scale_roi_align, ps_roi_align,
    ps_roi_pool, roi_align, roi_pool,
};

/// Settings shown on one line, as Burn's `Conv2d` shows its own.
fn inline() -> Option<DisplaySettings> {
    DisplaySettings::new()
        .with_new_line_after_attribute(false)
        .optional()
}

/// A parameter-free ROI module's display: its options, as `options: RoiAlignOptions { … }`.
fn options_content(content: Content, options: &impl std::fmt::Debug) -> Option<Content> {
    content.add_debug_attribute("options", options).optional()
}

macro_rules! roi_module {
    ($(#[$doc:meta])* $name:ident, $options:ident, $op:ident) => {
        $(#[$doc])*
        ///
        /// Built with `options.init()`; `forward` documents the shapes of the op it wraps.
        #[derive(Module, Debug)]
        #[module(custom_display)]
        pub struct $name {
            #[module(skip)]
            options: $options,
        }

        impl ModuleDisplay for $name {
            fn custom_settings(&self) -> Option<DisplaySettings> {
                inline()
            }

            fn custom_content(&self, content: Content) -> Option<Content> {
                options_content(content, &self.options)
            }
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
#[module(custom_display)]
pub struct MultiScaleRoiAlign {
    #[module(skip)]
    options: MultiScaleRoiAlignOptions,
}

impl ModuleDisplay for MultiScaleRoiAlign {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        inline()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        options_content(content, &self.options)
    }
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

/// Configuration of [`DeformRoiPool`]: mmcv's `DeformRoIPoolPack`.
#[derive(Config, Debug)]
pub struct DeformRoiPoolConfig {
    /// Output `[height, width]`.
    pub output_size: [usize; 2],
    /// Channels of the feature map (the offset fc reads `C · PH · PW` features per ROI).
    pub output_channels: usize,
    /// Width of the two hidden layers of the offset fc.
    #[config(default = 1024)]
    pub deform_fc_channels: usize,
    /// Factor from ROI coordinates to feature-map coordinates.
    #[config(default = 1.0)]
    pub spatial_scale: f32,
    /// Sampling points per bin along each axis; `<= 0` is adaptive.
    #[config(default = 0)]
    pub sampling_ratio: i32,
    /// Scale of the learned offsets: a bin moves by `gamma · roi_size · offset`.
    #[config(default = 0.1)]
    pub gamma: f32,
}

impl DeformRoiPoolConfig {
    /// Builds the module on `device`; the last offset layer starts at zero, so a fresh module
    /// pools exactly as aligned ROI Align until its offsets train.
    ///
    /// # Panics
    /// If a size or channel count is zero (naming the field).
    pub fn init(&self, device: &Device) -> DeformRoiPool {
        let [ph, pw] = self.output_size;
        for (field, value) in [
            ("output_size[0]", ph),
            ("output_size[1]", pw),
            ("output_channels", self.output_channels),
            ("deform_fc_channels", self.deform_fc_channels),
        ] {
            assert!(
                value > 0,
                "DeformRoiPoolConfig: {field} must be positive, got 0"
            );
        }
        let hidden = self.deform_fc_channels;
        let mut last = LinearConfig::new(hidden, ph * pw * 2).init(device);
        last.weight = Param::from_tensor(Tensor::zeros([hidden, ph * pw * 2], device));
        last.bias = Some(Param::from_tensor(Tensor::zeros([ph * pw * 2], device)));
        DeformRoiPool {
            offset_fc: vec![
                LinearConfig::new(ph * pw * self.output_channels, hidden).init(device),
                LinearConfig::new(hidden, hidden).init(device),
                last,
            ],
            options: DeformRoiPoolOptions::new(
                self.output_size,
                self.spatial_scale,
                self.sampling_ratio,
                self.gamma,
            ),
        }
    }
}

/// Deformable ROI pooling with its offset predictor (Dai et al. 2017; mmcv's
/// `DeformRoIPoolPack`): pool each ROI without offsets, predict one normalised `(dx, dy)` per
/// bin with a 3-layer fc (ReLU between), pool again with the offsets.
///
/// mmcv's keys load through [`DeformRoiPool::key_map`].
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct DeformRoiPool {
    /// The offset predictor: `C·PH·PW → hidden → hidden → 2·PH·PW`, ReLU between.
    pub offset_fc: Vec<Linear>,
    #[module(skip)]
    options: DeformRoiPoolOptions,
}

impl ModuleDisplay for DeformRoiPool {
    fn custom_content(&self, content: Content) -> Option<Content> {
        content
            .add("offset_fc", &self.offset_fc)
            .add_debug_attribute("options", &self.options)
            .optional()
    }
}

impl DeformRoiPool {
    /// Key map of mmcv's `DeformRoIPoolPack`: its `offset_fc` Sequential's linear layers
    /// `offset_fc.{0,2,4}` → `offset_fc[0..3]`.
    pub fn key_map(&self) -> crate::weights::KeyMap {
        crate::weights::KeyMap::new()
            .prefix("offset_fc.2", "offset_fc.1")
            .prefix("offset_fc.4", "offset_fc.2")
    }

    /// The pooling options it was built with.
    pub fn options(&self) -> &DeformRoiPoolOptions {
        &self.options
    }

    /// # Shapes
    /// - input: `[N, C, H, W]` with `C = output_channels`
    /// - rois: `[K, 5]`, rows `(batch index, x1, y1, x2, y2)`
    /// - output: `[K, C, output_size[0], output_size[1]]`
    ///
    /// # Panics
    /// If `input` does not have `output_channels` channels, or as [`deform_roi_pool`].
    pub fn forward(&self, input: Tensor<4>, rois: Tensor<2>) -> Tensor<4> {
        let expected = self.offset_fc[0].weight.dims()[0];
        let [_, channels, _, _] = input.dims();
        let [ph, pw] = self.options.output_size;
        assert!(
            channels * ph * pw == expected,
            "DeformRoiPool: input must have output_channels = {} channels, got {channels}",
            expected / (ph * pw)
        );
        let pooled = deform_roi_pool(input.clone(), rois.clone(), None, self.options.clone());
        let k = pooled.dims()[0];
        let last = self.offset_fc.len() - 1;
        let mut x = pooled.reshape([k, expected]);
        for (i, fc) in self.offset_fc.iter().enumerate() {
            x = fc.forward(x);
            if i < last {
                x = relu(x);
            }
        }
        let offset = x.reshape([k, 2, ph, pw]);
        deform_roi_pool(input, rois, Some(offset), self.options.clone())
    }
}
