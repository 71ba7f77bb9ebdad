//! What `zoo train` prints while it runs, and `<run>/train.log`, which gets the same lines.
//!
//! On a terminal: a live progress bar per epoch (indicatif) — steps, smoothed loss,
//! learning rate, images/s, the share of the step spent waiting for data, the time left in
//! the epoch and in the run — and a spinner while validating; a row per epoch stays on
//! screen. Elsewhere (CI, `| tee`, nohup): plain lines without control codes, a progress
//! line every `--log-every` steps and at each epoch's last step. `train.log` gets the plain
//! lines in both cases.

use std::fs::File;
use std::io::IsTerminal;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use zoo_train::history::EpochReport;
use zoo_train::train::{Event, StepReport};

/// Prints training events and mirrors them to `train.log`.
pub struct Reporter {
    quiet: bool,
    log_every: usize,
    log: Option<(PathBuf, File)>,
    header: bool,
    smoothed: Option<f64>,
    steps_per_epoch: usize,
    total_steps: usize,
    started: Option<(Instant, usize)>,
    epoch_seconds: f64,
    epoch_wait: f64,
    /// The live bar or spinner (on a terminal only).
    bar: Option<ProgressBar>,
    terminal: bool,
}

/// `1:02:03`, `2:03`.
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

impl Reporter {
    /// A reporter that prints a progress line every `log_every` steps (only errors and the
    /// summary when `quiet`; the log gets every line either way).
    pub fn new(quiet: bool, log_every: usize) -> Self {
        Self {
            quiet,
            log_every: log_every.max(1),
            log: None,
            header: false,
            smoothed: None,
            steps_per_epoch: 1,
            total_steps: 1,
            started: None,
            epoch_seconds: 0.0,
            epoch_wait: 0.0,
            bar: None,
            terminal: !quiet && std::io::stdout().is_terminal(),
        }
    }

    /// Appends to `<run>/train.log` from now on.
    pub fn log_to(&mut self, run: &Path) {
        let path = run.join("train.log");
        match File::options().create(true).append(true).open(&path) {
            Ok(file) => self.log = Some((path, file)),
            Err(e) => eprintln!("warning: {}: {e}; not logging to it", path.display()),
        }
    }

    /// Prints `line` (stdout, or stderr when `error`) and appends it to the log.
    pub fn line(&mut self, line: &str, error: bool) {
        let print = || {
            if error {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        };
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
        self.append(line);
    }

    fn append(&mut self, line: &str) {
        if let Some((path, file)) = &mut self.log
            && writeln!(file, "{line}").is_err()
        {
            eprintln!(
                "warning: {}: cannot write; not logging to it",
                path.display()
            );
            self.log = None;
        }
    }

    /// Progress: printed unless quiet, logged always.
    fn say(&mut self, line: &str) {
        if self.quiet {
            self.append(line);
        } else {
            self.line(line, false);
        }
    }

    /// Reports one event of the run.
    pub fn event(&mut self, event: &Event<'_>) {
        match event {
            Event::Start {
                steps_per_epoch,
                total_steps,
                step,
                ..
            } => {
                self.steps_per_epoch = (*steps_per_epoch).max(1);
                self.total_steps = *total_steps;
                self.started = Some((Instant::now(), *step));
            }
            Event::Weights {
                part,
                file,
                reinitialised,
            } => {
                let what = if *part == "backbone" {
                    "backbone weights"
                } else {
                    "weights"
                };
                let line = match reinitialised.len() {
                    0 => format!("loaded {what} {}", file.display()),
                    _ => format!(
                        "loaded {what} {}; for model.num_classes, re-initialised: {}",
                        file.display(),
                        reinitialised.join(", ")
                    ),
                };
                self.line(&line, false);
            }
            Event::Step(s) => self.step(s),
            Event::Validating { epoch } => {
                let line = format!("epoch {epoch}: validating");
                if self.terminal {
                    self.finish_bar();
                    let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout())
                        .with_message(line.clone());
                    spinner.enable_steady_tick(Duration::from_millis(120));
                    self.bar = Some(spinner);
                    self.append(&line);
                } else {
                    self.say(&line);
                }
            }
            Event::Epoch(r) => {
                self.finish_bar();
                self.epoch(r);
            }
            Event::Checkpoint(_) => {}
        }
    }

