//! Instance segmentation (Mask R-CNN): targets are the samples' objects (box, class, mask),
//! the loss is the model's five-term sum, predictions are detections with masks, and the
//! figures are COCO box and mask AP as pycocotools computes them.

use burn::prelude::*;
use burn::tensor::TensorData;
use zoo_data::{Annotation, Sample};
use zoo_eval::coco::{ApReport, CocoEvaluator, Detection, GroundTruth, IouKind, Params};
use zoo_eval::{EvalReport, Rle};

use super::{
    Context, Detected, Evaluator, LossOptions, Overlay, OverlayBox, Prediction, Task, TaskError,
};
use crate::detection::host::SeededSampler;
use crate::detection::mask_rcnn::{InstanceTarget, MaskRcnn};

/// Detections drawn in overlays, and counted as finding an object, score at least this.
pub const SHOW_SCORE: f32 = 0.5;

/// The instance-segmentation task.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstanceSegmentation;

/// The objects of each sample as Mask R-CNN targets. Crowd regions, and objects whose box has
/// lost its width or height (cropped by augmentation, zero-size annotations), are left out, as
/// torchvision's reference COCO loader does.
fn targets(
    batch: &[Sample],
    classes: usize,
    device: &Device,
) -> Result<Vec<InstanceTarget>, TaskError> {
    batch
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let [h, w] = s.size;
            let kept: Vec<_> = s
                .objects
                .iter()
                .filter(|o| !o.crowd && o.bbox[2] > o.bbox[0] && o.bbox[3] > o.bbox[1])
                .collect();
            let g = kept.len();
            let mut boxes = Vec::with_capacity(4 * g);
            let mut labels = Vec::with_capacity(g);
            let mut masks = Vec::with_capacity(g * h * w);
            for (k, o) in kept.into_iter().enumerate() {
                if o.class == 0 || o.class >= classes {
                    return Err(TaskError::sample(
                        i,
                        format!(
                            "object {k} has class {} but the model has classes 1..{classes} (0 is the background)",
                            o.class
                        ),
                    ));
                }
                if o.mask.len() != h * w {
                    return Err(TaskError::sample(
                        i,
                        format!("object {k} has a mask of {} pixels, the image {h}×{w}", o.mask.len()),
                    ));
                }
                boxes.extend(o.bbox);
                labels.push(o.class as i64);
                masks.extend(o.mask.iter().map(|&m| if m { 1.0f32 } else { 0.0 }));
            }
            Ok(InstanceTarget {
                boxes: Tensor::from_data(TensorData::new(boxes, [g, 4]), device),
                labels: Tensor::from_data(TensorData::new(labels, [g]), device),
                masks: Tensor::from_data(TensorData::new(masks, [g, h, w]), device),
            })
        })
        .collect()
}

/// The images of a batch as Mask R-CNN takes them: one `[3, H, W]` tensor each.
fn images(batch: &[Sample], context: &Context) -> Vec<Tensor<3>> {
    batch
        .iter()
        .map(|s| context.preprocessing.image(s, context.device))
        .collect()
}

/// The Mask R-CNN losses of a batch, summed and by term; anchors and proposals sampled from
/// `options.seed`.
///
/// # Errors
/// An object of a class the model does not have, or a target the model refuses.
pub(crate) fn loss(
    model: &MaskRcnn,
    batch: &[Sample],
    context: &Context,
    options: &LossOptions,
) -> Result<crate::family::Loss, TaskError> {
    let targets = targets(batch, context.num_classes, context.device)?;
    let losses = model.losses(
        images(batch, context),
        &targets,
        &mut SeededSampler::new(options.seed),
    )?;
    Ok(crate::family::Loss {
        total: losses.total(),
        terms: vec![
            ("loss_objectness", losses.loss_objectness),
            ("loss_rpn_box_reg", losses.loss_rpn_box_reg),
            ("loss_classifier", losses.loss_classifier),
            ("loss_box_reg", losses.loss_box_reg),
            ("loss_mask", losses.loss_mask),
        ],
    })
}

