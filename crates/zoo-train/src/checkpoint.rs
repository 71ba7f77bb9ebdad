//! Checkpoints: Burn's native `.bpk` (burnpack) files that carry the architecture and the
//! resolved run file in their metadata, so a checkpoint alone rebuilds its model
//! (`zoo predict`, `zoo eval`). Parameter ids are kept, so a saved optimizer state
//! (`*.optim.bpk`) attaches to the reloaded model on `--resume`. Every file is written to a
//! temporary name, flushed to disk, then renamed; weights with NaN or infinite values are
//! neither written nor loaded.
//!
//! Fault injection (for the project's crash tests): with `ZOO_FAULT_AT=n` in the
//! environment, the n-th file operation of the process (each write of a temporary file and
//! each rename, 1-based) aborts the process (`ZOO_FAULT=abort`, the default) or fails with an
//! I/O error (`ZOO_FAULT=fail`, as a full disk would).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use burn::store::burn_pack::Reader;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Bytes;
use zoo_models::registry::ZooModel;

use crate::config::{ConfigError, RunConfig};

const ARCH: &str = "zoo.arch";
const CONFIG: &str = "zoo.config";
const EPOCH: &str = "zoo.epoch";
const STEP: &str = "zoo.step";
const CLASSES: &str = "zoo.class_names";

/// Every tensor of a checkpoint by name, names sorted, each as its stored little-endian bytes
/// (compare runs by name: parameter ids differ between runs).
///
/// # Errors
/// A file that is missing or not a burnpack, or a tensor that cannot be read.
pub fn tensors(path: &Path) -> Result<Vec<(String, Vec<u8>)>, CheckpointError> {
    let reader = Reader::from_file(path).map_err(|e| CheckpointError::NotBurnpack {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut names: Vec<String> = reader
        .tensor_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let data = reader.tensor_data(&n).map_err(|e| store_error(path, e))?;
            Ok((n, data))
        })
        .collect()
}

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

/// Why a checkpoint could not be written or used; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read, written or renamed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// burn-store could not read or write the tensors or the optimiser state.
    #[error("{}: {message}", path.display())]
    Store {
        /// The file.
        path: PathBuf,
        /// burn-store's message.
        message: String,
    },
    /// Not a burnpack file.
    #[error("{}: cannot read the checkpoint (expected a burn-zoo .bpk file): {message}", path.display())]
    NotBurnpack {
        /// The file.
        path: PathBuf,
        /// The reader's message.
        message: String,
    },
    /// A burnpack file without burn-zoo's metadata, or with a malformed entry.
    #[error("{}: not a burn-zoo checkpoint: metadata `{key}` {problem}", path.display())]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The metadata entry.
        key: &'static str,
        /// "is missing", "is not a number".
        problem: &'static str,
    },
    /// The run file stored in the checkpoint does not load.
    #[error("{}: its run file does not parse: {source}", path.display())]
    RunFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: ConfigError,
    },
    /// A checkpoint of another architecture.
    #[error("{}: a checkpoint of {found} cannot be loaded into {expected}", path.display())]
    Architecture {
        /// The file.
        path: PathBuf,
        /// The checkpoint's architecture.
        found: String,
        /// The model's.
        expected: String,
    },
    /// An architecture to import that the registry does not have, or options it refuses
    /// (names the key).
    #[error(transparent)]
    Import(ConfigError),
    /// Upstream weights that do not fit the model (every key at fault listed).
    #[error(transparent)]
    Weights(#[from] zoo_models::weights::WeightsError),
    /// Weights with NaN or infinite values (a diverged run): refused on save and on load.
    #[error("{}: {count} non-finite (NaN or infinite) weights, in {}", path.display(), tensors.join(", "))]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// How many values.
        count: usize,
        /// The tensors that hold them (the first few).
        tensors: Vec<String>,
    },
    /// Tensors that do not fit the model of the run file.
    #[error("{}: the checkpoint does not fit the model of its run file ({})", path.display(), problems.join("; "))]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Missing, unexpected and mismatched tensors, by kind.
        problems: Vec<String>,
    },
}

