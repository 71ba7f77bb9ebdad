//! The training loop: a run file in, a run directory out.
//!
//! ```text
//! <out>/config.toml            the resolved run file
//! <out>/metrics.csv            one row per epoch (loss, accuracy, mIoU, per-class figures)
//! <out>/history.json           the same, read back by --resume
//! <out>/loss.png, metrics.png  curves
//! <out>/samples/epoch-N.png    validation samples: input | target | prediction
//! <out>/checkpoints/           epoch-N.bpk (every `checkpoint_every`), best.bpk, last.bpk,
//!                              epoch-N.optim.bpk (the optimiser state of last.bpk)
//! ```
//!
//! Every file is written to a temporary name and renamed. Randomness is a function of the
//! seed and the epoch (weights init, data order, augmentations, dropout/drop-path), so a
//! resumed run repeats exactly what the uninterrupted one would have done. The model's
//! family decides the targets, the loss and the figures ([`zoo_models::family`]); the loop
//! does not know which family it trains.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use zoo_data::{ImageDataset, Sample};
use zoo_models::registry::ZooModel;
use zoo_models::task::{Context, LossOptions, TaskError};

use crate::Error;
use crate::checkpoint::{self, CheckpointError, CheckpointInfo, link_atomic, write_atomic};
use crate::config::{DataSection, NonFinite, RunConfig};
use crate::data::{class_names, open, samples};
use crate::eval::evaluate;
use crate::history::{self, EpochReport};
use crate::order::{epoch_order, epoch_seed, step_seed};
use crate::panels::sample_panels;
use crate::parallel::{DataParallel, DevicesError, Replicas, SyncMode};
use crate::plot::save_png;
use crate::rundir::{RunDir, Start};
use crate::schedule::{learning_rate, optimizer};
use crate::state::{self, RunState};
use crate::steps::StepLog;

/// How to start and when to stop.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// A fresh run, a fresh run in place of an old one, or the continuation of the run in
    /// `out` from its last committed checkpoint (weights, optimiser state, position in the
    /// epoch, history).
    pub start: Start,
    /// Stop at this point as if interrupted (the run stays resumable).
    pub stop_after: Option<StopAt>,
    /// Set (e.g. by a SIGINT handler) to stop after the current step: a checkpoint is
    /// committed there and the run returns, resumable.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Data-parallel training on several devices (the first being `train`'s device): one
    /// replica each, each fed its part of every batch ([`crate::parallel`]). `None`: one
    /// device.
    pub parallel: Option<DataParallel>,
}

/// A point to stop a run at (see [`TrainOptions::stop_after`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAt {
    /// After this (1-based) epoch, its validation and checkpoint.
    Epoch(usize),
    /// After this many optimiser steps in all.
    Step(usize),
}

