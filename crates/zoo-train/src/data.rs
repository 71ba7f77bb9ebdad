//! The run file's `[data]` section as datasets, and batches of samples at the run's image
//! size.

use zoo_data::{
    Annotation, AugmentConfig, ImageDataset, Sample, Shapes, Source, center_crop, load_batch,
    resize, resize_with, shorter_side_size,
};

use crate::Error;
use crate::config::{DataFormat, DataSection, EvalProtocol, LabelMap};

/// Opens the training (`val = false`) or validation split, with the ground truth
/// `annotation` (what the model's task needs).
///
/// Which reader serves which ground truth is [`Source`]'s business (zoo-data); this maps the
/// run file's `[data]` section onto a source.
///
/// # Errors
/// The reader's error (it names the file), a format without that ground truth (VOC: class
/// masks; ImageFolder: labels; COCO: class masks and objects; shapes: all three), or an empty
/// split.
pub fn open(
    data: &DataSection,
    annotation: Annotation,
    val: bool,
) -> Result<Box<dyn ImageDataset>, Error> {
    let split = if val {
        &data.val_split
    } else {
        &data.train_split
    };
    let root = data.root.clone().unwrap_or_default();
    let source = match data.format {
        DataFormat::Shapes => Source::Shapes(Shapes::new(data.shapes(val))?),
        DataFormat::Voc => Source::Voc {
            root,
            split: split.clone(),
        },
        // Class ids come from the training split, for every split.
        DataFormat::ImageFolder => Source::ImageFolder {
            dir: root.join(split),
            classes: if val {
                Some(zoo_data::ImageFolder::scan_classes(
                    &root.join(&data.train_split),
                )?)
            } else {
                None
            },
        },
        DataFormat::Coco => Source::Coco {
            annotations: root
                .join("annotations")
                .join(format!("instances_{split}.json")),
            images: root.join(split),
            raw_ids: data.label_map == LabelMap::CocoIds,
        },
    };
    if !source.annotations().contains(&annotation) {
        return Err(Error::Unserved {
            format: data.format,
            annotation,
        });
    }
    let dataset = source.open(annotation)?;
    if dataset.is_empty() {
        return Err(Error::EmptySplit {
            split: split.clone(),
        });
    }
    Ok(dataset)
}

/// Samples `indices` of `dataset`, augmented (training: `augment` with its seed) or not, at
/// the run's image size.
///
/// # Errors
/// The first sample that fails to load.
pub fn samples(
    dataset: &dyn ImageDataset,
    indices: &[usize],
    augment: Option<(&AugmentConfig, u64)>,
    data: &DataSection,
) -> Result<Vec<Sample>, Error> {
    let (config, seed) = augment.map_or((None, 0), |(c, s)| (Some(c), s));
    let batch = load_batch(dataset, indices, config, seed, data.workers)?;
    Ok(batch
        .into_iter()
        .map(|s| {
            if s.size == data.image_size {
                s
            } else {
                resize(&s, data.image_size)
            }
        })
        .collect())
}

/// Samples `indices` of `dataset` for evaluation, sized as `protocol` says (not augmented).
///
/// # Errors
/// The first sample that fails to load.
pub fn eval_samples(
    dataset: &dyn ImageDataset,
    indices: &[usize],
    protocol: EvalProtocol,
    data: &DataSection,
) -> Result<Vec<Sample>, Error> {
    let batch = load_batch(dataset, indices, None, 0, data.workers)?;
    Ok(batch
        .into_iter()
        .map(|s| sized(s, protocol, true))
        .collect())
}

/// A sample sized as `protocol` says; a `ShorterSide` crop only when `crop` (a class map or
/// objects predicted on a crop could not be mapped back onto the whole image).
pub fn sized(sample: Sample, protocol: EvalProtocol, crop: bool) -> Sample {
    match protocol {
        EvalProtocol::Fixed(size) if sample.size != size => resize(&sample, size),
        EvalProtocol::ShorterSide {
            size,
            crop: side,
            filter,
        } => {
            let to = shorter_side_size(sample.size, size);
            let s = if sample.size == to {
                sample
            } else {
                resize_with(&sample, to, filter)
            };
            match side.filter(|_| crop) {
                Some(side) => center_crop(&s, side),
                None => s,
            }
        }
        _ => sample,
    }
}

/// The dataset's class names, one per model class (`class {i}` where it has none).
pub fn class_names(dataset: &dyn ImageDataset, classes: usize) -> Vec<String> {
    let mut names = dataset.class_names();
    names.resize_with(classes, || String::from("?"));
    names.truncate(classes);
    for (i, n) in names.iter_mut().enumerate() {
        if n == "?" {
            *n = format!("class {i}");
        }
    }
    names
}
