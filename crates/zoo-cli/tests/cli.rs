//! End-to-end: the `zoo` binary on tiny run files (a few steps each).

use std::path::Path;
use std::process::Command;

use burn::prelude::Device;
use zoo_models::weights::save_upstream;

mod common;
use common::{TINY_SWIN, TINY_UNET, s, scratch, write_png, zoo};

#[test]
fn train_resume_eval_predict() {
    let dir = scratch("seg");
    let config = dir.join("tiny.toml");
    std::fs::write(&config, TINY_UNET).unwrap();
    let run = dir.join("run");
    let (c, r) = (s(&config), s(&run));

    let (ok, text) = zoo(&["train", c, "--out", r]);
    assert!(ok, "{text}");
    assert!(
        text.contains("val_mIoU") && text.contains("best: epoch 1"),
        "{text}"
    );
    let last = run.join("checkpoints/last.bpk");
    for f in [
        "metrics.csv",
        "config.toml",
        "loss.png",
        "samples/epoch-1.png",
    ] {
        assert!(run.join(f).exists(), "{f}");
    }
    assert!(last.exists() && run.join("checkpoints/best.bpk").exists());

    // An existing run directory is neither overwritten nor lost without --force.
    let before = std::fs::read(run.join("metrics.csv")).unwrap();
    let (ok, text) = zoo(&["train", c, "--out", r]);
    assert!(
        !ok && text.contains("--force") && text.contains("--resume"),
        "{text}"
    );
    assert_eq!(std::fs::read(run.join("metrics.csv")).unwrap(), before);

    // --resume continues to a larger epoch count; the first epoch's row is kept.
    let (ok, text) = zoo(&["train", c, "--out", r, "--resume", "train.epochs=2"]);
    assert!(ok, "{text}");
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let before = String::from_utf8(before).unwrap();
    assert_eq!(csv.lines().nth(1), before.lines().nth(1), "{csv}");
    // …but not with another run file.
    let (ok, text) = zoo(&["train", c, "--out", r, "--resume", "train.lr=0.5"]);
    assert!(
        !ok && text.contains("only train.epochs may change"),
        "{text}"
    );

    // eval: a table, or JSON.
    let (ok, text) = zoo(&["eval", c, "--checkpoint", s(&last)]);
    assert!(
        ok && text.contains("mIoU") && text.contains("IoU circle"),
        "{text}"
    );
    let (ok, text) = zoo(&["eval", c, "--checkpoint", s(&last), "--json"]);
    assert!(ok, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["samples"], 4);
    assert!(
        (0.0..=1.0).contains(&json["miou"].as_f64().unwrap()),
        "{json}"
    );

    // eval with a checkpoint of another architecture names both.
    let other = dir.join("other.toml");
    std::fs::write(&other, TINY_UNET.replace("unet_resnet18", "unet_resnet34")).unwrap();
    let (ok, text) = zoo(&["eval", s(&other), "--checkpoint", s(&last)]);
    assert!(
        !ok && text.contains("unet_resnet18") && text.contains("unet_resnet34"),
        "{text}"
    );
    // …and a file that is not a checkpoint is named.
    let (ok, text) = zoo(&["eval", c, "--checkpoint", c]);
    assert!(
        !ok && text.contains("tiny.toml") && text.contains(".bpk"),
        "{text}"
    );

    // predict: overlays from the checkpoint alone; a corrupt image is named.
    let png = dir.join("input.png");
    write_png(&png);
    let out = dir.join("pred");
    let (ok, text) = zoo(&[
        "predict",
        "--checkpoint",
        s(&last),
        s(&png),
        "--out",
        s(&out),
    ]);
    assert!(ok, "{text}");
    // At the image's own size (40×24), input | prediction; the class mask as a palette PNG.
    let overlay = image::open(out.join("input.pred.png")).unwrap();
    assert_eq!((overlay.width(), overlay.height()), (2 * 40 + 4, 24));
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(out.join("input.mask.png")).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let (w, h, colour) = (
        reader.info().width,
        reader.info().height,
        reader.info().color_type,
    );
    assert_eq!((w, h, colour), (40, 24, png::ColorType::Indexed));
    let mut classes = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut classes).unwrap();
    assert!(classes.iter().all(|&c| c < 5), "{classes:?}");
    let corrupt = dir.join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let (ok, text) = zoo(&[
        "predict",
        "--checkpoint",
        s(&last),
        s(&corrupt),
        "--out",
        s(&out),
    ]);
    assert!(
        !ok && text.contains("corrupt.png") && text.contains("decode"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn classification_on_an_image_folder_and_bad_input() {
    let dir = scratch("cls");
    // ImageFolder: root/{train,val}/<class>/<image>.
    for split in ["train", "val"] {
        for (class, colour) in [("red", [220, 30, 30]), ("blue", [30, 30, 220])] {
            let d = dir.join("folder").join(split).join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..3u8 {
                image::RgbImage::from_pixel(20 + u32::from(i), 20, image::Rgb(colour))
                    .save(d.join(format!("{i}.png")))
                    .unwrap();
            }
        }
    }
    let config = dir.join("folder.toml");
    let folder = dir.join("folder");
    std::fs::write(
        &config,
        TINY_SWIN.replace("num_classes = 4", "num_classes = 2"),
    )
    .unwrap();
    let overrides = [
        "data.format=image_folder".to_string(),
        format!("data.root=\"{}\"", s(&folder)),
    ];
    let run = dir.join("run");
    let mut args = vec!["train", s(&config), "--out", s(&run)];
    args.extend(overrides.iter().map(String::as_str));
    let (ok, text) = zoo(&args);
    assert!(ok, "{text}");
    assert!(text.contains("best: epoch 1 (val_accuracy"), "{text}");
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with("val_recall_blue,val_recall_red"),
        "{csv}"
    );

    // A missing dataset directory names the key.
    let (ok, text) = zoo(&[
        "train",
        s(&config),
        "--out",
        s(&dir.join("run2")),
        "data.format=voc",
        "data.root=/no/such/dir",
    ]);
    assert!(
        !ok && text.contains("data.root") && text.contains("/no/such/dir"),
        "{text}"
    );
    assert!(!dir.join("run2").exists());
    // A corrupt image in the dataset stops training, naming the file.
    std::fs::write(folder.join("train/red/9.png"), b"garbage").unwrap();
    let run3 = dir.join("run3");
    let mut args = vec!["train", s(&config), "--out", s(&run3)];
    args.extend(overrides.iter().map(String::as_str));
    let (ok, text) = zoo(&args);
    assert!(!ok && text.contains("9.png"), "{text}");
    // Unknown key, wrong type, missing run file.
    let (ok, text) = zoo(&[
        "train",
        s(&config),
        "--out",
        s(&run),
        "--force",
        "train.epoch=2",
    ]);
    assert!(
        !ok && text.contains("folder.toml") && text.contains("unknown field `epoch`"),
        "{text}"
    );
    let (ok, text) = zoo(&[
        "train",
        s(&config),
        "--out",
        s(&run),
        "--force",
        "train.lr=fast",
    ]);
    assert!(!ok && text.contains("lr"), "{text}");
    let (ok, text) = zoo(&["train", "missing.toml"]);
    assert!(!ok && text.contains("missing.toml"), "{text}");
    // The run directory is intact after all of that.
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.csv")).unwrap(),
        csv
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn import_upstream_weights_then_predict() {
    let dir = scratch("import");
    // Upstream-named weights (torchvision resnet18 keys) written from a zoo model.
    let model = zoo_models::registry::config("resnet18", 10)
        .unwrap()
        .init(&Device::flex());
    let weights = dir.join("resnet18.safetensors");
    save_upstream(&model, &weights, &model.key_map()).unwrap();
    let ckpt = dir.join("resnet18.bpk");
    let (w, k) = (s(&weights), s(&ckpt));
    let import = [
        "import",
        "--arch",
        "resnet18",
        w,
        "--out",
        k,
        "--image-size",
        "32",
    ];
    let (ok, text) = zoo(&[&import[..], &["--num-classes", "10"]].concat());
    assert!(ok, "{text}");
    // Not overwritten without --force; the wrong head size lists the mismatched keys.
    let (ok, text) = zoo(&[&import[..], &["--num-classes", "10"]].concat());
    assert!(!ok && text.contains("--force"), "{text}");
    let (ok, text) = zoo(&[&import[..], &["--force"]].concat());
    assert!(!ok && text.contains("fc.weight"), "{text}");
    let (ok, text) = zoo(&[
        "import",
        "--arch",
        "vgg16",
        w,
        "--out",
        s(&dir.join("x.bpk")),
    ]);
    assert!(
        !ok && text.contains("vgg16") && text.contains("resnet50"),
        "{text}"
    );

    let png = dir.join("cat.png");
    write_png(&png);
    let out = dir.join("pred");
    let (ok, text) = zoo(&["predict", "--checkpoint", k, s(&png), "--out", s(&out)]);
    assert!(ok && text.contains("class "), "{text}");
    assert!(out.join("cat.pred.png").exists());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bench_and_list() {
    let dir = scratch("bench");
    let config = dir.join("tiny.toml");
    std::fs::write(&config, TINY_SWIN).unwrap();
    // One timed iteration, no warm-up, of the tiny Swin on `backends`, plus `extra`.
    let quick = |backends: &str, extra: &[&str]| {
        let base = ["bench", "--config", s(&config), "--backends", backends];
        let short = ["--iters", "1", "--warmup", "0"];
        zoo(&[&base[..], &short[..], extra].concat())
    };
    for extra in [&[][..], &["--train"][..]] {
        let (ok, text) = quick("flex", extra);
        assert!(ok, "{text}");
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("flex")).collect();
        assert_eq!(rows.len(), 1, "{text}");
        for row in rows {
            let ms: f64 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
            assert!(ms > 0.0, "{row}");
        }
    }
    // ndarray is retired from the CLI, with a message that says so and names the way out.
    let (ok, text) = quick("flex,ndarray", &[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("--backend ndarray: retired") && text.contains("--backend flex"),
        "{text}"
    );
    let (ok, text) = quick("flex", &["--size", "48"]);
    assert!(ok, "swin takes any size: {text}");
    let (ok, text) = zoo(&["bench", "--model", "unet_resnet18", "--size", "48"]);
    assert!(
        !ok && text.contains("--size") && text.contains("multiples of 32"),
        "{text}"
    );
    let (ok, text) = zoo(&["bench", "--model", "nope"]);
    assert!(!ok && text.contains("nope"), "{text}");

    let (ok, text) = zoo(&["list"]);
    assert!(
        ok && text.contains("swin_tiny_patch4_window7_224") && text.contains("unet_resnet18"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// Settings the model cannot be built with exit with status 1 and an error naming the run
/// file and the key — never a panic — before anything is written.
#[test]
fn invalid_model_settings_exit_1_naming_the_file_and_the_key() {
    let dir = scratch("invalid");
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    for (file, setting, key, fragment) in [
        (
            "deeplabv3_shapes.toml",
            "model.output_stride=4",
            "model.output_stride",
            "8, 16 or 32",
        ),
        (
            "unet_shapes.toml",
            "model.decoder_channels=[16, 8]",
            "model.decoder_channels",
            "5 widths",
        ),
        (
            "unet_shapes.toml",
            "data.image_size=[48, 48]",
            "data.image_size",
            "multiples of 32",
        ),
        (
            "swin_shapes.toml",
            "model.num_heads=[1, 2]",
            "model.num_heads",
            "depths and num_heads",
        ),
    ] {
        let run = dir.join(file);
        let config = configs.join(file);
        let out = Command::new(env!("CARGO_BIN_EXE_zoo"))
            .args(["train", s(&config), "--out", s(&run), setting])
            .output()
            .expect("run zoo");
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{setting}: {text}");
        assert!(
            text.contains(file) && text.contains(key) && text.contains(fragment),
            "{setting}: {text}"
        );
        assert!(!text.contains("panicked"), "{setting}: {text}");
        assert!(!run.exists(), "{setting}: the run directory was created");
    }
    std::fs::remove_dir_all(dir).ok();
}

/// Progress: plain lines without control codes when stdout is not a terminal (CI, a pipe),
/// every `--log-every` steps; a live bar on a terminal (a pseudo-terminal made by
/// util-linux's `script`, part of every Debian system); `train.log` gets the plain lines.
#[test]
fn progress_is_a_bar_on_a_terminal_and_plain_lines_elsewhere() {
    let dir = scratch("progress");
    let config = dir.join("tiny.toml");
    std::fs::write(&config, TINY_UNET).unwrap();
    let run = dir.join("plain");
    let (ok, text) = zoo(&[
        "train",
        s(&config),
        "--out",
        s(&run),
        "--log-every",
        "1",
        "data.train_len=16",
    ]);
    assert!(ok, "{text}");
    for line in [
        "epoch 1 step 1/4 (1/4)",
        "epoch 1 step 4/4",
        "data wait",
        "eta epoch",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    assert!(!text.contains('\x1b') && !text.contains('\r'), "{text:?}");
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert!(
        log.contains("epoch 1 step 3/4") && log.contains("best: epoch 1"),
        "{log}"
    );
    let (ok, text) = zoo(&[
        "train",
        s(&config),
        "--out",
        s(&dir.join("quiet")),
        "--quiet",
        "data.train_len=16",
    ]);
    assert!(
        ok && !text.contains("step 1/4") && text.contains("best: epoch 1"),
        "{text}"
    );

    let run = dir.join("terminal");
    let command = format!(
        "{} train {} --out {} data.train_len=64",
        env!("CARGO_BIN_EXE_zoo"),
        s(&config),
        s(&run)
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("util-linux's script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("epoch 1 [") && text.contains("/16"),
        "{text:?}"
    );
    assert!(
        text.contains('\x1b') || text.contains('\r'),
        "no live drawing: {text:?}"
    );
    assert!(text.contains("best: epoch 1"), "{text:?}");
    std::fs::remove_dir_all(dir).ok();
}

/// Fine-tuning: `model.weights` starts the run from upstream-named weights (a file here; a
/// registry name resolves through the weights cache). With the file's class count all of it
/// loads; with another one the classifier keeps its fresh initialisation and the run names
/// those tensors; weights of another width are refused before anything is written.
#[test]
fn fine_tuning_starts_from_upstream_weights() {
    let dir = scratch("finetune");
    let classifier = "[model]\nname = \"resnet18\"\nnum_classes = 10\n\
                      [data]\nimage_size = [32, 32]\ntrain_len = 8\nval_len = 4\n\
                      [train]\nepochs = 1\nbatch_size = 4\n";
    let config = dir.join("cls.toml");
    std::fs::write(&config, classifier).unwrap();
    let model = zoo_models::registry::config("resnet18", 10)
        .unwrap()
        .init(&Device::flex());
    let weights = dir.join("resnet18.safetensors");
    save_upstream(&model, &weights, &model.key_map()).unwrap();
    let w = format!("model.weights={}", s(&weights));

    let (ok, text) = zoo(&["train", s(&config), "--out", s(&dir.join("same")), &w]);
    assert!(ok, "{text}");
    assert!(
        text.contains("loaded weights") && !text.contains("re-initialised"),
        "{text}"
    );
    let (ok, text) = zoo(&[
        "train",
        s(&config),
        "--out",
        s(&dir.join("other")),
        &w,
        "model.num_classes=4",
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains("re-initialised: ") && text.contains("fc.weight") && text.contains("fc.bias"),
        "{text}"
    );
    assert!(!text.contains("layer1"), "only the classifier: {text}");
    // The shapes data's 4 classification classes do not fit a 3-class model: said before
    // anything is written.
    let few = dir.join("few");
    let (ok, text) = zoo(&["train", s(&config), "--out", s(&few), "model.num_classes=3"]);
    assert!(!ok && text.contains("4 classes") && !few.exists(), "{text}");
    // Another width: refused, naming the mismatched tensors, nothing written.
    let narrow = dir.join("narrow");
    let (ok, text) = zoo(&[
        "train",
        s(&config),
        "--out",
        s(&narrow),
        &w,
        "model.base_channels=8",
    ]);
    assert!(!ok && text.contains("do not match"), "{text}");
    assert!(!narrow.exists());
    let (ok, text) = zoo(&[
        "train",
        s(&config),
        "--out",
        s(&narrow),
        "model.weights=no_such_weights",
    ]);
    assert!(
        !ok && text.contains("model.weights") && text.contains("zoo weights list"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// `model.backbone_weights` starts the encoder of a U-Net from upstream ResNet weights (its
/// classifier in the file ignored), the decoder and head from their initialisation; a file of
/// another width is refused before anything is written, and a model that is its own backbone
/// says to use `model.weights`.
#[test]
fn backbone_weights_start_the_encoder() {
    let dir = scratch("backbone");
    let resnet = zoo_train::config::RunConfig::parse(
        "[model]\nname = \"resnet18\"\nnum_classes = 10\nbase_channels = 4\n",
        Path::new("resnet.toml"),
        &[],
    )
    .unwrap()
    .model_config()
    .unwrap()
    .init(&Device::flex());
    let weights = dir.join("resnet18.safetensors");
    save_upstream(&resnet, &weights, &resnet.key_map()).unwrap();
    let config = dir.join("unet.toml");
    std::fs::write(&config, TINY_UNET).unwrap();
    let w = format!("model.backbone_weights={}", s(&weights));
    let (ok, text) = zoo(&["train", s(&config), "--out", s(&dir.join("ok")), &w]);
    assert!(ok && text.contains("loaded backbone weights"), "{text}");
    let wide = dir.join("wide");
    let (ok, text) = zoo(&[
        "train",
        s(&config),
        "--out",
        s(&wide),
        &w,
        "model.base_channels=8",
    ]);
    assert!(
        !ok && text.contains("model.backbone_weights") && text.contains("do not match"),
        "{text}"
    );
    assert!(!wide.exists());
    let classifier = dir.join("cls.toml");
    std::fs::write(
        &classifier,
        "[model]\nname = \"resnet18\"\nnum_classes = 4\nbase_channels = 4\n\
         [data]\nimage_size = [32, 32]\ntrain_len = 8\nval_len = 4\n[train]\nepochs = 1\n",
    )
    .unwrap();
    let (ok, text) = zoo(&["train", s(&classifier), "--out", s(&wide), &w]);
    assert!(
        !ok && text.contains("no separate backbone") && !wide.exists(),
        "{text}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// `zoo eval` reproduces torchvision's reference evaluations: segmentation
/// (`references/segmentation`: shorter side to `base_size`, evaluated at that size one image
/// at a time, 255 ignored) and detection (`references/detection`: images at their own size,
/// pycocotools' AP with crowds ignored). The fixture's figures come from
/// `tools/parity/eval_protocol.py` (torchvision and pycocotools on the same files and
/// weights). Without `--checkpoint` the run
/// file's `model.weights` is what is evaluated.
#[test]
fn eval_matches_torchvisions_reference_protocols() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval_protocol");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("expected.json")).unwrap())
            .unwrap();
    let dir = scratch("eval-protocol");
    let run_file = |name: &str, eval: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!(
                "[model]\nname = \"deeplabv3_resnet50\"\nnum_classes = 3\nbase_channels = 2\n\
                 head_channels = 16\natrous_rates = [12, 24, 36]\naux_loss = true\n\
                 weights = {:?}\n[data]\nformat = \"voc\"\nroot = {:?}\nimage_size = [48, 48]\n\
                 [eval]\n{eval}",
                s(&fixtures.join("deeplabv3.weights.safetensors")),
                s(&fixtures.join("voc")),
            ),
        )
        .unwrap();
        path
    };
    let config = run_file(
        "deeplab.toml",
        &format!(
            "resize = \"shorter_side\"\nsize = {}\n",
            expected["base_size"]
        ),
    );
    let (ok, text) = zoo(&["eval", s(&config), "--json"]);
    assert!(ok, "{text}");
    let report: serde_json::Value = serde_json::from_str(&text).expect("JSON figures");
    let close = |ours: &serde_json::Value, theirs: &serde_json::Value, what: &str| {
        let (a, b) = (ours.as_f64().unwrap(), theirs.as_f64().unwrap());
        // JPEG decoders and PIL's 8-bit resize differ by a grey level here and there, which
        // moves the argmax of a few pixels out of ~10k.
        assert!((a - b).abs() < 2e-3, "{what}: zoo {a} vs torchvision {b}");
    };
    close(
        &report["accuracy"],
        &expected["pixel_accuracy"],
        "pixel accuracy",
    );
    close(&report["miou"], &expected["miou"], "mIoU");
    for (c, iou) in expected["iou"].as_array().unwrap().iter().enumerate() {
        close(&report["per_class"][c], iou, &format!("IoU of class {c}"));
    }
    assert_eq!(report["samples"], 4);
    // The square resize of the run's image size is another protocol, with other figures.
    let (ok, text) = zoo(&["eval", s(&run_file("fixed.toml", "")), "--json"]);
    assert!(ok, "{text}");
    let fixed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_ne!(fixed["accuracy"], report["accuracy"]);
    // Detection: torchvision's references/detection evaluation — each image at its own size
    // through the model's 800/1333-style transform (here [64, 112]), boxes and masks mapped
    // back, crowd regions ignored, pycocotools' AP — on the fixture's COCO set.
    let det = &expected["detection"];
    let config = dir.join("maskrcnn.toml");
    std::fs::write(
        &config,
        format!(
            "[model]\nname = \"maskrcnn_resnet50_fpn\"\nnum_classes = {}\nbase_channels = {}\n\
             head_channels = {}\nfrozen_batch_norm = true\ntransform_size = {}\nweights = {:?}\n\
             [data]\nformat = \"coco\"\nroot = {:?}\ntrain_split = \"train\"\nval_split = \"val\"\n\
             label_map = \"coco_ids\"\nimage_size = [64, 64]\n[eval]\nresize = \"original\"\n",
            det["num_classes"],
            det["base_channels"],
            det["head_channels"],
            det["transform_size"],
            s(&fixtures.join("maskrcnn.weights.safetensors")),
            s(&fixtures.join("coco")),
        ),
    )
    .unwrap();
    let (ok, text) = zoo(&["eval", s(&config), "--json"]);
    assert!(ok, "{text}");
    let report: serde_json::Value = serde_json::from_str(&text).expect("JSON figures");
    for (ours, theirs, what) in [("box_ap", "bbox", "box"), ("mask_ap", "segm", "mask")] {
        for (i, name) in ["AP", "AP50", "AP75"].iter().enumerate() {
            close(&report[ours][i], &det[theirs][i], &format!("{what} {name}"));
        }
    }
    // Neither a checkpoint nor weights: said, naming the flag.
    let bare = dir.join("bare.toml");
    std::fs::write(&bare, TINY_UNET).unwrap();
    let (ok, text) = zoo(&["eval", s(&bare)]);
    assert!(
        !ok && text.contains("--checkpoint") && text.contains("model.weights"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// Fine-tuning end to end on each on-disk format, from a `model.weights` file written by
/// `save_upstream` (or torchvision, for VOC): `zoo train` (a few steps) → `zoo eval` →
/// `zoo predict`. COCO: 91-index weights evaluated with the raw category ids, a crowd region
/// among the annotations, images evaluated at their own size (the detector's transform
/// inside); VOC: torchvision's shorter-side protocol; ImageFolder: 10-class weights
/// fine-tuned to the folder's 2 classes (only the classifier re-initialised).
#[test]
fn fine_tune_eval_and_predict_on_voc_coco_and_image_folder() {
    let dir = scratch("formats");
    // Trains, evaluates the best checkpoint; the training log and the figures.
    let run = |name: &str, config: &Path| -> (std::path::PathBuf, String, serde_json::Value) {
        let out = dir.join(format!("run-{name}"));
        let (ok, log) = zoo(&["train", s(config), "--out", s(&out)]);
        assert!(ok && log.contains("loaded weights"), "{name}: {log}");
        let best = out.join("checkpoints/best.bpk");
        let (ok, text) = zoo(&["eval", s(config), "--checkpoint", s(&best), "--json"]);
        assert!(ok, "{name} eval: {text}");
        (best, log, serde_json::from_str(&text).unwrap())
    };

    // VOC layout (the eval-protocol fixture's set), DeepLabV3 from torchvision-written weights.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval_protocol");
    let voc = dir.join("voc.toml");
    std::fs::write(
        &voc,
        format!(
            "[model]\nname = \"deeplabv3_resnet50\"\nnum_classes = 3\nbase_channels = 2\n\
             head_channels = 16\natrous_rates = [12, 24, 36]\naux_loss = true\nweights = {:?}\n\
             [data]\nformat = \"voc\"\nroot = {:?}\nimage_size = [32, 32]\n\
             [data.augment]\nhflip = 0.5\nscale = [0.75, 1.25]\ncrop = [32, 32]\n\
             [eval]\nresize = \"shorter_side\"\nsize = 40\n\
             [train]\nepochs = 1\nbatch_size = 2\nlr = 0.001\naux_weight = 0.5\n",
            s(&fixtures.join("deeplabv3.weights.safetensors")),
            s(&fixtures.join("voc")),
        ),
    )
    .unwrap();
    let (best, _, figures) = run("voc", &voc);
    assert_eq!(figures["samples"], 4);
    assert!(figures["miou"].as_f64().is_some());
    let image = fixtures.join("voc/JPEGImages/img1.jpg");
    let out = dir.join("voc-pred");
    let (ok, text) = zoo(&[
        "predict",
        "--checkpoint",
        s(&best),
        s(&image),
        "--out",
        s(&out),
    ]);
    assert!(ok, "{text}");
    let mask = image::open(out.join("img1.mask.png")).unwrap();
    assert_eq!(
        (mask.width(), mask.height()),
        (26, 37),
        "the image's own size"
    );

    // COCO with raw category ids (1, 3; 91-index classes as torchvision's weights) and a crowd.
    let coco = dir.join("coco");
    for split in ["train", "val"] {
        std::fs::create_dir_all(coco.join(split)).unwrap();
        let mut images = Vec::new();
        let mut annotations = Vec::new();
        for i in 0..2usize {
            let (w, h) = (48 + 8 * i as u32, 40);
            let name = format!("{split}{i}.png");
            image::RgbImage::from_fn(w, h, |x, y| {
                if (8..24).contains(&x) && (8..24).contains(&y) {
                    image::Rgb([220, 40, 40])
                } else if (30..44).contains(&x) && (20..36).contains(&y) {
                    image::Rgb([40, 40, 220])
                } else {
                    image::Rgb([90, 90, 90])
                }
            })
            .save(coco.join(split).join(&name))
            .unwrap();
            images
                .push(serde_json::json!({"id": i + 1, "file_name": name, "height": h, "width": w}));
            let square = |id: usize, cat: usize, [x, y, side]: [u32; 3], crowd: u8| {
                let (x2, y2) = (x + side, y + side);
                serde_json::json!({"id": id, "image_id": i + 1, "category_id": cat,
                    "iscrowd": crowd, "bbox": [x, y, side, side], "area": side * side,
                    "segmentation": [[x, y, x2, y, x2, y2, x, y2]]})
            };
            annotations.push(square(10 * i + 1, 1, [8, 8, 16], 0));
            annotations.push(square(10 * i + 2, 3, [30, 20, 14], 0));
            annotations.push(square(10 * i + 3, 1, [0, 30, 8], 1));
        }
        std::fs::create_dir_all(coco.join("annotations")).unwrap();
        std::fs::write(
            coco.join(format!("annotations/instances_{split}.json")),
            serde_json::json!({
                "images": images, "annotations": annotations,
                "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
            })
            .to_string(),
        )
        .unwrap();
    }
    let detector = "[model]\nname = \"maskrcnn_resnet50_fpn\"\nnum_classes = 91\n\
                    base_channels = 4\nhead_channels = 8\nrpn_batch_size_per_image = 32\n\
                    box_batch_size_per_image = 32\ntransform_size = [32, 64]\n";
    let model = zoo_train::config::RunConfig::parse(detector, Path::new("d.toml"), &[])
        .unwrap()
        .model_config()
        .unwrap()
        .init(&Device::flex());
    let weights = dir.join("maskrcnn.safetensors");
    save_upstream(&model, &weights, &model.key_map()).unwrap();
    let config = dir.join("coco.toml");
    std::fs::write(
        &config,
        format!(
            "{detector}weights = {:?}\n[data]\nformat = \"coco\"\nroot = {:?}\ntrain_split = \"train\"\n\
             val_split = \"val\"\nimage_size = [40, 48]\nlabel_map = \"coco_ids\"\n\
             [eval]\nresize = \"original\"\n[train]\nepochs = 1\nbatch_size = 2\nlr = 0.001\n",
            s(&weights),
            s(&coco)
        ),
    )
    .unwrap();
    let (best, _, figures) = run("coco", &config);
    assert_eq!(figures["samples"], 2);
    assert!(figures["box_ap"].is_array() && figures["mask_ap"].is_array());
    assert_eq!(figures["class_names"][3], "car", "raw category ids");
    let out = dir.join("coco-pred");
    let (ok, text) = zoo(&[
        "predict",
        "--checkpoint",
        s(&best),
        s(&coco.join("val/val1.png")),
        "--out",
        s(&out),
    ]);
    assert!(ok, "{text}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    for d in results.as_array().unwrap() {
        assert_eq!(d["segmentation"]["size"], serde_json::json!([40, 56]));
    }

    // ImageFolder: 10-class weights, a 2-class folder.
    for split in ["train", "val"] {
        for (class, colour) in [("cat", [200, 120, 40]), ("dog", [40, 120, 200])] {
            let d = dir.join("folder").join(split).join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..2u32 {
                image::RgbImage::from_pixel(36 + 4 * i, 32, image::Rgb(colour))
                    .save(d.join(format!("{i}.png")))
                    .unwrap();
            }
        }
    }
    let resnet = "[model]\nname = \"resnet18\"\nnum_classes = 10\nbase_channels = 4\n";
    let model = zoo_train::config::RunConfig::parse(resnet, Path::new("r.toml"), &[])
        .unwrap()
        .model_config()
        .unwrap()
        .init(&Device::flex());
    let weights = dir.join("resnet.safetensors");
    save_upstream(&model, &weights, &model.key_map()).unwrap();
    let config = dir.join("folder.toml");
    std::fs::write(
        &config,
        format!(
            "{}weights = {:?}\n[data]\nformat = \"image_folder\"\nroot = {:?}\nimage_size = [32, 32]\n\
             [eval]\nresize = \"shorter_side\"\nsize = 36\ncrop = 32\n\
             [train]\nepochs = 1\nbatch_size = 2\nlr = 0.001\n",
            resnet.replace("num_classes = 10", "num_classes = 2"),
            s(&weights),
            s(&dir.join("folder"))
        ),
    )
    .unwrap();
    let (best, log, figures) = run("folder", &config);
    assert!(
        log.contains("re-initialised") && log.contains("fc.weight"),
        "{log}"
    );
    assert_eq!(figures["samples"], 4);
    let (ok, text) = zoo(&[
        "predict",
        "--checkpoint",
        s(&best),
        s(&dir.join("folder/val/dog/1.png")),
        "--out",
        s(&dir.join("folder-pred")),
    ]);
    assert!(
        ok && (text.contains("cat") || text.contains("dog")),
        "{text}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// `--devices` a backend cannot serve is refused before anything is written, naming the
/// argument (data-parallel training itself: `crates/zoo-train/tests/data_parallel.rs`).
#[test]
fn train_devices_that_do_not_fit_are_refused_naming_the_argument() {
    let dir = scratch("devices");
    let config = dir.join("tiny.toml");
    std::fs::write(&config, TINY_UNET).unwrap();
    let run = dir.join("run");
    let (c, r) = (s(&config), s(&run));
    for (args, expected) in [
        (&["--devices", "0,1"][..], "--devices: flex has one device"),
        (&["--devices", "2"][..], "--devices: no device 2 on flex"),
        (
            &["--devices", "0,0"][..],
            "train.devices: device 0 is listed twice",
        ),
        (
            &["--devices", "0,1", "train.batch_size=1"][..],
            "train.devices: 2 devices but train.batch_size = 1",
        ),
        (
            &["train.devices=[0, 1]"][..],
            "train.devices: flex has one device",
        ),
    ] {
        let (ok, text) = zoo(&[&["train", c, "--out", r][..], args].concat());
        assert!(!ok && text.contains(expected), "{args:?}: {text}");
        assert!(!run.exists(), "{args:?} wrote {}", run.display());
    }
}
