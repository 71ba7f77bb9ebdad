//! [`EvalReport`]: the validation figures of a model, whatever its task — what a training
//! run records per epoch, prints as a table and picks its best checkpoint by.

use serde::{Deserialize, Serialize};

/// The validation figures of a model. Each task fills the fields it has: segmentation
/// `accuracy` (pixels), `miou` and per-class IoU; classification `accuracy` (top-1) and
/// per-class recall; instance segmentation `accuracy` (objects found), `box_ap`, `mask_ap`
/// and per-class mask AP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Pixel accuracy (segmentation), top-1 accuracy (classification), or the fraction of
    /// objects found: a detection of their class with mask IoU ≥ 0.5 (instance).
    pub accuracy: f64,
    /// Mean IoU over the classes present (segmentation).
    pub miou: Option<f64>,
    /// Class names, by id.
    pub class_names: Vec<String>,
    /// Per class: IoU (segmentation), recall (classification) or mask AP (instance); `None`
    /// when the class is in neither targets nor predictions (instance: has no object).
    pub per_class: Vec<Option<f64>>,
    /// Samples evaluated.
    pub samples: usize,
    /// COCO box AP, AP50, AP75 (instance).
    #[serde(default)]
    pub box_ap: Option<[f64; 3]>,
    /// COCO mask AP, AP50, AP75 (instance).
    #[serde(default)]
    pub mask_ap: Option<[f64; 3]>,
}

impl EvalReport {
    /// The figure that picks the best checkpoint: mask AP, else mIoU, else accuracy.
    pub fn primary(&self) -> f64 {
        match self.mask_ap {
            Some([ap, _, _]) => ap,
            None => self.miou.unwrap_or(self.accuracy),
        }
    }

    /// The name of [`Self::primary`] as a metrics column: `val_mask_ap`, `val_miou` or
    /// `val_accuracy`.
    pub fn primary_name(&self) -> &'static str {
        match (self.mask_ap, self.miou) {
            (Some(_), _) => "val_mask_ap",
            (None, Some(_)) => "val_miou",
            (None, None) => "val_accuracy",
        }
    }

    /// The name of [`Self::primary`] for people (a console column): `val_mask_AP`,
    /// `val_mIoU` or `val_top1`.
    pub fn primary_label(&self) -> &'static str {
        match (self.mask_ap, self.miou) {
            (Some(_), _) => "val_mask_AP",
            (None, Some(_)) => "val_mIoU",
            (None, None) => "val_top1",
        }
    }

    /// What [`Self::per_class`] holds: `mask AP`, `IoU` or `recall`.
    pub fn per_class_name(&self) -> &'static str {
        match (self.mask_ap, self.miou) {
            (Some(_), _) => "mask AP",
            (None, Some(_)) => "IoU",
            (None, None) => "recall",
        }
    }

    /// What [`Self::accuracy`] measures: `objects found` (instance) or `accuracy`.
    pub fn accuracy_name(&self) -> &'static str {
        match self.mask_ap {
            Some(_) => "objects found",
            None => "accuracy",
        }
    }

    /// A plain-text table: one line per metric, then one per class.
    pub fn table(&self) -> String {
        let mut out = format!("{:<24} {:>8}\n", "metric", "value");
        out += &format!("{:<24} {:>8.4}\n", self.accuracy_name(), self.accuracy);
        if let Some(m) = self.miou {
            out += &format!("{:<24} {:>8.4}\n", "mIoU", m);
        }
        for (kind, values) in [("box", self.box_ap), ("mask", self.mask_ap)] {
            if let Some(v) = values {
                for (name, x) in ["AP", "AP50", "AP75"].iter().zip(v) {
                    out += &format!("{:<24} {:>8.4}\n", format!("{kind} {name}"), x);
                }
            }
        }
        let what = self.per_class_name();
        for (name, v) in self.class_names.iter().zip(&self.per_class) {
            let v = v.map_or("-".to_string(), |v| format!("{v:.4}"));
            out += &format!("{:<24} {:>8}\n", format!("{what} {name}"), v);
        }
        out
    }
}
