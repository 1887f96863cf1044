//! `ferry plan`: the work a sync would do, source -> target and why, with no writes.
//!
//! Owns the plan's text and JSON output. It reads registries (tags, HEAD digests) only.

use std::io::Write;

use std::sync::Arc;

use super::resolve;
use super::sync::{client_options, load_state, writes};
use super::{client, io, CommandError, EXIT_FAILED, EXIT_OK};
use crate::cli::{PlanArgs, Selection};
use crate::config::selection::TagSet;
use crate::credentials::Side;
use crate::decide::{Action, Decider};
use crate::plan::{self, Job, Request, Unresolved};
use crate::platform::Platform;
use crate::registry::PullBudget;
use crate::rules::Mapping;
use crate::rules::Stage;
use crate::run::{self, RunOptions};

/// Prints the plan of a stage: online, the decision a sync with the same flags would take
/// for every job (the same [`Decider`]); offline, the configured selections.
pub async fn run(
    config: &Mapping,
    args: &PlanArgs,
    out: &mut (dyn Write + Send),
) -> Result<u8, CommandError> {
    let stage = args.selection.stage;
    let request = request(&args.selection);
    if request.images.is_empty() {
        super::require_images(config, stage)?;
    }
    if !args.offline && args.copying.transport == crate::cli::TransportArg::Docker {
        // What sync would refuse, plan refuses too.
        super::sync::docker_carries_linux_only(config, &args.selection)?;
    }
    if args.offline {
        return offline(config, stage, &request, args.json, out);
    }
    let touched = resolve::touched(config, stage, &request)?;
    let client = client(Some(config), &touched, client_options(config))?;
    let state = Arc::new(load_state(&args.copying.state));
    let (jobs, unresolved) = resolve::jobs(config, stage, &request, &client, Some(&state)).await?;
    if args.copying.transport == crate::cli::TransportArg::Docker {
        if let Some(job) = jobs.iter().find(|j| j.all_platforms) {
            return Err(CommandError::Usage(format!(
                "{}: every platform needs --transport registry: the daemon pulls Linux images only",
                job.source
            )));
        }
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &jobs).map_err(|e| io(e.into()))?;
        writeln!(out).map_err(io)?;
        for failed in &unresolved {
            eprintln!("ferry: {}: {}", failed.source, failed.error);
        }
        return Ok(if unresolved.is_empty() {
            EXIT_OK
        } else {
            EXIT_FAILED
        });
    }
    let target = client.for_side(Side::Target);
    let options = super::run_options(RunOptions::default().jobs, &jobs, &client);
    let decider = Decider::new(client, target, state, writes(args.copying.transport), false);
    print_decisions(&decider, &jobs, &unresolved, &options, out).await
}

/// Decides every job under the run's limits and prints one line each, then the entries
/// whose tags could not be listed; exit 1 when any job or entry cannot be done.
pub(super) async fn print_decisions(
    decider: &Decider,
    jobs: &[Job],
    unresolved: &[Unresolved],
    options: &RunOptions,
    out: &mut (dyn Write + Send),
) -> Result<u8, CommandError> {
    let actions = run::map(jobs, options, |_, job| decider.decide(job)).await;
    let mut failed = !unresolved.is_empty();
    for (job, action) in jobs.iter().zip(&actions) {
        let route = format!("{} -> {}", job.source, job.target);
        let line = match action {
            Action::Copy { why, source } => {
                let note = source.note().map(|n| format!("; {n}")).unwrap_or_default();
                format!("copy  {route}  ({why}{note}){}", platform_list(job))
            }
            Action::Skip(reason) => format!("skip  {route}  ({reason})"),
            Action::Fail(cause) => {
                failed = true;
                format!("error {route}: {cause}")
            }
        };
        writeln!(out, "{line}").map_err(io)?;
    }
    for entry in unresolved {
        writeln!(out, "error {}: {}", entry.source, entry.error).map_err(io)?;
    }
    let budgets = decider.pull_budgets();
    // Deciding a copy reads its manifest: a pull on Docker Hub, and the sync that follows
    // (another process) reads it again. Said on stderr, the plan lines stay as they are.
    for budget in budgets.iter().filter(|b| b.pulls > 0) {
        eprintln!(
            "ferry: this plan spent {} pull(s) on {} (source manifest GETs; a sync reads them again)",
            budget.pulls,
            PullBudget::display_name(&budget.registry)
        );
    }
    let mut tally = crate::report::Tally::default();
    tally.set_pulls(budgets);
    for line in tally.deferrals() {
        writeln!(out, "{line}").map_err(io)?;
    }
    Ok(if failed { EXIT_FAILED } else { EXIT_OK })
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
    config: &Mapping,
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
            let platforms = platforms_of(&entry.platforms, entry.all_platforms);
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

/// ` [linux/amd64,linux/arm64]`, ` [all platforms]`, or nothing when every Linux platform
/// is meant.
fn platforms_of(platforms: &[Platform], all: bool) -> String {
    if all {
        return " [all platforms]".to_owned();
    }
    if platforms.is_empty() {
        return String::new();
    }
    let list: Vec<String> = platforms.iter().map(Platform::to_string).collect();
    format!(" [{}]", list.join(","))
}

fn platform_list(job: &Job) -> String {
    platforms_of(&job.platforms, job.all_platforms)
}

#[cfg(test)]
mod tests {
    use crate::command::output_of;

    #[tokio::test]
    async fn offline_plan_of_the_shipped_config() {
        let line = "-c config plan --offline";
        let shown = format!("$ ferry {line}\n{}", output_of(line).await);
        insta::assert_snapshot!(shown);
    }

    #[tokio::test]
    async fn offline_plan_of_the_origin_config_for_the_private_stage() {
        let line = "-c tests/fixtures/origin/config plan --offline --stage private";
        let shown = format!("$ ferry {line}\n{}", output_of(line).await);
        insta::assert_snapshot!(shown);
    }
}
