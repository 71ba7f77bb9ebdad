//! DeepLabV3 (Chen et al. 2017; torchvision's `deeplabv3_resnet50/101`) and DeepLabV3+
//! (Chen et al. 2018; segmentation_models_pytorch's `DeepLabV3Plus`) on a dilated ResNet.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Dropout, DropoutConfig};
use burn::prelude::*;
use zoo_nn::layers::ZooForward;
use zoo_nn::layers::{Aspp, AsppConfig, ConvNormAct, ConvNormActConfig};

use crate::init;
use zoo_nn::ops::{ResizeMode, ResizeOptions, resize};

use crate::resnet::{DilationRule, ResNet, ResNetConfig, ResNetDepth, dilation_for_output_stride};
use crate::weights::{KeyMap, block_rules};

/// Key rules between an upstream ASPP under `up` (torchvision / smp `ASPP`) and an
/// [`Aspp`] under `burn`, for `rates` atrous branches.
pub fn aspp_key_map(up: &str, burn: &str, rates: usize, separable: bool) -> KeyMap {
    let mut map = KeyMap::new();
    for i in 0..=rates {
        let (u, b) = (format!("{up}.convs.{i}"), format!("{burn}.convs.{i}"));
        if separable && i > 0 {
            map = block_rules(map, &format!("{u}.0.0"), &format!("{b}.conv"));
            map = block_rules(map, &format!("{u}.0.1"), &format!("{b}.pointwise"));
        } else {
            map = block_rules(map, &format!("{u}.0"), &format!("{b}.conv"));
        }
        map = block_rules(map, &format!("{u}.1"), &format!("{b}.norm"));
    }
    let pool = rates + 1;
    map = block_rules(
        map,
        &format!("{up}.convs.{pool}.1"),
        &format!("{burn}.pooling.conv"),
    );
    map = block_rules(
        map,
        &format!("{up}.convs.{pool}.2"),
        &format!("{burn}.pooling.norm"),
    );
    map = block_rules(
        map,
        &format!("{up}.project.0"),
        &format!("{burn}.project.conv"),
    );
    block_rules(
        map,
        &format!("{up}.project.1"),
        &format!("{burn}.project.norm"),
    )
}

/// The ResNet rules (`downsample.{0,1}`) plus `fc.*` dropped, for a backbone stored under a
/// parent's key prefix.
fn backbone_map(backbone: &ResNet) -> KeyMap {
    backbone.key_map().ignore(r"(^|\.)fc\.")
}

/// Bilinear resize of logits to `size`.
fn upsample(x: Tensor<4>, size: [usize; 2], align_corners: bool) -> Tensor<4> {
    resize(
        x,
        size,
        ResizeOptions::new(ResizeMode::Bilinear, align_corners),
    )
}

/// Configuration of [`DeepLabV3`].
#[derive(Config, Debug)]
pub struct DeepLabV3Config {
    /// Classes.
    pub num_classes: usize,
    /// Backbone depth: 50 or 101 (torchvision's models; 18/34 work with the Uniform rule).
    #[config(default = "ResNetDepth::R50")]
    pub depth: ResNetDepth,
    /// Output stride of the backbone: 8 (torchvision) or 16.
    #[config(default = 8)]
    pub output_stride: usize,
    /// ASPP rates (torchvision: 12, 24, 36 at output stride 8; use 6, 12, 18 at 16).
    #[config(default = "vec![12, 24, 36]")]
    pub atrous_rates: Vec<usize>,
    /// Width of the ASPP and head convolutions (torchvision: 256).
    #[config(default = 256)]
    pub head_channels: usize,
    /// Add torchvision's auxiliary FCN head on C4 (`aux_loss=True`).
    #[config(default = false)]
    pub aux_head: bool,
    /// Backbone width (see [`ResNetConfig::base_channels`]).
    #[config(default = 64)]
    pub base_channels: usize,
    /// How the backbone spreads dilation (torchvision's rule by default).
    #[config(default = "DilationRule::Torchvision")]
    pub dilation_rule: DilationRule,
}

impl DeepLabV3Config {
    /// The backbone configuration (no classifier).
    pub fn backbone(&self) -> ResNetConfig {
        let dilation = dilation_for_output_stride(self.output_stride)
            .unwrap_or_else(|e| panic!("DeepLabV3Config: {e}"));
        ResNetConfig::new(self.depth)
            .with_base_channels(self.base_channels)
            .with_replace_stride_with_dilation(dilation)
            .with_dilation_rule(self.dilation_rule)
    }

