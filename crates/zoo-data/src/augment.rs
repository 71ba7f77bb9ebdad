//! Seeded training augmentations (random resize, horizontal flip, random crop with padding,
//! colour jitter), a deterministic [`resize`] for evaluation, and [`load_batch`], which
//! decodes and augments a batch on several threads.
//!
//! Every geometric step is applied alike to the image (bilinear), the class mask (nearest)
//! and each object's mask (nearest); boxes are recomputed from the transformed masks.
//! Results depend only on `(sample, config, seed)`: the random numbers come from a SplitMix64
//! generator seeded per call, with no global state.

use serde::{Deserialize, Serialize};

use crate::dataset::ImageDataset;
pub use crate::error::AugmentConfigError;
use crate::error::DataError;
use crate::rng::SplitMix64;
use crate::sample::{Object, Sample};

/// Augmentation settings. Unknown keys are rejected; missing keys take the defaults (flip
/// with probability 0.5, everything else off).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Probability of a horizontal flip, in `[0, 1]`.
    pub hflip: f32,
    /// Random resize: each sample is scaled by a factor drawn uniformly from
    /// `[scale[0], scale[1]]` (both sides, aspect kept). `[1, 1]` = off.
    pub scale: [f32; 2],
    /// Random crop to `[H, W]` after resizing; a side shorter than the crop is first padded
    /// at the bottom/right (image 0, class mask 255, object masks empty). `None` = off.
    pub crop: Option<[usize; 2]>,
    /// Brightness jitter: the image is multiplied by a factor from `[max(0, 1-b), 1+b]`
    /// (torchvision `ColorJitter`). 0 = off.
    pub brightness: f32,
    /// Contrast jitter: blend with the image's mean grey by a factor from
    /// `[max(0, 1-c), 1+c]`. 0 = off.
    pub contrast: f32,
    /// Saturation jitter: blend with each pixel's grey by a factor from
    /// `[max(0, 1-s), 1+s]`. 0 = off.
    pub saturation: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            hflip: 0.5,
            scale: [1.0, 1.0],
            crop: None,
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
        }
    }
}

impl AugmentConfig {
    /// Checks every field's range.
    ///
    /// # Errors
    /// The first out-of-range field, named.
    pub fn validate(&self) -> Result<(), AugmentConfigError> {
        let err = |field, message: String| Err(AugmentConfigError { field, message });
        if !(0.0..=1.0).contains(&self.hflip) {
            return err(
                "hflip",
                format!("expected a probability in [0, 1], found {}", self.hflip),
            );
        }
        let [lo, hi] = self.scale;
        if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
            return err(
                "scale",
                format!("expected [min, max] with 0 < min <= max, both finite, found [{lo}, {hi}]"),
            );
        }
        if let Some([h, w]) = self.crop
            && (h == 0 || w == 0)
        {
            return err(
                "crop",
                format!("expected a positive [H, W], found [{h}, {w}]"),
            );
        }
        for (field, v) in [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("saturation", self.saturation),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return err(field, format!("expected a finite value >= 0, found {v}"));
            }
        }
        Ok(())
    }
}

