//! Integration tests of the on-disk readers ([`ImageFolder`], [`Voc`], [`Coco`]) on tiny
//! datasets written to a temporary directory, of [`load_batch`]'s independence from the
//! thread count, and of [`augment`]'s flip acting alike on image, masks and boxes.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use zoo_data::augment::sample_seed;
use zoo_data::coco::Rle;
use zoo_data::voc::{VOC_CLASS_NAMES, read_index_png};
use zoo_data::{
    AugmentConfig, Coco, DataError, ImageDataset, ImageFolder, Sample, Voc, augment, load_batch,
};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A scratch directory under the system temp dir, unique to this process and test, removed
/// on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("zoo-data-formats-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// `self/rel`, creating its parent directories.
    pub(crate) fn file(&self, rel: &str) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().expect("has a parent")).expect("create dirs");
        p
    }

    /// Creates the directory `self/rel`.
    fn dir(&self, rel: &str) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(&p).expect("create dir");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A position-dependent colour, so that layout mistakes (transposes, flips, channel order)
/// show up in the decoded values.
fn pattern(x: u32, y: u32, seed: u32) -> [u8; 3] {
    [
        (x * 37 + seed * 11) as u8,
        (y * 53 + seed * 7) as u8,
        ((x + 2 * y) * 19 + seed) as u8,
    ]
}

/// Writes a `w × h` RGB PNG of [`pattern`]`(x, y, seed)`.
pub(crate) fn write_png(path: &Path, w: u32, h: u32, seed: u32) {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb(pattern(x, y, seed)))
        .save_with_format(path, image::ImageFormat::Png)
        .expect("write PNG");
}

/// Writes a `w × h` JPEG of one colour (quality 95).
pub(crate) fn write_jpeg(path: &Path, w: u32, h: u32, colour: [u8; 3]) {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb(colour));
    let file = std::fs::File::create(path).expect("create JPEG");
    image::codecs::jpeg::JpegEncoder::new_with_quality(std::io::BufWriter::new(file), 95)
        .encode_image(&img)
        .expect("write JPEG");
}

/// Writes a palette PNG of `indices` (row-major `w·h`) at `bits` bits per pixel, with a full
/// 256-entry palette (as VOC's) whose colours differ from the indices.
fn write_palette_png(path: &Path, w: u32, h: u32, indices: &[u8], bits: png::BitDepth) {
    let per_byte = 8 / bits as usize;
    let stride = (w as usize).div_ceil(per_byte);
    let mut data = vec![0u8; stride * h as usize];
    for (i, &v) in indices.iter().enumerate() {
        let (y, x) = (i / w as usize, i % w as usize);
        let shift = 8 - bits as usize * (x % per_byte + 1);
        data[y * stride + x / per_byte] |= v << shift;
    }
    let entries = 1usize << (bits as usize);
    let palette: Vec<u8> = (0..entries)
        .flat_map(|i| [(i * 7) as u8, 255 - i as u8, (i / 2) as u8])
        .collect();
    let file = std::fs::File::create(path).expect("create PNG");
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Indexed);
    enc.set_depth(bits);
    enc.set_palette(palette);
    let mut writer = enc.write_header().expect("PNG header");
    writer.write_image_data(&data).expect("PNG data");
}

/// Writes an 8-bit grayscale PNG of `values` (row-major `w·h`).
fn write_gray_png(path: &Path, w: u32, h: u32, values: &[u8]) {
    image::GrayImage::from_raw(w, h, values.to_vec())
        .expect("w·h values")
        .save_with_format(path, image::ImageFormat::Png)
        .expect("write PNG");
}

/// Pixel `(x, y)` of a `[3, H, W]` image.
fn rgb_at(s: &Sample, x: usize, y: usize) -> [f32; 3] {
    let n = s.height() * s.width();
    let i = y * s.width() + x;
    [s.image[i], s.image[n + i], s.image[2 * n + i]]
}

/// Checks that `s.image` is exactly [`pattern`]`(·, ·, seed)` (a PNG: lossless).
fn assert_pattern(s: &Sample, seed: u32, what: &str) {
    for y in 0..s.height() {
        for x in 0..s.width() {
            let want = pattern(x as u32, y as u32, seed).map(|v| f32::from(v) / 255.0);
            assert_eq!(rgb_at(s, x, y), want, "{what}: pixel ({x}, {y})");
        }
    }
}

/// Checks that every pixel of `s.image` is within `tol` of `colour` (a JPEG: lossy).
fn assert_colour(s: &Sample, colour: [u8; 3], tol: f32, what: &str) {
    for y in 0..s.height() {
        for x in 0..s.width() {
            let got = rgb_at(s, x, y);
            for c in 0..3 {
                let want = f32::from(colour[c]) / 255.0;
                assert!(
                    (got[c] - want).abs() <= tol,
                    "{what}: pixel ({x}, {y}) channel {c}: {} vs {want}",
                    got[c]
                );
            }
        }
    }
}

/// The error's message, which must name `path`.
fn assert_names(e: &DataError, path: &Path) -> String {
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "error `{msg}` does not name {}",
        path.display()
    );
    msg
}

/// A row-major `h·w` mask of the pixel rectangle `x1..x2 × y1..y2`.
fn rect_mask(h: usize, w: usize, [x1, y1, x2, y2]: [usize; 4]) -> Vec<bool> {
    (0..h * w)
        .map(|i| (x1..x2).contains(&(i % w)) && (y1..y2).contains(&(i / w)))
        .collect()
}

