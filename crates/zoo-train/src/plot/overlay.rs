//! Targets and predictions drawn over an image: class masks and instance masks blended in
//! their class colour, boxes outlined, labels in a filled tag (text through plotters).

use image::{Rgb, RgbImage};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use zoo_models::task::Overlay;

use super::{Color, PlotError, WHITE, blank, class_color, draw_error, font};

fn invalid(argument: impl Into<String>, message: String) -> PlotError {
    PlotError::InvalidArgument {
        argument: argument.into(),
        message,
    }
}

/// Blends `c` over `p` with alpha 0.5: `(p + c + 1) / 2` per channel (rounding half up).
fn blend_half(p: Color, c: Color) -> Color {
    std::array::from_fn(|k| (u16::from(p[k]) + u16::from(c[k])).div_ceil(2) as u8)
}

/// Outlines `[x, y, x + w, y + h)` with a `t`-pixel line inside its edges.
fn stroke_rect(img: &mut RgbImage, [x, y, w, h]: [i64; 4], t: i64, c: Color) {
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    for yy in y.max(0)..(y + h).min(ih) {
        for xx in x.max(0)..(x + w).min(iw) {
            let edge = yy < y + t || yy >= y + h - t || xx < x + t || xx >= x + w - t;
            if edge {
                img.put_pixel(xx as u32, yy as u32, Rgb(c));
            }
        }
    }
}