/// The augmentation seed of dataset item `index` under batch seed `seed`, as
/// [`load_batch`] uses it: it depends on the item, not on its position in a batch.
pub fn sample_seed(seed: u64, index: usize) -> u64 {
    let mut r = SplitMix64(seed ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    r.next_u64()
}

/// Bilinear resize of `c` planes `[c, h, w]` to `[c, oh, ow]` (half-pixel centres, as
/// PyTorch's `align_corners=False`, no antialiasing).
fn resize_bilinear(src: &[f32], c: usize, [h, w]: [usize; 2], [oh, ow]: [usize; 2]) -> Vec<f32> {
    if [h, w] == [oh, ow] {
        return src.to_vec();
    }
    let axis = |n: usize, on: usize| -> Vec<(usize, usize, f32)> {
        let s = n as f64 / on as f64;
        (0..on)
            .map(|o| {
                let x = ((o as f64 + 0.5) * s - 0.5).max(0.0);
                let i0 = (x.floor() as usize).min(n - 1);
                let i1 = (i0 + 1).min(n - 1);
                (i0, i1, (x - i0 as f64).clamp(0.0, 1.0) as f32)
            })
            .collect()
    };
    let ys = axis(h, oh);
    let xs = axis(w, ow);
    let mut out = vec![0f32; c * oh * ow];
    for ch in 0..c {
        let plane = &src[ch * h * w..(ch + 1) * h * w];
        let dst = &mut out[ch * oh * ow..(ch + 1) * oh * ow];
        for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
            for (ox, &(x0, x1, fx)) in xs.iter().enumerate() {
                let top = plane[y0 * w + x0] * (1.0 - fx) + plane[y0 * w + x1] * fx;
                let bot = plane[y1 * w + x0] * (1.0 - fx) + plane[y1 * w + x1] * fx;
                dst[oy * ow + ox] = top * (1.0 - fy) + bot * fy;
            }
        }
    }
    out
}

/// Nearest resize (`nearest-exact`: source `floor((o + 0.5)·n/on)`) of an `h·w` plane.
fn resize_nearest<T: Copy>(src: &[T], [h, w]: [usize; 2], [oh, ow]: [usize; 2]) -> Vec<T> {
    if [h, w] == [oh, ow] {
        return src.to_vec();
    }
    let map = |n: usize, on: usize| -> Vec<usize> {
        (0..on)
            .map(|o| ((((o as f64 + 0.5) * n as f64) / on as f64).floor() as usize).min(n - 1))
            .collect()
    };
    let ys = map(h, oh);
    let xs = map(w, ow);
    let mut out = Vec::with_capacity(oh * ow);
    for &y in &ys {
        for &x in &xs {
            out.push(src[y * w + x]);
        }
    }
    out
}

fn flip_plane<T>(plane: &mut [T], w: usize) {
    if w == 0 {
        return;
    }
    for row in plane.chunks_mut(w) {
        row.reverse();
    }
}

/// Crops (and pads, with `fill`) `c` planes of `[h, w]` to the window
/// `[top, top+oh) × [left, left+ow)`.
fn crop_pad<T: Copy>(
    src: &[T],
    c: usize,
    [h, w]: [usize; 2],
    [top, left]: [usize; 2],
    [oh, ow]: [usize; 2],
    fill: T,
) -> Vec<T> {
    let mut out = vec![fill; c * oh * ow];
    for ch in 0..c {
        for oy in 0..oh {
            let y = top + oy;
            if y >= h {
                break;
            }
            for ox in 0..ow {
                let x = left + ox;
                if x >= w {
                    break;
                }
                out[ch * oh * ow + oy * ow + ox] = src[ch * h * w + y * w + x];
            }
        }
    }
    out
}

/// Tight box `[x1, y1, x2, y2]` (x2, y2 exclusive) of a row-major mask; `None` if empty.
fn mask_box(mask: &[bool], w: usize) -> Option<[f32; 4]> {
    let (mut x1, mut y1, mut x2, mut y2) = (usize::MAX, usize::MAX, 0, 0);
    for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
        let (y, x) = (i / w, i % w);
        x1 = x1.min(x);
        y1 = y1.min(y);
        x2 = x2.max(x + 1);
        y2 = y2.max(y + 1);
    }
    (x1 != usize::MAX).then_some([x1 as f32, y1 as f32, x2 as f32, y2 as f32])
}

