//! From a run file's `[model]` section to a zoo model, and what that model is trained for.

use burn::prelude::*;
use zoo_models::registry::{ModelConfig, ZooModel, config as registry_config};

use crate::config::RunConfig;

/// What a model predicts, which decides the loss, the targets and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Per-pixel class logits `[B, C, H, W]` (DeepLabV3, DeepLabV3+, U-Net).
    Segmentation,
    /// Image class logits `[B, C]` (ResNet, Swin).
    Classification,
    /// Objects: boxes, classes and masks (Mask R-CNN).
    Instance,
}

impl Task {
    /// The task of a model family.
    pub fn of(model: &ModelConfig) -> Task {
        match model {
            ModelConfig::ResNet(_) | ModelConfig::Swin(_) => Task::Classification,
            ModelConfig::DeepLabV3(_) | ModelConfig::DeepLabV3Plus(_) | ModelConfig::Unet(_) => {
                Task::Segmentation
            }
            ModelConfig::MaskRcnn(_) => Task::Instance,
        }
    }

    /// The metric that picks the best checkpoint (`val_miou`, `val_accuracy` or
    /// `val_mask_ap`).
    pub fn primary_metric(self) -> &'static str {
        match self {
            Task::Segmentation => "val_miou",
            Task::Classification => "val_accuracy",
            Task::Instance => "val_mask_ap",
        }
    }
}

/// The model a run file describes: the registry's defaults for `model.name`, then the
/// file's overrides (widths, DeepLab stride and rates, Swin sizes; a Swin's `img_size` is
/// the data's `image_size`; Mask R-CNN: `base_channels`, `head_channels` = the FPN, mask-head
/// and box-head width, and its transform sized to `image_size` so that inputs are not
/// rescaled).
///
/// # Errors
/// An unknown name, or an override the model family does not take (naming the key).
pub fn model_config(config: &RunConfig) -> Result<ModelConfig, String> {
    let m = &config.model;
    let mut mc = registry_config(&m.name, m.num_classes).ok_or_else(|| {
        format!(
            "model.name: unknown model {:?}; expected one of {}",
            m.name,
            zoo_models::registry::names().join(", ")
        )
    })?;
    let refuse = |key: &str, given: bool| {
        if given {
            Err(format!("model.{key}: {} does not take this key", m.name))
        } else {
            Ok(())
        }
    };
    let swin_keys = [
        ("embed_dim", m.embed_dim.is_some()),
        ("depths", m.depths.is_some()),
        ("num_heads", m.num_heads.is_some()),
        ("window_size", m.window_size.is_some()),
        ("patch_size", m.patch_size.is_some()),
        ("drop_path_rate", m.drop_path_rate.is_some()),
    ];
    let deeplab_keys = [
        ("output_stride", m.output_stride.is_some()),
        ("atrous_rates", m.atrous_rates.is_some()),
    ];
    match &mut mc {
        ModelConfig::DeepLabV3(c) => {
            c.base_channels = m.base_channels.unwrap_or(c.base_channels);
            c.head_channels = m.head_channels.unwrap_or(c.head_channels);
            c.output_stride = m.output_stride.unwrap_or(c.output_stride);
            c.atrous_rates = m.atrous_rates.clone().unwrap_or(c.atrous_rates.clone());
            c.aux_head = m.aux_loss.unwrap_or(c.aux_head);
        }
        ModelConfig::DeepLabV3Plus(c) => {
            c.base_channels = m.base_channels.unwrap_or(c.base_channels);
            c.decoder_channels = m.head_channels.unwrap_or(c.decoder_channels);
            c.output_stride = m.output_stride.unwrap_or(c.output_stride);
            c.atrous_rates = m.atrous_rates.clone().unwrap_or(c.atrous_rates.clone());
        }
        ModelConfig::Unet(c) => {
            c.base_channels = m.base_channels.unwrap_or(c.base_channels);
            c.decoder_channels = m
                .decoder_channels
                .clone()
                .unwrap_or(c.decoder_channels.clone());
        }
        ModelConfig::ResNet(c) => {
            c.base_channels = m.base_channels.unwrap_or(c.base_channels);
        }
        ModelConfig::MaskRcnn(c) => {
            c.base_channels = m.base_channels.unwrap_or(c.base_channels);
            if let Some(h) = m.head_channels {
                c.fpn_channels = h;
                c.mask_layers = vec![h; 4];
                c.mask_predictor_channels = h;
                c.representation_size = 4 * h;
            }
            // Trained here from scratch: as torchvision builds it without pretrained weights,
            // trainable BatchNorm and every backbone stage trained.
            c.frozen_batch_norm = false;
            c.trainable_backbone_layers = 5;
            if let Some(n) = m.rpn_batch_size_per_image {
                c.rpn.batch_size_per_image = n;
            }
            if let Some(n) = m.box_batch_size_per_image {
                c.roi_heads.batch_size_per_image = n;
            }
            let [ih, iw] = config.data.image_size;
            c.transform.min_size = ih.min(iw);
            c.transform.max_size = ih.max(iw);
        }
        ModelConfig::Swin(c) => {
            c.img_size = config.data.image_size;
            c.embed_dim = m.embed_dim.unwrap_or(c.embed_dim);
            c.depths = m.depths.clone().unwrap_or(c.depths.clone());
            c.num_heads = m.num_heads.clone().unwrap_or(c.num_heads.clone());
            c.window_size = m.window_size.unwrap_or(c.window_size);
            c.patch_size = m.patch_size.unwrap_or(c.patch_size);
            c.drop_path_rate = m.drop_path_rate.unwrap_or(c.drop_path_rate);
            refuse("base_channels", m.base_channels.is_some())?;
            refuse("decoder_channels", m.decoder_channels.is_some())?;
        }
    }
    if !matches!(mc, ModelConfig::Swin(_)) {
        for (key, given) in swin_keys {
            refuse(key, given)?;
        }
    }
    if !matches!(mc, ModelConfig::Unet(_)) {
        refuse("decoder_channels", m.decoder_channels.is_some())?;
    }
    if !matches!(mc, ModelConfig::DeepLabV3(_)) {
        refuse("aux_loss", m.aux_loss.is_some())?;
    }
    if !matches!(
        mc,
        ModelConfig::DeepLabV3(_) | ModelConfig::DeepLabV3Plus(_)
    ) {
        for (key, given) in deeplab_keys {
            refuse(key, given)?;
        }
    }
    if !matches!(
        mc,
        ModelConfig::DeepLabV3(_) | ModelConfig::DeepLabV3Plus(_) | ModelConfig::MaskRcnn(_)
    ) {
        refuse("head_channels", m.head_channels.is_some())?;
    }
    if !matches!(mc, ModelConfig::MaskRcnn(_)) {
        refuse(
            "rpn_batch_size_per_image",
            m.rpn_batch_size_per_image.is_some(),
        )?;
        refuse(
            "box_batch_size_per_image",
            m.box_batch_size_per_image.is_some(),
        )?;
    }
    check_input_size(&mc, config.data.image_size).map_err(|e| format!("data.image_size: {e}"))?;
    Ok(mc)
}

