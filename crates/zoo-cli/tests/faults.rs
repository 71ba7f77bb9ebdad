//! The fault suite: `zoo` under bad input, crashes at every write of a checkpoint, signals,
//! a second writer, diverging runs and faulty datasets. Each case states what it guarantees.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;
use common::{TINY_UNET, s, scratch, write_png, zoo};

/// A run of 2 epochs × 2 steps that commits a checkpoint after every step.
const STEPPED: [&str; 3] = [
    "train.epochs=2",
    "train.checkpoint_every_steps=1",
    "data.train_len=8",
];

fn run_zoo(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zoo"));
    command.args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run zoo")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Every tensor of a checkpoint, by name.
fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    zoo_train::checkpoint::tensors(path).unwrap()
}

/// The step column of `steps.csv`.
fn step_numbers(run: &Path) -> Vec<usize> {
    std::fs::read_to_string(run.join("steps.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect()
}

/// The validation columns of `metrics.csv` (all but the wall time).
fn metrics(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut cols: Vec<&str> = l.split(',').collect();
            cols.remove(8); // seconds
            cols.join(",")
        })
        .collect()
}

fn tiny_config(dir: &Path) -> PathBuf {
    let config = dir.join("tiny.toml");
    std::fs::write(&config, TINY_UNET).unwrap();
    config
}

/// The same weights and figures as the reference run.
fn same_run(reference: &Path, run: &Path, label: &str) {
    let (a, b) = (
        tensors(&reference.join("checkpoints/last.bpk")),
        tensors(&run.join("checkpoints/last.bpk")),
    );
    assert_eq!(a, b, "{label}: weights differ from the uninterrupted run");
    assert_eq!(metrics(reference), metrics(run), "{label}: metrics differ");
    let best = |r: &Path| tensors(&r.join("checkpoints/best.bpk"));
    assert!(best(reference) == best(run), "{label}: best.bpk differs");
}

/// A SIGKILL-like abort at each file operation of a run's checkpoints (temporary file
/// written, renamed), then `--resume` (or `--force` when nothing was committed): the run
/// ends with the weights, figures and best checkpoint of an uninterrupted run. Guarantees
/// one commit point per checkpoint and nothing lost beyond the last one.
#[test]
fn a_crash_at_any_checkpoint_write_resumes_to_the_uninterrupted_run() {
    let dir = scratch("crash");
    let config = tiny_config(&dir);
    let reference = dir.join("reference");
    let mut args = vec!["train", s(&config), "--out", s(&reference)];
    args.extend(STEPPED);
    let out = run_zoo(&args, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let mut points = 0;
    for at in 1.. {
        let run = dir.join(format!("run-{at}"));
        let mut args = vec!["train", s(&config), "--out", s(&run)];
        args.extend(STEPPED);
        let out = run_zoo(&args, &[("ZOO_FAULT_AT", &at.to_string())]);
        if out.status.success() {
            break; // fewer file operations than `at`: every point was tried
        }
        assert!(
            text(&out).contains(&format!("ZOO_FAULT_AT={at}")),
            "{}",
            text(&out)
        );
        points += 1;
        let mut resume = vec!["train", s(&config), "--out", s(&run), "--resume"];
        resume.extend(STEPPED);
        let out = run_zoo(&resume, &[]);
        let said = text(&out);
        if !out.status.success() {
            // Only before the first commit: nothing to resume, said so.
            assert!(said.contains("no complete checkpoint"), "at {at}: {said}");
            let mut again = vec!["train", s(&config), "--out", s(&run), "--force"];
            again.extend(STEPPED);
            let out = run_zoo(&again, &[]);
            assert!(out.status.success(), "at {at}: {}", text(&out));
        } else {
            assert!(said.contains("resuming"), "at {at}: {said}");
        }
        same_run(&reference, &run, &format!("crash at file operation {at}"));
        assert_eq!(step_numbers(&run), [1, 2, 3, 4], "at {at}: steps.csv");
        let leftovers: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "at {at}: {leftovers:?}");
        std::fs::remove_dir_all(&run).ok();
    }
    assert!(points > 20, "only {points} crash points");
    eprintln!("{points} crash points tried");
    std::fs::remove_dir_all(dir).ok();
}