fn grey(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

fn jitter_factor(rng: &mut SplitMix64, m: f32) -> Option<f32> {
    (m > 0.0).then(|| rng.range_f64((1.0 - f64::from(m)).max(0.0), 1.0 + f64::from(m)) as f32)
}

/// Colour jitter on a `[3, H, W]` image: brightness, then contrast, then saturation (a fixed
/// order, unlike torchvision's random one), each clamped to `[0, 1]` as torchvision does.
fn color_jitter(image: &mut [f32], n: usize, config: &AugmentConfig, rng: &mut SplitMix64) {
    let b = jitter_factor(rng, config.brightness);
    let c = jitter_factor(rng, config.contrast);
    let s = jitter_factor(rng, config.saturation);
    if n == 0 || image.len() != 3 * n {
        return;
    }
    if let Some(b) = b {
        for v in image.iter_mut() {
            *v = (*v * b).clamp(0.0, 1.0);
        }
    }
    if let Some(c) = c {
        let (r, rest) = image.split_at(n);
        let (g, bl) = rest.split_at(n);
        let mean = (0..n)
            .map(|i| f64::from(grey(r[i], g[i], bl[i])))
            .sum::<f64>()
            / n as f64;
        let add = (1.0 - c) * mean as f32;
        for v in image.iter_mut() {
            *v = (c * *v + add).clamp(0.0, 1.0);
        }
    }
    if let Some(s) = s {
        for i in 0..n {
            let gy = grey(image[i], image[n + i], image[2 * n + i]);
            for ch in 0..3 {
                let v = &mut image[ch * n + i];
                *v = (s * *v + (1.0 - s) * gy).clamp(0.0, 1.0);
            }
        }
    }
}

fn resize_objects(objects: &[Object], from: [usize; 2], to: [usize; 2]) -> Vec<Object> {
    let (sy, sx) = (
        to[0] as f32 / from[0].max(1) as f32,
        to[1] as f32 / from[1].max(1) as f32,
    );
    objects
        .iter()
        .map(|o| Object {
            class: o.class,
            crowd: o.crowd,
            area: o.area.map(|a| a * sx * sy),
            bbox: [
                o.bbox[0] * sx,
                o.bbox[1] * sy,
                o.bbox[2] * sx,
                o.bbox[3] * sy,
            ],
            mask: if o.mask.len() == from[0] * from[1] {
                resize_nearest(&o.mask, from, to)
            } else {
                Vec::new()
            },
        })
        .collect()
}

/// Resizes a sample to `[h, w]` (deterministic, for evaluation): bilinear image (half-pixel
/// centres, no antialiasing), nearest class and object masks, boxes scaled by the size
/// ratio (not recomputed; objects are kept even if their mask vanishes).
///
/// # Panics
/// If `size` has a zero side, or the sample's vectors do not match its `size`.
pub fn resize(sample: &Sample, size: [usize; 2]) -> Sample {
    resized(sample, size, |image, from| {
        resize_bilinear(image, 3, from, size)
    })
}

/// [`resize`] with the image resampled by `image(pixels, from)`.
fn resized(
    sample: &Sample,
    size: [usize; 2],
    image: impl FnOnce(&[f32], [usize; 2]) -> Vec<f32>,
) -> Sample {
    assert!(
        size[0] > 0 && size[1] > 0,
        "resize: size must be positive, got {size:?}"
    );
    check_sample(sample);
    let from = sample.size;
    if from[0] == 0 || from[1] == 0 {
        return sample.clone();
    }
    Sample {
        image: image(&sample.image, from),
        size,
        class_mask: if sample.class_mask.is_empty() {
            Vec::new()
        } else {
            resize_nearest(&sample.class_mask, from, size)
        },
        objects: resize_objects(&sample.objects, from, size),
        label: sample.label,
    }
}

/// Resampling filter of [`resize_antialiased`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filter {
    /// Triangle (bilinear), support 1.
    #[default]
    Bilinear,
    /// Keys cubic with `a = −0.5` (PIL's and torchvision's antialiased bicubic), support 2.
    Bicubic,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Bilinear => (1.0 - x).max(0.0),
            Filter::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }

    /// For each of `n_out` outputs along an axis of `n_in`: the first input it reads and the
    /// normalised weights (PIL's `precompute_coeffs`, torchvision's antialiased kernels: the
    /// filter stretched by the downscaling factor).
    fn taps(self, n_in: usize, n_out: usize) -> Vec<(usize, Vec<f32>)> {
        let scale = n_in as f64 / n_out as f64;
        let stretch = scale.max(1.0);
        let support = self.support() * stretch;
        (0..n_out)
            .map(|i| {
                let center = (i as f64 + 0.5) * scale;
                let lo = ((center - support + 0.5).floor().max(0.0) as usize).min(n_in - 1);
                let hi = ((center + support + 0.5).floor() as usize).clamp(lo + 1, n_in);
                let raw: Vec<f64> = (lo..hi)
                    .map(|j| self.weight((j as f64 - center + 0.5) / stretch))
                    .collect();
                let total: f64 = raw.iter().sum();
                let weights = raw
                    .iter()
                    .map(|w| {
                        if total == 0.0 {
                            0.0
                        } else {
                            (w / total) as f32
                        }
                    })
                    .collect();
                (lo, weights)
            })
            .collect()
    }
}

