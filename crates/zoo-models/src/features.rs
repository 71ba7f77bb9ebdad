//! What a backbone's feature maps are, before building it: timm's `features_only` /
//! `feature_info` (channels and reduction of each stage), so a head of one's own can be sized
//! from the backbone's configuration.

/// One feature map a backbone returns (timm's `feature_info` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureInfo {
    /// The module whose output it is, by its upstream key prefix (`layer1`, `layers.0`).
    pub module: String,
    /// Channels (timm's `num_chs`).
    pub channels: usize,
    /// Input size over feature size, per axis (timm's `reduction`; for Swin, inputs that do
    /// not divide are padded, so a feature is `⌈H / reduction⌉` high).
    pub reduction: usize,
}

impl FeatureInfo {
    /// An entry.
    pub fn new(module: impl Into<String>, channels: usize, reduction: usize) -> Self {
        Self {
            module: module.into(),
            channels,
            reduction,
        }
    }
}