/// The detections of each sample, masks thresholded at 0.5.
pub(crate) fn predict(model: &MaskRcnn, batch: &[Sample], context: &Context) -> Vec<Prediction> {
    model
        .detect(images(batch, context))
        .into_iter()
        .map(|d| {
            let boxes: Vec<f32> = d.boxes.into_data().iter::<f32>().collect();
            let scores: Vec<f32> = d.scores.into_data().iter::<f32>().collect();
            let labels: Vec<i64> = d.labels.into_data().iter::<i64>().collect();
            let [k, _, h, w] = d.masks.dims();
            let masks: Vec<bool> = d
                .masks
                .greater_equal_elem(0.5)
                .into_data()
                .iter::<bool>()
                .collect();
            let objects = (0..k)
                .map(|i| Detected {
                    class: labels[i] as usize,
                    score: scores[i],
                    bbox: [
                        boxes[4 * i],
                        boxes[4 * i + 1],
                        boxes[4 * i + 2],
                        boxes[4 * i + 3],
                    ],
                    mask: Rle::from_fn([h, w], |y, x| masks[(i * h + y) * w + x]),
                })
                .collect();
            Prediction::Objects(objects)
        })
        .collect()
}

/// A sample's object mask as an RLE.
fn object_mask(index: usize, sample: &Sample, mask: &[bool]) -> Result<Rle, TaskError> {
    Rle::from_mask(mask, sample.size)
        .map_err(|e| TaskError::sample(index, format!("an object's mask: {e}")))
}

impl Task for InstanceSegmentation {
    fn name(&self) -> &'static str {
        "instance segmentation"
    }

    fn annotation(&self) -> Annotation {
        Annotation::Objects
    }

    fn default_num_classes(&self) -> usize {
        91
    }

    fn evaluator(&self, class_names: Vec<String>) -> Box<dyn Evaluator> {
        let params = Params::new(class_names.len());
        Box::new(InstanceEvaluator {
            boxes: CocoEvaluator::new(IouKind::Box, &params),
            masks: CocoEvaluator::new(IouKind::Mask, &params),
            class_names,
            images: 0,
            objects: 0,
            found: 0,
        })
    }

    fn target_overlay(&self, sample: &Sample) -> Overlay {
        Overlay {
            class_mask: None,
            boxes: sample
                .objects
                .iter()
                .filter(|o| !o.crowd)
                .map(|o| OverlayBox {
                    bbox: o.bbox,
                    class: o.class,
                    score: None,
                    mask: Rle::from_mask(&o.mask, sample.size).ok(),
                })
                .collect(),
        }
    }
}

/// COCO box and mask AP (pycocotools' COCOeval: crowd regions ignored, not counted, the
/// annotations' areas for the size ranges), and the fraction of (non-crowd) objects found: a
/// detection of their class with mask IoU ≥ 0.5 and score ≥ [`SHOW_SCORE`].
struct InstanceEvaluator {
    boxes: CocoEvaluator,
    masks: CocoEvaluator,
    class_names: Vec<String>,
    images: usize,
    objects: usize,
    found: usize,
}

impl Evaluator for InstanceEvaluator {
    fn add(&mut self, samples: &[Sample], predictions: &[Prediction]) -> Result<(), TaskError> {
        let (mut dets, mut gts) = (Vec::new(), Vec::new());
        for (i, (s, p)) in samples.iter().zip(predictions).enumerate() {
            let Prediction::Objects(detected) = p else {
                return Err(TaskError::Mismatch {
                    task: "instance segmentation",
                    prediction: p.kind(),
                });
            };
            let image = self.images + i;
            for o in &s.objects {
                let truth = object_mask(i, s, &o.mask)?;
                if !o.crowd {
                    self.objects += 1;
                    self.found += usize::from(detected.iter().any(|d| {
                        d.class == o.class
                            && d.score >= SHOW_SCORE
                            && d.mask.iou(&truth, false) >= 0.5
                    }));
                }
                gts.push(GroundTruth {
                    mask: Some(truth),
                    iscrowd: o.crowd,
                    area: o.area,
                    ..GroundTruth::new(image, o.class, o.bbox)
                });
            }
            dets.extend(detected.iter().map(|d| Detection {
                mask: Some(d.mask.clone()),
                ..Detection::new(image, d.class, d.score, d.bbox)
            }));
        }
        self.boxes.add(&dets, &gts)?;
        self.masks.add(&dets, &gts)?;
        self.images += samples.len();
        Ok(())
    }

