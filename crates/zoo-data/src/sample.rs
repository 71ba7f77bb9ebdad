//! The sample type every dataset returns, the error type of the on-disk readers, and the
//! [`ImageDataset`] trait they all implement.

use std::io::Cursor;
use std::path::{Path, PathBuf};

pub use crate::shapes::ShapeObject;
use crate::shapes::{CLASS_NAMES, Shapes, ShapesSample};

/// One sample of any dataset: an image plus whatever annotations the dataset has.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// RGB image, `[3, H, W]` row-major (channel, row, column), values in `[0, 1]`.
    pub image: Vec<f32>,
    /// Image `[H, W]` (height, width).
    pub size: [usize; 2],
    /// Class of every pixel, row-major `H·W` (0 = background, 255 = ignore, e.g. VOC's
    /// object borders or COCO crowd regions); empty when the dataset has no masks.
    pub class_mask: Vec<u8>,
    /// Object instances: class id, box `[x1, y1, x2, y2]` in pixel edges (x2, y2 exclusive)
    /// and a row-major `H·W` mask; empty when the dataset has no instances.
    pub objects: Vec<ShapeObject>,
    /// Image-level label (classification datasets), `None` when the dataset has none.
    pub label: Option<usize>,
}

impl Sample {
    /// Image height.
    pub fn height(&self) -> usize {
        self.size[0]
    }

    /// Image width.
    pub fn width(&self) -> usize {
        self.size[1]
    }
}

impl From<ShapesSample> for Sample {
    fn from(s: ShapesSample) -> Self {
        Sample {
            image: s.image,
            size: s.size,
            class_mask: s.class_mask,
            objects: s.objects,
            label: Some(s.label),
        }
    }
}

/// Errors of the on-disk dataset readers. Every variant but [`DataError::Config`] names the
/// file (or directory) at fault and what was expected there.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or directory could not be read (missing, unreadable).
    #[error("{}: {what}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done, e.g. "cannot read file".
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file was read but could not be decoded.
    #[error("{}: cannot decode {format}: {message}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// What it should have been: "PNG", "JPEG", "image", "JSON", "RLE", …
        format: String,
        /// The decoder's message.
        message: String,
    },
    /// A JSON value is missing or has the wrong type or value.
    #[error("{}: key `{key}`: expected {expected}", path.display())]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// Path of the key inside the document, e.g. `images[3].width`.
        key: String,
        /// What was expected there, e.g. "an integer".
        expected: String,
    },
    /// An image and its mask have different sizes.
    #[error(
        "{}: mask is {}x{} (HxW) but image {} is {}x{}",
        mask.display(), mask_size[0], mask_size[1], image.display(), image_size[0], image_size[1]
    )]
    SizeMismatch {
        /// The image file.
        image: PathBuf,
        /// Its `[H, W]`.
        image_size: [usize; 2],
        /// The mask file (or annotation file).
        mask: PathBuf,
        /// The mask's `[H, W]`.
        mask_size: [usize; 2],
    },
    /// Anything else wrong with a file's content or a dataset's layout.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong and what was expected.
        message: String,
    },
    /// An invalid augmentation config (not a file: the field is named).
    #[error(transparent)]
    Config(crate::augment::AugmentConfigError),
    /// `get(index)` past the end of a dataset.
    #[error("{}: index {index} out of range for a dataset of {len} samples", path.display())]
    IndexOutOfRange {
        /// The dataset's root (directory or annotation file).
        path: PathBuf,
        /// The index asked for.
        index: usize,
        /// The dataset's length.
        len: usize,
    },
}

impl DataError {
    pub(crate) fn io(path: &Path, what: &str, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            what: what.to_string(),
            source,
        }
    }

    pub(crate) fn invalid(path: &Path, message: impl Into<String>) -> Self {
        DataError::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// A dataset of images with optional annotations, readable from any thread.
pub trait ImageDataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Sample `index`, decoded from disk (or generated).
    ///
    /// # Errors
    /// An index past the end, or a file that cannot be read or decoded.
    fn get(&self, index: usize) -> Result<Sample, DataError>;

    /// Class names, indexed by class id (`class_names()[0]` is class 0).
    fn class_names(&self) -> Vec<String>;

    /// Whether it has no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ImageDataset for Shapes {
    fn len(&self) -> usize {
        Shapes::len(self)
    }

    /// Never fails; any index is valid (see [`Shapes::get`]).
    fn get(&self, index: usize) -> Result<Sample, DataError> {
        Ok(Shapes::get(self, index).into())
    }

    fn class_names(&self) -> Vec<String> {
        CLASS_NAMES.iter().map(|s| s.to_string()).collect()
    }
}

/// Decodes an RGB(A)/gray PNG or JPEG file into `[3, H, W]` f32 in `[0, 1]`; returns the
/// image and its `[H, W]`.
pub(crate) fn read_rgb(path: &Path) -> Result<(Vec<f32>, [usize; 2]), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, "cannot read image", e))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    let by_ext = match ext.as_str() {
        "png" => Some(image::ImageFormat::Png),
        "jpg" | "jpeg" => Some(image::ImageFormat::Jpeg),
        _ => None,
    };
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DataError::io(path, "cannot read image", e))?;
    if reader.format().is_none()
        && let Some(f) = by_ext
    {
        reader.set_format(f);
    }
    let format_name = match reader.format().or(by_ext) {
        Some(image::ImageFormat::Png) => "PNG",
        Some(image::ImageFormat::Jpeg) => "JPEG",
        _ => "image",
    };
    let img = reader.decode().map_err(|e| DataError::Decode {
        path: path.to_path_buf(),
        format: format_name.to_string(),
        message: e.to_string(),
    })?;
    let rgb = img.into_rgb32f();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let mut out = vec![0f32; 3 * h * w];
    for (i, px) in rgb.pixels().enumerate() {
        for c in 0..3 {
            out[c * h * w + i] = px.0[c].clamp(0.0, 1.0);
        }
    }
    Ok((out, [h, w]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shapes::ShapesConfig;

    #[test]
    fn shapes_through_the_trait() {
        let shapes = Shapes::new(ShapesConfig {
            len: 3,
            ..ShapesConfig::default()
        })
        .expect("valid config");
        let ds: &dyn ImageDataset = &shapes;
        assert_eq!(ds.len(), 3);
        assert!(!ds.is_empty());
        assert_eq!(ds.class_names()[1], "circle");
        let s = ds.get(1).expect("shapes never fail");
        let raw = shapes.get(1);
        assert_eq!(s.label, Some(raw.label));
        assert_eq!(s.image, raw.image);
        assert_eq!(s.objects, raw.objects);
    }

    #[test]
    fn error_messages_name_file_and_expectation() {
        let e = DataError::Json {
            path: "a/annotations.json".into(),
            key: "images[3].width".into(),
            expected: "an integer".into(),
        };
        assert_eq!(
            e.to_string(),
            "a/annotations.json: key `images[3].width`: expected an integer"
        );
        let e = DataError::SizeMismatch {
            image: "x.jpg".into(),
            image_size: [2, 3],
            mask: "x.png".into(),
            mask_size: [4, 5],
        };
        assert_eq!(
            e.to_string(),
            "x.png: mask is 4x5 (HxW) but image x.jpg is 2x3"
        );
    }
}
