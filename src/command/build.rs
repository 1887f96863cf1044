//! `ferry build [NAME...]`: extension images through the daemon, with the same concurrency,
//! progress and reports as a sync.
//!
//! Owns the wiring; what to build and how is `crate::build`'s.

use std::io::Write;

use super::sync::reporters;
use super::{client, daemon_and_state, io, CommandError, EXIT_FAILED, EXIT_OK};
use crate::build::{self, BuildOptions, BuildTransport};
use crate::cli::BuildArgs;
use crate::config::Config;
use crate::credentials::Side;
use crate::plan::Job;
use crate::registry::ClientOptions;
use crate::run::{run as run_jobs, RunOptions};
use crate::state::State;

/// Builds the selected entries; exit 1 when any build failed.
pub async fn run(
    config: &Config,
    args: &BuildArgs,
    out: &mut (dyn Write + Send),
) -> Result<u8, CommandError> {
    let entries = build::jobs(config, &args.names, args.mode)
        .map_err(|e| CommandError::Usage(e.to_string()))?;
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
    let transport = BuildTransport::new(engine, source, target, entries, BuildOptions::from(args))
        .with_state(state);
    let mut reporters = reporters(None)?;
    let options = RunOptions {
        jobs: 2,
        per_registry: 2,
    };
    let tally = run_jobs(&transport, &jobs, options, &mut reporters)
        .await
        .map_err(io)?;
    Ok(if tally.totals().failed > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}
