//! `zoo`: train, evaluate and use burn-zoo models from TOML run files.
//!
//! ```text
//! zoo train CONFIG.toml [--backend flex|wgpu|cuda] [--out DIR] [--force | --resume] [key=value ...]
//! zoo eval CONFIG.toml --checkpoint CKPT [--json] [key=value ...]
//! zoo predict --checkpoint CKPT IMAGE... [--out DIR]
//! zoo import --arch NAME WEIGHTS.(pth|safetensors) --out CKPT [--num-classes N] [--image-size N]
//! zoo bench (--model NAME | --config FILE) [--backends flex,wgpu] [--train]
//! zoo list
//! zoo weights list [MODEL] | zoo weights fetch NAME
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use burn::prelude::Device;
use clap::{Args, Parser, Subcommand, ValueEnum};
use zoo_train::bench::{BenchSpec, bench};
use zoo_train::checkpoint;
use zoo_train::config::RunConfig;
use zoo_train::eval::evaluate;
use zoo_train::train::{TrainOptions, train, validation_data};

mod weights;

#[derive(Parser)]
#[command(
    name = "zoo",
    version,
    about = "Train, evaluate and use burn-zoo models from TOML run files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the model a run file describes; writes the run directory.
    Train(TrainArgs),
    /// Evaluate a checkpoint on the validation split of a run file; prints a metrics table.
    Eval(EvalArgs),
    /// Run a checkpoint on image files; writes `input | prediction` overlay PNGs.
    Predict(PredictArgs),
    /// Convert upstream PyTorch weights (torchvision / timm / smp) to a burn-zoo checkpoint.
    Import(ImportArgs),
    /// Time a model's inference (or training step) on several backends.
    Bench(BenchArgs),
    /// List the models of the zoo and the shipped run files.
    List,
    /// The published upstream weights: list them, download one into the cache.
    Weights(weights::WeightsArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    Flex,
    /// Retired: accepted only to say so (see [`Backend::device`]).
    #[value(hide = true)]
    Ndarray,
    Wgpu,
    Cuda,
}

