//! U-Net (Ronneberger et al. 2015) on a ResNet encoder, as segmentation_models_pytorch's
//! `Unet`: a reusable decoder over a list of encoder features.

use burn::prelude::*;
use zoo_nn::layers::{ConvNormAct, ConvNormActConfig};

use crate::init;
use zoo_nn::ops::{ResizeMode, ResizeOptions, resize};

use crate::resnet::{ResNet, ResNetConfig, ResNetDepth};
use crate::segmentation_head::{SegmentationHead, SegmentationHeadConfig};
use crate::weights::KeyMap;

/// Configuration of [`UnetDecoder`].
#[derive(Config, Debug)]
pub struct UnetDecoderConfig {
    /// Channels of the encoder features, shallowest first, starting with the input itself
    /// (smp's `encoder.out_channels`, e.g. `[3, 64, 64, 128, 256, 512]` for ResNet-34).
    pub encoder_channels: Vec<usize>,
    /// Output channels of each decoder block, deepest first (smp: 256, 128, 64, 32, 16).
    #[config(default = "vec![256, 128, 64, 32, 16]")]
    pub decoder_channels: Vec<usize>,
}

impl UnetDecoderConfig {
    /// Builds the decoder on `device`.
    ///
    /// # Panics
    /// If `decoder_channels` does not have one entry per encoder level after the input
    /// (`encoder_channels.len() − 1`), or a width is zero (naming the field).
    pub fn init(&self, device: &Device) -> UnetDecoder {
        let levels = self.encoder_channels.len().saturating_sub(1);
        assert!(
            levels > 0 && self.decoder_channels.len() == levels,
            "UnetDecoderConfig: decoder_channels must have encoder_channels.len() − 1 = {levels} entries, got {}",
            self.decoder_channels.len()
        );
        assert!(
            self.encoder_channels
                .iter()
                .chain(&self.decoder_channels)
                .all(|&c| c > 0),
            "UnetDecoderConfig: channels must be positive, got encoder_channels {:?} and decoder_channels {:?}",
            self.encoder_channels,
            self.decoder_channels
        );
        // Deepest first, as smp: the head feature, then the skips; the last block has none.
        let encoder: Vec<usize> = self.encoder_channels[1..].iter().rev().copied().collect();
        let mut input = encoder[0];
        let blocks = self
            .decoder_channels
            .iter()
            .enumerate()
            .map(|(i, &out)| {
                let skip = encoder.get(i + 1).copied().unwrap_or(0);
                let mut block = UnetBlock {
                    conv1: ConvNormActConfig::new(input + skip, out).init(device),
                    conv2: ConvNormActConfig::new(out, out).init(device),
                };
                init::smp_decoder(&mut block.conv1);
                init::smp_decoder(&mut block.conv2);
                input = out;
                block
            })
            .collect();
        UnetDecoder { blocks }
    }
}

/// One decoder block: nearest upsampling to the skip's size, concatenation with the skip,
/// two 3×3 conv–BN–ReLU (smp's `UnetDecoderBlock`, `conv1.{0,1}`, `conv2.{0,1}`).
#[derive(Module, Debug)]
pub struct UnetBlock {
    /// First 3×3 conv–BN–ReLU (input + skip channels → out).
    pub conv1: ConvNormAct,
    /// Second 3×3 conv–BN–ReLU.
    pub conv2: ConvNormAct,
}

/// The U-Net decoder (smp `UnetDecoder`, no center block, no attention, nearest upsampling).
#[derive(Module, Debug)]
pub struct UnetDecoder {
    /// The decoder blocks, deepest first (`decoder.blocks.{i}`).
    pub blocks: Vec<UnetBlock>,
}

impl UnetDecoder {
    /// Key map of smp's `UnetDecoder` state dict: `blocks.{i}.conv{1,2}.{0,1}` →
    /// `blocks[i].conv{1,2}.{conv,norm}`.
    pub fn key_map(&self) -> KeyMap {
        let mut map = KeyMap::new();
        for (i, block) in self.blocks.iter().enumerate() {
            for (name, conv) in [("conv1", &block.conv1), ("conv2", &block.conv2)] {
                let key = format!("blocks.{i}.{name}");
                map = map.nest(&key, &key, conv.key_map());
            }
        }
        map
    }

