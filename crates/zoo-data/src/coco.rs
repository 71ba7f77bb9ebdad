//! COCO instance annotations (`instances_*.json`) over a directory of images.
//!
//! Reads `images` (`id`, `file_name`, `width`, `height`), `annotations` (`image_id`,
//! `category_id`, `bbox` `[x, y, w, h]`, `segmentation` as polygons or RLE, optional
//! `iscrowd`) and `categories` (`id`, `name`). Category ids are remapped to contiguous
//! `1..=K` in sorted id order (0 = background), images are ordered by id (as torchvision's
//! `CocoDetection`).
//!
//! Masks follow pycocotools exactly: polygons are rasterised by a port of `maskApi.c`'s
//! `rleFrPoly` (×5 upsampled boundary, column crossings at pixel centres), several polygons
//! of one annotation are united (`merge`), RLE comes as uncompressed `counts` lists or the
//! compressed strings of `rleToString`. [`Rle`] exposes these routines. The JSON's floats are
//! parsed exactly as Python's `json` does ([`parse_json`]): pycocotools' rounding of polygon
//! coordinates can turn a last-bit difference into a pixel.

use std::cell::Cell;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::dataset::ImageDataset;
use crate::decode::read_rgb;
use crate::error::DataError;
use crate::sample::{Object, Sample};

/// A run-length encoded binary mask in COCO's layout: column-major (Fortran order), counts
/// alternate runs of 0s and 1s starting with 0s (the first count may be 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rle {
    /// Mask height.
    pub h: usize,
    /// Mask width.
    pub w: usize,
    /// Run lengths; they sum to `h·w` for a well-formed mask.
    pub counts: Vec<u32>,
}

/// `(int)` of a double as x86-64 computes it (`cvttsd2si`): truncation toward zero, and
/// `INT_MIN` for NaN or values out of range — what pycocotools' C code gets on that platform.
fn c_int(v: f64) -> i32 {
    if v.is_nan() || v >= 2_147_483_648.0 || v <= -2_147_483_649.0 {
        i32::MIN
    } else {
        v as i32
    }
}

impl Rle {
    /// Rasterises one polygon `[x0, y0, x1, y1, …]` (pixel coordinates, pixel `(c, r)` covers
    /// `[c, c+1) × [r, r+1)`) onto an `h × w` grid exactly as pycocotools' `rleFrPoly`.
    pub fn from_polygon(xy: &[f64], h: usize, w: usize) -> Rle {
        let k = xy.len() / 2;
        let scale = 5.0f64;
        if k == 0 {
            return Rle {
                h,
                w,
                counts: vec![(h * w) as u32],
            };
        }
        // Upsample and get discrete points densely along the entire boundary.
        let mut x: Vec<i32> = (0..k).map(|j| c_int(scale * xy[2 * j] + 0.5)).collect();
        let mut y: Vec<i32> = (0..k).map(|j| c_int(scale * xy[2 * j + 1] + 0.5)).collect();
        x.push(x[0]);
        y.push(y[0]);
        let mut u: Vec<i32> = Vec::new();
        let mut v: Vec<i32> = Vec::new();
        for j in 0..k {
            let (mut xs, mut xe, mut ys, mut ye) = (x[j], x[j + 1], y[j], y[j + 1]);
            let dx = xe.wrapping_sub(xs).wrapping_abs();
            let dy = ys.wrapping_sub(ye).wrapping_abs();
            let flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
            if flip {
                std::mem::swap(&mut xs, &mut xe);
                std::mem::swap(&mut ys, &mut ye);
            }
            let s = if dx >= dy {
                f64::from(ye - ys) / f64::from(dx)
            } else {
                f64::from(xe - xs) / f64::from(dy)
            };
            if dx >= dy {
                for d in 0..=dx {
                    let t = if flip { dx - d } else { d };
                    u.push(t + xs);
                    v.push(c_int(f64::from(ys) + s * f64::from(t) + 0.5));
                }
            } else {
                for d in 0..=dy {
                    let t = if flip { dy - d } else { d };
                    v.push(t + ys);
                    u.push(c_int(f64::from(xs) + s * f64::from(t) + 0.5));
                }
            }
        }
        // Get points along the y-boundary and downsample.
        let mut a: Vec<u32> = Vec::new();
        for j in 1..u.len() {
            if u[j] == u[j - 1] {
                continue;
            }
            let xd = f64::from(if u[j] < u[j - 1] { u[j] } else { u[j] - 1 });
            let xd = (xd + 0.5) / scale - 0.5;
            if xd.floor() != xd || xd < 0.0 || xd > w as f64 - 1.0 {
                continue;
            }
            let yd = f64::from(v[j].min(v[j - 1]));
            let mut yd = (yd + 0.5) / scale - 0.5;
            if yd < 0.0 {
                yd = 0.0;
            } else if yd > h as f64 {
                yd = h as f64;
            }
            let yd = yd.ceil();
            let (xi, yi) = (xd as i64, yd as i64);
            a.push((xi * h as i64 + yi) as u32);
        }
        // Compute the RLE encoding from the y-boundary points.
        a.push((h * w) as u32);
        a.sort_unstable();
        let mut p = 0u32;
        for aj in a.iter_mut() {
            let t = *aj;
            *aj = aj.wrapping_sub(p);
            p = t;
        }
        let mut b = vec![a[0]];
        let mut j = 1;
        while j < a.len() {
            if a[j] > 0 {
                b.push(a[j]);
                j += 1;
            } else {
                j += 1;
                if j < a.len() {
                    if let Some(last) = b.last_mut() {
                        *last = last.wrapping_add(a[j]);
                    }
                    j += 1;
                }
            }
        }
        Rle { h, w, counts: b }
    }

