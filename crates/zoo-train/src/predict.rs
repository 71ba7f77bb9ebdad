//! Predictions on image files from a checkpoint alone, drawn as overlay PNGs.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use zoo_data::{Sample, resize};
use zoo_models::registry::ZooModel;
use zoo_models::task::{Context, Overlay};

use crate::Error;
use crate::checkpoint::CheckpointInfo;
use crate::plot::{overlay, save_png, side_by_side};

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
    /// [`zoo_models::task::SHOW_SCORE`] are drawn.
    pub top: (String, f32),
}

/// Decodes a PNG or JPEG file to a [`Sample`] without annotations.
///
/// # Errors
/// A file that cannot be read or decoded, named.
pub fn read_image(path: &Path) -> Result<Sample, Error> {
    let (image, size) = zoo_data::decode::read_rgb(path)?;
    Ok(Sample::unannotated(image, size))
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
    let model_config = info.config.model_config()?;
    let family = model_config.family();
    let preprocessing = family.preprocessing();
    let context = Context {
        device,
        preprocessing: &preprocessing,
        num_classes: family.num_classes(),
    };
    let names: Vec<String> = (0..family.num_classes())
        .map(|c| name(&info.class_names, c))
        .collect();
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut predictions = Vec::new();
    for input in inputs {
        let sample = resize(&read_image(input)?, info.config.data.image_size);
        let found = model
            .family()
            .predict(std::slice::from_ref(&sample), &context)?;
        let draw = |drawing: &Overlay| overlay(&sample.image, sample.size, drawing, &names, 4);
        let drawn = match found.first() {
            Some(p) => draw(&p.overlay(sample.size))?,
            None => draw(&Overlay::default())?,
        };
        let top = found
            .first()
            .and_then(|p| p.top())
            .map_or((String::from("none"), 0.0), |(class, score)| {
                (name(&names, class), score)
            });
        let stem = input.file_stem().unwrap_or_default().to_string_lossy();
        let output = out.join(format!("{stem}.png"));
        save_png(&side_by_side(&[draw(&Overlay::default())?, drawn]), &output)?;
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
