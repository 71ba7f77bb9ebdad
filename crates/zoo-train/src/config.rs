//! Run files: TOML with every key checked (`deny_unknown_fields`), defaults, then the file,
//! then `key=value` overrides; errors name the file, the key and what was expected.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zoo_data::augment::AugmentConfig;
use zoo_data::shapes::ShapesConfig;
use zoo_models::family::ModelOptions;
use zoo_models::registry::{self, ModelConfig};

/// A whole run file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The model.
    pub model: ModelSection,
    /// The data.
    #[serde(default)]
    pub data: DataSection,
    /// Optimisation.
    #[serde(default)]
    pub train: TrainSection,
    /// How validation images are sized.
    #[serde(default)]
    pub eval: EvalSection,
}

/// `[eval]`: how validation images are sized, for the validation of a training run and for
/// `zoo eval`. Unset keys come from the weights' evaluation preprocessing when `model.weights`
/// is a registry name (torchvision's segmentation weights: shorter side 520; its detection
/// weights: images as they are, the model's 800 / 1333 transform inside; classifiers: shorter
/// side then a centre crop), else `resize = "fixed"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// `"fixed"`: every image resized to `data.image_size` (batches of `train.batch_size`);
    /// `"shorter_side"`: the shorter side resized to `size`, the aspect ratio kept, then a
    /// centre `crop` if set (torchvision's references); `"original"`: images as they are (a
    /// detector with its own transform, which maps its boxes and masks back). Variable-size
    /// images are batched while consecutive ones share a size.
    pub resize: Option<EvalResize>,
    /// The shorter side of `"shorter_side"`.
    pub size: Option<usize>,
    /// Side of the centre crop after a `"shorter_side"` resize.
    pub crop: Option<usize>,
    /// The `"shorter_side"` resize's filter, antialiased as torchvision's and PIL's:
    /// `"bilinear"` or `"bicubic"` (timm's Swin weights).
    pub interpolation: Option<Interpolation>,
}

/// See [`EvalSection::interpolation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    /// Antialiased bilinear (triangle filter).
    Bilinear,
    /// Antialiased bicubic (Keys, a = −0.5).
    Bicubic,
}

impl From<Interpolation> for zoo_data::Filter {
    fn from(i: Interpolation) -> Self {
        match i {
            Interpolation::Bilinear => zoo_data::Filter::Bilinear,
            Interpolation::Bicubic => zoo_data::Filter::Bicubic,
        }
    }
}

/// See [`EvalSection::resize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalResize {
    /// To `data.image_size`.
    Fixed,
    /// Shorter side to `eval.size`, aspect kept, optionally centre-cropped.
    ShorterSide,
    /// As they are.
    Original,
}

/// How validation images are sized, resolved from `[eval]`, the weights and `[data]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalProtocol {
    /// Every image resized to `[height, width]`.
    Fixed([usize; 2]),
    /// Shorter side to `size` (torchvision's rounding, antialiased `filter`), then a centre
    /// `crop × crop` if set.
    ShorterSide {
        /// The shorter side.
        size: usize,
        /// Side of the centre crop.
        crop: Option<usize>,
        /// The resize's filter.
        filter: zoo_data::Filter,
    },
    /// Images at their own size.
    Original,
}

/// `[model]`: a registry name plus the overrides small recipes need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// A `zoo_models::registry` name, e.g. `unet_resnet18`.
    pub name: String,
    /// Classes (for the shapes data: 5, background included).
    pub num_classes: usize,
    /// Backbone width (`base_channels`; 64 = the upstream width).
    pub base_channels: Option<usize>,
    /// U-Net decoder widths, deepest first.
    pub decoder_channels: Option<Vec<usize>>,
    /// DeepLab decoder/head width; Mask R-CNN's FPN and head width.
    pub head_channels: Option<usize>,
    /// DeepLab output stride (8 or 16).
    pub output_stride: Option<usize>,
    /// DeepLab ASPP rates.
    pub atrous_rates: Option<Vec<usize>>,
    /// DeepLabV3: build torchvision's auxiliary FCN head on C4 (`aux_loss=True`), whose loss
    /// joins the main one with weight `train.aux_weight` (torchvision's builder and the
    /// registry leave it out).
    #[serde(default)]
    pub aux_loss: Option<bool>,
    /// Swin embedding width (stage 1; doubled at every stage).
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
    /// Mask R-CNN: anchors sampled per image for the RPN losses (torchvision: 256).
    #[serde(default)]
    pub rpn_batch_size_per_image: Option<usize>,
    /// Mask R-CNN: proposals sampled per image for the box and mask losses (torchvision:
    /// 512).
    #[serde(default)]
    pub box_batch_size_per_image: Option<usize>,
    /// Start from upstream weights of the whole model (fine-tuning): a weights registry name
    /// (`zoo weights list`, downloaded into the cache) or a `.pth` / `.safetensors` file with
    /// upstream key names. With another class count than the file's, the classifier keeps
    /// its fresh initialisation (the run says which tensors).
    #[serde(default)]
    pub weights: Option<String>,
    /// Start the backbone (the ResNet of U-Net, DeepLabV3/V3+, Mask R-CNN) from upstream
    /// weights — a registry name (e.g. `resnet50.imagenet1k_v2`, `smp-hub/resnet50.imagenet`)
    /// or a file —, the decoder and heads from their initialisation (torchvision's
    /// `weights_backbone`, smp's `encoder_weights`).
    #[serde(default)]
    pub backbone_weights: Option<String>,
    /// Mask R-CNN: freeze the backbone's BatchNorm (torchvision's choice with pretrained
    /// weights; default false: trained, as from scratch).
    #[serde(default)]
    pub frozen_batch_norm: Option<bool>,
    /// Mask R-CNN: backbone stages trained, from the last (default 3 when frozen, else 5).
    #[serde(default)]
    pub trainable_backbone_layers: Option<usize>,
    /// Mask R-CNN: the frozen BatchNorm's epsilon (torchvision's COCO weights: 0.0).
    #[serde(default)]
    pub backbone_norm_eps: Option<f64>,
    /// Mask R-CNN: the transform's `[min_size, max_size]` (torchvision: `[800, 1333]`;
    /// default: `data.image_size`).
    #[serde(default)]
    pub transform_size: Option<[usize; 2]>,
}

