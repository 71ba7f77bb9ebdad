//! Metrics of a confusion matrix: pixel (or top-1) accuracy, per-class IoU and recall,
//! mean IoU — the figures of semantic segmentation and classification.

/// A `classes × classes` confusion matrix, rows = target, columns = prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfusionMatrix {
    classes: usize,
    counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// An empty matrix.
    pub fn new(classes: usize) -> Self {
        Self {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// Adds pixels; targets outside `0..classes` (e.g. 255 = ignore) are skipped.
    ///
    /// # Panics
    /// If the lengths differ or a prediction is out of range.
    pub fn update(&mut self, predictions: &[i64], targets: &[i64]) {
        assert_eq!(
            predictions.len(),
            targets.len(),
            "predictions and targets differ in length"
        );
        for (&p, &t) in predictions.iter().zip(targets) {
            if t < 0 || t as usize >= self.classes {
                continue;
            }
            assert!(
                p >= 0 && (p as usize) < self.classes,
                "prediction {p} outside 0..{}",
                self.classes
            );
            self.counts[t as usize * self.classes + p as usize] += 1;
        }
    }

    /// Count of pixels of class `target` predicted as `prediction`.
    pub fn count(&self, target: usize, prediction: usize) -> u64 {
        self.counts[target * self.classes + prediction]
    }

    /// Fraction of counted pixels predicted correctly.
    pub fn accuracy(&self) -> f64 {
        let total: u64 = self.counts.iter().sum();
        let correct: u64 = (0..self.classes).map(|c| self.count(c, c)).sum();
        if total == 0 {
            0.0
        } else {
            correct as f64 / total as f64
        }
    }

    /// IoU of each class, `TP / (TP + FP + FN)`; `None` for a class absent from both targets
    /// and predictions.
    pub fn iou(&self) -> Vec<Option<f64>> {
        (0..self.classes)
            .map(|c| {
                let tp = self.count(c, c);
                let fn_: u64 = (0..self.classes).map(|p| self.count(c, p)).sum::<u64>() - tp;
                let fp: u64 = (0..self.classes).map(|t| self.count(t, c)).sum::<u64>() - tp;
                let union = tp + fp + fn_;
                (union > 0).then(|| tp as f64 / union as f64)
            })
            .collect()
    }

    /// Recall of each class, `TP / (TP + FN)` (per-class accuracy of a classifier); `None`
    /// for a class absent from the targets.
    pub fn recall(&self) -> Vec<Option<f64>> {
        (0..self.classes)
            .map(|c| {
                let total: u64 = (0..self.classes).map(|p| self.count(c, p)).sum();
                (total > 0).then(|| self.count(c, c) as f64 / total as f64)
            })
            .collect()
    }

    /// Mean IoU over the classes present in targets or predictions.
    pub fn mean_iou(&self) -> f64 {
        let present: Vec<f64> = self.iou().into_iter().flatten().collect();
        if present.is_empty() {
            0.0
        } else {
            present.iter().sum::<f64>() / present.len() as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_and_accuracy_by_hand() {
        let mut m = ConfusionMatrix::new(3);
        // targets 0 0 1 1 2, predictions 0 1 1 1 0; one ignored pixel.
        m.update(&[0, 1, 1, 1, 0, 2], &[0, 0, 1, 1, 2, 255]);
        assert_eq!(m.accuracy(), 3.0 / 5.0);
        let iou = m.iou();
        assert_eq!(iou[0], Some(1.0 / 3.0)); // tp 1, fn 1, fp 1
        assert_eq!(iou[1], Some(2.0 / 3.0)); // tp 2, fp 1
        assert_eq!(iou[2], Some(0.0)); // tp 0, fn 1
        assert_eq!(m.recall(), vec![Some(0.5), Some(1.0), Some(0.0)]);
        assert!((m.mean_iou() - (1.0 / 3.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        let mut absent = ConfusionMatrix::new(4);
        absent.update(&[0, 1], &[0, 1]);
        assert_eq!(absent.iou()[3], None);
        assert_eq!(absent.mean_iou(), 1.0);
    }
}
