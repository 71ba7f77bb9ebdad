//! Image files to `[3, H, W]` planes.

use std::io::Cursor;
use std::path::Path;

use crate::error::DataError;

/// Decodes an RGB(A)/gray PNG or JPEG file into `[3, H, W]` f32 in `[0, 1]`; returns the
/// image and its `[H, W]`.
pub fn read_rgb(path: &Path) -> Result<(Vec<f32>, [usize; 2]), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, "cannot read image", e))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    let by_ext = match ext.as_str() {
        "png" => Some(image::ImageFormat::Png),
        "jpg" | "jpeg" => Some(image::ImageFormat::Jpeg),
        _ => None,
    };
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DataError::io(path, "cannot read image", e))?;
    if reader.format().is_none()
        && let Some(f) = by_ext
    {
        reader.set_format(f);
    }
    let format_name = match reader.format().or(by_ext) {
        Some(image::ImageFormat::Png) => "PNG",
        Some(image::ImageFormat::Jpeg) => "JPEG",
        _ => "image",
    };
    let img = reader.decode().map_err(|e| DataError::Decode {
        path: path.to_path_buf(),
        format: format_name.to_string(),
        message: e.to_string(),
    })?;
    let rgb = img.into_rgb32f();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let mut out = vec![0f32; 3 * h * w];
    for (i, px) in rgb.pixels().enumerate() {
        for c in 0..3 {
            out[c * h * w + i] = px.0[c].clamp(0.0, 1.0);
        }
    }
    Ok((out, [h, w]))
}
