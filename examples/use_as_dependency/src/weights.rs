//! Upstream weights into burn-zoo modules, one call each: torchvision's `ASPP` and `FCNHead`
//! and a timm Swin Transformer from the files in `weights/` (written by
//! `tools/parity/use_as_dependency.py`, as a user's own `torch.save(m.state_dict())` would
//! be), and a torchvision `DeepLabHead` written by `save_upstream` and loaded back.

use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::prelude::*;
use zoo_models::deeplab::{DeepLabHeadConfig, FcnHeadConfig};
use zoo_models::swin::SwinTransformerConfig;
use zoo_nn::layers::AsppConfig;
use zoo_nn::weights::{KeyMap, WeightsError, load_upstream, save_upstream};

/// The upstream outputs on the example's inputs (`weights/reference.safetensors`), read as a
/// module of plain parameters.
#[derive(Module, Debug)]
struct Reference {
    aspp: Param<Tensor<4>>,
    fcn_head: Param<Tensor<4>>,
    swin: Param<Tensor<2>>,
}

/// Largest difference from upstream of each module loaded from the shipped files, and the
/// shape of the DeepLabHead output after a save/load round trip.
#[derive(Debug)]
#[allow(dead_code)] // `main` reads the fields through `Debug`.
pub struct WeightsSummary {
    pub aspp_max_diff: f32,
    pub fcn_head_max_diff: f32,
    pub swin_max_diff: f32,
    pub deeplab_head: [usize; 4],
    pub deeplab_head_round_trip_diff: f32,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("weights")
}

/// `sin(0.1 · i)` over the flat index, as the Python script builds it.
fn example_input(shape: [usize; 4], device: &Device) -> Tensor<4> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|i| (0.1 * i as f32).sin()).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

pub fn run(device: &Device) -> Result<WeightsSummary, WeightsError> {
    let reference = Reference {
        aspp: Param::from_tensor(Tensor::zeros([1, 6, 6, 6], device)),
        fcn_head: Param::from_tensor(Tensor::zeros([1, 3, 6, 6], device)),
        swin: Param::from_tensor(Tensor::zeros([1, 3], device)),
    };
    let reference = load_upstream(
        reference,
        dir().join("reference.safetensors"),
        &KeyMap::new(),
    )?;
    let x = example_input([1, 8, 6, 6], device);

    // A zoo-nn layer: torchvision `ASPP(8, [2, 3], out_channels=6)`.
    let aspp = AsppConfig::new(8)
        .with_out_channels(6)
        .with_atrous_rates(vec![2, 3])
        .init(device);
    let map = aspp.key_map();
    let aspp = load_upstream(aspp, dir().join("aspp.pth"), &map)?;
    let aspp_max_diff = max_diff(aspp.forward(x.clone()), reference.aspp.val());

    // A zoo-models head: torchvision `FCNHead(8, 3)`.
    let fcn = FcnHeadConfig::new(8, 3).init(device);
    let map = fcn.key_map();
    let fcn = load_upstream(fcn, dir().join("fcn_head.pth"), &map)?;
    let fcn_head_max_diff = max_diff(fcn.forward(x.clone()), reference.fcn_head.val());

    // A zoo-models backbone with its classifier: timm `SwinTransformer(img_size=32,
    // embed_dim=8, depths=(1, 1), num_heads=(1, 2), window_size=4, num_classes=3)`.
    let swin = SwinTransformerConfig::new()
        .with_img_size([32, 32])
        .with_embed_dim(8)
        .with_depths(vec![1, 1])
        .with_num_heads(vec![1, 2])
        .with_window_size(4)
        .with_mlp_ratio(2.0)
        .with_num_classes(Some(3))
        .init(device);
    let map = swin.key_map();
    let swin = load_upstream(swin, dir().join("swin.safetensors"), &map)?;
    let image = example_input([1, 3, 32, 32], device);
    let swin_max_diff = max_diff(swin.forward(image), reference.swin.val());

    // torchvision `DeepLabHead(8, 3, (2, 3))`: written with torchvision's key names by
    // `save_upstream` (what `torch.load` + `load_state_dict` would read), loaded back.
    let config = DeepLabHeadConfig::new(8, 3).with_atrous_rates(vec![2, 3]);
    let head = config.init(device);
    let file =
        std::env::temp_dir().join(format!("deeplab_head-{}.safetensors", std::process::id()));
    save_upstream(&head, &file, &head.key_map())?;
    let fresh = config.init(device);
    let map = fresh.key_map();
    let loaded = load_upstream(fresh, &file, &map)?;
    let _ = std::fs::remove_file(&file);
    let out = loaded.forward(x.clone());
    let deeplab_head = out.dims();
    let deeplab_head_round_trip_diff = max_diff(out, head.forward(x));

    Ok(WeightsSummary {
        aspp_max_diff,
        fcn_head_max_diff,
        swin_max_diff,
        deeplab_head,
        deeplab_head_round_trip_diff,
    })
}