/// What a running training reports, as it happens.
#[derive(Debug)]
pub enum Event<'a> {
    /// The run starts: from scratch (`resumed: None`) or from a committed checkpoint (where it
    /// stood, in words).
    Start {
        /// `Some("epoch 4, batch 7 of 40 (step 127)")` when resuming.
        resumed: Option<String>,
        /// Steps in an epoch.
        steps_per_epoch: usize,
        /// Steps of the whole run.
        total_steps: usize,
        /// Steps already done.
        step: usize,
    },
    /// Upstream weights (`model.weights`) were loaded into the fresh model; `reinitialised`
    /// names the tensors (the classifier) left as initialised for another class count.
    Weights {
        /// What was loaded: `"backbone"` or `"model"`.
        part: &'static str,
        /// The file.
        file: &'a Path,
        /// `path (file shape → model shape)` of each tensor not loaded.
        reinitialised: &'a [String],
    },
    /// A training step ended.
    Step(&'a StepReport),
    /// Validation of an epoch begins.
    Validating {
        /// The 1-based epoch.
        epoch: usize,
    },
    /// An epoch ended: its figures.
    Epoch(&'a EpochReport),
    /// A checkpoint was committed (where the run stands, in words).
    Checkpoint(&'a str),
}

/// One training step's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// 1-based epoch.
    pub epoch: usize,
    /// 1-based batch in the epoch.
    pub batch: usize,
    /// Batches in the epoch.
    pub batches: usize,
    /// Optimiser steps done, this one included.
    pub step: usize,
    /// The batch's loss (non-finite for a skipped step).
    pub loss: f64,
    /// The learning rate of the update.
    pub lr: f64,
    /// The global L2 norm of the gradients, before clipping (NaN for a skipped step).
    pub grad_norm: f64,
    /// The loss's terms by name, for a family whose loss has several (Mask R-CNN).
    pub terms: Vec<(&'static str, f64)>,
    /// Images in the batch.
    pub images: usize,
    /// Wall time of the step (data included).
    pub seconds: f64,
    /// Of which waiting for the batch (what the prefetching loader did not hide).
    pub data_wait_seconds: f64,
    /// Whether the update was skipped (non-finite loss with `train.nonfinite = "skip"`).
    pub skipped: bool,
    /// Data-parallel runs: seconds of the step spent combining the replicas' gradients
    /// outside their backward passes (gather: moving them to the first device, summing them
    /// and sending the updated weights back; collective: 0, Burn's all-reduce runs inside
    /// the backward passes). 0 on one device.
    pub sync_seconds: f64,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// One report per completed epoch.
    pub history: Vec<EpochReport>,
    /// The epoch `best.bpk` holds (the first of equal best figures).
    pub best_epoch: Option<usize>,
    /// Where the run stopped before its end (interrupted or [`TrainOptions::stop_after`]), in
    /// words; `None` when it ran to the end.
    pub stopped: Option<String>,
}

/// What a run writes at its checkpoints.
struct Writer<'a> {
    run: &'a RunDir,
    config: &'a RunConfig,
    class_names: &'a [String],
    steps_per_epoch: usize,
}

/// The files of an epoch's end: its panel of validation samples, whether it is kept as
/// `epoch-N.bpk` and whether it is the best so far.
struct EpochEnd {
    panel: image::RgbImage,
    keep: bool,
    best: bool,
}

impl Writer<'_> {
    /// Writes the checkpoint of `state` (its files, then the commit, then what derives from
    /// it) and removes `previous`'s files.
    fn commit(
        &self,
        model: &ZooModel,
        optim: &ModuleOptimizer,
        state: &RunState,
        end: Option<EpochEnd>,
        previous: Option<&RunState>,
    ) -> Result<(), Error> {
        let ckpt = self.run.checkpoints();
        let model_path = ckpt.join(&state.model);
        let info = CheckpointInfo {
            arch: self.config.model.name.clone(),
            config: self.config.clone(),
            epoch: state.epoch,
            step: state.step,
            class_names: self.class_names.to_vec(),
        };
        // `valid()` also folds the last pending update of each running statistic (BatchNorm)
        // into its value, which a mid-epoch checkpoint must hold.
        let bytes =
            checkpoint::encode(&model.valid(), &info, &model_path).map_err(|e| match e {
                CheckpointError::NonFinite { count, .. } => Error::Diverged {
                    at: state.position(self.steps_per_epoch),
                    what: format!("{count} weights are NaN or infinite"),
                },
                e => e.into(),
            })?;
        checkpoint::save_optimizer(optim, &ckpt.join(&state.optimizer))?;
        write_atomic(&model_path, &bytes)?;
        if let Some(end) = &end {
            if end.keep {
                link_atomic(
                    &model_path,
                    &ckpt.join(format!("epoch-{}.bpk", state.epoch)),
                )?;
            }
            if end.best {
                link_atomic(&model_path, &ckpt.join("best.bpk"))?;
            }
            let panel = self
                .run
                .root()
                .join("samples")
                .join(format!("epoch-{}.png", state.epoch));
            save_png(&end.panel, &panel)?;
        }
        state::commit(&ckpt, state)?;
        self.derive(state)?;
        if let Some(previous) = previous {
            for name in [&previous.model, &previous.optimizer] {
                if name != &state.model && name != &state.optimizer {
                    std::fs::remove_file(ckpt.join(name)).ok();
                }
            }
        }
        self.prune(state.epoch)
    }

    /// Rewrites the files that derive from a committed state: `last.bpk`, `history.json`,
    /// `metrics.csv` and the curves.
    fn derive(&self, state: &RunState) -> Result<(), Error> {
        let ckpt = self.run.checkpoints();
        link_atomic(&ckpt.join(&state.model), &ckpt.join("last.bpk"))?;
        if !state.history.is_empty() {
            history::write(self.run.root(), &state.history)?;
        }
        Ok(())
    }

    /// Removes `epoch-N.bpk` files beyond the newest `train.keep_last`.
    fn prune(&self, epoch: usize) -> Result<(), Error> {
        let keep = self.config.train.keep_last;
        if keep == 0 {
            return Ok(());
        }
        let ckpt = self.run.checkpoints();
        for old in 1..=epoch.saturating_sub(keep) {
            let path: PathBuf = ckpt.join(format!("epoch-{old}.bpk"));
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(&path, e));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The run file's datasets, opened and checked before anything is written.
struct Splits {
    train: Arc<dyn ImageDataset>,
    val: Box<dyn ImageDataset>,
}

fn open_splits(config: &RunConfig) -> Result<Splits, Error> {
    let model = config.model_config()?;
    let family = model.family();
    let annotation = family.task().annotation();
    let classes = family.num_classes();
    let train = open(&config.data, annotation, false)?;
    let val = open(&config.data, annotation, true)?;
    for (split, data) in [("train", &train), ("val", &val)] {
        data.check_classes(classes)
            .map_err(|source| Error::Labels {
                split: split.into(),
                classes,
                source,
            })?;
    }
    Ok(Splits {
        train: Arc::from(train),
        val,
    })
}

/// An epoch's training batches, decoded and augmented on a thread of their own
/// `data.prefetch` batches ahead of the step that uses them (each batch on `data.workers`
/// threads); the same batches, in the same order, as decoding them in the loop.
struct Prefetch {
    batches: Option<Receiver<Result<Vec<Sample>, Error>>>,
    thread: Option<JoinHandle<()>>,
    /// `data.prefetch = 0`: decoded in the loop, from here.
    inline: std::vec::IntoIter<Vec<usize>>,
    data: Arc<dyn ImageDataset>,
    config: DataSection,
    seed: u64,
}

impl Prefetch {
    fn start(
        data: Arc<dyn ImageDataset>,
        chunks: Vec<Vec<usize>>,
        config: &DataSection,
        seed: u64,
    ) -> Self {
        let mut prefetch = Self {
            batches: None,
            thread: None,
            inline: Vec::new().into_iter(),
            data: data.clone(),
            config: config.clone(),
            seed,
        };
        if config.prefetch == 0 {
            prefetch.inline = chunks.into_iter();
            return prefetch;
        }
        let (send, receive) = sync_channel(config.prefetch);
        let config = config.clone();
        prefetch.thread = Some(std::thread::spawn(move || {
            for chunk in chunks {
                let batch = samples(
                    data.as_ref(),
                    &chunk,
                    Some((&config.augment, seed)),
                    &config,
                );
                let failed = batch.is_err();
                // A closed channel: the loop stopped early.
                if send.send(batch).is_err() || failed {
                    break;
                }
            }
        }));
        prefetch.batches = Some(receive);
        prefetch
    }

    /// The next batch.
    fn next(&mut self) -> Result<Vec<Sample>, Error> {
        if let Some(batches) = &self.batches {
            return batches.recv().expect("the loader sends one batch per step");
        }
        let chunk = self.inline.next().expect("one chunk per step");
        let augment = Some((&self.config.augment, self.seed));
        samples(self.data.as_ref(), &chunk, augment, &self.config)
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.batches = None; // unblocks the loader, which then ends
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

/// A task's complaint about sample `index` of a batch, naming the sample's file.
fn name_sample(e: TaskError, split: &str, data: &dyn ImageDataset, chunk: &[usize]) -> Error {
    match e {
        TaskError::Sample { index, message } if index < chunk.len() => Error::Sample {
            split: split.into(),
            sample: data.describe(chunk[index]),
            message,
        },
        e => e.into(),
    }
}

/// The squared gradient of each trainable parameter, summed into one scalar tensor.
struct GradSquares<'a> {
    grads: &'a GradientsParams,
    sum: Option<Tensor<1>>,
}

impl burn::module::ModuleVisitor for GradSquares<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let squares = g.square().sum();
            self.sum = Some(match self.sum.take() {
                Some(sum) => sum + squares,
                None => squares,
            });
        }
    }
}

