//! `zoo weights list [MODEL]` and `zoo weights fetch NAME`: the published upstream weights
//! of the zoo's models (`zoo_models::hub`) and the local download cache.

use std::io::Write;

use clap::{Args, Subcommand};
use zoo_models::hub::{self, Fetcher, Role, WeightSpec};

#[derive(Args)]
pub struct WeightsArgs {
    #[command(subcommand)]
    command: WeightsCommand,
}

#[derive(Subcommand)]
enum WeightsCommand {
    /// One weight file per line: name, URL, what it loads as, classes, published figure.
    List {
        /// Only the files that load into this registry model (`zoo list`), whole or as its
        /// backbone.
        model: Option<String>,
    },
    /// Download weights into the cache ($ZOO_HOME/weights, else the platform cache
    /// directory's burn-zoo/weights), verify them, and print the cached path; a verified
    /// cached copy needs no network. $ZOO_WEIGHTS_MIRROR replaces the URLs' scheme and host.
    Fetch {
        /// A name from `zoo weights list`, or a model name for upstream's default weights.
        name: String,
    },
}

/// Runs a `zoo weights` command.
pub fn run(args: WeightsArgs) -> Result<(), String> {
    match args.command {
        WeightsCommand::List { model: None } => {
            let lines = hub::weights().iter().map(|w| {
                let role = match w.role {
                    Role::Model => w.arch.to_string(),
                    Role::Encoder => format!("{} encoder", w.arch),
                };
                line(w, &role)
            });
            print_lines(lines)
        }
        WeightsCommand::List { model: Some(model) } => {
            let found = hub::for_model(&model).ok_or_else(|| {
                format!(
                    "unknown model {model:?}; expected one of {}",
                    zoo_models::registry::names().join(", ")
                )
            })?;
            let whole = found.model.iter().map(|w| line(w, "weights"));
            let backbone = found.backbone.iter().map(|w| line(w, "backbone_weights"));
            print_lines(whole.chain(backbone))
        }
        WeightsCommand::Fetch { name } => {
            let spec = hub::find(&name).ok_or_else(|| {
                format!("unknown weights {name:?} (`zoo weights list` shows the registry)")
            })?;
            let fetcher = Fetcher::from_env()
                .map_err(|e| e.to_string())?
                .with_progress(true);
            let path = fetcher.fetch(&spec.file()).map_err(|e| e.to_string())?;
            println!("{}", path.display());
            Ok(())
        }
    }
}

/// Prints `lines`; a closed pipe (`zoo weights list | head`) ends the listing quietly.
fn print_lines(lines: impl Iterator<Item = String>) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    for l in lines {
        if let Err(e) = writeln!(out, "{l}") {
            return match e.kind() {
                std::io::ErrorKind::BrokenPipe => Ok(()),
                _ => Err(format!("stdout: {e}")),
            };
        }
    }
    Ok(())
}

/// `name  url  use  classes  figure`.
fn line(w: &WeightSpec, usage: &str) -> String {
    let classes = match w.classes.count() {
        0 => "no head".to_string(),
        n => format!("{n} classes"),
    };
    format!(
        "{:<48} {}  {usage}  {classes}  {}",
        w.name,
        w.url,
        w.headline().unwrap_or_else(|| "-".into())
    )
}
