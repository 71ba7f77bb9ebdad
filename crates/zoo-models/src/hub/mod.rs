//! The published upstream weights of the zoo's models: where each file is, how to check it,
//! what its classes are, how its inputs were prepared, what it reached, and its licence.
//!
//! Data only: [`weights`] lists every file, [`find`] looks one up by name (or a model name
//! for upstream's default weights), [`for_model`] says which files load into a registry
//! model, whole or as its backbone. Downloading them into a local cache is
//! `fetch`, behind the `download` cargo feature.
//!
//! Every figure comes from the upstream sources: torchvision 0.24's `Weights` enums (URL,
//! `meta`, `transforms`), timm 1.0's `default_cfgs` and its published
//! `results/results-imagenet.csv`, and segmentation_models_pytorch 0.5's encoder
//! `pretrained_settings` (Hugging Face repositories pinned at a revision). Checksums are
//! what upstream publishes: torchvision's file names carry the first 8 hex digits of the
//! file's SHA-256 (what `torch.hub`'s `check_hash` verifies); the Hugging Face files of timm
//! and smp come with no checksum in those sources, so only the download's completeness is
//! checked for them ([`Checksum::Unpublished`]).

mod catalog;
mod classes;
#[cfg(feature = "download")]
pub mod fetch;

pub use classes::{COCO91_CLASS_NAMES, imagenet1k_class_names};
#[cfg(feature = "download")]
pub use fetch::{FetchError, Fetcher, fetch};

use crate::registry;

/// Who publishes a weight file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// torchvision (`download.pytorch.org`).
    Torchvision,
    /// timm (`huggingface.co/timm`).
    Timm,
    /// segmentation_models_pytorch (`huggingface.co/smp-hub`).
    Smp,
}

impl Source {
    /// Lower-case name, as printed.
    pub fn name(self) -> &'static str {
        match self {
            Self::Torchvision => "torchvision",
            Self::Timm => "timm",
            Self::Smp => "smp",
        }
    }
}

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The whole model of [`WeightSpec::arch`] (head included).
    Model,
    /// An encoder only (no classifier): smp's `encoder_weights`, loadable as the backbone of
    /// the models built on [`WeightSpec::arch`].
    Encoder,
}

/// How a downloaded file is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum<'a> {
    /// The full SHA-256, lower-case hex.
    Sha256(&'a str),
    /// The leading hex digits of the SHA-256 (torchvision's file-name hash: `resnet50-11ad3fa6.pth`).
    Sha256Prefix(&'a str),
    /// Upstream publishes no checksum in the sources the registry was built from; only the
    /// download's completeness (its announced length) is checked.
    Unpublished,
}

impl Checksum<'_> {
    /// Whether `sha256` (lower-case hex of a whole file) satisfies the checksum.
    pub fn matches(&self, sha256: &str) -> bool {
        match self {
            Self::Sha256(h) => sha256.eq_ignore_ascii_case(h),
            Self::Sha256Prefix(p) => sha256
                .get(..p.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(p)),
            Self::Unpublished => true,
        }
    }
}

impl std::fmt::Display for Checksum<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sha256(h) => write!(f, "sha256 {h}"),
            Self::Sha256Prefix(p) => write!(f, "sha256 {p}…"),
            Self::Unpublished => write!(f, "no published checksum"),
        }
    }
}

/// The classes of a file's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classes {
    /// ImageNet-1k, torchvision's names (`_IMAGENET_CATEGORIES`; timm uses the same order).
    ImageNet1k,
    /// ImageNet-22k as Microsoft's Swin release (21841 classes); names not shipped.
    ImageNet22k,
    /// Pascal VOC's 21, background first (torchvision's COCO-with-VOC-labels segmenters).
    Voc,
    /// torchvision's 91 raw COCO ids, background first, `N/A` at unused ids.
    Coco91,
    /// No head (an encoder).
    None,
}

impl Classes {
    /// Number of classes (0 for an encoder).
    pub fn count(self) -> usize {
        match self {
            Self::ImageNet1k => 1000,
            Self::ImageNet22k => 21841,
            Self::Voc => zoo_data::voc::VOC_CLASS_NAMES.len(),
            Self::Coco91 => COCO91_CLASS_NAMES.len(),
            Self::None => 0,
        }
    }

    /// The class names, index = class id, where the registry ships them.
    pub fn names(self) -> Option<Vec<&'static str>> {
        match self {
            Self::ImageNet1k => Some(imagenet1k_class_names()),
            Self::Voc => Some(zoo_data::voc::VOC_CLASS_NAMES.to_vec()),
            Self::Coco91 => Some(COCO91_CLASS_NAMES.to_vec()),
            Self::ImageNet22k | Self::None => None,
        }
    }
}

