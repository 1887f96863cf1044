//! `ferry sync`: plan (or read a plan), then copy every job with the chosen transport,
//! report, and prune the daemon's layer cache.
//!
//! Owns the choice of transport and reporters and the run's exit code. Copying itself is
//! the transports' job.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::plan::{print_decisions, request};
use super::{client, daemon_and_state, resolve, CommandError, EXIT_FAILED, EXIT_OK};
use crate::cache::{self, BlobCache};
use crate::cli::{Selection, SyncArgs, TransportArg};
use crate::credentials::Side;
use crate::decide::{Decider, Writes};
use crate::event::{self, Event, Outcome, PlannedJob, UnlistedEntry};
use crate::local_file;
use crate::plan::{self, Job, Unresolved};
use crate::registry::{ClientOptions, RegistryClient};
use crate::report::{
    GithubReporter, HumanReporter, JsonReporter, Reporter, Reporters, TeamcityReporter, UNLISTED,
};
use crate::rules::Mapping;
use crate::run::{run_until, RunOptions, Worker};
use crate::state::State;
use crate::transport::docker::DockerTransport;
use crate::transport::registry::RegistryTransport;
use crate::transport::Mirror;
use tokio_util::sync::CancellationToken;

/// Budget of the daemon layer cache unless `FERRY_CACHE_MAX_SIZE` says otherwise.
pub const DEFAULT_CACHE_MAX_SIZE: &str = "20GiB";