impl ModelSection {
    /// The registry entry `weights` names, if it names one.
    pub fn registry_weights(&self) -> Option<&'static zoo_models::hub::WeightSpec> {
        let name = self.weights.as_deref()?;
        (!Path::new(name).is_file())
            .then(|| zoo_models::hub::find(name))
            .flatten()
    }

    /// The section as registry options, for images of `image_size`. Where `weights` names
    /// published weights, unset options are those upstream builds the model with for them
    /// ([`WeightSpec::build_settings`](zoo_models::hub::WeightSpec::build_settings):
    /// torchvision's Mask R-CNN COCO weights: frozen BatchNorm with eps 0 and the 800 / 1333
    /// transform).
    pub fn options(&self, image_size: [usize; 2]) -> ModelOptions {
        let (mut frozen, mut eps, mut transform) = (
            self.frozen_batch_norm,
            self.backbone_norm_eps,
            self.transform_size,
        );
        if let Some(spec) = self.registry_weights() {
            let implied = spec.build_settings();
            frozen = frozen.or(implied.frozen_batch_norm);
            eps = eps.or(implied.backbone_norm_eps);
            transform = transform.or(implied.transform_size);
        }
        ModelOptions {
            name: self.name.clone(),
            num_classes: self.num_classes,
            image_size,
            base_channels: self.base_channels,
            decoder_channels: self.decoder_channels.clone(),
            head_channels: self.head_channels,
            output_stride: self.output_stride,
            atrous_rates: self.atrous_rates.clone(),
            aux_loss: self.aux_loss,
            embed_dim: self.embed_dim,
            depths: self.depths.clone(),
            num_heads: self.num_heads.clone(),
            window_size: self.window_size,
            patch_size: self.patch_size,
            drop_path_rate: self.drop_path_rate,
            rpn_batch_size_per_image: self.rpn_batch_size_per_image,
            box_batch_size_per_image: self.box_batch_size_per_image,
            frozen_batch_norm: frozen,
            trainable_backbone_layers: self.trainable_backbone_layers,
            backbone_norm_eps: eps,
            transform_size: transform,
        }
    }

    /// The file `weights` names: a path as it is, or a registry name downloaded into (or
    /// found in) the weights cache; `None` without `weights`.
    ///
    /// # Errors
    /// Neither an existing file nor a registry name; a failed download; a registry name in a
    /// build without the `download` feature.
    pub fn weights_file(&self) -> Result<Option<PathBuf>, ConfigError> {
        resolve_weights("model.weights", self.weights.as_deref())
    }

    /// [`Self::weights_file`] for `backbone_weights`.
    ///
    /// # Errors
    /// See [`Self::weights_file`].
    pub fn backbone_weights_file(&self) -> Result<Option<PathBuf>, ConfigError> {
        resolve_weights("model.backbone_weights", self.backbone_weights.as_deref())
    }
}

/// A weights file named by `key`: an existing path, or a registry name fetched into the
/// cache.
fn resolve_weights(key: &str, weights: Option<&str>) -> Result<Option<PathBuf>, ConfigError> {
    let Some(weights) = weights else {
        return Ok(None);
    };
    let invalid = |message: String| ConfigError::Invalid {
        path: PathBuf::from("<run file>"),
        key: key.into(),
        message,
    };
    let path = PathBuf::from(weights);
    if path.is_file() {
        return Ok(Some(path));
    }
    if zoo_models::hub::find(weights).is_none() {
        return Err(invalid(format!(
            "{weights:?} is neither a file nor a weights registry name (`zoo weights list`)"
        )));
    }
    #[cfg(feature = "download")]
    {
        zoo_models::hub::fetch(weights)
            .map(Some)
            .map_err(|e| invalid(e.to_string()))
    }
    #[cfg(not(feature = "download"))]
    Err(invalid(format!(
        "{weights:?} is a registry name, but this build has no downloads (feature \
             `download`); fetch it with `zoo weights fetch {weights}` and pass the file"
    )))
}

/// Where the samples come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// The built-in procedural shapes data (`zoo_data::shapes`); needs no files.
    Shapes,
    /// VOC-style segmentation: `root/{JPEGImages, SegmentationClass, ImageSets/Segmentation}`.
    Voc,
    /// torchvision ImageFolder classification: `root/<split>/<class>/<image>`.
    ImageFolder,
    /// COCO instances: `root/annotations/instances_<split>.json` and `root/<split>/`.
    Coco,
}