/// A failing write (a full disk) at a checkpoint: the run exits 1 naming the file, the
/// previous checkpoint stays complete, and `--resume` reaches the uninterrupted run.
#[test]
fn a_failed_write_leaves_the_previous_checkpoint_resumable() {
    let dir = scratch("full");
    let config = tiny_config(&dir);
    let reference = dir.join("reference");
    let mut args = vec!["train", s(&config), "--out", s(&reference)];
    args.extend(STEPPED);
    assert!(run_zoo(&args, &[]).status.success());
    for at in [12, 25, 40] {
        let run = dir.join(format!("run-{at}"));
        let mut args = vec!["train", s(&config), "--out", s(&run)];
        args.extend(STEPPED);
        let out = run_zoo(
            &args,
            &[("ZOO_FAULT_AT", &at.to_string()), ("ZOO_FAULT", "fail")],
        );
        assert_eq!(out.status.code(), Some(1), "at {at}: {}", text(&out));
        assert!(text(&out).contains("injected failure"), "{}", text(&out));
        let mut resume = vec!["train", s(&config), "--out", s(&run), "--resume"];
        resume.extend(STEPPED);
        let out = run_zoo(&resume, &[]);
        assert!(out.status.success(), "at {at}: {}", text(&out));
        same_run(&reference, &run, &format!("failed write {at}"));
    }
    std::fs::remove_dir_all(dir).ok();
}

