//! `zoo weights list` and `zoo weights fetch`, without the network: the list's format, and
//! the fetch command's cache, mirror and errors through its environment variables.

use std::net::TcpListener;
use std::process::Command;

use zoo_models::hub;

/// Runs `zoo weights args…` with extra environment variables; returns success, stdout and
/// stderr.
fn weights(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zoo"))
        .arg("weights")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run zoo");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_prints_one_file_per_line_name_then_url() {
    let (ok, out, err) = weights(&["list"], &[]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), hub::weights().len(), "{out}");
    for (line, spec) in lines.iter().zip(hub::weights()) {
        let mut fields = line.split_whitespace();
        assert_eq!(fields.next(), Some(spec.name), "{line}");
        assert_eq!(fields.next(), Some(spec.url), "{line}");
    }
    assert!(
        out.contains(
            "https://download.pytorch.org/models/resnet50-11ad3fa6.pth  resnet50  1000 classes  \
             ImageNet-1K acc@1 80.858"
        ),
        "{out}"
    );

    let (ok, out, err) = weights(&["list", "deeplabv3_resnet50"], &[]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("deeplabv3_resnet50.coco_with_voc_labels_v1 ")
            && lines[0].contains(
                "https://download.pytorch.org/models/deeplabv3_resnet50_coco-cd0a2569.pth  weights  \
                 21 classes  COCO-val2017-VOC-labels miou 66.4"
            ),
        "{out}"
    );
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains("  backbone_weights  "))
            && lines
                .iter()
                .any(|l| l.starts_with("resnet50.imagenet1k_v1 "))
            && lines
                .iter()
                .any(|l| l.starts_with("smp-hub/resnet50.imagenet ")),
        "{out}"
    );

    let (ok, _, err) = weights(&["list", "vgg16"], &[]);
    assert!(
        !ok && err.contains("vgg16") && err.contains("unet_resnet18"),
        "{err}"
    );
}

#[test]
fn fetch_serves_the_cache_offline_and_names_what_failed() {
    let home = std::env::temp_dir().join(format!("zoo-cli-weights-{}", std::process::id()));
    std::fs::remove_dir_all(&home).ok();
    let home_s = home.to_str().unwrap();
    // Nothing listens on a port just released: any network use fails.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mirror = format!("http://127.0.0.1:{port}");
    let env = [
        ("ZOO_HOME", home_s),
        ("ZOO_WEIGHTS_MIRROR", mirror.as_str()),
    ];

    let (ok, _, err) = weights(&["fetch", "resnet18"], &env);
    assert!(
        !ok && err.contains("resnet18.imagenet1k_v1")
            && err.contains(&format!("{mirror}/models/resnet18-f37072fd.pth")),
        "{err}"
    );

    // A cached file (timm and smp publish no checksum, so any cached file is accepted).
    let cached = home.join("weights/smp-hub--resnet18.imagenet/model.safetensors");
    std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
    std::fs::write(&cached, b"cached").unwrap();
    let (ok, out, err) = weights(&["fetch", "smp-hub/resnet18.imagenet"], &env);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), cached.to_str().unwrap());

    let (ok, _, err) = weights(&["fetch", "resnet18.nope"], &env);
    assert!(
        !ok && err.contains("unknown weights \"resnet18.nope\""),
        "{err}"
    );
    std::fs::remove_dir_all(&home).ok();
}

/// `zoo import NAME` with a registry name: the file comes from the cache (timm publishes no
/// checksum, so a cached file is used as it is), the architecture, class count and ImageNet
/// class names from the registry, and the checkpoint evaluates with the weights'
/// preprocessing; `zoo predict` names the class.
#[test]
fn import_by_registry_name_brings_classes_and_names() {
    use burn::prelude::Device;
    let home = std::env::temp_dir().join(format!("zoo-cli-import-{}", std::process::id()));
    std::fs::remove_dir_all(&home).ok();
    let name = "swin_tiny_patch4_window7_224.ms_in1k";
    let cached = home.join(format!("weights/{name}/model.safetensors"));
    std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
    let model = zoo_models::registry::config("swin_tiny_patch4_window7_224", 1000)
        .unwrap()
        .init(&Device::flex());
    zoo_models::weights::save_upstream(&model, &cached, &model.key_map()).unwrap();
    let ckpt = home.join("swin.bpk");
    let home_s = home.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_zoo"))
            .args(args)
            .env("ZOO_HOME", home_s)
            .env("ZOO_WEIGHTS_MIRROR", "http://127.0.0.1:9")
            .output()
            .expect("run zoo");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, text) = run(&["import", name, "--out", ckpt.to_str().unwrap()]);
    assert!(
        ok && text.contains("swin_tiny_patch4_window7_224, 1000 classes, published as"),
        "{text}"
    );
    let info = zoo_train::checkpoint::read_info(&ckpt).unwrap();
    assert_eq!(info.class_names.len(), 1000);
    assert_eq!(info.class_names[1], "goldfish");
    assert_eq!(
        info.config.eval_protocol(),
        zoo_train::config::EvalProtocol::ShorterSide {
            size: 248,
            crop: Some(224),
            filter: zoo_data::Filter::Bicubic,
        }
    );
    let png = home.join("x.png");
    image::RgbImage::from_pixel(40, 30, image::Rgb([200, 100, 50]))
        .save(&png)
        .unwrap();
    let (ok, text) = run(&[
        "predict",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        png.to_str().unwrap(),
        "--out",
        home.join("pred").to_str().unwrap(),
    ]);
    assert!(ok && !text.contains("(class "), "an ImageNet name: {text}");
    // A name that is neither a file nor published.
    let (ok, text) = run(&[
        "import",
        "no_such.weights",
        "--out",
        home.join("y.bpk").to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("zoo weights list"), "{text}");
    std::fs::remove_dir_all(home).ok();
}
