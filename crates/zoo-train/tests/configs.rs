//! Every shipped run file (`configs/*.toml`) loads and describes a model that builds.

use std::path::Path;

use zoo_train::config::{DataFormat, RunConfig};
use zoo_train::model::model_config;

#[test]
fn shipped_run_files_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    // On-disk formats point at data this repository does not ship: any existing
    // directory passes the check of `data.root`.
    let root = format!("data.root=\"{}\"", std::env::temp_dir().display());
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let plain = RunConfig::load(&path, &[]);
        let run = match plain {
            Ok(run) => run,
            Err(e) => {
                assert!(
                    e.to_string().contains("data.root"),
                    "{}: {e}",
                    path.display()
                );
                RunConfig::load(&path, std::slice::from_ref(&root))
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            }
        };
        if run.data.format == DataFormat::Shapes {
            assert!(run.data.root.is_none(), "{}", path.display());
        }
        model_config(&run).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen += 1;
    }
    assert!(seen >= 6, "only {seen} run files in {}", dir.display());
}
