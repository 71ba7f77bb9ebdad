//! COCO AP against pycocotools' `COCOeval` on the cases of `tools/parity/ap.py`.

use serde_json::Value;
use zoo_eval::Rle;
use zoo_eval::coco::{
    CocoEvaluator, Detection, DetectionArea, GroundTruth, IouKind, Params, evaluate,
};

/// A fixture mask (row-major runs, background first) as an RLE of a `size` image.
fn runs_to_rle(runs: &Value, size: [usize; 2]) -> Rle {
    let mut mask = Vec::with_capacity(size[0] * size[1]);
    for (i, r) in runs.as_array().expect("runs").iter().enumerate() {
        let n = r.as_u64().expect("run length") as usize;
        mask.extend(std::iter::repeat_n(i % 2 == 1, n));
    }
    Rle::from_mask(&mask, size).expect("a mask of the case's size")
}

fn bbox(v: &Value) -> [f32; 4] {
    let a: Vec<f32> = v
        .as_array()
        .expect("bbox")
        .iter()
        .map(|x| x.as_f64().expect("coordinate") as f32)
        .collect();
    [a[0], a[1], a[2], a[3]]
}

fn usize_of(v: &Value, key: &str) -> usize {
    v[key].as_u64().expect(key) as usize
}

fn opt_mask(v: &Value, size: [usize; 2]) -> Option<Rle> {
    (!v["mask"].is_null()).then(|| runs_to_rle(&v["mask"], size))
}

#[test]
fn matches_pycocotools() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ap/cases.json");
    let text = std::fs::read_to_string(path).expect("fixture (run tools/parity/ap.py)");
    let root: Value = serde_json::from_str(&text).expect("json");
    let cases = root["cases"].as_array().expect("cases");
    assert!(cases.len() >= 6);
    let mut worst = 0.0f64;
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let size = [usize_of(case, "height"), usize_of(case, "width")];
        let kind = match case["kind"].as_str() {
            Some("box") => IouKind::Box,
            _ => IouKind::Mask,
        };
        let mut params = Params::new(usize_of(case, "num_classes"));
        if case["det_area"].as_str() == Some("box") {
            params.mask_detection_area = DetectionArea::Box;
        }
        let dets: Vec<Detection> = case["detections"]
            .as_array()
            .expect("detections")
            .iter()
            .map(|d| Detection {
                mask: opt_mask(d, size),
                ..Detection::new(
                    usize_of(d, "image"),
                    usize_of(d, "class"),
                    d["score"].as_f64().expect("score") as f32,
                    bbox(&d["bbox"]),
                )
            })
            .collect();
        let gts: Vec<GroundTruth> = case["ground_truths"]
            .as_array()
            .expect("ground_truths")
            .iter()
            .map(|g| GroundTruth {
                mask: opt_mask(g, size),
                iscrowd: g["iscrowd"].as_bool().expect("iscrowd"),
                area: g["area"].as_f64().map(|a| a as f32),
                ..GroundTruth::new(usize_of(g, "image"), usize_of(g, "class"), bbox(&g["bbox"]))
            })
            .collect();
        let report = evaluate(&dets, &gts, kind, &params).expect("evaluate");
        let stats = report.stats();
        for (i, want) in case["stats"].as_array().expect("stats").iter().enumerate() {
            let want = want.as_f64().expect("stat");
            let diff = (stats[i] - want).abs();
            worst = worst.max(diff);
            assert!(diff < 1e-6, "{name}: stats[{i}] = {} vs {want}", stats[i]);
        }
        let per_class = case["per_class"].as_array().expect("per_class");
        assert_eq!(report.per_class.len(), per_class.len(), "{name}");
        for (k, (got, want)) in report.per_class.iter().zip(per_class).enumerate() {
            match (got, want.as_f64()) {
                (Some(g), Some(w)) => {
                    worst = worst.max((g - w).abs());
                    assert!((g - w).abs() < 1e-6, "{name}: class {k}: {g} vs {w}");
                }
                (None, None) => {}
                _ => panic!("{name}: class {k}: {got:?} vs {want}"),
            }
        }
        // The same data fed image by image gives the same report.
        let mut ev = CocoEvaluator::new(kind, &params);
        let mut images: Vec<usize> = dets.iter().map(|d| d.image).collect();
        images.extend(gts.iter().map(|g| g.image));
        images.sort_unstable();
        images.dedup();
        for img in images.iter().rev() {
            let d: Vec<Detection> = dets.iter().filter(|d| d.image == *img).cloned().collect();
            let g: Vec<GroundTruth> = gts.iter().filter(|g| g.image == *img).cloned().collect();
            ev.add(&d, &g).expect("add");
        }
        assert_eq!(ev.report(), report, "{name}: incremental");
    }
    eprintln!("max |rust - pycocotools| = {worst:e}");
}
