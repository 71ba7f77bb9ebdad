//! End-to-end: the `zoo` binary on a tiny run file.

use std::path::PathBuf;
use std::process::Command;

const TINY: &str = "[model]\nname = \"unet_resnet18\"\nnum_classes = 5\nbase_channels = 4\n\
                    decoder_channels = [8, 8, 8, 8, 8]\n\
                    [data]\nimage_size = [32, 32]\ntrain_len = 8\nval_len = 4\n\
                    [train]\nepochs = 1\nbatch_size = 4\n";

fn zoo(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zoo"))
        .args(args)
        .output()
        .expect("run zoo");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn train_list_and_bad_input() {
    let dir = std::env::temp_dir().join(format!("zoo-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let run: PathBuf = dir.join("run");
    let (c, r) = (config.to_str().unwrap(), run.to_str().unwrap());

    let (ok, text) = zoo(&["train", c, "--out", r]);
    assert!(ok, "{text}");
    assert!(text.contains("val_mIoU"), "{text}");
    assert!(run.join("metrics.csv").exists() && run.join("checkpoints/best.safetensors").exists());

    // An existing run directory is not overwritten without --force.
    let before = std::fs::read(run.join("metrics.csv")).unwrap();
    let (ok, text) = zoo(&["train", c, "--out", r]);
    assert!(!ok && text.contains("--force"), "{text}");
    assert_eq!(std::fs::read(run.join("metrics.csv")).unwrap(), before);

    let (ok, text) = zoo(&["train", c, "--out", r, "--force", "train.epoch=2"]);
    assert!(
        !ok && text.contains("tiny.toml") && text.contains("unknown field `epoch`"),
        "{text}"
    );
    let (ok, text) = zoo(&["train", c, "--out", r, "--force", "train.lr=fast"]);
    assert!(!ok && text.contains("lr"), "{text}");
    let (ok, text) = zoo(&["train", "missing.toml"]);
    assert!(!ok && text.contains("missing.toml"), "{text}");

    let (ok, text) = zoo(&["list"]);
    assert!(
        ok && text.contains("swin_tiny_patch4_window7_224"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).ok();
}
