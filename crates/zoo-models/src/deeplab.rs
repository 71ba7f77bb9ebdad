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
use crate::segmentation_head::{SegmentationHead, SegmentationHeadConfig};
use crate::weights::KeyMap;

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
            head: DeepLabHeadConfig::new(c5, self.num_classes)
                .with_channels(hc)
                .with_atrous_rates(self.atrous_rates.clone())
                .init(device),
            aux: self
                .aux_head
                .then(|| FcnHeadConfig::new(c4, self.num_classes).init(device)),
        }
    }
}

/// Configuration of [`DeepLabHead`]: torchvision's `DeepLabHead(in_channels, num_classes,
/// atrous_rates)`.
#[derive(Config, Debug)]
pub struct DeepLabHeadConfig {
    /// Channels of the backbone feature map (C5: 2048 for ResNet-50/101).
    pub in_channels: usize,
    /// Classes.
    pub num_classes: usize,
    /// Width of the ASPP and of the 3×3 block (torchvision: 256).
    #[config(default = 256)]
    pub channels: usize,
    /// ASPP rates (torchvision: 12, 24, 36).
    #[config(default = "vec![12, 24, 36]")]
    pub atrous_rates: Vec<usize>,
}

impl DeepLabHeadConfig {
    /// Builds the head on `device`.
    ///
    /// # Panics
    /// If a size or rate is zero (naming the field).
    pub fn init(&self, device: &Device) -> DeepLabHead {
        assert!(
            self.num_classes > 0,
            "DeepLabHeadConfig: num_classes must be positive, got 0"
        );
        let c = self.channels;
        DeepLabHead {
            aspp: AsppConfig::new(self.in_channels)
                .with_out_channels(c)
                .with_atrous_rates(self.atrous_rates.clone())
                .init(device),
            block: ConvNormActConfig::new(c, c).init(device),
            classifier: Conv2dConfig::new([c, self.num_classes], [1, 1]).init(device),
        }
    }
}

/// Configuration of [`FcnHead`]: torchvision's `FCNHead(in_channels, num_classes)` (the
/// auxiliary head of its segmentation models), inner width `in_channels / 4`.
#[derive(Config, Debug)]
pub struct FcnHeadConfig {
    /// Channels of the feature map (C4: 1024 for ResNet-50/101).
    pub in_channels: usize,
    /// Classes.
    pub num_classes: usize,
    /// Dropout before the classifier (torchvision: 0.1; training only).
    #[config(default = 0.1)]
    pub dropout: f64,
}

impl FcnHeadConfig {
    /// Builds the head on `device`.
    ///
    /// # Panics
    /// If `in_channels < 4`, `num_classes` is zero or `dropout` is outside `[0, 1)` (naming
    /// the field).
    pub fn init(&self, device: &Device) -> FcnHead {
        let inner = self.in_channels / 4;
        assert!(
            inner > 0 && self.num_classes > 0,
            "FcnHeadConfig: in_channels must be at least 4 and num_classes positive, got {} and {}",
            self.in_channels,
            self.num_classes
        );
        assert!(
            (0.0..1.0).contains(&self.dropout),
            "FcnHeadConfig: dropout must be in [0, 1), got {}",
            self.dropout
        );
        FcnHead {
            block: ConvNormActConfig::new(self.in_channels, inner).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            classifier: Conv2dConfig::new([inner, self.num_classes], [1, 1]).init(device),
        }
    }
}

/// torchvision's `DeepLabHead` (Chen et al. 2017): ASPP → 3×3 conv–BN–ReLU → 1×1
/// classifier. Built by [`DeepLabHeadConfig`]; loads torchvision's state dict through
/// [`DeepLabHead::key_map`].
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
    /// # Shapes
    /// - input: `[batch, in_channels, h, w]`
    /// - output: `[batch, num_classes, h, w]` (logits at the feature map's resolution)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.classifier
            .zoo_forward(self.block.forward(self.aspp.forward(x)))
    }

    /// Key map of torchvision's `DeepLabHead` state dict (a `Sequential`): `0.*` → `aspp`
    /// ([`Aspp::key_map`]), `1`/`2` → `block.{conv,norm}`, `4` → `classifier`.
    pub fn key_map(&self) -> KeyMap {
        KeyMap::new()
            .nest("0", "aspp", self.aspp.key_map())
            .prefix("1", "block.conv")
            .prefix("2", "block.norm")
            .prefix("4", "classifier")
    }
}

