//! The run file's `[data]` section as datasets, and samples as tensors.

use burn::prelude::*;
use burn::tensor::TensorData;
use zoo_data::{Coco, ImageDataset, ImageFolder, Sample, Shapes, ShapesClassification, Voc};

use crate::config::{DataFormat, DataSection};
use crate::model::Task;

/// ImageNet statistics the upstream weights expect (torchvision, timm and smp alike).
pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet standard deviations.
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Class-mask value that the loss and the metrics skip (VOC borders, padding, crowds).
pub const IGNORE: u8 = 255;

/// Opens the training (`val = false`) or validation split for `task`.
///
/// # Errors
/// The reader's error (it names the file), an invalid shapes setting, or a format that does
/// not serve `task` (VOC and COCO for segmentation, ImageFolder for classification).
pub fn open(data: &DataSection, task: Task, val: bool) -> Result<Box<dyn ImageDataset>, String> {
    let split = if val {
        &data.val_split
    } else {
        &data.train_split
    };
    let root = || data.root.clone().unwrap_or_default();
    let wrong = |what: &str| {
        Err(format!(
            "data.format: {:?} data has no {what}; the model needs them",
            data.format
        ))
    };
    let dataset: Box<dyn ImageDataset> = match (data.format, task) {
        (DataFormat::Shapes, Task::Segmentation | Task::Instance) => {
            Box::new(Shapes::new(data.shapes(val)).map_err(|e| format!("data: {}", e.0))?)
        }
        (DataFormat::Shapes, Task::Classification) => Box::new(ShapesClassification(
            Shapes::new(data.shapes(val)).map_err(|e| format!("data: {}", e.0))?,
        )),
        (DataFormat::Voc, Task::Segmentation) => {
            Box::new(Voc::open(root(), split).map_err(|e| e.to_string())?)
        }
        (DataFormat::Coco, Task::Segmentation | Task::Instance) => {
            let root = root();
            let json = root
                .join("annotations")
                .join(format!("instances_{split}.json"));
            Box::new(Coco::open(json, root.join(split)).map_err(|e| e.to_string())?)
        }
        (DataFormat::ImageFolder, Task::Classification) => {
            Box::new(ImageFolder::open(root().join(split)).map_err(|e| e.to_string())?)
        }
        (DataFormat::ImageFolder, Task::Segmentation) => return wrong("class masks"),
        (DataFormat::Voc | DataFormat::Coco, Task::Classification) => {
            return wrong("image labels");
        }
        (DataFormat::Voc | DataFormat::ImageFolder, Task::Instance) => {
            return wrong("object instances");
        }
    };
    if dataset.is_empty() {
        return Err(format!("data: the {split} split is empty"));
    }
    Ok(dataset)
}

/// Images normalised with [`MEAN`]/[`STD`], `[B, 3, H, W]`.
///
/// # Panics
/// If the samples differ in size (resize them first).
pub fn images(samples: &[Sample], device: &Device) -> Tensor<4> {
    let [h, w] = samples[0].size;
    let mut data = Vec::with_capacity(samples.len() * 3 * h * w);
    for s in samples {
        assert_eq!(s.size, [h, w], "a batch's samples must share one size");
        for (c, plane) in s.image.chunks_exact(h * w).enumerate() {
            data.extend(plane.iter().map(|v| (v - MEAN[c]) / STD[c]));
        }
    }
    Tensor::from_data(TensorData::new(data, [samples.len(), 3, h, w]), device)
}

/// Targets on the host: class masks `[B·H·W]` (segmentation, 255 = ignore) or labels `[B]`.
/// Instance targets are objects, not class indices: see [`crate::instance::targets`].
///
/// # Errors
/// A sample without the annotation the task needs, naming its position in the batch, or the
/// instance task.
pub fn targets(samples: &[Sample], task: Task, classes: usize) -> Result<Vec<i64>, String> {
    let mut out = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        match task {
            Task::Segmentation => {
                if s.class_mask.len() != s.size[0] * s.size[1] {
                    return Err(format!("sample {i} of the batch has no class mask"));
                }
                if let Some(&c) = s
                    .class_mask
                    .iter()
                    .find(|&&c| c != IGNORE && c as usize >= classes)
                {
                    return Err(format!(
                        "sample {i}: class {c} in its mask but model.num_classes = {classes}"
                    ));
                }
                out.extend(s.class_mask.iter().map(|&c| i64::from(c)));
            }
            Task::Classification => {
                let label = s
                    .label
                    .ok_or_else(|| format!("sample {i} of the batch has no label"))?;
                if label >= classes {
                    return Err(format!(
                        "sample {i}: label {label} but model.num_classes = {classes}"
                    ));
                }
                out.push(label as i64);
            }
            Task::Instance => {
                return Err("instance targets are objects: see zoo_train::instance".into());
            }
        }
    }
    Ok(out)
}