fn wait_for(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < limit, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGINT mid-epoch: the run finishes its step, commits a checkpoint, says how to resume
/// and exits 130; `--resume` says where it resumes from and ends bit-identical to an
/// uninterrupted run. A second writer on a running run directory is refused.
#[test]
fn sigint_stops_at_a_step_and_resume_is_bit_identical() {
    let dir = scratch("sigint");
    let config = tiny_config(&dir);
    let long = [
        "train.epochs=1",
        "data.train_len=320",
        "train.checkpoint_every_steps=5",
    ];
    let reference = dir.join("reference");
    let mut args = vec!["train", s(&config), "--out", s(&reference)];
    args.extend(long);
    assert!(run_zoo(&args, &[]).status.success());

    let run = dir.join("run");
    let mut args = vec!["train", s(&config), "--out", s(&run)];
    args.extend(long);
    let child = Command::new(env!("CARGO_BIN_EXE_zoo"))
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first mid-epoch checkpoint (step 5 of 80) shows the run is under way.
    wait_for(
        &run.join("checkpoints/state.json"),
        Duration::from_secs(120),
    );
    let mut second = vec!["train", s(&config), "--out", s(&run), "--force"];
    second.extend(long);
    let (ok, said) = zoo(&second);
    assert!(!ok && said.contains("another `zoo train`"), "{said}");
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(130), "{said}");
    assert!(
        said.contains("stopped at epoch") && said.contains("--resume"),
        "{said}"
    );
    let mut resume = vec!["train", s(&config), "--out", s(&run), "--resume"];
    resume.extend(long);
    let out = run_zoo(&resume, &[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("from its checkpoint at epoch"), "{said}");
    same_run(&reference, &run, "SIGINT");
    // steps.csv holds each step once (the interrupted run's rows after its checkpoint were
    // dropped on resume); train.log holds what both runs printed.
    assert_eq!(step_numbers(&run), (1..=80).collect::<Vec<_>>());
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    for line in [
        "training unet_resnet18",
        "interrupt: stopping",
        "stopped at epoch 1, batch",
        "resuming unet_resnet18",
        "epoch 1 step 80/80",
        "best: epoch 1",
    ] {
        assert!(log.contains(line), "{line:?} not in train.log:\n{log}");
    }
    std::fs::remove_dir_all(dir).ok();
}

/// `--force` removes the old run's files: nothing stale beside the new run, and a
/// `--force` run killed before its first checkpoint cannot be resumed as the old one.
#[test]
fn force_starts_afresh_and_never_continues_the_old_run() {
    let dir = scratch("force");
    let config = tiny_config(&dir);
    let run = dir.join("run");
    let (ok, said) = zoo(&["train", s(&config), "--out", s(&run), "train.epochs=3"]);
    assert!(ok, "{said}");
    let out = run_zoo(
        &["train", s(&config), "--out", s(&run), "--force"],
        &[("ZOO_FAULT_AT", "1")],
    );
    assert!(!out.status.success());
    for stale in [
        "checkpoints/epoch-3.bpk",
        "checkpoints/last.bpk",
        "samples/epoch-2.png",
        "metrics.csv",
    ] {
        assert!(
            !run.join(stale).exists(),
            "{stale} of the old run is still there"
        );
    }
    let (ok, said) = zoo(&["train", s(&config), "--out", s(&run), "--resume"]);
    assert!(!ok && said.contains("no complete checkpoint"), "{said}");
    let (ok, said) = zoo(&["train", s(&config), "--out", s(&run), "--force"]);
    assert!(ok, "{said}");
    assert!(!run.join("checkpoints/epoch-3.bpk").exists());
    // keep_last prunes older epoch checkpoints.
    let kept = dir.join("kept");
    let (ok, said) = zoo(&[
        "train",
        s(&config),
        "--out",
        s(&kept),
        "train.epochs=3",
        "train.keep_last=1",
    ]);
    assert!(ok, "{said}");
    let epochs: Vec<bool> = (1..=3)
        .map(|e| kept.join(format!("checkpoints/epoch-{e}.bpk")).exists())
        .collect();
    assert_eq!(epochs, [false, false, true]);
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    std::fs::remove_dir_all(dir).ok();
}

/// A diverging run (lr 1e6) exits 1 naming the step; nothing it wrote holds a NaN, and
/// `zoo eval` refuses a checkpoint that does.
#[test]
fn a_diverged_run_fails_and_nan_checkpoints_are_refused() {
    let dir = scratch("nan");
    let config = tiny_config(&dir);
    let run = dir.join("run");
    let out = run_zoo(
        &[
            "train",
            s(&config),
            "--out",
            s(&run),
            "train.lr=1e6",
            "train.epochs=4",
            "data.train_len=32",
        ],
        &[],
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("diverged at epoch") && said.contains("step"),
        "{said}"
    );
    for f in ["last.bpk", "best.bpk"] {
        let path = run.join("checkpoints").join(f);
        if path.exists() {
            let (ok, said) = zoo(&["eval", s(&config), "--checkpoint", s(&path)]);
            assert!(ok, "{f}: {said}");
        }
    }
    std::fs::remove_dir_all(dir).ok();
}

/// predict: outputs never overwrite an input or each other; every readable input is
/// predicted, each failure is reported, and the exit status says some failed.
#[test]
fn predict_keeps_inputs_and_reports_each_failure() {
    let dir = scratch("predict");
    let config = tiny_config(&dir);
    let run = dir.join("run");
    assert!(zoo(&["train", s(&config), "--out", s(&run)]).0);
    let ckpt = run.join("checkpoints/last.bpk");
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::create_dir_all(dir.join("b")).unwrap();
    let (a, b) = (dir.join("a/ok1.png"), dir.join("b/ok1.png"));
    write_png(&a);
    write_png(&b);
    let input = std::fs::read(&a).unwrap();
    // --out the inputs' own directory.
    let (ok, said) = zoo(&[
        "predict",
        "--checkpoint",
        s(&ckpt),
        s(&a),
        "--out",
        s(&dir.join("a")),
    ]);
    assert!(ok, "{said}");
    assert_eq!(
        std::fs::read(&a).unwrap(),
        input,
        "the input was overwritten"
    );
    // Two inputs of one name: two outputs.
    let out = dir.join("out");
    let (ok, said) = zoo(&[
        "predict",
        "--checkpoint",
        s(&ckpt),
        s(&a),
        s(&b),
        "--out",
        s(&out),
    ]);
    assert!(ok, "{said}");
    assert!(out.join("ok1.pred.png").exists() && out.join("ok1-2.pred.png").exists());
    // A missing and a truncated JPEG between good ones: both named, the good ones done.
    let jpeg = dir.join("cut.jpg");
    image::RgbImage::from_fn(64, 64, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 4) as u8, 90])
    })
    .save(&jpeg)
    .unwrap();
    let bytes = std::fs::read(&jpeg).unwrap();
    std::fs::write(&jpeg, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, said) = zoo(&[
        "predict",
        "--checkpoint",
        s(&ckpt),
        s(&a),
        s(&dir.join("missing.png")),
        s(&jpeg),
        s(&b),
        "--out",
        s(&dir.join("out2")),
    ]);
    assert!(!ok, "{said}");
    assert!(
        said.contains("missing.png") && said.contains("cut.jpg") && said.contains("truncated"),
        "{said}"
    );
    assert!(said.contains("2 of 4 images"), "{said}");
    assert!(dir.join("out2/ok1.pred.png").exists() && dir.join("out2/ok1-2.pred.png").exists());
    std::fs::remove_dir_all(dir).ok();
}

