//! The command line: every command, flag and default, as clap types.
//!
//! Owns argument syntax and help texts. It must not run anything: `command` does.

pub mod image_syncer;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::platform::Platform;
use crate::rules::Stage;
use crate::shard::Shard;

/// Mirror public container images into registries you control, and build `-n-ext` images.
#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about,
    long_about = None,
    after_help = "Started as `image-syncer` (a symlink or copy of ferry) or as `ferry image-syncer`, \
ferry takes image-syncer's command line: `image-syncer --auth=auth.yaml --images=images.yaml --proc=10 --retries=2`."
)]
pub struct Cli {
    /// Configuration directory (images.yaml, auth.yaml, rules.yaml, build-images.yaml)
    /// or a Ferryman items.yml file.
    #[arg(short = 'c', long = "config", global = true, default_value = "config")]
    pub config: PathBuf,

    /// More log output on stderr (-v info, -vv debug). Secrets are never logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// What ferry does.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy images from their sources to the targets the mapping rules give.
    Sync(SyncArgs),
    /// Build `-n-ext` extension images from build-images.yaml.
    Build(BuildArgs),
    /// Print the work a sync would do (source -> target, and why), writing nothing.
    Plan(PlanArgs),
    /// Print the whole chain of each image: source -> mirror -> private.
    Map(MapArgs),
    /// List the tags of a repository as the selection rules see them.
    Tags(TagsArgs),
    /// Write the hop-2 config (mirror ref -> private ref) in images.yaml format.
    Generate(GenerateArgs),
    /// Inspect or prune the local layer cache (images ferry pulled into the daemon).
    Cache(CacheArgs),
    /// Print a shell completion script: `ferry completions bash > /etc/bash_completion.d/ferry`.
    Completions(CompletionsArgs),
}

/// `ferry completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// How images travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    /// Through the Docker daemon: pull, tag, push.
    Docker,
    /// Registry to registry over HTTP, digests preserved, no daemon.
    Registry,
}

/// Which images a command covers. Shared by `sync` and `plan`.
#[derive(Debug, Clone, Args)]
pub struct Selection {
    /// Only these images (source references, e.g. nginx:1.25); default: all of images.yaml.
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,

    /// The hop: `mirror` (sources -> mirror) or `private` (mirror -> private).
    #[arg(long, default_value = "mirror")]
    pub stage: Stage,

    /// Only these platforms, comma-separated (default: every Linux platform).
    #[arg(long, value_delimiter = ',', value_parser = linux_platform)]
    pub platform: Vec<Platform>,

    /// Every entry of an index, Windows included, byte for byte (registry transport).
    #[arg(long, conflicts_with = "platform")]
    pub all_platforms: bool,

    /// Only the share I of N of the source repositories (deterministic split for CI matrices).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
}

/// How a sync copies and what it remembers: shared by `sync` and `plan`, whose decisions
/// depend on both.
#[derive(Debug, Clone, Args)]
pub struct Copying {
    /// `docker` (pull/tag/push through the daemon) or `registry` (direct, digests kept).
    #[arg(long, value_enum, default_value = "docker")]
    pub transport: TransportArg,

    /// State file recording what was pushed where.
    #[arg(long, default_value = ".ferry/state.json")]
    pub state: PathBuf,
}

/// `ferry sync`.
#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    /// Which images.
    #[command(flatten)]
    pub selection: Selection,

    /// Transport and state.
    #[command(flatten)]
    pub copying: Copying,

    /// Images copied at once.
    #[arg(long, short = 'j', default_value_t = 4, value_parser = at_least_one)]
    pub jobs: usize,

    /// Print what would be done; write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Copy again even when the target already serves the image.
    #[arg(long)]
    pub force: bool,

    /// Write a JSON report of the run to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Accepted for image-syncer scripts: ferry always finishes the other images when one
    /// fails, and exits 1 at the end.
    #[arg(long)]
    pub keep_going: bool,

    /// Run the jobs of a plan written by `ferry plan --json` instead of planning again.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
}

/// `ferry plan`.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// Which images.
    #[command(flatten)]
    pub selection: Selection,

    /// Do not contact registries: show the configured selection instead of concrete tags.
    #[arg(long)]
    pub offline: bool,

    /// Print the plan as JSON (input for `ferry sync --plan FILE`).
    #[arg(long)]
    pub json: bool,

    /// Transport and state: what a sync with the same flags would decide.
    #[command(flatten)]
    pub copying: Copying,
}

/// `ferry map`.
#[derive(Debug, Clone, Args)]
pub struct MapArgs {
    /// Source references, e.g. docker.io/nginx:1.17.4.
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,

    /// Map as an extension image (`<tag>-n-ext`).
    #[arg(long)]
    pub ext: bool,
}

/// `ferry tags`.
#[derive(Debug, Clone, Args)]
pub struct TagsArgs {
    /// Repository, e.g. docker.io/library/nginx.
    #[arg(value_name = "REPO")]
    pub repository: String,

