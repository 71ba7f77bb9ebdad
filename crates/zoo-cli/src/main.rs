//! `zoo`: train, evaluate and use burn-zoo models from TOML run files.
//!
//! ```text
//! zoo train CONFIG.toml [--backend flex|wgpu|cuda] [--devices 0,1,…] [--out DIR] [--force | --resume] [--quiet] [--log-every N] [key=value ...]
//! zoo eval CONFIG.toml --checkpoint CKPT [--json] [key=value ...]
//! zoo predict --checkpoint CKPT IMAGE... [--out DIR]
//! zoo import --arch NAME WEIGHTS.(pth|safetensors) --out CKPT [--num-classes N] [--image-size N]
//! zoo bench (--model NAME | --config FILE) [--backends flex,wgpu] [--train]
//! zoo list
//! zoo weights list [MODEL] | zoo weights fetch NAME
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::prelude::Device;
use clap::{Args, Parser, Subcommand, ValueEnum};
use zoo_train::bench::{BenchSpec, bench};
use zoo_train::checkpoint;
use zoo_train::config::RunConfig;
use zoo_train::eval::evaluate;
use zoo_train::parallel::{DataParallel, DevicesError, SyncMode};
use zoo_train::rundir::Start;

mod report;
use report::Reporter;
use zoo_train::train::{Event, TrainOptions, train, validation_data};

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
    /// Run a checkpoint on image files; writes `input | prediction` overlays at each image's
    /// size, class-mask PNGs (segmentation) and COCO results JSON (instance segmentation).
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
    /// The backend's device; also made Burn's default device (`BURN_DEVICE`), where Burn
    /// puts what it creates without a device (a resumed optimiser's state), so a run on one
    /// backend never wakes another.
    fn device(self) -> Result<Device, String> {
        if std::env::var_os("BURN_DEVICE").is_none() && !matches!(self, Backend::Ndarray) {
            // SAFETY: `zoo` sets it on the main thread before any other thread starts.
            unsafe { std::env::set_var("BURN_DEVICE", self.name()) };
        }
        match self {
            Backend::Flex => Ok(Device::flex()),
            Backend::Ndarray => Err("--backend ndarray: retired. Burn 0.22 deprecates \
                                     burn-ndarray in favour of flex, the default CPU backend, \
                                     which also runs burn-zoo's own CPU kernels (ndarray keeps \
                                     Burn's generic ones: a U-Net training step is several \
                                     times slower there). Use --backend flex."
                .into()),
            Backend::Wgpu => {
                quiet_wayland_probe();
                Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))
            }
            #[cfg(feature = "cuda")]
            Backend::Cuda => Ok(Device::cuda(0)),
            #[cfg(not(feature = "cuda"))]
            Backend::Cuda => Err("--backend cuda: this zoo was built without the `cuda` \
                                  feature (cargo build --release --features cuda)"
                .into()),
        }
    }

    /// The devices `indices` name (`arg`: the flag or key they come from), the first being
    /// also Burn's default device; the backend's device alone when `indices` is empty.
    fn devices(self, indices: &[usize], arg: &'static str) -> Result<Vec<Device>, String> {
        let device = self.device()?;
        if indices.is_empty() {
            return Ok(vec![device]);
        }
        let available: Vec<Device> = match self {
            Backend::Flex | Backend::Ndarray => vec![device],
            Backend::Wgpu => Device::enumerate(burn::tensor::DeviceType::Wgpu).into_vec(),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Device::enumerate(burn::tensor::DeviceType::Cuda).into_vec(),
            #[cfg(not(feature = "cuda"))]
            Backend::Cuda => unreachable!("Backend::device refuses cuda without the feature"),
        };
        if available.len() == 1 && indices.len() > 1 {
            return Err(DevicesError::OneDevice {
                arg,
                backend: self.name(),
                given: indices.to_vec(),
            }
            .to_string());
        }
        indices
            .iter()
            .map(|&index| {
                available.get(index).cloned().ok_or_else(|| {
                    DevicesError::NoSuchDevice {
                        arg,
                        backend: self.name(),
                        index,
                        available: available.len(),
                    }
                    .to_string()
                })
            })
            .collect()
    }

    /// How replicas on this backend's devices sum their gradients: Burn's all-reduce where
    /// Burn 0.22.1 has a device transport (CUDA, NCCL), gathered on the first device
    /// elsewhere.
    fn sync_mode(self) -> SyncMode {
        match self {
            Backend::Cuda => SyncMode::Collective,
            Backend::Flex | Backend::Ndarray | Backend::Wgpu => SyncMode::Gather,
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

/// Vulkan's loader probes for a Wayland display when wgpu starts, and libwayland prints
/// "error: XDG_RUNTIME_DIR is invalid or not set" to stderr when the variable is missing
/// (headless machines, CI, `sudo`). burn-zoo never presents to a display; pointing the
/// variable at a private empty directory makes the probe fail quietly.
fn quiet_wayland_probe() {
    #[cfg(unix)]
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
        let dir = std::env::temp_dir().join(format!("zoo-runtime-{uid}"));
        // Already there from an earlier run is fine; ownership and mode are checked below.
        std::fs::DirBuilder::new().mode(0o700).create(&dir).ok();
        let private = std::fs::metadata(&dir)
            .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o077 == 0);
        if private {
            // SAFETY: set on the main thread before wgpu starts any thread.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
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
    /// Devices of the backend, by index (`0,1,2,3`; sets `train.devices`): one selects it;
    /// several train data-parallel, one model replica per device, each fed its part of every
    /// batch of `train.batch_size` (the same batches as on one device).
    #[arg(long, value_delimiter = ',')]
    devices: Vec<usize>,
    /// Run directory (default: runs/{config file stem}).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Start afresh in an existing run directory: the old run's files are removed first.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Continue the run in the run directory from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Print only errors and the summary (train.log still gets every line).
    #[arg(long)]
    quiet: bool,
    /// A progress line every this many steps (and at each epoch's end).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    log_every: u64,
    /// Overrides, `section.key=value` (TOML values; bare words are strings).
    overrides: Vec<String>,
}

/// The flag the first SIGINT / SIGTERM sets (the run stops after its current step and
/// commits a checkpoint); a second one ends the process at once with status 130.
fn interrupt_flag() -> Result<Arc<AtomicBool>, String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as the previous signal left it.
        signal_hook::flag::register_conditional_shutdown(signal, 130, flag.clone())
            .and_then(|_| signal_hook::flag::register(signal, flag.clone()))
            .map_err(|e| format!("cannot install the interrupt handler: {e}"))?;
    }
    Ok(flag)
}