    /// The union of several polygons (pycocotools' `frPyObjects` then `merge`).
    pub fn from_polygons(polygons: &[Vec<f64>], h: usize, w: usize) -> Rle {
        let mut mask = vec![false; h * w];
        for p in polygons {
            for (m, on) in mask.iter_mut().zip(Rle::from_polygon(p, h, w).decode()) {
                *m |= on;
            }
        }
        Rle::encode(&mask, h, w)
    }

    /// Encodes a row-major `h·w` mask.
    ///
    /// # Panics
    /// If `mask.len() != h·w`.
    pub fn encode(mask: &[bool], h: usize, w: usize) -> Rle {
        assert_eq!(
            mask.len(),
            h * w,
            "Rle::encode: mask has {} values, expected h·w = {}",
            mask.len(),
            h * w
        );
        let mut counts = Vec::new();
        let mut cur = false;
        let mut run = 0u32;
        for c in 0..w {
            for r in 0..h {
                let v = mask[r * w + c];
                if v != cur {
                    counts.push(run);
                    run = 0;
                    cur = v;
                }
                run += 1;
            }
        }
        counts.push(run);
        Rle { h, w, counts }
    }

    /// Decodes to a row-major `h·w` mask. Runs past `h·w` are cut off; a short RLE leaves the
    /// rest 0 (see [`Rle::total`] to check).
    pub fn decode(&self) -> Vec<bool> {
        let (h, w) = (self.h, self.w);
        let n = h * w;
        let mut mask = vec![false; n];
        let mut i = 0usize;
        let mut on = false;
        for &c in &self.counts {
            let end = (i + c as usize).min(n);
            if on {
                for k in i..end {
                    mask[(k % h) * w + k / h] = true;
                }
            }
            i = end;
            on = !on;
        }
        mask
    }