/// torchvision's `FCNHead` (Long et al. 2015; the auxiliary head of its segmentation models):
/// 3×3 conv–BN–ReLU to `C/4`, dropout, 1×1 classifier. Built by [`FcnHeadConfig`]; loads
/// torchvision's state dict through [`FcnHead::key_map`].
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
    /// # Shapes
    /// - input: `[batch, in_channels, h, w]`
    /// - output: `[batch, num_classes, h, w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.classifier
            .zoo_forward(self.dropout.forward(self.block.forward(x)))
    }

    /// Key map of torchvision's `FCNHead` state dict (a `Sequential`): `0`/`1` →
    /// `block.{conv,norm}`, `4` → `classifier`.
    pub fn key_map(&self) -> KeyMap {
        KeyMap::new()
            .prefix("0", "block.conv")
            .prefix("1", "block.norm")
            .prefix("4", "classifier")
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
        let map = backbone_map(&self.backbone).nest("classifier", "head", self.head.key_map());
        match &self.aux {
            Some(aux) => map.nest("aux_classifier", "aux", aux.key_map()),
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
        DeepLabV3Plus {
            encoder: encoder.init(device),
            decoder: DeepLabV3PlusDecoderConfig::new(c2, c5)
                .with_out_channels(self.decoder_channels)
                .with_atrous_rates(self.atrous_rates.clone())
                .with_output_stride(self.output_stride)
                .with_aspp_separable(self.aspp_separable)
                .with_aspp_dropout(self.aspp_dropout)
                .init(device),
            head: SegmentationHeadConfig::new(self.decoder_channels, self.num_classes)
                .with_kernel_size(1)
                .with_upsampling(4)
                .init(device),
        }
    }
}

/// Configuration of [`DeepLabV3PlusDecoder`]: smp's `DeepLabV3PlusDecoder(encoder_channels,
/// encoder_depth, out_channels, atrous_rates, output_stride, aspp_separable, aspp_dropout)`
/// for an encoder whose C2 and C5 have the given widths.
#[derive(Config, Debug)]
pub struct DeepLabV3PlusDecoderConfig {
    /// Channels of the stride-4 feature (C2: 64 for ResNet-18/34, 256 for ResNet-50/101).
    pub high_res_channels: usize,
    /// Channels of the deepest feature (C5).
    pub in_channels: usize,
    /// Width of the decoder (smp `decoder_channels`, 256).
    #[config(default = 256)]
    pub out_channels: usize,
    /// ASPP rates.
    #[config(default = "vec![12, 24, 36]")]
    pub atrous_rates: Vec<usize>,
    /// Output stride of the encoder: 16 or 8 (the ASPP output is upsampled by
    /// `output_stride / 4`).
    #[config(default = 16)]
    pub output_stride: usize,
    /// Depthwise-separable ASPP branches (smp: true).
    #[config(default = true)]
    pub aspp_separable: bool,
    /// ASPP dropout.
    #[config(default = 0.5)]
    pub aspp_dropout: f64,
}

impl DeepLabV3PlusDecoderConfig {
    /// Builds the decoder on `device`, weights drawn as smp's `initialize_decoder`.
    ///
    /// # Panics
    /// If `output_stride` is not 8 or 16, or a size is zero (naming the field).
    pub fn init(&self, device: &Device) -> DeepLabV3PlusDecoder {
        assert!(
            matches!(self.output_stride, 8 | 16),
            "DeepLabV3PlusDecoderConfig: output_stride must be 8 or 16, got {}",
            self.output_stride
        );
        let d = self.out_channels;
        const HIGHRES: usize = 48;
        let mut decoder = DeepLabV3PlusDecoder {
            aspp: AsppConfig::new(self.in_channels)
                .with_out_channels(d)
                .with_atrous_rates(self.atrous_rates.clone())
                .with_separable(self.aspp_separable)
                .with_dropout(self.aspp_dropout)
                .init(device),
            aspp_conv: ConvNormActConfig::new(d, d)
                .with_separable(true)
                .init(device),
            block1: ConvNormActConfig::new(self.high_res_channels, HIGHRES)
                .with_kernel_size(1)
                .init(device),
            block2: ConvNormActConfig::new(d + HIGHRES, d)
                .with_separable(true)
                .init(device),
            upsampling: self.output_stride / 4,
        };
        // smp re-initialises the whole decoder.
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
        decoder
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
    /// Key map of smp's `DeepLabV3PlusDecoder` state dict: `aspp.0.*` → `aspp`
    /// ([`Aspp::key_map`]), `aspp.1.{0,1}`/`aspp.2` → `aspp_conv.{conv,pointwise,norm}`,
    /// `block1.{0,1}` → `block1.{conv,norm}`, `block2.0.{0,1}`/`block2.1` →
    /// `block2.{conv,pointwise,norm}`.
    pub fn key_map(&self) -> KeyMap {
        let mut map = KeyMap::new().nest("aspp.0", "aspp", self.aspp.key_map());
        for (up, burn) in [
            ("aspp.1.0", "aspp_conv.conv"),
            ("aspp.1.1", "aspp_conv.pointwise"),
            ("aspp.2", "aspp_conv.norm"),
        ] {
            map = map.prefix(up, burn);
        }
        map.nest("block1", "block1", self.block1.key_map()).nest(
            "block2",
            "block2",
            self.block2.key_map(),
        )
    }

    /// # Shapes
    /// - `c2`: `[batch, high_res_channels, H/4, W/4]`
    /// - `c5`: `[batch, in_channels, H/os, W/os]`
    /// - output: `[batch, out_channels, H/4, W/4]`
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
    /// 1×1 conv to classes and ×4 bilinear upsampling (`segmentation_head.*`).
    pub head: SegmentationHead,
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
        self.head.forward(self.decoder.forward(f.c2, f.c5))
    }

    /// smp's key names (`DeepLabV3Plus(...).state_dict()`).
    pub fn key_map(&self) -> KeyMap {
        backbone_map(&self.encoder)
            .nest("decoder", "decoder", self.decoder.key_map())
            .nest("segmentation_head", "head", self.head.key_map())
    }
}
