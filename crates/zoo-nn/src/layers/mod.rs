//! Layers: each operator block as a Burn module with its `Config`
//! (`FooConfig::new(..).with_*(..).init(&device)`), field names following the upstream
//! PyTorch module tree where natural.

mod aspp;
mod conv;

pub use aspp::{Aspp, AsppConfig};
pub use conv::{ConvNormAct, ConvNormActConfig};
