//! Upstream PyTorch weights in and out: `.safetensors` and `.pth`/`.pt` state dicts with
//! upstream key names, through burn-store, one [`KeyMap`] per model.
//!
//! Loading is all-or-nothing: a key the model expects but the file lacks, a key the file has
//! that the model does not use (other than the map's explicit `ignore` patterns, e.g.
//! `num_batches_tracked`), or a shape mismatch is an error listing every offender.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{
    ApplyResult, BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter,
    PytorchStore, SafetensorsStore,
};

/// How a model's upstream key names relate to its Burn module paths.
#[derive(Debug, Clone, Default)]
pub struct KeyMap {
    /// Regex rules applied in order to each upstream key to get the Burn path
    /// (`regex::Regex::replace_all` syntax, `$1` for groups).
    pub to_burn: Vec<(String, String)>,
    /// The inverse rules, applied to Burn paths when saving with upstream names.
    pub to_upstream: Vec<(String, String)>,
    /// Regexes of upstream keys that are read and dropped on purpose (buffers burn-zoo does
    /// not keep, heads the model was built without).
    pub ignore: Vec<String>,
}

impl KeyMap {
    /// A map that renames nothing and ignores `num_batches_tracked`.
    pub fn new() -> Self {
        Self {
            ignore: vec![r"(^|\.)num_batches_tracked$".to_string()],
            ..Self::default()
        }
    }

    /// Adds a rename in both directions: upstream `from` (a regex) → Burn `to`, and Burn
    /// `back_from` → upstream `back_to`. Unanchored rules apply wherever the model sits
    /// (`downsample\.0\.` inside a backbone stored under `backbone.` too).
    pub fn rename(mut self, from: &str, to: &str, back_from: &str, back_to: &str) -> Self {
        self.to_burn.push((from.into(), to.into()));
        self.to_upstream.push((back_from.into(), back_to.into()));
        self
    }

    /// Adds upstream keys (a regex) to drop on load.
    pub fn ignore(mut self, pattern: &str) -> Self {
        self.ignore.push(pattern.into());
        self
    }

    /// Appends all rules of `other` (for a model made of parts).
    pub fn extend(mut self, other: KeyMap) -> Self {
        self.to_burn.extend(other.to_burn);
        self.to_upstream.extend(other.to_upstream);
        for p in other.ignore {
            if !self.ignore.contains(&p) {
                self.ignore.push(p);
            }
        }
        self
    }

    fn remapper(rules: &[(String, String)]) -> Result<KeyRemapper, WeightsError> {
        KeyRemapper::from_patterns(
            rules
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect(),
        )
        .map_err(|e| WeightsError::KeyMap(e.to_string()))
    }
}

/// A rename of one upstream module prefix to one Burn module prefix, both ways: upstream
/// `{up}.*` ↔ Burn `{burn}.*` (anchored at the start of the key; dots taken literally).
/// What every model's `key_map()` is built from where its module tree differs from
/// upstream's (a conv–BN pair `0`/`1` ↔ `conv`/`norm`, a renamed head).
pub fn block_rules(map: KeyMap, up: &str, burn: &str) -> KeyMap {
    let esc = |s: &str| s.replace('.', r"\.");
    map.rename(
        &format!(r"^{}\.", esc(up)),
        &format!("{burn}."),
        &format!(r"^{}\.", esc(burn)),
        &format!("{up}."),
    )
}

/// Why weights could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file's extension is neither `.safetensors` nor `.pth`/`.pt`/`.bin`.
    #[error("{path}: unknown weights format (expected .safetensors, .pth, .pt or .bin)")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// burn-store could not read or write the file.
    #[error("{path}: {message}")]
    Store {
        /// The file.
        path: PathBuf,
        /// burn-store's message.
        message: String,
    },
    /// The file does not match the model.
    #[error(
        "{path}: the weights do not match the model:{}",
        mismatch_list(missing, unexpected, errors)
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Burn paths the model has and the file lacks.
        missing: Vec<String>,
        /// Upstream keys (after remapping) the file has and the model does not use.
        unexpected: Vec<String>,
        /// Shape or dtype mismatches.
        errors: Vec<String>,
    },
    /// A key-remap rule is not a valid regex.
    #[error("invalid key-remap rule: {0}")]
    KeyMap(String),
}

