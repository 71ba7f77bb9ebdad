//! torchvision's `ImageFolder`: a classification dataset laid out as `root/<class>/<image>`.
//!
//! Classes are the sorted names of `root`'s subdirectories (class id = position); each class's
//! images are found recursively under its directory, in torchvision's order
//! (`sorted(os.walk(class_dir))`, then sorted file names): directories sorted by their whole
//! path as a string, so `a/sub/x.png`, `a/sub-b/y.png`, `a/sub/deeper/w.png` come in that
//! order (`-` sorts before `/`). Only `.png`, `.jpg` and `.jpeg` files (any case) count; other
//! files are skipped.

use std::path::{Path, PathBuf};

use crate::dataset::ImageDataset;
use crate::decode::read_rgb;
use crate::error::DataError;
use crate::sample::Sample;

/// A classification dataset read from `root/<class>/<image>`.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    /// `(path, class id)`, in class order then path order.
    samples: Vec<(PathBuf, usize)>,
}

/// Whether `path` has a `.png`, `.jpg` or `.jpeg` extension (any case).
pub(crate) fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| {
            let e = e.to_ascii_lowercase();
            e == "png" || e == "jpg" || e == "jpeg"
        })
        .unwrap_or(false)
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>, DataError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| DataError::io(dir, "cannot read directory", e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(dir, "cannot read directory", e))?;
        let path = entry.path();
        // `metadata` follows symlinks (torchvision walks with followlinks=True).
        let is_dir = std::fs::metadata(&path)
            .map_err(|e| DataError::io(&path, "cannot stat", e))?
            .is_dir();
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push((name, path, is_dir));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Every directory under (and including) `dir`, each with its image files in name order, in
/// whatever order the walk visits them; the caller sorts by path (as torchvision's
/// `sorted(os.walk(dir))`).
fn collect_images(
    dir: &Path,
    out: &mut Vec<(String, Vec<PathBuf>)>,
    depth: usize,
) -> Result<(), DataError> {
    if depth > 64 {
        return Err(DataError::invalid(
            dir,
            "directory nesting deeper than 64 levels (symlink loop?)",
        ));
    }
    let entries = read_dir_sorted(dir)?;
    let files = entries
        .iter()
        .filter(|(_, path, is_dir)| !is_dir && is_image_file(path))
        .map(|(_, path, _)| path.clone())
        .collect();
    out.push((dir.to_string_lossy().into_owned(), files));
    for (_, path, is_dir) in &entries {
        if *is_dir {
            collect_images(path, out, depth + 1)?;
        }
    }
    Ok(())
}

/// The image files of a class directory, recursively, in torchvision's order.
fn class_images(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut dirs = Vec::new();
    collect_images(dir, &mut dirs, 0)?;
    // Python compares `str`s by code point, which is UTF-8 byte order: `String`'s `Ord`.
    dirs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(dirs.into_iter().flat_map(|(_, files)| files).collect())
}

impl ImageFolder {
    /// Scans `root` for class directories and their images (nothing is decoded yet).
    ///
    /// # Errors
    /// `root` missing or unreadable, no class directories, or a class without images.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, DataError> {
        let root = root.as_ref();
        let classes = Self::scan_classes(root)?;
        Self::scan(root, classes, true)
    }

    /// Opens `root` with the class list of another split (`classes`, e.g. the training
    /// split's [`Self::classes`]): class ids are positions in `classes` whatever this split
    /// holds, a class may have no directory here (no samples), and a directory that is not
    /// one of `classes` is an error.
    ///
    /// # Errors
    /// `root` missing or unreadable, a class directory not in `classes`, no images at all.
    pub fn open_with_classes(
        root: impl AsRef<Path>,
        classes: Vec<String>,
    ) -> Result<Self, DataError> {
        let root = root.as_ref();
        if let Some(extra) = Self::scan_classes(root)?
            .into_iter()
            .find(|c| !classes.contains(c))
        {
            return Err(DataError::invalid(
                &root.join(&extra),
                format!(
                    "class `{extra}` is not a class of the training split (its classes: {})",
                    classes.join(", ")
                ),
            ));
        }
        let dataset = Self::scan(root, classes, false)?;
        if dataset.samples.is_empty() {
            return Err(DataError::invalid(root, "no .png/.jpg/.jpeg images"));
        }
        Ok(dataset)
    }

    /// The class names of `root`: its subdirectories, sorted.
    ///
    /// # Errors
    /// `root` missing, unreadable or not a directory, or without subdirectories.
    pub fn scan_classes(root: &Path) -> Result<Vec<String>, DataError> {
        let meta = std::fs::metadata(root)
            .map_err(|e| DataError::io(root, "cannot open ImageFolder root", e))?;
        if !meta.is_dir() {
            return Err(DataError::invalid(
                root,
                "expected a directory of class subdirectories",
            ));
        }
        let classes: Vec<String> = read_dir_sorted(root)?
            .into_iter()
            .filter(|(_, _, is_dir)| *is_dir)
            .map(|(name, _, _)| name)
            .collect();
        if classes.is_empty() {
            return Err(DataError::invalid(
                root,
                "no class subdirectories (expected root/<class>/<image>)",
            ));
        }
        Ok(classes)
    }

    /// The images of each of `classes` under `root` (every class must have some when
    /// `every_class`; a missing class directory is skipped otherwise).
    fn scan(root: &Path, classes: Vec<String>, every_class: bool) -> Result<Self, DataError> {
        let mut samples = Vec::new();
        for (id, name) in classes.iter().enumerate() {
            let dir = root.join(name);
            if !every_class && !dir.is_dir() {
                continue;
            }
            let files = class_images(&dir)?;
            if files.is_empty() && every_class {
                return Err(DataError::invalid(
                    &dir,
                    "class directory has no .png/.jpg/.jpeg images",
                ));
            }
            samples.extend(files.into_iter().map(|f| (f, id)));
        }
        Ok(Self {
            root: root.to_path_buf(),
            classes,
            samples,
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Class names (sorted subdirectory names); class id = index.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Every sample's `(image path, class id)`, in dataset order.
    pub fn samples(&self) -> &[(PathBuf, usize)] {
        &self.samples
    }
}

impl ImageDataset for ImageFolder {
    fn len(&self) -> usize {
        self.samples.len()
    }

    /// The image as RGB `[3, H, W]` in `[0, 1]`, `label = Some(class)`, no masks or objects.
    fn get(&self, index: usize) -> Result<Sample, DataError> {
        let (path, class) = self
            .samples
            .get(index)
            .ok_or_else(|| DataError::IndexOutOfRange {
                path: self.root.clone(),
                index,
                len: self.samples.len(),
            })?;
        let (image, size) = read_rgb(path)?;
        Ok(Sample {
            image,
            size,
            class_mask: Vec::new(),
            objects: Vec::new(),
            label: Some(*class),
        })
    }

    fn class_names(&self) -> Vec<String> {
        self.classes.clone()
    }

    fn describe(&self, index: usize) -> String {
        self.samples.get(index).map_or_else(
            || format!("sample {index}"),
            |(path, _)| path.display().to_string(),
        )
    }

    /// The class list alone (a label is a class directory's position).
    fn check_classes(&self, num_classes: usize) -> Result<(), DataError> {
        crate::dataset::check_class_list(&self.root, &self.classes, num_classes)
    }
}