    /// Builds the model on `device`.
    ///
    /// # Panics
    /// If [`Self::validate`] fails (the message names the key).
    pub fn init(&self, device: &Device) -> DeepLabV3 {
        if let Err(e) = self.validate() {
            panic!("DeepLabV3Config: {e}");
        }
        let backbone = self.backbone();
        let [_, _, _, c4, c5] = backbone.feature_channels();
        let hc = self.head_channels;
        DeepLabV3 {
            backbone: backbone.init(device),
            head: DeepLabHead {
                aspp: AsppConfig::new(c5)
                    .with_out_channels(hc)
                    .with_atrous_rates(self.atrous_rates.clone())
                    .init(device),
                block: ConvNormActConfig::new(hc, hc).init(device),
                classifier: Conv2dConfig::new([hc, self.num_classes], [1, 1]).init(device),
            },
            aux: self.aux_head.then(|| FcnHead {
                block: ConvNormActConfig::new(c4, c4 / 4).init(device),
                dropout: DropoutConfig::new(0.1).init(),
                classifier: Conv2dConfig::new([c4 / 4, self.num_classes], [1, 1]).init(device),
            }),
        }
    }
}

/// torchvision's `DeepLabHead`: ASPP → 3×3 conv–BN–ReLU → 1×1 classifier.
#[derive(Module, Debug)]
pub struct DeepLabHead {
    /// Atrous spatial pyramid pooling (`classifier.0`).
    pub aspp: Aspp,
    /// 3×3 conv–BN–ReLU (`classifier.1`, `.2`).
    pub block: ConvNormAct,
    /// 1×1 conv to classes (`classifier.4`).
    pub classifier: Conv2d,
}

impl DeepLabHead {
    /// `[B, C5, h, w]` → `[B, classes, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.classifier
            .zoo_forward(self.block.forward(self.aspp.forward(x)))
    }
}

/// torchvision's `FCNHead` (the auxiliary head): 3×3 conv–BN–ReLU to `C/4`, dropout 0.1, 1×1
/// classifier.
#[derive(Module, Debug)]
pub struct FcnHead {
    /// 3×3 conv–BN–ReLU (`aux_classifier.0`, `.1`).
    pub block: ConvNormAct,
    /// Dropout (training only).
    pub dropout: Dropout,
    /// 1×1 conv to classes (`aux_classifier.4`).
    pub classifier: Conv2d,
}

impl FcnHead {
    /// `[B, C4, h, w]` → `[B, classes, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.classifier
            .zoo_forward(self.dropout.forward(self.block.forward(x)))
    }
}

/// Per-pixel logits at the input resolution.
#[derive(Debug, Clone)]
pub struct SegmentationOutput {
    /// Main logits `[B, classes, H, W]`.
    pub out: Tensor<4>,
    /// Auxiliary logits `[B, classes, H, W]` (DeepLabV3 with `aux_head`).
    pub aux: Option<Tensor<4>>,
}

/// DeepLabV3 (torchvision `DeepLabV3` with `DeepLabHead` and optional `FCNHead`).
#[derive(Module, Debug)]
pub struct DeepLabV3 {
    /// Dilated ResNet (`backbone.*`).
    pub backbone: ResNet,
    /// Main head (`classifier.*`).
    pub head: DeepLabHead,
    /// Auxiliary head on C4 (`aux_classifier.*`).
    pub aux: Option<FcnHead>,
}

impl DeepLabV3 {
    /// Logits upsampled bilinearly (`align_corners = false`) to the input size.
    ///
    /// # Shapes
    /// - input: `[B, 3, H, W]`; output: `[B, classes, H, W]` (and the auxiliary logits)
    pub fn forward(&self, x: Tensor<4>) -> SegmentationOutput {
        let [_, _, h, w] = x.dims();
        let f = self.backbone.features(x);
        SegmentationOutput {
            out: upsample(self.head.forward(f.c5), [h, w], false),
            aux: self
                .aux
                .as_ref()
                .map(|aux| upsample(aux.forward(f.c4), [h, w], false)),
        }
    }