/// The global L2 norm of `grads` over `model`'s parameters (before any clipping).
fn grad_norm(model: &ZooModel, grads: &GradientsParams) -> f64 {
    let mut visitor = GradSquares { grads, sum: None };
    model.visit(&mut visitor);
    visitor.sum.map_or(0.0, |s| s.into_scalar::<f64>().sqrt())
}

/// Reads every parameter once: Burn draws a parameter's initial value when it is first used
/// (lazily), so without this a fresh model's weights would come from whatever the device's
/// generator holds at the first forward pass and the order that pass uses them in. Drawn
/// here, right after seeding with `train.seed`, they are the same whatever runs next — one
/// device, or data-parallel replicas forked from this model.
struct Draw;

impl burn::module::ModuleVisitor for Draw {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        drop(param.val());
    }
}

/// `model` with every parameter drawn (see [`Draw`]).
fn drawn(model: ZooModel) -> ZooModel {
    model.visit(&mut Draw);
    model
}

/// Where a run starts: a fresh model or the last committed checkpoint of `out`.
fn resume(
    config: &RunConfig,
    run: &RunDir,
    state: RunState,
    device: &Device,
) -> Result<(ZooModel, ModuleOptimizer, RunState), Error> {
    let ckpt = run.checkpoints();
    let model_path = ckpt.join(&state.model);
    let info = checkpoint::read_info(&model_path)?;
    let mut same = info.config.clone();
    same.train.epochs = config.train.epochs;
    // The same global batches on other devices: the run goes on as it would have.
    same.train.devices = config.train.devices.clone();
    if &same != config {
        return Err(Error::ResumeChanged {
            run: run.root().to_path_buf(),
            resolved: run.root().join("config.toml"),
        });
    }
    let model =
        checkpoint::load_into(config.model_config()?.init(device), &model_path, &info.arch)?;
    let optim = checkpoint::load_optimizer(optimizer(config), &ckpt.join(&state.optimizer))?;
    Ok((model, optim, state))
}