/// Column-major run lengths (COCO's uncompressed RLE `counts`) of a row-major mask, written
/// independently of [`Rle::encode`].
fn column_major_counts(mask: &[bool], h: usize, w: usize) -> Vec<u32> {
    let mut counts = vec![0u32];
    let mut cur = false;
    for x in 0..w {
        for y in 0..h {
            if mask[y * w + x] != cur {
                cur = !cur;
                counts.push(0);
            }
            *counts.last_mut().expect("non-empty") += 1;
        }
    }
    counts
}

// ---------------------------------------------------------------------------------------
// ImageFolder
// ---------------------------------------------------------------------------------------

#[test]
fn image_folder_classes_labels_order_and_contents() {
    let t = TempDir::new("if-layout");
    // Class names sort byte-wise, as Python's `sorted`: "Bee" < "ant" < "zebra".
    write_jpeg(&t.file("Bee/b.jpeg"), 6, 4, [200, 40, 90]);
    write_png(&t.file("ant/a2.PNG"), 3, 5, 1);
    write_jpeg(&t.file("ant/a1.jpg"), 8, 8, [10, 120, 250]);
    write_png(&t.file("ant/sub/x.png"), 4, 2, 2);
    write_png(&t.file("ant/sub-b/y.png"), 2, 2, 3);
    write_png(&t.file("ant/sub/deeper/w.png"), 1, 3, 4);
    std::fs::write(t.file("ant/notes.txt"), "not an image").expect("write");
    write_png(&t.file("zebra/z1.png"), 5, 3, 5);
    write_gray_png(&t.file("zebra/z2.png"), 2, 1, &[0, 128]);
    std::fs::write(t.file("README.md"), "a file at the root is not a class").expect("write");

    let ds = ImageFolder::open(&t.0).expect("valid ImageFolder");
    assert_eq!(ds.root(), t.0.as_path());
    assert_eq!(ds.classes(), ["Bee", "ant", "zebra"]);
    assert_eq!(ds.class_names(), ["Bee", "ant", "zebra"]);
    // Within a class: files of a directory by name, directories by their whole path as
    // torchvision's `sorted(os.walk(...))` ("sub-b" < "sub/deeper" since '-' < '/').
    let rel: Vec<(String, usize)> = ds
        .samples()
        .iter()
        .map(|(p, c)| {
            let r = p.strip_prefix(&t.0).expect("under root");
            (r.to_string_lossy().replace('\\', "/"), *c)
        })
        .collect();
    let expected = [
        ("Bee/b.jpeg", 0),
        ("ant/a1.jpg", 1),
        ("ant/a2.PNG", 1),
        ("ant/sub/x.png", 1),
        ("ant/sub-b/y.png", 1),
        ("ant/sub/deeper/w.png", 1),
        ("zebra/z1.png", 2),
        ("zebra/z2.png", 2),
    ];
    let expected: Vec<(String, usize)> =
        expected.iter().map(|(p, c)| (p.to_string(), *c)).collect();
    assert_eq!(
        rel, expected,
        "torchvision order; non-image and root files skipped"
    );
    assert_eq!(ds.len(), 8);

    let samples: Vec<Sample> = (0..ds.len())
        .map(|i| ds.get(i).expect("readable"))
        .collect();
    let labels: Vec<Option<usize>> = samples.iter().map(|s| s.label).collect();
    assert_eq!(
        labels,
        expected.iter().map(|e| Some(e.1)).collect::<Vec<_>>()
    );
    let sizes: Vec<[usize; 2]> = samples.iter().map(|s| s.size).collect();
    assert_eq!(
        sizes,
        [
            [4, 6],
            [8, 8],
            [5, 3],
            [2, 4],
            [2, 2],
            [3, 1],
            [3, 5],
            [1, 2]
        ]
    );
    for s in &samples {
        assert_eq!(s.image.len(), 3 * s.height() * s.width());
        assert!(
            s.class_mask.is_empty() && s.objects.is_empty(),
            "no annotations"
        );
    }
    assert_colour(&samples[0], [200, 40, 90], 3.0 / 255.0, "Bee/b.jpeg");
    assert_colour(&samples[1], [10, 120, 250], 3.0 / 255.0, "ant/a1.jpg");
    assert_pattern(&samples[2], 1, "ant/a2.PNG");
    assert_pattern(&samples[3], 2, "ant/sub/x.png");
    assert_pattern(&samples[6], 5, "zebra/z1.png");
    // Grayscale is replicated to the three channels.
    assert_eq!(rgb_at(&samples[7], 1, 0), [128.0 / 255.0; 3]);
    assert_eq!(rgb_at(&samples[7], 0, 0), [0.0; 3]);

    let e = ds.get(8).expect_err("past the end");
    assert!(
        matches!(
            e,
            DataError::IndexOutOfRange {
                index: 8,
                len: 8,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn image_folder_class_without_images_is_an_error() {
    let t = TempDir::new("if-empty-class");
    write_png(&t.file("cat/1.png"), 2, 2, 0);
    let empty = t.dir("dog");
    let e = ImageFolder::open(&t.0).expect_err("empty class dir");
    assert!(matches!(e, DataError::Invalid { .. }), "{e}");
    assert_names(&e, &empty);

    // A class holding only non-image files (also in subdirectories) is empty too.
    std::fs::write(t.file("dog/readme.txt"), "x").expect("write");
    std::fs::write(t.file("dog/sub/data.csv"), "x").expect("write");
    let e = ImageFolder::open(&t.0).expect_err("class without images");
    let msg = assert_names(&e, &empty);
    assert!(msg.contains(".png/.jpg/.jpeg"), "{msg}");

    // Once it has an image, the dataset opens.
    write_png(&t.file("dog/sub/2.png"), 2, 2, 1);
    let ds = ImageFolder::open(&t.0).expect("both classes have images");
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.get(1).expect("readable").label, Some(1));
}

#[test]
fn image_folder_missing_or_classless_root_is_an_error() {
    let t = TempDir::new("if-root");
    let missing = t.0.join("nope");
    let e = ImageFolder::open(&missing).expect_err("missing root");
    assert!(matches!(e, DataError::Io { .. }), "{e}");
    assert_names(&e, &missing);

    write_png(&t.file("loose.png"), 2, 2, 0);
    let e = ImageFolder::open(&t.0).expect_err("images but no class directories");
    assert!(matches!(e, DataError::Invalid { .. }), "{e}");
    assert!(assert_names(&e, &t.0).contains("no class subdirectories"));

    let e = ImageFolder::open(t.0.join("loose.png")).expect_err("root is a file");
    assert!(matches!(e, DataError::Invalid { .. }), "{e}");
}

#[test]
fn image_folder_corrupt_image_error_names_the_file() {
    let t = TempDir::new("if-corrupt");
    write_png(&t.file("a/good.png"), 3, 2, 7);
    let bad = t.file("a/zz_bad.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\n but then garbage").expect("write");
    let bad_jpg = t.file("b/bad.jpg");
    std::fs::write(&bad_jpg, b"definitely not a JPEG").expect("write");
    // A PNG named `.jpg` is decoded by its content.
    let misnamed = t.file("b/png_named.jpg");
    write_png(&misnamed, 2, 3, 8);

    let ds = ImageFolder::open(&t.0).expect("scanning decodes nothing");
    assert_eq!(ds.len(), 4);
    assert_pattern(&ds.get(0).expect("good image"), 7, "a/good.png");

    let e = ds.get(1).expect_err("corrupt PNG");
    assert!(
        matches!(&e, DataError::Decode { format, .. } if format == "PNG"),
        "{e}"
    );
    assert_names(&e, &bad);

    let e = ds.get(2).expect_err("corrupt JPEG");
    assert!(matches!(e, DataError::Decode { .. }), "{e}");
    assert_names(&e, &bad_jpg);

    let s = ds.get(3).expect("PNG content with a .jpg name");
    assert_pattern(&s, 8, "b/png_named.jpg");
    assert_eq!(s.label, Some(1));
}

// ---------------------------------------------------------------------------------------
// VOC
// ---------------------------------------------------------------------------------------

/// A VOC class mask with background, a few classes and 255 borders.
fn voc_mask(h: usize, w: usize, seed: usize) -> Vec<u8> {
    (0..h * w)
        .map(|i| {
            let (y, x) = (i / w, i % w);
            if x == 0 || y + 1 == h {
                255
            } else {
                [0u8, 1, 15, 20, 7][(x * 3 + y + seed) % 5]
            }
        })
        .collect()
}

/// Writes a VOC image + mask pair; returns the mask.
pub(crate) fn write_voc_pair(t: &TempDir, id: &str, h: u32, w: u32, colour: [u8; 3]) -> Vec<u8> {
    write_jpeg(&t.file(&format!("JPEGImages/{id}.jpg")), w, h, colour);
    let mask = voc_mask(h as usize, w as usize, id.len());
    write_palette_png(
        &t.file(&format!("SegmentationClass/{id}.png")),
        w,
        h,
        &mask,
        png::BitDepth::Eight,
    );
    mask
}

#[test]
fn voc_reads_palette_indices_and_honours_the_split() {
    let t = TempDir::new("voc-split");
    let mask_a = write_voc_pair(&t, "2007_000032", 6, 9, [250, 10, 10]);
    let mask_b = write_voc_pair(&t, "2008_1", 5, 4, [10, 250, 10]);
    write_voc_pair(&t, "only_in_val", 3, 3, [10, 10, 250]);
    // CRLF line ends, blank lines and surrounding spaces are tolerated.
    std::fs::write(
        t.file("ImageSets/Segmentation/train.txt"),
        "2008_1\r\n\r\n  2007_000032 \n",
    )
    .expect("write split");
    std::fs::write(t.file("ImageSets/Segmentation/val.txt"), "only_in_val\n").expect("write");

    let voc = Voc::open(&t.0, "train").expect("valid VOC split");
    assert_eq!(voc.split(), "train");
    assert_eq!(voc.root(), t.0.as_path());
    assert_eq!(voc.ids(), ["2008_1", "2007_000032"], "split-file order");
    assert_eq!(voc.len(), 2);
    assert_eq!(voc.class_names().len(), 21);
    assert_eq!(voc.class_names()[0], "background");
    assert_eq!(voc.class_names()[15], VOC_CLASS_NAMES[15]);

    let b = voc.get(0).expect("readable");
    assert_eq!(b.size, [5, 4]);
    assert_eq!(b.class_mask, mask_b, "raw palette indices, not colours");
    assert!(b.class_mask.contains(&255) && b.class_mask.contains(&15));
    assert_colour(&b, [10, 250, 10], 4.0 / 255.0, "2008_1.jpg");
    assert!(b.objects.is_empty() && b.label.is_none());

    let a = voc.get(1).expect("readable");
    assert_eq!(a.size, [6, 9]);
    assert_eq!(a.class_mask, mask_a);
    assert_colour(&a, [250, 10, 10], 4.0 / 255.0, "2007_000032.jpg");
    assert!(matches!(
        voc.get(2),
        Err(DataError::IndexOutOfRange { index: 2, .. })
    ));

    let val = Voc::open(&t.0, "val").expect("valid VOC split");
    assert_eq!(val.ids(), ["only_in_val"]);
    assert_eq!(val.get(0).expect("readable").size, [3, 3]);

    let names: Vec<String> = ["bg", "thing"].map(String::from).to_vec();
    assert_eq!(val.with_class_names(names.clone()).class_names(), names);
}

#[test]
fn voc_masks_low_bit_depth_and_grayscale() {
    let t = TempDir::new("voc-depths");
    // 5 pixels wide: the packed rows end mid-byte at 1, 2 and 4 bits per pixel.
    let (w, h) = (5u32, 3u32);
    for (bits, max) in [
        (png::BitDepth::One, 1u8),
        (png::BitDepth::Two, 3),
        (png::BitDepth::Four, 15),
        (png::BitDepth::Eight, 255),
    ] {
        let values: Vec<u8> = (0..w * h)
            .map(|i| ((i * 7 + 3) % (u32::from(max) + 1)) as u8)
            .collect();
        let path = t.file(&format!("mask{bits:?}.png"));
        write_palette_png(&path, w, h, &values, bits);
        let (got, size) = read_index_png(&path).expect("palette PNG");
        assert_eq!(size, [h as usize, w as usize]);
        assert_eq!(got, values, "{bits:?}-bit palette");
    }
    let gray: Vec<u8> = vec![0, 1, 2, 255, 21, 3];
    let path = t.file("gray.png");
    write_gray_png(&path, 3, 2, &gray);
    assert_eq!(read_index_png(&path).expect("gray PNG"), (gray, [2, 3]));

    // RGB masks (colours, not indices) are refused, naming the file.
    let rgb = t.file("rgb.png");
    write_png(&rgb, 3, 2, 0);
    let e = read_index_png(&rgb).expect_err("RGB mask");
    assert!(matches!(e, DataError::Invalid { .. }), "{e}");
    assert!(assert_names(&e, &rgb).contains("palette"));

    let corrupt = t.file("corrupt.png");
    std::fs::write(&corrupt, b"not a png at all").expect("write");
    let e = read_index_png(&corrupt).expect_err("corrupt mask");
    assert!(matches!(e, DataError::Decode { .. }), "{e}");
    assert_names(&e, &corrupt);
}

#[test]
fn voc_missing_files_are_errors_naming_the_path() {
    let t = TempDir::new("voc-missing");
    write_voc_pair(&t, "a", 4, 4, [0, 0, 0]);
    write_jpeg(&t.file("JPEGImages/no_mask.jpg"), 4, 4, [0, 0, 0]);
    write_palette_png(
        &t.file("SegmentationClass/no_image.png"),
        4,
        4,
        &[0; 16],
        png::BitDepth::Eight,
    );
    std::fs::write(t.file("ImageSets/Segmentation/m.txt"), "a\nno_mask\n").expect("write");
    std::fs::write(t.file("ImageSets/Segmentation/i.txt"), "no_image\n").expect("write");
    std::fs::write(t.file("ImageSets/Segmentation/empty.txt"), "\n  \n").expect("write");

    let e = Voc::open(&t.0, "m").expect_err("missing mask");
    let msg = assert_names(&e, &t.0.join("SegmentationClass").join("no_mask.png"));
    assert!(msg.contains("no_mask"), "{msg}");

    let e = Voc::open(&t.0, "i").expect_err("missing image");
    assert_names(&e, &t.0.join("JPEGImages").join("no_image.jpg"));

    let e = Voc::open(&t.0, "test").expect_err("missing split file");
    assert!(matches!(e, DataError::Io { .. }), "{e}");
    assert_names(
        &e,
        &t.0.join("ImageSets").join("Segmentation").join("test.txt"),
    );

    let e = Voc::open(&t.0, "empty").expect_err("empty split");
    assert_names(
        &e,
        &t.0.join("ImageSets").join("Segmentation").join("empty.txt"),
    );

    let missing_root = t.0.join("nope");
    let e = Voc::open(&missing_root, "m").expect_err("missing root");
    assert_names(&e, &missing_root);
}

#[test]
fn voc_mask_size_mismatch_is_an_error() {
    let t = TempDir::new("voc-size");
    write_jpeg(&t.file("JPEGImages/x.jpg"), 6, 4, [9, 9, 9]);
    let mask = t.file("SegmentationClass/x.png");
    write_palette_png(&mask, 5, 4, &[1; 20], png::BitDepth::Eight);
    std::fs::write(t.file("ImageSets/Segmentation/train.txt"), "x\n").expect("write");
    let voc = Voc::open(&t.0, "train").expect("files exist (sizes are checked on get)");
    let e = voc.get(0).expect_err("4x5 mask for a 4x6 image");
    match &e {
        DataError::SizeMismatch {
            image_size,
            mask_size,
            image,
            ..
        } => {
            assert_eq!((*image_size, *mask_size), ([4, 6], [4, 5]));
            assert_eq!(image, &t.0.join("JPEGImages").join("x.jpg"));
        }
        other => panic!("expected SizeMismatch, got {other}"),
    }
    let msg = assert_names(&e, &mask);
    assert!(
        msg.contains("4x5") && msg.contains("4x6") && msg.contains("x.jpg"),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------
// COCO
// ---------------------------------------------------------------------------------------

/// Image `a.png` (id 2) is 12×16, `b.jpg` (id 5) 10×8 without annotations, `c.png` (id 7)
/// 6×7; categories 90, 3, 17 map to classes 3, 1, 2.
const A: (usize, usize) = (12, 16);
const C: (usize, usize) = (6, 7);

/// Object masks of the test COCO set: `a.png`'s polygon rectangle and RLE rectangle, its
/// crowd RLE, and `c.png`'s two-part polygon and crowd polygon.
fn coco_masks() -> [Vec<bool>; 5] {
    let a_poly = rect_mask(A.0, A.1, [2, 1, 10, 6]);
    let a_rle = rect_mask(A.0, A.1, [6, 4, 14, 10]);
    let a_crowd = rect_mask(A.0, A.1, [0, 8, 4, 12]);
    let c_parts: Vec<bool> = rect_mask(C.0, C.1, [0, 0, 3, 2])
        .iter()
        .zip(rect_mask(C.0, C.1, [5, 4, 7, 6]))
        .map(|(a, b)| *a || b)
        .collect();
    let c_crowd = rect_mask(C.0, C.1, [3, 2, 5, 4]);
    [a_poly, a_rle, a_crowd, c_parts, c_crowd]
}

/// The annotation JSON of the test COCO set (see [`coco_masks`]).
pub(crate) fn coco_doc() -> Value {
    let [_, a_rle, a_crowd, _, _] = coco_masks();
    json!({
        "info": {"description": "unused keys are ignored"},
        "categories": [
            {"id": 90, "name": "toothbrush", "supercategory": "indoor"},
            {"id": 3, "name": "car"},
            {"id": 17, "name": "cat"},
        ],
        "images": [
            {"id": 7, "file_name": "c.png", "height": C.0, "width": C.1},
            {"id": 2, "file_name": "a.png", "height": A.0, "width": A.1},
            {"id": 5, "file_name": "b.jpg", "height": 10, "width": 8},
        ],
        "annotations": [
            {"id": 1, "image_id": 2, "category_id": 90, "iscrowd": 0, "bbox": [2, 1, 8, 5],
             "area": 38.5, "segmentation": [[2, 1, 10, 1, 10, 6, 2, 6]]},
            {"id": 2, "image_id": 7, "category_id": 17, "bbox": [0, 0, 7, 6],
             "segmentation": [[0, 0, 3, 0, 3, 2, 0, 2], [5, 4, 7, 4, 7, 6, 5, 6]]},
            {"id": 3, "image_id": 2, "category_id": 3, "iscrowd": 0, "bbox": [6.0, 4.0, 8.0, 6.0],
             "segmentation": {"size": [A.0, A.1],
                              "counts": Rle::encode(&a_rle, A.0, A.1).to_compressed()}},
            {"id": 4, "image_id": 2, "category_id": 17, "iscrowd": 1, "bbox": [0, 8, 4, 4],
             "segmentation": {"size": [A.0, A.1],
                              "counts": column_major_counts(&a_crowd, A.0, A.1)}},
            {"id": 5, "image_id": 7, "category_id": 3, "iscrowd": true, "bbox": [3, 2, 2, 2],
             "segmentation": [[3, 2, 5, 2, 5, 4, 3, 4]]},
        ],
    })
}

/// Writes the test COCO set's images and `doc` as `instances.json`; returns the JSON path.
pub(crate) fn write_coco(t: &TempDir, doc: &Value) -> PathBuf {
    write_png(&t.file("images/a.png"), A.1 as u32, A.0 as u32, 11);
    write_jpeg(&t.file("images/b.jpg"), 8, 10, [100, 150, 200]);
    write_png(&t.file("images/c.png"), C.1 as u32, C.0 as u32, 12);
    let path = t.file("instances.json");
    std::fs::write(&path, serde_json::to_string_pretty(doc).expect("serialise")).expect("write");
    path
}

#[test]
fn coco_classes_images_objects_and_class_masks() {
    let t = TempDir::new("coco-read");
    let json_path = write_coco(&t, &coco_doc());
    let coco = Coco::open(&json_path, t.0.join("images")).expect("valid COCO");
    let [a_poly, a_rle, a_crowd, c_parts, c_crowd] = coco_masks();

    // Category ids sorted and remapped to 1..=K; images sorted by id.
    assert_eq!(coco.category_ids(), [3, 17, 90]);
    assert_eq!(
        coco.class_names(),
        ["background", "car", "cat", "toothbrush"]
    );
    assert_eq!(coco.image_ids(), [2, 5, 7]);
    assert_eq!(coco.len(), 3);
    assert_eq!(coco.annotation_file(), json_path.as_path());
    assert_eq!(coco.image_path(1), Some(t.0.join("images").join("b.jpg")));
    assert_eq!(coco.image_path(3), None);

    // a.png: the polygon (category 90 → class 3), the RLE (category 3 → class 1) and the
    // crowd RLE, in file order, the crowd flagged and painted as 255 in the class mask; later
    // annotations on top; the annotation's `area` kept where it states one.
    let a = coco.get(0).expect("readable");
    assert_eq!(a.size, [A.0, A.1]);
    assert_pattern(&a, 11, "a.png");
    assert_eq!(a.label, None);
    assert_eq!(
        a.objects.len(),
        3,
        "crowd regions are objects flagged `crowd`"
    );
    assert_eq!(
        a.objects.iter().map(|o| o.crowd).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert_eq!(a.objects[2].class, 2);
    assert_eq!(a.objects[2].mask, a_crowd);
    assert_eq!(a.objects[0].area, Some(38.5));
    assert_eq!(a.objects[1].area, None);
    assert_eq!(a.objects[0].class, 3);
    assert_eq!(
        a.objects[0].bbox,
        [2.0, 1.0, 10.0, 6.0],
        "[x, y, w, h] → [x1, y1, x2, y2]"
    );
    assert_eq!(
        a.objects[0].mask, a_poly,
        "polygon with corners on pixel edges"
    );
    assert_eq!(a.objects[1].class, 1);
    assert_eq!(a.objects[1].bbox, [6.0, 4.0, 14.0, 10.0]);
    assert_eq!(a.objects[1].mask, a_rle, "compressed RLE string");
    let mut want = vec![0u8; A.0 * A.1];
    for (mask, value) in [(&a_poly, 3u8), (&a_rle, 1), (&a_crowd, 255)] {
        for (w, &m) in want.iter_mut().zip(mask.iter()) {
            if m {
                *w = value;
            }
        }
    }
    assert_eq!(a.class_mask, want);
    assert_eq!(
        a.class_mask[5 * A.1 + 7],
        1,
        "overlap: the later annotation wins"
    );

    // b.jpg: no annotations → no objects and an all-background class mask.
    let b = coco.get(1).expect("readable");
    assert_eq!(b.size, [10, 8]);
    assert_colour(&b, [100, 150, 200], 4.0 / 255.0, "b.jpg");
    assert!(b.objects.is_empty());
    assert_eq!(b.class_mask, vec![0u8; 80]);

    // c.png: a two-part polygon (missing `iscrowd` = not crowd) and a crowd polygon
    // (`iscrowd: true`).
    let c = coco.get(2).expect("readable");
    assert_eq!(c.objects.len(), 2);
    assert!(!c.objects[0].crowd && c.objects[1].crowd);
    assert_eq!(c.objects[1].mask, c_crowd);
    assert_eq!(c.objects[0].class, 2);
    assert_eq!(c.objects[0].mask, c_parts, "the union of both parts");
    let want: Vec<u8> = c_parts
        .iter()
        .zip(&c_crowd)
        .map(|(&p, &cr)| {
            if cr {
                255
            } else if p {
                2
            } else {
                0
            }
        })
        .collect();
    assert_eq!(c.class_mask, want);

    assert!(matches!(
        coco.get(3),
        Err(DataError::IndexOutOfRange {
            index: 3,
            len: 3,
            ..
        })
    ));
}

#[test]
fn coco_missing_image_and_size_mismatch() {
    let t = TempDir::new("coco-missing-image");
    let mut doc = coco_doc();
    doc["images"][2]["file_name"] = json!("gone.jpg");
    doc["images"][0]["width"] = json!(C.1 + 1);
    let json_path = write_coco(&t, &doc);
    let coco = Coco::open(&json_path, t.0.join("images")).expect("images are read on get");

    let e = coco.get(1).expect_err("missing image file");
    assert!(matches!(e, DataError::Io { .. }), "{e}");
    assert_names(&e, &t.0.join("images").join("gone.jpg"));

    let e = coco.get(2).expect_err("c.png is 6x7, the JSON says 6x8");
    assert!(
        matches!(
            e,
            DataError::SizeMismatch {
                image_size: [6, 7],
                mask_size: [6, 8],
                ..
            }
        ),
        "{e}"
    );
    let msg = assert_names(&e, &json_path);
    assert!(msg.contains("c.png"), "{msg}");

    assert!(coco.get(0).is_ok(), "other images still load");
}

#[test]
fn coco_malformed_json_names_the_file_and_the_problem() {
    let t = TempDir::new("coco-malformed");
    let images = t.dir("images");
    let path = t.file("broken.json");
    std::fs::write(&path, "{\"images\": [{\"id\": 1,}], ").expect("write");
    let e = Coco::open(&path, &images).expect_err("malformed JSON");
    assert!(
        matches!(&e, DataError::Decode { format, .. } if format == "JSON"),
        "{e}"
    );
    let msg = assert_names(&e, &path);
    assert!(msg.contains("line 1 column"), "serde's position: {msg}");

    let missing = t.0.join("absent.json");
    let e = Coco::open(&missing, &images).expect_err("missing file");
    assert!(matches!(e, DataError::Io { .. }), "{e}");
    assert_names(&e, &missing);

    let e = Coco::open(&path, t.0.join("no_images"))
        .map(|_| ())
        .expect_err("bad JSON first");
    assert_names(&e, &path);
}

#[test]
fn coco_invalid_content_names_the_key() {
    let t = TempDir::new("coco-invalid");
    let images = t.dir("images");
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "missing categories",
            |d| {
                d.as_object_mut().expect("object").remove("categories");
            },
            "key `categories`",
        ),
        (
            "width as a string",
            |d| d["images"][1]["width"] = json!("16"),
            "key `images[1].width`: expected a non-negative integer, found a string",
        ),
        (
            "negative height",
            |d| d["images"][0]["height"] = json!(-6),
            "key `images[0].height`",
        ),
        (
            "duplicate image id",
            |d| d["images"][2]["id"] = json!(7),
            "id 7 appears twice",
        ),
        (
            "duplicate category id",
            |d| d["categories"][2]["id"] = json!(3),
            "id 3 appears twice",
        ),
        (
            "unknown image id",
            |d| d["annotations"][1]["image_id"] = json!(99),
            "key `annotations[1].image_id`",
        ),
        (
            "unknown category id",
            |d| d["annotations"][0]["category_id"] = json!(1),
            "key `annotations[0].category_id`",
        ),
        (
            "short bbox",
            |d| d["annotations"][0]["bbox"] = json!([1, 2, 3]),
            "key `annotations[0].bbox`",
        ),
        (
            "polygon of 2 points",
            |d| d["annotations"][0]["segmentation"] = json!([[1, 1, 5, 5]]),
            "key `annotations[0].segmentation[0]`",
        ),
        (
            "odd polygon",
            |d| d["annotations"][1]["segmentation"][1] = json!([1, 1, 5, 5, 3]),
            "key `annotations[1].segmentation[1]`",
        ),
        (
            "polygon value",
            |d| d["annotations"][0]["segmentation"][0][3] = json!("1"),
            "key `annotations[0].segmentation[0][3]`",
        ),
        (
            "RLE size",
            |d| d["annotations"][2]["segmentation"]["size"] = json!([16, 12]),
            "key `annotations[2].segmentation.size`",
        ),
        (
            "RLE sum",
            |d| d["annotations"][3]["segmentation"]["counts"] = json!([5, 3]),
            "key `annotations[3].segmentation.counts`",
        ),
        (
            "RLE character",
            |d| d["annotations"][2]["segmentation"]["counts"] = json!("00~"),
            "outside the RLE alphabet",
        ),
        (
            "segmentation type",
            |d| d["annotations"][0]["segmentation"] = json!("poly"),
            "key `annotations[0].segmentation`",
        ),
        (
            "iscrowd type",
            |d| d["annotations"][0]["iscrowd"] = json!("no"),
            "key `annotations[0].iscrowd`",
        ),
    ];
    // The unedited document is valid; each edit below breaks one thing.
    let path = t.file("ok.json");
    std::fs::write(&path, coco_doc().to_string()).expect("write");
    assert!(Coco::open(&path, &images).is_ok());

    for (i, (what, edit, expected)) in cases.into_iter().enumerate() {
        let mut doc = coco_doc();
        edit(&mut doc);
        let path = t.file(&format!("case{i}.json"));
        std::fs::write(&path, doc.to_string()).expect("write");
        let e = Coco::open(&path, &images).map(|_| ()).expect_err(what);
        let msg = assert_names(&e, &path);
        assert!(msg.contains(expected), "{what}: `{msg}` lacks `{expected}`");
    }
}

// ---------------------------------------------------------------------------------------
// load_batch and augment
// ---------------------------------------------------------------------------------------

#[test]
fn load_batch_is_independent_of_the_thread_count() {
    let t = TempDir::new("batch-threads");
    let json_path = write_coco(&t, &coco_doc());
    let coco = Coco::open(&json_path, t.0.join("images")).expect("valid COCO");
    let cfg = AugmentConfig {
        hflip: 0.5,
        scale: [0.6, 1.5],
        crop: Some([9, 11]),
        brightness: 0.3,
        contrast: 0.3,
        saturation: 0.3,
    };
    let indices = [2, 0, 1, 0, 2, 1, 0, 2];
    let seed = 1234;
    let one = load_batch(&coco, &indices, Some(&cfg), seed, 1).expect("loads");
    let three = load_batch(&coco, &indices, Some(&cfg), seed, 3).expect("loads");
    let auto = load_batch(&coco, &indices, Some(&cfg), seed, 0).expect("loads");
    let many = load_batch(&coco, &indices, Some(&cfg), seed, 64).expect("loads");
    assert_eq!(one.len(), indices.len());
    assert_eq!(one, three);
    assert_eq!(one, auto);
    assert_eq!(one, many);
    // Each item is `augment(get(index), sample_seed(seed, index))`: the same index gives the
    // same sample wherever it sits in the batch.
    for (s, &i) in one.iter().zip(&indices) {
        let want = augment(&coco.get(i).expect("readable"), &cfg, sample_seed(seed, i));
        assert_eq!(s, &want, "index {i}");
        assert_eq!(s.size, [9, 11], "cropped");
        assert_eq!(s.class_mask.len(), 99);
    }
    assert_eq!(one[1], one[3]);
    // The batch seed matters.
    let other_seed = load_batch(&coco, &indices, Some(&cfg), seed + 1, 3).expect("loads");
    assert_ne!(one, other_seed, "the seed matters");

    // Without augmentation the samples are returned as read.
    let plain = load_batch(&coco, &indices, None, seed, 3).expect("loads");
    for (s, &i) in plain.iter().zip(&indices) {
        assert_eq!(s, &coco.get(i).expect("readable"));
    }
    assert_eq!(
        load_batch(&coco, &[], Some(&cfg), seed, 3).expect("empty batch"),
        vec![]
    );

    let bad = AugmentConfig { hflip: 2.0, ..cfg };
    let e = load_batch(&coco, &indices, Some(&bad), seed, 3).expect_err("invalid config");
    assert!(
        matches!(e, DataError::Config(_)) && e.to_string().contains("hflip"),
        "{e}"
    );
}

#[test]
fn load_batch_reports_the_first_failing_index_for_any_thread_count() {
    let t = TempDir::new("batch-errors");
    write_png(&t.file("c/0_good.png"), 4, 4, 0);
    std::fs::write(t.file("c/1_bad.png"), b"garbage").expect("write");
    std::fs::write(t.file("c/2_bad.png"), b"more garbage").expect("write");
    write_png(&t.file("c/3_good.png"), 4, 4, 1);
    let ds = ImageFolder::open(&t.0).expect("valid ImageFolder");
    let indices = [0, 3, 2, 0, 3, 1, 0, 3];
    for threads in [1, 2, 3, 8] {
        let e = load_batch(&ds, &indices, None, 0, threads).expect_err("a corrupt image");
        assert_names(&e, &t.0.join("c").join("2_bad.png"));
    }
    let ok = load_batch(&ds, &[3, 0], Some(&AugmentConfig::default()), 5, 2).expect("loads");
    assert_eq!(
        ok.iter().map(|s| s.label).collect::<Vec<_>>(),
        [Some(0), Some(0)]
    );
}

/// The horizontal mirror of a sample: image, class mask and object masks flipped, boxes
/// mirrored (`x ↦ W - x`).
fn hflip(s: &Sample) -> Sample {
    let [h, w] = s.size;
    let flip_plane = |v: &mut [f32]| v.chunks_mut(w).for_each(<[f32]>::reverse);
    let mut image = s.image.clone();
    for plane in image.chunks_mut(h * w) {
        flip_plane(plane);
    }
    let mut class_mask = s.class_mask.clone();
    class_mask.chunks_mut(w).for_each(<[u8]>::reverse);
    let objects = s
        .objects
        .iter()
        .map(|o| {
            let mut o = o.clone();
            o.mask.chunks_mut(w).for_each(<[bool]>::reverse);
            let [x1, y1, x2, y2] = o.bbox;
            o.bbox = [w as f32 - x2, y1, w as f32 - x1, y2];
            o
        })
        .collect();
    Sample {
        image,
        class_mask,
        objects,
        ..s.clone()
    }
}

#[test]
fn augment_hflip_flips_image_masks_and_boxes_together() {
    let t = TempDir::new("augment-flip");
    let json_path = write_coco(&t, &coco_doc());
    let coco = Coco::open(&json_path, t.0.join("images")).expect("valid COCO");
    let s = coco.get(0).expect("readable");
    let always = AugmentConfig {
        hflip: 1.0,
        ..AugmentConfig::default()
    };
    let never = AugmentConfig {
        hflip: 0.0,
        ..AugmentConfig::default()
    };

    // Without resizing: exactly the mirror, pixel by pixel.
    for seed in 0..4 {
        let f = augment(&s, &always, seed);
        assert_eq!(f.size, s.size);
        let w = s.width();
        for y in 0..s.height() {
            for x in 0..w {
                assert_eq!(
                    rgb_at(&f, x, y),
                    rgb_at(&s, w - 1 - x, y),
                    "image ({x}, {y})"
                );
                assert_eq!(f.class_mask[y * w + x], s.class_mask[y * w + (w - 1 - x)]);
            }
        }
        assert_eq!(f, hflip(&s), "masks and boxes mirrored with the image");
        assert_eq!(f.objects[0].bbox, [6.0, 1.0, 14.0, 6.0], "x ↦ 16 - x");
        assert_eq!(
            augment(&s, &never, seed),
            s,
            "hflip 0 leaves the sample as is"
        );
    }

    // With a random resize, the flip commutes: flipping the unflipped result gives the flipped
    // one (the random draws do not depend on the flip probability).
    let scale = [0.55, 1.7];
    let mut resized = 0;
    for seed in 0..12 {
        let f = augment(
            &s,
            &AugmentConfig {
                scale,
                ..always.clone()
            },
            seed,
        );
        let n = augment(
            &s,
            &AugmentConfig {
                scale,
                ..never.clone()
            },
            seed,
        );
        resized += usize::from(n.size != s.size);
        assert_eq!(f, hflip(&n), "seed {seed}");
        for o in &f.objects {
            assert!(
                o.mask.iter().any(|&m| m),
                "objects with empty masks are dropped"
            );
        }
    }
    assert!(resized >= 6, "most of the 12 seeds resize ({resized})");

    // Through the whole pipeline (resize, flip, crop with padding), class and object masks
    // stay consistent: each object pixel carries the class of the last object (in file order)
    // covering it (255 for a crowd region), other pixels are background or 255 (padding), and
    // every box is its
    // mask's tight box.
    let full = AugmentConfig {
        hflip: 0.5,
        scale: [0.5, 1.5],
        crop: Some([14, 10]),
        ..AugmentConfig::default()
    };
    let mut flipped = 0;
    for seed in 0..16 {
        let a = augment(&s, &full, seed);
        assert_eq!(a.size, [14, 10]);
        let w = a.width();
        for (i, &c) in a.class_mask.iter().enumerate() {
            let top = a.objects.iter().rev().find(|o| o.mask[i]);
            match top {
                Some(o) if o.crowd => assert_eq!(c, 255, "seed {seed}: crowd pixel {i}"),
                Some(o) => assert_eq!(usize::from(c), o.class, "seed {seed}: pixel {i}"),
                None => assert!(c == 0 || c == 255, "seed {seed}: pixel {i} is {c}"),
            }
        }
        for o in &a.objects {
            let on: Vec<usize> = (0..o.mask.len()).filter(|&i| o.mask[i]).collect();
            let (xs, ys) = (on.iter().map(|i| i % w), on.iter().map(|i| i / w));
            let tight = [
                xs.clone().min().unwrap_or(0) as f32,
                ys.clone().min().unwrap_or(0) as f32,
                (xs.max().unwrap_or(0) + 1) as f32,
                (ys.max().unwrap_or(0) + 1) as f32,
            ];
            assert_eq!(o.bbox, tight, "seed {seed}: box of class {}", o.class);
        }
        // Class 3 starts left of class 1 in the original; a flip puts it to the right.
        if let [o3, o1] = a.objects.as_slice() {
            assert_eq!((o3.class, o1.class), (3, 1));
            if o3.bbox[0] > o1.bbox[0] {
                flipped += 1;
            }
        }
    }
    assert!(flipped > 0, "some of the 16 seeds flip");
}

#[test]
fn coco_raw_category_ids_are_torchvision_labels() {
    let t = TempDir::new("coco-raw");
    let json_path = write_coco(&t, &coco_doc());
    let coco = Coco::open(&json_path, t.0.join("images"))
        .expect("valid COCO")
        .with_raw_category_ids()
        .expect("ids below 255");
    let names = coco.class_names();
    assert_eq!(names.len(), 91);
    assert_eq!(
        (
            names[0].as_str(),
            names[3].as_str(),
            names[17].as_str(),
            names[90].as_str()
        ),
        ("background", "car", "cat", "toothbrush")
    );
    assert!(
        names.iter().filter(|n| n.as_str() == "N/A").count() == 87,
        "{names:?}"
    );
    // Image 2 (a.png) holds a toothbrush (id 90), a car (id 3) and a crowd of cats (17).
    let a = coco.get(0).expect("image 2 is the first by id");
    let classes: Vec<usize> = a.objects.iter().map(|o| o.class).collect();
    assert_eq!(classes, [90, 3, 17]);
    assert!(a.objects[2].crowd);
    assert!(a.class_mask.contains(&90) && a.class_mask.contains(&3));
    assert!(coco.check_classes(91).is_ok());
    let e = coco.check_classes(81).unwrap_err().to_string();
    assert!(e.contains("up to 90") && e.contains("81"), "{e}");
}
