//! Upstream PyTorch weights in and out: `.safetensors` and `.pth`/`.pt` state dicts with
//! upstream key names, read through burn-store, one [`KeyMap`] per module.
//!
//! ```no_run
//! use burn::prelude::*;
//! use zoo_nn::layers::AsppConfig;
//! use zoo_nn::weights::load_upstream;
//!
//! let device = Device::default();
//! // torchvision's `ASPP(2048, [12, 24, 36])`, saved with `torch.save(aspp.state_dict(), ..)`.
//! let aspp = AsppConfig::new(2048).init(&device);
//! let map = aspp.key_map();
//! let aspp = load_upstream(aspp, "aspp.pth", &map)?;
//! # Ok::<(), zoo_nn::weights::WeightsError>(())
//! ```
//!
//! Loading is all-or-nothing: a key the module expects but the file lacks, a key the file has
//! that the module does not use (other than the map's named `ignore` patterns, e.g.
//! `num_batches_tracked`), or a shape mismatch is an error listing every offender.
//!
//! A [`KeyMap`] is a list of rules, each recorded both ways (load and save); every key is
//! handled by the first rule that matches it: regex renames, splits of a packed tensor into
//! equal parts (PyTorch `nn.MultiheadAttention`'s `in_proj_weight` → query/key/value, packed
//! again on save), transposes of 2-D tensors, and named ignores. Maps compose:
//! [`KeyMap::nest`] places a part's map under a parent's prefixes, [`KeyMap::within`] loads a
//! module out of a larger state dict. burn-store's PyTorch adapter transposes the weights of
//! every Burn `Linear` (PyTorch `[out, in]` → Burn `[in, out]`) and renames norm
//! `weight`/`bias` to `gamma`/`beta`; [`KeyMap::transpose`] is for 2-D parameters outside
//! them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::burn_pack::{Error as PackError, Tensor as PackTensor};
use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, ModuleSnapshot, ModuleStore,
    PyTorchToBurnAdapter, PytorchStore, SafetensorsStore, bridge,
};
use burn::tensor::{DType, Shape, TensorData};

/// One rule of a [`KeyMap`], in one direction.
#[derive(Debug, Clone)]
enum Step {
    /// `regex::Regex::replace_all(pattern, replacement)` on a key that matches `pattern`.
    Rename {
        pattern: String,
        replacement: String,
    },
    /// The tensor named `packed` becomes `parts.len()` tensors, equal slices of dimension 0.
    Split { packed: String, parts: Vec<String> },
    /// The tensors named `parts` become one, `packed`, concatenated along dimension 0.
    Merge { parts: Vec<String>, packed: String },
    /// The 2-D tensor named `from` is transposed and named `to`.
    Transpose { from: String, to: String },
    /// A key under `from.` is routed through `steps` (relative to the prefix), then placed
    /// under `to.`.
    Nest {
        from: String,
        to: String,
        steps: Vec<Step>,
    },
}

/// What the first matching rule does with one tensor.
#[derive(Debug, Clone, PartialEq)]
enum Route {
    /// Renamed (or kept) as this name.
    Name(String),
    /// Split into these names.
    Split(Vec<String>),
    /// Transposed and named.
    Transpose(String),
    /// Part `index` of `count` of the packed tensor `packed`.
    Merge {
        packed: String,
        index: usize,
        count: usize,
    },
}

impl Route {
    fn under(self, prefix: &str) -> Route {
        let add = |n: String| format!("{prefix}.{n}");
        match self {
            Route::Name(n) => Route::Name(add(n)),
            Route::Split(parts) => Route::Split(parts.into_iter().map(add).collect()),
            Route::Transpose(n) => Route::Transpose(add(n)),
            Route::Merge {
                packed,
                index,
                count,
            } => Route::Merge {
                packed: add(packed),
                index,
                count,
            },
        }
    }
}

/// A [`Step`] with its regex compiled.
enum Compiled {
    Rename(regex::Regex, String),
    Split(String, Vec<String>),
    Merge(Vec<String>, String),
    Transpose(String, String),
    Nest(String, String, Vec<Compiled>),
}