/// Resizes `[C, H, W]` planes to `[oh, ow]` with `filter`, antialiased: the filter widens
/// by the factor when downscaling (as PIL's resize and torchvision's `resize(...,
/// antialias=True)`), rows first, then columns.
pub fn resize_antialiased(
    src: &[f32],
    channels: usize,
    [h, w]: [usize; 2],
    [oh, ow]: [usize; 2],
    filter: Filter,
) -> Vec<f32> {
    if [h, w] == [oh, ow] {
        return src.to_vec();
    }
    let xs = filter.taps(w, ow);
    let ys = filter.taps(h, oh);
    let mut out = vec![0f32; channels * oh * ow];
    let mut rows = vec![0f32; h * ow];
    for ch in 0..channels {
        let plane = &src[ch * h * w..(ch + 1) * h * w];
        // Horizontal pass: [h, w] → [h, ow].
        for (y, row) in rows.chunks_mut(ow).enumerate() {
            let line = &plane[y * w..(y + 1) * w];
            for (v, (lo, weights)) in row.iter_mut().zip(&xs) {
                *v = weights.iter().zip(&line[*lo..]).map(|(a, b)| a * b).sum();
            }
        }
        // Vertical pass: [h, ow] → [oh, ow].
        let dst = &mut out[ch * oh * ow..(ch + 1) * oh * ow];
        for (oy, (lo, weights)) in ys.iter().enumerate() {
            let row = &mut dst[oy * ow..(oy + 1) * ow];
            for (k, wgt) in weights.iter().enumerate() {
                let srow = &rows[(lo + k) * ow..(lo + k + 1) * ow];
                for (d, v) in row.iter_mut().zip(srow) {
                    *d += wgt * v;
                }
            }
        }
    }
    out
}

/// [`resize`] with the image resampled by [`resize_antialiased`] (`filter`) instead of plain
/// bilinear interpolation; class and object masks nearest, boxes and areas scaled.
///
/// # Panics
/// As [`resize`].
pub fn resize_with(sample: &Sample, size: [usize; 2], filter: Filter) -> Sample {
    resized(sample, size, |image, from| {
        resize_antialiased(image, 3, from, size, filter)
    })
}

/// The size torchvision's `resize(image, side)` gives a `[h, w]` image: the shorter side
/// becomes `side`, the longer `⌊side · longer / shorter⌋` (at least 1).
pub fn shorter_side_size(size: [usize; 2], side: usize) -> [usize; 2] {
    let [h, w] = size;
    let scaled = |long: usize, short: usize| (side * long / short.max(1)).max(1);
    if h <= w {
        [side, scaled(w, h)]
    } else {
        [scaled(h, w), side]
    }
}