    /// Only tags matching this regex.
    #[arg(long)]
    pub tags: Option<String>,

    /// Only tags in this semver range, e.g. ">=1.24, <2".
    #[arg(long)]
    pub semver: Option<String>,

    /// Only the newest N tags.
    #[arg(long)]
    pub limit: Option<usize>,

    /// Order for `--limit`: `semver` or `created`.
    #[arg(long, default_value = "semver")]
    pub order: String,

    /// Leave out tags matching this regex (repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,

    /// Also show tags that have no Linux platform (marked).
    #[arg(long)]
    pub all_platforms: bool,
}

/// `ferry generate`.
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// The hop to write a config for (only `private` is meaningful today).
    #[arg(long, default_value = "private")]
    pub stage: Stage,

    /// Write to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `ferry build`.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Only these entries of build-images.yaml (naming one builds it whatever its mode).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,

    /// Which entries: `once`, `continuous` or `all`.
    #[arg(long, value_enum, default_value = "all")]
    pub mode: BuildModeArg,

    /// Push the results to the mirror.
    #[arg(long)]
    pub push: bool,

    /// Build even when nothing changed.
    #[arg(long)]
    pub force: bool,

    /// State file recording the bases ferry pulls (layer cache).
    #[arg(long, default_value = ".ferry/state.json")]
    pub state: PathBuf,
}

/// `--mode` of `ferry build`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BuildModeArg {
    /// Entries built only when their target tag is missing.
    Once,
    /// Entries rebuilt when their base or context changed.
    Continuous,
    /// Both.
    All,
}

/// `ferry cache`.
#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    /// `ls` or `prune`.
    #[command(subcommand)]
    pub action: CacheAction,

    /// State file that records which images ferry pulled.
    #[arg(long, default_value = ".ferry/state.json", global = true)]
    pub state: PathBuf,
}

/// What to do with the cache.
#[derive(Debug, Clone, Subcommand)]
pub enum CacheAction {
    /// List images ferry pulled, least recently used first.
    Ls,
    /// Remove least recently used images until the cache fits the budget.
    Prune {
        /// Size budget, e.g. 20GiB, 500MB (default: cache.max_size or 20GiB).
        #[arg(long)]
        max_size: Option<String>,
    },
}

/// `--platform`: ferry copies Linux platforms only.
fn linux_platform(text: &str) -> Result<Platform, String> {
    let platform: Platform = text.parse()?;
    if !platform.is_linux() {
        return Err("only linux platforms can be copied".to_owned());
    }
    Ok(platform)
}

/// Most jobs at once (the most of anything at once).
pub const MAX_JOBS: usize = crate::registry::MAX_CONCURRENCY as usize;

/// `--jobs`: a whole number from 1 to [`MAX_JOBS`].
pub fn at_least_one(text: &str) -> Result<usize, String> {
    text.parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_JOBS).contains(n))
        .ok_or_else(|| format!("must be a whole number from 1 to {MAX_JOBS}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sync_flags_parse() {
        let cli = Cli::try_parse_from([
            "ferry",
            "sync",
            "-c",
            "cfg",
            "nginx:1.25",
            "--stage",
            "private",
            "--transport",
            "registry",
            "--jobs",
            "8",
            "--platform",
            "linux/amd64,linux/arm64",
            "--shard",
            "2/3",
            "--dry-run",
            "--force",
            "--report",
            "out.json",
        ])
        .expect("valid command line");
        assert_eq!(cli.config, PathBuf::from("cfg"));
        let Command::Sync(sync) = cli.command else {
            panic!("sync expected");
        };
        assert_eq!(sync.selection.images, vec!["nginx:1.25"]);
        assert_eq!(sync.selection.stage, Stage::Private);
        assert_eq!(sync.copying.transport, TransportArg::Registry);
        assert_eq!(sync.selection.platform.len(), 2);
        assert_eq!(
            sync.selection.shard.map(|s| s.to_string()).as_deref(),
            Some("2/3")
        );
        assert!(sync.dry_run && sync.force);
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for args in [
            vec!["ferry", "sync", "--shard", "4/3"],
            vec!["ferry", "sync", "--platform", "linux"],
            vec!["ferry", "sync", "--platform", "linux/amd64,windows/amd64"],
            vec!["ferry", "plan", "--platform", "windows/amd64"],
            vec!["ferry", "sync", "--jobs", "0"],
            vec!["ferry", "sync", "-j", "-1"],
            vec!["ferry", "sync", "--jobs", "18446744073709551615"],
            vec!["ferry", "sync", "--jobs", "1025"],
            vec!["ferry", "sync", "--stage", "nowhere"],
            vec!["ferry", "map"],
        ] {
            assert!(Cli::try_parse_from(&args).is_err(), "{args:?}");
        }
    }
}