fn compile_steps(steps: &[Step]) -> Result<Vec<Compiled>, WeightsError> {
    steps
        .iter()
        .map(|s| {
            Ok(match s {
                Step::Rename {
                    pattern,
                    replacement,
                } => Compiled::Rename(compile(pattern)?, replacement.clone()),
                Step::Split { packed, parts } => Compiled::Split(packed.clone(), parts.clone()),
                Step::Merge { parts, packed } => Compiled::Merge(parts.clone(), packed.clone()),
                Step::Transpose { from, to } => Compiled::Transpose(from.clone(), to.clone()),
                Step::Nest { from, to, steps } => {
                    Compiled::Nest(from.clone(), to.clone(), compile_steps(steps)?)
                }
            })
        })
        .collect()
}

/// The route of `name` through `steps`: the first rule that matches decides; a name no rule
/// matches is kept.
fn route(steps: &[Compiled], name: &str) -> Route {
    for step in steps {
        match step {
            Compiled::Rename(re, replacement) if re.is_match(name) => {
                return Route::Name(re.replace_all(name, replacement.as_str()).into_owned());
            }
            Compiled::Split(packed, parts) if packed == name => {
                return Route::Split(parts.clone());
            }
            Compiled::Merge(parts, packed) => {
                if let Some(index) = parts.iter().position(|p| p == name) {
                    return Route::Merge {
                        packed: packed.clone(),
                        index,
                        count: parts.len(),
                    };
                }
            }
            Compiled::Transpose(from, to) if from == name => return Route::Transpose(to.clone()),
            Compiled::Nest(from, to, inner) => {
                if let Some(rest) = name
                    .strip_prefix(from.as_str())
                    .and_then(|r| r.strip_prefix('.'))
                {
                    return route(inner, rest).under(to);
                }
            }
            _ => {}
        }
    }
    Route::Name(name.to_string())
}

/// `s` with regex metacharacters escaped.
fn escape(s: &str) -> String {
    regex::escape(s)
}

/// How a module's upstream key names and tensor layouts relate to its Burn module paths.
///
/// A list of rules, each recorded in both directions (load and save); every key is handled by
/// the first rule that matches it, in the order the rules were added, and kept as it is when
/// none does. Built by a layer's or model's `key_map()`, or by hand with the builder methods.
#[derive(Debug, Clone, Default)]
pub struct KeyMap {
    to_burn: Vec<Step>,
    to_upstream: Vec<Step>,
    ignore: Vec<String>,
    within: Option<String>,
}

impl KeyMap {
    /// A map that renames nothing and ignores `num_batches_tracked` (BatchNorm's step
    /// counter, which Burn does not keep).
    pub fn new() -> Self {
        Self {
            ignore: vec![r"(^|\.)num_batches_tracked$".to_string()],
            ..Self::default()
        }
    }

    /// Adds a rename in both directions: upstream keys matching `from` (a regex; `$1` or
    /// `${1}` for its groups in `to`) become Burn `to`, and Burn paths matching `back_from`
    /// become upstream `back_to`. Rules anchored with `^` are relative to the module's root
    /// (they move with it under [`Self::nest`]); unanchored ones match wherever the module
    /// sits (`downsample\.0\.` inside a backbone stored under `backbone.` too).
    pub fn rename(mut self, from: &str, to: &str, back_from: &str, back_to: &str) -> Self {
        self.to_burn.push(Step::Rename {
            pattern: from.into(),
            replacement: to.into(),
        });
        self.to_upstream.push(Step::Rename {
            pattern: back_from.into(),
            replacement: back_to.into(),
        });
        self
    }

    /// Renames one upstream submodule to one Burn submodule, both ways: upstream `{up}.*` ↔
    /// Burn `{burn}.*` (at the module's root; dots taken literally). What most `key_map()`s
    /// are made of (a conv–BN pair `0`/`1` ↔ `conv`/`norm`, a renamed head).
    pub fn prefix(self, up: &str, burn: &str) -> Self {
        self.rename(
            &format!(r"^{}\.", escape(up)),
            &format!("{burn}."),
            &format!(r"^{}\.", escape(burn)),
            &format!("{up}."),
        )
    }

    /// Drops upstream keys matching `pattern` (a regex) on load, on purpose: buffers burn-zoo
    /// does not keep, heads the module was built without. A key is ignored when its upstream
    /// name or the Burn path it was routed to matches (and the module has no such path).
    pub fn ignore(mut self, pattern: &str) -> Self {
        if !self.ignore.iter().any(|p| p == pattern) {
            self.ignore.push(pattern.into());
        }
        self
    }

    /// The ignore patterns (regexes), in the order they were added.
    pub fn ignored(&self) -> &[String] {
        &self.ignore
    }