/// Runs a sync; exit 1 when any image failed.
pub async fn run(
    config: &Mapping,
    args: &SyncArgs,
    out: &mut (dyn Write + Send),
) -> Result<u8, CommandError> {
    let max_cache = cache_budget()?;
    if args.plan.is_none() && args.selection.images.is_empty() {
        super::require_images(config, args.selection.stage)?;
    }
    let transport = args.copying.transport;
    if args.plan.is_some() {
        plan_runs_as_written(&args.selection)?;
    } else if transport == TransportArg::Docker {
        docker_carries_linux_only(config, &args.selection)?;
    }
    if !args.dry_run {
        State::check_writable(&args.copying.state)
            .map_err(|e| CommandError::Usage(e.to_string()))?;
    }
    // Outputs are opened before any registry is asked: a report that cannot be written is
    // a usage error that costs nothing.
    let mut reporters = match args.dry_run {
        true => Reporters::default(),
        false => reporters(args.report.as_deref())?,
    };
    let (planned, earlier) = super::planning(jobs(config, args)).await;
    let (jobs, unresolved, client) = planned?;
    if let Some(job) = jobs.iter().find(|j| j.all_platforms) {
        if transport == TransportArg::Docker {
            return Err(CommandError::Usage(format!(
                "{}: every platform needs --transport registry: the daemon pulls Linux images only",
                job.source
            )));
        }
    }
    let options = super::run_options(args.jobs, &jobs, &client);
    let target = client.for_side(Side::Target);
    if args.dry_run {
        let state = Arc::new(load_state(&args.copying.state));
        let decider = Decider::new(client, target, state, writes(transport), args.force);
        return print_decisions(&decider, &jobs, &unresolved, &options, out).await;
    }
    let outcomes = match transport {
        TransportArg::Registry => {
            let copy = RegistryCopy {
                client,
                state: &args.copying.state,
                force: args.force,
                max_cache,
            };
            copy.run(&jobs, &unresolved, earlier, &options, &mut reporters)
                .await
        }
        TransportArg::Docker => {
            let (engine, state) = daemon_and_state(&args.copying.state, &client, &jobs).await?;
            let decider = Decider::new(
                client.clone(),
                target.clone(),
                state.clone(),
                writes(transport),
                args.force,
            );
            let pulls = client.clone();
            reporters.read_pulls(move || pulls.pull_budgets());
            let copier = DockerTransport::new(engine.clone(), client, target, state.clone());
            let work = Mirror::new(&decider, &copier);
            let outcomes =
                run_reported(&work, &jobs, &unresolved, earlier, &options, &mut reporters).await;
            match cache::prune_images(&engine, &state, max_cache).await {
                Ok(freed) if freed > 0 => tracing::info!("layer cache: freed {freed} bytes"),
                Ok(_) => {}
                Err(error) => tracing::warn!("layer cache not pruned: {error}"),
            }
            outcomes
        }
    };
    warn_reporter_failures(&mut reporters);
    let failed = outcomes.iter().any(|o| matches!(o, Outcome::Failed { .. }));
    Ok(if failed || !unresolved.is_empty() {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// A run of the registry transport: its client, state file (the blob cache sits beside
/// it), `--force` and the blob cache budget.
pub(super) struct RegistryCopy<'a> {
    pub client: RegistryClient,
    pub state: &'a Path,
    pub force: bool,
    pub max_cache: u64,
}

impl RegistryCopy<'_> {
    /// Decides and copies every job registry to registry while `reporters` render the
    /// events, then prunes the blob cache; the outcomes in job order.
    pub async fn run(
        self,
        jobs: &[Job],
        unresolved: &[Unresolved],
        earlier: Vec<Event>,
        options: &RunOptions,
        reporters: &mut Reporters,
    ) -> Vec<Outcome> {
        let transport = TransportArg::Registry;
        let state = Arc::new(load_state(self.state));
        let target = self.client.for_side(Side::Target);
        let decider = Decider::new(
            self.client.clone(),
            target.clone(),
            state.clone(),
            writes(transport),
            self.force,
        );
        let pulls = self.client.clone();
        reporters.read_pulls(move || pulls.pull_budgets());
        let blobs = BlobCache::new(&blob_dir(self.state));
        let copier = RegistryTransport::new(self.client, target, blobs.clone(), state, self.force);
        let work = Mirror::new(&decider, &copier);
        let outcomes = run_reported(&work, jobs, unresolved, earlier, options, reporters).await;
        match blobs.prune(self.max_cache) {
            Ok(freed) if freed > 0 => tracing::info!("blob cache: freed {freed} bytes"),
            Ok(_) => {}
            Err(error) => tracing::warn!("blob cache not pruned: {error}"),
        }
        outcomes
    }
}

/// Runs `jobs` with `worker` while `reporters` render every event (the entries whose tags
/// could not be listed first, as failed jobs); the outcomes in job order.
pub(super) async fn run_reported<W: Worker>(
    worker: &W,
    jobs: &[Job],
    unresolved: &[Unresolved],
    earlier: Vec<Event>,
    options: &RunOptions,
    reporters: &mut Reporters,
) -> Vec<Outcome> {
    let started = Instant::now();
    let (events, receiver) = event::channel();
    for event in earlier {
        events.send(event);
    }
    let planned = jobs
        .iter()
        .map(|j| PlannedJob {
            source: j.source.to_string(),
            target: j.target.to_string(),
            unlisted: None,
        })
        .chain(unresolved.iter().map(|u| PlannedJob {
            source: u.source.to_string(),
            target: UNLISTED.to_owned(),
            unlisted: Some(UnlistedEntry {
                key: u.key.clone(),
                destinations: u.destinations.clone(),
            }),
        }))
        .collect();
    events.send(Event::Planned { jobs: planned });
    report_unresolved(&events, jobs.len(), unresolved);
    // SIGTERM (a CI cancel or timeout) or Ctrl-C: running jobs end as interrupted, none
    // starts, and every output still gets its summary (TeamCity's tests, the report).
    let stop = CancellationToken::new();
    let listener = tokio::spawn(cancel_on_signal(stop.clone()));
    let run = async {
        let outcomes = run_until(worker, jobs, options, &events, &stop).await;
        drop(events);
        outcomes
    };
    let (outcomes, _) = tokio::join!(run, reporters.consume(receiver, started));
    listener.abort();
    if stop.is_cancelled() {
        eprintln!("ferry: interrupted: the jobs that had not finished are failed");
    }
    outcomes
}

/// Cancels `stop` at the first SIGTERM or SIGINT.
async fn cancel_on_signal(stop: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    stop.cancel();
}

/// One stderr line per reporter whose output failed, except a stdout that was closed on
/// purpose (`ferry sync | head`). The exit code stays the images' business.
pub(super) fn warn_reporter_failures(reporters: &mut Reporters) {
    for failure in reporters.failures() {
        if !failure.is_closed_output() {
            eprintln!("ferry: {}: output failed: {}", failure.name, failure.error);
        }
    }
}

/// What a transport writes, for deciding whether a target is unchanged.
pub(super) fn writes(transport: TransportArg) -> Writes {
    match transport {
        TransportArg::Registry => Writes::SourceBytes,
        TransportArg::Docker => Writes::DaemonPush,
    }
}

/// The state file; a damaged one is reported once and treated as empty (it costs time,
/// never correctness).
pub(super) fn load_state(path: &Path) -> State {
    let (state, warning) = State::load(path);
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    state
}

/// `--all-platforms` and `platforms: all` copy Windows entries too, which a Linux daemon
/// cannot pull: with the docker transport they are a usage error before anything runs.
pub(super) fn docker_carries_linux_only(
    config: &Mapping,
    selection: &Selection,
) -> Result<(), CommandError> {
    let why = "needs --transport registry: the daemon pulls Linux images only";
    if selection.all_platforms {
        return Err(CommandError::Usage(format!("--all-platforms {why}")));
    }
    // `--platform` replaces every entry's own platforms.
    let entries_count = selection.images.is_empty() && selection.platform.is_empty();
    if entries_count {
        if let Some(entry) = config.images().iter().find(|e| e.all_platforms) {
            return Err(CommandError::Usage(format!(
                "{}: platforms: all {why} ({})",
                entry.location.file_line(),
                entry.source
            )));
        }
    }
    Ok(())
}

/// `--plan FILE` runs the plan as it was written: selection flags would be silently
/// ignored, so they are a usage error.
fn plan_runs_as_written(selection: &Selection) -> Result<(), CommandError> {
    let given = [
        (!selection.images.is_empty(), "IMAGE"),
        (!selection.platform.is_empty(), "--platform"),
        (selection.all_platforms, "--all-platforms"),
        (selection.shard.is_some(), "--shard"),
    ];
    match given.iter().find(|(set, _)| *set) {
        Some((_, flag)) => Err(CommandError::Usage(format!(
            "{flag} does not apply to --plan FILE: the plan runs as written (select when planning)"
        ))),
        None => Ok(()),
    }
}

/// The jobs of the stage, or of `--plan FILE`, and a client knowing their registries.
async fn jobs(
    config: &Mapping,
    args: &SyncArgs,
) -> Result<(Vec<Job>, Vec<Unresolved>, RegistryClient), CommandError> {
    let options = client_options(config);
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
    // What planning reads (`limit`, `order: created`) is remembered in the state file.
    let state = load_state(&args.copying.state);
    let (jobs, unresolved) = resolve::jobs(config, stage, &request, &client, Some(&state)).await?;
    Ok((jobs, unresolved, client))
}

/// The client's options: defaults, with rules.yaml's `rate_floor` for every registry
/// whose auth.yaml `limits:` set none.
pub(super) fn client_options(config: &Mapping) -> ClientOptions {
    let mut options = ClientOptions::default();
    if let Some(floor) = config.rules_file().rate_floor {
        options.limits.rate_floor = floor;
    }
    options
}

/// Human output always; TeamCity, GitHub Actions and JSON when asked for.
pub(super) fn reporters(report: Option<&Path>) -> Result<Reporters, CommandError> {
    let mut reporters = Reporters::default();
    reporters.push_named("stdout", human(std::io::stdout()));
    push_ci_reporters(&mut reporters);
    if let Some(path) = report {
        let file = std::fs::File::create(path).map_err(|e| {
            CommandError::Usage(format!("cannot write report {}: {e}", path.display()))
        })?;
        reporters.push_named(
            format!("report {}", path.display()),
            Box::new(JsonReporter::new(file)),
        );
    }
    Ok(reporters)
}

/// Lines for people to `out`, with progress bars on stderr when it is a terminal.
pub(super) fn human(out: impl Write + Send + 'static) -> Box<dyn Reporter> {
    if std::io::stderr().is_terminal() {
        Box::new(HumanReporter::with_bars(out))
    } else {
        Box::new(HumanReporter::plain(out))
    }
}

/// TeamCity service messages under TeamCity (`TEAMCITY_VERSION`), annotations and the step
/// summary under GitHub Actions (`GITHUB_ACTIONS=true`).
pub(super) fn push_ci_reporters(reporters: &mut Reporters) {
    if std::env::var_os("TEAMCITY_VERSION").is_some() {
        reporters.push_named(
            "stdout (TeamCity)",
            Box::new(TeamcityReporter::new(std::io::stdout())),
        );
    }
    if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
        reporters.push_named(
            "stdout (GitHub annotations)",
            Box::new(GithubReporter::new(
                std::io::stdout(),
                None::<std::fs::File>,
            )),
        );
        // The summary is an output of its own: a closed stdout must not lose it.
        if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
            let path = std::path::PathBuf::from(path);
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
            {
                Ok(file) => reporters.push_named(
                    format!("GitHub step summary {}", path.display()),
                    Box::new(GithubReporter::new(std::io::sink(), Some(file))),
                ),
                Err(error) => eprintln!(
                    "ferry: GitHub step summary {}: cannot open: {error}",
                    path.display()
                ),
            }
        }
    }
}

/// Entries whose tags could not be listed count as failed jobs in every report.
fn report_unresolved(events: &event::Sender, first_id: usize, unresolved: &[Unresolved]) {
    for (offset, failed) in unresolved.iter().enumerate() {
        let job = first_id + offset;
        let source = failed.source.to_string();
        events.send(Event::Started {
            job,
            source: source.clone(),
            target: UNLISTED.to_owned(),
        });
        events.send(Event::Finished {
            job,
            outcome: Outcome::Failed {
                error: format!("{source}: {}", failed.error),
            },
            elapsed: Duration::ZERO,
        });
    }
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