    /// Sum of the counts (`h·w` for a well-formed RLE).
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    /// Parses pycocotools' compressed string (`rleFrString`: LEB128-like, 6 bits per
    /// character in ASCII 48..=111, counts from the fourth on stored as differences).
    ///
    /// # Errors
    /// A character outside 48..=111 or a string ending mid-number (the message says which).
    pub fn from_compressed(s: &str, h: usize, w: usize) -> Result<Rle, String> {
        let bytes = s.as_bytes();
        let mut counts: Vec<u32> = Vec::new();
        let mut p = 0;
        while p < bytes.len() {
            let mut x: i64 = 0;
            let mut k = 0u32;
            loop {
                let Some(&ch) = bytes.get(p) else {
                    return Err(format!("string ends inside a number at character {p}"));
                };
                if !(48..=111).contains(&ch) {
                    return Err(format!(
                        "character {:?} at {p} outside the RLE alphabet (ASCII 48..=111)",
                        ch as char
                    ));
                }
                if k >= 12 {
                    return Err(format!("number too long at character {p}"));
                }
                let c = i64::from(ch) - 48;
                x |= (c & 0x1f) << (5 * k);
                let more = c & 0x20 != 0;
                p += 1;
                k += 1;
                if !more {
                    if c & 0x10 != 0 {
                        x |= -1i64 << (5 * k);
                    }
                    break;
                }
            }
            let m = counts.len();
            if m > 2 {
                x += i64::from(counts[m - 2]);
            }
            counts.push(x as u32);
        }
        Ok(Rle { h, w, counts })
    }

    /// pycocotools' compressed string (`rleToString`).
    pub fn to_compressed(&self) -> String {
        let mut s = String::new();
        for (i, &c) in self.counts.iter().enumerate() {
            let mut x = i64::from(c);
            if i > 2 {
                x -= i64::from(self.counts[i - 2]);
            }
            loop {
                let mut c = x & 0x1f;
                x >>= 5;
                let more = if c & 0x10 != 0 { x != -1 } else { x != 0 };
                if more {
                    c |= 0x20;
                }
                s.push((c + 48) as u8 as char);
                if !more {
                    break;
                }
            }
        }
        s
    }
}

/// Parses a JSON document like `serde_json::from_slice::<Value>`, except that every number
/// with a fraction or an exponent is converted from its text by Rust's correctly rounded
/// `f64::from_str`, as Python's `json` module (and so pycocotools' `COCO`) does.
///
/// serde_json's default float parser (this crate does not turn on its `float_roundtrip`
/// feature, which would change serde_json for every crate built alongside) can be 1 ULP off
/// for numbers of 16 or more significant digits, such as `9.299999999999999` (the double
/// just below 9.3, as Python writes it); `rleFrPoly`'s `(int)(5·x + 0.5)` turns that ULP
/// into a pixel. Integers are exact either way.
///
/// # Errors
/// serde_json's syntax errors (with line and column).
pub fn parse_json(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let numbers = NumberCursor {
        bytes,
        pos: Cell::new(0),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = ExactValue(&numbers).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Walks a JSON document's numbers in document order, skipping strings.
struct NumberCursor<'t> {
    bytes: &'t [u8],
    /// Where the search for the next number starts (always outside a string).
    pos: Cell<usize>,
}

impl NumberCursor<'_> {
    /// The text of the next number (for a valid document: the number serde_json is at).
    fn next_number(&self) -> Option<&str> {
        let bytes = self.bytes;
        let mut i = self.pos.get();
        let mut in_string = false;
        while i < bytes.len() {
            let b = bytes[i];
            if in_string {
                match b {
                    b'\\' => i += 1,
                    b'"' => in_string = false,
                    _ => {}
                }
            } else if b == b'"' {
                in_string = true;
            } else if b == b'-' || b.is_ascii_digit() {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                self.pos.set(i);
                return std::str::from_utf8(&bytes[start..i]).ok();
            }
            i += 1;
        }
        self.pos.set(i);
        None
    }
}

/// Builds a [`Value`] from serde_json's events, re-reading floats from their text.
#[derive(Clone, Copy)]
struct ExactValue<'a, 't>(&'a NumberCursor<'t>);

