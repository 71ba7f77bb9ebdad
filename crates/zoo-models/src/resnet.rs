//! ResNet-18/34/50/101 (He et al. 2016) with torchvision's structure and key names, dilated
//! variants for dense prediction, and multi-level features (stem, C2–C5).
//!
//! # Dilation rules
//! `replace_stride_with_dilation[i]` turns the stride of stage `i + 2` (layer2..layer4) into
//! dilation, keeping its resolution (output stride 32 → 16 → 8). Two upstream rules exist:
//! - [`DilationRule::Torchvision`] (torchvision's `ResNet`, used by its DeepLabV3): the first
//!   block of a dilated stage keeps the previous dilation in its 3×3 convolution, the others
//!   use the new one. torchvision's `BasicBlock` refuses dilation, so ResNet-18/34 with this
//!   rule and any dilation is an error.
//! - [`DilationRule::Uniform`] (segmentation_models_pytorch's `make_dilated`, used by its
//!   encoders): every convolution of the stage gets stride 1 and the new dilation, padding
//!   `dilation · (k / 2)`; works for BasicBlock and Bottleneck alike.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use zoo_nn::layers::conv_bn;

use crate::init;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use zoo_nn::layers::{GlobalPool, GlobalPoolConfig};

use crate::features::FeatureInfo;
use crate::weights::KeyMap;

/// How a dilated stage spreads its dilation over its blocks (see the module docs).
#[derive(Config, Debug, PartialEq, Eq, Copy)]
pub enum DilationRule {
    /// torchvision: the first block of a dilated stage keeps the previous dilation.
    Torchvision,
    /// smp `make_dilated`: every convolution of the stage gets the stage's dilation.
    Uniform,
}

/// ResNet depth: torchvision's `resnet18`, `resnet34` (BasicBlock) or `resnet50`,
/// `resnet101` (Bottleneck). Serialised as the number (`18`, `34`, `50`, `101`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, burn::serde::Serialize, burn::serde::Deserialize,
)]
#[serde(crate = "burn::serde", try_from = "usize", into = "usize")]
pub enum ResNetDepth {
    /// ResNet-18: BasicBlocks `[2, 2, 2, 2]`.
    R18,
    /// ResNet-34: BasicBlocks `[3, 4, 6, 3]`.
    R34,
    /// ResNet-50: Bottlenecks `[3, 4, 6, 3]`.
    R50,
    /// ResNet-101: Bottlenecks `[3, 4, 23, 3]`.
    R101,
}

/// A depth that is not one of [`ResNetDepth`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a ResNet depth is 18, 34, 50 or 101, got {0}")]
pub struct UnknownDepth(pub usize);

impl ResNetDepth {
    /// Every depth, shallowest first.
    pub const ALL: [ResNetDepth; 4] = [Self::R18, Self::R34, Self::R50, Self::R101];

    /// The number in the model's name (18, 34, 50, 101).
    pub fn layers(self) -> usize {
        match self {
            Self::R18 => 18,
            Self::R34 => 34,
            Self::R50 => 50,
            Self::R101 => 101,
        }
    }

    /// Blocks per stage.
    pub fn blocks(self) -> [usize; 4] {
        match self {
            Self::R18 => [2, 2, 2, 2],
            Self::R34 | Self::R50 => [3, 4, 6, 3],
            Self::R101 => [3, 4, 23, 3],
        }
    }

    /// Whether the stages are made of Bottlenecks (50, 101) rather than BasicBlocks.
    pub fn bottleneck(self) -> bool {
        matches!(self, Self::R50 | Self::R101)
    }
}

impl TryFrom<usize> for ResNetDepth {
    type Error = UnknownDepth;

    fn try_from(layers: usize) -> Result<Self, UnknownDepth> {
        Self::ALL
            .into_iter()
            .find(|d| d.layers() == layers)
            .ok_or(UnknownDepth(layers))
    }
}

impl From<ResNetDepth> for usize {
    fn from(depth: ResNetDepth) -> usize {
        depth.layers()
    }
}

impl std::fmt::Display for ResNetDepth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.layers())
    }
}

