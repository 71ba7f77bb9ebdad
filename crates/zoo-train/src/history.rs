//! A run's history: one [`EpochReport`] per epoch, written as `history.json` (read back on
//! `--resume`), `metrics.csv` and the curves `loss.png` and `metrics.png`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use zoo_eval::EvalReport;

use crate::Error;
use crate::checkpoint::write_atomic;
use crate::plot::{Chart, Series};

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation figures.
    pub val: EvalReport,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Wall time of the epoch (training and validation).
    pub seconds: f64,
}

/// Reads `history.json` back.
///
/// # Errors
/// A missing or malformed file.
pub fn read(path: &Path) -> Result<Vec<EpochReport>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| Error::History {
        path: path.to_path_buf(),
        source,
    })
}

/// The CSV of `history`: epoch, loss, accuracy, mIoU, box AP, mask AP, mask AP50, learning
/// rate and seconds, then the per-class figure of each class (empty where a run has none).
pub fn csv(history: &[EpochReport]) -> String {
    let mut csv = String::from(
        "epoch,train_loss,val_accuracy,val_miou,val_box_ap,val_mask_ap,val_mask_ap50,lr,seconds",
    );
    if let Some(first) = history.first() {
        let what = first.val.per_class_name().to_lowercase().replace(' ', "_");
        for name in &first.val.class_names {
            csv += &format!(",val_{what}_{}", name.replace([',', ' '], "_"));
        }
    }
    csv.push('\n');
    for r in history {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
        csv += &format!(
            "{},{:.6},{:.6},{},{},{},{},{:.6e},{:.2}",
            r.epoch,
            r.train_loss,
            r.val.accuracy,
            opt(r.val.miou),
            opt(r.val.box_ap.map(|a| a[0])),
            opt(r.val.mask_ap.map(|a| a[0])),
            opt(r.val.mask_ap.map(|a| a[1])),
            r.lr,
            r.seconds
        );
        for v in &r.val.per_class {
            csv += &v.map_or(",".to_string(), |v| format!(",{v:.6}"));
        }
        csv.push('\n');
    }
    csv
}

/// The finite losses of `steps.csv` (see [`crate::steps`]) against the epoch: step b of B in
/// epoch e at `e − 1 + b / B` (B: the epoch's last batch seen); empty without the file.
fn step_losses(path: &Path) -> Vec<(f64, f64)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let rows: Vec<(usize, usize, f64)> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut cols = l.split(',');
            let epoch = cols.next()?.parse().ok()?;
            let batch = cols.next()?.parse().ok()?;
            let loss: f64 = cols.nth(1)?.parse().ok()?;
            loss.is_finite().then_some((epoch, batch, loss))
        })
        .collect();
    let mut batches = std::collections::HashMap::new();
    for &(epoch, batch, _) in &rows {
        let b = batches.entry(epoch).or_insert(1);
        *b = batch.max(*b);
    }
    rows.iter()
        .map(|&(e, b, loss)| ((e - 1) as f64 + b as f64 / batches[&e] as f64, loss))
        .collect()
}

/// Writes `history.json`, `metrics.csv`, `loss.png` (per-epoch means, and each step's loss
/// where `steps.csv` has them) and `metrics.png` into `out`.
///
/// # Errors
/// A write failure.
pub fn write(out: &Path, history: &[EpochReport]) -> Result<(), Error> {
    let path = out.join("history.json");
    let json = serde_json::to_string_pretty(history).map_err(|source| Error::History {
        path: path.clone(),
        source,
    })?;
    write_atomic(&path, json.as_bytes())?;
    write_atomic(&out.join("metrics.csv"), csv(history).as_bytes())?;
    let series = |name: &str, f: &dyn Fn(&EpochReport) -> Option<f64>| Series {
        name: name.into(),
        points: history
            .iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect(),
    };
    // Per step (from `steps.csv`, where the run has one) under the per-epoch means.
    let steps = Series {
        name: "train loss per step".into(),
        points: step_losses(&out.join("steps.csv")),
    };
    let loss: Vec<Series> = [
        steps,
        series("train loss (epoch mean)", &|r| Some(r.train_loss)),
    ]
    .into_iter()
    .filter(|s| !s.points.is_empty())
    .collect();
    Chart::new("training loss", "epoch", &loss).save(&out.join("loss.png"))?;
    let metrics: Vec<Series> = [
        series("val accuracy", &|r| Some(r.val.accuracy)),
        series("val mIoU", &|r| r.val.miou),
        series("val box AP", &|r| r.val.box_ap.map(|a| a[0])),
        series("val mask AP", &|r| r.val.mask_ap.map(|a| a[0])),
    ]
    .into_iter()
    .filter(|s| !s.points.is_empty())
    .collect();
    Chart::new("validation", "epoch", &metrics).save(&out.join("metrics.png"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_losses_place_each_step_within_its_epoch() {
        let dir = std::env::temp_dir().join(format!("zoo-steps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("steps.csv");
        std::fs::write(
            &path,
            "epoch,batch,step,loss,lr,grad_norm,images_per_s,data_wait_s,seconds,skipped,terms\n\
             1,1,1,2.0,1e-3,1.0,10,0,0.1,0,\n1,2,2,1.5,1e-3,1.0,10,0,0.1,0,\n\
             2,1,3,NaN,1e-3,NaN,10,0,0.1,1,\n2,2,4,1.0,1e-3,1.0,10,0,0.1,0,\n",
        )
        .unwrap();
        assert_eq!(step_losses(&path), vec![(0.5, 2.0), (1.0, 1.5), (2.0, 1.0)]);
        std::fs::remove_dir_all(dir).ok();
    }
}