impl<'de> DeserializeSeed<'de> for ExactValue<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ExactValue<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        self.0.next_number();
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        self.0.next_number();
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        let exact = self
            .0
            .next_number()
            .and_then(|t| t.parse::<f64>().ok())
            // A safety net: serde_json's value is never more than a few ULPs off.
            .filter(|x| (x - v).abs() <= 4.0 * f64::EPSILON * v.abs());
        Ok(Value::from(exact.unwrap_or(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let v = map.next_value_seed(self)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// An annotation's segmentation as stored in the JSON.
#[derive(Debug, Clone)]
enum Segmentation {
    Polygons(Vec<Vec<f64>>),
    Rle(Rle),
}

#[derive(Debug, Clone)]
struct Annotation {
    /// Class id: contiguous 1..=K, or the raw category id ([`Coco::with_raw_category_ids`]).
    class: usize,
    /// `[x1, y1, x2, y2]`.
    bbox: [f32; 4],
    crowd: bool,
    /// The annotation's `area`, if it states one.
    area: Option<f32>,
    segmentation: Segmentation,
}

#[derive(Debug, Clone)]
struct CocoImage {
    id: u64,
    file_name: String,
    size: [usize; 2],
    annotations: Vec<Annotation>,
}

/// A COCO instances dataset.
#[derive(Debug, Clone)]
pub struct Coco {
    annotation_file: PathBuf,
    image_dir: PathBuf,
    class_names: Vec<String>,
    category_ids: Vec<u64>,
    images: Vec<CocoImage>,
}

/// Reads typed values out of a JSON document, naming `key` paths in errors.
struct Json<'a> {
    path: &'a Path,
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Json<'_> {
    fn err(&self, key: &str, expected: impl Into<String>) -> DataError {
        DataError::Json {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            expected: expected.into(),
        }
    }

    fn wrong(&self, key: &str, expected: &str, found: &Value) -> DataError {
        self.err(key, format!("{expected}, found {}", describe(found)))
    }

    /// `obj[key]`, with `at` the path of `obj`.
    fn field<'v>(
        &self,
        obj: &'v Value,
        at: &str,
        key: &str,
        expected: &str,
    ) -> Result<(&'v Value, String), DataError> {
        let full = if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        };
        let map = obj.as_object().ok_or_else(|| {
            self.wrong(if at.is_empty() { "(root)" } else { at }, "an object", obj)
        })?;
        match map.get(key) {
            Some(v) => Ok((v, full)),
            None => Err(self.err(&full, format!("{expected} (key missing)"))),
        }
    }

    fn array<'v>(&self, v: &'v Value, key: &str) -> Result<&'v Vec<Value>, DataError> {
        v.as_array().ok_or_else(|| self.wrong(key, "an array", v))
    }

    fn uint(&self, v: &Value, key: &str) -> Result<u64, DataError> {
        v.as_u64()
            .ok_or_else(|| self.wrong(key, "a non-negative integer", v))
    }

    fn number(&self, v: &Value, key: &str) -> Result<f64, DataError> {
        v.as_f64().ok_or_else(|| self.wrong(key, "a number", v))
    }

    fn string<'v>(&self, v: &'v Value, key: &str) -> Result<&'v str, DataError> {
        v.as_str().ok_or_else(|| self.wrong(key, "a string", v))
    }

    fn field_uint(&self, obj: &Value, at: &str, key: &str) -> Result<u64, DataError> {
        let (v, full) = self.field(obj, at, key, "a non-negative integer")?;
        self.uint(v, &full)
    }

    fn field_usize(&self, obj: &Value, at: &str, key: &str) -> Result<usize, DataError> {
        let (v, full) = self.field(obj, at, key, "a non-negative integer")?;
        let n = self.uint(v, &full)?;
        usize::try_from(n).map_err(|_| self.err(&full, "an integer that fits in usize"))
    }

    fn field_string<'v>(&self, obj: &'v Value, at: &str, key: &str) -> Result<&'v str, DataError> {
        let (v, full) = self.field(obj, at, key, "a string")?;
        self.string(v, &full)
    }

    fn numbers(&self, v: &Value, key: &str) -> Result<Vec<f64>, DataError> {
        self.array(v, key)?
            .iter()
            .enumerate()
            .map(|(i, x)| self.number(x, &format!("{key}[{i}]")))
            .collect()
    }
}