    fn step(&mut self, s: &StepReport) {
        if s.batch == 1 {
            (self.epoch_seconds, self.epoch_wait) = (0.0, 0.0);
        }
        self.epoch_seconds += s.seconds;
        self.epoch_wait += s.data_wait_seconds;
        if s.loss.is_finite() {
            self.smoothed = Some(match self.smoothed {
                Some(avg) => 0.9 * avg + 0.1 * s.loss,
                None => s.loss,
            });
        }
        if s.skipped {
            self.line(
                &format!(
                    "warning: step {} (epoch {}, batch {} of {}): the loss is {}; its update is \
                     skipped (train.nonfinite = \"skip\")",
                    s.step, s.epoch, s.batch, s.batches, s.loss
                ),
                true,
            );
        }
        let per_step = self.started.map_or(s.seconds, |(t, first)| {
            t.elapsed().as_secs_f64() / (s.step - first).max(1) as f64
        });
        if self.terminal {
            self.update_bar(s, per_step);
        }
        if s.step.is_multiple_of(self.log_every) || s.batch == s.batches {
            let line = format!(
                "epoch {} step {}/{} ({}/{})  loss {:.4}  lr {:.2e}  {:.1} img/s  data wait {:.0}%  \
                 eta epoch {}  run {}",
                s.epoch,
                s.batch,
                s.batches,
                s.step,
                self.total_steps,
                self.smoothed.unwrap_or(f64::NAN),
                s.lr,
                s.images as f64 / s.seconds.max(1e-9),
                100.0 * self.epoch_wait / self.epoch_seconds.max(1e-9),
                clock(per_step * (s.batches - s.batch) as f64),
                clock(per_step * self.total_steps.saturating_sub(s.step) as f64),
            );
            if self.terminal {
                self.append(&line);
            } else {
                self.say(&line);
            }
        }
    }

    /// The epoch's bar, made at its first step (or the first after a resume).
    fn update_bar(&mut self, s: &StepReport, per_step: f64) {
        let bar = self.bar.get_or_insert_with(|| {
            // On stdout, which is what was found to be a terminal.
            let bar =
                ProgressBar::with_draw_target(Some(s.batches as u64), ProgressDrawTarget::stdout())
                    .with_style(
                        ProgressStyle::with_template(
                            "{prefix} [{bar:28}] {pos}/{len} {msg} · eta {eta}",
                        )
                        .expect("a valid template")
                        .progress_chars("=> "),
                    );
            bar.set_prefix(format!("epoch {}", s.epoch));
            bar
        });
        bar.set_position(s.batch as u64);
        bar.set_message(format!(
            "loss {:.4} · lr {:.2e} · {:.1} img/s · data wait {:.0}% · run left {}",
            self.smoothed.unwrap_or(f64::NAN),
            s.lr,
            s.images as f64 / s.seconds.max(1e-9),
            100.0 * self.epoch_wait / self.epoch_seconds.max(1e-9),
            clock(per_step * self.total_steps.saturating_sub(s.step) as f64),
        ));
    }

    fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn epoch(&mut self, r: &EpochReport) {
        if !std::mem::replace(&mut self.header, true) {
            let header = format!(
                "epoch  train_loss  {:>12}  val_acc  lr        seconds",
                r.val.primary_label()
            );
            self.say(&header);
        }
        let row = format!(
            "{:>5}  {:>10.4}  {:>12.4}  {:>7.4}  {:.2e}  {:>7.1}",
            r.epoch,
            r.train_loss,
            r.val.primary(),
            r.val.accuracy,
            r.lr,
            r.seconds
        );
        self.say(&row);
    }
}
