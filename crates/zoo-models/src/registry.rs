//! Model name → default configuration, for every model and variant of the zoo (used by the
//! CLI and configs).

use burn::prelude::*;

use crate::deeplab::{DeepLabV3, DeepLabV3Config, DeepLabV3Plus, DeepLabV3PlusConfig};
use crate::detection::mask_rcnn::{MaskRcnn, MaskRcnnConfig};
use crate::family::{ConfigError, Family, FamilyConfig, ModelOptions};
use crate::resnet::{ResNet, ResNetConfig, ResNetDepth};
use crate::swin::{SwinTransformer, SwinTransformerConfig};
use crate::unet::{Unet, UnetConfig};
use crate::weights::KeyMap;

/// The configuration of any zoo model.
#[derive(Config, Debug)]
pub enum ModelConfig {
    /// A ResNet classifier (or backbone).
    ResNet(ResNetConfig),
    /// torchvision DeepLabV3.
    DeepLabV3(DeepLabV3Config),
    /// smp DeepLabV3+.
    DeepLabV3Plus(DeepLabV3PlusConfig),
    /// smp U-Net.
    Unet(UnetConfig),
    /// timm Swin Transformer.
    Swin(SwinTransformerConfig),
    /// torchvision Mask R-CNN.
    MaskRcnn(MaskRcnnConfig),
}

/// Any zoo model, built from a [`ModelConfig`].
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ZooModel {
    /// A ResNet.
    ResNet(ResNet),
    /// DeepLabV3.
    DeepLabV3(DeepLabV3),
    /// DeepLabV3+.
    DeepLabV3Plus(DeepLabV3Plus),
    /// U-Net.
    Unet(Unet),
    /// Swin Transformer.
    Swin(SwinTransformer),
    /// Mask R-CNN.
    MaskRcnn(MaskRcnn),
}

impl ModelConfig {
    /// The family's view of the configuration (validation, preprocessing, task, options).
    pub fn family(&self) -> &dyn FamilyConfig {
        match self {
            Self::ResNet(c) => c,
            Self::DeepLabV3(c) => c,
            Self::DeepLabV3Plus(c) => c,
            Self::Unet(c) => c,
            Self::Swin(c) => c,
            Self::MaskRcnn(c) => c,
        }
    }

    /// [`Self::family`], mutable (to apply options).
    pub fn family_mut(&mut self) -> &mut dyn FamilyConfig {
        match self {
            Self::ResNet(c) => c,
            Self::DeepLabV3(c) => c,
            Self::DeepLabV3Plus(c) => c,
            Self::Unet(c) => c,
            Self::Swin(c) => c,
            Self::MaskRcnn(c) => c,
        }
    }

    /// Builds the model on `device`.
    pub fn init(&self, device: &Device) -> ZooModel {
        match self {
            Self::ResNet(c) => ZooModel::ResNet(c.init(device)),
            Self::DeepLabV3(c) => ZooModel::DeepLabV3(c.init(device)),
            Self::DeepLabV3Plus(c) => ZooModel::DeepLabV3Plus(c.init(device)),
            Self::Unet(c) => ZooModel::Unet(c.init(device)),
            Self::Swin(c) => ZooModel::Swin(c.init(device)),
            Self::MaskRcnn(c) => ZooModel::MaskRcnn(c.init(device)),
        }
    }
}

impl ZooModel {
    /// The family's view of the model (training loss and predictions of a batch).
    pub fn family(&self) -> &dyn Family {
        match self {
            Self::ResNet(m) => m,
            Self::DeepLabV3(m) => m,
            Self::DeepLabV3Plus(m) => m,
            Self::Unet(m) => m,
            Self::Swin(m) => m,
            Self::MaskRcnn(m) => m,
        }
    }

