//! Checkpoints: Burn's native `.bpk` (burnpack) files that carry the architecture and the
//! resolved run file in their metadata, so a checkpoint alone rebuilds its model
//! (`zoo predict`, `zoo eval`). Parameter ids are kept, so a saved optimizer state
//! (`*.optim.bpk`) attaches to the reloaded model on `--resume`. Every file is written to a
//! temporary name, then renamed.

use std::path::{Path, PathBuf};

use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use burn::store::burn_pack::Reader;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Bytes;
use zoo_models::registry::ZooModel;

use crate::config::RunConfig;
use crate::model::model_config;

const ARCH: &str = "zoo.arch";
const CONFIG: &str = "zoo.config";
const EPOCH: &str = "zoo.epoch";
const STEP: &str = "zoo.step";
const CLASSES: &str = "zoo.class_names";

/// What a checkpoint says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointInfo {
    /// Registry name of the model (`model.name`).
    pub arch: String,
    /// The resolved run file the model was built from.
    pub config: RunConfig,
    /// Epochs completed (0 for imported weights).
    pub epoch: usize,
    /// Optimiser steps completed.
    pub step: usize,
    /// Class names by id (for overlays and tables); empty when unknown (imported weights).
    pub class_names: Vec<String>,
}

/// Why a checkpoint could not be written or used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct CheckpointError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

fn error(path: &Path, message: impl Into<String>) -> CheckpointError {
    CheckpointError {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
///
/// # Errors
/// Any I/O failure, naming the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| error(&tmp, e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| error(path, e.to_string()))
}

/// Saves `model` with `info` in the metadata.
///
/// # Errors
/// A serialisation or write failure.
pub fn save(model: &ZooModel, info: &CheckpointInfo, path: &Path) -> Result<(), CheckpointError> {
    let mut store = BurnpackStore::from_bytes(None)
        .metadata(ARCH, info.arch.clone())
        .metadata(CONFIG, info.config.to_toml())
        .metadata(EPOCH, info.epoch.to_string())
        .metadata(STEP, info.step.to_string())
        .metadata(CLASSES, info.class_names.join("\n"));
    model
        .save_into(&mut store)
        .map_err(|e| error(path, e.to_string()))?;
    let bytes = store.get_bytes().map_err(|e| error(path, e.to_string()))?;
    write_atomic(path, &bytes)
}

/// Reads a checkpoint's metadata (not its tensors).
///
/// # Errors
/// A file that is missing, not a burnpack, or not written by burn-zoo.
pub fn read_info(path: &Path) -> Result<CheckpointInfo, CheckpointError> {
    let reader = Reader::from_file(path).map_err(|e| {
        error(
            path,
            format!("cannot read the checkpoint (expected a burn-zoo .bpk file): {e}"),
        )
    })?;
    let meta = reader.metadata();
    let get = |key: &str| {
        meta.get(key).ok_or_else(|| {
            error(
                path,
                format!("not a burn-zoo checkpoint: no `{key}` in its metadata"),
            )
        })
    };
    let number = |key: &str| -> Result<usize, CheckpointError> {
        get(key)?
            .parse()
            .map_err(|_| error(path, format!("metadata `{key}` is not a number")))
    };
    let config = RunConfig::parse(get(CONFIG)?, path, &[])
        .map_err(|e| error(path, format!("its run file does not parse: {e}")))?;
    Ok(CheckpointInfo {
        arch: get(ARCH)?.clone(),
        config,
        epoch: number(EPOCH)?,
        step: number(STEP)?,
        class_names: meta
            .get(CLASSES)
            .filter(|names| !names.is_empty())
            .map_or_else(Vec::new, |names| names.lines().map(String::from).collect()),
    })
}

/// Loads the checkpoint's tensors into `model`, which must be of the checkpoint's
/// architecture (`expected_arch`).
///
/// # Errors
/// An unreadable file, another architecture (both names given), or tensors that do not fit
/// (missing, unexpected and mismatched ones listed).
pub fn load_into(
    mut model: ZooModel,
    path: &Path,
    expected_arch: &str,
) -> Result<ZooModel, CheckpointError> {
    let info = read_info(path)?;
    if info.arch != expected_arch {
        return Err(error(
            path,
            format!(
                "a checkpoint of {} cannot be loaded into {expected_arch}",
                info.arch
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| error(path, e.to_string()))?;
    let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes)));
    let result = model
        .load_from(&mut store)
        .map_err(|e| error(path, e.to_string()))?;
    let mut problems = Vec::new();
    if !result.missing.is_empty() {
        let keys: Vec<&str> = result.missing.iter().map(|(k, _)| k.as_str()).collect();
        problems.push(format!("missing: {}", keys.join(", ")));
    }
    if !result.unused.is_empty() {
        problems.push(format!("unexpected: {}", result.unused.join(", ")));
    }
    if !result.errors.is_empty() {
        let errors: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        problems.push(format!("mismatched: {}", errors.join("; ")));
    }
    if !problems.is_empty() {
        return Err(error(
            path,
            format!(
                "the checkpoint does not fit the model of its run file ({})",
                problems.join("; ")
            ),
        ));
    }
    Ok(model)
}

/// Rebuilds the checkpoint's model on `device` from its own run file and loads it.
///
/// # Errors
/// See [`read_info`] and [`load_into`].
pub fn load(path: &Path, device: &Device) -> Result<(ZooModel, CheckpointInfo), CheckpointError> {
    let info = read_info(path)?;
    let config = model_config(&info.config).map_err(|e| error(path, e))?;
    let model = load_into(config.init(device), path, &info.arch)?;
    Ok((model, info))
}

/// Builds `arch` with `num_classes` classes, loads upstream PyTorch weights (torchvision /
/// timm / smp key names, `.pth` or `.safetensors`) into it, and returns it with the metadata
/// of a checkpoint: a run file with `model.name`, `model.num_classes` and
/// `data.image_size` (the size `zoo predict` resizes images to).
///
/// # Errors
/// An unknown architecture, or weights that do not fit (every missing, unexpected and
/// mismatched key listed).
pub fn import_upstream(
    arch: &str,
    num_classes: usize,
    image_size: [usize; 2],
    weights: &Path,
    device: &Device,
) -> Result<(ZooModel, CheckpointInfo), crate::Error> {
    let text = format!(
        "[model]\nname = {arch:?}\nnum_classes = {num_classes}\n[data]\nimage_size = [{}, {}]\n",
        image_size[0], image_size[1]
    );
    let config = RunConfig::parse(&text, Path::new("<import>"), &[])?;
    let model = model_config(&config)
        .map_err(crate::Error::Invalid)?
        .init(device);
    let map = model.key_map();
    let model = zoo_models::weights::load_upstream(model, weights, &map)?;
    let info = CheckpointInfo {
        arch: arch.to_string(),
        config,
        epoch: 0,
        step: 0,
        class_names: Vec::new(),
    };
    Ok((model, info))
}

/// Saves the optimiser's state (moments, step counts) next to a model checkpoint.
///
/// # Errors
/// A serialisation or write failure.
pub fn save_optimizer(optim: &ModuleOptimizer, path: &Path) -> Result<(), CheckpointError> {
    let bytes = optim.into_bytes().map_err(|e| error(path, e.to_string()))?;
    write_atomic(path, &bytes)
}

/// Restores an optimiser state written by [`save_optimizer`].
///
/// # Errors
/// An unreadable or malformed file.
pub fn load_optimizer(
    optim: ModuleOptimizer,
    path: &Path,
) -> Result<ModuleOptimizer, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|e| error(path, e.to_string()))?;
    optim
        .from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| error(path, e.to_string()))
}