/// Configuration of [`ResNet`].
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// Depth: ResNet-18, 34, 50 or 101.
    pub depth: ResNetDepth,
    /// Width of the stem and of the first stage (stages are 1×, 2×, 4×, 8× this, times 4 at
    /// the output of Bottleneck stages). torchvision: 64. Smaller values give narrow models
    /// with the same key names (used for the committed parity fixtures).
    #[config(default = 64)]
    pub base_channels: usize,
    /// Input channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Replace the stride of layer2, layer3, layer4 by dilation (torchvision's argument).
    #[config(default = "[false, false, false]")]
    pub replace_stride_with_dilation: [bool; 3],
    /// How dilation is spread over a stage's blocks.
    #[config(default = "DilationRule::Torchvision")]
    pub dilation_rule: DilationRule,
    /// Classes of the `fc` head; `None` = a backbone without head (features only).
    #[config(default = "None")]
    pub num_classes: Option<usize>,
    /// Global pooling before `fc` (torchvision: average).
    #[config(default = "GlobalPoolConfig::Avg")]
    pub global_pool: GlobalPoolConfig,
}

/// Stride replacement for a target output stride: 32 → none, 16 → layer4, 8 → layer3 and
/// layer4.
///
/// # Errors
/// [`UnsupportedOutputStride`] if `output_stride` is not 8, 16 or 32.
pub fn dilation_for_output_stride(
    output_stride: usize,
) -> Result<[bool; 3], UnsupportedOutputStride> {
    match output_stride {
        32 => Ok([false, false, false]),
        16 => Ok([false, false, true]),
        8 => Ok([false, true, true]),
        other => Err(UnsupportedOutputStride(other)),
    }
}

/// An output stride a dilated ResNet cannot have (it takes 8, 16 or 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("output_stride must be 8, 16 or 32, got {0}")]
pub struct UnsupportedOutputStride(pub usize);

impl ResNetConfig {
    /// Blocks per stage and whether they are Bottlenecks.
    fn layout(&self) -> ([usize; 4], bool) {
        (self.depth.blocks(), self.depth.bottleneck())
    }

    /// Channels of the stem output and of C2..C5.
    pub fn feature_channels(&self) -> [usize; 5] {
        let (_, bottleneck) = self.layout();
        let e = if bottleneck { 4 } else { 1 };
        let b = self.base_channels;
        [b, b * e, 2 * b * e, 4 * b * e, 8 * b * e]
    }

    /// timm's `feature_info` of [`ResNet::features`] (in [`ResNetFeatures::into_vec`]'s
    /// order): the stem (`relu`, reduction 2), then `layer1`–`layer4`, whose reduction stops
    /// doubling where a stage is dilated.
    pub fn feature_info(&self) -> Vec<FeatureInfo> {
        let channels = self.feature_channels();
        let mut reduction = 4;
        let mut info = vec![
            FeatureInfo::new("relu", channels[0], 2),
            FeatureInfo::new("layer1", channels[1], 4),
        ];
        for (i, &dilated) in self.replace_stride_with_dilation.iter().enumerate() {
            if !dilated {
                reduction *= 2;
            }
            info.push(FeatureInfo::new(
                format!("layer{}", i + 2),
                channels[i + 2],
                reduction,
            ));
        }
        info
    }

    /// The output stride of C5 (32, 16 or 8).
    pub fn output_stride(&self) -> usize {
        32 >> self
            .replace_stride_with_dilation
            .iter()
            .filter(|&&d| d)
            .count()
    }

    /// Builds the network on `device`.
    ///
    /// # Panics
    /// If [`Self::validate`] fails (the message names the key).
    pub fn init(&self, device: &Device) -> ResNet {
        if let Err(e) = self.validate() {
            panic!("ResNetConfig: {e}");
        }
        let (blocks, bottleneck) = self.layout();
        let b = self.base_channels;
        let mut inplanes = b;
        let mut dilation = 1;
        let mut stages = Vec::with_capacity(4);
        for (i, &n) in blocks.iter().enumerate() {
            let planes = b << i;
            let mut stride = if i == 0 { 1 } else { 2 };
            let previous = dilation;
            if i > 0 && self.replace_stride_with_dilation[i - 1] {
                dilation *= stride;
                stride = 1;
            }
            let first_dilation = match self.dilation_rule {
                DilationRule::Torchvision => previous,
                DilationRule::Uniform => dilation,
            };
            let mut stage = Vec::with_capacity(n);
            for j in 0..n {
                let spec = BlockSpec {
                    inplanes,
                    planes,
                    stride: if j == 0 { stride } else { 1 },
                    dilation: if j == 0 { first_dilation } else { dilation },
                    bottleneck,
                    uniform: self.dilation_rule == DilationRule::Uniform,
                };
                stage.push(spec.init(device));
                inplanes = planes * if bottleneck { 4 } else { 1 };
            }
            stages.push(stage);
        }
        let [layer1, layer2, layer3, layer4]: [Vec<Block>; 4] =
            stages.try_into().expect("four stages");
        let out = inplanes;
        ResNet {
            conv1: Conv2dConfig::new([self.in_channels, b], [7, 7])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3))
                .with_bias(false)
                .with_initializer(init::torchvision_resnet())
                .init(device),
            bn1: BatchNormConfig::new(b).init(device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1,
            layer2,
            layer3,
            layer4,
            global_pool: self.num_classes.map(|_| self.global_pool.init(out, device)),
            fc: self.num_classes.map(|classes| {
                LinearConfig::new(self.global_pool.out_features(out), classes).init(device)
            }),
        }
    }
}