/// The centre `[side, side]` crop of a sample (torchvision's `center_crop`: top and left
/// offsets `round((H − side) / 2)` and `round((W − side) / 2)`, Python's rounding: half to
/// even); object masks cropped, boxes
/// recomputed from them, objects left without a pixel dropped, annotated areas dropped.
///
/// # Panics
/// If a side of the sample is smaller than `side`, or its vectors do not match its `size`.
pub fn center_crop(sample: &Sample, side: usize) -> Sample {
    check_sample(sample);
    let [h, w] = sample.size;
    assert!(
        h >= side && w >= side,
        "center_crop: the image {h}×{w} is smaller than the crop {side}"
    );
    let top = ((h - side) as f64 / 2.0).round_ties_even() as usize;
    let left = ((w - side) as f64 / 2.0).round_ties_even() as usize;
    let plane = |values: &[f32], c: usize| -> Vec<f32> {
        (0..side)
            .flat_map(|y| {
                let row = c * h * w + (top + y) * w + left;
                values[row..row + side].iter().copied()
            })
            .collect()
    };
    let crop = |values: &[bool]| -> Vec<bool> {
        (0..side)
            .flat_map(|y| values[(top + y) * w + left..][..side].iter().copied())
            .collect()
    };
    Sample {
        image: (0..3).flat_map(|c| plane(&sample.image, c)).collect(),
        size: [side, side],
        class_mask: if sample.class_mask.is_empty() {
            Vec::new()
        } else {
            (0..side)
                .flat_map(|y| {
                    sample.class_mask[(top + y) * w + left..][..side]
                        .iter()
                        .copied()
                })
                .collect()
        },
        objects: sample
            .objects
            .iter()
            .filter(|o| o.mask.len() == h * w)
            .filter_map(|o| {
                let mask = crop(&o.mask);
                let bbox = mask_box(&mask, side)?;
                Some(Object {
                    class: o.class,
                    bbox,
                    mask,
                    crowd: o.crowd,
                    area: None,
                })
            })
            .collect(),
        label: sample.label,
    }
}

fn check_sample(sample: &Sample) {
    let [h, w] = sample.size;
    assert_eq!(
        sample.image.len(),
        3 * h * w,
        "sample.image: expected 3·H·W = {} values for size {:?}, found {}",
        3 * h * w,
        sample.size,
        sample.image.len()
    );
    assert!(
        sample.class_mask.is_empty() || sample.class_mask.len() == h * w,
        "sample.class_mask: expected 0 or H·W = {} values, found {}",
        h * w,
        sample.class_mask.len()
    );
}

