//! Image files to `[3, H, W]` planes.

use std::io::Cursor;
use std::path::Path;

use crate::error::DataError;

/// Whether a JPEG's data ends: an end-of-image marker (`FF D9`) after the start of its last
/// scan (`FF DA`). The decoder fills a truncated scan with grey without an error; PIL
/// refuses such a file ("image file is truncated"), and so does this crate. (Inside a scan
/// `FF` is always followed by `00` or a restart marker, so neither marker occurs by chance.)
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w == [0xFF, marker]);
    match (last(0xDA), last(0xD9)) {
        (Some(scan), Some(end)) => end > scan,
        _ => false,
    }
}

/// Decodes an RGB(A)/gray PNG or JPEG file into `[3, H, W]` f32 in `[0, 1]`; returns the
/// image and its `[H, W]`. A truncated JPEG is refused (see [`jpeg_is_complete`]).
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
    let mut reader = image::ImageReader::new(Cursor::new(&bytes[..]))
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
    if format_name == "JPEG" && !jpeg_is_complete(&bytes) {
        return Err(DataError::Decode {
            path: path.to_path_buf(),
            format: format_name.to_string(),
            message: "the file is truncated (its last scan has no end-of-image marker)".into(),
        });
    }
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