struct BlockSpec {
    inplanes: usize,
    planes: usize,
    stride: usize,
    dilation: usize,
    bottleneck: bool,
    /// smp's rule: the stride-1 dilation also reaches 1×1 convs (no effect) and, for
    /// BasicBlock, both 3×3 convs.
    uniform: bool,
}

fn conv(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    device: &Device,
) -> Conv2d {
    let pad = dilation * (k / 2);
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_dilation([dilation, dilation])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .with_initializer(init::torchvision_resnet())
        .init(device)
}

impl BlockSpec {
    fn init(&self, device: &Device) -> Block {
        let (p, s, d) = (self.planes, self.stride, self.dilation);
        let expansion = if self.bottleneck { 4 } else { 1 };
        let downsample = (s != 1 || self.inplanes != p * expansion).then(|| Downsample {
            conv: conv(self.inplanes, p * expansion, 1, s, 1, device),
            bn: BatchNormConfig::new(p * expansion).init(device),
        });
        let bn = |c| BatchNormConfig::new(c).init(device);
        if self.bottleneck {
            // torchvision's Bottleneck (v1.5): the stride sits on the 3×3 conv.
            Block {
                conv1: conv(self.inplanes, p, 1, 1, 1, device),
                bn1: bn(p),
                conv2: conv(p, p, 3, s, d, device),
                bn2: bn(p),
                conv3: Some(conv(p, p * 4, 1, 1, 1, device)),
                bn3: Some(bn(p * 4)),
                downsample,
            }
        } else {
            // BasicBlock: torchvision gives conv2 dilation 1 (it has none); smp's make_dilated
            // dilates both.
            let d2 = if self.uniform { d } else { 1 };
            Block {
                conv1: conv(self.inplanes, p, 3, s, d, device),
                bn1: bn(p),
                conv2: conv(p, p, 3, 1, d2, device),
                bn2: bn(p),
                conv3: None,
                bn3: None,
                downsample,
            }
        }
    }
}

/// The 1×1 projection shortcut (torchvision's `downsample.0` conv, `downsample.1` BN).
#[derive(Module, Debug)]
pub struct Downsample {
    /// 1×1 conv with the block's stride.
    pub conv: Conv2d,
    /// BatchNorm.
    pub bn: BatchNorm,
}

/// A residual block: BasicBlock (two 3×3 convs) or Bottleneck (1×1, 3×3, 1×1 — `conv3`/`bn3`
/// present), each conv followed by BatchNorm, ReLU after the sum.
#[derive(Module, Debug)]
pub struct Block {
    /// First conv (3×3 Basic, 1×1 Bottleneck).
    pub conv1: Conv2d,
    /// BatchNorm after `conv1`.
    pub bn1: BatchNorm,
    /// Second conv (3×3).
    pub conv2: Conv2d,
    /// BatchNorm after `conv2`.
    pub bn2: BatchNorm,
    /// Third conv (1×1 expansion; Bottleneck only).
    pub conv3: Option<Conv2d>,
    /// BatchNorm after `conv3`.
    pub bn3: Option<BatchNorm>,
    /// Projection shortcut where the shape changes.
    pub downsample: Option<Downsample>,
}

