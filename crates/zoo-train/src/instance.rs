//! The instance-segmentation task (Mask R-CNN): samples as images and targets, the training
//! loss, detections on the host, and COCO box/mask AP as the validation figures.

use burn::prelude::*;
use burn::tensor::TensorData;
use zoo_data::{ImageDataset, Sample};
use zoo_eval::coco::{self, ApReport, Detection, GroundTruth, IouKind, Params};
use zoo_eval::{EvalReport, Rle};
use zoo_models::detection::host::SeededSampler;
use zoo_models::detection::mask_rcnn::{InstanceTarget, MaskRcnn};
use zoo_models::registry::ZooModel;

use crate::Error;
use crate::config::DataSection;
use crate::eval::samples;
use crate::plot::OverlayBox;

/// Detections drawn in overlays score at least this.
pub const SHOW_SCORE: f32 = 0.5;

/// The Mask R-CNN inside `model`.
///
/// # Errors
/// If `model` is another family.
pub fn mask_rcnn(model: &ZooModel) -> Result<&MaskRcnn, Error> {
    match model {
        ZooModel::MaskRcnn(m) => Ok(m),
        _ => Err(Error::Invalid(
            "the instance task needs a Mask R-CNN model".into(),
        )),
    }
}

/// Images as `[3, H, W]` tensors in `[0, 1]` (Mask R-CNN normalises them itself).
pub fn images(samples: &[Sample], device: &Device) -> Vec<Tensor<3>> {
    samples
        .iter()
        .map(|s| {
            let [h, w] = s.size;
            Tensor::from_data(TensorData::new(s.image.clone(), [3, h, w]), device)
        })
        .collect()
}

