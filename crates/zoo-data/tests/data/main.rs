//! zoo-data's integration tests, in one binary: the on-disk formats and the COCO mask parity
//! with pycocotools.

mod coco_masks;
mod formats;