impl Block {
    /// # Shapes
    /// - input: `[B, inplanes, H, W]`; output: `[B, planes·expansion, H / stride, W / stride]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(d) => conv_bn(&d.conv, &d.bn, x.clone(), None, false),
            None => x.clone(),
        };
        let out = conv_bn(&self.conv1, &self.bn1, x, None, true);
        match (&self.conv3, &self.bn3) {
            (Some(conv3), Some(bn3)) => {
                let out = conv_bn(&self.conv2, &self.bn2, out, None, true);
                conv_bn(conv3, bn3, out, Some(identity), true)
            }
            _ => conv_bn(&self.conv2, &self.bn2, out, Some(identity), true),
        }
    }
}

/// The multi-level outputs of a [`ResNet`].
#[derive(Debug, Clone)]
pub struct ResNetFeatures {
    /// After conv1–bn1–ReLU: `[B, base, H/2, W/2]` (smp's U-Net skip at stride 2).
    pub stem: Tensor<4>,
    /// layer1 output, stride 4.
    pub c2: Tensor<4>,
    /// layer2 output, stride 8.
    pub c3: Tensor<4>,
    /// layer3 output, stride 16 (8 when dilated).
    pub c4: Tensor<4>,
    /// layer4 output, stride 32 (16 or 8 when dilated).
    pub c5: Tensor<4>,
}

impl ResNetFeatures {
    /// `[stem, c2, c3, c4, c5]`, in the order of [`ResNetConfig::feature_info`].
    pub fn into_vec(self) -> Vec<Tensor<4>> {
        vec![self.stem, self.c2, self.c3, self.c4, self.c5]
    }
}

/// ResNet (torchvision `torchvision.models.resnet.ResNet`; same field names as its keys).
#[derive(Module, Debug)]
pub struct ResNet {
    /// Stem 7×7/2 conv.
    pub conv1: Conv2d,
    /// Stem BatchNorm.
    pub bn1: BatchNorm,
    /// Stem 3×3/2 max-pool.
    pub maxpool: MaxPool2d,
    /// Stage 1 (stride 4).
    pub layer1: Vec<Block>,
    /// Stage 2 (stride 8).
    pub layer2: Vec<Block>,
    /// Stage 3 (stride 16).
    pub layer3: Vec<Block>,
    /// Stage 4 (stride 32).
    pub layer4: Vec<Block>,
    /// Global pooling of the classifier (absent in a backbone).
    pub global_pool: Option<GlobalPool>,
    /// Classifier (absent in a backbone).
    pub fc: Option<Linear>,
}

fn stage(blocks: &[Block], x: Tensor<4>) -> Tensor<4> {
    blocks.iter().fold(x, |x, b| b.forward(x))
}

impl ResNet {
    /// Stem and the four stage outputs.
    ///
    /// # Shapes
    /// - input: `[B, in_channels, H, W]`
    /// - output: see [`ResNetFeatures`]
    pub fn features(&self, x: Tensor<4>) -> ResNetFeatures {
        let stem = conv_bn(&self.conv1, &self.bn1, x, None, true);
        let c2 = stage(&self.layer1, self.maxpool.forward(stem.clone()));
        let c3 = stage(&self.layer2, c2.clone());
        let c4 = stage(&self.layer3, c3.clone());
        let c5 = stage(&self.layer4, c4.clone());
        ResNetFeatures {
            stem,
            c2,
            c3,
            c4,
            c5,
        }
    }

    /// Class logits.
    ///
    /// # Shapes
    /// - input: `[B, in_channels, H, W]`; output: `[B, num_classes]`
    ///
    /// # Panics
    /// If the network was built without `num_classes` (a backbone).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let (Some(pool), Some(fc)) = (&self.global_pool, &self.fc) else {
            panic!("ResNet::forward needs a classifier: build it with num_classes = Some(..)")
        };
        fc.forward(pool.forward(self.features(x).c5))
    }

    /// torchvision's key names for this module: `downsample.{0,1}` ↔ `downsample.{conv,bn}`.
    /// Without a head, torchvision's `fc.*` keys are dropped explicitly.
    pub fn key_map(&self) -> KeyMap {
        let map = KeyMap::new()
            .rename(
                r"downsample\.0\.",
                "downsample.conv.",
                r"downsample\.conv\.",
                "downsample.0.",
            )
            .rename(
                r"downsample\.1\.",
                "downsample.bn.",
                r"downsample\.bn\.",
                "downsample.1.",
            );
        match self.fc {
            Some(_) => map,
            None => map.ignore(r"^fc\."),
        }
    }
}
