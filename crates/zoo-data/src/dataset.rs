//! [`ImageDataset`]: what every dataset of this crate implements.

use crate::error::DataError;
use crate::sample::Sample;

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

    /// Sample `index`'s file(s), for messages (`sample {index}` for data without files).
    fn describe(&self, index: usize) -> String {
        format!("sample {index}")
    }

    /// Checks, before any training, that every label of the dataset is a class of a model
    /// with `num_classes` classes (ids `0..num_classes`; 255 in a mask is "ignore"), reading
    /// no more than it must (a folder's class list, an annotation file's categories, the
    /// masks alone). Procedural data passes (its classes are fixed by its configuration).
    ///
    /// # Errors
    /// The first file with a class the model does not have, named, with the class.
    fn check_classes(&self, num_classes: usize) -> Result<(), DataError> {
        let _ = num_classes;
        Ok(())
    }

    /// Whether it has no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A dataset whose classes are `names` (by id) against a model of `num_classes` classes;
/// `path` names the dataset in the error.
pub(crate) fn check_class_list(
    path: &std::path::Path,
    names: &[String],
    num_classes: usize,
) -> Result<(), DataError> {
    if names.len() > num_classes {
        return Err(DataError::invalid(
            path,
            format!(
                "{} classes ({}), but the model has {num_classes}",
                names.len(),
                names.join(", ")
            ),
        ));
    }
    Ok(())
}
