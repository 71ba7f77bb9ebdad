//! [`Source`]: where a split's samples come from, which ground truth its samples carry, and
//! the reader that serves the ground truth a consumer needs.
//!
//! A trainer names the source and the [`Annotation`] its model's task needs; which reader (or
//! which view of the procedural data) serves that pair is decided here, beside the readers,
//! so a new task or a new format is added in the data crate alone.

use std::path::PathBuf;

use crate::dataset::ImageDataset;
use crate::error::DataError;
use crate::sample::Annotation;
use crate::{Coco, ImageFolder, Shapes, ShapesClassification, Voc};

/// Where a split's samples come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The procedural shapes data (class masks, objects and, through
    /// [`ShapesClassification`], image labels).
    Shapes(Shapes),
    /// Pascal VOC-style segmentation: the root directory and the split's name.
    Voc {
        /// Holds `JPEGImages/`, `SegmentationClass/`, `ImageSets/Segmentation/`.
        root: PathBuf,
        /// The split list's name (`train`, `val`).
        split: String,
    },
    /// torchvision's `ImageFolder`: the directory of class directories, and the class list
    /// of the training split when this is another split (class ids must agree across
    /// splits; `None`: this directory's own subdirectories).
    ImageFolder {
        /// The split's directory.
        dir: PathBuf,
        /// The classes, by id.
        classes: Option<Vec<String>>,
    },
    /// COCO instances.
    Coco {
        /// The `instances_<split>.json` file.
        annotations: PathBuf,
        /// The directory of the split's images.
        images: PathBuf,
        /// Class ids are the raw category ids (torchvision's 91-index COCO labels) instead
        /// of contiguous `1..=K` (see [`Coco::with_raw_category_ids`]).
        raw_ids: bool,
    },
}

impl Source {
    /// The kind of source, for messages ("shapes", "VOC", "ImageFolder", "COCO").
    pub fn name(&self) -> &'static str {
        match self {
            Source::Shapes(_) => "shapes",
            Source::Voc { .. } => "VOC",
            Source::ImageFolder { .. } => "ImageFolder",
            Source::Coco { .. } => "COCO",
        }
    }

    /// The ground truth its samples can carry: shapes all three, VOC class masks,
    /// ImageFolder labels, COCO class masks and objects.
    pub fn annotations(&self) -> &'static [Annotation] {
        match self {
            Source::Shapes(_) => &[
                Annotation::ClassMask,
                Annotation::Objects,
                Annotation::Label,
            ],
            Source::Voc { .. } => &[Annotation::ClassMask],
            Source::ImageFolder { .. } => &[Annotation::Label],
            Source::Coco { .. } => &[Annotation::ClassMask, Annotation::Objects],
        }
    }

    /// The dataset whose samples carry `annotation` (the shapes data's image labels come from
    /// its classification view, classes without the background).
    ///
    /// # Errors
    /// [`DataError::Unserved`] for a ground truth the source does not have; the reader's
    /// error (naming the file) otherwise.
    pub fn open(self, annotation: Annotation) -> Result<Box<dyn ImageDataset>, DataError> {
        if !self.annotations().contains(&annotation) {
            return Err(DataError::Unserved {
                source_name: self.name(),
                annotation,
            });
        }
        Ok(match self {
            Source::Shapes(shapes) if annotation == Annotation::Label => {
                Box::new(ShapesClassification(shapes))
            }
            Source::Shapes(shapes) => Box::new(shapes),
            Source::Voc { root, split } => Box::new(Voc::open(root, &split)?),
            Source::ImageFolder { dir, classes: None } => Box::new(ImageFolder::open(dir)?),
            Source::ImageFolder {
                dir,
                classes: Some(classes),
            } => Box::new(ImageFolder::open_with_classes(dir, classes)?),
            Source::Coco {
                annotations,
                images,
                raw_ids,
            } => {
                let coco = Coco::open(annotations, images)?;
                Box::new(if raw_ids {
                    coco.with_raw_category_ids()?
                } else {
                    coco
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shapes::ShapesConfig;

    #[test]
    fn shapes_serve_every_annotation_and_labels_through_the_classification_view() {
        let shapes = Shapes::new(ShapesConfig::default()).expect("default shapes config");
        let objects = Source::Shapes(shapes.clone())
            .open(Annotation::Objects)
            .expect("shapes have objects");
        assert_eq!(objects.class_names(), shapes.class_names());
        let labels = Source::Shapes(shapes.clone())
            .open(Annotation::Label)
            .expect("shapes have labels");
        assert_eq!(labels.class_names().len(), shapes.class_names().len() - 1);
    }

    #[test]
    fn an_annotation_the_source_lacks_is_refused_before_any_file_is_read() {
        let missing = PathBuf::from("/nonexistent/burn-zoo/voc");
        let err = Source::Voc {
            root: missing.clone(),
            split: "val".into(),
        }
        .open(Annotation::Label)
        .err()
        .expect("VOC has no labels");
        assert_eq!(err.to_string(), "VOC data has no image labels");
        let err = Source::ImageFolder {
            dir: missing,
            classes: None,
        }
        .open(Annotation::Label)
        .err()
        .expect("the directory does not exist");
        assert!(
            err.to_string().contains("/nonexistent/burn-zoo/voc"),
            "{err}"
        );
    }
}
