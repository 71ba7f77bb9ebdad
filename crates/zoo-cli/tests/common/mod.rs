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