/// Trains the run file's model on `device` (its `.autodiff()` for the updates), writing the
/// run directory `out` (see the module docs); `on_event` sees each step, epoch and
/// checkpoint as it happens.
///
/// Everything is checked before anything is written: the run file, the datasets and their
/// labels, the run directory (a fresh run refuses a non-empty one; a second writer is
/// refused while one holds the run's lock).
///
/// # Errors
/// Settings that do not fit, a sample that fails to load or has a class the model lacks
/// (naming its file), a run directory in use or not resumable, a diverged run (a non-finite
/// loss or weights: nothing non-finite is written), or a write failure in `out`.
pub fn train(
    config: &RunConfig,
    device: &Device,
    out: &Path,
    options: TrainOptions,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Outcome, Error> {
    let model_cfg = config.model_config()?;
    let family = model_cfg.family();
    let task = family.task();
    let preprocessing = family.preprocessing();
    let Splits {
        train: train_data,
        val: val_data,
    } = open_splits(config)?;
    let names = val_data.class_names();
    let t = &config.train;
    let steps_per_epoch = train_data.len().div_ceil(t.batch_size);
    let total = steps_per_epoch * t.epochs;
    if let Some(parallel) = &options.parallel {
        check_devices(parallel, device, t.batch_size)?;
    }

    // A fresh run's model, with its upstream weights, before anything is written.
    let ad = device.clone().autodiff();
    let fresh = match options.start {
        Start::Resume => None,
        _ => {
            ad.seed(t.seed);
            Some(initial_model(config, &ad)?).map(|(model, weights)| (drawn(model), weights))
        }
    };

    let run = RunDir::open(out, options.start)?;
    let ckpt = run.checkpoints();
    let committed = if options.start == Start::Resume {
        Some(state::read(&ckpt)?.ok_or_else(|| Error::NothingToResume {
            run: out.to_path_buf(),
        })?)
    } else {
        None
    };
    state::clean(&ckpt, committed.as_ref())?;
    state::clean(run.root(), None)?;
    state::clean(&run.root().join("samples"), None)?;
    let writer = Writer {
        run: &run,
        config,
        class_names: &names,
        steps_per_epoch,
    };
    let resumed = committed.as_ref().map(|s| s.position(steps_per_epoch));
    let mut loaded_weights = None;
    let (mut model, mut optim, mut current) = match committed {
        Some(state) => {
            let start = resume(config, &run, state, &ad)?;
            writer.derive(&start.2)?;
            start
        }
        None => {
            write_atomic(&out.join("config.toml"), config.to_toml().as_bytes())?;
            let (model, weights) = fresh.expect("a fresh run has its model");
            loaded_weights = weights.map(|w| (w.part, w.file, w.reinitialised));
            let (model_file, optim_file) = RunState::file_names(0);
            let fresh_state = RunState {
                epoch: 0,
                batch: 0,
                step: 0,
                loss_sum_bits: 0f64.to_bits(),
                seconds: 0.0,
                model: model_file,
                optimizer: optim_file,
                best_epoch: None,
                history: Vec::new(),
                skipped: 0,
            };
            (model, optimizer(config), fresh_state)
        }
    };
    // Replica 0 is the loop's model; the others start on their devices and threads.
    let mut replicas = match &options.parallel {
        Some(parallel) => {
            let (replicas, first) =
                Replicas::start(model, &optim, parallel, preprocessing, family.num_classes())?;
            model = first;
            Some(replicas)
        }
        None => None,
    };
    let mut step_log = StepLog::open(
        run.root(),
        (options.start == Start::Resume).then_some(current.step),
    )?;
    on_event(Event::Start {
        resumed,
        steps_per_epoch,
        total_steps: total,
        step: current.step,
    });
    if let Some((part, file, reinitialised)) = &loaded_weights {
        on_event(Event::Weights {
            part,
            file,
            reinitialised,
        });
    }
    let training = Context {
        device: &ad,
        preprocessing: &preprocessing,
        num_classes: family.num_classes(),
    };
    let inference = Context { device, ..training };
    let shown_names = class_names(val_data.as_ref(), family.num_classes());
    let shown: Vec<usize> = (0..val_data.len().min(4)).collect();
    let interrupted = || {
        options
            .interrupt
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::SeqCst))
    };
    let mut committed_state: Option<RunState> =
        (current.step > 0 || current.epoch > 0).then(|| current.clone());
    for epoch in current.epoch + 1..=t.epochs {
        let seed = epoch_seed(t.seed, epoch);
        let order = epoch_order(train_data.len(), seed, epoch, config.data.fresh_samples);
        let chunks: Vec<&[usize]> = order.chunks(t.batch_size).collect();
        let mut loss_sum = f64::from_bits(current.loss_sum_bits);
        let mut seconds = current.seconds;
        let mut lr = t.lr;
        let mut loader = Prefetch::start(
            train_data.clone(),
            chunks[current.batch..].iter().map(|c| c.to_vec()).collect(),
            &config.data,
            seed,
        );
        for (b, chunk) in chunks.iter().enumerate().skip(current.batch) {
            let started = Instant::now();
            let batch = loader.next()?;
            let data_wait_seconds = started.elapsed().as_secs_f64();
            let loss_options = LossOptions {
                aux_weight: t.aux_weight,
                seed: seed ^ ((current.step as u64) << 20),
            };
            let named = |e| name_sample(e, "train", train_data.as_ref(), chunk);
            // One device: the batch's loss to backpropagate. Several: each replica holds its
            // own, and the loop gets the batch's value.
            let (loss, value, terms) = match replicas.as_mut() {
                None => {
                    ad.seed(step_seed(seed, b));
                    let zoo_models::family::Loss { total: loss, terms } = model
                        .family()
                        .loss_terms(&batch, &training, &loss_options)
                        .map_err(named)?;
                    let value = loss.clone().into_scalar::<f64>();
                    let terms: Vec<(&'static str, f64)> = terms
                        .into_iter()
                        .map(|(name, term)| (name, term.into_scalar::<f64>()))
                        .collect();
                    (Some(loss), value, terms)
                }
                Some(replicas) => {
                    let loss = replicas
                        .forward(&model, &batch, step_seed(seed, b), &loss_options)
                        .map_err(|e| match e {
                            Error::Batch(e) => named(e),
                            e => e,
                        })?;
                    (None, loss.total, loss.terms)
                }
            };
            lr = learning_rate(config, current.step, total);
            let skipped = !value.is_finite();
            let mut norm = f64::NAN;
            let mut sync_seconds = 0.0;
            if skipped {
                if let Some(replicas) = replicas.as_mut() {
                    replicas.skip()?;
                }
                if t.nonfinite == NonFinite::Stop {
                    return Err(Error::Diverged {
                        at: format!(
                            "epoch {epoch}, batch {} of {} (step {})",
                            b + 1,
                            chunks.len(),
                            current.step + 1
                        ),
                        what: format!("the loss is {value}"),
                    });
                }
                current.skipped += 1;
            } else {
                loss_sum += value;
                match (loss, replicas.as_mut()) {
                    (Some(loss), _) => {
                        let grads = GradientsParams::from_grads(loss.backward(), &model);
                        norm = grad_norm(&model, &grads);
                        model = optim.step(lr, model, grads);
                    }
                    (None, Some(replicas)) => {
                        let update = replicas.update(model, &mut optim, lr, grad_norm)?;
                        (model, norm, sync_seconds) =
                            (update.model, update.grad_norm, update.sync_seconds);
                    }
                    (None, None) => unreachable!("one device has the batch's loss"),
                }
            }
            current.step += 1;
            current.batch = b + 1;
            seconds += started.elapsed().as_secs_f64();
            let report = StepReport {
                epoch,
                batch: b + 1,
                batches: chunks.len(),
                step: current.step,
                loss: value,
                lr,
                grad_norm: norm,
                terms,
                images: chunk.len(),
                seconds: started.elapsed().as_secs_f64(),
                data_wait_seconds,
                skipped,
                sync_seconds,
            };
            step_log.log(&report)?;
            on_event(Event::Step(&report));
            let last_batch = b + 1 == chunks.len();
            let stop = interrupted() || options.stop_after == Some(StopAt::Step(current.step));
            let every = t.checkpoint_every_steps;
            if !last_batch && (stop || (every > 0 && current.step % every == 0)) {
                current.loss_sum_bits = loss_sum.to_bits();
                current.seconds = seconds;
                (current.model, current.optimizer) = RunState::file_names(current.step);
                step_log.flush()?;
                writer.commit(&model, &optim, &current, None, committed_state.as_ref())?;
                let position = current.position(steps_per_epoch);
                on_event(Event::Checkpoint(&position));
                committed_state = Some(current.clone());
                if stop {
                    return Ok(Outcome {
                        best_epoch: current.best_epoch,
                        history: current.history,
                        stopped: Some(position),
                    });
                }
            }
        }
        drop(loader);
        on_event(Event::Validating { epoch });
        let started = Instant::now();
        let valid = model.valid();
        let val = evaluate(&valid, config, val_data.as_ref(), device)?;
        let counted = steps_per_epoch - current.skipped;
        let report = EpochReport {
            epoch,
            train_loss: if counted == 0 {
                f64::NAN
            } else {
                loss_sum / counted as f64
            },
            val,
            lr,
            seconds: seconds + started.elapsed().as_secs_f64(),
        };
        let best_so_far = current
            .best_epoch
            .and_then(|e| current.history.get(e - 1))
            .map_or(f64::NEG_INFINITY, |r| r.val.primary());
        let best = report.val.primary() > best_so_far;
        let shown = samples(val_data.as_ref(), &shown, None, &config.data)?;
        let end = EpochEnd {
            panel: sample_panels(&valid, &shown, task, &inference, &shown_names)?,
            keep: epoch % t.checkpoint_every == 0 || epoch == t.epochs,
            best,
        };
        current.history.push(report);
        (current.model, current.optimizer) = RunState::file_names(current.step);
        current.epoch = epoch;
        current.batch = 0;
        current.skipped = 0;
        current.loss_sum_bits = 0f64.to_bits();
        current.seconds = 0.0;
        if best {
            current.best_epoch = Some(epoch);
        }
        step_log.flush()?;
        writer.commit(
            &model,
            &optim,
            &current,
            Some(end),
            committed_state.as_ref(),
        )?;
        committed_state = Some(current.clone());
        on_event(Event::Epoch(current.history.last().expect("pushed above")));
        let position = current.position(steps_per_epoch);
        on_event(Event::Checkpoint(&position));
        let stop = interrupted()
            || options.stop_after == Some(StopAt::Epoch(epoch))
            || options.stop_after == Some(StopAt::Step(current.step));
        if stop && epoch < t.epochs {
            return Ok(Outcome {
                best_epoch: current.best_epoch,
                history: current.history,
                stopped: Some(position),
            });
        }
    }
    Ok(Outcome {
        best_epoch: current.best_epoch,
        history: current.history,
        stopped: None,
    })
}