    /// torchvision's key names (`deeplabv3_resnet50(...).state_dict()`).
    pub fn key_map(&self) -> KeyMap {
        let rates = self.head.aspp.convs.len() - 1;
        let mut map = backbone_map(&self.backbone).extend(aspp_key_map(
            "classifier.0",
            "head.aspp",
            rates,
            false,
        ));
        map = block_rules(map, "classifier.1", "head.block.conv");
        map = block_rules(map, "classifier.2", "head.block.norm");
        map = block_rules(map, "classifier.4", "head.classifier");
        match self.aux {
            Some(_) => {
                map = block_rules(map, "aux_classifier.0", "aux.block.conv");
                map = block_rules(map, "aux_classifier.1", "aux.block.norm");
                block_rules(map, "aux_classifier.4", "aux.classifier")
            }
            None => map.ignore(r"^aux_classifier\."),
        }
    }
}

/// Configuration of [`DeepLabV3Plus`] (smp's defaults).
#[derive(Config, Debug)]
pub struct DeepLabV3PlusConfig {
    /// Classes.
    pub num_classes: usize,
    /// Encoder depth (smp's default: ResNet-34).
    #[config(default = "ResNetDepth::R34")]
    pub depth: ResNetDepth,
    /// Encoder output stride: 16 (smp's default) or 8.
    #[config(default = 16)]
    pub output_stride: usize,
    /// Decoder width (smp `decoder_channels`).
    #[config(default = 256)]
    pub decoder_channels: usize,
    /// ASPP rates.
    #[config(default = "vec![12, 24, 36]")]
    pub atrous_rates: Vec<usize>,
    /// Depthwise-separable ASPP branches (smp: true).
    #[config(default = true)]
    pub aspp_separable: bool,
    /// ASPP dropout.
    #[config(default = 0.5)]
    pub aspp_dropout: f64,
    /// Encoder width (see [`ResNetConfig::base_channels`]).
    #[config(default = 64)]
    pub base_channels: usize,
}

impl DeepLabV3PlusConfig {
    /// The encoder configuration (smp's `make_dilated`: the Uniform rule).
    pub fn encoder(&self) -> ResNetConfig {
        assert!(
            matches!(self.output_stride, 8 | 16),
            "DeepLabV3PlusConfig: output_stride must be 8 or 16, got {}",
            self.output_stride
        );
        ResNetConfig::new(self.depth)
            .with_base_channels(self.base_channels)
            .with_replace_stride_with_dilation(
                dilation_for_output_stride(self.output_stride).expect("8 or 16"),
            )
            .with_dilation_rule(DilationRule::Uniform)
    }

    /// Builds the model on `device`.
    ///
    /// # Panics
    /// If [`Self::validate`] fails (the message names the key).
    pub fn init(&self, device: &Device) -> DeepLabV3Plus {
        if let Err(e) = self.validate() {
            panic!("DeepLabV3PlusConfig: {e}");
        }
        let encoder = self.encoder();
        let [_, c2, _, _, c5] = encoder.feature_channels();
        let d = self.decoder_channels;
        const HIGHRES: usize = 48;
        let mut model = DeepLabV3Plus {
            encoder: encoder.init(device),
            decoder: DeepLabV3PlusDecoder {
                aspp: AsppConfig::new(c5)
                    .with_out_channels(d)
                    .with_atrous_rates(self.atrous_rates.clone())
                    .with_separable(self.aspp_separable)
                    .with_dropout(self.aspp_dropout)
                    .init(device),
                aspp_conv: ConvNormActConfig::new(d, d)
                    .with_separable(true)
                    .init(device),
                block1: ConvNormActConfig::new(c2, HIGHRES)
                    .with_kernel_size(1)
                    .init(device),
                block2: ConvNormActConfig::new(d + HIGHRES, d)
                    .with_separable(true)
                    .init(device),
                upsampling: self.output_stride / 4,
            },
            head: Conv2dConfig::new([d, self.num_classes], [1, 1]).init(device),
        };
        // smp re-initialises the whole decoder and the head.
        let decoder = &mut model.decoder;
        let aspp = &mut decoder.aspp;
        aspp.convs
            .iter_mut()
            .chain([&mut aspp.pooling, &mut aspp.project])
            .chain([
                &mut decoder.aspp_conv,
                &mut decoder.block1,
                &mut decoder.block2,
            ])
            .for_each(init::smp_decoder);
        init::smp_head(&mut model.head);
        model
    }
}

