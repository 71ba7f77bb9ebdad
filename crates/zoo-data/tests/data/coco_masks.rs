//! COCO mask parity with pycocotools: every case of `tests/fixtures/coco_masks.json`
//! (written by `tools/parity/coco_masks.py`, see its docstring for the format) must decode
//! bit-exactly to pycocotools' mask, with the same RLE string, area and `toBbox`, both through
//! [`Rle`] directly and through a [`Coco`] dataset holding the cases as annotations.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use zoo_data::coco::Rle;
use zoo_data::{Coco, ImageDataset};

/// One fixture case.
struct Case {
    name: String,
    h: usize,
    w: usize,
    /// The case's `segmentation` as a COCO annotation stores it.
    segmentation: Value,
    /// pycocotools' compressed string of the (merged) RLE.
    rle: String,
    /// pycocotools' decoded mask, row-major.
    mask: Vec<bool>,
    area: u64,
    /// `[x, y, w, h]`.
    bbox: [u64; 4],
}

fn load_cases() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/coco_masks.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run tools/parity/coco_masks.py)", path.display()));
    // Parsed as Python writes it: floats exactly (some cases need every last bit).
    let doc = zoo_data::coco::parse_json(text.as_bytes()).expect("fixture is valid JSON");
    let uint = |v: &Value| v.as_u64().expect("non-negative integer");
    doc["cases"]
        .as_array()
        .expect("`cases` array")
        .iter()
        .map(|c| {
            let (h, w) = (uint(&c["h"]) as usize, uint(&c["w"]) as usize);
            let segmentation = if let Some(p) = c.get("polygons") {
                p.clone()
            } else if let Some(s) = c.get("counts_string") {
                json!({"size": [h, w], "counts": s})
            } else {
                let counts = c
                    .get("counts_list")
                    .expect("polygons, counts_string or counts_list");
                json!({"size": [h, w], "counts": counts})
            };
            let runs: Vec<u64> = c["mask"]
                .as_array()
                .expect("mask runs")
                .iter()
                .map(uint)
                .collect();
            let bbox: Vec<u64> = c["bbox"]
                .as_array()
                .expect("bbox")
                .iter()
                .map(uint)
                .collect();
            Case {
                name: c["name"].as_str().expect("name").to_string(),
                h,
                w,
                segmentation,
                rle: c["rle"].as_str().expect("rle string").to_string(),
                mask: runs_to_mask(&runs, h * w),
                area: uint(&c["area"]),
                bbox: bbox.try_into().expect("4 bbox values"),
            }
        })
        .collect()
}

/// Expands row-major run lengths (0-run first) into a mask of `n` pixels.
fn runs_to_mask(runs: &[u64], n: usize) -> Vec<bool> {
    let mut mask = Vec::with_capacity(n);
    for (i, &r) in runs.iter().enumerate() {
        mask.extend(std::iter::repeat_n(i % 2 == 1, r as usize));
    }
    assert_eq!(mask.len(), n, "fixture runs sum to H·W");
    mask
}

/// pycocotools' `toBbox` of a row-major mask: the tight `[x, y, w, h]`, zeros when empty.
fn coco_bbox(mask: &[bool], w: usize) -> [u64; 4] {
    let on: Vec<(usize, usize)> = (0..mask.len())
        .filter(|&i| mask[i])
        .map(|i| (i % w, i / w))
        .collect();
    if on.is_empty() {
        return [0; 4];
    }
    let x1 = on.iter().map(|p| p.0).min().unwrap_or(0);
    let x2 = on.iter().map(|p| p.0).max().unwrap_or(0);
    let y1 = on.iter().map(|p| p.1).min().unwrap_or(0);
    let y2 = on.iter().map(|p| p.1).max().unwrap_or(0);
    [x1, y1, x2 - x1 + 1, y2 - y1 + 1].map(|v| v as u64)
}

/// Asserts `got` equals the case's mask, listing the first differing pixels.
fn assert_mask(case: &Case, got: &[bool], via: &str) {
    assert_eq!(
        got.len(),
        case.h * case.w,
        "{} ({via}): mask size",
        case.name
    );
    let diff: Vec<String> = (0..got.len())
        .filter(|&i| got[i] != case.mask[i])
        .take(10)
        .map(|i| format!("(row {}, col {}): ours {}", i / case.w, i % case.w, got[i]))
        .collect();
    assert!(
        diff.is_empty(),
        "{} ({via}): masks differ from pycocotools at {diff:?}",
        case.name
    );
}