impl Backend {
    fn device(self) -> Result<Device, String> {
        match self {
            Backend::Flex => Ok(Device::flex()),
            Backend::Ndarray => Err("--backend ndarray: retired. Burn 0.22 deprecates \
                                     burn-ndarray in favour of flex, the default CPU backend, \
                                     which also runs burn-zoo's own CPU kernels (ndarray keeps \
                                     Burn's generic ones: a U-Net training step is several \
                                     times slower there). Use --backend flex."
                .into()),
            Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Ok(Device::cuda(0)),
            #[cfg(not(feature = "cuda"))]
            Backend::Cuda => Err("--backend cuda: this zoo was built without the `cuda` \
                                  feature (cargo build --release --features cuda)"
                .into()),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        }
    }
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

#[derive(Args)]
struct TrainArgs {
    /// The run file (TOML).
    config: PathBuf,
    /// Backend to train on.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    backend: Backend,
    /// Run directory (default: runs/<config file stem>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write into an existing run directory, starting afresh.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Continue the run in the run directory from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Overrides, `section.key=value` (TOML values; bare words are strings).
    overrides: Vec<String>,
}

fn train_command(a: TrainArgs) -> Result<(), String> {
    let run = RunConfig::load(&a.config, &a.overrides).map_err(text)?;
    let out = a
        .out
        .unwrap_or_else(|| PathBuf::from("runs").join(a.config.file_stem().unwrap_or_default()));
    if a.resume && !out.is_dir() {
        return Err(format!(
            "--resume: {}: no such run directory (pass the run's --out)",
            out.display()
        ));
    }
    if out.exists() && !a.force && !a.resume {
        return Err(format!(
            "{}: the run directory exists; pass --resume to continue it, --force to start \
             afresh in it, or --out DIR",
            out.display()
        ));
    }
    let device = a.backend.device()?;
    let task = run.model_config().map_err(text)?.family().task();
    println!(
        "training {} ({}) on {} → {}",
        run.model.name,
        task.name(),
        a.backend.name(),
        out.display()
    );
    let options = TrainOptions {
        resume: a.resume,
        stop_after: None,
    };
    let mut header = false;
    let history = train(&run, &device, &out, options, |r| {
        if !std::mem::replace(&mut header, true) {
            println!(
                "epoch  train_loss  {:>12}  val_acc  lr        seconds",
                r.val.primary_label()
            );
        }
        println!(
            "{:>5}  {:>10.4}  {:>12.4}  {:>7.4}  {:.2e}  {:>7.1}",
            r.epoch,
            r.train_loss,
            r.val.primary(),
            r.val.accuracy,
            r.lr,
            r.seconds
        );
    })
    .map_err(text)?;
    if let Some(best) = history
        .iter()
        .max_by(|a, b| a.val.primary().total_cmp(&b.val.primary()))
    {
        println!(
            "best: epoch {} ({} {:.4}); checkpoints in {}",
            best.epoch,
            best.val.primary_name(),
            best.val.primary(),
            out.join("checkpoints").display()
        );
    }
    Ok(())
}

#[derive(Args)]
struct EvalArgs {
    /// The run file (TOML) whose `[data]` gives the validation split.
    config: PathBuf,
    /// The checkpoint (`.bpk`), of the run file's model.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Backend to evaluate on.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    backend: Backend,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Overrides, `section.key=value`.
    overrides: Vec<String>,
}

fn eval_command(a: EvalArgs) -> Result<(), String> {
    let (config, ckpt) = (a.config.as_path(), a.checkpoint.as_path());
    let run = RunConfig::load(config, &a.overrides).map_err(text)?;
    let device = a.backend.device()?;
    let model = run.model_config().map_err(text)?.init(&device);
    let model = checkpoint::load_into(model, ckpt, &run.model.name).map_err(text)?;
    let data = validation_data(&run).map_err(text)?;
    let report = evaluate(&model, &run, data.as_ref(), &device).map_err(text)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(text)?);
    } else {
        println!(
            "{} on {} validation samples ({})",
            ckpt.display(),
            report.samples,
            config.display()
        );
        print!("{}", report.table());
    }
    Ok(())
}

#[derive(Args)]
struct PredictArgs {
    /// The checkpoint (`.bpk`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// PNG or JPEG files.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Directory of the overlays.
    #[arg(long, default_value = "predictions")]
    out: PathBuf,
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    backend: Backend,
}

fn predict_command(a: PredictArgs) -> Result<(), String> {
    let device = a.backend.device()?;
    let (model, info) = checkpoint::load(&a.checkpoint, &device).map_err(text)?;
    for p in zoo_train::predict::predict(&model, &info, &a.images, &a.out, &device).map_err(text)? {
        println!(
            "{} → {}  ({} {:.3})",
            p.input.display(),
            p.output.display(),
            p.top.0,
            p.top.1
        );
    }
    Ok(())
}

#[derive(Args)]
struct ImportArgs {
    /// Registry name of the model (`zoo list`).
    #[arg(long)]
    arch: String,
    /// The weights: `.pth` (a state dict) or `.safetensors`.
    weights: PathBuf,
    /// The checkpoint to write (`.bpk`).
    #[arg(long)]
    out: PathBuf,
    /// Classes of the weights' head (default: 1000 for classifiers, 21 for segmenters).
    #[arg(long)]
    num_classes: Option<usize>,
    /// Side of the square images `zoo predict` resizes inputs to.
    #[arg(long, default_value_t = 224)]
    image_size: usize,
    /// Overwrite an existing checkpoint.
    #[arg(long)]
    force: bool,
}

fn import_command(a: ImportArgs) -> Result<(), String> {
    if a.out.exists() && !a.force {
        return Err(format!(
            "{}: exists; pass --force to overwrite it",
            a.out.display()
        ));
    }
    let num_classes = match a.num_classes {
        Some(n) => n,
        None => upstream_classes(&a.arch).map_err(|e| format!("--arch: {e}"))?,
    };
    let device = Device::flex();
    let (model, info) = checkpoint::import_upstream(
        &a.arch,
        num_classes,
        [a.image_size, a.image_size],
        &a.weights,
        &device,
    )
    .map_err(text)?;
    checkpoint::save(&model, &info, &a.out).map_err(text)?;
    println!(
        "{} ({}, {num_classes} classes) → {}",
        a.weights.display(),
        a.arch,
        a.out.display()
    );
    Ok(())
}

