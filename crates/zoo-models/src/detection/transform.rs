//! Input and output transforms of the R-CNN models, as torchvision's
//! `GeneralizedRCNNTransform`: normalise, resize so the short side is `min_size` (long side
//! at most `max_size`), pad the batch to a multiple of 32; map detections back.

use burn::prelude::*;
use zoo_nn::ops::{ResizeMode, ResizeOptions, resize};

/// Configuration of the R-CNN input transform.
#[derive(Config, Debug, PartialEq)]
pub struct RcnnTransformConfig {
    /// Target size of the short side.
    #[config(default = 800)]
    pub min_size: usize,
    /// Largest size of the long side.
    #[config(default = 1333)]
    pub max_size: usize,
    /// Per-channel mean subtracted (ImageNet's).
    #[config(default = "[0.485, 0.456, 0.406]")]
    pub image_mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    #[config(default = "[0.229, 0.224, 0.225]")]
    pub image_std: [f32; 3],
    /// The padded batch's sides are multiples of this.
    #[config(default = 32)]
    pub size_divisible: usize,
}

/// A transformed batch.
#[derive(Debug, Clone)]
pub struct ImageBatch {
    /// `[N, 3, H_pad, W_pad]`, zero-padded at the bottom and right.
    pub tensor: Tensor<4>,
    /// `[height, width]` of each image after resizing, before padding.
    pub image_sizes: Vec<[usize; 2]>,
    /// `[height, width]` of each input image.
    pub original_sizes: Vec<[usize; 2]>,
}

impl RcnnTransformConfig {
    /// The resized `[height, width]` of an image: scale `min(min_size / short,
    /// max_size / long)` in f64, sides `floor(side · scale)` — as torchvision's eager
    /// `_resize_image_and_masks` (Python floats) with `recompute_scale_factor = True`. (Its
    /// scripted / traced branch computes the scale in f32, which gives one pixel less where
    /// the product lands on an integer: 50 × 64/50 is 64 in f64, 63.99… in f32.)
    pub fn resized_size(&self, size: [usize; 2]) -> [usize; 2] {
        let short = size[0].min(size[1]) as f64;
        let long = size[0].max(size[1]) as f64;
        let scale = (self.min_size as f64 / short).min(self.max_size as f64 / long);
        size.map(|s| ((s as f64) * scale).floor() as usize)
    }

    /// Normalises, resizes (bilinear) and pads a list of `[3, H_i, W_i]` images.
    ///
    /// # Panics
    /// If `images` is empty or an image is not `[3, H, W]` with `H, W > 0`.
    pub fn batch(&self, images: Vec<Tensor<3>>) -> ImageBatch {
        assert!(
            !images.is_empty(),
            "RcnnTransform: images must not be empty"
        );
        let device = images[0].device();
        let mean = Tensor::<1>::from_floats(self.image_mean, &device).reshape([3, 1, 1]);
        let std = Tensor::<1>::from_floats(self.image_std, &device).reshape([3, 1, 1]);
        let mut resized = Vec::with_capacity(images.len());
        let mut original_sizes = Vec::with_capacity(images.len());
        let mut image_sizes = Vec::with_capacity(images.len());
        for (i, image) in images.into_iter().enumerate() {
            let [c, h, w] = image.dims();
            assert!(
                c == 3 && h > 0 && w > 0,
                "RcnnTransform: images[{i}] must be [3, H, W] with H, W > 0, got {:?}",
                [c, h, w]
            );
            let size = self.resized_size([h, w]);
            let x = ((image - mean.clone()) / std.clone()).unsqueeze::<4>();
            let x = if size == [h, w] {
                x
            } else {
                resize(x, size, ResizeOptions::new(ResizeMode::Bilinear, false))
            };
            original_sizes.push([h, w]);
            image_sizes.push(size);
            resized.push(x);
        }
        let d = self.size_divisible.max(1);
        let round = |v: usize| v.div_ceil(d) * d;
        let ph = round(image_sizes.iter().map(|s| s[0]).max().unwrap_or(0));
        let pw = round(image_sizes.iter().map(|s| s[1]).max().unwrap_or(0));
        let padded = resized
            .into_iter()
            .zip(&image_sizes)
            .map(|(x, &[h, w])| x.pad((0, pw - w, 0, ph - h), 0.0))
            .collect();
        ImageBatch {
            tensor: Tensor::cat(padded, 0),
            image_sizes,
            original_sizes,
        }
    }
}

/// Scales boxes from the `from` image size to the `to` size (torchvision's `resize_boxes`:
/// ratios `to / from` in f32).
pub fn resize_boxes(boxes: &[[f32; 4]], from: [usize; 2], to: [usize; 2]) -> Vec<[f32; 4]> {
    let rh = to[0] as f32 / from[0] as f32;
    let rw = to[1] as f32 / from[1] as f32;
    boxes
        .iter()
        .map(|b| [b[0] * rw, b[1] * rh, b[2] * rw, b[3] * rh])
        .collect()
}

