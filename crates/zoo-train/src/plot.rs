//! PNG line charts and prediction overlays, drawn with a small built-in rasteriser and an
//! embedded 5×7 bitmap font (no plotting or font crates, no system fonts needed).
//!
//! * [`line_chart`] / [`Chart`]: training curves (`loss.png`, `metrics.png`) with "nice"
//!   1-2-5 ticks, grid, title, axis labels and a legend.
//! * [`overlay`]: an image `[3, H, W]` with a class mask and/or boxes (with optional instance
//!   masks and `"name 0.93"` labels) drawn over it, upscaled by an integer factor;
//!   [`side_by_side`] puts such panels next to each other (input | target | prediction).
//! * [`save_png`]: atomic PNG writing (`<path>.tmp`, then rename).
//!
//! Text is printable ASCII; other characters are drawn as `?`.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageFormat, Rgb, RgbImage};

use crate::font::{self, ADVANCE, GLYPH_H};

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
type Color = [u8; 3];

const WHITE: Color = [255, 255, 255];
const BLACK: Color = [0, 0, 0];
const TEXT: Color = [30, 30, 30];
const AXIS: Color = [70, 70, 70];
const GRID: Color = [228, 228, 228];

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
pub fn series_color(index: usize) -> [u8; 3] {
    SERIES_PALETTE[index % SERIES_PALETTE.len()]
}

/// Pascal-VOC colour map: colour of class id `class` (`0` is black, `1` is `[128, 0, 0]`,
/// `2` is `[0, 128, 0]`, …; distinct for ids below 2²⁴).
pub fn class_color(class: usize) -> [u8; 3] {
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

// ---------------------------------------------------------------------------------------
// Rasteriser
// ---------------------------------------------------------------------------------------

/// Blends `c` over the pixel with coverage `a` in `[0, 1]`.
fn blend_px(img: &mut RgbImage, x: i64, y: i64, c: Color, a: f64) {
    if a.is_nan()
        || a <= 0.0
        || x < 0
        || y < 0
        || x >= img.width() as i64
        || y >= img.height() as i64
    {
        return;
    }
    let a = a.min(1.0);
    let p = img.get_pixel_mut(x as u32, y as u32);
    for (v, c) in p.0.iter_mut().zip(c) {
        *v = (*v as f64 * (1.0 - a) + c as f64 * a).round() as u8;
    }
}

/// Fills the rectangle `[x, x + w) × [y, y + h)`, clipped to the image.
fn fill_rect(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, c: Color) {
    let x0 = x.max(0);
    let y0 = y.max(0);
    let x1 = (x + w).min(img.width() as i64);
    let y1 = (y + h).min(img.height() as i64);
    for yy in y0..y1 {
        for xx in x0..x1 {
            img.put_pixel(xx as u32, yy as u32, Rgb(c));
        }
    }
}

/// Outlines `[x, x + w) × [y, y + h)` with a border `t` pixels thick, inside the rectangle.
fn stroke_rect(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, t: i64, c: Color) {
    let t = t.min(w).min(h).max(1);
    fill_rect(img, x, y, w, t, c);
    fill_rect(img, x, y + h - t, w, t, c);
    fill_rect(img, x, y, t, h, c);
    fill_rect(img, x + w - t, y, t, h, c);
}

/// Anti-aliased segment of width `width` between pixel-centre coordinates.
fn line_aa(img: &mut RgbImage, p0: (f64, f64), p1: (f64, f64), width: f64, c: Color) {
    let lim = 1e5;
    if ![p0.0, p0.1, p1.0, p1.1].iter().all(|v| v.abs() < lim) {
        return;
    }
    let r = width / 2.0;
    let (dx, dy) = (p1.0 - p0.0, p1.1 - p0.1);
    let len2 = dx * dx + dy * dy;
    let pad = r + 1.0;
    let x_lo = (p0.0.min(p1.0) - pad).floor().max(0.0) as i64;
    let x_hi = (p0.0.max(p1.0) + pad).ceil().min(img.width() as f64) as i64;
    let y_lo = (p0.1.min(p1.1) - pad).floor().max(0.0) as i64;
    let y_hi = (p0.1.max(p1.1) + pad).ceil().min(img.height() as f64) as i64;
    for y in y_lo..y_hi {
        for x in x_lo..x_hi {
            let (px, py) = (x as f64, y as f64);
            let t = if len2 > 0.0 {
                (((px - p0.0) * dx + (py - p0.1) * dy) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let (qx, qy) = (p0.0 + t * dx - px, p0.1 + t * dy - py);
            let d = (qx * qx + qy * qy).sqrt();
            blend_px(img, x, y, c, r + 0.5 - d);
        }
    }
}

/// Anti-aliased filled disc.
fn disc(img: &mut RgbImage, cx: f64, cy: f64, radius: f64, c: Color) {
    line_aa(img, (cx, cy), (cx, cy), 2.0 * radius, c);
}

/// Width in pixels of `s` drawn at `scale`.
fn text_width(s: &str, scale: usize) -> i64 {
    let n = s.chars().count();
    if n == 0 {
        0
    } else {
        (n * ADVANCE * scale - scale) as i64
    }
}

/// Height in pixels of a line of text at `scale` (including descender rows).
fn text_height(scale: usize) -> i64 {
    (GLYPH_H * scale) as i64
}

/// Draws `s` with the top-left corner of its first glyph cell at `(x, y)`.
fn draw_text(img: &mut RgbImage, x: i64, y: i64, s: &str, scale: usize, c: Color) {
    let sc = scale as i64;
    for (i, ch) in s.chars().enumerate() {
        let gx = x + (i * ADVANCE * scale) as i64;
        for (row, bits) in font::glyph(ch).iter().enumerate() {
            for col in 0..font::GLYPH_W {
                if bits & (1 << (font::GLYPH_W - 1 - col)) != 0 {
                    fill_rect(img, gx + col as i64 * sc, y + row as i64 * sc, sc, sc, c);
                }
            }
        }
    }
}

/// Draws `s` rotated 90° counter-clockwise (reading bottom to top); `(x, y)` is the
/// bottom-left corner of the rotated text block (its glyph tops face left).
fn draw_text_up(img: &mut RgbImage, x: i64, y: i64, s: &str, scale: usize, c: Color) {
    let sc = scale as i64;
    for (i, ch) in s.chars().enumerate() {
        let u0 = (i * ADVANCE * scale) as i64;
        for (row, bits) in font::glyph(ch).iter().enumerate() {
            for col in 0..font::GLYPH_W {
                if bits & (1 << (font::GLYPH_W - 1 - col)) != 0 {
                    let u = u0 + col as i64 * sc;
                    let v = row as i64 * sc;
                    fill_rect(img, x + v, y - u - sc, sc, sc, c);
                }
            }
        }
    }
}

/// Cuts `s` to at most `max_w` pixels at `scale`, ending in `..` when cut.
fn fit_text(s: &str, max_w: i64, scale: usize) -> String {
    if text_width(s, scale) <= max_w {
        return s.to_string();
    }
    let per = (ADVANCE * scale) as i64;
    let keep = ((max_w + scale as i64) / per - 2).max(0) as usize;
    let mut out: String = s.chars().take(keep).collect();
    out.push_str("..");
    out
}

// ---------------------------------------------------------------------------------------
// Line charts
// ---------------------------------------------------------------------------------------

/// One named polyline of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// `(x, y)` points, drawn in the given order. Points with a NaN or infinite coordinate
    /// are skipped and break the line (like matplotlib).
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series named `name` with `points`.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
        }
    }
}