/// `[data]`: the dataset, its splits and the augmentations of the training split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// Dataset format.
    pub format: DataFormat,
    /// Dataset root (on-disk formats).
    pub root: Option<PathBuf>,
    /// Training split name (on-disk formats).
    pub train_split: String,
    /// Validation split name (on-disk formats).
    pub val_split: String,
    /// Image `[height, width]` the model sees (samples of another size are resized).
    pub image_size: [usize; 2],
    /// Training samples per epoch (shapes data).
    pub train_len: usize,
    /// Validation samples (shapes data).
    pub val_len: usize,
    /// Seed of the training split; validation uses `seed + 1` (shapes data).
    pub seed: u64,
    /// Objects per image `[min, max]` (shapes data).
    pub objects: [usize; 2],
    /// Object size as a fraction of the smaller image side, `[min, max]` (shapes data).
    pub object_scale: [f32; 2],
    /// Draw new training samples every epoch (shapes data): epoch `e` (1-based) reads
    /// samples `(e − 1)·train_len … e·train_len − 1` of the procedural training split
    /// instead of repeating the first `train_len`, so a run never sees an image twice.
    pub fresh_samples: bool,
    /// Augmentations of the training split.
    pub augment: AugmentConfig,
    /// Threads that decode and augment a batch.
    pub workers: usize,
    /// Training batches decoded ahead of the step that uses them, on a loader thread
    /// (0: decoded in the step).
    pub prefetch: usize,
    /// COCO class ids: `"contiguous"` (1..=K in category-id order) or `"coco_ids"` (the raw
    /// category ids: torchvision's 91-index labels, which its COCO weights predict).
    pub label_map: LabelMap,
}

/// How COCO categories become class ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelMap {
    /// `1..=K` in category-id order (0 is the background).
    #[default]
    Contiguous,
    /// The raw category ids (COCO's 1..=90 with holes; torchvision's 91 classes).
    CocoIds,
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            format: DataFormat::Shapes,
            root: None,
            train_split: "train".into(),
            val_split: "val".into(),
            image_size: [64, 64],
            train_len: 1000,
            val_len: 100,
            seed: 0,
            objects: [1, 3],
            object_scale: ShapesConfig::default().object_scale,
            fresh_samples: false,
            augment: AugmentConfig::default(),
            workers: 2,
            prefetch: 2,
            label_map: LabelMap::Contiguous,
        }
    }
}

impl DataSection {
    /// The shapes configuration of the training (`val = false`) or validation split.
    pub fn shapes(&self, val: bool) -> ShapesConfig {
        ShapesConfig {
            len: if val { self.val_len } else { self.train_len },
            image_size: self.image_size,
            objects: self.objects,
            object_scale: self.object_scale,
            seed: self.seed + u64::from(val),
        }
    }
}

/// The optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// SGD with momentum (DeepLab's recipe).
    Sgd,
    /// AdamW (Swin's recipe).
    AdamW,
}

/// The learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// `lr · (1 − step/steps)^0.9` (DeepLab).
    Poly,
    /// Cosine decay to 0.
    Cosine,
    /// Constant.
    Constant,
    /// `lr · gamma^k` after the k-th of `train.milestones` (steps; torchvision's detection
    /// references: ×0.1 at 2/3 and 8/9 of the run).
    Multistep,
}

/// `[train]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Optimiser.
    pub optimizer: Optimizer,
    /// Peak learning rate.
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Schedule.
    pub schedule: Schedule,
    /// Linear warmup steps before any schedule (the learning rate rises from `lr / warmup`
    /// to `lr`).
    pub warmup_steps: usize,
    /// The steps at which the `multistep` schedule multiplies the learning rate by
    /// `gamma`, increasing.
    pub milestones: Vec<usize>,
    /// The `multistep` schedule's factor.
    pub gamma: f64,
    /// Clip gradients to this global norm (0 = off).
    pub grad_clip: f32,
    /// Weight of the auxiliary loss (DeepLabV3 with `model.aux_loss = true`).
    pub aux_weight: f64,
    /// Seed of weight init and data order.
    pub seed: u64,
    /// Save a checkpoint every this many epochs (the best one is always kept).
    pub checkpoint_every: usize,
    /// Also commit a resumable checkpoint every this many optimiser steps, mid-epoch
    /// (0 = only at the end of each epoch).
    pub checkpoint_every_steps: usize,
    /// Keep only the newest this many `epoch-N.bpk` files (0 = keep them all).
    pub keep_last: usize,
    /// What a step with a non-finite loss does: stop the run (`"stop"`, an error naming the
    /// step; the last checkpoint stays) or skip that step's update (`"skip"`).
    pub nonfinite: NonFinite,
    /// Devices of the backend to train on, by index (`zoo train --devices 0,1`): one device
    /// selects it; several train data-parallel, one model replica per device, each fed its
    /// part of every batch of `batch_size` (the same batches as on one device; see
    /// [`crate::parallel`]). Empty: the backend's default device. A resumed run may change it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<usize>,
}

/// What a training step with a non-finite (NaN or infinite) loss does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NonFinite {
    /// Stop the run with an error naming the step; nothing non-finite is written.
    #[default]
    Stop,
    /// Skip the step's update (as a loss scaler does) and go on; the run stops if the weights
    /// themselves become non-finite.
    Skip,
}