fn train_command(a: TrainArgs) -> Result<ExitCode, String> {
    let mut overrides = a.overrides.clone();
    if !a.devices.is_empty() {
        overrides.push(format!("train.devices={:?}", a.devices));
    }
    let run = RunConfig::load(&a.config, &overrides).map_err(text)?;
    let out = a
        .out
        .unwrap_or_else(|| PathBuf::from("runs").join(a.config.file_stem().unwrap_or_default()));
    let arg = if a.devices.is_empty() {
        "train.devices"
    } else {
        "--devices"
    };
    let mut devices = a.backend.devices(&run.train.devices, arg)?;
    let device = devices[0].clone();
    let on = match devices.len() {
        1 if run.train.devices.is_empty() => a.backend.name().to_string(),
        1 => format!("{} device {}", a.backend.name(), run.train.devices[0]),
        n => format!(
            "{} devices {:?} ({} data-parallel, {} images per device of each batch of {})",
            a.backend.name(),
            run.train.devices,
            a.backend.sync_mode().name(),
            run.train.batch_size.div_ceil(n),
            run.train.batch_size
        ),
    };
    let parallel = (devices.len() > 1).then(|| DataParallel {
        devices: std::mem::take(&mut devices),
        mode: a.backend.sync_mode(),
    });
    let task = run.model_config().map_err(text)?.family().task();
    let start = match (a.resume, a.force) {
        (true, _) => Start::Resume,
        (false, true) => Start::Force,
        (false, false) => Start::Fresh,
    };
    let interrupt = interrupt_flag()?;
    let options = TrainOptions {
        start,
        stop_after: None,
        interrupt: Some(interrupt.clone()),
        parallel,
    };
    let mut report = Reporter::new(a.quiet, a.log_every as usize);
    let mut told = false;
    let result = train(&run, &device, &out, options, |event| {
        if let Event::Start { resumed, .. } = &event {
            report.log_to(&out);
            let line = match resumed {
                Some(at) => format!(
                    "resuming {} ({}) on {on} in {} from its checkpoint at {at}",
                    run.model.name,
                    task.name(),
                    out.display()
                ),
                None => format!(
                    "training {} ({}) on {on} → {}",
                    run.model.name,
                    task.name(),
                    out.display()
                ),
            };
            report.line(&line, false);
        }
        if matches!(event, Event::Step(_))
            && interrupt.load(Ordering::SeqCst)
            && !std::mem::replace(&mut told, true)
        {
            report.line(
                "interrupt: stopping after this step and committing a checkpoint (interrupt \
                 again to exit at once)",
                true,
            );
        }
        report.event(&event);
    });
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            report.line(&format!("error: {e}"), true);
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Some(at) = &outcome.stopped {
        report.line(
            &format!(
                "stopped at {at}; checkpoint committed. Continue with: zoo train {} --out {} --resume{}{}",
                a.config.display(),
                out.display(),
                if a.devices.is_empty() {
                    String::new()
                } else {
                    format!(
                        " --devices {}",
                        a.devices
                            .iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                },
                a.overrides
                    .iter()
                    .map(|o| format!(" {o}"))
                    .collect::<String>()
            ),
            false,
        );
        return Ok(ExitCode::from(130));
    }
    if let Some(best) = outcome.best_epoch.and_then(|e| outcome.history.get(e - 1)) {
        report.line(
            &format!(
                "best: epoch {} ({} {:.4}); checkpoints in {}",
                best.epoch,
                best.val.primary_name(),
                best.val.primary(),
                out.join("checkpoints").display()
            ),
            false,
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
struct EvalArgs {
    /// The run file (TOML) whose `[data]` gives the validation split.
    config: PathBuf,
    /// The checkpoint (`.bpk`), of the run file's model (default: the run file's
    /// `model.weights`, e.g. published upstream weights by their registry name).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
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
    let config = a.config.as_path();
    let run = RunConfig::load(config, &a.overrides).map_err(text)?;
    let device = a.backend.device()?;
    let (model, evaluated) = match &a.checkpoint {
        Some(ckpt) => {
            let model = run.model_config().map_err(text)?.init(&device);
            let model = checkpoint::load_into(model, ckpt, &run.model.name).map_err(text)?;
            (model, ckpt.display().to_string())
        }
        None => {
            let Some(weights) = run.model.weights.clone() else {
                return Err(format!(
                    "--checkpoint: no checkpoint given and {} sets no model.weights to evaluate",
                    config.display()
                ));
            };
            let (model, loaded) = zoo_train::train::initial_model(&run, &device).map_err(text)?;
            if let Some(w) = loaded.filter(|w| !w.reinitialised.is_empty()) {
                return Err(format!(
                    "model.weights: {} has another class count than model.num_classes = {} ({}); evaluating would use an untrained classifier",
                    w.file.display(),
                    run.model.num_classes,
                    w.reinitialised.join(", ")
                ));
            }
            (model, weights)
        }
    };
    let data = validation_data(&run).map_err(text)?;
    let report = evaluate(&model, &run, data.as_ref(), &device).map_err(text)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(text)?);
    } else {
        println!(
            "{} on {} validation samples ({})",
            evaluated,
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
    let results =
        zoo_train::predict::predict(&model, &info, &a.images, &a.out, &device).map_err(text)?;
    let mut failed = 0;
    for result in &results {
        match result {
            Ok(p) => println!(
                "{} → {}{}  ({} {:.3})",
                p.input.display(),
                p.output.display(),
                p.mask
                    .as_ref()
                    .map_or(String::new(), |m| format!(", {}", m.display())),
                p.top.0,
                p.top.1
            ),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    let detections = a.out.join("results.json");
    if detections.exists() {
        println!("detections (COCO results format): {}", detections.display());
    }
    if failed > 0 {
        return Err(format!(
            "{failed} of {} images could not be predicted (see above)",
            results.len()
        ));
    }
    Ok(())
}

#[derive(Args)]
struct ImportArgs {
    /// Registry name of the model (`zoo list`); default: the weights' model when they are
    /// published weights (`zoo weights list`).
    #[arg(long)]
    arch: Option<String>,
    /// The weights: `.pth` (a state dict) or `.safetensors`, or a weights registry name
    /// (fetched into the cache). Published weights, by name or by their upstream file name,
    /// bring their class count, class names and evaluation preprocessing.
    weights: PathBuf,
    /// The checkpoint to write (`.bpk`).
    #[arg(long)]
    out: PathBuf,
    /// Classes of the weights' head (default: the published weights', else 1000 for
    /// classifiers, 21 for segmenters, 91 for Mask R-CNN).
    #[arg(long)]
    num_classes: Option<usize>,
    /// Side of the square images `zoo predict` resizes inputs to (not used by Mask R-CNN,
    /// imported with torchvision's own 800 / 1333 transform and frozen BatchNorm, eps 0).
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
    // Published weights: by registry name, or by their upstream file name.
    let given = a.weights.to_string_lossy().into_owned();
    let file_name = a
        .weights
        .file_name()
        .map(|f| f.to_string_lossy().into_owned());
    // (A file name shared by several published files, as Hugging Face's `model.safetensors`,
    // names none of them.)
    let spec = zoo_models::hub::find(&given).or_else(|| {
        let mut named = zoo_models::hub::weights().iter().filter(|w| {
            w.role == zoo_models::hub::Role::Model
                && w.url.rsplit('/').next() == file_name.as_deref()
        });
        named.next().filter(|_| named.next().is_none())
    });
    let weights = if a.weights.is_file() {
        a.weights.clone()
    } else if let Some(spec) = spec.filter(|s| s.name == given) {
        zoo_models::hub::fetch(spec.name).map_err(text)?
    } else {
        return Err(format!(
            "{given}: neither a file nor a weights registry name (`zoo weights list`)"
        ));
    };
    let arch = match (&a.arch, spec) {
        (Some(arch), _) => arch.clone(),
        (None, Some(spec)) => spec.arch.to_string(),
        (None, None) => {
            return Err(
                "--arch: required for weights that are not in the registry (`zoo list`)".into(),
            );
        }
    };
    let spec = spec.filter(|s| s.arch == arch);
    let num_classes = match (a.num_classes, spec) {
        (Some(n), _) => n,
        (None, Some(spec)) if spec.classes.count() > 0 => spec.classes.count(),
        _ => upstream_classes(&arch).map_err(|e| format!("--arch: {e}"))?,
    };
    let names: Vec<String> = spec
        .and_then(|s| s.classes.names())
        .filter(|n| n.len() == num_classes)
        .map(|n| n.into_iter().map(String::from).collect())
        .unwrap_or_default();
    let device = Device::flex();
    let (model, info) = checkpoint::import_upstream(
        &arch,
        num_classes,
        [a.image_size, a.image_size],
        &weights,
        spec.map(|s| s.name),
        names,
        &device,
    )
    .map_err(text)?;
    checkpoint::save(&model, &info, &a.out).map_err(text)?;
    println!(
        "{} ({arch}, {num_classes} classes{}) → {}",
        weights.display(),
        spec.map_or(String::new(), |s| format!(", published as {}", s.name)),
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
    zoo_nn::kernels::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => match train_command(a) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
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
