//! Errors of the on-disk dataset readers and of the augmentation settings.

use std::path::{Path, PathBuf};

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
    Config(AugmentConfigError),
    /// A source whose samples do not carry the ground truth asked for (see
    /// [`Source::annotations`](crate::source::Source::annotations)).
    #[error("{source_name} data has no {}", annotation.describe())]
    Unserved {
        /// The source's kind ("VOC", "ImageFolder", …).
        source_name: &'static str,
        /// What was asked for.
        annotation: crate::sample::Annotation,
    },
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

/// An out-of-range [`AugmentConfig`](crate::augment::AugmentConfig) field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("augment config: `{field}`: {message}")]
pub struct AugmentConfigError {
    /// The field's name.
    pub field: &'static str,
    /// What was expected and what was found.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

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