    /// # Shapes
    /// - features: the encoder outputs shallowest first, starting with the input itself (only
    ///   its size is used): `[B, C_0, H, W], [B, C_1, H/2, W/2], …`
    /// - output: `[B, decoder_channels.last(), H, W]`
    ///
    /// # Panics
    /// If the number of features is not the number of blocks + 1.
    pub fn forward(&self, features: Vec<Tensor<4>>) -> Tensor<4> {
        assert!(
            features.len() == self.blocks.len() + 1,
            "UnetDecoder: expected {} features (the input, then one per level), got {}",
            self.blocks.len() + 1,
            features.len()
        );
        let sizes: Vec<[usize; 2]> = features
            .iter()
            .rev()
            .map(|f| {
                let [_, _, h, w] = f.dims();
                [h, w]
            })
            .collect();
        let mut deep_first: Vec<Tensor<4>> = features.into_iter().skip(1).rev().collect();
        let mut x = deep_first.remove(0);
        let mut skips = deep_first.into_iter();
        for (i, block) in self.blocks.iter().enumerate() {
            x = resize(
                x,
                sizes[i + 1],
                ResizeOptions::new(ResizeMode::Nearest, false),
            );
            if let Some(skip) = skips.next() {
                x = Tensor::cat(vec![x, skip], 1);
            }
            x = block.conv2.forward(block.conv1.forward(x));
        }
        x
    }
}

/// Configuration of [`Unet`].
#[derive(Config, Debug)]
pub struct UnetConfig {
    /// Classes.
    pub num_classes: usize,
    /// Encoder depth (smp's default: ResNet-34).
    #[config(default = "ResNetDepth::R34")]
    pub depth: ResNetDepth,
    /// Decoder block widths, deepest first.
    #[config(default = "vec![256, 128, 64, 32, 16]")]
    pub decoder_channels: Vec<usize>,
    /// Encoder width (see [`ResNetConfig::base_channels`]).
    #[config(default = 64)]
    pub base_channels: usize,
    /// Input channels.
    #[config(default = 3)]
    pub in_channels: usize,
}

impl UnetConfig {
    /// Builds the model on `device`.
    ///
    /// # Panics
    /// If [`Self::validate`] fails (the message names the key).
    pub fn init(&self, device: &Device) -> Unet {
        if let Err(e) = self.validate() {
            panic!("UnetConfig: {e}");
        }
        let encoder = ResNetConfig::new(self.depth)
            .with_base_channels(self.base_channels)
            .with_in_channels(self.in_channels);
        let mut channels = vec![self.in_channels];
        channels.extend(encoder.feature_channels());
        let last = *self.decoder_channels.last().unwrap_or(&0);
        Unet {
            encoder: encoder.init(device),
            decoder: UnetDecoderConfig::new(channels)
                .with_decoder_channels(self.decoder_channels.clone())
                .init(device),
            head: SegmentationHeadConfig::new(last, self.num_classes).init(device),
        }
    }
}

/// U-Net (smp `Unet` with a ResNet encoder).
///
/// # Input size
/// H and W must be multiples of 32 (smp checks the same).
#[derive(Module, Debug)]
pub struct Unet {
    /// ResNet encoder (`encoder.*`).
    pub encoder: ResNet,
    /// Decoder (`decoder.*`).
    pub decoder: UnetDecoder,
    /// 3×3 conv to classes (`segmentation_head.*`).
    pub head: SegmentationHead,
}

impl Unet {
    /// # Shapes
    /// - input: `[B, in_channels, H, W]`; output: `[B, classes, H, W]`
    ///
    /// # Panics
    /// If H or W is not a multiple of 32.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        assert!(
            h.is_multiple_of(32) && w.is_multiple_of(32),
            "Unet: input height and width must be multiples of 32, got {h}×{w}"
        );
        let f = self.encoder.features(x.clone());
        let features = vec![x, f.stem, f.c2, f.c3, f.c4, f.c5];
        self.head.forward(self.decoder.forward(features))
    }

    /// smp's key names (`Unet(...).state_dict()`).
    pub fn key_map(&self) -> KeyMap {
        self.encoder
            .key_map()
            .ignore(r"(^|\.)fc\.")
            .nest("decoder", "decoder", self.decoder.key_map())
            .nest("segmentation_head", "head", self.head.key_map())
    }
}
