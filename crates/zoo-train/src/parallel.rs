//! Data-parallel training on several devices, through Burn 0.22's own machinery: one model
//! replica per device, each fed its shard of every global batch, gradients combined, the
//! same optimiser step on every replica.
//!
//! The data order does not change with the device count: global batch `k` of an epoch is
//! the same chunk of the seeded order as on one device, and replica `g` of `W` takes its
//! contiguous slice `[⌊g·n/W⌋, ⌊(g+1)·n/W⌋)` ([`shard_ranges`]). Each replica's loss is
//! weighted by its share of what the family's loss averages over
//! ([`Family::loss_count`](zoo_models::family::Family::loss_count): images, or the pixels
//! that are not ignored) and the weighted gradients are **summed**, which is the gradient of
//! the global batch's loss. How they are summed is the [`SyncMode`]:
//!
//! - [`SyncMode::Collective`]: Burn's distributed engine (`burn::tensor::distributed`).
//!   [`DistributedContext::init`] starts the sync server for the devices, every trainable
//!   parameter of every replica is marked with `Tensor::set_distributed(param_id)`, and
//!   `backward()` all-reduces (`ReduceOperation::Sum`) each parameter's gradient as soon as it
//!   is complete, in place, before it returns; every replica then steps its own optimiser on
//!   the same gradients, as burn-train's DDP strategy does. Burn 0.22.1 has a device transport
//!   for CUDA only (NCCL): use it when every device is a CUDA device. `backward()` is a
//!   rendezvous of the replicas, so each lives on a thread of its own for the whole run.
//! - [`SyncMode::Gather`]: burn-train's multi-device strategy, without collectives. Each
//!   replica backpropagates its shard, its gradients are moved to the first device
//!   (`GradientsParams::to_device`) and summed there (`GradientsAccumulator`), one optimiser
//!   steps the first replica, and its weights are sent back to the others (`Module::fork`).
//!   It runs on any backend, several replicas on one device included (what a CPU-only test
//!   can run: no CPU backend of Burn 0.22.1 has a collective all-reduce, see
//!   `docs/scaling.md`).
//!
//! Replica 0 is the training loop's own model, on its thread and its device: checkpoints,
//! validation and logging use it. Replicas `1..W` run on threads of their own for the whole
//! run. BatchNorm normalises each replica's shard by the shard's statistics (Burn has no
//! synchronised BatchNorm); replicas forked from one model share each running statistic,
//! which Burn's `RunningState` folds into the mean of the replicas' updates.
//!
//! Determinism: the replicas' forward passes are issued in replica order, each after seeding
//! its device ([`replica_seed`]), so random draws (dropout, drop-path) come in the same order
//! in every run (Burn's generators are per backend, not per device); the backward passes run
//! in parallel. A resumed data-parallel run repeats the uninterrupted one exactly.

use std::ops::Range;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Instant;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::distributed::{DistributedConfig, DistributedContext, ReduceOperation};
use zoo_data::Sample;
use zoo_models::registry::ZooModel;
use zoo_models::task::{Context, LossOptions, Preprocessing, TaskError};

use crate::Error;

/// How the replicas' gradients are summed (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Burn's all-reduce inside `backward()` (`DistributedContext`); CUDA devices only in Burn
    /// 0.22.1.
    Collective,
    /// Gradients moved to the first device and summed there; any backend.
    Gather,
}

impl SyncMode {
    /// `"collective"` or `"gather"`.
    pub fn name(self) -> &'static str {
        match self {
            SyncMode::Collective => "collective",
            SyncMode::Gather => "gather",
        }
    }
}

/// Data-parallel training: the devices (one replica each, the first being the one `train`
/// is given) and how their gradients are summed.
#[derive(Debug, Clone)]
pub struct DataParallel {
    /// One replica per device (without `.autodiff()`; `train` adds it). In the gather mode
    /// several entries may be the same device (replicas sharing it: no speed-up, for tests
    /// and measurements).
    pub devices: Vec<Device>,
    /// How gradients are summed.
    pub mode: SyncMode,
}

