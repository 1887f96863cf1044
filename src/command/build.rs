//! `ferry build [NAME...]`: extension images through the daemon, with the same concurrency,
//! progress and reports as a sync.
//!
//! Owns the wiring; what to build and how is `crate::build`'s.

use std::io::Write;

use super::sync::{reporters, run_reported, warn_reporter_failures};
use super::{client, daemon_and_state, io, CommandError, EXIT_FAILED, EXIT_OK};
use crate::build::{self, BuildOptions, BuildTransport};
use crate::cli::{BuildArgs, BuildModeArg};
use crate::config::BuildMode;
use crate::credentials::Side;
use crate::event::Outcome;
use crate::plan::Job;
use crate::registry::ClientOptions;
use crate::rules::Mapping;
use crate::run::RunOptions;
use crate::state::State;

/// Builds the selected entries; exit 1 when any build failed.
pub async fn run(
    config: &Mapping,
    args: &BuildArgs,
    out: &mut (dyn Write + Send),
) -> Result<u8, CommandError> {
    let mode = match args.mode {
        BuildModeArg::All => None,
        BuildModeArg::Once => Some(BuildMode::Once),
        BuildModeArg::Continuous => Some(BuildMode::Continuous),
    };
    let entries =
        build::jobs(config, &args.names, mode).map_err(|e| CommandError::Usage(e.to_string()))?;
    if entries.is_empty() {
        writeln!(
            out,
            "nothing to build: build-images.yaml has no entries of that mode"
        )
        .map_err(io)?;
        return Ok(EXIT_OK);
    }
    State::check_writable(&args.state).map_err(|e| CommandError::Usage(e.to_string()))?;
    let jobs: Vec<Job> = entries.iter().map(|(job, _)| job.clone()).collect();
    let touched = jobs.iter().flat_map(|j| [&j.source, &j.target]);
    let source = client(Some(config), touched, ClientOptions::default())?;
    let target = source.for_side(Side::Target);
    let (engine, state) = daemon_and_state(&args.state, &source, &jobs).await?;
    let options = BuildOptions {
        push: args.push,
        force: args.force,
        named: args.names.clone(),
    };
    let transport = BuildTransport::new(engine, source, target, entries, options).with_state(state);
    let mut reporters = reporters(None)?;
    let options = RunOptions {
        jobs: 2,
        per_registry: 2,
        ..RunOptions::default()
    };
    let outcomes = run_reported(&transport, &jobs, &[], Vec::new(), &options, &mut reporters).await;
    warn_reporter_failures(&mut reporters);
    Ok(
        if outcomes.iter().any(|o| matches!(o, Outcome::Failed { .. })) {
            EXIT_FAILED
        } else {
            EXIT_OK
        },
    )
}
