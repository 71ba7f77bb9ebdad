//! Binary masks as COCO run-length encodings (pycocotools' `maskApi.c`): the pixels in
//! column-major order (down the first column, then the next), as alternating runs of
//! background and object that start with background (a leading run may be 0).
//!
//! A mask of an object covers a few runs per column it crosses, so an RLE is a few hundred
//! bytes where the dense mask of a 640×480 image is 300 KB: the evaluator can hold a whole
//! validation set's detections. Intersections are computed on the runs, as pycocotools'
//! `rleIou` does, without decoding.

/// Why an RLE could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RleError {
    /// A dense mask whose length is not `height · width`.
    #[error("mask has {len} pixels, expected height · width = {height} · {width}")]
    MaskLength {
        /// Pixels given.
        len: usize,
        /// Image height.
        height: usize,
        /// Image width.
        width: usize,
    },
    /// Run lengths that do not add up to `height · width`.
    #[error("counts add up to {sum} pixels, expected height · width = {height} · {width}")]
    CountsSum {
        /// Sum of the runs.
        sum: u64,
        /// Image height.
        height: usize,
        /// Image width.
        width: usize,
    },
}

/// A binary mask of a `height × width` image, run-length encoded as COCO does (column-major
/// runs, background first): `{"size": [height, width], "counts": [...]}` in COCO's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rle {
    size: [usize; 2],
    counts: Vec<u32>,
    /// Pixels of the object (the sum of the odd runs).
    area: u64,
}

impl Rle {
    /// Encodes the mask whose pixel `(y, x)` is `pixel(y, x)`, for an image of
    /// `size = [height, width]` (no dense copy is made: useful for thresholding
    /// probabilities).
    ///
    /// # Panics
    /// If the image has more than `u32::MAX` pixels (COCO's run type).
    pub fn from_fn(size: [usize; 2], pixel: impl Fn(usize, usize) -> bool) -> Self {
        let [h, w] = size;
        assert!(
            (h * w) as u64 <= u64::from(u32::MAX),
            "Rle: an image of {h}×{w} pixels exceeds COCO's u32 run length"
        );
        let mut counts = Vec::new();
        let (mut current, mut run, mut area) = (false, 0u32, 0u64);
        for x in 0..w {
            for y in 0..h {
                let v = pixel(y, x);
                if v != current {
                    counts.push(run);
                    current = v;
                    run = 0;
                }
                run += 1;
                area += u64::from(v);
            }
        }
        counts.push(run);
        Self { size, counts, area }
    }

    /// Encodes a dense row-major mask (`mask[y · width + x]`) of an image of
    /// `size = [height, width]`.
    ///
    /// # Errors
    /// If `mask.len()` is not `height · width`.
    pub fn from_mask(mask: &[bool], size: [usize; 2]) -> Result<Self, RleError> {
        let [height, width] = size;
        if mask.len() != height * width {
            return Err(RleError::MaskLength {
                len: mask.len(),
                height,
                width,
            });
        }
        Ok(Self::from_fn(size, |y, x| mask[y * width + x]))
    }

    /// An RLE from COCO's uncompressed `counts` (column-major runs, background first).
    ///
    /// # Errors
    /// If the runs do not add up to `height · width`.
    pub fn from_counts(size: [usize; 2], counts: Vec<u32>) -> Result<Self, RleError> {
        let [height, width] = size;
        let sum: u64 = counts.iter().map(|&c| u64::from(c)).sum();
        if sum != (height * width) as u64 {
            return Err(RleError::CountsSum { sum, height, width });
        }
        let counts = if counts.is_empty() { vec![0] } else { counts };
        let area = counts
            .iter()
            .skip(1)
            .step_by(2)
            .map(|&c| u64::from(c))
            .sum();
        Ok(Self { size, counts, area })
    }

    /// The image `[height, width]`.
    pub fn size(&self) -> [usize; 2] {
        self.size
    }

    /// The runs (COCO's uncompressed `counts`).
    pub fn counts(&self) -> &[u32] {
        &self.counts
    }

    /// Pixels of the object (pycocotools `area`).
    pub fn area(&self) -> u64 {
        self.area
    }

