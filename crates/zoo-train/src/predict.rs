//! Predictions on image files from a checkpoint alone: overlays at each image's own size,
//! class-mask palette PNGs (segmentation), COCO results JSON (instance segmentation).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use zoo_data::Sample;
use zoo_eval::Rle;
use zoo_models::registry::ZooModel;
use zoo_models::task::{Context, Detected, Overlay, Prediction as Found};

use crate::Error;
use crate::checkpoint::CheckpointInfo;
use crate::config::EvalProtocol;
use crate::data::sized;
use crate::plot::{overlay, save_png, side_by_side};

/// What the model said about one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The image file.
    pub input: PathBuf,
    /// The overlay written (`input | prediction`, at the image's own size).
    pub output: PathBuf,
    /// The class mask written as a palette PNG (segmentation: `<stem>.mask.png`, pixel =
    /// class id, VOC's colours).
    pub mask: Option<PathBuf>,
    /// The detections, in the image's own pixels (instance segmentation), as COCO results
    /// (also gathered into `<out>/results.json`).
    pub detections: Vec<serde_json::Value>,
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

/// Runs the checkpoint's model on each image (sized as the run evaluates, see
/// [`RunConfig::eval_protocol`](crate::config::RunConfig::eval_protocol), without the
/// centre crop except for classifiers) and writes
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
    let classifies = family.task().annotation() == zoo_data::Annotation::Label;
    let one = |index: usize, input: &PathBuf, output: PathBuf| -> Result<Prediction, Error> {
        let original = read_image(input)?;
        // Sized as the run evaluates (`[eval]`, or the published weights' preprocessing); a
        // detector with its own transform sizes (`model.transform_size`, as imported
        // torchvision weights have) resizes, keeping the aspect ratio, by itself.
        let protocol = match (
            info.config.eval_protocol(),
            info.config.model.transform_size,
        ) {
            (EvalProtocol::Fixed(_), Some(_)) => EvalProtocol::Original,
            (protocol, _) => protocol,
        };
        let sample = sized(original.clone(), protocol, classifies);
        let found = model
            .family()
            .predict(std::slice::from_ref(&sample), &context)?;
        // Back to the image's own size.
        let found = found
            .into_iter()
            .next()
            .map(|p| at_size(p, sample.size, original.size));
        let draw = |drawing: &Overlay| overlay(&original.image, original.size, drawing, &names, 1);
        let drawn = match &found {
            Some(p) => draw(&p.overlay(original.size))?,
            None => draw(&Overlay::default())?,
        };
        let top = found
            .as_ref()
            .and_then(|p| p.top())
            .map_or((String::from("none"), 0.0), |(class, score)| {
                (name(&names, class), score)
            });
        save_png(&side_by_side(&[draw(&Overlay::default())?, drawn]), &output)?;
        let mut mask = None;
        let mut detections = Vec::new();
        match &found {
            Some(Found::ClassMap { size, classes }) => {
                let path = output.with_file_name(
                    output
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .replace(".pred.png", ".mask.png"),
                );
                save_palette_png(classes, *size, &path)?;
                mask = Some(path);
            }
            Some(Found::Objects(objects)) => {
                let [h, w] = original.size;
                for d in objects {
                    let [x1, y1, x2, y2] = d.bbox;
                    detections.push(serde_json::json!({
                        "image_id": index,
                        "file_name": input.display().to_string(),
                        "category_id": d.class,
                        "category_name": name(&names, d.class),
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "score": d.score,
                        "segmentation": {"size": [h, w], "counts": d.mask.counts()},
                    }));
                }
            }
            _ => {}
        }
        Ok(Prediction {
            input: input.clone(),
            output,
            mask,
            detections,
            top,
        })
    };
    let predictions: Vec<Result<Prediction, Error>> = inputs
        .iter()
        .zip(outputs)
        .enumerate()
        .map(|(i, (input, output))| one(i, input, output))
        .collect();
    if model_config.family().task().name() == "instance segmentation" {
        let all: Vec<&serde_json::Value> = predictions
            .iter()
            .flatten()
            .flat_map(|p| &p.detections)
            .collect();
        let path = out.join("results.json");
        let json = serde_json::to_string_pretty(&all).map_err(|source| Error::History {
            path: path.clone(),
            source,
        })?;
        crate::checkpoint::write_atomic(&path, json.as_bytes())?;
    }
    Ok(predictions)
}

/// A prediction made at `from` (`[H, W]`, the run's image size) mapped to the image's own
/// `to`: class maps and masks by nearest neighbour, boxes scaled.
fn at_size(found: Found, from: [usize; 2], to: [usize; 2]) -> Found {
    if from == to {
        return found;
    }
    let (sy, sx) = (from[0] as f32 / to[0] as f32, from[1] as f32 / to[1] as f32);
    let near = |y: usize, x: usize| {
        (
            (((y as f32 + 0.5) * sy) as usize).min(from[0] - 1),
            (((x as f32 + 0.5) * sx) as usize).min(from[1] - 1),
        )
    };
    match found {
        Found::ClassMap { classes, .. } => Found::ClassMap {
            size: to,
            classes: (0..to[0] * to[1])
                .map(|i| {
                    let (y, x) = near(i / to[1], i % to[1]);
                    classes[y * from[1] + x]
                })
                .collect(),
        },
        Found::Objects(objects) => Found::Objects(
            objects
                .into_iter()
                .map(|d| {
                    let dense = d.mask.decode();
                    let mask = Rle::from_fn(to, |y, x| {
                        let (y, x) = near(y, x);
                        dense[y * from[1] + x]
                    });
                    let [x1, y1, x2, y2] = d.bbox;
                    Detected {
                        bbox: [x1 / sx, y1 / sy, x2 / sx, y2 / sy],
                        mask,
                        ..d
                    }
                })
                .collect(),
        ),
        label => label,
    }
}

/// Writes a row-major class map as an 8-bit palette PNG (pixel = class id; VOC's colours).
fn save_palette_png(classes: &[u8], size: [usize; 2], path: &Path) -> Result<(), Error> {
    let palette: Vec<u8> = (0..256).flat_map(crate::plot::class_color).collect();
    let mut bytes = Vec::new();
    let encoded = {
        let mut encoder = png::Encoder::new(&mut bytes, size[1] as u32, size[0] as u32);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_palette(palette);
        encoder
            .write_header()
            .and_then(|mut writer| writer.write_image_data(classes))
    };
    encoded.map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
    crate::checkpoint::write_atomic(path, &bytes)?;
    Ok(())
}

fn name(names: &[String], class: usize) -> String {
    names
        .get(class)
        .cloned()
        .unwrap_or_else(|| format!("class {class}"))
}
