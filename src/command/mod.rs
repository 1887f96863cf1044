//! The commands behind the CLI: each loads what it needs, runs, and says how it ended.
//!
//! Owns the wiring of config, clients, transports and reporters per command, and the
//! mapping of failures to exit codes. It must not hold domain logic of its own.

mod build;
mod cache;
mod completions;
mod generate;
pub mod image_syncer;
mod map;
mod plan;
mod resolve;
mod sync;
mod tags;

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;

use thiserror::Error;

use crate::cli::{Cli, Command};
use crate::config::{Config, ConfigError};
use crate::credentials::CredentialStore;
use crate::docker::{Engine, IdleTimeouts};
use crate::reference::Reference;
use crate::registry::{ClientOptions, RegistryClient};
use crate::rules::Mapping;
use crate::rules::Stage;
use crate::run::RunOptions;
use crate::state::State;

/// Exit code: everything done.
pub const EXIT_OK: u8 = 0;
/// Exit code: some images failed, the others finished.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad configuration or usage; nothing was done.
pub const EXIT_USAGE: u8 = 2;

/// Why a command stopped.
#[derive(Debug, Error)]
pub enum CommandError {
    /// The configuration is invalid (exit 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The command line asks for something impossible (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The command could not do its work (exit 1): no daemon, unreachable registry …
    #[error("{0}")]
    Failed(String),
    /// Whoever reads our output stopped reading (`ferry plan | head`): end quietly.
    #[error("output closed")]
    OutputClosed,
}

impl CommandError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Config(_) | CommandError::Usage(_) => EXIT_USAGE,
            CommandError::Failed(_) => EXIT_FAILED,
            CommandError::OutputClosed => EXIT_OK,
        }
    }
}

/// Runs the command of `cli`, writing its output to `out`; returns the exit code.
pub async fn execute(cli: Cli, out: &mut (dyn Write + Send)) -> Result<u8, CommandError> {
    match &cli.command {
        Command::Map(args) => map::run(&load(&cli)?, args, out),
        Command::Plan(args) => plan::run(&load(&cli)?, args, out).await,
        Command::Generate(args) => generate::run(&load(&cli)?, args, out),
        Command::Tags(args) => tags::run(&load_optional(&cli)?, args, out).await,
        Command::Sync(args) => sync::run(&load(&cli)?, args, out).await,
        Command::Cache(args) => cache::run(args, out).await,
        Command::Build(args) => build::run(&load(&cli)?, args, out).await,
        Command::Completions(args) => completions::run(args, out),
    }
}

/// Runs image-syncer's command line (ferry started as `image-syncer`); the exit code.
pub async fn execute_image_syncer(
    args: crate::cli::image_syncer::ImageSyncerArgs,
    out: &mut (dyn Write + Send),
) -> Result<u8, CommandError> {
    image_syncer::run(&args, out).await
}

/// The configuration of `-c` with its rules compiled and checked.
fn load(cli: &Cli) -> Result<Mapping, CommandError> {
    Ok(Mapping::load(&cli.config)?)
}

/// `plan` and `sync` over the whole configuration need something to do: a configuration
/// with no image at all is most likely the wrong `-c`, and says so instead of exiting 0.
/// The built images carried by build-images.yaml's mapping form count for hop 2 only.
fn require_images(config: &Mapping, stage: Stage) -> Result<(), CommandError> {
    let carried = stage == Stage::Private && !config.carried().is_empty();
    if !config.images().is_empty() || !config.builds().is_empty() || carried {
        return Ok(());
    }
    let path = config.path();
    let message = if !config.carried().is_empty() {
        format!(
            "{}: no images and no build entries for the mirror stage: the built images of \
             build-images.yaml travel in hop 2 (--stage private)",
            path.display()
        )
    } else if path.is_file() {
        format!("{}: no items: nothing to do", path.display())
    } else if path.join("images.yaml").exists() {
        format!(
            "{}: no images (the file is empty or only comments) and no build entries: nothing to do",
            path.join("images.yaml").display()
        )
    } else {
        format!(
            "{}: no images.yaml and no build entries: nothing to do (is -c the right directory?)",
            path.display()
        )
    };
    Err(CommandError::Usage(message))
}

/// The config when there is one; `ferry tags` also works without (anonymous, no rules).
fn load_optional(cli: &Cli) -> Result<Option<Config>, CommandError> {
    // A dangling symlink is a config that cannot be read, not the absence of one.
    if cli.config.symlink_metadata().is_ok() {
        Ok(Some(Config::load(&cli.config)?))
    } else {
        Ok(None)
    }
}

/// A registry client with the credentials of auth.yaml (for the registries `references`
/// touch: a missing `${ENV}` of another registry does not matter), docker config.json and
/// `TARGET_USER`/`TARGET_PASSWORD`.
fn client<'a>(
    config: Option<&Config>,
    references: impl IntoIterator<Item = &'a Reference>,
    options: ClientOptions,
) -> Result<RegistryClient, CommandError> {
    let registries: BTreeSet<&str> = references.into_iter().map(Reference::registry).collect();
    let entries = match config {
        Some(config) => config.auth().entries_for(registries)?,
        None => Vec::new(),
    };
    let store =
        CredentialStore::from_env(entries).map_err(|e| CommandError::Usage(e.to_string()))?;
    Ok(RegistryClient::new(store, options))
}

