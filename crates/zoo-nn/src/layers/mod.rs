//! Layers: each operator block as a Burn module with its `Config`
//! (`FooConfig::new(..).with_*(..).init(&device)`), field names following the upstream
//! PyTorch module tree where natural.

mod aspp;
mod attention_pool;
mod conv;
mod deform_conv;
mod forward;
mod global_pool;
mod patch_embed;
mod patch_merging;
mod roi;
mod swin;
mod unpool;
mod upsample;

pub use aspp::{Aspp, AsppConfig};
pub use attention_pool::{
    CrossAttentionPool, CrossAttentionPoolConfig, MultiHeadAttentionPool,
    MultiHeadAttentionPoolConfig, OrderlessPool, OrderlessPoolConfig, SelfAttentionPool,
    SelfAttentionPoolConfig, SoftAttentionPool, SoftAttentionPoolConfig, set_packed_in_proj,
};
pub use conv::{ConvNormAct, ConvNormActConfig, DilatedConvBlock};
pub use deform_conv::{DeformConv2dPack, DeformConv2dPackConfig};

/// The former name of [`DeformConv2dPack`] (it owns its offset predictor, as mmcv's
/// `DeformConv2dPack`; the bare operator is [`crate::ops::deform_conv2d`]).
#[deprecated(note = "renamed to `DeformConv2dPack`")]
pub type DeformConv2d = DeformConv2dPack;

/// The former name of [`DeformConv2dPackConfig`].
#[deprecated(note = "renamed to `DeformConv2dPackConfig`")]
pub type DeformConv2dConfig = DeformConv2dPackConfig;
pub use forward::{ZooForward, conv_bn};
pub use global_pool::{GlobalAvgPool, GlobalMaxPool, GlobalPool, GlobalPoolConfig};
pub use patch_embed::{PatchEmbed, PatchEmbedConfig};
pub use patch_merging::{PatchMerging, PatchMergingConfig};
pub use roi::{
    DeformRoiPool, DeformRoiPoolConfig, MultiScaleRoiAlign, PsRoiAlign, PsRoiPool, RoiAlign,
    RoiPool,
};
pub use swin::{
    DropPath, Mlp, SwinBlock, SwinBlockConfig, WindowAttention, WindowAttentionConfig,
    relative_position_index, shifted_window_mask, window_partition, window_reverse,
};
pub use unpool::{MaxUnpool2d, MaxUnpool2dConfig};
pub use upsample::{
    BilinearUp, LearnedUp, PixelShuffleUp, TransposedConvUp, TransposedConvUpConfig, UpsampleConfig,
};