/// How an image is resized before it is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// Shorter side to this many pixels, aspect kept (torchvision's `resize_size`).
    ShorterSide(usize),
    /// Shorter side to `min` unless the longer would exceed `max` (Mask R-CNN's transform).
    MinMax {
        /// Target of the shorter side.
        min: usize,
        /// Bound on the longer side.
        max: usize,
    },
}

/// Resampling filter of the resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// Bilinear.
    Bilinear,
    /// Bicubic.
    Bicubic,
}

/// The evaluation preprocessing the weights were published with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform {
    /// Channel means (after scaling to `[0, 1]`).
    pub mean: [f32; 3],
    /// Channel standard deviations.
    pub std: [f32; 3],
    /// The resize, if any.
    pub resize: Option<Resize>,
    /// Side of the centre crop after the resize, if any.
    pub crop: Option<usize>,
    /// Filter of the resize.
    pub interpolation: Interpolation,
}

/// A published accuracy figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    /// Evaluation set, as upstream names it (`ImageNet-1K`, `COCO-val2017`).
    pub dataset: &'static str,
    /// Figure (`acc@1`, `miou`, `box_map`).
    pub name: &'static str,
    /// Value, in percent.
    pub value: f64,
}

/// One published weight file.
#[derive(Debug, Clone, Copy)]
pub struct WeightSpec {
    /// Registry name: `<model>.<upstream tag>` (torchvision's enum member lower-cased, timm's
    /// tag) or smp's Hugging Face repository (`smp-hub/resnet50.imagenet`).
    pub name: &'static str,
    /// The registry model whose module tree the file's keys follow (for an encoder: the
    /// ResNet it is).
    pub arch: &'static str,
    /// Whole model or encoder.
    pub role: Role,
    /// Publisher.
    pub source: Source,
    /// Where upstream serves it.
    pub url: &'static str,
    /// How the download is verified.
    pub checksum: Checksum<'static>,
    /// Classes of its head.
    pub classes: Classes,
    /// The evaluation preprocessing it was published with.
    pub transform: Transform,
    /// Published accuracy figures (empty where upstream publishes none).
    pub metrics: &'static [Metric],
    /// Licence, as upstream states it.
    pub licence: &'static str,
    /// Upstream's default weights for `arch` from this source (torchvision's `DEFAULT`,
    /// timm's untagged name, smp's `encoder_weights="imagenet"`).
    pub default: bool,
    /// Provenance and caveats.
    pub notes: &'static str,
}

impl WeightSpec {
    /// What a download needs: name, URL, checksum.
    pub fn file(&self) -> WeightFile<'static> {
        WeightFile {
            name: self.name,
            url: self.url,
            checksum: self.checksum,
        }
    }

    /// The settings upstream builds its model with for these weights, where they differ from
    /// building it to train from scratch: torchvision's detection builders, given pretrained
    /// weights, freeze BatchNorm, set its eps to 0 for the v1 COCO weights (`overwrite_eps`)
    /// and resize with the weights' transform (min / max side).
    pub fn build_settings(&self) -> BuildSettings {
        match self.transform.resize {
            Some(Resize::MinMax { min, max }) => BuildSettings {
                frozen_batch_norm: Some(true),
                backbone_norm_eps: (self.source == Source::Torchvision).then_some(0.0),
                transform_size: Some([min, max]),
            },
            _ => BuildSettings::default(),
        }
    }

    /// The first published figure, as `dataset name value` (e.g. `ImageNet-1K acc@1 80.858`).
    pub fn headline(&self) -> Option<String> {
        self.metrics
            .first()
            .map(|m| format!("{} {} {}", m.dataset, m.name, m.value))
    }
}

/// Model settings implied by a weight file ([`WeightSpec::build_settings`]); `None`: the
/// model's default.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BuildSettings {
    /// Frozen BatchNorm in the backbone.
    pub frozen_batch_norm: Option<bool>,
    /// The backbone BatchNorm's eps.
    pub backbone_norm_eps: Option<f64>,
    /// A detector's transform `[min side, max side]`.
    pub transform_size: Option<[usize; 2]>,
}

/// A file to download: what `Fetcher::fetch` (feature `download`) needs, for a registry entry or any
/// other file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightFile<'a> {
    /// Name (names the cache directory and appears in errors).
    pub name: &'a str,
    /// URL (its last path segment is the cached file's name).
    pub url: &'a str,
    /// How the download is verified.
    pub checksum: Checksum<'a>,
}

/// Every weight file of the registry.
pub fn weights() -> &'static [WeightSpec] {
    catalog::WEIGHTS
}

/// The weight file called `name`; a registry model name (`resnet50`) gives upstream's default
/// weights for it.
pub fn find(name: &str) -> Option<&'static WeightSpec> {
    let all = weights();
    all.iter().find(|w| w.name == name).or_else(|| {
        all.iter()
            .find(|w| w.arch == name && w.role == Role::Model && w.default)
    })
}

