//! PNG line charts and prediction overlays, drawn with `plotters` (bitmap backend) and an
//! embedded font (`assets/DejaVuSans-subset.ttf`, so no system fonts are needed); images and
//! masks through `image`.
//!
//! * [`chart`]: training curves (`loss.png`, `metrics.png`): title, axis labels, grid, a
//!   legend, one colour per series.
//! * [`overlay`](mod@overlay): an image `[3, H, W]` with what a task draws over it (a class mask; boxes
//!   with `"name 0.93"` labels and instance masks), upscaled by an integer factor;
//!   [`side_by_side`] puts panels next to each other (input | target | prediction).
//! * [`save_png`]: atomic PNG writing (`<path>.tmp`, then rename).

pub mod chart;
pub mod overlay;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Once;

use image::{ImageFormat, Rgb, RgbImage};
use plotters::style::FontStyle;

pub use chart::{CHART_SIZE, Chart, Series, line_chart};
pub use overlay::{overlay, side_by_side};

/// Why a plot could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Encoding the image as PNG failed.
    #[error("cannot encode PNG for {path}: {source}")]
    Encode {
        /// Destination path.
        path: PathBuf,
        /// Encoder error.
        #[source]
        source: image::ImageError,
    },
    /// Writing `<path>.tmp` or renaming it to `path` failed.
    #[error("cannot write PNG {path}: {source}")]
    Write {
        /// Destination path.
        path: PathBuf,
        /// I/O error.
        #[source]
        source: std::io::Error,
    },
    /// plotters could not draw.
    #[error("cannot draw {what}: {message}")]
    Draw {
        /// What was being drawn.
        what: &'static str,
        /// plotters' message.
        message: String,
    },
    /// An argument has the wrong length or value.
    #[error("invalid argument `{argument}`: {message}")]
    InvalidArgument {
        /// Name of the argument (e.g. `image`, `class_mask`, `boxes[2].mask`, `scale`).
        argument: String,
        /// What is wrong with it.
        message: String,
    },
}

/// An RGB colour.
pub type Color = [u8; 3];

/// The font family every plot draws text with.
const FONT: &str = "sans-serif";

/// Registers the embedded font with plotters (once per process).
fn font() -> &'static str {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");
        if plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_err() {
            // The file is compiled in and parsed by tests: this cannot happen at run time.
            unreachable!("the embedded font does not parse");
        }
    });
    FONT
}

/// Series colours (matplotlib "tab10"), cycled when there are more series.
const SERIES_PALETTE: [Color; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// Colour of the `index`-th series of a chart (a fixed palette of 10, cycled).
pub fn series_color(index: usize) -> Color {
    SERIES_PALETTE[index % SERIES_PALETTE.len()]
}

/// Pascal-VOC colour map: colour of class id `class` (`0` is black, `1` is `[128, 0, 0]`,
/// `2` is `[0, 128, 0]`, …; distinct for ids below 2²⁴).
pub fn class_color(class: usize) -> Color {
    let (mut r, mut g, mut b) = (0u8, 0u8, 0u8);
    let mut id = class;
    for j in 0..8 {
        r |= ((id & 1) as u8) << (7 - j);
        g |= (((id >> 1) & 1) as u8) << (7 - j);
        b |= (((id >> 2) & 1) as u8) << (7 - j);
        id >>= 3;
    }
    [r, g, b]
}

fn draw_error(what: &'static str, e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw {
        what,
        message: e.to_string(),
    }
}

/// Writes `img` to `path` as a PNG, atomically (encoded in memory, then
/// [`write_atomic`](crate::checkpoint::write_atomic): a flushed temporary file renamed over
/// `path`). Errors name `path`.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<(), PlotError> {
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|source| PlotError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    crate::checkpoint::write_atomic(path, &bytes).map_err(|e| PlotError::Write {
        path: path.to_path_buf(),
        source: match e {
            crate::checkpoint::CheckpointError::Io { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        },
    })
}

/// White.
const WHITE: Color = [255, 255, 255];

/// An image of `size` filled white.
fn blank(width: u32, height: u32) -> RgbImage {
    RgbImage::from_pixel(width, height, Rgb(WHITE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voc_colours() {
        assert_eq!(class_color(0), [0, 0, 0]);
        assert_eq!(class_color(1), [128, 0, 0]);
        assert_eq!(class_color(2), [0, 128, 0]);
        assert_eq!(class_color(3), [128, 128, 0]);
        assert_eq!(class_color(4), [0, 0, 128]);
        assert_eq!(class_color(15), [192, 128, 128]);
        let mut all: Vec<Color> = (0..256).map(class_color).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 256);
    }

    #[test]
    fn save_png_names_the_path() {
        let path = std::env::temp_dir().join("zoo-no-such-dir/x/y.png");
        let err = save_png(&blank(2, 2), &path).unwrap_err();
        assert!(matches!(err, PlotError::Write { .. }));
        assert!(err.to_string().contains("y.png"), "{err}");
    }
}
