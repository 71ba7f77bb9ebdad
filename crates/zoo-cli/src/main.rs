//! `zoo`: train burn-zoo models from TOML run files.
//!
//! ```text
//! zoo train configs/unet_shapes.toml [--backend flex|ndarray|wgpu|cuda] [--out DIR] [--force] [key=value ...]
//! zoo list
//! ```
#![allow(deprecated)] // Device::ndarray()

use std::path::PathBuf;
use std::process::ExitCode;

use burn::prelude::Device;
use clap::{Parser, Subcommand, ValueEnum};
use zoo_train::config::RunConfig;

#[derive(Parser)]
#[command(
    name = "zoo",
    version,
    about = "Train burn-zoo models from TOML run files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the model a run file describes; writes the run directory.
    Train {
        /// The run file (TOML).
        config: PathBuf,
        /// Backend to train on.
        #[arg(long, value_enum, default_value_t = Backend::Flex)]
        backend: Backend,
        /// Run directory (default: runs/<config file stem>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write into an existing run directory.
        #[arg(long)]
        force: bool,
        /// Overrides, `section.key=value` (TOML values; bare words are strings).
        overrides: Vec<String>,
    },
    /// List the models of the zoo and the shipped run files.
    List,
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    Flex,
    Ndarray,
    Wgpu,
    Cuda,
}

impl Backend {
    fn device(self) -> Result<Device, String> {
        match self {
            Backend::Flex => Ok(Device::flex()),
            Backend::Ndarray => Ok(Device::ndarray()),
            Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Ok(Device::cuda(0)),
            #[cfg(not(feature = "cuda"))]
            Backend::Cuda => Err("--backend cuda: this zoo was built without the `cuda` feature (cargo build --features cuda)".into()),
        }
    }
}

fn train(
    config: PathBuf,
    backend: Backend,
    out: Option<PathBuf>,
    force: bool,
    overrides: Vec<String>,
) -> Result<(), String> {
    let run = RunConfig::load(&config, &overrides).map_err(|e| e.to_string())?;
    let out =
        out.unwrap_or_else(|| PathBuf::from("runs").join(config.file_stem().unwrap_or_default()));
    if out.exists() && !force {
        return Err(format!(
            "{}: the run directory exists; pass --force to write into it (or --out DIR)",
            out.display()
        ));
    }
    let device = backend.device()?;
    println!("training {} → {}", run.model.name, out.display());
    println!("epoch  train_loss  val_mIoU  val_acc  lr        seconds");
    zoo_train::segmentation::train(&run, &device, &out, |r| {
        println!(
            "{:>5}  {:>10.4}  {:>8.4}  {:>7.4}  {:.2e}  {:>7.1}",
            r.epoch, r.train_loss, r.val_miou, r.val_accuracy, r.lr, r.seconds
        );
    })
    .map_err(|e| e.to_string())?;
    Ok(())
}

fn list() {
    println!("models:");
    for e in zoo_models::registry::entries() {
        println!("  {:<32} {}", e.name, e.description);
    }
    println!("run files (configs/):");
    if let Ok(dir) = std::fs::read_dir("configs") {
        let mut files: Vec<String> = dir
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        files.sort();
        for f in files {
            println!("  configs/{f}");
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train {
            config,
            backend,
            out,
            force,
            overrides,
        } => train(config, backend, out, force, overrides),
        Command::List => {
            list();
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