impl Coco {
    /// Parses `annotation_json` and checks every reference in it (image ids, category ids,
    /// segmentation formats and RLE sizes); images are read from `image_dir/<file_name>`
    /// on [`get`](ImageDataset::get).
    ///
    /// # Errors
    /// Unreadable or malformed JSON; a missing key or a value of the wrong type (the error
    /// names the key, e.g. `images[3].width`); an annotation whose `image_id` or
    /// `category_id` is unknown; duplicate ids; an RLE whose size differs from its image's.
    pub fn open(
        annotation_json: impl AsRef<Path>,
        image_dir: impl AsRef<Path>,
    ) -> Result<Self, DataError> {
        let path = annotation_json.as_ref().to_path_buf();
        let image_dir = image_dir.as_ref().to_path_buf();
        let text = std::fs::read(&path)
            .map_err(|e| DataError::io(&path, "cannot read COCO annotation file", e))?;
        let doc = parse_json(&text).map_err(|e| DataError::Decode {
            path: path.clone(),
            format: "JSON".to_string(),
            message: e.to_string(),
        })?;
        let meta = std::fs::metadata(&image_dir)
            .map_err(|e| DataError::io(&image_dir, "cannot open COCO image directory", e))?;
        if !meta.is_dir() {
            return Err(DataError::invalid(
                &image_dir,
                "expected a directory of images",
            ));
        }
        let j = Json { path: &path };

        // Categories, remapped to 1..=K in sorted id order.
        let (cats, _) = j.field(&doc, "", "categories", "an array")?;
        let cats = j.array(cats, "categories")?;
        let mut categories: Vec<(u64, String)> = Vec::with_capacity(cats.len());
        for (i, c) in cats.iter().enumerate() {
            let at = format!("categories[{i}]");
            let id = j.field_uint(c, &at, "id")?;
            let name = j.field_string(c, &at, "name")?;
            categories.push((id, name.to_string()));
        }
        categories.sort_by_key(|c| c.0);
        if let Some(w) = categories.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(j.err(
                "categories",
                format!("unique ids (id {} appears twice)", w[0].0),
            ));
        }
        if categories.len() > 254 {
            return Err(j.err(
                "categories",
                format!(
                    "at most 254 categories (class ids must fit u8 below 255), found {}",
                    categories.len()
                ),
            ));
        }
        let category_ids: Vec<u64> = categories.iter().map(|c| c.0).collect();

