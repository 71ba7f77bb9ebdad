//! Line charts: the training curves of a run directory.

use std::ops::Range;
use std::path::Path;

use image::RgbImage;
use plotters::prelude::*;

use super::{PlotError, blank, draw_error, font, save_png, series_color};

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

    /// The runs of consecutive finite points.
    fn runs(&self) -> Vec<Vec<(f64, f64)>> {
        self.points
            .split(|(x, y)| !(x.is_finite() && y.is_finite()))
            .filter(|run| !run.is_empty())
            .map(<[_]>::to_vec)
            .collect()
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

/// Series drawn with markers when they have at most this many finite points.
const MAX_MARKERS: usize = 60;

/// The largest magnitude a chart axis shows (values beyond it are drawn at it).
const LIMIT: f64 = 1e300;

/// `[lo, hi)` covering `values` (finite ones), padded by 5 %; a unit range around a single
/// value, `0..1` without any.
fn range(values: impl Iterator<Item = f64>, pad: bool) -> Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return 0.0..1.0;
    }
    // Clamp extreme values so that the padded span stays finite (plotters' tick search
    // never ends on an infinite span).
    let (lo, hi) = (lo.clamp(-LIMIT, LIMIT), hi.clamp(-LIMIT, LIMIT));
    let span = hi - lo;
    if span <= f64::EPSILON * lo.abs().max(hi.abs()).max(1.0) {
        let half = (lo.abs() * 0.05).max(0.5);
        return lo - half..hi + half;
    }
    let margin = if pad { span * 0.05 } else { 0.0 };
    lo - margin..hi + margin
}

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

    /// Draws the chart.
    ///
    /// # Errors
    /// A drawing failure in plotters.
    pub fn render(&self) -> Result<RgbImage, PlotError> {
        let (w, h) = (self.size[0].max(320), self.size[1].max(200));
        let mut img = blank(w, h);
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        let x = range(points().map(|p| p.0), false);
        let y = range(points().map(|p| p.1), true);
        {
            let e = |e| draw_error("a chart", e);
            let root = BitMapBackend::with_buffer(img.as_mut(), (w, h)).into_drawing_area();
            let mut chart = ChartBuilder::on(&root)
                .caption(self.title, (font(), 24).into_font().color(&BLACK))
                .margin(16)
                .x_label_area_size(if self.x_label.is_empty() { 30 } else { 50 })
                .y_label_area_size(if self.y_label.is_empty() { 60 } else { 80 })
                .build_cartesian_2d(x, y)
                .map_err(e)?;
            chart
                .configure_mesh()
                .x_desc(self.x_label)
                .y_desc(self.y_label)
                .label_style((font(), 14))
                .axis_desc_style((font(), 16))
                .light_line_style(RGBColor(238, 238, 238))
                .bold_line_style(RGBColor(220, 220, 220))
                .draw()
                .map_err(e)?;
            for (i, s) in self.series.iter().enumerate() {
                let [r, g, b] = series_color(i);
                let colour = RGBColor(r, g, b);
                let runs = s.runs();
                let finite: usize = runs.iter().map(Vec::len).sum();
                chart
                    .draw_series(
                        runs.into_iter()
                            .map(|run| PathElement::new(run, colour.stroke_width(2))),
                    )
                    .map_err(e)?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
                if finite <= MAX_MARKERS {
                    chart
                        .draw_series(
                            s.runs()
                                .into_iter()
                                .flatten()
                                .map(|p| Circle::new(p, 3, colour.filled())),
                        )
                        .map_err(e)?;
                }
            }
            if !self.series.is_empty() {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(WHITE.mix(0.85))
                    .border_style(RGBColor(180, 180, 180))
                    .label_font((font(), 14))
                    .draw()
                    .map_err(e)?;
            }
            root.present().map_err(e)?;
        }
        Ok(img)
    }

    /// Draws the chart and writes it to `path` as a PNG (atomically, see [`save_png`]).
    ///
    /// # Errors
    /// A drawing or write failure, naming `path`.
    pub fn save(&self, path: &Path) -> Result<(), PlotError> {
        save_png(&self.render()?, path)
    }
}

/// Writes an 800×500 line chart of `series` to `path`.
///
/// # Errors
/// See [`Chart::save`].
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    series: &[Series],
) -> Result<(), PlotError> {
    Chart::new(title, x_label, series).save(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_color(img: &RgbImage, c: [u8; 3]) -> bool {
        img.pixels().any(|p| p.0 == c)
    }

    #[test]
    fn chart_png_has_series_colours_title_and_legend() {
        let dir = std::env::temp_dir().join(format!("zoo-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
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
        // The title draws dark pixels in the top band, below the margin.
        let dark = |x0: u32, x1: u32, y0: u32, y1: u32| {
            (y0..y1)
                .flat_map(|y| (x0..x1).map(move |x| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 80))
                .count()
        };
        assert!(dark(250, 550, 0, 50) > 50, "no title");
        assert_eq!(dark(0, 800, 0, 8), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn degenerate_series_still_draw() {
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
        for series in &cases {
            let img = Chart::new("degenerate", "x", series).render().unwrap();
            assert_eq!(img.dimensions(), (800, 500));
            if series
                .first()
                .is_some_and(|s| s.points.iter().any(|p| p.1 == 0.25))
            {
                assert!(has_color(&img, series_color(0)));
            }
        }
        let s = [Series::new("acc", vec![(1.0, 0.5), (2.0, 0.7)])];
        let img = Chart::new("t", "epoch", &s)
            .with_y_label("accuracy")
            .with_size([640, 400])
            .render()
            .unwrap();
        assert_eq!(img.dimensions(), (640, 400));
    }
}