/// A line chart: title, axis labels and series. [`Chart::render`] draws it,
/// [`Chart::save`] writes it as a PNG; [`line_chart`] is the one-call form.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    /// Title, centred above the plot.
    pub title: &'a str,
    /// Label under the x axis (empty: none).
    pub x_label: &'a str,
    /// Label left of the y axis, reading upwards (empty: none).
    pub y_label: &'a str,
    /// The series, coloured by [`series_color`] in order.
    pub series: &'a [Series],
    /// Image `[width, height]` in pixels (at least `[320, 200]` is used).
    pub size: [u32; 2],
}

/// Default chart size `[width, height]`.
pub const CHART_SIZE: [u32; 2] = [800, 500];

/// Text scale of all chart text (5×7 glyphs drawn at 2×).
const CHART_TEXT: usize = 2;
/// Series drawn with markers only when they have at most this many finite points.
const MAX_MARKERS: usize = 60;

impl<'a> Chart<'a> {
    /// An 800×500 chart with no y label.
    pub fn new(title: &'a str, x_label: &'a str, series: &'a [Series]) -> Self {
        Self {
            title,
            x_label,
            y_label: "",
            series,
            size: CHART_SIZE,
        }
    }

    /// Sets the y-axis label.
    pub fn with_y_label(mut self, y_label: &'a str) -> Self {
        self.y_label = y_label;
        self
    }

    /// Sets the image `[width, height]`.
    pub fn with_size(mut self, size: [u32; 2]) -> Self {
        self.size = size;
        self
    }