/// Applies a random augmentation drawn from `seed`: resize by a factor from `scale`, flip
/// with probability `hflip`, crop/pad to `crop`, then colour jitter. Geometric steps act on
/// the image (bilinear), the class mask and object masks (nearest); boxes are recomputed
/// as the tight boxes of the transformed masks, and objects whose mask became empty are
/// dropped. The same `(sample, config, seed)` always gives the same result.
///
/// # Panics
/// If `config` is invalid (see [`AugmentConfig::validate`]; [`load_batch`] checks it and
/// returns an error instead), or the sample's vectors do not match its `size`.
pub fn augment(sample: &Sample, config: &AugmentConfig, seed: u64) -> Sample {
    if let Err(e) = config.validate() {
        panic!("augment: {e}");
    }
    check_sample(sample);
    let mut rng = SplitMix64(seed);
    let [h, w] = sample.size;
    let factor = rng.range_f64(f64::from(config.scale[0]), f64::from(config.scale[1]));
    let flip = rng.unit_f64() < f64::from(config.hflip);
    let crop_draw = [rng.next_u64(), rng.next_u64()];

    // 1. Random resize.
    let mut size = [h, w];
    let mut image = sample.image.clone();
    let mut class_mask = sample.class_mask.clone();
    let mut masks: Vec<Vec<bool>> = sample.objects.iter().map(|o| o.mask.clone()).collect();
    if config.scale != [1.0, 1.0] && h > 0 && w > 0 {
        let to = [
            ((h as f64 * factor).round() as usize).max(1),
            ((w as f64 * factor).round() as usize).max(1),
        ];
        image = resize_bilinear(&image, 3, size, to);
        if !class_mask.is_empty() {
            class_mask = resize_nearest(&class_mask, size, to);
        }
        for m in masks.iter_mut() {
            *m = if m.len() == h * w {
                resize_nearest(m, size, to)
            } else {
                Vec::new()
            };
        }
        size = to;
    }

    // 2. Horizontal flip.
    if flip {
        let [hh, ww] = size;
        for ch in image.chunks_mut((hh * ww).max(1)) {
            flip_plane(ch, ww);
        }
        flip_plane(&mut class_mask, ww);
        for m in masks.iter_mut() {
            flip_plane(m, ww);
        }
    }

    // 3. Random crop, padding short sides at the bottom/right.
    if let Some(crop) = config.crop {
        let [hh, ww] = size;
        let top = rng_offset(crop_draw[0], hh.saturating_sub(crop[0]));
        let left = rng_offset(crop_draw[1], ww.saturating_sub(crop[1]));
        image = crop_pad(&image, 3, size, [top, left], crop, 0.0);
        if !class_mask.is_empty() {
            class_mask = crop_pad(&class_mask, 1, size, [top, left], crop, 255);
        }
        for m in masks.iter_mut() {
            if !m.is_empty() {
                *m = crop_pad(m, 1, size, [top, left], crop, false);
            }
        }
        size = crop;
    }

    // 4. Colour jitter.
    color_jitter(&mut image, size[0] * size[1], config, &mut rng);

    let objects = sample
        .objects
        .iter()
        .zip(masks)
        .filter_map(|(o, mask)| {
            let bbox = mask_box(&mask, size[1])?;
            // An annotated area follows the mask's pixel count through resize and crop.
            let before = o.mask.iter().filter(|&&m| m).count();
            let after = mask.iter().filter(|&&m| m).count();
            Some(Object {
                class: o.class,
                bbox,
                crowd: o.crowd,
                area: o
                    .area
                    .filter(|_| before > 0)
                    .map(|a| a * after as f32 / before as f32),
                mask,
            })
        })
        .collect();
    Sample {
        image,
        size,
        class_mask,
        objects,
        label: sample.label,
    }
}

fn rng_offset(draw: u64, max: usize) -> usize {
    SplitMix64(draw).below(max + 1)
}