/// Why a list of devices cannot be trained on.
#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    /// Several devices asked of a backend that has one.
    #[error(
        "{arg}: {backend} has one device (index 0), got {given:?}; several devices need a backend with several (--backend cuda, or wgpu on a machine with several GPUs)"
    )]
    OneDevice {
        /// The argument or key (`--devices`, `train.devices`).
        arg: &'static str,
        /// The backend.
        backend: &'static str,
        /// The indices given.
        given: Vec<usize>,
    },
    /// An index past the backend's devices.
    #[error("{arg}: no device {index} on {backend}, which has {available} (indices 0 to {})", available.saturating_sub(1))]
    NoSuchDevice {
        /// The argument or key.
        arg: &'static str,
        /// The backend.
        backend: &'static str,
        /// The index asked for.
        index: usize,
        /// Devices the backend has.
        available: usize,
    },
    /// Data-parallel training on fewer than two devices.
    #[error("data-parallel training needs at least two devices, got {given}")]
    TooFew {
        /// Devices given.
        given: usize,
    },
    /// More devices than images in a batch.
    #[error(
        "train.batch_size: {batch_size} images cannot be shared by {devices} devices (each device needs at least one image of a batch); raise train.batch_size or use fewer devices"
    )]
    MoreThanBatch {
        /// Devices given.
        devices: usize,
        /// The batch size.
        batch_size: usize,
    },
    /// A device listed twice for the collective mode (each replica needs a device of its
    /// own for Burn's all-reduce; the gather mode allows replicas to share one).
    #[error("the collective all-reduce needs distinct devices, got {device} twice")]
    SharedInCollective {
        /// The device.
        device: String,
    },
    /// Burn refused to start its collective engine on these devices (in Burn 0.22.1 only
    /// CUDA devices have one).
    #[error(
        "the collective all-reduce is not available on these devices: {message} (Burn 0.22.1 runs it on CUDA devices only; use the gather mode elsewhere)"
    )]
    NoCollective {
        /// Burn's message.
        message: String,
    },
    /// The first device is not the one the run trains and validates on.
    #[error("the first data-parallel device ({first}) must be the run's device ({device})")]
    FirstDevice {
        /// The first of the devices.
        first: String,
        /// The run's device.
        device: String,
    },
}

/// Replica `g`'s part of a batch of `n` samples shared by `w` replicas:
/// `[⌊g·n/w⌋, ⌊(g+1)·n/w⌋)`, contiguous, in order, sizes differing by at most one (empty
/// ones when `n < w`).
pub fn shard_ranges(n: usize, w: usize) -> Vec<Range<usize>> {
    (0..w).map(|g| g * n / w..(g + 1) * n / w).collect()
}

/// The seed of replica `rank`'s device for a step whose single-device seed is `seed`:
/// `seed` itself for replica 0.
pub fn replica_seed(seed: u64, rank: usize) -> u64 {
    seed ^ (rank as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Marks every trainable float parameter for Burn's gradient all-reduce with its own
/// `ParamId` (the same on every replica: they are forks of one model). burn-train's
/// `ModuleSharder`, leaving frozen parameters and running statistics alone.
struct MarkDistributed;

impl ModuleMapper for MarkDistributed {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let tensor = if tensor.is_require_grad() {
            tensor.set_distributed(id)
        } else {
            tensor
        };
        Param::from_mapped_value(id, tensor, mapper)
    }
}

/// `0 · Σ sum(θ)` over every trainable parameter: added to a Collective replica's loss so
/// that every parameter is in every replica's graph (Burn's sync server reduces a parameter
/// over the replicas whose graph holds it; one that only some replicas used, such as a
/// detection head without positives, would hang the all-reduce). Its gradient is exactly 0.
struct Touch {
    sum: Option<Tensor<1>>,
}

impl ModuleVisitor for Touch {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        if value.is_require_grad() {
            let term = value.sum();
            self.sum = Some(match self.sum.take() {
                Some(sum) => sum + term,
                None => term,
            });
        }
    }
}

/// A replica's share of a step.
struct Work {
    shard: Vec<Sample>,
    /// Position of the shard's first sample in the batch (for errors naming a sample).
    offset: usize,
    weight: f64,
    seed: u64,
    options: LossOptions,
}