fn store_error(path: &Path, e: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn io_error(path: &Path, source: std::io::Error) -> CheckpointError {
    CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The fault-injection hook (see the module docs): counts file operations and aborts or
/// fails at the one `ZOO_FAULT_AT` names.
fn fault_point(path: &Path) -> Result<(), CheckpointError> {
    static AT: OnceLock<Option<(usize, bool)>> = OnceLock::new();
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let Some((at, abort)) = *AT.get_or_init(|| {
        let at = std::env::var("ZOO_FAULT_AT").ok()?.parse().ok()?;
        Some((at, std::env::var("ZOO_FAULT").as_deref() != Ok("fail")))
    }) else {
        return Ok(());
    };
    if COUNT.fetch_add(1, Ordering::SeqCst) + 1 != at {
        return Ok(());
    }
    if abort {
        eprintln!("ZOO_FAULT_AT={at}: aborting before {}", path.display());
        std::process::abort();
    }
    Err(io_error(
        path,
        std::io::Error::other(format!("ZOO_FAULT_AT={at}: injected failure")),
    ))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

/// Writes `bytes` to `path` through a temporary file in the same directory, flushed to disk,
/// and a rename: `path` holds either its old content or all of `bytes`.
///
/// # Errors
/// Any I/O failure, naming the path; the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    use std::io::Write;
    let tmp = tmp_path(path);
    let written = fault_point(&tmp).and_then(|()| {
        let mut file = std::fs::File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
        file.write_all(bytes).map_err(|e| io_error(&tmp, e))?;
        file.sync_all().map_err(|e| io_error(&tmp, e))
    });
    let renamed = written.and_then(|()| {
        fault_point(path)?;
        std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))
    });
    if renamed.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    renamed
}

/// Makes `path` a second name of the file `source` (a hard link; a copy where the file
/// system has none), replacing what `path` held in one rename.
///
/// # Errors
/// Any I/O failure, naming the path.
pub fn link_atomic(source: &Path, path: &Path) -> Result<(), CheckpointError> {
    let tmp = tmp_path(path);
    std::fs::remove_file(&tmp).ok();
    fault_point(&tmp)?;
    if std::fs::hard_link(source, &tmp).is_err() {
        std::fs::copy(source, &tmp).map_err(|e| io_error(&tmp, e))?;
    }
    let renamed =
        fault_point(path).and_then(|()| std::fs::rename(&tmp, path).map_err(|e| io_error(path, e)));
    // Also after a successful rename: when `path` already was a name of `source`, POSIX's
    // rename does nothing and leaves the temporary name behind.
    std::fs::remove_file(&tmp).ok();
    renamed
}

