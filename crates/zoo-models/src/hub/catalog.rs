//! The registry's entries. Sources (read from the installed packages, not from memory):
//! - torchvision 0.24.1: `models/resnet.py`, `models/segmentation/deeplabv3.py`,
//!   `models/detection/mask_rcnn.py` (`*_Weights` enums: `url`, `transforms`, `_metrics`);
//!   `transforms/_presets.py` (`ImageClassification`: resize 256 unless given, bilinear;
//!   `SemanticSegmentation`: resize only); Mask R-CNN's `GeneralizedRCNNTransform`
//!   (min 800, max 1333, ImageNet statistics).
//! - timm 1.0.31: `models/swin_transformer.py` (`default_cfgs`: `hf_hub_id='timm/'`, crop_pct
//!   0.9, bicubic, `license='mit'`; the first tag listed is the default) and the repository's
//!   `results/results-imagenet.csv` (commit 0173a139) for top-1. timm resizes to
//!   `floor(224 / 0.9) = 248` before the 224 crop.
//! - segmentation_models_pytorch 0.5.0: `encoders/resnet.py` (`pretrained_settings`:
//!   `smp-hub/<encoder>.<weights>` at a pinned revision, `model.safetensors`).

use super::{
    Checksum, Classes, Interpolation, Metric, Resize, Role, Source, Transform, WeightSpec,
};
use crate::task::{IMAGENET_MEAN, IMAGENET_STD};

const TV_LICENCE: &str = "BSD-3-Clause (torchvision); torchvision notes that pretrained \
                          weights may carry the terms of the data they were trained on";
const TIMM_LICENCE: &str = "MIT (timm's pretrained_cfg and model card)";
const SMP_LICENCE: &str = "not stated in smp 0.5.0's sources: see the Hugging Face model card";

/// torchvision's `ImageClassification(crop_size=224, resize_size=resize)`.
const fn tv_classification(resize: usize) -> Transform {
    Transform {
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
        resize: Some(Resize::ShorterSide(resize)),
        crop: Some(224),
        interpolation: Interpolation::Bilinear,
    }
}

/// torchvision's `SemanticSegmentation(resize_size=520)`.
const TV_SEGMENTATION: Transform = Transform {
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    resize: Some(Resize::ShorterSide(520)),
    crop: None,
    interpolation: Interpolation::Bilinear,
};

/// Mask R-CNN's `GeneralizedRCNNTransform` (torchvision's `ObjectDetection` preset only
/// scales to `[0, 1]`; the model normalises and resizes).
const TV_DETECTION: Transform = Transform {
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    resize: Some(Resize::MinMax {
        min: 800,
        max: 1333,
    }),
    crop: None,
    interpolation: Interpolation::Bilinear,
};

/// timm's Swin `_cfg`: 224 input, crop_pct 0.9, bicubic, ImageNet statistics.
const TIMM_SWIN: Transform = Transform {
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    resize: Some(Resize::ShorterSide(248)),
    crop: Some(224),
    interpolation: Interpolation::Bicubic,
};

/// smp's ResNet encoders: ImageNet statistics on `[0, 1]` inputs, no resize of their own.
const SMP_ENCODER: Transform = Transform {
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    resize: None,
    crop: None,
    interpolation: Interpolation::Bilinear,
};

const fn imagenet(top1: f64, top5: f64) -> [Metric; 2] {
    [
        Metric {
            dataset: "ImageNet-1K",
            name: "acc@1",
            value: top1,
        },
        Metric {
            dataset: "ImageNet-1K",
            name: "acc@5",
            value: top5,
        },
    ]
}

#[allow(clippy::too_many_arguments)] // one row of the table, read as such
const fn tv(
    name: &'static str,
    arch: &'static str,
    url: &'static str,
    prefix: &'static str,
    classes: Classes,
    transform: Transform,
    metrics: &'static [Metric],
    default: bool,
) -> WeightSpec {
    WeightSpec {
        name,
        arch,
        role: Role::Model,
        source: Source::Torchvision,
        url,
        checksum: Checksum::Sha256Prefix(prefix),
        classes,
        transform,
        metrics,
        licence: TV_LICENCE,
        default,
        notes: "torchvision; checksum: the SHA-256 prefix in the file name",
    }
}

const fn timm(
    name: &'static str,
    arch: &'static str,
    url: &'static str,
    classes: Classes,
    metrics: &'static [Metric],
    default: bool,
) -> WeightSpec {
    WeightSpec {
        name,
        arch,
        role: Role::Model,
        source: Source::Timm,
        url,
        checksum: Checksum::Unpublished,
        classes,
        transform: TIMM_SWIN,
        metrics,
        licence: TIMM_LICENCE,
        default,
        notes: "timm's Hugging Face file (timm's key layout, not the original Swin release); \
                top-1 from timm's results-imagenet.csv",
    }
}