/// Loads `indices` from `dataset` on up to `threads` threads (0 = the machine's available
/// parallelism), augmenting each with `augment` under seed [`sample_seed`]`(seed, index)`.
/// The output is in `indices` order and identical for any thread count.
///
/// # Errors
/// An invalid `augment` config, or the first (in `indices` order) sample that fails to load.
pub fn load_batch(
    dataset: &dyn ImageDataset,
    indices: &[usize],
    augment: Option<&AugmentConfig>,
    seed: u64,
    threads: usize,
) -> Result<Vec<Sample>, DataError> {
    if let Some(cfg) = augment {
        cfg.validate().map_err(DataError::Config)?;
    }
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    let load = |index: usize| -> Result<Sample, DataError> {
        let s = dataset.get(index)?;
        Ok(match augment {
            Some(cfg) => self::augment(&s, cfg, sample_seed(seed, index)),
            None => s,
        })
    };
    let threads = threads.min(indices.len()).max(1);
    if threads == 1 {
        return indices.iter().map(|&i| load(i)).collect();
    }
    let chunk = indices.len().div_ceil(threads);
    let parts: Vec<Vec<Result<Sample, DataError>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = indices
            .chunks(chunk)
            .map(|part| {
                let load = &load;
                scope.spawn(move || part.iter().map(|&i| load(i)).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    parts.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn shorter_side_and_center_crop_follow_torchvision() {
        // torchvision: resize(img, 520) on 375×500 → 520×693; on 500×375 → 693×520.
        assert_eq!(shorter_side_size([375, 500], 520), [520, 693]);
        assert_eq!(shorter_side_size([500, 375], 520), [693, 520]);
        assert_eq!(shorter_side_size([64, 64], 32), [32, 32]);
        // center_crop offsets: round((7 − 4) / 2) = round(1.5) = 2, round((9 − 4) / 2) =
        // round(2.5) = 2 (half to even, as Python).
        let (h, w) = (7, 9);
        let image: Vec<f32> = (0..3 * h * w).map(|v| v as f32).collect();
        let mut mask = vec![false; h * w];
        mask[3 * w + 4] = true; // inside the crop → (1, 2)
        mask[0] = true; // outside
        let sample = Sample {
            image,
            size: [h, w],
            class_mask: (0..h * w).map(|v| v as u8).collect(),
            objects: vec![Object {
                crowd: true,
                area: Some(2.0),
                ..Object::new(1, [0.0, 0.0, 5.0, 4.0], mask)
            }],
            label: None,
        };
        let c = center_crop(&sample, 4);
        assert_eq!(c.size, [4, 4]);
        assert_eq!(c.image[0], (2 * w + 2) as f32);
        assert_eq!(c.image[16 + 5], (h * w + 3 * w + 3) as f32);
        assert_eq!(c.class_mask[0], (2 * w + 2) as u8);
        let o = &c.objects[0];
        assert_eq!(o.bbox, [2.0, 1.0, 3.0, 2.0]);
        assert!(o.crowd && o.area.is_none());
    }

    use super::*;

    #[test]
    fn validate_names_the_field() {
        let bad = AugmentConfig {
            scale: [2.0, 1.0],
            ..AugmentConfig::default()
        };
        assert_eq!(bad.validate().map_err(|e| e.field), Err("scale"));
        let bad = AugmentConfig {
            hflip: 1.5,
            ..AugmentConfig::default()
        };
        assert_eq!(bad.validate().map_err(|e| e.field), Err("hflip"));
        let bad = AugmentConfig {
            crop: Some([0, 4]),
            ..AugmentConfig::default()
        };
        assert_eq!(bad.validate().map_err(|e| e.field), Err("crop"));
        let bad = AugmentConfig {
            saturation: -0.1,
            ..AugmentConfig::default()
        };
        assert!(
            bad.validate()
                .is_err_and(|e| e.to_string().contains("`saturation`"))
        );
        assert_eq!(AugmentConfig::default().validate(), Ok(()));
    }

    #[test]
    fn config_json_rejects_unknown_keys_and_fills_defaults() {
        let c: AugmentConfig = serde_json::from_str(r#"{"crop": [8, 8]}"#).expect("valid config");
        assert_eq!(c.crop, Some([8, 8]));
        assert_eq!(c.hflip, 0.5);
        let e = serde_json::from_str::<AugmentConfig>(r#"{"flip": 0.5}"#);
        assert!(e.is_err_and(|e| e.to_string().contains("flip")));
    }

    #[test]
    fn bilinear_upsample_matches_pytorch_half_pixel() {
        // torch.nn.functional.interpolate([[0, 1]], size=4, mode="linear",
        // align_corners=False) = [0, 0.25, 0.75, 1].
        let out = resize_bilinear(&[0.0, 1.0, 0.0, 1.0, 0.0, 1.0], 3, [1, 2], [1, 4]);
        assert_eq!(&out[..4], &[0.0, 0.25, 0.75, 1.0]);
    }

    #[test]
    fn crop_pads_with_fill() {
        let out = crop_pad(&[1u8, 2, 3, 4], 1, [2, 2], [1, 0], [2, 3], 255);
        assert_eq!(out, vec![3, 4, 255, 255, 255, 255]);
    }

    #[test]
    fn jitter_brightness_scales_and_clamps() {
        let mut img = vec![0.2, 0.8, 0.5];
        let cfg = AugmentConfig {
            brightness: 0.5,
            ..AugmentConfig::default()
        };
        let mut rng = SplitMix64(7);
        let b = jitter_factor(&mut rng.clone(), 0.5).expect("on");
        color_jitter(&mut img, 1, &cfg, &mut rng);
        assert!((0.5..=1.5).contains(&b));
        assert_eq!(
            img,
            vec![
                (0.2f32 * b).min(1.0),
                (0.8f32 * b).min(1.0),
                (0.5f32 * b).min(1.0)
            ]
        );
    }
}
