//! Anchor boxes per pyramid level, as torchvision's `AnchorGenerator`.

use burn::prelude::*;

use super::host::{Boxes, boxes_tensor};

/// Configuration of [`AnchorGenerator`]: per level, anchor sizes (the side of a square
/// anchor, in input pixels) and aspect ratios (height / width).
#[derive(Config, Debug, PartialEq)]
pub struct AnchorGeneratorConfig {
    /// Sizes per level (torchvision's Mask R-CNN: `[[32], [64], [128], [256], [512]]`).
    pub sizes: Vec<Vec<f32>>,
    /// Aspect ratios per level (torchvision: `[0.5, 1, 2]` on every level).
    pub aspect_ratios: Vec<Vec<f32>>,
}

impl AnchorGeneratorConfig {
    /// torchvision's Mask R-CNN default: sizes 32…512 over five levels, ratios 0.5, 1, 2.
    pub fn mask_rcnn() -> Self {
        Self::new(
            vec![
                vec![32.0],
                vec![64.0],
                vec![128.0],
                vec![256.0],
                vec![512.0],
            ],
            vec![vec![0.5, 1.0, 2.0]; 5],
        )
    }

    /// Computes the cell anchors.
    ///
    /// # Panics
    /// If `sizes` and `aspect_ratios` have different numbers of levels, or a level is empty
    /// or holds a non-positive value.
    pub fn init(&self) -> AnchorGenerator {
        assert!(
            self.sizes.len() == self.aspect_ratios.len(),
            "AnchorGeneratorConfig: sizes and aspect_ratios must have one entry per level, got {} and {}",
            self.sizes.len(),
            self.aspect_ratios.len()
        );
        let cells = self
            .sizes
            .iter()
            .zip(&self.aspect_ratios)
            .enumerate()
            .map(|(level, (sizes, ratios))| {
                assert!(
                    !sizes.is_empty()
                        && !ratios.is_empty()
                        && sizes.iter().chain(ratios).all(|&v| v > 0.0),
                    "AnchorGeneratorConfig: level {level} needs positive sizes and aspect_ratios, got {sizes:?} and {ratios:?}"
                );
                cell_anchors(sizes, ratios)
            })
            .collect();
        AnchorGenerator { cells }
    }
}

/// torchvision's `generate_anchors`: for each ratio, each size, a box centred on 0 with
/// `h / w = ratio` and area `size²`, halved and rounded (half to even) in f32.
fn cell_anchors(sizes: &[f32], ratios: &[f32]) -> Boxes {
    let mut out = Vec::with_capacity(sizes.len() * ratios.len());
    for &r in ratios {
        let h_ratio = r.sqrt();
        let w_ratio = 1.0 / h_ratio;
        for &s in sizes {
            let (ws, hs) = (w_ratio * s, h_ratio * s);
            out.push([-ws, -hs, ws, hs].map(|v| (v / 2.0).round_ties_even()));
        }
    }
    out
}

/// Anchors for a feature pyramid: every cell anchor at every feature-map location.
#[derive(Debug, Clone)]
pub struct AnchorGenerator {
    cells: Vec<Boxes>,
}

impl AnchorGenerator {
    /// Anchors per location of each level.
    pub fn num_anchors_per_location(&self) -> Vec<usize> {
        self.cells.iter().map(Vec::len).collect()
    }

    /// The anchors of one image, levels in order, location-major (row by row) and cell
    /// anchor minor, on the host. A level's stride is `padded_size / feature_size` (integer
    /// division), as torchvision.
    ///
    /// # Panics
    /// If the number of feature sizes differs from the number of levels.
    pub fn anchors_host(&self, padded_size: [usize; 2], feature_sizes: &[[usize; 2]]) -> Boxes {
        assert!(
            feature_sizes.len() == self.cells.len(),
            "AnchorGenerator: {} feature levels given for {} anchor levels",
            feature_sizes.len(),
            self.cells.len()
        );
        let mut out = Vec::new();
        for (cells, &[h, w]) in self.cells.iter().zip(feature_sizes) {
            let (sy, sx) = ((padded_size[0] / h) as f32, (padded_size[1] / w) as f32);
            for y in 0..h {
                for x in 0..w {
                    let (dx, dy) = (x as f32 * sx, y as f32 * sy);
                    out.extend(
                        cells
                            .iter()
                            .map(|c| [dx + c[0], dy + c[1], dx + c[2], dy + c[3]]),
                    );
                }
            }
        }
        out
    }

    /// [`anchors_host`](Self::anchors_host) as a `[A, 4]` tensor on `device`.
    pub fn anchors(
        &self,
        padded_size: [usize; 2],
        feature_sizes: &[[usize; 2]],
        device: &Device,
    ) -> Tensor<2> {
        boxes_tensor(&self.anchors_host(padded_size, feature_sizes), device)
    }
}
