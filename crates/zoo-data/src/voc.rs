//! Pascal VOC-style semantic segmentation:
//!
//! ```text
//! root/JPEGImages/<id>.jpg
//! root/SegmentationClass/<id>.png      palette (or 8-bit gray) PNG: pixel = class index, 255 = ignore
//! root/ImageSets/Segmentation/<split>.txt   one id per line
//! ```
//!
//! Masks are read as raw palette indices (not the palette's colours), so `class_mask` holds
//! class ids 0..K and 255 on VOC's object borders.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use crate::dataset::ImageDataset;
use crate::decode::read_rgb;
use crate::error::DataError;
use crate::sample::Sample;

/// The 21 Pascal VOC classes, background first.
pub const VOC_CLASS_NAMES: [&str; 21] = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

/// A VOC-style segmentation split.
#[derive(Debug, Clone)]
pub struct Voc {
    root: PathBuf,
    split: String,
    ids: Vec<String>,
    class_names: Vec<String>,
}

impl Voc {
    /// Reads the id list `root/ImageSets/Segmentation/<split>.txt` and checks that every id
    /// has its `JPEGImages/<id>.jpg` and `SegmentationClass/<id>.png` (nothing is decoded yet).
    /// Class names are [`VOC_CLASS_NAMES`]; see [`Voc::with_class_names`].
    ///
    /// # Errors
    /// Missing root, split file or image/mask file; an empty split.
    pub fn open(root: impl AsRef<Path>, split: &str) -> Result<Self, DataError> {
        let root = root.as_ref().to_path_buf();
        let meta = std::fs::metadata(&root)
            .map_err(|e| DataError::io(&root, "cannot open VOC root", e))?;
        if !meta.is_dir() {
            return Err(DataError::invalid(
                &root,
                "expected a directory with JPEGImages/, SegmentationClass/ and ImageSets/Segmentation/",
            ));
        }
        let list = root
            .join("ImageSets")
            .join("Segmentation")
            .join(format!("{split}.txt"));
        let text = std::fs::read_to_string(&list)
            .map_err(|e| DataError::io(&list, "cannot read split file", e))?;
        let ids: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if ids.is_empty() {
            return Err(DataError::invalid(&list, "split lists no image ids"));
        }
        let voc = Self {
            root,
            split: split.to_string(),
            ids,
            class_names: VOC_CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
        };
        for id in &voc.ids {
            for path in [voc.image_path(id), voc.mask_path(id)] {
                if !path.is_file() {
                    return Err(DataError::invalid(
                        &path,
                        format!("file missing (listed as `{id}` in {})", list.display()),
                    ));
                }
            }
        }
        Ok(voc)
    }

    /// The same split with other class names (for VOC-layout datasets with other classes).
    pub fn with_class_names(mut self, names: Vec<String>) -> Self {
        self.class_names = names;
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The split name.
    pub fn split(&self) -> &str {
        &self.split
    }

    /// The image ids, in split-file order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    fn image_path(&self, id: &str) -> PathBuf {
        self.root.join("JPEGImages").join(format!("{id}.jpg"))
    }

    fn mask_path(&self, id: &str) -> PathBuf {
        self.root
            .join("SegmentationClass")
            .join(format!("{id}.png"))
    }
}

/// Reads a palette PNG's raw indices (or an 8-bit grayscale PNG's values) as a row-major
/// `H·W` mask; returns it and its `[H, W]`.
pub fn read_index_png(path: &Path) -> Result<(Vec<u8>, [usize; 2]), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, "cannot read mask", e))?;
    let decode_err = |e: png::DecodingError| DataError::Decode {
        path: path.to_path_buf(),
        format: "PNG".to_string(),
        message: e.to_string(),
    };
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(decode_err)?;
    let (color, depth) = reader.output_color_type();
    let bits = match (color, depth) {
        (png::ColorType::Indexed, d) if d != png::BitDepth::Sixteen => d as usize,
        (png::ColorType::Grayscale, png::BitDepth::Eight) => 8,
        (c, d) => {
            return Err(DataError::invalid(
                path,
                format!(
                    "expected a palette PNG or an 8-bit grayscale PNG of class indices, found {c:?} with {d:?} bit depth"
                ),
            ));
        }
    };
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| DataError::invalid(path, "PNG too large for this machine's memory"))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(decode_err)?;
    let (w, h) = (info.width as usize, info.height as usize);
    let line = info.line_size;
    let mut out = Vec::with_capacity(h * w);
    let per_byte = 8 / bits;
    let mask = ((1u16 << bits) - 1) as u8;
    for y in 0..h {
        let row = &buf[y * line..(y + 1) * line];
        for x in 0..w {
            let byte = row[x / per_byte];
            let shift = 8 - bits * (x % per_byte + 1);
            out.push((byte >> shift) & mask);
        }
    }
    Ok((out, [h, w]))
}

impl ImageDataset for Voc {
    fn len(&self) -> usize {
        self.ids.len()
    }

    /// The JPEG as RGB `[3, H, W]` and the mask's indices as `class_mask` (`H·W`, 255 =
    /// ignore); no objects, no label.
    fn get(&self, index: usize) -> Result<Sample, DataError> {
        let id = self
            .ids
            .get(index)
            .ok_or_else(|| DataError::IndexOutOfRange {
                path: self.root.clone(),
                index,
                len: self.ids.len(),
            })?;
        let image_path = self.image_path(id);
        let mask_path = self.mask_path(id);
        let (image, size) = read_rgb(&image_path)?;
        let (class_mask, mask_size) = read_index_png(&mask_path)?;
        if size != mask_size {
            return Err(DataError::SizeMismatch {
                image: image_path,
                image_size: size,
                mask: mask_path,
                mask_size,
            });
        }
        Ok(Sample {
            image,
            size,
            class_mask,
            objects: Vec::new(),
            label: None,
        })
    }

    fn class_names(&self) -> Vec<String> {
        self.class_names.clone()
    }

    fn describe(&self, index: usize) -> String {
        self.ids.get(index).map_or_else(
            || format!("sample {index}"),
            |id| {
                format!(
                    "{} (mask {})",
                    self.image_path(id).display(),
                    self.mask_path(id).display()
                )
            },
        )
    }

    /// Decodes every mask (not the images) and checks its values.
    fn check_classes(&self, num_classes: usize) -> Result<(), DataError> {
        for id in &self.ids {
            let path = self.mask_path(id);
            let (mask, _) = read_index_png(&path)?;
            if let Some(&c) = mask
                .iter()
                .find(|&&c| c != 255 && usize::from(c) >= num_classes)
            {
                return Err(DataError::invalid(
                    &path,
                    format!(
                        "class {c} in the mask, but the model has {num_classes} classes (0–{}; 255 = ignore)",
                        num_classes - 1
                    ),
                ));
            }
        }
        Ok(())
    }
}