/// Our RLE of a case's segmentation, the way [`Coco`] builds it.
fn our_rle(case: &Case) -> Rle {
    let (h, w) = (case.h, case.w);
    match &case.segmentation {
        Value::Array(polys) => {
            let polys: Vec<Vec<f64>> = polys
                .iter()
                .map(|p| {
                    p.as_array()
                        .expect("polygon")
                        .iter()
                        .map(|v| v.as_f64().expect("number"))
                        .collect()
                })
                .collect();
            if let [single] = polys.as_slice() {
                // One polygon: `rleFrPoly`'s counts themselves must match, not only the mask.
                let rle = Rle::from_polygon(single, h, w);
                assert_eq!(
                    rle.to_compressed(),
                    case.rle,
                    "{}: single-polygon RLE string",
                    case.name
                );
            }
            Rle::from_polygons(&polys, h, w)
        }
        seg => match &seg["counts"] {
            Value::String(s) => Rle::from_compressed(s, h, w).expect("valid RLE string"),
            Value::Array(cs) => Rle {
                h,
                w,
                counts: cs
                    .iter()
                    .map(|c| c.as_u64().expect("count") as u32)
                    .collect(),
            },
            other => panic!("{}: unexpected counts {other}", case.name),
        },
    }
}

#[test]
fn fixture_covers_the_interesting_cases() {
    let cases = load_cases();
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    for needed in [
        "nonconvex_star",
        "subpixel_inside_pixel",
        "touching_border",
        "crossing_border",
        "multi_part_overlapping",
        "rounding_ties",
        "rle_string_blob",
        "rle_list_blob",
    ] {
        assert!(names.contains(&needed), "fixture lacks case {needed}");
    }
    assert!(cases.iter().any(|c| c.area == 0), "an empty mask");
    assert!(
        cases.iter().any(|c| c.area == (c.h * c.w) as u64),
        "a full mask"
    );
}

#[test]
fn rasterisation_matches_pycocotools_bit_exactly() {
    for case in load_cases() {
        let rle = our_rle(&case);
        assert_eq!(
            rle.total(),
            (case.h * case.w) as u64,
            "{}: counts sum",
            case.name
        );
        let mask = rle.decode();
        assert_mask(&case, &mask, "Rle");
        assert_eq!(rle.to_compressed(), case.rle, "{}: RLE string", case.name);
        let area = mask.iter().filter(|&&m| m).count() as u64;
        assert_eq!(area, case.area, "{}: area", case.name);
        assert_eq!(coco_bbox(&mask, case.w), case.bbox, "{}: toBbox", case.name);
        // Encoding the decoded mask gives pycocotools' RLE back.
        assert_eq!(
            Rle::encode(&mask, case.h, case.w).to_compressed(),
            case.rle,
            "{}: re-encoded",
            case.name
        );
    }
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("zoo-data-coco-masks-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn coco_reader_masks_match_pycocotools() {
    let cases = load_cases();
    let tmp = TempDir::new("reader");
    // One image per case size, all cases as (non-crowd) annotations of the image of their size,
    // written as JSON text so the coordinates go through the reader's own parsing.
    let mut sizes: Vec<(usize, usize)> = cases.iter().map(|c| (c.h, c.w)).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let images: Vec<Value> = sizes
        .iter()
        .enumerate()
        .map(|(i, &(h, w))| {
            let file = format!("img{i}.png");
            image::RgbImage::new(w as u32, h as u32)
                .save(tmp.0.join(&file))
                .expect("write PNG");
            json!({"id": i + 1, "file_name": file, "height": h, "width": w})
        })
        .collect();
    let image_of = |c: &Case| {
        sizes
            .iter()
            .position(|&s| s == (c.h, c.w))
            .expect("size listed")
    };
    let annotations: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "id": i + 1,
                "image_id": image_of(c) + 1,
                "category_id": 1,
                "bbox": c.bbox,
                "iscrowd": 0,
                "segmentation": c.segmentation,
            })
        })
        .collect();
    let doc = json!({
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "thing"}],
    });
    let ann_path = tmp.0.join("instances.json");
    std::fs::write(&ann_path, serde_json::to_string(&doc).expect("serialise")).expect("write JSON");

    let coco = Coco::open(&ann_path, &tmp.0).expect("valid dataset");
    assert_eq!(coco.len(), sizes.len());
    let samples: Vec<_> = (0..coco.len())
        .map(|i| coco.get(i).expect("readable sample"))
        .collect();
    let mut next = vec![0usize; sizes.len()];
    for case in &cases {
        let img = image_of(case);
        let object = &samples[img].objects[next[img]];
        next[img] += 1;
        assert_mask(case, &object.mask, "Coco::get");
        let [x, y, w, h] = case.bbox.map(|v| v as f32);
        assert_eq!(
            object.bbox,
            [x, y, x + w, y + h],
            "{}: box from the annotation",
            case.name
        );
    }
    for (i, s) in samples.iter().enumerate() {
        assert_eq!(
            s.objects.len(),
            next[i],
            "every annotation of image {i} is an object"
        );
    }
}
