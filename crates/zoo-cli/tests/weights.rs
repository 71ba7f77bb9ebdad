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
