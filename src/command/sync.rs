//! `ferry sync`: plan (or read a plan), then copy every job with the chosen transport,
//! report, and prune the daemon's layer cache.
//!
//! Owns the choice of transport and reporters and the run's exit code. Copying itself is
//! the transports' job.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::plan::request;
use super::{client, daemon_and_state, io, resolve, CommandError, EXIT_FAILED, EXIT_OK};
use crate::cache::{self, BlobCache};
use crate::cli::{SyncArgs, TransportArg};
use crate::config::Config;
use crate::credentials::Side;
use crate::event::{Event, Outcome};
use crate::local_file;
use crate::plan::{self, Job, Unresolved};
use crate::registry::{ClientOptions, RegistryClient};
use crate::report::{GithubReporter, HumanReporter, JsonReporter, Reporters, TeamcityReporter};
use crate::run::{run as run_jobs, RunOptions};
use crate::state::State;
use crate::transport::docker::DockerTransport;
use crate::transport::registry::RegistryTransport;

/// Budget of the daemon layer cache unless `FERRY_CACHE_MAX_SIZE` says otherwise.
pub const DEFAULT_CACHE_MAX_SIZE: &str = "20GiB";

/// Runs a sync; exit 1 when any image failed.
pub async fn run(
    config: &Config,
    args: &SyncArgs,
    out: &mut (dyn Write + Send),
) -> Result<u8, CommandError> {
    let max_cache = cache_budget()?;
    if !args.dry_run {
        State::check_writable(&args.state).map_err(|e| CommandError::Usage(e.to_string()))?;
    }
    let (jobs, unresolved, client) = jobs(config, args).await?;
    if args.dry_run {
        for job in &jobs {
            writeln!(out, "would copy {} -> {}", job.source, job.target).map_err(io)?;
        }
        for failed in &unresolved {
            writeln!(out, "error {}: {}", failed.source, failed.error).map_err(io)?;
        }
        return Ok(if unresolved.is_empty() {
            EXIT_OK
        } else {
            EXIT_FAILED
        });
    }
    let mut reporters = reporters(args.report.as_deref())?;
    report_unresolved(&mut reporters, jobs.len(), &unresolved)?;
    let options = RunOptions {
        jobs: args.jobs.max(1),
        per_registry: args.jobs.max(1),
    };
    let target = client.for_side(Side::Target);
    let tally = match args.transport {
        TransportArg::Registry => {
            let blobs = BlobCache::new(&blob_dir(&args.state));
            let transport = RegistryTransport::new(client, target, blobs.clone(), args.force);
            let tally = run_jobs(&transport, &jobs, options, &mut reporters)
                .await
                .map_err(io)?;
            match blobs.prune(max_cache) {
                Ok(freed) if freed > 0 => tracing::info!("blob cache: freed {freed} bytes"),
                Ok(_) => {}
                Err(error) => tracing::warn!("blob cache not pruned: {error}"),
            }
            tally
        }
        TransportArg::Docker => {
            let (engine, state) = daemon_and_state(&args.state, &client, &jobs).await?;
            let transport =
                DockerTransport::new(engine.clone(), client, target, state.clone(), args.force);
            let tally = run_jobs(&transport, &jobs, options, &mut reporters)
                .await
                .map_err(io)?;
            match cache::prune_images(&engine, &state, max_cache).await {
                Ok(freed) if freed > 0 => tracing::info!("layer cache: freed {freed} bytes"),
                Ok(_) => {}
                Err(error) => tracing::warn!("layer cache not pruned: {error}"),
            }
            tally
        }
    };
    let failed = tally.totals().failed + unresolved.len();
    Ok(if failed > 0 { EXIT_FAILED } else { EXIT_OK })
}

/// The jobs of the stage, or of `--plan FILE`, and a client knowing their registries.
async fn jobs(
    config: &Config,
    args: &SyncArgs,
) -> Result<(Vec<Job>, Vec<Unresolved>, RegistryClient), CommandError> {
    let options = ClientOptions::default();
    if let Some(file) = &args.plan {
        let text = local_file::read_text(file, local_file::MAX_CONFIG_FILE)
            .map_err(|e| CommandError::Usage(format!("plan {}: {e}", file.display())))?
            .ok_or_else(|| CommandError::Usage(format!("plan {}: no such file", file.display())))?;
        let jobs = plan::from_json(&text)
            .map_err(|e| CommandError::Usage(format!("{}: {e}", file.display())))?;
        let touched = jobs.iter().flat_map(|j| [&j.source, &j.target]);
        let client = client(Some(config), touched, options)?;
        return Ok((jobs, Vec::new(), client));
    }
    let stage = args.selection.stage;
    let request = request(&args.selection);
    let touched = resolve::touched(config, stage, &request)?;
    let client = client(Some(config), &touched, options)?;
    let (jobs, unresolved) = resolve::jobs(config, stage, &request, &client).await?;
    Ok((jobs, unresolved, client))
}

/// Human output always; TeamCity, GitHub Actions and JSON when asked for.
pub(super) fn reporters(report: Option<&Path>) -> Result<Reporters, CommandError> {
    let mut reporters = Reporters::default();
    if std::io::stderr().is_terminal() {
        reporters.push(Box::new(HumanReporter::with_bars(std::io::stdout())));
    } else {
        reporters.push(Box::new(HumanReporter::plain(std::io::stdout())));
    }
    if std::env::var_os("TEAMCITY_VERSION").is_some() {
        reporters.push(Box::new(TeamcityReporter::new(std::io::stdout())));
    }
    if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
        let summary = std::env::var_os("GITHUB_STEP_SUMMARY").and_then(|path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok()
        });
        reporters.push(Box::new(GithubReporter::new(std::io::stdout(), summary)));
    }
    if let Some(path) = report {
        let file = std::fs::File::create(path).map_err(|e| {
            CommandError::Usage(format!("cannot write report {}: {e}", path.display()))
        })?;
        reporters.push(Box::new(JsonReporter::new(file)));
    }
    Ok(reporters)
}

/// Entries whose tags could not be listed count as failed jobs in every report.
fn report_unresolved(
    reporters: &mut Reporters,
    first_id: usize,
    unresolved: &[Unresolved],
) -> Result<(), CommandError> {
    for (offset, failed) in unresolved.iter().enumerate() {
        let job = first_id + offset;
        let source = failed.source.to_string();
        reporters
            .event(&Event::Started {
                job,
                source: source.clone(),
                target: "(tags not listed)".to_owned(),
            })
            .map_err(io)?;
        reporters
            .event(&Event::Finished {
                job,
                outcome: Outcome::Failed {
                    error: format!("{source}: {}", failed.error),
                },
                elapsed: Duration::ZERO,
            })
            .map_err(io)?;
    }
    Ok(())
}

/// The registry transport's blob cache: `blobs/` beside the state file (`.ferry/blobs`).
pub(super) fn blob_dir(state: &Path) -> PathBuf {
    match state.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("blobs"),
        _ => PathBuf::from("blobs"),
    }
}

/// `FERRY_CACHE_MAX_SIZE`, or the default budget.
pub(super) fn cache_budget() -> Result<u64, CommandError> {
    let text =
        std::env::var("FERRY_CACHE_MAX_SIZE").unwrap_or_else(|_| DEFAULT_CACHE_MAX_SIZE.to_owned());
    cache::parse_size(&text).map_err(|e| CommandError::Usage(format!("FERRY_CACHE_MAX_SIZE: {e}")))
}