    fn report(&self) -> EvalReport {
        let (boxes, masks) = (self.boxes.report(), self.masks.report());
        let triple = |r: &ApReport| [r.ap, r.ap50, r.ap75].map(|v| v.unwrap_or(0.0));
        EvalReport {
            accuracy: if self.objects == 0 {
                0.0
            } else {
                self.found as f64 / self.objects as f64
            },
            miou: None,
            class_names: self.class_names.clone(),
            per_class: masks.per_class.clone(),
            samples: self.images,
            box_ap: Some(triple(&boxes)),
            mask_ap: Some(triple(&masks)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zoo_data::Object;

    fn square([x, y, side]: [usize; 3], [h, w]: [usize; 2]) -> (Vec<bool>, [f32; 4]) {
        let mask = (0..h * w)
            .map(|i| (y..y + side).contains(&(i / w)) && (x..x + side).contains(&(i % w)))
            .collect();
        let bbox = [x, y, x + side, y + side].map(|v| v as f32);
        (mask, bbox)
    }

    /// A detection on a crowd region is neither a match nor a false positive (pycocotools'
    /// `iscrowd`), and the crowd is not an object to find; unflagged, the same region is an
    /// object the detection matches, and a detection elsewhere of a higher score is a false
    /// positive.
    #[test]
    fn crowd_regions_are_ignored_as_pycocotools_does() {
        let size = [32, 32];
        let (object, object_box) = square([2, 2, 10], size);
        let (crowd, crowd_box) = square([16, 16, 12], size);
        let (inside, inside_box) = square([18, 18, 6], size);
        let sample = |flag: bool| Sample {
            objects: vec![
                Object::new(1, object_box, object.clone()),
                Object {
                    crowd: flag,
                    ..Object::new(1, crowd_box, crowd.clone())
                },
            ],
            ..Sample::unannotated(vec![0.0; 3 * 32 * 32], size)
        };
        let detection = |mask: &[bool], bbox, score| Detected {
            class: 1,
            score,
            bbox,
            mask: Rle::from_mask(mask, size).unwrap(),
        };
        // A detection inside the crowd region, scored above the true one.
        let predictions = [Prediction::Objects(vec![
            detection(&inside, inside_box, 0.9),
            detection(&object, object_box, 0.8),
        ])];
        let ap = |flag: bool| {
            let mut evaluator = InstanceSegmentation.evaluator(vec!["bg".into(), "thing".into()]);
            evaluator.add(&[sample(flag)], &predictions).unwrap();
            evaluator.report()
        };
        let crowded = ap(true);
        assert!(crowded.mask_ap.unwrap()[1] > 1.0 - 1e-9, "{crowded:?}");
        assert!(crowded.box_ap.unwrap()[1] > 1.0 - 1e-9, "{crowded:?}");
        assert_eq!(crowded.accuracy, 1.0, "one object to find, found");
        let plain = ap(false);
        assert!(plain.mask_ap.unwrap()[1] < 0.9, "{plain:?}");
        assert_eq!(plain.accuracy, 0.5);
        // The training targets leave the crowd out.
        let targets = targets(&[sample(true)], 2, &Device::flex()).unwrap();
        assert_eq!(targets[0].labels.dims(), [1]);
    }
}
