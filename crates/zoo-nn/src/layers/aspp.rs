//! Atrous Spatial Pyramid Pooling (DeepLabV3, Chen et al. 2017); mirrors torchvision's
//! `torchvision.models.segmentation.deeplabv3.ASPP` and, with `separable`, the ASPP of
//! segmentation_models_pytorch's DeepLabV3+.

use burn::nn::{Dropout, DropoutConfig};
use burn::prelude::*;
use burn::tensor::module::adaptive_avg_pool2d;

use super::conv::{ConvNormAct, ConvNormActConfig};
use crate::weights::KeyMap;

/// Configuration of [`Aspp`].
#[derive(Config, Debug)]
pub struct AsppConfig {
    /// Channels of the backbone feature map.
    pub in_channels: usize,
    /// Channels of every branch and of the output.
    #[config(default = 256)]
    pub out_channels: usize,
    /// Dilation of each 3×3 branch (torchvision: `[12, 24, 36]` at output stride 8).
    #[config(default = "vec![12, 24, 36]")]
    pub atrous_rates: Vec<usize>,
    /// Dropout after the projection (active in training only).
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Depthwise-separable atrous branches, as smp's DeepLabV3+ (`ASPPSeparableConv`).
    #[config(default = false)]
    pub separable: bool,
}

impl AsppConfig {
    /// Builds the module on `device`.
    ///
    /// # Panics
    /// If a channel count is zero, a rate is zero, or `dropout` is outside `[0, 1)` (the
    /// message names the field).
    pub fn init(&self, device: &Device) -> Aspp {
        assert!(
            self.in_channels > 0 && self.out_channels > 0,
            "AsppConfig: in_channels and out_channels must be positive, got {} and {}",
            self.in_channels,
            self.out_channels
        );
        assert!(
            self.atrous_rates.iter().all(|&r| r > 0),
            "AsppConfig: atrous_rates must be positive, got {:?}",
            self.atrous_rates
        );
        assert!(
            (0.0..1.0).contains(&self.dropout),
            "AsppConfig: dropout must be in [0, 1), got {}",
            self.dropout
        );
        let pointwise = || {
            ConvNormActConfig::new(self.in_channels, self.out_channels)
                .with_kernel_size(1)
                .init(device)
        };
        let mut convs = vec![pointwise()];
        convs.extend(self.atrous_rates.iter().map(|&r| {
            ConvNormActConfig::dilated(self.in_channels, self.out_channels, r)
                .with_separable(self.separable)
                .init(device)
        }));
        let branches = convs.len() + 1;
        Aspp {
            convs,
            pooling: pointwise(),
            project: ConvNormActConfig::new(branches * self.out_channels, self.out_channels)
                .with_kernel_size(1)
                .init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

/// ASPP: a 1×1 branch, one dilated 3×3 branch per rate and an image-pooling branch, each
/// conv–BN–ReLU, concatenated and projected by a 1×1 conv–BN–ReLU, then dropout.
///
/// Loads torchvision's / smp's `ASPP` state dict through [`Aspp::key_map`].
#[derive(Module, Debug)]
pub struct Aspp {
    /// The 1×1 branch followed by the atrous branches.
    pub convs: Vec<ConvNormAct>,
    /// The image-pooling branch (applied to the globally averaged map).
    pub pooling: ConvNormAct,
    /// The 1×1 projection of the concatenated branches.
    pub project: ConvNormAct,
    /// Dropout after the projection.
    pub dropout: Dropout,
}

impl Aspp {
    /// Key map of torchvision's `ASPP` state dict (smp's `ASPP` for a separable one):
    /// `convs.{i}.{0,1}` → `convs[i].{conv,norm}` (smp's separable branches `convs.{i}.0.{0,1}`
    /// → `convs[i].{conv,pointwise}`), `convs.{last}.{1,2}` → `pooling.{conv,norm}`,
    /// `project.{0,1}` → `project.{conv,norm}`.
    pub fn key_map(&self) -> KeyMap {
        let mut map = KeyMap::new();
        for (i, branch) in self.convs.iter().enumerate() {
            let key = format!("convs.{i}");
            map = map.nest(&key, &key, branch.key_map());
        }
        // ASPPPooling is Sequential(AdaptiveAvgPool2d, conv, BN, ReLU).
        let pooling = KeyMap::new().prefix("1", "conv").prefix("2", "norm");
        map.nest(&format!("convs.{}", self.convs.len()), "pooling", pooling)
            .nest("project", "project", self.project.key_map())
    }

    /// # Shapes
    /// - input: `[batch, in_channels, h, w]`
    /// - output: `[batch, out_channels, h, w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, _, h, w] = x.dims();
        let mut branches: Vec<Tensor<4>> =
            self.convs.iter().map(|c| c.forward(x.clone())).collect();
        // Bilinear upsampling of a 1×1 map is a broadcast.
        let pooled = self.pooling.forward(adaptive_avg_pool2d(x, [1, 1]));
        let channels = pooled.dims()[1];
        branches.push(pooled.expand([n, channels, h, w]));
        self.dropout
            .forward(self.project.forward(Tensor::cat(branches, 1)))
    }
}