        // Images, ordered by id.
        let (imgs, _) = j.field(&doc, "", "images", "an array")?;
        let imgs = j.array(imgs, "images")?;
        let mut images: Vec<CocoImage> = Vec::with_capacity(imgs.len());
        for (i, im) in imgs.iter().enumerate() {
            let at = format!("images[{i}]");
            images.push(CocoImage {
                id: j.field_uint(im, &at, "id")?,
                file_name: j.field_string(im, &at, "file_name")?.to_string(),
                size: [
                    j.field_usize(im, &at, "height")?,
                    j.field_usize(im, &at, "width")?,
                ],
                annotations: Vec::new(),
            });
        }
        images.sort_by_key(|im| im.id);
        if let Some(w) = images.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(j.err(
                "images",
                format!("unique ids (id {} appears twice)", w[0].id),
            ));
        }

        // Annotations, attached to their images in file order.
        let (anns, _) = j.field(&doc, "", "annotations", "an array")?;
        let anns = j.array(anns, "annotations")?;
        for (i, a) in anns.iter().enumerate() {
            let at = format!("annotations[{i}]");
            let image_id = j.field_uint(a, &at, "image_id")?;
            let img = images
                .binary_search_by_key(&image_id, |im| im.id)
                .map_err(|_| {
                    j.err(
                        &format!("{at}.image_id"),
                        format!("the id of an entry of `images` (no image has id {image_id})"),
                    )
                })?;
            let category_id = j.field_uint(a, &at, "category_id")?;
            let class = category_ids.binary_search(&category_id).map_err(|_| {
                j.err(
                    &format!("{at}.category_id"),
                    format!(
                        "the id of an entry of `categories` (no category has id {category_id})"
                    ),
                )
            })? + 1;
            let (bbox, bkey) = j.field(a, &at, "bbox", "an array of 4 numbers [x, y, w, h]")?;
            let b = j.numbers(bbox, &bkey)?;
            if b.len() != 4 {
                return Err(j.err(
                    &bkey,
                    format!(
                        "an array of 4 numbers [x, y, w, h], found {} values",
                        b.len()
                    ),
                ));
            }
            let bbox = [
                b[0] as f32,
                b[1] as f32,
                (b[0] + b[2]) as f32,
                (b[1] + b[3]) as f32,
            ];
            let crowd = match a.get("iscrowd") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(c)) => *c,
                Some(v) => j.uint(v, &format!("{at}.iscrowd"))? != 0,
            };
            let area = match a.get("area") {
                None | Some(Value::Null) => None,
                Some(v) => Some(j.number(v, &format!("{at}.area"))? as f32),
            };
            let (seg, skey) = j.field(
                a,
                &at,
                "segmentation",
                "polygons [[x, y, …], …] or an RLE object",
            )?;
            let [h, w] = images[img].size;
            let segmentation = match seg {
                Value::Array(polys) => {
                    let mut out = Vec::with_capacity(polys.len());
                    for (p, poly) in polys.iter().enumerate() {
                        let pkey = format!("{skey}[{p}]");
                        let xy = j.numbers(poly, &pkey)?;
                        if xy.len() < 6 || xy.len() % 2 != 0 {
                            return Err(j.err(
                                &pkey,
                                format!("a polygon of at least 3 points [x0, y0, x1, y1, …], found {} numbers", xy.len()),
                            ));
                        }
                        out.push(xy);
                    }
                    Segmentation::Polygons(out)
                }
                Value::Object(_) => {
                    let (size, zkey) = j.field(seg, &skey, "size", "[height, width]")?;
                    let size = j.numbers(size, &zkey)?;
                    if size != [h as f64, w as f64] {
                        return Err(j.err(
                            &zkey,
                            format!("[{h}, {w}] (the size of image id {image_id}), found {size:?}"),
                        ));
                    }
                    let (counts, ckey) = j.field(
                        seg,
                        &skey,
                        "counts",
                        "a list of run lengths or an RLE string",
                    )?;
                    let rle = match counts {
                        Value::String(s) => Rle::from_compressed(s, h, w)
                            .map_err(|m| j.err(&ckey, format!("a pycocotools RLE string: {m}")))?,
                        Value::Array(cs) => Rle {
                            h,
                            w,
                            counts: cs
                                .iter()
                                .enumerate()
                                .map(|(c, v)| {
                                    let ck = format!("{ckey}[{c}]");
                                    j.uint(v, &ck).and_then(|n| {
                                        u32::try_from(n)
                                            .map_err(|_| j.err(&ck, "a run length below 2^32"))
                                    })
                                })
                                .collect::<Result<_, _>>()?,
                        },
                        other => {
                            return Err(j.wrong(
                                &ckey,
                                "a list of run lengths or an RLE string",
                                other,
                            ));
                        }
                    };
                    if rle.total() != (h * w) as u64 {
                        return Err(j.err(
                            &ckey,
                            format!(
                                "run lengths summing to height·width = {}, found {}",
                                h * w,
                                rle.total()
                            ),
                        ));
                    }
                    Segmentation::Rle(rle)
                }
                other => {
                    return Err(j.wrong(&skey, "polygons [[x, y, …], …] or an RLE object", other));
                }
            };
            images[img].annotations.push(Annotation {
                class,
                bbox,
                crowd,
                area,
                segmentation,
            });
        }

        let mut class_names = vec!["background".to_string()];
        class_names.extend(categories.into_iter().map(|c| c.1));
        Ok(Self {
            annotation_file: path,
            image_dir,
            class_names,
            category_ids,
            images,
        })
    }

    /// The annotation file.
    pub fn annotation_file(&self) -> &Path {
        &self.annotation_file
    }

    /// The image directory.
    pub fn image_dir(&self) -> &Path {
        &self.image_dir
    }

    /// COCO category id of each contiguous class `1..=K` (`category_ids()[c - 1]`).
    pub fn category_ids(&self) -> &[u64] {
        &self.category_ids
    }

    /// The same split with the raw COCO category ids as class ids (torchvision's 91-index
    /// labels, which its COCO-trained detection weights predict: `person` = 1, …,
    /// `toothbrush` = 90), instead of the contiguous `1..=K`; ids without a category are
    /// named `N/A`, as torchvision's `_COCO_CATEGORIES`.
    ///
    /// # Errors
    /// A category id above 254 (class ids are `u8` below the ignore value 255).
    pub fn with_raw_category_ids(mut self) -> Result<Self, DataError> {
        let max = self.category_ids.iter().copied().max().unwrap_or(0);
        if max > 254 {
            return Err(DataError::invalid(
                &self.annotation_file,
                format!("category id {max} is above 254: raw ids cannot be class ids"),
            ));
        }
        let mut names = vec!["N/A".to_string(); max as usize + 1];
        names[0] = "background".into();
        for (i, &id) in self.category_ids.iter().enumerate() {
            names[id as usize] = self.class_names[i + 1].clone();
        }
        for image in &mut self.images {
            for a in &mut image.annotations {
                a.class = self.category_ids[a.class - 1] as usize;
            }
        }
        self.category_ids = (1..=max).collect();
        self.class_names = names;
        Ok(self)
    }

    /// COCO image ids, in dataset order (sorted).
    pub fn image_ids(&self) -> Vec<u64> {
        self.images.iter().map(|im| im.id).collect()
    }

    /// Path of sample `index`'s image, `None` past the end.
    pub fn image_path(&self, index: usize) -> Option<PathBuf> {
        self.images
            .get(index)
            .map(|im| self.image_dir.join(&im.file_name))
    }
}