/// Bad settings exit 1 naming the key, before anything is written.
#[test]
fn out_of_range_settings_are_refused_before_anything_is_written() {
    let dir = scratch("ranges");
    let config = tiny_config(&dir);
    let swin = dir.join("swin.toml");
    std::fs::write(&swin, common::TINY_SWIN).unwrap();
    for (setting, key) in [
        ("train.momentum=-5", "train.momentum"),
        ("train.weight_decay=-1", "train.weight_decay"),
        ("train.grad_clip=-1", "train.grad_clip"),
        ("data.image_size=[1000000, 1000000]", "data.image_size"),
        ("model.base_channels=0", "model.base_channels"),
        (
            "model.decoder_channels=[8, 8, 0, 8, 8]",
            "model.decoder_channels",
        ),
        ("train.nonfinite=ignore", "nonfinite"),
        ("model.window_size=0", "model.window_size"),
    ] {
        let run = dir.join("run");
        let config = if setting.starts_with("model.window") {
            swin.as_path()
        } else {
            config.as_path()
        };
        let out = run_zoo(&["train", s(config), "--out", s(&run), setting], &[]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{setting}: {said}");
        assert!(said.contains(key), "{setting}: {said}");
        assert!(!run.exists(), "{setting}: the run directory was created");
    }
    std::fs::remove_dir_all(dir).ok();
}

/// Runs print nothing spurious on stderr (no display probing on a headless machine): on
/// flex, a resumed flex run (which restores an optimiser state), and on wgpu (lavapipe).
#[test]
fn runs_and_resumes_say_nothing_spurious() {
    let dir = scratch("quiet");
    let config = tiny_config(&dir);
    let run = dir.join("run");
    let quiet = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_zoo"))
            .args(args)
            .env_remove("XDG_RUNTIME_DIR")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert_eq!(quiet(&["train", s(&config), "--out", s(&run)]), "");
    let stderr = quiet(&[
        "train",
        s(&config),
        "--out",
        s(&run),
        "--resume",
        "train.epochs=2",
    ]);
    assert_eq!(stderr, "");
    let wgpu = dir.join("wgpu");
    let stderr = quiet(&["train", s(&config), "--out", s(&wgpu), "--backend", "wgpu"]);
    assert_eq!(stderr, "");
    std::fs::remove_dir_all(dir).ok();
}

/// Equal best figures: `best.bpk` holds the first epoch that reached them, and the summary
/// names that epoch. (A Swin — LayerNorm only, no running statistics — trained at lr 1e-30
/// does not change, so every epoch validates alike.)
#[test]
fn on_a_tie_the_summary_names_the_epoch_best_bpk_holds() {
    let dir = scratch("tie");
    let config = dir.join("swin.toml");
    std::fs::write(&config, common::TINY_SWIN).unwrap();
    let run = dir.join("run");
    let (ok, said) = zoo(&[
        "train",
        s(&config),
        "--out",
        s(&run),
        "train.epochs=3",
        "train.lr=1e-30",
        "train.warmup_steps=0",
    ]);
    assert!(ok, "{said}");
    let rows = metrics(&run);
    // The validation columns (not the epoch, the training loss or the learning rate).
    let figures = |row: &str| {
        let cols: Vec<&str> = row.split(',').collect();
        [&cols[2..7], &cols[8..]].concat().join(",")
    };
    assert!(
        rows[1..].iter().all(|r| figures(r) == figures(&rows[1])),
        "not a tie: {rows:?}"
    );
    assert!(said.contains("best: epoch 1 "), "{said}");
    let best = zoo_train::checkpoint::read_info(&run.join("checkpoints/best.bpk")).unwrap();
    assert_eq!(best.epoch, 1);
    std::fs::remove_dir_all(dir).ok();
}

/// ImageFolder: class ids come from the training split for every split (a validation split
/// without class `a` keeps `b` = 1), a validation class the training split lacks is named,
/// and more classes than the model has is refused before anything is written.
#[test]
fn image_folder_classes_come_from_the_training_split() {
    let dir = scratch("folder");
    let folder = dir.join("folder");
    let image = |split: &str, class: &str, i: u32| {
        let d = folder.join(split).join(class);
        std::fs::create_dir_all(&d).unwrap();
        image::RgbImage::from_pixel(32, 32, image::Rgb([i as u8 * 40, 90, 30]))
            .save(d.join(format!("{i}.png")))
            .unwrap();
    };
    for i in 0..2 {
        image("train", "a", i);
        image("train", "b", i);
        image("val", "b", i);
    }
    let config = dir.join("cls.toml");
    std::fs::write(
        &config,
        common::TINY_SWIN.replace("num_classes = 4", "num_classes = 2"),
    )
    .unwrap();
    let root = format!("data.root=\"{}\"", s(&folder));
    let run = dir.join("run");
    let args = [
        "train",
        s(&config),
        "--out",
        s(&run),
        "data.format=image_folder",
        &root,
    ];
    let (ok, said) = zoo(&args);
    assert!(ok, "{said}");
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.ends_with("val_recall_a,val_recall_b"), "{header}");
    // b's images were labelled 1: with recall over b only, a's column is empty.
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(row[row.len() - 2], "", "{csv}");
    // A class of the validation split only; then three training classes for a two-class
    // model: both refused before anything is written.
    let run2 = dir.join("run2");
    for (split, expected) in [
        ("val", ["`c`", "training split"]),
        ("train", ["3 classes", "train split"]),
    ] {
        image(split, "c", 0);
        let args = [
            "train",
            s(&config),
            "--out",
            s(&run2),
            "data.format=image_folder",
            &root,
        ];
        let (ok, said) = zoo(&args);
        assert!(!ok && expected.iter().all(|e| said.contains(e)), "{said}");
        assert!(!run2.exists());
    }
    std::fs::remove_dir_all(dir).ok();
}