/// Draws what `drawing` describes over an image.
///
/// * `image`: `[3, H, W]` row-major RGB in `[0, 1]` (clamped; NaN is black), `size = [H, W]`.
/// * `drawing.class_mask`: `H·W` class ids; every id except `0` (background) and `255`
///   (ignore) is blended with alpha 0.5 in [`class_color`]`(id)`: `(pixel + colour + 1) / 2`.
/// * `drawing.boxes`: instance masks are blended like class masks (in order); then each box
///   is outlined 2 px thick inside its edges in its class colour, and labelled `"name 0.93"`
///   (name from `class_names`, else the id) in a filled class-colour tag above the box, or
///   just inside its top when there is no room, kept inside the image.
/// * `scale ≥ 1`: nearest-neighbour upscaling; the result is `[W·scale, H·scale]` pixels.
///
/// # Errors
/// An `image` or `class_mask` of the wrong length, a box mask of another image size
/// (`boxes[i].mask`), `scale` of 0 or a result too large — each naming the argument.
pub fn overlay(
    image: &[f32],
    size: [usize; 2],
    drawing: &Overlay,
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
    if let Some(m) = &drawing.class_mask
        && m.len() != hw
    {
        return Err(invalid(
            "class_mask",
            format!("expected H·W = {h}·{w} = {hw} values, got {}", m.len()),
        ));
    }
    for (i, b) in drawing.boxes.iter().enumerate() {
        if let Some(m) = &b.mask
            && m.size() != size
        {
            return Err(invalid(
                format!("boxes[{i}].mask"),
                format!("a mask of a {:?} image, expected {size:?}", m.size()),
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
    if let Some(m) = &drawing.class_mask {
        for (p, &c) in base.iter_mut().zip(m) {
            if c != 0 && c != 255 {
                *p = blend_half(*p, class_color(usize::from(c)));
            }
        }
    }
    for b in &drawing.boxes {
        if let Some(m) = &b.mask {
            let c = class_color(b.class);
            for (p, _) in base.iter_mut().zip(m.decode()).filter(|(_, on)| *on) {
                *p = blend_half(*p, c);
            }
        }
    }
    let mut img = RgbImage::from_fn(out_w, out_h, |x, y| {
        Rgb(base[(y as usize / scale) * w + x as usize / scale])
    });

    // Boxes, then labels on top of all boxes.
    let s = scale as f64;
    let mut tags = Vec::new();
    for b in &drawing.boxes {
        if !b.bbox.iter().all(|v| v.is_finite()) {
            continue;
        }
        let [x1, y1, x2, y2] = b.bbox.map(|v| f64::from(v) * s);
        let (x1, x2) = (x1.min(x2), x1.max(x2));
        let (y1, y2) = (y1.min(y2), y1.max(y2));
        let clampx = |v: f64| v.round().clamp(0.0, f64::from(out_w)) as i64;
        let clampy = |v: f64| v.round().clamp(0.0, f64::from(out_h)) as i64;
        let (x1, x2, y1, y2) = (clampx(x1), clampx(x2), clampy(y1), clampy(y2));
        let c = class_color(b.class);
        stroke_rect(&mut img, [x1, y1, (x2 - x1).max(1), (y2 - y1).max(1)], 2, c);
        let name = class_names
            .get(b.class)
            .cloned()
            .unwrap_or_else(|| b.class.to_string());
        let text = match b.score {
            Some(sc) => format!("{name} {sc:.2}"),
            None => name,
        };
        tags.push((x1, y1, c, text));
    }
    if !tags.is_empty() {
        draw_tags(&mut img, &tags)?;
    }
    Ok(img)
}

/// Label tags: a filled class-colour box with the text in black or white (by the colour's
/// luma), above `(x1, y1)` or just inside when there is no room, kept inside the image.
fn draw_tags(img: &mut RgbImage, tags: &[(i64, i64, Color, String)]) -> Result<(), PlotError> {
    let (w, h) = img.dimensions();
    let px = if w >= 200 && h >= 100 { 14 } else { 10 };
    let e = |e| draw_error("a label", e);
    let root = BitMapBackend::with_buffer(img.as_mut(), (w, h)).into_drawing_area();
    for (x1, y1, c, text) in tags {
        let style = TextStyle::from((font(), px).into_font());
        let (tw, th) = root.estimate_text_size(text, &style).map_err(e)?;
        let (pad_x, pad_y) = (3, 1);
        let lw = i64::from(tw) + 2 * pad_x;
        let lh = i64::from(th.max(px as u32)) + 2 * pad_y;
        let mut ly = y1 - lh;
        if ly < 0 {
            ly = (*y1).min(i64::from(h) - lh).max(0);
        }
        let lx = (*x1).min(i64::from(w) - lw).max(0);
        let colour = RGBColor(c[0], c[1], c[2]);
        root.draw(&Rectangle::new(
            [(lx as i32, ly as i32), ((lx + lw) as i32, (ly + lh) as i32)],
            plotters::style::Color::filled(&colour),
        ))
        .map_err(e)?;
        let luma = 0.299 * f32::from(c[0]) + 0.587 * f32::from(c[1]) + 0.114 * f32::from(c[2]);
        let fg = if luma > 140.0 {
            BLACK
        } else {
            RGBColor(WHITE[0], WHITE[1], WHITE[2])
        };
        let style = style.color(&fg).pos(Pos::new(HPos::Left, VPos::Center));
        root.draw_text(text, &style, ((lx + pad_x) as i32, (ly + lh / 2) as i32))
            .map_err(e)?;
    }
    root.present().map_err(e)
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
    let mut out = blank(w, h);
    let mut x0 = 0;
    for im in images {
        image::imageops::replace(&mut out, im, i64::from(x0), 0);
        x0 += im.width() + GAP;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use zoo_eval::Rle;
    use zoo_models::task::OverlayBox;

    /// A 20×30 grey image (value 0.4 → 102) with a class-2 mask on rows 5..10, cols 5..15.
    fn sample() -> (Vec<f32>, [usize; 2], Vec<u8>) {
        let (h, w) = (20, 30);
        let image = vec![0.4f32; 3 * h * w];
        let mut mask = vec![0u8; h * w];
        for y in 5..10 {
            for x in 5..15 {
                mask[y * w + x] = 2;
            }
        }
        mask[0] = 255;
        (image, [h, w], mask)
    }

    fn names() -> Vec<String> {
        ["background", "circle", "rectangle", "triangle"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn masks_blend_and_boxes_are_outlined_and_labelled() {
        let (image, size, mask) = sample();
        let plain = overlay(
            &image,
            size,
            &Overlay {
                class_mask: Some(mask.clone()),
                boxes: Vec::new(),
            },
            &names(),
            1,
        )
        .unwrap();
        assert_eq!(plain.dimensions(), (30, 20));
        // (102 + 0 + 1) / 2 = 51, (102 + 128 + 1) / 2 = 115.
        assert_eq!(plain.get_pixel(7, 6).0, [51, 115, 51]);
        assert_eq!(plain.get_pixel(20, 15).0, [102, 102, 102]);
        assert_eq!(plain.get_pixel(0, 0).0, [102, 102, 102], "255 = ignore");

        let inst = Rle::from_fn(size, |y, x| (14..19).contains(&y) && (18..23).contains(&x));
        let boxed = Overlay {
            class_mask: Some(mask),
            boxes: vec![OverlayBox {
                bbox: [18.0, 14.0, 23.0, 19.0],
                class: 1,
                score: Some(0.93),
                mask: Some(inst),
            }],
        };
        let img = overlay(&image, size, &boxed, &names(), 2).unwrap();
        assert_eq!(img.dimensions(), (60, 40), "scale 2 doubles the size");
        assert_eq!(img.get_pixel(15, 11).0, [51, 115, 51]);
        let c1 = class_color(1);
        // The outline: 2 px inside the box's edges, in the class colour.
        assert_eq!(img.get_pixel(36, 30).0, c1);
        assert_eq!(img.get_pixel(37, 30).0, c1);
        assert_eq!(img.get_pixel(45, 37).0, c1);
        // Inside the outline, the instance mask is blended: (102 + 128 + 1) / 2 = 115.
        assert_eq!(img.get_pixel(40, 32).0, [115, 51, 51]);
        // The tag above the box: class colour with white text.
        let tag_row: Vec<[u8; 3]> = (0..60).map(|x| img.get_pixel(x, 22).0).collect();
        assert!(tag_row.contains(&c1), "{tag_row:?}");
        let tag = (12..28).flat_map(|y| (30..60).map(move |x| (x, y)));
        assert!(
            tag.clone()
                .any(|(x, y)| img.get_pixel(x, y).0.iter().all(|&v| v > 200)),
            "no label text"
        );
    }

    #[test]
    fn labels_stay_inside_the_image() {
        let image = vec![0.5f32; 3 * 50 * 75];
        let at_corner = Overlay {
            class_mask: None,
            boxes: vec![OverlayBox {
                bbox: [70.0, 0.0, 75.0, 5.0],
                class: 3,
                score: None,
                mask: None,
            }],
        };
        let img = overlay(&image, [50, 75], &at_corner, &names(), 4).unwrap();
        assert_eq!(img.dimensions(), (300, 200));
        let c3 = class_color(3);
        assert_eq!(img.get_pixel(299, 0).0, c3, "the tag is pushed inside");
        assert!((0..30).any(|y| (200..298).any(|x| img.get_pixel(x, y).0 == c3)));
    }

    #[test]
    fn bad_inputs_name_the_argument() {
        let (image, size, mask) = sample();
        let err = |r: Result<RgbImage, PlotError>| match r.unwrap_err() {
            PlotError::InvalidArgument { argument, message } => (argument, message),
            e => panic!("{e}"),
        };
        let none = Overlay::default();
        let (arg, msg) = err(overlay(&image[1..], size, &none, &[], 1));
        assert_eq!(arg, "image");
        assert!(msg.contains("1800") && msg.contains("1799"), "{msg}");
        let short = Overlay {
            class_mask: Some(mask[1..].to_vec()),
            boxes: Vec::new(),
        };
        assert_eq!(err(overlay(&image, size, &short, &[], 1)).0, "class_mask");
        let other = Overlay {
            class_mask: None,
            boxes: vec![OverlayBox {
                bbox: [0.0; 4],
                class: 1,
                score: None,
                mask: Some(Rle::from_fn([2, 2], |_, _| true)),
            }],
        };
        assert_eq!(
            err(overlay(&image, size, &other, &[], 1)).0,
            "boxes[0].mask"
        );
        assert_eq!(err(overlay(&image, size, &none, &[], 0)).0, "scale");
    }

    #[test]
    fn panels_sit_side_by_side() {
        let a = RgbImage::from_pixel(3, 2, Rgb([1, 2, 3]));
        let b = RgbImage::from_pixel(2, 4, Rgb([9, 9, 9]));
        let both = side_by_side(&[a, b]);
        assert_eq!(both.dimensions(), (3 + 4 + 2, 4));
        assert_eq!(both.get_pixel(0, 0).0, [1, 2, 3]);
        assert_eq!(both.get_pixel(4, 0).0, WHITE);
        assert_eq!(both.get_pixel(7, 3).0, [9, 9, 9]);
        assert_eq!(both.get_pixel(0, 3).0, WHITE, "top-aligned on white");
        assert_eq!(side_by_side(&[]).dimensions(), (0, 0));
    }
}