    /// Splits the packed upstream tensor `packed` (its key relative to the module's root)
    /// into `parts.len()` equal slices along dimension 0, named `parts` (Burn paths); on save
    /// the parts are concatenated back into `packed`. PyTorch `nn.MultiheadAttention` packs
    /// its query/key/value projections as `in_proj_weight` `[3·E, E]` and `in_proj_bias`
    /// `[3·E]`; the parts of a weight that land in a Burn `Linear` are then transposed by the
    /// PyTorch adapter like any `Linear` weight.
    pub fn split(mut self, packed: &str, parts: &[&str]) -> Self {
        let parts: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
        self.to_burn.push(Step::Split {
            packed: packed.into(),
            parts: parts.clone(),
        });
        self.to_upstream.push(Step::Merge {
            parts,
            packed: packed.into(),
        });
        self
    }

    /// Transposes the 2-D tensor stored upstream as `up` (its key relative to the module's
    /// root) into the Burn parameter `burn`, and back on save. For parameters holding a
    /// PyTorch `Linear`-style `[out, in]` matrix outside a Burn `Linear` (whose weights
    /// burn-store's PyTorch adapter already transposes).
    pub fn transpose(mut self, up: &str, burn: &str) -> Self {
        self.to_burn.push(Step::Transpose {
            from: up.into(),
            to: burn.into(),
        });
        self.to_upstream.push(Step::Transpose {
            from: burn.into(),
            to: up.into(),
        });
        self
    }

    /// Appends all rules and ignores of `other` after this map's (for a module made of parts
    /// that share the root, e.g. the unanchored rules of a backbone).
    pub fn extend(mut self, other: KeyMap) -> Self {
        self.to_burn.extend(other.to_burn);
        self.to_upstream.extend(other.to_upstream);
        for p in &other.ignore {
            self = self.ignore(p);
        }
        self
    }

    /// Adds `part`, the map of a submodule stored upstream under `up` and held in Burn under
    /// `burn` (e.g. torchvision's `classifier.0` ASPP as a model's `head.aspp`): a key under
    /// `up.` is routed through `part`'s rules relative to the prefix, then placed under
    /// `burn.` (and the reverse on save). `part`'s anchored ignores move under `up.`.
    pub fn nest(mut self, up: &str, burn: &str, part: KeyMap) -> Self {
        for p in &part.ignore {
            let p = match p.strip_prefix('^') {
                Some(rest) => format!("^{}\\.{rest}", escape(up)),
                None => p.clone(),
            };
            self = self.ignore(&p);
        }
        self.to_burn.push(Step::Nest {
            from: up.into(),
            to: burn.into(),
            steps: part.to_burn,
        });
        self.to_upstream.push(Step::Nest {
            from: burn.into(),
            to: up.into(),
            steps: part.to_upstream,
        });
        self
    }

    /// This map for a module stored under `up` inside a larger state dict (a head inside a
    /// full model's file): keys outside `up.` are skipped on load, `up.` is stripped before the
    /// map's rules, and added back on save.
    pub fn within(mut self, up: &str) -> Self {
        self.within = Some(match self.within.take() {
            Some(inner) => format!("{up}.{inner}"),
            None => up.to_string(),
        });
        self
    }

    fn strip_within(&self, key: &str) -> Option<String> {
        match &self.within {
            Some(up) => key
                .strip_prefix(up.as_str())
                .and_then(|k| k.strip_prefix('.'))
                .map(str::to_string),
            None => Some(key.to_string()),
        }
    }
}

/// A rename of one upstream submodule prefix to one Burn prefix, both ways (see
/// [`KeyMap::prefix`]).
pub fn block_rules(map: KeyMap, up: &str, burn: &str) -> KeyMap {
    map.prefix(up, burn)
}