    /// Loads upstream ResNet weights (torchvision's `resnet*` keys or smp's encoder keys; a
    /// classifier `fc.*` in the file is ignored) into the model's backbone — the encoder of
    /// U-Net and DeepLabV3+, DeepLabV3's and Mask R-CNN's ResNet — leaving the rest as
    /// initialised (torchvision's `weights_backbone`, smp's `encoder_weights`).
    ///
    /// # Errors
    /// A file that does not fit the backbone (every key at fault listed), or a model without
    /// a separate backbone (ResNet and Swin: load the whole model's weights instead).
    pub fn load_backbone(self, path: &std::path::Path) -> Result<Self, BackboneError> {
        let resnet = |r: ResNet| {
            let map = r.key_map().ignore(r"^fc\.");
            crate::weights::load_upstream(r, path, &map)
        };
        Ok(match self {
            Self::Unet(mut m) => {
                m.encoder = resnet(m.encoder)?;
                Self::Unet(m)
            }
            Self::DeepLabV3(mut m) => {
                m.backbone = resnet(m.backbone)?;
                Self::DeepLabV3(m)
            }
            Self::DeepLabV3Plus(mut m) => {
                m.encoder = resnet(m.encoder)?;
                Self::DeepLabV3Plus(m)
            }
            Self::MaskRcnn(mut m) => {
                m.backbone.body = resnet(m.backbone.body)?;
                Self::MaskRcnn(m)
            }
            Self::ResNet(_) | Self::Swin(_) => return Err(BackboneError::Whole),
        })
    }

    /// The upstream key map of the model (see [`crate::weights`]).
    pub fn key_map(&self) -> KeyMap {
        match self {
            Self::ResNet(m) => m.key_map(),
            Self::DeepLabV3(m) => m.key_map(),
            Self::DeepLabV3Plus(m) => m.key_map(),
            Self::Unet(m) => m.key_map(),
            Self::Swin(m) => m.key_map(),
            Self::MaskRcnn(m) => m.key_map(),
        }
    }
}

/// Why [`ZooModel::load_backbone`] failed.
#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    /// The model is its backbone.
    #[error(
        "the model has no separate backbone (it is one): load the whole model's weights instead"
    )]
    Whole,
    /// The file does not fit the backbone.
    #[error(transparent)]
    Weights(#[from] crate::weights::WeightsError),
}

/// One registered model.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Registry name (upstream's model name where there is one).
    pub name: &'static str,
    /// What it is and which upstream class its weights come from.
    pub description: &'static str,
}

const ENTRIES: &[Entry] = &[
    Entry {
        name: "resnet18",
        description: "ResNet-18 classifier (torchvision resnet18)",
    },
    Entry {
        name: "resnet34",
        description: "ResNet-34 classifier (torchvision resnet34)",
    },
    Entry {
        name: "resnet50",
        description: "ResNet-50 classifier (torchvision resnet50)",
    },
    Entry {
        name: "resnet101",
        description: "ResNet-101 classifier (torchvision resnet101)",
    },
    Entry {
        name: "deeplabv3_resnet50",
        description: "DeepLabV3, ResNet-50, output stride 8 (torchvision deeplabv3_resnet50)",
    },
    Entry {
        name: "deeplabv3_resnet101",
        description: "DeepLabV3, ResNet-101, output stride 8 (torchvision deeplabv3_resnet101)",
    },
    Entry {
        name: "deeplabv3plus_resnet18",
        description: "DeepLabV3+, ResNet-18 encoder, output stride 16 (smp DeepLabV3Plus)",
    },
    Entry {
        name: "deeplabv3plus_resnet34",
        description: "DeepLabV3+, ResNet-34 encoder, output stride 16 (smp DeepLabV3Plus)",
    },
    Entry {
        name: "deeplabv3plus_resnet50",
        description: "DeepLabV3+, ResNet-50 encoder, output stride 16 (smp DeepLabV3Plus)",
    },
    Entry {
        name: "deeplabv3plus_resnet101",
        description: "DeepLabV3+, ResNet-101 encoder, output stride 16 (smp DeepLabV3Plus)",
    },
    Entry {
        name: "unet_resnet18",
        description: "U-Net, ResNet-18 encoder (smp Unet)",
    },
    Entry {
        name: "unet_resnet34",
        description: "U-Net, ResNet-34 encoder (smp Unet)",
    },
    Entry {
        name: "unet_resnet50",
        description: "U-Net, ResNet-50 encoder (smp Unet)",
    },
    Entry {
        name: "unet_resnet101",
        description: "U-Net, ResNet-101 encoder (smp Unet)",
    },
    Entry {
        name: "swin_tiny_patch4_window7_224",
        description: "Swin-T (timm)",
    },
    Entry {
        name: "swin_small_patch4_window7_224",
        description: "Swin-S (timm)",
    },
    Entry {
        name: "swin_base_patch4_window7_224",
        description: "Swin-B (timm)",
    },
    Entry {
        name: "maskrcnn_resnet50_fpn",
        description: "Mask R-CNN, ResNet-50 + FPN (torchvision maskrcnn_resnet50_fpn)",
    },
];