/// Data-parallel devices `train` can use: at least two, the first being the run's device,
/// no more than the images of a batch, each once for the collective mode.
fn check_devices(
    parallel: &DataParallel,
    device: &Device,
    batch_size: usize,
) -> Result<(), DevicesError> {
    let devices = parallel.devices.len();
    if devices < 2 {
        return Err(DevicesError::TooFew { given: devices });
    }
    if devices > batch_size {
        return Err(DevicesError::MoreThanBatch {
            devices,
            batch_size,
        });
    }
    if parallel.mode == SyncMode::Collective
        && let Some(d) = parallel
            .devices
            .iter()
            .enumerate()
            .find_map(|(i, d)| parallel.devices[..i].contains(d).then_some(d))
    {
        return Err(DevicesError::SharedInCollective {
            device: format!("{d:?}"),
        });
    }
    if &parallel.devices[0] != device {
        return Err(DevicesError::FirstDevice {
            first: format!("{:?}", parallel.devices[0]),
            device: format!("{device:?}"),
        });
    }
    Ok(())
}

/// Upstream weights loaded into a fresh model ([`initial_model`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedWeights {
    /// What was loaded: `"backbone"` (`model.backbone_weights` alone) or `"model"`.
    pub part: &'static str,
    /// The file.
    pub file: PathBuf,
    /// `path (file shape → model shape)` of each tensor left as initialised (the classifier,
    /// for another class count).
    pub reinitialised: Vec<String>,
}