#[derive(Args)]
struct BenchArgs {
    /// Registry name of the model (`zoo list`), at its upstream size.
    #[arg(long, required_unless_present = "config", conflicts_with = "config")]
    model: Option<String>,
    /// A run file: its (possibly narrowed) model and image size.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Comma-separated backends.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "flex,wgpu")]
    backends: Vec<Backend>,
    /// Time a training step (forward, loss, backward, SGD update) instead of inference.
    #[arg(long)]
    train: bool,
    /// Images per iteration.
    #[arg(long, default_value_t = 2)]
    batch: usize,
    /// Image side (default: the run file's image size, else 224).
    #[arg(long)]
    size: Option<usize>,
    /// Timed iterations.
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
}

fn bench_command(a: BenchArgs) -> Result<(), String> {
    let (label, model, run_size) = match (&a.model, &a.config) {
        (Some(name), _) => {
            let classes = upstream_classes(name).map_err(|e| format!("--model: {e}"))?;
            let model = zoo_models::registry::config(name, classes)
                .ok_or_else(|| format!("--model: {name:?} is not in the registry"))?;
            (name.clone(), model, None)
        }
        (None, Some(path)) => {
            let run = RunConfig::load(path, &[]).map_err(text)?;
            (
                path.display().to_string(),
                run.model_config().map_err(text)?,
                Some(run.data.image_size),
            )
        }
        (None, None) => return Err("pass --model NAME or --config FILE".into()),
    };
    if a.iters == 0 || a.batch == 0 {
        return Err("--iters and --batch must be positive".into());
    }
    let size = a.size.map(|s| [s, s]).or(run_size).unwrap_or([224, 224]);
    model
        .family()
        .preprocessing()
        .input
        .check(size)
        .map_err(|e| format!("--size: {}: {e}", model.family().family_name()))?;
    let spec = BenchSpec {
        batch: a.batch,
        size,
        warmup: a.warmup,
        iters: a.iters,
        train: a.train,
    };
    println!(
        "{label}: {} of a {}×{}×{} batch, {} timed iterations after {} warmup",
        if a.train {
            "training step"
        } else {
            "inference"
        },
        a.batch,
        size[0],
        size[1],
        a.iters,
        a.warmup
    );
    println!("{:<10} {:>12} {:>12}", "backend", "ms/iter", "images/s");
    for backend in a.backends {
        let device = backend.device()?;
        let r = bench(&model, &device, &spec).map_err(text)?;
        println!(
            "{:<10} {:>12.1} {:>12.2}",
            backend.name(),
            r.ms_per_iter,
            r.images_per_s
        );
    }
    Ok(())
}

/// Classes of the upstream weights of registry model `name` (ImageNet's 1000, VOC's 21,
/// COCO's 91, by its task).
fn upstream_classes(name: &str) -> Result<usize, String> {
    let unknown = || {
        format!(
            "unknown model {name:?}; expected one of {}",
            zoo_models::registry::names().join(", ")
        )
    };
    let probe = zoo_models::registry::config(name, 2).ok_or_else(unknown)?;
    Ok(probe.family().task().default_num_classes())
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
            let model = RunConfig::load(Path::new("configs").join(&f), &[])
                .map_or_else(|e| format!("(does not load: {e})"), |r| r.model.name);
            println!("  configs/{f:<32} {model}");
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => train_command(a),
        Command::Eval(a) => eval_command(a),
        Command::Predict(a) => predict_command(a),
        Command::Import(a) => import_command(a),
        Command::Bench(a) => bench_command(a),
        Command::List => {
            list();
            Ok(())
        }
        Command::Weights(a) => weights::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
