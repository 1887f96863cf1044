//! `ferry plan`: the work a sync would do, source -> target and why, with no writes.
//!
//! Owns the plan's text and JSON output. It reads registries (tags, HEAD digests) only.

use std::io::Write;

use super::resolve;
use super::{client, io, CommandError, EXIT_FAILED, EXIT_OK};
use crate::cli::{PlanArgs, Selection};
use crate::config::selection::TagSet;
use crate::config::Config;
use crate::plan::{self, Job, Request};
use crate::platform::Platform;
use crate::registry::{ClientOptions, RegistryClient};
use crate::rules::Stage;
use crate::state::State;

/// The state file `plan` consults to recognise docker-transport copies.
const STATE_FILE: &str = ".ferry/state.json";

/// Prints the plan of a stage.
pub async fn run(
    config: &Config,
    args: &PlanArgs,
    out: &mut (dyn Write + Send),
) -> Result<u8, CommandError> {
    let stage = args.selection.stage;
    let request = request(&args.selection);
    if request.images.is_empty() {
        super::require_images(config)?;
    }
    if args.offline {
        return offline(config, stage, &request, args.json, out);
    }
    let touched = resolve::touched(config, stage, &request)?;
    let client = client(Some(config), &touched, ClientOptions::default())?;
    let (jobs, unresolved) = resolve::jobs(config, stage, &request, &client).await?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &jobs).map_err(|e| io(e.into()))?;
        writeln!(out).map_err(io)?;
    } else {
        let (state, _) = State::load(std::path::Path::new(STATE_FILE));
        for job in &jobs {
            let (action, reason) = why(&client, &state, job).await;
            writeln!(
                out,
                "{action:<5} {} -> {}  ({reason}){}",
                job.source,
                job.target,
                platform_list(&job.platforms)
            )
            .map_err(io)?;
        }
    }
    for failed in &unresolved {
        writeln!(out, "error {}: {}", failed.source, failed.error).map_err(io)?;
    }
    Ok(if unresolved.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// What `--images`, `--platform` and `--shard` ask for.
pub(super) fn request(selection: &Selection) -> Request {
    Request {
        images: selection.images.clone(),
        platforms: selection.platform.clone(),
        all_platforms: selection.all_platforms,
        shard: selection.shard,
    }
}

/// The plan from the config alone: selections instead of concrete tags.
fn offline(
    config: &Config,
    stage: Stage,
    request: &Request,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<u8, CommandError> {
    let routes = plan::routes(config, stage, request)?;
    if json {
        let mut jobs = Vec::new();
        for route in &routes {
            let tags = match route.entry.selection.tags() {
                TagSet::List(tags) => tags.clone(),
                TagSet::Digest { .. } => Vec::new(),
                TagSet::All | TagSet::Regex(_) => {
                    return Err(CommandError::Usage(format!(
                        "{}: --offline --json needs explicit tags, this entry lists them ({})",
                        route.entry.location.file_line(),
                        route.entry.source
                    )))
                }
            };
            jobs.extend(plan::jobs(config, route, stage, &tags)?);
        }
        serde_json::to_writer_pretty(&mut *out, &plan::finish(jobs)).map_err(|e| io(e.into()))?;
        writeln!(out).map_err(io)?;
        return Ok(EXIT_OK);
    }
    for route in &routes {
        let entry = &route.entry;
        let source = &route.from;
        for target in route.targets(config, &entry.source, stage)? {
            let platforms = match entry.all_platforms {
                true => " [all platforms]".to_owned(),
                false => platform_list(&entry.platforms),
            };
            writeln!(
                out,
                "copy  {source} [{}] -> {target}{platforms}",
                entry.selection
            )
            .map_err(io)?;
        }
    }
    Ok(EXIT_OK)
}

/// Whether a job would copy, and why: the target is missing, differs, or already matches
/// (same digest, or the digest the state file recorded for a docker-transport push).
async fn why(client: &RegistryClient, state: &State, job: &Job) -> (&'static str, String) {
    let source = match client.head_manifest(&job.source).await {
        Ok(Some(head)) => head.digest,
        Ok(None) => return ("error", "source not found".to_owned()),
        Err(e) => return ("error", e.to_string()),
    };
    let target = match client.head_manifest(&job.target).await {
        Ok(Some(head)) => head.digest,
        Ok(None) => return ("copy", "new".to_owned()),
        Err(e) => return ("copy", format!("target not checked: {e}")),
    };
    match (source, target) {
        (Some(s), Some(t)) if s == t => ("skip", "unchanged".to_owned()),
        (Some(s), Some(t))
            if state.pushed(&job.target.to_string(), &s).as_deref() == Some(t.as_str()) =>
        {
            ("skip", "unchanged, pushed through the daemon".to_owned())
        }
        _ => ("copy", "target differs".to_owned()),
    }
}

/// ` [linux/amd64,linux/arm64]`, or nothing when every Linux platform is meant.
fn platform_list(platforms: &[Platform]) -> String {
    if platforms.is_empty() {
        return String::new();
    }
    let list: Vec<String> = platforms.iter().map(Platform::to_string).collect();
    format!(" [{}]", list.join(","))
}
