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

/// The overlay file of each input in `out`: `<file stem>.pred.png`, made unique among the
/// inputs (`a/x.png`, `b/x.jpg` → `x.pred.png`, `x-2.pred.png`) and never the path of an
/// input, so no output overwrites an input or another output.
pub fn output_paths(inputs: &[PathBuf], out: &Path) -> Vec<PathBuf> {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let taken_by_input: std::collections::HashSet<PathBuf> =
        inputs.iter().map(|p| canonical(p)).collect();
    let out_dir = canonical(out);
    let mut used = std::collections::HashSet::new();
    inputs
        .iter()
        .map(|input| {
            let stem = input.file_stem().unwrap_or_default().to_string_lossy();
            (1..)
                .map(|n| {
                    let name = if n == 1 {
                        format!("{stem}.pred.png")
                    } else {
                        format!("{stem}-{n}.pred.png")
                    };
                    (out.join(&name), out_dir.join(&name))
                })
                .find(|(_, resolved)| {
                    !taken_by_input.contains(resolved) && used.insert(resolved.clone())
                })
                .map(|(path, _)| path)
                .expect("an unused name exists")
        })
        .collect()
}

/// Runs the checkpoint's model on each image (resized to the run's `image_size`) and writes
/// its overlay (see [`output_paths`]); an image that cannot be read or predicted is reported
/// in its place and the others go on.
///
/// # Errors
/// A checkpoint whose run file does not build, or an unwritable `out`; per image, in the
/// returned list: an unreadable image (named) or a failed prediction.
pub fn predict(
    model: &ZooModel,
    info: &CheckpointInfo,
    inputs: &[PathBuf],
    out: &Path,
    device: &Device,
) -> Result<Vec<Result<Prediction, Error>>, Error> {
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
    let outputs = output_paths(inputs, out);
    let one = |input: &PathBuf, output: PathBuf| -> Result<Prediction, Error> {
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
        save_png(&side_by_side(&[draw(&Overlay::default())?, drawn]), &output)?;
        Ok(Prediction {
            input: input.clone(),
            output,
            top,
        })
    };
    Ok(inputs
        .iter()
        .zip(outputs)
        .map(|(input, output)| one(input, output))
        .collect())
}

fn name(names: &[String], class: usize) -> String {
    names
        .get(class)
        .cloned()
        .unwrap_or_else(|| format!("class {class}"))
}
