//! COCO AP on hand-made cases whose figures are known without pycocotools.

use zoo_eval::Rle;
use zoo_eval::coco::{CocoEvaluator, Detection, GroundTruth, IouKind, Params, evaluate};

fn gt(image: usize, class: usize, bbox: [f32; 4]) -> GroundTruth {
    GroundTruth::new(image, class, bbox)
}

fn det(image: usize, class: usize, score: f32, bbox: [f32; 4]) -> Detection {
    Detection::new(image, class, score, bbox)
}

/// "1" as pycocotools computes it: precision is tp / (tp + fp + eps).
fn one(v: Option<f64>) -> bool {
    v.is_some_and(|v| (v - 1.0).abs() < 1e-12)
}

#[test]
fn no_detections_gives_zero() {
    let gts = [
        gt(0, 0, [0.0, 0.0, 10.0, 10.0]),
        gt(1, 1, [0.0, 0.0, 50.0, 50.0]),
    ];
    let r = evaluate(&[], &gts, IouKind::Box, &Params::new(3)).unwrap();
    assert_eq!(r.ap, Some(0.0));
    assert_eq!(r.ap_small, Some(0.0));
    assert_eq!(r.ap_large, None);
    assert_eq!(r.ar100, Some(0.0));
    assert_eq!(r.per_class, vec![Some(0.0), Some(0.0), None]);
}

#[test]
fn no_ground_truth_gives_none() {
    let dets = [det(0, 0, 0.9, [0.0, 0.0, 10.0, 10.0])];
    let r = evaluate(&dets, &[], IouKind::Box, &Params::new(2)).unwrap();
    assert_eq!(r.stats(), [-1.0; 12]);
    assert_eq!(r.per_class, vec![None, None]);
    let r = evaluate(&[], &[], IouKind::Mask, &Params::new(2)).unwrap();
    assert_eq!(r.ap, None);
}

#[test]
fn perfect_detections_give_one() {
    let boxes = [
        [0.0, 0.0, 10.0, 10.0],
        [20.0, 20.0, 80.0, 70.0],
        [5.0, 5.0, 205.0, 155.0],
    ];
    let mut gts = Vec::new();
    let mut dets = Vec::new();
    for img in 0..3 {
        for (k, b) in boxes.iter().enumerate() {
            gts.push(gt(img, k, *b));
            dets.push(det(img, k, 0.5, *b));
        }
    }
    let r = evaluate(&dets, &gts, IouKind::Box, &Params::new(3)).unwrap();
    for v in r.stats() {
        assert!((v - 1.0).abs() < 1e-12, "{:?}", r.stats());
    }
    assert!(r.per_class.iter().all(|&p| one(p)), "{:?}", r.per_class);

    // Masks: 4×6 images, one object each.
    let mask = |x0: usize, x1: usize| Rle::from_fn([4, 6], |_, x| (x0..x1).contains(&x));
    let g = GroundTruth {
        mask: Some(mask(1, 4)),
        ..gt(0, 0, [1.0, 0.0, 4.0, 4.0])
    };
    let d = Detection {
        mask: Some(mask(1, 4)),
        ..det(0, 0, 0.3, [1.0, 0.0, 4.0, 4.0])
    };
    let r = evaluate(
        std::slice::from_ref(&d),
        std::slice::from_ref(&g),
        IouKind::Mask,
        &Params::new(1),
    )
    .unwrap();
    assert!(one(r.ap) && one(r.ar1), "{r:?}");
    // One of the object's three columns: IoU 1/3, not found.
    let third = Detection {
        mask: Some(mask(1, 2)),
        ..d
    };
    let r = evaluate(&[third], &[g], IouKind::Mask, &Params::new(1)).unwrap();
    assert_eq!(r.ap50, Some(0.0));
    // Two of its three columns: IoU 2/3, found at thresholds 0.50–0.65.
    let two_thirds = Detection {
        mask: Some(mask(2, 4)),
        ..det(0, 0, 0.3, [2.0, 0.0, 4.0, 4.0])
    };
    let g = GroundTruth {
        mask: Some(mask(1, 4)),
        ..gt(0, 0, [1.0, 0.0, 4.0, 4.0])
    };
    let r = evaluate(&[two_thirds], &[g], IouKind::Mask, &Params::new(1)).unwrap();
    assert!(one(r.ap50) && r.ap75 == Some(0.0), "IoU 2/3: {r:?}");
}

#[test]
fn crowd_absorbs_detections() {
    // One real object and a crowd region; detections inside the crowd are not false
    // positives, so AP stays 1.
    let mut crowd = gt(0, 0, [100.0, 100.0, 200.0, 200.0]);
    crowd.iscrowd = true;
    let gts = [gt(0, 0, [0.0, 0.0, 10.0, 10.0]), crowd];
    let dets = [
        det(0, 0, 0.9, [110.0, 110.0, 120.0, 120.0]),
        det(0, 0, 0.8, [0.0, 0.0, 10.0, 10.0]),
        det(0, 0, 0.7, [130.0, 130.0, 150.0, 150.0]),
    ];
    let r = evaluate(&dets, &gts, IouKind::Box, &Params::new(1)).unwrap();
    assert!((r.ap.unwrap() - 1.0).abs() < 1e-12, "{r:?}");
}

#[test]
fn inconsistent_inputs_are_errors() {
    let p = Params::new(2);
    let e = evaluate(&[det(0, 2, 0.5, [0.0; 4])], &[], IouKind::Box, &p).unwrap_err();
    assert!(e.to_string().contains("detections[0].class"), "{e}");
    let e = evaluate(&[det(0, 0, 0.5, [0.0; 4])], &[], IouKind::Mask, &p).unwrap_err();
    assert!(e.to_string().contains("detections[0].mask"), "{e}");
    let e = evaluate(&[], &[gt(0, 0, [5.0, 0.0, 1.0, 1.0])], IouKind::Box, &p).unwrap_err();
    assert!(e.to_string().contains("ground_truths[0].bbox"), "{e}");
    let d = Detection {
        mask: Some(Rle::from_fn([3, 4], |_, _| true)),
        ..det(0, 0, 0.5, [0.0; 4])
    };
    let g = GroundTruth {
        mask: Some(Rle::from_fn([2, 5], |_, _| true)),
        ..gt(0, 0, [0.0; 4])
    };
    let e = evaluate(&[d], &[g], IouKind::Mask, &p).unwrap_err();
    assert!(
        e.to_string().contains("ground_truths[0].mask") && e.to_string().contains("[3, 4]"),
        "{e}"
    );
    let mut ev = CocoEvaluator::new(IouKind::Box, &p);
    ev.add(&[], &[gt(3, 0, [0.0; 4])]).unwrap();
    let e = ev.add(&[det(3, 0, 0.5, [0.0; 4])], &[]).unwrap_err();
    assert!(e.to_string().contains("detections[0].image"), "{e}");
    let e = evaluate(&[det(0, 0, f32::NAN, [0.0; 4])], &[], IouKind::Box, &p).unwrap_err();
    assert!(e.to_string().contains("detections[0].score"), "{e}");
}