/// The objects of each sample as Mask R-CNN targets. Objects whose box has lost its width or
/// height (cropped by augmentation, zero-size annotations) are left out, as torchvision's
/// reference COCO loader does.
///
/// # Errors
/// An object whose class is not in `1..classes`, naming the sample and the object.
pub fn targets(
    samples: &[Sample],
    classes: usize,
    device: &Device,
) -> Result<Vec<InstanceTarget>, String> {
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let [h, w] = s.size;
            let kept: Vec<_> = s
                .objects
                .iter()
                .filter(|o| o.bbox[2] > o.bbox[0] && o.bbox[3] > o.bbox[1])
                .collect();
            let g = kept.len();
            let mut boxes = Vec::with_capacity(4 * g);
            let mut labels = Vec::with_capacity(g);
            let mut masks = Vec::with_capacity(g * h * w);
            for (k, o) in kept.into_iter().enumerate() {
                if o.class == 0 || o.class >= classes {
                    return Err(format!(
                        "sample {i} of the batch: object {k} has class {} but model.num_classes = {classes} (classes 1..{classes}, 0 is the background)",
                        o.class
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

/// The summed Mask R-CNN losses of a batch; anchors and proposals sampled from `seed`.
///
/// # Errors
/// A target the model refuses (degenerate box, class out of range), named.
pub fn loss(
    model: &ZooModel,
    batch: &[Sample],
    classes: usize,
    device: &Device,
    seed: u64,
) -> Result<Tensor<1>, Error> {
    let m = mask_rcnn(model)?;
    let targets = targets(batch, classes, device).map_err(Error::Invalid)?;
    let losses = m
        .losses(
            images(batch, device),
            &targets,
            &mut SeededSampler::new(seed),
        )
        .map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(losses.total())
}

/// One detected object on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Class (≥ 1).
    pub class: usize,
    /// Class probability.
    pub score: f32,
    /// `[x1, y1, x2, y2]` in pixels.
    pub bbox: [f32; 4],
    /// The mask (probability ≥ 0.5).
    pub mask: Rle,
}

/// The detections of each sample.
///
/// # Errors
/// If `model` is not a Mask R-CNN.
pub fn detect(
    model: &ZooModel,
    batch: &[Sample],
    device: &Device,
) -> Result<Vec<Vec<Found>>, Error> {
    let m = mask_rcnn(model)?;
    Ok(m.detect(images(batch, device))
        .into_iter()
        .map(|d| {
            let boxes: Vec<f32> = d.boxes.into_data().iter::<f32>().collect();
            let scores: Vec<f32> = d.scores.into_data().iter::<f32>().collect();
            let labels: Vec<i64> = d.labels.into_data().iter::<i64>().collect();
            let [k, _, h, w] = d.masks.dims();
            let masks: Vec<f32> = d.masks.into_data().iter::<f32>().collect();
            (0..k)
                .map(|i| Found {
                    class: labels[i] as usize,
                    score: scores[i],
                    bbox: [
                        boxes[4 * i],
                        boxes[4 * i + 1],
                        boxes[4 * i + 2],
                        boxes[4 * i + 3],
                    ],
                    mask: Rle::from_fn([h, w], |y, x| masks[(i * h + y) * w + x] >= 0.5),
                })
                .collect()
        })
        .collect())
}

/// The detections scoring at least [`SHOW_SCORE`], as overlay boxes with their masks.
pub fn overlay_boxes(found: &[Found]) -> Vec<OverlayBox<'_>> {
    found
        .iter()
        .filter(|d| d.score >= SHOW_SCORE)
        .map(|d| OverlayBox {
            bbox: d.bbox,
            class: d.class,
            score: Some(d.score),
            mask: Some(d.mask.decode().into()),
        })
        .collect()
}

/// COCO box and mask AP of `model` over `dataset` (pycocotools' COCOeval, see [`zoo_eval::coco`]).
/// `accuracy` is the fraction of objects found: a detection of their class with mask IoU ≥
/// 0.5 and score ≥ [`SHOW_SCORE`]; `per_class` is each class's mask AP.
///
/// # Errors
/// A sample that fails to load, or evaluator input it refuses.
pub fn evaluate(
    model: &ZooModel,
    dataset: &dyn ImageDataset,
    classes: usize,
    data: &DataSection,
    batch_size: usize,
    device: &Device,
) -> Result<EvalReport, Error> {
    let indices: Vec<usize> = (0..dataset.len()).collect();
    let (mut dets, mut gts) = (Vec::new(), Vec::new());
    let (mut found, mut objects) = (0usize, 0usize);
    for chunk in indices.chunks(batch_size.max(1)) {
        let batch = samples(dataset, chunk, None, data)?;
        let detections = detect(model, &batch, device)?;
        for ((&image, s), ds) in chunk.iter().zip(&batch).zip(detections) {
            for o in &s.objects {
                let truth = Rle::from_mask(&o.mask, s.size).map_err(|e| {
                    Error::Invalid(format!("sample {image}: an object's mask: {e}"))
                })?;
                objects += 1;
                found += usize::from(ds.iter().any(|d| {
                    d.class == o.class && d.score >= SHOW_SCORE && d.mask.iou(&truth, false) >= 0.5
                }));
                gts.push(GroundTruth {
                    mask: Some(truth),
                    ..GroundTruth::new(image, o.class, o.bbox)
                });
            }
            dets.extend(ds.into_iter().map(|d| Detection {
                mask: Some(d.mask),
                ..Detection::new(image, d.class, d.score, d.bbox)
            }));
        }
    }
    let params = Params::new(classes);
    let run = |kind| {
        coco::evaluate(&dets, &gts, kind, &params).map_err(|e| Error::Invalid(e.to_string()))
    };
    let boxes = run(IouKind::Box)?;
    let masks = run(IouKind::Mask)?;
    let triple = |r: &ApReport| [r.ap, r.ap50, r.ap75].map(|v| v.unwrap_or(0.0));
    Ok(EvalReport {
        accuracy: if objects == 0 {
            0.0
        } else {
            found as f64 / objects as f64
        },
        miou: None,
        class_names: crate::eval::class_names(dataset, classes),
        per_class: masks.per_class.clone(),
        samples: dataset.len(),
        box_ap: Some(triple(&boxes)),
        mask_ap: Some(triple(&masks)),
    })
}