/// The run file's model on `device`, initialised from the device's generator, then
/// `model.backbone_weights` loaded into its backbone and `model.weights` into all of it (a
/// classifier of another class count keeps its initialisation); what was loaded.
///
/// # Errors
/// A model the run file cannot build, weights that cannot be found, downloaded or read, or
/// that do not fit (every mismatched tensor named).
pub fn initial_model(
    config: &RunConfig,
    device: &Device,
) -> Result<(ZooModel, Option<LoadedWeights>), Error> {
    let model_cfg = config.model_config()?;
    let mut model = model_cfg.init(device);
    let backbone = config.model.backbone_weights_file()?;
    if let Some(file) = &backbone {
        model = model
            .load_backbone(file)
            .map_err(|source| Error::Backbone {
                file: file.clone(),
                source,
            })?;
    }
    Ok(match config.model.weights_file()? {
        None => (
            model,
            backbone.map(|file| LoadedWeights {
                part: "backbone",
                file,
                reinitialised: Vec::new(),
            }),
        ),
        Some(file) => {
            let map = model.key_map();
            let (model, reinitialised) = zoo_models::weights::load_upstream_reclassed(
                model,
                &file,
                &map,
                model_cfg.family().num_classes(),
            )?;
            (
                model,
                Some(LoadedWeights {
                    part: "model",
                    file,
                    reinitialised,
                }),
            )
        }
    })
}

