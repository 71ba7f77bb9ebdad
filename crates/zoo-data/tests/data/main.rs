//! zoo-data's integration tests, in one binary: the on-disk formats and the COCO mask parity
//! with pycocotools, and the readers under malformed input.

mod coco_masks;
mod formats;
mod fuzz;
mod resize;