fn compile(pattern: &str) -> Result<regex::Regex, WeightsError> {
    regex::Regex::new(pattern).map_err(|e| WeightsError::KeyMap(e.to_string()))
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
    /// The file does not match the module.
    #[error(
        "{path}: the weights do not match the model:{}",
        mismatch_list(missing, unexpected, errors)
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Burn paths the module has and the file lacks.
        missing: Vec<String>,
        /// Upstream keys the file has and the module does not use (with the Burn path they
        /// were renamed to, where it differs).
        unexpected: Vec<String>,
        /// Shape or dtype mismatches.
        errors: Vec<String>,
    },
    /// A key-map step cannot be applied to a tensor (a split of a dimension that does not
    /// divide, a transpose of a tensor that is not 2-D, a merge missing a part).
    #[error("{path}: {key}: {message}")]
    Transform {
        /// The file.
        path: PathBuf,
        /// The key the step applies to.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A key-map rule is not a valid regex.
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

/// Every tensor of an upstream file, named by its upstream key.
fn read_all(path: &Path) -> Result<Vec<PackTensor>, WeightsError> {
    let store_error = |e: &dyn std::fmt::Display| WeightsError::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let tensors = match format_of(path)? {
        Format::Safetensors => SafetensorsStore::from_file(path)
            .get_all_tensors()
            .map_err(|e| store_error(&e))?
            .values()
            .cloned()
            .collect(),
        // Key maps are written against the keys as saved: burn-store's renumbering of
        // `Sequential` indices (`4` → `3` after a parameter-free ReLU) stays off.
        Format::Pytorch => PytorchStore::from_file(path)
            .map_indices_contiguous(false)
            .get_all_tensors()
            .map_err(|e| store_error(&e))?
            .values()
            .cloned()
            .collect(),
    };
    Ok(tensors)
}

/// Routes every tensor through `steps`; `origin` follows each new name back to the key it
/// came from.
fn run_steps(
    path: &Path,
    steps: &[Step],
    tensors: Vec<PackTensor>,
    origin: &mut HashMap<String, String>,
) -> Result<Vec<PackTensor>, WeightsError> {
    let bad = |key: &str, message: String| WeightsError::Transform {
        path: path.to_path_buf(),
        key: key.to_string(),
        message,
    };
    let steps = compile_steps(steps)?;
    let mut out = Vec::with_capacity(tensors.len());
    let mut packs: Vec<(String, Vec<Option<PackTensor>>)> = Vec::new();
    for mut t in tensors {
        let from = origin.remove(&t.name).unwrap_or_else(|| t.name.clone());
        match route(&steps, &t.name) {
            Route::Name(name) => {
                origin.insert(name.clone(), from);
                t.name = name;
                out.push(t);
            }
            Route::Transpose(name) => {
                origin.insert(name.clone(), from.clone());
                out.push(transposed(t, name).map_err(|m| bad(&from, m))?);
            }
            Route::Split(parts) => {
                let rows = t.shape.first().copied().unwrap_or(0);
                if !rows.is_multiple_of(parts.len()) || t.shape.is_empty() {
                    return Err(bad(
                        &from,
                        format!(
                            "cannot split shape {:?} into {} equal parts along dimension 0",
                            t.shape.as_slice(),
                            parts.len()
                        ),
                    ));
                }
                for (i, part) in parts.iter().enumerate() {
                    origin.insert(part.clone(), from.clone());
                    out.push(slice_rows(&t, part, i, parts.len()));
                }
            }
            Route::Merge {
                packed,
                index,
                count,
            } => {
                let at = match packs.iter().position(|(p, _)| p == &packed) {
                    Some(at) => at,
                    None => {
                        packs.push((packed.clone(), vec![None; count]));
                        packs.len() - 1
                    }
                };
                packs[at].1[index] = Some(t);
            }
        }
    }
    for (packed, parts) in packs {
        let found: Option<Vec<PackTensor>> = parts.iter().cloned().collect();
        let Some(found) = found else {
            return Err(bad(
                &packed,
                format!(
                    "packing needs all {} parts, found {}",
                    parts.len(),
                    parts.iter().flatten().count()
                ),
            ));
        };
        out.push(concat_rows(found, &packed).map_err(|m| bad(&packed, m))?);
    }
    Ok(out)
}

fn data_error(e: impl std::fmt::Display) -> PackError {
    PackError::ValidationError(e.to_string())
}

/// Slice `i` of `parts` equal slices of `t` along dimension 0, read when drawn.
fn slice_rows(t: &PackTensor, name: &str, i: usize, parts: usize) -> PackTensor {
    let mut shape: Vec<usize> = t.shape.to_vec();
    shape[0] /= parts;
    let dtype = t.dtype;
    let source = t.clone();
    let part_shape = Shape::from(shape.clone());
    bridge::deferred(name.to_string(), dtype, part_shape, None, move || {
        let data = bridge::to_data(&source)?;
        let bytes = data.as_bytes();
        let len = bytes.len() / parts;
        let piece = bytes[i * len..(i + 1) * len].to_vec();
        TensorData::try_from_bytes_vec(piece, shape.clone(), dtype).map_err(data_error)
    })
}

/// `parts` concatenated along dimension 0, read when drawn.
fn concat_rows(parts: Vec<PackTensor>, name: &str) -> Result<PackTensor, String> {
    let first = &parts[0];
    let (dtype, tail) = (first.dtype, first.shape[1..].to_vec());
    if let Some(t) = parts
        .iter()
        .find(|t| t.dtype != dtype || t.shape.get(1..) != Some(tail.as_slice()))
    {
        return Err(format!(
            "parts differ: {} is {:?} {:?}, {} is {:?} {:?}",
            first.name,
            dtype,
            first.shape.as_slice(),
            t.name,
            t.dtype,
            t.shape.as_slice()
        ));
    }
    let mut shape = vec![parts.iter().map(|t| t.shape[0]).sum::<usize>()];
    shape.extend(tail);
    let declared = shape.clone();
    Ok(bridge::deferred(
        name.to_string(),
        dtype,
        Shape::from(shape),
        None,
        move || {
            let mut bytes = Vec::new();
            for p in &parts {
                bytes.extend_from_slice(bridge::to_data(p)?.as_bytes());
            }
            TensorData::try_from_bytes_vec(bytes, declared.clone(), dtype).map_err(data_error)
        },
    ))
}

/// A 2-D tensor transposed, read when drawn.
fn transposed(t: PackTensor, name: String) -> Result<PackTensor, String> {
    let [rows, cols] = t.shape.as_slice() else {
        return Err(format!(
            "can only transpose a 2-D tensor, got shape {:?}",
            t.shape.as_slice()
        ));
    };
    let (rows, cols, dtype) = (*rows, *cols, t.dtype);
    Ok(bridge::map_data(
        t,
        name,
        dtype,
        Shape::from(vec![cols, rows]),
        move |data| {
            let size = dtype.size();
            let bytes = data.as_bytes();
            let mut out = vec![0u8; bytes.len()];
            for r in 0..rows {
                for c in 0..cols {
                    let (from, to) = ((r * cols + c) * size, (c * rows + r) * size);
                    out[to..to + size].copy_from_slice(&bytes[from..from + size]);
                }
            }
            TensorData::from_bytes_vec(out, vec![cols, rows], dtype)
        },
    ))
}

/// Loads an upstream state dict into `module` (every parameter and BatchNorm statistic),
/// through `map`.
///
/// # Errors
/// An unreadable file, a map step that does not fit a tensor, or any missing key, unexpected
/// key (not matched by `map`'s ignores) or shape mismatch — all of them listed.
pub fn load_upstream<M: Module + ModuleSnapshot>(
    mut module: M,
    path: impl AsRef<Path>,
    map: &KeyMap,
) -> Result<M, WeightsError> {
    let path = path.as_ref();
    let (result, origin) = apply_upstream(&mut module, path, map)?;
    check(path, &result, map, &origin)?;
    Ok(module)
}

/// [`load_upstream`] into a model whose classifier has `classes` outputs where the file's
/// has another count (fine-tuning on other classes, as torchvision's references re-create
/// the last layer): the tensors whose shapes differ in one dimension only — the model's
/// `classes` (or 4 × `classes`, a box regressor) against one other class count, the same
/// for all of them — keep the values the model was initialised with; everything else loads
/// as strictly as [`load_upstream`]. Returns the model and the re-initialised tensors
/// (`path (file shape → model shape)`).
///
/// # Errors
/// See [`load_upstream`]; a shape mismatch outside the classifier is still one.
pub fn load_upstream_reclassed<M: Module + ModuleSnapshot>(
    mut module: M,
    path: impl AsRef<Path>,
    map: &KeyMap,
    classes: usize,
) -> Result<(M, Vec<String>), WeightsError> {
    let path = path.as_ref();
    let (mut result, origin) = apply_upstream(&mut module, path, map)?;
    let mut file_classes = None;
    let mut reinitialised = Vec::new();
    result.errors.retain(|e| {
        let ApplyError::ShapeMismatch {
            path: tensor,
            expected,
            found,
        } = e
        else {
            return true;
        };
        let (expected, found): (Vec<usize>, Vec<usize>) = (expected.to_vec(), found.to_vec());
        let differing: Vec<usize> = (0..expected.len().min(found.len()))
            .filter(|&d| expected[d] != found[d])
            .collect();
        let class_dim = match differing[..] {
            [d] if expected.len() == found.len() => Some(d),
            _ => None,
        };
        let Some(d) = class_dim else { return true };
        let per_class = expected[d] / classes.max(1);
        let fits = expected[d] % classes.max(1) == 0
            && (per_class == 1 || per_class == 4)
            && found[d] % per_class == 0;
        let other = found[d] / per_class.max(1);
        if !fits || *file_classes.get_or_insert(other) != other {
            return true;
        }
        reinitialised.push(format!("{tensor} ({found:?} → {expected:?})"));
        false
    });
    check(path, &result, map, &origin)?;
    Ok((module, reinitialised))
}

/// Reads `path`, maps its keys through `map` and applies the tensors to `module`; returns
/// what burn-store reports and each renamed key's upstream name.
fn apply_upstream<M: Module + ModuleSnapshot>(
    module: &mut M,
    path: &Path,
    map: &KeyMap,
) -> Result<(ApplyResult, HashMap<String, String>), WeightsError> {
    let mut origin = HashMap::new();
    let tensors: Vec<PackTensor> = read_all(path)?
        .into_iter()
        .filter_map(|mut t| {
            let name = map.strip_within(&t.name)?;
            if name != t.name {
                origin.insert(name.clone(), t.name.clone());
                t.name = name;
            }
            Some(t)
        })
        .collect();
    let tensors = run_steps(path, &map.to_burn, tensors, &mut origin)?;
    let result = module.apply(tensors, None, Some(Box::new(PyTorchToBurnAdapter)), true);
    Ok((result, origin))
}

fn check(
    path: &Path,
    result: &ApplyResult,
    map: &KeyMap,
    origin: &HashMap<String, String>,
) -> Result<(), WeightsError> {
    let ignore: Vec<regex::Regex> = map
        .ignore
        .iter()
        .map(|p| compile(p))
        .collect::<Result<_, _>>()?;
    let unexpected: Vec<String> = result
        .unused
        .iter()
        .filter_map(|k| {
            let up = origin.get(k).unwrap_or(k);
            let ignored = ignore.iter().any(|r| r.is_match(k) || r.is_match(up));
            (!ignored).then(|| match up == k {
                true => k.clone(),
                false => format!("{up} (as {k})"),
            })
        })
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

fn safetensors_dtype(dtype: DType) -> Option<safetensors::Dtype> {
    use safetensors::Dtype as D;
    Some(match dtype {
        DType::F64 => D::F64,
        DType::F32 | DType::Flex32 => D::F32,
        DType::F16 => D::F16,
        DType::BF16 => D::BF16,
        DType::I64 => D::I64,
        DType::I32 => D::I32,
        DType::I16 => D::I16,
        DType::I8 => D::I8,
        DType::U64 => D::U64,
        DType::U32 => D::U32,
        DType::U16 => D::U16,
        DType::U8 => D::U8,
        DType::Bool(_) | DType::QFloat(_) => return None,
    })
}

/// Saves `module` as a `.safetensors` state dict with upstream key names and layouts (Linear
/// weights `[out, in]`, norm `weight`/`bias`, packed tensors re-packed), loadable by the
/// upstream library. The file is written whole or not at all (temporary file, then rename).
///
/// # Errors
/// A path without the `.safetensors` extension, a map step that does not fit, a tensor the
/// format cannot hold, or a write failure.
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
    let store_error = |message: String| WeightsError::Store {
        path: path.to_path_buf(),
        message,
    };
    let tensors = module.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true);
    let mut tensors = run_steps(path, &map.to_upstream, tensors, &mut HashMap::new())?;
    if let Some(up) = &map.within {
        for t in &mut tensors {
            t.name = format!("{up}.{}", t.name);
        }
    }
    let mut entries = Vec::with_capacity(tensors.len());
    for t in tensors {
        let dtype = safetensors_dtype(t.dtype).ok_or_else(|| WeightsError::Transform {
            path: path.to_path_buf(),
            key: t.name.clone(),
            message: format!("{:?} cannot be stored in safetensors", t.dtype),
        })?;
        let shape = t.shape.to_vec();
        let name = t.name.clone();
        let bytes = t.into_bytes().map_err(|e| store_error(e.to_string()))?;
        entries.push((name, dtype, shape, bytes));
    }
    let views = entries
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| store_error(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tmp = path.with_extension("safetensors.tmp");
    let written = safetensors::serialize_to_file(views, None, &tmp)
        .map_err(|e| e.to_string())
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
    written.map_err(|message| {
        let _ = std::fs::remove_file(&tmp);
        store_error(message)
    })
}
