//! The readers under malformed input: seeded mutations (byte flips, truncations, deleted,
//! duplicated and inserted runs) of valid files, each read back; every reader must return
//! a sample or an error, never panic. (A seeded mutator rather than `proptest` /
//! `cargo fuzz`: the same cases on every machine, run in the ordinary test binary in
//! seconds, and no new dependency whose features would change Burn's build.)

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use zoo_data::decode::read_rgb;
use zoo_data::rng::SplitMix64;
use zoo_data::voc::read_index_png;
use zoo_data::{Coco, ImageDataset, Voc};

use crate::formats::{TempDir, coco_doc, write_coco, write_jpeg, write_png, write_voc_pair};

/// Mutations of each file.
const CASES: usize = 150;

/// A mutation of `bytes`: one to three edits, chosen by `rng`.
pub(crate) fn mutate(bytes: &[u8], rng: &mut SplitMix64) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for _ in 0..1 + rng.next_u64() % 3 {
        let len = out.len().max(1);
        let at = (rng.next_u64() as usize) % len;
        let span = 1 + (rng.next_u64() as usize) % 16.min(len);
        match rng.next_u64() % 5 {
            0 => {
                if let Some(b) = out.get_mut(at) {
                    *b ^= 1 << (rng.next_u64() % 8);
                }
            }
            1 => out.truncate(at),
            2 => {
                let end = (at + span).min(out.len());
                out.drain(at.min(end)..end);
            }
            3 => {
                let end = (at + span).min(out.len());
                let run: Vec<u8> = out[at.min(end)..end].to_vec();
                out.splice(at.min(out.len())..at.min(out.len()), run);
            }
            _ => {
                let run: Vec<u8> = (0..span).map(|_| rng.next_u64() as u8).collect();
                out.splice(at.min(out.len())..at.min(out.len()), run);
            }
        }
    }
    out
}

/// Runs `read` on `CASES` mutations of `path`'s content (restored afterwards); a panic
/// fails the test naming the case.
fn fuzz(path: &Path, seed: u64, read: impl Fn()) {
    let original = std::fs::read(path).expect("fixture");
    let mut rng = SplitMix64(seed);
    for case in 0..CASES {
        std::fs::write(path, mutate(&original, &mut rng)).expect("write mutation");
        let outcome = catch_unwind(AssertUnwindSafe(&read));
        assert!(
            outcome.is_ok(),
            "{}: mutation {case} of seed {seed} panicked",
            path.display()
        );
    }
    std::fs::write(path, original).expect("restore");
}

#[test]
fn image_decoders_never_panic_on_malformed_files() {
    let t = TempDir::new("fuzz-images");
    let png = t.file("x.png");
    write_png(&png, 9, 7, 3);
    fuzz(&png, 1, || {
        let _ = read_rgb(&png);
        let _ = read_index_png(&png);
    });
    let jpeg = t.file("x.jpg");
    write_jpeg(&jpeg, 16, 12, [10, 200, 30]);
    fuzz(&jpeg, 2, || {
        let _ = read_rgb(&jpeg);
    });
}

#[test]
fn voc_never_panics_on_malformed_split_lists_and_masks() {
    let t = TempDir::new("fuzz-voc");
    write_voc_pair(&t, "a", 6, 8, [90, 20, 200]);
    write_voc_pair(&t, "b", 6, 8, [20, 90, 200]);
    let list = t.file("ImageSets/Segmentation/train.txt");
    std::fs::write(&list, "a\nb\n").unwrap();
    let read_all = || {
        if let Ok(voc) = Voc::open(&t.0, "train") {
            let _ = voc.check_classes(21);
            for i in 0..voc.len() {
                let _ = voc.get(i);
            }
        }
    };
    fuzz(&list, 3, read_all);
    fuzz(&t.0.join("SegmentationClass/a.png"), 4, read_all);
}

#[test]
fn coco_never_panics_on_malformed_annotation_files() {
    let t = TempDir::new("fuzz-coco");
    let json = write_coco(&t, &coco_doc());
    let images = t.0.join("images");
    fuzz(&json, 5, || {
        if let Ok(coco) = Coco::open(&json, &images) {
            let _ = coco.check_classes(91);
            for i in 0..coco.len() {
                let _ = coco.get(i);
            }
        }
    });
}