fn mismatch_list(missing: &[String], unexpected: &[String], errors: &[String]) -> String {
    let mut out = String::new();
    for (what, list) in [
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("mismatched tensors", errors),
    ] {
        if !list.is_empty() {
            out += &format!("\n  {what} ({}): {}", list.len(), list.join(", "));
        }
    }
    out
}

enum Format {
    Safetensors,
    Pytorch,
}

fn format_of(path: &Path) -> Result<Format, WeightsError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => Ok(Format::Safetensors),
        Some("pth" | "pt" | "bin") => Ok(Format::Pytorch),
        _ => Err(WeightsError::UnknownFormat {
            path: path.to_path_buf(),
        }),
    }
}

/// Loads an upstream state dict into `module` (every parameter and BatchNorm statistic),
/// renaming keys with `map`.
///
/// # Errors
/// An unreadable file, or any missing key, unexpected key (not matched by `map.ignore`) or
/// shape mismatch — all of them listed.
pub fn load_upstream<M: Module + ModuleSnapshot>(
    mut module: M,
    path: impl AsRef<Path>,
    map: &KeyMap,
) -> Result<M, WeightsError> {
    let path = path.as_ref();
    let store_error = |e: &dyn std::fmt::Display| WeightsError::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    // One pipeline for both readers: upstream keys remapped, the enum variants of the module
    // tree skipped, every key read even if some do not fit (`check` then lists all the
    // offenders at once).
    macro_rules! upstream {
        ($store:expr) => {
            $store
                .remap(KeyMap::remapper(&map.to_burn)?)
                .skip_enum_variants(true)
                .validate(false)
                .allow_partial(true)
        };
    }
    let result = match format_of(path)? {
        Format::Safetensors => module
            .load_from(&mut upstream!(
                SafetensorsStore::from_file(path).with_from_adapter(PyTorchToBurnAdapter)
            ))
            .map_err(|e| store_error(&e))?,
        Format::Pytorch => module
            .load_from(&mut upstream!(PytorchStore::from_file(path)))
            .map_err(|e| store_error(&e))?,
    };
    check(path, &result, map)?;
    Ok(module)
}

fn check(path: &Path, result: &ApplyResult, map: &KeyMap) -> Result<(), WeightsError> {
    let ignore: Vec<regex::Regex> = map
        .ignore
        .iter()
        .map(|p| regex::Regex::new(p).map_err(|e| WeightsError::KeyMap(e.to_string())))
        .collect::<Result<_, _>>()?;
    let unexpected: Vec<String> = result
        .unused
        .iter()
        .filter(|k| !ignore.iter().any(|r| r.is_match(k)))
        .cloned()
        .collect();
    let missing: Vec<String> = result.missing.iter().map(|(p, _)| p.clone()).collect();
    let errors: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
    if missing.is_empty() && unexpected.is_empty() && errors.is_empty() {
        return Ok(());
    }
    Err(WeightsError::Mismatch {
        path: path.to_path_buf(),
        missing,
        unexpected,
        errors,
    })
}

/// Saves `module` as a `.safetensors` state dict with upstream key names (PyTorch layouts:
/// Linear weights `[out, in]`, norm `weight`/`bias`), loadable by the upstream library.
///
/// # Errors
/// A path without the `.safetensors` extension, or a write failure.
pub fn save_upstream<M: Module + ModuleSnapshot>(
    module: &M,
    path: impl AsRef<Path>,
    map: &KeyMap,
) -> Result<(), WeightsError> {
    let path = path.as_ref();
    if !matches!(format_of(path)?, Format::Safetensors) {
        return Err(WeightsError::UnknownFormat {
            path: path.to_path_buf(),
        });
    }
    let mut store = SafetensorsStore::from_file(path)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(KeyMap::remapper(&map.to_upstream)?)
        .skip_enum_variants(true)
        .overwrite(true);
    module
        .save_into(&mut store)
        .map_err(|e| WeightsError::Store {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}
