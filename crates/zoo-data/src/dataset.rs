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

    /// Whether it has no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