/// The host values of a (weighted) loss.
#[derive(Debug, Clone, Default)]
struct Values {
    total: f64,
    terms: Vec<(&'static str, f64)>,
}

enum Command {
    Forward(Work),
    Backward { lr: f64 },
    Skip,
    Weights(Box<ZooModel>),
    Stop,
}

enum Reply {
    /// The forward pass is issued (its random draws are done).
    Issued,
    Loss(Result<Values, TaskError>),
    /// Gather: the replica's gradients, on its device.
    Grads(GradientsParams),
    /// Collective: the replica stepped its optimiser.
    Stepped,
}

/// What a replica needs besides its model.
#[derive(Clone)]
struct Setup {
    device: Device,
    preprocessing: Preprocessing,
    num_classes: usize,
    /// Collective: add [`Touch`] to the loss.
    touch: bool,
}

/// Replica `model`'s weighted loss on `work`, issued but not read back (the device may still
/// be computing it), with errors naming the sample by its place in the whole batch.
fn shard_loss(model: &ZooModel, work: &Work, setup: &Setup) -> Result<Issued, TaskError> {
    setup.device.seed(work.seed);
    let context = Context {
        device: &setup.device,
        preprocessing: &setup.preprocessing,
        num_classes: setup.num_classes,
    };
    let loss = model
        .family()
        .loss_terms(&work.shard, &context, &work.options)
        .map_err(|e| match e {
            TaskError::Sample { index, message } => TaskError::Sample {
                index: index + work.offset,
                message,
            },
            TaskError::Size { index, size, first } => TaskError::Size {
                index: index + work.offset,
                size,
                first,
            },
            e => e,
        })?;
    let mut total = loss.total.mul_scalar(work.weight);
    if setup.touch {
        let mut touch = Touch { sum: None };
        model.visit(&mut touch);
        if let Some(sum) = touch.sum {
            total = total + sum.mul_scalar(0.0);
        }
    }
    Ok(Issued {
        total,
        terms: loss.terms,
        weight: work.weight,
    })
}

/// A replica's weighted loss, issued.
struct Issued {
    /// What it backpropagates.
    total: Tensor<1>,
    /// The loss's terms, unweighted.
    terms: Vec<(&'static str, Tensor<1>)>,
    weight: f64,
}

impl Issued {
    /// The loss to backpropagate, and its values read back from the device.
    fn read(self) -> (Tensor<1>, Values) {
        let values = Values {
            total: self.total.clone().into_scalar::<f64>(),
            terms: self
                .terms
                .into_iter()
                .map(|(name, t)| (name, t.into_scalar::<f64>() * self.weight))
                .collect(),
        };
        (self.total, values)
    }
}

/// Replica `1..W`'s thread: forward on command, then backward (and, Collective, its own
/// optimiser step) or skip, for the whole run.
fn replica_loop(
    mut model: ZooModel,
    mut optim: Option<ModuleOptimizer>,
    setup: Setup,
    commands: Receiver<Command>,
    replies: Sender<Reply>,
) {
    let mut pending: Option<Tensor<1>> = None;
    while let Ok(command) = commands.recv() {
        let reply = match command {
            Command::Forward(work) => {
                let loss = shard_loss(&model, &work, &setup);
                if replies.send(Reply::Issued).is_err() {
                    return;
                }
                Reply::Loss(loss.map(|issued| {
                    let (loss, values) = issued.read();
                    pending = Some(loss);
                    values
                }))
            }
            Command::Backward { lr } => {
                let loss = pending.take().expect("a forward pass before each backward");
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                match optim.as_mut() {
                    Some(optim) => {
                        model = optim.step(lr, model, grads);
                        Reply::Stepped
                    }
                    None => Reply::Grads(grads),
                }
            }
            Command::Skip => {
                pending = None;
                continue;
            }
            Command::Weights(weights) => {
                model = *weights;
                continue;
            }
            Command::Stop => return,
        };
        if replies.send(reply).is_err() {
            return;
        }
    }
}

struct Worker {
    device: Device,
    commands: Sender<Command>,
    replies: Receiver<Reply>,
    thread: Option<JoinHandle<()>>,
    /// Whether the replica has a shard this step (Gather leaves a replica without images
    /// idle).
    active: bool,
}

/// The replicas of a data-parallel run (replica 0 being the loop's model, on the loop's
/// thread). Dropping it stops the replica threads, then Burn's sync server.
pub(crate) struct Replicas {
    mode: SyncMode,
    first: Setup,
    workers: Vec<Worker>,
    /// Replica 0's weighted loss, between [`Replicas::forward`] and the update or skip.
    pending: Option<Tensor<1>>,
    /// Collective: Burn's sync server, alive while the replicas are (dropped after them).
    _context: Option<DistributedContext>,
}

/// A data-parallel step's loss: the weighted sum of the replicas', i.e. the global batch's.
pub(crate) struct StepLoss {
    pub total: f64,
    pub terms: Vec<(&'static str, f64)>,
}

/// The outcome of a data-parallel update.
pub(crate) struct Update {
    pub model: ZooModel,
    /// The global L2 norm of the summed gradients, before clipping.
    pub grad_norm: f64,
    /// Seconds spent combining gradients outside the backward passes (see
    /// [`crate::train::StepReport::sync_seconds`]).
    pub sync_seconds: f64,
}

impl Replicas {
    /// Forks `model` (on `parallel.devices[0].autodiff()`, the loop's device) to every other
    /// device and starts one thread per replica; returns the loop's replica 0 (Collective:
    /// marked for the all-reduce). `optim` is the loop's optimiser (fresh or resumed), which
    /// each Collective replica copies.
    pub(crate) fn start(
        model: ZooModel,
        optim: &ModuleOptimizer,
        parallel: &DataParallel,
        preprocessing: Preprocessing,
        num_classes: usize,
    ) -> Result<(Self, ZooModel), Error> {
        let devices: Vec<Device> = parallel
            .devices
            .iter()
            .map(|d| d.clone().autodiff())
            .collect();
        if devices.len() < 2 {
            return Err(DevicesError::TooFew {
                given: devices.len(),
            }
            .into());
        }
        let collective = parallel.mode == SyncMode::Collective;
        let context = if collective {
            // Burn panics on a backend without a collective engine (flex, ndarray: "Distributed
            // operations are not supported"), before it starts anything.
            let init = std::panic::catch_unwind(|| {
                DistributedContext::init(
                    devices.clone(),
                    DistributedConfig {
                        all_reduce_op: ReduceOperation::Sum,
                    },
                )
            });
            Some(init.map_err(|panic| {
                DevicesError::NoCollective {
                    message: panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "Burn panicked".into()),
                }
            })?)
        } else {
            None
        };
        let setup = |device: &Device| Setup {
            device: device.clone(),
            preprocessing,
            num_classes,
            touch: collective,
        };
        let mut workers = Vec::with_capacity(devices.len() - 1);
        for (rank, device) in devices.iter().enumerate().skip(1) {
            // `fork` keeps every ParamId: the replicas' gradients match by id.
            let mut replica = model.clone().fork(device);
            if collective {
                replica = replica.map(&mut MarkDistributed);
            }
            let replica_optim = collective.then(|| optim.clone());
            let (commands, receive) = channel();
            let (send, replies) = channel();
            let setup = setup(device);
            let thread = std::thread::Builder::new()
                .name(format!("replica-{rank}"))
                .spawn(move || replica_loop(replica, replica_optim, setup, receive, send))
                .map_err(|e| Error::Replica {
                    rank,
                    message: format!("cannot start its thread: {e}"),
                })?;
            workers.push(Worker {
                device: device.clone(),
                commands,
                replies,
                thread: Some(thread),
                active: false,
            });
        }
        let mut model = model.fork(&devices[0]);
        if collective {
            model = model.map(&mut MarkDistributed);
        }
        Ok((
            Self {
                mode: parallel.mode,
                first: setup(&devices[0]),
                workers,
                pending: None,
                _context: context,
            },
            model,
        ))
    }