/// The Docker daemon and the state file of a run that pulls through it. A damaged state
/// file is reported once and treated as empty (it costs time, never correctness). Pull and
/// push streams give up after the idle timeout of the registry behind them (`client`'s
/// limits for the registries of `jobs`).
async fn daemon_and_state(
    path: &std::path::Path,
    client: &RegistryClient,
    jobs: &[crate::plan::Job],
) -> Result<(Engine, Arc<State>), CommandError> {
    let idle = IdleTimeouts {
        default: client.options().limits.idle_timeout,
        per_registry: jobs
            .iter()
            .flat_map(|job| [&job.source, &job.target])
            .map(|r| {
                (
                    r.registry().to_owned(),
                    client.limits_of(r.registry()).idle_timeout,
                )
            })
            .collect(),
    };
    let engine = Engine::connect()
        .await
        .map_err(|e| CommandError::Failed(e.to_string()))?
        .with_idle_timeouts(idle);
    let (state, warning) = State::load(path);
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    Ok((engine, Arc::new(state)))
}

/// Runs `work` (listing tags, reading a plan) as the planning before the jobs: its retries
/// become `Retrying` events of [`crate::event::PLANNING`], returned for the reporters.
async fn planning<F: std::future::Future>(work: F) -> (F::Output, Vec<crate::event::Event>) {
    let (events, mut receiver) = crate::event::channel();
    let output = crate::event::scope(events.job(crate::event::PLANNING), work).await;
    drop(events);
    let mut seen = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        seen.push(event);
    }
    (output, seen)
}

/// `jobs` at once, and per target registry no more than its `max_concurrency` (auth.yaml
/// `limits:`): the same limits for deciding (`plan`) and copying (`sync`).
fn run_options(jobs: usize, planned: &[crate::plan::Job], client: &RegistryClient) -> RunOptions {
    let jobs = jobs.max(1);
    let per_target = planned
        .iter()
        .map(|job| job.target.registry())
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .map(|registry| {
            let limit = client.limits_of(registry).max_concurrency;
            let limit = usize::try_from(limit).unwrap_or(usize::MAX).min(jobs);
            (registry.to_owned(), limit)
        })
        .collect();
    RunOptions {
        jobs,
        per_registry: jobs,
        per_target,
    }
}

fn io(error: std::io::Error) -> CommandError {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        return CommandError::OutputClosed;
    }
    CommandError::Failed(format!("cannot write output: {error}"))
}

/// What `ferry <line>` prints, run in-process with `-c` relative to the crate root; the
/// line is split on spaces. Panics unless it exits 0.
#[cfg(test)]
pub(crate) async fn output_of(line: &str) -> String {
    use clap::Parser;
    let root = env!("CARGO_MANIFEST_DIR");
    let mut words: Vec<String> = line.split(' ').map(str::to_owned).collect();
    if let Some(dir) = words.iter().position(|w| w == "-c").map(|i| i + 1) {
        words[dir] = format!("{root}/{}", words[dir]);
    }
    let cli = Cli::try_parse_from(std::iter::once("ferry".to_owned()).chain(words))
        .unwrap_or_else(|e| panic!("ferry {line}: {e}"));
    let mut out = Vec::new();
    let code = execute(cli, &mut out)
        .await
        .unwrap_or_else(|e| panic!("ferry {line}: {e}"));
    assert_eq!(code, EXIT_OK, "ferry {line}");
    String::from_utf8(out).expect("utf-8 output")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthEntry;
    use crate::registry::LimitOverrides;

    #[test]
    fn jobs_per_target_registry_follow_max_concurrency() {
        let throttled = AuthEntry {
            key: "slow.io".to_owned(),
            username: None,
            password: None,
            insecure: false,
            ca_file: None,
            limits: LimitOverrides {
                max_concurrency: Some(2),
                ..LimitOverrides::default()
            },
        };
        let client = RegistryClient::new(
            CredentialStore::new(vec![throttled], None, None),
            ClientOptions::default(),
        );
        let job = |target: &str| {
            crate::plan::Job::new(
                "src.io/app:1".parse().expect("source"),
                target.parse().expect("target"),
                Vec::new(),
            )
        };
        let jobs = [job("slow.io/app:1"), job("fast.io/app:1")];
        let options = run_options(16, &jobs, &client);
        assert_eq!(options.jobs, 16);
        assert_eq!(options.per_target["slow.io"], 2, "auth.yaml's limit");
        assert_eq!(options.per_target["fast.io"], 8, "the default limit");
        let options = run_options(4, &jobs, &client);
        assert_eq!(options.per_target["fast.io"], 4, "never more than --jobs");
    }
}