/// The largest image side a run file may ask for (a batch of two such images already takes
/// ~1.6 GB before the model sees it).
pub const MAX_IMAGE_SIDE: usize = 8192;

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 8,
            optimizer: Optimizer::Sgd,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 1e-4,
            schedule: Schedule::Poly,
            warmup_steps: 0,
            milestones: Vec::new(),
            gamma: 0.1,
            grad_clip: 0.0,
            aux_weight: 0.5,
            seed: 0,
            checkpoint_every: 1,
            checkpoint_every_steps: 0,
            keep_last: 0,
            nonfinite: NonFinite::Stop,
            devices: Vec::new(),
        }
    }
}

/// Why a run file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key, a wrong type or a missing key (toml's message names the
    /// key and the line).
    #[error("{path}: {message}")]
    Parse {
        /// The file (or `<overrides>`).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A `key=value` override is malformed.
    #[error("override {given:?}: {message}")]
    Override {
        /// The override as given.
        given: String,
        /// What is wrong with it.
        message: String,
    },
    /// A value out of range.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The dotted key.
        key: String,
        /// What was expected.
        message: String,
    },
}

impl RunConfig {
    /// Reads `path`, applies `overrides` (`train.lr=0.02`, `model.name="unet_resnet34"`; the
    /// value is TOML, a bare word is taken as a string), and validates.
    ///
    /// # Errors
    /// See [`ConfigError`]: each names the file and the key.
    pub fn load(path: impl AsRef<Path>, overrides: &[String]) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path, overrides)
    }

    /// [`Self::load`] from text (`path` is only used in messages).
    pub fn parse(text: &str, path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| parse_error(e.to_string()))?;
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        let config: RunConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| parse_error(e.to_string()))?;
        config.validate(path)?;
        Ok(config)
    }

    /// The model the run file describes: the registry's defaults for `model.name`, then the
    /// `[model]` options (a Swin's `img_size` and a Mask R-CNN's transform sized to
    /// `data.image_size`), every key checked (see
    /// [`zoo_models::registry::build`]).
    ///
    /// # Errors
    /// An unknown model, an option its family does not take, a setting out of range or an
    /// image size the model does not take, naming the key (`model.…` or `data.image_size`);
    /// `path` is named as the run file.
    pub fn model_config_at(&self, path: &Path) -> Result<ModelConfig, ConfigError> {
        registry::build(&self.model.options(self.data.image_size)).map_err(|e| {
            let key = match e.key() {
                "image_size" => "data.image_size".to_string(),
                key => format!("model.{key}"),
            };
            ConfigError::Invalid {
                path: path.to_path_buf(),
                key,
                message: e.message(),
            }
        })
    }

    /// [`Self::model_config_at`] for a run file that was validated when it was loaded (the
    /// error names `<run file>`).
    ///
    /// # Errors
    /// See [`Self::model_config_at`].
    pub fn model_config(&self) -> Result<ModelConfig, ConfigError> {
        self.model_config_at(Path::new("<run file>"))
    }

    /// How validation images are sized: `[eval]`, else the evaluation preprocessing of the
    /// registry weights `model.weights` names, else `data.image_size`.
    pub fn eval_protocol(&self) -> EvalProtocol {
        let published = self.model.registry_weights().map(|w| w.transform);
        let from_weights = published.and_then(|t| match t.resize? {
            zoo_models::hub::Resize::ShorterSide(size) => {
                Some((EvalResize::ShorterSide, Some(size), t.crop))
            }
            zoo_models::hub::Resize::MinMax { .. } => Some((EvalResize::Original, None, None)),
        });
        let (resize, size, crop) = from_weights.unwrap_or((EvalResize::Fixed, None, None));
        let filter = published.map_or(Interpolation::Bilinear, |t| match t.interpolation {
            zoo_models::hub::Interpolation::Bilinear => Interpolation::Bilinear,
            zoo_models::hub::Interpolation::Bicubic => Interpolation::Bicubic,
        });
        let e = &self.eval;
        match e.resize.unwrap_or(resize) {
            EvalResize::Fixed => EvalProtocol::Fixed(self.data.image_size),
            EvalResize::Original => EvalProtocol::Original,
            EvalResize::ShorterSide => EvalProtocol::ShorterSide {
                size: e
                    .size
                    .or(size)
                    .unwrap_or(self.data.image_size[0].min(self.data.image_size[1])),
                crop: e.crop.or(if e.resize.is_some() { None } else { crop }),
                filter: e.interpolation.unwrap_or(filter).into(),
            },
        }
    }

    /// The resolved configuration as TOML (what a run directory stores).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a RunConfig always serialises")
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| {
            Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                key: key.to_string(),
                message,
            })
        };
        if self.model.num_classes < 2 {
            return invalid(
                "model.num_classes",
                format!("must be at least 2, got {}", self.model.num_classes),
            );
        }
        if let Some(side) = self.data.image_size.iter().find(|&&s| s > MAX_IMAGE_SIDE) {
            return invalid(
                "data.image_size",
                format!(
                    "sides of at most {MAX_IMAGE_SIDE} pixels, got {side} ({:?})",
                    self.data.image_size
                ),
            );
        }
        self.model_config_at(path)?;
        let t = &self.train;
        if t.schedule == Schedule::Multistep
            && (t.milestones.is_empty() || !t.milestones.windows(2).all(|w| w[0] < w[1]))
        {
            return invalid(
                "train.milestones",
                format!(
                    "the multistep schedule needs increasing steps, got {:?}",
                    t.milestones
                ),
            );
        }
        for (key, value, ok, expected) in [
            (
                "train.momentum",
                t.momentum,
                (0.0..1.0).contains(&t.momentum),
                "a number in [0, 1)",
            ),
            (
                "train.weight_decay",
                t.weight_decay,
                t.weight_decay >= 0.0 && t.weight_decay.is_finite(),
                "a number ≥ 0",
            ),
            (
                "train.grad_clip",
                f64::from(t.grad_clip),
                t.grad_clip >= 0.0 && t.grad_clip.is_finite(),
                "a global norm > 0, or 0 for no clipping",
            ),
            (
                "train.gamma",
                t.gamma,
                t.gamma > 0.0 && t.gamma.is_finite(),
                "a factor > 0",
            ),
            (
                "train.aux_weight",
                t.aux_weight,
                t.aux_weight >= 0.0 && t.aux_weight.is_finite(),
                "a number ≥ 0",
            ),
        ] {
            if !ok {
                return invalid(key, format!("expected {expected}, got {value}"));
            }
        }
        for (key, value) in [
            ("train.epochs", t.epochs),
            ("train.batch_size", t.batch_size),
            ("train.checkpoint_every", t.checkpoint_every),
            ("data.train_len", self.data.train_len),
            ("data.val_len", self.data.val_len),
        ] {
            if value == 0 {
                return invalid(key, "must be positive, got 0".into());
            }
        }
        if let Some((i, d)) = t
            .devices
            .iter()
            .enumerate()
            .find(|&(i, d)| t.devices[..i].contains(d))
        {
            return invalid(
                "train.devices",
                format!(
                    "device {d} is listed twice (entries {} and {}), got {:?}",
                    t.devices.iter().position(|x| x == d).unwrap_or(0) + 1,
                    i + 1,
                    t.devices
                ),
            );
        }
        if t.devices.len() > t.batch_size {
            return invalid(
                "train.devices",
                format!(
                    "{} devices but train.batch_size = {}: each device needs at least one image of a batch",
                    t.devices.len(),
                    t.batch_size
                ),
            );
        }
        if !(t.lr > 0.0 && t.lr.is_finite()) {
            return invalid(
                "train.lr",
                format!("must be a positive number, got {}", t.lr),
            );
        }
        if self.data.workers == 0 {
            return invalid("data.workers", "must be positive, got 0".into());
        }
        if let EvalProtocol::ShorterSide { size, crop, .. } = self.eval_protocol() {
            if size == 0 || size > MAX_IMAGE_SIDE {
                return invalid(
                    "eval.size",
                    format!("expected a side in 1..={MAX_IMAGE_SIDE}, got {size}"),
                );
            }
            if let Some(crop) = crop.filter(|&c| c == 0 || c > size) {
                return invalid(
                    "eval.crop",
                    format!("expected a side in 1..={size} (eval.size), got {crop}"),
                );
            }
        }
        if (self.eval.size.is_some()
            || self.eval.crop.is_some()
            || self.eval.interpolation.is_some())
            && self
                .eval
                .resize
                .is_some_and(|r| r != EvalResize::ShorterSide)
        {
            return invalid(
                "eval.size",
                "eval.size, eval.crop and eval.interpolation go with eval.resize = \"shorter_side\""
                    .into(),
            );
        }
        if let Err(e) = self.data.augment.validate() {
            return invalid("data.augment", e.to_string());
        }
        if self.data.label_map != LabelMap::Contiguous && self.data.format != DataFormat::Coco {
            return invalid(
                "data.label_map",
                format!(
                    "only COCO data has category ids to keep; the {:?} format's classes are contiguous",
                    self.data.format
                ),
            );
        }
        match (&self.data.format, &self.data.root) {
            (DataFormat::Shapes, _) => {
                if let Err(e) = self.data.shapes(false).validate() {
                    return invalid("data", e.0);
                }
            }
            _ if self.data.fresh_samples => {
                return invalid(
                    "data.fresh_samples",
                    format!(
                        "only the procedural shapes data can draw new samples; the {:?} format has a fixed training split",
                        self.data.format
                    ),
                );
            }
            (_, None) => {
                return invalid(
                    "data.root",
                    format!(
                        "the {:?} format needs the dataset's directory",
                        self.data.format
                    ),
                );
            }
            (_, Some(root)) if !root.is_dir() => {
                return invalid(
                    "data.root",
                    format!("{}: no such directory", root.display()),
                );
            }
            _ => {}
        }
        Ok(())
    }
}