impl ImageDataset for Coco {
    fn len(&self) -> usize {
        self.images.len()
    }

    /// The image as RGB `[3, H, W]`; `objects` = the annotations in file order (class
    /// `1..=K`, `bbox` = the annotation's `[x, y, w, h]` as `[x1, y1, x2, y2]`, mask from its
    /// segmentation, `iscrowd` as [`Object::crowd`], `area` kept); `class_mask` painted with every annotation in file order
    /// (later ones on top), crowd regions as 255. No label.
    fn get(&self, index: usize) -> Result<Sample, DataError> {
        let im = self
            .images
            .get(index)
            .ok_or_else(|| DataError::IndexOutOfRange {
                path: self.annotation_file.clone(),
                index,
                len: self.images.len(),
            })?;
        let image_path = self.image_dir.join(&im.file_name);
        let (image, size) = read_rgb(&image_path)?;
        if size != im.size {
            return Err(DataError::SizeMismatch {
                image: image_path,
                image_size: size,
                mask: self.annotation_file.clone(),
                mask_size: im.size,
            });
        }
        let [h, w] = size;
        let mut class_mask = vec![0u8; h * w];
        let mut objects = Vec::new();
        for a in &im.annotations {
            let mask = match &a.segmentation {
                Segmentation::Polygons(p) => Rle::from_polygons(p, h, w).decode(),
                Segmentation::Rle(r) => r.decode(),
            };
            let value = if a.crowd { 255 } else { a.class as u8 };
            for (c, &m) in class_mask.iter_mut().zip(&mask) {
                if m {
                    *c = value;
                }
            }
            objects.push(Object {
                class: a.class,
                bbox: a.bbox,
                mask,
                crowd: a.crowd,
                area: a.area,
            });
        }
        Ok(Sample {
            image,
            size,
            class_mask,
            objects,
            label: None,
        })
    }

    fn describe(&self, index: usize) -> String {
        self.image_path(index).map_or_else(
            || format!("sample {index}"),
            |p| format!("{} (in {})", p.display(), self.annotation_file.display()),
        )
    }