/// The dataset a run file validates on (for `zoo eval`): its validation split, with the
/// ground truth its model's task needs.
///
/// # Errors
/// See [`train`].
pub fn validation_data(config: &RunConfig) -> Result<Box<dyn ImageDataset>, Error> {
    let annotation = config.model_config()?.family().task().annotation();
    open(&config.data, annotation, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zoo_eval::EvalReport;

    fn tiny(extra: &[&str]) -> RunConfig {
        let text = "[model]\nname = \"unet_resnet18\"\nnum_classes = 5\nbase_channels = 4\n\
                    decoder_channels = [16, 8, 8, 8, 8]\n\
                    [data]\nimage_size = [32, 32]\ntrain_len = 16\nval_len = 8\n\
                    [train]\nepochs = 2\nbatch_size = 8\nlr = 0.05\n";
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        RunConfig::parse(text, Path::new("tiny.toml"), &extra).unwrap()
    }

    /// Burn's random generator is one per device (weights init draws from it after
    /// `Device::seed`), so runs that must repeat exactly do not overlap in this process.
    static DEVICE_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("zoo-train-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        dir
    }

    /// A validation image whose evaluated size the model does not take (U-Net: multiples of
    /// 32) is an error naming the sample and the `[eval]` keys, not a panic.
    #[test]
    fn an_evaluated_size_the_model_refuses_names_the_sample() {
        let config = tiny(&["eval.resize=shorter_side", "eval.size=40"]);
        let model = config.model_config().unwrap().init(&Device::flex());
        let data = validation_data(&config).unwrap();
        let e = evaluate(&model, &config, data.as_ref(), &Device::flex())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sample 0") && e.contains("multiples of 32") && e.contains("eval.resize"),
            "{e}"
        );
        // At a size it takes, the same protocol evaluates.
        let config = tiny(&["eval.resize=shorter_side", "eval.size=64"]);
        let report = evaluate(&model, &config, data.as_ref(), &Device::flex()).unwrap();
        assert_eq!(report.samples, 8);
    }

    #[test]
    fn a_short_run_writes_its_directory_and_learns() {
        let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let out = temp("run");
        let outcome = train(
            &tiny(&[]),
            &Device::flex(),
            &out,
            TrainOptions::default(),
            |_| {},
        )
        .unwrap();
        assert_eq!(outcome.stopped, None);
        let reports = outcome.history;
        assert_eq!(reports.len(), 2);
        assert!(
            reports
                .iter()
                .all(|r| r.train_loss.is_finite() && (0.0..=1.0).contains(&r.val.miou.unwrap()))
        );
        assert!(reports[1].train_loss < reports[0].train_loss, "{reports:?}");
        let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 3);
        assert!(
            csv.lines().next().unwrap().ends_with(",val_iou_ellipse"),
            "{csv}"
        );
        assert!(csv.lines().all(|l| l.split(',').count() == 14), "{csv}");
        for f in [
            "config.toml",
            "loss.png",
            "metrics.png",
            "samples/epoch-2.png",
            "checkpoints/epoch-2.bpk",
            "checkpoints/best.bpk",
            "checkpoints/last.bpk",
            "checkpoints/step-4.bpk",
            "checkpoints/step-4.optim.bpk",
            "checkpoints/state.json",
        ] {
            assert!(out.join(f).exists(), "{f}");
        }
        // The previous checkpoint's own files are gone; best.bpk is the epoch it says.
        assert!(!out.join("checkpoints/step-2.bpk").exists());
        let best = checkpoint::read_info(&out.join("checkpoints/best.bpk")).unwrap();
        assert_eq!(Some(best.epoch), outcome.best_epoch);
        let resolved = RunConfig::load(out.join("config.toml"), &[]).unwrap();
        assert_eq!(resolved, tiny(&[]));
        // The checkpoint alone rebuilds the model, which gives the run's figures again.
        let (info, task, again) = reevaluate(&out);
        assert_eq!(
            (info.epoch, info.step, info.arch.as_str(), task),
            (2, 4, "unet_resnet18", "semantic segmentation")
        );
        assert_eq!(again, reports[1].val);
        std::fs::remove_dir_all(out).ok();
    }

    /// The run's `last.bpk` loaded on its own and evaluated on the run's validation split;
    /// with the name of its task.
    fn reevaluate(out: &Path) -> (CheckpointInfo, &'static str, EvalReport) {
        let device = Device::flex();
        let (model, info) = checkpoint::load(&out.join("checkpoints/last.bpk"), &device).unwrap();
        let val = validation_data(&info.config).unwrap();
        let task = info.config.model_config().unwrap().family().task().name();
        let report = evaluate(&model, &info.config, val.as_ref(), &device).unwrap();
        (info, task, report)
    }

    #[test]
    fn an_instance_run_trains_and_reports_coco_ap() {
        let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let out = temp("instance");
        let text = "[model]\nname = \"maskrcnn_resnet50_fpn\"\nnum_classes = 5\n\
                    base_channels = 4\nhead_channels = 8\n\
                    [data]\nimage_size = [48, 48]\ntrain_len = 8\nval_len = 4\n\
                    objects = [1, 2]\n\
                    [train]\nepochs = 2\nbatch_size = 4\nlr = 0.001\noptimizer = \"adamw\"\n";
        let config = RunConfig::parse(text, Path::new("instance.toml"), &[]).unwrap();
        let reports = train(
            &config,
            &Device::flex(),
            &out,
            TrainOptions::default(),
            |_| {},
        )
        .unwrap()
        .history;
        assert_eq!(reports.len(), 2);
        for r in &reports {
            assert!(r.train_loss.is_finite(), "{r:?}");
            let [ap, ap50, ap75] = r.val.mask_ap.expect("mask AP");
            assert!(
                [ap, ap50, ap75].iter().all(|v| (0.0..=1.0).contains(v)),
                "{r:?}"
            );
            assert!(r.val.box_ap.is_some() && r.val.miou.is_none(), "{r:?}");
            assert_eq!(r.val.per_class.len(), 5);
        }
        assert!(reports[1].train_loss < reports[0].train_loss, "{reports:?}");
        let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
        assert!(
            csv.lines()
                .next()
                .unwrap()
                .ends_with(",val_mask_ap_ellipse"),
            "{csv}"
        );
        assert!(out.join("samples/epoch-2.png").exists());
        // steps.csv: one row per step with the five loss terms, which sum to the loss.
        let steps = std::fs::read_to_string(out.join("steps.csv")).unwrap();
        assert_eq!(steps.lines().count(), 1 + 4, "{steps}");
        for row in steps.lines().skip(1) {
            let cols: Vec<&str> = row.split(',').collect();
            let terms: Vec<f64> = cols[10]
                .split(';')
                .map(|t| t.split_once('=').unwrap().1.parse().unwrap())
                .collect();
            assert!(
                cols[10].starts_with("loss_objectness=") && terms.len() == 5,
                "{row}"
            );
            let loss: f64 = cols[3].parse().unwrap();
            assert!(
                (terms.iter().sum::<f64>() - loss).abs() < 1e-4 * loss.max(1.0),
                "{row}"
            );
            assert!(cols[5].parse::<f64>().unwrap() > 0.0, "grad norm: {row}");
        }
        // predict: detections in the image's own pixels, gathered as COCO results.
        let image = out.join("photo.png");
        image::RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 8) as u8, 90])
        })
        .save(&image)
        .unwrap();
        let device = Device::flex();
        let (model, info) = checkpoint::load(&out.join("checkpoints/last.bpk"), &device).unwrap();
        let shown = out.join("predicted");
        let found = crate::predict::predict(&model, &info, &[image], &shown, &device).unwrap();
        let found = found[0].as_ref().unwrap();
        let results: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(shown.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(results.len(), found.detections.len());
        assert!(!results.is_empty());
        for r in &results {
            assert_eq!(
                r["segmentation"]["size"],
                serde_json::json!([30, 40]),
                "{r}"
            );
            let counts: u64 = r["segmentation"]["counts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_u64().unwrap())
                .sum();
            assert_eq!(counts, 30 * 40, "{r}");
            let b: Vec<f64> = r["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert!(
                b[0] >= -1e-3 && b[1] >= -1e-3 && b[0] + b[2] <= 40.001 && b[1] + b[3] <= 30.001,
                "{r}"
            );
        }
        let table = reports[1].val.table();
        assert!(
            table.contains("mask AP50") && table.contains("box AP"),
            "{table}"
        );
        // The checkpoint alone rebuilds the model, which gives the run's figures again.
        let (_, task, again) = reevaluate(&out);
        assert_eq!(task, "instance segmentation");
        assert_eq!(again, reports[1].val);
        std::fs::remove_dir_all(out).ok();
    }

    fn same_tensors(a: &Path, b: &Path, label: &str) {
        let (a, b) = (
            checkpoint::tensors(&a.join("checkpoints/last.bpk")).unwrap(),
            checkpoint::tensors(&b.join("checkpoints/last.bpk")).unwrap(),
        );
        assert_eq!(a.len(), b.len());
        let differ: Vec<&str> = a
            .iter()
            .zip(&b)
            .filter(|((_, da), (_, db))| da != db)
            .map(|((na, _), _)| na.as_str())
            .collect();
        assert!(
            differ.is_empty(),
            "{label}: {differ:?} differ after resuming"
        );
    }

    #[test]
    fn resume_reaches_the_same_weights_from_an_epoch_end_or_mid_epoch() {
        let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        // AdamW + cosine with warmup, random resize/crop/flip: every piece of state counts.
        let config = tiny(&[
            "train.optimizer=adamw",
            "train.lr=0.01",
            "train.schedule=cosine",
            "train.warmup_steps=2",
            "data.augment.scale=[0.8, 1.25]",
            "data.augment.crop=[32, 32]",
            "data.augment.brightness=0.2",
            "train.batch_size=4",
        ]);
        let straight = temp("straight");
        let full = train(
            &config,
            &Device::flex(),
            &straight,
            TrainOptions::default(),
            |_| {},
        )
        .unwrap()
        .history;
        let resumed = TrainOptions {
            start: Start::Resume,
            ..TrainOptions::default()
        };
        // Stopped after epoch 1, and after step 6 (epoch 2, batch 2 of 4).
        for (name, stop, at) in [
            ("split-epoch", StopAt::Epoch(1), "epoch 1 complete (step 4)"),
            (
                "split-step",
                StopAt::Step(6),
                "epoch 2, batch 2 of 4 (step 6)",
            ),
        ] {
            let split = temp(name);
            let first = TrainOptions {
                stop_after: Some(stop),
                ..TrainOptions::default()
            };
            let stopped = train(&config, &Device::flex(), &split, first, |_| {}).unwrap();
            assert_eq!(stopped.stopped.as_deref(), Some(at));
            assert_eq!(stopped.history.len(), 1);
            let mut said = None;
            let rest = train(&config, &Device::flex(), &split, resumed.clone(), |e| {
                if let Event::Start { resumed, .. } = e {
                    said = resumed;
                }
            })
            .unwrap();
            assert_eq!(said.as_deref(), Some(at));
            assert_eq!(
                rest.history.len(),
                2,
                "the history includes the epochs before"
            );
            same_tensors(&straight, &split, name);
            assert_eq!(full[1].train_loss, rest.history[1].train_loss);
            assert_eq!(full[1].val, rest.history[1].val);
            std::fs::remove_dir_all(&split).ok();
        }
        // A changed run file is refused, naming what may change.
        let other = tiny(&["train.lr=0.02", "train.batch_size=4"]);
        let e = train(&other, &Device::flex(), &straight, resumed, |_| {}).unwrap_err();
        assert!(e.to_string().contains("train.epochs"), "{e}");
        std::fs::remove_dir_all(straight).ok();
    }

    #[test]
    fn a_diverged_run_stops_naming_the_step_and_writes_nothing_non_finite() {
        let _rng = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let out = temp("diverged");
        let config = tiny(&["train.lr=1e12", "train.epochs=3"]);
        let e = train(
            &config,
            &Device::flex(),
            &out,
            TrainOptions::default(),
            |_| {},
        )
        .unwrap_err();
        assert!(matches!(e, Error::Diverged { .. }), "{e}");
        assert!(e.to_string().contains("step"), "{e}");
        // Whatever was committed before is finite and loads.
        for f in ["last.bpk", "best.bpk"] {
            let path = out.join("checkpoints").join(f);
            if path.exists() {
                checkpoint::load(&path, &Device::flex()).unwrap();
            }
        }
        // Skipping such steps instead: the run ends, or stops once the weights themselves
        // are non-finite, never with a NaN written.
        let skip = tiny(&["train.lr=1e12", "train.nonfinite=skip"]);
        let started = TrainOptions {
            start: Start::Force,
            ..TrainOptions::default()
        };
        match train(&skip, &Device::flex(), &out, started, |_| {}) {
            Ok(o) => assert!(o.history.iter().all(|r| r.val.primary().is_finite())),
            Err(e) => assert!(matches!(e, Error::Diverged { .. }), "{e}"),
        }
        std::fs::remove_dir_all(out).ok();
    }
}