const fn smp(
    name: &'static str,
    arch: &'static str,
    url: &'static str,
    default: bool,
) -> WeightSpec {
    WeightSpec {
        name,
        arch,
        role: Role::Encoder,
        source: Source::Smp,
        url,
        checksum: Checksum::Unpublished,
        classes: Classes::None,
        transform: SMP_ENCODER,
        metrics: &[],
        licence: SMP_LICENCE,
        default,
        notes: "smp encoder weights (torchvision ResNet keys, no classifier), at the revision \
                smp 0.5.0 pins; mean/std: smp's ImageNet settings",
    }
}

/// torchvision's `COCO-val2017-VOC-labels` figures.
const fn voc_labels(miou: f64, pixel_acc: f64) -> [Metric; 2] {
    [
        Metric {
            dataset: "COCO-val2017-VOC-labels",
            name: "miou",
            value: miou,
        },
        Metric {
            dataset: "COCO-val2017-VOC-labels",
            name: "pixel_acc",
            value: pixel_acc,
        },
    ]
}

const fn swin_top1(value: f64) -> [Metric; 1] {
    [Metric {
        dataset: "ImageNet-1K",
        name: "top1",
        value,
    }]
}

pub(super) const WEIGHTS: &[WeightSpec] = &[
    // torchvision classifiers.
    tv(
        "resnet18.imagenet1k_v1",
        "resnet18",
        "https://download.pytorch.org/models/resnet18-f37072fd.pth",
        "f37072fd",
        Classes::ImageNet1k,
        tv_classification(256),
        &imagenet(69.758, 89.078),
        true,
    ),
    tv(
        "resnet34.imagenet1k_v1",
        "resnet34",
        "https://download.pytorch.org/models/resnet34-b627a593.pth",
        "b627a593",
        Classes::ImageNet1k,
        tv_classification(256),
        &imagenet(73.314, 91.420),
        true,
    ),
    tv(
        "resnet50.imagenet1k_v1",
        "resnet50",
        "https://download.pytorch.org/models/resnet50-0676ba61.pth",
        "0676ba61",
        Classes::ImageNet1k,
        tv_classification(256),
        &imagenet(76.130, 92.862),
        false,
    ),
    tv(
        "resnet50.imagenet1k_v2",
        "resnet50",
        "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
        "11ad3fa6",
        Classes::ImageNet1k,
        tv_classification(232),
        &imagenet(80.858, 95.434),
        true,
    ),
    tv(
        "resnet101.imagenet1k_v1",
        "resnet101",
        "https://download.pytorch.org/models/resnet101-63fe2227.pth",
        "63fe2227",
        Classes::ImageNet1k,
        tv_classification(256),
        &imagenet(77.374, 93.546),
        false,
    ),
    tv(
        "resnet101.imagenet1k_v2",
        "resnet101",
        "https://download.pytorch.org/models/resnet101-cd907fc2.pth",
        "cd907fc2",
        Classes::ImageNet1k,
        tv_classification(232),
        &imagenet(81.886, 95.780),
        true,
    ),
    // torchvision segmenters (with the auxiliary FCN head; loads with or without `aux_loss`).
    tv(
        "deeplabv3_resnet50.coco_with_voc_labels_v1",
        "deeplabv3_resnet50",
        "https://download.pytorch.org/models/deeplabv3_resnet50_coco-cd0a2569.pth",
        "cd0a2569",
        Classes::Voc,
        TV_SEGMENTATION,
        &voc_labels(66.4, 92.4),
        true,
    ),
    tv(
        "deeplabv3_resnet101.coco_with_voc_labels_v1",
        "deeplabv3_resnet101",
        "https://download.pytorch.org/models/deeplabv3_resnet101_coco-586e9e4e.pth",
        "586e9e4e",
        Classes::Voc,
        TV_SEGMENTATION,
        &voc_labels(67.4, 92.4),
        true,
    ),
    // torchvision Mask R-CNN v1 (burn-zoo's Mask R-CNN; v2's layout differs).
    tv(
        "maskrcnn_resnet50_fpn.coco_v1",
        "maskrcnn_resnet50_fpn",
        "https://download.pytorch.org/models/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth",
        "bf2d0c1e",
        Classes::Coco91,
        TV_DETECTION,
        &[
            Metric {
                dataset: "COCO-val2017",
                name: "box_map",
                value: 37.9,
            },
            Metric {
                dataset: "COCO-val2017",
                name: "mask_map",
                value: 34.6,
            },
        ],
        true,
    ),
    // timm Swin (window 7, 224).
    timm(
        "swin_tiny_patch4_window7_224.ms_in1k",
        "swin_tiny_patch4_window7_224",
        "https://huggingface.co/timm/swin_tiny_patch4_window7_224.ms_in1k/resolve/main/model.safetensors",
        Classes::ImageNet1k,
        &swin_top1(81.376),
        true,
    ),
    timm(
        "swin_tiny_patch4_window7_224.ms_in22k_ft_in1k",
        "swin_tiny_patch4_window7_224",
        "https://huggingface.co/timm/swin_tiny_patch4_window7_224.ms_in22k_ft_in1k/resolve/main/model.safetensors",
        Classes::ImageNet1k,
        &swin_top1(80.968),
        false,
    ),
    timm(
        "swin_tiny_patch4_window7_224.ms_in22k",
        "swin_tiny_patch4_window7_224",
        "https://huggingface.co/timm/swin_tiny_patch4_window7_224.ms_in22k/resolve/main/model.safetensors",
        Classes::ImageNet22k,
        &[],
        false,
    ),
    timm(
        "swin_small_patch4_window7_224.ms_in22k_ft_in1k",
        "swin_small_patch4_window7_224",
        "https://huggingface.co/timm/swin_small_patch4_window7_224.ms_in22k_ft_in1k/resolve/main/model.safetensors",
        Classes::ImageNet1k,
        &swin_top1(83.298),
        true,
    ),
    timm(
        "swin_small_patch4_window7_224.ms_in1k",
        "swin_small_patch4_window7_224",
        "https://huggingface.co/timm/swin_small_patch4_window7_224.ms_in1k/resolve/main/model.safetensors",
        Classes::ImageNet1k,
        &swin_top1(83.208),
        false,
    ),
    timm(
        "swin_small_patch4_window7_224.ms_in22k",
        "swin_small_patch4_window7_224",
        "https://huggingface.co/timm/swin_small_patch4_window7_224.ms_in22k/resolve/main/model.safetensors",
        Classes::ImageNet22k,
        &[],
        false,
    ),
    timm(
        "swin_base_patch4_window7_224.ms_in22k_ft_in1k",
        "swin_base_patch4_window7_224",
        "https://huggingface.co/timm/swin_base_patch4_window7_224.ms_in22k_ft_in1k/resolve/main/model.safetensors",
        Classes::ImageNet1k,
        &swin_top1(85.272),
        true,
    ),
    timm(
        "swin_base_patch4_window7_224.ms_in1k",
        "swin_base_patch4_window7_224",
        "https://huggingface.co/timm/swin_base_patch4_window7_224.ms_in1k/resolve/main/model.safetensors",
        Classes::ImageNet1k,
        &swin_top1(83.606),
        false,
    ),
    timm(
        "swin_base_patch4_window7_224.ms_in22k",
        "swin_base_patch4_window7_224",
        "https://huggingface.co/timm/swin_base_patch4_window7_224.ms_in22k/resolve/main/model.safetensors",
        Classes::ImageNet22k,
        &[],
        false,
    ),
    // smp encoders (backbones of U-Net and DeepLabV3+).
    smp(
        "smp-hub/resnet18.imagenet",
        "resnet18",
        "https://huggingface.co/smp-hub/resnet18.imagenet/resolve/3f2325ff978283d47aa6a1d6878ca20565622683/model.safetensors",
        true,
    ),
    smp(
        "smp-hub/resnet18.ssl",
        "resnet18",
        "https://huggingface.co/smp-hub/resnet18.ssl/resolve/d600d5116aac2e6e595f99f40612074c723c00b2/model.safetensors",
        false,
    ),
    smp(
        "smp-hub/resnet18.swsl",
        "resnet18",
        "https://huggingface.co/smp-hub/resnet18.swsl/resolve/0e3a35d4d8e344088c14a96eee502a88ac70eae1/model.safetensors",
        false,
    ),
    smp(
        "smp-hub/resnet34.imagenet",
        "resnet34",
        "https://huggingface.co/smp-hub/resnet34.imagenet/resolve/7a57b34f723329ff020b3f8bc41771163c519d0c/model.safetensors",
        true,
    ),
    smp(
        "smp-hub/resnet50.imagenet",
        "resnet50",
        "https://huggingface.co/smp-hub/resnet50.imagenet/resolve/00cb74e366966d59cd9a35af57e618af9f88efe9/model.safetensors",
        true,
    ),
    smp(
        "smp-hub/resnet50.ssl",
        "resnet50",
        "https://huggingface.co/smp-hub/resnet50.ssl/resolve/d07daf5b4377f3700c6ac61906b0aafbc4eca46b/model.safetensors",
        false,
    ),
    smp(
        "smp-hub/resnet50.swsl",
        "resnet50",
        "https://huggingface.co/smp-hub/resnet50.swsl/resolve/b9520cce124f91c6fe7eee45721a2c7954f0d8c0/model.safetensors",
        false,
    ),
    smp(
        "smp-hub/resnet101.imagenet",
        "resnet101",
        "https://huggingface.co/smp-hub/resnet101.imagenet/resolve/cd7c15e8c51da86ae6a084515fdb962d0c94e7d1/model.safetensors",
        true,
    ),
];