    /// The categories are classes `1..=K` (0 is the background).
    fn check_classes(&self, num_classes: usize) -> Result<(), DataError> {
        let needed = self.class_names.len();
        if needed > num_classes {
            return Err(DataError::invalid(
                &self.annotation_file,
                format!(
                    "class ids up to {}, i.e. {needed} classes with the background, but the model has {num_classes}",
                    needed - 1
                ),
            ));
        }
        Ok(())
    }

    fn class_names(&self) -> Vec<String> {
        self.class_names.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_json_reads_floats_exactly() {
        // The doubles just below 9.3 and 1.1, which serde_json's default parser reads as 9.3
        // and 1.1 (1 ULP high).
        for text in [
            "9.299999999999999",
            "1.0999999999999999",
            "-2.3e-7",
            "1e21",
            "0.1",
        ] {
            let want: f64 = text.parse().expect("valid float");
            let doc = format!(r#"{{"a": [1, "x\"2.5", {text}], "b": -4}}"#);
            let v = parse_json(doc.as_bytes()).expect("valid JSON");
            assert_eq!(v["a"][2].as_f64(), Some(want), "{text}");
            assert_eq!(v["a"][1], "x\"2.5", "numbers inside strings are skipped");
            assert_eq!((v["a"][0].as_u64(), v["b"].as_i64()), (Some(1), Some(-4)));
        }
    }

    #[test]
    fn parse_json_is_serde_json_otherwise() {
        // Escapes and digits inside strings, u64::MAX.
        let doc = r#"{"images": [{"id": 3, "file_name": "a \\ \"b\" 7.jpg", "w": 2.5e1}],
                      "x": [true, false, null, -0.5, 18446744073709551615]}"#;
        let want: Value = serde_json::from_str(doc).expect("valid JSON");
        assert_eq!(parse_json(doc.as_bytes()).expect("valid JSON"), want);
        // An integer beyond u64 becomes the nearest double (Python: 1.2345678901234568e+20).
        let v = parse_json(b"[123456789012345678901]").expect("valid JSON");
        assert_eq!(v[0].as_f64(), Some(1.2345678901234568e20));
        for bad in ["{\"a\": [1, 2}", "[1] x", "", "[1.5e]"] {
            let e = parse_json(bad.as_bytes()).expect_err(bad);
            let s = serde_json::from_str::<Value>(bad).expect_err(bad);
            assert_eq!(
                e.to_string(),
                s.to_string(),
                "same syntax errors as serde_json"
            );
        }
    }

    #[test]
    fn compressed_string_roundtrip() {
        let rle = Rle {
            h: 7,
            w: 9,
            counts: vec![0, 5, 3, 20, 1, 1, 30, 3],
        };
        let s = rle.to_compressed();
        assert_eq!(Rle::from_compressed(&s, 7, 9).expect("valid string"), rle);
        assert!(Rle::from_compressed("0!", 7, 9).is_err());
        assert!(Rle::from_compressed("P", 7, 9).is_err(), "ends mid-number");
    }

    #[test]
    fn encode_decode_column_major() {
        // 2x3, row-major: [1 0 0; 1 1 0] → column-major 1,1 | 0,1 | 0,0 → counts 0,2,1,1,2.
        let m = [true, false, false, true, true, false];
        let rle = Rle::encode(&m, 2, 3);
        assert_eq!(rle.counts, vec![0, 2, 1, 1, 2]);
        assert_eq!(rle.decode(), m);
    }

    #[test]
    fn axis_aligned_square_polygon() {
        // Square with corners on pixel edges 1..4 covers pixels 1..=3 in both axes.
        let rle = Rle::from_polygon(&[1.0, 1.0, 4.0, 1.0, 4.0, 4.0, 1.0, 4.0], 6, 6);
        let m = rle.decode();
        for r in 0..6 {
            for c in 0..6 {
                let inside = (1..=3).contains(&r) && (1..=3).contains(&c);
                assert_eq!(m[r * 6 + c], inside, "pixel ({r}, {c})");
            }
        }
    }
}