/// smp's `DeepLabV3PlusDecoder`: ASPP (+ separable 3×3) on C5, upsampled (bilinear,
/// `align_corners = true`) to stride 4, concatenated with a 48-channel projection of C2, then
/// a separable 3×3 conv–BN–ReLU.
#[derive(Module, Debug)]
pub struct DeepLabV3PlusDecoder {
    /// `decoder.aspp.0`.
    pub aspp: Aspp,
    /// `decoder.aspp.1` (separable conv) and `.2` (BN).
    pub aspp_conv: ConvNormAct,
    /// `decoder.block1`: 1×1 conv–BN–ReLU of C2 to 48 channels.
    pub block1: ConvNormAct,
    /// `decoder.block2`: separable 3×3 conv–BN–ReLU.
    pub block2: ConvNormAct,
    /// Upsampling factor of the ASPP output (4 at output stride 16, 2 at 8).
    pub upsampling: usize,
}

impl DeepLabV3PlusDecoder {
    /// C2 `[B, c2, H/4, W/4]` and C5 `[B, c5, H/os, W/os]` → `[B, decoder_channels, H/4, W/4]`.
    pub fn forward(&self, c2: Tensor<4>, c5: Tensor<4>) -> Tensor<4> {
        let x = self.aspp_conv.forward(self.aspp.forward(c5));
        let [_, _, h, w] = x.dims();
        let x = upsample(x, [h * self.upsampling, w * self.upsampling], true);
        let high = self.block1.forward(c2);
        self.block2.forward(Tensor::cat(vec![x, high], 1))
    }
}

/// DeepLabV3+ (smp `DeepLabV3Plus` with a ResNet encoder).
///
/// # Input size
/// H and W must be multiples of the encoder's output stride (smp checks the same).
#[derive(Module, Debug)]
pub struct DeepLabV3Plus {
    /// Dilated ResNet encoder (`encoder.*`).
    pub encoder: ResNet,
    /// Decoder (`decoder.*`).
    pub decoder: DeepLabV3PlusDecoder,
    /// 1×1 conv to classes (`segmentation_head.0`), followed by ×4 bilinear upsampling.
    pub head: Conv2d,
}

impl DeepLabV3Plus {
    /// # Shapes
    /// - input: `[B, 3, H, W]`; output: `[B, classes, H, W]`
    ///
    /// # Panics
    /// If H or W is not a multiple of the output stride.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let os = self.decoder.upsampling * 4;
        assert!(
            h.is_multiple_of(os) && w.is_multiple_of(os),
            "DeepLabV3Plus: input height and width must be multiples of the output stride {os}, got {h}×{w}"
        );
        let f = self.encoder.features(x);
        let y = self.head.zoo_forward(self.decoder.forward(f.c2, f.c5));
        let [_, _, yh, yw] = y.dims();
        upsample(y, [yh * 4, yw * 4], true)
    }

    /// smp's key names (`DeepLabV3Plus(...).state_dict()`).
    pub fn key_map(&self) -> KeyMap {
        let rates = self.decoder.aspp.convs.len() - 1;
        let separable = self
            .decoder
            .aspp
            .convs
            .get(1)
            .is_some_and(|c| c.pointwise.is_some());
        let mut map = backbone_map(&self.encoder).extend(aspp_key_map(
            "decoder.aspp.0",
            "decoder.aspp",
            rates,
            separable,
        ));
        for (up, burn) in [
            ("decoder.aspp.1.0", "decoder.aspp_conv.conv"),
            ("decoder.aspp.1.1", "decoder.aspp_conv.pointwise"),
            ("decoder.aspp.2", "decoder.aspp_conv.norm"),
            ("decoder.block1.0", "decoder.block1.conv"),
            ("decoder.block1.1", "decoder.block1.norm"),
            ("decoder.block2.0.0", "decoder.block2.conv"),
            ("decoder.block2.0.1", "decoder.block2.pointwise"),
            ("decoder.block2.1", "decoder.block2.norm"),
            ("segmentation_head.0", "head"),
        ] {
            map = block_rules(map, up, burn);
        }
        map
    }
}