    /// Draws the chart. With no finite point the axes span `[0, 1]`; a single point or a
    /// constant series gets a range padded around its value.
    pub fn render(&self) -> RgbImage {
        let (w, h) = (self.size[0].max(320), self.size[1].max(200));
        let mut img = RgbImage::from_pixel(w, h, Rgb(WHITE));
        let (wi, hi) = (w as i64, h as i64);
        let ts = CHART_TEXT;
        let th = text_height(ts);

        // Data ranges over finite points.
        let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
        let pts = || {
            self.series
                .iter()
                .flat_map(|s| s.points.iter().filter(finite))
        };
        let range = |f: fn(&(f64, f64)) -> f64| {
            pts()
                .map(f)
                .fold(None, |acc: Option<(f64, f64)>, v| match acc {
                    None => Some((v, v)),
                    Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
                })
        };
        let xr = range(|p| p.0).unwrap_or((0.0, 1.0));
        let yr = range(|p| p.1).unwrap_or((0.0, 1.0));
        let xa = Axis::new(xr.0, xr.1);
        let ya = Axis::new(yr.0, yr.1);

        // Layout.
        let tick_len = 5;
        let y_tick_w = ya
            .labels
            .iter()
            .map(|l| text_width(l, ts))
            .max()
            .unwrap_or(0);
        let mut left = 12 + tick_len + 6 + y_tick_w;
        if !self.y_label.is_empty() {
            left += th + 10;
        }
        let legend_names: Vec<String> = self
            .series
            .iter()
            .map(|s| fit_text(&s.name, (wi / 3).min(260), ts))
            .collect();
        let legend_text_w = legend_names.iter().map(|n| text_width(n, ts)).max();
        let swatch = 26;
        let legend_w = legend_text_w.map_or(0, |tw| 10 + swatch + 8 + tw + 10);
        let right = if legend_w > 0 { legend_w + 24 } else { 24 };
        let top = if self.title.is_empty() {
            16
        } else {
            16 + th + 14
        };
        let mut bottom = tick_len + 6 + th + 8;
        if !self.x_label.is_empty() {
            bottom += th + 6;
        }
        let pw = (wi - left - right).max(10);
        let ph = (hi - top - bottom).max(10);
        // Halved before subtracting so that ranges near ±f64::MAX do not overflow.
        let frac =
            |v: f64, a: &Axis| ((v / 2.0 - a.lo / 2.0) / (a.hi / 2.0 - a.lo / 2.0)).clamp(0.0, 1.0);
        let sx = |x: f64| left as f64 + frac(x, &xa) * pw as f64;
        let sy = |y: f64| (top + ph) as f64 - frac(y, &ya) * ph as f64;

        // Grid, ticks and tick labels.
        for (v, label) in xa.ticks.iter().zip(&xa.labels) {
            let x = sx(*v).round() as i64;
            fill_rect(&mut img, x, top, 1, ph, GRID);
            fill_rect(&mut img, x, top + ph, 1, tick_len, AXIS);
            let lw = text_width(label, ts);
            let lx = (x - lw / 2).clamp(0, wi - lw);
            draw_text(&mut img, lx, top + ph + tick_len + 6, label, ts, TEXT);
        }
        for (v, label) in ya.ticks.iter().zip(&ya.labels) {
            let y = sy(*v).round() as i64;
            fill_rect(&mut img, left, y, pw, 1, GRID);
            fill_rect(&mut img, left - tick_len, y, tick_len, 1, AXIS);
            let lw = text_width(label, ts);
            let cap = (7 * ts) as i64;
            draw_text(
                &mut img,
                left - tick_len - 6 - lw,
                y - cap / 2,
                label,
                ts,
                TEXT,
            );
        }
        // Frame: solid axes on the left and bottom, light lines on the other sides.
        fill_rect(&mut img, left, top, pw, 1, [190, 190, 190]);
        fill_rect(&mut img, left + pw, top, 1, ph + 1, [190, 190, 190]);
        fill_rect(&mut img, left - 1, top, 2, ph + 2, AXIS);
        fill_rect(&mut img, left - 1, top + ph, pw + 2, 2, AXIS);

        // Series.
        for (i, s) in self.series.iter().enumerate() {
            let c = series_color(i);
            let mut prev: Option<(f64, f64)> = None;
            let mut marks = Vec::new();
            for &(x, y) in &s.points {
                if !(x.is_finite() && y.is_finite()) {
                    prev = None;
                    continue;
                }
                let p = (sx(x), sy(y));
                if let Some(q) = prev {
                    line_aa(&mut img, q, p, 2.0, c);
                }
                marks.push(p);
                prev = Some(p);
            }
            if marks.len() <= MAX_MARKERS {
                for (x, y) in marks {
                    disc(&mut img, x, y, 3.5, c);
                }
            }
        }

        // Legend, right of the plot.
        if legend_w > 0 {
            let row_h = th + 6;
            let lx = left + pw + 14;
            let lh = row_h * legend_names.len() as i64 + 8;
            let ly = top;
            fill_rect(&mut img, lx, ly, legend_w, lh, [250, 250, 250]);
            stroke_rect(&mut img, lx, ly, legend_w, lh, 1, [190, 190, 190]);
            for (i, name) in legend_names.iter().enumerate() {
                let c = series_color(i);
                let ry = ly + 4 + row_h * i as i64;
                let cy = (ry + 3 + (7 * ts) as i64 / 2) as f64;
                let x0 = (lx + 10) as f64;
                line_aa(&mut img, (x0, cy), (x0 + swatch as f64, cy), 2.0, c);
                disc(&mut img, x0 + swatch as f64 / 2.0, cy, 3.5, c);
                draw_text(&mut img, lx + 10 + swatch + 8, ry + 3, name, ts, TEXT);
            }
        }

        // Title (bold: drawn twice, one pixel apart) and axis labels.
        if !self.title.is_empty() {
            let title = fit_text(self.title, wi - 20, ts);
            let tw = text_width(&title, ts) + 1;
            let tx = (left + pw / 2 - tw / 2).clamp(10, (wi - tw - 10).max(10));
            draw_text(&mut img, tx, 16, &title, ts, BLACK);
            draw_text(&mut img, tx + 1, 16, &title, ts, BLACK);
        }
        if !self.x_label.is_empty() {
            let label = fit_text(self.x_label, pw, ts);
            let lw = text_width(&label, ts);
            draw_text(
                &mut img,
                left + pw / 2 - lw / 2,
                hi - 8 - th,
                &label,
                ts,
                TEXT,
            );
        }
        if !self.y_label.is_empty() {
            let label = fit_text(self.y_label, ph, ts);
            let lw = text_width(&label, ts);
            draw_text_up(&mut img, 12, top + ph / 2 + lw / 2, &label, ts, TEXT);
        }
        img
    }