/// Every registered model name.
pub fn names() -> Vec<&'static str> {
    ENTRIES.iter().map(|e| e.name).collect()
}

/// Every registered model.
pub fn entries() -> &'static [Entry] {
    ENTRIES
}

/// The default configuration of model `name` with `num_classes` classes, or `None` for an
/// unknown name.
pub fn config(name: &str, num_classes: usize) -> Option<ModelConfig> {
    let depth = |prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|d| d.parse::<usize>().ok())
            .and_then(|d| ResNetDepth::try_from(d).ok())
    };
    if !names().contains(&name) {
        return None;
    }
    Some(if let Some(d) = depth("resnet") {
        ModelConfig::ResNet(ResNetConfig::new(d).with_num_classes(Some(num_classes)))
    } else if let Some(d) = depth("deeplabv3_resnet") {
        ModelConfig::DeepLabV3(DeepLabV3Config::new(num_classes).with_depth(d))
    } else if let Some(d) = depth("deeplabv3plus_resnet") {
        ModelConfig::DeepLabV3Plus(DeepLabV3PlusConfig::new(num_classes).with_depth(d))
    } else if let Some(d) = depth("unet_resnet") {
        ModelConfig::Unet(UnetConfig::new(num_classes).with_depth(d))
    } else if name == "maskrcnn_resnet50_fpn" {
        ModelConfig::MaskRcnn(MaskRcnnConfig::new(num_classes))
    } else {
        let base = match name {
            "swin_tiny_patch4_window7_224" => SwinTransformerConfig::tiny(),
            "swin_small_patch4_window7_224" => SwinTransformerConfig::small(),
            _ => SwinTransformerConfig::base(),
        };
        ModelConfig::Swin(base.with_num_classes(Some(num_classes)))
    })
}

/// The configuration a run file's `[model]` section describes: the registry's defaults for
/// `options.name` with `options.num_classes`, then the options (refused where the family
/// does not take them), every setting checked, and `options.image_size` checked against the
/// sizes the model takes.
///
/// # Errors
/// An unknown name, an option the family does not take, or a setting out of range — each
/// naming its key (`image_size` for the input size).
pub fn build(options: &ModelOptions) -> Result<ModelConfig, ConfigError> {
    let mut config =
        config(&options.name, options.num_classes).ok_or_else(|| ConfigError::UnknownModel {
            name: options.name.clone(),
            expected: names().join(", "),
        })?;
    config.family_mut().apply(options)?;
    let family = config.family();
    family.validate()?;
    family
        .preprocessing()
        .input
        .check(options.image_size)
        .map_err(|e| ConfigError::Invalid {
            key: "image_size".into(),
            message: format!("{}: {e}", family.family_name()),
        })?;
    Ok(config)
}