/// Whether `model` takes `[H, W]` inputs: U-Net's five ×2 stages need multiples of 32 (as
/// smp); every other model takes any size of at least 32×32 (the deepest feature map keeps
/// a pixel).
///
/// # Errors
/// What the size must be, and the size given.
pub fn check_input_size(model: &ModelConfig, [h, w]: [usize; 2]) -> Result<(), String> {
    match model {
        ModelConfig::Unet(_)
            if !(h.is_multiple_of(32) && w.is_multiple_of(32)) || h == 0 || w == 0 =>
        {
            Err(format!(
                "U-Net needs sides that are positive multiples of 32, got [{h}, {w}]"
            ))
        }
        _ if h < 32 || w < 32 => Err(format!("expected at least [32, 32], got [{h}, {w}]")),
        _ => Ok(()),
    }
}

/// A forward pass: the logits of either task, plus DeepLabV3's auxiliary logits.
pub struct Logits {
    /// `[B, C, H, W]` (segmentation) or `[B, C]` as `[B, C, 1, 1]` (classification).
    pub out: Tensor<4>,
    /// DeepLabV3's auxiliary head, `[B, C, H, W]`.
    pub aux: Option<Tensor<4>>,
}

/// Runs `model` on normalised images `[B, 3, H, W]`.
///
/// # Panics
/// For Mask R-CNN, which predicts objects: see [`crate::instance`].
pub fn forward(model: &ZooModel, x: Tensor<4>) -> Logits {
    let class = |logits: Tensor<2>| {
        let [b, c] = logits.dims();
        logits.reshape([b, c, 1, 1])
    };
    let (out, aux) = match model {
        ZooModel::DeepLabV3(m) => {
            let out = m.forward(x);
            (out.out, out.aux)
        }
        ZooModel::DeepLabV3Plus(m) => (m.forward(x), None),
        ZooModel::Unet(m) => (m.forward(x), None),
        ZooModel::ResNet(m) => (class(m.forward(x)), None),
        ZooModel::Swin(m) => (class(m.forward(x)), None),
        ZooModel::MaskRcnn(_) => panic!(
            "model::forward: Mask R-CNN gives detections, not logits (the instance task calls \
             its `detect` and `losses`)"
        ),
    };
    Logits { out, aux }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(extra: &str) -> RunConfig {
        RunConfig::parse(extra, Path::new("t.toml"), &[]).unwrap()
    }

    #[test]
    fn overrides_reach_the_model_and_foreign_keys_are_refused() {
        let c = parse(
            "[model]\nname = \"swin_tiny_patch4_window7_224\"\nnum_classes = 4\nembed_dim = 16\n\
             depths = [2, 2]\nnum_heads = [1, 2]\nwindow_size = 4\n[data]\nimage_size = [32, 32]\n",
        );
        let ModelConfig::Swin(s) = model_config(&c).unwrap() else {
            panic!("not a swin")
        };
        assert_eq!((s.embed_dim, s.img_size, s.window_size), (16, [32, 32], 4));
        assert_eq!(Task::of(&ModelConfig::Swin(s)), Task::Classification);
        let c = parse("[model]\nname = \"unet_resnet18\"\nnum_classes = 3\nembed_dim = 16\n");
        let e = model_config(&c).unwrap_err();
        assert!(
            e.contains("model.embed_dim") && e.contains("unet_resnet18"),
            "{e}"
        );
        let c = parse(
            "[model]\nname = \"unet_resnet18\"\nnum_classes = 3\n[data]\nimage_size = [48, 64]\n",
        );
        let e = model_config(&c).unwrap_err();
        assert!(
            e.contains("data.image_size") && e.contains("[48, 64]"),
            "{e}"
        );
        let c = parse("[model]\nname = \"resnet18\"\nnum_classes = 3\noutput_stride = 8\n");
        assert!(
            model_config(&c)
                .unwrap_err()
                .contains("model.output_stride")
        );
        let c = parse(
            "[model]\nname = \"maskrcnn_resnet50_fpn\"\nnum_classes = 3\nhead_channels = 16\n\
             box_batch_size_per_image = 32\n[data]\nimage_size = [48, 80]\n",
        );
        let ModelConfig::MaskRcnn(m) = model_config(&c).unwrap() else {
            panic!("not a Mask R-CNN")
        };
        assert_eq!(
            (
                m.fpn_channels,
                m.roi_heads.batch_size_per_image,
                m.rpn.batch_size_per_image
            ),
            (16, 32, 256)
        );
        assert_eq!((m.transform.min_size, m.transform.max_size), (48, 80));
        assert!(!m.frozen_batch_norm && m.trainable_backbone_layers == 5);
        assert_eq!(Task::of(&ModelConfig::MaskRcnn(m)), Task::Instance);
        let c = parse(
            "[model]\nname = \"unet_resnet18\"\nnum_classes = 3\nrpn_batch_size_per_image = 8\n",
        );
        assert!(
            model_config(&c)
                .unwrap_err()
                .contains("model.rpn_batch_size_per_image")
        );
    }

    #[test]
    fn aux_loss_builds_the_deeplabv3_aux_head_and_only_there() {
        let deeplab = |extra: &str| {
            parse(&format!(
                "[model]\nname = \"deeplabv3_resnet50\"\nnum_classes = 3\n{extra}"
            ))
        };
        for (extra, aux) in [
            ("", false),
            ("aux_loss = true\n", true),
            ("aux_loss = false\n", false),
        ] {
            let ModelConfig::DeepLabV3(d) = model_config(&deeplab(extra)).unwrap() else {
                panic!("not a DeepLabV3")
            };
            assert_eq!(d.aux_head, aux, "{extra:?}");
        }
        let c =
            parse("[model]\nname = \"deeplabv3plus_resnet18\"\nnum_classes = 3\naux_loss = true\n");
        let e = model_config(&c).unwrap_err();
        assert!(
            e.contains("model.aux_loss") && e.contains("deeplabv3plus_resnet18"),
            "{e}"
        );
    }

    /// Every shipped run file (`configs/*.toml`) loads and describes a model that builds.
    #[test]
    fn shipped_run_files_load() {
        use crate::config::DataFormat;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        // On-disk formats point at data this repository does not ship: any existing
        // directory passes the check of `data.root`.
        let root = format!("data.root=\"{}\"", std::env::temp_dir().display());
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let run = match RunConfig::load(&path, &[]) {
                Ok(run) => run,
                Err(e) => {
                    assert!(
                        e.to_string().contains("data.root"),
                        "{}: {e}",
                        path.display()
                    );
                    RunConfig::load(&path, std::slice::from_ref(&root))
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                }
            };
            if run.data.format == DataFormat::Shapes {
                assert!(run.data.root.is_none(), "{}", path.display());
            }
            model_config(&run).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
        assert!(seen >= 6, "only {seen} run files in {}", dir.display());
    }
}