/// Sets `a.b.c = value` in `table`; the key must exist in the schema (checked when the
/// table is deserialised, which rejects unknown keys).
fn apply_override(table: &mut toml::Table, o: &str) -> Result<(), ConfigError> {
    let err = |m: &str| ConfigError::Override {
        given: o.to_string(),
        message: m.to_string(),
    };
    let (key, raw) = o.split_once('=').ok_or_else(|| err("expected key=value"))?;
    let value: toml::Value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").expect("parsed key"),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(err("empty key segment"));
    }
    let mut node = table;
    for part in &parts[..parts.len() - 1] {
        node = node
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| err(&format!("{part} is not a table")))?;
    }
    node.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[model]\nname = \"unet_resnet18\"\nnum_classes = 5\n";

    #[test]
    fn defaults_file_then_overrides() {
        let c = RunConfig::parse(MINIMAL, Path::new("run.toml"), &[]).unwrap();
        assert_eq!(c.train, TrainSection::default());
        let c = RunConfig::parse(
            MINIMAL,
            Path::new("run.toml"),
            &[
                "train.lr=0.05".into(),
                "train.optimizer=adamw".into(),
                "data.image_size=[32, 32]".into(),
                "data.object_scale=[0.4, 0.9]".into(),
                "data.fresh_samples=true".into(),
            ],
        )
        .unwrap();
        assert_eq!((c.train.lr, c.train.optimizer), (0.05, Optimizer::AdamW));
        assert_eq!(c.data.image_size, [32, 32]);
        assert!(c.data.fresh_samples);
        let shapes = c.data.shapes(true);
        assert_eq!((shapes.object_scale, shapes.seed), ([0.4, 0.9], 1));
        // The resolved config round-trips.
        let back = RunConfig::parse(&c.to_toml(), Path::new("resolved.toml"), &[]).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let e = RunConfig::parse(
            &format!("{MINIMAL}[train]\nepoch = 3\n"),
            Path::new("a.toml"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("a.toml") && e.contains("epoch"), "{e}");
        let e = RunConfig::parse(
            &format!("{MINIMAL}[train]\nlr = \"fast\"\n"),
            Path::new("b.toml"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("b.toml") && e.contains("lr"), "{e}");
        let e = RunConfig::parse(
            "[model]\nname = \"unet_resnet18\"\n",
            Path::new("c.toml"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("num_classes"), "{e}");
        let e = RunConfig::parse(MINIMAL, Path::new("d.toml"), &["model.name=vgg16".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("model.name") && e.contains("vgg16") && e.contains("unet_resnet34"),
            "{e}"
        );
        let e = RunConfig::parse(MINIMAL, Path::new("e.toml"), &["train.epochs=0".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.epochs") && e.contains("positive"), "{e}");
        let e = RunConfig::parse(
            MINIMAL,
            Path::new("g.toml"),
            &["data.object_scale=[0.5, 0.2]".into()],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("object_scale") && e.contains("[0.5, 0.2]"),
            "{e}"
        );
        let e = RunConfig::parse(
            MINIMAL,
            Path::new("h.toml"),
            &["data.format=voc".into(), "data.fresh_samples=true".into()],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("data.fresh_samples") && e.contains("Voc"), "{e}");
        let e = RunConfig::parse(
            MINIMAL,
            Path::new("i.toml"),
            &["data.label_map=coco_ids".into()],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("data.label_map") && e.contains("COCO"), "{e}");
        let e = RunConfig::parse(MINIMAL, Path::new("f.toml"), &["trainlr".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("key=value"), "{e}");
    }

    #[test]
    fn train_devices_are_distinct_and_no_more_than_a_batch() {
        let c = RunConfig::parse(
            MINIMAL,
            Path::new("d.toml"),
            &["train.devices=[0, 1]".into()],
        )
        .unwrap();
        assert_eq!(c.train.devices, vec![0, 1]);
        // An empty list (the default) is not written to the resolved run file.
        assert!(!parse(MINIMAL).to_toml().contains("devices"));
        assert!(c.to_toml().contains("devices = ["), "{}", c.to_toml());
        let e = RunConfig::parse(
            MINIMAL,
            Path::new("d.toml"),
            &["train.devices=[0, 1, 0]".into()],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("train.devices") && e.contains("device 0 is listed twice"),
            "{e}"
        );
        let e = RunConfig::parse(
            MINIMAL,
            Path::new("d.toml"),
            &[
                "train.devices=[0, 1, 2]".into(),
                "train.batch_size=2".into(),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("train.devices") && e.contains("3 devices but train.batch_size = 2"),
            "{e}"
        );
    }

    fn parse(extra: &str) -> RunConfig {
        RunConfig::parse(extra, Path::new("t.toml"), &[]).unwrap()
    }

    fn model_error(text: &str) -> String {
        RunConfig::parse(text, Path::new("m.toml"), &[])
            .unwrap_err()
            .to_string()
    }

    /// `[eval]` resolves from the run file, else from the registry weights' evaluation
    /// preprocessing, else `data.image_size`; bad sizes name the key.
    #[test]
    fn eval_protocol_comes_from_the_file_then_the_weights() {
        let seg = "[model]\nname = \"deeplabv3_resnet50\"\nnum_classes = 21\n\
                   weights = \"deeplabv3_resnet50.coco_with_voc_labels_v1\"\n";
        assert_eq!(
            parse(seg).eval_protocol(),
            EvalProtocol::ShorterSide {
                size: 520,
                crop: None,
                filter: zoo_data::Filter::Bilinear,
            }
        );
        let c = RunConfig::parse(
            seg,
            Path::new("t.toml"),
            &[
                "eval.resize=fixed".into(),
                "data.image_size=[64, 64]".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.eval_protocol(), EvalProtocol::Fixed([64, 64]));
        let cls = "[model]\nname = \"resnet50\"\nnum_classes = 1000\n\
                   weights = \"resnet50.imagenet1k_v2\"\n";
        assert_eq!(
            parse(cls).eval_protocol(),
            EvalProtocol::ShorterSide {
                size: 232,
                crop: Some(224),
                filter: zoo_data::Filter::Bilinear,
            }
        );
        let det = "[model]\nname = \"maskrcnn_resnet50_fpn\"\nnum_classes = 91\n\
                   weights = \"maskrcnn_resnet50_fpn.coco_v1\"\n";
        let c = parse(det);
        assert_eq!(c.eval_protocol(), EvalProtocol::Original);
        // torchvision's settings for its COCO weights, unless the file says otherwise.
        let ModelConfig::MaskRcnn(m) = c.model_config().unwrap() else {
            panic!("not a Mask R-CNN")
        };
        assert!(m.frozen_batch_norm && m.backbone_norm_eps == 0.0);
        assert_eq!((m.transform.min_size, m.transform.max_size), (800, 1333));
        let c = RunConfig::parse(
            det,
            Path::new("t.toml"),
            &["model.transform_size=[320, 512]".into()],
        )
        .unwrap();
        let ModelConfig::MaskRcnn(m) = c.model_config().unwrap() else {
            panic!("not a Mask R-CNN")
        };
        assert_eq!((m.transform.min_size, m.transform.max_size), (320, 512));
        // No weights: the run's image size, or what [eval] says.
        assert_eq!(
            parse(MINIMAL).eval_protocol(),
            EvalProtocol::Fixed([64, 64])
        );
        let e = RunConfig::parse(
            MINIMAL,
            Path::new("e.toml"),
            &[
                "eval.resize=shorter_side".into(),
                "eval.size=32".into(),
                "eval.crop=48".into(),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("eval.crop") && e.contains("48"), "{e}");
        let e = RunConfig::parse(
            MINIMAL,
            Path::new("e.toml"),
            &["eval.resize=original".into(), "eval.size=32".into()],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("eval.size") && e.contains("shorter_side"), "{e}");
        let e = RunConfig::parse(MINIMAL, Path::new("e.toml"), &["eval.resize=square".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("square"), "{e}");
    }

    #[test]
    fn model_options_reach_the_model_and_foreign_keys_are_refused() {
        let c = parse(
            "[model]\nname = \"swin_tiny_patch4_window7_224\"\nnum_classes = 4\nembed_dim = 16\n\
             depths = [2, 2]\nnum_heads = [1, 2]\nwindow_size = 4\n[data]\nimage_size = [32, 32]\n",
        );
        let ModelConfig::Swin(s) = c.model_config().unwrap() else {
            panic!("not a swin")
        };
        assert_eq!((s.embed_dim, s.img_size, s.window_size), (16, [32, 32], 4));
        let e = model_error("[model]\nname = \"unet_resnet18\"\nnum_classes = 3\nembed_dim = 16\n");
        assert!(
            e.contains("m.toml") && e.contains("model.embed_dim") && e.contains("unet_resnet18"),
            "{e}"
        );
        let e = model_error(
            "[model]\nname = \"unet_resnet18\"\nnum_classes = 3\n[data]\nimage_size = [48, 64]\n",
        );
        assert!(
            e.contains("data.image_size")
                && e.contains("[48, 64]")
                && e.contains("multiples of 32"),
            "{e}"
        );
        let e = model_error("[model]\nname = \"resnet18\"\nnum_classes = 3\noutput_stride = 8\n");
        assert!(e.contains("model.output_stride"), "{e}");
        let c = parse(
            "[model]\nname = \"maskrcnn_resnet50_fpn\"\nnum_classes = 3\nhead_channels = 16\n\
             box_batch_size_per_image = 32\n[data]\nimage_size = [48, 80]\n",
        );
        let ModelConfig::MaskRcnn(m) = c.model_config().unwrap() else {
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
        let e = model_error(
            "[model]\nname = \"unet_resnet18\"\nnum_classes = 3\nrpn_batch_size_per_image = 8\n",
        );
        assert!(e.contains("model.rpn_batch_size_per_image"), "{e}");
    }

    /// Values the models cannot be built with are errors naming the file and the key, never
    /// panics (the README's promise).
    #[test]
    fn model_settings_out_of_range_name_the_key() {
        let deeplab = "[model]\nname = \"deeplabv3_resnet50\"\nnum_classes = 3\n";
        for (text, key, fragment) in [
            (format!("{deeplab}output_stride = 4\n"), "model.output_stride", "8, 16 or 32"),
            (format!("{deeplab}atrous_rates = []\n"), "model.atrous_rates", "at least one"),
            (format!("{deeplab}head_channels = 0\n"), "model.head_channels", "positive"),
            (
                "[model]\nname = \"deeplabv3plus_resnet18\"\nnum_classes = 3\noutput_stride = 32\n".into(),
                "model.output_stride",
                "8 or 16",
            ),
            (
                "[model]\nname = \"deeplabv3plus_resnet18\"\nnum_classes = 3\n[data]\nimage_size = [40, 40]\n".into(),
                "data.image_size",
                "multiples of 16",
            ),
            (
                "[model]\nname = \"unet_resnet18\"\nnum_classes = 3\ndecoder_channels = [8, 8, 8]\n".into(),
                "model.decoder_channels",
                "5 widths",
            ),
            (
                "[model]\nname = \"swin_tiny_patch4_window7_224\"\nnum_classes = 3\ndepths = [2, 2, 2]\nnum_heads = [1, 2]\n".into(),
                "model.num_heads",
                "got 3 and 2",
            ),
            (
                "[model]\nname = \"swin_tiny_patch4_window7_224\"\nnum_classes = 3\nembed_dim = 10\nnum_heads = [3, 6, 12, 24]\n".into(),
                "model.num_heads",
                "do not divide",
            ),
            (
                "[model]\nname = \"maskrcnn_resnet50_fpn\"\nnum_classes = 3\nhead_channels = 0\n".into(),
                "model.head_channels",
                "positive",
            ),
        ] {
            let e = model_error(&text);
            assert!(
                e.contains("m.toml") && e.contains(key) && e.contains(fragment),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn mask_rcnn_takes_torchvision_pretrained_settings() {
        let base = "[model]\nname = \"maskrcnn_resnet50_fpn\"\nnum_classes = 91\n";
        let ModelConfig::MaskRcnn(m) = parse(base).model_config().unwrap() else {
            panic!("not a Mask R-CNN")
        };
        assert!(!m.frozen_batch_norm && m.trainable_backbone_layers == 5);
        assert_eq!((m.transform.min_size, m.transform.max_size), (64, 64));
        let text = format!(
            "{base}frozen_batch_norm = true\nbackbone_norm_eps = 0.0\ntransform_size = [800, 1333]\n"
        );
        let ModelConfig::MaskRcnn(m) = parse(&text).model_config().unwrap() else {
            panic!("not a Mask R-CNN")
        };
        assert!(m.frozen_batch_norm && m.trainable_backbone_layers == 3);
        assert_eq!(m.backbone_norm_eps, 0.0);
        assert_eq!((m.transform.min_size, m.transform.max_size), (800, 1333));
        let e = model_error(&format!("{base}trainable_backbone_layers = 6\n"));
        assert!(e.contains("model.trainable_backbone_layers"), "{e}");
        let e = model_error(&format!("{base}transform_size = [900, 800]\n"));
        assert!(e.contains("model.transform_size"), "{e}");
        let e = model_error(
            "[model]\nname = \"unet_resnet18\"\nnum_classes = 3\nfrozen_batch_norm = true\n",
        );
        assert!(e.contains("model.frozen_batch_norm"), "{e}");
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
            let ModelConfig::DeepLabV3(d) = deeplab(extra).model_config().unwrap() else {
                panic!("not a DeepLabV3")
            };
            assert_eq!(d.aux_head, aux, "{extra:?}");
        }
        let e = model_error(
            "[model]\nname = \"deeplabv3plus_resnet18\"\nnum_classes = 3\naux_loss = true\n",
        );
        assert!(
            e.contains("model.aux_loss") && e.contains("deeplabv3plus_resnet18"),
            "{e}"
        );
    }

    /// Every shipped run file (`configs/*.toml`) loads and describes a model that builds.
    #[test]
    fn shipped_run_files_load() {
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
            run.model_config()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
        assert!(seen >= 6, "only {seen} run files in {}", dir.display());
    }

    /// The run-file parser under malformed files: seeded line-level mutations of every
    /// shipped run file (lines dropped, duplicated, truncated, values replaced by odd ones)
    /// and `key=value` overrides of odd values; each parses or returns an error, never
    /// panics, and a file that parses is valid (its model builds).
    #[test]
    fn run_file_parser_never_panics_on_malformed_files() {
        const ODD: [&str; 14] = [
            "-1",
            "0",
            "1e309",
            "-0.0",
            "nan",
            "inf",
            "\"x\"",
            "[]",
            "[0, 0]",
            "[1, 2, 3]",
            "{}",
            "true",
            "99999999999999999999",
            "[4294967296, 4294967296]",
        ];
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut rng = zoo_data::rng::SplitMix64(7);
        let mut pick = |n: usize| (rng.next_u64() % n as u64) as usize;
        let mut parsed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for case in 0..60 {
                let mut mutated: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                let at = pick(mutated.len());
                match case % 4 {
                    0 => {
                        mutated.remove(at);
                    }
                    1 => {
                        let line = mutated[at].clone();
                        mutated.insert(at, line);
                    }
                    2 => {
                        let keep = pick(mutated[at].len() + 1);
                        mutated[at].truncate(keep);
                    }
                    _ => {
                        let odd = ODD[pick(ODD.len())];
                        if let Some((key, _)) = mutated[at].split_once('=') {
                            mutated[at] = format!("{key}= {odd}");
                        }
                    }
                }
                let text = mutated.join("\n");
                let odd = format!("train.lr={}", ODD[pick(ODD.len())]);
                for overrides in [vec![], vec![odd]] {
                    let result = std::panic::catch_unwind(|| {
                        RunConfig::parse(&text, &path, &overrides).map(|c| c.model_config())
                    });
                    match result {
                        Ok(Ok(model)) => {
                            assert!(model.is_ok(), "{}: case {case}", path.display());
                            parsed += 1;
                        }
                        Ok(Err(_)) => {}
                        Err(_) => panic!("{}: case {case} panicked:\n{text}", path.display()),
                    }
                }
            }
        }
        assert!(
            parsed > 0,
            "no mutation parsed: the mutations are too destructive"
        );
    }
}
