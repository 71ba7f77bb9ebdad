//! What a model expects of its input (timm's `default_cfg`): normalisation statistics and
//! the sizes it takes; and samples turned into input tensors accordingly.

use burn::prelude::*;
use burn::tensor::TensorData;
use zoo_data::Sample;

use super::TaskError;

/// ImageNet channel means the upstream weights expect (torchvision, timm and smp alike).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The input sides a model takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSize {
    /// Smallest side (the deepest feature map keeps a pixel).
    pub min: usize,
    /// Sides must be multiples of this (U-Net's five ×2 stages: 32; DeepLabV3+: its output
    /// stride); 1 for any size.
    pub multiple_of: usize,
}

impl InputSize {
    /// Any size of at least `min × min`.
    pub fn at_least(min: usize) -> Self {
        Self {
            min,
            multiple_of: 1,
        }
    }

    /// Checks `[height, width]`.
    ///
    /// # Errors
    /// [`InputSizeError`]: what the sides must be, and the size given.
    pub fn check(&self, size: [usize; 2]) -> Result<(), InputSizeError> {
        let [h, w] = size;
        let multiple = h.is_multiple_of(self.multiple_of) && w.is_multiple_of(self.multiple_of);
        if h >= self.min && w >= self.min && multiple {
            return Ok(());
        }
        Err(InputSizeError {
            size,
            expected: *self,
        })
    }
}

/// An input size a model does not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(self))]
pub struct InputSizeError {
    /// The `[height, width]` given.
    pub size: [usize; 2],
    /// The sizes the model takes.
    pub expected: InputSize,
}

fn describe(e: &InputSizeError) -> String {
    let [h, w] = e.size;
    let InputSize { min, multiple_of } = e.expected;
    if multiple_of > 1 {
        format!(
            "expected sides that are multiples of {multiple_of} and at least {}, got [{h}, {w}]",
            min.max(multiple_of)
        )
    } else {
        format!("expected at least [{min}, {min}], got [{h}, {w}]")
    }
}

/// How images become a model's input: `(x − mean) / std` per channel, at a size the model
/// takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocessing {
    /// Per-channel mean subtracted from `[0, 1]` values.
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
    /// The sizes the model takes.
    pub input: InputSize,
}

impl Preprocessing {
    /// ImageNet statistics (what torchvision, timm and smp weights expect).
    pub fn imagenet(input: InputSize) -> Self {
        Self {
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            input,
        }
    }

    /// Images passed as they are, in `[0, 1]` (a model that normalises them itself, as
    /// Mask R-CNN's transform does).
    pub fn unnormalized(input: InputSize) -> Self {
        Self {
            mean: [0.0; 3],
            std: [1.0; 3],
            input,
        }
    }

    fn normalized(&self, sample: &Sample) -> Vec<f32> {
        let [h, w] = sample.size;
        sample
            .image
            .chunks_exact(h * w)
            .enumerate()
            .flat_map(|(c, plane)| plane.iter().map(move |v| (v - self.mean[c]) / self.std[c]))
            .collect()
    }

    /// One image, normalised: `[3, H, W]`.
    pub fn image(&self, sample: &Sample, device: &Device) -> Tensor<3> {
        let [h, w] = sample.size;
        Tensor::from_data(TensorData::new(self.normalized(sample), [3, h, w]), device)
    }

    /// A batch of images, normalised: `[B, 3, H, W]`.
    ///
    /// # Errors
    /// Samples of different sizes (resize them first), naming the first that differs.
    pub fn images(&self, samples: &[Sample], device: &Device) -> Result<Tensor<4>, TaskError> {
        let first = samples.first().map_or([0, 0], |s| s.size);
        let [h, w] = first;
        let mut data = Vec::with_capacity(samples.len() * 3 * h * w);
        for (index, s) in samples.iter().enumerate() {
            if s.size != first {
                return Err(TaskError::Size {
                    index,
                    size: s.size,
                    first,
                });
            }
            data.extend(self.normalized(s));
        }
        Ok(Tensor::from_data(
            TensorData::new(data, [samples.len(), 3, h, w]),
            device,
        ))
    }
}