/// A VOC mask with a class the model does not have is found before training, naming the
/// mask file and its split.
#[test]
fn a_mask_class_beyond_the_model_is_named_before_training() {
    let dir = scratch("voc");
    let voc = dir.join("voc");
    for sub in ["JPEGImages", "SegmentationClass", "ImageSets/Segmentation"] {
        std::fs::create_dir_all(voc.join(sub)).unwrap();
    }
    for (id, class) in [("a", 1u8), ("b", 2), ("c", 40)] {
        image::RgbImage::from_pixel(32, 32, image::Rgb([120, 90, 30]))
            .save(voc.join(format!("JPEGImages/{id}.jpg")))
            .unwrap();
        image::GrayImage::from_fn(32, 32, |x, _| image::Luma([if x < 16 { 0 } else { class }]))
            .save(voc.join(format!("SegmentationClass/{id}.png")))
            .unwrap();
    }
    std::fs::write(voc.join("ImageSets/Segmentation/train.txt"), "a\nb\n").unwrap();
    std::fs::write(voc.join("ImageSets/Segmentation/val.txt"), "b\nc\n").unwrap();
    let config = tiny_config(&dir);
    let run = dir.join("run");
    let root = format!("data.root=\"{}\"", s(&voc));
    let (ok, said) = zoo(&[
        "train",
        s(&config),
        "--out",
        s(&run),
        "data.format=voc",
        &root,
    ]);
    assert!(!ok, "{said}");
    assert!(
        said.contains("val split") && said.contains("c.png") && said.contains("class 40"),
        "{said}"
    );
    assert!(!run.exists(), "the run directory was created");
    std::fs::remove_dir_all(dir).ok();
}
