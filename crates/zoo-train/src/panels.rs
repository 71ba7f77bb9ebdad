//! `samples/epoch-N.png`: validation samples as input | target | prediction, one row each.

use image::RgbImage;
use zoo_data::Sample;
use zoo_models::registry::ZooModel;
use zoo_models::task::{Context, Overlay, Task};

use crate::Error;
use crate::plot::{overlay, side_by_side};

/// Panels of `batch` (×2), one row per sample: the input, its ground truth as `task` draws
/// it, and the model's prediction.
///
/// # Errors
/// A sample the model cannot use.
pub fn sample_panels(
    model: &ZooModel,
    batch: &[Sample],
    task: &dyn Task,
    context: &Context,
    names: &[String],
) -> Result<RgbImage, Error> {
    let predictions = model.family().predict(batch, context)?;
    let mut rows = Vec::new();
    for (s, p) in batch.iter().zip(&predictions) {
        let draw = |drawing: &Overlay| overlay(&s.image, s.size, drawing, names, 2);
        rows.push(side_by_side(&[
            draw(&Overlay::default())?,
            draw(&task.target_overlay(s))?,
            draw(&p.overlay(s.size))?,
        ]));
    }
    let width = rows.iter().map(|r| r.width()).max().unwrap_or(1);
    let height: u32 = rows.iter().map(|r| r.height() + 4).sum();
    let mut canvas = RgbImage::from_pixel(width, height.max(1), image::Rgb([255, 255, 255]));
    let mut y = 0;
    for r in rows {
        image::imageops::replace(&mut canvas, &r, 0, i64::from(y));
        y += r.height() + 4;
    }
    Ok(canvas)
}