    fn send(&self, rank: usize, command: Command) -> Result<(), Error> {
        self.workers[rank - 1]
            .commands
            .send(command)
            .map_err(|_| self.gone(rank))
    }

    fn receive(&mut self, rank: usize) -> Result<Reply, Error> {
        match self.workers[rank - 1].replies.recv() {
            Ok(reply) => Ok(reply),
            Err(_) => Err(self.gone(rank)),
        }
    }

    /// The error of a replica whose thread ended: its panic message where it panicked.
    fn gone(&self, rank: usize) -> Error {
        let worker = &self.workers[rank - 1];
        let message = match worker.thread.as_ref() {
            Some(thread) if thread.is_finished() => "its thread ended (panicked)".to_string(),
            _ => "its thread stopped answering".to_string(),
        };
        Error::Replica {
            rank,
            message: format!("{message} on {:?}", worker.device),
        }
    }

    /// Every replica's forward pass on its shard of `batch` (`seed`: the step's device seed;
    /// `options`: the loss's, its seed mixed with the rank for replicas past 0). Returns the
    /// global batch's loss; call [`Self::update`] or [`Self::skip`] next.
    ///
    /// # Errors
    /// A sample the model cannot use (by its index in `batch`), or a replica that stopped.
    pub(crate) fn forward(
        &mut self,
        model: &ZooModel,
        batch: &[Sample],
        seed: u64,
        options: &LossOptions,
    ) -> Result<StepLoss, Error> {
        let w = self.workers.len() + 1;
        let ranges = shard_ranges(batch.len(), w);
        let family = model.family();
        let counts: Vec<usize> = ranges
            .iter()
            .map(|r| family.loss_count(&batch[r.clone()]))
            .collect();
        let count: usize = counts.iter().sum();
        let work: Vec<Option<Work>> = ranges
            .iter()
            .zip(&counts)
            .enumerate()
            .map(|(rank, (range, &c))| {
                let weight = if count > 0 {
                    c as f64 / count as f64
                } else {
                    range.len() as f64 / batch.len() as f64
                };
                let (shard, offset, weight) = match (range.is_empty(), self.mode) {
                    (false, _) => (batch[range.clone()].to_vec(), range.start, weight),
                    (true, SyncMode::Gather) => return None,
                    // Every replica meets in `backward()`: one without images backpropagates
                    // the first image of the batch at weight 0.
                    (true, SyncMode::Collective) => (batch[..1].to_vec(), 0, 0.0),
                };
                Some(Work {
                    shard,
                    offset,
                    weight,
                    seed: replica_seed(seed, rank),
                    options: LossOptions {
                        seed: replica_seed(options.seed, rank),
                        ..*options
                    },
                })
            })
            .collect();
        self.pending = None;
        // Issued in replica order (random draws in a fixed order), computed in parallel.
        let mut work = work.into_iter();
        let first = work
            .next()
            .flatten()
            .map(|work| shard_loss(model, &work, &self.first))
            .transpose();
        for (rank, work) in (1..).zip(work) {
            self.workers[rank - 1].active = work.is_some();
            if let Some(work) = work {
                self.send(rank, Command::Forward(work))?;
                match self.receive(rank)? {
                    Reply::Issued => {}
                    _ => unreachable!("a replica answers a forward pass with Issued first"),
                }
            }
        }
        let mut total = Values::default();
        let mut failed = None;
        let mut add = |values: Values| {
            total.total += values.total;
            for (name, v) in values.terms {
                match total.terms.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, sum)) => *sum += v,
                    None => total.terms.push((name, v)),
                }
            }
        };
        match first.map(|issued| issued.map(Issued::read)) {
            Ok(Some((loss, values))) => {
                self.pending = Some(loss);
                add(values);
            }
            Ok(None) => {}
            Err(e) => failed = Some(e),
        }
        for rank in 1..w {
            if !self.workers[rank - 1].active {
                continue;
            }
            match self.receive(rank)? {
                Reply::Loss(Ok(values)) => add(values),
                Reply::Loss(Err(e)) => failed = failed.or(Some(e)),
                _ => unreachable!("a replica answers a forward pass with its loss"),
            }
        }
        if let Some(e) = failed {
            self.skip()?;
            return Err(e.into());
        }
        Ok(StepLoss {
            total: total.total,
            terms: total.terms,
        })
    }

    /// Drops the step's losses on every replica (a non-finite loss: the decision is the same
    /// for all, so no replica waits in `backward()` for the others).
    pub(crate) fn skip(&mut self) -> Result<(), Error> {
        self.pending = None;
        for rank in 1..=self.workers.len() {
            if self.workers[rank - 1].active {
                self.send(rank, Command::Skip)?;
                self.workers[rank - 1].active = false;
            }
        }
        Ok(())
    }

    /// Backpropagates every replica's loss and applies one optimiser step of the summed
    /// gradients at `lr` (Gather: `optim` steps `model` and the others get its weights;
    /// Collective: each replica steps its own optimiser, `optim` replica 0's).
    pub(crate) fn update(
        &mut self,
        model: ZooModel,
        optim: &mut ModuleOptimizer,
        lr: f64,
        grad_norm: impl Fn(&ZooModel, &GradientsParams) -> f64,
    ) -> Result<Update, Error> {
        for rank in 1..=self.workers.len() {
            if self.workers[rank - 1].active {
                self.send(rank, Command::Backward { lr })?;
            }
        }
        let own = self
            .pending
            .take()
            .map(|loss| GradientsParams::from_grads(loss.backward(), &model));
        match self.mode {
            SyncMode::Collective => {
                // Burn's all-reduce ran inside backward(): these are the summed gradients.
                let grads = own.expect("every Collective replica has a loss");
                let norm = grad_norm(&model, &grads);
                let model = optim.step(lr, model, grads);
                for rank in 1..=self.workers.len() {
                    match self.receive(rank)? {
                        Reply::Stepped => self.workers[rank - 1].active = false,
                        _ => unreachable!("a Collective replica answers with its step"),
                    }
                }
                Ok(Update {
                    model,
                    grad_norm: norm,
                    sync_seconds: 0.0,
                })
            }
            SyncMode::Gather => {
                let main = self.first.device.clone();
                let mut sync_seconds = 0.0;
                let mut sum = GradientsAccumulator::<ZooModel>::new();
                if let Some(grads) = own {
                    sum.accumulate(&model, grads);
                }
                for rank in 1..=self.workers.len() {
                    if !self.workers[rank - 1].active {
                        continue;
                    }
                    let Reply::Grads(grads) = self.receive(rank)? else {
                        unreachable!("a Gather replica answers with its gradients")
                    };
                    self.workers[rank - 1].active = false;
                    let started = Instant::now();
                    sum.accumulate(&model, grads.to_device(&main, &model));
                    sync_seconds += started.elapsed().as_secs_f64();
                }
                let grads = sum.grads();
                let norm = grad_norm(&model, &grads);
                let model = optim.step(lr, model, grads);
                let started = Instant::now();
                for rank in 1..=self.workers.len() {
                    let device = self.workers[rank - 1].device.clone();
                    self.send(
                        rank,
                        Command::Weights(Box::new(model.clone().fork(&device))),
                    )?;
                }
                sync_seconds += started.elapsed().as_secs_f64();
                Ok(Update {
                    model,
                    grad_norm: norm,
                    sync_seconds,
                })
            }
        }
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        for worker in &self.workers {
            worker.commands.send(Command::Stop).ok();
        }
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take() {
                thread.join().ok();
            }
        }
        // `_context` drops after this, closing Burn's sync server.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_contiguous_balanced_and_cover_the_batch() {
        assert_eq!(shard_ranges(8, 2), vec![0..4, 4..8]);
        assert_eq!(shard_ranges(7, 2), vec![0..3, 3..7]);
        assert_eq!(shard_ranges(10, 4), vec![0..2, 2..5, 5..7, 7..10]);
        assert_eq!(shard_ranges(1, 2), vec![0..0, 0..1]);
        for n in 0..20 {
            for w in 1..6 {
                let r = shard_ranges(n, w);
                assert_eq!(r.first().unwrap().start, 0);
                assert_eq!(r.last().unwrap().end, n);
                assert!(r.windows(2).all(|p| p[0].end == p[1].start));
                let sizes: Vec<usize> = r.iter().map(|r| r.len()).collect();
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "{n} over {w}: {sizes:?}");
            }
        }
    }

    #[test]
    fn replica_zero_keeps_the_step_seed() {
        assert_eq!(replica_seed(42, 0), 42);
        assert_ne!(replica_seed(42, 1), 42);
        assert_ne!(replica_seed(42, 1), replica_seed(42, 2));
    }
}
