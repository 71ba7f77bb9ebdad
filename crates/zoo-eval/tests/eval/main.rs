//! zoo-eval against pycocotools' fixtures and on hand-made cases.

mod coco;
mod pycocotools;
