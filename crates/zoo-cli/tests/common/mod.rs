//! What the CLI tests share: tiny run files and running the `zoo` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub const TINY_UNET: &str = "[model]\nname = \"unet_resnet18\"\nnum_classes = 5\nbase_channels = 4\n\
                         decoder_channels = [8, 8, 8, 8, 8]\n\
                         [data]\nimage_size = [32, 32]\ntrain_len = 8\nval_len = 4\n\
                         [train]\nepochs = 1\nbatch_size = 4\n";

pub const TINY_SWIN: &str = "[model]\nname = \"swin_tiny_patch4_window7_224\"\nnum_classes = 4\n\
                         embed_dim = 8\ndepths = [1, 1]\nnum_heads = [1, 2]\nwindow_size = 4\n\
                         [data]\nimage_size = [32, 32]\ntrain_len = 8\nval_len = 4\n\
                         [train]\nepochs = 1\nbatch_size = 4\noptimizer = \"adamw\"\n\
                         schedule = \"cosine\"\nwarmup_steps = 1\nlr = 0.001\n";

/// The data-parallel tests' LayerNorm-only Swin (the run file of
/// `crates/zoo-train/tests/data_parallel.rs`): no BatchNorm and no random draws at
/// `drop_path_rate = 0`, so replicas with parts of a batch compute what one device does with
/// all of it; 11 images in batches of 4, three SGD steps.
pub const LAYERNORM_SWIN: &str = "[model]\nname = \"swin_tiny_patch4_window7_224\"\nnum_classes = 4\n\
                         embed_dim = 8\ndepths = [1, 1]\nnum_heads = [1, 2]\nwindow_size = 4\n\
                         patch_size = 4\ndrop_path_rate = 0.0\n\
                         [data]\nimage_size = [32, 32]\ntrain_len = 11\nval_len = 2\n\
                         objects = [1, 1]\nobject_scale = [0.4, 0.9]\n\
                         [train]\nepochs = 1\nbatch_size = 4\nlr = 0.05\n\
                         schedule = \"constant\"\n";

/// The weights of two runs' `last.bpk` agree within 1e-5 + 1e-4·|θ| (asserted); returns the
/// largest difference.
pub fn assert_same_weights(one: &Path, two: &Path) -> f32 {
    let weights = |run: &Path| -> Vec<Vec<f32>> {
        zoo_train::checkpoint::tensors(&run.join("checkpoints/last.bpk"))
            .unwrap()
            .into_iter()
            .map(|(_, bytes)| {
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect()
            })
            .collect()
    };
    let (a, b) = (weights(one), weights(two));
    assert_eq!(a.len(), b.len());
    let mut worst = 0f32;
    for (ta, tb) in a.iter().zip(&b) {
        for (x, y) in ta.iter().zip(tb) {
            let d = (x - y).abs();
            assert!(d <= 1e-5 + 1e-4 * x.abs(), "{x} vs {y}");
            worst = worst.max(d);
        }
    }
    worst
}

/// Runs `zoo args…`; returns success and stdout + stderr.
pub fn zoo(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zoo"))
        .args(args)
        .output()
        .expect("run zoo");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// A fresh directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zoo-cli-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A 40×24 RGB PNG with a bright square.
pub fn write_png(path: &Path) {
    let img = image::RgbImage::from_fn(40, 24, |x, y| {
        if (10..20).contains(&x) && (6..16).contains(&y) {
            image::Rgb([230, 40, 40])
        } else {
            image::Rgb([30, 60, 90])
        }
    });
    img.save(path).unwrap();
}