    /// Renders the chart and writes it to `path` as a PNG, atomically (see [`save_png`]).
    pub fn save(&self, path: &Path) -> Result<(), PlotError> {
        save_png(&self.render(), path)
    }
}

/// Writes an 800×500 PNG line chart of `series` to `path` (atomically: `<path>.tmp`, then
/// rename) with `title`, `x_label` under the x axis and a legend of the series names.
/// NaN/infinite points are skipped; empty, single-point and constant series are fine.
/// For a y label or another size use [`Chart`].
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    series: &[Series],
) -> Result<(), PlotError> {
    Chart::new(title, x_label, series).save(path)
}

/// An axis range `[lo, hi]` (`lo < hi`) with ticks at multiples of a 1-2-5 step.
#[derive(Debug, Clone)]
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    labels: Vec<String>,
}

/// The smallest 1-2-5 × 10ᵏ step that is at least `raw` (> 0).
fn nice_step(raw: f64) -> f64 {
    let base = 10f64.powf(raw.log10().floor());
    let f = raw / base;
    let m = if f <= 1.0 + 1e-9 {
        1.0
    } else if f <= 2.0 + 1e-9 {
        2.0
    } else if f <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    m * base
}

impl Axis {
    /// About 5–10 ticks covering finite `[min, max]` (`min <= max`).
    fn new(min: f64, max: f64) -> Self {
        let (mut min, mut max) = (min, max);
        let mag = min.abs().max(max.abs());
        if max - min <= mag * 1e-9 {
            // Single value (or nearly): pad around it.
            let pad = if mag == 0.0 { 1.0 } else { mag * 0.1 };
            min -= pad;
            max += pad;
        }
        // Divide before subtracting so that ranges near ±f64::MAX do not overflow.
        let target = 6.0;
        let step = nice_step(max / target - min / target);
        let mut lo = (min / step).floor() * step;
        let mut hi = (max / step).ceil() * step;
        if !lo.is_finite() {
            lo = min;
        }
        if !hi.is_finite() {
            hi = max;
        }
        let k0 = (lo / step - 1e-6).ceil();
        let ticks: Vec<f64> = (0..=40)
            .map(|k| (k0 + k as f64) * step)
            .take_while(|v| *v <= hi + step * 1e-6)
            .filter(|v| v.is_finite())
            // A tick off `[lo, hi]` by rounding is drawn on the edge.
            .map(|v| v.clamp(lo, hi))
            .collect();
        let labels = format_ticks(&ticks, step);
        Self {
            lo,
            hi,
            ticks,
            labels,
        }
    }
}

