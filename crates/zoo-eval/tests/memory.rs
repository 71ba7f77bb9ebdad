//! The memory a COCO-val2017-sized evaluation takes, measured by a counting allocator (this
//! test is alone in its binary, so nothing else allocates meanwhile).
//!
//! The synthetic set has COCO val2017's size: 5 000 images of 480×640, 36 781 objects over
//! 80 classes, 100 detections per image (500 000), every object and detection with a mask.
//! Batches of 8 images are made, added to a box and a mask evaluator, and dropped, as a
//! validation pass does; the test asserts the peak of live heap memory and prints it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use zoo_data::rng::SplitMix64;
use zoo_eval::Rle;
use zoo_eval::coco::{CocoEvaluator, Detection, GroundTruth, IouKind, Params};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const IMAGES: usize = 5_000;
const OBJECTS: usize = 36_781;
const DETECTIONS_PER_IMAGE: usize = 100;
const CLASSES: usize = 80;
const SIZE: [usize; 2] = [480, 640];
const BATCH: usize = 8;
/// What the test asserts: far below "a few GB".
const BOUND: usize = 256 << 20;

/// The RLE of the box `[x0, x1) × [y0, y1)`, built from its runs (two per column).
fn box_rle([x0, y0, x1, y1]: [usize; 4]) -> Rle {
    let [h, w] = SIZE;
    let mut counts = vec![(x0 * h + y0) as u32];
    for x in x0..x1 {
        counts.push((y1 - y0) as u32);
        counts.push(if x + 1 < x1 {
            (h - y1 + y0) as u32
        } else {
            (h - y1 + (w - x1) * h) as u32
        });
    }
    Rle::from_counts(SIZE, counts).expect("runs of the image")
}

fn random_box(rng: &mut SplitMix64) -> [usize; 4] {
    let [h, w] = SIZE;
    let (bw, bh) = (8 + rng.below(200), 8 + rng.below(200));
    let (x0, y0) = (rng.below(w - bw), rng.below(h - bh));
    [x0, y0, x0 + bw, y0 + bh]
}

/// Ground truth and detections of `image`: its objects, and 100 detections, most of them
/// jittered copies of its objects (same class), the rest anywhere.
fn image(rng: &mut SplitMix64, image: usize) -> (Vec<GroundTruth>, Vec<Detection>) {
    let objects = OBJECTS / IMAGES + usize::from(image < OBJECTS % IMAGES);
    let gts: Vec<(usize, [usize; 4])> = (0..objects)
        .map(|_| (rng.below(CLASSES), random_box(rng)))
        .collect();
    let dets = (0..DETECTIONS_PER_IMAGE)
        .map(|_| {
            let (class, b) = if rng.below(4) > 0 {
                let (class, [x0, y0, x1, y1]) = gts[rng.below(gts.len())];
                let mut shift =
                    |v: usize, max: usize| (v + rng.below(9)).saturating_sub(4).min(max);
                let (x0, y0) = (shift(x0, x1 - 1), shift(y0, y1 - 1));
                (class, [x0, y0, x1.max(x0 + 1), y1.max(y0 + 1)])
            } else {
                (rng.below(CLASSES), random_box(rng))
            };
            let score = (rng.below(1000) as f32 + 1.0) / 1000.0;
            Detection {
                mask: Some(box_rle(b)),
                ..Detection::new(image, class, score, b.map(|v| v as f32))
            }
        })
        .collect();
    let gts = gts
        .into_iter()
        .map(|(class, b)| GroundTruth {
            mask: Some(box_rle(b)),
            ..GroundTruth::new(image, class, b.map(|v| v as f32))
        })
        .collect();
    (gts, dets)
}

#[test]
fn coco_val_sized_evaluation_fits_in_a_bounded_memory() {
    let start = std::time::Instant::now();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let params = Params::new(CLASSES);
    let mut boxes = CocoEvaluator::new(IouKind::Box, &params);
    let mut masks = CocoEvaluator::new(IouKind::Mask, &params);
    let mut rng = SplitMix64(2017);
    let (mut objects, mut detections, mut runs) = (0, 0, 0);
    for first in (0..IMAGES).step_by(BATCH) {
        let (mut gts, mut dets) = (Vec::new(), Vec::new());
        for i in first..(first + BATCH).min(IMAGES) {
            let (g, d) = image(&mut rng, i);
            gts.extend(g);
            dets.extend(d);
        }
        objects += gts.len();
        detections += dets.len();
        runs += dets
            .iter()
            .map(|d| d.mask.as_ref().map_or(0, |m| m.counts().len()))
            .sum::<usize>();
        boxes.add(&dets, &gts).expect("box evaluation");
        masks.add(&dets, &gts).expect("mask evaluation");
    }
    let (box_report, mask_report) = (boxes.report(), masks.report());
    let peak = PEAK.load(Ordering::Relaxed) - base;
    assert_eq!(
        (objects, detections),
        (OBJECTS, IMAGES * DETECTIONS_PER_IMAGE)
    );
    for ap in [box_report.ap, mask_report.ap] {
        assert!(ap.is_some_and(|v| (0.0..=1.0).contains(&v)), "{ap:?}");
    }
    let dense = detections as f64 * (SIZE[0] * SIZE[1]) as f64;
    println!(
        "COCO-val-sized evaluation: {IMAGES} images of {}×{}, {objects} objects, {detections} \
         detections ({:.0} runs per mask); box AP {:.3}, mask AP {:.3}; peak live heap {:.1} MiB \
         (the detections' dense masks alone: {:.0} GiB); {:.1} s",
        SIZE[0],
        SIZE[1],
        runs as f64 / detections as f64,
        box_report.ap.unwrap_or(-1.0),
        mask_report.ap.unwrap_or(-1.0),
        peak as f64 / (1u64 << 20) as f64,
        dense / (1u64 << 30) as f64,
        start.elapsed().as_secs_f64()
    );
    assert!(
        peak < BOUND,
        "peak live heap {peak} bytes exceeds the bound {BOUND}"
    );
}