    /// The tight box `[x1, y1, x2, y2]` in pixel edges (`x2`, `y2` exclusive); all zeros for
    /// an empty mask (pycocotools `toBbox`, as corners).
    pub fn bbox(&self) -> [f32; 4] {
        let h = self.size[0] as u64;
        if self.area == 0 || h == 0 {
            return [0.0; 4];
        }
        let (mut x1, mut y1, mut x2, mut y2) = (u64::MAX, u64::MAX, 0, 0);
        let mut start = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            let end = start + u64::from(c);
            if i % 2 == 1 && c > 0 {
                let (first, last) = (start, end - 1);
                let (xa, xb) = (first / h, last / h);
                x1 = x1.min(xa);
                x2 = x2.max(xb + 1);
                if xa == xb {
                    y1 = y1.min(first % h);
                    y2 = y2.max(last % h + 1);
                } else {
                    // The run wraps over a column boundary: it covers the top and bottom rows.
                    y1 = 0;
                    y2 = h;
                }
            }
            start = end;
        }
        [x1, y1, x2, y2].map(|v| v as f32)
    }

    /// The dense row-major mask (`mask[y · width + x]`).
    pub fn decode(&self) -> Vec<bool> {
        let [h, w] = self.size;
        let mut mask = vec![false; h * w];
        let mut i = 0usize;
        for (k, &c) in self.counts.iter().enumerate() {
            if k % 2 == 1 {
                for j in i..i + c as usize {
                    mask[(j % h) * w + j / h] = true;
                }
            }
            i += c as usize;
        }
        mask
    }

    /// Pixels in both masks (pycocotools' run merge in `rleIou`).
    ///
    /// # Panics
    /// If the masks belong to images of different sizes.
    pub fn intersection(&self, other: &Rle) -> u64 {
        assert_eq!(
            self.size, other.size,
            "Rle::intersection: masks of {:?} and {:?} images",
            self.size, other.size
        );
        let (a, b) = (&self.counts, &other.counts);
        let (mut ia, mut ib) = (0, 0);
        let (mut ca, mut cb) = (u64::from(a[0]), u64::from(b[0]));
        let (mut va, mut vb) = (false, false);
        let mut inter = 0u64;
        loop {
            let c = ca.min(cb);
            if va && vb {
                inter += c;
            }
            ca -= c;
            cb -= c;
            while ca == 0 {
                ia += 1;
                if ia == a.len() {
                    return inter;
                }
                ca = u64::from(a[ia]);
                va = !va;
            }
            while cb == 0 {
                ib += 1;
                if ib == b.len() {
                    return inter;
                }
                cb = u64::from(b[ib]);
                vb = !vb;
            }
        }
    }

    /// COCO's IoU of a detection (`self`) with a ground truth: `|d ∩ g| / |d ∪ g|`, or
    /// `|d ∩ g| / |d|` when the ground truth is a crowd region; 0 without intersection
    /// (pycocotools `rleIou`).
    ///
    /// # Panics
    /// If the masks belong to images of different sizes.
    pub fn iou(&self, ground_truth: &Rle, crowd: bool) -> f64 {
        let inter = self.intersection(ground_truth);
        if inter == 0 {
            return 0.0;
        }
        let union = if crowd {
            self.area
        } else {
            self.area + ground_truth.area - inter
        };
        inter as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator for random masks.
    fn masks(seed: u64, size: [usize; 2], n: usize) -> Vec<Vec<bool>> {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        (0..n)
            .map(|k| {
                let [h, w] = size;
                let (y0, x0) = (next() % h, next() % w);
                let (y1, x1) = (y0 + next() % (h - y0 + 1), x0 + next() % (w - x0 + 1));
                (0..h * w)
                    .map(|i| {
                        let (y, x) = (i / w, i % w);
                        // Boxes, with some noise and some empty masks.
                        (k % 5 != 0 && (y0..y1).contains(&y) && (x0..x1).contains(&x))
                            || next() % 17 == 0
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn counts_are_coco_column_major_runs() {
        // [[0, 1], [1, 1]] (row-major); column-major 0, 1, 1, 1 → one 0-run, one 1-run of 3.
        let rle = Rle::from_mask(&[false, true, true, true], [2, 2]).unwrap();
        assert_eq!(rle.counts(), &[1, 3]);
        // A mask starting with an object pixel has an empty leading run.
        let rle = Rle::from_mask(&[true, false, false, false], [2, 2]).unwrap();
        assert_eq!(rle.counts(), &[0, 1, 3]);
        assert_eq!((rle.area(), rle.bbox()), (1, [0.0, 0.0, 1.0, 1.0]));
        let empty = Rle::from_mask(&[false; 6], [2, 3]).unwrap();
        assert_eq!((empty.counts(), empty.area()), (&[6u32][..], 0));
        assert_eq!(empty.bbox(), [0.0; 4]);
    }

    #[test]
    fn encode_decode_area_bbox_and_iou_agree_with_the_dense_masks() {
        let size = [13, 9];
        let all = masks(7, size, 40);
        let rles: Vec<Rle> = all
            .iter()
            .map(|m| Rle::from_mask(m, size).unwrap())
            .collect();
        for (m, r) in all.iter().zip(&rles) {
            assert_eq!(&r.decode(), m);
            assert_eq!(r.area(), m.iter().filter(|&&b| b).count() as u64);
            assert_eq!(Rle::from_counts(size, r.counts().to_vec()).unwrap(), *r);
            let on: Vec<(usize, usize)> = (0..m.len())
                .filter(|&i| m[i])
                .map(|i| (i / size[1], i % size[1]))
                .collect();
            let want = if on.is_empty() {
                [0.0; 4]
            } else {
                [
                    on.iter().map(|p| p.1).min().unwrap() as f32,
                    on.iter().map(|p| p.0).min().unwrap() as f32,
                    on.iter().map(|p| p.1).max().unwrap() as f32 + 1.0,
                    on.iter().map(|p| p.0).max().unwrap() as f32 + 1.0,
                ]
            };
            assert_eq!(r.bbox(), want, "{m:?}");
        }
        for (a, ra) in all.iter().zip(&rles) {
            for (b, rb) in all.iter().zip(&rles) {
                let inter = a.iter().zip(b).filter(|(x, y)| **x && **y).count() as u64;
                let union = a.iter().zip(b).filter(|(x, y)| **x || **y).count() as u64;
                assert_eq!(ra.intersection(rb), inter);
                let want = if inter == 0 {
                    0.0
                } else {
                    inter as f64 / union as f64
                };
                assert_eq!(ra.iou(rb, false), want);
                if inter > 0 {
                    assert_eq!(ra.iou(rb, true), inter as f64 / ra.area() as f64);
                }
            }
        }
    }

    #[test]
    fn inconsistent_inputs_are_errors() {
        let e = Rle::from_mask(&[true; 5], [2, 3]).unwrap_err();
        assert!(
            e.to_string().contains("5 pixels") && e.to_string().contains("2 · 3"),
            "{e}"
        );
        let e = Rle::from_counts([2, 3], vec![1, 2]).unwrap_err();
        assert!(e.to_string().contains("3 pixels"), "{e}");
    }
}