/// Tick labels with just enough decimals for `step`; scientific notation for very large or
/// very small values.
fn format_ticks(ticks: &[f64], step: f64) -> Vec<String> {
    let mag = ticks.iter().fold(0f64, |m, v| m.max(v.abs()));
    let decimals = (-(step.log10() + 1e-9).floor()).max(0.0) as usize;
    ticks
        .iter()
        .map(|&v| {
            let v = if v.abs() < step * 1e-6 { 0.0 } else { v };
            if mag >= 1e6 || decimals > 6 {
                format!("{v:.2e}")
            } else {
                format!("{v:.decimals$}")
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Overlays
// ---------------------------------------------------------------------------------------

/// A box to draw with [`overlay`].
#[derive(Debug, Clone, PartialEq)]
pub struct OverlayBox<'a> {
    /// `[x1, y1, x2, y2]` in input-image pixels, pixel edges (x2, y2 exclusive).
    pub bbox: [f32; 4],
    /// Class id: colour [`class_color`]`(class)`, name `class_names[class]`.
    pub class: usize,
    /// Score shown after the name with two decimals (`"circle 0.93"`), if any.
    pub score: Option<f32>,
    /// Instance mask, row-major `H·W` at input resolution, blended in the class colour.
    pub mask: Option<std::borrow::Cow<'a, [bool]>>,
}

/// Alpha of class and instance masks.
const MASK_ALPHA: f32 = 0.5;

/// Blends `c` over `p` with alpha 0.5: `(p + c + 1) / 2` per channel (rounding half up).
fn blend_half(p: Color, c: Color) -> Color {
    debug_assert_eq!(MASK_ALPHA, 0.5);
    std::array::from_fn(|k| (p[k] as u16 + c[k] as u16).div_ceil(2) as u8)
}

fn invalid(argument: impl Into<String>, message: String) -> PlotError {
    PlotError::InvalidArgument {
        argument: argument.into(),
        message,
    }
}

/// Draws predictions or targets over an image.
///
/// * `image`: `[3, H, W]` row-major RGB in `[0, 1]` (clamped; NaN is black), `size = [H, W]`.
/// * `class_mask`: `H·W` class ids; every id except `0` (background) and `255` (ignore) is
///   blended with alpha 0.5 in [`class_color`]`(id)`: `(pixel + colour + 1) / 2`.
/// * `boxes`: instance masks are blended like class masks (in order); then each box is
///   outlined 2 px thick inside its edges in its class colour, and labelled `"name 0.93"`
///   (name from `class_names`, else the id) in a filled class-colour tag above the box, or
///   just inside its top when there is no room, kept inside the image.
/// * `scale ≥ 1`: nearest-neighbour upscaling; the result is `[W·scale, H·scale]` pixels.
///
/// Errors name the argument: `image` or `class_mask` or `boxes[i].mask` of the wrong length,
/// `scale` of 0 or a result too large.
pub fn overlay(
    image: &[f32],
    size: [usize; 2],
    class_mask: Option<&[u8]>,
    boxes: &[OverlayBox<'_>],
    class_names: &[String],
    scale: usize,
) -> Result<RgbImage, PlotError> {
    let [h, w] = size;
    if scale == 0 {
        return Err(invalid("scale", "must be at least 1, got 0".into()));
    }
    let too_big = || invalid("size", format!("{size:?} × scale {scale} is too large"));
    let hw = h.checked_mul(w).ok_or_else(too_big)?;
    let out_w = u32::try_from(w.checked_mul(scale).ok_or_else(too_big)?).map_err(|_| too_big())?;
    let out_h = u32::try_from(h.checked_mul(scale).ok_or_else(too_big)?).map_err(|_| too_big())?;
    if hw.checked_mul(3) != Some(image.len()) {
        return Err(invalid(
            "image",
            format!(
                "expected [3, H, W] = 3·{h}·{w} = {} values, got {}",
                3 * hw,
                image.len()
            ),
        ));
    }
    if let Some(m) = class_mask
        && m.len() != hw
    {
        return Err(invalid(
            "class_mask",
            format!("expected H·W = {h}·{w} = {hw} values, got {}", m.len()),
        ));
    }
    for (i, b) in boxes.iter().enumerate() {
        if let Some(m) = &b.mask
            && m.len() != hw
        {
            return Err(invalid(
                format!("boxes[{i}].mask"),
                format!("expected H·W = {h}·{w} = {hw} values, got {}", m.len()),
            ));
        }
    }

    // Input-resolution RGB with masks blended.
    let to_u8 = |v: f32| {
        if v.is_nan() {
            0
        } else {
            (v.clamp(0.0, 1.0) * 255.0).round() as u8
        }
    };
    let mut base: Vec<Color> = (0..hw)
        .map(|i| [image[i], image[hw + i], image[2 * hw + i]].map(to_u8))
        .collect();
    if let Some(m) = class_mask {
        for (p, &c) in base.iter_mut().zip(m) {
            if c != 0 && c != 255 {
                *p = blend_half(*p, class_color(c as usize));
            }
        }
    }
    for b in boxes {
        if let Some(m) = &b.mask {
            let c = class_color(b.class);
            for (p, _) in base.iter_mut().zip(m.iter()).filter(|(_, on)| **on) {
                *p = blend_half(*p, c);
            }
        }
    }

    let mut img = RgbImage::from_fn(out_w, out_h, |x, y| {
        Rgb(base[(y as usize / scale) * w + x as usize / scale])
    });

    // Boxes, then labels on top of all boxes.
    let s = scale as f64;
    let mut rects = Vec::new();
    for b in boxes {
        if !b.bbox.iter().all(|v| v.is_finite()) {
            continue;
        }
        let [x1, y1, x2, y2] = b.bbox.map(|v| v as f64 * s);
        let (x1, x2) = (x1.min(x2), x1.max(x2));
        let (y1, y2) = (y1.min(y2), y1.max(y2));
        let clampx = |v: f64| v.round().clamp(0.0, out_w as f64) as i64;
        let clampy = |v: f64| v.round().clamp(0.0, out_h as f64) as i64;
        let (x1, x2, y1, y2) = (clampx(x1), clampx(x2), clampy(y1), clampy(y2));
        let (bw, bh) = ((x2 - x1).max(1), (y2 - y1).max(1));
        let c = class_color(b.class);
        stroke_rect(&mut img, x1, y1, bw, bh, 2, c);
        rects.push((x1, y1, c, b));
    }
    let ts = if out_w >= 200 && out_h >= 100 { 2 } else { 1 };
    for (x1, y1, c, b) in rects {
        let name = class_names
            .get(b.class)
            .cloned()
            .unwrap_or_else(|| b.class.to_string());
        let text = match b.score {
            Some(sc) => format!("{name} {sc:.2}"),
            None => name,
        };
        let (pad_x, pad_y) = (2 * ts as i64, ts as i64);
        let lw = text_width(&text, ts) + 2 * pad_x;
        let lh = (7 * ts) as i64 + 2 * pad_y + ts as i64;
        let mut ly = y1 - lh;
        if ly < 0 {
            ly = y1.min(out_h as i64 - lh).max(0);
        }
        let lx = x1.min(out_w as i64 - lw).max(0);
        fill_rect(&mut img, lx, ly, lw, lh, c);
        let luma = 0.299 * c[0] as f32 + 0.587 * c[1] as f32 + 0.114 * c[2] as f32;
        let fg = if luma > 140.0 { BLACK } else { WHITE };
        draw_text(&mut img, lx + pad_x, ly + pad_y + 1, &text, ts, fg);
    }
    Ok(img)
}

/// Panels left to right with a 4-pixel white gap, top-aligned on a white background (for
/// input | target | prediction). No images give a 0×0 image.
pub fn side_by_side(images: &[RgbImage]) -> RgbImage {
    const GAP: u32 = 4;
    if images.is_empty() {
        return RgbImage::new(0, 0);
    }
    let w = images.iter().map(|i| i.width()).sum::<u32>() + GAP * (images.len() as u32 - 1);
    let h = images.iter().map(|i| i.height()).max().unwrap_or(0);
    let mut out = RgbImage::from_pixel(w, h, Rgb(WHITE));
    let mut x0 = 0;
    for im in images {
        for (x, y, p) in im.enumerate_pixels() {
            out.put_pixel(x0 + x, y, *p);
        }
        x0 += im.width() + GAP;
    }
    out
}

/// Writes `img` to `path` as a PNG, atomically: encoded in memory, written to `<path>.tmp`,
/// then renamed over `path` (the temporary file is removed on failure). Errors name `path`.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<(), PlotError> {
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|source| PlotError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let result = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, path));
    result.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        PlotError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zoo-plot-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn has_color(img: &RgbImage, c: Color) -> bool {
        img.pixels().any(|p| p.0 == c)
    }

    #[test]
    fn nice_ticks() {
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(1.0), 1.0);
        let a = Axis::new(1.0, 10.0);
        assert_eq!((a.lo, a.hi), (0.0, 10.0));
        assert_eq!(a.labels, ["0", "2", "4", "6", "8", "10"]);
        let a = Axis::new(0.21, 0.69);
        assert!(a.lo <= 0.21 && a.hi >= 0.69);
        assert_eq!(a.labels, ["0.2", "0.3", "0.4", "0.5", "0.6", "0.7"]);
        // Constant and single values: a non-empty range around the value.
        for v in [0.0, 0.5, -3.0, 1e-12, 1e12] {
            let a = Axis::new(v, v);
            assert!(a.lo < v && v < a.hi, "{v}: {a:?}");
            assert!(a.ticks.len() >= 2 && a.ticks.len() <= 41, "{v}: {a:?}");
        }
        let a = Axis::new(-f64::MAX, f64::MAX);
        assert!(a.lo.is_finite() && a.hi.is_finite() && a.lo < a.hi);
        assert!(!a.ticks.is_empty());
        assert!(
            a.ticks
                .iter()
                .all(|t| t.is_finite() && *t >= a.lo && *t <= a.hi)
        );
    }

    #[test]
    fn chart_png_has_series_colours_and_title() {
        let dir = temp_dir("chart");
        let path = dir.join("loss.png");
        let series = [
            Series::new(
                "train loss",
                (1..=10).map(|e| (e as f64, 1.0 / e as f64)).collect(),
            ),
            Series::new(
                "val loss",
                vec![
                    (1.0, 0.9),
                    (2.0, f64::NAN),
                    (3.0, 0.5),
                    (4.0, f64::INFINITY),
                ],
            ),
            Series::new("constant", (1..=10).map(|e| (e as f64, 0.3)).collect()),
        ];
        line_chart(&path, "Training loss", "epoch", &series).unwrap();
        assert!(!dir.join("loss.png.tmp").exists());
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (800, 500));
        for i in 0..series.len() {
            assert!(
                has_color(&img, series_color(i)),
                "series {i} colour missing"
            );
        }
        assert!(!has_color(&img, series_color(3)));
        // The title draws dark pixels in the top band, centred-ish.
        let dark = |x0: u32, x1: u32, y0: u32, y1: u32| {
            (y0..y1)
                .flat_map(|y| (x0..x1).map(move |x| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 60))
                .count()
        };
        assert!(dark(0, 800, 0, 45) > 100);
        assert_eq!(dark(0, 800, 0, 10), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn chart_degenerate_inputs() {
        let dir = temp_dir("degenerate");
        let cases: Vec<Vec<Series>> = vec![
            vec![],
            vec![Series::new("empty", vec![])],
            vec![Series::new("one point", vec![(3.0, 0.25)])],
            vec![Series::new(
                "all nan",
                vec![(f64::NAN, 1.0), (1.0, f64::NAN)],
            )],
            vec![Series::new(
                "flat",
                vec![(1.0, 0.0), (2.0, 0.0), (3.0, 0.0)],
            )],
            vec![Series::new("huge", vec![(0.0, -f64::MAX), (1.0, f64::MAX)])],
            vec![Series::new(
                "tiny steps",
                vec![(1.0, 0.512_345_1), (2.0, 0.512_345_2)],
            )],
        ];
        for (i, series) in cases.iter().enumerate() {
            let path = dir.join(format!("c{i}.png"));
            line_chart(&path, "degenerate", "x", series).unwrap();
            let img = image::open(&path).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), (800, 500));
            if series
                .first()
                .is_some_and(|s| s.points.iter().any(|p| p.1 == 0.25))
            {
                assert!(has_color(&img, series_color(0)));
            }
        }
        // A chart with a y label and a custom size.
        let s = [Series::new("acc", vec![(1.0, 0.5), (2.0, 0.7)])];
        let img = Chart::new("t", "epoch", &s)
            .with_y_label("accuracy")
            .with_size([640, 400])
            .render();
        assert_eq!(img.dimensions(), (640, 400));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn save_png_names_the_path() {
        let path = Path::new("/nonexistent-dir-zoo-plot/x.png");
        let err = save_png(&RgbImage::new(2, 2), path).unwrap_err();
        assert!(matches!(err, PlotError::Write { .. }));
        assert!(
            err.to_string().contains("/nonexistent-dir-zoo-plot/x.png"),
            "{err}"
        );
    }

    #[test]
    fn voc_colours() {
        assert_eq!(class_color(0), [0, 0, 0]);
        assert_eq!(class_color(1), [128, 0, 0]);
        assert_eq!(class_color(2), [0, 128, 0]);
        assert_eq!(class_color(3), [128, 128, 0]);
        assert_eq!(class_color(4), [0, 0, 128]);
        assert_eq!(class_color(15), [192, 128, 128]);
        let all: std::collections::HashSet<_> = (0..256).map(class_color).collect();
        assert_eq!(all.len(), 256);
    }

    /// A 20×30 grey image (value 0.4 → 102) with a class-2 mask on rows 5..10, cols 5..15.
    fn sample() -> (Vec<f32>, [usize; 2], Vec<u8>) {
        let (h, w) = (20, 30);
        let image = vec![0.4; 3 * h * w];
        let mut mask = vec![0u8; h * w];
        for y in 5..10 {
            for x in 5..15 {
                mask[y * w + x] = 2;
            }
        }
        mask[0] = 255;
        (image, [h, w], mask)
    }

    #[test]
    fn overlay_blends_masks_and_draws_boxes() {
        let (image, size, mask) = sample();
        let names: Vec<String> = ["background", "circle", "rectangle"]
            .map(String::from)
            .to_vec();
        let plain = overlay(&image, size, Some(&mask), &[], &names, 1).unwrap();
        assert_eq!(plain.dimensions(), (30, 20));
        // Class 2 = [0, 128, 0] over 102: (102 + 0 + 1) / 2 = 51, (102 + 128 + 1) / 2 = 115.
        assert_eq!(plain.get_pixel(7, 6).0, [51, 115, 51]);
        assert_eq!(plain.get_pixel(20, 15).0, [102, 102, 102]);
        assert_eq!(plain.get_pixel(0, 0).0, [102, 102, 102], "255 = ignore");

        let inst: Vec<bool> = (0..600).map(|i| i / 30 >= 12 && i % 30 >= 20).collect();
        let boxes = [OverlayBox {
            bbox: [18.0, 11.0, 28.0, 19.0],
            class: 1,
            score: Some(0.934),
            mask: Some(inst[..].into()),
        }];
        let img = overlay(&image, size, Some(&mask), &boxes, &names, 2).unwrap();
        assert_eq!(img.dimensions(), (60, 40), "scale 2 doubles the size");
        // Mask pixel (7, 5) covers output pixels (14..16, 10..12), above the box's label tag
        // (rows 12..22, pushed to x = 0 because the label is wider than the image).
        assert_eq!(img.get_pixel(15, 11).0, [51, 115, 51]);
        // Box edge in the class-1 colour: left edge at x = 36, 37; bottom edge y = 36, 37.
        let c1 = class_color(1);
        assert_eq!(img.get_pixel(36, 30).0, c1);
        assert_eq!(img.get_pixel(37, 30).0, c1);
        assert_eq!(img.get_pixel(45, 37).0, c1);
        // Instance mask inside the box: class-1 colour blended: (102 + 128 + 1) / 2 = 115.
        assert_eq!(img.get_pixel(44, 30).0, [115, 51, 51]);
        // Label tag above the box, filled with the class colour, with white text.
        assert!((0..60).any(|x| img.get_pixel(x, 20).0 == c1));
        assert!((0..60).any(|x| img.get_pixel(x, 20).0 == WHITE));
    }

    #[test]
    fn overlay_labels_stay_inside() {
        let (image, size, _) = sample();
        // Box at the top-right corner: its label goes inside, kept within the image.
        let boxes = [OverlayBox {
            bbox: [25.0, 0.0, 30.0, 4.0],
            class: 3,
            score: None,
            mask: None,
        }];
        let img = overlay(&image, size, None, &boxes, &[], 10).unwrap();
        assert_eq!(img.dimensions(), (300, 200));
        let c3 = class_color(3);
        assert_eq!(img.get_pixel(299, 0).0, c3);
        // The label "3" (no name; white on olive) is drawn inside the box top.
        assert!((0..30).any(|y| (250..298).any(|x| img.get_pixel(x, y).0 == WHITE)));
        // Non-finite or inverted boxes do not panic.
        let odd = [
            OverlayBox {
                bbox: [f32::NAN, 0.0, 1.0, 1.0],
                class: 1,
                score: Some(f32::NAN),
                mask: None,
            },
            OverlayBox {
                bbox: [40.0, 30.0, -5.0, -5.0],
                class: 300,
                score: Some(1.0),
                mask: None,
            },
        ];
        overlay(&image, size, None, &odd, &[], 1).unwrap();
    }

    #[test]
    fn overlay_rejects_bad_lengths() {
        let (image, size, mask) = sample();
        let err = |r: Result<RgbImage, PlotError>| match r.unwrap_err() {
            PlotError::InvalidArgument { argument, message } => (argument, message),
            e => panic!("unexpected {e}"),
        };
        let (arg, msg) = err(overlay(&image[1..], size, None, &[], &[], 1));
        assert_eq!(arg, "image");
        assert!(msg.contains("1800") && msg.contains("1799"), "{msg}");
        let (arg, _) = err(overlay(&image, size, Some(&mask[1..]), &[], &[], 1));
        assert_eq!(arg, "class_mask");
        let short = [true; 10];
        let boxes = [
            OverlayBox {
                bbox: [0.0; 4],
                class: 1,
                score: None,
                mask: None,
            },
            OverlayBox {
                bbox: [0.0; 4],
                class: 1,
                score: None,
                mask: Some(short[..].into()),
            },
        ];
        let (arg, _) = err(overlay(&image, size, None, &boxes, &[], 1));
        assert_eq!(arg, "boxes[1].mask");
        let (arg, _) = err(overlay(&image, size, None, &[], &[], 0));
        assert_eq!(arg, "scale");
        let e = overlay(&image, size, None, &[], &[], 0).unwrap_err();
        assert!(e.to_string().contains("`scale`"), "{e}");
    }

    #[test]
    fn side_by_side_panels() {
        let a = RgbImage::from_pixel(3, 2, Rgb([1, 2, 3]));
        let b = RgbImage::from_pixel(2, 5, Rgb([4, 5, 6]));
        let out = side_by_side(&[a, b]);
        assert_eq!(out.dimensions(), (3 + 4 + 2, 5));
        assert_eq!(out.get_pixel(0, 0).0, [1, 2, 3]);
        assert_eq!(out.get_pixel(0, 4).0, WHITE);
        assert_eq!(out.get_pixel(4, 0).0, WHITE);
        assert_eq!(out.get_pixel(8, 4).0, [4, 5, 6]);
        assert_eq!(side_by_side(&[]).dimensions(), (0, 0));
    }

    /// Writes a sample chart and overlay to `$ZOO_PLOT_DEMO_DIR` for looking at them
    /// (`ZOO_PLOT_DEMO_DIR=/tmp cargo test --workspace --lib plot::tests::demo`).
    #[test]
    fn demo() {
        let Some(dir) = std::env::var_os("ZOO_PLOT_DEMO_DIR") else {
            return;
        };
        let dir = PathBuf::from(dir);
        let loss = [
            Series::new(
                "train loss",
                (1..=20)
                    .map(|e| (e as f64, 1.2 * (-0.15 * e as f64).exp() + 0.05))
                    .collect(),
            ),
            Series::new(
                "val loss",
                (1..=20)
                    .map(|e| {
                        let v = 1.3 * (-0.12 * e as f64).exp() + 0.12;
                        (e as f64, if e == 7 { f64::NAN } else { v })
                    })
                    .collect(),
            ),
        ];
        Chart::new("Training loss (unet_shapes)", "epoch", &loss)
            .with_y_label("cross-entropy")
            .save(&dir.join("zoo_plot_loss.png"))
            .unwrap();
        let metrics = [
            Series::new(
                "val mIoU",
                (1..=8)
                    .map(|e| (e as f64, 0.5 + 0.025 * e as f64))
                    .collect(),
            ),
            Series::new(
                "val accuracy",
                (1..=8)
                    .map(|e| (e as f64, 0.8 + 0.015 * e as f64))
                    .collect(),
            ),
            Series::new("constant", (1..=8).map(|e| (e as f64, 0.6)).collect()),
        ];
        line_chart(
            &dir.join("zoo_plot_metrics.png"),
            "Validation metrics: ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz",
            "epoch 0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
            &metrics,
        )
        .unwrap();

        let (h, w) = (64, 96);
        let mut image = vec![0f32; 3 * h * w];
        for y in 0..h {
            for x in 0..w {
                image[y * w + x] = x as f32 / w as f32;
                image[h * w + y * w + x] = y as f32 / h as f32;
                image[2 * h * w + y * w + x] = 0.6;
            }
        }
        let mut mask = vec![0u8; h * w];
        let mut inst = vec![false; h * w];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f32 - 30.0, y as f32 - 35.0);
                if dx * dx + dy * dy < 15.0 * 15.0 {
                    mask[y * w + x] = 1;
                }
                if (60..85).contains(&x) && (10..30).contains(&y) {
                    mask[y * w + x] = 2;
                    inst[y * w + x] = true;
                }
            }
        }
        let names: Vec<String> = ["background", "circle", "rectangle"]
            .map(String::from)
            .to_vec();
        let boxes = [
            OverlayBox {
                bbox: [15.0, 20.0, 45.0, 50.0],
                class: 1,
                score: Some(0.934),
                mask: None,
            },
            OverlayBox {
                bbox: [60.0, 10.0, 85.0, 30.0],
                class: 2,
                score: Some(0.71),
                mask: Some(inst[..].into()),
            },
            OverlayBox {
                bbox: [80.0, 0.0, 96.0, 8.0],
                class: 4,
                score: None,
                mask: None,
            },
        ];
        let input = overlay(&image, [h, w], None, &[], &names, 4).unwrap();
        let target = overlay(&image, [h, w], Some(&mask), &[], &names, 4).unwrap();
        let pred = overlay(&image, [h, w], None, &boxes, &names, 4).unwrap();
        save_png(
            &side_by_side(&[input, target, pred]),
            &dir.join("zoo_plot_overlay.png"),
        )
        .unwrap();
    }
}