/// The weight files that load into a registry model.
#[derive(Debug, Clone, Default)]
pub struct ModelWeights {
    /// Files of the whole model (head included).
    pub model: Vec<&'static WeightSpec>,
    /// Files that load as its backbone (classifier and heads re-initialised): its ResNet's
    /// or Swin's ImageNet weights, smp's encoders.
    pub backbone: Vec<&'static WeightSpec>,
}

/// The registry model whose weights serve as `model`'s backbone: its ResNet (DeepLabV3,
/// DeepLabV3+, U-Net, Mask R-CNN, and a ResNet itself) or itself (Swin). `None` for a name
/// outside the registry.
pub fn backbone_arch(model: &str) -> Option<&'static str> {
    let own = registry::names().into_iter().find(|n| *n == model)?;
    let resnet = ["resnet18", "resnet34", "resnet50", "resnet101"]
        .into_iter()
        .find(|r| model.split('_').any(|part| part == *r));
    Some(resnet.unwrap_or(own))
}

/// The weight files of registry model `model` (`None` for a name outside the registry).
pub fn for_model(model: &str) -> Option<ModelWeights> {
    let backbone = backbone_arch(model)?;
    let all = weights();
    Some(ModelWeights {
        model: all
            .iter()
            .filter(|w| w.arch == model && w.role == Role::Model)
            .collect(),
        backbone: all.iter().filter(|w| w.arch == backbone).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_arches_are_registry_models() {
        let all = weights();
        for (i, w) in all.iter().enumerate() {
            assert!(
                all[..i].iter().all(|o| o.name != w.name),
                "duplicate {}",
                w.name
            );
            assert!(
                registry::names().contains(&w.arch),
                "{}: arch {}",
                w.name,
                w.arch
            );
            assert!(w.url.starts_with("https://"), "{}", w.name);
        }
    }

    #[test]
    fn torchvision_checksums_are_the_file_name_hash() {
        for w in weights().iter().filter(|w| w.source == Source::Torchvision) {
            let Checksum::Sha256Prefix(p) = w.checksum else {
                panic!("{}: torchvision publishes a hash prefix", w.name)
            };
            let file = w.url.rsplit('/').next().unwrap();
            assert!(file.ends_with(&format!("-{p}.pth")), "{}: {file}", w.name);
        }
    }

    #[test]
    fn one_default_per_arch_and_source() {
        for w in weights() {
            let defaults = weights()
                .iter()
                .filter(|o| o.arch == w.arch && o.source == w.source && o.default)
                .count();
            assert_eq!(defaults, 1, "{} ({})", w.arch, w.source.name());
        }
        assert_eq!(find("resnet50").unwrap().name, "resnet50.imagenet1k_v2");
        assert_eq!(
            find("swin_small_patch4_window7_224").unwrap().name,
            "swin_small_patch4_window7_224.ms_in22k_ft_in1k"
        );
        assert!(find("resnet50.nope").is_none());
    }

    #[test]
    fn every_registry_model_has_weights() {
        for model in registry::names() {
            let w = for_model(model).unwrap();
            assert!(!w.backbone.is_empty(), "{model}: no backbone weights");
            for spec in &w.model {
                assert_eq!(spec.arch, model);
            }
        }
        let unet = for_model("unet_resnet50").unwrap();
        assert!(unet.model.is_empty());
        assert!(
            unet.backbone
                .iter()
                .any(|w| w.name == "smp-hub/resnet50.swsl")
        );
        let mask = for_model("maskrcnn_resnet50_fpn").unwrap();
        assert_eq!(mask.model[0].classes.count(), 91);
        assert!(for_model("vgg16").is_none());
    }

    #[test]
    fn class_names_match_their_counts() {
        for c in [Classes::ImageNet1k, Classes::Voc, Classes::Coco91] {
            assert_eq!(c.names().unwrap().len(), c.count(), "{c:?}");
        }
        let coco = Classes::Coco91.names().unwrap();
        assert_eq!(
            (coco[1], coco[12], coco[90]),
            ("person", "N/A", "toothbrush")
        );
        let imagenet = imagenet1k_class_names();
        assert_eq!((imagenet[0], imagenet[999]), ("tench", "toilet tissue"));
    }

    #[test]
    fn checksum_matching() {
        let h = "11ad3fa6aaaa";
        assert!(Checksum::Sha256Prefix("11ad3fa6").matches(h));
        assert!(!Checksum::Sha256Prefix("11ad3fa7").matches(h));
        assert!(Checksum::Sha256(h).matches("11AD3FA6AAAA"));
        assert!(!Checksum::Sha256(h).matches("11ad3fa6aaab"));
        assert!(Checksum::Unpublished.matches(h));
    }
}