/// Refuses `bytes` (a burnpack) if any float tensor holds a NaN or an infinity; `path` names
/// the file in the error.
///
/// # Errors
/// [`CheckpointError::NonFinite`], or a file that is not a burnpack.
pub fn check_finite(bytes: &[u8], path: &Path) -> Result<(), CheckpointError> {
    let reader = Reader::from_bytes(Bytes::from_bytes_vec(bytes.to_vec())).map_err(|e| {
        CheckpointError::NotBurnpack {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    })?;
    let (mut count, mut tensors) = (0, Vec::new());
    for tensor in reader.into_tensors().map_err(|e| store_error(path, e))? {
        let data = tensor.to_bytes().map_err(|e| store_error(path, e))?;
        let bad = match tensor.dtype {
            burn::tensor::DType::F32 => data
                .chunks_exact(4)
                .filter(|b| !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite())
                .count(),
            burn::tensor::DType::F64 => data
                .chunks_exact(8)
                .filter(|b| !f64::from_le_bytes((*b).try_into().expect("8 bytes")).is_finite())
                .count(),
            _ => 0,
        };
        if bad > 0 {
            count += bad;
            if tensors.len() < 5 {
                tensors.push(format!("{} ({bad})", tensor.name));
            }
        }
    }
    if count == 0 {
        return Ok(());
    }
    Err(CheckpointError::NonFinite {
        path: path.to_path_buf(),
        count,
        tensors,
    })
}

/// The checkpoint file of `model` with `info` in its metadata, checked finite (`path` names
/// the file in errors).
///
/// # Errors
/// A serialisation failure, or non-finite weights.
pub fn encode(
    model: &ZooModel,
    info: &CheckpointInfo,
    path: &Path,
) -> Result<Bytes, CheckpointError> {
    let mut store = BurnpackStore::from_bytes(None)
        .metadata(ARCH, info.arch.clone())
        .metadata(CONFIG, info.config.to_toml())
        .metadata(EPOCH, info.epoch.to_string())
        .metadata(STEP, info.step.to_string())
        .metadata(CLASSES, info.class_names.join("\n"));
    model
        .save_into(&mut store)
        .map_err(|e| store_error(path, e))?;
    let bytes = store.get_bytes().map_err(|e| store_error(path, e))?;
    check_finite(&bytes, path)?;
    Ok(bytes)
}

/// Saves `model` with `info` in the metadata.
///
/// # Errors
/// A serialisation or write failure, or non-finite weights (nothing is written then).
pub fn save(model: &ZooModel, info: &CheckpointInfo, path: &Path) -> Result<(), CheckpointError> {
    write_atomic(path, &encode(model, info, path)?)
}

/// Reads a checkpoint's metadata (not its tensors).
///
/// # Errors
/// A file that is missing, not a burnpack, or not written by burn-zoo.
pub fn read_info(path: &Path) -> Result<CheckpointInfo, CheckpointError> {
    let reader = Reader::from_file(path).map_err(|e| CheckpointError::NotBurnpack {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let meta = reader.metadata();
    let metadata = |key: &'static str, problem: &'static str| CheckpointError::Metadata {
        path: path.to_path_buf(),
        key,
        problem,
    };
    let get = |key: &'static str| meta.get(key).ok_or_else(|| metadata(key, "is missing"));
    let number = |key: &'static str| -> Result<usize, CheckpointError> {
        get(key)?
            .parse()
            .map_err(|_| metadata(key, "is not a number"))
    };
    let config =
        RunConfig::parse(get(CONFIG)?, path, &[]).map_err(|source| CheckpointError::RunFile {
            path: path.to_path_buf(),
            source,
        })?;
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
/// (missing, unexpected and mismatched ones listed), or weights with NaN or infinite values.
pub fn load_into(
    mut model: ZooModel,
    path: &Path,
    expected_arch: &str,
) -> Result<ZooModel, CheckpointError> {
    let info = read_info(path)?;
    if info.arch != expected_arch {
        return Err(CheckpointError::Architecture {
            path: path.to_path_buf(),
            found: info.arch,
            expected: expected_arch.to_string(),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    check_finite(&bytes, path)?;
    let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes)));
    let result = model
        .load_from(&mut store)
        .map_err(|e| store_error(path, e))?;
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
        return Err(CheckpointError::Mismatch {
            path: path.to_path_buf(),
            problems,
        });
    }
    Ok(model)
}

/// Rebuilds the checkpoint's model on `device` from its own run file and loads it.
///
/// # Errors
/// See [`read_info`] and [`load_into`].
pub fn load(path: &Path, device: &Device) -> Result<(ZooModel, CheckpointInfo), CheckpointError> {
    let info = read_info(path)?;
    let config = info
        .config
        .model_config_at(path)
        .map_err(|source| CheckpointError::RunFile {
            path: path.to_path_buf(),
            source,
        })?;
    let model = load_into(config.init(device), path, &info.arch)?;
    Ok((model, info))
}

/// Builds `arch` with `num_classes` classes, loads upstream PyTorch weights (torchvision /
/// timm / smp key names, `.pth` or `.safetensors`) into it, and returns it with the metadata
/// of a checkpoint: a run file with `model.name`, `model.num_classes` and
/// `data.image_size` (the size `zoo predict` resizes images to), the weights' registry name
/// as `model.weights` when they have one (their evaluation preprocessing then sizes `zoo
/// eval`'s images, see [`RunConfig::eval_protocol`]), and `class_names` (empty: unnamed).
///
/// # Errors
/// An unknown architecture, or weights that do not fit (every missing, unexpected and
/// mismatched key listed).
pub fn import_upstream(
    arch: &str,
    num_classes: usize,
    image_size: [usize; 2],
    weights: &Path,
    registry_name: Option<&str>,
    class_names: Vec<String>,
    device: &Device,
) -> Result<(ZooModel, CheckpointInfo), CheckpointError> {
    // Upstream builds the model for its pretrained weights as its default weights say
    // (torchvision's detectors: frozen BatchNorm, eps 0 for the COCO weights, 800 / 1333).
    let implied = registry_name
        .and_then(zoo_models::hub::find)
        .or_else(|| zoo_models::hub::find(arch))
        .map(|w| w.build_settings())
        .unwrap_or_default();
    let mut detection = String::new();
    if let Some(frozen) = implied.frozen_batch_norm {
        detection += &format!("frozen_batch_norm = {frozen}\n");
    }
    if let Some(eps) = implied.backbone_norm_eps {
        detection += &format!("backbone_norm_eps = {eps:?}\n");
    }
    if let Some([min, max]) = implied.transform_size {
        detection += &format!("transform_size = [{min}, {max}]\n");
    }
    let registry = registry_name.map_or(String::new(), |n| format!("weights = {n:?}\n"));
    let text = format!(
        "[model]\nname = {arch:?}\nnum_classes = {num_classes}\n{detection}{registry}[data]\nimage_size = [{}, {}]\n",
        image_size[0], image_size[1]
    );
    let config =
        RunConfig::parse(&text, Path::new("<import>"), &[]).map_err(CheckpointError::Import)?;
    let model = config
        .model_config()
        .map_err(CheckpointError::Import)?
        .init(device);
    let map = model.key_map();
    let model = zoo_models::weights::load_upstream(model, weights, &map)?;
    let info = CheckpointInfo {
        arch: arch.to_string(),
        config,
        epoch: 0,
        step: 0,
        class_names,
    };
    Ok((model, info))
}

/// Saves the optimiser's state (moments, step counts) next to a model checkpoint.
///
/// # Errors
/// A serialisation or write failure.
pub fn save_optimizer(optim: &ModuleOptimizer, path: &Path) -> Result<(), CheckpointError> {
    let bytes = optim.into_bytes().map_err(|e| store_error(path, e))?;
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
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    optim
        .from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| store_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::store::burn_pack::{Tensor as PackTensor, Writer};

    /// The checkpoint `bytes` with the first value of its first float tensor set to NaN.
    fn poisoned(bytes: &[u8]) -> Vec<u8> {
        let reader = Reader::from_bytes(Bytes::from_bytes_vec(bytes.to_vec())).unwrap();
        let metadata = reader.metadata().clone();
        let mut poisoned = false;
        let tensors: Vec<PackTensor> = reader
            .into_tensors()
            .unwrap()
            .into_iter()
            .map(|t| {
                let (name, dtype, shape, id, data) = t.into_parts().unwrap();
                let mut data = data.to_vec();
                if dtype == burn::tensor::DType::F32 && !poisoned {
                    data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
                    poisoned = true;
                }
                PackTensor::new(name, dtype, shape, id, Bytes::from_bytes_vec(data))
            })
            .collect();
        let mut writer = Writer::new(tensors);
        for (k, v) in &metadata {
            writer = writer.with_metadata(k, v);
        }
        writer.into_bytes().unwrap().to_vec()
    }

    #[test]
    fn non_finite_weights_are_neither_written_nor_loaded() {
        let text = "[model]\nname = \"resnet18\"\nnum_classes = 3\nbase_channels = 4\n\
                    [data]\nimage_size = [32, 32]\n";
        let config = RunConfig::parse(text, Path::new("r.toml"), &[]).unwrap();
        let device = Device::flex();
        let model = config.model_config().unwrap().init(&device);
        let info = CheckpointInfo {
            arch: "resnet18".into(),
            config,
            epoch: 1,
            step: 1,
            class_names: Vec::new(),
        };
        let dir = std::env::temp_dir().join(format!("zoo-ckpt-nan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nan.bpk");
        let bytes = encode(&model, &info, &path).unwrap();
        let bad = poisoned(&bytes);
        let e = check_finite(&bad, &path).unwrap_err();
        assert!(e.to_string().contains("1 non-finite"), "{e}");
        std::fs::write(&path, &bad).unwrap();
        let e = load(&path, &device).map(|_| ()).unwrap_err();
        assert!(
            matches!(e, CheckpointError::NonFinite { count: 1, .. })
                && e.to_string().contains("nan.bpk"),
            "{e}"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
