//! Predictions on image files from a checkpoint alone, drawn as overlay PNGs.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use zoo_data::{Sample, resize};
use zoo_models::registry::ZooModel;

use crate::Error;
use crate::checkpoint::CheckpointInfo;
use crate::data::images;
use crate::eval::{class_map, top1};
use crate::instance;
use crate::model::{Task, forward, model_config};
use crate::plot::{OverlayBox, overlay, save_png, side_by_side};

/// What the model said about one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The image file.
    pub input: PathBuf,
    /// The overlay written (`input | prediction`).
    pub output: PathBuf,
    /// Classification: the top class and its probability. Segmentation: the class covering
    /// most pixels other than class 0, and its pixel fraction. Instance: the class and score
    /// of the best detection (`none`, 0 without one); detections scoring at least
    /// [`instance::SHOW_SCORE`] are drawn.
    pub top: (String, f32),
}

/// Decodes a PNG or JPEG file to a [`Sample`] without annotations.
///
/// # Errors
/// A file that cannot be read or decoded, named.
pub fn read_image(path: &Path) -> Result<Sample, Error> {
    let img = image::open(path)
        .map_err(|e| Error::io(path, format!("cannot decode image: {e}")))?
        .to_rgb32f();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut planes = vec![0.0; 3 * h * w];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            planes[c * h * w + i] = p.0[c];
        }
    }
    Ok(Sample {
        image: planes,
        size: [h, w],
        class_mask: Vec::new(),
        objects: Vec::new(),
        label: None,
    })
}

/// Runs the checkpoint's model on each image (resized to the run's `image_size`) and writes
/// `<out>/<file stem>.png`.
///
/// # Errors
/// An unreadable image or an unwritable `out`.
pub fn predict(
    model: &ZooModel,
    info: &CheckpointInfo,
    inputs: &[PathBuf],
    out: &Path,
    device: &Device,
) -> Result<Vec<Prediction>, Error> {
    let task = Task::of(&model_config(&info.config).map_err(Error::Invalid)?);
    let names: Vec<String> = (0..info.config.model.num_classes)
        .map(|c| name(&info.class_names, c))
        .collect();
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut predictions = Vec::new();
    for input in inputs {
        let sample = resize(&read_image(input)?, info.config.data.image_size);
        let logits = || forward(model, images(std::slice::from_ref(&sample), device)).out;
        let [h, w] = sample.size;
        let (drawn, top) = match task {
            Task::Classification => {
                let (labels, scores) = top1(logits());
                let class = labels[0] as usize;
                let tag = OverlayBox {
                    bbox: [0.0, 0.0, w as f32, h as f32],
                    class,
                    score: Some(scores[0]),
                    mask: None,
                };
                (
                    overlay(&sample.image, sample.size, None, &[tag], &names, 4)?,
                    (name(&names, class), scores[0]),
                )
            }
            Task::Segmentation => {
                let mask = class_map(logits());
                let mut counts = vec![0usize; names.len().max(1)];
                for &c in &mask {
                    if let Some(n) = counts.get_mut(c as usize) {
                        *n += 1;
                    }
                }
                let (class, n) = counts
                    .iter()
                    .enumerate()
                    .skip(1)
                    .max_by_key(|&(c, &n)| (n, std::cmp::Reverse(c)))
                    .map_or((0, 0), |(c, &n)| (c, n));
                (
                    overlay(&sample.image, sample.size, Some(&mask), &[], &names, 4)?,
                    (name(&names, class), n as f32 / (h * w) as f32),
                )
            }
            Task::Instance => {
                let found = instance::detect(model, std::slice::from_ref(&sample), device)?;
                let boxes = instance::overlay_boxes(&found[0]);
                let top = found[0].first().map_or((String::from("none"), 0.0), |d| {
                    (name(&names, d.class), d.score)
                });
                (
                    overlay(&sample.image, sample.size, None, &boxes, &names, 4)?,
                    top,
                )
            }
        };
        let plain = overlay(&sample.image, sample.size, None, &[], &names, 4)?;
        let stem = input.file_stem().unwrap_or_default().to_string_lossy();
        let output = out.join(format!("{stem}.png"));
        save_png(&side_by_side(&[plain, drawn]), &output)?;
        predictions.push(Prediction {
            input: input.clone(),
            output,
            top,
        });
    }
    Ok(predictions)
}

fn name(names: &[String], class: usize) -> String {
    names
        .get(class)
        .cloned()
        .unwrap_or_else(|| format!("class {class}"))
}