/// Pastes `[K, 1, M, M]` mask probabilities into an image of `size = [height, width]` at
/// their boxes, as torchvision's `paste_masks_in_image` (padding 1): each mask is padded by
/// one pixel, its box enlarged by `(M + 2) / M` and truncated to integers, the mask resized
/// bilinearly to the box's `x2 − x1 + 1` by `y2 − y1 + 1` pixels and written where it falls
/// inside the image. Runs on the host; returns `[K, 1, height, width]` on `device`.
pub fn paste_masks_in_image(
    masks: Tensor<4>,
    boxes: &[[f32; 4]],
    size: [usize; 2],
    device: &Device,
) -> Tensor<4> {
    let [k, _, m, _] = masks.dims();
    assert!(
        k == boxes.len(),
        "paste_masks_in_image: {} masks for {} boxes",
        k,
        boxes.len()
    );
    let [im_h, im_w] = size;
    let values: Vec<f32> = masks.into_data().iter::<f32>().collect();
    let padded = m + 2;
    let scale = padded as f32 / m as f32;
    let mut out = vec![0f32; k * im_h * im_w];
    for (i, b) in boxes.iter().enumerate() {
        // expand_masks: zero border of one pixel.
        let mut mask = vec![0f32; padded * padded];
        for y in 0..m {
            for x in 0..m {
                mask[(y + 1) * padded + x + 1] = values[i * m * m + y * m + x];
            }
        }
        // expand_boxes, then truncation to int64.
        let w_half = (b[2] - b[0]) * 0.5 * scale;
        let h_half = (b[3] - b[1]) * 0.5 * scale;
        let x_c = (b[2] + b[0]) * 0.5;
        let y_c = (b[3] + b[1]) * 0.5;
        let bx = [x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half].map(|v| v as i64);
        let w = (bx[2] - bx[0] + 1).max(1) as usize;
        let h = (bx[3] - bx[1] + 1).max(1) as usize;
        let resized = bilinear(&mask, [padded, padded], [h, w]);
        let x0 = bx[0].max(0);
        let x1 = (bx[2] + 1).min(im_w as i64);
        let y0 = bx[1].max(0);
        let y1 = (bx[3] + 1).min(im_h as i64);
        let plane = &mut out[i * im_h * im_w..(i + 1) * im_h * im_w];
        for y in y0..y1 {
            for x in x0..x1 {
                let (sy, sx) = ((y - bx[1]) as usize, (x - bx[0]) as usize);
                plane[y as usize * im_w + x as usize] = resized[sy * w + sx];
            }
        }
    }
    Tensor::from_data(TensorData::new(out, [k, 1, im_h, im_w]), device)
}

/// `F.interpolate(mode="bilinear", align_corners=False)` of one plane.
fn bilinear(src: &[f32], from: [usize; 2], to: [usize; 2]) -> Vec<f32> {
    let axis = |n_in: usize, n_out: usize| -> Vec<(usize, usize, f32, f32)> {
        let scale = n_in as f32 / n_out as f32;
        (0..n_out)
            .map(|d| {
                let s = ((d as f32 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (s as usize).min(n_in - 1);
                let i1 = if i0 < n_in - 1 { i0 + 1 } else { i0 };
                let l1 = s - i0 as f32;
                (i0, i1, 1.0 - l1, l1)
            })
            .collect()
    };
    let ys = axis(from[0], to[0]);
    let xs = axis(from[1], to[1]);
    let mut out = Vec::with_capacity(to[0] * to[1]);
    for &(y0, y1, hy0, hy1) in &ys {
        for &(x0, x1, wx0, wx1) in &xs {
            let v = hy0 * (wx0 * src[y0 * from[1] + x0] + wx1 * src[y0 * from[1] + x1])
                + hy1 * (wx0 * src[y1 * from[1] + x0] + wx1 * src[y1 * from[1] + x1]);
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes torchvision 0.24's eager transform gives (read back from
    /// `GeneralizedRCNNTransform(64, 112, …)` and the default 800 / 1333).
    #[test]
    fn resized_sizes_are_torchvisions() {
        let small = RcnnTransformConfig::new()
            .with_min_size(64)
            .with_max_size(112);
        assert_eq!(small.resized_size([60, 80]), [64, 85]);
        assert_eq!(small.resized_size([72, 56]), [82, 64]);
        assert_eq!(
            small.resized_size([50, 50]),
            [64, 64],
            "64/50 in f64, not f32"
        );
        assert_eq!(
            small.resized_size([20, 100]),
            [22, 112],
            "bounded by max_size"
        );
        let default = RcnnTransformConfig::new();
        assert_eq!(default.resized_size([480, 640]), [800, 1066]);
        assert_eq!(default.resized_size([375, 500]), [800, 1066]);
    }
}
