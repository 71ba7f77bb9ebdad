//! [`ModelOptions`]: the settings a run file's `[model]` section can give a registry model.

use super::ConfigError;

/// The settings a run file's `[model]` section can give a registry model: its name and
/// classes, and the widths and sizes a small recipe narrows. `None` keeps the registry's
/// value; a family refuses the options it does not take.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelOptions {
    /// A [`crate::registry`] name, e.g. `unet_resnet18`.
    pub name: String,
    /// Classes (segmentation and detection: the background included).
    pub num_classes: usize,
    /// The input `[height, width]` (a Swin's window layout and a Mask R-CNN's transform are
    /// sized to it; the size must suit the model).
    pub image_size: [usize; 2],
    /// Backbone width (`base_channels`; 64 = the upstream width).
    pub base_channels: Option<usize>,
    /// U-Net decoder widths, deepest first.
    pub decoder_channels: Option<Vec<usize>>,
    /// DeepLab decoder/head width; Mask R-CNN's FPN and head width.
    pub head_channels: Option<usize>,
    /// DeepLab output stride.
    pub output_stride: Option<usize>,
    /// DeepLab ASPP rates.
    pub atrous_rates: Option<Vec<usize>>,
    /// DeepLabV3: build torchvision's auxiliary FCN head on C4.
    pub aux_loss: Option<bool>,
    /// Swin embedding width.
    pub embed_dim: Option<usize>,
    /// Swin blocks per stage.
    pub depths: Option<Vec<usize>>,
    /// Swin attention heads per stage.
    pub num_heads: Option<Vec<usize>>,
    /// Swin window side.
    pub window_size: Option<usize>,
    /// Swin patch side.
    pub patch_size: Option<usize>,
    /// Swin stochastic-depth rate of the last block.
    pub drop_path_rate: Option<f64>,
    /// Mask R-CNN: anchors sampled per image for the RPN losses.
    pub rpn_batch_size_per_image: Option<usize>,
    /// Mask R-CNN: proposals sampled per image for the box and mask losses.
    pub box_batch_size_per_image: Option<usize>,
    /// Mask R-CNN: the backbone's BatchNorm frozen (torchvision's `FrozenBatchNorm2d`, used
    /// with pretrained weights) instead of trained (from scratch, the default here).
    pub frozen_batch_norm: Option<bool>,
    /// Mask R-CNN: backbone stages trained, from the last (torchvision: 3 with pretrained
    /// weights, 5 from scratch; the default follows `frozen_batch_norm`).
    pub trainable_backbone_layers: Option<usize>,
    /// Mask R-CNN: the frozen BatchNorm's epsilon (torchvision's COCO weights: 0).
    pub backbone_norm_eps: Option<f64>,
    /// Mask R-CNN: the transform's `[min_size, max_size]` (torchvision: `[800, 1333]`;
    /// default: the run's image size, so its images are not rescaled).
    pub transform_size: Option<[usize; 2]>,
}

impl ModelOptions {
    /// The options that are set, by key.
    pub fn given(&self) -> Vec<&'static str> {
        [
            ("base_channels", self.base_channels.is_some()),
            ("decoder_channels", self.decoder_channels.is_some()),
            ("head_channels", self.head_channels.is_some()),
            ("output_stride", self.output_stride.is_some()),
            ("atrous_rates", self.atrous_rates.is_some()),
            ("aux_loss", self.aux_loss.is_some()),
            ("embed_dim", self.embed_dim.is_some()),
            ("depths", self.depths.is_some()),
            ("num_heads", self.num_heads.is_some()),
            ("window_size", self.window_size.is_some()),
            ("patch_size", self.patch_size.is_some()),
            ("drop_path_rate", self.drop_path_rate.is_some()),
            (
                "rpn_batch_size_per_image",
                self.rpn_batch_size_per_image.is_some(),
            ),
            (
                "box_batch_size_per_image",
                self.box_batch_size_per_image.is_some(),
            ),
            ("frozen_batch_norm", self.frozen_batch_norm.is_some()),
            (
                "trainable_backbone_layers",
                self.trainable_backbone_layers.is_some(),
            ),
            ("backbone_norm_eps", self.backbone_norm_eps.is_some()),
            ("transform_size", self.transform_size.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, given)| given.then_some(key))
        .collect()
    }

    /// Refuses every option that is set but not in `takes`, naming the first.
    ///
    /// # Errors
    /// [`ConfigError::Refused`].
    pub(crate) fn only(&self, takes: &[&str]) -> Result<(), ConfigError> {
        match self.given().into_iter().find(|k| !takes.contains(k)) {
            Some(key) => Err(ConfigError::Refused {
                key,
                model: self.name.clone(),
            }),
            None => Ok(()),
        }
    }
}
